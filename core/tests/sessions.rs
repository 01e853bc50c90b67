//! Conversations saved and restored on real weights: the first answer after a restore in a
//! fresh engine is the answer the first engine gives by going on (greedy), on SmolLM2 and on
//! Gemma 3 past its 512-token sliding window; damaged, altered, cut, foreign and newer files
//! fall back to the history (or to an empty conversation) with the reason; nothing in the file
//! is plaintext.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vazhi_core::assistant::{
    AnswerSummary, Assistant, AssistantConfig, Conversation, RestoredConversation,
};
use vazhi_core::engine::{Engine, EngineConfig, EngineError, GenerateParams, Sampling};
use vazhi_core::fact_guard::FactPolicy;
use vazhi_core::feedback::{FileKeyProvider, KeyProvider};
use vazhi_core::knowledge::KnowledgeBase;
use vazhi_core::router::Router;
use vazhi_core::sessions::file::{self, Contents};
use vazhi_core::sessions::{RestoreIssue, RestoreOutcome, SessionError, SESSION_KEY_ID};
use vazhi_core::signing::TrustPolicy;

fn assets() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets"))
}

fn load(model: &str) -> Option<Engine> {
    let path = vazhi_tests::model(model)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match Engine::load(
            &path,
            EngineConfig {
                n_ctx: Some(2048),
                ..EngineConfig::default()
            },
        ) {
            Err(EngineError::LoadInProgress) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            other => break Some(other.unwrap()),
        }
    }
}

/// A knowledge base with the Thirukkural pack, so that answers quote records (the history
/// grows fast: each question keeps its quoted record).
fn knowledge(dir: &Path) -> PathBuf {
    let path = dir.join("knowledge.db");
    let kb = KnowledgeBase::open(&path).unwrap();
    kb.import_dir(&assets().join("packs/thirukkural"), &TrustPolicy::any())
        .unwrap();
    path
}

fn assistant(kb: &Path, engine: &Engine) -> Assistant {
    Assistant::new(
        KnowledgeBase::open(kb).unwrap(),
        Router::builtin().unwrap(),
        Some(engine.clone()),
        AssistantConfig {
            params: GenerateParams {
                max_tokens: 48,
                sampling: Sampling::greedy(),
                ..GenerateParams::default()
            },
            fact_policy: FactPolicy::Off,
            ..AssistantConfig::default()
        },
    )
}

const QUESTIONS: &[&str] = &[
    "explain kural 1",
    "explain kural 7",
    "what does kural 100 say about sweet words",
    "explain kural 391 about learning",
    "explain kural 2",
    "explain kural 3",
    "explain kural 4",
    "explain kural 5",
];
const NEXT: &str = "explain kural 10";

fn ask(conversation: &Conversation, question: &str) -> AnswerSummary {
    conversation.ask(question).wait().unwrap()
}

/// A conversation on `engine` whose last prompt held more than `tokens` tokens.
fn long_conversation(kb: &Path, engine: &Engine, tokens: u32) -> Conversation {
    let conversation = assistant(kb, engine).conversation();
    for question in QUESTIONS {
        let summary = ask(&conversation, question);
        let prompt = summary.metrics.as_ref().unwrap().prompt_tokens;
        if prompt > tokens {
            return conversation;
        }
    }
    panic!("the conversation stayed under {tokens} tokens");
}

fn restore(assistant: &Assistant, path: &Path, keys: &dyn KeyProvider) -> RestoredConversation {
    assistant.restore_conversation(path, keys).unwrap()
}

/// Saves a long conversation, goes on in the same engine, restores the file into a second
/// engine and asks the same: the same text, reading only the new message.
fn restored_answer_is_the_continued_one(model: &str, past_tokens: u32) {
    let Some(first) = load(model) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kb = knowledge(dir.path());
    let keys = FileKeyProvider::new(dir.path().join("keys"));
    let conversation = long_conversation(&kb, &first, past_tokens);
    let path = dir.path().join("chat.session");
    let saved = conversation.save(&path, &keys).unwrap();
    assert!(saved.state_tokens as u32 > past_tokens, "{saved:?}");
    assert_eq!(saved.messages, conversation.history().len());
    let continued = ask(&conversation, NEXT);
    let history = conversation.history();
    drop(conversation);
    first.unload();

    let second = load(model).unwrap();
    let restored = restore(&assistant(&kb, &second), &path, &keys);
    assert_eq!(
        restored.outcome,
        RestoreOutcome::Restored {
            messages: saved.messages,
            tokens: saved.state_tokens
        }
    );
    let after = ask(&restored.conversation, NEXT);
    assert!(!after.text.is_empty());
    assert_eq!(after.text, continued.text, "{model}");
    let (c, a) = (continued.metrics.unwrap(), after.metrics.unwrap());
    eprintln!(
        "{model}: saved {} tokens of state; next prompt {} tokens, {} cached (continued {} cached)",
        saved.state_tokens, a.prompt_tokens, a.cached_prompt_tokens, c.cached_prompt_tokens
    );
    assert_eq!(a.prompt_tokens, c.prompt_tokens);
    assert_eq!(a.cached_prompt_tokens, c.cached_prompt_tokens);
    assert!(a.cached_prompt_tokens > past_tokens, "{a:?}");
    assert_eq!(restored.conversation.history(), history);
}

#[test]
fn smollm2_restored_answer_is_the_continued_one() {
    restored_answer_is_the_continued_one(vazhi_tests::SMOLLM2, 300);
}

#[test]
fn gemma_restored_answer_is_the_continued_one_past_its_sliding_window() {
    // Gemma 3's sliding-window layers keep 512 positions: the saved state must carry them.
    restored_answer_is_the_continued_one(vazhi_tests::GEMMA3, 700);
}

/// Re-seals a readable session file with a changed header (what another build or model
/// would have written), with the same key.
fn reseal(path: &Path, keys: &dyn KeyProvider, change: impl FnOnce(&mut file::Header)) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let front = file::read_front(&mut &bytes[..], bytes.len() as u64).unwrap();
    let key = keys.get(SESSION_KEY_ID).unwrap().unwrap();
    let history = file::open_history(&front, &key).unwrap();
    let state = file::open_state(&front, &bytes[front.bytes.len()..], &key).unwrap();
    let mut header = front.header.clone();
    change(&mut header);
    file::seal(&Contents {
        fingerprint: &header.fingerprint,
        key_id: SESSION_KEY_ID,
        key: &key,
        history: &serde_json::to_vec(&history).unwrap(),
        state: Some((&state.tokens, &state.kv)),
        now_ms: 0,
    })
    .unwrap()
}

#[test]
fn damaged_foreign_and_newer_files_fall_back_with_the_reason() {
    let Some(engine) = load(vazhi_tests::SMOLLM2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kb = knowledge(dir.path());
    let keys = FileKeyProvider::new(dir.path().join("keys"));
    let a = assistant(&kb, &engine);
    let conversation = a.conversation();
    for question in &QUESTIONS[..2] {
        ask(&conversation, question);
    }
    let path = dir.path().join("chat.session");
    let saved = conversation.save(&path, &keys).unwrap();
    assert!(saved.state_tokens > 0);
    let history = conversation.history();
    let good = std::fs::read(&path).unwrap();

    // Nothing the user or the model wrote is on disk in the clear.
    for message in &history {
        let text = message.content.as_bytes();
        let probe = &text[..text.len().min(24)];
        assert!(!good.windows(probe.len()).any(|w| w == probe));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }

    // The answer a re-read of the history gives (the cache emptied first).
    let reread = |bytes: &[u8], expect: &dyn Fn(&RestoreOutcome) -> bool| {
        let p = dir.path().join("variant.session");
        std::fs::write(&p, bytes).unwrap();
        let restored = restore(&a, &p, &keys);
        assert!(expect(&restored.outcome), "{:?}", restored.outcome);
        restored
    };
    let front_len = file::read_front(&mut &good[..], good.len() as u64)
        .unwrap()
        .bytes
        .len();
    let messages = history.len();
    let history_only = |issue: RestoreIssue| {
        move |o: &RestoreOutcome| {
            *o == RestoreOutcome::HistoryOnly {
                messages,
                issue: issue.clone(),
            }
        }
    };

    // A byte of the state altered: its MAC fails; the history is kept.
    let mut tampered = good.clone();
    let at = front_len + (good.len() - front_len) / 2;
    tampered[at] ^= 1;
    let r = reread(&tampered, &history_only(RestoreIssue::Tampered));
    assert_eq!(r.conversation.history(), history);
    engine.score("empty the cache").unwrap();
    let fallback = ask(&r.conversation, NEXT);
    let m = fallback.metrics.unwrap();
    assert_eq!(m.cached_prompt_tokens, 0, "the history is re-read");
    assert!(!fallback.text.is_empty());

    // Cut inside the state, and inside the history.
    reread(
        &good[..good.len() - 100],
        &history_only(RestoreIssue::Truncated),
    );
    reread(&good[..front_len - 5], &|o| {
        *o == RestoreOutcome::Empty {
            issue: RestoreIssue::Truncated,
        }
    });
    reread(&good[..3], &|o| {
        *o == RestoreOutcome::Empty {
            issue: RestoreIssue::Truncated,
        }
    });

    // Another llama.cpp release, another model, another template: sealed by us, not loaded.
    let other_llama = reseal(&path, &keys, |h| {
        h.fingerprint.llama_cpp = "llama-cpp-sys-2 0.0.1".into()
    });
    reread(
        &other_llama,
        &|o| matches!(o, RestoreOutcome::HistoryOnly { issue: RestoreIssue::LlamaVersionChanged { saved, .. }, .. } if saved == "llama-cpp-sys-2 0.0.1"),
    );
    let other_model = reseal(&path, &keys, |h| {
        h.fingerprint.model_sha256 = "00".repeat(32)
    });
    reread(&other_model, &history_only(RestoreIssue::ModelChanged));
    let other_template = reseal(&path, &keys, |h| {
        h.fingerprint.template_sha256 = "11".repeat(32)
    });
    reread(
        &other_template,
        &history_only(RestoreIssue::TemplateChanged),
    );
    // The same file resealed unchanged still restores (the resealing itself is sound).
    let unchanged = reseal(&path, &keys, |_| {});
    reread(&unchanged, &|o| {
        matches!(o, RestoreOutcome::Restored { .. })
    });

    // A header edited on disk: a file sealed for another model, its header then claiming
    // this one. Both MACs cover the header: nothing is read from it.
    let field = b"\"model_sha256\":\"";
    let at =
        |bytes: &[u8]| bytes.windows(field.len()).position(|w| w == field).unwrap() + field.len();
    let mut edited = other_model.clone();
    let start = at(&edited);
    edited[start..start + 64].copy_from_slice(&good[at(&good)..at(&good) + 64]);
    reread(&edited, &|o| {
        *o == RestoreOutcome::Empty {
            issue: RestoreIssue::Tampered,
        }
    });

    // A newer format, another file, another key: nothing to read; an empty conversation.
    let mut newer = good.clone();
    newer[8] = 9;
    reread(&newer, &|o| {
        *o == RestoreOutcome::Empty {
            issue: RestoreIssue::UnsupportedFormat { found: 9 },
        }
    });
    reread(b"GGUF\x03\0\0\0not a session at all", &|o| {
        *o == RestoreOutcome::Empty {
            issue: RestoreIssue::NotASessionFile,
        }
    });
    let strangers = FileKeyProvider::new(dir.path().join("other-keys"));
    let r = restore(&a, &path, &strangers);
    assert_eq!(
        r.outcome,
        RestoreOutcome::Empty {
            issue: RestoreIssue::KeyUnavailable
        }
    );
    assert!(r.conversation.history().is_empty());
    strangers.create(SESSION_KEY_ID).unwrap();
    let r = restore(&a, &path, &strangers);
    assert_eq!(
        r.outcome,
        RestoreOutcome::Empty {
            issue: RestoreIssue::Tampered
        }
    );

    // A missing file is an error, not an empty conversation.
    assert!(matches!(
        a.restore_conversation(dir.path().join("missing"), &keys),
        Err(SessionError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
    ));

    // Still good after all that: the original file restores with its state.
    let r = restore(&a, &path, &keys);
    assert!(matches!(r.outcome, RestoreOutcome::Restored { .. }));
}

#[test]
fn a_smaller_context_or_another_model_falls_back_and_answers() {
    let (Some(smol), Some(gemma)) = (load(vazhi_tests::SMOLLM2), load(vazhi_tests::GEMMA3)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kb = knowledge(dir.path());
    let keys = FileKeyProvider::new(dir.path().join("keys"));
    let conversation = assistant(&kb, &smol).conversation();
    ask(&conversation, QUESTIONS[0]);
    let path = dir.path().join("chat.session");
    conversation.save(&path, &keys).unwrap();

    let restored = restore(&assistant(&kb, &gemma), &path, &keys);
    assert_eq!(
        restored.outcome,
        RestoreOutcome::HistoryOnly {
            messages: 2,
            issue: RestoreIssue::ModelChanged
        }
    );
    let answer = ask(&restored.conversation, NEXT);
    assert!(!answer.text.is_empty());
    assert_eq!(restored.conversation.history().len(), 4);
    drop(gemma);

    let small = {
        let path = vazhi_tests::model(vazhi_tests::SMOLLM2).unwrap();
        loop {
            match Engine::load(
                &path,
                EngineConfig {
                    n_ctx: Some(1024),
                    ..EngineConfig::default()
                },
            ) {
                Err(EngineError::LoadInProgress) => std::thread::sleep(Duration::from_millis(50)),
                other => break other.unwrap(),
            }
        }
    };
    let restored = restore(&assistant(&kb, &small), &path, &keys);
    assert_eq!(
        restored.outcome,
        RestoreOutcome::HistoryOnly {
            messages: 2,
            issue: RestoreIssue::ContextChanged {
                saved: 2048,
                running: 1024
            }
        }
    );
}

#[test]
fn saving_is_refused_while_answering_and_without_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let kb = knowledge(dir.path());
    let keys = FileKeyProvider::new(dir.path().join("keys"));
    let no_model = Assistant::new(
        KnowledgeBase::open(&kb).unwrap(),
        Router::builtin().unwrap(),
        None,
        AssistantConfig::default(),
    );
    let path = dir.path().join("chat.session");
    assert!(matches!(
        no_model.conversation().save(&path, &keys),
        Err(SessionError::NoModel)
    ));
    assert!(!path.exists());
    let Some(engine) = load(vazhi_tests::SMOLLM2) else {
        return;
    };
    let conversation = assistant(&kb, &engine).conversation();
    let answer = conversation.ask(QUESTIONS[0]);
    // From the call on until its last event (routing, the model, the fact guard's revision of
    // the history), the conversation is not saved half-way.
    assert!(matches!(
        conversation.save(&path, &keys),
        Err(SessionError::Busy(_))
    ));
    answer.wait().unwrap();
    let saved = conversation.save(&path, &keys).unwrap();
    assert_eq!(saved.messages, 2);
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("chat.session"))
        .collect();
    assert_eq!(names, ["chat.session"]);
}

#[test]
fn a_save_takes_only_its_own_conversations_state() {
    let Some(engine) = load(vazhi_tests::SMOLLM2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kb = knowledge(dir.path());
    let keys = FileKeyProvider::new(dir.path().join("keys"));
    let a = assistant(&kb, &engine);
    let (first, second) = (a.conversation(), a.conversation());
    let path = dir.path().join("chat.session");
    ask(&first, QUESTIONS[0]);
    assert!(first.save(&path, &keys).unwrap().state_tokens > 0);

    // The second conversation's answer fails in the engine (its message does not fit the
    // context) before it touches the cache: the cache is still the first's.
    let long = "river ".repeat(3000);
    assert!(second.ask(&long).wait().is_err());
    let saved = second.save(&path, &keys).unwrap();
    assert_eq!((saved.messages, saved.state_tokens), (0, 0));
    assert!(first.save(&path, &keys).unwrap().state_tokens > 0);

    // Once the second has answered, the cache is its: the first saves its history alone,
    // and a restore says so.
    ask(&second, QUESTIONS[1]);
    let saved = first.save(&path, &keys).unwrap();
    assert_eq!((saved.messages, saved.state_tokens), (2, 0));
    let restored = restore(&a, &path, &keys);
    assert_eq!(
        restored.outcome,
        RestoreOutcome::HistoryOnly {
            messages: 2,
            issue: RestoreIssue::NoStateSaved
        }
    );
    assert!(!ask(&restored.conversation, NEXT).text.is_empty());
}
