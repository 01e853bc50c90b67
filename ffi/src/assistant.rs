//! [`Vazhi`], the assistant object: questions streamed to a foreign [`AskListener`] (core runs
//! each answer on a thread of its own, [`App::ask_into`]; this module only adapts the events) and
//! controlled by a [`TaskHandle`]; conversations; unloading the model.

use std::sync::Arc;
use std::time::Duration;

use vazhi_core::app::{self, App, AppConfig};
use vazhi_core::assistant::{AnswerHandle, AssistantEvent};
use vazhi_core::signing::{TrustPolicy, TrustedKeys};

use crate::error::{guard, VazhiError};
use crate::feedback::{core_keys, KeyProvider};
use crate::records::{AnswerSummary, AskOptions, Card, RestoreReport, SavedSession, ToolCall};
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
    /// A chat template (Jinja source) used instead of the model's own: e.g. one that renders
    /// tools for a model whose template does not.
    #[uniffi(default = None)]
    pub chat_template: Option<String>,
    /// What the fact guard does with a sentence whose facts (numbers, phone numbers, years,
    /// quotes, names) are in neither the question nor the cards; default: mark it.
    #[uniffi(default = None)]
    pub fact_policy: Option<FactPolicy>,
}

/// What the fact guard does with an unsupported sentence of the model's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FactPolicy {
    /// No check: tokens stream one by one, `unsupported` is never set.
    Off,
    /// Send it with `unsupported` set (the default).
    Mark,
    /// Leave it out of the answer and the conversation.
    Drop,
    /// End the answer before it (finish `unsupported`).
    Stop,
}

impl From<FactPolicy> for vazhi_core::fact_guard::FactPolicy {
    fn from(p: FactPolicy) -> Self {
        use vazhi_core::fact_guard::FactPolicy as Core;
        match p {
            FactPolicy::Off => Core::Off,
            FactPolicy::Mark => Core::Mark,
            FactPolicy::Drop => Core::Drop,
            FactPolicy::Stop => Core::Stop,
        }
    }
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
            chat_template: c.chat_template,
            fact_policy: c.fact_policy.map(Into::into).unwrap_or_default(),
            max_model_bytes: None,
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
    /// Model text (whole characters): a token's worth, or with the fact guard on, a whole
    /// sentence; `unsupported`: the guard found a fact in it that neither the question nor
    /// the cards hold.
    fn on_token(&self, text: String, unsupported: bool) -> Result<(), VazhiError>;
    /// The model's reasoning (only with `AskOptions.show_reasoning`).
    fn on_reasoning(&self, text: String) -> Result<(), VazhiError>;
    /// The model called a tool. For an app's tool the answer waits for
    /// `TaskHandle.submit_tool_result(call.id, result)` (from any thread); a built-in call is
    /// run by Vazhi and takes none.
    fn on_tool_call(&self, call: ToolCall) -> Result<(), VazhiError>;
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
    answer: AnswerHandle,
    _live: Live,
}

#[uniffi::export]
impl TaskHandle {
    /// Stops the answer (idempotent).
    pub fn cancel(&self) {
        self.answer.cancel();
    }

    /// Whether the listener has received its last event.
    pub fn is_finished(&self) -> bool {
        self.answer.is_finished()
    }

    /// Gives the result of the app's tool call `id` (from `AskListener.on_tool_call`); the
    /// model goes on once every call of the round has one. `InvalidInput` when no call with
    /// this id is waiting.
    pub fn submit_tool_result(&self, id: String, result: String) -> Result<(), VazhiError> {
        Ok(self.answer.submit_tool_result(&id, result)?)
    }

    /// Blocks until the listener has received its last event, at most `timeout_ms`; whether it
    /// has. Do not call it from the main thread.
    pub fn wait(&self, timeout_ms: u64) -> bool {
        self.answer.wait(Duration::from_millis(timeout_ms))
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
        guard(|| {
            let answer = self
                .app
                .ask_into(&text, &options, listener_sink(listener))?;
            Ok(task_handle(answer))
        })
    }

    /// Starts a multi-turn conversation (follow-ups see earlier turns; the model's cache is
    /// reused).
    pub fn conversation(&self) -> Arc<Conversation> {
        Arc::new(Conversation {
            inner: self.app.assistant().conversation(),
            _live: Live::new(),
        })
    }

    /// Restores a conversation saved with [`Conversation::save`]: its history, and its KV
    /// state when the model, llama.cpp, context and template are the ones it was saved with
    /// (then the next answer does not re-read the history). A damaged, altered, cut or foreign
    /// file falls back to the history, or to an empty conversation, and `restored.reason`
    /// says why. Errors: the file cannot be opened (missing included), or the key provider
    /// failed. Blocking: call it off the main thread.
    pub fn restore_conversation(
        &self,
        path: String,
        keys: Arc<dyn KeyProvider>,
    ) -> Result<RestoredConversation, VazhiError> {
        guard(|| {
            let restored = self
                .app
                .restore_conversation(&path, core_keys(keys).as_ref())?;
            Ok(RestoredConversation {
                restored: RestoreReport::from(&restored.outcome),
                conversation: Arc::new(Conversation {
                    inner: restored.conversation,
                    _live: Live::new(),
                }),
            })
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
    inner: vazhi_core::assistant::Conversation,
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
        guard(|| {
            let params = options.prepare(&text, self.inner.config().params.clone())?;
            let answer = self
                .inner
                .ask_into(&text, &params, listener_sink(listener))?;
            Ok(task_handle(answer))
        })
    }

    /// Saves the conversation to `path` (atomically, readable by the app only, encrypted with
    /// the key `vazhi-sessions` of `keys`, created on first use): its history and, when the
    /// model's cache still holds it, the KV state. Refused while an answer runs (`Busy`) and
    /// without a model (`ModelUnloaded`). Blocking: call it off the main thread.
    pub fn save(
        &self,
        path: String,
        keys: Arc<dyn KeyProvider>,
    ) -> Result<SavedSession, VazhiError> {
        guard(|| Ok(self.inner.save(&path, core_keys(keys).as_ref())?.into()))
    }
}

/// A conversation read back from a session file.
#[derive(Debug, uniffi::Record)]
pub struct RestoredConversation {
    /// The conversation (empty when nothing could be read).
    pub conversation: Arc<Conversation>,
    /// What came back, and why not the rest.
    pub restored: RestoreReport,
}

fn task_handle(answer: AnswerHandle) -> Arc<TaskHandle> {
    Arc::new(TaskHandle {
        answer,
        _live: Live::new(),
    })
}

/// The core sink that hands each event to `listener`: a listener method that throws (an error
/// returned, or a panic from Rust code) refuses the event, and core stops the answer.
fn listener_sink(listener: Arc<dyn AskListener>) -> impl FnMut(AssistantEvent) -> bool + Send {
    move |event| {
        let delivered = match event {
            AssistantEvent::Routed { route, reason } => {
                listener.on_routed(route.to_string(), reason.to_string())
            }
            AssistantEvent::Card(card) => listener.on_card(card),
            AssistantEvent::Token { text, unsupported } => listener.on_token(text, unsupported),
            AssistantEvent::Reasoning(text) => listener.on_reasoning(text),
            AssistantEvent::ToolCall { call, builtin } => listener.on_tool_call(ToolCall {
                id: call.id,
                name: call.name,
                arguments_json: call.arguments.to_string(),
                builtin,
            }),
            AssistantEvent::Done(summary) => listener.on_done(summary_record(summary)),
            AssistantEvent::Failed(e) => listener.on_error(e.into()),
        };
        if delivered.is_err() {
            tracing::warn!("an AskListener method threw; the answer was stopped");
        }
        delivered.is_ok()
    }
}

fn summary_record(s: vazhi_core::assistant::AnswerSummary) -> AnswerSummary {
    AnswerSummary {
        route: s.route.to_string(),
        cards: s.cards as u32,
        text: s.text,
        model_unavailable: s.model_unavailable,
        finish: s.finish.map(|f| f.as_str().to_owned()),
        generated_tokens: s.metrics.as_ref().map_or(0, |m| m.generated_tokens),
        tool_calls: s.tool_calls,
        unsupported_sentences: s.unsupported_sentences,
        task: s.task,
        time_to_first_token_ms: s.metrics.as_ref().map(|m| m.time_to_first_token_ms),
        tokens_per_second: s.metrics.as_ref().map(|m| m.generation_tokens_per_s),
    }
}
