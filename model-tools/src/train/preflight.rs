//! `model-tools preflight`: the whole training path, tiny, before a real run spends hours —
//! the training Python (`doctor`), a DAPT stage and an SFT stage of a few steps each on a
//! sample of the data (the run's own, or a bundled one), with a checkpoint and answer checks
//! on the way, the full-precision merge between them, then merge → convert → quantize →
//! `eval` of the result. Every step is reported with its time; the first failure stops the
//! run and is the exit status.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::chain::{train_stages, ChainError};
use super::env::{doctor, DoctorReport};
use super::quantized::{bundled_eval_set, quantized_check, QuantizedCheckOptions};
use super::run::{CheckOptions, TrainEvent, TrainOptions};
use crate::data::Stage;
use crate::hf;

const SAMPLE_DAPT: &str = include_str!("../../../assets/train/preflight-dapt.jsonl");
const SAMPLE_SFT: &str = include_str!("../../../assets/train/preflight-sft.jsonl");

/// What to try.
#[derive(Debug, Clone)]
pub struct PreflightOptions {
    /// The Hugging Face base model directory (full precision).
    pub model: PathBuf,
    /// Working directory (replaced).
    pub out: PathBuf,
    /// The training Python.
    pub python: PathBuf,
    /// DAPT data to sample (default: the bundled sample).
    pub dapt_data: Option<PathBuf>,
    /// SFT data to sample (default: the bundled sample).
    pub sft_data: Option<PathBuf>,
    /// Lines taken from each data file.
    pub samples: usize,
    /// Optimizer steps per stage.
    pub steps: u64,
    /// Sequence length.
    pub seq_len: usize,
    /// Sequences per step.
    pub batch_size: u32,
    /// GPUs (more than one: `torchrun`).
    pub gpus: usize,
    /// Eval sets for the checks and the gate (default: the bundled English set).
    pub sets: Vec<PathBuf>,
    /// Language the data should be in.
    pub lang: Option<String>,
}

/// One step of the preflight.
#[derive(Debug, Clone, Serialize)]
pub struct PreflightStep {
    /// What it checked.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Seconds it took.
    pub seconds: f64,
    /// What it found (or why it failed).
    pub detail: String,
}

/// The preflight's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct PreflightReport {
    /// The steps run, in order; the last one failed unless all passed.
    pub steps: Vec<PreflightStep>,
    /// The quantized file it built, when it got that far.
    pub quantized: Option<PathBuf>,
}

impl PreflightReport {
    /// Whether every step passed.
    pub fn passed(&self) -> bool {
        self.steps.iter().all(|s| s.passed)
    }
}

impl std::fmt::Display for PreflightReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for s in &self.steps {
            writeln!(
                f,
                "{} {:<28} {:>7.1} s  {}",
                if s.passed { "ok  " } else { "FAIL" },
                s.name,
                s.seconds,
                s.detail
            )?;
        }
        let total: f64 = self.steps.iter().map(|s| s.seconds).sum();
        write!(
            f,
            "preflight {} in {total:.0} s",
            if self.passed() { "passed" } else { "FAILED" }
        )
    }
}

/// Why the preflight could not run at all (a failing step is a report, not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PreflightError {
    /// The working directory or samples could not be written.
    #[error(transparent)]
    Hf(#[from] hf::HfError),
}

/// Runs the preflight; `on_step` sees each finished step, `on_event` the training events.
pub fn preflight(
    opts: &PreflightOptions,
    on_step: &dyn Fn(&PreflightStep),
    on_event: &dyn Fn(&TrainEvent),
) -> Result<PreflightReport, PreflightError> {
    let _span = tracing::info_span!("preflight").entered();
    let mut report = PreflightReport {
        steps: Vec::new(),
        quantized: None,
    };
    let mut record = |name: &str, started: Instant, result: Result<String, String>| {
        let step = PreflightStep {
            name: name.to_owned(),
            passed: result.is_ok(),
            seconds: started.elapsed().as_secs_f64(),
            detail: result.unwrap_or_else(|e| e),
        };
        on_step(&step);
        let passed = step.passed;
        report.steps.push(step);
        passed
    };

    let started = Instant::now();
    let env = doctor(&opts.python).map_err(|e| e.to_string());
    let env_result = env.and_then(|r| judge_environment(&r, opts.gpus));
    if !record("training python", started, env_result) {
        return Ok(report);
    }

    let started = Instant::now();
    let _ = std::fs::remove_dir_all(&opts.out);
    let data_dir = opts.out.join("data");
    let dapt = sample(
        opts.dapt_data.as_deref(),
        SAMPLE_DAPT,
        opts.samples,
        &data_dir.join("dapt.jsonl"),
    )?;
    let sft = sample(
        opts.sft_data.as_deref(),
        SAMPLE_SFT,
        opts.samples,
        &data_dir.join("sft.jsonl"),
    )?;
    let sets = if opts.sets.is_empty() {
        vec![bundled_eval_set(&opts.out.join("eval"))?]
    } else {
        opts.sets.clone()
    };
    record(
        "sample data",
        started,
        Ok(format!(
            "{} DAPT texts, {} SFT conversations",
            dapt.1, sft.1
        )),
    );

    let started = Instant::now();
    let half = (opts.steps / 2).max(1);
    let template = TrainOptions {
        model: opts.model.clone(),
        data: PathBuf::new(),
        stage: Stage::Dapt,
        out: opts.out.join("train"),
        python: opts.python.clone(),
        seq_len: opts.seq_len,
        lang: opts.lang.clone(),
        backend_args: vec![
            "--max-steps".to_owned(),
            opts.steps.to_string(),
            "--batch-size".to_owned(),
            opts.batch_size.to_string(),
            "--checkpoint-every".to_owned(),
            half.to_string(),
        ],
        resume: false,
        gpus: opts.gpus,
        checks: Some(CheckOptions {
            sets: sets.clone(),
            per_set: 2,
            every: half,
            max_new_tokens: 32,
        }),
        gguf_check: None,
    };
    let chain = train_stages(
        &template,
        &[(Stage::Dapt, dapt.0), (Stage::Sft, sft.0)],
        on_event,
    );
    let trained = match chain {
        Ok(chain) if chain.done() => {
            let problems: Vec<String> = chain
                .stages
                .iter()
                .filter_map(|(stage, r)| {
                    let finite = r.loss.is_some_and(f64::is_finite);
                    let checked = !r.last_checks.is_empty();
                    (r.steps != opts.steps || !finite || !checked).then(|| {
                        format!(
                            "{stage}: {} of {} steps, loss {:?}, {} check answers",
                            r.steps,
                            opts.steps,
                            r.loss,
                            r.last_checks.len()
                        )
                    })
                })
                .collect();
            if problems.is_empty() {
                let losses: Vec<String> = chain
                    .stages
                    .iter()
                    .map(|(stage, r)| {
                        let speed = r
                            .steady_tokens_per_s
                            .map_or_else(String::new, |s| format!(", {s:.0} tokens/s"));
                        format!("{stage} loss {:.3}{speed}", r.loss.unwrap_or(f64::NAN))
                    })
                    .collect();
                Ok((chain, losses.join("; ")))
            } else {
                Err(problems.join("; "))
            }
        }
        Ok(_) => Err("interrupted".to_owned()),
        Err(e @ ChainError::Stage { .. }) | Err(e @ ChainError::Merge { .. }) => Err(e.to_string()),
    };
    let (chain, detail) = match trained {
        Ok((chain, detail)) => (Some(chain), Ok(detail)),
        Err(e) => (None, Err(e)),
    };
    if !record("train dapt → merge → sft", started, detail) {
        return Ok(report);
    }
    let Some(chain) = chain else {
        return Ok(report);
    };

    let started = Instant::now();
    let adapters = chain.adapter.iter().cloned().collect();
    let check =
        QuantizedCheckOptions::new(chain.base.clone(), adapters, opts.out.join("ship"), sets);
    match quantized_check(&check) {
        Ok(check) => {
            report.quantized = Some(check.quantized.clone());
            let detail = format!(
                "{} ({:.1} MiB) vs F16: {}",
                check
                    .quantized
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                check.quantized_bytes as f64 / (1024.0 * 1024.0),
                check.headline()
            );
            let verdict = if check.passed() {
                Ok(detail)
            } else {
                Err(format!(
                    "{detail}; gate failed: {}",
                    check.failures().join("; ")
                ))
            };
            record("merge → convert → quantize → eval", started, verdict);
        }
        Err(e) => {
            record(
                "merge → convert → quantize → eval",
                started,
                Err(e.to_string()),
            );
        }
    }
    Ok(report)
}

/// Whether the environment can run the preflight on `gpus` GPUs.
fn judge_environment(report: &DoctorReport, gpus: usize) -> Result<String, String> {
    if !report.ready() {
        return Err(format!(
            "not ready: {} (run `model-tools setup-train`)",
            report.problems.join("; ")
        ));
    }
    if gpus > 1 && report.gpus.len() < gpus {
        return Err(format!(
            "--gpus {gpus} asked for, {} found",
            report.gpus.len()
        ));
    }
    Ok(report.summary())
}

/// The first `limit` non-empty lines of `source` (or of the bundled text) written to `to`;
/// returns the path and the line count.
fn sample(
    source: Option<&Path>,
    bundled: &str,
    limit: usize,
    to: &Path,
) -> Result<(PathBuf, usize), hf::HfError> {
    let lines: Vec<String> = match source {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|source| hf::HfError::Io {
                path: path.to_owned(),
                source,
            })?;
            std::io::BufReader::new(file)
                .lines()
                .map_while(Result::ok)
                .filter(|l| !l.trim().is_empty())
                .take(limit)
                .collect()
        }
        None => bundled
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(limit)
            .map(str::to_owned)
            .collect(),
    };
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|source| hf::HfError::Io {
            path: parent.to_owned(),
            source,
        })?;
    }
    hf::write_atomically(to, |w| {
        for line in &lines {
            w.write_all(line.as_bytes())?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })?;
    Ok((to.to_owned(), lines.len()))
}
