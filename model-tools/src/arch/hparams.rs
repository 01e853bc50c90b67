//! [`Hparams`]: a model's hyper-parameters, one struct for both directions, with the checks
//! every family shares.

use super::{Arch, RopeScaling, MAX_DIM};

/// The hyper-parameters of a model, read from a Hugging Face `config.json`
/// ([`Hparams::from_hf_config`]) or from GGUF metadata ([`Hparams::from_gguf`]), and
/// written to either.
#[derive(Debug, Clone, PartialEq)]
pub struct Hparams {
    /// Architecture.
    pub arch: Arch,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Hidden size.
    pub n_embd: usize,
    /// Feed-forward (intermediate) size.
    pub n_ff: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads.
    pub n_head_kv: usize,
    /// Per-head size of queries, keys and values.
    pub head_dim: usize,
    /// Training context length.
    pub context_length: u64,
    /// Rows of the token embedding (`vocab_size`).
    pub vocab_size: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base frequency (of the global layers, where some slide).
    pub rope_theta: Option<f64>,
    /// RoPE base frequency of the sliding-window layers.
    pub rope_theta_swa: Option<f64>,
    /// RoPE scaling.
    pub rope_scaling: RopeScaling,
    /// Whether the output projection is the token embedding.
    pub tie_word_embeddings: bool,
    /// Whether the attention projections have biases (read from a GGUF's tensors).
    pub attention_bias: bool,
    /// Sliding-window attention (Gemma 3), when some layers slide.
    pub sliding_window: Option<SlidingWindow>,
    /// Final logit soft-capping, when set.
    pub final_logit_softcapping: Option<f64>,
    /// Attention logit soft-capping, when set.
    pub attn_logit_softcapping: Option<f64>,
    /// The special token ids a GGUF states (`generation_config.json`).
    pub special_tokens: SpecialTokenIds,
}

/// Sliding-window attention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlidingWindow {
    /// Window size in tokens.
    pub size: u64,
    /// Per layer: whether it slides.
    pub layers: Vec<bool>,
    /// The period of the sliding/global pattern, when the layers follow one.
    pub period: Option<usize>,
}

/// `tokenizer.ggml.{bos,eos,padding}_token_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpecialTokenIds {
    /// Beginning of sequence.
    pub bos: Option<u32>,
    /// End of sequence.
    pub eos: Option<u32>,
    /// Padding.
    pub pad: Option<u32>,
}

impl SlidingWindow {
    /// The layers of a model whose every `period`-th layer is global and the rest slide (`0`:
    /// every layer slides), as llama.cpp's `set_swa_pattern` lays them out.
    pub fn pattern(period: usize, n_layer: usize) -> Vec<bool> {
        (0..n_layer).map(|i| slides(period, i)).collect()
    }

    /// The period of `layers`, when they follow [`SlidingWindow::pattern`] (one pass).
    pub fn period_of(layers: &[bool]) -> Option<usize> {
        let period = layers.iter().position(|&sliding| !sliding)? + 1;
        layers
            .iter()
            .enumerate()
            .all(|(i, &sliding)| sliding == slides(period, i))
            .then_some(period)
    }
}

fn slides(period: usize, i: usize) -> bool {
    period == 0 || i % period < period - 1
}

impl Hparams {
    /// `hidden_size × num_attention_heads` bounds every projection: refuses a head size whose
    /// product with the head count passes [`MAX_DIM`] (or wraps).
    pub(super) fn check_projection_size(&self) -> Result<(), String> {
        if self
            .n_head
            .checked_mul(self.head_dim)
            .is_none_or(|q| q > MAX_DIM)
        {
            return Err(format!(
                "({}) × num_attention_heads ({}) is larger than {MAX_DIM}, which no real model \
                 has",
                self.head_dim, self.n_head
            ));
        }
        Ok(())
    }

    /// The number of key/value heads divides the number of query heads.
    pub(super) fn check_head_groups(&self) -> Result<(), String> {
        if self.n_head_kv == 0 || !self.n_head.is_multiple_of(self.n_head_kv) {
            return Err(format!(
                "({}) must divide num_attention_heads ({})",
                self.n_head_kv, self.n_head
            ));
        }
        Ok(())
    }

    /// Gemma 3's `query_pre_attn_scalar`: the head size, except for the 27B model (62
    /// layers), which scales by `hidden_size / num_attention_heads` (llama.cpp's
    /// `f_attention_scale`).
    pub fn query_pre_attn_scalar(&self) -> usize {
        if self.n_layer == 62 {
            self.n_embd / self.n_head
        } else {
            self.head_dim
        }
    }

    /// Llama 3's per-frequency RoPE factors (`rope_freqs.weight`), for families that carry
    /// them as a tensor.
    pub fn rope_freqs(&self) -> Option<Vec<f32>> {
        if !self.arch.family().has_rope_freqs_tensor() {
            return None;
        }
        self.rope_scaling
            .llama3_factors(self.rope_theta.unwrap_or(10_000.0), self.head_dim)
    }
}

/// A bare set of hyper-parameters for `arch`, filled in by the readers.
pub(super) fn empty(arch: Arch) -> Hparams {
    Hparams {
        arch,
        n_layer: 0,
        n_embd: 0,
        n_ff: 0,
        n_head: 0,
        n_head_kv: 0,
        head_dim: 0,
        context_length: 0,
        vocab_size: 0,
        rms_norm_eps: 0.0,
        rope_theta: None,
        rope_theta_swa: None,
        rope_scaling: RopeScaling::None,
        tie_word_embeddings: false,
        attention_bias: false,
        sliding_window: None,
        final_logit_softcapping: None,
        attn_logit_softcapping: None,
        special_tokens: SpecialTokenIds::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::MAX_LAYERS;

    #[test]
    fn sliding_period_matches_the_exhaustive_search() {
        for n_layer in 1..=13 {
            for n in 0..=n_layer + 1 {
                let flags = SlidingWindow::pattern(n, n_layer);
                let exhaustive =
                    (1..=n_layer).find(|&p| SlidingWindow::pattern(p, n_layer) == flags);
                assert_eq!(
                    SlidingWindow::period_of(&flags),
                    exhaustive,
                    "n {n}, {n_layer}"
                );
            }
        }
        let mut odd = SlidingWindow::pattern(6, 18);
        odd[7] = false;
        assert_eq!(SlidingWindow::period_of(&odd), None);
        assert_eq!(
            SlidingWindow::period_of(&SlidingWindow::pattern(6, MAX_LAYERS)),
            Some(6)
        );
        assert_eq!(
            SlidingWindow::pattern(6, 7),
            [true, true, true, true, true, false, true]
        );
        assert_eq!(SlidingWindow::pattern(0, 2), [true, true]);
    }
}
