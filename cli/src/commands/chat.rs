//! `vazhi chat`: an interactive conversation on the terminal.
//!
//! Each turn goes through the assistant's [`Conversation`], as a question to `vazhi ask` does:
//! routed, answered from the knowledge base (cards printed as `ask` prints them) and/or by the
//! model, whose follow-ups see the earlier turns. `--no-kb` chats with the model alone, through
//! its [`ChatSession`]: no router, no records.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use vazhi_core::assistant::{Assistant, AssistantError, Conversation};
use vazhi_core::data_dir::DataDir;
use vazhi_core::engine::{ChatSession, EngineError, Event, GenerateParams};

use super::ask::{print_answer, Ended, Style};
use super::assistant::{self, ModelUse};
use super::{EngineArgs, GenerateArgs};
use crate::output::errln;

/// Arguments of `vazhi chat`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Chat with the model alone: no knowledge base, no router (needs a model).
    #[arg(long)]
    pub no_kb: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub generate: GenerateArgs,
}

/// What answers the turns.
#[derive(Debug)]
enum Chat {
    /// The assistant: router, knowledge base, and the model if one is loaded.
    Assistant(Conversation),
    /// The model alone (`--no-kb`).
    Model(ChatSession),
}

/// Runs `vazhi chat`.
pub fn run(args: Args, data_dir: Option<&DataDir>) -> Result<ExitCode> {
    let data_dir = super::require_data_dir(data_dir)?;
    let model = if args.no_kb {
        ModelUse::Required
    } else {
        ModelUse::IfInstalled
    };
    let config = assistant::config(&args.engine, &args.generate, data_dir, model)?;
    let assistant = assistant::open(config, &args.engine)?;
    greet(&assistant, args.no_kb);
    let new_chat = || -> Result<Chat> {
        Ok(if args.no_kb {
            let engine = assistant.engine().context("--no-kb needs a model")?;
            Chat::Model(engine.session(args.generate.system.clone()))
        } else {
            Chat::Assistant(assistant.conversation())
        })
    };
    let mut chat = new_chat()?;
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
                match &chat {
                    Chat::Model(session) => session.clear()?,
                    Chat::Assistant(_) => chat = new_chat()?,
                }
                errln!("(history cleared)");
                continue;
            }
            _ => {}
        }
        match &chat {
            Chat::Assistant(conversation) => {
                let answer = conversation.ask_with(line, &params);
                match print_answer(answer, Style::default(), &mut out)? {
                    Ended::Done(summary) => {
                        if let Some(metrics) = &summary.metrics {
                            dropped_turns(metrics.dropped_turns);
                        }
                    }
                    // The model failed on this turn (a prompt too large, say): the chat
                    // goes on. A knowledge base that fails will fail again: stop.
                    Ended::Failed(AssistantError::Engine(e)) => errln!("vazhi: {e}"),
                    Ended::Failed(e) => return Err(e.into()),
                }
            }
            Chat::Model(session) => model_turn(session, line, &params, &mut out)?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The first line on stderr: the model (if any), where answers come from, the commands.
fn greet(assistant: &Assistant, no_kb: bool) {
    let source = match (assistant.engine(), no_kb) {
        (Some(engine), _) => {
            let info = engine.info();
            format!(
                "{} ({}), context {} tokens, {} threads{}",
                info.report
                    .name
                    .as_deref()
                    .map_or("model".into(), super::one_line),
                info.report.architecture,
                info.plan.n_ctx,
                info.threads,
                if no_kb { "" } else { ", knowledge base" }
            )
        }
        (None, _) => "knowledge base only (no model)".to_owned(),
    };
    errln!("vazhi chat · {source} · /reset starts over, /quit leaves");
}

/// One turn with the model alone: its tokens streamed to `out`.
fn model_turn(
    session: &ChatSession,
    line: &str,
    params: &GenerateParams,
    out: &mut impl Write,
) -> Result<()> {
    let generation = match session.send(line, params.clone()) {
        Ok(g) => g,
        Err(e @ (EngineError::PromptTooLarge { .. } | EngineError::EmptyPrompt)) => {
            errln!("vazhi: {e}");
            return Ok(());
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
                dropped_turns(answer.metrics.dropped_turns);
            }
            Event::Failed(e) => errln!("\nvazhi: {e}"),
            Event::Reasoning(_) => {}
        }
    }
    Ok(())
}

/// Says that the oldest turns were left out to fit the context, if they were.
fn dropped_turns(n: u32) {
    if n > 0 {
        errln!("(oldest {n} turns left out to fit the context)");
    }
}
