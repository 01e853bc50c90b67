//! `merge`: merges LoRA adapters into a full-precision base, tensor by tensor.

use std::path::PathBuf;

use model_tools::merge;

use super::args::FloatArg;
use super::output::{bar, emit, fail, tick, Failure, STEP_FAILED};

/// The arguments of `merge`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The base model directory (safetensors).
    #[arg(long)]
    base: PathBuf,
    /// PEFT adapter directories, applied in order.
    #[arg(long = "adapter", required = true)]
    adapters: Vec<PathBuf>,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing output.
    #[arg(long)]
    overwrite: bool,
    /// Write the weights in this dtype instead of the base's (`f32` before another
    /// training stage).
    #[arg(long)]
    out_dtype: Option<FloatArg>,
    /// Print JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

/// Runs `merge` and returns its exit code.
pub fn run(args: Args) -> Result<u8, Failure> {
    let Args {
        base,
        adapters,
        out,
        overwrite,
        out_dtype,
        json,
    } = args;
    let opts = merge::MergeOptions {
        base,
        adapters,
        out,
        overwrite,
        out_dtype: out_dtype.map(FloatArg::dtype),
    };
    let progress = bar(0, "merging");
    let report = merge::merge(&opts, &|p: merge::MergeProgress| {
        tick(&progress, p.done, p.total)
    })
    .map_err(|e| fail(STEP_FAILED)(&e))?;
    progress.finish_and_clear();
    emit(&report, json)?;
    Ok(0)
}
