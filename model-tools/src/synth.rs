//! Synthetic checkpoints for tests and benchmarks: a llama-shaped model with random weights
//! at any size (borrowing a real tokenizer), and deliberately damaged copies of a real one.
//!
//! The real test models have widths that are not multiples of 256, so llama.cpp falls back
//! from k-quants on many of their tensors; a synthetic model with 256-multiple widths makes
//! `quantize` write real Q4_K blocks. The damaged copies — every weight shuffled, or one
//! layer scaled — are the planted faults the `eval` gate must catch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::hf::{self, encode_f32, Checkpoint, Dtype, HfError, PlannedTensor, SafetensorsWriter};
use crate::hf::{
    CHAT_TEMPLATE_JINJA, CONFIG_JSON, GENERATION_CONFIG_JSON, MODEL_SAFETENSORS,
    SPECIAL_TOKENS_MAP_JSON, TOKENIZER_CONFIG_JSON, TOKENIZER_JSON, TOKENIZER_MODEL,
};

/// Tokenizer and config side files copied from a donor checkpoint.
const SIDE_FILES: &[&str] = &[
    TOKENIZER_JSON,
    TOKENIZER_CONFIG_JSON,
    SPECIAL_TOKENS_MAP_JSON,
    TOKENIZER_MODEL,
    GENERATION_CONFIG_JSON,
    CHAT_TEMPLATE_JINJA,
];

/// Which Hugging Face architecture a synthetic model takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthArch {
    /// `LlamaForCausalLM`.
    Llama,
    /// `Qwen2ForCausalLM`: biases on the q/k/v projections.
    Qwen2,
    /// `Qwen3ForCausalLM`: RMS norms on q and k per head.
    Qwen3,
}

impl SynthArch {
    fn names(self) -> (&'static str, &'static str) {
        match self {
            SynthArch::Llama => ("LlamaForCausalLM", "llama"),
            SynthArch::Qwen2 => ("Qwen2ForCausalLM", "qwen2"),
            SynthArch::Qwen3 => ("Qwen3ForCausalLM", "qwen3"),
        }
    }
}

/// The shape of a synthetic model.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// Architecture.
    pub arch: SynthArch,
    /// Output directory (must not exist).
    pub out: PathBuf,
    /// A checkpoint whose tokenizer files (and vocabulary size) are borrowed.
    pub tokenizer_from: PathBuf,
    /// Hidden size.
    pub hidden: usize,
    /// Feed-forward size.
    pub intermediate: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Weight dtype (F32, F16 or BF16).
    pub dtype: Dtype,
    /// Random seed.
    pub seed: u64,
}

/// Why a synthetic or damaged checkpoint could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// A file could not be read or written.
    #[error(transparent)]
    Hf(#[from] HfError),
    /// The request is inconsistent.
    #[error("{0}")]
    Invalid(String),
}

/// Writes a checkpoint with random weights (N(0, 0.02), norms 1, biases 0.01).
pub fn synth_model(opts: &SynthOptions) -> Result<(), SynthError> {
    let _span = tracing::info_span!("synth_model").entered();
    if [
        opts.hidden,
        opts.intermediate,
        opts.layers,
        opts.heads,
        opts.kv_heads,
    ]
    .contains(&0)
        || !opts.hidden.is_multiple_of(opts.heads)
        || !opts.heads.is_multiple_of(opts.kv_heads)
    {
        return Err(SynthError::Invalid(format!(
            "sizes must be positive, hidden {} must divide into {} heads, and heads into {} kv heads",
            opts.hidden, opts.heads, opts.kv_heads
        )));
    }
    let donor = hf::read_json(&opts.tokenizer_from.join(CONFIG_JSON))?;
    let vocab = donor
        .get("vocab_size")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| SynthError::Invalid("donor config.json has no vocab_size".into()))?
        as usize;
    let head_dim = opts.hidden / opts.heads;
    let kv = opts.kv_heads * head_dim;
    let mut plan = vec![tensor(
        "model.embed_tokens.weight",
        &opts.dtype,
        &[vocab, opts.hidden],
    )];
    for l in 0..opts.layers {
        let p = format!("model.layers.{l}");
        plan.push(tensor(
            &format!("{p}.input_layernorm.weight"),
            &opts.dtype,
            &[opts.hidden],
        ));
        plan.push(tensor(
            &format!("{p}.self_attn.q_proj.weight"),
            &opts.dtype,
            &[opts.hidden, opts.hidden],
        ));
        plan.push(tensor(
            &format!("{p}.self_attn.k_proj.weight"),
            &opts.dtype,
            &[kv, opts.hidden],
        ));
        plan.push(tensor(
            &format!("{p}.self_attn.v_proj.weight"),
            &opts.dtype,
            &[kv, opts.hidden],
        ));
        if opts.arch == SynthArch::Qwen2 {
            plan.push(tensor(
                &format!("{p}.self_attn.q_proj.bias"),
                &opts.dtype,
                &[opts.hidden],
            ));
            plan.push(tensor(
                &format!("{p}.self_attn.k_proj.bias"),
                &opts.dtype,
                &[kv],
            ));
            plan.push(tensor(
                &format!("{p}.self_attn.v_proj.bias"),
                &opts.dtype,
                &[kv],
            ));
        }
        if opts.arch == SynthArch::Qwen3 {
            plan.push(tensor(
                &format!("{p}.self_attn.q_norm.weight"),
                &opts.dtype,
                &[head_dim],
            ));
            plan.push(tensor(
                &format!("{p}.self_attn.k_norm.weight"),
                &opts.dtype,
                &[head_dim],
            ));
        }
        plan.push(tensor(
            &format!("{p}.self_attn.o_proj.weight"),
            &opts.dtype,
            &[opts.hidden, opts.hidden],
        ));
        plan.push(tensor(
            &format!("{p}.post_attention_layernorm.weight"),
            &opts.dtype,
            &[opts.hidden],
        ));
        plan.push(tensor(
            &format!("{p}.mlp.gate_proj.weight"),
            &opts.dtype,
            &[opts.intermediate, opts.hidden],
        ));
        plan.push(tensor(
            &format!("{p}.mlp.up_proj.weight"),
            &opts.dtype,
            &[opts.intermediate, opts.hidden],
        ));
        plan.push(tensor(
            &format!("{p}.mlp.down_proj.weight"),
            &opts.dtype,
            &[opts.hidden, opts.intermediate],
        ));
    }
    plan.push(tensor("model.norm.weight", &opts.dtype, &[opts.hidden]));

    let staging = stage_dir(&opts.out)?;
    let result = (|| {
        let mut config = donor.clone();
        let set = |c: &mut serde_json::Value, k: &str, v: serde_json::Value| {
            if let Some(o) = c.as_object_mut() {
                o.insert(k.to_owned(), v);
            }
        };
        let (class, model_type) = opts.arch.names();
        set(&mut config, "architectures", serde_json::json!([class]));
        set(&mut config, "model_type", model_type.into());
        set(&mut config, "hidden_size", opts.hidden.into());
        set(&mut config, "intermediate_size", opts.intermediate.into());
        set(&mut config, "num_hidden_layers", opts.layers.into());
        set(&mut config, "num_attention_heads", opts.heads.into());
        set(&mut config, "num_key_value_heads", opts.kv_heads.into());
        set(&mut config, "head_dim", head_dim.into());
        set(&mut config, "tie_word_embeddings", true.into());
        set(&mut config, "torch_dtype", dtype_name(&opts.dtype).into());
        hf::write_json(&staging.join(CONFIG_JSON), &config)?;
        copy_side_files(&opts.tokenizer_from, &staging)?;
        let mut rng = fastrand::Rng::with_seed(opts.seed);
        let mut writer = SafetensorsWriter::create(
            &staging.join(MODEL_SAFETENSORS),
            &plan,
            &BTreeMap::from([("format".to_owned(), "pt".to_owned())]),
        )?;
        for t in &plan {
            let n: usize = t.shape.iter().product();
            let values: Vec<f32> = if t.name.ends_with(".bias") {
                vec![0.01; n]
            } else if t.shape.len() == 1 {
                vec![1.0; n]
            } else {
                (0..n).map(|_| normal(&mut rng) * 0.02).collect()
            };
            writer.write(&encode_f32(&values, &t.dtype)?)?;
        }
        writer.finish()
    })();
    finish_dir(&staging, &opts.out, result.map_err(SynthError::from))
}

/// Writes a PEFT LoRA adapter with random factors (N(0, 0.02)) for every 2-D weight of the
/// checkpoint at `base` whose module name ends in one of `targets` (`q_proj`, `down_proj`…).
/// Returns the number of modules adapted.
pub fn synth_lora(
    base: &Path,
    out: &Path,
    targets: &[&str],
    rank: usize,
    alpha: f64,
    seed: u64,
) -> Result<usize, SynthError> {
    let _span = tracing::info_span!("synth_lora").entered();
    let checkpoint = Checkpoint::open(base)?;
    let mut plan = Vec::new();
    for name in checkpoint.names() {
        let Some(module) = name.strip_suffix(".weight") else {
            continue;
        };
        let tensor = checkpoint.tensor(name)?;
        let targeted = targets
            .iter()
            .any(|t| module.rsplit('.').next() == Some(*t));
        if tensor.shape.len() != 2 || !targeted {
            continue;
        }
        let (rows, cols) = (tensor.shape[0], tensor.shape[1]);
        let key = format!("base_model.model.{module}");
        plan.push(tensor_f32(&format!("{key}.lora_A.weight"), &[rank, cols]));
        plan.push(tensor_f32(&format!("{key}.lora_B.weight"), &[rows, rank]));
    }
    if plan.is_empty() {
        return Err(SynthError::Invalid(format!(
            "no 2-D weight matches {targets:?}"
        )));
    }
    let staging = stage_dir(out)?;
    let result = (|| {
        let config = serde_json::json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "r": rank,
            "lora_alpha": alpha,
            "target_modules": targets,
            "bias": "none",
            "fan_in_fan_out": false,
            "use_rslora": false,
            "base_model_name_or_path": base.to_string_lossy(),
        });
        hf::write_json(&staging.join("adapter_config.json"), &config)?;
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut writer = SafetensorsWriter::create(
            &staging.join("adapter_model.safetensors"),
            &plan,
            &BTreeMap::new(),
        )?;
        for t in &plan {
            let n: usize = t.shape.iter().product();
            let values: Vec<f32> = (0..n).map(|_| normal(&mut rng) * 0.02).collect();
            writer.write(&encode_f32(&values, &Dtype::F32)?)?;
        }
        writer.finish()
    })();
    finish_dir(&staging, out, result.map_err(SynthError::from))?;
    Ok(plan.len() / 2)
}

fn tensor_f32(name: &str, shape: &[usize]) -> PlannedTensor {
    tensor(name, &Dtype::F32, shape)
}

/// A deliberate fault planted in a copy of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Damage {
    /// Every element of every 2-D weight shuffled within its tensor: shapes and value
    /// distributions are intact, the model is gibberish.
    ShuffleAll {
        /// Random seed.
        seed: u64,
    },
    /// One layer's 2-D weights multiplied by a factor: subtle, the model still talks.
    ScaleLayer {
        /// The layer index (`.layers.N.` in tensor names).
        layer: usize,
        /// The factor.
        factor: f32,
    },
}

/// Copies the checkpoint at `src` to `out` with `damage` applied (same dtypes and shapes).
pub fn damage_copy(src: &Path, out: &Path, damage: Damage) -> Result<usize, SynthError> {
    let _span = tracing::info_span!("damage_copy").entered();
    let checkpoint = Checkpoint::open(src)?;
    let names: Vec<String> = checkpoint.names().into_iter().map(str::to_owned).collect();
    let plan: Vec<PlannedTensor> = names
        .iter()
        .map(|n| {
            checkpoint.tensor(n).map(|t| PlannedTensor {
                name: n.clone(),
                dtype: t.dtype.clone(),
                shape: t.shape.clone(),
            })
        })
        .collect::<Result<_, _>>()?;
    let staging = stage_dir(out)?;
    let mut touched = 0;
    let result = (|| {
        copy_side_files(src, &staging)?;
        std::fs::copy(src.join(CONFIG_JSON), staging.join(CONFIG_JSON)).map_err(|e| {
            HfError::Io {
                path: src.join(CONFIG_JSON),
                source: e,
            }
        })?;
        let mut writer = SafetensorsWriter::create(
            &staging.join(MODEL_SAFETENSORS),
            &plan,
            &checkpoint.metadata(),
        )?;
        let mut rng = match damage {
            Damage::ShuffleAll { seed } => fastrand::Rng::with_seed(seed),
            Damage::ScaleLayer { .. } => fastrand::Rng::with_seed(0),
        };
        for name in &names {
            let tensor = checkpoint.tensor(name)?;
            let hit = tensor.shape.len() == 2
                && match damage {
                    Damage::ShuffleAll { .. } => true,
                    Damage::ScaleLayer { layer, .. } => name.contains(&format!(".layers.{layer}.")),
                };
            if !hit {
                writer.write(tensor.data)?;
                continue;
            }
            touched += 1;
            let mut values = tensor.to_f32()?;
            match damage {
                Damage::ShuffleAll { .. } => rng.shuffle(&mut values),
                Damage::ScaleLayer { factor, .. } => values.iter_mut().for_each(|v| *v *= factor),
            }
            writer.write(&encode_f32(&values, &tensor.dtype)?)?;
            checkpoint.release(name);
        }
        writer.finish()
    })();
    finish_dir(&staging, out, result.map_err(SynthError::from))?;
    if touched == 0 {
        return Err(SynthError::Invalid(format!("{damage:?} matched no tensor")));
    }
    Ok(touched)
}

fn tensor(name: &str, dtype: &Dtype, shape: &[usize]) -> PlannedTensor {
    PlannedTensor {
        name: name.to_owned(),
        dtype: dtype.clone(),
        shape: shape.to_vec(),
    }
}

fn dtype_name(dtype: &Dtype) -> &'static str {
    match dtype {
        Dtype::F16 => "float16",
        Dtype::BF16 => "bfloat16",
        _ => "float32",
    }
}

/// A standard normal sample (Box–Muller).
fn normal(rng: &mut fastrand::Rng) -> f32 {
    let u1 = rng.f32().max(f32::MIN_POSITIVE);
    let u2 = rng.f32();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

fn copy_side_files(from: &Path, to: &Path) -> Result<(), HfError> {
    for name in SIDE_FILES {
        let src = from.join(name);
        if src.exists() {
            std::fs::copy(&src, to.join(name))
                .map_err(|source| HfError::Io { path: src, source })?;
        }
    }
    Ok(())
}

fn stage_dir(out: &Path) -> Result<PathBuf, SynthError> {
    if out.exists() {
        return Err(SynthError::Invalid(format!(
            "{} already exists",
            out.display()
        )));
    }
    let staging = hf::temp_sibling(out);
    std::fs::create_dir_all(&staging).map_err(|source| HfError::Io {
        path: staging.clone(),
        source,
    })?;
    Ok(staging)
}

fn finish_dir(
    staging: &Path,
    out: &Path,
    result: Result<(), SynthError>,
) -> Result<(), SynthError> {
    match result.and_then(|()| {
        std::fs::rename(staging, out).map_err(|source| {
            SynthError::Hf(HfError::Io {
                path: out.to_owned(),
                source,
            })
        })
    }) {
        Ok(()) => Ok(()),
        Err(e) => {
            hf::remove_temp_dir(staging);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn donor(dir: &Path) -> PathBuf {
        let donor = dir.join("donor");
        std::fs::create_dir_all(&donor).expect("mkdir");
        std::fs::write(
            donor.join("config.json"),
            r#"{"vocab_size": 512, "rms_norm_eps": 1e-5}"#,
        )
        .expect("config");
        std::fs::write(donor.join("tokenizer.json"), "{}").expect("tokenizer");
        donor
    }

    #[test]
    fn synthetic_model_has_the_asked_shapes_and_damage_changes_only_what_it_says() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("synth");
        let opts = SynthOptions {
            arch: SynthArch::Llama,
            out: out.clone(),
            tokenizer_from: donor(dir.path()),
            hidden: 256,
            intermediate: 512,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            dtype: Dtype::BF16,
            seed: 7,
        };
        synth_model(&opts).expect("synth");
        let c = Checkpoint::open(&out).expect("open");
        assert_eq!(c.len(), 2 + 2 * 9);
        assert_eq!(
            c.tensor("model.layers.1.self_attn.k_proj.weight")
                .expect("k")
                .shape,
            vec![128, 256]
        );
        assert!(out.join("tokenizer.json").exists());
        let config = hf::read_json(&out.join("config.json")).expect("config");
        assert_eq!(config["rms_norm_eps"], 1e-5, "donor settings kept");
        assert!(synth_model(&opts).is_err(), "existing output refused");

        let qwen2 = dir.path().join("qwen2");
        synth_model(&SynthOptions {
            arch: SynthArch::Qwen2,
            out: qwen2.clone(),
            ..opts.clone()
        })
        .expect("qwen2");
        assert!(Checkpoint::open(&qwen2)
            .expect("open")
            .contains("model.layers.0.self_attn.k_proj.bias"));
        let qwen3 = dir.path().join("qwen3");
        synth_model(&SynthOptions {
            arch: SynthArch::Qwen3,
            out: qwen3.clone(),
            ..opts.clone()
        })
        .expect("qwen3");
        let q3 = Checkpoint::open(&qwen3).expect("open");
        assert_eq!(
            q3.tensor("model.layers.1.self_attn.q_norm.weight")
                .expect("q_norm")
                .shape,
            vec![64]
        );
        assert_eq!(
            hf::read_json(&qwen3.join("config.json")).expect("config")["model_type"],
            "qwen3"
        );

        let adapter = dir.path().join("adapter");
        let modules =
            synth_lora(&out, &adapter, &["q_proj", "down_proj"], 4, 8.0, 1).expect("lora");
        assert_eq!(modules, 4);
        let a = Checkpoint::open_file(&adapter.join("adapter_model.safetensors")).expect("open");
        let lora_b = a
            .tensor("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight")
            .expect("B");
        assert_eq!(lora_b.shape, vec![256, 4]);
        let merged = dir.path().join("merged");
        let report = crate::merge::merge(
            &crate::merge::MergeOptions {
                base: out.clone(),
                adapters: vec![adapter],
                out: merged.clone(),
                overwrite: false,
                out_dtype: None,
            },
            &|_| {},
        )
        .expect("the merge accepts a synthetic adapter");
        assert_eq!(report.tensors_merged, 4);

        let scaled = dir.path().join("scaled");
        let touched = damage_copy(
            &out,
            &scaled,
            Damage::ScaleLayer {
                layer: 1,
                factor: 2.0,
            },
        )
        .expect("scale");
        assert_eq!(touched, 7);
        let d = Checkpoint::open(&scaled).expect("open");
        let before = c
            .tensor("model.layers.1.mlp.up_proj.weight")
            .expect("t")
            .to_f32()
            .expect("f32");
        let after = d
            .tensor("model.layers.1.mlp.up_proj.weight")
            .expect("t")
            .to_f32()
            .expect("f32");
        assert!(before.iter().zip(&after).all(|(b, a)| *a == *b * 2.0));
        let same = |name: &str| c.tensor(name).expect("t").data == d.tensor(name).expect("t").data;
        assert!(
            same("model.layers.0.mlp.up_proj.weight")
                && same("model.layers.1.input_layernorm.weight")
        );

        let shuffled = dir.path().join("shuffled");
        damage_copy(&out, &shuffled, Damage::ShuffleAll { seed: 1 }).expect("shuffle");
        let s = Checkpoint::open(&shuffled).expect("open");
        let mut a = c
            .tensor("model.embed_tokens.weight")
            .expect("t")
            .to_f32()
            .expect("f32");
        let mut b = s
            .tensor("model.embed_tokens.weight")
            .expect("t")
            .to_f32()
            .expect("f32");
        assert_ne!(a, b);
        a.sort_by(f32::total_cmp);
        b.sort_by(f32::total_cmp);
        assert_eq!(a, b, "same values, other places");
    }
}
