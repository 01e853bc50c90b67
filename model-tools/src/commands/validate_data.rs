//! `validate-data`: checks a training file (JSON lines) before any GPU time is spent.

use std::path::PathBuf;

use model_tools::data;

use super::args::StageArg;
use super::output::{emit, fail, Failure, BAD_INPUT, CHECK_FAILED};

/// The arguments of `validate-data`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The JSON-lines file.
    file: PathBuf,
    /// `dapt` ({"text"} lines) or `sft` ({"messages"} lines).
    #[arg(long)]
    stage: StageArg,
    /// Language the data should be in (e.g. `ta`): checks the script mix.
    #[arg(long)]
    lang: Option<String>,
    /// Least mean share of the language's script.
    #[arg(long, default_value_t = 0.6)]
    min_script_share: f64,
    /// Most samples (share) allowed under 50 % of the language's script.
    #[arg(long, default_value_t = 0.1)]
    max_off_script: f64,
    /// The model's tokenizer (tokenizer.json or its directory) for token statistics.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Samples longer than this many tokens are reported.
    #[arg(long, default_value_t = 2048)]
    max_tokens: usize,
    /// Report duplicates as warnings instead of failing.
    #[arg(long)]
    allow_duplicates: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `validate-data` and returns its exit code.
pub fn run(args: Args) -> Result<u8, Failure> {
    let Args {
        file,
        stage,
        lang,
        min_script_share,
        max_off_script,
        tokenizer,
        max_tokens,
        allow_duplicates,
        json,
    } = args;
    let opts = data::ValidateOptions {
        path: file,
        stage: stage.into(),
        lang,
        min_script_share,
        max_off_script_samples: max_off_script,
        tokenizer,
        max_tokens,
        allow_duplicates,
    };
    let report = data::validate_data(&opts).map_err(|e| fail(BAD_INPUT)(&e))?;
    emit(&report, json)?;
    Ok(if report.passed() { 0 } else { CHECK_FAILED })
}
