//! Loading, the version, errors, and rusqlite's transactions.

mod common;

use common::*;
use rusqlite::{params, Connection, ErrorCode, TransactionBehavior};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn one_version_everywhere() {
    // SQLITE_QUOTA_VERSION in ext/quota.h ...
    let header = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../ext/quota.h"))
        .expect("ext/quota.h of the repository");
    let line = header
        .lines()
        .find(|l| l.starts_with("#define SQLITE_QUOTA_VERSION "))
        .expect("a SQLITE_QUOTA_VERSION line");
    let version = line.split('"').nth(1).unwrap();
    // ... is the crate's version, the compiled-in code's, and quota_version().
    assert_eq!(env!("CARGO_PKG_VERSION"), version);
    assert_eq!(sqlite_quota::VERSION, version);
    let conn = Connection::open_in_memory().unwrap();
    sqlite_quota::load(&conn).unwrap();
    let v: String = conn.query_row("SELECT quota_version()", [], |r| r.get(0)).unwrap();
    assert_eq!(v, version);
}

#[test]
fn load_twice_is_harmless() {
    let conn = Connection::open_in_memory().unwrap();
    sqlite_quota::load(&conn).unwrap();
    conn.execute_batch(
        "CREATE VIRTUAL TABLE quota USING quota;
         INSERT INTO quota(key, cap) VALUES ('k', 10);",
    )
    .unwrap();
    sqlite_quota::load(&conn).unwrap();
    let id: i64 = conn.query_row("SELECT quota_consume('k', 4)", [], |r| r.get(0)).unwrap();
    assert_eq!(id, 1);
}

#[test]
fn without_load_there_is_no_quota_function() {
    let conn = Connection::open_in_memory().unwrap();
    let err = conn.query_row("SELECT quota_version()", [], |r| r.get::<_, String>(0)).unwrap_err();
    assert_eq!(sqlite_message(&err), "no such function: quota_version");
}

#[test]
fn the_lifecycle_and_its_errors() {
    let conn = Connection::open_in_memory().unwrap();
    sqlite_quota::load(&conn).unwrap();
    conn.execute_batch(
        "SELECT quota_clock('2026-01-31 10:00:00');
         CREATE VIRTUAL TABLE quota USING quota;
         INSERT INTO quota(key, cap, period) VALUES ('sk-live-1', 100, 'day');",
    )
    .unwrap();
    assert_eq!(reserve(&conn, "sk-live-1", 60, "req-1"), Some(1));
    assert_eq!(reserve(&conn, "sk-live-1", 50, "req-2"), None);
    let json: String = conn
        .query_row("SELECT quota_status('sk-live-1', 50)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        json,
        r#"{"key":"sk-live-1","allowed":false,"code":"rate_limit_exceeded","cap":100,"used":0,"reserved":60,"remaining":40,"resets_at":"2026-02-01 00:00:00","retry_after":50400,"limited_by":"sk-live-1","credits":0,"would_deny":true}"#
    );
    // The same request id gives the same hold.
    assert_eq!(reserve(&conn, "sk-live-1", 60, "req-1"), Some(1));
    let charged: i64 = conn
        .query_row("SELECT quota_settle(?1, ?2, ?3)", params![1, 42, r#"{"model":"m1"}"#], |r| r.get(0))
        .unwrap();
    assert_eq!(charged, 42);
    assert_eq!(used_reserved(&conn, "sk-live-1"), (42, 0));
    let released: i64 = conn
        .query_row("SELECT quota_release(quota_reserve('sk-live-1', 50, 'req-2'))", [], |r| r.get(0))
        .unwrap();
    assert_eq!(released, 50);
    let ledger: (String, i64, String, String) = conn
        .query_row("SELECT key, amount, request_id, meta FROM quota_ledger", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!(ledger, ("sk-live-1".into(), 42, "req-1".into(), r#"{"model":"m1"}"#.into()));

    // Errors arrive as rusqlite::Error::SqliteFailure with the extension's
    // message; nothing changed.
    let expect_err = |sql: &str, code: ErrorCode, extended: i32, message: &str| {
        match conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0)) {
            Err(rusqlite::Error::SqliteFailure(e, Some(m))) => {
                assert_eq!((e.code, e.extended_code, m.as_str()), (code, extended, message), "{sql}");
            }
            other => panic!("{sql}: {other:?}"),
        }
    };
    expect_err(
        "SELECT quota_reserve('nobody', 1)",
        ErrorCode::Unknown,
        1,
        "quota_reserve: no such quota key: 'nobody'",
    );
    expect_err(
        "SELECT quota_reserve('sk-live-1', -1)",
        ErrorCode::TypeMismatch,
        20,
        "quota_reserve: amount must be a non-negative integer, not -1",
    );
    expect_err("SELECT quota_settle(2, 1)", ErrorCode::Unknown, 1, "quota_settle: hold 2 was released");
    assert_eq!(used_reserved(&conn, "sk-live-1"), (42, 0));
}

/// A rolled-back transaction takes its quota calls back with it.
#[test]
fn a_transaction_rolled_back_undoes_its_calls() {
    let path = scratch_db("rollback");
    let mut conn = open(&path);
    conn.execute_batch(
        "CREATE VIRTUAL TABLE quota USING quota;
         INSERT INTO quota(key, cap) VALUES ('k', 10);",
    )
    .unwrap();
    {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
        let id: i64 = tx.query_row("SELECT quota_consume('k', 4, 'r1')", [], |r| r.get(0)).unwrap();
        assert_eq!(id, 1);
        assert_eq!(used_reserved(&tx, "k"), (4, 0));
        // Dropped without commit(): rusqlite rolls back.
    }
    assert_eq!(used_reserved(&conn, "k"), (0, 0));
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    tx.query_row("SELECT quota_consume('k', 4, 'r1')", [], |r| r.get::<_, i64>(0)).unwrap();
    tx.commit().unwrap();
    assert_eq!(used_reserved(&conn, "k"), (4, 0));
}

/// Another connection charges 1 to 'k' under `request_id` and holds the
/// write lock for `hold` before it commits; returns once the lock is taken.
fn writer_holding_the_lock(path: &std::path::PathBuf, hold: Duration, request_id: &'static str) -> thread::JoinHandle<()> {
    let (tx, rx) = mpsc::channel();
    let path = path.clone();
    let handle = thread::spawn(move || {
        let conn = open(&path);
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        conn.query_row("SELECT quota_consume('k', 1, ?1)", [request_id], |r| r.get::<_, i64>(0))
            .unwrap();
        tx.send(()).unwrap();
        thread::sleep(hold);
        conn.execute_batch("COMMIT").unwrap();
    });
    rx.recv().unwrap();
    handle
}

/// rusqlite's `transaction()` is DEFERRED: a transaction that reads, then
/// makes a quota call while another connection writes, fails at once with
/// SQLITE_BUSY whatever the busy timeout (SQLite cannot let a reader wait
/// for the write lock without risking a deadlock). Started IMMEDIATE it
/// waits for the lock up to the busy timeout, then goes through.
#[test]
fn deferred_transaction_that_reads_first_gets_busy_at_once_immediate_waits() {
    const HOLD: Duration = Duration::from_millis(1000);
    let path = scratch_db("deferred_immediate");
    let mut conn = open(&path); // busy timeout 5 s
    conn.execute_batch(
        "CREATE VIRTUAL TABLE quota USING quota;
         INSERT INTO quota(key, cap) VALUES ('k', 100);",
    )
    .unwrap();

    // DEFERRED: the read takes a read snapshot; the call cannot upgrade it.
    let writer = writer_holding_the_lock(&path, HOLD, "writer-1");
    let t0 = Instant::now();
    {
        let tx = conn.transaction().unwrap();
        let used: i64 = tx.query_row("SELECT used FROM quota WHERE key = 'k'", [], |r| r.get(0)).unwrap();
        assert_eq!(used, 0);
        match tx.query_row("SELECT quota_consume('k', 1, 'deferred')", [], |r| r.get::<_, i64>(0)) {
            Err(rusqlite::Error::SqliteFailure(e, Some(m))) => {
                assert_eq!((e.code, e.extended_code), (ErrorCode::DatabaseBusy, 5));
                assert_eq!(m, "quota_consume: database is locked");
            }
            other => panic!("expected SQLITE_BUSY, got {other:?}"),
        }
        // Roll back (drop) and retry with the same request id.
    }
    let elapsed = t0.elapsed();
    assert!(elapsed < HOLD / 2, "the deferred transaction waited {elapsed:?}");
    writer.join().unwrap();
    // Nothing of the failed call stayed: only the writer's charge.
    assert_eq!(used_reserved(&conn, "k"), (1, 0));

    // IMMEDIATE: BEGIN waits for the writer's COMMIT, then reads and calls.
    let writer = writer_holding_the_lock(&path, HOLD, "writer-2");
    let t0 = Instant::now();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    let waited = t0.elapsed();
    let used: i64 = tx.query_row("SELECT used FROM quota WHERE key = 'k'", [], |r| r.get(0)).unwrap();
    assert_eq!(used, 2, "both writers' charges are committed");
    let id: i64 = tx.query_row("SELECT quota_consume('k', 1, 'deferred')", [], |r| r.get(0)).unwrap();
    tx.commit().unwrap();
    assert!(id > 0);
    assert!(waited >= HOLD / 2, "BEGIN IMMEDIATE waited only {waited:?}");
    writer.join().unwrap();
    assert_eq!(used_reserved(&conn, "k"), (3, 0));
}

/// The SQLite the program linked: with `bundled`, libsqlite3-sys's copy,
/// whose header version rusqlite's bindings carry; otherwise the system's
/// (test/rust.test compares it with the system library's version).
#[test]
fn linked_sqlite() {
    let conn = Connection::open_in_memory().unwrap();
    let v: String = conn.query_row("SELECT sqlite_version()", [], |r| r.get(0)).unwrap();
    assert_eq!(v, rusqlite::version());
    println!("linked SQLite {v}");
    if cfg!(feature = "bundled") {
        let header = rusqlite::ffi::SQLITE_VERSION.to_str().unwrap();
        assert_eq!(v, header);
    }
    // The extension's own floor.
    assert!(rusqlite::version_number() >= 3_034_000);
}
