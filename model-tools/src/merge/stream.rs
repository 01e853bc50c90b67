//! Writing one output tensor: a byte-for-byte copy, or source rows converted to `f32` a block
//! at a time, the adapters' low-rank deltas added, and the block encoded back to the base
//! dtype and streamed to the safetensors writer.

use crate::hf::{encode_f32, Checkpoint, Dtype, SafetensorsWriter, TensorRef};

use super::adapter::{Adapter, Layout};
use super::kernel::{non_finite, LowRank};
use super::{MergeError, TensorAction, BLOCK_VALUES};

/// Bytes copied per write for unchanged tensors.
const COPY_CHUNK: usize = 16 << 20;

/// Threads that share a block of rows. On a 2-core machine a 4096×4096 BF16 matrix with a
/// rank-16 delta took 0.062–0.069 s with two against 0.069–0.094 s with one
/// (`tests::block_throughput`, release build); more would compete with the writer for memory
/// bandwidth on small machines.
pub(crate) const WORKERS: usize = 2;

/// Blocks smaller than this many values are not split between threads.
const PARALLEL_MIN_VALUES: usize = 1 << 16;

/// What the adapters do to one base tensor.
#[derive(Debug, Default)]
pub(crate) struct Job {
    /// `(adapter index, adapter tensor)` that replaces the base tensor, if any.
    pub source: Option<(usize, String)>,
    /// Adapters (by index, in order) whose delta is added after the source.
    pub deltas: Vec<usize>,
}

/// Writes base tensor `name` (after `job`) to `writer`.
pub(crate) fn write_tensor(
    base: &Checkpoint,
    name: &str,
    job: Option<&Job>,
    adapters: &[Adapter],
    dtype: Dtype,
    writer: &mut SafetensorsWriter,
) -> Result<TensorAction, MergeError> {
    let _span = tracing::debug_span!("tensor", name).entered();
    let (checkpoint, source_name) = match job.and_then(|j| j.source.as_ref()) {
        Some((index, tensor)) => (&adapters[*index].weights, tensor.as_str()),
        None => (base, name),
    };
    let source = checkpoint.tensor(source_name)?;
    let deltas = job.map_or(&[][..], |j| j.deltas.as_slice());
    if deltas.is_empty() && source.dtype == dtype {
        for chunk in source.data.chunks(COPY_CHUNK) {
            writer.write(chunk)?;
        }
    } else {
        let terms = deltas
            .iter()
            .map(|&index| low_rank(&adapters[index], name))
            .collect::<Result<Vec<_>, _>>()?;
        let shape = (source.rows(), source.row_len());
        if let Some(bad) = terms.iter().find(|t| t.shape() != shape) {
            return Err(MergeError::BaseTensor {
                tensor: name.to_owned(),
                why: format!("delta of shape {:?} does not fit {:?}", bad.shape(), shape),
            });
        }
        write_merged(&source, &terms, &dtype, WORKERS, &mut |b| writer.write(b))?;
    }
    checkpoint.release(source_name);
    base.release(name);
    Ok(match job {
        Some(Job {
            source: Some(_), ..
        }) => TensorAction::Replaced {
            adapters_after: deltas.len(),
        },
        _ if deltas.is_empty() => TensorAction::Copied,
        _ => TensorAction::Merged {
            adapters: deltas.len(),
        },
    })
}

/// One adapter's delta for base tensor `name`, as `f32` factors in the base's row order.
fn low_rank(adapter: &Adapter, name: &str) -> Result<LowRank, MergeError> {
    let pair = adapter
        .deltas
        .get(name)
        .ok_or_else(|| MergeError::BaseTensor {
            tensor: name.to_owned(),
            why: "planned a delta the adapter does not have".to_owned(),
        })?;
    let a_ref = adapter.weights.tensor(&pair.a)?;
    let b_ref = adapter.weights.tensor(&pair.b)?;
    let (a, b) = (a_ref.to_f32()?, b_ref.to_f32()?);
    let (out, inp) = (b_ref.rows(), a_ref.row_len());
    adapter.weights.release(&pair.a);
    adapter.weights.release(&pair.b);
    Ok(match pair.layout {
        Layout::Linear => LowRank::linear(&a, &b, pair.rank, out, inp, pair.scale),
        Layout::FanInFanOut | Layout::Embedding => {
            LowRank::transposed(&a, &b, pair.rank, out, inp, pair.scale)
        }
    })
}

/// Streams `source` plus `terms`, encoded as `dtype`, to `sink` a block of rows at a time.
pub(crate) fn write_merged(
    source: &TensorRef<'_>,
    terms: &[LowRank],
    dtype: &Dtype,
    workers: usize,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), crate::hf::HfError>,
) -> Result<(), MergeError> {
    let rows = source.rows();
    let step = (BLOCK_VALUES / source.row_len().max(1)).max(1);
    let mut first = 0;
    while first < rows {
        let n = step.min(rows - first);
        if workers > 1 && n >= 2 && n * source.row_len() >= PARALLEL_MIN_VALUES {
            let half = n / 2;
            let (low, high) = std::thread::scope(|s| {
                let high = s.spawn(|| merged_rows(source, first + half, n - half, terms, dtype));
                let low = merged_rows(source, first, half, terms, dtype);
                (low, high.join())
            });
            let high = high.map_err(|_| MergeError::BaseTensor {
                tensor: source.name.to_owned(),
                why: "a merge worker thread panicked".to_owned(),
            })?;
            sink(&low?)?;
            sink(&high?)?;
        } else {
            sink(&merged_rows(source, first, n, terms, dtype)?)?;
        }
        first += n;
    }
    Ok(())
}

/// Rows `first..first + n` of `source` plus the deltas, encoded as `dtype`.
fn merged_rows(
    source: &TensorRef<'_>,
    first: usize,
    n: usize,
    terms: &[LowRank],
    dtype: &Dtype,
) -> Result<Vec<u8>, MergeError> {
    let mut values = source.rows_to_f32(first, n)?;
    if !terms.is_empty() {
        let before = non_finite(&values);
        for term in terms {
            term.add_to_rows(first, &mut values);
        }
        if non_finite(&values) > before {
            return Err(MergeError::BaseTensor {
                tensor: source.name.to_owned(),
                why: "adding the LoRA delta produced NaN or infinite values: the adapter is \
                      broken (PEFT's safe_merge refuses it too)"
                    .to_owned(),
            });
        }
    }
    Ok(encode_f32(&values, dtype)?)
}
