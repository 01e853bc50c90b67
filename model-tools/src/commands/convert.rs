//! `convert`: converts a Hugging Face checkpoint to GGUF.

use std::path::PathBuf;

use model_tools::convert;

use super::args::{OutTypeArg, OutputArgs};
use super::output::{bar, emit, fail, tick, Failure, STEP_FAILED};

/// The arguments of `convert`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model directory.
    #[arg(long)]
    hf: PathBuf,
    /// The GGUF to write.
    #[arg(long)]
    out: PathBuf,
    /// Tensor type for the weights.
    #[arg(long = "type", default_value = "f16")]
    out_type: OutTypeArg,
    /// Worker threads (0: every core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    #[command(flatten)]
    flags: OutputArgs,
}

/// Runs `convert` and returns its exit code.
pub fn run(args: Args) -> Result<u8, Failure> {
    let Args {
        hf,
        out,
        out_type,
        threads,
        flags: OutputArgs { overwrite, json },
    } = args;
    let opts = convert::ConvertOptions {
        hf_dir: hf,
        out,
        out_type: match out_type {
            OutTypeArg::F32 => convert::OutType::F32,
            OutTypeArg::F16 => convert::OutType::F16,
            OutTypeArg::Bf16 => convert::OutType::Bf16,
            OutTypeArg::Q8_0 => convert::OutType::Q8_0,
        },
        overwrite,
        threads,
    };
    let progress = bar(0, "converting");
    let report = convert::convert(&opts, &|done, total| tick(&progress, done, total))
        .map_err(|e| fail(STEP_FAILED)(&e))?;
    progress.finish_and_clear();
    emit(&report, json)?;
    Ok(0)
}
