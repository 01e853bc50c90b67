//! The baseline for `vazhi kb bench`: the knowledge base as it was before analyzed retrieval
//! (schema version 1 and its search, issue 16's state), rebuilt here so that every run measures
//! the old and the new on the same machine, data and moment. Bench-only code: nothing else
//! calls it.
//!
//! Version 1 indexed raw text (`unicode61 categories 'L* N* Co M*'`, content stored in the FTS
//! table), searched with every query word required (exact words first, then prefixes),
//! dropped words in over a fifth of the records when rarer ones remained, and checked each hit
//! for whole letters against its full text and keys.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use vazhi_core::knowledge::query::is_word_char;
use vazhi_core::knowledge::Pack;
use vazhi_core::text::normalize_query;

const COMMON_TERM_SHARE: f64 = 0.2;
const MIN_COMMON_TERM_DOCS: f64 = 5000.0;
const MAX_QUERY_WORDS: usize = 32;
const BM25: &str = "bm25(records_fts, 4.0, 1.0, 8.0)";

/// A version-1 knowledge base in one file.
pub struct Baseline {
    conn: Connection,
}

impl Baseline {
    /// Creates the version-1 schema at `path`.
    pub fn create(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE records (rowid INTEGER PRIMARY KEY, pack TEXT NOT NULL, id TEXT NOT NULL,
                title TEXT NOT NULL, body TEXT NOT NULL, lang TEXT NOT NULL, tags TEXT NOT NULL,
                source TEXT NOT NULL, UNIQUE (pack, id));
             CREATE TABLE record_keys (pack TEXT NOT NULL, key TEXT NOT NULL,
                record INTEGER NOT NULL REFERENCES records(rowid) ON DELETE CASCADE,
                PRIMARY KEY (pack, key)) WITHOUT ROWID;
             CREATE INDEX record_keys_by_record ON record_keys(record);
             CREATE VIRTUAL TABLE records_fts USING fts5(title, body, keys,
                tokenize = \"unicode61 categories 'L* N* Co M*'\");
             CREATE VIRTUAL TABLE temp.records_vocab USING fts5vocab(main, records_fts, 'row');",
        )?;
        Ok(Self { conn })
    }

    /// Version 1's import: read the whole pack, then write it in one transaction.
    pub fn import_dir(&mut self, dir: &Path) -> anyhow::Result<usize> {
        let pack = Pack::read(dir)?;
        let tx = self.conn.transaction()?;
        {
            let mut record = tx.prepare(
                "INSERT INTO records (pack, id, title, body, lang, tags, source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut key =
                tx.prepare("INSERT INTO record_keys (pack, key, record) VALUES (?1, ?2, ?3)")?;
            let mut fts = tx.prepare(
                "INSERT INTO records_fts (rowid, title, body, keys) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let name = &pack.manifest.name;
            for r in &pack.records {
                let tags = serde_json::to_string(&r.tags)?;
                record.execute(params![name, r.id, r.title, r.body, r.lang, tags, r.source])?;
                let rowid = tx.last_insert_rowid();
                for k in &r.keys {
                    key.execute(params![name, k, rowid])?;
                }
                fts.execute(params![rowid, r.title, r.body, r.keys.join(" ")])?;
            }
        }
        tx.commit()?;
        Ok(pack.records.len())
    }

    /// Version 1's search: the ids of the best `limit` records.
    pub fn search(&self, query: &str, limit: usize) -> rusqlite::Result<Vec<String>> {
        let mut words = query_words(query);
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let total: f64 = self
            .conn
            .query_row("SELECT count(*) FROM records", [], |r| r.get::<_, i64>(0))?
            as f64;
        let mut df = self
            .conn
            .prepare_cached("SELECT doc FROM temp.records_vocab WHERE term = ?1")?;
        let common: Vec<bool> = words
            .iter()
            .map(|w| {
                let docs: i64 = df.query_row([w], |r| r.get(0)).optional()?.unwrap_or(0);
                Ok(docs as f64 > (total * COMMON_TERM_SHARE).max(MIN_COMMON_TERM_DOCS))
            })
            .collect::<rusqlite::Result<_>>()?;
        let all_common = common.iter().all(|c| *c);
        if common.iter().any(|c| !c) && !all_common {
            words = words
                .into_iter()
                .zip(&common)
                .filter(|(_, c)| !**c)
                .map(|(w, _)| w)
                .collect();
        }
        let expression = |suffix: &str| {
            words
                .iter()
                .map(|w| format!("\"{}\"{suffix}", w.replace('"', "\"\"")))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut hits = self.run(&expression(""), limit, &words, !all_common)?;
        if hits.len() < limit {
            for id in self.run(&expression("*"), limit, &words, !all_common)? {
                if !hits.contains(&id) && hits.len() < limit {
                    hits.push(id);
                }
            }
        }
        Ok(hits)
    }

    fn run(
        &self,
        expr: &str,
        limit: usize,
        words: &[String],
        ranked: bool,
    ) -> rusqlite::Result<Vec<String>> {
        let order = if ranked { BM25 } else { "records_fts.rowid" };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT r.id, r.title, r.body, r.rowid, {BM25}, snippet(records_fts, 1, '[', ']', '…', 16)
               FROM records_fts JOIN records r ON r.rowid = records_fts.rowid
              WHERE records_fts MATCH ?1 ORDER BY {order} LIMIT ?2"
        ))?;
        let wanted = i64::try_from(limit * 4 + 16).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![expr, wanted], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut keys = self
            .conn
            .prepare_cached("SELECT key FROM record_keys WHERE record = ?1")?;
        let mut out = Vec::new();
        for row in rows {
            let (id, title, body, rowid) = row?;
            let record_keys: Vec<String> = keys
                .query_map([rowid], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            if whole_letters(words, &format!("{title} {body} {}", record_keys.join(" "))) {
                out.push(id);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

fn query_words(text: &str) -> Vec<String> {
    normalize_query(text)
        .split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
        .take(MAX_QUERY_WORDS)
        .map(str::to_owned)
        .collect()
}

fn whole_letters(query_words: &[String], text: &str) -> bool {
    let text = normalize_query(text);
    let text_words: Vec<&str> = text
        .split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
        .collect();
    query_words.iter().all(|q| {
        text_words.iter().any(|w| {
            w.strip_prefix(q.as_str()).is_some_and(|rest| {
                !rest
                    .chars()
                    .next()
                    .is_some_and(unicode_normalization::char::is_combining_mark)
            })
        })
    })
}
