//! The error type of the Hugging Face file layer.

use std::path::PathBuf;

/// What went wrong reading or writing Hugging Face checkpoint files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HfError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A JSON file is not valid JSON.
    #[error("{path}: not valid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The directory holds no safetensors weights.
    #[error("{dir}: no model.safetensors or model.safetensors.index.json{hint}")]
    NoWeights {
        /// The directory.
        dir: PathBuf,
        /// Extra advice, e.g. about PyTorch pickles.
        hint: String,
    },
    /// A safetensors file is malformed.
    #[error("{path}: not a valid safetensors file: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor was asked for that the checkpoint does not hold.
    #[error("tensor {0} is not in the checkpoint")]
    MissingTensor(String),
    /// A tensor's dtype cannot be used for this operation.
    #[error("tensor {tensor} has dtype {dtype}, expected a float type (F32, F16, BF16, F64)")]
    UnsupportedDtype {
        /// The tensor.
        tensor: String,
        /// Its dtype.
        dtype: String,
    },
    /// A row range outside the tensor was asked for.
    #[error("tensor {tensor}: rows {first}..{end} out of range (it has {rows} rows)")]
    RowsOutOfRange {
        /// The tensor.
        tensor: String,
        /// First row asked for.
        first: usize,
        /// One past the last row asked for.
        end: usize,
        /// Rows the tensor has.
        rows: usize,
    },
    /// The writer was given more or fewer bytes than the plan says.
    #[error("safetensors writer: {0}")]
    WritePlan(String),
}

impl HfError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        HfError::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn malformed(path: &std::path::Path, reason: impl Into<String>) -> Self {
        HfError::Malformed {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}
