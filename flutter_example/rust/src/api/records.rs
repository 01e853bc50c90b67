//! Plain records crossing to Dart, and their conversions from core types. Rust enums with data
//! would become `freezed` classes in Dart (a build_runner step); events are therefore structs
//! with a `kind` and the fields that kind fills.
//! A core type that already has the shape and name Dart sees crosses as itself: a
//! `#[frb(mirror)]` struct repeats its fields for the codegen (decision 0015).

use std::collections::HashMap;

use flutter_rust_bridge::frb;
use vazhi_core::assistant::{AnswerSummary as CoreSummary, AssistantEvent};
use vazhi_core::download::{self, CatalogEntry, Phase, Progress, VerifiedModel};
use vazhi_core::knowledge;

pub use vazhi_core::engine::ToolSpec;
pub use vazhi_core::knowledge::Card;

/// A tool the model may call: its name (letters, digits, `_`, `-`, `.`), what it does, and its
/// parameters as JSON Schema text (an object schema; empty when it takes none).
#[frb(mirror(ToolSpec))]
#[derive(Debug)]
pub struct _ToolSpec {
    /// The name the model calls it by.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema text of its arguments.
    pub parameters: String,
}

/// A call the model made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// The call's id within the answer: give it to `AnswerTask.submitToolResult`.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, JSON object text.
    pub arguments_json: String,
    /// A built-in knowledge tool, run by Vazhi: it takes no result from the app.
    pub builtin: bool,
}

/// A knowledge record as shown to the user, verbatim, with where it came from.
#[frb(mirror(Card))]
#[derive(Debug)]
pub struct _Card {
    /// Pack name.
    pub pack: String,
    /// Pack title.
    pub pack_title: String,
    /// Pack version.
    pub pack_version: String,
    /// The pack's licence (show it on the card).
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
    /// Citation (show it on the card).
    pub source: String,
}

/// A search result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The record.
    pub card: Card,
    /// Relevance, higher is better.
    pub score: f64,
    /// The matching part of the body, matches in `[` `]`.
    pub snippet: String,
}

impl From<knowledge::Hit> for SearchHit {
    fn from(h: knowledge::Hit) -> Self {
        Self {
            card: h.card,
            score: h.score,
            snippet: h.snippet,
        }
    }
}

/// An installed knowledge pack.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// How it was trusted: `shipped`, `key:<hex>`, `unsigned` or `unknown`.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Pack name.
    pub name: String,
    /// Version now installed.
    pub version: String,
    /// Version it replaced.
    pub replaced: Option<String>,
    /// Records imported.
    pub records: u64,
    /// How it was trusted: `shipped`, `key:<hex>`, `unsigned` or `unknown`.
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

/// Per-question settings; `null` keeps the assistant's default.
#[frb(non_opaque)]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AskOptions {
    /// Most tokens the model may write.
    pub max_tokens: Option<u32>,
    /// Sampling temperature (0 = greedy).
    pub temperature: Option<f32>,
    /// Random seed.
    pub seed: Option<u32>,
    /// A JSON Schema the model's answer must follow (then the model answers even an exact
    /// question, grounded on its record). A schema that cannot be used fails `ask`.
    pub json_schema: Option<String>,
    /// A GBNF grammar (start rule `root`) the model's answer must follow; not with
    /// `json_schema`.
    pub grammar: Option<String>,
    /// The app's tools the model may call: each call arrives as a `toolCall` event and waits
    /// for `AnswerTask.submitToolResult`. Needs a chat template that renders tools
    /// (`VazhiAppConfig.chatTemplate`); not with a schema or grammar.
    #[frb(default = [])]
    pub tools: Vec<ToolSpec>,
    /// Offer the built-in knowledge tools `lookup(pack, key)` and `search(query)`; their
    /// records arrive as cards.
    #[frb(default = false)]
    pub builtin_tools: bool,
    /// The model's first move must be a tool call; what follows the results is its choice.
    #[frb(default = false)]
    pub require_tool_call: bool,
    /// Send the model's reasoning (`<think>…</think>`) as `reasoning` events; hidden
    /// otherwise.
    #[frb(default = false)]
    pub show_reasoning: bool,
    /// The `enable_thinking` variable for chat templates that read it.
    pub enable_thinking: Option<bool>,
}

impl From<AskOptions> for vazhi_core::app::AskOverrides {
    fn from(o: AskOptions) -> Self {
        Self {
            max_tokens: o.max_tokens,
            temperature: o.temperature,
            seed: o.seed,
            json_schema: o.json_schema,
            grammar: o.grammar,
            tools: o.tools,
            builtin_tools: o.builtin_tools,
            require_tool_call: o.require_tool_call,
            show_reasoning: o.show_reasoning,
            enable_thinking: o.enable_thinking,
        }
    }
}

/// How an answer ended.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerSummary {
    /// The route taken: `lookup`, `search`, `hybrid` or `generate`.
    pub route: String,
    /// Cards sent.
    pub cards: u32,
    /// The model's whole text (empty when it did not speak).
    pub text: String,
    /// The route wanted the model but none is loaded: the cards are the answer (say what the
    /// model would add).
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

impl From<CoreSummary> for AnswerSummary {
    fn from(s: CoreSummary) -> Self {
        Self {
            route: s.route.to_string(),
            cards: s.cards as u32,
            text: s.text,
            model_unavailable: s.model_unavailable,
            finish: s.finish.map(|f| f.as_str().to_owned()),
            generated_tokens: s.metrics.as_ref().map_or(0, |m| m.generated_tokens),
            tool_calls: s.tool_calls,
            unsupported_sentences: s.unsupported_sentences,
            task: s.task,
            time_to_first_token_ms: s.metrics.as_ref().map(|m| m.time_to_first_token_ms),
            tokens_per_second: s.metrics.as_ref().map(|m| m.generation_tokens_per_s),
        }
    }
}

/// Which part of an answer an [`AskEvent`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskEventKind {
    /// First: the route chosen (`route`) and why (`reason`).
    Routed,
    /// A knowledge card, verbatim (`card`): the answer's source is the knowledge base.
    Card,
    /// Model text, whole characters (`text`): the answer's source is the model.
    Token,
    /// The model's reasoning (`text`); only with `AskOptions.showReasoning`.
    Reasoning,
    /// The model called a tool (`toolCall`). For an app's tool the answer waits for
    /// `AnswerTask.submitToolResult(call.id, result)`; a built-in call is run by Vazhi.
    ToolCall,
    /// Last: the answer is complete (`summary`).
    Done,
}

/// One event of a streamed answer. Order: `routed`, then cards, then tokens, then `done`; a
/// failure ends the stream with a [`crate::api::error::VazhiException`] instead of `done`.
#[derive(Debug, Clone, PartialEq)]
pub struct AskEvent {
    /// Which fields are set.
    pub kind: AskEventKind,
    /// `routed`: the route.
    pub route: Option<String>,
    /// `routed`: why.
    pub reason: Option<String>,
    /// `card`: the card.
    pub card: Option<Card>,
    /// `token`, `reasoning`: the text.
    pub text: Option<String>,
    /// `token`: the fact guard found a fact in this sentence that neither the question nor
    /// the cards hold.
    pub unsupported: bool,
    /// `toolCall`: the call.
    pub tool_call: Option<ToolCall>,
    /// `done`: the summary.
    pub summary: Option<AnswerSummary>,
}

impl AskEvent {
    fn of(kind: AskEventKind) -> Self {
        Self {
            kind,
            route: None,
            reason: None,
            card: None,
            text: None,
            unsupported: false,
            tool_call: None,
            summary: None,
        }
    }
}

/// A core event as a Dart event, or the error that ends the stream.
pub(crate) fn ask_event(
    event: AssistantEvent,
) -> Result<AskEvent, crate::api::error::VazhiException> {
    Ok(match event {
        AssistantEvent::Routed { route, reason } => AskEvent {
            route: Some(route.to_string()),
            reason: Some(reason.to_string()),
            ..AskEvent::of(AskEventKind::Routed)
        },
        AssistantEvent::Card(card) => AskEvent {
            card: Some(card),
            ..AskEvent::of(AskEventKind::Card)
        },
        AssistantEvent::Token { text, unsupported } => AskEvent {
            text: Some(text),
            unsupported,
            ..AskEvent::of(AskEventKind::Token)
        },
        AssistantEvent::Done(summary) => AskEvent {
            summary: Some(summary.into()),
            ..AskEvent::of(AskEventKind::Done)
        },
        AssistantEvent::Reasoning(text) => AskEvent {
            text: Some(text),
            ..AskEvent::of(AskEventKind::Reasoning)
        },
        AssistantEvent::ToolCall { call, builtin } => AskEvent {
            tool_call: Some(ToolCall {
                id: call.id,
                name: call.name,
                arguments_json: call.arguments.to_string(),
                builtin,
            }),
            ..AskEvent::of(AskEventKind::ToolCall)
        },
        AssistantEvent::Failed(e) => return Err(e.into()),
    })
}

/// A model in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelState {
    /// Nothing here.
    Absent,
    /// A partial download (`partial_bytes`): downloading again resumes.
    Partial,
    /// Installed and verified against the catalog's SHA-256 (`installed`).
    Installed,
    /// A file is installed that was not verified against the current catalog pin.
    Unverified,
}

/// A model's state with the data that state has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelStatus {
    /// The state.
    pub state: ModelState,
    /// `partial`: bytes downloaded.
    pub partial_bytes: Option<u64>,
    /// `installed`: the verified model.
    pub installed: Option<InstalledModel>,
}

impl From<download::ModelStatus> for ModelStatus {
    fn from(s: download::ModelStatus) -> Self {
        let (state, partial_bytes, installed) = match s {
            download::ModelStatus::Absent => (ModelState::Absent, None, None),
            download::ModelStatus::Partial { bytes } => (ModelState::Partial, Some(bytes), None),
            download::ModelStatus::Installed(m) => (ModelState::Installed, None, Some(m.into())),
            download::ModelStatus::Unverified => (ModelState::Unverified, None, None),
        };
        Self {
            state,
            partial_bytes,
            installed,
        }
    }
}

/// What a download is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadPhase {
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

/// A throttled progress report.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadProgress {
    /// Catalog id.
    pub id: String,
    /// Phase.
    pub phase: DownloadPhase,
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
            phase: match p.phase {
                Phase::Connecting => DownloadPhase::Connecting,
                Phase::Downloading => DownloadPhase::Downloading,
                Phase::Retrying => DownloadPhase::Retrying,
                Phase::Verifying => DownloadPhase::Verifying,
                Phase::Installed => DownloadPhase::Installed,
            },
            bytes: p.bytes,
            total: p.total,
            bytes_per_second: p.bytes_per_sec,
            eta_seconds: p.eta.map(|d| d.as_secs_f64()),
        }
    }
}

/// Which part of a download a [`DownloadEvent`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadEventKind {
    /// Progress (`progress`).
    Progress,
    /// Last: verified and installed (`installed`).
    Installed,
    /// Last: paused (`bytes` kept); downloading again resumes.
    Paused,
    /// Last: cancelled; the partial file was deleted.
    Cancelled,
}

/// One event of a download. A failure ends the stream with a
/// [`crate::api::error::VazhiException`] instead of a last event.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadEvent {
    /// Which fields are set.
    pub kind: DownloadEventKind,
    /// `progress`: the report.
    pub progress: Option<DownloadProgress>,
    /// `installed`: the model.
    pub installed: Option<InstalledModel>,
    /// `paused`: bytes kept.
    pub bytes: Option<u64>,
}

impl DownloadEvent {
    pub(crate) fn progress(p: &Progress) -> Self {
        Self {
            kind: DownloadEventKind::Progress,
            progress: Some(p.into()),
            installed: None,
            bytes: None,
        }
    }
}

impl From<download::DownloadOutcome> for DownloadEvent {
    fn from(o: download::DownloadOutcome) -> Self {
        let (kind, installed, bytes) = match o {
            download::DownloadOutcome::Installed(m) => {
                (DownloadEventKind::Installed, Some(m.into()), None)
            }
            download::DownloadOutcome::Paused { bytes } => {
                (DownloadEventKind::Paused, None, Some(bytes))
            }
            download::DownloadOutcome::Cancelled => (DownloadEventKind::Cancelled, None, None),
        };
        Self {
            kind,
            progress: None,
            installed,
            bytes,
        }
    }
}

pub use vazhi_core::feedback::Rating;

/// Up or down.
#[frb(mirror(Rating))]
#[derive(Debug)]
pub enum _Rating {
    /// Helpful.
    Up,
    /// Not helpful.
    Down,
}

/// A rating to record (question, answer, card ids and correction are encrypted at rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackInput {
    /// The user's question.
    pub question: String,
    /// How it was answered (the answer's route).
    pub route: String,
    /// The answer shown.
    pub answer: String,
    /// Card ids shown.
    pub card_ids: Vec<String>,
    /// The rating.
    pub rating: Rating,
    /// The user's correction.
    pub correction: Option<String>,
    /// Model catalog id.
    pub model_id: Option<String>,
    /// Model SHA-256.
    pub model_sha256: Option<String>,
    /// Pack versions, name → version.
    pub pack_versions: HashMap<String, String>,
    /// Unix ms (default: now).
    pub created_at_ms: Option<i64>,
}

/// A decrypted feedback record.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A record kept but unreadable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableFeedback {
    /// Record id, hex.
    pub record_id: String,
    /// Unix ms.
    pub created_at_ms: i64,
    /// `key_missing`, `tampered` or `malformed`.
    pub reason: String,
}

/// What a listing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackListing {
    /// Readable records, oldest first.
    pub records: Vec<FeedbackRecord>,
    /// Records kept but unreadable.
    pub unreadable: Vec<UnreadableFeedback>,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackExport {
    /// Records written.
    pub exported: u64,
    /// Unreadable records skipped.
    pub unreadable: u64,
}

/// What saving a conversation wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSession {
    /// Bytes of the file.
    pub bytes: u64,
    /// Messages in the saved history.
    pub messages: u64,
    /// Tokens whose KV state was saved (0: the text history only; the first answer after a
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreKind {
    /// History and KV state: the next answer reads only its new message.
    Restored,
    /// The history only (see `reason`): the next answer re-reads it.
    HistoryOnly,
    /// Nothing could be read (see `reason`): an empty conversation.
    Empty,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
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
