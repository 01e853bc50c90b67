//! The GGUF vocabulary ([`GgufVocab`]) rebuilt as Hugging Face tokenizer files:
//! `tokenizer.json` (built with the `tokenizers` crate itself, so it loads and serialises
//! exactly like files made by the Python library), `tokenizer_config.json` and
//! `special_tokens_map.json`.
//!
//! - `tokenizer.ggml.model = "gpt2"` (byte-level BPE): vocabulary and merges as stored; the
//!   pre-tokenizer is chosen by `tokenizer.ggml.pre` to split text the way llama.cpp does
//!   (`llama-vocab.cpp`), spelled the way the original model's `tokenizer.json` spells it.
//! - `tokenizer.ggml.model = "llama"` (SentencePiece BPE, e.g. Gemma 3): a BPE model with
//!   byte fallback whose merges are derived from the piece scores the way Hugging Face's
//!   `SentencePieceExtractor` derives them; the SentencePiece `tokenizer.model` itself is
//!   written by [`super::sentencepiece`].
//!
//! Control, user-defined and unknown tokens become added tokens (`special` for control and
//! unknown), so they are matched in text before the model runs, as llama.cpp matches them.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Map, Value as Json};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{NormalizerWrapper, Prepend, Replace, Sequence as NormSequence, NFC};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::sequence::Sequence as PostSequence;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};
use vazhi_gguf::{ArrayData, Metadata};

use super::ImportError;
use crate::arch::gguf_metadata::token_id;

/// GGUF token type: a normal piece.
pub const TOKEN_NORMAL: i32 = 1;
/// GGUF token type: the unknown token.
pub const TOKEN_UNKNOWN: i32 = 2;
/// GGUF token type: a control token (`<bos>`, `<|im_start|>`, ...).
pub const TOKEN_CONTROL: i32 = 3;
/// GGUF token type: a user-defined token, always matched as a whole.
pub const TOKEN_USER_DEFINED: i32 = 4;
/// GGUF token type: an unused slot.
pub const TOKEN_UNUSED: i32 = 5;
/// GGUF token type: a byte-fallback token `<0xNN>`.
pub const TOKEN_BYTE: i32 = 6;

/// The SentencePiece whitespace marker (U+2581).
pub const SPM_SPACE: &str = "\u{2581}";

/// llama.cpp's Llama 3 split regex as the original `tokenizer.json` states it.
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's split regex as the original `tokenizer.json` states it.
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How a byte-level BPE vocabulary splits text before merging (`tokenizer.ggml.pre`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BpePre {
    /// GPT-2's regex alone (`gpt-2`).
    Gpt2,
    /// Every digit alone, then GPT-2's regex (`smollm`, `starcoder`, `refact`).
    DigitsGpt2,
    /// Llama 3's regex (`llama-bpe`), with `ignore_merges`.
    Llama3,
    /// Qwen2's regex after NFC (`qwen2`).
    Qwen2,
}

/// `(tokenizer.ggml.pre names, pre-tokenizer)`.
const BPE_PRES: &[(&[&str], BpePre)] = &[
    (&["gpt-2", "gpt2", "phi-2"], BpePre::Gpt2),
    (&["smollm", "starcoder", "refact"], BpePre::DigitsGpt2),
    (&["llama-bpe", "llama3", "llama-v3"], BpePre::Llama3),
    (&["qwen2", "deepseek-r1-qwen"], BpePre::Qwen2),
];

impl BpePre {
    /// The pre-tokenizer for a `tokenizer.ggml.pre` value.
    pub fn from_gguf(name: &str) -> Option<BpePre> {
        BPE_PRES
            .iter()
            .find(|(names, _)| names.contains(&name))
            .map(|&(_, pre)| pre)
    }

    fn supported_list() -> String {
        BPE_PRES
            .iter()
            .flat_map(|(names, _)| names.iter().copied())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Which tokenizer algorithm the vocabulary uses.
#[derive(Debug, Clone, PartialEq)]
pub enum VocabKind {
    /// Byte-level BPE (`tokenizer.ggml.model = "gpt2"`).
    Bpe {
        /// How text is split before merging.
        pre: BpePre,
        /// Merge rules, highest priority first.
        merges: Vec<(String, String)>,
    },
    /// SentencePiece BPE (`tokenizer.ggml.model = "llama"`).
    Spm {
        /// Piece scores (higher merges first).
        scores: Vec<f32>,
        /// Whether a space is prepended to the text (`add_dummy_prefix`).
        add_space_prefix: bool,
    },
}

/// A GGUF vocabulary with its special tokens and flags.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufVocab {
    /// Algorithm and its data.
    pub kind: VocabKind,
    /// Token texts by id (as llama.cpp stores them: byte-level encoded for BPE, `▁` for
    /// spaces in SentencePiece pieces, plain text for control and user-defined tokens).
    pub tokens: Vec<String>,
    /// GGUF token types by id (`TOKEN_*`).
    pub types: Vec<i32>,
    /// Beginning-of-sequence token.
    pub bos: Option<u32>,
    /// End-of-sequence token.
    pub eos: Option<u32>,
    /// Padding token.
    pub pad: Option<u32>,
    /// Unknown token.
    pub unk: Option<u32>,
    /// End-of-turn token, when stated.
    pub eot: Option<u32>,
    /// Whether encoding prepends `bos`.
    pub add_bos: bool,
    /// Whether encoding appends `eos`.
    pub add_eos: bool,
    /// The Jinja chat template.
    pub chat_template: Option<String>,
}

fn bad(key: &str, problem: impl Into<String>) -> ImportError {
    ImportError::BadMetadata {
        key: key.to_owned(),
        problem: problem.into(),
    }
}

fn string_array(metadata: &Metadata, key: &str) -> Result<Vec<String>, ImportError> {
    let array = metadata
        .get_array(key)
        .ok_or_else(|| ImportError::MissingMetadata { key: key.into() })?;
    let strings = array
        .as_strings()
        .ok_or_else(|| bad(key, "is not an array of strings"))?;
    strings
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.as_str()
                .map(str::to_owned)
                .ok_or_else(|| bad(key, format!("entry {i} is not valid UTF-8")))
        })
        .collect()
}

impl GgufVocab {
    /// Reads the `tokenizer.ggml.*` keys.
    pub fn from_metadata(metadata: &Metadata) -> Result<GgufVocab, ImportError> {
        let model_key = "tokenizer.ggml.model";
        let model = metadata
            .get_str(model_key)
            .ok_or_else(|| ImportError::MissingMetadata {
                key: model_key.into(),
            })?;
        let tokens = string_array(metadata, "tokenizer.ggml.tokens")?;
        let n = tokens.len();
        if n == 0 {
            return Err(bad("tokenizer.ggml.tokens", "is empty"));
        }
        let types = match metadata.get_array("tokenizer.ggml.token_type") {
            None => vec![TOKEN_NORMAL; n],
            Some(a) => {
                let types: Vec<i32> = a
                    .iter()
                    .map(|v| v.as_i64().and_then(|x| i32::try_from(x).ok()))
                    .collect::<Option<_>>()
                    .ok_or_else(|| bad("tokenizer.ggml.token_type", "is not integers"))?;
                if types.len() != n {
                    return Err(bad(
                        "tokenizer.ggml.token_type",
                        format!("has {} entries for {n} tokens", types.len()),
                    ));
                }
                types
            }
        };
        let kind = match model {
            "gpt2" => {
                let pre_name = metadata.get_str("tokenizer.ggml.pre").unwrap_or("default");
                let pre = BpePre::from_gguf(pre_name).ok_or_else(|| {
                    bad(
                        "tokenizer.ggml.pre",
                        format!(
                            "pre-tokenizer {pre_name:?} is not supported (supported: {})",
                            BpePre::supported_list()
                        ),
                    )
                })?;
                let merges = string_array(metadata, "tokenizer.ggml.merges")?
                    .into_iter()
                    .enumerate()
                    .map(|(i, m)| split_merge(&m).ok_or(i))
                    .collect::<Result<Vec<_>, usize>>()
                    .map_err(|i| {
                        bad(
                            "tokenizer.ggml.merges",
                            format!("entry {i} is not two tokens separated by a space"),
                        )
                    })?;
                VocabKind::Bpe { pre, merges }
            }
            "llama" => {
                let key = "tokenizer.ggml.scores";
                let scores = match metadata.get_array(key).map(|a| a.data()) {
                    Some(ArrayData::F32(s)) if s.len() == n => s.clone(),
                    Some(_) => return Err(bad(key, format!("is not {n} f32 scores"))),
                    None => return Err(ImportError::MissingMetadata { key: key.into() }),
                };
                VocabKind::Spm {
                    scores,
                    add_space_prefix: metadata
                        .get_bool("tokenizer.ggml.add_space_prefix")
                        .unwrap_or(true),
                }
            }
            other => {
                return Err(bad(
                    model_key,
                    format!("tokenizer model {other:?} is not supported (supported: gpt2, llama)"),
                ))
            }
        };
        let default_add_bos = match &kind {
            VocabKind::Spm { .. } => true,
            VocabKind::Bpe { pre, .. } => *pre == BpePre::Llama3,
        };
        let id = |key: &str| token_id(metadata, key, n).map_err(ImportError::from);
        Ok(GgufVocab {
            kind,
            bos: id("tokenizer.ggml.bos_token_id")?,
            eos: id("tokenizer.ggml.eos_token_id")?,
            pad: id("tokenizer.ggml.padding_token_id")?,
            unk: id("tokenizer.ggml.unknown_token_id")?,
            eot: id("tokenizer.ggml.eot_token_id")?,
            add_bos: metadata
                .get_bool("tokenizer.ggml.add_bos_token")
                .unwrap_or(default_add_bos),
            add_eos: metadata
                .get_bool("tokenizer.ggml.add_eos_token")
                .unwrap_or(false),
            chat_template: metadata
                .get_str("tokenizer.chat_template")
                .map(str::to_owned),
            tokens,
            types,
        })
    }

    /// Whether this is a SentencePiece vocabulary.
    pub fn is_spm(&self) -> bool {
        matches!(self.kind, VocabKind::Spm { .. })
    }

    fn text(&self, id: Option<u32>) -> Option<&str> {
        id.and_then(|i| self.tokens.get(i as usize))
            .map(String::as_str)
    }

    fn token_type(&self, id: usize) -> i32 {
        self.types.get(id).copied().unwrap_or(TOKEN_NORMAL)
    }

    /// Ids that become added tokens, with whether each is special: control and unknown
    /// tokens (special), user-defined tokens (special only when they are bos/eos/pad/unk).
    /// These are exactly the tokens llama.cpp matches in text before tokenizing; a normal
    /// token stays normal even when it doubles as, say, the padding token.
    pub fn added_token_ids(&self) -> Vec<(u32, bool)> {
        let named = [self.bos, self.eos, self.pad, self.unk];
        (0..self.tokens.len())
            .filter_map(|i| match self.token_type(i) {
                TOKEN_CONTROL | TOKEN_UNKNOWN => Some((i as u32, true)),
                TOKEN_USER_DEFINED => Some((i as u32, named.contains(&Some(i as u32)))),
                _ => None,
            })
            .filter(|&(i, _)| !self.tokens[i as usize].is_empty())
            .collect()
    }

    /// End-of-turn tokens worth stopping generation on besides `eos`: the stated
    /// `eot_token_id` and the chat-turn ends llama.cpp recognises by text.
    pub fn end_of_turn_ids(&self) -> Vec<u32> {
        const TURN_ENDS: [&str; 3] = ["<end_of_turn>", "<|eot_id|>", "<|im_end|>"];
        let mut ids: Vec<u32> = self.eot.into_iter().collect();
        for (i, text) in self.tokens.iter().enumerate() {
            let control = matches!(self.token_type(i), TOKEN_CONTROL | TOKEN_USER_DEFINED);
            if control && TURN_ENDS.contains(&text.as_str()) && !ids.contains(&(i as u32)) {
                ids.push(i as u32);
            }
        }
        ids
    }

    /// Builds the Hugging Face tokenizer (model, normalizer, pre-tokenizer, post-processor,
    /// decoder and added tokens).
    pub fn build_tokenizer(&self) -> Result<Tokenizer, ImportError> {
        let span = tracing::debug_span!("build_tokenizer", tokens = self.tokens.len());
        let _guard = span.enter();
        let vocab = self.hf_vocab()?;
        let tok_err = |what: &str, e: tokenizers::Error| ImportError::Tokenizer {
            problem: format!("{what}: {e}"),
        };
        let mut tokenizer = match &self.kind {
            VocabKind::Bpe { pre, merges } => {
                let model = BPE::builder()
                    .vocab_and_merges(vocab, merges.clone())
                    .ignore_merges(*pre == BpePre::Llama3)
                    .build()
                    .map_err(|e| tok_err("BPE model", e))?;
                let mut t = Tokenizer::new(model);
                let (pre_tok, post, decoder) = bpe_pipeline(*pre, self.template()?)?;
                if *pre == BpePre::Qwen2 {
                    t.with_normalizer(Some(NFC));
                }
                t.with_pre_tokenizer(Some(pre_tok));
                t.with_post_processor(Some(post));
                t.with_decoder(Some(decoder));
                t
            }
            VocabKind::Spm {
                scores,
                add_space_prefix,
            } => {
                let merges = spm_merges(&self.tokens, scores);
                let mut builder = BPE::builder()
                    .vocab_and_merges(vocab, merges)
                    .byte_fallback(true)
                    .fuse_unk(true);
                if let Some(unk) = self.text(self.unk) {
                    builder = builder.unk_token(unk.to_owned());
                }
                let model = builder.build().map_err(|e| tok_err("BPE model", e))?;
                let mut t = Tokenizer::new(model);
                let replace = Replace::new(" ", SPM_SPACE).map_err(|e| tok_err("normalizer", e))?;
                if *add_space_prefix {
                    t.with_normalizer(Some(NormSequence::new(vec![
                        NormalizerWrapper::from(Prepend::new(SPM_SPACE.to_owned())),
                        NormalizerWrapper::from(replace),
                    ])));
                } else {
                    t.with_normalizer(Some(replace));
                }
                let mut decoders = vec![
                    DecoderWrapper::from(
                        Replace::new(SPM_SPACE, " ").map_err(|e| tok_err("decoder", e))?,
                    ),
                    DecoderWrapper::from(ByteFallback::new()),
                    DecoderWrapper::from(Fuse::new()),
                ];
                if *add_space_prefix {
                    decoders.push(DecoderWrapper::from(Strip::new(' ', 1, 0)));
                }
                t.with_decoder(Some(DecoderSequence::new(decoders)));
                if let Some(template) = self.template()? {
                    t.with_post_processor(Some(template));
                }
                t
            }
        };
        let added: Vec<AddedToken> = self
            .added_token_ids()
            .into_iter()
            .map(|(id, special)| {
                AddedToken::from(self.tokens[id as usize].clone(), special).normalized(false)
            })
            .collect();
        tokenizer.add_tokens(&added);
        // Every added token must keep its GGUF id: its text is a vocabulary entry.
        for (id, _) in self.added_token_ids() {
            let text = &self.tokens[id as usize];
            if tokenizer.token_to_id(text) != Some(id) {
                return Err(ImportError::Tokenizer {
                    problem: format!(
                        "added token {text:?} would not keep id {id} (duplicate token text?)"
                    ),
                });
            }
        }
        Ok(tokenizer)
    }

    /// The vocabulary map: every token text to its id. Unused BPE padding slots
    /// (`[PAD123]`, which converters generate to fill the embedding) are left out.
    fn hf_vocab(&self) -> Result<Vocab, ImportError> {
        let mut vocab: HashMap<&str, u32> = HashMap::with_capacity(self.tokens.len());
        for (i, text) in self.tokens.iter().enumerate() {
            if !self.is_spm() && self.token_type(i) == TOKEN_UNUSED && *text == format!("[PAD{i}]")
            {
                continue;
            }
            if text.is_empty() {
                continue;
            }
            if let Some(previous) = vocab.insert(text, i as u32) {
                return Err(ImportError::Tokenizer {
                    problem: format!(
                        "tokens {previous} and {i} are both {text:?}; a Hugging Face \
                         vocabulary needs unique token texts"
                    ),
                });
            }
        }
        Ok(vocab.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// The bos/eos template, when the vocabulary adds either.
    fn template(&self) -> Result<Option<TemplateProcessing>, ImportError> {
        let bos = self.text(self.bos).filter(|_| self.add_bos);
        let eos = self.text(self.eos).filter(|_| self.add_eos);
        if bos.is_none() && eos.is_none() {
            return Ok(None);
        }
        let mut single: Vec<String> = Vec::new();
        let mut pair: Vec<String> = Vec::new();
        let mut specials: Vec<(String, u32)> = Vec::new();
        for (seq, type_id) in [("$A", 0), ("$B", 1)] {
            if let (Some(b), Some(id)) = (bos, self.bos) {
                pair.push(format!("{b}:{type_id}"));
                if type_id == 0 {
                    single.push(format!("{b}:0"));
                    specials.push((b.to_owned(), id));
                }
            }
            pair.push(format!("{seq}:{type_id}"));
            if type_id == 0 {
                single.push("$A:0".to_owned());
            }
            if let (Some(e), Some(id)) = (eos, self.eos) {
                pair.push(format!("{e}:{type_id}"));
                if type_id == 0 {
                    single.push(format!("{e}:0"));
                    specials.push((e.to_owned(), id));
                }
            }
        }
        specials.dedup();
        let err = |e: String| ImportError::Tokenizer {
            problem: format!("bos/eos template: {e}"),
        };
        TemplateProcessing::builder()
            .try_single(single)
            .map_err(err)?
            .try_pair(pair)
            .map_err(err)?
            .special_tokens(specials)
            .build()
            .map(Some)
            .map_err(|e| err(e.to_string()))
    }

    fn special_entry(&self, id: Option<u32>) -> Option<Json> {
        self.text(id).map(|content| {
            json!({
                "content": content,
                "lstrip": false,
                "normalized": false,
                "rstrip": false,
                "single_word": false,
            })
        })
    }

    /// `special_tokens_map.json`.
    pub fn special_tokens_map(&self) -> Json {
        let mut m = Map::new();
        for (key, id) in [
            ("bos_token", self.bos),
            ("eos_token", self.eos),
            ("pad_token", self.pad),
            ("unk_token", self.unk),
        ] {
            if let Some(entry) = self.special_entry(id) {
                m.insert(key.to_owned(), entry);
            }
        }
        Json::Object(m)
    }

    /// `tokenizer_config.json` for a model trained on `model_max_length` tokens; `gemma`
    /// picks `GemmaTokenizer` over `LlamaTokenizer` for SentencePiece vocabularies.
    pub fn tokenizer_config(&self, model_max_length: u64, gemma: bool) -> Json {
        let mut c = Map::new();
        let mut decoder = BTreeMap::new();
        for (id, special) in self.added_token_ids() {
            decoder.insert(
                id,
                json!({
                    "content": self.tokens[id as usize],
                    "lstrip": false,
                    "normalized": false,
                    "rstrip": false,
                    "single_word": false,
                    "special": special,
                }),
            );
        }
        let decoder: Map<String, Json> = decoder
            .into_iter()
            .map(|(id, v)| (id.to_string(), v))
            .collect();
        c.insert("added_tokens_decoder".into(), Json::Object(decoder));
        c.insert("add_bos_token".into(), json!(self.add_bos));
        c.insert("add_eos_token".into(), json!(self.add_eos));
        for (key, id) in [
            ("bos_token", self.bos),
            ("eos_token", self.eos),
            ("pad_token", self.pad),
            ("unk_token", self.unk),
        ] {
            c.insert(key.into(), json!(self.text(id)));
        }
        if let Some(template) = &self.chat_template {
            c.insert("chat_template".into(), json!(template));
        }
        c.insert("model_max_length".into(), json!(model_max_length));
        let (class, clean_up) = match &self.kind {
            VocabKind::Spm { .. } if gemma => ("GemmaTokenizer", false),
            VocabKind::Spm { .. } => ("LlamaTokenizer", false),
            VocabKind::Bpe { pre, .. } => match pre {
                BpePre::Gpt2 => ("GPT2Tokenizer", true),
                // SmolLM2's own config says GPT2Tokenizer, but transformers 5 rebuilds that
                // class's pipeline without the digit split; the generic class keeps
                // tokenizer.json's pipeline as written (in transformers 4 and 5).
                BpePre::DigitsGpt2 => ("PreTrainedTokenizerFast", false),
                BpePre::Llama3 => ("PreTrainedTokenizerFast", true),
                BpePre::Qwen2 => ("Qwen2Tokenizer", false),
            },
        };
        c.insert("tokenizer_class".into(), json!(class));
        c.insert("clean_up_tokenization_spaces".into(), json!(clean_up));
        match &self.kind {
            // No `add_prefix_space` here: `transformers` rebuilds a fast Llama/Gemma tokenizer
            // from `tokenizer.model` whenever that key is set.
            VocabKind::Spm { .. } => {
                c.insert("sp_model_kwargs".into(), json!({}));
                c.insert("spaces_between_special_tokens".into(), json!(false));
            }
            VocabKind::Bpe { .. } => {
                c.insert("add_prefix_space".into(), json!(false));
            }
        }
        Json::Object(c)
    }
}

/// Splits a GGUF merge rule `"left right"` at the first space after its first character (as
/// llama.cpp does).
fn split_merge(rule: &str) -> Option<(String, String)> {
    let first_len = rule.chars().next()?.len_utf8();
    let pos = rule[first_len..].find(' ')? + first_len;
    let (left, right) = (&rule[..pos], &rule[pos + 1..]);
    (!right.is_empty()).then(|| (left.to_owned(), right.to_owned()))
}

/// Byte-level BPE pre-tokenizer, post-processor and decoder for `pre`, as the original
/// models' `tokenizer.json` files have them.
fn bpe_pipeline(
    pre: BpePre,
    template: Option<TemplateProcessing>,
) -> Result<(PreTokenizerWrapper, PostProcessorWrapper, DecoderWrapper), ImportError> {
    let split = |regex: &str| {
        Split::new(
            SplitPattern::Regex(regex.to_owned()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| ImportError::Tokenizer {
            problem: format!("split regex: {e}"),
        })
    };
    let (pre_tokenizer, post, decoder): (PreTokenizerWrapper, ByteLevel, ByteLevel) = match pre {
        BpePre::Gpt2 => (
            ByteLevel::new(false, true, true).into(),
            ByteLevel::new(true, false, true),
            ByteLevel::new(true, true, true),
        ),
        BpePre::DigitsGpt2 => (
            PreSequence::new(vec![
                Digits::new(true).into(),
                ByteLevel::new(false, true, true).into(),
            ])
            .into(),
            ByteLevel::new(true, false, true),
            ByteLevel::new(true, true, true),
        ),
        BpePre::Llama3 => (
            PreSequence::new(vec![
                split(LLAMA3_REGEX)?.into(),
                ByteLevel::new(false, true, false).into(),
            ])
            .into(),
            ByteLevel::new(true, false, true),
            ByteLevel::new(true, true, true),
        ),
        BpePre::Qwen2 => (
            PreSequence::new(vec![
                split(QWEN2_REGEX)?.into(),
                ByteLevel::new(false, false, false).into(),
            ])
            .into(),
            ByteLevel::new(false, false, false),
            ByteLevel::new(false, false, false),
        ),
    };
    let post: PostProcessorWrapper = match template {
        None => post.into(),
        Some(t) => PostSequence::new(vec![post.into(), t.into()]).into(),
    };
    Ok((pre_tokenizer, post, decoder.into()))
}

/// Longest piece (in bytes) [`spm_merges`] derives merges for. Trying every split of a piece
/// costs time quadratic in its length, and a GGUF string may be 16 MiB long. SentencePiece's
/// trainer caps pieces at `max_piece_length` characters (16 by default); the longest
/// mergeable piece of Gemma 3's 262 144-token vocabulary is 48 bytes. A longer piece keeps
/// its id and still decodes, but no merge builds it, so text containing it tokenizes into
/// its parts instead.
pub const MAX_MERGED_PIECE_BYTES: usize = 256;

/// BPE merges equivalent to SentencePiece's score-driven merging, derived like Hugging
/// Face's `SentencePieceExtractor` / `generate_merges`: every split of every piece into two
/// pieces of the vocabulary is a merge; merges are ordered by the merged piece's score
/// (highest first), then by longer left part, longer right part, then piece id and the ids
/// of the parts. Pieces longer than [`MAX_MERGED_PIECE_BYTES`] get no merges.
pub fn spm_merges(tokens: &[String], scores: &[f32]) -> Vec<(String, String)> {
    let span = tracing::debug_span!("spm_merges", pieces = tokens.len());
    let _guard = span.enter();
    let mut vocab: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        vocab.entry(t.as_str()).or_insert(i);
    }
    // (score, left chars, right chars, piece id, left id, right id, split byte offset)
    let mut merges: Vec<(f32, usize, usize, usize, usize, usize, usize)> = Vec::new();
    let mut too_long = 0usize;
    for (piece_id, piece) in tokens.iter().enumerate() {
        if vocab.get(piece.as_str()) != Some(&piece_id) {
            continue; // a duplicate text: the first id owns it
        }
        if piece.len() > MAX_MERGED_PIECE_BYTES {
            too_long += 1;
            continue;
        }
        let score = scores.get(piece_id).copied().unwrap_or(0.0);
        let n_chars = piece.chars().count();
        for (n_left, (at, _)) in piece.char_indices().enumerate().skip(1) {
            let (left, right) = piece.split_at(at);
            if let (Some(&l), Some(&r)) = (vocab.get(left), vocab.get(right)) {
                merges.push((score, n_left, n_chars - n_left, piece_id, l, r, at));
            }
        }
    }
    if too_long > 0 {
        tracing::warn!(
            pieces = too_long,
            max_bytes = MAX_MERGED_PIECE_BYTES,
            "pieces longer than the merge limit get no BPE merge; text containing them \
             tokenizes into shorter pieces"
        );
    }
    merges.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(b.1.cmp(&a.1))
            .then(b.2.cmp(&a.2))
            .then(a.3.cmp(&b.3))
            .then(a.4.cmp(&b.4))
            .then(a.5.cmp(&b.5))
    });
    merges
        .into_iter()
        .map(|(_, _, _, piece_id, _, _, at)| {
            let (l, r) = tokens[piece_id].split_at(at);
            (l.to_owned(), r.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vazhi_gguf::Array;

    #[test]
    fn merge_rules_split_like_llama_cpp() {
        assert_eq!(split_merge("Ġ t"), Some(("Ġ".into(), "t".into())));
        assert_eq!(split_merge("  x"), Some((" ".into(), "x".into())));
        assert_eq!(split_merge("ab"), None);
        assert_eq!(split_merge("a "), None);
        assert_eq!(split_merge(""), None);
    }

    #[test]
    fn long_pieces_get_no_merges() {
        let left = "a".repeat(150);
        let right = "b".repeat(151);
        let huge = "c".repeat(1 << 20);
        let tokens: Vec<String> = vec![
            "a".into(),
            "b".into(),
            "ab".into(),
            left.clone(),
            right.clone(),
            format!("{left}{right}"),
            "c".into(),
            huge.clone(),
        ];
        let scores = vec![0.0; tokens.len()];
        // The 1 MiB piece used to cost 2^20 splits hashing up to 1 MiB each.
        let merges = spm_merges(&tokens, &scores);
        assert_eq!(merges, [("a".to_owned(), "b".to_owned())]);
        assert!(left.len() + right.len() > MAX_MERGED_PIECE_BYTES);
        assert!(merges
            .iter()
            .all(|(l, r)| l.len() + r.len() <= MAX_MERGED_PIECE_BYTES));
    }

    #[test]
    fn spm_merges_follow_scores() {
        // Pieces: a b c ab bc abc; scores make "bc" merge before "ab", "abc" last.
        let tokens: Vec<String> = ["a", "b", "c", "ab", "bc", "abc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let scores = [0.0, 0.0, 0.0, -2.0, -1.0, -3.0];
        let merges = spm_merges(&tokens, &scores);
        let pairs: Vec<(&str, &str)> = merges
            .iter()
            .map(|(l, r)| (l.as_str(), r.as_str()))
            .collect();
        // "abc" splits two ways; the longer left part comes first.
        assert_eq!(pairs, [("b", "c"), ("a", "b"), ("ab", "c"), ("a", "bc")]);
    }

    fn spm_vocab() -> GgufVocab {
        // A tiny Gemma-like vocabulary.
        let tokens = [
            "<pad>",
            "<eos>",
            "<bos>",
            "<unk>",
            "<start_of_turn>",
            "  ",
            "<0x41>",
            "<0xE0>",
            "<0xAE>",
            "<0xA4>",
            "▁",
            "h",
            "e",
            "l",
            "o",
            "he",
            "ll",
            "hell",
            "hello",
            "▁hello",
            "w",
            "▁w",
        ];
        let types = [
            3, 3, 3, 3, 3, 4, 6, 6, 6, 6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        ];
        let scores: Vec<f32> = (0..tokens.len())
            .map(|i| if types[i] == 1 { -(i as f32) } else { 0.0 })
            .collect();
        let mut m = Metadata::new();
        m.insert("tokenizer.ggml.model", "llama");
        m.insert("tokenizer.ggml.tokens", Array::from(tokens.to_vec()));
        m.insert("tokenizer.ggml.token_type", Array::from(types.to_vec()));
        m.insert("tokenizer.ggml.scores", Array::from(scores));
        m.insert("tokenizer.ggml.bos_token_id", 2u32);
        m.insert("tokenizer.ggml.eos_token_id", 1u32);
        m.insert("tokenizer.ggml.unknown_token_id", 3u32);
        m.insert("tokenizer.ggml.padding_token_id", 0u32);
        m.insert("tokenizer.ggml.add_space_prefix", false);
        GgufVocab::from_metadata(&m).expect("vocab")
    }

    #[test]
    fn spm_tokenizer_encodes_with_merges_specials_and_byte_fallback() {
        let vocab = spm_vocab();
        assert!(vocab.add_bos && !vocab.add_eos);
        let tokenizer = vocab.build_tokenizer().expect("build");
        let json = tokenizer.to_string(false).expect("serialise");
        let tokenizer = json.parse::<Tokenizer>().expect("reload");
        let ids = |text: &str| {
            tokenizer
                .encode(text, true)
                .expect("encode")
                .get_ids()
                .to_vec()
        };
        // <bos> added; "hello" merges fully; " w" → "▁w"; "A" falls back to its byte;
        // "த" (U+0BA4 = E0 AE A4) falls back to three bytes; "  " is a user-defined token;
        // "<start_of_turn>" is matched as a special token.
        assert_eq!(ids("hello"), [2, 18]);
        assert_eq!(ids(" hello w"), [2, 19, 21]);
        assert_eq!(ids("A"), [2, 6]);
        assert_eq!(ids("த"), [2, 7, 8, 9]);
        assert_eq!(ids("<start_of_turn>hello  w"), [2, 4, 18, 5, 20]);
        let decoded = tokenizer.decode(&[18, 21, 7, 8, 9], false).expect("decode");
        assert_eq!(decoded, "hello wத");
    }

    #[test]
    fn bpe_tokenizer_smollm_style() {
        let tokens = [
            "<|endoftext|>",
            "<|im_start|>",
            "<|im_end|>",
            "1",
            "2",
            "h",
            "i",
            "Ġ",
            "hi",
            "Ġh",
            "Ġhi",
            "12",
            "[PAD12]",
        ];
        let mut m = Metadata::new();
        m.insert("tokenizer.ggml.model", "gpt2");
        m.insert("tokenizer.ggml.pre", "smollm");
        m.insert("tokenizer.ggml.tokens", Array::from(tokens.to_vec()));
        m.insert(
            "tokenizer.ggml.token_type",
            Array::from(vec![3i32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5]),
        );
        m.insert(
            "tokenizer.ggml.merges",
            Array::from(vec!["Ġ h", "h i", "Ġh i", "1 2"]),
        );
        m.insert("tokenizer.ggml.bos_token_id", 1u32);
        m.insert("tokenizer.ggml.eos_token_id", 2u32);
        m.insert("tokenizer.ggml.add_bos_token", false);
        m.insert("tokenizer.chat_template", "{{ messages }}");
        let vocab = GgufVocab::from_metadata(&m).expect("vocab");
        let tokenizer = vocab.build_tokenizer().expect("build");
        let json = tokenizer.to_string(true).expect("serialise");
        let tokenizer = json.parse::<Tokenizer>().expect("reload");
        let enc = tokenizer
            .encode("<|im_start|>hi hi12", true)
            .expect("encode");
        // Digits are split one by one, so the "1 2" merge never applies.
        assert_eq!(enc.get_ids(), [1, 8, 10, 3, 4]);
        assert_eq!(tokenizer.get_vocab_size(false), 12, "[PAD12] left out");
        let config = vocab.tokenizer_config(8192, false);
        assert_eq!(config["chat_template"], json!("{{ messages }}"));
        assert_eq!(config["bos_token"], json!("<|im_start|>"));
        assert_eq!(config["added_tokens_decoder"]["2"]["special"], json!(true));
        assert_eq!(config["tokenizer_class"], json!("PreTrainedTokenizerFast"));
        assert_eq!(vocab.end_of_turn_ids(), [2]);
    }

    #[test]
    fn unsupported_vocabularies_are_named() {
        let mut m = Metadata::new();
        m.insert("tokenizer.ggml.model", "gpt2");
        m.insert("tokenizer.ggml.pre", "deepseek-llm");
        m.insert("tokenizer.ggml.tokens", Array::from(vec!["a"]));
        m.insert("tokenizer.ggml.merges", Array::from(Vec::<&str>::new()));
        let err = GgufVocab::from_metadata(&m).expect_err("pre");
        assert!(err.to_string().contains("deepseek-llm"), "{err}");
        assert!(err.to_string().contains("smollm"), "{err}");
        m.insert("tokenizer.ggml.model", "t5");
        let err = GgufVocab::from_metadata(&m).expect_err("t5");
        assert!(err.to_string().contains("t5"), "{err}");
    }
}
