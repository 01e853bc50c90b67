//! GGUF ↔ Hugging Face tensor names per architecture, the shape each GGUF tensor must have,
//! and the value transforms that undo llama.cpp's conversion (`convert_hf_to_gguf.py`):
//!
//! - `llama`: q_proj / k_proj rows were permuted for llama.cpp's interleaved RoPE
//!   (`LlamaModel.permute`, with `n_head` for q and `n_head_kv` for k), undone by
//!   [`unpermute_rows`];
//! - `gemma3`: every RMSNorm weight (`*norm.weight`) had 1 added (`Gemma3RMSNorm` computes
//!   `x * (1 + w)`, llama.cpp `x * w`), undone by subtracting 1;
//! - `qwen2`, `qwen3`: names only.
//!
//! GGUF dimensions are stored innermost first (`ne[0]` is the contiguous one), so a torch
//! shape is the GGUF dims reversed.

use std::fmt;

/// A model architecture `import-gguf` can convert back to Hugging Face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// `llama` (Llama 2/3, SmolLM, SmolLM2, Mistral-style dense models): `LlamaForCausalLM`.
    Llama,
    /// `gemma3` (Gemma 3 text models): `Gemma3ForCausalLM`.
    Gemma3,
    /// `qwen2` (Qwen2, Qwen2.5): `Qwen2ForCausalLM`.
    Qwen2,
    /// `qwen3` (dense Qwen3): `Qwen3ForCausalLM`.
    Qwen3,
}

impl Arch {
    /// Every supported architecture.
    pub const ALL: [Arch; 4] = [Arch::Llama, Arch::Gemma3, Arch::Qwen2, Arch::Qwen3];

    /// The architecture for a GGUF `general.architecture` value.
    pub fn from_gguf(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.gguf_name() == name)
    }

    /// The GGUF `general.architecture` value (also the metadata key prefix).
    pub fn gguf_name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Gemma3 => "gemma3",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
        }
    }

    /// The Hugging Face `architectures[0]` class.
    pub fn hf_class(self) -> &'static str {
        match self {
            Arch::Llama => "LlamaForCausalLM",
            Arch::Gemma3 => "Gemma3ForCausalLM",
            Arch::Qwen2 => "Qwen2ForCausalLM",
            Arch::Qwen3 => "Qwen3ForCausalLM",
        }
    }

    /// The Hugging Face `model_type`.
    pub fn hf_model_type(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Gemma3 => "gemma3_text",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
        }
    }

    /// The supported GGUF names, comma-separated (for error messages).
    pub fn supported_list() -> String {
        Arch::ALL
            .iter()
            .map(|a| a.gguf_name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.gguf_name())
    }
}

/// What a tensor is, independent of naming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TensorKind {
    /// Token embeddings `[n_vocab, n_embd]`.
    TokenEmbd,
    /// Final norm.
    OutputNorm,
    /// LM head (absent when tied to the embeddings).
    Output,
    /// llama3-style RoPE frequency factors (derived data: becomes `rope_scaling` in the
    /// config, not a checkpoint tensor).
    RopeFreqs,
    /// Pre-attention norm.
    AttnNorm,
    /// Query projection weight.
    AttnQ,
    /// Key projection weight.
    AttnK,
    /// Value projection weight.
    AttnV,
    /// Attention output projection weight.
    AttnOutput,
    /// Query projection bias.
    AttnQBias,
    /// Key projection bias.
    AttnKBias,
    /// Value projection bias.
    AttnVBias,
    /// Attention output projection bias.
    AttnOutputBias,
    /// Per-head query RMSNorm.
    AttnQNorm,
    /// Per-head key RMSNorm.
    AttnKNorm,
    /// Gemma 3 post-attention norm.
    PostAttnNorm,
    /// Pre-FFN norm (`post_attention_layernorm` in Llama/Qwen, `pre_feedforward_layernorm`
    /// in Gemma 3).
    FfnNorm,
    /// Gemma 3 post-FFN norm.
    PostFfwNorm,
    /// FFN gate projection.
    FfnGate,
    /// FFN up projection.
    FfnUp,
    /// FFN down projection.
    FfnDown,
}

/// `(kind, GGUF name suffix, HF name suffix)` for per-layer tensors shared by every
/// architecture (prefixes `blk.N.` and `model.layers.N.`).
const LAYER_COMMON: &[(TensorKind, &str, &str)] = &[
    (
        TensorKind::AttnNorm,
        "attn_norm.weight",
        "input_layernorm.weight",
    ),
    (
        TensorKind::AttnQ,
        "attn_q.weight",
        "self_attn.q_proj.weight",
    ),
    (
        TensorKind::AttnK,
        "attn_k.weight",
        "self_attn.k_proj.weight",
    ),
    (
        TensorKind::AttnV,
        "attn_v.weight",
        "self_attn.v_proj.weight",
    ),
    (
        TensorKind::AttnOutput,
        "attn_output.weight",
        "self_attn.o_proj.weight",
    ),
    (
        TensorKind::FfnGate,
        "ffn_gate.weight",
        "mlp.gate_proj.weight",
    ),
    (TensorKind::FfnUp, "ffn_up.weight", "mlp.up_proj.weight"),
    (
        TensorKind::FfnDown,
        "ffn_down.weight",
        "mlp.down_proj.weight",
    ),
];

/// Attention biases: Qwen2 has q/k/v; Llama may have all four (`attention_bias`).
const LAYER_BIASES: &[(TensorKind, &str, &str)] = &[
    (
        TensorKind::AttnQBias,
        "attn_q.bias",
        "self_attn.q_proj.bias",
    ),
    (
        TensorKind::AttnKBias,
        "attn_k.bias",
        "self_attn.k_proj.bias",
    ),
    (
        TensorKind::AttnVBias,
        "attn_v.bias",
        "self_attn.v_proj.bias",
    ),
    (
        TensorKind::AttnOutputBias,
        "attn_output.bias",
        "self_attn.o_proj.bias",
    ),
];

const LAYER_QK_NORM: &[(TensorKind, &str, &str)] = &[
    (
        TensorKind::AttnQNorm,
        "attn_q_norm.weight",
        "self_attn.q_norm.weight",
    ),
    (
        TensorKind::AttnKNorm,
        "attn_k_norm.weight",
        "self_attn.k_norm.weight",
    ),
];

const LAYER_FFN_NORM_LLAMA: &[(TensorKind, &str, &str)] = &[(
    TensorKind::FfnNorm,
    "ffn_norm.weight",
    "post_attention_layernorm.weight",
)];

const LAYER_NORMS_GEMMA3: &[(TensorKind, &str, &str)] = &[
    (
        TensorKind::PostAttnNorm,
        "post_attention_norm.weight",
        "post_attention_layernorm.weight",
    ),
    (
        TensorKind::FfnNorm,
        "ffn_norm.weight",
        "pre_feedforward_layernorm.weight",
    ),
    (
        TensorKind::PostFfwNorm,
        "post_ffw_norm.weight",
        "post_feedforward_layernorm.weight",
    ),
];

const GLOBALS: &[(TensorKind, &str, &str)] = &[
    (
        TensorKind::TokenEmbd,
        "token_embd.weight",
        "model.embed_tokens.weight",
    ),
    (
        TensorKind::OutputNorm,
        "output_norm.weight",
        "model.norm.weight",
    ),
    (TensorKind::Output, "output.weight", "lm_head.weight"),
];

/// The per-layer name table of `arch`.
fn layer_table(arch: Arch) -> Vec<(TensorKind, &'static str, &'static str)> {
    let mut table = LAYER_COMMON.to_vec();
    match arch {
        Arch::Llama => {
            table.extend_from_slice(LAYER_FFN_NORM_LLAMA);
            table.extend_from_slice(LAYER_BIASES);
        }
        Arch::Qwen2 => {
            table.extend_from_slice(LAYER_FFN_NORM_LLAMA);
            table.extend_from_slice(&LAYER_BIASES[..3]);
        }
        Arch::Qwen3 => {
            table.extend_from_slice(LAYER_FFN_NORM_LLAMA);
            table.extend_from_slice(LAYER_QK_NORM);
        }
        Arch::Gemma3 => {
            table.extend_from_slice(LAYER_NORMS_GEMMA3);
            table.extend_from_slice(LAYER_QK_NORM);
        }
    }
    table
}

/// The per-layer tensors `arch` cannot do without (biases and `output` are optional or
/// checked separately).
pub fn required_layer_kinds(arch: Arch) -> Vec<TensorKind> {
    let mut kinds = vec![
        TensorKind::AttnNorm,
        TensorKind::AttnQ,
        TensorKind::AttnK,
        TensorKind::AttnV,
        TensorKind::AttnOutput,
        TensorKind::FfnNorm,
        TensorKind::FfnGate,
        TensorKind::FfnUp,
        TensorKind::FfnDown,
    ];
    match arch {
        Arch::Llama => {}
        Arch::Qwen2 => kinds.extend([
            TensorKind::AttnQBias,
            TensorKind::AttnKBias,
            TensorKind::AttnVBias,
        ]),
        Arch::Qwen3 => kinds.extend([TensorKind::AttnQNorm, TensorKind::AttnKNorm]),
        Arch::Gemma3 => kinds.extend([
            TensorKind::AttnQNorm,
            TensorKind::AttnKNorm,
            TensorKind::PostAttnNorm,
            TensorKind::PostFfwNorm,
        ]),
    }
    kinds
}

/// A GGUF tensor name resolved: what it is, its layer, and its Hugging Face name (`None` for
/// derived tensors such as `rope_freqs.weight` that have no checkpoint equivalent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedName {
    /// What the tensor is.
    pub kind: TensorKind,
    /// Its layer (`blk.N`), for per-layer tensors.
    pub layer: Option<usize>,
    /// The Hugging Face tensor name.
    pub hf_name: Option<String>,
}

/// Resolves a GGUF tensor name for `arch`; `None` for names the architecture does not have.
pub fn gguf_to_hf(arch: Arch, gguf_name: &str) -> Option<ResolvedName> {
    if gguf_name == "rope_freqs.weight" {
        return (arch == Arch::Llama).then_some(ResolvedName {
            kind: TensorKind::RopeFreqs,
            layer: None,
            hf_name: None,
        });
    }
    if let Some(&(kind, _, hf)) = GLOBALS.iter().find(|row| row.1 == gguf_name) {
        return Some(ResolvedName {
            kind,
            layer: None,
            hf_name: Some(hf.to_owned()),
        });
    }
    let rest = gguf_name.strip_prefix("blk.")?;
    let (index, suffix) = rest.split_once('.')?;
    let layer = parse_index(index)?;
    let (kind, _, hf) = layer_table(arch).into_iter().find(|row| row.1 == suffix)?;
    Some(ResolvedName {
        kind,
        layer: Some(layer),
        hf_name: Some(format!("model.layers.{layer}.{hf}")),
    })
}

/// The GGUF name of a Hugging Face tensor name for `arch` (the inverse of [`gguf_to_hf`]);
/// `None` for names the architecture does not have.
pub fn hf_to_gguf(arch: Arch, hf_name: &str) -> Option<String> {
    if let Some(row) = GLOBALS.iter().find(|row| row.2 == hf_name) {
        return Some(row.1.to_owned());
    }
    let rest = hf_name.strip_prefix("model.layers.")?;
    let (index, suffix) = rest.split_once('.')?;
    let layer = parse_index(index)?;
    let (_, gguf, _) = layer_table(arch).into_iter().find(|row| row.2 == suffix)?;
    Some(format!("blk.{layer}.{gguf}"))
}

/// The GGUF name of the tensor of `kind` (in `layer`, for per-layer kinds) in `arch`.
pub fn gguf_name_of(arch: Arch, kind: TensorKind, layer: Option<usize>) -> Option<String> {
    match layer {
        None => GLOBALS
            .iter()
            .find(|row| row.0 == kind)
            .map(|row| row.1.to_owned()),
        Some(layer) => layer_table(arch)
            .into_iter()
            .find(|row| row.0 == kind)
            .map(|row| format!("blk.{layer}.{}", row.1)),
    }
}

/// A decimal layer index without sign or leading zeros.
fn parse_index(text: &str) -> Option<usize> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

/// How a tensor's values change on the way back to Hugging Face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// Values are copied as they are.
    Identity,
    /// Rows were permuted per head for llama.cpp's RoPE layout ([`unpermute_rows`]).
    UnpermuteRows {
        /// Heads the rows are grouped in (`n_head` for q, `n_head_kv` for k).
        n_head: usize,
    },
    /// 1 was added to an RMSNorm weight; subtract it.
    SubtractOne,
}

/// The transform for a tensor of `kind` in `arch` (head counts from the GGUF metadata).
pub fn transform_for(arch: Arch, kind: TensorKind, n_head: usize, n_head_kv: usize) -> Transform {
    match (arch, kind) {
        (Arch::Llama, TensorKind::AttnQ | TensorKind::AttnQBias) => {
            Transform::UnpermuteRows { n_head }
        }
        (Arch::Llama, TensorKind::AttnK | TensorKind::AttnKBias) => {
            Transform::UnpermuteRows { n_head: n_head_kv }
        }
        (
            Arch::Gemma3,
            TensorKind::OutputNorm
            | TensorKind::AttnNorm
            | TensorKind::AttnQNorm
            | TensorKind::AttnKNorm
            | TensorKind::PostAttnNorm
            | TensorKind::FfnNorm
            | TensorKind::PostFfwNorm,
        ) => Transform::SubtractOne,
        _ => Transform::Identity,
    }
}

/// Undoes `LlamaModel.permute` on a row-major matrix of `rows × row_len` values (a bias is a
/// matrix with `row_len` 1).
///
/// The converter reshapes the rows to `(n_head, 2, rows / n_head / 2)` and swaps the last two
/// axes, so GGUF row `h*hd + 2*i + j` holds Hugging Face row `h*hd + j*hd/2 + i` (`hd` =
/// rows per head). Returns `None` when the rows do not split into `n_head` heads of an even
/// size.
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

    /// `(arch, GGUF name, HF name)`: every supported per-architecture spelling, written out
    /// from llama.cpp's `tensor_mapping.py` and the Hugging Face modelling code.
    const TABLE: &[(Arch, &str, &str)] = &[
        (
            Arch::Llama,
            "token_embd.weight",
            "model.embed_tokens.weight",
        ),
        (Arch::Llama, "output_norm.weight", "model.norm.weight"),
        (Arch::Llama, "output.weight", "lm_head.weight"),
        (
            Arch::Llama,
            "blk.0.attn_norm.weight",
            "model.layers.0.input_layernorm.weight",
        ),
        (
            Arch::Llama,
            "blk.3.attn_q.weight",
            "model.layers.3.self_attn.q_proj.weight",
        ),
        (
            Arch::Llama,
            "blk.3.attn_k.weight",
            "model.layers.3.self_attn.k_proj.weight",
        ),
        (
            Arch::Llama,
            "blk.3.attn_v.weight",
            "model.layers.3.self_attn.v_proj.weight",
        ),
        (
            Arch::Llama,
            "blk.3.attn_output.weight",
            "model.layers.3.self_attn.o_proj.weight",
        ),
        (
            Arch::Llama,
            "blk.3.attn_q.bias",
            "model.layers.3.self_attn.q_proj.bias",
        ),
        (
            Arch::Llama,
            "blk.3.attn_output.bias",
            "model.layers.3.self_attn.o_proj.bias",
        ),
        (
            Arch::Llama,
            "blk.29.ffn_norm.weight",
            "model.layers.29.post_attention_layernorm.weight",
        ),
        (
            Arch::Llama,
            "blk.29.ffn_gate.weight",
            "model.layers.29.mlp.gate_proj.weight",
        ),
        (
            Arch::Llama,
            "blk.29.ffn_up.weight",
            "model.layers.29.mlp.up_proj.weight",
        ),
        (
            Arch::Llama,
            "blk.29.ffn_down.weight",
            "model.layers.29.mlp.down_proj.weight",
        ),
        (
            Arch::Qwen2,
            "blk.1.attn_q.bias",
            "model.layers.1.self_attn.q_proj.bias",
        ),
        (
            Arch::Qwen2,
            "blk.1.attn_k.bias",
            "model.layers.1.self_attn.k_proj.bias",
        ),
        (
            Arch::Qwen2,
            "blk.1.attn_v.bias",
            "model.layers.1.self_attn.v_proj.bias",
        ),
        (
            Arch::Qwen2,
            "blk.1.ffn_norm.weight",
            "model.layers.1.post_attention_layernorm.weight",
        ),
        (
            Arch::Qwen2,
            "token_embd.weight",
            "model.embed_tokens.weight",
        ),
        (
            Arch::Qwen3,
            "blk.2.attn_q_norm.weight",
            "model.layers.2.self_attn.q_norm.weight",
        ),
        (
            Arch::Qwen3,
            "blk.2.attn_k_norm.weight",
            "model.layers.2.self_attn.k_norm.weight",
        ),
        (
            Arch::Qwen3,
            "blk.2.attn_q.weight",
            "model.layers.2.self_attn.q_proj.weight",
        ),
        (Arch::Qwen3, "output.weight", "lm_head.weight"),
        (
            Arch::Gemma3,
            "blk.17.attn_norm.weight",
            "model.layers.17.input_layernorm.weight",
        ),
        (
            Arch::Gemma3,
            "blk.17.post_attention_norm.weight",
            "model.layers.17.post_attention_layernorm.weight",
        ),
        (
            Arch::Gemma3,
            "blk.17.ffn_norm.weight",
            "model.layers.17.pre_feedforward_layernorm.weight",
        ),
        (
            Arch::Gemma3,
            "blk.17.post_ffw_norm.weight",
            "model.layers.17.post_feedforward_layernorm.weight",
        ),
        (
            Arch::Gemma3,
            "blk.0.attn_q_norm.weight",
            "model.layers.0.self_attn.q_norm.weight",
        ),
        (
            Arch::Gemma3,
            "blk.0.attn_k_norm.weight",
            "model.layers.0.self_attn.k_norm.weight",
        ),
        (
            Arch::Gemma3,
            "blk.0.ffn_down.weight",
            "model.layers.0.mlp.down_proj.weight",
        ),
        (Arch::Gemma3, "output_norm.weight", "model.norm.weight"),
    ];

    #[test]
    fn names_map_both_ways() {
        for &(arch, gguf, hf) in TABLE {
            let resolved = gguf_to_hf(arch, gguf).unwrap_or_else(|| panic!("{arch} {gguf}"));
            assert_eq!(resolved.hf_name.as_deref(), Some(hf), "{arch} {gguf}");
            assert_eq!(hf_to_gguf(arch, hf).as_deref(), Some(gguf), "{arch} {hf}");
        }
    }

    #[test]
    fn kinds_name_their_tensors() {
        assert_eq!(
            gguf_name_of(Arch::Gemma3, TensorKind::FfnNorm, Some(4)).as_deref(),
            Some("blk.4.ffn_norm.weight")
        );
        assert_eq!(
            gguf_name_of(Arch::Llama, TensorKind::OutputNorm, None).as_deref(),
            Some("output_norm.weight")
        );
        assert_eq!(
            gguf_name_of(Arch::Llama, TensorKind::AttnQNorm, Some(0)),
            None
        );
    }

    #[test]
    fn names_an_architecture_lacks_are_refused() {
        let absent: &[(Arch, &str)] = &[
            (Arch::Llama, "blk.0.attn_q_norm.weight"),
            (Arch::Llama, "blk.0.post_ffw_norm.weight"),
            (Arch::Qwen2, "blk.0.attn_output.bias"),
            (Arch::Qwen3, "blk.0.attn_q.bias"),
            (Arch::Gemma3, "blk.0.attn_q.bias"),
            (Arch::Gemma3, "rope_freqs.weight"),
            (Arch::Llama, "blk.01.attn_q.weight"),
            (Arch::Llama, "blk.-1.attn_q.weight"),
            (Arch::Llama, "blk.0.ffn_gate_exps.weight"),
            (Arch::Llama, "token_embd.bias"),
        ];
        for &(arch, name) in absent {
            assert_eq!(gguf_to_hf(arch, name), None, "{arch} {name}");
        }
        let rope = gguf_to_hf(Arch::Llama, "rope_freqs.weight").expect("llama rope_freqs");
        assert_eq!((rope.kind, rope.hf_name), (TensorKind::RopeFreqs, None));
        assert_eq!(
            hf_to_gguf(Arch::Llama, "model.layers.0.mlp.experts.weight"),
            None
        );
    }

    #[test]
    fn architectures_round_trip() {
        for arch in Arch::ALL {
            assert_eq!(Arch::from_gguf(arch.gguf_name()), Some(arch));
        }
        assert_eq!(Arch::from_gguf("gemma2"), None);
        assert!(Arch::supported_list().contains("qwen3"));
    }

    /// llama.cpp's `LlamaModel.permute`, written independently: reshape rows to
    /// `(n_head, 2, half)`, swap the last two axes.
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
    fn transforms_per_architecture() {
        use TensorKind as K;
        assert_eq!(
            transform_for(Arch::Llama, K::AttnK, 9, 3),
            Transform::UnpermuteRows { n_head: 3 }
        );
        assert_eq!(
            transform_for(Arch::Llama, K::AttnQBias, 9, 3),
            Transform::UnpermuteRows { n_head: 9 }
        );
        assert_eq!(
            transform_for(Arch::Llama, K::AttnNorm, 9, 3),
            Transform::Identity
        );
        assert_eq!(
            transform_for(Arch::Qwen2, K::AttnQ, 9, 3),
            Transform::Identity
        );
        assert_eq!(
            transform_for(Arch::Gemma3, K::AttnQ, 4, 1),
            Transform::Identity
        );
        for kind in [
            K::OutputNorm,
            K::AttnNorm,
            K::AttnQNorm,
            K::AttnKNorm,
            K::PostAttnNorm,
            K::FfnNorm,
            K::PostFfwNorm,
        ] {
            assert_eq!(
                transform_for(Arch::Gemma3, kind, 4, 1),
                Transform::SubtractOne
            );
            assert_eq!(transform_for(Arch::Qwen3, kind, 4, 1), Transform::Identity);
        }
    }
}
