//! Streams GGUF tensors into `f32` safetensors shards: each tensor is read in chunks of rows,
//! dequantized (over two threads when the chunk is large), transformed back to its Hugging
//! Face values and appended to the shard, so memory stays bounded by one chunk (or one q/k
//! projection, which must be whole to undo the RoPE permutation).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use vazhi_gguf::GgmlType;

use super::plan::TensorPlan;
use super::ImportError;
use crate::arch::gemma3::NORM_SHIFT;
use crate::arch::llama::unpermute_rows;
use crate::arch::Transform;
use crate::dequant::{dequantize, DequantError};
use crate::hf::{Dtype, PlannedTensor, SafetensorsWriter};

/// Elements dequantized per chunk (32 MiB of `f32`).
const CHUNK_ELEMENTS: usize = 1 << 23;

/// Chunks at least this large are split over two threads.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 18;

/// Reads tensor data from the GGUF file by absolute offset.
pub(super) struct TensorReader<'a> {
    file: File,
    path: &'a Path,
    data_offset: u64,
    buffer: Vec<u8>,
}

impl<'a> TensorReader<'a> {
    pub(super) fn open(path: &'a Path, data_offset: u64) -> Result<Self, ImportError> {
        let file = File::open(path).map_err(|source| ImportError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(TensorReader {
            file,
            path,
            data_offset,
            buffer: Vec::new(),
        })
    }

    /// `len` bytes at `offset` within the data section.
    fn read(&mut self, offset: u64, len: usize) -> Result<&[u8], ImportError> {
        let io = |source| ImportError::Io {
            path: self.path.to_owned(),
            source,
        };
        self.buffer.resize(len, 0);
        self.file
            .seek(SeekFrom::Start(self.data_offset.saturating_add(offset)))
            .map_err(io)?;
        self.file.read_exact(&mut self.buffer).map_err(io)?;
        Ok(&self.buffer)
    }

    /// All values of a tensor, dequantized (no transform).
    pub(super) fn read_f32(
        &mut self,
        info: &vazhi_gguf::TensorInfo,
    ) -> Result<Vec<f32>, ImportError> {
        let n = to_usize(info.n_elements())?;
        let len = to_usize(info.byte_size())?;
        let ggml_type = info.ggml_type;
        let bytes = self.read(info.offset, len)?;
        let mut out = Vec::new();
        dequantize(ggml_type, bytes, n, &mut out).map_err(|source| ImportError::Dequant {
            name: info.name.clone(),
            source,
        })?;
        Ok(out)
    }
}

fn to_usize(v: u64) -> Result<usize, ImportError> {
    usize::try_from(v).map_err(|_| ImportError::TooLarge {
        what: "a tensor".into(),
        size: v,
    })
}

/// Dequantizes `rows` whole rows, splitting large inputs over two threads.
fn dequantize_rows(
    ggml_type: GgmlType,
    bytes: &[u8],
    rows: usize,
    row_len: usize,
) -> Result<Vec<f32>, DequantError> {
    let n = rows * row_len;
    let mut first = Vec::new();
    if rows < 2 || n < PARALLEL_MIN_ELEMENTS {
        dequantize(ggml_type, bytes, n, &mut first)?;
        return Ok(first);
    }
    let mid = rows / 2;
    let split = bytes.len() / rows * mid;
    let (a, b) = bytes.split_at(split);
    std::thread::scope(|scope| {
        let second = scope.spawn(|| {
            let mut v = Vec::new();
            dequantize(ggml_type, b, (rows - mid) * row_len, &mut v).map(|()| v)
        });
        dequantize(ggml_type, a, mid * row_len, &mut first)?;
        let second = second
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        first.extend_from_slice(&second);
        Ok(first)
    })
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 4);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes one tensor (chunk by chunk) into `writer`.
fn write_tensor(
    reader: &mut TensorReader<'_>,
    plan: &TensorPlan,
    writer: &mut SafetensorsWriter,
) -> Result<(), ImportError> {
    let info = &plan.gguf;
    let span = tracing::debug_span!("tensor", name = %info.name, ggml_type = %info.ggml_type);
    let _guard = span.enter();
    let dequant_err = |source| ImportError::Dequant {
        name: info.name.clone(),
        source,
    };
    let row_len = to_usize(info.dims.first().copied().unwrap_or(1))?;
    let n = to_usize(info.n_elements())?;
    let rows = n / row_len.max(1);
    let row_bytes = to_usize(info.byte_size())? / rows.max(1);
    if let Transform::PermuteRows { n_head } = plan.transform {
        let values = reader.read_f32(info)?;
        // A 1-D tensor (a q/k bias) holds one value per output row: rows of length 1.
        let permuted_row_len = if info.dims.len() <= 1 { 1 } else { row_len };
        let values = unpermute_rows(&values, permuted_row_len, n_head).ok_or_else(|| {
            ImportError::BadMetadata {
                key: "attention.head_count".into(),
                problem: format!(
                    "({n_head}) does not split the rows of {} into heads of an even size",
                    info.name
                ),
            }
        })?;
        return Ok(writer.write(&f32_bytes(&values))?);
    }
    let rows_per_chunk = (CHUNK_ELEMENTS / row_len.max(1)).max(1);
    let mut row = 0;
    while row < rows {
        let take = rows_per_chunk.min(rows - row);
        let offset = info.offset + (row * row_bytes) as u64;
        let bytes = reader.read(offset, take * row_bytes)?;
        let mut values =
            dequantize_rows(info.ggml_type, bytes, take, row_len).map_err(dequant_err)?;
        if plan.transform == Transform::NormPlusOne {
            for v in &mut values {
                *v -= NORM_SHIFT;
            }
        }
        writer.write(&f32_bytes(&values))?;
        row += take;
    }
    Ok(())
}

/// Writes every shard into `dir`, calling `progress(done, total)` after each tensor.
pub(super) fn write_shards(
    reader: &mut TensorReader<'_>,
    plans: &[TensorPlan],
    shards: &[(String, Vec<usize>)],
    dir: &Path,
    progress: &dyn Fn(usize, usize),
) -> Result<(), ImportError> {
    let total = plans.len();
    let mut done = 0;
    progress(done, total);
    let metadata = BTreeMap::from([("format".to_owned(), "pt".to_owned())]);
    for (file_name, indices) in shards {
        let span = tracing::info_span!("shard", file = %file_name, tensors = indices.len());
        let _guard = span.enter();
        let planned: Vec<PlannedTensor> = indices
            .iter()
            .map(|&i| PlannedTensor {
                name: plans[i].hf_name.clone(),
                dtype: Dtype::F32,
                shape: plans[i].shape.clone(),
            })
            .collect();
        let mut writer = SafetensorsWriter::create(&dir.join(file_name), &planned, &metadata)?;
        for &i in indices {
            write_tensor(reader, &plans[i], &mut writer)?;
            done += 1;
            progress(done, total);
        }
        writer.finish()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_dequantization_matches_serial() {
        // 64 rows of 8192 Q8_0 values: large enough to split.
        let row_len = 8192;
        let rows = 64;
        let blocks = rows * row_len / 32;
        let mut bytes = Vec::with_capacity(blocks * 34);
        for b in 0..blocks {
            bytes.extend(half::f16::from_f32(0.5 + (b % 7) as f32).to_le_bytes());
            bytes.extend((0..32).map(|j| ((b * 31 + j * 7) % 251) as u8));
        }
        let parallel = dequantize_rows(GgmlType::Q8_0, &bytes, rows, row_len).expect("parallel");
        let mut serial = Vec::new();
        dequantize(GgmlType::Q8_0, &bytes, rows * row_len, &mut serial).expect("serial");
        assert_eq!(parallel, serial);
    }
}
