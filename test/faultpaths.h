/*
** faultpaths.h: the workload of the two drivers that fault every write path
** of the extension one point at a time, oomtest.c (allocation failures) and
** iofault.c (I/O errors): the base database, the table of write paths with
** their healthy retries, and the reference run each point is compared with.
** Static functions only.
**
** Included after faultutil.h and faultcheck.h. The driver defines openDb()
** (a connection on g.zDb, with the clock pinned unless gFaultPlain says the
** connection has no extension), closeDb(), and a global struct g with the
** field zDb (the database file).
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
** Every path but "create" and the upgrade-* paths starts from the base
** database below. $H1, $H2 and $H3 stand for the ids of the three holds the
** base creates ($H3 on b, a token bucket). The "open" path (bOpen) is oomtest's alone: iofault opens every
** faulted connection inside the fault window anyway, and skips it.
**
** The upgrade-* paths start from a store at schema 1 (test/schema1.sql, as
** sqlite-quota 0.1.0 wrote it, and table t), which the first use of the
** table on a connection upgrades in place (quotaStoreUpgrade in
** ext/store.c). Their states are dumped and checked on connections without
** the extension (faultOpenPlain), whose reads cannot upgrade the store: the
** store after a fault must be exactly the schema-1 store or exactly the
** upgraded one of the reference run, never in between; so must a
** transaction a failed statement leaves open (checkTxnView).
*/
/* org and k1 have alerts, k2 is a shadow key with an alert that its
** base charges reach (events are written under the fault too). */
static const char *azBase[] = {
  "CREATE TABLE t(x)",
  "CREATE VIRTUAL TABLE quota USING quota(hold_ttl='10 minutes', idempotency='2 hours')",
  "INSERT INTO quota(key, cap, period, alert) VALUES ('org', 1000, 'month', '2%')",
  "INSERT INTO quota(key, cap, period, parent, alert) VALUES ('k1', 100, NULL, 'org', '15, 40')",
  "INSERT INTO quota(key, cap, period, alert, enforce) VALUES ('k2', 8, 'rolling 1 hours', '3', 'shadow')",
  "SELECT quota_consume('k1', 10, 'seed-1', '{\"seed\":1}')",
  "SELECT quota_reserve('k1', 30, 'seed-h1')",      /* -> $H1 */
  "SELECT quota_reserve('k2', 5, 'seed-h2')",       /* -> $H2 */
  "SELECT quota_record('k2', 3, 'seed-r')",
  "INSERT INTO quota(key, cap, period, parent) VALUES ('b', 500, 'rate 100 per hour', 'org')",
  "SELECT quota_consume('b', 20, 'seed-b')",
  "SELECT quota_reserve('b', 8, 'seed-h3')",       /* -> $H3 */
  0
};
#define BASE_H1 6
#define BASE_H2 7
#define BASE_H3 11

typedef struct Retry Retry;
struct Retry {
  const char *zCond;              /* Skip zSql when this returns non-zero */
  const char *zSql;
};

/* Path.eBase: the starting database of a path */
#define BASE_QUOTA      0         /* azBase */
#define BASE_EMPTY      1         /* Only table t */
#define BASE_SCHEMA1    2         /* The schema-1 store and table t. The path's
                                  ** first statement (after its BEGIN) is the
                                  ** first use of the table: it upgrades the
                                  ** store in the transaction it runs in */
#define BASE_SCHEMA1_AC 3         /* The same, that statement runs in
                                  ** autocommit mode: the upgrade commits on
                                  ** its own first, so "upgraded, the call
                                  ** not done" is a committed state too */

typedef struct Path Path;
struct Path {
  const char *zName;
  int eBase;                      /* BASE_xxx */
  int bOpen;                      /* The connection is opened under the fault
                                  ** (oomtest only) */
  int bRetrySame;                 /* A retry returns the reference result */
  const char *azCall[MAX_STMT];   /* Run under fault, stop at first error */
  Retry aRetry[MAX_STMT];         /* Healthy retry that must converge */
};

static const Path aPath[] = {
  { "create", 1, 0, 0,
    { "CREATE VIRTUAL TABLE quota USING quota(hold_ttl='10 minutes', idempotency='2 hours')",
      "INSERT INTO quota(key, cap, period, alert) VALUES ('org', 1000, 'month', '2%')",
      "INSERT INTO quota(key, cap, period, parent, alert) VALUES ('k1', 100, NULL, 'org', '15, 40')",
      "INSERT INTO quota(key, cap, period, alert, enforce) VALUES ('k2', 8, 'rolling 1 hours', '3', 'shadow')",
      0 },
    { { 0, "CREATE VIRTUAL TABLE IF NOT EXISTS quota USING quota(hold_ttl='10 minutes', idempotency='2 hours')" },
      { "SELECT count(*) FROM quota WHERE key='org'",
        "INSERT INTO quota(key, cap, period, alert) VALUES ('org', 1000, 'month', '2%')" },
      { "SELECT count(*) FROM quota WHERE key='k1'",
        "INSERT INTO quota(key, cap, period, parent, alert) VALUES ('k1', 100, NULL, 'org', '15, 40')" },
      { "SELECT count(*) FROM quota WHERE key='k2'",
        "INSERT INTO quota(key, cap, period, alert, enforce) VALUES ('k2', 8, 'rolling 1 hours', '3', 'shadow')" },
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
  /* admission control: a partial hold, a lease's heartbeat, a hold read, a
  ** token bucket charged, a bucket's hold settled below it, a bucket
  ** turned into a calendar key (its held units leave its used) */
  { "upto", 0, 0, 1,
    { "SELECT quota_reserve_upto('k1', 10, 1000, 'r-upto', 600)", 0 },
    { { 0, "SELECT quota_reserve_upto('k1', 10, 1000, 'r-upto', 600)" }, { 0, 0 } } },
  { "extend", 0, 0, 1,
    { "SELECT quota_extend($H1, 3600)", 0 },
    { { 0, "SELECT quota_extend($H1, 3600)" }, { 0, 0 } } },
  { "hold", 0, 0, 1,
    { "SELECT quota_hold($H3)", 0 },
    { { 0, "SELECT quota_hold($H3)" }, { 0, 0 } } },
  { "bucket", 0, 0, 1,
    { "SELECT quota_consume('b', 7, 'r-b')", 0 },
    { { 0, "SELECT quota_consume('b', 7, 'r-b')" }, { 0, 0 } } },
  { "bucket-settle", 0, 0, 1,
    { "SELECT quota_settle($H3, 3, '{\"b\":1}')", 0 },
    { { 0, "SELECT quota_settle($H3, 3, '{\"b\":1}')" }, { 0, 0 } } },
  { "bucket-period", 0, 0, 0,
    { "UPDATE quota SET period = 'month' WHERE key = 'b'", 0 },
    { { 0, "UPDATE quota SET period = 'month' WHERE key = 'b'" }, { 0, 0 } } },
  /* credits: a grant (a retry returns the same grant id); a grant drawn
  ** by a consume past k1's allowance, then voided */
  { "grant", 0, 0, 1,
    { "SELECT quota_grant('k1', 50, 3600, 0, 'r-grant')", 0 },
    { { 0, "SELECT quota_grant('k1', 50, 3600, 0, 'r-grant')" }, { 0, 0 } } },
  { "grant-draw", 0, 0, 0,
    { "SELECT quota_grant('k1', 500, NULL, 0, 'r-g2')",
      "SELECT quota_consume('k1', 150, 'r-gd')",
      "SELECT quota_void(1)", 0 },
    { { 0, "SELECT quota_grant('k1', 500, NULL, 0, 'r-g2')" },
      { 0, "SELECT quota_consume('k1', 150, 'r-gd')" },
      { 0, "SELECT quota_void(1)" }, { 0, 0 } } },
  /* k2 has no room: the shadow key grants it and sends shadow_denied */
  { "shadow", 0, 0, 1,
    { "SELECT quota_consume('k2', 2, 'r-sh')", 0 },
    { { 0, "SELECT quota_consume('k2', 2, 'r-sh')" }, { 0, 0 } } },
  { "upgrade", BASE_SCHEMA1_AC, 0, 1,
    { "SELECT count(*) FROM quota", 0 },
    { { 0, "SELECT count(*) FROM quota" }, { 0, 0 } } },
  { "upgrade-call", BASE_SCHEMA1_AC, 0, 1,
    { "SELECT quota_consume('alice', 1, 'u-call')", 0 },
    { { 0, "SELECT quota_consume('alice', 1, 'u-call')" }, { 0, 0 } } },
  { "upgrade-txn", BASE_SCHEMA1, 0, 1,
    { "BEGIN",
      "SELECT quota_consume('alice', 1, 'u-txn')",
      "SELECT count(*) FROM quota",
      "COMMIT", 0 },
    { { 0, "BEGIN" },
      { 0, "SELECT quota_consume('alice', 1, 'u-txn')" },
      { 0, "SELECT count(*) FROM quota" },
      { 0, "COMMIT" }, { 0, 0 } } },
  { "upgrade-insert", BASE_SCHEMA1, 0, 0,
    { "INSERT INTO t(x) VALUES (quota_consume('alice', 1, 'u-ins'))", 0 },
    { { "SELECT count(*) FROM t",
        "INSERT INTO t(x) VALUES (quota_consume('alice', 1, 'u-ins'))" }, { 0, 0 } } },
};
#define N_PATH ((int)(sizeof(aPath)/sizeof(aPath[0])))

static sqlite3_int64 gH1, gH2, gH3;    /* Hold ids created by the base */

/* Expand $H1, $H2 and $H3 in zIn. The result is from malloc(). */
static char *expand(const char *zIn){
  Buf b = {0, 0, 0};
  while( *zIn ){
    if( zIn[0]=='$' && zIn[1]=='H' && (zIn[2]=='1' || zIn[2]=='2' || zIn[2]=='3') ){
      bufPrintf(&b, "%lld", (long long)(zIn[2]=='1' ? gH1 : zIn[2]=='2' ? gH2 : gH3));
      zIn += 3;
    }else{
      bufAppend(&b, zIn, 1);
      zIn++;
    }
  }
  if( b.z==0 ) bufAppend(&b, "", 0);
  return b.z;
}

/* True if path p opens a transaction of its own (BEGIN ... COMMIT): the
** driver rolls it back after a failed statement, as an application would.
** Any other transaction left open is a dangling one. */
static int pathBegins(const Path *p){
  return strcmp(p->azCall[0], "BEGIN")==0;
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
  Buf aView[MAX_STMT+1];          /* aView[i]: the tables as the path's own
                                  ** connection sees them after i statements,
                                  ** inside its transaction (dumpStore) */
  Buf upgraded;                   /* Schema-1 bases: the store upgraded alone */
};

/*--------------------------------------------------------------------------
** The store at schema 1 and the connections that must not upgrade it.
**
** zSchema1Sql is the file of SQL that writes it, test/schema1.sql: a name
** relative to the working directory (the repository root, where make test
** and the replay commands run), or another one given with --schema1 FILE
** (test/faults.test passes its own). It is read when a path first needs it.
*/
static const char *zSchema1Sql = "test/schema1.sql";

static void loadSchema1(sqlite3 *db){
  static Buf sql = {0, 0, 0};     /* The file, read once */
  char *zErr = 0;
  if( sql.z==0 ){
    if( access(zSchema1Sql, R_OK)!=0 ){
      fatal("%s: %s (the store at schema 1 of the upgrade paths: run from the"
            " repository root or name it with --schema1 FILE)", zSchema1Sql,
            strerror(errno));
    }
    readFile(zSchema1Sql, &sql);
  }
  if( sqlite3_exec(db, bufText(&sql), 0, 0, &zErr)!=SQLITE_OK ){
    fatal("%s: %s", zSchema1Sql, zErr ? zErr : "?");
  }
}

/* A connection on g.zDb without the extension (faultQuotaInit): it reads
** a store at schema 1 without upgrading it, and checks only what SQLite
** can (dumpDb, checkDb). */
static sqlite3 *faultOpenPlain(void){
  sqlite3 *db;
  gFaultPlain++;
  db = openDb();
  gFaultPlain--;
  return db;
}

/* The connection that dumps and checks the committed state of path p:
** without the extension when p starts at schema 1. */
static sqlite3 *openCheckDb(const Path *p){
  return p->eBase>=BASE_SCHEMA1 ? faultOpenPlain() : openDb();
}

/*
** The starting database of a path into g.zDb (see BASE_xxx), in journal
** mode zJournal (NULL: the default).
*/
static void buildBase(int eBase, const char *zJournal){
  sqlite3 *db;
  Buf res = {0, 0, 0};
  int i;
  removeDbFiles(g.zDb);
  db = eBase>=BASE_SCHEMA1 ? faultOpenPlain() : openDb();
  if( zJournal ){
    char zPragma[100];
    snprintf(zPragma, sizeof(zPragma), "PRAGMA journal_mode=%s", zJournal);
    mustSql(db, zPragma, 0);
  }
  for(i=0; azBase[i] && (i==0 || eBase==BASE_QUOTA); i++){
    bufReset(&res);
    mustSql(db, azBase[i], &res);
    if( i==BASE_H1 ) gH1 = atoll(bufText(&res));
    if( i==BASE_H2 ) gH2 = atoll(bufText(&res));
    if( i==BASE_H3 ) gH3 = atoll(bufText(&res));
  }
  if( eBase==BASE_QUOTA && (gH1<=0 || gH2<=0 || gH3<=0) ) fatal("base: reserve returned no hold id");
  if( eBase>=BASE_SCHEMA1 ) loadSchema1(db);
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

/* The schema version of the store in g.zDb (quota_meta), read without
** the extension: a reference run goes from schema 1 to a later one. */
static int schemaOf(const Path *p, const char *zWhen){
  sqlite3 *db = faultOpenPlain();
  Buf res = {0, 0, 0};
  int v;
  mustSql(db, "SELECT value FROM quota_meta WHERE name='schema'", &res);
  v = atoi(bufText(&res));
  if( v<1 ) fatal("path %s: the store %s has no schema version", p->zName, zWhen);
  closeDb(db);
  bufFree(&res);
  return v;
}

/* The healthy run of path p from its starting database (see buildBase). */
static void buildRef(const Path *p, Ref *pRef, const char *zJournal){
  sqlite3 *db, *db2;
  int i;
  Buf err = {0, 0, 0};
  memset(pRef, 0, sizeof(*pRef));
  buildBase(p->eBase, zJournal);
  readFile(g.zDb, &pRef->image);
  if( p->eBase>=BASE_SCHEMA1 ){
    /* The store upgraded alone, by a first use of its table that does
    ** nothing else; then the base again. */
    if( schemaOf(p, "before the path")!=1 ){
      fatal("path %s: %s is not a store at schema 1", p->zName, zSchema1Sql);
    }
    db = openDb();
    mustSql(db, "SELECT count(*) FROM quota", 0);
    dumpStore(db, &pRef->upgraded, 0);
    closeDb(db);
    installTemplate(g.zDb, &pRef->image);
  }
  pRef->nStmt = countStmt(p);
  db = openDb();
  db2 = openCheckDb(p);
  dumpDb(db2, &pRef->aDump[0]);
  dumpStore(db, &pRef->aView[0], 0);
  refCheck(p, db2, "before the path");
  for(i=0; i<pRef->nStmt; i++){
    char *z = expand(p->azCall[i]);
    int rc = runSql(db, z, &pRef->aRes[i], &err);
    if( rc!=SQLITE_OK ) fatal("path %s reference: %s: %s", p->zName, z, bufText(&err));
    free(z);
    dumpDb(db2, &pRef->aDump[i+1]);
    dumpStore(db, &pRef->aView[i+1], 0);
    refCheck(p, db2, i+1<pRef->nStmt ? "inside the path" : "after the path");
  }
  closeDb(db2);
  closeDb(db);
  bufFree(&err);
  if( p->eBase>=BASE_SCHEMA1 ){
    /* Upgraded: now the extension's checks can run without writing. */
    if( schemaOf(p, "after the path")<2 ) fatal("path %s: the store was not upgraded", p->zName);
    db = openDb();
    refCheck(p, db, "after the path (with the extension)");
    closeDb(db);
  }
}

static void freeRef(Ref *pRef){
  int i;
  bufFree(&pRef->image);
  bufFree(&pRef->upgraded);
  for(i=0; i<=MAX_STMT; i++) bufFree(&pRef->aDump[i]);
  for(i=0; i<=MAX_STMT; i++) bufFree(&pRef->aView[i]);
  for(i=0; i<MAX_STMT; i++) bufFree(&pRef->aRes[i]);
}

/* True if the dump is of the store upgraded alone, and statement nOk+1
** of path p, which failed, was the first use of its table (see BASE_xxx). */
static int refUpgradedAlone(const Path *p, const Ref *pRef, const Buf *pDump, int nOk){
  return p->eBase>=BASE_SCHEMA1 && nOk==pathBegins(p)
      && strcmp(bufText(pDump), bufText(&pRef->upgraded))==0;
}

/*
** Which reference state the dump of a database after a fault is: the state
** after the nOk statements that succeeded, or after one more (a call may
** fail after its commit landed), or the store upgraded alone when that is
** a committed state (BASE_SCHEMA1_AC). Returns that number of statements,
** or -1 with the first difference from the state after nOk statements in
** pWhy.
*/
static int refMatch(const Path *p, const Ref *pRef, const Buf *pDump, int nOk, Buf *pWhy){
  int i;
  for(i=nOk; i<=pRef->nStmt && i<=nOk+1; i++){
    if( strcmp(bufText(pDump), bufText(&pRef->aDump[i]))==0 ) return i;
  }
  if( p->eBase==BASE_SCHEMA1_AC && refUpgradedAlone(p, pRef, pDump, nOk) ) return nOk;
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
** The committed state of g.zDb, read on db, a healthy check connection
** (openCheckDb), after the fault (bRetried false: the state after the nOk
** statements that succeeded or one more, see refMatch) or after the healthy
** retry (bRetried: the reference end state; for a path from schema 1, the
** store is at the current schema by then and is checked on a connection
** with the extension too). PRAGMA integrity_check must say ok, and the
** invariants are checked where the state is no reference state. Returns the
** number of problems, each described in pWhy; -1 when the database cannot
** even be read.
*/
static int checkState(const Path *p, const Ref *pRef, sqlite3 *db, int bRetried,
                      int nOk, Buf *pWhy, int bVerbose){
  const char *zWhen = bRetried ? "the retry" : "the fault";
  Buf dump = {0, 0, 0}, why = {0, 0, 0};
  int rc, bAway, nBad = 0;
  rc = runSql(db, "SELECT count(*) FROM sqlite_schema", 0, &why);
  if( rc!=SQLITE_OK ){
    bufPrintf(pWhy, "database unreadable after %s: rc=%d %s", zWhen, rc, bufText(&why));
    bufFree(&why);
    return -1;
  }
  dumpDb(db, &dump);
  if( bRetried ){
    bAway = refNotAtEnd(pRef, &dump, &why);
  }else{
    bAway = refMatch(p, pRef, &dump, nOk, &why)<0;
  }
  if( bAway ){
    bufPrintf(pWhy, "%s (", bRetried ? "retry did not converge to the reference state"
              : "state after the fault is neither before nor after the call");
    bufAppend(pWhy, bufText(&why), why.n);
    bufAppend(pWhy, ")", 1);
    if( bVerbose ) printf("-- state after %s:\n%s", zWhen, bufText(&dump));
    nBad++;
  }
  bufReset(&why);
  if( bRetried && p->eBase>=BASE_SCHEMA1 ){
    sqlite3 *dbExt = openDb();
    rc = checkDb(dbExt, &why, bAway);
    closeDb(dbExt);
  }else{
    rc = checkDb(db, &why, bAway);
  }
  if( rc ){
    bufPrintf(pWhy, "%safter %s: ", nBad ? "; " : "", zWhen);
    bufAppend(pWhy, bufText(&why), why.n);
    nBad++;
  }
  bufFree(&dump);
  bufFree(&why);
  return nBad;
}

/*
** After statement nOk+1 of path p failed, db is still inside a transaction
** (the path's own, or one left dangling). A failed call leaves the
** caller's transaction as it was (see functions.c): db must see what it
** saw before that statement, or the store upgraded alone where the
** statement was the first use of a schema-1 store's table. Anything else,
** a half-done upgrade say, is what the caller's COMMIT would store. Returns
** 1 with the difference in pWhy; 0 if as it was, or if db cannot read.
*/
static int checkTxnView(const Path *p, const Ref *pRef, sqlite3 *db, int nOk, Buf *pWhy){
  Buf view = {0, 0, 0}, why = {0, 0, 0};
  int bBad = 0;
  if( runSql(db, "SELECT count(*) FROM sqlite_schema", 0, 0)!=SQLITE_OK ) return 0;
  dumpStore(db, &view, 0);
  if( strcmp(bufText(&view), bufText(&pRef->aView[nOk]))!=0
   && !refUpgradedAlone(p, pRef, &view, nOk) ){
    dumpDiff(bufText(&view), bufText(&pRef->aView[nOk]), &why);
    bufPrintf(pWhy, "the transaction still open after statement %d failed is not"
              " as it was before that statement (", nOk+1);
    bufAppend(pWhy, bufText(&why), why.n);
    bufAppend(pWhy, ")", 1);
    bBad = 1;
  }
  bufFree(&view);
  bufFree(&why);
  return bBad;
}

/*
** The errors the faulted statements of a path failed with: each distinct
** message with its primary result code, and how often (errSeen), printed
** after the path (errSeenReport).
*/
#define MAX_ERR_SEEN 12
static struct {
  int n;                          /* Entries of a[] in use */
  int nOther;                     /* Errors seen once a[] was full */
  struct { int rc; int nSeen; char *zMsg; } a[MAX_ERR_SEEN];
} gErrSeen;

static void errSeen(int rc, const char *zMsg){
  int i;
  rc &= 0xff;
  for(i=0; i<gErrSeen.n; i++){
    if( gErrSeen.a[i].rc==rc && strcmp(gErrSeen.a[i].zMsg, zMsg)==0 ){
      gErrSeen.a[i].nSeen++;
      return;
    }
  }
  if( gErrSeen.n>=MAX_ERR_SEEN ){
    gErrSeen.nOther++;
    return;
  }
  gErrSeen.a[i].zMsg = strdup(zMsg);
  if( gErrSeen.a[i].zMsg==0 ) fatal("out of system memory");
  gErrSeen.a[i].rc = rc;
  gErrSeen.a[i].nSeen = 1;
  gErrSeen.n++;
}

/* "PREFIX errors: N x 'MESSAGE' (rc RC); ..." (or "none"), then forget
** them. */
static void errSeenReport(const char *zPrefix){
  int i;
  printf("%s errors:%s", zPrefix, gErrSeen.n ? "" : " none");
  for(i=0; i<gErrSeen.n; i++){
    printf("%s %d x '%s' (rc %d)", i ? ";" : "", gErrSeen.a[i].nSeen,
           gErrSeen.a[i].zMsg, gErrSeen.a[i].rc);
    free(gErrSeen.a[i].zMsg);
  }
  if( gErrSeen.nOther ) printf("; %d others", gErrSeen.nOther);
  printf("\n");
  memset(&gErrSeen, 0, sizeof(gErrSeen));
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
