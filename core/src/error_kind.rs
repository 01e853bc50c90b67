//! [`ErrorKind`]: what an app branches on when a Vazhi call fails, decided once for every
//! error type of the SDK so that each binding (uniffi, flutter_rust_bridge) only renames it.

use crate::assistant::AssistantError;
use crate::download::{CatalogError, DownloadError};
use crate::engine::{EngineError, ModelError};
use crate::feedback::FeedbackError;
use crate::knowledge::KnowledgeError;
use crate::router::RouterError;
use crate::signing::SigningError;

/// The kind of a failure, as an app sees it. New kinds may be added: match with a default arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad input: empty or oversized prompt, invalid settings, a field over its cap, invalid
    /// UTF-8, an unknown catalog id.
    InvalidInput,
    /// No model file at that path, or the catalog model is not installed.
    ModelNotFound,
    /// The model file was refused: not valid GGUF, architecture not allowed, over budget, or not
    /// the file that was verified.
    ModelRefused,
    /// Not enough memory for the model and its context.
    OutOfMemory,
    /// The model failed while answering.
    Generation,
    /// The model was unloaded (by `unload()` or memory pressure) or shut down.
    ModelUnloaded,
    /// Another load or download of the same thing is running.
    Busy,
    /// The knowledge base failed (bad pack, database error).
    Knowledge,
    /// Downloads are switched off; no socket was opened.
    Offline,
    /// A download failed: network, server, allowlist, redirects.
    Download,
    /// A downloaded or installed file failed its size or SHA-256 check, or a pack or catalog
    /// is not trusted (unsigned, signed by an unknown key, changed after signing, or replacing
    /// a pack trusted another way); nothing was installed.
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

impl EngineError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Model(ModelError::NotFound(_)) => ErrorKind::ModelNotFound,
            EngineError::Model(_)
            | EngineError::TemplateRefused(_)
            | EngineError::MemoryEstimateOverflow { .. } => ErrorKind::ModelRefused,
            EngineError::LoadInProgress => ErrorKind::Busy,
            EngineError::InsufficientMemory { .. } => ErrorKind::OutOfMemory,
            EngineError::EmptyPrompt
            | EngineError::PromptTooLarge { .. }
            | EngineError::InvalidParams(_)
            | EngineError::Constraint(_)
            | EngineError::Tools(_) => ErrorKind::InvalidInput,
            EngineError::Shutdown => ErrorKind::ModelUnloaded,
            _ => ErrorKind::Generation,
        }
    }
}

impl ModelError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ModelError::NotFound(_) => ErrorKind::ModelNotFound,
            _ => ErrorKind::ModelRefused,
        }
    }
}

impl KnowledgeError {
    /// What kind of failure this is: a pack that is not trusted is a failed verification.
    pub fn kind(&self) -> ErrorKind {
        match self {
            KnowledgeError::Signature { .. }
            | KnowledgeError::Unsigned { .. }
            | KnowledgeError::ReplacementUntrusted { .. } => ErrorKind::Verification,
            _ => ErrorKind::Knowledge,
        }
    }
}

impl SigningError {
    /// What kind of failure this is: a malformed key is bad input, a refused signature a
    /// failed verification.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SigningError::BadPublicKey(_) | SigningError::KeyFile { .. } => ErrorKind::InvalidInput,
            _ => ErrorKind::Verification,
        }
    }
}

impl RouterError {
    /// What kind of failure this is (router rules are settings).
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

impl AssistantError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AssistantError::Engine(e) => e.kind(),
            AssistantError::Knowledge(e) => e.kind(),
            AssistantError::Thread(_) => ErrorKind::Io,
            AssistantError::ToolResult(_) => ErrorKind::InvalidInput,
            AssistantError::Internal { .. } => ErrorKind::Internal,
        }
    }
}

impl DownloadError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DownloadError::Offline => ErrorKind::Offline,
            DownloadError::HashMismatch { .. } | DownloadError::SizeMismatch { .. } => {
                ErrorKind::Verification
            }
            DownloadError::InsufficientStorage { .. }
            | DownloadError::StorageFull
            | DownloadError::NotEnoughRam { .. } => ErrorKind::InsufficientResources,
            DownloadError::NotInstalled { .. } => ErrorKind::ModelNotFound,
            DownloadError::Unverified { .. } => ErrorKind::ModelRefused,
            DownloadError::Catalog(CatalogError::Signature(_) | CatalogError::Unsigned) => {
                ErrorKind::Verification
            }
            DownloadError::UnknownModel { .. } | DownloadError::Catalog(_) => {
                ErrorKind::InvalidInput
            }
            DownloadError::Busy { .. } => ErrorKind::Busy,
            DownloadError::Io { .. } => ErrorKind::Io,
            DownloadError::Internal { .. } => ErrorKind::Internal,
            _ => ErrorKind::Download,
        }
    }
}

impl FeedbackError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            FeedbackError::KeyUnavailable { .. } => ErrorKind::KeyUnavailable,
            // The keystore did not answer in time (a prompt left open): try again later.
            FeedbackError::Key(crate::feedback::KeyError::Timeout { .. }) => ErrorKind::Busy,
            FeedbackError::TooLarge { .. }
            | FeedbackError::InvalidUtf8 { .. }
            | FeedbackError::Invalid { .. } => ErrorKind::InvalidInput,
            FeedbackError::StorageFull => ErrorKind::InsufficientResources,
            FeedbackError::Corrupt(_) | FeedbackError::NewerSchema { .. } => ErrorKind::DataDamaged,
            FeedbackError::Io { .. } => ErrorKind::Io,
            _ => ErrorKind::Internal,
        }
    }
}

/// The text of a caught panic's payload, for bindings that turn panics into
/// [`ErrorKind::Internal`] errors instead of unwinding into foreign code.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
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
    fn kinds_follow_what_the_app_can_do_about_them() {
        assert_eq!(DownloadError::Offline.kind(), ErrorKind::Offline);
        assert_eq!(
            DownloadError::StorageFull.kind(),
            ErrorKind::InsufficientResources
        );
        assert_eq!(
            DownloadError::HttpStatus { status: 404 }.kind(),
            ErrorKind::Download
        );
        assert_eq!(EngineError::EmptyPrompt.kind(), ErrorKind::InvalidInput);
        assert_eq!(EngineError::Shutdown.kind(), ErrorKind::ModelUnloaded);
        assert_eq!(
            AssistantError::Engine(EngineError::LoadInProgress).kind(),
            ErrorKind::Busy
        );
        assert_eq!(
            FeedbackError::StorageFull.kind(),
            ErrorKind::InsufficientResources
        );
    }
}
