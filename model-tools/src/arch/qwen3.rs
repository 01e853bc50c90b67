//! Dense Qwen3 (`Qwen3ForCausalLM`).
//!
//! Quirks: per-head RMSNorm on queries and keys (`q_norm`, `k_norm`), a fixed default head
//! size of 128 that need not equal `hidden_size / num_attention_heads`, and no biases in the
//! Hugging Face class.

use serde_json::{json, Map, Value as Json};

use super::qwen2::{qwen_defaults, write_qwen_config};
use super::tensors::{LayerRole, Role, FFN_NORM_AFTER_ATTENTION, K_NORM, Q_NORM};
use super::{Biases, Defaults, Family, HeadDim, Hparams};

/// The Qwen3 family.
#[derive(Debug, Clone, Copy)]
pub struct Qwen3;

impl Family for Qwen3 {
    fn gguf_name(&self) -> &'static str {
        "qwen3"
    }

    fn hf_class(&self) -> &'static str {
        "Qwen3ForCausalLM"
    }

    fn hf_model_type(&self) -> &'static str {
        "qwen3"
    }

    fn defaults(&self) -> Defaults {
        qwen_defaults(HeadDim::Fixed(128))
    }

    fn layer_roles(&self) -> &'static [LayerRole] {
        &[FFN_NORM_AFTER_ATTENTION, Q_NORM, K_NORM]
    }

    fn biases(&self) -> Biases {
        Biases {
            gguf: &[Role::AttnQ, Role::AttnK, Role::AttnV],
            hf: &[],
            hf_always: false,
        }
    }

    fn write_hf_config(&self, hp: &Hparams, c: &mut Map<String, Json>) {
        write_qwen_config(hp, c, Json::Null);
        c.insert("attention_bias".into(), json!(false));
    }
}
