//! `import-gguf`: turns a GGUF model back into a Hugging Face checkpoint directory (`f32`
//! safetensors, `config.json`, `generation_config.json`, tokenizer files), so a model that
//! only exists as a GGUF can be fine-tuned, and tests can start from real pretrained weights.
//!
//! The output follows the real checkpoints of each architecture (names, shapes, config keys,
//! tokenizer files), undoing llama.cpp's conversion transforms, so that converting it back
//! (`convert`) reproduces the original GGUF's tokenization and logits.
//!
//! A pipeline over [`crate::arch`] (hyper-parameters from the GGUF metadata, tensor names,
//! the inverse transforms, `config.json` / `generation_config.json`) and [`crate::hf`]:
//! - [`plan`]: shape checks and the shard layout;
//! - [`tokenizer`]: `tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json`;
//! - [`sentencepiece`]: `tokenizer.model` for SentencePiece vocabularies.

pub mod plan;
pub mod sentencepiece;
pub mod tokenizer;
mod weights;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use vazhi_gguf::Limits;

use crate::arch::{Arch, ArchError, Hparams};
use crate::dequant::{self, DequantError};
use crate::hf::{self, catch_tokenizer_panic, HfError};
use crate::hf::{
    CONFIG_JSON, GENERATION_CONFIG_JSON, MODEL_SAFETENSORS_INDEX_JSON, SPECIAL_TOKENS_MAP_JSON,
    TOKENIZER_CONFIG_JSON, TOKENIZER_JSON, TOKENIZER_MODEL,
};
use tokenizer::{GgufVocab, VocabKind};

/// What to import and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// The GGUF file.
    pub gguf: PathBuf,
    /// The Hugging Face directory to create.
    pub out: PathBuf,
    /// Replace `out` if it exists and is not empty.
    pub overwrite: bool,
}

/// What an import produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportReport {
    /// The GGUF read.
    pub gguf: PathBuf,
    /// The directory written.
    pub out: PathBuf,
    /// GGUF `general.architecture`.
    pub architecture: String,
    /// Hugging Face model class written to `config.json`.
    pub hf_architecture: String,
    /// Tensors written.
    pub tensors: usize,
    /// Parameters written (elements of every tensor).
    pub parameters: u64,
    /// GGUF tensor types read, with how many tensors had each.
    pub source_types: BTreeMap<String, usize>,
    /// Safetensors files written.
    pub shards: usize,
    /// Tokenizer written: `"byte-level BPE"` or `"SentencePiece BPE"`.
    pub tokenizer: String,
    /// Tokens in the vocabulary.
    pub vocab_tokens: usize,
    /// Bytes of every file written.
    pub output_bytes: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "imported {} ({}) into {}",
            self.gguf.display(),
            self.architecture,
            self.out.display()
        )?;
        writeln!(
            f,
            "  {}: {} tensors, {} parameters, {} shard(s) of f32 safetensors",
            self.hf_architecture, self.tensors, self.parameters, self.shards
        )?;
        let types: Vec<String> = self
            .source_types
            .iter()
            .map(|(t, n)| format!("{t}×{n}"))
            .collect();
        writeln!(f, "  source types: {}", types.join(", "))?;
        writeln!(
            f,
            "  tokenizer: {} ({} tokens)",
            self.tokenizer, self.vocab_tokens
        )?;
        write!(
            f,
            "  wrote {:.1} MB in {:.1} s",
            self.output_bytes as f64 / 1e6,
            self.seconds
        )
    }
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The GGUF file could not be read or is malformed.
    #[error("{path}: {source}")]
    Gguf {
        /// The file.
        path: PathBuf,
        /// What the reader found.
        source: vazhi_gguf::GgufError,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Writing the Hugging Face files failed.
    #[error(transparent)]
    Hf(#[from] HfError),
    /// The output directory already holds files.
    #[error("{path} exists and is not empty; choose another output directory or pass --overwrite")]
    OutputExists {
        /// The directory.
        path: PathBuf,
    },
    /// The output directory holds (or is) the GGUF being imported.
    #[error(
        "--out {out} holds the input {gguf}; replacing the directory would delete the GGUF — \
         choose an output directory that does not contain it"
    )]
    OutputIsInput {
        /// The output directory.
        out: PathBuf,
        /// The GGUF file.
        gguf: PathBuf,
    },
    /// The model architecture has no Hugging Face mapping here.
    #[error(
        "architecture {arch:?} is not supported by import-gguf (supported: {})",
        Arch::supported_list()
    )]
    UnsupportedArchitecture {
        /// `general.architecture`.
        arch: String,
    },
    /// A metadata key the import needs is absent.
    #[error("GGUF metadata key {key} is missing")]
    MissingMetadata {
        /// The key.
        key: String,
    },
    /// A metadata key has a value the import cannot use.
    #[error("GGUF metadata key {key} {problem}")]
    BadMetadata {
        /// The key.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A tensor the architecture needs is absent.
    #[error("tensor {name} is missing from the GGUF")]
    MissingTensor {
        /// The GGUF tensor name.
        name: String,
    },
    /// A tensor has no Hugging Face counterpart for this architecture.
    #[error(
        "tensor {name} has no Hugging Face counterpart in {arch} models; this GGUF is not a \
         plain {arch} model import-gguf understands"
    )]
    UnexpectedTensor {
        /// The GGUF tensor name.
        name: String,
        /// The architecture.
        arch: String,
    },
    /// A tensor's shape disagrees with the metadata.
    #[error(
        "tensor {name} has dims {actual:?} (innermost first) but the metadata implies {expected:?}"
    )]
    ShapeMismatch {
        /// The GGUF tensor name.
        name: String,
        /// Dims implied by the metadata.
        expected: Vec<u64>,
        /// Dims in the file.
        actual: Vec<u64>,
    },
    /// A tensor could not be dequantized.
    #[error("tensor {name}: {source}")]
    Dequant {
        /// The GGUF tensor name.
        name: String,
        /// Why.
        source: DequantError,
    },
    /// The vocabulary cannot be written as Hugging Face tokenizer files.
    #[error("tokenizer: {problem}")]
    Tokenizer {
        /// What is wrong.
        problem: String,
    },
    /// A size does not fit this machine's address space.
    #[error("{what} ({size}) is too large for this machine")]
    TooLarge {
        /// What was measured.
        what: String,
        /// Its size.
        size: u64,
    },
}

impl From<ArchError> for ImportError {
    fn from(e: ArchError) -> Self {
        match e {
            ArchError::MissingMetadata { key } => ImportError::MissingMetadata { key },
            ArchError::BadMetadata { key, problem } => ImportError::BadMetadata { key, problem },
            ArchError::MissingTensor { name } => ImportError::MissingTensor { name },
            ArchError::Unsupported { found } => {
                ImportError::UnsupportedArchitecture { arch: found }
            }
            ArchError::Config { key, problem } => ImportError::BadMetadata { key, problem },
            ArchError::Quantized { method } => ImportError::BadMetadata {
                key: "quantization_config".into(),
                problem: format!("names a quantized checkpoint ({method})"),
            },
        }
    }
}

/// Removes the temporary output directory unless the import succeeded.
struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            hf::remove_temp_dir(&self.path);
        }
    }
}

/// Imports `opts.gguf` into the Hugging Face directory `opts.out`, calling
/// `progress(done, total)` as tensors are written.
///
/// Everything is written into a temporary directory beside `out` and renamed into place at
/// the end, so a failed import leaves nothing behind. An existing non-empty `out` is refused
/// unless `opts.overwrite`.
pub fn import_gguf(
    opts: &ImportOptions,
    progress: &dyn Fn(usize, usize),
) -> Result<ImportReport, ImportError> {
    import_with_shard_limit(opts, progress, plan::MAX_SHARD_BYTES)
}

/// [`import_gguf`] with shards of at most `max_shard_bytes` (tests use small shards).
fn import_with_shard_limit(
    opts: &ImportOptions,
    progress: &dyn Fn(usize, usize),
    max_shard_bytes: u64,
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let span = tracing::info_span!("import_gguf", gguf = %opts.gguf.display());
    let _guard = span.enter();
    check_out_is_not_the_input(&opts.out, &opts.gguf)?;
    check_output(&opts.out, opts.overwrite)?;

    let file = vazhi_gguf::read_file(&opts.gguf, &Limits::default()).map_err(|source| {
        ImportError::Gguf {
            path: opts.gguf.clone(),
            source,
        }
    })?;
    let arch_name = file.architecture().unwrap_or("(none)").to_owned();
    let arch = Arch::from_gguf(&arch_name).ok_or_else(|| ImportError::UnsupportedArchitecture {
        arch: arch_name.clone(),
    })?;
    for info in &file.tensors {
        if !dequant::supports(info.ggml_type) {
            return Err(ImportError::Dequant {
                name: info.name.clone(),
                source: DequantError::Unsupported {
                    ggml_type: info.ggml_type,
                },
            });
        }
    }
    let mut reader = weights::TensorReader::open(&opts.gguf, file.data_offset)?;
    let rope_freqs = match file.tensor("rope_freqs.weight") {
        Some(info) if arch.family().has_rope_freqs_tensor() => Some(reader.read_f32(info)?),
        _ => None,
    };
    let params = Hparams::from_gguf(&file, arch, rope_freqs.as_deref())?;
    let plans = plan::plan_tensors(&file, &params)?;
    let vocab = GgufVocab::from_metadata(&file.metadata)?;
    if vocab.tokens.len() > params.vocab_size {
        return Err(ImportError::BadMetadata {
            key: "tokenizer.ggml.tokens".into(),
            problem: format!(
                "has {} tokens but token_embd.weight only {} rows",
                vocab.tokens.len(),
                params.vocab_size
            ),
        });
    }
    let shards = plan::shards(&plans, max_shard_bytes);

    if let Some(parent) = opts.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| ImportError::Io {
            path: parent.to_owned(),
            source,
        })?;
    }
    let temp_path = hf::temp_sibling(&opts.out);
    std::fs::create_dir(&temp_path).map_err(|source| ImportError::Io {
        path: temp_path.clone(),
        source,
    })?;
    // From here on the directory is ours: removed again unless the import completes.
    let mut temp = TempDir {
        path: temp_path,
        keep: false,
    };
    write_side_files(&temp.path, &params, &vocab)?;
    if shards.len() > 1 {
        write_json(
            &temp.path.join(MODEL_SAFETENSORS_INDEX_JSON),
            &plan::shard_index(&plans, &shards),
        )?;
    }
    weights::write_shards(&mut reader, &plans, &shards, &temp.path, progress)?;
    let output_bytes = dir_size(&temp.path)?;
    move_into_place(&temp.path, &opts.out)?;
    temp.keep = true;

    let mut source_types = BTreeMap::new();
    for info in &file.tensors {
        *source_types
            .entry(info.ggml_type.name().to_uppercase())
            .or_insert(0) += 1;
    }
    Ok(ImportReport {
        gguf: opts.gguf.clone(),
        out: opts.out.clone(),
        architecture: arch_name,
        hf_architecture: arch.hf_class().to_owned(),
        tensors: plans.len(),
        parameters: plans.iter().map(plan::TensorPlan::n_elements).sum(),
        source_types,
        shards: shards.len(),
        tokenizer: match vocab.kind {
            VocabKind::Bpe { .. } => "byte-level BPE".to_owned(),
            VocabKind::Spm { .. } => "SentencePiece BPE".to_owned(),
        },
        vocab_tokens: vocab.tokens.len(),
        output_bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Refuses an existing `out` that is the GGUF or a directory holding it (with `--overwrite`
/// the old directory is deleted once the import completes, and the GGUF with it).
fn check_out_is_not_the_input(out: &Path, gguf: &Path) -> Result<(), ImportError> {
    let (Ok(out_path), Ok(gguf_path)) = (out.canonicalize(), gguf.canonicalize()) else {
        return Ok(()); // a missing `out` holds nothing; a missing GGUF fails when read
    };
    if gguf_path.starts_with(&out_path) {
        return Err(ImportError::OutputIsInput {
            out: out.to_owned(),
            gguf: gguf.to_owned(),
        });
    }
    Ok(())
}

/// Refuses an output path that is a file, or a non-empty directory without `overwrite`.
fn check_output(out: &Path, overwrite: bool) -> Result<(), ImportError> {
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        return Err(ImportError::OutputExists {
            path: out.to_owned(),
        });
    }
    let mut entries = std::fs::read_dir(out).map_err(|source| ImportError::Io {
        path: out.to_owned(),
        source,
    })?;
    if entries.next().is_some() && !overwrite {
        return Err(ImportError::OutputExists {
            path: out.to_owned(),
        });
    }
    Ok(())
}

/// Config, generation config and tokenizer files.
fn write_side_files(dir: &Path, params: &Hparams, vocab: &GgufVocab) -> Result<(), ImportError> {
    let span = tracing::info_span!("side_files");
    let _guard = span.enter();
    write_json(&dir.join(CONFIG_JSON), &params.to_hf_config())?;
    write_json(
        &dir.join(GENERATION_CONFIG_JSON),
        &params.generation_config(&vocab.end_of_turn_ids()),
    )?;
    let tokenizer = vocab.build_tokenizer()?;
    let json = tokenizer
        .to_string(true)
        .map_err(|e| ImportError::Tokenizer {
            problem: format!("serialising tokenizer.json: {e}"),
        })?;
    // The file must load back (the tokenizers crate is what reads it everywhere).
    let reloaded =
        catch_tokenizer_panic("loading it back", || json.parse::<tokenizers::Tokenizer>())
            .map_err(|problem| ImportError::Tokenizer { problem })?
            .map_err(|e| ImportError::Tokenizer {
                problem: format!("the written tokenizer.json does not load back: {e}"),
            })?;
    if reloaded.get_vocab_size(true) != tokenizer.get_vocab_size(true) {
        return Err(ImportError::Tokenizer {
            problem: "the written tokenizer.json loads back with a different vocabulary".into(),
        });
    }
    write_bytes(&dir.join(TOKENIZER_JSON), json.as_bytes())?;
    let tokenizer_config = vocab.tokenizer_config(
        params.context_length,
        params.arch.family().vocab_quirks().gemma_tokenizer,
    );
    write_json(&dir.join(TOKENIZER_CONFIG_JSON), &tokenizer_config)?;
    write_json(
        &dir.join(SPECIAL_TOKENS_MAP_JSON),
        &vocab.special_tokens_map(),
    )?;
    if vocab.is_spm() {
        write_bytes(
            &dir.join(TOKENIZER_MODEL),
            &sentencepiece::model_proto(vocab)?,
        )?;
    }
    Ok(())
}

/// Writes `value` as pretty JSON with a final newline, atomically.
fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), ImportError> {
    Ok(hf::write_json(path, value)?)
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), ImportError> {
    Ok(hf::write_atomically(path, |w| w.write_all(bytes))?)
}

/// Total size of the files directly in `dir`.
fn dir_size(dir: &Path) -> Result<u64, ImportError> {
    let io = |source| ImportError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(io)? {
        total += entry.map_err(io)?.metadata().map_err(io)?.len();
    }
    Ok(total)
}

/// Renames the finished `temp` directory to `out`, replacing an existing (empty or
/// overwritable) `out`; the replaced directory is removed only after the rename succeeded.
fn move_into_place(temp: &Path, out: &Path) -> Result<(), ImportError> {
    let io = |path: &Path, source| ImportError::Io {
        path: path.to_owned(),
        source,
    };
    if out.exists() {
        let old = hf::temp_sibling(out);
        std::fs::rename(out, &old).map_err(|e| io(out, e))?;
        if let Err(e) = std::fs::rename(temp, out) {
            let _ = std::fs::rename(&old, out);
            return Err(io(out, e));
        }
        hf::remove_temp_dir(&old);
    } else {
        std::fs::rename(temp, out).map_err(|e| io(out, e))?;
    }
    Ok(hf::sync_dir(out)?)
}
