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
    /// The pack's signature was refused: it does not match the files (they changed after
    /// signing), its key is not trusted, or `pack.sig` is malformed.
    #[error("pack `{name}`: {source}")]
    Signature {
        /// Pack name (or directory).
        name: String,
        /// Why.
        source: crate::signing::SigningError,
    },
    /// The pack is neither one Vazhi ships nor signed, and unsigned packs are not allowed.
    #[error("pack `{name}` is not signed by a trusted key and is not a pack Vazhi ships; unsigned packs must be allowed explicitly")]
    Unsigned {
        /// Pack name.
        name: String,
    },
    /// The pack would replace an installed pack that was trusted another way (a shipped pack
    /// by anything but a shipped pack, a signed one by another key).
    #[error("pack `{name}` is installed {installed}; a pack {offered} may not replace it")]
    ReplacementUntrusted {
        /// Pack name.
        name: String,
        /// How the installed pack was trusted.
        installed: crate::knowledge::trust::Provenance,
        /// How the offered pack is trusted.
        offered: crate::knowledge::trust::Provenance,
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
