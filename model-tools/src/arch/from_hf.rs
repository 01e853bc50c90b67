//! The supported architectures: reading and checking `config.json`, the GGUF hyper-parameter
//! keys each one gets, the Hugging Face → GGUF tensor names, the expected shapes, and the
//! per-tensor transforms (Llama's Q/K row permutation, Gemma's `+1` on RMSNorm weights).
//!
//! Mirrors llama.cpp's `conversion/llama.py` (`LlamaModel`), `conversion/qwen.py`
//! (`Qwen2Model`, `Qwen3Model`), `conversion/gemma.py` (`Gemma3Model`) and
//! `TextModel.set_gguf_parameters` in `conversion/base.py`, with `config.json` defaults taken
//! from the `transformers` config classes (the Python converter reads the config through
//! `AutoConfig`, which fills them in).

use serde_json::Value as Json;
use vazhi_gguf::{Array, Metadata};

/// The Hugging Face `architectures` names this converter supports, with their GGUF names.
pub const SUPPORTED: &[(&str, Arch)] = &[
    ("LlamaForCausalLM", Arch::Llama),
    ("Qwen2ForCausalLM", Arch::Qwen2),
    ("Qwen3ForCausalLM", Arch::Qwen3),
    ("Gemma3ForCausalLM", Arch::Gemma3),
];

/// Most layers a config may state (every layer needs its own tensors; no real model has more
/// than a few hundred).
pub const MAX_LAYERS: usize = 1 << 16;
/// Largest hidden size, feed-forward size, head count or head size a config may state (real
/// models stay below 1 << 17); bounds the products and tables computed from them.
pub const MAX_DIM: usize = 1 << 20;

/// What is wrong with `config.json` or a tensor's name or shape.
#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    /// The architecture is not supported.
    #[error(
        "architecture {found:?} is not supported; supported: {}",
        SUPPORTED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    )]
    Unsupported {
        /// The `architectures` entry (or a description of its absence).
        found: String,
    },
    /// A required key is missing or has the wrong type.
    #[error("config.json: {key} {problem}")]
    Config {
        /// The key.
        key: String,
        /// What is wrong (e.g. "is missing", "must be a positive integer").
        problem: String,
    },
    /// The checkpoint is quantized (bitsandbytes, GPTQ, AWQ, FP8 …).
    #[error(
        "config.json has a quantization_config ({method}): quantized checkpoints are not \
         converted; convert the original float weights (or dequantize/merge first)"
    )]
    Quantized {
        /// `quant_method`, if given.
        method: String,
    },
}

/// A supported architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Arch {
    /// Llama and look-alikes (SmolLM2, Llama 3.x).
    Llama,
    /// Qwen2 / Qwen2.5.
    Qwen2,
    /// Qwen3 (dense).
    Qwen3,
    /// Gemma 3, text only.
    Gemma3,
}

impl Arch {
    /// The `general.architecture` value.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma3 => "gemma3",
        }
    }

    /// The architecture for a Hugging Face `architectures` name.
    pub fn from_hf(name: &str) -> Option<Arch> {
        SUPPORTED.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
    }
}

/// RoPE scaling, as the converter writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// None (or a type the converter writes nothing for).
    None,
    /// Linear position interpolation.
    Linear {
        /// Scale factor.
        factor: f64,
    },
    /// YaRN.
    Yarn {
        /// Scale factor.
        factor: f64,
        /// Original training context.
        original_context: u64,
        /// Optional `extrapolation_factor`, `attention_factor`, `beta_fast`, `beta_slow`.
        ext_factor: Option<f64>,
        /// Attention factor.
        attn_factor: Option<f64>,
        /// Beta fast.
        beta_fast: Option<f64>,
        /// Beta slow.
        beta_slow: Option<f64>,
    },
    /// LongRoPE (`su` / `longrope`).
    LongRope,
    /// Llama 3's frequency-dependent scaling, written as a `rope_freqs.weight` tensor.
    Llama3 {
        /// Scale factor.
        factor: f64,
        /// Low-frequency factor.
        low_freq_factor: f64,
        /// High-frequency factor.
        high_freq_factor: f64,
        /// Original training context.
        original_context: f64,
    },
}

/// The hyper-parameters of a model, read from `config.json` and checked.
#[derive(Debug, Clone)]
pub struct Hparams {
    /// Architecture.
    pub arch: Arch,
    /// The Hugging Face architecture name.
    pub hf_arch: String,
    /// Layers.
    pub n_layer: usize,
    /// Hidden size.
    pub n_embd: usize,
    /// Feed-forward size.
    pub n_ff: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Key/value heads.
    pub n_head_kv: usize,
    /// Per-head dimension.
    pub head_dim: usize,
    /// Training context length.
    pub n_ctx: u64,
    /// Embedding rows (`vocab_size`).
    pub vocab_size: usize,
    /// RMSNorm epsilon.
    pub rms_eps: f64,
    /// RoPE base frequency (global layers).
    pub rope_theta: Option<f64>,
    /// RoPE base frequency of sliding-window layers.
    pub rope_theta_swa: Option<f64>,
    /// RoPE scaling.
    pub rope_scaling: RopeScaling,
    /// Sliding-window size (Gemma 3), when written.
    pub sliding_window: Option<u64>,
    /// Final logit soft-capping (Gemma 3), when set.
    pub final_logit_softcapping: Option<f64>,
    /// Whether the output projection is tied to the embedding.
    pub tie_word_embeddings: bool,
}

fn get<'a>(config: &'a Json, key: &str) -> Option<&'a Json> {
    config.get(key).filter(|v| !v.is_null())
}

fn positive(config: &Json, key: &str) -> Result<Option<usize>, ArchError> {
    match get(config, key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|&n| n > 0)
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| ArchError::Config {
                key: key.to_owned(),
                problem: format!("must be a positive integer, found {v}"),
            }),
    }
}

/// `value` of `key`, refused when larger than `max`.
fn at_most(key: &str, value: usize, max: usize) -> Result<usize, ArchError> {
    if value > max {
        return Err(ArchError::Config {
            key: key.to_owned(),
            problem: format!("({value}) is larger than {max}, which no real model has"),
        });
    }
    Ok(value)
}

fn required(config: &Json, key: &str) -> Result<usize, ArchError> {
    positive(config, key)?.ok_or_else(|| ArchError::Config {
        key: key.to_owned(),
        problem: "is missing".to_owned(),
    })
}

fn float(config: &Json, key: &str) -> Result<Option<f64>, ArchError> {
    match get(config, key) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| ArchError::Config {
            key: key.to_owned(),
            problem: format!("must be a number, found {v}"),
        }),
    }
}

/// The first of `keys` present (the converter's `find_hparam`).
fn first_float(config: &Json, keys: &[&str]) -> Result<Option<f64>, ArchError> {
    for key in keys {
        if let Some(v) = float(config, key)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

fn first_positive(config: &Json, keys: &[&str]) -> Result<Option<usize>, ArchError> {
    for key in keys {
        if let Some(v) = positive(config, key)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// The `architectures[0]` of a config (or of its `text_config`), checked against
/// [`SUPPORTED`].
pub fn detect(config: &Json) -> Result<(Arch, String), ArchError> {
    let first = |c: &Json| {
        c.get("architectures")
            .and_then(Json::as_array)
            .and_then(|a| a.first())
            .and_then(Json::as_str)
            .map(str::to_owned)
    };
    let name = config
        .get("text_config")
        .and_then(first)
        .or_else(|| first(config))
        .ok_or_else(|| ArchError::Unsupported {
            found: "(config.json has no \"architectures\")".to_owned(),
        })?;
    let arch = Arch::from_hf(&name).ok_or_else(|| ArchError::Unsupported {
        found: name.clone(),
    })?;
    Ok((arch, name))
}

impl Hparams {
    /// Reads and checks a `config.json`.
    pub fn from_config(config: &Json) -> Result<Hparams, ArchError> {
        if let Some(q) = get(config, "quantization_config") {
            let method = q
                .get("quant_method")
                .and_then(Json::as_str)
                .unwrap_or("unknown method")
                .to_owned();
            return Err(ArchError::Quantized { method });
        }
        let (arch, hf_arch) = detect(config)?;
        // The converter moves `text_config` to the top level.
        let mut merged = config.clone();
        if let (Some(obj), Some(text)) = (
            merged.as_object_mut(),
            config.get("text_config").and_then(Json::as_object),
        ) {
            for (k, v) in text {
                obj.insert(k.clone(), v.clone());
            }
        }
        let c = &merged;

        let n_layer = at_most(
            "num_hidden_layers",
            required(c, "num_hidden_layers")?,
            MAX_LAYERS,
        )?;
        let n_embd = at_most("hidden_size", required(c, "hidden_size")?, MAX_DIM)?;
        let n_ff = at_most(
            "intermediate_size",
            required(c, "intermediate_size")?,
            MAX_DIM,
        )?;
        let vocab_size = at_most(
            "vocab_size",
            required(c, "vocab_size")?,
            crate::convert::vocab::MAX_VOCAB_SIZE,
        )?;
        // transformers defaults per config class.
        let n_head = match arch {
            Arch::Gemma3 => positive(c, "num_attention_heads")?.unwrap_or(8),
            _ => required(c, "num_attention_heads")?,
        };
        let n_head = at_most("num_attention_heads", n_head, MAX_DIM)?;
        let n_head_kv = positive(c, "num_key_value_heads")?.unwrap_or(match arch {
            Arch::Gemma3 => 4,
            _ => n_head,
        });
        let n_head_kv = at_most("num_key_value_heads", n_head_kv, MAX_DIM)?;
        let head_dim = match (positive(c, "head_dim")?, arch) {
            (Some(d), _) => at_most("head_dim", d, MAX_DIM)?,
            (None, Arch::Qwen3) => 128,
            (None, Arch::Gemma3) => 256,
            (None, _) => {
                if !n_embd.is_multiple_of(n_head) {
                    return Err(ArchError::Config {
                        key: "head_dim".to_owned(),
                        problem: format!(
                            "is missing and hidden_size {n_embd} is not divisible by \
                             num_attention_heads {n_head}"
                        ),
                    });
                }
                n_embd / n_head
            }
        };
        if n_head.checked_mul(head_dim).is_none_or(|q| q > MAX_DIM) {
            return Err(ArchError::Config {
                key: "head_dim".to_owned(),
                problem: format!(
                    "({head_dim}) × num_attention_heads ({n_head}) is larger than {MAX_DIM}, \
                     which no real model has"
                ),
            });
        }
        if !n_head.is_multiple_of(n_head_kv) {
            return Err(ArchError::Config {
                key: "num_key_value_heads".to_owned(),
                problem: format!("({n_head_kv}) must divide num_attention_heads ({n_head})"),
            });
        }
        if arch == Arch::Llama && !head_dim.is_multiple_of(2) {
            return Err(ArchError::Config {
                key: "head_dim".to_owned(),
                problem: format!("({head_dim}) must be even for RoPE"),
            });
        }
        let n_ctx = first_positive(
            c,
            &[
                "max_position_embeddings",
                "n_ctx",
                "n_positions",
                "max_length",
                "max_sequence_length",
                "model_max_length",
            ],
        )?
        .unwrap_or(match arch {
            Arch::Llama => 2048,
            Arch::Qwen2 | Arch::Qwen3 => 32768,
            Arch::Gemma3 => 131_072,
        }) as u64;
        let rms_eps = first_float(c, &["rms_norm_eps", "norm_eps"])?.unwrap_or(1e-6);

        // RoPE, as TextModel.__init__ / set_gguf_parameters resolve it.
        let mut rope = get(c, "rope_parameters")
            .or_else(|| get(c, "rope_scaling"))
            .and_then(Json::as_object)
            .cloned()
            .unwrap_or_default();
        let default_theta = match arch {
            Arch::Gemma3 => 1_000_000.0,
            _ => 10_000.0,
        };
        let rope_theta = first_float(
            c,
            &[
                "global_rope_theta",
                "rope_global_theta",
                "rope_theta_global",
                "rope_theta",
                "rotary_emb_base",
            ],
        )?
        .or(Some(default_theta));
        let local_theta = first_float(
            c,
            &[
                "local_rope_theta",
                "rope_local_theta",
                "rope_theta_local",
                "swa_rope_theta",
                "rope_local_base_freq",
            ],
        )?
        .or(if arch == Arch::Gemma3 {
            Some(10_000.0)
        } else {
            None
        });
        if !rope.contains_key("full_attention") && !rope.contains_key("sliding_attention") {
            if let Some(t) = local_theta {
                rope.insert(
                    "sliding_attention".into(),
                    serde_json::json!({ "rope_theta": t }),
                );
            }
            if !rope.contains_key("rope_theta") {
                if let Some(t) = rope_theta {
                    rope.insert("rope_theta".into(), Json::from(t));
                }
            }
            if !rope.contains_key("rope_type") {
                if let Some(t) = rope.get("type").cloned() {
                    rope.insert("rope_type".into(), t);
                }
            }
            if !rope.contains_key("original_max_position_embeddings") {
                if let Some(o) = get(c, "original_max_position_embeddings") {
                    rope.insert("original_max_position_embeddings".into(), o.clone());
                }
            }
        }
        let rope = Json::Object(rope);
        let full = rope.get("full_attention").unwrap_or(&rope);
        let rope_scaling = rope_scaling_of(full)?;
        let mut theta = full.get("rope_theta").and_then(Json::as_f64);
        if arch == Arch::Gemma3 {
            theta = theta.or(Some(1_000_000.0));
        }
        let theta_swa = rope
            .get("sliding_attention")
            .and_then(|s| s.get("rope_theta"))
            .and_then(Json::as_f64);

        let sliding_window = match arch {
            // Written unless `sliding_window_pattern` is 1 (every layer global).
            Arch::Gemma3 => {
                let pattern = get(c, "sliding_window_pattern").and_then(Json::as_u64);
                if pattern == Some(1) {
                    None
                } else {
                    Some(positive(c, "sliding_window")?.unwrap_or(4096) as u64)
                }
            }
            _ => None,
        };
        let final_logit_softcapping = match arch {
            Arch::Gemma3 => float(c, "final_logit_softcapping")?.filter(|v| *v != 0.0),
            _ => None,
        };
        if arch == Arch::Gemma3 && float(c, "attn_logit_softcapping")?.is_some() {
            return Err(ArchError::Config {
                key: "attn_logit_softcapping".to_owned(),
                problem: "is set, but Gemma 3 has no attention logit soft-capping".to_owned(),
            });
        }
        let tie_word_embeddings = get(c, "tie_word_embeddings")
            .and_then(Json::as_bool)
            .unwrap_or(arch == Arch::Gemma3);

        Ok(Hparams {
            arch,
            hf_arch,
            n_layer,
            n_embd,
            n_ff,
            n_head,
            n_head_kv,
            head_dim,
            n_ctx,
            vocab_size,
            rms_eps,
            rope_theta: theta,
            rope_theta_swa: theta_swa,
            rope_scaling,
            sliding_window,
            final_logit_softcapping,
            tie_word_embeddings,
        })
    }

    /// Writes the `{arch}.*` hyper-parameter keys and `general.file_type`, in the order
    /// llama.cpp's converter writes them.
    pub fn write_metadata(&self, md: &mut Metadata, file_type: u32) {
        let a = self.arch.gguf_name();
        let k = |suffix: &str| format!("{a}.{suffix}");
        let u32_of = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        md.insert(k("block_count"), u32_of(self.n_layer as u64));
        md.insert(k("context_length"), u32_of(self.n_ctx));
        md.insert(k("embedding_length"), u32_of(self.n_embd as u64));
        md.insert(k("feed_forward_length"), u32_of(self.n_ff as u64));
        md.insert(k("attention.head_count"), u32_of(self.n_head as u64));
        md.insert(k("attention.head_count_kv"), u32_of(self.n_head_kv as u64));
        match &self.rope_scaling {
            RopeScaling::None | RopeScaling::Llama3 { .. } => {}
            RopeScaling::Linear { factor } => {
                md.insert(k("rope.scaling.type"), "linear");
                md.insert(k("rope.scaling.factor"), *factor as f32);
            }
            RopeScaling::Yarn {
                factor,
                original_context,
                ext_factor,
                attn_factor,
                beta_fast,
                beta_slow,
            } => {
                md.insert(k("rope.scaling.type"), "yarn");
                md.insert(k("rope.scaling.factor"), *factor as f32);
                md.insert(
                    k("rope.scaling.original_context_length"),
                    u32_of(*original_context),
                );
                for (key, v) in [
                    ("rope.scaling.yarn_ext_factor", ext_factor),
                    ("rope.scaling.yarn_attn_factor", attn_factor),
                    ("rope.scaling.yarn_beta_fast", beta_fast),
                    ("rope.scaling.yarn_beta_slow", beta_slow),
                ] {
                    if let Some(v) = v {
                        md.insert(k(key), *v as f32);
                    }
                }
            }
            RopeScaling::LongRope => {
                md.insert(k("rope.scaling.type"), "longrope");
            }
        }
        if let Some(t) = self.rope_theta {
            md.insert(k("rope.freq_base"), t as f32);
        }
        if let Some(t) = self.rope_theta_swa {
            md.insert(k("rope.freq_base_swa"), t as f32);
        }
        md.insert(k("attention.layer_norm_rms_epsilon"), self.rms_eps as f32);
        // The head dimension is always written (the Python converter writes it whenever the
        // config class has a `head_dim`, which is the case for all but Qwen2).
        md.insert(k("attention.key_length"), u32_of(self.head_dim as u64));
        md.insert(k("attention.value_length"), u32_of(self.head_dim as u64));
        md.insert("general.file_type", file_type);
        match self.arch {
            Arch::Llama => {
                md.insert(k("vocab_size"), u32_of(self.vocab_size as u64));
                md.insert(k("rope.dimension_count"), u32_of(self.head_dim as u64));
            }
            Arch::Qwen2 | Arch::Qwen3 => {}
            Arch::Gemma3 => {
                if let Some(cap) = self.final_logit_softcapping {
                    md.insert(k("final_logit_softcapping"), cap as f32);
                }
                if let Some(w) = self.sliding_window {
                    md.insert(k("attention.sliding_window"), u32_of(w));
                }
            }
        }
    }

    /// Llama 3's per-frequency RoPE factors (`rope_freqs.weight`), when the config asks for
    /// them; computed in `f32` as the converter's PyTorch code does.
    pub fn rope_freqs(&self) -> Option<Vec<f32>> {
        let RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_context,
        } = self.rope_scaling
        else {
            return None;
        };
        if self.arch != Arch::Llama {
            return None;
        }
        let base = self.rope_theta.unwrap_or(10_000.0) as f32;
        let dim = self.head_dim as f32;
        let (factor, low, high, old_ctx) = (
            factor as f32,
            low_freq_factor as f32,
            high_freq_factor as f32,
            original_context as f32,
        );
        let low_freq_wavelen = old_ctx / low;
        let high_freq_wavelen = old_ctx / high;
        let two_pi = (2.0 * std::f64::consts::PI) as f32;
        Some(
            (0..self.head_dim / 2)
                .map(|i| {
                    let freq = 1.0 / base.powf((2 * i) as f32 / dim);
                    let wavelen = two_pi / freq;
                    if wavelen < high_freq_wavelen {
                        1.0
                    } else if wavelen > low_freq_wavelen {
                        factor
                    } else {
                        let smooth = (old_ctx / wavelen - low) / (high - low);
                        1.0 / ((1.0 - smooth) / factor + smooth)
                    }
                })
                .collect(),
        )
    }

    /// Writes `{arch}.attention.sliding_window_pattern` when `layer_types` disagrees with the
    /// pattern llama.cpp assumes for Gemma 3 (every 6th layer global), so the file says which
    /// layers slide. Returns whether it was written.
    pub fn write_layer_pattern(&self, config: &Json, md: &mut Metadata) -> Result<bool, ArchError> {
        if self.arch != Arch::Gemma3 || self.sliding_window.is_none() {
            return Ok(false);
        }
        let Some(types) = get(config, "layer_types").and_then(Json::as_array) else {
            return Ok(false);
        };
        if types.len() != self.n_layer {
            return Err(ArchError::Config {
                key: "layer_types".to_owned(),
                problem: format!(
                    "has {} entries but there are {} layers",
                    types.len(),
                    self.n_layer
                ),
            });
        }
        let mut sliding = Vec::with_capacity(types.len());
        for t in types {
            sliding.push(match t.as_str() {
                Some("sliding_attention") => true,
                Some("full_attention") => false,
                _ => {
                    return Err(ArchError::Config {
                        key: "layer_types".to_owned(),
                        problem: format!("has an unknown entry {t}"),
                    })
                }
            });
        }
        // llama.cpp's default (`set_swa_pattern(6)`): layer il slides unless il % 6 == 5.
        let default: Vec<bool> = (0..self.n_layer).map(|il| il % 6 < 5).collect();
        if sliding == default {
            return Ok(false);
        }
        md.insert(
            format!("{}.attention.sliding_window_pattern", self.arch.gguf_name()),
            Array::from(sliding),
        );
        Ok(true)
    }
}

fn rope_scaling_of(params: &Json) -> Result<RopeScaling, ArchError> {
    let Some(kind) = params.get("rope_type").and_then(Json::as_str) else {
        return Ok(RopeScaling::None);
    };
    let f = |key: &str| params.get(key).and_then(Json::as_f64);
    let factor = f("factor");
    Ok(match (kind.to_ascii_lowercase().as_str(), factor) {
        ("linear", Some(factor)) => RopeScaling::Linear { factor },
        ("yarn", Some(factor)) => RopeScaling::Yarn {
            factor,
            original_context: params
                .get("original_max_position_embeddings")
                .and_then(Json::as_u64)
                .ok_or_else(|| ArchError::Config {
                    key: "rope_scaling.original_max_position_embeddings".to_owned(),
                    problem: "is required for YaRN".to_owned(),
                })?,
            ext_factor: f("extrapolation_factor"),
            attn_factor: f("attention_factor").or_else(|| f("attn_factor")),
            beta_fast: f("beta_fast"),
            beta_slow: f("beta_slow"),
        },
        ("su" | "longrope", _) => RopeScaling::LongRope,
        ("llama3", _) => RopeScaling::Llama3 {
            factor: factor.unwrap_or(8.0),
            low_freq_factor: f("low_freq_factor").unwrap_or(1.0),
            high_freq_factor: f("high_freq_factor").unwrap_or(4.0),
            original_context: f("original_max_position_embeddings").unwrap_or(8192.0),
        },
        ("default" | "dynamic", _) => RopeScaling::None,
        (other, _) => {
            tracing::warn!(rope_type = other, "unknown RoPE type; no scaling written");
            RopeScaling::None
        }
    })
}

/// What a tensor is, independent of the architecture's naming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Token embedding.
    TokenEmbd,
    /// Attention pre-norm.
    AttnNorm,
    /// Query projection.
    AttnQ,
    /// Key projection.
    AttnK,
    /// Value projection.
    AttnV,
    /// Attention output projection.
    AttnOut,
    /// Per-head query RMSNorm.
    AttnQNorm,
    /// Per-head key RMSNorm.
    AttnKNorm,
    /// Norm after attention (Gemma).
    AttnPostNorm,
    /// Feed-forward pre-norm.
    FfnNorm,
    /// Gate projection.
    FfnGate,
    /// Up projection.
    FfnUp,
    /// Down projection.
    FfnDown,
    /// Norm after the feed-forward (Gemma).
    FfnPostNorm,
    /// Final norm.
    OutputNorm,
    /// Output projection (LM head).
    Output,
}

impl Role {
    /// The GGUF base name (`blk.{i}.` is prefixed for layer tensors).
    fn gguf_base(self) -> &'static str {
        match self {
            Role::TokenEmbd => "token_embd",
            Role::AttnNorm => "attn_norm",
            Role::AttnQ => "attn_q",
            Role::AttnK => "attn_k",
            Role::AttnV => "attn_v",
            Role::AttnOut => "attn_output",
            Role::AttnQNorm => "attn_q_norm",
            Role::AttnKNorm => "attn_k_norm",
            Role::AttnPostNorm => "post_attention_norm",
            Role::FfnNorm => "ffn_norm",
            Role::FfnGate => "ffn_gate",
            Role::FfnUp => "ffn_up",
            Role::FfnDown => "ffn_down",
            Role::FfnPostNorm => "post_ffw_norm",
            Role::OutputNorm => "output_norm",
            Role::Output => "output",
        }
    }
}

/// A checkpoint tensor mapped to its GGUF name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The GGUF tensor name, e.g. `blk.3.attn_q.weight`.
    pub name: String,
    /// What the tensor is.
    pub role: Role,
    /// Layer index, for layer tensors.
    pub block: Option<usize>,
    /// Whether it is a bias (`.bias`) rather than a weight.
    pub is_bias: bool,
}

/// Checkpoint tensors the converter skips because they are not weights (buffers some
/// exporters save): `*.rotary_emb.inv_freq`, `*.attention.masked_bias`, `*.attention.bias`.
pub fn is_ignored(name: &str) -> bool {
    name.ends_with(".rotary_emb.inv_freq")
        || name.ends_with(".attention.masked_bias")
        || name.ends_with(".attention.bias")
}

impl Hparams {
    /// Maps a Hugging Face tensor name; `None` if this architecture has no such tensor (the
    /// caller reports every unmapped name).
    pub fn map_name(&self, hf: &str) -> Option<Mapped> {
        let (stem, is_bias) = if let Some(s) = hf.strip_suffix(".weight") {
            (s, false)
        } else {
            (hf.strip_suffix(".bias")?, true)
        };
        let global = |role: Role| Mapped {
            name: format!(
                "{}.{}",
                role.gguf_base(),
                if is_bias { "bias" } else { "weight" }
            ),
            role,
            block: None,
            is_bias,
        };
        let role_allowed_bias = |role: Role| -> bool {
            matches!(
                (self.arch, role),
                (_, Role::AttnQ | Role::AttnK | Role::AttnV)
                    | (
                        Arch::Llama,
                        Role::AttnOut | Role::FfnGate | Role::FfnUp | Role::FfnDown
                    )
                    | (Arch::Qwen2, Role::Output)
            )
        };
        match stem {
            "model.embed_tokens" if !is_bias => return Some(global(Role::TokenEmbd)),
            "model.norm" if !is_bias => return Some(global(Role::OutputNorm)),
            "lm_head" if !is_bias || role_allowed_bias(Role::Output) => {
                return Some(global(Role::Output))
            }
            _ => {}
        }
        let rest = stem.strip_prefix("model.layers.")?;
        let (index, part) = rest.split_once('.')?;
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let block: usize = index.parse().ok()?;
        if block >= self.n_layer {
            return None;
        }
        let gemma = self.arch == Arch::Gemma3;
        let qk_norm = matches!(self.arch, Arch::Qwen3 | Arch::Gemma3);
        let role = match part {
            "input_layernorm" => Role::AttnNorm,
            "self_attn.q_proj" => Role::AttnQ,
            "self_attn.k_proj" => Role::AttnK,
            "self_attn.v_proj" => Role::AttnV,
            "self_attn.o_proj" => Role::AttnOut,
            "self_attn.q_norm" if qk_norm => Role::AttnQNorm,
            "self_attn.k_norm" if qk_norm => Role::AttnKNorm,
            "post_attention_layernorm" if gemma => Role::AttnPostNorm,
            "post_attention_layernorm" => Role::FfnNorm,
            "pre_feedforward_layernorm" if gemma => Role::FfnNorm,
            "post_feedforward_layernorm" if gemma => Role::FfnPostNorm,
            "mlp.gate_proj" => Role::FfnGate,
            "mlp.up_proj" => Role::FfnUp,
            "mlp.down_proj" => Role::FfnDown,
            _ => return None,
        };
        if is_bias && !role_allowed_bias(role) {
            return None;
        }
        Some(Mapped {
            name: format!(
                "blk.{block}.{}.{}",
                role.gguf_base(),
                if is_bias { "bias" } else { "weight" }
            ),
            role,
            block: Some(block),
            is_bias,
        })
    }

    /// The tensors every layer (or the model) must have, as Hugging Face names, produced one
    /// at a time: a config may state many layers, and callers count or filter the names
    /// without holding them all.
    pub fn required_names(&self) -> impl Iterator<Item = String> + '_ {
        const EVERY_LAYER: &[&str] = &[
            "input_layernorm",
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "post_attention_layernorm",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj",
        ];
        const QK_NORMS: &[&str] = &["self_attn.q_norm", "self_attn.k_norm"];
        const GEMMA_NORMS: &[&str] = &["pre_feedforward_layernorm", "post_feedforward_layernorm"];
        let (qk, gemma): (&[&str], &[&str]) = match self.arch {
            Arch::Qwen3 => (QK_NORMS, &[]),
            Arch::Gemma3 => (QK_NORMS, GEMMA_NORMS),
            Arch::Llama | Arch::Qwen2 => (&[], &[]),
        };
        let per_layer = EVERY_LAYER.iter().chain(qk).chain(gemma);
        ["model.embed_tokens.weight", "model.norm.weight"]
            .into_iter()
            .map(str::to_owned)
            .chain((0..self.n_layer).flat_map(move |i| {
                per_layer
                    .clone()
                    .map(move |p| format!("model.layers.{i}.{p}.weight"))
            }))
    }

    /// The expected Hugging Face (PyTorch-order) shape of a mapped tensor.
    pub fn expected_shape(&self, m: &Mapped) -> Vec<usize> {
        let (h, f, hd) = (self.n_embd, self.n_ff, self.head_dim);
        // `from_config` bounds these; saturating keeps hand-built values from wrapping.
        let q = self.n_head.saturating_mul(hd);
        let kv = self.n_head_kv.saturating_mul(hd);
        let (out, inp) = match m.role {
            Role::TokenEmbd | Role::Output => (self.vocab_size, h),
            Role::AttnNorm
            | Role::AttnPostNorm
            | Role::FfnNorm
            | Role::FfnPostNorm
            | Role::OutputNorm => return vec![h],
            Role::AttnQNorm | Role::AttnKNorm => return vec![hd],
            Role::AttnQ => (q, h),
            Role::AttnK | Role::AttnV => (kv, h),
            Role::AttnOut => (h, q),
            Role::FfnGate | Role::FfnUp => (f, h),
            Role::FfnDown => (h, f),
        };
        if m.is_bias {
            vec![out]
        } else {
            vec![out, inp]
        }
    }

    /// The transform applied to a tensor's values before encoding.
    pub fn transform(&self, m: &Mapped) -> Transform {
        let permute_heads = match (self.arch, m.role) {
            (Arch::Llama, Role::AttnQ) => Some(self.n_head),
            (Arch::Llama, Role::AttnK) => Some(self.n_head_kv),
            _ => None,
        };
        let is_norm = matches!(
            m.role,
            Role::AttnNorm
                | Role::AttnPostNorm
                | Role::FfnNorm
                | Role::FfnPostNorm
                | Role::OutputNorm
                | Role::AttnQNorm
                | Role::AttnKNorm
        );
        Transform {
            permute_heads,
            add_one: self.arch == Arch::Gemma3 && is_norm && !m.is_bias,
        }
    }
}

/// A per-tensor change of values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Transform {
    /// Reorder rows from Hugging Face's rotate-half RoPE layout to llama.cpp's interleaved one
    /// (`LlamaModel.permute`), with this many heads.
    pub permute_heads: Option<usize>,
    /// Add 1 to every value (Gemma's RMSNorm stores `weight - 1`).
    pub add_one: bool,
}

/// The source row of output row `row` under `LlamaModel.permute` with `n_head` heads of
/// `rows / n_head` rows each: within a head, output row `2j + i` comes from row
/// `i * half + j` (`reshape(n_head, 2, half, …).swapaxes(1, 2)`).
pub fn permuted_source_row(row: usize, rows: usize, n_head: usize) -> usize {
    // Planning checks `rows == n_head × head_dim`; fewer rows than heads is the identity.
    let head_rows = (rows / n_head.max(1)).max(1);
    let half = head_rows / 2;
    let head = row / head_rows;
    let within = row % head_rows;
    let (j, i) = (within / 2, within % 2);
    head * head_rows + i * half + j
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn llama_config() -> Json {
        // SmolLM2-135M's config.json (abridged).
        json!({
            "architectures": ["LlamaForCausalLM"],
            "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
            "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
            "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 100000,
            "rope_scaling": null, "tie_word_embeddings": true, "torch_dtype": "bfloat16"
        })
    }

    fn gemma_config() -> Json {
        // Gemma 3 270M's config.json (abridged).
        json!({
            "architectures": ["Gemma3ForCausalLM"],
            "hidden_size": 640, "intermediate_size": 2048, "num_hidden_layers": 18,
            "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256,
            "vocab_size": 262144, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "rope_scaling": null,
            "sliding_window": 512, "final_logit_softcapping": null,
            "attn_logit_softcapping": null, "query_pre_attn_scalar": 256,
            "layer_types": ["sliding_attention", "sliding_attention", "sliding_attention",
                "sliding_attention", "sliding_attention", "full_attention",
                "sliding_attention", "sliding_attention", "sliding_attention",
                "sliding_attention", "sliding_attention", "full_attention",
                "sliding_attention", "sliding_attention", "sliding_attention",
                "sliding_attention", "sliding_attention", "full_attention"]
        })
    }

    fn qwen_config(arch: &str) -> Json {
        json!({
            "architectures": [arch],
            "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
            "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
            "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            "tie_word_embeddings": true, "head_dim": 64
        })
    }

    /// Every tensor name a Hugging Face checkpoint of this shape holds, with its shape.
    fn hf_tensors(hp: &Hparams, biases: bool, lm_head: bool) -> Vec<(String, Vec<usize>)> {
        let (h, f, hd) = (hp.n_embd, hp.n_ff, hp.head_dim);
        let (q, kv) = (hp.n_head * hd, hp.n_head_kv * hd);
        let mut out = vec![
            (
                "model.embed_tokens.weight".to_owned(),
                vec![hp.vocab_size, h],
            ),
            ("model.norm.weight".to_owned(), vec![h]),
        ];
        if lm_head {
            out.push(("lm_head.weight".to_owned(), vec![hp.vocab_size, h]));
        }
        for i in 0..hp.n_layer {
            let p = |s: &str| format!("model.layers.{i}.{s}");
            out.extend([
                (p("input_layernorm.weight"), vec![h]),
                (p("self_attn.q_proj.weight"), vec![q, h]),
                (p("self_attn.k_proj.weight"), vec![kv, h]),
                (p("self_attn.v_proj.weight"), vec![kv, h]),
                (p("self_attn.o_proj.weight"), vec![h, q]),
                (p("post_attention_layernorm.weight"), vec![h]),
                (p("mlp.gate_proj.weight"), vec![f, h]),
                (p("mlp.up_proj.weight"), vec![f, h]),
                (p("mlp.down_proj.weight"), vec![h, f]),
            ]);
            if biases {
                out.extend([
                    (p("self_attn.q_proj.bias"), vec![q]),
                    (p("self_attn.k_proj.bias"), vec![kv]),
                    (p("self_attn.v_proj.bias"), vec![kv]),
                ]);
            }
            if matches!(hp.arch, Arch::Qwen3 | Arch::Gemma3) {
                out.extend([
                    (p("self_attn.q_norm.weight"), vec![hd]),
                    (p("self_attn.k_norm.weight"), vec![hd]),
                ]);
            }
            if hp.arch == Arch::Gemma3 {
                out.extend([
                    (p("pre_feedforward_layernorm.weight"), vec![h]),
                    (p("post_feedforward_layernorm.weight"), vec![h]),
                ]);
            }
        }
        out
    }

    /// Maps every tensor; checks nothing is left, shapes agree and GGUF names are unique.
    fn check_all_map(hp: &Hparams, tensors: &[(String, Vec<usize>)]) -> Vec<String> {
        let mut names = Vec::new();
        for (name, shape) in tensors {
            let m = hp
                .map_name(name)
                .unwrap_or_else(|| panic!("{name} is unmapped for {:?}", hp.arch));
            assert_eq!(&hp.expected_shape(&m), shape, "{name}");
            names.push(m.name);
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "duplicate GGUF names");
        for required in hp.required_names() {
            assert!(
                tensors.iter().any(|(n, _)| *n == required),
                "{required} required"
            );
        }
        names
    }

    #[test]
    fn llama_maps_every_tensor_and_writes_smollm_keys() {
        let hp = Hparams::from_config(&llama_config()).expect("config");
        assert_eq!((hp.arch, hp.head_dim, hp.n_ctx), (Arch::Llama, 64, 8192));
        let names = check_all_map(&hp, &hf_tensors(&hp, true, true));
        assert!(names.contains(&"blk.29.ffn_norm.weight".to_owned()));
        assert!(names.contains(&"output.weight".to_owned()));
        assert!(names.contains(&"blk.0.attn_q.bias".to_owned()));
        // Llama has no q_norm.
        assert_eq!(hp.map_name("model.layers.0.self_attn.q_norm.weight"), None);
        // Out-of-range layers and garbage are unmapped.
        assert_eq!(hp.map_name("model.layers.30.mlp.up_proj.weight"), None);
        assert_eq!(hp.map_name("model.layers.x.mlp.up_proj.weight"), None);
        assert_eq!(hp.map_name("model.embed_tokens.bias"), None);

        let mut md = Metadata::new();
        hp.write_metadata(&mut md, 1);
        let keys: Vec<&str> = md.keys().collect();
        assert_eq!(
            keys,
            [
                "llama.block_count",
                "llama.context_length",
                "llama.embedding_length",
                "llama.feed_forward_length",
                "llama.attention.head_count",
                "llama.attention.head_count_kv",
                "llama.rope.freq_base",
                "llama.attention.layer_norm_rms_epsilon",
                "llama.attention.key_length",
                "llama.attention.value_length",
                "general.file_type",
                "llama.vocab_size",
                "llama.rope.dimension_count",
            ]
        );
        // Values as in the SmolLM2 GGUF written by llama.cpp's converter.
        assert_eq!(md.get_f32("llama.rope.freq_base"), Some(100000.0));
        assert_eq!(
            md.get_f32("llama.attention.layer_norm_rms_epsilon"),
            Some(1e-5)
        );
        assert_eq!(md.get_u32("llama.attention.head_count_kv"), Some(3));
        assert_eq!(md.get_u32("llama.rope.dimension_count"), Some(64));
        assert_eq!(md.get_u32("llama.vocab_size"), Some(49152));
    }

    #[test]
    fn qwen_maps_biases_and_norms() {
        let hp2 = Hparams::from_config(&qwen_config("Qwen2ForCausalLM")).expect("qwen2");
        let names = check_all_map(&hp2, &hf_tensors(&hp2, true, false));
        assert!(names.contains(&"blk.3.attn_v.bias".to_owned()));
        assert_eq!(hp2.map_name("model.layers.0.self_attn.o_proj.bias"), None);
        assert_eq!(hp2.map_name("model.layers.0.self_attn.k_norm.weight"), None);

        let hp3 = Hparams::from_config(&qwen_config("Qwen3ForCausalLM")).expect("qwen3");
        let names = check_all_map(&hp3, &hf_tensors(&hp3, false, true));
        assert!(names.contains(&"blk.23.attn_k_norm.weight".to_owned()));
        assert_eq!(
            hp3.transform(
                &hp3.map_name("model.layers.0.self_attn.q_proj.weight")
                    .expect("q")
            ),
            Transform::default()
        );
        let mut md = Metadata::new();
        hp3.write_metadata(&mut md, 7);
        assert_eq!(md.get_u32("qwen3.attention.key_length"), Some(64));
        assert_eq!(md.get_f32("qwen3.rope.freq_base"), Some(1_000_000.0));
        assert!(!md.contains_key("qwen3.vocab_size"));
    }

    #[test]
    fn gemma3_270m_keys_norm_shift_and_pattern() {
        let config = gemma_config();
        let hp = Hparams::from_config(&config).expect("gemma");
        let names = check_all_map(&hp, &hf_tensors(&hp, false, false));
        assert!(names.contains(&"blk.0.post_attention_norm.weight".to_owned()));
        assert!(names.contains(&"blk.0.ffn_norm.weight".to_owned()));
        assert!(names.contains(&"blk.17.post_ffw_norm.weight".to_owned()));
        let q_norm = hp
            .map_name("model.layers.0.self_attn.q_norm.weight")
            .expect("q_norm");
        assert!(hp.transform(&q_norm).add_one);
        let up = hp
            .map_name("model.layers.0.mlp.up_proj.weight")
            .expect("up");
        assert!(!hp.transform(&up).add_one);

        let mut md = Metadata::new();
        md.insert("gemma3.context_length", 0u32); // the writer replaces values in place
        hp.write_metadata(&mut md, 0);
        assert_eq!(md.get_u32("gemma3.context_length"), Some(32768));
        assert_eq!(md.get_u32("gemma3.attention.sliding_window"), Some(512));
        assert_eq!(md.get_u32("gemma3.attention.key_length"), Some(256));
        assert_eq!(md.get_u32("gemma3.attention.head_count_kv"), Some(1));
        assert_eq!(md.get_f32("gemma3.rope.freq_base"), Some(1_000_000.0));
        assert_eq!(md.get_f32("gemma3.rope.freq_base_swa"), Some(10_000.0));
        assert!(!md.contains_key("gemma3.final_logit_softcapping"));
        // 270m's layer_types are llama.cpp's default pattern: nothing extra written.
        assert!(!hp.write_layer_pattern(&config, &mut md).expect("pattern"));

        let mut odd = config.clone();
        odd["layer_types"][0] = json!("full_attention");
        let mut md = Metadata::new();
        assert!(hp.write_layer_pattern(&odd, &mut md).expect("pattern"));
        let pattern = md
            .get_array("gemma3.attention.sliding_window_pattern")
            .expect("written");
        assert_eq!(pattern.len(), 18);
    }

    #[test]
    fn config_errors_are_specific() {
        let mut c = llama_config();
        c["architectures"] = json!(["MistralForCausalLM"]);
        let err = Hparams::from_config(&c)
            .expect_err("unsupported")
            .to_string();
        assert!(
            err.contains("MistralForCausalLM") && err.contains("Gemma3ForCausalLM"),
            "{err}"
        );

        let mut c = llama_config();
        c.as_object_mut().expect("object").remove("hidden_size");
        let err = Hparams::from_config(&c).expect_err("missing").to_string();
        assert!(err.contains("hidden_size is missing"), "{err}");

        let mut c = llama_config();
        c["quantization_config"] = json!({"quant_method": "bitsandbytes"});
        let err = Hparams::from_config(&c).expect_err("quantized").to_string();
        assert!(err.contains("bitsandbytes"), "{err}");

        let mut c = llama_config();
        c["num_key_value_heads"] = json!(4);
        assert!(Hparams::from_config(&c).is_err());
    }

    #[test]
    fn oversized_dimensions_are_config_errors() {
        let config_error = |c: &Json, key: &str| match Hparams::from_config(c) {
            Err(ArchError::Config { key: k, .. }) => assert_eq!(k, key, "{c}"),
            other => panic!("expected a config error for {key}, got {other:?}"),
        };
        // 6 × 6148914691236517206 wraps to 4 in 64 bits: the Q rows would be 4 and the
        // permutation would divide by 4 / 6 = 0.
        let mut c = llama_config();
        c["num_attention_heads"] = json!(6);
        c["num_key_value_heads"] = json!(6);
        c["head_dim"] = json!(6_148_914_691_236_517_206u64);
        config_error(&c, "head_dim");
        // Each bounded, the product still too large.
        c["head_dim"] = json!(MAX_DIM);
        config_error(&c, "head_dim");
        // Llama 3 RoPE factors are a table of head_dim / 2 values.
        let mut c = llama_config();
        c["head_dim"] = json!(u64::MAX - 1);
        c["rope_scaling"] = json!({"rope_type": "llama3", "factor": 8.0});
        config_error(&c, "head_dim");
        for (key, value) in [
            ("num_hidden_layers", json!(MAX_LAYERS + 1)),
            ("num_hidden_layers", json!(u64::MAX)),
            ("num_attention_heads", json!(1u64 << 40)),
            ("num_key_value_heads", json!(1u64 << 40)),
            ("hidden_size", json!(1u64 << 40)),
            ("intermediate_size", json!(1u64 << 40)),
            ("vocab_size", json!(9_223_372_036_854_775_807u64)),
            ("vocab_size", json!(1_000_000_000_000u64)),
        ] {
            let mut c = llama_config();
            c[key] = value;
            config_error(&c, key);
        }
        // The largest accepted layer count lists its required names lazily.
        let mut c = llama_config();
        c["num_hidden_layers"] = json!(MAX_LAYERS);
        let hp = Hparams::from_config(&c).expect("many layers");
        assert_eq!(
            hp.required_names().nth(2).as_deref(),
            Some("model.layers.0.input_layernorm.weight")
        );
        assert_eq!(hp.required_names().count(), 2 + 9 * MAX_LAYERS);
        assert_eq!(
            permuted_source_row(3, 4, 6),
            3,
            "fewer rows than heads: identity"
        );
    }

    #[test]
    fn rope_scaling_variants() {
        let mut c = llama_config();
        c["rope_scaling"] = json!({"type": "linear", "factor": 4.0});
        let hp = Hparams::from_config(&c).expect("linear");
        assert_eq!(hp.rope_scaling, RopeScaling::Linear { factor: 4.0 });
        let mut md = Metadata::new();
        hp.write_metadata(&mut md, 1);
        assert_eq!(md.get_str("llama.rope.scaling.type"), Some("linear"));

        c["rope_scaling"] = json!({"rope_type": "yarn", "factor": 4.0,
                                   "original_max_position_embeddings": 4096});
        let hp = Hparams::from_config(&c).expect("yarn");
        let mut md = Metadata::new();
        hp.write_metadata(&mut md, 1);
        assert_eq!(
            md.get_u32("llama.rope.scaling.original_context_length"),
            Some(4096)
        );

        // Llama 3.2's factors: high frequencies keep 1, low ones get `factor`.
        c["rope_theta"] = json!(500000.0);
        c["rope_scaling"] = json!({"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                   "high_freq_factor": 4.0,
                                   "original_max_position_embeddings": 8192});
        let hp = Hparams::from_config(&c).expect("llama3");
        let freqs = hp.rope_freqs().expect("factors");
        assert_eq!(freqs.len(), 32);
        assert_eq!(freqs[0], 1.0);
        assert_eq!(freqs[31], 32.0);
        assert!(freqs.windows(2).all(|w| w[0] <= w[1]));
        let mut md = Metadata::new();
        hp.write_metadata(&mut md, 1);
        assert!(!md.contains_key("llama.rope.scaling.type"));
    }

    /// `LlamaModel.permute` written out with explicit reshapes, for comparison.
    fn permute_reference(rows: &[Vec<f32>], n_head: usize) -> Vec<Vec<f32>> {
        let head_rows = rows.len() / n_head;
        let half = head_rows / 2;
        // view as [n_head][2][half][cols], swap axes 1 and 2 → [n_head][half][2][cols]
        let mut out = Vec::new();
        for h in 0..n_head {
            for j in 0..half {
                for i in 0..2 {
                    out.push(rows[h * head_rows + i * half + j].clone());
                }
            }
        }
        out
    }

    #[test]
    fn permute_matches_reference() {
        let n_head = 3;
        let rows: Vec<Vec<f32>> = (0..n_head * 8)
            .map(|r| (0..4).map(|c| (r * 10 + c) as f32).collect())
            .collect();
        let expected = permute_reference(&rows, n_head);
        for (r, want) in expected.iter().enumerate() {
            let src = permuted_source_row(r, rows.len(), n_head);
            assert_eq!(&rows[src], want, "row {r}");
        }
        // numpy: np.arange(12).reshape(2, 2, 3).swapaxes(1, 2).reshape(12)
        let order: Vec<usize> = (0..12).map(|r| permuted_source_row(r, 12, 2)).collect();
        assert_eq!(order, [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11]);
        // numpy: np.arange(8).reshape(1, 2, 4).swapaxes(1, 2).reshape(8)
        let order: Vec<usize> = (0..8).map(|r| permuted_source_row(r, 8, 1)).collect();
        assert_eq!(order, [0, 4, 1, 5, 2, 6, 3, 7]);
    }
}
