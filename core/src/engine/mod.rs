//! The inference engine: a GGUF model run by llama.cpp on its own worker thread.
//!
//! [`Engine::load`] validates the file with our own GGUF parser ([`validate`]), plans memory
//! ([`memory`]), then hands the file to llama.cpp on a dedicated thread that owns the model and
//! its context. The returned [`Engine`] is a cheap, clonable, `Send + Sync` handle. Answers
//! stream back as [`Event`]s through a [`Generation`], which the caller iterates (or waits on)
//! and can cancel from any thread; cancellation takes effect before the next token.
//!
//! ```no_run
//! use vazhi_core::engine::{Engine, EngineConfig, GenerateParams, Message, Event};
//!
//! # fn main() -> Result<(), vazhi_core::engine::EngineError> {
//! let engine = Engine::load("SmolLM2-135M-Instruct.Q4_1.gguf", EngineConfig::default())?;
//! let session = engine.session(Some("You are a helpful assistant.".into()));
//! for event in session.send("What is the capital of France?", GenerateParams::default())? {
//!     match event {
//!         Event::Token(text) => print!("{text}"),
//!         Event::Done(answer) => println!("\n{:.1} tok/s", answer.metrics.generation_tokens_per_s),
//!         Event::Failed(error) => eprintln!("{error}"),
//!         Event::Reasoning(_) => {} // only with `show_reasoning`
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod backend;
mod cancel;
pub mod constraint;
mod error;
pub mod memory;
mod message;
pub mod metrics;
mod number_range;
mod params;
pub mod reference;
mod sampler;
mod session;
pub mod split;
pub mod stop;
pub mod template;
pub mod template_guard;
pub mod threads;
pub mod tools;
pub mod utf8;
pub mod validate;
mod worker;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use serde::Serialize;

pub use backend::llama_load_attempts;

/// Initialises llama.cpp's process-wide backend if nothing has yet (loading a model does it
/// too). Tools that call llama.cpp directly — `model-tools quantize` — call this first.
pub fn init_backend() -> Result<(), EngineError> {
    backend::backend().map(|_| ())
}
pub use cancel::{CancelHandle, CancelRelay};
pub use constraint::{ConstraintError, OutputConstraint};
pub use error::EngineError;
pub use memory::{KvCacheKind, MemoryPlan};
pub use message::{Message, Role};
pub use metrics::{Metrics, TemplateKind};
pub use params::{GenerateParams, Sampling};
pub(crate) use session::AnswerGuard;
pub use session::ChatSession;
pub use tools::{ToolCall, ToolChoice, ToolError, ToolFormat, ToolSpec};
pub use validate::{validate_model, ModelError, ModelReport, ValidationPolicy};
pub(crate) use worker::KvSnapshot;

/// Where a queued [`Engine::request_state`] answers.
pub(crate) type StateReply = Receiver<Result<Option<KvSnapshot>, EngineError>>;

use template::{ChatTemplate, TemplateError};
use worker::{GenerateJob, Job, PromptTemplate, SessionLink, WorkerSetup};

/// Default cap on one message's size, checked before tokenizing.
pub const DEFAULT_MAX_PROMPT_BYTES: usize = 32 * 1024;

/// Default [`EngineConfig::prompt_chunk`].
pub const DEFAULT_PROMPT_CHUNK: u32 = 128;

/// How to load and run a model.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// llama.cpp threads; `None` uses the number of physical cores ([`threads::physical_cores`]).
    pub threads: Option<usize>,
    /// Context size in tokens; `None` lets the memory plan choose (at most 4096).
    pub n_ctx: Option<u32>,
    /// Memory the model may use in bytes; the plan shrinks the context (and then the KV-cache
    /// precision) to fit. `None`: no budget.
    pub ram_budget_bytes: Option<u64>,
    /// Tokens evaluated per llama.cpp batch while reading a prompt.
    pub n_batch: u32,
    /// Prompt tokens read between two checks for cancel and unload (at most `n_batch`): what
    /// a cancel waits for at worst. 128 keeps prompt speed within 3 % of whole 512-token
    /// batches on a 2-core CPU; 64 cost 13 % there (docs/benchmarks.md, "Cancel latency").
    pub prompt_chunk: u32,
    /// Largest accepted message, in bytes.
    pub max_prompt_bytes: usize,
    /// What a model file must satisfy before llama.cpp opens it.
    pub policy: ValidationPolicy,
    /// A chat template (Jinja source) used instead of the one in the model file: for a model
    /// whose own template does not render tools, or has none. Checked like the model's own.
    pub chat_template: Option<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            threads: None,
            n_ctx: None,
            ram_budget_bytes: None,
            n_batch: 512,
            prompt_chunk: DEFAULT_PROMPT_CHUNK,
            max_prompt_bytes: DEFAULT_MAX_PROMPT_BYTES,
            policy: ValidationPolicy::default(),
            chat_template: None,
        }
    }
}

/// What the loaded engine is running.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// The validated file's metadata.
    pub report: ModelReport,
    /// Context size and KV-cache type chosen.
    pub plan: MemoryPlan,
    /// llama.cpp threads.
    pub threads: usize,
    /// How prompts are built.
    pub template: TemplateKind,
    /// Validation plus llama.cpp load time, in milliseconds.
    pub load_ms: u64,
    /// The tool-call format the chat template teaches; `None` when it renders no tools (or
    /// in a format we cannot parse).
    pub tool_format: Option<ToolFormat>,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model produced an end-of-text token.
    EndOfText,
    /// A stop string appeared.
    StopString,
    /// `max_tokens` were generated.
    MaxTokens,
    /// The context is full; the answer ends here rather than failing.
    ContextFull,
    /// The caller cancelled (or dropped the [`Generation`]).
    Cancelled,
    /// The answer had an output constraint and was cut (by `max_tokens`, a full context or
    /// a stop string) before the text was complete under it: the text does not satisfy the
    /// grammar or schema.
    Incomplete,
    /// The answer is complete under the grammar but fails its JSON Schema: the schema uses a
    /// keyword the grammar cannot enforce (`multipleOf`, `uniqueItems`, a fractional bound…),
    /// or a tool call that does not read as one.
    Invalid,
    /// The model called one or more tools ([`Answer::tool_calls`]); the conversation goes on
    /// with their results.
    ToolCalls,
    /// The assistant's fact guard stopped the answer before a sentence with facts found
    /// neither in the records nor in the question ([`FactPolicy::Stop`]); the engine itself
    /// never ends an answer so.
    ///
    /// [`FactPolicy::Stop`]: crate::fact_guard::FactPolicy::Stop
    Unsupported,
}

impl FinishReason {
    /// The snake_case name (as serialized): `end_of_text`, `stop_string`, `max_tokens`,
    /// `context_full`, `cancelled`, `incomplete`, `invalid`, `tool_calls`, `unsupported`.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::EndOfText => "end_of_text",
            FinishReason::StopString => "stop_string",
            FinishReason::MaxTokens => "max_tokens",
            FinishReason::ContextFull => "context_full",
            FinishReason::Cancelled => "cancelled",
            FinishReason::Incomplete => "incomplete",
            FinishReason::Invalid => "invalid",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::Unsupported => "unsupported",
        }
    }
}

/// A finished answer.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// The whole text, equal to the concatenation of the streamed tokens (reasoning and tool
    /// calls are not part of it).
    pub text: String,
    /// The tool calls the answer ends with ([`FinishReason::ToolCalls`]).
    pub tool_calls: Vec<ToolCall>,
    /// The model's reasoning, when [`GenerateParams::show_reasoning`] asked for it.
    pub reasoning: String,
    /// The generated token ids.
    pub tokens: Vec<i32>,
    /// Why it ended.
    pub finish: FinishReason,
    /// Timings and counts.
    pub metrics: Metrics,
}

/// Something that happened while answering.
#[derive(Debug)]
pub enum Event {
    /// More text: always whole UTF-8 characters.
    Token(String),
    /// More of the model's reasoning (only with [`GenerateParams::show_reasoning`]).
    Reasoning(String),
    /// The answer is complete.
    Done(Answer),
    /// The answer failed; nothing more follows.
    Failed(EngineError),
}

/// The log-probability of one token given the text before it.
#[derive(Debug, Clone, Serialize)]
pub struct TokenScore {
    /// Token id.
    pub token: i32,
    /// The token's text (lossy where it is a partial character).
    pub text: String,
    /// Natural-log probability.
    pub logprob: f32,
}

/// Per-token log-probabilities of a text, for perplexity and model comparisons.
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    /// One entry per predicted token (every token but the first).
    pub tokens: Vec<TokenScore>,
    /// Sum of the log-probabilities.
    pub sum_logprob: f64,
    /// `exp(-mean logprob)`.
    pub perplexity: f64,
}

/// Raw next-token logits at every position of a token sequence, for comparing two models'
/// whole distributions (KL divergence, top-1 agreement) on the same tokens.
#[derive(Debug, Clone)]
pub struct TokenLogits {
    /// The evaluated tokens.
    pub tokens: Vec<i32>,
    /// Vocabulary size: the length of each row.
    pub n_vocab: usize,
    /// `(tokens.len() - 1) × n_vocab` logits; row `i` predicts `tokens[i + 1]`.
    pub logits: Vec<f32>,
}

impl TokenLogits {
    /// Number of rows (predicted positions).
    pub fn positions(&self) -> usize {
        self.logits.len().checked_div(self.n_vocab).unwrap_or(0)
    }

    /// The logits that predict `tokens[i + 1]`.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        self.logits.get(i * self.n_vocab..(i + 1) * self.n_vocab)
    }
}

/// A streaming answer: iterate it for [`Event`]s, or [`wait`](Generation::wait) for the result.
///
/// Dropping it before the end cancels the generation.
#[derive(Debug)]
pub struct Generation {
    events: Receiver<Event>,
    cancel: CancelHandle,
    finished: bool,
}

impl Generation {
    /// A handle that cancels this generation from any thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Stops the generation before its next token.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Consumes the stream and returns the answer (tokens already received are not lost: the
    /// answer's text holds everything).
    pub fn wait(mut self) -> Result<Answer, EngineError> {
        for event in self.by_ref() {
            match event {
                Event::Token(_) | Event::Reasoning(_) => {}
                Event::Done(answer) => return Ok(answer),
                Event::Failed(error) => return Err(error),
            }
        }
        Err(EngineError::Shutdown)
    }
}

impl Iterator for Generation {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.finished {
            return None;
        }
        let event = self
            .events
            .recv()
            .unwrap_or(Event::Failed(EngineError::Shutdown));
        if matches!(event, Event::Done(_) | Event::Failed(_)) {
            self.finished = true;
        }
        Some(event)
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        if !self.finished {
            self.cancel.cancel();
        }
    }
}

/// A loaded model. Clone it freely: all clones share one worker thread.
#[derive(Debug, Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    stopping: Arc<AtomicBool>,
    worker: Mutex<Option<JoinHandle<()>>>,
    info: ModelInfo,
    max_prompt_bytes: usize,
    /// The call format of the template, or why it has none.
    tool_format: Result<ToolFormat, ToolError>,
    /// The model file as loaded (a handle opened before llama.cpp read it, so that a file
    /// renamed over it later is not what gets hashed); hashed on first need
    /// ([`Engine::state_fingerprint`]). `None` when the path changed during the load.
    model_file: Mutex<Option<std::fs::File>>,
    model_sha256: OnceLock<String>,
    /// SHA-256 of the prompt template (Jinja source, or llama.cpp's template name).
    template_sha256: String,
}

/// The llama.cpp this build runs: the `llama-cpp-sys-2` crate release, which pins one
/// llama.cpp commit. A KV state is only read back by the same release (its layout is
/// llama.cpp's, unversioned).
pub const LLAMA_CPP_VERSION: &str = "llama-cpp-sys-2 0.1.160";

/// What a KV state depends on besides the tokens: a saved state is loaded only into an engine
/// whose fingerprint is the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StateFingerprint {
    /// [`LLAMA_CPP_VERSION`].
    pub llama_cpp: String,
    /// SHA-256 of the model file, hex.
    pub model_sha256: String,
    /// Context size in tokens.
    pub n_ctx: u32,
    /// KV cache element type (`f16`, `q8_0`).
    pub kv_cache: String,
    /// SHA-256 of the chat template, hex.
    pub template_sha256: String,
}

impl Drop for Shared {
    fn drop(&mut self) {
        shut_down(&self.stopping, &self.jobs, &self.worker);
    }
}

fn shut_down(
    stopping: &AtomicBool,
    jobs: &Mutex<Option<mpsc::Sender<Job>>>,
    worker: &Mutex<Option<JoinHandle<()>>>,
) {
    // The running answer stops before its next token; queued jobs are refused.
    stopping.store(true, Ordering::Release);
    if let Ok(mut jobs) = jobs.lock() {
        jobs.take();
    }
    let handle = worker.lock().ok().and_then(|mut w| w.take());
    if let Some(handle) = handle {
        if handle.join().is_err() {
            tracing::error!("engine worker thread panicked while shutting down");
        }
    }
}

impl Engine {
    /// Loads an installed catalog model, after checking that its file is still the one whose
    /// SHA-256 was verified ([`crate::download::Downloader::installed`] gives one). A replaced
    /// or modified file is refused with [`ModelError::Unverified`].
    pub fn load_verified(
        model: &crate::download::VerifiedModel,
        config: EngineConfig,
    ) -> Result<Self, EngineError> {
        if !model.is_unchanged() {
            return Err(EngineError::Model(ModelError::Unverified {
                id: model.id().to_owned(),
            }));
        }
        let engine = Self::load(model.path(), config)?;
        // Verified, and still the file loaded (its handle kept, its record unchanged): no need
        // to hash it again for a session file.
        let kept = engine.shared.model_file.lock().is_ok_and(|f| f.is_some());
        if kept && model.is_unchanged() {
            let _ = engine.shared.model_sha256.set(model.sha256().to_owned());
        }
        Ok(engine)
    }

    /// Validates `path`, plans memory and loads the model on a new worker thread.
    ///
    /// Blocks until the model is loaded. Fails with [`EngineError::LoadInProgress`] if another
    /// load is running in this process, and with [`EngineError::Model`] — before llama.cpp
    /// sees the file — if the file is not a valid, allowed GGUF model within budget.
    pub fn load(path: impl AsRef<Path>, config: EngineConfig) -> Result<Self, EngineError> {
        let path = path.as_ref();
        let started = Instant::now();
        if config.n_batch == 0 || config.prompt_chunk == 0 {
            return Err(EngineError::InvalidParams(
                "n_batch and prompt_chunk must be at least 1".into(),
            ));
        }
        let _guard = backend::LoadGuard::acquire()?;
        let report = validate_model(path, &config.policy)?;
        // Kept for the state fingerprint: the bytes llama.cpp is about to read.
        let model_file = std::fs::File::open(path).ok();
        let plan = memory::plan_memory(
            &report,
            config.ram_budget_bytes,
            config.n_ctx,
            config.n_batch,
        )?;
        let threads = config
            .threads
            .unwrap_or_else(threads::physical_cores)
            .max(1);
        let template = prompt_template(&report, config.chat_template.as_deref())?;
        let template_kind = template.kind();
        let template_sha256 = template.sha256();
        let tool_format = template.tool_format();
        let stopping = Arc::new(AtomicBool::new(false));
        let setup = WorkerSetup {
            path: path.to_owned(),
            plan: plan.clone(),
            threads,
            n_batch: config.n_batch,
            prompt_chunk: config.prompt_chunk.min(config.n_batch),
            template,
            bos_token: report.bos_token.clone(),
            sliding_window: report.sliding_window,
            stopping: stopping.clone(),
            load_ms_before: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let (jobs_tx, jobs_rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("vazhi-engine".into())
            // llama.cpp's grammar code recurses once per rule it steps into (parsing, and
            // each token's check): a caller's grammar of long rule chains needs more than the
            // default 2 MiB. Address space only; pages are touched as used.
            .stack_size(constraint::GRAMMAR_STACK_BYTES)
            .spawn(move || worker::run(setup, ready_tx, jobs_rx))
            .map_err(|e| EngineError::Load(format!("cannot start the engine thread: {e}")))?;
        let load_ms = match ready_rx.recv() {
            Ok(Ok(ms)) => ms,
            Ok(Err(e)) => {
                let _ = handle.join();
                return Err(e);
            }
            Err(_) => {
                let _ = handle.join();
                return Err(EngineError::Load(
                    "the engine thread stopped while loading".into(),
                ));
            }
        };
        tracing::info!(load_ms, n_ctx = plan.n_ctx, threads, "model loaded");
        Ok(Self {
            shared: Arc::new(Shared {
                jobs: Mutex::new(Some(jobs_tx)),
                stopping,
                worker: Mutex::new(Some(handle)),
                info: ModelInfo {
                    report,
                    plan,
                    threads,
                    template: template_kind,
                    load_ms,
                    tool_format: tool_format.as_ref().ok().copied(),
                },
                max_prompt_bytes: config.max_prompt_bytes,
                tool_format,
                model_file: Mutex::new(model_file.filter(|f| same_file(f, path))),
                model_sha256: OnceLock::new(),
                template_sha256,
            }),
        })
    }

    /// What is loaded and how it is configured.
    pub fn info(&self) -> &ModelInfo {
        &self.shared.info
    }

    /// The largest message this engine accepts, in bytes.
    pub fn max_prompt_bytes(&self) -> usize {
        self.shared.max_prompt_bytes
    }

    /// A new conversation with an optional system prompt.
    pub fn session(&self, system_prompt: Option<String>) -> ChatSession {
        ChatSession::new(self.clone(), system_prompt)
    }

    /// A conversation that goes on from `history` (a restored one).
    pub(crate) fn session_with_history(
        &self,
        system_prompt: Option<String>,
        history: Vec<Message>,
    ) -> ChatSession {
        ChatSession::with_history(self.clone(), system_prompt, history)
    }

    /// Answers a whole conversation (the last message is normally the user's) without keeping
    /// history. Returns at once; the answer streams through the [`Generation`].
    pub fn generate(
        &self,
        messages: Vec<Message>,
        params: GenerateParams,
    ) -> Result<Generation, EngineError> {
        self.submit(messages, params, None)
    }

    /// Log-probabilities of every token of `text` (scored as plain text, no chat template).
    ///
    /// Blocks until the worker has evaluated the text; it waits behind running answers.
    pub fn score(&self, text: &str) -> Result<Scores, EngineError> {
        self.check_prompt(text)?;
        let (reply, result) = mpsc::sync_channel(1);
        self.send_job(Job::Score {
            text: text.to_owned(),
            reply,
        })?;
        result.recv().map_err(|_| EngineError::Shutdown)?
    }

    /// `text` as this model reads plain text (no chat template): token ids, with BOS where
    /// the model adds one. Feed them to [`logits`](Self::logits) of this or another model with
    /// the same vocabulary.
    pub fn tokenize(&self, text: &str) -> Result<Vec<i32>, EngineError> {
        self.check_prompt(text)?;
        let (reply, result) = mpsc::sync_channel(1);
        self.send_job(Job::Tokenize {
            text: text.to_owned(),
            reply,
        })?;
        result.recv().map_err(|_| EngineError::Shutdown)?
    }

    /// Next-token logits at every position of `tokens`, evaluated from an empty cache.
    ///
    /// Blocks until the worker has evaluated them; it waits behind running answers. The
    /// result holds `(tokens.len() - 1) × vocabulary` floats.
    pub fn logits(&self, tokens: Vec<i32>) -> Result<TokenLogits, EngineError> {
        let (reply, result) = mpsc::sync_channel(1);
        self.send_job(Job::Logits { tokens, reply })?;
        result.recv().map_err(|_| EngineError::Shutdown)?
    }

    /// The prompt text and tokens this engine would feed the model for `messages` (the chat
    /// template applied, the generation prompt opened, no history trimming). For debugging
    /// prompts and for checking templates.
    pub fn render_prompt(&self, messages: Vec<Message>) -> Result<(String, Vec<i32>), EngineError> {
        let (reply, result) = mpsc::sync_channel(1);
        self.send_job(Job::Prompt { messages, reply })?;
        result.recv().map_err(|_| EngineError::Shutdown)?
    }

    /// Runs the bare llama-cpp-2 greedy loop of [`reference`](mod@reference) on this engine's own worker
    /// thread, model and context, from an empty cache, for `max_tokens` at most.
    ///
    /// Benchmarks compare it with [`generate`](Self::generate): same thread (so the same
    /// OpenMP thread team — a second team in the process slows both, see
    /// `docs/decisions/0004-default-threads.md`), same context, same settings.
    pub fn run_reference(
        &self,
        prompt: Vec<i32>,
        max_tokens: usize,
    ) -> Result<reference::ReferenceRun, EngineError> {
        let (reply, result) = mpsc::sync_channel(1);
        self.send_job(Job::Reference {
            prompt,
            max_tokens,
            reply,
        })?;
        result.recv().map_err(|_| EngineError::Shutdown)?
    }

    /// What a saved KV state must match to be loaded into this engine. The model file (the
    /// one loaded, through a handle kept from the load) is hashed on the first call (a fifth
    /// of a second for 250 MB on a desktop CPU), then remembered; a catalog model loaded
    /// with [`load_verified`](Self::load_verified) brings its verified hash.
    pub fn state_fingerprint(&self) -> Result<StateFingerprint, EngineError> {
        let model_sha256 = match self.shared.model_sha256.get() {
            Some(hash) => hash.clone(),
            None => {
                let _span = tracing::info_span!("hash_model").entered();
                let hash = self.hash_model_file().map_err(|e| {
                    EngineError::Load(format!("cannot hash the loaded model file: {e}"))
                })?;
                self.shared.model_sha256.get_or_init(|| hash).clone()
            }
        };
        let plan = &self.shared.info.plan;
        Ok(StateFingerprint {
            llama_cpp: LLAMA_CPP_VERSION.to_owned(),
            model_sha256,
            n_ctx: plan.n_ctx,
            kv_cache: match plan.kv_cache {
                KvCacheKind::F16 => "f16",
                KvCacheKind::Q8_0 => "q8_0",
            }
            .to_owned(),
            template_sha256: self.shared.template_sha256.clone(),
        })
    }

    /// SHA-256 of the loaded model file, read through the handle kept from the load.
    fn hash_model_file(&self) -> std::io::Result<String> {
        use sha2::{Digest, Sha256};
        use std::io::{Seek, SeekFrom};
        let mut file = self
            .shared
            .model_file
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        let file = file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the model file changed while it was loading"))?;
        file.seek(SeekFrom::Start(0))?;
        let mut hasher = Sha256::new();
        crate::download::sink::hash_reader(file, &mut hasher)?;
        Ok(crate::fsutil::hex(&hasher.finalize()))
    }

    /// Queues a request for the KV cache of the conversation `session` (`None` when the
    /// cache now holds another's: its next answer re-reads its history in any case) and
    /// returns where the answer will arrive; it comes after any answer queued before.
    pub(crate) fn request_state(&self, session: u64) -> Result<StateReply, EngineError> {
        let (reply, result) = mpsc::sync_channel(1);
        self.send_job(Job::SaveState { session, reply })?;
        Ok(result)
    }

    /// Replaces the KV cache with `snapshot`, which then belongs to conversation `session`.
    /// On failure the cache is left empty.
    pub(crate) fn load_state(&self, session: u64, snapshot: KvSnapshot) -> Result<(), EngineError> {
        let (reply, result) = mpsc::sync_channel(1);
        self.send_job(Job::LoadState {
            session,
            snapshot,
            reply,
        })?;
        result.recv().map_err(|_| EngineError::Shutdown)?
    }

    /// Stops the worker and frees the model's memory now: a running answer ends (as
    /// cancelled) before its next token, queued ones fail with [`EngineError::Shutdown`], and
    /// so do later calls on any clone. Returns when the memory is freed.
    pub fn unload(&self) {
        shut_down(
            &self.shared.stopping,
            &self.shared.jobs,
            &self.shared.worker,
        );
    }

    pub(crate) fn check_prompt(&self, text: &str) -> Result<(), EngineError> {
        if text.len() > self.shared.max_prompt_bytes {
            return Err(EngineError::PromptTooLarge {
                bytes: text.len(),
                max: self.shared.max_prompt_bytes,
            });
        }
        if text.trim().is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        Ok(())
    }

    pub(crate) fn submit(
        &self,
        messages: Vec<Message>,
        params: GenerateParams,
        session: Option<SessionLink>,
    ) -> Result<Generation, EngineError> {
        let last = messages.last().ok_or(EngineError::EmptyPrompt)?;
        self.check_prompt(&last.content)?;
        if let Some(big) = messages
            .iter()
            .find(|m| m.content.len() > self.shared.max_prompt_bytes)
        {
            return Err(EngineError::PromptTooLarge {
                bytes: big.content.len(),
                max: self.shared.max_prompt_bytes,
            });
        }
        params.validate()?;
        let tools = if params.tools.is_empty() {
            None
        } else {
            let format = self.shared.tool_format.clone()?;
            let grammar = match params.tool_choice {
                ToolChoice::None => None,
                _ => Some(format.grammar(&params.tools)?),
            };
            Some(worker::ToolSetup { format, grammar })
        };
        // Schemas are converted here, so a bad one fails the call, not the answer.
        let constraint = params
            .constraint
            .as_ref()
            .map(OutputConstraint::compile)
            .transpose()?;
        let (events, receiver) = mpsc::channel();
        let cancel = CancelHandle::new();
        let job = GenerateJob {
            messages,
            params,
            constraint,
            tools,
            events,
            cancel: cancel.clone(),
            started: Instant::now(),
            session,
        };
        self.send_job(Job::Generate(Box::new(job)))?;
        Ok(Generation {
            events: receiver,
            cancel,
            finished: false,
        })
    }

    fn send_job(&self, job: Job) -> Result<(), EngineError> {
        let jobs = self.shared.jobs.lock().map_err(|_| EngineError::Shutdown)?;
        jobs.as_ref()
            .ok_or(EngineError::Shutdown)?
            .send(job)
            .map_err(|_| EngineError::Shutdown)
    }
}

/// Whether `file` is still what `path` names (no rename over it since it was opened).
fn same_file(file: &std::fs::File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// The model's own template when it compiles; llama.cpp's matcher otherwise. A template that
/// could build values without bound, or that fails on a sample conversation, refuses the
/// model: a file that carries one is not trusted with a prompt.
fn prompt_template(
    report: &ModelReport,
    replacement: Option<&str>,
) -> Result<PromptTemplate, EngineError> {
    let bos = report.bos_token.as_deref().unwrap_or("");
    let eos = report.eos_token.as_deref().unwrap_or("");
    if let Some(source) = replacement {
        // The caller's template is checked as the model's own is, but never falls back.
        let t = ChatTemplate::new(source, bos, eos).map_err(EngineError::TemplateRefused)?;
        check_template(&t)?;
        return Ok(PromptTemplate::Jinja(Box::new(t)));
    }
    Ok(match report.chat_template.as_deref() {
        Some(source) => match ChatTemplate::new(source, bos, eos) {
            Ok(t) => {
                check_template(&t)?;
                PromptTemplate::Jinja(Box::new(t))
            }
            Err(TemplateError::Syntax(e)) => {
                tracing::warn!(error = %e, "model chat template does not compile; using llama.cpp's matcher");
                PromptTemplate::Builtin(source.to_owned())
            }
            Err(e) => return Err(EngineError::TemplateRefused(e)),
        },
        None => PromptTemplate::Builtin(builtin_template_for(&report.architecture).to_owned()),
    })
}

/// Renders a sample conversation: a template that fails on it refuses the model.
fn check_template(t: &ChatTemplate) -> Result<(), EngineError> {
    let _span = tracing::info_span!("check_chat_template").entered();
    let sample = sample_conversation();
    if let Err(e) = t.render(&sample, true) {
        // Some templates refuse a system turn (Gemma 2): try without it.
        if !matches!(e, TemplateError::Rejected) {
            return Err(EngineError::TemplateRefused(e));
        }
        t.render(&sample[1..], true)
            .map_err(EngineError::TemplateRefused)?;
    }
    Ok(())
}

/// What a template must render at load: a system turn and two exchanges.
fn sample_conversation() -> Vec<Message> {
    vec![
        Message::system("You are a helpful assistant."),
        Message::user("Hello, who are you?"),
        Message::assistant("I am an assistant that answers from your data."),
        Message::user("What is kural 1 about?"),
    ]
}

/// llama.cpp's built-in template for a model family that ships without its own; Gemma GGUFs
/// often lack one, and ChatML would make them answer nonsense.
fn builtin_template_for(architecture: &str) -> &'static str {
    match architecture {
        "gemma" | "gemma2" | "gemma3" => "gemma",
        "phi3" => "phi3",
        _ => "chatml",
    }
}
