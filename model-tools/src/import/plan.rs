//! Which Hugging Face tensors an import writes: every GGUF tensor resolved to its Hugging Face
//! name, torch shape and value transform, after checking it has the shape the metadata
//! implies, that every layer has its required tensors, and that nothing is left unexplained.
//! Also splits the output into safetensors shards the way Hugging Face names them.

use std::collections::{BTreeMap, BTreeSet};

use vazhi_gguf::{GgufFile, TensorInfo};

use crate::arch::gguf_params::ModelParams;
use crate::arch::names::{self, Arch, TensorKind, Transform};
use super::ImportError;

/// Largest shard written (bytes of tensor data), like `save_pretrained(max_shard_size="2GB")`.
pub const MAX_SHARD_BYTES: u64 = 2_000_000_000;

/// One tensor to write.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorPlan {
    /// The GGUF tensor it comes from.
    pub gguf: TensorInfo,
    /// Its Hugging Face name.
    pub hf_name: String,
    /// Its torch shape (the GGUF dims reversed).
    pub shape: Vec<usize>,
    /// How its values change.
    pub transform: Transform,
}

impl TensorPlan {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.gguf.n_elements()
    }

    /// Bytes it takes as `f32`.
    pub fn f32_bytes(&self) -> u64 {
        self.n_elements().saturating_mul(4)
    }
}

/// The GGUF dims (innermost first) a tensor of `kind` must have.
pub fn expected_dims(kind: TensorKind, p: &ModelParams) -> Vec<u64> {
    let u = |x: usize| x as u64;
    let (embd, vocab, ff, hd) = (u(p.n_embd), u(p.vocab_size), u(p.n_ff), u(p.head_dim));
    // `ModelParams::from_gguf` bounds these; saturating keeps hand-built values from wrapping.
    let q = u(p.n_head).saturating_mul(hd);
    let kv = u(p.n_head_kv).saturating_mul(hd);
    match kind {
        TensorKind::TokenEmbd | TensorKind::Output => vec![embd, vocab],
        TensorKind::OutputNorm
        | TensorKind::AttnNorm
        | TensorKind::FfnNorm
        | TensorKind::PostAttnNorm
        | TensorKind::PostFfwNorm
        | TensorKind::AttnOutputBias => vec![embd],
        TensorKind::RopeFreqs => vec![hd / 2],
        TensorKind::AttnQ => vec![embd, q],
        TensorKind::AttnK | TensorKind::AttnV => vec![embd, kv],
        TensorKind::AttnOutput => vec![q, embd],
        TensorKind::AttnQBias => vec![q],
        TensorKind::AttnKBias | TensorKind::AttnVBias => vec![kv],
        TensorKind::AttnQNorm | TensorKind::AttnKNorm => vec![hd],
        TensorKind::FfnGate | TensorKind::FfnUp => vec![embd, ff],
        TensorKind::FfnDown => vec![ff, embd],
    }
}

/// Resolves and checks every tensor of `file`; returns the tensors to write, in file order.
pub fn plan_tensors(file: &GgufFile, params: &ModelParams) -> Result<Vec<TensorPlan>, ImportError> {
    let arch = params.arch;
    let mut plans = Vec::with_capacity(file.tensors.len());
    let mut seen: BTreeSet<(Option<usize>, TensorKind)> = BTreeSet::new();
    for info in &file.tensors {
        let resolved =
            names::gguf_to_hf(arch, &info.name).ok_or_else(|| ImportError::UnexpectedTensor {
                name: info.name.clone(),
                arch: arch.to_string(),
            })?;
        if let Some(layer) = resolved.layer {
            if layer >= params.n_layer {
                return Err(ImportError::BadMetadata {
                    key: format!("{arch}.block_count"),
                    problem: format!(
                        "is {} but tensor {} belongs to layer {layer}",
                        params.n_layer, info.name
                    ),
                });
            }
        }
        let expected = expected_dims(resolved.kind, params);
        if info.dims != expected {
            return Err(ImportError::ShapeMismatch {
                name: info.name.clone(),
                expected,
                actual: info.dims.clone(),
            });
        }
        seen.insert((resolved.layer, resolved.kind));
        let Some(hf_name) = resolved.hf_name else {
            continue; // derived data (rope_freqs): folded into config.json
        };
        let shape = info
            .dims
            .iter()
            .rev()
            .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
            .collect();
        plans.push(TensorPlan {
            gguf: info.clone(),
            hf_name,
            shape,
            transform: names::transform_for(arch, resolved.kind, params.n_head, params.n_head_kv),
        });
    }
    check_complete(arch, params, &seen)?;
    Ok(plans)
}

/// Every required tensor is present (per layer and global), and optional groups (Llama's
/// attention biases) are all-or-nothing.
fn check_complete(
    arch: Arch,
    params: &ModelParams,
    seen: &BTreeSet<(Option<usize>, TensorKind)>,
) -> Result<(), ImportError> {
    let missing = |kind: TensorKind, layer: Option<usize>| ImportError::MissingTensor {
        name: names::gguf_name_of(arch, kind, layer).unwrap_or_else(|| format!("{kind:?}")),
    };
    for kind in [TensorKind::TokenEmbd, TensorKind::OutputNorm] {
        if !seen.contains(&(None, kind)) {
            return Err(missing(kind, None));
        }
    }
    let mut required = names::required_layer_kinds(arch);
    if arch == Arch::Llama && params.attention_bias {
        required.extend([
            TensorKind::AttnQBias,
            TensorKind::AttnKBias,
            TensorKind::AttnVBias,
            TensorKind::AttnOutputBias,
        ]);
    }
    for layer in 0..params.n_layer {
        for &kind in &required {
            if !seen.contains(&(Some(layer), kind)) {
                return Err(missing(kind, Some(layer)));
            }
        }
    }
    Ok(())
}

/// Shard file names and the tensors (indices into `plans`) each holds, filling shards in
/// order up to `max_bytes` (normally [`MAX_SHARD_BYTES`]; a larger tensor gets a shard of
/// its own). One shard is `model.safetensors`; several are
/// `model-0000i-of-0000n.safetensors`.
pub fn shards(plans: &[TensorPlan], max_bytes: u64) -> Vec<(String, Vec<usize>)> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut size = 0u64;
    for (i, plan) in plans.iter().enumerate() {
        let bytes = plan.f32_bytes();
        if !current.is_empty() && size.saturating_add(bytes) > max_bytes {
            groups.push(std::mem::take(&mut current));
            size = 0;
        }
        current.push(i);
        size = size.saturating_add(bytes);
    }
    if !current.is_empty() || groups.is_empty() {
        groups.push(current);
    }
    let n = groups.len();
    groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let name = if n == 1 {
                "model.safetensors".to_owned()
            } else {
                format!("model-{:05}-of-{n:05}.safetensors", i + 1)
            };
            (name, g)
        })
        .collect()
}

/// The `model.safetensors.index.json` object for sharded output.
pub fn shard_index(plans: &[TensorPlan], shards: &[(String, Vec<usize>)]) -> serde_json::Value {
    let mut weight_map = BTreeMap::new();
    for (file, indices) in shards {
        for &i in indices {
            weight_map.insert(plans[i].hf_name.clone(), file.clone());
        }
    }
    let total: u64 = plans.iter().map(TensorPlan::f32_bytes).sum();
    serde_json::json!({
        "metadata": {"total_size": total},
        "weight_map": weight_map,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vazhi_gguf::GgmlType;

    fn plan(name: &str, n: u64) -> TensorPlan {
        TensorPlan {
            gguf: TensorInfo::new(name, vec![n], GgmlType::F32),
            hf_name: name.to_owned(),
            shape: vec![n as usize],
            transform: Transform::Identity,
        }
    }

    #[test]
    fn shards_split_at_two_gigabytes() {
        let small = vec![plan("a", 10), plan("b", 10)];
        let s = shards(&small, MAX_SHARD_BYTES);
        assert_eq!(s, vec![("model.safetensors".to_owned(), vec![0, 1])]);

        // 300M f32 = 1.2 GB each: two do not fit in one 2 GB shard.
        let big = vec![
            plan("a", 300_000_000),
            plan("b", 300_000_000),
            plan("c", 10),
        ];
        let s = shards(&big, MAX_SHARD_BYTES);
        assert_eq!(
            s,
            vec![
                ("model-00001-of-00002.safetensors".to_owned(), vec![0]),
                ("model-00002-of-00002.safetensors".to_owned(), vec![1, 2]),
            ]
        );
        let index = shard_index(&big, &s);
        assert_eq!(index["metadata"]["total_size"], 2_400_000_040u64);
        assert_eq!(index["weight_map"]["c"], "model-00002-of-00002.safetensors");
    }
}
