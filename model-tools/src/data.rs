//! `validate-data`: checks a JSONL training file (DAPT raw text or SFT chat) before training.
//!
//! The file is streamed line by line; only hashes of the samples (for duplicates) and one token
//! count per sample (for the length percentiles) are kept. Faults that silently ruin a fine-tune
//! fail the check: broken JSON, raw text mixed into chat data (the "systemsystemsystem…" model),
//! conversations without an answer, chat-template markers pasted into the text, duplicates and
//! data that is not in the language it claims to be. The [`Finding`] and [`Severity`] types
//! ([`crate::findings`]) are shared with `audit-tokenizer`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use crate::findings::{count_severity, plural, Finding, Findings, LineList, Severity, MAX_LINES};
use crate::hf::catch_tokenizer_panic;
use crate::hf::TOKENIZER_JSON;
use crate::script::{Script, ScriptMix};

/// Default for [`ValidateOptions::min_script_share`].
pub const DEFAULT_MIN_SCRIPT_SHARE: f64 = 0.6;
/// Default for [`ValidateOptions::max_off_script_samples`].
pub const DEFAULT_MAX_OFF_SCRIPT_SAMPLES: f64 = 0.1;
/// Default for [`ValidateOptions::max_tokens`].
pub const DEFAULT_MAX_TOKENS: usize = 2048;
/// A sample whose share of the expected script is below this is "off-script".
pub const OFF_SCRIPT_SAMPLE_SHARE: f64 = 0.5;
/// DAPT texts with fewer non-space characters than this are reported as very short.
pub const SHORT_TEXT_CHARS: usize = 20;
/// SFT samples whose assistant turns hold fewer non-space characters than this are very short.
pub const SHORT_ANSWER_CHARS: usize = 5;

/// Chat-template markers of the common template families. Any of them inside a message's
/// content means a rendered conversation was pasted where plain text belongs.
pub const TEMPLATE_MARKERS: &[&str] = &[
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<bos>",
    "<eos>",
    "<s>",
    "</s>",
    "[INST]",
    "[/INST]",
    "<|begin_of_text|>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|user|>",
    "<|assistant|>",
    "<|system|>",
    "<|end_of_text|>",
    "<|end|>",
];

/// Which training stage a file feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Domain-adaptive pre-training: one `{"text": "..."}` object per line.
    Dapt,
    /// Supervised fine-tuning: one `{"messages": [{"role", "content"}, ...]}` object per line.
    Sft,
}

impl Stage {
    /// The lowercase name (`dapt`, `sft`).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Dapt => "dapt",
            Stage::Sft => "sft",
        }
    }

    /// The line format this stage expects, for messages.
    pub fn expected_format(self) -> &'static str {
        match self {
            Stage::Dapt => r#"{"text": "..."}"#,
            Stage::Sft => {
                r#"{"messages": [{"role": "system"|"user"|"assistant", "content": "..."}]}"#
            }
        }
    }

    fn format(self) -> LineFormat {
        match self {
            Stage::Dapt => LineFormat::Text,
            Stage::Sft => LineFormat::Chat,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Stage {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Stage, DataError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dapt" | "pretrain" | "cpt" => Ok(Stage::Dapt),
            "sft" | "chat" => Ok(Stage::Sft),
            other => Err(DataError::BadOption(format!(
                "unknown stage '{other}': use dapt (raw text) or sft (chat messages)"
            ))),
        }
    }
}

/// Errors that stop `validate-data` before it can judge the data (faults *in* the data are
/// [`Finding`]s, not errors).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The data file could not be opened or read.
    #[error("{path}: {source} (pass the path of a .jsonl file)")]
    Io {
        /// The data file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `--lang` is not a language code this tool knows the script of.
    #[error(
        "unknown language code '{0}': use an ISO 639-1 or 639-3 code such as ta, hi, sa, en, vi"
    )]
    UnknownLanguage(String),
    /// An option is out of range.
    #[error("{0}")]
    BadOption(String),
    /// The tokenizer could not be loaded.
    #[error("cannot load tokenizer {path}: {reason} (pass a tokenizer.json or a model directory holding one)")]
    Tokenizer {
        /// The tokenizer.json that was tried.
        path: PathBuf,
        /// Why it failed.
        reason: String,
    },
}

/// What to check and how strictly.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidateOptions {
    /// The JSONL file.
    pub path: PathBuf,
    /// The stage the file is meant for; decides the expected line format.
    pub stage: Stage,
    /// Language code of the data (`ta`); enables the script-mix check.
    pub lang: Option<String>,
    /// Minimum mean share (0–1) of the language's script per sample (default 0.6).
    pub min_script_share: f64,
    /// Maximum share (0–1) of samples whose script share is below 0.5 (default 0.1).
    pub max_off_script_samples: f64,
    /// A tokenizer.json, or a model directory holding one: enables token statistics and adds its
    /// special tokens to the markers that must not appear in content.
    pub tokenizer: Option<PathBuf>,
    /// Samples longer than this many tokens are reported (default 2048).
    pub max_tokens: usize,
    /// Do not fail on duplicate samples (they are still counted).
    pub allow_duplicates: bool,
}

impl ValidateOptions {
    /// Options with the defaults for everything but the file and the stage.
    pub fn new(path: impl Into<PathBuf>, stage: Stage) -> ValidateOptions {
        ValidateOptions {
            path: path.into(),
            stage,
            lang: None,
            min_script_share: DEFAULT_MIN_SCRIPT_SHARE,
            max_off_script_samples: DEFAULT_MAX_OFF_SCRIPT_SAMPLES,
            tokenizer: None,
            max_tokens: DEFAULT_MAX_TOKENS,
            allow_duplicates: false,
        }
    }
}

/// Line and sample counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DataCounts {
    /// Lines in the file, blank ones included.
    pub lines: usize,
    /// Blank lines (skipped).
    pub blank_lines: usize,
    /// Lines in the `{"text"}` format.
    pub text_lines: usize,
    /// Lines in the `{"messages"}` format.
    pub chat_lines: usize,
    /// Well-formed samples in the stage's format (the ones measured below).
    pub samples: usize,
    /// Non-blank lines rejected by an error (bad JSON, bad sample, wrong format).
    pub rejected: usize,
    /// Samples that repeat an earlier one (after NFC and whitespace collapse).
    pub duplicates: usize,
    /// System turns in the SFT samples.
    pub system_turns: usize,
    /// User turns in the SFT samples.
    pub user_turns: usize,
    /// Assistant turns in the SFT samples.
    pub assistant_turns: usize,
    /// Characters of text in the well-formed samples (all contents for SFT).
    pub characters: usize,
}

/// Script share statistics of one part of the samples (DAPT text, SFT assistant or user turns).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScriptShare {
    /// Samples with at least one letter in this part.
    pub samples_measured: usize,
    /// Samples without any letter in this part (numbers, code, emoji): not measured.
    pub samples_without_letters: usize,
    /// Mean over the measured samples of the share of the expected script's letters.
    pub mean_share: f64,
    /// Measured samples whose share is below 0.5.
    pub off_script_samples: usize,
    /// `off_script_samples / samples_measured` (0 when nothing was measured).
    pub off_script_sample_share: f64,
    /// Letters counted over all samples.
    pub letters: usize,
    /// Share of all counted letters per script.
    pub script_shares: BTreeMap<Script, f64>,
}

/// The script-mix measurement (with `--lang`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScriptStats {
    /// The language code given.
    pub language: String,
    /// Its script.
    pub expected: Script,
    /// What was measured: `text` (DAPT) or `assistant turns` (SFT — what the model learns to say).
    pub measured_over: &'static str,
    /// The measurement that decides the check.
    pub share: ScriptShare,
    /// SFT only: the same over the user turns (reported, not judged).
    pub user_turns: Option<ScriptShare>,
}

/// Token-length statistics (with a tokenizer).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenStats {
    /// The tokenizer.json used.
    pub tokenizer: PathBuf,
    /// What was counted.
    pub counted: &'static str,
    /// Samples counted.
    pub count: usize,
    /// Fewest tokens in a sample.
    pub min: usize,
    /// Mean tokens per sample.
    pub mean: f64,
    /// Median (nearest rank).
    pub p50: usize,
    /// 95th percentile (nearest rank).
    pub p95: usize,
    /// Most tokens in a sample.
    pub max: usize,
    /// The limit samples were compared with.
    pub max_tokens: usize,
    /// Samples longer than `max_tokens`.
    pub over_max_tokens: usize,
    /// Tokens in all samples together.
    pub total: u64,
}

/// The result of `validate-data`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataReport {
    /// The file checked.
    pub path: PathBuf,
    /// The stage it was checked for.
    pub stage: Stage,
    /// True when no finding is an error (the same as [`DataReport::passed`] at creation).
    pub passed: bool,
    /// Line and sample counts.
    pub counts: DataCounts,
    /// Script mix, when a language was given.
    pub script: Option<ScriptStats>,
    /// Token lengths, when a tokenizer was given.
    pub tokens: Option<TokenStats>,
    /// The first (up to 20) duplicate pairs as `[first line, repeating line]`.
    pub duplicate_pairs: Vec<[usize; 2]>,
    /// Everything found, errors first.
    pub findings: Vec<Finding>,
}

impl DataReport {
    /// True when no finding is an error.
    pub fn passed(&self) -> bool {
        !self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// Number of error findings.
    pub fn errors(&self) -> usize {
        count_severity(&self.findings, Severity::Error)
    }

    /// Number of warning findings.
    pub fn warnings(&self) -> usize {
        count_severity(&self.findings, Severity::Warning)
    }
}

/// Check a JSONL training file. Faults in the data become findings in the report; `Err` only
/// when the file cannot be read at all or the options are invalid.
pub fn validate_data(opts: &ValidateOptions) -> Result<DataReport, DataError> {
    let _span =
        tracing::info_span!("validate_data", path = %opts.path.display(), stage = %opts.stage)
            .entered();
    let expected = match &opts.lang {
        Some(code) => Some(
            Script::for_language(code).ok_or_else(|| DataError::UnknownLanguage(code.clone()))?,
        ),
        None => None,
    };
    for (name, value) in [
        ("--min-script-share", opts.min_script_share),
        ("--max-off-script-samples", opts.max_off_script_samples),
    ] {
        if !(0.0..=1.0).contains(&value) {
            return Err(DataError::BadOption(format!(
                "{name} must be a share between 0 and 1, got {value}"
            )));
        }
    }
    let tokenizer = match &opts.tokenizer {
        Some(path) => Some(load_tokenizer(path)?),
        None => None,
    };
    let mut markers = MarkerSet::new(TEMPLATE_MARKERS.iter().map(|m| m.to_string()));
    if let Some((_, tokenizer)) = &tokenizer {
        markers.extend(special_token_markers(tokenizer));
    }

    let file = File::open(&opts.path).map_err(|source| DataError::Io {
        path: opts.path.clone(),
        source,
    })?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let tokenizer_path = tokenizer.as_ref().map(|t| t.0.clone());
    let mut checker = Checker::new(opts, expected, markers, tokenizer.as_ref().map(|t| &t.1));
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let read = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| DataError::Io {
                path: opts.path.clone(),
                source,
            })?;
        if read == 0 {
            break;
        }
        line_no += 1;
        let mut bytes = buf.as_slice();
        if line_no == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        checker.line(line_no, bytes);
        if let (Some(reason), Some(path)) = (checker.tokenizer_panic.take(), &tokenizer_path) {
            return Err(DataError::Tokenizer {
                path: path.clone(),
                reason,
            });
        }
    }
    Ok(checker.finish(tokenizer_path))
}

/// Resolve a tokenizer argument (a tokenizer.json or a directory holding one) and load it.
pub(crate) fn load_tokenizer(path: &Path) -> Result<(PathBuf, tokenizers::Tokenizer), DataError> {
    let _span = tracing::debug_span!("load_tokenizer", path = %path.display()).entered();
    let file = if path.is_dir() {
        path.join(TOKENIZER_JSON)
    } else {
        path.to_path_buf()
    };
    if !file.is_file() {
        return Err(DataError::Tokenizer {
            path: file,
            reason: "no such file".to_string(),
        });
    }
    let tokenizer = catch_tokenizer_panic("loading it", || tokenizers::Tokenizer::from_file(&file))
        .map_err(|reason| DataError::Tokenizer {
            path: file.clone(),
            reason,
        })?
        .map_err(|e| DataError::Tokenizer {
            path: file.clone(),
            reason: e.to_string(),
        })?;
    Ok((file, tokenizer))
}

/// The special added tokens of a tokenizer that look like markup (at least 3 characters, not
/// only letters and digits): those must never appear inside training text.
pub(crate) fn special_token_markers(tokenizer: &tokenizers::Tokenizer) -> Vec<String> {
    tokenizer
        .get_added_tokens_decoder()
        .into_values()
        .filter(|token| token.special)
        .map(|token| token.content)
        .filter(|content| {
            content.chars().count() >= 3
                && content
                    .chars()
                    .any(|c| !c.is_alphanumeric() && !c.is_whitespace())
        })
        .collect()
}

/// A set of literal markers searched for in text (fast enough for thousands of markers: only
/// positions whose byte can start a marker are probed, once per distinct marker length).
#[derive(Debug, Clone, Default)]
pub(crate) struct MarkerSet {
    markers: HashSet<String>,
    lengths: Vec<usize>,
    starts: Vec<bool>,
}

impl MarkerSet {
    pub(crate) fn new(markers: impl IntoIterator<Item = String>) -> MarkerSet {
        let mut set = MarkerSet {
            markers: HashSet::new(),
            lengths: Vec::new(),
            starts: vec![false; 256],
        };
        set.extend(markers);
        set
    }

    fn extend(&mut self, markers: impl IntoIterator<Item = String>) {
        for marker in markers {
            let Some(&first) = marker.as_bytes().first() else {
                continue;
            };
            self.starts[usize::from(first)] = true;
            if !self.lengths.contains(&marker.len()) {
                self.lengths.push(marker.len());
            }
            self.markers.insert(marker);
        }
        self.lengths.sort_unstable_by(|a, b| b.cmp(a));
    }

    /// The distinct markers occurring in `text`, in order of first occurrence.
    pub(crate) fn find<'a>(&'a self, text: &str) -> Vec<&'a str> {
        let mut found: Vec<&'a str> = Vec::new();
        for (i, &byte) in text.as_bytes().iter().enumerate() {
            if !self.starts[usize::from(byte)] {
                continue;
            }
            for &len in &self.lengths {
                let Some(candidate) = text.get(i..i + len) else {
                    continue;
                };
                if let Some(marker) = self.markers.get(candidate) {
                    if !found.contains(&marker.as_str()) {
                        found.push(marker.as_str());
                    }
                    break;
                }
            }
        }
        found
    }
}

/// The two line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineFormat {
    Text,
    Chat,
}

/// Running script-share statistics of one part of the samples.
#[derive(Debug, Default)]
struct ShareAccumulator {
    measured: usize,
    without_letters: usize,
    share_sum: f64,
    off: LineList,
    mix: ScriptMix,
}

impl ShareAccumulator {
    fn add(&mut self, line: usize, mix: &ScriptMix, expected: Script) {
        self.mix.add(mix);
        if mix.letters() == 0 {
            self.without_letters += 1;
            return;
        }
        let share = mix.share_of(expected.writing_system());
        self.measured += 1;
        self.share_sum += share;
        if share < OFF_SCRIPT_SAMPLE_SHARE {
            self.off.push(line);
        }
    }

    fn mean(&self) -> f64 {
        if self.measured == 0 {
            0.0
        } else {
            self.share_sum / self.measured as f64
        }
    }

    fn off_share(&self) -> f64 {
        if self.measured == 0 {
            0.0
        } else {
            self.off.count as f64 / self.measured as f64
        }
    }

    fn stats(&self) -> ScriptShare {
        ScriptShare {
            samples_measured: self.measured,
            samples_without_letters: self.without_letters,
            mean_share: self.mean(),
            off_script_samples: self.off.count,
            off_script_sample_share: self.off_share(),
            letters: self.mix.letters(),
            script_shares: self.mix.shares(),
        }
    }
}

/// A well-formed SFT message.
#[derive(Debug)]
struct Turn<'a> {
    role: &'a str,
    content: &'a str,
}

/// The streaming checker: sees one line at a time, keeps only counters, hashes and lengths.
struct Checker<'o> {
    opts: &'o ValidateOptions,
    expected: Option<Script>,
    markers: MarkerSet,
    tokenizer: Option<&'o tokenizers::Tokenizer>,
    findings: Findings,
    counts: DataCounts,
    text_lines: LineList,
    chat_lines: LineList,
    seen: HashMap<u128, usize>,
    duplicates: LineList,
    duplicate_pairs: Vec<[usize; 2]>,
    main_share: ShareAccumulator,
    user_share: ShareAccumulator,
    token_counts: Vec<u32>,
    over_max: LineList,
    markers_found: BTreeSet<String>,
    scratch: String,
    /// Set when the tokenizer library panicked: validation stops with a tokenizer error.
    tokenizer_panic: Option<String>,
}

impl std::fmt::Debug for Checker<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checker")
            .field("counts", &self.counts)
            .finish()
    }
}

const SUMMARY_BAD_UTF8: &str = "lines that are not valid UTF-8 (re-encode the file as UTF-8)";
const SUMMARY_INVALID_JSON: &str =
    "lines that are not valid JSON (each line must be one JSON object)";
const SUMMARY_TEMPLATE: &str = "chat-template markers pasted into the content: the template adds \
these itself, so pasted ones double the markup and teach the model to print raw markers; strip \
them or split the text into separate messages";

impl<'o> Checker<'o> {
    fn new(
        opts: &'o ValidateOptions,
        expected: Option<Script>,
        markers: MarkerSet,
        tokenizer: Option<&'o tokenizers::Tokenizer>,
    ) -> Checker<'o> {
        Checker {
            opts,
            expected,
            markers,
            tokenizer,
            findings: Findings::default(),
            counts: DataCounts::default(),
            text_lines: LineList::default(),
            chat_lines: LineList::default(),
            seen: HashMap::new(),
            duplicates: LineList::default(),
            duplicate_pairs: Vec::new(),
            main_share: ShareAccumulator::default(),
            user_share: ShareAccumulator::default(),
            token_counts: Vec::new(),
            over_max: LineList::default(),
            markers_found: BTreeSet::new(),
            scratch: String::new(),
            tokenizer_panic: None,
        }
    }

    fn error(
        &mut self,
        code: &'static str,
        summary: &'static str,
        line: usize,
        detail: impl FnOnce() -> String,
    ) {
        self.findings
            .line(Severity::Error, code, summary, line, detail);
    }

    fn warning(
        &mut self,
        code: &'static str,
        summary: &'static str,
        line: usize,
        detail: impl FnOnce() -> String,
    ) {
        self.findings
            .line(Severity::Warning, code, summary, line, detail);
    }

    fn line(&mut self, line: usize, bytes: &[u8]) {
        self.counts.lines += 1;
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                self.counts.rejected += 1;
                self.error("bad-utf8", SUMMARY_BAD_UTF8, line, || {
                    format!("line {line}: invalid UTF-8 at byte {}", e.valid_up_to() + 1)
                });
                return;
            }
        };
        if text.trim().is_empty() {
            self.counts.blank_lines += 1;
            return;
        }
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => {
                self.counts.rejected += 1;
                self.error("invalid-json", SUMMARY_INVALID_JSON, line, || {
                    format!("line {line}: {e}")
                });
                return;
            }
        };
        let Value::Object(object) = value else {
            self.counts.rejected += 1;
            let kind = json_kind(&value);
            let expected = self.opts.stage.expected_format();
            self.error("unknown-format", "lines in an unknown format", line, || {
                format!("line {line} is a JSON {kind}, expected an object {expected}")
            });
            return;
        };
        let format = if object.contains_key("messages") {
            LineFormat::Chat
        } else if object.contains_key("text") {
            LineFormat::Text
        } else {
            self.counts.rejected += 1;
            self.unknown_format(line, &object);
            return;
        };
        match format {
            LineFormat::Text => {
                self.counts.text_lines += 1;
                self.text_lines.push(line);
            }
            LineFormat::Chat => {
                self.counts.chat_lines += 1;
                self.chat_lines.push(line);
            }
        }
        if format != self.opts.stage.format() {
            self.counts.rejected += 1;
            return;
        }
        let accepted = match format {
            LineFormat::Text => self.text_sample(line, &object),
            LineFormat::Chat => self.chat_sample(line, &object),
        };
        if accepted {
            self.counts.samples += 1;
        } else {
            self.counts.rejected += 1;
        }
    }

    fn unknown_format(&mut self, line: usize, object: &Map<String, Value>) {
        let expected = self.opts.stage.expected_format();
        if object.contains_key("conversations") {
            self.error(
                "sharegpt-format",
                "ShareGPT lines ({\"conversations\": [{\"from\", \"value\"}]}) are not accepted",
                line,
                || {
                    format!(
                        "line {line}: expected {expected}; convert each turn to \
                         {{\"role\", \"content\"}} (human → user, gpt → assistant) under \
                         \"messages\""
                    )
                },
            );
            return;
        }
        let keys: Vec<&str> = object.keys().map(String::as_str).take(8).collect();
        self.error("unknown-format", "lines in an unknown format", line, || {
            format!(
                "line {line} has keys [{}]; expected {expected}",
                keys.join(", ")
            )
        });
    }

    /// Check a DAPT line; true when it is a usable sample.
    fn text_sample(&mut self, line: usize, object: &Map<String, Value>) -> bool {
        let Some(text) = object.get("text").and_then(Value::as_str) else {
            let kind = object.get("text").map_or("missing", json_kind);
            self.error(
                "bad-field",
                "samples with a field of the wrong type",
                line,
                || format!("line {line}: \"text\" is {kind}, expected a string"),
            );
            return false;
        };
        if text.trim().is_empty() {
            self.error("empty-text", "samples with empty text", line, || {
                format!("line {line}: \"text\" is empty; drop the line")
            });
            return false;
        }
        let found = self.find_markers(text);
        if !found.is_empty() {
            self.markers_found.extend(found.iter().cloned());
            self.error("template-tokens-in-content", SUMMARY_TEMPLATE, line, || {
                format!("line {line} contains {}", found.join(", "))
            });
            return false;
        }
        let visible = non_space_chars(text);
        if visible < SHORT_TEXT_CHARS {
            self.warning(
                "short-sample",
                "very short samples (little to learn from)",
                line,
                || format!("line {line}: {visible} characters"),
            );
        }
        self.counts.characters += text.chars().count();
        self.scratch.clear();
        push_normalized(&mut self.scratch, text);
        let hash = hash128(&self.scratch);
        self.record_duplicate(line, hash);
        if let Some(expected) = self.expected {
            let mix = ScriptMix::measure(text);
            self.main_share.add(line, &mix, expected);
        }
        self.count_tokens(line, text);
        true
    }

    /// Check an SFT line; true when it is a usable sample.
    fn chat_sample(&mut self, line: usize, object: &Map<String, Value>) -> bool {
        let messages = match object.get("messages") {
            Some(Value::Array(messages)) if !messages.is_empty() => messages,
            other => {
                let kind = other.map_or("missing", json_kind);
                self.error(
                    "bad-messages",
                    "samples whose \"messages\" is not a non-empty list",
                    line,
                    || format!("line {line}: \"messages\" is {kind}"),
                );
                return false;
            }
        };
        let mut turns = Vec::with_capacity(messages.len());
        for (index, message) in messages.iter().enumerate() {
            let number = index + 1;
            let role = message.get("role").and_then(Value::as_str);
            let content = message.get("content").and_then(Value::as_str);
            let (Some(role), Some(content)) = (role, content) else {
                let what = if !message.is_object() {
                    format!("is {}, not an object", json_kind(message))
                } else if role.is_none() {
                    let kind = message.get("role").map_or("missing", json_kind);
                    format!("\"role\" is {kind}, expected a string")
                } else {
                    let kind = message.get("content").map_or("missing", json_kind);
                    format!("\"content\" is {kind}, expected a string")
                };
                self.error(
                    "bad-message",
                    "messages without a string role and content",
                    line,
                    || format!("line {line}, message {number}: {what}"),
                );
                return false;
            };
            if !matches!(role, "system" | "user" | "assistant") {
                self.error(
                    "unknown-role",
                    "messages with an unknown role (use system, user or assistant)",
                    line,
                    || {
                        let hint = match role {
                            "human" => " (ShareGPT's human is user)",
                            "gpt" | "model" | "bot" => " (this is assistant)",
                            _ => "",
                        };
                        format!("line {line}, message {number}: role \"{role}\"{hint}")
                    },
                );
                return false;
            }
            turns.push(Turn { role, content });
        }
        let has = |role: &str| {
            turns
                .iter()
                .any(|t| t.role == role && !t.content.trim().is_empty())
        };
        let (has_user, has_assistant) = (has("user"), has("assistant"));
        if !has_user || !has_assistant {
            let missing = match (has_user, has_assistant) {
                (false, false) => "user or assistant",
                (false, true) => "user",
                _ => "assistant",
            };
            self.error(
                "missing-turn",
                "conversations without a non-empty user turn and a non-empty assistant turn \
                 (nothing to learn from)",
                line,
                || format!("line {line} has no non-empty {missing} turn"),
            );
            return false;
        }
        let mut found: Vec<String> = Vec::new();
        for turn in &turns {
            for marker in self.markers.find(turn.content) {
                if !found.iter().any(|f| f == marker) {
                    found.push(marker.to_string());
                }
            }
        }
        if !found.is_empty() {
            self.markers_found.extend(found.iter().cloned());
            self.error("template-tokens-in-content", SUMMARY_TEMPLATE, line, || {
                format!("line {line} contains {}", found.join(", "))
            });
            return false;
        }
        if turns.iter().any(|t| t.content.trim().is_empty()) {
            self.warning(
                "empty-turn",
                "conversations with an empty turn",
                line,
                || format!("line {line} has a turn with empty content"),
            );
        }
        if turns.last().is_some_and(|t| t.role != "assistant") {
            self.warning(
                "last-turn-not-assistant",
                "conversations that end on a turn the model does not learn from",
                line,
                || {
                    format!(
                        "line {line} ends with a {} turn",
                        turns.last().map_or("", |t| t.role)
                    )
                },
            );
        }
        let answer_chars: usize = turns
            .iter()
            .filter(|t| t.role == "assistant")
            .map(|t| non_space_chars(t.content))
            .sum();
        if answer_chars < SHORT_ANSWER_CHARS {
            self.warning(
                "short-sample",
                "very short samples (little to learn from)",
                line,
                || format!("line {line}: the assistant says {answer_chars} characters"),
            );
        }
        for turn in &turns {
            match turn.role {
                "system" => self.counts.system_turns += 1,
                "user" => self.counts.user_turns += 1,
                _ => self.counts.assistant_turns += 1,
            }
            self.counts.characters += turn.content.chars().count();
        }
        self.scratch.clear();
        for turn in &turns {
            self.scratch.push_str(turn.role);
            self.scratch.push('\u{1F}');
            push_normalized(&mut self.scratch, turn.content);
            self.scratch.push('\u{1E}');
        }
        let hash = hash128(&self.scratch);
        self.record_duplicate(line, hash);
        if let Some(expected) = self.expected {
            let mut answers = ScriptMix::default();
            let mut questions = ScriptMix::default();
            for turn in &turns {
                match turn.role {
                    "assistant" => answers.add(&ScriptMix::measure(turn.content)),
                    "user" => questions.add(&ScriptMix::measure(turn.content)),
                    _ => {}
                }
            }
            self.main_share.add(line, &answers, expected);
            self.user_share.add(line, &questions, expected);
        }
        if self.tokenizer.is_some() {
            let joined = turns
                .iter()
                .map(|t| t.content)
                .collect::<Vec<_>>()
                .join("\n");
            self.count_tokens(line, &joined);
        }
        true
    }

    fn find_markers(&self, text: &str) -> Vec<String> {
        self.markers
            .find(text)
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    fn record_duplicate(&mut self, line: usize, hash: u128) {
        match self.seen.get(&hash) {
            Some(&first) => {
                self.counts.duplicates += 1;
                self.duplicates.push(line);
                if self.duplicate_pairs.len() < MAX_LINES {
                    self.duplicate_pairs.push([first, line]);
                }
            }
            None => {
                self.seen.insert(hash, line);
            }
        }
    }

    fn count_tokens(&mut self, line: usize, text: &str) {
        let Some(tokenizer) = self.tokenizer else {
            return;
        };
        let encoded = match catch_tokenizer_panic("encoding", || tokenizer.encode_fast(text, false))
        {
            Ok(encoded) => encoded,
            Err(reason) => {
                // Its state is suspect after a panic: stop using it.
                self.tokenizer = None;
                self.tokenizer_panic = Some(format!("line {line}: {reason}"));
                return;
            }
        };
        match encoded {
            Ok(encoding) => {
                let tokens = encoding.len();
                self.token_counts
                    .push(u32::try_from(tokens).unwrap_or(u32::MAX));
                if tokens > self.opts.max_tokens {
                    self.over_max.push(line);
                }
            }
            Err(e) => {
                let reason = e.to_string();
                self.warning(
                    "tokenize-failed",
                    "samples the tokenizer could not encode",
                    line,
                    || format!("line {line}: {reason}"),
                );
            }
        }
    }

    fn finish(mut self, tokenizer_path: Option<PathBuf>) -> DataReport {
        let stage = self.opts.stage;
        let non_blank = self.counts.lines - self.counts.blank_lines;
        if non_blank == 0 {
            self.findings.whole(
                Severity::Error,
                "empty-file",
                "the file holds no samples (it is empty or only blank lines)".to_string(),
                &LineList::default(),
            );
        }
        if self.counts.blank_lines > 0 {
            self.findings.whole(
                Severity::Warning,
                "blank-lines",
                format!(
                    "{} blank lines were skipped; some loaders reject them",
                    self.counts.blank_lines
                ),
                &LineList::default(),
            );
        }
        self.format_findings(stage);
        if self.counts.duplicates > 0 && !self.opts.allow_duplicates {
            let pairs: Vec<String> = self
                .duplicate_pairs
                .iter()
                .take(10)
                .map(|[a, b]| format!("{b} repeats {a}"))
                .collect();
            let more = if self.counts.duplicates > pairs.len() {
                ", …"
            } else {
                ""
            };
            let what = match stage {
                Stage::Dapt => "texts",
                Stage::Sft => "conversations",
            };
            self.findings.whole(
                Severity::Error,
                "duplicates",
                format!(
                    "{} duplicate {what} (identical after NFC and whitespace collapse): {}{more}; \
                     duplicates over-weight those samples — deduplicate, or pass \
                     --allow-duplicates if the repetition is intended",
                    self.counts.duplicates,
                    pairs.join(", ")
                ),
                &self.duplicates.clone(),
            );
        }
        if !self.markers_found.is_empty() {
            let all: Vec<&str> = self.markers_found.iter().map(String::as_str).collect();
            if let Some((_, pending)) = self
                .findings
                .per_line
                .iter_mut()
                .find(|(code, _)| *code == "template-tokens-in-content")
            {
                pending.first = format!("{}; markers found: {}", pending.first, all.join(", "));
            }
        }
        let script = self.script_findings(stage);
        let tokens = self.token_stats(tokenizer_path);
        let findings = std::mem::take(&mut self.findings).into_sorted();
        let passed = !findings.iter().any(|f| f.severity == Severity::Error);
        DataReport {
            path: self.opts.path.clone(),
            stage,
            passed,
            counts: self.counts,
            script,
            tokens,
            duplicate_pairs: self.duplicate_pairs,
            findings,
        }
    }

    fn format_findings(&mut self, stage: Stage) {
        let (wanted, other, other_name) = match stage {
            Stage::Dapt => (&self.text_lines, &self.chat_lines, "{\"messages\"}"),
            Stage::Sft => (&self.chat_lines, &self.text_lines, "{\"text\"}"),
        };
        if other.count == 0 {
            return;
        }
        let expected = stage.expected_format();
        if wanted.count == 0 {
            let (hint, was) = match stage {
                Stage::Dapt => ("--stage sft", "chat (SFT)"),
                Stage::Sft => ("--stage dapt", "raw-text (DAPT)"),
            };
            let message = format!(
                "all {} samples are {was} lines ({other_name}), but stage {stage} expects \
                 {expected}; check with {hint} if this file is meant for that stage",
                other.count
            );
            let lines = other.clone();
            self.findings
                .whole(Severity::Error, "wrong-format", message, &lines);
        } else {
            let message = format!(
                "mixed formats: {} {other_name} lines among {} lines in the {stage} format \
                 {expected}; mixing raw text into chat SFT makes the trainer render the text \
                 lines without roles, and the model learns to emit \"systemsystemsystem…\" — \
                 keep DAPT and SFT data in separate files",
                other.count, wanted.count
            );
            let lines = other.clone();
            self.findings
                .whole(Severity::Error, "mixed-formats", message, &lines);
        }
    }

    fn script_findings(&mut self, stage: Stage) -> Option<ScriptStats> {
        let expected = self.expected?;
        let language = self.opts.lang.clone().unwrap_or_default();
        let measured_over = match stage {
            Stage::Dapt => "text",
            Stage::Sft => "assistant turns",
        };
        let acc = &self.main_share;
        let min = self.opts.min_script_share;
        let max_off = self.opts.max_off_script_samples;
        let mut new_findings = Vec::new();
        if acc.measured == 0 {
            if self.counts.samples > 0 {
                new_findings.push((
                    Severity::Warning,
                    "no-letters",
                    format!(
                        "no letters in the {measured_over} of any sample; the {} script share \
                         could not be measured",
                        title(expected)
                    ),
                    LineList::default(),
                ));
            }
        } else {
            let mean = acc.mean();
            if mean < min {
                let dominant = acc.mix.dominant().unwrap_or(Script::Other);
                let lead = if dominant != expected {
                    format!(
                        "{:.0} % of letters are {}; ",
                        100.0 * acc.mix.share(dominant),
                        title(dominant)
                    )
                } else {
                    String::new()
                };
                new_findings.push((
                    Severity::Error,
                    "off-script",
                    format!(
                        "{lead}expected {} ≥ {:.0} %: the mean {} share per sample of the \
                         {measured_over} is {:.1} % (letters by script: {}); this is not {} \
                         data — filter or translate it",
                        title(expected),
                        100.0 * min,
                        title(expected),
                        100.0 * mean,
                        acc.mix.describe(),
                        language
                    ),
                    LineList::default(),
                ));
            }
            if acc.off_share() > max_off {
                new_findings.push((
                    Severity::Error,
                    "off-script-samples",
                    format!(
                        "{} of {} samples ({:.1} %) have less than {:.0} % {} letters in their \
                         {measured_over}; at most {:.0} % may",
                        acc.off.count,
                        acc.measured,
                        100.0 * acc.off_share(),
                        100.0 * OFF_SCRIPT_SAMPLE_SHARE,
                        title(expected),
                        100.0 * max_off
                    ),
                    acc.off.clone(),
                ));
            }
        }
        for (severity, code, message, lines) in new_findings {
            self.findings.whole(severity, code, message, &lines);
        }
        Some(ScriptStats {
            language,
            expected,
            measured_over,
            share: self.main_share.stats(),
            user_turns: (stage == Stage::Sft).then(|| self.user_share.stats()),
        })
    }

    fn token_stats(&mut self, tokenizer_path: Option<PathBuf>) -> Option<TokenStats> {
        let tokenizer = tokenizer_path?;
        if self.over_max.count > 0 {
            let message = format!(
                "{} samples are longer than {} tokens; the trainer truncates them (or drops \
                 them) — split them or raise the sequence length",
                self.over_max.count, self.opts.max_tokens
            );
            let lines = self.over_max.clone();
            self.findings
                .whole(Severity::Warning, "over-max-tokens", message, &lines);
        }
        let counted = match self.opts.stage {
            Stage::Dapt => "tokens of the text, without special tokens",
            Stage::Sft => {
                "tokens of all message contents joined by newlines; excludes the chat-template \
                 overhead (role markers and special tokens)"
            }
        };
        let mut sorted = std::mem::take(&mut self.token_counts);
        sorted.sort_unstable();
        let total: u64 = sorted.iter().map(|&n| u64::from(n)).sum();
        let count = sorted.len();
        let at = |q: f64| -> usize {
            if count == 0 {
                return 0;
            }
            let rank = (q * count as f64).ceil() as usize;
            sorted[rank.clamp(1, count) - 1] as usize
        };
        Some(TokenStats {
            tokenizer,
            counted,
            count,
            min: sorted.first().map_or(0, |&n| n as usize),
            mean: if count == 0 {
                0.0
            } else {
                total as f64 / count as f64
            },
            p50: at(0.5),
            p95: at(0.95),
            max: sorted.last().map_or(0, |&n| n as usize),
            max_tokens: self.opts.max_tokens,
            over_max_tokens: self.over_max.count,
            total,
        })
    }
}

/// Append `text` in NFC with every run of whitespace collapsed to one space (trimmed).
fn push_normalized(out: &mut String, text: &str) {
    let mut pending_space = false;
    let start = out.len();
    for c in text.nfc() {
        if c.is_whitespace() {
            pending_space = true;
        } else {
            if pending_space && out.len() > start {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        }
    }
}

/// The first 128 bits of the SHA-256 of `text` (collisions are not a practical concern).
fn hash128(text: &str) -> u128 {
    let digest = Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(bytes)
}

fn non_space_chars(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

/// "a string", "a number", … for messages about a JSON value.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A script name with a capital first letter, for messages ("Tamil").
pub(crate) fn title(script: Script) -> String {
    let name = script.name();
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn percent(share: f64) -> String {
    format!("{:.1} %", 100.0 * share)
}

impl fmt::Display for DataReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed() { "PASSED" } else { "FAILED" };
        writeln!(
            f,
            "validate-data {} (stage {})",
            self.path.display(),
            self.stage
        )?;
        writeln!(
            f,
            "  result            {verdict} ({}, {})",
            plural(self.errors(), "error"),
            plural(self.warnings(), "warning")
        )?;
        let c = &self.counts;
        writeln!(
            f,
            "  lines             {} ({} blank, {} rejected)",
            c.lines, c.blank_lines, c.rejected
        )?;
        writeln!(
            f,
            "  samples           {} well-formed ({} text lines, {} chat lines), {} duplicates",
            c.samples, c.text_lines, c.chat_lines, c.duplicates
        )?;
        if self.stage == Stage::Sft {
            writeln!(
                f,
                "  turns             {} system, {} user, {} assistant",
                c.system_turns, c.user_turns, c.assistant_turns
            )?;
        }
        writeln!(f, "  characters        {}", c.characters)?;
        if let Some(script) = &self.script {
            writeln!(
                f,
                "script mix ({}, measured over {})",
                script.language, script.measured_over
            )?;
            write_share(f, script.expected, &script.share, script.measured_over)?;
            if let Some(user) = &script.user_turns {
                write_share(f, script.expected, user, "user turns")?;
            }
        }
        if let Some(t) = &self.tokens {
            writeln!(f, "tokens ({}; {})", t.tokenizer.display(), t.counted)?;
            writeln!(
                f,
                "  {:>8} {:>7} {:>9} {:>7} {:>7} {:>7} {:>12}",
                "samples",
                "min",
                "mean",
                "p50",
                "p95",
                "max",
                format!("> {}", t.max_tokens)
            )?;
            writeln!(
                f,
                "  {:>8} {:>7} {:>9.1} {:>7} {:>7} {:>7} {:>12}",
                t.count, t.min, t.mean, t.p50, t.p95, t.max, t.over_max_tokens
            )?;
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

fn write_share(
    f: &mut fmt::Formatter<'_>,
    expected: Script,
    share: &ScriptShare,
    over: &str,
) -> fmt::Result {
    writeln!(
        f,
        "  {over:<17} mean {} share {} over {} samples; {} below 50 % ({}); {} without letters",
        expected,
        percent(share.mean_share),
        share.samples_measured,
        share.off_script_samples,
        percent(share.off_script_sample_share),
        share.samples_without_letters
    )?;
    let mut by_share: Vec<(&Script, &f64)> = share.script_shares.iter().collect();
    by_share.sort_by(|a, b| b.1.total_cmp(a.1));
    let listed: Vec<String> = by_share
        .iter()
        .map(|(script, s)| format!("{script} {}", percent(**s)))
        .collect();
    writeln!(
        f,
        "  {:<17} {} letters: {}",
        "",
        share.letters,
        if listed.is_empty() {
            "none".to_string()
        } else {
            listed.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/data")
            .join(name)
            .join("data.jsonl")
    }

    fn tokenizer_fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tokenizers")
            .join(name)
    }

    fn run(name: &str, stage: Stage, lang: Option<&str>) -> DataReport {
        let mut opts = ValidateOptions::new(fixture(name), stage);
        opts.lang = lang.map(str::to_string);
        validate_data(&opts).expect("fixture is readable")
    }

    fn finding<'r>(report: &'r DataReport, code: &str) -> &'r Finding {
        report
            .findings
            .iter()
            .find(|f| f.code == code)
            .unwrap_or_else(|| panic!("expected finding {code}, got:\n{report}"))
    }

    fn error_codes(report: &DataReport) -> Vec<&'static str> {
        report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.code)
            .collect()
    }

    fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut file, bytes).expect("write temp file");
        file
    }

    #[test]
    fn clean_sft_passes() {
        let report = run("clean-sft-ta", Stage::Sft, Some("ta"));
        assert!(report.passed(), "{report}");
        assert!(report.passed);
        assert_eq!(report.counts.samples, 5);
        assert_eq!(report.counts.chat_lines, 5);
        assert_eq!(report.counts.user_turns, 5);
        assert_eq!(report.counts.assistant_turns, 5);
        assert_eq!(report.counts.system_turns, 1);
        let script = report.script.as_ref().expect("script stats with --lang");
        assert_eq!(script.expected, Script::Tamil);
        assert_eq!(script.share.samples_measured, 5);
        // The answers hold only Tamil letters (digits like 1330 are not letters).
        assert_eq!(script.share.mean_share, 1.0);
        assert_eq!(script.share.off_script_samples, 0);
        let user = script.user_turns.as_ref().expect("user-turn stats for sft");
        assert_eq!(user.mean_share, 1.0);
        assert!(report.to_string().contains("PASSED"));
    }

    #[test]
    fn clean_dapt_with_bom_and_crlf_passes() {
        let path = fixture("clean-dapt-ta");
        let raw = std::fs::read(&path).expect("read fixture");
        assert!(
            raw.starts_with(b"\xEF\xBB\xBF"),
            "fixture must keep its BOM"
        );
        assert!(
            raw.windows(2).any(|w| w == b"\r\n"),
            "fixture must keep CRLF"
        );
        let report = run("clean-dapt-ta", Stage::Dapt, Some("ta"));
        assert!(report.passed(), "{report}");
        assert_eq!(report.counts.samples, 5);
        assert_eq!(report.counts.lines, 5);
        let script = report.script.as_ref().expect("script stats");
        assert_eq!(script.measured_over, "text");
        assert_eq!(script.share.mean_share, 1.0);
        assert!(script.user_turns.is_none());
    }

    #[test]
    fn mixed_formats_fail() {
        let report = run("mixed-formats", Stage::Sft, None);
        assert!(!report.passed());
        let f = finding(&report, "mixed-formats");
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.lines, vec![2, 4]);
        assert!(f.message.contains("systemsystemsystem"), "{}", f.message);
        assert_eq!(report.counts.samples, 3);
    }

    #[test]
    fn english_heavy_tamil_fails_with_numbers() {
        let report = run("english-heavy-ta", Stage::Sft, Some("ta"));
        assert!(!report.passed());
        let script = report.script.as_ref().expect("script stats");
        // Three answers are all Latin (share 0), one is all Tamil (share 1).
        assert_eq!(script.share.samples_measured, 4);
        assert_eq!(script.share.off_script_samples, 3);
        assert_eq!(script.share.mean_share, 0.25);
        let user = script.user_turns.as_ref().expect("user-turn stats");
        assert_eq!(user.mean_share, 1.0, "questions are Tamil");
        let off = finding(&report, "off-script");
        let latin = script.share.script_shares[&Script::Latin];
        assert!(latin > 0.5);
        let quoted = format!(
            "{:.0} % of letters are Latin; expected Tamil ≥ 60 %",
            100.0 * latin
        );
        assert!(
            off.message.contains(&quoted),
            "{} lacks {quoted}",
            off.message
        );
        assert!(off.message.contains("25.0 %"), "{}", off.message);
        let samples = finding(&report, "off-script-samples");
        assert_eq!(samples.lines, vec![1, 2, 3]);
        assert!(
            samples.message.contains("3 of 4 samples (75.0 %)"),
            "{}",
            samples.message
        );
        // Without --lang, the same file passes: the check is only as good as the label.
        assert!(run("english-heavy-ta", Stage::Sft, None).passed());
    }

    #[test]
    fn thresholds_are_configurable() {
        let mut opts = ValidateOptions::new(fixture("english-heavy-ta"), Stage::Sft);
        opts.lang = Some("ta".to_string());
        opts.min_script_share = 0.2;
        opts.max_off_script_samples = 0.8;
        let report = validate_data(&opts).expect("readable");
        assert!(report.passed(), "{report}");
        opts.min_script_share = 1.5;
        assert!(matches!(validate_data(&opts), Err(DataError::BadOption(_))));
        opts.min_script_share = 0.6;
        opts.lang = Some("xx".to_string());
        assert!(matches!(
            validate_data(&opts),
            Err(DataError::UnknownLanguage(_))
        ));
    }

    #[test]
    fn missing_assistant_turns_fail() {
        let report = run("missing-assistant", Stage::Sft, None);
        let f = finding(&report, "missing-turn");
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.lines, vec![2, 3]);
        assert!(f.message.contains("assistant"), "{}", f.message);
        assert_eq!(report.counts.samples, 2);
        assert_eq!(report.counts.rejected, 2);
    }

    #[test]
    fn template_tokens_in_content_fail() {
        let report = run("template-tokens", Stage::Sft, None);
        let f = finding(&report, "template-tokens-in-content");
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.lines, vec![2, 3]);
        assert!(f.message.contains("<|im_start|>"), "{}", f.message);
        assert!(f.message.contains("<|im_end|>"), "{}", f.message);
        assert!(f.message.contains("markers found: "), "{}", f.message);
        assert!(f.message.contains("[INST]"), "{}", f.message);
        assert_eq!(error_codes(&report), vec!["template-tokens-in-content"]);
    }

    #[test]
    fn tokenizer_special_tokens_are_markers_too() {
        let file = write_temp(
            "{\"text\": \"plain text that is long enough to pass the short check\"}\n\
             {\"text\": \"a custom marker <|custom_tag|> inside a long enough text\"}\n"
                .as_bytes(),
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let source = tokenizer_fixture("chatml-ok").join("tokenizer.json");
        let mut json: Value =
            serde_json::from_str(&std::fs::read_to_string(source).expect("read fixture"))
                .expect("fixture is JSON");
        let added = json["added_tokens"]
            .as_array_mut()
            .expect("added_tokens list");
        added.push(
            serde_json::json!({"id": 306, "content": "<|custom_tag|>", "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false, "special": true}),
        );
        std::fs::write(dir.path().join("tokenizer.json"), json.to_string()).expect("write");
        let mut opts = ValidateOptions::new(file.path(), Stage::Dapt);
        assert!(validate_data(&opts).expect("readable").passed());
        opts.tokenizer = Some(dir.path().to_path_buf());
        let report = validate_data(&opts).expect("readable");
        let f = finding(&report, "template-tokens-in-content");
        assert_eq!(f.lines, vec![2]);
        assert!(f.message.contains("<|custom_tag|>"), "{}", f.message);
    }

    #[test]
    fn duplicates_fail_unless_allowed() {
        let report = run("duplicates", Stage::Sft, None);
        let f = finding(&report, "duplicates");
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.lines, vec![4, 5]);
        assert_eq!(report.duplicate_pairs, vec![[1, 4], [2, 5]]);
        assert!(f.message.contains("4 repeats 1"), "{}", f.message);
        let mut opts = ValidateOptions::new(fixture("duplicates"), Stage::Sft);
        opts.allow_duplicates = true;
        let allowed = validate_data(&opts).expect("readable");
        assert!(allowed.passed(), "{allowed}");
        assert_eq!(allowed.counts.duplicates, 2);
    }

    #[test]
    fn bad_json_line_fails_with_its_number() {
        let report = run("bad-json", Stage::Dapt, None);
        let f = finding(&report, "invalid-json");
        assert_eq!(f.lines, vec![3]);
        assert!(f.message.contains("line 3"), "{}", f.message);
        assert_eq!(report.counts.samples, 3);
    }

    #[test]
    fn dapt_file_given_to_sft_fails() {
        let report = run("clean-dapt-ta", Stage::Sft, Some("ta"));
        assert_eq!(error_codes(&report), vec!["wrong-format"]);
        let f = finding(&report, "wrong-format");
        assert_eq!(f.count, 5);
        assert!(f.message.contains("--stage dapt"), "{}", f.message);
        let report = run("clean-sft-ta", Stage::Dapt, None);
        assert_eq!(error_codes(&report), vec!["wrong-format"]);
    }

    #[test]
    fn sharegpt_and_unknown_roles_are_refused() {
        let file = write_temp(
            br#"{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
{"messages": [{"role": "human", "content": "hi"}, {"role": "assistant", "content": "hello there"}]}
{"messages": [{"role": "user", "content": null}, {"role": "assistant", "content": "hello there"}]}
"#,
        );
        let report =
            validate_data(&ValidateOptions::new(file.path(), Stage::Sft)).expect("readable");
        let share = finding(&report, "sharegpt-format");
        assert!(share.message.contains("\"messages\""), "{}", share.message);
        assert_eq!(finding(&report, "unknown-role").lines, vec![2]);
        assert_eq!(finding(&report, "bad-message").lines, vec![3]);
        assert!(finding(&report, "unknown-role").message.contains("user"));
    }

    #[test]
    fn empty_file_bad_utf8_and_empty_text_fail() {
        let empty = write_temp(b"\n\n");
        let report =
            validate_data(&ValidateOptions::new(empty.path(), Stage::Dapt)).expect("readable");
        assert_eq!(error_codes(&report), vec!["empty-file"]);

        let bad = write_temp(b"{\"text\": \"good text that is long enough\"}\n{\"text\": \"\xff\xfe\"}\n{\"text\": \"  \"}\n");
        let report =
            validate_data(&ValidateOptions::new(bad.path(), Stage::Dapt)).expect("readable");
        assert_eq!(finding(&report, "bad-utf8").lines, vec![2]);
        assert_eq!(finding(&report, "empty-text").lines, vec![3]);
        assert_eq!(report.counts.samples, 1);

        let missing = ValidateOptions::new("/nonexistent/data.jsonl", Stage::Dapt);
        assert!(matches!(validate_data(&missing), Err(DataError::Io { .. })));
    }

    #[test]
    fn crlf_and_bom_are_stripped() {
        let file = write_temp(
            "\u{feff}{\"text\": \"first line of text, long enough\"}\r\n\
             {\"text\": \"first line of text, long enough\"}\r\n"
                .as_bytes(),
        );
        let report =
            validate_data(&ValidateOptions::new(file.path(), Stage::Dapt)).expect("readable");
        assert_eq!(report.counts.samples, 2);
        assert_eq!(report.duplicate_pairs, vec![[1, 2]], "{report}");
    }

    #[test]
    fn tokenizer_library_panics_are_tokenizer_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let json = crate::convert::vocab::tests::panicking_tokenizer_json();
        std::fs::write(dir.path().join("tokenizer.json"), json.to_string()).expect("write");
        let err = load_tokenizer(dir.path()).expect_err("the library panics on it");
        assert!(
            matches!(&err, DataError::Tokenizer { reason, .. } if reason.contains("panicked")),
            "{err}"
        );
        let mut opts = ValidateOptions::new(fixture("clean-sft-ta"), Stage::Sft);
        opts.tokenizer = Some(dir.path().to_path_buf());
        let err = validate_data(&opts).expect_err("tokenizer error");
        assert!(matches!(err, DataError::Tokenizer { .. }), "{err}");
    }

    #[test]
    fn token_statistics_use_the_tokenizer() {
        let mut opts = ValidateOptions::new(fixture("clean-sft-ta"), Stage::Sft);
        opts.tokenizer = Some(tokenizer_fixture("chatml-ok"));
        let (_, tokenizer) =
            load_tokenizer(&tokenizer_fixture("chatml-ok")).expect("fixture tokenizer loads");
        let report = validate_data(&opts).expect("readable");
        assert!(report.passed(), "{report}");
        let tokens = report.tokens.as_ref().expect("token stats");
        assert_eq!(tokens.count, 5);
        assert!(tokens.min <= tokens.p50 && tokens.p50 <= tokens.p95 && tokens.p95 <= tokens.max);
        assert!(tokens.counted.contains("excludes the chat-template"));
        // Independent count of the first sample (contents joined by newlines).
        let first = std::fs::read_to_string(fixture("clean-sft-ta")).expect("read");
        let first: Value =
            serde_json::from_str(first.lines().next().expect("a line")).expect("json");
        let joined = first["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["content"].as_str().expect("content"))
            .collect::<Vec<_>>()
            .join("\n");
        let expected = tokenizer
            .encode(joined.as_str(), false)
            .expect("encode")
            .len();
        assert!(expected > 0);
        assert!(tokens.min <= expected && expected <= tokens.max);

        opts.max_tokens = tokens.min;
        let report = validate_data(&opts).expect("readable");
        assert!(report.passed(), "over-long samples only warn");
        let over = finding(&report, "over-max-tokens");
        assert_eq!(over.severity, Severity::Warning);
        let expected_over = report.tokens.as_ref().map_or(0, |t| t.over_max_tokens);
        assert_eq!(over.count, expected_over);
        assert!((1..5).contains(&expected_over));
    }

    #[test]
    fn marker_set_finds_overlapping_lengths() {
        let set = MarkerSet::new(
            ["<s>", "</s>", "<start_of_turn>", "[INST]"]
                .iter()
                .map(|s| s.to_string()),
        );
        assert_eq!(
            set.find("x<start_of_turn>y</s>z<s>"),
            vec!["<start_of_turn>", "</s>", "<s>"]
        );
        assert!(set.find("<b>plain</b> [inst] தமிழ் <").is_empty());
    }

    #[test]
    fn normalization_collapses_whitespace_and_composes() {
        let mut a = String::new();
        push_normalized(&mut a, "  கொ \t x\n");
        let mut b = String::new();
        push_normalized(&mut b, "க\u{0BC6}\u{0BBE} x");
        assert_eq!(a, b);
        assert_eq!(a, "கொ x");
    }

    #[test]
    fn report_serializes_to_json() {
        let report = run("english-heavy-ta", Stage::Sft, Some("ta"));
        let json = serde_json::to_value(&report).expect("serialize");
        assert_eq!(json["passed"], false);
        assert_eq!(json["stage"], "sft");
        assert_eq!(json["script"]["expected"], "tamil");
        assert!(json["findings"][0]["severity"] == "error");
        let text = report.to_string();
        assert!(text.contains("FAILED"), "{text}");
        assert!(text.contains("off-script"), "{text}");
    }
}
