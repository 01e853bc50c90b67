//! Model-file checks that run before llama.cpp ever opens a file.
//!
//! llama.cpp's GGUF loader has a history of memory-safety bugs on crafted files, so every file
//! first passes through our own parser ([`vazhi_gguf`], fuzzed) and then through the policy
//! here: size budget, architecture allowlist and the consistency of the metadata with the
//! tensors it describes. The result is a [`ModelReport`] that the engine, the CLI (`vazhi
//! info`) and the memory planner read from.

use std::path::{Path, PathBuf};

use serde::Serialize;
use vazhi_gguf::{GgufError, GgufFile, Limits, Metadata, Value, ValueRef, ValueType};

/// One GiB, the default size budget for a model file.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1 << 30;

/// Architectures whose llama.cpp code paths we test or expect to ship; anything else is refused.
pub const DEFAULT_ARCHITECTURES: &[&str] = &[
    "llama", "gemma", "gemma2", "gemma3", "qwen2", "qwen3", "phi3", "smollm3", "granite", "olmo2",
];

/// What a model file must satisfy before it is loaded.
#[derive(Debug, Clone)]
pub struct ValidationPolicy {
    /// Largest accepted file, in bytes.
    pub max_file_bytes: u64,
    /// `general.architecture` values that may be loaded.
    pub architectures: Vec<String>,
    /// Structural bounds for the GGUF parser.
    pub limits: Limits,
}

impl Default for ValidationPolicy {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            architectures: DEFAULT_ARCHITECTURES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            limits: Limits::default(),
        }
    }
}

/// Why a model file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// No file at that path.
    #[error("model file not found: {0}")]
    NotFound(PathBuf),
    /// The file could not be read.
    #[error("cannot read model file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is larger than the budget allows.
    #[error("model file is {size} bytes, over the {budget}-byte budget")]
    TooLarge {
        /// File size in bytes.
        size: u64,
        /// The budget in bytes.
        budget: u64,
    },
    /// The GGUF structure is invalid (bad magic, version, lengths, offsets, types...).
    #[error("invalid GGUF file: {0}")]
    Format(#[from] GgufError),
    /// `general.architecture` is missing.
    #[error("model file has no general.architecture")]
    MissingArchitecture,
    /// The architecture is not on the allowlist.
    #[error("architecture `{0}` is not on the allowlist")]
    UnknownArchitecture(String),
    /// A key the engine needs is missing or has the wrong type.
    #[error("model metadata lacks `{0}`")]
    MissingKey(String),
    /// The metadata contradicts the tensors in the file.
    #[error("model metadata is inconsistent with its tensors: {0}")]
    Inconsistent(String),
    /// A metadata value that is an index (a special-token id such as
    /// `tokenizer.ggml.bos_token_id`) indexes nothing: it is negative, not an integer, or past
    /// the end of what it indexes.
    #[error("model metadata `{key}` is {value}, outside the {len} entries of `{indexes}`")]
    IndexOutOfRange {
        /// The key (control characters escaped, cut to a few dozen bytes).
        key: String,
        /// The value as found, e.g. `49152`, `-1` or `a string`.
        value: String,
        /// The key of what it indexes, e.g. `tokenizer.ggml.tokens`.
        indexes: &'static str,
        /// How many entries that has.
        len: u64,
    },
    /// A per-token metadata array (`tokenizer.ggml.token_type`, `tokenizer.ggml.scores`) does
    /// not have one entry per token of the vocabulary.
    #[error("model metadata `{key}` has {len} entries but the vocabulary has {vocab} tokens")]
    WrongLength {
        /// The key.
        key: &'static str,
        /// Entries found.
        len: u64,
        /// Tokens in the vocabulary.
        vocab: u64,
    },
    /// A tokenizer key has a type llama.cpp does not accept (it would refuse the file later).
    #[error("model metadata `{key}` is {found}, expected {expected}")]
    WrongType {
        /// The key.
        key: &'static str,
        /// The type found, e.g. `an array of f32`.
        found: String,
        /// The type accepted.
        expected: &'static str,
    },
    /// A catalog model whose file is no longer the one that was verified against its pinned
    /// SHA-256 (see [`crate::download::VerifiedModel`]).
    #[error("catalog model {id} is not the verified file (replaced or changed since); verify or download it again")]
    Unverified {
        /// Catalog id.
        id: String,
    },
}

/// What we learned about a model file that passed validation.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub file_bytes: u64,
    /// GGUF version (2 or 3).
    pub gguf_version: u32,
    /// `general.architecture`.
    pub architecture: String,
    /// `general.name`, if present.
    pub name: Option<String>,
    /// Sum of all tensors' element counts.
    pub parameter_count: u64,
    /// `general.file_type` (15 is Q4_K_M).
    pub file_type: Option<u32>,
    /// The llama.cpp name of `file_type`, e.g. `MOSTLY_Q4_K_M`.
    pub file_type_name: Option<String>,
    /// Number of tensors.
    pub tensor_count: usize,
    /// `{arch}.context_length`: the context the model was trained with.
    pub context_length: u32,
    /// `{arch}.block_count`: transformer layers.
    pub block_count: u32,
    /// `{arch}.embedding_length`.
    pub embedding_length: u32,
    /// `{arch}.attention.head_count`.
    pub head_count: u32,
    /// `{arch}.attention.head_count_kv` (the largest, when given per layer).
    pub head_count_kv: u32,
    /// Per-head key width.
    pub key_length: u32,
    /// Per-head value width.
    pub value_length: u32,
    /// `{arch}.attention.sliding_window`, for models with sliding-window layers.
    pub sliding_window: Option<u32>,
    /// Tokens in the vocabulary.
    pub vocab_size: u32,
    /// `tokenizer.chat_template`, if the model has one.
    #[serde(skip)]
    pub chat_template: Option<String>,
    /// Whether the model carries a chat template.
    pub has_chat_template: bool,
    /// The BOS token's text, if the model declares one.
    pub bos_token: Option<String>,
    /// The EOS token's text, if the model declares one.
    pub eos_token: Option<String>,
}

/// Parses and checks `path` against `policy`; llama.cpp is not involved.
pub fn validate_model(path: &Path, policy: &ValidationPolicy) -> Result<ModelReport, ModelError> {
    let _span = tracing::debug_span!("validate_model").entered();
    let meta = std::fs::metadata(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ModelError::NotFound(path.to_owned())
        } else {
            ModelError::Io {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    if !meta.is_file() {
        return Err(ModelError::NotFound(path.to_owned()));
    }
    if meta.len() > policy.max_file_bytes {
        return Err(ModelError::TooLarge {
            size: meta.len(),
            budget: policy.max_file_bytes,
        });
    }
    let file = vazhi_gguf::read_file(path, &policy.limits)?;
    report_for(path, &file, policy)
}

fn report_for(
    path: &Path,
    file: &GgufFile,
    policy: &ValidationPolicy,
) -> Result<ModelReport, ModelError> {
    let arch = file
        .architecture()
        .ok_or(ModelError::MissingArchitecture)?
        .to_owned();
    if !policy.architectures.iter().any(|a| a == &arch) {
        return Err(ModelError::UnknownArchitecture(arch));
    }
    let md = &file.metadata;
    let key = |suffix: &str| format!("{arch}.{suffix}");
    let required_u32 = |k: String| md.get_u32(&k).ok_or(ModelError::MissingKey(k));

    let block_count = required_u32(key("block_count"))?;
    let embedding_length = required_u32(key("embedding_length"))?;
    let context_length = required_u32(key("context_length"))?;
    let head_count = required_u32(key("attention.head_count"))?;
    let head_count_kv = match md.get(&key("attention.head_count_kv")) {
        None => head_count,
        Some(Value::Array(per_layer)) => per_layer
            .iter()
            .filter_map(ValueRef::as_u64)
            .max()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| ModelError::MissingKey(key("attention.head_count_kv")))?,
        Some(v) => v
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| ModelError::MissingKey(key("attention.head_count_kv")))?,
    };
    if context_length == 0 || block_count == 0 || head_count == 0 || embedding_length == 0 {
        return Err(ModelError::Inconsistent(
            "context_length, block_count, head_count and embedding_length must be positive".into(),
        ));
    }
    let default_head_dim = embedding_length / head_count;
    let key_length = md
        .get_u32(&key("attention.key_length"))
        .unwrap_or(default_head_dim);
    let value_length = md
        .get_u32(&key("attention.value_length"))
        .unwrap_or(default_head_dim);
    let sliding_window = md.get_u32(&key("attention.sliding_window"));

    check_blocks(file, block_count)?;
    let vocab_size = check_embeddings(file, embedding_length)?;
    check_tokenizer(md, vocab_size)?;

    let token_text = |id_key: &str| -> Option<String> {
        let id = md.get_u64(id_key)?;
        let tokens = md.get_array("tokenizer.ggml.tokens")?;
        tokens
            .get(usize::try_from(id).ok()?)?
            .as_str()
            .map(str::to_owned)
    };
    let chat_template = md.get_str("tokenizer.chat_template").map(str::to_owned);
    let file_type = file.file_type();
    Ok(ModelReport {
        path: path.to_owned(),
        file_bytes: file.file_len,
        gguf_version: file.version,
        name: md.get_str("general.name").map(str::to_owned),
        parameter_count: file.parameter_count(),
        file_type,
        file_type_name: file_type
            .and_then(vazhi_gguf::file_type_name)
            .map(str::to_owned),
        tensor_count: file.tensors.len(),
        context_length,
        block_count,
        embedding_length,
        head_count,
        head_count_kv,
        key_length,
        value_length,
        sliding_window,
        vocab_size,
        has_chat_template: chat_template.is_some(),
        chat_template,
        bos_token: token_text("tokenizer.ggml.bos_token_id"),
        eos_token: token_text("tokenizer.ggml.eos_token_id"),
        architecture: arch,
    })
}

/// Every layer `blk.0 … blk.{n-1}` has tensors, and no tensor names a layer past the count.
fn check_blocks(file: &GgufFile, block_count: u32) -> Result<(), ModelError> {
    // Every layer has at least one tensor: a larger count is a lie, refused before allocating.
    if block_count as usize > file.tensors.len() {
        return Err(ModelError::Inconsistent(format!(
            "block_count {block_count} exceeds the {} tensors in the file",
            file.tensors.len()
        )));
    }
    let mut seen = vec![false; block_count as usize];
    for tensor in &file.tensors {
        let Some(rest) = tensor.name.strip_prefix("blk.") else {
            continue;
        };
        let index: Option<usize> = rest.split('.').next().and_then(|n| n.parse().ok());
        match index {
            Some(i) if i < seen.len() => seen[i] = true,
            _ => {
                return Err(ModelError::Inconsistent(format!(
                    "tensor `{}` is outside block_count {block_count}",
                    tensor.name
                )))
            }
        }
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(ModelError::Inconsistent(format!(
            "block_count is {block_count} but layer {missing} has no tensors"
        )));
    }
    Ok(())
}

/// `token_embd.weight` is `[embedding_length, vocab]` and the vocabulary has `vocab` tokens.
fn check_embeddings(file: &GgufFile, embedding_length: u32) -> Result<u32, ModelError> {
    let embd = file
        .tensor("token_embd.weight")
        .ok_or_else(|| ModelError::Inconsistent("no token_embd.weight tensor".into()))?;
    if embd.dims.len() != 2 || embd.dims[0] != u64::from(embedding_length) {
        return Err(ModelError::Inconsistent(format!(
            "token_embd.weight has shape {:?}, embedding_length is {embedding_length}",
            embd.dims
        )));
    }
    let vocab = embd.dims[1];
    let tokens = file
        .metadata
        .get_string_array_len("tokenizer.ggml.tokens")
        .ok_or_else(|| ModelError::MissingKey("tokenizer.ggml.tokens".into()))?;
    if tokens as u64 != vocab {
        return Err(ModelError::Inconsistent(format!(
            "tokenizer has {tokens} tokens but token_embd.weight has {vocab} rows"
        )));
    }
    u32::try_from(vocab).map_err(|_| ModelError::Inconsistent("vocabulary too large".into()))
}

/// The vocabulary's key: `tokenizer.ggml.tokens`, the array every token id indexes.
const TOKENS_KEY: &str = "tokenizer.ggml.tokens";
/// The BPE merges' key: an array of strings.
const MERGES: &str = "tokenizer.ggml.merges";

/// Every metadata id indexes the vocabulary, and every per-token array has one entry per
/// token, with the types llama.cpp reads.
///
/// Ids are the keys ending in `_token_id` (`tokenizer.ggml.bos_token_id`, `eos`, `eot`, `eom`,
/// `unknown`, `seperator`, `padding`, `cls`, `mask`, the `fim_*` ids, `prefix`/`suffix`/
/// `middle`, `{arch}.decoder_start_token_id`...): llama.cpp warns about an id past the
/// vocabulary and falls back to a default, so the file would load with the wrong special
/// tokens. A shorter `token_type` or `scores` array would be read past its end, and
/// `merges` must be strings.
fn check_tokenizer(md: &Metadata, vocab: u32) -> Result<(), ModelError> {
    let vocab = u64::from(vocab);
    for (key, value) in md.iter() {
        if !key.ends_with("_token_id") {
            continue;
        }
        if value.as_u64().is_some_and(|id| id < vocab) {
            continue;
        }
        return Err(ModelError::IndexOutOfRange {
            key: key_for_error(key),
            value: describe(value),
            indexes: TOKENS_KEY,
            len: vocab,
        });
    }
    per_token_array(
        md,
        "tokenizer.ggml.token_type",
        &[ValueType::I32],
        "an array of i32",
        vocab,
    )?;
    per_token_array(
        md,
        "tokenizer.ggml.scores",
        &[ValueType::F32, ValueType::I32],
        "an array of f32 or i32",
        vocab,
    )?;
    if let Some(merges) = md.get(MERGES) {
        if md.get_string_array_len(MERGES).is_none() {
            return Err(ModelError::WrongType {
                key: MERGES,
                found: describe(merges),
                expected: "an array of strings",
            });
        }
    }
    Ok(())
}

/// If `key` is present, it is an array of one of `types` with `vocab` entries.
fn per_token_array(
    md: &Metadata,
    key: &'static str,
    types: &[ValueType],
    expected: &'static str,
    vocab: u64,
) -> Result<(), ModelError> {
    let Some(value) = md.get(key) else {
        return Ok(());
    };
    let array = value
        .as_array()
        .filter(|a| types.contains(&a.element_type()))
        .ok_or_else(|| ModelError::WrongType {
            key,
            found: describe(value),
            expected,
        })?;
    let len = array.len() as u64;
    if len != vocab {
        return Err(ModelError::WrongLength { key, len, vocab });
    }
    Ok(())
}

/// A metadata value for an error message: an integer as itself, anything else by its type.
fn describe(value: &Value) -> String {
    if let Some(n) = value.as_i64() {
        return n.to_string();
    }
    if let Some(n) = value.as_u64() {
        return n.to_string();
    }
    match value.as_array() {
        Some(a) => format!("an array of {}", a.element_type().name()),
        None => format!("a {}", value.value_type().name()),
    }
}

/// A key from the file, safe to show: control characters escaped, cut to
/// [`vazhi_gguf::MAX_CONTEXT_LEN`] characters.
fn key_for_error(key: &str) -> String {
    let mut shown: String = key.chars().take(vazhi_gguf::MAX_CONTEXT_LEN).collect();
    if shown.len() < key.len() {
        shown.push('…');
    }
    shown.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use vazhi_gguf::{write_gguf, Array, GgmlType, TensorData};

    use super::*;

    const VOCAB: u64 = 8;

    /// A minimal llama file's metadata: one layer, four wide, eight tokens.
    fn metadata() -> Metadata {
        let mut m = Metadata::new();
        m.insert("general.architecture", "llama");
        m.insert("llama.block_count", 1u32);
        m.insert("llama.embedding_length", 4u32);
        m.insert("llama.context_length", 64u32);
        m.insert("llama.attention.head_count", 1u32);
        let tokens: Vec<String> = (0..VOCAB).map(|i| format!("t{i}")).collect();
        m.insert(TOKENS_KEY, Array::from(tokens));
        m.insert("tokenizer.ggml.token_type", Array::from(vec![1i32; 8]));
        m.insert("tokenizer.ggml.scores", Array::from(vec![0.5f32; 8]));
        m.insert(MERGES, Array::from(vec!["t 1", "t1 t2"]));
        m.insert("tokenizer.ggml.bos_token_id", 1u32);
        m.insert("tokenizer.ggml.eos_token_id", 2u32);
        m.insert("tokenizer.ggml.padding_token_id", 7u32);
        m
    }

    /// Writes `md` with the tensors it describes, reads it back and validates it.
    fn validate(md: &Metadata) -> Result<ModelReport, ModelError> {
        let norm = vec![0u8; 4 * 4];
        let embd = vec![0u8; 4 * 4 * 8];
        let tensors = [
            TensorData {
                name: "blk.0.attn_norm.weight",
                dims: &[4],
                ggml_type: GgmlType::F32,
                data: &norm,
            },
            TensorData {
                name: "token_embd.weight",
                dims: &[4, VOCAB],
                ggml_type: GgmlType::F32,
                data: &embd,
            },
        ];
        let mut bytes = Vec::new();
        write_gguf(&mut bytes, md, &tensors).unwrap();
        let file = vazhi_gguf::read_bytes(&bytes, &Limits::default()).unwrap();
        report_for(Path::new("test.gguf"), &file, &ValidationPolicy::default())
    }

    fn with(key: &str, value: impl Into<Value>) -> Metadata {
        let mut md = metadata();
        md.insert(key, value);
        md
    }

    #[test]
    fn a_consistent_file_passes() {
        let report = validate(&metadata()).unwrap();
        assert_eq!(report.vocab_size, 8);
        assert_eq!(report.bos_token.as_deref(), Some("t1"));
        assert_eq!(report.eos_token.as_deref(), Some("t2"));
        // Integer scores, an id of any integer width, and no optional arrays at all pass too.
        validate(&with("tokenizer.ggml.scores", Array::from(vec![-3i32; 8]))).unwrap();
        validate(&with("tokenizer.ggml.cls_token_id", 0u8)).unwrap();
        let mut bare = metadata();
        for key in ["tokenizer.ggml.token_type", "tokenizer.ggml.scores", MERGES] {
            bare.remove(key);
        }
        validate(&bare).unwrap();
    }

    #[test]
    fn token_ids_that_index_nothing_are_refused() {
        let cases: [(&str, Value, &str); 7] = [
            ("tokenizer.ggml.bos_token_id", Value::U32(8), "8"),
            (
                "tokenizer.ggml.eos_token_id",
                Value::U32(u32::MAX),
                "4294967295",
            ),
            ("tokenizer.ggml.eot_token_id", Value::I32(-1), "-1"),
            (
                "tokenizer.ggml.padding_token_id",
                Value::U64(u64::MAX),
                "18446744073709551615",
            ),
            (
                "tokenizer.ggml.fim_pre_token_id",
                Value::from("3"),
                "a string",
            ),
            ("tokenizer.ggml.mask_token_id", Value::F32(1.0), "a f32"),
            ("t5.decoder_start_token_id", Value::U16(9), "9"),
        ];
        for (key, value, shown) in cases {
            match validate(&with(key, value)) {
                Err(ModelError::IndexOutOfRange {
                    key: k,
                    value,
                    indexes,
                    len,
                }) => {
                    assert_eq!((k.as_str(), value.as_str()), (key, shown));
                    assert_eq!((indexes, len), (TOKENS_KEY, VOCAB));
                }
                other => panic!("{key}: {other:?}"),
            }
        }
        let err = validate(&with("tokenizer.ggml.bos_token_id", 8u32)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "model metadata `tokenizer.ggml.bos_token_id` is 8, outside the 8 entries of \
             `tokenizer.ggml.tokens`"
        );
        // A hostile key is shown escaped.
        let err = validate(&with("\u{1b}[31m_token_id", 99u32)).unwrap_err();
        assert!(!err.to_string().contains('\u{1b}'), "{err}");
    }

    #[test]
    fn per_token_arrays_must_match_the_vocabulary() {
        for (key, value, len) in [
            ("tokenizer.ggml.token_type", Array::from(vec![1i32; 7]), 7),
            ("tokenizer.ggml.token_type", Array::from(vec![1i32; 9]), 9),
            ("tokenizer.ggml.scores", Array::from(vec![0f32; 3]), 3),
            ("tokenizer.ggml.scores", Array::from(Vec::<f32>::new()), 0),
        ] {
            match validate(&with(key, value)) {
                Err(ModelError::WrongLength {
                    key: k,
                    len: l,
                    vocab,
                }) => {
                    assert_eq!((k, l, vocab), (key, len, VOCAB));
                }
                other => panic!("{key} of {len}: {other:?}"),
            }
        }
        for (key, value) in [
            (
                "tokenizer.ggml.token_type",
                Value::from(Array::from(vec![1u8; 8])),
            ),
            ("tokenizer.ggml.token_type", Value::U32(1)),
            (
                "tokenizer.ggml.scores",
                Value::from(Array::from(vec!["0"; 8])),
            ),
            (MERGES, Value::from(Array::from(vec![1u32, 2]))),
            (MERGES, Value::from("t 1")),
        ] {
            assert!(
                matches!(
                    validate(&with(key, value.clone())),
                    Err(ModelError::WrongType { key: k, .. }) if k == key
                ),
                "{key} = {value:?}"
            );
        }
    }

    #[test]
    fn real_models_pass() {
        for name in [vazhi_tests::SMOLLM2, vazhi_tests::GEMMA3] {
            let Some(path) = vazhi_tests::model(name) else {
                continue;
            };
            let report = validate_model(&path, &ValidationPolicy::default()).unwrap();
            assert!(report.bos_token.is_some() && report.eos_token.is_some());
        }
    }
}
