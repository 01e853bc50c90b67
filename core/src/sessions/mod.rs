//! Conversations that survive an app restart: a conversation's history and llama.cpp's KV state
//! for it, saved to one encrypted file ([`file`](mod@file)) and restored into a new process without
//! re-reading the history.
//!
//! Saving ([`crate::assistant::Conversation::save`]) takes the engine's cache only when it
//! still holds this conversation (otherwise the next answer would re-read the history in this
//! process too, and the file holds the text alone). Restoring
//! ([`crate::assistant::Assistant::restore_conversation`]) authenticates the history, checks
//! that the running engine is the one the state was saved with (llama.cpp release, model
//! SHA-256, context size, cache type, template, system prompt), authenticates the state, and
//! only then gives its bytes to llama.cpp. Any mismatch or damage is a [`RestoreIssue`]: the
//! conversation goes on from its text history (the next answer re-reads it), or, when not even
//! the history can be read, starts empty. See `docs/decisions/0002-engine-worker-and-kv-reuse.md`.

pub mod file;

use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use crate::engine::{ChatSession, Engine, EngineError, KvSnapshot, Message};
use crate::error_kind::ErrorKind;
use crate::feedback::crypto::TAG_LEN;
use crate::feedback::{KeyError, KeyProvider};
use file::{Contents, SavedHistory, SavedMessage};

/// The key (in the app's [`KeyProvider`]) session files are sealed with; created on the first
/// save.
pub const SESSION_KEY_ID: &str = "vazhi-sessions";

/// Room in a session file beyond the KV state: header, history, token list.
pub const FILE_OVERHEAD_BYTES: u64 = 1 << 20;

/// Why a conversation could not be saved, or a session file not read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// No model is loaded: a conversation without one keeps no history.
    #[error("no model is loaded: a conversation without one has no history to save")]
    NoModel,
    /// The conversation is answering or waits for tool results.
    #[error("{0}")]
    Busy(String),
    /// The file would exceed its cap (the KV bytes for the context plus 1 MiB; the history
    /// at most 512 KiB).
    #[error("the session is {bytes} bytes, over its cap of {max}")]
    TooLarge {
        /// The size it would have.
        bytes: u64,
        /// The cap.
        max: u64,
    },
    /// The key provider failed.
    #[error("session key: {0}")]
    Key(#[from] KeyError),
    /// Reading or writing the file failed (a missing file included).
    #[error("session file: {0}")]
    Io(#[from] std::io::Error),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl SessionError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SessionError::NoModel => ErrorKind::ModelUnloaded,
            SessionError::Busy(_) => ErrorKind::Busy,
            SessionError::TooLarge { .. } => ErrorKind::InvalidInput,
            SessionError::Key(KeyError::Timeout { .. }) => ErrorKind::Busy,
            SessionError::Key(KeyError::InvalidId) => ErrorKind::InvalidInput,
            SessionError::Key(KeyError::Backend(_)) => ErrorKind::KeyUnavailable,
            SessionError::Io(e) if e.kind() == std::io::ErrorKind::StorageFull => {
                ErrorKind::InsufficientResources
            }
            SessionError::Io(_) => ErrorKind::Io,
            SessionError::Engine(e) => e.kind(),
        }
    }
}

/// Why a restore did not load the saved KV state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreIssue {
    /// The file is not a session file.
    #[error("not a session file")]
    NotASessionFile,
    /// A session format this build does not read (written by a newer Vazhi).
    #[error("session format {found} is not one this build reads")]
    UnsupportedFormat {
        /// The file's format number.
        found: u32,
    },
    /// The file ends early.
    #[error("the file is cut short")]
    Truncated,
    /// The file's structure is broken.
    #[error("the file is damaged")]
    Damaged,
    /// Authentication failed: the file was altered, or sealed with another key.
    #[error("the file failed authentication (altered, or another key)")]
    Tampered,
    /// The key the file was sealed with is gone (for example a restore to a new phone).
    #[error("the session key is gone")]
    KeyUnavailable,
    /// The file could not be read to the end.
    #[error("the file could not be read: {detail}")]
    Unreadable {
        /// The operating system's message.
        detail: String,
    },
    /// No model is loaded; a conversation without one keeps no history.
    #[error("no model is loaded")]
    NoModel,
    /// The state was saved by another llama.cpp release.
    #[error("saved by {saved}, running {running}")]
    LlamaVersionChanged {
        /// The release that saved it.
        saved: String,
        /// This build's.
        running: String,
    },
    /// The state was saved with another model file.
    #[error("saved with another model")]
    ModelChanged,
    /// The state was saved with another context size.
    #[error("saved with a {saved}-token context, running {running}")]
    ContextChanged {
        /// The saved context size.
        saved: u32,
        /// The running one.
        running: u32,
    },
    /// The state was saved with another KV cache type.
    #[error("saved with a {saved} KV cache, running {running}")]
    CacheTypeChanged {
        /// The saved type.
        saved: String,
        /// The running one.
        running: String,
    },
    /// The state was saved with another chat template.
    #[error("saved with another chat template")]
    TemplateChanged,
    /// The app's system prompt changed since the save.
    #[error("the system prompt changed")]
    SystemPromptChanged,
    /// The file holds the history only (the engine's cache held another conversation when
    /// it was saved).
    #[error("no KV state was saved")]
    NoStateSaved,
    /// The file exceeds the cap for this engine (KV bytes for its context plus 1 MiB); the
    /// state was not read.
    #[error("the file is {bytes} bytes, over the cap of {max}")]
    TooLarge {
        /// The file's size.
        bytes: u64,
        /// The cap.
        max: u64,
    },
    /// llama.cpp did not accept the state.
    #[error("llama.cpp did not accept the state: {detail}")]
    StateRejected {
        /// What failed.
        detail: String,
    },
}

impl RestoreIssue {
    /// A stable, machine-readable name (`tampered`, `model_changed`, …).
    pub fn code(&self) -> &'static str {
        match self {
            RestoreIssue::NotASessionFile => "not_a_session_file",
            RestoreIssue::UnsupportedFormat { .. } => "unsupported_format",
            RestoreIssue::Truncated => "truncated",
            RestoreIssue::Damaged => "damaged",
            RestoreIssue::Tampered => "tampered",
            RestoreIssue::KeyUnavailable => "key_unavailable",
            RestoreIssue::Unreadable { .. } => "unreadable",
            RestoreIssue::NoModel => "no_model",
            RestoreIssue::LlamaVersionChanged { .. } => "llama_version_changed",
            RestoreIssue::ModelChanged => "model_changed",
            RestoreIssue::ContextChanged { .. } => "context_changed",
            RestoreIssue::CacheTypeChanged { .. } => "cache_type_changed",
            RestoreIssue::TemplateChanged => "template_changed",
            RestoreIssue::SystemPromptChanged => "system_prompt_changed",
            RestoreIssue::NoStateSaved => "no_state_saved",
            RestoreIssue::TooLarge { .. } => "too_large",
            RestoreIssue::StateRejected { .. } => "state_rejected",
        }
    }
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// History and KV state restored: the next answer reads only its new message.
    Restored {
        /// Messages in the history.
        messages: usize,
        /// Tokens whose KV entries were loaded.
        tokens: usize,
    },
    /// The history was restored, not the state: the next answer re-reads the history.
    HistoryOnly {
        /// Messages in the history.
        messages: usize,
        /// Why the state was not used.
        issue: RestoreIssue,
    },
    /// Nothing could be read: the conversation starts empty.
    Empty {
        /// Why.
        issue: RestoreIssue,
    },
}

impl RestoreOutcome {
    /// Messages in the restored history.
    pub fn messages(&self) -> usize {
        match self {
            RestoreOutcome::Restored { messages, .. }
            | RestoreOutcome::HistoryOnly { messages, .. } => *messages,
            RestoreOutcome::Empty { .. } => 0,
        }
    }

    /// Tokens whose KV state was loaded.
    pub fn tokens(&self) -> usize {
        match self {
            RestoreOutcome::Restored { tokens, .. } => *tokens,
            _ => 0,
        }
    }

    /// Why the KV state was not used, if it was not.
    pub fn issue(&self) -> Option<&RestoreIssue> {
        match self {
            RestoreOutcome::Restored { .. } => None,
            RestoreOutcome::HistoryOnly { issue, .. } | RestoreOutcome::Empty { issue } => {
                Some(issue)
            }
        }
    }
}

/// What a save wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedSession {
    /// Bytes of the file.
    pub bytes: u64,
    /// Messages in the history.
    pub messages: usize,
    /// Tokens whose KV state was saved (0: the text history only).
    pub state_tokens: usize,
}

/// The largest session file for `engine`: the KV bytes for its context plus 1 MiB.
pub fn max_file_bytes(engine: &Engine) -> u64 {
    engine
        .info()
        .plan
        .kv_bytes
        .saturating_add(FILE_OVERHEAD_BYTES)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Saves `session` to `path`, atomically, sealed with the provider's session key.
pub(crate) fn save(
    session: &ChatSession,
    path: &Path,
    keys: &dyn KeyProvider,
) -> Result<SavedSession, SessionError> {
    let _span = tracing::info_span!("save_session").entered();
    let engine = session.engine();
    let snapshot = session.snapshot().map_err(|e| match e {
        EngineError::InvalidParams(why) => SessionError::Busy(why),
        other => SessionError::Engine(other),
    })?;
    // Without the model's hash no state can be bound to it: the history alone is saved (a
    // restore then reports `model_changed` and goes on from it).
    let (fingerprint, mut kv) = match engine.state_fingerprint() {
        Ok(fingerprint) => (fingerprint, snapshot.kv),
        Err(e) => {
            tracing::warn!(error = %e, "no model fingerprint; saving the history only");
            let fingerprint = crate::engine::StateFingerprint {
                llama_cpp: crate::engine::LLAMA_CPP_VERSION.to_owned(),
                model_sha256: String::new(),
                n_ctx: engine.info().plan.n_ctx,
                kv_cache: String::new(),
                template_sha256: String::new(),
            };
            (fingerprint, None)
        }
    };
    let messages = snapshot.history.len();
    let history = SavedHistory {
        system: snapshot.system,
        messages: snapshot
            .history
            .into_iter()
            .map(SavedMessage::from)
            .collect(),
    };
    let history_json = Zeroizing::new(serde_json::to_vec(&history).unwrap_or_default());
    let sealed_history = (history_json.len() + TAG_LEN) as u64;
    if sealed_history > file::MAX_HISTORY_BYTES {
        return Err(SessionError::TooLarge {
            bytes: sealed_history,
            max: file::MAX_HISTORY_BYTES,
        });
    }
    let key = session_key(keys)?;
    let seal = |state: Option<&KvSnapshot>| {
        file::seal(&Contents {
            fingerprint: &fingerprint,
            key_id: SESSION_KEY_ID,
            key: &key,
            history: &history_json,
            state: state.map(|kv| (kv.tokens.as_slice(), kv.state.as_slice())),
            now_ms: now_ms(),
        })
        .map_err(|e| SessionError::Io(std::io::Error::other(e.to_string())))
    };
    let max = max_file_bytes(engine);
    let mut bytes = seal(kv.as_ref())?;
    if bytes.len() as u64 > max && kv.is_some() {
        // Over the cap a restore would refuse the state: keep the history alone.
        tracing::warn!(
            bytes = bytes.len(),
            max,
            "the KV state is over the cap; saving the history only"
        );
        kv = None;
        bytes = seal(None)?;
    }
    if bytes.len() as u64 > max {
        return Err(SessionError::TooLarge {
            bytes: bytes.len() as u64,
            max,
        });
    }
    write_private(path, &bytes)?;
    let state_tokens = kv.as_ref().map_or(0, |kv| kv.tokens.len());
    tracing::debug!(bytes = bytes.len(), state_tokens, "session saved");
    Ok(SavedSession {
        bytes: bytes.len() as u64,
        messages,
        state_tokens,
    })
}

/// The session key, created on first use. Two first saves at once must not create two keys
/// (a provider that overwrites would leave the first file unreadable): one at a time in this
/// process (reads included), and a failed create (another process was first) reads the key
/// again. A restore reads the key outside this lock: it never creates one.
fn session_key(keys: &dyn KeyProvider) -> Result<crate::feedback::Key, SessionError> {
    // Reads too: a key being created may be half written.
    static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = CREATING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(key) = keys.get(SESSION_KEY_ID)? {
        return Ok(key);
    }
    match keys.create(SESSION_KEY_ID) {
        Ok(key) => Ok(key),
        Err(e) => keys.get(SESSION_KEY_ID)?.ok_or(SessionError::Key(e)),
    }
}

/// Writes `bytes` to `path` atomically, readable by the owner only, and makes the rename
/// durable.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::fsutil::write_atomically_with_mode(path, bytes, 0o600)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    crate::fsutil::sync_dir(dir.unwrap_or(Path::new(".")))
}

/// A restored conversation's session (none without a model) and what the restore did.
pub(crate) fn restore(
    path: &Path,
    keys: &dyn KeyProvider,
    engine: Option<&Engine>,
    system: Option<String>,
) -> Result<(Option<ChatSession>, RestoreOutcome), SessionError> {
    let _span = tracing::info_span!("restore_session").entered();
    let fresh = |issue: RestoreIssue| {
        tracing::info!(issue = issue.code(), "session not restored; starting empty");
        (
            engine.map(|e| e.session(system.clone())),
            RestoreOutcome::Empty { issue },
        )
    };
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let front = match file::read_front(&mut file, len) {
        Ok(front) => front,
        Err(issue) => return Ok(fresh(issue)),
    };
    if front.header.key_id != SESSION_KEY_ID {
        return Ok(fresh(RestoreIssue::Damaged));
    }
    let Some(key) = keys.get(&front.header.key_id)? else {
        return Ok(fresh(RestoreIssue::KeyUnavailable));
    };
    let history = match file::open_history(&front, &key) {
        Ok(history) => history,
        Err(issue) => return Ok(fresh(issue)),
    };
    let Some(engine) = engine else {
        return Ok(fresh(RestoreIssue::NoModel));
    };
    let messages: Vec<Message> = history.messages.into_iter().map(Message::from).collect();
    let count = messages.len();
    let session = engine.session_with_history(system.clone(), messages);
    let fallback = |session: ChatSession, issue: RestoreIssue| {
        tracing::info!(
            issue = issue.code(),
            "session state not used; the history will be re-read"
        );
        Ok((
            Some(session),
            RestoreOutcome::HistoryOnly {
                messages: count,
                issue,
            },
        ))
    };
    let running = match engine.state_fingerprint() {
        Ok(running) => running,
        Err(e) => {
            return fallback(
                session,
                RestoreIssue::StateRejected {
                    detail: e.to_string(),
                },
            )
        }
    };
    let saved = &front.header.fingerprint;
    let mismatch = if saved.llama_cpp != running.llama_cpp {
        Some(RestoreIssue::LlamaVersionChanged {
            saved: saved.llama_cpp.clone(),
            running: running.llama_cpp.clone(),
        })
    } else if saved.model_sha256 != running.model_sha256 {
        Some(RestoreIssue::ModelChanged)
    } else if saved.n_ctx != running.n_ctx {
        Some(RestoreIssue::ContextChanged {
            saved: saved.n_ctx,
            running: running.n_ctx,
        })
    } else if saved.kv_cache != running.kv_cache {
        Some(RestoreIssue::CacheTypeChanged {
            saved: saved.kv_cache.clone(),
            running: running.kv_cache.clone(),
        })
    } else if saved.template_sha256 != running.template_sha256 {
        Some(RestoreIssue::TemplateChanged)
    } else if history.system != system {
        Some(RestoreIssue::SystemPromptChanged)
    } else if front.header.state_bytes == 0 {
        Some(RestoreIssue::NoStateSaved)
    } else {
        None
    };
    if let Some(issue) = mismatch {
        return fallback(session, issue);
    }
    let max = max_file_bytes(engine);
    if len > max {
        return fallback(session, RestoreIssue::TooLarge { bytes: len, max });
    }
    if len < front.expected_len() {
        return fallback(session, RestoreIssue::Truncated);
    }
    if len > front.expected_len() {
        return fallback(session, RestoreIssue::Damaged);
    }
    let mut sealed = Zeroizing::new(vec![0u8; front.header.state_bytes as usize]);
    if let Err(e) = file.read_exact(&mut sealed) {
        let issue = match e.kind() {
            std::io::ErrorKind::UnexpectedEof => RestoreIssue::Truncated,
            _ => RestoreIssue::Unreadable {
                detail: e.to_string(),
            },
        };
        return fallback(session, issue);
    }
    // The MAC over header, history and state is checked here, before llama.cpp sees a byte.
    let state = match file::open_state(&front, &sealed, &key) {
        Ok(state) => state,
        Err(issue) => return fallback(session, issue),
    };
    let tokens = state.tokens.len();
    let snapshot = KvSnapshot {
        tokens: state.tokens,
        state: state.kv,
    };
    if let Err(e) = session.load_kv(snapshot) {
        return fallback(
            session,
            RestoreIssue::StateRejected {
                detail: e.to_string(),
            },
        );
    }
    tracing::info!(tokens, messages = count, "session restored");
    Ok((
        Some(session),
        RestoreOutcome::Restored {
            messages: count,
            tokens,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_llama_cpp_version_is_the_one_built() {
        // A state is only read back by the release that wrote it: bumping llama-cpp-2 without
        // bumping `LLAMA_CPP_VERSION` would load states of another layout.
        let lock = include_str!("../../../Cargo.lock");
        let version = crate::engine::LLAMA_CPP_VERSION
            .strip_prefix("llama-cpp-sys-2 ")
            .unwrap_or_default();
        assert!(
            lock.contains(&format!(
                "name = \"llama-cpp-sys-2\"\nversion = \"{version}\""
            )),
            "Cargo.lock does not pin llama-cpp-sys-2 {version}"
        );
    }

    #[test]
    fn every_issue_has_its_own_code() {
        let issues = [
            RestoreIssue::NotASessionFile,
            RestoreIssue::UnsupportedFormat { found: 2 },
            RestoreIssue::Truncated,
            RestoreIssue::Damaged,
            RestoreIssue::Tampered,
            RestoreIssue::KeyUnavailable,
            RestoreIssue::Unreadable { detail: "x".into() },
            RestoreIssue::NoModel,
            RestoreIssue::LlamaVersionChanged {
                saved: "a".into(),
                running: "b".into(),
            },
            RestoreIssue::ModelChanged,
            RestoreIssue::ContextChanged {
                saved: 1,
                running: 2,
            },
            RestoreIssue::CacheTypeChanged {
                saved: "f16".into(),
                running: "q8_0".into(),
            },
            RestoreIssue::TemplateChanged,
            RestoreIssue::SystemPromptChanged,
            RestoreIssue::NoStateSaved,
            RestoreIssue::TooLarge { bytes: 2, max: 1 },
            RestoreIssue::StateRejected { detail: "x".into() },
        ];
        let codes: std::collections::BTreeSet<_> = issues.iter().map(RestoreIssue::code).collect();
        assert_eq!(codes.len(), issues.len());
    }
}
