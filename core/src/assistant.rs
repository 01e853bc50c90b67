//! The assistant: one question in, events out — routed, cards from the data, tokens from the
//! model.
//!
//! [`Assistant::ask`] routes the question ([`Router`]), answers exact questions from the
//! knowledge base verbatim ([`Card`]s), and sends open questions to the model — grounded on the
//! retrieved records for Hybrid. It returns at once with an [`AssistantAnswer`] stream
//! ([`Assistant::ask_into`]: events to a sink, for bindings). Without
//! a model, Lookup and Search still answer, and Generate/Hybrid answer with the best records as
//! cards and a `Done` marked `model_unavailable`: a normal answer, not an error.
//!
//! With tools ([`GenerateParams::tools`]) the model may call them: the built-in knowledge
//! tools ([`crate::builtin_tools`]) are run here and their records sent as cards; the app's
//! own calls go out as [`AssistantEvent::ToolCall`] and their results come back through
//! [`AnswerHandle::submit_tool_result`]; then the model goes on, for at most
//! [`AssistantConfig::max_tool_rounds`] rounds.
//!
//! The model's words pass the fact guard ([`crate::fact_guard`]) on their way out: each
//! sentence is checked against the question, the cards and the tools' results, and one with
//! a fact found in none of them is marked `unsupported`, dropped, or ends the answer
//! ([`AssistantConfig::fact_policy`]). A guarded answer streams sentence by sentence.

use std::cell::RefCell;
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::builtin_tools::{cap_result, is_builtin, run_builtin};
use crate::engine::{
    Answer, AnswerGuard, CancelHandle, ChatSession, Engine, EngineError, Event, FinishReason,
    GenerateParams, Generation, Message, Metrics, OutputConstraint, Role, ToolCall, ToolChoice,
};
use crate::fact_guard::{CheckedSentence, Evidence, FactGuard, FactPolicy};
use crate::feedback::KeyProvider;
use crate::grounding::fit_prompt;
use crate::knowledge::{Card, KnowledgeBase, KnowledgeError, Retrieval};
use crate::router::{Reason, Route, Router, Task};
use crate::sessions::{self, RestoreOutcome, SavedSession, SessionError};
use crate::task::{self, Finished, SetOnDrop};
use crate::tool_results::{ToolResultError, ToolResults, Waited};

/// The system prompt for answers without records.
pub const DEFAULT_SYSTEM_PROMPT: &str =
    "You are Vazhi, a helpful assistant. Answer briefly and clearly.";

/// How the assistant answers.
#[derive(Debug, Clone)]
pub struct AssistantConfig {
    /// Cards shown for Search (and for Generate without a model).
    pub search_cards: usize,
    /// Records quoted to the model for Hybrid.
    pub grounding_cards: usize,
    /// Generation settings.
    pub params: GenerateParams,
    /// System prompt.
    pub system_prompt: String,
    /// Most rounds of tool calls in one answer; after the last the model must answer in
    /// words (its tools stay in the prompt, calls are no longer read).
    pub max_tool_rounds: u32,
    /// Most bytes of one tool result given to the model; longer ones are cut (and say so).
    pub max_tool_result_bytes: usize,
    /// How long an answer waits for the app's tool results before giving the model an
    /// error result instead.
    pub tool_result_timeout: Duration,
    /// What the fact guard does with a sentence of the model's whose facts (numbers, phone
    /// numbers, years, quotes, names) are in neither the question, the cards nor the tools'
    /// results. Answers under a JSON Schema or grammar are not checked.
    pub fact_policy: FactPolicy,
}

impl Default for AssistantConfig {
    fn default() -> Self {
        Self {
            search_cards: 3,
            grounding_cards: 2,
            params: GenerateParams {
                max_tokens: 256,
                ..GenerateParams::default()
            },
            system_prompt: DEFAULT_SYSTEM_PROMPT.to_owned(),
            max_tool_rounds: 4,
            max_tool_result_bytes: 2048,
            tool_result_timeout: Duration::from_secs(120),
            fact_policy: FactPolicy::Mark,
        }
    }
}

/// Why an answer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssistantError {
    /// The knowledge base failed.
    #[error(transparent)]
    Knowledge(#[from] KnowledgeError),
    /// The model failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A tool result was not taken.
    #[error(transparent)]
    ToolResult(#[from] ToolResultError),
    /// The operating system would not start the answer's thread.
    #[error("could not start the answer's thread: {0}")]
    Thread(#[source] std::io::Error),
    /// A bug: answering panicked (the panic was stopped and reported here).
    #[error("internal error: {detail}")]
    Internal {
        /// The panic's message.
        detail: String,
    },
}

/// What happened while answering.
#[derive(Debug)]
pub enum AssistantEvent {
    /// The route chosen, and why.
    Routed {
        /// The route.
        route: Route,
        /// The reason (rule name or search score).
        reason: Reason,
    },
    /// A record from the knowledge base, verbatim, with its pack and source.
    Card(Card),
    /// Model text (whole characters): a token's worth, or with the fact guard on
    /// ([`AssistantConfig::fact_policy`]), a whole sentence.
    Token {
        /// The text.
        text: String,
        /// The fact guard found a fact in this sentence that neither the question nor the
        /// cards hold (only with [`FactPolicy::Mark`]).
        unsupported: bool,
    },
    /// The model's reasoning (only when [`GenerateParams::show_reasoning`] asks for it).
    Reasoning(String),
    /// The model called a tool. For an app's tool, the answer waits for
    /// [`AnswerHandle::submit_tool_result`] with the call's id; a built-in call
    /// (`builtin: true`) is run by the assistant, its records follow as `Card`s, and it
    /// takes no result.
    ToolCall {
        /// The call.
        call: ToolCall,
        /// Whether the assistant runs it over the knowledge base.
        builtin: bool,
    },
    /// The answer is complete.
    Done(AnswerSummary),
    /// The answer failed; nothing follows.
    Failed(AssistantError),
}

/// How an answer ended.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerSummary {
    /// The route taken.
    pub route: Route,
    /// Cards sent.
    pub cards: usize,
    /// The model's text (empty when it did not speak).
    pub text: String,
    /// The route wanted the model but none is loaded.
    pub model_unavailable: bool,
    /// The model's metrics, when it spoke.
    pub metrics: Option<Metrics>,
    /// Why the model stopped, when it spoke.
    pub finish: Option<FinishReason>,
    /// Tool calls the model made in this answer (built-in and the app's).
    pub tool_calls: u32,
    /// Sentences the fact guard found unsupported: marked, dropped, or (one) stopped at.
    pub unsupported_sentences: u32,
    /// The task preset the answer was written with ([`Task`]): its text is JSON that follows
    /// the task's schema.
    pub task: Option<String>,
}

/// A streaming answer; iterate it for events. Dropping it cancels the model's part.
#[derive(Debug)]
pub struct AssistantAnswer {
    events: Receiver<AssistantEvent>,
    cancel: CancelHandle,
    tool_results: Arc<ToolResults>,
    finished: bool,
}

impl AssistantAnswer {
    /// Gives the result of the app's tool call `id` (from an [`AssistantEvent::ToolCall`]);
    /// the model goes on once every call of the round has one.
    pub fn submit_tool_result(&self, id: &str, result: String) -> Result<(), AssistantError> {
        Ok(self.tool_results.submit(id, result)?)
    }

    /// A handle that cancels this answer from any thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Drains the stream; the summary, or the error.
    pub fn wait(mut self) -> Result<AnswerSummary, AssistantError> {
        for event in self.by_ref() {
            match event {
                AssistantEvent::Done(summary) => return Ok(summary),
                AssistantEvent::Failed(e) => return Err(e),
                _ => {}
            }
        }
        Err(AssistantError::Engine(EngineError::Shutdown))
    }

    /// An answer that is only `error`.
    fn failed(error: AssistantError) -> Self {
        let (tx, events) = mpsc::channel();
        let _ = tx.send(AssistantEvent::Failed(error));
        Self {
            events,
            cancel: CancelHandle::new(),
            tool_results: Arc::default(),
            finished: false,
        }
    }
}

impl Iterator for AssistantAnswer {
    type Item = AssistantEvent;

    fn next(&mut self) -> Option<AssistantEvent> {
        if self.finished {
            return None;
        }
        let event = self
            .events
            .recv()
            .unwrap_or(AssistantEvent::Failed(EngineError::Shutdown.into()));
        if matches!(event, AssistantEvent::Done(_) | AssistantEvent::Failed(_)) {
            self.finished = true;
        }
        Some(event)
    }
}

impl Drop for AssistantAnswer {
    fn drop(&mut self) {
        if !self.finished {
            self.cancel.cancel();
        }
    }
}

/// Controls one answer started with [`Assistant::ask_into`] (or [`App::ask_into`]): cancel it,
/// ask whether its sink has had the last event, wait for that. Dropping the handle does not
/// cancel the answer.
///
/// [`App::ask_into`]: crate::app::App::ask_into
#[derive(Debug, Clone)]
pub struct AnswerHandle {
    cancel: CancelHandle,
    finished: Arc<Finished>,
    tool_results: Arc<ToolResults>,
}

impl AnswerHandle {
    /// Stops the answer: the model stops within a token and the sink gets `Done` with finish
    /// `cancelled`; before the model starts, it never speaks. Idempotent.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// The handle [`cancel`](Self::cancel) uses, to hand to other code.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Whether the sink has had its last event (or refused one) and the answer's thread is
    /// done with it.
    pub fn is_finished(&self) -> bool {
        self.finished.is_set()
    }

    /// Blocks until [`is_finished`](Self::is_finished), at most `timeout`; whether it is.
    pub fn wait(&self, timeout: Duration) -> bool {
        self.finished.wait(timeout)
    }

    /// Gives the result of the app's tool call `id` (from an [`AssistantEvent::ToolCall`]),
    /// from any thread, also from within the sink. The model goes on once every call of the
    /// round has its result. Cut to [`AssistantConfig::max_tool_result_bytes`].
    pub fn submit_tool_result(&self, id: &str, result: String) -> Result<(), AssistantError> {
        Ok(self.tool_results.submit(id, result)?)
    }
}

/// Where one answer's events go: the caller's sink until it refuses one, then nowhere (and the
/// answer is cancelled).
struct Emitter<S> {
    sink: S,
    open: bool,
    cancel: CancelHandle,
    /// Keeps a conversation from being saved mid-answer; released just before the last
    /// event, so a save made on `Done` sees the finished (and revised) history.
    answering: Option<AnswerGuard>,
}

impl<S: FnMut(AssistantEvent) -> bool> Emitter<S> {
    /// Sends `event`; whether the sink still listens.
    fn emit(&mut self, event: AssistantEvent) -> bool {
        if matches!(event, AssistantEvent::Done(_) | AssistantEvent::Failed(_)) {
            self.answering = None;
        }
        if self.open && !task::deliver(&mut self.sink, event) {
            tracing::debug!("the answer's sink refused an event; cancelling");
            self.open = false;
            self.cancel.cancel();
        }
        self.open
    }
}

/// Router + knowledge base + (optionally) a model.
#[derive(Debug, Clone)]
pub struct Assistant {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    kb: KnowledgeBase,
    router: Router,
    engine: Option<Engine>,
    config: AssistantConfig,
}

/// A multi-turn conversation: follow-ups ("explain it more simply") see the earlier turns, and
/// the model's KV cache is reused across them. Cloning shares the conversation.
#[derive(Debug, Clone)]
pub struct Conversation {
    assistant: Assistant,
    session: Option<Arc<ChatSession>>,
}

impl Conversation {
    /// Asks within this conversation.
    pub fn ask(&self, text: &str) -> AssistantAnswer {
        self.ask_with(text, &self.assistant.inner.config.params)
    }

    /// Asks within this conversation with these generation settings.
    pub fn ask_with(&self, text: &str, params: &GenerateParams) -> AssistantAnswer {
        self.assistant.answer(text, self.session.clone(), params)
    }

    /// Asks within this conversation, events to `sink` (see [`Assistant::ask_into`]).
    pub fn ask_into(
        &self,
        text: &str,
        params: &GenerateParams,
        sink: impl FnMut(AssistantEvent) -> bool + Send + 'static,
    ) -> Result<AnswerHandle, AssistantError> {
        self.assistant
            .start(text, self.session.clone(), params, sink)
    }

    /// The settings of the assistant this conversation belongs to.
    pub fn config(&self) -> &AssistantConfig {
        self.assistant.config()
    }

    /// The turns so far as the model sees them (empty without a model): questions with their
    /// quoted records, answers as the user was shown them.
    pub fn history(&self) -> Vec<Message> {
        self.session
            .as_ref()
            .map(|s| s.history())
            .unwrap_or_default()
    }

    /// Saves the conversation to `path` (atomically, owner-only, sealed with the session key
    /// of `keys`): its history and, when the model's cache still holds this conversation, the
    /// cache's KV state, so that [`Assistant::restore_conversation`] in a new process answers
    /// the next message without re-reading the history. Refused while an answer runs or waits
    /// for tool results, and without a model ([`SessionError::NoModel`]).
    pub fn save(
        &self,
        path: impl AsRef<Path>,
        keys: &dyn KeyProvider,
    ) -> Result<SavedSession, SessionError> {
        let session = self.session.as_ref().ok_or(SessionError::NoModel)?;
        sessions::save(session, path.as_ref(), keys)
    }
}

/// A conversation read back from a session file, and what the restore did.
#[derive(Debug, Clone)]
pub struct RestoredConversation {
    /// The conversation: its saved history (empty when the file could not be read).
    pub conversation: Conversation,
    /// Whether the KV state was loaded, and if not, why.
    pub outcome: RestoreOutcome,
}

impl Assistant {
    /// An assistant over `kb` and `router`, with a model if `engine` is given.
    pub fn new(
        kb: KnowledgeBase,
        router: Router,
        engine: Option<Engine>,
        config: AssistantConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                kb,
                router,
                engine,
                config,
            }),
        }
    }

    /// The knowledge base.
    pub fn knowledge(&self) -> &KnowledgeBase {
        &self.inner.kb
    }

    /// Whether a model is loaded.
    pub fn has_model(&self) -> bool {
        self.inner.engine.is_some()
    }

    /// A new conversation.
    pub fn conversation(&self) -> Conversation {
        let session = self
            .inner
            .engine
            .as_ref()
            .map(|e| Arc::new(e.session(Some(self.inner.config.system_prompt.clone()))));
        Conversation {
            assistant: self.clone(),
            session,
        }
    }

    /// Restores a conversation saved by [`Conversation::save`]. The file's MAC is checked
    /// before anything in it is used; a state saved by another llama.cpp release, model,
    /// context size, cache type, template or system prompt, or a damaged one, is not loaded
    /// and the conversation goes on from its history, which the next answer re-reads
    /// ([`RestoreOutcome::HistoryOnly`] says why). A file whose history cannot be read gives
    /// an empty conversation ([`RestoreOutcome::Empty`]); so does any file without a model.
    /// Errors: the file cannot be opened (missing included), or the key provider failed.
    pub fn restore_conversation(
        &self,
        path: impl AsRef<Path>,
        keys: &dyn KeyProvider,
    ) -> Result<RestoredConversation, SessionError> {
        let system = Some(self.inner.config.system_prompt.clone());
        let (session, outcome) =
            sessions::restore(path.as_ref(), keys, self.inner.engine.as_ref(), system)?;
        Ok(RestoredConversation {
            conversation: Conversation {
                assistant: self.clone(),
                session: session.map(Arc::new),
            },
            outcome,
        })
    }

    /// Answers one question (no history). Returns at once.
    pub fn ask(&self, text: &str) -> AssistantAnswer {
        self.answer(text, None, &self.inner.config.params)
    }

    /// Answers one question (no history) with these generation settings. Returns at once.
    pub fn ask_with(&self, text: &str, params: &GenerateParams) -> AssistantAnswer {
        self.answer(text, None, params)
    }

    /// Answers one question (no history) on a thread of its own, giving each event to `sink`
    /// in order: `Routed`, the cards, the model's tokens, then `Done` or `Failed`, after which
    /// nothing follows. The model's tokens reach `sink` straight from the engine's worker, with
    /// no thread between. A sink that returns `false` (or panics) gets nothing more and the
    /// answer is cancelled. Returns at once; an error only if no thread could be started.
    pub fn ask_into(
        &self,
        text: &str,
        params: &GenerateParams,
        sink: impl FnMut(AssistantEvent) -> bool + Send + 'static,
    ) -> Result<AnswerHandle, AssistantError> {
        self.start(text, None, params, sink)
    }

    /// The settings answers use by default.
    pub fn config(&self) -> &AssistantConfig {
        &self.inner.config
    }

    /// The router.
    pub fn router(&self) -> &Router {
        &self.inner.router
    }

    /// The model, if one is loaded.
    pub fn engine(&self) -> Option<&Engine> {
        self.inner.engine.as_ref()
    }

    /// [`start`](Self::start) into a channel that [`AssistantAnswer`] reads.
    fn answer(
        &self,
        text: &str,
        session: Option<Arc<ChatSession>>,
        params: &GenerateParams,
    ) -> AssistantAnswer {
        let (tx, events) = mpsc::channel();
        match self.start(text, session, params, move |event| tx.send(event).is_ok()) {
            Ok(handle) => AssistantAnswer {
                events,
                cancel: handle.cancel_handle(),
                tool_results: handle.tool_results,
                finished: false,
            },
            Err(e) => AssistantAnswer::failed(e),
        }
    }

    /// The one answer path: routes and answers on a new thread, events to `sink`.
    fn start(
        &self,
        text: &str,
        session: Option<Arc<ChatSession>>,
        params: &GenerateParams,
        sink: impl FnMut(AssistantEvent) -> bool + Send + 'static,
    ) -> Result<AnswerHandle, AssistantError> {
        let handle = AnswerHandle {
            cancel: CancelHandle::new(),
            finished: Arc::new(Finished::default()),
            tool_results: Arc::default(),
        };
        let assistant = self.clone();
        let (text, params) = (text.to_owned(), params.clone());
        let cancel = handle.cancel.clone();
        let tool_results = Arc::clone(&handle.tool_results);
        let finished = SetOnDrop(Arc::clone(&handle.finished));
        // Taken here, not on the new thread: a save right after this call is refused.
        let answering = session.as_ref().map(|s| s.answering());
        task::spawn("vazhi-answer", move || {
            let mut out = Emitter {
                sink,
                open: true,
                cancel: cancel.clone(),
                answering,
            };
            // Declared after `out`, so dropped before it: the handle says finished before the
            // sink is dropped (a channel sink's reader sees the flag set once it disconnects).
            let _finished = finished;
            let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let answering = Answering {
                    session: session.as_deref(),
                    params: &params,
                    cancel: &cancel,
                    tool_results: &tool_results,
                    task: None,
                };
                assistant.route_and_answer(&text, &answering, &mut out)
            }));
            let failure = match answered {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e,
                Err(panic) => AssistantError::Internal {
                    detail: crate::error_kind::panic_message(panic.as_ref()),
                },
            };
            out.emit(AssistantEvent::Failed(failure));
        })
        .map_err(AssistantError::Thread)?;
        Ok(handle)
    }

    fn route_and_answer(
        &self,
        text: &str,
        answering: &Answering<'_>,
        out: &mut Emitter<impl FnMut(AssistantEvent) -> bool>,
    ) -> Result<(), AssistantError> {
        let _span = tracing::info_span!("assistant_ask").entered();
        let Answering {
            session, params, ..
        } = *answering;
        let inner = &self.inner;
        let cards_wanted = inner.config.search_cards.max(inner.config.grounding_cards);
        // The router's probe is the search itself: what it finds is kept and shown, so a
        // question is searched once.
        let probed: RefCell<Option<(String, Retrieval)>> = RefCell::new(None);
        let failed: RefCell<Option<KnowledgeError>> = RefCell::new(None);
        let probe = |q: &str| match inner.kb.retrieve(q, cards_wanted, None) {
            Ok(found) => {
                let evidence = found.evidence();
                *probed.borrow_mut() = Some((q.to_owned(), found));
                evidence
            }
            Err(e) => {
                *failed.borrow_mut() = Some(e);
                None
            }
        };
        // Typos fixed against the packs' vocabulary first, so that rules read "kural 12" in
        // "kurl 12".
        let corrected = inner.kb.correct_spelling(text)?;
        let mut decision = inner.router.decide_corrected(text, &corrected, &probe);
        if let Some(e) = failed.into_inner() {
            return Err(e.into());
        }
        let probed = probed.into_inner();
        // Inside a conversation with a model, a question that only resembles some records
        // ("say it more simply") is a follow-up: answer it with the model, grounded on them.
        if session.is_some()
            && inner.engine.is_some()
            && decision.route == Route::Search
            && matches!(decision.reason, Reason::SearchScore { .. })
        {
            decision.route = Route::Hybrid;
        }
        // An answer that must follow a schema or grammar comes from the model, grounded on
        // what the knowledge base found: a record shown as it is would not parse.
        if params.constraint.is_some()
            && inner.engine.is_some()
            && matches!(decision.route, Route::Lookup | Route::Search)
        {
            decision.route = Route::Hybrid;
        }
        // With the app's own tools, a question that only resembles records goes to the model,
        // which may call them; an exact lookup is still answered from the data.
        if params.tools.iter().any(|t| !is_builtin(t))
            && inner.engine.is_some()
            && decision.route == Route::Search
        {
            decision.route = Route::Hybrid;
        }
        tracing::debug!(route = %decision.route, reason = %decision.reason, "routed");
        let task = decision
            .task
            .as_deref()
            .and_then(|name| inner.router.task(name));
        out.emit(AssistantEvent::Routed {
            route: decision.route,
            reason: decision.reason.clone(),
        });
        let exact = match (&decision.pack, &decision.key) {
            (Some(pack), Some(key)) if matches!(decision.route, Route::Lookup | Route::Hybrid) => {
                inner.kb.lookup(pack, key)?
            }
            _ => None,
        };
        // A rule's search may name a pack; the probe searched every pack.
        let search_pack = match decision.route {
            Route::Search => decision.pack.as_deref(),
            _ => None,
        };
        let retrieve = |limit: usize| -> Result<Retrieval, AssistantError> {
            match &probed {
                Some((q, found)) if *q == decision.query && search_pack.is_none() => {
                    let mut found = found.clone();
                    found.hits.truncate(limit);
                    Ok(found)
                }
                _ => Ok(inner.kb.retrieve(&decision.query, limit, search_pack)?),
            }
        };
        let search = |limit| -> Result<Vec<Card>, AssistantError> {
            Ok(retrieve(limit)?.hits.into_iter().map(|h| h.card).collect())
        };
        let summary = |cards, model_unavailable| AnswerSummary {
            route: decision.route,
            cards,
            text: String::new(),
            model_unavailable,
            metrics: None,
            finish: None,
            tool_calls: 0,
            unsupported_sentences: 0,
            task: decision.task.clone(),
        };
        let send_cards = |out: &mut Emitter<_>, cards: &[Card]| {
            for card in cards {
                out.emit(AssistantEvent::Card(card.clone()));
            }
        };
        match decision.route {
            Route::Lookup | Route::Search => {
                let cards = match exact {
                    Some(card) => vec![card],
                    None => search(inner.config.search_cards)?,
                };
                send_cards(out, &cards);
                // With a constraint this arm means no model: only a model writes that answer.
                let model_unavailable = params.constraint.is_some();
                out.emit(AssistantEvent::Done(summary(
                    cards.len(),
                    model_unavailable,
                )));
            }
            Route::Hybrid | Route::Generate => {
                let grounding = match (decision.route, exact) {
                    (Route::Hybrid, Some(card)) => vec![card],
                    (Route::Hybrid, None) => search(inner.config.grounding_cards)?,
                    // A rule sent it to the model: ground it on records the search is sure
                    // of. (Without a rule the router already weighed the search; a task's
                    // question is the input it judges, not a search.)
                    _ if probed.is_none() && inner.engine.is_some() && task.is_none() => {
                        let found = retrieve(inner.config.grounding_cards)?;
                        if found.confidence >= inner.router.search_threshold() {
                            found.hits.into_iter().map(|h| h.card).collect()
                        } else {
                            Vec::new()
                        }
                    }
                    _ => Vec::new(),
                };
                let n = grounding.len();
                send_cards(out, &grounding);
                let Some(engine) = &inner.engine else {
                    // No model: the best records are the answer (a task has none: its input
                    // is something to judge, not to look up).
                    let extra = if n == 0 && task.is_none() {
                        search(inner.config.search_cards)?
                    } else {
                        Vec::new()
                    };
                    send_cards(out, &extra);
                    out.emit(AssistantEvent::Done(summary(n + extra.len(), true)));
                    return Ok(());
                };
                // A task answers on its own, outside the conversation, with its own prompt and
                // settings.
                let task_params;
                let (params, session, system) = match task {
                    Some(t) => {
                        task_params = t.params(params);
                        (&task_params, None, t.system_prompt.clone())
                    }
                    None => (params, session, inner.config.system_prompt.clone()),
                };
                let answering = &Answering {
                    session,
                    params,
                    task,
                    ..*answering
                };
                let question = with_schema(text, params);
                let user = fit_prompt(engine, &question, &grounding, params.max_tokens as usize)?;
                // What the answer may state: the question, its records, the app's own system
                // prompt, and in a conversation the earlier questions with the records they
                // quoted and the tools' results (not earlier answers: an invented fact must not
                // vouch for itself).
                let mut evidence = Evidence::new(
                    [text, system.as_str()]
                        .into_iter()
                        .chain(grounding.iter().flat_map(|c| [c.title.as_str(), &c.body])),
                );
                evidence.add_record_numbers(grounding.len());
                if let Some(s) = session {
                    for message in s.history() {
                        if matches!(message.role, Role::User | Role::Tool) {
                            evidence.add(&message.content);
                        }
                    }
                }
                let conversation = vec![Message::system(system), Message::user(user.clone())];
                let first = match session {
                    Some(s) => s.send(&user, params.clone())?,
                    None => engine.generate(conversation.clone(), params.clone())?,
                };
                self.converse(
                    engine,
                    first,
                    conversation,
                    answering,
                    decision.route,
                    Checking::new(inner.config.fact_policy, params, evidence, n),
                    out,
                )?;
            }
        }
        Ok(())
    }
}

/// What one answer runs with, besides the question.
#[derive(Clone, Copy)]
struct Answering<'a> {
    session: Option<&'a ChatSession>,
    params: &'a GenerateParams,
    cancel: &'a CancelHandle,
    tool_results: &'a ToolResults,
    /// The task preset the answer is written with.
    task: Option<&'a Task>,
}

impl Assistant {
    /// Streams the model's answer, running tool rounds as long as it calls tools: `messages`
    /// is the conversation of a one-off answer (a session keeps its own).
    #[allow(clippy::too_many_arguments)]
    fn converse(
        &self,
        engine: &Engine,
        mut generation: Generation,
        mut messages: Vec<Message>,
        answering: &Answering<'_>,
        route: Route,
        mut checking: Checking,
        out: &mut Emitter<impl FnMut(AssistantEvent) -> bool>,
    ) -> Result<(), AssistantError> {
        let config = &self.inner.config;
        let mut params = answering.params.clone();
        let (mut calls_made, mut rounds) = (0u32, 0u32);
        loop {
            // Streamed here, on the answer's thread, straight from the engine's worker. The
            // worker sees the answer's cancel at its next check, even while it reads the
            // prompt and before any event comes back.
            let model_cancel = generation.cancel_handle();
            model_cancel.follow(answering.cancel);
            let mut finished = None;
            let mut events = generation;
            while let Some(event) = events.next() {
                let sent = match event {
                    Event::Token(t) => checking.text(t),
                    Event::Reasoning(t) => vec![AssistantEvent::Reasoning(t)],
                    Event::Done(a) => {
                        finished = Some(a);
                        break;
                    }
                    Event::Failed(e) => vec![AssistantEvent::Failed(e.into())],
                };
                if checking.stopped {
                    // The guard ends the answer here: the model stops, and its Done (of the
                    // cancel) is read below.
                    model_cancel.cancel();
                }
                if !sent.into_iter().all(|event| out.emit(event)) {
                    model_cancel.cancel();
                    let ended = events.by_ref().find_map(|e| match e {
                        Event::Done(a) => Some(a),
                        _ => None,
                    });
                    if let (Some(s), Some(a)) = (answering.session, ended) {
                        if !a.tool_calls.is_empty() {
                            // The model ended with calls before it saw the cancel: the session
                            // must not be left waiting for their results.
                            s.discard_tool_calls();
                        } else if let Some(shown) = checking.revised_text() {
                            s.revise_last_answer(&a.text, shown);
                        }
                    }
                    return Ok(());
                }
            }
            let Some(mut answer) = finished else {
                return Ok(());
            };
            // The round's last sentence goes out before any call does, or the answer ends.
            for event in checking.finish() {
                out.emit(event);
            }
            let more_rounds = answer.finish == FinishReason::ToolCalls
                && rounds < config.max_tool_rounds
                && !answering.cancel.is_cancelled()
                && !checking.stopped;
            if !more_rounds {
                let calls_dropped = answer.finish == FinishReason::ToolCalls;
                if calls_dropped {
                    // Calls that will not be run: no call stays in the history without its
                    // result (the whole turn leaves it).
                    if let Some(s) = answering.session {
                        s.discard_tool_calls();
                    }
                }
                // The guard stopped it (a cancel by the user stays a cancel).
                if checking.stopped && !answering.cancel.is_cancelled() {
                    answer.finish = FinishReason::Unsupported;
                }
                if let Some(shown) = checking.revised_text() {
                    if let (Some(s), false) = (answering.session, calls_dropped) {
                        s.revise_last_answer(&answer.text, shown);
                    }
                    answer.text = shown.to_owned();
                }
                if let Some(task) = answering.task {
                    for card in self.attachments(task, &answer)? {
                        checking.cards += 1;
                        out.emit(AssistantEvent::Card(card));
                    }
                }
                out.emit(AssistantEvent::Done(AnswerSummary {
                    route,
                    cards: checking.cards,
                    text: answer.text,
                    model_unavailable: false,
                    finish: Some(answer.finish),
                    metrics: Some(answer.metrics),
                    tool_calls: calls_made,
                    unsupported_sentences: checking.unsupported,
                    task: answering.task.map(|t| t.name.clone()),
                }));
                return Ok(());
            }
            rounds += 1;
            calls_made += u32::try_from(answer.tool_calls.len()).unwrap_or(u32::MAX);
            let _span = tracing::debug_span!("tool_round", round = rounds).entered();
            let ran = self.run_calls(&answer.tool_calls, answering, out, &mut checking);
            if !matches!(ran, Ok(Some(_))) {
                if let Some(s) = answering.session {
                    s.discard_tool_calls();
                }
            }
            let Some(results) = ran? else {
                // Cancelled while waiting: end as the model would have.
                out.emit(AssistantEvent::Done(AnswerSummary {
                    route,
                    cards: checking.cards,
                    text: checking.revised_text().unwrap_or(&answer.text).to_owned(),
                    model_unavailable: false,
                    finish: Some(FinishReason::Cancelled),
                    metrics: Some(answer.metrics),
                    tool_calls: calls_made,
                    unsupported_sentences: checking.unsupported,
                    task: answering.task.map(|t| t.name.clone()),
                }));
                return Ok(());
            };
            if rounds >= config.max_tool_rounds {
                // The last round: the model must now answer in words.
                params.tool_choice = ToolChoice::None;
            } else if params.tool_choice == ToolChoice::Required {
                // A required call was made; what follows is the model's choice.
                params.tool_choice = ToolChoice::Auto;
            }
            // The text before the calls, as the user saw it; the next round starts afresh.
            let round_text = checking.revised_text().map_or(answer.text, str::to_owned);
            checking.next_round();
            generation = match answering.session {
                Some(s) => s.send_tool_results(results, params.clone())?,
                None => {
                    messages.push(Message::assistant_calls(round_text, answer.tool_calls));
                    messages.extend(results);
                    engine.generate(messages.clone(), params.clone())?
                }
            };
        }
    }

    /// The cards `task` attaches for a complete answer, looked up by the code: the answer's
    /// JSON chooses which. A record missing from the installed packs is skipped (and logged).
    fn attachments(&self, task: &Task, answer: &Answer) -> Result<Vec<Card>, AssistantError> {
        if answer.finish != FinishReason::EndOfText {
            return Ok(Vec::new());
        }
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&answer.text) else {
            return Ok(Vec::new());
        };
        let mut cards = Vec::new();
        for (pack, key) in task.attachments(&value) {
            match self.inner.kb.lookup(pack, key)? {
                Some(card) => cards.push(card),
                None => tracing::warn!(task = %task.name, pack, key, "attached record not found"),
            }
        }
        Ok(cards)
    }

    /// Runs one round of calls: built-in ones here (their records go out as cards), the
    /// app's through [`AssistantEvent::ToolCall`] and the results it submits. `None` when the
    /// answer was cancelled meanwhile.
    fn run_calls(
        &self,
        calls: &[ToolCall],
        answering: &Answering<'_>,
        out: &mut Emitter<impl FnMut(AssistantEvent) -> bool>,
        checking: &mut Checking,
    ) -> Result<Option<Vec<Message>>, AssistantError> {
        let config = &self.inner.config;
        let builtin = |call: &ToolCall| {
            answering
                .params
                .tools
                .iter()
                .any(|t| t.name == call.name && is_builtin(t))
        };
        let app_ids: Vec<String> = calls
            .iter()
            .filter(|c| !builtin(c))
            .map(|c| c.id.clone())
            .collect();
        // Slots open before the calls go out: a sink may answer at once.
        answering.tool_results.open(&app_ids);
        let mut texts: Vec<Option<String>> = Vec::with_capacity(calls.len());
        for call in calls {
            let is_builtin = builtin(call);
            out.emit(AssistantEvent::ToolCall {
                call: call.clone(),
                builtin: is_builtin,
            });
            if is_builtin {
                let (found, text) = run_builtin(&self.inner.kb, call, config.search_cards)?;
                checking.cards += found.len();
                for card in found {
                    checking.add_evidence(&card.title);
                    checking.add_evidence(&card.body);
                    out.emit(AssistantEvent::Card(card));
                }
                texts.push(Some(text));
            } else {
                texts.push(None);
            }
        }
        let mut app_results = if app_ids.is_empty() {
            Vec::new()
        } else {
            match answering.tool_results.wait(
                &app_ids,
                answering.cancel,
                config.tool_result_timeout,
            ) {
                Waited::All(results) => results,
                Waited::Cancelled => return Ok(None),
                Waited::TimedOut(got) => {
                    let timeout = config.tool_result_timeout.as_secs();
                    tracing::warn!(
                        missing = got.iter().filter(|r| r.is_none()).count(),
                        "tool results timed out"
                    );
                    got.into_iter()
                        .map(|r| {
                            r.unwrap_or_else(|| {
                                serde_json::json!({
                                    "error": format!("the tool gave no result within {timeout} s")
                                })
                                .to_string()
                            })
                        })
                        .collect()
                }
            }
        }
        .into_iter();
        let results = calls
            .iter()
            .zip(texts)
            .map(|(call, text)| {
                let text = text.or_else(|| app_results.next()).unwrap_or_default();
                let text = if text.trim().is_empty() {
                    "(no result)".to_owned()
                } else {
                    text
                };
                let text = cap_result(text, config.max_tool_result_bytes);
                checking.add_evidence(&text);
                Message::tool_result(call, text)
            })
            .collect();
        Ok(Some(results))
    }
}

/// The fact guard as one answer applies it, with the count of cards the answer has sent.
struct Checking {
    /// `None`: the answer is not checked (policy `off`, or a JSON Schema or grammar answer).
    guard: Option<FactGuard>,
    policy: FactPolicy,
    /// Sentences found unsupported.
    unsupported: u32,
    /// The text of this round the user was sent.
    sent: String,
    /// Whether a sentence of this round was left out ([`FactPolicy::Drop`],
    /// [`FactPolicy::Stop`]).
    left_out: bool,
    /// The guard stopped the answer ([`FactPolicy::Stop`]): nothing more is sent.
    stopped: bool,
    /// Cards sent so far.
    cards: usize,
}

impl Checking {
    fn new(policy: FactPolicy, params: &GenerateParams, evidence: Evidence, cards: usize) -> Self {
        let checked = policy != FactPolicy::Off && params.constraint.is_none();
        Self {
            guard: checked.then(|| FactGuard::new(evidence)),
            policy,
            unsupported: 0,
            sent: String::new(),
            left_out: false,
            stopped: false,
            cards,
        }
    }

    /// Adds a card's text or a tool's result to what the answer may state.
    fn add_evidence(&mut self, text: &str) {
        if let Some(guard) = self.guard.as_mut() {
            guard.add_evidence(text);
        }
    }

    /// The events for the model's `text`: itself when unchecked; else the sentences it
    /// completes, as the policy wants them.
    fn text(&mut self, text: String) -> Vec<AssistantEvent> {
        match self.guard.as_mut() {
            None => {
                self.sent.push_str(&text);
                vec![AssistantEvent::Token {
                    text,
                    unsupported: false,
                }]
            }
            Some(guard) => {
                let sentences = guard.push(&text);
                self.apply(sentences)
            }
        }
    }

    /// The events for the sentence still held back, at the answer's end.
    fn finish(&mut self) -> Vec<AssistantEvent> {
        let last = self.guard.as_mut().and_then(FactGuard::finish);
        self.apply(last.into_iter().collect())
    }

    fn apply(&mut self, sentences: Vec<CheckedSentence>) -> Vec<AssistantEvent> {
        let mut events = Vec::new();
        for sentence in sentences {
            if self.stopped {
                break;
            }
            let unsupported = !sentence.unsupported.is_empty();
            if unsupported {
                self.unsupported += 1;
                match self.policy {
                    FactPolicy::Drop => {
                        self.left_out = true;
                        continue;
                    }
                    FactPolicy::Stop => {
                        self.left_out = true;
                        self.stopped = true;
                        break;
                    }
                    FactPolicy::Off | FactPolicy::Mark => {}
                }
            }
            self.sent.push_str(&sentence.text);
            events.push(AssistantEvent::Token {
                text: sentence.text,
                unsupported,
            });
        }
        events
    }

    /// This round's text as the user saw it, when that is not the model's (a sentence was
    /// left out).
    fn revised_text(&self) -> Option<&str> {
        self.left_out.then_some(self.sent.as_str())
    }

    /// After a round of tool calls: the model's next text is checked and shown afresh.
    fn next_round(&mut self) {
        self.sent.clear();
        self.left_out = false;
    }
}

/// Largest schema (compact JSON, bytes) written into the prompt; a bigger one is enforced by
/// the grammar alone rather than crowding out the question and its records.
const MAX_SCHEMA_IN_PROMPT: usize = 4096;

/// The question, followed by the JSON Schema its answer must follow (compacted): the grammar
/// enforces the form, the schema in the prompt tells the model what the fields are for.
fn with_schema<'a>(text: &'a str, params: &GenerateParams) -> std::borrow::Cow<'a, str> {
    let Some(OutputConstraint::JsonSchema(schema)) = &params.constraint else {
        return text.into();
    };
    let compact = serde_json::from_str::<serde_json::Value>(schema)
        .map_or_else(|_| schema.clone(), |v| v.to_string());
    if compact.len() > MAX_SCHEMA_IN_PROMPT {
        return text.into();
    }
    format!("{text}\n\nAnswer with JSON that follows this schema:\n{compact}").into()
}
