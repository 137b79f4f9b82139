/*
** faultpaths.h: the workload of the two drivers that fault every write path
** of the extension one point at a time, oomtest.c (allocation failures) and
** iofault.c (I/O errors): the base database, the table of write paths with
** their healthy retries, and the reference run each point is compared with.
** Static functions only.
**
** Included after faultutil.h and faultcheck.h. The driver defines openDb()
** (a connection on g.zDb, with the clock pinned), closeDb(), and a global
** struct g with the field zDb (the database file).
*/
#ifndef QUOTA_FAULTPATHS_H
#define QUOTA_FAULTPATHS_H

#ifdef __GLIBC__
# include <malloc.h>
#endif

#define MAX_STMT 6                /* statements of a path, at most */
#define MAX_BAD_POINTS 5          /* failing points before the rest of a path
                                  ** (oomtest) or kind (iofault) is cut short */

/*--------------------------------------------------------------------------
** The write paths.
**
** Every path but "create" starts from the base database below. $H1 and $H2
** stand for the ids of the two holds the base creates. The "open" path
** (bOpen) is oomtest's alone: iofault opens every faulted connection inside
** the fault window anyway, and skips it.
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
  int bOpen;                      /* The connection is opened under the fault
                                  ** (oomtest only) */
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

/* Run statement i of path p on db: its rows into pRes (reset first). */
static int runCall(sqlite3 *db, const Path *p, int i, Buf *pRes, Buf *pErr){
  char *z = expand(p->azCall[i]);
  int rc;
  bufReset(pRes);
  rc = runSql(db, z, pRes, pErr);
  free(z);
  return rc;
}

/* What a healthy run of a path produces. */
typedef struct Ref Ref;
struct Ref {
  Buf image;                      /* Starting database file */
  int nStmt;                      /* Statements in the path */
  Buf aDump[MAX_STMT+1];          /* aDump[i]: committed state after i statements */
  Buf aRes[MAX_STMT];             /* Result of each statement */
};

/*
** The starting database of a path into g.zDb: the base (only table t with
** bEmpty), in journal mode zJournal (NULL: the default).
*/
static void buildBase(int bEmpty, const char *zJournal){
  sqlite3 *db;
  Buf res = {0, 0, 0};
  int i;
  removeDbFiles(g.zDb);
  db = openDb();
  if( zJournal ){
    char zPragma[100];
    snprintf(zPragma, sizeof(zPragma), "PRAGMA journal_mode=%s", zJournal);
    mustSql(db, zPragma, 0);
  }
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

/* The healthy run of path p from its starting database (see buildBase). */
static void buildRef(const Path *p, Ref *pRef, const char *zJournal){
  sqlite3 *db, *db2;
  int i;
  Buf err = {0, 0, 0};
  memset(pRef, 0, sizeof(*pRef));
  buildBase(p->bEmpty, zJournal);
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
}

static void freeRef(Ref *pRef){
  int i;
  bufFree(&pRef->image);
  for(i=0; i<=MAX_STMT; i++) bufFree(&pRef->aDump[i]);
  for(i=0; i<MAX_STMT; i++) bufFree(&pRef->aRes[i]);
}

/*
** Which reference state the dump of a database after a fault is: the state
** after the nOk statements that succeeded, or after one more (a call may
** fail after its commit landed). Returns that number of statements, or -1
** with the first difference from the state after nOk statements in pWhy.
*/
static int refMatch(const Ref *pRef, const Buf *pDump, int nOk, Buf *pWhy){
  int i;
  for(i=nOk; i<=pRef->nStmt && i<=nOk+1; i++){
    if( strcmp(bufText(pDump), bufText(&pRef->aDump[i]))==0 ) return i;
  }
  bufReset(pWhy);
  dumpDiff(bufText(pDump), bufText(&pRef->aDump[nOk]), pWhy);
  return -1;
}

/* 0 if the dump is the reference end state, else 1 with the first
** difference in pWhy. */
static int refNotAtEnd(const Ref *pRef, const Buf *pDump, Buf *pWhy){
  const char *zEnd = bufText(&pRef->aDump[pRef->nStmt]);
  if( strcmp(bufText(pDump), zEnd)==0 ) return 0;
  bufReset(pWhy);
  dumpDiff(bufText(pDump), zEnd, pWhy);
  return 1;
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
** Every point opens and closes connections: keep freed memory in the heap
** instead of returning it to the kernel each time (twice as fast).
*/
static void faultTuneMalloc(void){
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 64<<20);
  mallopt(M_TRIM_THRESHOLD, 256<<20);
#endif
}

#endif /* QUOTA_FAULTPATHS_H */
