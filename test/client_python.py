#!/usr/bin/python3
# 2026 January 1
#
# The author disclaims copyright to this source code.  In place of
# a legal notice, here is a blessing:
#
#    May you do good and not evil.
#    May you find forgiveness for yourself and forgive others.
#    May you share freely, never taking more than you give.
#
#***********************************************************************
#
# The Python client, driven by test/client_python.test (which holds the
# expected values): Debian's /usr/bin/python3 and its sqlite3 module load
# the built extension and run a reservation lifecycle, then the module's
# quirks are shown as they are (isolation_level, unfinished cursors, the
# cursor that reads one row ahead).
#
#     /usr/bin/python3 test/client_python.py EXTENSION DBFILE
#
# EXTENSION is the extension's path without its suffix (as a user writes
# "./quota").  Prints one line per observation, "NAME VALUE", VALUE being
# repr() of the Python value (None, 1, 'text') or, for errors,
# "ERR ExceptionClass sqlite_errorcode message".  Each observation is one
# test in client_python.test.
#
import os
import sqlite3
import sys

EXT, DBFILE = sys.argv[1], sys.argv[2]
CLOCK = '2026-01-31 10:00:00'


def say(name, value):
    print(name, repr(value), flush=True)


def err(e):
    return 'ERR %s %s %s' % (type(e).__name__, getattr(e, 'sqlite_errorcode', None), e)


def one(db, sql, params=()):
    """The first column of the first row, or the error as a string."""
    try:
        return db.execute(sql, params).fetchone()[0]
    except sqlite3.Error as e:
        return err(e)


def connect(isolation_level=None):
    db = sqlite3.connect(DBFILE, isolation_level=isolation_level, timeout=5.0)
    db.enable_load_extension(True)
    db.load_extension(EXT)
    db.enable_load_extension(False)
    db.execute('SELECT quota_clock(?)', (CLOCK,))
    return db


def fresh(key_rows):
    """An empty database file with a quota table and the given keys."""
    for f in (DBFILE, DBFILE + '-journal', DBFILE + '-wal', DBFILE + '-shm'):
        if os.path.exists(f):
            os.remove(f)
    db = connect()
    db.execute('CREATE VIRTUAL TABLE quota USING quota')
    for key, cap, period in key_rows:
        db.execute('INSERT INTO quota(key, cap, period) VALUES (?, ?, ?)', (key, cap, period))
    db.close()


# 1.*: the module can load extensions, and loads this one.
say('1.0', hasattr(sqlite3.Connection, 'enable_load_extension'))
fresh([('sk-live-1', 100, 'day')])
db = connect()
say('1.1', one(db, 'SELECT quota_version() = ?', (os.environ.get('QUOTA_VERSION', ''),)))
say('1.2', one(db, 'SELECT quota_clock()'))
# Loading is refused again once enable_load_extension(False) ran.
try:
    db.load_extension(EXT)
    say('1.3', 'loaded')
except sqlite3.Error as e:
    say('1.3', err(e))

# 2.*: the lifecycle with isolation_level=None (each call commits itself):
# reserve, a denial, status, settle below the estimate, reserve, release.
K = 'sk-live-1'
say('2.0', one(db, 'SELECT quota_reserve(?, ?, ?)', (K, 60, 'req-1')))
say('2.1', one(db, 'SELECT quota_reserve(?, ?, ?)', (K, 50, 'req-2')))      # 60 held: denied
say('2.2', one(db, 'SELECT quota_status(?, ?)', (K, 50)))
say('2.3', one(db, 'SELECT quota_reserve(?, ?, ?)', (K, 60, 'req-1')))      # same request id
say('2.4', one(db, 'SELECT quota_settle(?, ?, ?)', (1, 42, '{"model":"m1"}')))
say('2.5', db.execute('SELECT used, reserved, remaining FROM quota WHERE key = ?', (K,)).fetchall())
say('2.6', one(db, 'SELECT quota_reserve(?, ?, ?)', (K, 50, 'req-2')))      # now it fits
say('2.7', one(db, 'SELECT quota_release(?)', (2,)))
say('2.8', one(db, 'SELECT quota_status(?)', (K,)))
say('2.9', db.execute('SELECT id, key, amount, request_id, hold_id, meta, over, late'
                      ' FROM quota_ledger ORDER BY id').fetchall())
# Committed: another connection sees it, and db.rollback() undoes nothing.
db.rollback()
db2 = connect()
say('2.10', db2.execute('SELECT used, reserved FROM quota').fetchall())
db2.close()
# Errors arrive as sqlite3 exceptions with the extension's message.
say('2.11', one(db, 'SELECT quota_settle(?, ?)', (2, 1)))
say('2.12', one(db, 'SELECT quota_reserve(?, ?)', ('nobody', 1)))
say('2.13', one(db, 'SELECT quota_reserve(?, ?)', (K, 1.5)))
# Python ints bind as INTEGER: a request id may be an int (stored as text).
say('2.14', one(db, 'SELECT quota_consume(?, ?, ?)', (K, 1, 7)))
say('2.15', one(db, 'SELECT request_id FROM quota_ledger WHERE id = 2'))
db.close()

# 3.*: the default isolation_level ('', deferred).  The module opens a
# transaction by itself before INSERT/UPDATE/DELETE/REPLACE, never before a
# SELECT.
fresh([('k', 10, None)])
db = connect(isolation_level='')
db2 = connect()
# 3.0-3.2: only SELECTs ran, so no transaction is open: the call commits
# by itself, and rollback() does not undo it.
say('3.0', db.in_transaction)
say('3.1', one(db, "SELECT quota_consume('k', 1)"))
db.rollback()
say('3.2', one(db2, "SELECT used FROM quota"))
# 3.3-3.6: after an INSERT the module's hidden transaction is open; the
# call joins it: another connection does not see it, rollback() undoes it.
db.execute('CREATE TABLE IF NOT EXISTS audit(x)')
db.execute("INSERT INTO audit VALUES ('x')")
say('3.3', db.in_transaction)
say('3.4', one(db, "SELECT quota_consume('k', 2)"))
say('3.5', (one(db, "SELECT used FROM quota"), one(db2, "SELECT used FROM quota")))
db.rollback()
say('3.6', (one(db, "SELECT used FROM quota"), one(db2, "SELECT used FROM quota")))
db.close()
db2.close()

# 4.*: unfinished cursors (isolation_level=None).
fresh([('a', 10, None), ('b', 10, None), ('c', 10, None)])
db = connect()
# 4.0: a quota call while another cursor of the same connection is still
# reading fails at once, whatever the busy timeout.
cur = db.execute('SELECT key FROM quota ORDER BY key')
first = cur.fetchone()[0]
say('4.0', one(db, 'SELECT quota_consume(?, 1)', (first,)))
cur.close()
# 4.1: fetch first, then call: every call works.
keys = [r[0] for r in db.execute('SELECT key FROM quota ORDER BY key').fetchall()]
say('4.1', [one(db, 'SELECT quota_consume(?, 1)', (k,)) for k in keys])
# 4.2: a multi-row SELECT that calls quota_consume fails at its first row
# and charges nothing.
say('4.2', one(db, 'SELECT quota_consume(key, 1) FROM quota'))
say('4.3', db.execute('SELECT key, used FROM quota ORDER BY key').fetchall())
# 4.4: inside BEGIN such a SELECT is allowed, and the cursor reads one row
# ahead: execute() made the call for row 1 and fetchone() for row 2.
db.execute('BEGIN IMMEDIATE')
cur = db.execute('SELECT quota_consume(key, 1) FROM quota')
row = cur.fetchone()
cur.close()
say('4.4', (row, db.execute('SELECT key, used FROM quota ORDER BY key').fetchall()))
db.execute('ROLLBACK')
# 4.5: with ORDER BY (a sort the table does not provide) SQLite computes
# every row before it returns the first: one fetchone() made all 3 calls.
db.execute('BEGIN IMMEDIATE')
cur = db.execute('SELECT quota_consume(key, 1) FROM quota ORDER BY key DESC')
row = cur.fetchone()
cur.close()
say('4.5', (row, db.execute('SELECT key, used FROM quota ORDER BY key').fetchall()))
db.execute('ROLLBACK')
say('4.6', db.execute('SELECT key, used FROM quota ORDER BY key').fetchall())
db.close()
print('done', flush=True)
