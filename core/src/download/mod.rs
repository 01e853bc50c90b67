//! Model downloads: only catalog entries, only from allowlisted hosts, resumable across crashes
//! and network drops, and installed only after every byte matched the pinned SHA-256.
//!
//! ```text
//! <data dir>/downloads/<id>.gguf.part        bytes so far
//!                      <id>.gguf.part.json   url, strong validator, bytes (state.rs)
//!                      <id>.gguf.lock        one download per target (OS file lock)
//!                      quarantine/           files that failed verification
//! <data dir>/models/<id>.gguf               installed, verified
//!                   <id>.gguf.verified      what it was verified against (install.rs)
//! ```
//!
//! The rules (which HTTP answers resume, restart or fail) are in `fetch.rs` and
//! `docs/decisions/0006-downloads.md`. [`Downloader::download`] is async (tokio); the CLI and
//! the bindings drive it from their runtime.

pub mod allowlist;
pub mod catalog;
pub mod control;
mod fetch;
pub mod http;
pub mod install;
pub(crate) mod sink;
pub mod state;
pub mod storage;
pub(crate) mod task;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use allowlist::Allowlist;
pub use catalog::{catalog_signed_text, Catalog, CatalogEntry, CatalogError};
pub use control::{DownloadControl, Phase, Progress, RunningDownloads, Tracked};
pub use install::VerifiedModel;
pub use storage::DeviceInfo;
pub use task::{DownloadEvent, DownloadHandle};

use crate::data_dir::DataDir;

/// Why a download, verification or install did not happen. Messages never contain user text;
/// URLs in them are redacted (no credentials, no query).
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The offline setting is on: no socket was opened.
    #[error("offline: downloads are switched off")]
    Offline,
    /// No catalog entry has this id.
    #[error("no model {id:?} in the catalog")]
    UnknownModel {
        /// The id asked for.
        id: String,
    },
    /// The catalog is unusable.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A URL (first request or redirect) is not https, or carries credentials.
    #[error("refused insecure URL {url}")]
    InsecureUrl {
        /// The URL, redacted.
        url: String,
    },
    /// A URL (first request or redirect) points at a host not on the allowlist.
    #[error("host {host} is not on the download allowlist")]
    HostNotAllowed {
        /// The host.
        host: String,
    },
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    /// A redirect without a usable `Location`.
    #[error("redirect without a valid Location")]
    BadRedirect,
    /// The server answered with an error status that retrying will not fix.
    #[error("server answered HTTP {status}")]
    HttpStatus {
        /// The status code.
        status: u16,
    },
    /// The server sent something that contradicts the catalog or HTTP (e.g. a body longer than
    /// the pinned size).
    #[error("server misbehaved: {0}")]
    ServerMisbehaved(String),
    /// Transient failures (network, timeouts, 5xx) went on past the retry budget.
    #[error("download failed after {attempts} attempts: {last}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The downloaded file has the wrong size; it was quarantined, nothing was installed.
    #[error("{id}: size {actual} does not match the catalog's {expected}; nothing installed")]
    SizeMismatch {
        /// Catalog id.
        id: String,
        /// Pinned size.
        expected: u64,
        /// Size found.
        actual: u64,
        /// Where the file was moved, if it was ours to move.
        quarantined: Option<PathBuf>,
    },
    /// The downloaded file's SHA-256 does not match the pin; it was quarantined, nothing was
    /// installed.
    #[error("{id}: SHA-256 {actual} does not match the catalog's {expected}; file quarantined, nothing installed")]
    HashMismatch {
        /// Catalog id.
        id: String,
        /// Pinned hash.
        expected: String,
        /// Hash found.
        actual: String,
        /// Where the file was moved.
        quarantined: Option<PathBuf>,
    },
    /// Not enough free storage to start (remaining bytes plus a margin).
    #[error("not enough storage: {needed} bytes needed, {available} available")]
    InsufficientStorage {
        /// Bytes needed.
        needed: u64,
        /// Bytes free.
        available: u64,
    },
    /// The disk filled up during the download; the part is kept for a later resume.
    #[error("storage is full; the partial download is kept and will resume")]
    StorageFull,
    /// The device has less RAM than the model needs.
    #[error("model needs {needed_mb} MiB of RAM, the device has {available_mb} MiB")]
    NotEnoughRam {
        /// Catalog `min_ram_mb`.
        needed_mb: u64,
        /// What the app reported.
        available_mb: u64,
    },
    /// Another download of the same model is running.
    #[error("{id} is already being downloaded")]
    Busy {
        /// Catalog id.
        id: String,
    },
    /// The model is not installed.
    #[error("{id} is not installed")]
    NotInstalled {
        /// Catalog id.
        id: String,
    },
    /// A file is installed but it is not the one verified against the catalog's pin (run
    /// verify, or download again).
    #[error("{id} is installed but not verified against the catalog; verify or download it again")]
    Unverified {
        /// Catalog id.
        id: String,
    },
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// A bug: the download panicked (the panic was stopped and reported here).
    #[error("internal error: {detail}")]
    Internal {
        /// The panic's message.
        detail: String,
    },
}

/// Most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;

/// Retries of transient failures: exponential backoff with full jitter.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in a row without progress before giving up.
    pub max_attempts: u32,
    /// First backoff ceiling.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `attempt` (1-based): uniform in `[0, min(max, base·2^(n-1))]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_delay);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// How the downloader behaves; apps set this once.
#[derive(Debug, Clone)]
pub struct DownloadConfig {
    /// Where models and partial downloads live.
    pub data_dir: DataDir,
    /// Hosts allowed besides the catalog's own (e.g. an app's mirror).
    pub extra_hosts: Vec<String>,
    /// Allow plain http to loopback hosts. For tests only.
    pub allow_loopback_http: bool,
    /// Open no socket at all: every download fails at once with [`DownloadError::Offline`].
    pub offline: bool,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response.
    pub read_idle_timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Least time between two progress events.
    pub progress_interval: Duration,
    /// What the app reports about the device.
    pub device: DeviceInfo,
}

impl DownloadConfig {
    /// Defaults for `data_dir`.
    pub fn new(data_dir: DataDir) -> Self {
        Self {
            data_dir,
            extra_hosts: Vec::new(),
            allow_loopback_http: false,
            offline: false,
            connect_timeout: Duration::from_secs(15),
            read_idle_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            progress_interval: Duration::from_millis(250),
            device: DeviceInfo::default(),
        }
    }
}

/// How a download call ended without an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadOutcome {
    /// Verified and installed (or already was).
    Installed(VerifiedModel),
    /// Paused: the part is kept; call download again to resume.
    Paused {
        /// Bytes kept.
        bytes: u64,
    },
    /// Cancelled: the part was deleted.
    Cancelled,
}

/// Where one model stands on this device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelStatus {
    /// Nothing here.
    Absent,
    /// A partial download of `bytes`.
    Partial {
        /// Bytes downloaded.
        bytes: u64,
    },
    /// Installed and verified.
    Installed(VerifiedModel),
    /// A file is installed that was not verified against the current pin.
    Unverified,
}

/// Downloads, verifies, installs and removes catalog models.
#[derive(Debug)]
pub struct Downloader {
    catalog: Catalog,
    config: DownloadConfig,
    allowlist: Allowlist,
    client: std::sync::OnceLock<reqwest::Client>,
}

impl Downloader {
    /// A downloader for `catalog`; the allowlist is the catalog's hosts plus
    /// `config.extra_hosts`.
    pub fn new(catalog: Catalog, config: DownloadConfig) -> Self {
        let allowlist = Allowlist::new(
            catalog.hosts().chain(config.extra_hosts.iter().cloned()),
            config.allow_loopback_http,
        );
        Self {
            catalog,
            config,
            allowlist,
            client: std::sync::OnceLock::new(),
        }
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The allowlist in force.
    pub fn allowlist(&self) -> &Allowlist {
        &self.allowlist
    }

    /// The configuration.
    pub fn config(&self) -> &DownloadConfig {
        &self.config
    }

    fn entry(&self, id: &str) -> Result<&CatalogEntry, DownloadError> {
        self.catalog
            .get(id)
            .ok_or_else(|| DownloadError::UnknownModel { id: id.to_owned() })
    }

    fn models_dir(&self) -> PathBuf {
        self.config.data_dir.models()
    }

    fn downloads_dir(&self) -> PathBuf {
        self.config.data_dir.downloads()
    }

    fn quarantine_dir(&self) -> PathBuf {
        self.downloads_dir().join("quarantine")
    }

    fn part_path(&self, entry: &CatalogEntry) -> PathBuf {
        self.downloads_dir()
            .join(format!("{}.part", entry.file_name()))
    }

    fn state_path(&self, entry: &CatalogEntry) -> PathBuf {
        self.downloads_dir()
            .join(format!("{}.part.json", entry.file_name()))
    }

    fn lock_path(&self, entry: &CatalogEntry) -> PathBuf {
        self.downloads_dir()
            .join(format!("{}.lock", entry.file_name()))
    }

    fn create_dirs(&self) -> Result<(), DownloadError> {
        for dir in [self.models_dir(), self.downloads_dir()] {
            std::fs::create_dir_all(&dir).map_err(|source| DownloadError::Io {
                context: "creating the data directory",
                source,
            })?;
        }
        Ok(())
    }

    /// Downloads catalog model `id`, resuming a part left by an earlier run, and installs it
    /// once its size and SHA-256 match the catalog. `on_progress` receives throttled events.
    ///
    /// Fails at once, before any socket is opened, when offline, when the id is unknown, when
    /// another download of it runs, or when it does not fit the device.
    pub async fn download(
        &self,
        id: &str,
        control: &DownloadControl,
        on_progress: impl FnMut(&Progress) + Send,
    ) -> Result<DownloadOutcome, DownloadError> {
        fetch::Fetch(self).download(id, control, on_progress).await
    }

    /// Where model `id` stands: installed and verified (cheap check, no re-hash), unverified,
    /// partially downloaded, or absent.
    pub fn status(&self, id: &str) -> Result<ModelStatus, DownloadError> {
        let entry = self.entry(id)?;
        match install::installed(&self.models_dir(), entry) {
            Ok(model) => return Ok(ModelStatus::Installed(model)),
            Err(DownloadError::Unverified { .. }) => return Ok(ModelStatus::Unverified),
            Err(DownloadError::NotInstalled { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(
            match std::fs::symlink_metadata(self.part_path(entry))
                .ok()
                .filter(std::fs::Metadata::is_file)
            {
                Some(meta) => ModelStatus::Partial { bytes: meta.len() },
                None => ModelStatus::Absent,
            },
        )
    }

    /// The installed model `id`, if it is the file that was verified against the catalog's
    /// pin (cheap check: the verification record and the file's identity).
    pub fn installed(&self, id: &str) -> Result<VerifiedModel, DownloadError> {
        install::installed(&self.models_dir(), self.entry(id)?)
    }

    /// Re-hashes installed model `id`; a mismatch quarantines the file.
    pub fn verify(&self, id: &str) -> Result<VerifiedModel, DownloadError> {
        let entry = self.entry(id)?;
        self.create_dirs()?;
        let _lock = storage::TargetLock::acquire(&self.lock_path(entry), id)?;
        install::verify_installed(&self.models_dir(), entry, &self.quarantine_dir())
    }

    /// Removes installed model `id` and any partial download of it; `true` if anything was
    /// removed.
    pub fn remove(&self, id: &str) -> Result<bool, DownloadError> {
        let entry = self.entry(id)?;
        self.create_dirs()?;
        let _lock = storage::TargetLock::acquire(&self.lock_path(entry), id)?;
        let had_part = self.discard_part(entry);
        install::clear_quarantine(&self.quarantine_dir(), id);
        Ok(install::remove_installed(&self.models_dir(), entry)? || had_part)
    }

    /// Deletes a paused or abandoned partial download of `id` (the installed model, if any, stays);
    /// `true` if there was one. Needs no network, unlike cancelling through a download call.
    pub fn discard_partial(&self, id: &str) -> Result<bool, DownloadError> {
        let entry = self.entry(id)?;
        self.create_dirs()?;
        let _lock = storage::TargetLock::acquire(&self.lock_path(entry), id)?;
        Ok(self.discard_part(entry))
    }

    /// Installs a file the OS downloaded for the app (WorkManager, background URLSession) as
    /// model `id`, with the same checks as [`download`](Self::download): size, SHA-256,
    /// fsync, atomic rename. The file is copied; the original is left for the app to delete.
    pub fn install_downloaded(
        &self,
        id: &str,
        file: &Path,
    ) -> Result<VerifiedModel, DownloadError> {
        let entry = self.entry(id)?;
        self.create_dirs()?;
        let _lock = storage::TargetLock::acquire(&self.lock_path(entry), id)?;
        storage::check_fits(
            entry,
            &self.config.device,
            entry.size,
            &self.downloads_dir(),
        )?;
        install::install_external(
            file,
            entry,
            &self.downloads_dir(),
            &self.models_dir(),
            &self.quarantine_dir(),
        )
    }

    /// Checks, before any byte moves, that model `id` fits this device: catalog `min_ram_mb`
    /// against the RAM the app reported, and the bytes still missing plus a margin against free
    /// storage.
    pub fn check_fits(&self, id: &str) -> Result<(), DownloadError> {
        let entry = self.entry(id)?;
        let have = self.resumable_len(entry);
        storage::check_fits(
            entry,
            &self.config.device,
            entry.size.saturating_sub(have),
            self.config.data_dir.root(),
        )
    }

    /// [`Downloader::download`] on the calling thread, with its own single-threaded runtime:
    /// the HTTP connection and the download loop exchange chunks without cross-thread wake-ups
    /// (docs/decisions/0006-downloads.md). For callers that run each download on a thread
    /// ([`Models::start_download`](crate::app::Models::start_download) does).
    pub fn download_blocking(
        &self,
        id: &str,
        control: &DownloadControl,
        on_progress: impl FnMut(&Progress) + Send,
    ) -> Result<DownloadOutcome, DownloadError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| DownloadError::Io {
                context: "starting the download runtime",
                source,
            })?;
        runtime.block_on(self.download(id, control, on_progress))
    }

    /// Bytes of the part that a download would keep: all of them if its state allows a resume
    /// (or it is complete), else none.
    fn resumable_len(&self, entry: &CatalogEntry) -> u64 {
        let len = self.part_len(entry);
        let resumable = state::PartState::load(&self.state_path(entry)).is_some_and(|s| {
            s.is_for(entry) && s.validator.is_some() && entry.urls.contains(&s.url)
        });
        if len == entry.size || (resumable && len < entry.size) {
            len
        } else {
            0
        }
    }

    /// Length of the part: 0 if there is none, or if it is not a regular file (a symlink is
    /// never followed).
    fn part_len(&self, entry: &CatalogEntry) -> u64 {
        std::fs::symlink_metadata(self.part_path(entry))
            .ok()
            .filter(std::fs::Metadata::is_file)
            .map_or(0, |m| m.len())
    }

    /// Whether something other than a plain file of our own (a symlink, a directory, a file
    /// with another hard link) sits where the part goes.
    fn part_is_foreign(&self, entry: &CatalogEntry) -> bool {
        std::fs::symlink_metadata(self.part_path(entry)).is_ok_and(|m| {
            #[cfg(unix)]
            let links = std::os::unix::fs::MetadataExt::nlink(&m);
            #[cfg(not(unix))]
            let links = 1;
            !m.is_file() || links != 1
        })
    }

    /// Deletes the part and its state; `true` if there was a part.
    fn discard_part(&self, entry: &CatalogEntry) -> bool {
        let _ = std::fs::remove_file(self.state_path(entry));
        std::fs::remove_file(self.part_path(entry)).is_ok()
    }

    fn client(&self) -> Result<&reqwest::Client, DownloadError> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let client = build_client(&self.config)?;
        Ok(self.client.get_or_init(|| client))
    }
}

fn build_client(config: &DownloadConfig) -> Result<reqwest::Client, DownloadError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DownloadError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(!config.allow_loopback_http)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.connect_timeout)
        .user_agent(concat!("vazhi/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DownloadError::Client(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
        };
        for _ in 0..200 {
            assert!(p.delay(1) <= Duration::from_millis(100));
            assert!(p.delay(3) <= Duration::from_millis(400));
            assert!(p.delay(30) <= Duration::from_millis(400));
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| p.delay(3)).collect();
        assert!(spread.len() > 10, "jitter spreads retries");
    }

    #[test]
    fn unknown_ids_and_offline_need_no_network() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = DownloadConfig::new(DataDir::new(dir.path()));
        config.offline = true;
        let d = Downloader::new(Catalog::builtin().unwrap(), config);
        assert!(matches!(
            d.status("nope"),
            Err(DownloadError::UnknownModel { .. })
        ));
        assert_eq!(
            d.status("smollm2-135m-instruct-q4_1").unwrap(),
            ModelStatus::Absent
        );
        assert!(d.allowlist().hosts().any(|h| h == "huggingface.co"));
    }
}
