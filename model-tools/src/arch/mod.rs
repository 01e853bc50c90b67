//! What model-tools knows about each supported architecture, in one place for both
//! directions: Hugging Face → GGUF (`convert`) and GGUF → Hugging Face (`import-gguf`).
//!
//! - [`Hparams`]: one set of hyper-parameters, read from and written to both a Hugging Face
//!   `config.json` ([`hf_config`]) and GGUF metadata ([`gguf_metadata`]);
//! - [`RopeScaling`]: one RoPE scaling, with Llama 3's factor table computed and recovered;
//! - [`tensors`]: one role table per family that names tensors both ways, their shapes and
//!   the value [`Transform`] between the two layouts;
//! - one file per family ([`llama`], [`qwen2`], [`qwen3`], [`gemma3`]) that implements
//!   [`Family`]: its names, its `transformers` defaults, its tensors and its quirks.
//!
//! Adding an architecture is one family file and one line in the `families!` list below
//! (`docs/architecture.md` shows it).

mod error;
mod family;
pub mod gguf_metadata;
pub mod hf_config;
mod hparams;
mod rope;
pub mod tensors;

use std::fmt;

pub use error::ArchError;
pub use family::{Biases, Defaults, Family, HeadDim, VocabQuirks};
pub use hparams::{Hparams, SlidingWindow, SpecialTokenIds};
pub use rope::RopeScaling;
pub use tensors::{LayerRole, Role, TensorId, Transform};

/// Most layers a config or GGUF may state (every layer needs its own tensors; no real model
/// has more than a few hundred; the count sizes per-layer tables).
pub const MAX_LAYERS: usize = 1 << 16;

/// Largest hidden size, feed-forward size, head count or head size accepted (real models stay
/// below 1 << 17); bounds the shapes and tables computed from them.
pub const MAX_DIM: usize = 1 << 20;

/// Declares [`Arch`] from the list of families: a variant, its place in [`Arch::ALL`], its
/// family module and its [`Family`] come from one line each.
macro_rules! families {
    ($($(#[$doc:meta])* $variant:ident => $module:ident :: $family:ident,)+) => {
        $(pub mod $module;)+

        /// A supported architecture.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        pub enum Arch {
            $($(#[$doc])* $variant,)+
        }

        impl Arch {
            /// Every supported architecture, in the order error messages list them.
            pub const ALL: &'static [Arch] = &[$(Arch::$variant,)+];

            /// What this architecture's family file says about it.
            pub fn family(self) -> &'static dyn Family {
                match self {
                    $(Arch::$variant => &$module::$family,)+
                }
            }
        }
    };
}

families! {
    /// Llama and look-alikes (SmolLM, SmolLM2, Llama 2/3.x): `LlamaForCausalLM`.
    Llama => llama::Llama,
    /// Qwen2 / Qwen2.5: `Qwen2ForCausalLM`.
    Qwen2 => qwen2::Qwen2,
    /// Dense Qwen3: `Qwen3ForCausalLM`.
    Qwen3 => qwen3::Qwen3,
    /// Gemma 3, text only: `Gemma3ForCausalLM`.
    Gemma3 => gemma3::Gemma3,
}

impl Arch {
    /// The GGUF `general.architecture` value (also the metadata key prefix).
    pub fn gguf_name(self) -> &'static str {
        self.family().gguf_name()
    }

    /// The Hugging Face `architectures[0]` class.
    pub fn hf_class(self) -> &'static str {
        self.family().hf_class()
    }

    /// The Hugging Face `model_type`.
    pub fn hf_model_type(self) -> &'static str {
        self.family().hf_model_type()
    }

    /// The architecture for a GGUF `general.architecture` value.
    pub fn from_gguf(name: &str) -> Option<Arch> {
        Arch::ALL.iter().copied().find(|a| a.gguf_name() == name)
    }

    /// The architecture for a Hugging Face `architectures` name.
    pub fn from_hf(name: &str) -> Option<Arch> {
        Arch::ALL.iter().copied().find(|a| a.hf_class() == name)
    }

    /// The supported GGUF names, comma-separated (for error messages).
    pub fn supported_list() -> String {
        Arch::ALL
            .iter()
            .map(|a| a.gguf_name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The supported Hugging Face classes, comma-separated (for error messages).
    pub fn supported_hf_list() -> String {
        Arch::ALL
            .iter()
            .map(|a| a.hf_class())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.gguf_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_round_trip() {
        for &arch in Arch::ALL {
            assert_eq!(Arch::from_gguf(arch.gguf_name()), Some(arch));
            assert_eq!(Arch::from_hf(arch.hf_class()), Some(arch));
        }
        assert_eq!(Arch::from_gguf("gemma2"), None);
        assert_eq!(Arch::from_hf("MistralForCausalLM"), None);
        assert!(Arch::supported_list().contains("qwen3"));
        assert!(Arch::supported_hf_list().contains("Gemma3ForCausalLM"));
    }
}
