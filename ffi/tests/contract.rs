//! The FFI contract, from the Rust side: listeners called from Vazhi threads (several answers at
//! once), a listener that throws, re-entrant calls from inside a callback, dropping a
//! `TaskHandle` cancels, downloads and feedback through the exported objects.

#![allow(clippy::unwrap_used)]

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vazhi_ffi::{
    AnswerSummary, AskListener, AskOptions, Card, DownloadListener, DownloadOutcome,
    DownloadProgress, FactPolicy, FeedbackInput, FeedbackStore, KeyProvider, KnowledgeBase,
    ModelManager, ModelManagerConfig, ModelState, Rating, RestoreKind, ToolCall, ToolSpec, Vazhi,
    VazhiConfig, VazhiError,
};

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Routed(String),
    Card(String),
    /// Text, and whether the fact guard marked it.
    Token(String, bool),
    Reasoning(String),
    ToolCall(ToolCall),
    Done(AnswerSummary),
    Error(String),
}

struct Collect {
    tx: Mutex<Sender<(Ev, std::thread::ThreadId)>>,
    panic_on_card: bool,
}

impl Collect {
    fn new(panic_on_card: bool) -> (Arc<Self>, Receiver<(Ev, std::thread::ThreadId)>) {
        let (tx, rx) = channel();
        (
            Arc::new(Self {
                tx: Mutex::new(tx),
                panic_on_card,
            }),
            rx,
        )
    }
    fn send(&self, e: Ev) {
        let _ = self
            .tx
            .lock()
            .unwrap()
            .send((e, std::thread::current().id()));
    }
}

type Res = Result<(), VazhiError>;

impl AskListener for Collect {
    fn on_routed(&self, route: String, _reason: String) -> Res {
        self.send(Ev::Routed(route));
        Ok(())
    }
    fn on_card(&self, card: Card) -> Res {
        if self.panic_on_card {
            // What a foreign exception looks like to Rust.
            return Err(VazhiError::Internal {
                detail: "listener threw".into(),
            });
        }
        self.send(Ev::Card(card.body));
        Ok(())
    }
    fn on_token(&self, text: String, unsupported: bool) -> Res {
        self.send(Ev::Token(text, unsupported));
        Ok(())
    }
    fn on_reasoning(&self, text: String) -> Res {
        self.send(Ev::Reasoning(text));
        Ok(())
    }
    fn on_tool_call(&self, call: ToolCall) -> Res {
        self.send(Ev::ToolCall(call));
        Ok(())
    }
    fn on_done(&self, summary: AnswerSummary) -> Res {
        self.send(Ev::Done(summary));
        Ok(())
    }
    fn on_error(&self, error: VazhiError) -> Res {
        self.send(Ev::Error(error.to_string()));
        Ok(())
    }
}

fn until_end(rx: &Receiver<(Ev, std::thread::ThreadId)>) -> Vec<(Ev, std::thread::ThreadId)> {
    let mut events = Vec::new();
    loop {
        let e = rx.recv_timeout(Duration::from_secs(60)).expect("an event");
        let end = matches!(e.0, Ev::Done(_) | Ev::Error(_));
        events.push(e);
        if end {
            return events;
        }
    }
}

fn packs_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/packs/thirukkural").to_owned()
}

fn config(dir: &std::path::Path) -> VazhiConfig {
    VazhiConfig {
        data_dir: dir.display().to_string(),
        model_path: None,
        model_id: None,
        catalog_json: None,
        catalog_signature: None,
        trusted_keys: vec![],
        allow_unsigned: false,
        pack_dirs: vec![packs_dir()],
        rules_toml: None,
        threads: Some(1),
        context_tokens: Some(512),
        memory_budget_mb: None,
        max_tokens: Some(48),
        system_prompt: None,
        unload_at: None,
        chat_template: None,
        fact_policy: None,
    }
}

/// Opens, waiting while another test's model load holds the process-wide load lock.
fn open_waiting(c: VazhiConfig) -> Arc<Vazhi> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match Vazhi::new(c.clone()) {
            Err(VazhiError::Busy { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other.unwrap(),
        }
    }
}

#[test]
fn answers_run_on_vazhi_threads_concurrently_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let vazhi = Vazhi::new(config(dir.path())).unwrap();
    let caller = std::thread::current().id();
    let runs: Vec<_> = (1..=8)
        .map(|n| {
            let (listener, rx) = Collect::new(false);
            let handle = vazhi
                .ask(format!("குறள் {n}"), AskOptions::default(), listener)
                .unwrap();
            (handle, rx)
        })
        .collect();
    let mut threads = std::collections::HashSet::new();
    for (handle, rx) in runs {
        let events = until_end(&rx);
        let kinds: Vec<&Ev> = events.iter().map(|(e, _)| e).collect();
        assert!(
            matches!(kinds[0], Ev::Routed(r) if r == "lookup"),
            "{kinds:?}"
        );
        assert!(matches!(kinds[1], Ev::Card(_)));
        assert!(matches!(kinds[2], Ev::Done(s) if !s.model_unavailable && s.cards == 1));
        for (_, t) in &events {
            assert_ne!(*t, caller, "listeners are called from Vazhi threads");
            threads.insert(*t);
        }
        assert!(handle.wait(10_000));
    }
    assert!(threads.len() > 1, "each answer has its own thread");
    assert!(matches!(
        vazhi.ask("  ".into(), AskOptions::default(), Collect::new(false).0),
        Err(VazhiError::InvalidInput { .. })
    ));
}

#[test]
fn a_listener_that_throws_stops_its_answer_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let vazhi = Vazhi::new(config(dir.path())).unwrap();
    let (listener, rx) = Collect::new(true);
    let handle = vazhi
        .ask("குறள் 1".into(), AskOptions::default(), listener)
        .unwrap();
    let started = Instant::now();
    assert!(handle.wait(10_000), "the task ends");
    assert!(started.elapsed() < Duration::from_secs(10));
    let events: Vec<Ev> = rx.try_iter().map(|(e, _)| e).collect();
    assert_eq!(
        events,
        [Ev::Routed("lookup".into())],
        "nothing after the throw"
    );
    // The library is fine: the next answer works.
    let (listener, rx) = Collect::new(false);
    let _h = vazhi
        .ask("குறள் 2".into(), AskOptions::default(), listener)
        .unwrap();
    assert!(matches!(until_end(&rx).last().unwrap().0, Ev::Done(_)));
}

/// A listener that asks again from inside `on_done`, and looks a card up from `on_card`.
struct Reentrant {
    vazhi: Arc<Vazhi>,
    kb: Arc<KnowledgeBase>,
    inner: Mutex<Option<Arc<vazhi_ffi::TaskHandle>>>,
    tx: Mutex<Sender<String>>,
}

impl AskListener for Reentrant {
    fn on_routed(&self, _: String, _: String) -> Res {
        Ok(())
    }
    fn on_card(&self, _: Card) -> Res {
        let card = self.kb.lookup("thirukkural".into(), "kural 2".into())?;
        let _ = self
            .tx
            .lock()
            .unwrap()
            .send(format!("lookup:{}", card.unwrap().id));
        Ok(())
    }
    fn on_token(&self, _: String, _: bool) -> Res {
        Ok(())
    }
    fn on_reasoning(&self, _: String) -> Res {
        Ok(())
    }
    fn on_tool_call(&self, _: ToolCall) -> Res {
        Ok(())
    }
    fn on_done(&self, _: AnswerSummary) -> Res {
        let (listener, rx) = Collect::new(false);
        let handle = self
            .vazhi
            .ask("குறள் 3".into(), AskOptions::default(), listener)
            .unwrap();
        *self.inner.lock().unwrap() = Some(handle);
        let tx = self.tx.lock().unwrap().clone();
        std::thread::spawn(move || {
            let end = until_end(&rx);
            let _ = tx.send(format!("nested:{:?}", end.last().map(|e| &e.0)));
        });
        Ok(())
    }
    fn on_error(&self, _: VazhiError) -> Res {
        Ok(())
    }
}

#[test]
fn callbacks_may_call_back_into_vazhi() {
    let dir = tempfile::tempdir().unwrap();
    let vazhi = Vazhi::new(config(dir.path())).unwrap();
    let kb = KnowledgeBase::open(dir.path().display().to_string()).unwrap();
    let (tx, rx) = channel();
    let listener = Arc::new(Reentrant {
        vazhi: Arc::clone(&vazhi),
        kb,
        inner: Mutex::new(None),
        tx: Mutex::new(tx),
    });
    let _h = vazhi
        .ask("குறள் 1".into(), AskOptions::default(), listener)
        .unwrap();
    let first = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let second = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(first, "lookup:kural-2");
    assert!(second.starts_with("nested:Some(Done("), "{second}");
}

#[test]
fn dropping_the_task_handle_cancels_the_model() {
    let Some(model) = vazhi_tests::model(vazhi_tests::SMOLLM2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.model_path = Some(model.display().to_string());
    c.max_tokens = Some(400);
    let vazhi = open_waiting(c);
    assert!(vazhi.has_model());
    let (listener, rx) = Collect::new(false);
    let handle = vazhi
        .ask(
            "Write a long story about a river.".into(),
            AskOptions {
                temperature: Some(0.0),
                ..AskOptions::default()
            },
            listener,
        )
        .unwrap();
    // Wait for the model to start speaking, then drop the only handle.
    loop {
        let (e, _) = rx.recv_timeout(Duration::from_secs(60)).unwrap();
        if matches!(e, Ev::Token(..)) {
            break;
        }
    }
    drop(handle);
    let events = until_end(&rx);
    let Ev::Done(summary) = &events.last().unwrap().0 else {
        panic!("{events:?}")
    };
    assert_eq!(summary.finish.as_deref(), Some("cancelled"));
    assert!(summary.generated_tokens < 400);
    // Unloading frees the model; later answers come from the data.
    vazhi.unload().unwrap();
    assert!(!vazhi.has_model());
    let (listener, rx) = Collect::new(false);
    let _h = vazhi
        .ask("explain kural 1".into(), AskOptions::default(), listener)
        .unwrap();
    let end = until_end(&rx);
    let Ev::Done(s) = &end.last().unwrap().0 else {
        panic!("{end:?}")
    };
    assert!(s.model_unavailable);
    drop(vazhi);
    // Conversations use the config's max_tokens too.
    let mut c = config(dir.path());
    c.model_path = Some(model.display().to_string());
    c.max_tokens = Some(5);
    let vazhi = open_waiting(c);
    let (listener, rx) = Collect::new(false);
    let _h = vazhi
        .conversation()
        .ask("Tell me a story.".into(), AskOptions::default(), listener)
        .unwrap();
    let end = until_end(&rx);
    let Ev::Done(s) = &end.last().unwrap().0 else {
        panic!("{end:?}")
    };
    assert!(s.generated_tokens <= 5, "{s:?}");
}

#[test]
fn constrained_answers_follow_their_schema_and_bad_ones_are_refused() {
    let Some(model) = vazhi_tests::model(vazhi_tests::SMOLLM2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.model_path = Some(model.display().to_string());
    c.context_tokens = Some(1024);
    c.max_tokens = Some(120);
    let vazhi = open_waiting(c);
    let schema = r#"{"type":"object","properties":{"kural":{"type":"integer","minimum":1,
        "maximum":1330},"theme":{"enum":["virtue","wealth","love"]}},
        "required":["kural","theme"],"additionalProperties":false}"#;
    let options = AskOptions {
        temperature: Some(0.0),
        json_schema: Some(schema.into()),
        ..AskOptions::default()
    };
    // An exact question: with a schema the model answers, grounded on the record.
    let (listener, rx) = Collect::new(false);
    let _h = vazhi
        .ask("குறள் 1".into(), options.clone(), listener)
        .unwrap();
    let end = until_end(&rx);
    let Ev::Done(s) = &end.last().unwrap().0 else {
        panic!("{end:?}")
    };
    assert_eq!(s.route, "hybrid");
    assert_eq!(s.finish.as_deref(), Some("end_of_text"), "{s:?}");
    let value: serde_json::Value = serde_json::from_str(&s.text).unwrap();
    assert!(
        ["virtue", "wealth", "love"].contains(&value["theme"].as_str().unwrap()),
        "{value}"
    );
    // Cut short: `incomplete`, not a success.
    let (listener, rx) = Collect::new(false);
    let short = AskOptions {
        max_tokens: Some(3),
        ..options.clone()
    };
    let _h = vazhi.ask("Which kural?".into(), short, listener).unwrap();
    let end = until_end(&rx);
    let Ev::Done(s) = &end.last().unwrap().0 else {
        panic!("{end:?}")
    };
    assert_eq!(s.finish.as_deref(), Some("incomplete"));
    // Without a model the knowledge base answers, and says the model was wanted.
    vazhi.unload().unwrap();
    let (listener, rx) = Collect::new(false);
    let _h = vazhi
        .ask("குறள் 1".into(), options.clone(), listener)
        .unwrap();
    let end = until_end(&rx);
    let Ev::Done(s) = &end.last().unwrap().0 else {
        panic!("{end:?}")
    };
    assert!(s.model_unavailable && s.finish.is_none(), "{s:?}");
    while let Err(VazhiError::Busy { .. }) = vazhi.reload() {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(vazhi.has_model());
    // Unusable constraints fail the call itself, typed, in the app and in a conversation.
    for bad in [
        AskOptions {
            json_schema: Some("{\"type\": ".into()),
            ..AskOptions::default()
        },
        AskOptions {
            json_schema: Some(schema.into()),
            grammar: Some("root ::= \"x\"".into()),
            ..AskOptions::default()
        },
    ] {
        let (listener, _rx) = Collect::new(false);
        let e = vazhi.ask("Hi".into(), bad.clone(), listener).unwrap_err();
        assert!(matches!(e, VazhiError::InvalidInput { .. }), "{e:?}");
        let (listener, _rx) = Collect::new(false);
        let e = vazhi
            .conversation()
            .ask("Hi".into(), bad, listener)
            .unwrap_err();
        assert!(matches!(e, VazhiError::InvalidInput { .. }), "{e:?}");
    }
}

#[test]
fn bad_configs_map_to_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.model_path = Some("/nonexistent/model.gguf".into());
    assert!(matches!(
        Vazhi::new(c),
        Err(VazhiError::ModelNotFound { .. })
    ));
    let garbage = dir.path().join("garbage.gguf");
    std::fs::write(&garbage, b"not a model at all").unwrap();
    let mut c = config(dir.path());
    c.model_path = Some(garbage.display().to_string());
    assert!(matches!(
        Vazhi::new(c),
        Err(VazhiError::ModelRefused { .. })
    ));
    let mut c = config(dir.path());
    c.model_id = Some("smollm2-135m-instruct-q4_1".into());
    assert!(matches!(
        Vazhi::new(c),
        Err(VazhiError::ModelNotFound { .. })
    ));
    let mut c = config(dir.path());
    c.rules_toml = Some("this is not = [toml".into());
    assert!(matches!(
        Vazhi::new(c),
        Err(VazhiError::InvalidInput { .. })
    ));
}

struct Progress {
    tx: Mutex<Sender<Result<DownloadOutcome, String>>>,
    events: Mutex<Vec<DownloadProgress>>,
}

impl DownloadListener for Progress {
    fn on_progress(&self, progress: DownloadProgress) -> Res {
        self.events.lock().unwrap().push(progress);
        Ok(())
    }
    fn on_finished(&self, outcome: DownloadOutcome) -> Res {
        let _ = self.tx.lock().unwrap().send(Ok(outcome));
        Ok(())
    }
    fn on_error(&self, error: VazhiError) -> Res {
        let _ = self.tx.lock().unwrap().send(Err(error.to_string()));
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn downloads_report_progress_and_install_through_the_manager() {
    use sha2::Digest;
    let server = vazhi_tests::http_server::TestServer::start();
    let data: Vec<u8> = (0..3 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    server.serve_bytes("/m.gguf", data.clone());
    let catalog = format!(
        r#"{{"format":1,"models":[{{"id":"m","urls":["{}"],"sha256":"{}","size":{},
        "quant":"Q4_K_M","arch":"llama","context_length":2048,"min_ram_mb":64,"licence":"MIT"}}]}}"#,
        server.url("/m.gguf"),
        hex(&sha2::Sha256::digest(&data)),
        data.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let manager = ModelManager::new(ModelManagerConfig {
        data_dir: dir.path().display().to_string(),
        catalog_json: Some(catalog),
        catalog_signature: None,
        trusted_keys: vec![],
        allow_unsigned: true,
        extra_hosts: vec![],
        offline: false,
        ram_mb: None,
        free_storage_bytes: None,
        read_timeout_seconds: Some(2),
        allow_loopback_http: true,
    })
    .unwrap();
    assert_eq!(manager.catalog().len(), 1);
    let (tx, rx) = channel();
    let listener = Arc::new(Progress {
        tx: Mutex::new(tx),
        events: Mutex::new(Vec::new()),
    });
    let task = manager.download("m".into(), listener.clone()).unwrap();
    let outcome = rx.recv_timeout(Duration::from_secs(60)).unwrap().unwrap();
    let DownloadOutcome::Installed { model } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(task.wait(10_000));
    assert_eq!(std::fs::read(&model.path).unwrap(), data);
    assert!(!listener.events.lock().unwrap().is_empty());
    assert!(matches!(
        manager.status("m".into()).unwrap(),
        ModelState::Installed { .. }
    ));
    // Offline: no socket.
    manager.set_offline(true).unwrap();
    manager.remove("m".into()).unwrap();
    server.reset_counters();
    let (tx, rx) = channel();
    let listener = Arc::new(Progress {
        tx: Mutex::new(tx),
        events: Mutex::new(Vec::new()),
    });
    let _task = manager.download("m".into(), listener).unwrap();
    let err = rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap_err();
    assert!(err.contains("offline"), "{err}");
    assert_eq!(server.connections(), 0);
}

#[derive(Default)]
struct MemoryKeys {
    keys: Mutex<std::collections::HashMap<String, Vec<u8>>>,
    short: bool,
}

impl KeyProvider for MemoryKeys {
    fn get_key(&self, key_id: String) -> Result<Option<Vec<u8>>, VazhiError> {
        Ok(self.keys.lock().unwrap().get(&key_id).cloned())
    }
    fn create_key(&self, key_id: String) -> Result<Vec<u8>, VazhiError> {
        let key: Vec<u8> = (0..if self.short { 16 } else { 32 })
            .map(|i| (i * 37 + key_id.len()) as u8)
            .collect();
        self.keys.lock().unwrap().insert(key_id, key.clone());
        Ok(key)
    }
    fn delete_key(&self, key_id: String) -> Result<(), VazhiError> {
        self.keys.lock().unwrap().remove(&key_id);
        Ok(())
    }
}

#[test]
fn feedback_round_trips_with_a_foreign_key_provider() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(MemoryKeys::default());
    let store = FeedbackStore::open(dir.path().display().to_string(), keys.clone()).unwrap();
    let id = store
        .record(FeedbackInput {
            question: "குறள் 1 என்ன?".into(),
            route: "lookup".into(),
            answer: "அகர முதல…".into(),
            card_ids: vec!["kural-1".into()],
            rating: Rating::Down,
            correction: Some("better".into()),
            model_id: None,
            model_sha256: None,
            pack_versions: [("thirukkural".to_string(), "1.0.0".to_string())].into(),
            created_at_ms: None,
        })
        .unwrap();
    let listing = store.list(None, None, None).unwrap();
    assert_eq!(listing.records.len(), 1);
    assert_eq!(listing.records[0].record_id, id);
    assert_eq!(listing.records[0].question, "குறள் 1 என்ன?");
    drop(store);
    keys.keys.lock().unwrap().clear();
    let err = FeedbackStore::open(dir.path().display().to_string(), keys.clone()).unwrap_err();
    assert!(matches!(err, VazhiError::KeyUnavailable { .. }), "{err}");
    let fresh = FeedbackStore::open_fresh(dir.path().display().to_string(), keys).unwrap();
    assert_eq!(fresh.count().unwrap(), 0);
    // A provider that hands back a 16-byte key is refused, not used.
    let other = tempfile::tempdir().unwrap();
    let short = Arc::new(MemoryKeys {
        short: true,
        ..MemoryKeys::default()
    });
    let err = FeedbackStore::open(other.path().display().to_string(), short).unwrap_err();
    assert!(err.to_string().contains("32 bytes"), "{err}");
}

#[test]
fn going_offline_pauses_a_running_download_and_going_online_resumes_it() {
    use sha2::Digest;
    use vazhi_tests::http_server::{Behavior, TestServer};
    let server = TestServer::start();
    let data: Vec<u8> = (0..3 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    server.serve_bytes("/m.gguf", data.clone());
    // The first response sends 1 MiB, then nothing (the connection stays open): the download is
    // in progress, waiting on the socket, when the app goes offline.
    let stall_at = 1u64 << 20;
    server.set_behavior(
        "/m.gguf",
        Behavior {
            stall_after: Some(stall_at),
            times: Some(1),
            ..Behavior::default()
        },
    );
    let catalog = format!(
        r#"{{"format":1,"models":[{{"id":"m","urls":["{}"],"sha256":"{}","size":{},
        "quant":"Q4_K_M","arch":"llama","context_length":2048,"min_ram_mb":64,"licence":"MIT"}}]}}"#,
        server.url("/m.gguf"),
        hex(&sha2::Sha256::digest(&data)),
        data.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let manager = ModelManager::new(ModelManagerConfig {
        data_dir: dir.path().display().to_string(),
        catalog_json: Some(catalog),
        catalog_signature: None,
        trusted_keys: vec![],
        allow_unsigned: true,
        extra_hosts: vec![],
        offline: false,
        ram_mb: None,
        free_storage_bytes: None,
        // Far longer than the test waits: only going offline can end the stalled response.
        read_timeout_seconds: Some(60),
        allow_loopback_http: true,
    })
    .unwrap();
    let start = |manager: &ModelManager| {
        let (tx, rx) = channel();
        let listener = Arc::new(Progress {
            tx: Mutex::new(tx),
            events: Mutex::new(Vec::new()),
        });
        (manager.download("m".into(), listener).unwrap(), rx)
    };
    let (task, rx) = start(&manager);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(manager.status("m".into()).unwrap(), ModelState::Partial { bytes } if bytes == stall_at)
    {
        assert!(
            Instant::now() < deadline,
            "the download never reached the stall"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!task.is_finished());

    let offline_at = Instant::now();
    manager.set_offline(true).unwrap();
    let outcome = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("going offline stops a running download at once")
        .unwrap();
    assert!(offline_at.elapsed() < Duration::from_secs(5));
    assert_eq!(outcome, DownloadOutcome::Paused { bytes: stall_at });
    assert!(task.wait(10_000));
    assert!(matches!(
        manager.status("m".into()).unwrap(),
        ModelState::Partial { bytes } if bytes == stall_at
    ));
    // While offline, a new download opens no socket.
    server.reset_counters();
    let (_offline_task, rx) = start(&manager);
    let err = rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap_err();
    assert!(err.contains("offline"), "{err}");
    assert_eq!(server.connections(), 0);

    // Online again: the download resumes from the kept part and installs the verified file.
    manager.set_offline(false).unwrap();
    let (task, rx) = start(&manager);
    let outcome = rx.recv_timeout(Duration::from_secs(60)).unwrap().unwrap();
    let DownloadOutcome::Installed { model } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(task.wait(10_000));
    assert_eq!(std::fs::read(&model.path).unwrap(), data);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].range.as_deref(), Some("bytes=1048576-"));
    assert!(matches!(
        manager.status("m".into()).unwrap(),
        ModelState::Installed { .. }
    ));
}

#[test]
fn tool_calls_reach_the_listener_and_results_come_back_through_the_handle() {
    let Some(model) = vazhi_tests::model(vazhi_tests::SMOLLM2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.model_path = Some(model.display().to_string());
    c.context_tokens = Some(2048);
    c.max_tokens = Some(80);
    c.chat_template = Some(
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../core/tests/fixtures/tool_templates/hermes.jinja"
        ))
        .unwrap(),
    );
    let vazhi = open_waiting(c);
    let weather = vec![ToolSpec {
        name: "get_weather".into(),
        description: "Get the current weather in a city.".into(),
        parameters: r#"{"type":"object","properties":{"city":{"type":"string","maxLength":40}},"required":["city"]}"#.into(),
    }];
    let options = AskOptions {
        temperature: Some(0.0),
        tools: weather.clone(),
        require_tool_call: true,
        ..AskOptions::default()
    };
    let (listener, rx) = Collect::new(false);
    let handle = vazhi
        .ask("Is it raining in Madurai?".into(), options, listener)
        .unwrap();
    let mut calls = Vec::new();
    let end = loop {
        let (e, _) = rx.recv_timeout(Duration::from_secs(60)).expect("an event");
        match e {
            Ev::ToolCall(call) => {
                assert!(!call.builtin);
                let args: serde_json::Value = serde_json::from_str(&call.arguments_json).unwrap();
                assert!(args["city"].is_string(), "{call:?}");
                handle
                    .submit_tool_result(call.id.clone(), r#"{"rain_mm": 12}"#.into())
                    .unwrap();
                calls.push(call);
            }
            Ev::Done(_) | Ev::Error(_) => break e,
            _ => {}
        }
    };
    let Ev::Done(summary) = end else {
        panic!("{end:?}")
    };
    assert!(!calls.is_empty());
    assert_eq!(summary.tool_calls as usize, calls.len());
    assert_ne!(summary.finish.as_deref(), Some("tool_calls"), "{summary:?}");
    // A result for a call that is not waiting: InvalidInput.
    assert!(matches!(
        handle.submit_tool_result("call_99".into(), "x".into()),
        Err(VazhiError::InvalidInput { .. })
    ));
    // The model's own template renders no tools: a typed refusal.
    let mut c = config(dir.path());
    c.model_path = Some(model.display().to_string());
    let plain = open_waiting(c);
    let (listener, rx) = Collect::new(false);
    let _h = plain
        .ask(
            "Is it raining?".into(),
            AskOptions {
                tools: weather.clone(),
                ..AskOptions::default()
            },
            listener,
        )
        .unwrap();
    let end = until_end(&rx);
    assert!(
        matches!(&end.last().unwrap().0, Ev::Error(e) if e.contains("tools")),
        "{end:?}"
    );
}

#[test]
fn the_fact_guard_and_task_presets_cross_the_boundary() {
    let Some(model) = vazhi_tests::model(vazhi_tests::SMOLLM2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.model_path = Some(model.display().to_string());
    c.context_tokens = Some(1024);
    c.max_tokens = Some(96);
    c.pack_dirs
        .push(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/packs/helplines").into());
    // The app's own rules: its task, whose schema can only say "scam", and the shipped ones.
    c.rules_toml = Some(format!(
        "{}\n{}",
        vazhi_core::router::DEFAULT_RULES,
        r#"
[task.forced]
system_prompt = "Judge the message. Answer only with JSON."
schema = '{"type": "object", "properties": {"verdict": {"const": "scam"}}, "required": ["verdict"]}'
max_tokens = 24
temperature = 0.0

[[task.forced.attach]]
field = "verdict"
values = ["scam"]
pack = "helplines"
key = "cyber crime helpline"

[[rule]]
name = "forced"
pattern = '^forced:\s*\S.*$'
route = "generate"
task = "forced"
"#
    ));
    c.fact_policy = Some(FactPolicy::Mark);
    let vazhi = open_waiting(c.clone());
    let (listener, rx) = Collect::new(false);
    let _h = vazhi
        .ask(
            "forced: share your OTP now".into(),
            AskOptions::default(),
            listener,
        )
        .unwrap();
    let end: Vec<Ev> = until_end(&rx).into_iter().map(|(e, _)| e).collect();
    let Some(Ev::Done(s)) = end.last() else {
        panic!("{end:?}")
    };
    assert_eq!(s.task.as_deref(), Some("forced"));
    let value: serde_json::Value = serde_json::from_str(&s.text).unwrap();
    assert_eq!(value["verdict"], "scam");
    // The card comes after the answer's text, attached by the code.
    let card_at = end.iter().position(|e| matches!(e, Ev::Card(_))).unwrap();
    assert!(end[..card_at].iter().any(|e| matches!(e, Ev::Token(..))));
    assert!(matches!(&end[card_at], Ev::Card(body) if body.contains("1930")));
    assert_eq!(s.cards, 1);

    // A sentence with a name, year or number no card holds is marked, and counted: asked until
    // the small model invents one (greedy; the first question does on the shipped build).
    let marked_answer = [
        "explain kural 7 and who wrote it",
        "explain kural 1",
        "Say hello.",
        "What is the capital of France?",
    ]
    .into_iter()
    .find_map(|question| {
        let (listener, rx) = Collect::new(false);
        let _h = vazhi
            .ask(question.into(), AskOptions::default(), listener)
            .unwrap();
        let end: Vec<Ev> = until_end(&rx).into_iter().map(|(e, _)| e).collect();
        let Some(Ev::Done(s)) = end.last() else {
            panic!("{end:?}")
        };
        (s.unsupported_sentences > 0).then(|| (end.clone(), s.clone()))
    });
    let (end, s) = marked_answer.expect("no answer stated anything unsupported");
    let marked = end
        .iter()
        .filter(|e| matches!(e, Ev::Token(_, true)))
        .count();
    assert_eq!(marked as u32, s.unsupported_sentences);
    let text: String = end
        .iter()
        .filter_map(|e| match e {
            Ev::Token(t, _) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, s.text);
}

/// The text of a finished answer in `conversation`.
fn converse(conversation: &vazhi_ffi::Conversation, question: &str) -> AnswerSummary {
    let (listener, rx) = Collect::new(false);
    let _h = conversation
        .ask(question.into(), AskOptions::default(), listener)
        .unwrap();
    let end = until_end(&rx);
    let Ev::Done(summary) = &end.last().unwrap().0 else {
        panic!("{end:?}")
    };
    summary.clone()
}

#[test]
fn conversations_are_saved_and_restored_across_instances() {
    let Some(model) = vazhi_tests::model(vazhi_tests::SMOLLM2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.model_path = Some(model.display().to_string());
    c.context_tokens = Some(1024);
    c.max_tokens = Some(24);
    let keys = Arc::new(MemoryKeys::default());
    let path = dir.path().join("chat.session").display().to_string();

    let first = open_waiting(c.clone());
    let conversation = first.conversation();
    converse(&conversation, "explain kural 1");
    let saved = conversation.save(path.clone(), keys.clone()).unwrap();
    assert_eq!(saved.messages, 2);
    assert!(saved.state_tokens > 0, "{saved:?}");
    assert!(keys.keys.lock().unwrap().contains_key("vazhi-sessions"));
    let continued = converse(&conversation, "explain kural 2");
    drop(conversation);
    drop(first);

    let second = open_waiting(c.clone());
    let restored = second
        .restore_conversation(path.clone(), keys.clone())
        .unwrap();
    assert_eq!(restored.restored.kind, RestoreKind::Restored);
    assert_eq!(restored.restored.messages, 2);
    assert_eq!(restored.restored.tokens, saved.state_tokens);
    assert_eq!(restored.restored.reason, None);
    let after = converse(&restored.conversation, "explain kural 2");
    assert_eq!(after.text, continued.text);

    // An altered file: the history comes back, the reason says why the state did not.
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x80;
    std::fs::write(&path, &bytes).unwrap();
    let fallback = second
        .restore_conversation(path.clone(), keys.clone())
        .unwrap();
    assert_eq!(fallback.restored.kind, RestoreKind::HistoryOnly);
    assert_eq!(fallback.restored.reason.as_deref(), Some("tampered"));
    assert!(!converse(&fallback.conversation, "explain kural 2")
        .text
        .is_empty());
    // The key gone: nothing to read.
    let empty = second
        .restore_conversation(path.clone(), Arc::new(MemoryKeys::default()))
        .unwrap();
    assert_eq!(empty.restored.kind, RestoreKind::Empty);
    assert_eq!(empty.restored.reason.as_deref(), Some("key_unavailable"));
    // A missing file is an error.
    let err = second
        .restore_conversation(dir.path().join("none").display().to_string(), keys.clone())
        .unwrap_err();
    assert!(matches!(err, VazhiError::Io { .. }), "{err}");

    // Without a model a conversation has nothing to save.
    second.unload().unwrap();
    let err = second.conversation().save(path, keys).unwrap_err();
    assert!(matches!(err, VazhiError::ModelUnloaded { .. }), "{err}");
}
