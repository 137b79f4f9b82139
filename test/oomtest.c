/*
** oomtest.c - out-of-memory fault injection for sqlite-quota.
**
** Installs a failing allocator in front of SQLite's own (SQLITE_CONFIG_GETMALLOC,
** then SQLITE_CONFIG_MALLOC, before sqlite3_initialize) and, for every write
** path of the extension, fails allocation number N of the call for N = 1, 2, ...
** until a run completes without a failed allocation. Each N is run twice:
** "transient" (only allocation N fails) and "persistent" (N and every later one).
**
**   build/oomtest                      bounded run (make test): about 150
**                                      transient and 40 persistent points per
**                                      path, spread evenly over its allocations
**   build/oomtest --long               every point of every path (the soak)
**   build/oomtest --path consume --n 17 --persistent -v   replay one point
**   --schema1 FILE                     the SQL of the upgrade paths' schema-1
**                                      store (default test/schema1.sql: run
**                                      from the repository root)
**
** For every point:
**   1. a fresh copy of the path's starting database is opened, the clock pinned;
**   2. the allocator is armed and the path's statements run; each must succeed
**      or fail with SQLITE_NOMEM (anything else is a violation);
**   3. with the allocator healthy: the connection is not left inside a
**      transaction it did not start, and a transaction still open holds
**      what it held before the failed statement; a second connection sees
**      exactly the state before the call or the state after it (the
**      reference run's dumps: schema, every shadow table, the quota table),
**      the invariants hold and PRAGMA integrity_check says ok (upgrade
**      paths: a connection without the extension, which cannot upgrade the
**      store, sees exactly the schema-1 store or the upgraded one, and
**      integrity_check is ok);
**   4. the call is retried with the same request ids on the faulted
**      connection; the database must converge to the reference end state
**      (exactly one charge) with quota_integrity() ok, and a retry of
**      reserve, settle, consume, record and the upgrade returns the
**      reference result;
**   5. after every connection is closed, sqlite3_memory_used() and the count
**      of live allocations are back at their baseline (no leak).
** Exit status 0 when no violation was seen, 1 otherwise (the path, N and mode
** are printed so the point replays exactly), 2 on a setup failure. After 5
** failing points a path's mode is cut short (--keep-going runs them all).
** -v also lists the statements each faulted connection ran, nested ones
** included (SQLITE_TRACE_PROFILE, which allocates nothing, so a replay with
** -v fails the very same allocation).
**
** The paths (keys org, k1 under org, k2 with a rolling window, b a token
** bucket under org; three live holds; alerts on org, k1 and k2, k2 in
** shadow mode, so that charges write events; see azBase): create (the
** table and its keys), reserve, settle, release, consume, record (past the
** cap), update and delete of the table, txn (consume and release inside the
** caller's BEGIN ... COMMIT), insert-select (a call inside a writing
** statement), open (sqlite3_open_v2 and the extension's registration under
** the fault, then a consume), purge, upto (quota_reserve_upto), extend
** (quota_extend), hold (quota_hold), bucket (a consume on the bucket),
** bucket-settle (its hold settled below it), bucket-period (the bucket
** made a monthly key) and shadow (a consume the shadow key grants past its
** cap); and
** from a store at schema 1 (test/schema1.sql), the in-place upgrade by the
** first use of the table on a connection: upgrade (SELECT count(*) FROM
** quota), upgrade-call (a quota_consume first), upgrade-txn (inside the
** caller's BEGIN ... COMMIT), upgrade-insert (a call inside a writing
** statement). See faultpaths.h.
**
** Summary lines (checked by test/faults.test), and the errors seen per path:
**   oomtest: path NAME transient N points persistent N points (N allocations), N violations
**   oomtest: path NAME errors: N x 'MESSAGE' (rc N); ...
**   oomtest: total N points, N violations
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#include "faultmem.h"

/* The shared plumbing (faultutil.h): the driver's own work inside runSql()
** is neither counted nor failed by the allocator above. */
#define DRIVER_PROG "oomtest"
#define FAULT_PAUSE()  (gMem.nPause++)
#define FAULT_RESUME() (gMem.nPause--)
#include "faultutil.h"

/*--------------------------------------------------------------------------
** Options and reporting.
*/
static struct {
  int bLong;                      /* --long */
  int bVerbose;                   /* -v */
  const char *zPath;              /* --path: only this path */
  sqlite3_int64 iN;               /* --n: only this point */
  int eMode;                      /* -1 both, 0 transient, 1 persistent */
  char zDir[512];                 /* Working directory */
  char zDb[600];                  /* Database file */
  int nViolation;                 /* Violations seen */
  int nBadPoint;                  /* Points with at least one violation */
  int bKeepGoing;                 /* --keep-going: never skip the rest of a path */
} g = { 0, 0, 0, 0, -1, "", "", 0, 0, 0 };

static void violation(const char *zPath, sqlite3_int64 iN, int bPersist,
                      const char *zFmt, ...){
  va_list ap;
  g.nViolation++;
  fprintf(stdout, "oomtest: VIOLATION path=%s n=%lld mode=%s: ", zPath,
          (long long)iN, bPersist ? "persistent" : "transient");
  va_start(ap, zFmt);
  vfprintf(stdout, zFmt, ap);
  va_end(ap);
  fprintf(stdout, "\n  replay: build/oomtest --path %s --n %lld --%s -v\n",
          zPath, (long long)iN, bPersist ? "persistent" : "transient");
  fflush(stdout);
}

/*
** -v: print every statement a connection ran, nested ones included, as each
** finishes. (SQLITE_TRACE_PROFILE, not SQLITE_TRACE_STMT: the latter
** allocates for nested statements and would move every allocation number.)
*/
static int traceStmt(unsigned eType, void *pCtx, void *pP, void *pX){
  (void)pCtx; (void)pX;
  if( eType==SQLITE_TRACE_PROFILE ){
    gMem.nPause++;
    printf("  trace: %s  [autocommit=%d]\n", sqlite3_sql((sqlite3_stmt*)pP),
           sqlite3_get_autocommit(sqlite3_db_handle((sqlite3_stmt*)pP)));
    gMem.nPause--;
  }
  return 0;
}

static sqlite3 *openDb(void){
  sqlite3 *db = 0;
  int rc = sqlite3_open_v2(g.zDb, &db, SQLITE_OPEN_READWRITE|SQLITE_OPEN_CREATE, 0);
  if( rc!=SQLITE_OK ) fatal("open %s: %s", g.zDb, db ? sqlite3_errmsg(db) : "?");
  sqlite3_extended_result_codes(db, 1);
  rc = sqlite3_busy_timeout(db, 2000);
  if( rc!=SQLITE_OK ) fatal("busy_timeout: rc=%d", rc);
  if( !gFaultPlain ) mustSql(db, CLOCK_SQL, 0);
  return db;
}
static void closeDb(sqlite3 *db){
  int rc = sqlite3_close(db);
  if( rc!=SQLITE_OK ) fatal("sqlite3_close: rc=%d", rc);
}

/* The database dump and the invariants, shared by the fault drivers. */
#include "faultcheck.h"

/* The base database, the write paths and their reference runs. */
#include "faultpaths.h"

/*
** Run one point: path p, allocation iN, transient or persistent. Returns the
** number of allocations failed (0: the point is past the end of the call).
*/
static sqlite3_int64 runPoint(const Path *p, const Ref *pRef, sqlite3_int64 iN, int bPersist){
  sqlite3 *db, *db2;
  sqlite3_int64 nFailed, nBaseLive;
  sqlite3_int64 nBaseUsed;
  int i, nOk = 0, rc = SQLITE_OK, rc2, nViol0 = g.nViolation;
  Buf res = {0, 0, 0}, err = {0, 0, 0}, why = {0, 0, 0};

  installTemplate(g.zDb, &pRef->image);
  nBaseUsed = sqlite3_memory_used();
  nBaseLive = gMem.nLive;
  if( p->bOpen ){
    /* The connection is opened under the fault: the extension's
    ** registration (sqlite3_auto_extension) is part of the path. */
    memArm(iN, bPersist);
    rc = sqlite3_open_v2(g.zDb, &db, SQLITE_OPEN_READWRITE, 0);
    if( rc!=SQLITE_OK ){
      gMem.nPause++;
      bufReset(&err);
      bufPrintf(&err, "open: %s", db ? sqlite3_errmsg(db) : "no handle");
      gMem.nPause--;
      rc2 = sqlite3_close(db);
      if( rc2!=SQLITE_OK ) fatal("sqlite3_close after a failed open: rc=%d", rc2);
      db = 0;
    }else{
      sqlite3_extended_result_codes(db, 1);
      rc2 = sqlite3_busy_timeout(db, 2000);
      if( rc2!=SQLITE_OK ) fatal("busy_timeout: rc=%d", rc2);
    }
  }else{
    db = openDb();
    memArm(iN, bPersist);
  }
  if( db && g.bVerbose && iN>0 ){
    gMem.nPause++;
    rc2 = sqlite3_trace_v2(db, SQLITE_TRACE_PROFILE, traceStmt, 0);
    gMem.nPause--;
    if( rc2!=SQLITE_OK ) fatal("sqlite3_trace_v2: rc=%d", rc2);
  }

  for(i=0; rc==SQLITE_OK && i<pRef->nStmt; i++){
    rc = runCall(db, p, i, &res, &err);
    if( rc!=SQLITE_OK ) break;
    if( strcmp(bufText(&res), bufText(&pRef->aRes[i]))!=0 ){
      gMem.nPause++;
      violation(p->zName, iN, bPersist, "statement %d succeeded but returned %s, reference %s",
                i+1, bufText(&res), bufText(&pRef->aRes[i]));
      gMem.nPause--;
    }
    nOk++;
  }
  nFailed = gMem.nFailed;
  memDisarm();
  if( db && g.bVerbose ){
    rc2 = sqlite3_trace_v2(db, 0, 0, 0);
    if( rc2!=SQLITE_OK ) fatal("sqlite3_trace_v2: rc=%d", rc2);
  }
  if( db==0 ) db = openDb();      /* the open failed: retry on a new connection */

  if( g.bVerbose ){
    printf("path %s n=%lld %s: %d/%d statements ok, rc=%d (%s), %lld allocations failed\n",
           p->zName, (long long)iN, bPersist ? "persistent" : "transient",
           nOk, pRef->nStmt, rc, rc ? bufText(&err) : "-", (long long)nFailed);
  }
  if( rc!=SQLITE_OK && iN>0 ) errSeen(rc, bufText(&err));
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM && rc!=SQLITE_IOERR_NOMEM ){
    violation(p->zName, iN, bPersist, "statement %d failed with rc=%d (%s), not SQLITE_NOMEM",
              nOk+1, rc, bufText(&err));
  }
  if( rc!=SQLITE_OK && nFailed==0 ){
    violation(p->zName, iN, bPersist, "statement %d failed (rc=%d %s) but no allocation failed",
              nOk+1, rc, bufText(&err));
  }
  if( !sqlite3_get_autocommit(db) ){
    /* A path's own transaction is rolled back as an application would
    ** (see pathBegins); anything else left open is a dangling one. */
    if( !pathBegins(p) ){
      violation(p->zName, iN, bPersist, "connection left inside a transaction after rc=%d", rc);
    }
    bufReset(&why);
    if( checkTxnView(p, pRef, db, nOk, &why) ){
      violation(p->zName, iN, bPersist, "%s", bufText(&why));
    }
    mustSql(db, "ROLLBACK", 0);
  }

  /* The committed state is the state after the statements that succeeded,
  ** or after one more (a call may fail after its commit landed). */
  db2 = openCheckDb(p);
  bufReset(&why);
  if( checkState(p, pRef, db2, 0, nOk, &why, g.bVerbose) ){
    violation(p->zName, iN, bPersist, "%s", bufText(&why));
  }
  closeDb(db2);

  /* A retry on the same connection converges to the reference end state. */
  bufReset(&why);
  if( runRetry(db, p, pRef, &why)!=SQLITE_OK ){
    violation(p->zName, iN, bPersist, "%s", bufText(&why));
  }
  closeDb(db);

  /* Leak check (not on the warm-up run, iN==0). */
  if( iN>0 && (sqlite3_memory_used()!=nBaseUsed || gMem.nLive!=nBaseLive) ){
    violation(p->zName, iN, bPersist, "leak: memory_used %lld -> %lld, live allocations %lld -> %lld",
              (long long)nBaseUsed, (long long)sqlite3_memory_used(),
              (long long)nBaseLive, (long long)gMem.nLive);
  }

  db = openCheckDb(p);
  bufReset(&why);
  if( checkState(p, pRef, db, 1, 0, &why, g.bVerbose) ){
    violation(p->zName, iN, bPersist, "%s", bufText(&why));
  }
  closeDb(db);

  bufFree(&res); bufFree(&err); bufFree(&why);
  if( g.nViolation>nViol0 ) g.nBadPoint++;
  return nFailed;
}

static void usage(void){
  fprintf(stderr,
    "usage: oomtest [--long] [--path NAME] [--n N] [--transient|--persistent]\n"
    "               [--keep-going] [--dir DIR] [--schema1 FILE] [-v]\n");
  exit(2);
}

int main(int argc, char **argv){
  int i, rc, iPath;
  sqlite3_int64 nTotal = 0;
  time_t tStart = time(0);

  faultTuneMalloc();

  for(i=1; i<argc; i++){
    const char *z = argv[i];
    if( strcmp(z, "--long")==0 ) g.bLong = 1;
    else if( strcmp(z, "-v")==0 || strcmp(z, "--verbose")==0 ) g.bVerbose = 1;
    else if( strcmp(z, "--path")==0 && i+1<argc ) g.zPath = argv[++i];
    else if( strcmp(z, "--n")==0 && i+1<argc ) g.iN = atoll(argv[++i]);
    else if( strcmp(z, "--keep-going")==0 ) g.bKeepGoing = 1;
    else if( strcmp(z, "--transient")==0 ) g.eMode = 0;
    else if( strcmp(z, "--persistent")==0 ) g.eMode = 1;
    else if( strcmp(z, "--dir")==0 && i+1<argc ) snprintf(g.zDir, sizeof(g.zDir), "%s", argv[++i]);
    else if( strcmp(z, "--schema1")==0 && i+1<argc ) zSchema1Sql = argv[++i];
    else usage();
  }

  /* The failing allocator goes in before anything initializes SQLite. */
  rc = memInstall();
  if( rc!=SQLITE_OK ) fatal("installing the failing allocator: rc=%d", rc);
  faultStart(0, g.zDir, sizeof(g.zDir), g.zDb, sizeof(g.zDb), "oom.db");

  printf("oomtest: SQLite %s, %s mode, directory %s\n", sqlite3_libversion(),
         g.bLong ? "long" : "bounded", g.zDir);

  for(iPath=0; iPath<N_PATH; iPath++){
    const Path *p = &aPath[iPath];
    Ref ref;
    sqlite3_int64 aPoints[2] = {0, 0};
    sqlite3_int64 nAlloc;
    int bPersist, nViolPath = g.nViolation;
    if( g.zPath && strcmp(g.zPath, p->zName)!=0 ) continue;
    buildRef(p, &ref, 0);
    if( g.bVerbose ){
      printf("-- path %s reference end state:\n%s", p->zName, bufText(&ref.aDump[ref.nStmt]));
    }
    /* Warm up: one healthy cycle so that lazily allocated, never freed
    ** globals are in place before any leak baseline is taken. */
    runPoint(p, &ref, 0, 0);
    nAlloc = gMem.nCount;         /* allocations of a healthy run of the path */
    for(bPersist=0; bPersist<2; bPersist++){
      sqlite3_int64 iN, nStride = 1;
      int nBadHere = 0;
      if( g.eMode>=0 && g.eMode!=bPersist ) continue;
      /* Bounded mode spreads about 150 transient and 40 persistent points
      ** evenly over the call (a persistent failure mostly ends the call
      ** where it starts); --long runs every point. Points are numbered the
      ** same either way, so any point replays with --n. */
      if( !g.bLong && g.iN==0 ){
        sqlite3_int64 nWant = bPersist ? 40 : 150;
        nStride = (nAlloc + nWant - 1)/nWant;
        if( nStride<1 ) nStride = 1;
      }
      for(iN = g.iN>0 ? g.iN : 1; ; iN += nStride){
        int nBad0 = g.nBadPoint;
        if( runPoint(p, &ref, iN, bPersist)==0 ) break;
        aPoints[bPersist]++;
        if( g.iN>0 ) break;
        if( g.nBadPoint>nBad0 && ++nBadHere>=MAX_BAD_POINTS && !g.bKeepGoing ){
          printf("oomtest: path %s %s: %d failing points, skipping the rest"
                 " (--keep-going runs them all)\n", p->zName,
                 bPersist ? "persistent" : "transient", nBadHere);
          break;
        }
      }
    }
    printf("oomtest: path %s transient %lld points persistent %lld points"
           " (%lld allocations), %d violations\n",
           p->zName, (long long)aPoints[0], (long long)aPoints[1], (long long)nAlloc,
           g.nViolation-nViolPath);
    {
      char zPrefix[100];
      snprintf(zPrefix, sizeof(zPrefix), "oomtest: path %s", p->zName);
      errSeenReport(zPrefix);
    }
    fflush(stdout);
    nTotal += aPoints[0]+aPoints[1];
    freeRef(&ref);
  }
  removeDbFiles(g.zDb);
  rmdir(g.zDir);
  printf("oomtest: total %lld points, %d violations (%ld s)\n",
         (long long)nTotal, g.nViolation, (long)(time(0)-tStart));
  return g.nViolation ? 1 : 0;
}
