"""Django 5: loading in connection_created, autocommit, atomic(), transaction_mode, ATOMIC_REQUESTS.

Django runs its SQLite connections with isolation_level=None (autocommit)
and starts atomic() blocks with BEGIN, or BEGIN IMMEDIATE with
OPTIONS = {"transaction_mode": "IMMEDIATE"} (Django 5.1).  Three aliases on
one database file: "default" (deferred, Django's default), "deferred_req"
(deferred, ATOMIC_REQUESTS) and "immediate" (IMMEDIATE, ATOMIC_REQUESTS).
This module is also the test client's URLconf.
"""
from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import threading
import time

import django
import pytest
from django.conf import settings

from conftest import connect, make_store, used
from sqlite_quota import Quota, QuotaExceeded

DB_DIR = tempfile.mkdtemp(prefix="quota-django-")    # under $TMPDIR (python.test: build/)
atexit.register(shutil.rmtree, DB_DIR, True)
DB = os.path.join(DB_DIR, "django.db")
DB_DEFERRED = os.path.join(DB_DIR, "deferred.db")


def _database(name=DB, **extra):
    d = {"ENGINE": "django.db.backends.sqlite3", "NAME": name, "OPTIONS": {"timeout": 5}}
    d.update(extra)
    return d


if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="test",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        USE_TZ=True,
        DATABASES={
            "default": _database(),
            "deferred_req": _database(DB_DEFERRED, ATOMIC_REQUESTS=True),
            "immediate": _database(ATOMIC_REQUESTS=True,
                                   OPTIONS={"timeout": 5, "transaction_mode": "IMMEDIATE"}),
        },
    )
    django.setup()

from django.db import OperationalError, connections, transaction  # noqa: E402
from django.db.backends.signals import connection_created  # noqa: E402
from django.dispatch import receiver  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import path  # noqa: E402

import sqlite_quota  # noqa: E402


@receiver(connection_created)
def load_quota(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        sqlite_quota.load(connection.connection)


# --- views -----------------------------------------------------------------------

# A test sets this to run something in the middle of a request: after the
# view has read the quota table, before its quota call.
BETWEEN = {"hook": None}


def charge(request, alias):
    """Read the key's usage, then charge it: 402/429 when denied."""
    conn = connections[alias]
    with conn.cursor() as cur:
        cur.execute("SELECT used FROM quota WHERE key = %s", ["k"])
        before = cur.fetchone()[0]
    if BETWEEN["hook"]:
        BETWEEN["hook"]()
    try:
        ledger_id = Quota(conn).consume("k", int(request.GET.get("n", "1")))
    except QuotaExceeded as e:
        return JsonResponse(e.to_dict(), status=e.http_status, headers=e.headers())
    if request.GET.get("fail"):
        raise RuntimeError("the view fails after charging")
    return JsonResponse({"ledger_id": ledger_id, "used_before": before})


# The slow work of generate(): it lasts until the test has done what it
# wanted to do meanwhile.
SLOW = {"started": threading.Event(), "finish": threading.Event()}


def generate(request):
    """Reserve, do slow work (stands for a model call), settle."""
    with Quota(connections["immediate"]).reserve("k", 5) as hold:
        SLOW["started"].set()
        SLOW["finish"].wait(10)
        hold.settle(4)
    return JsonResponse({"hold": hold.id, "charged": hold.charged})


@transaction.non_atomic_requests(using="immediate")   # marks the function itself
def generate_non_atomic(request):
    return generate(request)


urlpatterns = [
    path("charge/<str:alias>", charge),
    path("generate", generate),
    path("generate-non-atomic", generate_non_atomic),
]


@pytest.fixture
def store():
    for name in connections:
        connections[name].close()
    for db in (DB, DB_DEFERRED):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
        make_store(db, {"k": 10})
    BETWEEN["hook"] = None
    yield DB
    BETWEEN["hook"] = None
    for name in connections:
        connections[name].close()


def other_writer(amount=1, db=DB, timeout=5.0):
    conn = connect(db, timeout=timeout)
    try:
        return Quota(conn).consume("k", amount)
    finally:
        conn.close()


def test_connection_created_loads_the_extension(store):
    with connections["default"].cursor() as cur:
        cur.execute("SELECT quota_version()")
        assert cur.fetchone()[0] == sqlite_quota.__version__


def test_outside_atomic_each_call_commits(store):
    q = Quota(connections["default"])
    assert q.consume("k", 3) == 1
    assert used(DB, "k") == (3, 0)
    status = q.status("k")
    assert (status.used, status.remaining) == (3, 7)


def test_inside_atomic_the_call_is_undone_with_the_block(store):
    q = Quota(connections["default"])
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            q.consume("k", 3)
            assert used(DB, "k") == (0, 0)
            raise RuntimeError("rolled back")
    assert used(DB, "k") == (0, 0)
    with transaction.atomic():
        with q.reserve("k", 5) as hold:
            hold.settle(4)
    assert used(DB, "k") == (4, 0)


def test_a_failed_call_inside_atomic_leaves_the_block_usable(store):
    q = Quota(connections["default"])
    with transaction.atomic():
        q.consume("k", 2)
        with pytest.raises(OperationalError, match="no such quota key"):
            q.consume("nobody", 1)
        q.consume("k", 3)                  # the block goes on
    assert used(DB, "k") == (5, 0)


def test_wrong_way_default_mode_read_then_call_is_busy_at_once(store):
    q = Quota(connections["default"])
    with transaction.atomic():             # BEGIN (deferred)
        assert q.status("k").used == 0     # a read: the transaction has a snapshot
        other_writer()
        t0 = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked") as e:
            q.consume("k", 2)
        assert time.monotonic() - t0 < 1.0       # timeout 5 s not used
        assert e.value.__cause__.sqlite_errorcode == 517
        transaction.set_rollback(True)
    assert used(DB, "k") == (1, 0)


def test_right_way_transaction_mode_immediate(store):
    q = Quota(connections["immediate"])
    done = {}

    def writer():
        done["ledger"] = other_writer()
        done["at"] = time.monotonic()

    with transaction.atomic(using="immediate"):     # BEGIN IMMEDIATE
        assert q.status("k").used == 0
        t = threading.Thread(target=writer)
        t.start()
        time.sleep(0.3)
        assert "at" not in done
        q.consume("k", 2)
        committed = time.monotonic()
    t.join(10)
    assert done["at"] >= committed
    assert used(DB, "k") == (3, 0)


def test_atomic_requests_a_failing_view_undoes_its_charge(store):
    client = Client(raise_request_exception=False)
    r = client.get("/charge/immediate?n=3&fail=1")
    assert r.status_code == 500
    assert used(DB, "k") == (0, 0)
    r = client.get("/charge/immediate?n=3")
    assert (r.status_code, r.json()["ledger_id"]) == (200, 1)
    assert used(DB, "k") == (3, 0)


def test_atomic_requests_denial_is_a_402(store):
    client = Client()
    assert client.get("/charge/immediate?n=10").status_code == 200
    r = client.get("/charge/immediate?n=1")
    assert r.status_code == 402
    assert r.json()["error"]["code"] == "insufficient_quota"
    assert "Retry-After" not in r.headers


def test_wrong_way_atomic_requests_deferred_view_fails_under_a_concurrent_writer(store):
    BETWEEN["hook"] = lambda: other_writer(db=DB_DEFERRED)   # commits after the view's read
    client = Client(raise_request_exception=False)
    t0 = time.monotonic()
    r = client.get("/charge/deferred_req?n=2")
    assert r.status_code == 500
    assert time.monotonic() - t0 < 2.0
    assert used(DB_DEFERRED, "k") == (1, 0)      # only the other writer's charge


def test_right_way_atomic_requests_immediate_view_under_a_concurrent_writer(store):
    done = {}

    def start_writer():
        def writer():
            done["ledger"] = other_writer()
            done["at"] = time.monotonic()
        t = threading.Thread(target=writer)
        t.start()
        done["thread"] = t
        time.sleep(0.3)
        done["waiting"] = "at" not in done  # it waits for the request's write lock

    BETWEEN["hook"] = start_writer
    r = Client().get("/charge/immediate?n=2")
    done["thread"].join(10)
    assert r.status_code == 200 and r.json()["used_before"] == 0
    assert done["waiting"] and done["ledger"] == 2    # it went through after the request
    assert used(DB, "k") == (3, 0)


def test_the_sqlite3_connection_is_in_autocommit(store):
    conn = connections["default"]
    conn.ensure_connection()
    assert isinstance(conn.connection, sqlite3.Connection)
    assert conn.connection.isolation_level is None


def _during_request(url):
    """GET url in a thread; during its slow work another connection (timeout 0.2 s) charges 1."""
    SLOW["started"].clear()
    SLOW["finish"].clear()
    result = {}
    t = threading.Thread(target=lambda: result.update(r=Client().get(url)))
    t.start()
    assert SLOW["started"].wait(10)
    try:
        result["other"] = other_writer(timeout=0.2)
    except sqlite3.OperationalError as e:
        result["other"] = str(e)
    SLOW["finish"].set()
    t.join(10)
    return result


def test_wrong_way_atomic_requests_immediate_holds_the_lock_through_slow_work(store):
    result = _during_request("/generate")
    assert result["r"].status_code == 200
    assert result["other"] == "quota_consume: database is locked"
    assert used(DB, "k") == (4, 0)


def test_right_way_slow_work_outside_the_request_transaction(store):
    result = _during_request("/generate-non-atomic")
    assert result["r"].json() == {"hold": 1, "charged": 4}
    assert result["other"] == 1             # went through while the view worked
    assert used(DB, "k") == (5, 0)
