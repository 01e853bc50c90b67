//! What one answer cost: timings, token counts and memory, reported with every `Done`.

use serde::Serialize;

/// How the prompt was built from the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum TemplateKind {
    /// The model's own Jinja chat template, rendered with `minijinja`.
    Jinja,
    /// llama.cpp's built-in template matcher (`llama_chat_apply_template`) with this template
    /// name; used only when the model has no usable template of its own.
    LlamaBuiltin(String),
}

/// Figures for one answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Time the model took to load, in milliseconds (the same for every answer of one engine).
    pub load_ms: u64,
    /// Tokens in the prompt, the cached prefix included.
    pub prompt_tokens: u32,
    /// Prompt tokens whose KV entries were reused from the previous answer.
    pub cached_prompt_tokens: u32,
    /// Tokens generated.
    pub generated_tokens: u32,
    /// From the request reaching the engine to the first token sampled, in milliseconds.
    pub time_to_first_token_ms: f64,
    /// Prompt tokens evaluated per second (only the ones not found in the cache).
    pub prompt_tokens_per_s: f64,
    /// Generated tokens per second, sampling included.
    pub generation_tokens_per_s: f64,
    /// Peak resident memory of the process so far, in bytes, where the platform reports it.
    pub peak_rss_bytes: Option<u64>,
    /// Which template built the prompt.
    pub template: TemplateKind,
    /// llama.cpp threads used for decoding.
    pub threads: usize,
    /// Context size in tokens.
    pub n_ctx: u32,
    /// Oldest turns dropped from the history so the prompt fits the context.
    pub dropped_turns: u32,
}

/// Peak resident set size of this process (`VmHWM`), in bytes; `None` where unknown.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kib("VmHWM:").map(|kib| kib * 1024)
}

/// Current resident set size of this process (`VmRSS`), in bytes; `None` where unknown.
pub fn current_rss_bytes() -> Option<u64> {
    proc_status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// Resets the kernel's peak-RSS counter to the current RSS (Linux `clear_refs` value 5).
///
/// Returns whether the reset worked; benchmarks use it to measure one phase at a time.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_reported_on_linux() {
        if cfg!(target_os = "linux") {
            let peak = peak_rss_bytes().expect("VmHWM");
            let now = current_rss_bytes().expect("VmRSS");
            assert!(peak >= now / 2 && now > 0);
        }
    }
}
