//! `eval`: scores a model on eval sets and gates it against its reference, writing the
//! Markdown and JSON reports asked for.

use std::path::PathBuf;

use model_tools::eval;

use super::output::{bar, emit, fail, write_report, Failure, BAD_INPUT, CHECK_FAILED, STEP_FAILED};

/// The arguments of `eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model under test (the quantized one).
    #[arg(long)]
    model: PathBuf,
    /// The model it must stay close to (the F32/F16 it came from).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Eval set files (assets/eval/*.jsonl).
    #[arg(long = "set", required = true)]
    sets: Vec<PathBuf>,
    /// Largest mean KL divergence (nats per token).
    #[arg(long)]
    max_kl: Option<f64>,
    /// Least top-1 agreement with the reference.
    #[arg(long)]
    min_top1: Option<f64>,
    /// Largest perplexity ratio to the reference.
    #[arg(long)]
    max_ppl_ratio: Option<f64>,
    /// Largest fall of the answers' script share below the reference's.
    #[arg(long)]
    max_script_drop: Option<f64>,
    /// Default answer length in tokens.
    #[arg(long, default_value_t = 96)]
    max_tokens: u32,
    /// Only the first N prompts and texts of each set.
    #[arg(long)]
    limit: Option<usize>,
    /// llama.cpp threads.
    #[arg(long)]
    threads: Option<usize>,
    /// Write the Markdown report here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long = "report-json")]
    report_json: Option<PathBuf>,
    /// Print the JSON report instead of a summary.
    #[arg(long)]
    json: bool,
}

/// Runs `eval` and returns its exit code.
pub fn run(args: Args) -> Result<u8, Failure> {
    let Args {
        model,
        reference,
        sets,
        max_kl,
        min_top1,
        max_ppl_ratio,
        max_script_drop,
        max_tokens,
        limit,
        threads,
        markdown,
        report_json,
        json,
    } = args;
    let mut opts = eval::EvalOptions::new(model, sets);
    opts.reference = reference;
    opts.max_tokens = max_tokens;
    opts.limit = limit;
    opts.threads = threads;
    let t = &mut opts.thresholds;
    t.max_mean_kl = max_kl.unwrap_or(t.max_mean_kl);
    t.min_top1_agreement = min_top1.unwrap_or(t.min_top1_agreement);
    t.max_perplexity_ratio = max_ppl_ratio.unwrap_or(t.max_perplexity_ratio);
    t.max_script_share_drop = max_script_drop.unwrap_or(t.max_script_share_drop);
    let progress = bar(0, "eval");
    let report = eval::evaluate(&opts, &|p| match p {
        eval::EvalProgress::Set(name, steps) => {
            progress.set_message(name);
            progress.set_length(steps as u64);
            progress.set_position(0);
        }
        eval::EvalProgress::Step => progress.inc(1),
    })
    .map_err(|e| match e {
        eval::EvalError::Set(_) | eval::EvalError::NoSets => fail(BAD_INPUT)(&e),
        other => fail(STEP_FAILED)(&other),
    })?;
    progress.finish_and_clear();
    if let Some(path) = &markdown {
        write_report(path, report.to_markdown().as_bytes())?;
    }
    if let Some(path) = &report_json {
        let text = serde_json::to_vec_pretty(&report).map_err(|e| fail(STEP_FAILED)(&e))?;
        write_report(path, &text)?;
    }
    emit(&report, json)?;
    Ok(if report.passed() { 0 } else { CHECK_FAILED })
}
