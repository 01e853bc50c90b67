//! `vazhi chat`: an interactive conversation on the terminal.
//!
//! Each turn goes through the assistant's [`Conversation`], as a question to `vazhi ask` does:
//! routed, answered from the knowledge base (cards printed as `ask` prints them) and/or by the
//! model, whose follow-ups see the earlier turns. `--no-kb` chats with the model alone, through
//! its [`ChatSession`]: no router, no records. `--session FILE` restores the conversation saved
//! in FILE (its KV state too, when the model is the one it was saved with) and saves it there,
//! encrypted with the data directory's session key, after every answer.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use vazhi_core::assistant::{Assistant, AssistantError, Conversation};
use vazhi_core::data_dir::DataDir;
use vazhi_core::engine::{ChatSession, EngineError, Event, GenerateParams};
use vazhi_core::feedback::FileKeyProvider;
use vazhi_core::sessions::{RestoreOutcome, SessionError};

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
    /// Keep the conversation in FILE: restored from it at start (with the model's KV state
    /// when the model, context and template are the ones it was saved with), saved to it
    /// after every answer. Encrypted with the data directory's session key.
    #[arg(long, value_name = "FILE", conflicts_with = "no_kb")]
    pub session: Option<PathBuf>,
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
    let keys = FileKeyProvider::new(data_dir.keys());
    // Where answers are saved: not a file that exists but could not be read (another app's
    // file, a newer format, another data directory's key): it is left as it is.
    let mut session = args.session.as_deref();
    let mut chat = match session {
        Some(path) if path.exists() => {
            let (conversation, readable) = restore(&assistant, path, &keys)?;
            if !readable {
                session = None;
            }
            Chat::Assistant(conversation)
        }
        Some(path) => {
            errln!("(new session: {})", path.display());
            new_chat()?
        }
        None => new_chat()?,
    };
    let save = |chat: &Chat| {
        if let (Some(path), Chat::Assistant(conversation)) = (session, chat) {
            save_session(conversation, path, &keys);
        }
    };
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
                save(&chat);
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
                        save(&chat);
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

/// Restores the conversation in `path`, saying on stderr how (`[code]` names a fallback's
/// reason, as [`RestoreIssue::code`](vazhi_core::sessions::RestoreIssue::code) does), and
/// whether the file was readable (an unreadable one is not written over).
fn restore(
    assistant: &Assistant,
    path: &Path,
    keys: &FileKeyProvider,
) -> Result<(Conversation, bool)> {
    let restored = assistant
        .restore_conversation(path, keys)
        .with_context(|| format!("cannot open the session {}", path.display()))?;
    let readable = match &restored.outcome {
        RestoreOutcome::Restored { messages, tokens } => {
            errln!("(session restored: {messages} messages, KV state of {tokens} tokens)");
            true
        }
        RestoreOutcome::HistoryOnly { messages, issue } => {
            errln!(
                "(session restored: {messages} messages; KV state not used [{}]: {issue}; the next answer re-reads the history)",
                issue.code()
            );
            true
        }
        RestoreOutcome::Empty { issue } => {
            errln!(
                "(session not restored [{}]: {issue}; starting a new conversation, not saved: {} is left as it is)",
                issue.code(),
                path.display()
            );
            false
        }
    };
    Ok((restored.conversation, readable))
}

/// Saves the conversation to `path`; a failure is reported and the chat goes on.
fn save_session(conversation: &Conversation, path: &Path, keys: &FileKeyProvider) {
    match conversation.save(path, keys) {
        Ok(_) => {}
        // Without a model there is no history to keep; the file stays as it was.
        Err(SessionError::NoModel) => {}
        Err(e) => errln!("vazhi: the session was not saved: {e}"),
    }
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
