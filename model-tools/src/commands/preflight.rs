//! `preflight`: tries the whole training path in minutes (a few DAPT and SFT steps on a
//! sample, merge, convert, quantize, eval) and fails on any broken step.

use std::path::PathBuf;

use model_tools::train;

use super::args::positive;
use super::output::{bar, fail, print_line, say, Failure, CHECK_FAILED, STEP_FAILED};
use super::train::show_train_event;

/// The arguments of `preflight`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The Hugging Face base model directory (full precision).
    #[arg(long)]
    model: PathBuf,
    /// Working directory (replaced).
    #[arg(long)]
    out: PathBuf,
    /// DAPT data to sample (default: a bundled sample).
    #[arg(long)]
    dapt_data: Option<PathBuf>,
    /// SFT data to sample (default: a bundled sample).
    #[arg(long)]
    sft_data: Option<PathBuf>,
    /// Lines taken from each data file.
    #[arg(long, default_value_t = 32, value_parser = positive)]
    samples: usize,
    /// Optimizer steps per stage.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    steps: u64,
    /// Sequence length.
    #[arg(long, default_value_t = 256, value_parser = positive)]
    seq_len: usize,
    /// Sequences per step.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
    /// GPUs (more than one: torchrun).
    #[arg(long, default_value_t = 1, value_parser = positive)]
    gpus: usize,
    /// Eval sets (default: the bundled English set).
    #[arg(long = "set")]
    sets: Vec<PathBuf>,
    /// Language the data should be in.
    #[arg(long)]
    lang: Option<String>,
    /// The training Python (default: see `doctor`).
    #[arg(long)]
    python: Option<PathBuf>,
}

/// Runs `preflight` and returns its exit code.
pub fn run(args: Args) -> Result<u8, Failure> {
    let Args {
        model,
        out,
        dapt_data,
        sft_data,
        samples,
        steps,
        seq_len,
        batch_size,
        gpus,
        sets,
        lang,
        python,
    } = args;
    let opts = train::preflight::PreflightOptions {
        model,
        out,
        python: train::env::find_python(python.as_deref()),
        dapt_data,
        sft_data,
        samples,
        steps,
        seq_len,
        batch_size,
        gpus,
        sets,
        lang,
    };
    let progress = bar(0, "preflight");
    let report = train::preflight::preflight(
        &opts,
        &|step| {
            say(
                &progress,
                format!(
                    "{} {} ({:.1} s): {}",
                    if step.passed { "ok  " } else { "FAIL" },
                    step.name,
                    step.seconds,
                    step.detail
                ),
            )
        },
        &|event| show_train_event(&progress, event),
    )
    .map_err(|e| fail(STEP_FAILED)(&e))?;
    progress.finish_and_clear();
    print_line(&report)?;
    Ok(if report.passed() { 0 } else { CHECK_FAILED })
}
