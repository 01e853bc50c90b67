//! Constrained output against both real models: every answer that ends with end-of-text
//! validates against its JSON Schema (checked here with the `jsonschema` crate) or matches its
//! grammar, greedy and with seeded sampling; cut answers end `Incomplete`; unusable grammars and
//! schemas are refused with typed errors before anything is generated.
//!
//! The cases are `assets/eval/structured/{schemas,grammars}.jsonl`.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use vazhi_core::engine::{
    ConstraintError, Engine, EngineConfig, EngineError, Event, FinishReason, GenerateParams,
    Message, OutputConstraint, Sampling,
};

const MAX_TOKENS: u32 = 200;

fn engine(file: &'static str) -> Option<Engine> {
    static SMOL: OnceLock<Option<Engine>> = OnceLock::new();
    static GEMMA: OnceLock<Option<Engine>> = OnceLock::new();
    let cell = if file == vazhi_tests::SMOLLM2 {
        &SMOL
    } else {
        &GEMMA
    };
    cell.get_or_init(|| {
        let path = vazhi_tests::model(file)?;
        let config = EngineConfig {
            n_ctx: Some(2048),
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
    })
    .clone()
}

fn cases(file: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../assets/eval/structured")
        .join(file);
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Greedy, and a seeded draw at temperature 0.8.
fn modes() -> [(&'static str, Sampling); 2] {
    [
        ("greedy", Sampling::greedy()),
        (
            "seeded",
            Sampling {
                temperature: 0.8,
                seed: 7,
                ..Sampling::default()
            },
        ),
    ]
}

fn ask(
    engine: &Engine,
    question: &str,
    constraint: OutputConstraint,
    sampling: Sampling,
    max_tokens: u32,
) -> vazhi_core::engine::Answer {
    let prompt = match &constraint {
        OutputConstraint::JsonSchema(schema) => {
            format!("{question}\n\nAnswer with JSON that follows this schema:\n{schema}")
        }
        OutputConstraint::Grammar(_) => question.to_owned(),
    };
    let params = GenerateParams {
        max_tokens,
        sampling,
        constraint: Some(constraint),
        ..GenerateParams::default()
    };
    let messages = vec![
        Message::system("You are a helpful assistant."),
        Message::user(prompt),
    ];
    engine.generate(messages, params).unwrap().wait().unwrap()
}

#[derive(Default)]
struct Tally {
    complete: u32,
    incomplete: u32,
    invalid: u32,
}

fn check_schemas(file: &'static str) {
    let Some(engine) = engine(file) else { return };
    let cases = cases("schemas.jsonl");
    assert!(cases.len() >= 20, "the set covers at least 20 schemas");
    let mut tally = Tally::default();
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let schema = &case["schema"];
        let validator = jsonschema::validator_for(schema).unwrap();
        for (mode, sampling) in modes() {
            let answer = ask(
                &engine,
                case["question"].as_str().unwrap(),
                OutputConstraint::JsonSchema(schema.to_string()),
                sampling,
                MAX_TOKENS,
            );
            let parsed = serde_json::from_str::<Value>(&answer.text);
            let valid = parsed.as_ref().is_ok_and(|v| validator.is_valid(v));
            eprintln!(
                "{file} {id:18} {mode:6} {:10} {:3} tokens  {}",
                answer.finish.as_str(),
                answer.tokens.len(),
                answer.text.replace('\n', " ")
            );
            match answer.finish {
                FinishReason::EndOfText => {
                    assert!(
                        valid,
                        "{file} {id} {mode}: ended but invalid: {}",
                        answer.text
                    );
                    tally.complete += 1;
                }
                FinishReason::Incomplete => {
                    assert_eq!(answer.tokens.len(), MAX_TOKENS as usize, "{id} {mode}");
                    tally.incomplete += 1;
                }
                FinishReason::Invalid => {
                    assert!(!valid, "{file} {id} {mode}: `invalid` but it validates");
                    tally.invalid += 1;
                }
                other => panic!("{file} {id} {mode}: a constrained answer ended {other:?}"),
            }
        }
    }
    let total = tally.complete + tally.incomplete + tally.invalid;
    eprintln!(
        "{file}: {} of {total} answers complete and valid, {} cut at {MAX_TOKENS} tokens, {} \
         complete but failing a keyword the grammar cannot enforce",
        tally.complete, tally.incomplete, tally.invalid
    );
    // The grammar must be doing the work: a small model left alone rarely writes JSON that
    // matches a schema, constrained it nearly always does.
    assert!(
        tally.complete * 10 >= total * 8,
        "{file}: only {} of {total} answers complete",
        tally.complete
    );
}

#[test]
fn smollm2_answers_follow_their_schemas() {
    check_schemas(vazhi_tests::SMOLLM2);
}

#[test]
fn gemma3_answers_follow_their_schemas() {
    check_schemas(vazhi_tests::GEMMA3);
}

#[test]
fn answers_follow_their_grammars() {
    for file in [vazhi_tests::SMOLLM2, vazhi_tests::GEMMA3] {
        let Some(engine) = engine(file) else { return };
        for case in cases("grammars.jsonl") {
            let id = case["id"].as_str().unwrap();
            let pattern = regex::Regex::new(case["matches"].as_str().unwrap()).unwrap();
            for (mode, sampling) in modes() {
                let answer = ask(
                    &engine,
                    case["question"].as_str().unwrap(),
                    OutputConstraint::Grammar(case["grammar"].as_str().unwrap().into()),
                    sampling,
                    MAX_TOKENS,
                );
                eprintln!("{file} {id} {mode}: {:?} {:?}", answer.finish, answer.text);
                assert_eq!(answer.finish, FinishReason::EndOfText, "{file} {id} {mode}");
                assert!(
                    pattern.is_match(&answer.text),
                    "{file} {id} {mode}: {:?}",
                    answer.text
                );
            }
        }
    }
}

#[test]
fn an_answer_cut_short_is_incomplete_never_a_success() {
    let Some(engine) = engine(vazhi_tests::SMOLLM2) else {
        return;
    };
    let schema = r#"{"type":"object","properties":{"story":{"type":"string","minLength":100}},
                     "required":["story"]}"#;
    let answer = ask(
        &engine,
        "Tell me a story about a river.",
        OutputConstraint::JsonSchema(schema.into()),
        Sampling::greedy(),
        8,
    );
    assert_eq!(answer.finish, FinishReason::Incomplete);
    assert_eq!(answer.tokens.len(), 8);
    assert!(serde_json::from_str::<Value>(&answer.text).is_err());

    // A stop string inside the JSON cuts it too: incomplete, not `stop_string`.
    let params = GenerateParams {
        max_tokens: 64,
        sampling: Sampling::greedy(),
        stop: vec!["\"".into()],
        constraint: Some(OutputConstraint::Grammar(
            "root ::= \"{\\\"a\\\": \" [0-9] \"}\"".into(),
        )),
        ..GenerateParams::default()
    };
    let answer = engine
        .generate(vec![Message::user("Give me a digit.")], params)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(answer.finish, FinishReason::Incomplete, "{:?}", answer.text);

    // Without a constraint the reasons stay as they were.
    let params = GenerateParams {
        max_tokens: 4,
        sampling: Sampling::greedy(),
        ..GenerateParams::default()
    };
    let answer = engine
        .generate(vec![Message::user("Tell me a story.")], params)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(answer.finish, FinishReason::MaxTokens);
}

#[test]
fn unusable_constraints_are_refused_before_generation() {
    let Some(engine) = engine(vazhi_tests::SMOLLM2) else {
        return;
    };
    let submit = |constraint: OutputConstraint| {
        let params = GenerateParams {
            constraint: Some(constraint),
            ..GenerateParams::default()
        };
        engine.generate(vec![Message::user("Hello")], params)
    };
    // A schema is converted when the answer is submitted: the call itself fails.
    for schema in [
        "{\"type\": \"object\",",
        "[\"a schema is an object\"]",
        "{\"type\": \"strnig\"}",
        "{\"$ref\": \"https://example.invalid/s.json\"}",
        "{\"$ref\": \"#/$defs/missing\"}",
    ] {
        match submit(OutputConstraint::JsonSchema(schema.into())) {
            Err(EngineError::Constraint(
                ConstraintError::SchemaSyntax(_) | ConstraintError::SchemaUnsupported(_),
            )) => {}
            other => panic!("{schema}: {other:?}"),
        }
    }
    // A grammar is parsed against the vocabulary when the answer starts: the answer fails
    // with the typed error and no token.
    for grammar in [
        "root ::= \"yes",
        "root ::= answer",
        "root ::= root \"x\"",
        "root ::= [a-",
    ] {
        let generation = submit(OutputConstraint::Grammar(grammar.into())).unwrap();
        let events: Vec<Event> = generation.collect();
        assert_eq!(events.len(), 1, "{grammar}: {events:?}");
        assert!(
            matches!(
                &events[0],
                Event::Failed(EngineError::Constraint(ConstraintError::Grammar(_)))
            ),
            "{grammar}: {events:?}"
        );
    }
    // Hostile ones: refused at submit or before the first token, and the worker lives on.
    for hostile in [
        OutputConstraint::JsonSchema(
            r##"{"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}"##.into(),
        ),
        OutputConstraint::Grammar("root ::= \"a\"{1000000}".into()),
    ] {
        match submit(hostile.clone()) {
            Err(EngineError::Constraint(_)) => {}
            Ok(generation) => {
                let events: Vec<Event> = generation.collect();
                assert!(
                    matches!(
                        events.as_slice(),
                        [Event::Failed(EngineError::Constraint(_))]
                    ),
                    "{hostile:?}: {events:?}"
                );
            }
            Err(other) => panic!("{hostile:?}: {other:?}"),
        }
    }
    // A chain of 12,000 rules: llama.cpp recurses through it when parsing and on every
    // token; the worker's stack holds it (or the grammar is refused) — never a crash.
    let mut chain = String::from("root ::= r0\n");
    for i in 0..12_000 {
        chain.push_str(&format!("r{i} ::= r{}\n", i + 1));
    }
    chain.push_str("r12000 ::= \"yes\"\n");
    match submit(OutputConstraint::Grammar(chain)) {
        Ok(generation) => match generation.wait() {
            Ok(answer) => assert_eq!(answer.text, "yes"),
            Err(e) => assert!(matches!(e, EngineError::Constraint(_)), "{e:?}"),
        },
        Err(e) => assert!(matches!(e, EngineError::Constraint(_)), "{e:?}"),
    }
    // A grammar asking for a token id the model does not have parses, and admits nothing:
    // the answer ends `Incomplete` at once.
    let answer = submit(OutputConstraint::Grammar("root ::= <[999999999]>".into()))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(answer.finish, FinishReason::Incomplete);
    assert!(answer.tokens.is_empty());
    // The engine still answers afterwards.
    let params = GenerateParams {
        max_tokens: 4,
        sampling: Sampling::greedy(),
        ..GenerateParams::default()
    };
    let answer = engine
        .generate(vec![Message::user("Hello")], params)
        .unwrap()
        .wait()
        .unwrap();
    assert!(!answer.tokens.is_empty());
}

#[test]
fn a_grammar_may_name_a_control_token_and_the_text_shows_it() {
    let Some(engine) = engine(vazhi_tests::SMOLLM2) else {
        return;
    };
    // `<|im_start|>` is a control token of SmolLM2 (not an end-of-text one).
    let answer = ask(
        &engine,
        "Say yes.",
        OutputConstraint::Grammar("root ::= \"yes\" <|im_start|>".into()),
        Sampling::greedy(),
        16,
    );
    assert_eq!(answer.finish, FinishReason::EndOfText, "{:?}", answer.text);
    assert_eq!(answer.text, "yes<|im_start|>");
    // Under a schema the same token is never picked: JSON holds no markup.
    let answer = ask(
        &engine,
        "Write <|im_start|> in a string.",
        OutputConstraint::JsonSchema(r#"{"type":"string","maxLength":30}"#.into()),
        Sampling::greedy(),
        64,
    );
    assert!(!answer.text.contains("<|im"), "{:?}", answer.text);
}
