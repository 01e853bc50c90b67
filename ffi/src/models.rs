//! [`ModelManager`]: the catalog, downloads (resumable, verified) with a foreign
//! [`DownloadListener`], verification, removal, and files downloaded by the OS.

use std::path::PathBuf;
use std::sync::Arc;

use vazhi_core::app::{Models, ModelsConfig};
use vazhi_core::download::{DownloadEvent, DownloadHandle, Downloader, ModelStatus};

use crate::error::{guard, VazhiError};
use crate::records::{CatalogModel, DownloadOutcome, DownloadProgress, InstalledModel, ModelState};
use crate::registry::Live;

/// How to build a [`ModelManager`].
#[derive(Debug, Clone, uniffi::Record)]
pub struct ModelManagerConfig {
    /// The app's data directory.
    pub data_dir: String,
    /// The model catalog (JSON); default: the catalog built into Vazhi.
    #[uniffi(default = None)]
    pub catalog_json: Option<String>,
    /// `catalog_json`'s detached signature (a signature file's text; `docs/formats.md`).
    #[uniffi(default = None)]
    pub catalog_signature: Option<String>,
    /// Public keys (64 hex digits each) whose catalog signatures are trusted.
    #[uniffi(default = [])]
    pub trusted_keys: Vec<String>,
    /// Accept a `catalog_json` that is not signed by a trusted key.
    #[uniffi(default = false)]
    pub allow_unsigned: bool,
    /// Hosts allowed besides the catalog's (an app's own mirror).
    #[uniffi(default = [])]
    pub extra_hosts: Vec<String>,
    /// Open no socket: downloads fail at once with `Offline`.
    #[uniffi(default = false)]
    pub offline: bool,
    /// The device's RAM in MiB (checked against the catalog's `min_ram_mb`); default: what
    /// the operating system reports.
    #[uniffi(default = None)]
    pub ram_mb: Option<u64>,
    /// Free storage the app measured, in bytes (otherwise the filesystem is asked).
    #[uniffi(default = None)]
    pub free_storage_bytes: Option<u64>,
    /// Seconds without data before a connection is retried (default 30).
    #[uniffi(default = None)]
    pub read_timeout_seconds: Option<u32>,
    /// Allow plain http to loopback hosts. Tests only.
    #[uniffi(default = false)]
    pub allow_loopback_http: bool,
}

/// Receives a download's events, from a Vazhi thread. If `on_progress` throws, the download
/// is paused.
#[uniffi::export(foreign)]
pub trait DownloadListener: Send + Sync {
    /// Throttled progress.
    fn on_progress(&self, progress: DownloadProgress) -> Result<(), VazhiError>;
    /// The download ended: installed, paused or cancelled. Nothing follows.
    fn on_finished(&self, outcome: DownloadOutcome) -> Result<(), VazhiError>;
    /// The download failed. Nothing follows.
    fn on_error(&self, error: VazhiError) -> Result<(), VazhiError>;
}

/// Controls one running download. Dropping the handle does not stop the download (on the JVM
/// the garbage collector decides when that happens): pause or cancel it explicitly.
#[derive(Debug, uniffi::Object)]
pub struct DownloadTask {
    download: DownloadHandle,
    _live: Live,
}

#[uniffi::export]
impl DownloadTask {
    /// Stops and keeps the partial file.
    pub fn pause(&self) {
        self.download.pause();
    }

    /// Stops and deletes the partial file.
    pub fn cancel(&self) {
        self.download.cancel();
    }

    /// Whether the listener has received its last event.
    pub fn is_finished(&self) -> bool {
        self.download.is_finished()
    }

    /// Blocks until the listener has received its last event (and the download's lock is
    /// released), at most `timeout_ms`; whether it has. Do not call it from the main thread.
    pub fn wait(&self, timeout_ms: u64) -> bool {
        self.download
            .wait(std::time::Duration::from_millis(timeout_ms))
    }
}

/// The catalog and the models on this device.
#[derive(Debug, uniffi::Object)]
pub struct ModelManager {
    models: Models,
    _live: Live,
}

impl TryFrom<ModelManagerConfig> for ModelsConfig {
    type Error = VazhiError;

    fn try_from(c: ModelManagerConfig) -> Result<Self, VazhiError> {
        Ok(ModelsConfig {
            data_dir: c.data_dir.into(),
            catalog_json: c.catalog_json,
            catalog_signature: c.catalog_signature,
            trust: crate::assistant::trust_policy(&c.trusted_keys, c.allow_unsigned)?,
            extra_hosts: c.extra_hosts,
            offline: c.offline,
            ram_mb: c.ram_mb,
            free_storage_bytes: c.free_storage_bytes,
            read_timeout: c
                .read_timeout_seconds
                .map(|s| std::time::Duration::from_secs(u64::from(s))),
            allow_loopback_http: c.allow_loopback_http,
        })
    }
}

impl ModelManager {
    fn current(&self) -> Arc<Downloader> {
        self.models.downloader()
    }
}

#[uniffi::export]
impl ModelManager {
    /// A manager over `config.data_dir` and the catalog.
    #[uniffi::constructor]
    pub fn new(config: ModelManagerConfig) -> Result<Arc<Self>, VazhiError> {
        guard(|| {
            Ok(Arc::new(Self {
                models: Models::new(config.try_into()?)?,
                _live: Live::new(),
            }))
        })
    }

    /// The catalog's models.
    pub fn catalog(&self) -> Vec<CatalogModel> {
        self.current()
            .catalog()
            .entries()
            .iter()
            .map(CatalogModel::from)
            .collect()
    }

    /// Where model `id` stands (cheap: no re-hash).
    pub fn status(&self, id: String) -> Result<ModelState, VazhiError> {
        guard(|| {
            Ok(match self.current().status(&id)? {
                ModelStatus::Absent => ModelState::Absent,
                ModelStatus::Partial { bytes } => ModelState::Partial { bytes },
                ModelStatus::Installed(m) => ModelState::Installed { model: m.into() },
                ModelStatus::Unverified => ModelState::Unverified,
            })
        })
    }

    /// Switches the offline setting: while on, no download opens a socket. Switching it on
    /// pauses the downloads running now (each ends with `Paused`, keeping its partial file);
    /// download again once online to resume.
    pub fn set_offline(&self, offline: bool) -> Result<(), VazhiError> {
        guard(|| Ok(self.models.set_offline(offline)?))
    }

    /// Checks that model `id` fits this device (RAM, storage) before any byte moves.
    pub fn check_fits(&self, id: String) -> Result<(), VazhiError> {
        guard(|| Ok(self.current().check_fits(&id)?))
    }

    /// Starts (or resumes) downloading model `id`. Returns at once; events go to `listener`.
    /// Going offline pauses it.
    pub fn download(
        &self,
        id: String,
        listener: Arc<dyn DownloadListener>,
    ) -> Result<Arc<DownloadTask>, VazhiError> {
        guard(|| {
            let download = self.models.start_download(&id, move |event| {
                let delivered = match event {
                    DownloadEvent::Progress(p) => listener.on_progress(DownloadProgress::from(&p)),
                    DownloadEvent::Finished(outcome) => listener.on_finished(outcome.into()),
                    DownloadEvent::Failed(e) => listener.on_error(e.into()),
                };
                if delivered.is_err() {
                    tracing::warn!("a DownloadListener threw; the download was paused");
                }
                delivered.is_ok()
            })?;
            Ok(Arc::new(DownloadTask {
                download,
                _live: Live::new(),
            }))
        })
    }

    /// Deletes a paused or abandoned partial download; `true` if there was one.
    pub fn discard_partial(&self, id: String) -> Result<bool, VazhiError> {
        guard(|| Ok(self.current().discard_partial(&id)?))
    }

    /// Removes model `id` (and any partial download); `true` if anything was removed.
    pub fn remove(&self, id: String) -> Result<bool, VazhiError> {
        guard(|| Ok(self.current().remove(&id)?))
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl ModelManager {
    /// Re-hashes installed model `id` against the catalog; a mismatch quarantines it.
    pub async fn verify(&self, id: String) -> Result<InstalledModel, VazhiError> {
        let downloader = self.current();
        blocking(move || Ok(downloader.verify(&id)?.into())).await
    }

    /// Installs a file the OS downloaded (WorkManager, background URLSession) as model `id`,
    /// after checking its size and SHA-256. The file itself is left for the app to delete.
    pub async fn install_downloaded(
        &self,
        id: String,
        path: String,
    ) -> Result<InstalledModel, VazhiError> {
        let downloader = self.current();
        blocking(move || {
            Ok(downloader
                .install_downloaded(&id, &PathBuf::from(path))?
                .into())
        })
        .await
    }
}

/// Runs blocking work on tokio's blocking pool, panics included as errors.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, VazhiError> + Send + 'static,
) -> Result<T, VazhiError> {
    tokio::task::spawn_blocking(move || guard(f))
        .await
        .unwrap_or_else(|e| {
            Err(VazhiError::Internal {
                detail: format!("blocking task failed: {e}"),
            })
        })
}
