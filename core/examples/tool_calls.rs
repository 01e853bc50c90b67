//! How often a small model's tool calls are usable, with the lazy call grammar and without it.
//!
//! SmolLM2-135M with the Hermes fixture template (`core/tests/fixtures/tool_templates/`), the
//! four tools of `assets/eval/tools/tools.json` and the questions of
//! `assets/eval/tools/cases.jsonl` (16 that need a tool, 4 that need none), greedy, each after
//! one worked example of a call (to `get_time`, for Tokyo). Two modes on the same prompts:
//! `grammar` (tool choice `auto`: the lazy grammar holds once the model writes `<tool`) and
//! `free` (tool choice `none`: the same tools in the prompt, the raw text split and parsed
//! afterwards). Counted per mode: questions that got a call, calls to the right tool, calls
//! whose arguments validate against that tool's schema, and calls on questions that need none.
//!
//! `cargo run --release --example tool_calls -- [--verbose] [MODEL] [TEMPLATE]` (`--verbose`:
//! each question's outcome).

use std::path::PathBuf;

use serde_json::{json, Value};
use vazhi_core::engine::split::{Markers, SegmentKind, Splitter};
use vazhi_core::engine::{
    Engine, EngineConfig, FinishReason, GenerateParams, Message, Sampling, ToolCall, ToolChoice,
    ToolFormat, ToolSpec,
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[derive(Default)]
struct Tally {
    called: u32,
    right_tool: u32,
    valid: u32,
    false_calls: u32,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "--verbose");
    args.retain(|a| a != "--verbose");
    let models = std::env::var("VAZHI_MODELS").map_or_else(
        |_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/vazhi/models"),
        PathBuf::from,
    );
    let model = args.first().map_or_else(
        || models.join("SmolLM2-135M-Instruct.Q4_1.gguf"),
        PathBuf::from,
    );
    let template = args.get(1).map_or_else(
        || repo().join("core/tests/fixtures/tool_templates/hermes.jinja"),
        PathBuf::from,
    );
    let engine = Engine::load(
        &model,
        EngineConfig {
            n_ctx: Some(2048),
            chat_template: Some(std::fs::read_to_string(&template)?),
            ..EngineConfig::default()
        },
    )?;
    let format = engine
        .info()
        .tool_format
        .ok_or("the template renders no tools")?;
    let tools: Vec<ToolSpec> = serde_json::from_str(&std::fs::read_to_string(
        repo().join("assets/eval/tools/tools.json"),
    )?)?;
    let cases: Vec<Value> = std::fs::read_to_string(repo().join("assets/eval/tools/cases.jsonl"))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let example = ToolCall {
        id: "call_1".into(),
        name: "get_time".into(),
        arguments: json!({"city": "Tokyo"}),
    };
    let needing = cases.iter().filter(|c| !c["tool"].is_null()).count();
    println!(
        "model {}, {} questions ({needing} need a tool), greedy, one worked example",
        model.file_name().unwrap_or_default().to_string_lossy(),
        cases.len()
    );
    for (mode, choice) in [("grammar", ToolChoice::Auto), ("free", ToolChoice::None)] {
        let mut tally = Tally::default();
        for case in &cases {
            let messages = vec![
                Message::system("You are a helpful assistant."),
                Message::user("What time is it in Tokyo?"),
                Message::assistant_calls("", vec![example.clone()]),
                Message::tool_result(
                    &example,
                    json!({"city": "Tokyo", "time": "21:40"}).to_string(),
                ),
                Message::assistant("It is 21:40 in Tokyo."),
                Message::user(case["question"].as_str().unwrap_or_default()),
            ];
            let params = GenerateParams {
                max_tokens: 96,
                sampling: Sampling::greedy(),
                tools: tools.clone(),
                tool_choice: choice,
                ..GenerateParams::default()
            };
            let answer = engine.generate(messages, params)?.wait()?;
            let calls: Vec<(String, Value)> = if choice == ToolChoice::Auto {
                if answer.finish == FinishReason::ToolCalls {
                    answer
                        .tool_calls
                        .iter()
                        .map(|c| (c.name.clone(), c.arguments.clone()))
                        .collect()
                } else {
                    // A call the grammar could not finish counts as an attempt that failed.
                    if answer.finish == FinishReason::Incomplete {
                        vec![(String::new(), Value::Null)]
                    } else {
                        Vec::new()
                    }
                }
            } else {
                free_calls(format, &answer.text)
            };
            if verbose {
                let shown: String = answer.text.chars().take(70).collect();
                println!(
                    "  {mode} {} {:?} → {:?} {shown:?}",
                    case["id"].as_str().unwrap_or_default(),
                    answer.finish,
                    calls.first().map(|c| c.0.as_str())
                );
            }
            let Some((name, arguments)) = calls.first() else {
                continue;
            };
            match case["tool"].as_str() {
                None => tally.false_calls += 1,
                Some(expected) => {
                    tally.called += 1;
                    if name == expected {
                        tally.right_tool += 1;
                        let spec = tools.iter().find(|t| t.name == *name);
                        let valid = spec.is_some_and(|t| {
                            serde_json::from_str::<Value>(&t.parameters)
                                .is_ok_and(|schema| jsonschema::is_valid(&schema, arguments))
                        });
                        tally.valid += u32::from(valid);
                    }
                }
            }
        }
        println!(
            "{mode:8} called {:2}/{needing}  right tool {:2}/{needing}  valid arguments {:2}/{needing}  calls without need {}/{}",
            tally.called,
            tally.right_tool,
            tally.valid,
            tally.false_calls,
            cases.len() - needing
        );
    }
    Ok(())
}

/// The calls in free text, split and parsed as the engine would; an unreadable call counts as
/// an attempt with no name.
fn free_calls(format: ToolFormat, text: &str) -> Vec<(String, Value)> {
    let mut splitter = Splitter::new(
        Markers {
            reasoning: None,
            call: Some(format.markers()),
        },
        false,
    );
    let mut segments = splitter.push(text);
    segments.extend(splitter.finish());
    let mut calls = Vec::new();
    for segment in segments.iter().filter(|s| s.kind == SegmentKind::Call) {
        match format.parse(&segment.text) {
            Ok(parsed) => calls.extend(parsed),
            Err(_) => calls.push((String::new(), Value::Null)),
        }
    }
    // Tool markup the model began but not as a call (`<tool_response>`…) is an attempt too.
    if calls.is_empty() && text.contains("<tool") {
        calls.push((String::new(), Value::Null));
    }
    calls
}
