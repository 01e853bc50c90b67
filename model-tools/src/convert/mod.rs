//! `model-tools convert`: a Hugging Face safetensors checkpoint → a GGUF file that llama.cpp
//! loads, with the metadata, tokenizer and tensor encodings llama.cpp's own converter
//! (`convert_hf_to_gguf.py`) writes.
//!
//! The model is streamed: tensors are read one at a time from the memory-mapped checkpoint,
//! transformed ([`Transform`]), encoded ([`encode`]) in parallel row chunks, written in
//! order behind a header computed up front, and their input pages released. The output is
//! written under a temporary name and renamed into place only when complete. What differs
//! between architectures comes from [`crate::arch`]; the checkpoint files from [`crate::hf`].

pub mod encode;
pub mod pretokenizer;
pub mod vocab;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use half::f16;
use vazhi_gguf::{GgmlType, GgufError, GgufWriter, Metadata, TensorInfo};

use crate::arch::tensors::is_ignored;
use crate::arch::{gemma3, llama, Arch, ArchError, Hparams, Role, TensorId, Transform};
use crate::hf::{self, decode_to_f32, Checkpoint, Dtype, HfError, TensorRef};
use encode::EncodeError;
use vocab::{Vocab, VocabError};

/// `general.quantization_version` (ggml's `GGML_QNT_VERSION`).
const QUANTIZATION_VERSION: u32 = 2;
/// Most elements decoded per work item (4 MiB of `f32`).
const CHUNK_ELEMENTS: usize = 1 << 20;
/// Fewest elements worth a work item of their own (smaller tensors are not split).
const MIN_CHUNK_ELEMENTS: usize = 1 << 16;
/// Most tensor names an error lists.
pub const MAX_LISTED_NAMES: usize = 20;
/// The magic bytes a GGUF file starts with.
const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// The encoding of the output's matrices (1-D tensors and norms are always F32).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutType {
    /// 32-bit floats.
    F32,
    /// IEEE half floats.
    F16,
    /// bfloat16.
    Bf16,
    /// 8-bit blocks of 32 with an F16 scale (F16 for rows not a multiple of 32).
    Q8_0,
}

impl OutType {
    /// The ggml type of a quantizable matrix.
    pub fn ggml_type(self) -> GgmlType {
        match self {
            OutType::F32 => GgmlType::F32,
            OutType::F16 => GgmlType::F16,
            OutType::Bf16 => GgmlType::BF16,
            OutType::Q8_0 => GgmlType::Q8_0,
        }
    }

    /// `general.file_type` (`LlamaFileType`): ALL_F32, MOSTLY_F16, MOSTLY_BF16, MOSTLY_Q8_0.
    pub fn file_type(self) -> u32 {
        match self {
            OutType::F32 => 0,
            OutType::F16 => 1,
            OutType::Bf16 => 32,
            OutType::Q8_0 => 7,
        }
    }

    /// The command-line name: `f32`, `f16`, `bf16`, `q8_0`.
    pub fn name(self) -> &'static str {
        match self {
            OutType::F32 => "f32",
            OutType::F16 => "f16",
            OutType::Bf16 => "bf16",
            OutType::Q8_0 => "q8_0",
        }
    }
}

impl fmt::Display for OutType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for OutType {
    type Err = ConvertError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(OutType::F32),
            "f16" => Ok(OutType::F16),
            "bf16" => Ok(OutType::Bf16),
            "q8_0" => Ok(OutType::Q8_0),
            _ => Err(ConvertError::UnknownOutType(s.to_owned())),
        }
    }
}

/// What to convert and how.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// The Hugging Face model directory (config.json, tokenizer files, safetensors).
    pub hf_dir: PathBuf,
    /// The GGUF file to write.
    pub out: PathBuf,
    /// Encoding of the matrices.
    pub out_type: OutType,
    /// Replace `out` if it exists.
    pub overwrite: bool,
    /// Worker threads for encoding; 0 = the available cores.
    pub threads: usize,
}

/// What [`convert`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConvertReport {
    /// `general.architecture`, e.g. `llama`.
    pub architecture: String,
    /// The Hugging Face architecture, e.g. `LlamaForCausalLM`.
    pub hf_architecture: String,
    /// The file written.
    pub out: PathBuf,
    /// The requested encoding.
    pub out_type: OutType,
    /// Tensors written.
    pub tensors: usize,
    /// Weights written (sum of element counts).
    pub parameters: u64,
    /// Checkpoint bytes read.
    pub input_bytes: u64,
    /// Size of the GGUF file.
    pub output_bytes: u64,
    /// Wall time of the whole conversion.
    pub seconds: f64,
    /// Checkpoint megabytes (10^6 bytes) converted per second.
    pub mb_per_s: f64,
    /// Tensors per ggml type, e.g. `{"f32": 61, "q8_0": 211}`.
    pub tensor_types: BTreeMap<String, usize>,
    /// `tokenizer.ggml.model` (`gpt2` or `llama`).
    pub tokenizer_model: String,
    /// `tokenizer.ggml.pre`.
    pub tokenizer_pre: String,
    /// Tokens in the vocabulary.
    pub vocab_tokens: usize,
}

impl fmt::Display for ConvertReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "converted {} ({}) → {} [{}]",
            self.hf_architecture,
            self.architecture,
            self.out.display(),
            self.out_type
        )?;
        writeln!(
            f,
            "  {} tensors, {} parameters; types: {}",
            self.tensors,
            self.parameters,
            self.tensor_types
                .iter()
                .map(|(t, n)| format!("{t} × {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        writeln!(
            f,
            "  tokenizer: {} (pre {}), {} tokens",
            self.tokenizer_model, self.tokenizer_pre, self.vocab_tokens
        )?;
        write!(
            f,
            "  {:.1} MB read, {:.1} MB written in {:.2} s ({:.0} MB/s)",
            self.input_bytes as f64 / 1e6,
            self.output_bytes as f64 / 1e6,
            self.seconds,
            self.mb_per_s
        )
    }
}

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The output exists and overwriting was not asked for.
    #[error("{0} already exists; pass --overwrite to replace it")]
    OutputExists(PathBuf),
    /// An unknown `--type`.
    #[error("unknown output type {0:?}; use f32, f16, bf16 or q8_0")]
    UnknownOutType(String),
    /// The model's architecture is not supported.
    #[error(
        "architecture {found:?} is not supported; supported: {}",
        Arch::supported_hf_list()
    )]
    UnsupportedArchitecture {
        /// What `config.json` names.
        found: String,
    },
    /// `config.json` is incomplete or inconsistent.
    #[error(transparent)]
    Config(ArchError),
    /// Reading the checkpoint failed.
    #[error(transparent)]
    Hf(#[from] HfError),
    /// The tokenizer could not be converted.
    #[error(transparent)]
    Vocab(#[from] VocabError),
    /// Writing the GGUF failed.
    #[error("writing {path}: {source}")]
    Gguf {
        /// The output file.
        path: PathBuf,
        /// The writer's error.
        source: GgufError,
    },
    /// File I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Checkpoint tensors this architecture has no place for (never silently dropped).
    #[error(
        "{} tensor(s) cannot be mapped to {arch} GGUF tensors: {}{}; the checkpoint is not a \
         plain {arch} model (adapters must be merged first)",
        names.len(), names.iter().take(20).cloned().collect::<Vec<_>>().join(", "),
        if names.len() > 20 { ", …" } else { "" }
    )]
    UnmappedTensors {
        /// The GGUF architecture.
        arch: String,
        /// Every unmapped checkpoint tensor.
        names: Vec<String>,
    },
    /// Tensors the architecture needs are absent.
    #[error(
        "{count} required tensor(s) are missing from the checkpoint: {}{}",
        names.join(", "),
        if *count > names.len() { ", …" } else { "" }
    )]
    MissingTensors {
        /// How many are missing.
        count: usize,
        /// The first missing checkpoint tensor names (at most [`MAX_LISTED_NAMES`]).
        names: Vec<String>,
    },
    /// `--out` names a file the conversion reads.
    #[error(
        "--out {out} is {input}, an input of the conversion; writing there would destroy the \
         checkpoint — choose an output outside the model's files"
    )]
    OutputIsInput {
        /// The requested output.
        out: PathBuf,
        /// The input it would replace.
        input: PathBuf,
    },
    /// A tensor's shape disagrees with config.json.
    #[error("tensor {tensor} has shape {found:?} but config.json implies {expected:?}")]
    ShapeMismatch {
        /// The checkpoint tensor.
        tensor: String,
        /// The shape config.json implies.
        expected: Vec<usize>,
        /// The stored shape.
        found: Vec<usize>,
    },
    /// A tensor is not F32/F16/BF16.
    #[error(
        "tensor {tensor} has dtype {dtype}; only F32, F16 and BF16 checkpoints are converted \
         (quantized or integer weights must be dequantized first)"
    )]
    UnsupportedDtype {
        /// The checkpoint tensor.
        tensor: String,
        /// Its dtype.
        dtype: String,
    },
    /// The vocabulary and the embedding disagree.
    #[error(
        "the tokenizer has {tokens} tokens but the embedding has {rows} rows; the tokenizer \
         files do not belong to this checkpoint"
    )]
    VocabMismatch {
        /// Tokens in the converted vocabulary.
        tokens: usize,
        /// Embedding rows.
        rows: usize,
    },
    /// A tensor could not be encoded.
    #[error("tensor {tensor}: {source}")]
    Encode {
        /// The GGUF tensor.
        tensor: String,
        /// The encoder's error.
        source: EncodeError,
    },
    /// An encoding worker thread panicked.
    #[error("an encoding thread failed while converting {0}")]
    Worker(String),
}

impl From<ArchError> for ConvertError {
    fn from(e: ArchError) -> Self {
        match e {
            ArchError::Unsupported { found } => ConvertError::UnsupportedArchitecture { found },
            other => ConvertError::Config(other),
        }
    }
}

/// Where a planned tensor's values come from.
#[derive(Debug, Clone)]
enum Source {
    /// A checkpoint tensor.
    Checkpoint { name: String, transform: Transform },
    /// Values computed by the converter (Llama 3's `rope_freqs`).
    Generated(Vec<f32>),
}

/// One output tensor.
#[derive(Debug, Clone)]
struct Planned {
    gguf_name: String,
    source: Source,
    /// Rows written (the first dimension, possibly truncated; 1 for 1-D tensors) and
    /// elements per row.
    rows: usize,
    row_len: usize,
    ggml_type: GgmlType,
    /// GGUF dims, innermost first.
    dims: Vec<u64>,
}

/// The ggml type of an output tensor: F32 for 1-D tensors, norms and non-weights, the
/// requested type otherwise, F16 where Q8_0 rows would not be whole blocks.
fn tensor_type(gguf_name: &str, n_dims: usize, row_len: usize, out: OutType) -> GgmlType {
    if out == OutType::F32
        || n_dims <= 1
        || gguf_name.ends_with("_norm.weight")
        || !gguf_name.ends_with(".weight")
    {
        return GgmlType::F32;
    }
    if out == OutType::Q8_0 && !row_len.is_multiple_of(encode::Q8_0_BLOCK) {
        tracing::warn!(
            tensor = gguf_name,
            row_len,
            "row length is not a multiple of 32; written as F16 instead of Q8_0"
        );
        return GgmlType::F16;
    }
    out.ggml_type()
}

/// The converter's size label, e.g. `135M`, `1.2B` (`model_weight_count_rounded_notation`).
fn size_label(params: u64) -> String {
    let p = params as f64;
    let (scaled, suffix) = if p > 1e12 {
        (p * 1e-12, "T")
    } else if p > 1e9 {
        (p * 1e-9, "B")
    } else if p > 1e6 {
        (p * 1e-6, "M")
    } else {
        (p * 1e-3, "K")
    };
    let digits = format!("{}", scaled.round_ties_even() as u64)
        .trim_start_matches('0')
        .len();
    let decimals = 2usize.saturating_sub(digits);
    format!("{scaled:.decimals$}{suffix}")
}

/// `general.name` from a directory name, title-cased like gguf-py's `Metadata.id_to_title`:
/// `-` becomes a space and all-lower-case words that are not versions or numbers are
/// title-cased (`smollm2-135m-instruct` → `Smollm2 135m Instruct`).
fn id_to_title(id: &str) -> String {
    let is_version_or_number = |w: &str| {
        w.starts_with(|c: char| c.is_ascii_digit())
            || w.strip_prefix('v').is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .split('.')
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            })
    };
    let is_lower =
        |w: &str| w.chars().any(char::is_lowercase) && !w.chars().any(char::is_uppercase);
    let title = |w: &str| {
        let mut out = String::with_capacity(w.len());
        let mut after_letter = false;
        for c in w.chars() {
            if after_letter {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            after_letter = c.is_alphabetic();
        }
        out
    };
    id.replace('-', " ")
        .split_whitespace()
        .map(|w| {
            if is_lower(w) && !is_version_or_number(w) {
                title(w)
            } else {
                w.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks every checkpoint tensor against the architecture and builds the output plan.
fn plan_tensors(
    hp: &Hparams,
    ckpt: &Checkpoint,
    n_tokens: usize,
    out: OutType,
) -> Result<Vec<Planned>, ConvertError> {
    let mut unmapped = Vec::new();
    let mut planned: Vec<(TensorId, Planned)> = Vec::new();
    for name in ckpt.names() {
        if is_ignored(name) {
            tracing::debug!(tensor = name, "skipped (not a weight)");
            continue;
        }
        let Some(mapped) = hp.map_hf_name(name) else {
            unmapped.push(name.to_owned());
            continue;
        };
        let t = ckpt.tensor(name)?;
        if !matches!(t.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            return Err(ConvertError::UnsupportedDtype {
                tensor: name.to_owned(),
                dtype: t.dtype.name().to_owned(),
            });
        }
        let expected = hp.hf_shape(&mapped);
        let gguf_name = mapped
            .gguf_name(hp.arch)
            .ok_or_else(|| ConvertError::UnmappedTensors {
                arch: hp.arch.gguf_name().to_owned(),
                names: vec![name.to_owned()],
            })?;
        if t.shape != expected {
            return Err(ConvertError::ShapeMismatch {
                tensor: name.to_owned(),
                expected,
                found: t.shape.clone(),
            });
        }
        let one_d = t.shape.len() <= 1;
        let mut rows = if one_d { 1 } else { t.shape[0] };
        let row_len: usize = if one_d {
            t.shape.iter().product()
        } else {
            t.shape.iter().skip(1).product()
        };
        let mut hf_shape = t.shape.clone();
        if matches!(mapped.role, Role::TokenEmbd | Role::Output) && !one_d {
            let trims = hp.arch.family().vocab_quirks().trims_embedding_rows;
            if rows < n_tokens || (rows > n_tokens && !trims) {
                return Err(ConvertError::VocabMismatch {
                    tokens: n_tokens,
                    rows,
                });
            }
            // Gemma 3's converter drops embedding rows past the vocabulary.
            rows = n_tokens;
            hf_shape[0] = rows;
        }
        let dims: Vec<u64> = hf_shape.iter().rev().map(|&d| d as u64).collect();
        let ggml_type = tensor_type(&gguf_name, hf_shape.len(), row_len, out);
        let transform = hp.transform(&mapped);
        planned.push((
            mapped,
            Planned {
                gguf_name,
                source: Source::Checkpoint {
                    name: name.to_owned(),
                    transform,
                },
                rows,
                row_len,
                ggml_type,
                dims,
            },
        ));
    }
    if !unmapped.is_empty() {
        return Err(ConvertError::UnmappedTensors {
            arch: hp.arch.gguf_name().to_owned(),
            names: unmapped,
        });
    }
    check_required_tensors(hp, ckpt)?;
    // token_embd, the layers in order, then the output; weights before biases.
    planned.sort_by_key(|(m, _)| {
        let group = match m.role {
            Role::TokenEmbd => 0,
            Role::OutputNorm | Role::Output => 2,
            _ => 1,
        };
        (group, m.layer, m.role, m.bias)
    });
    let mut out_plan: Vec<Planned> = Vec::with_capacity(planned.len() + 1);
    if let Some(freqs) = hp.rope_freqs() {
        out_plan.push(Planned {
            gguf_name: "rope_freqs.weight".to_owned(),
            dims: vec![freqs.len() as u64],
            rows: 1,
            row_len: freqs.len(),
            ggml_type: GgmlType::F32,
            source: Source::Generated(freqs),
        });
    }
    out_plan.extend(planned.into_iter().map(|(_, p)| p));
    Ok(out_plan)
}

/// Every tensor the architecture needs is in the checkpoint; otherwise how many are missing
/// and the first few names (the names are produced one at a time, never all held).
fn check_required_tensors(hp: &Hparams, ckpt: &Checkpoint) -> Result<(), ConvertError> {
    let mut count = 0usize;
    let mut names = Vec::new();
    for name in hp.required_hf_names().filter(|n| !ckpt.contains(n)) {
        count += 1;
        if names.len() < MAX_LISTED_NAMES {
            names.push(name);
        }
    }
    if count > 0 {
        return Err(ConvertError::MissingTensors { count, names });
    }
    Ok(())
}

/// Reads rows `first..first + count` of a checkpoint tensor (through the Llama permutation
/// when asked), applies the transform and encodes them.
fn encode_rows(
    t: &TensorRef<'_>,
    rows_total: usize,
    first: usize,
    count: usize,
    transform: Transform,
    ggml_type: GgmlType,
    gguf_name: &str,
) -> Result<Vec<u8>, ConvertError> {
    let mut values: Vec<f32> = Vec::new();
    if t.shape.len() <= 1 {
        decode_to_f32(t.name, &t.dtype, t.data, &mut values)?;
        if let Transform::PermuteRows { n_head } = transform {
            let n = values.len();
            values = (0..n)
                .map(|i| values[llama::permuted_source_row(i, n, n_head)])
                .collect();
        }
    } else {
        let row_bytes = t.data.len() / t.shape[0].max(1);
        match transform {
            Transform::PermuteRows { n_head } => {
                for row in first..first + count {
                    let src = llama::permuted_source_row(row, rows_total, n_head);
                    let row = &t.data[src * row_bytes..(src + 1) * row_bytes];
                    decode_to_f32(t.name, &t.dtype, row, &mut values)?;
                }
            }
            Transform::Identity | Transform::NormPlusOne => {
                let rows = &t.data[first * row_bytes..(first + count) * row_bytes];
                decode_to_f32(t.name, &t.dtype, rows, &mut values)?;
            }
        }
    }
    if transform == Transform::NormPlusOne {
        if t.dtype == Dtype::F16 {
            // PyTorch adds in the tensor's own precision.
            for v in &mut values {
                *v = f16::from_bits(encode::f32_to_f16_bits(*v + gemma3::NORM_SHIFT)).to_f32();
            }
        } else {
            for v in &mut values {
                *v += gemma3::NORM_SHIFT;
            }
        }
    }
    let mut out = Vec::new();
    encode::encode(&values, ggml_type, &mut out).map_err(|source| ConvertError::Encode {
        tensor: gguf_name.to_owned(),
        source,
    })?;
    Ok(out)
}

/// Streams one planned tensor into the writer, encoding row chunks on `threads` threads.
fn write_tensor<W: Write>(
    writer: &mut GgufWriter<W>,
    ckpt: &Checkpoint,
    plan: &Planned,
    threads: usize,
    out_path: &Path,
    mut on_bytes: impl FnMut(usize),
) -> Result<u64, ConvertError> {
    let gguf_err = |source| ConvertError::Gguf {
        path: out_path.to_owned(),
        source,
    };
    let (name, transform) = match &plan.source {
        Source::Generated(values) => {
            let mut out = Vec::new();
            encode::encode(values, plan.ggml_type, &mut out).map_err(|source| {
                ConvertError::Encode {
                    tensor: plan.gguf_name.clone(),
                    source,
                }
            })?;
            writer.write_tensor_data(&out).map_err(gguf_err)?;
            on_bytes(out.len());
            return Ok(0);
        }
        Source::Checkpoint {
            name, transform, ..
        } => (name, *transform),
    };
    let t = ckpt.tensor(name)?;
    // Split each tensor across the threads, in chunks of 64 Ki to 1 Mi values.
    let row_len = plan.row_len.max(1);
    let rows_per_chunk = plan
        .rows
        .div_ceil(threads.max(1))
        .max(MIN_CHUNK_ELEMENTS / row_len)
        .min(CHUNK_ELEMENTS / row_len)
        .max(1);
    let chunks: Vec<(usize, usize)> = (0..plan.rows)
        .step_by(rows_per_chunk)
        .map(|first| (first, rows_per_chunk.min(plan.rows - first)))
        .collect();
    let encode_chunk = |&(first, count): &(usize, usize)| {
        encode_rows(
            &t,
            plan.rows,
            first,
            count,
            transform,
            plan.ggml_type,
            &plan.gguf_name,
        )
    };
    for batch in chunks.chunks(threads.max(1)) {
        let outputs: Vec<Result<Vec<u8>, ConvertError>> = if batch.len() == 1 {
            batch.iter().map(encode_chunk).collect()
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = batch
                    .iter()
                    .map(|chunk| scope.spawn(move || encode_chunk(chunk)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(ConvertError::Worker(plan.gguf_name.clone())))
                    })
                    .collect()
            })
        };
        for bytes in outputs {
            let bytes = bytes?;
            writer.write_tensor_chunk(&bytes).map_err(gguf_err)?;
            on_bytes(bytes.len());
        }
        // Rows are read in order unless permuted: drop each block's pages once encoded, so
        // resident memory stays near one block even for a 671 MB embedding.
        let in_order = !matches!(transform, Transform::PermuteRows { .. });
        if let (true, Some(&(first, _)), Some(&(last, count))) =
            (in_order, batch.first(), batch.last())
        {
            ckpt.release_rows(name, first, last + count - first);
        }
    }
    ckpt.release(name);
    Ok(t.data.len() as u64)
}

/// Removes the temporary output unless the conversion committed it.
struct TempOutput {
    path: PathBuf,
    committed: bool,
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The `tokenizer.*` metadata for an architecture, in its converter's order.
fn write_vocab_metadata(
    hp: &Hparams,
    vocab: &Vocab,
    tokenizer_config: Option<&serde_json::Value>,
    md: &mut Metadata,
) {
    let quirks = hp.arch.family().vocab_quirks();
    if quirks.space_prefix_from_tokenizer_config {
        // LlamaModel.set_vocab writes tokenizer_config's add_prefix_space first.
        let prefix = tokenizer_config
            .and_then(|c| c.get("add_prefix_space"))
            .and_then(serde_json::Value::as_bool);
        if let Some(p) = prefix {
            md.insert("tokenizer.ggml.add_space_prefix", p);
        }
    }
    vocab.write_metadata(md);
    match vocab.add_dummy_prefix {
        // Gemma's converter always turns the SentencePiece space prefix off.
        Some(_) if quirks.no_space_prefix => {
            md.insert("tokenizer.ggml.add_space_prefix", false);
        }
        // Elsewhere the SentencePiece model's own setting is written when nothing said
        // otherwise (llama.cpp assumes a prefix space for SentencePiece vocabularies).
        Some(prefix) if !md.contains_key("tokenizer.ggml.add_space_prefix") => {
            md.insert("tokenizer.ggml.add_space_prefix", prefix);
        }
        _ => {}
    }
}

/// Refuses an existing `out` that the conversion reads: a checkpoint shard, or any file of the
/// model directory other than an earlier GGUF output (config, tokenizer and index files are
/// inputs; replacing them would destroy the checkpoint the GGUF came from).
fn check_out_is_not_an_input(
    out: &Path,
    dir: &Path,
    ckpt: &Checkpoint,
) -> Result<(), ConvertError> {
    let Ok(out_path) = out.canonicalize() else {
        return Ok(()); // does not exist yet, so it cannot be an input
    };
    let refuse = |input: &Path| ConvertError::OutputIsInput {
        out: out.to_owned(),
        input: input.to_owned(),
    };
    for shard in ckpt.shard_files() {
        if shard.canonicalize().is_ok_and(|p| p == out_path) {
            return Err(refuse(shard));
        }
    }
    let in_model_dir = dir.canonicalize().is_ok_and(|d| out_path.starts_with(d));
    if in_model_dir && (out_path.is_dir() || !starts_with_gguf_magic(&out_path)) {
        return Err(refuse(&out_path));
    }
    Ok(())
}

/// Whether the file at `path` begins with the GGUF magic (a previous conversion's output).
fn starts_with_gguf_magic(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok_and(|()| &magic == GGUF_MAGIC)
}

/// Checks `model.embed_tokens.weight` against config.json's `vocab_size` and `hidden_size`
/// (the vocabulary is padded to `vocab_size` ids, so that must be the embedding's row count);
/// without an embedding, reports every missing tensor.
fn check_embedding_rows(hp: &Hparams, ckpt: &Checkpoint) -> Result<(), ConvertError> {
    const EMBEDDING: &str = "model.embed_tokens.weight";
    if !ckpt.contains(EMBEDDING) {
        return check_required_tensors(hp, ckpt);
    }
    let found = ckpt.tensor(EMBEDDING)?.shape;
    let expected = vec![hp.vocab_size, hp.n_embd];
    if found != expected {
        return Err(ConvertError::ShapeMismatch {
            tensor: EMBEDDING.to_owned(),
            expected,
            found,
        });
    }
    Ok(())
}

/// Converts `opts.hf_dir` to a GGUF file at `opts.out`. `progress(done, total)` is called with
/// the bytes of tensor data written so far and in all.
pub fn convert(
    opts: &ConvertOptions,
    progress: &dyn Fn(usize, usize),
) -> Result<ConvertReport, ConvertError> {
    let _span = tracing::info_span!("convert", out_type = opts.out_type.name()).entered();
    let started = Instant::now();
    if opts.out.exists() && !opts.overwrite {
        return Err(ConvertError::OutputExists(opts.out.clone()));
    }
    let dir = &opts.hf_dir;
    let config = hf::read_json(&dir.join(hf::CONFIG_JSON))?;
    let hp = Hparams::from_hf_config(&config)?;
    let ckpt = Checkpoint::open(dir)?;
    check_out_is_not_an_input(&opts.out, dir, &ckpt)?;
    // The embedding must agree with vocab_size before vocab_size sizes the token tables.
    check_embedding_rows(&hp, &ckpt)?;

    let mut vocab = {
        let _s = tracing::info_span!("vocab").entered();
        vocab::load(dir, Some(hp.vocab_size))?
    };
    if hp.arch.family().vocab_quirks().no_bos_for_vocab_size == Some(hp.vocab_size) {
        // LlamaModel.set_vocab: "granite small models" (and SmolLM) add no BOS.
        vocab.special.set_add("bos", false);
    }
    let plan = {
        let _s = tracing::info_span!("plan").entered();
        plan_tensors(&hp, &ckpt, vocab.tokens.len(), opts.out_type)?
    };

    let parameters: u64 = plan.iter().map(|p| p.dims.iter().product::<u64>()).sum();
    let mut md = Metadata::new();
    md.insert("general.architecture", hp.arch.gguf_name());
    md.insert("general.type", "model");
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| id_to_title(&n.to_string_lossy())))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "Model".to_owned());
    md.insert("general.name", name);
    md.insert("general.size_label", size_label(parameters));
    hp.write_gguf(&mut md, opts.out_type.file_type());
    md.insert("general.quantization_version", QUANTIZATION_VERSION);
    let tokenizer_config = hf::read_json_if_exists(&dir.join(hf::TOKENIZER_CONFIG_JSON))?;
    write_vocab_metadata(&hp, &vocab, tokenizer_config.as_ref(), &mut md);

    let infos: Vec<TensorInfo> = plan
        .iter()
        .map(|p| TensorInfo::new(p.gguf_name.clone(), p.dims.clone(), p.ggml_type))
        .collect();
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.threads
    };

    let mut temp = TempOutput {
        path: hf::temp_sibling(&opts.out),
        committed: false,
    };
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source: std::io::Error| ConvertError::Io { path, source }
    };
    let file = File::create(&temp.path).map_err(io_err(&opts.out))?;
    let gguf_err = |source| ConvertError::Gguf {
        path: opts.out.clone(),
        source,
    };
    let mut writer =
        GgufWriter::new(BufWriter::with_capacity(8 << 20, file), &md, &infos).map_err(gguf_err)?;
    let total_data: usize = writer
        .tensors()
        .iter()
        .map(|t| t.byte_size() as usize)
        .sum();
    let mut input_bytes = 0u64;
    let mut done = 0usize;
    {
        let _s = tracing::info_span!("tensors", count = plan.len(), threads).entered();
        for p in &plan {
            let _t =
                tracing::debug_span!("tensor", name = %p.gguf_name, ty = %p.ggml_type).entered();
            input_bytes += write_tensor(&mut writer, &ckpt, p, threads, &opts.out, |n| {
                done += n;
                progress(done, total_data);
            })?;
        }
    }
    let buffered = writer.finish().map_err(gguf_err)?;
    let file = buffered
        .into_inner()
        .map_err(|e| io_err(&opts.out)(e.into_error()))?;
    file.sync_all().map_err(io_err(&opts.out))?;
    let output_bytes = file.metadata().map_err(io_err(&opts.out))?.len();
    drop(file);
    std::fs::rename(&temp.path, &opts.out).map_err(io_err(&opts.out))?;
    temp.committed = true;
    hf::sync_dir(&opts.out)?;

    let mut tensor_types = BTreeMap::new();
    for p in &plan {
        *tensor_types
            .entry(p.ggml_type.name().to_owned())
            .or_insert(0) += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(ConvertReport {
        architecture: hp.arch.gguf_name().to_owned(),
        hf_architecture: hp.arch.hf_class().to_owned(),
        out: opts.out.clone(),
        out_type: opts.out_type,
        tensors: plan.len(),
        parameters,
        input_bytes,
        output_bytes,
        seconds,
        mb_per_s: if seconds > 0.0 {
            input_bytes as f64 / 1e6 / seconds
        } else {
            0.0
        },
        tensor_types,
        tokenizer_model: vocab.model.to_owned(),
        tokenizer_pre: vocab.pre.clone(),
        vocab_tokens: vocab.tokens.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::pretokenizer::tests::byte_level_tokenizer_json;
    use super::*;
    use crate::hf::sentencepiece::tests::tiny_model as tiny_spm_model;
    use crate::hf::{encode_f32, PlannedTensor, SafetensorsWriter};
    use serde_json::json;
    use vazhi_gguf::{GgufFile, Limits};

    /// A tiny checkpoint: tensors named and shaped by `tensors`, random values.
    struct TinyModel {
        dir: tempfile::TempDir,
        values: BTreeMap<String, Vec<f32>>,
    }

    fn write_json(dir: &Path, name: &str, value: &serde_json::Value) {
        std::fs::write(dir.join(name), value.to_string()).expect("write json");
    }

    fn shapes(
        config: &serde_json::Value,
        biases: bool,
        lm_head: bool,
    ) -> Vec<(String, Vec<usize>)> {
        let n = |k: &str| config[k].as_u64().expect(k) as usize;
        let (h, f, layers, vocab) = (
            n("hidden_size"),
            n("intermediate_size"),
            n("num_hidden_layers"),
            n("vocab_size"),
        );
        let hd = config["head_dim"]
            .as_u64()
            .map_or(h / n("num_attention_heads"), |d| d as usize);
        let q = n("num_attention_heads") * hd;
        let kv = n("num_key_value_heads") * hd;
        let arch = config["architectures"][0].as_str().expect("arch");
        let mut out = vec![
            ("model.embed_tokens.weight".to_owned(), vec![vocab, h]),
            ("model.norm.weight".to_owned(), vec![h]),
        ];
        if lm_head {
            out.push(("lm_head.weight".to_owned(), vec![vocab, h]));
        }
        for i in 0..layers {
            let p = |s: &str| format!("model.layers.{i}.{s}");
            out.extend([
                (p("input_layernorm.weight"), vec![h]),
                (p("self_attn.q_proj.weight"), vec![q, h]),
                (p("self_attn.k_proj.weight"), vec![kv, h]),
                (p("self_attn.v_proj.weight"), vec![kv, h]),
                (p("self_attn.o_proj.weight"), vec![h, q]),
                (p("post_attention_layernorm.weight"), vec![h]),
                (p("mlp.gate_proj.weight"), vec![f, h]),
                (p("mlp.up_proj.weight"), vec![f, h]),
                (p("mlp.down_proj.weight"), vec![h, f]),
                (p("self_attn.rotary_emb.inv_freq"), vec![hd / 2]),
            ]);
            if biases {
                out.extend([
                    (p("self_attn.q_proj.bias"), vec![q]),
                    (p("self_attn.k_proj.bias"), vec![kv]),
                    (p("self_attn.v_proj.bias"), vec![kv]),
                ]);
            }
            if arch == "Qwen3ForCausalLM" || arch == "Gemma3ForCausalLM" {
                out.extend([
                    (p("self_attn.q_norm.weight"), vec![hd]),
                    (p("self_attn.k_norm.weight"), vec![hd]),
                ]);
            }
            if arch == "Gemma3ForCausalLM" {
                out.extend([
                    (p("pre_feedforward_layernorm.weight"), vec![h]),
                    (p("post_feedforward_layernorm.weight"), vec![h]),
                ]);
            }
        }
        out
    }

    /// Writes config.json, the tensors (BF16 matrices, F32 vectors; `dtype` overrides) and
    /// returns the values as the converter will read them.
    fn tiny_model(
        config: serde_json::Value,
        tensors: &[(String, Vec<usize>)],
        dtype: Option<Dtype>,
    ) -> TinyModel {
        let dir = tempfile::tempdir().expect("tempdir");
        write_json(dir.path(), "config.json", &config);
        let mut rng = fastrand::Rng::with_seed(7);
        let plan: Vec<PlannedTensor> = tensors
            .iter()
            .map(|(name, shape)| PlannedTensor {
                name: name.clone(),
                dtype: dtype.clone().unwrap_or(if shape.len() == 1 {
                    Dtype::F32
                } else {
                    Dtype::BF16
                }),
                shape: shape.clone(),
            })
            .collect();
        let path = dir.path().join("model.safetensors");
        let mut writer = SafetensorsWriter::create(&path, &plan, &BTreeMap::new()).expect("create");
        let mut values = BTreeMap::new();
        for t in &plan {
            let n: usize = t.shape.iter().product();
            let v: Vec<f32> = (0..n).map(|_| rng.f32() * 2.0 - 1.0).collect();
            let bytes = encode_f32(&v, &t.dtype).expect("encode");
            writer.write(&bytes).expect("write");
            let mut back = Vec::new();
            hf::decode_to_f32(&t.name, &t.dtype, &bytes, &mut back).expect("decode");
            values.insert(t.name.clone(), back);
        }
        writer.finish().expect("finish");
        TinyModel { dir, values }
    }

    fn bpe_tokenizer(dir: &Path) {
        let pre = json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
        ]});
        let tok = byte_level_tokenizer_json(pre, &[("<|endoftext|>", true), ("<|im_end|>", true)]);
        write_json(dir, "tokenizer.json", &tok);
        write_json(
            dir,
            "tokenizer_config.json",
            &json!({"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>",
                    "add_prefix_space": false, "clean_up_tokenization_spaces": false,
                    "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"}),
        );
    }

    fn run(dir: &Path, out_type: OutType) -> (ConvertReport, GgufFile, Vec<u8>) {
        let out = dir.join(format!("model-{out_type}.gguf"));
        let calls = std::cell::Cell::new(0usize);
        let last = std::cell::Cell::new((0usize, 0usize));
        let report = convert(
            &ConvertOptions {
                hf_dir: dir.to_owned(),
                out: out.clone(),
                out_type,
                overwrite: false,
                threads: 3,
            },
            &|done, total| {
                calls.set(calls.get() + 1);
                last.set((done, total));
            },
        )
        .expect("convert");
        assert!(calls.get() > 0);
        assert_eq!(last.get().0, last.get().1, "progress reaches the total");
        let file = vazhi_gguf::read_file(&out, &Limits::default()).expect("read back");
        let bytes = std::fs::read(&out).expect("bytes");
        assert_eq!(report.output_bytes, bytes.len() as u64);
        (report, file, bytes)
    }

    fn tensor_f32(file: &GgufFile, bytes: &[u8], name: &str) -> Vec<f32> {
        let t = file
            .tensor(name)
            .unwrap_or_else(|| panic!("{name} written"));
        let r = file.tensor_data_range(t);
        let data = &bytes[r.start as usize..r.end as usize];
        match t.ggml_type {
            GgmlType::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            GgmlType::F16 => data
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            GgmlType::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            GgmlType::Q8_0 => data
                .chunks_exact(34)
                .flat_map(|b| {
                    let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
                    b[2..].iter().map(move |&q| f32::from(q as i8) * d)
                })
                .collect(),
            other => panic!("unexpected type {other}"),
        }
    }

    fn llama_config() -> serde_json::Value {
        json!({"architectures": ["LlamaForCausalLM"], "hidden_size": 64,
               "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "vocab_size": 264, "max_position_embeddings": 512,
               "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "tie_word_embeddings": true})
    }

    #[test]
    fn llama_bpe_converts_in_every_type() {
        let config = llama_config();
        let model = tiny_model(config.clone(), &shapes(&config, false, false), None);
        bpe_tokenizer(model.dir.path());
        for out_type in [OutType::F32, OutType::F16, OutType::Bf16, OutType::Q8_0] {
            let (report, file, bytes) = run(model.dir.path(), out_type);
            assert_eq!(report.architecture, "llama");
            // 2 globals + 9 per layer; the rotary buffers are skipped.
            assert_eq!(report.tensors, 2 + 2 * 9);
            assert_eq!(file.tensors.len(), report.tensors);
            let md = &file.metadata;
            assert_eq!(md.get_str("general.architecture"), Some("llama"));
            assert_eq!(md.get_u32("general.file_type"), Some(out_type.file_type()));
            assert_eq!(md.get_u32("general.quantization_version"), Some(2));
            assert_eq!(md.get_u32("llama.block_count"), Some(2));
            assert_eq!(md.get_u32("llama.rope.dimension_count"), Some(16));
            assert_eq!(md.get_u32("llama.vocab_size"), Some(264));
            assert_eq!(md.get_str("tokenizer.ggml.model"), Some("gpt2"));
            assert_eq!(md.get_str("tokenizer.ggml.pre"), Some("smollm"));
            assert_eq!(md.get_string_array_len("tokenizer.ggml.tokens"), Some(264));
            assert_eq!(md.get_u32("tokenizer.ggml.bos_token_id"), Some(260));
            assert_eq!(md.get_u32("tokenizer.ggml.eos_token_id"), Some(261));
            assert_eq!(md.get_bool("tokenizer.ggml.add_space_prefix"), Some(false));
            assert!(md.get_str("tokenizer.chat_template").is_some());

            let embd = file.tensor("token_embd.weight").expect("embd");
            assert_eq!(embd.dims, [64, 264]);
            let norm = file.tensor("blk.1.attn_norm.weight").expect("norm");
            assert_eq!(
                (norm.dims.as_slice(), norm.ggml_type),
                (&[64u64][..], GgmlType::F32)
            );
            let down = file.tensor("blk.0.ffn_down.weight").expect("down");
            assert_eq!(down.dims, [96, 64]);
            // Rows of 96 are three Q8_0 blocks; every matrix gets the requested type.
            assert_eq!(down.ggml_type, out_type.ggml_type());
            assert!(file.tensor("output.weight").is_none(), "tied embeddings");

            // Q is permuted per head (4 heads of 16 rows), K per KV head (2 heads).
            let src = &model.values["model.layers.0.self_attn.q_proj.weight"];
            let got = tensor_f32(&file, &bytes, "blk.0.attn_q.weight");
            let tol = match out_type {
                OutType::F32 | OutType::F16 | OutType::Bf16 => 0.0, // BF16 source fits all
                OutType::Q8_0 => 1.0 / 127.0 + 1e-3,
            };
            for row in 0..64 {
                let head = row / 16;
                let within = row % 16;
                let src_row = head * 16 + (within % 2) * 8 + within / 2;
                for c in 0..64 {
                    let (a, b) = (got[row * 64 + c], src[src_row * 64 + c]);
                    assert!((a - b).abs() <= tol, "{out_type} q[{row},{c}] {a} vs {b}");
                }
            }
            let k_src = &model.values["model.layers.1.self_attn.k_proj.weight"];
            let k = tensor_f32(&file, &bytes, "blk.1.attn_k.weight");
            assert_eq!(k.len(), 32 * 64);
            for row in 0..32 {
                let src_row = (row / 16) * 16 + (row % 16 % 2) * 8 + row % 16 / 2;
                assert!(
                    (k[row * 64] - k_src[src_row * 64]).abs() <= tol,
                    "{out_type} k row {row}"
                );
            }
            // V is not permuted; norms are exact F32.
            let v = tensor_f32(&file, &bytes, "blk.0.attn_v.weight");
            let v_src = &model.values["model.layers.0.self_attn.v_proj.weight"];
            assert!(v.iter().zip(v_src).all(|(a, b)| (a - b).abs() <= tol));
            let n = tensor_f32(&file, &bytes, "output_norm.weight");
            assert_eq!(&n, &model.values["model.norm.weight"]);
        }
        // The output exists now: refused without overwrite.
        let err = convert(
            &ConvertOptions {
                hf_dir: model.dir.path().to_owned(),
                out: model.dir.path().join("model-f16.gguf"),
                out_type: OutType::F16,
                overwrite: false,
                threads: 1,
            },
            &|_, _| {},
        )
        .expect_err("exists");
        assert!(matches!(err, ConvertError::OutputExists(_)), "{err}");
    }

    #[test]
    fn q8_0_bytes_are_ggml_reference_and_odd_rows_fall_back_to_f16() {
        let mut config = llama_config();
        config["intermediate_size"] = json!(72); // ffn_down rows of 72: not whole blocks
        let model = tiny_model(
            config.clone(),
            &shapes(&config, false, true),
            Some(Dtype::F32),
        );
        bpe_tokenizer(model.dir.path());
        let (report, file, bytes) = run(model.dir.path(), OutType::Q8_0);
        let down = file.tensor("blk.0.ffn_down.weight").expect("down");
        assert_eq!(down.ggml_type, GgmlType::F16);
        assert_eq!(report.tensor_types.get("f16"), Some(&2));
        let out = file.tensor("output.weight").expect("lm_head kept");
        assert_eq!(out.ggml_type, GgmlType::Q8_0);
        // The first block of token_embd, quantized independently here.
        let src = &model.values["model.embed_tokens.weight"][..32];
        let amax = src.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let embd = file.tensor("token_embd.weight").expect("embd");
        let r = file.tensor_data_range(embd);
        let block = &bytes[r.start as usize..r.start as usize + 34];
        assert_eq!(
            u16::from_le_bytes([block[0], block[1]]),
            f16::from_f32(d).to_bits()
        );
        for (j, &x) in src.iter().enumerate() {
            assert_eq!(block[2 + j] as i8, (x * (1.0 / d)).round() as i8, "q[{j}]");
        }
        // F16 fallback values are the round-to-nearest halves of the source.
        let f = tensor_f32(&file, &bytes, "blk.1.ffn_down.weight");
        let s = &model.values["model.layers.1.mlp.down_proj.weight"];
        assert!(f
            .iter()
            .zip(s)
            .all(|(a, b)| *a == f16::from_f32(*b).to_f32()));
    }

    #[test]
    fn qwen2_biases_and_vocab_padding() {
        let config = json!({"architectures": ["Qwen2ForCausalLM"], "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "vocab_size": 300, "max_position_embeddings": 1024,
            "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": false});
        let model = tiny_model(config.clone(), &shapes(&config, true, true), None);
        bpe_tokenizer(model.dir.path());
        let (report, file, bytes) = run(model.dir.path(), OutType::F16);
        assert_eq!(report.architecture, "qwen2");
        assert_eq!(report.vocab_tokens, 300);
        let md = &file.metadata;
        assert_eq!(md.get_string_array_len("tokenizer.ggml.tokens"), Some(300));
        let types = md.get_array("tokenizer.ggml.token_type").expect("types");
        assert_eq!(types.get(299).and_then(|v| v.as_i64()), Some(5)); // padding: unused
        assert_eq!(md.get_f32("qwen2.rope.freq_base"), Some(1_000_000.0));
        assert!(!md.contains_key("qwen2.rope.dimension_count"));
        let bias = file.tensor("blk.1.attn_q.bias").expect("q bias");
        assert_eq!(
            (bias.dims.as_slice(), bias.ggml_type),
            (&[64u64][..], GgmlType::F32)
        );
        // Qwen2 is not permuted: the bias is copied as is.
        let b = tensor_f32(&file, &bytes, "blk.1.attn_q.bias");
        assert_eq!(&b, &model.values["model.layers.1.self_attn.q_proj.bias"]);
        assert_eq!(
            file.tensor("output.weight").expect("lm head").dims,
            [64, 300]
        );
    }

    #[test]
    fn qwen3_head_dim_and_qk_norms() {
        let config = json!({"architectures": ["Qwen3ForCausalLM"], "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
            "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 262,
            "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0});
        let model = tiny_model(config.clone(), &shapes(&config, false, false), None);
        bpe_tokenizer(model.dir.path());
        let (_, file, _) = run(model.dir.path(), OutType::Bf16);
        assert_eq!(
            file.metadata.get_u32("qwen3.attention.key_length"),
            Some(32)
        );
        assert_eq!(
            file.tensor("blk.0.attn_q.weight").expect("q").dims,
            [64, 128]
        );
        assert_eq!(
            file.tensor("blk.0.attn_k_norm.weight")
                .expect("k norm")
                .dims,
            [32]
        );
        assert_eq!(
            file.tensor("blk.0.attn_q.weight").expect("q").ggml_type,
            GgmlType::BF16
        );
    }

    #[test]
    fn gemma3_sentencepiece_norm_shift_and_metadata() {
        let config = json!({"architectures": ["Gemma3ForCausalLM"], "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 1, "head_dim": 32, "vocab_size": 8,
            "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            "rope_local_base_freq": 10000.0, "sliding_window": 512,
            "layer_types": ["sliding_attention", "full_attention"]});
        let model = tiny_model(config.clone(), &shapes(&config, false, false), None);
        let dir = model.dir.path();
        // 6 pieces; config vocab_size 8 pads two.
        std::fs::write(dir.join("tokenizer.model"), tiny_spm_model()).expect("spm");
        write_json(
            dir,
            "tokenizer_config.json",
            &json!({"bos_token": "<bos>", "add_bos_token": true, "add_eos_token": false,
                    "added_tokens_decoder": {"0": {"content": "<pad>", "special": true}}}),
        );
        write_json(dir, "config.json", &{
            let mut c = config.clone();
            c["bos_token_id"] = json!(2);
            c["eos_token_id"] = json!(1);
            c
        });
        let (report, file, bytes) = run(dir, OutType::F32);
        assert_eq!(report.architecture, "gemma3");
        let md = &file.metadata;
        assert_eq!(md.get_str("tokenizer.ggml.model"), Some("llama"));
        assert_eq!(md.get_str("tokenizer.ggml.pre"), Some("default"));
        assert_eq!(md.get_string_array_len("tokenizer.ggml.tokens"), Some(8));
        assert_eq!(
            md.get_array("tokenizer.ggml.scores").map(|a| a.len()),
            Some(8)
        );
        assert_eq!(md.get_bool("tokenizer.ggml.add_space_prefix"), Some(false));
        assert_eq!(md.get_bool("tokenizer.ggml.add_bos_token"), Some(true));
        assert_eq!(md.get_u32("tokenizer.ggml.bos_token_id"), Some(2));
        assert_eq!(md.get_u32("gemma3.attention.sliding_window"), Some(512));
        assert_eq!(md.get_f32("gemma3.rope.freq_base_swa"), Some(10_000.0));
        assert_eq!(md.get_u32("gemma3.attention.key_length"), Some(32));
        // Two layers, the second global: not llama.cpp's default pattern, so it is written.
        let pattern = md
            .get_array("gemma3.attention.sliding_window_pattern")
            .expect("pattern");
        assert_eq!(pattern.len(), 2);
        for name in [
            "blk.0.attn_norm.weight",
            "blk.0.post_attention_norm.weight",
            "blk.0.ffn_norm.weight",
            "blk.1.post_ffw_norm.weight",
            "blk.1.attn_q_norm.weight",
            "output_norm.weight",
        ] {
            assert!(file.tensor(name).is_some(), "{name}");
        }
        // Every RMSNorm weight is shifted by one; projections are not.
        let shifted = tensor_f32(&file, &bytes, "blk.0.post_attention_norm.weight");
        let src = &model.values["model.layers.0.post_attention_layernorm.weight"];
        assert!(shifted.iter().zip(src).all(|(a, b)| *a == b + 1.0));
        let k_norm = tensor_f32(&file, &bytes, "blk.1.attn_k_norm.weight");
        let src = &model.values["model.layers.1.self_attn.k_norm.weight"];
        assert!(k_norm.iter().zip(src).all(|(a, b)| *a == b + 1.0));
        let up = tensor_f32(&file, &bytes, "blk.0.ffn_up.weight");
        assert_eq!(&up, &model.values["model.layers.0.mlp.up_proj.weight"]);
    }

    #[test]
    fn bad_checkpoints_are_refused_with_reasons() {
        let config = llama_config();
        // An extra adapter tensor.
        let mut tensors = shapes(&config, false, false);
        tensors.push((
            "model.layers.0.self_attn.q_proj.lora_A.weight".to_owned(),
            vec![8, 64],
        ));
        let model = tiny_model(config.clone(), &tensors, None);
        bpe_tokenizer(model.dir.path());
        let opts = ConvertOptions {
            hf_dir: model.dir.path().to_owned(),
            out: model.dir.path().join("out.gguf"),
            out_type: OutType::F16,
            overwrite: true,
            threads: 2,
        };
        let err = convert(&opts, &|_, _| {}).expect_err("unmapped");
        assert!(err.to_string().contains("q_proj.lora_A.weight"), "{err}");

        // A wrong shape.
        let mut tensors = shapes(&config, false, false);
        tensors[2].1 = vec![64, 60];
        let model = tiny_model(config.clone(), &tensors, None);
        bpe_tokenizer(model.dir.path());
        let opts = ConvertOptions {
            hf_dir: model.dir.path().to_owned(),
            out: model.dir.path().join("out.gguf"),
            ..opts
        };
        let err = convert(&opts, &|_, _| {}).expect_err("shape");
        assert!(matches!(err, ConvertError::ShapeMismatch { .. }), "{err}");
        assert!(err.to_string().contains("[64, 60]"), "{err}");

        // A missing layer tensor.
        let tensors: Vec<_> = shapes(&config, false, false)
            .into_iter()
            .filter(|(n, _)| n != "model.layers.1.mlp.up_proj.weight")
            .collect();
        let model = tiny_model(config.clone(), &tensors, None);
        bpe_tokenizer(model.dir.path());
        let opts = ConvertOptions {
            hf_dir: model.dir.path().to_owned(),
            out: model.dir.path().join("out.gguf"),
            ..opts
        };
        let err = convert(&opts, &|_, _| {}).expect_err("missing");
        assert!(
            err.to_string()
                .contains("model.layers.1.mlp.up_proj.weight"),
            "{err}"
        );

        // An unsupported architecture names the supported ones.
        let mut other = config.clone();
        other["architectures"] = json!(["PhiForCausalLM"]);
        write_json(model.dir.path(), "config.json", &other);
        let err = convert(&opts, &|_, _| {}).expect_err("arch");
        assert!(matches!(err, ConvertError::UnsupportedArchitecture { .. }));
        assert!(err.to_string().contains("Qwen3ForCausalLM"), "{err}");

        // Nothing but the inputs is left behind by the failures.
        let leftovers: Vec<_> = std::fs::read_dir(model.dir.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("gguf"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn crafted_configs_are_refused_before_the_vocabulary_is_sized() {
        let config = llama_config();
        let model = tiny_model(config.clone(), &shapes(&config, false, false), None);
        bpe_tokenizer(model.dir.path());
        let opts = ConvertOptions {
            hf_dir: model.dir.path().to_owned(),
            out: model.dir.path().join("out.gguf"),
            out_type: OutType::F32,
            overwrite: false,
            threads: 1,
        };
        // Used to overflow a Vec capacity (panic) or abort allocating 10^12 token names.
        for vocab_size in [
            json!(9_223_372_036_854_775_807u64),
            json!(1_000_000_000_000u64),
        ] {
            let mut c = config.clone();
            c["vocab_size"] = vocab_size;
            write_json(model.dir.path(), "config.json", &c);
            let err = convert(&opts, &|_, _| {}).expect_err("huge vocab_size");
            assert!(
                matches!(err, ConvertError::Config(ArchError::Config { ref key, .. }) if key == "vocab_size"),
                "{err}"
            );
        }
        // A plausible vocab_size that is not the embedding's: refused from the tensor shape,
        // before the tokenizer is read (it is removed here to show it is never reached).
        let mut c = config.clone();
        c["vocab_size"] = json!(1 << 24);
        write_json(model.dir.path(), "config.json", &c);
        std::fs::remove_file(model.dir.path().join("tokenizer.json")).expect("remove");
        let err = convert(&opts, &|_, _| {}).expect_err("embedding rows");
        assert!(
            matches!(err, ConvertError::ShapeMismatch { ref tensor, ref expected, .. }
                if tensor == "model.embed_tokens.weight" && expected[0] == 1 << 24),
            "{err}"
        );

        // Many layers stated, two present: the count is exact, the list short.
        bpe_tokenizer(model.dir.path());
        let mut c = config.clone();
        c["num_hidden_layers"] = json!(crate::arch::MAX_LAYERS);
        write_json(model.dir.path(), "config.json", &c);
        match convert(&opts, &|_, _| {}).expect_err("missing layers") {
            ConvertError::MissingTensors { count, names } => {
                assert_eq!(count, 9 * (crate::arch::MAX_LAYERS - 2));
                assert_eq!(names.len(), MAX_LISTED_NAMES);
                assert_eq!(names[0], "model.layers.2.input_layernorm.weight");
            }
            other => panic!("expected missing tensors, got {other}"),
        }

        // No embedding at all: the full missing-tensor report, still before the vocabulary.
        let tensors: Vec<_> = shapes(&config, false, false)
            .into_iter()
            .filter(|(n, _)| n != "model.embed_tokens.weight" && n != "model.norm.weight")
            .collect();
        let model = tiny_model(config.clone(), &tensors, None);
        let opts = ConvertOptions {
            hf_dir: model.dir.path().to_owned(),
            out: model.dir.path().join("out.gguf"),
            ..opts
        };
        match convert(&opts, &|_, _| {}).expect_err("no embedding") {
            ConvertError::MissingTensors { count, names } => {
                assert_eq!(count, 2);
                assert_eq!(names, ["model.embed_tokens.weight", "model.norm.weight"]);
            }
            other => panic!("expected missing tensors, got {other}"),
        }
    }

    #[test]
    fn output_onto_an_input_is_refused() {
        let config = llama_config();
        let model = tiny_model(config.clone(), &shapes(&config, false, false), None);
        bpe_tokenizer(model.dir.path());
        let dir = model.dir.path();
        let weights = std::fs::read(dir.join("model.safetensors")).expect("weights");
        for input in ["model.safetensors", "config.json", "tokenizer.json"] {
            let before = std::fs::read(dir.join(input)).expect("input");
            let opts = ConvertOptions {
                hf_dir: dir.to_owned(),
                out: dir.join(input),
                out_type: OutType::F16,
                overwrite: true,
                threads: 1,
            };
            let err = convert(&opts, &|_, _| {}).expect_err("out is an input");
            assert!(matches!(err, ConvertError::OutputIsInput { .. }), "{err}");
            assert_eq!(
                std::fs::read(dir.join(input)).expect("kept"),
                before,
                "{input}"
            );
        }
        // The directory itself is refused too.
        let opts = ConvertOptions {
            hf_dir: dir.to_owned(),
            out: dir.join("."),
            out_type: OutType::F16,
            overwrite: true,
            threads: 1,
        };
        let err = convert(&opts, &|_, _| {}).expect_err("out is the model dir");
        assert!(matches!(err, ConvertError::OutputIsInput { .. }), "{err}");
        // An earlier GGUF output in the model directory may be replaced.
        let opts = ConvertOptions {
            out: dir.join("model.gguf"),
            ..opts
        };
        convert(&opts, &|_, _| {}).expect("first");
        convert(&opts, &|_, _| {}).expect("replaces its own output");
        assert_eq!(
            std::fs::read(dir.join("model.safetensors")).expect("kept"),
            weights
        );
    }

    #[test]
    fn size_labels_like_the_python_converter() {
        assert_eq!(size_label(134_515_008), "135M");
        assert_eq!(size_label(268_098_176), "268M");
        assert_eq!(size_label(1_235_814_400), "1.2B");
        assert_eq!(size_label(7_241_732_096), "7.2B");
        assert_eq!(size_label(12_000), "12K");
        assert_eq!(size_label(1_500), "1.5K");
    }

    #[test]
    fn names_are_title_cased_like_gguf_py() {
        // Expected values from gguf-py's Metadata.id_to_title.
        assert_eq!(id_to_title("tiny-spm"), "Tiny Spm");
        assert_eq!(
            id_to_title("SmolLM2-135M-Instruct"),
            "SmolLM2 135M Instruct"
        );
        assert_eq!(id_to_title("llama-f16"), "Llama F16");
        assert_eq!(id_to_title("qwen2.5-0.5b-v1.2"), "Qwen2.5 0.5b v1.2");
        assert_eq!(id_to_title("gemma-3-270m-it"), "Gemma 3 270m It");
    }

    #[test]
    fn out_type_parsing_and_file_types() {
        assert_eq!("Q8_0".parse::<OutType>().ok(), Some(OutType::Q8_0));
        assert_eq!("bf16".parse::<OutType>().ok(), Some(OutType::Bf16));
        assert!("q4_0".parse::<OutType>().is_err());
        for t in [OutType::F32, OutType::F16, OutType::Bf16, OutType::Q8_0] {
            assert!(vazhi_gguf::file_type_name(t.file_type()).is_some());
        }
    }
}
