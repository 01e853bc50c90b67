//! [`RopeScaling`]: RoPE scaling as `config.json` states it and as GGUF metadata stores it,
//! read and written both ways, with Llama 3's per-frequency factors computed (for
//! `rope_freqs.weight`) and recovered from that tensor.

use serde_json::{json, Map, Value as Json};
use vazhi_gguf::Metadata;

use super::gguf_metadata::{decimal, Keys};
use super::ArchError;

/// RoPE scaling.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// None (or a type nothing is written for).
    None,
    /// Linear position interpolation.
    Linear {
        /// Scale factor.
        factor: f64,
    },
    /// YaRN.
    Yarn {
        /// Context extension factor.
        factor: f64,
        /// Context length the model was trained with.
        original_context: Option<u64>,
        /// `extrapolation_factor`, when stated.
        ext_factor: Option<f64>,
        /// `attention_factor`, when stated.
        attn_factor: Option<f64>,
        /// `beta_fast`, when stated.
        beta_fast: Option<f64>,
        /// `beta_slow`, when stated.
        beta_slow: Option<f64>,
    },
    /// LongRoPE (`su` / `longrope`).
    LongRope,
    /// Llama 3's frequency-dependent scaling, stored as a `rope_freqs.weight` tensor.
    Llama3 {
        /// Scale factor of the low frequencies.
        factor: f64,
        /// `low_freq_factor`.
        low_freq_factor: f64,
        /// `high_freq_factor`.
        high_freq_factor: f64,
        /// `original_max_position_embeddings`.
        original_context: u64,
    },
}

impl RopeScaling {
    /// Reads the `rope_scaling` (or `rope_parameters`) object of a config, as
    /// `TextModel.set_gguf_parameters` interprets it.
    pub fn from_hf(params: &Json) -> Result<RopeScaling, ArchError> {
        let Some(kind) = params.get("rope_type").and_then(Json::as_str) else {
            return Ok(RopeScaling::None);
        };
        let f = |key: &str| params.get(key).and_then(Json::as_f64);
        let factor = f("factor");
        Ok(match (kind.to_ascii_lowercase().as_str(), factor) {
            ("linear", Some(factor)) => RopeScaling::Linear { factor },
            ("yarn", Some(factor)) => RopeScaling::Yarn {
                factor,
                original_context: Some(
                    params
                        .get("original_max_position_embeddings")
                        .and_then(Json::as_u64)
                        .ok_or_else(|| {
                            ArchError::config(
                                "rope_scaling.original_max_position_embeddings",
                                "is required for YaRN",
                            )
                        })?,
                ),
                ext_factor: f("extrapolation_factor"),
                attn_factor: f("attention_factor").or_else(|| f("attn_factor")),
                beta_fast: f("beta_fast"),
                beta_slow: f("beta_slow"),
            },
            ("su" | "longrope", _) => RopeScaling::LongRope,
            ("llama3", _) => RopeScaling::Llama3 {
                factor: factor.unwrap_or(8.0),
                low_freq_factor: f("low_freq_factor").unwrap_or(1.0),
                high_freq_factor: f("high_freq_factor").unwrap_or(4.0),
                original_context: f("original_max_position_embeddings").unwrap_or(8192.0) as u64,
            },
            ("default" | "dynamic", _) => RopeScaling::None,
            (other, _) => {
                tracing::warn!(rope_type = other, "unknown RoPE type; no scaling written");
                RopeScaling::None
            }
        })
    }

    /// The `rope_scaling` value of a written `config.json` (`null` for none).
    pub fn to_hf(&self) -> Json {
        match self {
            RopeScaling::None | RopeScaling::LongRope => Json::Null,
            RopeScaling::Linear { factor } => json!({"rope_type": "linear", "factor": factor}),
            RopeScaling::Yarn {
                factor,
                original_context,
                attn_factor,
                beta_fast,
                beta_slow,
                ext_factor: _,
            } => {
                let mut m = Map::new();
                m.insert("rope_type".into(), json!("yarn"));
                m.insert("factor".into(), json!(factor));
                if let Some(n) = original_context {
                    m.insert("original_max_position_embeddings".into(), json!(n));
                }
                for (k, v) in [
                    ("beta_fast", beta_fast),
                    ("beta_slow", beta_slow),
                    ("attention_factor", attn_factor),
                ] {
                    if let Some(v) = v {
                        m.insert(k.into(), json!(v));
                    }
                }
                Json::Object(m)
            }
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_context,
            } => json!({
                "rope_type": "llama3",
                "factor": factor,
                "low_freq_factor": low_freq_factor,
                "high_freq_factor": high_freq_factor,
                "original_max_position_embeddings": original_context,
            }),
        }
    }

    /// Reads `{arch}.rope.scaling.*`, or recovers Llama 3 scaling from the values of
    /// `rope_freqs.weight` when the file has that tensor.
    pub(super) fn from_gguf(
        keys: &Keys<'_>,
        rope_freqs: Option<&[f32]>,
        rope_theta: f64,
        head_dim: usize,
    ) -> Result<RopeScaling, ArchError> {
        if let Some(freqs) = rope_freqs {
            return fit_llama3(freqs, rope_theta, head_dim).ok_or_else(|| {
                ArchError::metadata(
                    "rope_freqs.weight",
                    "does not follow the llama3 RoPE scaling formula (factor, low 1, high 4, \
                     original context 8192); this scaling cannot be written as a Hugging Face \
                     rope_scaling",
                )
            });
        }
        let kind = keys.str("rope.scaling.type")?;
        let factor = keys.f32("rope.scaling.factor")?;
        match (kind, factor) {
            (None | Some("none"), _) => Ok(RopeScaling::None),
            (Some("linear"), Some(f)) if f != 1.0 && f > 0.0 => {
                Ok(RopeScaling::Linear { factor: decimal(f) })
            }
            (Some("linear"), _) => Ok(RopeScaling::None),
            (Some("yarn"), Some(f)) if f > 0.0 => Ok(RopeScaling::Yarn {
                factor: decimal(f),
                original_context: keys.u64("rope.scaling.original_context_length")?,
                ext_factor: None,
                // What `write_gguf` and llama.cpp's converter write, else the generic key.
                attn_factor: match keys.f32("rope.scaling.yarn_attn_factor")? {
                    Some(f) => Some(f),
                    None => keys.f32("rope.scaling.attn_factor")?,
                }
                .map(decimal),
                beta_fast: keys.f32("rope.scaling.yarn_beta_fast")?.map(decimal),
                beta_slow: keys.f32("rope.scaling.yarn_beta_slow")?.map(decimal),
            }),
            (Some(other), _) => Err(ArchError::metadata(
                &keys.key("rope.scaling.type"),
                format!("RoPE scaling {other:?} (with this factor) is not supported"),
            )),
        }
    }

    /// Writes `{prefix}.rope.scaling.*` as llama.cpp's converter does (nothing for Llama 3,
    /// whose factors travel as a tensor).
    pub(super) fn write_gguf(&self, md: &mut Metadata, prefix: &str) {
        let k = |suffix: &str| format!("{prefix}.{suffix}");
        match self {
            RopeScaling::None | RopeScaling::Llama3 { .. } => {}
            RopeScaling::Linear { factor } => {
                md.insert(k("rope.scaling.type"), "linear");
                md.insert(k("rope.scaling.factor"), *factor as f32);
            }
            RopeScaling::Yarn {
                factor,
                original_context,
                ext_factor,
                attn_factor,
                beta_fast,
                beta_slow,
            } => {
                md.insert(k("rope.scaling.type"), "yarn");
                md.insert(k("rope.scaling.factor"), *factor as f32);
                if let Some(n) = original_context {
                    md.insert(
                        k("rope.scaling.original_context_length"),
                        u32::try_from(*n).unwrap_or(u32::MAX),
                    );
                }
                for (key, v) in [
                    ("rope.scaling.yarn_ext_factor", ext_factor),
                    ("rope.scaling.yarn_attn_factor", attn_factor),
                    ("rope.scaling.yarn_beta_fast", beta_fast),
                    ("rope.scaling.yarn_beta_slow", beta_slow),
                ] {
                    if let Some(v) = v {
                        md.insert(k(key), *v as f32);
                    }
                }
            }
            RopeScaling::LongRope => {
                md.insert(k("rope.scaling.type"), "longrope");
            }
        }
    }

    /// Llama 3's per-frequency factors (`head_dim / 2` of them), computed in `f32` as the
    /// converter's PyTorch code does; `None` for other scalings.
    pub fn llama3_factors(&self, rope_theta: f64, head_dim: usize) -> Option<Vec<f32>> {
        let RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_context,
        } = *self
        else {
            return None;
        };
        let base = rope_theta as f32;
        let dim = head_dim as f32;
        let (factor, low, high, old_ctx) = (
            factor as f32,
            low_freq_factor as f32,
            high_freq_factor as f32,
            original_context as f32,
        );
        let low_freq_wavelen = old_ctx / low;
        let high_freq_wavelen = old_ctx / high;
        let two_pi = (2.0 * std::f64::consts::PI) as f32;
        Some(
            (0..head_dim / 2)
                .map(|i| {
                    let freq = 1.0 / base.powf((2 * i) as f32 / dim);
                    let wavelen = two_pi / freq;
                    if wavelen < high_freq_wavelen {
                        1.0
                    } else if wavelen > low_freq_wavelen {
                        factor
                    } else {
                        let smooth = (old_ctx / wavelen - low) / (high - low);
                        1.0 / ((1.0 - smooth) / factor + smooth)
                    }
                })
                .collect(),
        )
    }
}

/// The Llama 3 scaling whose factors are `freqs` (low 1, high 4, original context 8192: the
/// values every Llama 3.x checkpoint uses), or `None` when no factor reproduces them.
pub fn fit_llama3(freqs: &[f32], rope_theta: f64, head_dim: usize) -> Option<RopeScaling> {
    if freqs.len() * 2 != head_dim || freqs.is_empty() {
        return None;
    }
    let factor = freqs.iter().copied().fold(f32::MIN, f32::max);
    let candidate = RopeScaling::Llama3 {
        factor: decimal(factor),
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_context: 8192,
    };
    let expected = candidate.llama3_factors(rope_theta, head_dim)?;
    let matches = expected
        .iter()
        .zip(freqs)
        .all(|(&e, &f)| ((f64::from(e) - f64::from(f)) / f64::from(e)).abs() < 1e-4);
    matches.then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_rope_factors_are_recovered() {
        let scaling = RopeScaling::Llama3 {
            factor: 32.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_context: 8192,
        };
        let freqs = scaling.llama3_factors(500_000.0, 64).expect("factors");
        assert_eq!(freqs.len(), 32);
        assert_eq!((freqs[0], freqs[31]), (1.0, 32.0));
        assert!(freqs.windows(2).all(|w| w[0] <= w[1]));
        assert!(freqs.iter().any(|&f| f > 1.0 && f < 32.0), "some smoothing");
        assert_eq!(fit_llama3(&freqs, 500_000.0, 64), Some(scaling));
        let mut off = freqs.clone();
        off[10] *= 1.5;
        assert_eq!(fit_llama3(&off, 500_000.0, 64), None);
        assert_eq!(fit_llama3(&freqs, 500_000.0, 128), None);
        assert_eq!(RopeScaling::None.llama3_factors(500_000.0, 64), None);
    }

    #[test]
    fn yarn_survives_gguf_and_back() {
        use crate::arch::Arch;
        let yarn = RopeScaling::Yarn {
            factor: 4.0,
            original_context: Some(4096),
            ext_factor: None,
            attn_factor: Some(0.5),
            beta_fast: Some(32.0),
            beta_slow: Some(1.0),
        };
        let mut md = Metadata::new();
        yarn.write_gguf(&mut md, "llama");
        let keys = Keys::new(&md, Arch::Llama);
        assert_eq!(
            RopeScaling::from_gguf(&keys, None, 1e4, 64).expect("read"),
            yarn
        );
        // A file with only the generic key (other converters) still reads.
        let mut md = Metadata::new();
        md.insert("llama.rope.scaling.type", "yarn");
        md.insert("llama.rope.scaling.factor", 4.0f32);
        md.insert("llama.rope.scaling.attn_factor", 0.25f32);
        let keys = Keys::new(&md, Arch::Llama);
        let read = RopeScaling::from_gguf(&keys, None, 1e4, 64).expect("read");
        assert!(matches!(read, RopeScaling::Yarn { attn_factor: Some(a), .. } if a == 0.25));
    }

    #[test]
    fn hf_objects_read_and_write() {
        let linear = RopeScaling::from_hf(&json!({"type": "linear", "factor": 4.0}));
        // `type` alone is folded into `rope_type` by the config reader, not here.
        assert_eq!(linear.expect("linear"), RopeScaling::None);
        let linear = RopeScaling::from_hf(&json!({"rope_type": "linear", "factor": 4.0}));
        assert_eq!(linear.expect("linear"), RopeScaling::Linear { factor: 4.0 });
        let yarn = json!({"rope_type": "yarn", "factor": 4.0,
                          "original_max_position_embeddings": 4096, "beta_fast": 32.0});
        let read = RopeScaling::from_hf(&yarn).expect("yarn");
        assert_eq!(read.to_hf(), yarn);
        let no_context = json!({"rope_type": "yarn", "factor": 4.0});
        assert!(matches!(
            RopeScaling::from_hf(&no_context),
            Err(ArchError::Config { .. })
        ));
        let llama3 = json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        assert_eq!(
            RopeScaling::from_hf(&llama3).expect("llama3").to_hf(),
            llama3
        );
    }
}
