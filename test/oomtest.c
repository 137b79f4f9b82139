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
**
** For every point:
**   1. a fresh copy of the path's starting database is opened, the clock pinned;
**   2. the allocator is armed and the path's statements run; each must succeed
**      or fail with SQLITE_NOMEM (anything else is a violation);
**   3. with the allocator healthy: the connection is not left inside a
**      transaction it did not start; a second connection sees exactly the
**      state before the call or the state after it (the reference run's
**      dumps: schema, every shadow table, the quota table), the invariants
**      hold and PRAGMA integrity_check says ok;
**   4. the call is retried with the same request ids on the faulted
**      connection; the database must converge to the reference end state
**      (exactly one charge), and a retry of reserve, settle, consume and
**      record returns the reference result;
**   5. after every connection is closed, sqlite3_memory_used() and the count
**      of live allocations are back at their baseline (no leak).
** Exit status 0 when no violation was seen, 1 otherwise (the path, N and mode
** are printed so the point replays exactly), 2 on a setup failure. After 5
** failing points a path's mode is cut short (--keep-going runs them all).
** -v also lists the statements each faulted connection ran, nested ones
** included (SQLITE_TRACE_PROFILE, which allocates nothing, so a replay with
** -v fails the very same allocation).
**
** The paths (keys org, k1 under org, k2 with a rolling window; two live
** holds; see azBase): create (the table and its keys), reserve, settle,
** release, consume, record (past the cap), update and delete of the table,
** txn (consume and release inside the caller's BEGIN ... COMMIT), insert-select
** (a call inside a writing statement), open (sqlite3_open_v2 and the
** extension's registration under the fault, then a consume) and purge.
**
** Summary lines (checked by test/faults.test):
**   oomtest: path NAME transient N points persistent N points (N allocations)
**   oomtest: total N points, N violations
*/
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
# include <malloc.h>
#endif
#include <sqlite3.h>
#include "quota.h"

#define CLOCK_SQL "SELECT quota_clock('2026-03-15 12:00:00')"
#define MAX_STMT 6
#define MAX_BAD_POINTS 5          /* failing points before a path is cut short */

/*--------------------------------------------------------------------------
** Small growable text buffer (system malloc: the driver's own memory is
** never counted by, nor failed by, the SQLite allocator wrapper).
*/
typedef struct Buf Buf;
struct Buf {
  char *z;                        /* Text, always NUL-terminated when non-NULL */
  size_t n;                       /* Bytes used, excluding the NUL */
  size_t nAlloc;                  /* Bytes allocated */
};

static void bufAppend(Buf *p, const char *z, size_t n){
  if( p->z==0 || p->n+n+1>p->nAlloc ){
    size_t nNew = (p->nAlloc+n+1)*2;
    char *zNew = realloc(p->z, nNew);
    if( zNew==0 ){ fprintf(stderr, "oomtest: out of system memory\n"); exit(2); }
    p->z = zNew;
    p->nAlloc = nNew;
  }
  if( n>0 ) memcpy(p->z+p->n, z, n);
  p->n += n;
  p->z[p->n] = 0;
}
static void bufPrintf(Buf *p, const char *zFmt, ...){
  char zTmp[512];
  va_list ap;
  int n;
  va_start(ap, zFmt);
  n = vsnprintf(zTmp, sizeof(zTmp), zFmt, ap);
  va_end(ap);
  if( n<0 ) return;
  if( (size_t)n>=sizeof(zTmp) ) n = (int)sizeof(zTmp)-1;
  bufAppend(p, zTmp, (size_t)n);
}
static void bufReset(Buf *p){ p->n = 0; if( p->z ) p->z[0] = 0; }
static void bufFree(Buf *p){ free(p->z); memset(p, 0, sizeof(*p)); }
static const char *bufText(const Buf *p){ return p->z ? p->z : ""; }

/*--------------------------------------------------------------------------
** The failing allocator.
*/
static sqlite3_mem_methods gOrig;     /* SQLite's allocator */
static struct {
  int bArmed;                     /* Count (and maybe fail) allocations */
  int nPause;                     /* >0: the driver itself is allocating */
  int bPersist;                   /* Fail every allocation from iFail on */
  sqlite3_int64 iFail;            /* Allocation number to fail */
  sqlite3_int64 nCount;           /* Allocations seen while armed */
  sqlite3_int64 nFailed;          /* Allocations failed */
  sqlite3_int64 nLive;            /* Outstanding allocations */
} gMem;

static int memShouldFail(void){
  if( !gMem.bArmed || gMem.nPause>0 ) return 0;
  gMem.nCount++;
  if( gMem.nCount==gMem.iFail || (gMem.bPersist && gMem.nCount>gMem.iFail) ){
    gMem.nFailed++;
    return 1;
  }
  return 0;
}
static void *memMalloc(int n){
  void *p;
  if( memShouldFail() ) return 0;
  p = gOrig.xMalloc(n);
  if( p ) gMem.nLive++;
  return p;
}
static void memFree(void *p){
  if( p ) gMem.nLive--;
  gOrig.xFree(p);
}
static void *memRealloc(void *p, int n){
  if( memShouldFail() ) return 0;
  return gOrig.xRealloc(p, n);
}
static int memSize(void *p){ return gOrig.xSize(p); }
static int memRoundup(int n){ return gOrig.xRoundup(n); }
static int memInit(void *pApp){ (void)pApp; return gOrig.xInit(gOrig.pAppData); }
static void memShutdown(void *pApp){ (void)pApp; gOrig.xShutdown(gOrig.pAppData); }

static void memArm(sqlite3_int64 iFail, int bPersist){
  gMem.iFail = iFail;
  gMem.bPersist = bPersist;
  gMem.nCount = 0;
  gMem.nFailed = 0;
  gMem.bArmed = 1;
}
static void memDisarm(void){ gMem.bArmed = 0; }

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

static void fatal(const char *zFmt, ...){
  va_list ap;
  fprintf(stderr, "oomtest: setup failed: ");
  va_start(ap, zFmt);
  vfprintf(stderr, zFmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  exit(2);
}

/*--------------------------------------------------------------------------
** Files.
*/
static void removeDbFiles(const char *zDb){
  char z[1100];
  unlink(zDb);
  snprintf(z, sizeof(z), "%s-journal", zDb); unlink(z);
  snprintf(z, sizeof(z), "%s-wal", zDb); unlink(z);
  snprintf(z, sizeof(z), "%s-shm", zDb); unlink(z);
}
static void readFile(const char *zFile, Buf *p){
  char a[8192];
  ssize_t n;
  int fd = open(zFile, O_RDONLY);
  bufReset(p);
  if( fd<0 ) fatal("cannot open %s: %s", zFile, strerror(errno));
  while( (n = read(fd, a, sizeof(a)))>0 ) bufAppend(p, a, (size_t)n);
  close(fd);
}
static void writeFile(const char *zFile, const Buf *p){
  size_t i = 0;
  int fd = open(zFile, O_WRONLY|O_CREAT|O_TRUNC, 0644);
  if( fd<0 ) fatal("cannot create %s: %s", zFile, strerror(errno));
  while( i<p->n ){
    ssize_t n = write(fd, p->z+i, p->n-i);
    if( n<=0 ) fatal("write %s: %s", zFile, strerror(errno));
    i += (size_t)n;
  }
  close(fd);
}
static void installTemplate(const Buf *pImage){
  removeDbFiles(g.zDb);
  writeFile(g.zDb, pImage);
}

/*--------------------------------------------------------------------------
** Running SQL.
*/

/* Append the value of column i of pStmt to pOut. */
static void appendValue(Buf *pOut, sqlite3_stmt *pStmt, int i){
  switch( sqlite3_column_type(pStmt, i) ){
    case SQLITE_NULL: bufAppend(pOut, "NULL", 4); break;
    case SQLITE_INTEGER:
      bufPrintf(pOut, "%lld", (long long)sqlite3_column_int64(pStmt, i));
      break;
    case SQLITE_FLOAT:
      bufPrintf(pOut, "%.17g", sqlite3_column_double(pStmt, i));
      break;
    case SQLITE_TEXT: {
      const unsigned char *z = sqlite3_column_text(pStmt, i);
      int n = sqlite3_column_bytes(pStmt, i);
      bufAppend(pOut, "'", 1);
      if( z ) bufAppend(pOut, (const char*)z, (size_t)n);
      else bufAppend(pOut, "<NOMEM>", 7);
      bufAppend(pOut, "'", 1);
      break;
    }
    default: {
      const unsigned char *a = sqlite3_column_blob(pStmt, i);
      int n = sqlite3_column_bytes(pStmt, i), k;
      bufAppend(pOut, "x'", 2);
      for(k=0; a && k<n; k++) bufPrintf(pOut, "%02x", a[k]);
      bufAppend(pOut, "'", 1);
      break;
    }
  }
}

/*
** Run one SQL statement. Rows are appended to pRes (if not NULL), one line
** per row, values separated by '|'. Returns the (extended) result code:
** SQLITE_OK on success. The error message, if any, goes to pErr. The driver's
** own reads of results are not counted by the failing allocator.
*/
static int runSql(sqlite3 *db, const char *zSql, Buf *pRes, Buf *pErr){
  sqlite3_stmt *pStmt = 0;
  int rc, rc2;
  rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  if( rc==SQLITE_OK && pStmt==0 ) return SQLITE_OK;
  while( rc==SQLITE_OK ){
    rc = sqlite3_step(pStmt);
    if( rc==SQLITE_ROW ){
      int i, n = sqlite3_column_count(pStmt);
      gMem.nPause++;
      for(i=0; i<n; i++){
        if( i && pRes ) bufAppend(pRes, "|", 1);
        if( pRes ) appendValue(pRes, pStmt, i);
      }
      if( pRes ) bufAppend(pRes, "\n", 1);
      gMem.nPause--;
      rc = SQLITE_OK;
    }else if( rc==SQLITE_DONE ){
      rc = SQLITE_OK;
      break;
    }
  }
  rc2 = sqlite3_finalize(pStmt);
  if( rc==SQLITE_OK ) rc = rc2;
  if( rc!=SQLITE_OK && pErr ){
    gMem.nPause++;
    bufReset(pErr);
    bufPrintf(pErr, "%s", sqlite3_errmsg(db));
    gMem.nPause--;
  }
  return rc;
}

/* Run SQL that must succeed (allocator healthy); abort the driver if not. */
static void mustSql(sqlite3 *db, const char *zSql, Buf *pRes){
  Buf err = {0, 0, 0};
  int rc = runSql(db, zSql, pRes, &err);
  if( rc!=SQLITE_OK ) fatal("%s: rc=%d %s", zSql, rc, bufText(&err));
  bufFree(&err);
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
  mustSql(db, CLOCK_SQL, 0);
  return db;
}
static void closeDb(sqlite3 *db){
  int rc = sqlite3_close(db);
  if( rc!=SQLITE_OK ) fatal("sqlite3_close: rc=%d", rc);
}

/* The database dump and the invariants, shared by the fault drivers. */
#include "faultcheck.h"

/*--------------------------------------------------------------------------
** The write paths.
**
** Every path but "create" starts from the base database below. $H1 and $H2
** stand for the ids of the two holds the base creates.
*/
static const char *azBase[] = {
  "CREATE TABLE t(x)",
  "CREATE VIRTUAL TABLE quota USING quota(hold_ttl='10 minutes', idempotency='2 hours')",
  "INSERT INTO quota(key, cap, period) VALUES ('org', 1000, 'month')",
  "INSERT INTO quota(key, cap, period, parent) VALUES ('k1', 100, NULL, 'org')",
  "INSERT INTO quota(key, cap, period) VALUES ('k2', NULL, 'rolling 1 hours')",
  "SELECT quota_consume('k1', 10, 'seed-1', '{\"seed\":1}')",
  "SELECT quota_reserve('k1', 30, 'seed-h1')",      /* -> $H1 */
  "SELECT quota_reserve('k2', 5, 'seed-h2')",       /* -> $H2 */
  "SELECT quota_record('k2', 3, 'seed-r')",
  0
};
#define BASE_H1 6
#define BASE_H2 7

typedef struct Retry Retry;
struct Retry {
  const char *zCond;              /* Skip zSql when this returns non-zero */
  const char *zSql;
};

typedef struct Path Path;
struct Path {
  const char *zName;
  int bEmpty;                     /* Start from a database with only table t */
  int bOpen;                      /* The connection is opened under the fault */
  int bRetrySame;                 /* A retry returns the reference result */
  const char *azCall[MAX_STMT];   /* Run under fault, stop at first error */
  Retry aRetry[MAX_STMT];         /* Healthy retry that must converge */
};

static const Path aPath[] = {
  { "create", 1, 0, 0,
    { "CREATE VIRTUAL TABLE quota USING quota(hold_ttl='10 minutes', idempotency='2 hours')",
      "INSERT INTO quota(key, cap, period) VALUES ('org', 1000, 'month')",
      "INSERT INTO quota(key, cap, period, parent) VALUES ('k1', 100, NULL, 'org')",
      "INSERT INTO quota(key, cap, period) VALUES ('k2', NULL, 'rolling 1 hours')",
      0 },
    { { 0, "CREATE VIRTUAL TABLE IF NOT EXISTS quota USING quota(hold_ttl='10 minutes', idempotency='2 hours')" },
      { "SELECT count(*) FROM quota WHERE key='org'",
        "INSERT INTO quota(key, cap, period) VALUES ('org', 1000, 'month')" },
      { "SELECT count(*) FROM quota WHERE key='k1'",
        "INSERT INTO quota(key, cap, period, parent) VALUES ('k1', 100, NULL, 'org')" },
      { "SELECT count(*) FROM quota WHERE key='k2'",
        "INSERT INTO quota(key, cap, period) VALUES ('k2', NULL, 'rolling 1 hours')" },
      { 0, 0 } } },
  { "reserve", 0, 0, 1,
    { "SELECT quota_reserve('k1', 40, 'r-res')", 0 },
    { { 0, "SELECT quota_reserve('k1', 40, 'r-res')" }, { 0, 0 } } },
  { "settle", 0, 0, 1,
    { "SELECT quota_settle($H1, 25, '{\"m\":1}')", 0 },
    { { 0, "SELECT quota_settle($H1, 25, '{\"m\":1}')" }, { 0, 0 } } },
  { "release", 0, 0, 0,
    { "SELECT quota_release($H1)", 0 },
    { { 0, "SELECT quota_release($H1)" }, { 0, 0 } } },
  { "consume", 0, 0, 1,
    { "SELECT quota_consume('k1', 7, 'r-con', '{\"x\":1}')", 0 },
    { { 0, "SELECT quota_consume('k1', 7, 'r-con', '{\"x\":1}')" }, { 0, 0 } } },
  { "record", 0, 0, 1,
    { "SELECT quota_record('k1', 200, 'r-rec')", 0 },
    { { 0, "SELECT quota_record('k1', 200, 'r-rec')" }, { 0, 0 } } },
  { "update", 0, 0, 0,
    { "UPDATE quota SET cap = 200, note = 'n1' WHERE key = 'k1'", 0 },
    { { 0, "UPDATE quota SET cap = 200, note = 'n1' WHERE key = 'k1'" }, { 0, 0 } } },
  { "delete", 0, 0, 0,
    { "DELETE FROM quota WHERE key = 'k2'", 0 },
    { { 0, "DELETE FROM quota WHERE key = 'k2'" }, { 0, 0 } } },
  { "txn", 0, 0, 0,
    { "BEGIN",
      "SELECT quota_consume('k1', 6, 'r-txn')",
      "SELECT quota_release($H1)",
      "COMMIT", 0 },
    { { 0, "BEGIN" },
      { 0, "SELECT quota_consume('k1', 6, 'r-txn')" },
      { 0, "SELECT quota_release($H1)" },
      { 0, "COMMIT" }, { 0, 0 } } },
  { "insert-select", 0, 0, 0,
    { "INSERT INTO t(x) VALUES (quota_consume('k1', 4, 'r-ins'))", 0 },
    { { "SELECT count(*) FROM t",
        "INSERT INTO t(x) VALUES (quota_consume('k1', 4, 'r-ins'))" }, { 0, 0 } } },
  { "open", 0, 1, 1,
    { CLOCK_SQL, "SELECT quota_consume('k1', 2, 'r-open')", 0 },
    { { 0, CLOCK_SQL }, { 0, "SELECT quota_consume('k1', 2, 'r-open')" }, { 0, 0 } } },
  { "purge", 0, 0, 0,
    { "SELECT quota_purge()", 0 },
    { { 0, "SELECT quota_purge()" }, { 0, 0 } } },
};
#define N_PATH ((int)(sizeof(aPath)/sizeof(aPath[0])))

static sqlite3_int64 gH1, gH2;    /* Hold ids created by the base */

/* Expand $H1 and $H2 in zIn. The result is from malloc(). */
static char *expand(const char *zIn){
  Buf b = {0, 0, 0};
  while( *zIn ){
    if( zIn[0]=='$' && zIn[1]=='H' && (zIn[2]=='1' || zIn[2]=='2') ){
      bufPrintf(&b, "%lld", (long long)(zIn[2]=='1' ? gH1 : gH2));
      zIn += 3;
    }else{
      bufAppend(&b, zIn, 1);
      zIn++;
    }
  }
  if( b.z==0 ) bufAppend(&b, "", 0);
  return b.z;
}

static int countStmt(const Path *p){
  int n = 0;
  while( n<MAX_STMT && p->azCall[n] ) n++;
  return n;
}

/* What a healthy run of a path produces. */
typedef struct Ref Ref;
struct Ref {
  Buf image;                      /* Starting database file */
  int nStmt;                      /* Statements in the path */
  Buf aDump[MAX_STMT+1];          /* aDump[i]: committed state after i statements */
  Buf aRes[MAX_STMT];             /* Result of each statement */
};

static void buildBase(int bEmpty){
  sqlite3 *db;
  Buf res = {0, 0, 0};
  int i;
  removeDbFiles(g.zDb);
  db = openDb();
  for(i=0; azBase[i]; i++){
    if( bEmpty && i>0 ) break;
    bufReset(&res);
    mustSql(db, azBase[i], &res);
    if( i==BASE_H1 ) gH1 = atoll(bufText(&res));
    if( i==BASE_H2 ) gH2 = atoll(bufText(&res));
  }
  if( !bEmpty && (gH1<=0 || gH2<=0) ) fatal("base: reserve returned no hold id");
  closeDb(db);
  bufFree(&res);
}

/* A reference state must itself pass every check. */
static void refCheck(const Path *p, sqlite3 *db, const char *zWhen){
  Buf why = {0, 0, 0};
  if( checkDb(db, &why, 1) ){
    fatal("path %s: the reference state %s fails a check: %s", p->zName, zWhen, bufText(&why));
  }
  bufFree(&why);
}

static void buildRef(const Path *p, Ref *pRef){
  sqlite3 *db, *db2;
  int i;
  Buf err = {0, 0, 0};
  memset(pRef, 0, sizeof(*pRef));
  buildBase(p->bEmpty);
  readFile(g.zDb, &pRef->image);
  pRef->nStmt = countStmt(p);
  db = openDb();
  db2 = openDb();
  dumpDb(db2, &pRef->aDump[0]);
  refCheck(p, db2, "before the path");
  for(i=0; i<pRef->nStmt; i++){
    char *z = expand(p->azCall[i]);
    int rc = runSql(db, z, &pRef->aRes[i], &err);
    if( rc!=SQLITE_OK ) fatal("path %s reference: %s: %s", p->zName, z, bufText(&err));
    free(z);
    dumpDb(db2, &pRef->aDump[i+1]);
    refCheck(p, db2, i+1<pRef->nStmt ? "inside the path" : "after the path");
  }
  closeDb(db2);
  closeDb(db);
  bufFree(&err);
  if( g.bVerbose ){
    printf("-- path %s reference end state:\n%s", p->zName, bufText(&pRef->aDump[pRef->nStmt]));
  }
}

static void freeRef(Ref *pRef){
  int i;
  bufFree(&pRef->image);
  for(i=0; i<=MAX_STMT; i++) bufFree(&pRef->aDump[i]);
  for(i=0; i<MAX_STMT; i++) bufFree(&pRef->aRes[i]);
}

/* Run the retry statements of path p on db. */
static int runRetry(sqlite3 *db, const Path *p, const Ref *pRef, Buf *pWhy){
  int i, rc = SQLITE_OK;
  Buf res = {0, 0, 0}, err = {0, 0, 0};
  for(i=0; i<MAX_STMT && p->aRetry[i].zSql; i++){
    char *z;
    if( p->aRetry[i].zCond ){
      bufReset(&res);
      rc = runSql(db, p->aRetry[i].zCond, &res, &err);
      if( rc!=SQLITE_OK ){
        /* "no such table": the create never happened, so neither did the insert */
        if( strstr(bufText(&err), "no such table")==0 ){
          bufPrintf(pWhy, "retry condition failed: %s", bufText(&err));
          break;
        }
        rc = SQLITE_OK;
      }else if( atoll(bufText(&res))!=0 ){
        continue;
      }
    }
    z = expand(p->aRetry[i].zSql);
    bufReset(&res);
    rc = runSql(db, z, &res, &err);
    if( rc!=SQLITE_OK ){
      bufPrintf(pWhy, "retry '%s' failed: rc=%d %s", z, rc, bufText(&err));
      free(z);
      break;
    }
    if( p->bRetrySame && strcmp(bufText(&res), bufText(&pRef->aRes[i]))!=0 ){
      bufPrintf(pWhy, "retry '%s' returned %s, reference returned %s", z,
                bufText(&res), bufText(&pRef->aRes[i]));
      rc = SQLITE_ERROR;
      free(z);
      break;
    }
    free(z);
  }
  bufFree(&res);
  bufFree(&err);
  return rc;
}

/*
** Run one point: path p, allocation iN, transient or persistent. Returns the
** number of allocations failed (0: the point is past the end of the call).
*/
static sqlite3_int64 runPoint(const Path *p, const Ref *pRef, sqlite3_int64 iN, int bPersist){
  sqlite3 *db, *db2;
  sqlite3_int64 nFailed, nBaseLive;
  sqlite3_int64 nBaseUsed;
  int i, nOk = 0, rc = SQLITE_OK, rc2, nViol0 = g.nViolation, iMatch = -1;
  Buf res = {0, 0, 0}, err = {0, 0, 0}, dump = {0, 0, 0}, why = {0, 0, 0};

  installTemplate(&pRef->image);
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
    char *z = expand(p->azCall[i]);
    bufReset(&res);
    rc = runSql(db, z, &res, &err);
    free(z);
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
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM && rc!=SQLITE_IOERR_NOMEM ){
    violation(p->zName, iN, bPersist, "statement %d failed with rc=%d (%s), not SQLITE_NOMEM",
              nOk+1, rc, bufText(&err));
  }
  if( rc!=SQLITE_OK && nFailed==0 ){
    violation(p->zName, iN, bPersist, "statement %d failed (rc=%d %s) but no allocation failed",
              nOk+1, rc, bufText(&err));
  }
  if( !sqlite3_get_autocommit(db) ){
    /* Only the txn path opens a transaction of its own, and the driver
    ** rolls it back as an application would. Anything else left open is a
    ** dangling transaction. */
    if( strcmp(p->zName, "txn")!=0 ){
      violation(p->zName, iN, bPersist, "connection left inside a transaction after rc=%d", rc);
    }
    mustSql(db, "ROLLBACK", 0);
  }

  /* The committed state is the state after the statements that succeeded,
  ** or after one more (a call may fail after its commit landed). */
  db2 = openDb();
  dumpDb(db2, &dump);
  {
    for(i=nOk; i<=pRef->nStmt && i<=nOk+1; i++){
      if( strcmp(bufText(&dump), bufText(&pRef->aDump[i]))==0 ){ iMatch = i; break; }
    }
    if( iMatch<0 ){
      bufReset(&why);
      dumpDiff(bufText(&dump), bufText(&pRef->aDump[nOk]), &why);
      violation(p->zName, iN, bPersist,
                "state after the fault is neither before nor after the call (%s)", bufText(&why));
      if( g.bVerbose ) printf("-- state after the fault:\n%s", bufText(&dump));
    }
  }
  bufReset(&why);
  if( checkDb(db2, &why, iMatch<0) ){
    violation(p->zName, iN, bPersist, "after the fault: %s", bufText(&why));
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

  db = openDb();
  dumpDb(db, &dump);
  if( strcmp(bufText(&dump), bufText(&pRef->aDump[pRef->nStmt]))!=0 ){
    bufReset(&why);
    dumpDiff(bufText(&dump), bufText(&pRef->aDump[pRef->nStmt]), &why);
    violation(p->zName, iN, bPersist, "retry did not converge to the reference state (%s)",
              bufText(&why));
    if( g.bVerbose ) printf("-- state after the retry:\n%s", bufText(&dump));
  }
  bufReset(&why);
  if( checkDb(db, &why, strcmp(bufText(&dump), bufText(&pRef->aDump[pRef->nStmt]))!=0) ){
    violation(p->zName, iN, bPersist, "after the retry: %s", bufText(&why));
  }
  closeDb(db);

  bufFree(&res); bufFree(&err); bufFree(&dump); bufFree(&why);
  if( g.nViolation>nViol0 ) g.nBadPoint++;
  return nFailed;
}

static void usage(void){
  fprintf(stderr,
    "usage: oomtest [--long] [--path NAME] [--n N] [--transient|--persistent]\n"
    "               [--keep-going] [--dir DIR] [-v]\n");
  exit(2);
}

int main(int argc, char **argv){
  int i, rc, iPath;
  sqlite3_int64 nTotal = 0;
  sqlite3_mem_methods m;
  time_t tStart = time(0);

#ifdef __GLIBC__
  /* Every point opens and closes connections: keep freed memory in the
  ** heap instead of returning it to the kernel each time (twice as fast). */
  mallopt(M_MMAP_THRESHOLD, 64<<20);
  mallopt(M_TRIM_THRESHOLD, 256<<20);
#endif

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
    else usage();
  }

  /* The failing allocator goes in before anything initializes SQLite. */
  rc = sqlite3_config(SQLITE_CONFIG_GETMALLOC, &gOrig);
  if( rc!=SQLITE_OK ) fatal("SQLITE_CONFIG_GETMALLOC: rc=%d", rc);
  m = gOrig;
  m.xMalloc = memMalloc;
  m.xFree = memFree;
  m.xRealloc = memRealloc;
  m.xSize = memSize;
  m.xRoundup = memRoundup;
  m.xInit = memInit;
  m.xShutdown = memShutdown;
  m.pAppData = 0;
  rc = sqlite3_config(SQLITE_CONFIG_MALLOC, &m);
  if( rc!=SQLITE_OK ) fatal("SQLITE_CONFIG_MALLOC: rc=%d", rc);
  rc = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 1);
  if( rc!=SQLITE_OK ) fatal("SQLITE_CONFIG_MEMSTATUS: rc=%d", rc);
  rc = sqlite3_initialize();
  if( rc!=SQLITE_OK ) fatal("sqlite3_initialize: rc=%d", rc);
  rc = sqlite3_auto_extension((void(*)(void))sqlite3_quota_init);
  if( rc!=SQLITE_OK ) fatal("sqlite3_auto_extension: rc=%d", rc);

  if( g.zDir[0]==0 ){
    const char *zTmp = getenv("TMPDIR");
    char zTemplate[512];
    if( zTmp==0 || zTmp[0]==0 ) zTmp = access("/dev/shm", W_OK)==0 ? "/dev/shm" : "/tmp";
    snprintf(zTemplate, sizeof(zTemplate), "%s/oomtest.XXXXXX", zTmp);
    if( mkdtemp(zTemplate)==0 ) fatal("mkdtemp %s: %s", zTemplate, strerror(errno));
    snprintf(g.zDir, sizeof(g.zDir), "%s", zTemplate);
  }else{
    mkdir(g.zDir, 0755);
  }
  snprintf(g.zDb, sizeof(g.zDb), "%s/oom.db", g.zDir);

  printf("oomtest: SQLite %s, %s mode, directory %s\n", sqlite3_libversion(),
         g.bLong ? "long" : "bounded", g.zDir);

  for(iPath=0; iPath<N_PATH; iPath++){
    const Path *p = &aPath[iPath];
    Ref ref;
    sqlite3_int64 aPoints[2] = {0, 0};
    sqlite3_int64 nAlloc;
    int bPersist;
    if( g.zPath && strcmp(g.zPath, p->zName)!=0 ) continue;
    buildRef(p, &ref);
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
           " (%lld allocations)\n",
           p->zName, (long long)aPoints[0], (long long)aPoints[1], (long long)nAlloc);
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
