//! [`FeedbackStore`]: thumbs up/down and corrections, encrypted at rest with keys kept by the
//! Dart side (`flutter_secure_storage`: Android Keystore, iOS Keychain). The three key
//! callbacks are Dart functions; Vazhi calls them from a worker thread and waits for their
//! replies, so the store's methods must never be made `sync` (Dart's thread would wait on
//! itself).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use flutter_rust_bridge::{frb, DartFnFuture};
use vazhi_core::data_dir::DataDir;
use vazhi_core::feedback::{self as core, FeedbackConfig, Key, KeyError, NewFeedback, Range};

use crate::api::error::{guard, VazhiException};
use crate::api::records::{
    FeedbackExport, FeedbackInput, FeedbackListing, FeedbackRecord, UnreadableFeedback,
};

/// A Dart key callback's answer: the 32-byte key (or `null` when it does not exist), or what
/// went wrong in the key store. The Dart side catches its own exceptions into `error`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyReply {
    /// The key's 32 bytes; `null` when absent (e.g. after a restore to a new phone) and for
    /// deletions.
    pub key: Option<Vec<u8>>,
    /// The key store failed (the message must not contain the key).
    pub error: Option<String>,
}

/// A Dart key callback: key id in, reply out.
type KeyFn = Box<dyn Fn(String) -> DartFnFuture<KeyReply> + Send + Sync>;

/// The Dart callbacks seen as a core key provider: replies awaited on the calling (worker)
/// thread, lengths checked, buffers wiped.
struct DartKeys {
    get: KeyFn,
    create: KeyFn,
    delete: KeyFn,
}

impl fmt::Debug for DartKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DartKeys")
    }
}

impl DartKeys {
    fn call(&self, f: &KeyFn, key_id: &str) -> Result<Option<Vec<u8>>, KeyError> {
        let reply = futures::executor::block_on(f(key_id.to_owned()));
        match reply.error {
            Some(e) => Err(KeyError::Backend(e)),
            None => Ok(reply.key),
        }
    }
}

impl core::KeyProvider for DartKeys {
    fn get(&self, key_id: &str) -> Result<Option<Key>, KeyError> {
        self.call(&self.get, key_id)?.map(Key::from_vec).transpose()
    }

    fn create(&self, key_id: &str) -> Result<Key, KeyError> {
        let bytes = self.call(&self.create, key_id)?;
        Key::from_vec(bytes.ok_or_else(|| KeyError::Backend("create_key returned no key".into()))?)
    }

    fn delete(&self, key_id: &str) -> Result<(), KeyError> {
        self.call(&self.delete, key_id).map(drop)
    }
}

/// The app's keys (the three Dart callbacks) for saved conversations
/// ([`Conversation::save`](crate::api::assistant::Conversation::save),
/// [`VazhiApp::restore_conversation`](crate::api::assistant::VazhiApp::restore_conversation)).
/// Each callback is awaited on a thread of its own, at most 30 s.
#[frb(opaque)]
#[derive(Debug, Clone)]
pub struct KeyStore {
    keys: Arc<dyn core::KeyProvider>,
}

impl KeyStore {
    /// Keys from the Dart callbacks (as [`FeedbackStore::open`] takes them).
    #[frb(sync)]
    pub fn new(
        get_key: impl Fn(String) -> DartFnFuture<KeyReply> + Send + Sync + 'static,
        create_key: impl Fn(String) -> DartFnFuture<KeyReply> + Send + Sync + 'static,
        delete_key: impl Fn(String) -> DartFnFuture<KeyReply> + Send + Sync + 'static,
    ) -> KeyStore {
        KeyStore {
            keys: timed_keys(get_key, create_key, delete_key),
        }
    }

    /// The provider core calls.
    #[frb(ignore)]
    pub(crate) fn provider(&self) -> &dyn core::KeyProvider {
        self.keys.as_ref()
    }
}

/// The Dart callbacks as a core provider, each call awaited at most 30 s: a keystore prompt
/// nobody answers ends in a typed error, not a blocked call.
fn timed_keys(
    get_key: impl Fn(String) -> DartFnFuture<KeyReply> + Send + Sync + 'static,
    create_key: impl Fn(String) -> DartFnFuture<KeyReply> + Send + Sync + 'static,
    delete_key: impl Fn(String) -> DartFnFuture<KeyReply> + Send + Sync + 'static,
) -> Arc<dyn core::KeyProvider> {
    Arc::new(core::TimedKeyProvider::new(
        Arc::new(DartKeys {
            get: Box::new(get_key),
            create: Box::new(create_key),
            delete: Box::new(delete_key),
        }),
        core::DEFAULT_KEY_TIMEOUT,
    ))
}

/// The encrypted feedback store of a data directory.
#[frb(opaque)]
#[derive(Debug)]
pub struct FeedbackStore {
    inner: core::FeedbackStore,
}

impl FeedbackStore {
    /// Opens the store in `data_dir` with keys from the Dart callbacks. Throws
    /// `keyUnavailable` — changing nothing — if its key is gone; the app may then open it with
    /// `fresh: true`, which sets the unreadable store aside (`feedback.db.unreadable-<ms>`)
    /// and starts a new one.
    pub fn open(
        data_dir: String,
        fresh: bool,
        get_key: impl Fn(String) -> DartFnFuture<KeyReply> + Send + Sync + 'static,
        create_key: impl Fn(String) -> DartFnFuture<KeyReply> + Send + Sync + 'static,
        delete_key: impl Fn(String) -> DartFnFuture<KeyReply> + Send + Sync + 'static,
    ) -> Result<FeedbackStore, VazhiException> {
        guard(|| {
            let data_dir = DataDir::new(data_dir);
            data_dir.create()?;
            let keys = timed_keys(get_key, create_key, delete_key);
            let path = data_dir.feedback_db();
            let inner = if fresh {
                core::FeedbackStore::open_fresh(&path, keys, FeedbackConfig::default())?.0
            } else {
                core::FeedbackStore::open(&path, keys, FeedbackConfig::default())?
            };
            Ok(FeedbackStore { inner })
        })
    }

    /// Records one rating (with its correction, if any); returns its record id.
    pub fn record(&self, feedback: FeedbackInput) -> Result<String, VazhiException> {
        guard(|| Ok(self.inner.record(&input(feedback))?))
    }

    /// Decrypts the records created in `[from_ms, until_ms)`, oldest first, at most `limit`.
    pub fn list(
        &self,
        from_ms: Option<i64>,
        until_ms: Option<i64>,
        limit: Option<u64>,
    ) -> Result<FeedbackListing, VazhiException> {
        guard(|| {
            let listing = self.inner.list(&Range {
                from_ms,
                until_ms,
                limit,
            })?;
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

    /// Writes the readable records as decrypted JSON lines to `path` (owner-only, atomic): what
    /// the user shares when they choose to. (Not `export`: a Dart built-in identifier.)
    pub fn export_to(
        &self,
        path: String,
        from_ms: Option<i64>,
        until_ms: Option<i64>,
    ) -> Result<FeedbackExport, VazhiException> {
        guard(|| {
            let range = Range {
                from_ms,
                until_ms,
                limit: None,
            };
            let report = self.inner.export(&PathBuf::from(path), &range)?;
            Ok(FeedbackExport {
                exported: report.exported,
                unreadable: report.unreadable,
            })
        })
    }

    /// Records in the store (readable or not).
    pub fn count(&self) -> Result<u64, VazhiException> {
        guard(|| Ok(self.inner.count()?))
    }

    /// Deletes every record (the settings screen's "clear data"); returns how many.
    pub fn purge_all(&self) -> Result<u64, VazhiException> {
        guard(|| Ok(self.inner.purge_all()?))
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
