//! The fact guard: its precision and recall on hand-labelled real answers
//! (`assets/eval/fact_guard/answers.jsonl`), wrong helpline numbers in crafted answers, and
//! the three policies on a real model's streamed answer.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use vazhi_core::assistant::{AnswerSummary, Assistant, AssistantConfig, AssistantEvent};
use vazhi_core::engine::{
    Engine, EngineConfig, EngineError, FinishReason, GenerateParams, Role, Sampling,
};
use vazhi_core::eval::facts::{read_labelled, score_guard, FactLabel};
use vazhi_core::fact_guard::{
    unsupported_claims, Evidence, FactGuard, FactPolicy, SentenceSplitter,
};
use vazhi_core::knowledge::{Card, KnowledgeBase};
use vazhi_core::router::Router;
use vazhi_core::signing::TrustPolicy;

fn assets() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets"))
}

/// Floors under the figures measured on the labelled set (docs/benchmarks.md, "Fact guard").
/// Measured 2026-12-07 (80 answers, 420 sentences): overall 1.000 / 0.783, test split
/// 1.000 / 0.818.
const PRECISION_FLOOR: f64 = 0.90;
const RECALL_FLOOR: f64 = 0.70;

#[test]
fn labelled_answers_meet_the_precision_and_recall_floors() {
    let answers = read_labelled(&assets().join("eval/fact_guard/answers.jsonl")).unwrap();
    assert!(answers.len() >= 50, "{} answers", answers.len());
    for model in ["smollm2-135m-q4_1", "gemma3-270m-q4_k_m"] {
        assert!(
            answers.iter().any(|a| a.model == model),
            "no answers of {model}"
        );
    }
    let labels: Vec<FactLabel> = answers
        .iter()
        .flat_map(|a| {
            a.sentences
                .iter()
                .map(|s| s.label.expect("every sentence labelled"))
        })
        .collect();
    for label in [
        FactLabel::Supported,
        FactLabel::Unsupported,
        FactLabel::None,
    ] {
        assert!(labels.contains(&label), "no sentence labelled {label:?}");
    }
    let scores = score_guard(&answers);
    assert_eq!(scores.unlabelled, 0);
    // The held-out split (never tuned on) and everything together.
    for (name, counts) in [
        ("test", &scores.by_split["test"]),
        ("overall", &scores.overall),
    ] {
        let precision = counts.precision().unwrap();
        let recall = counts.recall().unwrap();
        eprintln!("{name}: precision {precision:.3} recall {recall:.3} {counts:?}");
        assert!(
            precision >= PRECISION_FLOOR,
            "{name} precision {precision:.3}"
        );
        assert!(recall >= RECALL_FLOOR, "{name} recall {recall:.3}");
    }
}

/// The helpline records of the shipped pack: (title, body).
fn helplines() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(assets().join("packs/helplines/records.jsonl")).unwrap();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["title"].as_str().unwrap().to_owned(),
                v["body"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Numbers one slip away from `n`: a digit changed, two swapped, one dropped or added.
fn near_misses(n: &str) -> Vec<String> {
    let digits: Vec<char> = n.chars().collect();
    let mut out = Vec::new();
    for i in 0..digits.len() {
        let mut changed = digits.clone();
        changed[i] = if digits[i] == '9' {
            '0'
        } else {
            char::from(digits[i] as u8 + 1)
        };
        out.push(changed.iter().collect());
        let mut dropped = digits.clone();
        dropped.remove(i);
        if dropped.len() >= 2 {
            out.push(dropped.iter().collect());
        }
        if i + 1 < digits.len() && digits[i] != digits[i + 1] {
            let mut swapped = digits.clone();
            swapped.swap(i, i + 1);
            out.push(swapped.iter().collect());
        }
    }
    out.push(format!("{n}0"));
    out.push(format!("1{n}"));
    out
}

/// `n` in Tamil digits.
fn tamil_digits(n: &str) -> String {
    n.chars()
        .map(|c| char::from_u32(0x0BE6 + c.to_digit(10).unwrap()).unwrap())
        .collect()
}

#[test]
fn a_wrong_helpline_number_is_always_caught() {
    let templates = [
        "For this, call {n} at once.",
        "You can dial {n}, it is free.",
        "The helpline number is {n}.",
        "Call the national helpline on {n} any time, day or night.",
        "இதற்கு {n} என்ற எண்ணை அழைக்கவும்.",
        "அவசரத்தில் {n}-ஐ அழைக்கவும்.",
        "1. Call {n}.",
    ];
    let (mut caught, mut passed) = (0, 0);
    for (title, body) in helplines() {
        let evidence = Evidence::new([title.as_str(), body.as_str(), "which number do i call?"]);
        let number: String = title.chars().take_while(char::is_ascii_digit).collect();
        if number.is_empty() {
            continue; // the index record
        }
        for template in templates {
            // The right number passes, in ASCII and Tamil digits.
            for right in [number.clone(), tamil_digits(&number)] {
                let sentence = template.replace("{n}", &right);
                assert!(
                    unsupported_claims(&sentence, &evidence).is_empty(),
                    "{title}: {sentence}"
                );
                passed += 1;
            }
            // Every wrong one is caught: near misses (not other numbers the record itself
            // gives), made-up phone numbers and toll-free lines, in either script.
            let wrong = near_misses(&number)
                .into_iter()
                .filter(|w| !body.split(|c: char| !c.is_ascii_digit()).any(|d| d == w))
                .chain(
                    [
                        "98765 43210",
                        "+91 44 2345 6789",
                        "1800-425-1234",
                        "044-28521234",
                    ]
                    .map(String::from),
                );
            for w in wrong {
                for written in [w.clone(), tamil_digits_keep(&w)] {
                    let sentence = template.replace("{n}", &written);
                    // Whole, and streamed in pieces of every size.
                    assert!(
                        !unsupported_claims(&sentence, &evidence).is_empty(),
                        "{title}: missed {sentence}"
                    );
                    for step in 1..6 {
                        assert!(
                            streamed_flags(&sentence, &evidence, step),
                            "{title}: {sentence}"
                        );
                    }
                    caught += 1;
                }
            }
        }
    }
    eprintln!("{caught} wrong numbers caught, {passed} right ones passed");
    assert!(caught > 500);
}

/// `s` with its ASCII digits written in Tamil digits (other characters kept).
fn tamil_digits_keep(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32(0x0BE6 + d).unwrap(),
            None => c,
        })
        .collect()
}

/// Whether the streaming guard flags a sentence of `text` fed `step` characters at a time.
fn streamed_flags(text: &str, evidence: &Evidence, step: usize) -> bool {
    let mut guard = FactGuard::new(evidence.clone());
    let chars: Vec<char> = text.chars().collect();
    let mut flagged = false;
    for piece in chars.chunks(step) {
        let piece: String = piece.iter().collect();
        flagged |= guard.push(&piece).iter().any(|s| !s.unsupported.is_empty());
    }
    flagged | guard.finish().is_some_and(|s| !s.unsupported.is_empty())
}

fn load(model: &str) -> Option<Engine> {
    let path = vazhi_tests::model(model)?;
    loop {
        match Engine::load(
            &path,
            EngineConfig {
                n_ctx: Some(2048),
                ..EngineConfig::default()
            },
        ) {
            Err(EngineError::LoadInProgress) => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            other => break Some(other.unwrap()),
        }
    }
}

/// One answer: its cards, its token events (text, unsupported) and its summary.
struct Answered {
    cards: Vec<Card>,
    tokens: Vec<(String, bool)>,
    summary: AnswerSummary,
}

fn answer(assistant: &Assistant, question: &str) -> Answered {
    let (mut cards, mut tokens) = (Vec::new(), Vec::new());
    for event in assistant.ask(question) {
        match event {
            AssistantEvent::Card(card) => cards.push(card),
            AssistantEvent::Token { text, unsupported } => tokens.push((text, unsupported)),
            AssistantEvent::Done(summary) => {
                return Answered {
                    cards,
                    tokens,
                    summary,
                }
            }
            AssistantEvent::Failed(e) => panic!("{e}"),
            _ => {}
        }
    }
    panic!("no Done")
}

/// Questions the small model answers with invented names, years or numbers (greedy); the
/// policies are checked on the first whose answer has any.
const INVENTIVE: &[&str] = &[
    "explain kural 7 and who wrote it",
    "explain thirukkural 391 with its history",
    "explain kural 1",
    "Say hello.",
    "What is the capital of France?",
];

#[test]
fn policies_mark_drop_or_stop_at_unsupported_sentences() {
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(&dir.path().join("knowledge.db")).unwrap();
    for pack in ["thirukkural", "helplines"] {
        kb.import_dir(&assets().join("packs").join(pack), &TrustPolicy::any())
            .unwrap();
    }
    drop(kb);
    let Some(engine) = load(vazhi_tests::SMOLLM2) else {
        return;
    };
    let assistant = |policy| {
        Assistant::new(
            KnowledgeBase::open(&dir.path().join("knowledge.db")).unwrap(),
            Router::builtin().unwrap(),
            Some(engine.clone()),
            AssistantConfig {
                params: GenerateParams {
                    max_tokens: 96,
                    sampling: Sampling::greedy(),
                    ..GenerateParams::default()
                },
                fact_policy: policy,
                ..AssistantConfig::default()
            },
        )
    };
    // Off: the model's own text, token by token; the guard's verdicts on it, computed here.
    let off = assistant(FactPolicy::Off);
    let found = INVENTIVE.iter().find_map(|question| {
        let answered = answer(&off, question);
        assert!(answered.tokens.iter().all(|(_, u)| !u));
        assert_eq!(answered.summary.unsupported_sentences, 0);
        let mut evidence = Evidence::new(
            std::iter::once(*question).chain(
                answered
                    .cards
                    .iter()
                    .flat_map(|c| [c.title.as_str(), &c.body]),
            ),
        );
        evidence.add_record_numbers(answered.cards.len());
        let text = answered.summary.text;
        let mut splitter = SentenceSplitter::new();
        let mut sentences = splitter.push(&text);
        sentences.extend(splitter.finish());
        let checked: Vec<(String, bool)> = sentences
            .into_iter()
            .map(|s| {
                let flagged = !unsupported_claims(&s, &evidence).is_empty();
                (s, flagged)
            })
            .collect();
        checked
            .iter()
            .any(|(_, f)| *f)
            .then_some((*question, text, checked))
    });
    let (question, text, checked) = found.expect("no answer stated anything unsupported");
    let n_flagged = checked.iter().filter(|(_, f)| *f).count();

    // Mark: the same text, sentence by sentence, the flagged ones marked.
    let marked = answer(&assistant(FactPolicy::Mark), question);
    assert_eq!(marked.tokens, checked);
    assert_eq!(marked.summary.text, text);
    assert_eq!(marked.summary.unsupported_sentences as usize, n_flagged);

    // Drop: the flagged sentences never reach the user.
    let dropped = answer(&assistant(FactPolicy::Drop), question);
    let kept: Vec<(String, bool)> = checked.iter().filter(|(_, f)| !f).cloned().collect();
    assert_eq!(dropped.tokens, kept);
    let kept_text: String = kept.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(dropped.summary.text, kept_text);
    assert_eq!(dropped.summary.unsupported_sentences as usize, n_flagged);

    // Stop: the answer ends before the first flagged sentence.
    let stopped = answer(&assistant(FactPolicy::Stop), question);
    let first = checked.iter().position(|(_, f)| *f).unwrap();
    assert_eq!(stopped.tokens, checked[..first].to_vec());
    assert_eq!(stopped.summary.finish, Some(FinishReason::Unsupported));
    assert_eq!(stopped.summary.unsupported_sentences, 1);

    // In a conversation, what the user was shown is what the history keeps.
    let conversation = assistant(FactPolicy::Drop).conversation();
    let (mut cards, mut shown) = (Vec::new(), String::new());
    let mut summary = None;
    for event in conversation.ask(question) {
        match event {
            AssistantEvent::Card(card) => cards.push(card),
            AssistantEvent::Token { text, unsupported } => {
                assert!(!unsupported);
                shown.push_str(&text);
            }
            AssistantEvent::Done(s) => summary = Some(s),
            _ => {}
        }
    }
    assert_eq!(summary.unwrap().text, shown);
    let mut evidence = Evidence::new(
        std::iter::once(question).chain(cards.iter().flat_map(|c| [c.title.as_str(), &c.body])),
    );
    evidence.add_record_numbers(cards.len());
    let history = conversation.history();
    match history.last() {
        Some(last) if last.role == Role::Assistant => {
            assert_eq!(last.content, shown);
            assert!(unsupported_claims(&last.content, &evidence).is_empty());
        }
        // Nothing was left: the turn is taken back.
        _ => assert!(shown.trim().is_empty() && history.is_empty(), "{history:?}"),
    }
}
