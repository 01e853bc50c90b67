//! Writing GGUF v3 files: [`write_gguf`] for data already in memory, [`GgufWriter`] to stream
//! tensor data one tensor (or one chunk) at a time.
//!
//! The layout matches what llama.cpp and gguf-py write: header, metadata, tensor infos, zero
//! padding to the alignment, then each tensor's data followed by zero padding to the alignment.
//! Tensor offsets are computed here (in the order given), so re-writing a file produced by
//! either tool reproduces it byte for byte.

use std::fmt;
use std::io::Write;

use crate::error::{short, GgufError};
use crate::limits::MAX_ARRAY_DEPTH;
use crate::metadata::Metadata;
use crate::reader::{align_up, alignment_of, GGUF_MAGIC};
use crate::tensor::TensorInfo;
use crate::types::GgmlType;
use crate::value::{Array, ArrayData, Value, ValueType};

/// The version this crate writes.
pub const WRITE_VERSION: u32 = 3;

/// One tensor to write with [`write_gguf`]: its description and its data.
#[derive(Debug, Clone, Copy)]
pub struct TensorData<'a> {
    /// Tensor name (at most [`MAX_TENSOR_NAME_LEN`](crate::MAX_TENSOR_NAME_LEN) bytes).
    pub name: &'a str,
    /// Dimensions, innermost first.
    pub dims: &'a [u64],
    /// Element type.
    pub ggml_type: GgmlType,
    /// The raw data; its length must equal the tensor's byte size.
    pub data: &'a [u8],
}

/// Writes a complete GGUF v3 file: `metadata`, then `tensors` in order with computed offsets.
///
/// Everything is validated (shapes, data lengths, alignment, array nesting) before the first
/// byte is written.
pub fn write_gguf<W: Write>(
    out: W,
    metadata: &Metadata,
    tensors: &[TensorData<'_>],
) -> Result<(), GgufError> {
    let infos: Vec<TensorInfo> = tensors
        .iter()
        .map(|t| TensorInfo::new(t.name, t.dims.to_vec(), t.ggml_type))
        .collect();
    for (t, info) in tensors.iter().zip(&infos) {
        let expected = info.validate()?;
        if t.data.len() as u64 != expected {
            return Err(GgufError::TensorDataSizeMismatch {
                tensor: short(t.name),
                expected,
                actual: t.data.len() as u64,
            });
        }
    }
    let mut writer = GgufWriter::new(out, metadata, &infos)?;
    for t in tensors {
        writer.write_tensor_data(t.data)?;
    }
    writer.finish()?;
    Ok(())
}

/// Streaming GGUF v3 writer.
///
/// [`GgufWriter::new`] validates everything and writes the header, metadata, tensor infos and
/// padding; then each tensor's data is given in declaration order, either whole
/// ([`write_tensor_data`](Self::write_tensor_data)) or in pieces
/// ([`write_tensor_chunk`](Self::write_tensor_chunk)); [`finish`](Self::finish) checks that
/// every tensor was written. After any error the output is incomplete and should be discarded.
pub struct GgufWriter<W: Write> {
    out: W,
    tensors: Vec<TensorInfo>,
    sizes: Vec<u64>,
    alignment: u64,
    data_offset: u64,
    total_len: u64,
    /// Index of the tensor whose data comes next.
    next: usize,
    /// Bytes of tensor `next` written so far.
    written: u64,
}

impl<W: Write> fmt::Debug for GgufWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufWriter")
            .field("tensors", &self.tensors.len())
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .field("next", &self.next)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl<W: Write> GgufWriter<W> {
    /// Validates `metadata` and `tensors` and writes everything up to the data section.
    ///
    /// The alignment is `general.alignment` from `metadata` if present (a `u32` power of two),
    /// else 32. The `offset` fields of `tensors` are ignored: offsets are assigned in order,
    /// each tensor padded to the alignment; see [`tensors`](Self::tensors).
    pub fn new(mut out: W, metadata: &Metadata, tensors: &[TensorInfo]) -> Result<Self, GgufError> {
        let alignment = alignment_of(metadata)?;
        let mut infos = Vec::with_capacity(tensors.len());
        let mut sizes = Vec::with_capacity(tensors.len());
        let mut names = std::collections::HashSet::with_capacity(tensors.len());
        let mut next_offset: u64 = 0;
        for t in tensors {
            let size = t.validate()?;
            if !names.insert(t.name.as_str()) {
                return Err(GgufError::DuplicateTensor {
                    name: short(&t.name),
                });
            }
            let overflow = || GgufError::TensorSizeOverflow {
                tensor: short(&t.name),
            };
            let padded = align_up(size, alignment).ok_or_else(overflow)?;
            infos.push(TensorInfo {
                offset: next_offset,
                ..t.clone()
            });
            sizes.push(size);
            next_offset = next_offset.checked_add(padded).ok_or_else(overflow)?;
        }

        let mut header = Vec::new();
        header.extend_from_slice(&GGUF_MAGIC);
        put_u32(&mut header, WRITE_VERSION);
        put_u64(&mut header, infos.len() as u64);
        put_u64(&mut header, metadata.len() as u64);
        for (key, value) in metadata.iter() {
            put_bytes(&mut header, key.as_bytes());
            put_u32(&mut header, value.type_id());
            encode_value(&mut header, key, value)?;
        }
        for t in &infos {
            put_bytes(&mut header, t.name.as_bytes());
            put_u32(&mut header, t.dims.len() as u32);
            for &d in &t.dims {
                put_u64(&mut header, d);
            }
            put_u32(&mut header, t.ggml_type.id());
            put_u64(&mut header, t.offset);
        }
        let header_len = header.len() as u64;
        let overflow = || GgufError::TensorSizeOverflow {
            tensor: String::new(),
        };
        let data_offset = align_up(header_len, alignment).ok_or_else(overflow)?;
        let total_len = data_offset.checked_add(next_offset).ok_or_else(overflow)?;

        out.write_all(&header)?;
        write_zeros(&mut out, data_offset - header_len)?;
        Ok(GgufWriter {
            out,
            tensors: infos,
            sizes,
            alignment,
            data_offset,
            total_len,
            next: 0,
            written: 0,
        })
    }

    /// The tensor infos as written, with their computed offsets.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The alignment in use.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute offset of the data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Length of the complete file once every tensor is written.
    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    /// Writes the whole data of the next tensor; `data.len()` must equal its byte size and no
    /// partial chunk of it may have been written.
    pub fn write_tensor_data(&mut self, data: &[u8]) -> Result<(), GgufError> {
        let (Some(t), Some(&size)) = (self.tensors.get(self.next), self.sizes.get(self.next))
        else {
            return Err(GgufError::UnexpectedTensorData {
                declared: self.tensors.len(),
            });
        };
        let actual = self.written.saturating_add(data.len() as u64);
        if self.written != 0 || data.len() as u64 != size {
            return Err(GgufError::TensorDataSizeMismatch {
                tensor: short(&t.name),
                expected: size,
                actual,
            });
        }
        self.write_tensor_chunk(data)
    }

    /// Writes the next piece of the current tensor's data; once the tensor's byte size is
    /// reached, its padding is written and the next tensor begins. A chunk may not extend past
    /// the end of the current tensor.
    pub fn write_tensor_chunk(&mut self, chunk: &[u8]) -> Result<(), GgufError> {
        let (Some(t), Some(&size)) = (self.tensors.get(self.next), self.sizes.get(self.next))
        else {
            return Err(GgufError::UnexpectedTensorData {
                declared: self.tensors.len(),
            });
        };
        let total = self.written.saturating_add(chunk.len() as u64);
        if total > size {
            return Err(GgufError::TensorDataSizeMismatch {
                tensor: short(&t.name),
                expected: size,
                actual: total,
            });
        }
        self.out.write_all(chunk)?;
        self.written = total;
        if total == size {
            let padded = align_up(size, self.alignment).unwrap_or(size);
            write_zeros(&mut self.out, padded - size)?;
            self.next += 1;
            self.written = 0;
        }
        Ok(())
    }

    /// Checks that every tensor was written, flushes, and returns the output.
    pub fn finish(mut self) -> Result<W, GgufError> {
        if self.next != self.tensors.len() {
            return Err(GgufError::MissingTensorData {
                written: self.next,
                declared: self.tensors.len(),
            });
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

fn write_zeros<W: Write>(out: &mut W, mut n: u64) -> Result<(), GgufError> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        out.write_all(ZEROS.get(..k).unwrap_or_default())?;
        n -= k as u64;
    }
    Ok(())
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// Appends a value's payload (its type id already written).
fn encode_value(buf: &mut Vec<u8>, key: &str, value: &Value) -> Result<(), GgufError> {
    match value {
        Value::U8(v) => buf.push(*v),
        Value::I8(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::U16(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::I16(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::U32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::I32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::F32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::Bool(v) => buf.push(u8::from(*v)),
        Value::String(s) => put_bytes(buf, s.as_bytes()),
        Value::Array(a) => encode_array(buf, key, a, 1)?,
        Value::U64(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::I64(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::F64(v) => buf.extend_from_slice(&v.to_le_bytes()),
    }
    Ok(())
}

fn encode_array(buf: &mut Vec<u8>, key: &str, array: &Array, depth: u32) -> Result<(), GgufError> {
    if array.element_type() == ValueType::Array && depth >= MAX_ARRAY_DEPTH {
        return Err(GgufError::ArrayNestingTooDeep {
            key: short(key),
            offset: buf.len() as u64,
            max_depth: MAX_ARRAY_DEPTH,
        });
    }
    put_u32(buf, array.element_type().id());
    put_u64(buf, array.len() as u64);
    fn each<T: Copy, const N: usize>(buf: &mut Vec<u8>, v: &[T], f: fn(T) -> [u8; N]) {
        buf.reserve(v.len() * N);
        for &x in v {
            buf.extend_from_slice(&f(x));
        }
    }
    match array.data() {
        ArrayData::U8(v) => buf.extend_from_slice(v),
        ArrayData::I8(v) => each(buf, v, i8::to_le_bytes),
        ArrayData::U16(v) => each(buf, v, u16::to_le_bytes),
        ArrayData::I16(v) => each(buf, v, i16::to_le_bytes),
        ArrayData::U32(v) => each(buf, v, u32::to_le_bytes),
        ArrayData::I32(v) => each(buf, v, i32::to_le_bytes),
        ArrayData::F32(v) => each(buf, v, f32::to_le_bytes),
        ArrayData::U64(v) => each(buf, v, u64::to_le_bytes),
        ArrayData::I64(v) => each(buf, v, i64::to_le_bytes),
        ArrayData::F64(v) => each(buf, v, f64::to_le_bytes),
        ArrayData::Bool(v) => buf.extend(v.iter().map(|&b| u8::from(b))),
        ArrayData::String(v) => {
            for s in v {
                put_bytes(buf, s.as_bytes());
            }
        }
        ArrayData::Array(v) => {
            for inner in v {
                encode_array(buf, key, inner, depth + 1)?;
            }
        }
    }
    Ok(())
}
