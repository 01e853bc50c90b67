//! The Flutter bridge's api layer, from Rust: the events a Dart `Stream` would receive (through
//! the same `Emit` a `StreamSink` implements), their order, cancellation, closed streams,
//! typed errors, and each capability against real packs, a real model (when fetched) and a
//! real HTTP server on loopback.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flutter_rust_bridge::DartFnFuture;
use vazhi_flutter::api::assistant::{
    AnswerTask, Conversation, FactPolicy, MemoryPressure, VazhiApp, VazhiAppConfig,
};
use vazhi_flutter::api::error::{VazhiErrorCode, VazhiException};
use vazhi_flutter::api::feedback::{FeedbackStore, KeyReply, KeyStore};
use vazhi_flutter::api::knowledge::KnowledgeBase;
use vazhi_flutter::api::models::{DownloadTask, ModelManager, ModelManagerConfig};
use vazhi_flutter::api::records::{
    AnswerSummary, AskEvent, AskEventKind, AskOptions, DownloadEvent, DownloadEventKind,
    FeedbackInput, ModelState, Rating, RestoreKind, ToolSpec,
};

type Events<T> = Receiver<Result<T, VazhiException>>;

fn stream<T>() -> (Sender<Result<T, VazhiException>>, Events<T>) {
    channel()
}

/// Every event until the stream ends (the sender is dropped), errors included.
fn drain<T>(rx: &Events<T>) -> Vec<Result<T, VazhiException>> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut out = Vec::new();
    while let Ok(e) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        out.push(e);
    }
    out
}

fn kinds(events: &[Result<AskEvent, VazhiException>]) -> Vec<AskEventKind> {
    events.iter().map(|e| e.as_ref().unwrap().kind).collect()
}

/// llama.cpp loads are serialised process-wide (a second concurrent load is `busy`): tests that
/// open model files take turns.
static MODEL_FILES: Mutex<()> = Mutex::new(());

fn pack(name: &str) -> String {
    format!("{}/../../assets/packs/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn config(dir: &std::path::Path) -> VazhiAppConfig {
    VazhiAppConfig {
        data_dir: dir.display().to_string(),
        pack_dirs: vec![pack("thirukkural")],
        threads: Some(1),
        context_tokens: Some(512),
        max_tokens: Some(48),
        ..VazhiAppConfig::default()
    }
}

#[test]
fn before_any_model_answers_stream_routed_cards_done_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let app = VazhiApp::open(config(dir.path())).unwrap();
    assert!(!app.has_model());
    let task = AnswerTask::new();
    let (tx, rx) = stream();
    app.ask_into("குறள் 1".into(), AskOptions::default(), &task, tx)
        .unwrap();
    let events = drain(&rx);
    assert_eq!(
        kinds(&events),
        [AskEventKind::Routed, AskEventKind::Card, AskEventKind::Done]
    );
    let routed = events[0].as_ref().unwrap();
    assert_eq!(routed.route.as_deref(), Some("lookup"));
    let card = events[1].as_ref().unwrap().card.clone().unwrap();
    assert_eq!(card.pack, "thirukkural");
    assert!(!card.licence.is_empty() && !card.source.is_empty());
    let summary = events[2].as_ref().unwrap().summary.clone().unwrap();
    assert_eq!((summary.cards, summary.model_unavailable), (1, false));
    assert!(task.is_finished());

    // An open question without a model: the cards are the answer, and the summary says the
    // model would have added more.
    let (tx, rx) = stream();
    app.ask_into(
        "explain kural 1".into(),
        AskOptions::default(),
        &AnswerTask::new(),
        tx,
    )
    .unwrap();
    let events = drain(&rx);
    let last = events.last().unwrap().as_ref().unwrap();
    assert_eq!(last.kind, AskEventKind::Done);
    assert!(last.summary.as_ref().unwrap().model_unavailable);
    assert!(events
        .iter()
        .all(|e| e.as_ref().unwrap().kind != AskEventKind::Token));
}

#[test]
fn a_blank_question_throws_before_the_stream_starts() {
    let dir = tempfile::tempdir().unwrap();
    let app = VazhiApp::open(config(dir.path())).unwrap();
    let (tx, rx) = stream();
    let err = app
        .ask_into(" \n ".into(), AskOptions::default(), &AnswerTask::new(), tx)
        .unwrap_err();
    assert_eq!(err.code, VazhiErrorCode::InvalidInput);
    assert!(drain(&rx).is_empty(), "nothing was streamed");
    let (tx, _rx) = stream();
    let err = app
        .conversation()
        .ask_into("".into(), AskOptions::default(), &AnswerTask::new(), tx)
        .unwrap_err();
    assert_eq!(err.code, VazhiErrorCode::InvalidInput);
}

#[test]
fn bad_configs_throw_typed_codes() {
    let _turn = MODEL_FILES.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let code = |c: VazhiAppConfig| VazhiApp::open(c).unwrap_err().code;
    let mut c = config(dir.path());
    c.model_path = Some("/nonexistent/model.gguf".into());
    assert_eq!(code(c), VazhiErrorCode::ModelNotFound);
    let garbage = dir.path().join("garbage.gguf");
    std::fs::write(&garbage, b"not a model at all").unwrap();
    let mut c = config(dir.path());
    c.model_path = Some(garbage.display().to_string());
    assert_eq!(code(c), VazhiErrorCode::ModelRefused);
    let mut c = config(dir.path());
    c.model_id = Some("smollm2-135m-instruct-q4_1".into());
    assert_eq!(code(c), VazhiErrorCode::ModelNotFound);
    let mut c = config(dir.path());
    c.rules_toml = Some("this is not = [toml".into());
    assert_eq!(code(c), VazhiErrorCode::InvalidInput);
    let mut c = config(dir.path());
    c.pack_dirs = vec![dir.path().join("no-such-pack").display().to_string()];
    assert_eq!(code(c), VazhiErrorCode::Knowledge);
}

#[test]
fn the_model_streams_tokens_cancels_unloads_and_reloads() {
    let Some(model) = vazhi_tests::model(vazhi_tests::SMOLLM2) else {
        eprintln!("SmolLM2 not fetched (scripts/setup): skipped");
        return;
    };
    let _turn = MODEL_FILES.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.model_path = Some(model.display().to_string());
    c.max_tokens = Some(400);
    let app = VazhiApp::open(c).unwrap();
    assert!(app.has_model());
    let options = AskOptions {
        temperature: Some(0.0),
        ..AskOptions::default()
    };

    // Tokens arrive in order and concatenate to the summary's text.
    let (tx, rx) = stream();
    let short = AskOptions {
        max_tokens: Some(12),
        ..options.clone()
    };
    app.ask_into("Say hello.".into(), short, &AnswerTask::new(), tx)
        .unwrap();
    let events = drain(&rx);
    let streamed: String = events
        .iter()
        .filter_map(|e| e.as_ref().unwrap().text.clone())
        .collect();
    let last = events.last().unwrap().as_ref().unwrap();
    assert_eq!(last.kind, AskEventKind::Done);
    let summary = last.summary.as_ref().unwrap();
    assert_eq!(summary.text, streamed);
    assert!(summary.generated_tokens <= 12 && summary.generated_tokens > 0);
    assert_eq!(kinds(&events)[0], AskEventKind::Routed);

    // A JSON Schema constrains the answer; an exact question is answered by the model,
    // grounded on its record; a schema that cannot be used is refused at once.
    let (tx, rx) = stream();
    let schema = r#"{"type":"object","properties":{"topic":{"type":"string","maxLength":40},
        "kural_number":{"type":"integer","minimum":1,"maximum":1330}},
        "required":["topic","kural_number"],"additionalProperties":false}"#;
    let structured = AskOptions {
        json_schema: Some(schema.into()),
        ..options.clone()
    };
    app.ask_into("குறள் 1".into(), structured, &AnswerTask::new(), tx)
        .unwrap();
    let last = drain(&rx).pop().unwrap().unwrap();
    let summary = last.summary.unwrap();
    assert_eq!(summary.route, "hybrid");
    assert_eq!(
        summary.finish.as_deref(),
        Some("end_of_text"),
        "{}",
        summary.text
    );
    let value: serde_json::Value = serde_json::from_str(&summary.text).unwrap();
    assert!(
        value["kural_number"].is_i64() && value["topic"].is_string(),
        "{value}"
    );
    let (tx, _rx) = stream();
    let bad = AskOptions {
        grammar: Some("answer ::= \"yes\"".into()),
        ..options.clone()
    };
    assert!(app
        .ask_into("Yes or no?".into(), bad, &AnswerTask::new(), tx)
        .is_err());

    // Cancel after the first token.
    let task = AnswerTask::new();
    let (tx, rx) = stream();
    app.ask_into(
        "Write a long story about a river.".into(),
        options.clone(),
        &task,
        tx,
    )
    .unwrap();
    loop {
        let e = rx.recv_timeout(Duration::from_secs(60)).unwrap().unwrap();
        if e.kind == AskEventKind::Token {
            break;
        }
    }
    task.cancel();
    let rest = drain(&rx);
    let last = rest.last().unwrap().as_ref().unwrap();
    let summary = last.summary.as_ref().unwrap();
    assert_eq!(summary.finish.as_deref(), Some("cancelled"));
    assert!(summary.generated_tokens < 400);
    assert!(task.is_finished());

    // A stream whose listener went away (Dart cancelled the subscription) stops the model.
    let task = AnswerTask::new();
    let (tx, rx) = stream::<AskEvent>();
    drop(rx);
    let started = Instant::now();
    app.ask_into(
        "Write a long story about a river.".into(),
        options.clone(),
        &task,
        tx,
    )
    .unwrap();
    while !task.is_finished() {
        assert!(started.elapsed() < Duration::from_secs(60), "never stopped");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Memory pressure below the threshold frees nothing; at it, the model goes and later
    // answers come from the knowledge base; reload brings it back.
    assert!(!app.on_memory_pressure(MemoryPressure::Background).unwrap());
    assert!(app.on_memory_pressure(MemoryPressure::Critical).unwrap());
    assert!(!app.has_model());
    let (tx, rx) = stream();
    app.ask_into(
        "explain kural 1".into(),
        AskOptions::default(),
        &AnswerTask::new(),
        tx,
    )
    .unwrap();
    let last = drain(&rx).pop().unwrap().unwrap();
    assert!(last.summary.unwrap().model_unavailable);
    app.reload().unwrap();
    assert!(app.has_model());

    // Conversations keep the config's max_tokens.
    let (tx, rx) = stream();
    let conversation = app.conversation();
    conversation
        .ask_into(
            "Tell me a story.".into(),
            AskOptions {
                max_tokens: Some(5),
                ..options.clone()
            },
            &AnswerTask::new(),
            tx,
        )
        .unwrap();
    let last = drain(&rx).pop().unwrap().unwrap();
    assert!(last.summary.unwrap().generated_tokens <= 5);

    // Unloading ends an answer in flight with modelUnloaded (or done, if its last token was
    // already out); an error is always the stream's last event.
    let (tx, rx) = stream();
    app.ask_into(
        "Write a long story about a river.".into(),
        options.clone(),
        &AnswerTask::new(),
        tx,
    )
    .unwrap();
    while rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap()
        .unwrap()
        .kind
        != AskEventKind::Token
    {}
    app.unload().unwrap();
    let rest = drain(&rx);
    match rest.last().unwrap() {
        Err(e) => assert_eq!(e.code, VazhiErrorCode::ModelUnloaded),
        Ok(e) => assert_eq!(e.kind, AskEventKind::Done),
    }
    assert!(rest.iter().rev().skip(1).all(Result::is_ok));
}

#[test]
fn knowledge_imports_looks_up_and_searches_without_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let kb = KnowledgeBase::open(data_dir.clone()).unwrap();
    let report = kb.import_pack(pack("helplines")).unwrap();
    assert!(report.records > 0 && report.replaced.is_none());
    kb.import_pack(pack("thirukkural")).unwrap();
    let packs = kb.packs().unwrap();
    assert_eq!(packs.len(), 2);
    let card = kb
        .lookup("thirukkural".into(), "௧".into())
        .unwrap()
        .unwrap();
    assert_eq!(
        card.id,
        kb.lookup("thirukkural".into(), "1".into())
            .unwrap()
            .unwrap()
            .id
    );
    assert!(kb
        .lookup("thirukkural".into(), "99999".into())
        .unwrap()
        .is_none());
    // Search syntax is text, never FTS5 syntax.
    assert!(kb.search("\"* OR (".into(), 5, None).is_ok());
    let hits = kb.search(card.title.clone(), 5, None).unwrap();
    assert!(hits.iter().any(|h| h.card.id == card.id));
    let err = kb
        .import_pack(dir.path().display().to_string())
        .unwrap_err();
    assert_eq!(err.code, VazhiErrorCode::Knowledge);
    // An app opened on the same directory sees the packs.
    let app = VazhiApp::open(VazhiAppConfig {
        data_dir,
        ..VazhiAppConfig::default()
    })
    .unwrap();
    let (tx, rx) = stream();
    app.ask_into(
        "குறள் 2".into(),
        AskOptions::default(),
        &AnswerTask::new(),
        tx,
    )
    .unwrap();
    assert!(kinds(&drain(&rx)).contains(&AskEventKind::Card));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A loopback server with one 3 MiB "model" and a catalog pinning it.
fn served_model() -> (vazhi_tests::http_server::TestServer, Vec<u8>, String) {
    use sha2::Digest;
    let server = vazhi_tests::http_server::TestServer::start();
    let data: Vec<u8> = (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    server.serve_bytes("/m.gguf", data.clone());
    let catalog = format!(
        r#"{{"format":1,"models":[{{"id":"m","urls":["{}"],"sha256":"{}","size":{},
        "quant":"Q4_K_M","arch":"llama","context_length":2048,"min_ram_mb":64,"licence":"MIT"}}]}}"#,
        server.url("/m.gguf"),
        hex(&sha2::Sha256::digest(&data)),
        data.len()
    );
    (server, data, catalog)
}

fn manager(dir: &std::path::Path, catalog: String) -> ModelManager {
    ModelManager::open(ModelManagerConfig {
        data_dir: dir.display().to_string(),
        catalog_json: Some(catalog),
        allow_unsigned: true,
        read_timeout_seconds: Some(2),
        allow_loopback_http: true,
        ..ModelManagerConfig::default()
    })
    .unwrap()
}

#[test]
fn downloads_stream_progress_then_one_last_event_and_pause_resume_cancel_work() {
    let (server, data, catalog) = served_model();
    let dir = tempfile::tempdir().unwrap();
    let manager = manager(dir.path(), catalog);
    assert_eq!(manager.catalog().len(), 1);
    manager.check_fits("m".into()).unwrap();
    assert_eq!(
        manager.status("m".into()).unwrap().state,
        ModelState::Absent
    );

    // Slow enough to pause half way.
    server.set_behavior(
        "/m.gguf",
        vazhi_tests::http_server::Behavior {
            rate_limit: Some(1 << 20),
            ..Default::default()
        },
    );
    let task = DownloadTask::new();
    let (tx, rx) = stream::<DownloadEvent>();
    manager.download_into("m".into(), &task, tx).unwrap();
    loop {
        let e = rx.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
        if e.progress.as_ref().is_some_and(|p| p.bytes > 0) {
            break;
        }
    }
    task.pause();
    let rest = drain(&rx);
    let last = rest.last().unwrap().as_ref().unwrap();
    assert_eq!(last.kind, DownloadEventKind::Paused);
    let kept = last.bytes.unwrap();
    assert!(kept > 0 && kept < data.len() as u64);
    assert!(rest[..rest.len() - 1]
        .iter()
        .all(|e| e.as_ref().unwrap().kind == DownloadEventKind::Progress));
    assert!(task.is_finished());
    let status = manager.status("m".into()).unwrap();
    assert_eq!(status.state, ModelState::Partial);
    assert_eq!(status.partial_bytes, Some(kept));

    // Resume: downloading again continues from the partial file and installs it verified.
    server.set_behavior("/m.gguf", Default::default());
    server.reset_counters();
    let (tx, rx) = stream();
    manager
        .download_into("m".into(), &DownloadTask::new(), tx)
        .unwrap();
    let events = drain(&rx);
    let last = events.last().unwrap().as_ref().unwrap();
    assert_eq!(last.kind, DownloadEventKind::Installed);
    let installed = last.installed.clone().unwrap();
    assert_eq!(std::fs::read(&installed.path).unwrap(), data);
    assert!(
        server.body_bytes_sent() < data.len() as u64,
        "resumed, not restarted"
    );
    let status = manager.status("m".into()).unwrap();
    assert_eq!(status.state, ModelState::Installed);
    assert_eq!(manager.verify("m".into()).unwrap().sha256, installed.sha256);

    // Cancel deletes the partial file.
    assert!(manager.remove("m".into()).unwrap());
    server.set_behavior(
        "/m.gguf",
        vazhi_tests::http_server::Behavior {
            rate_limit: Some(1 << 20),
            ..Default::default()
        },
    );
    let task = DownloadTask::new();
    let (tx, rx) = stream();
    manager.download_into("m".into(), &task, tx).unwrap();
    rx.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
    task.cancel();
    let last = drain(&rx).pop().unwrap().unwrap();
    assert_eq!(last.kind, DownloadEventKind::Cancelled);
    assert_eq!(
        manager.status("m".into()).unwrap().state,
        ModelState::Absent
    );

    // Offline: the stream ends with a typed error and no socket is opened.
    manager.set_offline(true).unwrap();
    assert!(manager.is_offline());
    server.reset_counters();
    let (tx, rx) = stream();
    manager
        .download_into("m".into(), &DownloadTask::new(), tx)
        .unwrap();
    let events = drain(&rx);
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].as_ref().unwrap_err().code,
        VazhiErrorCode::Offline
    );
    assert_eq!(server.connections(), 0);
}

#[test]
fn a_closed_download_stream_pauses_the_download() {
    let (server, _data, catalog) = served_model();
    server.set_behavior(
        "/m.gguf",
        vazhi_tests::http_server::Behavior {
            rate_limit: Some(1 << 20),
            ..Default::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let manager = manager(dir.path(), catalog);
    let task = DownloadTask::new();
    let (tx, rx) = stream::<DownloadEvent>();
    drop(rx);
    let started = Instant::now();
    manager.download_into("m".into(), &task, tx).unwrap();
    while !task.is_finished() {
        assert!(started.elapsed() < Duration::from_secs(30), "never paused");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_ne!(
        manager.status("m".into()).unwrap().state,
        ModelState::Installed
    );
}

#[test]
fn installing_a_file_the_os_downloaded_checks_its_hash() {
    let (_server, data, catalog) = served_model();
    let dir = tempfile::tempdir().unwrap();
    let manager = manager(dir.path(), catalog);
    let fetched = dir.path().join("fetched-by-os.bin");
    let mut wrong = data.clone();
    wrong[1000] ^= 1;
    std::fs::write(&fetched, &wrong).unwrap();
    let err = manager
        .install_downloaded("m".into(), fetched.display().to_string())
        .unwrap_err();
    assert_eq!(err.code, VazhiErrorCode::Verification);
    assert_eq!(
        manager.status("m".into()).unwrap().state,
        ModelState::Absent
    );
    std::fs::write(&fetched, &data).unwrap();
    let model = manager
        .install_downloaded("m".into(), fetched.display().to_string())
        .unwrap();
    assert_eq!(std::fs::read(model.path).unwrap(), data);
    let err = manager.status("nope".into()).unwrap_err();
    assert_eq!(err.code, VazhiErrorCode::InvalidInput);
}

/// Key callbacks as the Dart side gives them (`FutureOr<KeyReply> Function(String)`), over an
/// in-memory map.
#[derive(Clone, Default)]
struct Keys {
    map: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    length: usize,
    failing: bool,
}

impl Keys {
    fn get(&self) -> impl Fn(String) -> DartFnFuture<KeyReply> + Send + Sync + 'static {
        let get = self.clone();
        move |id| {
            let reply = if get.failing {
                KeyReply {
                    key: None,
                    error: Some("keystore locked".into()),
                }
            } else {
                KeyReply {
                    key: get.map.lock().unwrap().get(&id).cloned(),
                    error: None,
                }
            };
            Box::pin(async move { reply })
        }
    }

    fn create(&self) -> impl Fn(String) -> DartFnFuture<KeyReply> + Send + Sync + 'static {
        let create = self.clone();
        move |id| {
            let key: Vec<u8> = (0..create.length).map(|i| (i * 31 + 7) as u8).collect();
            create.map.lock().unwrap().insert(id, key.clone());
            Box::pin(async move {
                KeyReply {
                    key: Some(key),
                    error: None,
                }
            })
        }
    }

    fn delete(&self) -> impl Fn(String) -> DartFnFuture<KeyReply> + Send + Sync + 'static {
        let delete = self.clone();
        move |id| {
            delete.map.lock().unwrap().remove(&id);
            Box::pin(async { KeyReply::default() })
        }
    }

    fn open(&self, dir: &std::path::Path, fresh: bool) -> Result<FeedbackStore, VazhiException> {
        FeedbackStore::open(
            dir.display().to_string(),
            fresh,
            self.get(),
            self.create(),
            self.delete(),
        )
    }

    fn store(&self) -> KeyStore {
        KeyStore::new(self.get(), self.create(), self.delete())
    }
}

#[test]
fn feedback_is_recorded_encrypted_with_keys_from_dart_callbacks() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys {
        length: 32,
        ..Keys::default()
    };
    let store = keys.open(dir.path(), false).unwrap();
    let correction = "அறத்துப்பால், முதல் அதிகாரம்";
    let id = store
        .record(FeedbackInput {
            question: "குறள் 1 என்ன?".into(),
            route: "lookup".into(),
            answer: "அகர முதல எழுத்தெல்லாம்".into(),
            card_ids: vec!["1".into()],
            rating: Rating::Down,
            correction: Some(correction.into()),
            model_id: None,
            model_sha256: None,
            pack_versions: [("thirukkural".to_owned(), "1.0.0".to_owned())].into(),
            created_at_ms: None,
        })
        .unwrap();
    let listing = store.list(None, None, None).unwrap();
    assert_eq!(listing.records.len(), 1);
    assert_eq!(listing.records[0].record_id, id);
    assert_eq!(listing.records[0].correction.as_deref(), Some(correction));
    // Encrypted at rest: the correction is not in the database file.
    let db = std::fs::read(dir.path().join("feedback.db")).unwrap();
    assert!(!db
        .windows(correction.len())
        .any(|w| w == correction.as_bytes()));
    let export = dir.path().join("export.jsonl");
    let report = store
        .export_to(export.display().to_string(), None, None)
        .unwrap();
    assert_eq!(report.exported, 1);
    assert!(std::fs::read_to_string(&export)
        .unwrap()
        .contains(correction));
    drop(store);

    // The key store fails: a typed error, nothing changed.
    let failing = Keys {
        failing: true,
        ..keys.clone()
    };
    assert!(failing.open(dir.path(), false).is_err());
    // The key is gone (a restore to a new phone): keyUnavailable, then a fresh store.
    keys.map.lock().unwrap().clear();
    let err = keys.open(dir.path(), false).unwrap_err();
    assert_eq!(err.code, VazhiErrorCode::KeyUnavailable);
    let fresh = keys.open(dir.path(), true).unwrap();
    assert_eq!(fresh.count().unwrap(), 0);
    assert_eq!(fresh.purge_all().unwrap(), 0);

    // A 16-byte key is refused, not used.
    let other = tempfile::tempdir().unwrap();
    let short = Keys {
        length: 16,
        ..Keys::default()
    };
    let err = short.open(other.path(), false).unwrap_err();
    assert!(err.detail.contains("32 bytes"), "{err}");
}

#[test]
fn tool_calls_arrive_as_events_and_results_go_back_through_the_task() {
    let Some(model) = vazhi_tests::model(vazhi_tests::SMOLLM2) else {
        eprintln!("SmolLM2 not fetched (scripts/setup): skipped");
        return;
    };
    let _turn = MODEL_FILES.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.model_path = Some(model.display().to_string());
    c.context_tokens = Some(2048);
    c.max_tokens = Some(80);
    c.chat_template = Some(
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../core/tests/fixtures/tool_templates/hermes.jinja"
        ))
        .unwrap(),
    );
    let app = VazhiApp::open(c).unwrap();
    let options = AskOptions {
        temperature: Some(0.0),
        tools: vec![ToolSpec {
            name: "get_weather".into(),
            description: "Get the current weather in a city.".into(),
            parameters: r#"{"type":"object","properties":{"city":{"type":"string","maxLength":40}},"required":["city"]}"#.into(),
        }],
        require_tool_call: true,
        ..AskOptions::default()
    };
    let task = AnswerTask::new();
    // Before the answer starts there is nothing to answer.
    assert!(task
        .submit_tool_result("call_1".into(), "{}".into())
        .is_err());
    let (tx, rx) = stream();
    app.ask_into("Is it raining in Madurai?".into(), options, &task, tx)
        .unwrap();
    let mut calls = Vec::new();
    let mut last = None;
    for event in rx.iter() {
        let event = event.unwrap();
        match event.kind {
            AskEventKind::ToolCall => {
                let call = event.tool_call.unwrap();
                assert!(!call.builtin);
                let args: serde_json::Value = serde_json::from_str(&call.arguments_json).unwrap();
                assert!(args["city"].is_string(), "{call:?}");
                task.submit_tool_result(call.id.clone(), r#"{"rain_mm": 12}"#.into())
                    .unwrap();
                calls.push(call);
            }
            AskEventKind::Done => last = event.summary,
            _ => {}
        }
    }
    let summary = last.unwrap();
    assert!(!calls.is_empty());
    assert_eq!(summary.tool_calls as usize, calls.len());
    assert_ne!(summary.finish.as_deref(), Some("tool_calls"));
}

#[test]
fn the_fact_guard_marks_tokens_and_tasks_attach_their_cards() {
    let Some(model) = vazhi_tests::model(vazhi_tests::SMOLLM2) else {
        eprintln!("SmolLM2 not fetched (scripts/setup): skipped");
        return;
    };
    let _turn = MODEL_FILES.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.model_path = Some(model.display().to_string());
    c.max_tokens = Some(64);
    c.pack_dirs.push(pack("helplines"));
    c.fact_policy = Some(FactPolicy::Mark);
    let app = VazhiApp::open(c).unwrap();
    let options = AskOptions {
        temperature: Some(0.0),
        ..AskOptions::default()
    };
    // A name, year or number no card holds: its sentence is marked and counted (asked until
    // the small model invents one; the first question does on the shipped build).
    let events = [
        "explain kural 7 and who wrote it",
        "explain kural 1",
        "Say hello.",
    ]
    .into_iter()
    .map(|question| {
        let (tx, rx) = stream();
        app.ask_into(question.into(), options.clone(), &AnswerTask::new(), tx)
            .unwrap();
        drain(&rx)
            .into_iter()
            .map(Result::unwrap)
            .collect::<Vec<AskEvent>>()
    })
    .find(|events| events.iter().any(|e| e.unsupported))
    .expect("no answer stated anything unsupported");
    let summary = events.last().unwrap().summary.clone().unwrap();
    let marked: Vec<&AskEvent> = events.iter().filter(|e| e.unsupported).collect();
    assert!(marked.iter().all(|e| e.kind == AskEventKind::Token));
    assert_eq!(marked.len() as u32, summary.unsupported_sentences);
    // The shipped scam check: JSON in its schema; the 1930 card exactly for scam/suspicious.
    let (tx, rx) = stream();
    app.ask_into(
        "is this a scam: your account is blocked, share the OTP at once".into(),
        options,
        &AnswerTask::new(),
        tx,
    )
    .unwrap();
    let events: Vec<AskEvent> = drain(&rx).into_iter().map(Result::unwrap).collect();
    let summary = events.last().unwrap().summary.clone().unwrap();
    assert_eq!(summary.task.as_deref(), Some("scam-check"));
    assert!(events.iter().all(|e| !e.unsupported));
    let cards: Vec<String> = events
        .iter()
        .filter_map(|e| e.card.as_ref().map(|c| c.id.clone()))
        .collect();
    if summary.finish.as_deref() == Some("end_of_text") {
        let value: serde_json::Value = serde_json::from_str(&summary.text).unwrap();
        let flagged = matches!(value["verdict"].as_str(), Some("scam" | "suspicious"));
        assert!(["scam", "suspicious", "safe"].contains(&value["verdict"].as_str().unwrap()));
        assert_eq!(
            cards,
            if flagged {
                vec!["helpline-1930".to_owned()]
            } else {
                vec![]
            }
        );
    } else {
        assert_eq!(summary.finish.as_deref(), Some("incomplete"), "{summary:?}");
        assert!(cards.is_empty());
    }
}

/// The summary of a finished answer in `conversation`.
fn converse(conversation: &Conversation, question: &str) -> AnswerSummary {
    let (tx, rx) = stream();
    conversation
        .ask_into(
            question.into(),
            AskOptions::default(),
            &AnswerTask::new(),
            tx,
        )
        .unwrap();
    let last = drain(&rx).pop().unwrap().unwrap();
    assert_eq!(last.kind, AskEventKind::Done);
    last.summary.unwrap()
}

#[test]
fn conversations_are_saved_and_restored_with_keys_from_dart_callbacks() {
    let Some(model) = vazhi_tests::model(vazhi_tests::SMOLLM2) else {
        eprintln!("SmolLM2 not fetched (scripts/setup): skipped");
        return;
    };
    let _turn = MODEL_FILES.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.model_path = Some(model.display().to_string());
    c.context_tokens = Some(1024);
    c.max_tokens = Some(24);
    let keys = Keys {
        length: 32,
        ..Keys::default()
    };
    let path = dir.path().join("chat.session").display().to_string();

    let app = VazhiApp::open(c.clone()).unwrap();
    let conversation = app.conversation();
    converse(&conversation, "explain kural 1");
    let saved = conversation.save(path.clone(), &keys.store()).unwrap();
    assert_eq!(saved.messages, 2);
    assert!(saved.state_tokens > 0, "{saved:?}");
    let continued = converse(&conversation, "explain kural 2");
    drop(conversation);
    drop(app);

    let app = VazhiApp::open(c).unwrap();
    let restored = app
        .restore_conversation(path.clone(), &keys.store())
        .unwrap();
    assert_eq!(restored.restored.kind, RestoreKind::Restored);
    assert_eq!(restored.restored.tokens, saved.state_tokens);
    let after = converse(&restored.conversation, "explain kural 2");
    assert_eq!(after.text, continued.text);

    // Cut short inside the state: the history comes back, the reason says why.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let fallback = app
        .restore_conversation(path.clone(), &keys.store())
        .unwrap();
    assert_eq!(fallback.restored.kind, RestoreKind::HistoryOnly);
    assert_eq!(fallback.restored.reason.as_deref(), Some("truncated"));
    assert_eq!(fallback.restored.messages, 2);
    // A key store that fails throws; one without the key gives an empty conversation.
    let locked = Keys {
        failing: true,
        ..keys.clone()
    };
    let err = app
        .restore_conversation(path.clone(), &locked.store())
        .unwrap_err();
    assert_eq!(err.code, VazhiErrorCode::KeyUnavailable, "{err:?}");
    let empty = app
        .restore_conversation(path, &Keys::default().store())
        .unwrap();
    assert_eq!(empty.restored.kind, RestoreKind::Empty);
    assert_eq!(empty.restored.reason.as_deref(), Some("key_unavailable"));
}
