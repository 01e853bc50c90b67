//! Pure-Rust GGUF reader, validator and writer (GGUF versions 2 and 3, little-endian).
//!
//! The engine uses [`read_file`] to vet a model file *before* llama.cpp opens it: the header,
//! metadata and tensor infos are parsed with every length checked against [`Limits`] and against
//! the bytes actually left in the file before anything is allocated, every tensor's shape, type
//! and extent is checked against the file length, and nothing panics on any input (this is
//! fuzzed: see `fuzz/README.md`). Model tools use [`write_gguf`] / [`GgufWriter`] to produce
//! files laid out exactly like llama.cpp's and gguf-py's.
//!
//! ```
//! use vazhi_gguf::{read_bytes, write_gguf, GgmlType, Limits, Metadata, TensorData};
//!
//! let mut metadata = Metadata::new();
//! metadata.insert("general.architecture", "llama");
//! metadata.insert("general.file_type", 0u32);
//! let weights: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|x| x.to_le_bytes()).collect();
//! let tensor = TensorData { name: "w", dims: &[2, 2], ggml_type: GgmlType::F32, data: &weights };
//!
//! let mut bytes = Vec::new();
//! write_gguf(&mut bytes, &metadata, &[tensor])?;
//!
//! let file = read_bytes(&bytes, &Limits::default())?;
//! assert_eq!(file.architecture(), Some("llama"));
//! assert_eq!(file.file_type_name(), Some("ALL_F32"));
//! assert_eq!(file.parameter_count(), 4);
//! let w = file.tensor("w").expect("tensor w");
//! let range = file.tensor_data_range(w);
//! assert_eq!(&bytes[range.start as usize..range.end as usize], &weights[..]);
//! # Ok::<(), vazhi_gguf::GgufError>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod file;
mod input;
mod limits;
mod metadata;
mod reader;
mod tensor;
mod types;
mod value;
mod writer;

#[cfg(test)]
mod tests;

pub use error::{GgufError, MAX_CONTEXT_LEN};
pub use file::{GgufFile, KEY_ALIGNMENT, KEY_ARCHITECTURE, KEY_FILE_TYPE};
pub use limits::{Limits, DEFAULT_ALIGNMENT, MAX_ARRAY_DEPTH, MAX_DIMS, MAX_TENSOR_NAME_LEN};
pub use metadata::Metadata;
pub use reader::{read_bytes, read_file, read_from, GGUF_MAGIC};
pub use tensor::TensorInfo;
pub use types::{file_type_label, file_type_name, GgmlType};
pub use value::{Array, ArrayData, ArrayIter, GgufString, Value, ValueRef, ValueType};
pub use writer::{write_gguf, GgufWriter, TensorData, WRITE_VERSION};
