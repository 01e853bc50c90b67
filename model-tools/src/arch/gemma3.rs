//! Gemma 3, text only (`Gemma3ForCausalLM`, `model_type` `gemma3_text`).
//!
//! Quirks:
//! - **RMSNorm `+1`.** `Gemma3RMSNorm` computes `x * (1 + w)`, llama.cpp `x * w`: the
//!   converter adds [`NORM_SHIFT`] to every norm weight and the import subtracts it.
//! - **Sliding-window attention.** Most layers attend to a window of `sliding_window` tokens
//!   with their own RoPE base (`rope_local_base_freq`); llama.cpp assumes every 6th layer is
//!   global, so a model whose `layer_types` differ states its pattern in the GGUF.
//! - Four norms per layer (`pre_feedforward_layernorm` is llama.cpp's `ffn_norm`), q/k norms,
//!   final logit soft-capping, tied embeddings by default, and embedding rows past the
//!   vocabulary dropped by the converter.

use serde_json::{json, Map, Value as Json};
use vazhi_gguf::{Array, ArrayData, Metadata};

use super::family::VocabQuirks;
use super::gguf_metadata::{decimal, Keys};
use super::hf_config::{float, get, positive};
use super::tensors::{layer_role, LayerRole, Role, Transform, K_NORM, Q_NORM};
use super::{ArchError, Biases, Defaults, Family, HeadDim, Hparams, SlidingWindow};

/// What Gemma's RMSNorm weights are offset by: the converter adds it, the import subtracts it.
pub const NORM_SHIFT: f32 = 1.0;

/// llama.cpp's default sliding pattern (`set_swa_pattern(6)`): layer `i` slides unless
/// `i % 6 == 5`.
const DEFAULT_PERIOD: usize = 6;

/// llama.cpp's RoPE base of sliding layers when the GGUF does not state one
/// (`rope_freq_base_train_swa`).
const DEFAULT_LOCAL_ROPE_BASE: f64 = 10_000.0;

/// The Gemma 3 family.
#[derive(Debug, Clone, Copy)]
pub struct Gemma3;

impl Family for Gemma3 {
    fn gguf_name(&self) -> &'static str {
        "gemma3"
    }

    fn hf_class(&self) -> &'static str {
        "Gemma3ForCausalLM"
    }

    fn hf_model_type(&self) -> &'static str {
        "gemma3_text"
    }

    fn defaults(&self) -> Defaults {
        Defaults {
            n_head: Some(8),
            n_head_kv: Some(4),
            head_dim: HeadDim::Fixed(256),
            context_length: 131_072,
            rope_theta: 1_000_000.0,
            rope_theta_swa: Some(DEFAULT_LOCAL_ROPE_BASE),
            tie_word_embeddings: true,
        }
    }

    fn layer_roles(&self) -> &'static [LayerRole] {
        const ROLES: &[LayerRole] = &[
            layer_role(
                Role::AttnPostNorm,
                "post_attention_norm",
                "post_attention_layernorm",
            ),
            layer_role(Role::FfnNorm, "ffn_norm", "pre_feedforward_layernorm"),
            layer_role(
                Role::FfnPostNorm,
                "post_ffw_norm",
                "post_feedforward_layernorm",
            ),
            Q_NORM,
            K_NORM,
        ];
        ROLES
    }

    fn biases(&self) -> Biases {
        Biases {
            gguf: &[Role::AttnQ, Role::AttnK, Role::AttnV],
            hf: &[],
            hf_always: false,
        }
    }

    fn vocab_quirks(&self) -> VocabQuirks {
        VocabQuirks {
            no_space_prefix: true,
            trims_embedding_rows: true,
            gemma_tokenizer: true,
            ..VocabQuirks::default()
        }
    }

    fn transform(&self, role: Role, bias: bool, _hp: &Hparams) -> Transform {
        if role.is_norm() && !bias {
            Transform::NormPlusOne
        } else {
            Transform::Identity
        }
    }

    fn read_hf_config(&self, c: &Json, hp: &mut Hparams) -> Result<(), ArchError> {
        hp.rope_theta = hp.rope_theta.or(Some(self.defaults().rope_theta));
        // Sliding unless `sliding_window_pattern` is 1 (every layer global).
        if get(c, "sliding_window_pattern").and_then(Json::as_u64) != Some(1) {
            let size = positive(c, "sliding_window")?.unwrap_or(4096) as u64;
            let layers = match get(c, "layer_types").and_then(Json::as_array) {
                Some(types) => layer_types(types, hp.n_layer)?,
                None => SlidingWindow::pattern(DEFAULT_PERIOD, hp.n_layer),
            };
            hp.sliding_window = Some(SlidingWindow {
                size,
                period: SlidingWindow::period_of(&layers),
                layers,
            });
        }
        hp.final_logit_softcapping = float(c, "final_logit_softcapping")?.filter(|v| *v != 0.0);
        if float(c, "attn_logit_softcapping")?.is_some() {
            return Err(ArchError::config(
                "attn_logit_softcapping",
                "is set, but Gemma 3 has no attention logit soft-capping",
            ));
        }
        Ok(())
    }

    fn write_hf_config(&self, hp: &Hparams, c: &mut Map<String, Json>) {
        let mut put = |k: &str, v: Json| {
            c.insert(k.to_owned(), v);
        };
        put("hidden_activation", json!("gelu_pytorch_tanh"));
        put("attention_bias", json!(false));
        put("use_bidirectional_attention", json!(false));
        put("query_pre_attn_scalar", json!(hp.query_pre_attn_scalar()));
        let window = hp.sliding_window.as_ref();
        put("sliding_window", json!(window.map(|w| w.size)));
        let types: Vec<&str> = (0..hp.n_layer)
            .map(|i| match window.and_then(|w| w.layers.get(i)) {
                Some(true) => "sliding_attention",
                _ => "full_attention",
            })
            .collect();
        put("layer_types", json!(types));
        if let Some(period) = window.and_then(|w| w.period) {
            put("_sliding_window_pattern", json!(period));
        }
        put(
            "rope_local_base_freq",
            json!(hp.rope_theta_swa.unwrap_or(DEFAULT_LOCAL_ROPE_BASE)),
        );
        put("final_logit_softcapping", json!(hp.final_logit_softcapping));
        put("attn_logit_softcapping", json!(hp.attn_logit_softcapping));
    }

    fn read_gguf(&self, keys: &Keys<'_>, hp: &mut Hparams) -> Result<(), ArchError> {
        if let Some(size) = keys.u64("attention.sliding_window")?.filter(|&w| w > 0) {
            let (layers, period) = read_pattern(keys, hp.n_layer)?;
            hp.sliding_window = Some(SlidingWindow {
                size,
                layers,
                period,
            });
        }
        hp.rope_theta_swa = Some(
            keys.f32("rope.freq_base_swa")?
                .map_or(DEFAULT_LOCAL_ROPE_BASE, decimal),
        );
        let softcap = |suffix: &str| -> Result<Option<f64>, ArchError> {
            Ok(keys.f32(suffix)?.filter(|&x| x != 0.0).map(decimal))
        };
        hp.final_logit_softcapping = softcap("final_logit_softcapping")?;
        hp.attn_logit_softcapping = softcap("attn_logit_softcapping")?;
        Ok(())
    }

    fn write_gguf(&self, hp: &Hparams, md: &mut Metadata) {
        if let Some(cap) = hp.final_logit_softcapping {
            md.insert("gemma3.final_logit_softcapping", cap as f32);
        }
        if let Some(window) = &hp.sliding_window {
            md.insert(
                "gemma3.attention.sliding_window",
                u32::try_from(window.size).unwrap_or(u32::MAX),
            );
            // Stated only where the layers differ from what llama.cpp assumes.
            if window.layers != SlidingWindow::pattern(DEFAULT_PERIOD, hp.n_layer) {
                md.insert(
                    "gemma3.attention.sliding_window_pattern",
                    Array::from(window.layers.clone()),
                );
            }
        }
    }
}

/// `layer_types`: one `sliding_attention` or `full_attention` per layer.
fn layer_types(types: &[Json], n_layer: usize) -> Result<Vec<bool>, ArchError> {
    if types.len() != n_layer {
        return Err(ArchError::config(
            "layer_types",
            format!("has {} entries but there are {n_layer} layers", types.len()),
        ));
    }
    types
        .iter()
        .map(|t| match t.as_str() {
            Some("sliding_attention") => Ok(true),
            Some("full_attention") => Ok(false),
            _ => Err(ArchError::config(
                "layer_types",
                format!("has an unknown entry {t}"),
            )),
        })
        .collect()
}

/// `gemma3.attention.sliding_window_pattern`: absent (llama.cpp's default), a period, or
/// one flag per layer. Returns the flags and the period they follow, if any.
fn read_pattern(keys: &Keys<'_>, n_layer: usize) -> Result<(Vec<bool>, Option<usize>), ArchError> {
    let key = keys.key("attention.sliding_window_pattern");
    let Some(value) = keys.metadata().get(&key) else {
        return Ok((
            SlidingWindow::pattern(DEFAULT_PERIOD, n_layer),
            Some(DEFAULT_PERIOD),
        ));
    };
    if let Some(n) = value.as_u64() {
        let n = usize::try_from(n).unwrap_or(0);
        return Ok((SlidingWindow::pattern(n, n_layer), (n > 0).then_some(n)));
    }
    match value.as_array().map(|a| a.data()) {
        Some(ArrayData::Bool(flags)) if flags.len() == n_layer => {
            Ok((flags.clone(), SlidingWindow::period_of(flags)))
        }
        Some(ArrayData::Bool(flags)) => Err(ArchError::metadata(
            &key,
            format!("has {} entries for {n_layer} layers", flags.len()),
        )),
        _ => Err(ArchError::metadata(
            &key,
            "is neither a number nor a bool array",
        )),
    }
}
