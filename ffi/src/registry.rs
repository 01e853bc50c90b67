//! Counts live exported objects, so binding tests can prove that closing objects frees them.

use std::sync::atomic::{AtomicU64, Ordering};

static LIVE: AtomicU64 = AtomicU64::new(0);

/// A token held by every exported object; counts it while alive.
#[derive(Debug)]
pub struct Live(());

impl Live {
    /// Counts one more live object.
    pub fn new() -> Self {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Self(())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Live exported objects.
#[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
pub fn live() -> u64 {
    LIVE.load(Ordering::SeqCst)
}
