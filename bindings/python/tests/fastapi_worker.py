"""One of several processes sending requests to quota_app on one shared WAL file.

    python fastapi_worker.py DB GATE N WORKER

Builds the app on DB (its own pools, its own process), waits until the file
GATE exists so that every worker starts at once, then sends N pairs of
requests: a chat call on API key 1 (records 7 tokens) and a premium call of
user 'u1' (reserves 50,000, costs 40,000).  Prints one JSON line:
{"chat": {status: count}, "billable": {status: count}, "seconds": elapsed}.
"""
import json
import os
import sys
import time
from collections import Counter

from fastapi.testclient import TestClient

from quota_app import create_app, dispose


def main(db, gate, n, worker):
    app = create_app(db)
    codes = {"chat": Counter(), "billable": Counter()}
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.01)
        t0 = time.monotonic()
        for i in range(n):
            rid = "w%s-%d" % (worker, i)
            for kind, r in (
                ("chat", client.post("/v1/chat/completions", headers={"X-Api-Key-Id": "1"},
                                     json={"prompt": "one two three", "completion_tokens": 4,
                                           "request_id": rid})),
                ("billable", client.post("/v1/billable", json={
                    "user_id": "u1", "request_id": rid, "reserve_micros": 50_000,
                    "cost_micros": 40_000}))):
                codes[kind][str(r.status_code)] += 1
                if r.status_code not in (200, 402):
                    print(kind, r.status_code, r.text, file=sys.stderr)
    dispose(app)
    print(json.dumps({"chat": dict(codes["chat"]), "billable": dict(codes["billable"]),
                      "seconds": round(time.monotonic() - t0, 3)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
