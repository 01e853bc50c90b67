//! `model-tools`: the desktop CLI that turns a fine-tuned model into the Q4_K_M file an app
//! downloads, and refuses to ship a broken one.
//!
//! Exit codes: 0 success, 1 the check failed (bad data, tokenizer findings, gate failed),
//! 2 bad usage, 3 bad input files, 4 a step failed (I/O, llama.cpp).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use model_tools::{audit, convert, data, eval, import, merge, publish, quantize, train};

#[derive(Parser, Debug)]
#[command(
    name = "model-tools",
    version,
    about = "Check data, merge, convert, quantize and gate Vazhi models"
)]
struct Cli {
    /// Log filter (also RUST_LOG), e.g. `debug` to see llama.cpp's own messages (its
    /// quantizer's per-tensor fallback warnings are hidden by default: the report counts the
    /// resulting tensor types).
    #[arg(
        long,
        global = true,
        default_value = "warn,llama-cpp-2=error,llama_cpp_2=error"
    )]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a training file (JSON lines) before any GPU time is spent.
    ValidateData {
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
    },
    /// Check a tokenizer: holes, special tokens, BOS/EOS/PAD, fertility.
    AuditTokenizer {
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
    },
    /// Check a training file, then turn it into token sequences with their training masks
    /// (SFT: assistant turns only; DAPT: packed, every token) — the input of `train`.
    PrepareData {
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
    },
    /// What the training Python has: torch, CUDA, GPUs, bf16, transformers, PEFT.
    Doctor {
        /// The interpreter (default: $VAZHI_TRAIN_PYTHON, the adopted one, the setup-train
        /// venv, python3).
        #[arg(long)]
        python: Option<PathBuf>,
        /// Print JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Adopt a Python that can train (--python), or build a venv from pinned requirements.
    SetupTrain {
        /// An existing interpreter to adopt (e.g. a GPU box's own CUDA build of torch).
        #[arg(long)]
        python: Option<PathBuf>,
        /// Where to build the venv (default ~/.cache/vazhi/train-venv).
        #[arg(long)]
        venv: Option<PathBuf>,
        /// The interpreter that creates the venv.
        #[arg(long, default_value = "python3")]
        base_python: String,
    },
    /// Train a LoRA adapter: checks and prepares the data, then runs and supervises the
    /// Python backend (progress, log, checkpoints, divergence, answer and quantized checks).
    /// One stage (`--stage` + `--data`), or DAPT then SFT (`--dapt-data` + `--sft-data`), the
    /// DAPT adapter merged in full precision in between.
    Train {
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
    },
    /// Try the whole training path in minutes: a few DAPT and SFT steps on a sample, merge,
    /// convert, quantize, eval. Non-zero exit on any failure.
    Preflight {
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
    },
    /// Merge LoRA adapters into a full-precision base, tensor by tensor.
    Merge {
        /// The base model directory (safetensors).
        #[arg(long)]
        base: PathBuf,
        /// PEFT adapter directories, applied in order.
        #[arg(long = "adapter", required = true)]
        adapters: Vec<PathBuf>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing output.
        #[arg(long)]
        overwrite: bool,
        /// Write the weights in this dtype instead of the base's (`f32` before another
        /// training stage).
        #[arg(long)]
        out_dtype: Option<FloatArg>,
        /// Print JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Convert a Hugging Face checkpoint to GGUF.
    Convert {
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
        /// Replace an existing output.
        #[arg(long)]
        overwrite: bool,
        /// Print JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Dequantize a GGUF back to a Hugging Face checkpoint (f32 safetensors).
    ImportGguf {
        /// The GGUF file.
        gguf: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing output.
        #[arg(long)]
        overwrite: bool,
        /// Print JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Quantize a GGUF with llama.cpp (Q4_K_M, Q5_K_M, Q8_0, ...).
    Quantize {
        /// Input GGUF (F32/F16/BF16).
        input: PathBuf,
        /// Output GGUF.
        output: PathBuf,
        /// The preset, e.g. Q4_K_M.
        #[arg(long = "type", default_value = "Q4_K_M")]
        qtype: String,
        /// Importance matrix from llama-imatrix (GGUF).
        #[arg(long)]
        imatrix: Option<PathBuf>,
        /// Worker threads (0: every core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Accept an already quantized input.
        #[arg(long)]
        allow_requantize: bool,
        /// Replace an existing output.
        #[arg(long)]
        overwrite: bool,
        /// Print JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Score a model on eval sets and gate it against its reference.
    Eval {
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
    },
    /// Print the SDK catalog entry for a finished GGUF.
    Publish {
        /// The GGUF file.
        model: PathBuf,
        /// Download URL (https); repeat for mirrors.
        #[arg(long = "url", required = true)]
        urls: Vec<String>,
        /// Catalog id (default: from the file name).
        #[arg(long)]
        id: Option<String>,
        /// Display name (default: general.name).
        #[arg(long)]
        name: Option<String>,
        /// Licence (default: general.license).
        #[arg(long)]
        licence: Option<String>,
        /// Add the entry to this catalog file (replacing one with the same id).
        #[arg(long)]
        catalog: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StageArg {
    Dapt,
    Sft,
}

impl From<StageArg> for data::Stage {
    fn from(stage: StageArg) -> data::Stage {
        match stage {
            StageArg::Dapt => data::Stage::Dapt,
            StageArg::Sft => data::Stage::Sft,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FloatArg {
    F32,
    F16,
    Bf16,
}

impl FloatArg {
    fn dtype(self) -> model_tools::hf::Dtype {
        match self {
            FloatArg::F32 => model_tools::hf::Dtype::F32,
            FloatArg::F16 => model_tools::hf::Dtype::F16,
            FloatArg::Bf16 => model_tools::hf::Dtype::BF16,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OutTypeArg {
    F32,
    F16,
    Bf16,
    #[value(name = "q8_0")]
    Q8_0,
}

/// A failure with the exit code it maps to.
struct Failure {
    code: u8,
    message: String,
}

fn fail(code: u8) -> impl Fn(&dyn std::fmt::Display) -> Failure {
    move |e| Failure {
        code,
        message: e.to_string(),
    }
}

const CHECK_FAILED: u8 = 1;
const BAD_INPUT: u8 = 3;
const STEP_FAILED: u8 = 4;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            // Never panic on the way out (stderr may be a closed pipe too).
            let _ = writeln!(std::io::stderr(), "error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Writes `text` and a newline to standard output; every result goes through here, never
/// `println!` (which panics when the reader has gone).
///
/// When the reader has gone (a closed pipe: `model-tools … | head`), the rest of the output is
/// dropped quietly and the command still ends with its own exit code: the work is done by the
/// time its report is printed, and a failed check must still fail.
fn print_line(text: &dyn std::fmt::Display) -> Result<(), Failure> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static CLOSED: AtomicBool = AtomicBool::new(false);
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    match writeln!(std::io::stdout().lock(), "{text}") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(fail(STEP_FAILED)(&format_args!(
            "writing to standard output: {e}"
        ))),
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| fail(STEP_FAILED)(&e))?;
    print_line(&text)
}

/// Prints a report for people, or as JSON with `--json`.
fn emit(report: &(impl serde::Serialize + std::fmt::Display), json: bool) -> Result<(), Failure> {
    if json {
        print_json(report)
    } else {
        print_line(report)
    }
}

/// Moves a bar to `done` of `total`.
fn tick(bar: &ProgressBar, done: usize, total: usize) {
    bar.set_length(total as u64);
    bar.set_position(done as u64);
}

fn bar(total: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:12} [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

fn run(command: Command) -> Result<u8, Failure> {
    match command {
        Command::ValidateData {
            file,
            stage,
            lang,
            min_script_share,
            max_off_script,
            tokenizer,
            max_tokens,
            allow_duplicates,
            json,
        } => {
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
        Command::AuditTokenizer {
            model_dir,
            lang,
            sample,
            allow,
            json,
        } => {
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
        Command::Train {
            model,
            data,
            stage,
            dapt_data,
            sft_data,
            out,
            python,
            seq_len,
            lang,
            max_steps,
            epochs,
            batch_size,
            grad_accum,
            lr,
            rank,
            gradient_checkpointing,
            checkpoint_every,
            resume,
            gpus,
            check_every,
            check_sets,
            check_prompts,
            check_tokens,
            gguf_check,
            gguf_check_limit,
            json,
        } => {
            let stages: Vec<(data::Stage, PathBuf)> = match (data, stage) {
                (Some(data), Some(stage)) => vec![(stage.into(), data)],
                _ => [(data::Stage::Dapt, dapt_data), (data::Stage::Sft, sft_data)]
                    .into_iter()
                    .filter_map(|(stage, data)| Some((stage, data?)))
                    .collect(),
            };
            if stages.is_empty() {
                return Err(fail(2)(
                    &"give --stage and --data, or --dapt-data and/or --sft-data",
                ));
            }
            let mut backend_args = vec![
                "--max-steps".to_owned(),
                max_steps.to_string(),
                "--epochs".to_owned(),
                epochs.to_string(),
                "--batch-size".to_owned(),
                batch_size.to_string(),
                "--grad-accum".to_owned(),
                grad_accum.to_string(),
                "--checkpoint-every".to_owned(),
                checkpoint_every.to_string(),
            ];
            if let Some(lr) = lr {
                backend_args.extend(["--lr".to_owned(), lr.to_string()]);
            }
            if let Some(rank) = rank {
                backend_args.extend(["--rank".to_owned(), rank.to_string()]);
            }
            if gradient_checkpointing {
                backend_args.push("--gradient-checkpointing".to_owned());
            }
            let sets = if check_sets.is_empty() && (check_every > 0 || gguf_check) {
                vec![train::quantized::bundled_eval_set(&out.join("eval"))
                    .map_err(|e| fail(STEP_FAILED)(&e))?]
            } else {
                check_sets
            };
            let opts = train::run::TrainOptions {
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
            };
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
            let failed = |e: &dyn std::fmt::Display, invalid: bool| {
                fail(if invalid { CHECK_FAILED } else { STEP_FAILED })(e)
            };
            let (finished, gguf_ok) = if stages.len() == 1 {
                let report = train::run::train(&opts, &on_event).map_err(|e| {
                    let invalid = matches!(
                        e,
                        train::run::TrainError::Prepare(train::PrepareError::Invalid { .. })
                    );
                    failed(&e, invalid)
                })?;
                progress.finish_and_clear();
                print_line(&report)?;
                (report.outcome == "done", report.gguf_checks_passed())
            } else {
                let report =
                    train::chain::train_stages(&opts, &stages, &on_event).map_err(|e| {
                        let invalid = matches!(
                            e,
                            train::chain::ChainError::Stage {
                                source: train::run::TrainError::Prepare(
                                    train::PrepareError::Invalid { .. }
                                ),
                                ..
                            }
                        );
                        failed(&e, invalid)
                    })?;
                progress.finish_and_clear();
                print_line(&report)?;
                let gguf_ok = report.stages.iter().all(|(_, r)| r.gguf_checks_passed());
                (report.done(), gguf_ok)
            };
            Ok(match (finished, gguf_ok) {
                (false, _) => 130,
                (true, false) => CHECK_FAILED,
                (true, true) => 0,
            })
        }
        Command::Preflight {
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
        } => {
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
        Command::Doctor { python, json } => {
            let python = train::env::find_python(python.as_deref());
            let report = train::env::doctor(&python).map_err(|e| fail(STEP_FAILED)(&e))?;
            emit(&report, json)?;
            Ok(if report.ready() { 0 } else { CHECK_FAILED })
        }
        Command::SetupTrain {
            python,
            venv,
            base_python,
        } => {
            let venv = venv.unwrap_or_else(train::env::default_venv);
            let report = train::env::setup_train(python.as_deref(), &venv, &base_python).map_err(
                |e| match e {
                    train::env::EnvError::Incompatible { .. } => fail(CHECK_FAILED)(&e),
                    other => fail(STEP_FAILED)(&other),
                },
            )?;
            print_line(&report)?;
            Ok(0)
        }
        Command::PrepareData {
            file,
            stage,
            model,
            out,
            seq_len,
            lang,
            json,
        } => {
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
        Command::Merge {
            base,
            adapters,
            out,
            overwrite,
            out_dtype,
            json,
        } => {
            let opts = merge::MergeOptions {
                base,
                adapters,
                out,
                overwrite,
                out_dtype: out_dtype.map(FloatArg::dtype),
            };
            let progress = bar(0, "merging");
            let report = merge::merge(&opts, &|p: merge::MergeProgress| {
                tick(&progress, p.done, p.total)
            })
            .map_err(|e| fail(STEP_FAILED)(&e))?;
            progress.finish_and_clear();
            emit(&report, json)?;
            Ok(0)
        }
        Command::Convert {
            hf,
            out,
            out_type,
            threads,
            overwrite,
            json,
        } => {
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
        Command::ImportGguf {
            gguf,
            out,
            overwrite,
            json,
        } => {
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
        Command::Quantize {
            input,
            output,
            qtype,
            imatrix,
            threads,
            allow_requantize,
            overwrite,
            json,
        } => {
            let opts = quantize::QuantizeOptions {
                input,
                output,
                qtype: quantize::QuantType::parse(&qtype).map_err(|e| fail(2)(&e))?,
                imatrix,
                threads,
                overwrite,
                allow_requantize,
            };
            let report = quantize::quantize(&opts).map_err(|e| match e {
                quantize::QuantizeError::BadInput { .. }
                | quantize::QuantizeError::BadImatrix { .. } => fail(BAD_INPUT)(&e),
                other => fail(STEP_FAILED)(&other),
            })?;
            emit(&report, json)?;
            Ok(0)
        }
        Command::Eval {
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
        } => {
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
        Command::Publish {
            model,
            urls,
            id,
            name,
            licence,
            catalog,
        } => {
            let opts = publish::PublishOptions {
                model,
                urls,
                id,
                name,
                licence,
                catalog,
            };
            let entry = publish::publish(&opts).map_err(|e| fail(BAD_INPUT)(&e))?;
            print_json(&entry)?;
            Ok(0)
        }
    }
}

/// Parses a count that must be at least 1.
fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A line above the progress bar, or on stderr when there is no terminal to draw one on.
fn say(progress: &ProgressBar, line: String) {
    if progress.is_hidden() {
        let _ = writeln!(std::io::stderr(), "{line}");
    } else {
        progress.println(line);
    }
}

/// Shows one training event on the progress bar (or above it).
fn show_train_event(progress: &ProgressBar, event: &train::run::TrainEvent) {
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

fn write_report(path: &std::path::Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    model_tools::hf::write_atomically(path, |w| w.write_all(bytes))
        .map_err(|e| fail(STEP_FAILED)(&e))
}
