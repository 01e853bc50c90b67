//! `merge`: folds one or more PEFT LoRA adapters into a Hugging Face base checkpoint.
//!
//! `W' = W + s₁·B₁A₁ + s₂·B₂A₂ + …` in the given adapter order, computed in `f32` and written
//! in each base tensor's own dtype (round to nearest even). The base is streamed tensor by
//! tensor and, inside a tensor, block of rows by block of rows, so resident memory stays near
//! one tensor. Everything is checked before the first byte is written: quantized bases,
//! unsupported PEFT variants, and every mismatch between an adapter's config, its weights and
//! the base are refused with the tensor named. The output keeps the base's shard layout and
//! carries its config and tokenizer files; it appears under `--out` only once complete.

mod adapter;
mod config;
mod error;
mod kernel;
mod keys;
mod output;
mod quant;
mod report;
mod stream;
#[cfg(test)]
mod tests;

pub use error::MergeError;
pub use report::{AdapterSummary, MergeProgress, MergeReport, TensorAction};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::hf::{read_json_if_exists, Checkpoint, Dtype, PlannedTensor, SafetensorsWriter};
use crate::hf::{CONFIG_JSON, MODEL_SAFETENSORS_INDEX_JSON};

use adapter::Adapter;
use stream::Job;

/// Values per block of rows converted to `f32` at a time (16 MiB of `f32`).
pub(crate) const BLOCK_VALUES: usize = 4 << 20;

/// What to merge, and where to.
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// The full-precision Hugging Face base directory.
    pub base: PathBuf,
    /// PEFT adapter directories, applied in this order.
    pub adapters: Vec<PathBuf>,
    /// The output directory (created; must not exist unless empty or `overwrite`).
    pub out: PathBuf,
    /// Replace an existing non-empty `out`.
    pub overwrite: bool,
    /// Write every floating-point tensor in this dtype instead of the base's own (`F32` keeps
    /// a merge that feeds another training stage in full precision); `config.json` says so.
    pub out_dtype: Option<Dtype>,
}

/// Merges `opts.adapters` into `opts.base` and writes the result to `opts.out`, calling
/// `progress` after each tensor.
pub fn merge(
    opts: &MergeOptions,
    progress: &dyn Fn(MergeProgress),
) -> Result<MergeReport, MergeError> {
    let started = Instant::now();
    let _span = tracing::info_span!("merge", adapters = opts.adapters.len()).entered();
    if opts.adapters.is_empty() {
        return Err(MergeError::NoAdapters);
    }
    check_out_is_not_an_input(opts)?;

    let base = Checkpoint::open(&opts.base)?;
    let base_config = read_json_if_exists(&opts.base.join(CONFIG_JSON))?;
    if let Some(reason) = quant::quantization_reason(base_config.as_ref(), &base) {
        return Err(MergeError::QuantizedBase {
            dir: opts.base.clone(),
            reason,
        });
    }

    let mut adapters: Vec<Adapter> = Vec::with_capacity(opts.adapters.len());
    let mut touched = BTreeSet::new();
    for dir in &opts.adapters {
        let adapter = adapter::load(dir, &base, &touched)?;
        touched.extend(adapter.deltas.keys().cloned());
        touched.extend(adapter.replacements.keys().cloned());
        adapters.push(adapter);
    }
    let jobs = plan_jobs(&adapters);

    let staging = output::Staging::create(&opts.out, opts.overwrite)?;
    let mut report = MergeReport::new(opts, &adapters);
    let total = base.len();
    let mut done = 0;
    let mut total_size = 0u64;
    for shard in base.shard_files() {
        let file_name = shard.file_name().map(PathBuf::from).unwrap_or_default();
        let _span = tracing::info_span!("shard", file = %file_name.display()).entered();
        let names = names_in_file_order(&base, shard)?;
        let plan = names
            .iter()
            .map(|name| {
                let t = base.tensor(name)?;
                Ok(PlannedTensor {
                    name: name.to_string(),
                    dtype: output_dtype(t.dtype, opts.out_dtype.as_ref()),
                    shape: t.shape,
                })
            })
            .collect::<Result<Vec<_>, MergeError>>()?;
        let mut metadata = base.metadata();
        metadata
            .entry("format".to_owned())
            .or_insert_with(|| "pt".to_owned());
        let mut writer =
            SafetensorsWriter::create(&staging.path().join(&file_name), &plan, &metadata)?;
        for name in names {
            let job = jobs.get(name);
            let dtype = output_dtype(base.tensor(name)?.dtype, opts.out_dtype.as_ref());
            let action = stream::write_tensor(&base, name, job, &adapters, dtype, &mut writer)?;
            let bytes = base.tensor(name)?.data.len() as u64;
            total_size += bytes;
            report.record(bytes, &action, job);
            done += 1;
            progress(MergeProgress {
                done,
                total,
                tensor: name.to_owned(),
                action,
                bytes,
            });
        }
        writer.finish()?;
    }
    let index = opts.base.join(MODEL_SAFETENSORS_INDEX_JSON);
    if index.is_file() {
        output::write_index(&index, staging.path(), total_size)?;
    }
    report.files_copied = output::copy_side_files(&opts.base, staging.path())?;
    if let Some(dtype) = &opts.out_dtype {
        output::set_config_dtype(staging.path(), dtype)?;
    }
    report.output_bytes = dir_bytes(staging.path())?;
    staging.commit()?;
    report.seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        merged = report.tensors_merged,
        copied = report.tensors_copied,
        seconds = report.seconds,
        "merge written"
    );
    Ok(report)
}

/// The dtype a base tensor is written in: `wanted` for floating-point tensors, else its own.
fn output_dtype(own: Dtype, wanted: Option<&Dtype>) -> Dtype {
    match wanted {
        Some(w) if matches!(own, Dtype::F32 | Dtype::F16 | Dtype::BF16) => w.clone(),
        _ => own,
    }
}

/// Per base tensor, what the adapters do to it, in order: a later full replacement
/// (modules_to_save) discards earlier deltas; deltas after it are added to the replacement.
fn plan_jobs(adapters: &[Adapter]) -> BTreeMap<String, Job> {
    let mut jobs: BTreeMap<String, Job> = BTreeMap::new();
    for (index, adapter) in adapters.iter().enumerate() {
        for (tensor, replacement) in &adapter.replacements {
            let job = jobs.entry(tensor.clone()).or_default();
            job.source = Some((index, replacement.clone()));
            job.deltas.clear();
        }
        for tensor in adapter.deltas.keys() {
            jobs.entry(tensor.clone()).or_default().deltas.push(index);
        }
    }
    jobs
}

/// A shard's tensors in the order their bytes lie in the file (sequential reads).
fn names_in_file_order<'a>(base: &'a Checkpoint, shard: &Path) -> Result<Vec<&'a str>, MergeError> {
    let mut names = Vec::new();
    for name in base.names() {
        if base.shard_of(name) == Some(shard) {
            let address = base.tensor(name)?.data.as_ptr() as usize;
            names.push((address, name));
        }
    }
    names.sort();
    Ok(names.into_iter().map(|(_, name)| name).collect())
}

fn check_out_is_not_an_input(opts: &MergeOptions) -> Result<(), MergeError> {
    let Ok(out) = opts.out.canonicalize() else {
        return Ok(()); // does not exist yet, so it cannot be an input
    };
    for input in std::iter::once(&opts.base).chain(&opts.adapters) {
        let Ok(input_path) = input.canonicalize() else {
            continue;
        };
        if input_path.starts_with(&out) {
            return Err(MergeError::OutputIsInput {
                out: opts.out.clone(),
                input: input.clone(),
            });
        }
    }
    Ok(())
}

fn dir_bytes(dir: &Path) -> Result<u64, MergeError> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| MergeError::io(dir, e))? {
        let entry = entry.map_err(|e| MergeError::io(dir, e))?;
        total += entry
            .metadata()
            .map_err(|e| MergeError::io(&entry.path(), e))?
            .len();
    }
    Ok(total)
}
