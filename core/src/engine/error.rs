//! The engine's error type.

use super::constraint::ConstraintError;
use super::template::TemplateError;
use super::tools::ToolError;
use super::validate::ModelError;

/// Everything that can go wrong between a model file and a finished answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The model file was refused before llama.cpp saw it.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Another model load is already running in this process.
    #[error("another model load is in progress; wait for it to finish")]
    LoadInProgress,
    /// llama.cpp's backend could not be initialised.
    #[error("llama.cpp backend failed to initialise: {0}")]
    Backend(String),
    /// llama.cpp could not load a file that passed our validation.
    #[error("llama.cpp failed to load the model: {0}")]
    Load(String),
    /// llama.cpp could not create an inference context (often: not enough memory).
    #[error("llama.cpp failed to create a context: {0}")]
    Context(String),
    /// No context size fits the memory budget.
    #[error("model needs at least {needed} bytes but the memory budget is {budget} bytes")]
    InsufficientMemory {
        /// Bytes the smallest usable configuration needs.
        needed: u64,
        /// The budget given.
        budget: u64,
    },
    /// The model's dimensions (from its metadata) are so large that its memory cannot be
    /// counted in 64 bits: a crafted file, since no device could hold it.
    #[error("the model's dimensions are too large: its {what} size overflows 64 bits")]
    MemoryEstimateOverflow {
        /// Which estimate overflowed: `"KV cache"` or `"compute buffer"`.
        what: &'static str,
    },
    /// The prompt is empty or only whitespace.
    #[error("the prompt is empty")]
    EmptyPrompt,
    /// The prompt is longer than the configured byte cap.
    #[error("the prompt is {bytes} bytes, over the {max}-byte limit")]
    PromptTooLarge {
        /// Size of the prompt.
        bytes: usize,
        /// The cap.
        max: usize,
    },
    /// Even with all earlier turns dropped the prompt does not fit the context.
    #[error("the prompt needs {needed} tokens but the context holds {n_ctx}")]
    ContextOverflow {
        /// Tokens needed (prompt plus the room kept for the answer).
        needed: usize,
        /// Context size.
        n_ctx: u32,
    },
    /// The chat template failed or refused the conversation.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The model's chat template was refused at load: it could build values without bound, or
    /// failed on a sample conversation. The model is not loaded.
    #[error("the model's chat template was refused: {0}")]
    TemplateRefused(TemplateError),
    /// The output constraint (grammar or JSON Schema) cannot be used; nothing was generated.
    #[error(transparent)]
    Constraint(#[from] ConstraintError),
    /// The tools cannot be offered (an invalid definition, a template that cannot render them
    /// or whose call format is unknown, tools together with an output constraint).
    #[error(transparent)]
    Tools(#[from] ToolError),
    /// Invalid generation settings.
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// llama.cpp failed while evaluating tokens.
    #[error("llama.cpp decode failed: {0}")]
    Decode(String),
    /// The engine's worker thread has stopped (the model was unloaded or it crashed).
    #[error("the engine has shut down")]
    Shutdown,
}
