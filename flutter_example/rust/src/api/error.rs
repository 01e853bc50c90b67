//! [`VazhiException`]: the one error Dart sees, thrown with a typed [`VazhiErrorCode`]. The
//! code comes from `vazhi_core::error_kind` (decided once for every binding); `detail` is the
//! core error's text, which never contains user text.

use vazhi_core::error_kind::{panic_message, ErrorKind};

/// What kind of failure it was: what an app branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VazhiErrorCode {
    /// Bad input: empty question, invalid settings, a field over its cap, unknown catalog id.
    InvalidInput,
    /// No model file at that path, or the catalog model is not installed.
    ModelNotFound,
    /// The model file was refused (not valid GGUF, not allowed, not the verified file).
    ModelRefused,
    /// Not enough memory for the model and its context.
    OutOfMemory,
    /// The model failed while answering.
    Generation,
    /// The model was unloaded (by `unload()` or memory pressure).
    ModelUnloaded,
    /// Another load or download of the same thing is running.
    Busy,
    /// The knowledge base failed (bad pack, database error).
    Knowledge,
    /// Downloads are switched off; no socket was opened.
    Offline,
    /// A download failed: network, server, allowlist, redirects.
    Download,
    /// A file failed its size or SHA-256 check; nothing was installed.
    Verification,
    /// Not enough storage or RAM for the model, or the disk is full.
    InsufficientResources,
    /// The feedback key is gone (e.g. restored to a new phone); nothing was changed.
    KeyUnavailable,
    /// A database is damaged; it was left as it is.
    DataDamaged,
    /// A file operation failed.
    Io,
    /// A bug: a panic inside Vazhi, or an app callback that failed unexpectedly.
    Internal,
}

impl From<ErrorKind> for VazhiErrorCode {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidInput => Self::InvalidInput,
            ErrorKind::ModelNotFound => Self::ModelNotFound,
            ErrorKind::ModelRefused => Self::ModelRefused,
            ErrorKind::OutOfMemory => Self::OutOfMemory,
            ErrorKind::Generation => Self::Generation,
            ErrorKind::ModelUnloaded => Self::ModelUnloaded,
            ErrorKind::Busy => Self::Busy,
            ErrorKind::Knowledge => Self::Knowledge,
            ErrorKind::Offline => Self::Offline,
            ErrorKind::Download => Self::Download,
            ErrorKind::Verification => Self::Verification,
            ErrorKind::InsufficientResources => Self::InsufficientResources,
            ErrorKind::KeyUnavailable => Self::KeyUnavailable,
            ErrorKind::DataDamaged => Self::DataDamaged,
            ErrorKind::Io => Self::Io,
            _ => Self::Internal,
        }
    }
}

/// A failed Vazhi call. Thrown in Dart (it implements `FrbException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {detail}")]
pub struct VazhiException {
    /// What kind of failure.
    pub code: VazhiErrorCode,
    /// The core error's text (no user text).
    pub detail: String,
}

impl VazhiException {
    /// An exception of `code` saying `detail`.
    #[flutter_rust_bridge::frb(ignore)]
    pub fn new(code: VazhiErrorCode, detail: impl ToString) -> Self {
        Self {
            code,
            detail: detail.to_string(),
        }
    }
}

/// `From` for each core error type, through its `kind()`.
macro_rules! from_core_error {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for VazhiException {
            fn from(e: $t) -> Self {
                Self::new(e.kind().into(), e)
            }
        }
    )*};
}

from_core_error!(
    vazhi_core::app::AppError,
    vazhi_core::assistant::AssistantError,
    vazhi_core::download::DownloadError,
    vazhi_core::feedback::FeedbackError,
    vazhi_core::knowledge::KnowledgeError,
    vazhi_core::sessions::SessionError,
    vazhi_core::signing::SigningError,
);

impl From<std::io::Error> for VazhiException {
    fn from(e: std::io::Error) -> Self {
        Self::new(VazhiErrorCode::Io, e)
    }
}

/// Runs `f`, turning a panic into [`VazhiErrorCode::Internal`]: Dart gets a typed exception,
/// not flutter_rust_bridge's untyped `PanicException`.
pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T, VazhiException>) -> Result<T, VazhiException> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        Err(VazhiException::new(
            VazhiErrorCode::Internal,
            format!("internal error: {}", panic_message(panic.as_ref())),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_internal_and_core_errors_keep_their_code() {
        let e = guard::<()>(|| panic!("boom")).unwrap_err();
        assert_eq!(e.code, VazhiErrorCode::Internal);
        assert!(e.detail.contains("boom"));
        let e = VazhiException::from(vazhi_core::download::DownloadError::Offline);
        assert_eq!(e.code, VazhiErrorCode::Offline);
    }
}
