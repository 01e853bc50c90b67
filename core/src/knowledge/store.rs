//! The knowledge base: packs in SQLite, exact lookup by key, FTS5 search.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use super::error::KnowledgeError;
use super::pack::{parse_version, Pack};
use super::query::{fts_match, fts_match_exact, matches_whole_letters, words};
use super::schema;
use crate::text::normalize_query;

/// bm25 column weights: title, body, keys.
const BM25: &str = "bm25(records_fts, 4.0, 1.0, 8.0)";

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
}

/// A knowledge base in one SQLite file: one writer connection, one reader connection (WAL lets
/// reads go on while a write is in progress).
#[derive(Debug)]
pub struct KnowledgeBase {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
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

/// Document frequency of each index term, read through a per-connection `fts5vocab` table.
fn ensure_vocab(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.records_vocab USING fts5vocab(main, records_fts, 'row')",
    )
}

/// A term in more than this share of records is too common to rank by (like "the"): with rarer
/// terms beside it, it is dropped from the query; alone, results are not ranked.
const COMMON_TERM_SHARE: f64 = 0.2;
/// ... and in more than this many records: ranking a few thousand is cheap, so small packs are
/// always ranked in full.
const MIN_COMMON_TERM_DOCS: f64 = 5000.0;

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl KnowledgeBase {
    /// Opens (creating if needed) the knowledge base at `path` and migrates it to the current
    /// schema.
    pub fn open(path: &Path) -> Result<Self, KnowledgeError> {
        let _span = tracing::debug_span!("knowledge_open").entered();
        let mut writer = connect(path)?;
        let found = schema::version(&writer)?;
        if found > schema::VERSION {
            return Err(KnowledgeError::SchemaTooNew {
                found,
                supported: schema::VERSION,
            });
        }
        schema::migrate_to(&mut writer, schema::VERSION)?;
        let reader = connect(path)?;
        Ok(Self {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    /// Reads the pack in `dir` and imports it (see [`import`](Self::import)).
    pub fn import_dir(&self, dir: &Path) -> Result<ImportReport, KnowledgeError> {
        let pack = Pack::read(dir)?;
        self.import(&pack)
    }

    /// Installs `pack` in one transaction, replacing an older version of it. A failure (or a
    /// crash) leaves the previous version in place; the same or an older version is refused.
    pub fn import(&self, pack: &Pack) -> Result<ImportReport, KnowledgeError> {
        let m = &pack.manifest;
        let _span =
            tracing::info_span!("knowledge_import", pack = %m.name, records = pack.records.len())
                .entered();
        let mut conn = locked(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let installed: Option<String> = tx
            .query_row(
                "SELECT version FROM packs WHERE name = ?1",
                [&m.name],
                |r| r.get(0),
            )
            .optional()?;
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
            "INSERT INTO packs (name, title, version, languages, licence, source, description, imported_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                m.name,
                m.title,
                m.version,
                serde_json::to_string(&m.languages).unwrap_or_default(),
                m.licence.as_deref().unwrap_or_default(),
                m.source.as_deref().unwrap_or_default(),
                m.description,
                i64::try_from(now).unwrap_or(i64::MAX),
            ],
        )?;
        {
            let mut record = tx.prepare_cached(
                "INSERT INTO records (pack, id, title, body, lang, tags, source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut key = tx.prepare_cached(
                "INSERT INTO record_keys (pack, key, record) VALUES (?1, ?2, ?3)",
            )?;
            let mut fts = tx.prepare_cached(
                "INSERT INTO records_fts (rowid, title, body, keys) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for r in &pack.records {
                let tags = serde_json::to_string(&r.tags).unwrap_or_default();
                record.execute(params![
                    m.name, r.id, r.title, r.body, r.lang, tags, r.source
                ])?;
                let rowid = tx.last_insert_rowid();
                for k in &r.keys {
                    key.execute(params![m.name, k, rowid])?;
                }
                fts.execute(params![rowid, r.title, r.body, r.keys.join(" ")])?;
            }
        }
        tx.commit()?;
        Ok(ImportReport {
            name: m.name.clone(),
            version: m.version.clone(),
            replaced: installed,
            records: pack.records.len(),
        })
    }

    /// Removes a pack and its records.
    pub fn remove(&self, name: &str) -> Result<(), KnowledgeError> {
        let mut conn = locked(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !remove_pack(&tx, name)? {
            return Err(KnowledgeError::NoSuchPack(name.to_owned()));
        }
        tx.commit()?;
        Ok(())
    }

    /// The installed packs.
    pub fn packs(&self) -> Result<Vec<PackInfo>, KnowledgeError> {
        let conn = locked(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT p.name, p.title, p.version, p.licence, p.source,
                    (SELECT count(*) FROM records r WHERE r.pack = p.name)
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
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The record of `pack` whose key equals `key` after query normalization (so `குறள் ௧`
    /// finds the key `குறள் 1`).
    pub fn lookup(&self, pack: &str, key: &str) -> Result<Option<Card>, KnowledgeError> {
        let key = normalize_query(key);
        let conn = locked(&self.reader);
        let mut stmt = conn.prepare_cached(&format!(
            "{CARD_SELECT} FROM record_keys k JOIN records r ON r.rowid = k.record
             JOIN packs p ON p.name = r.pack WHERE k.pack = ?1 AND k.key = ?2"
        ))?;
        Ok(stmt
            .query_row(params![pack, key], card_from_row)
            .optional()?)
    }

    /// Whether a record with this `id` is installed, in `pack` or (with `None`) in any pack.
    pub fn contains_record(&self, pack: Option<&str>, id: &str) -> Result<bool, KnowledgeError> {
        let conn = locked(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM records WHERE id = ?1 AND (?2 IS NULL OR pack = ?2))",
        )?;
        Ok(stmt.query_row(params![id, pack], |r| r.get(0))?)
    }

    /// Full-text search over titles, bodies and keys, best first; `pack` limits it to one pack.
    /// Any text is accepted: it is never interpreted as FTS syntax.
    pub fn search(
        &self,
        query: &str,
        limit: usize,
        pack: Option<&str>,
    ) -> Result<Vec<Hit>, KnowledgeError> {
        let (Some(exact), Some(prefix)) = (fts_match_exact(query), fts_match(query)) else {
            return Ok(Vec::new());
        };
        let conn = locked(&self.reader);
        // Ranking every record that contains a very common word costs tens of milliseconds at
        // 100k records; drop such words when rarer ones remain.
        ensure_vocab(&conn)?;
        let total: f64 =
            conn.query_row("SELECT count(*) FROM records", [], |r| r.get::<_, i64>(0))? as f64;
        let mut query_words = words(query);
        let mut df = conn.prepare_cached("SELECT doc FROM temp.records_vocab WHERE term = ?1")?;
        let common: Vec<bool> = query_words
            .iter()
            .map(|w| {
                let docs: i64 = df.query_row([w], |r| r.get(0)).optional()?.unwrap_or(0);
                Ok(docs as f64 > (total * COMMON_TERM_SHARE).max(MIN_COMMON_TERM_DOCS))
            })
            .collect::<Result<_, rusqlite::Error>>()?;
        let all_common = !common.is_empty() && common.iter().all(|c| *c);
        if common.iter().any(|c| !c) && common.iter().any(|c| *c) {
            query_words = query_words
                .into_iter()
                .zip(&common)
                .filter(|(_, c)| !**c)
                .map(|(w, _)| w)
                .collect();
        }
        let joined = query_words.join(" ");
        let (exact, prefix) = (
            fts_match_exact(&joined).unwrap_or(exact),
            fts_match(&joined).unwrap_or(prefix),
        );
        let ranked = !all_common;
        let mut hits = run_query(&conn, &exact, pack, limit, &query_words, ranked)?;
        if hits.len() < limit {
            for hit in run_query(&conn, &prefix, pack, limit, &query_words, ranked)? {
                let seen = hits
                    .iter()
                    .any(|h| h.card.pack == hit.card.pack && h.card.id == hit.card.id);
                if !seen && hits.len() < limit {
                    hits.push(hit);
                }
            }
        }
        Ok(hits)
    }

    /// The best search score for `query`, if anything matches (the router's probe).
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

const CARD_SELECT: &str =
    "SELECT r.pack, p.title, p.version, p.licence, r.id, r.title, r.body, r.lang, r.tags, r.source";

fn card_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Card> {
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

/// One FTS query, best first, whole-letter-checked, at most `limit` hits.
fn run_query(
    conn: &Connection,
    expr: &str,
    pack: Option<&str>,
    limit: usize,
    query_words: &[String],
    ranked: bool,
) -> Result<Vec<Hit>, KnowledgeError> {
    // Unranked (only words that nearly every record has): the first matches in index order, so
    // FTS5 stops after a few rows instead of scoring them all.
    let order = if ranked { BM25 } else { "records_fts.rowid" };
    let mut stmt = conn.prepare_cached(&format!(
        "{CARD_SELECT}, {BM25}, snippet(records_fts, 1, '[', ']', '…', 16)
             FROM records_fts JOIN records r ON r.rowid = records_fts.rowid
             JOIN packs p ON p.name = r.pack
             WHERE records_fts MATCH ?1 AND (?2 IS NULL OR r.pack = ?2)
             ORDER BY {order} LIMIT ?3"
    ))?;
    // Prefix matches that cut a letter are dropped afterwards, so ask for some spare rows.
    let wanted = i64::try_from(limit.saturating_mul(4).saturating_add(16)).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![expr, pack, wanted], |row| {
        Ok(Hit {
            card: card_from_row(row)?,
            score: -row.get::<_, f64>(10)?,
            snippet: row.get(11)?,
        })
    })?;
    let mut hits = Vec::new();
    for hit in rows {
        let hit = hit?;
        let text = format!(
            "{} {} {}",
            hit.card.title,
            hit.card.body,
            record_keys(conn, &hit.card)?
        );
        if matches_whole_letters(query_words, &text) {
            hits.push(hit);
            if hits.len() == limit {
                break;
            }
        }
    }
    Ok(hits)
}

/// The keys of `card`'s record, space-separated.
fn record_keys(conn: &Connection, card: &Card) -> Result<String, KnowledgeError> {
    let mut stmt = conn.prepare_cached(
        "SELECT k.key FROM record_keys k JOIN records r ON r.rowid = k.record
         WHERE r.pack = ?1 AND r.id = ?2",
    )?;
    let keys: Vec<String> = stmt
        .query_map(params![card.pack, card.id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(keys.join(" "))
}

/// Deletes a pack's index entries and rows; whether it existed.
fn remove_pack(tx: &rusqlite::Transaction<'_>, name: &str) -> Result<bool, KnowledgeError> {
    tx.execute(
        "DELETE FROM records_fts WHERE rowid IN (SELECT rowid FROM records WHERE pack = ?1)",
        [name],
    )?;
    tx.execute("DELETE FROM record_keys WHERE pack = ?1", [name])?;
    tx.execute("DELETE FROM records WHERE pack = ?1", [name])?;
    Ok(tx.execute("DELETE FROM packs WHERE name = ?1", [name])? > 0)
}
