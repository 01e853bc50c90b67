//! Parsing and validation: turns bytes into a [`GgufFile`] or a precise [`GgufError`].
//!
//! Only the header, metadata and tensor infos are read; tensor data is never touched, but every
//! tensor's extent is checked against the file length. No length read from the file is used to
//! allocate before it has been checked against both the [`Limits`] and the bytes remaining.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{short, short_bytes, GgufError};
use crate::file::{GgufFile, KEY_ALIGNMENT};
use crate::input::Input;
use crate::limits::{Limits, DEFAULT_ALIGNMENT, MAX_ARRAY_DEPTH, MAX_DIMS, MAX_TENSOR_NAME_LEN};
use crate::metadata::Metadata;
use crate::tensor::{byte_size_of, TensorInfo};
use crate::types::GgmlType;
use crate::value::{Array, ArrayData, GgufString, Value, ValueType};

/// The four bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";

/// Smallest possible metadata pair on disk: empty key (8) + type (4) + one-byte value (1).
const MIN_KV_SIZE: u64 = 13;
/// Smallest possible tensor info: empty name (8) + n_dims (4) + one dim (8) + type (4) +
/// offset (8).
const MIN_TENSOR_INFO_SIZE: u64 = 32;
/// Smallest possible nested array: element type (4) + count (8).
const MIN_ARRAY_SIZE: u64 = 12;
/// Most elements reserved up front for arrays whose elements can still fail to parse (strings,
/// bools, nested arrays); beyond this the vector grows only as elements are actually read, so
/// a bogus count backed by unrelated bytes (e.g. tensor data) cannot force a large allocation.
const MAX_PREALLOC: usize = 65_536;

/// Reads and validates the header of the GGUF file at `path`.
///
/// Only the header, metadata and tensor infos are read (buffered); tensor extents are checked
/// against the file's length as reported by the file system.
pub fn read_file(path: &Path, limits: &Limits) -> Result<GgufFile, GgufError> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    read_from(file, file_len, limits)
}

/// Reads and validates a GGUF header from `reader`, positioned at the start of a file of
/// `file_len` bytes. Never reads past `file_len`; a reader that ends early gives
/// [`GgufError::UnexpectedEof`]. `reader` does not need to be buffered.
pub fn read_from<R: Read>(
    reader: R,
    file_len: u64,
    limits: &Limits,
) -> Result<GgufFile, GgufError> {
    Parser {
        input: Input::new(reader, file_len),
        limits,
    }
    .parse(file_len)
}

/// Reads and validates a GGUF header from a complete in-memory file.
pub fn read_bytes(bytes: &[u8], limits: &Limits) -> Result<GgufFile, GgufError> {
    read_from(bytes, bytes.len() as u64, limits)
}

struct Parser<'l, R> {
    input: Input<R>,
    limits: &'l Limits,
}

/// Capacity to reserve for `count` items of at least `min_size` bytes each: never more than
/// could fit in what is left of the file, nor more than [`MAX_PREALLOC`].
fn capped_capacity(count: u64, remaining: u64, min_size: u64) -> usize {
    usize::try_from(count.min(remaining / min_size)).map_or(0, |n| n.min(MAX_PREALLOC))
}

impl<R: Read> Parser<'_, R> {
    fn parse(mut self, file_len: u64) -> Result<GgufFile, GgufError> {
        let magic: [u8; 4] = self.input.read_array()?;
        if magic != GGUF_MAGIC {
            return Err(GgufError::BadMagic { found: magic });
        }
        let version = self.input.read_u32()?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::UnsupportedVersion { version });
        }
        let tensor_count = self.input.read_u64()?;
        if tensor_count > self.limits.max_tensors {
            return Err(GgufError::TooManyTensors {
                count: tensor_count,
                max: self.limits.max_tensors,
            });
        }
        let kv_count = self.input.read_u64()?;
        if kv_count > self.limits.max_kv {
            return Err(GgufError::TooManyKv {
                count: kv_count,
                max: self.limits.max_kv,
            });
        }

        // Cheap early rejection of counts the rest of the file cannot possibly hold.
        let min_needed = kv_count
            .saturating_mul(MIN_KV_SIZE)
            .saturating_add(tensor_count.saturating_mul(MIN_TENSOR_INFO_SIZE));
        self.input.ensure(min_needed)?;

        let metadata = self.read_metadata(kv_count)?;
        let alignment = alignment_of(&metadata)?;
        let (tensors, sizes) = self.read_tensor_infos(tensor_count)?;

        let end_of_infos = self.input.offset();
        let data_offset = align_up(end_of_infos, alignment).ok_or(GgufError::UnexpectedEof {
            offset: end_of_infos,
            needed: alignment,
        })?;
        if data_offset > file_len {
            return Err(GgufError::UnexpectedEof {
                offset: end_of_infos,
                needed: data_offset - end_of_infos,
            });
        }
        check_tensor_layout(&tensors, &sizes, alignment, data_offset, file_len)?;

        Ok(GgufFile {
            version,
            metadata,
            tensors,
            alignment,
            data_offset,
            file_len,
        })
    }

    fn read_string(&mut self) -> Result<Vec<u8>, GgufError> {
        let offset = self.input.offset();
        let len = self.input.read_u64()?;
        let too_long = GgufError::StringTooLong {
            offset,
            len,
            max: self.limits.max_string_len,
        };
        if len > self.limits.max_string_len {
            return Err(too_long);
        }
        self.input.ensure(len)?;
        let len = usize::try_from(len).map_err(|_| too_long)?;
        let mut bytes = vec![0u8; len];
        self.input.read_exact_into(&mut bytes)?;
        Ok(bytes)
    }

    fn read_metadata(&mut self, kv_count: u64) -> Result<Metadata, GgufError> {
        let capacity = capped_capacity(kv_count, self.input.remaining(), MIN_KV_SIZE);
        let mut metadata = Metadata::with_capacity(capacity);
        for _ in 0..kv_count {
            let key_offset = self.input.offset();
            let key = String::from_utf8(self.read_string()?)
                .map_err(|_| GgufError::InvalidKeyUtf8 { offset: key_offset })?;
            let type_offset = self.input.offset();
            let type_id = self.input.read_u32()?;
            let value_type =
                ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
                    key: short(&key),
                    offset: type_offset,
                    type_id,
                })?;
            let value = self.read_value(&key, value_type)?;
            metadata.push_unique(key, value)?;
        }
        Ok(metadata)
    }

    fn read_bool(&mut self, key: &str) -> Result<bool, GgufError> {
        let offset = self.input.offset();
        match self.input.read_array::<1>()? {
            [0] => Ok(false),
            [1] => Ok(true),
            [value] => Err(GgufError::InvalidBool {
                key: short(key),
                offset,
                value,
            }),
        }
    }

    fn read_value(&mut self, key: &str, value_type: ValueType) -> Result<Value, GgufError> {
        let i = &mut self.input;
        Ok(match value_type {
            ValueType::U8 => Value::U8(u8::from_le_bytes(i.read_array()?)),
            ValueType::I8 => Value::I8(i8::from_le_bytes(i.read_array()?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(i.read_array()?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(i.read_array()?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(i.read_array()?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(i.read_array()?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(i.read_array()?)),
            ValueType::U64 => Value::U64(u64::from_le_bytes(i.read_array()?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(i.read_array()?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(i.read_array()?)),
            ValueType::Bool => Value::Bool(self.read_bool(key)?),
            ValueType::String => Value::String(GgufString::from_bytes(self.read_string()?)),
            ValueType::Array => Value::Array(self.read_array_value(key, 1)?),
        })
    }

    /// Reads `n` fixed-size elements (the bytes for all of them were checked to be present, so
    /// reserving `n` costs no more memory than those bytes).
    fn read_fixed<T, const N: usize>(
        &mut self,
        n: usize,
        convert: fn([u8; N]) -> T,
    ) -> Result<Vec<T>, GgufError> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(convert(self.input.read_array()?));
        }
        Ok(out)
    }

    /// Reads an array's element type, count and elements; `depth` is 1 for a top-level array.
    fn read_array_value(&mut self, key: &str, depth: u32) -> Result<Array, GgufError> {
        let type_offset = self.input.offset();
        let type_id = self.input.read_u32()?;
        let element_type =
            ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
                key: short(key),
                offset: type_offset,
                type_id,
            })?;
        if element_type == ValueType::Array && depth >= MAX_ARRAY_DEPTH {
            return Err(GgufError::ArrayNestingTooDeep {
                key: short(key),
                offset: type_offset,
                max_depth: MAX_ARRAY_DEPTH,
            });
        }
        let count = self.input.read_u64()?;
        let too_long = || GgufError::ArrayTooLong {
            key: short(key),
            offset: type_offset,
            len: count,
            max: self.limits.max_array_len,
        };
        if count > self.limits.max_array_len {
            return Err(too_long());
        }
        let min_size = match element_type {
            ValueType::String => 8,
            ValueType::Array => MIN_ARRAY_SIZE,
            other => other.fixed_size().unwrap_or(1),
        };
        self.input.ensure(count.saturating_mul(min_size))?;
        let n = usize::try_from(count).map_err(|_| too_long())?;

        let data = match element_type {
            ValueType::U8 => {
                let mut v = vec![0u8; n];
                self.input.read_exact_into(&mut v)?;
                ArrayData::U8(v)
            }
            ValueType::I8 => ArrayData::I8(self.read_fixed(n, i8::from_le_bytes)?),
            ValueType::U16 => ArrayData::U16(self.read_fixed(n, u16::from_le_bytes)?),
            ValueType::I16 => ArrayData::I16(self.read_fixed(n, i16::from_le_bytes)?),
            ValueType::U32 => ArrayData::U32(self.read_fixed(n, u32::from_le_bytes)?),
            ValueType::I32 => ArrayData::I32(self.read_fixed(n, i32::from_le_bytes)?),
            ValueType::F32 => ArrayData::F32(self.read_fixed(n, f32::from_le_bytes)?),
            ValueType::U64 => ArrayData::U64(self.read_fixed(n, u64::from_le_bytes)?),
            ValueType::I64 => ArrayData::I64(self.read_fixed(n, i64::from_le_bytes)?),
            ValueType::F64 => ArrayData::F64(self.read_fixed(n, f64::from_le_bytes)?),
            ValueType::Bool => {
                let mut v = Vec::with_capacity(n.min(MAX_PREALLOC));
                for _ in 0..n {
                    v.push(self.read_bool(key)?);
                }
                ArrayData::Bool(v)
            }
            ValueType::String => {
                let mut v = Vec::with_capacity(n.min(MAX_PREALLOC));
                for _ in 0..n {
                    v.push(GgufString::from_bytes(self.read_string()?));
                }
                ArrayData::String(v)
            }
            ValueType::Array => {
                let mut v = Vec::with_capacity(n.min(MAX_PREALLOC));
                for _ in 0..n {
                    v.push(self.read_array_value(key, depth + 1)?);
                }
                ArrayData::Array(v)
            }
        };
        Ok(Array::new(data))
    }

    /// Reads the tensor infos, validating each shape; returns them with their byte sizes.
    fn read_tensor_infos(
        &mut self,
        tensor_count: u64,
    ) -> Result<(Vec<TensorInfo>, Vec<u64>), GgufError> {
        let capacity = capped_capacity(tensor_count, self.input.remaining(), MIN_TENSOR_INFO_SIZE);
        let mut tensors = Vec::with_capacity(capacity);
        let mut sizes = Vec::with_capacity(capacity);
        for _ in 0..tensor_count {
            let name_offset = self.input.offset();
            let name = self.read_string()?;
            if name.len() as u64 > MAX_TENSOR_NAME_LEN {
                return Err(GgufError::TensorNameTooLong {
                    name: short_bytes(&name),
                    len: name.len() as u64,
                    max: MAX_TENSOR_NAME_LEN,
                });
            }
            let name = String::from_utf8(name).map_err(|_| GgufError::InvalidTensorNameUtf8 {
                offset: name_offset,
            })?;
            let n_dims = self.input.read_u32()?;
            if n_dims == 0 || n_dims as usize > MAX_DIMS {
                return Err(GgufError::InvalidDimCount {
                    tensor: short(&name),
                    n_dims: n_dims.into(),
                });
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(self.input.read_u64()?);
            }
            let type_id = self.input.read_u32()?;
            let ggml_type =
                GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownGgmlType {
                    tensor: short(&name),
                    type_id,
                })?;
            let offset = self.input.read_u64()?;
            let size = byte_size_of(&name, &dims, ggml_type)?;
            tensors.push(TensorInfo {
                name,
                dims,
                ggml_type,
                offset,
            });
            sizes.push(size);
        }
        let mut names = HashSet::with_capacity(tensors.len());
        for t in &tensors {
            if !names.insert(t.name.as_str()) {
                return Err(GgufError::DuplicateTensor {
                    name: short(&t.name),
                });
            }
        }
        Ok((tensors, sizes))
    }
}

/// `general.alignment` if present (must be a `u32` power of two), else the default.
pub(crate) fn alignment_of(metadata: &Metadata) -> Result<u64, GgufError> {
    match metadata.get(KEY_ALIGNMENT) {
        None => Ok(DEFAULT_ALIGNMENT),
        Some(Value::U32(a)) if a.is_power_of_two() => Ok(u64::from(*a)),
        Some(Value::U32(a)) => Err(GgufError::InvalidAlignment {
            alignment: u64::from(*a),
        }),
        Some(other) => Err(GgufError::AlignmentWrongType {
            found: other.value_type(),
        }),
    }
}

/// Rounds `n` up to a multiple of `alignment` (a power of two); `None` on overflow.
pub(crate) fn align_up(n: u64, alignment: u64) -> Option<u64> {
    Some(n.checked_add(alignment - 1)? & !(alignment - 1))
}

/// Checks alignment, bounds and overlap of every tensor's data.
fn check_tensor_layout(
    tensors: &[TensorInfo],
    sizes: &[u64],
    alignment: u64,
    data_offset: u64,
    file_len: u64,
) -> Result<(), GgufError> {
    let mut extents = Vec::with_capacity(tensors.len());
    for (t, &size) in tensors.iter().zip(sizes) {
        if t.offset % alignment != 0 {
            return Err(GgufError::MisalignedTensor {
                tensor: short(&t.name),
                offset: t.offset,
                alignment,
            });
        }
        let end = data_offset
            .checked_add(t.offset)
            .and_then(|start| start.checked_add(size));
        match end {
            Some(end) if end <= file_len => extents.push((t.offset, t.offset + size, t)),
            _ => {
                return Err(GgufError::TensorOutOfBounds {
                    tensor: short(&t.name),
                    offset: t.offset,
                    size,
                    data_offset,
                    file_len,
                })
            }
        }
    }
    extents.sort_unstable_by_key(|&(start, end, _)| (start, end));
    for pair in extents.windows(2) {
        if let [(_, prev_end, prev), (start, _, next)] = pair {
            if start < prev_end {
                return Err(GgufError::OverlappingTensors {
                    first: short(&prev.name),
                    second: short(&next.name),
                });
            }
        }
    }
    Ok(())
}
