//! Exit codes, derived from the typed errors underneath `anyhow`.

use std::error::Error;
use std::process::ExitCode;

use vazhi_core::app::AppError;
use vazhi_core::assistant::AssistantError;
use vazhi_core::download::DownloadError;
use vazhi_core::engine::{EngineError, ModelError};
use vazhi_core::feedback::FeedbackError;

/// Bad usage: arguments or input the command cannot take.
pub const BAD_USAGE: u8 = 2;
/// Model file refused by validation.
pub const MODEL_REFUSED: u8 = 3;
/// Model file not found.
pub const MODEL_NOT_FOUND: u8 = 4;
/// Generation failed.
pub const GENERATION_FAILED: u8 = 5;
/// A download failed (network, server, offline, busy).
pub const DOWNLOAD_FAILED: u8 = 6;
/// A downloaded or installed file failed its SHA-256 or size check, or a pack or catalog is
/// not trusted (unsigned, an unknown key, changed after signing, replacing a pack trusted
/// another way).
pub const VERIFICATION_FAILED: u8 = 7;
/// Does not fit: storage (models, feedback) or RAM.
pub const DOES_NOT_FIT: u8 = 8;
/// The feedback store's key is gone: its records cannot be read (`vazhi feedback reset`).
pub const KEY_UNAVAILABLE: u8 = 9;
/// Stored data is damaged (SQLite reports corruption); it was left as it is.
pub const DATA_DAMAGED: u8 = 10;
/// The user interrupted.
pub const INTERRUPTED: u8 = 130;

/// The error an [`AppError`] or [`AssistantError`] wraps (they are transparent: their own
/// `source` skips it), else `cause` itself.
fn unwrapped<'a>(cause: &'a (dyn Error + 'static)) -> &'a (dyn Error + 'static) {
    match cause.downcast_ref::<AppError>() {
        Some(AppError::Engine(e)) => return e,
        Some(AppError::Download(e)) => return e,
        Some(AppError::Knowledge(e)) => return e,
        Some(AppError::Router(e)) => return e,
        Some(AppError::Io(e)) => return e,
        _ => {}
    }
    match cause.downcast_ref::<AssistantError>() {
        Some(AssistantError::Engine(e)) => e,
        Some(AssistantError::Knowledge(e)) => e,
        _ => cause,
    }
}

/// The exit code for an error.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    for cause in err.chain() {
        if let Some(AppError::EmptyQuestion) = cause.downcast_ref() {
            return ExitCode::from(BAD_USAGE);
        }
        let cause = unwrapped(cause);
        if let Some(e) = cause.downcast_ref::<EngineError>() {
            return ExitCode::from(match e {
                EngineError::Model(ModelError::NotFound(_)) => MODEL_NOT_FOUND,
                EngineError::Model(_)
                | EngineError::TemplateRefused(_)
                | EngineError::MemoryEstimateOverflow { .. } => MODEL_REFUSED,
                EngineError::EmptyPrompt
                | EngineError::PromptTooLarge { .. }
                | EngineError::InvalidParams(_)
                | EngineError::Constraint(_)
                | EngineError::Tools(_) => BAD_USAGE,
                _ => GENERATION_FAILED,
            });
        }
        if let Some(e) = cause.downcast_ref::<ModelError>() {
            return ExitCode::from(match e {
                ModelError::NotFound(_) => MODEL_NOT_FOUND,
                _ => MODEL_REFUSED,
            });
        }
        if let Some(e) = cause.downcast_ref::<DownloadError>() {
            return ExitCode::from(match e {
                DownloadError::HashMismatch { .. } | DownloadError::SizeMismatch { .. } => {
                    VERIFICATION_FAILED
                }
                DownloadError::InsufficientStorage { .. }
                | DownloadError::StorageFull
                | DownloadError::NotEnoughRam { .. } => DOES_NOT_FIT,
                DownloadError::NotInstalled { .. } => MODEL_NOT_FOUND,
                DownloadError::Unverified { .. } => MODEL_REFUSED,
                DownloadError::Catalog(
                    vazhi_core::download::CatalogError::Signature(_)
                    | vazhi_core::download::CatalogError::Unsigned,
                ) => VERIFICATION_FAILED,
                DownloadError::UnknownModel { .. } | DownloadError::Catalog(_) => BAD_USAGE,
                _ => DOWNLOAD_FAILED,
            });
        }
        if let Some(e) = cause.downcast_ref::<vazhi_core::knowledge::KnowledgeError>() {
            if e.kind() == vazhi_core::error_kind::ErrorKind::Verification {
                return ExitCode::from(VERIFICATION_FAILED);
            }
        }
        if let Some(
            vazhi_core::download::CatalogError::Signature(_)
            | vazhi_core::download::CatalogError::Unsigned,
        ) = cause.downcast_ref()
        {
            return ExitCode::from(VERIFICATION_FAILED);
        }
        if let Some(e) = cause.downcast_ref::<FeedbackError>() {
            return match e {
                FeedbackError::TooLarge { .. }
                | FeedbackError::Invalid { .. }
                | FeedbackError::InvalidUtf8 { .. } => ExitCode::from(BAD_USAGE),
                FeedbackError::StorageFull => ExitCode::from(DOES_NOT_FIT),
                FeedbackError::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::StorageFull =>
                {
                    ExitCode::from(DOES_NOT_FIT)
                }
                FeedbackError::KeyUnavailable { .. } => ExitCode::from(KEY_UNAVAILABLE),
                FeedbackError::Corrupt(_) => ExitCode::from(DATA_DAMAGED),
                _ => ExitCode::FAILURE,
            };
        }
        if let Some(
            vazhi_core::eval::EvalError::Set(_) | vazhi_core::eval::EvalError::UnknownRecords(_),
        ) = cause.downcast_ref()
        {
            return ExitCode::from(BAD_USAGE);
        }
        if cause.downcast_ref::<vazhi_core::eval::SetError>().is_some() {
            return ExitCode::from(BAD_USAGE);
        }
        if let Some(crate::model_path::NoDefaultModel { .. }) = cause.downcast_ref() {
            return ExitCode::from(MODEL_NOT_FOUND);
        }
    }
    ExitCode::FAILURE
}
