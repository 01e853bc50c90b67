//! Atomic outputs: write beside the target under a temporary name, fsync, rename.
//!
//! A failed or interrupted step therefore never leaves a half-written file (or directory)
//! under the name the user asked for.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::HfError;

/// A temporary name beside `path` (same directory, so the final rename is atomic).
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_owned());
    let unique = format!(
        ".{name}.partial-{}-{:08x}",
        std::process::id(),
        fastrand::u32(..)
    );
    path.with_file_name(unique)
}

/// Writes a file through `write` under a temporary name, fsyncs it, renames it to `path` and
/// fsyncs the directory. On any error the temporary file is removed.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), HfError> {
    let temp = temp_sibling(path);
    let result = (|| {
        let file = File::create(&temp)?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        write(&mut writer)?;
        writer.flush()?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    match result {
        Ok(()) => sync_dir(path),
        Err(source) => {
            let _ = std::fs::remove_file(&temp);
            Err(HfError::io(path, source))
        }
    }
}

/// Fsyncs the directory holding `path`, so a rename into it survives a crash.
pub fn sync_dir(path: &Path) -> Result<(), HfError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| HfError::io(dir, source))
}

/// Removes a temporary output directory, ignoring errors (used on failure paths).
pub fn remove_temp_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out.json");
        let err = write_atomically(&target, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("disk on fire"))
        })
        .expect_err("write fails");
        assert!(err.to_string().contains("disk on fire"));
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);

        write_atomically(&target, |w| w.write_all(b"{}")).expect("write");
        assert_eq!(std::fs::read(&target).expect("read"), b"{}");
    }
}
