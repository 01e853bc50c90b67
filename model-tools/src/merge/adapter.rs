//! A PEFT LoRA adapter directory, read and checked against the base before anything is
//! written: which base tensor each LoRA pair changes (and how), which base tensors it replaces.
//! Key formats are in [`keys`](super::keys).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::hf::{read_json, Checkpoint, Dtype, TensorRef};

use super::config::LoraConfig;
use super::keys::{parse_key, Factor, Key};
use super::MergeError;

/// PEFT's `EMBEDDING_LAYER_NAMES`: saved whole when targeted or resized.
const EMBEDDING_LAYER_NAMES: &[&str] = &["embed_tokens", "lm_head"];

/// How a LoRA pair's product lands on its base tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `nn.Linear`, W `[out, in]`: ΔW = s·B·A.
    Linear,
    /// fan_in_fan_out (GPT-2 Conv1D), W `[in, out]`: ΔW = s·(B·A)ᵀ.
    FanInFanOut,
    /// `nn.Embedding`, W `[vocab, hidden]`: ΔW = s·(B·A)ᵀ.
    Embedding,
}

/// One LoRA pair, resolved against its base tensor.
#[derive(Debug, Clone)]
pub(crate) struct LoraPair {
    /// The adapter tensor holding A.
    pub a: String,
    /// The adapter tensor holding B.
    pub b: String,
    /// Orientation of the delta.
    pub layout: Layout,
    /// Rank.
    pub rank: usize,
    /// alpha / r (or alpha / sqrt(r) with rsLoRA).
    pub scale: f64,
}

/// A loaded, checked adapter.
#[derive(Debug)]
pub(crate) struct Adapter {
    /// The adapter directory.
    pub dir: PathBuf,
    /// Its config.
    pub config: LoraConfig,
    /// Its weights, memory-mapped.
    pub weights: Checkpoint,
    /// Base tensor → the LoRA pair that changes it.
    pub deltas: BTreeMap<String, LoraPair>,
    /// Base tensor → the adapter tensor that replaces it (modules_to_save).
    pub replacements: BTreeMap<String, String>,
    /// Saved embedding copies found equal to the base (nothing to do).
    pub embedding_copies: usize,
}

/// Reads the adapter in `dir` and checks it against `base`. `touched` holds the base tensors
/// earlier adapters change (their embedding copies may differ from the base).
pub(crate) fn load(
    dir: &Path,
    base: &Checkpoint,
    touched: &BTreeSet<String>,
) -> Result<Adapter, MergeError> {
    let _span = tracing::debug_span!("load_adapter", dir = %dir.display()).entered();
    let not_adapter = |why: &str| MergeError::NotAnAdapter {
        dir: dir.to_owned(),
        why: why.to_owned(),
    };
    if !dir.is_dir() {
        return Err(not_adapter("no such directory"));
    }
    let config_path = dir.join("adapter_config.json");
    if !config_path.is_file() {
        return Err(not_adapter(
            "no adapter_config.json (is this a full model rather than a LoRA adapter?)",
        ));
    }
    let weights_path = dir.join("adapter_model.safetensors");
    if !weights_path.is_file() {
        for pickle in ["adapter_model.bin", "adapter_model.pt"] {
            if dir.join(pickle).is_file() {
                return Err(MergeError::PickleAdapter {
                    path: dir.join(pickle),
                });
            }
        }
        return Err(not_adapter("no adapter_model.safetensors"));
    }
    let config = LoraConfig::parse(dir, &read_json(&config_path)?)?;
    let weights = Checkpoint::open_file(&weights_path)?;
    let mut adapter = Adapter {
        dir: dir.to_owned(),
        config,
        weights,
        deltas: BTreeMap::new(),
        replacements: BTreeMap::new(),
        embedding_copies: 0,
    };

    let mut pairs: BTreeMap<String, [Option<String>; 2]> = BTreeMap::new();
    let mut kinds: BTreeMap<String, bool> = BTreeMap::new();
    let keys: Vec<String> = adapter
        .weights
        .names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    for key in &keys {
        let key = key.as_str();
        match parse_key(key) {
            Key::Unsupported(what) => {
                return Err(MergeError::Unsupported {
                    adapter: dir.to_owned(),
                    what: format!("tensor {key}"),
                    why: format!("it is {what}; only plain LoRA adapters are merged"),
                })
            }
            Key::Factor { module, factor } => {
                let slot = matches!(factor, Factor::B | Factor::EmbeddingB) as usize;
                let embedding = matches!(factor, Factor::EmbeddingA | Factor::EmbeddingB);
                if kinds.insert(module.clone(), embedding) == Some(!embedding) {
                    return Err(adapter_tensor(
                        dir,
                        key,
                        format!("module {module} mixes lora_A/B and lora_embedding_A/B factors"),
                    ));
                }
                let entry = pairs.entry(module.clone()).or_default();
                if entry[slot].is_some() {
                    return Err(adapter_tensor(
                        dir,
                        key,
                        format!(
                            "module {module} has this LoRA factor twice (with and without an \
                             adapter name?)"
                        ),
                    ));
                }
                entry[slot] = Some(key.to_owned());
            }
            Key::Full { tensor, copy } => {
                let tensor = with_adapter_name_dropped(base, tensor);
                adapter.add_full_tensor(base, key, &tensor, copy, touched)?
            }
        }
    }

    for (module, [a, b]) in pairs {
        let (a, b) = match (a, b) {
            (Some(a), Some(b)) => (a, b),
            (Some(only), None) | (None, Some(only)) => {
                return Err(adapter_tensor(
                    dir,
                    &only,
                    format!("module {module} has only one of its two LoRA factors (A and B)"),
                ))
            }
            (None, None) => continue,
        };
        let embedding = kinds.get(&module).copied().unwrap_or(false);
        adapter.add_pair(base, &module, a, b, embedding)?;
    }

    if !adapter.config.targets_all_linear() {
        for name in base.names() {
            let Some(module) = name.strip_suffix(".weight") else {
                continue;
            };
            if adapter.config.is_targeted(module) && !adapter.deltas.contains_key(name) {
                return Err(MergeError::MissingTargetWeights {
                    adapter: dir.to_owned(),
                    module: module.to_owned(),
                });
            }
        }
    }
    for name in base.names() {
        let module = name.rsplit_once('.').map_or(name, |(m, _)| m);
        if adapter.config.is_module_to_save(module) && !adapter.replacements.contains_key(name) {
            return Err(MergeError::Unsupported {
                adapter: dir.to_owned(),
                what: format!("modules_to_save without base tensor {name}"),
                why: "modules_to_save names this module but adapter_model.safetensors has no \
                      trained copy of it; re-save the adapter"
                    .to_owned(),
            });
        }
    }
    tracing::debug!(
        deltas = adapter.deltas.len(),
        replacements = adapter.replacements.len(),
        "adapter checked"
    );
    Ok(adapter)
}

/// `M.<adapter name>.P` → `M.P` when only the latter is a base tensor (some trainers keep
/// the adapter name in modules_to_save keys).
fn with_adapter_name_dropped(base: &Checkpoint, tensor: String) -> String {
    if base.contains(&tensor) {
        return tensor;
    }
    let parts: Vec<&str> = tensor.split('.').collect();
    if parts.len() >= 3 {
        let n = parts.len();
        let candidate = [&parts[..n - 2], &parts[n - 1..]].concat().join(".");
        if base.contains(&candidate) {
            return candidate;
        }
    }
    tensor
}

fn adapter_tensor(dir: &Path, tensor: &str, why: String) -> MergeError {
    MergeError::AdapterTensor {
        adapter: dir.to_owned(),
        tensor: tensor.to_owned(),
        why,
    }
}

impl Adapter {
    fn add_full_tensor(
        &mut self,
        base: &Checkpoint,
        key: &str,
        tensor: &str,
        copy: bool,
        touched: &BTreeSet<String>,
    ) -> Result<(), MergeError> {
        let dir = self.dir.clone();
        let base_tensor = base.tensor(tensor).map_err(|_| MergeError::NoBaseTensor {
            adapter: dir.clone(),
            tensor: key.to_owned(),
            base_tensor: tensor.to_owned(),
        })?;
        let ours = self.weights.tensor(key)?;
        let module = tensor.rsplit_once('.').map_or(tensor, |(m, _)| m);
        if ours.shape != base_tensor.shape {
            return Err(adapter_tensor(
                &dir,
                key,
                format!(
                    "shape {:?} differs from base tensor {tensor} {:?} (a resized vocabulary \
                     is not supported: resize the base first)",
                    ours.shape, base_tensor.shape
                ),
            ));
        }
        let convertible = ours.dtype == base_tensor.dtype
            || (ours.dtype.is_float() && is_writable(&base_tensor.dtype));
        if !copy && self.config.is_module_to_save(module) {
            if !convertible {
                return Err(adapter_tensor(
                    &dir,
                    key,
                    format!(
                        "dtype {} cannot be written as the base's {}",
                        ours.dtype, base_tensor.dtype
                    ),
                ));
            }
            self.replacements.insert(tensor.to_owned(), key.to_owned());
            return Ok(());
        }
        let embedding_name = EMBEDDING_LAYER_NAMES
            .iter()
            .any(|e| module == *e || module.ends_with(&format!(".{e}")));
        if !(copy || embedding_name) {
            return Err(MergeError::Unsupported {
                adapter: dir,
                what: format!("tensor {key}"),
                why: "it is neither a LoRA factor nor part of a module in modules_to_save \
                      (bias \"all\"/\"lora_only\" adapters are not merged)"
                    .to_owned(),
            });
        }
        let same = same_values(&ours, &base_tensor)?;
        self.weights.release(key);
        base.release(tensor);
        if same {
            self.embedding_copies += 1;
        } else if touched.contains(tensor) {
            tracing::warn!(
                tensor,
                "the adapter's saved copy differs from the base; an earlier adapter changed it, \
                 so the copy is taken to be that stage's merge and ignored"
            );
        } else {
            return Err(adapter_tensor(
                &dir,
                key,
                format!(
                    "PEFT saved this copy of {tensor} with the adapter, and it differs from the \
                     base's: the adapter was trained on another base checkpoint; merge into \
                     that one"
                ),
            ));
        }
        Ok(())
    }

    fn add_pair(
        &mut self,
        base: &Checkpoint,
        module: &str,
        a_key: String,
        b_key: String,
        embedding: bool,
    ) -> Result<(), MergeError> {
        let dir = self.dir.clone();
        let base_name = format!("{module}.weight");
        let w = base
            .tensor(&base_name)
            .map_err(|_| MergeError::NoBaseTensor {
                adapter: dir.clone(),
                tensor: a_key.clone(),
                base_tensor: base_name.clone(),
            })?;
        if !self.config.is_targeted(module) {
            return Err(MergeError::UntargetedWeights {
                adapter: dir,
                tensor: a_key,
                module: module.to_owned(),
            });
        }
        if !is_writable(&w.dtype) || w.shape.len() != 2 {
            return Err(MergeError::BaseTensor {
                tensor: base_name,
                why: format!(
                    "a LoRA delta needs a 2-D F32/F16/BF16 matrix, but it is {} {:?}",
                    w.dtype, w.shape
                ),
            });
        }
        let a = self.weights.tensor(&a_key)?;
        let b = self.weights.tensor(&b_key)?;
        for t in [&a, &b] {
            if !t.dtype.is_float() || t.shape.len() != 2 || t.is_empty() {
                return Err(adapter_tensor(
                    &dir,
                    t.name,
                    format!(
                        "a LoRA factor must be a non-empty 2-D float matrix, got {} {:?} (an \
                         empty or 1-D factor means DeepSpeed ZeRO-3/FSDP shards were saved \
                         without gathering)",
                        t.dtype, t.shape
                    ),
                ));
            }
        }
        let rank = a.shape[0];
        if b.shape[1] != rank {
            return Err(adapter_tensor(
                &dir,
                &b_key,
                format!(
                    "B is {:?} but A is {:?}: their ranks differ",
                    b.shape, a.shape
                ),
            ));
        }
        let (config_rank, alpha) = self.config.rank_and_alpha(module)?;
        if config_rank != rank {
            return Err(adapter_tensor(
                &dir,
                &a_key,
                format!(
                    "rank {rank} in the file but adapter_config.json (r / rank_pattern) gives \
                     {config_rank} for {module}: the scale alpha/r would be wrong"
                ),
            ));
        }
        // (rows, cols) of B·A
        let (out, inp) = (b.shape[0], a.shape[1]);
        let layout = if embedding {
            (w.shape == [inp, out]).then_some(Layout::Embedding)
        } else {
            self.linear_layout(&w, out, inp, module)
        };
        let Some(layout) = layout else {
            return Err(adapter_tensor(
                &dir,
                &a_key,
                format!(
                    "B {:?} · A {:?} does not fit base tensor {base_name} {:?}",
                    b.shape, a.shape, w.shape
                ),
            ));
        };
        let scale = self.config.scale(rank, alpha);
        self.deltas.insert(
            base_name,
            LoraPair {
                a: a_key,
                b: b_key,
                layout,
                rank,
                scale,
            },
        );
        Ok(())
    }

    /// PEFT forces fan_in_fan_out on for Conv1D and off for `nn.Linear` whatever the config
    /// says; a non-square weight's shape tells which it was. Square ones follow the config.
    fn linear_layout(
        &self,
        w: &TensorRef<'_>,
        out: usize,
        inp: usize,
        module: &str,
    ) -> Option<Layout> {
        let straight = w.shape == [out, inp];
        let transposed = w.shape == [inp, out];
        let configured = if self.config.fan_in_fan_out {
            Layout::FanInFanOut
        } else {
            Layout::Linear
        };
        let layout = match (straight, transposed) {
            (true, true) => configured,
            (true, false) => Layout::Linear,
            (false, true) => Layout::FanInFanOut,
            (false, false) => return None,
        };
        if layout != configured {
            tracing::warn!(
                module,
                fan_in_fan_out = self.config.fan_in_fan_out,
                "the weight's shape only fits the other orientation; using it, as PEFT does"
            );
        }
        Some(layout)
    }
}

/// Whether merged values can be written in this dtype.
pub(crate) fn is_writable(dtype: &Dtype) -> bool {
    matches!(dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16)
}

/// Whether two same-shaped tensors hold the same values (bytes when the dtypes agree), read a
/// block of rows at a time.
fn same_values(x: &TensorRef<'_>, y: &TensorRef<'_>) -> Result<bool, MergeError> {
    if x.dtype == y.dtype {
        return Ok(x.data == y.data);
    }
    if !x.dtype.is_float() || !y.dtype.is_float() {
        return Ok(false);
    }
    let rows = x.rows();
    let step = (super::BLOCK_VALUES / x.row_len().max(1)).max(1);
    let mut first = 0;
    while first < rows {
        let n = step.min(rows - first);
        if x.rows_to_f32(first, n)? != y.rows_to_f32(first, n)? {
            return Ok(false);
        }
        first += n;
    }
    Ok(true)
}
