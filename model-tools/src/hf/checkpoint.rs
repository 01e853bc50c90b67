//! A Hugging Face checkpoint's safetensors, memory-mapped and indexed by tensor name.
//!
//! Opens `model.safetensors`, or the shards listed by `model.safetensors.index.json`. Each
//! shard's header is parsed and checked (length, JSON, dtype sizes × shapes = byte ranges,
//! ranges inside the file, no overlaps) before any tensor is handed out as a borrowed slice of
//! the mapping. [`Checkpoint::release`] drops a tensor's pages from the process once it has
//! been used, which keeps streaming steps' resident memory near one tensor.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::dtype::decode_to_f32;
use super::{read_json, Dtype, HfError};
use super::{MODEL_SAFETENSORS, MODEL_SAFETENSORS_INDEX_JSON};

/// Largest header accepted (the format's own limit is 100 MB).
const MAX_HEADER_BYTES: u64 = 100 * 1024 * 1024;

#[derive(Debug)]
struct Shard {
    path: PathBuf,
    map: Mmap,
    data_start: usize,
    metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct Entry {
    shard: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// The safetensors weights of one model directory (or one file).
#[derive(Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    shards: Vec<Shard>,
    entries: BTreeMap<String, Entry>,
}

/// One tensor: its dtype, torch-order shape and raw little-endian bytes.
#[derive(Debug, Clone)]
pub struct TensorRef<'a> {
    /// Tensor name.
    pub name: &'a str,
    /// Element type.
    pub dtype: Dtype,
    /// Shape, outermost dimension first (PyTorch order).
    pub shape: Vec<usize>,
    /// The bytes, borrowed from the mapping.
    pub data: &'a [u8],
}

impl TensorRef<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of rows (the first dimension; 1 for scalars).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Elements per row (the product of every dimension after the first).
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// The whole tensor as `f32` (from F32, F16, BF16 or F64).
    pub fn to_f32(&self) -> Result<Vec<f32>, HfError> {
        let mut out = Vec::with_capacity(self.len());
        decode_to_f32(self.name, &self.dtype, self.data, &mut out)?;
        Ok(out)
    }

    /// Rows `first_row..first_row + rows` as `f32`.
    pub fn rows_to_f32(&self, first_row: usize, rows: usize) -> Result<Vec<f32>, HfError> {
        let mut out = Vec::with_capacity(rows * self.row_len());
        decode_to_f32(
            self.name,
            &self.dtype,
            self.row_bytes(first_row, rows)?,
            &mut out,
        )?;
        Ok(out)
    }

    /// The raw bytes of rows `first_row..first_row + rows`.
    pub fn row_bytes(&self, first_row: usize, rows: usize) -> Result<&[u8], HfError> {
        let end = first_row.saturating_add(rows);
        if end > self.rows() {
            return Err(HfError::RowsOutOfRange {
                tensor: self.name.to_owned(),
                first: first_row,
                end,
                rows: self.rows(),
            });
        }
        let row_bytes = self.data.len() / self.rows().max(1);
        Ok(&self.data[first_row * row_bytes..end * row_bytes])
    }
}

impl Checkpoint {
    /// Opens the weights of a model directory: `model.safetensors`, the shards named by
    /// `model.safetensors.index.json`, or the only `*.safetensors` file there is.
    pub fn open(dir: &Path) -> Result<Checkpoint, HfError> {
        let index = dir.join(MODEL_SAFETENSORS_INDEX_JSON);
        let files: Vec<PathBuf> = if index.exists() {
            let json = read_json(&index)?;
            let map = json
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| HfError::malformed(&index, "no \"weight_map\" object"))?;
            let mut files: Vec<String> = map
                .values()
                .map(|v| {
                    v.as_str().map(str::to_owned).ok_or_else(|| {
                        HfError::malformed(&index, "weight_map values must be file names")
                    })
                })
                .collect::<Result<_, _>>()?;
            files.sort();
            files.dedup();
            for file in &files {
                if file.contains('/') || file.contains('\\') || file.starts_with('.') {
                    return Err(HfError::malformed(
                        &index,
                        format!("shard name {file:?} is not a plain file name"),
                    ));
                }
            }
            files.into_iter().map(|f| dir.join(f)).collect()
        } else if dir.join(MODEL_SAFETENSORS).exists() {
            vec![dir.join(MODEL_SAFETENSORS)]
        } else {
            let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|source| HfError::io(dir, source))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
                .collect();
            found.sort();
            if found.len() != 1 {
                let hint = if dir.join("pytorch_model.bin").exists() {
                    ": only PyTorch pickles (pytorch_model.bin) were found; save the model with \
                     safe_serialization=True (pickles can run code and are not read)"
                        .to_owned()
                } else if found.len() > 1 {
                    format!(
                        ": {} safetensors files but no index to say which are weights",
                        found.len()
                    )
                } else {
                    String::new()
                };
                return Err(HfError::NoWeights {
                    dir: dir.to_owned(),
                    hint,
                });
            }
            found
        };
        Self::open_files(dir, &files)
    }

    /// Opens one safetensors file (an adapter's weights, say).
    pub fn open_file(path: &Path) -> Result<Checkpoint, HfError> {
        let dir = path.parent().unwrap_or(Path::new(".")).to_owned();
        Self::open_files(&dir, &[path.to_owned()])
    }

    fn open_files(dir: &Path, files: &[PathBuf]) -> Result<Checkpoint, HfError> {
        let mut shards = Vec::new();
        let mut entries = BTreeMap::new();
        for (index, path) in files.iter().enumerate() {
            let (shard, tensors) = open_shard(path)?;
            for (name, mut entry) in tensors {
                entry.shard = index;
                if entries.insert(name.clone(), entry).is_some() {
                    return Err(HfError::malformed(
                        path,
                        format!("tensor {name} appears in two shards"),
                    ));
                }
            }
            shards.push(shard);
        }
        Ok(Checkpoint {
            dir: dir.to_owned(),
            shards,
            entries,
        })
    }

    /// The directory the checkpoint was opened from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }

    /// Whether a tensor of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the checkpoint holds no tensors.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A tensor by name.
    pub fn tensor(&self, name: &str) -> Result<TensorRef<'_>, HfError> {
        let (key, entry) = self
            .entries
            .get_key_value(name)
            .ok_or_else(|| HfError::MissingTensor(name.to_owned()))?;
        let shard = &self.shards[entry.shard];
        let start = shard.data_start + entry.start;
        let end = shard.data_start + entry.end;
        Ok(TensorRef {
            name: key,
            dtype: entry.dtype.clone(),
            shape: entry.shape.clone(),
            data: &shard.map[start..end],
        })
    }

    /// The file that holds a tensor.
    pub fn shard_of(&self, name: &str) -> Option<&Path> {
        self.entries
            .get(name)
            .map(|e| self.shards[e.shard].path.as_path())
    }

    /// Every weights file, in index order.
    pub fn shard_files(&self) -> Vec<&Path> {
        self.shards.iter().map(|s| s.path.as_path()).collect()
    }

    /// The `__metadata__` of the first shard (e.g. `{"format": "pt"}`).
    pub fn metadata(&self) -> BTreeMap<String, String> {
        self.shards
            .first()
            .map(|s| s.metadata.clone())
            .unwrap_or_default()
    }

    /// Total bytes of tensor data.
    pub fn data_bytes(&self) -> u64 {
        self.entries
            .values()
            .map(|e| (e.end - e.start) as u64)
            .sum()
    }

    /// Drops a tensor's pages from this process's resident memory (they stay in the page
    /// cache and are read again if the tensor is used again). Streaming steps call it after
    /// each tensor so resident memory stays near one tensor instead of the whole file.
    pub fn release(&self, name: &str) {
        if let Some(entry) = self.entries.get(name) {
            self.release_bytes(entry, 0, entry.end - entry.start);
        }
    }

    /// Like [`release`](Self::release), for rows `first_row..first_row + rows` of a tensor
    /// only: a step working through one large tensor in row blocks keeps its resident memory
    /// near one block.
    pub fn release_rows(&self, name: &str, first_row: usize, rows: usize) {
        let Some(entry) = self.entries.get(name) else {
            return;
        };
        let total_rows = entry.shape.first().copied().unwrap_or(1).max(1);
        let row_bytes = (entry.end - entry.start) / total_rows;
        let start = first_row.min(total_rows) * row_bytes;
        let end = first_row.saturating_add(rows).min(total_rows) * row_bytes;
        self.release_bytes(entry, start, end);
    }

    fn release_bytes(&self, entry: &Entry, start: usize, end: usize) {
        let shard = &self.shards[entry.shard];
        let page = 4096;
        // Only whole pages inside the range: neighbours may still be in use.
        let start = (shard.data_start + entry.start + start).div_ceil(page) * page;
        let end = (shard.data_start + entry.start + end) / page * page;
        if end > start {
            // SAFETY: the mapping is read-only and file-backed; MADV_DONTNEED only discards
            // resident pages, which the kernel reads back from the file on the next access, so
            // every outstanding borrow of the mapping still sees the same bytes.
            let _ = unsafe {
                shard.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    start,
                    end - start,
                )
            };
        }
    }
}

fn open_shard(path: &Path) -> Result<(Shard, HashMap<String, Entry>), HfError> {
    let file = File::open(path).map_err(|source| HfError::io(path, source))?;
    // SAFETY: the mapping is read-only. As with every memory-mapped reader, a file truncated
    // by another process while mapped would fault; model files are not modified in place by
    // any of our tools (outputs are written under temporary names and renamed).
    let map = unsafe { Mmap::map(&file) }.map_err(|source| HfError::io(path, source))?;
    let file_len = map.len() as u64;
    if file_len < 8 {
        return Err(HfError::malformed(
            path,
            "shorter than the 8-byte header length",
        ));
    }
    let header_len = u64::from_le_bytes(map[..8].try_into().unwrap_or([0; 8]));
    if header_len > MAX_HEADER_BYTES || header_len > file_len - 8 {
        return Err(HfError::malformed(
            path,
            format!("header length {header_len} does not fit the {file_len}-byte file"),
        ));
    }
    let data_start = 8 + header_len as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&map[8..data_start])
            .map_err(|e| HfError::malformed(path, format!("header is not a JSON object: {e}")))?;
    let data_len = map.len() - data_start;
    let mut metadata = BTreeMap::new();
    let mut entries = HashMap::new();
    let mut ranges = Vec::new();
    for (name, value) in header {
        if name == "__metadata__" {
            if let Some(object) = value.as_object() {
                for (k, v) in object {
                    metadata.insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
                }
            }
            continue;
        }
        let entry = parse_entry(path, &name, &value, data_len)?;
        ranges.push((entry.start, entry.end, name.clone()));
        entries.insert(name, entry);
    }
    ranges.sort();
    for pair in ranges.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(HfError::malformed(
                path,
                format!("tensors {} and {} overlap", pair[0].2, pair[1].2),
            ));
        }
    }
    Ok((
        Shard {
            path: path.to_owned(),
            map,
            data_start,
            metadata,
        },
        entries,
    ))
}

fn parse_entry(
    path: &Path,
    name: &str,
    value: &serde_json::Value,
    data_len: usize,
) -> Result<Entry, HfError> {
    let bad = |reason: &str| HfError::malformed(path, format!("tensor {name}: {reason}"));
    let dtype = Dtype::parse(
        value
            .get("dtype")
            .and_then(|d| d.as_str())
            .ok_or_else(|| bad("no dtype"))?,
    );
    let shape: Vec<usize> = value
        .get("shape")
        .and_then(|s| s.as_array())
        .ok_or_else(|| bad("no shape"))?
        .iter()
        .map(|d| {
            d.as_u64()
                .map(|d| d as usize)
                .ok_or_else(|| bad("shape is not a list of sizes"))
        })
        .collect::<Result<_, _>>()?;
    let offsets = value
        .get("data_offsets")
        .and_then(|o| o.as_array())
        .filter(|o| o.len() == 2)
        .ok_or_else(|| bad("data_offsets must be [begin, end]"))?;
    let start = offsets[0].as_u64().ok_or_else(|| bad("bad begin offset"))? as usize;
    let end = offsets[1].as_u64().ok_or_else(|| bad("bad end offset"))? as usize;
    if start > end || end > data_len {
        return Err(bad(&format!(
            "bytes {start}..{end} are outside the {data_len} data bytes"
        )));
    }
    let elements = shape
        .iter()
        .try_fold(1usize, |acc, d| acc.checked_mul(*d))
        .ok_or_else(|| bad("shape overflows"))?;
    match dtype.size() {
        // Unknown dtypes can only be refused later, but their shape must still be sane: no
        // element type packs more than 8 per byte.
        None if elements / 8 > end - start => {
            return Err(bad(&format!(
                "shape {shape:?} cannot fit in {} bytes",
                end - start
            )))
        }
        None => {}
        Some(size) if elements.checked_mul(size) != Some(end - start) => {
            return Err(bad(&format!(
                "shape {shape:?} of {dtype} needs {} bytes but the offsets give {}",
                elements.saturating_mul(size),
                end - start
            )));
        }
        Some(_) => {}
    }
    Ok(Entry {
        shard: 0,
        dtype,
        shape,
        start,
        end,
    })
}
