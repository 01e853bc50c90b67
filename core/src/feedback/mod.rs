//! The encrypted feedback store: ratings and corrections of answers, kept in SQLite with every
//! field that holds user text encrypted (AES-256-GCM), so that a shared or stolen device shows
//! none of it, and no crash loses or corrupts it.
//!
//! ```text
//! feedback.db   meta (current key id) · keys (id, message counter) · feedback rows:
//!               plaintext: created_at, route, rating, model id/hash, pack versions, key id, nonce
//!               encrypted: question, answer, card ids, correction (one JSON payload per row)
//! ```
//!
//! Keys come from a [`KeyProvider`] ([`FileKeyProvider`] on the desktop). Each key encrypts at
//! most [`FeedbackConfig::rotate_after`] records (random 96-bit nonces are safe far beyond that
//! and far below 2^32); then a new key takes over and old ones stay readable until
//! [`FeedbackStore::reencrypt`]. If the current key is gone (an app restored to a new phone),
//! [`FeedbackStore::open`] fails with [`FeedbackError::KeyUnavailable`] and touches nothing;
//! [`FeedbackStore::open_fresh`] sets the unreadable database aside and starts a new one. There is
//! no plaintext fallback.
//!
//! Writes are transactions (`synchronous=FULL`, WAL): a batch is all or nothing. Reads use their
//! own connections, so readers run beside the one writer. Every method blocks on SQLite I/O:
//! async callers use `spawn_blocking`. User text never appears in logs above `trace` or in
//! error messages.

pub mod crypto;
pub mod import;
pub mod keys;
pub mod schema;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::fsutil::hex;

pub use keys::{
    FileKeyProvider, Key, KeyError, KeyProvider, TimedKeyProvider, DEFAULT_KEY_TIMEOUT,
};

use crypto::{
    associated_data_for, associated_data_v2, random, AuthenticationFailed, Columns, Sealer,
    RECORD_ID_LEN,
};

/// The record format written now (bound into each record's associated data). Format 2 binds
/// every column; format 1 (until issue 20) bound only the record id, key id and format, and
/// is re-sealed as format 2 when the store opens, wherever its key is present.
pub const RECORD_FORMAT: u32 = 2;
/// Largest question, in bytes.
pub const MAX_QUESTION_BYTES: usize = 8 * 1024;
/// Largest answer, in bytes.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Largest correction, in bytes.
pub const MAX_CORRECTION_BYTES: usize = 16 * 1024;
/// Largest route, model id, model hash, card id, pack name or version, in bytes.
pub const MAX_LABEL_BYTES: usize = 256;
/// Most card ids or pack versions on one record.
pub const MAX_LIST_ITEMS: usize = 64;

/// Why the feedback store refused or failed. Never contains user text.
#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    /// The key that encrypts the store is gone (e.g. restored to a new phone). Nothing was
    /// changed; the app may [`FeedbackStore::open_fresh`].
    #[error("feedback key {key_id} is unavailable; {records} records cannot be read (nothing was changed)")]
    KeyUnavailable {
        /// The missing key.
        key_id: String,
        /// Records in the store.
        records: u64,
    },
    /// The key provider failed.
    #[error("key provider: {0}")]
    Key(#[from] KeyError),
    /// A field is over its cap.
    #[error("{field} is {got} bytes; at most {max} are accepted")]
    TooLarge {
        /// The field.
        field: &'static str,
        /// Its cap.
        max: usize,
        /// Its size.
        got: usize,
    },
    /// A field from the bindings is not valid UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field.
        field: &'static str,
    },
    /// A field is empty or malformed.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The disk is full; nothing of the failed batch was written.
    #[error("storage is full; the feedback batch was not written")]
    StorageFull,
    /// SQLite reports the database file as damaged or not a database. It is left as it is.
    #[error("the feedback database is damaged ({0}); it was not modified")]
    Corrupt(String),
    /// The database was written by a newer version of Vazhi.
    #[error(
        "the feedback database has schema {found}, newer than this build's {}",
        schema::VERSION
    )]
    NewerSchema {
        /// Its version.
        found: u32,
    },
    /// Another SQLite error.
    #[error("feedback database: {0}")]
    Database(rusqlite::Error),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The OS random number generator failed.
    #[error("OS random number generator: {0}")]
    Rng(String),
}

impl From<rusqlite::Error> for FeedbackError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        // SQLITE_IOERR_SHMSIZE: growing the -shm file failed, which on a phone means a full disk.
        const SQLITE_IOERR_SHMSIZE: std::ffi::c_int = 4874;
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            if f.extended_code == SQLITE_IOERR_SHMSIZE {
                return Self::StorageFull;
            }
        }
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Self::StorageFull,
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                Self::Corrupt(e.to_string())
            }
            _ => Self::Database(e),
        }
    }
}

fn rng_error(e: getrandom::Error) -> FeedbackError {
    FeedbackError::Rng(e.to_string())
}

/// Up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    /// Helpful.
    Up,
    /// Not helpful.
    Down,
}

impl Rating {
    fn to_sql(self) -> i64 {
        match self {
            Self::Up => 1,
            Self::Down => -1,
        }
    }
    fn from_sql(v: i64) -> Self {
        if v > 0 {
            Self::Up
        } else {
            Self::Down
        }
    }
}

/// A rating to record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewFeedback {
    /// The user's question (encrypted).
    pub question: String,
    /// How it was answered (e.g. `exact:thirukkural`, `model`); an SDK label, not user text.
    pub route: String,
    /// The answer shown (encrypted).
    pub answer: String,
    /// Ids of the knowledge cards shown (encrypted: they reveal what was asked).
    pub card_ids: Vec<String>,
    /// The rating.
    pub rating: Option<Rating>,
    /// What the user says the answer should have been (encrypted).
    pub correction: Option<String>,
    /// Catalog id of the model that answered.
    pub model_id: Option<String>,
    /// SHA-256 of that model file.
    pub model_sha256: Option<String>,
    /// Installed pack versions (name → version).
    pub pack_versions: BTreeMap<String, String>,
    /// When, in Unix milliseconds (default: now).
    pub created_at_ms: Option<i64>,
}

/// Text handed over by the bindings as bytes: UTF-8 checked, the field named in the error.
pub fn text_from_bindings(field: &'static str, bytes: &[u8]) -> Result<String, FeedbackError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| FeedbackError::InvalidUtf8 { field })
}

impl NewFeedback {
    /// Checks the caps and required fields without writing (what `record_batch` checks first,
    /// so that callers can tell which item of a batch is at fault).
    pub fn validate(&self) -> Result<(), FeedbackError> {
        let cap = |field, text: &str, max| {
            if text.len() > max {
                Err(FeedbackError::TooLarge {
                    field,
                    max,
                    got: text.len(),
                })
            } else {
                Ok(())
            }
        };
        if self.question.trim().is_empty() {
            return Err(FeedbackError::Invalid {
                field: "question",
                reason: "is empty",
            });
        }
        if self.route.is_empty() {
            return Err(FeedbackError::Invalid {
                field: "route",
                reason: "is empty",
            });
        }
        if self.rating.is_none() {
            return Err(FeedbackError::Invalid {
                field: "rating",
                reason: "is missing",
            });
        }
        cap("question", &self.question, MAX_QUESTION_BYTES)?;
        cap("answer", &self.answer, MAX_ANSWER_BYTES)?;
        cap(
            "correction",
            self.correction.as_deref().unwrap_or(""),
            MAX_CORRECTION_BYTES,
        )?;
        cap("route", &self.route, MAX_LABEL_BYTES)?;
        cap(
            "model_id",
            self.model_id.as_deref().unwrap_or(""),
            MAX_LABEL_BYTES,
        )?;
        cap(
            "model_sha256",
            self.model_sha256.as_deref().unwrap_or(""),
            MAX_LABEL_BYTES,
        )?;
        if self.created_at_ms.is_some_and(|t| t < 0) {
            return Err(FeedbackError::Invalid {
                field: "created_at_ms",
                reason: "is before 1970",
            });
        }
        if self.card_ids.len() > MAX_LIST_ITEMS || self.pack_versions.len() > MAX_LIST_ITEMS {
            return Err(FeedbackError::TooLarge {
                field: "card_ids/pack_versions",
                max: MAX_LIST_ITEMS,
                got: self.card_ids.len().max(self.pack_versions.len()),
            });
        }
        for id in &self.card_ids {
            cap("card_id", id, MAX_LABEL_BYTES)?;
        }
        for (name, version) in &self.pack_versions {
            cap("pack name", name, MAX_LABEL_BYTES)?;
            cap("pack version", version, MAX_LABEL_BYTES)?;
        }
        Ok(())
    }
}

/// The encrypted part of a record, as written (borrowed: no unwiped copies of the text).
#[derive(Serialize)]
struct SecretRef<'a> {
    q: &'a str,
    a: &'a str,
    c: &'a [String],
    x: Option<&'a str>,
}

/// The encrypted part of a record, as read.
#[derive(Deserialize)]
struct Secret {
    q: String,
    a: String,
    c: Vec<String>,
    x: Option<String>,
}

/// A decrypted record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    /// Random record id, hex.
    pub record_id: String,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// How the question was answered.
    pub route: String,
    /// The rating.
    pub rating: Rating,
    /// The question.
    pub question: String,
    /// The answer.
    pub answer: String,
    /// Knowledge cards shown.
    pub card_ids: Vec<String>,
    /// The user's correction.
    pub correction: Option<String>,
    /// Model catalog id.
    pub model_id: Option<String>,
    /// Model SHA-256.
    pub model_sha256: Option<String>,
    /// Pack versions.
    pub pack_versions: BTreeMap<String, String>,
    /// The key that encrypts it.
    pub key_id: String,
    /// Its record format ([`RECORD_FORMAT`] once re-sealed).
    #[serde(default = "default_format")]
    pub format: u32,
}

fn default_format() -> u32 {
    RECORD_FORMAT
}

/// Why a stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unreadable {
    /// Its key is not in the key provider.
    KeyMissing,
    /// Authentication failed: wrong key, or nonce, ciphertext, tag or row data altered.
    Tampered,
    /// The row's plaintext columns are malformed.
    Malformed,
}

impl Unreadable {
    /// The snake_case name (as serialized): `key_missing`, `tampered`, `malformed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Unreadable::KeyMissing => "key_missing",
            Unreadable::Tampered => "tampered",
            Unreadable::Malformed => "malformed",
        }
    }
}

/// A record that is kept but cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnreadableRecord {
    /// Record id, hex (empty if the id itself is malformed).
    pub record_id: String,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// Its key (empty if the row's key id is malformed).
    pub key_id: String,
    /// Its record format as stored (1: sealed before every column was bound, kept because
    /// its key is missing; 0 if the column is malformed).
    pub format: i64,
    /// Why.
    pub reason: Unreadable,
}

/// What [`FeedbackStore::list`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Records read, oldest first.
    pub records: Vec<Feedback>,
    /// Records kept but unreadable.
    pub unreadable: Vec<UnreadableRecord>,
}

/// Which records: `from_ms <= created_at < until_ms`, at most `limit`, oldest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    /// Inclusive lower bound (Unix ms).
    pub from_ms: Option<i64>,
    /// Exclusive upper bound (Unix ms).
    pub until_ms: Option<i64>,
    /// Most records.
    pub limit: Option<u64>,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportReport {
    /// Records written.
    pub exported: u64,
    /// Records skipped because they could not be read.
    pub unreadable: u64,
}

/// Store settings.
#[derive(Debug, Clone, Copy)]
pub struct FeedbackConfig {
    /// Records one key may encrypt before a new key takes over (default 2^30; the random-nonce
    /// bound for AES-GCM is 2^32).
    pub rotate_after: u64,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        Self {
            rotate_after: 1 << 30,
        }
    }
}

/// The encrypted feedback store. `Send + Sync`: share it behind an `Arc`.
#[derive(Debug)]
pub struct FeedbackStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    provider: Arc<dyn KeyProvider>,
    config: FeedbackConfig,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn configure(conn: &Connection) -> Result<(), FeedbackError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "secure_delete", true)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

const CURRENT_KEY: &str = "current_key";

impl FeedbackStore {
    /// Opens (creating if needed) the store at `path`. Fails with
    /// [`FeedbackError::KeyUnavailable`] — changing nothing — if its key is gone.
    pub fn open(
        path: &Path,
        provider: Arc<dyn KeyProvider>,
        config: FeedbackConfig,
    ) -> Result<Self, FeedbackError> {
        let _span = tracing::debug_span!("feedback_open").entered();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| FeedbackError::Io {
                context: "creating the feedback directory",
                source,
            })?;
        }
        create_private_file(path)?;
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "feedback database is not in WAL mode");
        }
        schema::migrate(&mut conn)?;
        let store = Self {
            path: path.to_owned(),
            writer: Mutex::new(conn),
            provider,
            config,
        };
        store.ensure_key()?;
        store.reseal_legacy()?;
        Ok(store)
    }

    /// Sets the database at `path` (with its `-wal` and `-shm`) aside as
    /// `<path>.unreadable-<unix ms>` if there is one, then opens a new, empty store. For when
    /// [`open`](Self::open) reported [`FeedbackError::KeyUnavailable`] and the app (or user)
    /// chose to start over. Returns the store and where the old database went.
    pub fn open_fresh(
        path: &Path,
        provider: Arc<dyn KeyProvider>,
        config: FeedbackConfig,
    ) -> Result<(Self, Option<PathBuf>), FeedbackError> {
        let mut moved = None;
        if path.exists() {
            let io = |source| FeedbackError::Io {
                context: "setting the unreadable database aside",
                source,
            };
            // Fold the WAL into the main file first (plain SQLite, no key needed): then one
            // rename moves everything, and no stale -wal can ever meet the new database.
            let folded =
                Connection::open(path)
                    .and_then(|c| {
                        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                            Ok(r.get::<_, i64>(0)? == 0
                                && r.get::<_, i64>(1)? == r.get::<_, i64>(2)?)
                        })
                    })
                    .unwrap_or(false);
            let aside = PathBuf::from(format!("{}.unreadable-{}", path.display(), now_ms()));
            let sidecar =
                |base: &Path, suffix: &str| PathBuf::from(format!("{}{suffix}", base.display()));
            if !folded {
                // A damaged database: keep its -wal and -shm with it, under the same name.
                for suffix in ["-wal", "-shm"] {
                    let from = sidecar(path, suffix);
                    if from.exists() {
                        std::fs::rename(&from, sidecar(&aside, suffix)).map_err(io)?;
                    }
                }
            } else {
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(sidecar(path, suffix));
                }
            }
            std::fs::rename(path, &aside).map_err(io)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::fsutil::sync_dir(dir).map_err(io)?;
            }
            tracing::warn!("unreadable feedback database set aside; starting a fresh one");
            moved = Some(aside);
        }
        Ok((Self::open(path, provider, config)?, moved))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn reader(&self) -> Result<Connection, FeedbackError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(conn)
    }

    /// Makes sure there is a current key and the provider has it. The provider is called
    /// outside the writer lock and any transaction (a slow keystore prompt must not block
    /// writers; a provider that calls back into the store must not deadlock).
    fn ensure_key(&self) -> Result<(), FeedbackError> {
        for _ in 0..MAX_KEY_RACES {
            // The common case, a store with a key, needs no write lock.
            if let Some(key_id) = self.read_current_key()? {
                return self.check_key(key_id);
            }
            let (key_id, key) = self.create_key()?;
            drop(key);
            let mut conn = self.writer();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if current_key(&tx)?.is_none() {
                install_key(&tx, &key_id)?;
                tx.commit()?;
                return Ok(());
            }
            // Another opener made one meanwhile: use theirs, drop ours.
            drop(tx);
            drop(conn);
            self.provider.delete(&key_id)?;
        }
        Err(key_race())
    }

    /// Ok if the provider has `key_id`, else [`FeedbackError::KeyUnavailable`].
    fn check_key(&self, key_id: String) -> Result<(), FeedbackError> {
        if self.get_key(&key_id)?.is_some() {
            return Ok(());
        }
        Err(key_unavailable(&self.reader()?, key_id))
    }

    /// The current key id, read without the writer lock.
    fn read_current_key(&self) -> Result<Option<String>, FeedbackError> {
        current_key(&self.reader()?)
    }

    /// The provider's key `key_id`, after checking that the id is one this store could have
    /// written (a row's key id is never handed to a provider unchecked).
    fn get_key(&self, key_id: &str) -> Result<Option<Key>, FeedbackError> {
        if !keys::is_valid_key_id(key_id) {
            return Err(KeyError::InvalidId.into());
        }
        Ok(self.provider.get(key_id)?)
    }

    /// A sealer for `key_id`, `None` if the key is missing or the id invalid.
    fn sealer(&self, key_id: &str) -> Result<Option<Sealer>, FeedbackError> {
        if !keys::is_valid_key_id(key_id) {
            return Ok(None);
        }
        Ok(self.provider.get(key_id)?.map(|k| Sealer::new(&k)))
    }

    /// Creates a new key in the provider (outside any lock); the caller installs it.
    fn create_key(&self) -> Result<(String, Key), FeedbackError> {
        let key_id = format!("k-{}", hex(&random::<8>().map_err(rng_error)?));
        let key = self.provider.create(&key_id)?;
        Ok((key_id, key))
    }

    /// The id of the key new records are encrypted with.
    pub fn current_key_id(&self) -> Result<String, FeedbackError> {
        Ok(self.writer().query_row(
            "SELECT value FROM meta WHERE name = ?1",
            [CURRENT_KEY],
            |r| r.get(0),
        )?)
    }

    /// Records encrypted with `key_id` so far (the nonce-safety counter).
    pub fn key_messages(&self, key_id: &str) -> Result<u64, FeedbackError> {
        Ok(self
            .writer()
            .query_row(
                "SELECT messages FROM keys WHERE key_id = ?1",
                [key_id],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// Records one rating; returns its record id.
    pub fn record(&self, item: &NewFeedback) -> Result<String, FeedbackError> {
        Ok(self
            .record_batch(std::slice::from_ref(item))?
            .pop()
            .unwrap_or_default())
    }

    /// Records a batch in one transaction: all of it or, on any error, none of it. Every item is
    /// checked before anything is written. The key is fetched (or, when the current one has
    /// sealed its share, created) before the writer lock is taken; if another writer rotated
    /// the key meanwhile, the batch starts over with the new one.
    pub fn record_batch(&self, items: &[NewFeedback]) -> Result<Vec<String>, FeedbackError> {
        let _span = tracing::debug_span!("feedback_record", items = items.len()).entered();
        for item in items {
            item.validate()?;
        }
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let count = items.len() as u64;
        for _ in 0..MAX_KEY_RACES {
            // Outside the lock: which key, and the key itself.
            let reader = self.reader()?;
            let current = current_key(&reader)?.ok_or_else(key_race)?;
            let used = key_used(&reader, &current)?;
            drop(reader);
            let rotate = used.saturating_add(count) > self.config.rotate_after;
            let (key_id, key) = if rotate {
                let (id, key) = self.create_key()?;
                (id, key)
            } else {
                match self.get_key(&current)? {
                    Some(key) => (current.clone(), key),
                    None => return Err(key_unavailable(&self.reader()?, current)),
                }
            };
            let sealer = Sealer::new(&key);
            drop(key);
            // Under the lock: the key must still be the one prepared for.
            let mut conn = self.writer();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now_current = current_key(&tx)?;
            let still = now_current.as_deref() == Some(current.as_str())
                && (key_used(&tx, &current)?.saturating_add(count) > self.config.rotate_after)
                    == rotate;
            if !still {
                drop(tx);
                drop(conn);
                if rotate {
                    self.provider.delete(&key_id)?;
                }
                continue;
            }
            if rotate {
                install_key(&tx, &key_id)?;
                tracing::info!(old = %current, new = %key_id, used, "feedback key rotated");
            }
            let ids = insert_sealed(&tx, &sealer, &key_id, items)?;
            tx.execute(
                "UPDATE keys SET messages = messages + ?1 WHERE key_id = ?2",
                params![count, key_id],
            )?;
            tx.commit()?;
            return Ok(ids);
        }
        Err(key_race())
    }

    /// Decrypts the records in `range`, oldest first. Records that cannot be read are listed
    /// apart, never dropped or changed.
    pub fn list(&self, range: &Range) -> Result<Listing, FeedbackError> {
        let mut listing = Listing::default();
        self.visit(range, |entry| {
            match entry {
                Ok(f) => listing.records.push(f),
                Err(u) => listing.unreadable.push(u),
            }
            Ok(())
        })?;
        Ok(listing)
    }

    /// Decrypts the records in `range` one at a time, oldest first, without holding them all
    /// in memory; `visit` gets each readable record or the reason it is unreadable, and may stop
    /// the walk by returning an error. A row with a malformed column (a format this build does
    /// not know, a key id that is not one, a value of the wrong type) is reported
    /// [`Unreadable::Malformed`] and the walk goes on; its key id never reaches the provider.
    pub fn visit(
        &self,
        range: &Range,
        mut visit: impl FnMut(Result<Feedback, UnreadableRecord>) -> Result<(), FeedbackError>,
    ) -> Result<(), FeedbackError> {
        let _span = tracing::debug_span!("feedback_read").entered();
        let conn = self.reader()?;
        let mut sealers: HashMap<String, Option<Sealer>> = HashMap::new();
        let mut stmt = conn.prepare(
            "SELECT record_id, format, created_at, route, rating, model_id, model_sha256,
                    pack_versions, key_id, nonce, ciphertext
             FROM feedback
             WHERE created_at >= ?1 AND created_at < ?2
             ORDER BY created_at, seq
             LIMIT ?3",
        )?;
        let mut rows = stmt.query(params![
            range.from_ms.unwrap_or(i64::MIN),
            range.until_ms.unwrap_or(i64::MAX),
            range
                .limit
                .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX)),
        ])?;
        while let Some(row) = rows.next()? {
            let stored = match StoredRow::read(row) {
                Ok(stored) => stored,
                Err(unreadable) => {
                    visit(Err(unreadable))?;
                    continue;
                }
            };
            if !sealers.contains_key(&stored.key_id) {
                sealers.insert(stored.key_id.clone(), self.sealer(&stored.key_id)?);
            }
            let Some(Some(sealer)) = sealers.get(&stored.key_id) else {
                visit(Err(stored.unreadable(Unreadable::KeyMissing)))?;
                continue;
            };
            visit(stored.open(sealer))?;
        }
        Ok(())
    }

    /// Writes the readable records in `range` as decrypted JSON lines to `path`: through a new
    /// temporary file beside it with a random name, created exclusively without following
    /// links and owner-only from the start ([`crate::fsutil::create_temp_beside`]), synced and
    /// renamed, so the export is never half-written and never written through a planted link.
    /// [`import`] reads the file back.
    pub fn export(&self, path: &Path, range: &Range) -> Result<ExportReport, FeedbackError> {
        let _span = tracing::debug_span!("feedback_export").entered();
        let io = |context| move |source| FeedbackError::Io { context, source };
        let (file, tmp) = crate::fsutil::create_temp_beside(path, 0o600)
            .map_err(io("creating the export file"))?;
        let mut out = std::io::BufWriter::new(file);
        let mut report = ExportReport {
            exported: 0,
            unreadable: 0,
        };
        let result = self
            .visit(range, |entry| {
                match entry {
                    Ok(f) => {
                        let line = Zeroizing::new(serde_json::to_vec(&f).unwrap_or_default());
                        out.write_all(&line)
                            .and_then(|()| out.write_all(b"\n"))
                            .map_err(io("writing the export"))?;
                        report.exported += 1;
                    }
                    Err(_) => report.unreadable += 1,
                }
                Ok(())
            })
            .and_then(|()| {
                let file = out.into_inner().map_err(|e| FeedbackError::Io {
                    context: "writing the export",
                    source: e.into_error(),
                })?;
                file.sync_all().map_err(io("syncing the export"))?;
                std::fs::rename(&tmp, path).map_err(io("renaming the export into place"))
            });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map(|()| report)
    }

    /// Deletes the records created before `before_ms` (their bytes are overwritten: SQLite's
    /// `secure_delete`); returns how many.
    pub fn purge(&self, before_ms: i64) -> Result<u64, FeedbackError> {
        let conn = self.writer();
        Ok(conn.execute("DELETE FROM feedback WHERE created_at < ?1", [before_ms])? as u64)
    }

    /// Deletes every record (keys stay); returns how many.
    pub fn purge_all(&self) -> Result<u64, FeedbackError> {
        let conn = self.writer();
        Ok(conn.execute("DELETE FROM feedback", [])? as u64)
    }

    /// Records in the store (readable or not).
    pub fn count(&self) -> Result<u64, FeedbackError> {
        Ok(self
            .reader()?
            .query_row("SELECT count(*) FROM feedback", [], |r| r.get(0))?)
    }

    /// The sealers of every key the store knows, fetched before any lock is taken.
    fn all_sealers(&self) -> Result<HashMap<String, Option<Sealer>>, FeedbackError> {
        let ids: Vec<String> = {
            let conn = self.reader()?;
            let mut stmt = conn.prepare("SELECT key_id FROM keys")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut sealers = HashMap::new();
        for id in ids {
            let sealer = self.sealer(&id)?;
            sealers.insert(id, sealer);
        }
        Ok(sealers)
    }

    /// Re-seals every format-1 record whose key is present as format 2 under the same key (a
    /// new nonce, every column bound), in one transaction. Records whose key is missing, or
    /// that fail authentication, stay as they are (listed as unreadable). Returns how many
    /// were re-sealed. [`open`](Self::open) runs it.
    pub fn reseal_legacy(&self) -> Result<u64, FeedbackError> {
        let _span = tracing::debug_span!("feedback_reseal").entered();
        let pending: u64 = self.reader()?.query_row(
            "SELECT count(*) FROM feedback WHERE format = 1",
            [],
            |r| r.get(0),
        )?;
        if pending == 0 {
            return Ok(0);
        }
        let sealers = self.all_sealers()?;
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows = sealed_rows(&tx, "format = 1", [])?;
        let done = reseal_rows(&tx, &sealers, rows, None)?;
        tx.commit()?;
        let total = done.values().sum();
        tracing::info!(
            resealed = total,
            left = pending - total,
            "format-1 feedback re-sealed"
        );
        Ok(total)
    }

    /// Re-encrypts every record under an older key with the current key (new nonces, format
    /// 2), then deletes the old keys that no longer encrypt anything. Records whose key is
    /// missing or that fail authentication are left as they are. Returns the records
    /// re-encrypted. Keys are fetched before, and deleted after, the transaction.
    pub fn reencrypt(&self) -> Result<u64, FeedbackError> {
        let _span = tracing::info_span!("feedback_reencrypt").entered();
        let Some(current) = self.read_current_key()? else {
            return Err(key_race());
        };
        let Some(key) = self.get_key(&current)? else {
            return Err(key_unavailable(&self.reader()?, current));
        };
        let new_sealer = Sealer::new(&key);
        drop(key);
        let sealers = self.all_sealers()?;
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if current_key(&tx)?.as_deref() != Some(current.as_str()) {
            // Rotated meanwhile: the caller may run it again.
            return Err(key_race());
        }
        let old = sealed_rows(&tx, "key_id != ?1", [&current])?;
        let done: u64 = reseal_rows(&tx, &sealers, old, Some((&current, &new_sealer)))?
            .values()
            .sum();
        let unused: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT key_id FROM keys WHERE key_id != ?1
                 AND NOT EXISTS (SELECT 1 FROM feedback WHERE feedback.key_id = keys.key_id)",
            )?;
            let rows = stmt.query_map([&current], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for key_id in &unused {
            tx.execute("DELETE FROM keys WHERE key_id = ?1", [key_id])?;
        }
        tx.commit()?;
        drop(conn);
        // Keys are deleted only once nothing in the committed database needs them, and
        // outside the lock.
        for key_id in &unused {
            if keys::is_valid_key_id(key_id) {
                self.provider.delete(key_id)?;
            }
        }
        Ok(done)
    }

    /// `PRAGMA integrity_check` of the database: `Ok(())` or the problems SQLite lists.
    pub fn integrity_check(&self) -> Result<(), FeedbackError> {
        let conn = self.reader()?;
        let result: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if result == "ok" {
            Ok(())
        } else {
            Err(FeedbackError::Corrupt(result))
        }
    }
}

/// [`FeedbackError::KeyUnavailable`] for `key_id`, with the number of records it leaves
/// unreadable (or the database error that stopped the count).
fn key_unavailable(conn: &Connection, key_id: String) -> FeedbackError {
    match conn.query_row("SELECT count(*) FROM feedback", [], |r| r.get(0)) {
        Ok(records) => FeedbackError::KeyUnavailable { key_id, records },
        Err(e) => e.into(),
    }
}

/// How many times a write starts over because another writer changed the current key.
const MAX_KEY_RACES: usize = 8;

fn key_race() -> FeedbackError {
    FeedbackError::Key(KeyError::Backend(
        "the current feedback key kept changing; try again".into(),
    ))
}

/// The current key id in `conn`'s database.
fn current_key(conn: &Connection) -> Result<Option<String>, FeedbackError> {
    Ok(conn
        .query_row(
            "SELECT value FROM meta WHERE name = ?1",
            [CURRENT_KEY],
            |r| r.get(0),
        )
        .optional()?)
}

/// Records `key_id` has sealed.
fn key_used(conn: &Connection, key_id: &str) -> Result<u64, FeedbackError> {
    Ok(conn
        .query_row(
            "SELECT messages FROM keys WHERE key_id = ?1",
            [key_id],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Makes `key_id` (already in the provider) the current key, inside `tx`.
fn install_key(tx: &rusqlite::Transaction<'_>, key_id: &str) -> Result<(), FeedbackError> {
    tx.execute(
        "INSERT INTO keys (key_id, created_at, messages) VALUES (?1, ?2, 0)",
        params![key_id, now_ms()],
    )?;
    tx.execute(
        "INSERT INTO meta (name, value) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        params![CURRENT_KEY, key_id],
    )?;
    Ok(())
}

/// Seals and inserts `items` under `key_id` (format 2: every column bound); returns their ids.
fn insert_sealed(
    tx: &rusqlite::Transaction<'_>,
    sealer: &Sealer,
    key_id: &str,
    items: &[NewFeedback],
) -> Result<Vec<String>, FeedbackError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO feedback (record_id, format, created_at, route, rating, model_id,
            model_sha256, pack_versions, key_id, nonce, ciphertext)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let now = now_ms();
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        let record_id = random::<RECORD_ID_LEN>().map_err(rng_error)?;
        let nonce = random::<{ crypto::NONCE_LEN }>().map_err(rng_error)?;
        let secret = Zeroizing::new(
            serde_json::to_vec(&SecretRef {
                q: &item.question,
                a: &item.answer,
                c: &item.card_ids,
                x: item.correction.as_deref(),
            })
            .map_err(|e| {
                FeedbackError::Database(rusqlite::Error::ToSqlConversionFailure(e.into()))
            })?,
        );
        let packs = serde_json::to_string(&item.pack_versions).unwrap_or_default();
        let rating = item.rating.map_or(1, Rating::to_sql);
        let created_at_ms = item.created_at_ms.unwrap_or(now);
        let columns = Columns {
            created_at_ms,
            route: &item.route,
            rating,
            model_id: item.model_id.as_deref(),
            model_sha256: item.model_sha256.as_deref(),
            pack_versions: &packs,
        };
        let aad = associated_data_v2(&record_id, key_id, &columns);
        let ciphertext = sealer.seal(&nonce, &aad, &secret);
        insert.execute(params![
            &record_id[..],
            RECORD_FORMAT,
            created_at_ms,
            item.route,
            rating,
            item.model_id,
            item.model_sha256,
            packs,
            key_id,
            &nonce[..],
            ciphertext,
        ])?;
        ids.push(hex(&record_id));
    }
    Ok(ids)
}

/// One stored row, its columns checked for type and range.
#[derive(Debug, Clone)]
struct StoredRow {
    record_id: [u8; RECORD_ID_LEN],
    format: u32,
    created_at_ms: i64,
    route: String,
    rating: i64,
    model_id: Option<String>,
    model_sha256: Option<String>,
    pack_versions: String,
    key_id: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl StoredRow {
    /// Reads the columns `record_id, format, created_at, route, rating, model_id,
    /// model_sha256, pack_versions, key_id, nonce, ciphertext` (in that order); a column of
    /// the wrong type or out of range makes the row [`Unreadable::Malformed`].
    fn read(row: &rusqlite::Row<'_>) -> Result<Self, UnreadableRecord> {
        use rusqlite::types::ValueRef;
        let text = |i: usize| match row.get_ref(i) {
            Ok(ValueRef::Text(t)) => std::str::from_utf8(t).ok().map(str::to_owned),
            _ => None,
        };
        let opt_text = |i: usize| match row.get_ref(i) {
            Ok(ValueRef::Null) => Some(None),
            Ok(ValueRef::Text(t)) => std::str::from_utf8(t).ok().map(|s| Some(s.to_owned())),
            _ => None,
        };
        let int = |i: usize| match row.get_ref(i) {
            Ok(ValueRef::Integer(n)) => Some(n),
            _ => None,
        };
        let blob = |i: usize| match row.get_ref(i) {
            Ok(ValueRef::Blob(b)) => Some(b.to_vec()),
            _ => None,
        };
        let raw_id = blob(0).unwrap_or_default();
        let created_at_ms = int(2).unwrap_or(0);
        let key_id = text(8).unwrap_or_default();
        let malformed = || UnreadableRecord {
            record_id: hex(&raw_id),
            created_at_ms,
            key_id: if keys::is_valid_key_id(&key_id) {
                key_id.clone()
            } else {
                String::new()
            },
            format: int(1).unwrap_or(0),
            reason: Unreadable::Malformed,
        };
        (|| {
            Some(StoredRow {
                record_id: raw_id.as_slice().try_into().ok()?,
                format: int(1)
                    .and_then(|f| u32::try_from(f).ok())
                    .filter(|f| (1..=RECORD_FORMAT).contains(f))?,
                created_at_ms: int(2)?,
                route: text(3)?,
                rating: int(4).filter(|r| *r == 1 || *r == -1)?,
                model_id: opt_text(5)?,
                model_sha256: opt_text(6)?,
                pack_versions: text(7)?,
                key_id: Some(key_id.clone()).filter(|k| keys::is_valid_key_id(k))?,
                nonce: blob(9)?,
                ciphertext: blob(10)?,
            })
        })()
        .ok_or_else(malformed)
    }

    fn columns(&self) -> Columns<'_> {
        Columns {
            created_at_ms: self.created_at_ms,
            route: &self.route,
            rating: self.rating,
            model_id: self.model_id.as_deref(),
            model_sha256: self.model_sha256.as_deref(),
            pack_versions: &self.pack_versions,
        }
    }

    /// The associated data of this row as sealed in `format`.
    fn aad_as(&self, format: u32) -> Vec<u8> {
        associated_data_for(format, &self.record_id, &self.key_id, &self.columns())
            .unwrap_or_default()
    }

    fn unreadable(&self, reason: Unreadable) -> UnreadableRecord {
        UnreadableRecord {
            record_id: hex(&self.record_id),
            created_at_ms: self.created_at_ms,
            key_id: self.key_id.clone(),
            format: i64::from(self.format),
            reason,
        }
    }

    /// The decrypted payload, authenticated against this row's own format and columns.
    fn plaintext(&self, sealer: &Sealer) -> Result<Zeroizing<Vec<u8>>, AuthenticationFailed> {
        sealer.open(&self.nonce, &self.aad_as(self.format), &self.ciphertext)
    }

    /// The record, or why it cannot be read.
    fn open(self, sealer: &Sealer) -> Result<Feedback, UnreadableRecord> {
        let Ok(plain) = self.plaintext(sealer) else {
            return Err(self.unreadable(Unreadable::Tampered));
        };
        let Ok(secret) = serde_json::from_slice::<Secret>(&plain) else {
            return Err(self.unreadable(Unreadable::Malformed));
        };
        let Ok(pack_versions) = serde_json::from_str(&self.pack_versions) else {
            return Err(self.unreadable(Unreadable::Malformed));
        };
        Ok(Feedback {
            record_id: hex(&self.record_id),
            created_at_ms: self.created_at_ms,
            route: self.route,
            rating: Rating::from_sql(self.rating),
            question: secret.q,
            answer: secret.a,
            card_ids: secret.c,
            correction: secret.x,
            model_id: self.model_id,
            model_sha256: self.model_sha256,
            pack_versions,
            key_id: self.key_id,
            format: self.format,
        })
    }
}

/// Re-seals `rows` as [`RECORD_FORMAT`] under `to` (a key id and its sealer), or each under its
/// own key when `to` is `None`, with new nonces, inside `tx`, and counts each key's new
/// messages. Rows whose key is missing or that fail authentication are left as they are.
/// Returns how many rows each key sealed.
fn reseal_rows(
    tx: &rusqlite::Transaction<'_>,
    sealers: &HashMap<String, Option<Sealer>>,
    rows: Vec<(i64, StoredRow)>,
    to: Option<(&str, &Sealer)>,
) -> Result<HashMap<String, u64>, FeedbackError> {
    let mut done: HashMap<String, u64> = HashMap::new();
    for (seq, stored) in rows {
        let Some(Some(sealer)) = sealers.get(&stored.key_id) else {
            continue;
        };
        let Ok(plain) = stored.plaintext(sealer) else {
            continue;
        };
        let (key_id, new_sealer) = to.unwrap_or((&stored.key_id, sealer));
        let resealed = StoredRow {
            key_id: key_id.to_owned(),
            format: RECORD_FORMAT,
            ..stored
        };
        let nonce = random::<{ crypto::NONCE_LEN }>().map_err(rng_error)?;
        let sealed = new_sealer.seal(&nonce, &resealed.aad_as(RECORD_FORMAT), &plain);
        tx.execute(
            "UPDATE feedback SET key_id = ?1, nonce = ?2, ciphertext = ?3, format = ?4
             WHERE seq = ?5",
            params![resealed.key_id, &nonce[..], sealed, RECORD_FORMAT, seq],
        )?;
        *done.entry(resealed.key_id).or_default() += 1;
    }
    for (key_id, n) in &done {
        tx.execute(
            "UPDATE keys SET messages = messages + ?1 WHERE key_id = ?2",
            params![n, key_id],
        )?;
    }
    Ok(done)
}

/// The rows matching `filter` (a `WHERE` clause over `feedback`) with their `seq`, skipping
/// malformed ones (they stay as they are).
fn sealed_rows<P: rusqlite::Params>(
    conn: &Connection,
    filter: &str,
    params: P,
) -> Result<Vec<(i64, StoredRow)>, FeedbackError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT record_id, format, created_at, route, rating, model_id, model_sha256,
                pack_versions, key_id, nonce, ciphertext, seq
         FROM feedback WHERE {filter}"
    ))?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(11)?;
        if let Ok(stored) = StoredRow::read(row) {
            out.push((seq, stored));
        }
    }
    Ok(out)
}

/// Creates `path` empty with owner-only permissions if it does not exist, so that SQLite (which
/// gives `-wal` and `-shm` the main file's mode) never makes the plaintext metadata
/// world-readable.
fn create_private_file(path: &Path) -> Result<(), FeedbackError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if crate::download::install::is_storage_full(&e) => Err(FeedbackError::StorageFull),
        Err(source) => Err(FeedbackError::Io {
            context: "creating the feedback database",
            source,
        }),
    }
}

#[cfg(test)]
mod tests;
