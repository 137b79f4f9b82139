"""The Quota helper (sync, on sqlite3) and AsyncQuota (on aiosqlite)."""
from __future__ import annotations

import asyncio
import datetime
import json
import pickle
import sqlite3

import aiosqlite
import pytest

import sqlite_quota
from conftest import CLOCK, connect, make_store, used
from sqlite_quota import INSUFFICIENT_QUOTA, RATE_LIMIT_EXCEEDED, Quota, QuotaExceeded, Status
from sqlite_quota.aio import AsyncQuota


@pytest.fixture
def q(tmp_path):
    path = str(tmp_path / "q.db")
    make_store(path, {"k": 10, "day": (100, "day"), "acct": (50, "month"),
                      "key-of-acct": (1000, "month", "acct"), "free": None})
    conn = connect(path)
    yield Quota(conn)
    conn.close()


def ledger(q):
    return q.conn.execute("SELECT key, amount, request_id, hold_id, meta FROM quota_ledger "
                          "ORDER BY id").fetchall()


def test_settle_in_the_block(q):
    with q.reserve("k", 6, request_id="req-1") as hold:
        assert (hold.id, hold.state) == (1, "live")
        assert q.status("k").reserved == 6
        assert hold.settle(4, meta={"model": "m1", "tokens": 4}) == 4
    assert (hold.state, hold.charged) == ("settled", 4)
    s = q.status("k")
    assert (s.used, s.reserved, s.remaining) == (4, 0, 6)
    assert ledger(q) == [("k", 4, "req-1", 1, '{"model":"m1","tokens":4}')]


def test_an_exception_releases_and_goes_on(q):
    class ProviderError(Exception):
        pass
    with pytest.raises(ProviderError):
        with q.reserve("k", 6) as hold:
            raise ProviderError("upstream 503")
    assert (hold.state, hold.released) == ("released", 6)
    assert (q.status("k").used, q.status("k").reserved) == (0, 0)
    assert ledger(q) == []


def test_keyboard_interrupt_releases_too(q):
    with pytest.raises(KeyboardInterrupt):
        with q.reserve("k", 6) as hold:
            raise KeyboardInterrupt
    assert hold.state == "released" and q.status("k").reserved == 0


def test_leaving_without_settle_releases(q):
    with q.reserve("k", 6) as hold:
        pass
    assert (hold.state, hold.released) == ("released", 6)
    assert q.status("k").reserved == 0


def test_settle_above_the_hold_and_a_late_exception(q):
    with pytest.raises(RuntimeError):
        with q.reserve("k", 6) as hold:
            hold.settle(8)
            raise RuntimeError("after the charge")
    assert hold.state == "settled"                     # not released: it was charged
    assert (q.status("k").used, q.status("k").reserved) == (8, 0)


def test_hold_by_hand_and_the_same_request_id(q):
    h1 = q.reserve("k", 6, request_id="att-1")
    h2 = q.reserve("k", 6, request_id="att-1")         # a retry of the same attempt
    assert h1.id == h2.id and q.status("k").reserved == 6
    assert h1.release() == 6
    # The id names one attempt: reserving with it again gives the released hold.
    assert q.reserve("k", 6, request_id="att-1").id == h1.id
    with pytest.raises(sqlite3.OperationalError, match="hold 1 was released"):
        q.settle(h1.id, 3)
    assert q.reserve("k", 6, request_id="att-2").settle(5) == 5


def test_ttl_as_timedelta(q):
    hold = q.reserve("k", 6, ttl=datetime.timedelta(minutes=2))
    q.conn.execute("SELECT quota_clock('2026-01-31 10:02:00')")
    assert q.status("k").reserved == 0                  # expired after 120 s
    assert hold.settle(5) == 5                          # still charged, marked late
    assert q.conn.execute("SELECT late FROM quota_ledger").fetchone() == (1,)


def test_denied_lifetime_balance_is_insufficient_quota(q):
    q.consume("k", 7)
    with pytest.raises(QuotaExceeded) as e:
        with q.reserve("k", 4):
            pytest.fail("the block must not run when the reservation is denied")
    err = e.value
    assert (err.code, err.retry_after, err.limited_by, err.amount) == (INSUFFICIENT_QUOTA, None, "k", 4)
    assert (err.http_status, err.headers()) == (402, {})
    assert (err.status.used, err.status.remaining, err.status.cap) == (7, 3, 10)
    assert str(err) == "k: insufficient_quota: 4 asked, 3 remaining"
    assert json.loads(json.dumps(err.to_dict()))["error"]["remaining"] == 3
    again = pickle.loads(pickle.dumps(err))
    assert (again.code, again.status, str(again)) == (err.code, err.status, str(err))
    assert q.status("k").reserved == 0


def test_denied_window_is_rate_limit_exceeded_with_retry_after(q):
    q.consume("day", 100)
    with pytest.raises(QuotaExceeded) as e:
        q.consume("day", 1, request_id="r-9")
    err = e.value
    assert (err.code, err.http_status) == (RATE_LIMIT_EXCEEDED, 429)
    assert err.retry_after == 14 * 3600                 # CLOCK is 10:00, the day ends at 24:00
    assert err.headers() == {"Retry-After": str(14 * 3600)}
    assert err.status.resets_at == "2026-02-01 00:00:00"


def test_denied_by_the_parent(q):
    q.consume("key-of-acct", 45)
    with pytest.raises(QuotaExceeded) as e:
        q.reserve("key-of-acct", 10)
    assert (e.value.limited_by, e.value.status.remaining) == ("acct", 5)


def test_status_dataclass(q):
    s = q.status("day", 30)
    assert s == Status(key="day", amount=30, allowed=True, code=None, cap=100, used=0, reserved=0,
                       remaining=100, resets_at="2026-02-01 00:00:00", retry_after=None,
                       limited_by="day")
    assert s.raw["key"] == "day"
    assert q.check("day", 100) and not q.check("day", 101)


def test_record_charges_past_the_cap_and_ignores_a_deleted_key(q):
    assert q.record("k", 15, meta="batch") == 1
    assert q.status("k").used == 15
    assert q.record("no-such-key", 5) is None


def test_unknown_key_is_an_error(q):
    with pytest.raises(sqlite3.OperationalError, match="no such quota key: 'nobody'"):
        q.reserve("nobody", 1)


def test_unlimited_key_is_metered(q):
    assert q.consume("free", 10 ** 12) == 1
    assert q.status("free").remaining is None


def test_a_denial_whose_room_frees_before_status_is_tried_again(tmp_path):
    # Between the denied call and quota_status another connection releases
    # its hold: the helper sees the room in the status and tries again.
    path = str(tmp_path / "race.db")
    make_store(path, {"k": 10})
    other = connect(path)
    other_hold = Quota(other).reserve("k", 8)

    class Rows:
        def __init__(self, rows):
            self.rows = rows

        def fetchall(self):
            return self.rows

        def close(self):
            pass

    class Racing:
        def __init__(self, conn):
            self.conn, self.denials = conn, 0

        def execute(self, sql, params=()):
            rows = self.conn.execute(sql, params).fetchall()
            if sql.startswith("SELECT quota_reserve") and rows == [(None,)]:
                self.denials += 1
                other_hold.release()
            return Rows(rows)

    conn = Racing(connect(path))
    hold = Quota(conn).reserve("k", 5)
    assert (conn.denials, hold.id) == (1, 2)
    assert used(path, "k") == (0, 5)


def test_quota_refuses_an_async_connection():
    async def main():
        async with aiosqlite.connect(":memory:") as db:
            with pytest.raises(TypeError, match="use sqlite_quota.aio.AsyncQuota"):
                Quota(db)
    asyncio.run(main())


# --- aiosqlite ------------------------------------------------------------------

def run_async(path, body):
    async def main():
        async with aiosqlite.connect(path, isolation_level=None, timeout=5.0) as db:
            await sqlite_quota.load_async(db)
            await db.execute("SELECT quota_clock(?)", (CLOCK,))
            return await body(db, AsyncQuota(db))
    return asyncio.run(main())


def test_aiosqlite_settle_in_the_block(db_path):
    async def body(db, q):
        async with q.reserve("k", 6, request_id="req-1") as hold:
            assert (await q.status("k")).reserved == 6
            assert await hold.settle(4, meta={"model": "m1"}) == 4
        return hold.state
    assert run_async(db_path, body) == "settled"
    assert used(db_path, "k") == (4, 0)


def test_aiosqlite_exception_and_plain_exit_release(db_path):
    async def body(db, q):
        with pytest.raises(ConnectionError):
            async with q.reserve("k", 6) as h1:
                raise ConnectionError("upstream")
        async with q.reserve("k", 6) as h2:
            pass
        h3 = await q.reserve("k", 6)                    # awaited: released by hand
        assert await h3.release() == 6
        return h1.state, h2.state, h3.state
    assert run_async(db_path, body) == ("released",) * 3
    assert used(db_path, "k") == (0, 0)


def test_aiosqlite_denial_and_the_other_calls(db_path):
    async def body(db, q):
        assert await q.consume("k", 7, request_id="c-1", meta={"n": 1}) == 1
        assert await q.consume("k", 7, request_id="c-1") == 1      # the same request
        assert await q.record("gone", 1) is None
        assert await q.check("k", 3) and not await q.check("k", 4)
        with pytest.raises(QuotaExceeded) as e:
            async with q.reserve("k", 4):
                pytest.fail("the block must not run")
        return e.value.code, e.value.status.remaining
    assert run_async(db_path, body) == (INSUFFICIENT_QUOTA, 3)
    assert used(db_path, "k") == (7, 0)


def test_aiosqlite_load_error_names_the_interpreter(monkeypatch):
    # A sqlite3 module whose Connection has no enable_load_extension stands
    # for a Python built without --enable-loadable-sqlite-extensions.
    import types
    import sqlite_quota._load
    monkeypatch.setattr(sqlite_quota._load, "sqlite3", types.SimpleNamespace(Connection=object))

    async def main():
        async with aiosqlite.connect(":memory:") as db:
            with pytest.raises(sqlite_quota.LoadError) as e:
                await sqlite_quota.load_async(db)
            with pytest.raises(sqlite3.OperationalError, match="no such function: quota_version"):
                await db.execute("SELECT quota_version()")
        return str(e.value)
    msg = asyncio.run(main())
    assert msg.startswith("sqlite_quota.load_async cannot load SQLite extensions")
    assert "/usr/bin/python3" in msg
