//! Exit codes, derived from the typed errors underneath `anyhow`.

use std::process::ExitCode;

use vazhi_core::download::DownloadError;
use vazhi_core::engine::{EngineError, ModelError};

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
/// A downloaded or installed file failed its SHA-256 or size check.
pub const VERIFICATION_FAILED: u8 = 7;
/// The model does not fit: storage or RAM.
pub const DOES_NOT_FIT: u8 = 8;
/// The user interrupted.
pub const INTERRUPTED: u8 = 130;

/// The exit code for an error.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    for cause in err.chain() {
        let engine_error = cause.downcast_ref::<EngineError>().or_else(|| {
            match cause.downcast_ref::<vazhi_core::assistant::AssistantError>() {
                Some(vazhi_core::assistant::AssistantError::Engine(e)) => Some(e),
                _ => None,
            }
        });
        if let Some(e) = engine_error {
            return ExitCode::from(match e {
                EngineError::Model(ModelError::NotFound(_)) => MODEL_NOT_FOUND,
                EngineError::Model(_) => MODEL_REFUSED,
                EngineError::EmptyPrompt
                | EngineError::PromptTooLarge { .. }
                | EngineError::InvalidParams(_) => BAD_USAGE,
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
                DownloadError::UnknownModel { .. } | DownloadError::Catalog(_) => BAD_USAGE,
                _ => DOWNLOAD_FAILED,
            });
        }
        if let Some(crate::model_path::NoDefaultModel { .. }) = cause.downcast_ref() {
            return ExitCode::from(MODEL_NOT_FOUND);
        }
    }
    ExitCode::FAILURE
}
