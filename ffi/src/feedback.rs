//! [`FeedbackStore`]: encrypted ratings and corrections, with keys from a foreign
//! [`KeyProvider`] (Android Keystore / iOS Keychain in the app).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use vazhi_core::data_dir::DataDir;
use vazhi_core::feedback::{self as core, FeedbackConfig, Key, KeyError, NewFeedback, Range};

use crate::error::{guard, VazhiError};
use crate::records::{
    FeedbackExport, FeedbackInput, FeedbackListing, FeedbackRecord, UnreadableFeedback,
};
use crate::registry::Live;

/// Keeps the 256-bit keys of the feedback store and of saved conversations, implemented by the app (for example: a random key
/// wrapped by an Android Keystore key, or a Keychain item). Called from Vazhi threads.
#[uniffi::export(foreign)]
pub trait KeyProvider: Send + Sync {
    /// The 32-byte key `key_id`, or `null`/`nil` if it does not exist (e.g. after a restore to a
    /// new phone).
    fn get_key(&self, key_id: String) -> Result<Option<Vec<u8>>, VazhiError>;
    /// Creates, stores and returns a new random 32-byte key under `key_id` (a new id).
    fn create_key(&self, key_id: String) -> Result<Vec<u8>, VazhiError>;
    /// Deletes key `key_id`; absent is not an error.
    fn delete_key(&self, key_id: String) -> Result<(), VazhiError>;
}

/// The foreign provider seen as a core provider: lengths checked, buffers wiped.
#[derive(Debug)]
struct ForeignKeys(Arc<dyn KeyProvider>);

impl std::fmt::Debug for dyn KeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyProvider")
    }
}

fn backend(e: VazhiError) -> KeyError {
    KeyError::Backend(e.to_string())
}

impl core::KeyProvider for ForeignKeys {
    fn get(&self, key_id: &str) -> Result<Option<Key>, KeyError> {
        match self.0.get_key(key_id.to_owned()).map_err(backend)? {
            Some(bytes) => Ok(Some(Key::from_vec(bytes)?)),
            None => Ok(None),
        }
    }
    fn create(&self, key_id: &str) -> Result<Key, KeyError> {
        Key::from_vec(self.0.create_key(key_id.to_owned()).map_err(backend)?)
    }
    fn delete(&self, key_id: &str) -> Result<(), KeyError> {
        self.0.delete_key(key_id.to_owned()).map_err(backend)
    }
}

/// The encrypted feedback store of a data directory. Blocking: call off the main thread.
#[derive(Debug, uniffi::Object)]
pub struct FeedbackStore {
    inner: core::FeedbackStore,
    _live: Live,
}

/// The app's provider as core sees it. Each callback runs on a thread of its own, awaited at
/// most 30 s: a keystore prompt nobody answers ends in a typed error (`Busy`), not a blocked
/// call.
pub(crate) fn core_keys(keys: Arc<dyn KeyProvider>) -> Arc<dyn core::KeyProvider> {
    Arc::new(core::TimedKeyProvider::new(
        Arc::new(ForeignKeys(keys)),
        core::DEFAULT_KEY_TIMEOUT,
    ))
}

fn open(
    data_dir: &str,
    keys: Arc<dyn KeyProvider>,
    fresh: bool,
) -> Result<Arc<FeedbackStore>, VazhiError> {
    let data_dir = DataDir::new(data_dir);
    data_dir.create()?;
    let provider = core_keys(keys);
    let path = data_dir.feedback_db();
    let inner = if fresh {
        core::FeedbackStore::open_fresh(&path, provider, FeedbackConfig::default())?.0
    } else {
        core::FeedbackStore::open(&path, provider, FeedbackConfig::default())?
    };
    Ok(Arc::new(FeedbackStore {
        inner,
        _live: Live::new(),
    }))
}

fn record(r: core::Feedback) -> FeedbackRecord {
    FeedbackRecord {
        record_id: r.record_id,
        created_at_ms: r.created_at_ms,
        route: r.route,
        rating: r.rating,
        question: r.question,
        answer: r.answer,
        card_ids: r.card_ids,
        correction: r.correction,
        model_id: r.model_id,
        model_sha256: r.model_sha256,
        pack_versions: r.pack_versions.into_iter().collect(),
    }
}

fn input(i: FeedbackInput) -> NewFeedback {
    NewFeedback {
        question: i.question,
        route: i.route,
        answer: i.answer,
        card_ids: i.card_ids,
        rating: Some(i.rating),
        correction: i.correction,
        model_id: i.model_id,
        model_sha256: i.model_sha256,
        pack_versions: i.pack_versions.into_iter().collect::<BTreeMap<_, _>>(),
        created_at_ms: i.created_at_ms,
    }
}

fn range(from_ms: Option<i64>, until_ms: Option<i64>, limit: Option<u64>) -> Range {
    Range {
        from_ms,
        until_ms,
        limit,
    }
}

#[uniffi::export]
impl FeedbackStore {
    /// Opens the store in `data_dir`. Fails with `KeyUnavailable` — changing nothing — if its
    /// key is gone; the app may then [`open_fresh`](Self::open_fresh).
    #[uniffi::constructor]
    pub fn open(data_dir: String, keys: Arc<dyn KeyProvider>) -> Result<Arc<Self>, VazhiError> {
        guard(|| open(&data_dir, keys, false))
    }

    /// Sets an unreadable store aside (`feedback.db.unreadable-<ms>`) and opens a new one.
    #[uniffi::constructor]
    pub fn open_fresh(
        data_dir: String,
        keys: Arc<dyn KeyProvider>,
    ) -> Result<Arc<Self>, VazhiError> {
        guard(|| open(&data_dir, keys, true))
    }

    /// Records one rating; returns its record id.
    pub fn record(&self, feedback: FeedbackInput) -> Result<String, VazhiError> {
        guard(|| Ok(self.inner.record(&input(feedback))?))
    }

    /// Records a batch in one transaction: all of it or none.
    pub fn record_batch(&self, feedback: Vec<FeedbackInput>) -> Result<Vec<String>, VazhiError> {
        guard(|| {
            let items: Vec<NewFeedback> = feedback.into_iter().map(input).collect();
            Ok(self.inner.record_batch(&items)?)
        })
    }

    /// Decrypts the records created in `[from_ms, until_ms)`, oldest first, at most `limit`.
    pub fn list(
        &self,
        from_ms: Option<i64>,
        until_ms: Option<i64>,
        limit: Option<u64>,
    ) -> Result<FeedbackListing, VazhiError> {
        guard(|| {
            let listing = self.inner.list(&range(from_ms, until_ms, limit))?;
            Ok(FeedbackListing {
                records: listing.records.into_iter().map(record).collect(),
                unreadable: listing
                    .unreadable
                    .into_iter()
                    .map(|u| UnreadableFeedback {
                        record_id: u.record_id,
                        created_at_ms: u.created_at_ms,
                        reason: u.reason.as_str().to_owned(),
                    })
                    .collect(),
            })
        })
    }

    /// Writes the readable records as decrypted JSON lines to `path` (owner-only, atomic).
    pub fn export(
        &self,
        path: String,
        from_ms: Option<i64>,
        until_ms: Option<i64>,
    ) -> Result<FeedbackExport, VazhiError> {
        guard(|| {
            Ok(self
                .inner
                .export(&PathBuf::from(path), &range(from_ms, until_ms, None))?)
        })
    }

    /// Deletes records created before `before_ms`; returns how many.
    pub fn purge(&self, before_ms: i64) -> Result<u64, VazhiError> {
        guard(|| Ok(self.inner.purge(before_ms)?))
    }

    /// Deletes every record; returns how many.
    pub fn purge_all(&self) -> Result<u64, VazhiError> {
        guard(|| Ok(self.inner.purge_all()?))
    }

    /// Records in the store (readable or not).
    pub fn count(&self) -> Result<u64, VazhiError> {
        guard(|| Ok(self.inner.count()?))
    }

    /// Re-encrypts records under old keys with the current key; deletes unused old keys.
    pub fn reencrypt(&self) -> Result<u64, VazhiError> {
        guard(|| Ok(self.inner.reencrypt()?))
    }
}
