//! [`VazhiApp`]: the assistant over the app's data directory. Questions stream [`AskEvent`]s
//! as a Dart `Stream` (core runs each answer on a thread of its own; this module only adapts
//! its events); an [`AnswerTask`] cancels one. Works before any model is downloaded
//! (lookups and search answer from the knowledge base; `model_unavailable` says the model would
//! have added more).

use std::sync::{Mutex, PoisonError};

use flutter_rust_bridge::frb;
use vazhi_core::app::{self, App, AppConfig, AskOverrides};
use vazhi_core::assistant::{AnswerHandle, AssistantEvent};
use vazhi_core::engine::CancelRelay;

use crate::api::error::{guard, VazhiException};
use crate::api::feedback::KeyStore;
use crate::api::records::{ask_event, AskEvent, AskOptions, RestoreReport, SavedSession};
use crate::emit::Emit;
use crate::frb_generated::StreamSink;

/// How hard the operating system is asking for memory back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryPressure {
    /// The app went to the background (`AppLifecycleState.paused`, Android
    /// `TRIM_MEMORY_UI_HIDDEN`).
    Background,
    /// Memory is getting low (Android `TRIM_MEMORY_RUNNING_LOW`).
    Moderate,
    /// Memory is critically low (`didHaveMemoryPressure`, iOS memory warning).
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

/// What the fact guard does with a sentence whose facts (numbers, phone numbers, years,
/// quotes, names) are in neither the question nor the cards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactPolicy {
    /// No check: tokens stream one by one.
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

/// How to open a [`VazhiApp`]; `null` fields keep Vazhi's defaults.
#[frb(non_opaque)]
#[derive(Debug, Clone, Default)]
pub struct VazhiAppConfig {
    /// The app's data directory (models/, downloads/, knowledge.db, feedback.db).
    pub data_dir: String,
    /// A GGUF file to load (a developer's own file).
    pub model_path: Option<String>,
    /// An installed catalog model to load, only if it is the verified file.
    pub model_id: Option<String>,
    /// The model catalog (JSON); default: the catalog built into Vazhi.
    pub catalog_json: Option<String>,
    /// `catalog_json`'s detached signature (a signature file's text).
    pub catalog_signature: Option<String>,
    /// Knowledge-pack directories to import at start (skipped when that version, or a newer
    /// one, is installed).
    #[frb(default = [])]
    pub pack_dirs: Vec<String>,
    /// Public keys (64 hex digits each) whose pack and catalog signatures are trusted, beyond
    /// what Vazhi ships.
    #[frb(default = [])]
    pub trusted_keys: Vec<String>,
    /// Accept packs and catalogs that are neither shipped nor signed by a trusted key.
    #[frb(default = false)]
    pub allow_unsigned: bool,
    /// Router rules (TOML); default: the rules built into Vazhi.
    pub rules_toml: Option<String>,
    /// llama.cpp threads; default: physical cores.
    pub threads: Option<u32>,
    /// Context size in tokens; default: chosen by the memory plan.
    pub context_tokens: Option<u32>,
    /// Memory budget for model + cache, MiB; the context shrinks to fit.
    pub memory_budget_mb: Option<u64>,
    /// Most tokens per answer (default 256).
    pub max_tokens: Option<u32>,
    /// System prompt for model answers.
    pub system_prompt: Option<String>,
    /// Memory pressure at or above which [`VazhiApp::on_memory_pressure`] unloads the model
    /// (default: critical).
    pub unload_at: Option<MemoryPressure>,
    /// A chat template (Jinja source) used instead of the model's own: e.g. one that renders
    /// tools for a model whose template does not.
    pub chat_template: Option<String>,
    /// What the fact guard does with an unsupported sentence (default: mark it).
    pub fact_policy: Option<FactPolicy>,
}

impl TryFrom<VazhiAppConfig> for AppConfig {
    type Error = VazhiException;

    fn try_from(c: VazhiAppConfig) -> Result<Self, VazhiException> {
        Ok(AppConfig {
            data_dir: c.data_dir.into(),
            model_path: c.model_path.map(Into::into),
            model_id: c.model_id,
            catalog_json: c.catalog_json,
            catalog_signature: c.catalog_signature,
            pack_dirs: c.pack_dirs.into_iter().map(Into::into).collect(),
            trust: vazhi_core::signing::TrustPolicy {
                keys: vazhi_core::signing::TrustedKeys::from_hex(&c.trusted_keys)?,
                allow_unsigned: c.allow_unsigned,
            },
            rules_toml: c.rules_toml,
            threads: c.threads.map(|t| t as usize),
            context_tokens: c.context_tokens,
            memory_budget_mb: c.memory_budget_mb,
            max_tokens: c.max_tokens,
            system_prompt: c.system_prompt,
            unload_at: c.unload_at.map(Into::into).unwrap_or_default(),
            max_model_bytes: None,
            chat_template: c.chat_template,
            fact_policy: c.fact_policy.map(Into::into).unwrap_or_default(),
        })
    }
}

/// Cancels one streamed answer. Create it, pass it to `ask`, and call `cancel()` (the Dart
/// layer does when the stream's subscription is cancelled); the stream then ends with `done`,
/// finish `cancelled`.
#[frb(opaque)]
#[derive(Debug, Default)]
pub struct AnswerTask {
    cancel: CancelRelay,
    /// The answer, once started (core runs it; this only keeps its handle).
    answer: Mutex<Option<AnswerHandle>>,
}

impl AnswerTask {
    /// A task that is not cancelled.
    #[frb(sync)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the answer within a token (idempotent; before the answer starts, it never speaks).
    #[frb(sync)]
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Whether the stream has had its last event.
    #[frb(sync)]
    pub fn is_finished(&self) -> bool {
        self.answer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(AnswerHandle::is_finished)
    }

    /// Gives the result of the app's tool call `id` (from a `toolCall` event); the model goes
    /// on once every call of the round has one. `invalidInput` when no call with this id is
    /// waiting (or the answer has not started).
    #[frb(sync)]
    pub fn submit_tool_result(&self, id: String, result: String) -> Result<(), VazhiException> {
        let answer = self
            .answer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match answer {
            Some(answer) => Ok(answer.submit_tool_result(&id, result)?),
            None => Err(VazhiException::new(
                crate::api::error::VazhiErrorCode::InvalidInput,
                "the answer has not started",
            )),
        }
    }

    /// Keeps `answer`'s handle: a cancel before or after this reaches it.
    fn attach(&self, answer: AnswerHandle) {
        self.cancel.attach(answer.cancel_handle());
        *self.answer.lock().unwrap_or_else(PoisonError::into_inner) = Some(answer);
    }
}

/// The assistant. Opening it is blocking work (packs imported, model loaded), done on a worker
/// thread; keep one per data directory for the app's lifetime.
#[frb(opaque)]
#[derive(Debug)]
pub struct VazhiApp {
    app: App,
}

impl VazhiApp {
    /// Opens the data directory, imports `pack_dirs`, and loads the model if the config names
    /// one.
    pub fn open(config: VazhiAppConfig) -> Result<VazhiApp, VazhiException> {
        guard(|| {
            Ok(VazhiApp {
                app: App::open(config.try_into()?)?,
            })
        })
    }

    /// Whether a model is loaded.
    #[frb(sync)]
    pub fn has_model(&self) -> bool {
        self.app.has_model()
    }

    /// Asks one question (no history). A blank question throws `invalidInput` before the
    /// stream starts; later failures end the stream with a `VazhiException`.
    #[frb(stream_dart_await)]
    pub fn ask(
        &self,
        question: String,
        options: AskOptions,
        task: &AnswerTask,
        sink: StreamSink<AskEvent>,
    ) -> Result<(), VazhiException> {
        self.ask_into(question, options, task, sink)
    }

    /// [`ask`](Self::ask) into any [`Emit`] (the Rust tests use a channel).
    #[frb(ignore)]
    pub fn ask_into(
        &self,
        question: String,
        options: AskOptions,
        task: &AnswerTask,
        out: impl Emit<AskEvent>,
    ) -> Result<(), VazhiException> {
        guard(|| {
            task.attach(
                self.app
                    .ask_into(&question, &options.into(), event_sink(out))?,
            );
            Ok(())
        })
    }

    /// Starts a multi-turn conversation (follow-ups see earlier turns; the model's cache is
    /// reused).
    #[frb(sync)]
    pub fn conversation(&self) -> Conversation {
        Conversation {
            inner: self.app.assistant().conversation(),
        }
    }

    /// Restores a conversation saved with [`Conversation::save`]: its history, and its KV
    /// state when the model, llama.cpp, context and template are the ones it was saved with
    /// (the next answer then does not re-read the history). A damaged, altered, cut or foreign
    /// file falls back to the history, or to an empty conversation; `restored.reason` says
    /// why. Throws when the file cannot be opened (missing included) or the key store fails.
    pub fn restore_conversation(
        &self,
        path: String,
        keys: &KeyStore,
    ) -> Result<RestoredConversation, VazhiException> {
        guard(|| {
            let restored = self.app.restore_conversation(&path, keys.provider())?;
            Ok(RestoredConversation {
                restored: RestoreReport::from(&restored.outcome),
                conversation: Conversation {
                    inner: restored.conversation,
                },
            })
        })
    }

    /// Frees the model's memory now; later questions answer from the knowledge base and
    /// answers in flight end with `modelUnloaded`. Idempotent.
    pub fn unload(&self) -> Result<(), VazhiException> {
        guard(|| Ok(self.app.unload()?))
    }

    /// Loads the configured model again after [`unload`](Self::unload) (no-op if loaded).
    pub fn reload(&self) -> Result<(), VazhiException> {
        guard(|| Ok(self.app.reload()?))
    }

    /// The operating system asks for memory: at or above the config's `unload_at` the model
    /// is unloaded. Returns whether it was.
    pub fn on_memory_pressure(&self, level: MemoryPressure) -> Result<bool, VazhiException> {
        guard(|| Ok(self.app.on_memory_pressure(level.into())?))
    }
}

/// A multi-turn conversation. Clones share it.
#[frb(opaque)]
#[derive(Debug, Clone)]
pub struct Conversation {
    inner: vazhi_core::assistant::Conversation,
}

impl Conversation {
    /// Asks within this conversation; events as for [`VazhiApp::ask`].
    #[frb(stream_dart_await)]
    pub fn ask(
        &self,
        question: String,
        options: AskOptions,
        task: &AnswerTask,
        sink: StreamSink<AskEvent>,
    ) -> Result<(), VazhiException> {
        self.ask_into(question, options, task, sink)
    }

    /// [`ask`](Self::ask) into any [`Emit`].
    #[frb(ignore)]
    pub fn ask_into(
        &self,
        question: String,
        options: AskOptions,
        task: &AnswerTask,
        out: impl Emit<AskEvent>,
    ) -> Result<(), VazhiException> {
        guard(|| {
            let params = AskOverrides::from(options)
                .prepare(&question, self.inner.config().params.clone())?;
            task.attach(self.inner.ask_into(&question, &params, event_sink(out))?);
            Ok(())
        })
    }

    /// Saves the conversation to `path` (atomically, readable by the app only, encrypted with
    /// the key `vazhi-sessions` of `keys`, created on first use): its history and, when the
    /// model's cache still holds it, the KV state. Throws `busy` while an answer runs and
    /// `modelUnloaded` without a model. Call it when the app goes to the background.
    pub fn save(&self, path: String, keys: &KeyStore) -> Result<SavedSession, VazhiException> {
        guard(|| Ok(self.inner.save(&path, keys.provider())?.into()))
    }
}

/// A conversation read back from a session file.
#[derive(Debug)]
pub struct RestoredConversation {
    /// The conversation (empty when nothing could be read).
    pub conversation: Conversation,
    /// What came back, and why not the rest.
    pub restored: RestoreReport,
}

/// The core sink that hands each event to `out`, in order; a closed Dart stream refuses it,
/// and core cancels the answer.
fn event_sink(out: impl Emit<AskEvent>) -> impl FnMut(AssistantEvent) -> bool + Send {
    move |event| match ask_event(event) {
        Ok(event) => out.emit(event),
        Err(error) => {
            out.fail(error);
            true
        }
    }
}
