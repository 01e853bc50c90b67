//! A Hugging Face tokenizer → the `tokenizer.*` metadata of a GGUF file, the way llama.cpp's
//! converter writes it.
//!
//! Two kinds are read:
//! * byte-level BPE (`tokenizer.json`, `model.type = "BPE"` with a `ByteLevel`
//!   pre-tokenizer) → `tokenizer.ggml.model = "gpt2"`: tokens by id, token types, merges and
//!   the pre-tokenizer name ([`super::pretokenizer`]); like `_set_vocab_gpt2`.
//! * SentencePiece (`tokenizer.model`) → `tokenizer.ggml.model = "llama"`: tokens, scores and
//!   types from the protobuf ([`crate::hf::sentencepiece`]), overridden by `added_tokens.json` and
//!   `tokenizer_config.json`'s `added_tokens_decoder`, padded to the config's `vocab_size` with
//!   `[PAD{id}]`; like `_create_vocab_sentencepiece`.
//!
//! Special token ids, `add_*_token` flags and normalizer flags follow gguf-py's `SpecialVocab`
//! ([`SpecialVocab`]); the chat template is found by [`crate::hf::load_chat_template`], the
//! rule `audit-tokenizer` and `train` use too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use vazhi_gguf::{Array, Metadata};

use super::pretokenizer::{self, Detection, PreTokenizerError};
use crate::hf::sentencepiece::{PieceType, SentencePieceError, SentencePieceModel};
use crate::hf::{
    catch_tokenizer_panic, load_chat_template, read_json, read_json_if_exists, token_content,
    ChatTemplate, HfError,
};
use crate::hf::{
    ADDED_TOKENS_JSON, CONFIG_JSON, SPECIAL_TOKENS_MAP_JSON, TOKENIZER_CONFIG_JSON, TOKENIZER_JSON,
    TOKENIZER_MODEL,
};

/// llama.cpp token types (`llama_token_type` / gguf-py `TokenType`).
pub mod token_type {
    /// An ordinary token.
    pub const NORMAL: i32 = 1;
    /// The unknown token.
    pub const UNKNOWN: i32 = 2;
    /// A control token (never produced from text; e.g. `<|im_start|>`).
    pub const CONTROL: i32 = 3;
    /// A user-defined token, matched whole in text.
    pub const USER_DEFINED: i32 = 4;
    /// A token that is never used (padding of the vocabulary).
    pub const UNUSED: i32 = 5;
    /// A byte-fallback token `<0xNN>`.
    pub const BYTE: i32 = 6;
}

/// Score of SentencePiece ids the model does not define.
const PAD_SCORE: f32 = -10000.0;
/// Score the converter gives added tokens.
const ADDED_SCORE: f32 = -1000.0;
/// The SentencePiece space marker.
const SPM_SPACE: &str = "\u{2581}";
/// Largest vocabulary accepted (16 Mi ids, 64× the largest real vocabulary): `vocab_size`
/// sizes the token tables, so a larger one is a broken config, not a model.
pub const MAX_VOCAB_SIZE: usize = 1 << 24;
/// Missing ids named in a [`VocabError::Holes`] error.
const MAX_HOLE_EXAMPLES: usize = 10;

/// What is wrong with the tokenizer files.
#[derive(Debug, thiserror::Error)]
pub enum VocabError {
    /// A file could not be read or parsed.
    #[error(transparent)]
    Hf(#[from] HfError),
    /// No tokenizer file at all.
    #[error(
        "{dir}: no tokenizer.model (SentencePiece) or tokenizer.json (BPE); copy the tokenizer \
         files of the base model into the directory"
    )]
    NoTokenizer {
        /// The model directory.
        dir: PathBuf,
    },
    /// `tokenizer.model` is malformed.
    #[error(transparent)]
    SentencePiece(#[from] SentencePieceError),
    /// The tokenizers library could not load `tokenizer.json`.
    #[error("{path}: the tokenizer cannot be loaded: {reason}")]
    Load {
        /// The file.
        path: PathBuf,
        /// The library's message.
        reason: String,
    },
    /// `tokenizer.json` is not byte-level BPE.
    #[error("{path}: {reason}")]
    NotByteLevelBpe {
        /// The file.
        path: PathBuf,
        /// What kind of tokenizer it is and what to do.
        reason: String,
    },
    /// A JSON file has an unexpected shape.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Token ids below the highest id are missing.
    #[error(
        "the tokenizer has no token for {count} id(s) below its highest id, e.g. {examples:?}; \
         its vocabulary must be contiguous"
    )]
    Holes {
        /// How many ids are missing.
        count: usize,
        /// The first few missing ids.
        examples: Vec<u32>,
    },
    /// `vocab_size` is larger than any real vocabulary.
    #[error(
        "vocab_size = {vocab_size} is larger than the {max} ids a vocabulary may have; \
         config.json is broken"
    )]
    VocabSizeTooLarge {
        /// The requested vocabulary size.
        vocab_size: usize,
        /// [`MAX_VOCAB_SIZE`].
        max: usize,
    },
    /// The tokenizer has ids the model's embedding has no row for.
    #[error(
        "the tokenizer has token id {max_id} but config.json says vocab_size = {vocab_size}; \
         the tokenizer does not belong to this model"
    )]
    TooManyTokens {
        /// Highest token id.
        max_id: u32,
        /// The config's vocabulary size.
        vocab_size: usize,
    },
    /// A BPE tokenizer without merges.
    #[error(
        "{path}: the BPE model has no merges (and there is no merges.txt); it cannot tokenize"
    )]
    NoMerges {
        /// The tokenizer file.
        path: PathBuf,
    },
    /// The pre-tokenizer is not one llama.cpp knows.
    #[error(transparent)]
    PreTokenizer(#[from] PreTokenizerError),
}

/// Special token ids, `add_*_token` flags, normalizer flags and chat template, as gguf-py's
/// `SpecialVocab` reads them from `tokenizer.json`, `tokenizer_config.json` and `config.json`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpecialVocab {
    /// `(type, id)` in the order found; types are `bos`, `eos`, `unk`, `sep`, `pad`, `cls`,
    /// `mask`, `eot`, `eom`.
    pub ids: Vec<(String, u32)>,
    /// `(type, add)` flags in the order found (`bos`, `eos`, `sep` are written).
    pub add: Vec<(String, bool)>,
    /// The chat template, if any.
    pub chat_template: Option<ChatTemplate>,
    /// The normalizer lower-cases text.
    pub lowercase: Option<bool>,
    /// The normalizer strips accents.
    pub strip_accents: Option<bool>,
}

/// A tokenizer converted to GGUF terms.
#[derive(Debug, Clone)]
pub struct Vocab {
    /// `tokenizer.ggml.model`: `gpt2` or `llama`.
    pub model: &'static str,
    /// `tokenizer.ggml.pre`.
    pub pre: String,
    /// How `pre` was found (BPE only).
    pub pre_detection: Option<Detection>,
    /// Token texts, by id.
    pub tokens: Vec<String>,
    /// Scores (SentencePiece only).
    pub scores: Option<Vec<f32>>,
    /// Token types, by id (see [`token_type`]).
    pub types: Vec<i32>,
    /// BPE merges as `"a b"`.
    pub merges: Vec<String>,
    /// SentencePiece `add_dummy_prefix`, if the vocabulary came from `tokenizer.model`.
    pub add_dummy_prefix: Option<bool>,
    /// Special tokens and template.
    pub special: SpecialVocab,
}

impl Vocab {
    /// Writes `tokenizer.ggml.*` and the special-vocabulary keys in the converter's order.
    pub fn write_metadata(&self, md: &mut Metadata) {
        md.insert("tokenizer.ggml.model", self.model);
        md.insert("tokenizer.ggml.pre", self.pre.as_str());
        md.insert("tokenizer.ggml.tokens", Array::from(self.tokens.clone()));
        if let Some(scores) = &self.scores {
            md.insert("tokenizer.ggml.scores", Array::from(scores.clone()));
        }
        md.insert("tokenizer.ggml.token_type", Array::from(self.types.clone()));
        if !self.merges.is_empty() {
            md.insert("tokenizer.ggml.merges", Array::from(self.merges.clone()));
        }
        self.special.write_metadata(md);
    }
}

impl SpecialVocab {
    /// Writes the special token ids, `add_*_token` flags, chat template and normalizer flags.
    pub fn write_metadata(&self, md: &mut Metadata) {
        for (kind, id) in &self.ids {
            let key = match kind.as_str() {
                "bos" => "tokenizer.ggml.bos_token_id",
                "eos" => "tokenizer.ggml.eos_token_id",
                "unk" => "tokenizer.ggml.unknown_token_id",
                "sep" => "tokenizer.ggml.seperator_token_id",
                "pad" => "tokenizer.ggml.padding_token_id",
                "mask" => "tokenizer.ggml.mask_token_id",
                "eot" => "tokenizer.ggml.eot_token_id",
                "eom" => "tokenizer.ggml.eom_token_id",
                _ => continue, // `cls` has no GGUF key (gguf-py skips it too)
            };
            md.insert(key, *id);
        }
        for (kind, add) in &self.add {
            let key = match kind.as_str() {
                "bos" => "tokenizer.ggml.add_bos_token",
                "eos" => "tokenizer.ggml.add_eos_token",
                "sep" => "tokenizer.ggml.add_sep_token",
                _ => continue,
            };
            md.insert(key, *add);
        }
        match &self.chat_template {
            Some(ChatTemplate::Single(t)) => {
                md.insert("tokenizer.chat_template", t.as_str());
            }
            Some(ChatTemplate::Named(list)) => {
                let mut names = Vec::new();
                let mut default = None;
                for (name, template) in list {
                    let name: String = name
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                        .collect();
                    if name == "default" {
                        default = Some(template);
                    } else if !name.is_empty() {
                        md.insert(format!("tokenizer.chat_template.{name}"), template.as_str());
                        if !names.contains(&name) {
                            names.push(name);
                        }
                    }
                }
                if !names.is_empty() {
                    md.insert("tokenizer.chat_templates", Array::from(names));
                }
                if let Some(t) = default {
                    md.insert("tokenizer.chat_template", t.as_str());
                }
            }
            None => {}
        }
        if let Some(v) = self.lowercase {
            md.insert("tokenizer.ggml.normalizer.lowercase", v);
        }
        if let Some(v) = self.strip_accents {
            md.insert("tokenizer.ggml.normalizer.strip_accents", v);
        }
    }

    /// Sets a flag unless it is already set (Python's `dict.setdefault`).
    fn set_add_default(&mut self, kind: &str, value: bool) {
        if !self.add.iter().any(|(k, _)| k == kind) {
            self.add.push((kind.to_owned(), value));
        }
    }

    /// Sets a flag, replacing an earlier value in place.
    pub fn set_add(&mut self, kind: &str, value: bool) {
        match self.add.iter_mut().find(|(k, _)| k == kind) {
            Some(slot) => slot.1 = value,
            None => self.add.push((kind.to_owned(), value)),
        }
    }

    fn add_of(&self, kind: &str) -> Option<bool> {
        self.add.iter().find(|(k, _)| k == kind).map(|(_, v)| *v)
    }

    /// Records an id for `kind` unless one is set; ids outside the vocabulary are skipped.
    fn set_id(&mut self, kind: &str, id: Option<u64>, n_vocab: usize) {
        let Some(id) = id else { return };
        if self.ids.iter().any(|(k, _)| k == kind) {
            return;
        }
        match u32::try_from(id) {
            Ok(id) if (id as usize) < n_vocab => self.ids.push((kind.to_owned(), id)),
            _ => tracing::warn!(kind, id, n_vocab, "special token id out of range; skipped"),
        }
    }

    /// Reads the special vocabulary of `dir` for a vocabulary of `n_vocab` tokens.
    pub fn load(dir: &Path, n_vocab: usize) -> Result<SpecialVocab, VocabError> {
        let mut special = SpecialVocab::default();
        let mut kinds: Vec<&str> = vec!["bos", "eos", "unk", "sep", "pad", "cls", "mask"];
        let tokenizer = read_tokenizer_json_lite(dir)?;
        let mut config = read_json_if_exists(&dir.join(TOKENIZER_CONFIG_JSON))?
            .and_then(|c| c.as_object().cloned());
        let empty = Vec::new();
        let added_tokens = tokenizer.as_ref().map_or(&empty, |t| &t.added_tokens);

        if let Some(tokenizer) = &tokenizer {
            if let Some(normalizer) = tokenizer.normalizer.as_ref().filter(|n| !n.is_null()) {
                special.parse_normalizer(normalizer);
            }
            if let Some(post) = tokenizer.post_processor.as_ref().filter(|p| !p.is_null()) {
                special.parse_post_processor(post, config.as_mut(), &mut kinds);
            }
        }

        let lookup = |content: &str| -> Option<u64> {
            added_tokens
                .iter()
                .find(|t| t.get("content").and_then(Json::as_str) == Some(content))
                .and_then(|t| t.get("id"))
                .and_then(Json::as_u64)
        };

        special.chat_template = load_chat_template(dir, config.as_ref())?.map(|t| t.template);
        if let Some(config) = &config {
            for kind in &kinds {
                if let Some(add) = config
                    .get(&format!("add_{kind}_token"))
                    .and_then(Json::as_bool)
                {
                    match special.add_of(kind) {
                        None => special.add.push(((*kind).to_owned(), add)),
                        Some(existing) if existing != add => tracing::warn!(
                            kind,
                            "tokenizer_config add_{kind}_token disagrees with the post-processor; \
                             using the post-processor"
                        ),
                        Some(_) => {}
                    }
                }
                if let Some(content) = config.get(&format!("{kind}_token")).and_then(token_content)
                {
                    special.set_id(kind, lookup(content), n_vocab);
                }
            }
        }

        if let Some(model_config) = read_json_if_exists(&dir.join(CONFIG_JSON))? {
            for kind in &kinds {
                let key = format!("{kind}_token_id");
                let id = model_config
                    .get(&key)
                    .filter(|v| !v.is_null())
                    .or_else(|| model_config.get("text_config").and_then(|t| t.get(&key)));
                special.set_id(kind, id.and_then(Json::as_u64), n_vocab);
            }
        }

        // Not read by gguf-py: the older special_tokens_map.json fills kinds still unset.
        if let Some(map) = read_json_if_exists(&dir.join(SPECIAL_TOKENS_MAP_JSON))? {
            for kind in &kinds {
                if let Some(content) = map.get(format!("{kind}_token")).and_then(token_content) {
                    special.set_id(kind, lookup(content), n_vocab);
                }
            }
        }
        Ok(special)
    }

    fn parse_normalizer(&mut self, normalizer: &Json) {
        match normalizer.get("type").and_then(Json::as_str) {
            Some("Lowercase") => self.lowercase = Some(true),
            Some("StripAccents") => self.strip_accents = Some(true),
            Some("BertNormalizer") => {
                if let Some(v) = normalizer.get("lowercase").and_then(Json::as_bool) {
                    self.lowercase = Some(v);
                }
                if let Some(v) = normalizer.get("strip_accents").and_then(Json::as_bool) {
                    self.strip_accents = Some(v);
                }
            }
            Some("Sequence") => {
                for n in normalizer
                    .get("normalizers")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                {
                    self.parse_normalizer(n);
                }
            }
            _ => {}
        }
    }

    /// gguf-py's reading of `post_processor`: which special tokens the tokenizer adds, and
    /// (through `TemplateProcessing`) which tokens are BOS/EOS/SEP. Mutates `config` the same
    /// way gguf-py does, so later lookups see the inferred token strings.
    fn parse_post_processor(
        &mut self,
        post: &Json,
        mut config: Option<&mut serde_json::Map<String, Json>>,
        kinds: &mut Vec<&'static str>,
    ) {
        let get = |c: &Option<&mut serde_json::Map<String, Json>>, key: &str| -> Option<String> {
            c.as_ref()
                .and_then(|c| c.get(key))
                .and_then(token_content)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let mut special_bos = get(&config, "bos_token");
        let mut special_cls = get(&config, "cls_token");
        let mut special_eos = get(&config, "eos_token");
        let mut special_sep = get(&config, "sep_token");
        if let Some(c) = config.as_deref_mut() {
            if special_bos.is_none() && special_cls.is_some() {
                special_bos.clone_from(&special_cls);
                c.insert("bos_token".into(), Json::from(special_bos.clone()));
            }
            if special_eos.is_none() && special_sep.is_some() {
                special_eos.clone_from(&special_sep);
                c.insert("eos_token".into(), Json::from(special_eos.clone()));
            }
        }
        let has_config = config.is_some();
        let processors: Vec<&Json> = match post.get("processors").and_then(Json::as_array) {
            Some(list) => list.iter().collect(),
            None => vec![post],
        };
        for processor in processors {
            match processor.get("type").and_then(Json::as_str) {
                Some("ByteLevel") => {
                    self.set_add_default("bos", false);
                    self.set_add_default("eos", false);
                }
                Some("RobertaProcessing") => {
                    self.set_add("bos", true);
                    self.set_add("eos", true);
                    self.set_add("sep", true);
                    if let Some(c) = config.as_deref_mut() {
                        if special_cls.is_none() {
                            special_cls = processor
                                .get("cls")
                                .and_then(|v| v.get(0))
                                .and_then(Json::as_str)
                                .map(str::to_owned)
                                .or_else(|| special_bos.clone());
                            c.insert("cls_token".into(), Json::from(special_cls.clone()));
                        }
                        if special_sep.is_none() {
                            special_sep = processor
                                .get("sep")
                                .and_then(|v| v.get(0))
                                .and_then(Json::as_str)
                                .map(str::to_owned)
                                .or_else(|| special_eos.clone());
                            c.insert("sep_token".into(), Json::from(special_sep.clone()));
                        }
                    }
                }
                Some("TemplateProcessing") => {
                    let empty = Vec::new();
                    let single = processor
                        .get("single")
                        .and_then(Json::as_array)
                        .unwrap_or(&empty);
                    let mut pair: &[Json] = processor
                        .get("pair")
                        .and_then(Json::as_array)
                        .map(Vec::as_slice)
                        .unwrap_or(&[]);
                    let special_id = |item: &Json| -> Option<String> {
                        item.get("SpecialToken")
                            .and_then(|s| s.get("id"))
                            .and_then(Json::as_str)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                    };
                    let mut special_first = None;
                    let mut special_last = None;
                    if single.len() > 1 {
                        special_first = single.first().and_then(special_id);
                        if let Some(first) = &special_first {
                            if !has_config {
                                special_bos = Some(first.clone());
                            } else if Some(first) != special_bos.as_ref()
                                && Some(first) != special_cls.as_ref()
                            {
                                if let Some(c) = config.as_deref_mut() {
                                    if special_bos.is_none() {
                                        special_bos = Some(first.clone());
                                        c.insert("bos_token".into(), Json::from(first.clone()));
                                    }
                                    if special_cls.is_none() {
                                        special_cls = Some(first.clone());
                                        c.insert("cls_token".into(), Json::from(first.clone()));
                                    }
                                }
                            }
                            let is_bos = Some(first) == special_bos.as_ref()
                                || Some(first) == special_cls.as_ref();
                            self.set_add("bos", is_bos);
                        }
                        special_last = single.last().and_then(special_id);
                        if let Some(last) = &special_last {
                            if !has_config {
                                special_eos = Some(last.clone());
                            } else if Some(last) != special_eos.as_ref() {
                                if let Some(c) = config.as_deref_mut() {
                                    if !kinds.contains(&"eot") {
                                        kinds.push("eot");
                                        c.insert(
                                            "eot_token".into(),
                                            Json::from(special_eos.clone()),
                                        );
                                    } else if !kinds.contains(&"eom") {
                                        kinds.push("eom");
                                        c.insert(
                                            "eom_token".into(),
                                            Json::from(special_eos.clone()),
                                        );
                                    }
                                    special_eos = Some(last.clone());
                                    c.insert("eos_token".into(), Json::from(last.clone()));
                                }
                            }
                            self.set_add("eos", Some(last) == special_eos.as_ref());
                        }
                    }
                    if !pair.is_empty() {
                        let start = usize::from(
                            special_first.is_some()
                                && pair.first().and_then(special_id) == special_first,
                        );
                        let stop_trim = special_last.is_some()
                            && pair.last().and_then(special_id) == special_last;
                        let end = pair.len() - usize::from(stop_trim);
                        pair = pair.get(start..end.max(start)).unwrap_or(&[]);
                        let seq_id = |item: Option<&Json>| {
                            item.and_then(|i| i.get("Sequence"))
                                .and_then(|s| s.get("id"))
                                .and_then(Json::as_str)
                                .map(str::to_owned)
                        };
                        if !pair.is_empty() {
                            let a = seq_id(pair.first());
                            let b = seq_id(pair.last());
                            if a.as_deref() == Some("A")
                                && b.as_deref() == Some("B")
                                && pair.len() > 2
                            {
                                let middle = &pair[1..pair.len() - 1];
                                let is_sep_or_eos = |s: &String| {
                                    Some(s) == special_sep.as_ref()
                                        || Some(s) == special_eos.as_ref()
                                };
                                let mut add_sep = false;
                                if let Some(entry) = middle.first().and_then(special_id) {
                                    if is_sep_or_eos(&entry) && special_last.is_none() {
                                        add_sep = true;
                                    }
                                }
                                if middle.len() == 2 {
                                    if let Some(entry) = middle.get(1).and_then(special_id) {
                                        if is_sep_or_eos(&entry) {
                                            add_sep = true;
                                        }
                                    }
                                }
                                self.set_add("sep", add_sep);
                                if add_sep && special_sep.is_none() {
                                    if let Some(c) = config.as_deref_mut() {
                                        c.insert(
                                            "sep_token".into(),
                                            Json::from(special_eos.clone()),
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// The parts of `tokenizer.json` the special vocabulary needs; the (large) model is skipped
/// while parsing instead of being built as a JSON tree.
#[derive(Debug, serde::Deserialize)]
struct TokenizerJsonLite {
    #[serde(default)]
    added_tokens: Vec<Json>,
    #[serde(default)]
    normalizer: Option<Json>,
    #[serde(default)]
    post_processor: Option<Json>,
}

/// Reads `tokenizer.json`'s added tokens, normalizer and post-processor, if the file exists.
fn read_tokenizer_json_lite(dir: &Path) -> Result<Option<TokenizerJsonLite>, VocabError> {
    let path = dir.join(TOKENIZER_JSON);
    if !path.is_file() {
        return Ok(None);
    }
    let text = read_text(&path)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| VocabError::Hf(HfError::Json { path, source }))
}

fn read_text(path: &Path) -> Result<String, VocabError> {
    std::fs::read_to_string(path).map_err(|source| {
        VocabError::Hf(HfError::Io {
            path: path.to_owned(),
            source,
        })
    })
}

/// llama.cpp's converter's guess that an added token should be a control token.
pub fn looks_special(token: &str) -> bool {
    matches!(token, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (token.starts_with("<|") && token.ends_with("|>"))
        || (token.starts_with("<｜") && token.ends_with("｜>"))
        || (token.starts_with("<unused") && token.ends_with('>'))
}

/// Loads a SentencePiece vocabulary (`tokenizer.model`), padded to `vocab_size` ids.
pub fn load_sentencepiece(dir: &Path, vocab_size: Option<usize>) -> Result<Vocab, VocabError> {
    check_vocab_size(vocab_size)?;
    let model = SentencePieceModel::read(&dir.join(TOKENIZER_MODEL))?;
    let n = vocab_size.unwrap_or(model.pieces.len());
    let mut tokens: Vec<String> = (0..n).map(|i| format!("[PAD{i}]")).collect();
    let mut scores = vec![PAD_SCORE; n];
    let mut types = vec![token_type::UNUSED; n];
    if model.pieces.len() > n {
        tracing::warn!(
            pieces = model.pieces.len(),
            vocab_size = n,
            "tokenizer.model has more pieces than config.json vocab_size; the extra ones are ignored"
        );
    }
    for (id, piece) in model.pieces.iter().enumerate().take(n) {
        tokens[id] = piece.piece.clone();
        scores[id] = piece.score;
        types[id] = match piece.kind {
            PieceType::Unknown => token_type::UNKNOWN,
            PieceType::Control => token_type::CONTROL,
            PieceType::Unused => token_type::UNUSED,
            PieceType::Byte => token_type::BYTE,
            // The converter reads types through SentencePieceProcessor's Is* predicates, which
            // have none for user-defined pieces: they stay NORMAL unless overridden below.
            PieceType::Normal | PieceType::UserDefined => token_type::NORMAL,
        };
    }

    if let Some(added) = read_json_if_exists(&dir.join(ADDED_TOKENS_JSON))? {
        let path = dir.join(ADDED_TOKENS_JSON);
        let map = added.as_object().ok_or_else(|| VocabError::Invalid {
            path: path.clone(),
            reason: "expected an object of token → id".into(),
        })?;
        for (content, id) in map {
            let id = id.as_u64().ok_or_else(|| VocabError::Invalid {
                path: path.clone(),
                reason: format!("id of {content:?} is not a number"),
            })? as usize;
            if id >= n {
                tracing::warn!(id, n, "added token id out of range; ignored");
                continue;
            }
            tokens[id].clone_from(content);
            scores[id] = ADDED_SCORE;
            types[id] = token_type::USER_DEFINED;
        }
    }

    for (id, content, special) in added_tokens_decoder(dir)? {
        if id >= n {
            tracing::warn!(id, n, "added token id out of range; ignored");
            continue;
        }
        if special || looks_special(&content) {
            types[id] = token_type::CONTROL;
            tokens[id] = content;
        } else {
            types[id] = token_type::USER_DEFINED;
            tokens[id] = content.replace(SPM_SPACE, " ");
        }
        scores[id] = ADDED_SCORE;
    }

    let special = SpecialVocab::load(dir, tokens.len())?;
    Ok(Vocab {
        model: "llama",
        pre: "default".to_owned(),
        pre_detection: None,
        tokens,
        scores: Some(scores),
        types,
        merges: Vec::new(),
        add_dummy_prefix: Some(model.add_dummy_prefix),
        special,
    })
}

/// `(id, content, special)` of every added token: `tokenizer_config.json`'s
/// `added_tokens_decoder`, or (if it has none) `tokenizer.json`'s `added_tokens`.
fn added_tokens_decoder(dir: &Path) -> Result<Vec<(usize, String, bool)>, VocabError> {
    let config_path = dir.join(TOKENIZER_CONFIG_JSON);
    if let Some(config) = read_json_if_exists(&config_path)? {
        if let Some(decoder) = config.get("added_tokens_decoder").and_then(Json::as_object) {
            let mut out = Vec::new();
            for (id, data) in decoder {
                let bad = |reason: &str| VocabError::Invalid {
                    path: config_path.clone(),
                    reason: format!("added_tokens_decoder[{id}]: {reason}"),
                };
                let id: usize = id.parse().map_err(|_| bad("the key is not an id"))?;
                let content = data
                    .get("content")
                    .and_then(Json::as_str)
                    .ok_or_else(|| bad("no content"))?;
                let special = data.get("special").and_then(Json::as_bool).unwrap_or(false);
                out.push((id, content.to_owned(), special));
            }
            out.sort_by_key(|(id, _, _)| *id);
            return Ok(out);
        }
    }
    let Some(tokenizer) = read_tokenizer_json_lite(dir)? else {
        return Ok(Vec::new());
    };
    Ok(tokenizer
        .added_tokens
        .iter()
        .filter_map(|t| {
            let id = t.get("id").and_then(Json::as_u64)? as usize;
            let content = t.get("content").and_then(Json::as_str)?.to_owned();
            let special = t.get("special").and_then(Json::as_bool).unwrap_or(false);
            Some((id, content, special))
        })
        .collect())
}

/// Whether a `pre_tokenizer` value is or contains a `ByteLevel` step.
fn has_byte_level(pre: &Json) -> bool {
    match pre.get("type").and_then(Json::as_str) {
        Some("ByteLevel") => true,
        Some("Sequence") => pre
            .get("pretokenizers")
            .and_then(Json::as_array)
            .is_some_and(|items| items.iter().any(has_byte_level)),
        _ => false,
    }
}

/// Loads a byte-level BPE vocabulary from `tokenizer.json`, padded with unused `[PAD{id}]`
/// tokens up to `vocab_size` (the model's embedding rows) when the config says more.
pub fn load_bpe(dir: &Path, vocab_size: Option<usize>) -> Result<Vocab, VocabError> {
    check_vocab_size(vocab_size)?;
    let path = dir.join(TOKENIZER_JSON);
    let json = read_json(&path)?;
    let model = json.get("model").ok_or_else(|| VocabError::Invalid {
        path: path.clone(),
        reason: "no \"model\"".into(),
    })?;
    let model_type = model.get("type").and_then(Json::as_str).unwrap_or("?");
    if model_type != "BPE" {
        return Err(VocabError::NotByteLevelBpe {
            path,
            reason: format!(
                "the tokenizer model is {model_type}, not BPE; only byte-level BPE \
                 (tokenizer.json) and SentencePiece (tokenizer.model) vocabularies are converted"
            ),
        });
    }
    if !json.get("pre_tokenizer").is_some_and(has_byte_level) {
        return Err(VocabError::NotByteLevelBpe {
            path,
            reason: "the BPE tokenizer has no ByteLevel pre-tokenizer (it looks converted from \
                     SentencePiece); put the original tokenizer.model next to it"
                .into(),
        });
    }

    // id → (text, added token info)
    let mut by_id: BTreeMap<u32, (String, Option<(bool, bool)>)> = BTreeMap::new();
    let vocab = model
        .get("vocab")
        .and_then(Json::as_object)
        .ok_or_else(|| VocabError::Invalid {
            path: path.clone(),
            reason: "model.vocab is not an object".into(),
        })?;
    for (token, id) in vocab {
        let id = json_id(id).ok_or_else(|| VocabError::Invalid {
            path: path.clone(),
            reason: format!("the id of token {token:?} is not a valid id"),
        })?;
        by_id.insert(id, (token.clone(), None));
    }
    for added in json
        .get("added_tokens")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(id), Some(content)) = (
            added.get("id").and_then(json_id),
            added.get("content").and_then(Json::as_str),
        ) else {
            return Err(VocabError::Invalid {
                path,
                reason: "an added token lacks an id or content".into(),
            });
        };
        let special = added
            .get("special")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let normalized = added
            .get("normalized")
            .and_then(Json::as_bool)
            .unwrap_or(true);
        by_id.insert(id, (content.to_owned(), Some((special, normalized))));
    }
    let max_id = by_id.keys().next_back().copied().unwrap_or(0);
    let n = vocab_size.unwrap_or(by_id.len());
    if max_id as usize >= n {
        return Err(VocabError::TooManyTokens {
            max_id,
            vocab_size: n,
        });
    }
    // The ids are distinct and at most `max_id`: the holes are counted, not collected.
    let holes = max_id as usize + 1 - by_id.len();
    if holes > 0 {
        return Err(VocabError::Holes {
            count: holes,
            examples: first_missing_ids(by_id.keys().copied(), MAX_HOLE_EXAMPLES),
        });
    }

    let mut tokens = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    for (token, added) in by_id.into_values() {
        match added {
            Some((special, _normalized)) if special || looks_special(&token) => {
                tokens.push(token);
                types.push(token_type::CONTROL);
            }
            Some(_) => {
                tokens.push(token.replace(SPM_SPACE, " "));
                types.push(token_type::USER_DEFINED);
            }
            None => {
                tokens.push(token);
                types.push(token_type::NORMAL);
            }
        }
    }
    for i in tokens.len()..n {
        tokens.push(format!("[PAD{i}]"));
        types.push(token_type::UNUSED);
    }

    let merges = load_merges(dir, &path, model)?;
    let load_err = |reason: String| VocabError::Load {
        path: path.clone(),
        reason,
    };
    let tokenizer = catch_tokenizer_panic("loading it", || tokenizers::Tokenizer::from_file(&path))
        .map_err(load_err)?
        .map_err(|e| load_err(e.to_string()))?;
    let config = read_json_if_exists(&dir.join(TOKENIZER_CONFIG_JSON))?;
    let clean_up = config
        .as_ref()
        .and_then(|c| c.get("clean_up_tokenization_spaces"))
        .and_then(Json::as_bool);
    let pre = pretokenizer::detect(&tokenizer, &json, clean_up)?;
    let special = SpecialVocab::load(dir, tokens.len())?;
    Ok(Vocab {
        model: "gpt2",
        pre: pre.name,
        pre_detection: Some(pre.detection),
        tokens,
        scores: None,
        types,
        merges,
        add_dummy_prefix: None,
        special,
    })
}

/// Refuses a `vocab_size` no real vocabulary has, before it sizes any table.
fn check_vocab_size(vocab_size: Option<usize>) -> Result<(), VocabError> {
    match vocab_size {
        Some(n) if n > MAX_VOCAB_SIZE => Err(VocabError::VocabSizeTooLarge {
            vocab_size: n,
            max: MAX_VOCAB_SIZE,
        }),
        _ => Ok(()),
    }
}

/// The first `limit` ids missing below the largest of `sorted_ids` (ascending, distinct),
/// found by walking the gaps between them.
fn first_missing_ids(sorted_ids: impl Iterator<Item = u32>, limit: usize) -> Vec<u32> {
    let mut missing = Vec::new();
    let mut expected = 0u32;
    for id in sorted_ids {
        missing.extend((expected..id).take(limit - missing.len()));
        if missing.len() >= limit {
            break;
        }
        match id.checked_add(1) {
            Some(next) => expected = next,
            None => break,
        }
    }
    missing
}

fn json_id(v: &Json) -> Option<u32> {
    v.as_u64().and_then(|id| u32::try_from(id).ok())
}

/// Merges as `"a b"`: `model.merges` (strings, or pairs whose spaces are written as U+0120 like
/// gguf-py does), else `merges.txt`.
fn load_merges(dir: &Path, path: &Path, model: &Json) -> Result<Vec<String>, VocabError> {
    let mut merges = Vec::new();
    for merge in model
        .get("merges")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        match merge {
            Json::String(s) => merges.push(s.clone()),
            Json::Array(pair) => {
                let parts: Vec<String> = pair
                    .iter()
                    .filter_map(Json::as_str)
                    .map(|p| p.replace(' ', "\u{0120}"))
                    .collect();
                if parts.len() != 2 || pair.len() != 2 {
                    return Err(VocabError::Invalid {
                        path: path.to_owned(),
                        reason: "a merge is not a pair of strings".into(),
                    });
                }
                merges.push(parts.join(" "));
            }
            _ => {
                return Err(VocabError::Invalid {
                    path: path.to_owned(),
                    reason: "unknown merges format".into(),
                })
            }
        }
    }
    if merges.is_empty() {
        let txt = dir.join("merges.txt");
        if txt.is_file() {
            let text = read_text(&txt)?;
            let mut lines = text.lines().peekable();
            if lines.peek().is_some_and(|l| l.trim().starts_with('#')) {
                lines.next();
            }
            for line in lines {
                let parts: Vec<&str> = line.split_whitespace().collect();
                match parts.as_slice() {
                    [] => {}
                    [a, b] => merges.push(format!("{a} {b}")),
                    _ => tracing::warn!("merges.txt: malformed line ignored"),
                }
            }
        }
    }
    if merges.is_empty() {
        return Err(VocabError::NoMerges {
            path: path.to_owned(),
        });
    }
    Ok(merges)
}

/// Whether the directory has a SentencePiece `tokenizer.model`.
pub fn has_sentencepiece(dir: &Path) -> bool {
    dir.join(TOKENIZER_MODEL).is_file()
}

/// Loads the vocabulary the way the converter chooses: SentencePiece when `tokenizer.model`
/// exists, else byte-level BPE from `tokenizer.json`.
pub fn load(dir: &Path, vocab_size: Option<usize>) -> Result<Vocab, VocabError> {
    if has_sentencepiece(dir) {
        load_sentencepiece(dir, vocab_size)
    } else if dir.join(TOKENIZER_JSON).is_file() {
        load_bpe(dir, vocab_size)
    } else {
        Err(VocabError::NoTokenizer {
            dir: dir.to_owned(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::pretokenizer::tests::byte_level_tokenizer_json;
    use super::*;
    use crate::hf::sentencepiece::tests::tiny_model;
    use serde_json::json;

    fn write(dir: &Path, name: &str, value: &Json) {
        std::fs::write(dir.join(name), value.to_string()).expect("write json");
    }

    fn smollm_like(dir: &Path) {
        let pre = json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
        ]});
        let mut tok = byte_level_tokenizer_json(pre, &[("<|im_start|>", true), ("<tool>", false)]);
        // Pair-form merges with a space, as transformers ≥ 4.45 writes them.
        tok["model"]["merges"] = json!([
            ["Ġ", "t"],
            ["h", "e"],
            ["Ġt", "he"],
            ["3", "3"],
            ["a b", "c"]
        ]);
        tok["model"]["vocab"]["a b"] = json!(260);
        tok["model"]["vocab"]["a bc"] = json!(261);
        tok["added_tokens"][0]["id"] = json!(262);
        tok["added_tokens"][1]["id"] = json!(263);
        write(dir, "tokenizer.json", &tok);
        write(
            dir,
            "tokenizer_config.json",
            &json!({"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_start|>"},
                    "pad_token": null, "add_prefix_space": false,
                    "clean_up_tokenization_spaces": false,
                    "chat_template": "{{ messages }}"}),
        );
        write(dir, "config.json", &json!({"pad_token_id": 5}));
    }

    #[test]
    fn bpe_vocab_tokens_types_merges_and_specials() {
        let dir = tempfile::tempdir().expect("tempdir");
        smollm_like(dir.path());
        let vocab = load(dir.path(), Some(270)).expect("vocab");
        assert_eq!(vocab.model, "gpt2");
        assert_eq!(vocab.pre, "smollm");
        assert_eq!(vocab.pre_detection, Some(Detection::Structure));
        // 256 bytes + 6 merges + 2 added = 264 tokens, padded to 270.
        assert_eq!(vocab.tokens.len(), 270);
        assert_eq!(vocab.tokens[256], "Ġt");
        assert_eq!(vocab.tokens[260], "a b");
        assert_eq!(vocab.types[260], token_type::NORMAL);
        assert_eq!(vocab.tokens[262], "<|im_start|>");
        assert_eq!(vocab.types[262], token_type::CONTROL);
        assert_eq!(vocab.tokens[263], "<tool>");
        assert_eq!(vocab.types[263], token_type::USER_DEFINED);
        assert_eq!(vocab.tokens[264], "[PAD264]");
        assert_eq!(vocab.types[269], token_type::UNUSED);
        assert!(vocab.types[..256].iter().all(|&t| t == token_type::NORMAL));
        assert_eq!(vocab.merges[0], "Ġ t");
        assert_eq!(vocab.merges[4], "a\u{0120}b c");
        assert_eq!(
            vocab.special.ids,
            [
                ("bos".to_owned(), 262),
                ("eos".to_owned(), 262),
                ("pad".to_owned(), 5)
            ]
        );
        // The ByteLevel post-processor adds nothing.
        assert_eq!(
            vocab.special.add,
            [("bos".to_owned(), false), ("eos".to_owned(), false)]
        );
        assert_eq!(
            vocab.special.chat_template,
            Some(ChatTemplate::Single("{{ messages }}".into()))
        );

        let mut md = Metadata::new();
        vocab.write_metadata(&mut md);
        assert_eq!(md.get_str("tokenizer.ggml.model"), Some("gpt2"));
        assert_eq!(md.get_string_array_len("tokenizer.ggml.tokens"), Some(270));
        assert_eq!(md.get_u32("tokenizer.ggml.padding_token_id"), Some(5));
        assert_eq!(md.get_bool("tokenizer.ggml.add_bos_token"), Some(false));
        assert_eq!(
            md.get_str("tokenizer.chat_template"),
            Some("{{ messages }}")
        );
        assert!(!md.contains_key("tokenizer.ggml.scores"));
    }

    #[test]
    fn bpe_holes_and_oversized_vocabularies_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        smollm_like(dir.path());
        let err = load(dir.path(), Some(100)).expect_err("too many tokens");
        assert!(
            matches!(err, VocabError::TooManyTokens { max_id: 263, .. }),
            "{err}"
        );

        let mut tok: Json = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("tokenizer.json")).expect("read"),
        )
        .expect("json");
        tok["added_tokens"][1]["id"] = json!(300);
        write(dir.path(), "tokenizer.json", &tok);
        let err = load(dir.path(), Some(400)).expect_err("hole");
        match err {
            VocabError::Holes { count, examples } => {
                assert_eq!(count, 300 - 263);
                assert_eq!(examples[0], 263);
            }
            other => panic!("expected holes, got {other}"),
        }
    }

    #[test]
    fn template_processing_sets_bos_and_named_templates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pre = json!({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true});
        let mut tok = byte_level_tokenizer_json(pre, &[("<s>", true), ("</s>", true)]);
        tok["post_processor"] = json!({"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {}});
        write(dir.path(), "tokenizer.json", &tok);
        write(
            dir.path(),
            "tokenizer_config.json",
            &json!({"bos_token": "<s>", "eos_token": "</s>", "add_eos_token": false,
                    "chat_template": [{"name": "default", "template": "D"},
                                      {"name": "tool use", "template": "T"}]}),
        );
        let special = SpecialVocab::load(dir.path(), 1000).expect("special");
        assert_eq!(
            special.ids,
            [("bos".to_owned(), 260), ("eos".to_owned(), 261)]
        );
        // Gemma-style: BOS added; the pair template's middle token is not SEP/EOS → no SEP.
        assert_eq!(
            special.add,
            [
                ("bos".to_owned(), true),
                ("sep".to_owned(), false),
                ("eos".to_owned(), false)
            ]
        );
        let mut md = Metadata::new();
        special.write_metadata(&mut md);
        assert_eq!(md.get_str("tokenizer.chat_template"), Some("D"));
        assert_eq!(md.get_str("tokenizer.chat_template.tool_use"), Some("T"));
        assert_eq!(md.get_string_array_len("tokenizer.chat_templates"), Some(1));
    }

    #[test]
    fn sentencepiece_vocab_with_overrides_and_padding() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("tokenizer.model"), tiny_model()).expect("write model");
        write(dir.path(), "added_tokens.json", &json!({"<extra>": 6}));
        write(
            dir.path(),
            "tokenizer_config.json",
            &json!({"added_tokens_decoder": {
                "1": {"content": "<unk>", "special": true},
                "5": {"content": "<user>", "special": false},
                "7": {"content": "<unused0>", "special": false},
                "8": {"content": "a\u{2581}b", "special": false}}}),
        );
        write(
            dir.path(),
            "config.json",
            &json!({"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 99}),
        );
        let vocab = load(dir.path(), Some(10)).expect("vocab");
        assert_eq!(vocab.model, "llama");
        assert_eq!(vocab.pre, "default");
        assert_eq!(vocab.add_dummy_prefix, Some(false));
        let scores = vocab.scores.as_ref().expect("scores");
        assert_eq!(vocab.tokens.len(), 10);
        assert_eq!(
            &vocab.tokens[..],
            &[
                "<pad>",
                "<unk>",
                "<0x41>",
                "▁a",
                "b",
                "<user>",
                "<extra>",
                "<unused0>",
                "a b",
                "[PAD9]"
            ]
        );
        assert_eq!(
            vocab.types,
            [
                token_type::CONTROL,
                token_type::CONTROL, // overridden: special added token
                token_type::BYTE,
                token_type::NORMAL,
                token_type::NORMAL,
                token_type::USER_DEFINED,
                token_type::USER_DEFINED,
                token_type::CONTROL, // looks special
                token_type::USER_DEFINED,
                token_type::UNUSED
            ]
        );
        assert_eq!(scores[3], -1.5);
        assert_eq!(scores[1], ADDED_SCORE);
        assert_eq!(scores[6], ADDED_SCORE);
        assert_eq!(scores[9], PAD_SCORE);
        // pad id 99 is outside the 10-token vocabulary and skipped.
        assert_eq!(
            vocab.special.ids,
            [("bos".to_owned(), 0), ("eos".to_owned(), 1)]
        );
    }

    #[test]
    fn missing_tokenizer_is_explained() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = load(dir.path(), None).expect_err("none");
        assert!(err.to_string().contains("tokenizer.model"), "{err}");
        assert!(looks_special("<|x|>") && looks_special("<unused12>") && !looks_special("<x>"));
    }

    /// A byte-level BPE tokenizer.json the tokenizers library panics on while loading: its
    /// `continuing_subword_prefix` is longer than the right part of the merge `a b`.
    pub(crate) fn panicking_tokenizer_json() -> Json {
        let pre = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                         "use_regex": true});
        let mut tok = byte_level_tokenizer_json(pre, &[]);
        tok["model"]["continuing_subword_prefix"] = json!("##");
        tok["model"]["merges"] = json!(["a b"]);
        tok["model"]["vocab"]["ab"] = json!(260);
        tok
    }

    #[test]
    fn tokenizer_library_panics_are_typed_errors() {
        // Loading panics inside the library (a slice past the end of "b").
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "tokenizer.json", &panicking_tokenizer_json());
        let err = load_bpe(dir.path(), None).expect_err("panicking load");
        assert!(matches!(err, VocabError::Load { .. }), "{err}");
        assert!(err.to_string().contains("panicked"), "{err}");

        // Encoding with a template that names a special token it does not define panics
        // inside the library (an index into a map).
        let pre = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                         "use_regex": true});
        let mut tok = byte_level_tokenizer_json(pre, &[("<s>", true)]);
        tok["post_processor"] = json!({"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {}});
        write(dir.path(), "tokenizer.json", &tok);
        let err = load_bpe(dir.path(), None).expect_err("panicking encode");
        assert!(
            matches!(
                err,
                VocabError::PreTokenizer(PreTokenizerError::Encode(ref m)) if m.contains("panicked")
            ),
            "{err}"
        );
    }

    #[test]
    fn oversized_vocab_sizes_are_refused_before_allocating() {
        let bpe = tempfile::tempdir().expect("tempdir");
        smollm_like(bpe.path());
        let spm = tempfile::tempdir().expect("tempdir");
        std::fs::write(spm.path().join("tokenizer.model"), tiny_model()).expect("write model");
        for dir in [bpe.path(), spm.path()] {
            for vocab_size in [usize::MAX, 9_223_372_036_854_775_807, 1_000_000_000_000] {
                let err = load(dir, Some(vocab_size)).expect_err("too large");
                assert!(
                    matches!(err, VocabError::VocabSizeTooLarge { vocab_size: v, .. } if v == vocab_size),
                    "{err}"
                );
            }
        }
        // A large accepted size still loads (SentencePiece pads up to it).
        let vocab = load(spm.path(), Some(1 << 16)).expect("padded");
        assert_eq!(vocab.tokens.len(), 1 << 16);
    }

    #[test]
    fn holes_are_counted_without_listing_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        smollm_like(dir.path());
        let mut tok: Json = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("tokenizer.json")).expect("read"),
        )
        .expect("json");
        let last = MAX_VOCAB_SIZE - 1;
        tok["added_tokens"][1]["id"] = json!(last);
        write(dir.path(), "tokenizer.json", &tok);
        match load(dir.path(), Some(MAX_VOCAB_SIZE)).expect_err("holes") {
            VocabError::Holes { count, examples } => {
                // Ids 0..=263 but 263 itself moved to the end: 263..last are missing.
                assert_eq!(count, last - 263);
                assert_eq!(examples, (263..273).collect::<Vec<u32>>());
            }
            other => panic!("expected holes, got {other}"),
        }

        assert_eq!(
            first_missing_ids([0, u32::MAX].into_iter(), 3),
            [1, 2, 3],
            "a gap up to the largest id"
        );
        assert_eq!(
            first_missing_ids([u32::MAX].into_iter(), 2),
            [0, 1],
            "no overflow after u32::MAX"
        );
        assert!(first_missing_ids([0, 1, 2].into_iter(), 10).is_empty());
    }
}
