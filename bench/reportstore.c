/*
** reportstore: a large, lived-in store for timing `quotactl report`.
**
** USAGE (from the repository root; `make drivers` builds it as
** build/reportstore, `make report-bench` runs it and times the report)
**
**     build/reportstore [--rows N] [--keys N] [--days N] [--now TIME]
**                       [--seed N] DB
**
**   --rows N    ledger rows to write (default 10000000)
**   --keys N    API keys (default 1000), each under one of N/20 accounts
**   --days N    the charges are spread evenly over the N days before
**               --now (default 40)
**   --now TIME  the end of the charges, a datetime() value (default the
**               system clock at start, to the second)
**   --seed N    the random sequence (default 1): the same seed, rows, keys,
**               days and now make the same store
**
** DB is removed first and written in WAL mode. Everything goes through the
** extension's public SQL, as an application's traffic would: keys are
** inserted into the quota table, the clock is pinned with quota_clock() to
** each charge's second, and the charges are quota_consume (70%, some
** denied: a denial writes no row, so more calls are made until the ledger
** has --rows rows), quota_record (25%, metering that may pass the cap) and
** quota_reserve + quota_settle (5%). One call in ten carries a request id.
** Keys are picked with a skew (a few are busy, most are quiet), periods
** are mixed (month, day, hour, a rolling hour, lifetime), caps are set so
** that some keys end near or past them, and the table keeps ledger rows 30
** days (retention) with the default idempotency window, so the finished
** store has a purge backlog as a store whose purge job stopped would.
**
** Progress goes to stderr; the last line on stdout is a summary
** ("rows R keys K calls C seconds S").
*/
#include <sqlite3.h>
#include "quota.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>
#define DRIVER_PROG "reportstore"
#include "../test/driver_util.h"

static double now_mono(void){
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec*1e-9;
}

static void usage(void){
  fprintf(stderr, "usage: build/reportstore [--rows N] [--keys N] [--days N]"
                  " [--now TIME] [--seed N] DB\n");
  exit(2);
}

/*
** The pick of a key: x in [a, 1] with density proportional to 1/x
** (a = 1/(3n)), key floor(n*x). Key 0 gets about ln 3 / ln 3n of the
** calls (16% of them with 1000 keys), key 999 about 0.015%.
*/
static long long pick_key(double u, long long n){
  double a = 1.0/(3.0*(double)n);
  long long k = (long long)((double)n * pow(a, 1.0-u));
  return k<n ? k : n-1;
}
/* The share of the calls pick_key() gives key k. */
static double key_share(long long k, long long n){
  double a = 1.0/(3.0*(double)n);
  double lo = (double)k/(double)n > a ? (double)k/(double)n : a;
  return log(((double)(k+1)/(double)n)/lo) / log(1.0/a);
}

/* A positive integer option value, or usage(). */
static long long opt_int(const char *z){
  char *zEnd = 0;
  long long v = strtoll(z, &zEnd, 10);
  if( zEnd==z || *zEnd || v<=0 ) usage();
  return v;
}

static void bind_text(sqlite3 *db, sqlite3_stmt *p, int i, const char *z){
  if( sqlite3_bind_text(p, i, z, -1, SQLITE_TRANSIENT)!=SQLITE_OK ) fatalDb("bind", db);
}
static void bind_int(sqlite3 *db, sqlite3_stmt *p, int i, sqlite3_int64 v){
  if( sqlite3_bind_int64(p, i, v)!=SQLITE_OK ) fatalDb("bind", db);
}
/* Bind z, or NULL when z is 0. */
static void bind_opt(sqlite3 *db, sqlite3_stmt *p, int i, const char *z){
  int rc = z ? sqlite3_bind_text(p, i, z, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(p, i);
  if( rc!=SQLITE_OK ) fatalDb("bind", db);
}
static void finalize_ok(sqlite3 *db, sqlite3_stmt *p){
  if( sqlite3_finalize(p)!=SQLITE_OK ) fatalDb("finalize", db);
}
/* Step p, which returns no row, and reset it. */
static void step_done(sqlite3 *db, sqlite3_stmt *p, const char *zWhat){
  if( sqlite3_step(p)!=SQLITE_DONE ) fatalDb(zWhat, db);
  if( sqlite3_reset(p)!=SQLITE_OK ) fatalDb(zWhat, db);
}

/* Step p, which returns one row; return its first column (NULL -> -1). */
static sqlite3_int64 step_one(sqlite3 *db, sqlite3_stmt *p){
  sqlite3_int64 v;
  if( sqlite3_step(p)!=SQLITE_ROW ) fatalDb(sqlite3_sql(p), db);
  v = sqlite3_column_type(p, 0)==SQLITE_NULL ? -1 : sqlite3_column_int64(p, 0);
  if( sqlite3_reset(p)!=SQLITE_OK ) fatalDb(sqlite3_sql(p), db);
  return v;
}

int main(int argc, char **argv){
  long long nRows = 10000000, nKeys = 1000, nDays = 40, seed = 1;
  const char *zNow = 0, *zDb = 0;
  sqlite3 *db = 0;
  sqlite3_stmt *pClock, *pConsume, *pRecord, *pReserve, *pSettle, *pKey, *pMax;
  sqlite3_int64 tNow, tStart, tLast = -1, span;
  long long nLedger = 0, nCalls = 0, nAcct, i;
  char zKey[32], zReq[32];
  Rng rng;
  double t0 = now_mono();

  for(i=1; i<argc; i++){
    const char *z = argv[i];
    if( i+1<argc && strcmp(z, "--rows")==0 ) nRows = opt_int(argv[++i]);
    else if( i+1<argc && strcmp(z, "--keys")==0 ) nKeys = opt_int(argv[++i]);
    else if( i+1<argc && strcmp(z, "--days")==0 ) nDays = opt_int(argv[++i]);
    else if( i+1<argc && strcmp(z, "--seed")==0 ) seed = opt_int(argv[++i]);
    else if( i+1<argc && strcmp(z, "--now")==0 ) zNow = argv[++i];
    else if( z[0]=='-' || zDb ) usage();
    else zDb = z;
  }
  if( zDb==0 ) usage();
  rng.s = (sqlite3_uint64)seed;
  if( sqlite3_auto_extension((void(*)(void))sqlite3_quota_init)!=SQLITE_OK ){
    fatal("sqlite3_auto_extension failed");
  }
  nAcct = nKeys/20 > 0 ? nKeys/20 : 1;

  removeDbFiles(zDb);
  if( sqlite3_open(zDb, &db)!=SQLITE_OK ) fatalDb("open", db);
  execOk(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
             " PRAGMA cache_size=-200000");

  /* "now": --now through datetime(), else the system clock. */
  {
    sqlite3_stmt *p = prepOk(db, "SELECT CAST(strftime('%s', coalesce(?1, 'now')) AS INTEGER)");
    if( zNow ) bind_text(db, p, 1, zNow);
    tNow = step_one(db, p);
    finalize_ok(db, p);
    if( tNow<0 ) fatal("--now: not a time: '%s'", zNow);
  }
  span = nDays*86400;
  tStart = tNow - span;

  pClock = prepOk(db, "SELECT quota_clock(datetime(?1, 'unixepoch')) IS NOT NULL");
  bind_int(db, pClock, 1, tStart);
  step_one(db, pClock);
  execOk(db, "CREATE VIRTUAL TABLE quota USING quota(retention = '30 days')");

  /*
  ** Keys. Key k's expected share of the charges falls off with k (the pick
  ** below), and its cap is set from that share and its period so that the
  ** keys spread from a tenth of their cap to past it.
  */
  execOk(db, "BEGIN");
  pKey = prepOk(db, "INSERT INTO quota(key, cap, period, parent, retention)"
                    " VALUES(?1, ?2, ?3, ?4, ?5)");
  for(i=0; i<nAcct; i++){
    snprintf(zKey, sizeof(zKey), "acct:%03lld", i);
    bind_text(db, pKey, 1, zKey);
    bind_opt(db, pKey, 2, 0);
    bind_text(db, pKey, 3, "month");
    bind_opt(db, pKey, 4, 0);
    bind_opt(db, pKey, 5, i%7==3 ? "forever" : 0);
    step_done(db, pKey, "insert account");
  }
  for(i=0; i<nKeys; i++){
    static const char *azPeriod[] = {
      "month", "month", "month", "month", "month", "month",
      "day", "day", "hour", "rolling 1 hours", "lifetime", "month"
    };
    const char *zPeriod = azPeriod[i % (sizeof(azPeriod)/sizeof(azPeriod[0]))];
    /* Expected units per day of key i: its share of the rows times the
    ** mean amount. */
    double perDay = key_share(i, nKeys) * (double)nRows / (double)nDays * 50.5;
    double periodDays = strcmp(zPeriod, "day")==0 ? 1.0
                      : strcmp(zPeriod, "hour")==0 ? 1.0/24
                      : strcmp(zPeriod, "rolling 1 hours")==0 ? 1.0/24
                      : strcmp(zPeriod, "lifetime")==0 ? (double)nDays : 30.0;
    /* 0.4 .. 1.6 of the expected use of a period, by a fixed pattern. */
    double fill = 0.4 + 1.2*(double)((i*37) % 100)/100.0;
    sqlite3_int64 cap = (sqlite3_int64)(perDay*periodDays/fill) + 10;
    snprintf(zKey, sizeof(zKey), "sk-live-%04lld", i);
    bind_text(db, pKey, 1, zKey);
    bind_int(db, pKey, 2, cap);
    bind_text(db, pKey, 3, zPeriod);
    snprintf(zReq, sizeof(zReq), "acct:%03lld", i % nAcct);
    bind_text(db, pKey, 4, zReq);
    bind_opt(db, pKey, 5, i%10==0 ? "forever" : 0);
    step_done(db, pKey, "insert key");
  }
  finalize_ok(db, pKey);
  execOk(db, "COMMIT");

  pConsume = prepOk(db, "SELECT quota_consume(?1, ?2, ?3)");
  pRecord = prepOk(db, "SELECT quota_record(?1, ?2, ?3)");
  pReserve = prepOk(db, "SELECT quota_reserve(?1, ?2, ?3)");
  pSettle = prepOk(db, "SELECT quota_settle(?1, ?2)");
  pMax = prepOk(db, "SELECT max(id) FROM quota_ledger");

  /*
  ** The charges, in transactions of 100,000 calls: row r of the ledger is
  ** charged at tStart + r*span/nRows (a call that is denied is retried at
  ** the next pick, in the same second).
  */
  execOk(db, "BEGIN");
  while( nLedger<nRows ){
    sqlite3_int64 t = tStart + (sqlite3_int64)((double)nLedger*(double)span/(double)nRows);
    double u = (double)(rngNext(&rng)>>11) * (1.0/9007199254740992.0);
    int amount = 1 + rngBelow(&rng, 100);
    int kind = rngBelow(&rng, 100);
    int bReq = rngBelow(&rng, 10)==0;
    sqlite3_int64 r;
    if( t!=tLast ){
      bind_int(db, pClock, 1, t);
      step_one(db, pClock);
      tLast = t;
    }
    snprintf(zKey, sizeof(zKey), "sk-live-%04lld", pick_key(u, nKeys));
    snprintf(zReq, sizeof(zReq), "req-%lld", nCalls);
    nCalls++;
    if( kind<70 ){
      bind_text(db, pConsume, 1, zKey);
      bind_int(db, pConsume, 2, amount);
      bind_opt(db, pConsume, 3, bReq ? zReq : 0);
      r = step_one(db, pConsume);
      if( r>0 ) nLedger++;
    }else if( kind<95 ){
      bind_text(db, pRecord, 1, zKey);
      bind_int(db, pRecord, 2, amount);
      bind_opt(db, pRecord, 3, bReq ? zReq : 0);
      r = step_one(db, pRecord);
      if( r<=0 ) fatal("quota_record('%s') returned NULL", zKey);
      nLedger++;
    }else{
      bind_text(db, pReserve, 1, zKey);
      bind_int(db, pReserve, 2, amount+20);
      bind_opt(db, pReserve, 3, bReq ? zReq : 0);
      r = step_one(db, pReserve);
      if( r>0 ){
        bind_int(db, pSettle, 1, r);
        bind_int(db, pSettle, 2, amount);
        step_one(db, pSettle);
        nLedger++;
      }
    }
    if( nCalls%100000==0 ){
      execOk(db, "COMMIT; BEGIN");
      if( nCalls%1000000==0 ){
        fprintf(stderr, "reportstore: %lld calls, %lld ledger rows, %.0f s\n",
                nCalls, nLedger, now_mono()-t0);
      }
    }
  }
  execOk(db, "COMMIT");
  if( step_one(db, pMax)<nRows ) fatal("the ledger has fewer rows than asked");
  finalize_ok(db, pClock);
  finalize_ok(db, pConsume);
  finalize_ok(db, pRecord);
  finalize_ok(db, pReserve);
  finalize_ok(db, pSettle);
  finalize_ok(db, pMax);
  execOk(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  if( sqlite3_close(db)!=SQLITE_OK ) fatal("close");
  printf("rows %lld keys %lld calls %lld seconds %.1f\n",
         nRows, nKeys, nCalls, now_mono()-t0);
  return 0;
}
