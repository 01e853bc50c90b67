//! The error type of the LoRA merge: what was wrong, with the file or tensor, and what to do.

use std::path::PathBuf;

use crate::hf::HfError;

/// Why a merge was refused or failed. A failed merge leaves no `--out` behind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// Reading or writing a checkpoint file failed.
    #[error(transparent)]
    Hf(#[from] HfError),
    /// A file or directory operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// No adapter was given.
    #[error("no adapters to merge: pass --adapter <PEFT dir> at least once")]
    NoAdapters,
    /// The output exists and is not empty.
    #[error("{path} already exists and is not empty: choose another --out, or pass --overwrite to replace it")]
    OutputExists {
        /// The output directory.
        path: PathBuf,
    },
    /// The output would replace one of the inputs.
    #[error(
        "--out {out} is an input of the merge ({input}): write the merged model to a new directory"
    )]
    OutputIsInput {
        /// The output directory.
        out: PathBuf,
        /// The input it collides with.
        input: PathBuf,
    },
    /// The base checkpoint is quantized.
    #[error(
        "base {dir} is quantized ({reason}). Merging LoRA into quantized weights dequantizes and \
         re-rounds every targeted matrix (a merge into a 4-bit base destroyed a real model this \
         way): merge into the full-precision (F32/F16/BF16) base the adapter was trained from, \
         then quantize the merged model"
    )]
    QuantizedBase {
        /// The base directory.
        dir: PathBuf,
        /// What gave the quantization away.
        reason: String,
    },
    /// A base tensor cannot take a LoRA delta.
    #[error("base tensor {tensor}: {why}")]
    BaseTensor {
        /// The tensor.
        tensor: String,
        /// What is wrong with it.
        why: String,
    },
    /// The directory is not a PEFT adapter.
    #[error("{dir}: not a PEFT adapter directory: {why}")]
    NotAnAdapter {
        /// The adapter directory.
        dir: PathBuf,
        /// What is missing.
        why: String,
    },
    /// The adapter's weights are a PyTorch pickle.
    #[error(
        "{path}: adapter weights are a PyTorch pickle, which can run code when loaded and is not \
         read: re-save the adapter with save_pretrained(..., safe_serialization=True) to get \
         adapter_model.safetensors"
    )]
    PickleAdapter {
        /// The pickle file.
        path: PathBuf,
    },
    /// `adapter_config.json` has a missing or malformed field.
    #[error("{adapter}: adapter_config.json: {field}: {why}")]
    BadConfig {
        /// The adapter directory.
        adapter: PathBuf,
        /// The field.
        field: String,
        /// What is wrong with it.
        why: String,
    },
    /// The adapter uses a PEFT feature this merge does not implement.
    #[error("{adapter}: {what} is not supported: {why}")]
    Unsupported {
        /// The adapter directory.
        adapter: PathBuf,
        /// The feature (a config field and its value, or a tensor).
        what: String,
        /// Why it cannot be merged as plain LoRA, and what to do.
        why: String,
    },
    /// An adapter tensor names a base tensor that does not exist.
    #[error(
        "{adapter}: adapter tensor {tensor} belongs to base tensor {base_tensor}, which the base \
         does not have: the adapter was trained on a different model"
    )]
    NoBaseTensor {
        /// The adapter directory.
        adapter: PathBuf,
        /// The adapter tensor.
        tensor: String,
        /// The base tensor it should apply to.
        base_tensor: String,
    },
    /// The adapter has LoRA weights for a module its `target_modules` does not select.
    #[error(
        "{adapter}: adapter tensor {tensor} is for module {module}, which target_modules does not \
         select: adapter_config.json and adapter_model.safetensors do not belong together"
    )]
    UntargetedWeights {
        /// The adapter directory.
        adapter: PathBuf,
        /// The adapter tensor.
        tensor: String,
        /// Its module.
        module: String,
    },
    /// `target_modules` selects a base module that the adapter has no weights for.
    #[error(
        "{adapter}: target_modules selects base module {module}, but adapter_model.safetensors \
         has no LoRA weights for it: the adapter was trained on a different model, or its files \
         are incomplete"
    )]
    MissingTargetWeights {
        /// The adapter directory.
        adapter: PathBuf,
        /// The base module.
        module: String,
    },
    /// An adapter tensor does not fit the base tensor or the config.
    #[error("{adapter}: adapter tensor {tensor}: {why}")]
    AdapterTensor {
        /// The adapter directory.
        adapter: PathBuf,
        /// The adapter tensor.
        tensor: String,
        /// What is wrong.
        why: String,
    },
}

impl MergeError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        MergeError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
