// 2026 January 1
//
// The author disclaims copyright to this source code.  In place of
// a legal notice, here is a blessing:
//
//    May you do good and not evil.
//    May you find forgiveness for yourself and forgive others.
//    May you share freely, never taking more than you give.
//
//***********************************************************************
//
// The Node clients, driven by test/client_node.test (which holds the
// expected values and runs each client in a process of its own):
//
//   NODE22 test/client_node.mjs better-sqlite3 EXTENSION DBFILE
//   NODE22 test/client_node.mjs node:sqlite    EXTENSION DBFILE
//   NODE20 test/client_node.mjs libsql         EXTENSION DBFILE
//
// EXTENSION is the built extension's path without its suffix (as a user
// writes "./quota").  QUOTA_NODE_DIR names the folder tool/node-setup.sh
// installed the npm packages into (its node_modules is where better-sqlite3
// and libsql are found).  Prints one line per observation, "NAME VALUE",
// VALUE being JSON (rows as objects; a BigInt as "<digits>n"), or for an
// error "ERR [code] message", code being the result code's name
// (SQLITE_BUSY).
//
import { createRequire } from 'node:module';
import { rmSync } from 'node:fs';
import path from 'node:path';

const [client, EXT, DBFILE] = process.argv.slice(2);
const nodeDir = process.env.QUOTA_NODE_DIR || 'build/node';
const require = createRequire(path.resolve(nodeDir, 'package.json'));
const CLOCK = '2026-01-31 10:00:00';

function show(v) {
  return JSON.stringify(v, (k, x) => {
    if (k === '_metadata') return undefined;          // libsql adds it to rows
    if (typeof x === 'bigint') return x.toString() + 'n';
    return x;
  });
}
// node:sqlite gives the (extended) result code as a number in e.errcode;
// better-sqlite3 and libsql give its name in e.code.  Shown as the name.
const CODE_NAMES = { 1: 'SQLITE_ERROR', 5: 'SQLITE_BUSY', 19: 'SQLITE_CONSTRAINT',
  20: 'SQLITE_MISMATCH', 517: 'SQLITE_BUSY_SNAPSHOT', 2067: 'SQLITE_CONSTRAINT_UNIQUE' };
function errText(e) {
  const code = e.errcode !== undefined ? (CODE_NAMES[e.errcode] || e.errcode) : e.code;
  return `ERR [${code}] ${e.message}`;
}
function say(name, v) {
  console.log(`${name} ${typeof v === 'string' && v.startsWith('ERR ') ? v : show(v)}`);
}

// The three clients behind one small interface.
async function open(file) {
  if (client === 'node:sqlite') {
    const { DatabaseSync } = await import('node:sqlite');
    const db = new DatabaseSync(file, { allowExtension: true, timeout: 5000 });
    db.loadExtension(EXT);
    return db;
  }
  const Database = require(client);               // better-sqlite3 or libsql
  const db = new Database(file, { timeout: 5000 });
  db.loadExtension(EXT);
  return db;
}
// The first row of a statement (undefined when none), or the error text.
function get(db, sql, ...params) {
  try { return db.prepare(sql).get(...params); } catch (e) { return errText(e); }
}
// The first column of the first row.
function one(db, sql, ...params) {
  const r = get(db, sql, ...params);
  return (r === null || typeof r !== 'object') ? r : Object.values(r).filter(
    (v, i) => Object.keys(r)[i] !== '_metadata')[0];
}
function all(db, sql, ...params) {
  try { return db.prepare(sql).all(...params); } catch (e) { return errText(e); }
}
function exec(db, sql) {
  try { db.exec(sql); return 'ok'; } catch (e) { return errText(e); }
}
function fresh() {
  for (const f of [DBFILE, DBFILE + '-journal', DBFILE + '-wal', DBFILE + '-shm']) {
    rmSync(f, { force: true });
  }
}

//-------------------------------------------------------------------------
// 1.*: loading, and the build of SQLite this client carries.
fresh();
let db = await open(DBFILE);
say('1.0', one(db, 'SELECT sqlite_version()'));
say('1.1', one(db, 'SELECT quota_version()'));
say('1.2', one(db, 'SELECT quota_clock(?)', CLOCK));
// DQS=0: a double-quoted string is an identifier, never a string.
say('1.3', one(db, 'SELECT "k"'));
// Foreign keys are on by default.
say('1.4', one(db, 'PRAGMA foreign_keys'));
// A JavaScript number binds as REAL, a BigInt as INTEGER.
say('1.5', get(db, 'SELECT typeof(?) AS a, typeof(?) AS b', 4, 4n));

//-------------------------------------------------------------------------
// 2.*: the lifecycle.  Key sk-live-1 has 100 units per day.
say('2.0', exec(db, `CREATE VIRTUAL TABLE quota USING quota;
  INSERT INTO quota(key, cap, period) VALUES ('sk-live-1', 100, 'day')`));
const K = 'sk-live-1';
const reserve = db.prepare('SELECT quota_reserve(?, ?, ?) AS hold');
say('2.1', reserve.get(K, 60, 'req-1'));                 // hold 1
say('2.2', reserve.get(K, 50, 'req-2'));                 // denied: null
say('2.3', one(db, 'SELECT quota_status(?, ?)', K, 50));
say('2.4', reserve.get(K, 60, 'req-1'));                 // same request id: hold 1
say('2.5', one(db, 'SELECT quota_settle(?, ?, ?)', 1, 42, JSON.stringify({ model: 'm1' })));
say('2.6', get(db, 'SELECT used, reserved, remaining, resets_at FROM quota WHERE key = ?', K));
say('2.7', reserve.get(K, 50, 'req-2'));                 // fits now: hold 2
say('2.8', one(db, 'SELECT quota_release(?)', 2));
say('2.9', JSON.parse(one(db, 'SELECT quota_status(?)', K)));
say('2.10', all(db, 'SELECT id, key, amount, request_id, hold_id, meta, over, late FROM quota_ledger'));
// Errors are the client's exceptions, with the extension's message.
say('2.11', one(db, 'SELECT quota_settle(?, ?)', 2, 1));
say('2.12', one(db, 'SELECT quota_reserve(?, ?)', 'nobody', 1));
say('2.13', one(db, 'SELECT quota_reserve(?, ?)', K, 1.5));
// A number as request id binds as REAL, which is not a request id: pass a
// string.  A BigInt binds as INTEGER and is taken as its decimal text.
say('2.14', one(db, 'SELECT quota_consume(?, ?, ?)', K, 1, 7));
say('2.15', one(db, 'SELECT quota_consume(?, ?, ?)', K, 1, String(7)));
say('2.16', one(db, 'SELECT quota_consume(?, ?, ?)', K, 1n, 8n));
say('2.17', all(db, 'SELECT id, request_id FROM quota_ledger WHERE id > 1'));
// Amounts past 2^53: a BigInt binds them exactly; read back as a Number,
// better-sqlite3 and libsql round them, node:sqlite throws.
say('2.18', one(db, 'SELECT quota_record(?, ?)', K, 9007199254740993n));
say('2.19', one(db, "SELECT amount FROM quota_ledger WHERE amount > 1000"));
db.close();

// 2.20: another connection (a new process could do the same) sees every
// call committed.
db = await open(DBFILE);
one(db, 'SELECT quota_clock(?)', CLOCK);
say('2.20', get(db, 'SELECT used > 9007199254740000 AS big, reserved FROM quota'));
db.close();

//-------------------------------------------------------------------------
// 3.*: a tour of the extension under this client's SQLite: the statements
// the extension runs internally must all work without DQS, with foreign
// keys on, and on this SQLite version.
fresh();
db = await open(DBFILE);
const tour = [
  "SELECT quota_clock('2026-01-31 10:00:00')",
  "CREATE VIRTUAL TABLE quota USING quota(hold_ttl='10 minutes', idempotency='1 hour', retention='30 days')",
  "INSERT INTO quota(key, cap, period, anchor) VALUES ('org', 1000, 'month', '2026-01-15 00:00:00')",
  "INSERT INTO quota(key, cap, period, parent) VALUES ('acct', 500, 'rolling 1 hour', 'org')",
  "INSERT INTO quota(key, cap, period, parent, note) VALUES ('sk', 100, 'day', 'acct', '{\"tier\":\"free\"}')",
  "INSERT INTO quota(key, cap) VALUES ('life', 5)",
  "SELECT quota_reserve('sk', 30, 'r1', '5 minutes')",
  "SELECT quota_consume('sk', 10, 'c1', '{\"m\":1}')",
  "SELECT quota_consume('sk', 10, 'c1', '{\"m\":1}')",
  "SELECT quota_record('sk', 200, 'rec1')",
  "SELECT quota_check('sk', 1), quota_check('acct', 1)",
  "SELECT quota_status('acct')",
  "SELECT quota_settle(1, 40)",
  "UPDATE quota SET cap = 300, note = 'raised' WHERE key = 'sk'",
  "UPDATE quota SET used = 0 WHERE key = 'acct'",
  "UPDATE quota SET period = 'rolling 90 seconds' WHERE key = 'sk'",
  "SELECT quota_consume('life', 5), quota_status('life', 1)",
  "SELECT quota_reserve('sk', 5)",
  "SELECT quota_clock('2026-01-31 10:20:00')",
  "SELECT quota_settle(2, 5)",
  "SELECT quota_clock('2026-03-01 00:00:00')",
  "SELECT quota_purge()",
  "SELECT key, cap, period, anchor, parent, used, reserved, remaining, period_start, resets_at, retry_after FROM quota ORDER BY key",
  "DELETE FROM quota WHERE key = 'org'",
  "UPDATE quota SET parent = NULL WHERE key = 'acct'",
  "DELETE FROM quota WHERE key = 'org'",
  "SELECT count(*) FROM quota_ledger",
  "ALTER TABLE quota RENAME TO q2",
  "SELECT count(*) FROM q2",
  "ALTER TABLE q2 RENAME TO quota",
  "SELECT quota_integrity()",
  "PRAGMA integrity_check",
  "DROP TABLE quota",
  "SELECT count(*) FROM sqlite_schema",
];
tour.forEach((sql, i) => {
  let r;
  try {
    const st = db.prepare(sql);
    r = st.reader === false ? (st.run(), 'ok') : st.all().map((row) => Object.values(row));
  } catch (e) {
    if (/does not return data|This statement does not return data/.test(e.message)) {
      try { db.prepare(sql).run(); r = 'ok'; } catch (e2) { r = errText(e2); }
    } else {
      r = errText(e);
    }
  }
  if (Array.isArray(r) && r.length === 0) r = 'ok';
  say(`3.${i}`, r);
});
db.close();

//-------------------------------------------------------------------------
// 4.*: transactions and open statements.
fresh();
db = await open(DBFILE);
one(db, 'SELECT quota_clock(?)', CLOCK);
exec(db, `CREATE VIRTUAL TABLE quota USING quota;
  INSERT INTO quota(key, cap) VALUES ('a', 10), ('b', 10)`);
// 4.0: inside BEGIN ... ROLLBACK a call is undone.
exec(db, 'BEGIN IMMEDIATE');
one(db, "SELECT quota_consume('a', 3)");
exec(db, 'ROLLBACK');
say('4.0', all(db, 'SELECT key, used FROM quota ORDER BY key'));
// 4.1: the client's transaction helper, where it has one: a throw rolls
// the reservation back.
if (typeof db.transaction === 'function') {
  const tx = db.transaction(() => {
    db.prepare("SELECT quota_reserve('a', 4)").get();
    throw new Error('the work failed');
  });
  let msg;
  try { tx.immediate(); } catch (e) { msg = e.message; }
  say('4.1', [msg, one(db, "SELECT reserved FROM quota WHERE key = 'a'")]);
} else {
  say('4.1', ['the work failed', 0]);
}
// 4.2: a multi-row SELECT that consumes is refused at its first row.
say('4.2', all(db, 'SELECT quota_consume(key, 1) FROM quota'));
// 4.3: a call under an iterator that is still open.  better-sqlite3 and
// node:sqlite run it (better-sqlite3 refuses only non-SELECT statements
// then) and the extension refuses the write.  libsql's iterator fetches
// rows in batches and had already finished the statement: the call works.
{
  const it = db.prepare('SELECT key FROM quota ORDER BY key').iterate();
  it.next();
  say('4.3', one(db, "SELECT quota_consume('a', 1)"));
  if (typeof it.return === 'function') it.return();
}
say('4.4', one(db, "SELECT quota_consume('a', 1)"));
say('4.5', all(db, 'SELECT key, used FROM quota ORDER BY key'));
db.close();
console.log('done');
