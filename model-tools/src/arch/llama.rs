//! Llama (`LlamaForCausalLM`: Llama 2/3.x, SmolLM, SmolLM2 and other dense look-alikes).
//!
//! Quirks:
//! - **Q/K row permutation.** llama.cpp applies RoPE to interleaved pairs, Hugging Face to the
//!   two halves of each head (`rotate_half`), so the converter reorders the rows of `q_proj`
//!   (with `num_attention_heads`) and `k_proj` (with `num_key_value_heads`), biases too
//!   (`LlamaModel.permute`). [`permuted_source_row`] does it, [`unpermute_rows`] undoes it.
//! - **Llama 3 RoPE scaling** travels as a `rope_freqs.weight` tensor, not as metadata.
//! - **Biases.** llama.cpp takes any attention or feed-forward bias; Hugging Face's
//!   `attention_bias` means all four attention biases and `mlp_bias` the three FFN ones.
//! - A 49 152-token vocabulary (SmolLM, small Granite) adds no BOS token.

use serde_json::{json, Map, Value as Json};
use vazhi_gguf::Metadata;

use super::family::VocabQuirks;
use super::tensors::{LayerRole, Role, Transform, FFN_NORM_AFTER_ATTENTION};
use super::{ArchError, Biases, Defaults, Family, HeadDim, Hparams};

/// The Llama family.
#[derive(Debug, Clone, Copy)]
pub struct Llama;

impl Family for Llama {
    fn gguf_name(&self) -> &'static str {
        "llama"
    }

    fn hf_class(&self) -> &'static str {
        "LlamaForCausalLM"
    }

    fn hf_model_type(&self) -> &'static str {
        "llama"
    }

    fn defaults(&self) -> Defaults {
        Defaults {
            n_head: None,
            n_head_kv: None,
            head_dim: HeadDim::FromHidden,
            context_length: 2048,
            rope_theta: 10_000.0,
            rope_theta_swa: None,
            tie_word_embeddings: false,
        }
    }

    fn layer_roles(&self) -> &'static [LayerRole] {
        &[FFN_NORM_AFTER_ATTENTION]
    }

    fn biases(&self) -> Biases {
        Biases {
            gguf: &[
                Role::AttnQ,
                Role::AttnK,
                Role::AttnV,
                Role::AttnOut,
                Role::FfnGate,
                Role::FfnUp,
                Role::FfnDown,
            ],
            hf: &[Role::AttnQ, Role::AttnK, Role::AttnV, Role::AttnOut],
            hf_always: false,
        }
    }

    fn vocab_quirks(&self) -> VocabQuirks {
        VocabQuirks {
            space_prefix_from_tokenizer_config: true,
            no_bos_for_vocab_size: Some(49152),
            ..VocabQuirks::default()
        }
    }

    fn has_rope_freqs_tensor(&self) -> bool {
        true
    }

    fn transform(&self, role: Role, _bias: bool, hp: &Hparams) -> Transform {
        match role {
            Role::AttnQ => Transform::PermuteRows { n_head: hp.n_head },
            Role::AttnK => Transform::PermuteRows {
                n_head: hp.n_head_kv,
            },
            _ => Transform::Identity,
        }
    }

    fn check(&self, hp: &Hparams) -> Result<(), ArchError> {
        if !hp.head_dim.is_multiple_of(2) {
            return Err(ArchError::config(
                "head_dim",
                format!("({}) must be even for RoPE", hp.head_dim),
            ));
        }
        Ok(())
    }

    fn write_hf_config(&self, hp: &Hparams, c: &mut Map<String, Json>) {
        c.insert("hidden_act".into(), json!("silu"));
        c.insert("attention_bias".into(), json!(hp.attention_bias));
        c.insert("mlp_bias".into(), json!(false));
        c.insert("pretraining_tp".into(), json!(1));
    }

    fn write_gguf(&self, hp: &Hparams, md: &mut Metadata) {
        let u32_of = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        md.insert("llama.vocab_size", u32_of(hp.vocab_size));
        md.insert("llama.rope.dimension_count", u32_of(hp.head_dim));
    }
}

/// The source row of output row `row` under `LlamaModel.permute` with `n_head` heads of
/// `rows / n_head` rows each: within a head, output row `2j + i` comes from row
/// `i * half + j` (`reshape(n_head, 2, half, …).swapaxes(1, 2)`).
pub fn permuted_source_row(row: usize, rows: usize, n_head: usize) -> usize {
    // Planning checks `rows == n_head × head_dim`; fewer rows than heads is the identity.
    let head_rows = (rows / n_head.max(1)).max(1);
    let half = head_rows / 2;
    let head = row / head_rows;
    let within = row % head_rows;
    let (j, i) = (within / 2, within % 2);
    head * head_rows + i * half + j
}

/// Undoes [`permuted_source_row`]'s permutation: `values` holds rows of `row_len` values in
/// llama.cpp's order, the result holds them in Hugging Face's. `None` when the rows do not
/// split into `n_head` heads of an even number of rows.
pub fn unpermute_rows(values: &[f32], row_len: usize, n_head: usize) -> Option<Vec<f32>> {
    if row_len == 0 || n_head == 0 || !values.len().is_multiple_of(row_len) {
        return None;
    }
    let rows = values.len() / row_len;
    if !rows.is_multiple_of(n_head) || !(rows / n_head).is_multiple_of(2) {
        return None;
    }
    let head_rows = rows / n_head;
    let half = head_rows / 2;
    let mut out = vec![0.0f32; values.len()];
    for h in 0..n_head {
        for j in 0..2 {
            for i in 0..half {
                let hf_row = h * head_rows + j * half + i;
                let gguf_row = h * head_rows + 2 * i + j;
                out[hf_row * row_len..(hf_row + 1) * row_len]
                    .copy_from_slice(&values[gguf_row * row_len..(gguf_row + 1) * row_len]);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `LlamaModel.permute` written out with explicit reshapes, for comparison: view as
    /// `[n_head][2][half][cols]`, swap axes 1 and 2.
    fn llama_cpp_permute(hf: &[f32], row_len: usize, n_head: usize) -> Vec<f32> {
        let rows = hf.len() / row_len;
        let half = rows / n_head / 2;
        let mut out = Vec::with_capacity(hf.len());
        for h in 0..n_head {
            for i in 0..half {
                for j in 0..2 {
                    let src = h * 2 * half + j * half + i;
                    out.extend_from_slice(&hf[src * row_len..(src + 1) * row_len]);
                }
            }
        }
        out
    }

    #[test]
    fn permute_matches_reference() {
        for (n_head, rows, row_len) in [(3, 24, 4), (2, 12, 1), (1, 8, 1), (9, 576, 3)] {
            let hf: Vec<f32> = (0..rows * row_len).map(|v| v as f32).collect();
            let expected = llama_cpp_permute(&hf, row_len, n_head);
            let permuted: Vec<f32> = (0..rows)
                .flat_map(|r| {
                    let src = permuted_source_row(r, rows, n_head);
                    hf[src * row_len..(src + 1) * row_len].to_vec()
                })
                .collect();
            assert_eq!(permuted, expected, "{n_head} heads");
        }
        // numpy: np.arange(12).reshape(2, 2, 3).swapaxes(1, 2).reshape(12)
        let order: Vec<usize> = (0..12).map(|r| permuted_source_row(r, 12, 2)).collect();
        assert_eq!(order, [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11]);
        assert_eq!(
            permuted_source_row(3, 4, 6),
            3,
            "fewer rows than heads: identity"
        );
    }

    #[test]
    fn unpermute_inverts_the_converter_permutation() {
        for (n_head, head_dim, row_len) in [(9, 64, 3), (3, 64, 5), (1, 4, 1), (4, 8, 1)] {
            let rows = n_head * head_dim;
            let hf: Vec<f32> = (0..rows * row_len).map(|v| v as f32).collect();
            let gguf = llama_cpp_permute(&hf, row_len, n_head);
            assert_ne!(gguf, hf, "the permutation must move something");
            assert_eq!(unpermute_rows(&gguf, row_len, n_head), Some(hf));
        }
        assert_eq!(
            unpermute_rows(&[0.0; 12], 2, 4),
            None,
            "3 rows per head is odd"
        );
        assert_eq!(unpermute_rows(&[0.0; 12], 5, 1), None, "not whole rows");
        assert_eq!(unpermute_rows(&[0.0; 12], 1, 0), None);
    }

    #[test]
    fn q_and_k_are_permuted_with_their_head_counts() {
        let config = crate::arch::hf_config::tests::llama_config();
        let hp = Hparams::from_hf_config(&config).expect("config");
        let t = |role| Llama.transform(role, false, &hp);
        assert_eq!(t(Role::AttnQ), Transform::PermuteRows { n_head: 9 });
        assert_eq!(t(Role::AttnK), Transform::PermuteRows { n_head: 3 });
        assert_eq!(
            Llama.transform(Role::AttnQ, true, &hp),
            Transform::PermuteRows { n_head: 9 }
        );
        assert_eq!(t(Role::AttnV), Transform::Identity);
        assert_eq!(t(Role::AttnNorm), Transform::Identity);
    }
}
