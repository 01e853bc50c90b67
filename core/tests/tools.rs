//! Tool calls and reasoning blocks on real weights: SmolLM2-135M with a Qwen/Hermes-style
//! fixture template (`fixtures/tool_templates/hermes.jinja`; the shipped models' own
//! templates render no tools). The lazy call grammar keeps what the model writes after
//! `<tool_call>` a well-formed call to a registered tool, so the whole round trip — call,
//! result, an answer that uses it — runs on the real model.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vazhi_core::assistant::{Assistant, AssistantConfig, AssistantEvent};
use vazhi_core::builtin_tools::builtin_tools;
use vazhi_core::engine::{
    Engine, EngineConfig, EngineError, Event, FinishReason, GenerateParams, Message,
    OutputConstraint, Sampling, ToolChoice, ToolError, ToolSpec,
};
use vazhi_core::knowledge::KnowledgeBase;
use vazhi_core::router::Router;
use vazhi_core::signing::TrustPolicy;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tool_templates")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// SmolLM2 with the Hermes fixture template (one engine for the whole test binary).
fn engine() -> Option<Engine> {
    static ENGINE: OnceLock<Option<Engine>> = OnceLock::new();
    ENGINE.get_or_init(load_smollm2).clone()
}

/// A SmolLM2 engine of its own, with the fixture template: for a test that checks the KV
/// cache, which the shared engine's other tests would replace meanwhile.
fn load_smollm2() -> Option<Engine> {
    let path = vazhi_tests::model(vazhi_tests::SMOLLM2)?;
    let config = EngineConfig {
        n_ctx: Some(2048),
        chat_template: Some(fixture("hermes.jinja")),
        ..EngineConfig::default()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match Engine::load(&path, config.clone()) {
            Err(EngineError::LoadInProgress) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return Some(other.unwrap()),
        }
    }
}

fn weather_tool() -> ToolSpec {
    ToolSpec::new(
        "get_weather",
        "Get the current weather in a city.",
        &json!({
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 40}},
            "required": ["city"]
        }),
    )
}

fn params(tools: Vec<ToolSpec>, choice: ToolChoice) -> GenerateParams {
    GenerateParams {
        max_tokens: 96,
        sampling: Sampling::greedy(),
        tools,
        tool_choice: choice,
        ..GenerateParams::default()
    }
}

/// One worked example of a call in the conversation: how a small model learns the format.
fn example_turn() -> Vec<Message> {
    let call = vazhi_core::engine::ToolCall {
        id: "call_1".into(),
        name: "get_weather".into(),
        arguments: json!({"city": "Paris"}),
    };
    vec![
        Message::system("You are a helpful assistant."),
        Message::user("What is the weather in Paris right now?"),
        Message::assistant_calls("", vec![call.clone()]),
        Message::tool_result(
            &call,
            json!({"city": "Paris", "temperature_c": 18, "sky": "cloudy"}).to_string(),
        ),
        Message::assistant("It is 18 °C and cloudy in Paris."),
    ]
}

#[test]
fn a_call_its_result_and_an_answer_that_uses_it_on_real_weights() {
    let Some(engine) = load_smollm2() else { return };
    // The model decides to call (tool choice `auto`): nothing forces the marker, the lazy
    // grammar only keeps the call well formed once the model has written it.
    let mut messages = example_turn();
    messages.push(Message::user("What is the weather in Chennai right now?"));
    let answer = engine
        .generate(
            messages.clone(),
            params(vec![weather_tool()], ToolChoice::Auto),
        )
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(answer.finish, FinishReason::ToolCalls, "{answer:?}");
    assert_eq!(answer.tool_calls.len(), 1, "{answer:?}");
    let call = &answer.tool_calls[0];
    assert_eq!(call.name, "get_weather");
    // Ids go on from the calls already in the conversation (the example's `call_1`).
    assert_eq!(call.id, "call_2");
    let city = call.arguments["city"].as_str().unwrap();
    assert!(city.contains("Chennai"), "{call:?}");
    // The call is not text for the user.
    assert!(!answer.text.contains("<tool_call>"), "{:?}", answer.text);

    let result = json!({"city": city, "temperature_c": 31, "sky": "sunny"}).to_string();
    messages.push(Message::assistant_calls(
        answer.text.clone(),
        answer.tool_calls.clone(),
    ));
    messages.push(Message::tool_result(call, result));
    let mut tokens = String::new();
    let mut last = None;
    for event in engine
        .generate(messages, params(vec![weather_tool()], ToolChoice::Auto))
        .unwrap()
    {
        match event {
            Event::Token(t) => tokens.push_str(&t),
            Event::Done(a) => last = Some(a),
            Event::Failed(e) => panic!("{e}"),
            Event::Reasoning(_) => {}
        }
    }
    let final_answer = last.unwrap();
    assert_eq!(tokens, final_answer.text);
    assert_eq!(
        final_answer.finish,
        FinishReason::EndOfText,
        "{final_answer:?}"
    );
    // The answer uses the result: 31 °C came only from the tool.
    assert!(final_answer.text.contains("31"), "{:?}", final_answer.text);
    // The KV cache of the first round was reused for the second.
    assert!(
        final_answer.metrics.cached_prompt_tokens > 100,
        "{:?}",
        final_answer.metrics
    );
}

#[test]
fn a_session_keeps_calls_and_results_in_its_history() {
    let Some(engine) = engine() else { return };
    let session = engine.session(Some("You are a helpful assistant.".into()));
    let answer = session
        .send(
            "What is the weather in Chennai right now?",
            params(vec![weather_tool()], ToolChoice::Required),
        )
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(answer.finish, FinishReason::ToolCalls, "{answer:?}");
    // The history holds the call, so the template renders it back.
    assert_eq!(
        session.history().last().unwrap().tool_calls,
        answer.tool_calls
    );
    // The session waits for the results: a new message is refused, results must be tool
    // messages.
    let refused = session
        .send("Something else.", params(vec![], ToolChoice::None))
        .unwrap_err();
    assert!(refused.to_string().contains("called tools"), "{refused}");
    assert!(session
        .send_tool_results(vec![Message::user("x")], params(vec![], ToolChoice::None))
        .is_err());
    let results = answer
        .tool_calls
        .iter()
        .map(|c| Message::tool_result(c, "{\"temperature_c\": 31}"))
        .collect::<Vec<_>>();
    let n = results.len();
    let last = session
        .send_tool_results(results, params(vec![weather_tool()], ToolChoice::None))
        .unwrap()
        .wait()
        .unwrap();
    assert_ne!(last.finish, FinishReason::ToolCalls);
    assert!(!last.text.is_empty());
    let history = session.history();
    assert_eq!(history.len(), 2 + n + 1, "{history:?}");
    assert!(session
        .send_tool_results(
            vec![Message::tool_result(&answer.tool_calls[0], "again")],
            params(vec![], ToolChoice::None)
        )
        .is_err());
    // Calls given up on leave the history as it was, and the session free.
    let before = session.history();
    let again = session
        .send(
            "And in Madurai?",
            params(vec![weather_tool()], ToolChoice::Required),
        )
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(again.finish, FinishReason::ToolCalls, "{again:?}");
    session.discard_tool_calls();
    assert_eq!(session.history(), before);
    assert!(session
        .send("Thanks.", params(vec![], ToolChoice::None))
        .unwrap()
        .wait()
        .is_ok());
}

#[test]
fn a_required_call_follows_the_tools_schema_greedy_and_seeded() {
    let Some(engine) = engine() else { return };
    let tools = vec![weather_tool(), builtin_tools().remove(1)];
    for sampling in [
        Sampling::greedy(),
        Sampling {
            temperature: 0.9,
            seed: 3,
            ..Sampling::default()
        },
    ] {
        let p = GenerateParams {
            sampling,
            ..params(tools.clone(), ToolChoice::Required)
        };
        let answer = engine
            .generate(vec![Message::user("Find kural 5 for me.")], p)
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(answer.finish, FinishReason::ToolCalls, "{answer:?}");
        for call in &answer.tool_calls {
            let spec = tools.iter().find(|t| t.name == call.name).unwrap();
            let schema: Value = serde_json::from_str(&spec.parameters).unwrap();
            assert!(
                jsonschema::is_valid(&schema, &call.arguments),
                "{call:?} against {schema}"
            );
        }
    }
}

#[test]
fn templates_without_tools_and_bad_tools_are_refused() {
    let Some(engine) = engine() else { return };
    let mut bad = weather_tool();
    bad.parameters = "{\"type\": \"string\"}".into();
    let err = engine
        .generate(
            vec![Message::user("hi")],
            params(vec![bad], ToolChoice::Auto),
        )
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Tools(ToolError::InvalidTool(_))),
        "{err}"
    );
    let mut both = params(vec![weather_tool()], ToolChoice::Auto);
    both.constraint = Some(OutputConstraint::JsonSchema("{}".into()));
    assert!(matches!(
        engine.generate(vec![Message::user("hi")], both),
        Err(EngineError::Tools(ToolError::WithConstraint))
    ));
    // The model's own template (no tools): a typed refusal before anything is generated.
    let Some(path) = vazhi_tests::model(vazhi_tests::SMOLLM2) else {
        return;
    };
    let plain = loop {
        match Engine::load(&path, EngineConfig::default()) {
            Err(EngineError::LoadInProgress) => std::thread::sleep(Duration::from_millis(50)),
            other => break other.unwrap(),
        }
    };
    assert_eq!(plain.info().tool_format, None);
    assert!(matches!(
        plain.generate(
            vec![Message::user("hi")],
            params(vec![weather_tool()], ToolChoice::Auto)
        ),
        Err(EngineError::Tools(ToolError::TemplateWithoutTools))
    ));
}

#[test]
fn reasoning_is_hidden_unless_asked_for_and_templates_read_enable_thinking() {
    let Some(engine) = engine() else { return };
    // A grammar makes the real model write a reasoning block, then an answer.
    let grammar = r#"root ::= "<think>" [a-z ]{3,30} "</think>" "The answer is " [0-9]{1,3} "." "#;
    let ask = |show: bool| {
        let p = GenerateParams {
            max_tokens: 64,
            sampling: Sampling::greedy(),
            constraint: Some(OutputConstraint::Grammar(grammar.into())),
            show_reasoning: show,
            ..GenerateParams::default()
        };
        let mut events = Vec::new();
        for event in engine
            .generate(vec![Message::user("What is six times seven?")], p)
            .unwrap()
        {
            events.push(event);
        }
        events
    };
    let hidden = ask(false);
    assert!(!hidden.iter().any(|e| matches!(e, Event::Reasoning(_))));
    let Some(Event::Done(answer)) = hidden.last() else {
        panic!("{hidden:?}")
    };
    assert!(
        answer.text.starts_with("The answer is "),
        "{:?}",
        answer.text
    );
    assert!(!answer.text.contains("think"), "{:?}", answer.text);
    assert!(answer.reasoning.is_empty());

    let shown = ask(true);
    let reasoning: String = shown
        .iter()
        .filter_map(|e| match e {
            Event::Reasoning(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    let Some(Event::Done(answer)) = shown.last() else {
        panic!("{shown:?}")
    };
    assert!(
        !reasoning.is_empty() && !reasoning.contains('<'),
        "{reasoning:?}"
    );
    assert_eq!(answer.reasoning, reasoning);
    assert!(
        answer.text.starts_with("The answer is "),
        "{:?}",
        answer.text
    );

    // Under a JSON Schema the answer is data: a `<think>` inside a string stays in it.
    let p = GenerateParams {
        max_tokens: 48,
        sampling: Sampling::greedy(),
        constraint: Some(OutputConstraint::JsonSchema(
            r#"{"type":"object","properties":{"tag":{"const":"<think>hi</think>"}},"required":["tag"]}"#
                .into(),
        )),
        ..GenerateParams::default()
    };
    let answer = engine
        .generate(vec![Message::user("Give the tag.")], p)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(answer.finish, FinishReason::EndOfText, "{answer:?}");
    assert!(
        answer.text.contains("<think>hi</think>"),
        "{:?}",
        answer.text
    );

    // `enable_thinking` reaches the template: on, the generation prompt opens the block, so
    // everything up to `</think>` is reasoning.
    let (off, _) = engine.render_prompt(vec![Message::user("hi")]).unwrap();
    assert!(!off.contains("<think>"), "{off}");
    let grammar = r#"root ::= [a-z ]{3,20} "</think>" "Done." "#;
    let p = GenerateParams {
        max_tokens: 48,
        sampling: Sampling::greedy(),
        constraint: Some(OutputConstraint::Grammar(grammar.into())),
        enable_thinking: Some(true),
        show_reasoning: true,
        ..GenerateParams::default()
    };
    let answer = engine
        .generate(vec![Message::user("Say done.")], p)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(answer.text, "Done.", "{answer:?}");
    assert!(!answer.reasoning.is_empty(), "{answer:?}");
}

#[test]
fn the_assistant_runs_builtin_tools_and_waits_for_the_apps() {
    let Some(engine) = engine() else { return };
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(&dir.path().join("kb.db")).unwrap();
    let packs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/packs");
    kb.import_dir(&packs.join("thirukkural"), &TrustPolicy::any())
        .unwrap();
    let config = AssistantConfig {
        params: GenerateParams {
            max_tokens: 96,
            sampling: Sampling::greedy(),
            ..GenerateParams::default()
        },
        max_tool_rounds: 1,
        // Tamil records are long in SmolLM2's tokens; the test's context is 2,048.
        max_tool_result_bytes: 600,
        ..AssistantConfig::default()
    };
    let assistant = Assistant::new(kb, Router::builtin().unwrap(), Some(engine), config);

    // The app's tool: the call comes out as an event; its result, submitted from another
    // thread, is what the model reads next.
    let p = GenerateParams {
        tools: vec![weather_tool()],
        tool_choice: ToolChoice::Required,
        ..assistant.config().params.clone()
    };
    let (tx, rx) = mpsc::channel();
    let handle = assistant
        .ask_into("Is it raining in Madurai?", &p, move |e| tx.send(e).is_ok())
        .unwrap();
    let mut saw_call = None;
    let mut summary = None;
    for event in rx.iter() {
        match event {
            AssistantEvent::ToolCall { call, builtin } => {
                assert!(!builtin);
                let h = handle.clone();
                let id = call.id.clone();
                std::thread::spawn(move || {
                    h.submit_tool_result(&id, "{\"rain_mm\": 12}".into())
                        .unwrap()
                });
                saw_call = Some(call);
            }
            AssistantEvent::Done(s) => summary = Some(s),
            AssistantEvent::Failed(e) => panic!("{e}"),
            _ => {}
        }
    }
    let call = saw_call.expect("no tool call");
    assert_eq!(call.name, "get_weather");
    let summary = summary.unwrap();
    assert!(summary.tool_calls >= 1, "{summary:?}");
    assert_ne!(summary.finish, Some(FinishReason::ToolCalls));
    // The result was consumed: a second one for the same id is refused.
    assert!(handle.submit_tool_result(&call.id, "x".into()).is_err());

    // Built-in search: run by the assistant, its records arrive as cards — exactly the
    // records the knowledge base gives for the query the model wrote.
    let p = GenerateParams {
        tools: vec![builtin_tools().remove(1)],
        tool_choice: ToolChoice::Required,
        ..assistant.config().params.clone()
    };
    let mut cards_after_call = Vec::new();
    let mut calls = Vec::new();
    for event in assistant.ask_with("Tell me about virtue and rain.", &p) {
        match event {
            AssistantEvent::ToolCall { builtin, call } => {
                assert!(builtin);
                calls.push(call);
            }
            AssistantEvent::Card(card) if !calls.is_empty() => cards_after_call.push(card.id),
            AssistantEvent::Done(s) => assert!(s.tool_calls >= 1, "{s:?}"),
            AssistantEvent::Failed(e) => panic!("{e}"),
            _ => {}
        }
    }
    assert!(!calls.is_empty());
    let expected: Vec<String> = calls
        .iter()
        .flat_map(|c| {
            let query = c.arguments["query"].as_str().unwrap();
            assistant
                .knowledge()
                .retrieve(query, assistant.config().search_cards, None)
                .unwrap()
                .hits
                .into_iter()
                .map(|h| h.card.id)
        })
        .collect();
    assert_eq!(cards_after_call, expected, "{calls:?}");
    assert!(
        !expected.is_empty(),
        "the model's query found nothing: {calls:?}"
    );
}

#[test]
fn an_app_that_never_answers_a_call_times_out_into_an_error_result() {
    let Some(engine) = engine() else { return };
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(&dir.path().join("kb.db")).unwrap();
    let config = AssistantConfig {
        params: GenerateParams {
            max_tokens: 64,
            sampling: Sampling::greedy(),
            ..GenerateParams::default()
        },
        tool_result_timeout: Duration::from_millis(300),
        ..AssistantConfig::default()
    };
    let assistant = Assistant::new(kb, Router::builtin().unwrap(), Some(engine), config);
    let p = GenerateParams {
        tools: vec![weather_tool()],
        tool_choice: ToolChoice::Required,
        ..assistant.config().params.clone()
    };
    let started = Instant::now();
    let summary = assistant
        .ask_with("Is it raining in Madurai?", &p)
        .wait()
        .unwrap();
    assert!(summary.tool_calls >= 1, "{summary:?}");
    assert!(summary.finish.is_some(), "{summary:?}");
    // The answer went on after the wait instead of hanging.
    assert!(started.elapsed() < Duration::from_secs(60));
}
