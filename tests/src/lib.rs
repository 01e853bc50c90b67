//! End-to-end tests across Vazhi's crates (see `tests/tests/`). This library holds the helpers
//! they share: where the real test models are, and [`http_server`], a real loopback HTTP/1.1
//! server with injectable faults for the model-downloader tests, and [`measure`], what a child
//! process cost (wall, CPU, peak RSS) for benchmarks.
#![deny(missing_docs)]

pub mod http_server;
pub mod measure;

use std::path::PathBuf;

/// SmolLM2-135M-Instruct, Q4_1: the default chat model.
pub const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Gemma 3 270M, Q4_K_M: the Q4_K_M reference.
pub const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

/// The model cache that `scripts/setup` fills: `$VAZHI_MODELS`, else `~/.cache/vazhi/models`.
pub fn model_cache() -> PathBuf {
    match std::env::var_os("VAZHI_MODELS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/vazhi/models")
        }
    }
}

/// The path of test model `file`; `None` (said on stderr) when missing outside CI.
///
/// # Panics
/// When the model is missing and `CI` is set: CI must never pass by skipping.
pub fn model(file: &str) -> Option<PathBuf> {
    let path = model_cache().join(file);
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "test model {} is missing and CI is set: run scripts/setup",
        path.display()
    );
    eprintln!(
        "skipping: test model {} is missing (run scripts/setup)",
        path.display()
    );
    None
}
