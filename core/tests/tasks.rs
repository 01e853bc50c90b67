//! Task presets end to end: the shipped triggers and routes, answers that follow each task's
//! schema on both real models, the card the code attaches, and an app's own tasks and model.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use vazhi_core::app::{App, AppConfig};
use vazhi_core::assistant::{AnswerSummary, Assistant, AssistantConfig, AssistantEvent};
use vazhi_core::engine::{Engine, EngineConfig, EngineError, FinishReason};
use vazhi_core::knowledge::{Card, KnowledgeBase};
use vazhi_core::router::{Route, Router};
use vazhi_core::signing::TrustPolicy;

fn assets() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets"))
}

/// Questions that must reach each shipped task, in English and Tamil.
const TRIGGERS: &[(&str, &str)] = &[
    ("scam-check", "Is this a scam: Your SBI account is blocked. Click http://sbi-kyc.in and share the OTP now."),
    ("scam-check", "is this message fake? Congratulations, you won Rs 25 lakh in the KBC lottery"),
    ("scam-check", "Dear customer, your parcel is held, pay Rs 49 at bit.ly/xyz. Is this a scam?"),
    ("scam-check", "scam check: Hi amma, I reached the hostel safely."),
    ("scam-check", "இது மோசடியா: உங்கள் வங்கிக் கணக்கு முடக்கப்பட்டது, OTP அனுப்பவும்"),
    ("scam-check", "இந்த செய்தி போலியா? நீங்கள் 10 லட்சம் பரிசு வென்றீர்கள்"),
    ("scam-check", "உங்கள் மின் கட்டணம் நிலுவையில் உள்ளது, இன்றே இந்த எண்ணை அழைக்கவும். இது மோசடியா?"),
    ("scam-check", "idhu mosadiya: your KYC expires today, click the link"),
    ("fluency-score", "rate my fluency: Yesterday I go to market and buyed many vegetable."),
    ("fluency-score", "how fluent is this: I have been living in Chennai for five years."),
    ("fluency-score", "என் ஆங்கில சரளத்தை மதிப்பிடு: I am liking this city very much."),
    ("fluency-score", "சரளம் மதிப்பெண்: She don't know nothing."),
    ("cefr-level", "what is my cefr level: I like cricket. I play with my friends every Sunday."),
    ("cefr-level", "cefr level: Although the results were inconclusive, the study raises important questions."),
    ("cefr-level", "என் ஆங்கில நிலை என்ன: My name is Kumar. I am from Madurai."),
    ("cefr-level", "இதன் cefr நிலை: The weather is nice today."),
    ("grammar-correction", "correct my grammar: He go to school every days."),
    ("grammar-correction", "is this sentence correct: Me and him was late."),
    ("grammar-correction", "இலக்கணத்தைத் திருத்து: She have two brother."),
    ("grammar-correction", "இந்த வாக்கியம் சரியா: They is playing football."),
    ("grammar-correction", "இந்த வாக்கியத்தை திருத்தவும்: I am knowing him since 2010."),
    ("scam-check", "இந்த மெசேஜ் உண்மையா: உங்கள் KYC இன்று காலாவதியாகிறது"),
];

/// Questions near the triggers that must not reach a task.
const NOT_TASKS: &[&str] = &[
    "is this a scam?",
    "cyber crime helpline",
    "online fraud helpline",
    "what is a scam",
    "rate my fluency",
    "explain kural 5",
    "grammar",
    "இது மோசடியா?",
    "சைபர் குற்றம்",
    // Ordinary questions that share a trigger's words.
    "is it safe to share my otp with bank staff?",
    "is it real that kural has 1330 couplets?",
    "thiruvalluvar lived 2000 years ago, is it real?",
    "what is the level of water in mettur dam",
    "is this correct: 1930 is the cyber crime number",
    "check the text of kural 5",
    "improve my english vocabulary quickly",
    "evaluate the english translation of kural 5",
    "ஆங்கிலம் சரளமாக பேசுவது எப்படி?",
    "இது மோசடி என்றால் என்ன செய்வது?",
    "தமிழ் மொழி நிலை இன்று எப்படி உள்ளது",
];

fn no_search(_: &str) -> Option<vazhi_core::router::Evidence> {
    None
}

#[test]
fn shipped_triggers_route_to_their_tasks() {
    let router = Router::builtin().unwrap();
    assert_eq!(router.tasks().len(), 4);
    for (task, question) in TRIGGERS {
        let d = router.decide(question, &no_search);
        assert_eq!(d.task.as_deref(), Some(*task), "{question}: {d:?}");
        assert_eq!(d.route, Route::Generate, "{question}");
        assert!(router.task(task).is_some());
    }
    for question in NOT_TASKS {
        let d = router.decide(question, &no_search);
        assert_eq!(d.task, None, "{question}: {d:?}");
    }
    // Every task has an English and a Tamil trigger among the shipped rules.
    for task in router.tasks() {
        let langs: Vec<bool> = TRIGGERS
            .iter()
            .filter(|(t, _)| *t == task.name)
            .map(|(_, q)| q.chars().any(|c| ('\u{0B80}'..='\u{0BFF}').contains(&c)))
            .collect();
        assert!(
            langs.contains(&true) && langs.contains(&false),
            "{}",
            task.name
        );
    }
}

#[test]
fn tasks_with_errors_are_refused_when_the_rules_load() {
    let rule = |task: &str| {
        format!("[[rule]]\nname = \"r\"\npattern = '^x'\nroute = \"generate\"\ntask = \"{task}\"\n")
    };
    let err = Router::from_toml_str(&rule("missing"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no `[task.missing]`"), "{err}");
    let bad_schema = format!(
        "[task.t]\nsystem_prompt = \"x\"\nschema = '{{\"type\": \"object\", \"properties\": 5}}'\n{}",
        rule("t")
    );
    let err = Router::from_toml_str(&bad_schema).unwrap_err().to_string();
    assert!(err.contains("task `t` is invalid"), "{err}");
    let on_lookup = "[task.t]\nsystem_prompt = \"x\"\nschema = '{\"type\": \"string\"}'\n\
                     [[rule]]\nname = \"r\"\npattern = '^x'\nroute = \"lookup\"\npack = \"p\"\nkey = \"k\"\ntask = \"t\"\n";
    let err = Router::from_toml_str(on_lookup).unwrap_err().to_string();
    assert!(err.contains("takes no `task`"), "{err}");
}

fn knowledge(dir: &Path) -> KnowledgeBase {
    let kb = KnowledgeBase::open(&dir.join("knowledge.db")).unwrap();
    for pack in ["thirukkural", "helplines"] {
        kb.import_dir(&assets().join("packs").join(pack), &TrustPolicy::any())
            .unwrap();
    }
    kb
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

/// The answer's cards, its text and its summary.
fn ask(assistant: &Assistant, question: &str) -> (Vec<Card>, String, AnswerSummary) {
    let mut cards = Vec::new();
    let mut text = String::new();
    let mut after_text = false;
    for event in assistant.ask(question) {
        match event {
            AssistantEvent::Card(c) => {
                // The code attaches cards after the model's answer.
                assert!(after_text || text.is_empty());
                cards.push(c);
            }
            AssistantEvent::Token {
                text: t,
                unsupported,
            } => {
                assert!(!unsupported, "a task's JSON is not fact-checked");
                text.push_str(&t);
                after_text = true;
            }
            AssistantEvent::Done(s) => return (cards, text, s),
            AssistantEvent::Failed(e) => panic!("{question}: {e}"),
            _ => {}
        }
    }
    panic!("no Done")
}

fn validator(schema: &str) -> jsonschema::Validator {
    jsonschema::validator_for(&serde_json::from_str(schema).unwrap()).unwrap()
}

#[test]
fn shipped_tasks_answer_in_their_schemas_on_both_models() {
    let dir = tempfile::tempdir().unwrap();
    drop(knowledge(dir.path()));
    let router = Router::builtin().unwrap();
    for model in [vazhi_tests::SMOLLM2, vazhi_tests::GEMMA3] {
        let Some(engine) = load(model) else { return };
        let assistant = Assistant::new(
            KnowledgeBase::open(&dir.path().join("knowledge.db")).unwrap(),
            router.clone(),
            Some(engine),
            AssistantConfig::default(),
        );
        let (mut complete, mut incomplete) = (0, 0);
        for (task, question) in TRIGGERS {
            let (cards, text, summary) = ask(&assistant, question);
            assert_eq!(summary.task.as_deref(), Some(*task), "{question}");
            assert_eq!(summary.text, text);
            match summary.finish {
                Some(FinishReason::EndOfText) => {
                    complete += 1;
                    let value: serde_json::Value = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("{model} {question}: {e}: {text}"));
                    let schema = &router.task(task).unwrap().schema;
                    assert!(
                        validator(schema).is_valid(&value),
                        "{model} {question}: {text}"
                    );
                    // The code attaches the 1930 card exactly for scam and suspicious verdicts.
                    let verdict = value.get("verdict").and_then(|v| v.as_str());
                    let attached = matches!(verdict, Some("scam" | "suspicious"));
                    let ids: Vec<&str> = cards.iter().map(|c| c.id.as_str()).collect();
                    let want: Vec<&str> = if attached {
                        vec!["helpline-1930"]
                    } else {
                        vec![]
                    };
                    assert_eq!(ids, want, "{model} {question}: {text}");
                }
                Some(FinishReason::Incomplete) => {
                    // Cut by the token budget inside a long (Tamil) string: no card then.
                    incomplete += 1;
                    assert!(cards.is_empty());
                }
                other => panic!("{model} {question}: finished {other:?}: {text}"),
            }
        }
        eprintln!("{model}: {complete} complete and valid, {incomplete} incomplete");
        assert!(
            complete * 4 >= TRIGGERS.len() * 3,
            "{model}: {complete} of {}",
            TRIGGERS.len()
        );
    }
}

/// An app's own rules: one task whose schema can only say `verdict`, for the attach tests.
fn forced_verdict(verdict: &str) -> String {
    format!(
        r#"
[task.check]
system_prompt = "Judge the message. Answer only with JSON."
schema = '{{"type": "object", "properties": {{"verdict": {{"const": "{verdict}"}}}}, "required": ["verdict"], "additionalProperties": false}}'
max_tokens = 32
temperature = 0.0

[[task.check.attach]]
field = "verdict"
values = ["scam", "suspicious"]
pack = "helplines"
key = "cyber crime helpline"

[[rule]]
name = "check"
pattern = '^check:\s*\S.*$'
route = "generate"
task = "check"
"#
    )
}

#[test]
fn the_code_attaches_the_cyber_crime_card_by_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    drop(knowledge(dir.path()));
    let kb = || KnowledgeBase::open(&dir.path().join("knowledge.db")).unwrap();
    let Some(engine) = load(vazhi_tests::SMOLLM2) else {
        return;
    };
    for (verdict, attached) in [("scam", true), ("suspicious", true), ("safe", false)] {
        let assistant = Assistant::new(
            kb(),
            Router::from_toml_str(&forced_verdict(verdict)).unwrap(),
            Some(engine.clone()),
            AssistantConfig::default(),
        );
        let (cards, text, summary) = ask(&assistant, "check: send me your OTP");
        assert_eq!(summary.finish, Some(FinishReason::EndOfText), "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["verdict"], verdict);
        if attached {
            assert_eq!(cards.len(), 1, "{verdict}");
            assert_eq!(cards[0].id, "helpline-1930");
            assert!(cards[0].body.contains("1930"));
            assert_eq!(summary.cards, 1);
        } else {
            assert!(cards.is_empty(), "{verdict}: {cards:?}");
        }
    }
    // Without a model a task has nothing to say: no guesses from the knowledge base.
    let assistant = Assistant::new(
        kb(),
        Router::builtin().unwrap(),
        None,
        AssistantConfig::default(),
    );
    let (cards, _, summary) = ask(&assistant, TRIGGERS[0].1);
    assert!(summary.model_unavailable);
    assert!(cards.is_empty());
    assert_eq!(summary.task.as_deref(), Some("scam-check"));
}

#[test]
fn an_app_swaps_in_its_own_tasks_and_model() {
    let Some(gemma) = vazhi_tests::model(vazhi_tests::GEMMA3) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rules = r#"
[task.star-rating]
system_prompt = "Rate the product review from 1 to 5 stars and name its main complaint. Answer only with JSON."
schema = '{"type": "object", "properties": {"stars": {"type": "integer", "minimum": 1, "maximum": 5}, "complaint": {"type": "string", "maxLength": 80}}, "required": ["stars", "complaint"], "additionalProperties": false}'
max_tokens = 64
temperature = 0.0

[[rule]]
name = "review-en"
pattern = '^rate\s+this\s+review\s*:\s*\S.*$'
route = "generate"
task = "star-rating"

[[rule]]
name = "review-ta"
pattern = '^இந்த\s+விமர்சனத்தை\s+மதிப்பிடு\s*:\s*\S.*$'
route = "generate"
task = "star-rating"
"#;
    let app = loop {
        match App::open(AppConfig {
            model_path: Some(gemma.clone()),
            rules_toml: Some(rules.to_owned()),
            pack_dirs: vec![assets().join("packs/helplines")],
            trust: TrustPolicy::any(),
            context_tokens: Some(2048),
            ..AppConfig::new(dir.path())
        }) {
            Err(e) if e.to_string().contains("in progress") => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            other => break other.unwrap(),
        }
    };
    let assistant = app.assistant();
    assert_eq!(assistant.router().tasks().len(), 1);
    // The shipped tasks are gone with the shipped rules.
    assert!(assistant.router().task("scam-check").is_none());
    let schema = validator(&assistant.router().task("star-rating").unwrap().schema);
    for question in [
        "rate this review: The phone is fast but the battery dies by noon.",
        "இந்த விமர்சனத்தை மதிப்பிடு: The rice was cold and the service was slow.",
    ] {
        let (cards, text, summary) = ask(&assistant, question);
        assert_eq!(summary.task.as_deref(), Some("star-rating"));
        assert!(cards.is_empty());
        assert_eq!(summary.finish, Some(FinishReason::EndOfText), "{text}");
        assert!(
            schema.is_valid(&serde_json::from_str(&text).unwrap()),
            "{text}"
        );
        assert!(summary.metrics.unwrap().generated_tokens <= 64);
    }
}
