//! `audit-tokenizer`: checks a tokenizer for holes, special tokens, BOS/EOS/PAD and fertility.

use std::path::PathBuf;

use model_tools::audit;

use super::output::{emit, fail, Failure, BAD_INPUT, CHECK_FAILED};

/// The arguments of `audit-tokenizer`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A Hugging Face model directory.
    model_dir: PathBuf,
    /// Target language (fertility is compared with English).
    #[arg(long)]
    lang: Option<String>,
    /// A text sample in the target language.
    #[arg(long)]
    sample: Option<PathBuf>,
    /// Finding codes to report as warnings, e.g. `pad-is-eos`.
    #[arg(long)]
    allow: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `audit-tokenizer` and returns its exit code.
pub fn run(args: Args) -> Result<u8, Failure> {
    let Args {
        model_dir,
        lang,
        sample,
        allow,
        json,
    } = args;
    let opts = audit::AuditOptions {
        model_dir,
        lang,
        sample,
        allow,
    };
    let report = audit::audit_tokenizer(&opts).map_err(|e| fail(BAD_INPUT)(&e))?;
    emit(&report, json)?;
    Ok(if report.passed() { 0 } else { CHECK_FAILED })
}
