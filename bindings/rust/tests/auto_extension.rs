//! register_auto_extension(): every connection opened afterwards has the
//! extension. A test binary of its own, since the registration is
//! process-wide.

use rusqlite::Connection;

fn version(conn: &Connection) -> rusqlite::Result<String> {
    conn.query_row("SELECT quota_version()", [], |r| r.get(0))
}

/// SQLite's message (rusqlite has two error variants for it, see
/// tests/common).
fn message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(m)) => m.clone(),
        // The variant exists with modern_sqlite, which `bundled` turns on.
        #[cfg(feature = "bundled")]
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => panic!("not an SQLite error: {other:?}"),
    }
}

#[test]
fn auto_extension_serves_connections_opened_afterwards() {
    let before = Connection::open_in_memory().unwrap();
    sqlite_quota::register_auto_extension().unwrap();
    sqlite_quota::register_auto_extension().unwrap();
    let after = Connection::open_in_memory().unwrap();
    assert_eq!(version(&after).unwrap(), sqlite_quota::VERSION);
    // A connection opened before is not changed.
    assert_eq!(message(&version(&before).unwrap_err()), "no such function: quota_version");
    // Another thread's connection, a file database: the same.
    let t = std::thread::spawn(|| {
        let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let conn = Connection::open(dir.join("auto_extension.db")).unwrap();
        version(&conn).unwrap()
    });
    assert_eq!(t.join().unwrap(), sqlite_quota::VERSION);

    assert!(sqlite_quota::cancel_auto_extension());
    assert!(!sqlite_quota::cancel_auto_extension());
    let cancelled = Connection::open_in_memory().unwrap();
    assert_eq!(message(&version(&cancelled).unwrap_err()), "no such function: quota_version");
    // The connection opened while it was registered keeps it.
    assert_eq!(version(&after).unwrap(), sqlite_quota::VERSION);
}
