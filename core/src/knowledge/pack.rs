//! Knowledge packs on disk: `pack.toml` plus `records.jsonl` (format in `docs/formats.md`).
//!
//! Every line is checked before it is imported, and an import is one transaction, so a bad
//! line anywhere means nothing is imported and the error names the file and line. Reading is
//! bounded: `pack.toml` is read under [`MAX_MANIFEST_BYTES`], and a line of `records.jsonl`
//! longer than [`MAX_LINE_BYTES`] is refused as soon as it passes the limit, never read whole
//! into memory. [`RecordReader`] reads records one by one, so an import can write them while
//! the rest of the file is still being read.

use std::collections::HashSet;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::KnowledgeError;
use super::index::FastHash;
use super::trust::{self, PackFiles};
use crate::signing::SignatureFile;
use crate::text::{nfc, normalize_query};

/// Longest accepted record body, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest accepted line of `records.jsonl`, in bytes.
pub const MAX_LINE_BYTES: usize = 256 * 1024;
/// Largest accepted `pack.toml`, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

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
    /// Words that name the pack itself (`kural`, `thirukkural`, `திருக்குறள்`): in a question
    /// they say which pack to look in, not what to look for, so search prefers this pack's
    /// records and does not count the word as something a record must hold.
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// Most aliases a pack may have.
pub const MAX_ALIASES: usize = 64;
/// Longest alias, in bytes.
pub const MAX_ALIAS_BYTES: usize = 64;

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
    /// The SHA-256 of the files, as read.
    pub files: PackFiles,
    /// Its `pack.sig`, if it has one.
    pub signature: Option<SignatureFile>,
}

impl Pack {
    /// Reads and checks the pack in `dir`.
    pub fn read(dir: &Path) -> Result<Self, KnowledgeError> {
        let (manifest, manifest_sha) = read_manifest_hashed(dir)?;
        let signature = trust::read_signature(dir)?;
        let (reader, hash) = RecordReader::open_hashed(dir, &manifest)?;
        let records = reader.collect::<Result<Vec<_>, _>>()?;
        let path = dir.join("records.jsonl");
        if records.is_empty() {
            return Err(no_records(&path));
        }
        let files = PackFiles {
            manifest: manifest_sha,
            records: hash.finish().ok_or_else(|| not_read_to_end(&path))?,
        };
        Ok(Self {
            manifest,
            records,
            files,
            signature,
        })
    }
}

/// The records file was not read to its end (only a reader bug could cause it).
pub(crate) fn not_read_to_end(path: &Path) -> KnowledgeError {
    KnowledgeError::Record {
        path: path.to_owned(),
        line: 0,
        reason: "the file was not read to its end".into(),
    }
}

fn no_records(path: &Path) -> KnowledgeError {
    KnowledgeError::Manifest {
        path: path.to_owned(),
        reason: "the pack has no records".into(),
    }
}

/// Reads and checks `dir/pack.toml` (at most [`MAX_MANIFEST_BYTES`]).
pub fn read_manifest(dir: &Path) -> Result<Manifest, KnowledgeError> {
    read_manifest_hashed(dir).map(|(m, _)| m)
}

/// [`read_manifest`], with the SHA-256 of the bytes it parsed.
pub fn read_manifest_hashed(dir: &Path) -> Result<(Manifest, [u8; 32]), KnowledgeError> {
    use sha2::Digest;
    let path = dir.join("pack.toml");
    let io = |source| KnowledgeError::Io {
        path: path.clone(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(&path)
        .map_err(io)?
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(KnowledgeError::Manifest {
            path,
            reason: format!("pack.toml is over {MAX_MANIFEST_BYTES} bytes"),
        });
    }
    let digest = sha2::Sha256::digest(text.as_bytes()).into();
    Ok((parse_manifest(&path, &text)?, digest))
}

/// The records of a `records.jsonl`, read and checked one line at a time (ids and keys unique
/// across the file, text in NFC, keys normalized). Yields the first error and then stops.
#[derive(Debug)]
pub struct RecordReader<R> {
    path: PathBuf,
    reader: R,
    pack_source: String,
    line: usize,
    buffer: Vec<u8>,
    ids: HashSet<String, FastHash>,
    keys: HashSet<String, FastHash>,
    done: bool,
}

impl RecordReader<std::io::BufReader<std::fs::File>> {
    /// Opens `dir/records.jsonl` of the pack described by `manifest`.
    pub fn open(dir: &Path, manifest: &Manifest) -> Result<Self, KnowledgeError> {
        let path = dir.join("records.jsonl");
        let file = std::fs::File::open(&path).map_err(|source| KnowledgeError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Self::new(path, std::io::BufReader::new(file), manifest))
    }
}

/// A reader that hashes what passes through it, for hashing a file in the same pass that
/// reads it (a second read could see other bytes).
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    state: FileHash,
}

/// The SHA-256 a [`HashingReader`] collects, shared with whoever waits for it.
#[derive(Debug, Clone, Default)]
pub struct FileHash(std::sync::Arc<std::sync::Mutex<(sha2::Sha256, bool)>>);

impl FileHash {
    /// The digest of everything read, if the reader got to the end of its input.
    pub fn finish(&self) -> Option<[u8; 32]> {
        use sha2::Digest;
        let state = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.1.then(|| state.0.clone().finalize().into())
    }
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`; the digest arrives in the returned [`FileHash`].
    pub fn new(inner: R) -> (Self, FileHash) {
        let state = FileHash::default();
        (
            Self {
                inner,
                state: state.clone(),
            },
            state,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.read(buf)?;
        let mut state = self
            .state
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.0.update(&buf[..n]);
        if n == 0 && !buf.is_empty() {
            state.1 = true;
        }
        Ok(n)
    }
}

impl RecordReader<std::io::BufReader<HashingReader<std::fs::File>>> {
    /// Opens `dir/records.jsonl` like [`open`](RecordReader::open), hashing it as it is read.
    pub fn open_hashed(
        dir: &Path,
        manifest: &Manifest,
    ) -> Result<(Self, FileHash), KnowledgeError> {
        let path = dir.join("records.jsonl");
        let file = std::fs::File::open(&path).map_err(|source| KnowledgeError::Io {
            path: path.clone(),
            source,
        })?;
        let (reader, hash) = HashingReader::new(file);
        Ok((
            Self::new(path, std::io::BufReader::new(reader), manifest),
            hash,
        ))
    }
}

impl<R: BufRead> RecordReader<R> {
    /// Reads records from `reader`; `path` names it in errors.
    pub fn new(path: PathBuf, reader: R, manifest: &Manifest) -> Self {
        Self {
            path,
            reader,
            pack_source: manifest.source.clone().unwrap_or_default(),
            line: 0,
            buffer: Vec::new(),
            ids: HashSet::default(),
            keys: HashSet::default(),
            done: false,
        }
    }

    fn bad(&self, reason: String) -> KnowledgeError {
        KnowledgeError::Record {
            path: self.path.clone(),
            line: self.line,
            reason,
        }
    }

    /// The next line into `self.buffer` (without its newline); `false` at the end. A line
    /// over [`MAX_LINE_BYTES`] is an error as soon as it gets there.
    fn next_line(&mut self) -> Result<bool, KnowledgeError> {
        self.buffer.clear();
        self.line += 1;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(KnowledgeError::Io {
                        path: self.path.clone(),
                        source,
                    })
                }
            };
            if available.is_empty() {
                return Ok(!self.buffer.is_empty());
            }
            let (chunk, found) = match memchr_newline(available) {
                Some(i) => (&available[..i], true),
                None => (available, false),
            };
            if self.buffer.len() + chunk.len() > MAX_LINE_BYTES {
                return Err(self.bad(format!("line is over {MAX_LINE_BYTES} bytes")));
            }
            self.buffer.extend_from_slice(chunk);
            let used = chunk.len() + usize::from(found);
            self.reader.consume(used);
            if found {
                return Ok(true);
            }
        }
    }

    fn parse_line(&mut self) -> Result<Option<Record>, KnowledgeError> {
        let line =
            std::str::from_utf8(&self.buffer).map_err(|e| self.bad(format!("not UTF-8: {e}")))?;
        if line.trim().is_empty() {
            return Ok(None);
        }
        let raw: RawRecord = serde_json::from_str(line).map_err(|e| self.bad(e.to_string()))?;
        if raw.id.trim().is_empty() || raw.title.trim().is_empty() {
            return Err(self.bad("id and title must not be empty".into()));
        }
        if raw.body.len() > MAX_BODY_BYTES {
            return Err(self.bad(format!("body is over {MAX_BODY_BYTES} bytes")));
        }
        if !self.ids.insert(raw.id.clone()) {
            return Err(self.bad(format!("duplicate id {:?}", raw.id)));
        }
        let mut record_keys = Vec::with_capacity(raw.keys.len());
        for key in &raw.keys {
            let key = normalize_query(key);
            if key.is_empty() {
                return Err(self.bad("empty key".into()));
            }
            if !self.keys.insert(key.clone()) {
                return Err(self.bad(format!("key {key:?} is used by another record")));
            }
            record_keys.push(key);
        }
        Ok(Some(Record {
            id: raw.id,
            keys: record_keys,
            title: nfc(&raw.title),
            body: nfc(&raw.body),
            lang: raw.lang,
            tags: raw.tags,
            source: if raw.source.is_empty() {
                self.pack_source.clone()
            } else {
                nfc(&raw.source)
            },
        }))
    }
}

impl<R: BufRead> Iterator for RecordReader<R> {
    type Item = Result<Record, KnowledgeError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let parsed = match self.next_line() {
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Ok(true) => self.parse_line(),
                Err(e) => Err(e),
            };
            match parsed {
                Ok(None) => continue,
                Ok(Some(record)) => return Some(Ok(record)),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// Parses and checks the text of a `pack.toml`; `path` names it in errors.
pub fn parse_manifest(path: &Path, text: &str) -> Result<Manifest, KnowledgeError> {
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
    if manifest.aliases.len() > MAX_ALIASES {
        return Err(bad(format!("more than {MAX_ALIASES} aliases")));
    }
    if let Some(a) = manifest
        .aliases
        .iter()
        .find(|a| normalize_query(a).is_empty() || a.len() > MAX_ALIAS_BYTES)
    {
        return Err(bad(format!(
            "alias {a:?} is empty or longer than {MAX_ALIAS_BYTES} bytes"
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
        RecordReader::new("records.jsonl".into(), text.as_bytes(), &manifest()).collect()
    }

    #[test]
    fn an_oversized_line_is_refused_without_reading_it_whole() {
        // An endless line: the reader must stop at the limit, not at the end.
        let endless = std::io::BufReader::new(std::io::repeat(b'x'));
        let mut reader = RecordReader::new("records.jsonl".into(), endless, &manifest());
        match reader.next() {
            Some(Err(KnowledgeError::Record {
                line: 1, reason, ..
            })) => {
                assert!(reason.contains("over"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(reader.next().is_none());
    }

    #[test]
    fn an_oversized_manifest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let padding = format!("# {}\n", "x".repeat(MAX_MANIFEST_BYTES as usize));
        std::fs::write(dir.path().join("pack.toml"), format!("{MANIFEST}{padding}")).unwrap();
        assert!(matches!(
            read_manifest(dir.path()),
            Err(KnowledgeError::Manifest { .. })
        ));
        std::fs::write(dir.path().join("pack.toml"), MANIFEST).unwrap();
        assert_eq!(read_manifest(dir.path()).unwrap().name, "t");
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
