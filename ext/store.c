/*
** store.c: the shadow tables of a quota table and every change made to them.
**
** A table created with `CREATE VIRTUAL TABLE quota USING quota` keeps its
** data in eight ordinary tables in the same schema:
**
**   quota_keys      one row per key: its settings and its counters
**                   (used, reserved, the period `used` belongs to)
**   quota_notes     the note of each key that has one: a note can be long,
**                   and the key row is rewritten by every call
**   quota_holds     one row per reservation, live or ended; no index: holds
**                   of the default ttl form an ordered lane by id, the others
**                   are listed in quota_expiry (see quotaSweep)
**   quota_expiry    (expires, hold id) of the holds outside the ordered lane
**   quota_ledger    the audit log, one row per charge; readable by users
**   quota_requests  request ids, for idempotent retries
**   quota_window    per-second buckets of the charges inside a rolling
**                   window: used = the sum of the buckets of the key
**   quota_meta      schema version, the sweep watermark, the purge cursor
**
** SCHEMA VERSIONS
**   quota_meta.schema says which layout a store has. 1: sqlite-quota 0.1.0
**   (the note in quota_keys). 2: notes in quota_notes. A store at an older
**   version is upgraded in place when a connection first opens its table
**   (quotaStoreUpgrade); the upgrade only creates tables and moves rows, so
**   statements prepared against the old layout stay valid. An upgraded
**   store keeps the old quota_keys.note column, always NULL.
**
** HOW IT WORKS
**   Counters are kept, never recomputed: a key's `used` and `reserved` are
**   columns that each call adjusts, so a call costs the same with ten rows in
**   the ledger or ten million.
**
**   Calendar rollover is lazy. A key stores the start of the period its `used`
**   belongs to; a call that finds the current period starting later zeroes
**   `used` first (quotaNormalize).
**
**   Rolling windows keep one bucket per (key, second) in quota_window. A
**   charge adds to the bucket of the current second. The key stores its
**   oldest bucket; when that bucket leaves the window, a call subtracts and
**   deletes every bucket that left, then finds the new oldest. Each bucket is
**   added once and removed once: O(1) amortised per call, exact to the second.
**
**   Hold expiry is swept, not polled. quota_meta holds a watermark `swept`:
**   every live hold whose `expires` is at or before it has been marked
**   expired and taken out of `reserved` at every level of its parent chain.
**   A writing call whose clock is past the watermark first sweeps the holds
**   expiring in (swept, now] through the (expires, id) index and moves the
**   watermark; with one-second clock resolution that is at most one sweep per
**   second, however busy. Readers (the table, quota_check, quota_status)
**   cannot write: they subtract the holds in (swept, now] on the fly
**   (quotaEffective).
**
**   The key cache. callBegin (functions.c) trusts the sweep state it kept
**   from this connection's last commit when SQLITE_FCNTL_DATA_VERSION shows
**   nothing was committed since; then the whole store is as that call left
**   it, so the last key loaded by name, as it was read or last written, is
**   the row on disk (quotaLoadKeyByName, storeKeyCacheSaved). A reserve or
**   consume on that key skips reading it; a settle of a hold on it reads
**   only the hold (QS_HOLD_GET_CACHED). Filled only by a call that opened
**   its own transaction (bKeyCacheOn); dropped by the next writing call
**   that does not trust the sweep state (a failed call, a call in the
**   caller's transaction and a vtab write all leave it untrusted), and
**   whenever the key is written outside a call that may fill it.
**
**   Key, hold and ledger ids are never reused: purge never removes the row
**   with the largest id of quota_holds or quota_ledger, so SQLite's rowid
**   allocation (largest + 1) cannot go back; quota_keys uses AUTOINCREMENT.
*/
#include "quota_int.h"
#include <string.h>

/*
** The statements, by QS_ number. "{x}" stands for the shadow table
** "schema"."table_x".
*/
static const char *const azStmtSql[QS_COUNT] = {
  /* QS_KEY_BY_NAME: the key, and the sweep state a writing call needs */
  "SELECT id, cap, kind, len, anchor, parent, used, reserved, pstart, oldest, wtotal,"
  " (SELECT value FROM {meta} WHERE name='swept'),"
  " (SELECT value FROM {meta} WHERE name='sweepid'),"
  " (SELECT l0max FROM {holds} ORDER BY id DESC LIMIT 1)"
  " FROM {keys} WHERE key=?1",
  /* QS_KEY_BY_NAME_CACHED: the same when the call trusts its cached sweep
  ** state (see callBegin in functions.c) */
  "SELECT id, cap, kind, len, anchor, parent, used, reserved, pstart, oldest, wtotal"
  " FROM {keys} WHERE key=?1",
  /* QS_KEY_BY_ID */
  "SELECT id, cap, kind, len, anchor, parent, used, reserved, pstart, oldest, wtotal"
  " FROM {keys} WHERE id=?1",
  /* QS_KEY_SAVE */
  "UPDATE {keys} SET used=?2, reserved=?3, pstart=?4, oldest=?5, wtotal=?6"
  " WHERE id=?1",
  /* QS_KEY_SAVE_COUNTS: the same when only the counters changed */
  "UPDATE {keys} SET used=?2, reserved=?3 WHERE id=?1",
  /* QS_KEY_INSERT */
  "INSERT INTO {keys}(key, cap, period, kind, len, anchor, parent, retention,"
  " used, reserved, pstart, oldest, wtotal)"
  " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
  /* QS_KEY_UPDATE_ALL */
  "UPDATE {keys} SET cap=?2, period=?3, kind=?4, len=?5, anchor=?6, parent=?7,"
  " retention=?8, used=?9, reserved=?10, pstart=?11, oldest=?12,"
  " wtotal=?13 WHERE id=?1",
  /* QS_KEY_ROW */
  "SELECT key, period, retention FROM {keys} WHERE id=?1",
  /* QS_KEY_DELETE */
  "DELETE FROM {keys} WHERE id=?1",
  /* QS_NOTE_PUT */
  "INSERT OR REPLACE INTO {notes}(id, note) VALUES(?1, ?2)",
  /* QS_NOTE_DELETE */
  "DELETE FROM {notes} WHERE id=?1",
  /* QS_KEY_CHILD */
  "SELECT key FROM {keys} WHERE parent=?1 ORDER BY id LIMIT 1",
  /* QS_KEY_NAME */
  "SELECT key FROM {keys} WHERE id=?1",
  /* QS_META_GET */
  "SELECT value FROM {meta} WHERE name=?1",
  /* QS_META_SET */
  "UPDATE {meta} SET value=?2 WHERE name=?1",
  /* QS_SWEEP_STATE */
  "SELECT (SELECT value FROM {meta} WHERE name='swept'),"
  " (SELECT value FROM {meta} WHERE name='sweepid')",
  /* QS_SWEEP_SAVE */
  "UPDATE {meta} SET value=CASE name WHEN 'swept' THEN ?1 ELSE ?2 END"
  " WHERE name IN ('swept', 'sweepid')",
  /* QS_LANE0_SCAN: the ordered lane, oldest first (see quotaExpiredHolds) */
  "SELECT id, key_id, amount, state, expires, lane FROM {holds}"
  " WHERE id>=?1 ORDER BY id",
  /* QS_LANE1_SCAN */
  "SELECT h.id, h.key_id, h.amount, h.state FROM {expiry} AS e"
  " JOIN {holds} AS h ON h.id=e.hold_id WHERE e.expires<=?1",
  /* QS_LANE1_DELETE */
  "DELETE FROM {expiry} WHERE expires<=?1",
  /* QS_EXPIRY_INSERT */
  "INSERT INTO {expiry}(expires, hold_id) VALUES(?1, ?2)",
  /* QS_HOLD_END */
  "UPDATE {holds} SET state=?2, ended=?3, charged=?4 WHERE id=?1",
  /* QS_HOLD_INSERT */
  "INSERT INTO {holds}(key_id, amount, expires, state, request_id, lane, l0max)"
  " VALUES(?1, ?2, ?3, 0, ?4, ?5, ?6)",
  /* QS_HOLD_GET: its key's row (NULLs if the key is gone), the hold, and
  ** the sweep state; the key columns come first as in QS_KEY_BY_ID */
  "SELECT k.id, k.cap, k.kind, k.len, k.anchor, k.parent, k.used, k.reserved,"
  " k.pstart, k.oldest, k.wtotal, h.key_id, h.amount, h.expires, h.state,"
  " h.charged, h.request_id, k.key,"
  " (SELECT value FROM {meta} WHERE name='swept'),"
  " (SELECT value FROM {meta} WHERE name='sweepid')"
  " FROM {holds} AS h LEFT JOIN {keys} AS k ON k.id=h.key_id WHERE h.id=?1",
  /* QS_HOLD_GET_CACHED: the same without the sweep state; and when the
  ** hold's key is ?2, the key in the key cache, its row is not read (the
  ** NULL makes the join's rowid seek a no-op) */
  "SELECT k.id, k.cap, k.kind, k.len, k.anchor, k.parent, k.used, k.reserved,"
  " k.pstart, k.oldest, k.wtotal, h.key_id, h.amount, h.expires, h.state,"
  " h.charged, h.request_id, k.key"
  " FROM {holds} AS h LEFT JOIN {keys} AS k"
  " ON k.id=CASE h.key_id WHEN ?2 THEN NULL ELSE h.key_id END WHERE h.id=?1",
  /* QS_HOLDS_OF_KEY */
  "SELECT id, amount FROM {holds} WHERE key_id=?1 AND state=0",
  /* QS_LEDGER_INSERT */
  "INSERT INTO {ledger}(key, amount, at, request_id, hold_id, meta, over, late)"
  " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
  /* QS_REQ_GET */
  "SELECT op, amount, result, at FROM {requests}"
  " WHERE key_id=?1 AND request_id=?2",
  /* QS_REQ_PUT */
  "REPLACE INTO {requests}(key_id, request_id, op, amount, result, at)"
  " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
  /* QS_REQ_DELETE_KEY */
  "DELETE FROM {requests} WHERE key_id=?1",
  /* QS_WIN_ADD: a charge joins the bucket of its second, or of the newest
  ** second if the clock is behind it, so running totals stay in order */
  "INSERT INTO {window}(key_id, sec, amount, total)"
  " VALUES(?1, max(?2, coalesce((SELECT max(sec) FROM {window} WHERE key_id=?1),"
  " ?2)), ?3, ?4)"
  " ON CONFLICT(key_id, sec) DO UPDATE SET amount=amount+excluded.amount,"
  " total=total+excluded.amount",
  /* QS_WIN_JOIN: add to the newest bucket when it is at or after second ?2.
  ** Running totals only grow, so the newest bucket is the one whose total
  ** is the key's (?4): one seek, where QS_WIN_ADD also finds max(sec). */
  "UPDATE {window} SET amount=amount+?3, total=total+?3"
  " WHERE key_id=?1 AND sec>=?2 AND total=?4",
  /* QS_WIN_TOTAL_AT: the running total of the key's charges up to second ?2 */
  "SELECT total FROM {window} WHERE key_id=?1 AND sec<=?2"
  " ORDER BY sec DESC LIMIT 1",
  /* QS_WIN_DELETE_BEFORE */
  "DELETE FROM {window} WHERE key_id=?1 AND sec<=?2",
  /* QS_WIN_FIRST_AFTER: the oldest bucket after second ?2 */
  "SELECT min(sec) FROM {window} WHERE key_id=?1 AND sec>?2",
  /* QS_WIN_DELETE_KEY */
  "DELETE FROM {window} WHERE key_id=?1",
  /* QS_WIN_NEWEST */
  "SELECT max(sec) FROM {window} WHERE key_id=?1",
  /* QS_LOCK: a write statement that changes nothing but takes the write
  ** lock, through the busy handler, as the first act of a transaction. */
  "UPDATE {meta} SET value=value WHERE 0",
  /* QS_BEGIN */
  "BEGIN IMMEDIATE",
  /* QS_BEGIN_READ */
  "BEGIN",
  /* QS_COMMIT */
  "COMMIT",
  /* QS_ROLLBACK */
  "ROLLBACK",
  /* QS_SAVEPOINT */
  "SAVEPOINT quota_call",
  /* QS_RELEASE */
  "RELEASE quota_call",
  /* QS_ROLLBACK_TO */
  "ROLLBACK TO quota_call",
};

static int storePrepare(QuotaTab *p, const char *zTemplate, sqlite3_stmt **ppStmt);

/* Expand "{x}" into the quoted name "schema"."table_x". */
static char *storeExpand(const char *zDb, const char *zName, const char *zSql){
  sqlite3_str *pStr = sqlite3_str_new(0);
  const char *z = zSql;
  while( *z ){
    const char *zOpen = strchr(z, '{');
    const char *zClose;
    if( zOpen==0 ){
      sqlite3_str_appendall(pStr, z);
      break;
    }
    zClose = strchr(zOpen, '}');
    sqlite3_str_append(pStr, z, (int)(zOpen-z));
    sqlite3_str_appendf(pStr, "\"%w\".\"%w_%.*w\"", zDb, zName,
        (int)(zClose-zOpen-1), zOpen+1);
    z = zClose+1;
  }
  return sqlite3_str_finish(pStr);
}

/* Run a template of ;-free statements separated by "\n;\n" in one exec. */
static int storeExec(sqlite3 *db, const char *zDb, const char *zName,
                     const char *zSql){
  char *z = storeExpand(zDb, zName, zSql);
  int rc;
  if( z==0 ) return SQLITE_NOMEM;
  rc = sqlite3_exec(db, z, 0, 0, 0);
  sqlite3_free(z);
  return rc;
}

int quotaStoreCreate(sqlite3 *db, const char *zDb, const char *zName){
  static const char zSchema[] =
    "CREATE TABLE {keys}("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  key TEXT NOT NULL UNIQUE,"
    "  cap INTEGER, period TEXT, kind INTEGER NOT NULL, len INTEGER NOT NULL,"
    "  anchor INTEGER, parent INTEGER, retention INTEGER,"
    "  used INTEGER NOT NULL, reserved INTEGER NOT NULL,"
    "  pstart INTEGER NOT NULL, oldest INTEGER,"
    "  wtotal INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE(parent, id));"
    "CREATE TABLE {notes}(id INTEGER PRIMARY KEY, note);"
    "CREATE TABLE {holds}("
    "  id INTEGER PRIMARY KEY, key_id INTEGER NOT NULL,"
    "  amount INTEGER NOT NULL, expires INTEGER NOT NULL,"
    "  state INTEGER NOT NULL, charged INTEGER, ended INTEGER, request_id TEXT,"
    "  lane INTEGER NOT NULL, l0max INTEGER NOT NULL);"
    "CREATE TABLE {expiry}("
    "  expires INTEGER NOT NULL, hold_id INTEGER NOT NULL,"
    "  PRIMARY KEY(expires, hold_id)) WITHOUT ROWID;"
    "CREATE TABLE {ledger}("
    "  id INTEGER PRIMARY KEY, key TEXT NOT NULL, amount INTEGER NOT NULL,"
    "  at INTEGER NOT NULL, request_id TEXT, hold_id INTEGER, meta TEXT,"
    "  over INTEGER NOT NULL, late INTEGER NOT NULL);"
    "CREATE TABLE {requests}("
    "  id INTEGER PRIMARY KEY, key_id INTEGER NOT NULL, request_id TEXT NOT NULL,"
    "  op INTEGER NOT NULL, amount INTEGER NOT NULL, result INTEGER,"
    "  at INTEGER NOT NULL, UNIQUE(key_id, request_id));"
    "CREATE TABLE {window}("
    "  key_id INTEGER NOT NULL, sec INTEGER NOT NULL, amount INTEGER NOT NULL,"
    "  total INTEGER NOT NULL, PRIMARY KEY(key_id, sec)) WITHOUT ROWID;"
    "CREATE TABLE {meta}(name TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "INSERT INTO {meta}(name, value) VALUES"
    "  ('schema', " QUOTA_STR(QUOTA_SCHEMA_VERSION) "), ('swept', 0),"
    "  ('sweepid', 0), ('purgepos', 0);";
  return storeExec(db, zDb, zName, zSchema);
}

/* The shadow tables' suffixes, of every schema version; 0 ends the list. */
const char *const quotaShadowSuffix[] = {
  "keys", "notes", "holds", "expiry", "ledger", "requests", "window", "meta", 0
};

int quotaStoreDestroy(sqlite3 *db, const char *zDb, const char *zName){
  int rc = SQLITE_OK;
  int i;
  for(i=0; rc==SQLITE_OK && quotaShadowSuffix[i]; i++){
    char *z = sqlite3_mprintf("DROP TABLE IF EXISTS \"%w\".\"%w_%s\"",
        zDb, zName, quotaShadowSuffix[i]);
    if( z==0 ) return SQLITE_NOMEM;
    rc = sqlite3_exec(db, z, 0, 0, 0);
    sqlite3_free(z);
  }
  return rc;
}

int quotaStoreRename(sqlite3 *db, const char *zDb, const char *zOld,
                     const char *zNew){
  int rc = SQLITE_OK;
  int i;
  for(i=0; rc==SQLITE_OK && quotaShadowSuffix[i]; i++){
    char *z = sqlite3_mprintf("ALTER TABLE \"%w\".\"%w_%s\" RENAME TO \"%w_%s\"",
        zDb, zOld, quotaShadowSuffix[i], zNew, quotaShadowSuffix[i]);
    if( z==0 ) return SQLITE_NOMEM;
    rc = sqlite3_exec(db, z, 0, 0, 0);
    sqlite3_free(z);
  }
  return rc;
}

int quotaStmtOpen(QuotaTab *p){
  p->aStmt = sqlite3_malloc64(sizeof(sqlite3_stmt*)*QS_COUNT);
  if( p->aStmt==0 ) return SQLITE_NOMEM;
  memset(p->aStmt, 0, sizeof(sqlite3_stmt*)*QS_COUNT);
  return SQLITE_OK;
}

/* Finalize every statement; they are prepared again on next use. */
void quotaStmtFinalizeAll(QuotaTab *p){
  int i;
  if( p->aStmt==0 ) return;
  for(i=0; i<QS_COUNT; i++){
    sqlite3_finalize(p->aStmt[i]);
    p->aStmt[i] = 0;
  }
}

void quotaStmtClose(QuotaTab *p){
  quotaStmtFinalizeAll(p);
  sqlite3_free(p->aStmt);
  p->aStmt = 0;
}

/* The prepared statement number iStmt, reset and with bindings cleared. */
int quotaStmt(QuotaTab *p, int iStmt, sqlite3_stmt **ppStmt){
  sqlite3_stmt *pStmt = p->aStmt[iStmt];
  if( pStmt==0 ){
    char *zSql = storeExpand(p->zDb, p->zName, azStmtSql[iStmt]);
    int rc;
    if( zSql==0 ) return SQLITE_NOMEM;
    rc = sqlite3_prepare_v3(p->db, zSql, -1, SQLITE_PREPARE_PERSISTENT,
                            &pStmt, 0);
    sqlite3_free(zSql);
    if( rc!=SQLITE_OK ) return rc;
    p->aStmt[iStmt] = pStmt;
  }
  *ppStmt = pStmt;
  return SQLITE_OK;
}

/* Step a statement that returns no row, then reset it. */
int quotaStepDone(sqlite3_stmt *pStmt){
  int rc = sqlite3_step(pStmt);
  if( rc==SQLITE_DONE || NEVER(rc==SQLITE_ROW) ){
    rc = sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
  }
  return rc;
}

/* Run statement iStmt with integer bindings a1..an; no rows expected. */
static int storeRunInt(QuotaTab *p, int iStmt, int nArg, const sqlite3_int64 *aArg){
  sqlite3_stmt *pStmt;
  int i, rc = quotaStmt(p, iStmt, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  for(i=0; i<nArg; i++) sqlite3_bind_int64(pStmt, i+1, aArg[i]);
  return quotaStepDone(pStmt);
}

/* Run statement iStmt with integer bindings; return the first column of the
** first row in *pVal (iDefault when no row or NULL). */
static int storeQueryInt(QuotaTab *p, int iStmt, int nArg,
                         const sqlite3_int64 *aArg, sqlite3_int64 iDefault,
                         sqlite3_int64 *pVal){
  sqlite3_stmt *pStmt;
  int i, rc = quotaStmt(p, iStmt, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  for(i=0; i<nArg; i++) sqlite3_bind_int64(pStmt, i+1, aArg[i]);
  *pVal = iDefault;
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    if( sqlite3_column_type(pStmt, 0)!=SQLITE_NULL ){
      *pVal = sqlite3_column_int64(pStmt, 0);
    }
    rc = sqlite3_reset(pStmt);
  }else if( rc==SQLITE_DONE ){
    rc = sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
  }
  return rc;
}

/*
** Fill *k from the first ten columns of the current row (the layout of
** QS_KEY_BY_ID). With bSweep, columns 10-12 hold the sweep state (12, the
** ordered lane's largest expiry, may be NULL). A row whose stored values
** cannot have been written by this extension makes the store corrupt:
** hand-edited shadow tables must give an error, not a wrong grant.
*/
int quotaReadKeyRow(QuotaTab *p, sqlite3_stmt *pStmt, int bSweep, QuotaKey *k){
  memset(k, 0, sizeof(*k));
  k->id = sqlite3_column_int64(pStmt, 0);
  k->bCap = sqlite3_column_type(pStmt, 1)!=SQLITE_NULL;
  k->cap = sqlite3_column_int64(pStmt, 1);
  k->eKind = sqlite3_column_int(pStmt, 2);
  k->nLen = sqlite3_column_int64(pStmt, 3);
  k->bAnchor = sqlite3_column_type(pStmt, 4)!=SQLITE_NULL;
  k->anchor = sqlite3_column_int64(pStmt, 4);
  k->parentId = sqlite3_column_int64(pStmt, 5);
  k->used = sqlite3_column_int64(pStmt, 6);
  k->reserved = sqlite3_column_int64(pStmt, 7);
  k->pstart = sqlite3_column_int64(pStmt, 8);
  k->bOldest = sqlite3_column_type(pStmt, 9)!=SQLITE_NULL;
  k->oldest = sqlite3_column_int64(pStmt, 9);
  k->wtotal = sqlite3_column_int64(pStmt, 10);
  if( bSweep ){
    const int i = QUOTA_KEY_COLUMNS;
    p->iSwept = sqlite3_column_int64(pStmt, i);
    p->iSweepId = sqlite3_column_int64(pStmt, i+1);
    if( sqlite3_column_type(pStmt, i+2)!=SQLITE_NULL ){
      p->iL0Max = sqlite3_column_int64(pStmt, i+2);
    }else if( sqlite3_column_count(pStmt)==i+3 ){
      p->iL0Max = 0;                        /* no hold yet */
    }
    if( sqlite3_column_count(pStmt)==i+3 ) p->bStateRead = 1;
  }
  if( k->eKind<QUOTA_LIFETIME || k->eKind>QUOTA_ROLLING
   || (k->eKind==QUOTA_ROLLING && (k->nLen<=0 || k->nLen>QUOTA_WINDOW_MAX))
   || k->used<0 || k->reserved<0 || (k->bCap && k->cap<0) || k->wtotal<0
   || (k->bAnchor && (k->anchor<QUOTA_TIME_MIN || k->anchor>QUOTA_TIME_MAX))
   || k->pstart<QUOTA_TIME_MIN-QUOTA_TIME_SLACK
   || k->pstart>QUOTA_TIME_MAX+QUOTA_TIME_SLACK
   || (k->bOldest && (k->oldest<QUOTA_TIME_MIN || k->oldest>QUOTA_TIME_MAX))
   || k->id<=0
   || (sqlite3_column_type(pStmt, 5)!=SQLITE_NULL && k->parentId<=0)
   || sqlite3_column_type(pStmt, 6)!=SQLITE_INTEGER
   || sqlite3_column_type(pStmt, 7)!=SQLITE_INTEGER
  ){
    return SQLITE_CORRUPT_VTAB;
  }
  return SQLITE_OK;
}

static int storeLoadKey(QuotaTab *p, int bSweep, sqlite3_stmt *pStmt,
                        QuotaKey *k, int *pFound){
  int rc = sqlite3_step(pStmt);
  *pFound = 0;
  if( rc==SQLITE_ROW ){
    *pFound = 1;
    rc = quotaReadKeyRow(p, pStmt, bSweep, k);
    if( rc==SQLITE_OK ){
      rc = sqlite3_reset(pStmt);
    }else{
      sqlite3_reset(pStmt);
    }
  }else if( rc==SQLITE_DONE ){
    rc = sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
  }
  return rc;
}

/*
** Load a key by name, with the sweep state unless the call's cache of it
** is valid (p->bUseCache, see callBegin). When it is, the key cache is as
** good as the row: a connection that is the only writer and charges the
** same key again skips reading it (one statement of the four or five a
** reserve or consume runs).
*/
int quotaLoadKeyByName(QuotaTab *p, const char *zKey, QuotaKey *k, int *pFound){
  sqlite3_stmt *pStmt;
  int iStmt, rc;
  if( p->bUseCache && p->bKeyCached && strcmp(zKey, p->zKeyCache)==0 ){
    *k = p->keyCache;
    *pFound = 1;
    return SQLITE_OK;
  }
  iStmt = p->bUseCache ? QS_KEY_BY_NAME_CACHED : QS_KEY_BY_NAME;
  rc = quotaStmt(p, iStmt, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
  rc = storeLoadKey(p, !p->bUseCache, pStmt, k, pFound);
  sqlite3_bind_null(pStmt, 1);
  if( rc==SQLITE_OK && *pFound && p->bKeyCacheOn ){
    size_t n = strlen(zKey);
    p->bKeyCached = n<sizeof(p->zKeyCache);
    if( p->bKeyCached ){
      memcpy(p->zKeyCache, zKey, n+1);
      p->keyCache = *k;
    }
  }
  return rc;
}

/* Keep the key cache equal to the row just written (or drop it when the
** write is not a writing call's, which may yet be rolled back alone). */
static void storeKeyCacheSaved(QuotaTab *p, const QuotaKey *k){
  if( !p->bKeyCached || p->keyCache.id!=k->id ) return;
  if( !p->bKeyCacheOn ){
    p->bKeyCached = 0;
    return;
  }
  p->keyCache = *k;
  p->keyCache.bPeriod = 0;          /* as quotaReadKeyRow leaves them */
  p->keyCache.pend = 0;
}

int quotaLoadKeyById(QuotaTab *p, sqlite3_int64 id, QuotaKey *k, int *pFound){
  sqlite3_stmt *pStmt;
  int rc = quotaStmt(p, QS_KEY_BY_ID, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, id);
  return storeLoadKey(p, 0, pStmt, k, pFound);
}

/* Load the ancestors of the leaf already in c->a[0]. */
int quotaLoadChain(QuotaTab *p, const QuotaKey *pLeaf, QuotaChain *c){
  c->n = 1;
  if( NEVER(pLeaf!=&c->a[0]) ) c->a[0] = *pLeaf;
  while( c->a[c->n-1].parentId!=0 ){
    int bFound = 0, rc, i;
    if( c->n>=QUOTA_MAX_DEPTH ) return SQLITE_CORRUPT_VTAB;
    rc = quotaLoadKeyById(p, c->a[c->n-1].parentId, &c->a[c->n], &bFound);
    if( rc!=SQLITE_OK ) return rc;
    if( !bFound ) return SQLITE_CORRUPT_VTAB;    /* dangling parent */
    for(i=0; i<c->n; i++){
      if( c->a[i].id==c->a[c->n].id ) return SQLITE_CORRUPT_VTAB; /* cycle */
    }
    c->n++;
  }
  return SQLITE_OK;
}

/* Add `delta` (may be negative) to the reserved counter of every level of the
** chain starting at key id `leafId`, writing each level back. */
int quotaAdjustReservedChain(QuotaTab *p, sqlite3_int64 leafId,
                                    sqlite3_int64 delta){
  sqlite3_int64 id = leafId;
  int depth = 0;
  while( id!=0 ){
    QuotaKey k;
    int bFound = 0, rc;
    if( ++depth>QUOTA_MAX_DEPTH ) return SQLITE_CORRUPT_VTAB;
    rc = quotaLoadKeyById(p, id, &k, &bFound);
    if( rc!=SQLITE_OK ) return rc;
    if( !bFound ) return depth==1 ? SQLITE_OK : SQLITE_CORRUPT_VTAB;
    if( NEVER(delta>0) && k.reserved>LARGEST_INT64-delta ) return SQLITE_CORRUPT_VTAB;
    k.reserved += delta;
    if( k.reserved<0 ) return SQLITE_CORRUPT_VTAB;
    k.bDirty = QUOTA_DIRTY_COUNTS;
    rc = quotaSaveKey(p, &k);
    if( rc!=SQLITE_OK ) return rc;
    id = k.parentId;
  }
  return SQLITE_OK;
}

/* Append an (id, key_id, amount) triple to a growing array. */
static int storeAppendHold(sqlite3_int64 **pa, int *pn, int *pnAlloc,
                           sqlite3_int64 id, sqlite3_int64 keyId,
                           sqlite3_int64 amount){
  if( *pn>=*pnAlloc ){
    int nNew = *pnAlloc ? *pnAlloc*2 : 16;
    sqlite3_int64 *aNew = sqlite3_realloc64(*pa, sizeof(sqlite3_int64)*3*nNew);
    if( aNew==0 ) return SQLITE_NOMEM;
    *pa = aNew;
    *pnAlloc = nNew;
  }
  (*pa)[(size_t)*pn*3] = id;
  (*pa)[(size_t)*pn*3+1] = keyId;
  (*pa)[(size_t)*pn*3+2] = amount;
  (*pn)++;
  return SQLITE_OK;
}

/*
** Collect the live holds whose ttl has run out by `now` and that no sweep
** has expired yet, as (id, key_id, amount) triples in *paHold (free with
** sqlite3_free). *pNextId gets where the ordered lane's next scan starts.
**
** HOW HOLDS ARE FOUND WITHOUT AN INDEX
**   A hold taken with the table's default ttl goes to the ordered lane
**   (lane 0) when its expiry is not before any earlier lane-0 hold's: every
**   hold row carries l0max, the largest lane-0 expiry so far, so the test is
**   one read of the newest row. Lane 0 is thus in expiry order by id, and
**   the expired ones are a prefix that a scan from `sweepid` reads once.
**   Any other hold (its own ttl, or a clock that moved back) goes to lane 1
**   and gets a row in %_expiry, keyed by expiry. A reserve therefore writes
**   one page for its hold, and ending a hold touches no index at all.
*/
static int storeExpiredHolds(QuotaTab *p, sqlite3_int64 now,
                             sqlite3_int64 **paHold, int *pnHold,
                             sqlite3_int64 *pNextId){
  sqlite3_stmt *pStmt;
  int nAlloc = 0, rc;
  sqlite3_int64 nextId = p->iSweepId;
  *paHold = 0;
  *pnHold = 0;
  rc = quotaStmt(p, QS_LANE0_SCAN, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, p->iSweepId);
  while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
    sqlite3_int64 id = sqlite3_column_int64(pStmt, 0);
    if( id==LARGEST_INT64 || sqlite3_column_int64(pStmt, 2)<0 ){
      rc = SQLITE_CORRUPT_VTAB;            /* never written by sqlite-quota */
      break;
    }
    if( sqlite3_column_int(pStmt, 5)!=0 ) continue;       /* lane 1 */
    if( sqlite3_column_int64(pStmt, 4)>now ){ nextId = id; break; }
    nextId = id+1;
    if( sqlite3_column_int(pStmt, 3)==HOLD_LIVE ){
      rc = storeAppendHold(paHold, pnHold, &nAlloc, id,
          sqlite3_column_int64(pStmt, 1), sqlite3_column_int64(pStmt, 2));
      if( rc!=SQLITE_OK ) break;
    }
  }
  if( rc==SQLITE_ROW || rc==SQLITE_DONE ) rc = sqlite3_reset(pStmt);
  else sqlite3_reset(pStmt);
  if( rc==SQLITE_OK ) rc = quotaStmt(p, QS_LANE1_SCAN, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, now);
  while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
    if( sqlite3_column_int64(pStmt, 2)<0 ){ rc = SQLITE_CORRUPT_VTAB; break; }
    if( sqlite3_column_int(pStmt, 3)==HOLD_LIVE ){
      rc = storeAppendHold(paHold, pnHold, &nAlloc, sqlite3_column_int64(pStmt, 0),
          sqlite3_column_int64(pStmt, 1), sqlite3_column_int64(pStmt, 2));
      if( rc!=SQLITE_OK ) break;
    }
  }
  if( rc==SQLITE_DONE ) rc = sqlite3_reset(pStmt); else sqlite3_reset(pStmt);
  *pNextId = nextId;
  return rc;
}

/* Read the sweep watermark and the ordered lane's scan start. */
int quotaSweepState(QuotaTab *p){
  sqlite3_stmt *pStmt;
  int rc = quotaStmt(p, QS_SWEEP_STATE, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    if( sqlite3_column_type(pStmt, 0)!=SQLITE_INTEGER
     || sqlite3_column_type(pStmt, 1)!=SQLITE_INTEGER ){
      sqlite3_reset(pStmt);
      return SQLITE_CORRUPT_VTAB;
    }
    p->iSwept = sqlite3_column_int64(pStmt, 0);
    p->iSweepId = sqlite3_column_int64(pStmt, 1);
    rc = sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
  }
  return rc;
}

/*
** Expire every live hold whose ttl has run out by `now`, taking it out of
** `reserved` at every level of its chain, and move the watermark to now.
** A clock that moved backwards only moves the watermark.
*/
int quotaSweep(QuotaTab *p, sqlite3_int64 now){
  sqlite3_int64 nextId = p->iSweepId;
  sqlite3_stmt *pStmt;
  int rc = SQLITE_OK;
  if( now==p->iSwept ) return SQLITE_OK;
  if( now>p->iSwept ){
    sqlite3_int64 *aHold = 0;
    int nHold = 0, i;
    rc = storeExpiredHolds(p, now, &aHold, &nHold, &nextId);
    for(i=0; rc==SQLITE_OK && i<nHold; i++){
      /* ended stays NULL: an expired hold ended at its `expires` */
      rc = quotaHoldEnd(p, aHold[(size_t)i*3], HOLD_EXPIRED, -1, -1);
      if( rc==SQLITE_OK ){
        rc = quotaAdjustReservedChain(p, aHold[(size_t)i*3+1], -aHold[(size_t)i*3+2]);
      }
    }
    sqlite3_free(aHold);
    if( rc==SQLITE_OK ) rc = storeRunInt(p, QS_LANE1_DELETE, 1, &now);
    if( rc!=SQLITE_OK ) return rc;
  }
  rc = quotaStmt(p, QS_SWEEP_SAVE, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, now);
  sqlite3_bind_int64(pStmt, 2, nextId);
  rc = quotaStepDone(pStmt);
  if( rc==SQLITE_OK ){
    p->iSwept = now;
    p->iSweepId = nextId;
  }
  return rc;
}

/*
** Bring a loaded key to time `now`: roll a calendar period over, drop the
** buckets that left a rolling window. With bWrite the changes are made in
** the store (k->bDirty asks the caller to save the key); without it only the
** in-memory values change (read paths).
*/
int quotaNormalize(QuotaTab *p, QuotaKey *k, sqlite3_int64 now, int bWrite){
  k->bPeriod = 0;
  if( k->eKind==QUOTA_LIFETIME ) return SQLITE_OK;
  if( k->eKind==QUOTA_ROLLING ){
    sqlite3_int64 edge = now - k->nLen;   /* buckets at or before edge are out */
    sqlite3_int64 aArg[2], atEdge = 0;
    int rc;
    if( !k->bOldest || k->oldest>edge ) return SQLITE_OK;
    aArg[0] = k->id;
    aArg[1] = edge;
    /* One index seek, however many buckets left: the running total at the
    ** edge is what left; the key's running total minus it is what stays. */
    rc = storeQueryInt(p, QS_WIN_TOTAL_AT, 2, aArg, 0, &atEdge);
    if( rc!=SQLITE_OK ) return rc;
    if( atEdge>k->wtotal || k->wtotal - atEdge>k->used ) return SQLITE_CORRUPT_VTAB;
    k->used = k->wtotal - atEdge;
    if( bWrite ){
      rc = storeRunInt(p, QS_WIN_DELETE_BEFORE, 2, aArg);
      if( rc==SQLITE_OK ){
        k->oldest = LARGEST_INT64;
        rc = storeQueryInt(p, QS_WIN_FIRST_AFTER, 2, aArg, LARGEST_INT64, &k->oldest);
        k->bOldest = k->oldest!=LARGEST_INT64;
      }
      if( rc!=SQLITE_OK ) return rc;
      k->bDirty |= QUOTA_DIRTY_COUNTS|QUOTA_DIRTY_PERIOD;
    }else{
      k->bOldest = 0;      /* no longer meaningful in memory */
    }
    return SQLITE_OK;
  }else{
    sqlite3_int64 anchor = k->bAnchor ? k->anchor : quotaCalDefaultAnchor(k->eKind);
    sqlite3_int64 s, e;
    quotaCalBounds(k->eKind, anchor, now, &s, &e);
    if( s>k->pstart ){
      k->used = 0;
      k->pstart = s;
      k->bDirty |= QUOTA_DIRTY_COUNTS|QUOTA_DIRTY_PERIOD;
    }else if( s<k->pstart ){
      /* The clock is behind the stored period (a pinned clock moved back):
      ** keep the stored period rather than resurrect an old one. */
      quotaCalBounds(k->eKind, anchor, k->pstart, &s, &e);
    }
    k->pend = e;
    k->bPeriod = 1;
    (void)bWrite;
    return SQLITE_OK;
  }
}

/*
** Effective values of a key at `now` for readers: normalized in memory, and
** with holds that expired since the last sweep no longer counted.
*/
int quotaEffective(QuotaTab *p, QuotaKey *k, sqlite3_int64 now){
  sqlite3_int64 *aHold = 0, nextId;
  int nHold = 0, i, rc = quotaNormalize(p, k, now, 0);
  if( rc!=SQLITE_OK || now<=p->iSwept || k->reserved==0 ) return rc;
  rc = storeExpiredHolds(p, now, &aHold, &nHold, &nextId);
  for(i=0; rc==SQLITE_OK && i<nHold; i++){
    sqlite3_int64 id = aHold[(size_t)i*3+1];
    int depth = 0;
    /* Does this hold count at k? Walk its chain upwards. */
    while( id!=0 && id!=k->id && depth++<QUOTA_MAX_DEPTH ){
      QuotaKey up;
      int bFound = 0;
      rc = quotaLoadKeyById(p, id, &up, &bFound);
      if( rc!=SQLITE_OK ) break;
      id = bFound ? up.parentId : 0;
    }
    if( rc==SQLITE_OK && id==k->id ){
      k->reserved -= aHold[(size_t)i*3+2];
      if( k->reserved<0 ) k->reserved = 0;
    }
  }
  sqlite3_free(aHold);
  return rc;
}

int quotaSaveKey(QuotaTab *p, QuotaKey *k){
  sqlite3_stmt *pStmt;
  int rc;
  if( !k->bDirty ) return SQLITE_OK;
  rc = quotaStmt(p, (k->bDirty & QUOTA_DIRTY_PERIOD) ? QS_KEY_SAVE
                                                     : QS_KEY_SAVE_COUNTS, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, k->id);
  sqlite3_bind_int64(pStmt, 2, k->used);
  sqlite3_bind_int64(pStmt, 3, k->reserved);
  if( k->bDirty & QUOTA_DIRTY_PERIOD ){
    sqlite3_bind_int64(pStmt, 4, k->pstart);
    if( k->bOldest ) sqlite3_bind_int64(pStmt, 5, k->oldest);
    else sqlite3_bind_null(pStmt, 5);
    sqlite3_bind_int64(pStmt, 6, k->wtotal);
  }
  k->bDirty = 0;
  storeKeyCacheSaved(p, k);
  return quotaStepDone(pStmt);
}

/*
** Charge `amount` to one level (in memory; rolling keys also get a bucket).
** Callers check every level first (chainChargeFits in functions.c), so that a call
** that cannot complete fails before its first write.
*/
int quotaCharge(QuotaTab *p, QuotaKey *k, sqlite3_int64 amount, sqlite3_int64 now){
  if( NEVER(k->used > LARGEST_INT64 - amount) ) return SQLITE_TOOBIG;
  k->used += amount;
  k->bDirty |= QUOTA_DIRTY_COUNTS;
  if( k->eKind==QUOTA_ROLLING && amount>0 ){
    sqlite3_int64 aArg[4];
    if( NEVER(k->wtotal > LARGEST_INT64 - amount) ) return SQLITE_TOOBIG;
    aArg[0] = k->id;
    aArg[1] = now;
    aArg[2] = amount;
    aArg[3] = k->wtotal;
    k->wtotal += amount;
    k->bDirty |= QUOTA_DIRTY_PERIOD;
    if( !k->bOldest ){
      k->oldest = now;
      k->bOldest = 1;
    }
    /* A busy key is charged many times a second: join that second's bucket
    ** when it is the newest; otherwise a new bucket (or the newest, when the
    ** clock is behind it). */
    if( aArg[3]>0 ){
      int rc = storeRunInt(p, QS_WIN_JOIN, 4, aArg);
      if( rc!=SQLITE_OK || sqlite3_changes(p->db)>0 ) return rc;
    }
    aArg[3] = k->wtotal;
    return storeRunInt(p, QS_WIN_ADD, 4, aArg);
  }
  return SQLITE_OK;
}

/* Replace the usage of a key (an admin's reset): a rolling window keeps the
** new value as one bucket at `now`, so it ages out like a charge. */
int quotaSetUsed(QuotaTab *p, QuotaKey *k, sqlite3_int64 used, sqlite3_int64 now){
  sqlite3_int64 aArg[1];
  int rc;
  aArg[0] = k->id;
  rc = storeRunInt(p, QS_WIN_DELETE_KEY, 1, aArg);
  if( rc!=SQLITE_OK ) return rc;
  k->used = 0;
  k->bOldest = 0;
  k->wtotal = 0;            /* an empty window: running totals start over */
  k->bDirty |= QUOTA_DIRTY_COUNTS|QUOTA_DIRTY_PERIOD;
  if( k->eKind==QUOTA_ROLLING ) return quotaCharge(p, k, used, now);
  k->used = used;
  return SQLITE_OK;
}

/*
** Seconds until `amount` fits at this level, for a level that denies it now.
** *pSecs = -1 means never (a lifetime balance, or no cap). Otherwise at least
** 1: for a calendar period the time to its end; for a rolling window the
** time until enough buckets leave it, or, if even an empty window cannot fit
** `amount`, until the oldest bucket leaves (the window's length if empty).
*/
int quotaRetryAfter(QuotaTab *p, QuotaKey *k, sqlite3_int64 amount,
                    sqlite3_int64 now, sqlite3_int64 *pSecs){
  sqlite3_int64 secs = -1;
  int rc = SQLITE_OK;
  if( NEVER(!k->bCap) || k->eKind==QUOTA_LIFETIME ){
    secs = -1;
  }else if( k->eKind!=QUOTA_ROLLING ){
    secs = k->pend - now;
  }else{
    /* A bucket's running total minus the running total at the edge is what
    ** leaves the window by the time that bucket does: binary-search the
    ** second at which enough has left, one index seek per step. */
    sqlite3_int64 edge = now - k->nLen;
    sqlite3_int64 base = k->wtotal - k->used;   /* running total at the edge */
    sqlite3_int64 aArg[2], first = LARGEST_INT64;
    aArg[0] = k->id;
    aArg[1] = edge;
    rc = storeQueryInt(p, QS_WIN_FIRST_AFTER, 2, aArg, LARGEST_INT64, &first);
    if( rc==SQLITE_OK && quotaAddSat(k->reserved, amount)<=k->cap
     && first!=LARGEST_INT64 ){
      /* used - freed + reserved + amount <= cap  <=>  freed >= need */
      sqlite3_int64 need = quotaAddSat(quotaAddSat(k->used, k->reserved) - k->cap,
                                       amount);
      sqlite3_int64 lo = first, hi = first;
      sqlite3_stmt *pNewest;
      /* Search [oldest bucket in the window, newest bucket]: by the newest
      ** everything has left, and used >= need when reserved + amount fit. */
      rc = quotaStmt(p, QS_WIN_NEWEST, &pNewest);
      if( rc==SQLITE_OK ){
        sqlite3_bind_int64(pNewest, 1, k->id);
        if( sqlite3_step(pNewest)==SQLITE_ROW ) hi = sqlite3_column_int64(pNewest, 0);
        rc = sqlite3_reset(pNewest);
      }
      while( rc==SQLITE_OK && lo<hi ){
        sqlite3_int64 mid = lo + (hi-lo)/2, at = 0;
        aArg[1] = mid;
        rc = storeQueryInt(p, QS_WIN_TOTAL_AT, 2, aArg, 0, &at);
        if( at - base >= need ) hi = mid; else lo = mid + 1;
      }
      secs = lo + k->nLen - now;
    }else if( rc==SQLITE_OK ){
      /* amount cannot fit even in an empty window: the time until the
      ** oldest charge leaves, or a whole window when there is none */
      secs = first!=LARGEST_INT64 ? first + k->nLen - now : k->nLen;
    }
  }
  if( secs!=-1 && NEVER(secs<1) ) secs = 1;
  *pSecs = secs;
  return rc;
}

int quotaInsertLedger(QuotaTab *p, const char *zKey, sqlite3_int64 amount,
    sqlite3_int64 at, const char *zReq, sqlite3_int64 holdId,
    sqlite3_value *pMeta, int bOver, int bLate, sqlite3_int64 *pId){
  sqlite3_stmt *pStmt;
  int rc = quotaStmt(p, QS_LEDGER_INSERT, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 2, amount);
  sqlite3_bind_int64(pStmt, 3, at);
  if( zReq ) sqlite3_bind_text(pStmt, 4, zReq, -1, SQLITE_STATIC);
  else sqlite3_bind_null(pStmt, 4);
  if( holdId ) sqlite3_bind_int64(pStmt, 5, holdId); else sqlite3_bind_null(pStmt, 5);
  if( pMeta ) sqlite3_bind_value(pStmt, 6, pMeta); else sqlite3_bind_null(pStmt, 6);
  sqlite3_bind_int(pStmt, 7, bOver);
  sqlite3_bind_int(pStmt, 8, bLate);
  rc = quotaStepDone(pStmt);
  sqlite3_clear_bindings(pStmt);
  if( rc==SQLITE_OK ) *pId = sqlite3_last_insert_rowid(p->db);
  return rc;
}

int quotaKeyName(QuotaTab *p, sqlite3_int64 id, char **pzKey){
  sqlite3_stmt *pStmt;
  int rc = quotaStmt(p, QS_KEY_NAME, &pStmt);
  *pzKey = 0;
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, id);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    *pzKey = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 0));
    rc = sqlite3_reset(pStmt);
    if( ALWAYS(rc==SQLITE_OK) && *pzKey==0 ) rc = SQLITE_NOMEM;
  }else if( NEVER(rc==SQLITE_DONE) ){
    sqlite3_reset(pStmt);
    rc = SQLITE_CORRUPT_VTAB;
  }else{
    sqlite3_reset(pStmt);
  }
  return rc;
}

/* Step QS_KEY_ROW to the row of key `id`; the caller resets *ppRow. */
int quotaKeyRow(QuotaTab *p, sqlite3_int64 id, sqlite3_stmt **ppRow){
  sqlite3_stmt *pStmt;
  int rc = quotaStmt(p, QS_KEY_ROW, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, id);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    *ppRow = pStmt;
    return SQLITE_OK;
  }
  sqlite3_reset(pStmt);
  return NEVER(rc==SQLITE_DONE) ? SQLITE_CORRUPT_VTAB : rc;
}

int quotaMetaGet(QuotaTab *p, const char *zName, sqlite3_int64 *pVal){
  sqlite3_stmt *pStmt;
  int rc = quotaStmt(p, QS_META_GET, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    *pVal = sqlite3_column_int64(pStmt, 0);
    rc = sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
    if( rc==SQLITE_DONE ) rc = SQLITE_CORRUPT_VTAB;   /* meta row missing */
  }
  return rc;
}

static int storeMetaSet(QuotaTab *p, const char *zName, sqlite3_int64 v){
  sqlite3_stmt *pStmt;
  int rc = quotaStmt(p, QS_META_SET, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 2, v);
  return quotaStepDone(pStmt);
}

/* The key k is being deleted: its live holds stop counting at its
** ancestors and become orphaned, ended `now` (purge counts from then). */
int quotaOrphanHolds(QuotaTab *p, QuotaKey *k, sqlite3_int64 now){
  sqlite3_stmt *pStmt;
  sqlite3_int64 *aHold = 0;   /* (id, amount) pairs */
  int nHold = 0, nAlloc = 0, i;
  int rc = quotaStmt(p, QS_HOLDS_OF_KEY, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, k->id);
  while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
    if( nHold>=nAlloc ){
      sqlite3_int64 *aNew;
      nAlloc = nAlloc ? nAlloc*2 : 16;
      aNew = sqlite3_realloc64(aHold, sizeof(sqlite3_int64)*2*nAlloc);
      if( aNew==0 ){ rc = SQLITE_NOMEM; break; }
      aHold = aNew;
    }
    aHold[(size_t)nHold*2] = sqlite3_column_int64(pStmt, 0);
    aHold[(size_t)nHold*2+1] = sqlite3_column_int64(pStmt, 1);
    if( aHold[(size_t)nHold*2+1]<0 ){ rc = SQLITE_CORRUPT_VTAB; break; }   /* hand-edited */
    nHold++;
  }
  if( rc==SQLITE_DONE ) rc = sqlite3_reset(pStmt); else sqlite3_reset(pStmt);
  for(i=0; rc==SQLITE_OK && i<nHold; i++){
    rc = quotaHoldEnd(p, aHold[(size_t)i*2], HOLD_ORPHANED, now, -1);
    if( rc==SQLITE_OK && k->parentId ){
      rc = quotaAdjustReservedChain(p, k->parentId, -aHold[(size_t)i*2+1]);
    }
  }
  sqlite3_free(aHold);
  return rc;
}

/* Levels in the deepest chain of descendants of key `id`, itself counted. */
int quotaSubtreeDepth(QuotaTab *p, sqlite3_int64 id, int *pnDepth){
  sqlite3_stmt *pStmt = 0;
  int rc = storePrepare(p,
      "WITH RECURSIVE down(kid, depth) AS (SELECT ?1, 1"
      " UNION ALL SELECT k.id, down.depth+1 FROM down JOIN {keys} AS k"
      " ON k.parent=down.kid WHERE down.depth<=?2)"
      " SELECT max(depth) FROM down", &pStmt);
  if( rc==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, id);
    sqlite3_bind_int(pStmt, 2, QUOTA_MAX_DEPTH);
    if( sqlite3_step(pStmt)==SQLITE_ROW ) *pnDepth = sqlite3_column_int(pStmt, 0);
    rc = sqlite3_finalize(pStmt);
  }else{
    sqlite3_finalize(pStmt);
  }
  return rc;
}

/* Remove a key and what only it uses; its ledger rows stay (the audit). */
int quotaDeleteKeyRows(QuotaTab *p, sqlite3_int64 id){
  int rc = storeRunInt(p, QS_WIN_DELETE_KEY, 1, &id);
  if( rc==SQLITE_OK ) rc = storeRunInt(p, QS_REQ_DELETE_KEY, 1, &id);
  if( rc==SQLITE_OK ) rc = storeRunInt(p, QS_NOTE_DELETE, 1, &id);
  if( rc==SQLITE_OK ) rc = storeRunInt(p, QS_KEY_DELETE, 1, &id);
  return rc;
}

/* Set the note of key `id`; a NULL note removes it. */
int quotaNoteSave(QuotaTab *p, sqlite3_int64 id, sqlite3_value *pNote){
  sqlite3_stmt *pStmt;
  int rc;
  if( sqlite3_value_type(pNote)==SQLITE_NULL ){
    return storeRunInt(p, QS_NOTE_DELETE, 1, &id);
  }
  rc = quotaStmt(p, QS_NOTE_PUT, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, id);
  sqlite3_bind_value(pStmt, 2, pNote);
  rc = quotaStepDone(pStmt);
  sqlite3_clear_bindings(pStmt);     /* the value may be freed after us */
  return rc;
}

/* ----------------------------------------------------------------- holds */

/* Make h->zKey a copy of the n bytes at z. */
static int storeHoldKeyName(QuotaHold *h, const char *z, size_t n){
  char *zCopy = h->zKeyBuf;
  if( n>=sizeof(h->zKeyBuf) ){
    zCopy = h->zKeyOwned = sqlite3_malloc64(n+1);
    if( zCopy==0 ) return SQLITE_NOMEM;
  }
  memcpy(zCopy, z, n);
  zCopy[n] = 0;
  h->zKey = zCopy;
  return SQLITE_OK;
}

/*
** Load hold `id`, and its key into *k when the key still exists (h->zKey
** is then its name; NULL when the key was deleted).
*/
int quotaHoldGet(QuotaTab *p, sqlite3_int64 id, QuotaHold *h, QuotaKey *k,
                 int *pFound){
  sqlite3_stmt *pStmt;
  const int bKeyCache = p->bUseCache && p->bKeyCached;
  int rc = quotaStmt(p, p->bUseCache ? QS_HOLD_GET_CACHED : QS_HOLD_GET, &pStmt);
  quotaHoldClear(h);
  *pFound = 0;
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, id);
  if( p->bUseCache ) sqlite3_bind_int64(pStmt, 2, bKeyCache ? p->keyCache.id : 0);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    *pFound = 1;
    const int i = QUOTA_KEY_COLUMNS;
    h->keyId = sqlite3_column_int64(pStmt, i);
    h->amount = sqlite3_column_int64(pStmt, i+1);
    h->expires = sqlite3_column_int64(pStmt, i+2);
    h->state = sqlite3_column_int(pStmt, i+3);
    h->charged = sqlite3_column_int64(pStmt, i+4);
    if( !p->bUseCache ){
      p->iSwept = sqlite3_column_int64(pStmt, i+7);
      p->iSweepId = sqlite3_column_int64(pStmt, i+8);
    }
    /* Copies: the ledger row of a settle needs both after the reset. */
    if( sqlite3_column_type(pStmt, i+5)!=SQLITE_NULL ){
      h->pReq = sqlite3_value_dup(sqlite3_column_value(pStmt, i+5));
      if( h->pReq==0 ) rc = SQLITE_NOMEM;
    }
    if( sqlite3_column_type(pStmt, i+6)!=SQLITE_NULL ){
      const char *zKey = (const char*)sqlite3_column_text(pStmt, i+6);
      if( zKey==0
       || storeHoldKeyName(h, zKey, (size_t)sqlite3_column_bytes(pStmt, i+6)) ){
        rc = SQLITE_NOMEM;
      }else if( quotaReadKeyRow(p, pStmt, 0, k)!=SQLITE_OK ){
        rc = SQLITE_CORRUPT_VTAB;
      }
    }else if( bKeyCache && h->keyId==p->keyCache.id ){
      *k = p->keyCache;
      /* cannot fail: a cached name fits zKeyBuf (both QUOTA_KEY_CACHE_NAME) */
      (void)storeHoldKeyName(h, p->zKeyCache, strlen(p->zKeyCache));
    }
    if( h->amount<0 || h->state<HOLD_LIVE || h->state>HOLD_ORPHANED ){
      rc = SQLITE_CORRUPT_VTAB;
    }
    if( rc==SQLITE_ROW ) rc = sqlite3_reset(pStmt); else sqlite3_reset(pStmt);
  }else if( rc==SQLITE_DONE ){
    rc = sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
  }
  return rc;
}

void quotaHoldClear(QuotaHold *h){
  sqlite3_value_free(h->pReq);
  sqlite3_free(h->zKeyOwned);
  memset(h, 0, sizeof(*h));
}

/*
** Insert a live hold. bDefaultTtl says the ttl is the table's default: such
** a hold joins the ordered lane unless that would break its order (see
** storeExpiredHolds). p->iL0Max must hold what the key load read.
*/
int quotaHoldInsert(QuotaTab *p, sqlite3_int64 keyId, sqlite3_int64 amount,
                    sqlite3_int64 expires, int bDefaultTtl, const char *zReq,
                    sqlite3_int64 *pId){
  sqlite3_stmt *pStmt;
  int bLane0 = bDefaultTtl && expires>=p->iL0Max;
  int rc = quotaStmt(p, QS_HOLD_INSERT, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, keyId);
  sqlite3_bind_int64(pStmt, 2, amount);
  sqlite3_bind_int64(pStmt, 3, expires);
  if( zReq ) sqlite3_bind_text(pStmt, 4, zReq, -1, SQLITE_STATIC);
  else sqlite3_bind_null(pStmt, 4);
  sqlite3_bind_int(pStmt, 5, bLane0 ? 0 : 1);
  sqlite3_bind_int64(pStmt, 6, bLane0 ? expires : p->iL0Max);
  rc = quotaStepDone(pStmt);
  sqlite3_bind_null(pStmt, 4);
  if( rc!=SQLITE_OK ) return rc;
  *pId = sqlite3_last_insert_rowid(p->db);
  if( bLane0 ){
    p->iL0Max = expires;
  }else{
    sqlite3_int64 aArg[2];
    aArg[0] = expires;
    aArg[1] = *pId;
    rc = storeRunInt(p, QS_EXPIRY_INSERT, 2, aArg);
  }
  return rc;
}

/* End a hold: ended/charged of -1 store NULL. */
int quotaHoldEnd(QuotaTab *p, sqlite3_int64 id, int state, sqlite3_int64 ended,
                 sqlite3_int64 charged){
  sqlite3_stmt *pStmt;
  int rc = quotaStmt(p, QS_HOLD_END, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, id);
  sqlite3_bind_int(pStmt, 2, state);
  if( ended>=0 ) sqlite3_bind_int64(pStmt, 3, ended); else sqlite3_bind_null(pStmt, 3);
  if( charged>=0 ) sqlite3_bind_int64(pStmt, 4, charged); else sqlite3_bind_null(pStmt, 4);
  return quotaStepDone(pStmt);
}

/* -------------------------------------------------------------- requests */

int quotaRequestGet(QuotaTab *p, sqlite3_int64 keyId, const char *zReq,
                    sqlite3_int64 now, QuotaRequest *r){
  sqlite3_stmt *pStmt;
  int rc = quotaStmt(p, QS_REQ_GET, &pStmt);
  memset(r, 0, sizeof(*r));
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, keyId);
  sqlite3_bind_text(pStmt, 2, zReq, -1, SQLITE_STATIC);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    sqlite3_int64 at = sqlite3_column_int64(pStmt, 3);
    /* Remembered while younger than the window; a clock behind `at` (a
    ** pinned clock moved back) still remembers it. */
    if( quotaSubSat(now, at) < p->nIdem ){
      r->bFound = 1;
      r->op = sqlite3_column_int(pStmt, 0);
      r->amount = sqlite3_column_int64(pStmt, 1);
      r->bResultNull = sqlite3_column_type(pStmt, 2)==SQLITE_NULL;
      r->result = sqlite3_column_int64(pStmt, 2);
    }
    rc = sqlite3_reset(pStmt);
  }else if( rc==SQLITE_DONE ){
    rc = sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
  }
  sqlite3_bind_null(pStmt, 2);
  return rc;
}

int quotaRequestPut(QuotaTab *p, sqlite3_int64 keyId, const char *zReq, int op,
                    sqlite3_int64 amount, sqlite3_int64 result, sqlite3_int64 now){
  sqlite3_stmt *pStmt;
  int rc = quotaStmt(p, QS_REQ_PUT, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, keyId);
  sqlite3_bind_text(pStmt, 2, zReq, -1, SQLITE_STATIC);
  sqlite3_bind_int(pStmt, 3, op);
  sqlite3_bind_int64(pStmt, 4, amount);
  sqlite3_bind_int64(pStmt, 5, result);
  sqlite3_bind_int64(pStmt, 6, now);
  rc = quotaStepDone(pStmt);
  sqlite3_bind_null(pStmt, 2);
  return rc;
}

/* ----------------------------------------------------------------- purge */

/* Run an ad hoc statement (purge and integrity are not hot paths). */
static int storePrepare(QuotaTab *p, const char *zTemplate, sqlite3_stmt **ppStmt){
  char *zSql = storeExpand(p->zDb, p->zName, zTemplate);
  int rc;
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(p->db, zSql, -1, ppStmt, 0);
  sqlite3_free(zSql);
  return rc;
}

/* Delete what zTemplate selects (?1 = cutoff, ?2 = limit); add the count. */
static int storePurgeSimple(QuotaTab *p, const char *zTemplate,
                            sqlite3_int64 cutoff, sqlite3_int64 *pn){
  sqlite3_stmt *pStmt = 0;
  int rc = storePrepare(p, zTemplate, &pStmt);
  if( rc==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, cutoff);
    sqlite3_bind_int64(pStmt, 2, p->nPurgeLimit);
    rc = sqlite3_step(pStmt);
    if( rc==SQLITE_DONE ){
      rc = SQLITE_OK;
      *pn += sqlite3_changes(p->db);
    }
  }
  sqlite3_finalize(pStmt);
  return rc;
}

/*
** quota_purge(): one bounded step of cleaning. Examines at most
** nPurgeLimit rows of each of quota_requests, quota_holds and quota_ledger:
**   - request ids at least the idempotency window old;
**   - holds that ended (or expired) at least the idempotency window ago;
**   - ledger rows at least their key's retention old (the table's default
**     for keys without one, and for keys that no longer exist).
** Requests and holds are scanned oldest first. The ledger is scanned from a
** cursor kept in quota_meta, so rows kept for a long retention are not read
** again by every call; at the end of the ledger the cursor starts over.
** The newest row of holds and of the ledger is never removed, so their ids
** are never given out twice.
*/
int quotaPurge(QuotaTab *p, sqlite3_int64 now, sqlite3_int64 *pnRemoved){
  sqlite3_int64 n = 0, cursor = 0, maxId = 0, last = 0, nSeen = 0;
  sqlite3_stmt *pScan = 0, *pDel = 0, *pMax = 0;
  int rc;
  rc = storePurgeSimple(p,
      "DELETE FROM {requests} WHERE id IN"
      " (SELECT id FROM {requests} ORDER BY id LIMIT ?2) AND at<=?1",
      quotaSubSat(now, p->nIdem), &n);
  if( rc==SQLITE_OK ) rc = storePurgeSimple(p,
      "DELETE FROM {holds} WHERE id IN"
      " (SELECT id FROM {holds} WHERE id<(SELECT max(id) FROM {holds})"
      "  AND state<>0 ORDER BY id LIMIT ?2) AND coalesce(ended, expires)<=?1",
      quotaSubSat(now, p->nIdem), &n);
  if( rc==SQLITE_OK ) rc = quotaMetaGet(p, "purgepos", &cursor);
  if( rc==SQLITE_OK ) rc = storePrepare(p, "SELECT max(id) FROM {ledger}", &pMax);
  if( rc==SQLITE_OK ){
    if( sqlite3_step(pMax)==SQLITE_ROW ) maxId = sqlite3_column_int64(pMax, 0);
    rc = sqlite3_finalize(pMax);
  }
  if( rc==SQLITE_OK ) rc = storePrepare(p,
      "SELECT l.id, l.at, k.retention FROM {ledger} AS l"
      " LEFT JOIN {keys} AS k ON k.key=l.key"
      " WHERE l.id>?1 ORDER BY l.id LIMIT ?2", &pScan);
  if( rc==SQLITE_OK ) rc = storePrepare(p, "DELETE FROM {ledger} WHERE id=?1", &pDel);
  if( rc==SQLITE_OK ){
    sqlite3_int64 *aDel = 0;
    int nDel = 0, nAlloc = 0, i;
    sqlite3_bind_int64(pScan, 1, cursor);
    sqlite3_bind_int64(pScan, 2, p->nPurgeLimit);
    while( (rc = sqlite3_step(pScan))==SQLITE_ROW ){
      sqlite3_int64 id = sqlite3_column_int64(pScan, 0);
      sqlite3_int64 at = sqlite3_column_int64(pScan, 1);
      sqlite3_int64 keep = sqlite3_column_type(pScan, 2)==SQLITE_NULL
                         ? p->nRetention : sqlite3_column_int64(pScan, 2);
      last = id;
      nSeen++;
      if( keep<0 || id>=maxId || quotaSubSat(now, at) < keep ) continue;
      if( nDel>=nAlloc ){
        sqlite3_int64 *aNew;
        nAlloc = nAlloc ? nAlloc*2 : 64;
        aNew = sqlite3_realloc64(aDel, sizeof(sqlite3_int64)*nAlloc);
        if( aNew==0 ){ rc = SQLITE_NOMEM; break; }
        aDel = aNew;
      }
      aDel[nDel++] = id;
    }
    if( rc==SQLITE_DONE ) rc = SQLITE_OK;
    sqlite3_reset(pScan);
    for(i=0; rc==SQLITE_OK && i<nDel; i++){
      sqlite3_bind_int64(pDel, 1, aDel[i]);
      rc = quotaStepDone(pDel);
      n++;
    }
    sqlite3_free(aDel);
    if( rc==SQLITE_OK ){
      rc = storeMetaSet(p, "purgepos", nSeen<p->nPurgeLimit ? 0 : last);
    }
  }
  sqlite3_finalize(pScan);
  sqlite3_finalize(pDel);
  *pnRemoved = n;
  return rc;
}

/* -------------------------------------------------------------- upgrades */

/*
** azUpgrade[v-1] takes a store from schema v to v+1. A step only creates
** tables and moves rows: it runs while the connection may be preparing a
** statement that already refers to the store's tables (the upgrade runs in
** xConnect), and creating a table leaves those references valid where
** dropping or altering one would not.
*/
static const char *const azUpgrade[QUOTA_SCHEMA_VERSION-1] = {
  /* 1 -> 2: notes leave the key row, which every call rewrites */
  "CREATE TABLE {notes}(id INTEGER PRIMARY KEY, note);"
  "INSERT INTO {notes}(id, note)"
  "  SELECT id, note FROM {keys} WHERE note IS NOT NULL;"
  "UPDATE {keys} SET note=NULL WHERE note IS NOT NULL;",
};

/*
** Bring a store up to QUOTA_SCHEMA_VERSION, atomically, in the transaction
** a function call would use (functions.c, callBegin): one of its own; a
** savepoint inside the caller's; or, inside a statement that writes (where
** SQLite refuses both), none: that statement's own transaction then keeps
** or drops the upgrade with its own changes. The version is read again
** under the write lock, since another connection may have upgraded the
** store since the caller read it. On failure nothing has changed and *pzErr
** says why.
*/
int quotaStoreUpgrade(QuotaTab *p, sqlite3_int64 iFrom, char **pzErr){
  enum { UPGRADE_BARE, UPGRADE_OWN, UPGRADE_SAVEPOINT };
  /* Every statement that opens, ends or undoes the transaction is prepared
  ** before it opens: after an allocation fails inside it, SQLite may refuse
  ** to prepare anything more (inside a function call, until the outer
  ** statement ends), and an upgrade we could not undo would stay open with
  ** the write lock, or half done in the caller's transaction. The savepoint
  ** is the one calls use (quota_call): a call opens its own only after the
  ** table is connected, so the two never nest. */
  static const int aTxn[] = {
    QS_BEGIN, QS_COMMIT, QS_ROLLBACK, QS_SAVEPOINT, QS_RELEASE, QS_ROLLBACK_TO,
    QS_LOCK, QS_META_GET, QS_META_SET
  };
  sqlite3 *db = p->db;
  sqlite3_int64 iSchema = iFrom;
  sqlite3_stmt *pUnused;
  int eMode = UPGRADE_BARE, rc = SQLITE_OK;
  size_t i;
  for(i=0; rc==SQLITE_OK && i<sizeof(aTxn)/sizeof(aTxn[0]); i++){
    rc = quotaStmt(p, aTxn[i], &pUnused);
  }
  if( rc==SQLITE_OK && sqlite3_get_autocommit(db) ){
    if( sqlite3_txn_state(db, p->zDb)!=SQLITE_TXN_WRITE ){
      rc = storeRunInt(p, QS_BEGIN, 0, 0);
      if( rc==SQLITE_OK ) eMode = UPGRADE_OWN;
    }
  }else if( rc==SQLITE_OK ){
    rc = storeRunInt(p, QS_SAVEPOINT, 0, 0);
    if( rc==SQLITE_OK ) eMode = UPGRADE_SAVEPOINT;
    if( rc==SQLITE_BUSY ) rc = SQLITE_OK;    /* statements in progress */
    if( rc==SQLITE_OK ) rc = storeRunInt(p, QS_LOCK, 0, 0);  /* busy handler */
  }
  if( rc==SQLITE_OK ) rc = quotaMetaGet(p, "schema", &iSchema);
  while( rc==SQLITE_OK && iSchema>=1 && iSchema<QUOTA_SCHEMA_VERSION ){
    rc = storeExec(db, p->zDb, p->zName, azUpgrade[iSchema-1]);
    if( rc==SQLITE_OK ) rc = storeMetaSet(p, "schema", ++iSchema);
  }
  if( rc==SQLITE_OK && eMode==UPGRADE_OWN ){
    rc = storeRunInt(p, QS_COMMIT, 0, 0);
  }else if( rc==SQLITE_OK && eMode==UPGRADE_SAVEPOINT ){
    rc = storeRunInt(p, QS_RELEASE, 0, 0);
  }
  if( rc!=SQLITE_OK ){
    *pzErr = sqlite3_mprintf("%s: cannot upgrade the store from schema %lld "
        "to %d: %s", p->zName, iFrom, QUOTA_SCHEMA_VERSION, sqlite3_errmsg(db));
    if( eMode==UPGRADE_OWN && !sqlite3_get_autocommit(db) ){
      storeRunInt(p, QS_ROLLBACK, 0, 0);
    }else if( eMode==UPGRADE_SAVEPOINT ){
      storeRunInt(p, QS_ROLLBACK_TO, 0, 0);
      storeRunInt(p, QS_RELEASE, 0, 0);
    }
  }
  return rc;
}

/* ------------------------------------------------------------- integrity */

/*
** Check that the counters agree with the rows they summarise. Sets *pzErr
** to a description of the first disagreement (NULL when all is well).
*/
int quotaIntegrity(QuotaTab *p, char **pzErr){
  static const char *azCheck[] = {
    /* parent chains end within QUOTA_MAX_DEPTH levels (no cycle); depth
    ** counts links, one fewer than levels */
    "WITH RECURSIVE up(start, kid, depth) AS ("
    "  SELECT id, parent, 1 FROM {keys} WHERE parent IS NOT NULL"
    "  UNION ALL SELECT up.start, k.parent, up.depth+1 FROM up JOIN {keys} AS k"
    "  ON k.id=up.kid WHERE k.parent IS NOT NULL AND up.depth<" QUOTA_STR(QUOTA_MAX_DEPTH) ")"
    " SELECT 'key ' || quote((SELECT key FROM {keys} WHERE id=start)) ||"
    " ': parent chain longer than " QUOTA_STR(QUOTA_MAX_DEPTH) " levels or a cycle'"
    " FROM up WHERE depth>=" QUOTA_STR(QUOTA_MAX_DEPTH) " LIMIT 1",
    /* reserved = the live holds of the key and of all its descendants */
    "WITH RECURSIVE up(amount, kid, depth) AS ("
    "  SELECT amount, key_id, 1 FROM {holds} WHERE state=0"
    "  UNION ALL SELECT up.amount, k.parent, up.depth+1 FROM up JOIN {keys} AS k"
    "  ON k.id=up.kid WHERE k.parent IS NOT NULL AND up.depth<=64)"
    " SELECT 'key ' || quote(k.key) || ': reserved ' || k.reserved ||"
    " ' but its live holds sum to ' || coalesce(s.total, 0)"
    " FROM {keys} AS k LEFT JOIN"
    " (SELECT kid, sum(amount) AS total FROM up GROUP BY kid) AS s ON s.kid=k.id"
    " WHERE k.reserved<>coalesce(s.total, 0) LIMIT 1",
    /* a rolling key's used = its buckets; others have none */
    "SELECT 'key ' || quote(k.key) || ': used ' || k.used ||"
    " ' but its window buckets sum to ' || coalesce(s.total, 0)"
    " FROM {keys} AS k LEFT JOIN (SELECT key_id, sum(amount) AS total,"
    " min(sec) AS first FROM {window} GROUP BY key_id) AS s ON s.key_id=k.id"
    " WHERE (k.kind=6 AND (k.used<>coalesce(s.total, 0)"
    "   OR k.oldest IS NOT s.first))"
    " OR (k.kind<>6 AND (s.total IS NOT NULL OR k.oldest IS NOT NULL)) LIMIT 1",
    /* each bucket's running total is the previous one's plus its amount,
    ** and the newest is the key's */
    "SELECT 'key ' || quote(k.key) || ': window running totals disagree'"
    " FROM {keys} AS k JOIN (SELECT key_id, sec, total, amount,"
    "   lag(total) OVER (PARTITION BY key_id ORDER BY sec) AS prev,"
    "   row_number() OVER (PARTITION BY key_id ORDER BY sec DESC) AS rn"
    "   FROM {window}) AS w ON w.key_id=k.id"
    " WHERE (w.prev IS NOT NULL AND w.total<>w.prev+w.amount)"
    " OR (w.rn=1 AND w.total<>k.wtotal) LIMIT 1",
    /* settings within range, parents that exist */
    "SELECT 'key ' || quote(k.key) || ': invalid stored settings'"
    " FROM {keys} AS k WHERE k.kind NOT BETWEEN 0 AND 6 OR k.used<0"
    " OR k.reserved<0 OR k.cap<0 OR (k.kind=6 AND k.len<=0)"
    " OR (k.parent IS NOT NULL AND NOT EXISTS"
    "   (SELECT 1 FROM {keys} AS q WHERE q.id=k.parent)) LIMIT 1",
    /* a live hold outside the ordered lane is findable by its expiry */
    "SELECT 'hold ' || h.id || ': live but missing from the expiry index'"
    " FROM {holds} AS h WHERE h.state=0 AND h.lane=1 AND NOT EXISTS"
    " (SELECT 1 FROM {expiry} AS e WHERE e.hold_id=h.id AND e.expires=h.expires)"
    " AND h.expires>(SELECT value FROM {meta} WHERE name='swept') LIMIT 1",
    /* the ordered lane is in expiry order: each lane-0 hold expires no
    ** earlier than the lane-0 hold before it */
    "SELECT 'hold ' || b.id || ': out of expiry order in the ordered lane'"
    " FROM {holds} AS a JOIN {holds} AS b ON b.id=(SELECT min(c.id)"
    " FROM {holds} AS c WHERE c.id>a.id AND c.lane=0)"
    " WHERE a.lane=0 AND b.expires<a.expires LIMIT 1",
    /* notes belong to existing keys */
    "SELECT 'note of key id ' || n.id || ': the key does not exist'"
    " FROM {notes} AS n WHERE NOT EXISTS"
    " (SELECT 1 FROM {keys} AS k WHERE k.id=n.id) LIMIT 1",
    /* live holds belong to existing keys */
    "SELECT 'hold ' || h.id || ': live but its key does not exist'"
    " FROM {holds} AS h WHERE h.state=0 AND NOT EXISTS"
    " (SELECT 1 FROM {keys} AS k WHERE k.id=h.key_id) LIMIT 1",
  };
  size_t i;
  int rc = SQLITE_OK;
  *pzErr = 0;
  for(i=0; rc==SQLITE_OK && *pzErr==0 && i<sizeof(azCheck)/sizeof(azCheck[0]); i++){
    sqlite3_stmt *pStmt = 0;
    rc = storePrepare(p, azCheck[i], &pStmt);
    if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      *pzErr = sqlite3_mprintf("%s: %s", p->zName, sqlite3_column_text(pStmt, 0));
      if( *pzErr==0 ) rc = SQLITE_NOMEM;
    }
    if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt); else sqlite3_finalize(pStmt);
  }
  return rc;
}
