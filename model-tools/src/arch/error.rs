//! What is wrong with a model's description: its `config.json` or its GGUF metadata.

use super::Arch;

/// A `config.json` or GGUF metadata that does not describe a supported model.
#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    /// The architecture is not supported.
    #[error(
        "architecture {found:?} is not supported; supported: {}",
        Arch::supported_hf_list()
    )]
    Unsupported {
        /// The `architectures` entry (or a description of its absence).
        found: String,
    },
    /// A `config.json` key is missing or has the wrong type.
    #[error("config.json: {key} {problem}")]
    Config {
        /// The key.
        key: String,
        /// What is wrong (e.g. "is missing", "must be a positive integer").
        problem: String,
    },
    /// The checkpoint is quantized (bitsandbytes, GPTQ, AWQ, FP8 …).
    #[error(
        "config.json has a quantization_config ({method}): quantized checkpoints are not \
         converted; convert the original float weights (or dequantize/merge first)"
    )]
    Quantized {
        /// `quant_method`, if given.
        method: String,
    },
    /// A GGUF metadata key the model needs is absent.
    #[error("GGUF metadata key {key} is missing")]
    MissingMetadata {
        /// The key.
        key: String,
    },
    /// A tensor the description needs is absent.
    #[error("tensor {name} is missing from the GGUF")]
    MissingTensor {
        /// The GGUF tensor name.
        name: String,
    },
    /// A GGUF metadata key has a value that does not describe a supported model.
    #[error("GGUF metadata key {key} {problem}")]
    BadMetadata {
        /// The key.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl ArchError {
    /// A `config.json` problem.
    pub(crate) fn config(key: &str, problem: impl Into<String>) -> ArchError {
        ArchError::Config {
            key: key.to_owned(),
            problem: problem.into(),
        }
    }

    /// A GGUF metadata problem.
    pub(crate) fn metadata(key: &str, problem: impl Into<String>) -> ArchError {
        ArchError::BadMetadata {
            key: key.to_owned(),
            problem: problem.into(),
        }
    }
}
