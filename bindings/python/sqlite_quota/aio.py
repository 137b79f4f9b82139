"""AsyncQuota: the Quota helper for asyncio (aiosqlite, SQLAlchemy's AsyncConnection).

    import aiosqlite, sqlite_quota
    from sqlite_quota.aio import AsyncQuota

    db = await aiosqlite.connect("app.db", isolation_level=None)
    await sqlite_quota.load_async(db)
    q = AsyncQuota(db)
    async with q.reserve("sk-live-1", 4000, request_id="req-7f3a") as hold:
        tokens = await call_the_model()
        await hold.settle(tokens, meta={"model": "gpt-4o"})

``q.reserve(...)`` is both an async context manager (the reservation is made
on entry) and awaitable: ``hold = await q.reserve(...)`` gives the AsyncHold
to settle or release by hand.  Everything else is as in sqlite_quota.Quota.

``conn``: an aiosqlite.Connection, or a SQLAlchemy AsyncConnection or
AsyncSession (``sqlite+aiosqlite``).
"""
from __future__ import annotations

from types import TracebackType
from typing import Any, Awaitable, Callable, Generator, Optional, Sequence, Type

from ._quota import (
    SQL_CHECK, SQL_CONSUME, SQL_RECORD, SQL_RELEASE, SQL_RESERVE, SQL_SETTLE, SQL_STATUS,
    _DENIAL_TRIES, Key, Meta, QuotaExceeded, Status, Ttl, _int_or_none, _named, _named_params,
    meta_text, ttl_value,
)
from ._load import load_async

__all__ = ["AsyncQuota", "AsyncHold", "load_async"]

_Run = Callable[[str, Sequence[Any]], Awaitable[Any]]


def _aiosqlite_runner(conn: Any) -> _Run:
    async def run(sql: str, params: Sequence[Any]) -> Any:
        cur = await conn.execute(sql, tuple(params))
        try:
            rows = await cur.fetchall()
        finally:
            await cur.close()
        return rows[0][0]
    return run


def _sqlalchemy_runner(conn: Any) -> _Run:
    from sqlalchemy import text

    async def run(sql: str, params: Sequence[Any]) -> Any:
        result = await conn.execute(text(_named(sql)), _named_params(params))
        return result.scalar()
    return run


def _runner(conn: Any) -> _Run:
    module = type(conn).__module__
    if module.startswith("sqlalchemy.ext.asyncio"):
        return _sqlalchemy_runner(conn)
    if module.startswith("aiosqlite"):
        return _aiosqlite_runner(conn)
    raise TypeError("sqlite_quota.aio.AsyncQuota: expected an aiosqlite.Connection or a "
                    "SQLAlchemy AsyncConnection or AsyncSession, got %s.%s"
                    % (module, type(conn).__qualname__))


class AsyncHold:
    """A live reservation made by AsyncQuota.reserve(); see sqlite_quota.Hold."""

    def __init__(self, quota: "AsyncQuota", hold_id: int, key: Key, amount: int,
                 request_id: Optional[Key]) -> None:
        self._quota = quota
        self.id = hold_id
        self.key = key
        self.amount = amount
        self.request_id = request_id
        self.state = "live"
        self.charged: Optional[int] = None
        self.released: Optional[int] = None

    def __repr__(self) -> str:
        return "<AsyncHold %d %r %d %s>" % (self.id, self.key, self.amount, self.state)

    async def settle(self, amount: int, meta: Meta = None) -> Optional[int]:
        charged = await self._quota.settle(self.id, amount, meta)
        self.state = "settled"
        self.charged = charged
        return charged

    async def release(self) -> int:
        released = await self._quota.release(self.id)
        self.state = "released"
        self.released = released
        return released

    async def __aenter__(self) -> "AsyncHold":
        return self

    async def __aexit__(self, exc_type: Optional[Type[BaseException]],
                        exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        if self.state != "live":
            return
        if exc is None:
            await self.release()
            return
        try:
            await self.release()
        except Exception as e:          # keep the block's own exception
            note = "sqlite_quota: releasing hold %d failed too: %r" % (self.id, e)
            if hasattr(exc, "add_note"):
                exc.add_note(note)


class _Reservation:
    """What AsyncQuota.reserve() returns: awaitable, and an async context manager."""

    def __init__(self, quota: "AsyncQuota", key: Key, amount: int,
                 request_id: Optional[Key], ttl: Ttl) -> None:
        self._args = (quota, key, amount, request_id, ttl)
        self._hold: Optional[AsyncHold] = None

    async def _make(self) -> AsyncHold:
        quota, key, amount, request_id, ttl = self._args
        params = (key, amount, request_id, ttl_value(ttl))
        for _ in range(_DENIAL_TRIES):
            hold_id = await quota._run(SQL_RESERVE, params)
            if hold_id is not None:
                return AsyncHold(quota, hold_id, key, amount, request_id)
            status = await quota.status(key, amount)
            if not status.allowed:
                break
        raise QuotaExceeded(status)

    def __await__(self) -> Generator[Any, None, AsyncHold]:
        return self._make().__await__()

    async def __aenter__(self) -> AsyncHold:
        self._hold = await self._make()
        return self._hold

    async def __aexit__(self, exc_type: Optional[Type[BaseException]],
                        exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        assert self._hold is not None
        await self._hold.__aexit__(exc_type, exc, tb)


class AsyncQuota:
    """The quota functions of one asyncio connection; see sqlite_quota.Quota."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._run = _runner(conn)

    def reserve(self, key: Key, amount: int, request_id: Optional[Key] = None,
                ttl: Ttl = None) -> _Reservation:
        """``async with q.reserve(...) as hold`` or ``hold = await q.reserve(...)``."""
        return _Reservation(self, key, amount, request_id, ttl)

    async def settle(self, hold_id: int, amount: int, meta: Meta = None) -> Optional[int]:
        return _int_or_none(await self._run(SQL_SETTLE, (hold_id, amount, meta_text(meta))))

    async def release(self, hold_id: int) -> int:
        return int(await self._run(SQL_RELEASE, (hold_id,)))

    async def consume(self, key: Key, amount: int, request_id: Optional[Key] = None,
                      meta: Meta = None) -> int:
        params = (key, amount, request_id, meta_text(meta))
        for _ in range(_DENIAL_TRIES):
            ledger_id = await self._run(SQL_CONSUME, params)
            if ledger_id is not None:
                return int(ledger_id)
            status = await self.status(key, amount)
            if not status.allowed:
                break
        raise QuotaExceeded(status)

    async def record(self, key: Key, amount: int, request_id: Optional[Key] = None,
                     meta: Meta = None) -> Optional[int]:
        return _int_or_none(await self._run(SQL_RECORD, (key, amount, request_id, meta_text(meta))))

    async def check(self, key: Key, amount: int = 1) -> bool:
        return bool(await self._run(SQL_CHECK, (key, amount)))

    async def status(self, key: Key, amount: int = 1) -> Status:
        return Status.from_json(await self._run(SQL_STATUS, (key, amount)), amount)
