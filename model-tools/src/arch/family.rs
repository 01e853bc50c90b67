//! The [`Family`] trait: everything that differs between architectures, answered by one
//! family file each. The readers and writers in [`super::hf_config`],
//! [`super::gguf_metadata`] and [`super::tensors`] are shared and ask the family only here.

use serde_json::{Map, Value as Json};
use vazhi_gguf::Metadata;

use super::gguf_metadata::Keys;
use super::tensors::{LayerRole, Role, Transform};
use super::{ArchError, Hparams};

/// The values a `transformers` config class fills in when `config.json` leaves a key out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Defaults {
    /// `num_attention_heads` (`None`: the key is required).
    pub n_head: Option<usize>,
    /// `num_key_value_heads` (`None`: as many as the query heads).
    pub n_head_kv: Option<usize>,
    /// `head_dim`.
    pub head_dim: HeadDim,
    /// `max_position_embeddings`.
    pub context_length: u64,
    /// `rope_theta`.
    pub rope_theta: f64,
    /// The RoPE base of sliding-window layers, for families that have them.
    pub rope_theta_swa: Option<f64>,
    /// `tie_word_embeddings`.
    pub tie_word_embeddings: bool,
}

/// How a family's `head_dim` defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadDim {
    /// `hidden_size / num_attention_heads`.
    FromHidden,
    /// A fixed size.
    Fixed(usize),
}

/// Which `.bias` tensors a family may have. The two directions differ on purpose: llama.cpp's
/// loader takes each bias on its own, while a Hugging Face config can only say "all of
/// them" or "none" (`attention_bias`), or has them always (Qwen2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Biases {
    /// Biases llama.cpp's loader takes for this family (all optional): what `convert`
    /// accepts from a checkpoint.
    pub gguf: &'static [Role],
    /// Biases the Hugging Face class can hold: what `import-gguf` maps.
    pub hf: &'static [Role],
    /// Whether the Hugging Face class always has the `hf` biases (Qwen2), rather than all or
    /// none of them behind `attention_bias` (Llama).
    pub hf_always: bool,
}

/// Tokenizer details a family's converter handles its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VocabQuirks {
    /// Writes `tokenizer_config.json`'s `add_prefix_space` as
    /// `tokenizer.ggml.add_space_prefix` before the vocabulary (`LlamaModel.set_vocab`).
    pub space_prefix_from_tokenizer_config: bool,
    /// Always turns the SentencePiece space prefix off (Gemma's converter).
    pub no_space_prefix: bool,
    /// A vocabulary of this size adds no BOS token (SmolLM and the small Granite models).
    pub no_bos_for_vocab_size: Option<usize>,
    /// Drops embedding rows past the vocabulary instead of refusing them (Gemma 3).
    pub trims_embedding_rows: bool,
    /// A SentencePiece vocabulary is a `GemmaTokenizer` in Hugging Face, not a
    /// `LlamaTokenizer`.
    pub gemma_tokenizer: bool,
}

/// One architecture family: its names, its defaults, its tensors and its quirks. Each
/// method with a default body is a quirk that most families do not have.
pub trait Family: Sync {
    /// The GGUF `general.architecture` value.
    fn gguf_name(&self) -> &'static str;

    /// The Hugging Face `architectures[0]` class.
    fn hf_class(&self) -> &'static str;

    /// The Hugging Face `model_type`.
    fn hf_model_type(&self) -> &'static str;

    /// What the `transformers` config class fills in.
    fn defaults(&self) -> Defaults;

    /// The weights every layer has besides [`super::tensors::COMMON_LAYER_ROLES`].
    fn layer_roles(&self) -> &'static [LayerRole];

    /// Which biases the family may have.
    fn biases(&self) -> Biases;

    /// Tokenizer quirks.
    fn vocab_quirks(&self) -> VocabQuirks {
        VocabQuirks::default()
    }

    /// Whether Llama 3 RoPE scaling travels as a `rope_freqs.weight` tensor.
    fn has_rope_freqs_tensor(&self) -> bool {
        false
    }

    /// How a tensor's values change from the Hugging Face layout to llama.cpp's.
    fn transform(&self, _role: Role, _bias: bool, _hp: &Hparams) -> Transform {
        Transform::Identity
    }

    /// Checks that only this family needs, after the shared ones.
    fn check(&self, _hp: &Hparams) -> Result<(), ArchError> {
        Ok(())
    }

    /// Reads the family's own `config.json` keys (`c` has `text_config` merged in).
    fn read_hf_config(&self, _c: &Json, _hp: &mut Hparams) -> Result<(), ArchError> {
        Ok(())
    }

    /// Writes the family's own `config.json` keys.
    fn write_hf_config(&self, hp: &Hparams, c: &mut Map<String, Json>);

    /// Reads the family's own GGUF keys.
    fn read_gguf(&self, _keys: &Keys<'_>, _hp: &mut Hparams) -> Result<(), ArchError> {
        Ok(())
    }

    /// Writes the family's own GGUF keys, after the shared ones and `general.file_type`.
    fn write_gguf(&self, _hp: &Hparams, _md: &mut Metadata) {}
}
