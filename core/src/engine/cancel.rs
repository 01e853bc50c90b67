//! Cancellation that works from any thread and takes effect within one token.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A cheap, clonable switch; the worker checks it before every token.
#[derive(Debug, Clone, Default)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    /// A handle that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the generation to stop; returns at once.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A cancel switch that exists before the answer it stops: a binding hands it to the app at
/// once, and attaches the answer's [`CancelHandle`] when the answer starts on another thread.
/// Cancelling it cancels every handle attached, before or after the call.
#[derive(Debug, Default)]
pub struct CancelRelay {
    cancelled: AtomicBool,
    attached: std::sync::Mutex<Vec<CancelHandle>>,
}

impl CancelRelay {
    /// A relay that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the attached handles and any attached later (idempotent).
    pub fn cancel(&self) {
        let attached = self
            .attached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.cancelled.store(true, Ordering::SeqCst);
        attached.iter().for_each(CancelHandle::cancel);
    }

    /// Attaches `handle`; cancels it at once if the relay was already cancelled.
    pub fn attach(&self, handle: CancelHandle) {
        let mut attached = self
            .attached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.cancelled.load(Ordering::SeqCst) {
            handle.cancel();
        }
        attached.push(handle);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_cancels_handles_attached_before_and_after() {
        let relay = CancelRelay::new();
        let early = CancelHandle::new();
        relay.attach(early.clone());
        assert!(!early.is_cancelled());
        relay.cancel();
        assert!(early.is_cancelled());
        let late = CancelHandle::new();
        relay.attach(late.clone());
        assert!(late.is_cancelled() && relay.is_cancelled());
    }
}
