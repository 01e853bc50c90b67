//! Chat templates against fixtures rendered independently by Python's `jinja2` (the way
//! Hugging Face `transformers` renders them; `scripts/render-template-fixtures.py` made them).
//!
//! Two levels: our `minijinja` rendering of each template must equal `jinja2`'s text, and —
//! with the real models — the tokens the engine would feed the model must equal the tokens of
//! that text. For Gemma 3, whose GGUF carries no template, the second check proves that the
//! engine's fallback (llama.cpp's built-in `gemma` template) produces what Google's template
//! would.

#![allow(clippy::unwrap_used)]

use serde::Deserialize;
use vazhi_core::engine::reference::ReferenceModel;
use vazhi_core::engine::template::{ChatTemplate, TemplateError};
use vazhi_core::engine::{Engine, EngineConfig, Message, TemplateKind};

#[derive(Deserialize)]
struct Fixture {
    model_file: String,
    chat_template: String,
    bos_token: String,
    eos_token: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    messages: Vec<Message>,
    add_generation_prompt: bool,
    expected: Option<String>,
    #[serde(default)]
    error: bool,
}

fn fixture(name: &str) -> Fixture {
    let path = format!(
        "{}/tests/fixtures/chat_templates/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn check_minijinja_matches_jinja2(name: &str) {
    let f = fixture(name);
    let template = ChatTemplate::new(&f.chat_template, &f.bos_token, &f.eos_token).unwrap();
    assert!(f.cases.len() >= 6);
    for case in &f.cases {
        let rendered = template.render(&case.messages, case.add_generation_prompt);
        if case.error {
            assert!(
                matches!(rendered, Err(TemplateError::Rejected)),
                "{}: {rendered:?}",
                case.name
            );
        } else {
            assert_eq!(
                rendered.unwrap(),
                case.expected.clone().unwrap(),
                "case {}",
                case.name
            );
        }
    }
}

#[test]
fn smollm2_template_matches_jinja2() {
    check_minijinja_matches_jinja2("smollm2");
}

#[test]
fn gemma3_template_matches_jinja2() {
    check_minijinja_matches_jinja2("gemma3");
}

fn check_engine_prompt_tokens(name: &str, expected_kind: TemplateKind) {
    let f = fixture(name);
    let Some(path) = vazhi_tests::model(&f.model_file) else {
        return;
    };
    let engine = loop {
        match Engine::load(
            &path,
            EngineConfig {
                n_ctx: Some(512),
                ..EngineConfig::default()
            },
        ) {
            Err(vazhi_core::engine::EngineError::LoadInProgress) => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => break other.unwrap(),
        }
    };
    assert_eq!(engine.info().template, expected_kind);
    if let Some(own) = &engine.info().report.chat_template {
        assert_eq!(
            own, &f.chat_template,
            "fixture was rendered from another template"
        );
    }
    let reference = ReferenceModel::load(&path, 512, 1, 64).unwrap();
    for case in f
        .cases
        .iter()
        .filter(|c| !c.error && c.add_generation_prompt)
    {
        let (_, ours) = engine.render_prompt(case.messages.clone()).unwrap();
        let expected_text = case.expected.as_deref().unwrap();
        let theirs: Vec<i32> = reference
            .tokenize(expected_text, Some(&f.bos_token))
            .iter()
            .map(|t| t.0)
            .collect();
        assert_eq!(ours, theirs, "case {}", case.name);
    }
}

#[test]
fn smollm2_engine_feeds_the_jinja2_prompt() {
    check_engine_prompt_tokens("smollm2", TemplateKind::Jinja);
}

#[test]
fn gemma3_engine_fallback_feeds_the_official_template_prompt() {
    check_engine_prompt_tokens("gemma3", TemplateKind::LlamaBuiltin("gemma".into()));
}
