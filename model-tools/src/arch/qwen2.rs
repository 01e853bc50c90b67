//! Qwen2 / Qwen2.5 (`Qwen2ForCausalLM`).
//!
//! Quirks: query, key and value projections always have biases (the Hugging Face class
//! hard-codes them); llama.cpp also takes an output bias, which Hugging Face cannot hold.
//! Sliding-window attention is off in every released checkpoint.

use serde_json::{json, Map, Value as Json};

use super::tensors::{LayerRole, Role, FFN_NORM_AFTER_ATTENTION};
use super::{Biases, Defaults, Family, HeadDim, Hparams};

/// The Qwen2 family.
#[derive(Debug, Clone, Copy)]
pub struct Qwen2;

impl Family for Qwen2 {
    fn gguf_name(&self) -> &'static str {
        "qwen2"
    }

    fn hf_class(&self) -> &'static str {
        "Qwen2ForCausalLM"
    }

    fn hf_model_type(&self) -> &'static str {
        "qwen2"
    }

    fn defaults(&self) -> Defaults {
        qwen_defaults(HeadDim::FromHidden)
    }

    fn layer_roles(&self) -> &'static [LayerRole] {
        &[FFN_NORM_AFTER_ATTENTION]
    }

    fn biases(&self) -> Biases {
        Biases {
            gguf: &[Role::AttnQ, Role::AttnK, Role::AttnV, Role::Output],
            hf: &[Role::AttnQ, Role::AttnK, Role::AttnV],
            hf_always: true,
        }
    }

    fn write_hf_config(&self, hp: &Hparams, c: &mut Map<String, Json>) {
        write_qwen_config(hp, c, json!(hp.context_length));
    }
}

/// The `transformers` defaults of the Qwen config classes.
pub(super) fn qwen_defaults(head_dim: HeadDim) -> Defaults {
    Defaults {
        n_head: None,
        n_head_kv: None,
        head_dim,
        context_length: 32768,
        rope_theta: 10_000.0,
        rope_theta_swa: None,
        tie_word_embeddings: false,
    }
}

/// The `config.json` keys the Qwen classes share; sliding-window attention stays off.
pub(super) fn write_qwen_config(hp: &Hparams, c: &mut Map<String, Json>, sliding_window: Json) {
    c.insert("hidden_act".into(), json!("silu"));
    c.insert("use_sliding_window".into(), json!(false));
    c.insert("sliding_window".into(), sliding_window);
    c.insert("max_window_layers".into(), json!(hp.n_layer));
}
