//! `prepare-data`: checks a training file, then turns it into the token sequences and
//! training masks that `train` reads.

use std::path::PathBuf;

use model_tools::train;

use super::args::StageArg;
use super::output::{emit, fail, Failure, BAD_INPUT, CHECK_FAILED};

/// The arguments of `prepare-data`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The JSON-lines file.
    file: PathBuf,
    /// `dapt` or `sft`.
    #[arg(long)]
    stage: StageArg,
    /// The Hugging Face model directory (tokenizer and chat template).
    #[arg(long)]
    model: PathBuf,
    /// Where the sequences go (JSON lines of input_ids and labels).
    #[arg(long)]
    out: PathBuf,
    /// Sequence length in tokens.
    #[arg(long, default_value_t = 1024)]
    seq_len: usize,
    /// Language the data should be in (checked first).
    #[arg(long)]
    lang: Option<String>,
    /// Print JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

/// Runs `prepare-data` and returns its exit code.
pub fn run(args: Args) -> Result<u8, Failure> {
    let Args {
        file,
        stage,
        model,
        out,
        seq_len,
        lang,
        json,
    } = args;
    let opts = train::PrepareOptions {
        data: file,
        stage: stage.into(),
        model_dir: model,
        out,
        seq_len,
        lang,
    };
    let report = train::prepare_data(&opts).map_err(|e| match e {
        train::PrepareError::Invalid { .. } => fail(CHECK_FAILED)(&e),
        other => fail(BAD_INPUT)(&other),
    })?;
    emit(&report, json)?;
    Ok(0)
}
