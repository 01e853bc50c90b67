//! `setup-train`: adopts a Python that can train, or builds a venv from the pinned
//! requirements.

use std::path::PathBuf;

use model_tools::train;

use super::output::{fail, print_line, Failure, CHECK_FAILED, STEP_FAILED};

/// The arguments of `setup-train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// An existing interpreter to adopt (e.g. a GPU box's own CUDA build of torch).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Where to build the venv (default ~/.cache/vazhi/train-venv).
    #[arg(long)]
    venv: Option<PathBuf>,
    /// The interpreter that creates the venv.
    #[arg(long, default_value = "python3")]
    base_python: String,
}

/// Runs `setup-train` and returns its exit code.
pub fn run(args: Args) -> Result<u8, Failure> {
    let Args {
        python,
        venv,
        base_python,
    } = args;
    let venv = venv.unwrap_or_else(train::env::default_venv);
    let report =
        train::env::setup_train(python.as_deref(), &venv, &base_python).map_err(|e| match e {
            train::env::EnvError::Incompatible { .. } => fail(CHECK_FAILED)(&e),
            other => fail(STEP_FAILED)(&other),
        })?;
    print_line(&report)?;
    Ok(0)
}
