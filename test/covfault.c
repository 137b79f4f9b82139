/*
** covfault.c - the branches of ext/ that only a failed allocation, an
** unusual VFS or an unusual host reaches, and that oomtest.c does not:
** failures inside read-only functions and error paths, inside the table's
** writes that end in an error, inside a sweep, a rename, a UTF-16 database,
** and the entry point's refusals.
**
**   build/covfault [EXT] [-v] [--case NAME]
**
** EXT is the loadable extension (quota.so); the tests of the entry point of
** the loadable build (part 3) are skipped without it.
**
** 1. Allocation faults. For every case: a fresh in-memory database is set up
**    (healthy), then allocation N of the case's statement fails (N = 1, 2,
**    ... until a run fails none). Each run must give the reference outcome
**    (the same rows, or the same error code and message) or SQLITE_NOMEM;
**    leave no transaction open; leave the database as it was before the
**    statement or as the reference run left it; and leave the connection
**    usable (a quota_integrity() call after it). After every run, with all
**    connections closed, sqlite3_memory_used() is back at its baseline.
** 2. The clock through a version-1 VFS and through a version-2 VFS without
**    xCurrentTimeInt64 (conn.c, quotaNow: xCurrentTime is used).
** 3. The loadable build's entry point called with a doctored API table:
**    a host SQLite older than 3.40.0 is refused, and so is a second SQLite
**    library in the same process; with and without an error message
**    pointer. And sqlite3_quota_init() without one, under allocation faults.
**
** Output: "covfault: SQLite VERSION", "covfault: case NAME N points" per
**         case, the clock and entry point results, then
**         "covfault: total N points, N violations"
** Exit status 0 when no violation was seen, 1 otherwise, 2 on a setup error.
*/
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef SQLITE_CORE
# define SQLITE_CORE 1            /* sqlite3ext.h: the API table's type only */
#endif
#include <sqlite3.h>
#include <sqlite3ext.h>
#include "quota.h"

#define DRIVER_PROG "covfault"
#include "driver_util.h"
#include "faultbuf.h"
#include "faultmem.h"

static int bVerbose = 0;
static int nViolation = 0;

static void violation(const char *zCase, sqlite3_int64 iN, const char *zFmt, ...){
  va_list ap;
  nViolation++;
  printf("covfault: VIOLATION case=%s n=%lld: ", zCase, (long long)iN);
  va_start(ap, zFmt);
  vprintf(zFmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
}

/*--------------------------------------------------------------------------
** Running SQL. runSql() runs every statement of zSql and describes the
** outcome in pOut: "ok" and the rows, or "error RC: MESSAGE". Returns the
** result code. Reading the results allocates nothing that is counted.
*/
static int runSql(sqlite3 *db, const char *zSql, Buf *pOut){
  int rc = SQLITE_OK;
  const char *zTail = zSql;
  bufReset(pOut);
  bufAppend(pOut, "ok", 2);
  while( rc==SQLITE_OK && zTail && zTail[0] ){
    sqlite3_stmt *pStmt = 0;
    rc = sqlite3_prepare_v2(db, zTail, -1, &pStmt, &zTail);
    if( rc!=SQLITE_OK || pStmt==0 ) break;
    while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
      int i;
      gMem.nPause++;
      for(i=0; i<sqlite3_column_count(pStmt); i++){
        const char *z = (const char*)sqlite3_column_text(pStmt, i);
        bufPrintf(pOut, "|%s", z ? z : "NULL");
      }
      gMem.nPause--;
    }
    if( rc==SQLITE_DONE ) rc = SQLITE_OK;
    sqlite3_finalize(pStmt);
  }
  if( rc!=SQLITE_OK ){
    gMem.nPause++;
    bufReset(pOut);
    bufPrintf(pOut, "error %d: %s", sqlite3_extended_errcode(db), sqlite3_errmsg(db));
    gMem.nPause--;
  }
  return rc;
}

static void mustSql(sqlite3 *db, const char *zSql){
  Buf out = {0, 0, 0};
  if( runSql(db, zSql, &out)!=SQLITE_OK ) fatal("%s: %s", zSql, bufText(&out));
  bufFree(&out);
}

/* Every ordinary table, every row. */
static void dumpDb(sqlite3 *db, Buf *pOut){
  sqlite3_stmt *pList = 0;
  Buf one = {0, 0, 0};
  bufReset(pOut);
  if( sqlite3_prepare_v2(db, "SELECT name, sql FROM sqlite_schema ORDER BY name",
                         -1, &pList, 0) ) fatal("dump: %s", sqlite3_errmsg(db));
  while( sqlite3_step(pList)==SQLITE_ROW ){
    const char *zName = (const char*)sqlite3_column_text(pList, 0);
    const char *zSql = (const char*)sqlite3_column_text(pList, 1);
    bufPrintf(pOut, "-- %s %s\n", zName, zSql ? zSql : "");
    if( zSql && strncmp(zSql, "CREATE TABLE", 12)==0 ){
      char *z = sqlite3_mprintf("SELECT * FROM \"%w\"", zName);
      if( runSql(db, z, &one)!=SQLITE_OK ) fatal("dump %s: %s", zName, bufText(&one));
      bufAppend(pOut, one.z, one.n);
      bufAppend(pOut, "\n", 1);
      sqlite3_free(z);
    }
  }
  sqlite3_finalize(pList);
  bufFree(&one);
}

static sqlite3 *openMem(void){
  sqlite3 *db = 0;
  char *zErr = 0;
  if( sqlite3_open(":memory:", &db)!=SQLITE_OK ) fatal("open");
  sqlite3_extended_result_codes(db, 1);
  if( sqlite3_quota_init(db, &zErr, 0)!=SQLITE_OK ) fatal("init: %s", zErr);
  return db;
}

/*--------------------------------------------------------------------------
** 1. Allocation faults.
*/
#define BASE \
  "SELECT quota_clock('2026-03-15 12:00:00');" \
  "CREATE VIRTUAL TABLE quota USING quota(hold_ttl='10 minutes'," \
  "  idempotency='2 hours', retention='1 hour');" \
  "INSERT INTO quota(key, cap, period) VALUES ('org', 1000, 'month');" \
  "INSERT INTO quota(key, cap, parent, note) VALUES ('k1', 100, 'org', 'a note');" \
  "INSERT INTO quota(key, cap, period) VALUES ('k2', 50, 'rolling 1 hour');" \
  "INSERT INTO quota(key, cap) VALUES ('42', 10);" \
  "SELECT quota_consume('k1', 10, 'seed-1');" \
  "SELECT quota_record('k2', 20);" \
  "SELECT quota_clock('2026-03-15 12:10:00');" \
  "SELECT quota_record('k2', 25);" \
  "SELECT quota_reserve('k1', 30);" \
  "SELECT quota_reserve('k1', 5, NULL, 60);" \
  "CREATE TABLE t(v);" \
  "INSERT INTO t VALUES ('2026-03-15 12:00:00'), ('day'), ('k1');"

typedef struct Case Case;
struct Case {
  const char *zName;
  const char *zSetup;         /* run healthy after BASE */
  const char *zSql;           /* run under the fault */
  int bUtf16;                 /* the database is UTF-16 */
  int bMarks;                 /* only the points around nested statements */
};

static const Case aCase[] = {
  /* read-only functions (functions.c callEnd, store.c quotaKeyName ...) */
  { "check", "", "SELECT quota_check('k1', 5)", 0, 0 },
  { "status", "", "SELECT quota_status('k1', 95)", 0, 0 },
  { "status-rolling", "", "SELECT quota_status('k2', 40)", 0, 0 },
  { "table", "", "SELECT * FROM quota", 0, 0 },
  { "integrity-bad", "UPDATE quota_keys SET reserved=reserved+1 WHERE key='org'",
    "SELECT quota_integrity()", 0, 0 },
  { "first-of-next-month", "",
    "SELECT first_of_next_month('2026-01-31', '+1 day', 'start of day')", 0, 0 },
  { "debug", "", "SELECT length(quota_debug())>0", 0, 0 },
  { "clock", "", "SELECT quota_clock(v) FROM t WHERE rowid=1", 0, 0 },
  /* errors (functions.c argError, clockFunc) */
  { "clock-bad", "", "SELECT quota_clock('garbage')", 0, 0 },
  { "arg-bad", "", "SELECT quota_consume('k1', -1)", 0, 0 },
  { "int-key", "", "SELECT quota_check(42)", 0, 0 },
  /* writes: a sweep of both lanes and a rolling window moving */
  { "sweep", "SELECT quota_clock('2026-03-15 13:30:00')",
    "SELECT quota_consume('k2', 1)", 0, 0 },
  { "sweep-lane1", "SELECT quota_release(1);"
                  "SELECT quota_clock('2026-03-15 13:30:00')",
    "SELECT quota_consume('k2', 1)", 0, 0 },
  { "purge", "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<70)"
             " SELECT count(quota_record('org', 1)) FROM c;"
             "SELECT quota_clock('2026-03-15 14:00:00')",
    "SELECT quota_purge()", 0, 0 },
  { "settle", "", "SELECT quota_settle(1, 20)", 0, 0 },
  /* a key name too long for the hold's buffer is copied to the heap */
  { "settle-long-key", "INSERT INTO quota(key, cap) VALUES (printf('%.70c', 'x'), 100);"
                       "SELECT quota_reserve(printf('%.70c', 'x'), 7)",
    "SELECT quota_settle(3, 5)", 0, 0 },
  /* the table's writes (vtab.c) */
  { "update", "", "UPDATE quota SET cap=cap+1 WHERE key='k1'", 0, 0 },
  { "reparent", "", "UPDATE quota SET parent='org' WHERE key='k2'", 0, 0 },
  { "cycle", "", "UPDATE quota SET parent='k1' WHERE key='org'", 0, 0 },
  { "delete", "", "DELETE FROM quota WHERE key='k1'", 0, 0 },
  { "delete-parent", "", "DELETE FROM quota WHERE key='org'", 0, 0 },
  { "insert-rolling", "",
    "INSERT INTO quota(key, period, used) VALUES ('r2', 'rolling 1 minute', 5)", 0, 0 },
  { "insert-int-parent", "", "INSERT INTO quota(key, parent) VALUES ('c', 42)", 0, 0 },
  { "bad-period", "", "INSERT INTO quota(key, period) VALUES ('x', 'fortnight')", 0, 0 },
  { "rename", "", "ALTER TABLE quota RENAME TO q2", 0, 1 },
  { "create", "", "CREATE VIRTUAL TABLE q3 USING quota", 0, 1 },
  { "drop", "", "DROP TABLE quota", 0, 1 },
  /* admission control: partial holds, hold reads, leases, token buckets
  ** (their rate read from quota_keyconf, refilled, their retry_after) */
  { "upto", "", "SELECT quota_reserve_upto('k1', 1, 500, 'u-1')", 0, 0 },
  { "upto-replay", "SELECT quota_reserve_upto('k1', 1, 500, 'u-1')",
    "SELECT quota_reserve_upto('k1', 2, 500, 'u-1')", 0, 0 },
  { "upto-ttl", "", "SELECT quota_reserve_upto('k1', 1, 500, NULL, '2 hours')", 0, 0 },
  { "hold", "", "SELECT quota_hold(1), quota_hold(99)", 0, 0 },
  { "extend", "", "SELECT quota_extend(1, 60)", 0, 0 },
  { "extend-lane1", "", "SELECT quota_extend(2, '2 hours')", 0, 0 },
  { "insert-rate", "", "INSERT INTO quota(key, cap, period, parent)"
    " VALUES ('rb', 10, 'rate 5 per minute', 'org')", 0, 0 },
  { "rate-status", "INSERT INTO quota(key, cap, period) VALUES ('rb', 10, 'rate 5 per minute');"
    "SELECT quota_consume('rb', 9);"
    "SELECT quota_clock('2026-03-15 12:10:07')",
    "SELECT quota_status('rb', 8), remaining, retry_after FROM quota WHERE key='rb'", 0, 0 },
  { "rate-hold", "INSERT INTO quota(key, cap, period) VALUES ('rb', 10, 'rate 5 per minute');"
    "SELECT quota_reserve('rb', 6, NULL, 5);"
    "SELECT quota_clock('2026-03-15 12:10:20')",
    "SELECT quota_consume('rb', 1)", 0, 0 },
  { "rate-period", "INSERT INTO quota(key, cap, period) VALUES ('rb', 10, 'rate 5 per minute')",
    "UPDATE quota SET period='rate 7 per hour' WHERE key='rb'", 0, 0 },
  { "bad-rate", "", "INSERT INTO quota(key, period) VALUES ('rb', 'rate 5 per minute')", 0, 0 },
  /* alerts, shadow mode and events (events.c, store.c's settings) */
  { "events-consume", "UPDATE quota SET alert='1, 2%, 95%' WHERE key IN ('k1', 'org');"
                      "UPDATE quota SET enforce='shadow' WHERE key='k1'",
    "SELECT quota_consume('k1', 90)", 0, 0 },
  { "events-status", "UPDATE quota SET enforce='shadow', alert='50%' WHERE key='k1'",
    "SELECT quota_status('k1', 95)", 0, 0 },
  { "events-table", "UPDATE quota SET enforce='shadow', alert='50%, 3' WHERE key='k1'",
    "SELECT key, alert, enforce FROM quota", 0, 0 },
  { "events-set", "", "UPDATE quota SET alert='50%, 90', enforce='shadow' WHERE key='k1'", 0, 0 },
  { "events-bad-alert", "", "UPDATE quota SET alert='lots' WHERE key='k1'", 0, 0 },
  { "events-bad-enforce", "", "INSERT INTO quota(key, enforce) VALUES ('e', 'soft')", 0, 0 },
  { "events-integrity", "UPDATE quota SET alert='1' WHERE key='k1';"
                        "SELECT quota_consume('k1', 1)",
    "SELECT quota_integrity()", 0, 0 },
  { "events-purge", "UPDATE quota SET alert='1', retention=0 WHERE key='k1';"
                    "SELECT quota_consume('k1', 1);"
                    "UPDATE quota SET used=0 WHERE key='k1';"
                    "SELECT quota_consume('k1', 1)",
    "SELECT quota_purge()", 0, 0 },
  /* UTF-16: every text read converts */
  { "utf16-clock", "", "SELECT quota_clock(v) FROM t WHERE rowid=1", 1, 0 },
  { "utf16-period", "",
    "INSERT INTO quota(key, period) SELECT 'p', v FROM t WHERE rowid=2", 1, 0 },
  { "utf16-parent", "",
    "INSERT INTO quota(key, parent) SELECT 'c', v FROM t WHERE rowid=3", 1, 0 },
  { "utf16-consume", "", "SELECT quota_consume(v, 1) FROM t WHERE rowid=3", 1, 0 },
  { "utf16-alert", "UPDATE quota SET alert='50%' WHERE key='k1'",
    "SELECT quota_consume(v, 60) FROM t WHERE rowid=3", 1, 0 },
};
#define N_CASE ((int)(sizeof(aCase)/sizeof(aCase[0])))

/* The case's starting database, made once: its image and pinned clock. */
static unsigned char *gImage = 0;
static sqlite3_int64 gImageSize = 0;
static char gClock[64];

static void makeImage(const Case *p){
  sqlite3 *db = openMem();
  Buf out = {0, 0, 0};
  unsigned char *a;
  if( p->bUtf16 ) mustSql(db, "PRAGMA encoding='UTF-16le'");
  mustSql(db, BASE);
  if( p->zSetup[0] ) mustSql(db, p->zSetup);
  if( runSql(db, "SELECT quota_clock()", &out)!=SQLITE_OK ) fatal("clock");
  snprintf(gClock, sizeof(gClock), "%s", bufText(&out)+3);
  a = sqlite3_serialize(db, "main", &gImageSize, 0);
  if( a==0 ) fatal("serialize");
  free(gImage);
  gImage = malloc((size_t)gImageSize);
  if( gImage==0 ) fatal("malloc");
  memcpy(gImage, a, (size_t)gImageSize);
  sqlite3_free(a);
  sqlite3_close(db);
  bufFree(&out);
}

/* A connection on a copy of the case's starting database. */
static sqlite3 *setupCase(const Case *p){
  sqlite3 *db = openMem();
  unsigned char *a = sqlite3_malloc64(gImageSize);
  char *zSql;
  (void)p;
  if( a==0 ) fatal("sqlite3_malloc64");
  memcpy(a, gImage, (size_t)gImageSize);
  if( sqlite3_deserialize(db, "main", a, gImageSize, gImageSize,
        SQLITE_DESERIALIZE_FREEONCLOSE|SQLITE_DESERIALIZE_RESIZEABLE) ){
    fatal("deserialize: %s", sqlite3_errmsg(db));
  }
  /* The schema read and the table connected, as after the setup: the
  ** faults are for the case's statement (oomtest.c's open path covers a
  ** connection's first statements). */
  zSql = sqlite3_mprintf("SELECT quota_clock('%q'); SELECT count(*) FROM quota", gClock);
  mustSql(db, zSql);
  sqlite3_free(zSql);
  return db;
}

/* The connection is still usable: a call opens and ends a transaction. */
static void checkUsable(const Case *p, sqlite3_int64 iN, sqlite3 *db){
  Buf out = {0, 0, 0};
  /* After a rename or a drop that failed inside xRename or xDestroy the
  ** table must still work (2026-11-23: it had lost its statements, and the
  ** next call dereferenced NULL). */
  runSql(db, "SELECT quota_integrity()", &out);
  if( strcmp(bufText(&out), "ok|ok")!=0
   && strstr(bufText(&out), "no quota table")==0
   && strcmp(p->zName, "integrity-bad")!=0 ){
    violation(p->zName, iN, "quota_integrity() after the fault: %s", bufText(&out));
  }
  bufFree(&out);
}

/* The result code of an outcome "error RC: ...", 0 for "ok...". */
static int errCode(const Buf *p){
  return strncmp(bufText(p), "error ", 6)==0 ? atoi(bufText(p)+6) : 0;
}

static const char *zOnlyCase = 0;

/*
** The points of a case whose statement makes tens of thousands of
** allocations (a rename re-parses the schema for each shadow table): only
** those around the nested statements the extension runs. A healthy run
** notes the allocation count where each nested ALTER TABLE is authorized
** (its prepare starts) and where it ends (SQLITE_TRACE_PROFILE); neither
** callback allocates, so the numbering is that of a run without them.
*/
#define MAX_MARK 32
static sqlite3_int64 aMark[MAX_MARK];
static int nMark = 0;
static int isShadow(const char *z){
  return z && (strncmp(z, "quota_", 6)==0 || strncmp(z, "q3_", 3)==0);
}
static int markAuth(void *pArg, int op, const char *z1, const char *z2,
                    const char *z3, const char *z4){
  (void)pArg; (void)z3; (void)z4;
  if( nMark<MAX_MARK
   && ((op==SQLITE_ALTER_TABLE && isShadow(z2))
    || ((op==SQLITE_CREATE_TABLE || op==SQLITE_DROP_TABLE) && isShadow(z1))) ){
    aMark[nMark++] = gMem.nCount;
  }
  return SQLITE_OK;
}
/* The end of a statement the extension runs (its text quotes the schema). */
static int markTrace(unsigned eType, void *pCtx, void *pP, void *pX){
  const char *zSql = sqlite3_sql((sqlite3_stmt*)pP);
  (void)pCtx; (void)pX;
  if( eType==SQLITE_TRACE_PROFILE && zSql && strstr(zSql, "\"main\".")!=0
   && nMark<MAX_MARK ){
    aMark[nMark++] = gMem.nCount;
  }
  return 0;
}

/* One run of case p with allocation iN failing (and every later one with
** bPersist). Returns the number of allocations failed. */
static sqlite3_int64 runPoint(const Case *p, sqlite3_int64 iN, int bPersist,
                              const Buf *pRef, const Buf *pBefore,
                              const Buf *pAfter, sqlite3_int64 *pnBase){
  Buf out = {0, 0, 0}, dump = {0, 0, 0};
  sqlite3 *db = setupCase(p);
  sqlite3_int64 nFailed;
  int rc;
  memArm(iN, bPersist);
  rc = runSql(db, p->zSql, &out);
  nFailed = gMem.nFailed;
  memDisarm();
  if( bVerbose ){
    printf("case %s n=%lld%s: %s\n", p->zName, (long long)iN,
           bPersist ? " persistent" : "", bufText(&out));
  }
  /* Under a failed allocation an error may keep its code and lose the
  ** detail of its message (the extension's fallbacks for a failed
  ** sqlite3_mprintf()): same code as the reference is accepted then. */
  if( strcmp(bufText(&out), bufText(pRef))!=0 && (rc & 0xff)!=SQLITE_NOMEM
   && !(nFailed>0 && rc!=SQLITE_OK && errCode(pRef)==rc) ){
    violation(p->zName, iN, "got \"%s\", reference \"%s\"", bufText(&out), bufText(pRef));
  }
  if( rc!=SQLITE_OK && (rc & 0xff)==SQLITE_NOMEM && nFailed==0 ){
    violation(p->zName, iN, "SQLITE_NOMEM but no allocation failed");
  }
  if( !sqlite3_get_autocommit(db) ){
    violation(p->zName, iN, "left inside a transaction");
    mustSql(db, "ROLLBACK");
  }
  dumpDb(db, &dump);
  if( strcmp(bufText(&dump), bufText(pBefore))!=0
   && strcmp(bufText(&dump), bufText(pAfter))!=0 ){
    violation(p->zName, iN, "state is neither before nor after:\n%s", bufText(&dump));
  }
  checkUsable(p, iN, db);
  sqlite3_close(db);
  if( sqlite3_memory_used()!=*pnBase ){
    violation(p->zName, iN, "leak: memory used %lld, baseline %lld",
              (long long)sqlite3_memory_used(), (long long)*pnBase);
    *pnBase = sqlite3_memory_used();
  }
  bufFree(&out);
  bufFree(&dump);
  return nFailed;
}

static int runCase(const Case *p){
  Buf ref = {0, 0, 0}, before = {0, 0, 0}, after = {0, 0, 0}, out = {0, 0, 0};
  sqlite3 *db;
  sqlite3_int64 iN, nBase;
  int nPoint = 0;

  /* reference */
  makeImage(p);
  db = setupCase(p);
  dumpDb(db, &before);
  runSql(db, p->zSql, &ref);
  dumpDb(db, &after);
  sqlite3_close(db);
  if( bVerbose ) printf("case %s reference: %s\n", p->zName, bufText(&ref));

  /* warm up (noting the marks), then the baseline of memory in use */
  db = setupCase(p);
  nMark = 0;
  if( p->bMarks ){
    sqlite3_set_authorizer(db, markAuth, 0);
    sqlite3_trace_v2(db, SQLITE_TRACE_PROFILE, markTrace, 0);
    memArm(0, 0);                   /* count, fail nothing */
  }
  runSql(db, p->zSql, &out);
  memDisarm();
  sqlite3_close(db);
  nBase = sqlite3_memory_used();

  if( p->bMarks ){
    int i;
    if( nMark<2 ) fatal("case %s: %d marks", p->zName, nMark);
    for(i=0; i<nMark; i++){
      sqlite3_int64 lo = aMark[i]-40, hi = aMark[i]+12;
      if( lo<1 ) lo = 1;
      for(iN=lo; iN<=hi; iN++){
        if( runPoint(p, iN, 0, &ref, &before, &after, &nBase) ) nPoint++;
      }
      /* and the rest failing from inside the nested statement on */
      if( runPoint(p, aMark[i]+40, 1, &ref, &before, &after, &nBase) ) nPoint++;
    }
    if( runPoint(p, aMark[nMark-1]+100000, 0, &ref, &before, &after, &nBase)!=0 ){
      fatal("case %s: more allocations than expected", p->zName);
    }
  }else{
    for(iN=1; iN<100000; iN++){
      if( runPoint(p, iN, 0, &ref, &before, &after, &nBase)==0 ) break;
      nPoint++;
    }
  }
  printf("covfault: case %s %d points\n", p->zName, nPoint);
  fflush(stdout);
  bufFree(&ref); bufFree(&before); bufFree(&after); bufFree(&out);
  return nPoint;
}

/* sqlite3_quota_init() without an error pointer, under allocation faults. */
static int runInitNoMsg(void){
  sqlite3_int64 iN;
  int nPoint = 0;
  for(iN=1; iN<100000; iN++){
    sqlite3 *db = 0;
    int rc;
    sqlite3_int64 nFailed;
    if( sqlite3_open(":memory:", &db)!=SQLITE_OK ) fatal("open");
    memArm(iN, 0);
    rc = sqlite3_quota_init(db, 0, 0);
    nFailed = gMem.nFailed;
    memDisarm();
    if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
      violation("init-nomsg", iN, "sqlite3_quota_init: rc=%d", rc);
    }
    if( rc==SQLITE_OK ){
      Buf out = {0, 0, 0};
      runSql(db, "SELECT quota_version()", &out);
      if( strcmp(bufText(&out), "ok|" SQLITE_QUOTA_VERSION)!=0 ){
        violation("init-nomsg", iN, "after init: %s", bufText(&out));
      }
      bufFree(&out);
    }
    sqlite3_close(db);
    if( nFailed==0 ) break;
    nPoint++;
  }
  printf("covfault: case init-nomsg %d points\n", nPoint);
  return nPoint;
}

/*--------------------------------------------------------------------------
** 2. The clock through VFSes without xCurrentTimeInt64.
*/
static sqlite3_vfs gVfs1, gVfs2;
static int vfsCurrentTime(sqlite3_vfs *pVfs, double *pR){
  (void)pVfs;
  *pR = 2461115.0;                        /* 2026-03-15 12:00:00 */
  return SQLITE_OK;
}

static void runVfs(void){
  sqlite3_vfs *pDef = sqlite3_vfs_find(0);
  int i;
  if( pDef==0 ) fatal("no default VFS");
  gVfs1 = *pDef;
  gVfs1.zName = "covfault-v1";
  gVfs1.iVersion = 1;
  gVfs1.xCurrentTime = vfsCurrentTime;
  gVfs2 = *pDef;
  gVfs2.zName = "covfault-v2";
  gVfs2.iVersion = 2;
  gVfs2.xCurrentTime = vfsCurrentTime;
  gVfs2.xCurrentTimeInt64 = 0;
  if( sqlite3_vfs_register(&gVfs1, 0) || sqlite3_vfs_register(&gVfs2, 0) ){
    fatal("sqlite3_vfs_register");
  }
  for(i=0; i<2; i++){
    const char *zVfs = i ? "covfault-v2" : "covfault-v1";
    sqlite3 *db = 0;
    char *zErr = 0;
    Buf out = {0, 0, 0};
    if( sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE|SQLITE_OPEN_CREATE,
                        zVfs)!=SQLITE_OK ) fatal("open %s", zVfs);
    if( sqlite3_quota_init(db, &zErr, 0)!=SQLITE_OK ) fatal("init: %s", zErr);
    runSql(db, "SELECT quota_clock();"
               "CREATE VIRTUAL TABLE quota USING quota;"
               "INSERT INTO quota(key, period) VALUES ('k', 'day');"
               "SELECT period_start, resets_at FROM quota", &out);
    if( strcmp(bufText(&out), "ok|2026-03-15 12:00:00"
                              "|2026-03-15 00:00:00|2026-03-16 00:00:00")!=0 ){
      violation(zVfs, 0, "the clock of the VFS: %s", bufText(&out));
    }
    printf("covfault: vfs %s clock %s\n", zVfs, bufText(&out));
    bufFree(&out);
    sqlite3_close(db);
  }
  sqlite3_vfs_unregister(&gVfs1);
  sqlite3_vfs_unregister(&gVfs2);
}

/*--------------------------------------------------------------------------
** 3. The loadable build's entry point with a doctored API table.
*/
typedef int (*InitFunc)(sqlite3*, char**, const sqlite3_api_routines*);
static const sqlite3_api_routines *gApi = 0;
static int captureApi(sqlite3 *db, char **pzErr, const sqlite3_api_routines *pApi){
  (void)db; (void)pzErr;
  gApi = pApi;
  return SQLITE_OK;
}
static int oldLibversionNumber(void){ return 3039004; }

static void expectInit(const char *zWhat, InitFunc xInit, sqlite3 *db, int bMsg,
                       const sqlite3_api_routines *pApi, int rcWant,
                       const char *zWant){
  char *zErr = 0;
  int rc = xInit(db, bMsg ? &zErr : 0, pApi);
  if( rc!=rcWant || (bMsg && (zErr==0 || strcmp(zErr, zWant)!=0)) ){
    violation(zWhat, 0, "rc=%d message=\"%s\", want rc=%d \"%s\"", rc,
              zErr ? zErr : "(none)", rcWant, bMsg ? zWant : "(none)");
  }else{
    printf("covfault: init %s: rc=%d%s%s\n", zWhat, rc, bMsg ? " " : "",
           bMsg ? zErr : "");
  }
  sqlite3_free(zErr);
}

static void runLoadable(const char *zExt){
  void *h = dlopen(zExt, RTLD_NOW|RTLD_LOCAL);
  InitFunc xInit;
  sqlite3_api_routines old;
  sqlite3 *db = 0;
  char zWant[200];
  if( h==0 ) fatal("dlopen %s: %s", zExt, dlerror());
  xInit = (InitFunc)(size_t)dlsym(h, "sqlite3_quota_init");
  if( xInit==0 ) fatal("dlsym: %s", dlerror());
  if( sqlite3_auto_extension((void(*)(void))captureApi) ) fatal("auto_extension");
  if( sqlite3_open(":memory:", &db)!=SQLITE_OK || gApi==0 ) fatal("open");
  sqlite3_cancel_auto_extension((void(*)(void))captureApi);

  /* The first load sees a host older than 3.40.0: refused. */
  old = *gApi;
  old.libversion_number = oldLibversionNumber;
  snprintf(zWant, sizeof(zWant),
           "sqlite-quota needs SQLite 3.40.0 or later; this is %s", sqlite3_libversion());
  expectInit("old-host", xInit, db, 1, &old, SQLITE_ERROR, zWant);
  expectInit("old-host-nomsg", xInit, db, 0, &old, SQLITE_ERROR, 0);
  /* The library now holds that table: another one is another SQLite. */
  snprintf(zWant, sizeof(zWant), "sqlite-quota is already loaded into another "
           "SQLite library in this process; load it into one library only");
  expectInit("other-library", xInit, db, 1, gApi, SQLITE_ERROR, zWant);
  expectInit("other-library-nomsg", xInit, db, 0, gApi, SQLITE_ERROR, 0);
  sqlite3_close(db);
  /* the library stays loaded: its coverage data is written at exit */
}

int main(int argc, char **argv){
  const char *zExt = 0;
  int i, nTotal = 0;
  for(i=1; i<argc; i++){
    if( strcmp(argv[i], "-v")==0 ) bVerbose = 1;
    else if( strcmp(argv[i], "--case")==0 && i+1<argc ) zOnlyCase = argv[++i];
    else zExt = argv[i];
  }
  if( memInstall()!=SQLITE_OK ) fatal("installing the failing allocator");
  if( sqlite3_initialize() ) fatal("initialize");

  printf("covfault: SQLite %s\n", sqlite3_libversion());
  for(i=0; i<N_CASE; i++){
    if( zOnlyCase && strcmp(zOnlyCase, aCase[i].zName)!=0 ) continue;
    nTotal += runCase(&aCase[i]);
  }
  if( zOnlyCase ){
    printf("covfault: total %d points, %d violations\n", nTotal, nViolation);
    return nViolation ? 1 : 0;
  }
  nTotal += runInitNoMsg();
  runVfs();
  if( zExt ) runLoadable(zExt);
  printf("covfault: total %d points, %d violations\n", nTotal, nViolation);
  return nViolation ? 1 : 0;
}
