//! [`GgufFile`]: a parsed, validated GGUF header and the questions callers ask of it.

use std::ops::Range;

use crate::metadata::Metadata;
use crate::tensor::TensorInfo;
use crate::types::file_type_name;

/// Metadata key holding the model architecture.
pub const KEY_ARCHITECTURE: &str = "general.architecture";
/// Metadata key holding the data alignment.
pub const KEY_ALIGNMENT: &str = "general.alignment";
/// Metadata key holding the `LlamaFileType` (dominant quantization).
pub const KEY_FILE_TYPE: &str = "general.file_type";

/// Everything in a GGUF file except the tensor data, validated against the file's length.
///
/// Invariants for values returned by the readers: every tensor's data
/// (`data_offset + offset .. + byte_size`) lies inside `0..file_len`, tensors do not overlap,
/// offsets are multiples of `alignment`, and `data_offset <= file_len`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufFile {
    /// Format version (2 or 3).
    pub version: u32,
    /// Key/value metadata, in file order.
    pub metadata: Metadata,
    /// Tensor descriptions, in file order.
    pub tensors: Vec<TensorInfo>,
    /// Alignment of the data section and of tensor offsets (`general.alignment`, default 32).
    pub alignment: u64,
    /// Absolute offset of the data section (end of the tensor infos, rounded up to
    /// `alignment`).
    pub data_offset: u64,
    /// Length of the file the header was validated against.
    pub file_len: u64,
}

impl GgufFile {
    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// `general.architecture`, e.g. `"llama"`, `"gemma3"`.
    pub fn architecture(&self) -> Option<&str> {
        self.metadata.get_str(KEY_ARCHITECTURE)
    }

    /// Total number of weights: the sum of every tensor's element count (saturating).
    pub fn parameter_count(&self) -> u64 {
        self.tensors
            .iter()
            .fold(0u64, |acc, t| acc.saturating_add(t.n_elements()))
    }

    /// `general.file_type` (see [`file_type_name`]).
    pub fn file_type(&self) -> Option<u32> {
        self.metadata.get_u32(KEY_FILE_TYPE)
    }

    /// The `LlamaFileType` name of `general.file_type`, e.g. `"MOSTLY_Q4_K_M"`.
    pub fn file_type_name(&self) -> Option<&'static str> {
        self.file_type().and_then(file_type_name)
    }

    /// Absolute byte range of a tensor's data in the file (saturating for a `TensorInfo` that
    /// did not come from this file).
    pub fn tensor_data_range(&self, tensor: &TensorInfo) -> Range<u64> {
        let start = self.data_offset.saturating_add(tensor.offset);
        start..start.saturating_add(tensor.byte_size())
    }
}
