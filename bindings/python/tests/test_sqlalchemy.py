"""SQLAlchemy 2: the pysqlite driver (sync) and aiosqlite (asyncio).

The extension is loaded in a "connect" event (engine.sync_engine for the
asyncio engine).  What decides where a quota call commits is the driver's
transaction mode: in its default (legacy) mode sqlite3 never runs BEGIN
before a SELECT, so SQLAlchemy's transaction is not SQLite's and a rollback
does not undo the call.  The documented recipe takes BEGIN over: the
"connect" event sets isolation_level = None and the "begin" event runs
BEGIN IMMEDIATE.
"""
from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session

import sqlite_quota
from conftest import CLOCK, connect, used
from sqlite_quota import Quota
from sqlite_quota.aio import AsyncQuota

SQLITE_BUSY_SNAPSHOT = 517


def engine_for(path, *, begin=None, **kwargs):
    """A sync engine that loads the extension; begin='BEGIN IMMEDIATE' applies the recipe."""
    engine = create_engine("sqlite:///" + path, connect_args={"timeout": 5}, **kwargs)

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, connection_record):
        sqlite_quota.load(dbapi_connection)
        dbapi_connection.execute("SELECT quota_clock(?)", (CLOCK,)).fetchall()
        if begin is not None:
            dbapi_connection.isolation_level = None

    if begin is not None:
        @event.listens_for(engine, "begin")
        def on_begin(conn):
            conn.exec_driver_sql(begin)

    return engine


def other_writer(path, amount=1):
    conn = connect(path)
    try:
        return Quota(conn).consume("k", amount)
    finally:
        conn.close()


def test_connect_event_loads_every_pooled_connection(db_path):
    engine = engine_for(db_path, pool_size=2)
    conns = [engine.connect(), engine.connect()]
    versions = {c.execute(text("SELECT quota_version()")).scalar() for c in conns}
    assert versions == {sqlite_quota.__version__}
    for c in conns:
        c.close()
    engine.dispose()


def test_wrong_way_default_mode_rollback_does_not_undo_the_call(db_path):
    engine = engine_for(db_path)
    with Session(engine) as session:
        Quota(session).consume("k", 3)
        session.rollback()                   # SQLAlchemy rolls back; SQLite had no transaction
    assert used(db_path, "k") == (3, 0)
    engine.dispose()


def test_recipe_the_call_is_in_the_session_transaction(db_path):
    engine = engine_for(db_path, begin="BEGIN IMMEDIATE")
    with Session(engine) as session:
        Quota(session).consume("k", 3)
        assert used(db_path, "k") == (0, 0)  # not committed yet
        session.rollback()
    assert used(db_path, "k") == (0, 0)
    with Session(engine) as session, session.begin():
        session.execute(text("CREATE TABLE IF NOT EXISTS orders(item TEXT)"))
        session.execute(text("INSERT INTO orders VALUES ('remix')"))
        Quota(session).consume("k", 3)
    assert used(db_path, "k") == (3, 0)
    engine.dispose()


def test_wrong_way_recipe_with_deferred_begin_read_then_call_is_busy_at_once(db_path):
    engine = engine_for(db_path, begin="BEGIN")
    with Session(engine) as session:
        assert session.execute(text("SELECT used FROM quota")).scalar() == 0
        other_writer(db_path)
        t0 = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked") as e:
            Quota(session).consume("k", 2)
        assert time.monotonic() - t0 < 1.0           # timeout=5 was not used
        assert e.value.orig.sqlite_errorcode == SQLITE_BUSY_SNAPSHOT
        session.rollback()
    assert used(db_path, "k") == (1, 0)
    engine.dispose()


def test_right_way_recipe_with_begin_immediate_waits(db_path):
    engine = engine_for(db_path, begin="BEGIN IMMEDIATE")
    done = {}

    def writer():
        done["ledger"] = other_writer(db_path)
        done["at"] = time.monotonic()

    with Session(engine) as session:
        assert session.execute(text("SELECT used FROM quota")).scalar() == 0
        t = threading.Thread(target=writer)
        t.start()
        time.sleep(0.3)
        assert "at" not in done                    # waiting for the session's lock
        Quota(session).consume("k", 2)
        committed = time.monotonic()
        session.commit()
    t.join(10)
    assert done["at"] >= committed
    assert used(db_path, "k") == (3, 0)
    engine.dispose()


def test_autocommit_engine_calls_commit_by_themselves(db_path):
    quota_engine = engine_for(db_path, isolation_level="AUTOCOMMIT")
    with quota_engine.begin() as conn:             # no transaction under AUTOCOMMIT
        Quota(conn).consume("k", 3)
        assert used(db_path, "k") == (3, 0)
        conn.rollback()
    assert used(db_path, "k") == (3, 0)
    quota_engine.dispose()


def test_wrong_way_quota_on_a_second_connection_while_holding_the_write_lock(db_path):
    app_engine = engine_for(db_path, begin="BEGIN IMMEDIATE")
    quota_engine = create_engine("sqlite:///" + db_path, isolation_level="AUTOCOMMIT",
                                 connect_args={"timeout": 0.3})
    event.listen(quota_engine, "connect", lambda c, r: sqlite_quota.load(c))
    with Session(app_engine) as session, session.begin():
        session.execute(text("CREATE TABLE IF NOT EXISTS orders(item TEXT)"))
        session.execute(text("INSERT INTO orders VALUES ('remix')"))
        t0 = time.monotonic()
        with quota_engine.connect() as qconn:
            with pytest.raises(OperationalError, match="database is locked"):
                Quota(qconn).consume("k", 1)   # waits for our own transaction: never
        assert time.monotonic() - t0 >= 0.3
        # The right ways: in this transaction (on its connection), or after it.
        Quota(session).consume("k", 1)
    with quota_engine.connect() as qconn:
        Quota(qconn).consume("k", 1)
    assert used(db_path, "k") == (2, 0)
    app_engine.dispose()
    quota_engine.dispose()


# --- asyncio: aiosqlite -----------------------------------------------------------

def async_engine_for(path, *, begin=None, **kwargs):
    engine = create_async_engine("sqlite+aiosqlite:///" + path, connect_args={"timeout": 5},
                                 **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection, connection_record):
        sqlite_quota.load(dbapi_connection)          # SQLAlchemy's adapter: run_async inside
        cur = dbapi_connection.cursor()
        cur.execute("SELECT quota_clock(?)", (CLOCK,))
        cur.close()
        if begin is not None:
            dbapi_connection.isolation_level = None

    if begin is not None:
        @event.listens_for(engine.sync_engine, "begin")
        def on_begin(conn):
            conn.exec_driver_sql(begin)

    return engine


def test_async_wrong_way_default_mode_rollback_does_not_undo(db_path):
    async def main():
        engine = async_engine_for(db_path)
        async with engine.connect() as conn:
            assert await AsyncQuota(conn).consume("k", 3) == 1
            await conn.rollback()
        await engine.dispose()
    asyncio.run(main())
    assert used(db_path, "k") == (3, 0)


def test_async_recipe_rollback_undoes_and_commit_keeps(db_path):
    async def main():
        engine = async_engine_for(db_path, begin="BEGIN IMMEDIATE")
        async with engine.connect() as conn:
            q = AsyncQuota(conn)
            async with q.reserve("k", 6) as hold:
                await hold.settle(4)
            assert used(db_path, "k") == (0, 0)
            await conn.rollback()
        async with engine.begin() as conn:
            async with AsyncQuota(conn).reserve("k", 6) as hold:
                await hold.settle(5)
        await engine.dispose()
    asyncio.run(main())
    assert used(db_path, "k") == (5, 0)


def test_async_wrong_way_deferred_read_then_call_is_busy_at_once(db_path):
    async def main():
        engine = async_engine_for(db_path, begin="BEGIN")
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT used FROM quota"))).scalar() == 0
            other_writer(db_path)
            t0 = time.monotonic()
            with pytest.raises(OperationalError, match="database is locked"):
                await AsyncQuota(conn).consume("k", 2)
            assert time.monotonic() - t0 < 1.0
            await conn.rollback()
        # The right way: BEGIN IMMEDIATE, the call then waits and goes through.
        engine2 = async_engine_for(db_path, begin="BEGIN IMMEDIATE")
        async with engine2.begin() as conn:
            assert (await conn.execute(text("SELECT used FROM quota"))).scalar() == 1
            await AsyncQuota(conn).consume("k", 2)
        await engine.dispose()
        await engine2.dispose()
    asyncio.run(main())
    assert used(db_path, "k") == (3, 0)


def test_async_session(db_path):
    from sqlalchemy.ext.asyncio import AsyncSession

    async def main():
        engine = async_engine_for(db_path, begin="BEGIN IMMEDIATE")
        async with AsyncSession(engine) as session:
            async with session.begin():
                await AsyncQuota(session).consume("k", 4, request_id="s-1")
            s = await AsyncQuota(session).status("k")
        await engine.dispose()
        return s.used
    assert asyncio.run(main()) == 4
