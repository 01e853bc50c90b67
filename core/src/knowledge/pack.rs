//! Knowledge packs on disk: `pack.toml` plus `records.jsonl` (format in `docs/formats.md`).
//!
//! A pack is read and checked completely before anything touches the database, so a bad line
//! anywhere means nothing is imported and the error names the file and line.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;

use serde::Deserialize;

use super::error::KnowledgeError;
use crate::text::{nfc, normalize_query};

/// Longest accepted record body, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest accepted line of `records.jsonl`, in bytes.
pub const MAX_LINE_BYTES: usize = 256 * 1024;

/// `pack.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Machine name, e.g. `thirukkural` (letters, digits, `-`, `_`).
    pub name: String,
    /// Human title.
    #[serde(default)]
    pub title: String,
    /// Version, dot-separated numbers (`1.2.0`).
    pub version: String,
    /// Languages (BCP-47).
    #[serde(default)]
    pub languages: Vec<String>,
    /// Licence of the data; required.
    pub licence: Option<String>,
    /// Where the data comes from; required.
    pub source: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// One line of `records.jsonl`, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    id: String,
    #[serde(default)]
    keys: Vec<String>,
    title: String,
    body: String,
    #[serde(default)]
    lang: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    source: String,
}

/// A checked record: text in NFC, keys normalized like queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Unique within the pack.
    pub id: String,
    /// Exact-lookup keys, normalized (NFC, case-folded, ASCII digits).
    pub keys: Vec<String>,
    /// Title.
    pub title: String,
    /// Body, shown verbatim.
    pub body: String,
    /// Language tag.
    pub lang: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Citation for this record (falls back to the pack's source).
    pub source: String,
}

/// A pack read from disk and checked.
#[derive(Debug, Clone)]
pub struct Pack {
    /// The manifest.
    pub manifest: Manifest,
    /// The records.
    pub records: Vec<Record>,
}

impl Pack {
    /// Reads and checks the pack in `dir`.
    pub fn read(dir: &Path) -> Result<Self, KnowledgeError> {
        let manifest_path = dir.join("pack.toml");
        let text =
            std::fs::read_to_string(&manifest_path).map_err(|source| KnowledgeError::Io {
                path: manifest_path.clone(),
                source,
            })?;
        let manifest = parse_manifest(&manifest_path, &text)?;
        let records_path = dir.join("records.jsonl");
        let file = std::fs::File::open(&records_path).map_err(|source| KnowledgeError::Io {
            path: records_path.clone(),
            source,
        })?;
        let records = parse_records(&records_path, std::io::BufReader::new(file), &manifest)?;
        Ok(Self { manifest, records })
    }
}

fn parse_manifest(path: &Path, text: &str) -> Result<Manifest, KnowledgeError> {
    let bad = |reason: String| KnowledgeError::Manifest {
        path: path.to_owned(),
        reason,
    };
    let manifest: Manifest = toml::from_str(text).map_err(|e| bad(e.message().to_owned()))?;
    if manifest.name.is_empty()
        || !manifest
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(bad(format!(
            "pack name {:?} must be ASCII letters, digits, - or _",
            manifest.name
        )));
    }
    if parse_version(&manifest.version).is_none() {
        return Err(bad(format!(
            "version {:?} is not dot-separated numbers",
            manifest.version
        )));
    }
    if manifest
        .licence
        .as_deref()
        .is_none_or(|l| l.trim().is_empty())
    {
        return Err(bad(
            "the pack has no licence; every pack must say how its data may be used".into(),
        ));
    }
    if manifest
        .source
        .as_deref()
        .is_none_or(|s| s.trim().is_empty())
    {
        return Err(bad("the pack has no source".into()));
    }
    Ok(manifest)
}

fn parse_records(
    path: &Path,
    reader: impl BufRead,
    manifest: &Manifest,
) -> Result<Vec<Record>, KnowledgeError> {
    let bad = |line: usize, reason: String| KnowledgeError::Record {
        path: path.to_owned(),
        line,
        reason,
    };
    let mut records = Vec::new();
    let mut ids = HashSet::new();
    let mut keys = HashSet::new();
    for (index, line) in reader.split(b'\n').enumerate() {
        let number = index + 1;
        let line = line.map_err(|source| KnowledgeError::Io {
            path: path.to_owned(),
            source,
        })?;
        if line.len() > MAX_LINE_BYTES {
            return Err(bad(number, format!("line is over {MAX_LINE_BYTES} bytes")));
        }
        let line =
            std::str::from_utf8(&line).map_err(|e| bad(number, format!("not UTF-8: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let raw: RawRecord = serde_json::from_str(line).map_err(|e| bad(number, e.to_string()))?;
        if raw.id.trim().is_empty() || raw.title.trim().is_empty() {
            return Err(bad(number, "id and title must not be empty".into()));
        }
        if raw.body.len() > MAX_BODY_BYTES {
            return Err(bad(number, format!("body is over {MAX_BODY_BYTES} bytes")));
        }
        if !ids.insert(raw.id.clone()) {
            return Err(bad(number, format!("duplicate id {:?}", raw.id)));
        }
        let mut record_keys = Vec::new();
        for key in &raw.keys {
            let key = normalize_query(key);
            if key.is_empty() {
                return Err(bad(number, "empty key".into()));
            }
            if !keys.insert(key.clone()) {
                return Err(bad(
                    number,
                    format!("key {key:?} is used by another record"),
                ));
            }
            record_keys.push(key);
        }
        records.push(Record {
            id: raw.id,
            keys: record_keys,
            title: nfc(&raw.title),
            body: nfc(&raw.body),
            lang: raw.lang,
            tags: raw.tags,
            source: if raw.source.is_empty() {
                manifest.source.clone().unwrap_or_default()
            } else {
                nfc(&raw.source)
            },
        });
    }
    if records.is_empty() {
        return Err(KnowledgeError::Manifest {
            path: path.to_owned(),
            reason: "the pack has no records".into(),
        });
    }
    Ok(records)
}

/// Parses `1.2.3` into comparable numbers.
pub fn parse_version(v: &str) -> Option<Vec<u64>> {
    v.split('.')
        .map(|part| part.parse().ok())
        .collect::<Option<Vec<u64>>>()
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str =
        "name = \"t\"\nversion = \"1.0.0\"\nlicence = \"CC0-1.0\"\nsource = \"tests\"\n";

    fn manifest() -> Manifest {
        parse_manifest(Path::new("pack.toml"), MANIFEST).unwrap()
    }

    fn records(text: &str) -> Result<Vec<Record>, KnowledgeError> {
        parse_records(Path::new("records.jsonl"), text.as_bytes(), &manifest())
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let text =
            "{\"id\":\"a\",\"title\":\"A\",\"body\":\"x\"}\n\n{\"id\":\"b\",\"title\":\"B\"\n";
        match records(text) {
            Err(KnowledgeError::Record { line, .. }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn duplicate_ids_and_keys_are_refused() {
        let dup = "{\"id\":\"a\",\"title\":\"A\",\"body\":\"\"}\n{\"id\":\"a\",\"title\":\"B\",\"body\":\"\"}\n";
        assert!(matches!(
            records(dup),
            Err(KnowledgeError::Record { line: 2, .. })
        ));
        let keys = "{\"id\":\"a\",\"keys\":[\"Kural 1\"],\"title\":\"A\",\"body\":\"\"}\n{\"id\":\"b\",\"keys\":[\"kural  1\"],\"title\":\"B\",\"body\":\"\"}\n";
        assert!(matches!(
            records(keys),
            Err(KnowledgeError::Record { line: 2, .. })
        ));
    }

    #[test]
    fn keys_are_normalized_like_queries() {
        let r = records(
            "{\"id\":\"a\",\"keys\":[\"குறள் ௧\",\"KURAL 1\"],\"title\":\"A\",\"body\":\"b\"}",
        )
        .unwrap();
        assert_eq!(r[0].keys, vec!["குறள் 1".to_owned(), "kural 1".to_owned()]);
        assert_eq!(r[0].source, "tests");
    }

    #[test]
    fn manifests_need_licence_source_and_a_version() {
        let p = Path::new("pack.toml");
        assert!(parse_manifest(p, "name = \"t\"\nversion = \"1\"\nsource = \"s\"\n").is_err());
        assert!(parse_manifest(p, "name = \"t\"\nversion = \"1\"\nlicence = \"x\"\n").is_err());
        assert!(parse_manifest(
            p,
            "name = \"t\"\nversion = \"one\"\nlicence = \"x\"\nsource = \"s\"\n"
        )
        .is_err());
        assert!(parse_manifest(
            p,
            "name = \"t/../x\"\nversion = \"1\"\nlicence = \"x\"\nsource = \"s\"\n"
        )
        .is_err());
        assert!(parse_manifest(p, MANIFEST).is_ok());
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version("1.10.0") > parse_version("1.9.9"));
        assert_eq!(parse_version("1.x"), None);
    }
}
