//! Tensor names, shapes and value transforms, for both directions.
//!
//! Every tensor is a [`TensorId`]: a [`Role`], a layer (for per-layer tensors) and whether
//! it is a bias. One table of [`LayerRole`]s per family (the shared
//! [`COMMON_LAYER_ROLES`] plus [`super::Family::layer_roles`]) names it both ways:
//! `blk.N.{gguf}.weight` ↔ `model.layers.N.{hf}.weight`. Shapes are given in Hugging Face
//! (PyTorch) order; GGUF stores dimensions innermost first, so its dims are the reverse.

use super::{Arch, Hparams};

/// What a tensor is, independent of naming. The order is the order `convert` writes a
/// layer's tensors in (llama.cpp's converter's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Token embedding.
    TokenEmbd,
    /// Attention pre-norm.
    AttnNorm,
    /// Query projection.
    AttnQ,
    /// Key projection.
    AttnK,
    /// Value projection.
    AttnV,
    /// Attention output projection.
    AttnOut,
    /// Per-head query RMSNorm.
    AttnQNorm,
    /// Per-head key RMSNorm.
    AttnKNorm,
    /// Norm after attention (Gemma).
    AttnPostNorm,
    /// Feed-forward pre-norm.
    FfnNorm,
    /// Gate projection.
    FfnGate,
    /// Up projection.
    FfnUp,
    /// Down projection.
    FfnDown,
    /// Norm after the feed-forward (Gemma).
    FfnPostNorm,
    /// Final norm.
    OutputNorm,
    /// Output projection (LM head).
    Output,
    /// Llama 3 RoPE frequency factors: derived data, which becomes `rope_scaling` in a
    /// `config.json` rather than a checkpoint tensor.
    RopeFreqs,
}

impl Role {
    /// Whether the role is an RMSNorm weight.
    pub fn is_norm(self) -> bool {
        matches!(
            self,
            Role::AttnNorm
                | Role::AttnPostNorm
                | Role::FfnNorm
                | Role::FfnPostNorm
                | Role::OutputNorm
                | Role::AttnQNorm
                | Role::AttnKNorm
        )
    }
}

/// A per-layer tensor's names: `blk.N.{gguf}` in GGUF, `model.layers.N.{hf}` in Hugging
/// Face (both before `.weight` / `.bias`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerRole {
    /// The role.
    pub role: Role,
    /// The GGUF name part.
    pub gguf: &'static str,
    /// The Hugging Face name part.
    pub hf: &'static str,
}

/// A [`LayerRole`], usable in `const` tables.
pub const fn layer_role(role: Role, gguf: &'static str, hf: &'static str) -> LayerRole {
    LayerRole { role, gguf, hf }
}

/// The per-layer weights of every family.
pub const COMMON_LAYER_ROLES: &[LayerRole] = &[
    layer_role(Role::AttnNorm, "attn_norm", "input_layernorm"),
    layer_role(Role::AttnQ, "attn_q", "self_attn.q_proj"),
    layer_role(Role::AttnK, "attn_k", "self_attn.k_proj"),
    layer_role(Role::AttnV, "attn_v", "self_attn.v_proj"),
    layer_role(Role::AttnOut, "attn_output", "self_attn.o_proj"),
    layer_role(Role::FfnGate, "ffn_gate", "mlp.gate_proj"),
    layer_role(Role::FfnUp, "ffn_up", "mlp.up_proj"),
    layer_role(Role::FfnDown, "ffn_down", "mlp.down_proj"),
];

/// The feed-forward pre-norm where Hugging Face calls it `post_attention_layernorm` (Llama,
/// Qwen).
pub const FFN_NORM_AFTER_ATTENTION: LayerRole =
    layer_role(Role::FfnNorm, "ffn_norm", "post_attention_layernorm");
/// Per-head query RMSNorm (Qwen3, Gemma 3).
pub const Q_NORM: LayerRole = layer_role(Role::AttnQNorm, "attn_q_norm", "self_attn.q_norm");
/// Per-head key RMSNorm (Qwen3, Gemma 3).
pub const K_NORM: LayerRole = layer_role(Role::AttnKNorm, "attn_k_norm", "self_attn.k_norm");

/// The whole-model tensors: `(role, GGUF name part, Hugging Face name part)`.
const GLOBAL_ROLES: &[(Role, &str, &str)] = &[
    (Role::TokenEmbd, "token_embd", "model.embed_tokens"),
    (Role::OutputNorm, "output_norm", "model.norm"),
    (Role::Output, "output", "lm_head"),
];

/// A tensor: its role, its layer (for per-layer tensors) and whether it is a bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TensorId {
    /// What the tensor is.
    pub role: Role,
    /// Layer index, for per-layer tensors.
    pub layer: Option<usize>,
    /// Whether it is a bias (`.bias`) rather than a weight.
    pub bias: bool,
}

/// How a tensor's values change from the Hugging Face layout to llama.cpp's; `import-gguf`
/// applies the inverse. Each transform and its inverse live in the family file that needs
/// them ([`super::llama`], [`super::gemma3`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transform {
    /// Values unchanged.
    #[default]
    Identity,
    /// Rows reordered from Hugging Face's rotate-half RoPE layout to llama.cpp's interleaved
    /// one, with this many heads ([`super::llama::permuted_source_row`],
    /// [`super::llama::unpermute_rows`]).
    PermuteRows {
        /// Heads the rows split into.
        n_head: usize,
    },
    /// [`super::gemma3::NORM_SHIFT`] added to every value: Gemma's RMSNorm stores
    /// `weight - 1`.
    NormPlusOne,
}

/// The layer index of a name part, without leading zeros (so one tensor has one name).
fn parse_index(text: &str) -> Option<usize> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

/// `name` split into its stem and whether it ends in `.bias` (rather than `.weight`).
fn split_suffix(name: &str) -> Option<(&str, bool)> {
    match name.strip_suffix(".weight") {
        Some(stem) => Some((stem, false)),
        None => Some((name.strip_suffix(".bias")?, true)),
    }
}

/// The per-layer table of `arch`: the common weights, then the family's own.
fn layer_roles(arch: Arch) -> impl Iterator<Item = &'static LayerRole> {
    COMMON_LAYER_ROLES.iter().chain(arch.family().layer_roles())
}

fn suffix(bias: bool) -> &'static str {
    if bias {
        "bias"
    } else {
        "weight"
    }
}

impl TensorId {
    /// A weight.
    pub fn weight(role: Role, layer: Option<usize>) -> TensorId {
        TensorId {
            role,
            layer,
            bias: false,
        }
    }

    /// Resolves a GGUF tensor name of `arch`, as `import-gguf` reads it: biases only where
    /// the Hugging Face class can hold them. The layer is not checked against the model.
    pub fn from_gguf(arch: Arch, name: &str) -> Option<TensorId> {
        if name == "rope_freqs.weight" {
            return arch
                .family()
                .has_rope_freqs_tensor()
                .then_some(TensorId::weight(Role::RopeFreqs, None));
        }
        Side::Gguf.resolve(arch, name)
    }

    /// Resolves a Hugging Face tensor name of `arch`, as `convert` reads it: biases where
    /// llama.cpp's loader takes them. The layer is not checked against the model.
    pub fn from_hf(arch: Arch, name: &str) -> Option<TensorId> {
        Side::Hf.resolve(arch, name)
    }

    /// The GGUF name, e.g. `blk.3.attn_q.weight`; `None` for a role `arch` lacks.
    pub fn gguf_name(&self, arch: Arch) -> Option<String> {
        if self.role == Role::RopeFreqs {
            return Some("rope_freqs.weight".to_owned());
        }
        let suffix = suffix(self.bias);
        match self.layer {
            None => GLOBAL_ROLES
                .iter()
                .find(|row| row.0 == self.role)
                .map(|row| format!("{}.{suffix}", row.1)),
            Some(i) => layer_roles(arch)
                .find(|row| row.role == self.role)
                .map(|row| format!("blk.{i}.{}.{suffix}", row.gguf)),
        }
    }

    /// The Hugging Face name, e.g. `model.layers.3.self_attn.q_proj.weight`; `None` for a
    /// role `arch` lacks and for derived data (`rope_freqs`).
    pub fn hf_name(&self, arch: Arch) -> Option<String> {
        let suffix = suffix(self.bias);
        match self.layer {
            None => GLOBAL_ROLES
                .iter()
                .find(|row| row.0 == self.role)
                .map(|row| format!("{}.{suffix}", row.2)),
            Some(i) => layer_roles(arch)
                .find(|row| row.role == self.role)
                .map(|row| format!("model.layers.{i}.{}.{suffix}", row.hf)),
        }
    }
}

/// One side of the role tables: the names it reads and the biases it accepts.
#[derive(Clone, Copy)]
enum Side {
    /// GGUF names; biases the Hugging Face class can hold (what an import can write).
    Gguf,
    /// Hugging Face names; biases llama.cpp's loader takes (what a conversion can write).
    Hf,
}

impl Side {
    fn resolve(self, arch: Arch, name: &str) -> Option<TensorId> {
        let (stem, bias) = split_suffix(name)?;
        let global = GLOBAL_ROLES.iter().find(|&&(_, gguf, hf)| match self {
            Side::Gguf => gguf == stem,
            Side::Hf => hf == stem,
        });
        let (role, layer) = match global {
            Some(&(role, _, _)) => (role, None),
            None => {
                let prefix = match self {
                    Side::Gguf => "blk.",
                    Side::Hf => "model.layers.",
                };
                let (index, part) = stem.strip_prefix(prefix)?.split_once('.')?;
                let row = layer_roles(arch).find(|row| match self {
                    Side::Gguf => row.gguf == part,
                    Side::Hf => row.hf == part,
                })?;
                (row.role, Some(parse_index(index)?))
            }
        };
        let biases = arch.family().biases();
        let allowed = match self {
            Side::Gguf => biases.hf,
            Side::Hf => biases.gguf,
        };
        (!bias || allowed.contains(&role)).then_some(TensorId { role, layer, bias })
    }
}

/// Checkpoint tensors the converter skips because they are not weights (buffers some
/// exporters save): `*.rotary_emb.inv_freq`, `*.attention.masked_bias`, `*.attention.bias`.
pub fn is_ignored(name: &str) -> bool {
    name.ends_with(".rotary_emb.inv_freq")
        || name.ends_with(".attention.masked_bias")
        || name.ends_with(".attention.bias")
}

impl Hparams {
    /// Maps a Hugging Face tensor name to its [`TensorId`]; `None` if this model has no such
    /// tensor (the caller reports every unmapped name).
    pub fn map_hf_name(&self, hf: &str) -> Option<TensorId> {
        TensorId::from_hf(self.arch, hf).filter(|id| id.layer.is_none_or(|i| i < self.n_layer))
    }

    /// The weights every model of this shape has, one at a time: a model may state many
    /// layers, and callers count or filter them without holding them all.
    pub fn required_weights(&self) -> impl Iterator<Item = TensorId> + '_ {
        let globals = [Role::TokenEmbd, Role::OutputNorm]
            .into_iter()
            .map(|role| TensorId::weight(role, None));
        globals.chain((0..self.n_layer).flat_map(|i| self.layer_weights(i)))
    }

    /// The weights of layer `layer`.
    pub fn layer_weights(&self, layer: usize) -> impl Iterator<Item = TensorId> {
        layer_roles(self.arch).map(move |row| TensorId::weight(row.role, Some(layer)))
    }

    /// The Hugging Face names of [`Hparams::required_weights`].
    pub fn required_hf_names(&self) -> impl Iterator<Item = String> + '_ {
        self.required_weights()
            .filter_map(|id| id.hf_name(self.arch))
    }

    /// The biases a GGUF must hold for its Hugging Face class: all of the family's when the
    /// class always has them or when `attention_bias` is set, else none.
    pub fn required_hf_biases(&self) -> &'static [Role] {
        let biases = self.arch.family().biases();
        if biases.hf_always || self.attention_bias {
            biases.hf
        } else {
            &[]
        }
    }

    /// The Hugging Face (PyTorch-order) shape of a tensor.
    pub fn hf_shape(&self, id: &TensorId) -> Vec<usize> {
        let (h, f, hd) = (self.n_embd, self.n_ff, self.head_dim);
        // The readers bound these; saturating keeps hand-built values from wrapping.
        let q = self.n_head.saturating_mul(hd);
        let kv = self.n_head_kv.saturating_mul(hd);
        let (out, inp) = match id.role {
            Role::TokenEmbd | Role::Output => (self.vocab_size, h),
            Role::AttnNorm
            | Role::AttnPostNorm
            | Role::FfnNorm
            | Role::FfnPostNorm
            | Role::OutputNorm => return vec![h],
            Role::AttnQNorm | Role::AttnKNorm => return vec![hd],
            Role::RopeFreqs => return vec![hd / 2],
            Role::AttnQ => (q, h),
            Role::AttnK | Role::AttnV => (kv, h),
            Role::AttnOut => (h, q),
            Role::FfnGate | Role::FfnUp => (f, h),
            Role::FfnDown => (h, f),
        };
        if id.bias {
            vec![out]
        } else {
            vec![out, inp]
        }
    }

    /// The GGUF dims (innermost first) of a tensor: its Hugging Face shape reversed.
    pub fn gguf_dims(&self, id: &TensorId) -> Vec<u64> {
        self.hf_shape(id).iter().rev().map(|&d| d as u64).collect()
    }

    /// The transform from the Hugging Face layout to llama.cpp's.
    pub fn transform(&self, id: &TensorId) -> Transform {
        self.arch.family().transform(id.role, id.bias, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::hf_config::tests::{gemma_config, llama_config, qwen_config};

    /// Every tensor name a Hugging Face checkpoint of this shape holds, with its shape.
    fn hf_tensors(hp: &Hparams, biases: bool, lm_head: bool) -> Vec<(String, Vec<usize>)> {
        let (h, f, hd) = (hp.n_embd, hp.n_ff, hp.head_dim);
        let (q, kv) = (hp.n_head * hd, hp.n_head_kv * hd);
        let mut out = vec![
            (
                "model.embed_tokens.weight".to_owned(),
                vec![hp.vocab_size, h],
            ),
            ("model.norm.weight".to_owned(), vec![h]),
        ];
        if lm_head {
            out.push(("lm_head.weight".to_owned(), vec![hp.vocab_size, h]));
        }
        for i in 0..hp.n_layer {
            let p = |s: &str| format!("model.layers.{i}.{s}");
            out.extend([
                (p("input_layernorm.weight"), vec![h]),
                (p("self_attn.q_proj.weight"), vec![q, h]),
                (p("self_attn.k_proj.weight"), vec![kv, h]),
                (p("self_attn.v_proj.weight"), vec![kv, h]),
                (p("self_attn.o_proj.weight"), vec![h, q]),
                (p("post_attention_layernorm.weight"), vec![h]),
                (p("mlp.gate_proj.weight"), vec![f, h]),
                (p("mlp.up_proj.weight"), vec![f, h]),
                (p("mlp.down_proj.weight"), vec![h, f]),
            ]);
            if biases {
                out.extend([
                    (p("self_attn.q_proj.bias"), vec![q]),
                    (p("self_attn.k_proj.bias"), vec![kv]),
                    (p("self_attn.v_proj.bias"), vec![kv]),
                ]);
            }
            if matches!(hp.arch, Arch::Qwen3 | Arch::Gemma3) {
                out.extend([
                    (p("self_attn.q_norm.weight"), vec![hd]),
                    (p("self_attn.k_norm.weight"), vec![hd]),
                ]);
            }
            if hp.arch == Arch::Gemma3 {
                out.extend([
                    (p("pre_feedforward_layernorm.weight"), vec![h]),
                    (p("post_feedforward_layernorm.weight"), vec![h]),
                ]);
            }
        }
        out
    }

    /// Maps every tensor; checks nothing is left, shapes agree, GGUF names are unique and
    /// map back.
    fn check_all_map(hp: &Hparams, tensors: &[(String, Vec<usize>)]) -> Vec<String> {
        let mut names = Vec::new();
        for (name, shape) in tensors {
            let id = hp
                .map_hf_name(name)
                .unwrap_or_else(|| panic!("{name} is unmapped for {:?}", hp.arch));
            assert_eq!(&hp.hf_shape(&id), shape, "{name}");
            assert_eq!(id.hf_name(hp.arch).as_deref(), Some(name.as_str()));
            let gguf = id.gguf_name(hp.arch).expect("gguf name");
            assert_eq!(
                TensorId::from_gguf(hp.arch, &gguf).map(|i| i.role),
                Some(id.role)
            );
            names.push(gguf);
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "duplicate GGUF names");
        for required in hp.required_hf_names() {
            assert!(
                tensors.iter().any(|(n, _)| *n == required),
                "{required} required"
            );
        }
        names
    }

    fn hparams(config: serde_json::Value) -> Hparams {
        Hparams::from_hf_config(&config).expect("config")
    }

    #[test]
    fn llama_maps_every_tensor() {
        let hp = hparams(llama_config());
        let names = check_all_map(&hp, &hf_tensors(&hp, true, true));
        assert!(names.contains(&"blk.29.ffn_norm.weight".to_owned()));
        assert!(names.contains(&"output.weight".to_owned()));
        assert!(names.contains(&"blk.0.attn_q.bias".to_owned()));
        // Llama has no q_norm.
        assert_eq!(
            hp.map_hf_name("model.layers.0.self_attn.q_norm.weight"),
            None
        );
        // Out-of-range layers, leading zeros and garbage are unmapped.
        assert_eq!(hp.map_hf_name("model.layers.30.mlp.up_proj.weight"), None);
        assert_eq!(hp.map_hf_name("model.layers.01.mlp.up_proj.weight"), None);
        assert_eq!(hp.map_hf_name("model.layers.x.mlp.up_proj.weight"), None);
        assert_eq!(hp.map_hf_name("model.embed_tokens.bias"), None);
    }

    #[test]
    fn qwen_maps_biases_and_norms() {
        let hp2 = hparams(qwen_config("Qwen2ForCausalLM"));
        let names = check_all_map(&hp2, &hf_tensors(&hp2, true, false));
        assert!(names.contains(&"blk.3.attn_v.bias".to_owned()));
        assert_eq!(
            hp2.map_hf_name("model.layers.0.self_attn.o_proj.bias"),
            None
        );
        assert_eq!(
            hp2.map_hf_name("model.layers.0.self_attn.k_norm.weight"),
            None
        );

        let hp3 = hparams(qwen_config("Qwen3ForCausalLM"));
        let names = check_all_map(&hp3, &hf_tensors(&hp3, false, true));
        assert!(names.contains(&"blk.23.attn_k_norm.weight".to_owned()));
        let q = hp3
            .map_hf_name("model.layers.0.self_attn.q_proj.weight")
            .expect("q");
        assert_eq!(hp3.transform(&q), Transform::Identity);
    }

    #[test]
    fn gemma3_maps_its_norms_and_shifts_them() {
        let hp = hparams(gemma_config());
        let names = check_all_map(&hp, &hf_tensors(&hp, false, false));
        assert!(names.contains(&"blk.0.post_attention_norm.weight".to_owned()));
        assert!(names.contains(&"blk.0.ffn_norm.weight".to_owned()));
        assert!(names.contains(&"blk.17.post_ffw_norm.weight".to_owned()));
        let q_norm = hp
            .map_hf_name("model.layers.0.self_attn.q_norm.weight")
            .expect("q_norm");
        assert_eq!(hp.transform(&q_norm), Transform::NormPlusOne);
        let up = hp
            .map_hf_name("model.layers.0.mlp.up_proj.weight")
            .expect("up");
        assert_eq!(hp.transform(&up), Transform::Identity);
    }

    #[test]
    fn required_names_are_listed_lazily() {
        let mut c = llama_config();
        c["num_hidden_layers"] = serde_json::json!(crate::arch::MAX_LAYERS);
        let hp = hparams(c);
        assert_eq!(
            hp.required_hf_names().nth(2).as_deref(),
            Some("model.layers.0.input_layernorm.weight")
        );
        assert_eq!(
            hp.required_hf_names().count(),
            2 + 9 * crate::arch::MAX_LAYERS
        );
    }

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
            let id = TensorId::from_gguf(arch, gguf).unwrap_or_else(|| panic!("{arch} {gguf}"));
            assert_eq!(id.hf_name(arch).as_deref(), Some(hf), "{arch} {gguf}");
            let back = TensorId::from_hf(arch, hf).unwrap_or_else(|| panic!("{arch} {hf}"));
            assert_eq!(back.gguf_name(arch).as_deref(), Some(gguf), "{arch} {hf}");
        }
    }

    #[test]
    fn names_an_architecture_lacks_are_refused() {
        let absent: &[(Arch, &str)] = &[
            (Arch::Llama, "blk.0.attn_q_norm.weight"),
            (Arch::Llama, "blk.0.post_ffw_norm.weight"),
            (Arch::Qwen2, "blk.0.attn_output.bias"),
            (Arch::Qwen2, "output.bias"),
            (Arch::Qwen3, "blk.0.attn_q.bias"),
            (Arch::Gemma3, "blk.0.attn_q.bias"),
            (Arch::Gemma3, "rope_freqs.weight"),
            (Arch::Llama, "blk.01.attn_q.weight"),
            (Arch::Llama, "blk.0.attn_q"),
            (Arch::Llama, "blk.-1.attn_q.weight"),
            (Arch::Llama, "blk.0.ffn_gate_exps.weight"),
            (Arch::Llama, "token_embd.bias"),
        ];
        for &(arch, name) in absent {
            assert_eq!(TensorId::from_gguf(arch, name), None, "{arch} {name}");
        }
        let rope = TensorId::from_gguf(Arch::Llama, "rope_freqs.weight").expect("llama rope");
        assert_eq!(
            (rope.role, rope.hf_name(Arch::Llama)),
            (Role::RopeFreqs, None)
        );
        assert_eq!(
            TensorId::from_hf(Arch::Llama, "model.layers.0.mlp.experts.weight"),
            None
        );
        // llama.cpp takes a Qwen2 output bias, which Hugging Face's class cannot hold.
        assert!(TensorId::from_hf(Arch::Qwen2, "lm_head.bias").is_some());
        assert_eq!(
            TensorId::weight(Role::AttnQNorm, Some(0)).gguf_name(Arch::Llama),
            None
        );
    }
}
