//! Which model file a command uses when `--model` is not given.

use std::path::{Path, PathBuf};

use vazhi_core::data_dir::DataDir;

/// File name of the default chat model (SmolLM2-135M-Instruct, the only instruction-tuned test
/// model that `scripts/setup` fetches).
pub const DEFAULT_CHAT_MODEL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// No `--model`, and the default model is in neither place.
#[derive(Debug, thiserror::Error)]
#[error("no --model given and {file} is in neither {} nor {}; run scripts/setup or pass --model", .data_models.display(), .cache.display())]
pub struct NoDefaultModel {
    file: &'static str,
    data_models: PathBuf,
    cache: PathBuf,
}

/// The model cache filled by `scripts/setup`: `$VAZHI_MODELS`, else `~/.cache/vazhi/models`.
pub fn model_cache() -> PathBuf {
    match std::env::var_os("VAZHI_MODELS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".cache/vazhi/models"),
    }
}

/// `explicit` if given; else the default chat model from the data dir, then the cache.
pub fn resolve(
    explicit: Option<&Path>,
    data_dir: Option<&DataDir>,
) -> Result<PathBuf, NoDefaultModel> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    let data_models = data_dir.map(DataDir::models).unwrap_or_default();
    let cache = model_cache();
    [
        data_models.join(DEFAULT_CHAT_MODEL),
        cache.join(DEFAULT_CHAT_MODEL),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .ok_or(NoDefaultModel {
        file: DEFAULT_CHAT_MODEL,
        data_models,
        cache,
    })
}
