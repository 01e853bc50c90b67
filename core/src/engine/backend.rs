//! The process-wide llama.cpp backend and the guards around model loading.
//!
//! llama.cpp's backend may be initialised once per process, so it lives in a `OnceLock`.
//! Loads are serialised: a second load while one is running gets
//! [`EngineError::LoadInProgress`] instead of racing llama.cpp's global state. Every call into
//! llama.cpp's loader is counted, which lets tests prove that a rejected file never reached it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use llama_cpp_2::llama_backend::LlamaBackend;

use super::error::EngineError;

static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
static LOADING: AtomicBool = AtomicBool::new(false);
static LLAMA_LOADS: AtomicU64 = AtomicU64::new(0);

/// The shared backend, initialised on first use; llama.cpp's logs go to `tracing` at debug.
pub(crate) fn backend() -> Result<&'static LlamaBackend, EngineError> {
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::Backend(e.clone()))
}

/// How many times this process has asked llama.cpp to open a model file.
pub fn llama_load_attempts() -> u64 {
    LLAMA_LOADS.load(Ordering::SeqCst)
}

pub(crate) fn count_llama_load() {
    LLAMA_LOADS.fetch_add(1, Ordering::SeqCst);
}

/// Held while a load runs; dropping it lets the next load start.
#[derive(Debug)]
pub(crate) struct LoadGuard(());

impl LoadGuard {
    pub(crate) fn acquire() -> Result<Self, EngineError> {
        LOADING
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| LoadGuard(()))
            .map_err(|_| EngineError::LoadInProgress)
    }
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        LOADING.store(false, Ordering::Release);
    }
}
