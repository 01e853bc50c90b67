//! Hugging Face model directories: every reader of their files lives here.
//!
//! - checkpoint files: memory-mapped safetensors (single or sharded), their float tensors
//!   converted to `f32`, and safetensors and other outputs written atomically;
//! - tokenizer files: special-token entries ([`token_content`]), calls into the `tokenizers`
//!   library guarded against its panics ([`catch_tokenizer_panic`]), and SentencePiece
//!   `tokenizer.model` read and written ([`sentencepiece`]), and the chat template, found by
//!   one rule for every step ([`load_chat_template`]);
//! - the file names themselves ([`CONFIG_JSON`], [`TOKENIZER_JSON`], …), in one place.
//!
//! Every model-tools step that touches a Hugging Face directory (`merge`, `convert`,
//! `import-gguf`, `audit-tokenizer`, `train`) goes through this module, so the file formats are
//! parsed and checked in one place: header lengths, dtypes, shapes and byte ranges are
//! validated against the file before any tensor is handed out.

mod atomic;
mod chat_template;
mod checkpoint;
mod dtype;
mod error;
mod files;
pub mod sentencepiece;
mod tokenizer;
mod writer;

pub use atomic::{remove_temp_dir, sync_dir, temp_sibling, write_atomically};
pub use chat_template::{load_chat_template, ChatTemplate, FoundChatTemplate};
pub use checkpoint::{Checkpoint, TensorRef};
pub use dtype::{decode_to_f32, encode_f32, Dtype};
pub use error::HfError;
pub use files::{
    ADDED_TOKENS_JSON, ADDITIONAL_CHAT_TEMPLATES, CHAT_TEMPLATE_JINJA, CHAT_TEMPLATE_JSON,
    CONFIG_JSON, GENERATION_CONFIG_JSON, MODEL_SAFETENSORS, MODEL_SAFETENSORS_INDEX_JSON,
    SPECIAL_TOKENS_MAP_JSON, TOKENIZER_CONFIG_JSON, TOKENIZER_JSON, TOKENIZER_MODEL,
};
pub use tokenizer::{catch_tokenizer_panic, token_content};
pub use writer::{PlannedTensor, SafetensorsWriter};

use std::path::Path;

/// Reads and parses a JSON file, naming the file in any error.
pub fn read_json(path: &Path) -> Result<serde_json::Value, HfError> {
    let text = std::fs::read_to_string(path).map_err(|source| HfError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| HfError::Json {
        path: path.to_owned(),
        source,
    })
}

/// Writes `value` as pretty JSON with a final newline, atomically.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), HfError> {
    write_atomically(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value).map_err(std::io::Error::from)?;
        std::io::Write::write_all(w, b"\n")
    })
}

/// Reads a JSON file if it exists; `Ok(None)` when it does not.
pub fn read_json_if_exists(path: &Path) -> Result<Option<serde_json::Value>, HfError> {
    if path.exists() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}
