//! sqlite-quota for rusqlite: the SQLite extension compiled into the crate.
//!
//! The C sources of sqlite-quota are compiled by this crate's build script
//! with `-DSQLITE_CORE` and linked against the SQLite that rusqlite uses (its
//! bundled copy with the `bundled` feature, the system library otherwise).
//! Nothing is loaded from disk at run time: [`load`] registers the extension
//! on one connection, [`register_auto_extension`] on every connection opened
//! afterwards.
//!
//! The guide, with the calls, transactions and an axum handler, is the
//! crate's README, below; the SQL reference is `doc/reference.md` of the
//! sqlite-quota repository.
#![doc = include_str!("../README.md")]

use std::ffi::{c_char, c_int, CStr};
use std::ptr;

use rusqlite::ffi;
use rusqlite::Connection;

/// The rusqlite this crate is built against. Use it (or the same version)
/// in your program: two versions of libsqlite3-sys cannot be linked into
/// one program.
pub use rusqlite;

/// The version of the compiled-in extension: `SQLITE_QUOTA_VERSION` of
/// `quota.h`, which is also the crate's version and what
/// `SELECT quota_version()` returns.
pub const VERSION: &str = env!("SQLITE_QUOTA_VERSION");

extern "C" {
    /// The extension's entry point (ext/entry.c), compiled with SQLITE_CORE:
    /// it ignores its third argument.
    fn sqlite3_quota_init(
        db: *mut ffi::sqlite3,
        pz_err_msg: *mut *mut c_char,
        p_api: *const ffi::sqlite3_api_routines,
    ) -> c_int;
}

/// The entry point with the signature SQLite's auto-extension list takes.
unsafe extern "C" fn quota_entry_point(
    db: *mut ffi::sqlite3,
    pz_err_msg: *mut *mut c_char,
    p_api: *const ffi::sqlite3_api_routines,
) -> c_int {
    unsafe { sqlite3_quota_init(db, pz_err_msg, p_api) }
}

/// Registers the quota module and the `quota_*` functions on `conn`.
///
/// Call it once per connection, before the connection's first quota call
/// (calling it again is harmless). It fails only when SQLite is older than
/// 3.34.0 or out of memory; the error carries the extension's message.
///
/// ```
/// let conn = rusqlite::Connection::open_in_memory()?;
/// sqlite_quota::load(&conn)?;
/// let v: String = conn.query_row("SELECT quota_version()", [], |r| r.get(0))?;
/// assert_eq!(v, sqlite_quota::VERSION);
/// # Ok::<(), rusqlite::Error>(())
/// ```
pub fn load(conn: &Connection) -> rusqlite::Result<()> {
    let mut msg: *mut c_char = ptr::null_mut();
    // SAFETY: the handle is the live connection `conn` borrows; the init
    // function only registers functions and a module on it, and with
    // SQLITE_CORE it takes no API table.
    let rc = unsafe { sqlite3_quota_init(conn.handle(), &mut msg, ptr::null()) };
    if rc == ffi::SQLITE_OK {
        return Ok(());
    }
    let text = if msg.is_null() {
        None
    } else {
        // SAFETY: a NUL-terminated string from sqlite3_mprintf, freed here.
        let s = unsafe { CStr::from_ptr(msg) }.to_string_lossy().into_owned();
        unsafe { ffi::sqlite3_free(msg.cast()) };
        Some(s)
    };
    Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), text))
}

/// Registers the extension with `sqlite3_auto_extension()`: every
/// connection the process opens afterwards, through rusqlite or any other
/// caller of the same SQLite library, has the quota module and functions.
/// Connections that are already open are not changed. Registering twice
/// is harmless (SQLite keeps one entry).
///
/// ```
/// sqlite_quota::register_auto_extension()?;
/// let conn = rusqlite::Connection::open_in_memory()?;
/// let v: String = conn.query_row("SELECT quota_version()", [], |r| r.get(0))?;
/// assert_eq!(v, sqlite_quota::VERSION);
/// # Ok::<(), rusqlite::Error>(())
/// ```
pub fn register_auto_extension() -> rusqlite::Result<()> {
    // SAFETY: the entry point opens no database, closes none and does not
    // touch the auto-extension list (rusqlite's conditions).
    unsafe { rusqlite::auto_extension::register_auto_extension(quota_entry_point) }
}

/// Takes the extension off the auto-extension list; true if it was there.
/// Connections opened before keep it.
pub fn cancel_auto_extension() -> bool {
    rusqlite::auto_extension::cancel_auto_extension(quota_entry_point)
}

// The Rust examples of the repository's doc/clients.md, extracted by the
// build script, run as doctests (cargo test).
#[cfg(doctest)]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/clients_rust.md"))]
pub struct ClientsDocExamples;
