//! `audit-tokenizer`: checks a Hugging Face model directory's tokenizer before training or
//! conversion.
//!
//! Catches the tokenizer faults that only show up much later: vocabularies with id holes (the
//! llama.cpp converter refuses them), chat templates that need special tokens the vocabulary
//! lacks, PAD equal to EOS (the model never learns to stop), EOS ids that disagree between the
//! three config files, and a vocabulary that shreds the target language into bytes (fertility).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::data::title;
use crate::findings::{count_severity, plural, Finding, Severity};
use crate::hf::{
    catch_tokenizer_panic, load_chat_template, read_json_if_exists, token_content, HfError,
};
use crate::hf::{
    CONFIG_JSON, GENERATION_CONFIG_JSON, SPECIAL_TOKENS_MAP_JSON, TOKENIZER_CONFIG_JSON,
    TOKENIZER_JSON,
};
use crate::script::{Script, ScriptMix};

/// How many ids or items a list in the report keeps.
const MAX_LISTED: usize = 20;
/// A sample file is read up to this many bytes.
const MAX_SAMPLE_BYTES: usize = 1 << 20;
/// `high-fertility` when the target language needs more than this many times the tokens per
/// word of English.
pub const HIGH_FERTILITY_RATIO: f64 = 4.0;

/// Every finding code `audit-tokenizer` can report (the values `--allow` accepts).
pub const AUDIT_CODES: &[&str] = &[
    "vocab-holes",
    "duplicate-ids",
    "added-id-mismatch",
    "vocab-size-padded",
    "vocab-size-too-small",
    "tokenizer-unloadable",
    "template-token-missing",
    "no-chat-template",
    "pad-is-eos",
    "no-pad-token",
    "no-eos-token",
    "special-token-unknown",
    "special-tokens-disagree",
    "special-id-out-of-range",
    "eos-mismatch",
    "high-fertility",
    "no-fertility-sample",
    "sample-off-script",
];

/// A built-in English paragraph: the fertility baseline (about the Thirukkural, like the
/// built-in target-language samples, so the content matches).
pub const ENGLISH_SAMPLE: &str = "The Thirukkural is an ancient collection of short couplets \
about ethics, politics and love. Each couplet states a complete idea in just two lines, which \
makes the verses easy to remember. The book has been translated into many languages around the \
world, and students still read and recite its verses at school today. Its advice on honesty, \
hard work and kindness remains useful in everyday life.";

/// Built-in Tamil sample: plain modern Tamil about the Thirukkural.
pub const TAMIL_SAMPLE: &str = "திருக்குறள் திருவள்ளுவர் எழுதிய ஒரு பழமையான தமிழ் நூல் ஆகும். \
இதில் ஆயிரத்து முந்நூற்று முப்பது குறட்பாக்கள் உள்ளன. இவை அறம், பொருள், இன்பம் என்ற மூன்று \
பால்களாகப் பிரிக்கப்பட்டுள்ளன. ஒவ்வொரு குறளும் இரண்டு அடிகளில் ஒரு முழுமையான கருத்தைச் \
சொல்கிறது. இந்த நூல் உலகின் பல மொழிகளில் மொழிபெயர்க்கப்பட்டுள்ளது. இன்றும் பள்ளிகளில் \
மாணவர்கள் குறள்களைப் படித்து மனப்பாடம் செய்கிறார்கள்.";

/// Built-in Hindi sample: plain modern Hindi about the Thirukkural.
pub const HINDI_SAMPLE: &str = "तिरुक्कुरल तमिल भाषा की एक प्राचीन पुस्तक है। इसमें नैतिकता, \
राजनीति और प्रेम पर छोटे दोहे हैं। हर दोहा केवल दो पंक्तियों में एक पूरा विचार कहता है। इस \
पुस्तक का दुनिया की कई भाषाओं में अनुवाद हुआ है, और आज भी विद्यालयों में छात्र इसके दोहे \
पढ़ते हैं।";

/// The built-in fertility sample for a language code, if there is one.
pub fn builtin_sample(lang: &str) -> Option<&'static str> {
    match Script::for_language(lang)? {
        Script::Tamil => Some(TAMIL_SAMPLE),
        Script::Devanagari if lang.starts_with("hi") => Some(HINDI_SAMPLE),
        Script::Latin if lang.starts_with("en") => Some(ENGLISH_SAMPLE),
        _ => None,
    }
}

/// What to audit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditOptions {
    /// The Hugging Face model directory (tokenizer.json required).
    pub model_dir: PathBuf,
    /// Target language code (`ta`): enables the fertility comparison with its built-in sample.
    pub lang: Option<String>,
    /// A UTF-8 text file in the target language; overrides the built-in sample.
    pub sample: Option<PathBuf>,
    /// Finding codes demoted from error to warning.
    pub allow: Vec<String>,
}

/// Errors that stop the audit before it can judge the tokenizer (faults *of* the tokenizer are
/// findings).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The directory has no tokenizer.json.
    #[error(
        "{0}: no tokenizer.json; audit-tokenizer needs a Hugging Face model directory with a \
         fast tokenizer (save one with transformers' AutoTokenizer.save_pretrained)"
    )]
    NoTokenizer(PathBuf),
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// tokenizer.json is not the JSON shape of a Hugging Face tokenizer.
    #[error("{path}: not a Hugging Face tokenizer.json: {reason}")]
    BadTokenizerJson {
        /// The tokenizer.json.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A config file could not be read or parsed.
    #[error(transparent)]
    Hf(#[from] HfError),
    /// `--lang` is not a language code this tool knows.
    #[error(
        "unknown language code '{0}': use an ISO 639-1 or 639-3 code such as ta, hi, sa, en, vi"
    )]
    UnknownLanguage(String),
    /// `--allow` names a code the audit never reports.
    #[error("--allow {code}: no such finding code; known codes: {known}")]
    UnknownAllowCode {
        /// The code given.
        code: String,
        /// The codes that exist.
        known: String,
    },
}

/// Two different tokens that claim the same id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuplicateId {
    /// The id.
    pub id: u32,
    /// The first token with it.
    pub first: String,
    /// Another token with it.
    pub second: String,
}

/// A special-token literal found in the chat template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateToken {
    /// The literal text, e.g. `<|im_start|>`.
    pub literal: String,
    /// What it encodes to (empty when the tokenizer could not be loaded).
    pub ids: Vec<u32>,
    /// True when it is one added/special token.
    pub ok: bool,
}

/// The chat template and the special tokens it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatTemplateInfo {
    /// Where it came from (`tokenizer_config.json`, `chat_template.jinja`).
    pub source: String,
    /// The special-token literals it contains.
    pub tokens: Vec<TemplateToken>,
}

/// A resolved special token (bos, eos, pad, unk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecialToken {
    /// `bos`, `eos`, `pad` or `unk`.
    pub role: &'static str,
    /// Its text, when set.
    pub content: Option<String>,
    /// Its id in the vocabulary, when found.
    pub id: Option<u32>,
    /// The file that set it.
    pub source: Option<&'static str>,
}

/// The EOS ids named by the three files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EosIds {
    /// config.json `eos_token_id` (int or list).
    pub config: Vec<i64>,
    /// generation_config.json `eos_token_id` (int or list).
    pub generation_config: Vec<i64>,
    /// The id of tokenizer_config.json's `eos_token`.
    pub tokenizer: Option<u32>,
    /// tokenizer_config.json's `eos_token` text.
    pub tokenizer_token: Option<String>,
}

/// Tokens per character and per word of one text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fertility {
    /// What the text is (`english (built-in)`, `ta (built-in)`, `ta (sample.txt)`).
    pub label: String,
    /// Non-whitespace characters.
    pub chars: usize,
    /// Whitespace-separated words.
    pub words: usize,
    /// Tokens (without special tokens).
    pub tokens: usize,
    /// `tokens / chars`.
    pub tokens_per_char: f64,
    /// `tokens / words`.
    pub tokens_per_word: f64,
}

/// The result of `audit-tokenizer`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditReport {
    /// The model directory audited.
    pub model_dir: PathBuf,
    /// True when no finding is an error (the same as [`AuditReport::passed`] at creation).
    pub passed: bool,
    /// The tokenizer model type (`BPE`, `Unigram`, `WordPiece`, `WordLevel`).
    pub model_type: String,
    /// Vocabulary size: highest id + 1 over the model vocabulary and the added tokens.
    pub vocab_size: usize,
    /// Entries of the model vocabulary.
    pub model_vocab: usize,
    /// Added tokens (`added_tokens` of tokenizer.json).
    pub added_tokens: usize,
    /// Added tokens marked special.
    pub special_tokens: usize,
    /// config.json `vocab_size` (rows of the embedding matrix), when present.
    pub config_vocab_size: Option<u64>,
    /// The first (up to 20) ids missing from `0..vocab_size`.
    pub missing_ids: Vec<u32>,
    /// How many ids are missing in all.
    pub missing_id_count: usize,
    /// The first (up to 20) ids claimed by two different tokens.
    pub duplicate_ids: Vec<DuplicateId>,
    /// The chat template's special tokens, when there is a template.
    pub chat_template: Option<ChatTemplateInfo>,
    /// BOS, EOS, PAD and UNK as the tokenizer files set them.
    pub special: Vec<SpecialToken>,
    /// EOS as the three files name it.
    pub eos: EosIds,
    /// Fertility of English and of the target language.
    pub fertility: Vec<Fertility>,
    /// Target tokens per word / English tokens per word.
    pub fertility_ratio: Option<f64>,
    /// Everything found, errors first.
    pub findings: Vec<Finding>,
}

impl AuditReport {
    /// True when no finding is an error.
    pub fn passed(&self) -> bool {
        !self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// The finding with this code, if reported.
    pub fn finding(&self, code: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.code == code)
    }
}

/// The parsed vocabulary of a tokenizer.json.
#[derive(Debug, Default)]
struct Vocab {
    model_type: String,
    model_entries: usize,
    /// id → token text (first claim wins).
    by_id: BTreeMap<u32, String>,
    /// token text → id (model vocabulary first, then added tokens).
    by_token: HashMap<String, u32>,
    duplicates: Vec<DuplicateId>,
    duplicate_count: usize,
    /// (id, content, special) of the added tokens.
    added: Vec<(u32, String, bool)>,
}

impl Vocab {
    fn insert(&mut self, id: u32, token: &str) {
        match self.by_id.get(&id) {
            Some(existing) if existing != token => {
                self.duplicate_count += 1;
                if self.duplicates.len() < MAX_LISTED {
                    self.duplicates.push(DuplicateId {
                        id,
                        first: existing.clone(),
                        second: token.to_string(),
                    });
                }
            }
            Some(_) => {}
            None => {
                self.by_id.insert(id, token.to_string());
            }
        }
        self.by_token.entry(token.to_string()).or_insert(id);
    }

    /// Highest id + 1.
    fn size(&self) -> usize {
        self.by_id
            .keys()
            .next_back()
            .map_or(0, |&max| max as usize + 1)
    }

    fn is_added(&self, content: &str) -> bool {
        self.added.iter().any(|(_, c, _)| c == content)
    }
}

/// Parse the vocabulary part of a tokenizer.json (our own reading, independent of the tokenizers
/// library, so that holes and duplicates are seen as the file states them).
fn parse_vocab(json: &Value, path: &Path) -> Result<Vocab, AuditError> {
    let bad = |reason: String| AuditError::BadTokenizerJson {
        path: path.to_path_buf(),
        reason,
    };
    let model = json
        .get("model")
        .ok_or_else(|| bad("no \"model\" section".to_string()))?;
    let vocab_value = model
        .get("vocab")
        .ok_or_else(|| bad("no model.vocab".to_string()))?;
    let model_type = match model.get("type").and_then(Value::as_str) {
        Some(t) => t.to_string(),
        None if vocab_value.is_array() => "Unigram".to_string(),
        None if model.get("merges").is_some() => "BPE".to_string(),
        None => "WordLevel".to_string(),
    };
    let mut vocab = Vocab {
        model_type,
        ..Vocab::default()
    };
    match vocab_value {
        Value::Object(map) => {
            for (token, id) in map {
                let id = id
                    .as_u64()
                    .and_then(|id| u32::try_from(id).ok())
                    .ok_or_else(|| bad(format!("model.vocab[{token:?}] is not a token id")))?;
                vocab.insert(id, token);
                vocab.model_entries += 1;
            }
        }
        Value::Array(pieces) => {
            for (index, piece) in pieces.iter().enumerate() {
                let token = piece
                    .get(0)
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(format!("model.vocab[{index}] is not [piece, score]")))?;
                let id = u32::try_from(index)
                    .map_err(|_| bad("vocabulary larger than 2^32".to_string()))?;
                vocab.insert(id, token);
                vocab.model_entries += 1;
            }
        }
        other => {
            return Err(bad(format!(
                "model.vocab is {}, expected a map or a list",
                crate::data::json_kind(other)
            )))
        }
    }
    if let Some(added) = json.get("added_tokens").and_then(Value::as_array) {
        for (index, token) in added.iter().enumerate() {
            let content = token
                .get("content")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("added_tokens[{index}] has no content")))?;
            let id = token
                .get("id")
                .and_then(Value::as_u64)
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| bad(format!("added_tokens[{index}] has no valid id")))?;
            let special = token
                .get("special")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            vocab.insert(id, content);
            vocab.added.push((id, content.to_string(), special));
        }
    }
    Ok(vocab)
}

/// Collects findings and applies `--allow`.
#[derive(Debug, Default)]
struct Collected(Vec<Finding>);

impl Collected {
    fn push(&mut self, severity: Severity, code: &'static str, message: String) {
        self.0.push(Finding {
            severity,
            code,
            message,
            lines: Vec::new(),
            count: 1,
        });
    }

    fn error(&mut self, code: &'static str, message: String) {
        self.push(Severity::Error, code, message);
    }

    fn warning(&mut self, code: &'static str, message: String) {
        self.push(Severity::Warning, code, message);
    }
}

/// Audit a model directory's tokenizer. Faults become findings; `Err` only when the directory
/// cannot be audited at all (no tokenizer.json, unreadable files, bad options).
pub fn audit_tokenizer(opts: &AuditOptions) -> Result<AuditReport, AuditError> {
    let _span = tracing::info_span!("audit_tokenizer", dir = %opts.model_dir.display()).entered();
    for code in &opts.allow {
        if !AUDIT_CODES.contains(&code.as_str()) {
            return Err(AuditError::UnknownAllowCode {
                code: code.clone(),
                known: AUDIT_CODES.join(", "),
            });
        }
    }
    let expected_script = match &opts.lang {
        Some(code) => Some(
            Script::for_language(code).ok_or_else(|| AuditError::UnknownLanguage(code.clone()))?,
        ),
        None => None,
    };
    let dir = &opts.model_dir;
    let tokenizer_path = dir.join(TOKENIZER_JSON);
    if !tokenizer_path.is_file() {
        return Err(AuditError::NoTokenizer(dir.clone()));
    }
    let text = std::fs::read_to_string(&tokenizer_path).map_err(|source| AuditError::Io {
        path: tokenizer_path.clone(),
        source,
    })?;
    let json: Value = serde_json::from_str(&text).map_err(|e| AuditError::BadTokenizerJson {
        path: tokenizer_path.clone(),
        reason: e.to_string(),
    })?;
    let vocab = {
        let _span = tracing::debug_span!("parse_vocab").entered();
        parse_vocab(&json, &tokenizer_path)?
    };
    drop(json);
    let mut findings = Collected::default();
    let tokenizer = {
        let _span = tracing::debug_span!("load_tokenizer").entered();
        let loaded = catch_tokenizer_panic("loading it", || text.parse::<tokenizers::Tokenizer>())
            .and_then(|parsed| parsed.map_err(|e| e.to_string()));
        match loaded {
            Ok(tokenizer) => Some(tokenizer),
            Err(e) => {
                findings.error(
                    "tokenizer-unloadable",
                    format!(
                        "the tokenizers library cannot load tokenizer.json ({e}); training and \
                         the token checks below need it — re-save it with a current transformers"
                    ),
                );
                None
            }
        }
    };
    drop(text);
    let tokenizer_config = read_json_if_exists(&dir.join(TOKENIZER_CONFIG_JSON))?;
    let config = read_json_if_exists(&dir.join(CONFIG_JSON))?;
    let generation_config = read_json_if_exists(&dir.join(GENERATION_CONFIG_JSON))?;
    let special_map = read_json_if_exists(&dir.join(SPECIAL_TOKENS_MAP_JSON))?;

    let (missing_ids, missing_id_count) = vocabulary_findings(&vocab, &mut findings);
    if let Some(tokenizer) = &tokenizer {
        added_id_findings(&vocab, tokenizer, &mut findings);
    }
    let config_vocab_size = config.as_ref().and_then(|c| {
        c.get("vocab_size")
            .or_else(|| c.get("text_config").and_then(|t| t.get("vocab_size")))
            .and_then(Value::as_u64)
    });
    vocab_size_findings(vocab.size(), config_vocab_size, &mut findings);

    let chat_template = template_findings(
        dir,
        tokenizer_config.as_ref(),
        &vocab,
        tokenizer.as_ref(),
        &mut findings,
    )?;
    let special = resolve_special_tokens(
        tokenizer_config.as_ref(),
        special_map.as_ref(),
        &vocab,
        &mut findings,
    );
    let eos = eos_findings(
        &special,
        config.as_ref(),
        generation_config.as_ref(),
        &mut findings,
    );
    pad_findings(&special, config.as_ref(), &mut findings);
    id_range_findings(
        vocab.size(),
        config.as_ref(),
        generation_config.as_ref(),
        &mut findings,
    );

    let (fertility, fertility_ratio) = match &tokenizer {
        Some(tokenizer) => fertility_findings(opts, expected_script, tokenizer, &mut findings)?,
        None => (Vec::new(), None),
    };

    let mut findings = findings.0;
    for finding in &mut findings {
        if finding.severity == Severity::Error && opts.allow.iter().any(|a| a == finding.code) {
            finding.severity = Severity::Warning;
            finding.message.push_str(" (allowed by --allow)");
        }
    }
    findings.sort_by_key(|f| f.severity);
    let passed = !findings.iter().any(|f| f.severity == Severity::Error);
    Ok(AuditReport {
        model_dir: dir.clone(),
        passed,
        model_type: vocab.model_type.clone(),
        vocab_size: vocab.size(),
        model_vocab: vocab.model_entries,
        added_tokens: vocab.added.len(),
        special_tokens: vocab
            .added
            .iter()
            .filter(|(_, _, special)| *special)
            .count(),
        config_vocab_size,
        missing_ids,
        missing_id_count,
        duplicate_ids: vocab.duplicates.clone(),
        chat_template,
        special,
        eos,
        fertility,
        fertility_ratio,
        findings,
    })
}

/// Holes and duplicate ids.
fn vocabulary_findings(vocab: &Vocab, findings: &mut Collected) -> (Vec<u32>, usize) {
    let size = vocab.size();
    let missing_count = size - vocab.by_id.len();
    let mut missing = Vec::new();
    if missing_count > 0 {
        let mut expected = 0u32;
        for &id in vocab.by_id.keys() {
            while expected < id && missing.len() < MAX_LISTED {
                missing.push(expected);
                expected += 1;
            }
            if missing.len() >= MAX_LISTED {
                break;
            }
            // u32::MAX is the last possible id: nothing follows it.
            expected = id.saturating_add(1);
        }
        let listed: Vec<String> = missing.iter().map(ToString::to_string).collect();
        let more = if missing_count > missing.len() {
            ", …"
        } else {
            ""
        };
        findings.error(
            "vocab-holes",
            format!(
                "token ids must be exactly 0..{}, but {} missing ({}{more}); \
                 llama.cpp's converter refuses such a vocabulary (\"OrderedVocab holes\") — \
                 renumber the tokens or fill the holes with unused placeholder tokens",
                size.saturating_sub(1),
                if missing_count == 1 {
                    "1 id is".to_string()
                } else {
                    format!("{missing_count} ids are")
                },
                listed.join(", ")
            ),
        );
    }
    if vocab.duplicate_count > 0 {
        let listed: Vec<String> = vocab
            .duplicates
            .iter()
            .take(5)
            .map(|d| format!("{} = {:?} and {:?}", d.id, d.first, d.second))
            .collect();
        findings.error(
            "duplicate-ids",
            format!(
                "{} ids are claimed by two different tokens ({}); one of each pair can never be \
                 produced — give every token its own id",
                vocab.duplicate_count,
                listed.join("; ")
            ),
        );
    }
    (missing, missing_count)
}

/// Added tokens whose id in the loaded tokenizer differs from the id tokenizer.json states
/// (what the tokenizers library does when the ids have holes).
fn added_id_findings(vocab: &Vocab, tokenizer: &tokenizers::Tokenizer, findings: &mut Collected) {
    let shifted: Vec<String> = vocab
        .added
        .iter()
        .filter_map(|(id, content, _)| match tokenizer.token_to_id(content) {
            Some(actual) if actual != *id => {
                Some(format!("{content} is {actual}, the file says {id}"))
            }
            _ => None,
        })
        .collect();
    if !shifted.is_empty() {
        let count = shifted.len();
        findings.error(
            "added-id-mismatch",
            format!(
                "the tokenizers library gives {count} added tokens other ids than tokenizer.json \
                 states ({}); training and inference would disagree on them — fix the ids",
                shifted.into_iter().take(5).collect::<Vec<_>>().join("; ")
            ),
        );
    }
}

fn vocab_size_findings(size: usize, config_vocab_size: Option<u64>, findings: &mut Collected) {
    let Some(config_size) = config_vocab_size else {
        return;
    };
    let size_u64 = size as u64;
    if config_size > size_u64 {
        findings.warning(
            "vocab-size-padded",
            format!(
                "config.json vocab_size is {config_size} but the tokenizer has {size} ids: the \
                 {} extra embedding rows are padding (usual for alignment; converters add \
                 placeholder tokens for them)",
                config_size - size_u64
            ),
        );
    } else if config_size < size_u64 {
        findings.error(
            "vocab-size-too-small",
            format!(
                "config.json vocab_size is {config_size} but the tokenizer has {size} ids: ids \
                 {config_size}..{} index past the embedding matrix — resize the embeddings \
                 (model.resize_token_embeddings) after adding tokens",
                size - 1
            ),
        );
    }
}

/// Special-token-looking literals in a chat template, in order of first appearance:
/// `<|…|>` (and DeepSeek's fullwidth `<｜…｜>`), `<…_of_…>` such as `<start_of_turn>`,
/// `<s>`/`</s>`/`<bos>`/`<eos>`-style names, and `[INST]`-style upper-case brackets.
pub fn template_special_literals(template: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut push = |literal: &str| {
        if !found.iter().any(|f| f == literal) {
            found.push(literal.to_string());
        }
    };
    for (i, c) in template.char_indices() {
        let rest = &template[i..];
        match c {
            '<' => {
                if let Some(literal) = delimited(rest, "<|", "|>")
                    .or_else(|| delimited(rest, "<｜", "｜>"))
                    .or_else(|| angle_name(rest))
                {
                    push(literal);
                }
            }
            '[' => {
                if let Some(literal) = bracket_name(rest) {
                    push(literal);
                }
            }
            _ => {}
        }
    }
    found
}

/// `open … close` at the start of `text`, with a short inner part free of spaces and quotes.
fn delimited<'t>(text: &'t str, open: &str, close: &str) -> Option<&'t str> {
    let inner = text.strip_prefix(open)?;
    let end = inner.find(close)?;
    let body = &inner[..end];
    let plain = !body.is_empty()
        && body.chars().count() <= 64
        && !body
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>' | '{' | '}'));
    plain.then(|| &text[..open.len() + end + close.len()])
}

/// `<name>` or `</name>` where the name is a known special-token name or contains `_of_`.
fn angle_name(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('<')?;
    let body_start = usize::from(inner.starts_with('/'));
    let end = inner.find('>')?;
    let name = &inner[body_start..end];
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '▁');
    let special = name.contains("_of_")
        || matches!(
            name,
            "s" | "bos" | "eos" | "pad" | "unk" | "mask" | "sep" | "cls" | "eot"
        );
    (valid && special).then(|| &text[..1 + end + 1])
}

/// `[NAME]` or `[/NAME]` with an upper-case name of at least two characters.
fn bracket_name(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('[')?;
    let body_start = usize::from(inner.starts_with('/'));
    let end = inner.find(']')?;
    let name = &inner[body_start..end];
    let valid = name.len() >= 2
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    valid.then(|| &text[..1 + end + 1])
}

fn template_findings(
    dir: &Path,
    tokenizer_config: Option<&Value>,
    vocab: &Vocab,
    tokenizer: Option<&tokenizers::Tokenizer>,
    findings: &mut Collected,
) -> Result<Option<ChatTemplateInfo>, AuditError> {
    let found = load_chat_template(dir, tokenizer_config.and_then(Value::as_object))?;
    let Some((template, source)) = found.and_then(|found| {
        let main = found.template.main()?.to_owned();
        Some((main, found.source.to_owned()))
    }) else {
        findings.warning(
            "no-chat-template",
            "no chat template (tokenizer_config.json chat_template or chat_template.jinja): \
             fine for DAPT, but SFT and chat inference need one — copy the template of the \
             instruct model this one is meant to match"
                .to_string(),
        );
        return Ok(None);
    };
    let added_ids: BTreeSet<u32> = match tokenizer {
        Some(tokenizer) => tokenizer.get_added_tokens_decoder().into_keys().collect(),
        None => vocab.added.iter().map(|(id, _, _)| *id).collect(),
    };
    let mut tokens = Vec::new();
    for literal in template_special_literals(&template) {
        let (ids, ok) = match tokenizer {
            Some(tokenizer) => match encode_guarded(tokenizer, &literal, findings) {
                Some(encoding) => {
                    let ids = encoding.get_ids().to_vec();
                    let ok = ids.len() == 1 && added_ids.contains(&ids[0]);
                    (ids, ok)
                }
                None => (Vec::new(), false),
            },
            None => {
                let id = vocab.by_token.get(&literal).copied();
                let ok = id.is_some() && vocab.is_added(&literal);
                (id.into_iter().collect(), ok)
            }
        };
        tokens.push(TemplateToken { literal, ids, ok });
    }
    let missing: Vec<String> = tokens
        .iter()
        .filter(|t| !t.ok)
        .map(|t| match t.ids.len() {
            0 => t.literal.clone(),
            1 => format!("{} (id {} is an ordinary token)", t.literal, t.ids[0]),
            n => format!("{} ({n} tokens)", t.literal),
        })
        .collect();
    if !missing.is_empty() {
        findings.error(
            "template-token-missing",
            format!(
                "the chat template ({source}) uses {} that {} not one added/special token of \
                 this vocabulary: {}; the rendered prompt is then split into ordinary pieces \
                 the model never learned as turn markers — add them as special tokens (and \
                 resize the embeddings) or use a template that matches the vocabulary (if the \
                 model really was trained with multi-token markers, e.g. Mistral v0.1 [INST], \
                 pass --allow template-token-missing)",
                plural(missing.len(), "literal"),
                if missing.len() == 1 { "is" } else { "are" },
                missing.join(", ")
            ),
        );
    }
    Ok(Some(ChatTemplateInfo { source, tokens }))
}

fn resolve_special_tokens(
    tokenizer_config: Option<&Value>,
    special_map: Option<&Value>,
    vocab: &Vocab,
    findings: &mut Collected,
) -> Vec<SpecialToken> {
    let mut resolved = Vec::new();
    for role in ["bos", "eos", "pad", "unk"] {
        let key = format!("{role}_token");
        let from_config = tokenizer_config.and_then(|c| c.get(&key));
        let from_map = special_map.and_then(|m| m.get(&key));
        let config_content = from_config.and_then(token_content).map(str::to_owned);
        let map_content = from_map.and_then(token_content).map(str::to_owned);
        if let (Some(a), Some(b)) = (&config_content, &map_content) {
            if a != b {
                findings.warning(
                    "special-tokens-disagree",
                    format!(
                        "{key} is {a:?} in tokenizer_config.json but {b:?} in \
                         special_tokens_map.json; transformers uses the first — make them agree"
                    ),
                );
            }
        }
        let (content, source) = match (config_content, map_content) {
            (Some(c), _) => (Some(c), Some(TOKENIZER_CONFIG_JSON)),
            // An explicit null in tokenizer_config.json means "none".
            (None, _) if from_config.is_some_and(Value::is_null) => (None, None),
            (None, Some(m)) => (Some(m), Some(SPECIAL_TOKENS_MAP_JSON)),
            (None, None) => (None, None),
        };
        let id = content
            .as_ref()
            .and_then(|c| vocab.by_token.get(c).copied());
        if let (Some(content), None, Some(source)) = (&content, id, source) {
            findings.error(
                "special-token-unknown",
                format!(
                    "{key} {content:?} ({source}) is not in the vocabulary, so it has no id — \
                     add it to the tokenizer or name an existing token"
                ),
            );
        }
        resolved.push(SpecialToken {
            role,
            content,
            id,
            source,
        });
    }
    resolved
}

fn special<'s>(special: &'s [SpecialToken], role: &str) -> Option<&'s SpecialToken> {
    special.iter().find(|s| s.role == role)
}

/// An id field that may be an int or a list of ints.
fn id_list(value: Option<&Value>) -> Vec<i64> {
    match value {
        Some(Value::Number(n)) => n.as_i64().into_iter().collect(),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_i64).collect(),
        _ => Vec::new(),
    }
}

fn eos_findings(
    special_tokens: &[SpecialToken],
    config: Option<&Value>,
    generation_config: Option<&Value>,
    findings: &mut Collected,
) -> EosIds {
    let eos = special(special_tokens, "eos");
    let ids = EosIds {
        config: id_list(config.and_then(|c| c.get("eos_token_id"))),
        generation_config: id_list(generation_config.and_then(|c| c.get("eos_token_id"))),
        tokenizer: eos.and_then(|e| e.id),
        tokenizer_token: eos.and_then(|e| e.content.clone()),
    };
    if ids.tokenizer_token.is_none() {
        findings.warning(
            "no-eos-token",
            "tokenizer_config.json sets no eos_token: generation cannot stop on its own and \
             SFT cannot append an end-of-turn token — set it"
                .to_string(),
        );
    }
    let disagree = match ids.tokenizer {
        Some(tokenizer) => {
            let t = i64::from(tokenizer);
            (!ids.config.is_empty() && !ids.config.contains(&t))
                || (!ids.generation_config.is_empty() && !ids.generation_config.contains(&t))
        }
        None => {
            !ids.config.is_empty()
                && !ids.generation_config.is_empty()
                && !ids
                    .config
                    .iter()
                    .any(|id| ids.generation_config.contains(id))
        }
    };
    if disagree {
        let show = |list: &[i64]| match list {
            [] => "unset".to_string(),
            [one] => one.to_string(),
            many => format!("{many:?}"),
        };
        let tokenizer = match (&ids.tokenizer_token, ids.tokenizer) {
            (Some(token), Some(id)) => format!("{token} (id {id})"),
            (Some(token), None) => format!("{token} (no id)"),
            _ => "unset".to_string(),
        };
        findings.error(
            "eos-mismatch",
            format!(
                "the EOS token disagrees: config.json eos_token_id = {}, \
                 generation_config.json eos_token_id = {}, tokenizer_config.json eos_token = \
                 {tokenizer}; training appends one token, generation stops on another, and the \
                 GGUF converter picks one of them — the model then never stops or stops early. \
                 Make all three name the same token (generation_config may list several as long \
                 as the tokenizer's is among them)",
                show(&ids.config),
                show(&ids.generation_config)
            ),
        );
    }
    ids
}

fn pad_findings(special_tokens: &[SpecialToken], config: Option<&Value>, findings: &mut Collected) {
    let eos = special(special_tokens, "eos");
    let pad = special(special_tokens, "pad");
    let eos_id = eos.and_then(|e| e.id);
    let pad_is_eos = match (pad, eos) {
        (Some(pad), Some(eos)) if pad.content.is_some() => {
            (pad.id.is_some() && pad.id == eos.id) || (pad.content == eos.content)
        }
        _ => false,
    };
    let explanation = "padding is masked out of the loss, so when PAD is EOS the model never \
                       sees a trained EOS and learns never to stop (endless generation); set a \
                       distinct pad token (an unused added token such as <|endoftext|> or \
                       <pad>)";
    if pad_is_eos {
        let content = pad.and_then(|p| p.content.clone()).unwrap_or_default();
        findings.error(
            "pad-is-eos",
            format!("pad_token is the EOS token {content:?}: {explanation}"),
        );
        return;
    }
    if pad.is_some_and(|p| p.content.is_none()) {
        let config_pad = id_list(config.and_then(|c| c.get("pad_token_id")));
        match (config_pad.first(), eos_id) {
            (Some(&pad_id), Some(eos_id)) if pad_id == i64::from(eos_id) => findings.error(
                "pad-is-eos",
                format!(
                    "the tokenizer has no pad_token and config.json pad_token_id is the EOS id \
                     {eos_id}: {explanation}"
                ),
            ),
            _ => findings.warning(
                "no-pad-token",
                "no pad_token: trainers then usually pad with EOS, which teaches the model never \
                 to stop — set a distinct pad token"
                    .to_string(),
            ),
        }
    }
}

fn id_range_findings(
    size: usize,
    config: Option<&Value>,
    generation_config: Option<&Value>,
    findings: &mut Collected,
) {
    let limit = i64::try_from(size).unwrap_or(i64::MAX);
    let mut bad = Vec::new();
    for (file, value) in [
        (CONFIG_JSON, config),
        (GENERATION_CONFIG_JSON, generation_config),
    ] {
        for key in [
            "bos_token_id",
            "eos_token_id",
            "pad_token_id",
            "decoder_start_token_id",
        ] {
            for id in id_list(value.and_then(|v| v.get(key))) {
                if id < 0 || id >= limit {
                    bad.push(format!("{file} {key} = {id}"));
                }
            }
        }
    }
    if !bad.is_empty() {
        findings.error(
            "special-id-out-of-range",
            format!(
                "special token ids outside the vocabulary of {size} ids: {}; fix the config \
                 files to name ids that exist",
                bad.join(", ")
            ),
        );
    }
}

/// `tokenizer.encode(text, false)`; `None` when it fails. A panic of the tokenizers library
/// (malformed tokenizer.json) is reported once as `tokenizer-unloadable`.
fn encode_guarded(
    tokenizer: &tokenizers::Tokenizer,
    text: &str,
    findings: &mut Collected,
) -> Option<tokenizers::Encoding> {
    match catch_tokenizer_panic("encoding", || tokenizer.encode(text, false)) {
        Ok(encoded) => encoded.ok(),
        Err(reason) => {
            if !findings.0.iter().any(|f| f.code == "tokenizer-unloadable") {
                findings.error(
                    "tokenizer-unloadable",
                    format!(
                        "{reason}; training and the token checks need a tokenizer that works — \
                         re-save it with a current transformers"
                    ),
                );
            }
            None
        }
    }
}

fn measure_fertility(
    tokenizer: &tokenizers::Tokenizer,
    label: String,
    text: &str,
    findings: &mut Collected,
) -> Option<Fertility> {
    let chars = text.chars().filter(|c| !c.is_whitespace()).count();
    let words = text.split_whitespace().count();
    if chars == 0 || words == 0 {
        return None;
    }
    let tokens = encode_guarded(tokenizer, text, findings)?.len();
    Some(Fertility {
        label,
        chars,
        words,
        tokens,
        tokens_per_char: tokens as f64 / chars as f64,
        tokens_per_word: tokens as f64 / words as f64,
    })
}

fn read_sample(path: &Path) -> Result<String, AuditError> {
    let bytes = std::fs::read(path).map_err(|source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut end = bytes.len().min(MAX_SAMPLE_BYTES);
    // Cut at a character boundary (UTF-8 continuation bytes are 0b10xxxxxx).
    while end < bytes.len() && end > 0 && (bytes[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    String::from_utf8(bytes[..end].to_vec()).map_err(|e| AuditError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the sample is not UTF-8 text ({e})"),
        ),
    })
}

fn fertility_findings(
    opts: &AuditOptions,
    expected: Option<Script>,
    tokenizer: &tokenizers::Tokenizer,
    findings: &mut Collected,
) -> Result<(Vec<Fertility>, Option<f64>), AuditError> {
    let _span = tracing::debug_span!("fertility").entered();
    let mut results = Vec::new();
    let english = measure_fertility(
        tokenizer,
        "english (built-in)".to_string(),
        ENGLISH_SAMPLE,
        findings,
    );
    results.extend(english.clone());
    let lang = opts.lang.as_deref().unwrap_or("target");
    let target_text = match &opts.sample {
        Some(path) => {
            let label = format!(
                "{lang} ({})",
                path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into_owned()
                )
            );
            Some((label, read_sample(path)?))
        }
        None => opts.lang.as_deref().and_then(|code| {
            builtin_sample(code).map(|s| (format!("{code} (built-in)"), s.to_string()))
        }),
    };
    let Some((label, text)) = target_text else {
        if let Some(code) = &opts.lang {
            findings.warning(
                "no-fertility-sample",
                format!(
                    "no built-in {code} sample: pass --sample FILE with a few paragraphs of {code} \
                     text to measure how many tokens the vocabulary needs for it"
                ),
            );
        }
        return Ok((results, None));
    };
    if let (Some(script), Some(code)) = (expected, &opts.lang) {
        let mix = ScriptMix::measure(&text);
        let share = mix.share_of(script.writing_system());
        if share < 0.5 {
            findings.warning(
                "sample-off-script",
                format!(
                    "the {code} sample is only {:.0} % {} letters ({}); the fertility below may \
                     not describe {code}",
                    100.0 * share,
                    title(script),
                    mix.describe()
                ),
            );
        }
    }
    let target = measure_fertility(tokenizer, label, &text, findings);
    let ratio = match (&english, &target) {
        (Some(english), Some(target)) if english.tokens_per_word > 0.0 => {
            Some(target.tokens_per_word / english.tokens_per_word)
        }
        _ => None,
    };
    if let (Some(ratio), Some(target), Some(english)) = (ratio, &target, &english) {
        if ratio > HIGH_FERTILITY_RATIO {
            findings.warning(
                "high-fertility",
                format!(
                    "{} needs {:.2} tokens per word ({:.2} per character), {ratio:.1}× English's \
                     {:.2}: the vocabulary barely covers this language and falls back to bytes \
                     — training and inference cost {ratio:.1}× more and quality suffers; extend \
                     the vocabulary or pick a base model that covers it",
                    target.label,
                    target.tokens_per_word,
                    target.tokens_per_char,
                    english.tokens_per_word
                ),
            );
        }
    }
    results.extend(target);
    Ok((results, ratio))
}

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed() { "PASSED" } else { "FAILED" };
        writeln!(f, "audit-tokenizer {}", self.model_dir.display())?;
        writeln!(
            f,
            "  result            {verdict} ({}, {})",
            plural(count_severity(&self.findings, Severity::Error), "error"),
            plural(count_severity(&self.findings, Severity::Warning), "warning")
        )?;
        writeln!(f, "  model type        {}", self.model_type)?;
        writeln!(
            f,
            "  vocabulary        {} ids ({} model entries, {} added tokens, {} special){}",
            self.vocab_size,
            self.model_vocab,
            self.added_tokens,
            self.special_tokens,
            self.config_vocab_size
                .map(|v| format!("; config.json vocab_size {v}"))
                .unwrap_or_default()
        )?;
        if self.missing_id_count > 0 || !self.duplicate_ids.is_empty() {
            writeln!(
                f,
                "  id problems       {} missing, {} duplicated",
                self.missing_id_count,
                self.duplicate_ids.len()
            )?;
        }
        for token in &self.special {
            let value = match (&token.content, token.id) {
                (Some(content), Some(id)) => format!("{content} (id {id})"),
                (Some(content), None) => format!("{content} (not in vocabulary)"),
                _ => "unset".to_string(),
            };
            let source = token.source.map(|s| format!("  [{s}]")).unwrap_or_default();
            writeln!(
                f,
                "  {:<17} {value}{source}",
                format!("{} token", token.role)
            )?;
        }
        let show = |list: &[i64]| {
            if list.is_empty() {
                "unset".to_string()
            } else {
                list.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        writeln!(
            f,
            "  eos ids           config.json {}; generation_config.json {}; tokenizer {}",
            show(&self.eos.config),
            show(&self.eos.generation_config),
            self.eos
                .tokenizer
                .map_or_else(|| "unset".to_string(), |id| id.to_string())
        )?;
        match &self.chat_template {
            Some(template) => {
                let tokens: Vec<String> = template
                    .tokens
                    .iter()
                    .map(|t| format!("{}{}", t.literal, if t.ok { " ✓" } else { " ✗" }))
                    .collect();
                writeln!(
                    f,
                    "  chat template     {}: {}",
                    template.source,
                    if tokens.is_empty() {
                        "no special-token literals".to_string()
                    } else {
                        tokens.join(", ")
                    }
                )?;
            }
            None => writeln!(f, "  chat template     none")?,
        }
        if !self.fertility.is_empty() {
            writeln!(
                f,
                "fertility\n  {:<28} {:>6} {:>6} {:>7} {:>10} {:>10}",
                "text", "chars", "words", "tokens", "tok/char", "tok/word"
            )?;
            for row in &self.fertility {
                writeln!(
                    f,
                    "  {:<28} {:>6} {:>6} {:>7} {:>10.3} {:>10.3}",
                    row.label,
                    row.chars,
                    row.words,
                    row.tokens,
                    row.tokens_per_char,
                    row.tokens_per_word
                )?;
            }
            if let Some(ratio) = self.fertility_ratio {
                writeln!(f, "  target / english tokens per word: {ratio:.2}×")?;
            }
        }
        if self.findings.is_empty() {
            writeln!(f, "findings: none")?;
        } else {
            writeln!(f, "findings")?;
            for finding in &self.findings {
                writeln!(f, "  {finding}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tokenizers")
            .join(name)
    }

    fn audit(name: &str) -> AuditReport {
        audit_tokenizer(&AuditOptions {
            model_dir: fixture(name),
            ..AuditOptions::default()
        })
        .expect("fixture can be audited")
    }

    fn errors(report: &AuditReport) -> Vec<&'static str> {
        report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.code)
            .collect()
    }

    fn load(name: &str) -> tokenizers::Tokenizer {
        tokenizers::Tokenizer::from_file(fixture(name).join("tokenizer.json"))
            .expect("the tokenizers crate loads the fixture")
    }

    #[test]
    fn every_fixture_loads_in_the_tokenizers_crate() {
        for name in [
            "chatml-ok",
            "vocab-hole",
            "pad-is-eos",
            "eos-mismatch",
            "template-token-missing",
        ] {
            let tokenizer = load(name);
            let ids = tokenizer
                .encode("the cat and the hat", false)
                .expect("encodes")
                .get_ids()
                .to_vec();
            assert!(!ids.is_empty(), "{name}");
            let decoded = tokenizer.decode(&ids, false).expect("decodes");
            assert_eq!(decoded, "the cat and the hat", "{name} round-trips");
            assert!(
                fixture(name).join("README").is_file(),
                "{name} explains its fault"
            );
        }
        let tokenizer = load("chatml-ok");
        let ids = tokenizer
            .encode("<|im_start|>user\nhi<|im_end|>", false)
            .expect("encodes")
            .get_ids()
            .to_vec();
        assert_eq!(ids.first(), tokenizer.token_to_id("<|im_start|>").as_ref());
        assert_eq!(ids.last(), tokenizer.token_to_id("<|im_end|>").as_ref());
    }

    #[test]
    fn clean_fixture_passes() {
        let report = audit("chatml-ok");
        assert!(report.passed(), "{report}");
        assert!(report.passed);
        assert_eq!(report.model_type, "BPE");
        assert_eq!(report.missing_id_count, 0);
        assert!(report.duplicate_ids.is_empty());
        let tokenizer = load("chatml-ok");
        assert_eq!(report.vocab_size, tokenizer.get_vocab_size(true));
        assert_eq!(report.added_tokens, 3);
        assert_eq!(report.special_tokens, 3);
        let template = report.chat_template.as_ref().expect("template found");
        let literals: Vec<&str> = template.tokens.iter().map(|t| t.literal.as_str()).collect();
        assert_eq!(literals, vec!["<|im_start|>", "<|im_end|>"]);
        assert!(template.tokens.iter().all(|t| t.ok));
        let eos_id = tokenizer.token_to_id("<|im_end|>");
        assert_eq!(report.eos.tokenizer, eos_id);
        assert_eq!(report.eos.config, vec![i64::from(eos_id.expect("eos id"))]);
        assert_eq!(
            report.eos.generation_config.len(),
            2,
            "a list of EOS ids is fine"
        );
        let pad = report
            .special
            .iter()
            .find(|s| s.role == "pad")
            .expect("pad");
        assert_eq!(pad.id, tokenizer.token_to_id("<|endoftext|>"));
        // Without --lang only English is measured.
        assert_eq!(report.fertility.len(), 1);
        assert!(report.fertility_ratio.is_none());
        assert!(report.to_string().contains("PASSED"));
    }

    #[test]
    fn vocabulary_hole_is_an_error() {
        let report = audit("vocab-hole");
        assert!(!report.passed());
        assert_eq!(report.missing_ids, vec![100]);
        assert_eq!(report.missing_id_count, 1);
        let finding = report.finding("vocab-holes").expect("vocab-holes reported");
        assert!(
            finding.message.contains("OrderedVocab holes"),
            "{}",
            finding.message
        );
        assert!(finding.message.contains("(100)"), "{}", finding.message);
        // The tokenizers crate renumbers the added tokens after the hole.
        let tokenizer = load("vocab-hole");
        let json: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture("vocab-hole").join("tokenizer.json")).expect("read"),
        )
        .expect("json");
        let stated = json["added_tokens"][0]["id"].as_u64().expect("id");
        let actual = tokenizer.token_to_id("<|endoftext|>").expect("loaded");
        assert_ne!(u64::from(actual), stated);
        assert!(report.finding("added-id-mismatch").is_some(), "{report}");
    }

    #[test]
    fn tokenizer_library_panics_are_findings() {
        let dir = tempfile::tempdir().expect("temp dir");
        let json = crate::convert::vocab::tests::panicking_tokenizer_json();
        std::fs::write(dir.path().join("tokenizer.json"), json.to_string()).expect("write");
        let report = audit_tokenizer(&AuditOptions {
            model_dir: dir.path().to_path_buf(),
            lang: Some("ta".to_string()),
            ..AuditOptions::default()
        })
        .expect("a panicking tokenizer is audited, not fatal");
        let finding = report
            .finding("tokenizer-unloadable")
            .expect("tokenizer-unloadable reported");
        assert_eq!(finding.severity, Severity::Error);
        assert!(finding.message.contains("panicked"), "{}", finding.message);
        assert!(!report.passed());
    }

    #[test]
    fn the_largest_possible_id_is_counted() {
        let json = serde_json::json!({
            "model": {"type": "WordLevel", "vocab": {"a": 0, "z": u32::MAX}, "unk_token": "a"},
            "added_tokens": []
        });
        let vocab = parse_vocab(&json, Path::new("t.json")).expect("parses");
        let mut findings = Collected::default();
        let (missing, count) = vocabulary_findings(&vocab, &mut findings);
        assert_eq!(count, u32::MAX as usize - 1);
        assert_eq!(missing, (1..=MAX_LISTED as u32).collect::<Vec<_>>());
        assert_eq!(findings.0[0].code, "vocab-holes");
    }

    #[test]
    fn duplicate_ids_are_found() {
        let json = serde_json::json!({
            "model": {"type": "WordLevel", "vocab": {"a": 0, "b": 1, "c": 1}, "unk_token": "a"},
            "added_tokens": [{"id": 2, "content": "<x>", "special": true},
                             {"id": 0, "content": "a", "special": true}]
        });
        let vocab = parse_vocab(&json, Path::new("t.json")).expect("parses");
        assert_eq!(vocab.duplicate_count, 1);
        assert_eq!(vocab.duplicates[0].id, 1);
        let mut findings = Collected::default();
        let (missing, count) = vocabulary_findings(&vocab, &mut findings);
        assert!(missing.is_empty() && count == 0);
        assert_eq!(findings.0.len(), 1);
        assert_eq!(findings.0[0].code, "duplicate-ids");

        let unigram = serde_json::json!({"model": {"type": "Unigram",
            "vocab": [["<unk>", 0.0], ["a", -1.0]]},
            "added_tokens": [{"id": 5, "content": "<pad>", "special": true}]});
        let vocab = parse_vocab(&unigram, Path::new("t.json")).expect("parses");
        let mut findings = Collected::default();
        let (missing, count) = vocabulary_findings(&vocab, &mut findings);
        assert_eq!(missing, vec![2, 3, 4]);
        assert_eq!(count, 3);
    }

    #[test]
    fn pad_equal_to_eos_is_an_error() {
        let report = audit("pad-is-eos");
        assert_eq!(errors(&report), vec!["pad-is-eos"], "{report}");
        let finding = report.finding("pad-is-eos").expect("reported");
        assert!(finding.message.contains("never"), "{}", finding.message);
        let allowed = audit_tokenizer(&AuditOptions {
            model_dir: fixture("pad-is-eos"),
            allow: vec!["pad-is-eos".to_string()],
            ..AuditOptions::default()
        })
        .expect("audits");
        assert!(allowed.passed(), "{allowed}");
        assert_eq!(
            allowed.finding("pad-is-eos").map(|f| f.severity),
            Some(Severity::Warning)
        );
    }

    #[test]
    fn eos_mismatch_names_all_three_values() {
        let report = audit("eos-mismatch");
        assert_eq!(errors(&report), vec!["eos-mismatch"], "{report}");
        let tokenizer = load("eos-mismatch");
        let message = &report.finding("eos-mismatch").expect("reported").message;
        let config: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture("eos-mismatch").join("config.json")).expect("read"),
        )
        .expect("json");
        let generation: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture("eos-mismatch").join("generation_config.json"))
                .expect("read"),
        )
        .expect("json");
        let tokenizer_eos = tokenizer.token_to_id("<|im_end|>").expect("eos id");
        for expected in [
            format!("config.json eos_token_id = {}", config["eos_token_id"]),
            format!(
                "generation_config.json eos_token_id = {}",
                generation["eos_token_id"]
            ),
            format!("<|im_end|> (id {tokenizer_eos})"),
        ] {
            assert!(message.contains(&expected), "{message} lacks {expected}");
        }
    }

    #[test]
    fn missing_template_token_is_an_error() {
        let report = audit("template-token-missing");
        assert_eq!(errors(&report), vec!["template-token-missing"], "{report}");
        let template = report.chat_template.as_ref().expect("template");
        let missing: Vec<&str> = template
            .tokens
            .iter()
            .filter(|t| !t.ok)
            .map(|t| t.literal.as_str())
            .collect();
        assert_eq!(missing, vec!["<start_of_turn>", "<end_of_turn>"]);
        assert!(template.tokens.iter().all(|t| t.ids.len() > 1));
    }

    #[test]
    fn template_literals_are_extracted() {
        let llama3 = "{{ '<|begin_of_text|>' }}{% for m in messages %}{{ '<|start_header_id|>' + \
                      m['role'] + '<|end_header_id|>\n\n' + m['content'] | trim + '<|eot_id|>' }}\
                      {% endfor %}";
        assert_eq!(
            template_special_literals(llama3),
            vec![
                "<|begin_of_text|>",
                "<|start_header_id|>",
                "<|end_header_id|>",
                "<|eot_id|>"
            ]
        );
        let mistral = "{{ bos_token }}{% if messages[0]['role'] == 'user' %}[INST] {{ \
                       messages[0]['content'] }} [/INST]{% endif %}<s></s> <b>x</b> [0] [Ab]";
        assert_eq!(
            template_special_literals(mistral),
            vec!["[INST]", "[/INST]", "<s>", "</s>"]
        );
        assert_eq!(
            template_special_literals("<｜User｜>{{ x }}<｜Assistant｜><|a b|>"),
            vec!["<｜User｜>", "<｜Assistant｜>"]
        );
    }

    #[test]
    fn tamil_fertility_is_measured_and_flagged() {
        let report = audit_tokenizer(&AuditOptions {
            model_dir: fixture("chatml-ok"),
            lang: Some("ta".to_string()),
            ..AuditOptions::default()
        })
        .expect("audits");
        assert!(report.passed(), "fertility only warns: {report}");
        assert_eq!(report.fertility.len(), 2);
        let tokenizer = load("chatml-ok");
        let english_tokens = tokenizer
            .encode(ENGLISH_SAMPLE, false)
            .expect("encodes")
            .len();
        let tamil_tokens = tokenizer
            .encode(TAMIL_SAMPLE, false)
            .expect("encodes")
            .len();
        assert_eq!(report.fertility[0].tokens, english_tokens);
        assert_eq!(report.fertility[1].tokens, tamil_tokens);
        let english_words = ENGLISH_SAMPLE.split_whitespace().count();
        let tamil_words = TAMIL_SAMPLE.split_whitespace().count();
        let expected_ratio = (tamil_tokens as f64 / tamil_words as f64)
            / (english_tokens as f64 / english_words as f64);
        let ratio = report.fertility_ratio.expect("ratio");
        assert!((ratio - expected_ratio).abs() < 1e-9);
        // A byte-level vocabulary without Tamil merges spends ~3 tokens per Tamil letter.
        assert!(ratio > HIGH_FERTILITY_RATIO, "ratio {ratio}");
        assert!(report.finding("high-fertility").is_some(), "{report}");
        assert_eq!(ScriptMix::measure(TAMIL_SAMPLE).share(Script::Tamil), 1.0);
        assert_eq!(
            ScriptMix::measure(HINDI_SAMPLE).share(Script::Devanagari),
            1.0
        );
    }

    #[test]
    fn sample_file_overrides_and_is_checked() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut file, b"the cat and the hat sat on the mat").expect("write");
        let report = audit_tokenizer(&AuditOptions {
            model_dir: fixture("chatml-ok"),
            lang: Some("ta".to_string()),
            sample: Some(file.path().to_path_buf()),
            ..AuditOptions::default()
        })
        .expect("audits");
        assert!(report.finding("sample-off-script").is_some(), "{report}");
        assert!(report.finding("high-fertility").is_none(), "{report}");
        assert_eq!(report.fertility[1].words, 9);
    }

    #[test]
    fn bad_options_and_directories_are_errors() {
        let bad_allow = audit_tokenizer(&AuditOptions {
            model_dir: fixture("chatml-ok"),
            allow: vec!["no-such-code".to_string()],
            ..AuditOptions::default()
        });
        assert!(matches!(
            bad_allow,
            Err(AuditError::UnknownAllowCode { .. })
        ));
        let empty = tempfile::tempdir().expect("temp dir");
        let missing = audit_tokenizer(&AuditOptions {
            model_dir: empty.path().to_path_buf(),
            ..AuditOptions::default()
        });
        assert!(matches!(missing, Err(AuditError::NoTokenizer(_))));
        let bad_lang = audit_tokenizer(&AuditOptions {
            model_dir: fixture("chatml-ok"),
            lang: Some("zz".to_string()),
            ..AuditOptions::default()
        });
        assert!(matches!(bad_lang, Err(AuditError::UnknownLanguage(_))));
    }

    #[test]
    fn bare_tokenizer_warns_about_missing_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::copy(
            fixture("chatml-ok").join("tokenizer.json"),
            dir.path().join("tokenizer.json"),
        )
        .expect("copy");
        let report = audit_tokenizer(&AuditOptions {
            model_dir: dir.path().to_path_buf(),
            ..AuditOptions::default()
        })
        .expect("audits");
        assert!(report.passed(), "{report}");
        for code in ["no-chat-template", "no-eos-token"] {
            assert_eq!(
                report.finding(code).map(|f| f.severity),
                Some(Severity::Warning),
                "{code}: {report}"
            );
        }
    }

    #[test]
    fn report_serializes() {
        let report = audit("eos-mismatch");
        let json = serde_json::to_value(&report).expect("serialize");
        assert_eq!(json["passed"], false);
        assert_eq!(json["findings"][0]["code"], "eos-mismatch");
        assert_eq!(json["model_type"], "BPE");
        assert!(report.to_string().contains("FAILED"));
    }
}
