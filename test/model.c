/*
** test/model.c: a model-based test of sqlite-quota.
**
**   build/model [--seed N] [--steps N] [--seeds N] [--long] [--db PATH]
**               [--journal wal|delete] [--no-nest] [--no-temp-table]
**               [--seconds S] [--trace]
**
** Each seed is one run on a fresh database file (PATH, default model.db in
** the current directory; PATH-wal, -shm and -journal are deleted first):
** two connections, A and B, each with the extension compiled in
** (sqlite3_auto_extension) and its clock pinned with quota_clock(). A
** random sequence of operations, drawn from the seed, goes to one of them:
**
**   - keys: INSERT, UPDATE and DELETE on the quota table (cap NULL, 0 or N;
**     every period, spelled in several ways; anchors in the past and the
**     future, on month ends; parent chains of up to 3 levels; used set on
**     insert and as a reset; retention; notes; alert lists of percents and
**     units; enforce 'hard' or 'shadow'; rollover NULL, 0 or N), and
**     writes the table must refuse (duplicate key, bad values, a parent
**     cycle, a parent change under reservations, deleting a parent), also
**     as INSERT OR IGNORE, INSERT OR REPLACE, UPDATE OR IGNORE, and an
**     UPDATE of many rows that one refused row undoes whole;
**   - every function: quota_reserve (with and without request id, retried
**     ids, own ttls), quota_reserve_upto (min and max amounts, partial
**     holds, retries that repeat or change them), quota_settle (below, at
**     and above the hold, late, twice, of a released or unknown hold),
**     quota_release, quota_extend (leases: live, ended, expired, unknown),
**     quota_hold, quota_consume, quota_record (also on unknown keys),
**     quota_check, quota_status, quota_purge, quota_integrity, quota_clock;
**   - credits (doc/credits.md): quota_grant (to wallets, capped lifetime
**     and calendar keys, and refused on the others; amounts up to the
**     2^63-1 units a key's open grants may hold; expiries as durations
**     and times, short enough that grants expire during a run, and past;
**     priorities; request ids retried and shared with the other
**     functions; every refused argument) and quota_void (of live, used-up,
**     expired, voided and unknown grants); the charges draw from them;
**   - token buckets ('rate N per ...', also 10^12 a day) alone and in parent
**     chains with calendar periods and rolling windows;
**   - failed calls (bad arguments, unknown keys and holds, a request id
**     reused with another amount or by another function), which must change
**     nothing;
**   - explicit transactions on one connection (BEGIN or BEGIN IMMEDIATE,
**     several operations, COMMIT or ROLLBACK) while the other one is idle;
**   - calls inside a writing statement: made by a TEMP trigger of the
**     application (INSERT INTO app_events, a table of the database, or
**     INSERT INTO tmp_events, a TEMP table, fires one quota call per row)
**     or by an INSERT ... SELECT over VALUES; they join the statement's
**     transaction: all of them happen, or none when one fails
**     (--no-temp-table leaves out the TEMP table);
**   - calls inside a reading statement (SELECT quota_...(...) FROM a table,
**     or FROM VALUES): outside a transaction a writing call there fails
**     with SQLITE_BUSY, or, when the statement reads nothing, each row's
**     call commits on its own; inside one each row's call stands;
**   - a TEMP trigger on the shadow table quota_ledger (or quota_holds) that
**     calls a quota function: the contract says such a nested call is
**     refused with an error matching "*cannot nest*" and nothing changes
**     (--no-nest leaves these out);
**   - clock moves of either connection: by 0, by seconds, to a hold's
**     expiry, to a period's end, to the moment a rolling window's oldest
**     charge leaves, past the idempotency window, over a month end, and
**     sometimes backwards.
**
** Two invariants are checked besides: a lease never outlives its last
** extension plus that extension's ttl (every hold's expiry, and
** quota_hold() of some holds on both connections after every step); a
** bucket never grants more than cap + ceil(N x elapsed / D) net of what
** came back, over any interval of its own time (bucketLog). And of credits,
** on the store's own rows after every step: every grant's amount =
** remaining + its draws + voided, and no draw for a charge made at or
** after its grant's expiry (a voided grant keeps no units to draw); in
** the model, a request id makes one grant (within the idempotency window).
**
** Credits in the model: per grant its key (by name, as the store keeps
** it), amount, remaining, priority, created, expires, voided and request
** id, and the draws. A key's credits are the unused units of its live
** grants (not voided, the clock before expires); at a capped lifetime or
** calendar key its room is cap - used + credits - reserved (used past cap,
** a debt, counts against them). A charge (consume, record, settle, late
** settle) takes at each level of the chain the allowance first, then that
** level's live grants by priority, soonest expiry (never-expiring last)
** and id, then past the cap (over). A deleted key's open grants are
** voided; quota_purge removes ended grants (and their draws) as store.c
** does. quota_grants and quota_draws are compared row by row after every
** step, the `credits` column with the quota table, "credits" in
** quota_status. Rollover: key writes set the `rollover` column (NULL, 0,
** N, 2^63-1 and refused values); when a writer brings a calendar key into
** a later period (a charge, reserve, grant, UPDATE or DELETE of the key)
** what the period just before left of its cap (all of it when the key saw
** no charge there), up to `rollover`, becomes a grant of priority 0 that
** ends with the current period (within what the key's open grants leave
** of 64 bits); readers count it in credits before it is written. The
** calls from triggers and reading statements do not include quota_grant
** and quota_void.
**
** A reference model, written here from the rules in doc/reference.md,
** doc/transactions.md and README.md ("Choices the specification leaves
** open"), predicts every result: the value or the exact error message of
** each call, and after EVERY step, for each connection as of its own clock,
** every row of the quota table (used, reserved, remaining, period_start,
** resets_at, retry_after ...), the live holds and the ids of quota_holds,
** and the ledger's row count, sum, over and late flags per key, every row
** of the event outbox quota_events and of quota_keyconf (alert, enforce,
** and what the key's events have sent in which period). Inside a
** transaction the acting connection sees the model's current state and the
** other one the state last committed. The whole ledger is compared row by
** row every 50 steps and at the end of a seed; quota_integrity() runs on
** both connections every 10 steps.
**
** THE MODEL keeps what the store keeps, no more: per key its settings, the
** usage of the period it last stored (lazy rollover), the per-second
** buckets of its window, or a bucket's usage, refill second and remainder
** (its arithmetic in 128-bit integers, where the extension splits
** products to stay in 64 bits); the holds (amount, expiry, state); the request ids
** (per key, with the time they were used); the ledger; the events and, per
** key, the period and mask of the events it sent. A read shows the
** values as of its clock; a writing call first expires the holds whose ttl
** ran out ("as every writing call does") and stores the rollover of the
** chain it charges. A transaction is undone by restoring the copy taken at
** BEGIN; a failed statement by the copy taken before it.
**
** On the first disagreement it prints the seed, the step, the last 20
** operations (as SQL that the sqlite3 shell can replay), what was expected
** and what came back, and exits 1. Otherwise it prints one line
**     model: seeds=N steps=N calls=N ... sqlite=X.Y.Z journal=wal result=PASS
**
** Options: --seed N (first seed, default 1), --seeds N (how many, seeds
** N, N+1, ...; default 1), --steps N (per seed, default 500), --long (5000
** steps, 100 seeds, unless given), --seconds S (stop starting new seeds after
** S seconds), --journal (default wal), --no-nest and --no-temp-table (leave
** out those operations), --trace (print every operation).
**
** Exit status: 0 pass, 1 a disagreement, 2 usage or setup error.
*/
#include <sqlite3.h>
#include "quota.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef sqlite3_int64 i64;
#define I64_MAX ((i64)0x7fffffffffffffffLL)

/* ================================================================ utilities */

static void fail(const char *zFmt, ...);

typedef struct Rng { uint64_t s; } Rng;
static uint64_t rngNext(Rng *r){
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z>>30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z>>27)) * 0x94D049BB133111EBULL;
  return z ^ (z>>31);
}
static Rng rng;
static int rnd(int n){ return n<=0 ? 0 : (int)(rngNext(&rng) % (uint64_t)n); }
static int chance(int pct){ return rnd(100)<pct; }

static void *xrealloc(void *p, size_t n){
  void *q = realloc(p, n ? n : 1);
  if( q==0 ){ fprintf(stderr, "model: out of memory\n"); exit(2); }
  return q;
}

static i64 floorDiv(i64 a, i64 b){
  i64 q = a/b;
  if( (a%b)!=0 && ((a<0)!=(b<0)) ) q--;
  return q;
}

/* ===================================================================== time */

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d: count whole
** years of 365 days, add the leap days before the year, then the days of
** the months before m. */
static int isLeap(i64 y){ return (y%4==0 && y%100!=0) || y%400==0; }
static int daysInMonth(i64 y, int m){
  static const int a[] = {31,28,31,30,31,30,31,31,30,31,30,31};
  return m==2 && isLeap(y) ? 29 : a[m-1];
}
static i64 leapsBefore(i64 y){          /* leap years in [1, y) ... (y>0) */
  i64 x = y-1;
  return floorDiv(x,4) - floorDiv(x,100) + floorDiv(x,400);
}
static i64 dayNumber(i64 y, int m, int d){
  static const int cum[] = {0,31,59,90,120,151,181,212,243,273,304,334};
  i64 n = (y-1970)*365 + (leapsBefore(y) - leapsBefore(1970));
  n += cum[m-1] + (m>2 && isLeap(y)) + (d-1);
  return n;
}
static void dateOfDay(i64 n, i64 *py, int *pm, int *pd){
  i64 y = 1970 + floorDiv(n, 366);
  int m;
  while( dayNumber(y+1, 1, 1)<=n ) y++;
  while( dayNumber(y, 1, 1)>n ) y--;
  for(m=12; dayNumber(y, m, 1)>n; m--){}
  *py = y; *pm = m; *pd = (int)(n - dayNumber(y, m, 1)) + 1;
}
static i64 mkTime(i64 y, int m, int d, i64 tod){
  return dayNumber(y, m, d)*86400 + tod;
}
typedef struct Civil { i64 y; int m, d; i64 tod; } Civil;
static void splitTime(i64 t, Civil *c){
  i64 days = floorDiv(t, 86400);
  c->tod = t - days*86400;
  dateOfDay(days, &c->y, &c->m, &c->d);
}
static void fmtTime(i64 t, char *z){    /* 20 bytes: years 0000 to 9999 */
  Civil c;
  splitTime(t, &c);
  sqlite3_snprintf(20, z, "%04d-%02d-%02d %02d:%02d:%02d", (int)c.y, c.m, c.d,
           (int)(c.tod/3600), (int)(c.tod/60%60), (int)(c.tod%60));
}

/* Kinds of period, in the model's own numbering. */
enum { K_LIFE, K_HOUR, K_DAY, K_WEEK, K_MONTH, K_YEAR, K_ROLL, K_RATE };

/* The model's token-bucket arithmetic is its own: 128-bit integers (a GCC
** extension, fine in a test driver), where the extension splits the
** products to stay within 64 bits. */
typedef __int128 i128;
#define TIME_MAX ((i64)253402300799LL)   /* 9999-12-31 23:59:59 */

/* The instant n months after the anchor, its day clamped to the month. */
static i64 monthStep(const Civil *a, i64 n){
  i64 idx = a->y*12 + (a->m-1) + n;
  i64 y = floorDiv(idx, 12);
  int m = (int)(idx - y*12) + 1;
  int d = a->d <= daysInMonth(y, m) ? a->d : daysInMonth(y, m);
  return mkTime(y, m, d, a->tod);
}

/* The calendar period [*ps, *pe) holding t: start(k) for every integer k,
** computed from the anchor (reference.md, "Periods and windows"). Without an
** anchor: top of the hour, midnight, Monday 00:00, the 1st, January 1st. */
static void calBounds(int kind, int bAnchor, i64 anchor, i64 t, i64 *ps, i64 *pe){
  if( kind==K_HOUR || kind==K_DAY || kind==K_WEEK ){
    i64 len = kind==K_HOUR ? 3600 : kind==K_DAY ? 86400 : 7*86400;
    i64 a = bAnchor ? anchor : (kind==K_WEEK ? 4*86400 : 0);  /* 1970-01-05 Mon */
    i64 k = floorDiv(t - a, len);
    *ps = a + k*len;
    *pe = *ps + len;
  }else{
    i64 step = kind==K_MONTH ? 1 : 12;
    Civil ca, ct;
    i64 k, s;
    splitTime(bAnchor ? anchor : 0, &ca);
    splitTime(t, &ct);
    k = floorDiv((ct.y-ca.y)*12 + (ct.m-ca.m), step);
    s = monthStep(&ca, k*step);
    while( s>t ){ k--; s = monthStep(&ca, k*step); }
    while( monthStep(&ca, (k+1)*step)<=t ){ k++; }
    *ps = monthStep(&ca, k*step);
    *pe = monthStep(&ca, (k+1)*step);
  }
}

/* A duration text: digits, optional spaces, an optional unit (second,
** minute, hour, day; plural or not; any case). -1 if it is not one. */
static i64 parseDuration(const char *z){
  i64 n = 0;
  int nDigit = 0, i;
  static const struct { const char *zUnit; i64 mul; } aUnit[] = {
    {"second", 1}, {"minute", 60}, {"hour", 3600}, {"day", 86400}
  };
  while( *z==' ' ) z++;
  while( *z>='0' && *z<='9' ){ n = n*10 + (*z-'0'); z++; nDigit++; }
  if( nDigit==0 || nDigit>12 ) return -1;
  while( *z==' ' ) z++;
  if( *z==0 ) return n;
  for(i=0; i<4; i++){
    size_t l = strlen(aUnit[i].zUnit);
    if( sqlite3_strnicmp(z, aUnit[i].zUnit, (int)l)==0 ){
      const char *zEnd = z+l;
      if( *zEnd=='s' || *zEnd=='S' ) zEnd++;
      while( *zEnd==' ' ) zEnd++;
      if( *zEnd==0 ) return n*aUnit[i].mul;
    }
  }
  return -1;
}

/* ================================================================ arguments */

/* A value passed to SQL, written into the statement as a literal so that the
** log of operations is SQL the sqlite3 shell can replay. */
typedef struct Arg { int t; i64 i; double r; char z[64]; } Arg;
static Arg aNull(void){ Arg a; memset(&a, 0, sizeof(a)); a.t = SQLITE_NULL; return a; }
static Arg aInt(i64 v){ Arg a = aNull(); a.t = SQLITE_INTEGER; a.i = v; return a; }
static Arg aReal(double v){ Arg a = aNull(); a.t = SQLITE_FLOAT; a.r = v; return a; }
static Arg aText(const char *z){
  Arg a = aNull(); a.t = SQLITE_TEXT; snprintf(a.z, sizeof(a.z), "%s", z); return a;
}
static Arg aBlob(const char *zHex){
  Arg a = aNull(); a.t = SQLITE_BLOB; snprintf(a.z, sizeof(a.z), "%s", zHex); return a;
}

static void argSql(const Arg *a, char *z, size_t n){
  switch( a->t ){
    case SQLITE_INTEGER: snprintf(z, n, "%lld", a->i); break;
    case SQLITE_FLOAT:   snprintf(z, n, "%.1f", a->r); break;
    case SQLITE_TEXT:    sqlite3_snprintf((int)n, z, "%Q", a->z); break;
    case SQLITE_BLOB:    snprintf(z, n, "x'%s'", a->z); break;
    default:             snprintf(z, n, "NULL"); break;
  }
}

/* How the extension describes a refused value in its messages ("NULL",
** "-3", "2.5", "text 'x'", "a blob"): written from doc/errors.md, with
** SQLite's own printf for the number's form. */
static const char *argDesc(const Arg *a, char *z, int n){
  switch( a->t ){
    case SQLITE_INTEGER: sqlite3_snprintf(n, z, "%lld", a->i); break;
    case SQLITE_FLOAT:
      sqlite3_snprintf(n, z, "%!.15g%s", a->r,
          (a->r>=-9223372036854775808.0 && a->r<9223372036854775808.0)
            ? "" : " (past the 64-bit range)");
      break;
    case SQLITE_TEXT:
      sqlite3_snprintf(n, z, "text '%.40q%s'", a->z, strlen(a->z)>40 ? "..." : "");
      break;
    case SQLITE_BLOB: sqlite3_snprintf(n, z, "a blob"); break;
    default: sqlite3_snprintf(n, z, "NULL"); break;
  }
  return z;
}
#define D(a) argDesc((a), (char[96]){0}, 96)
#define PERIODS "NULL, 'lifetime', 'hour', 'day', 'week', 'month', 'year', 'rolling N seconds|minutes|hours|days' or 'rate N per [M] second|minute|hour|day'"

/* A key or request id: TEXT (non-empty), an INTEGER as its decimal text,
** an integral REAL as its integer's text. NULL when it is none of those. */
static const char *argName(const Arg *a, char *zBuf){
  if( a->t==SQLITE_TEXT ) return a->z[0] ? a->z : 0;
  if( a->t==SQLITE_INTEGER ){ snprintf(zBuf, 24, "%lld", a->i); return zBuf; }
  if( a->t==SQLITE_FLOAT && a->r==(double)(i64)a->r ){
    snprintf(zBuf, 24, "%lld", (i64)a->r); return zBuf;
  }
  return 0;
}
/* An integer argument (INTEGER, or integral REAL); 0 on success. */
static int argInt(const Arg *a, i64 *p){
  if( a->t==SQLITE_INTEGER ){ *p = a->i; return 0; }
  if( a->t==SQLITE_FLOAT && a->r==(double)(i64)a->r ){ *p = (i64)a->r; return 0; }
  return 1;
}
static int argAmount(const Arg *a, i64 *p){ return argInt(a, p) || *p<0; }

/* ==================================================================== model */

#define MAXKEY  40
#define NAMELEN 64
#define NEV     48
#define MAXALERT 16

enum { H_LIVE, H_SETTLED, H_RELEASED, H_EXPIRED, H_ORPHANED };
enum { R_RESERVE = 1, R_CONSUME = 2, R_RECORD = 3, R_UPTO = 4, R_GRANT = 5 };
enum { RET_NULL, RET_SECS, RET_FOREVER };

typedef struct MBucket { i64 sec, amt; } MBucket;

typedef struct MKey {
  i64 id;
  char zName[NAMELEN];
  int bCap; i64 cap;
  int kind; i64 len; char zPeriod[64];   /* canonical text, "" for NULL */
  int bAnchor; i64 anchor;
  i64 parent;                            /* key id, 0 for none */
  int eRet; i64 ret;
  int bNote; char zNote[64];
  i64 used;                              /* lifetime, calendar, bucket: stored usage */
  i64 pstart;                            /* calendar: stored period start;
                                         ** bucket: refilled up to this second */
  int nB, nBAlloc; MBucket *aB;          /* rolling: buckets by second */
  i64 rate;                              /* bucket: N units per len seconds */
  i64 rrem;                              /* bucket: the refill's remainder (1/len units) */
  /* bucket: the last NEV grants (+) and returns (-) with the bucket's time,
  ** for the invariant "never more than cap + rate x elapsed" (bucketLog) */
  int nEv; i64 aEvT[NEV]; i64 aEvD[NEV];
  int nAlert; i64 aAlert[MAXALERT];      /* N units, -N for N%, canonical order */
  int bShadow;                           /* enforce = 'shadow' */
  int bFired; i64 firedP, firedMask;     /* events sent, and their period */
  int bRoll; i64 roll;                   /* rollover (NULL: bRoll 0) */
} MKey;

typedef struct MHold {
  i64 id, keyId, amount, expires;
  int state;
  i64 charged, ended;                    /* ended -1: none (expired) */
  int bRid; char zRid[NAMELEN];
  i64 created;                           /* when it was reserved */
  i64 lastExt, lastTtl;                  /* its reserve or last quota_extend:
                                         ** expires = lastExt + lastTtl, at
                                         ** most TIME_MAX (checked each step) */
} MHold;

typedef struct MReq {
  i64 keyId; char zRid[NAMELEN]; int op; i64 amount, result, at;
} MReq;

/* A grant (quota_grants): keyed by the key's name, as the store does;
** keyId is the model's own (the key it was made for), expires 0 with bExp
** 0 for never, voided -1 for never voided. */
typedef struct MGrant {
  i64 id; char zKey[NAMELEN]; i64 keyId;
  i64 amount, remaining, priority, created;
  int bExp; i64 expires;
  i64 voided;
  int bRid; char zRid[NAMELEN];
  int bReqGone;                          /* quota_purge removed its request id */
} MGrant;
/* A draw (quota_draws): units of grant grantId for ledger row ledgerId. */
typedef struct MDraw { i64 ledgerId, grantId, amount; } MDraw;

typedef struct MLed {
  i64 id; char zKey[NAMELEN]; i64 amount, at;
  int bRid; char zRid[NAMELEN];
  i64 holdId;                            /* 0: NULL */
  int bMeta; char zMeta[64];
  int over, late;
} MLed;

/* An event of the outbox (kind: E_*). */
enum { E_THRESHOLD, E_EXHAUSTED, E_SHADOW };
typedef struct MEvt {
  i64 id; char zKey[NAMELEN]; i64 at; int kind; char zDetail[24];
  i64 used; int bCap; i64 cap; int bPeriod; i64 ps; i64 ledgerId, holdId;
} MEvt;

typedef struct Model {
  int nKey; MKey aKey[MAXKEY];           /* in id order */
  i64 keySeq;                            /* the AUTOINCREMENT sequence */
  int nHold, nHoldAlloc; MHold *aHold;   /* in id order */
  int nReq, nReqAlloc; MReq *aReq;
  int nLed, nLedAlloc; MLed *aLed;       /* in id order */
  i64 purgePos;                          /* where quota_purge's ledger scan goes on */
  int nEvt, nEvtAlloc; MEvt *aEvt;       /* quota_events, in id order */
  i64 eventPos;                          /* where quota_purge's event scan goes on */
  int nGrant, nGrantAlloc; MGrant *aGrant; /* quota_grants, in id order */
  int nDraw, nDrawAlloc; MDraw *aDraw;   /* quota_draws, in the order made */
} Model;

/* What the runs did, for the summary line (the model counts what it sees
** happen, also in work that is later rolled back). */
static struct {
  i64 steps, calls, failed, denied, txns, rollbacks, triggers, nests, integrity,
      clocks, keywrites, seeds, late, over, expired, orphaned,
      upto, uptoPartial, holds, extends, extendsEnded, rateCalls, rateDenied,
      bucketChecks;
  i64 events, shadowGrants;
  i64 grants, voids, draws, grantsPurged, rollovers;
} st;

/* The table's options of the current seed. */
static i64 optHoldTtl = 900, optIdem = 86400, optRetention = -1;
static i64 optPurgeLimit = 10000;

static void modelFree(Model *m){
  int i;
  for(i=0; i<m->nKey; i++) free(m->aKey[i].aB);
  free(m->aHold); free(m->aReq); free(m->aLed); free(m->aEvt);
  free(m->aGrant); free(m->aDraw);
  memset(m, 0, sizeof(*m));
}
static void modelCopy(Model *dst, const Model *src){
  int i;
  *dst = *src;
  for(i=0; i<src->nKey; i++){
    MKey *k = &dst->aKey[i];
    k->nBAlloc = k->nB;
    k->aB = xrealloc(0, sizeof(MBucket)*(size_t)k->nB);
    if( k->nB ) memcpy(k->aB, src->aKey[i].aB, sizeof(MBucket)*(size_t)k->nB);
  }
  dst->nHoldAlloc = src->nHold;
  dst->aHold = xrealloc(0, sizeof(MHold)*(size_t)src->nHold);
  if( src->nHold ) memcpy(dst->aHold, src->aHold, sizeof(MHold)*(size_t)src->nHold);
  dst->nReqAlloc = src->nReq;
  dst->aReq = xrealloc(0, sizeof(MReq)*(size_t)src->nReq);
  if( src->nReq ) memcpy(dst->aReq, src->aReq, sizeof(MReq)*(size_t)src->nReq);
  dst->nLedAlloc = src->nLed;
  dst->aLed = xrealloc(0, sizeof(MLed)*(size_t)src->nLed);
  if( src->nLed ) memcpy(dst->aLed, src->aLed, sizeof(MLed)*(size_t)src->nLed);
  dst->nEvtAlloc = src->nEvt;
  dst->aEvt = xrealloc(0, sizeof(MEvt)*(size_t)src->nEvt);
  if( src->nEvt ) memcpy(dst->aEvt, src->aEvt, sizeof(MEvt)*(size_t)src->nEvt);
  dst->nGrantAlloc = src->nGrant;
  dst->aGrant = xrealloc(0, sizeof(MGrant)*(size_t)src->nGrant);
  if( src->nGrant ) memcpy(dst->aGrant, src->aGrant, sizeof(MGrant)*(size_t)src->nGrant);
  dst->nDrawAlloc = src->nDraw;
  dst->aDraw = xrealloc(0, sizeof(MDraw)*(size_t)src->nDraw);
  if( src->nDraw ) memcpy(dst->aDraw, src->aDraw, sizeof(MDraw)*(size_t)src->nDraw);
}

static MKey *keyByName(Model *m, const char *z){
  int i;
  for(i=0; i<m->nKey; i++) if( strcmp(m->aKey[i].zName, z)==0 ) return &m->aKey[i];
  return 0;
}
static MKey *keyById(Model *m, i64 id){
  int i;
  for(i=0; i<m->nKey; i++) if( m->aKey[i].id==id ) return &m->aKey[i];
  return 0;
}
static MHold *holdById(Model *m, i64 id){
  int i;
  for(i=0; i<m->nHold; i++) if( m->aHold[i].id==id ) return &m->aHold[i];
  return 0;
}
/* The key and its ancestors, leaf first. */
static int chainOf(Model *m, MKey *k, MKey **a){
  int n = 0;
  while( k && n<MAXKEY ){ a[n++] = k; k = k->parent ? keyById(m, k->parent) : 0; }
  return n;
}
/* Rowids: the largest + 1 (purge never removes the largest). */
static i64 nextHoldId(Model *m){ return m->nHold ? m->aHold[m->nHold-1].id + 1 : 1; }
static i64 nextLedId(Model *m){ return m->nLed ? m->aLed[m->nLed-1].id + 1 : 1; }
static i64 nextEvtId(Model *m){ return m->nEvt ? m->aEvt[m->nEvt-1].id + 1 : 1; }

static int isCal(int kind){ return kind>=K_HOUR && kind<=K_YEAR; }

/* Credits: a grant is open while it has units left and is not voided, live
** while open and t is before its expiry (a grant counts while the clock is
** before it). Grants count at a capped lifetime or calendar key only. */
static int grantOpen(const MGrant *g){ return g->remaining>0 && g->voided<0; }
static int grantLive(const MGrant *g, i64 t){
  return grantOpen(g) && (!g->bExp || t<g->expires);
}
static int creditsApply(const MKey *k){
  return k->bCap && (k->kind==K_LIFE || isCal(k->kind));
}
/* The unused units of k's live grants at t (bLive) or of its open ones
** (expired or not: what a new grant must stay within 64 bits with). */
static i64 keyCredits(const Model *m, const MKey *k, i64 t, int bLive){
  i128 sum = 0;
  int i;
  for(i=0; i<m->nGrant; i++){
    const MGrant *g = &m->aGrant[i];
    if( strcmp(g->zKey, k->zName)!=0 ) continue;
    if( bLive ? grantLive(g, t) : grantOpen(g) ) sum += g->remaining;
  }
  if( sum>I64_MAX ) fail("key %s: its open grants hold more than 2^63-1 units", k->zName);
  return (i64)sum;
}
static i64 rolloverAmount(const MKey *k, i64 s);
static MGrant *grantById(Model *m, i64 id){
  int i;
  for(i=0; i<m->nGrant; i++) if( m->aGrant[i].id==id ) return &m->aGrant[i];
  return 0;
}
static i64 nextGrantId(Model *m){ return m->nGrant ? m->aGrant[m->nGrant-1].id + 1 : 1; }
static MDraw *drawPush(Model *m){
  if( m->nDraw>=m->nDrawAlloc ){
    m->nDrawAlloc = m->nDrawAlloc ? m->nDrawAlloc*2 : 16;
    m->aDraw = xrealloc(m->aDraw, sizeof(MDraw)*(size_t)m->nDrawAlloc);
  }
  memset(&m->aDraw[m->nDraw], 0, sizeof(MDraw));
  return &m->aDraw[m->nDraw++];
}
/* Draw order (store.c quotaStoreDraw): priority, soonest expiry (never
** last), id. 1 when a comes before b. */
static int grantBefore(const MGrant *a, const MGrant *b){
  if( a->priority!=b->priority ) return a->priority<b->priority;
  if( a->bExp!=b->bExp ) return a->bExp;
  if( a->bExp && a->expires!=b->expires ) return a->expires<b->expires;
  return a->id<b->id;
}
/* Take `amount` units (no more than k's live credits at t) from k's live
** grants in draw order, a draw row each for ledger row ledId. */
static void grantDraw(Model *m, MKey *k, i64 amount, i64 ledId, i64 t){
  while( amount>0 ){
    MGrant *best = 0, *g;
    MDraw *d;
    i64 take;
    int i;
    for(i=0; i<m->nGrant; i++){
      g = &m->aGrant[i];
      if( strcmp(g->zKey, k->zName)!=0 || !grantLive(g, t) ) continue;
      if( !best || grantBefore(g, best) ) best = g;
    }
    if( !best ) fail("model: key %s has no live grant left to draw %lld from", k->zName, amount);
    take = best->remaining<amount ? best->remaining : amount;
    best->remaining -= take;
    amount -= take;
    d = drawPush(m);
    d->ledgerId = ledId; d->grantId = best->id; d->amount = take;
    st.draws++;
  }
}

/* Add a bucket amount at second `sec`: a charge joins the newest bucket
** when the clock is at or behind it, so buckets stay in order. */
static void bucketAdd(MKey *k, i64 sec, i64 amt){
  if( amt<=0 ) return;
  if( k->nB>0 && k->aB[k->nB-1].sec>=sec ){
    k->aB[k->nB-1].amt += amt;
    return;
  }
  if( k->nB>=k->nBAlloc ){
    k->nBAlloc = k->nBAlloc ? k->nBAlloc*2 : 8;
    k->aB = xrealloc(k->aB, sizeof(MBucket)*(size_t)k->nBAlloc);
  }
  k->aB[k->nB].sec = sec;
  k->aB[k->nB].amt = amt;
  k->nB++;
}

/* A key as readers see it at t. */
typedef struct KView {
  i64 used, reserved;
  int bPeriod; i64 ps, pe;               /* calendar only */
  i64 rrem, rT;                          /* bucket: remainder, refilled up to */
  i64 credits;                           /* the unused units of its live grants */
} KView;

/* A bucket out by *pUsed with remainder *pRem after dt seconds at n units
** per d seconds: it gains floor((rem + n*dt) / d) units, up to full; a full
** bucket keeps no remainder. */
static void rateRefill(i64 *pUsed, i64 *pRem, i64 n, i64 d, i64 dt){
  i128 total, units;
  if( *pUsed==0 || dt<=0 ) return;
  total = (i128)*pRem + (i128)n*dt;
  units = total / d;
  if( units >= *pUsed ){ *pUsed = 0; *pRem = 0; }
  else { *pUsed -= (i64)units; *pRem = (i64)(total % d); }
}
/* A bucket gets `amount` units back, up to full. */
static void rateGive(i64 *pUsed, i64 *pRem, i64 amount){
  if( amount<=0 ) return;
  if( *pUsed>amount ){ *pUsed -= amount; }
  else { *pUsed = 0; *pRem = 0; }
}

/* Reserved of every key at t: the live holds (stored live, t < expires) of
** the key and of every key below it. a[] is indexed like m->aKey. */
static void reservedAll(Model *m, i64 t, i64 *a){
  int i, j;
  for(i=0; i<m->nKey; i++) a[i] = 0;
  for(i=0; i<m->nHold; i++){
    MHold *h = &m->aHold[i];
    MKey *k;
    int depth = 0;
    if( h->state!=H_LIVE || t>=h->expires ) continue;
    for(k=keyById(m, h->keyId); k && depth<MAXKEY; depth++){
      for(j=0; j<m->nKey; j++) if( &m->aKey[j]==k ) a[j] += h->amount;
      k = k->parent ? keyById(m, k->parent) : 0;
    }
  }
}

static i64 windowSum(const MKey *k, i64 t){
  i64 s = 0;
  int i;
  for(i=0; i<k->nB; i++) if( k->aB[i].sec > t - k->len ) s += k->aB[i].amt;
  return s;
}

/* The units of holds stored live whose ttl ran out by t (a writing call
** would sweep them) that count at k. */
static i64 expiredAt(Model *m, MKey *k, i64 t){
  i64 sum = 0;
  int i, depth;
  for(i=0; i<m->nHold; i++){
    MHold *h = &m->aHold[i];
    MKey *q;
    if( h->state!=H_LIVE || t<h->expires ) continue;
    for(q=keyById(m, h->keyId), depth=0; q && depth<MAXKEY; depth++){
      if( q==k ){ sum += h->amount; break; }
      q = q->parent ? keyById(m, q->parent) : 0;
    }
  }
  return sum;
}

static void keyView(Model *m, MKey *k, i64 t, const i64 *aRes, KView *v){
  memset(v, 0, sizeof(*v));
  v->reserved = aRes[k - m->aKey];
  v->credits = keyCredits(m, k, t, 1);
  if( k->kind==K_LIFE ){
    v->used = k->used;
  }else if( k->kind==K_RATE ){
    /* refilled to t, then the expired holds' units back */
    v->used = k->used; v->rrem = k->rrem; v->rT = k->pstart;
    if( t>v->rT ){
      rateRefill(&v->used, &v->rrem, k->rate, k->len, t - v->rT);
      v->rT = t;
    }
    rateGive(&v->used, &v->rrem, expiredAt(m, k, t));
  }else if( k->kind==K_ROLL ){
    v->used = windowSum(k, t);
  }else{
    i64 s, e;
    calBounds(k->kind, k->bAnchor, k->anchor, t, &s, &e);
    v->bPeriod = 1;
    if( s>k->pstart ){
      /* readers count the rollover a writer would make */
      i64 add = rolloverAmount(k, s);
      v->used = 0; v->ps = s; v->pe = e;
      v->credits = add > I64_MAX - v->credits ? I64_MAX : v->credits + add;
    }else if( s==k->pstart ){
      v->used = k->used; v->ps = s; v->pe = e;
    }else{
      /* the clock is behind the stored period: it stays current */
      calBounds(k->kind, k->bAnchor, k->anchor, k->pstart, &s, &e);
      v->used = k->used; v->ps = k->pstart; v->pe = e;
    }
  }
}

static i64 levelRoom(const MKey *k, const KView *v){
  i64 r, top = k->cap;
  if( !k->bCap ) return I64_MAX;
  /* cap - used + credits - reserved: the credits cover a debt first */
  if( v->credits>0 && creditsApply(k) ){
    top = (i128)k->cap + v->credits > (i128)I64_MAX ? I64_MAX : k->cap + v->credits;
  }
  if( v->used>=top ) return 0;
  r = top - v->used;
  if( k->kind==K_RATE ) return r;        /* its holds are in used */
  return v->reserved>=r ? 0 : r - v->reserved;
}

/* Seconds until `amount` fits at a level that denies it; -1 for never. */
static i64 retryAfter(const MKey *k, const KView *v, i64 amount, i64 t){
  i64 secs;
  if( !k->bCap || k->kind==K_LIFE ) return -1;
  if( k->kind==K_RATE ){
    /* the least s with floor((rem + N*s)/D) >= what must refill: enough
    ** for amount, or, when amount can never fit (or the bucket is full),
    ** one unit; plus the wait for a clock behind the refill */
    i64 need = 1, rem = 0;
    i128 x;
    if( v->used>0 ){
      rem = v->rrem;
      if( amount<=k->cap ) need = v->used - (k->cap - amount);
    }
    x = ((i128)need*k->len - rem + k->rate - 1) / k->rate;
    if( x<1 ) x = 1;
    x += v->rT>t ? v->rT - t : 0;
    return x>I64_MAX ? I64_MAX : (i64)x;
  }
  if( k->kind!=K_ROLL ){
    secs = v->pe - t;
  }else{
    i64 edge = t - k->len, first = 0;
    int i, bFirst = 0;
    for(i=0; i<k->nB; i++){
      if( k->aB[i].sec>edge ){ first = k->aB[i].sec; bFirst = 1; break; }
    }
    if( amount <= k->cap - v->reserved && bFirst ){
      /* until enough of the oldest charges leave */
      i64 need = v->used - ((k->cap - v->reserved) - amount), cum = 0;
      secs = -1;
      for(i=0; i<k->nB; i++){
        if( k->aB[i].sec<=edge ) continue;
        cum += k->aB[i].amt;
        if( cum>=need ){ secs = k->aB[i].sec + k->len - t; break; }
      }
      if( secs<0 ) secs = 1;   /* cannot happen: cum ends at used >= need */
    }else{
      secs = bFirst ? first + k->len - t : k->len;
    }
  }
  if( secs<1 ) secs = 1;
  return secs;
}

/* Bring a key to t in the store, as a charging call does: the rollover of a
** calendar period is stored, buckets that left the window are dropped. */
/* What a calendar key rolls over into the period [s, e) that starts after
** its stored one (period.c periodRollover): of the period just before s,
** the cap it left unused (all of it when the stored period is older: no
** charge there), up to `rollover`; 0 for none. */
static i64 rolloverAmount(const MKey *k, i64 s){
  i64 prev, pe, unused;
  if( !k->bCap || !k->bRoll || k->roll<=0 ) return 0;
  calBounds(k->kind, k->bAnchor, k->anchor, s-1, &prev, &pe);
  unused = k->pstart<prev ? k->cap : (k->used<k->cap ? k->cap - k->used : 0);
  return unused<k->roll ? unused : k->roll;
}
static MGrant *grantPush(Model *m){
  i64 id = nextGrantId(m);
  MGrant *g;
  if( m->nGrant>=m->nGrantAlloc ){
    m->nGrantAlloc = m->nGrantAlloc ? m->nGrantAlloc*2 : 16;
    m->aGrant = xrealloc(m->aGrant, sizeof(MGrant)*(size_t)m->nGrantAlloc);
  }
  g = &m->aGrant[m->nGrant++];
  memset(g, 0, sizeof(*g));
  g->id = id;
  g->voided = -1;
  return g;
}
static void normWrite(Model *m, MKey *k, i64 t){
  if( k->kind==K_RATE ){
    if( t>k->pstart ){
      rateRefill(&k->used, &k->rrem, k->rate, k->len, t - k->pstart);
      k->pstart = t;
    }
  }else if( isCal(k->kind) ){
    i64 s, e;
    calBounds(k->kind, k->bAnchor, k->anchor, t, &s, &e);
    if( s>k->pstart ){
      /* a rollover grant (priority 0, ends with the period), within what
      ** the key's open grants leave of 64 bits */
      i64 amount = rolloverAmount(k, s), open;
      if( amount>0 ){
        open = keyCredits(m, k, t, 0);
        if( amount>I64_MAX - open ) amount = I64_MAX - open;
      }
      if( amount>0 ){
        MGrant *g = grantPush(m);
        snprintf(g->zKey, NAMELEN, "%s", k->zName);
        g->keyId = k->id;
        g->amount = g->remaining = amount;
        g->created = t; g->bExp = 1; g->expires = e;
        st.rollovers++;
      }
      k->used = 0; k->pstart = s;
    }
  }else if( k->kind==K_ROLL ){
    int i = 0, j;
    while( i<k->nB && k->aB[i].sec <= t - k->len ) i++;
    if( i>0 ){
      for(j=i; j<k->nB; j++) k->aB[j-i] = k->aB[j];
      k->nB -= i;
    }
  }
}

/* The invariant of a bucket: over any interval, what it granted minus
** what came back is at most cap + ceil(N x elapsed / D), elapsed in the
** bucket's own time (the second it is refilled up to, which never goes
** back). Each grant (+) or return (-) is logged with that time; a new
** event is checked against every interval ending with it that the log
** still holds. A write to the key's settings or usage starts the log
** afresh (keyLogReset). A bucket in shadow mode is not bounded. */
static void bucketLog(MKey *k, i64 delta);
static void keyLogReset(MKey *k){ k->nEv = 0; }
static void bucketLog(MKey *k, i64 delta){
  i64 sum = 0;
  int i;
  if( delta==0 ) return;
  /* a bucket in shadow mode never denies: no bound to check */
  if( k->bShadow ){ keyLogReset(k); return; }
  if( k->nEv==NEV ){
    memmove(k->aEvT, k->aEvT+1, sizeof(i64)*(NEV-1));
    memmove(k->aEvD, k->aEvD+1, sizeof(i64)*(NEV-1));
    k->nEv--;
  }
  k->aEvT[k->nEv] = k->pstart;
  k->aEvD[k->nEv] = delta;
  k->nEv++;
  if( delta<0 ) return;
  st.bucketChecks++;
  for(i=k->nEv-1; i>=0; i--){
    i128 bound = (i128)k->cap
               + ((i128)k->rate*(k->pstart - k->aEvT[i]) + k->len - 1) / k->len;
    sum += k->aEvD[i];
    if( (i128)sum > bound ){
      fail("bucket %s granted %lld units net over [%lld, %lld], more than cap %lld"
           " + rate %lld per %lld s x elapsed", k->zName, sum, k->aEvT[i],
           k->pstart, k->cap, k->rate, k->len);
    }
  }
}

/* A hold of `amount` units taken at key k's chain ends uncharged at t: the
** buckets of the chain get them back (brought to t first). */
static void chainReturn(Model *m, MKey *k, i64 amount, i64 t){
  int depth = 0;
  for(; k && depth<MAXKEY; depth++){
    if( k->kind==K_RATE ){
      normWrite(m, k, t);
      rateGive(&k->used, &k->rrem, amount);
      bucketLog(k, -amount);
    }
    k = k->parent ? keyById(m, k->parent) : 0;
  }
}

/* What every writing call does first: holds whose ttl ran out expire,
** their units back in the buckets of their chain. */
static void sweep(Model *m, i64 t){
  int i;
  for(i=0; i<m->nHold; i++){
    if( m->aHold[i].state==H_LIVE && m->aHold[i].expires<=t ){
      m->aHold[i].state = H_EXPIRED;
      st.expired++;
      chainReturn(m, keyById(m, m->aHold[i].keyId), m->aHold[i].amount, t);
    }
  }
}

static void charge(MKey *k, i64 amount, i64 t){
  if( k->kind==K_ROLL ) bucketAdd(k, t, amount);
  else k->used += amount;
}

static MReq *reqFind(Model *m, i64 keyId, const char *zRid, i64 t){
  int i;
  for(i=0; i<m->nReq; i++){
    MReq *q = &m->aReq[i];
    if( q->keyId==keyId && strcmp(q->zRid, zRid)==0 ){
      return (t - q->at < optIdem) ? q : 0;
    }
  }
  return 0;
}
static void reqPut(Model *m, i64 keyId, const char *zRid, int op, i64 amount,
                   i64 result, i64 t){
  int i;
  MReq *q;
  /* The rows in the order they were written (the order quota_purge examines
  ** them in): an id used again is written anew, at the end. */
  for(i=0; i<m->nReq; i++){
    if( m->aReq[i].keyId==keyId && strcmp(m->aReq[i].zRid, zRid)==0 ){
      for(; i+1<m->nReq; i++) m->aReq[i] = m->aReq[i+1];
      m->nReq--;
      break;
    }
  }
  if( m->nReq>=m->nReqAlloc ){
    m->nReqAlloc = m->nReqAlloc ? m->nReqAlloc*2 : 16;
    m->aReq = xrealloc(m->aReq, sizeof(MReq)*(size_t)m->nReqAlloc);
  }
  q = &m->aReq[m->nReq++];
  q->keyId = keyId;
  snprintf(q->zRid, NAMELEN, "%s", zRid);
  q->op = op; q->amount = amount; q->result = result; q->at = t;
}
static MHold *holdPush(Model *m){
  if( m->nHold>=m->nHoldAlloc ){
    m->nHoldAlloc = m->nHoldAlloc ? m->nHoldAlloc*2 : 16;
    m->aHold = xrealloc(m->aHold, sizeof(MHold)*(size_t)m->nHoldAlloc);
  }
  memset(&m->aHold[m->nHold], 0, sizeof(MHold));
  return &m->aHold[m->nHold++];
}
static MLed *ledPush(Model *m){
  if( m->nLed>=m->nLedAlloc ){
    m->nLedAlloc = m->nLedAlloc ? m->nLedAlloc*2 : 16;
    m->aLed = xrealloc(m->aLed, sizeof(MLed)*(size_t)m->nLedAlloc);
  }
  memset(&m->aLed[m->nLed], 0, sizeof(MLed));
  return &m->aLed[m->nLed++];
}

/* ------------------------------------------------- alerts and events */

/* Parse an alert list (reference.md, "alert"): a comma list of at most 16
** thresholds, each a positive whole number N of units or N% of cap, spaces
** around each item allowed. 0 and the thresholds (N units, -N for N%) in
** canonical order: percents then units, each ascending, each once; 1 when
** it is not a list. */
static int isWs(char c){ return c==' ' || c=='\t' || c=='\n' || c=='\r'; }
static int parseAlert(const char *z, i64 *aOut, int *pn){
  i64 a[MAXALERT];
  int n = 0, i, j;
  for(;;){
    i64 v = 0;
    int nd = 0;
    while( isWs(*z) ) z++;
    while( *z>='0' && *z<='9' ){
      if( v > (I64_MAX - (*z-'0'))/10 ) return 1;
      v = v*10 + (*z++ - '0');
      nd++;
    }
    if( nd==0 || v==0 ) return 1;
    if( *z=='%' ){ v = -v; z++; }
    while( isWs(*z) ) z++;
    for(i=0; i<n && a[i]!=v; i++){}
    if( i==n ){
      if( n==MAXALERT ) return 1;
      a[n++] = v;
    }
    if( *z==0 ) break;
    if( *z++!=',' ) return 1;
  }
  /* selection: repeatedly take the smallest of percents, then of units */
  for(i=0; i<n; i++){
    int best = i;
    for(j=i+1; j<n; j++){
      i64 x = a[j], y = a[best];
      int bPx = x<0, bPy = y<0;
      if( bPx!=bPy ? bPx : (bPx ? -x < -y : x < y) ) best = j;
    }
    { i64 tmp = a[i]; a[i] = a[best]; a[best] = tmp; }
    aOut[i] = a[i];
  }
  *pn = n;
  return 0;
}
static void alertItem(i64 v, char *z){
  if( v<0 ) snprintf(z, 24, "%lld%%", -v); else snprintf(z, 24, "%lld", v);
}
static void alertText(const i64 *a, int n, char *z, size_t nz){
  size_t j = 0;
  int i;
  z[0] = 0;
  for(i=0; i<n; i++){
    char zI[24];
    alertItem(a[i], zI);
    j += (size_t)snprintf(z+j, nz-j, "%s%s", i ? ", " : "", zI);
  }
}

/* The units at which threshold v is reached at k: N, or ceil(cap*N/100)
** (at most the largest 64-bit integer); -1 for a percent of no cap. */
static i64 thresholdUnits(const MKey *k, i64 v){
  unsigned __int128 x;
  if( v>0 ) return v;
  if( !k->bCap ) return -1;
  x = ((unsigned __int128)(uint64_t)k->cap * (uint64_t)(-v) + 99) / 100;
  return x > (unsigned __int128)I64_MAX ? I64_MAX : (i64)x;
}

/* The event period of k at t (its charges normalized): the stored calendar
** period, a window-length slot of a window, none (0) for lifetime. */
static int evPeriod(const MKey *k, i64 t, i64 *pP){
  if( isCal(k->kind) ){ *pP = k->pstart; return 1; }
  if( k->kind==K_ROLL ){ *pP = floorDiv(t, k->len)*k->len; return 1; }
  *pP = 0;
  return 0;
}

static MEvt *evtPush(Model *m){
  if( m->nEvt>=m->nEvtAlloc ){
    m->nEvtAlloc = m->nEvtAlloc ? m->nEvtAlloc*2 : 16;
    m->aEvt = xrealloc(m->aEvt, sizeof(MEvt)*(size_t)m->nEvtAlloc);
  }
  memset(&m->aEvt[m->nEvt], 0, sizeof(MEvt));
  return &m->aEvt[m->nEvt++];
}

/* After a granted call on level k (the call's writes done): the events it
** sends (reference.md, "quota_events"): shadow_denied when the call got
** through only because k is a shadow key (bWould), then, for a charge
** (bCharged), the thresholds reached and exhausted; each once per event
** period. *pbEvent is set when one is written. */
static void evAfter(Model *m, MKey *k, i64 t, int bCharged, int bWould,
                    i64 ledgerId, i64 holdId, int *pbEvent){
  i64 P = 0, mask = 0, add = 0, aRes[MAXKEY];
  KView v;
  int bP, i;
  if( k->nAlert==0 && !k->bShadow ) return;
  bP = evPeriod(k, t, &P);
  if( k->bFired && k->firedP>=P ){ P = k->firedP; mask = k->firedMask; }
  reservedAll(m, t, aRes);
  keyView(m, k, t, aRes, &v);
  for(i=-1; i<=k->nAlert; i++){
    int kind;
    i64 bit;
    char zD[24];
    zD[0] = 0;
    if( i<0 ){                                        /* shadow_denied */
      if( !(bWould && k->bShadow) ) continue;
      kind = E_SHADOW; bit = 2;
    }else if( i<k->nAlert ){                          /* a threshold */
      i64 u = thresholdUnits(k, k->aAlert[i]);
      if( !bCharged || u<0 || v.used<u || v.used<=0 ) continue;
      kind = E_THRESHOLD; bit = (i64)4<<i;
      alertItem(k->aAlert[i], zD);
    }else{                                            /* exhausted */
      if( !bCharged || !k->bCap || levelRoom(k, &v)!=0 ) continue;
      kind = E_EXHAUSTED; bit = 1;
    }
    if( mask & bit ) continue;
    add |= bit;
    {
      i64 id = nextEvtId(m);
      MEvt *e = evtPush(m);
      e->id = id;
      snprintf(e->zKey, NAMELEN, "%s", k->zName);
      e->at = t; e->kind = kind;
      snprintf(e->zDetail, sizeof(e->zDetail), "%s", zD);
      e->used = v.used; e->bCap = k->bCap; e->cap = k->cap;
      e->bPeriod = bP; e->ps = P;
      e->ledgerId = ledgerId; e->holdId = holdId;
      st.events++;
      *pbEvent = 1;
    }
  }
  if( add ){ k->bFired = 1; k->firedP = P; k->firedMask = mask | add; }
}

/* k's settings or usage were written by the table: what it has reached
** counts as sent, the rest is armed (reference.md, "alert"). */
static void evRearm(Model *m, MKey *k, i64 t){
  i64 P = 0, mask = 0, aRes[MAXKEY];
  KView v;
  int i;
  k->bFired = 0; k->firedP = 0; k->firedMask = 0;
  if( k->nAlert==0 && !k->bShadow ) return;
  evPeriod(k, t, &P);
  reservedAll(m, t, aRes);
  keyView(m, k, t, aRes, &v);
  for(i=0; i<k->nAlert; i++){
    i64 u = thresholdUnits(k, k->aAlert[i]);
    if( u>=0 && v.used>=u && v.used>0 ) mask |= (i64)4<<i;
  }
  if( k->bCap && levelRoom(k, &v)==0 ) mask |= 1;
  if( mask ){ k->bFired = 1; k->firedP = P; k->firedMask = mask; }
}

/* ================================================================== results */

/* The outcome of one statement: an error (code, message) or a value. */
typedef struct Res {
  int bErr; int code; int bGlob; char zMsg[300];
  int bNull; char zVal[1200];
  int bLedger;                           /* the model: a ledger row was written */
  int bHoldIns;                          /* the model: a hold was inserted */
  int bEvent;                            /* the model: an event was written */
} Res;

static void resNull(Res *r){ memset(r, 0, sizeof(*r)); r->bNull = 1; }
static void resInt(Res *r, i64 v){ memset(r, 0, sizeof(*r)); snprintf(r->zVal, sizeof(r->zVal), "%lld", v); }
static void resText(Res *r, const char *z){ memset(r, 0, sizeof(*r)); snprintf(r->zVal, sizeof(r->zVal), "%s", z); }
static void resErr(Res *r, int code, const char *zFmt, ...){
  va_list ap;
  memset(r, 0, sizeof(*r));
  r->bErr = 1;
  r->code = code;
  va_start(ap, zFmt);
  vsnprintf(r->zMsg, sizeof(r->zMsg), zFmt, ap);
  va_end(ap);
}
static void resRender(const Res *r, char *z, size_t n){
  if( r->bErr ) snprintf(z, n, "error %d {%s}%s", r->code, r->zMsg, r->bGlob ? " (glob)" : "");
  else if( r->bNull ) snprintf(z, n, "NULL");
  else snprintf(z, n, "%s", r->zVal);
}
static int resSame(const Res *exp, const Res *got){
  if( exp->bErr!=got->bErr ) return 0;
  if( exp->bErr ){
    if( exp->bGlob ) return sqlite3_strglob(exp->zMsg, got->zMsg)==0;
    return exp->code==got->code && strcmp(exp->zMsg, got->zMsg)==0;
  }
  if( exp->bNull!=got->bNull ) return 0;
  return exp->bNull || strcmp(exp->zVal, got->zVal)==0;
}

/* ====================================================== model: the functions */

static const char *opFunc(int op){
  return op==R_RESERVE ? "quota_reserve" : op==R_CONSUME ? "quota_consume"
       : op==R_UPTO ? "quota_reserve_upto" : op==R_GRANT ? "quota_grant" : "quota_record";
}

/* Whether some level of k's chain denies `amount` at t (as the chain is
** after the call's rollover): a level without room for it that is not a
** shadow key. aWould (if given) gets, per level, whether it is a shadow key
** without room: it would deny if enforced. And whether adding it would
** take some level's used (bUsed) or reserved past the largest 64-bit
** integer. */
static int chainDenies(Model *m, MKey *k, i64 amount, i64 t, int *aWould){
  MKey *c[MAXKEY];
  i64 aRes[MAXKEY];
  int n = chainOf(m, k, c), i, bDeny = 0;
  reservedAll(m, t, aRes);
  for(i=0; i<n; i++){
    KView v;
    int bShort;
    keyView(m, c[i], t, aRes, &v);
    bShort = levelRoom(c[i], &v)<amount;
    if( aWould ) aWould[i] = bShort && c[i]->bShadow;
    if( bShort && !c[i]->bShadow ) bDeny = 1;
  }
  return bDeny;
}
/* The events of a granted call at every level of k's chain. */
static void chainEvents(Model *m, MKey *k, i64 t, int bCharged, const int *aWould,
                        i64 ledgerId, i64 holdId, Res *r){
  MKey *c[MAXKEY];
  int n = chainOf(m, k, c), i;
  for(i=0; i<n; i++){
    if( aWould && aWould[i] ) st.shadowGrants++;
    evAfter(m, c[i], t, bCharged, aWould ? aWould[i] : 0, ledgerId, holdId, &r->bEvent);
  }
}
static int chainOverflows(Model *m, MKey *k, i64 amount, i64 t, int bUsed){
  MKey *c[MAXKEY];
  i64 aRes[MAXKEY];
  int n = chainOf(m, k, c), i;
  reservedAll(m, t, aRes);
  for(i=0; i<n; i++){
    KView v;
    keyView(m, c[i], t, aRes, &v);
    if( (bUsed ? v.used : v.reserved) > I64_MAX - amount ) return 1;
    /* a hold takes a bucket's units now: a shadow bucket's used may not
    ** have room for what it grants */
    if( !bUsed && c[i]->kind==K_RATE && v.used > I64_MAX - amount ) return 1;
  }
  return 0;
}

/* The least room of the chain of k at t, of the levels that deny (not the
** shadow keys): the most a hold could take. */
static i64 chainRoom(Model *m, MKey *k, i64 t){
  MKey *c[MAXKEY];
  i64 aRes[MAXKEY], room = I64_MAX;
  int n = chainOf(m, k, c), i;
  reservedAll(m, t, aRes);
  for(i=0; i<n; i++){
    KView v;
    i64 x;
    if( c[i]->bShadow ) continue;
    keyView(m, c[i], t, aRes, &v);
    x = levelRoom(c[i], &v);
    if( x<room ) room = x;
  }
  return room;
}

/* quota_reserve (bUpto 0: key, amount, rid, ttl) and quota_reserve_upto
** (bUpto 1: key, min_amount, max_amount, rid, ttl). */
static void mReserveCommon(Model *m, i64 t, const Arg *a, int nArg, Res *r, int bUpto){
  const char *F = bUpto ? "quota_reserve_upto" : "quota_reserve";
  const int iRid = bUpto ? 3 : 2;
  char zKB[24], zRB[24];
  const char *zKey = argName(&a[0], zKB), *zRid = 0;
  i64 amount, maxAmount, ttl = optHoldTtl, grant;
  MKey *k, *c[MAXKEY];
  MReq *q;
  int n, i, bDenied, aWould[MAXKEY];
  if( !zKey ){ resErr(r, SQLITE_MISMATCH, "%s: key must be a non-empty text or an integer, not %s", F, D(&a[0])); return; }
  if( argAmount(&a[1], &amount) ){
    resErr(r, SQLITE_MISMATCH, "%s: %s must be a non-negative integer, not %s", F,
           bUpto ? "min_amount" : "amount", D(&a[1])); return;
  }
  maxAmount = amount;
  if( bUpto ){
    if( argAmount(&a[2], &maxAmount) ){
      resErr(r, SQLITE_MISMATCH, "%s: max_amount must be a non-negative integer, not %s", F, D(&a[2])); return;
    }
    if( maxAmount<amount ){
      resErr(r, SQLITE_MISMATCH, "%s: max_amount must be at least min_amount (%lld), not %lld", F, amount, maxAmount);
      return;
    }
  }
  if( nArg>iRid && a[iRid].t!=SQLITE_NULL ){
    zRid = argName(&a[iRid], zRB);
    if( !zRid ){ resErr(r, SQLITE_MISMATCH, "%s: request_id must be a non-empty text or an integer (or NULL), not %s", F, D(&a[iRid])); return; }
  }
  if( nArg>iRid+1 && a[iRid+1].t!=SQLITE_NULL ){
    const Arg *pT = &a[iRid+1];
    if( pT->t==SQLITE_TEXT ) ttl = parseDuration(pT->z);
    else if( argInt(pT, &ttl) ) ttl = -1;
    if( ttl<=0 ){ resErr(r, SQLITE_MISMATCH, "%s: ttl must be a positive duration (seconds, or text such as '15 minutes') or NULL, not %s", F, D(pT)); return; }
  }
  k = keyByName(m, zKey);
  if( !k ){ resErr(r, SQLITE_ERROR, "%s: no such quota key: '%s'", F, zKey); return; }
  if( zRid && (q = reqFind(m, k->id, zRid, t))!=0 ){
    if( q->op!=(bUpto ? R_UPTO : R_RESERVE) ){
      resErr(r, SQLITE_CONSTRAINT, "%s: request_id '%s' was already used by %s", F, zRid, opFunc(q->op));
      return;
    }
    if( q->amount!=maxAmount ){
      resErr(r, SQLITE_CONSTRAINT, "%s: request_id '%s' was already used with %s %lld", F, zRid,
             bUpto ? "max_amount" : "amount", q->amount);
      return;
    }
    if( bUpto ){
      /* the hold the first call got must meet this call's min_amount */
      MHold *h = holdById(m, q->result);
      if( h && h->amount<amount ){
        resErr(r, SQLITE_CONSTRAINT, "%s: request_id '%s' was already used for a hold of %lld units, less than min_amount %lld",
               F, zRid, h->amount, amount);
        return;
      }
    }
    sweep(m, t);
    resInt(r, q->result);
    return;
  }
  /* what is granted: amount, or for upto the least room of the chain's
  ** enforced levels up to max_amount; -1 when denied. A grant that would
  ** overflow a counter fails and changes nothing; a denial keeps the
  ** rollover the check made. aWould: the shadow levels short of the grant */
  memset(aWould, 0, sizeof(aWould));
  if( bUpto ){
    grant = chainRoom(m, k, t);
    if( grant>maxAmount ) grant = maxAmount;
    bDenied = grant<amount;
    if( !bDenied ) chainDenies(m, k, grant, t, aWould);
  }else{
    grant = amount;
    bDenied = chainDenies(m, k, amount, t, aWould);
  }
  if( !bDenied && chainOverflows(m, k, grant, t, 0) ){
    resErr(r, SQLITE_TOOBIG, "%s: amount overflows the key's 64-bit counter", F);
    return;
  }
  sweep(m, t);
  n = chainOf(m, k, c);
  for(i=0; i<n; i++) normWrite(m, c[i], t);
  if( bDenied ){ resNull(r); return; }
  for(i=0; i<n; i++){
    if( c[i]->kind==K_RATE ){
      c[i]->used += grant;               /* a bucket's units leave it now */
      bucketLog(c[i], grant);
    }
  }
  {
    MHold *h;
    i64 id = nextHoldId(m);
    h = holdPush(m);
    h->id = id;
    h->keyId = k->id; h->amount = grant; h->expires = t + ttl;
    h->state = H_LIVE; h->ended = -1;
    h->created = t; h->lastExt = t; h->lastTtl = ttl;
    if( zRid ){ h->bRid = 1; snprintf(h->zRid, NAMELEN, "%s", zRid); }
    if( zRid ) reqPut(m, k->id, zRid, bUpto ? R_UPTO : R_RESERVE, maxAmount, h->id, t);
    resInt(r, h->id);
    r->bHoldIns = 1;
    if( bUpto ){ st.upto++; if( grant<maxAmount ) st.uptoPartial++; }
    chainEvents(m, k, t, 0, aWould, 0, h->id, r);
  }
}
static void mReserve(Model *m, i64 t, const Arg *a, int nArg, Res *r){
  mReserveCommon(m, t, a, nArg, r, 0);
}
static void mReserveUpto(Model *m, i64 t, const Arg *a, int nArg, Res *r){
  mReserveCommon(m, t, a, nArg, r, 1);
}

/* Charge `amount` to the chain of k at t (normalized first); returns over. */
/* Charge `amount` to the chain of k at t (normalized first); returns over.
** `held`: the units a live hold being settled has out of every bucket of
** the chain (a bucket takes, or gives back, only the difference); bGated:
** a consume's grant (logged for the buckets' invariant). */
static int chargeChain(Model *m, MKey *k, i64 amount, i64 held, int bGated,
                       i64 ledId, i64 t){
  MKey *c[MAXKEY];
  int n = chainOf(m, k, c), i, over = 0;
  for(i=0; i<n; i++){
    i64 take = amount, cr;
    if( c[i]->kind==K_RATE ){
      take = amount - held;
      if( take<0 ){
        rateGive(&c[i]->used, &c[i]->rrem, -take);
        bucketLog(c[i], take);
        continue;
      }
      if( bGated ) bucketLog(c[i], take);
    }
    if( take>0 && creditsApply(c[i]) && (cr = keyCredits(m, c[i], t, 1))>0 ){
      /* the allowance first, then the live grants, then past the cap */
      i64 allow = c[i]->used<c[i]->cap ? c[i]->cap - c[i]->used : 0;
      i64 rest = take - (take<allow ? take : allow);
      i64 dr = rest<cr ? rest : cr;
      grantDraw(m, c[i], dr, ledId, t);
      charge(c[i], take - dr, t);
      if( rest>dr && c[i]->used>c[i]->cap ) over = 1;
      continue;
    }
    charge(c[i], take, t);
    if( take>0 && c[i]->bCap ){
      i64 used = c[i]->kind==K_ROLL ? windowSum(c[i], t) : c[i]->used;
      if( used>c[i]->cap ) over = 1;
    }
  }
  return over;
}

static void mSettle(Model *m, i64 t, const Arg *a, int nArg, Res *r){
  static const char *F = "quota_settle";
  i64 holdId, amount;
  MHold *h;
  int bMeta = 0;
  if( argInt(&a[0], &holdId) || holdId<=0 ){
    resErr(r, SQLITE_MISMATCH, "%s: hold_id must be a positive integer, not %s", F, D(&a[0])); return;
  }
  if( argAmount(&a[1], &amount) ){
    resErr(r, SQLITE_MISMATCH, "%s: amount must be a non-negative integer, not %s", F, D(&a[1])); return;
  }
  if( nArg>2 && a[2].t!=SQLITE_NULL && a[2].t!=SQLITE_TEXT ){
    resErr(r, SQLITE_MISMATCH, "%s: meta must be text (JSON welcome) or NULL, not %s", F, D(&a[2])); return;
  }
  bMeta = nArg>2 && a[2].t==SQLITE_TEXT;
  h = holdById(m, holdId);
  if( !h ){ resErr(r, SQLITE_ERROR, "%s: no such hold: %lld", F, holdId); return; }
  if( h->state==H_RELEASED ){
    resErr(r, SQLITE_ERROR, "%s: hold %lld was released", F, holdId); return;
  }
  if( h->state!=H_SETTLED && h->state!=H_ORPHANED && keyById(m, h->keyId)
   && chainOverflows(m, keyById(m, h->keyId), amount, t, 1) ){
    resErr(r, SQLITE_TOOBIG, "%s: amount overflows the key's 64-bit counter", F);
    return;
  }
  sweep(m, t);
  if( h->state==H_SETTLED ){ resInt(r, h->charged); return; }
  if( h->state==H_LIVE || h->state==H_EXPIRED ){
    MKey *k = keyById(m, h->keyId), *c[MAXKEY];
    MLed *l;
    int n, i, late = h->state==H_EXPIRED, over;
    if( !k ){ resNull(r); return; }
    n = chainOf(m, k, c);
    for(i=0; i<n; i++) normWrite(m, c[i], t);
    over = chargeChain(m, k, amount, late ? 0 : h->amount, 0, nextLedId(m), t);
    h->state = H_SETTLED; h->charged = amount; h->ended = t;
    i64 id = nextLedId(m);
    l = ledPush(m);
    l->id = id;
    snprintf(l->zKey, NAMELEN, "%s", k->zName);
    l->amount = amount; l->at = t;
    l->bRid = h->bRid; memcpy(l->zRid, h->zRid, NAMELEN);
    l->holdId = h->id;
    if( bMeta ){ l->bMeta = 1; snprintf(l->zMeta, sizeof(l->zMeta), "%s", a[2].z); }
    l->over = over; l->late = late;
    st.over += over; st.late += late;
    resInt(r, amount);
    r->bLedger = 1;
    chainEvents(m, k, t, 1, 0, l->id, h->id, r);
    return;
  }
  resNull(r);   /* orphaned: its key was deleted */
}

static void mRelease(Model *m, i64 t, const Arg *a, Res *r){
  static const char *F = "quota_release";
  i64 holdId;
  MHold *h;
  if( argInt(&a[0], &holdId) || holdId<=0 ){
    resErr(r, SQLITE_MISMATCH, "%s: hold_id must be a positive integer, not %s", F, D(&a[0])); return;
  }
  h = holdById(m, holdId);
  if( !h ){ resErr(r, SQLITE_ERROR, "%s: no such hold: %lld", F, holdId); return; }
  sweep(m, t);
  if( h->state==H_LIVE ){
    h->state = H_RELEASED; h->ended = t;
    chainReturn(m, keyById(m, h->keyId), h->amount, t);
    resInt(r, h->amount);
  }else{
    resInt(r, 0);
  }
}

/* A request id already used within the idempotency window by a call of
** `op` (consume, record, grant): the first call's result, or the error for
** another function or amount; 1 when *r is the answer. */
static int reqReplay(Model *m, i64 keyId, const char *zRid, int op, i64 amount,
                     i64 t, const char *F, Res *r){
  MReq *q = reqFind(m, keyId, zRid, t);
  if( q==0 ) return 0;
  if( q->op!=op ){
    resErr(r, SQLITE_CONSTRAINT, "%s: request_id '%s' was already used by %s", F, zRid, opFunc(q->op));
  }else if( q->amount!=amount ){
    resErr(r, SQLITE_CONSTRAINT, "%s: request_id '%s' was already used with amount %lld", F, zRid, q->amount);
  }else{
    sweep(m, t);
    resInt(r, q->result);
  }
  return 1;
}

static void mCharge(Model *m, i64 t, int op, const Arg *a, int nArg, Res *r){
  const char *F = opFunc(op);
  char zKB[24], zRB[24];
  const char *zKey = argName(&a[0], zKB), *zRid = 0;
  i64 amount;
  MKey *k, *c[MAXKEY];
  MLed *l;
  int n, i, bMeta = 0, over, bDenied, aWould[MAXKEY];
  if( !zKey ){ resErr(r, SQLITE_MISMATCH, "%s: key must be a non-empty text or an integer, not %s", F, D(&a[0])); return; }
  if( argAmount(&a[1], &amount) ){
    resErr(r, SQLITE_MISMATCH, "%s: amount must be a non-negative integer, not %s", F, D(&a[1])); return;
  }
  if( nArg>2 && a[2].t!=SQLITE_NULL ){
    zRid = argName(&a[2], zRB);
    if( !zRid ){ resErr(r, SQLITE_MISMATCH, "%s: request_id must be a non-empty text or an integer (or NULL), not %s", F, D(&a[2])); return; }
  }
  if( nArg>3 && a[3].t!=SQLITE_NULL ){
    if( a[3].t!=SQLITE_TEXT ){ resErr(r, SQLITE_MISMATCH, "%s: meta must be text (JSON welcome) or NULL, not %s", F, D(&a[3])); return; }
    bMeta = 1;
  }
  k = keyByName(m, zKey);
  if( !k ){
    if( op==R_CONSUME ){
      resErr(r, SQLITE_ERROR, "%s: no such quota key: '%s'", F, zKey); return;
    }
    sweep(m, t);
    resNull(r);
    return;
  }
  if( zRid && reqReplay(m, k->id, zRid, op, amount, t, F, r) ) return;
  memset(aWould, 0, sizeof(aWould));
  bDenied = op==R_CONSUME && chainDenies(m, k, amount, t, aWould);
  if( !bDenied && chainOverflows(m, k, amount, t, 1) ){
    resErr(r, SQLITE_TOOBIG, "%s: amount overflows the key's 64-bit counter", F);
    return;
  }
  sweep(m, t);
  n = chainOf(m, k, c);
  for(i=0; i<n; i++) normWrite(m, c[i], t);
  if( bDenied ){ resNull(r); return; }
  over = chargeChain(m, k, amount, 0, op==R_CONSUME, nextLedId(m), t);
  if( op==R_CONSUME && k->kind==K_RATE ) st.rateCalls++;
  {
    i64 id = nextLedId(m);
    l = ledPush(m);
    l->id = id;
  }
  snprintf(l->zKey, NAMELEN, "%s", zKey);
  l->amount = amount; l->at = t;
  if( zRid ){ l->bRid = 1; snprintf(l->zRid, NAMELEN, "%s", zRid); }
  if( bMeta ){ l->bMeta = 1; snprintf(l->zMeta, sizeof(l->zMeta), "%s", a[3].z); }
  l->over = over;
  st.over += over;
  if( zRid ) reqPut(m, k->id, zRid, op, amount, l->id, t);
  resInt(r, l->id);
  r->bLedger = 1;
  chainEvents(m, k, t, 1, aWould, l->id, 0, r);
}

static void jsonStr(char *z, size_t n, const char *s){
  size_t j = 0;
  if( j<n ) z[j++] = '"';
  for(; *s && j+8<n; s++){
    unsigned char ch = (unsigned char)*s;
    if( ch=='"' || ch=='\\' ){ z[j++] = '\\'; z[j++] = (char)ch; }
    else if( ch<0x20 ){ j += (size_t)snprintf(z+j, n-j, "\\u%04x", ch); }
    else z[j++] = (char)ch;
  }
  if( j<n-1 ) z[j++] = '"';
  z[j] = 0;
}

/* quota_check (bStatus 0) and quota_status (bStatus 1). */
static void mCheck(Model *m, i64 t, int bStatus, const Arg *a, int nArg, Res *r){
  const char *F = bStatus ? "quota_status" : "quota_check";
  char zKB[24];
  const char *zKey = argName(&a[0], zKB);
  i64 amount = 1, aRes[MAXKEY];
  MKey *k, *c[MAXKEY];
  KView v[MAXKEY];
  int n, i, bAllowed = 1, bWouldDeny = 0, iBest = -1;
  i64 best = 0, retry = -1;
  if( !zKey ){ resErr(r, SQLITE_MISMATCH, "%s: key must be a non-empty text or an integer, not %s", F, D(&a[0])); return; }
  if( nArg>1 && argAmount(&a[1], &amount) ){
    resErr(r, SQLITE_MISMATCH, "%s: amount must be a non-negative integer, not %s", F, D(&a[1])); return;
  }
  k = keyByName(m, zKey);
  if( !k ){ resErr(r, SQLITE_ERROR, "%s: no such quota key: '%s'", F, zKey); return; }
  n = chainOf(m, k, c);
  reservedAll(m, t, aRes);
  for(i=0; i<n; i++){
    keyView(m, c[i], t, aRes, &v[i]);
    if( levelRoom(c[i], &v[i])<amount ){
      bWouldDeny = 1;
      if( !c[i]->bShadow ) bAllowed = 0;
    }
  }
  if( !bStatus ){ resInt(r, bAllowed); return; }
  /* The reported level: of the levels that deny (a shadow key never does),
  ** the one that frees room last (never beats any time; the nearest wins a
  ** tie); when all allow, the capped level with the least room (nearest on
  ** a tie), else the key. */
  for(i=0; i<n; i++){
    i64 secs;
    if( c[i]->bShadow || levelRoom(c[i], &v[i])>=amount ) continue;
    secs = retryAfter(c[i], &v[i], amount, t);
    if( iBest<0 || (best!=-1 && (secs==-1 || secs>best)) ){ iBest = i; best = secs; }
  }
  retry = best;
  if( iBest<0 ){
    for(i=0; i<n; i++){
      if( c[i]->bCap && (iBest<0 || levelRoom(c[i], &v[i])<levelRoom(c[iBest], &v[iBest])) ){
        iBest = i;
      }
    }
    if( iBest<0 ) iBest = 0;
    retry = -1;
  }
  {
    char zJ[1200], zK[80], zL[80], zCap[24], zRem[24], zReset[32], zRetry[24];
    MKey *b = c[iBest];
    KView *bv = &v[iBest];
    jsonStr(zK, sizeof(zK), zKey);
    jsonStr(zL, sizeof(zL), b->zName);
    if( b->bCap ){
      snprintf(zCap, sizeof(zCap), "%lld", b->cap);
      snprintf(zRem, sizeof(zRem), "%lld", levelRoom(b, bv));
    }else{
      strcpy(zCap, "null"); strcpy(zRem, "null");
    }
    if( bv->bPeriod ){
      char zT[20];
      fmtTime(bv->pe, zT);
      snprintf(zReset, sizeof(zReset), "\"%s\"", zT);
    }else{
      strcpy(zReset, "null");
    }
    if( retry>=0 ) snprintf(zRetry, sizeof(zRetry), "%lld", retry);
    else strcpy(zRetry, "null");
    snprintf(zJ, sizeof(zJ), "{\"key\":%s,\"allowed\":%s,\"code\":%s,\"cap\":%s,"
        "\"used\":%lld,\"reserved\":%lld,\"remaining\":%s,\"resets_at\":%s,"
        "\"retry_after\":%s,\"limited_by\":%s,\"credits\":%lld,\"would_deny\":%s}", zK,
        bAllowed ? "true" : "false",
        bAllowed ? "null" : (b->kind==K_LIFE ? "\"insufficient_quota\"" : "\"rate_limit_exceeded\""),
        zCap, bv->used, bv->reserved, zRem, zReset, zRetry, zL, bv->credits,
        bWouldDeny ? "true" : "false");
    resText(r, zJ);
  }
}

/* The retention, in seconds, of rows of the key named zKey (ledger rows,
** events, ended grants): the key's own, else the table's; -1 for ever. */
static i64 retentionOf(Model *m, const char *zKey){
  MKey *k = keyByName(m, zKey);
  if( k && k->eRet==RET_SECS ) return k->ret;
  if( k && k->eRet==RET_FOREVER ) return -1;
  return optRetention;
}

/* quota_purge(): one bounded step. Of each of the request ids, the ended
** holds and the ledger it examines at most purge_limit rows: the oldest
** request ids and ended holds, and the ledger rows after where its previous
** call stopped (starting over once a call reaches the end). */
static void mPurge(Model *m, i64 t, Res *r){
  i64 nRemoved = 0, maxHold, maxLed, nSeen = 0, last = 0;
  int i, j, n;
  sweep(m, t);
  /* request ids at least the idempotency window old */
  for(i=j=0; i<m->nReq; i++){
    if( i<optPurgeLimit && m->aReq[i].at <= t - optIdem ){
      if( m->aReq[i].op==R_GRANT ){
        /* the grant it made may be made again under that id */
        for(n=0; n<m->nGrant; n++){
          MGrant *g = &m->aGrant[n];
          if( g->keyId==m->aReq[i].keyId && g->bRid && strcmp(g->zRid, m->aReq[i].zRid)==0 ){
            g->bReqGone = 1;
          }
        }
      }
      nRemoved++;
      continue;
    }
    m->aReq[j++] = m->aReq[i];
  }
  m->nReq = j;
  /* holds that ended (or expired) at least the window ago; never the newest */
  maxHold = m->nHold ? m->aHold[m->nHold-1].id : 0;
  for(i=j=n=0; i<m->nHold; i++){
    MHold *h = &m->aHold[i];
    i64 end = h->ended>=0 ? h->ended : h->expires;
    if( h->state!=H_LIVE && h->id<maxHold && n++<optPurgeLimit && end <= t - optIdem ){
      nRemoved++;
      continue;
    }
    m->aHold[j++] = *h;
  }
  m->nHold = j;
  /* ledger rows past their retention: the key's (by name), else the table's */
  maxLed = m->nLed ? m->aLed[m->nLed-1].id : 0;
  for(i=j=0; i<m->nLed; i++){
    MLed *l = &m->aLed[i];
    if( l->id>m->purgePos && nSeen<optPurgeLimit ){
      i64 keep = retentionOf(m, l->zKey);
      nSeen++;
      last = l->id;
      if( keep>=0 && l->id<maxLed && t - l->at >= keep ){ nRemoved++; continue; }
    }
    m->aLed[j++] = *l;
  }
  m->nLed = j;
  m->purgePos = nSeen<optPurgeLimit ? 0 : last;
  /* events, the same way, from their own cursor */
  {
    i64 maxEvt = m->nEvt ? m->aEvt[m->nEvt-1].id : 0;
    nSeen = 0; last = 0;
    for(i=j=0; i<m->nEvt; i++){
      MEvt *e = &m->aEvt[i];
      if( e->id>m->eventPos && nSeen<optPurgeLimit ){
        i64 keep = retentionOf(m, e->zKey);
        nSeen++;
        last = e->id;
        if( keep>=0 && e->id<maxEvt && t - e->at >= keep ){ nRemoved++; continue; }
      }
      m->aEvt[j++] = *e;
    }
    m->nEvt = j;
    m->eventPos = nSeen<optPurgeLimit ? 0 : last;
  }
  /* grants that ended (used up, voided, expired), the newest never, once
  ** their key's retention (by name, else the table's) has passed since
  ** they ended (the expiry; since made, for one that ended before it) and
  ** no ledger row they were drawn for is left: the oldest purge_limit of
  ** them, each with its draws */
  {
    i64 maxG = m->nGrant ? m->aGrant[m->nGrant-1].id : 0, nDel = 0;
    int d, e;
    for(i=j=0; i<m->nGrant; i++){
      MGrant *g = &m->aGrant[i];
      int bExpired = g->bExp && g->expires<=t, bDrawn = 0;
      i64 keep = retentionOf(m, g->zKey);
      for(d=0; d<m->nDraw && !bDrawn; d++){
        if( m->aDraw[d].grantId!=g->id ) continue;
        for(e=0; e<m->nLed; e++) if( m->aLed[e].id==m->aDraw[d].ledgerId ){ bDrawn = 1; break; }
      }
      if( g->id<maxG && (g->remaining==0 || g->voided>=0 || bExpired) && keep>=0
       && (bExpired ? g->expires : g->created) <= t - keep && !bDrawn
       && nDel<optPurgeLimit ){
        nDel++;
        for(d=e=0; d<m->nDraw; d++){
          if( m->aDraw[d].grantId!=g->id ) m->aDraw[e++] = m->aDraw[d];
        }
        m->nDraw = e;
        continue;
      }
      m->aGrant[j++] = *g;
    }
    m->nGrant = j;
    nRemoved += nDel;
    st.grantsPurged += nDel;
  }
  resInt(r, nRemoved);
}

/* A time argument as the driver writes them: 'YYYY-MM-DD HH:MM:SS'. */
static int argTime(const Arg *a, i64 *pT){
  long long y;
  int mo, d, h, mi, se;
  if( a->t!=SQLITE_TEXT ) return 1;
  if( sscanf(a->z, "%lld-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &se)!=6 ) return 1;
  *pT = mkTime(y, mo, d, (i64)h*3600 + mi*60 + se);
  return 0;
}

/* quota_grant(key, amount [, expires [, priority [, request_id [, meta]]]]):
** the grant id (reference.md, "quota_grant"). */
static void mGrant(Model *m, i64 t, const Arg *a, int nArg, Res *r){
  static const char *F = "quota_grant";
  char zKB[24], zRB[24];
  const char *zKey = argName(&a[0], zKB), *zRid = 0;
  i64 amount, priority = 0, expires = 0, open;
  int eExp = 0;                           /* 0 never, 1 a duration, 2 a time */
  MKey *k;
  MGrant *g;
  if( !zKey ){ resErr(r, SQLITE_MISMATCH, "%s: key must be a non-empty text or an integer, not %s", F, D(&a[0])); return; }
  if( argInt(&a[1], &amount) || amount<=0 ){
    resErr(r, SQLITE_MISMATCH, "%s: amount must be a positive integer, not %s", F, D(&a[1])); return;
  }
  if( nArg>2 && a[2].t!=SQLITE_NULL ){
    /* an integer is a duration, of any sign (0 or less: not in the
    ** future, below); a text a positive duration, else a time */
    i64 ttl = -1;
    if( a[2].t!=SQLITE_TEXT && argInt(&a[2], &ttl)==0 ){
      eExp = 1;
      expires = ttl>TIME_MAX - t ? TIME_MAX : t + ttl;
    }else if( a[2].t==SQLITE_TEXT && (ttl = parseDuration(a[2].z))>0 ){
      eExp = 1;
      expires = ttl>TIME_MAX - t ? TIME_MAX : t + ttl;
    }else if( argTime(&a[2], &expires)==0 ){
      eExp = 2;
    }else{
      resErr(r, SQLITE_MISMATCH, "%s: expires must be NULL, a positive duration (seconds, or text such as"
             " '30 days') or a time ('2027-01-01 00:00:00'), not %s", F, D(&a[2]));
      return;
    }
  }
  if( nArg>3 && a[3].t!=SQLITE_NULL && argInt(&a[3], &priority) ){
    resErr(r, SQLITE_MISMATCH, "%s: priority must be an integer or NULL, not %s", F, D(&a[3])); return;
  }
  if( nArg>4 && a[4].t!=SQLITE_NULL ){
    zRid = argName(&a[4], zRB);
    if( !zRid ){ resErr(r, SQLITE_MISMATCH, "%s: request_id must be a non-empty text or an integer (or NULL), not %s", F, D(&a[4])); return; }
  }
  if( nArg>5 && a[5].t!=SQLITE_NULL && a[5].t!=SQLITE_TEXT ){
    resErr(r, SQLITE_MISMATCH, "%s: meta must be text (JSON welcome) or NULL, not %s", F, D(&a[5])); return;
  }
  k = keyByName(m, zKey);
  if( !k ){ resErr(r, SQLITE_ERROR, "%s: no such quota key: '%s'", F, zKey); return; }
  if( !k->bCap ){
    resErr(r, SQLITE_ERROR, "%s: key '%s' has no cap (cap is NULL): grants are for capped keys", F, zKey);
    return;
  }
  if( !creditsApply(k) ){
    resErr(r, SQLITE_ERROR, "%s: key '%s' is a rolling window or a token bucket: grants are for"
           " lifetime and calendar keys", F, zKey);
    return;
  }
  if( zRid && reqReplay(m, k->id, zRid, R_GRANT, amount, t, F, r) ) return;
  if( eExp && expires<=t ){
    char zT[20];
    fmtTime(expires, zT);
    resErr(r, SQLITE_ERROR, "%s: expires is not in the future: %s", F, zT);
    return;
  }
  open = keyCredits(m, k, t, 0);
  if( amount>I64_MAX - open ){
    resErr(r, SQLITE_TOOBIG, "%s: the open grants of key '%s' hold %lld units: %lld more would"
           " overflow its 64-bit credits", F, zKey, open, amount);
    return;
  }
  /* the invariant: a request id grants once (within the idempotency window) */
  if( zRid ){
    int i;
    for(i=0; i<m->nGrant; i++){
      MGrant *o = &m->aGrant[i];
      if( o->keyId==k->id && o->bRid && !o->bReqGone && strcmp(o->zRid, zRid)==0
       && t - o->created < optIdem ){
        fail("request id '%s' of key %s would grant twice (grant %lld)", zRid, zKey, o->id);
      }
    }
  }
  sweep(m, t);
  normWrite(m, k, t);
  g = grantPush(m);
  snprintf(g->zKey, NAMELEN, "%s", k->zName);
  g->keyId = k->id;
  g->amount = g->remaining = amount;
  g->priority = priority; g->created = t;
  g->bExp = eExp!=0; g->expires = expires;
  g->voided = -1;
  if( zRid ){ g->bRid = 1; snprintf(g->zRid, NAMELEN, "%s", zRid); }
  if( zRid ) reqPut(m, k->id, zRid, R_GRANT, amount, g->id, t);
  st.grants++;
  resInt(r, g->id);
}

/* quota_void(grant_id): the units voided; 0 for a grant used up, expired or
** voided already. */
static void mVoid(Model *m, i64 t, const Arg *a, Res *r){
  static const char *F = "quota_void";
  i64 id;
  MGrant *g;
  if( argInt(&a[0], &id) || id<=0 ){
    resErr(r, SQLITE_MISMATCH, "%s: grant_id must be a positive integer, not %s", F, D(&a[0])); return;
  }
  g = grantById(m, id);
  if( !g ){ resErr(r, SQLITE_ERROR, "%s: no such grant: %lld", F, id); return; }
  /* it reads no key for a write: no holds expire (no sweep) */
  if( grantOpen(g) && !(g->bExp && g->expires<=t) ){
    g->voided = g->remaining; g->remaining = 0;
    st.voids++;
    resInt(r, g->voided);
  }else{
    resInt(r, 0);
  }
}

/* quota_hold(hold_id): the hold's JSON as of t, NULL when there is none. */
static void mHold(Model *m, i64 t, const Arg *a, Res *r){
  static const char *F = "quota_hold";
  i64 holdId;
  MHold *h;
  MKey *k;
  char zK[80], zC[20], zE[20], zCh[24], zJ[400];
  const char *zState;
  if( argInt(&a[0], &holdId) || holdId<=0 ){
    resErr(r, SQLITE_MISMATCH, "%s: hold_id must be a positive integer, not %s", F, D(&a[0])); return;
  }
  h = holdById(m, holdId);
  if( !h ){ resNull(r); return; }
  k = keyById(m, h->keyId);
  switch( h->state ){
    case H_LIVE:    zState = t<h->expires ? "live" : "expired"; break;
    case H_SETTLED: zState = "settled"; break;
    case H_EXPIRED: zState = "expired"; break;
    default:        zState = "released"; break;
  }
  if( k ) jsonStr(zK, sizeof(zK), k->zName); else strcpy(zK, "null");
  if( h->state==H_SETTLED ) snprintf(zCh, sizeof(zCh), "%lld", h->charged);
  else strcpy(zCh, "null");
  fmtTime(h->created, zC);
  fmtTime(h->expires>TIME_MAX ? TIME_MAX : h->expires, zE);
  snprintf(zJ, sizeof(zJ), "{\"id\":%lld,\"key\":%s,\"amount\":%lld,\"state\":\"%s\","
           "\"charged\":%s,\"created\":\"%s\",\"expires_at\":\"%s\"}",
           h->id, zK, h->amount, zState, zCh, zC, zE);
  resText(r, zJ);
}

/* quota_extend(hold_id, ttl): a live hold expires ttl from t (NULL: the
** table's hold_ttl), at most at the last second of 9999; NULL for one that
** ended (the call sweeps first: one whose ttl ran out has ended). */
static void mExtend(Model *m, i64 t, const Arg *a, Res *r){
  static const char *F = "quota_extend";
  i64 holdId, ttl = optHoldTtl;
  MHold *h;
  if( argInt(&a[0], &holdId) || holdId<=0 ){
    resErr(r, SQLITE_MISMATCH, "%s: hold_id must be a positive integer, not %s", F, D(&a[0])); return;
  }
  if( a[1].t!=SQLITE_NULL ){
    if( a[1].t==SQLITE_TEXT ) ttl = parseDuration(a[1].z);
    else if( argInt(&a[1], &ttl) ) ttl = -1;
    if( ttl<=0 ){ resErr(r, SQLITE_MISMATCH, "%s: ttl must be a positive duration (seconds, or text such as '15 minutes') or NULL, not %s", F, D(&a[1])); return; }
  }
  h = holdById(m, holdId);
  if( !h ){ resErr(r, SQLITE_ERROR, "%s: no such hold: %lld", F, holdId); return; }
  sweep(m, t);
  st.extends++;
  if( h->state==H_LIVE && h->expires>t ){
    char zT[20];
    h->expires = t + ttl > TIME_MAX ? TIME_MAX : t + ttl;
    h->lastExt = t; h->lastTtl = ttl;
    fmtTime(h->expires, zT);
    resText(r, zT);
  }else{
    st.extendsEnded++;
    resNull(r);
  }
}

/* =================================================== model: the quota table */

/* The columns an INSERT or UPDATE gives. For C_ANCHOR, Arg.i holds the
** time the text means (the generator knows it), or I64_MIN for a text that
** is not a time. */
enum { C_KEY, C_CAP, C_PERIOD, C_ANCHOR, C_PARENT, C_RETENTION, C_USED,
       C_RESERVED, C_NOTE, C_ALERT, C_ENFORCE, C_ROLLOVER, C_N };
static const char *azCol[C_N] = {
  "key", "cap", "period", "anchor", "parent", "retention", "used", "reserved", "note",
  "alert", "enforce", "rollover"
};
typedef struct KWrite { int bSet[C_N]; Arg v[C_N]; } KWrite;

/* A period text: 0 and its kind, window and canonical text, or 1. */
/* "N per [M] unit" (the text after "rate "): 0 and the rate, the length
** and the canonical text, or 1. */
static int parseRate(const char *p, i64 *pRate, i64 *pLen, char *zCanon){
  static const struct { const char *zUnit; i64 mul; } aUnit[] = {
    {"second", 1}, {"minute", 60}, {"hour", 3600}, {"day", 86400}
  };
  i64 nRate = 0, num = 1, mul = 1;
  int nDigit = 0, iUnit = 0, i, bNum = 0;
  while( *p==' ' ) p++;
  while( *p>='0' && *p<='9' ){
    if( nDigit>=18 ) return 1;
    nRate = nRate*10 + (*p-'0'); p++; nDigit++;
  }
  if( nDigit==0 || nRate<=0 || *p!=' ' ) return 1;
  while( *p==' ' ) p++;
  if( sqlite3_strnicmp(p, "per ", 4)!=0 ) return 1;
  p += 4;
  while( *p==' ' ) p++;
  if( *p>='0' && *p<='9' ){
    num = 0; nDigit = 0; bNum = 1;
    while( *p>='0' && *p<='9' ){
      if( nDigit>=12 ) return 1;
      num = num*10 + (*p-'0'); p++; nDigit++;
    }
    while( *p==' ' ) p++;
  }
  if( *p ){
    int bFound = 0;
    for(i=0; i<4 && !bFound; i++){
      size_t l = strlen(aUnit[i].zUnit);
      if( sqlite3_strnicmp(p, aUnit[i].zUnit, (int)l)==0 ){
        const char *e = p+l;
        if( *e=='s' || *e=='S' ) e++;
        while( *e==' ' ) e++;
        if( *e==0 ){ bFound = 1; mul = aUnit[i].mul; iUnit = i; }
      }
    }
    if( !bFound ) return 1;
  }else if( !bNum ){
    return 1;
  }
  if( num<=0 || num*mul > (i64)100*366*86400 ) return 1;
  *pRate = nRate;
  *pLen = num*mul;
  if( num==1 ) sprintf(zCanon, "rate %lld per %s", nRate, aUnit[iUnit].zUnit);
  else sprintf(zCanon, "rate %lld per %lld %ss", nRate, num, aUnit[iUnit].zUnit);
  return 0;
}

static int parsePeriod(const char *z0, int *pKind, i64 *pLen, i64 *pRate, char *zCanon){
  static const char *azCal[] = {"lifetime", "hour", "day", "week", "month", "year"};
  char z[64];
  int n, i;
  *pRate = 0;
  while( *z0==' ' ) z0++;
  snprintf(z, sizeof(z), "%s", z0);
  n = (int)strlen(z);
  while( n>0 && z[n-1]==' ' ) z[--n] = 0;
  for(i=0; i<6; i++){
    if( sqlite3_stricmp(z, azCal[i])==0 ){
      *pKind = i; *pLen = 0;
      strcpy(zCanon, azCal[i]);
      return 0;
    }
  }
  if( n>5 && sqlite3_strnicmp(z, "rate", 4)==0 && z[4]==' ' ){
    if( parseRate(z+5, pRate, pLen, zCanon) ) return 1;
    *pKind = K_RATE;
    return 0;
  }
  if( n>8 && sqlite3_strnicmp(z, "rolling", 7)==0 && z[7]==' ' ){
    static const struct { const char *zUnit; i64 mul; } aUnit[] = {
      {"second", 1}, {"minute", 60}, {"hour", 3600}, {"day", 86400}
    };
    const char *p = z+8;
    i64 num = 0, mul = 1;
    int nDigit = 0, iUnit = 0;
    while( *p==' ' ) p++;
    while( *p>='0' && *p<='9' ){ num = num*10 + (*p-'0'); p++; nDigit++; }
    if( nDigit==0 ) return 1;
    while( *p==' ' ) p++;
    if( *p ){
      int bFound = 0;
      for(i=0; i<4 && !bFound; i++){
        size_t l = strlen(aUnit[i].zUnit);
        if( sqlite3_strnicmp(p, aUnit[i].zUnit, (int)l)==0 ){
          const char *e = p+l;
          if( *e=='s' || *e=='S' ) e++;
          while( *e==' ' ) e++;
          if( *e==0 ){ bFound = 1; mul = aUnit[i].mul; iUnit = i; }
        }
      }
      if( !bFound ) return 1;
    }
    if( num<=0 || num*mul > (i64)100*366*86400 ) return 1;
    *pKind = K_ROLL;
    *pLen = num*mul;
    sprintf(zCanon, "rolling %lld %s%s", num, aUnit[iUnit].zUnit, num==1 ? "" : "s");
    return 0;
  }
  return 1;
}

/* The validated settings of a write. */
typedef struct KSet {
  int bCap; i64 cap;
  int kind; i64 len; char zPeriod[64]; i64 rate;
  int bAnchor; i64 anchor;
  i64 parent;
  int eRet; i64 ret;
  i64 used;
  int nAlert; i64 aAlert[MAXALERT];
  int bShadow;
} KSet;

static int vCap(const Arg *a, KSet *s, Res *r){
  s->bCap = a->t!=SQLITE_NULL;
  if( !s->bCap ) return 0;
  if( argInt(a, &s->cap)==0 && s->cap>=0 ) return 0;
  resErr(r, SQLITE_CONSTRAINT, "quota: cap must be NULL or a non-negative integer, not %s", D(a));
  return 1;
}
static int vPeriod(const Arg *a, KSet *s, Res *r){
  s->zPeriod[0] = 0;
  if( a->t==SQLITE_NULL ){ s->kind = K_LIFE; s->len = 0; s->rate = 0; return 0; }
  if( a->t==SQLITE_TEXT && parsePeriod(a->z, &s->kind, &s->len, &s->rate, s->zPeriod)==0 ) return 0;
  resErr(r, SQLITE_CONSTRAINT, "quota: unknown period '%s': use " PERIODS, a->z);
  return 1;
}
/* A bucket's cap is its size: never NULL. */
static int vBucket(const KSet *s, Res *r){
  if( s->kind==K_RATE && !s->bCap ){
    resErr(r, SQLITE_CONSTRAINT, "quota: cap must not be NULL on a key with period '%s':"
           " a token bucket's cap is its size", s->zPeriod);
    return 1;
  }
  return 0;
}
static int vAnchor(const Arg *a, KSet *s, Res *r){
  s->bAnchor = a->t!=SQLITE_NULL;
  if( !s->bAnchor ) return 0;
  if( a->i!=(i64)(-I64_MAX-1) ){ s->anchor = a->i; return 0; }
  resErr(r, SQLITE_CONSTRAINT, "quota: anchor is not a time: '%s' (use 'YYYY-MM-DD HH:MM:SS' UTC, or anything datetime() reads)", a->z);
  return 1;
}
static int vRetention(const Arg *a, KSet *s, Res *r){
  s->eRet = RET_NULL;
  if( a->t==SQLITE_NULL ) return 0;
  if( a->t==SQLITE_TEXT ){
    if( sqlite3_stricmp(a->z, "forever")==0 ){ s->eRet = RET_FOREVER; return 0; }
    s->ret = parseDuration(a->z);
    if( s->ret>=0 ){ s->eRet = RET_SECS; return 0; }
  }else if( argInt(a, &s->ret)==0 && s->ret>=0 ){
    s->eRet = RET_SECS; return 0;
  }
  resErr(r, SQLITE_CONSTRAINT, "quota: retention must be NULL, 'forever' or a non-negative duration, not %s", D(a));
  return 1;
}
static int vUsed(const Arg *a, int bUpdate, KSet *s, Res *r){
  if( a->t==SQLITE_NULL && !bUpdate ){ s->used = 0; return 0; }
  if( a->t!=SQLITE_NULL && argInt(a, &s->used)==0 && s->used>=0 ) return 0;
  resErr(r, SQLITE_CONSTRAINT, "quota: used must be a non-negative integer, not %s", D(a));
  return 1;
}
#define ALERT_RULE "NULL or a comma list of thresholds such as '80%, 100%' (at most 16," \
  " each a positive whole number of units, or of percent of cap with %)"
static int vAlert(const Arg *a, KSet *s, Res *r){
  i64 n;
  s->nAlert = 0;
  if( a->t==SQLITE_NULL ) return 0;
  if( a->t==SQLITE_TEXT && parseAlert(a->z, s->aAlert, &s->nAlert)==0 ) return 0;
  if( (a->t==SQLITE_INTEGER || a->t==SQLITE_FLOAT) && argInt(a, &n)==0 && n>0 ){
    s->aAlert[0] = n; s->nAlert = 1; return 0;
  }
  s->nAlert = 0;
  resErr(r, SQLITE_CONSTRAINT, "quota: alert must be %s, not %s", ALERT_RULE, D(a));
  return 1;
}
static int vEnforce(const Arg *a, KSet *s, Res *r){
  s->bShadow = 0;
  if( a->t==SQLITE_NULL ) return 0;
  if( a->t==SQLITE_TEXT ){
    char z[64];
    int n;
    const char *p = a->z;
    while( *p==' ' ) p++;
    snprintf(z, sizeof(z), "%s", p);
    n = (int)strlen(z);
    while( n>0 && z[n-1]==' ' ) z[--n] = 0;
    if( sqlite3_stricmp(z, "hard")==0 ) return 0;
    if( sqlite3_stricmp(z, "shadow")==0 ){ s->bShadow = 1; return 0; }
  }
  resErr(r, SQLITE_CONSTRAINT, "quota: enforce must be 'hard', 'shadow' or NULL (hard), not %s", D(a));
  return 1;
}

/* The parent: its id in s->parent (0 for none). self is 0 on insert. */
static int vParent(Model *m, const Arg *a, const char *zKey, MKey *self, KSet *s, Res *r){
  char zB[24];
  const char *zP;
  MKey *p;
  s->parent = 0;
  if( a->t==SQLITE_NULL ) return 0;
  zP = (a->t==SQLITE_TEXT || a->t==SQLITE_INTEGER) ? argName(a, zB) : 0;
  if( zP==0 ){ resErr(r, SQLITE_CONSTRAINT, "quota: parent must be NULL or a key, not %s", D(a)); return 1; }
  if( strcmp(zP, zKey)==0 ){
    resErr(r, SQLITE_CONSTRAINT, "quota: parent chain has a cycle: %s -> %s", zKey, zKey);
    return 1;
  }
  p = keyByName(m, zP);
  if( !p ){ resErr(r, SQLITE_CONSTRAINT, "quota: no such parent key: '%s'", zP); return 1; }
  s->parent = p->id;
  if( self ){
    char zPath[400];
    MKey *q = p;
    snprintf(zPath, sizeof(zPath), "%s -> %s", zKey, zP);
    while( q->id!=self->id && q->parent ){
      q = keyById(m, q->parent);
      if( !q ) break;
      snprintf(zPath+strlen(zPath), sizeof(zPath)-strlen(zPath), " -> %s", q->zName);
    }
    if( q && q->id==self->id ){
      resErr(r, SQLITE_CONSTRAINT, "quota: parent chain has a cycle: %s", zPath);
      return 1;
    }
  }
  return 0;
}

/* rollover: NULL or a non-negative integer (kept on any key, used by
** calendar keys only). */
static int vRollover(const Arg *a, int *pb, i64 *pv, Res *r){
  *pb = 0; *pv = 0;
  if( a->t==SQLITE_NULL ) return 0;
  if( argInt(a, pv)==0 && *pv>=0 ){ *pb = 1; return 0; }
  resErr(r, SQLITE_CONSTRAINT, "quota: rollover must be NULL or a non-negative integer, not %s", D(a));
  return 1;
}
static void mInsert(Model *m, i64 t, const KWrite *w, Res *r){
  char zB[24];
  const char *zKey = 0;
  KSet s;
  MKey *k;
  Arg aN = aNull();
  int bRoll;
  i64 roll;
  memset(&s, 0, sizeof(s));
  if( w->bSet[C_RESERVED] && w->v[C_RESERVED].t!=SQLITE_NULL ){
    resErr(r, SQLITE_CONSTRAINT, "quota: column reserved is read-only"); return;
  }
  if( w->v[C_KEY].t==SQLITE_TEXT || w->v[C_KEY].t==SQLITE_INTEGER ) zKey = argName(&w->v[C_KEY], zB);
  if( !zKey ){
    resErr(r, SQLITE_CONSTRAINT, "quota: key must be a non-empty text or an integer, not %s",
           D(&w->v[C_KEY]));
    return;
  }
  if( keyByName(m, zKey) ){ resErr(r, SQLITE_CONSTRAINT, "quota: key '%s' already exists", zKey); return; }
  if( vCap(w->bSet[C_CAP] ? &w->v[C_CAP] : &aN, &s, r) ) return;
  if( vPeriod(w->bSet[C_PERIOD] ? &w->v[C_PERIOD] : &aN, &s, r) ) return;
  if( vBucket(&s, r) ) return;
  if( vAnchor(w->bSet[C_ANCHOR] ? &w->v[C_ANCHOR] : &aN, &s, r) ) return;
  if( vParent(m, w->bSet[C_PARENT] ? &w->v[C_PARENT] : &aN, zKey, 0, &s, r) ) return;
  if( vRetention(w->bSet[C_RETENTION] ? &w->v[C_RETENTION] : &aN, &s, r) ) return;
  if( vUsed(w->bSet[C_USED] ? &w->v[C_USED] : &aN, 0, &s, r) ) return;
  if( vAlert(w->bSet[C_ALERT] ? &w->v[C_ALERT] : &aN, &s, r) ) return;
  if( vEnforce(w->bSet[C_ENFORCE] ? &w->v[C_ENFORCE] : &aN, &s, r) ) return;
  if( vRollover(w->bSet[C_ROLLOVER] ? &w->v[C_ROLLOVER] : &aN, &bRoll, &roll, r) ) return;
  if( m->nKey>=MAXKEY ){ fprintf(stderr, "model: too many keys\n"); exit(2); }
  k = &m->aKey[m->nKey++];
  memset(k, 0, sizeof(*k));
  k->id = ++m->keySeq;
  snprintf(k->zName, NAMELEN, "%s", zKey);
  k->bCap = s.bCap; k->cap = s.cap;
  k->kind = s.kind; k->len = s.len; strcpy(k->zPeriod, s.zPeriod);
  k->rate = s.rate;
  k->bAnchor = s.bAnchor; k->anchor = s.anchor;
  k->parent = s.parent;
  k->eRet = s.eRet; k->ret = s.ret;
  if( k->kind==K_RATE ) k->pstart = t;   /* refilled up to now */
  if( w->bSet[C_NOTE] && w->v[C_NOTE].t!=SQLITE_NULL ){
    k->bNote = 1; snprintf(k->zNote, sizeof(k->zNote), "%s", w->v[C_NOTE].z);
  }
  if( isCal(k->kind) ){
    i64 e;
    calBounds(k->kind, k->bAnchor, k->anchor, t, &k->pstart, &e);
  }
  if( k->kind==K_ROLL ) bucketAdd(k, t, s.used);
  else k->used = s.used;
  k->nAlert = s.nAlert;
  memcpy(k->aAlert, s.aAlert, sizeof(k->aAlert));
  k->bShadow = s.bShadow;
  k->bRoll = bRoll; k->roll = roll;
  evRearm(m, k, t);
  resNull(r);
}

/* UPDATE quota SET ... WHERE key = zName. */
static void mUpdate(Model *m, i64 t, const char *zName, const KWrite *w, Res *r){
  MKey *k = keyByName(m, zName);
  KSet s;
  i64 aRes[MAXKEY], uOld, used = 0, roll;
  int bUsed, bWasRoll, bIsRoll, bWasRate, bIsRate, bNewPeriod, bRoll;
  memset(&s, 0, sizeof(s));
  resNull(r);
  if( !k ) return;                          /* no row: nothing happens */
  if( w->bSet[C_RESERVED] ){ resErr(r, SQLITE_CONSTRAINT, "quota: column reserved is read-only"); return; }
  if( w->bSet[C_KEY] ){
    char zB[24];
    const char *z = (w->v[C_KEY].t==SQLITE_TEXT || w->v[C_KEY].t==SQLITE_INTEGER)
                  ? argName(&w->v[C_KEY], zB) : 0;
    if( !z || strcmp(z, k->zName)!=0 ){
      resErr(r, SQLITE_CONSTRAINT, "quota: column key cannot be changed"); return;
    }
  }
  if( w->bSet[C_CAP] ){ if( vCap(&w->v[C_CAP], &s, r) ) return; }
  else { s.bCap = k->bCap; s.cap = k->cap; }
  if( w->bSet[C_PERIOD] ){ if( vPeriod(&w->v[C_PERIOD], &s, r) ) return; }
  else { s.kind = k->kind; s.len = k->len; s.rate = k->rate; strcpy(s.zPeriod, k->zPeriod); }
  if( vBucket(&s, r) ) return;
  if( w->bSet[C_ANCHOR] ){ if( vAnchor(&w->v[C_ANCHOR], &s, r) ) return; }
  else { s.bAnchor = k->bAnchor; s.anchor = k->anchor; }
  if( w->bSet[C_PARENT] ){
    if( vParent(m, &w->v[C_PARENT], k->zName, k, &s, r) ) return;
    reservedAll(m, t, aRes);
    if( s.parent!=k->parent && aRes[k - m->aKey]>0 ){
      resErr(r, SQLITE_CONSTRAINT, "quota: cannot change the parent of '%s' while it holds reservations", k->zName);
      return;
    }
  }else{
    s.parent = k->parent;
  }
  if( w->bSet[C_RETENTION] ){ if( vRetention(&w->v[C_RETENTION], &s, r) ) return; }
  else { s.eRet = k->eRet; s.ret = k->ret; }
  if( w->bSet[C_USED] ){ if( vUsed(&w->v[C_USED], 1, &s, r) ) return; used = s.used; }
  if( w->bSet[C_ALERT] ){ if( vAlert(&w->v[C_ALERT], &s, r) ) return; }
  else { s.nAlert = k->nAlert; memcpy(s.aAlert, k->aAlert, sizeof(s.aAlert)); }
  if( w->bSet[C_ENFORCE] ){ if( vEnforce(&w->v[C_ENFORCE], &s, r) ) return; }
  else { s.bShadow = k->bShadow; }
  if( w->bSet[C_ROLLOVER] ){ if( vRollover(&w->v[C_ROLLOVER], &bRoll, &roll, r) ) return; }
  else { bRoll = k->bRoll; roll = k->roll; }
  /* everything checked: sweep, bring the key to t (a rollover by the
  ** setting it had), then change it */
  sweep(m, t);
  normWrite(m, k, t);
  k->bRoll = bRoll; k->roll = roll;
  if( k->kind==K_ROLL ){
    int i;
    for(uOld=0, i=0; i<k->nB; i++) uOld += k->aB[i].amt;
  }else{
    uOld = k->used;
  }
  bUsed = w->bSet[C_USED];
  bWasRoll = k->kind==K_ROLL;
  bIsRoll = s.kind==K_ROLL;
  bWasRate = k->kind==K_RATE;
  bIsRate = s.kind==K_RATE;
  if( !bUsed && (bWasRoll!=bIsRoll || bWasRate!=bIsRate) ){
    /* a bucket's used holds its live holds' units; other kinds' does not */
    i64 res;
    reservedAll(m, t, aRes);
    res = aRes[k - m->aKey];
    bUsed = 1;
    used = uOld;
    if( bWasRate && !bIsRate ) used = used>res ? used - res : 0;
    if( !bWasRate && bIsRate ) used = used>I64_MAX-res ? I64_MAX : used + res;
  }
  bNewPeriod = s.kind!=k->kind || s.len!=k->len || s.bAnchor!=k->bAnchor
            || (s.bAnchor && s.anchor!=k->anchor);
  /* a bucket staying one keeps where it is refilled to; a new rate starts
  ** its next unit afresh */
  if( bWasRate && bIsRate && (s.len!=k->len || s.rate!=k->rate) ) k->rrem = 0;
  k->rate = s.rate;
  /* its log starts afresh (the cap, the rate or the usage may change) */
  if( w->bSet[C_CAP] || w->bSet[C_PERIOD] || w->bSet[C_USED] ) keyLogReset(k);
  k->bCap = s.bCap; k->cap = s.cap;
  k->kind = s.kind; k->len = s.len; strcpy(k->zPeriod, s.zPeriod);
  k->bAnchor = s.bAnchor; k->anchor = s.anchor;
  k->parent = s.parent;
  k->eRet = s.eRet; k->ret = s.ret;
  if( w->bSet[C_NOTE] ){
    k->bNote = w->v[C_NOTE].t!=SQLITE_NULL;
    if( k->bNote ) snprintf(k->zNote, sizeof(k->zNote), "%s", w->v[C_NOTE].z);
  }
  if( isCal(k->kind) && bNewPeriod ){
    /* a new period or anchor: the period holding t under the new settings */
    i64 e;
    calBounds(k->kind, k->bAnchor, k->anchor, t, &k->pstart, &e);
  }
  if( bUsed ){
    k->nB = 0;
    if( bIsRoll ){ k->used = 0; bucketAdd(k, t, used); }
    else k->used = used;
    if( bIsRate ){ k->pstart = t; k->rrem = 0; }   /* a reset, from now */
  }
  k->nAlert = s.nAlert;
  memcpy(k->aAlert, s.aAlert, sizeof(k->aAlert));
  k->bShadow = s.bShadow;
  /* what decides the events was written: re-armed (not for parent,
  ** retention or note) */
  if( w->bSet[C_CAP] || w->bSet[C_PERIOD] || w->bSet[C_ANCHOR] || w->bSet[C_USED]
   || w->bSet[C_ALERT] || w->bSet[C_ENFORCE] ){
    evRearm(m, k, t);
  }
}

static void mDelete(Model *m, i64 t, const char *zName, Res *r){
  MKey *k = keyByName(m, zName);
  int i, j, ik;
  resNull(r);
  if( !k ) return;
  for(i=0; i<m->nKey; i++){
    if( m->aKey[i].parent==k->id ){
      resErr(r, SQLITE_CONSTRAINT, "quota: cannot delete key '%s': it is the parent of '%s'",
             k->zName, m->aKey[i].zName);
      return;
    }
  }
  sweep(m, t);
  normWrite(m, k, t);                    /* a rollover, voided below */
  for(i=0; i<m->nHold; i++){
    MHold *h = &m->aHold[i];
    if( h->keyId==k->id && h->state==H_LIVE ){
      h->state = H_ORPHANED; h->ended = t; st.orphaned++;
      /* its units back in the buckets above the key */
      chainReturn(m, k->parent ? keyById(m, k->parent) : 0, h->amount, t);
    }
  }
  for(i=j=0; i<m->nReq; i++){
    if( m->aReq[i].keyId!=k->id ) m->aReq[j++] = m->aReq[i];
  }
  m->nReq = j;
  /* its open grants (expired or not) are voided: the name starts afresh */
  for(i=0; i<m->nGrant; i++){
    MGrant *g = &m->aGrant[i];
    if( strcmp(g->zKey, k->zName)==0 && grantOpen(g) ){
      g->voided = g->remaining; g->remaining = 0;
    }
  }
  ik = (int)(k - m->aKey);
  free(k->aB);
  for(i=ik+1; i<m->nKey; i++) m->aKey[i-1] = m->aKey[i];
  m->nKey--;
}

/* ================================================================ the run */

typedef struct Conn { sqlite3 *db; char cName; i64 now; } Conn;
static Conn aConn[2];
static Model M;               /* the state the acting connection sees */
static Model C;               /* while a transaction is open: the committed state */
static int iTxn = -1;         /* the connection in a transaction, or -1 */
static int nTxnLeft = 0;      /* operations before its COMMIT or ROLLBACK */

static struct {
  i64 seed; int nSeeds; int nSteps; int bLong; const char *zDb; int bWal;
  int bNest; int bTempTable; int nSeconds; int bTrace;
} cfg;
static i64 iSeed;
static int iStep;

/* The last operations, for the report of a failure. */
#define NLOG 20
static char aLog[NLOG][700];
static int nLog = 0;
static void logOp(const char *zFmt, ...){
  va_list ap;
  char *z = aLog[nLog%NLOG];
  int n = snprintf(z, sizeof(aLog[0]), "[%d] ", iStep);
  va_start(ap, zFmt);
  vsnprintf(z+n, sizeof(aLog[0])-(size_t)n, zFmt, ap);
  va_end(ap);
  nLog++;
  if( cfg.bTrace ){ printf("%s\n", z); fflush(stdout); }
}

static void fail(const char *zFmt, ...){
  va_list ap;
  int i;
  printf("model: FAIL seed=%lld step=%d journal=%s sqlite=%s\n", iSeed, iStep,
         cfg.bWal ? "wal" : "delete", sqlite3_libversion());
  printf("  clocks: A=%lld B=%lld%s\n", aConn[0].now, aConn[1].now,
         iTxn>=0 ? (iTxn==0 ? " (A in a transaction)" : " (B in a transaction)") : "");
  va_start(ap, zFmt);
  printf("  ");
  vprintf(zFmt, ap);
  printf("\n");
  va_end(ap);
  printf("last operations:\n");
  for(i = nLog>NLOG ? nLog-NLOG : 0; i<nLog; i++) printf("  %s\n", aLog[i%NLOG]);
  printf("replay: build/model --seed %lld --steps %d%s%s%s\n", iSeed, iStep,
         cfg.bWal ? "" : " --journal delete", cfg.bNest ? "" : " --no-nest",
         cfg.bTempTable ? "" : " --no-temp-table");
  fflush(stdout);
  exit(1);
}

static void setupError(Conn *c, const char *zWhat){
  fprintf(stderr, "model: setup: %s: %s\n", zWhat, c ? sqlite3_errmsg(c->db) : "");
  exit(2);
}

/* Run one statement: the error, or column 0 of its first row. */
static void dbRun(Conn *c, const char *zSql, Res *r){
  sqlite3_stmt *p = 0;
  int rc = sqlite3_prepare_v2(c->db, zSql, -1, &p, 0);
  memset(r, 0, sizeof(*r));
  if( rc==SQLITE_OK ){
    rc = sqlite3_step(p);
    if( rc==SQLITE_ROW ){
      if( sqlite3_column_type(p, 0)==SQLITE_NULL ) r->bNull = 1;
      else snprintf(r->zVal, sizeof(r->zVal), "%s", (const char*)sqlite3_column_text(p, 0));
      while( (rc = sqlite3_step(p))==SQLITE_ROW ){}
    }else if( rc==SQLITE_DONE ){
      r->bNull = 1;
    }
  }
  if( rc!=SQLITE_DONE && rc!=SQLITE_OK ){
    r->bErr = 1;
    r->code = sqlite3_errcode(c->db) & 0xff;
    snprintf(r->zMsg, sizeof(r->zMsg), "%s", sqlite3_errmsg(c->db));
    r->bNull = 0;
  }
  sqlite3_finalize(p);
}

/* Run a statement that must work (setup, clock pins). */
static void dbExec(Conn *c, const char *zSql){
  char *zErr = 0;
  if( sqlite3_exec(c->db, zSql, 0, 0, &zErr)!=SQLITE_OK ){
    fail("%c: %s failed: %s", c->cName, zSql, zErr ? zErr : "?");
  }
}

/* Every row of a query, columns joined by '|', rows ended by '\n'. */
typedef struct Buf { char *z; size_t n, nAlloc; } Buf;
static void bufAdd(Buf *b, const char *zFmt, ...){
  va_list ap;
  int n;
  for(;;){
    size_t room = b->nAlloc - b->n;
    va_start(ap, zFmt);
    n = vsnprintf(b->z ? b->z + b->n : 0, b->z ? room : 0, zFmt, ap);
    va_end(ap);
    if( b->z && (size_t)n < room ){ b->n += (size_t)n; return; }
    b->nAlloc = b->nAlloc*2 + (size_t)n + 256;
    b->z = xrealloc(b->z, b->nAlloc);
    if( b->n==0 ) b->z[0] = 0;
  }
}
/* The statements of the comparisons, prepared once per connection and
** seed: keyed by the address of their (static) text. */
#define NCACHE 40
static struct { sqlite3 *db; const char *zSql; sqlite3_stmt *p; } aCache[NCACHE];
static sqlite3_stmt *cachedStmt(Conn *c, const char *zSql){
  int i;
  for(i=0; i<NCACHE; i++){
    if( aCache[i].db==c->db && aCache[i].zSql==zSql ) return aCache[i].p;
  }
  for(i=0; i<NCACHE && aCache[i].db; i++){}
  if( i==NCACHE ){ fprintf(stderr, "model: statement cache full\n"); exit(2); }
  if( sqlite3_prepare_v2(c->db, zSql, -1, &aCache[i].p, 0)!=SQLITE_OK ){
    fail("%c: preparing %s: %s", c->cName, zSql, sqlite3_errmsg(c->db));
  }
  aCache[i].db = c->db;
  aCache[i].zSql = zSql;
  return aCache[i].p;
}
static void cacheClear(void){
  int i;
  for(i=0; i<NCACHE; i++){
    sqlite3_finalize(aCache[i].p);
    memset(&aCache[i], 0, sizeof(aCache[i]));
  }
}

/* Step p (a cached statement, its parameters bound) through its rows. */
static void stmtRows(Conn *c, sqlite3_stmt *p, Buf *b){
  int rc, i;
  b->n = 0;
  bufAdd(b, "%s", "");
  while( (rc = sqlite3_step(p))==SQLITE_ROW ){
    for(i=0; i<sqlite3_column_count(p); i++){
      const char *z = (const char*)sqlite3_column_text(p, i);
      bufAdd(b, "%s%s", i ? "|" : "", z ? z : "NULL");
    }
    bufAdd(b, "\n");
  }
  if( rc!=SQLITE_DONE ){
    char zMsg[300];
    snprintf(zMsg, sizeof(zMsg), "%s", sqlite3_errmsg(c->db));
    sqlite3_reset(p);
    fail("%c: %s: error %s", c->cName, sqlite3_sql(p), zMsg);
  }
  sqlite3_reset(p);
  sqlite3_clear_bindings(p);
}
static void dbRows(Conn *c, const char *zSql, Buf *b){
  sqlite3_stmt *p = 0;
  if( sqlite3_prepare_v2(c->db, zSql, -1, &p, 0)!=SQLITE_OK ){
    fail("%c: %s: error %s", c->cName, zSql, sqlite3_errmsg(c->db));
  }
  stmtRows(c, p, b);
  sqlite3_finalize(p);
}
static void cachedRows(Conn *c, const char *zSql, Buf *b){
  stmtRows(c, cachedStmt(c, zSql), b);
}

/* The first line where two texts differ, for the report. */
static void reportDiff(const char *zWhat, Conn *c, const char *zExp, const char *zGot){
  const char *e = zExp, *g = zGot;
  int line = 1;
  while( *e && *e==*g ){ if( *e=='\n' ) line++; e++; g++; }
  while( e>zExp && e[-1]!='\n' ) e--;
  while( g>zGot && g[-1]!='\n' ) g--;
  fail("%s on %c (clock %lld) differs at line %d\n  expected: %.*s\n  got:      %.*s\n"
       "  --- whole expected:\n%s  --- whole got:\n%s", zWhat, c->cName, c->now, line,
       (int)strcspn(e, "\n"), e, (int)strcspn(g, "\n"), g, zExp, zGot);
}

static Model *viewOf(int ic){ return (iTxn>=0 && ic!=iTxn) ? &C : &M; }

/* ---------------------------------------------------------- comparisons */

static void renderKey(Model *m, MKey *k, i64 t, const i64 *aRes, Buf *b){
  KView v;
  char zA[20], zPs[20], zPe[20];
  MKey *par = k->parent ? keyById(m, k->parent) : 0;
  keyView(m, k, t, aRes, &v);
  if( k->bAnchor ) fmtTime(k->anchor, zA);
  if( v.bPeriod ){ fmtTime(v.ps, zPs); fmtTime(v.pe, zPe); }
  bufAdd(b, "%lld|%s|", k->id, k->zName);
  if( k->bCap ) bufAdd(b, "%lld|", k->cap); else bufAdd(b, "NULL|");
  bufAdd(b, "%s|%s|%s|", k->zPeriod[0] ? k->zPeriod : "NULL", k->bAnchor ? zA : "NULL",
         par ? par->zName : "NULL");
  if( k->eRet==RET_SECS ) bufAdd(b, "%lld|", k->ret);
  else bufAdd(b, "%s|", k->eRet==RET_FOREVER ? "forever" : "NULL");
  bufAdd(b, "%lld|%lld|", v.used, v.reserved);
  if( k->bCap ) bufAdd(b, "%lld|", levelRoom(k, &v)); else bufAdd(b, "NULL|");
  bufAdd(b, "%s|%s|", v.bPeriod ? zPs : "NULL", v.bPeriod ? zPe : "NULL");
  if( k->bCap && levelRoom(k, &v)<1 ){
    i64 secs = retryAfter(k, &v, 1, t);
    if( secs>=0 ) bufAdd(b, "%lld|", secs); else bufAdd(b, "NULL|");
  }else{
    bufAdd(b, "NULL|");
  }
  bufAdd(b, "%s|", k->bNote ? k->zNote : "NULL");
  if( k->nAlert ){
    char zA[400];
    alertText(k->aAlert, k->nAlert, zA, sizeof(zA));
    bufAdd(b, "%s|", zA);
  }else{
    bufAdd(b, "NULL|");
  }
  bufAdd(b, "%s|", k->bShadow ? "shadow" : "hard");
  if( k->bRoll ) bufAdd(b, "%lld|", k->roll); else bufAdd(b, "NULL|");
  bufAdd(b, "%lld\n", v.credits);
}

#define KEY_COLUMNS "rowid, key, cap, period, anchor, parent, retention, used," \
  " reserved, remaining, period_start, resets_at, retry_after, note, alert, enforce," \
  " rollover, credits"

static Buf bufExp, bufGot;
static const char zAllKeys[] = "SELECT " KEY_COLUMNS " FROM quota ORDER BY rowid";
static const char zOneKey[] = "SELECT " KEY_COLUMNS " FROM quota WHERE key=?1";
static const char zLiveHolds[] = "SELECT id, key_id, amount, expires, request_id"
  " FROM quota_holds WHERE state=0 ORDER BY id";
static const char zHoldIds[] = "SELECT coalesce(group_concat(id), '') FROM"
  " (SELECT id FROM quota_holds ORDER BY id)";
/* the sum of the amounts in two parts, which no amount can overflow */
static const char zLedgerSums[] = "SELECT key, count(*), sum(amount/1000000000),"
  " sum(amount%1000000000), sum(over), sum(late) FROM quota_ledger GROUP BY key"
  " ORDER BY key";
static const char zLedgerAll[] = "SELECT id, key, amount, at, request_id, hold_id,"
  " meta, over, late FROM quota_ledger ORDER BY id";
static const char zLedgerOne[] = "SELECT id, key, amount, at, request_id, hold_id,"
  " meta, over, late FROM quota_ledger WHERE id=?1";
static const char zIntegrity[] = "SELECT quota_integrity()";
static const char zEvents[] = "SELECT id, key, at, kind, detail, used, cap,"
  " period_start, ledger_id, hold_id FROM quota_events ORDER BY id";
/* the operators' settings (a token bucket's rate, compared through its
** key, may be the only setting of a row) */
static const char zKeyconf[] = "SELECT id, alert, enforce, fired FROM quota_keyconf"
  " WHERE alert IS NOT NULL OR enforce IS NOT NULL OR fired IS NOT NULL ORDER BY id";

static void compareKeys(int ic){
  Conn *c = &aConn[ic];
  Model *m = viewOf(ic);
  i64 aRes[MAXKEY];
  int i;
  reservedAll(m, c->now, aRes);
  bufExp.n = 0; bufAdd(&bufExp, "%s", "");
  for(i=0; i<m->nKey; i++) renderKey(m, &m->aKey[i], c->now, aRes, &bufExp);
  cachedRows(c, zAllKeys, &bufGot);
  if( strcmp(bufExp.z, bufGot.z)!=0 ) reportDiff("the quota table", c, bufExp.z, bufGot.z);
  /* one key through the key lookup (xBestIndex's plan by key) */
  if( m->nKey>0 ){
    MKey *k = &m->aKey[rnd(m->nKey)];
    sqlite3_stmt *p = cachedStmt(c, zOneKey);
    bufExp.n = 0; bufAdd(&bufExp, "%s", "");
    renderKey(m, k, c->now, aRes, &bufExp);
    sqlite3_bind_text(p, 1, k->zName, -1, SQLITE_TRANSIENT);
    stmtRows(c, p, &bufGot);
    if( strcmp(bufExp.z, bufGot.z)!=0 ) reportDiff("a quota row by key", c, bufExp.z, bufGot.z);
  }
}

/* The live holds (as stored: a hold whose ttl ran out stays live in the
** store until a writing call sweeps it) and the ids of every hold. */
#define HOLD_STATE_LIVE 0   /* quota_holds.state of a live hold */
static void compareHolds(int ic){
  Conn *c = &aConn[ic];
  Model *m = viewOf(ic);
  int i;
  bufExp.n = 0; bufAdd(&bufExp, "%s", "");
  for(i=0; i<m->nHold; i++){
    MHold *h = &m->aHold[i];
    if( h->state==H_LIVE ){
      bufAdd(&bufExp, "%lld|%lld|%lld|%lld|%s\n", h->id, h->keyId, h->amount,
             h->expires, h->bRid ? h->zRid : "NULL");
    }
  }
  cachedRows(c, zLiveHolds, &bufGot);
  if( strcmp(bufExp.z, bufGot.z)!=0 ) reportDiff("the live holds", c, bufExp.z, bufGot.z);
  bufExp.n = 0; bufAdd(&bufExp, "%s", "");
  for(i=0; i<m->nHold; i++) bufAdd(&bufExp, "%s%lld", i ? "," : "", m->aHold[i].id);
  bufAdd(&bufExp, "\n");
  cachedRows(c, zHoldIds, &bufGot);
  if( strcmp(bufExp.z, bufGot.z)!=0 ) reportDiff("the ids of quota_holds", c, bufExp.z, bufGot.z);
}

static int cmpName(const void *a, const void *b){
  return strcmp(*(const char*const*)a, *(const char*const*)b);
}
static void compareLedgerSums(int ic){
  Conn *c = &aConn[ic];
  Model *m = viewOf(ic);
  const char *az[64];
  int nName = 0, i, j;
  for(i=0; i<m->nLed; i++){
    for(j=0; j<nName && strcmp(az[j], m->aLed[i].zKey)!=0; j++){}
    if( j==nName && nName<64 ) az[nName++] = m->aLed[i].zKey;
  }
  qsort(az, (size_t)nName, sizeof(az[0]), cmpName);
  bufExp.n = 0; bufAdd(&bufExp, "%s", "");
  for(j=0; j<nName; j++){
    i64 n = 0, sumHi = 0, sumLo = 0, over = 0, late = 0;
    for(i=0; i<m->nLed; i++){
      MLed *l = &m->aLed[i];
      if( strcmp(l->zKey, az[j])!=0 ) continue;
      n++; over += l->over; late += l->late;
      sumHi += l->amount/1000000000; sumLo += l->amount%1000000000;
    }
    bufAdd(&bufExp, "%s|%lld|%lld|%lld|%lld|%lld\n", az[j], n, sumHi, sumLo, over, late);
  }
  cachedRows(c, zLedgerSums, &bufGot);
  if( strcmp(bufExp.z, bufGot.z)!=0 ) reportDiff("the ledger per key", c, bufExp.z, bufGot.z);
}

static void renderLed(const MLed *l, Buf *b){
  bufAdd(b, "%lld|%s|%lld|%lld|%s|", l->id, l->zKey, l->amount, l->at, l->bRid ? l->zRid : "NULL");
  if( l->holdId ) bufAdd(b, "%lld|", l->holdId); else bufAdd(b, "NULL|");
  bufAdd(b, "%s|%d|%d\n", l->bMeta ? l->zMeta : "NULL", l->over, l->late);
}

static void compareLedgerRows(int ic){
  Conn *c = &aConn[ic];
  Model *m = viewOf(ic);
  int i;
  bufExp.n = 0; bufAdd(&bufExp, "%s", "");
  for(i=0; i<m->nLed; i++) renderLed(&m->aLed[i], &bufExp);
  cachedRows(c, zLedgerAll, &bufGot);
  if( strcmp(bufExp.z, bufGot.z)!=0 ) reportDiff("the ledger", c, bufExp.z, bufGot.z);
}

/* The row a charging call just wrote. */
static void compareNewLedgerRow(int ic){
  Conn *c = &aConn[ic];
  Model *m = viewOf(ic);
  MLed *l = &m->aLed[m->nLed-1];
  sqlite3_stmt *p = cachedStmt(c, zLedgerOne);
  bufExp.n = 0; bufAdd(&bufExp, "%s", "");
  renderLed(l, &bufExp);
  sqlite3_bind_int64(p, 1, l->id);
  stmtRows(c, p, &bufGot);
  if( strcmp(bufExp.z, bufGot.z)!=0 ) reportDiff("the new ledger row", c, bufExp.z, bufGot.z);
}

/* The event outbox, row by row, and the stored alert, enforce and fired
** state (fired = the event period * 2^24 + a bit per event sent:
** exhausted 1, shadow_denied 2, the i-th threshold 4<<i). */
static void compareEvents(int ic){
  static const char *azKind[] = {"threshold", "exhausted", "shadow_denied"};
  Conn *c = &aConn[ic];
  Model *m = viewOf(ic);
  int i;
  bufExp.n = 0; bufAdd(&bufExp, "%s", "");
  for(i=0; i<m->nEvt; i++){
    MEvt *e = &m->aEvt[i];
    bufAdd(&bufExp, "%lld|%s|%lld|%s|%s|%lld|", e->id, e->zKey, e->at, azKind[e->kind],
           e->zDetail[0] ? e->zDetail : "NULL", e->used);
    if( e->bCap ) bufAdd(&bufExp, "%lld|", e->cap); else bufAdd(&bufExp, "NULL|");
    if( e->bPeriod ) bufAdd(&bufExp, "%lld|", e->ps); else bufAdd(&bufExp, "NULL|");
    if( e->ledgerId ) bufAdd(&bufExp, "%lld|", e->ledgerId); else bufAdd(&bufExp, "NULL|");
    if( e->holdId ) bufAdd(&bufExp, "%lld\n", e->holdId); else bufAdd(&bufExp, "NULL\n");
  }
  cachedRows(c, zEvents, &bufGot);
  if( strcmp(bufExp.z, bufGot.z)!=0 ) reportDiff("the events", c, bufExp.z, bufGot.z);
  bufExp.n = 0; bufAdd(&bufExp, "%s", "");
  for(i=0; i<m->nKey; i++){
    MKey *k = &m->aKey[i];
    char zA[400];
    if( k->nAlert==0 && !k->bShadow ) continue;
    alertText(k->aAlert, k->nAlert, zA, sizeof(zA));
    bufAdd(&bufExp, "%lld|%s|%s|", k->id, k->nAlert ? zA : "NULL", k->bShadow ? "1" : "NULL");
    if( k->bFired ) bufAdd(&bufExp, "%lld\n", k->firedP*16777216 + k->firedMask);
    else bufAdd(&bufExp, "NULL\n");
  }
  cachedRows(c, zKeyconf, &bufGot);
  if( strcmp(bufExp.z, bufGot.z)!=0 ) reportDiff("quota_keyconf", c, bufExp.z, bufGot.z);
}

static void checkIntegrity(int ic){
  cachedRows(&aConn[ic], zIntegrity, &bufGot);
  st.integrity++;
  if( strcmp(bufGot.z, "ok\n")!=0 ) fail("quota_integrity() on %c: %s", aConn[ic].cName, bufGot.z);
}

/* Leases: every hold's expiry is its last extension (or its reserve) plus
** that call's ttl, capped at the end of 9999 for an extension; and
** quota_hold() of a few holds, on each connection as of its clock, is the
** model's JSON (its state "live" exactly while now < that expiry). */
static const char zHoldJson[] = "SELECT quota_hold(?1)";
static void compareLeases(int ic){
  Conn *c = &aConn[ic];
  Model *m = viewOf(ic);
  int i, n;
  for(i=0; i<m->nHold; i++){
    MHold *h = &m->aHold[i];
    i64 e = h->lastExt + h->lastTtl;
    if( h->lastExt!=h->created && e>TIME_MAX ) e = TIME_MAX;
    if( h->expires!=e ){
      fail("hold %lld expires at %lld, not its last extension %lld + ttl %lld",
           h->id, h->expires, h->lastExt, h->lastTtl);
    }
  }
  for(n=0; n<2 && m->nHold>0; n++){
    MHold *h = &m->aHold[n==0 ? m->nHold-1 : rnd(m->nHold)];
    Arg a = aInt(h->id);
    Res exp;
    sqlite3_stmt *p = cachedStmt(c, zHoldJson);
    mHold(m, c->now, &a, &exp);
    bufExp.n = 0; bufAdd(&bufExp, "%s\n", exp.bNull ? "NULL" : exp.zVal);
    sqlite3_bind_int64(p, 1, h->id);
    stmtRows(c, p, &bufGot);
    if( strcmp(bufExp.z, bufGot.z)!=0 ) reportDiff("quota_hold()", c, bufExp.z, bufGot.z);
  }
}

/* Credits: quota_grants and quota_draws row by row, and the invariants of
** the store's own rows: every grant's amount = remaining + its draws +
** voided; no draw for a charge made at or after its grant's expiry (a
** voided grant has nothing left to draw: the sum says so; a draw may come
** before the grant's creation time, from a connection whose clock is
** behind). */
static const char zGrants[] = "SELECT id, key, amount, remaining, priority, created,"
  " expires, voided, request_id FROM quota_grants ORDER BY id";
static const char zDraws[] = "SELECT ledger_id, grant_id, amount FROM quota_draws"
  " ORDER BY grant_id, ledger_id";
static const char zGrantSums[] = "SELECT g.id, g.amount, g.remaining,"
  " coalesce((SELECT sum(d.amount) FROM quota_draws AS d WHERE d.grant_id=g.id), 0),"
  " g.voided FROM quota_grants AS g"
  " WHERE g.amount<>g.remaining + coalesce(g.voided, 0)"
  "   + coalesce((SELECT sum(d.amount) FROM quota_draws AS d WHERE d.grant_id=g.id), 0)"
  " UNION ALL SELECT d.grant_id, d.ledger_id, l.at, g.created, g.expires"
  " FROM quota_draws AS d JOIN quota_grants AS g ON g.id=d.grant_id"
  " JOIN quota_ledger AS l ON l.id=d.ledger_id"
  " WHERE g.expires IS NOT NULL AND l.at>=g.expires";
static int cmpDraw(const void *a, const void *b){
  const MDraw *x = (const MDraw*)a, *y = (const MDraw*)b;
  if( x->grantId!=y->grantId ) return x->grantId<y->grantId ? -1 : 1;
  if( x->ledgerId!=y->ledgerId ) return x->ledgerId<y->ledgerId ? -1 : 1;
  return 0;
}
static void compareGrants(int ic){
  Conn *c = &aConn[ic];
  Model *m = viewOf(ic);
  MDraw *aD;
  int i;
  bufExp.n = 0; bufAdd(&bufExp, "%s", "");
  for(i=0; i<m->nGrant; i++){
    MGrant *g = &m->aGrant[i];
    bufAdd(&bufExp, "%lld|%s|%lld|%lld|%lld|%lld|", g->id, g->zKey, g->amount,
           g->remaining, g->priority, g->created);
    if( g->bExp ) bufAdd(&bufExp, "%lld|", g->expires); else bufAdd(&bufExp, "NULL|");
    if( g->voided>=0 ) bufAdd(&bufExp, "%lld|", g->voided); else bufAdd(&bufExp, "NULL|");
    bufAdd(&bufExp, "%s\n", g->bRid ? g->zRid : "NULL");
  }
  cachedRows(c, zGrants, &bufGot);
  if( strcmp(bufExp.z, bufGot.z)!=0 ) reportDiff("quota_grants", c, bufExp.z, bufGot.z);
  aD = xrealloc(0, sizeof(MDraw)*(size_t)m->nDraw);
  if( m->nDraw ) memcpy(aD, m->aDraw, sizeof(MDraw)*(size_t)m->nDraw);
  qsort(aD, (size_t)m->nDraw, sizeof(MDraw), cmpDraw);
  bufExp.n = 0; bufAdd(&bufExp, "%s", "");
  for(i=0; i<m->nDraw; i++){
    bufAdd(&bufExp, "%lld|%lld|%lld\n", aD[i].ledgerId, aD[i].grantId, aD[i].amount);
  }
  free(aD);
  cachedRows(c, zDraws, &bufGot);
  if( strcmp(bufExp.z, bufGot.z)!=0 ) reportDiff("quota_draws", c, bufExp.z, bufGot.z);
  cachedRows(c, zGrantSums, &bufGot);
  if( bufGot.z && bufGot.z[0] ){
    reportDiff("the grants' invariants (amount = remaining + draws + voided;"
               " no draw at or after expires)", c, "", bufGot.z);
  }
}

static void compareAll(void){
  int ic;
  for(ic=0; ic<2; ic++){
    compareKeys(ic);
    compareHolds(ic);
    compareLedgerSums(ic);
    compareLeases(ic);
    compareEvents(ic);
    compareGrants(ic);
  }
}

/* ============================================================ operations */

enum { F_RESERVE, F_SETTLE, F_RELEASE, F_CONSUME, F_RECORD, F_CHECK, F_STATUS, F_PURGE,
       F_UPTO, F_HOLD, F_EXTEND, F_GRANT, F_VOID };
static const char *azFn[] = {
  "quota_reserve", "quota_settle", "quota_release", "quota_consume", "quota_record",
  "quota_check", "quota_status", "quota_purge",
  "quota_reserve_upto", "quota_hold", "quota_extend", "quota_grant", "quota_void"
};

static void mApply(Model *m, i64 t, int f, const Arg *a, int nArg, Res *r){
  switch( f ){
    case F_RESERVE: mReserve(m, t, a, nArg, r); break;
    case F_SETTLE:  mSettle(m, t, a, nArg, r); break;
    case F_RELEASE: mRelease(m, t, a, r); break;
    case F_CONSUME: mCharge(m, t, R_CONSUME, a, nArg, r); break;
    case F_RECORD:  mCharge(m, t, R_RECORD, a, nArg, r); break;
    case F_CHECK:   mCheck(m, t, 0, a, nArg, r); break;
    case F_STATUS:  mCheck(m, t, 1, a, nArg, r); break;
    case F_UPTO:    mReserveUpto(m, t, a, nArg, r); break;
    case F_HOLD:    mHold(m, t, a, r); break;
    case F_EXTEND:  mExtend(m, t, a, r); break;
    case F_GRANT:   mGrant(m, t, a, nArg, r); break;
    case F_VOID:    mVoid(m, t, a, r); break;
    default:        mPurge(m, t, r); break;
  }
}

static void argList(const Arg *a, int nArg, char *z, size_t n){
  int i;
  size_t j = 0;
  z[0] = 0;
  for(i=0; i<nArg && j+80<n; i++){
    char zA[80];
    argSql(&a[i], zA, sizeof(zA));
    j += (size_t)snprintf(z+j, n-j, "%s%s", i ? ", " : "", zA);
  }
}

/* Hold ids handed out, also those later rolled back or purged. */
static i64 aSeenHold[256];
static int nSeenHold = 0;
static void seenHold(i64 id){
  int i;
  for(i=0; i<nSeenHold && i<256; i++) if( aSeenHold[i]==id ) return;
  aSeenHold[nSeenHold++ % 256] = id;
}

static void checkResult(Conn *c, const char *zSql, const Res *exp, const Res *got){
  char zE[1300], zG[1300];
  resRender(got, zG, sizeof(zG));
  logOp("%c: %s -> %s", c->cName, zSql, zG);
  if( !resSame(exp, got) ){
    resRender(exp, zE, sizeof(zE));
    fail("%c: %s\n  expected: %s\n  got:      %s", c->cName, zSql, zE, zG);
  }
}

static void doCall(int ic, int f, const Arg *a, int nArg){
  Conn *c = &aConn[ic];
  char zArgs[500], zSql[600];
  Res exp, got;
  argList(a, nArg, zArgs, sizeof(zArgs));
  snprintf(zSql, sizeof(zSql), "SELECT %s(%s)", azFn[f], zArgs);
  mApply(&M, c->now, f, a, nArg, &exp);
  dbRun(c, zSql, &got);
  st.calls++;
  if( f==F_HOLD ) st.holds++;
  if( exp.bErr ) st.failed++;
  else if( exp.bNull && (f==F_RESERVE || f==F_CONSUME || f==F_UPTO) ) st.denied++;
  checkResult(c, zSql, &exp, &got);
  if( (f==F_RESERVE || f==F_UPTO) && !got.bErr && !got.bNull ) seenHold(atoll(got.zVal));
  if( exp.bLedger ) compareNewLedgerRow(ic);
}

/* --------------------------------------------------- argument generators */

static const char *azName[] = {"k0", "k1", "k2", "k3", "k4", "k5", "acct", "42"};
#define NNAME ((int)(sizeof(azName)/sizeof(azName[0])))

static Arg keyArg(const char *zName){
  if( strcmp(zName, "42")==0 && chance(50) ) return aInt(42);
  return aText(zName);
}
static MKey *anyKey(Model *m){ return m->nKey ? &m->aKey[rnd(m->nKey)] : 0; }
static const char *missingName(Model *m){
  int i, j = rnd(NNAME);
  for(i=0; i<NNAME; i++){
    const char *z = azName[(i+j)%NNAME];
    if( !keyByName(m, z) ) return z;
  }
  return "nokey";
}
static Arg badKeyArg(void){
  switch( rnd(4) ){
    case 0: return aNull();
    case 1: return aText("");
    case 2: return aReal(2.5);
    default: return aBlob("6b31");
  }
}
/* A key for a function: mostly an existing one, sometimes one that does not
** exist, sometimes not a key at all. *ppKey is the key when it exists. */
static Arg genKey(MKey **ppKey){
  int r = rnd(100);
  MKey *k = anyKey(&M);
  *ppKey = 0;
  if( r<4 ) return badKeyArg();
  if( r<12 || !k ) return aText(missingName(&M));
  *ppKey = k;
  return keyArg(k->zName);
}
/* Now and then an amount near the largest 64-bit integer: such calls must
** fail with "amount overflows the key's 64-bit counter" where a counter
** would pass it, and work where none would. */
static Arg genHuge(void){
  switch( rnd(3) ){
    case 0: return aInt(I64_MAX - rnd(3));
    case 1: return aInt(I64_MAX/2 + rnd(1000));
    default: return aInt((i64)1<<62);
  }
}
static Arg genAmount(MKey *k){
  int r = rnd(100);
  if( r==0 && chance(50) ) return genHuge();
  if( r<4 ){
    switch( rnd(4) ){
      case 0: return aInt(-1);
      case 1: return aReal(2.5);
      case 2: return aText("5");
      default: return aNull();
    }
  }
  if( r<9 ) return aInt(0);
  if( r<12 ) return aReal((double)(1+rnd(9)));
  if( k && k->bCap && r<40 ) return aInt(rnd((int)(k->cap<200 ? k->cap : 200) + 6));
  if( r<80 ) return aInt(1 + rnd(20));
  return aInt(20 + rnd(80));
}
static Arg genRid(int *pbGiven){
  int r = rnd(100);
  *pbGiven = 1;
  if( r<3 ) return rnd(2) ? aText("") : aReal(1.5);
  if( r<8 ) return aInt(7);
  if( r<45 ){
    char z[8];
    snprintf(z, sizeof(z), "r%d", rnd(6));
    return aText(z);
  }
  *pbGiven = r<55;
  return aNull();
}
static Arg genMeta(void){
  int r = rnd(100);
  if( r<3 ) return aInt(42);
  if( r<5 ) return aBlob("00");
  if( r<40 ){
    char z[24];
    snprintf(z, sizeof(z), "{\"m\":%d}", rnd(1000));
    return aText(z);
  }
  return aNull();
}
static Arg genTtl(void){
  switch( rnd(12) ){
    case 0: return aNull();
    case 1: case 2: return aInt(20 + rnd(300));
    case 3: return aText("2 minutes");
    case 4: return aText("90 seconds");
    case 5: return aText(" 1 Hour ");
    case 6: return aInt(1 + rnd(5));
    case 7: return aText("45");
    case 8: return aInt(0);
    case 9: return aText("soon");
    case 10: return aReal(2.5);
    default: return aInt(-5);
  }
}
static Arg genHoldId(void){
  int r = rnd(100), i, nLive = 0;
  if( r<5 ){
    switch( rnd(5) ){
      case 0: return aInt(0);
      case 1: return aInt(-1);
      case 2: return aText("1");
      case 3: return aNull();
      default: return aReal(1.5);
    }
  }
  for(i=0; i<M.nHold; i++) nLive += M.aHold[i].state==H_LIVE;
  if( r<65 && nLive>0 ){
    int j = rnd(nLive);
    for(i=0; i<M.nHold; i++){
      if( M.aHold[i].state==H_LIVE && j--==0 ) return aInt(M.aHold[i].id);
    }
  }
  if( r<90 && nSeenHold>0 ){
    return aInt(aSeenHold[rnd(nSeenHold<256 ? nSeenHold : 256)]);
  }
  if( r<95 && M.nHold>0 ) return aInt(M.aHold[rnd(M.nHold)].id);
  return aInt(nextHoldId(&M) + rnd(3));
}
static Arg genSettleAmount(Arg hold){
  MHold *h = hold.t==SQLITE_INTEGER ? holdById(&M, hold.i) : 0;
  i64 amt = h ? h->amount : 10;
  int r = rnd(100);
  if( r<3 ) return chance(60) ? genHuge() : aInt(-2);
  if( r<10 ) return aInt(0);
  /* a hold of a huge amount: the same draws from the generator, no
  ** overflow (int for rnd, 64 bits for amt + 1 + ...) */
  if( r<45 ) return aInt(rnd(amt < 0x7fffffff ? (int)amt + 1 : 0x7fffffff));
  if( r<75 ) return aInt(amt);
  {
    i64 extra = 1 + rnd(20);
    return aInt(amt <= I64_MAX - extra ? amt + extra : amt);
  }
}

/* ------------------------------------------------------- function calls */

static void opReserve(int ic){
  MKey *k;
  Arg a[4];
  int nArg = 2, bRid;
  a[0] = genKey(&k);
  a[1] = genAmount(k);
  a[2] = genRid(&bRid);
  if( bRid ) nArg = 3;
  if( chance(30) ){ a[3] = genTtl(); nArg = 4; if( nArg==4 && !bRid ) a[2] = aNull(); }
  doCall(ic, F_RESERVE, a, nArg);
}
static void opSettle(int ic){
  Arg a[3];
  int nArg = 2;
  a[0] = genHoldId();
  a[1] = genSettleAmount(a[0]);
  if( chance(50) ){ a[2] = genMeta(); nArg = 3; }
  doCall(ic, F_SETTLE, a, nArg);
}
static void opRelease(int ic){
  Arg a[1];
  a[0] = genHoldId();
  doCall(ic, F_RELEASE, a, 1);
}
/* max_amount for a min_amount: mostly above it, sometimes equal, below,
** huge, or not an amount at all. */
static Arg genMax(Arg lo, MKey *k){
  int r = rnd(100);
  if( lo.t!=SQLITE_INTEGER || chance(8) ) return genAmount(k);
  if( r<5 && lo.i>0 ) return aInt(lo.i - 1);
  if( r<15 ) return lo;
  if( r<22 || lo.i>I64_MAX-300 ) return aInt(I64_MAX - rnd(2));
  return aInt(lo.i + rnd(k && k->bCap && k->cap<300 ? (int)k->cap + 10 : 300));
}
static void opUpto(int ic){
  MKey *k;
  Arg a[5];
  int nArg = 3, bRid;
  a[0] = genKey(&k);
  a[1] = chance(30) ? aInt(rnd(3)) : genAmount(k);
  a[2] = genMax(a[1], k);
  a[3] = genRid(&bRid);
  if( bRid ) nArg = 4;
  if( chance(25) ){ a[4] = genTtl(); nArg = 5; if( !bRid ) a[3] = aNull(); }
  doCall(ic, F_UPTO, a, nArg);
}
static void opHold(int ic){
  Arg a[1];
  a[0] = genHoldId();
  doCall(ic, F_HOLD, a, 1);
}
/* A lease's heartbeat: mostly short ttls, so that leases run out. */
static Arg genLeaseTtl(void){
  if( chance(70) ) return aInt(1 + rnd(90));
  return genTtl();
}
static void opExtend(int ic){
  Arg a[2];
  a[0] = genHoldId();
  a[1] = genLeaseTtl();
  doCall(ic, F_EXTEND, a, 2);
}
/* quota_grant: mostly to capped lifetime and calendar keys (wallets among
** them), short expiries (in seconds, as durations and as times, also past
** ones) so that grants expire during a run, priorities, request ids shared
** with the other functions and retried, and every refused argument. */
static Arg genGrantExpires(i64 now){
  char z[20];
  switch( rnd(16) ){
    case 0: case 1: case 2: case 3: case 4: return aNull();
    case 5: case 6: return aInt(1 + rnd(120));
    case 7: return aText("90 seconds");
    case 8: return aText("2 minutes");
    case 9: return aText(" 1 hour ");
    case 10: case 11: fmtTime(now + 1 + rnd(900), z); return aText(z);
    case 12: fmtTime(now - rnd(300), z); return aText(z);
    case 13: return rnd(2) ? aInt(0) : aInt(-5);
    case 14: return aText("soon");
    default: return aReal(2.5);
  }
}
static void opGrant(int ic){
  MKey *k = 0;
  Arg a[6];
  int nArg, bRid, i, nOk = 0;
  for(i=0; i<M.nKey; i++) nOk += creditsApply(&M.aKey[i]);
  if( M.nGrant>0 && chance(20) ){
    /* a retry of an earlier grant: its key, amount and request id */
    MGrant *g = &M.aGrant[rnd(M.nGrant)];
    a[0] = keyArg(g->zKey);
    a[1] = aInt(g->amount);
    a[2] = genGrantExpires(aConn[ic].now);
    a[3] = aInt(g->priority);
    a[4] = g->bRid ? aText(g->zRid) : aText("r0");
    a[5] = genMeta();
    doCall(ic, F_GRANT, a, 5 + rnd(2));
    return;
  }
  if( nOk>0 && chance(75) ){
    int j = rnd(nOk);
    for(i=0; i<M.nKey; i++){
      if( creditsApply(&M.aKey[i]) && j--==0 ){ k = &M.aKey[i]; break; }
    }
    a[0] = keyArg(k->zName);
  }else{
    a[0] = genKey(&k);
  }
  switch( rnd(40) ){
    case 0: a[1] = aInt(0); break;
    case 1: a[1] = aInt(-3); break;
    case 2: a[1] = aReal(2.5); break;
    case 3: a[1] = aText("5"); break;
    case 4: a[1] = aNull(); break;
    case 5: case 6: a[1] = genHuge(); break;
    case 7: a[1] = aReal(4.0); break;
    default: a[1] = aInt(chance(70) ? 1 + rnd(30) : 30 + rnd(300)); break;
  }
  a[2] = genGrantExpires(aConn[ic].now);
  switch( rnd(12) ){
    case 0: a[3] = aText("x"); break;
    case 1: a[3] = aReal(1.5); break;
    case 2: case 3: case 4: case 5: a[3] = aNull(); break;
    default: a[3] = aInt(rnd(5) - 2); break;
  }
  a[4] = genRid(&bRid);
  a[5] = genMeta();
  nArg = 2 + rnd(5);
  doCall(ic, F_GRANT, a, nArg);
}
/* quota_void of live, used-up, expired, voided and unknown grants. */
static void opVoid(int ic){
  Arg a[1];
  int r = rnd(100);
  if( r<6 ){
    switch( rnd(5) ){
      case 0: a[0] = aInt(0); break;
      case 1: a[0] = aInt(-1); break;
      case 2: a[0] = aText("1"); break;
      case 3: a[0] = aNull(); break;
      default: a[0] = aReal(1.5); break;
    }
  }else if( r<85 && M.nGrant>0 ){
    a[0] = aInt(M.aGrant[rnd(M.nGrant)].id);
  }else{
    a[0] = aInt(nextGrantId(&M) + rnd(3));
  }
  doCall(ic, F_VOID, a, 1);
}

static void opCharge(int ic, int f){
  MKey *k;
  Arg a[4];
  int nArg = 2, bRid;
  a[0] = genKey(&k);
  a[1] = genAmount(k);
  a[2] = genRid(&bRid);
  if( bRid ) nArg = 3;
  if( chance(40) ){ a[3] = genMeta(); nArg = 4; if( !bRid ) a[2] = aNull(); }
  doCall(ic, f, a, nArg);
}
static void opCheck(int ic, int f){
  MKey *k;
  Arg a[2];
  int nArg = 1;
  a[0] = genKey(&k);
  if( chance(65) ){
    nArg = 2;
    if( chance(4) ) a[1] = rnd(2) ? aNull() : aInt(-1);
    else if( k && k->bCap && chance(60) ) a[1] = aInt(rnd((int)(k->cap<300 ? k->cap : 300) + 4));
    else a[1] = aInt(rnd(60));
  }
  doCall(ic, f, a, nArg);
}

/* ------------------------------------------------------------ key writes */

static int chainLevels(Model *m, MKey *k){
  int n = 0;
  while( k && n<MAXKEY ){ n++; k = k->parent ? keyById(m, k->parent) : 0; }
  return n;
}
static int subtreeHeight(Model *m, MKey *k, int depth){
  int i, h = 1;
  if( depth>MAXKEY ) return 1;
  for(i=0; i<m->nKey; i++){
    if( m->aKey[i].parent==k->id ){
      int x = 1 + subtreeHeight(m, &m->aKey[i], depth+1);
      if( x>h ) h = x;
    }
  }
  return h;
}
static int isAncestorOrSelf(Model *m, MKey *a, MKey *k){
  int n = 0;
  while( k && n++<MAXKEY ){ if( k==a ) return 1; k = k->parent ? keyById(m, k->parent) : 0; }
  return 0;
}

static Arg genCap(void){
  int r = rnd(100);
  if( r<15 ) return aNull();
  if( r<20 ) return aInt(0);
  if( r<23 ) return aReal(5.0);
  if( r<26 ) return rnd(2) ? aInt(-1) : aText("10");
  if( r<30 ) return aInt(1000 + rnd(2000));
  return aInt(1 + rnd(150));
}
static Arg genPeriod(void){
  static const char *az[] = {
    "hour", "day", " WEEK ", "month", "year", "Day", "Month",
    "lifetime", "Lifetime",
    "rolling 10 seconds", "rolling 45", "rolling 90 seconds", "rolling 2 minutes",
    "rolling 1 hours", "rolling  1 day", "Rolling 30 Minute",
  };
  static const char *azRate[] = {
    "rate 10 per second", "rate 3 per 7 seconds", "rate 1 per minute",
    "Rate 5 PER 10 Minutes", "rate 1000000000000 per day", "rate 2 per 90",
    "rate 20 per hour", "rate 1 per 3 seconds",
  };
  static const char *azBad[] = {
    "fortnight", "rolling 0 seconds", "rate 0 per second", "rate 5 per week",
  };
  int r = rnd(100);
  if( r<10 ) return aNull();
  if( r<14 ) return aText(azBad[rnd(4)]);
  if( r<40 ) return aText(azRate[rnd(8)]);
  return aText(az[rnd(16)]);
}
static Arg genAnchor(i64 t){
  Arg a;
  Civil c;
  i64 v;
  char z[64];
  int form = rnd(6);
  if( chance(4) ){ a = aText("the 31st"); a.i = -I64_MAX-1; return a; }
  splitTime(t + (i64)(rnd(800) - 600)*86400, &c);
  if( chance(40) ){
    /* a month end: the 31st, the 30th or a leap day */
    switch( rnd(3) ){
      case 0: { static const int a31[] = {1,3,5,7,8,10,12}; c.m = a31[rnd(7)]; c.d = 31; break; }
      case 1: c.m = 4 + 2*rnd(2); c.d = 30; break;
      default: c.y = rnd(2) ? 2024 : 2028; c.m = 2; c.d = 29; break;
    }
  }
  switch( rnd(3) ){
    case 0: c.tod = 0; break;
    case 1: c.tod = 10*3600; break;
    default: c.tod = rnd(86400); break;
  }
  v = mkTime(c.y, c.m, c.d, c.tod);
  if( form==0 && c.tod==0 ){
    snprintf(z, sizeof(z), "%04d-%02d-%02d", (int)c.y, c.m, c.d);
  }else if( form==1 ){
    snprintf(z, sizeof(z), "%04d-%02d-%02dT%02d:%02d:%02d", (int)c.y, c.m, c.d,
             (int)(c.tod/3600), (int)(c.tod/60%60), (int)(c.tod%60));
  }else if( form==2 ){
    /* a time zone: 2 hours east of UTC, so it means 2 hours earlier */
    snprintf(z, sizeof(z), "%04d-%02d-%02dT%02d:%02d:%02d+02:00", (int)c.y, c.m, c.d,
             (int)(c.tod/3600), (int)(c.tod/60%60), (int)(c.tod%60));
    v -= 7200;
  }else if( form==3 ){
    snprintf(z, sizeof(z), "%04d-%02d-%02d %02d:%02d:%02d.750", (int)c.y, c.m, c.d,
             (int)(c.tod/3600), (int)(c.tod/60%60), (int)(c.tod%60));
  }else{
    fmtTime(v, z);
  }
  a = aText(z);
  a.i = v;
  return a;
}
static Arg genRetention(void){
  switch( rnd(9) ){
    case 0: return aNull();
    case 1: return aInt(0);
    case 2: return aInt(3600);
    case 3: return aText("2 hours");
    case 4: return aText("forever");
    case 5: return aText("Forever");
    case 6: return aInt(600 + rnd(6000));
    case 7: return aInt(-1);
    default: return aText("a while");
  }
}
/* An alert: often NULL; lists of percents (around 80% and 100%, also past
** the cap) and units (in reach of small caps); now and then not a list. */
static Arg genAlert(void){
  static const char *azBad[] = {"0%", "x", "80%,", "5.5%", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"};
  char z[64];
  int r = rnd(100);
  if( r<25 ) return aNull();
  if( r<31 ) return aText(azBad[rnd(5)]);
  if( r<33 ) return rnd(2) ? aInt(0) : aReal(2.5);
  if( r<40 ) return aInt(1 + rnd(100));
  switch( rnd(6) ){
    case 0: return aText("80%, 100%");
    case 1: return aText(" 100% ,50%,80%");
    case 2: snprintf(z, sizeof(z), "%d%%", 1 + rnd(150)); return aText(z);
    case 3: snprintf(z, sizeof(z), "%d, %d%%", 1 + rnd(60), 1 + rnd(120)); return aText(z);
    case 4: snprintf(z, sizeof(z), "%d,%d,%d", 1 + rnd(30), 1 + rnd(100), 1 + rnd(300)); return aText(z);
    default: return aText("50%, 90%, 100%, 120%");
  }
}
static Arg genEnforce(void){
  switch( rnd(10) ){
    case 0: case 1: return aNull();
    case 2: case 3: return aText("hard");
    case 4: case 5: case 6: return aText("shadow");
    case 7: return aText(" Shadow ");
    case 8: return aText("HARD");
    default: return rnd(2) ? aText("soft") : aInt(1);
  }
}
static Arg genNote(void){
  char z[24];
  if( chance(20) ) return aNull();
  snprintf(z, sizeof(z), "{\"n\":%d}", rnd(100));
  return aText(z);
}
/* A parent for key k (NULL on insert) keeping chains within 3 levels; or,
** now and then, one that makes a cycle or does not exist. */
static Arg genParent(MKey *k){
  MKey *aOk[MAXKEY];
  int nOk = 0, i, r = rnd(100);
  int h = k ? subtreeHeight(&M, k, 0) : 1;
  if( r<20 ) return aNull();
  if( r<25 ) return aText(missingName(&M));
  if( k && r<32 ){
    /* a descendant, or the key itself: a cycle */
    MKey *aD[MAXKEY];
    int nD = 0;
    for(i=0; i<M.nKey; i++) if( isAncestorOrSelf(&M, k, &M.aKey[i]) ) aD[nD++] = &M.aKey[i];
    return keyArg(aD[rnd(nD)]->zName);
  }
  for(i=0; i<M.nKey; i++){
    MKey *p = &M.aKey[i];
    if( k && isAncestorOrSelf(&M, k, p) ) continue;
    if( chainLevels(&M, p) + h <= 3 ) aOk[nOk++] = p;
  }
  if( nOk==0 ) return aNull();
  return keyArg(aOk[rnd(nOk)]->zName);
}

/* zOr: "" or " OR IGNORE" or " OR REPLACE". */
static void writeSql(const KWrite *w, const char *zUpdateKey, const char *zOr,
                     char *z, size_t n){
  int i;
  size_t j, j0;
  char zA[80];
  if( zUpdateKey==0 ){
    j = (size_t)snprintf(z, n, "INSERT%s INTO quota(", zOr);
    j0 = j;
    for(i=0; i<C_N; i++) if( w->bSet[i] ) j += (size_t)snprintf(z+j, n-j, "%s%s", j>j0 ? ", " : "", azCol[i]);
    j += (size_t)snprintf(z+j, n-j, ") VALUES (");
    for(i=0; i<C_N; i++){
      if( !w->bSet[i] ) continue;
      argSql(&w->v[i], zA, sizeof(zA));
      j += (size_t)snprintf(z+j, n-j, "%s%s", z[j-1]=='(' ? "" : ", ", zA);
    }
    snprintf(z+j, n-j, ")");
  }else{
    int bFirst = 1;
    j = (size_t)snprintf(z, n, "UPDATE%s quota SET ", zOr);
    for(i=0; i<C_N; i++){
      if( !w->bSet[i] ) continue;
      argSql(&w->v[i], zA, sizeof(zA));
      j += (size_t)snprintf(z+j, n-j, "%s%s = %s", bFirst ? "" : ", ", azCol[i], zA);
      bFirst = 0;
    }
    sqlite3_snprintf((int)(n-j), z+j, " WHERE key = %Q", zUpdateKey);
  }
}

static void doKeyWrite(int ic, const char *zSql, const Res *exp){
  Res got;
  dbRun(&aConn[ic], zSql, &got);
  st.keywrites++;
  if( exp->bErr ) st.failed++;
  checkResult(&aConn[ic], zSql, exp, &got);
}

static Arg genRollover(void){
  int r = rnd(100);
  if( r<20 ) return aNull();
  if( r<30 ) return aInt(0);
  if( r<70 ) return aInt(1 + rnd(50));
  if( r<85 ) return aInt(1 + rnd(500));
  if( r<90 ) return aInt(I64_MAX);
  if( r<93 ) return aInt(-1);
  if( r<96 ) return aText("x");
  if( r<98 ) return aReal(2.5);
  return aReal(7.0);
}
static void opInsert(int ic){
  KWrite w;
  Res exp;
  char zSql[700];
  const char *zName, *zOr;
  MKey *k;
  int r;
  memset(&w, 0, sizeof(w));
  zName = chance(90) ? missingName(&M) : ((k = anyKey(&M)) ? k->zName : "k0");
  w.bSet[C_KEY] = 1;
  w.v[C_KEY] = chance(2) ? aText("") : keyArg(zName);
  if( chance(75) ){ w.bSet[C_CAP] = 1; w.v[C_CAP] = genCap(); }
  if( chance(80) ){ w.bSet[C_PERIOD] = 1; w.v[C_PERIOD] = genPeriod(); }
  if( chance(25) ){ w.bSet[C_ANCHOR] = 1; w.v[C_ANCHOR] = genAnchor(aConn[ic].now); }
  if( chance(45) ){
    w.bSet[C_PARENT] = 1;
    w.v[C_PARENT] = chance(4) ? aText(zName) : genParent(0);
  }
  if( chance(20) ){ w.bSet[C_RETENTION] = 1; w.v[C_RETENTION] = genRetention(); }
  if( chance(15) ){
    w.bSet[C_USED] = 1;
    w.v[C_USED] = chance(8) ? aInt(-3) : aInt(rnd(40));
  }
  if( chance(2) ){ w.bSet[C_RESERVED] = 1; w.v[C_RESERVED] = aInt(5); }
  if( chance(20) ){ w.bSet[C_NOTE] = 1; w.v[C_NOTE] = genNote(); }
  if( chance(40) ){ w.bSet[C_ALERT] = 1; w.v[C_ALERT] = genAlert(); }
  if( chance(20) ){ w.bSet[C_ENFORCE] = 1; w.v[C_ENFORCE] = genEnforce(); }
  if( chance(35) ){ w.bSet[C_ROLLOVER] = 1; w.v[C_ROLLOVER] = genRollover(); }
  r = rnd(100);
  zOr = r<12 ? " OR IGNORE" : r<17 ? " OR REPLACE" : "";
  writeSql(&w, 0, zOr, zSql, sizeof(zSql));
  mInsert(&M, aConn[ic].now, &w, &exp);
  if( exp.bErr && strcmp(zOr, " OR IGNORE")==0 ){
    resNull(&exp);                   /* INSERT OR IGNORE skips a refused row */
  }else if( exp.bErr && strcmp(zOr, " OR REPLACE")==0 && strstr(exp.zMsg, "already exists") ){
    strcat(exp.zMsg, " (INSERT OR REPLACE would drop its usage: use UPDATE)");
  }
  doKeyWrite(ic, zSql, &exp);
}

static void opUpdate(int ic){
  KWrite w;
  Res exp;
  char zSql[700];
  MKey *k = anyKey(&M);
  const char *zName = (k && chance(95)) ? k->zName : missingName(&M);
  MKey *kUp = keyByName(&M, zName);     /* calendar keys get rollovers more */
  int n = 0, bIgnore;
  memset(&w, 0, sizeof(w));
  while( n==0 ){
    if( chance(35) ){ w.bSet[C_CAP] = 1; w.v[C_CAP] = genCap(); n++; }
    if( chance(20) ){ w.bSet[C_PERIOD] = 1; w.v[C_PERIOD] = genPeriod(); n++; }
    if( chance(12) ){
      w.bSet[C_ANCHOR] = 1;
      w.v[C_ANCHOR] = chance(25) ? aNull() : genAnchor(aConn[ic].now);
      n++;
    }
    if( chance(15) ){ w.bSet[C_PARENT] = 1; w.v[C_PARENT] = genParent(keyByName(&M, zName)); n++; }
    if( chance(20) ){
      int r = rnd(100);
      w.bSet[C_USED] = 1;
      w.v[C_USED] = r<50 ? aInt(0) : r<90 ? aInt(rnd(60)) : r<92 ? genHuge()
                  : r<96 ? aNull() : aInt(-1);
      n++;
    }
    if( chance(8) ){ w.bSet[C_RETENTION] = 1; w.v[C_RETENTION] = genRetention(); n++; }
    if( chance(8) ){ w.bSet[C_NOTE] = 1; w.v[C_NOTE] = genNote(); n++; }
    if( chance(12) ){ w.bSet[C_ALERT] = 1; w.v[C_ALERT] = genAlert(); n++; }
    if( chance(8) ){ w.bSet[C_ENFORCE] = 1; w.v[C_ENFORCE] = genEnforce(); n++; }
    if( chance(kUp && isCal(kUp->kind) ? 30 : 8) ){
      w.bSet[C_ROLLOVER] = 1; w.v[C_ROLLOVER] = genRollover(); n++;
    }
    if( chance(3) ){ w.bSet[C_KEY] = 1; w.v[C_KEY] = chance(50) ? keyArg(zName) : aText("k9"); n++; }
    if( chance(2) ){ w.bSet[C_RESERVED] = 1; w.v[C_RESERVED] = aInt(0); n++; }
  }
  bIgnore = chance(8);
  writeSql(&w, zName, bIgnore ? " OR IGNORE" : "", zSql, sizeof(zSql));
  mUpdate(&M, aConn[ic].now, zName, &w, &exp);
  if( exp.bErr && bIgnore ) resNull(&exp);   /* the refused row is skipped */
  doKeyWrite(ic, zSql, &exp);
}

/* UPDATE quota SET cap = cap + D WHERE cap IS NOT NULL: a statement over
** several rows, undone whole when one row is refused. */
static void opUpdateMany(int ic){
  Model S;
  Res exp;
  char zSql[200];
  int d = chance(75) ? 1 + rnd(5) : -(20 + rnd(100)), i;
  snprintf(zSql, sizeof(zSql), "UPDATE quota SET cap = cap + %d WHERE cap IS NOT NULL", d);
  modelCopy(&S, &M);
  resNull(&exp);
  for(i=0; i<S.nKey && !exp.bErr; i++){
    KWrite w;
    char zName[NAMELEN];
    if( !S.aKey[i].bCap ) continue;
    memset(&w, 0, sizeof(w));
    w.bSet[C_CAP] = 1;
    w.v[C_CAP] = aInt(S.aKey[i].cap + d);
    memcpy(zName, S.aKey[i].zName, NAMELEN);
    mUpdate(&S, aConn[ic].now, zName, &w, &exp);
  }
  if( exp.bErr ){
    modelFree(&S);
  }else{
    modelFree(&M);
    M = S;
  }
  doKeyWrite(ic, zSql, &exp);
}

static void opDelete(int ic){
  Res exp;
  char zSql[200];
  MKey *k = anyKey(&M);
  const char *zName = (k && chance(95)) ? k->zName : missingName(&M);
  int i;
  /* prefer a key without children */
  if( k && chance(70) ){
    for(i=0; i<M.nKey; i++){
      int j, bParent = 0;
      for(j=0; j<M.nKey; j++) bParent |= M.aKey[j].parent==M.aKey[i].id;
      if( !bParent && chance(50) ){ zName = M.aKey[i].zName; break; }
    }
  }
  sqlite3_snprintf((int)sizeof(zSql), zSql, "DELETE FROM quota WHERE key = %Q", zName);
  mDelete(&M, aConn[ic].now, zName, &exp);
  doKeyWrite(ic, zSql, &exp);
}

/* ---------------------------------------------------------- transactions */

static void opBegin(int ic){
  Res exp, got;
  const char *zSql = chance(50) ? "BEGIN" : "BEGIN IMMEDIATE";
  resNull(&exp);
  dbRun(&aConn[ic], zSql, &got);
  checkResult(&aConn[ic], zSql, &exp, &got);
  modelCopy(&C, &M);
  iTxn = ic;
  nTxnLeft = 1 + rnd(6);
  st.txns++;
}

static void opEnd(void){
  Res exp, got;
  int bCommit = chance(70);
  const char *zSql = bCommit ? "COMMIT" : "ROLLBACK";
  Conn *c = &aConn[iTxn];
  resNull(&exp);
  dbRun(c, zSql, &got);
  checkResult(c, zSql, &exp, &got);
  if( bCommit ){
    modelFree(&C);
  }else{
    modelFree(&M);
    M = C;
    memset(&C, 0, sizeof(C));
    st.rollbacks++;
  }
  iTxn = -1;
}

/* ----------------------------------------------------------------- clock */

static void pinClock(int ic, i64 t){
  Conn *c = &aConn[ic];
  char zT[20], zSql[80];
  Res exp, got;
  fmtTime(t, zT);
  snprintf(zSql, sizeof(zSql), "SELECT quota_clock('%s')", zT);
  resText(&exp, zT);
  dbRun(c, zSql, &got);
  c->now = t;
  checkResult(c, zSql, &exp, &got);
  st.clocks++;
}

static void opClock(void){
  int ic = iTxn>=0 ? (chance(70) ? iTxn : 1-iTxn) : rnd(2);
  Model *m = viewOf(ic);
  i64 t = aConn[ic].now, aRes[MAXKEY];
  int i, r = rnd(22);
  if( chance(8) ){
    /* read the pinned clock: quota_clock() and quota_clock('now') */
    Res exp, got;
    char zT[20];
    const char *zSql = chance(50) ? "SELECT quota_clock()" : "SELECT quota_clock('now')";
    fmtTime(t, zT);
    resText(&exp, zT);
    dbRun(&aConn[ic], zSql, &got);
    checkResult(&aConn[ic], zSql, &exp, &got);
    return;
  }
  switch( r ){
    case 0: break;
    case 1: case 2: case 3: case 4: t += 1 + rnd(10); break;
    case 5: case 6: case 7: t += 30 + rnd(600); break;
    case 8: case 9: {                       /* a hold's expiry */
      int n = 0;
      for(i=0; i<m->nHold; i++) n += m->aHold[i].state==H_LIVE;
      if( n ){
        int j = rnd(n);
        for(i=0; i<m->nHold; i++){
          if( m->aHold[i].state==H_LIVE && j--==0 ) t = m->aHold[i].expires + rnd(3) - 1;
        }
      }else{
        t += optHoldTtl;
      }
      break;
    }
    case 10: case 11: {                     /* a calendar period's end */
      MKey *k = anyKey(m);
      if( k && isCal(k->kind) ){
        KView v;
        reservedAll(m, t, aRes);
        keyView(m, k, t, aRes, &v);
        t = v.pe + rnd(3) - 1;
      }else{
        t += 3600;
      }
      break;
    }
    case 12: case 13: {                     /* a window's oldest charge leaves */
      MKey *k = anyKey(m);
      if( k && k->kind==K_ROLL && k->nB>0 ){
        for(i=0; i<k->nB && k->aB[i].sec <= t - k->len; i++){}
        if( i<k->nB ) t = k->aB[i].sec + k->len + rnd(3) - 1;
        else t += k->len;
      }else{
        t += 60;
      }
      break;
    }
    case 14: {                              /* a request id ages out */
      if( m->nReq ) t = m->aReq[rnd(m->nReq)].at + optIdem + rnd(3) - 1;
      else t += optIdem;
      break;
    }
    case 15: t += 3600 + rnd(7200); break;
    case 16: t += chance(30) ? 86400 : 600; break;
    case 17: t -= 1 + rnd(120); break;      /* backwards */
    case 18: if( chance(25) ) t -= 3600 + rnd(86400); else t -= rnd(5); break;
    case 19: t = aConn[1-ic].now; break;
    case 20: {                              /* over a month end */
      Civil c;
      splitTime(t, &c);
      t = mkTime(c.m==12 ? c.y+1 : c.y, c.m==12 ? 1 : c.m+1, 1, 0) - 1 + rnd(3);
      break;
    }
    default: t += rnd(5); break;
  }
  if( t > aConn[1-ic].now + 2*86400 || t < aConn[1-ic].now - 2*86400 ){
    t = aConn[1-ic].now + rnd(60);
  }
  pinClock(ic, t);
}

/* ------------------------------------------------ calls from a TEMP trigger */

/* INSERT INTO app_events fires the connection's TEMP trigger app_charge,
** which makes one quota call per row and stores its result in
** app_results. The calls join the INSERT's transaction: a failing one
** fails the INSERT, and every call of it is undone. */
static void opTrigger(int ic){
  Conn *c = &aConn[ic];
  int n = 1 + rnd(3), i, nArg, f = 0;
  int eHow = rnd(5);      /* 0-1 trigger on a table, 2 on a TEMP table, 3-4 INSERT ... SELECT */
  int bTemp, bSelect;
  const char *zEvents, *zResults;
  if( eHow==2 && !cfg.bTempTable ) eHow = 0;
  bTemp = eHow==2;
  bSelect = eHow>=3;
  zEvents = bTemp ? "tmp_events" : "app_events";
  zResults = bTemp ? "tmp_results" : "app_results";
  char zSql[1600], zA[400];
  size_t j;
  Model S;
  Res exp, got, r0;
  Buf bExp;
  memset(&bExp, 0, sizeof(bExp));
  bufAdd(&bExp, "%s", "");
  modelCopy(&S, &M);
  resNull(&exp);
  if( bSelect ){
    /* the calls in a writing statement of their own, no trigger */
    j = (size_t)snprintf(zSql, sizeof(zSql), "INSERT INTO app_results(v) SELECT CASE column1"
        " WHEN 'consume' THEN quota_consume(column2, column3, column4, column5)"
        " WHEN 'record' THEN quota_record(column2, column3, column4, column5)"
        " WHEN 'reserve' THEN quota_reserve(column2, column3, column4, column5)"
        " WHEN 'settle' THEN quota_settle(column2, column3, column4)"
        " WHEN 'reserve_upto' THEN quota_reserve_upto(column2, column3, column4, column5)"
        " WHEN 'extend' THEN quota_extend(column2, column3)"
        " WHEN 'release' THEN quota_release(column2) END FROM (VALUES ");
  }else{
    j = (size_t)snprintf(zSql, sizeof(zSql), "INSERT INTO %s(fn, a, b, c, d) VALUES ", zEvents);
  }
  for(i=0; i<n; i++){
    Arg a[4];
    MKey *k;
    int bRid;
    a[0] = a[1] = a[2] = a[3] = aNull();
    switch( rnd(12) ){
      case 0: case 1: case 2: f = F_CONSUME; break;
      case 3: f = F_RECORD; break;
      case 4: case 5: f = F_RESERVE; break;
      case 6: case 7: f = F_SETTLE; break;
      case 8: f = F_UPTO; break;
      case 9: f = F_EXTEND; break;
      default: f = chance(50) ? F_RELEASE : F_CONSUME; break;
    }
    if( f==F_UPTO ){
      a[0] = genKey(&k);
      a[1] = chance(30) ? aInt(rnd(3)) : genAmount(k);
      a[2] = genMax(a[1], k);
      a[3] = genRid(&bRid);
      nArg = 4;
    }else if( f==F_EXTEND ){
      a[0] = genHoldId();
      a[1] = genLeaseTtl();
      nArg = 2;
    }else if( f==F_CONSUME || f==F_RECORD || f==F_RESERVE ){
      a[0] = genKey(&k);
      a[1] = genAmount(k);
      a[2] = genRid(&bRid);
      if( f==F_RESERVE ){ if( chance(20) ) a[3] = genTtl(); }
      else if( chance(30) ) a[3] = genMeta();
      nArg = 4;
    }else if( f==F_SETTLE ){
      a[0] = genHoldId();
      a[1] = genSettleAmount(a[0]);
      if( chance(30) ) a[2] = genMeta();
      nArg = 3;
    }else{
      a[0] = genHoldId();
      nArg = 1;
    }
    argList(a, 4, zA, sizeof(zA));
    j += (size_t)snprintf(zSql+j, sizeof(zSql)-j, "%s('%s', %s)", i ? ", " : "",
                          azFn[f]+6, zA);
    if( !exp.bErr ){
      mApply(&S, c->now, f, a, nArg, &r0);
      if( r0.bErr ){
        exp = r0;
      }else{
        char z[1300];
        resRender(&r0, z, sizeof(z));
        bufAdd(&bExp, "%s\n", z);
      }
    }
  }
  if( bSelect ) j += (size_t)snprintf(zSql+j, sizeof(zSql)-j, ")");
  {
    Res seq;
    i64 seq0;
    char zQ[120];
    snprintf(zQ, sizeof(zQ), "SELECT coalesce(max(seq), 0) FROM %s", zResults);
    dbRun(c, zQ, &seq);
    if( seq.bErr ) fail("%c: reading %s: %s", c->cName, zResults, seq.zMsg);
    seq0 = atoll(seq.zVal);
    dbRun(c, zSql, &got);
    st.triggers++;
    st.calls += n;
    checkResult(c, zSql, &exp, &got);
    if( exp.bErr ){
      st.failed++;
      modelFree(&S);
    }else{
      modelFree(&M);
      M = S;
      snprintf(zQ, sizeof(zQ), "SELECT v FROM %s WHERE seq>%lld ORDER BY seq", zResults, seq0);
      dbRows(c, zQ, &bufGot);
      if( strcmp(bExp.z, bufGot.z)!=0 ) reportDiff("the results of the trigger's calls", c, bExp.z, bufGot.z);
    }
  }
  free(bExp.z);
}

/* ------------------------------------------- calls in a reading statement */

/* SELECT quota_...(...) FROM app_jobs (a table: the statement reads the
** database) or FROM (VALUES ...) (it reads nothing). Outside a transaction
** a writing call in a statement that reads fails at once with SQLITE_BUSY;
** in one that reads nothing each row's call is a transaction of its own.
** Inside BEGIN ... COMMIT each row's call is a savepoint. Either way a
** failing call stops the statement and the earlier rows' calls stand. */
static void opReading(int ic){
  Conn *c = &aConn[ic];
  int n = 1 + rnd(3), i, bTable = chance(50), bStop = 0;
  char zSql[1200], zRows[800], zA[300];
  size_t j = 0;
  Buf bExp, bGot;
  sqlite3_stmt *p = 0;
  int rc;
  memset(&bExp, 0, sizeof(bExp)); memset(&bGot, 0, sizeof(bGot));
  bufAdd(&bExp, "%s", ""); bufAdd(&bGot, "%s", "");
  zRows[0] = 0;
  for(i=0; i<n; i++){
    Arg a[2];
    MKey *k;
    int f;
    Res r;
    switch( rnd(6) ){
      case 0: case 1: f = F_CONSUME; break;
      case 2: f = F_RECORD; break;
      case 3: f = F_RESERVE; break;
      case 4: f = F_CHECK; break;
      default: f = F_STATUS; break;
    }
    a[0] = genKey(&k);
    a[1] = genAmount(k);
    argList(a, 2, zA, sizeof(zA));
    j += (size_t)snprintf(zRows+j, sizeof(zRows)-j, "%s('%s', %s)", i ? ", " : "", azFn[f]+6, zA);
    if( bStop ) continue;
    if( bTable && iTxn<0 && f!=F_CHECK && f!=F_STATUS ){
      /* the arguments are checked first; then the call refuses to write */
      Model S;
      modelCopy(&S, &M);
      mApply(&S, c->now, f, a, 2, &r);
      modelFree(&S);
      if( !(r.bErr && r.code==SQLITE_MISMATCH) ){
        resErr(&r, SQLITE_BUSY, "%s: cannot write from a statement that is reading the"
               " database; call %s in a statement of its own", azFn[f], azFn[f]);
      }
    }else{
      mApply(&M, c->now, f, a, 2, &r);
    }
    st.calls++;
    if( r.bErr ){
      bufAdd(&bExp, "error %d {%s}\n", r.code, r.zMsg);
      st.failed++;
      bStop = 1;
    }else{
      char z[1300];
      resRender(&r, z, sizeof(z));
      bufAdd(&bExp, "%s\n", z);
    }
  }
  if( bTable ){
    snprintf(zSql, sizeof(zSql), "DELETE FROM app_jobs; INSERT INTO app_jobs(fn, a, b) VALUES %s", zRows);
    dbExec(c, zSql);
    logOp("%c: %s", c->cName, zSql);
    snprintf(zSql, sizeof(zSql), "SELECT CASE fn WHEN 'consume' THEN quota_consume(a, b)"
             " WHEN 'record' THEN quota_record(a, b) WHEN 'reserve' THEN quota_reserve(a, b)"
             " WHEN 'check' THEN quota_check(a, b) WHEN 'status' THEN quota_status(a, b) END"
             " FROM app_jobs ORDER BY rowid");
  }else{
    snprintf(zSql, sizeof(zSql), "SELECT CASE column1 WHEN 'consume' THEN quota_consume(column2, column3)"
             " WHEN 'record' THEN quota_record(column2, column3)"
             " WHEN 'reserve' THEN quota_reserve(column2, column3)"
             " WHEN 'check' THEN quota_check(column2, column3)"
             " WHEN 'status' THEN quota_status(column2, column3) END FROM (VALUES %s)", zRows);
  }
  if( sqlite3_prepare_v2(c->db, zSql, -1, &p, 0)!=SQLITE_OK ){
    fail("%c: preparing %s: %s", c->cName, zSql, sqlite3_errmsg(c->db));
  }
  while( (rc = sqlite3_step(p))==SQLITE_ROW ){
    const char *z = (const char*)sqlite3_column_text(p, 0);
    bufAdd(&bGot, "%s\n", z ? z : "NULL");
  }
  if( rc!=SQLITE_DONE ){
    bufAdd(&bGot, "error %d {%s}\n", sqlite3_errcode(c->db) & 0xff, sqlite3_errmsg(c->db));
  }
  sqlite3_finalize(p);
  logOp("%c: %s -> %s", c->cName, zSql, bGot.z);
  if( strcmp(bExp.z, bGot.z)!=0 ) reportDiff("the rows of a reading statement", c, bExp.z, bGot.z);
  free(bExp.z); free(bGot.z);
}

/* ------------------------------------ a quota call from inside a quota call */

/* A TEMP trigger on a shadow table runs a quota function while a quota call
** writes that table. The contract: the inner call is refused with an error
** that says the calls cannot nest, the outer call fails, nothing changes. */
static void opNest(int ic){
  Conn *c = &aConn[ic];
  MKey *k = anyKey(&M);
  int eOn = rnd(10), bHolds = eOn<2, bEvents = eOn>=8, f, nArg, i;
  const char *zWhen = chance(70) ? "AFTER" : "BEFORE";
  char zInner[120], zTrig[400], zArgs[300], zSql[400];
  Arg a[4];
  Model S;
  Res exp, got;
  if( !k ) return;
  switch( rnd(10) ){
    case 7: sqlite3_snprintf(sizeof(zInner), zInner, "quota_hold(1)"); break;
    case 8: sqlite3_snprintf(sizeof(zInner), zInner, "quota_extend(1, 5)"); break;
    case 9: sqlite3_snprintf(sizeof(zInner), zInner, "quota_reserve_upto(%Q, 0, 1)", k->zName); break;
    case 0: sqlite3_snprintf(sizeof(zInner), zInner, "quota_check(%Q)", k->zName); break;
    case 1: sqlite3_snprintf(sizeof(zInner), zInner, "quota_status(%Q, 2)", k->zName); break;
    case 2: sqlite3_snprintf(sizeof(zInner), zInner, "quota_consume(%Q, 1)", k->zName); break;
    case 3: sqlite3_snprintf(sizeof(zInner), zInner, "quota_record(%Q, 1)", k->zName); break;
    case 4: sqlite3_snprintf(sizeof(zInner), zInner, "quota_reserve(%Q, 1)", k->zName); break;
    case 5: sqlite3_snprintf(sizeof(zInner), zInner, "quota_release(%lld)", nextHoldId(&M)); break;
    default: sqlite3_snprintf(sizeof(zInner), zInner, "quota_purge()"); break;
  }
  snprintf(zTrig, sizeof(zTrig), "CREATE TEMP TRIGGER quota_nest %s INSERT ON main.quota_%s"
           " BEGIN SELECT %s; END", zWhen, bHolds ? "holds" : bEvents ? "events" : "ledger",
           zInner);
  dbExec(c, zTrig);
  logOp("%c: %s", c->cName, zTrig);
  for(i=0; i<4; i++) a[i] = aNull();
  a[0] = keyArg(k->zName);
  a[1] = aInt(rnd(5));
  nArg = 2;
  if( bHolds ){
    f = F_RESERVE;
  }else{
    int nLive = 0;
    for(i=0; i<M.nHold; i++) nLive += M.aHold[i].state==H_LIVE;
    f = (nLive && chance(30)) ? F_SETTLE : chance(50) ? F_RECORD : F_CONSUME;
    if( f==F_SETTLE ){ a[0] = genHoldId(); a[1] = aInt(rnd(5)); }
    /* on the events: a charge big enough to reach a threshold, often */
    if( bEvents && f!=F_SETTLE ) a[1] = aInt(rnd(40));
  }
  argList(a, nArg, zArgs, sizeof(zArgs));
  snprintf(zSql, sizeof(zSql), "SELECT %s(%s)", azFn[f], zArgs);
  modelCopy(&S, &M);
  mApply(&S, c->now, f, a, nArg, &exp);
  if( (bHolds && exp.bHoldIns) || (bEvents && exp.bEvent)
   || (!bHolds && !bEvents && exp.bLedger) ){
    resErr(&exp, 0, "*cannot nest*");
    exp.bGlob = 1;
    modelFree(&S);
    st.nests++;
  }else{
    modelFree(&M);
    M = S;
  }
  dbRun(c, zSql, &got);
  st.calls++;
  checkResult(c, zSql, &exp, &got);
  dbExec(c, "DROP TRIGGER temp.quota_nest");
  logOp("%c: DROP TRIGGER temp.quota_nest", c->cName);
}

/* ================================================================= a seed */

static void openConn(int ic, int bFirst){
  Conn *c = &aConn[ic];
  c->cName = (char)('A' + ic);
  if( sqlite3_open_v2(cfg.zDb, &c->db, SQLITE_OPEN_READWRITE|SQLITE_OPEN_CREATE, 0)!=SQLITE_OK ){
    setupError(c, "open");
  }
  sqlite3_busy_timeout(c->db, 5000);
  if( bFirst ){
    char zSql[100];
    snprintf(zSql, sizeof(zSql), "PRAGMA journal_mode=%s", cfg.bWal ? "wal" : "delete");
    if( sqlite3_exec(c->db, zSql, 0, 0, 0)!=SQLITE_OK ) setupError(c, zSql);
  }
  if( sqlite3_exec(c->db, "PRAGMA synchronous=OFF", 0, 0, 0)!=SQLITE_OK ) setupError(c, "synchronous");
}

static void setupSeed(void){
  char zOpt[200], zSql[400];
  const char *azSuffix[] = {"", "-wal", "-shm", "-journal"};
  int i;
  i64 t0;
  for(i=0; i<4; i++){
    char z[600];
    snprintf(z, sizeof(z), "%s%s", cfg.zDb, azSuffix[i]);
    unlink(z);
  }
  memset(&M, 0, sizeof(M));
  memset(&C, 0, sizeof(C));
  iTxn = -1; nTxnLeft = 0; nLog = 0; nSeenHold = 0;
  /* the seed's own stream: mixed, so that seeds N and N+1 share nothing */
  rng.s = (uint64_t)iSeed;
  rng.s = rngNext(&rng) ^ 0x5DEECE66DULL;
  rng.s = rngNext(&rng);
  /* the table's options */
  optHoldTtl = 900; optIdem = 86400; optRetention = -1;
  zOpt[0] = 0;
  switch( rnd(3) ){
    case 0: break;
    case 1: optHoldTtl = 60; strcat(zOpt, "hold_ttl=60"); break;
    default: optHoldTtl = 300; strcat(zOpt, "hold_ttl='5 minutes'"); break;
  }
  switch( rnd(3) ){
    case 0: break;
    case 1: optIdem = 600; strcat(zOpt, zOpt[0] ? ", idempotency=600" : "idempotency=600"); break;
    default: optIdem = 3600; strcat(zOpt, zOpt[0] ? ", idempotency='1 hour'" : "idempotency='1 hour'"); break;
  }
  switch( rnd(4) ){
    case 0: case 1: break;
    case 2: optRetention = 600; strcat(zOpt, zOpt[0] ? ", retention=600" : "retention=600"); break;
    default: optRetention = 86400; strcat(zOpt, zOpt[0] ? ", retention='1 day'" : "retention='1 day'"); break;
  }
  /* One seed in four purges in small steps. Drawn from the seed apart from
  ** the stream of operations, so that it changes no other choice. */
  optPurgeLimit = 10000;
  {
    Rng r2;
    r2.s = (uint64_t)iSeed ^ 0xA5A5A5A5A5A5ULL;
    if( rngNext(&r2)%4==0 ){
      char z[40];
      optPurgeLimit = 1 + (i64)(rngNext(&r2)%4);
      snprintf(z, sizeof(z), "%spurge_limit=%lld", zOpt[0] ? ", " : "", optPurgeLimit);
      strcat(zOpt, z);
    }
  }
  /* the starting time: any second of 2026-2027, often near a month end */
  t0 = mkTime(2026, 1, 1, 0) + (i64)rnd(730)*86400 + rnd(86400);
  if( chance(40) ){
    Civil c;
    splitTime(t0, &c);
    t0 = mkTime(c.y, c.m, daysInMonth(c.y, c.m), 86400 - 1 - rnd(120));
  }
  openConn(0, 1);
  openConn(1, 0);
  snprintf(zSql, sizeof(zSql), "CREATE VIRTUAL TABLE quota USING quota%s%s%s",
           zOpt[0] ? "(" : "", zOpt, zOpt[0] ? ")" : "");
  if( sqlite3_exec(aConn[0].db, zSql, 0, 0, 0)!=SQLITE_OK ) setupError(&aConn[0], zSql);
  logOp("A: %s", zSql);
  if( sqlite3_exec(aConn[0].db,
        "CREATE TABLE app_events(fn, a, b, c, d);"
        "CREATE TABLE app_results(seq INTEGER PRIMARY KEY, v);"
        "CREATE TABLE app_jobs(fn, a, b);", 0, 0, 0)!=SQLITE_OK ){
    setupError(&aConn[0], "app tables");
  }
  for(i=0; i<2; i++){
    /* The same trigger on a table of the database and on a TEMP table of
    ** the connection (a statement that writes only the temp schema). */
    static const char zBody[] =
        "  INSERT INTO %s(v) SELECT CASE NEW.fn"
        "    WHEN 'consume' THEN quota_consume(NEW.a, NEW.b, NEW.c, NEW.d)"
        "    WHEN 'record'  THEN quota_record(NEW.a, NEW.b, NEW.c, NEW.d)"
        "    WHEN 'reserve' THEN quota_reserve(NEW.a, NEW.b, NEW.c, NEW.d)"
        "    WHEN 'settle'  THEN quota_settle(NEW.a, NEW.b, NEW.c)"
        "    WHEN 'reserve_upto' THEN quota_reserve_upto(NEW.a, NEW.b, NEW.c, NEW.d)"
        "    WHEN 'extend' THEN quota_extend(NEW.a, NEW.b)"
        "    WHEN 'release' THEN quota_release(NEW.a) END;";
    char zT[1000], zB[700];
    snprintf(zB, sizeof(zB), zBody, "app_results");
    snprintf(zT, sizeof(zT), "CREATE TEMP TRIGGER app_charge AFTER INSERT ON main.app_events"
             " BEGIN %s END;", zB);
    if( sqlite3_exec(aConn[i].db, zT, 0, 0, 0)!=SQLITE_OK ) setupError(&aConn[i], "app trigger");
    snprintf(zB, sizeof(zB), zBody, "tmp_results");
    snprintf(zT, sizeof(zT),
             "CREATE TEMP TABLE tmp_events(fn, a, b, c, d);"
             "CREATE TEMP TABLE tmp_results(seq INTEGER PRIMARY KEY, v);"
             "CREATE TEMP TRIGGER tmp_charge AFTER INSERT ON tmp_events BEGIN %s END;", zB);
    if( sqlite3_exec(aConn[i].db, zT, 0, 0, 0)!=SQLITE_OK ) setupError(&aConn[i], "temp trigger");
    pinClock(i, t0);
  }
}

static void endSeed(void){
  int ic;
  Res r;
  if( iTxn>=0 ){ iStep++; opEnd(); }
  compareAll();
  for(ic=0; ic<2; ic++){
    compareLedgerRows(ic);
    checkIntegrity(ic);
  }
  dbRun(&aConn[0], "PRAGMA integrity_check", &r);
  if( r.bErr || strcmp(r.zVal, "ok")!=0 ) fail("PRAGMA integrity_check: %s", r.bErr ? r.zMsg : r.zVal);
  cacheClear();
  for(ic=0; ic<2; ic++){
    if( sqlite3_close(aConn[ic].db)!=SQLITE_OK ) setupError(&aConn[ic], "close");
    aConn[ic].db = 0;
  }
  modelFree(&M);
  modelFree(&C);
}

static void runSeed(void){
  setupSeed();
  for(iStep=1; iStep<=cfg.nSteps; iStep++){
    int ic = iTxn>=0 ? iTxn : rnd(2);
    int r = rnd(1100);
    if( iTxn>=0 && nTxnLeft==0 ){
      opEnd();
    }else if( M.nKey<3 && r<300 ){
      opInsert(ic);
    }else if( r<130 ){
      opClock();
    }else if( r<190 ){
      opInsert(ic);
    }else if( r<255 ){
      opUpdate(ic);
    }else if( r<265 ){
      opUpdateMany(ic);
    }else if( r<285 ){
      opDelete(ic);
    }else if( r<385 ){
      opReserve(ic);
    }else if( r<420 ){
      opUpto(ic);
    }else if( r<500 ){
      opSettle(ic);
    }else if( r<535 ){
      opRelease(ic);
    }else if( r<565 ){
      opExtend(ic);
    }else if( r<670 ){
      opCharge(ic, F_CONSUME);
    }else if( r<715 ){
      opCharge(ic, F_RECORD);
    }else if( r<750 ){
      opCheck(ic, F_CHECK);
    }else if( r<790 ){
      opCheck(ic, F_STATUS);
    }else if( r<805 ){
      opHold(ic);
    }else if( r<825 ){
      Arg a[1];
      doCall(ic, F_PURGE, a, 0);
    }else if( r<875 ){
      if( iTxn<0 ) opBegin(ic); else opCharge(ic, F_CONSUME);
    }else if( r<925 ){
      opTrigger(ic);
    }else if( r<945 && cfg.bNest ){
      opNest(ic);
    }else if( r<975 ){
      opReading(ic);
    }else if( r<980 ){
      checkIntegrity(ic);
    }else if( r>=1070 ){
      opVoid(ic);
    }else if( r>=1000 ){
      opGrant(ic);
    }else{
      opClock();
    }
    if( iTxn>=0 && nTxnLeft>0 ) nTxnLeft--;
    st.steps++;
    compareAll();
    if( iStep%10==0 ){ checkIntegrity(0); checkIntegrity(1); }
    if( iStep%50==0 ){ compareLedgerRows(0); compareLedgerRows(1); }
  }
  iStep = cfg.nSteps;
  endSeed();
  st.seeds++;
}

static void usage(void){
  fprintf(stderr, "usage: build/model [--seed N] [--steps N] [--seeds N] [--long] [--db PATH]\n"
                  "                   [--journal wal|delete] [--no-nest] [--seconds S] [--trace]\n");
  exit(2);
}

int main(int argc, char **argv){
  int i, bSteps = 0, bSeeds = 0;
  time_t tStart = time(0);
  cfg.seed = 1; cfg.nSeeds = 1; cfg.nSteps = 500; cfg.zDb = "model.db"; cfg.bWal = 1;
  cfg.bNest = 1; cfg.bTempTable = 1;
  for(i=1; i<argc; i++){
    const char *z = argv[i];
    if( z[0]=='-' && z[1]=='-' ) z++;
    if( strcmp(z, "-seed")==0 && i+1<argc ) cfg.seed = atoll(argv[++i]);
    else if( strcmp(z, "-steps")==0 && i+1<argc ){ cfg.nSteps = atoi(argv[++i]); bSteps = 1; }
    else if( strcmp(z, "-seeds")==0 && i+1<argc ){ cfg.nSeeds = atoi(argv[++i]); bSeeds = 1; }
    else if( strcmp(z, "-long")==0 ) cfg.bLong = 1;
    else if( strcmp(z, "-db")==0 && i+1<argc ) cfg.zDb = argv[++i];
    else if( strcmp(z, "-journal")==0 && i+1<argc ){
      const char *j = argv[++i];
      if( strcmp(j, "wal")==0 ) cfg.bWal = 1;
      else if( strcmp(j, "delete")==0 ) cfg.bWal = 0;
      else usage();
    }
    else if( strcmp(z, "-no-nest")==0 ) cfg.bNest = 0;
    else if( strcmp(z, "-no-temp-table")==0 ) cfg.bTempTable = 0;
    else if( strcmp(z, "-seconds")==0 && i+1<argc ) cfg.nSeconds = atoi(argv[++i]);
    else if( strcmp(z, "-trace")==0 ) cfg.bTrace = 1;
    else usage();
  }
  if( cfg.bLong ){
    if( !bSteps ) cfg.nSteps = 5000;
    if( !bSeeds ) cfg.nSeeds = 100;
  }
  if( cfg.nSteps<1 || cfg.nSeeds<1 ) usage();
  sqlite3_auto_extension((void(*)(void))sqlite3_quota_init);
  for(iSeed=cfg.seed; iSeed<cfg.seed+cfg.nSeeds; iSeed++){
    if( cfg.nSeconds>0 && time(0)-tStart>=cfg.nSeconds ) break;
    runSeed();
  }
  printf("model: seeds=%lld steps=%lld calls=%lld failed_calls=%lld denied=%lld"
         " key_writes=%lld txns=%lld rollbacks=%lld trigger_ops=%lld nest_ops=%lld"
         " clock_moves=%lld integrity_checks=%lld holds_expired=%lld late_settles=%lld"
         " over_charges=%lld holds_orphaned=%lld upto_holds=%lld upto_partial=%lld"
         " hold_reads=%lld extends=%lld extends_of_ended=%lld bucket_consumes=%lld"
         " bucket_checks=%lld events=%lld shadow_grants=%lld grants=%lld voids=%lld draws=%lld grants_purged=%lld rollovers=%lld"
         " first_seed=%lld sqlite=%s journal=%s"
         " nest=%s temp_table=%s seconds=%lld result=PASS\n",
         st.seeds, st.steps, st.calls, st.failed, st.denied, st.keywrites, st.txns,
         st.rollbacks, st.triggers, st.nests, st.clocks, st.integrity, st.expired,
         st.late, st.over, st.orphaned, st.upto, st.uptoPartial, st.holds, st.extends,
         st.extendsEnded, st.rateCalls, st.bucketChecks, st.events, st.shadowGrants,
         st.grants, st.voids, st.draws, st.grantsPurged, st.rollovers, cfg.seed,
         sqlite3_libversion(), cfg.bWal ? "wal" : "delete", cfg.bNest ? "on" : "off",
         cfg.bTempTable ? "on" : "off",
         (i64)(time(0)-tStart));
  free(bufExp.z); free(bufGot.z);
  return 0;
}
