//! Hugging Face checkpoint files: reading memory-mapped safetensors (single or sharded),
//! converting their float tensors to `f32`, and writing safetensors and other outputs
//! atomically.
//!
//! Every model-tools step that touches a Hugging Face directory (`merge`, `convert`,
//! `import-gguf`) goes through this module, so the file format is parsed and checked in one
//! place: header lengths, dtypes, shapes and byte ranges are validated against the file before
//! any tensor is handed out.

mod atomic;
mod checkpoint;
mod dtype;
mod error;
pub mod sentencepiece;
mod tokenizer;
mod writer;

pub use atomic::{remove_temp_dir, sync_dir, temp_sibling, write_atomically};
pub use checkpoint::{Checkpoint, TensorRef};
pub use dtype::{decode_to_f32, encode_f32, Dtype};
pub use error::HfError;
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
