//! The shipping path of a trained adapter, as one call: merge into the base → convert to F16
//! GGUF → quantize to Q4_K_M → `eval` the quantized file against the F16 one. `train
//! --gguf-check` runs it on checkpoints while training goes on, and `preflight` at its end,
//! so a model that quantizes badly is caught early and by the same code that ships it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::convert::{self, ConvertOptions, OutType};
use crate::eval::{self, EvalOptions, EvalReport, GateThresholds};
use crate::hf;
use crate::merge::{self, MergeOptions};
use crate::quantize::{self, QuantType, QuantizeOptions};

/// What to build and how to judge it.
#[derive(Debug, Clone)]
pub struct QuantizedCheckOptions {
    /// The full-precision base the adapters were trained on.
    pub base: PathBuf,
    /// PEFT adapters, applied in order.
    pub adapters: Vec<PathBuf>,
    /// Working directory (`merged/`, `model-f16.gguf`, `model-q4_k_m.gguf`, reports); replaced.
    pub work: PathBuf,
    /// Eval sets.
    pub sets: Vec<PathBuf>,
    /// Only the first N prompts and texts of each set (quick checks during training).
    pub limit: Option<usize>,
    /// The quantization preset (Q4_K_M unless told).
    pub qtype: QuantType,
    /// The gate's relative thresholds.
    pub thresholds: GateThresholds,
    /// llama.cpp threads for eval (`None`: physical cores).
    pub threads: Option<usize>,
}

impl QuantizedCheckOptions {
    /// Q4_K_M, the default thresholds, whole sets.
    pub fn new(
        base: PathBuf,
        adapters: Vec<PathBuf>,
        work: PathBuf,
        sets: Vec<PathBuf>,
    ) -> QuantizedCheckOptions {
        QuantizedCheckOptions {
            base,
            adapters,
            work,
            sets,
            limit: None,
            qtype: QuantType::parse("Q4_K_M").expect("Q4_K_M is a known preset"),
            thresholds: GateThresholds::default(),
            threads: None,
        }
    }
}

/// What the check built and found.
#[derive(Debug, Clone, Serialize)]
pub struct QuantizedCheck {
    /// The merged checkpoint.
    pub merged: PathBuf,
    /// The F16 GGUF (the reference).
    pub f16: PathBuf,
    /// The quantized GGUF.
    pub quantized: PathBuf,
    /// Its size in bytes.
    pub quantized_bytes: u64,
    /// The evaluation (its `passed()` is the verdict).
    pub eval: EvalReport,
    /// Seconds for the whole check.
    pub seconds: f64,
}

impl QuantizedCheck {
    /// Whether the quantized model passed the gate.
    pub fn passed(&self) -> bool {
        self.eval.passed()
    }

    /// The failed checks, one phrase each.
    pub fn failures(&self) -> Vec<String> {
        self.eval
            .failures()
            .iter()
            .map(|c| {
                format!(
                    "{}{} {:.4} {} {:.4}",
                    c.set
                        .as_ref()
                        .map_or_else(String::new, |s| format!("{s}: ")),
                    c.name,
                    c.value,
                    c.relation(),
                    c.limit
                )
            })
            .collect()
    }

    /// Headline figures: mean KL, top-1 agreement and perplexity ratio against F16.
    pub fn headline(&self) -> String {
        match &self.eval.divergence {
            Some(d) => format!(
                "KL {:.4}, top-1 {:.3}, ppl ×{:.3}",
                d.mean_kl(),
                d.top1_agreement(),
                d.perplexity_ratio()
            ),
            None => "no divergence measured".to_owned(),
        }
    }
}

/// Which step of the check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuantizedCheckError {
    /// Merging failed.
    #[error("merge: {0}")]
    Merge(#[from] merge::MergeError),
    /// Conversion failed.
    #[error("convert: {0}")]
    Convert(#[from] convert::ConvertError),
    /// Quantization failed.
    #[error("quantize: {0}")]
    Quantize(#[from] quantize::QuantizeError),
    /// Evaluation could not run.
    #[error("eval: {0}")]
    Eval(#[from] eval::EvalError),
    /// The working directory could not be prepared.
    #[error(transparent)]
    Hf(#[from] hf::HfError),
}

/// Runs merge → convert → quantize → eval; see the module docs.
pub fn quantized_check(
    opts: &QuantizedCheckOptions,
) -> Result<QuantizedCheck, QuantizedCheckError> {
    let _span = tracing::info_span!("quantized_check", adapters = opts.adapters.len()).entered();
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&opts.work).map_err(|source| hf::HfError::Io {
        path: opts.work.clone(),
        source,
    })?;
    let merged = opts.work.join("merged");
    merge::merge(
        &MergeOptions {
            base: opts.base.clone(),
            adapters: opts.adapters.clone(),
            out: merged.clone(),
            overwrite: true,
            out_dtype: None,
        },
        &|_| {},
    )?;
    let f16 = opts.work.join("model-f16.gguf");
    convert::convert(
        &ConvertOptions {
            hf_dir: merged.clone(),
            out: f16.clone(),
            out_type: OutType::F16,
            overwrite: true,
            threads: 0,
        },
        &|_, _| {},
    )?;
    let quantized = opts.work.join(format!(
        "model-{}.gguf",
        opts.qtype.name.to_ascii_lowercase()
    ));
    let report = quantize::quantize(&QuantizeOptions {
        input: f16.clone(),
        output: quantized.clone(),
        qtype: opts.qtype,
        imatrix: None,
        threads: 0,
        overwrite: true,
        allow_requantize: false,
    })?;
    let mut eval_opts = EvalOptions::new(quantized.clone(), opts.sets.clone());
    eval_opts.reference = Some(f16.clone());
    eval_opts.limit = opts.limit;
    eval_opts.threads = opts.threads;
    eval_opts.thresholds = opts.thresholds.clone();
    let eval = eval::evaluate(&eval_opts, &|_| {})?;
    let markdown = opts.work.join("eval.md");
    hf::write_atomically(&markdown, |w| {
        std::io::Write::write_all(w, eval.to_markdown().as_bytes())
    })?;
    Ok(QuantizedCheck {
        merged,
        f16,
        quantized,
        quantized_bytes: report.output_bytes,
        eval,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The default eval set bundled into the binary (English prompts and held-out texts), written
/// to `dir` so a check runs without the repository's `assets/`.
pub fn bundled_eval_set(dir: &Path) -> Result<PathBuf, hf::HfError> {
    const EN: &str = include_str!("../../../assets/eval/en.jsonl");
    std::fs::create_dir_all(dir).map_err(|source| hf::HfError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let path = dir.join("en.jsonl");
    hf::write_atomically(&path, |w| std::io::Write::write_all(w, EN.as_bytes()))?;
    Ok(path)
}
