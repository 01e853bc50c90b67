//! `vazhi ask`: one question, one streamed answer.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;
use vazhi_core::data_dir::DataDir;
use vazhi_core::engine::{Event, FinishReason};

use super::{EngineArgs, GenerateArgs};
use crate::exit;

/// Arguments of `vazhi ask`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The question.
    pub text: String,
    /// Print events as JSON lines (`token`, `done`, `failed`) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Print timings and token counts after the answer (on stderr).
    #[arg(long)]
    pub stats: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub generate: GenerateArgs,
}

/// Runs `vazhi ask`.
pub fn run(args: Args, data_dir: Option<&DataDir>) -> Result<ExitCode> {
    let engine = args.engine.load(data_dir)?;
    let session = engine.session(args.generate.system.clone());
    let generation = session.send(&args.text, args.generate.params())?;
    let mut out = std::io::stdout().lock();
    for event in generation {
        match event {
            Event::Token(text) if args.json => {
                writeln!(out, "{}", json!({"event": "token", "text": text}))?;
            }
            Event::Token(text) => {
                write!(out, "{text}")?;
                out.flush()?;
            }
            Event::Done(answer) => {
                if args.json {
                    writeln!(out, "{}", json!({"event": "done", "answer": answer}))?;
                } else {
                    writeln!(out)?;
                }
                if args.stats {
                    let m = &answer.metrics;
                    eprintln!(
                        "[{} prompt tokens, {} generated, first token {:.0} ms, prompt {:.0} tok/s, generation {:.1} tok/s, {} threads, finish {:?}]",
                        m.prompt_tokens, m.generated_tokens, m.time_to_first_token_ms,
                        m.prompt_tokens_per_s, m.generation_tokens_per_s, m.threads, answer.finish
                    );
                }
                return Ok(if answer.finish == FinishReason::Cancelled {
                    ExitCode::from(exit::INTERRUPTED)
                } else {
                    ExitCode::SUCCESS
                });
            }
            Event::Failed(error) => {
                if args.json {
                    writeln!(
                        out,
                        "{}",
                        json!({"event": "failed", "error": error.to_string()})
                    )?;
                }
                return Err(error.into());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
