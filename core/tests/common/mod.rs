//! Finding the real test models that `scripts/setup` puts in the model cache.
//!
//! Tests that need a model skip (with a message) when it is missing — unless `CI` is set, in
//! which case a missing model fails the run: CI must never pass by skipping.

#![allow(dead_code)]

use std::path::PathBuf;

/// SmolLM2-135M-Instruct, Q4_1: the default chat model.
pub const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Gemma 3 270M, Q4_K_M: the Q4_K_M reference.
pub const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

/// The model cache directory.
pub fn model_cache() -> PathBuf {
    match std::env::var_os("VAZHI_MODELS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/vazhi/models")
        }
    }
}

/// The path of test model `file`, or `None` (after saying so) when it is missing outside CI.
pub fn model(file: &str) -> Option<PathBuf> {
    let path = model_cache().join(file);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "test model {} is missing and CI is set: run scripts/setup",
            path.display()
        );
    }
    eprintln!(
        "skipping: test model {} is missing (run scripts/setup)",
        path.display()
    );
    None
}
