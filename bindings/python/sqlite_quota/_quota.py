"""Quota: the reserve / settle / release pattern, typed, over any SQLite connection.

    q = Quota(conn)
    with q.reserve("sk-live-1", 4000, request_id="req-7f3a") as hold:
        tokens = call_the_model()            # an exception here releases the hold
        hold.settle(tokens, meta={"model": "gpt-4o"})
    # leaving the block without settle() releases the hold too

    q.consume("user:42:remix", 1)            # one step; QuotaExceeded when denied
    q.status("user:42:remix").remaining

Each method runs one quota function in a statement of its own, as the
extension wants (see doc/transactions.md in the repository), and reads its
single row to the end so that no statement is left reading.  Where the call
commits is the connection's business: outside a transaction it commits by
itself; inside one (BEGIN IMMEDIATE, Django's atomic(), a SQLAlchemy
transaction that really began) it is part of it.

A denied reserve or consume raises QuotaExceeded with quota_status()'s
numbers, read right after the denial: code ('insufficient_quota' for a
balance that does not reset, 'rate_limit_exceeded' for a period or window
that does), retry_after and limited_by, ready for an HTTP 429 or 402.

How statements are run depends on what ``conn`` is (see _runner()):
a DB-API connection such as sqlite3.Connection (``?`` parameters), a Django
connection (``%s`` parameters, through its cursor), a SQLAlchemy Connection
or Session (``text()`` with named parameters).
"""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Type, Union

__all__ = [
    "INSUFFICIENT_QUOTA", "RATE_LIMIT_EXCEEDED", "Status", "QuotaExceeded",
    "Quota", "Hold", "Key", "Meta", "Ttl",
]

INSUFFICIENT_QUOTA = "insufficient_quota"
RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"

Key = Union[str, int]
Meta = Union[str, Mapping[str, Any], Sequence[Any], None]
Ttl = Union[int, str, datetime.timedelta, None]

# How often a denied call is tried again when quota_status() read right
# after the denial says the amount fits (room freed in between by another
# connection, a hold expiring or a window moving on).
_DENIAL_TRIES = 3

SQL_RESERVE = "SELECT quota_reserve(?, ?, ?, ?)"
SQL_SETTLE = "SELECT quota_settle(?, ?, ?)"
SQL_RELEASE = "SELECT quota_release(?)"
SQL_CONSUME = "SELECT quota_consume(?, ?, ?, ?)"
SQL_RECORD = "SELECT quota_record(?, ?, ?, ?)"
SQL_CHECK = "SELECT quota_check(?, ?)"
SQL_STATUS = "SELECT quota_status(?, ?)"


@dataclass(frozen=True)
class Status:
    """quota_status(key, amount): would ``amount`` be granted now, and the numbers.

    ``limited_by`` is the level of the key's parent chain whose numbers these
    are: the one that denies, or when allowed the one with the least room.
    ``raw`` is the whole JSON object (later versions may add fields).
    """

    key: str
    amount: int
    allowed: bool
    code: Optional[str]
    cap: Optional[int]
    used: int
    reserved: int
    remaining: Optional[int]
    resets_at: Optional[str]
    retry_after: Optional[int]
    limited_by: str
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, text: str, amount: int) -> "Status":
        d = json.loads(text)
        return cls(key=d["key"], amount=amount, allowed=bool(d["allowed"]), code=d.get("code"),
                   cap=d.get("cap"), used=d.get("used", 0), reserved=d.get("reserved", 0),
                   remaining=d.get("remaining"), resets_at=d.get("resets_at"),
                   retry_after=d.get("retry_after"), limited_by=d.get("limited_by", d["key"]),
                   raw=d)


class QuotaExceeded(Exception):
    """A reserve or consume was denied: nothing was held or charged.

    ``code`` is 'insufficient_quota' (a balance that will not reset: a 402, or
    OpenAI-style a 429 with no Retry-After) or 'rate_limit_exceeded' (a period
    or window that resets: a 429 with Retry-After).  ``retry_after`` is the
    whole seconds until the amount fits again (None when it never will by
    itself).  ``status`` has every number.
    """

    def __init__(self, status: Status) -> None:
        self.status = status
        self.key = status.key
        self.amount = status.amount
        self.limited_by = status.limited_by
        if status.allowed:
            # Denied, but room appeared before quota_status() ran, on every
            # try: the caller may simply try again in a moment.
            self.code = RATE_LIMIT_EXCEEDED
            self.retry_after: Optional[int] = 1
        else:
            self.code = status.code or RATE_LIMIT_EXCEEDED
            self.retry_after = status.retry_after
        msg = "%s: %s: %d asked, %s remaining" % (
            self.limited_by, self.code, self.amount,
            "unlimited" if status.remaining is None else status.remaining)
        if self.retry_after is not None:
            msg += ", retry after %d s" % self.retry_after
        super().__init__(msg)

    def __reduce__(self) -> Any:          # picklable (multiprocessing, task queues)
        return (QuotaExceeded, (self.status,))

    @property
    def http_status(self) -> int:
        """402 Payment Required for a balance, 429 Too Many Requests for a window."""
        return 402 if self.code == INSUFFICIENT_QUOTA else 429

    def headers(self) -> Dict[str, str]:
        """``{"Retry-After": "N"}`` when there is a time to wait, else ``{}``."""
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(self.retry_after)}

    def to_dict(self) -> Dict[str, Any]:
        """A JSON body for the error response."""
        s = self.status
        return {"error": {"code": self.code, "message": str(self), "key": self.key,
                          "limited_by": self.limited_by, "amount": self.amount,
                          "cap": s.cap, "used": s.used, "reserved": s.reserved,
                          "remaining": s.remaining, "resets_at": s.resets_at,
                          "retry_after": self.retry_after}}


def meta_text(meta: Meta) -> Optional[str]:
    """A ledger meta value: text as given, anything else as compact JSON."""
    if meta is None or isinstance(meta, str):
        return meta
    return json.dumps(meta, separators=(",", ":"), sort_keys=True)


def _int_or_none(value: Any) -> Optional[int]:
    return None if value is None else int(value)


def ttl_value(ttl: Ttl) -> Union[int, str, None]:
    if isinstance(ttl, datetime.timedelta):
        return int(ttl.total_seconds())
    return ttl


# ---------------------------------------------------------------------------
# Runners: run one "SELECT quota_...(?, ...)" and return its single value.

def _named(sql: str) -> str:
    parts = sql.split("?")
    out = [parts[0]]
    for i, rest in enumerate(parts[1:]):
        out.append(":p%d%s" % (i, rest))
    return "".join(out)


def _named_params(params: Sequence[Any]) -> Dict[str, Any]:
    return {"p%d" % i: v for i, v in enumerate(params)}


def _dbapi_runner(conn: Any) -> Callable[[str, Sequence[Any]], Any]:
    def run(sql: str, params: Sequence[Any]) -> Any:
        cur = conn.execute(sql, tuple(params))
        try:
            rows = cur.fetchall()
        finally:
            cur.close()
        return rows[0][0]
    return run


def _cursor_runner(conn: Any) -> Callable[[str, Sequence[Any]], Any]:
    # Django: its cursor wrapper takes %s and converts it to ? for sqlite3.
    def run(sql: str, params: Sequence[Any]) -> Any:
        with conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), list(params))
            rows = cur.fetchall()
        return rows[0][0]
    return run


def _sqlalchemy_runner(conn: Any) -> Callable[[str, Sequence[Any]], Any]:
    from sqlalchemy import text

    def run(sql: str, params: Sequence[Any]) -> Any:
        return conn.execute(text(_named(sql)), _named_params(params)).scalar()
    return run


def _runner(conn: Any) -> Callable[[str, Sequence[Any]], Any]:
    module = type(conn).__module__
    if module.startswith("sqlalchemy.ext.asyncio") or module.startswith("aiosqlite"):
        raise TypeError("sqlite_quota.Quota: %s is asynchronous; use sqlite_quota.aio.AsyncQuota"
                        % type(conn).__qualname__)
    if module.startswith("sqlalchemy."):
        return _sqlalchemy_runner(conn)
    if hasattr(conn, "ensure_connection") and hasattr(conn, "cursor"):
        return _cursor_runner(conn)
    if hasattr(conn, "execute"):
        return _dbapi_runner(conn)
    raise TypeError("sqlite_quota.Quota: cannot run SQL on %s.%s: expected a sqlite3.Connection, "
                    "a Django connection or a SQLAlchemy Connection or Session"
                    % (module, type(conn).__qualname__))


# ---------------------------------------------------------------------------

class Hold:
    """A live reservation made by Quota.reserve().

    ``settle(actual)`` charges what the work cost and ends the hold;
    ``release()`` ends it without charge.  Used as a context manager, the hold
    is released when the block raises (and the exception goes on) or ends
    without settle().  ``state`` is 'live', 'settled' or 'released'.
    """

    def __init__(self, quota: "Quota", hold_id: int, key: Key, amount: int,
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
        return "<Hold %d %r %d %s>" % (self.id, self.key, self.amount, self.state)

    def settle(self, amount: int, meta: Meta = None) -> Optional[int]:
        """Charge ``amount`` (less or more than held), end the hold; the units charged.

        None when the key was deleted while the work ran (nothing is charged).
        """
        charged = self._quota.settle(self.id, amount, meta)
        self.state = "settled"
        self.charged = charged
        return charged

    def release(self) -> int:
        """End the hold without charge; the units released (0 if it had expired)."""
        released = self._quota.release(self.id)
        self.state = "released"
        self.released = released
        return released

    def __enter__(self) -> "Hold":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if self.state != "live":
            return
        if exc is None:
            self.release()
            return
        try:
            self.release()
        except Exception as e:          # keep the block's own exception
            note = "sqlite_quota: releasing hold %d failed too: %r" % (self.id, e)
            if hasattr(exc, "add_note"):
                exc.add_note(note)


class Quota:
    """The quota functions of one connection.

    ``conn``: a sqlite3.Connection with the extension loaded, a Django
    connection (``django.db.connection``, ``connections["alias"]``), or a
    SQLAlchemy Connection or Session.
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._run = _runner(conn)

    def _one(self, sql: str, params: Sequence[Any]) -> Any:
        return self._run(sql, params)

    def reserve(self, key: Key, amount: int, request_id: Optional[Key] = None,
                ttl: Ttl = None) -> Hold:
        """Hold ``amount`` units of ``key`` (and its ancestors); QuotaExceeded when denied.

        ``request_id`` names this attempt: the same id returns the same hold
        (even one released since), so a retry after a failure needs a new id.
        ``ttl``: seconds, a duration text ('2 minutes') or a timedelta; None
        is the table's hold_ttl.
        """
        params = (key, amount, request_id, ttl_value(ttl))
        for _ in range(_DENIAL_TRIES):
            hold_id = self._one(SQL_RESERVE, params)
            if hold_id is not None:
                return Hold(self, hold_id, key, amount, request_id)
            status = self.status(key, amount)
            if not status.allowed:
                break
        raise QuotaExceeded(status)

    def settle(self, hold_id: int, amount: int, meta: Meta = None) -> Optional[int]:
        """quota_settle(): the units charged (None: the key was deleted)."""
        return _int_or_none(self._one(SQL_SETTLE, (hold_id, amount, meta_text(meta))))

    def release(self, hold_id: int) -> int:
        """quota_release(): the units released."""
        return int(self._one(SQL_RELEASE, (hold_id,)))

    def consume(self, key: Key, amount: int, request_id: Optional[Key] = None,
                meta: Meta = None) -> int:
        """Reserve and settle in one step; the ledger id.  QuotaExceeded when denied."""
        params = (key, amount, request_id, meta_text(meta))
        for _ in range(_DENIAL_TRIES):
            ledger_id = self._one(SQL_CONSUME, params)
            if ledger_id is not None:
                return int(ledger_id)
            status = self.status(key, amount)
            if not status.allowed:
                break
        raise QuotaExceeded(status)

    def record(self, key: Key, amount: int, request_id: Optional[Key] = None,
               meta: Meta = None) -> Optional[int]:
        """Charge work already done, even past the cap; the ledger id (None: no such key)."""
        return _int_or_none(self._one(SQL_RECORD, (key, amount, request_id, meta_text(meta))))

    def check(self, key: Key, amount: int = 1) -> bool:
        """Would ``amount`` be granted now?  Changes nothing."""
        return bool(self._one(SQL_CHECK, (key, amount)))

    def status(self, key: Key, amount: int = 1) -> Status:
        """quota_status(key, amount) as a Status.  Changes nothing."""
        return Status.from_json(self._one(SQL_STATUS, (key, amount)), amount)
