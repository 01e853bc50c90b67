//! The model hyper-parameters read from GGUF metadata ([`ModelParams`]) and the Hugging Face
//! `config.json` / `generation_config.json` written from them, key for key as the real
//! checkpoints of each architecture spell them (SmolLM2 / Llama, Gemma 3 text, Qwen2, Qwen3).

use serde_json::{json, Map, Value as Json};
use vazhi_gguf::{ArrayData, GgufFile, Metadata, ValueRef};

use super::names::Arch;
use crate::import::ImportError;

/// llama.cpp's default Gemma 3 local (sliding-window) RoPE base when the GGUF does not state
/// `gemma3.rope.freq_base_swa` (`rope_freq_base_train_swa` in `llama-hparams.h`).
const GEMMA3_DEFAULT_LOCAL_ROPE_BASE: f32 = 10_000.0;

/// llama.cpp's default Gemma 3 sliding-window pattern (`load_swa_pattern(ml, 6)`): layer `i`
/// is sliding unless `i % 6 == 5`.
const GEMMA3_DEFAULT_SWA_PATTERN: usize = 6;

/// Most transformer blocks a GGUF may state (no real model has more than a few hundred;
/// `block_count` sizes per-layer tables).
pub const MAX_LAYERS: usize = 1 << 16;

/// Largest hidden size, feed-forward size, head count or head size accepted (real models stay
/// below 1 << 17); bounds the shapes computed from them.
pub const MAX_DIM: usize = 1 << 20;

/// RoPE scaling as stated in the GGUF (or, for llama3-style scaling, recovered from the
/// `rope_freqs` tensor).
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// `rope.scaling.type = linear`.
    Linear {
        /// Position interpolation factor.
        factor: f32,
    },
    /// `rope.scaling.type = yarn`.
    Yarn {
        /// Context extension factor.
        factor: f32,
        /// Context length the model was trained with.
        original_max_position_embeddings: Option<u64>,
        /// `yarn_beta_fast`, when stated.
        beta_fast: Option<f32>,
        /// `yarn_beta_slow`, when stated.
        beta_slow: Option<f32>,
        /// `rope.scaling.attn_factor`, when stated.
        attention_factor: Option<f32>,
    },
    /// Llama 3.1+ frequency-dependent scaling (`rope_freqs.weight`).
    Llama3 {
        /// Scaling factor of the low frequencies.
        factor: f32,
        /// `low_freq_factor`.
        low_freq_factor: f32,
        /// `high_freq_factor`.
        high_freq_factor: f32,
        /// `original_max_position_embeddings`.
        original_max_position_embeddings: u64,
    },
}

/// Gemma 3 specifics.
#[derive(Debug, Clone, PartialEq)]
pub struct Gemma3Params {
    /// Sliding-window size (`None`: every layer attends globally).
    pub sliding_window: Option<u64>,
    /// Per layer: whether it uses sliding-window attention.
    pub is_sliding: Vec<bool>,
    /// The period of the sliding/full pattern, when the layers follow one.
    pub pattern: Option<usize>,
    /// RoPE base of the sliding layers.
    pub rope_local_base_freq: f32,
    /// `final_logit_softcapping`, when stated.
    pub final_logit_softcapping: Option<f32>,
    /// `attn_logit_softcapping`, when stated.
    pub attn_logit_softcapping: Option<f32>,
}

/// The hyper-parameters of the model, checked for consistency.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelParams {
    /// Architecture.
    pub arch: Arch,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Hidden size.
    pub n_embd: usize,
    /// FFN intermediate size.
    pub n_ff: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads.
    pub n_head_kv: usize,
    /// Per-head size of queries, keys and values.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f32,
    /// RoPE base (of the global layers, for Gemma 3).
    pub rope_theta: f32,
    /// RoPE scaling, if any.
    pub rope_scaling: Option<RopeScaling>,
    /// Training context length.
    pub context_length: u64,
    /// Rows of the token embedding (the checkpoint's `vocab_size`).
    pub vocab_size: usize,
    /// Whether the LM head is the token embedding (no `output.weight`).
    pub tie_word_embeddings: bool,
    /// Whether the attention projections have biases.
    pub attention_bias: bool,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos_token_id: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos_token_id: Option<u32>,
    /// `tokenizer.ggml.padding_token_id`.
    pub pad_token_id: Option<u32>,
    /// Gemma 3 specifics.
    pub gemma3: Option<Gemma3Params>,
}

/// Typed access to `{arch}.*` keys with errors that name the key.
pub(crate) struct Keys<'a> {
    metadata: &'a Metadata,
    prefix: &'a str,
}

impl<'a> Keys<'a> {
    pub(crate) fn new(metadata: &'a Metadata, arch: Arch) -> Self {
        Keys {
            metadata,
            prefix: arch.gguf_name(),
        }
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.prefix)
    }

    fn bad(key: &str, problem: impl Into<String>) -> ImportError {
        ImportError::BadMetadata {
            key: key.to_owned(),
            problem: problem.into(),
        }
    }

    /// A non-negative integer, or an array of them that holds one value for every layer.
    fn uniform_usize(&self, suffix: &str) -> Result<Option<usize>, ImportError> {
        let key = self.key(suffix);
        let Some(value) = self.metadata.get(&key) else {
            return Ok(None);
        };
        if let Some(v) = value.as_u64() {
            return usize::try_from(v)
                .map(Some)
                .map_err(|_| Self::bad(&key, "does not fit in memory"));
        }
        let Some(array) = value.as_array() else {
            return Err(Self::bad(&key, "is not an integer"));
        };
        let values: Vec<u64> = array.iter().filter_map(ValueRef::as_u64).collect();
        if values.len() != array.len() || values.is_empty() {
            return Err(Self::bad(&key, "is not an array of non-negative integers"));
        }
        if values.iter().any(|&v| v != values[0]) {
            return Err(Self::bad(
                &key,
                "differs between layers, which the Hugging Face config of this architecture \
                 cannot express",
            ));
        }
        usize::try_from(values[0])
            .map(Some)
            .map_err(|_| Self::bad(&key, "does not fit in memory"))
    }

    fn required_usize(&self, suffix: &str) -> Result<usize, ImportError> {
        match self.uniform_usize(suffix)? {
            Some(0) => Err(Self::bad(&self.key(suffix), "is 0")),
            Some(v) => Ok(v),
            None => Err(ImportError::MissingMetadata {
                key: self.key(suffix),
            }),
        }
    }

    /// `value` of `suffix`, refused when larger than `max`.
    fn at_most(&self, suffix: &str, value: usize, max: usize) -> Result<usize, ImportError> {
        if value > max {
            return Err(Self::bad(
                &self.key(suffix),
                format!("is {value}, larger than {max}, which no real model has"),
            ));
        }
        Ok(value)
    }

    fn f32(&self, suffix: &str) -> Result<Option<f32>, ImportError> {
        let key = self.key(suffix);
        match self.metadata.get(&key) {
            None => Ok(None),
            Some(v) => v
                .as_f32()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| Self::bad(&key, "is not a finite float")),
        }
    }

    fn u64(&self, suffix: &str) -> Result<Option<u64>, ImportError> {
        let key = self.key(suffix);
        match self.metadata.get(&key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| Self::bad(&key, "is not a non-negative integer")),
        }
    }

    fn str(&self, suffix: &str) -> Result<Option<&'a str>, ImportError> {
        let key = self.key(suffix);
        match self.metadata.get(&key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| Self::bad(&key, "is not a UTF-8 string")),
        }
    }
}

/// A special token id from `tokenizer.ggml.*_token_id`, checked against the vocabulary.
pub(crate) fn token_id(
    metadata: &Metadata,
    key: &str,
    n_tokens: usize,
) -> Result<Option<u32>, ImportError> {
    let Some(value) = metadata.get(key) else {
        return Ok(None);
    };
    // Some converters store -1 for "none".
    if value.as_i64() == Some(-1) {
        return Ok(None);
    }
    let id = value.as_u32().ok_or_else(|| ImportError::BadMetadata {
        key: key.to_owned(),
        problem: "is not a token id".into(),
    })?;
    if id as usize >= n_tokens {
        return Err(ImportError::BadMetadata {
            key: key.to_owned(),
            problem: format!("token {id} is outside the {n_tokens}-token vocabulary"),
        });
    }
    Ok(Some(id))
}

impl ModelParams {
    /// Reads and checks the hyper-parameters of `file` for `arch`.
    ///
    /// `vocab_size` and `tie_word_embeddings` come from the tensors (rows of
    /// `token_embd.weight`, absence of `output.weight`), `attention_bias` from the presence
    /// of `attn_q.bias`; `rope_freqs` holds the values of `rope_freqs.weight` when present.
    pub fn from_gguf(
        file: &GgufFile,
        arch: Arch,
        rope_freqs: Option<&[f32]>,
    ) -> Result<ModelParams, ImportError> {
        let keys = Keys::new(&file.metadata, arch);
        let n_layer = keys.at_most(
            "block_count",
            keys.required_usize("block_count")?,
            MAX_LAYERS,
        )?;
        check_block_count(file, &keys, n_layer)?;
        let dim = |suffix: &str, value: usize| keys.at_most(suffix, value, MAX_DIM);
        let n_embd = dim("embedding_length", keys.required_usize("embedding_length")?)?;
        let n_ff = dim(
            "feed_forward_length",
            keys.required_usize("feed_forward_length")?,
        )?;
        let n_head = dim(
            "attention.head_count",
            keys.required_usize("attention.head_count")?,
        )?;
        let n_head_kv = keys
            .uniform_usize("attention.head_count_kv")?
            .unwrap_or(n_head);
        if n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(Keys::bad(
                &keys.key("attention.head_count_kv"),
                format!("{n_head_kv} does not divide the {n_head} query heads"),
            ));
        }
        let default_head_dim = n_embd / n_head;
        let head_dim = keys
            .uniform_usize("attention.key_length")?
            .unwrap_or(default_head_dim);
        let value_dim = keys
            .uniform_usize("attention.value_length")?
            .unwrap_or(default_head_dim);
        if head_dim == 0 || head_dim != value_dim {
            return Err(Keys::bad(
                &keys.key("attention.value_length"),
                format!(
                    "key length {head_dim} and value length {value_dim} differ (or are 0); \
                     Hugging Face {} has one head_dim",
                    arch.hf_class()
                ),
            ));
        }
        if !head_dim.is_multiple_of(2) {
            return Err(Keys::bad(
                &keys.key("attention.key_length"),
                format!("head size {head_dim} is odd; RoPE needs pairs of dimensions"),
            ));
        }
        dim("attention.key_length", head_dim)?;
        // n_head_kv divides n_head, so n_head × head_dim bounds every projection size.
        if n_head.checked_mul(head_dim).is_none_or(|q| q > MAX_DIM) {
            return Err(Keys::bad(
                &keys.key("attention.key_length"),
                format!(
                    "head size {head_dim} × {n_head} heads is larger than {MAX_DIM}, which no \
                     real model has"
                ),
            ));
        }
        if let Some(rope_dim) = keys.uniform_usize("rope.dimension_count")? {
            if rope_dim != head_dim {
                return Err(Keys::bad(
                    &keys.key("rope.dimension_count"),
                    format!(
                        "partial RoPE ({rope_dim} of {head_dim} dimensions) is not supported \
                         for {arch}"
                    ),
                ));
            }
        }
        let rms_norm_eps = keys
            .f32("attention.layer_norm_rms_epsilon")?
            .ok_or_else(|| ImportError::MissingMetadata {
                key: keys.key("attention.layer_norm_rms_epsilon"),
            })?;
        let rope_theta = keys.f32("rope.freq_base")?.unwrap_or(10_000.0);
        let context_length =
            keys.u64("context_length")?
                .ok_or_else(|| ImportError::MissingMetadata {
                    key: keys.key("context_length"),
                })?;
        let rope_scaling = read_rope_scaling(&keys, rope_freqs, rope_theta, head_dim)?;

        let embd = file
            .tensor("token_embd.weight")
            .ok_or_else(|| ImportError::MissingTensor {
                name: "token_embd.weight".into(),
            })?;
        let vocab_size = match embd.dims.as_slice() {
            [_, rows] => usize::try_from(*rows).unwrap_or(usize::MAX),
            _ => 0,
        };
        let n_tokens = file
            .metadata
            .get_string_array_len("tokenizer.ggml.tokens")
            .unwrap_or(vocab_size);
        let gemma3 = if arch == Arch::Gemma3 {
            Some(read_gemma3(&keys, n_layer)?)
        } else {
            None
        };
        Ok(ModelParams {
            arch,
            n_layer,
            n_embd,
            n_ff,
            n_head,
            n_head_kv,
            head_dim,
            rms_norm_eps,
            rope_theta,
            rope_scaling,
            context_length,
            vocab_size,
            tie_word_embeddings: file.tensor("output.weight").is_none(),
            attention_bias: file.tensor("blk.0.attn_q.bias").is_some(),
            bos_token_id: token_id(&file.metadata, "tokenizer.ggml.bos_token_id", n_tokens)?,
            eos_token_id: token_id(&file.metadata, "tokenizer.ggml.eos_token_id", n_tokens)?,
            pad_token_id: token_id(&file.metadata, "tokenizer.ggml.padding_token_id", n_tokens)?,
            gemma3,
        })
    }

    /// The `config.json` object.
    pub fn config_json(&self) -> Json {
        let mut c = Map::new();
        let mut put = |k: &str, v: Json| {
            c.insert(k.to_owned(), v);
        };
        put("architectures", json!([self.arch.hf_class()]));
        put("model_type", json!(self.arch.hf_model_type()));
        put("hidden_size", json!(self.n_embd));
        put("intermediate_size", json!(self.n_ff));
        put("num_hidden_layers", json!(self.n_layer));
        put("num_attention_heads", json!(self.n_head));
        put("num_key_value_heads", json!(self.n_head_kv));
        put("head_dim", json!(self.head_dim));
        put("rms_norm_eps", json!(decimal(self.rms_norm_eps)));
        put("rope_theta", json!(decimal(self.rope_theta)));
        put("rope_scaling", self.rope_scaling_json());
        put("max_position_embeddings", json!(self.context_length));
        put("vocab_size", json!(self.vocab_size));
        put("tie_word_embeddings", json!(self.tie_word_embeddings));
        put("bos_token_id", json!(self.bos_token_id));
        put("eos_token_id", json!(self.eos_token_id));
        put("pad_token_id", json!(self.pad_token_id));
        put("torch_dtype", json!("float32"));
        put("use_cache", json!(true));
        put("initializer_range", json!(0.02));
        put("attention_dropout", json!(0.0));
        match self.arch {
            Arch::Llama => {
                put("hidden_act", json!("silu"));
                put("attention_bias", json!(self.attention_bias));
                put("mlp_bias", json!(false));
                put("pretraining_tp", json!(1));
            }
            Arch::Qwen2 | Arch::Qwen3 => {
                put("hidden_act", json!("silu"));
                put("use_sliding_window", json!(false));
                put(
                    "sliding_window",
                    if self.arch == Arch::Qwen2 {
                        json!(self.context_length)
                    } else {
                        Json::Null
                    },
                );
                put("max_window_layers", json!(self.n_layer));
                if self.arch == Arch::Qwen3 {
                    put("attention_bias", json!(false));
                }
            }
            Arch::Gemma3 => {
                put("hidden_activation", json!("gelu_pytorch_tanh"));
                put("attention_bias", json!(false));
                put("use_bidirectional_attention", json!(false));
                put("query_pre_attn_scalar", json!(self.query_pre_attn_scalar()));
                if let Some(g) = &self.gemma3 {
                    put("sliding_window", json!(g.sliding_window));
                    let types: Vec<&str> = g
                        .is_sliding
                        .iter()
                        .map(|&s| {
                            if s {
                                "sliding_attention"
                            } else {
                                "full_attention"
                            }
                        })
                        .collect();
                    put("layer_types", json!(types));
                    if let Some(p) = g.pattern {
                        put("_sliding_window_pattern", json!(p));
                    }
                    put(
                        "rope_local_base_freq",
                        json!(decimal(g.rope_local_base_freq)),
                    );
                    put(
                        "final_logit_softcapping",
                        json!(g.final_logit_softcapping.map(decimal)),
                    );
                    put(
                        "attn_logit_softcapping",
                        json!(g.attn_logit_softcapping.map(decimal)),
                    );
                }
            }
        }
        Json::Object(c)
    }

    /// Gemma 3's `query_pre_attn_scalar`: the head size, except for the 27B model (62
    /// layers), which scales by `hidden_size / num_attention_heads` (llama.cpp's
    /// `f_attention_scale`).
    pub fn query_pre_attn_scalar(&self) -> usize {
        if self.n_layer == 62 {
            self.n_embd / self.n_head
        } else {
            self.head_dim
        }
    }

    fn rope_scaling_json(&self) -> Json {
        match &self.rope_scaling {
            None => Json::Null,
            Some(RopeScaling::Linear { factor }) => {
                json!({"rope_type": "linear", "factor": decimal(*factor)})
            }
            Some(RopeScaling::Yarn {
                factor,
                original_max_position_embeddings,
                beta_fast,
                beta_slow,
                attention_factor,
            }) => {
                let mut m = Map::new();
                m.insert("rope_type".into(), json!("yarn"));
                m.insert("factor".into(), json!(decimal(*factor)));
                if let Some(n) = original_max_position_embeddings {
                    m.insert("original_max_position_embeddings".into(), json!(n));
                }
                for (k, v) in [
                    ("beta_fast", beta_fast),
                    ("beta_slow", beta_slow),
                    ("attention_factor", attention_factor),
                ] {
                    if let Some(v) = v {
                        m.insert(k.into(), json!(decimal(*v)));
                    }
                }
                Json::Object(m)
            }
            Some(RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            }) => json!({
                "rope_type": "llama3",
                "factor": decimal(*factor),
                "low_freq_factor": decimal(*low_freq_factor),
                "high_freq_factor": decimal(*high_freq_factor),
                "original_max_position_embeddings": original_max_position_embeddings,
            }),
        }
    }

    /// The `generation_config.json` object: bos/pad ids and every end-of-generation id
    /// (`eos_token_id` becomes a list when the vocabulary has a separate end-of-turn token).
    pub fn generation_config_json(&self, extra_eos: &[u32]) -> Json {
        let mut eos: Vec<u32> = self.eos_token_id.into_iter().collect();
        for &id in extra_eos {
            if !eos.contains(&id) {
                eos.push(id);
            }
        }
        let eos = match eos.as_slice() {
            [] => Json::Null,
            [one] => json!(one),
            many => json!(many),
        };
        json!({
            "_from_model_config": true,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": eos,
            "pad_token_id": self.pad_token_id,
        })
    }
}

/// An `f32` from GGUF as the decimal a person wrote (`1e-05` rather than
/// `9.999999747378752e-06`): the shortest decimal that round-trips the `f32`, as `f64`.
pub fn decimal(x: f32) -> f64 {
    format!("{x}").parse::<f64>().unwrap_or(f64::from(x))
}

fn read_rope_scaling(
    keys: &Keys<'_>,
    rope_freqs: Option<&[f32]>,
    rope_theta: f32,
    head_dim: usize,
) -> Result<Option<RopeScaling>, ImportError> {
    if let Some(freqs) = rope_freqs {
        return fit_llama3_rope(freqs, rope_theta, head_dim)
            .map(Some)
            .ok_or_else(|| ImportError::BadMetadata {
                key: "rope_freqs.weight".into(),
                problem: "does not follow the llama3 RoPE scaling formula (factor, low 1, \
                          high 4, original context 8192); this scaling cannot be written as \
                          a Hugging Face rope_scaling"
                    .into(),
            });
    }
    let kind = keys.str("rope.scaling.type")?;
    let factor = keys.f32("rope.scaling.factor")?;
    match (kind, factor) {
        (None | Some("none"), _) => Ok(None),
        (Some("linear"), Some(f)) if f != 1.0 && f > 0.0 => {
            Ok(Some(RopeScaling::Linear { factor: f }))
        }
        (Some("linear"), _) => Ok(None),
        (Some("yarn"), Some(f)) if f > 0.0 => Ok(Some(RopeScaling::Yarn {
            factor: f,
            original_max_position_embeddings: keys.u64("rope.scaling.original_context_length")?,
            beta_fast: keys.f32("rope.scaling.yarn_beta_fast")?,
            beta_slow: keys.f32("rope.scaling.yarn_beta_slow")?,
            attention_factor: keys.f32("rope.scaling.attn_factor")?,
        })),
        (Some(other), _) => Err(Keys::bad(
            &keys.key("rope.scaling.type"),
            format!("RoPE scaling {other:?} (with this factor) is not supported"),
        )),
    }
}

/// Recovers llama3 RoPE scaling parameters from `rope_freqs` factors: the factor is the
/// largest value; the other parameters are the ones every Llama 3.x release uses, accepted
/// only when they reproduce every factor (relative error below 1e-4).
pub fn fit_llama3_rope(freqs: &[f32], rope_theta: f32, head_dim: usize) -> Option<RopeScaling> {
    if freqs.len() * 2 != head_dim || freqs.is_empty() {
        return None;
    }
    let factor = freqs.iter().copied().fold(f32::MIN, f32::max);
    let (low, high, old_ctx) = (1.0f64, 4.0f64, 8192u64);
    let expected = llama3_rope_factors(f64::from(factor), low, high, old_ctx, rope_theta, head_dim);
    let matches = expected
        .iter()
        .zip(freqs)
        .all(|(&e, &f)| ((e - f64::from(f)) / e).abs() < 1e-4);
    matches.then_some(RopeScaling::Llama3 {
        factor,
        low_freq_factor: low as f32,
        high_freq_factor: high as f32,
        original_max_position_embeddings: old_ctx,
    })
}

/// llama.cpp's `rope_freqs` for llama3 scaling (`LlamaModel.generate_extra_tensors`).
fn llama3_rope_factors(
    factor: f64,
    low: f64,
    high: f64,
    old_ctx: u64,
    base: f32,
    dim: usize,
) -> Vec<f64> {
    let old_ctx = old_ctx as f64;
    let low_wavelen = old_ctx / low;
    let high_wavelen = old_ctx / high;
    (0..dim)
        .step_by(2)
        .map(|i| {
            let freq = 1.0 / f64::from(base).powf(i as f64 / dim as f64);
            let wavelen = 2.0 * std::f64::consts::PI / freq;
            if wavelen < high_wavelen {
                1.0
            } else if wavelen > low_wavelen {
                factor
            } else {
                let smooth = (old_ctx / wavelen - low) / (high - low);
                1.0 / ((1.0 - smooth) / factor + smooth)
            }
        })
        .collect()
}

fn read_gemma3(keys: &Keys<'_>, n_layer: usize) -> Result<Gemma3Params, ImportError> {
    let sliding_window = keys.u64("attention.sliding_window")?.filter(|&w| w > 0);
    let pattern_key = keys.key("attention.sliding_window_pattern");
    let (is_sliding, pattern) = match sliding_window {
        None => (vec![false; n_layer], None),
        Some(_) => match keys.metadata.get(&pattern_key) {
            None => (
                swa_pattern(GEMMA3_DEFAULT_SWA_PATTERN, n_layer),
                Some(GEMMA3_DEFAULT_SWA_PATTERN),
            ),
            Some(v) => {
                if let Some(n) = v.as_u64() {
                    let n = usize::try_from(n).unwrap_or(0);
                    (swa_pattern(n, n_layer), (n > 0).then_some(n))
                } else if let Some(ArrayData::Bool(flags)) = v.as_array().map(|a| a.data()) {
                    if flags.len() != n_layer {
                        return Err(Keys::bad(
                            &pattern_key,
                            format!("has {} entries for {n_layer} layers", flags.len()),
                        ));
                    }
                    (flags.clone(), swa_period(flags))
                } else {
                    return Err(Keys::bad(
                        &pattern_key,
                        "is neither a number nor a bool array",
                    ));
                }
            }
        },
    };
    Ok(Gemma3Params {
        sliding_window,
        is_sliding,
        pattern,
        rope_local_base_freq: keys
            .f32("rope.freq_base_swa")?
            .unwrap_or(GEMMA3_DEFAULT_LOCAL_ROPE_BASE),
        final_logit_softcapping: keys.f32("final_logit_softcapping")?.filter(|&x| x != 0.0),
        attn_logit_softcapping: keys.f32("attn_logit_softcapping")?.filter(|&x| x != 0.0),
    })
}

/// llama.cpp's `set_swa_pattern(n, dense_first = false)`: layer `i` slides unless it is the
/// last of each group of `n` (`n == 0`: every layer slides).
fn swa_pattern(n: usize, n_layer: usize) -> Vec<bool> {
    (0..n_layer).map(|i| swa_slides(n, i)).collect()
}

/// Whether layer `i` slides under [`swa_pattern`]`(n, _)`.
fn swa_slides(n: usize, i: usize) -> bool {
    n == 0 || i % n < n - 1
}

/// The period `p` (at most the layer count) with `swa_pattern(p, flags.len()) == flags`, if
/// any. Under such a pattern the first full-attention layer is layer `p - 1`, so that is the
/// only candidate: one pass over the flags.
fn swa_period(flags: &[bool]) -> Option<usize> {
    let period = flags.iter().position(|&sliding| !sliding)? + 1;
    flags
        .iter()
        .enumerate()
        .all(|(i, &sliding)| sliding == swa_slides(period, i))
        .then_some(period)
}

/// Checks `block_count` against the `blk.N` tensors: when the file has any, the highest `N`
/// must be `block_count - 1` (per-layer tables are sized by `block_count`, so a value the
/// tensors do not back is refused here rather than allocated).
fn check_block_count(file: &GgufFile, keys: &Keys<'_>, n_layer: usize) -> Result<(), ImportError> {
    let highest = file
        .tensors
        .iter()
        .filter_map(|t| {
            let (index, _) = t.name.strip_prefix("blk.")?.split_once('.')?;
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            index.parse::<u64>().ok()
        })
        .max();
    match highest {
        Some(h) if h.checked_add(1) != Some(n_layer as u64) => Err(Keys::bad(
            &keys.key("block_count"),
            format!(
                "is {n_layer} but the tensors are for layers 0..={h}; the metadata does not \
                 describe these tensors"
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vazhi_gguf::{read_bytes, write_gguf, Array, GgmlType, Limits, TensorData};

    fn gguf(metadata: Metadata, tensors: &[(&str, Vec<u64>)]) -> GgufFile {
        let datas: Vec<Vec<u8>> = tensors
            .iter()
            .map(|(_, dims)| vec![0u8; 4 * dims.iter().product::<u64>() as usize])
            .collect();
        let list: Vec<TensorData<'_>> = tensors
            .iter()
            .zip(&datas)
            .map(|((name, dims), data)| TensorData {
                name,
                dims,
                ggml_type: GgmlType::F32,
                data,
            })
            .collect();
        let mut bytes = Vec::new();
        write_gguf(&mut bytes, &metadata, &list).expect("write");
        read_bytes(&bytes, &Limits::default()).expect("read")
    }

    fn gemma_metadata() -> Metadata {
        let mut m = Metadata::new();
        m.insert("general.architecture", "gemma3");
        m.insert("gemma3.block_count", 18u32);
        m.insert("gemma3.embedding_length", 640u32);
        m.insert("gemma3.feed_forward_length", 2048u32);
        m.insert("gemma3.attention.head_count", 4u32);
        m.insert("gemma3.attention.head_count_kv", 1u32);
        m.insert("gemma3.attention.key_length", 256u32);
        m.insert("gemma3.attention.value_length", 256u32);
        m.insert("gemma3.attention.layer_norm_rms_epsilon", 1e-6f32);
        m.insert("gemma3.rope.freq_base", 1_000_000f32);
        m.insert("gemma3.attention.sliding_window", 512u32);
        m.insert("gemma3.context_length", 32768u32);
        m.insert("tokenizer.ggml.tokens", Array::from(vec!["a", "b", "c"]));
        m.insert("tokenizer.ggml.bos_token_id", 2u32);
        m.insert("tokenizer.ggml.eos_token_id", 1u32);
        m.insert("tokenizer.ggml.padding_token_id", 0u32);
        m
    }

    #[test]
    fn gemma3_config_matches_the_real_270m_config() {
        let file = gguf(gemma_metadata(), &[("token_embd.weight", vec![640, 3])]);
        let params = ModelParams::from_gguf(&file, Arch::Gemma3, None).expect("params");
        let c = params.config_json();
        // Values from google/gemma-3-270m config.json.
        assert_eq!(c["architectures"], json!(["Gemma3ForCausalLM"]));
        assert_eq!(c["model_type"], json!("gemma3_text"));
        assert_eq!(c["rms_norm_eps"], json!(1e-6));
        assert_eq!(c["rope_theta"], json!(1_000_000.0));
        assert_eq!(c["rope_local_base_freq"], json!(10_000.0));
        assert_eq!(c["query_pre_attn_scalar"], json!(256));
        assert_eq!(c["sliding_window"], json!(512));
        assert_eq!(c["_sliding_window_pattern"], json!(6));
        assert_eq!(c["hidden_activation"], json!("gelu_pytorch_tanh"));
        assert_eq!(c["final_logit_softcapping"], Json::Null);
        assert_eq!(c["attn_logit_softcapping"], Json::Null);
        assert_eq!(c["rope_scaling"], Json::Null);
        assert_eq!(c["tie_word_embeddings"], json!(true));
        assert_eq!(c["vocab_size"], json!(3));
        let types = c["layer_types"].as_array().expect("layer_types");
        assert_eq!(types.len(), 18);
        for (i, t) in types.iter().enumerate() {
            let want = if (i + 1) % 6 == 0 {
                "full_attention"
            } else {
                "sliding_attention"
            };
            assert_eq!(t, want, "layer {i}");
        }
        let g = params.generation_config_json(&[106]);
        assert_eq!(g["eos_token_id"], json!([1, 106]));
        assert_eq!(g["bos_token_id"], json!(2));
    }

    #[test]
    fn gemma3_bool_array_pattern_and_softcap() {
        let mut m = gemma_metadata();
        m.insert("gemma3.block_count", 4u32);
        m.insert(
            "gemma3.attention.sliding_window_pattern",
            Array::from(vec![true, false, true, false]),
        );
        m.insert("gemma3.final_logit_softcapping", 30f32);
        m.insert("gemma3.rope.freq_base_swa", 5000f32);
        let file = gguf(m, &[("token_embd.weight", vec![640, 3])]);
        let params = ModelParams::from_gguf(&file, Arch::Gemma3, None).expect("params");
        let c = params.config_json();
        assert_eq!(
            c["layer_types"],
            json!([
                "sliding_attention",
                "full_attention",
                "sliding_attention",
                "full_attention"
            ])
        );
        assert_eq!(c["_sliding_window_pattern"], json!(2));
        assert_eq!(c["final_logit_softcapping"], json!(30.0));
        assert_eq!(c["rope_local_base_freq"], json!(5000.0));
    }

    #[test]
    fn llama_config_and_bad_metadata() {
        let mut m = Metadata::new();
        m.insert("llama.block_count", 30u32);
        m.insert("llama.embedding_length", 576u32);
        m.insert("llama.feed_forward_length", 1536u32);
        m.insert("llama.attention.head_count", 9u32);
        m.insert("llama.attention.head_count_kv", 3u32);
        m.insert("llama.attention.layer_norm_rms_epsilon", 1e-5f32);
        m.insert("llama.rope.freq_base", 100_000f32);
        m.insert("llama.context_length", 8192u32);
        m.insert("llama.rope.dimension_count", 64u32);
        let file = gguf(
            m.clone(),
            &[
                ("token_embd.weight", vec![576, 4]),
                ("output.weight", vec![576, 4]),
            ],
        );
        let params = ModelParams::from_gguf(&file, Arch::Llama, None).expect("params");
        assert_eq!(params.head_dim, 64);
        assert!(!params.tie_word_embeddings);
        let c = params.config_json();
        assert_eq!(c["rms_norm_eps"], json!(1e-5));
        assert_eq!(c["hidden_act"], json!("silu"));
        assert_eq!(c["num_key_value_heads"], json!(3));
        assert_eq!(c["bos_token_id"], Json::Null);

        let mut bad = m.clone();
        bad.insert("llama.attention.head_count_kv", 4u32);
        let file = gguf(bad, &[("token_embd.weight", vec![576, 4])]);
        let err = ModelParams::from_gguf(&file, Arch::Llama, None).expect_err("4 ∤ 9");
        assert!(err.to_string().contains("head_count_kv"), "{err}");

        let mut missing = m;
        missing.remove("llama.attention.layer_norm_rms_epsilon");
        let file = gguf(missing, &[("token_embd.weight", vec![576, 4])]);
        let err = ModelParams::from_gguf(&file, Arch::Llama, None).expect_err("no eps");
        assert!(err.to_string().contains("layer_norm_rms_epsilon"), "{err}");
    }

    #[test]
    fn crafted_layer_and_head_counts_are_metadata_errors() {
        let bad_key = |m: Metadata, tensors: &[(&str, Vec<u64>)], key: &str| {
            let file = gguf(m, tensors);
            match ModelParams::from_gguf(&file, Arch::Gemma3, None) {
                Err(ImportError::BadMetadata { key: k, .. }) => assert_eq!(k, key),
                other => panic!("expected bad {key}, got {other:?}"),
            }
        };
        let embd = [("token_embd.weight", vec![640, 3])];
        // Used to size `vec![false; block_count]` and the sliding pattern.
        for count in [1u64 << 40, u64::MAX] {
            let mut m = gemma_metadata();
            m.insert("gemma3.block_count", count);
            bad_key(m, &embd, "gemma3.block_count");
        }
        // block_count must match the blk.N tensors when there are any.
        let mut m = gemma_metadata();
        m.insert("gemma3.block_count", MAX_LAYERS as u32);
        bad_key(
            m,
            &[embd[0].clone(), ("blk.1.attn_norm.weight", vec![640])],
            "gemma3.block_count",
        );
        // 6 × 6148914691236517206 wraps to 4.
        let mut m = gemma_metadata();
        m.insert("gemma3.attention.head_count", 6u32);
        m.insert("gemma3.attention.head_count_kv", 6u32);
        m.insert("gemma3.attention.key_length", 6_148_914_691_236_517_206u64);
        m.insert(
            "gemma3.attention.value_length",
            6_148_914_691_236_517_206u64,
        );
        bad_key(m, &embd, "gemma3.attention.key_length");
        // Bounded separately, too large together.
        let mut m = gemma_metadata();
        m.insert("gemma3.attention.head_count", 1024u32);
        m.insert("gemma3.attention.head_count_kv", 1024u32);
        m.insert("gemma3.attention.key_length", 4096u32);
        m.insert("gemma3.attention.value_length", 4096u32);
        bad_key(m, &embd, "gemma3.attention.key_length");
        let mut m = gemma_metadata();
        m.insert("gemma3.embedding_length", 1u64 << 40);
        bad_key(m, &embd, "gemma3.embedding_length");

        // The most layers accepted, with a per-layer pattern: read in one pass (the period
        // search used to take layers² steps).
        let mut m = gemma_metadata();
        m.insert("gemma3.block_count", MAX_LAYERS as u32);
        m.insert(
            "gemma3.attention.sliding_window_pattern",
            Array::from(vec![true; MAX_LAYERS]),
        );
        let file = gguf(m, &embd);
        let params = ModelParams::from_gguf(&file, Arch::Gemma3, None).expect("params");
        let g = params.gemma3.expect("gemma3");
        assert_eq!((g.is_sliding.len(), g.pattern), (MAX_LAYERS, None));
    }

    #[test]
    fn sliding_period_matches_the_exhaustive_search() {
        for n_layer in 1..=13 {
            for n in 0..=n_layer + 1 {
                let flags = swa_pattern(n, n_layer);
                let exhaustive = (1..=n_layer).find(|&p| swa_pattern(p, n_layer) == flags);
                assert_eq!(swa_period(&flags), exhaustive, "n {n}, layers {n_layer}");
            }
        }
        let mut odd = swa_pattern(6, 18);
        odd[7] = false;
        assert_eq!(swa_period(&odd), None);
        assert_eq!(swa_period(&swa_pattern(6, MAX_LAYERS)), Some(6));
    }

    #[test]
    fn llama3_rope_factors_are_recovered() {
        let freqs: Vec<f32> = llama3_rope_factors(32.0, 1.0, 4.0, 8192, 500_000.0, 64)
            .into_iter()
            .map(|x| x as f32)
            .collect();
        assert!(freqs.iter().any(|&f| f > 1.0 && f < 32.0), "some smoothing");
        let fitted = fit_llama3_rope(&freqs, 500_000.0, 64).expect("fits");
        assert_eq!(
            fitted,
            RopeScaling::Llama3 {
                factor: 32.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 8192
            }
        );
        let mut off = freqs.clone();
        off[10] *= 1.5;
        assert_eq!(fit_llama3_rope(&off, 500_000.0, 64), None);
        assert_eq!(fit_llama3_rope(&freqs, 500_000.0, 128), None);
    }

    #[test]
    fn decimals_read_as_written() {
        assert_eq!(decimal(1e-5), 1e-5);
        assert_eq!(decimal(1e-6), 1e-6);
        assert_eq!(decimal(100_000.0), 100_000.0);
        assert_eq!(
            swa_pattern(6, 7),
            [true, true, true, true, true, false, true]
        );
        assert_eq!(swa_pattern(0, 2), [true, true]);
    }
}
