//! `vazhi ask`: one question through the assistant — routed, answered from the knowledge base
//! and/or streamed from the model.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use vazhi_core::assistant::{AnswerSummary, AssistantAnswer, AssistantError, AssistantEvent};
use vazhi_core::builtin_tools::builtin_tools;
use vazhi_core::data_dir::DataDir;
use vazhi_core::engine::tools::check_tools;
use vazhi_core::engine::{
    EngineError, FinishReason, OutputConstraint, ToolChoice, ToolError, ToolSpec,
};

use super::assistant::{self, ModelUse};
use super::{EngineArgs, GenerateArgs};
use crate::exit;
use crate::output::errln;

/// Arguments of `vazhi ask`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The question.
    pub text: String,
    /// Print events as JSON lines (`routed`, `card`, `token`, `reasoning`, `tool_call`,
    /// `done`, `failed`).
    #[arg(long)]
    pub json: bool,
    /// Print timings and token counts after the answer (on stderr).
    #[arg(long)]
    pub stats: bool,
    /// Answer from the knowledge base only, without loading a model.
    #[arg(long, conflicts_with_all = ["json_schema", "grammar", "tools", "builtin_tools"])]
    pub no_model: bool,
    /// The answer must be JSON following this JSON Schema (a file). The model answers even
    /// an exact question, grounded on its record; an answer cut short exits with 5.
    #[arg(long, value_name = "FILE", conflicts_with = "grammar")]
    pub json_schema: Option<PathBuf>,
    /// The answer must follow this GBNF grammar (a file; start rule `root`).
    #[arg(long, value_name = "FILE")]
    pub grammar: Option<PathBuf>,
    /// Tools the model may call: a JSON file holding an array of `{"name", "description",
    /// "parameters"}` (parameters: a JSON Schema object). Each call is printed (a
    /// `tool_call` event) and its result read as one line from standard input. Needs a chat
    /// template that renders tools (`--chat-template`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["json_schema", "grammar"])]
    pub tools: Option<PathBuf>,
    /// Let the model call the built-in knowledge tools `lookup(pack, key)` and
    /// `search(query)`; their records are printed as cards.
    #[arg(long, conflicts_with_all = ["json_schema", "grammar"])]
    pub builtin_tools: bool,
    /// The model's first move must be a tool call (then it decides).
    #[arg(long)]
    pub require_tool_call: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub generate: GenerateArgs,
}

/// Runs `vazhi ask`.
pub fn run(args: Args, data_dir: Option<&DataDir>) -> Result<ExitCode> {
    let data_dir = super::require_data_dir(data_dir)?;
    // Read and checked before any model loads: a bad schema costs nothing.
    let constraint = constraint(&args)?;
    let tools = tools(&args)?;
    let model = match (args.no_model, &constraint) {
        (true, _) => ModelUse::None,
        // Only the model can write JSON or call tools.
        (false, Some(_)) => ModelUse::Required,
        (false, None) if !tools.is_empty() => ModelUse::Required,
        (false, None) => ModelUse::IfInstalled,
    };
    let config = assistant::config(&args.engine, &args.generate, data_dir, model)?;
    let assistant = assistant::open(config, &args.engine)?;
    let mut params = args.generate.params();
    params.constraint = constraint;
    if args.require_tool_call && !tools.is_empty() {
        params.tool_choice = ToolChoice::Required;
    }
    params.tools = tools;
    let answer = assistant.ask_with(&args.text, &params);
    let style = Style {
        json: args.json,
        stats: args.stats,
    };
    match print_answer(answer, style, &mut crate::output::stdout())? {
        Ended::Done(summary) => Ok(match summary.finish {
            Some(FinishReason::Cancelled) => ExitCode::from(exit::INTERRUPTED),
            Some(reason @ (FinishReason::Incomplete | FinishReason::Invalid)) => {
                match &summary.task {
                    Some(task) => errln!(
                        "vazhi: the answer of task `{task}` was cut short by the task's token \
                         budget (or stopped) before its JSON was complete"
                    ),
                    None => {
                        let generated = summary.metrics.as_ref().map(|m| m.generated_tokens);
                        errln!("vazhi: {}", unfinished(reason, &args, generated));
                    }
                }
                ExitCode::from(exit::GENERATION_FAILED)
            }
            _ => ExitCode::SUCCESS,
        }),
        Ended::Failed(error) => Err(error.into()),
    }
}

/// The tools of `--tools` and `--builtin-tools`, read and checked.
fn tools(args: &Args) -> Result<Vec<ToolSpec>> {
    let mut tools = if args.builtin_tools {
        builtin_tools()
    } else {
        Vec::new()
    };
    if let Some(path) = &args.tools {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading tools {}", path.display()))?;
        let own: Vec<ToolSpec> = serde_json::from_str(&text)
            .map_err(|e| EngineError::from(ToolError::InvalidTool(e.to_string())))
            .with_context(|| path.display().to_string())?;
        tools.extend(own);
    }
    check_tools(&tools)
        .map_err(EngineError::from)
        .with_context(|| "the tools".to_owned())?;
    Ok(tools)
}

/// The constraint `--json-schema` or `--grammar` names, read and checked.
fn constraint(args: &Args) -> Result<Option<OutputConstraint>> {
    let read = |path: &Path, what: &str| {
        std::fs::read_to_string(path).with_context(|| format!("reading {what} {}", path.display()))
    };
    let constraint = match (&args.json_schema, &args.grammar) {
        (Some(path), _) => (
            OutputConstraint::JsonSchema(read(path, "JSON schema")?),
            path,
        ),
        (None, Some(path)) => (OutputConstraint::Grammar(read(path, "grammar")?), path),
        (None, None) => return Ok(None),
    };
    let (constraint, path) = constraint;
    constraint
        .to_gbnf()
        .map_err(EngineError::from)
        .with_context(|| path.display().to_string())?;
    Ok(Some(constraint))
}

/// Why a constrained answer is not usable, for stderr.
fn unfinished(reason: FinishReason, args: &Args, generated: Option<u32>) -> String {
    let what = if args.json_schema.is_some() {
        "schema"
    } else {
        "grammar"
    };
    match reason {
        FinishReason::Invalid => format!(
            "the answer is complete but fails the {what}: it uses a keyword the grammar cannot \
             enforce"
        ),
        _ if generated == Some(args.generate.max_tokens) => format!(
            "the answer was cut short (--max-tokens {}) before it was complete under the {what}",
            args.generate.max_tokens
        ),
        _ => format!(
            "the answer stopped (a full context, a stop string, or no token of the model fits \
             the {what} here) before it was complete under the {what}"
        ),
    }
}

/// How [`print_answer`] shows an answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// Every event as a JSON line (`routed`, `card`, `token`, `reasoning`, `tool_call`,
    /// `done`, `failed`).
    pub json: bool,
    /// The route, timings and token counts on stderr.
    pub stats: bool,
}

/// Printed after a sentence the fact guard marked (`--fact-guard mark`).
pub const UNSUPPORTED_MARK: &str = "[unsupported]";

/// How a printed answer ended.
#[derive(Debug)]
pub enum Ended {
    /// Complete (or cancelled: see the summary's `finish`).
    Done(AnswerSummary),
    /// Failed; with [`Style::json`], a `failed` line was printed.
    Failed(AssistantError),
}

/// Prints `answer` on `out` as it streams: cards framed ([`super::card_text`]), the model's
/// tokens as they come, notes on stderr; or, with [`Style::json`], one JSON line per event.
/// `vazhi ask` prints its one answer with it and `vazhi chat` each of its turns. The result
/// of each call to an app's tool is read as one line from standard input.
pub fn print_answer(
    mut answer: AssistantAnswer,
    style: Style,
    out: &mut impl Write,
) -> std::io::Result<Ended> {
    let mut streaming = false;
    let asked = Instant::now();
    let (mut first_card, mut first_token) = (None, None);
    while let Some(event) = answer.next() {
        match &event {
            AssistantEvent::Card(_) => {
                first_card.get_or_insert_with(|| asked.elapsed());
            }
            AssistantEvent::Token { .. } => {
                first_token.get_or_insert_with(|| asked.elapsed());
            }
            _ => {}
        }
        match event {
            AssistantEvent::Routed { route, reason } => {
                if style.json {
                    writeln!(
                        out,
                        "{}",
                        json!({"event": "routed", "route": route, "reason": reason.to_string()})
                    )?;
                } else if style.stats {
                    errln!("[{route} · {reason}]");
                }
            }
            AssistantEvent::Card(card) => {
                if style.json {
                    writeln!(out, "{}", json!({"event": "card", "card": card}))?;
                } else {
                    writeln!(out, "{}", super::card_text(&card))?;
                }
            }
            AssistantEvent::Token { text, unsupported } => {
                if style.json {
                    writeln!(
                        out,
                        "{}",
                        json!({"event": "token", "text": text, "unsupported": unsupported})
                    )?;
                } else {
                    streaming = true;
                    if unsupported {
                        // The fact guard found a fact in neither the question nor the cards.
                        let body = text.trim_end();
                        write!(out, "{body} {UNSUPPORTED_MARK}{}", &text[body.len()..])?;
                    } else {
                        write!(out, "{text}")?;
                    }
                    out.flush()?;
                }
            }
            AssistantEvent::Reasoning(text) => {
                if style.json {
                    writeln!(out, "{}", json!({"event": "reasoning", "text": text}))?;
                } else {
                    eprint!("{text}");
                }
            }
            AssistantEvent::ToolCall { call, builtin } => {
                if style.json {
                    writeln!(
                        out,
                        "{}",
                        json!({"event": "tool_call", "call": call, "builtin": builtin})
                    )?;
                    out.flush()?;
                } else {
                    errln!("[tool call {}: {} {}]", call.id, call.name, call.arguments);
                }
                if !builtin {
                    let result = read_tool_result(&call.id, style.json)?;
                    if let Err(e) = answer.submit_tool_result(&call.id, result) {
                        errln!("vazhi: {e}");
                    }
                }
            }
            AssistantEvent::Done(summary) => {
                if style.json {
                    writeln!(out, "{}", json!({"event": "done", "answer": summary}))?;
                } else {
                    if streaming {
                        writeln!(out)?;
                    }
                    if summary.model_unavailable {
                        errln!(
                            "(no model loaded: these records are the best answer from the data)"
                        );
                    }
                }
                if style.stats {
                    let ms = |d: Option<Duration>| {
                        d.map_or("-".to_owned(), |d| {
                            format!("{:.1} ms", d.as_secs_f64() * 1e3)
                        })
                    };
                    errln!(
                        "[first card {}, first token {}]",
                        ms(first_card),
                        ms(first_token)
                    );
                }
                if let (true, Some(m)) = (style.stats, &summary.metrics) {
                    errln!(
                        "[{} prompt tokens, {} generated, first token {:.0} ms, prompt {:.0} tok/s, generation {:.1} tok/s, {} threads]",
                        m.prompt_tokens, m.generated_tokens, m.time_to_first_token_ms, m.prompt_tokens_per_s, m.generation_tokens_per_s, m.threads
                    );
                }
                return Ok(Ended::Done(summary));
            }
            AssistantEvent::Failed(error) => {
                if style.json {
                    writeln!(
                        out,
                        "{}",
                        json!({"event": "failed", "error": error.to_string()})
                    )?;
                }
                return Ok(Ended::Failed(error));
            }
        }
    }
    // The stream always ends with Done or Failed; a worker gone first is a shutdown.
    Ok(Ended::Failed(EngineError::Shutdown.into()))
}

/// One line of standard input: the result of tool call `id` (an error result at its end).
fn read_tool_result(id: &str, quiet: bool) -> std::io::Result<String> {
    if !quiet {
        eprint!("result of {id}> ");
    }
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        return Ok(json!({"error": "no result: standard input ended"}).to_string());
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
