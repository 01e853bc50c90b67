//! Resource limits applied while reading ([`Limits`]) and the format's fixed bounds.

/// Largest number of dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;

/// How deep metadata arrays may nest: an array of arrays of scalars is depth 2 and allowed; an
/// array of arrays of arrays is rejected. No known writer nests at all.
pub const MAX_ARRAY_DEPTH: u32 = 2;

/// Longest tensor name in bytes: llama.cpp keeps names in a 64-byte NUL-terminated buffer
/// (`GGML_MAX_NAME`) and refuses longer ones, so both the reader and the writer do too.
pub const MAX_TENSOR_NAME_LEN: u64 = 63;

/// Alignment of the data section and of tensor offsets when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Caps on what a file may declare, checked before anything is allocated.
///
/// Independently of these, every length is also checked against the bytes actually left in the
/// file, so memory use stays within a small constant factor (about 3x) of the header's size.
///
/// | field            | default                 | why                                           |
/// |------------------|-------------------------|-----------------------------------------------|
/// | `max_tensors`    | 65 536                  | large MoE models have ~20 000 tensors          |
/// | `max_kv`         | 65 536                  | real models carry 20-60 keys                   |
/// | `max_string_len` | 16 MiB                  | chat templates are a few KiB; keys/tokens tiny |
/// | `max_array_len`  | 16 Mi elements          | vocabularies and merge lists are ≤ ~1 M        |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Most tensors a file may declare.
    pub max_tensors: u64,
    /// Most metadata key/value pairs a file may declare.
    pub max_kv: u64,
    /// Longest string (key, value, array element or tensor name) in bytes.
    pub max_string_len: u64,
    /// Most elements in one metadata array (each nested array counts separately).
    pub max_array_len: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tensors: 65_536,
            max_kv: 65_536,
            max_string_len: 16 * 1024 * 1024,
            max_array_len: 16 * 1024 * 1024,
        }
    }
}
