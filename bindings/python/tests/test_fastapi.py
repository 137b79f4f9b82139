"""quota_app (FastAPI) end to end with its TestClient, and from several processes at once.

Part 1 ports the tests of an LLM API server's per-API-key monthly token
quota; part 2 those of a research assistant's premium-call billing
(reserve, run, finalize, or release on failure).  The clock is pinned to
CLOCK (2026-01-31 10:00:00 UTC) unless a test moves it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from fastapi.testclient import TestClient

from conftest import CLOCK, connect
from quota_app import create_app, dispose

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def app(tmp_path):
    app = create_app(str(tmp_path / "service.db"), clock=CLOCK)
    app.state.db = str(tmp_path / "service.db")
    yield app
    dispose(app)


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture
def api_key(client):
    r = client.post("/users/admin/apikeys", json={"description": "quota_test"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def chat(client, key_id, prompt="hello there", tokens=10, request_id=None):
    return client.post("/v1/chat/completions", headers={"X-Api-Key-Id": str(key_id)},
                       json={"prompt": prompt, "completion_tokens": tokens,
                             "request_id": request_id})


def patch(client, key_id, **body):
    r = client.patch("/users/admin/apikeys/%d" % key_id, json=body)
    assert r.status_code == 200, r.text
    return r.json()


# --- 1. per-API-key monthly token quota -------------------------------------------

def test_new_key_is_unlimited(client, api_key):
    r = client.get("/users/admin/apikeys/%d" % api_key)
    assert r.json() == {"id": api_key, "description": "quota_test", "token_quota_monthly": None,
                        "tokens_used_this_month": 0, "quota_reset_at": "2026-02-01 00:00:00"}


def test_unlimited_key_is_never_refused(client, api_key):
    assert chat(client, api_key, tokens=999_999_990).status_code == 200
    assert chat(client, api_key).status_code == 200
    assert patch(client, api_key)["tokens_used_this_month"] == 1_000_000_004


def test_429_when_the_month_is_used_up(client, api_key):
    patch(client, api_key, token_quota_monthly=1000)
    assert chat(client, api_key, prompt="x", tokens=999).status_code == 200
    r = chat(client, api_key)
    assert r.status_code == 429
    assert "quota reached" in r.json()["detail"].lower()
    assert r.headers["retry-after"] == str(14 * 3600)      # until Feb 1st, 00:00


def test_the_counter_rolls_over_when_the_month_ends(app, client, api_key):
    patch(client, api_key, token_quota_monthly=10)
    assert chat(client, api_key, prompt="x", tokens=998).status_code == 200   # 999 > 10: over
    assert chat(client, api_key).status_code == 429
    app.state.clock = "2026-02-01 00:00:00"
    assert chat(client, api_key, prompt="x", tokens=2).status_code == 200
    key = client.get("/users/admin/apikeys/%d" % api_key).json()
    assert (key["tokens_used_this_month"], key["quota_reset_at"]) == (3, "2026-03-01 00:00:00")


def test_record_bumps_the_counter_and_is_idempotent(client, api_key):
    chat(client, api_key, prompt="a b", tokens=98, request_id="req-1")
    assert patch(client, api_key)["tokens_used_this_month"] == 100
    r = chat(client, api_key, prompt="a b", tokens=48, request_id="req-2")
    assert r.json()["usage"] == {"total_tokens": 50}
    chat(client, api_key, prompt="a b", tokens=48, request_id="req-2")    # a retry
    assert patch(client, api_key)["tokens_used_this_month"] == 150


def test_record_is_silent_for_a_key_deleted_during_the_call(app, client, api_key):
    app.state.before_model = lambda: client.delete("/users/admin/apikeys/%d" % api_key)
    r = chat(client, api_key)
    assert (r.status_code, r.json()["recorded"]) == (200, False)
    app.state.before_model = None
    assert chat(client, api_key).status_code == 401
    assert client.get("/users/admin/apikeys/%d" % api_key).status_code == 404


@pytest.mark.parametrize("at, first", [("2025-12-15", "2026-01-01 00:00:00"),
                                       ("2026-03-09 14:30", "2026-04-01 00:00:00")])
def test_first_of_next_month(client, at, first):
    r = client.get("/first-of-next-month", params={"at": at})
    assert r.json()["first_of_next_month"] == first


def test_patch_sets_and_clears_the_quota(client, api_key):
    body = patch(client, api_key, token_quota_monthly=5000, description="monthly-capped")
    assert (body["token_quota_monthly"], body["description"]) == (5000, "monthly-capped")
    assert patch(client, api_key, token_quota_monthly=0)["token_quota_monthly"] is None
    assert patch(client, api_key, token_quota_monthly=100)["token_quota_monthly"] == 100
    assert patch(client, api_key, token_quota_monthly=None)["token_quota_monthly"] is None


def test_patch_resets_usage(client, api_key):
    chat(client, api_key, prompt="x", tokens=12344)
    body = patch(client, api_key, reset_usage=True)
    assert (body["tokens_used_this_month"], body["quota_reset_at"]) == (0, "2026-02-01 00:00:00")


def test_another_users_key_is_not_found(client, api_key):
    assert client.get("/users/mallory/apikeys/%d" % api_key).status_code == 404
    assert client.patch("/users/mallory/apikeys/%d" % api_key,
                        json={"reset_usage": True}).status_code == 404


def _two_in_flight(app, client, send):
    """Send two requests; the first waits just before its model call until the
    second has either reached that point too or been answered."""
    barrier = threading.Barrier(2)

    def wait():
        try:
            barrier.wait(timeout=10)
        except threading.BrokenBarrierError:
            pass

    app.state.before_model = wait
    results = [None, None]
    t1 = threading.Thread(target=lambda: results.__setitem__(0, send(client, 1)))
    t1.start()
    deadline = time.monotonic() + 10
    while barrier.n_waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    t2 = threading.Thread(target=lambda: results.__setitem__(1, send(client, 2)))
    t2.start()
    t2.join(10)
    barrier.abort()                 # let the first go on if the second never came
    t1.join(10)
    app.state.before_model = None
    return [r.status_code for r in results]


def test_wrong_way_check_then_record_lets_concurrent_calls_overspend(app, client, api_key):
    # The original's scheme: both requests pass the check before either records.
    patch(client, api_key, token_quota_monthly=1000)
    codes = _two_in_flight(app, client, lambda c, i: chat(c, api_key, prompt="x", tokens=599))
    assert codes == [200, 200]
    key = client.get("/users/admin/apikeys/%d" % api_key).json()
    assert key["tokens_used_this_month"] == 1200 > key["token_quota_monthly"]
    conn = connect(app.state.db)
    assert conn.execute("SELECT over FROM quota_ledger ORDER BY id").fetchall() == [(0,), (1,)]


def test_right_way_reserve_first_cannot_overspend(app, client):
    client.post("/users/u1/billing", json={"premium_limit_micros": 1000})
    codes = _two_in_flight(app, client, lambda c, i: c.post("/v1/billable", json={
        "user_id": "u1", "request_id": "r%d" % i, "reserve_micros": 600, "cost_micros": 600}))
    assert codes == [200, 402]
    billing = client.get("/users/u1/billing").json()
    assert (billing["used_micros"], billing["reserved_micros"]) == (600, 0)


# --- 2. premium calls: reserve, run, finalize or release --------------------------------

@pytest.fixture
def billing(client):
    r = client.post("/users/u1/billing", json={"premium_limit_micros": 5_000_000})
    assert r.status_code == 201
    return client


def billable(client, **body):
    body.setdefault("user_id", "u1")
    return client.post("/v1/billable", json=body)


def account(client):
    return client.get("/users/u1/billing").json()


def test_free_path_skips_reserve_but_writes_an_audit_row(app, billing):
    r = billable(billing, billing_tier="free", request_id="f-1", cost_micros=37_000,
                 call_details={"podcast_id": 7, "title": "Test Podcast"},
                 usage_type="podcast_generation", base_model="openrouter/some-free-model")
    assert r.status_code == 200
    a = account(billing)
    assert (a["used_micros"], a["reserved_micros"]) == (0, 0)
    assert [(x["key"], x["amount"], x["request_id"]) for x in a["audit"]] == \
        [("free:u1", 37_000, "f-1")]
    assert json.loads(a["audit"][0]["meta"]) == {
        "details": {"podcast_id": 7, "title": "Test Podcast"},
        "model": "openrouter/some-free-model", "usage_type": "podcast_generation"}


def test_premium_denied_is_a_402_and_runs_nothing(app, billing):
    assert billable(billing, request_id="big", reserve_micros=4_500_000,
                    cost_micros=4_500_000).status_code == 200
    calls = app.state.model_calls
    r = billable(billing, request_id="denied", reserve_micros=1_000_000,
                 usage_type="video_presentation_generation")
    assert r.status_code == 402
    assert r.json()["detail"] == {"code": "insufficient_quota",
                                  "usage_type": "video_presentation_generation",
                                  "used_micros": 4_500_000, "limit_micros": 5_000_000,
                                  "remaining_micros": 500_000}
    assert app.state.model_calls == calls                 # the call never ran
    a = account(billing)
    assert a["reserved_micros"] == 0 and len(a["audit"]) == 1   # no audit row for it


def test_premium_success_finalizes_with_the_actual_cost(billing):
    r = billable(billing, request_id="ok-1", reserve_micros=50_000, cost_micros=40_000)
    assert r.json() == {"request_id": "ok-1", "cost_micros": 40_000}
    a = account(billing)
    assert (a["used_micros"], a["reserved_micros"], a["remaining_micros"]) == \
        (40_000, 0, 4_960_000)
    assert [(x["key"], x["amount"]) for x in a["audit"]] == [("premium:u1", 40_000)]
    assert json.loads(a["audit"][0]["meta"])["usage_type"] == "image_generation"


def test_premium_failure_releases_the_reservation(billing):
    r = billable(billing, request_id="fail-1", provider_error=True)
    assert (r.status_code, r.json()) == (502, {"detail": "OpenRouter 503"})
    a = account(billing)
    assert (a["used_micros"], a["reserved_micros"], a["audit"]) == (0, 0, [])


def test_premium_finalize_failure_propagates_and_releases(billing):
    r = billable(billing, request_id="bad-cost", cost_micros=-1)   # settle refuses it
    assert r.status_code == 500
    assert "quota_settle: amount must be a non-negative integer" in r.json()["detail"]
    a = account(billing)
    assert (a["used_micros"], a["reserved_micros"], a["audit"]) == (0, 0, [])


def test_bookkeeping_is_not_undone_by_the_callers_transaction(app, billing):
    r = billable(billing, request_id="then-fail", fail_after_billing=True)
    assert (r.status_code, r.json()["detail"]) == (500, "storing the generation failed")
    assert account(billing)["used_micros"] == 40_000
    conn = connect(app.state.db)
    assert conn.execute("SELECT count(*) FROM generations").fetchone() == (0,)


def test_a_retried_request_is_not_charged_twice(billing):
    for _ in range(2):
        assert billable(billing, request_id="same").status_code == 200
    assert account(billing)["used_micros"] == 40_000


# --- several processes on one WAL file --------------------------------------------------

PROCESSES, PAIRS = 4, 10


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    """PROCESSES worker processes, each sending PAIRS chat and premium calls."""
    db = str(tmp_path_factory.mktemp("workers") / "service.db")
    app = create_app(db)
    with TestClient(app) as c:
        assert c.post("/users/admin/apikeys", json={}).json()["id"] == 1
        c.post("/users/u1/billing", json={"premium_limit_micros": 1_000_000})
    dispose(app)
    gate = db + ".go"
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "fastapi_worker.py"),
                               db, gate, str(PAIRS), str(w)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for w in range(PROCESSES)]
    time.sleep(0.3)
    open(gate, "w").close()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        results.append((p.returncode, out, err))
    return db, results


def totals(results, kind):
    codes = {}
    for rc, out, err in results:
        assert (rc, err) == (0, ""), err
        for code, n in json.loads(out.strip().splitlines()[-1])[kind].items():
            codes[code] = codes.get(code, 0) + n
    return codes


def test_processes_recording_lose_no_charge(workers):
    db, results = workers
    n = PROCESSES * PAIRS
    assert totals(results, "chat") == {"200": n}
    conn = connect(db)
    assert conn.execute("SELECT used FROM quota WHERE key = 'apikey:1'").fetchone() == (n * 7,)
    assert conn.execute("SELECT count(*), sum(amount) FROM quota_ledger "
                        "WHERE key = 'apikey:1'").fetchone() == (n, n * 7)
    assert conn.execute("SELECT quota_integrity()").fetchone() == ("ok",)


def test_processes_reserving_never_overspend(workers):
    # 40 calls, each reserving 50,000 and costing 40,000, against 1,000,000.
    # One at a time, 24 would pass (a call is let in while used <= 950,000).
    # At most 4 holds are in flight, so a call is refused only once used
    # exceeds 800,000: at least 21 pass, whatever the interleaving.
    db, results = workers
    codes = totals(results, "billable")
    assert set(codes) == {"200", "402"} and sum(codes.values()) == PROCESSES * PAIRS
    ok = codes["200"]
    assert 21 <= ok <= 24
    conn = connect(db)
    used_, reserved = conn.execute(
        "SELECT used, reserved FROM quota WHERE key = 'premium:u1'").fetchone()
    assert used_ == 40_000 * ok <= 1_000_000 and reserved == 0
    assert conn.execute("SELECT count(*), sum(over) FROM quota_ledger WHERE key = 'premium:u1'"
                        ).fetchone() == (ok, 0)
    assert conn.execute("SELECT count(*) FROM generations").fetchone() == (ok,)
    assert conn.execute("SELECT quota_integrity()").fetchone() == ("ok",)
