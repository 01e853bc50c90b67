//! # vazhi-ffi
//!
//! The foreign-function boundary over `vazhi-core`, for Kotlin (Android, JVM) and Swift (iOS)
//! through uniffi. Conversion only — every decision lives in `vazhi-core`:
//!
//! | object | wraps |
//! |---|---|
//! | [`Vazhi`] | the assistant: `ask` (streams to an [`AskListener`], returns a [`TaskHandle`]), conversations, `unload`, memory pressure |
//! | [`ModelManager`] | the catalog and downloads ([`DownloadListener`], [`DownloadTask`]), verify, remove, install files fetched by the OS |
//! | [`KnowledgeBase`] | pack import, lookup, search |
//! | [`FeedbackStore`] | encrypted feedback with keys from a foreign [`KeyProvider`] |
//! | [`set_logger`] | `tracing` events to a foreign [`LogSink`] (no user text above trace) |
//!
//! Every export returns `Result<_, VazhiError>` (one flat enum, converted in `error.rs`); a
//! panic inside becomes [`VazhiError::Internal`]; a listener that throws is caught and stops
//! receiving events. Methods that do I/O or load models block: call them off the main thread
//! (the Kotlin and Swift layers in `bindings/` do). `async` exports run on tokio.
#![deny(missing_docs)]

uniffi::setup_scaffolding!();

mod assistant;
mod error;
mod feedback;
mod knowledge;
mod logging;
mod models;
mod records;
mod registry;

pub use assistant::{
    AskListener, Conversation, FactPolicy, MemoryPressure, RestoredConversation, TaskHandle, Vazhi,
    VazhiConfig,
};
pub use error::VazhiError;
pub use feedback::{FeedbackStore, KeyProvider};
pub use knowledge::KnowledgeBase;
pub use logging::{set_logger, LogLevel, LogRecord, LogSink};
pub use models::{DownloadListener, DownloadTask, ModelManager, ModelManagerConfig};
pub use records::*;

/// The version of the SDK behind this boundary.
#[uniffi::export]
pub fn sdk_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Test hooks, compiled only with the `test-hooks` feature (binding tests).
#[cfg(feature = "test-hooks")]
mod test_hooks {
    use crate::error::{guard, VazhiError};

    /// Panics inside Vazhi, to prove a panic reaches the app as [`VazhiError::Internal`].
    #[uniffi::export]
    pub fn test_panic(message: String) -> Result<(), VazhiError> {
        guard(|| panic!("{message}"))
    }

    /// Panics without Vazhi's guard: what uniffi itself does with a panic.
    #[uniffi::export]
    pub fn test_unguarded_panic(message: String) -> u32 {
        panic!("{message}")
    }

    /// Objects of this library alive now (Vazhi, ModelManager, KnowledgeBase, FeedbackStore,
    /// Conversation, TaskHandle, DownloadTask): a leak check for the bindings.
    #[uniffi::export]
    pub fn test_live_objects() -> u64 {
        crate::registry::live()
    }
}
