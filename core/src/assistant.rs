//! The assistant: one question in, events out — routed, cards from the data, tokens from the
//! model.
//!
//! [`Assistant::ask`] routes the question ([`Router`]), answers exact questions from the
//! knowledge base verbatim ([`Card`]s), and sends open questions to the model — grounded on the
//! retrieved records for Hybrid. It returns at once with an [`AssistantAnswer`] stream. Without
//! a model, Lookup and Search still answer, and Generate/Hybrid answer with the best records as
//! cards and a `Done` marked `model_unavailable`: a normal answer, not an error.

use std::cell::RefCell;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use serde::Serialize;

use crate::engine::{
    CancelHandle, ChatSession, Engine, EngineError, Event, FinishReason, GenerateParams, Message,
    Metrics,
};
use crate::grounding::fit_prompt;
use crate::knowledge::{Card, KnowledgeBase, KnowledgeError, Retrieval};
use crate::router::{Reason, Route, Router};

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
    /// Model text (whole characters).
    Token(String),
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
}

/// A streaming answer; iterate it for events. Dropping it cancels the model's part.
#[derive(Debug)]
pub struct AssistantAnswer {
    events: Receiver<AssistantEvent>,
    cancel: CancelHandle,
    finished: bool,
}

impl AssistantAnswer {
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
/// the model's KV cache is reused across them.
#[derive(Debug)]
pub struct Conversation {
    assistant: Assistant,
    session: Option<ChatSession>,
}

impl Conversation {
    /// Asks within this conversation.
    pub fn ask(&self, text: &str) -> AssistantAnswer {
        self.ask_with(text, &self.assistant.inner.config.params)
    }

    /// Asks within this conversation with these generation settings.
    pub fn ask_with(&self, text: &str, params: &GenerateParams) -> AssistantAnswer {
        self.assistant.answer(text, self.session.as_ref(), params)
    }
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
            .map(|e| e.session(Some(self.inner.config.system_prompt.clone())));
        Conversation {
            assistant: self.clone(),
            session,
        }
    }

    /// Answers one question (no history). Returns at once.
    pub fn ask(&self, text: &str) -> AssistantAnswer {
        self.answer(text, None, &self.inner.config.params)
    }

    /// Answers one question (no history) with these generation settings. Returns at once.
    pub fn ask_with(&self, text: &str, params: &GenerateParams) -> AssistantAnswer {
        self.answer(text, None, params)
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

    fn answer(
        &self,
        text: &str,
        session: Option<&ChatSession>,
        params: &GenerateParams,
    ) -> AssistantAnswer {
        let (tx, rx) = mpsc::channel();
        let cancel = CancelHandle::new();
        // The knowledge-base part is fast and runs here; the model part streams from the
        // engine's worker through a forwarding thread.
        if let Err(e) = self.route_and_answer(text, session, params, &tx, &cancel) {
            let _ = tx.send(AssistantEvent::Failed(e));
        }
        AssistantAnswer {
            events: rx,
            cancel,
            finished: false,
        }
    }

    fn route_and_answer(
        &self,
        text: &str,
        session: Option<&ChatSession>,
        params: &GenerateParams,
        tx: &Sender<AssistantEvent>,
        cancel: &CancelHandle,
    ) -> Result<(), AssistantError> {
        let _span = tracing::info_span!("assistant_ask").entered();
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
        tracing::debug!(route = %decision.route, reason = %decision.reason, "routed");
        let _ = tx.send(AssistantEvent::Routed {
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
        };
        let send_cards = |cards: &[Card]| {
            cards
                .iter()
                .for_each(|c| drop(tx.send(AssistantEvent::Card(c.clone()))));
        };
        match decision.route {
            Route::Lookup | Route::Search => {
                let cards = match exact {
                    Some(card) => vec![card],
                    None => search(inner.config.search_cards)?,
                };
                send_cards(&cards);
                let _ = tx.send(AssistantEvent::Done(summary(cards.len(), false)));
            }
            Route::Hybrid | Route::Generate => {
                let grounding = match (decision.route, exact) {
                    (Route::Hybrid, Some(card)) => vec![card],
                    (Route::Hybrid, None) => search(inner.config.grounding_cards)?,
                    // A rule sent it to the model: ground it on records the search is sure
                    // of. (Without a rule the router already weighed the search.)
                    _ if probed.is_none() && inner.engine.is_some() => {
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
                send_cards(&grounding);
                let Some(engine) = &inner.engine else {
                    // No model: the best records are the answer.
                    let extra = if n == 0 {
                        search(inner.config.search_cards)?
                    } else {
                        Vec::new()
                    };
                    send_cards(&extra);
                    let _ = tx.send(AssistantEvent::Done(summary(n + extra.len(), true)));
                    return Ok(());
                };
                let user = fit_prompt(engine, text, &grounding, params.max_tokens as usize)?;
                let generation = match session {
                    Some(s) => s.send(&user, params.clone())?,
                    None => engine.generate(
                        vec![
                            Message::system(inner.config.system_prompt.clone()),
                            Message::user(user),
                        ],
                        params.clone(),
                    )?,
                };
                forward(generation, tx.clone(), cancel.clone(), decision.route, n);
            }
        }
        Ok(())
    }
}

/// Forwards the model's events on a small thread, so `ask` returns at once.
fn forward(
    generation: crate::engine::Generation,
    tx: Sender<AssistantEvent>,
    cancel: CancelHandle,
    route: Route,
    cards: usize,
) {
    let model_cancel = generation.cancel_handle();
    // The worker sees the answer's cancel at its next check, even while it reads the prompt
    // and before any event comes back.
    model_cancel.follow(&cancel);
    let spawned = std::thread::Builder::new()
        .name("vazhi-answer".into())
        .spawn(move || {
            for event in generation {
                if cancel.is_cancelled() {
                    model_cancel.cancel();
                }
                let out = match event {
                    Event::Token(t) => AssistantEvent::Token(t),
                    Event::Done(a) => AssistantEvent::Done(AnswerSummary {
                        route,
                        cards,
                        text: a.text,
                        model_unavailable: false,
                        finish: Some(a.finish),
                        metrics: Some(a.metrics),
                    }),
                    Event::Failed(e) => AssistantEvent::Failed(e.into()),
                };
                if tx.send(out).is_err() {
                    model_cancel.cancel();
                }
            }
        });
    if spawned.is_err() {
        tracing::error!("could not start the answer thread");
    }
}
