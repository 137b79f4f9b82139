//! Helpers shared by the integration tests.
#![allow(dead_code)]

use rusqlite::{params, Connection, OptionalExtension};
use std::path::PathBuf;
use std::time::Duration;

/// A fresh database file for one test: under cargo's scratch directory for
/// integration tests, named after the test, without its old WAL files.
pub fn scratch_db(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sqlite-quota-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.db"));
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    path
}

/// A connection as a service opens one: the extension loaded, WAL mode, a
/// busy timeout of 5 s.
pub fn open(path: &PathBuf) -> Connection {
    let conn = Connection::open(path).unwrap();
    sqlite_quota::load(&conn).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn
}

/// The quota table with an account (no cap of its own) and one API key
/// under it with a hard cap: `period` NULL is a lifetime balance.
pub fn create_principal(conn: &Connection, account: &str, key: &str, cap: i64, period: Option<&str>) {
    conn.execute_batch("CREATE VIRTUAL TABLE IF NOT EXISTS quota USING quota")
        .unwrap();
    conn.execute(
        "INSERT OR IGNORE INTO quota(key, cap) VALUES (?1, NULL)",
        params![account],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO quota(key, cap, period, parent) VALUES (?1, ?2, ?3, ?4)",
        params![key, cap, period, account],
    )
    .unwrap();
}

/// `quota_reserve(key, amount, request_id)`: the hold id, or None when denied.
pub fn reserve(conn: &Connection, key: &str, amount: i64, request_id: &str) -> Option<i64> {
    conn.query_row(
        "SELECT quota_reserve(?1, ?2, ?3)",
        params![key, amount, request_id],
        |r| r.get(0),
    )
    .unwrap()
}

/// `quota_settle(hold, amount)`: the units charged.
pub fn settle(conn: &Connection, hold: i64, amount: i64) -> i64 {
    conn.query_row("SELECT quota_settle(?1, ?2)", params![hold, amount], |r| r.get(0))
        .unwrap()
}

/// Why `amount` does not fit (or NULLs when it does), from quota_status:
/// (allowed, code, retry_after, limited_by).
pub fn status(conn: &Connection, key: &str, amount: i64) -> (bool, Option<String>, Option<i64>, String) {
    conn.query_row(
        "SELECT json_extract(s, '$.allowed'), json_extract(s, '$.code'),
                json_extract(s, '$.retry_after'), json_extract(s, '$.limited_by')
           FROM (SELECT quota_status(?1, ?2) AS s)",
        params![key, amount],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .unwrap()
}

/// (used, reserved) of one key: what the gateway's snapshot calls spent
/// and reserved.
pub fn used_reserved(conn: &Connection, key: &str) -> (i64, i64) {
    conn.query_row(
        "SELECT used, reserved FROM quota WHERE key = ?1",
        params![key],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .unwrap()
    .unwrap_or_else(|| panic!("no quota key {key}"))
}

/// SQLite's message in a rusqlite error: rusqlite reports a prepare error
/// as SqlInputError (with the offset) on SQLite 3.38 and later when built
/// with modern_sqlite (as `bundled` is), as SqliteFailure otherwise.
pub fn sqlite_message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(m)) => m.clone(),
        // The variant exists with modern_sqlite, which `bundled` turns on.
        #[cfg(feature = "bundled")]
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => panic!("not an SQLite error: {other:?}"),
    }
}
