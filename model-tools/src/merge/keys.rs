//! The tensor names of a PEFT LoRA adapter file, and what each one is.
//!
//! Formats (PEFT `utils/save_and_load.py::get_peft_model_state_dict` strips the adapter
//! name; `tuners/tuners_utils.py::_remove_adapter_name_from_state_dict_key`), each optionally
//! prefixed by `base_model.model.` and optionally carrying the adapter name (`.default`):
//! - `M.lora_A[.name].weight` `[r, in]` and `M.lora_B[.name].weight` `[out, r]`: LoRA on the
//!   linear (or Conv1D) layer `M`, base tensor `M.weight`;
//! - `M.lora_embedding_A[.name]` `[r, vocab]` and `M.lora_embedding_B[.name]` `[hidden, r]`:
//!   LoRA on the embedding `M` (`nn.Parameter`s, hence no `.weight`);
//! - `M.P` (or `M.modules_to_save.name.P`, or `M.name.P`) with `M` in `modules_to_save`: a
//!   full replacement of base tensor `M.P`;
//! - `M.base_layer.weight` (and `embed_tokens` / `lm_head` weights): the embedding copy PEFT
//!   saves beside an embedding LoRA; it must equal the base, as it does unless the vocabulary
//!   was resized or the adapter was trained on another base.

/// Prefix PEFT's `PeftModel` puts before module names.
const PEFT_PREFIX: &str = "base_model.model.";

/// What an adapter key is.
#[derive(Debug, PartialEq)]
pub(crate) enum Key {
    /// One factor of a LoRA pair on `module`.
    Factor { module: String, factor: Factor },
    /// A whole tensor for base tensor `tensor`; `copy` when saved as `…base_layer.weight`.
    Full { tensor: String, copy: bool },
    /// A tensor of a feature that is refused.
    Unsupported(&'static str),
}

/// Which LoRA factor a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Factor {
    A,
    B,
    EmbeddingA,
    EmbeddingB,
}

/// Classifies one adapter tensor name.
pub(crate) fn parse_key(key: &str) -> Key {
    let stripped = key.strip_prefix(PEFT_PREFIX).unwrap_or(key);
    let parts: Vec<&str> = stripped.split('.').collect();
    if parts.contains(&"lora_magnitude_vector") {
        return Key::Unsupported("a DoRA magnitude vector (use_dora)");
    }
    if parts.contains(&"token_adapter") {
        return Key::Unsupported("a trainable-token delta (trainable_token_indices)");
    }
    let n = parts.len();
    // The factor name sits at most two parts from the end: [name], [weight|bias].
    for p in n.saturating_sub(3)..n {
        let factor = match parts[p] {
            "lora_A" => Factor::A,
            "lora_B" => Factor::B,
            "lora_embedding_A" => Factor::EmbeddingA,
            "lora_embedding_B" => Factor::EmbeddingB,
            other if other.starts_with("lora_") => {
                return Key::Unsupported("a tensor of another LoRA variant (AdaLoRA, KaSA, …)")
            }
            _ => continue,
        };
        let tail = &parts[p + 1..];
        let embedding = matches!(factor, Factor::EmbeddingA | Factor::EmbeddingB);
        let ok = if embedding {
            tail.len() <= 1
        } else if tail.last() == Some(&"bias") {
            return Key::Unsupported("a LoRA-B bias (lora_bias)");
        } else {
            (tail.len() == 1 || tail.len() == 2) && tail.last() == Some(&"weight")
        };
        if ok && p > 0 {
            return Key::Factor {
                module: parts[..p].join("."),
                factor,
            };
        }
    }
    let mut kept: Vec<&str> = Vec::with_capacity(n);
    let mut copy = false;
    let mut i = 0;
    while i < n {
        match parts[i] {
            "base_layer" => copy = true,
            // `M.modules_to_save.<adapter name>.P` → `M.P`
            "modules_to_save" => i += 1,
            part => kept.push(part),
        }
        i += 1;
    }
    Key::Full {
        tensor: kept.join("."),
        copy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factor(module: &str, factor: Factor) -> Key {
        Key::Factor {
            module: module.to_owned(),
            factor,
        }
    }

    #[test]
    fn peft_key_formats() {
        let m = "model.layers.0.self_attn.q_proj";
        assert_eq!(
            parse_key(&format!("base_model.model.{m}.lora_A.weight")),
            factor(m, Factor::A)
        );
        assert_eq!(
            parse_key(&format!("base_model.model.{m}.lora_B.default.weight")),
            factor(m, Factor::B)
        );
        assert_eq!(
            parse_key(&format!("{m}.lora_A.weight")),
            factor(m, Factor::A)
        );
        assert_eq!(
            parse_key("base_model.model.model.embed_tokens.lora_embedding_A"),
            factor("model.embed_tokens", Factor::EmbeddingA)
        );
        assert_eq!(
            parse_key("base_model.model.model.embed_tokens.lora_embedding_B.default"),
            factor("model.embed_tokens", Factor::EmbeddingB)
        );
        assert_eq!(
            parse_key("base_model.model.model.embed_tokens.base_layer.weight"),
            Key::Full {
                tensor: "model.embed_tokens.weight".into(),
                copy: true
            }
        );
        assert_eq!(
            parse_key("base_model.model.lm_head.modules_to_save.default.weight"),
            Key::Full {
                tensor: "lm_head.weight".into(),
                copy: false
            }
        );
        assert_eq!(
            parse_key("base_model.model.score.weight"),
            Key::Full {
                tensor: "score.weight".into(),
                copy: false
            }
        );
        assert!(matches!(
            parse_key(&format!("base_model.model.{m}.lora_magnitude_vector")),
            Key::Unsupported(_)
        ));
        assert!(matches!(
            parse_key(&format!("base_model.model.{m}.lora_B.bias")),
            Key::Unsupported(_)
        ));
        assert!(matches!(
            parse_key(&format!("base_model.model.{m}.lora_E")),
            Key::Unsupported(_)
        ));
    }
}
