"""sqlite-quota for Python: the extension library, a loader, and a typed helper.

    import sqlite3, sqlite_quota

    conn = sqlite3.connect("app.db", isolation_level=None, timeout=5.0)
    sqlite_quota.load(conn)                  # or conn.load_extension(sqlite_quota.loadable_path())
    q = sqlite_quota.Quota(conn)
    with q.reserve("sk-live-1", 4000, request_id="req-7f3a") as hold:
        hold.settle(2712, meta={"model": "gpt-4o"})

``__version__`` is the version of the bundled extension (quota_version()).
The asyncio helper is in sqlite_quota.aio.  The SQL itself is documented in
the repository's doc/reference.md.
"""
from ._load import LoadError, load, load_async, loadable_path
from ._quota import (
    INSUFFICIENT_QUOTA, RATE_LIMIT_EXCEEDED, Hold, Quota, QuotaExceeded, Status,
)
from ._version import __version__

__all__ = [
    "__version__", "LoadError", "loadable_path", "load", "load_async",
    "Quota", "Hold", "Status", "QuotaExceeded", "INSUFFICIENT_QUOTA", "RATE_LIMIT_EXCEEDED",
]
