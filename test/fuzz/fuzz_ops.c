/*
** fuzz_ops.c: sequences of operations, with the invariants of README.md
** ("Reliability") checked after every step (see fuzz_common.h for the framework).
**
** Each input runs on a fresh in-memory database: a quota table (the input
** picks hold_ttl, idempotency and retention), a pinned clock (the input
** picks the start: 2026, a leap day, just before 1970, a year's end, the
** years 0000 and 9999) and six keys from a pool of names: two parents (a
** month, a rolling minute) with children (a day, a rolling 10 s, an hour
** below the day) and a lifetime key, four of them with alerts (their
** charges write quota_events). Then up to 96 operations:
**   reserve, settle, release, consume, record (with or without request ids,
**   ttls and meta; small, large and 64-bit-extreme amounts), check, status,
**   purge; the clock moved forward a little or a lot, or backward;
**   UPDATE of cap, used, period/anchor, parent; DELETE and INSERT of keys;
**   BEGIN / COMMIT / ROLLBACK / SAVEPOINT / RELEASE / ROLLBACK TO; calls
**   made from inside a writing statement (INSERT ... SELECT) and from inside
**   a reading one.
**
** The harness keeps a model (keys and their parents, holds and their fate,
** request ids, what made a key legitimately exceed its cap), restored on
** ROLLBACK, and aborts on any violation of:
**   A. quota_integrity() = 'ok' after every step, and PRAGMA
**      integrity_check at the end;
**   B. atomicity: a call that fails leaves every shadow table as it was;
**   C. a fresh grant of reserve/consume (amount > 0) leaves used + reserved
**      <= cap at every capped level of the key's chain; a denial has some
**      level where it does not fit; quota_check(key, amount) just before
**      predicts the outcome, and quota_status's "allowed" agrees with it;
**   D. used + reserved <= cap for every capped key that no record, settle
**      above a hold, late settle or admin write (cap, used) touched;
**   E. used = the sum of the ledger charges of the key and its descendants
**      in the current period or window (while the clock never went back,
**      no retention trims the ledger, and no admin write or move of a key
**      changed the counters);
**   F. reserved = the sum of the holds of the key and its descendants that
**      are live and not expired (now < expires; while the clock never went
**      back);
**   G. request ids: a repeat within the idempotency window returns the
**      original result; a different amount or function is an error;
**   H. holds end once: settle of a settled hold returns the same charge,
**      of a released one an error, of an orphaned one NULL; release of an
**      ended one 0; a late settle is marked late in the ledger.
*/
#include "fuzz_common.h"

/* Switches to fuzz past a known bug, off by default (all fixed):
** -DKNOWN_BUG_XUPDATE_TXN=1 (a bug fuzzing found: a refused INSERT/UPDATE/
** DELETE of the quota table inside a transaction left partial writes): the
** harness rolls such a transaction back instead of checking that nothing
** changed. */
#ifndef KNOWN_BUG_XUPDATE_TXN
# define KNOWN_BUG_XUPDATE_TXN 0
#endif

/* -DKNOWN_BUG_ZERO_HOLD_DELETE=1 (a bug fuzzing found: DELETE of a key whose
** only live holds were of 0 units left them live): no such DELETE is made. */
#ifndef KNOWN_BUG_ZERO_HOLD_DELETE
# define KNOWN_BUG_ZERO_HOLD_DELETE 0
#endif

#define QUOTA_TIME_MIN ((sqlite3_int64)-62167219200LL)
#define QUOTA_TIME_MAX ((sqlite3_int64)253402300799LL)
#define I64_MAX ((sqlite3_int64)0x7fffffffffffffffLL)

/* ----------------------------------------------------------------- model */

#define N_SLOT 6
static const char *const azSlot[N_SLOT] = { "p", "q", "k0", "k1", "k2", "k3" };

static const struct Period {
  const char *zSql;           /* as written in SQL */
  sqlite3_int64 nLen;         /* rolling: window length; 0 = calendar; -1 lifetime */
} aPeriod[] = {
  {"NULL", -1}, {"'hour'", 0}, {"'day'", 0}, {"'week'", 0}, {"'month'", 0},
  {"'year'", 0}, {"'rolling 10 seconds'", 10}, {"'rolling 60 seconds'", 60},
  {"'rolling 1 hour'", 3600}, {"'rolling 2 days'", 172800}, {"'lifetime'", -1},
};
#define N_PERIOD ((unsigned)(sizeof(aPeriod)/sizeof(aPeriod[0])))

static const char *const azCap[] = {
  "NULL", "0", "1", "3", "5", "10", "20", "50", "100", "1000"
};
#define N_CAP ((unsigned)(sizeof(azCap)/sizeof(azCap[0])))

typedef struct Key {
  int bExists;
  int iParent;                /* slot of the parent, -1 for none */
  int iPeriod;                /* index in aPeriod */
  int bCapTaint;              /* may legitimately have used+reserved > cap */
  int bSumTaint;              /* used need not equal its ledger sum */
  unsigned gen;               /* incarnation: bumped by every INSERT */
  sqlite3_int64 minLedger;    /* ledger rows of this incarnation have id > it */
} Key;

#define HOLD_LIVE     0
#define HOLD_SETTLED  1
#define HOLD_RELEASED 2
#define HOLD_ORPHANED 3
#define HOLD_UNKNOWN  4       /* the model cannot tell: no checks */

typedef struct Hold {
  sqlite3_int64 id;
  int iSlot;
  unsigned gen;
  sqlite3_int64 amount;
  sqlite3_int64 expires;
  int state;
  sqlite3_int64 charged;
} Hold;

#define OP_RESERVE 1
#define OP_CONSUME 2
#define OP_RECORD  3

typedef struct Req {
  int iSlot;
  unsigned gen;
  int iReq;                   /* 'r0'..'r3' */
  int op;
  sqlite3_int64 amount;
  sqlite3_int64 result;
  sqlite3_int64 at;
} Req;

#define MAX_HOLD 128
#define MAX_REQ  64

typedef struct Model {
  sqlite3_int64 now;
  int bClockBack;             /* the clock has moved backwards */
  Key aKey[N_SLOT];
  int nHold;
  Hold aHold[MAX_HOLD];
  int nReq;
  Req aReq[MAX_REQ];
  sqlite3_int64 maxHoldId;    /* largest hold id ever handed out */
} Model;

typedef struct Run {
  sqlite3 *db;
  FuzzIn in;
  Model m;
  Model mTxn;                 /* the model at BEGIN */
  Model mSave;                /* the model at SAVEPOINT s1 */
  int bTxn, bSave;            /* BEGIN / SAVEPOINT open */
  sqlite3_int64 nIdem;        /* the table's idempotency window */
  sqlite3_int64 nHoldTtl;     /* the table's default ttl */
  int bRetention;             /* a retention may trim the ledger */
  int iStep;
  int nCache;                 /* prepared statements of the checks */
  struct { const char *zSql; sqlite3_stmt *pStmt; } aCache[16];
} Run;

/* A prepared statement for zSql (a string constant), reset; kept until the
** run ends. The checks run the same few queries after every step. */
static sqlite3_stmt *cached(Run *r, const char *zSql){
  int i;
  for(i=0; i<r->nCache; i++){
    if( r->aCache[i].zSql==zSql ){
      sqlite3_reset(r->aCache[i].pStmt);
      sqlite3_clear_bindings(r->aCache[i].pStmt);
      return r->aCache[i].pStmt;
    }
  }
  if( r->nCache==16 ) abort();
  r->aCache[i].zSql = zSql;
  if( sqlite3_prepare_v3(r->db, zSql, -1, SQLITE_PREPARE_PERSISTENT,
                         &r->aCache[i].pStmt, 0)!=SQLITE_OK ){
    fprintf(stderr, "fuzz_ops: cannot prepare %s: %s\n", zSql, sqlite3_errmsg(r->db));
    abort();
  }
  r->nCache++;
  return r->aCache[i].pStmt;
}

static void cacheClear(Run *r){
  int i;
  for(i=0; i<r->nCache; i++) sqlite3_finalize(r->aCache[i].pStmt);
  r->nCache = 0;
}

/* ---------------------------------------------------------- SQL helpers */

typedef struct Res {
  int rc;
  int bNull;
  sqlite3_int64 v;
  char zErr[160];
} Res;

/* Run a one-value statement (traced), collecting its result. */
static void runCall(Run *r, const char *zSql, Res *pRes){
  sqlite3_stmt *pStmt = 0;
  memset(pRes, 0, sizeof(*pRes));
  pRes->bNull = 1;
  if( fzTracing() ) fprintf(stderr, "%s;\n", zSql);
  pRes->rc = sqlite3_prepare_v2(r->db, zSql, -1, &pStmt, 0);
  if( pRes->rc==SQLITE_OK ){
    pRes->rc = sqlite3_step(pStmt);
    if( pRes->rc==SQLITE_ROW ){
      pRes->bNull = sqlite3_column_type(pStmt, 0)==SQLITE_NULL;
      pRes->v = sqlite3_column_int64(pStmt, 0);
      while( (pRes->rc = sqlite3_step(pStmt))==SQLITE_ROW ){}
    }
    if( pRes->rc==SQLITE_DONE ) pRes->rc = SQLITE_OK;
  }
  if( pRes->rc!=SQLITE_OK ){
    snprintf(pRes->zErr, sizeof(pRes->zErr), "%s", sqlite3_errmsg(r->db));
  }
  sqlite3_finalize(pStmt);
  if( fzTracing() ){
    if( pRes->rc ) fprintf(stderr, "-- error %d: %s\n", pRes->rc, pRes->zErr);
    else if( pRes->bNull ) fprintf(stderr, "-- NULL\n");
    else fprintf(stderr, "-- %lld\n", (long long)pRes->v);
  }
}

/* Everything in the shadow tables, as one text (for the atomicity check). */
static const char *const azDigest[] = {
  "SELECT 'k', * FROM quota_keys", "SELECT 'h', * FROM quota_holds",
  "SELECT 'e', * FROM quota_expiry", "SELECT 'l', * FROM quota_ledger",
  "SELECT 'r', * FROM quota_requests", "SELECT 'w', * FROM quota_window",
  "SELECT 'm', * FROM quota_meta",
};
static char *storeDigest(Run *r){
  sqlite3_str *p = sqlite3_str_new(0);
  size_t i;
  for(i=0; i<sizeof(azDigest)/sizeof(azDigest[0]); i++){
    sqlite3_stmt *pStmt = cached(r, azDigest[i]);
    while( sqlite3_step(pStmt)==SQLITE_ROW ){
      int j;
      for(j=0; j<sqlite3_column_count(pStmt); j++){
        const char *z = (const char*)sqlite3_column_text(pStmt, j);
        sqlite3_str_appendf(p, "%s|", z ? z : "~");
      }
      sqlite3_str_appendall(p, "\n");
    }
    sqlite3_reset(pStmt);
  }
  return fzFinish(p);
}

static sqlite3_int64 queryInt(Run *r, sqlite3_int64 iDefault, const char *zFmt, ...){
  va_list ap;
  char *z;
  sqlite3_int64 v = iDefault;
  va_start(ap, zFmt);
  z = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  if( z && !fzQueryInt(r->db, z, &v) ) v = iDefault;
  sqlite3_free(z);
  return v;
}

/* One row of the quota table as the checks need it. */
typedef struct Row {
  int bFound;
  int bCap;
  sqlite3_int64 cap, used, reserved;
  char zParent[16];
  char zStart[24], zEnd[24];
} Row;

static const char zReadRow[] =
  "SELECT cap, used, reserved, parent, period_start, resets_at FROM quota"
  " WHERE key=?1";

static void readRow(Run *r, int iSlot, Row *pRow){
  sqlite3_stmt *pStmt = cached(r, zReadRow);
  int rc;
  memset(pRow, 0, sizeof(*pRow));
  sqlite3_bind_text(pStmt, 1, azSlot[iSlot], -1, SQLITE_STATIC);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    const char *z;
    pRow->bFound = 1;
    pRow->bCap = sqlite3_column_type(pStmt, 0)!=SQLITE_NULL;
    pRow->cap = sqlite3_column_int64(pStmt, 0);
    pRow->used = sqlite3_column_int64(pStmt, 1);
    pRow->reserved = sqlite3_column_int64(pStmt, 2);
    z = (const char*)sqlite3_column_text(pStmt, 3);
    snprintf(pRow->zParent, sizeof(pRow->zParent), "%s", z ? z : "");
    z = (const char*)sqlite3_column_text(pStmt, 4);
    snprintf(pRow->zStart, sizeof(pRow->zStart), "%s", z ? z : "");
    z = (const char*)sqlite3_column_text(pStmt, 5);
    snprintf(pRow->zEnd, sizeof(pRow->zEnd), "%s", z ? z : "");
    rc = sqlite3_step(pStmt);
  }
  if( rc!=SQLITE_DONE ){
    fzFail(r->db, "step %d: cannot read key %s: %s", r->iStep, azSlot[iSlot],
           sqlite3_errmsg(r->db));
  }
  sqlite3_reset(pStmt);
}

/* used + reserved > cap, without overflow (all three non-negative). */
static int overCap(const Row *p){
  if( !p->bCap ) return 0;
  if( p->used>p->cap ) return 1;
  return p->reserved > p->cap - p->used;
}

/* used + reserved + amount > cap */
static int noRoom(const Row *p, sqlite3_int64 amount){
  if( !p->bCap ) return 0;
  if( p->used>p->cap ) return 1;
  if( p->reserved > p->cap - p->used ) return 1;
  return amount > p->cap - p->used - p->reserved;
}

/* ---------------------------------------------------------- model logic */

/* Is slot iSlot in the subtree of iRoot (iSlot itself included)? */
static int inSubtree(const Model *m, int iSlot, int iRoot){
  int depth = 0;
  while( iSlot>=0 && depth++<=N_SLOT ){
    if( iSlot==iRoot ) return 1;
    iSlot = m->aKey[iSlot].iParent;
  }
  return 0;
}

/* Mark the chain of iSlot (itself first when bSelf). */
static void taintChain(Model *m, int iSlot, int bSelf, int bCap, int bSum){
  int depth = 0;
  if( !bSelf && iSlot>=0 ) iSlot = m->aKey[iSlot].iParent;
  while( iSlot>=0 && depth++<=N_SLOT ){
    if( bCap ) m->aKey[iSlot].bCapTaint = 1;
    if( bSum ) m->aKey[iSlot].bSumTaint = 1;
    iSlot = m->aKey[iSlot].iParent;
  }
}

static Hold *findHold(Model *m, sqlite3_int64 id){
  int i;
  for(i=0; i<m->nHold; i++) if( m->aHold[i].id==id ) return &m->aHold[i];
  return 0;
}

static void addHold(Model *m, const Hold *h){
  if( m->nHold==MAX_HOLD ){
    /* forget the oldest: its checks are lost, nothing else */
    memmove(&m->aHold[0], &m->aHold[1], sizeof(Hold)*(MAX_HOLD-1));
    m->nHold--;
  }
  m->aHold[m->nHold++] = *h;
}

/* The remembered request (iSlot, iReq), or NULL. */
static Req *findReq(Run *r, int iSlot, int iReq){
  Model *m = &r->m;
  int i;
  for(i=0; i<m->nReq; i++){
    Req *q = &m->aReq[i];
    if( q->iSlot==iSlot && q->iReq==iReq && q->gen==m->aKey[iSlot].gen ){
      return (m->now - q->at < r->nIdem) ? q : 0;
    }
  }
  return 0;
}

static void putReq(Run *r, const Req *q){
  Model *m = &r->m;
  int i;
  for(i=0; i<m->nReq; i++){
    if( m->aReq[i].iSlot==q->iSlot && m->aReq[i].iReq==q->iReq ){
      m->aReq[i] = *q;
      return;
    }
  }
  if( m->nReq==MAX_REQ ){
    memmove(&m->aReq[0], &m->aReq[1], sizeof(Req)*(MAX_REQ-1));
    m->nReq--;
  }
  m->aReq[m->nReq++] = *q;
}

/* -------------------------------------------------------------- checks */

/* D, E, F and the model's picture of keys and parents, A. */
static void checkAll(Run *r){
  Model *m = &r->m;
  int i, j;
  sqlite3_stmt *pInt = cached(r, "SELECT quota_integrity()");
  if( sqlite3_step(pInt)!=SQLITE_ROW
   || strcmp((const char*)sqlite3_column_text(pInt, 0), "ok")!=0 ){
    fzFail(r->db, "step %d: quota_integrity() = %s", r->iStep,
           sqlite3_column_text(pInt, 0) ? (const char*)sqlite3_column_text(pInt, 0)
                                        : sqlite3_errmsg(r->db));
  }
  sqlite3_reset(pInt);
  for(i=0; i<N_SLOT; i++){
    Key *k = &m->aKey[i];
    Row row;
    readRow(r, i, &row);
    if( row.bFound!=k->bExists ){
      fzFail(r->db, "step %d: key %s %s in the table but the model says %s",
             r->iStep, azSlot[i], row.bFound ? "exists" : "is missing",
             k->bExists ? "it exists" : "it was deleted");
    }
    if( !row.bFound ) continue;
    if( strcmp(row.zParent, k->iParent<0 ? "" : azSlot[k->iParent])!=0 ){
      fzFail(r->db, "step %d: key %s has parent '%s', the model says '%s'",
             r->iStep, azSlot[i], row.zParent,
             k->iParent<0 ? "" : azSlot[k->iParent]);
    }
    /* D */
    if( !k->bCapTaint && overCap(&row) ){
      fzFail(r->db, "step %d: key %s: used %lld + reserved %lld > cap %lld, and"
             " no record, settle above a hold, late settle or admin write"
             " touched it", r->iStep, azSlot[i], (long long)row.used,
             (long long)row.reserved, (long long)row.cap);
    }
    /* F */
    if( !m->bClockBack ){
      sqlite3_int64 want = 0;
      for(j=0; j<m->nHold; j++){
        const Hold *h = &m->aHold[j];
        if( h->state==HOLD_LIVE && m->now<h->expires
         && h->gen==m->aKey[h->iSlot].gen && m->aKey[h->iSlot].bExists
         && inSubtree(m, h->iSlot, i) ){
          want += h->amount;
        }
      }
      /* holds the model forgot (MAX_HOLD) make it unsure: skip then */
      if( m->nHold<MAX_HOLD && row.reserved!=want ){
        fzFail(r->db, "step %d: key %s: reserved %lld, but its live unexpired"
               " holds sum to %lld", r->iStep, azSlot[i],
               (long long)row.reserved, (long long)want);
      }
    }
    /* E */
    if( !m->bClockBack && !r->bRetention && !k->bSumTaint ){
      sqlite3_str *p = sqlite3_str_new(0);
      const struct Period *per = &aPeriod[k->iPeriod];
      char *zSql;
      sqlite3_int64 sum;
      int bFirst = 1;
      sqlite3_str_appendall(p, "SELECT sum(amount) FROM quota_ledger WHERE (");
      for(j=0; j<N_SLOT; j++){
        if( m->aKey[j].bExists && inSubtree(m, j, i) ){
          sqlite3_str_appendf(p, "%s(key='%s' AND id>%lld)", bFirst ? "" : " OR ",
              azSlot[j], (long long)m->aKey[j].minLedger);
          bFirst = 0;
        }
      }
      sqlite3_str_appendall(p, ")");
      if( per->nLen>0 ){
        sqlite3_str_appendf(p, " AND at>%lld", (long long)(m->now - per->nLen));
      }else if( per->nLen==0 ){
        if( row.zStart[0]==0 || strncmp(row.zStart, "0000-00-00", 10)==0
         || row.zEnd[0]==0 || strncmp(row.zEnd, "0000-00-00", 10)==0 ){
          sqlite3_free(sqlite3_str_finish(p));
          continue;        /* a period end past 9999: no text for it */
        }
        /* a bound that datetime() cannot read (year 10000) bounds nothing */
        sqlite3_str_appendf(p, " AND at>=coalesce(strftime('%%s', '%s'), %lld)"
            " AND at<coalesce(strftime('%%s', '%s'), %lld)", row.zStart,
            (long long)QUOTA_TIME_MIN, row.zEnd, (long long)I64_MAX);
      }
      zSql = fzFinish(p);
      sum = 0;
      {
        /* sum() of no rows is NULL: 0; an overflowing sum errors: skip */
        sqlite3_stmt *pStmt = 0;
        int bOk = 0;
        if( sqlite3_prepare_v2(r->db, zSql, -1, &pStmt, 0)==SQLITE_OK
         && sqlite3_step(pStmt)==SQLITE_ROW ){
          bOk = 1;
          sum = sqlite3_column_int64(pStmt, 0);
        }
        sqlite3_finalize(pStmt);
        if( bOk && sum!=row.used ){
          fzFail(r->db, "step %d: key %s: used %lld, but its ledger charges in"
                 " the current period sum to %lld (%s)", r->iStep, azSlot[i],
                 (long long)row.used, (long long)sum, zSql);
        }
      }
      sqlite3_free(zSql);
    }
  }
}

/* ----------------------------------------------------------- operations */

static sqlite3_int64 pickAmount(FuzzIn *in){
  unsigned b = fzByte(in);
  if( b<200 ) return b % 12;
  if( b<230 ) return 10 + (b % 60);
  switch( b % 6 ){
    case 0: return I64_MAX;
    case 1: return I64_MAX - 1;
    case 2: return (sqlite3_int64)1<<62;
    case 3: return (sqlite3_int64)1<<40;
    case 4: return 1000000;
    default: return 999;
  }
}

static int pickSlot(FuzzIn *in){ return (int)fzPick(in, N_SLOT); }

/* A hold id: mostly one the model knows, sometimes any small number. */
static sqlite3_int64 pickHold(Run *r){
  unsigned b = fzByte(&r->in);
  if( r->m.nHold>0 && b<200 ){
    return r->m.aHold[r->m.nHold - 1 - (int)(b % (unsigned)r->m.nHold)].id;
  }
  return 1 + (b % 40);
}

/* The text of a call made in mode eMode, result read back by readMode. */
#define MODE_DIRECT 0
#define MODE_BARE   1      /* inside INSERT ... SELECT: the caller's statement writes */
#define MODE_READ   2      /* inside a statement reading the quota table */

static void callMode(Run *r, int eMode, const char *zCall, Res *pRes){
  char *z;
  if( eMode==MODE_BARE ){
    fzExec(r->db, "DELETE FROM log");
    z = sqlite3_mprintf("INSERT INTO log(v) SELECT %s", zCall);
    runCall(r, z, pRes);
    if( pRes->rc==SQLITE_OK ){
      sqlite3_stmt *pStmt = 0;
      sqlite3_prepare_v2(r->db, "SELECT v FROM log", -1, &pStmt, 0);
      if( pStmt && sqlite3_step(pStmt)==SQLITE_ROW ){
        pRes->bNull = sqlite3_column_type(pStmt, 0)==SQLITE_NULL;
        pRes->v = sqlite3_column_int64(pStmt, 0);
      }
      sqlite3_finalize(pStmt);
    }
  }else if( eMode==MODE_READ ){
    z = sqlite3_mprintf("SELECT %s FROM one", zCall);
    runCall(r, z, pRes);
  }else{
    z = sqlite3_mprintf("SELECT %s", zCall);
    runCall(r, z, pRes);
  }
  sqlite3_free(z);
}

static int pickMode(Run *r){
  unsigned b = fzByte(&r->in);
  if( b<200 ) return MODE_DIRECT;
  if( b<245 ) return MODE_BARE;
  return MODE_READ;
}

/* After a failed call: nothing may have changed (B). */
static void checkUnchanged(Run *r, const char *zBefore, const Res *pRes, const char *zCall){
  char *zAfter = storeDigest(r);
  if( strcmp(zBefore, zAfter)!=0 ){
    if( fzTracing() ){
      fprintf(stderr, "-- store before:\n%s-- store after:\n%s", zBefore, zAfter);
    }
    fzFail(r->db, "step %d: %s failed (%s) but changed the store", r->iStep,
           zCall, pRes->zErr);
  }
  sqlite3_free(zAfter);
}

/* Errors a call may legitimately give here, whatever the model says. */
static int benignError(const Res *pRes){
  return strstr(pRes->zErr, "overflows")!=0
      || strstr(pRes->zErr, "cannot write from a statement")!=0;
}

/* Could quota_purge() have removed this hold (expired long enough)? */
static int purgeable(Run *r, const Hold *h){
  return r->m.bClockBack || r->m.now - h->expires >= r->nIdem;
}

/* reserve and consume: C, G */
static void opGrant(Run *r, int op){
  FuzzIn *in = &r->in;
  Model *m = &r->m;
  int iSlot = pickSlot(in);
  sqlite3_int64 amount = pickAmount(in);
  int iReq = (fzByte(in) & 1) ? -1 : (int)fzPick(in, 4);
  sqlite3_int64 ttl = 0;
  const char *zTtl = "";
  int eMode = pickMode(r);
  char zCall[200], zCheck[120];
  char *zBefore;
  Res res, chk;
  Req *q = iReq>=0 ? findReq(r, iSlot, iReq) : 0;
  int i;

  if( op==OP_RESERVE ){
    static const struct { const char *z; sqlite3_int64 v; } aTtl[] = {
      {"", 0}, {"", 0}, {"", 0}, {", 1", 1}, {", 5", 5}, {", 30", 30},
      {", '10 minutes'", 600}, {", '2 hours'", 7200},
    };
    int t = (int)fzPick(in, 8);
    zTtl = aTtl[t].z;
    ttl = aTtl[t].v;
    if( zTtl[0] && iReq<0 ){
      /* a ttl needs the request_id argument: NULL */
    }
  }
  if( op==OP_RESERVE ){
    snprintf(zCall, sizeof(zCall), "quota_reserve('%s', %lld%s%s%s%s)",
        azSlot[iSlot], (long long)amount,
        (iReq>=0 || zTtl[0]) ? ", " : "",
        iReq>=0 ? "'r" : (zTtl[0] ? "NULL" : ""),
        iReq>=0 ? (const char*[]){"0'","1'","2'","3'"}[iReq] : "", zTtl);
  }else{
    snprintf(zCall, sizeof(zCall), "quota_consume('%s', %lld%s%s%s)",
        azSlot[iSlot], (long long)amount, iReq>=0 ? ", 'r" : "",
        iReq>=0 ? (const char*[]){"0'","1'","2'","3'"}[iReq] : "",
        (iReq>=0 && (fzByte(in)&1)) ? ", '{\"m\":1}'" : "");
  }

  /* what quota_check predicts */
  snprintf(zCheck, sizeof(zCheck), "SELECT quota_check('%s', %lld)",
           azSlot[iSlot], (long long)amount);
  runCall(r, zCheck, &chk);
  if( m->aKey[iSlot].bExists && chk.rc!=SQLITE_OK ){
    fzFail(r->db, "step %d: %s failed: %s", r->iStep, zCheck, chk.zErr);
  }

  zBefore = storeDigest(r);
  {
    sqlite3_int64 maxLedger = queryInt(r, 0, "SELECT max(id) FROM quota_ledger");
    callMode(r, eMode, zCall, &res);
    if( res.rc!=SQLITE_OK ){
      checkUnchanged(r, zBefore, &res, zCall);
      if( !m->aKey[iSlot].bExists ){
        /* no such quota key: right */
      }else if( q && (q->op!=op || q->amount!=amount) ){
        /* G: a reused request id with another function or amount */
      }else if( !benignError(&res) && eMode!=MODE_READ ){
        fzFail(r->db, "step %d: %s failed: %s", r->iStep, zCall, res.zErr);
      }
    }else{
      int bFresh;
      if( !m->aKey[iSlot].bExists ){
        fzFail(r->db, "step %d: %s succeeded on a deleted key", r->iStep, zCall);
      }
      if( q ){
        /* G: a replay returns the original result */
        if( q->op!=op || q->amount!=amount ){
          fzFail(r->db, "step %d: %s reused request id r%d (first used by op %d"
                 " amount %lld) and did not fail", r->iStep, zCall, iReq, q->op,
                 (long long)q->amount);
        }
        if( res.bNull || res.v!=q->result ){
          fzFail(r->db, "step %d: %s replayed request id r%d: got %s%lld, first"
                 " call gave %lld", r->iStep, zCall, iReq, res.bNull ? "NULL " : "",
                 (long long)res.v, (long long)q->result);
        }
        bFresh = 0;
      }else{
        bFresh = !res.bNull;
        if( bFresh && op==OP_RESERVE && res.v<=m->maxHoldId ){
          fzFail(r->db, "step %d: %s returned hold id %lld, not a new one",
                 r->iStep, zCall, (long long)res.v);
        }
        if( bFresh && op==OP_CONSUME && res.v<=maxLedger ){
          fzFail(r->db, "step %d: %s returned ledger id %lld, not a new one",
                 r->iStep, zCall, (long long)res.v);
        }
        /* C: quota_check predicted this */
        if( chk.rc==SQLITE_OK && !chk.bNull && (chk.v!=0)!=bFresh
         && eMode!=MODE_READ ){
          fzFail(r->db, "step %d: quota_check said %lld, then %s %s", r->iStep,
                 (long long)chk.v, zCall, bFresh ? "granted" : "was denied");
        }
      }
      /* C: after the call, at every level of the chain */
      for(i=iSlot; i>=0; i=m->aKey[i].iParent){
        Row row;
        readRow(r, i, &row);
        if( bFresh && amount>0 && overCap(&row) ){
          fzFail(r->db, "step %d: %s granted, and now %s has used %lld +"
                 " reserved %lld > cap %lld", r->iStep, zCall, azSlot[i],
                 (long long)row.used, (long long)row.reserved, (long long)row.cap);
        }
      }
      if( !q && res.bNull ){
        int bDenies = 0;
        for(i=iSlot; i>=0; i=m->aKey[i].iParent){
          Row row;
          readRow(r, i, &row);
          if( noRoom(&row, amount) ) bDenies = 1;
        }
        if( !bDenies ){
          fzFail(r->db, "step %d: %s was denied, but every level of the chain"
                 " has room", r->iStep, zCall);
        }
      }
      if( bFresh && op==OP_RESERVE ){
        Hold h;
        memset(&h, 0, sizeof(h));
        h.id = res.v;
        h.iSlot = iSlot;
        h.gen = m->aKey[iSlot].gen;
        h.amount = amount;
        h.expires = ttl ? m->now + ttl : m->now + r->nHoldTtl;
        h.state = HOLD_LIVE;
        addHold(m, &h);
        m->maxHoldId = res.v;
      }
      if( bFresh && iReq>=0 ){
        Req nq;
        nq.iSlot = iSlot;
        nq.gen = m->aKey[iSlot].gen;
        nq.iReq = iReq;
        nq.op = op;
        nq.amount = amount;
        nq.result = res.v;
        nq.at = m->now;
        putReq(r, &nq);
      }
    }
  }
  sqlite3_free(zBefore);
}

/* record: G, and a charge past the cap is legitimate */
static void opRecord(Run *r){
  FuzzIn *in = &r->in;
  Model *m = &r->m;
  int iSlot = pickSlot(in);
  sqlite3_int64 amount = pickAmount(in);
  int iReq = (fzByte(in) & 1) ? -1 : (int)fzPick(in, 4);
  int eMode = pickMode(r);
  char zCall[160];
  char *zBefore;
  Res res;
  Req *q = iReq>=0 ? findReq(r, iSlot, iReq) : 0;
  snprintf(zCall, sizeof(zCall), "quota_record('%s', %lld%s%s)", azSlot[iSlot],
      (long long)amount, iReq>=0 ? ", 'r" : "",
      iReq>=0 ? (const char*[]){"0'","1'","2'","3'"}[iReq] : "");
  zBefore = storeDigest(r);
  callMode(r, eMode, zCall, &res);
  if( res.rc!=SQLITE_OK ){
    checkUnchanged(r, zBefore, &res, zCall);
    if( !(q && (q->op!=OP_RECORD || q->amount!=amount))
     && !benignError(&res) && eMode!=MODE_READ ){
      fzFail(r->db, "step %d: %s failed: %s", r->iStep, zCall, res.zErr);
    }
  }else if( !m->aKey[iSlot].bExists ){
    if( !res.bNull ){
      fzFail(r->db, "step %d: %s on a deleted key gave %lld, not NULL",
             r->iStep, zCall, (long long)res.v);
    }
  }else if( q ){
    if( q->op!=OP_RECORD || q->amount!=amount || res.bNull || res.v!=q->result ){
      fzFail(r->db, "step %d: %s replayed request id r%d wrongly", r->iStep,
             zCall, iReq);
    }
  }else{
    if( res.bNull ){
      fzFail(r->db, "step %d: %s returned NULL on an existing key", r->iStep, zCall);
    }
    if( amount>0 ) taintChain(m, iSlot, 1, 1, 0);
    if( iReq>=0 ){
      Req nq;
      nq.iSlot = iSlot; nq.gen = m->aKey[iSlot].gen; nq.iReq = iReq;
      nq.op = OP_RECORD; nq.amount = amount; nq.result = res.v; nq.at = m->now;
      putReq(r, &nq);
    }
  }
  sqlite3_free(zBefore);
}

/* settle: H */
static void opSettle(Run *r){
  Model *m = &r->m;
  sqlite3_int64 id = pickHold(r);
  sqlite3_int64 amount = pickAmount(&r->in);
  int eMode = pickMode(r);
  Hold *h = findHold(m, id);
  char zCall[160];
  char *zBefore;
  Res res;
  snprintf(zCall, sizeof(zCall), "quota_settle(%lld, %lld%s)", (long long)id,
           (long long)amount, (fzByte(&r->in)&1) ? ", '{\"m\":2}'" : "");
  zBefore = storeDigest(r);
  callMode(r, eMode, zCall, &res);
  if( res.rc!=SQLITE_OK ){
    checkUnchanged(r, zBefore, &res, zCall);
    if( benignError(&res) || eMode==MODE_READ ){
      /* fine */
    }else if( h && h->state==HOLD_LIVE && h->gen==m->aKey[h->iSlot].gen
           && m->aKey[h->iSlot].bExists
           && !(strstr(res.zErr, "no such hold") && purgeable(r, h)) ){
      fzFail(r->db, "step %d: %s of a live hold failed: %s", r->iStep, zCall,
             res.zErr);
    }else if( h && h->state==HOLD_SETTLED && !strstr(res.zErr, "no such hold") ){
      fzFail(r->db, "step %d: %s of a settled hold failed: %s", r->iStep, zCall,
             res.zErr);
    }
  }else if( h==0 ){
    if( id>m->maxHoldId ){
      fzFail(r->db, "step %d: %s of a hold never handed out succeeded", r->iStep, zCall);
    }
  }else{
    switch( h->state ){
      case HOLD_SETTLED:
        if( res.bNull || res.v!=h->charged ){
          fzFail(r->db, "step %d: %s settled hold %lld again: got %lld, first"
                 " charge %lld", r->iStep, zCall, (long long)id, (long long)res.v,
                 (long long)h->charged);
        }
        break;
      case HOLD_RELEASED:
        fzFail(r->db, "step %d: %s of a released hold succeeded", r->iStep, zCall);
        break;
      case HOLD_UNKNOWN:
        if( !res.bNull ){ h->state = HOLD_SETTLED; h->charged = res.v; }
        taintChain(m, h->iSlot, 1, 1, 0);
        break;
      case HOLD_ORPHANED:
        if( !res.bNull ){
          fzFail(r->db, "step %d: %s of an orphaned hold gave %lld, not NULL",
                 r->iStep, zCall, (long long)res.v);
        }
        break;
      default: {
        int bLate = m->now>=h->expires;
        if( res.bNull || res.v!=amount ){
          fzFail(r->db, "step %d: %s charged %s%lld", r->iStep, zCall,
                 res.bNull ? "NULL " : "", (long long)res.v);
        }
        if( !m->bClockBack ){
          sqlite3_int64 late = queryInt(r, -1,
              "SELECT late FROM quota_ledger WHERE hold_id=%lld", (long long)id);
          if( late!=bLate ){
            fzFail(r->db, "step %d: %s: ledger late=%lld, hold expires %lld, now %lld",
                   r->iStep, zCall, (long long)late, (long long)h->expires,
                   (long long)m->now);
          }
        }
        if( amount>h->amount || (bLate && amount>0) || m->bClockBack ){
          taintChain(m, h->iSlot, 1, 1, 0);
        }
        h->state = HOLD_SETTLED;
        h->charged = amount;
        break;
      }
    }
  }
  sqlite3_free(zBefore);
}

/* release: H */
static void opRelease(Run *r){
  Model *m = &r->m;
  sqlite3_int64 id = pickHold(r);
  int eMode = pickMode(r);
  Hold *h = findHold(m, id);
  char zCall[80];
  char *zBefore;
  Res res;
  snprintf(zCall, sizeof(zCall), "quota_release(%lld)", (long long)id);
  zBefore = storeDigest(r);
  callMode(r, eMode, zCall, &res);
  if( res.rc!=SQLITE_OK ){
    checkUnchanged(r, zBefore, &res, zCall);
    if( h && h->state==HOLD_LIVE && !benignError(&res) && eMode!=MODE_READ
     && !(strstr(res.zErr, "no such hold") && purgeable(r, h)) ){
      fzFail(r->db, "step %d: %s of a live hold failed: %s", r->iStep, zCall,
             res.zErr);
    }
  }else if( h==0 ){
    if( id>m->maxHoldId ){
      fzFail(r->db, "step %d: %s of a hold never handed out succeeded", r->iStep, zCall);
    }
  }else if( h->state==HOLD_LIVE ){
    sqlite3_int64 want = m->now<h->expires ? h->amount : 0;
    if( res.bNull || (res.v!=want && !(m->bClockBack && (res.v==0 || res.v==h->amount))) ){
      fzFail(r->db, "step %d: %s released %lld, expected %lld", r->iStep,
             zCall, (long long)res.v, (long long)want);
    }
    if( m->bClockBack && h->amount==0 ){
      h->state = HOLD_UNKNOWN;     /* released, or expired: cannot tell */
    }else if( res.v==h->amount && (m->now<h->expires || m->bClockBack) ){
      h->state = HOLD_RELEASED;
    }
    /* else it had expired: it stays settleable (late), the model's LIVE
    ** with now >= expires */
  }else{
    if( res.bNull || res.v!=0 ){
      fzFail(r->db, "step %d: %s of an ended hold released %lld", r->iStep,
             zCall, (long long)res.v);
    }
  }
  sqlite3_free(zBefore);
}

/* check and status must agree (C) */
static void opCheck(Run *r){
  int iSlot = pickSlot(&r->in);
  sqlite3_int64 amount = pickAmount(&r->in);
  char zSql[200];
  Res a, b;
  snprintf(zSql, sizeof(zSql), "SELECT quota_check('%s', %lld)", azSlot[iSlot],
           (long long)amount);
  runCall(r, zSql, &a);
  snprintf(zSql, sizeof(zSql), "SELECT json_extract(quota_status('%s', %lld),"
           " '$.allowed')", azSlot[iSlot], (long long)amount);
  runCall(r, zSql, &b);
  if( a.rc!=b.rc || (a.rc==SQLITE_OK && (a.bNull || b.bNull || a.v!=b.v)) ){
    fzFail(r->db, "step %d: quota_check('%s', %lld) = %lld (rc %d) but"
           " quota_status says allowed=%lld (rc %d)", r->iStep, azSlot[iSlot],
           (long long)amount, (long long)a.v, a.rc, (long long)b.v, b.rc);
  }
  if( r->m.aKey[iSlot].bExists && a.rc!=SQLITE_OK ){
    fzFail(r->db, "step %d: quota_check of an existing key failed: %s",
           r->iStep, a.zErr);
  }
}

static void setClock(Run *r, sqlite3_int64 t){
  char zSql[120];
  Res res;
  if( t<QUOTA_TIME_MIN || t>QUOTA_TIME_MAX ) return;
  snprintf(zSql, sizeof(zSql), "SELECT quota_clock(datetime(%lld, 'unixepoch'))",
           (long long)t);
  runCall(r, zSql, &res);
  if( res.rc!=SQLITE_OK ){
    fzFail(r->db, "step %d: %s failed: %s", r->iStep, zSql, res.zErr);
  }
  if( t<r->m.now ) r->m.bClockBack = 1;
  r->m.now = t;
  if( queryInt(r, 0, "SELECT CAST(strftime('%%s', quota_clock()) AS INTEGER)")!=t ){
    fzFail(r->db, "step %d: quota_clock() does not read back %lld", r->iStep,
           (long long)t);
  }
}

/* ROLLBACK the open transaction, and the model with it. */
static void rollbackTxn(Run *r){
  Res res;
  sqlite3_int64 now = r->m.now;
  int bBack = r->m.bClockBack;
  runCall(r, "ROLLBACK", &res);
  if( res.rc!=SQLITE_OK ) fzFail(r->db, "ROLLBACK failed: %s", res.zErr);
  r->bTxn = 0;
  r->bSave = 0;
  r->m = r->mTxn;
  r->m.now = now;             /* the clock is not transactional */
  r->m.bClockBack = bBack;
}

/* UPDATE / DELETE / INSERT of keys */
static void opAdmin(Run *r, int eWhat){
  FuzzIn *in = &r->in;
  Model *m = &r->m;
  int iSlot = pickSlot(in);
  Key *k = &m->aKey[iSlot];
  char *zSql = 0;
  Res res;
  int iNewParent = -2, iNewPeriod = -1;
  int bInsertUsed = 0;
  switch( eWhat ){
    case 0: {   /* cap */
      unsigned c = fzPick(in, N_CAP);
      zSql = sqlite3_mprintf("UPDATE quota SET cap=%s WHERE key='%s'", azCap[c],
                             azSlot[iSlot]);
      break;
    }
    case 1: {   /* used */
      unsigned c = fzByte(in);
      zSql = sqlite3_mprintf("UPDATE quota SET used=%lld WHERE key='%s'",
                             (long long)(c<160 ? 0 : c%20), azSlot[iSlot]);
      break;
    }
    case 2: {   /* period and anchor */
      static const char *const azAnchor[] = {
        "", ", anchor=NULL", ", anchor='2026-01-31 10:00:00'",
        ", anchor='2025-12-31 23:59:59'", ", anchor='now'",
      };
      iNewPeriod = (int)fzPick(in, N_PERIOD);
      zSql = sqlite3_mprintf("UPDATE quota SET period=%s%s WHERE key='%s'",
          aPeriod[iNewPeriod].zSql, azAnchor[fzPick(in, 5)], azSlot[iSlot]);
      break;
    }
    case 3: {   /* parent */
      int p = (int)fzPick(in, N_SLOT+1) - 1;
      iNewParent = p;
      zSql = sqlite3_mprintf("UPDATE quota SET parent=%s%s%s WHERE key='%s'",
          p<0 ? "NULL" : "'", p<0 ? "" : azSlot[p], p<0 ? "" : "'", azSlot[iSlot]);
      break;
    }
    case 4:     /* delete */
      if( KNOWN_BUG_ZERO_HOLD_DELETE ){
        int j;
        for(j=0; j<m->nHold; j++){
          const Hold *h = &m->aHold[j];
          if( h->iSlot==iSlot && h->gen==k->gen && h->amount==0
           && (h->state==HOLD_LIVE || h->state==HOLD_UNKNOWN) ) return;
        }
      }
      zSql = sqlite3_mprintf("DELETE FROM quota WHERE key='%s'", azSlot[iSlot]);
      break;
    default: {  /* insert */
      int p = (int)fzPick(in, N_SLOT+1) - 1;
      unsigned c = fzPick(in, N_CAP);
      unsigned u = fzByte(in);
      iNewParent = p;
      iNewPeriod = (int)fzPick(in, N_PERIOD);
      bInsertUsed = u>=200 ? (int)(u%20) : 0;
      zSql = sqlite3_mprintf("INSERT INTO quota(key, cap, period, parent, used)"
          " VALUES('%s', %s, %s, %s%s%s, %d)", azSlot[iSlot], azCap[c],
          aPeriod[iNewPeriod].zSql, p<0 ? "NULL" : "'", p<0 ? "" : azSlot[p],
          p<0 ? "" : "'", bInsertUsed);
      break;
    }
  }
  {
    char *zBefore = storeDigest(r);
    runCall(r, zSql, &res);
    if( res.rc!=SQLITE_OK ){
      if( KNOWN_BUG_XUPDATE_TXN && r->bTxn ){
        /* KNOWN_BUG_XUPDATE_TXN: a refused write in a transaction may leave
        ** partial writes; end the transaction so the run can go on. */
        rollbackTxn(r);
      }else{
        checkUnchanged(r, zBefore, &res, zSql);
      }
    }
    sqlite3_free(zBefore);
  }
  if( res.rc==SQLITE_OK ){
    int nChanged = sqlite3_changes(r->db);
    if( eWhat<5 && nChanged!=(k->bExists ? 1 : 0) ){
      fzFail(r->db, "step %d: %s changed %d rows", r->iStep, zSql, nChanged);
    }
    if( eWhat==5 && k->bExists ){
      fzFail(r->db, "step %d: %s inserted a duplicate key", r->iStep, zSql);
    }
    if( k->bExists || eWhat==5 ) switch( eWhat ){
      case 0: k->bCapTaint = 1; break;
      case 1: k->bCapTaint = 1; k->bSumTaint = 1; break;
      case 2: k->iPeriod = iNewPeriod; k->bSumTaint = 1; break;
      case 3:
        if( iNewParent!=k->iParent ){
          taintChain(m, iSlot, 0, 0, 1);
          k->iParent = iNewParent;
          taintChain(m, iSlot, 0, 0, 1);
        }
        break;
      case 4: {
        int j;
        taintChain(m, iSlot, 0, 0, 1);
        for(j=0; j<m->nHold; j++){
          Hold *h = &m->aHold[j];
          if( h->iSlot==iSlot && h->gen==k->gen && h->state==HOLD_LIVE ){
            h->state = HOLD_ORPHANED;
          }
        }
        k->bExists = 0;
        break;
      }
      default:
        k->bExists = 1;
        k->gen++;
        k->iParent = iNewParent;
        k->iPeriod = iNewPeriod;
        k->bCapTaint = bInsertUsed>0;
        k->bSumTaint = bInsertUsed>0;
        k->minLedger = queryInt(r, 0, "SELECT max(id) FROM quota_ledger");
        break;
    }
  }else{
    /* refused: must it have been? */
    int bOk = 0;
    if( strstr(res.zErr, "cycle") || strstr(res.zErr, "no such parent")
     || strstr(res.zErr, "while it holds reservations")
     || strstr(res.zErr, "it is the parent of")
     || strstr(res.zErr, "already exists") ){
      bOk = 1;
    }
    if( !bOk ){
      fzFail(r->db, "step %d: %s failed: %s", r->iStep, zSql, res.zErr);
    }
    if( strstr(res.zErr, "while it holds reservations") ){
      /* only with a live unexpired hold at the key (F makes the model agree) */
    }
  }
  sqlite3_free(zSql);
}

static void opTxn(Run *r){
  unsigned c = fzPick(&r->in, 6);
  Res res;
  switch( c ){
    case 0:
      if( r->bTxn ) return;
      runCall(r, fzByte(&r->in)&1 ? "BEGIN" : "BEGIN IMMEDIATE", &res);
      if( res.rc==SQLITE_OK ){ r->bTxn = 1; r->mTxn = r->m; }
      break;
    case 1:
      if( !r->bTxn ) return;
      runCall(r, "COMMIT", &res);
      if( res.rc!=SQLITE_OK ) fzFail(r->db, "COMMIT failed: %s", res.zErr);
      r->bTxn = 0; r->bSave = 0;
      break;
    case 2:
      if( !r->bTxn ) return;
      rollbackTxn(r);
      break;
    case 3:
      if( !r->bTxn || r->bSave ) return;
      runCall(r, "SAVEPOINT s1", &res);
      if( res.rc==SQLITE_OK ){ r->bSave = 1; r->mSave = r->m; }
      break;
    case 4:
      if( !r->bSave ) return;
      runCall(r, "RELEASE s1", &res);
      if( res.rc!=SQLITE_OK ) fzFail(r->db, "RELEASE failed: %s", res.zErr);
      r->bSave = 0;
      break;
    default:
      if( !r->bSave ) return;
      runCall(r, "ROLLBACK TO s1", &res);
      if( res.rc!=SQLITE_OK ) fzFail(r->db, "ROLLBACK TO failed: %s", res.zErr);
      {
        sqlite3_int64 now = r->m.now;
        int bBack = r->m.bClockBack;
        r->m = r->mSave;
        r->m.now = now;
        r->m.bClockBack = bBack;
      }
      break;
  }
}

/* ------------------------------------------------------------- the run */

static Run run;                  /* large: kept off the stack */

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData){
  static const struct { const char *z; sqlite3_int64 t; } aStart[] = {
    {"2026-01-31 10:00:00", 1769853600LL},
    {"2024-02-29 23:59:30", 1709251170LL},
    {"1969-12-31 23:59:50", -10LL},
    {"2026-12-31 23:59:59", 1798761599LL},
    {"0000-01-01 00:00:00", -62167219200LL},
    {"9999-12-31 22:00:00", 253402293600LL},
  };
  static const struct { const char *z; sqlite3_int64 nIdem, nTtl; int bRet; } aOpt[] = {
    {"", 86400, 900, 0},
    {"(hold_ttl=30)", 86400, 30, 0},
    {"(idempotency='60 seconds', hold_ttl='10 seconds')", 60, 10, 0},
    {"(idempotency='1 hour', retention='1 hour')", 3600, 900, 1},
  };
  Run *r = &run;
  Model *m = &r->m;
  unsigned c;
  int i;

  memset(r, 0, sizeof(*r));
  r->in.a = aData;
  r->in.n = nData;
  r->db = fzOpen();

  c = fzByte(&r->in);
  m->now = aStart[c % 6].t;
  fzExecf(r->db, "SELECT quota_clock('%s')", aStart[c % 6].z);
  c = fzByte(&r->in);
  c = c<192 ? 0 : 1 + c % 3;
  r->nIdem = aOpt[c].nIdem;
  r->nHoldTtl = aOpt[c].nTtl;
  r->bRetention = aOpt[c].bRet;
  fzExecf(r->db, "CREATE VIRTUAL TABLE quota USING quota%s", aOpt[c].z);
  fzExec(r->db, "CREATE TABLE log(v); CREATE TABLE one(x); INSERT INTO one VALUES(1)");
  /* alerts on four keys: every charge may write events (the invariants
  ** are the same: an alert changes no count) */
  fzExec(r->db,
    "INSERT INTO quota(key, cap, period, parent, alert) VALUES"
    " ('p', 50, 'month', NULL, '50%, 100%'),"
    " ('q', 30, 'rolling 60 seconds', NULL, '80%'),"
    " ('k0', 10, 'day', 'p', '5'),"
    " ('k1', 20, 'rolling 10 seconds', 'p', NULL),"
    " ('k2', 5, 'lifetime', NULL, '100%, 7'),"
    " ('k3', NULL, 'hour', 'k0', NULL)");
  {
    static const int aParent[N_SLOT] = { -1, -1, 0, 0, -1, 2 };
    static const int aPer[N_SLOT] = { 4, 7, 2, 6, 10, 1 };
    for(i=0; i<N_SLOT; i++){
      m->aKey[i].bExists = 1;
      m->aKey[i].iParent = aParent[i];
      m->aKey[i].iPeriod = aPer[i];
      m->aKey[i].gen = 1;
    }
  }
  checkAll(r);

  for(r->iStep=1; r->iStep<=96 && !fzDone(&r->in); r->iStep++){
    unsigned op = fzPick(&r->in, 24);
    fzNote("step %d", r->iStep);
    switch( op ){
      case 0: case 1: case 2: opGrant(r, OP_RESERVE); break;
      case 3: case 4: case 5: opGrant(r, OP_CONSUME); break;
      case 6: opRecord(r); break;
      case 7: case 8: case 9: opSettle(r); break;
      case 10: opRelease(r); break;
      case 11: opCheck(r); break;
      case 12: {
        Res res;
        char *zBefore = storeDigest(r);
        runCall(r, "SELECT quota_purge()", &res);
        if( res.rc!=SQLITE_OK ){
          checkUnchanged(r, zBefore, &res, "quota_purge()");
          fzFail(r->db, "step %d: quota_purge() failed: %s", r->iStep, res.zErr);
        }else{
          /* request ids at least the window old are gone, even if the
          ** clock later moves back */
          int j, k = 0;
          for(j=0; j<m->nReq; j++){
            if( !(m->aReq[j].at <= m->now - r->nIdem) ) m->aReq[k++] = m->aReq[j];
          }
          m->nReq = k;
        }
        sqlite3_free(zBefore);
        break;
      }
      case 13: setClock(r, m->now + 1 + fzPick(&r->in, 64)); break;
      case 14: {
        static const sqlite3_int64 aStep[] = {
          9, 10, 11, 29, 30, 31, 59, 60, 61, 899, 900, 901, 3600, 86400,
          7*86400, 31*86400, 366*86400,
        };
        setClock(r, m->now + aStep[fzPick(&r->in, 17)]);
        break;
      }
      case 15: {
        static const sqlite3_int64 aBack[] = { 1, 30, 3600, 86400 };
        setClock(r, m->now - aBack[fzPick(&r->in, 4)]);
        break;
      }
      case 16: opAdmin(r, 0); break;
      case 17: opAdmin(r, 1); break;
      case 18: opAdmin(r, 2); break;
      case 19: opAdmin(r, 3); break;
      case 20: opAdmin(r, 4); break;
      case 21: opAdmin(r, 5); break;
      default: opTxn(r); break;
    }
    checkAll(r);
  }
  if( r->bTxn ){
    Res res;
    runCall(r, "COMMIT", &res);
    if( res.rc!=SQLITE_OK ) fzFail(r->db, "COMMIT failed: %s", res.zErr);
    checkAll(r);
  }
  cacheClear(r);
  fzCheckIntegrity(r->db, "fuzz_ops at the end");
  sqlite3_close(r->db);
  return 0;
}
