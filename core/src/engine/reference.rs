//! A bare llama-cpp-2 greedy decode loop: the yardstick the engine is tested and benchmarked
//! against.
//!
//! It does what every llama-cpp-2 example does and nothing more — tokenize, one batch for the
//! prompt, then sample greedily and decode one token at a time on the caller's thread — so any
//! difference in output or speed from [`Engine`](super::Engine) is the SDK's own doing.

use std::num::NonZeroU32;
use std::path::Path;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

use super::backend::{backend, count_llama_load};
use super::error::EngineError;

/// What one reference run produced.
#[derive(Debug, Clone)]
pub struct ReferenceRun {
    /// Generated token ids (the end-of-text token excluded).
    pub tokens: Vec<i32>,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// From the call to the first sampled token, in milliseconds.
    pub time_to_first_token_ms: f64,
    /// Prompt tokens per second.
    pub prompt_tokens_per_s: f64,
    /// Generated tokens per second, sampling included.
    pub generation_tokens_per_s: f64,
}

/// A model and context used by the bare loop.
#[derive(Debug)]
pub struct ReferenceModel {
    model: Box<LlamaModel>,
    n_ctx: u32,
    threads: i32,
    n_batch: u32,
}

impl ReferenceModel {
    /// Loads `path` with llama.cpp directly (no validation: callers pass trusted files).
    pub fn load(
        path: &Path,
        n_ctx: u32,
        threads: usize,
        n_batch: u32,
    ) -> Result<Self, EngineError> {
        let backend = backend()?;
        count_llama_load();
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| EngineError::Load(e.to_string()))?;
        Ok(Self {
            model: Box::new(model),
            n_ctx,
            threads: i32::try_from(threads).unwrap_or(i32::MAX),
            n_batch,
        })
    }

    fn context(&self) -> Result<LlamaContext<'_>, EngineError> {
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(self.n_ctx))
            .with_n_batch(self.n_batch)
            .with_n_ubatch(self.n_batch)
            .with_n_threads(self.threads)
            .with_n_threads_batch(self.threads)
            .with_swa_full(false);
        self.model
            .new_context(backend()?, params)
            .map_err(|e| EngineError::Context(e.to_string()))
    }

    /// Tokenizes an already-rendered prompt the way the engine does (special tokens parsed,
    /// BOS added when the model wants it and the text does not start with it).
    pub fn tokenize(&self, prompt: &str, bos_text: Option<&str>) -> Vec<LlamaToken> {
        let vocab = self.model.vocab();
        let starts_with_bos = bos_text.is_some_and(|b| !b.is_empty() && prompt.starts_with(b));
        let mut tokens = vocab.tokenize(prompt.as_bytes(), false, true);
        if vocab.should_add_bos() && !starts_with_bos {
            tokens.insert(0, vocab.bos());
        }
        tokens
    }

    /// The raw bytes of one token (special tokens rendered empty), as the engine streams them.
    pub fn token_bytes(&self, token: i32) -> Vec<u8> {
        self.model
            .vocab()
            .token_to_piece(LlamaToken(token), false, None)
    }

    /// Greedy decoding of `prompt` tokens for up to `max_tokens`, in a fresh context.
    pub fn greedy(
        &self,
        prompt: &[LlamaToken],
        max_tokens: usize,
    ) -> Result<ReferenceRun, EngineError> {
        let started = Instant::now();
        let mut ctx = self.context()?;
        greedy_loop(
            &self.model,
            &mut ctx,
            prompt,
            max_tokens,
            self.n_batch,
            started,
        )
    }
}

/// The bare loop itself, on a context whose KV cache is empty: one batch for the prompt, then
/// greedy sampling and one-token decodes. `started` is when time-to-first-token starts.
pub(crate) fn greedy_loop(
    model: &LlamaModel,
    ctx: &mut LlamaContext<'_>,
    prompt: &[LlamaToken],
    max_tokens: usize,
    n_batch: u32,
    started: Instant,
) -> Result<ReferenceRun, EngineError> {
    let decode_err = |e: llama_cpp_2::DecodeError| EngineError::Decode(e.to_string());
    let add_err = |e: llama_cpp_2::llama_batch::BatchAddError| EngineError::Decode(e.to_string());
    if prompt.is_empty() {
        return Err(EngineError::EmptyPrompt);
    }
    // llama.cpp asserts (aborts) on a batch larger than n_batch: feed the prompt in chunks.
    let chunk = (n_batch as usize).min(ctx.n_batch() as usize).max(1);
    let mut batch = LlamaBatch::new(chunk, 1);
    let prompt_started = Instant::now();
    for (c, tokens) in prompt.chunks(chunk).enumerate() {
        batch.clear();
        for (i, token) in tokens.iter().enumerate() {
            let at = c * chunk + i;
            let pos =
                i32::try_from(at).map_err(|_| EngineError::Decode("prompt too long".into()))?;
            batch
                .add(*token, pos, &[0], at + 1 == prompt.len())
                .map_err(add_err)?;
        }
        ctx.decode(&mut batch).map_err(decode_err)?;
    }
    let prompt_secs = prompt_started.elapsed().as_secs_f64();
    let mut sampler = LlamaSampler::greedy();
    let vocab = model.vocab();
    let mut tokens = Vec::new();
    let mut ttft = None;
    let mut pos = i32::try_from(prompt.len()).unwrap_or(i32::MAX);
    let gen_started = Instant::now();
    while tokens.len() < max_tokens {
        let token = sampler.sample(ctx, batch.n_tokens() - 1);
        ttft.get_or_insert_with(|| started.elapsed());
        if vocab.is_eog(token) {
            break;
        }
        tokens.push(token.0);
        batch.clear();
        batch.add(token, pos, &[0], true).map_err(add_err)?;
        ctx.decode(&mut batch).map_err(decode_err)?;
        pos += 1;
    }
    let gen_secs = gen_started.elapsed().as_secs_f64();
    Ok(ReferenceRun {
        prompt_tokens: prompt.len(),
        time_to_first_token_ms: ttft.unwrap_or_default().as_secs_f64() * 1e3,
        prompt_tokens_per_s: prompt.len() as f64 / prompt_secs.max(1e-9),
        generation_tokens_per_s: tokens.len() as f64 / gen_secs.max(1e-9),
        tokens,
    })
}
