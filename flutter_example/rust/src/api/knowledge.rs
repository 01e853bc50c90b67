//! [`KnowledgeBase`]: knowledge packs in the data directory — import, lookup, search. Works with
//! no model at all; every call is blocking work on a worker thread.

use std::path::PathBuf;

use flutter_rust_bridge::frb;
use vazhi_core::data_dir::DataDir;
use vazhi_core::knowledge::KnowledgeBase as CoreKnowledgeBase;
use vazhi_core::signing::{TrustPolicy, TrustedKeys};

use crate::api::error::{guard, VazhiException};
use crate::api::records::{Card, ImportReport, PackInfo, SearchHit};

/// The knowledge base of a data directory (its own connection; safe beside a `VazhiApp` on the
/// same directory).
#[frb(opaque)]
#[derive(Debug)]
pub struct KnowledgeBase {
    inner: CoreKnowledgeBase,
    trust: TrustPolicy,
}

impl KnowledgeBase {
    /// Opens (creating if needed) the knowledge base in `data_dir`.
    pub fn open(data_dir: String) -> Result<KnowledgeBase, VazhiException> {
        guard(|| {
            let data_dir = DataDir::new(data_dir);
            data_dir.create()?;
            Ok(KnowledgeBase {
                inner: CoreKnowledgeBase::open(&data_dir.knowledge_db())?,
                trust: TrustPolicy::shipped_only(),
            })
        })
    }

    /// Opens the knowledge base that also accepts packs signed by `trusted_keys` (64 hex
    /// digits each) and, if `allow_unsigned`, unsigned packs. [`open`](Self::open) accepts
    /// only the packs Vazhi ships.
    pub fn open_with_trust(
        data_dir: String,
        trusted_keys: Vec<String>,
        allow_unsigned: bool,
    ) -> Result<KnowledgeBase, VazhiException> {
        guard(|| {
            let trust = TrustPolicy {
                keys: TrustedKeys::from_hex(&trusted_keys)?,
                allow_unsigned,
            };
            let data_dir = DataDir::new(data_dir);
            data_dir.create()?;
            Ok(KnowledgeBase {
                inner: CoreKnowledgeBase::open(&data_dir.knowledge_db())?,
                trust,
            })
        })
    }

    /// Imports (or upgrades to) the pack in directory `dir`, in one transaction, if it is
    /// trusted (shipped with Vazhi, signed by a trusted key, or unsigned where allowed) and
    /// trusted the same way as the pack it replaces.
    pub fn import_pack(&self, dir: String) -> Result<ImportReport, VazhiException> {
        guard(|| {
            Ok(self
                .inner
                .import_dir(&PathBuf::from(dir), &self.trust)?
                .into())
        })
    }

    /// The record with exactly this key in `pack` (native digits and case are normalised).
    pub fn lookup(&self, pack: String, key: String) -> Result<Option<Card>, VazhiException> {
        guard(|| Ok(self.inner.lookup(&pack, &key)?))
    }

    /// Full-text search (any text; never interpreted as search syntax).
    pub fn search(
        &self,
        query: String,
        limit: u32,
        pack: Option<String>,
    ) -> Result<Vec<SearchHit>, VazhiException> {
        guard(|| {
            Ok(self
                .inner
                .search(&query, limit as usize, pack.as_deref())?
                .into_iter()
                .map(SearchHit::from)
                .collect())
        })
    }

    /// Installed packs.
    pub fn packs(&self) -> Result<Vec<PackInfo>, VazhiException> {
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
    pub fn remove_pack(&self, name: String) -> Result<(), VazhiException> {
        guard(|| Ok(self.inner.remove(&name)?))
    }
}
