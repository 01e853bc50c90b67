//! Where an app's tool results wait for the answer that asked for them.
//!
//! The answer's thread opens a slot for each call it hands to the app, then waits; the app
//! fills the slots from any thread ([`AnswerHandle::submit_tool_result`]), before or after the
//! `ToolCall` event has returned. A cancel or the deadline ends the wait.
//!
//! [`AnswerHandle::submit_tool_result`]: crate::assistant::AnswerHandle::submit_tool_result

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::engine::CancelHandle;

/// Why a tool result was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolResultError {
    /// No call with this id is waiting for a result (never made, already answered, or the
    /// answer has moved on).
    #[error("no tool call {id:?} is waiting for a result")]
    NotWaiting {
        /// The id given.
        id: String,
    },
}

/// How a wait for results ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// Every result, in the order the ids were opened.
    All(Vec<String>),
    /// The answer was cancelled.
    Cancelled,
    /// The deadline passed: the results that came, in the order the ids were opened, `None`
    /// where none did.
    TimedOut(Vec<Option<String>>),
}

/// Open slots and their results.
#[derive(Debug, Default)]
pub(crate) struct ToolResults {
    slots: Mutex<HashMap<String, Option<String>>>,
    filled: Condvar,
}

impl ToolResults {
    /// Opens a slot for each of `ids` (forgetting older ones).
    pub(crate) fn open(&self, ids: &[String]) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.clear();
        slots.extend(ids.iter().map(|id| (id.clone(), None)));
    }

    /// Fills the slot `id`.
    pub(crate) fn submit(&self, id: &str, result: String) -> Result<(), ToolResultError> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        match slots.get_mut(id) {
            Some(slot @ None) => {
                *slot = Some(result);
                self.filled.notify_all();
                Ok(())
            }
            _ => Err(ToolResultError::NotWaiting { id: id.to_owned() }),
        }
    }

    /// Waits until every slot of `ids` is filled, `cancel` fires or `timeout` passes; the
    /// slots are closed when it returns.
    pub(crate) fn wait(&self, ids: &[String], cancel: &CancelHandle, timeout: Duration) -> Waited {
        let deadline = Instant::now() + timeout;
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let outcome = loop {
            if cancel.is_cancelled() {
                break Waited::Cancelled;
            }
            let missing: Vec<String> = ids
                .iter()
                .filter(|id| !matches!(slots.get(*id), Some(Some(_))))
                .cloned()
                .collect();
            if missing.is_empty() {
                break Waited::All(
                    ids.iter()
                        .map(|id| slots.get(id).cloned().flatten().unwrap_or_default())
                        .collect(),
                );
            }
            let now = Instant::now();
            if now >= deadline {
                break Waited::TimedOut(
                    ids.iter()
                        .map(|id| slots.get(id).cloned().flatten())
                        .collect(),
                );
            }
            // Short waits: a cancel does not notify this condition variable.
            let step = (deadline - now).min(Duration::from_millis(50));
            slots = self
                .filled
                .wait_timeout(slots, step)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        slots.clear();
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_arrive_from_another_thread_in_call_order() {
        let results = std::sync::Arc::new(ToolResults::default());
        let ids = vec!["call_1".to_owned(), "call_2".to_owned()];
        results.open(&ids);
        assert!(results.submit("call_9", "x".into()).is_err());
        let r = results.clone();
        let filler = std::thread::spawn(move || {
            r.submit("call_2", "two".into()).unwrap();
            r.submit("call_1", "one".into()).unwrap();
            // A slot takes one result.
            assert!(r.submit("call_1", "again".into()).is_err());
        });
        let got = results.wait(&ids, &CancelHandle::new(), Duration::from_secs(10));
        filler.join().unwrap();
        assert_eq!(got, Waited::All(vec!["one".into(), "two".into()]));
        // Closed once waited for.
        assert!(results.submit("call_1", "late".into()).is_err());
    }

    #[test]
    fn cancel_and_timeout_end_the_wait() {
        let results = ToolResults::default();
        let ids = vec!["call_1".to_owned(), "call_2".to_owned()];
        results.open(&ids);
        let cancel = CancelHandle::new();
        cancel.cancel();
        assert_eq!(
            results.wait(&ids, &cancel, Duration::from_secs(10)),
            Waited::Cancelled
        );
        results.open(&ids);
        results.submit("call_2", "two".into()).unwrap();
        assert_eq!(
            results.wait(&ids, &CancelHandle::new(), Duration::from_millis(20)),
            Waited::TimedOut(vec![None, Some("two".into())])
        );
    }
}
