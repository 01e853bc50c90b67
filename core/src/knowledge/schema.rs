//! The knowledge base's SQLite schema and its migrations.
//!
//! `PRAGMA user_version` holds the schema version; each step from version N to N+1 is one
//! function, run in order inside one transaction, so a database of any older version is brought
//! up to [`VERSION`] in one go (and a failure leaves it at its old version).
//!
//! The FTS5 table indexes title, body and keys with
//! `tokenize = "unicode61 categories 'L* N* Co M*'"`: SQLite's default `unicode61` treats
//! combining marks (Tamil vowel signs and virama, Devanagari matras) as separators and would
//! split `தமிழ்` mid-letter; counting marks (`M*`) as word characters keeps words whole.

use rusqlite::{Connection, Transaction};

/// The schema version this code writes.
pub const VERSION: u32 = 1;

/// The tokenizer of the full-text index (see the module docs).
pub const FTS_TOKENIZER: &str = "unicode61 categories 'L* N* Co M*'";

type Migration = fn(&Transaction<'_>) -> rusqlite::Result<()>;

/// `MIGRATIONS[n]` takes a database from version `n` to `n + 1`.
const MIGRATIONS: [Migration; VERSION as usize] = [v0_to_v1];

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
            tokenize = \"{FTS_TOKENIZER}\"
        );"
    ))
}

/// The schema version of `conn`'s database.
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// Brings the database up to `target` (normally [`VERSION`]); returns the version it had.
///
/// A database newer than this code is left alone and reported by the caller.
pub fn migrate_to(conn: &mut Connection, target: u32) -> rusqlite::Result<u32> {
    let current = version(conn)?;
    if current >= target {
        return Ok(current);
    }
    // Another process may be migrating the same file: take the write lock first, then read the
    // version it left.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let from: u32 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if from >= target {
        return Ok(from);
    }
    for step in from..target {
        MIGRATIONS[step as usize](&tx)?;
    }
    tx.pragma_update(None, "user_version", target)?;
    tx.commit()?;
    Ok(from)
}
