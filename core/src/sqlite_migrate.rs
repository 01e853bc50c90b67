//! One schema-migration runner for Vazhi's SQLite databases (the knowledge base's
//! [`schema`](crate::knowledge::schema) and the feedback store's
//! [`schema`](crate::feedback::schema)).
//!
//! `PRAGMA user_version` holds a database's schema version (0 for a new file). A schema is an
//! ordered list of [`Migration`]s: `steps[n]` takes a database from version `n` to `n + 1`, so
//! the code's version is `steps.len()`. [`migrate`] runs every pending step inside one
//! `IMMEDIATE` transaction that also sets `user_version`: a failure anywhere leaves the version
//! and the tables as they were, and of two processes opening the same old file only the first
//! migrates it (the second waits for the write lock, then finds nothing left to do). A database
//! newer than the code is refused, before and after the lock is taken, with the caller's own
//! error, and never written.

use rusqlite::{Connection, Transaction, TransactionBehavior};

/// One step: takes a database from version `n` to `n + 1`, `n` being its index in the list.
pub(crate) type Migration = fn(&Transaction<'_>) -> rusqlite::Result<()>;

/// The schema version of `conn`'s database (`PRAGMA user_version`).
pub(crate) fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// The version a database has once every one of `steps` has run.
fn latest(steps: &[Migration]) -> u32 {
    u32::try_from(steps.len()).unwrap_or(u32::MAX)
}

/// Brings the database up to the newest version (`steps.len()`); returns the version it had.
/// A database newer than that is refused with `newer(found)` and left alone.
pub(crate) fn migrate<E: From<rusqlite::Error>>(
    conn: &mut Connection,
    steps: &[Migration],
    newer: impl FnOnce(u32) -> E,
) -> Result<u32, E> {
    migrate_to(conn, steps, latest(steps), newer)
}

/// Brings the database up to `target` (at most `steps.len()`: a higher target means
/// `steps.len()`); returns the version it had. A database already at `target` or past it is
/// left alone; one newer than `steps.len()` is refused with `newer(found)`.
pub(crate) fn migrate_to<E: From<rusqlite::Error>>(
    conn: &mut Connection,
    steps: &[Migration],
    target: u32,
    newer: impl FnOnce(u32) -> E,
) -> Result<u32, E> {
    run(conn, steps, target.min(latest(steps)))?.map_err(newer)
}

/// [`migrate_to`] with the newer version found as the inner error.
fn run(
    conn: &mut Connection,
    steps: &[Migration],
    target: u32,
) -> rusqlite::Result<Result<u32, u32>> {
    let newest = latest(steps);
    let current = version(conn)?;
    if current > newest {
        return Ok(Err(current));
    }
    if current >= target {
        return Ok(Ok(current));
    }
    // Another process may be migrating the same file: take the write lock first, then read the
    // version it left.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let from = version(&tx)?;
    if from > newest {
        return Ok(Err(from));
    }
    if from >= target {
        return Ok(Ok(from));
    }
    for step in &steps[from as usize..target as usize] {
        step(&tx)?;
    }
    tx.pragma_update(None, "user_version", target)?;
    tx.commit()?;
    Ok(Ok(from))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The caller's error in these tests.
    #[derive(Debug, PartialEq)]
    enum TestError {
        Newer(u32),
        Sqlite(String),
    }

    impl From<rusqlite::Error> for TestError {
        fn from(e: rusqlite::Error) -> Self {
            Self::Sqlite(e.to_string())
        }
    }

    fn v0_to_v1(tx: &Transaction<'_>) -> rusqlite::Result<()> {
        tx.execute_batch("CREATE TABLE one (x INTEGER);")
    }

    fn v1_to_v2(tx: &Transaction<'_>) -> rusqlite::Result<()> {
        tx.execute_batch("CREATE TABLE two (x INTEGER); INSERT INTO one (x) VALUES (2);")
    }

    fn v2_to_v3(tx: &Transaction<'_>) -> rusqlite::Result<()> {
        tx.execute_batch("ALTER TABLE one ADD COLUMN y INTEGER NOT NULL DEFAULT 3;")
    }

    /// Creates a table, then fails: what it did must be rolled back.
    fn failing(tx: &Transaction<'_>) -> rusqlite::Result<()> {
        tx.execute_batch("CREATE TABLE half_done (x INTEGER); INSERT INTO missing VALUES (1);")
    }

    const STEPS: [Migration; 3] = [v0_to_v1, v1_to_v2, v2_to_v3];

    fn migrate(conn: &mut Connection, steps: &[Migration]) -> Result<u32, TestError> {
        super::migrate(conn, steps, TestError::Newer)
    }

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap();
        let names = stmt.query_map([], |row| row.get(0)).unwrap();
        names.collect::<rusqlite::Result<_>>().unwrap()
    }

    #[test]
    fn a_fresh_database_gets_every_step() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(version(&conn).unwrap(), 0);
        assert_eq!(migrate(&mut conn, &STEPS), Ok(0));
        assert_eq!(version(&conn).unwrap(), 3);
        assert_eq!(tables(&conn), ["one", "two"]);
        let y: i64 = conn
            .query_row("SELECT y FROM one", [], |r| r.get(0))
            .unwrap();
        assert_eq!(y, 3);
        // Up to date: nothing runs again (`v1_to_v2` would insert a second row).
        assert_eq!(migrate(&mut conn, &STEPS), Ok(3));
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM one", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
    }

    #[test]
    fn an_old_database_gets_only_the_missing_steps() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(
            super::migrate_to(&mut conn, &STEPS, 1, TestError::Newer),
            Ok(0)
        );
        assert_eq!(version(&conn).unwrap(), 1);
        assert_eq!(tables(&conn), ["one"]);
        conn.execute("INSERT INTO one (x) VALUES (1)", []).unwrap();
        assert_eq!(migrate(&mut conn, &STEPS), Ok(1));
        assert_eq!(version(&conn).unwrap(), 3);
        assert_eq!(tables(&conn), ["one", "two"]);
        // The row written at version 1 is kept; `v0_to_v1` did not run again.
        let rows: Vec<(i64, i64)> = conn
            .prepare("SELECT x, y FROM one ORDER BY x")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows, [(1, 3), (2, 3)]);
        // A target above the newest version means the newest; at or below the current one,
        // nothing happens.
        assert_eq!(
            super::migrate_to(&mut conn, &STEPS, 99, TestError::Newer),
            Ok(3)
        );
        assert_eq!(
            super::migrate_to(&mut conn, &STEPS, 2, TestError::Newer),
            Ok(3)
        );
        assert_eq!(version(&conn).unwrap(), 3);
    }

    #[test]
    fn a_database_newer_than_the_code_is_refused_and_left_alone() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, &STEPS).unwrap();
        conn.pragma_update(None, "user_version", 7).unwrap();
        assert_eq!(migrate(&mut conn, &STEPS), Err(TestError::Newer(7)));
        // Also when the caller asks only for an older version.
        assert_eq!(
            super::migrate_to(&mut conn, &STEPS, 1, TestError::Newer),
            Err(TestError::Newer(7))
        );
        assert_eq!(migrate(&mut conn, &STEPS[..2]), Err(TestError::Newer(7)));
        assert_eq!(version(&conn).unwrap(), 7);
        assert_eq!(tables(&conn), ["one", "two"]);
    }

    #[test]
    fn a_failing_step_leaves_the_version_and_tables_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        let broken: [Migration; 4] = [v0_to_v1, v1_to_v2, failing, v2_to_v3];
        // From a new database: not even the steps before the failing one are kept.
        assert!(matches!(
            migrate(&mut conn, &broken),
            Err(TestError::Sqlite(_))
        ));
        assert_eq!(version(&conn).unwrap(), 0);
        assert!(tables(&conn).is_empty());
        // From version 1: still at version 1, with version 1's tables and rows.
        migrate(&mut conn, &STEPS[..1]).unwrap();
        conn.execute("INSERT INTO one (x) VALUES (1)", []).unwrap();
        assert!(matches!(
            migrate(&mut conn, &broken),
            Err(TestError::Sqlite(_))
        ));
        assert_eq!(version(&conn).unwrap(), 1);
        assert_eq!(tables(&conn), ["one"]);
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM one", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
        // Once the step is fixed, the same database migrates.
        assert_eq!(migrate(&mut conn, &STEPS), Ok(1));
        assert_eq!(version(&conn).unwrap(), 3);
    }

    #[test]
    fn a_file_database_migrates_like_one_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        assert_eq!(migrate(&mut conn, &STEPS), Ok(0));
        drop(conn);
        let mut conn = Connection::open(&path).unwrap();
        assert_eq!(version(&conn).unwrap(), 3);
        assert_eq!(migrate(&mut conn, &STEPS), Ok(3));
    }
}
