//! The model catalog: which models may be downloaded, from where, and what their bytes must hash
//! to. A download is only ever of a catalog entry, never of a URL a user typed.
//!
//! The format is documented in `docs/formats.md`; the catalog Vazhi ships is
//! `assets/models/catalog.json` ([`Catalog::builtin`]).

use std::collections::HashSet;
use std::path::Path;

use reqwest::Url;
use serde::{Deserialize, Serialize};

/// The catalog Vazhi ships (`assets/models/catalog.json`).
pub const BUILTIN_CATALOG: &str = include_str!("../../../assets/models/catalog.json");

/// The catalog format this build reads.
pub const CATALOG_FORMAT: u32 = 1;

/// A catalog that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Not JSON, or not the catalog's shape.
    #[error("catalog is not valid: {0}")]
    Parse(#[from] serde_json::Error),
    /// Written for another version of the format.
    #[error("catalog format {found} is not supported (this build reads format {CATALOG_FORMAT})")]
    Format {
        /// The format the file declares.
        found: u32,
    },
    /// An entry breaks a rule; `id` is the entry's id as written.
    #[error("catalog entry {id:?}: {reason}")]
    Entry {
        /// The entry.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The catalog's detached signature was refused: it does not match the JSON, its key is
    /// not trusted, or it is malformed.
    #[error("catalog signature: {0}")]
    Signature(#[from] crate::signing::SigningError),
    /// The catalog is not the built-in one, has no signature, and unsigned catalogs are not
    /// allowed.
    #[error("the catalog is not signed, and unsigned catalogs are not allowed")]
    Unsigned,
    /// The catalog file could not be read.
    #[error("cannot read catalog {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// One downloadable model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// Stable id: `[a-z0-9][a-z0-9._-]{0,63}`; the installed file is `models/<id>.gguf`.
    pub id: String,
    /// Human-readable name.
    #[serde(default)]
    pub name: String,
    /// Where to fetch it, tried in order (mirrors). https only (http is accepted for loopback
    /// hosts, which the downloader fetches only under its test setting).
    pub urls: Vec<String>,
    /// SHA-256 of the whole file, 64 lowercase hex digits.
    pub sha256: String,
    /// Size of the file in bytes.
    pub size: u64,
    /// Quantization type (e.g. `Q4_K_M`).
    pub quant: String,
    /// Model architecture as GGUF names it (`general.architecture`).
    pub arch: String,
    /// Context length the model was trained for.
    pub context_length: u32,
    /// RAM the device needs to run it, in MiB.
    pub min_ram_mb: u64,
    /// Licence of the weights.
    pub licence: String,
}

impl CatalogEntry {
    /// The installed file's name: `<id>.gguf`.
    pub fn file_name(&self) -> String {
        format!("{}.gguf", self.id)
    }

    fn validate(&self) -> Result<(), CatalogError> {
        let fail = |reason: String| CatalogError::Entry {
            id: self.id.clone(),
            reason,
        };
        if !is_valid_id(&self.id) {
            return Err(fail(
                "id must match [a-z0-9][a-z0-9._-]{0,63} (it becomes a file name)".into(),
            ));
        }
        if self.sha256.len() != 64
            || !self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(fail("sha256 must be 64 lowercase hex digits".into()));
        }
        if self.size == 0 {
            return Err(fail("size must be greater than 0".into()));
        }
        if self.urls.is_empty() {
            return Err(fail("urls is empty".into()));
        }
        for url in &self.urls {
            let parsed = Url::parse(url).map_err(|e| fail(format!("a url does not parse: {e}")))?;
            let url = &super::allowlist::redact(&parsed);
            // Plain http is written only for loopback test servers; the downloader still refuses
            // it unless its test setting allows it.
            if parsed.scheme() != "https"
                && !(parsed.scheme() == "http" && super::allowlist::is_loopback(&parsed))
            {
                return Err(fail(format!("url {url:?} is not https")));
            }
            if parsed.host_str().is_none() {
                return Err(fail(format!("url {url:?} has no host")));
            }
            if !parsed.username().is_empty() || parsed.password().is_some() {
                return Err(fail(format!("url {url:?} carries credentials")));
            }
        }
        Ok(())
    }
}

/// Whether `id` is a safe catalog id (and so a safe file-name stem).
pub fn is_valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|&b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_' || b == b'-'
        })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    format: u32,
    #[serde(default)]
    redirect_hosts: Vec<String>,
    models: Vec<CatalogEntry>,
}

/// A validated catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
    redirect_hosts: Vec<String>,
}

/// The first line of the text a catalog signature signs.
pub const CATALOG_PURPOSE: &str = "vazhi-catalog-v1";

/// The text a catalog signature signs: its purpose and the SHA-256 of the JSON's bytes.
pub fn catalog_signed_text(json: &str) -> Vec<u8> {
    use sha2::Digest;
    crate::signing::signed_text(
        CATALOG_PURPOSE,
        &[("catalog.json", sha2::Sha256::digest(json.as_bytes()).into())],
    )
}

impl Catalog {
    /// [`from_json`](Self::from_json) for a catalog from outside the SDK: `signature` (a
    /// detached signature file's text, `docs/formats.md`) must be a trusted key's signature of
    /// exactly these bytes; without one, the catalog is accepted only if `trust` allows
    /// unsigned ones.
    pub fn from_json_trusted(
        json: &str,
        signature: Option<&str>,
        trust: &crate::signing::TrustPolicy,
    ) -> Result<Self, CatalogError> {
        match signature {
            Some(sig) => {
                let file = crate::signing::SignatureFile::parse(sig)?;
                trust.keys.verify(&file, &catalog_signed_text(json))?;
            }
            None if trust.allow_unsigned => {}
            None => return Err(CatalogError::Unsigned),
        }
        Self::from_json(json)
    }

    /// Parses and validates a catalog: known format, unique safe ids, pinned hashes and sizes,
    /// https URLs. Checks no signature: see [`from_json_trusted`](Self::from_json_trusted).
    pub fn from_json(json: &str) -> Result<Self, CatalogError> {
        let file: CatalogFile = serde_json::from_str(json)?;
        if file.format != CATALOG_FORMAT {
            return Err(CatalogError::Format { found: file.format });
        }
        let mut seen = HashSet::new();
        for entry in &file.models {
            entry.validate()?;
            if !seen.insert(entry.id.as_str()) {
                return Err(CatalogError::Entry {
                    id: entry.id.clone(),
                    reason: "id appears twice".into(),
                });
            }
        }
        Ok(Self {
            entries: file.models,
            redirect_hosts: file
                .redirect_hosts
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        })
    }

    /// Reads a catalog file.
    pub fn from_file(path: &Path) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text)
    }

    /// The catalog Vazhi ships.
    pub fn builtin() -> Result<Self, CatalogError> {
        Self::from_json(BUILTIN_CATALOG)
    }

    /// Every entry, in catalog order.
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// The entry with this id.
    pub fn get(&self, id: &str) -> Option<&CatalogEntry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Hosts the catalog allows: every entry URL's host, plus its `redirect_hosts` (CDNs that
    /// mirrors redirect to).
    pub fn hosts(&self) -> impl Iterator<Item = String> + '_ {
        self.entries
            .iter()
            .flat_map(|e| e.urls.iter())
            .filter_map(|u| Url::parse(u).ok())
            .filter_map(|u| u.host_str().map(str::to_ascii_lowercase))
            .chain(self.redirect_hosts.iter().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outside_catalog_needs_a_trusted_signature_or_explicit_consent() {
        use crate::signing::{public_key_hex, sign, TrustPolicy, TrustedKeys};
        let json = BUILTIN_CATALOG;
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let sig = sign(&key, &catalog_signed_text(json)).to_json();
        let trusted =
            TrustPolicy::signed_by(TrustedKeys::from_hex(&[public_key_hex(&key)]).unwrap());
        assert!(Catalog::from_json_trusted(json, Some(&sig), &trusted).is_ok());
        // One byte changed after signing.
        let changed = json.replacen("\"id\"", "\"id\" ", 1);
        assert!(matches!(
            Catalog::from_json_trusted(&changed, Some(&sig), &trusted),
            Err(CatalogError::Signature(
                crate::signing::SigningError::Mismatch
            ))
        ));
        // Another key, and no signature at all.
        assert!(matches!(
            Catalog::from_json_trusted(json, Some(&sig), &TrustPolicy::shipped_only()),
            Err(CatalogError::Signature(
                crate::signing::SigningError::UntrustedKey { .. }
            ))
        ));
        assert!(matches!(
            Catalog::from_json_trusted(json, None, &trusted),
            Err(CatalogError::Unsigned)
        ));
        assert!(Catalog::from_json_trusted(json, None, &TrustPolicy::any()).is_ok());
    }

    fn entry_json(id: &str, url: &str, sha: &str, size: u64) -> String {
        format!(
            r#"{{"format":1,"models":[{{"id":"{id}","urls":["{url}"],"sha256":"{sha}","size":{size},
            "quant":"Q4_K_M","arch":"llama","context_length":2048,"min_ram_mb":512,"licence":"MIT"}}]}}"#
        )
    }
    const SHA: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

    #[test]
    fn builtin_catalog_is_valid_and_pins_the_test_models() {
        let c = Catalog::builtin().unwrap();
        assert!(c.entries().len() >= 2);
        let smol = c.get("smollm2-135m-instruct-q4_1").unwrap();
        assert_eq!(smol.size, 98_362_432);
        assert_eq!(smol.sha256, SHA);
        let hosts: Vec<String> = c.hosts().collect();
        assert!(hosts.contains(&"huggingface.co".to_string()));
    }

    #[test]
    fn valid_entry_parses() {
        let c =
            Catalog::from_json(&entry_json("m-1.q4", "https://example.org/m", SHA, 10)).unwrap();
        assert_eq!(c.get("m-1.q4").unwrap().file_name(), "m-1.q4.gguf");
        assert!(Catalog::from_json(&entry_json("m", "http://127.0.0.1:8080/m", SHA, 1)).is_ok());
        assert!(c.get("other").is_none());
    }

    #[test]
    fn bad_entries_are_refused_with_the_reason() {
        let cases = [
            entry_json("../evil", "https://example.org/m", SHA, 10),
            entry_json("Upper", "https://example.org/m", SHA, 10),
            entry_json(".hidden", "https://example.org/m", SHA, 10),
            entry_json("m", "http://example.org/m", SHA, 10),
            entry_json("m", "ftp://127.0.0.1/m", SHA, 10),
            entry_json("m", "https://user:pw@example.org/m", SHA, 10),
            entry_json("m", "not a url", SHA, 10),
            entry_json("m", "https://example.org/m", &SHA[1..], 10),
            entry_json("m", "https://example.org/m", &SHA.to_uppercase(), 10),
            entry_json("m", "https://example.org/m", SHA, 0),
        ];
        for json in cases {
            let err = Catalog::from_json(&json).unwrap_err();
            assert!(matches!(err, CatalogError::Entry { .. }), "{json}: {err}");
        }
    }

    #[test]
    fn duplicate_ids_unknown_fields_and_formats_are_refused() {
        let one = entry_json("m", "https://example.org/m", SHA, 10);
        let models = &one[one.find('[').unwrap() + 1..one.rfind(']').unwrap()];
        let twice = format!(r#"{{"format":1,"models":[{models},{models}]}}"#);
        assert!(matches!(
            Catalog::from_json(&twice),
            Err(CatalogError::Entry { .. })
        ));
        let v2 = one.replace(r#""format":1"#, r#""format":2"#);
        assert!(matches!(
            Catalog::from_json(&v2),
            Err(CatalogError::Format { found: 2 })
        ));
        let extra = one.replace(r#""licence":"MIT""#, r#""licence":"MIT","url":"x""#);
        assert!(matches!(
            Catalog::from_json(&extra),
            Err(CatalogError::Parse(_))
        ));
    }
}
