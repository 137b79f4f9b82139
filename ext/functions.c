/*
** functions.c: the SQL functions of sqlite-quota and the transaction that
** wraps each call.
**
**   quota_reserve(key, amount [, request_id [, ttl]])   hold id, or NULL
**   quota_settle(hold_id, amount [, meta])              units charged
**   quota_release(hold_id)                              units released
**   quota_consume(key, amount [, request_id [, meta]])  ledger id, or NULL
**   quota_record(key, amount [, request_id [, meta]])   ledger id
**   quota_check(key [, amount])                         1 or 0
**   quota_status(key [, amount])                        JSON text
**   quota_purge()                                       rows removed
**   quota_integrity()                                   'ok' or a problem
**   quota_clock([time])                                 the clock, pinned or not
**   quota_version()                                     version text
**   quota_debug()                                       build details
**   first_of_next_month(time [, modifier ...])          'YYYY-MM-01 00:00:00'
**
** Every function but quota_version and first_of_next_month is registered
** SQLITE_DIRECTONLY: they write (or read the clock), so a view or trigger in
** a hostile schema must not be able to call them, and none is DETERMINISTIC:
** SQLite would call a deterministic function once for many rows.
**
** HOW A CALL IS MADE ATOMIC (see doc/transactions.md)
**   A call runs several statements; they must land together or not at all.
**   What the call may do depends on where it is called from:
**   - autocommit, no transaction open (`SELECT quota_consume('k', 1);`):
**     BEGIN IMMEDIATE ... COMMIT of its own. Taking the write lock first
**     means busy_timeout applies, and there is no read-to-write upgrade
**     that could fail with SQLITE_BUSY_SNAPSHOT.
**   - autocommit with a write transaction open (the call is inside an
**     INSERT ... SELECT, or a trigger): the statements run bare; an error is
**     returned to the outer statement, which rolls everything back.
**   - inside the caller's BEGIN ... COMMIT: SAVEPOINT ... RELEASE, ROLLBACK TO
**     on failure, so a failed call leaves the caller's transaction as it
**     was. If the caller's transaction has not touched the database yet, a
**     no-op write statement takes the write lock first (busy_timeout applies).
**     When SQLite refuses the savepoint (a writing statement is running),
**     the statements run bare, as above.
**   - a read transaction open in autocommit (`SELECT quota_consume(k, 1)
**     FROM t`): the write would be an upgrade that busy_timeout cannot help
**     and whose rows would commit one by one. The call fails at once with
**     SQLITE_BUSY and says to call it in a statement of its own.
**   The error code and message are captured before any cleanup statement
**   runs, so the caller sees the real cause, extended code included.
*/
#include "quota_int.h"
#include <stdarg.h>
#include <string.h>

/* How a call joined the transaction state it found. */
#define CALL_OWN       1      /* BEGIN IMMEDIATE ... COMMIT */
#define CALL_SAVEPOINT 2      /* SAVEPOINT ... RELEASE */
#define CALL_BARE      3      /* inside the caller's writing statement */
#define CALL_READ_OWN  4      /* BEGIN ... COMMIT around a read */
#define CALL_READ_BARE 5      /* a read inside whatever is open */

typedef struct QuotaCall QuotaCall;
struct QuotaCall {
  sqlite3_context *ctx;
  const char *zFunc;          /* the function's name, for messages */
  QuotaConn *pConn;
  QuotaTab *p;                /* the table main.quota */
  sqlite3 *db;
  sqlite3_int64 now;          /* the call's clock, read once */
  int eMode;                  /* CALL_* */
  sqlite3_int64 iLastRowid;   /* the caller's last_insert_rowid, restored */
  char *zErr;                 /* the error message, when one was set */
  int rcErr;                  /* its result code */
};

/* Record an error of the call's own (not from a SQLite statement). */
static int callError(QuotaCall *pCall, int rc, const char *zFmt, ...){
  va_list ap;
  va_start(ap, zFmt);
  sqlite3_free(pCall->zErr);
  pCall->zErr = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  pCall->rcErr = rc;
  return rc;
}

/* Capture the connection's error for rc unless the call set its own. */
static void callCapture(QuotaCall *pCall, int rc){
  if( pCall->zErr ) return;
  pCall->rcErr = rc;
  if( rc==SQLITE_CORRUPT_VTAB ){
    pCall->zErr = sqlite3_mprintf("%s: the quota store is damaged: a shadow "
        "table holds values sqlite-quota never writes", pCall->zFunc);
  }else if( rc==SQLITE_TOOBIG ){
    pCall->zErr = sqlite3_mprintf("%s: amount overflows the key's 64-bit "
        "counter", pCall->zFunc);
  }else{
    /* The connection's error is the cause when it has the same code; an
    ** API call after the failure (a bind, a reset) may have cleared it,
    ** and then the code's own text is the honest message. */
    int rcDb = sqlite3_extended_errcode(pCall->db);
    if( (rcDb & 0xff)==(rc & 0xff) ){
      pCall->rcErr = rcDb;
      pCall->zErr = sqlite3_mprintf("%s: %s", pCall->zFunc, sqlite3_errmsg(pCall->db));
    }else{
      pCall->zErr = sqlite3_mprintf("%s: %s", pCall->zFunc, sqlite3_errstr(rc));
    }
  }
}

static int callExec(QuotaCall *pCall, int iStmt){
  sqlite3_stmt *pStmt;
  int rc = quotaStmt(pCall->p, iStmt, &pStmt);
  if( rc==SQLITE_OK ) rc = quotaStepDone(pStmt);
  return rc;
}

/*
** The connected table main.quota, connecting it if needed; NULL with *pRc
** set to the reason when the schema could not be read (a lock, say), NULL
** with *pRc SQLITE_OK when there is no such table.
*/
static QuotaTab *quotaFindTable(QuotaConn *pConn, int *pRc){
  *pRc = SQLITE_OK;
  if( pConn->pTab==0 ){
    /* Preparing a statement that names the table makes SQLite call
    ** xConnect, which registers the table with pConn (vtab.c). */
    sqlite3_stmt *pStmt = 0;
    int rc = sqlite3_prepare_v2(pConn->db, "SELECT 1 FROM main.quota WHERE 0",
                                -1, &pStmt, 0);
    sqlite3_finalize(pStmt);
    if( rc!=SQLITE_OK && rc!=SQLITE_ERROR ) *pRc = rc;   /* not "no such table" */
    if( rc==SQLITE_ERROR && ALWAYS(pConn->pTab==0)
     && sqlite3_strglob("no such table:*", sqlite3_errmsg(pConn->db))!=0 ){
      *pRc = rc;                  /* e.g. the store refused by xConnect */
    }
  }
  return pConn->pTab;
}

/*
** Start a call: find the table, read the clock, and join or open the right
** transaction (see the header comment). bWrite is false for readers.
*/
static int callBegin(QuotaCall *pCall, sqlite3_context *ctx, const char *zFunc,
                     int bWrite){
  int rc = SQLITE_OK;
  int bCacheWas = 0;
  memset(pCall, 0, sizeof(*pCall));
  pCall->ctx = ctx;
  pCall->zFunc = zFunc;
  pCall->pConn = (QuotaConn*)sqlite3_user_data(ctx);
  pCall->db = pCall->pConn->db;
  pCall->iLastRowid = sqlite3_last_insert_rowid(pCall->db);
  pCall->p = quotaFindTable(pCall->pConn, &rc);
  if( pCall->p==0 ){
    if( rc!=SQLITE_OK ){
      callCapture(pCall, rc);
      return rc;
    }
    return callError(pCall, SQLITE_ERROR,
        "%s: no quota table (CREATE VIRTUAL TABLE quota USING quota)", zFunc);
  }
  pCall->p->nRef++;               /* released by callEnd */
  pCall->now = quotaNow(pCall->pConn);
  if( bWrite && pCall->p->bClockPinned && !pCall->pConn->bPinned ){
    return callError(pCall, SQLITE_ERROR, "%s: the quota table requires a "
        "pinned clock (clock=pinned): call quota_clock(time) first", zFunc);
  }
  if( bWrite ){
    /* Until this call commits, the in-memory sweep state may run ahead of
    ** (or be rolled back from) what is stored. */
    bCacheWas = pCall->p->bCache;
    pCall->p->bCache = 0;
    pCall->p->bStateRead = 0;
  }
  /* Every statement that ends a transaction is prepared before one is
  ** opened: after an allocation fails inside the call, SQLite refuses to
  ** prepare anything until the outer statement ends, and a transaction we
  ** could not close would hold its write lock and lose its work later. */
  {
    static const int aEnd[] = { QS_COMMIT, QS_ROLLBACK, QS_RELEASE, QS_ROLLBACK_TO };
    sqlite3_stmt *pUnused;
    int i;
    for(i=0; rc==SQLITE_OK && i<(int)(sizeof(aEnd)/sizeof(aEnd[0])); i++){
      rc = quotaStmt(pCall->p, aEnd[i], &pUnused);
    }
    if( rc!=SQLITE_OK ){
      callCapture(pCall, rc);
      return rc;
    }
  }
  if( sqlite3_get_autocommit(pCall->db) ){
    int eTxn = sqlite3_txn_state(pCall->db, "main");
    if( eTxn==SQLITE_TXN_NONE ){
      pCall->eMode = bWrite ? CALL_OWN : CALL_READ_OWN;
      rc = callExec(pCall, bWrite ? QS_BEGIN : QS_BEGIN_READ);
      if( rc!=SQLITE_OK ){
        pCall->eMode = 0;
      }else if( bWrite ){
        /* The sweep state kept from our last commit is still the truth if
        ** no connection has written since: then skip re-reading it. */
        unsigned int v = 0;
        sqlite3_file_control(pCall->db, "main", SQLITE_FCNTL_DATA_VERSION, &v);
        pCall->p->bUseCache = bCacheWas && v==pCall->p->uCacheVersion;
      }
    }else if( !bWrite ){
      pCall->eMode = CALL_READ_BARE;
    }else if( eTxn==SQLITE_TXN_WRITE ){
      pCall->eMode = CALL_BARE;
    }else{
      rc = callError(pCall, SQLITE_BUSY, "%s: cannot write from a statement "
          "that is reading the database; call %s in a statement of its own",
          zFunc, zFunc);
    }
  }else if( !bWrite ){
    pCall->eMode = CALL_READ_BARE;
  }else{
    if( sqlite3_txn_state(pCall->db, "main")==SQLITE_TXN_NONE ){
      rc = callExec(pCall, QS_LOCK);
    }
    if( rc==SQLITE_OK ){
      rc = callExec(pCall, QS_SAVEPOINT);
      if( rc==SQLITE_OK ){
        pCall->eMode = CALL_SAVEPOINT;
      }else if( rc==SQLITE_BUSY ){
        /* "cannot open savepoint - SQL statements in progress" (SQLite
        ** says SQLITE_BUSY): a writing statement of the caller runs; its
        ** failure takes our writes with it, see doc/transactions.md. */
        pCall->eMode = CALL_BARE;
        rc = SQLITE_OK;
      }
    }
  }
  if( bWrite ){
    /* The key cache is as good as the sweep state: a call that failed, or
    ** ran in the caller's transaction, left that untrusted (bCache), and so
    ** the key it may have cached goes here too. */
    if( !pCall->p->bUseCache ) pCall->p->bKeyCached = 0;
    pCall->p->bKeyCacheOn = rc==SQLITE_OK && pCall->eMode==CALL_OWN;
  }
  if( rc!=SQLITE_OK ) callCapture(pCall, rc);
  return rc;
}

/*
** End a call: commit or roll back what callBegin opened, and on failure
** report the captured error. Returns true when the call succeeded and the
** caller should set its result.
*/
static int callEnd(QuotaCall *pCall, int rc){
  if( rc!=SQLITE_OK ) callCapture(pCall, rc);
  switch( pCall->eMode ){
    case CALL_OWN:
      if( rc==SQLITE_OK ){
        rc = callExec(pCall, QS_COMMIT);
        if( rc!=SQLITE_OK ) callCapture(pCall, rc);
      }
      if( rc==SQLITE_OK && (pCall->p->bUseCache || pCall->p->bStateRead) ){
        sqlite3_file_control(pCall->db, "main", SQLITE_FCNTL_DATA_VERSION,
                             &pCall->p->uCacheVersion);
        pCall->p->bCache = 1;
      }
      /* Whatever went wrong, leave no transaction of ours open. SQLite may
      ** have rolled it back already (an I/O error, OOM): autocommit says. */
      if( rc!=SQLITE_OK && !sqlite3_get_autocommit(pCall->db) ){
        callExec(pCall, QS_ROLLBACK);
      }
      break;
    case CALL_SAVEPOINT: {
      int rcEnd;
      if( rc!=SQLITE_OK ) callExec(pCall, QS_ROLLBACK_TO);
      rcEnd = callExec(pCall, QS_RELEASE);
      if( rcEnd!=SQLITE_OK && NEVER(rc==SQLITE_OK) ){
        /* The call's work cannot be released into the caller's transaction:
        ** undo it, so that an error never leaves a charge behind. */
        rc = rcEnd;
        callCapture(pCall, rc);
        callExec(pCall, QS_ROLLBACK_TO);
        callExec(pCall, QS_RELEASE);
      }
      break;
    }
    case CALL_READ_OWN:
      if( !sqlite3_get_autocommit(pCall->db) ){
        callExec(pCall, QS_COMMIT);
      }
      break;
    default:
      break;
  }
  sqlite3_set_last_insert_rowid(pCall->db, pCall->iLastRowid);
  if( rc!=SQLITE_OK ){
    sqlite3_result_error(pCall->ctx, pCall->zErr ? pCall->zErr : "quota: error", -1);
    sqlite3_result_error_code(pCall->ctx, ALWAYS(pCall->rcErr) ? pCall->rcErr : rc);
  }
  sqlite3_free(pCall->zErr);
  pCall->zErr = 0;
  if( pCall->p ){
    pCall->p->bKeyCacheOn = 0;
    pCall->p->bUseCache = 0;
    quotaTabUnref(pCall->p);
    pCall->p = 0;
  }
  return rc==SQLITE_OK;
}

/* ---------------------------------------------------------------- arguments */

/* A non-negative 64-bit integer (quotaValueInt's rule). */
static int argAmount(sqlite3_value *v, sqlite3_int64 *pAmount){
  return quotaValueInt(v, pAmount) || *pAmount<0;
}

/*
** Key and request-id texts: TEXT, or a number that quotaValueInt accepts
** taken as its decimal text (zBuf, 24 bytes, holds it). Clients that bind
** every number as a double (Node) pass 42.0 for 42.
*/
static const char *argText(sqlite3_value *v, char *zBuf){
  int t = sqlite3_value_type(v);
  const char *z;
  sqlite3_int64 i;
  if( t==SQLITE_FLOAT && quotaValueInt(v, &i)==0 ){
    sqlite3_snprintf(24, zBuf, "%lld", i);
    return zBuf;
  }
  if( t!=SQLITE_TEXT && t!=SQLITE_INTEGER ) return 0;
  z = (const char*)sqlite3_value_text(v);
  return (z && z[0]) ? z : 0;
}

static int argDuration(sqlite3_value *v, sqlite3_int64 *pSecs){
  if( sqlite3_value_type(v)==SQLITE_TEXT ){
    return quotaParseDurationText((const char*)sqlite3_value_text(v), pSecs, 0);
  }
  return quotaValueInt(v, pSecs);
}

/* Report an argument error before any transaction was opened. */
static void argError(sqlite3_context *ctx, const char *zFmt, const char *zFunc){
  char *z = sqlite3_mprintf(zFmt, zFunc);
  sqlite3_result_error(ctx, z ? z : "quota: out of memory", -1);
  sqlite3_result_error_code(ctx, z ? SQLITE_MISMATCH : SQLITE_NOMEM);
  sqlite3_free(z);
}

/* ---------------------------------------------------------------- helpers */

/* Units that still fit at one level; LARGEST_INT64 when it has no cap. */
static sqlite3_int64 levelRoom(const QuotaKey *k){
  sqlite3_int64 r;
  if( !k->bCap ) return LARGEST_INT64;
  if( k->used>=k->cap ) return 0;
  r = k->cap - k->used;
  return k->reserved>=r ? 0 : r - k->reserved;
}

/*
** Load the key named zKey for a writing call, sweeping expired holds first
** when the clock has moved past the watermark. *pFound is 0 for no such key.
*/
static int loadForWrite(QuotaCall *pCall, const char *zKey, QuotaChain *c,
                        int *pFound){
  QuotaTab *p = pCall->p;
  int rc = quotaLoadKeyByName(p, zKey, &c->a[0], pFound);
  if( rc==SQLITE_OK && pCall->now!=p->iSwept ){
    rc = quotaSweep(p, pCall->now);
    if( rc==SQLITE_OK && *pFound ) rc = quotaLoadKeyByName(p, zKey, &c->a[0], pFound);
  }
  return rc;
}

/* Load the ancestors of c->a[0] and bring every level to the call's time. */
static int chainNormalize(QuotaCall *pCall, QuotaChain *c, int bWrite){
  int i, rc = quotaLoadChain(pCall->p, &c->a[0], c);
  for(i=0; rc==SQLITE_OK && i<c->n; i++){
    rc = bWrite ? quotaNormalize(pCall->p, &c->a[i], pCall->now, 1)
                : quotaEffective(pCall->p, &c->a[i], pCall->now);
  }
  return rc;
}

static int chainSave(QuotaCall *pCall, QuotaChain *c){
  int i, rc = SQLITE_OK;
  for(i=0; rc==SQLITE_OK && i<c->n; i++) rc = quotaSaveKey(pCall->p, &c->a[i]);
  return rc;
}

/* SQLITE_TOOBIG when charging `amount` would overflow some level's `used`:
** checked before the first write, so a failing call writes nothing. */
static int chainChargeFits(const QuotaChain *c, sqlite3_int64 amount){
  int i;
  for(i=0; i<c->n; i++){
    if( c->a[i].used > LARGEST_INT64 - amount ) return SQLITE_TOOBIG;
    if( c->a[i].wtotal > LARGEST_INT64 - amount ) return SQLITE_TOOBIG;
  }
  return SQLITE_OK;
}

/* Index of the first level that cannot fit `amount`, or -1. */
static int chainDenies(const QuotaChain *c, sqlite3_int64 amount){
  int i;
  for(i=0; i<c->n; i++){
    if( levelRoom(&c->a[i])<amount ) return i;
  }
  return -1;
}

/*
** Look a request id up. *pbReplay is set when it is remembered for this key
** with the same operation and amount: *pResult then holds the original
** result (*pbNull when it was NULL). A mismatch is an error.
*/
static int requestReplay(QuotaCall *pCall, sqlite3_int64 keyId, const char *zReq,
                         int op, sqlite3_int64 amount, int *pbReplay,
                         sqlite3_int64 *pResult, int *pbNull){
  static const char *azOp[] = {"", "quota_reserve", "quota_consume", "quota_record"};
  QuotaRequest r;
  int rc = quotaRequestGet(pCall->p, keyId, zReq, pCall->now, &r);
  *pbReplay = 0;
  if( rc!=SQLITE_OK || !r.bFound ) return rc;
  if( r.op!=op ){
    return callError(pCall, SQLITE_CONSTRAINT, "%s: request_id '%s' was "
        "already used by %s", pCall->zFunc, zReq,
        (r.op>=1 && r.op<=3) ? azOp[r.op] : "another function");
  }
  if( r.amount!=amount ){
    return callError(pCall, SQLITE_CONSTRAINT, "%s: request_id '%s' was "
        "already used with amount %lld", pCall->zFunc, zReq, r.amount);
  }
  *pbReplay = 1;
  *pResult = r.result;
  *pbNull = r.bResultNull;
  return SQLITE_OK;
}

/* --------------------------------------------------------------- reserve */

static void reserveFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  static const char zFunc[] = "quota_reserve";
  char zKeyBuf[24], zReqBuf[24];
  const char *zKey = argText(argv[0], zKeyBuf);
  const char *zReq = 0;
  sqlite3_int64 amount, ttl = 0, holdId = 0;
  int bTtl = 0, bFound = 0, bReplay = 0, bNull = 0, rc, i;
  QuotaCall call;
  QuotaChain c;

  if( zKey==0 ){ argError(ctx, "%s: key must be a non-empty text", zFunc); return; }
  if( argAmount(argv[1], &amount) ){
    argError(ctx, "%s: amount must be a non-negative integer", zFunc); return;
  }
  if( argc>2 && sqlite3_value_type(argv[2])!=SQLITE_NULL ){
    zReq = argText(argv[2], zReqBuf);
    if( zReq==0 ){ argError(ctx, "%s: request_id must be text", zFunc); return; }
  }
  if( argc>3 && sqlite3_value_type(argv[3])!=SQLITE_NULL ){
    if( argDuration(argv[3], &ttl) || ttl<=0 ){
      argError(ctx, "%s: ttl must be a positive duration", zFunc); return;
    }
    bTtl = 1;
  }
  if( callBegin(&call, ctx, zFunc, 1) ){ callEnd(&call, call.rcErr); return; }
  rc = loadForWrite(&call, zKey, &c, &bFound);
  if( rc==SQLITE_OK && !bFound ){
    rc = callError(&call, SQLITE_ERROR, "%s: no such quota key: '%s'", zFunc, zKey);
  }
  if( rc==SQLITE_OK && zReq ){
    rc = requestReplay(&call, c.a[0].id, zReq, REQ_RESERVE, amount, &bReplay,
                       &holdId, &bNull);
  }
  if( rc==SQLITE_OK && !bReplay ){
    rc = chainNormalize(&call, &c, 1);
    /* A grant must not overflow any level (checked before any write). */
    if( rc==SQLITE_OK && chainDenies(&c, amount)<0 ){
      for(i=0; rc==SQLITE_OK && i<c.n; i++){
        if( c.a[i].reserved > LARGEST_INT64 - amount ) rc = SQLITE_TOOBIG;
      }
    }
    if( rc==SQLITE_OK && chainDenies(&c, amount)<0 ){
      if( !bTtl ) ttl = call.p->nHoldTtl;
      rc = quotaHoldInsert(call.p, c.a[0].id, amount,
          quotaAddSat(call.now, ttl),
          ttl==call.p->nHoldTtl, zReq, &holdId);
      for(i=0; rc==SQLITE_OK && i<c.n; i++){
        c.a[i].reserved += amount;
        c.a[i].bDirty |= QUOTA_DIRTY_COUNTS;
      }
      if( rc==SQLITE_OK && zReq ){
        rc = quotaRequestPut(call.p, c.a[0].id, zReq, REQ_RESERVE, amount,
                             holdId, call.now);
      }
    }
    if( rc==SQLITE_OK ) rc = chainSave(&call, &c);
  }
  if( callEnd(&call, rc) ){
    if( holdId ) sqlite3_result_int64(ctx, holdId); else sqlite3_result_null(ctx);
  }
}

/* --------------------------------------------------------- settle, release */

/* Load a hold for a writing call, sweeping first when needed. */
static int loadHold(QuotaCall *pCall, sqlite3_int64 holdId, QuotaHold *h,
                    QuotaKey *k){
  int bFound = 0;
  int rc = quotaHoldGet(pCall->p, holdId, h, k, &bFound);
  if( rc==SQLITE_OK && pCall->now!=pCall->p->iSwept ){
    rc = quotaSweep(pCall->p, pCall->now);
    if( rc==SQLITE_OK ) rc = quotaHoldGet(pCall->p, holdId, h, k, &bFound);
  }
  if( rc==SQLITE_OK && !bFound ){
    rc = callError(pCall, SQLITE_ERROR, "%s: no such hold: %lld", pCall->zFunc, holdId);
  }
  return rc;
}

static int argHoldId(sqlite3_value *v, sqlite3_int64 *pId){
  return quotaValueInt(v, pId) || *pId<=0;
}

static void settleFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  static const char zFunc[] = "quota_settle";
  sqlite3_int64 holdId, amount, ledgerId = 0, charged = -1;
  sqlite3_value *pMeta = 0;
  QuotaCall call;
  QuotaChain c;
  QuotaHold h;
  int rc, i, bOver = 0;
  memset(&h, 0, sizeof(h));

  if( argHoldId(argv[0], &holdId) ){
    argError(ctx, "%s: hold_id must be a positive integer", zFunc); return;
  }
  if( argAmount(argv[1], &amount) ){
    argError(ctx, "%s: amount must be a non-negative integer", zFunc); return;
  }
  if( argc>2 && sqlite3_value_type(argv[2])!=SQLITE_NULL
   && sqlite3_value_type(argv[2])!=SQLITE_TEXT ){
    argError(ctx, "%s: meta must be text", zFunc); return;
  }
  if( argc>2 ) pMeta = sqlite3_value_type(argv[2])==SQLITE_NULL ? 0 : argv[2];
  if( callBegin(&call, ctx, zFunc, 1) ){ callEnd(&call, call.rcErr); return; }
  rc = loadHold(&call, holdId, &h, &c.a[0]);
  if( rc==SQLITE_OK ){
    switch( h.state ){
      case HOLD_SETTLED:
        charged = h.charged;
        break;
      case HOLD_RELEASED:
        rc = callError(&call, SQLITE_ERROR, "%s: hold %lld was released",
                       zFunc, holdId);
        break;
      case HOLD_LIVE:
      case HOLD_EXPIRED:
        if( h.zKey==0 ) break;                  /* key deleted: NULL */
        rc = chainNormalize(&call, &c, 1);
        if( rc==SQLITE_OK ) rc = chainChargeFits(&c, amount);
        for(i=0; rc==SQLITE_OK && i<c.n; i++){
          if( h.state==HOLD_LIVE ){
            if( c.a[i].reserved<h.amount ){ rc = SQLITE_CORRUPT_VTAB; break; }
            c.a[i].reserved -= h.amount;
          }
          rc = quotaCharge(call.p, &c.a[i], amount, call.now);
          if( amount>0 && c.a[i].bCap && c.a[i].used>c.a[i].cap ) bOver = 1;
        }
        if( rc==SQLITE_OK ) rc = chainSave(&call, &c);
        if( rc==SQLITE_OK ) rc = quotaHoldEnd(call.p, holdId, HOLD_SETTLED, call.now, amount);
        if( rc==SQLITE_OK ){
          rc = quotaInsertLedger(call.p, h.zKey,
                                 amount, call.now,
                                 h.pReq ? (const char*)sqlite3_value_text(h.pReq) : 0,
                                 holdId,
                                 pMeta, bOver, h.state==HOLD_EXPIRED, &ledgerId);
        }
        if( rc==SQLITE_OK ) charged = amount;
        break;
      default:          /* HOLD_ORPHANED: its key was deleted */
        break;
    }
  }
  quotaHoldClear(&h);
  if( callEnd(&call, rc) ){
    if( charged>=0 ) sqlite3_result_int64(ctx, charged); else sqlite3_result_null(ctx);
  }
}

static void releaseFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  static const char zFunc[] = "quota_release";
  sqlite3_int64 holdId, released = 0;
  QuotaCall call;
  QuotaHold h;
  QuotaKey k;
  int rc;
  (void)argc;
  memset(&h, 0, sizeof(h));
  if( argHoldId(argv[0], &holdId) ){
    argError(ctx, "%s: hold_id must be a positive integer", zFunc); return;
  }
  if( callBegin(&call, ctx, zFunc, 1) ){ callEnd(&call, call.rcErr); return; }
  rc = loadHold(&call, holdId, &h, &k);
  if( rc==SQLITE_OK && h.state==HOLD_LIVE ){
    rc = quotaAdjustReservedChain(call.p, h.keyId, -h.amount);
    if( rc==SQLITE_OK ) rc = quotaHoldEnd(call.p, holdId, HOLD_RELEASED, call.now, -1);
    if( rc==SQLITE_OK ) released = h.amount;
  }
  quotaHoldClear(&h);
  if( callEnd(&call, rc) ) sqlite3_result_int64(ctx, released);
}

/* -------------------------------------------------------- consume, record */

/*
** quota_consume and quota_record: charge `amount` now, at every level.
** consume first needs room at every level (else NULL); record charges even
** past the cap, marks the ledger row `over`, and gives NULL for an unknown key.
*/
static void chargeNow(sqlite3_context *ctx, int argc, sqlite3_value **argv,
                      const char *zFunc, int op){
  char zKeyBuf[24], zReqBuf[24];
  const char *zKey = argText(argv[0], zKeyBuf);
  const char *zReq = 0;
  sqlite3_value *pMeta = 0;
  sqlite3_int64 amount, ledgerId = 0;
  int bFound = 0, bReplay = 0, bNull = 0, bOver = 0, rc, i;
  QuotaCall call;
  QuotaChain c;

  if( zKey==0 ){ argError(ctx, "%s: key must be a non-empty text", zFunc); return; }
  if( argAmount(argv[1], &amount) ){
    argError(ctx, "%s: amount must be a non-negative integer", zFunc); return;
  }
  if( argc>2 && sqlite3_value_type(argv[2])!=SQLITE_NULL ){
    zReq = argText(argv[2], zReqBuf);
    if( zReq==0 ){ argError(ctx, "%s: request_id must be text", zFunc); return; }
  }
  if( argc>3 && sqlite3_value_type(argv[3])!=SQLITE_NULL ){
    if( sqlite3_value_type(argv[3])!=SQLITE_TEXT ){
      argError(ctx, "%s: meta must be text", zFunc); return;
    }
    pMeta = argv[3];
  }
  if( callBegin(&call, ctx, zFunc, 1) ){ callEnd(&call, call.rcErr); return; }
  rc = loadForWrite(&call, zKey, &c, &bFound);
  if( rc==SQLITE_OK && !bFound && op==REQ_CONSUME ){
    rc = callError(&call, SQLITE_ERROR, "%s: no such quota key: '%s'", zFunc, zKey);
  }
  if( rc==SQLITE_OK && bFound && zReq ){
    rc = requestReplay(&call, c.a[0].id, zReq, op, amount, &bReplay,
                       &ledgerId, &bNull);
  }
  if( rc==SQLITE_OK && bFound && !bReplay ){
    int bCharge;
    rc = chainNormalize(&call, &c, 1);
    bCharge = op==REQ_RECORD || chainDenies(&c, amount)<0;
    if( rc==SQLITE_OK && bCharge ) rc = chainChargeFits(&c, amount);
    if( rc==SQLITE_OK && bCharge ){
      for(i=0; rc==SQLITE_OK && i<c.n; i++){
        rc = quotaCharge(call.p, &c.a[i], amount, call.now);
        if( amount>0 && c.a[i].bCap && c.a[i].used>c.a[i].cap ) bOver = 1;
      }
      if( rc==SQLITE_OK ) rc = chainSave(&call, &c);
      if( rc==SQLITE_OK ){
        rc = quotaInsertLedger(call.p, zKey, amount, call.now, zReq, 0, pMeta,
                               bOver, 0, &ledgerId);
      }
      if( rc==SQLITE_OK && zReq ){
        rc = quotaRequestPut(call.p, c.a[0].id, zReq, op, amount, ledgerId,
                             call.now);
      }
    }else if( rc==SQLITE_OK ){
      rc = chainSave(&call, &c);     /* keep a rollover the check made */
    }
  }
  if( callEnd(&call, rc) ){
    if( ledgerId ) sqlite3_result_int64(ctx, ledgerId); else sqlite3_result_null(ctx);
  }
}

static void consumeFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  chargeNow(ctx, argc, argv, "quota_consume", REQ_CONSUME);
}

static void recordFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  chargeNow(ctx, argc, argv, "quota_record", REQ_RECORD);
}

/* ---------------------------------------------------------- check, status */

/* Load key zKey and its chain as readers see them now. */
static int loadForRead(QuotaCall *pCall, const char *zKey, QuotaChain *c){
  int bFound = 0;
  int rc = quotaLoadKeyByName(pCall->p, zKey, &c->a[0], &bFound);
  if( rc==SQLITE_OK && !bFound ){
    rc = callError(pCall, SQLITE_ERROR, "%s: no such quota key: '%s'",
                   pCall->zFunc, zKey);
  }
  if( rc==SQLITE_OK ) rc = chainNormalize(pCall, c, 0);
  return rc;
}

static int argCheck(sqlite3_context *ctx, int argc, sqlite3_value **argv,
                    const char *zFunc, char *zKeyBuf, const char **pzKey,
                    sqlite3_int64 *pAmount){
  *pzKey = argText(argv[0], zKeyBuf);
  *pAmount = 1;
  if( *pzKey==0 ){ argError(ctx, "%s: key must be a non-empty text", zFunc); return 1; }
  if( argc>1 && argAmount(argv[1], pAmount) ){
    argError(ctx, "%s: amount must be a non-negative integer", zFunc); return 1;
  }
  return 0;
}

static void checkFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  static const char zFunc[] = "quota_check";
  char zKeyBuf[24];
  const char *zKey;
  sqlite3_int64 amount;
  QuotaCall call;
  QuotaChain c;
  int rc;
  if( argCheck(ctx, argc, argv, zFunc, zKeyBuf, &zKey, &amount) ) return;
  if( callBegin(&call, ctx, zFunc, 0) ){ callEnd(&call, call.rcErr); return; }
  rc = loadForRead(&call, zKey, &c);
  if( callEnd(&call, rc) ) sqlite3_result_int(ctx, chainDenies(&c, amount)<0);
}

static void jsonString(sqlite3_str *pStr, const char *z){
  sqlite3_str_appendchar(pStr, 1, '"');
  for(; *z; z++){
    unsigned char ch = (unsigned char)*z;
    if( ch=='"' || ch=='\\' ){
      sqlite3_str_appendchar(pStr, 1, '\\');
      sqlite3_str_appendchar(pStr, 1, (char)ch);
    }else if( ch<0x20 ){
      sqlite3_str_appendf(pStr, "\\u%04x", ch);
    }else{
      sqlite3_str_appendchar(pStr, 1, (char)ch);
    }
  }
  sqlite3_str_appendchar(pStr, 1, '"');
}

static void jsonIntOrNull(sqlite3_str *pStr, int bNull, sqlite3_int64 v){
  if( bNull ) sqlite3_str_appendall(pStr, "null");
  else sqlite3_str_appendf(pStr, "%lld", v);
}

/*
** The level whose numbers quota_status reports. When some level denies:
** the one that frees room last (a balance that never resets counts as
** never), the nearest to the key on a tie. Otherwise the capped level with
** the least room, the nearest on a tie; the key itself when none is capped.
*/
static int statusLevel(QuotaCall *pCall, QuotaChain *c, sqlite3_int64 amount,
                       int *piLevel, sqlite3_int64 *pRetry){
  int i, iBest = -1, rc = SQLITE_OK;
  sqlite3_int64 best = 0;
  for(i=0; i<c->n; i++){
    sqlite3_int64 secs;
    if( levelRoom(&c->a[i])>=amount ) continue;
    rc = quotaRetryAfter(pCall->p, &c->a[i], amount, pCall->now, &secs);
    if( rc!=SQLITE_OK ) return rc;
    if( iBest<0 || (best!=-1 && (secs==-1 || secs>best)) ){
      iBest = i;
      best = secs;
    }
  }
  *pRetry = best;
  if( iBest<0 ){
    for(i=0; i<c->n; i++){
      if( c->a[i].bCap && (iBest<0 || levelRoom(&c->a[i])<levelRoom(&c->a[iBest])) ){
        iBest = i;
      }
    }
    if( iBest<0 ) iBest = 0;
    *pRetry = -1;
  }
  *piLevel = iBest;
  return rc;
}

static void statusFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  static const char zFunc[] = "quota_status";
  char zKeyBuf[24];
  const char *zKey;
  sqlite3_int64 amount, retry = -1;
  QuotaCall call;
  QuotaChain c;
  QuotaKey *k;
  int rc, iLevel = 0, bAllowed;
  char *zLevel = 0;
  char *zJson = 0;
  if( argCheck(ctx, argc, argv, zFunc, zKeyBuf, &zKey, &amount) ) return;
  if( callBegin(&call, ctx, zFunc, 0) ){ callEnd(&call, call.rcErr); return; }
  rc = loadForRead(&call, zKey, &c);
  if( rc==SQLITE_OK ) rc = statusLevel(&call, &c, amount, &iLevel, &retry);
  if( rc==SQLITE_OK ) rc = quotaKeyName(call.p, c.a[iLevel].id, &zLevel);
  if( rc==SQLITE_OK ){
    sqlite3_str *pStr = sqlite3_str_new(call.db);
    char zTime[QUOTA_TIME_TEXT];
    k = &c.a[iLevel];
    bAllowed = chainDenies(&c, amount)<0;
    sqlite3_str_appendall(pStr, "{\"key\":");
    jsonString(pStr, zKey);
    sqlite3_str_appendf(pStr, ",\"allowed\":%s,\"code\":", bAllowed ? "true" : "false");
    if( bAllowed ){
      sqlite3_str_appendall(pStr, "null");
    }else{
      jsonString(pStr, k->eKind==QUOTA_LIFETIME ? "insufficient_quota"
                                                : "rate_limit_exceeded");
    }
    sqlite3_str_appendall(pStr, ",\"cap\":");
    jsonIntOrNull(pStr, !k->bCap, k->cap);
    sqlite3_str_appendf(pStr, ",\"used\":%lld,\"reserved\":%lld,\"remaining\":",
                        k->used, k->reserved);
    jsonIntOrNull(pStr, !k->bCap, levelRoom(k));
    sqlite3_str_appendall(pStr, ",\"resets_at\":");
    if( k->bPeriod ){
      quotaCalFormat(k->pend, zTime);
      jsonString(pStr, zTime);
    }else{
      sqlite3_str_appendall(pStr, "null");
    }
    sqlite3_str_appendall(pStr, ",\"retry_after\":");
    jsonIntOrNull(pStr, retry<0, retry);
    sqlite3_str_appendall(pStr, ",\"limited_by\":");
    jsonString(pStr, zLevel);
    sqlite3_str_appendchar(pStr, 1, '}');
    rc = sqlite3_str_errcode(pStr);
    zJson = sqlite3_str_finish(pStr);
    if( rc==SQLITE_OK && NEVER(zJson==0) ) rc = SQLITE_NOMEM;
  }
  sqlite3_free(zLevel);
  if( callEnd(&call, rc) ){
    sqlite3_result_text(ctx, zJson, -1, sqlite3_free);
  }else{
    sqlite3_free(zJson);
  }
}

/* ----------------------------------------------------------------- purge */

static void purgeFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  QuotaCall call;
  sqlite3_int64 nRemoved = 0;
  int rc;
  (void)argc; (void)argv;
  if( callBegin(&call, ctx, "quota_purge", 1) ){ callEnd(&call, call.rcErr); return; }
  rc = quotaSweepState(call.p);
  if( rc==SQLITE_OK ) rc = quotaSweep(call.p, call.now);
  if( rc==SQLITE_OK ) rc = quotaPurge(call.p, call.now, &nRemoved);
  if( callEnd(&call, rc) ) sqlite3_result_int64(ctx, nRemoved);
}

/*
** quota_integrity(): 'ok', or the first disagreement between the counters
** and the rows they summarise (xIntegrity does the same for PRAGMA
** integrity_check on SQLite 3.44 and later).
*/
static void integrityFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  QuotaCall call;
  char *zProblem = 0;
  int rc;
  (void)argc; (void)argv;
  if( callBegin(&call, ctx, "quota_integrity", 0) ){ callEnd(&call, call.rcErr); return; }
  rc = quotaIntegrity(call.p, &zProblem);
  if( callEnd(&call, rc) ){
    if( zProblem ){
      sqlite3_result_text(ctx, zProblem, -1, sqlite3_free);
      zProblem = 0;
    }else{
      sqlite3_result_text(ctx, "ok", -1, SQLITE_STATIC);
    }
  }
  sqlite3_free(zProblem);
}

/* ------------------------------------------------------------- time, misc */

static void resultTime(sqlite3_context *ctx, sqlite3_int64 t){
  char zTime[QUOTA_TIME_TEXT];
  quotaCalFormat(t, zTime);
  sqlite3_result_text(ctx, zTime, -1, SQLITE_TRANSIENT);
}

static void clockFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  QuotaConn *pConn = (QuotaConn*)sqlite3_user_data(ctx);
  if( argc==1 ){
    if( sqlite3_value_type(argv[0])==SQLITE_NULL ){
      pConn->bPinned = 0;
    }else{
      sqlite3_int64 t;
      int rc = quotaParseTime(pConn, argv[0], &t);
      if( rc==SQLITE_MISMATCH ){
        char *z = sqlite3_mprintf("quota_clock: not a time: '%s'",
                                  (const char*)sqlite3_value_text(argv[0]));
        sqlite3_result_error(ctx, z ? z : "quota_clock: not a time", -1);
        sqlite3_free(z);
        return;
      }else if( rc!=SQLITE_OK ){
        sqlite3_result_error_code(ctx, rc);
        return;
      }
      pConn->bPinned = 1;
      pConn->iPinned = t;
    }
  }
  resultTime(ctx, quotaNow(pConn));
}

static void versionFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc; (void)argv;
  sqlite3_result_text(ctx, SQLITE_QUOTA_VERSION, -1, SQLITE_STATIC);
}

/* Set by the Makefile; a build without it says so. */
#ifndef QUOTA_COMMIT
# define QUOTA_COMMIT "unknown"
#endif
#ifndef QUOTA_CFLAGS
# define QUOTA_CFLAGS "unknown"
#endif

/*
** quota_debug(): what a bug report needs, one "Name: value" per line. Not
** DETERMINISTIC: the host SQLite can differ from one load to the next.
*/
static void debugFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  char *z;
  (void)argc; (void)argv;
  z = sqlite3_mprintf(
      "Version: %s\n"
      "Schema: %d\n"
      "Date: %s %s\n"
      "Commit: %s\n"
      "Build flags: %s\n"
#ifdef SQLITE_CORE
      "Linking: static (SQLITE_CORE)\n"
#else
      "Linking: loadable\n"
#endif
      "Compiled against SQLite: %s\n"
      "Host SQLite: %s %s",
      SQLITE_QUOTA_VERSION, QUOTA_SCHEMA_VERSION, __DATE__, __TIME__,
      QUOTA_COMMIT, QUOTA_CFLAGS, SQLITE_VERSION, sqlite3_libversion(),
      sqlite3_sourceid());
  if( z==0 ){ sqlite3_result_error_nomem(ctx); return; }
  sqlite3_result_text(ctx, z, -1, sqlite3_free);
}

/*
** first_of_next_month(time, modifiers...): SQLite's own datetime() does the
** parsing and the modifiers, so every value and modifier it takes works the
** same here; then 'start of month', '+1 month'.
*/
static void firstOfNextMonthFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  sqlite3_str *pSql;
  sqlite3_stmt *pStmt = 0;
  char *zSql;
  int i, rc;
  if( argc<1 ){
    sqlite3_result_error(ctx, "first_of_next_month: needs a time", -1);
    return;
  }
  pSql = sqlite3_str_new(db);
  sqlite3_str_appendall(pSql, "SELECT datetime(datetime(?1");
  for(i=1; i<argc; i++) sqlite3_str_appendf(pSql, ", ?%d", i+1);
  sqlite3_str_appendall(pSql, "), 'start of month', '+1 month')");
  zSql = sqlite3_str_finish(pSql);
  if( zSql==0 ){ sqlite3_result_error_nomem(ctx); return; }
  rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  sqlite3_free(zSql);
  for(i=0; rc==SQLITE_OK && i<argc; i++) rc = sqlite3_bind_value(pStmt, i+1, argv[i]);
  if( rc==SQLITE_OK ){
    rc = sqlite3_step(pStmt);
    if( rc==SQLITE_ROW ){
      sqlite3_result_value(ctx, sqlite3_column_value(pStmt, 0));
      rc = SQLITE_OK;
    }
  }
  if( rc!=SQLITE_OK ){
    sqlite3_result_error(ctx, sqlite3_errmsg(db), -1);
    sqlite3_result_error_code(ctx, rc);
  }
  sqlite3_finalize(pStmt);
}

/* ---------------------------------------------------------- registration */

int quotaRegisterFunctions(sqlite3 *db, QuotaConn *pConn){
  /* Writing or clock-reading functions: never DETERMINISTIC (SQLite would
  ** call them once for many rows) and DIRECTONLY (no schema may hide them
  ** in a view or trigger that every reader would then run). */
  static const int fWrite = SQLITE_UTF8|SQLITE_DIRECTONLY;
  static const int fPure = SQLITE_UTF8|SQLITE_DETERMINISTIC|SQLITE_INNOCUOUS;
  static const struct {
    const char *zName;
    signed char nArg;
    int bPure;
    void (*xFunc)(sqlite3_context*, int, sqlite3_value**);
  } aFunc[] = {
    {"quota_reserve", 2, 0, reserveFunc},
    {"quota_reserve", 3, 0, reserveFunc},
    {"quota_reserve", 4, 0, reserveFunc},
    {"quota_settle", 2, 0, settleFunc},
    {"quota_settle", 3, 0, settleFunc},
    {"quota_release", 1, 0, releaseFunc},
    {"quota_consume", 2, 0, consumeFunc},
    {"quota_consume", 3, 0, consumeFunc},
    {"quota_consume", 4, 0, consumeFunc},
    {"quota_record", 2, 0, recordFunc},
    {"quota_record", 3, 0, recordFunc},
    {"quota_record", 4, 0, recordFunc},
    {"quota_check", 1, 0, checkFunc},
    {"quota_check", 2, 0, checkFunc},
    {"quota_status", 1, 0, statusFunc},
    {"quota_status", 2, 0, statusFunc},
    {"quota_purge", 0, 0, purgeFunc},
    {"quota_integrity", 0, 0, integrityFunc},
    {"quota_clock", 0, 0, clockFunc},
    {"quota_clock", 1, 0, clockFunc},
    {"quota_version", 0, 1, versionFunc},
    {"quota_debug", 0, 0, debugFunc},
    {"first_of_next_month", -1, 1, firstOfNextMonthFunc},
  };
  int rc = SQLITE_OK;
  size_t i;
  for(i=0; rc==SQLITE_OK && i<sizeof(aFunc)/sizeof(aFunc[0]); i++){
    pConn->nRef++;
    rc = sqlite3_create_function_v2(db, aFunc[i].zName, aFunc[i].nArg,
        aFunc[i].bPure ? fPure : fWrite, pConn, aFunc[i].xFunc, 0, 0,
        quotaConnUnref);
    /* On failure SQLite has already called the destructor. */
  }
  return rc;
}
