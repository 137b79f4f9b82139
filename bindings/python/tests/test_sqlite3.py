"""The standard library's sqlite3 in its three transaction modes, and where each one bites.

1. legacy (the default, isolation_level=''): sqlite3 opens a transaction by
   itself before INSERT/UPDATE/DELETE/REPLACE, never before a SELECT.
2. isolation_level=None: true autocommit; you write BEGIN IMMEDIATE yourself.
3. autocommit=True/False (Python 3.12 and later).
"""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from conftest import connect, make_store, used
from sqlite_quota import Quota

SQLITE_BUSY = 5
SQLITE_BUSY_SNAPSHOT = 517

has_autocommit = pytest.mark.skipif(
    not hasattr(sqlite3, "LEGACY_TRANSACTION_CONTROL"),
    reason="sqlite3's autocommit= needs Python 3.12 or later; this is Python %d.%d"
    % __import__("sys").version_info[:2])


# --- 1. the legacy mode (isolation_level='', the default) -----------------------

def test_legacy_wrong_way_rollback_does_not_undo_a_select_call(db_path):
    conn = connect(db_path, isolation_level="")          # what sqlite3.connect() gives
    q = Quota(conn)
    assert not conn.in_transaction
    q.consume("k", 3)
    assert not conn.in_transaction                        # no BEGIN before a SELECT
    conn.rollback()                                       # undoes nothing
    assert used(db_path, "k") == (3, 0)


def test_legacy_a_call_after_an_insert_joins_the_hidden_transaction(db_path):
    conn = connect(db_path, isolation_level="")
    conn.execute("CREATE TABLE orders(item TEXT)")
    conn.execute("INSERT INTO orders VALUES ('remix')")   # sqlite3 ran BEGIN here
    assert conn.in_transaction
    Quota(conn).consume("k", 3)
    assert used(db_path, "k") == (0, 0)                   # not committed: others see nothing
    conn.rollback()
    assert conn.execute("SELECT used FROM quota").fetchone() == (0,)
    conn.execute("INSERT INTO orders VALUES ('remix')")
    Quota(conn).consume("k", 3)
    conn.close()                                          # never committed: lost
    assert used(db_path, "k") == (0, 0)


def test_legacy_right_way_begin_immediate_then_rollback_undoes(db_path):
    conn = connect(db_path, isolation_level="")
    conn.execute("BEGIN IMMEDIATE")
    Quota(conn).consume("k", 3)
    conn.rollback()
    assert used(db_path, "k") == (0, 0)
    conn.execute("BEGIN IMMEDIATE")
    Quota(conn).consume("k", 3)
    conn.commit()
    assert used(db_path, "k") == (3, 0)


# --- 2. isolation_level=None ---------------------------------------------------

def test_autocommit_each_call_commits_by_itself(db_path):
    conn = connect(db_path)
    q = Quota(conn)
    with q.reserve("k", 4, request_id="req-1") as hold:
        assert used(db_path, "k") == (0, 4)               # the hold is committed
        hold.settle(3)
    conn.rollback()
    assert used(db_path, "k") == (3, 0)


def test_autocommit_begin_immediate_rollback_undoes(db_path):
    conn = connect(db_path)
    q = Quota(conn)
    conn.execute("BEGIN IMMEDIATE")
    q.consume("k", 3)
    assert used(db_path, "k") == (0, 0)
    conn.execute("ROLLBACK")
    conn.execute("BEGIN IMMEDIATE")
    q.consume("k", 3)
    conn.execute("COMMIT")
    assert used(db_path, "k") == (3, 0)


def other_writer(path, amount=1):
    """Another connection charges 'k' and commits."""
    conn = connect(path)
    try:
        return Quota(conn).consume("k", amount)
    finally:
        conn.close()


def test_wrong_way_deferred_read_then_call_is_busy_at_once(db_path):
    conn = connect(db_path, timeout=5.0)
    conn.execute("BEGIN")                                   # deferred
    assert conn.execute("SELECT used FROM quota").fetchone() == (0,)   # a read snapshot
    other_writer(db_path)                                   # commits after that snapshot
    t0 = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="database is locked") as e:
        Quota(conn).consume("k", 2)
    elapsed = time.monotonic() - t0
    assert e.value.sqlite_errorcode == SQLITE_BUSY_SNAPSHOT
    assert elapsed < 1.0                                    # the 5 s busy timeout was not used
    conn.execute("ROLLBACK")
    assert used(db_path, "k") == (1, 0)


def test_right_way_begin_immediate_waits_and_both_charges_land(db_path):
    conn = connect(db_path, timeout=5.0)
    conn.execute("BEGIN IMMEDIATE")                        # the write lock, now
    assert conn.execute("SELECT used FROM quota").fetchone() == (0,)
    done = {}

    def writer():
        done["ledger"] = other_writer(db_path)
        done["at"] = time.monotonic()

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.3)                                         # the writer is waiting for the lock
    assert "at" not in done
    Quota(conn).consume("k", 2)
    committed = time.monotonic()
    conn.execute("COMMIT")
    t.join(10)
    assert done["at"] >= committed                          # it waited, then went through
    assert used(db_path, "k") == (3, 0)


def test_wrong_way_calling_under_an_open_cursor(db_path):
    make_store(db_path, {"a": 10, "b": 10})
    conn = connect(db_path)
    q = Quota(conn)
    with pytest.raises(sqlite3.OperationalError,
                       match="cannot write from a statement that is reading") as e:
        for (key,) in conn.execute("SELECT key FROM quota ORDER BY key"):
            q.consume(key, 1)
    assert e.value.sqlite_errorcode == SQLITE_BUSY
    assert [r[0] for r in conn.execute("SELECT used FROM quota ORDER BY key")] == [0, 0, 0]
    # The right way: read everything first.
    for (key,) in conn.execute("SELECT key FROM quota ORDER BY key").fetchall():
        q.consume(key, 1)
    assert [r[0] for r in conn.execute("SELECT used FROM quota ORDER BY key")] == [1, 1, 1]


# --- 3. autocommit= (Python 3.12) ----------------------------------------------

@has_autocommit
def test_autocommit_true_each_call_commits_by_itself(db_path):
    conn = connect(db_path, isolation_level="", autocommit=True)
    Quota(conn).consume("k", 3)
    conn.rollback()
    assert used(db_path, "k") == (3, 0)


@has_autocommit
def test_autocommit_false_calls_are_in_the_open_transaction(db_path):
    conn = connect(db_path, isolation_level="", autocommit=False)
    assert conn.in_transaction                              # always one open
    q = Quota(conn)
    q.consume("k", 3)
    assert used(db_path, "k") == (0, 0)
    conn.rollback()                                         # undoes it, opens the next one
    assert used(db_path, "k") == (0, 0)
    q.consume("k", 3)
    conn.commit()
    assert used(db_path, "k") == (3, 0)


@has_autocommit
def test_autocommit_false_wrong_way_journal_mode_inside_the_transaction(tmp_path):
    path = str(tmp_path / "new.db")
    conn = connect(path, isolation_level="", autocommit=False)
    with pytest.raises(sqlite3.OperationalError,
                       match="cannot change into wal mode from within a transaction"):
        conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    conn = connect(path, isolation_level=None)              # set it once, before
    assert conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
    conn.close()
    conn = connect(path, isolation_level="", autocommit=False)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@has_autocommit
def test_autocommit_false_wrong_way_read_then_call_is_busy_at_once(db_path):
    conn = connect(db_path, isolation_level="", autocommit=False, timeout=5.0)
    conn.execute("SELECT used FROM quota").fetchall()       # the implicit BEGIN is deferred
    other_writer(db_path)
    t0 = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        Quota(conn).consume("k", 2)
    assert time.monotonic() - t0 < 1.0
    conn.rollback()
    # The right way here: call before reading in the transaction (commit() or
    # rollback() first), so that the call takes the write lock and waits.
    Quota(conn).consume("k", 2)
    conn.commit()
    assert used(db_path, "k") == (3, 0)
