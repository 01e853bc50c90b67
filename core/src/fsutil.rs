//! Small file helpers shared by the parts of the SDK that must never leave a half-written file:
//! atomic replacement, directory sync, and lowercase hex for digests and ids.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a new temporary file beside it ([`create_temp_beside`]:
/// a random name, never a file or link already there), fsync, rename. On failure the temporary
/// file is removed and `path` is untouched.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically_with_mode(path, bytes, 0o644)
}

/// [`write_atomically`] with Unix permissions `mode` from the moment the file exists (`0o600`
/// for a file only its owner may read).
pub fn write_atomically_with_mode(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let (mut file, tmp) = create_temp_beside(path, mode)?;
    let result = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates a new, empty temporary file beside `path`, named `<name>.tmp-<random>`: created
/// exclusively (`create_new`, so a planted file or symlink of that name is an error, never
/// followed or truncated), with `O_NOFOLLOW` and Unix permissions `mode` from the moment it
/// exists. Returns the file and its path; the caller renames or removes it.
pub fn create_temp_beside(path: &Path, mode: u32) -> std::io::Result<(File, PathBuf)> {
    let mut last = None;
    for _ in 0..8 {
        let mut suffix = [0u8; 8];
        getrandom::fill(&mut suffix).map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut name = path.file_name().unwrap_or_default().to_owned();
        name.push(format!(".tmp-{}", hex(&suffix)));
        let tmp = path.with_file_name(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode).custom_flags(libc::O_NOFOLLOW);
        }
        #[cfg(not(unix))]
        let _ = mode;
        match options.open(&tmp) {
            Ok(file) => return Ok((file, tmp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}

/// Makes a rename or creation in `dir` durable (a no-op where directories cannot be synced).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The bytes of lowercase or uppercase hex `text`, or `None` when it is not hex of an even
/// length.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    digits
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_non_hex() {
        assert_eq!(from_hex("00AB9f"), Some(vec![0x00, 0xab, 0x9f]));
        assert_eq!(from_hex(&hex(&[1, 2, 255])), Some(vec![1, 2, 255]));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("+1"), None);
    }

    #[test]
    #[cfg(unix)]
    fn temporary_files_are_new_private_and_never_follow_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.jsonl");
        let (_, a) = create_temp_beside(&path, 0o600).unwrap();
        let (_, b) = create_temp_beside(&path, 0o600).unwrap();
        assert_ne!(a, b, "random names");
        let mode = std::fs::metadata(&a).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // The old fixed name `<path>.tmp` planted as a link to a victim file: untouched.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("export.jsonl.tmp")).unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0x9f]), "00ab9f");
    }

    #[test]
    fn atomic_write_replaces_or_leaves_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        // No temporary file is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let missing = dir.path().join("no/such/dir/f");
        assert!(write_atomically(&missing, b"x").is_err());
        sync_dir(dir.path()).unwrap();
    }
}
