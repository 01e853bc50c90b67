//! The one error type every export returns, and the one place core errors become it.
//!
//! Variants say what kind of failure it was (what an app branches on); `detail` is the core
//! error's text, which never contains user text. (Not `message`: that would clash with
//! `Throwable.message` in the generated Kotlin.)

use vazhi_core::app::AppError;
use vazhi_core::assistant::AssistantError;
use vazhi_core::download::DownloadError;
use vazhi_core::engine::{EngineError, ModelError};
use vazhi_core::error_kind::ErrorKind;
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

impl VazhiError {
    /// The variant for `kind` (decided in `vazhi_core::error_kind`), carrying `detail`.
    pub fn from_kind(kind: ErrorKind, detail: impl ToString) -> Self {
        let detail = detail.to_string();
        match kind {
            ErrorKind::InvalidInput => VazhiError::InvalidInput { detail },
            ErrorKind::ModelNotFound => VazhiError::ModelNotFound { detail },
            ErrorKind::ModelRefused => VazhiError::ModelRefused { detail },
            ErrorKind::OutOfMemory => VazhiError::OutOfMemory { detail },
            ErrorKind::Generation => VazhiError::Generation { detail },
            ErrorKind::ModelUnloaded => VazhiError::ModelUnloaded { detail },
            ErrorKind::Busy => VazhiError::Busy { detail },
            ErrorKind::Knowledge => VazhiError::Knowledge { detail },
            ErrorKind::Offline => VazhiError::Offline { detail },
            ErrorKind::Download => VazhiError::Download { detail },
            ErrorKind::Verification => VazhiError::Verification { detail },
            ErrorKind::InsufficientResources => VazhiError::InsufficientResources { detail },
            ErrorKind::KeyUnavailable => VazhiError::KeyUnavailable { detail },
            ErrorKind::DataDamaged => VazhiError::DataDamaged { detail },
            ErrorKind::Io => VazhiError::Io { detail },
            _ => VazhiError::Internal { detail },
        }
    }
}

/// `From` for each core error type, through its `kind()`.
macro_rules! from_core_error {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for VazhiError {
            fn from(e: $t) -> Self {
                VazhiError::from_kind(e.kind(), e)
            }
        }
    )*};
}

from_core_error!(
    EngineError,
    ModelError,
    KnowledgeError,
    RouterError,
    AssistantError,
    DownloadError,
    FeedbackError,
    AppError,
    vazhi_core::signing::SigningError,
    vazhi_core::sessions::SessionError,
);

impl From<std::io::Error> for VazhiError {
    fn from(e: std::io::Error) -> Self {
        VazhiError::Io {
            detail: e.to_string(),
        }
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
    vazhi_core::error_kind::panic_message(panic.as_ref())
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
