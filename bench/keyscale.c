/*
** keyscale: how much slower the cheapest hand-written charge gets when the
** key is one of 1,000,000 chosen at random instead of always the same one.
**
** The project's target (doc/performance.md) is quota_consume on 1,000,000
** keys no more than 1.5x slower than on one key. quotabench measures the extension and hand-written
** SQL (2) on a rowid table; this program asks whether any schema a user
** could write meets that bound on this machine: it times
**
**   BEGIN IMMEDIATE; UPDATE q SET used=used+1 WHERE key=?1 AND used+1<=lim;
**   INSERT INTO ledger(key, amount, at) VALUES(?1, 1, 0); COMMIT;
**
** on a rowid table with a UNIQUE key (two B-tree descents per lookup) and a
** WITHOUT ROWID table keyed by key (one), in memory and on a WAL file
** (synchronous=NORMAL, SQLite's default page cache). The eight stores stay
** open; rounds run every case once, in a rotating order, and the figure is
** the median of the per-round ratios 1,000,000 keys / 1 key, as quotabench
** does (single runs on this 2-core machine differ by 30%).
**
**   build/keyscale [--ops N] [--rounds N] [--dir DIR]
**
** Not part of make bench: a one-off question with its answer in
** doc/performance.md.
*/
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define DRIVER_PROG "keyscale"
#include "../test/driver_util.h"

#define BIG_KEYS 1000000
#define MAX_ROUNDS 25

static void step_done(sqlite3 *db, sqlite3_stmt *p){
  if( sqlite3_step(p)!=SQLITE_DONE ) fatalDb(sqlite3_sql(p), db);
  if( sqlite3_reset(p)!=SQLITE_OK ) fatalDb(sqlite3_sql(p), db);
}

static double now_sec(void){
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec*1e-9;
}


/* One store, open for the whole run. */
typedef struct Case Case;
struct Case {
  sqlite3 *db;
  sqlite3_stmt *pBegin, *pUpdate, *pLedger, *pCommit;
  long nKey;
  Rng rng;                   /* the same key sequence on every run */
  double aRate[MAX_ROUNDS];  /* ops/s of each round */
};

static void case_open(Case *c, const char *zPath, int bWithoutRowid, long nKey){
  sqlite3_stmt *pFill;
  char zSql[256];
  memset(c, 0, sizeof(*c));
  c->nKey = nKey;
  c->rng.s = 0x9e3779b97f4a7c15ULL;
  if( zPath ) remove(zPath);
  if( sqlite3_open(zPath ? zPath : ":memory:", &c->db)!=SQLITE_OK ) fatalDb("open", c->db);
  if( zPath ) execOk(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
  snprintf(zSql, sizeof(zSql),
      "CREATE TABLE q(key TEXT PRIMARY KEY, lim INTEGER NOT NULL,"
      " used INTEGER NOT NULL DEFAULT 0)%s;"
      "CREATE TABLE ledger(id INTEGER PRIMARY KEY, key TEXT NOT NULL,"
      " amount INTEGER NOT NULL, at INTEGER NOT NULL);",
      bWithoutRowid ? " WITHOUT ROWID" : "");
  execOk(c->db, zSql);
  execOk(c->db, "BEGIN");
  pFill = prepOk(c->db,
      "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i+1<?1)"
      " INSERT INTO q(key, lim) SELECT printf('k%07d', i), 1000000000000 FROM n");
  if( sqlite3_bind_int64(pFill, 1, nKey)!=SQLITE_OK ) fatalDb("bind", c->db);
  step_done(c->db, pFill);
  sqlite3_finalize(pFill);
  execOk(c->db, "COMMIT");
  if( zPath ) execOk(c->db, "PRAGMA wal_checkpoint(TRUNCATE)");
  c->pBegin = prepOk(c->db, "BEGIN IMMEDIATE");
  c->pUpdate = prepOk(c->db, "UPDATE q SET used=used+1 WHERE key=?1 AND used+1<=lim");
  c->pLedger = prepOk(c->db, "INSERT INTO ledger(key, amount, at) VALUES(?1, 1, 0)");
  c->pCommit = prepOk(c->db, "COMMIT");
}

/* nOps charges to keys at random; ops/s. */
static double case_run(Case *c, long nOps){
  char zKey[32];
  double t0 = now_sec();
  long i;
  for(i=0; i<nOps; i++){
    long k = c->nKey<=1 ? 0 : (long)(rngNext(&c->rng) % (uint64_t)c->nKey);
    snprintf(zKey, sizeof(zKey), "k%07ld", k);
    step_done(c->db, c->pBegin);
    if( sqlite3_bind_text(c->pUpdate, 1, zKey, -1, SQLITE_STATIC)!=SQLITE_OK ) fatalDb("bind", c->db);
    step_done(c->db, c->pUpdate);
    if( sqlite3_changes(c->db)!=1 ) fatalDb("the guarded UPDATE changed no row", c->db);
    if( sqlite3_bind_text(c->pLedger, 1, zKey, -1, SQLITE_STATIC)!=SQLITE_OK ) fatalDb("bind", c->db);
    step_done(c->db, c->pLedger);
    step_done(c->db, c->pCommit);
  }
  return (double)nOps / (now_sec() - t0);
}

static void case_close(Case *c){
  sqlite3_finalize(c->pBegin);
  sqlite3_finalize(c->pUpdate);
  sqlite3_finalize(c->pLedger);
  sqlite3_finalize(c->pCommit);
  if( sqlite3_close(c->db)!=SQLITE_OK ) fatalDb("close", c->db);
}

static int cmp_double(const void *a, const void *b){
  double x = *(const double*)a, y = *(const double*)b;
  return x<y ? -1 : x>y;
}

static double median(double *a, int n){
  qsort(a, (size_t)n, sizeof(double), cmp_double);
  return n%2 ? a[n/2] : (a[n/2-1] + a[n/2])/2;
}

int main(int argc, char **argv){
  /* cases: [memory|WAL][rowid|WITHOUT ROWID][1 key|BIG_KEYS] */
  static const char *azDb[] = { "memory", "WAL NORMAL" };
  static const char *azTable[] = { "rowid, UNIQUE key", "WITHOUT ROWID" };
  Case aCase[8];
  long nOps = 20000;
  int nRound = 7;
  const char *zDir = "build";
  int i, r;
  for(i=1; i<argc; i++){
    if( strcmp(argv[i], "--ops")==0 && i+1<argc ) nOps = atol(argv[++i]);
    else if( strcmp(argv[i], "--rounds")==0 && i+1<argc ) nRound = atoi(argv[++i]);
    else if( strcmp(argv[i], "--dir")==0 && i+1<argc ) zDir = argv[++i];
    else{
      fprintf(stderr, "usage: keyscale [--ops N] [--rounds N] [--dir DIR]\n");
      return 2;
    }
  }
  if( nOps<=0 || nRound<1 || nRound>MAX_ROUNDS ){
    fprintf(stderr, "keyscale: --ops must be positive, --rounds 1 to %d\n", MAX_ROUNDS);
    return 2;
  }
  for(i=0; i<8; i++){
    char zPath[512];
    snprintf(zPath, sizeof(zPath), "%s/keyscale-%d.db", zDir, i);
    case_open(&aCase[i], (i & 4) ? zPath : 0, (i & 2)!=0, (i & 1) ? BIG_KEYS : 1);
    fprintf(stderr, "keyscale: store %d of 8 built\n", i+1);
  }
  /* Interleaved: every case runs once per round, a round's 1-key and
  ** many-key runs seconds apart, so the machine's noise hits both. */
  for(i=0; i<8; i++) case_run(&aCase[i], nOps/4);          /* warm-up */
  for(r=0; r<nRound; r++){
    for(i=0; i<8; i++){
      int j = (i + r) % 8;
      aCase[j].aRate[r] = case_run(&aCase[j], nOps);
    }
  }
  printf("SQLite %s; %d interleaved rounds of %ld charges per case; ratio = ops/s on"
         " %d keys / ops/s on 1 key in the same round, median of the rounds\n\n",
         sqlite3_libversion(), nRound, nOps, BIG_KEYS);
  printf("| database | table | 1 key ops/s | %d keys ops/s | median ratio | per-round ratios |\n",
         BIG_KEYS);
  printf("|---|---|---:|---:|---:|---|\n");
  for(i=0; i<8; i+=2){
    double aRatio[MAX_ROUNDS], aOne[MAX_ROUNDS], aBig[MAX_ROUNDS];
    char zRounds[MAX_ROUNDS*8] = "";
    for(r=0; r<nRound; r++){
      size_t n = strlen(zRounds);
      aRatio[r] = aCase[i+1].aRate[r] / aCase[i].aRate[r];
      aOne[r] = aCase[i].aRate[r];
      aBig[r] = aCase[i+1].aRate[r];
      snprintf(zRounds+n, sizeof(zRounds)-n, "%s%.2f", r ? " " : "", aRatio[r]);
    }
    printf("| %s | %s | %.0f | %.0f | %.2fx | %s |\n", azDb[i>>2], azTable[(i>>1)&1],
           median(aOne, nRound), median(aBig, nRound), median(aRatio, nRound), zRounds);
  }
  for(i=0; i<8; i++){
    case_close(&aCase[i]);
    if( i & 4 ){
      char z[600];
      snprintf(z, sizeof(z), "%s/keyscale-%d.db", zDir, i);
      removeDbFiles(z);
    }
  }
  return 0;
}
