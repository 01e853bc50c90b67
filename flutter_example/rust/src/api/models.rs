//! [`ModelManager`]: the model catalog, whether a model fits this device, resumable verified
//! downloads streamed as [`DownloadEvent`]s (pause, resume, cancel through a
//! [`DownloadTask`]), files the OS downloaded, verification, removal, and the offline switch.

use std::path::PathBuf;
use std::time::Duration;

use flutter_rust_bridge::frb;
use vazhi_core::app::{Models, ModelsConfig};
use vazhi_core::download::{DownloadEvent as CoreEvent, DownloadHandle};

use crate::api::error::{guard, VazhiException};
use crate::api::records::{CatalogModel, DownloadEvent, InstalledModel, ModelStatus};
use crate::emit::Emit;
use crate::frb_generated::StreamSink;

/// How to build a [`ModelManager`]; `null` fields keep Vazhi's defaults.
#[frb(non_opaque)]
#[derive(Debug, Clone, Default)]
pub struct ModelManagerConfig {
    /// The app's data directory.
    pub data_dir: String,
    /// The model catalog (JSON); default: the catalog built into Vazhi.
    pub catalog_json: Option<String>,
    /// `catalog_json`'s detached signature (a signature file's text).
    pub catalog_signature: Option<String>,
    /// Public keys (64 hex digits each) whose catalog signatures are trusted.
    #[frb(default = [])]
    pub trusted_keys: Vec<String>,
    /// Accept a `catalog_json` that is not signed by a trusted key.
    #[frb(default = false)]
    pub allow_unsigned: bool,
    /// Hosts allowed besides the catalog's (an app's own mirror).
    #[frb(default = [])]
    pub extra_hosts: Vec<String>,
    /// Open no socket: downloads fail at once with `offline`.
    #[frb(default = false)]
    pub offline: bool,
    /// The device's RAM in MiB (checked against the catalog's `min_ram_mb`); default: what
    /// the operating system reports.
    pub ram_mb: Option<u64>,
    /// Free storage the app measured, in bytes (otherwise the filesystem is asked).
    pub free_storage_bytes: Option<u64>,
    /// Seconds without data before a connection is retried (default 30).
    pub read_timeout_seconds: Option<u32>,
    /// Allow plain http to loopback hosts. Tests only.
    #[frb(default = false)]
    pub allow_loopback_http: bool,
}

impl TryFrom<ModelManagerConfig> for ModelsConfig {
    type Error = VazhiException;

    fn try_from(c: ModelManagerConfig) -> Result<Self, VazhiException> {
        Ok(ModelsConfig {
            data_dir: c.data_dir.into(),
            catalog_json: c.catalog_json,
            catalog_signature: c.catalog_signature,
            trust: vazhi_core::signing::TrustPolicy {
                keys: vazhi_core::signing::TrustedKeys::from_hex(&c.trusted_keys)?,
                allow_unsigned: c.allow_unsigned,
            },
            extra_hosts: c.extra_hosts,
            offline: c.offline,
            ram_mb: c.ram_mb,
            free_storage_bytes: c.free_storage_bytes,
            read_timeout: c
                .read_timeout_seconds
                .map(|s| Duration::from_secs(u64::from(s))),
            allow_loopback_http: c.allow_loopback_http,
        })
    }
}

/// Controls one download: create it, pass it to [`ModelManager::download`], then `pause()`
/// (keeps the partial file; downloading again resumes) or `cancel()` (deletes it).
#[frb(opaque)]
#[derive(Debug, Default)]
pub struct DownloadTask {
    download: DownloadHandle,
}

impl DownloadTask {
    /// A task that is not stopped.
    #[frb(sync)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops and keeps the partial file; the stream ends with `paused`.
    #[frb(sync)]
    pub fn pause(&self) {
        self.download.pause();
    }

    /// Stops and deletes the partial file; the stream ends with `cancelled`.
    #[frb(sync)]
    pub fn cancel(&self) {
        self.download.cancel();
    }

    /// Whether the stream has had its last event (and the download's lock is released).
    #[frb(sync)]
    pub fn is_finished(&self) -> bool {
        self.download.is_finished()
    }
}

/// The catalog and the models on this device.
#[frb(opaque)]
#[derive(Debug)]
pub struct ModelManager {
    models: Models,
}

impl ModelManager {
    /// A manager over the data directory and the catalog (an invalid catalog throws
    /// `invalidInput`).
    pub fn open(config: ModelManagerConfig) -> Result<ModelManager, VazhiException> {
        guard(|| {
            Ok(ModelManager {
                models: Models::new(config.try_into()?)?,
            })
        })
    }

    /// The catalog's models.
    #[frb(sync)]
    pub fn catalog(&self) -> Vec<CatalogModel> {
        self.models
            .downloader()
            .catalog()
            .entries()
            .iter()
            .map(CatalogModel::from)
            .collect()
    }

    /// Where model `id` stands (cheap: no re-hash).
    pub fn status(&self, id: String) -> Result<ModelStatus, VazhiException> {
        guard(|| Ok(self.models.downloader().status(&id)?.into()))
    }

    /// Checks that model `id` fits this device (RAM, storage); throws
    /// `insufficientResources` if not.
    pub fn check_fits(&self, id: String) -> Result<(), VazhiException> {
        guard(|| Ok(self.models.downloader().check_fits(&id)?))
    }

    /// Switches the offline setting: while on, no download opens a socket, and switching it
    /// on pauses the downloads running now (each stream ends with `paused`, keeping its partial
    /// file); download again once online to resume.
    pub fn set_offline(&self, offline: bool) -> Result<(), VazhiException> {
        guard(|| Ok(self.models.set_offline(offline)?))
    }

    /// Whether the offline setting is on.
    #[frb(sync)]
    pub fn is_offline(&self) -> bool {
        self.models.is_offline()
    }

    /// Starts (or resumes) downloading model `id` on a thread of its own: progress events,
    /// then one last event (`installed`, `paused`, `cancelled`), or a `VazhiException`.
    #[frb(stream_dart_await)]
    pub fn download(
        &self,
        id: String,
        task: &DownloadTask,
        sink: StreamSink<DownloadEvent>,
    ) -> Result<(), VazhiException> {
        self.download_into(id, task, sink)
    }

    /// [`download`](Self::download) into any [`Emit`] (the Rust tests use a channel).
    #[frb(ignore)]
    pub fn download_into(
        &self,
        id: String,
        task: &DownloadTask,
        out: impl Emit<DownloadEvent>,
    ) -> Result<(), VazhiException> {
        guard(|| {
            Ok(self
                .models
                .start_download_on(&task.download, &id, move |event| match event {
                    CoreEvent::Progress(p) => out.emit(DownloadEvent::progress(&p)),
                    CoreEvent::Finished(outcome) => out.emit(outcome.into()),
                    CoreEvent::Failed(e) => {
                        out.fail(e.into());
                        true
                    }
                })?)
        })
    }

    /// Deletes a paused or abandoned partial download; `true` if there was one.
    pub fn discard_partial(&self, id: String) -> Result<bool, VazhiException> {
        guard(|| Ok(self.models.downloader().discard_partial(&id)?))
    }

    /// Removes model `id` (and any partial download); `true` if anything was removed.
    pub fn remove(&self, id: String) -> Result<bool, VazhiException> {
        guard(|| Ok(self.models.downloader().remove(&id)?))
    }

    /// Re-hashes installed model `id` against the catalog; a mismatch quarantines it.
    pub fn verify(&self, id: String) -> Result<InstalledModel, VazhiException> {
        guard(|| Ok(self.models.downloader().verify(&id)?.into()))
    }

    /// Installs a file the OS downloaded (WorkManager, background URLSession) as model `id`,
    /// after checking its size and SHA-256. The file itself is left for the app to delete.
    pub fn install_downloaded(
        &self,
        id: String,
        path: String,
    ) -> Result<InstalledModel, VazhiException> {
        guard(|| {
            Ok(self
                .models
                .downloader()
                .install_downloaded(&id, &PathBuf::from(path))?
                .into())
        })
    }
}
