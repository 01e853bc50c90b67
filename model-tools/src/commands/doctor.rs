//! `doctor`: reports what the training Python has (torch, CUDA, GPUs, bf16, transformers,
//! PEFT) and whether it can train.

use std::path::PathBuf;

use model_tools::train;

use super::output::{emit, fail, Failure, CHECK_FAILED, STEP_FAILED};

/// The arguments of `doctor`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The interpreter (default: $VAZHI_TRAIN_PYTHON, the adopted one, the setup-train
    /// venv, python3).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Print JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

/// Runs `doctor` and returns its exit code.
pub fn run(args: Args) -> Result<u8, Failure> {
    let Args { python, json } = args;
    let python = train::env::find_python(python.as_deref());
    let report = train::env::doctor(&python).map_err(|e| fail(STEP_FAILED)(&e))?;
    emit(&report, json)?;
    Ok(if report.ready() { 0 } else { CHECK_FAILED })
}
