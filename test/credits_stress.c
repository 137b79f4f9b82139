/*
** test/credits_stress.c: credits (grants, voids, draws, rollover) under
** many processes and SIGKILL.
**
**   build/credits_stress DBFILE [--procs N] [--seconds S] [--seed X]
**                        [--kill-ms M] [--check-only]
**
** Defaults: 4 workers, 8 s, kill every 400 ms, a seed from the clock
** (printed first; --seed replays the choice of operations, not the timing).
** DBFILE (and its -wal, -shm, DBFILE.wN.log, DBFILE.obs) is deleted and
** recreated, in WAL mode. --check-only runs no workers: it checks DBFILE and
** its logs as a run left them (--procs as in that run), e.g. after editing
** a copy by hand to see a check fail.
**
** The clock: every connection pins its clock before each call to the
** system clock plus a fixed offset, chosen so that the virtual time crosses
** a month boundary (2027-01-01 00:00:00) at 10% of the run. It runs at the
** real rate, so grants with expiries of a few seconds expire during the
** run, some while holds that counted on them are live, and the monthly key
** rolls over once (a rollover grant) under load.
**
** The store (hold_ttl 10 s: the holds of a killed worker run out):
**   `org`     lifetime, cap 10^9: the parent of `plan`;
**   `plan`    month, cap 400 x procs x seconds (December charges it
**             until about a quarter is used, January runs out into its
**             grants), rollover half the cap, parent `org`;
**   `wallet`  a prepaid wallet: cap 0, lifetime.
** No key is in shadow mode (a checked reserve, below, would skip one).
**
** Each worker loops, drawing from its seed (key `wallet` 3 times in 4,
** else `plan`), every call with a request id made of its slot, incarnation
** and a counter:
**   - quota_grant(key, 2..25, NULL or 1..3 seconds, priority -1..2, rid),
**     one in five retried at once with the same id (same answer expected);
**   - quota_void of a grant it was given earlier;
**   - quota_consume(key, 1..20, rid);
**   - quota_reserve(key, 1..20, rid, 10), then after 0..2 ms (one in
**     four, when a slot is free, kept aside for 1..3 s while it goes on, past the expiry of
**     grants it counted on) quota_settle (0 to the hold + 5) or
**     quota_release;
**   - quota_record(key, 1..12, rid).
** One reserve in three is checked (request id k-..., the others r-...): in
** one BEGIN IMMEDIATE transaction, with the clock pinned once for all of
** it, the worker reads `remaining` (cap - used + credits - reserved) of the
** key and of each ancestor from the quota table, reserves, and commits; its
** acknowledgement, written after COMMIT, carries the least remaining it
** read. No other writer runs between the reads and the reserve, and they
** see the same time (grants and holds expire only as the clock moves), so
** the reserve must be granted exactly when that room >= its amount. A
** retried reserve (after a kill) is never checked: it may be a replay of
** a committed one, which returns the earlier hold whatever the room; a
** worker killed inside the transaction leaves nothing (it rolls back) and
** its successor makes the reserve again in autocommit.
**
** December cannot use up plan's cap, however fast the machine (so the
** month's turn always makes a rollover grant, and exactly one, which
** stress.test 9.5 requires): while the virtual clock is in December and
** plan's stored period is December, a worker charges plan (consume,
** reserve, record) only after reading its used (one row of quota_keys)
** below cap/4, else it charges the wallet, and it keeps no hold of plan's
** aside (settles or releases it at once). `used` only grows within a
** period, so after the last read below cap/4 December's used can grow only
** by what each worker had in hand then (the call after its read, or a
** hold it got, then settled: at most 20 + 5) and, for each worker killed
** in December, what its successor does without a read (retry the call,
** end the hold it took over: at most 2 x 25). That is less than
** cap/4 + 25 x procs + 50 x kills, and December (10% of the run) has at
** most 200 x seconds / M + 1 kills: below the cap (400 x procs x seconds)
** for any procs and seconds when M >= 50 (the default is 400). The bound
** counts calls in hand, not calls per second: a faster machine only
** reaches cap/4 sooner. January is not bounded.
**
** Before every call it appends an intent line to DBFILE.wSLOT.log, after it
** an acknowledgement line (one write(2) each). The parent kills a random
** worker with SIGKILL every ~M ms (M/2 to 3M/2) and starts a new one in its
** slot, which first retries its predecessor's last call if it was not
** acknowledged and carries a request id (grant, consume, reserve, record;
** a settle carries its hold id, as good), and takes over the holds its
** predecessors got and did not end. An observer process reads the wallet
** in one read transaction at a time: its credits in the table are the
** unused units of its live grants, its reserved the live holds'.
**
** At the end it reopens the file and checks:
**   1. every grant: amount = remaining + its draws + voided;
**   2. every ledger row draws at most its amount from each level's grants;
**      each key's used (the quota table at the final clock) is the charges
**      of its subtree minus what they drew from its grants, over the
**      current period (for `plan`: from the first charge after the month
**      turned; the ledger is replayed in id order, the order of commits);
**      the rollover grant is what December left of the cap, up to the
**      rollover;
**   3. no draw from a grant for a ledger row dated at or after its expiry;
**   4. a request id made one grant, and every acknowledgement of it gave
**      the same grant id; every acknowledged grant, consume, record,
**      reserve and settle is in the store as acknowledged; no grant,
**      ledger row, hold, settle, release or void is in the store that no
**      call made (a logged intent);
**   5. PRAGMA integrity_check and quota_integrity() say ok (faultcheck.h's
**      checkDb), with its invariants that hold under a moving clock
**      (a request id has one effect, a hold ends once, remaining is
**      cap - used + credits - reserved);
**   6. no strict call overspent: replaying the ledger, every consume took
**      from each level's allowance at most what was left of it
**      (cap - used before it), the rest from grants; at the wallet (cap 0)
**      every consume was drawn entirely from grants. Every checked reserve
**      granted had room for its hold's amount (in the store) at every
**      level (reserve_overspends), and every one denied lacked room for
**      its amount at some level (reserve_wrong_denials): the room as its
**      worker read it in the reserve's transaction. stress.test 10.* shows
**      the first fail on a store whose hold was made larger by hand; a
**      denial leaves nothing in the store to edit, so the second was shown
**      to fail by the driver logging remaining+1 (once, reverted), as the
**      first was by logging remaining-1.
**   7. the observer never saw the wallet's credits or reserved differ
**      from its grants and holds.
** It prints counts and "result: PASS" or "result: FAIL".
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
#define DRIVER_PROG "credits_stress"
#define QUOTA_STR_(x) #x
#define QUOTA_STR(x) QUOTA_STR_(x)
/* faultutil.h and faultcheck.h hold static helpers for every fault driver;
** this one uses checkDb() and azInvariant[] only. */
#if defined(__GNUC__)
# pragma GCC diagnostic push
# pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include "faultutil.h"
#include "faultcheck.h"
#if defined(__GNUC__)
# pragma GCC diagnostic pop
#endif

typedef sqlite3_int64 i64;

#define MAX_PROCS  32
#define NPARK      16             /* holds a worker keeps aside at most */
#define PLAN_CAP   (cfg.planCap)
#define PLAN_ROLL  (cfg.planCap/2)
#define ORG_CAP    1000000000
#define HOLD_TTL   10
#define MONTH_B    1798761600LL     /* 2027-01-01 00:00:00 UTC */

static struct {
  const char *zDb;
  int nProc;
  int nSec;
  sqlite3_uint64 seed;
  int killMs;
  int bCheckOnly;                   /* --check-only: check DBFILE and its logs again */
  i64 offMs;                        /* virtual clock = real clock + offMs */
  i64 planCap;                      /* 400 x procs x seconds */
} cfg;

static volatile sig_atomic_t gStop = 0;
static void onTerm(int sig){ (void)sig; gStop = 1; }

static i64 virtSec(void){ return (nowMs() + cfg.offMs)/1000; }
static void sleepMs(int ms){
  struct timespec ts;
  if( ms<=0 ) return;
  ts.tv_sec = ms/1000;
  ts.tv_nsec = (long)(ms%1000)*1000000L;
  while( nanosleep(&ts, &ts)!=0 && errno==EINTR && !gStop ){}
}


static sqlite3 *openDb(void){
  sqlite3 *db = 0;
  if( sqlite3_open_v2(cfg.zDb, &db, SQLITE_OPEN_READWRITE|SQLITE_OPEN_CREATE, 0)!=SQLITE_OK ){
    fatalDb("open", db);
  }
  if( sqlite3_busy_timeout(db, 10000)!=SQLITE_OK ) fatalDb("busy_timeout", db);
  execOk(db, "PRAGMA synchronous=NORMAL");
  return db;
}

/* Pin db's clock to virtual second t; pinClock(): to the virtual time now. */
static int pinClockAt(sqlite3 *db, i64 t){
  sqlite3_stmt *p = 0;
  int rc = sqlite3_prepare_v2(db, "SELECT quota_clock(datetime(?1, 'unixepoch'))", -1, &p, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_bind_int64(p, 1, t);
  if( rc==SQLITE_OK ){
    rc = sqlite3_step(p);
    if( rc==SQLITE_ROW ) rc = SQLITE_OK;
  }
  sqlite3_finalize(p);
  return rc;
}
static int pinClock(sqlite3 *db){ return pinClockAt(db, virtSec()); }

/*
** One call: "SELECT <call>" with bindings from a "i:N"/"t:X"/"n" list
** (NULL-ended), at the clock as pinned. *pNull when the result is NULL,
** *pVal the integer. Returns the result code, the message in zErr.
*/
static int callIntPinned(sqlite3 *db, const char *zSql, const char **azArg,
                         i64 *pVal, int *pNull, char *zErr, size_t nErr){
  sqlite3_stmt *p = 0;
  int rc, i;
  *pNull = 1;
  *pVal = 0;
  zErr[0] = 0;
  rc = sqlite3_prepare_v2(db, zSql, -1, &p, 0);
  for(i=0; rc==SQLITE_OK && azArg && azArg[i]; i++){
    if( azArg[i][0]=='i' ) rc = sqlite3_bind_int64(p, i+1, atoll(azArg[i]+2));
    else if( azArg[i][0]=='t' ) rc = sqlite3_bind_text(p, i+1, azArg[i]+2, -1, SQLITE_TRANSIENT);
    else rc = sqlite3_bind_null(p, i+1);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_step(p);
    if( rc==SQLITE_ROW ){
      *pNull = sqlite3_column_type(p, 0)==SQLITE_NULL;
      *pVal = sqlite3_column_int64(p, 0);
      rc = SQLITE_OK;
    }else if( rc==SQLITE_DONE ){
      rc = SQLITE_ERROR;
    }
  }
  if( rc!=SQLITE_OK ) snprintf(zErr, nErr, "%s", sqlite3_errmsg(db));
  sqlite3_finalize(p);
  return rc;
}

/* callIntPinned after pinning the clock to the virtual time now. */
static int callInt(sqlite3 *db, const char *zSql, const char **azArg,
                   i64 *pVal, int *pNull, char *zErr, size_t nErr){
  int rc = pinClock(db);
  if( rc!=SQLITE_OK ){
    *pNull = 1;
    *pVal = 0;
    snprintf(zErr, nErr, "%s", sqlite3_errmsg(db));
    return rc;
  }
  return callIntPinned(db, zSql, azArg, pVal, pNull, zErr, nErr);
}

/* ------------------------------------------------------------ workers */

typedef struct Worker {
  int slot, inc, fd;
  sqlite3 *db;
  Rng rng;
  int nCall;
  i64 aGrant[16];                  /* grants it was given, to void */
  int nGrant;
  i64 aPark[NPARK][3];                 /* holds kept while it works on: id, amount, end */
  sqlite3_stmt *pRoom;             /* a key's remaining, enforcement and parent */
  sqlite3_stmt *pPlanDec;          /* plan's used while its period is December */
} Worker;

static void endHold(Worker*, i64, i64);

static void logErr(Worker *w, const char *zWhat, int rc, const char *zMsg){
  logLine(w->fd, "ER %s %d %s", zWhat, rc, zMsg);
}

static const char *pickKey(Worker *w){
  return rngBelow(&w->rng, 4)==0 ? "plan" : "wallet";
}

/*
** The key of a charge (consume, reserve, record): pickKey's, except that
** while the virtual clock is in December and plan's stored period is still
** December, plan is charged only while its used is below a quarter of its
** cap (else the wallet is): December cannot use up plan's cap however fast
** the machine is, so the month's turn always makes a rollover grant (the
** header says why). The read is one row of quota_keys by its unique key.
*/
static const char *pickChargeKey(Worker *w){
  const char *zKey = pickKey(w);
  int rc;
  if( zKey[0]!='p' || virtSec()>=MONTH_B ) return zKey;
  rc = sqlite3_bind_int64(w->pPlanDec, 1, MONTH_B);
  if( rc==SQLITE_OK ) rc = sqlite3_step(w->pPlanDec);
  if( rc==SQLITE_ROW ){
    if( sqlite3_column_int64(w->pPlanDec, 0)>=PLAN_CAP/4 ) zKey = "wallet";
    rc = SQLITE_DONE;
  }
  if( rc!=SQLITE_DONE ){
    logErr(w, "plan-read", rc, sqlite3_errmsg(w->db));
    zKey = "wallet";
  }
  if( sqlite3_reset(w->pPlanDec)!=SQLITE_OK && rc==SQLITE_DONE ){
    logErr(w, "plan-read", sqlite3_errcode(w->db), sqlite3_errmsg(w->db));
    zKey = "wallet";
  }
  return zKey;
}

static void ridOf(Worker *w, char c, char *z, size_t n){
  snprintf(z, n, "%c-%d-%d-%d", c, w->slot, w->inc, w->nCall++);
}

static void doGrant(Worker *w, const char *zRid, const char *zKey, i64 amt, i64 exp,
                    i64 prio){
  char zErr[300], zK[80], zA[40], zE[40], zP[40], zR[80];
  const char *az[6];
  i64 v;
  int bNull, rc;
  snprintf(zK, sizeof(zK), "t:%s", zKey);
  snprintf(zA, sizeof(zA), "i:%lld", amt);
  if( exp>0 ) snprintf(zE, sizeof(zE), "i:%lld", exp); else snprintf(zE, sizeof(zE), "n");
  snprintf(zP, sizeof(zP), "i:%lld", prio);
  snprintf(zR, sizeof(zR), "t:%s", zRid);
  az[0] = zK; az[1] = zA; az[2] = zE; az[3] = zP; az[4] = zR; az[5] = 0;
  logLine(w->fd, "GI %s %s %lld %lld %lld", zRid, zKey, amt, exp, prio);
  rc = callInt(w->db, "SELECT quota_grant(?1, ?2, ?3, ?4, ?5)", az, &v, &bNull,
               zErr, sizeof(zErr));
  if( rc ){ logErr(w, "grant", rc, zErr); return; }
  logLine(w->fd, "GA %s %lld", zRid, bNull ? -1 : v);
  if( !bNull ) w->aGrant[(w->nGrant++)%16] = v;
}

static void grantJob(Worker *w){
  char zRid[64];
  const char *zKey = pickKey(w);
  i64 amt = 2 + rngBelow(&w->rng, 24);
  i64 exp = rngBelow(&w->rng, 3)==0 ? 0 : 1 + rngBelow(&w->rng, 3);
  i64 prio = rngBelow(&w->rng, 4) - 1;
  ridOf(w, 'g', zRid, sizeof(zRid));
  doGrant(w, zRid, zKey, amt, exp, prio);
  if( rngBelow(&w->rng, 5)==0 ) doGrant(w, zRid, zKey, amt, exp, prio);
}

static void voidJob(Worker *w){
  char zErr[300], zG[40];
  const char *az[2];
  i64 g, v;
  int bNull, rc, n = w->nGrant<16 ? w->nGrant : 16;
  if( n==0 ) return;
  g = w->aGrant[rngBelow(&w->rng, n)];
  snprintf(zG, sizeof(zG), "i:%lld", g);
  az[0] = zG; az[1] = 0;
  logLine(w->fd, "VI %lld", g);
  rc = callInt(w->db, "SELECT quota_void(?1)", az, &v, &bNull, zErr, sizeof(zErr));
  if( rc ){ logErr(w, "void", rc, zErr); return; }
  logLine(w->fd, "VA %lld %lld", g, v);
}

/* A consume ('C') or a record ('D'). */
static void doCharge(Worker *w, char op, const char *zRid, const char *zKey, i64 amt){
  char zErr[300], zK[80], zA[40], zR[80];
  const char *az[4];
  i64 v;
  int bNull, rc;
  snprintf(zK, sizeof(zK), "t:%s", zKey);
  snprintf(zA, sizeof(zA), "i:%lld", amt);
  snprintf(zR, sizeof(zR), "t:%s", zRid);
  az[0] = zK; az[1] = zA; az[2] = zR; az[3] = 0;
  logLine(w->fd, "%cI %s %s %lld", op, zRid, zKey, amt);
  rc = callInt(w->db, op=='C' ? "SELECT quota_consume(?1, ?2, ?3)"
                              : "SELECT quota_record(?1, ?2, ?3)",
               az, &v, &bNull, zErr, sizeof(zErr));
  if( rc ){ logErr(w, op=='C' ? "consume" : "record", rc, zErr); return; }
  if( bNull ) logLine(w->fd, "%cA %s NULL", op, zRid);
  else logLine(w->fd, "%cA %s %lld", op, zRid, v);
}

static void settleOrRelease(Worker *w, i64 h, i64 amt, int bSettle){
  char zErr[300], zH[40], zA[40];
  const char *az[3];
  i64 v;
  int bNull, rc;
  snprintf(zH, sizeof(zH), "i:%lld", h);
  snprintf(zA, sizeof(zA), "i:%lld", amt);
  az[0] = zH; az[1] = zA; az[2] = 0;
  if( bSettle ){
    logLine(w->fd, "SI %lld %lld", h, amt);
    rc = callInt(w->db, "SELECT quota_settle(?1, ?2)", az, &v, &bNull, zErr, sizeof(zErr));
    if( rc ){ logErr(w, "settle", rc, zErr); return; }
    if( bNull ) logLine(w->fd, "SA %lld NULL", h);
    else logLine(w->fd, "SA %lld %lld", h, v);
  }else{
    az[1] = 0;
    logLine(w->fd, "XI %lld", h);
    rc = callInt(w->db, "SELECT quota_release(?1)", az, &v, &bNull, zErr, sizeof(zErr));
    if( rc ){ logErr(w, "release", rc, zErr); return; }
    logLine(w->fd, "XA %lld %lld", h, v);
  }
}

#define RESERVE_SQL "SELECT quota_reserve(?1, ?2, ?3, " QUOTA_STR(HOLD_TTL) ")"

/*
** A checked reserve: in one BEGIN IMMEDIATE transaction with the clock
** pinned once, read `remaining` of zKey and of each of its ancestors from
** the quota table (*pRoom: the least, of the levels that enforce; -1 when
** none has a cap; *pLvl: the levels read), then reserve, then COMMIT. Nobody
** else writes between the reads and the reserve, and they see the same
** time, so the reserve must be granted exactly when *pRoom >= its amount.
** On an error the transaction is rolled back (the caller logs it).
*/
static int reserveChecked(Worker *w, const char *zKey, const char **az, i64 *pH,
                          int *pNull, i64 *pRoom, int *pLvl, char *zErr, size_t nErr){
  sqlite3 *db = w->db;
  char zLvl[80];
  int rc, bLvl = 1;
  *pH = 0;
  *pNull = 1;
  *pRoom = -1;
  *pLvl = 0;
  zErr[0] = 0;
  snprintf(zLvl, sizeof(zLvl), "%s", zKey);
  rc = sqlite3_exec(db, "BEGIN IMMEDIATE", 0, 0, 0);
  if( rc==SQLITE_OK ) rc = pinClockAt(db, virtSec());
  while( rc==SQLITE_OK && bLvl && *pLvl<8 ){
    rc = sqlite3_bind_text(w->pRoom, 1, zLvl, -1, SQLITE_TRANSIENT);
    if( rc==SQLITE_OK ) rc = sqlite3_step(w->pRoom);
    if( rc==SQLITE_ROW ){
      const char *zEnf = (const char*)sqlite3_column_text(w->pRoom, 1);
      const char *zUp = (const char*)sqlite3_column_text(w->pRoom, 2);
      (*pLvl)++;
      /* a level in shadow mode never denies; one without a cap has no
      ** remaining (no key of this store is either) */
      if( sqlite3_column_type(w->pRoom, 0)!=SQLITE_NULL
       && (zEnf==0 || strcmp(zEnf, "shadow")!=0) ){
        i64 r = sqlite3_column_int64(w->pRoom, 0);
        if( *pRoom<0 || r<*pRoom ) *pRoom = r;
      }
      bLvl = zUp!=0;
      if( zUp ) snprintf(zLvl, sizeof(zLvl), "%s", zUp);
      rc = SQLITE_OK;
    }else if( rc==SQLITE_DONE ){
      rc = SQLITE_ERROR;                  /* no such key: the store is not ours */
    }
    if( sqlite3_reset(w->pRoom)!=SQLITE_OK && rc==SQLITE_OK ) rc = sqlite3_errcode(db);
  }
  if( rc==SQLITE_OK ) rc = callIntPinned(db, RESERVE_SQL, az, pH, pNull, zErr, nErr);
  else snprintf(zErr, nErr, "%s", sqlite3_errmsg(db));
  if( rc==SQLITE_OK ){
    rc = sqlite3_exec(db, "COMMIT", 0, 0, 0);
    if( rc!=SQLITE_OK ) snprintf(zErr, nErr, "commit: %s", sqlite3_errmsg(db));
  }
  if( rc!=SQLITE_OK && !sqlite3_get_autocommit(db)
   && sqlite3_exec(db, "ROLLBACK", 0, 0, 0)!=SQLITE_OK ){
    logErr(w, "rollback", sqlite3_errcode(db), sqlite3_errmsg(db));
  }
  return rc;
}

/*
** Reserve; then (after a while) settle or release what it got. bCheck: a
** checked reserve (reserveChecked), its acknowledgement "RA RID HOLD|NULL
** ROOM LEVELS" with the room it read before it; else in autocommit.
*/
static void doReserve(Worker *w, const char *zRid, const char *zKey, i64 amt, int bCheck){
  char zErr[300], zK[80], zA[40], zR[80];
  const char *az[4];
  i64 h, room = -1;
  int bNull, rc, nLvl = 0;
  snprintf(zK, sizeof(zK), "t:%s", zKey);
  snprintf(zA, sizeof(zA), "i:%lld", amt);
  snprintf(zR, sizeof(zR), "t:%s", zRid);
  az[0] = zK; az[1] = zA; az[2] = zR; az[3] = 0;
  logLine(w->fd, "RI %s %s %lld", zRid, zKey, amt);
  if( bCheck ){
    rc = reserveChecked(w, zKey, az, &h, &bNull, &room, &nLvl, zErr, sizeof(zErr));
  }else{
    rc = callInt(w->db, RESERVE_SQL, az, &h, &bNull, zErr, sizeof(zErr));
  }
  if( rc ){ logErr(w, "reserve", rc, zErr); return; }
  if( bCheck ){
    /* only after COMMIT: an acknowledged reserve is in the store */
    if( bNull ){ logLine(w->fd, "RA %s NULL %lld %d", zRid, room, nLvl); return; }
    logLine(w->fd, "RA %s %lld %lld %d", zRid, h, room, nLvl);
  }else{
    if( bNull ){ logLine(w->fd, "RA %s NULL", zRid); return; }
    logLine(w->fd, "RA %s %lld", zRid, h);
  }
  /* most work is short; one hold in four or so is kept aside for 1 to 3
  ** s (the worker goes on meanwhile), past the expiry of grants it
  ** counted on; not a hold of plan's in December (the header says why) */
  if( rngBelow(&w->rng, 4)==0 ){
    int i = rngBelow(&w->rng, NPARK);
    if( w->aPark[i][0]==0 && (zKey[0]!='p' || virtSec()>=MONTH_B) ){
      w->aPark[i][0] = h;
      w->aPark[i][1] = amt;
      w->aPark[i][2] = nowMs() + 1000 + rngBelow(&w->rng, 2000);
      return;
    }
  }
  sleepMs(rngBelow(&w->rng, 3));
  endHold(w, h, amt);
}

/* Settle (7 in 10, 0 to the hold + 5 units) or release hold h of amt. */
static void endHold(Worker *w, i64 h, i64 amt){
  if( rngBelow(&w->rng, 10)<7 ){
    settleOrRelease(w, h, rngBelow(&w->rng, (int)amt+6), 1);
  }else{
    settleOrRelease(w, h, 0, 0);
  }
}

/*
** A new incarnation: if its slot's last line is an unacknowledged call
** that carries a request id (or a hold id: a settle), make it again. The
** holds its predecessors got and did not end (kept aside, or killed
** before the settle), the newest NPARK, it takes over: it ends them soon.
*/
static int retryLast(Worker *w){
  char zLog[1100], zLast[600], zLine[600];
  char zOp[8], zRid[64], zKey[64];
  long long a1 = 0, a2 = 0, a3 = 0, lastAmt = 0;
  i64 aOpen[64][2];                /* open holds: id, amount (a ring) */
  int nOpen = 0, i, j;
  FILE *f;
  snprintf(zLog, sizeof(zLog), "%s.w%d.log", cfg.zDb, w->slot);
  f = fopen(zLog, "r");
  if( f==0 ) return 0;
  zLast[0] = 0;
  while( fgets(zLine, sizeof(zLine), f) ){
    memcpy(zLast, zLine, sizeof(zLine));
    if( sscanf(zLine, "RI %63s %63s %lld", zRid, zKey, &a1)==3 ){
      lastAmt = a1;
    }else if( sscanf(zLine, "RA %63s %lld", zRid, &a1)==2 ){
      aOpen[nOpen%64][0] = a1;
      aOpen[nOpen%64][1] = lastAmt;
      nOpen++;
    }else if( sscanf(zLine, "SI %lld", &a1)==1 || sscanf(zLine, "XI %lld", &a1)==1 ){
      for(i=0; i<64 && i<nOpen; i++) if( aOpen[i][0]==a1 ) aOpen[i][0] = 0;
    }
  }
  fclose(f);
  for(i=nOpen-1, j=0; i>=0 && i>=nOpen-64 && j<NPARK; i--){
    if( aOpen[i%64][0]==0 ) continue;
    w->aPark[j][0] = aOpen[i%64][0];
    w->aPark[j][1] = aOpen[i%64][1];
    w->aPark[j][2] = nowMs() + rngBelow(&w->rng, 1000);
    j++;
  }
  if( sscanf(zLast, "%7s", zOp)!=1 || zOp[1]!='I' ) return 0;
  switch( zOp[0] ){
    case 'G':
      if( sscanf(zLast, "GI %63s %63s %lld %lld %lld", zRid, zKey, &a1, &a2, &a3)!=5 ) return 0;
      logLine(w->fd, "RT %s", zRid);
      doGrant(w, zRid, zKey, a1, a2, a3);
      return 1;
    case 'C': case 'D':
      if( sscanf(zLast+3, "%63s %63s %lld", zRid, zKey, &a1)!=3 ) return 0;
      logLine(w->fd, "RT %s", zRid);
      doCharge(w, zOp[0], zRid, zKey, a1);
      return 1;
    case 'R':
      if( sscanf(zLast, "RI %63s %63s %lld", zRid, zKey, &a1)!=3 ) return 0;
      logLine(w->fd, "RT %s", zRid);
      doReserve(w, zRid, zKey, a1, 0);   /* perhaps a replay: not checked */
      return 1;
    case 'S':
      if( sscanf(zLast, "SI %lld %lld", &a1, &a2)!=2 ) return 0;
      logLine(w->fd, "RT %lld", a1);
      settleOrRelease(w, a1, a2, 1);
      return 1;
  }
  return 0;
}

static void workerMain(int slot, int inc){
  Worker w;
  char zLog[1100], zRid[64];
  memset(&w, 0, sizeof(w));
  w.slot = slot;
  w.inc = inc;
  w.rng.s = cfg.seed*1000003ULL + (sqlite3_uint64)slot*7919ULL + (sqlite3_uint64)inc*104729ULL;
  snprintf(zLog, sizeof(zLog), "%s.w%d.log", cfg.zDb, slot);
  w.fd = open(zLog, O_WRONLY|O_CREAT|O_APPEND, 0644);
  if( w.fd<0 ) _exit(2);
  signal(SIGTERM, onTerm);
  w.db = openDb();
  w.pRoom = prepOk(w.db, "SELECT remaining, enforce, parent FROM quota WHERE key=?1");
  w.pPlanDec = prepOk(w.db, "SELECT used FROM quota_keys"
                            " WHERE key='plan' AND pstart<?1");
  retryLast(&w);
  logLine(w.fd, "START %d %d", slot, inc);
  while( !gStop ){
    int r = rngBelow(&w.rng, 100);
    int i;
    for(i=0; i<NPARK; i++){
      if( w.aPark[i][0] && nowMs()>=w.aPark[i][2] ){
        endHold(&w, w.aPark[i][0], w.aPark[i][1]);
        w.aPark[i][0] = 0;
      }
    }
    if( r<20 ) grantJob(&w);
    else if( r<27 ) voidJob(&w);
    else if( r<62 ){
      ridOf(&w, 'c', zRid, sizeof(zRid));
      doCharge(&w, 'C', zRid, pickChargeKey(&w), 1 + rngBelow(&w.rng, 20));
    }else if( r<92 ){
      /* one in three checked against the room read before it, in one
      ** transaction; the rest in autocommit */
      int bCheck = rngBelow(&w.rng, 3)==0;
      ridOf(&w, bCheck ? 'k' : 'r', zRid, sizeof(zRid));
      doReserve(&w, zRid, pickChargeKey(&w), 1 + rngBelow(&w.rng, 20), bCheck);
    }else{
      ridOf(&w, 'd', zRid, sizeof(zRid));
      doCharge(&w, 'D', zRid, pickChargeKey(&w), 1 + rngBelow(&w.rng, 12));
    }
  }
  if( sqlite3_finalize(w.pRoom)!=SQLITE_OK ) _exit(4);
  if( sqlite3_finalize(w.pPlanDec)!=SQLITE_OK ) _exit(4);
  if( sqlite3_close(w.db)!=SQLITE_OK ) _exit(4);     /* a statement left open */
  close(w.fd);
  _exit(0);
}

/* ------------------------------------------------------------ observer */

/*
** A reader beside the workers: in one read transaction at a time, with its
** clock pinned, the wallet's credits in the table are the unused units of
** its live grants, and its reserved the live holds'. The counts go to
** DBFILE.obs when it is stopped (SIGTERM).
*/
static void observerMain(void){
  sqlite3 *db = openDb();
  sqlite3_stmt *p = prepOk(db,
      "SELECT q.credits - (SELECT coalesce(sum(remaining), 0) FROM quota_grants"
      "   WHERE key='wallet' AND voided IS NULL AND (expires IS NULL OR expires>?1)),"
      " q.reserved - (SELECT coalesce(sum(h.amount), 0) FROM quota_holds h"
      "   JOIN quota_keys k ON k.id=h.key_id WHERE k.key='wallet' AND h.state=0"
      "   AND h.expires>?1)"
      " FROM quota q WHERE q.key='wallet'");
  i64 nSnap = 0, nCredits = 0, nReserved = 0, nErr = 0;
  char zObs[1100];
  FILE *f;
  signal(SIGTERM, onTerm);
  while( !gStop ){
    i64 t = virtSec();
    int rc = sqlite3_exec(db, "BEGIN", 0, 0, 0);
    if( rc==SQLITE_OK ) rc = pinClockAt(db, t);
    if( rc==SQLITE_OK ) rc = sqlite3_bind_int64(p, 1, t);
    if( rc==SQLITE_OK ) rc = sqlite3_step(p);
    if( rc==SQLITE_ROW ){
      nSnap++;
      if( sqlite3_column_int64(p, 0)!=0 ) nCredits++;
      if( sqlite3_column_int64(p, 1)!=0 ) nReserved++;
    }else if( (rc&0xff)!=SQLITE_BUSY ){
      nErr++;
    }
    sqlite3_reset(p);
    if( sqlite3_exec(db, "COMMIT", 0, 0, 0)!=SQLITE_OK ) nErr++;
    sleepMs(5);
  }
  if( sqlite3_finalize(p)!=SQLITE_OK ) nErr++;
  if( sqlite3_close(db)!=SQLITE_OK ) nErr++;
  snprintf(zObs, sizeof(zObs), "%s.obs", cfg.zDb);
  f = fopen(zObs, "w");
  if( f ){ fprintf(f, "%lld %lld %lld %lld\n", nSnap, nCredits, nReserved, nErr); fclose(f); }
  _exit(0);
}

/* ------------------------------------------------------------ checks */

static struct {
  i64 calls, acks, retries, errors;
  i64 grants, grantRetriesSame, voids, voidedUnits, consumes, consumesDenied, reserves,
      reservesDenied, settles, settlesOver, settlesPastExpiry, releases, records, rollovers,
      expiredGrants, lateTurns, snapshots, obsErrors,
      draws, lateDraws, reservesChecked, usedDec;
  i64 violGrantSum, violDrawOver, violUsed, violRollover, violExpiry, violRidDup,
      violAckMismatch, violLost, violPhantom, violIntegrity, violOverspend, violObserver,
      violResOver, violResDenied;
} S;

static int nShown = 0;
static void violation(i64 *pCount, i64 n, const char *zFmt, ...){
  va_list ap;
  if( n<=0 ) return;
  *pCount += n;
  if( nShown++>=30 ) return;
  fprintf(stderr, "credits_stress: VIOLATION: ");
  va_start(ap, zFmt);
  vfprintf(stderr, zFmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
}

/* Bind token z: NULL for "NULL", an integer when it is one, else text. */
static int bindTok(sqlite3_stmt *p, int i, const char *z){
  char *zEnd = 0;
  long long v;
  if( z==0 || strcmp(z, "NULL")==0 ) return sqlite3_bind_null(p, i);
  errno = 0;
  v = strtoll(z, &zEnd, 10);
  if( zEnd!=z && *zEnd==0 && errno==0 ) return sqlite3_bind_int64(p, i, v);
  return sqlite3_bind_text(p, i, z, -1, SQLITE_TRANSIENT);
}

/* Every worker's log into temp.log(slot, seq, op, a, b, c, d, e). */
static void loadLogs(sqlite3 *db){
  sqlite3_stmt *p;
  int slot, seq = 0;
  execOk(db, "CREATE TEMP TABLE log(slot, seq, op, a, b, c, d, e);"
             "BEGIN");
  p = prepOk(db, "INSERT INTO temp.log VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  for(slot=0; slot<cfg.nProc; slot++){
    char zLog[1100], zLine[600];
    FILE *f;
    snprintf(zLog, sizeof(zLog), "%s.w%d.log", cfg.zDb, slot);
    f = fopen(zLog, "r");
    if( f==0 ) continue;
    while( fgets(zLine, sizeof(zLine), f) ){
      char *az[6], *zSave = 0, *z;
      int n = 0, i, rc;
      size_t len = strlen(zLine);
      if( len==0 || zLine[len-1]!='\n' ) continue;     /* a cut line: none expected */
      if( strncmp(zLine, "ER ", 3)==0 ){
        S.errors++;
        if( S.errors<=5 ) fprintf(stderr, "credits_stress: error line: %s", zLine);
        continue;
      }
      zLine[len-1] = 0;
      for(z=strtok_r(zLine, " ", &zSave); z && n<6; z=strtok_r(0, " ", &zSave)) az[n++] = z;
      if( n==0 ) continue;
      if( az[0][1]=='I' && az[0][2]==0 ) S.calls++;
      if( az[0][1]=='A' && az[0][2]==0 ) S.acks++;
      if( strcmp(az[0], "RT")==0 ) S.retries++;
      rc = sqlite3_bind_int(p, 1, slot);
      if( rc==SQLITE_OK ) rc = sqlite3_bind_int(p, 2, ++seq);
      for(i=0; rc==SQLITE_OK && i<6; i++){
        rc = i<n ? (i==0 ? sqlite3_bind_text(p, 3, az[0], -1, SQLITE_TRANSIENT)
                         : bindTok(p, i+3, az[i]))
                 : sqlite3_bind_null(p, i+3);
      }
      if( rc==SQLITE_OK ) rc = sqlite3_step(p);
      if( rc!=SQLITE_DONE ) fatalDb("log insert", db);
      if( sqlite3_reset(p)!=SQLITE_OK ) fatalDb("log insert", db);
    }
    fclose(f);
  }
  if( sqlite3_finalize(p)!=SQLITE_OK ) fatalDb("log insert", db);
  execOk(db, "COMMIT;"
             "CREATE INDEX temp.log_op ON log(op, a)");
}

/* A count that must be 0 (zWhat names the violation). */
static void mustZero(sqlite3 *db, i64 *pViol, const char *zWhat, const char *zSql){
  i64 v = oneInt(db, zSql);
  if( v<0 ) fatal("check query failed: %s: %s", zSql, sqlite3_errmsg(db));
  violation(pViol, v, "%s: %lld", zWhat, v);
}

/* A ledger row for the replay: its level (0 wallet, 1 plan and org). */
typedef struct Row {
  i64 id, amt, at;
  int lvl, bStrict;
  i64 aDrawn[3];                   /* from the grants of wallet, plan, org */
} Row;

/*
** Replay a[0..n-1] with plan's period turning at row iTurn (n: after the
** last). Fills aUsed (each key's used at the end) and *pUsedDec (plan's
** used when December ended; -1 when it did not). Returns the consumes that
** took past an allowance, each reported as a violation when bReport.
*/
static i64 replayRun(const Row *a, int n, int iTurn, i64 *aUsed, i64 *pUsedDec,
                     int bReport){
  static const char *azKey[3] = { "wallet", "plan", "org" };
  const i64 aCap[3] = { 0, PLAN_CAP, ORG_CAP };
  i64 nOver = 0;
  int i, j;
  aUsed[0] = aUsed[1] = aUsed[2] = 0;
  *pUsedDec = -1;
  for(i=0; i<n; i++){
    int aLvl[2], nLvl = 0;
    if( i==iTurn ){ *pUsedDec = aUsed[1]; aUsed[1] = 0; }
    if( a[i].lvl==0 ) aLvl[nLvl++] = 0;
    else{ aLvl[nLvl++] = 1; aLvl[nLvl++] = 2; }
    for(j=0; j<nLvl; j++){
      int l = aLvl[j];
      i64 fromAllowance = a[i].amt - a[i].aDrawn[l];
      i64 left = aCap[l] - aUsed[l];
      if( left<0 ) left = 0;
      if( a[i].bStrict && fromAllowance>left ){
        nOver++;
        if( bReport ){
          violation(&S.violOverspend, 1, "consume (ledger %lld, %lld units) took %lld from"
                    " %s's allowance with %lld left (used %lld of cap %lld): past cap +"
                    " credits", a[i].id, a[i].amt, fromAllowance, azKey[l], left,
                    aUsed[l], aCap[l]);
        }
      }
      aUsed[l] += fromAllowance;
    }
  }
  if( iTurn==n ){ *pUsedDec = aUsed[1]; aUsed[1] = 0; }
  return nOver;
}

/*
** Checks 2 (used, the rollover) and 6 (strict calls): replay the ledger in
** id order (the order of commits) at each level (wallet; plan and its
** parent org). Plan's period turned at its first charge dated in January,
** or a little before: a call dated January (a reserve, a grant) may turn it
** and a charge dated the last second of December, its clock read just
** before, commit after it, into January. So each plan charge dated that
** second before the first one dated January is tried as the turn too; the
** first turn that explains plan's used and its rollover grant is kept.
*/
static void replayLedger(sqlite3 *db, i64 endSec){
  static const char *azKey[3] = { "wallet", "plan", "org" };
  i64 aUsed[3], usedDec, aTable[3], nRoll, rollAmt = -1;
  Row *a = 0;
  int n = 0, nAlloc = 0, i, rc, iFirst, iTurn, bFound = 0, nTry = 0;
  sqlite3_stmt *p = prepOk(db,
      "SELECT l.id, l.key, l.amount, l.at, l.hold_id IS NULL AND l.request_id LIKE 'c-%',"
      " coalesce((SELECT s FROM temp.drawn WHERE lid=l.id AND key='wallet'), 0),"
      " coalesce((SELECT s FROM temp.drawn WHERE lid=l.id AND key='plan'), 0),"
      " coalesce((SELECT s FROM temp.drawn WHERE lid=l.id AND key='org'), 0)"
      " FROM quota_ledger l ORDER BY l.id");
  while( (rc = sqlite3_step(p))==SQLITE_ROW ){
    const char *zKey = (const char*)sqlite3_column_text(p, 1);
    Row r;
    r.id = sqlite3_column_int64(p, 0);
    if( zKey==0 ) fatal("ledger row %lld has no key", r.id);
    if( strcmp(zKey, "wallet")==0 ) r.lvl = 0;
    else if( strcmp(zKey, "plan")==0 ) r.lvl = 1;
    else{
      violation(&S.violPhantom, 1, "ledger row %lld of key '%s', which no call charges",
                r.id, zKey);
      continue;
    }
    r.amt = sqlite3_column_int64(p, 2);
    r.at = sqlite3_column_int64(p, 3);
    r.bStrict = sqlite3_column_int(p, 4);
    for(i=0; i<3; i++) r.aDrawn[i] = sqlite3_column_int64(p, 5+i);
    if( n==nAlloc ){
      Row *aNew;
      nAlloc = nAlloc ? 2*nAlloc : 1024;
      aNew = realloc(a, sizeof(Row)*(size_t)nAlloc);
      if( aNew==0 ) fatal("out of memory");
      a = aNew;
    }
    a[n++] = r;
  }
  if( rc!=SQLITE_DONE ) fatalDb("replay", db);
  if( sqlite3_finalize(p)!=SQLITE_OK ) fatalDb("replay", db);

  /* each key's used as the table shows it now; the rollover grant */
  for(i=0; i<3; i++){
    char *zSql = sqlite3_mprintf("SELECT used FROM quota WHERE key=%Q", azKey[i]);
    if( zSql==0 ) fatal("out of memory");
    aTable[i] = oneInt(db, zSql);
    sqlite3_free(zSql);
  }
  nRoll = oneInt(db, "SELECT count(*) FROM quota_grants WHERE meta='{\"rollover\":true}'");
  if( nRoll==1 ){
    rollAmt = oneInt(db, "SELECT amount FROM quota_grants WHERE meta='{\"rollover\":true}'"
                         " AND key='plan' AND request_id IS NULL");
  }
  S.rollovers = nRoll;

  /* the turn: the first plan charge dated January, or one dated the second
  ** before it that explains what the store holds */
  for(iFirst=0; iFirst<n && !(a[iFirst].lvl==1 && a[iFirst].at>=MONTH_B); iFirst++){}
  iTurn = endSec>=MONTH_B ? iFirst : n+1;
  for(i=iFirst; endSec>=MONTH_B && i>=0 && nTry<64; i--){
    i64 want;
    if( i<iFirst && (a[i].lvl!=1 || a[i].at<MONTH_B-1) ) continue;
    nTry++;
    replayRun(a, n, i, aUsed, &usedDec, 0);
    want = PLAN_CAP-usedDec < 0 ? 0 : PLAN_CAP-usedDec;
    if( want>PLAN_ROLL ) want = PLAN_ROLL;
    if( aUsed[1]==aTable[1] && aUsed[2]==aTable[2]
     && (nRoll==1 ? rollAmt==want : want==0) ){
      iTurn = i;
      bFound = 1;
      break;
    }
  }
  if( bFound && iTurn<iFirst ) S.lateTurns++;
  replayRun(a, n, iTurn, aUsed, &usedDec, 1);
  S.usedDec = usedDec;
  free(a);

  /* check 2: each key's used */
  for(i=0; i<3; i++){
    violation(&S.violUsed, aTable[i]!=aUsed[i], "key %s: used %lld, but its ledger charges in"
              " the period less what they drew from its grants are %lld", azKey[i],
              aTable[i], aUsed[i]);
  }
  /* the rollover grant: what December left of plan's cap, up to the rollover */
  if( endSec<MONTH_B ){
    violation(&S.violRollover, nRoll, "%lld rollover grants, but the month never turned",
              nRoll);
  }else{
    i64 want = PLAN_CAP-usedDec < 0 ? 0 : PLAN_CAP-usedDec;
    if( want>PLAN_ROLL ) want = PLAN_ROLL;
    if( nRoll>1 ){
      violation(&S.violRollover, 1, "%lld rollover grants, but the month turned once", nRoll);
    }else if( nRoll==1 ){
      violation(&S.violRollover, rollAmt!=want, "rollover grant of %lld, but December left"
                " %lld of plan's cap %lld (used %lld), rollover %lld", rollAmt, want,
                PLAN_CAP, usedDec, PLAN_ROLL);
    }else if( want>0 ){
      violation(&S.violRollover, 1, "no rollover grant, but December left %lld of plan's"
                " cap", want);
    }
  }
}

static int finalCheck(int nKill){
  sqlite3 *db = openDb();
  Buf err = {0, 0, 0};
  i64 endSec = virtSec();
  int i, bIntegrity;
  if( pinClock(db)!=SQLITE_OK ) fatalDb("pin clock", db);
  loadLogs(db);

  /* 5. integrity, and the invariants of faultcheck.h that need no pinned
  ** clock (those that are not over the current period or live holds) */
  bIntegrity = checkDb(db, &err, 0)==0;
  for(i=0; azInvariant[i]; i++){
    Buf res = {0, 0, 0};
    if( strncmp(azInvariant[i], "SELECT '", 8)!=0 ) continue;   /* WITH ... SUBTREE */
    /* the table shows reserved at its clock, the stored counter keeps a
    ** hold that expired since the last call until a call sweeps it */
    if( strncmp(azInvariant[i], "SELECT 'table'", 14)==0 ) continue;
    if( runSql(db, azInvariant[i], &res, &err)!=SQLITE_OK ){
      bufPrintf(&err, "invariant query %d failed; ", i);
      bIntegrity = 0;
    }else if( res.n>0 ){
      bufPrintf(&err, "invariant broken: %.300s; ", bufText(&res));
      bIntegrity = 0;
    }
    bufFree(&res);
  }
  if( !bIntegrity ){
    S.violIntegrity++;
    fprintf(stderr, "credits_stress: VIOLATION: %s\n", bufText(&err));
  }

  /* what each ledger row drew at each level (quota_draws is keyed by grant) */
  execOk(db, "CREATE TEMP TABLE drawn(lid INTEGER, key TEXT, s INTEGER, PRIMARY KEY(lid, key));"
             "INSERT INTO temp.drawn SELECT d.ledger_id, g.key, sum(d.amount)"
             " FROM quota_draws d JOIN quota_grants g ON g.id=d.grant_id GROUP BY 1, 2");
  execOk(db, "CREATE TEMP TABLE settled(h INTEGER PRIMARY KEY, amount INTEGER);"
             "INSERT OR IGNORE INTO temp.settled SELECT hold_id, amount FROM quota_ledger"
             " WHERE hold_id IS NOT NULL");
  /* 1. amount = remaining + draws + voided */
  mustZero(db, &S.violGrantSum, "grants whose amount is not remaining + draws + voided",
      "SELECT count(*) FROM quota_grants g WHERE amount <> remaining + coalesce(voided, 0)"
      " + (SELECT coalesce(sum(amount), 0) FROM quota_draws WHERE grant_id=g.id)");
  /* 2. a ledger row draws at most its amount at each level */
  mustZero(db, &S.violDrawOver, "ledger rows drawing more than their amount from a level",
      "SELECT count(*) FROM temp.drawn x LEFT JOIN quota_ledger l ON l.id=x.lid"
      " WHERE l.id IS NULL OR x.s>l.amount");
  replayLedger(db, endSec);
  /* 3. no draw at or after its grant's expiry */
  mustZero(db, &S.violExpiry, "draws for a charge dated at or after the grant's expiry",
      "SELECT count(*) FROM quota_draws d JOIN quota_grants g ON g.id=d.grant_id"
      " JOIN quota_ledger l ON l.id=d.ledger_id WHERE g.expires IS NOT NULL"
      " AND l.at>=g.expires");
  /* 4. request ids: one grant each, the same grant id to every acknowledgement */
  mustZero(db, &S.violRidDup, "request ids that made more than one grant",
      "SELECT count(*) FROM (SELECT 1 FROM quota_grants WHERE request_id IS NOT NULL"
      " GROUP BY key, request_id HAVING count(*)>1)");
  mustZero(db, &S.violAckMismatch, "request ids acknowledged with different grant ids",
      "SELECT count(*) FROM (SELECT 1 FROM temp.log WHERE op='GA' GROUP BY a"
      " HAVING count(DISTINCT b)>1)");
  mustZero(db, &S.violAckMismatch, "grants unlike the call that made them",
      "SELECT count(*) FROM quota_grants g WHERE EXISTS(SELECT 1 FROM temp.log i"
      " WHERE i.op='GI' AND i.a=+g.request_id AND (g.key<>i.b OR g.amount<>i.c"
      " OR g.priority<>i.e OR (g.expires IS NULL)<>(i.d=0)"
      " OR g.expires-g.created<>iif(i.d=0, g.expires-g.created, i.d)))");
  /* ... every acknowledged call in the store */
  mustZero(db, &S.violLost, "acknowledged grants not in quota_grants",
      "SELECT count(*) FROM temp.log a WHERE op='GA' AND NOT EXISTS(SELECT 1 FROM"
      " quota_grants g WHERE g.id=a.b AND g.request_id=a.a)");
  mustZero(db, &S.violLost, "acknowledged consumes and records not in the ledger",
      "SELECT count(*) FROM temp.log a WHERE op IN ('CA', 'DA') AND b IS NOT NULL"
      " AND NOT EXISTS(SELECT 1 FROM quota_ledger l WHERE l.id=a.b AND l.request_id=a.a"
      " AND l.hold_id IS NULL)");
  mustZero(db, &S.violLost, "acknowledged reserves not in quota_holds",
      "SELECT count(*) FROM temp.log a WHERE op='RA' AND b IS NOT NULL"
      " AND NOT EXISTS(SELECT 1 FROM quota_holds h WHERE h.id=a.b AND h.request_id=a.a)");
  mustZero(db, &S.violLost, "acknowledged settles not in the ledger as acknowledged",
      "SELECT count(*) FROM temp.log a WHERE op='SA' AND b IS NOT NULL"
      " AND NOT EXISTS(SELECT 1 FROM temp.settled s WHERE s.h=a.a AND s.amount=a.b)");
  mustZero(db, &S.violLost, "acknowledged releases of units not released in the store",
      "SELECT count(*) FROM temp.log a WHERE op='XA' AND b>0 AND NOT EXISTS(SELECT 1"
      " FROM quota_holds h WHERE h.id=a.a AND h.state=2 AND h.amount=a.b)");
  mustZero(db, &S.violAckMismatch, "settles acknowledged with NULL (no key is deleted)",
      "SELECT count(*) FROM temp.log WHERE op='SA' AND b IS NULL");
  mustZero(db, &S.violLost, "acknowledged voids of units not in the grant's voided",
      "SELECT count(*) FROM temp.log a JOIN quota_grants g ON g.id=a.a"
      " WHERE a.op='VA' AND a.b>0 AND g.voided IS NOT a.b");
  /* ... nothing in the store that no call made */
  mustZero(db, &S.violPhantom, "grants that no call made",
      "SELECT count(*) FROM quota_grants g WHERE CASE WHEN request_id IS NULL"
      " THEN meta IS NOT '{\"rollover\":true}' OR key<>'plan'"
      " ELSE NOT EXISTS(SELECT 1 FROM temp.log i WHERE i.op='GI' AND i.a=+g.request_id) END");
  mustZero(db, &S.violPhantom, "voided grants that no quota_void voided",
      "SELECT count(*) FROM quota_grants g WHERE voided IS NOT NULL"
      " AND NOT EXISTS(SELECT 1 FROM temp.log i WHERE i.op='VI' AND i.a=+g.id)");
  mustZero(db, &S.violPhantom, "ledger rows that no consume or record made",
      "SELECT count(*) FROM quota_ledger l WHERE hold_id IS NULL AND NOT EXISTS(SELECT 1"
      " FROM temp.log i WHERE i.op IN ('CI', 'DI') AND i.a=+l.request_id"
      " AND i.b=l.key AND i.c=l.amount)");
  mustZero(db, &S.violPhantom, "ledger rows that no settle made",
      "SELECT count(*) FROM quota_ledger l WHERE hold_id IS NOT NULL AND NOT EXISTS(SELECT 1"
      " FROM temp.log i WHERE i.op='SI' AND i.a=+l.hold_id AND i.b=+l.amount)");
  mustZero(db, &S.violPhantom, "holds that no reserve made",
      "SELECT count(*) FROM quota_holds h JOIN quota_keys k ON k.id=h.key_id"
      " WHERE NOT EXISTS(SELECT 1 FROM temp.log i WHERE i.op='RI' AND i.a=+h.request_id"
      " AND i.b=k.key AND i.c=h.amount)");
  mustZero(db, &S.violPhantom, "holds ended by no settle or release",
      "SELECT count(*) FROM quota_holds h WHERE (state=1 AND NOT EXISTS(SELECT 1 FROM"
      " temp.log i WHERE i.op='SI' AND i.a=+h.id)) OR (state=2 AND NOT EXISTS(SELECT 1"
      " FROM temp.log i WHERE i.op='XI' AND i.a=+h.id))");

  /* 6. checked reserves: granted only with room at every level, denied
  ** only without (the room the worker read in the reserve's transaction;
  ** the amount its hold has in the store, or the one it asked for) */
  mustZero(db, &S.violResOver, "checked reserves granted with less room than their amount",
      "SELECT count(*) FROM temp.log a JOIN quota_holds h ON h.id=a.b"
      " WHERE a.op='RA' AND a.b IS NOT NULL AND a.d>0 AND a.c>=0 AND h.amount>a.c");
  mustZero(db, &S.violResDenied, "checked reserves denied with room for their amount",
      "SELECT count(*) FROM temp.log a WHERE a.op='RA' AND a.b IS NULL AND a.d>0"
      " AND (a.c<0 OR a.c>=(SELECT i.c FROM temp.log i WHERE i.op='RI' AND i.a=a.a"
      " LIMIT 1))");

  /* the observer's snapshots (none under --check-only) */
  {
    char zObs[1100];
    FILE *f;
    snprintf(zObs, sizeof(zObs), "%s.obs", cfg.zDb);
    f = cfg.bCheckOnly ? 0 : fopen(zObs, "r");
    if( f ){
      long long a[4];
      if( fscanf(f, "%lld %lld %lld %lld", &a[0], &a[1], &a[2], &a[3])==4 ){
        S.snapshots = a[0];
        S.obsErrors = a[3];
        violation(&S.violObserver, a[1], "the observer saw the wallet's credits differ from"
                  " its live grants %lld times", a[1]);
        violation(&S.violObserver, a[2], "the observer saw the wallet's reserved differ from"
                  " its live holds %lld times", a[2]);
      }
      fclose(f);
    }else if( !cfg.bCheckOnly ){
      S.snapshots = -1;
    }
  }
  /* figures */
  S.grants = oneInt(db, "SELECT count(*) FROM quota_grants WHERE request_id IS NOT NULL");
  S.grantRetriesSame = oneInt(db, "SELECT count(*) - count(DISTINCT a) FROM temp.log"
                                  " WHERE op='GA'");
  S.voids = oneInt(db, "SELECT count(*) FROM quota_grants WHERE voided>0");
  S.voidedUnits = oneInt(db, "SELECT coalesce(sum(voided), 0) FROM quota_grants");
  S.consumes = oneInt(db, "SELECT count(*) FROM quota_ledger WHERE request_id LIKE 'c-%'");
  S.consumesDenied = oneInt(db, "SELECT count(DISTINCT a) FROM temp.log WHERE op='CA'"
                                " AND b IS NULL");
  S.reserves = oneInt(db, "SELECT count(*) FROM quota_holds");
  S.reservesDenied = oneInt(db, "SELECT count(DISTINCT a) FROM temp.log WHERE op='RA'"
                                " AND b IS NULL");
  S.reservesChecked = oneInt(db, "SELECT count(*) FROM temp.log WHERE op='RA' AND d>0");
  S.settles = oneInt(db, "SELECT count(*) FROM quota_ledger WHERE hold_id IS NOT NULL");
  S.settlesOver = oneInt(db, "SELECT count(*) FROM quota_ledger WHERE hold_id IS NOT NULL"
                             " AND over");
  S.settlesPastExpiry = oneInt(db, "SELECT count(*) FROM quota_ledger l JOIN quota_holds h"
      " ON h.id=l.hold_id JOIN quota_keys k ON k.id=h.key_id WHERE EXISTS(SELECT 1"
      " FROM quota_grants g WHERE g.key=k.key AND g.expires>h.expires-" QUOTA_STR(HOLD_TTL)
      " AND g.expires<=l.at)");
  S.releases = oneInt(db, "SELECT count(*) FROM quota_holds WHERE state=2");
  S.records = oneInt(db, "SELECT count(*) FROM quota_ledger WHERE request_id LIKE 'd-%'");
  S.expiredGrants = oneInt(db, "SELECT count(*) FROM quota_grants WHERE expires IS NOT NULL"
                               " AND expires<=unixepoch(quota_clock())");
  S.draws = oneInt(db, "SELECT count(*) FROM quota_draws");
  S.lateDraws = oneInt(db, "SELECT count(*) FROM quota_draws d JOIN quota_grants g"
                           " ON g.id=d.grant_id JOIN quota_ledger l ON l.id=d.ledger_id"
                           " WHERE g.expires IS NOT NULL AND l.at>=g.expires-1");
  bufFree(&err);
  if( sqlite3_close(db)!=SQLITE_OK ) fatal("close: busy");

  printf("credits_stress: calls=%lld acknowledged=%lld kills=%d retries=%lld errors=%lld"
         " snapshots=%lld observer_errors=%lld\n",
         S.calls, S.acks, nKill, S.retries, S.errors, S.snapshots, S.obsErrors);
  printf("credits_stress: grants=%lld grant_retries_same_id=%lld rollover_grants=%lld"
         " plan_cap=%lld plan_used_in_december=%lld"
         " expired_grants=%lld voided_grants=%lld voided_units=%lld draws=%lld"
         " draws_in_last_second=%lld late_turns=%lld\n", S.grants, S.grantRetriesSame,
         S.rollovers, PLAN_CAP, S.usedDec, S.expiredGrants, S.voids, S.voidedUnits,
         S.draws, S.lateDraws, S.lateTurns);
  printf("credits_stress: consumes=%lld consumes_denied=%lld holds=%lld holds_denied=%lld"
         " reserves_checked=%lld settles=%lld settles_over=%lld"
         " settles_after_a_grant_expired=%lld releases=%lld records=%lld\n",
         S.consumes, S.consumesDenied, S.reserves, S.reservesDenied, S.reservesChecked,
         S.settles, S.settlesOver, S.settlesPastExpiry, S.releases, S.records);
  printf("credits_stress: grant_sum_violations=%lld draw_violations=%lld"
         " used_violations=%lld rollover_violations=%lld expiry_violations=%lld"
         " request_id_duplicates=%lld ack_mismatches=%lld lost_acks=%lld phantoms=%lld"
         " overspends=%lld reserve_overspends=%lld reserve_wrong_denials=%lld"
         " observer_violations=%lld integrity=%s\n",
         S.violGrantSum, S.violDrawOver, S.violUsed, S.violRollover, S.violExpiry,
         S.violRidDup, S.violAckMismatch, S.violLost, S.violPhantom, S.violOverspend,
         S.violResOver, S.violResDenied, S.violObserver, S.violIntegrity ? "failed" : "ok");
  return S.errors==0 && S.violGrantSum+S.violDrawOver+S.violUsed+S.violRollover
       + S.violExpiry+S.violRidDup+S.violAckMismatch+S.violLost+S.violPhantom
       + S.violIntegrity+S.violOverspend+S.violResOver+S.violResDenied
       + S.violObserver==0 && S.obsErrors==0;
}

/* ------------------------------------------------------------ the run */

/* A worker in slot (inc-th incarnation), or the observer for slot -1. */
static pid_t spawn(int slot, int inc){
  pid_t pid;
  fflush(stdout);
  pid = fork();
  if( pid<0 ) fatal("fork: %s", strerror(errno));
  if( pid==0 ){
    if( slot<0 ) observerMain();
    workerMain(slot, inc);
  }
  return pid;
}

static void usage(void){
  fprintf(stderr, "usage: build/credits_stress DBFILE [--procs N] [--seconds S]"
          " [--seed X] [--kill-ms M] [--check-only]\n");
  exit(2);
}

int main(int argc, char **argv){
  pid_t aPid[MAX_PROCS], obs;
  int aInc[MAX_PROCS], i, nKill = 0, ok;
  i64 tEnd;
  Rng rng;
  sqlite3 *db;
  char z[1100], *zSql;
  if( argc<2 ) usage();
  cfg.zDb = argv[1];
  cfg.nProc = 4; cfg.nSec = 8; cfg.killMs = 400;
  cfg.seed = (sqlite3_uint64)time(0);
  for(i=2; i<argc; i++){
    if( strcmp(argv[i], "--procs")==0 && i+1<argc ) cfg.nProc = atoi(argv[++i]);
    else if( strcmp(argv[i], "--seconds")==0 && i+1<argc ) cfg.nSec = atoi(argv[++i]);
    else if( strcmp(argv[i], "--seed")==0 && i+1<argc ) cfg.seed = strtoull(argv[++i], 0, 10);
    else if( strcmp(argv[i], "--kill-ms")==0 && i+1<argc ) cfg.killMs = atoi(argv[++i]);
    else if( strcmp(argv[i], "--check-only")==0 ) cfg.bCheckOnly = 1;
    else usage();
  }
  if( cfg.nProc<1 || cfg.nProc>MAX_PROCS || cfg.nSec<1 || cfg.killMs<10 ) usage();
  /* the virtual clock reaches 2027-01-01 00:00:00 at 10% of the run */
  cfg.offMs = MONTH_B*1000 - (nowMs() + (i64)cfg.nSec*100);
  cfg.planCap = 400*(i64)cfg.nProc*cfg.nSec;
  if( cfg.bCheckOnly ){
    /* a store a run left (perhaps edited by hand since): the clock just
    ** after its last charge, plan's cap as stored */
    db = openDb();
    cfg.offMs = (oneInt(db, "SELECT max(at) FROM quota_ledger")+1)*1000 - nowMs();
    cfg.planCap = oneInt(db, "SELECT cap FROM quota_keys WHERE key='plan'");
    if( sqlite3_close(db)!=SQLITE_OK ) fatal("close: busy");
    if( cfg.planCap<0 ) fatal("%s: not a store of credits_stress", cfg.zDb);
  }
  printf("credits_stress: seed=%llu procs=%d seconds=%d kill_ms=%d, SQLite %s\n",
         (unsigned long long)cfg.seed, cfg.nProc, cfg.nSec, cfg.killMs, sqlite3_libversion());
  fflush(stdout);
  if( sqlite3_auto_extension((void(*)(void))sqlite3_quota_init)!=SQLITE_OK ){
    fatal("auto_extension");
  }
  if( cfg.bCheckOnly ){
    ok = finalCheck(0);
    printf("result: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
  }
  removeDbFiles(cfg.zDb);
  for(i=0; i<MAX_PROCS; i++){
    snprintf(z, sizeof(z), "%s.w%d.log", cfg.zDb, i);
    unlink(z);
  }
  db = openDb();
  execOk(db, "PRAGMA journal_mode=WAL");
  if( pinClock(db)!=SQLITE_OK ) fatalDb("pin clock", db);
  zSql = sqlite3_mprintf(
      "CREATE VIRTUAL TABLE quota USING quota(hold_ttl=%d);"
      "INSERT INTO quota(key, cap) VALUES('org', %d);"
      "INSERT INTO quota(key, cap, period, rollover, parent)"
      " VALUES('plan', %lld, 'month', %lld, 'org');"
      "INSERT INTO quota(key, cap) VALUES('wallet', 0);",
      HOLD_TTL, ORG_CAP, PLAN_CAP, PLAN_ROLL);
  if( zSql==0 ) fatal("out of memory");
  execOk(db, zSql);
  sqlite3_free(zSql);
  if( sqlite3_close(db)!=SQLITE_OK ) fatal("close: busy");
  rng.s = cfg.seed ^ 0xA5A5A5A5ULL;
  snprintf(z, sizeof(z), "%s.obs", cfg.zDb);
  unlink(z);
  obs = spawn(-1, 0);
  for(i=0; i<cfg.nProc; i++){
    aInc[i] = 0;
    aPid[i] = spawn(i, 0);
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
      aPid[slot] = spawn(slot, ++aInc[slot]);
    }
  }
  for(i=0; i<cfg.nProc; i++) kill(aPid[i], SIGKILL);
  for(i=0; i<cfg.nProc; i++) waitpid(aPid[i], 0, 0);
  kill(obs, SIGTERM);
  waitpid(obs, 0, 0);
  ok = finalCheck(nKill);
  printf("credits_stress: respawns=%d\n", nKill);
  printf("result: %s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
