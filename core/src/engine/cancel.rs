//! Cancellation that works from any thread and takes effect within one token.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// A cheap, clonable switch; the worker checks it before every token and between prompt
/// chunks.
#[derive(Debug, Clone, Default)]
pub struct CancelHandle(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    /// Another handle whose cancel also cancels this one (see [`CancelHandle::follow`]).
    leader: OnceLock<CancelHandle>,
}

/// Longest chain of [`CancelHandle::follow`] links looked through.
const MAX_FOLLOW_DEPTH: usize = 8;

impl CancelHandle {
    /// A handle that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests cancellation. Idempotent.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Release);
    }

    /// Whether cancellation was requested, on this handle or on the one it follows.
    pub fn is_cancelled(&self) -> bool {
        let mut handle = self;
        for _ in 0..MAX_FOLLOW_DEPTH {
            if handle.0.cancelled.load(Ordering::Acquire) {
                return true;
            }
            match handle.0.leader.get() {
                Some(next) => handle = next,
                None => return false,
            }
        }
        false
    }

    /// Makes this handle cancelled whenever `leader` is, from now on and at once, without a
    /// thread to pass the request on: the worker sees the leader's cancel at its next check.
    /// A handle follows at most one other; returns `false` (and changes nothing) when this one
    /// already follows another or `leader` is this handle.
    pub fn follow(&self, leader: &CancelHandle) -> bool {
        !Arc::ptr_eq(&self.0, &leader.0) && self.0.leader.set(leader.clone()).is_ok()
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
    fn a_follower_is_cancelled_with_its_leader_but_not_the_other_way() {
        let leader = CancelHandle::new();
        let follower = CancelHandle::new();
        assert!(follower.follow(&leader));
        assert!(!follower.follow(&CancelHandle::new()), "one leader only");
        assert!(!leader.follow(&leader));
        assert!(!follower.is_cancelled());
        leader.cancel();
        assert!(follower.is_cancelled());
        let other = CancelHandle::new();
        let led = CancelHandle::new();
        assert!(other.follow(&led));
        other.cancel();
        assert!(!led.is_cancelled());
    }

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
