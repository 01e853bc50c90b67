//! The knowledge base's SQLite schema and its migrations.
//!
//! `PRAGMA user_version` holds the schema version; each step from version N to N+1 is one
//! function, run in order inside one transaction by the crate's one migration runner (shared
//! with the feedback store), so a database of any older version is brought up to [`VERSION`] in
//! one go (and a failure leaves it at its old version).
//!
//! Version 2 indexes *analyzed* text ([`analyzer`](super::analyzer): stems, Tamil phonetic
//! keys, no stop words), written by Rust at import, in a contentless FTS5 table
//! (`content=''`, `contentless_delete=1`): the original text lives once, in `records`, and
//! snippets are cut from it in Rust. `records.terms` holds each record's distinct terms (for
//! ranking by how much of a query a record covers); `record_keys` is keyed by each key's
//! terms (for key matches inside a question, and for look-ups, which compare analyzed keys) in
//! one B-tree, rows removed by the code that removes their records. `packs.aliases` holds a
//! pack's aliases as written and `pack_aliases` their terms; `vocabulary` the Latin words of
//! each pack (four letters or more), for correcting misspelt query words; `term_docs` how many
//! of a pack's records hold each term (counted at import: FTS5's own `fts5vocab` counts by
//! walking the term's whole posting list, milliseconds for a common word). `kb_meta` records
//! the analyzer version the index was built with; [`KnowledgeBase::open`](super::KnowledgeBase::open)
//! rebuilds the index when it differs, so an analyzer change reaches existing databases.
//!
//! Version 3 records each pack's provenance (`packs.trust`, decision 0014).
//!
//! Version 2's tokenizer is `ascii`: the index only ever receives analyzed terms separated by
//! spaces, whose characters are all word characters, and `ascii` keeps every non-ASCII
//! character inside its token (a Tamil key's marker, a Devanagari word's matras) without
//! Unicode table look-ups. Version 1 indexed raw text with `unicode61 categories 'L* N* Co M*'`,
//! which counts marks as word characters so that `தமிழ்` is not split mid-letter.

use rusqlite::{Connection, Transaction};

use super::KnowledgeError;
use crate::sqlite_migrate::{self, Migration};

/// The schema version this code writes.
pub const VERSION: u32 = 3;

/// The in-memory size FTS5 collects new index entries to before writing a segment: bigger
/// means fewer segments to merge during a large import (FTS5's default is 1 MiB).
pub const FTS_HASH_BYTES: u32 = 16 << 20;

/// The tokenizer of version 1's full-text index of raw text (see the module docs).
pub const FTS_TOKENIZER_V1: &str = "unicode61 categories 'L* N* Co M*'";

/// The tokenizer of the full-text index of analyzed terms (see the module docs).
pub const FTS_TOKENIZER: &str = "ascii";

/// `MIGRATIONS[n]` takes a database from version `n` to `n + 1`.
const MIGRATIONS: [Migration; VERSION as usize] = [v0_to_v1, v1_to_v2, v2_to_v3];

fn v0_to_v1(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(&format!(
        "CREATE TABLE packs (
            name        TEXT PRIMARY KEY,
            title       TEXT NOT NULL,
            version     TEXT NOT NULL,
            languages   TEXT NOT NULL,
            licence     TEXT NOT NULL,
            source      TEXT NOT NULL,
            description TEXT NOT NULL,
            imported_at INTEGER NOT NULL
        );
        CREATE TABLE records (
            rowid  INTEGER PRIMARY KEY,
            pack   TEXT NOT NULL REFERENCES packs(name) ON DELETE CASCADE,
            id     TEXT NOT NULL,
            title  TEXT NOT NULL,
            body   TEXT NOT NULL,
            lang   TEXT NOT NULL,
            tags   TEXT NOT NULL,
            source TEXT NOT NULL,
            UNIQUE (pack, id)
        );
        CREATE TABLE record_keys (
            pack   TEXT NOT NULL,
            key    TEXT NOT NULL,
            record INTEGER NOT NULL REFERENCES records(rowid) ON DELETE CASCADE,
            PRIMARY KEY (pack, key)
        ) WITHOUT ROWID;
        CREATE INDEX record_keys_by_record ON record_keys(record);
        CREATE VIRTUAL TABLE records_fts USING fts5(
            title, body, keys,
            tokenize = \"{FTS_TOKENIZER_V1}\"
        );"
    ))
}

/// Analyzed columns, contentless full-text index, key terms and the analyzer version. The index
/// starts empty with analyzer version 0, so the first open re-indexes every record.
fn v1_to_v2(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(&format!(
        "ALTER TABLE records ADD COLUMN terms TEXT NOT NULL DEFAULT '';
        CREATE TABLE keys_v2 (
            terms  TEXT NOT NULL,
            pack   TEXT NOT NULL,
            key    TEXT NOT NULL,
            record INTEGER NOT NULL,
            PRIMARY KEY (terms, pack, key)
        ) WITHOUT ROWID;
        INSERT INTO keys_v2 (terms, pack, key, record)
            SELECT key, pack, key, record FROM record_keys;
        DROP TABLE record_keys;
        ALTER TABLE keys_v2 RENAME TO record_keys;
        DROP TABLE records_fts;
        CREATE VIRTUAL TABLE records_fts USING fts5(
            title, body, keys,
            tokenize = \"{FTS_TOKENIZER}\",
            content = '', contentless_delete = 1
        );
        INSERT INTO records_fts (records_fts, rank) VALUES ('hashsize', {FTS_HASH_BYTES});
        ALTER TABLE packs ADD COLUMN aliases TEXT NOT NULL DEFAULT '[]';
        CREATE TABLE pack_aliases (
            pack  TEXT NOT NULL REFERENCES packs(name) ON DELETE CASCADE,
            terms TEXT NOT NULL,
            PRIMARY KEY (pack, terms)
        ) WITHOUT ROWID;
        CREATE TABLE vocabulary (
            word TEXT NOT NULL,
            pack TEXT NOT NULL REFERENCES packs(name) ON DELETE CASCADE,
            PRIMARY KEY (word, pack)
        ) WITHOUT ROWID;
        CREATE INDEX vocabulary_by_pack ON vocabulary(pack);
        CREATE TABLE term_docs (
            term TEXT NOT NULL,
            pack TEXT NOT NULL,
            docs INTEGER NOT NULL,
            PRIMARY KEY (term, pack)
        ) WITHOUT ROWID;
        CREATE INDEX term_docs_by_pack ON term_docs(pack);
        CREATE TABLE kb_meta (
            name  TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO kb_meta (name, value) VALUES ('analyzer', 0);"
    ))
}

/// Each pack's provenance ([`Provenance`](super::trust::Provenance)): how it was trusted when
/// it was imported. Packs imported before version 3 were never checked: `unknown`.
fn v2_to_v3(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE packs ADD COLUMN trust TEXT NOT NULL DEFAULT 'unknown';")
}

/// The analyzer version the index was built with (0: not built).
pub fn analyzer_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row(
        "SELECT value FROM kb_meta WHERE name = 'analyzer'",
        [],
        |row| row.get(0),
    )
}

/// The schema version of `conn`'s database.
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    sqlite_migrate::version(conn)
}

/// Brings the database up to [`VERSION`]; returns the version it had. A database newer than
/// this code is refused with [`KnowledgeError::SchemaTooNew`] and left alone.
pub fn migrate(conn: &mut Connection) -> Result<u32, KnowledgeError> {
    migrate_to(conn, VERSION)
}

/// Brings the database up to `target` (at most [`VERSION`]; tests stop at older versions);
/// returns the version it had. A database newer than this code is refused with
/// [`KnowledgeError::SchemaTooNew`] and left alone.
pub fn migrate_to(conn: &mut Connection, target: u32) -> Result<u32, KnowledgeError> {
    sqlite_migrate::migrate_to(conn, &MIGRATIONS, target, |found| {
        KnowledgeError::SchemaTooNew {
            found,
            supported: VERSION,
        }
    })
}
