//! The one error type, [`GgufError`], for every way reading, validating or writing GGUF fails.
//!
//! Variants carry enough context to act on (which key, which tensor, which file offset) but
//! never bulk data: names and keys quoted in errors are cut to [`MAX_CONTEXT_LEN`] bytes.

use crate::types::GgmlType;
use crate::value::ValueType;

/// Longest key or tensor name (in bytes) quoted inside an error; longer ones are truncated.
pub const MAX_CONTEXT_LEN: usize = 200;

/// Everything that can go wrong while reading, validating or writing a GGUF file.
///
/// Offsets are absolute byte offsets from the start of the file (for the writer: from the start
/// of the output).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// The underlying reader or writer failed (other than by ending early).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// The file ends (or claims to end) before a field that must be there.
    #[error("unexpected end of file at offset {offset}: {needed} more bytes needed")]
    UnexpectedEof {
        /// Where the missing bytes should have started.
        offset: u64,
        /// How many bytes were needed from there.
        needed: u64,
    },

    /// The first four bytes are not `GGUF`.
    #[error("bad magic {found:02x?}: not a GGUF file")]
    BadMagic {
        /// The four bytes found instead.
        found: [u8; 4],
    },

    /// The version is not 2 or 3 (version 1 used 32-bit counts and is not supported).
    #[error("unsupported GGUF version {version} (only versions 2 and 3 are supported)")]
    UnsupportedVersion {
        /// The version found in the header.
        version: u32,
    },

    /// The header declares more tensors than [`Limits::max_tensors`](crate::Limits::max_tensors).
    #[error("tensor count {count} exceeds the limit of {max}")]
    TooManyTensors {
        /// Declared count.
        count: u64,
        /// Configured limit.
        max: u64,
    },

    /// The header declares more metadata pairs than [`Limits::max_kv`](crate::Limits::max_kv).
    #[error("metadata key/value count {count} exceeds the limit of {max}")]
    TooManyKv {
        /// Declared count.
        count: u64,
        /// Configured limit.
        max: u64,
    },

    /// A string is longer than [`Limits::max_string_len`](crate::Limits::max_string_len).
    #[error("string of {len} bytes at offset {offset} exceeds the limit of {max} bytes")]
    StringTooLong {
        /// Offset of the string's length field.
        offset: u64,
        /// Declared length.
        len: u64,
        /// Configured limit.
        max: u64,
    },

    /// An array is longer than [`Limits::max_array_len`](crate::Limits::max_array_len).
    #[error(
        "array of {len} elements for key `{key}` at offset {offset} exceeds the limit of {max}"
    )]
    ArrayTooLong {
        /// The metadata key holding the array.
        key: String,
        /// Offset of the array's element-type field.
        offset: u64,
        /// Declared element count.
        len: u64,
        /// Configured limit.
        max: u64,
    },

    /// A metadata key is not valid UTF-8.
    #[error("metadata key at offset {offset} is not valid UTF-8")]
    InvalidKeyUtf8 {
        /// Offset of the key's length field.
        offset: u64,
    },

    /// A tensor name is not valid UTF-8.
    #[error("tensor name at offset {offset} is not valid UTF-8")]
    InvalidTensorNameUtf8 {
        /// Offset of the name's length field.
        offset: u64,
    },

    /// A value (or array element) type id is not one of 0..=12.
    #[error("unknown value type {type_id} for key `{key}` at offset {offset}")]
    UnknownValueType {
        /// The metadata key.
        key: String,
        /// Offset of the type field.
        offset: u64,
        /// The unknown id.
        type_id: u32,
    },

    /// Arrays are nested deeper than [`MAX_ARRAY_DEPTH`](crate::MAX_ARRAY_DEPTH).
    #[error("arrays nested deeper than {max_depth} levels for key `{key}` at offset {offset}")]
    ArrayNestingTooDeep {
        /// The metadata key.
        key: String,
        /// Offset of the offending element-type field.
        offset: u64,
        /// The allowed depth.
        max_depth: u32,
    },

    /// A bool byte is neither 0 nor 1.
    #[error("invalid bool byte {value} for key `{key}` at offset {offset} (must be 0 or 1)")]
    InvalidBool {
        /// The metadata key.
        key: String,
        /// Offset of the byte.
        offset: u64,
        /// The byte found.
        value: u8,
    },

    /// The same metadata key appears twice.
    #[error("duplicate metadata key `{key}`")]
    DuplicateKey {
        /// The repeated key.
        key: String,
    },

    /// `general.alignment` is present but not a `u32`.
    #[error("`general.alignment` has type {found}, expected u32")]
    AlignmentWrongType {
        /// The type found.
        found: ValueType,
    },

    /// `general.alignment` is zero or not a power of two.
    #[error("invalid alignment {alignment}: must be a non-zero power of two")]
    InvalidAlignment {
        /// The alignment found.
        alignment: u64,
    },

    /// The same tensor name appears twice.
    #[error("duplicate tensor name `{name}`")]
    DuplicateTensor {
        /// The repeated name.
        name: String,
    },

    /// A tensor name is longer than [`MAX_TENSOR_NAME_LEN`](crate::MAX_TENSOR_NAME_LEN) bytes
    /// (llama.cpp stores names in a 64-byte, NUL-terminated buffer and rejects longer ones).
    #[error("tensor name `{name}` is {len} bytes long, the maximum is {max}")]
    TensorNameTooLong {
        /// The (possibly truncated) name.
        name: String,
        /// Its length in bytes.
        len: u64,
        /// The maximum.
        max: u64,
    },

    /// A tensor has a number of dimensions outside `1..=4`.
    #[error("tensor `{tensor}` has {n_dims} dimensions (must be 1..=4)")]
    InvalidDimCount {
        /// The tensor name.
        tensor: String,
        /// The dimension count found.
        n_dims: u64,
    },

    /// A tensor dimension is zero.
    #[error("tensor `{tensor}` has dimension {index} equal to 0")]
    ZeroDimension {
        /// The tensor name.
        tensor: String,
        /// Which dimension (0-based).
        index: usize,
    },

    /// The product of a tensor's dimensions overflows (or exceeds `i64::MAX`, ggml's limit).
    #[error("tensor `{tensor}`: element count {dims:?} overflows")]
    ElementCountOverflow {
        /// The tensor name.
        tensor: String,
        /// The dimensions.
        dims: Vec<u64>,
    },

    /// A tensor's ggml type id is unknown (or a removed type).
    #[error("tensor `{tensor}` has unknown ggml type id {type_id}")]
    UnknownGgmlType {
        /// The tensor name.
        tensor: String,
        /// The unknown id.
        type_id: u32,
    },

    /// A tensor's first dimension is not a multiple of its type's block size.
    #[error(
        "tensor `{tensor}`: first dimension {first_dim} is not a multiple of the {ggml_type} \
         block size {block_size}"
    )]
    BlockSizeMismatch {
        /// The tensor name.
        tensor: String,
        /// The tensor's type.
        ggml_type: GgmlType,
        /// The first dimension.
        first_dim: u64,
        /// The type's block size.
        block_size: u64,
    },

    /// A tensor's size in bytes (or its padded size, or a sum of sizes) overflows `u64`.
    #[error("tensor `{tensor}`: byte size overflows")]
    TensorSizeOverflow {
        /// The tensor name.
        tensor: String,
    },

    /// A tensor's offset is not a multiple of the file's alignment.
    #[error("tensor `{tensor}` offset {offset} is not a multiple of the alignment {alignment}")]
    MisalignedTensor {
        /// The tensor name.
        tensor: String,
        /// Its offset relative to the data section.
        offset: u64,
        /// The file's alignment.
        alignment: u64,
    },

    /// A tensor's data does not lie entirely inside the file.
    #[error(
        "tensor `{tensor}` (offset {offset}, {size} bytes, data section at {data_offset}) \
         extends past the end of the file ({file_len} bytes)"
    )]
    TensorOutOfBounds {
        /// The tensor name.
        tensor: String,
        /// Its offset relative to the data section.
        offset: u64,
        /// Its size in bytes.
        size: u64,
        /// Absolute offset of the data section.
        data_offset: u64,
        /// File length.
        file_len: u64,
    },

    /// Two tensors' byte ranges overlap.
    #[error("tensors `{first}` and `{second}` overlap")]
    OverlappingTensors {
        /// The tensor starting first.
        first: String,
        /// The tensor starting inside it.
        second: String,
    },

    /// Writer: the data given for a tensor does not have the tensor's byte size.
    #[error("tensor `{tensor}`: {actual} bytes of data given, expected {expected}")]
    TensorDataSizeMismatch {
        /// The tensor name.
        tensor: String,
        /// Its byte size.
        expected: u64,
        /// Bytes given so far (including the rejected write).
        actual: u64,
    },

    /// Writer: tensor data written after every declared tensor was complete.
    #[error("tensor data written beyond the {declared} declared tensors")]
    UnexpectedTensorData {
        /// Number of declared tensors.
        declared: usize,
    },

    /// Writer: `finish` called before every tensor's data was written.
    #[error("finish called after {written} of {declared} tensors were written")]
    MissingTensorData {
        /// Tensors completely written.
        written: usize,
        /// Tensors declared.
        declared: usize,
    },
}

/// Cuts a key or name to at most [`MAX_CONTEXT_LEN`] bytes (on a char boundary) for an error.
pub(crate) fn short(s: &str) -> String {
    if s.len() <= MAX_CONTEXT_LEN {
        return s.to_owned();
    }
    let mut end = MAX_CONTEXT_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Like [`short`] for raw bytes, decoded lossily.
pub(crate) fn short_bytes(b: &[u8]) -> String {
    let cut = &b[..b.len().min(MAX_CONTEXT_LEN)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if b.len() > MAX_CONTEXT_LEN {
        s.push('…');
    }
    s
}
