//! `train`: checks and prepares the data, then runs and supervises the Python backend that
//! trains a LoRA adapter, one stage or DAPT then SFT, showing its events as they come.

use std::path::PathBuf;

use indicatif::ProgressBar;
use model_tools::{data, train};

use super::args::{positive, StageArg};
use super::output::{bar, fail, print_line, say, Failure, CHECK_FAILED, STEP_FAILED};

/// The arguments of `train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The Hugging Face base model directory.
    #[arg(long)]
    model: PathBuf,
    /// The training file of a single stage (JSON lines).
    #[arg(long, requires = "stage", conflicts_with_all = ["dapt_data", "sft_data"])]
    data: Option<PathBuf>,
    /// `dapt` (raw text, all tokens) or `sft` (chat, assistant tokens only), with `--data`.
    #[arg(long, requires = "data")]
    stage: Option<StageArg>,
    /// DAPT data (raw text); with `--sft-data` the stages are chained.
    #[arg(long)]
    dapt_data: Option<PathBuf>,
    /// SFT data (chat pairs).
    #[arg(long)]
    sft_data: Option<PathBuf>,
    /// Output directory (sequences, log, checkpoint, adapter; one subdirectory per stage
    /// when chained).
    #[arg(long)]
    out: PathBuf,
    /// The training Python (default: see `doctor`).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Sequence length in tokens.
    #[arg(long, default_value_t = 1024, value_parser = positive)]
    seq_len: usize,
    /// Language the data should be in (checked first).
    #[arg(long)]
    lang: Option<String>,
    /// Stop after this many optimizer steps per stage (0: the epochs decide).
    #[arg(long, default_value_t = 0)]
    max_steps: u64,
    /// Passes over the data.
    #[arg(long, default_value_t = 1)]
    epochs: u32,
    /// Sequences per GPU per micro-batch.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    grad_accum: u32,
    /// Learning rate (default: 2e-4 for DAPT, 2e-5 for SFT).
    #[arg(long)]
    lr: Option<f64>,
    /// LoRA rank (default by model size).
    #[arg(long)]
    rank: Option<u32>,
    /// Recompute activations in the backward pass (less memory, ~30 % slower); switched
    /// off around every generation.
    #[arg(long)]
    gradient_checkpointing: bool,
    /// Checkpoint every N steps (and on Ctrl-C).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every: u64,
    /// Continue from the last checkpoint, same data order.
    #[arg(long)]
    resume: bool,
    /// GPUs: more than one runs the backend under torchrun (DDP).
    #[arg(long, default_value_t = 1, value_parser = positive)]
    gpus: usize,
    /// Generate answers to eval prompts every N steps and score them (0: never).
    #[arg(long, default_value_t = 0)]
    check_every: u64,
    /// Eval sets for the answer checks and `--gguf-check` (default: the bundled English
    /// set).
    #[arg(long = "check-set")]
    check_sets: Vec<PathBuf>,
    /// Longest answer in tokens in each answer check (a prompt's own `max_tokens` wins;
    /// scripts a tokenizer splits finely, such as Tamil in SmolLM2, need more).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    check_tokens: u32,
    /// Prompts per set in each answer check.
    #[arg(long, default_value_t = 3, value_parser = positive)]
    check_prompts: usize,
    /// Merge → convert → quantize (Q4_K_M) → eval every checkpoint while training goes on.
    #[arg(long)]
    gguf_check: bool,
    /// Prompts and texts per set in each `--gguf-check`.
    #[arg(long, default_value_t = 4, value_parser = positive)]
    gguf_check_limit: usize,
    /// Print the events as JSON lines instead of a progress bar.
    #[arg(long)]
    json: bool,
}

/// Runs `train` and returns its exit code.
pub fn run(args: Args) -> Result<u8, Failure> {
    let stages = stages(&args)?;
    let json = args.json;
    let opts = options(args, &stages)?;
    let progress = if json {
        ProgressBar::hidden()
    } else {
        bar(0, "training")
    };
    let on_event = |event: &train::run::TrainEvent| {
        if json {
            // Events are progress: a failed write must not stop the training run.
            if let Ok(line) = serde_json::to_string(event) {
                let _ = print_line(&line);
            }
            return;
        }
        show_train_event(&progress, event);
    };
    let (finished, gguf_ok) = if stages.len() == 1 {
        train_one(&opts, &on_event, &progress)?
    } else {
        train_chained(&opts, &stages, &on_event, &progress)?
    };
    Ok(match (finished, gguf_ok) {
        (false, _) => 130,
        (true, false) => CHECK_FAILED,
        (true, true) => 0,
    })
}

/// The stages to train and their data: `--stage` with `--data`, else DAPT and/or SFT.
fn stages(args: &Args) -> Result<Vec<(data::Stage, PathBuf)>, Failure> {
    let stages: Vec<(data::Stage, PathBuf)> = match (&args.data, args.stage) {
        (Some(data), Some(stage)) => vec![(stage.into(), data.clone())],
        _ => [
            (data::Stage::Dapt, &args.dapt_data),
            (data::Stage::Sft, &args.sft_data),
        ]
        .into_iter()
        .filter_map(|(stage, data)| Some((stage, data.clone()?)))
        .collect(),
    };
    if stages.is_empty() {
        return Err(fail(2)(
            &"give --stage and --data, or --dapt-data and/or --sft-data",
        ));
    }
    Ok(stages)
}

/// The backend's own options, as command-line words.
fn backend_args(args: &Args) -> Vec<String> {
    let mut backend_args = vec![
        "--max-steps".to_owned(),
        args.max_steps.to_string(),
        "--epochs".to_owned(),
        args.epochs.to_string(),
        "--batch-size".to_owned(),
        args.batch_size.to_string(),
        "--grad-accum".to_owned(),
        args.grad_accum.to_string(),
        "--checkpoint-every".to_owned(),
        args.checkpoint_every.to_string(),
    ];
    if let Some(lr) = args.lr {
        backend_args.extend(["--lr".to_owned(), lr.to_string()]);
    }
    if let Some(rank) = args.rank {
        backend_args.extend(["--rank".to_owned(), rank.to_string()]);
    }
    if args.gradient_checkpointing {
        backend_args.push("--gradient-checkpointing".to_owned());
    }
    backend_args
}

/// The options of the first stage (a chain derives the others from them), with the bundled
/// eval set written out when checks are asked for without sets.
fn options(
    args: Args,
    stages: &[(data::Stage, PathBuf)],
) -> Result<train::run::TrainOptions, Failure> {
    let backend_args = backend_args(&args);
    let Args {
        model,
        out,
        python,
        seq_len,
        lang,
        resume,
        gpus,
        check_every,
        check_sets,
        check_prompts,
        check_tokens,
        gguf_check,
        gguf_check_limit,
        ..
    } = args;
    let sets = if check_sets.is_empty() && (check_every > 0 || gguf_check) {
        vec![train::quantized::bundled_eval_set(&out.join("eval"))
            .map_err(|e| fail(STEP_FAILED)(&e))?]
    } else {
        check_sets
    };
    Ok(train::run::TrainOptions {
        model,
        data: stages[0].1.clone(),
        stage: stages[0].0,
        out,
        python: train::env::find_python(python.as_deref()),
        seq_len,
        lang,
        backend_args,
        resume,
        gpus,
        checks: (check_every > 0).then(|| train::run::CheckOptions {
            sets: sets.clone(),
            per_set: check_prompts,
            every: check_every,
            max_new_tokens: check_tokens,
        }),
        gguf_check: gguf_check.then(|| train::run::GgufCheckOptions {
            sets: sets.clone(),
            limit: Some(gguf_check_limit),
        }),
    })
}

/// A training failure: a check failure when the data was invalid, else a failed step.
fn failed(e: &dyn std::fmt::Display, invalid: bool) -> Failure {
    fail(if invalid { CHECK_FAILED } else { STEP_FAILED })(e)
}

/// Trains one stage and prints its report: whether it finished, and whether its quantized
/// checks passed.
fn train_one(
    opts: &train::run::TrainOptions,
    on_event: &dyn Fn(&train::run::TrainEvent),
    progress: &ProgressBar,
) -> Result<(bool, bool), Failure> {
    let report = train::run::train(opts, on_event).map_err(|e| {
        let invalid = matches!(
            e,
            train::run::TrainError::Prepare(train::PrepareError::Invalid { .. })
        );
        failed(&e, invalid)
    })?;
    progress.finish_and_clear();
    print_line(&report)?;
    Ok((report.outcome == "done", report.gguf_checks_passed()))
}

/// Trains the stages one after the other and prints the chain's report: whether it finished,
/// and whether every stage's quantized checks passed.
fn train_chained(
    opts: &train::run::TrainOptions,
    stages: &[(data::Stage, PathBuf)],
    on_event: &dyn Fn(&train::run::TrainEvent),
    progress: &ProgressBar,
) -> Result<(bool, bool), Failure> {
    let report = train::chain::train_stages(opts, stages, on_event).map_err(|e| {
        let invalid = matches!(
            e,
            train::chain::ChainError::Stage {
                source: train::run::TrainError::Prepare(train::PrepareError::Invalid { .. }),
                ..
            }
        );
        failed(&e, invalid)
    })?;
    progress.finish_and_clear();
    print_line(&report)?;
    let gguf_ok = report.stages.iter().all(|(_, r)| r.gguf_checks_passed());
    Ok((report.done(), gguf_ok))
}

/// Shows one training event on the progress bar (or above it).
pub fn show_train_event(progress: &ProgressBar, event: &train::run::TrainEvent) {
    let field = |key: &str| event.fields.get(key).cloned().unwrap_or_default();
    match event.event.as_str() {
        "start" => {
            progress.set_length(event.number("steps").unwrap_or(0.0) as u64);
            progress.set_position(0);
            say(
                progress,
                format!("start: {}", serde_json::Value::Object(event.fields.clone())),
            );
        }
        "step" => {
            progress.set_position(event.step.unwrap_or(0));
            let speed = event.number("tokens_per_s").unwrap_or(0.0);
            if let Some(loss) = event.loss {
                progress.set_message(format!("loss {loss:.4}, {speed:.0} tok/s"));
            }
        }
        "check" => say(
            progress,
            field("summary").as_str().unwrap_or("check").to_owned(),
        ),
        "gguf_check" => say(
            progress,
            format!(
                "gguf check @{}: {} — {}{}",
                event.step.unwrap_or(0),
                if field("passed").as_bool() == Some(true) {
                    "passed"
                } else {
                    "FAILED"
                },
                field("headline").as_str().unwrap_or(""),
                field("failures")
                    .as_array()
                    .filter(|f| !f.is_empty())
                    .map_or_else(String::new, |f| {
                        let failures: Vec<&str> = f.iter().filter_map(|v| v.as_str()).collect();
                        format!(" ({})", failures.join("; "))
                    })
            ),
        ),
        "sample" | "gguf_check_started" => {}
        "prepared" => say(
            progress,
            format!(
                "prepared {} samples → {} sequences, {} tokens, {:.1} % trained",
                field("samples"),
                field("sequences"),
                field("tokens"),
                100.0 * event.number("trained_share").unwrap_or(0.0)
            ),
        ),
        "stage" | "merge" | "stage_already_done" => say(
            progress,
            format!(
                "{} {}: {}",
                event.event,
                field("stage").as_str().unwrap_or(""),
                field("path").as_str().unwrap_or("")
            ),
        ),
        other => say(
            progress,
            format!("{other} at step {}", event.step.unwrap_or(0)),
        ),
    }
}
