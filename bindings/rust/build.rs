//! Compiles the sqlite-quota C sources into this crate.
//!
//! Every `*.c` file of the extension's source directory is compiled with
//! `-DSQLITE_CORE`: the extension then calls `sqlite3_*` directly, and those
//! calls resolve to the SQLite that libsqlite3-sys links (its bundled copy
//! with the `bundled` feature, the system library otherwise). The headers
//! are the ones of that same SQLite: libsqlite3-sys's own directory when it
//! builds the bundled copy (`DEP_SQLITE3_INCLUDE`), `SQLITE3_INCLUDE_DIR`
//! when set, the system's `<sqlite3.h>` otherwise.
//!
//! The source directory is `SQLITE_QUOTA_EXT_DIR` when set, else `ext/`
//! inside the crate (a packaged copy), else `../../ext` (this repository).
//! The crate's version must equal `SQLITE_QUOTA_VERSION` in `quota.h`: the
//! build warns otherwise, and the crate's test one_version_everywhere fails.
//! `sqlite_quota::VERSION` is always quota.h's, the compiled code's.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn ext_dir(manifest: &Path) -> PathBuf {
    println!("cargo:rerun-if-env-changed=SQLITE_QUOTA_EXT_DIR");
    if let Some(dir) = env::var_os("SQLITE_QUOTA_EXT_DIR") {
        return PathBuf::from(dir);
    }
    let packaged = manifest.join("ext");
    if packaged.join("quota.h").is_file() {
        return packaged;
    }
    manifest.join("..").join("..").join("ext")
}

/// The value of `#define SQLITE_QUOTA_VERSION "X.Y.Z"` in quota.h.
fn header_version(header: &Path) -> String {
    let text = fs::read_to_string(header)
        .unwrap_or_else(|e| panic!("sqlite-quota: cannot read {}: {e}", header.display()));
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("#define") && words.next() == Some("SQLITE_QUOTA_VERSION") {
            if let Some(v) = words.next() {
                return v.trim_matches('"').to_string();
            }
        }
    }
    panic!("sqlite-quota: no SQLITE_QUOTA_VERSION in {}", header.display());
}

/// Writes the Rust blocks of the repository's doc/clients.md into
/// `OUT_DIR/clients_rust.md`, which src/lib.rs includes (under
/// `cfg(doctest)` only) so that `cargo test` runs them as doctests. A
/// block preceded by `<!-- doc-test: skip REASON -->` is compiled but not
/// run (`no_run`). Outside the repository the file is empty.
fn clients_doc_examples(manifest: &Path) {
    let doc = manifest.join("..").join("..").join("doc").join("clients.md");
    println!("cargo:rerun-if-changed={}", doc.display());
    let mut out = String::new();
    if let Ok(text) = fs::read_to_string(&doc) {
        let mut skip = false;
        let mut in_block = false;
        for (i, line) in text.lines().enumerate() {
            if in_block {
                out.push_str(line);
                out.push('\n');
                if line.trim_end() == "```" {
                    in_block = false;
                }
            } else if line.trim_end() == "```rust" {
                let tag = if skip { "rust,no_run" } else { "rust" };
                out.push_str(&format!("doc/clients.md line {}:\n\n```{tag}\n", i + 1));
                in_block = true;
                skip = false;
            } else if line.starts_with("<!-- doc-test: skip") {
                skip = true;
            } else if !line.trim().is_empty() {
                skip = false;
            }
        }
    }
    let dest = PathBuf::from(env::var("OUT_DIR").unwrap()).join("clients_rust.md");
    fs::write(&dest, out).unwrap();
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let dir = ext_dir(&manifest);
    // A directory: cargo rebuilds when any file in it changes, is added or
    // is removed, so a new source file is picked up.
    println!("cargo:rerun-if-changed={}", dir.display());

    let version = header_version(&dir.join("quota.h"));
    let crate_version = env::var("CARGO_PKG_VERSION").unwrap();
    if version != crate_version {
        // tests/load.rs (one_version_everywhere) fails on this too.
        println!(
            "cargo:warning=the crate's version {crate_version} (Cargo.toml) differs from \
             SQLITE_QUOTA_VERSION {version} in {}: set the same number in both",
            dir.join("quota.h").display()
        );
    }
    println!("cargo:rustc-env=SQLITE_QUOTA_VERSION={version}");

    let mut sources: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("sqlite-quota: cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    sources.sort();
    if sources.is_empty() {
        panic!("sqlite-quota: no C sources in {}", dir.display());
    }

    let mut build = cc::Build::new();
    build
        .files(&sources)
        .include(&dir)
        .define("SQLITE_CORE", None)
        .define("QUOTA_CFLAGS", "\"rust crate sqlite-quota\"")
        .std("c99")
        .warnings(true)
        .extra_warnings(true);
    println!("cargo:rerun-if-env-changed=SQLITE3_INCLUDE_DIR");
    if let Ok(include) = env::var("DEP_SQLITE3_INCLUDE") {
        build.include(include);
    } else if let Ok(include) = env::var("SQLITE3_INCLUDE_DIR") {
        build.include(include);
    }
    build.compile("sqlite_quota");
    clients_doc_examples(&manifest);

    // floor() is a call at -O0; the C runtime of MSVC has it built in.
    if env::var("CARGO_CFG_TARGET_ENV").as_deref() != Ok("msvc") {
        println!("cargo:rustc-link-lib=m");
    }
}
