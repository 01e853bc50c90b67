//! Plain records crossing the boundary, and their conversions from core types. A core type
//! that already has the binding's shape crosses as itself: `#[uniffi::remote]` repeats its
//! fields for the generated code, and a field core adds fails this build (decision 0015).

use std::collections::HashMap;

use vazhi_core::app::AskOverrides;
use vazhi_core::download::{CatalogEntry, Phase, Progress, VerifiedModel};
use vazhi_core::feedback::ExportReport;
use vazhi_core::knowledge::{self, Hit};

// Core's types under the names the bindings give them.
pub use vazhi_core::app::AskOverrides as AskOptions;
pub use vazhi_core::download::Phase as DownloadPhase;
pub use vazhi_core::engine::ToolSpec;
pub use vazhi_core::feedback::{ExportReport as FeedbackExport, Rating};
pub use vazhi_core::knowledge::{Card, Hit as SearchHit};

/// A knowledge record as shown to the user, verbatim, with where it came from.
#[uniffi::remote(Record)]
pub struct Card {
    /// Pack name.
    pub pack: String,
    /// Pack title.
    pub pack_title: String,
    /// Pack version.
    pub pack_version: String,
    /// The pack's licence.
    pub licence: String,
    /// Record id within the pack.
    pub id: String,
    /// Title.
    pub title: String,
    /// Body, verbatim.
    pub body: String,
    /// Language tag.
    pub lang: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Citation.
    pub source: String,
}

/// A search result.
#[uniffi::remote(Record)]
#[uniffi(name = "SearchHit")]
pub struct Hit {
    /// The record.
    pub card: Card,
    /// Relevance, higher is better.
    pub score: f64,
    /// The matching part of the body, matches in `[` `]`.
    pub snippet: String,
}

/// An installed knowledge pack.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PackInfo {
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Version.
    pub version: String,
    /// Licence.
    pub licence: String,
    /// Source.
    pub source: String,
    /// Records.
    pub records: u64,
    /// How it was trusted at import: `shipped`, `key:<hex>`, `unsigned`, or `unknown`
    /// (imported before Vazhi recorded it).
    pub trust: String,
}

impl From<knowledge::PackInfo> for PackInfo {
    fn from(p: knowledge::PackInfo) -> Self {
        Self {
            name: p.name,
            title: p.title,
            version: p.version,
            licence: p.licence,
            source: p.source,
            records: p.records,
            trust: p.provenance.to_db(),
        }
    }
}

/// What a pack import did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ImportReport {
    /// Pack name.
    pub name: String,
    /// Version now installed.
    pub version: String,
    /// Version it replaced.
    pub replaced: Option<String>,
    /// Records imported.
    pub records: u64,
    /// How it was trusted: `shipped`, `key:<hex>` or `unsigned`.
    pub trust: String,
}

impl From<knowledge::ImportReport> for ImportReport {
    fn from(r: knowledge::ImportReport) -> Self {
        Self {
            name: r.name,
            version: r.version,
            replaced: r.replaced,
            records: r.records as u64,
            trust: r.provenance.to_db(),
        }
    }
}

/// Per-question settings; `None` keeps the assistant's default.
#[uniffi::remote(Record)]
#[uniffi(name = "AskOptions")]
pub struct AskOverrides {
    /// Most tokens the model may write.
    #[uniffi(default = None)]
    pub max_tokens: Option<u32>,
    /// Sampling temperature (0 = greedy).
    #[uniffi(default = None)]
    pub temperature: Option<f32>,
    /// Random seed.
    #[uniffi(default = None)]
    pub seed: Option<u32>,
    /// A JSON Schema the model's answer must follow (then the model answers even an exact
    /// question, grounded on its record). A schema that cannot be used fails `ask` with
    /// `InvalidInput`.
    #[uniffi(default = None)]
    pub json_schema: Option<String>,
    /// A GBNF grammar (start rule `root`) the model's answer must follow; not with
    /// `json_schema`.
    #[uniffi(default = None)]
    pub grammar: Option<String>,
    /// The app's tools the model may call: each call reaches `AskListener.on_tool_call` and
    /// waits for `TaskHandle.submit_tool_result`. Needs a chat template that renders tools
    /// (`VazhiConfig.chat_template`); not with a schema or grammar.
    #[uniffi(default = [])]
    pub tools: Vec<ToolSpec>,
    /// Offer the built-in knowledge tools `lookup(pack, key)` and `search(query)`; their
    /// records arrive as cards.
    #[uniffi(default = false)]
    pub builtin_tools: bool,
    /// The model's first move must be a tool call; what follows the results is its choice.
    #[uniffi(default = false)]
    pub require_tool_call: bool,
    /// Send the model's reasoning (`<think>…</think>`) to `AskListener.on_reasoning`; hidden
    /// otherwise.
    #[uniffi(default = false)]
    pub show_reasoning: bool,
    /// The `enable_thinking` variable for chat templates that read it.
    #[uniffi(default = None)]
    pub enable_thinking: Option<bool>,
}

/// A tool the model may call: its name (letters, digits, `_`, `-`, `.`), what it does, and
/// its parameters as JSON Schema text (an object schema; empty when it takes none).
#[uniffi::remote(Record)]
pub struct ToolSpec {
    /// The name the model calls it by.
    pub name: String,
    /// What it does, for the model.
    #[uniffi(default = "")]
    pub description: String,
    /// JSON Schema text of its arguments.
    #[uniffi(default = "")]
    pub parameters: String,
}

/// A call the model made.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ToolCall {
    /// The call's id within the answer: give it to `TaskHandle.submit_tool_result`.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, JSON object text.
    pub arguments_json: String,
    /// A built-in knowledge tool, run by Vazhi: it takes no result from the app.
    pub builtin: bool,
}

/// How an answer ended.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct AnswerSummary {
    /// The route taken: `lookup`, `search`, `hybrid` or `generate`.
    pub route: String,
    /// Cards sent.
    pub cards: u32,
    /// The model's whole text (empty when it did not speak).
    pub text: String,
    /// The route wanted the model but none is loaded: the cards are the answer.
    pub model_unavailable: bool,
    /// Why the model stopped (`end_of_text`, `stop_string`, `max_tokens`, `context_full`,
    /// `cancelled`, `incomplete`, `invalid`, `tool_calls`, `unsupported`), when it spoke.
    pub finish: Option<String>,
    /// Tokens the model wrote.
    pub generated_tokens: u32,
    /// Tool calls the model made (built-in and the app's).
    pub tool_calls: u32,
    /// Sentences the fact guard found unsupported (marked, dropped, or stopped at).
    pub unsupported_sentences: u32,
    /// The task preset the answer was written with (its text is then JSON that follows the
    /// task's schema).
    pub task: Option<String>,
    /// Time to the first token, ms.
    pub time_to_first_token_ms: Option<f64>,
    /// Generation speed, tokens per second.
    pub tokens_per_second: Option<f64>,
}

/// A model in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CatalogModel {
    /// Catalog id.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Quantization.
    pub quant: String,
    /// Architecture.
    pub arch: String,
    /// Context length.
    pub context_length: u32,
    /// RAM needed, MiB.
    pub min_ram_mb: u64,
    /// Licence of the weights.
    pub licence: String,
}

impl From<&CatalogEntry> for CatalogModel {
    fn from(e: &CatalogEntry) -> Self {
        Self {
            id: e.id.clone(),
            name: e.name.clone(),
            size: e.size,
            sha256: e.sha256.clone(),
            quant: e.quant.clone(),
            arch: e.arch.clone(),
            context_length: e.context_length,
            min_ram_mb: e.min_ram_mb,
            licence: e.licence.clone(),
        }
    }
}

/// An installed, verified model.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InstalledModel {
    /// Catalog id.
    pub id: String,
    /// The file.
    pub path: String,
    /// SHA-256 it was verified against.
    pub sha256: String,
    /// Size.
    pub size: u64,
}

impl From<VerifiedModel> for InstalledModel {
    fn from(m: VerifiedModel) -> Self {
        Self {
            id: m.id().to_owned(),
            path: m.path().display().to_string(),
            sha256: m.sha256().to_owned(),
            size: m.size(),
        }
    }
}

/// Where a model stands on this device.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ModelState {
    /// Nothing here.
    Absent,
    /// A partial download.
    Partial {
        /// Bytes downloaded.
        bytes: u64,
    },
    /// Installed and verified.
    Installed {
        /// The model.
        model: InstalledModel,
    },
    /// A file is installed that was not verified against the current catalog pin.
    Unverified,
}

/// What a download is doing.
#[uniffi::remote(Enum)]
#[uniffi(name = "DownloadPhase")]
pub enum Phase {
    /// Contacting the server.
    Connecting,
    /// Receiving bytes.
    Downloading,
    /// Waiting before a retry.
    Retrying,
    /// Checking the SHA-256.
    Verifying,
    /// Verified and installed.
    Installed,
}

/// A throttled progress event.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DownloadProgress {
    /// Catalog id.
    pub id: String,
    /// Phase.
    pub phase: Phase,
    /// Bytes on disk.
    pub bytes: u64,
    /// Total size.
    pub total: u64,
    /// Smoothed speed, bytes per second.
    pub bytes_per_second: f64,
    /// Estimated seconds left.
    pub eta_seconds: Option<f64>,
}

impl From<&Progress> for DownloadProgress {
    fn from(p: &Progress) -> Self {
        Self {
            id: p.id.clone(),
            phase: p.phase,
            bytes: p.bytes,
            total: p.total,
            bytes_per_second: p.bytes_per_sec,
            eta_seconds: p.eta.map(|d| d.as_secs_f64()),
        }
    }
}

/// How a download call ended without an error.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum DownloadOutcome {
    /// Verified and installed.
    Installed {
        /// The model.
        model: InstalledModel,
    },
    /// Paused; downloading again resumes.
    Paused {
        /// Bytes kept.
        bytes: u64,
    },
    /// Cancelled; the partial file was deleted.
    Cancelled,
}

impl From<vazhi_core::download::DownloadOutcome> for DownloadOutcome {
    fn from(outcome: vazhi_core::download::DownloadOutcome) -> Self {
        match outcome {
            vazhi_core::download::DownloadOutcome::Installed(m) => {
                DownloadOutcome::Installed { model: m.into() }
            }
            vazhi_core::download::DownloadOutcome::Paused { bytes } => {
                DownloadOutcome::Paused { bytes }
            }
            vazhi_core::download::DownloadOutcome::Cancelled => DownloadOutcome::Cancelled,
        }
    }
}

/// Up or down.
#[uniffi::remote(Enum)]
pub enum Rating {
    /// Helpful.
    Up,
    /// Not helpful.
    Down,
}

/// A rating to record.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FeedbackInput {
    /// The user's question (encrypted at rest).
    pub question: String,
    /// How it was answered (`lookup`, `model`…).
    pub route: String,
    /// The answer shown (encrypted).
    pub answer: String,
    /// Card ids shown (encrypted).
    #[uniffi(default = [])]
    pub card_ids: Vec<String>,
    /// The rating.
    pub rating: Rating,
    /// The user's correction (encrypted).
    #[uniffi(default = None)]
    pub correction: Option<String>,
    /// Model catalog id.
    #[uniffi(default = None)]
    pub model_id: Option<String>,
    /// Model SHA-256.
    #[uniffi(default = None)]
    pub model_sha256: Option<String>,
    /// Pack versions, name → version.
    pub pack_versions: HashMap<String, String>,
    /// Unix ms (default: now).
    #[uniffi(default = None)]
    pub created_at_ms: Option<i64>,
}

/// A decrypted feedback record.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FeedbackRecord {
    /// Record id, hex.
    pub record_id: String,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Route.
    pub route: String,
    /// Rating.
    pub rating: Rating,
    /// Question.
    pub question: String,
    /// Answer.
    pub answer: String,
    /// Card ids.
    pub card_ids: Vec<String>,
    /// Correction.
    pub correction: Option<String>,
    /// Model id.
    pub model_id: Option<String>,
    /// Model SHA-256.
    pub model_sha256: Option<String>,
    /// Pack versions.
    pub pack_versions: HashMap<String, String>,
}

/// A record kept but unreadable (key missing, altered, malformed).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UnreadableFeedback {
    /// Record id, hex.
    pub record_id: String,
    /// Unix ms.
    pub created_at_ms: i64,
    /// `key_missing`, `tampered` or `malformed`.
    pub reason: String,
}

/// What a listing found.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FeedbackListing {
    /// Readable records, oldest first.
    pub records: Vec<FeedbackRecord>,
    /// Records kept but unreadable.
    pub unreadable: Vec<UnreadableFeedback>,
}

/// What an export wrote.
#[uniffi::remote(Record)]
#[uniffi(name = "FeedbackExport")]
pub struct ExportReport {
    /// Records written.
    pub exported: u64,
    /// Unreadable records skipped.
    pub unreadable: u64,
}

/// What saving a conversation wrote.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SavedSession {
    /// Bytes of the file.
    pub bytes: u64,
    /// Messages in the saved history.
    pub messages: u64,
    /// Tokens whose KV state was saved (0: the text history only; the next answer after a
    /// restore re-reads it).
    pub state_tokens: u64,
}

impl From<vazhi_core::sessions::SavedSession> for SavedSession {
    fn from(s: vazhi_core::sessions::SavedSession) -> Self {
        Self {
            bytes: s.bytes,
            messages: s.messages as u64,
            state_tokens: s.state_tokens as u64,
        }
    }
}

/// How much of a saved conversation came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RestoreKind {
    /// History and KV state: the next answer reads only its new message.
    Restored,
    /// The history only (see `reason`): the next answer re-reads it.
    HistoryOnly,
    /// Nothing could be read (see `reason`): an empty conversation.
    Empty,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RestoreReport {
    /// How much came back.
    pub kind: RestoreKind,
    /// Messages in the restored history.
    pub messages: u64,
    /// Tokens whose KV state was loaded.
    pub tokens: u64,
    /// Why the KV state was not used: a stable code (`tampered`, `truncated`,
    /// `model_changed`, `llama_version_changed`, `unsupported_format`, `key_unavailable`, …).
    pub reason: Option<String>,
    /// The reason in words.
    pub detail: Option<String>,
}

impl From<&vazhi_core::sessions::RestoreOutcome> for RestoreReport {
    fn from(o: &vazhi_core::sessions::RestoreOutcome) -> Self {
        use vazhi_core::sessions::RestoreOutcome as O;
        Self {
            kind: match o {
                O::Restored { .. } => RestoreKind::Restored,
                O::HistoryOnly { .. } => RestoreKind::HistoryOnly,
                O::Empty { .. } => RestoreKind::Empty,
            },
            messages: o.messages() as u64,
            tokens: o.tokens() as u64,
            reason: o.issue().map(|i| i.code().to_owned()),
            detail: o.issue().map(ToString::to_string),
        }
    }
}
