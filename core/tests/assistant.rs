//! The assistant end to end with the shipped packs, the shipped rules and the real default
//! model: every route, answers without a model, cancellation, follow-ups.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use vazhi_core::signing::TrustPolicy;

use vazhi_core::assistant::{AnswerSummary, Assistant, AssistantConfig, AssistantEvent};
use vazhi_core::engine::{
    Engine, EngineConfig, EngineError, FinishReason, GenerateParams, Sampling,
};
use vazhi_core::knowledge::KnowledgeBase;
use vazhi_core::router::{Route, Router};

fn assets() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets"))
}

fn assistant(dir: &Path, with_model: bool) -> Option<Assistant> {
    let kb = KnowledgeBase::open(&dir.join("knowledge.db")).unwrap();
    kb.import_dir(&assets().join("packs/thirukkural"), &TrustPolicy::any())
        .unwrap();
    kb.import_dir(&assets().join("packs/helplines"), &TrustPolicy::any())
        .unwrap();
    let engine = if with_model {
        Some(load_model(&vazhi_tests::model(vazhi_tests::SMOLLM2)?))
    } else {
        None
    };
    let config = AssistantConfig {
        params: GenerateParams {
            max_tokens: 48,
            sampling: Sampling::greedy(),
            ..GenerateParams::default()
        },
        ..AssistantConfig::default()
    };
    Some(Assistant::new(
        kb,
        Router::builtin().unwrap(),
        engine,
        config,
    ))
}

/// The model at `path` with a 2048-token context (other tests may be loading one: wait).
fn load_model(path: &Path) -> Engine {
    loop {
        match Engine::load(
            path,
            EngineConfig {
                n_ctx: Some(2048),
                ..EngineConfig::default()
            },
        ) {
            Err(EngineError::LoadInProgress) => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            other => break other.unwrap(),
        }
    }
}

/// The shipped rules with another search threshold.
fn set_threshold(rules: &str, threshold: &str) -> String {
    let line = rules
        .lines()
        .find(|l| l.starts_with("search_threshold = "))
        .expect("the shipped rules set a threshold");
    rules.replace(line, &format!("search_threshold = {threshold}"))
}

/// Events as (kind, payload) plus the summary.
fn run(
    answer: vazhi_core::assistant::AssistantAnswer,
) -> (Vec<String>, Vec<String>, AnswerSummary) {
    let mut kinds = Vec::new();
    let mut cards = Vec::new();
    let mut tokens = String::new();
    for event in answer {
        match event {
            AssistantEvent::Routed { route, .. } => kinds.push(format!("routed:{route}")),
            AssistantEvent::Card(card) => {
                kinds.push("card".into());
                cards.push(card.body);
            }
            AssistantEvent::Token { text: t, .. } => {
                if kinds.last().map(String::as_str) != Some("token") {
                    kinds.push("token".into());
                }
                tokens.push_str(&t);
            }
            AssistantEvent::Reasoning(_) | AssistantEvent::ToolCall { .. } => {
                panic!("no tools or reasoning were asked for")
            }
            AssistantEvent::Done(summary) => {
                kinds.push("done".into());
                assert_eq!(
                    summary.text, tokens,
                    "streamed text differs from the summary"
                );
                return (kinds, cards, summary);
            }
            AssistantEvent::Failed(e) => panic!("{e}"),
        }
    }
    panic!("no Done");
}

#[test]
fn every_route_with_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let Some(a) = assistant(dir.path(), true) else {
        return;
    };
    let (kinds, cards, s) = run(a.ask("குறள் ௧"));
    assert_eq!(kinds, ["routed:lookup", "card", "done"]);
    assert!(cards[0].starts_with("அகர முதல"));
    assert!(s.metrics.is_none(), "a lookup must not run the model");

    let (kinds, cards, s) = run(a.ask("explain kural 1"));
    assert_eq!(kinds, ["routed:hybrid", "card", "token", "done"]);
    assert!(
        cards[0].starts_with("அகர முதல"),
        "the card is the database's text"
    );
    assert!(
        s.metrics.unwrap().prompt_tokens > 50,
        "the records were not in the prompt"
    );

    let (kinds, _, s) = run(a.ask("write a short poem about the monsoon"));
    assert_eq!(kinds, ["routed:generate", "token", "done"]);
    assert!(!s.model_unavailable);

    let (kinds, _, _) = run(a.ask("women helpline number"));
    assert_eq!(kinds, ["routed:lookup", "card", "done"]);
}

#[test]
fn without_a_model_the_data_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let a = assistant(dir.path(), false).unwrap();
    assert!(!a.has_model());
    let (kinds, _, s) = run(a.ask("kural 5"));
    assert_eq!(kinds, ["routed:lookup", "card", "done"]);
    assert!(!s.model_unavailable);
    // Hybrid: the card, and a normal Done marked model_unavailable.
    let (kinds, _, s) = run(a.ask("explain kural 5"));
    assert_eq!(kinds, ["routed:hybrid", "card", "done"]);
    assert!(s.model_unavailable);
    // Generate: the best search results as cards. A router whose search threshold nothing
    // reaches sends this matching question to Generate.
    let rules = set_threshold(vazhi_core::router::DEFAULT_RULES, "1.0");
    let strict = Assistant::new(
        KnowledgeBase::open(&dir.path().join("knowledge.db")).unwrap(),
        Router::from_toml_str(&rules).unwrap(),
        None,
        AssistantConfig::default(),
    );
    let (kinds, _, s) = run(strict.ask("cyber fraud money lost long ago"));
    assert_eq!(kinds[0], "routed:generate");
    assert!(kinds.contains(&"card".to_owned()), "{kinds:?}");
    assert!(s.model_unavailable && s.cards > 0);
}

#[test]
fn a_cancel_before_the_first_token_stops_the_model_while_it_reads_the_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let Some(a) = assistant(dir.path(), true) else {
        return;
    };
    // A long question, so that reading it takes many prompt chunks.
    let question = format!(
        "write a poem about {}",
        "the river and the rain ".repeat(150)
    );
    let mut answer = a.ask(&question);
    answer.cancel_handle().cancel();
    let mut tokens = 0;
    let summary = loop {
        match answer.next().unwrap() {
            AssistantEvent::Token { .. } => tokens += 1,
            AssistantEvent::Done(s) => break s,
            AssistantEvent::Failed(e) => panic!("{e}"),
            _ => {}
        }
    };
    // The model saw the cancel while reading the prompt, not after its first token came back.
    assert_eq!(summary.finish, Some(FinishReason::Cancelled));
    assert_eq!(tokens, 0, "the model answered before it saw the cancel");
}

#[test]
fn cancel_stops_the_model_within_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let Some(a) = assistant(dir.path(), true) else {
        return;
    };
    let mut answer = a.ask("write a very long story about a river");
    let handle = answer.cancel_handle();
    let mut after = 0;
    let mut cancelled = false;
    let summary = loop {
        match answer.next().unwrap() {
            AssistantEvent::Token { .. } if !cancelled => {
                std::thread::spawn({
                    let h = handle.clone();
                    move || h.cancel()
                })
                .join()
                .unwrap();
                cancelled = true;
            }
            AssistantEvent::Token { .. } => after += 1,
            AssistantEvent::Done(s) => break s,
            AssistantEvent::Failed(e) => panic!("{e}"),
            _ => {}
        }
    };
    assert_eq!(summary.finish, Some(FinishReason::Cancelled));
    assert!(after <= 2, "{after} tokens after cancel");
}

#[test]
fn a_conversation_follows_up_and_reuses_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let Some(a) = assistant(dir.path(), true) else {
        return;
    };
    let c = a.conversation();
    let (_, _, first) = run(c.ask("explain kural 1"));
    assert_eq!(first.route, Route::Hybrid);
    let (_, _, second) = run(c.ask("say it more simply"));
    let m = second.metrics.unwrap();
    assert!(
        m.cached_prompt_tokens > 50,
        "the follow-up re-read the history: {m:?}"
    );
}

#[test]
fn a_search_rule_keeps_to_its_pack() {
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(&dir.path().join("knowledge.db")).unwrap();
    kb.import_dir(&assets().join("packs/thirukkural"), &TrustPolicy::any())
        .unwrap();
    kb.import_dir(&assets().join("packs/helplines"), &TrustPolicy::any())
        .unwrap();
    let rules = format!(
        "{}\n[[rule]]\nname = \"helplines-only\"\npattern = '^in helplines (?P<q>.+)$'\nroute = \"search\"\npack = \"helplines\"\nquery = \"{{q}}\"\n",
        vazhi_core::router::DEFAULT_RULES
    );
    let a = Assistant::new(
        kb,
        Router::from_toml_str(&rules).unwrap(),
        None,
        AssistantConfig::default(),
    );
    let packs = |q: &str| {
        a.ask(q)
            .filter_map(|e| match e {
                AssistantEvent::Card(c) => Some(c.pack),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // "rain" is in many kurals and in the helplines pack's body text only by chance, if at
    // all: the rule's pack filter decides.
    let everywhere = packs("rain and fire");
    assert!(
        everywhere.iter().any(|p| p == "thirukkural"),
        "{everywhere:?}"
    );
    let filtered = packs("in helplines rain and fire");
    assert!(!filtered.is_empty());
    assert!(filtered.iter().all(|p| p == "helplines"), "{filtered:?}");
}

/// Counts the knowledge-base searches made while it is the current subscriber.
#[derive(Default)]
struct SearchCounter(std::sync::atomic::AtomicUsize);

impl tracing::Subscriber for SearchCounter {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        if span.metadata().name() == "knowledge_search" {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn a_question_is_searched_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = assistant(dir.path(), false).unwrap();
    for (question, route) in [
        ("kural about rain", Route::Search),
        ("what does thirukkural say about friendship", Route::Hybrid),
        ("I need an ambulance right now", Route::Search),
    ] {
        let counter = std::sync::Arc::new(SearchCounter::default());
        let (kinds, _, _) =
            tracing::subscriber::with_default(counter.clone(), || run(a.ask(question)));
        assert_eq!(kinds[0], format!("routed:{route}"), "{question}");
        assert!(kinds.contains(&"card".to_owned()), "{question}: {kinds:?}");
        assert_eq!(
            counter.0.load(std::sync::atomic::Ordering::Relaxed),
            1,
            "{question}: the router's probe and the answer searched separately"
        );
    }
}

#[test]
fn a_record_too_big_for_the_context_is_cut_to_fit() {
    let dir = tempfile::tempdir().unwrap();
    let Some(model) = vazhi_tests::model(vazhi_tests::SMOLLM2) else {
        return;
    };
    let pack = dir.path().join("big");
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::write(
        pack.join("pack.toml"),
        "name = \"big\"\nversion = \"1.0.0\"\nlicence = \"CC0-1.0\"\nsource = \"tests\"\n",
    )
    .unwrap();
    // 60 KiB of text: over the engine's 32 KiB message cap and far over a 2048-token context.
    let body = "The river feeds the fields and the fields feed the town.\n".repeat(1_100);
    assert!(body.len() > 60_000);
    let record = serde_json::json!({"id": "big", "keys": ["big record"], "title": "A big record", "body": body});
    std::fs::write(pack.join("records.jsonl"), record.to_string()).unwrap();
    let kb = KnowledgeBase::open(&dir.path().join("knowledge.db")).unwrap();
    kb.import_dir(&pack, &TrustPolicy::any()).unwrap();
    let engine = load_model(&model);
    let a = Assistant::new(
        kb,
        Router::builtin().unwrap(),
        Some(engine),
        AssistantConfig {
            params: GenerateParams {
                max_tokens: 16,
                sampling: Sampling::greedy(),
                ..GenerateParams::default()
            },
            ..AssistantConfig::default()
        },
    );
    let (kinds, cards, summary) = run(a.ask("explain the big record"));
    assert_eq!(kinds[0], "routed:hybrid");
    assert_eq!(cards[0].len(), body.len(), "the card itself is whole");
    let m = summary.metrics.unwrap();
    assert!(
        m.prompt_tokens > 500 && m.prompt_tokens < 2048,
        "the record was not cut to fit: {m:?}"
    );
}

/// Events a sink received, in order, as (kind, thread name).
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, Option<String>)>>>;

fn kind(event: &AssistantEvent) -> String {
    match event {
        AssistantEvent::Routed { route, .. } => format!("routed:{route}"),
        AssistantEvent::Card(_) => "card".into(),
        AssistantEvent::Token { .. } => "token".into(),
        AssistantEvent::Reasoning(_) => "reasoning".into(),
        AssistantEvent::ToolCall { .. } => "tool_call".into(),
        AssistantEvent::Done(_) => "done".into(),
        AssistantEvent::Failed(e) => format!("failed:{e}"),
    }
}

/// A sink that records each event and the thread it came on, and accepts the first `accept`.
fn recording_sink(accept: usize) -> (Seen, impl FnMut(AssistantEvent) -> bool + Send + 'static) {
    let seen = Seen::default();
    let log = std::sync::Arc::clone(&seen);
    let sink = move |event: AssistantEvent| {
        let mut log = log.lock().unwrap();
        log.push((
            kind(&event),
            std::thread::current().name().map(str::to_owned),
        ));
        log.len() < accept
    };
    (seen, sink)
}

#[test]
fn ask_into_gives_every_event_to_the_sink_from_one_answer_thread() {
    let dir = tempfile::tempdir().unwrap();
    let Some(a) = assistant(dir.path(), true) else {
        return;
    };
    let params = a.config().params.clone();
    let (seen, sink) = recording_sink(usize::MAX);
    let handle = a.ask_into("explain kural 1", &params, sink).unwrap();
    assert!(handle.wait(std::time::Duration::from_secs(120)));
    let seen = seen.lock().unwrap().clone();
    let mut kinds: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    kinds.dedup();
    assert_eq!(kinds, ["routed:hybrid", "card", "token", "done"]);
    // The tokens come straight from the engine's worker to the answer's thread: no thread
    // forwards them in between, and the caller's thread is never used.
    let threads: std::collections::BTreeSet<_> = seen.iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(threads.len(), 1, "{threads:?}");
    assert_eq!(
        threads.into_iter().next().unwrap().as_deref(),
        Some("vazhi-answer")
    );
}

#[test]
fn a_sink_that_refuses_an_event_gets_nothing_more_and_frees_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let Some(a) = assistant(dir.path(), true) else {
        return;
    };
    let params = GenerateParams {
        max_tokens: 200,
        ..a.config().params.clone()
    };
    // Refuses its third event: routed, then the first token, then the second.
    let (seen, sink) = recording_sink(3);
    let handle = a
        .ask_into("write a very long story about a river", &params, sink)
        .unwrap();
    assert!(handle.wait(std::time::Duration::from_secs(120)));
    assert_eq!(seen.lock().unwrap().len(), 3, "events after a refusal");
    // The model was cancelled, not left writing 200 tokens: the next answer runs at once.
    let started = std::time::Instant::now();
    let (_, _, s) = run(a.ask_with(
        "write one word",
        &GenerateParams {
            max_tokens: 4,
            ..params
        },
    ));
    assert!(s.finish.is_some_and(|f| f != FinishReason::Cancelled));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the refused answer kept the model busy"
    );
}

#[test]
fn a_panicking_sink_stops_its_answer_and_the_assistant_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let a = assistant(dir.path(), false).unwrap();
    let params = a.config().params.clone();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&calls);
    let handle = a
        .ask_into("kural 5", &params, move |_| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            panic!("the app's listener threw")
        })
        .unwrap();
    assert!(handle.wait(std::time::Duration::from_secs(30)));
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    let (kinds, _, _) = run(a.ask("kural 5"));
    assert_eq!(kinds, ["routed:lookup", "card", "done"]);
}

#[test]
fn a_conversation_answers_into_a_sink_and_remembers_the_turn() {
    let dir = tempfile::tempdir().unwrap();
    let Some(a) = assistant(dir.path(), true) else {
        return;
    };
    let c = a.conversation();
    let (seen, sink) = recording_sink(usize::MAX);
    let handle = c
        .ask_into("explain kural 1", &c.config().params.clone(), sink)
        .unwrap();
    assert!(handle.wait(std::time::Duration::from_secs(120)));
    assert!(seen.lock().unwrap().last().unwrap().0 == "done");
    let (_, _, second) = run(c.ask("say it more simply"));
    assert!(second.metrics.unwrap().cached_prompt_tokens > 50);
}
