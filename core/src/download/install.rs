//! Installing verified files, and knowing later that an installed file is the one that was
//! verified.
//!
//! A model is installed as `models/<id>.gguf` beside `models/<id>.gguf.verified`, a record of the
//! SHA-256 it was checked against and of the file's identity (device, inode, size, modification
//! and status-change times). The old record is deleted before the verified file is renamed into
//! place, and the new one is written *after* the rename, from the open handle: rename(2) changes
//! the file's ctime, and only an identity taken after it can include the ctime, which nothing but
//! the kernel sets — so a file edited in place with its mtime put back no longer matches. A crash
//! between the rename and the record leaves a file without a record: unverified, and re-hashed
//! before it is trusted (`Downloader::verify`, or the next download). [`VerifiedModel`] can only
//! be made here, after those checks, and it is what [`crate::engine::Engine::load_verified`]
//! takes.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::sink::{hash_reader, hex};
use super::{CatalogEntry, DownloadError};
use crate::fsutil::{sync_dir, write_atomically};

/// 2: the identity gained the device and the ctime, and is taken after the rename (version 1
/// records are unverified: a re-hash rewrites them).
const RECORD_VERSION: u32 = 2;

/// An installed catalog model whose bytes were verified against the catalog's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedModel {
    id: String,
    path: PathBuf,
    sha256: String,
    size: u64,
    identity: FileIdentity,
}

impl VerifiedModel {
    /// Catalog id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The installed file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The SHA-256 it was verified against.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the file at [`path`](Self::path) is still the verified one (same device, inode,
    /// size, modification and status-change times; a symlink put in its place never is); the
    /// engine checks this right before loading.
    pub fn is_unchanged(&self) -> bool {
        std::fs::symlink_metadata(&self.path).is_ok_and(|m| FileIdentity::of(&m) == self.identity)
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct VerifiedRecord {
    version: u32,
    id: String,
    sha256: String,
    size: u64,
    identity: FileIdentity,
    verified_at: u64,
}

/// What distinguishes one file from a replacement of it at the same path, or from an edit of it
/// in place. The ctime cannot be set from user space (utimensat sets it to now), so an edit
/// whose mtime is put back still shows; it has the kernel's coarse clock (a few ms), so an edit
/// within the same tick as the install would not.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
struct FileIdentity {
    len: u64,
    device: u64,
    inode: u64,
    modified_ns: u128,
    /// ctime in ns since the epoch (0 where the platform has none).
    changed_ns: i128,
}

impl FileIdentity {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let (device, inode, changed_ns) = {
            use std::os::unix::fs::MetadataExt;
            (
                meta.dev(),
                meta.ino(),
                i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            )
        };
        #[cfg(not(unix))]
        let (device, inode, changed_ns) = (0, 0, 0);
        Self {
            len: meta.len(),
            device,
            inode,
            modified_ns: meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos()),
            changed_ns,
        }
    }

    /// Whether `a` and `b` describe the same file (not necessarily unchanged).
    #[cfg(unix)]
    fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt;
        a.dev() == b.dev() && a.ino() == b.ino()
    }

    #[cfg(not(unix))]
    fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
        true
    }
}

/// The installed file of `entry` under `models`.
pub fn installed_path(models: &Path, entry: &CatalogEntry) -> PathBuf {
    models.join(entry.file_name())
}

fn record_path(models: &Path, entry: &CatalogEntry) -> PathBuf {
    models.join(format!("{}.verified", entry.file_name()))
}

fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> DownloadError {
    move |source| DownloadError::Io { context, source }
}

/// The installed, verified model for `entry`, checked cheaply (record and file identity; no
/// re-hash): [`DownloadError::NotInstalled`] if there is no file, [`DownloadError::Unverified`]
/// if there is one that is not the file that was verified against today's catalog pin.
pub fn installed(models: &Path, entry: &CatalogEntry) -> Result<VerifiedModel, DownloadError> {
    let path = installed_path(models, entry);
    // Not following a symlink: its own identity never matches a record, so one put in place of
    // the model is unverified.
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DownloadError::NotInstalled {
                id: entry.id.clone(),
            })
        }
        Err(e) => return Err(io("reading the installed model")(e)),
    };
    let record: Option<VerifiedRecord> = std::fs::read(record_path(models, entry))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let ok = record.is_some_and(|r| {
        r.version == RECORD_VERSION
            && r.id == entry.id
            && r.sha256 == entry.sha256
            && r.size == entry.size
            && r.identity == FileIdentity::of(&meta)
    });
    if !ok {
        return Err(DownloadError::Unverified {
            id: entry.id.clone(),
        });
    }
    Ok(VerifiedModel {
        id: entry.id.clone(),
        path,
        sha256: entry.sha256.clone(),
        size: entry.size,
        identity: FileIdentity::of(&meta),
    })
}

/// Installs `part`, whose SHA-256 is `digest` (already computed over the bytes of `file`, the
/// open handle of `part`), as `entry`: checks size and hash, fsyncs, deletes the old record,
/// renames into place, then writes the record from the handle and fsyncs the directory. A
/// mismatch quarantines `part` and installs nothing; if `part` (or, after the rename, the
/// installed path) no longer names `file`, nothing is vouched for.
pub fn install_verified_part(
    part: &Path,
    file: &File,
    digest: &str,
    entry: &CatalogEntry,
    models: &Path,
    quarantine: &Path,
) -> Result<VerifiedModel, DownloadError> {
    let meta = file.metadata().map_err(io("reading the part"))?;
    if meta.len() != entry.size {
        let quarantined = quarantine_file(part, quarantine, &entry.id)?;
        return Err(DownloadError::SizeMismatch {
            id: entry.id.clone(),
            expected: entry.size,
            actual: meta.len(),
            quarantined,
        });
    }
    if digest != entry.sha256 {
        let quarantined = quarantine_file(part, quarantine, &entry.id)?;
        return Err(DownloadError::HashMismatch {
            id: entry.id.clone(),
            expected: entry.sha256.clone(),
            actual: digest.to_owned(),
            quarantined,
        });
    }
    file.sync_all().map_err(io("syncing the verified file"))?;
    std::fs::create_dir_all(models).map_err(io("creating the models directory"))?;
    let record_path = record_path(models, entry);
    // The old record goes first: from here until the new one is written, the file at the
    // target is unverified (a crash in between means a re-hash, never a stale vouch).
    match std::fs::remove_file(&record_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io("removing the old verification record")(e))
        }
        _ => {}
    }
    let names_file = |path: &Path| {
        std::fs::symlink_metadata(path).is_ok_and(|m| FileIdentity::same_file(&m, &meta))
    };
    if !names_file(part) {
        return Err(replaced(
            "the file to install was replaced before it was installed",
        ));
    }
    let target = installed_path(models, entry);
    std::fs::rename(part, &target).map_err(io("installing the verified file"))?;
    // The identity is taken after the rename, which changes the ctime.
    let after = file.metadata().map_err(io("reading the installed file"))?;
    if !names_file(&target) {
        return Err(replaced(
            "the installed file was replaced while it was installed",
        ));
    }
    let record = VerifiedRecord {
        version: RECORD_VERSION,
        id: entry.id.clone(),
        sha256: entry.sha256.clone(),
        size: entry.size,
        identity: FileIdentity::of(&after),
        verified_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    write_atomically(
        &record_path,
        &serde_json::to_vec_pretty(&record).map_err(|e| io("writing the record")(e.into()))?,
    )
    .map_err(io("writing the verification record"))?;
    // The model is installed now; a failed directory sync only weakens durability across a
    // power cut (after which the file is at worst unverified), so it is logged, not reported as
    // a failed install.
    for dir in [Some(models), part.parent()].into_iter().flatten() {
        if let Err(e) = sync_dir(dir) {
            tracing::warn!(error = %e, "could not sync a directory after installing");
        }
    }
    tracing::info!(id = %entry.id, "model installed and verified");
    Ok(VerifiedModel {
        id: entry.id.clone(),
        path: target,
        sha256: entry.sha256.clone(),
        size: entry.size,
        identity: record.identity,
    })
}

fn replaced(what: &'static str) -> DownloadError {
    DownloadError::Io {
        context: "installing the verified file",
        source: std::io::Error::other(what),
    }
}

/// Opens the regular file at `path` for reading and writing without following a symlink (on
/// unix), so that nothing outside the data directory is reached through a link planted in it.
/// `create_new` makes a new file (failing if anything, even a dangling link, is there).
pub(crate) fn open_no_follow(path: &Path, create_new: bool) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create_new(create_new);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// [`open_no_follow`], for a file about to be written or truncated: it must have no other
/// (hard) link, which could name a file outside the data directory.
pub(crate) fn open_own_file(path: &Path, create_new: bool) -> std::io::Result<File> {
    let file = open_no_follow(path, create_new)?;
    #[cfg(unix)]
    if std::os::unix::fs::MetadataExt::nlink(&file.metadata()?) != 1 {
        return Err(std::io::Error::other("the file has another link"));
    }
    Ok(file)
}

/// SHA-256 of a whole file, hex.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let len = hash_reader(&mut File::open(path)?, &mut hasher)?;
    Ok((hex(&hasher.finalize()), len))
}

/// Re-hashes the installed file of `entry`. A match (re)writes its record; a mismatch moves the
/// file to quarantine, drops its record and reports [`DownloadError::HashMismatch`].
pub fn verify_installed(
    models: &Path,
    entry: &CatalogEntry,
    quarantine: &Path,
) -> Result<VerifiedModel, DownloadError> {
    let path = installed_path(models, entry);
    // Read-write: syncing needs write access on some platforms (Windows).
    let file = match open_no_follow(&path, false) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DownloadError::NotInstalled {
                id: entry.id.clone(),
            })
        }
        Err(e) => return Err(io("opening the installed model")(e)),
    };
    let _span = tracing::info_span!("verify_model", id = %entry.id).entered();
    let mut hasher = Sha256::new();
    hash_reader(&mut &file, &mut hasher).map_err(io("hashing the installed model"))?;
    let digest = hex(&hasher.finalize());
    // Dropped whatever the outcome: a quarantined file leaves no record behind.
    let _ = std::fs::remove_file(record_path(models, entry));
    install_verified_part(&path, &file, &digest, entry, models, quarantine)
}

/// Installs a file that the OS downloaded for the app (WorkManager, background URLSession):
/// copies it into `staging` while hashing the copy, then installs the copy only if its size and
/// SHA-256 match. `file` itself is left as it was.
pub fn install_external(
    file: &Path,
    entry: &CatalogEntry,
    staging: &Path,
    models: &Path,
    quarantine: &Path,
) -> Result<VerifiedModel, DownloadError> {
    let _span = tracing::info_span!("install_downloaded", id = %entry.id).entered();
    let len = std::fs::metadata(file)
        .map_err(io("reading the downloaded file"))?
        .len();
    if len != entry.size {
        return Err(DownloadError::SizeMismatch {
            id: entry.id.clone(),
            expected: entry.size,
            actual: len,
            quarantined: None,
        });
    }
    std::fs::create_dir_all(staging).map_err(io("creating the downloads directory"))?;
    let copy = staging.join(format!("{}.import", entry.file_name()));
    // A copy left by a crash (or anything planted there) is unlinked, never followed; the new
    // copy is a file of our own, created here.
    match std::fs::remove_file(&copy) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io("removing an old staged copy")(e))
        }
        _ => {}
    }
    let result = (|| {
        let mut source = File::open(file).map_err(io("opening the downloaded file"))?;
        let mut out = open_own_file(&copy, true).map_err(io("staging the downloaded file"))?;
        let mut hasher = Sha256::new();
        let mut tee = HashingWriter {
            inner: &mut out,
            hasher: &mut hasher,
        };
        std::io::copy(&mut source, &mut tee).map_err(|e| storage_error(e, "copying the file"))?;
        let digest = hex(&hasher.finalize());
        install_verified_part(&copy, &out, &digest, entry, models, quarantine)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&copy);
    }
    result
}

struct HashingWriter<'a> {
    inner: &'a mut File,
    hasher: &'a mut Sha256,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Moves `file` into `quarantine` (never deleting evidence of a bad download); returns where.
pub fn quarantine_file(
    file: &Path,
    quarantine: &Path,
    id: &str,
) -> Result<Option<PathBuf>, DownloadError> {
    std::fs::create_dir_all(quarantine).map_err(io("creating the quarantine directory"))?;
    // One file per id is enough to inspect; more would fill a phone one model at a time.
    clear_quarantine(quarantine, id);
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let target = quarantine.join(format!("{id}-{stamp}.bad"));
    std::fs::rename(file, &target).map_err(io("quarantining a bad file"))?;
    tracing::warn!(id, "file failed verification and was quarantined");
    Ok(Some(target))
}

/// Deletes the quarantined files of `id`.
pub fn clear_quarantine(quarantine: &Path, id: &str) {
    let prefix = format!("{id}-");
    let Ok(entries) = std::fs::read_dir(quarantine) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stamp = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".bad"));
        if stamp.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Removes the installed file and its record; `true` if there was a file.
pub fn remove_installed(models: &Path, entry: &CatalogEntry) -> Result<bool, DownloadError> {
    let _ = std::fs::remove_file(record_path(models, entry));
    match std::fs::remove_file(installed_path(models, entry)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("removing the model")(e)),
    }
}

/// Maps ENOSPC to [`DownloadError::StorageFull`], anything else to `Io`.
pub fn storage_error(e: std::io::Error, context: &'static str) -> DownloadError {
    if is_storage_full(&e) {
        DownloadError::StorageFull
    } else {
        DownloadError::Io { context, source: e }
    }
}

/// Whether `e` means the disk is full (or the file-size limit is hit).
pub fn is_storage_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::FileTooLarge
        || e.kind() == std::io::ErrorKind::QuotaExceeded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_for(bytes: &[u8]) -> CatalogEntry {
        let mut e = super::super::Catalog::builtin().unwrap().entries()[0].clone();
        e.id = "tiny".into();
        e.size = bytes.len() as u64;
        e.sha256 = hex(&Sha256::digest(bytes));
        e
    }

    struct Dirs {
        _root: tempfile::TempDir,
        models: PathBuf,
        staging: PathBuf,
        quarantine: PathBuf,
    }

    fn dirs() -> Dirs {
        let root = tempfile::tempdir().unwrap();
        let d = Dirs {
            models: root.path().join("models"),
            staging: root.path().join("downloads"),
            quarantine: root.path().join("downloads/quarantine"),
            _root: root,
        };
        std::fs::create_dir_all(&d.models).unwrap();
        d
    }

    #[test]
    fn external_file_is_verified_installed_and_recognised() {
        let d = dirs();
        let bytes = b"a model, honestly".to_vec();
        let entry = entry_for(&bytes);
        let src = d.staging.with_file_name("fetched-by-os.bin");
        std::fs::write(&src, &bytes).unwrap();
        assert!(matches!(
            installed(&d.models, &entry),
            Err(DownloadError::NotInstalled { .. })
        ));
        let model = install_external(&src, &entry, &d.staging, &d.models, &d.quarantine).unwrap();
        assert_eq!(std::fs::read(model.path()).unwrap(), bytes);
        assert!(src.exists(), "the app's file is left alone");
        assert_eq!(installed(&d.models, &entry).unwrap(), model);
        assert_eq!(
            verify_installed(&d.models, &entry, &d.quarantine).unwrap(),
            model
        );
    }

    #[test]
    fn wrong_bytes_are_quarantined_and_never_replace_a_good_install() {
        let d = dirs();
        let good = b"the right bytes!".to_vec();
        let entry = entry_for(&good);
        let src = d.staging.with_file_name("x.bin");
        std::fs::write(&src, &good).unwrap();
        install_external(&src, &entry, &d.staging, &d.models, &d.quarantine).unwrap();

        let mut bad = good.clone();
        bad[3] ^= 1;
        std::fs::write(&src, &bad).unwrap();
        let err = install_external(&src, &entry, &d.staging, &d.models, &d.quarantine).unwrap_err();
        let DownloadError::HashMismatch { quarantined, .. } = err else {
            panic!("{err}")
        };
        assert!(quarantined.unwrap().exists());
        assert_eq!(
            std::fs::read(installed_path(&d.models, &entry)).unwrap(),
            good
        );
        assert!(installed(&d.models, &entry).is_ok());

        std::fs::write(&src, b"short").unwrap();
        assert!(matches!(
            install_external(&src, &entry, &d.staging, &d.models, &d.quarantine),
            Err(DownloadError::SizeMismatch { .. })
        ));
        assert_eq!(
            std::fs::read_dir(&d.staging).unwrap().count(),
            1,
            "only quarantine/"
        );
    }

    #[cfg(unix)]
    #[test]
    fn an_install_edited_in_place_with_its_mtime_put_back_is_unverified() {
        let d = dirs();
        let good = b"0123456789".to_vec();
        let entry = entry_for(&good);
        let src = d.staging.with_file_name("x.bin");
        std::fs::write(&src, &good).unwrap();
        let model = install_external(&src, &entry, &d.staging, &d.models, &d.quarantine).unwrap();
        let path = installed_path(&d.models, &entry);
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        // Past the kernel's coarse clock tick: the edit's ctime differs from the install's.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::os::unix::fs::FileExt::write_at(&file, b"X", 0).unwrap();
        file.set_modified(mtime).unwrap();
        drop(file);
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
        assert!(!model.is_unchanged());
        assert!(matches!(
            installed(&d.models, &entry),
            Err(DownloadError::Unverified { .. })
        ));
        assert!(matches!(
            verify_installed(&d.models, &entry, &d.quarantine),
            Err(DownloadError::HashMismatch { .. })
        ));
    }

    #[test]
    fn a_missing_record_is_unverified_until_a_rehash() {
        let d = dirs();
        let good = b"0123456789".to_vec();
        let entry = entry_for(&good);
        let src = d.staging.with_file_name("x.bin");
        std::fs::write(&src, &good).unwrap();
        let model = install_external(&src, &entry, &d.staging, &d.models, &d.quarantine).unwrap();
        std::fs::remove_file(record_path(&d.models, &entry)).unwrap();
        assert!(matches!(
            installed(&d.models, &entry),
            Err(DownloadError::Unverified { .. })
        ));
        let again = verify_installed(&d.models, &entry, &d.quarantine).unwrap();
        assert_eq!(installed(&d.models, &entry).unwrap(), again);
        assert!(model.is_unchanged() && again.is_unchanged());
    }

    #[cfg(unix)]
    #[test]
    fn a_link_at_the_staging_path_is_replaced_never_written_through() {
        let d = dirs();
        let good = b"a model, honestly".to_vec();
        let entry = entry_for(&good);
        let src = d.staging.with_file_name("fetched-by-os.bin");
        std::fs::write(&src, &good).unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("precious");
        std::fs::write(&target, b"not ours").unwrap();
        std::fs::create_dir_all(&d.staging).unwrap();
        let copy = d.staging.join(format!("{}.import", entry.file_name()));
        std::os::unix::fs::symlink(&target, &copy).unwrap();
        let model = install_external(&src, &entry, &d.staging, &d.models, &d.quarantine).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"not ours");
        let meta = std::fs::symlink_metadata(model.path()).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(std::fs::read(model.path()).unwrap(), good);
        assert!(installed(&d.models, &entry).is_ok());
    }

    #[test]
    fn a_replaced_or_tampered_install_is_unverified() {
        let d = dirs();
        let good = b"0123456789".to_vec();
        let entry = entry_for(&good);
        let src = d.staging.with_file_name("x.bin");
        std::fs::write(&src, &good).unwrap();
        install_external(&src, &entry, &d.staging, &d.models, &d.quarantine).unwrap();
        // Same size, same path, other bytes: a new inode/mtime, so no longer verified.
        let path = installed_path(&d.models, &entry);
        let other = d.models.join("other");
        std::fs::write(&other, b"9876543210").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert!(matches!(
            installed(&d.models, &entry),
            Err(DownloadError::Unverified { .. })
        ));
        // A full re-hash finds the bad bytes and quarantines them.
        assert!(matches!(
            verify_installed(&d.models, &entry, &d.quarantine),
            Err(DownloadError::HashMismatch { .. })
        ));
        assert!(!path.exists());
        assert!(remove_installed(&d.models, &entry).is_ok_and(|had| !had));
    }
}
