"""Shared fixtures of the Python package's tests, and the result log test/python.test reads.

The tests run against the installed wheel (import sqlite_quota), in a
virtualenv of Debian's /usr/bin/python3 made by tool/python-setup.sh, on
database files under pytest's tmp_path.  Time: each connection opened with
connect() pins the extension's clock to CLOCK unless told otherwise, so
periods and retry_after are the same on every run.

QUOTA_PYTEST_LOG, when set, names a file that gets one line per test:
"OUTCOME<TAB>NODEID<TAB>DETAIL", OUTCOME passed, failed, skipped or error
(a collection error), DETAIL the skip reason or the failure's last lines.
"""
from __future__ import annotations

import os
import sqlite3
from typing import Any, Dict, Optional

import pytest

import sqlite_quota

CLOCK = "2026-01-31 10:00:00"
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def connect(path: str, *, clock: Optional[str] = CLOCK, timeout: float = 5.0,
            **kwargs: Any) -> sqlite3.Connection:
    """A sqlite3 connection with the extension loaded (isolation_level=None unless given)."""
    kwargs.setdefault("isolation_level", None)
    conn = sqlite3.connect(path, timeout=timeout, **kwargs)
    sqlite_quota.load(conn)
    if clock is not None:
        conn.execute("SELECT quota_clock(?)", (clock,)).fetchall()
    return conn


def make_store(path: str, keys: Dict[str, Any], wal: bool = True) -> None:
    """A database file with a quota table and keys {key: cap or (cap, period[, parent])}."""
    conn = connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode = WAL").fetchall()
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS quota USING quota")
    for key, spec in keys.items():
        cap, period, parent = ((spec if isinstance(spec, tuple) else (spec,)) + (None, None))[:3]
        conn.execute("INSERT INTO quota(key, cap, period, parent) VALUES (?, ?, ?, ?)",
                     (key, cap, period, parent))
    conn.close()


def used(path: str, key: str) -> Any:
    """(used, reserved) of a key, read on a fresh connection (what is committed)."""
    conn = connect(path)
    try:
        return conn.execute("SELECT used, reserved FROM quota WHERE key = ?", (key,)).fetchone()
    finally:
        conn.close()


@pytest.fixture
def db_path(tmp_path: Any) -> str:
    """A WAL database file with a quota table and key 'k' (cap 10, lifetime)."""
    path = str(tmp_path / "app.db")
    make_store(path, {"k": 10})
    return path


# --- the result log ---------------------------------------------------------

_LOG = os.environ.get("QUOTA_PYTEST_LOG")
_outcome: Dict[str, Any] = {}


def _detail(report: Any) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).replace("Skipped: ", "", 1)
    text = str(getattr(report, "longreprtext", "") or report.longrepr or "")
    lines = [ln for ln in text.splitlines() if ln.startswith("E ")] or text.splitlines()
    return " | ".join(ln.strip() for ln in lines[-6:])


def _write(outcome: str, nodeid: str, detail: str) -> None:
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as f:
            f.write("%s\t%s\t%s\n" % (outcome, nodeid, detail.replace("\t", " ").replace("\n", " ")))


def pytest_runtest_logreport(report: Any) -> None:
    state = _outcome.setdefault(report.nodeid, ["passed", ""])
    if report.failed and state[0] != "failed":
        state[0], state[1] = "failed", "%s: %s" % (report.when, _detail(report))
    elif report.skipped and state[0] == "passed":
        state[0], state[1] = "skipped", _detail(report)
    if report.when == "teardown":
        _write(state[0], report.nodeid, state[1])
        del _outcome[report.nodeid]


def pytest_collectreport(report: Any) -> None:
    if report.failed:
        _write("error", report.nodeid or "collection", _detail(report))
