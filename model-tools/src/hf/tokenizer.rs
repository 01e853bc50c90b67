//! The parts of a Hugging Face tokenizer that every reader shares: special-token entries of
//! `tokenizer_config.json` / `special_tokens_map.json`, and calls into the `tokenizers`
//! library guarded against its panics.

use serde_json::Value;

/// Runs `f`, a call into the `tokenizers` library, turning a panic into an error message.
///
/// The library panics instead of returning an error on some malformed `tokenizer.json`
/// files (a BPE `continuing_subword_prefix` longer than a merge's right part, a corrupt
/// `Precompiled` normalizer, a `TemplateProcessing` naming a special token it lacks); a
/// crafted file must be reported like any other bad file, not abort the tool. `what` says
/// what was being done ("loading it", "encoding text").
pub fn catch_tokenizer_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let detail = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        format!("the tokenizer library panicked on this tokenizer.json while {what}: {detail}")
    })
}

/// The token text of a special-token entry (`bos_token`, `eos_token`, … in
/// `tokenizer_config.json` or `special_tokens_map.json`): a string, or an object with a
/// string `content`; `None` for anything else (null included).
pub fn token_content(entry: &Value) -> Option<&str> {
    match entry {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("content").and_then(Value::as_str),
        _ => None,
    }
}
