"""Finding and loading the extension library that ships inside this package.

The wheel carries ``quota.so`` (the same C sources as the repository's
``make``, compiled into a loadable SQLite extension, not linked against any
libsqlite3: it uses the SQLite of the program that loads it).  SQLite derives
the entry point from the file name (``quota`` -> ``sqlite3_quota_init``), so
the file keeps that name.

Python's ``sqlite3`` module can load extensions only when the interpreter was
built with ``--enable-loadable-sqlite-extensions``.  Debian's and Ubuntu's
``/usr/bin/python3`` are; pyenv's builds are not unless asked.  Without it
``Connection.enable_load_extension`` does not exist, and :func:`load` says so
with :class:`LoadError` rather than an ``AttributeError``.
"""
from __future__ import annotations

import os
import sqlite3
import sys
from typing import Any, TypeVar

__all__ = ["LoadError", "loadable_path", "load", "load_async"]

_LIBRARY_NAMES = ("quota.so", "quota.dylib", "quota.dll")

C = TypeVar("C")


class LoadError(RuntimeError):
    """The extension cannot be loaded into this connection (see the message)."""


def loadable_path() -> str:
    """The absolute path of the extension library inside this package.

    Give it to anything that loads SQLite extensions: ``conn.load_extension()``,
    the shell's ``.load``, ``SELECT load_extension(?)``.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    for name in _LIBRARY_NAMES:
        path = os.path.join(here, name)
        if os.path.exists(path):
            return path
    raise LoadError(
        "sqlite_quota: no extension library in %s (looked for %s); "
        "install the package from its wheel (make python builds it)"
        % (here, ", ".join(_LIBRARY_NAMES)))


def _no_loading_message(what: str) -> str:
    return (
        "%s cannot load SQLite extensions: the sqlite3 module of %s (Python %d.%d) "
        "was built without --enable-loadable-sqlite-extensions. Use a Python built "
        "with it, such as Debian's or Ubuntu's /usr/bin/python3 (apt-get install "
        "python3), or rebuild this one with it (pyenv: PYTHON_CONFIGURE_OPTS="
        "--enable-loadable-sqlite-extensions pyenv install VERSION)"
        % (what, sys.executable or "this interpreter", sys.version_info[0], sys.version_info[1]))


def load(conn: C) -> C:
    """Load the extension into ``conn`` and return ``conn``.

    ``conn`` is a ``sqlite3.Connection`` (also what SQLAlchemy's ``connect``
    event and Django's ``connection.connection`` give), or the connection
    SQLAlchemy's ``connect`` event gives for ``sqlite+aiosqlite`` (it has
    ``run_async``).  Extension loading is switched on only for the load and
    off again afterwards, so SQL run later on the connection cannot load
    libraries.  For an ``aiosqlite.Connection`` use ``await load_async(conn)``.
    """
    if hasattr(conn, "run_async") and hasattr(conn, "driver_connection"):
        # SQLAlchemy's adapted aiosqlite connection, inside a sync event hook.
        conn.run_async(load_async)
        return conn
    if type(conn).__module__.startswith("aiosqlite"):
        raise TypeError("sqlite_quota.load: an aiosqlite connection is loaded with "
                        "'await sqlite_quota.load_async(conn)'")
    enable = getattr(conn, "enable_load_extension", None)
    if enable is None:
        if isinstance(conn, sqlite3.Connection):
            raise LoadError(_no_loading_message("sqlite_quota.load"))
        raise TypeError(
            "sqlite_quota.load: expected a sqlite3.Connection, got %s.%s (for Django "
            "pass connection.connection; for SQLAlchemy load in a 'connect' event, which "
            "gives the DB-API connection)" % (type(conn).__module__, type(conn).__qualname__))
    path = loadable_path()
    enable(True)
    try:
        conn.load_extension(path)  # type: ignore[attr-defined]
    finally:
        enable(False)
    return conn


async def load_async(conn: Any) -> Any:
    """Load the extension into an ``aiosqlite.Connection`` and return it."""
    if not hasattr(sqlite3.Connection, "enable_load_extension"):
        raise LoadError(_no_loading_message("sqlite_quota.load_async"))
    path = loadable_path()
    await conn.enable_load_extension(True)
    try:
        await conn.load_extension(path)
    finally:
        await conn.enable_load_extension(False)
    return conn
