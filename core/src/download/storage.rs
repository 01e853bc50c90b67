//! Device checks before a download starts: free storage, RAM the model needs, and the lock that
//! keeps one download per target.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use super::{CatalogEntry, DownloadError};

/// Free bytes kept in reserve beyond what the download still needs.
pub const SPACE_MARGIN_BYTES: u64 = 32 << 20;

/// What the app knows about the device (phones report this from platform APIs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Total RAM in MiB, if known.
    pub ram_mb: Option<u64>,
    /// Free storage for the data directory in bytes, if the app measured it (otherwise the
    /// filesystem is asked).
    pub free_storage_bytes: Option<u64>,
}

/// Free bytes on the filesystem holding `dir`.
pub fn free_space(dir: &Path) -> Result<u64, DownloadError> {
    fs_free_space(dir).map_err(|source| DownloadError::Io {
        context: "checking free space",
        source,
    })
}

#[cfg(unix)]
fn fs_free_space(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has a NUL"))?;
    // SAFETY: `statvfs` is a plain C struct of integer fields (and integer arrays or padding on
    // some platforms), with no references, pointers or enums, so all-zero bytes are a valid
    // value of it (and it is read only after `statvfs` has filled it in).
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` a writable statvfs.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::useless_conversion)] // the field widths differ between platforms
    Ok(u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize)))
}

#[cfg(not(unix))]
fn fs_free_space(_dir: &Path) -> std::io::Result<u64> {
    Ok(u64::MAX)
}

/// The device's physical RAM in MiB, as the operating system reports it (`sysconf`: Linux,
/// Android, macOS, iOS); `None` where it cannot be asked.
#[cfg(unix)]
pub fn physical_ram_mb() -> Option<u64> {
    // SAFETY: sysconf has no preconditions; it returns -1 for names it does not know.
    let (pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages <= 0 || page_size <= 0 {
        return None;
    }
    Some((pages as u64).saturating_mul(page_size as u64) >> 20)
}

/// The device's physical RAM in MiB; `None` where it cannot be asked.
#[cfg(not(unix))]
pub fn physical_ram_mb() -> Option<u64> {
    None
}

/// Checks that `entry` fits: enough RAM (when known) and free storage for the `remaining` bytes
/// plus [`SPACE_MARGIN_BYTES`].
pub fn check_fits(
    entry: &CatalogEntry,
    device: &DeviceInfo,
    remaining: u64,
    dir: &Path,
) -> Result<(), DownloadError> {
    if let Some(ram_mb) = device.ram_mb {
        if ram_mb < entry.min_ram_mb {
            return Err(DownloadError::NotEnoughRam {
                needed_mb: entry.min_ram_mb,
                available_mb: ram_mb,
            });
        }
    }
    let available = match device.free_storage_bytes {
        Some(bytes) => bytes.min(free_space(dir)?),
        None => free_space(dir)?,
    };
    let needed = remaining.saturating_add(SPACE_MARGIN_BYTES);
    if available < needed {
        return Err(DownloadError::InsufficientStorage { needed, available });
    }
    Ok(())
}

/// An exclusive lock on one download target, held for the whole download and released when
/// dropped (or when the process dies: it is an OS file lock).
#[derive(Debug)]
pub struct TargetLock {
    _file: File,
    path: PathBuf,
}

impl TargetLock {
    /// Takes the lock at `path` or fails at once with [`DownloadError::Busy`].
    pub fn acquire(path: &Path, id: &str) -> Result<Self, DownloadError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| DownloadError::Io {
                context: "opening the download lock",
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self {
                _file: file,
                path: path.to_owned(),
            }),
            Err(TryLockError::WouldBlock) => Err(DownloadError::Busy { id: id.to_owned() }),
            Err(TryLockError::Error(source)) => Err(DownloadError::Io {
                context: "locking the download",
                source,
            }),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(min_ram_mb: u64) -> CatalogEntry {
        let mut e = super::super::Catalog::builtin().unwrap().entries()[0].clone();
        e.min_ram_mb = min_ram_mb;
        e
    }

    #[test]
    fn free_space_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_space(dir.path()).unwrap() > 0);
        assert!(free_space(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn ram_and_storage_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let small_phone = DeviceInfo {
            ram_mb: Some(256),
            free_storage_bytes: None,
        };
        assert!(matches!(
            check_fits(&entry(512), &small_phone, 1, dir.path()),
            Err(DownloadError::NotEnoughRam {
                needed_mb: 512,
                available_mb: 256
            })
        ));
        let full_phone = DeviceInfo {
            ram_mb: Some(4096),
            free_storage_bytes: Some(10 << 20),
        };
        assert!(matches!(
            check_fits(&entry(512), &full_phone, 1, dir.path()),
            Err(DownloadError::InsufficientStorage { .. })
        ));
        assert!(check_fits(&entry(512), &DeviceInfo::default(), 1, dir.path()).is_ok());
        assert!(matches!(
            check_fits(
                &entry(512),
                &DeviceInfo::default(),
                u64::MAX / 2,
                dir.path()
            ),
            Err(DownloadError::InsufficientStorage { .. })
        ));
    }

    #[test]
    fn one_lock_per_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.lock");
        let first = TargetLock::acquire(&path, "m").unwrap();
        assert!(matches!(
            TargetLock::acquire(&path, "m"),
            Err(DownloadError::Busy { .. })
        ));
        drop(first);
        assert!(TargetLock::acquire(&path, "m").is_ok());
    }
}
