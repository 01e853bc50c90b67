//! [`Vazhi`], the assistant object: questions streamed to a foreign [`AskListener`], each run on
//! its own thread and controlled by a [`TaskHandle`]; conversations; unloading the model.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use vazhi_core::app::{self, App, AppConfig, AskOverrides};
use vazhi_core::assistant::AssistantEvent;
use vazhi_core::engine::{CancelRelay, GenerateParams};
use vazhi_core::signing::{TrustPolicy, TrustedKeys};

use crate::error::{guard, panic_message, VazhiError};
use crate::records::{AnswerSummary, AskOptions, Card};
use crate::registry::Live;

/// How to build a [`Vazhi`].
#[derive(Debug, Clone, uniffi::Record)]
pub struct VazhiConfig {
    /// The app's data directory (models/, downloads/, knowledge.db, feedback.db, keys/).
    pub data_dir: String,
    /// A GGUF file to load (a developer's own file).
    #[uniffi(default = None)]
    pub model_path: Option<String>,
    /// An installed catalog model to load, only if it is the verified file (see
    /// [`crate::ModelManager`]). Ignored when `model_path` is set.
    #[uniffi(default = None)]
    pub model_id: Option<String>,
    /// The model catalog (JSON); default: the catalog built into Vazhi.
    #[uniffi(default = None)]
    pub catalog_json: Option<String>,
    /// `catalog_json`'s detached signature (a signature file's text; `docs/formats.md`).
    #[uniffi(default = None)]
    pub catalog_signature: Option<String>,
    /// Knowledge-pack directories to import at start (skipped when that version, or a newer
    /// one, is installed).
    #[uniffi(default = [])]
    pub pack_dirs: Vec<String>,
    /// Public keys (64 hex digits each) whose pack and catalog signatures are trusted, beyond
    /// what Vazhi ships.
    #[uniffi(default = [])]
    pub trusted_keys: Vec<String>,
    /// Accept packs and catalogs that are neither shipped nor signed by a trusted key.
    #[uniffi(default = false)]
    pub allow_unsigned: bool,
    /// Router rules (TOML); default: the rules built into Vazhi.
    #[uniffi(default = None)]
    pub rules_toml: Option<String>,
    /// llama.cpp threads; default: physical cores.
    #[uniffi(default = None)]
    pub threads: Option<u32>,
    /// Context size in tokens; default: chosen by the memory plan.
    #[uniffi(default = None)]
    pub context_tokens: Option<u32>,
    /// Memory budget for model + cache, MiB; the context shrinks to fit.
    #[uniffi(default = None)]
    pub memory_budget_mb: Option<u64>,
    /// Most tokens per answer (default 256).
    #[uniffi(default = None)]
    pub max_tokens: Option<u32>,
    /// System prompt for model answers.
    #[uniffi(default = None)]
    pub system_prompt: Option<String>,
    /// Memory pressure at or above which [`Vazhi::on_memory_pressure`] unloads the model.
    #[uniffi(default = None)]
    pub unload_at: Option<MemoryPressure>,
}

/// How hard the operating system is asking for memory back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum MemoryPressure {
    /// The app went to the background (Android `TRIM_MEMORY_UI_HIDDEN`).
    Background,
    /// Memory is getting low (Android `TRIM_MEMORY_RUNNING_LOW`).
    Moderate,
    /// Memory is critically low (Android `TRIM_MEMORY_RUNNING_CRITICAL`, iOS memory warning).
    Critical,
}

impl From<MemoryPressure> for app::MemoryPressure {
    fn from(level: MemoryPressure) -> Self {
        match level {
            MemoryPressure::Background => app::MemoryPressure::Background,
            MemoryPressure::Moderate => app::MemoryPressure::Moderate,
            MemoryPressure::Critical => app::MemoryPressure::Critical,
        }
    }
}

impl TryFrom<VazhiConfig> for AppConfig {
    type Error = VazhiError;

    fn try_from(c: VazhiConfig) -> Result<Self, VazhiError> {
        Ok(AppConfig {
            data_dir: c.data_dir.into(),
            model_path: c.model_path.map(Into::into),
            model_id: c.model_id,
            catalog_json: c.catalog_json,
            catalog_signature: c.catalog_signature,
            pack_dirs: c.pack_dirs.into_iter().map(Into::into).collect(),
            trust: trust_policy(&c.trusted_keys, c.allow_unsigned)?,
            rules_toml: c.rules_toml,
            threads: c.threads.map(|t| t as usize),
            context_tokens: c.context_tokens,
            memory_budget_mb: c.memory_budget_mb,
            max_tokens: c.max_tokens,
            system_prompt: c.system_prompt,
            unload_at: c.unload_at.map(Into::into).unwrap_or_default(),
        })
    }
}

/// The core trust policy from the bindings' two settings.
pub(crate) fn trust_policy(
    trusted_keys: &[String],
    allow_unsigned: bool,
) -> Result<TrustPolicy, VazhiError> {
    Ok(TrustPolicy {
        keys: TrustedKeys::from_hex(trusted_keys)?,
        allow_unsigned,
    })
}

/// Receives one answer as it is produced. Called from a Vazhi thread, never the caller's.
/// A method that throws stops the answer: the model is cancelled and nothing more is sent.
/// (The methods return `Result` so that an exception thrown by the app's code arrives as an
/// error, not as a panic.)
#[uniffi::export(foreign)]
pub trait AskListener: Send + Sync {
    /// The route chosen (`lookup`, `search`, `hybrid`, `generate`) and why.
    fn on_routed(&self, route: String, reason: String) -> Result<(), VazhiError>;
    /// A knowledge card, verbatim.
    fn on_card(&self, card: Card) -> Result<(), VazhiError>;
    /// Model text (whole characters).
    fn on_token(&self, text: String) -> Result<(), VazhiError>;
    /// The answer is complete; nothing follows.
    fn on_done(&self, summary: AnswerSummary) -> Result<(), VazhiError>;
    /// The answer failed; nothing follows.
    fn on_error(&self, error: VazhiError) -> Result<(), VazhiError>;
}

/// Controls one running answer. `cancel()` (or dropping the handle) stops the model within a
/// token; the listener then gets `on_done` with finish `cancelled`.
///
/// On the JVM a handle that is no longer referenced is dropped whenever the garbage collector
/// runs, which cancels its answer: keep the handle for as long as the answer should run.
#[derive(Debug, uniffi::Object)]
pub struct TaskHandle {
    cancel: CancelRelay,
    finished: Arc<Finished>,
    _live: Live,
}

/// A one-way "done" flag that can be waited for.
#[derive(Debug, Default)]
pub struct Finished {
    done: Mutex<bool>,
    changed: Condvar,
}

impl Finished {
    /// Marks done and wakes the waiters.
    pub fn set(&self) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.changed.notify_all();
    }

    /// Whether it is done.
    pub fn is_set(&self) -> bool {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until done or `timeout_ms` passed; whether it is done.
    pub fn wait(&self, timeout_ms: u64) -> bool {
        let guard = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, Duration::from_millis(timeout_ms), |done| !*done)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

#[uniffi::export]
impl TaskHandle {
    /// Stops the answer (idempotent).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Whether the listener has received its last event.
    pub fn is_finished(&self) -> bool {
        self.finished.is_set()
    }

    /// Blocks until the listener has received its last event, at most `timeout_ms`; whether it
    /// has. Do not call it from the main thread.
    pub fn wait(&self, timeout_ms: u64) -> bool {
        self.finished.wait(timeout_ms)
    }
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// The assistant: answers from the knowledge base, and from the model when one is loaded.
#[derive(Debug, uniffi::Object)]
pub struct Vazhi {
    app: App,
    _live: Live,
}

#[uniffi::export]
impl Vazhi {
    /// Opens the data directory, imports `pack_dirs`, and loads the model if the config names
    /// one. Blocking (loading a model takes a second or more): call it off the main thread.
    #[uniffi::constructor]
    pub fn new(config: VazhiConfig) -> Result<Arc<Self>, VazhiError> {
        guard(|| {
            Ok(Arc::new(Self {
                app: App::open(config.try_into()?)?,
                _live: Live::new(),
            }))
        })
    }

    /// Whether a model is loaded.
    pub fn has_model(&self) -> bool {
        self.app.has_model()
    }

    /// Asks one question. Returns at once; events go to `listener` from a Vazhi thread.
    pub fn ask(
        &self,
        text: String,
        options: AskOptions,
        listener: Arc<dyn AskListener>,
    ) -> Result<Arc<TaskHandle>, VazhiError> {
        app::check_question(&text)?;
        let assistant = self.app.assistant();
        let params = self.app.params(&options.into());
        spawn_answer(listener, move || assistant.ask_with(&text, &params))
    }

    /// Starts a multi-turn conversation (follow-ups see earlier turns; the model's cache is
    /// reused).
    pub fn conversation(&self) -> Arc<Conversation> {
        let assistant = self.app.assistant();
        Arc::new(Conversation {
            defaults: assistant.config().params.clone(),
            inner: Arc::new(assistant.conversation()),
            _live: Live::new(),
        })
    }

    /// Frees the model's memory now. Later questions are answered from the knowledge base
    /// (`model_unavailable`), and answers in progress end with `ModelUnloaded`. Idempotent.
    pub fn unload(&self) -> Result<(), VazhiError> {
        guard(|| Ok(self.app.unload()?))
    }

    /// Loads the configured model again after [`unload`](Self::unload) (no-op if loaded).
    /// Blocking.
    pub fn reload(&self) -> Result<(), VazhiError> {
        guard(|| Ok(self.app.reload()?))
    }

    /// The operating system asks for memory: at or above the config's `unload_at` (default
    /// `Critical`) the model is unloaded; below it nothing is freed (the knowledge base needs
    /// little). Returns whether the model was unloaded.
    pub fn on_memory_pressure(&self, level: MemoryPressure) -> Result<bool, VazhiError> {
        guard(|| Ok(self.app.on_memory_pressure(level.into())?))
    }
}

/// A multi-turn conversation.
#[derive(Debug, uniffi::Object)]
pub struct Conversation {
    inner: Arc<vazhi_core::assistant::Conversation>,
    /// The assistant's generation settings (the config's `max_tokens` included).
    defaults: GenerateParams,
    _live: Live,
}

#[uniffi::export]
impl Conversation {
    /// Asks within this conversation. Returns at once; events go to `listener`.
    pub fn ask(
        &self,
        text: String,
        options: AskOptions,
        listener: Arc<dyn AskListener>,
    ) -> Result<Arc<TaskHandle>, VazhiError> {
        app::check_question(&text)?;
        let conversation = Arc::clone(&self.inner);
        let params = AskOverrides::from(options).apply(self.defaults.clone());
        spawn_answer(listener, move || conversation.ask_with(&text, &params))
    }
}

/// Runs `start` (which returns at once with a streaming answer) on a new thread and forwards
/// its events to `listener`, stopping at the first listener method that throws.
fn spawn_answer(
    listener: Arc<dyn AskListener>,
    start: impl FnOnce() -> vazhi_core::assistant::AssistantAnswer + Send + 'static,
) -> Result<Arc<TaskHandle>, VazhiError> {
    let handle = Arc::new(TaskHandle {
        cancel: CancelRelay::new(),
        finished: Arc::new(Finished::default()),
        _live: Live::new(),
    });
    // The thread holds a weak reference: dropping the app's handle cancels the answer.
    let weak = Arc::downgrade(&handle);
    let finished = Arc::clone(&handle.finished);
    std::thread::Builder::new()
        .name("vazhi-answer".into())
        .spawn(move || {
            // A listener that throws returns an error (or, from Rust, panics): either stops it.
            let deliver = |call: &dyn Fn() -> Result<(), VazhiError>| {
                matches!(
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)),
                    Ok(Ok(()))
                )
            };
            let answer = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(start)) {
                Ok(answer) => answer,
                Err(panic) => {
                    let error = VazhiError::Internal {
                        detail: format!("internal error: {}", panic_message(&panic)),
                    };
                    deliver(&|| listener.on_error(error.clone()));
                    finished.set();
                    return;
                }
            };
            match weak.upgrade() {
                Some(h) => h.cancel.attach(answer.cancel_handle()),
                None => answer.cancel_handle().cancel(),
            }
            let cancel = answer.cancel_handle();
            for event in answer {
                let ok = match event {
                    AssistantEvent::Routed { route, reason } => {
                        deliver(&|| listener.on_routed(route.to_string(), reason.to_string()))
                    }
                    AssistantEvent::Card(card) => {
                        let card = Card::from(card);
                        deliver(&|| listener.on_card(card.clone()))
                    }
                    AssistantEvent::Token(text) => deliver(&|| listener.on_token(text.clone())),
                    AssistantEvent::Done(summary) => {
                        let summary = summary_record(summary);
                        deliver(&|| listener.on_done(summary.clone()))
                    }
                    AssistantEvent::Failed(e) => {
                        let error = VazhiError::from(e);
                        deliver(&|| listener.on_error(error.clone()))
                    }
                };
                if !ok {
                    tracing::warn!("an AskListener method threw; the answer was stopped");
                    cancel.cancel();
                    break;
                }
            }
            finished.set();
        })?;
    Ok(handle)
}

fn summary_record(s: vazhi_core::assistant::AnswerSummary) -> AnswerSummary {
    AnswerSummary {
        route: s.route.to_string(),
        cards: s.cards as u32,
        text: s.text,
        model_unavailable: s.model_unavailable,
        finish: s.finish.map(|f| f.as_str().to_owned()),
        generated_tokens: s.metrics.as_ref().map_or(0, |m| m.generated_tokens),
        time_to_first_token_ms: s.metrics.as_ref().map(|m| m.time_to_first_token_ms),
        tokens_per_second: s.metrics.as_ref().map(|m| m.generation_tokens_per_s),
    }
}
