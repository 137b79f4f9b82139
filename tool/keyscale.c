/*
** keyscale: how much slower the cheapest hand-written charge gets when the
** key is one of 1,000,000 chosen at random instead of always the same one.
**
** Issue 5 asks that quota_consume on 1,000,000 keys be no more than 1.5x
** slower than on one key. quotabench measures the extension and hand-written
** SQL (2) on a rowid table; this program asks whether any schema a user
** could write meets that bound on this machine: it times
**
**   BEGIN IMMEDIATE; UPDATE q SET used=used+1 WHERE key=?1 AND used+1<=lim;
**   INSERT INTO ledger(key, amount, at) VALUES(?1, 1, 0); COMMIT;
**
** on a rowid table with a UNIQUE key (two B-tree descents per lookup) and a
** WITHOUT ROWID table keyed by key (one), in memory and on a WAL file
** (synchronous=NORMAL; with SQLite's default page cache and with --cache
** KiB). It prints ops/s and the ratio 1,000,000 keys / 1 key for each.
**
**   build/keyscale [--ops N] [--cache KIB] [--dir DIR]
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

#define BIG_KEYS 1000000

static void die(sqlite3 *db, const char *zWhat){
  fprintf(stderr, "keyscale: %s: %s\n", zWhat, db ? sqlite3_errmsg(db) : "?");
  exit(1);
}

static void exec(sqlite3 *db, const char *zSql){
  if( sqlite3_exec(db, zSql, 0, 0, 0)!=SQLITE_OK ) die(db, zSql);
}

static sqlite3_stmt *prep(sqlite3 *db, const char *zSql){
  sqlite3_stmt *p = 0;
  if( sqlite3_prepare_v2(db, zSql, -1, &p, 0)!=SQLITE_OK ) die(db, zSql);
  return p;
}

static void step_done(sqlite3 *db, sqlite3_stmt *p){
  if( sqlite3_step(p)!=SQLITE_DONE ) die(db, sqlite3_sql(p));
  if( sqlite3_reset(p)!=SQLITE_OK ) die(db, sqlite3_sql(p));
}

static double now_sec(void){
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec*1e-9;
}

/* xorshift64: the same key sequence on every run */
static uint64_t rnd(uint64_t *s){
  *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
  return *s;
}

/* ops/s of the charge above on a store of nKey keys. */
static double charge_rate(const char *zPath, int bWithoutRowid, long nKey,
                          long nOps, long nCacheKib){
  sqlite3 *db = 0;
  sqlite3_stmt *pFill, *pBegin, *pUpdate, *pLedger, *pCommit;
  char zSql[256], zKey[32];
  uint64_t seed = 0x9e3779b97f4a7c15ULL;
  double t0;
  long i;
  if( strcmp(zPath, ":memory:")!=0 ) remove(zPath);
  if( sqlite3_open(zPath, &db)!=SQLITE_OK ) die(db, zPath);
  if( strcmp(zPath, ":memory:")!=0 ){
    exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
  }
  if( nCacheKib>0 ){
    snprintf(zSql, sizeof(zSql), "PRAGMA cache_size=-%ld", nCacheKib);
    exec(db, zSql);
  }
  snprintf(zSql, sizeof(zSql),
      "CREATE TABLE q(key TEXT PRIMARY KEY, lim INTEGER NOT NULL,"
      " used INTEGER NOT NULL DEFAULT 0)%s;"
      "CREATE TABLE ledger(id INTEGER PRIMARY KEY, key TEXT NOT NULL,"
      " amount INTEGER NOT NULL, at INTEGER NOT NULL);",
      bWithoutRowid ? " WITHOUT ROWID" : "");
  exec(db, zSql);
  exec(db, "BEGIN");
  pFill = prep(db,
      "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i+1<?1)"
      " INSERT INTO q(key, lim) SELECT printf('k%07d', i), 1000000000000 FROM n");
  if( sqlite3_bind_int64(pFill, 1, nKey)!=SQLITE_OK ) die(db, "bind");
  step_done(db, pFill);
  sqlite3_finalize(pFill);
  exec(db, "COMMIT");
  if( strcmp(zPath, ":memory:")!=0 ) exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  pBegin = prep(db, "BEGIN IMMEDIATE");
  pUpdate = prep(db, "UPDATE q SET used=used+1 WHERE key=?1 AND used+1<=lim");
  pLedger = prep(db, "INSERT INTO ledger(key, amount, at) VALUES(?1, 1, 0)");
  pCommit = prep(db, "COMMIT");
  t0 = now_sec();
  for(i=0; i<nOps; i++){
    long k = nKey<=1 ? 0 : (long)(rnd(&seed) % (uint64_t)nKey);
    snprintf(zKey, sizeof(zKey), "k%07ld", k);
    step_done(db, pBegin);
    if( sqlite3_bind_text(pUpdate, 1, zKey, -1, SQLITE_STATIC)!=SQLITE_OK ) die(db, "bind");
    step_done(db, pUpdate);
    if( sqlite3_changes(db)!=1 ) die(db, "the guarded UPDATE changed no row");
    if( sqlite3_bind_text(pLedger, 1, zKey, -1, SQLITE_STATIC)!=SQLITE_OK ) die(db, "bind");
    step_done(db, pLedger);
    step_done(db, pCommit);
  }
  t0 = now_sec() - t0;
  sqlite3_finalize(pBegin);
  sqlite3_finalize(pUpdate);
  sqlite3_finalize(pLedger);
  sqlite3_finalize(pCommit);
  if( sqlite3_close(db)!=SQLITE_OK ) die(db, "close");
  if( strcmp(zPath, ":memory:")!=0 ){
    char z[600];
    snprintf(z, sizeof(z), "%s-wal", zPath); remove(z);
    snprintf(z, sizeof(z), "%s-shm", zPath); remove(z);
    remove(zPath);
  }
  return (double)nOps / t0;
}

int main(int argc, char **argv){
  long nOps = 200000, nCacheKib = 262144;
  const char *zDir = "build";
  char zPath[512];
  int i, iDb, iCache, bWr;
  for(i=1; i<argc; i++){
    if( strcmp(argv[i], "--ops")==0 && i+1<argc ) nOps = atol(argv[++i]);
    else if( strcmp(argv[i], "--cache")==0 && i+1<argc ) nCacheKib = atol(argv[++i]);
    else if( strcmp(argv[i], "--dir")==0 && i+1<argc ) zDir = argv[++i];
    else{
      fprintf(stderr, "usage: keyscale [--ops N] [--cache KIB] [--dir DIR]\n");
      return 2;
    }
  }
  if( nOps<=0 || nCacheKib<=0 ){
    fprintf(stderr, "keyscale: --ops and --cache must be positive\n");
    return 2;
  }
  snprintf(zPath, sizeof(zPath), "%s/keyscale.db", zDir);
  printf("SQLite %s; %ld charges per case; ratio = ops/s on %d keys / ops/s on 1 key\n\n",
         sqlite3_libversion(), nOps, BIG_KEYS);
  printf("| database | page cache | table | 1 key ops/s | %d keys ops/s | ratio |\n", BIG_KEYS);
  printf("|---|---|---|---:|---:|---:|\n");
  for(iDb=0; iDb<2; iDb++){
    for(iCache=0; iCache<1+iDb; iCache++){   /* :memory: is all cache */
      for(bWr=0; bWr<2; bWr++){
        const char *z = iDb ? zPath : ":memory:";
        long nKib = iCache ? nCacheKib : 0;
        double r1 = charge_rate(z, bWr, 1, nOps, nKib);
        double rN = charge_rate(z, bWr, BIG_KEYS, nOps, nKib);
        char zCache[32];
        if( nKib ) snprintf(zCache, sizeof(zCache), "%ld KiB", nKib);
        else snprintf(zCache, sizeof(zCache), "default");
        printf("| %s | %s | %s | %.0f | %.0f | %.2fx |\n",
               iDb ? "WAL NORMAL" : "memory", zCache,
               bWr ? "WITHOUT ROWID" : "rowid, UNIQUE key", r1, rN, rN/r1);
        fflush(stdout);
      }
    }
  }
  return 0;
}
