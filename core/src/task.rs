//! What the sink-style calls ([`App::ask_into`](crate::app::App::ask_into),
//! [`Models::start_download`](crate::app::Models::start_download)) share: a one-way "done" flag
//! that can be waited for, a sink call that a panic cannot unwind through, and the task thread.
//! The bindings only adapt events; the threads and their bookkeeping live here, once.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

/// A one-way "done" flag that can be waited for: set after a task's sink has had its last
/// event.
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

    /// Waits until done or `timeout` passed; whether it is done.
    pub fn wait(&self, timeout: Duration) -> bool {
        let guard = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |done| !*done)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

/// Sets its [`Finished`] when dropped: the flag is set however the task's thread ends, a panic
/// included.
pub(crate) struct SetOnDrop(pub(crate) std::sync::Arc<Finished>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// Gives `event` to `sink`; whether the sink wants more. A sink that panics (a binding's
/// listener that threw, surfaced as a panic) wants nothing more: the panic stops here.
pub(crate) fn deliver<E>(sink: &mut impl FnMut(E) -> bool, event: E) -> bool {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(event))) {
        Ok(more) => more,
        Err(panic) => {
            tracing::warn!(
                panic = %crate::error_kind::panic_message(panic.as_ref()),
                "a sink panicked; the task was stopped"
            );
            false
        }
    }
}

/// Starts `work` on a named thread; the error if the operating system would not start one.
/// The thread logs to the caller's `tracing` subscriber, inside the caller's current span, so
/// that a task's spans belong to whoever started it (a thread-scoped subscriber included).
pub(crate) fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    let dispatch = tracing::dispatcher::get_default(tracing::Dispatch::clone);
    let parent = tracing::Span::current();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || parent.in_scope(work));
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn finished_wakes_a_waiter_and_times_out_when_unset() {
        let finished = Arc::new(Finished::default());
        assert!(!finished.wait(Duration::from_millis(10)));
        let setter = Arc::clone(&finished);
        let t = std::thread::spawn(move || drop(SetOnDrop(setter)));
        assert!(finished.wait(Duration::from_secs(10)));
        assert!(finished.is_set());
        t.join().unwrap();
    }

    #[test]
    fn a_panicking_sink_stops_the_task_instead_of_unwinding() {
        let mut calls = 0;
        let mut sink = |n: u32| {
            calls += 1;
            assert!(n < 2, "the listener threw");
            true
        };
        assert!(deliver(&mut sink, 1));
        assert!(!deliver(&mut sink, 2));
        assert_eq!(calls, 2);
    }
}
