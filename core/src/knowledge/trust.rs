//! Which packs the knowledge base accepts, and which may replace which (decision 0014).
//!
//! A pack is identified by the SHA-256 of its two files. It is trusted as
//! - **shipped** when that digest is one of the packs the SDK ships (`assets/packs`, digests
//!   compiled in from `assets/packs/SHIPPED`, so no private key is needed anywhere);
//! - **signed** when its `pack.sig` is a valid Ed25519 signature over the digests by a key the
//!   app configured ([`TrustPolicy::keys`](crate::signing::TrustPolicy::keys));
//! - **unsigned** only when the app allows it ([`TrustPolicy::allow_unsigned`](crate::signing::TrustPolicy::allow_unsigned)).
//!
//! A pack that replaces an installed one must be trusted the same way: a shipped pack only by
//! another shipped pack, a signed one only by a pack signed with the same key. An unsigned (or
//! `unknown`, imported before provenance was recorded) pack may be replaced by any pack the
//! policy accepts: that only raises the trust.

use std::io::Read;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::KnowledgeError;
use super::pack::HashingReader;
use crate::fsutil::{from_hex, hex};
use crate::signing::{
    signed_text, SignatureFile, SigningError, TrustPolicy, MAX_SIGNATURE_FILE_BYTES,
};

/// The first line of the text a pack signature signs.
pub const PACK_PURPOSE: &str = "vazhi-pack-v1";
/// The signature file in a pack's directory.
pub const SIGNATURE_FILE: &str = "pack.sig";
/// The digests of the packs the SDK ships: `sha256 name version` per line.
const SHIPPED: &str = include_str!("../../../assets/packs/SHIPPED");

/// The SHA-256 of a pack's files, as read during its import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackFiles {
    /// Of `pack.toml`.
    pub manifest: [u8; 32],
    /// Of `records.jsonl`.
    pub records: [u8; 32],
}

impl PackFiles {
    /// The text a signature over this pack signs (see `docs/formats.md`).
    pub fn signed_text(&self) -> Vec<u8> {
        signed_text(
            PACK_PURPOSE,
            &[
                ("pack.toml", self.manifest),
                ("records.jsonl", self.records),
            ],
        )
    }

    /// The pack's digest: the SHA-256 of [`signed_text`](Self::signed_text), hex.
    pub fn digest(&self) -> String {
        hex(&Sha256::digest(self.signed_text()))
    }

    /// Reads both files of the pack in `dir` and hashes them.
    pub fn of_dir(dir: &Path) -> Result<Self, KnowledgeError> {
        Ok(Self {
            manifest: sha256_file(&dir.join("pack.toml"))?,
            records: sha256_file(&dir.join("records.jsonl"))?,
        })
    }
}

fn sha256_file(path: &Path) -> Result<[u8; 32], KnowledgeError> {
    let io = |source| KnowledgeError::Io {
        path: path.to_owned(),
        source,
    };
    let (mut reader, hash) = HashingReader::new(std::fs::File::open(path).map_err(io)?);
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(io)?;
    hash.finish()
        .ok_or_else(|| super::pack::not_read_to_end(path))
}

/// How an installed pack was trusted when it was imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Provenance {
    /// One of the packs the SDK ships, by digest.
    Shipped,
    /// Signed by this key (hex).
    Signed {
        /// The public key, 64 hex digits.
        key: String,
    },
    /// Accepted unsigned, because the app allowed it.
    Unsigned,
    /// Imported before Vazhi recorded provenance.
    Unknown,
}

impl Provenance {
    /// The value stored in `packs.trust`.
    pub fn to_db(&self) -> String {
        match self {
            Provenance::Shipped => "shipped".into(),
            Provenance::Signed { key } => format!("key:{key}"),
            Provenance::Unsigned => "unsigned".into(),
            Provenance::Unknown => "unknown".into(),
        }
    }

    /// Reads a `packs.trust` value (anything unrecognised is `Unknown`).
    pub fn from_db(text: &str) -> Self {
        match text {
            "shipped" => Provenance::Shipped,
            "unsigned" => Provenance::Unsigned,
            t => match t.strip_prefix("key:") {
                Some(key) => Provenance::Signed { key: key.into() },
                None => Provenance::Unknown,
            },
        }
    }

    /// Whether a pack trusted as `self` may replace one installed as `installed`.
    pub fn may_replace(&self, installed: &Provenance) -> bool {
        match installed {
            Provenance::Shipped => *self == Provenance::Shipped,
            Provenance::Signed { .. } => self == installed,
            Provenance::Unsigned | Provenance::Unknown => true,
        }
    }
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Provenance::Shipped => f.write_str("shipped with Vazhi"),
            Provenance::Signed { key } => write!(f, "signed by {key}"),
            Provenance::Unsigned => f.write_str("unsigned"),
            Provenance::Unknown => f.write_str("of unknown provenance"),
        }
    }
}

/// Whether `digest` (hex) is one of the packs the SDK ships.
pub fn is_shipped(digest: &str) -> bool {
    shipped_digests().any(|(d, _, _)| d.eq_ignore_ascii_case(digest))
}

/// The shipped packs' digests, names and versions, as compiled in.
pub fn shipped_digests() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    SHIPPED.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let mut parts = line.split_whitespace();
        let digest = parts.next()?;
        from_hex(digest).filter(|b| b.len() == 32)?;
        Some((
            digest,
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        ))
    })
}

/// Reads `dir/pack.sig` if there is one.
pub fn read_signature(dir: &Path) -> Result<Option<SignatureFile>, KnowledgeError> {
    let path = dir.join(SIGNATURE_FILE);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(KnowledgeError::Io { path, source }),
    };
    let mut text = String::new();
    file.take(MAX_SIGNATURE_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|source| KnowledgeError::Io {
            path: path.clone(),
            source,
        })?;
    if text.len() as u64 > MAX_SIGNATURE_FILE_BYTES {
        return Err(KnowledgeError::Manifest {
            path,
            reason: format!("over {MAX_SIGNATURE_FILE_BYTES} bytes"),
        });
    }
    SignatureFile::parse(&text)
        .map(Some)
        .map_err(|source| KnowledgeError::Signature {
            name: dir.display().to_string(),
            source,
        })
}

/// How `trust` takes the pack `name` with these files and signature: shipped, signed, or
/// unsigned (when allowed); an error otherwise. A signature that does not match the files is
/// refused even when unsigned packs are allowed: the pack was changed after it was signed.
pub fn decide(
    trust: &TrustPolicy,
    name: &str,
    files: &PackFiles,
    signature: Option<&SignatureFile>,
) -> Result<Provenance, KnowledgeError> {
    if is_shipped(&files.digest()) {
        return Ok(Provenance::Shipped);
    }
    let refused = |source| KnowledgeError::Signature {
        name: name.to_owned(),
        source,
    };
    match signature {
        Some(sig) => match trust.keys.verify(sig, &files.signed_text()) {
            Ok(key) => Ok(Provenance::Signed { key }),
            Err(SigningError::UntrustedKey { .. }) if trust.allow_unsigned => {
                Ok(Provenance::Unsigned)
            }
            Err(e) => Err(refused(e)),
        },
        None if trust.allow_unsigned => Ok(Provenance::Unsigned),
        None => Err(KnowledgeError::Unsigned {
            name: name.to_owned(),
        }),
    }
}

/// Writes `dir/pack.sig`: `key`'s signature over the pack's files as they are now.
pub fn sign_pack(
    dir: &Path,
    key: &ed25519_dalek::SigningKey,
) -> Result<SignatureFile, KnowledgeError> {
    let files = PackFiles::of_dir(dir)?;
    let sig = crate::signing::sign(key, &files.signed_text());
    let path = dir.join(SIGNATURE_FILE);
    crate::fsutil::write_atomically(&path, sig.to_json().as_bytes())
        .map_err(|source| KnowledgeError::Io { path, source })?;
    Ok(sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_pack_matches_its_compiled_digest() {
        let packs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/packs");
        let mut seen = 0;
        for entry in std::fs::read_dir(&packs).unwrap() {
            let dir = entry.unwrap().path();
            if !dir.is_dir() {
                continue;
            }
            let digest = PackFiles::of_dir(&dir).unwrap().digest();
            let manifest = super::super::pack::read_manifest(&dir).unwrap();
            assert!(
                shipped_digests()
                    .any(|(d, n, v)| d == digest && n == manifest.name && v == manifest.version),
                "{} changed: put `{digest} {} {}` in assets/packs/SHIPPED",
                dir.display(),
                manifest.name,
                manifest.version
            );
            seen += 1;
        }
        assert!(seen >= 2);
        assert_eq!(
            shipped_digests().count(),
            seen,
            "SHIPPED lists a pack that is gone"
        );
    }

    #[test]
    fn replacement_keeps_the_trust_of_what_it_replaces() {
        let a = Provenance::Signed { key: "aa".into() };
        let b = Provenance::Signed { key: "bb".into() };
        assert!(Provenance::Shipped.may_replace(&Provenance::Shipped));
        assert!(!a.may_replace(&Provenance::Shipped));
        assert!(!Provenance::Unsigned.may_replace(&Provenance::Shipped));
        assert!(a.may_replace(&a));
        assert!(!b.may_replace(&a));
        assert!(!Provenance::Shipped.may_replace(&a));
        assert!(!Provenance::Unsigned.may_replace(&a));
        assert!(a.may_replace(&Provenance::Unsigned));
        assert!(Provenance::Unsigned.may_replace(&Provenance::Unknown));
        for p in [
            Provenance::Shipped,
            a,
            Provenance::Unsigned,
            Provenance::Unknown,
        ] {
            assert_eq!(Provenance::from_db(&p.to_db()), p);
        }
    }
}
