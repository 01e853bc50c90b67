//! `vazhi chat`: an interactive conversation on the terminal.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use vazhi_core::data_dir::DataDir;
use vazhi_core::engine::{EngineError, Event};

use super::assistant::{self, ModelUse};
use super::{EngineArgs, GenerateArgs};
use crate::output::errln;

/// Arguments of `vazhi chat`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub generate: GenerateArgs,
}

/// Runs `vazhi chat`.
pub fn run(args: Args, data_dir: Option<&DataDir>) -> Result<ExitCode> {
    let data_dir = super::require_data_dir(data_dir)?;
    let config = assistant::config(&args.engine, &args.generate, data_dir, ModelUse::Required)?;
    let assistant = assistant::open(config, &args.engine)?;
    let engine = assistant.engine().context("no model loaded")?;
    let info = engine.info();
    errln!(
        "vazhi chat · {} ({}), context {} tokens, {} threads · /reset starts over, /quit leaves",
        info.report.name.as_deref().unwrap_or("model"),
        info.report.architecture,
        info.plan.n_ctx,
        info.threads
    );
    let session = engine.session(args.generate.system.clone());
    let params = args.generate.params();
    let stdin = std::io::stdin();
    let mut out = crate::output::stdout();
    loop {
        write!(out, "> ")?;
        out.flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            writeln!(out)?;
            break;
        }
        let line = line.trim();
        match line {
            "" => continue,
            "/quit" | "/exit" => break,
            "/reset" => {
                session.clear()?;
                errln!("(history cleared)");
                continue;
            }
            _ => {}
        }
        let generation = match session.send(line, params.clone()) {
            Ok(g) => g,
            Err(e @ (EngineError::PromptTooLarge { .. } | EngineError::EmptyPrompt)) => {
                errln!("vazhi: {e}");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for event in generation {
            match event {
                Event::Token(text) => {
                    write!(out, "{text}")?;
                    out.flush()?;
                }
                Event::Done(answer) => {
                    writeln!(out)?;
                    if answer.metrics.dropped_turns > 0 {
                        errln!(
                            "(oldest {} turns left out to fit the context)",
                            answer.metrics.dropped_turns
                        );
                    }
                }
                Event::Failed(e) => errln!("\nvazhi: {e}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
