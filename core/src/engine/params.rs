//! What the caller may set per answer: sampling, length, stop strings, suppressed tokens, an
//! output constraint, tools, and what happens to the model's reasoning.

use serde::{Deserialize, Serialize};

use super::constraint::OutputConstraint;
use super::error::EngineError;
use super::tools::{check_tools, ToolChoice, ToolError, ToolSpec};

/// How the next token is chosen.
///
/// `temperature <= 0` means greedy decoding (always the most likely token); otherwise the
/// chain is repeat penalty → top-k → top-p → min-p → temperature → seeded random draw, the
/// order llama.cpp's own tools use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sampling {
    /// Softmax temperature; 0 (or less) selects greedy decoding.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (0 disables).
    pub top_k: u32,
    /// Keep the smallest set of tokens whose probability adds up to `top_p` (1 disables).
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` × the most likely one (0 disables).
    pub min_p: f32,
    /// Penalty for repeating recent tokens (1 disables).
    pub repeat_penalty: f32,
    /// How many recent tokens the repeat penalty looks at.
    pub repeat_last_n: u32,
    /// Seed of the random draw: the same seed, prompt and settings give the same answer.
    pub seed: u32,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: 0.7,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            seed: 42,
        }
    }
}

impl Sampling {
    /// Greedy decoding with no penalties: deterministic, the reference for tests.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            repeat_penalty: 1.0,
            ..Self::default()
        }
    }

    /// Whether this configuration decodes greedily.
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }

    pub(crate) fn validate(&self) -> Result<(), EngineError> {
        let bad = |what: &str| Err(EngineError::InvalidParams(what.to_owned()));
        if !self.temperature.is_finite() {
            return bad("temperature must be a finite number");
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            return bad("top_p must be within 0..=1");
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad("min_p must be within 0..=1");
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            return bad("repeat_penalty must be a positive number");
        }
        if i32::try_from(self.top_k).is_err() || i32::try_from(self.repeat_last_n).is_err() {
            return bad("top_k and repeat_last_n must fit in 31 bits");
        }
        Ok(())
    }
}

/// Settings for one answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerateParams {
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Token selection.
    pub sampling: Sampling,
    /// Generation ends when the text contains one of these; the stop string is not shown.
    pub stop: Vec<String>,
    /// Token strings the model may never produce, e.g. `<think>`. Each must be exactly one
    /// token in the model's vocabulary.
    pub suppress: Vec<String>,
    /// Reuse the KV cache of the previous answer for the common prompt prefix (on by default;
    /// benchmarks turn it off to measure cold prompts).
    pub reuse_kv_cache: bool,
    /// A grammar or JSON Schema every token must keep valid. The answer then ends with
    /// [`FinishReason::EndOfText`](super::FinishReason::EndOfText) only when the text is
    /// complete under it, and with [`FinishReason::Incomplete`](super::FinishReason::Incomplete)
    /// when it was cut first.
    pub constraint: Option<OutputConstraint>,
    /// Tools the model may call, rendered by its chat template (its `tools` variable). A call
    /// ends the answer with [`FinishReason::ToolCalls`](super::FinishReason::ToolCalls) and
    /// the calls in [`Answer::tool_calls`](super::Answer::tool_calls); the caller runs them
    /// and continues the conversation with their results.
    pub tools: Vec<ToolSpec>,
    /// Whether the model may, must or must not call a tool (when `tools` is not empty).
    pub tool_choice: ToolChoice,
    /// Send the model's reasoning (`<think>…</think>`) as [`Event::Reasoning`](super::Event::Reasoning)
    /// and keep it in [`Answer::reasoning`](super::Answer::reasoning). Off by default: the
    /// reasoning is hidden, and never part of the answer's text.
    pub show_reasoning: bool,
    /// The `enable_thinking` variable for templates that read it; `None`: the template's
    /// default.
    pub enable_thinking: Option<bool>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        Self {
            max_tokens: 512,
            sampling: Sampling::default(),
            stop: Vec::new(),
            suppress: Vec::new(),
            reuse_kv_cache: true,
            constraint: None,
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            show_reasoning: false,
            enable_thinking: None,
        }
    }
}

impl GenerateParams {
    pub(crate) fn validate(&self) -> Result<(), EngineError> {
        if self.max_tokens == 0 {
            return Err(EngineError::InvalidParams(
                "max_tokens must be at least 1".into(),
            ));
        }
        if !self.tools.is_empty() {
            check_tools(&self.tools)?;
            if self.constraint.is_some() && self.tool_choice != ToolChoice::None {
                return Err(ToolError::WithConstraint.into());
            }
        }
        self.sampling.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_refused() {
        let mut p = GenerateParams::default();
        assert!(p.validate().is_ok());
        p.sampling.top_p = 1.5;
        assert!(matches!(p.validate(), Err(EngineError::InvalidParams(_))));
        p.sampling.top_p = 0.9;
        p.sampling.temperature = f32::NAN;
        assert!(p.validate().is_err());
        p.sampling.temperature = 0.0;
        p.max_tokens = 0;
        assert!(p.validate().is_err());
    }
}
