//! `model-tools`: the desktop CLI that turns a fine-tuned model into the Q4_K_M file an app
//! downloads, and refuses to ship a broken one.
//!
//! Exit codes: 0 success, 1 the check failed (bad data, tokenizer findings, gate failed),
//! 2 bad usage, 3 bad input files, 4 a step failed (I/O, llama.cpp).
//!
//! This file holds the command line and the dispatch; each subcommand lives in its own file
//! under `commands/`.

mod commands;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::output::Failure;
use commands::{
    audit_tokenizer, convert, doctor, eval, import_gguf, merge, preflight, prepare_data, publish,
    quantize, setup_train, train, validate_data,
};

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
    ValidateData(validate_data::Args),
    /// Check a tokenizer: holes, special tokens, BOS/EOS/PAD, fertility.
    AuditTokenizer(audit_tokenizer::Args),
    /// Check a training file, then turn it into token sequences with their training masks
    /// (SFT: assistant turns only; DAPT: packed, every token) — the input of `train`.
    PrepareData(prepare_data::Args),
    /// What the training Python has: torch, CUDA, GPUs, bf16, transformers, PEFT.
    Doctor(doctor::Args),
    /// Adopt a Python that can train (--python), or build a venv from pinned requirements.
    SetupTrain(setup_train::Args),
    /// Train a LoRA adapter: checks and prepares the data, then runs and supervises the
    /// Python backend (progress, log, checkpoints, divergence, answer and quantized checks).
    /// One stage (`--stage` + `--data`), or DAPT then SFT (`--dapt-data` + `--sft-data`), the
    /// DAPT adapter merged in full precision in between.
    Train(train::Args),
    /// Try the whole training path in minutes: a few DAPT and SFT steps on a sample, merge,
    /// convert, quantize, eval. Non-zero exit on any failure.
    Preflight(preflight::Args),
    /// Merge LoRA adapters into a full-precision base, tensor by tensor.
    Merge(merge::Args),
    /// Convert a Hugging Face checkpoint to GGUF.
    Convert(convert::Args),
    /// Dequantize a GGUF back to a Hugging Face checkpoint (f32 safetensors).
    ImportGguf(import_gguf::Args),
    /// Quantize a GGUF with llama.cpp (Q4_K_M, Q5_K_M, Q8_0, ...).
    Quantize(quantize::Args),
    /// Score a model on eval sets and gate it against its reference.
    Eval(eval::Args),
    /// Print the SDK catalog entry for a finished GGUF.
    Publish(publish::Args),
}

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

/// Runs one subcommand; its exit code, or the failure that ended it.
fn run(command: Command) -> Result<u8, Failure> {
    match command {
        Command::ValidateData(args) => validate_data::run(args),
        Command::AuditTokenizer(args) => audit_tokenizer::run(args),
        Command::PrepareData(args) => prepare_data::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::SetupTrain(args) => setup_train::run(args),
        Command::Train(args) => train::run(args),
        Command::Preflight(args) => preflight::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Convert(args) => convert::run(args),
        Command::ImportGguf(args) => import_gguf::run(args),
        Command::Quantize(args) => quantize::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Publish(args) => publish::run(args),
    }
}
