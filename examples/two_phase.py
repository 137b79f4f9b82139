#!/usr/bin/python3
"""Two-phase quota around a call whose cost is known only afterwards.

    /usr/bin/python3 examples/two_phase.py [DATABASE [EXTENSION]]

DATABASE defaults to an in-memory one, EXTENSION to ./quota (always a path:
a bare name goes through the dynamic loader's search path).  The program
creates the quota table and one key if they are missing, then serves four
requests against a fake model:

  1. answered: 400 units reserved, 271 charged, the rest released;
  2. the model call fails: the reservation is released, nothing is charged;
  3. the same request retried: a new attempt, a new reservation, charged;
  4. too big for what is left: denied, with the numbers for an HTTP 429.

The pattern is metered() below: reserve the estimate (NULL means denied),
make the call, and in `finally` settle the actual cost when the call
returned, or release the hold when it raised.  A process that dies between
the two leaves a hold that stops counting when its ttl runs out.

The request id given to quota_reserve names one attempt.  Reserving again
with the same id returns the same hold, even one that was released, and
settling a released hold is an error; so a retry after a failure reserves
with a new id (here the request id and the attempt number).

Debian's /usr/bin/python3 has enable_load_extension; some other builds of
Python do not.  The connection is opened with isolation_level=None so that
each quota call commits by itself (see doc/clients.md).  QUOTA_CLOCK in the
environment pins the extension's clock (the test suite uses it).
"""
import json
import os
import sqlite3
import sys


class QuotaExceeded(Exception):
    """A reservation was denied; .status is quota_status() as a dict."""

    def __init__(self, status):
        super().__init__('%s: %s' % (status['key'], status['code']))
        self.status = status


def open_db(path, extension='./quota'):
    db = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    db.enable_load_extension(True)
    db.load_extension(extension)
    db.enable_load_extension(False)
    if os.environ.get('QUOTA_CLOCK'):
        db.execute('SELECT quota_clock(?)', (os.environ['QUOTA_CLOCK'],))
    return db


def metered(db, key, estimate, attempt_id, work):
    """Run work() under a reservation of `estimate` units of `key`.

    work() returns (result, actual_cost, meta).  Returns (result, charged).
    Raises QuotaExceeded when the reservation is denied, and whatever work()
    raises after releasing the reservation.
    """
    hold = db.execute('SELECT quota_reserve(?, ?, ?)',
                      (key, estimate, attempt_id)).fetchone()[0]
    if hold is None:
        status = db.execute('SELECT quota_status(?, ?)', (key, estimate)).fetchone()[0]
        raise QuotaExceeded(json.loads(status))
    done = None
    try:
        done = work()
    finally:
        if done is None:
            # The call raised (or was interrupted): give the units back.
            db.execute('SELECT quota_release(?)', (hold,))
    result, cost, meta = done
    charged = db.execute('SELECT quota_settle(?, ?, ?)',
                         (hold, cost, json.dumps(meta))).fetchone()[0]
    return result, charged


def fake_model(prompt, tokens, fail=False):
    """Stands for the expensive call: returns (answer, cost, meta)."""
    def call():
        if fail:
            raise ConnectionError('upstream timed out')
        return 'answer to %r' % prompt, tokens, {'model': 'demo-1', 'tokens': tokens}
    return call


def serve(db, key, request_id, estimate, work, attempt=1):
    try:
        result, charged = metered(db, key, estimate, '%s/%d' % (request_id, attempt), work)
        print('%s attempt %d: %s; reserved %d, charged %d'
              % (request_id, attempt, result, estimate, charged))
    except QuotaExceeded as e:
        s = e.status
        print('%s attempt %d: denied (%s): %d asked, %d remaining, retry after %s s'
              % (request_id, attempt, s['code'], estimate, s['remaining'], s['retry_after']))
    except ConnectionError as e:
        print('%s attempt %d: failed (%s); reservation released' % (request_id, attempt, e))


def main(argv):
    path = argv[1] if len(argv) > 1 else ':memory:'
    ext = argv[2] if len(argv) > 2 else './quota'
    db = open_db(path, ext)
    if db.execute("SELECT 1 FROM sqlite_schema WHERE name = 'quota'").fetchone() is None:
        db.execute('CREATE VIRTUAL TABLE quota USING quota')
    key = 'user:42'
    db.execute("INSERT OR IGNORE INTO quota(key, cap, period) VALUES (?, 1000, 'day')", (key,))

    serve(db, key, 'req-1', 400, fake_model('hello', 271))
    serve(db, key, 'req-2', 400, fake_model('again', 0, fail=True))
    serve(db, key, 'req-2', 400, fake_model('again', 180), attempt=2)
    serve(db, key, 'req-3', 900, fake_model('a novel', 850))

    used, reserved, remaining = db.execute(
        'SELECT used, reserved, remaining FROM quota WHERE key = ?', (key,)).fetchone()
    print('%s: used %d, reserved %d, remaining %d' % (key, used, reserved, remaining))
    for row in db.execute('SELECT request_id, amount, meta FROM quota_ledger'
                          ' WHERE key = ? ORDER BY id', (key,)).fetchall():
        print('ledger: %s %d %s' % row)
    db.close()


if __name__ == '__main__':
    main(sys.argv)
