//! Which Hugging Face tensors an import writes: every GGUF tensor resolved to its Hugging Face
//! name, torch shape and value transform, after checking it has the shape the metadata
//! implies, that every layer has its required tensors, and that nothing is left unexplained.
//! Also splits the output into safetensors shards the way Hugging Face names them.

use std::collections::{BTreeMap, BTreeSet};

use vazhi_gguf::{GgufFile, TensorInfo};

use super::ImportError;
use crate::arch::{Hparams, Role, TensorId, Transform};

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

/// Resolves and checks every tensor of `file`; returns the tensors to write, in file order.
pub fn plan_tensors(file: &GgufFile, params: &Hparams) -> Result<Vec<TensorPlan>, ImportError> {
    let arch = params.arch;
    let mut plans = Vec::with_capacity(file.tensors.len());
    let mut seen: BTreeSet<TensorId> = BTreeSet::new();
    for info in &file.tensors {
        let id =
            TensorId::from_gguf(arch, &info.name).ok_or_else(|| ImportError::UnexpectedTensor {
                name: info.name.clone(),
                arch: arch.to_string(),
            })?;
        if let Some(layer) = id.layer {
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
        let expected = params.gguf_dims(&id);
        if info.dims != expected {
            return Err(ImportError::ShapeMismatch {
                name: info.name.clone(),
                expected,
                actual: info.dims.clone(),
            });
        }
        seen.insert(id);
        let Some(hf_name) = id.hf_name(arch) else {
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
            transform: params.transform(&id),
        });
    }
    check_complete(params, &seen)?;
    Ok(plans)
}

/// Every required tensor is present (per layer and global), and the biases the Hugging Face
/// class holds are all there or (where the class allows it) all absent.
fn check_complete(params: &Hparams, seen: &BTreeSet<TensorId>) -> Result<(), ImportError> {
    let biases = params.required_hf_biases();
    let globals = [Role::TokenEmbd, Role::OutputNorm].map(|role| TensorId::weight(role, None));
    // Layer by layer, each layer's biases after its weights.
    let layers = (0..params.n_layer).flat_map(|i| {
        params
            .layer_weights(i)
            .chain(biases.iter().map(move |&role| TensorId {
                role,
                layer: Some(i),
                bias: true,
            }))
    });
    let required = globals.into_iter().chain(layers);
    for id in required {
        if !seen.contains(&id) {
            return Err(ImportError::MissingTensor {
                name: id
                    .gguf_name(params.arch)
                    .unwrap_or_else(|| format!("{id:?}")),
            });
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
                crate::hf::MODEL_SAFETENSORS.to_owned()
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
