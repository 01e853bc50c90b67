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

pub use keys::{FileKeyProvider, Key, KeyError, KeyProvider};

use crypto::{associated_data, random, Sealer, RECORD_ID_LEN};

/// The record format written now (bound into each record's associated data).
pub const RECORD_FORMAT: u32 = 1;
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
    /// Its key.
    pub key_id: String,
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
        let found = schema::version(&conn)?;
        if found > schema::VERSION {
            return Err(FeedbackError::NewerSchema { found });
        }
        schema::migrate(&mut conn)?;
        let store = Self {
            path: path.to_owned(),
            writer: Mutex::new(conn),
            provider,
            config,
        };
        store.ensure_key()?;
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

    /// Makes sure there is a current key and the provider has it.
    fn ensure_key(&self) -> Result<(), FeedbackError> {
        let mut conn = self.writer();
        // The common case, a store with a key, needs no write lock.
        let current: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE name = ?1",
                [CURRENT_KEY],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(key_id) = current {
            return self.check_key(&conn, key_id);
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<String> = tx
            .query_row(
                "SELECT value FROM meta WHERE name = ?1",
                [CURRENT_KEY],
                |r| r.get(0),
            )
            .optional()?;
        match current {
            Some(key_id) => self.check_key(&tx, key_id),
            None => {
                new_key(&tx, self.provider.as_ref())?;
                tx.commit()?;
                Ok(())
            }
        }
    }

    /// Ok if the provider has `key_id`, else [`FeedbackError::KeyUnavailable`].
    fn check_key(&self, conn: &Connection, key_id: String) -> Result<(), FeedbackError> {
        if self.provider.get(&key_id)?.is_some() {
            return Ok(());
        }
        Err(key_unavailable(conn, key_id))
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
    /// checked before anything is written.
    pub fn record_batch(&self, items: &[NewFeedback]) -> Result<Vec<String>, FeedbackError> {
        let _span = tracing::debug_span!("feedback_record", items = items.len()).entered();
        for item in items {
            item.validate()?;
        }
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let count = items.len() as u64;
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut key_id: String = tx.query_row(
            "SELECT value FROM meta WHERE name = ?1",
            [CURRENT_KEY],
            |r| r.get(0),
        )?;
        let used: u64 = tx.query_row(
            "SELECT messages FROM keys WHERE key_id = ?1",
            [&key_id],
            |r| r.get(0),
        )?;
        if used.saturating_add(count) > self.config.rotate_after {
            let old = key_id;
            key_id = new_key(&tx, self.provider.as_ref())?;
            tracing::info!(old = %old, new = %key_id, used, "feedback key rotated");
        }
        let Some(key) = self.provider.get(&key_id)? else {
            return Err(key_unavailable(&tx, key_id));
        };
        let sealer = Sealer::new(&key);
        drop(key);
        let mut ids = Vec::with_capacity(items.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO feedback (record_id, format, created_at, route, rating, model_id,
                    model_sha256, pack_versions, key_id, nonce, ciphertext)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            let now = now_ms();
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
                let aad = associated_data(&record_id, &key_id, RECORD_FORMAT);
                let ciphertext = sealer.seal(&nonce, &aad, &secret);
                let packs = serde_json::to_string(&item.pack_versions).unwrap_or_default();
                insert.execute(params![
                    &record_id[..],
                    RECORD_FORMAT,
                    item.created_at_ms.unwrap_or(now),
                    item.route,
                    item.rating.map_or(1, Rating::to_sql),
                    item.model_id,
                    item.model_sha256,
                    packs,
                    key_id,
                    &nonce[..],
                    ciphertext,
                ])?;
                ids.push(hex(&record_id));
            }
        }
        tx.execute(
            "UPDATE keys SET messages = messages + ?1 WHERE key_id = ?2",
            params![count, key_id],
        )?;
        tx.commit()?;
        Ok(ids)
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
    /// the walk by returning an error.
    pub fn visit(
        &self,
        range: &Range,
        mut visit: impl FnMut(Result<Feedback, UnreadableRecord>) -> Result<(), FeedbackError>,
    ) -> Result<(), FeedbackError> {
        let _span = tracing::debug_span!("feedback_read").entered();
        let conn = self.reader()?;
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
        let mut sealers: HashMap<String, Option<Sealer>> = HashMap::new();
        while let Some(row) = rows.next()? {
            let record_id: Vec<u8> = row.get(0)?;
            let format: u32 = row.get(1)?;
            let created_at_ms: i64 = row.get(2)?;
            let key_id: String = row.get(8)?;
            let nonce: Vec<u8> = row.get(9)?;
            let ciphertext: Vec<u8> = row.get(10)?;
            let unreadable = |reason| UnreadableRecord {
                record_id: hex(&record_id),
                created_at_ms,
                key_id: key_id.clone(),
                reason,
            };
            let Ok(id) = <[u8; RECORD_ID_LEN]>::try_from(record_id.as_slice()) else {
                visit(Err(unreadable(Unreadable::Malformed)))?;
                continue;
            };
            if !sealers.contains_key(&key_id) {
                let sealer = self.provider.get(&key_id)?.map(|k| Sealer::new(&k));
                sealers.insert(key_id.clone(), sealer);
            }
            let Some(Some(sealer)) = sealers.get(&key_id) else {
                visit(Err(unreadable(Unreadable::KeyMissing)))?;
                continue;
            };
            let aad = associated_data(&id, &key_id, format);
            let Ok(plain) = sealer.open(&nonce, &aad, &ciphertext) else {
                visit(Err(unreadable(Unreadable::Tampered)))?;
                continue;
            };
            let Ok(secret) = serde_json::from_slice::<Secret>(&plain) else {
                visit(Err(unreadable(Unreadable::Malformed)))?;
                continue;
            };
            let packs: String = row.get(7)?;
            let Ok(pack_versions) = serde_json::from_str(&packs) else {
                visit(Err(unreadable(Unreadable::Malformed)))?;
                continue;
            };
            visit(Ok(Feedback {
                record_id: hex(&id),
                created_at_ms,
                route: row.get(3)?,
                rating: Rating::from_sql(row.get(4)?),
                question: secret.q,
                answer: secret.a,
                card_ids: secret.c,
                correction: secret.x,
                model_id: row.get(5)?,
                model_sha256: row.get(6)?,
                pack_versions,
                key_id: key_id.clone(),
            }))?;
        }
        Ok(())
    }

    /// Writes the readable records in `range` as decrypted JSON lines to `path` (created with
    /// owner-only permissions, written to a temporary file and renamed: never half-written).
    pub fn export(&self, path: &Path, range: &Range) -> Result<ExportReport, FeedbackError> {
        let _span = tracing::debug_span!("feedback_export").entered();
        let io = |context| move |source| FeedbackError::Io { context, source };
        let tmp = PathBuf::from(format!("{}.tmp-{}", path.display(), std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&tmp).map_err(io("creating the export file"))?;
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

    /// Re-encrypts every record under an older key with the current key (new nonces), then
    /// deletes the old keys that no longer encrypt anything. Records whose key is missing or
    /// that fail authentication are left as they are. Returns the records re-encrypted.
    pub fn reencrypt(&self) -> Result<u64, FeedbackError> {
        let _span = tracing::info_span!("feedback_reencrypt").entered();
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: String = tx.query_row(
            "SELECT value FROM meta WHERE name = ?1",
            [CURRENT_KEY],
            |r| r.get(0),
        )?;
        let Some(key) = self.provider.get(&current)? else {
            return Err(key_unavailable(&tx, current));
        };
        let new_sealer = Sealer::new(&key);
        drop(key);
        let old: Vec<SealedRow> = {
            let mut stmt = tx.prepare(
                "SELECT seq, record_id, format, key_id, nonce, ciphertext FROM feedback
                 WHERE key_id != ?1",
            )?;
            let rows = stmt.query_map([&current], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut sealers: HashMap<String, Option<Sealer>> = HashMap::new();
        let mut done = 0u64;
        for (seq, record_id, format, key_id, nonce, ciphertext) in old {
            let Ok(id) = <[u8; RECORD_ID_LEN]>::try_from(record_id.as_slice()) else {
                continue;
            };
            if !sealers.contains_key(&key_id) {
                let sealer = self.provider.get(&key_id)?.map(|k| Sealer::new(&k));
                sealers.insert(key_id.clone(), sealer);
            }
            let Some(Some(sealer)) = sealers.get(&key_id) else {
                continue;
            };
            let Ok(plain) =
                sealer.open(&nonce, &associated_data(&id, &key_id, format), &ciphertext)
            else {
                continue;
            };
            let nonce = random::<{ crypto::NONCE_LEN }>().map_err(rng_error)?;
            let sealed = new_sealer.seal(
                &nonce,
                &associated_data(&id, &current, RECORD_FORMAT),
                &plain,
            );
            tx.execute(
                "UPDATE feedback SET key_id = ?1, nonce = ?2, ciphertext = ?3, format = ?4
                 WHERE seq = ?5",
                params![current, &nonce[..], sealed, RECORD_FORMAT, seq],
            )?;
            done += 1;
        }
        tx.execute(
            "UPDATE keys SET messages = messages + ?1 WHERE key_id = ?2",
            params![done, current],
        )?;
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
        // Keys are deleted only once nothing in the committed database needs them.
        for key_id in &unused {
            self.provider.delete(key_id)?;
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

/// A row as `reencrypt` reads it: seq, record id, format, key id, nonce, ciphertext.
type SealedRow = (i64, Vec<u8>, u32, String, Vec<u8>, Vec<u8>);

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

/// Creates a key in the provider and makes it current (inside `tx`); returns its id.
fn new_key(
    tx: &rusqlite::Transaction<'_>,
    provider: &dyn KeyProvider,
) -> Result<String, FeedbackError> {
    let key_id = format!("k-{}", hex(&random::<8>().map_err(rng_error)?));
    drop(provider.create(&key_id)?);
    tx.execute(
        "INSERT INTO keys (key_id, created_at, messages) VALUES (?1, ?2, 0)",
        params![key_id, now_ms()],
    )?;
    tx.execute(
        "INSERT INTO meta (name, value) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        params![CURRENT_KEY, key_id],
    )?;
    Ok(key_id)
}

#[cfg(test)]
mod tests;
