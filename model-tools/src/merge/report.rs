//! What a merge reports: per-tensor progress while it runs, a summary when it is done.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::adapter::Adapter;
use super::stream::Job;
use super::MergeOptions;

/// What happened to one base tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TensorAction {
    /// Written unchanged, byte for byte.
    Copied,
    /// LoRA deltas added.
    Merged {
        /// How many adapters added a delta.
        adapters: usize,
    },
    /// Replaced by an adapter's trained copy (`modules_to_save`), then any later deltas added.
    Replaced {
        /// Deltas added after the replacement.
        adapters_after: usize,
    },
}

/// Progress after one tensor has been written.
#[derive(Debug, Clone, Serialize)]
pub struct MergeProgress {
    /// Tensors written so far.
    pub done: usize,
    /// Tensors in the base.
    pub total: usize,
    /// The tensor just written.
    pub tensor: String,
    /// What was done to it.
    pub action: TensorAction,
    /// Its size in the output, bytes.
    pub bytes: u64,
}

/// One adapter's part in a merge.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterSummary {
    /// The adapter directory.
    pub path: PathBuf,
    /// Its default rank `r`.
    pub rank: usize,
    /// Its default `lora_alpha`.
    pub alpha: f64,
    /// Whether it scales by `alpha / sqrt(r)`.
    pub use_rslora: bool,
    /// Base tensors its delta was added to.
    pub tensors_merged: usize,
    /// Base tensors it replaced (`modules_to_save`).
    pub tensors_replaced: usize,
    /// Saved embedding copies checked equal to the base.
    pub embedding_copies_checked: usize,
}

/// The summary of a finished merge.
#[derive(Debug, Clone, Serialize)]
pub struct MergeReport {
    /// The base directory.
    pub base: PathBuf,
    /// The output directory.
    pub out: PathBuf,
    /// Per adapter, in merge order.
    pub adapters: Vec<AdapterSummary>,
    /// Tensors written.
    pub tensors_total: usize,
    /// Tensors with at least one delta added (replaced ones excluded).
    pub tensors_merged: usize,
    /// Tensors replaced by an adapter's copy.
    pub tensors_replaced: usize,
    /// Tensors copied unchanged.
    pub tensors_copied: usize,
    /// Non-weight files copied from the base (config, tokenizer, …).
    pub files_copied: Vec<String>,
    /// Bytes written (every output file).
    pub output_bytes: u64,
    /// The largest tensor's bytes: resident memory stays within about twice this (plus
    /// buffers).
    pub largest_tensor_bytes: u64,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl MergeReport {
    pub(crate) fn new(opts: &MergeOptions, adapters: &[Adapter]) -> Self {
        MergeReport {
            base: opts.base.clone(),
            out: opts.out.clone(),
            adapters: adapters
                .iter()
                .map(|a| AdapterSummary {
                    path: a.dir.clone(),
                    rank: a.config.r,
                    alpha: a.config.alpha,
                    use_rslora: a.config.use_rslora,
                    tensors_merged: 0,
                    tensors_replaced: 0,
                    embedding_copies_checked: a.embedding_copies,
                })
                .collect(),
            tensors_total: 0,
            tensors_merged: 0,
            tensors_replaced: 0,
            tensors_copied: 0,
            files_copied: Vec::new(),
            output_bytes: 0,
            largest_tensor_bytes: 0,
            seconds: 0.0,
        }
    }

    pub(crate) fn record(&mut self, bytes: u64, action: &TensorAction, job: Option<&Job>) {
        self.tensors_total += 1;
        self.largest_tensor_bytes = self.largest_tensor_bytes.max(bytes);
        match action {
            TensorAction::Copied => self.tensors_copied += 1,
            TensorAction::Merged { .. } => self.tensors_merged += 1,
            TensorAction::Replaced { .. } => self.tensors_replaced += 1,
        }
        if let Some(job) = job {
            for &index in &job.deltas {
                if let Some(a) = self.adapters.get_mut(index) {
                    a.tensors_merged += 1;
                }
            }
            if let Some(a) = job
                .source
                .as_ref()
                .and_then(|(i, _)| self.adapters.get_mut(*i))
            {
                a.tensors_replaced += 1;
            }
        }
    }
}

impl fmt::Display for MergeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "merged {} adapter(s) into {} -> {} in {:.1} s",
            self.adapters.len(),
            self.base.display(),
            self.out.display(),
            self.seconds
        )?;
        for a in &self.adapters {
            writeln!(
                f,
                "  {}: r={} alpha={}{}: {} tensor(s) merged, {} replaced (modules_to_save)",
                a.path.display(),
                a.rank,
                a.alpha,
                if a.use_rslora { " (rsLoRA)" } else { "" },
                a.tensors_merged,
                a.tensors_replaced
            )?;
        }
        writeln!(
            f,
            "  tensors: {} merged, {} replaced, {} copied unchanged ({} in all)",
            self.tensors_merged, self.tensors_replaced, self.tensors_copied, self.tensors_total
        )?;
        if !self.files_copied.is_empty() {
            writeln!(f, "  files copied: {}", self.files_copied.join(", "))?;
        }
        write!(
            f,
            "  output {:.1} MiB; largest tensor {:.1} MiB",
            self.output_bytes as f64 / (1 << 20) as f64,
            self.largest_tensor_bytes as f64 / (1 << 20) as f64
        )
    }
}
