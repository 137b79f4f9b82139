//! An LLM gateway's per-key hard caps, enforced with sqlite-quota.
//!
//! The gateway reserves a request's `max_tokens` on the caller's API key
//! before it dispatches the request to a model, settles the tokens the
//! model reports, and refuses a request whose reservation does not fit,
//! before any work starts. The refusal's code follows the cap's kind: a hard
//! balance that never resets answers `insufficient_quota` with no
//! Retry-After; a resetting or rolling window answers `rate_limit_exceeded`
//! with a Retry-After of at least one second. Spend never exceeds the cap,
//! also under a burst of concurrent requests, and a snapshot shows what is
//! spent and reserved at both levels of the principal (account and key).

mod common;

use common::*;
use rusqlite::{params, Connection};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

const ACCOUNT: &str = "acct-cap";
const KEY: &str = "key-cap";
/// The tokens the stand-in model reports for every request.
const MODEL_TOKENS: i64 = 15;

#[derive(Debug, PartialEq)]
enum Outcome {
    /// Dispatched; the settled charge.
    Served(i64),
    /// Refused before dispatch: quota_status's code and retry_after.
    Refused(String, Option<i64>),
}

/// One request through the gateway: reserve, dispatch (count a hit on the
/// stand-in model), settle; or refuse with the status that says why.
fn handle(conn: &Connection, max_tokens: i64, request_id: &str, hits: &AtomicU64) -> Outcome {
    match reserve(conn, KEY, max_tokens, request_id) {
        Some(hold) => {
            hits.fetch_add(1, Ordering::SeqCst);
            let used = MODEL_TOKENS.min(max_tokens);
            Outcome::Served(settle(conn, hold, used))
        }
        None => {
            let (allowed, code, retry_after, _) = status(conn, KEY, max_tokens);
            assert!(!allowed, "a denied reservation must read as not allowed");
            Outcome::Refused(code.expect("a denial has a code"), retry_after)
        }
    }
}

fn ledger_rows(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM quota_ledger", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn balance_over_cap_is_insufficient_quota_before_dispatch() {
    let path = scratch_db("balance_over_cap");
    let conn = open(&path);
    // A hard balance (lifetime key) far below one request's reservation.
    create_principal(&conn, ACCOUNT, KEY, 10, None);
    let hits = AtomicU64::new(0);

    let outcome = handle(&conn, 1000, "req-1", &hits);
    // Hard balance: insufficient_quota, and no Retry-After (it never resets).
    assert_eq!(outcome, Outcome::Refused("insufficient_quota".into(), None));
    // Refused before dispatch, and nothing was held or charged.
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    assert_eq!(used_reserved(&conn, KEY), (0, 0));
    assert_eq!(used_reserved(&conn, ACCOUNT), (0, 0));
    assert_eq!(ledger_rows(&conn), 0);
}

#[test]
fn rolling_over_cap_is_rate_limited_with_retry_after() {
    let path = scratch_db("rolling_over_cap");
    let conn = open(&path);
    create_principal(&conn, ACCOUNT, KEY, 10, Some("rolling 3600 seconds"));
    let hits = AtomicU64::new(0);

    match handle(&conn, 1000, "req-1", &hits) {
        Outcome::Refused(code, retry_after) => {
            assert_eq!(code, "rate_limit_exceeded");
            let retry = retry_after.expect("a rolling-window refusal must carry Retry-After");
            assert!(retry >= 1, "Retry-After {retry}");
            // The amount can never fit in the window and the window is
            // empty: retry_after is the window's length.
            assert_eq!(retry, 3600);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    assert_eq!(used_reserved(&conn, KEY), (0, 0));
}

#[test]
fn rolling_retry_after_is_when_the_oldest_charges_leave() {
    let path = scratch_db("rolling_retry_after");
    let conn = open(&path);
    create_principal(&conn, ACCOUNT, KEY, 20, Some("rolling 3600 seconds"));
    let hits = AtomicU64::new(0);
    let clock = |t: &str| {
        conn.query_row("SELECT quota_clock(?1)", params![t], |r| r.get::<_, String>(0))
            .unwrap()
    };

    clock("2026-03-01 12:00:00");
    assert_eq!(handle(&conn, 15, "req-1", &hits), Outcome::Served(15));
    clock("2026-03-01 12:10:00");
    // 15 of 20 spent in the window: 15 more do not fit until the first
    // charge leaves it, 50 minutes later.
    assert_eq!(
        handle(&conn, 15, "req-2", &hits),
        Outcome::Refused("rate_limit_exceeded".into(), Some(3000))
    );
    clock("2026-03-01 13:00:00");
    assert_eq!(handle(&conn, 15, "req-2", &hits), Outcome::Served(15));
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[test]
fn within_cap_is_served() {
    let path = scratch_db("within_cap");
    let conn = open(&path);
    create_principal(&conn, ACCOUNT, KEY, 1_000_000, None);
    let hits = AtomicU64::new(0);

    assert_eq!(handle(&conn, 50, "req-1", &hits), Outcome::Served(MODEL_TOKENS));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // The estimate (50) was held, the reported tokens (15) charged, the
    // rest released.
    assert_eq!(used_reserved(&conn, KEY), (MODEL_TOKENS, 0));
    assert_eq!(ledger_rows(&conn), 1);
}

/// A runaway agent fires 20 requests at once, from 4 threads with a
/// connection each, at a key with a hard balance of 100: a burst drains
/// the cap, the rest are refused, and spend never exceeds the cap. The
/// stand-in model takes 100 ms, so the holds of requests in flight overlap.
#[test]
fn fan_out_of_20_concurrent_requests_never_spends_past_the_cap() {
    const CAP: i64 = 100;
    const MAX_TOKENS: i64 = 20;
    const THREADS: usize = 4;
    const PER_THREAD: usize = 5;
    const LATENCY: Duration = Duration::from_millis(100);

    let path = scratch_db("fan_out");
    create_principal(&open(&path), ACCOUNT, KEY, CAP, None);

    let hits = Arc::new(AtomicU64::new(0));
    let most_reserved = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let path = path.clone();
            let (hits, most_reserved, start) =
                (Arc::clone(&hits), Arc::clone(&most_reserved), Arc::clone(&start));
            thread::spawn(move || {
                let conn = open(&path);
                let mut outcomes = Vec::new();
                start.wait();
                for i in 0..PER_THREAD {
                    let request_id = format!("req-{t}-{i}");
                    let outcome = match reserve(&conn, KEY, MAX_TOKENS, &request_id) {
                        Some(hold) => {
                            // What this connection reads with its hold in
                            // flight: the cap holds, counting every hold.
                            let (used, reserved) = used_reserved(&conn, KEY);
                            assert!(used + reserved <= CAP, "used {used} + reserved {reserved} > {CAP}");
                            most_reserved.fetch_max(reserved as u64, Ordering::SeqCst);
                            hits.fetch_add(1, Ordering::SeqCst);
                            thread::sleep(LATENCY);
                            Outcome::Served(settle(&conn, hold, MODEL_TOKENS))
                        }
                        None => {
                            let (_, code, retry_after, _) = status(&conn, KEY, MAX_TOKENS);
                            Outcome::Refused(code.expect("a denial has a code"), retry_after)
                        }
                    };
                    outcomes.push(outcome);
                }
                outcomes
            })
        })
        .collect();
    let outcomes: Vec<Outcome> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("a worker panicked"))
        .collect();

    let ok = outcomes.iter().filter(|o| matches!(o, Outcome::Served(_))).count() as i64;
    let refused: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Refused(code, retry) => Some((code.as_str(), *retry)),
            _ => None,
        })
        .collect();
    assert_eq!(ok + refused.len() as i64, 20);
    assert!(ok >= 1, "some requests should be served");
    assert!(!refused.is_empty(), "the cap must eventually refuse the fan-out");
    // A hard balance: every refusal is insufficient_quota, no Retry-After.
    assert!(refused.iter().all(|r| *r == ("insufficient_quota", None)), "{refused:?}");
    // Refused requests were never dispatched.
    assert_eq!(hits.load(Ordering::SeqCst) as i64, ok);
    // Each served request holds 20 and is charged 15: at most 6 fit in 100
    // (5 charges of 15 leave 25, room for a sixth hold of 20, not a seventh).
    assert!(ok <= 6, "{ok} requests served");
    // The requests did run at the same time: holds overlapped.
    assert!(
        most_reserved.load(Ordering::SeqCst) as i64 >= 2 * MAX_TOKENS,
        "no two holds were ever in flight together: the test ran serially"
    );

    let conn = open(&path);
    let (spent, reserved) = used_reserved(&conn, KEY);
    assert_eq!(reserved, 0, "every hold was settled");
    assert!(spent <= CAP, "spent {spent} exceeded cap");
    assert_eq!(spent, ok * MODEL_TOKENS);
    assert_eq!(used_reserved(&conn, ACCOUNT), (spent, 0));
    let (rows, total): (i64, i64) = conn
        .query_row(
            "SELECT count(*), coalesce(sum(amount), 0) FROM quota_ledger WHERE key = ?1",
            [KEY],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, total), (ok, spent));
    let check: String = conn.query_row("SELECT quota_integrity()", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}

/// What the gateway's snapshot of a principal reports.
#[derive(Debug, PartialEq)]
struct Snapshot {
    account_spent: i64,
    account_reserved: i64,
    key_spent: i64,
    key_reserved: i64,
}

fn snapshot(conn: &Connection, account: &str, key: &str) -> Snapshot {
    // One statement: both levels from the same snapshot of the store.
    conn.query_row(
        "SELECT a.used, a.reserved, k.used, k.reserved
           FROM quota AS a, quota AS k
          WHERE a.key = ?1 AND k.key = ?2 AND k.parent = a.key",
        params![account, key],
        |r| {
            Ok(Snapshot {
                account_spent: r.get(0)?,
                account_reserved: r.get(1)?,
                key_spent: r.get(2)?,
                key_reserved: r.get(3)?,
            })
        },
    )
    .unwrap()
}

#[test]
fn snapshot_shows_spent_and_reserved_per_principal() {
    let path = scratch_db("snapshot");
    let conn = open(&path);
    create_principal(&conn, ACCOUNT, KEY, 100, None);
    create_principal(&conn, ACCOUNT, "key-other", 100, None);

    let h1 = reserve(&conn, KEY, 40, "req-1").unwrap();
    let h2 = reserve(&conn, "key-other", 30, "req-2").unwrap();
    let snap = |k| snapshot(&conn, ACCOUNT, k);
    assert_eq!(
        snap(KEY),
        Snapshot { account_spent: 0, account_reserved: 70, key_spent: 0, key_reserved: 40 }
    );
    assert_eq!(settle(&conn, h1, 25), 25);
    assert_eq!(
        snap(KEY),
        Snapshot { account_spent: 25, account_reserved: 30, key_spent: 25, key_reserved: 0 }
    );
    assert_eq!(settle(&conn, h2, 30), 30);
    assert_eq!(
        snap("key-other"),
        Snapshot { account_spent: 55, account_reserved: 0, key_spent: 30, key_reserved: 0 }
    );
    // A key that is not under the account has no snapshot there.
    assert!(conn
        .query_row(
            "SELECT 1 FROM quota AS a, quota AS k WHERE a.key = ?1 AND k.key = ?2 AND k.parent = a.key",
            params![KEY, ACCOUNT],
            |_| Ok(()),
        )
        .is_err());
}
