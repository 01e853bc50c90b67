//! The small state file beside a partial download: what the part is of, where it came from, and
//! the validator that lets it be resumed. Written atomically (temp file, fsync, rename).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::http::Validator;

const STATE_VERSION: u32 = 1;

/// What is known about `<id>.gguf.part`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartState {
    /// Format of this file.
    pub version: u32,
    /// Catalog id.
    pub id: String,
    /// The pinned SHA-256 the part must end up with.
    pub sha256: String,
    /// The pinned size.
    pub size: u64,
    /// The catalog URL the bytes were requested from (redirects are followed afresh on resume).
    pub url: String,
    /// The strong validator of that response; without one the part cannot be resumed.
    pub validator: Option<Validator>,
    /// Bytes written when this file was last saved (the part file's length is authoritative).
    pub bytes: u64,
}

impl PartState {
    /// A new state for a part of `entry` fetched from `url`.
    pub fn new(entry: &super::CatalogEntry, url: String, validator: Option<Validator>) -> Self {
        Self {
            version: STATE_VERSION,
            id: entry.id.clone(),
            sha256: entry.sha256.clone(),
            size: entry.size,
            url,
            validator,
            bytes: 0,
        }
    }

    /// Reads the state; `None` if missing, unreadable, or of another format (the part is then
    /// treated as unresumable).
    pub fn load(path: &Path) -> Option<Self> {
        let text = std::fs::read(path).ok()?;
        let state: Self = serde_json::from_slice(&text).ok()?;
        (state.version == STATE_VERSION).then_some(state)
    }

    /// Whether this state describes a part of `entry` as the catalog pins it now.
    pub fn is_for(&self, entry: &super::CatalogEntry) -> bool {
        self.id == entry.id && self.sha256 == entry.sha256 && self.size == entry.size
    }

    /// Writes the state atomically.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        crate::fsutil::write_atomically(
            path,
            &serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> super::super::CatalogEntry {
        super::super::Catalog::builtin().unwrap().entries()[0].clone()
    }

    #[test]
    fn round_trips_and_rejects_other_states() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf.part.json");
        assert_eq!(PartState::load(&path), None);
        let mut state = PartState::new(
            &entry(),
            "https://x/m".into(),
            Some(Validator::ETag("\"e\"".into())),
        );
        state.bytes = 42;
        state.save(&path).unwrap();
        let back = PartState::load(&path).unwrap();
        assert_eq!(back, state);
        assert!(back.is_for(&entry()));
        let mut other = entry();
        other.sha256 = "0".repeat(64);
        assert!(!back.is_for(&other));
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(PartState::load(&path), None);
        std::fs::write(&path, br#"{"version":9}"#).unwrap();
        assert_eq!(PartState::load(&path), None);
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
