//! `import-gguf`: dequantizes a GGUF back to a Hugging Face checkpoint (f32 safetensors).

use std::path::PathBuf;

use model_tools::import;

use super::args::OutputArgs;
use super::output::{bar, emit, fail, tick, Failure, STEP_FAILED};

/// The arguments of `import-gguf`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The GGUF file.
    gguf: PathBuf,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    flags: OutputArgs,
}

/// Runs `import-gguf` and returns its exit code.
pub fn run(args: Args) -> Result<u8, Failure> {
    let Args {
        gguf,
        out,
        flags: OutputArgs { overwrite, json },
    } = args;
    let opts = import::ImportOptions {
        gguf,
        out,
        overwrite,
    };
    let progress = bar(0, "importing");
    let report = import::import_gguf(&opts, &|done, total| tick(&progress, done, total))
        .map_err(|e| fail(STEP_FAILED)(&e))?;
    progress.finish_and_clear();
    emit(&report, json)?;
    Ok(0)
}
