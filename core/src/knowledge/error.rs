//! The knowledge base's error type.

use std::path::PathBuf;

/// What can go wrong reading packs or querying the knowledge base.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KnowledgeError {
    /// SQLite failed.
    #[error("knowledge base: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A pack file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// `pack.toml` is invalid.
    #[error("{path}: {reason}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A line of `records.jsonl` is invalid; nothing was imported.
    #[error("{path}:{line}: {reason}")]
    Record {
        /// The records file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The installed pack is newer than (or as new as) the one being imported.
    #[error("pack `{name}` {installed} is installed; refusing to import version {offered}")]
    NotAnUpgrade {
        /// Pack name.
        name: String,
        /// Installed version.
        installed: String,
        /// Version offered.
        offered: String,
    },
    /// No pack of that name is installed.
    #[error("no pack named `{0}` is installed")]
    NoSuchPack(String),
    /// The database was written by a newer Vazhi.
    #[error("knowledge base schema version {found} is newer than this Vazhi ({supported})")]
    SchemaTooNew {
        /// Version in the file.
        found: u32,
        /// Newest version this code knows.
        supported: u32,
    },
}
