//! `vazhi`: the desktop command line over the Vazhi SDK.
//!
//! Thin on purpose: argument parsing, printing and exit codes live here; everything an app
//! would also need lives in `vazhi-core`.

mod commands;
mod exit;
mod model_path;
mod output;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Vazhi — an offline assistant: a small GGUF model run by llama.cpp, on this machine.
///
/// Models: `--model PATH` names a GGUF file. Without it, vazhi uses the default chat model
/// (SmolLM2-135M-Instruct) from the data directory's models/ folder, else from the model cache
/// that `scripts/setup` fills ($VAZHI_MODELS, default ~/.cache/vazhi/models).
///
/// Exit codes: 0 success · 1 other error · 2 bad usage · 3 model file refused ·
/// 4 model not found · 5 generation failed · 6 download failed · 7 download failed
/// verification (quarantined) · 8 does not fit (storage or RAM) · 9 feedback key unavailable
/// (`vazhi feedback reset` starts over) · 10 data damaged (left as it is) · 130 interrupted (a
/// download is paused and resumes on the next run).
#[derive(Debug, Parser)]
#[command(name = "vazhi", version, propagate_version = true)]
struct Cli {
    /// Where Vazhi keeps its state (models/, downloads/, knowledge.db, feedback.db, keys/).
    #[arg(long, global = true, env = "VAZHI_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Log detail on stderr (-v: info, -vv: debug, -vvv: trace). User text is only ever
    /// logged at trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(flatten)]
    trust: commands::trust::TrustArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a GGUF model file and print what it contains (llama.cpp is not involved).
    Info(commands::info::Args),
    /// Ask one question and stream the answer.
    Ask(commands::ask::Args),
    /// Chat interactively: answers from the knowledge base and the model (--no-kb: the model
    /// alone); /reset starts over, /quit or Ctrl-D leaves.
    Chat(commands::chat::Args),
    /// The knowledge base: import packs, search, look up (in the data directory).
    Kb(commands::kb::Args),
    /// Measure the engine against a bare llama-cpp-2 loop (and llama-bench, if given).
    Bench(commands::bench::Args),
    /// Catalog models: list, download (resumable, verified), verify, install, remove.
    Model(commands::model::Args),
    /// Encrypted feedback (ratings, corrections): add, import, list, export, purge, reset.
    Feedback(commands::feedback::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let data_dir = match cli.data_dir {
        Some(dir) => Some(vazhi_core::data_dir::DataDir::new(dir)),
        None => vazhi_core::data_dir::DataDir::from_env_or_default(),
    };
    let result = match commands::trust::init(&cli.trust) {
        Err(e) => Err(e),
        Ok(()) => match cli.command {
            Command::Info(args) => commands::info::run(args),
            Command::Ask(args) => commands::ask::run(args, data_dir.as_ref()),
            Command::Chat(args) => commands::chat::run(args, data_dir.as_ref()),
            Command::Bench(args) => commands::bench::run(args, data_dir.as_ref()),
            Command::Kb(args) => commands::kb::run(args, data_dir.as_ref()),
            Command::Model(args) => commands::model::run(args, data_dir.as_ref()),
            Command::Feedback(args) => commands::feedback::run(args, data_dir.as_ref()),
        },
    };
    match result {
        Ok(code) => code,
        // The reader of our output has gone (`vazhi ... | head`): end quietly, like ripgrep.
        Err(err) if output::is_closed(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // Never panic on the way out (stderr may be a file on a full disk).
            let _ = writeln!(std::io::stderr(), "vazhi: error: {err:#}");
            exit::code_for(&err)
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VAZHI_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},llama-cpp-2=warn"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
