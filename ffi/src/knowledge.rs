//! [`KnowledgeBase`]: knowledge packs in the data directory — import, lookup, search.

use std::path::PathBuf;
use std::sync::Arc;

use vazhi_core::data_dir::DataDir;
use vazhi_core::knowledge::KnowledgeBase as CoreKnowledgeBase;

use vazhi_core::signing::TrustPolicy;

use crate::error::{guard, VazhiError};
use crate::records::{Card, ImportReport, PackInfo, SearchHit};
use crate::registry::Live;

/// The knowledge base of a data directory (its own connection; safe beside a [`crate::Vazhi`]
/// on the same directory). Blocking: call off the main thread.
#[derive(Debug, uniffi::Object)]
pub struct KnowledgeBase {
    inner: CoreKnowledgeBase,
    trust: TrustPolicy,
    _live: Live,
}

#[uniffi::export]
impl KnowledgeBase {
    /// Opens (creating if needed) the knowledge base in `data_dir`.
    #[uniffi::constructor]
    pub fn open(data_dir: String) -> Result<Arc<Self>, VazhiError> {
        guard(|| {
            let data_dir = DataDir::new(data_dir);
            data_dir.create()?;
            Ok(Arc::new(Self {
                inner: CoreKnowledgeBase::open(&data_dir.knowledge_db())?,
                trust: TrustPolicy::shipped_only(),
                _live: Live::new(),
            }))
        })
    }

    /// Opens the knowledge base in `data_dir` that also accepts packs signed by
    /// `trusted_keys` (64 hex digits each) and, if `allow_unsigned`, unsigned packs.
    /// [`open`](Self::open) accepts only the packs Vazhi ships.
    #[uniffi::constructor]
    pub fn open_with_trust(
        data_dir: String,
        trusted_keys: Vec<String>,
        allow_unsigned: bool,
    ) -> Result<Arc<Self>, VazhiError> {
        guard(|| {
            let trust = crate::assistant::trust_policy(&trusted_keys, allow_unsigned)?;
            let data_dir = DataDir::new(data_dir);
            data_dir.create()?;
            Ok(Arc::new(Self {
                inner: CoreKnowledgeBase::open(&data_dir.knowledge_db())?,
                trust,
                _live: Live::new(),
            }))
        })
    }

    /// Imports (or upgrades to) the pack in directory `dir`, transactionally, if it is
    /// trusted (shipped with Vazhi, signed by a trusted key, or unsigned where allowed) and
    /// trusted the same way as the pack it replaces.
    pub fn import_pack(&self, dir: String) -> Result<ImportReport, VazhiError> {
        guard(|| {
            Ok(self
                .inner
                .import_dir(&PathBuf::from(dir), &self.trust)?
                .into())
        })
    }

    /// The record with exactly this key in `pack` (native digits and case are normalised).
    pub fn lookup(&self, pack: String, key: String) -> Result<Option<Card>, VazhiError> {
        guard(|| Ok(self.inner.lookup(&pack, &key)?))
    }

    /// Full-text search (any text; never interpreted as search syntax).
    pub fn search(
        &self,
        query: String,
        limit: u32,
        pack: Option<String>,
    ) -> Result<Vec<SearchHit>, VazhiError> {
        guard(|| Ok(self.inner.search(&query, limit as usize, pack.as_deref())?))
    }

    /// Installed packs.
    pub fn packs(&self) -> Result<Vec<PackInfo>, VazhiError> {
        guard(|| {
            Ok(self
                .inner
                .packs()?
                .into_iter()
                .map(PackInfo::from)
                .collect())
        })
    }

    /// Removes pack `name`.
    pub fn remove_pack(&self, name: String) -> Result<(), VazhiError> {
        guard(|| Ok(self.inner.remove(&name)?))
    }
}
