//! The fact guard on real answers: collect hybrid answers of the shipped models for labelling,
//! and score the guard on the labelled set.
//!
//! `cargo run --release --example fact_guard -- collect OUT.jsonl [FIRST]` asks each question
//! (from the `FIRST`-th, default 0) of
//! `assets/eval/fact_guard/questions.txt` (`LANG<TAB>QUESTION` per line, all routed hybrid)
//! of SmolLM2-135M and Gemma 3 270M (greedy, 160 tokens, the shipped packs and rules, fact
//! guard off), and writes one line per answer with its cards and its distinct sentences,
//! unlabelled; every other question is `dev`, the rest `test`.
//!
//! `cargo run --release --example fact_guard -- [LABELLED.jsonl]` (default
//! `assets/eval/fact_guard/answers.jsonl`) prints the guard's precision and recall overall,
//! per model and per language; `--verbose` also prints every sentence the guard and the label
//! disagree on.

use std::io::Write;
use std::path::{Path, PathBuf};

use vazhi_core::assistant::{Assistant, AssistantConfig, AssistantEvent};
use vazhi_core::engine::{Engine, EngineConfig, GenerateParams, Sampling};
use vazhi_core::eval::facts::{
    read_labelled, score_guard, GuardCounts, LabelledAnswer, LabelledCard, LabelledSentence,
};
use vazhi_core::fact_guard::{unsupported_claims, FactPolicy, SentenceSplitter};
use vazhi_core::knowledge::KnowledgeBase;
use vazhi_core::router::{Route, Router};
use vazhi_core::signing::TrustPolicy;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn models_dir() -> PathBuf {
    std::env::var("VAZHI_MODELS").map_or_else(
        |_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/vazhi/models"),
        PathBuf::from,
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "--verbose");
    args.retain(|a| a != "--verbose");
    if args.first().map(String::as_str) == Some("collect") {
        let out = args.get(1).ok_or("collect needs an output file")?;
        let first = args.get(2).map_or(Ok(0), |n| n.parse())?;
        return collect(Path::new(out), first);
    }
    let path = args.first().map_or_else(
        || repo().join("assets/eval/fact_guard/answers.jsonl"),
        PathBuf::from,
    );
    let answers = read_labelled(&path)?;
    let started = std::time::Instant::now();
    let scores = score_guard(&answers);
    let elapsed = started.elapsed();
    println!(
        "{} answers, {} labelled sentences ({} unlabelled)",
        answers.len(),
        scores.overall.sentences(),
        scores.unlabelled
    );
    let line = |name: &str, c: &GuardCounts| {
        let pct = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{:.3}", x));
        println!(
            "{name:<34} sentences {:>4}  labelled unsupported {:>3}  flagged {:>3}  precision {}  recall {}",
            c.sentences(),
            c.true_positives + c.false_negatives,
            c.true_positives + c.false_positives,
            pct(c.precision()),
            pct(c.recall()),
        );
    };
    println!(
        "checked in {:.2} ms ({:.1} µs a sentence, evidence built per answer)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / f64::from(scores.overall.sentences().max(1))
    );
    line("overall", &scores.overall);
    for (model, c) in &scores.by_model {
        line(model, c);
    }
    for (lang, c) in &scores.by_lang {
        line(&format!("lang {lang}"), c);
    }
    for (split, c) in &scores.by_split {
        line(&format!("split {split}"), c);
    }
    if verbose {
        for answer in &answers {
            let evidence = answer.evidence();
            for s in &answer.sentences {
                let claims = unsupported_claims(&s.text, &evidence);
                let flagged = !claims.is_empty();
                let labelled = s.label == Some(vazhi_core::eval::facts::FactLabel::Unsupported);
                if flagged != labelled {
                    let what = if flagged { "false alarm" } else { "missed" };
                    let claims: Vec<String> = claims.iter().map(|c| c.text.clone()).collect();
                    println!("{what:<11} {} {:?} {:?}", answer.id, s.text.trim(), claims);
                }
            }
        }
    }
    Ok(())
}

/// Asks the questions from the `first`-th on of both models and writes the answers,
/// unlabelled.
fn collect(out: &Path, first: usize) -> Result<(), Box<dyn std::error::Error>> {
    let questions = std::fs::read_to_string(repo().join("assets/eval/fact_guard/questions.txt"))?;
    let questions: Vec<(&str, &str)> = questions
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .collect();
    let dir = tempfile_dir()?;
    let kb = KnowledgeBase::open(&dir.join("knowledge.db"))?;
    for pack in ["thirukkural", "helplines"] {
        kb.import_dir(&repo().join("assets/packs").join(pack), &TrustPolicy::any())?;
    }
    drop(kb);
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    for (model_name, file_name) in [
        ("smollm2-135m-q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf"),
        ("gemma3-270m-q4_k_m", "gemma-3-270m-q4_k_m.gguf"),
    ] {
        let engine = Engine::load(
            models_dir().join(file_name),
            EngineConfig {
                n_ctx: Some(2048),
                ..EngineConfig::default()
            },
        )?;
        let assistant = Assistant::new(
            KnowledgeBase::open(&dir.join("knowledge.db"))?,
            Router::builtin()?,
            Some(engine),
            AssistantConfig {
                params: GenerateParams {
                    max_tokens: 160,
                    sampling: Sampling::greedy(),
                    ..GenerateParams::default()
                },
                fact_policy: FactPolicy::Off,
                ..AssistantConfig::default()
            },
        );
        for (n, (lang, question)) in questions.iter().enumerate().skip(first) {
            let mut cards = Vec::new();
            let mut text = String::new();
            let mut route = None;
            for event in assistant.ask(question) {
                match event {
                    AssistantEvent::Routed { route: r, .. } => route = Some(r),
                    AssistantEvent::Card(c) => cards.push(LabelledCard {
                        id: c.id,
                        title: c.title,
                        body: c.body,
                    }),
                    AssistantEvent::Token { text: t, .. } => text.push_str(&t),
                    AssistantEvent::Failed(e) => return Err(e.into()),
                    _ => {}
                }
            }
            if route != Some(Route::Hybrid) {
                eprintln!("skipped (routed {route:?}): {question}");
                continue;
            }
            let mut splitter = SentenceSplitter::new();
            let mut sentences = splitter.push(&text);
            sentences.extend(splitter.finish());
            // A small model repeats itself: each distinct sentence is labelled once.
            let mut seen = std::collections::HashSet::new();
            sentences.retain(|s| seen.insert(s.trim().to_owned()));
            let answer = LabelledAnswer {
                id: format!("{model_name}-{n:02}"),
                model: model_name.to_owned(),
                lang: (*lang).to_owned(),
                // Every other question is held out: the guard is tuned on dev only.
                split: if n % 2 == 0 { "dev" } else { "test" }.to_owned(),
                question: (*question).to_owned(),
                system_prompt: assistant.config().system_prompt.clone(),
                cards,
                sentences: sentences
                    .into_iter()
                    .filter(|s| !s.trim().is_empty())
                    .map(|text| LabelledSentence { text, label: None })
                    .collect(),
            };
            writeln!(file, "{}", serde_json::to_string(&answer)?)?;
            eprintln!("{} {question}", answer.id);
        }
    }
    file.flush()?;
    Ok(())
}

/// A fresh directory for the knowledge base, under the system's temporary directory.
fn tempfile_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("vazhi-fact-guard-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
