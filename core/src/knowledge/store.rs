//! The knowledge base: packs in SQLite, exact lookup by key, FTS5 search.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use super::analyzer::{self, ANALYZER_VERSION};
use super::error::KnowledgeError;
use super::index;
use super::index::{Analyzed, PackStats, TermCache};
use super::pack::{self, parse_version, Manifest, Pack, Record, RecordReader};
use super::schema;
use super::search::{self, Retrieval};
use super::trust::{self, PackFiles, Provenance};
use crate::signing::SignatureFile;
use crate::signing::TrustPolicy;
use crate::text::normalize_query;

/// A record as shown to the user: the database's text, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Card {
    /// Pack name.
    pub pack: String,
    /// Pack title.
    pub pack_title: String,
    /// Pack version.
    pub pack_version: String,
    /// The pack's licence.
    pub licence: String,
    /// Record id within the pack.
    pub id: String,
    /// Title.
    pub title: String,
    /// Body, verbatim.
    pub body: String,
    /// Language tag.
    pub lang: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Citation.
    pub source: String,
}

/// A search result.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    /// The record.
    pub card: Card,
    /// Relevance, higher is better (bm25 negated).
    pub score: f64,
    /// The matching part of the body, matches in `[` `]`.
    pub snippet: String,
}

/// An installed pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackInfo {
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Version.
    pub version: String,
    /// Licence.
    pub licence: String,
    /// Source.
    pub source: String,
    /// Number of records.
    pub records: u64,
    /// How it was trusted when it was imported.
    pub provenance: Provenance,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Pack name.
    pub name: String,
    /// The version now installed.
    pub version: String,
    /// The version it replaced, if any.
    pub replaced: Option<String>,
    /// Records imported.
    pub records: usize,
    /// How the pack was trusted.
    pub provenance: Provenance,
}

/// What is being imported, and what it must satisfy.
struct Source<'a> {
    manifest: &'a Manifest,
    records_path: &'a Path,
    trust: &'a TrustPolicy,
    signature: Option<&'a SignatureFile>,
}

/// A knowledge base in one SQLite file: one writer connection, one reader connection (WAL lets
/// reads go on while a write is in progress).
#[derive(Debug)]
pub struct KnowledgeBase {
    writer: Mutex<Connection>,
    reader: Mutex<Reader>,
}

fn connect(path: &Path) -> Result<Connection, KnowledgeError> {
    // Switching a new file to WAL needs a moment of exclusive access, which SQLite reports as
    // "busy" without waiting when another process is opening the same file: retry briefly.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match try_connect(path) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

fn try_connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(conn)
}

/// The reading side: its connection, and the word cache searches share for snippets.
#[derive(Debug)]
struct Reader {
    conn: Connection,
    cache: TermCache,
}

/// SQLite page cache of the writer during an import, in KiB.
const IMPORT_CACHE_KIB: i64 = 64 * 1024;
/// SQLite's default page cache, in KiB.
const DEFAULT_CACHE_KIB: i64 = 2000;
/// Bytes of the database the reader maps instead of reading page by page.
const READER_MMAP_BYTES: i64 = 256 << 20;

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl KnowledgeBase {
    /// Opens (creating if needed) the knowledge base at `path` and migrates it to the current
    /// schema.
    pub fn open(path: &Path) -> Result<Self, KnowledgeError> {
        let _span = tracing::debug_span!("knowledge_open").entered();
        let mut writer = connect(path)?;
        schema::migrate(&mut writer)?;
        if schema::analyzer_version(&writer)? != ANALYZER_VERSION {
            // Another process may be rebuilding: take the write lock, then look again.
            let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if schema::analyzer_version(&tx)? != ANALYZER_VERSION {
                index::rebuild(&tx)?;
            }
            tx.commit()?;
        }
        let conn = connect(path)?;
        conn.pragma_update(None, "mmap_size", READER_MMAP_BYTES)?;
        let reader = Reader {
            conn,
            cache: TermCache::with_capacity(index::SEARCH_CACHE_WORDS),
        };
        Ok(Self {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    /// Reads the pack in `dir` and imports it (see [`import`](Self::import)). Records are
    /// written while the rest of the file is still being read and checked; a bad line anywhere
    /// rolls the whole import back.
    ///
    /// The pack must be trusted by `trust` ([`trust`](super::trust)): a pack Vazhi ships, one
    /// signed by a trusted key, or unsigned where `trust` allows it; and trusted the same way
    /// as the pack it replaces. The files are hashed in the same pass that imports them, so
    /// what is checked is what was imported.
    pub fn import_dir(
        &self,
        dir: &Path,
        trust: &TrustPolicy,
    ) -> Result<ImportReport, KnowledgeError> {
        let (manifest, manifest_sha) = pack::read_manifest_hashed(dir)?;
        let signature = trust::read_signature(dir)?;
        let (reader, hash) = RecordReader::open_hashed(dir, &manifest)?;
        let path = dir.join("records.jsonl");
        let source = Source {
            manifest: &manifest,
            records_path: &path,
            trust,
            signature: signature.as_ref(),
        };
        self.import_with(
            &source,
            || {
                Ok(PackFiles {
                    manifest: manifest_sha,
                    records: hash.finish().ok_or_else(|| pack::not_read_to_end(&path))?,
                })
            },
            |each| index::analyze_stream(reader, each),
        )
    }

    /// Installs `pack` in one transaction, replacing an older version of it. A failure (or a
    /// crash) leaves the previous version in place; the same or an older version is refused,
    /// and so is a pack `trust` does not accept (see [`import_dir`](Self::import_dir)).
    pub fn import(&self, pack: &Pack, trust: &TrustPolicy) -> Result<ImportReport, KnowledgeError> {
        let records = &pack.records;
        let source = Source {
            manifest: &pack.manifest,
            records_path: Path::new("records.jsonl"),
            trust,
            signature: pack.signature.as_ref(),
        };
        self.import_with(
            &source,
            || Ok(pack.files),
            |each| index::analyze_records(records, each).map(|stats| (records.len(), stats)),
        )
    }

    fn import_with(
        &self,
        source: &Source<'_>,
        files: impl FnOnce() -> Result<PackFiles, KnowledgeError>,
        records: impl FnOnce(
            &mut dyn FnMut(&Record, Analyzed) -> Result<(), KnowledgeError>,
        ) -> Result<(usize, PackStats), KnowledgeError>,
    ) -> Result<ImportReport, KnowledgeError> {
        let _span = tracing::info_span!("knowledge_import", pack = %source.manifest.name).entered();
        let mut conn = locked(&self.writer);
        // A big import's pages stay in memory until the commit instead of spilling to the WAL
        // mid-transaction; the cache shrinks back afterwards.
        conn.pragma_update(None, "cache_size", -IMPORT_CACHE_KIB)?;
        let result = Self::import_locked(&mut conn, source, files, records);
        conn.pragma_update(None, "cache_size", -DEFAULT_CACHE_KIB)?;
        conn.execute_batch("PRAGMA shrink_memory")?;
        result
    }

    fn import_locked(
        conn: &mut Connection,
        source: &Source<'_>,
        files: impl FnOnce() -> Result<PackFiles, KnowledgeError>,
        records: impl FnOnce(
            &mut dyn FnMut(&Record, Analyzed) -> Result<(), KnowledgeError>,
        ) -> Result<(usize, PackStats), KnowledgeError>,
    ) -> Result<ImportReport, KnowledgeError> {
        let m = source.manifest;
        let records_path = source.records_path;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let installed: Option<(String, String)> = tx
            .query_row(
                "SELECT version, trust FROM packs WHERE name = ?1",
                [&m.name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let installed_trust = installed.as_ref().map(|(_, t)| Provenance::from_db(t));
        let installed = installed.map(|(v, _)| v);
        if let Some(installed) = &installed {
            if parse_version(installed) >= parse_version(&m.version) {
                return Err(KnowledgeError::NotAnUpgrade {
                    name: m.name.clone(),
                    installed: installed.clone(),
                    offered: m.version.clone(),
                });
            }
            remove_pack(&tx, &m.name)?;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        tx.execute(
            "INSERT INTO packs (name, title, version, languages, licence, source, description, imported_at, aliases)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                m.name,
                m.title,
                m.version,
                serde_json::to_string(&m.languages).unwrap_or_default(),
                m.licence.as_deref().unwrap_or_default(),
                m.source.as_deref().unwrap_or_default(),
                m.description,
                i64::try_from(now).unwrap_or(i64::MAX),
                serde_json::to_string(&m.aliases).unwrap_or_default(),
            ],
        )?;
        index::store_aliases(&tx, &m.name, &m.aliases)?;
        let count = {
            let mut record = tx.prepare_cached(
                "INSERT INTO records (pack, id, title, body, lang, tags, source, terms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut key = tx.prepare_cached(
                "INSERT INTO record_keys (terms, pack, key, record) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut write = |r: &Record, analyzed: Analyzed| -> Result<(), KnowledgeError> {
                let tags = serde_json::to_string(&r.tags).unwrap_or_default();
                record.execute(params![
                    m.name,
                    r.id,
                    r.title,
                    r.body,
                    r.lang,
                    tags,
                    r.source,
                    analyzed.terms.distinct
                ])?;
                let rowid = tx.last_insert_rowid();
                for (k, terms) in r.keys.iter().zip(&analyzed.key_terms) {
                    key.execute(params![terms, m.name, k, rowid])?;
                }
                Ok(index::insert_fts(&tx, rowid, &analyzed.terms)?)
            };
            let (count, stats) = records(&mut write)?;
            if count == 0 {
                return Err(KnowledgeError::Manifest {
                    path: records_path.to_owned(),
                    reason: "the pack has no records".into(),
                });
            }
            index::store_stats(&tx, &m.name, stats)?;
            count
        };
        // Trust is decided on the bytes that were imported, before anything is committed.
        let files = files()?;
        let provenance = trust::decide(source.trust, &m.name, &files, source.signature)?;
        if let Some(old) = &installed_trust {
            if !provenance.may_replace(old) {
                return Err(KnowledgeError::ReplacementUntrusted {
                    name: m.name.clone(),
                    installed: old.clone(),
                    offered: provenance,
                });
            }
        }
        tx.execute(
            "UPDATE packs SET trust = ?2 WHERE name = ?1",
            params![m.name, provenance.to_db()],
        )?;
        tracing::info!(pack = %m.name, digest = %files.digest(), trust = %provenance, "pack trusted");
        index::update_record_count(&tx)?;
        tx.commit()?;
        Ok(ImportReport {
            name: m.name.clone(),
            version: m.version.clone(),
            replaced: installed,
            records: count,
            provenance,
        })
    }

    /// Removes a pack and its records.
    pub fn remove(&self, name: &str) -> Result<(), KnowledgeError> {
        let mut conn = locked(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !remove_pack(&tx, name)? {
            return Err(KnowledgeError::NoSuchPack(name.to_owned()));
        }
        index::update_record_count(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// The installed packs.
    pub fn packs(&self) -> Result<Vec<PackInfo>, KnowledgeError> {
        let reader = locked(&self.reader);
        let conn = &reader.conn;
        let mut stmt = conn.prepare_cached(
            "SELECT p.name, p.title, p.version, p.licence, p.source,
                    (SELECT count(*) FROM records r WHERE r.pack = p.name), p.trust
             FROM packs p ORDER BY p.name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(PackInfo {
                name: r.get(0)?,
                title: r.get(1)?,
                version: r.get(2)?,
                licence: r.get(3)?,
                source: r.get(4)?,
                records: r.get::<_, i64>(5)?.try_into().unwrap_or(0),
                provenance: Provenance::from_db(&r.get::<_, String>(6)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The record of `pack` with key `key`. Keys are compared as the analyzer leaves them
    /// (normalized, stemmed, stop words kept: `குறள் ௧` finds `குறள் 1`, `Kurals 1` finds
    /// `kural 1`); of several keys that compare equal, the one written like `key` wins.
    pub fn lookup(&self, pack: &str, key: &str) -> Result<Option<Card>, KnowledgeError> {
        let normalized = normalize_query(key);
        let reader = locked(&self.reader);
        let conn = &reader.conn;
        let mut stmt = conn.prepare_cached(&format!(
            "{CARD_SELECT} FROM record_keys k JOIN records r ON r.rowid = k.record
             JOIN packs p ON p.name = r.pack WHERE k.terms = ?1 AND k.pack = ?2
             ORDER BY k.key <> ?3, k.key LIMIT 1"
        ))?;
        Ok(stmt
            .query_row(
                params![analyzer::key_terms(&normalized), pack, normalized],
                card_from_row,
            )
            .optional()?)
    }

    /// Whether a record with this `id` is installed, in `pack` or (with `None`) in any pack.
    pub fn contains_record(&self, pack: Option<&str>, id: &str) -> Result<bool, KnowledgeError> {
        let reader = locked(&self.reader);
        let conn = &reader.conn;
        let mut stmt = conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM records WHERE id = ?1 AND (?2 IS NULL OR pack = ?2))",
        )?;
        Ok(stmt.query_row(params![id, pack], |r| r.get(0))?)
    }

    /// Full-text search over titles, bodies and keys, best first; `pack` limits it to one pack.
    /// Any text is accepted: it is never interpreted as FTS syntax. Any query word may match;
    /// records are ranked by how much of the query they hold (see [`search`](super::search)).
    /// `limit` 0 finds nothing.
    pub fn search(
        &self,
        query: &str,
        limit: usize,
        pack: Option<&str>,
    ) -> Result<Vec<Hit>, KnowledgeError> {
        Ok(self.retrieve(query, limit, pack)?.hits)
    }

    /// [`search`](Self::search) with how sure it is: the confidence the router weighs, and the
    /// key when the whole query is a key of the best hit.
    pub fn retrieve(
        &self,
        query: &str,
        limit: usize,
        pack: Option<&str>,
    ) -> Result<Retrieval, KnowledgeError> {
        let _span = tracing::debug_span!("knowledge_search", limit).entered();
        let mut reader = locked(&self.reader);
        let Reader { conn, cache } = &mut *reader;
        search::retrieve(conn, cache, query, limit, pack)
    }

    /// `text` normalized, with each word the index has never seen replaced by the nearest
    /// word of the packs' vocabulary (`kurl 12` → `kural 12`, `polise number` → `police
    /// number`): routing rules read the corrected question.
    pub fn correct_spelling(&self, text: &str) -> Result<String, KnowledgeError> {
        let reader = locked(&self.reader);
        Ok(search::correct_query(&reader.conn, text)?)
    }

    /// The best search score for `query`, if anything matches.
    pub fn best_score(&self, query: &str) -> Result<Option<f64>, KnowledgeError> {
        Ok(self.search(query, 1, None)?.first().map(|h| h.score))
    }

    /// SQLite's and FTS5's own consistency checks; `Ok(())` when both pass.
    pub fn integrity_check(&self) -> Result<(), KnowledgeError> {
        let conn = locked(&self.writer);
        let result: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if result != "ok" {
            return Err(KnowledgeError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(result),
            )));
        }
        conn.execute(
            "INSERT INTO records_fts(records_fts) VALUES ('integrity-check')",
            [],
        )?;
        Ok(())
    }
}

pub(super) const CARD_SELECT: &str =
    "SELECT r.pack, p.title, p.version, p.licence, r.id, r.title, r.body, r.lang, r.tags, r.source";

pub(super) fn card_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Card> {
    let tags: String = row.get(8)?;
    Ok(Card {
        pack: row.get(0)?,
        pack_title: row.get(1)?,
        pack_version: row.get(2)?,
        licence: row.get(3)?,
        id: row.get(4)?,
        title: row.get(5)?,
        body: row.get(6)?,
        lang: row.get(7)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        source: row.get(9)?,
    })
}

/// Deletes a pack's index entries and rows; whether it existed.
fn remove_pack(tx: &rusqlite::Transaction<'_>, name: &str) -> Result<bool, KnowledgeError> {
    tx.execute(
        "DELETE FROM records_fts WHERE rowid IN (SELECT rowid FROM records WHERE pack = ?1)",
        [name],
    )?;
    tx.execute("DELETE FROM record_keys WHERE pack = ?1", [name])?;
    tx.execute("DELETE FROM vocabulary WHERE pack = ?1", [name])?;
    tx.execute("DELETE FROM term_docs WHERE pack = ?1", [name])?;
    tx.execute("DELETE FROM pack_aliases WHERE pack = ?1", [name])?;
    tx.execute("DELETE FROM records WHERE pack = ?1", [name])?;
    Ok(tx.execute("DELETE FROM packs WHERE name = ?1", [name])? > 0)
}
