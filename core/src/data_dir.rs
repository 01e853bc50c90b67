//! Where Vazhi keeps its state on a device, laid out once for every part of the SDK.
//!
//! ```text
//! <data dir>/
//!   models/        installed, verified model files (<catalog id>.gguf)
//!   downloads/     partial downloads (*.part) and their resume state
//!   knowledge.db   the knowledge base (SQLite)
//!   feedback.db    encrypted feedback (SQLite)
//!   keys/          key files of the desktop key provider (0700)
//! ```
//!
//! The desktop default is the platform's data directory plus `vazhi`
//! (`$XDG_DATA_HOME/vazhi`, `~/Library/Application Support/vazhi`, `%APPDATA%\vazhi`); apps on
//! phones pass their own sandbox directory.

use std::path::{Path, PathBuf};

/// Environment variable that overrides the default data directory.
pub const DATA_DIR_ENV: &str = "VAZHI_DATA_DIR";

/// The layout of a Vazhi data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// A data directory rooted at `root` (nothing is created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `$VAZHI_DATA_DIR` if set, else the platform default; `None` if neither is known.
    pub fn from_env_or_default() -> Option<Self> {
        match std::env::var_os(DATA_DIR_ENV) {
            Some(dir) if !dir.is_empty() => Some(Self::new(dir)),
            _ => platform_data_dir().map(|d| Self::new(d.join("vazhi"))),
        }
    }

    /// Creates the directory and its subdirectories if missing.
    pub fn create(&self) -> std::io::Result<()> {
        for dir in [self.models(), self.downloads(), self.keys()] {
            std::fs::create_dir_all(&dir)?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(self.keys(), std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Installed models.
    pub fn models(&self) -> PathBuf {
        self.root.join("models")
    }

    /// Partial downloads and their state.
    pub fn downloads(&self) -> PathBuf {
        self.root.join("downloads")
    }

    /// The knowledge base.
    pub fn knowledge_db(&self) -> PathBuf {
        self.root.join("knowledge.db")
    }

    /// The feedback store.
    pub fn feedback_db(&self) -> PathBuf {
        self.root.join("feedback.db")
    }

    /// Key files.
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }
}

fn platform_data_dir() -> Option<PathBuf> {
    let home = || {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
    };
    if cfg!(target_os = "macos") {
        return home().map(|h| h.join("Library/Application Support"));
    }
    if cfg!(windows) {
        return std::env::var_os("APPDATA").map(PathBuf::from);
    }
    match std::env::var_os("XDG_DATA_HOME") {
        Some(x) if Path::new(&x).is_absolute() => Some(PathBuf::from(x)),
        _ => home().map(|h| h.join(".local/share")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_under_root() {
        let d = DataDir::new("/tmp/x");
        assert_eq!(d.models(), Path::new("/tmp/x/models"));
        assert_eq!(d.knowledge_db(), Path::new("/tmp/x/knowledge.db"));
        assert_eq!(d.feedback_db(), Path::new("/tmp/x/feedback.db"));
        assert_eq!(d.downloads(), Path::new("/tmp/x/downloads"));
        assert_eq!(d.keys(), Path::new("/tmp/x/keys"));
    }

    #[test]
    fn create_makes_private_keys_dir() {
        let root = std::env::temp_dir().join(format!("vazhi-dd-{}", std::process::id()));
        let d = DataDir::new(&root);
        d.create().unwrap();
        assert!(d.models().is_dir() && d.downloads().is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.keys()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        std::fs::remove_dir_all(root).unwrap();
    }
}
