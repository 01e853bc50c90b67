//! The feedback database's schema and migrations (`PRAGMA user_version`), as for the knowledge
//! base: each step N → N+1 is one function, all steps run in one transaction by the crate's one
//! migration runner.

use rusqlite::{Connection, Transaction};

use super::FeedbackError;
use crate::sqlite_migrate::{self, Migration};

/// The schema version this code writes.
pub const VERSION: u32 = 1;

const MIGRATIONS: [Migration; VERSION as usize] = [v0_to_v1];

fn v0_to_v1(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE meta (
            name  TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE keys (
            key_id     TEXT PRIMARY KEY,
            created_at INTEGER NOT NULL,
            -- records encrypted with this key, ever: the nonce-safety counter
            messages   INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE feedback (
            seq           INTEGER PRIMARY KEY,
            record_id     BLOB NOT NULL UNIQUE CHECK (length(record_id) = 16),
            format        INTEGER NOT NULL,
            created_at    INTEGER NOT NULL,
            route         TEXT NOT NULL,
            rating        INTEGER NOT NULL CHECK (rating IN (-1, 1)),
            model_id      TEXT,
            model_sha256  TEXT,
            pack_versions TEXT NOT NULL,
            key_id        TEXT NOT NULL REFERENCES keys(key_id),
            nonce         BLOB NOT NULL CHECK (length(nonce) = 12),
            ciphertext    BLOB NOT NULL
        );
        CREATE INDEX feedback_by_time ON feedback(created_at);
        CREATE INDEX feedback_by_key ON feedback(key_id);",
    )
}

/// The schema version of `conn`'s database.
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    sqlite_migrate::version(conn)
}

/// Brings the database up to [`VERSION`]; returns the version it had. A newer database is
/// refused with [`FeedbackError::NewerSchema`] and left alone.
pub fn migrate(conn: &mut Connection) -> Result<u32, FeedbackError> {
    sqlite_migrate::migrate(conn, &MIGRATIONS, |found| FeedbackError::NewerSchema {
        found,
    })
}
