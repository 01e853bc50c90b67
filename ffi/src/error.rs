//! The one error type every export returns, and the one place core errors become it.
//!
//! Variants say what kind of failure it was (what an app branches on); `detail` is the core
//! error's text, which never contains user text. (Not `message`: that would clash with
//! `Throwable.message` in the generated Kotlin.)

use vazhi_core::assistant::AssistantError;
use vazhi_core::download::DownloadError;
use vazhi_core::engine::{EngineError, ModelError};
use vazhi_core::feedback::FeedbackError;
use vazhi_core::knowledge::KnowledgeError;
use vazhi_core::router::RouterError;

/// Why a Vazhi call failed. New variants may be added: match with a default branch.
#[derive(Debug, Clone, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum VazhiError {
    /// Bad input: empty or oversized prompt, invalid settings, a field over its cap, invalid UTF-8.
    #[error("{detail}")]
    InvalidInput {
        /// What is wrong.
        detail: String,
    },
    /// No model file at that path, or the catalog model is not installed.
    #[error("{detail}")]
    ModelNotFound {
        /// Details.
        detail: String,
    },
    /// The model file was refused: not valid GGUF, architecture not allowed, over budget, or not
    /// the file that was verified.
    #[error("{detail}")]
    ModelRefused {
        /// Details.
        detail: String,
    },
    /// Not enough memory for the model and its context.
    #[error("{detail}")]
    OutOfMemory {
        /// Details.
        detail: String,
    },
    /// The model failed while answering.
    #[error("{detail}")]
    Generation {
        /// Details.
        detail: String,
    },
    /// The model was unloaded (by `unload()` or memory pressure) or shut down.
    #[error("{detail}")]
    ModelUnloaded {
        /// Details.
        detail: String,
    },
    /// Another load or download of the same thing is running.
    #[error("{detail}")]
    Busy {
        /// Details.
        detail: String,
    },
    /// The knowledge base failed (bad pack, database error).
    #[error("{detail}")]
    Knowledge {
        /// Details.
        detail: String,
    },
    /// Downloads are switched off; no socket was opened.
    #[error("{detail}")]
    Offline {
        /// Details.
        detail: String,
    },
    /// A download failed: network, server, allowlist, redirects.
    #[error("{detail}")]
    Download {
        /// Details.
        detail: String,
    },
    /// A downloaded or installed file failed its size or SHA-256 check (nothing was installed).
    #[error("{detail}")]
    Verification {
        /// Details.
        detail: String,
    },
    /// Not enough storage or RAM for the model, or the disk is full.
    #[error("{detail}")]
    InsufficientResources {
        /// Details.
        detail: String,
    },
    /// The feedback key is gone (e.g. restored to a new phone); nothing was changed.
    #[error("{detail}")]
    KeyUnavailable {
        /// Details.
        detail: String,
    },
    /// A database is damaged; it was left as it is.
    #[error("{detail}")]
    DataDamaged {
        /// Details.
        detail: String,
    },
    /// A file operation failed.
    #[error("{detail}")]
    Io {
        /// Details.
        detail: String,
    },
    /// A bug: a panic inside Vazhi, or a listener/provider that threw unexpectedly. The process
    /// is still usable.
    #[error("{detail}")]
    Internal {
        /// Details.
        detail: String,
    },
}

macro_rules! variant {
    ($v:ident, $e:expr) => {
        VazhiError::$v {
            detail: $e.to_string(),
        }
    };
}

impl From<EngineError> for VazhiError {
    fn from(e: EngineError) -> Self {
        match &e {
            EngineError::Model(ModelError::NotFound(_)) => variant!(ModelNotFound, e),
            EngineError::Model(_) => variant!(ModelRefused, e),
            EngineError::LoadInProgress => variant!(Busy, e),
            EngineError::InsufficientMemory { .. } => variant!(OutOfMemory, e),
            EngineError::EmptyPrompt
            | EngineError::PromptTooLarge { .. }
            | EngineError::InvalidParams(_) => variant!(InvalidInput, e),
            EngineError::Shutdown => variant!(ModelUnloaded, e),
            _ => variant!(Generation, e),
        }
    }
}

impl From<ModelError> for VazhiError {
    fn from(e: ModelError) -> Self {
        EngineError::Model(e).into()
    }
}

impl From<KnowledgeError> for VazhiError {
    fn from(e: KnowledgeError) -> Self {
        variant!(Knowledge, e)
    }
}

impl From<RouterError> for VazhiError {
    fn from(e: RouterError) -> Self {
        variant!(InvalidInput, e)
    }
}

impl From<AssistantError> for VazhiError {
    fn from(e: AssistantError) -> Self {
        match e {
            AssistantError::Engine(e) => e.into(),
            AssistantError::Knowledge(e) => e.into(),
            other => variant!(Internal, other),
        }
    }
}

impl From<DownloadError> for VazhiError {
    fn from(e: DownloadError) -> Self {
        match &e {
            DownloadError::Offline => variant!(Offline, e),
            DownloadError::HashMismatch { .. } | DownloadError::SizeMismatch { .. } => {
                variant!(Verification, e)
            }
            DownloadError::InsufficientStorage { .. }
            | DownloadError::StorageFull
            | DownloadError::NotEnoughRam { .. } => variant!(InsufficientResources, e),
            DownloadError::NotInstalled { .. } => variant!(ModelNotFound, e),
            DownloadError::Unverified { .. } => variant!(ModelRefused, e),
            DownloadError::UnknownModel { .. } | DownloadError::Catalog(_) => {
                variant!(InvalidInput, e)
            }
            DownloadError::Busy { .. } => variant!(Busy, e),
            DownloadError::Io { .. } => variant!(Io, e),
            _ => variant!(Download, e),
        }
    }
}

impl From<FeedbackError> for VazhiError {
    fn from(e: FeedbackError) -> Self {
        match &e {
            FeedbackError::KeyUnavailable { .. } => variant!(KeyUnavailable, e),
            FeedbackError::TooLarge { .. }
            | FeedbackError::InvalidUtf8 { .. }
            | FeedbackError::Invalid { .. } => variant!(InvalidInput, e),
            FeedbackError::StorageFull => variant!(InsufficientResources, e),
            FeedbackError::Corrupt(_) | FeedbackError::NewerSchema { .. } => {
                variant!(DataDamaged, e)
            }
            FeedbackError::Io { .. } => variant!(Io, e),
            _ => variant!(Internal, e),
        }
    }
}

impl From<std::io::Error> for VazhiError {
    fn from(e: std::io::Error) -> Self {
        variant!(Io, e)
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for VazhiError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        VazhiError::Internal {
            detail: format!("a callback failed: {}", e.reason),
        }
    }
}

/// Runs `f`, turning a panic into [`VazhiError::Internal`] so that no export unwinds into
/// foreign code (uniffi would also catch it, but as an untyped exception).
pub fn guard<T>(f: impl FnOnce() -> Result<T, VazhiError>) -> Result<T, VazhiError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        Err(VazhiError::Internal {
            detail: format!("internal error: {}", panic_message(&panic)),
        })
    })
}

/// The text of a panic payload.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_internal_errors_and_errors_keep_their_kind() {
        let err = guard::<()>(|| panic!("boom {}", 42)).unwrap_err();
        assert!(matches!(&err, VazhiError::Internal { detail } if detail.contains("boom 42")));
        let err = guard::<()>(|| std::panic::panic_any(7u8)).unwrap_err();
        assert!(matches!(err, VazhiError::Internal { .. }));
        assert_eq!(guard(|| Ok(3)).unwrap(), 3);
        let e: VazhiError = DownloadError::Offline.into();
        assert!(matches!(e, VazhiError::Offline { .. }));
        let e: VazhiError = EngineError::EmptyPrompt.into();
        assert!(matches!(e, VazhiError::InvalidInput { .. }));
        let e: VazhiError = FeedbackError::StorageFull.into();
        assert!(matches!(e, VazhiError::InsufficientResources { .. }));
    }
}
