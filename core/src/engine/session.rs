//! Multi-turn conversations over one engine.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::error::EngineError;
use super::message::{Message, Role};
use super::params::GenerateParams;
use super::worker::{KvSnapshot, SessionLink};
use super::{Engine, Generation};

/// Ids for [`SessionLink::id`], unique in the process.
static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(1);

/// A conversation's text and, when the engine's cache still holds it, its KV state.
#[derive(Debug)]
pub(crate) struct SessionSnapshot {
    pub system: Option<String>,
    pub history: Vec<Message>,
    pub kv: Option<KvSnapshot>,
}

/// A conversation: a system prompt plus the turns so far.
///
/// Each [`send`](Self::send) renders the whole conversation with the model's template; the
/// engine re-evaluates only the part its KV cache does not already hold. When the history
/// outgrows the context, the oldest turns are left out of the prompt (the system prompt and the
/// newest message always stay), and the answer's metrics say how many.
#[derive(Debug)]
pub struct ChatSession {
    engine: Engine,
    system: Option<String>,
    link: SessionLink,
    /// Answers of callers above the engine under way ([`ChatSession::answering`]).
    answering: Arc<AtomicUsize>,
}

/// Held while a caller above the engine answers in this session; see
/// [`ChatSession::answering`].
#[derive(Debug)]
pub(crate) struct AnswerGuard(Arc<AtomicUsize>);

impl Drop for AnswerGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ChatSession {
    pub(crate) fn new(engine: Engine, system: Option<String>) -> Self {
        Self::with_history(engine, system, Vec::new())
    }

    /// A conversation that goes on from `history` (a restored one).
    pub(crate) fn with_history(
        engine: Engine,
        system: Option<String>,
        history: Vec<Message>,
    ) -> Self {
        Self {
            engine,
            system,
            link: SessionLink {
                id: Arc::new(AtomicU64::new(
                    NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed),
                )),
                history: Arc::new(Mutex::new(history)),
                in_flight: Arc::new(AtomicBool::new(false)),
            },
            answering: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The engine this conversation runs on.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The history and, if the engine's cache is still this conversation's, its KV state
    /// (`None` also when the engine is gone: the history alone is still worth keeping).
    /// Refused (as [`send`](Self::send) is) while an answer runs or tool results are awaited,
    /// and while an [`AnswerGuard`] is held. Checked under the history lock (`send` marks
    /// the session busy before it takes the lock), so the history never ends in a question
    /// whose answer is under way; the state is asked for under the same lock, so the worker
    /// takes it before the answer to any message sent afterwards.
    pub(crate) fn snapshot(&self) -> Result<SessionSnapshot, EngineError> {
        let (history, pending) = {
            let history = self
                .link
                .history
                .lock()
                .map_err(|_| EngineError::Shutdown)?;
            if self.link.in_flight.load(Ordering::Acquire)
                || self.answering.load(Ordering::Acquire) > 0
            {
                drop(history);
                return Err(EngineError::InvalidParams(self.busy_reason().into()));
            }
            let mut saved = history.clone();
            // Never a question without its answer (a restored history must alternate).
            take_back_unfinished_turn(&mut saved);
            (saved, self.engine.request_state(self.current_id()))
        };
        let kv = match pending.and_then(|reply| reply.recv().map_err(|_| EngineError::Shutdown)?) {
            Ok(kv) => kv,
            Err(EngineError::Shutdown) => None,
            Err(e) => {
                tracing::warn!(error = %e, "the KV state could not be taken; saving the history only");
                None
            }
        };
        Ok(SessionSnapshot {
            system: self.system.clone(),
            history,
            kv,
        })
    }

    /// Marks an answer of a caller above the engine (the assistant: routing before the model,
    /// revising the history after it) as under way until the guard is dropped: no
    /// [`snapshot`](Self::snapshot) meanwhile.
    pub(crate) fn answering(&self) -> AnswerGuard {
        self.answering.fetch_add(1, Ordering::AcqRel);
        AnswerGuard(Arc::clone(&self.answering))
    }

    /// This conversation's id for the worker (a new one after [`clear`](Self::clear)).
    fn current_id(&self) -> u64 {
        self.link.id.load(Ordering::Acquire)
    }

    /// Loads a saved KV state into the engine's cache as this conversation's.
    pub(crate) fn load_kv(&self, snapshot: KvSnapshot) -> Result<(), EngineError> {
        self.engine.load_state(self.current_id(), snapshot)
    }

    /// Sends a user message; returns at once with the streaming answer. When the answer ends
    /// the history holds the message and the reply (a failed or empty answer leaves the history
    /// as it was). One answer at a time per session: a second `send` before the first has
    /// ended fails with [`EngineError::InvalidParams`], and so does one after an answer that
    /// called tools, until their results are sent ([`send_tool_results`](Self::send_tool_results))
    /// or the calls discarded ([`discard_tool_calls`](Self::discard_tool_calls)).
    pub fn send(&self, text: &str, params: GenerateParams) -> Result<Generation, EngineError> {
        self.engine.check_prompt(text)?;
        if self.link.in_flight.swap(true, Ordering::AcqRel) {
            return Err(EngineError::InvalidParams(self.busy_reason().into()));
        }
        let messages = {
            let Ok(mut history) = self.link.history.lock() else {
                self.link.in_flight.store(false, Ordering::Release);
                return Err(EngineError::Shutdown);
            };
            history.push(Message::user(text));
            self.system
                .iter()
                .map(|s| Message::system(s.clone()))
                .chain(history.iter().cloned())
                .collect()
        };
        self.engine
            .submit(messages, params, Some(self.link.clone()))
            .inspect_err(|_| {
                if let Ok(mut history) = self.link.history.lock() {
                    history.pop();
                }
                self.link.in_flight.store(false, Ordering::Release);
            })
    }

    /// Continues after an answer that ended with tool calls: `results` (one
    /// [`Message::tool_result`] per call) join the history and the model answers again, with
    /// the same tools in `params` (or none, to make it answer in words). Refused unless the
    /// session is waiting for the results of its last turn's calls.
    pub fn send_tool_results(
        &self,
        results: Vec<Message>,
        params: GenerateParams,
    ) -> Result<Generation, EngineError> {
        if results.is_empty() || results.iter().any(|m| m.role != Role::Tool) {
            return Err(EngineError::InvalidParams(
                "tool results must be one or more messages of role `tool`".into(),
            ));
        }
        if let Some(big) = results
            .iter()
            .find(|m| m.content.len() > self.engine.max_prompt_bytes())
        {
            return Err(EngineError::PromptTooLarge {
                bytes: big.content.len(),
                max: self.engine.max_prompt_bytes(),
            });
        }
        let (messages, added) = {
            let Ok(mut history) = self.link.history.lock() else {
                return Err(EngineError::Shutdown);
            };
            // Waiting for results: the session is held and its last turn is the calls. (The
            // history lock makes a second, concurrent call see the results already added.)
            if !self.link.in_flight.load(Ordering::Acquire)
                || history.last().is_none_or(|m| m.tool_calls.is_empty())
            {
                return Err(EngineError::InvalidParams(
                    "this session is not waiting for tool results".into(),
                ));
            }
            let added = results.len();
            history.extend(results);
            let messages: Vec<Message> = self
                .system
                .iter()
                .map(|s| Message::system(s.clone()))
                .chain(history.iter().cloned())
                .collect();
            (messages, added)
        };
        self.engine
            .submit(messages, params, Some(self.link.clone()))
            .inspect_err(|_| {
                // Still waiting for (valid) results, or for the calls to be discarded.
                if let Ok(mut history) = self.link.history.lock() {
                    let keep = history.len().saturating_sub(added);
                    history.truncate(keep);
                }
            })
    }

    /// Gives up on the tool calls the last answer made: the turn (its user message and the
    /// calls) leaves the history, and the session takes new messages again. No-op unless the
    /// session is waiting for tool results.
    pub fn discard_tool_calls(&self) {
        if let Ok(mut history) = self.link.history.lock() {
            let waiting = self.link.in_flight.load(Ordering::Acquire)
                && history.last().is_some_and(|m| !m.tool_calls.is_empty());
            if waiting {
                take_back_unfinished_turn(&mut history);
                self.link.in_flight.store(false, Ordering::Release);
            }
        }
    }

    /// Replaces the last answer in the history, `written` as the model wrote it, with `shown`:
    /// the part of it the user was shown (the assistant's fact guard can leave sentences out,
    /// and the next turn must not build on them). An empty `shown` takes the whole turn back.
    /// No-op unless the history still ends with that answer.
    pub fn revise_last_answer(&self, written: &str, shown: &str) {
        if let Ok(mut history) = self.link.history.lock() {
            let Some(last) = history.last_mut() else {
                return;
            };
            if last.role != Role::Assistant
                || !last.tool_calls.is_empty()
                || last.content != written
            {
                return;
            }
            let text = shown;
            if text.trim().is_empty() {
                history.pop();
                take_back_unfinished_turn(&mut history);
            } else {
                last.content = text.to_owned();
            }
        }
    }

    /// Why the session refuses a new message now.
    fn busy_reason(&self) -> &'static str {
        let waiting = self
            .link
            .history
            .lock()
            .is_ok_and(|h| h.last().is_some_and(|m| !m.tool_calls.is_empty()));
        if waiting {
            "the last answer called tools: send their results or discard the calls first"
        } else {
            "this session is still answering; wait for it or cancel it first"
        }
    }

    /// The turns so far (without the system prompt).
    pub fn history(&self) -> Vec<Message> {
        self.link
            .history
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    /// The system prompt.
    pub fn system_prompt(&self) -> Option<&str> {
        self.system.as_deref()
    }

    /// Forgets all turns. Refused while an answer is running (its reply would land in the
    /// emptied history without the question that led to it) or waits for tool results; cancel,
    /// wait, or discard the calls first.
    pub fn clear(&self) -> Result<(), EngineError> {
        if self.link.in_flight.load(Ordering::Acquire) {
            return Err(EngineError::InvalidParams(
                "this session is still answering; wait for it or cancel it first".into(),
            ));
        }
        if let Ok(mut history) = self.link.history.lock() {
            history.clear();
            // The cache holds the forgotten turns: no longer this conversation's to save.
            self.link.id.store(
                NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed),
                Ordering::Release,
            );
        }
        Ok(())
    }
}

/// Removes the last turn if it is unfinished: its user message and whatever followed it, when
/// that is only tool calls and results (or nothing).
pub(crate) fn take_back_unfinished_turn(history: &mut Vec<Message>) {
    if let Some(user) = history.iter().rposition(|m| m.role == Role::User) {
        if history[user + 1..]
            .iter()
            .all(|m| m.role == Role::Tool || !m.tool_calls.is_empty())
        {
            history.truncate(user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ToolCall;

    #[test]
    fn an_unfinished_turn_is_taken_back_whole() {
        let call = ToolCall {
            id: "call_1".into(),
            name: "search".into(),
            arguments: serde_json::json!({}),
        };
        let done = vec![Message::user("a"), Message::assistant("b")];
        let mut history = done.clone();
        history.push(Message::user("c"));
        history.push(Message::assistant_calls("", vec![call.clone()]));
        history.push(Message::tool_result(&call, "r"));
        take_back_unfinished_turn(&mut history);
        assert_eq!(history, done);
        // A finished turn stays.
        take_back_unfinished_turn(&mut history);
        assert_eq!(history, done);
    }
}
