/*
** test/admission_stress.c: leases and token buckets under many processes
** and SIGKILL.
**
**   build/admission_stress DBFILE [--procs N] [--seconds S] [--seed X]
**                          [--kill-ms M] [--journal wal|delete] [--quiet]
**
** Defaults: 4 workers, 8 s, kill every 500 ms, WAL, a seed from the clock
** (printed first; --seed replays the choice of operations, not the timing).
** DBFILE (and its -wal, -shm, -journal, DBFILE.wN.log, DBFILE.obs) is
** deleted and recreated. The clock is the system's, as in production.
**
** The store: `slots`, a lifetime key of cap 3 whose holds are leases (a
** concurrency limit); `bucket`, a token bucket of 60 units refilling 60 a
** second, under `acct`, a month of 10^9.
**
** Each worker loops, drawing from its seed:
**   - a lease: quota_reserve('slots', 1, rid, 2); while its work lasts (0.2
**     to 1.5 s) a heartbeat quota_extend(H, 2) every 0.3 to 0.7 s; then
**     quota_release(H). Now and then the heartbeat comes too late (the
**     worker sleeps past the lease's end): the extension must say NULL;
**   - quota_consume('bucket', 1..8, rid);
**   - quota_reserve_upto('bucket', 1..3, 4..12, rid, 3600), then (at once
**     or after up to 100 ms) a settle at, below or above the hold, or a
**     release.
** Before every call it appends an intent line to DBFILE.wSLOT.log, after it
** an acknowledgement with the result and the wall-clock window of the call
** (one write(2) each). The parent kills a random worker with SIGKILL every
** ~M ms (M/2 to 3M/2) and starts a new one in its slot; a killed worker's
** leases stop beating and run out, its bucket holds stay live. An observer
** process reads the quota table continuously: the slots' reserved never
** exceeds 3.
**
** At the end, with everything stopped, it checks:
**   1. PRAGMA integrity_check and quota_integrity() say ok;
**   2. leases: at no second did more than 3 leases live (from each hold's
**      created, and its end: released, or expired at its expires); every
**      heartbeat that was acknowledged with a new expiry ran while the
**      lease was live (its expiry before the call was after the call's
**      clock: an expired lease is never revived), and its expiry is the
**      call's clock plus 2; a heartbeat refused with NULL came after the
**      lease's end; a lease's final expiry is its last acknowledged
**      heartbeat's (or one in flight when its worker was killed); a lease
**      released with 1 was released while live;
**   3. the bucket never granted more than 60 + 60 x elapsed over any
**      interval of whole seconds: consumes (the ledger) and holds (their
**      created, from quota_hold) count, releases and settles below a hold
**      count back at their end;
**   4. every acknowledged consume and hold is in the store (no lost
**      acknowledgement), no request id charged twice; acct's used is the
**      bucket's ledger of this month.
** It prints a summary ending "result: PASS" or "result: FAIL".
**
** Exit status: 0 all checks passed, 1 a check failed, 2 usage or setup error.
*/
#define _GNU_SOURCE 1
#include <sqlite3.h>
#include "quota.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#define DRIVER_PROG "admission_stress"
#define QUOTA_STR_(x) #x
#define QUOTA_STR(x) QUOTA_STR_(x)
#include "driver_util.h"

typedef sqlite3_int64 i64;

#define MAX_PROCS  32
#define SLOTS_CAP  3
#define LEASE_TTL  2
#define BUCKET_CAP 60
#define BUCKET_N   60            /* units per second */

static struct {
  const char *zDb;
  int nProc;
  int nSec;
  sqlite3_uint64 seed;
  int killMs;
  int bWal;
  int bQuiet;
} cfg;

static volatile sig_atomic_t gStop = 0;
static void onTerm(int sig){ (void)sig; gStop = 1; }

static void sleepMs(int ms){
  struct timespec ts;
  if( ms<=0 ) return;
  ts.tv_sec = ms/1000;
  ts.tv_nsec = (long)(ms%1000)*1000000L;
  while( nanosleep(&ts, &ts)!=0 && errno==EINTR && !gStop ){}
}

static void pathFor(char *z, size_t n, const char *zSuffix){
  snprintf(z, n, "%s%s", cfg.zDb, zSuffix);
}


static sqlite3 *openDb(void){
  sqlite3 *db = 0;
  if( sqlite3_open_v2(cfg.zDb, &db, SQLITE_OPEN_READWRITE|SQLITE_OPEN_CREATE, 0)!=SQLITE_OK ){
    fatalDb("open", db);
  }
  sqlite3_busy_timeout(db, 10000);
  sqlite3_exec(db, "PRAGMA synchronous=NORMAL", 0, 0, 0);
  return db;
}

/*
** Run "SELECT <call>" with integer or text bindings (aArg, a NULL-ended
** list of strings: "i:N" an integer, "t:X" a text). *pNull set when the
** result is NULL; *pVal the integer result. Returns the result code.
*/
static int callInt(sqlite3 *db, const char *zSql, const char **azArg,
                   i64 *pVal, int *pNull, char *zErr, size_t nErr){
  sqlite3_stmt *p = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &p, 0), i;
  *pNull = 1;
  *pVal = 0;
  zErr[0] = 0;
  for(i=0; rc==SQLITE_OK && azArg && azArg[i]; i++){
    if( azArg[i][0]=='i' ) sqlite3_bind_int64(p, i+1, atoll(azArg[i]+2));
    else sqlite3_bind_text(p, i+1, azArg[i]+2, -1, SQLITE_TRANSIENT);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_step(p);
    if( rc==SQLITE_ROW ){
      *pNull = sqlite3_column_type(p, 0)==SQLITE_NULL;
      *pVal = sqlite3_column_int64(p, 0);
      rc = SQLITE_OK;
    }
  }
  if( rc!=SQLITE_OK ) snprintf(zErr, nErr, "%s", sqlite3_errmsg(db));
  sqlite3_finalize(p);
  return rc;
}

/* ------------------------------------------------------------ workers */

typedef struct Worker {
  int slot, inc, fd;
  sqlite3 *db;
  Rng rng;
  int nCall;
} Worker;

static void ridOf(Worker *w, char *z, size_t n){
  snprintf(z, n, "w%d-%d-%d", w->slot, w->inc, w->nCall++);
}

/* Log an error of a call (the summary counts them; none is expected). */
static void logErr(Worker *w, const char *zWhat, int rc, const char *zMsg){
  logLine(w->fd, "ER %s %d %s", zWhat, rc, zMsg);
}

static void leaseJob(Worker *w){
  char zRid[64], zErr[300], zH[40], zT[80];
  const char *az[4];
  i64 h = 0, v, tb, ta, tEnd;
  int bNull, rc, bLate = rngBelow(&w->rng, 5)==0;
  ridOf(w, zRid, sizeof(zRid));
  snprintf(zT, sizeof(zT), "t:%s", zRid);
  az[0] = zT; az[1] = 0;
  tb = nowMs();
  logLine(w->fd, "RI %s %lld", zRid, tb);
  rc = callInt(w->db, "SELECT quota_reserve('slots', 1, ?1, " QUOTA_STR(LEASE_TTL) ")",
               az, &h, &bNull, zErr, sizeof(zErr));
  ta = nowMs();
  if( rc ){ logErr(w, "reserve", rc, zErr); return; }
  if( bNull ){ logLine(w->fd, "RA %s NULL %lld %lld", zRid, tb, ta); sleepMs(100); return; }
  logLine(w->fd, "RA %s %lld %lld %lld", zRid, h, tb, ta);
  tEnd = ta + 200 + rngBelow(&w->rng, 1300);
  while( !gStop && nowMs()<tEnd ){
    sleepMs(bLate ? LEASE_TTL*1000 + 600 : 300 + rngBelow(&w->rng, 400));
    bLate = 0;
    snprintf(zH, sizeof(zH), "i:%lld", h);
    az[0] = zH; az[1] = 0;
    tb = nowMs();
    logLine(w->fd, "EI %lld %lld", h, tb);
    rc = callInt(w->db, "SELECT CAST(strftime('%s', quota_extend(?1, "
                 QUOTA_STR(LEASE_TTL) ")) AS INTEGER)", az, &v, &bNull, zErr, sizeof(zErr));
    ta = nowMs();
    if( rc ){ logErr(w, "extend", rc, zErr); return; }
    if( bNull ){
      logLine(w->fd, "EA %lld NULL %lld %lld", h, tb, ta);
      return;                             /* the lease was lost */
    }
    logLine(w->fd, "EA %lld %lld %lld %lld", h, v, tb, ta);
  }
  snprintf(zH, sizeof(zH), "i:%lld", h);
  az[0] = zH; az[1] = 0;
  tb = nowMs();
  logLine(w->fd, "LI %lld %lld", h, tb);
  rc = callInt(w->db, "SELECT quota_release(?1)", az, &v, &bNull, zErr, sizeof(zErr));
  ta = nowMs();
  if( rc ){ logErr(w, "release", rc, zErr); return; }
  logLine(w->fd, "LA %lld %lld %lld %lld", h, v, tb, ta);
}

static void consumeJob(Worker *w){
  char zRid[64], zErr[300], zT[80], zA[40];
  const char *az[3];
  i64 v, amount = 1 + rngBelow(&w->rng, 8);
  int bNull, rc;
  ridOf(w, zRid, sizeof(zRid));
  snprintf(zT, sizeof(zT), "t:%s", zRid);
  snprintf(zA, sizeof(zA), "i:%lld", amount);
  az[0] = zA; az[1] = zT; az[2] = 0;
  logLine(w->fd, "CI %s %lld", zRid, amount);
  rc = callInt(w->db, "SELECT quota_consume('bucket', ?1, ?2)", az, &v, &bNull,
               zErr, sizeof(zErr));
  if( rc ){ logErr(w, "consume", rc, zErr); return; }
  if( bNull ) logLine(w->fd, "CA %s NULL", zRid);
  else logLine(w->fd, "CA %s %lld", zRid, v);
}

static void holdJob(Worker *w){
  char zRid[64], zErr[300], zT[80], zA[40], zB[40], zH[40];
  const char *az[4];
  i64 h, v, lo = 1 + rngBelow(&w->rng, 3), hi = 4 + rngBelow(&w->rng, 9), amt;
  int bNull, rc;
  ridOf(w, zRid, sizeof(zRid));
  snprintf(zT, sizeof(zT), "t:%s", zRid);
  snprintf(zA, sizeof(zA), "i:%lld", lo);
  snprintf(zB, sizeof(zB), "i:%lld", hi);
  az[0] = zA; az[1] = zB; az[2] = zT; az[3] = 0;
  logLine(w->fd, "UI %s %lld %lld", zRid, lo, hi);
  rc = callInt(w->db, "SELECT quota_reserve_upto('bucket', ?1, ?2, ?3, 3600)", az,
               &h, &bNull, zErr, sizeof(zErr));
  if( rc ){ logErr(w, "reserve_upto", rc, zErr); return; }
  if( bNull ){ logLine(w->fd, "UA %s NULL", zRid); sleepMs(10); return; }
  logLine(w->fd, "UA %s %lld", zRid, h);
  sleepMs(rngBelow(&w->rng, 3)==0 ? rngBelow(&w->rng, 100) : 0);
  snprintf(zH, sizeof(zH), "i:%lld", h);
  if( rngBelow(&w->rng, 10)<6 ){
    amt = rngBelow(&w->rng, (int)hi + 4);
    snprintf(zA, sizeof(zA), "i:%lld", amt);
    az[0] = zH; az[1] = zA; az[2] = 0;
    logLine(w->fd, "SI %lld %lld", h, amt);
    rc = callInt(w->db, "SELECT quota_settle(?1, ?2)", az, &v, &bNull, zErr, sizeof(zErr));
    if( rc ){ logErr(w, "settle", rc, zErr); return; }
    logLine(w->fd, "SA %lld %lld", h, v);
  }else{
    az[0] = zH; az[1] = 0;
    logLine(w->fd, "XI %lld", h);
    rc = callInt(w->db, "SELECT quota_release(?1)", az, &v, &bNull, zErr, sizeof(zErr));
    if( rc ){ logErr(w, "release", rc, zErr); return; }
    logLine(w->fd, "XA %lld %lld", h, v);
  }
}

static void workerMain(int slot, int inc){
  Worker w;
  char zLog[1100];
  memset(&w, 0, sizeof(w));
  w.slot = slot;
  w.inc = inc;
  w.rng.s = cfg.seed*1000003ULL + (sqlite3_uint64)slot*7919ULL + (sqlite3_uint64)inc*104729ULL;
  snprintf(zLog, sizeof(zLog), "%s.w%d.log", cfg.zDb, slot);
  w.fd = open(zLog, O_WRONLY|O_CREAT|O_APPEND, 0644);
  if( w.fd<0 ) _exit(2);
  signal(SIGTERM, onTerm);
  w.db = openDb();
  logLine(w.fd, "START %d %d", slot, inc);
  while( !gStop ){
    int r = rngBelow(&w.rng, 10);
    if( r<4 ) leaseJob(&w);
    else if( r<7 ) consumeJob(&w);
    else holdJob(&w);
  }
  sqlite3_close(w.db);
  _exit(0);
}

/* ------------------------------------------------------------ observer */

static void observerMain(void){
  sqlite3 *db = openDb();
  sqlite3_stmt *p = prepOk(db, "SELECT reserved, cap FROM quota WHERE key='slots'");
  i64 nSnap = 0, nBad = 0, nErr = 0;
  char zObs[1100];
  FILE *f;
  signal(SIGTERM, onTerm);
  while( !gStop ){
    int rc = sqlite3_step(p);
    if( rc==SQLITE_ROW ){
      nSnap++;
      if( sqlite3_column_int64(p, 0)>sqlite3_column_int64(p, 1) ) nBad++;
    }else if( rc!=SQLITE_DONE && (rc&0xff)!=SQLITE_BUSY ){
      nErr++;
    }
    sqlite3_reset(p);
    sleepMs(3);
  }
  sqlite3_finalize(p);
  sqlite3_close(db);
  pathFor(zObs, sizeof(zObs), ".obs");
  f = fopen(zObs, "w");
  if( f ){ fprintf(f, "%lld %lld %lld\n", nSnap, nBad, nErr); fclose(f); }
  _exit(0);
}

/* ------------------------------------------------------------ checks */

/* What the logs said, per hold and per request id. */
typedef struct Lease {
  i64 h;
  int nExt;                 /* acknowledged heartbeats (with a new expiry) */
  i64 lastExp;              /* the last of them, 0 when none */
  int bInFlight;            /* a heartbeat was begun after the last ack */
  i64 inFlightTb;           /* ... at this wall clock (ms) */
  int bReleased1;           /* its release was acknowledged with 1 */
  i64 relTa;                /* ... by this wall clock (ms) */
} Lease;

static struct {
  i64 calls, acks, leases, leasesDenied, heartbeats, heartbeatsNull, consumes,
      consumesDenied, holds, holdsDenied, errors;
  i64 violLeaseConc, violRevived, violExpiry, violNullEarly, violFinalExp,
      violReleased, violBucket, violLost, violDup, violAcct, violObserver;
} S;

static Lease *aLease = 0;
static int nLease = 0, nLeaseAlloc = 0;
static Lease *leaseOf(i64 h){
  int i;
  for(i=0; i<nLease; i++) if( aLease[i].h==h ) return &aLease[i];
  if( nLease==nLeaseAlloc ){
    nLeaseAlloc = nLeaseAlloc ? 2*nLeaseAlloc : 64;
    aLease = realloc(aLease, sizeof(Lease)*(size_t)nLeaseAlloc);
    if( aLease==0 ) fatal("out of memory");
  }
  memset(&aLease[nLease], 0, sizeof(Lease));
  aLease[nLease].h = h;
  return &aLease[nLease++];
}

static int nShown = 0;
static void violation(i64 *pCount, const char *zFmt, ...){
  va_list ap;
  (*pCount)++;
  if( nShown++>=30 ) return;
  fprintf(stderr, "admission_stress: VIOLATION: ");
  va_start(ap, zFmt);
  vfprintf(stderr, zFmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
}

/* One integer of a hold from the store (SQL with ?1 the hold id). */
static i64 holdInt(sqlite3 *db, const char *zSql, i64 h){
  sqlite3_stmt *p = prepOk(db, zSql);
  i64 v = -1;
  sqlite3_bind_int64(p, 1, h);
  if( sqlite3_step(p)==SQLITE_ROW && sqlite3_column_type(p, 0)!=SQLITE_NULL ){
    v = sqlite3_column_int64(p, 0);
  }
  sqlite3_finalize(p);
  return v;
}

/* Read the workers' logs; check what each line says against the store. */
static void checkLogs(sqlite3 *db){
  int slot;
  sqlite3_stmt *pLed = prepOk(db, "SELECT count(*) FROM quota_ledger WHERE id=?1"
                                  " AND key='bucket' AND hold_id IS NULL");
  sqlite3_stmt *pHold = prepOk(db, "SELECT count(*) FROM quota_holds WHERE id=?1");
  for(slot=0; slot<cfg.nProc; slot++){
    char zLog[1100], zLine[600];
    FILE *f;
    snprintf(zLog, sizeof(zLog), "%s.w%d.log", cfg.zDb, slot);
    f = fopen(zLog, "r");
    if( f==0 ) continue;
    while( fgets(zLine, sizeof(zLine), f) ){
      char zOp[8], zA[64], zB[64];
      long long a1 = 0, a2 = 0, a3 = 0, a4 = 0;
      if( sscanf(zLine, "%7s", zOp)!=1 ) continue;
      if( zOp[1]=='I' ) S.calls++;
      if( zOp[1]=='A' ) S.acks++;
      if( strcmp(zOp, "ER")==0 ){
        S.errors++;
        if( S.errors<=5 ) fprintf(stderr, "admission_stress: error line: %s", zLine);
      }else if( strcmp(zOp, "RA")==0 ){
        if( sscanf(zLine, "RA %63s %63s", zA, zB)!=2 ) continue;
        if( strcmp(zB, "NULL")==0 ){ S.leasesDenied++; continue; }
        S.leases++;
        leaseOf(atoll(zB));
        sqlite3_bind_int64(pHold, 1, atoll(zB));
        if( sqlite3_step(pHold)!=SQLITE_ROW || sqlite3_column_int64(pHold, 0)!=1 ){
          violation(&S.violLost, "acknowledged lease %s is not in quota_holds", zB);
        }
        sqlite3_reset(pHold);
      }else if( strcmp(zOp, "EI")==0 ){
        Lease *l;
        if( sscanf(zLine, "EI %lld %lld", &a1, &a2)!=2 ) continue;
        l = leaseOf(a1);
        l->bInFlight = 1;
        l->inFlightTb = a2;
      }else if( strcmp(zOp, "EA")==0 ){
        Lease *l;
        i64 prev, created;
        if( sscanf(zLine, "EA %lld %63s %lld %lld", &a1, zA, &a3, &a4)!=4 ) continue;
        l = leaseOf(a1);
        l->bInFlight = 0;
        created = holdInt(db, "SELECT CAST(strftime('%s', quota_hold(?1) ->> '$.created')"
                              " AS INTEGER)", a1);
        prev = l->nExt ? l->lastExp : created + LEASE_TTL;
        S.heartbeats++;
        if( strcmp(zA, "NULL")==0 ){
          S.heartbeatsNull++;
          /* refused: the lease had ended by the time the call finished */
          if( prev > a4/1000 ){
            violation(&S.violNullEarly, "hold %lld: heartbeat refused at [%lld, %lld] ms"
                      " but it lived to %lld", a1, a3, a4, prev);
          }
        }else{
          i64 e = atoll(zA);
          /* granted: live when the call ran (after its start), and its
          ** new expiry is the call's clock plus the ttl */
          if( prev <= a3/1000 ){
            violation(&S.violRevived, "hold %lld: heartbeat at [%lld, %lld] ms gave %lld,"
                      " but the lease had ended at %lld", a1, a3, a4, e, prev);
          }
          if( e-LEASE_TTL < a3/1000 || e-LEASE_TTL > a4/1000 ){
            violation(&S.violExpiry, "hold %lld: heartbeat at [%lld, %lld] ms gave"
                      " expiry %lld, not its clock + %d", a1, a3, a4, e, LEASE_TTL);
          }
          l->nExt++;
          l->lastExp = e;
        }
      }else if( strcmp(zOp, "LA")==0 ){
        Lease *l;
        if( sscanf(zLine, "LA %lld %lld %lld %lld", &a1, &a2, &a3, &a4)!=4 ) continue;
        l = leaseOf(a1);
        if( a2==1 ){ l->bReleased1 = 1; l->relTa = a4; }
      }else if( strcmp(zOp, "CA")==0 ){
        if( sscanf(zLine, "CA %63s %63s", zA, zB)!=2 ) continue;
        if( strcmp(zB, "NULL")==0 ){ S.consumesDenied++; continue; }
        S.consumes++;
        sqlite3_bind_int64(pLed, 1, atoll(zB));
        if( sqlite3_step(pLed)!=SQLITE_ROW || sqlite3_column_int64(pLed, 0)!=1 ){
          violation(&S.violLost, "acknowledged consume %s (ledger %s) is not in the ledger",
                    zA, zB);
        }
        sqlite3_reset(pLed);
      }else if( strcmp(zOp, "UA")==0 ){
        if( sscanf(zLine, "UA %63s %63s", zA, zB)!=2 ) continue;
        if( strcmp(zB, "NULL")==0 ){ S.holdsDenied++; continue; }
        S.holds++;
        sqlite3_bind_int64(pHold, 1, atoll(zB));
        if( sqlite3_step(pHold)!=SQLITE_ROW || sqlite3_column_int64(pHold, 0)!=1 ){
          violation(&S.violLost, "acknowledged bucket hold %s is not in quota_holds", zB);
        }
        sqlite3_reset(pHold);
      }
    }
    fclose(f);
  }
  sqlite3_finalize(pLed);
  sqlite3_finalize(pHold);
}

/* Each lease's final expiry and end, against its log. */
static void checkLeaseEnds(sqlite3 *db){
  int i;
  for(i=0; i<nLease; i++){
    Lease *l = &aLease[i];
    i64 exp = holdInt(db, "SELECT expires FROM quota_holds WHERE id=?1", l->h);
    i64 state = holdInt(db, "SELECT state FROM quota_holds WHERE id=?1", l->h);
    i64 ended = holdInt(db, "SELECT ended FROM quota_holds WHERE id=?1", l->h);
    i64 created = holdInt(db, "SELECT CAST(strftime('%s', quota_hold(?1) ->> '$.created')"
                              " AS INTEGER)", l->h);
    i64 want = l->nExt ? l->lastExp : created + LEASE_TTL;
    if( exp<0 ) continue;                /* reported as lost already */
    /* the last heartbeat acknowledged, or one in flight when killed */
    if( exp!=want && !(l->bInFlight && exp>=l->inFlightTb/1000 + LEASE_TTL) ){
      violation(&S.violFinalExp, "hold %lld: expires %lld, its last heartbeat says %lld%s",
                l->h, exp, want, l->bInFlight ? " (one in flight)" : "");
    }
    if( l->bReleased1 && (state!=2 || ended>=exp) ){
      violation(&S.violReleased, "hold %lld: released with 1 but state %lld ended %lld"
                " expires %lld", l->h, state, ended, exp);
    }
  }
}

/* At no second more than SLOTS_CAP leases live. */
typedef struct Ev { i64 t; i64 d; } Ev;
static int evCmp(const void *a, const void *b){
  const Ev *x = a, *y = b;
  if( x->t!=y->t ) return x->t<y->t ? -1 : 1;
  return x->d<y->d ? -1 : x->d>y->d;   /* ends before starts at one second */
}
static void checkConcurrency(sqlite3 *db){
  sqlite3_stmt *p = prepOk(db,
      "SELECT CAST(strftime('%s', quota_hold(h.id) ->> '$.created') AS INTEGER),"
      " CASE WHEN h.state IN (1, 2) THEN h.ended ELSE h.expires END"
      " FROM quota_holds AS h JOIN quota_keys AS k ON k.id=h.key_id WHERE k.key='slots'");
  Ev *a = 0;
  int n = 0, nAlloc = 0, i;
  i64 live = 0, maxLive = 0;
  while( sqlite3_step(p)==SQLITE_ROW ){
    if( n+2>nAlloc ){
      nAlloc = nAlloc ? 2*nAlloc : 256;
      a = realloc(a, sizeof(Ev)*(size_t)nAlloc);
      if( a==0 ) fatal("out of memory");
    }
    a[n].t = sqlite3_column_int64(p, 0); a[n++].d = 1;
    a[n].t = sqlite3_column_int64(p, 1); a[n++].d = -1;
  }
  sqlite3_finalize(p);
  qsort(a, (size_t)n, sizeof(Ev), evCmp);
  for(i=0; i<n; i++){
    live += a[i].d;
    if( live>maxLive ) maxLive = live;
    if( live>SLOTS_CAP && (i+1==n || a[i+1].t!=a[i].t) ){
      violation(&S.violLeaseConc, "%lld leases live at second %lld", live, a[i].t);
    }
  }
  free(a);
}

/*
** The bucket: over every interval [s, e] of whole seconds, what it granted
** (consumes, holds) minus what came back (releases, settles below a hold)
** is at most BUCKET_CAP + BUCKET_N * (e - s).
*/
static void checkBucket(sqlite3 *db){
  sqlite3_stmt *p = prepOk(db,
      "WITH b(id) AS (SELECT id FROM quota_keys WHERE key='bucket'),"
      " ev(t, d) AS ("
      "  SELECT at, amount FROM quota_ledger WHERE key='bucket' AND hold_id IS NULL"
      "  UNION ALL SELECT CAST(strftime('%s', quota_hold(h.id) ->> '$.created') AS INTEGER),"
      "   h.amount FROM quota_holds AS h, b WHERE h.key_id=b.id"
      "  UNION ALL SELECT h.ended, -h.amount FROM quota_holds AS h, b"
      "   WHERE h.key_id=b.id AND h.state=2"
      "  UNION ALL SELECT h.ended, h.charged - h.amount FROM quota_holds AS h, b"
      "   WHERE h.key_id=b.id AND h.state=1 AND h.charged<h.amount)"
      " SELECT t, sum(d) FROM ev GROUP BY t ORDER BY t");
  i64 *aT = 0, *aD = 0;
  int n = 0, nAlloc = 0, i, j;
  while( sqlite3_step(p)==SQLITE_ROW ){
    if( n==nAlloc ){
      nAlloc = nAlloc ? 2*nAlloc : 256;
      aT = realloc(aT, sizeof(i64)*(size_t)nAlloc);
      aD = realloc(aD, sizeof(i64)*(size_t)nAlloc);
      if( aT==0 || aD==0 ) fatal("out of memory");
    }
    aT[n] = sqlite3_column_int64(p, 0);
    aD[n++] = sqlite3_column_int64(p, 1);
  }
  sqlite3_finalize(p);
  for(i=0; i<n; i++){
    i64 sum = 0;
    for(j=i; j<n; j++){
      sum += aD[j];
      if( sum > BUCKET_CAP + BUCKET_N*(aT[j]-aT[i]) ){
        violation(&S.violBucket, "the bucket gave %lld net over [%lld, %lld], more than"
                  " %d + %d x %lld", sum, aT[i], aT[j], BUCKET_CAP, BUCKET_N, aT[j]-aT[i]);
        break;
      }
    }
  }
  free(aT);
  free(aD);
}

static int finalCheck(int *pnKill){
  sqlite3 *db = openDb();
  char zObs[1100];
  FILE *f;
  i64 nSnap = -1, nObsBad = 0, nObsErr = 0, v;
  char *zIc = 0;
  int bIntegrity = 1;
  sqlite3_stmt *p;
  p = prepOk(db, "PRAGMA integrity_check");
  if( sqlite3_step(p)!=SQLITE_ROW || strcmp((const char*)sqlite3_column_text(p, 0), "ok")!=0 ){
    bIntegrity = 0;
  }
  sqlite3_finalize(p);
  p = prepOk(db, "SELECT quota_integrity()");
  if( sqlite3_step(p)==SQLITE_ROW ){
    zIc = sqlite3_mprintf("%s", sqlite3_column_text(p, 0));
  }
  sqlite3_finalize(p);
  if( zIc==0 || strcmp(zIc, "ok")!=0 ) bIntegrity = 0;
  checkLogs(db);
  checkLeaseEnds(db);
  checkConcurrency(db);
  checkBucket(db);
  /* no request id charged twice */
  v = oneInt(db, "SELECT count(*) FROM (SELECT request_id FROM quota_ledger WHERE"
                 " request_id IS NOT NULL GROUP BY key, request_id HAVING count(*)>1)");
  if( v!=0 ) violation(&S.violDup, "%lld request ids charged twice", v);
  /* acct's used is the bucket's ledger of the current month */
  v = oneInt(db, "SELECT (SELECT used FROM quota WHERE key='acct') - (SELECT"
                 " coalesce(sum(amount), 0) FROM quota_ledger WHERE key='bucket' AND at>="
                 " CAST(strftime('%s', (SELECT period_start FROM quota WHERE key='acct'))"
                 " AS INTEGER))");
  if( v!=0 ) violation(&S.violAcct, "acct's used differs from the bucket's ledger by %lld", v);
  pathFor(zObs, sizeof(zObs), ".obs");
  f = fopen(zObs, "r");
  if( f ){
    if( fscanf(f, "%lld %lld %lld", &nSnap, &nObsBad, &nObsErr)!=3 ) nSnap = -1;
    fclose(f);
  }
  if( nObsBad ) violation(&S.violObserver, "the observer saw slots' reserved above its"
                          " cap %lld times", nObsBad);
  printf("admission_stress: calls=%lld acknowledged=%lld kills=%d errors=%lld snapshots=%lld"
         " observer_errors=%lld\n", S.calls, S.acks, *pnKill, S.errors, nSnap, nObsErr);
  printf("admission_stress: leases=%lld leases_denied=%lld heartbeats=%lld"
         " heartbeats_refused=%lld consumes=%lld consumes_denied=%lld bucket_holds=%lld"
         " bucket_holds_denied=%lld\n", S.leases, S.leasesDenied, S.heartbeats,
         S.heartbeatsNull, S.consumes, S.consumesDenied, S.holds, S.holdsDenied);
  printf("admission_stress: lease_concurrency_violations=%lld revived=%lld"
         " expiry_violations=%lld refused_early=%lld final_expiry_violations=%lld"
         " release_violations=%lld bucket_violations=%lld lost_acks=%lld duplicates=%lld"
         " acct_violations=%lld observer_violations=%lld integrity=%s\n",
         S.violLeaseConc, S.violRevived, S.violExpiry, S.violNullEarly, S.violFinalExp,
         S.violReleased, S.violBucket, S.violLost, S.violDup, S.violAcct, S.violObserver,
         bIntegrity ? "ok" : (zIc ? zIc : "failed"));
  sqlite3_free(zIc);
  sqlite3_close(db);
  return bIntegrity && S.errors==0 && nObsErr==0
      && S.violLeaseConc+S.violRevived+S.violExpiry+S.violNullEarly+S.violFinalExp
       + S.violReleased+S.violBucket+S.violLost+S.violDup+S.violAcct+S.violObserver==0;
}

/* ------------------------------------------------------------ the run */

static pid_t spawn(int what, int slot, int inc){
  pid_t pid = fork();
  if( pid<0 ) fatal("fork: %s", strerror(errno));
  if( pid==0 ){
    if( what ) workerMain(slot, inc); else observerMain();
  }
  return pid;
}

static void usage(void){
  fprintf(stderr, "usage: build/admission_stress DBFILE [--procs N] [--seconds S]"
          " [--seed X] [--kill-ms M] [--journal wal|delete] [--quiet]\n");
  exit(2);
}

int main(int argc, char **argv){
  pid_t aPid[MAX_PROCS], obs;
  int aInc[MAX_PROCS], i, nKill = 0, ok;
  i64 tEnd;
  Rng rng;
  sqlite3 *db;
  char z[1100];
  if( argc<2 ) usage();
  cfg.zDb = argv[1];
  cfg.nProc = 4; cfg.nSec = 8; cfg.killMs = 500; cfg.bWal = 1;
  cfg.seed = (sqlite3_uint64)time(0);
  for(i=2; i<argc; i++){
    if( strcmp(argv[i], "--procs")==0 && i+1<argc ) cfg.nProc = atoi(argv[++i]);
    else if( strcmp(argv[i], "--seconds")==0 && i+1<argc ) cfg.nSec = atoi(argv[++i]);
    else if( strcmp(argv[i], "--seed")==0 && i+1<argc ) cfg.seed = strtoull(argv[++i], 0, 10);
    else if( strcmp(argv[i], "--kill-ms")==0 && i+1<argc ) cfg.killMs = atoi(argv[++i]);
    else if( strcmp(argv[i], "--journal")==0 && i+1<argc ){
      i++;
      if( strcmp(argv[i], "wal")==0 ) cfg.bWal = 1;
      else if( strcmp(argv[i], "delete")==0 ) cfg.bWal = 0;
      else usage();
    }
    else if( strcmp(argv[i], "--quiet")==0 ) cfg.bQuiet = 1;
    else usage();
  }
  if( cfg.nProc<1 || cfg.nProc>MAX_PROCS || cfg.nSec<1 || cfg.killMs<10 ) usage();
  printf("admission_stress: seed=%llu procs=%d seconds=%d kill_ms=%d journal=%s, SQLite %s\n",
         (unsigned long long)cfg.seed, cfg.nProc, cfg.nSec, cfg.killMs,
         cfg.bWal ? "wal" : "delete", sqlite3_libversion());
  fflush(stdout);
  sqlite3_auto_extension((void(*)(void))sqlite3_quota_init);
  removeDbFiles(cfg.zDb);
  for(i=0; i<MAX_PROCS; i++){
    snprintf(z, sizeof(z), "%s.w%d.log", cfg.zDb, i);
    unlink(z);
  }
  pathFor(z, sizeof(z), ".obs");
  unlink(z);
  db = openDb();
  execOk(db, cfg.bWal ? "PRAGMA journal_mode=WAL" : "PRAGMA journal_mode=DELETE");
  execOk(db, "CREATE VIRTUAL TABLE quota USING quota(hold_ttl=3);"
             "INSERT INTO quota(key, cap) VALUES('slots', " QUOTA_STR(SLOTS_CAP) ");"
             "INSERT INTO quota(key, cap, period) VALUES('acct', 1000000000, 'month');"
             "INSERT INTO quota(key, cap, period, parent) VALUES('bucket', "
             QUOTA_STR(BUCKET_CAP) ", 'rate " QUOTA_STR(BUCKET_N) " per second', 'acct');");
  sqlite3_close(db);
  rng.s = cfg.seed ^ 0xA5A5A5A5ULL;
  obs = spawn(0, 0, 0);
  for(i=0; i<cfg.nProc; i++){
    aInc[i] = 0;
    aPid[i] = spawn(1, i, 0);
  }
  tEnd = nowMs() + (i64)cfg.nSec*1000;
  while( nowMs()<tEnd ){
    int slot;
    sleepMs(cfg.killMs/2 + rngBelow(&rng, cfg.killMs));
    if( nowMs()>=tEnd ) break;
    slot = rngBelow(&rng, cfg.nProc);
    if( kill(aPid[slot], SIGKILL)==0 ){
      waitpid(aPid[slot], 0, 0);
      nKill++;
      aPid[slot] = spawn(1, slot, ++aInc[slot]);
    }
  }
  for(i=0; i<cfg.nProc; i++) kill(aPid[i], SIGKILL);
  for(i=0; i<cfg.nProc; i++) waitpid(aPid[i], 0, 0);
  kill(obs, SIGTERM);
  waitpid(obs, 0, 0);
  ok = finalCheck(&nKill);
  printf("admission_stress: respawns=%d\n", nKill);
  printf("result: %s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
