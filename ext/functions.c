/*
** functions.c: the SQL functions of sqlite-quota, and the frame of every
** call: the guard, the transaction, the checks of who called.
**
**   quota_reserve(key, amount [, request_id [, ttl]])   hold id, or NULL
**   quota_reserve_upto(key, min_amount, max_amount [, request_id [, ttl]])
**                                                       hold id, or NULL
**   quota_settle(hold_id, amount [, meta])              units charged
**   quota_release(hold_id)                              units released
**   quota_hold(hold_id)                                 JSON text, or NULL
**   quota_extend(hold_id, ttl)                          new expiry, or NULL
**   quota_consume(key, amount [, request_id [, meta]])  ledger id, or NULL
**   quota_grant(key, amount [, expires [, priority [, request_id [, meta]]]])
**                                                       grant id
**   quota_void(grant_id)                                units voided
**   quota_record(key, amount [, request_id [, meta]])   ledger id
**   quota_check(key [, amount])                         1 or 0
**   quota_status(key [, amount])                        JSON text
**   quota_purge()                                       rows removed
**   quota_integrity()                                   'ok' or a problem
**   quota_configure(option [, value])                   the option's value
**   quota_clock([time])                                 the clock, pinned or not
**   quota_version()                                     version text
**   quota_debug()                                       build details
**   first_of_next_month(time [, modifier ...])          'YYYY-MM-01 00:00:00'
**
** Every function but quota_version and first_of_next_month is registered
** SQLITE_DIRECTONLY: they write (or read the clock), so a view or trigger in
** a database's schema must not be able to call them, and none is
** DETERMINISTIC: SQLite would call a deterministic function once for many
** rows.
**
** HOW A CALL IS FRAMED (callBegin, callEnd)
**   1. The guard (conn.c): no quota call runs inside another.
**   2. The table main.quota, from the connection's list.
**   3. The transaction (store.c, quotaStoreTxnBegin): its own, a savepoint
**      in the caller's, or the caller's writing statement; refused from a
**      statement that is reading. Then the clock is read: a call that
**      waited for the write lock stamps the time it ran, not the time it
**      asked.
**   4. What the store remembers is made the truth (quotaStoreRefresh):
**      the sweep state, the options, the schema checks.
**   5. Who called: when some statement of the caller is running, a CHECK
**      constraint of a database's schema could be the caller; the call is
**      refused if any schema calls quota functions (schema.c). A writing
**      call is refused if a trigger sits on a shadow table.
**   The error code and message are captured before any cleanup statement
**   runs, so the caller sees the real cause, extended code included.
*/
#include "account.h"
#include "events.h"
#include "functions.h"
#include "integrity.h"
#include "schema.h"
#include <stdarg.h>
#include <string.h>

typedef struct QuotaCall QuotaCall;
struct QuotaCall {
  sqlite3_context *ctx;
  const char *zFunc;          /* the function's name, for messages */
  QuotaConn *pConn;
  QuotaStore *p;              /* the table main.quota (one reference) */
  sqlite3 *db;
  sqlite3_int64 now;          /* the call's clock, read under the lock */
  QuotaTxn txn;               /* how the call joined the transaction */
  int bEntered;               /* the guard is ours to leave */
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
      /* A message of ours keeps one prefix: the table's ("quota: ...",
      ** opening it) gives way to the function's; an inner call's refusal
      ** ("quota_consume: ...") is shown as it is. */
      const char *zMsg = sqlite3_errmsg(pCall->db);
      pCall->rcErr = rcDb;
      if( strncmp(zMsg, "quota: ", 7)==0 ){
        pCall->zErr = sqlite3_mprintf("%s: %s", pCall->zFunc, zMsg+7);
      }else if( strncmp(zMsg, "quota_", 6)==0 && strstr(zMsg, ": ")
             && strcspn(zMsg, " :")==(size_t)(strstr(zMsg, ": ")-zMsg) ){
        pCall->zErr = sqlite3_mprintf("%s", zMsg);
      }else{
        pCall->zErr = sqlite3_mprintf("%s: %s", pCall->zFunc, zMsg);
      }
    }else{
      pCall->zErr = sqlite3_mprintf("%s: %s", pCall->zFunc, sqlite3_errstr(rc));
    }
  }
}

/* The refusal of a call made inside another (the guard, conn.c). */
static int callNested(QuotaCall *pCall){
  return callError(pCall, SQLITE_ERROR, "%s: quota calls cannot nest: %s is "
      "running (a trigger or CHECK constraint on a quota shadow table?)",
      pCall->zFunc, pCall->pConn->zActive);
}

/*
** When some statement of the caller runs, refuse the call if a database
** schema calls quota functions: a CHECK constraint may be the caller
** (schema.c says why only then). pScanned: a store whose schema
** quotaStoreRefresh has just checked, or NULL.
*/
static int callCheckCaller(QuotaCall *pCall, QuotaStore *pScanned){
  char *zWhere = 0;
  int rc = quotaConnCheckCaller(pCall->pConn, pScanned, &zWhere);
  if( rc==SQLITE_OK && zWhere ){
    rc = callError(pCall, SQLITE_ERROR, "%s: refused: %s calls quota "
        "functions, and sqlite-quota does not run from a database schema; "
        "call it in a statement of its own, or remove that object",
        pCall->zFunc, zWhere);
  }
  sqlite3_free(zWhere);
  return rc;
}

/* What a call does, for callBegin. */
#define CALL_READ     0       /* reads the store */
#define CALL_WRITE    1       /* writes it */
#define CALL_INSPECT  2       /* reads the rows as they are (quota_integrity):
                              ** nothing is taken on trust, not even the
                              ** sweep state or the options */

/*
** Start a call (see "HOW A CALL IS FRAMED" above). eCall is CALL_READ,
** CALL_WRITE or CALL_INSPECT. Returns SQLITE_OK, or an error the caller
** passes to callEnd.
*/
static int callBegin(QuotaCall *pCall, sqlite3_context *ctx, const char *zFunc,
                     int eCall){
  const int bWrite = eCall==CALL_WRITE;
  QuotaStore *pStore = 0;
  char *zErr = 0;
  int rc;
  memset(pCall, 0, sizeof(*pCall));
  pCall->ctx = ctx;
  pCall->zFunc = zFunc;
  pCall->pConn = (QuotaConn*)sqlite3_user_data(ctx);
  pCall->db = pCall->pConn->db;
  pCall->iLastRowid = sqlite3_last_insert_rowid(pCall->db);
  if( quotaConnEnter(pCall->pConn, zFunc) ) return callNested(pCall);
  pCall->bEntered = 1;
  rc = quotaConnFindTable(pCall->pConn, "main", "quota", &pStore);
  if( rc!=SQLITE_OK ){
    callCapture(pCall, rc);
    return rc;
  }
  if( pStore==0 ){
    return callError(pCall, SQLITE_ERROR,
        "%s: no quota table (CREATE VIRTUAL TABLE quota USING quota)", zFunc);
  }
  pCall->p = pStore;
  pStore->nRef++;                 /* released by callEnd */
  rc = quotaStoreTxnBegin(pCall->p, bWrite, &pCall->txn);
  if( pCall->txn.bReading ){
    return callError(pCall, SQLITE_BUSY, "%s: cannot write from a statement "
        "that is reading the database; call %s in a statement of its own",
        zFunc, zFunc);
  }
  pCall->now = quotaNow(pCall->pConn);
  if( rc==SQLITE_OK && eCall!=CALL_INSPECT ) rc = quotaStoreRefresh(pCall->p);
  if( rc==SQLITE_ERROR ){
    /* The first statement on the store's tables failed (the read that
    ** starts a read transaction, or the refresh). The probe of
    ** quotaConnTableGone clears the connection's error: keep SQLite's
    ** reason first, in case the table is still there. */
    callCapture(pCall, rc);
    if( quotaConnTableGone(pCall->pConn, "main", "quota") ){
      return callError(pCall, SQLITE_ERROR, "%s: no quota table (CREATE "
          "VIRTUAL TABLE quota USING quota): it was dropped or renamed", zFunc);
    }
  }
  if( rc==SQLITE_OK && !pCall->txn.bClean ){
    rc = callCheckCaller(pCall, eCall==CALL_INSPECT ? 0 : pCall->p);
  }
  if( rc==SQLITE_OK && bWrite ){
    rc = quotaStoreCheckWrite(pCall->p, &zErr);
    if( zErr ){
      callError(pCall, rc, "%s: %s", zFunc, zErr);
      sqlite3_free(zErr);
    }
  }
  if( rc==SQLITE_OK && bWrite && pCall->p->opt.bClockPinned ){
    if( !pCall->pConn->bPinned ){
      rc = callError(pCall, SQLITE_ERROR, "%s: the quota table requires a "
          "pinned clock (clock=pinned): call quota_clock(time) first", zFunc);
    }else if( pCall->pConn->bPinnedNow ){
      rc = callError(pCall, SQLITE_ERROR, "%s: the quota table requires a "
          "pinned clock (clock=pinned), and quota_clock('now') pinned this "
          "host's own time: pin the same literal time on every node", zFunc);
    }
  }
  if( rc!=SQLITE_OK ) callCapture(pCall, rc);
  return rc;
}

/*
** End a call: commit or undo what callBegin opened, and on failure report
** the captured error. Returns true when the call succeeded and the caller
** should set its result.
*/
static int callEnd(QuotaCall *pCall, int rc){
  if( rc!=SQLITE_OK ) callCapture(pCall, rc);
  if( pCall->p && pCall->txn.eMode ){
    if( rc==SQLITE_OK ){
      rc = quotaStoreTxnFinish(pCall->p, &pCall->txn);
      if( rc!=SQLITE_OK ) callCapture(pCall, rc);
    }
    if( rc!=SQLITE_OK ) quotaStoreTxnAbort(pCall->p, &pCall->txn);
  }
  sqlite3_set_last_insert_rowid(pCall->db, pCall->iLastRowid);
  if( rc!=SQLITE_OK ){
    sqlite3_result_error(pCall->ctx, pCall->zErr ? pCall->zErr : "quota: error", -1);
    sqlite3_result_error_code(pCall->ctx, ALWAYS(pCall->rcErr) ? pCall->rcErr : rc);
  }
  sqlite3_free(pCall->zErr);
  pCall->zErr = 0;
  quotaStoreUnref(pCall->p);
  pCall->p = 0;
  if( pCall->bEntered ) quotaConnLeave(pCall->pConn);
  return rc==SQLITE_OK;
}

/* ---------------------------------------------------------------- arguments */

/* Set the result to an error of code rc, before any transaction was
** opened (an error out of memory when the message cannot be made). */
static void resultError(sqlite3_context *ctx, int rc, const char *zFmt, ...){
  va_list ap;
  char *z;
  va_start(ap, zFmt);
  z = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  if( z==0 ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_error(ctx, z, -1);
  sqlite3_result_error_code(ctx, rc);
  sqlite3_free(z);
}

/* Report an argument error before any transaction was opened. */
static void argError(sqlite3_context *ctx, const char *zFmt, const char *zFunc){
  resultError(ctx, SQLITE_MISMATCH, zFmt, zFunc);
}

/* Report that argument zArg of zFunc must be zRule, and what it was. */
static void argRefused(sqlite3_context *ctx, const char *zFunc, const char *zArg,
                       const char *zRule, sqlite3_value *v){
  char *zGot = quotaValueDescribe(v);
  if( zGot==0 ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  resultError(ctx, SQLITE_MISMATCH, "%s: %s must be %s, not %s", zFunc, zArg,
              zRule, zGot);
  sqlite3_free(zGot);
}

/* The rules of the arguments, as messages state them. */
#define RULE_NAME   "a non-empty text or an integer"
#define RULE_AMOUNT "a non-negative integer"
#define RULE_HOLD   "a positive integer"
#define RULE_TTL    "a positive duration (seconds, or text such as '15 minutes')"
#define RULE_EXPIRES "NULL, a positive duration (seconds, or text such as " \
  "'30 days') or a time ('2027-01-01 00:00:00')"

/* A non-negative 64-bit integer (util.c's integer rule). */
static int argAmount(sqlite3_value *v, sqlite3_int64 *pAmount){
  return quotaValueInt(v, pAmount) || *pAmount<0;
}

/* A positive 64-bit integer (util.c's integer rule). */
static int argHoldId(sqlite3_value *v, sqlite3_int64 *pId){
  return quotaValueInt(v, pId) || *pId<=0;
}

/* The key (argument 0); 0 after reporting the error. */
static const char *argKey(sqlite3_context *ctx, sqlite3_value *v,
                          const char *zFunc, char *zBuf){
  int bNul;
  const char *z = quotaValueText(v, zBuf, &bNul);
  if( bNul ){
    argError(ctx, "%s: key must not contain a NUL byte", zFunc);
  }else if( z==0 ){
    argRefused(ctx, zFunc, "key", RULE_NAME, v);
  }
  return z;
}

/* An optional request id; *pbBad after reporting the error. */
static const char *argRequest(sqlite3_context *ctx, int argc, sqlite3_value **argv,
                              int i, const char *zFunc, char *zBuf, int *pbBad){
  const char *z;
  int bNul;
  *pbBad = 0;
  if( argc<=i || sqlite3_value_type(argv[i])==SQLITE_NULL ) return 0;
  z = quotaValueText(argv[i], zBuf, &bNul);
  if( z==0 ){
    if( bNul ){
      argError(ctx, "%s: request_id must not contain a NUL byte", zFunc);
    }else{
      argRefused(ctx, zFunc, "request_id", RULE_NAME " (or NULL)", argv[i]);
    }
    *pbBad = 1;
  }
  return z;
}

/* An optional meta text; *pbBad after reporting the error. */
static sqlite3_value *argMeta(sqlite3_context *ctx, int argc, sqlite3_value **argv,
                              int i, const char *zFunc, int *pbBad){
  sqlite3_value *v;
  const char *z;
  *pbBad = 0;
  if( argc<=i || sqlite3_value_type(argv[i])==SQLITE_NULL ) return 0;
  v = argv[i];
  if( sqlite3_value_type(v)!=SQLITE_TEXT ){
    argRefused(ctx, zFunc, "meta", "text (JSON welcome) or NULL", v);
    *pbBad = 1;
    return 0;
  }
  z = (const char*)sqlite3_value_text(v);
  if( z && (int)strlen(z)!=sqlite3_value_bytes(v) ){
    argError(ctx, "%s: meta must not contain a NUL byte", zFunc);
    *pbBad = 1;
    return 0;
  }
  return v;
}

/*
** Look a request id up. *pbReplay is set when it is remembered for this key
** with the same operation and amount: *pResult then holds the original
** result (*pbNull when it was NULL). A mismatch is an error.
*/
static int requestReplay(QuotaCall *pCall, sqlite3_int64 keyId, const char *zReq,
                         int op, sqlite3_int64 amount, int *pbReplay,
                         sqlite3_int64 *pResult, int *pbNull){
  static const char *azOp[] = {"", "quota_reserve", "quota_consume", "quota_record",
                               "quota_reserve_upto", "quota_grant"};
  QuotaRequest r;
  int rc = quotaStoreRequestGet(pCall->p, keyId, zReq, pCall->now, &r);
  *pbReplay = 0;
  if( rc!=SQLITE_OK || !r.bFound ) return rc;
  if( r.op!=op ){
    return callError(pCall, SQLITE_CONSTRAINT, "%s: request_id '%s' was "
        "already used by %s", pCall->zFunc, zReq,
        (r.op>=1 && r.op<=5) ? azOp[r.op] : "another function");
  }
  if( r.amount!=amount && op==REQ_RESERVE_UPTO ){
    return callError(pCall, SQLITE_CONSTRAINT, "%s: request_id '%s' was "
        "already used with max_amount %lld", pCall->zFunc, zReq, r.amount);
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

/* ---------------------------------------------------------------- events */

/*
** Before a reserve or consume of `amount` writes: which levels of c grant
** it only because they are in shadow mode (aWould, one flag per level).
*/
static void callWouldDeny(QuotaChain *c, sqlite3_int64 amount, unsigned char *aWould){
  int i;
  for(i=0; i<c->n; i++) aWould[i] = (unsigned char)quotaEventsWouldDeny(&c->a[i], amount);
}

/*
** After a granted call wrote its counters, hold and ledger row: the events
** it caused, at every level of c (events.c), in the call's transaction.
** bCharged: it charged; aWould: from callWouldDeny, or NULL.
*/
static int callEvents(QuotaCall *pCall, QuotaChain *c, int bCharged,
                      const unsigned char *aWould, sqlite3_int64 ledgerId,
                      sqlite3_int64 holdId){
  int i, rc = SQLITE_OK;
  for(i=0; rc==SQLITE_OK && i<c->n; i++){
    rc = quotaEventsAfterCall(pCall->p, &c->a[i], pCall->now, bCharged,
                              aWould ? aWould[i] : 0, ledgerId, holdId);
  }
  return rc;
}

/* --------------------------------------------------------------- reserve */

/*
** quota_reserve(key, amount [, request_id [, ttl]]): hold `amount` at the
** key and every ancestor if all have room; the hold id, or NULL when some
** level has none. The hold counts in `reserved` until it is settled,
** released, or its ttl runs out (a token bucket also takes its units now).
**
** quota_reserve_upto(key, min_amount, max_amount [, request_id [, ttl]]):
** the same for the largest amount in [min_amount, max_amount] that fits
** at every level (the least room of the chain, at most max_amount); NULL
** when min_amount does not fit. A request id remembers max_amount: a retry
** with another max_amount is an error, and one whose min_amount the hold
** it got does not reach is an error too; otherwise the retry returns the
** same hold, whatever the room is now.
*/
static void reserveCommon(sqlite3_context *ctx, int argc, sqlite3_value **argv,
                          const char *zFunc, int bUpto){
  const int iReq = bUpto ? 3 : 2;          /* argument of the request id */
  char zKeyBuf[QUOTA_NUMBER_TEXT], zReqBuf[QUOTA_NUMBER_TEXT];
  const char *zKey, *zReq;
  sqlite3_int64 amount, maxAmount, ttl = 0, holdId = 0;
  int bTtl = 0, bFound = 0, bReplay = 0, bNull = 0, bBad, rc;
  unsigned char aWould[QUOTA_MAX_DEPTH];
  QuotaCall call;
  QuotaChain c;

  if( (zKey = argKey(ctx, argv[0], zFunc, zKeyBuf))==0 ) return;
  if( argAmount(argv[1], &amount) ){
    argRefused(ctx, zFunc, bUpto ? "min_amount" : "amount", RULE_AMOUNT, argv[1]);
    return;
  }
  maxAmount = amount;
  if( bUpto ){
    if( argAmount(argv[2], &maxAmount) ){
      argRefused(ctx, zFunc, "max_amount", RULE_AMOUNT, argv[2]); return;
    }
    if( maxAmount<amount ){
      resultError(ctx, SQLITE_MISMATCH, "%s: max_amount must be at least "
          "min_amount (%lld), not %lld", zFunc, amount, maxAmount);
      return;
    }
  }
  zReq = argRequest(ctx, argc, argv, iReq, zFunc, zReqBuf, &bBad);
  if( bBad ) return;
  if( argc>iReq+1 && sqlite3_value_type(argv[iReq+1])!=SQLITE_NULL ){
    if( quotaValueDuration(argv[iReq+1], &ttl) || ttl<=0 ){
      argRefused(ctx, zFunc, "ttl", RULE_TTL " or NULL", argv[iReq+1]); return;
    }
    bTtl = 1;
  }
  if( callBegin(&call, ctx, zFunc, CALL_WRITE) ){ callEnd(&call, call.rcErr); return; }
  rc = quotaKeyForWrite(call.p, zKey, call.now, &c.a[0], &bFound);
  if( rc==SQLITE_OK && !bFound ){
    rc = callError(&call, SQLITE_ERROR, "%s: no such quota key: '%s'", zFunc, zKey);
  }
  if( rc==SQLITE_OK && zReq ){
    rc = requestReplay(&call, c.a[0].id, zReq, bUpto ? REQ_RESERVE_UPTO : REQ_RESERVE,
                       maxAmount, &bReplay, &holdId, &bNull);
  }
  if( rc==SQLITE_OK && bReplay && bUpto ){
    /* the hold the first call got must answer this one too */
    QuotaHold h;
    QuotaKey k;
    memset(&h, 0, sizeof(h));
    rc = quotaStoreHoldGet(call.p, holdId, &h, &k, &bFound);
    /* A hold purged while its request id is still remembered (its end was
    ** dated before the request by a clock moved back, or the window was
    ** widened since): the first answer stands, as for quota_reserve. */
    if( rc==SQLITE_OK && bFound && h.amount<amount ){
      rc = callError(&call, SQLITE_CONSTRAINT, "%s: request_id '%s' was already "
          "used for a hold of %lld units, less than min_amount %lld", zFunc, zReq,
          h.amount, amount);
    }
    quotaStoreHoldClear(&h);
  }
  if( rc==SQLITE_OK && !bReplay ){
    sqlite3_int64 grant = -1;
    rc = quotaChainLoad(call.p, &c, call.now, 1);
    if( rc==SQLITE_OK ){
      if( !bUpto ){
        if( quotaChainDenies(&c, amount)<0 ) grant = amount;
      }else{
        grant = quotaChainRoom(&c);
        if( grant>maxAmount ) grant = maxAmount;
        if( grant<amount ) grant = -1;
      }
    }
    if( rc==SQLITE_OK && grant>=0 ){
      callWouldDeny(&c, grant, aWould);
      /* a hold must not overflow any level (checked before any write) */
      rc = quotaChainReserve(&c, grant);
      if( rc==SQLITE_OK ) rc = quotaChainTake(&c, grant);
      if( !bTtl ) ttl = call.p->opt.nHoldTtl;
      if( rc==SQLITE_OK ){
        rc = quotaStoreHoldInsert(call.p, c.a[0].id, grant, call.now,
            quotaAddSat(call.now, ttl), ttl==call.p->opt.nHoldTtl, zReq, &holdId);
      }
      if( rc==SQLITE_OK && zReq ){
        rc = quotaStoreRequestPut(call.p, c.a[0].id, zReq,
            bUpto ? REQ_RESERVE_UPTO : REQ_RESERVE, maxAmount, holdId, call.now);
      }
    }
    if( rc==SQLITE_OK ) rc = quotaChainSave(call.p, &c);   /* also a rollover */
    if( rc==SQLITE_OK && grant>=0 ) rc = callEvents(&call, &c, 0, aWould, 0, holdId);
  }
  if( callEnd(&call, rc) ){
    if( holdId ) sqlite3_result_int64(ctx, holdId); else sqlite3_result_null(ctx);
  }
}

/* quota_reserve(key, amount [, request_id [, ttl]]): see reserveCommon. */
static void reserveFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  reserveCommon(ctx, argc, argv, "quota_reserve", 0);
}

/* quota_reserve_upto(key, min_amount, max_amount [, request_id [, ttl]]):
** see reserveCommon. */
static void reserveUptoFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  reserveCommon(ctx, argc, argv, "quota_reserve_upto", 1);
}

/* --------------------------------------------------------- settle, release */

/* The hold `holdId` for a writing call; an error when there is none. */
static int loadHold(QuotaCall *pCall, sqlite3_int64 holdId, QuotaHold *h,
                    QuotaKey *k){
  int bFound = 0;
  int rc = quotaHoldForWrite(pCall->p, holdId, pCall->now, h, k, &bFound);
  if( rc==SQLITE_OK && !bFound ){
    rc = callError(pCall, SQLITE_ERROR, "%s: no such hold: %lld", pCall->zFunc, holdId);
  }
  return rc;
}

/*
** quota_settle(hold_id, amount [, meta]): charge the actual `amount` (less
** or more than was held) at every level and end the hold; the units
** charged. A hold that expired is still charged (the ledger row is marked
** late); a settled hold returns its first charge; a released one is an
** error; one whose key was deleted gives NULL.
*/
static void settleFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  static const char zFunc[] = "quota_settle";
  sqlite3_int64 holdId, amount, ledgerId = 0, charged = -1;
  sqlite3_value *pMeta;
  QuotaCall call;
  QuotaChain c;
  QuotaHold h;
  int rc, bBad, bOver = 0;
  memset(&h, 0, sizeof(h));

  if( argHoldId(argv[0], &holdId) ){
    argRefused(ctx, zFunc, "hold_id", RULE_HOLD, argv[0]); return;
  }
  if( argAmount(argv[1], &amount) ){
    argRefused(ctx, zFunc, "amount", RULE_AMOUNT, argv[1]); return;
  }
  pMeta = argMeta(ctx, argc, argv, 2, zFunc, &bBad);
  if( bBad ) return;
  if( callBegin(&call, ctx, zFunc, CALL_WRITE) ){ callEnd(&call, call.rcErr); return; }
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
        rc = quotaChainLoad(call.p, &c, call.now, 1);
        if( rc==SQLITE_OK ) rc = quotaChainChargeFits(&c, amount);
        if( rc==SQLITE_OK && h.state==HOLD_LIVE ){
          rc = quotaChainReserve(&c, -h.amount);
        }
        /* a live hold's units are out of the chain's buckets already */
        if( rc==SQLITE_OK ){
          rc = quotaChainCharge(call.p, &c, amount,
                                h.state==HOLD_LIVE ? h.amount : 0, call.now, &bOver);
        }
        if( rc==SQLITE_OK ) rc = quotaChainSave(call.p, &c);
        if( rc==SQLITE_OK ){
          rc = quotaStoreHoldEnd(call.p, holdId, HOLD_SETTLED, call.now, amount);
        }
        if( rc==SQLITE_OK ){
          rc = quotaStoreLedgerInsert(call.p, h.zKey, amount, call.now,
              h.pReq ? (const char*)sqlite3_value_text(h.pReq) : 0, holdId,
              pMeta, bOver, h.state==HOLD_EXPIRED, &ledgerId);
        }
        if( rc==SQLITE_OK ) rc = quotaChainDraws(call.p, &c, ledgerId, call.now);
        if( rc==SQLITE_OK ) rc = callEvents(&call, &c, 1, 0, ledgerId, holdId);
        if( rc==SQLITE_OK ) charged = amount;
        break;
      default:          /* HOLD_ORPHANED: its key was deleted */
        break;
    }
  }
  quotaStoreHoldClear(&h);
  if( callEnd(&call, rc) ){
    if( charged>=0 ) sqlite3_result_int64(ctx, charged); else sqlite3_result_null(ctx);
  }
}

/* quota_release(hold_id): end a live hold without charge; the units it
** held (0 for a hold that already ended or expired). */
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
    argRefused(ctx, zFunc, "hold_id", RULE_HOLD, argv[0]); return;
  }
  if( callBegin(&call, ctx, zFunc, CALL_WRITE) ){ callEnd(&call, call.rcErr); return; }
  rc = loadHold(&call, holdId, &h, &k);
  if( rc==SQLITE_OK && h.state==HOLD_LIVE ){
    rc = quotaAdjustReserved(call.p, h.keyId, -h.amount, call.now);
    if( rc==SQLITE_OK ) rc = quotaStoreHoldEnd(call.p, holdId, HOLD_RELEASED, call.now, -1);
    if( rc==SQLITE_OK ) released = h.amount;
  }
  quotaStoreHoldClear(&h);
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
  char zKeyBuf[QUOTA_NUMBER_TEXT], zReqBuf[QUOTA_NUMBER_TEXT];
  const char *zKey, *zReq;
  sqlite3_value *pMeta;
  sqlite3_int64 amount, ledgerId = 0;
  int bFound = 0, bReplay = 0, bNull = 0, bOver = 0, bBad, rc;
  unsigned char aWould[QUOTA_MAX_DEPTH];
  QuotaCall call;
  QuotaChain c;

  if( (zKey = argKey(ctx, argv[0], zFunc, zKeyBuf))==0 ) return;
  if( argAmount(argv[1], &amount) ){
    argRefused(ctx, zFunc, "amount", RULE_AMOUNT, argv[1]); return;
  }
  zReq = argRequest(ctx, argc, argv, 2, zFunc, zReqBuf, &bBad);
  if( bBad ) return;
  pMeta = argMeta(ctx, argc, argv, 3, zFunc, &bBad);
  if( bBad ) return;
  if( callBegin(&call, ctx, zFunc, CALL_WRITE) ){ callEnd(&call, call.rcErr); return; }
  rc = quotaKeyForWrite(call.p, zKey, call.now, &c.a[0], &bFound);
  if( rc==SQLITE_OK && !bFound && op==REQ_CONSUME ){
    rc = callError(&call, SQLITE_ERROR, "%s: no such quota key: '%s'", zFunc, zKey);
  }
  if( rc==SQLITE_OK && bFound && zReq ){
    rc = requestReplay(&call, c.a[0].id, zReq, op, amount, &bReplay,
                       &ledgerId, &bNull);
  }
  if( rc==SQLITE_OK && bFound && !bReplay ){
    int bCharge;
    rc = quotaChainLoad(call.p, &c, call.now, 1);
    bCharge = op==REQ_RECORD || quotaChainDenies(&c, amount)<0;
    if( rc==SQLITE_OK && bCharge ) rc = quotaChainChargeFits(&c, amount);
    if( rc==SQLITE_OK && bCharge ){
      /* record never denies: only consume can be granted by shadow mode */
      if( op==REQ_CONSUME ) callWouldDeny(&c, amount, aWould);
      rc = quotaChainCharge(call.p, &c, amount, 0, call.now, &bOver);
      if( rc==SQLITE_OK ) rc = quotaChainSave(call.p, &c);
      if( rc==SQLITE_OK ){
        rc = quotaStoreLedgerInsert(call.p, zKey, amount, call.now, zReq, 0,
                                    pMeta, bOver, 0, &ledgerId);
      }
      if( rc==SQLITE_OK ) rc = quotaChainDraws(call.p, &c, ledgerId, call.now);
      if( rc==SQLITE_OK && zReq ){
        rc = quotaStoreRequestPut(call.p, c.a[0].id, zReq, op, amount, ledgerId,
                                  call.now);
      }
      if( rc==SQLITE_OK ){
        rc = callEvents(&call, &c, 1, op==REQ_CONSUME ? aWould : 0, ledgerId, 0);
      }
    }else if( rc==SQLITE_OK ){
      rc = quotaChainSave(call.p, &c);     /* keep a rollover the check made */
    }
  }
  if( callEnd(&call, rc) ){
    if( ledgerId ) sqlite3_result_int64(ctx, ledgerId); else sqlite3_result_null(ctx);
  }
}

/* quota_consume(key, amount [, request_id [, meta]]): see chargeNow. */
static void consumeFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  chargeNow(ctx, argc, argv, "quota_consume", REQ_CONSUME);
}

/* quota_record(key, amount [, request_id [, meta]]): see chargeNow. */
static void recordFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  chargeNow(ctx, argc, argv, "quota_record", REQ_RECORD);
}

/* --------------------------------------------------------------- credits */

static sqlite3_int64 holdTimeShown(sqlite3_int64 t);

/*
** quota_grant(key, amount [, expires [, priority [, request_id [, meta]]]]):
** add `amount` (> 0) units to a capped lifetime or calendar key, on top of
** its period allowance; the grant id. `expires`: NULL (never), a duration
** from now (the ttl rule) or a time; `priority`: lower is drawn first (0).
** A request id makes a retry return the same grant id.
*/
static void grantFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  static const char zFunc[] = "quota_grant";
  char zKeyBuf[QUOTA_NUMBER_TEXT], zReqBuf[QUOTA_NUMBER_TEXT];
  const char *zKey, *zReq;
  sqlite3_value *pMeta;
  sqlite3_int64 amount, priority = 0, ttl = 0, expires = 0, grantId = 0;
  int bFound = 0, bReplay = 0, bNull = 0, bBad, rc;
  int eExpires = 0;                  /* 0 never, 1 a duration, 2 a time */
  QuotaCall call;
  QuotaKey k;

  if( (zKey = argKey(ctx, argv[0], zFunc, zKeyBuf))==0 ) return;
  if( quotaValueInt(argv[1], &amount) || amount<=0 ){
    argRefused(ctx, zFunc, "amount", RULE_HOLD, argv[1]); return;
  }
  if( argc>2 && sqlite3_value_type(argv[2])!=SQLITE_NULL ){
    int t = sqlite3_value_type(argv[2]);
    if( quotaValueDuration(argv[2], &ttl)==0 ){
      eExpires = 1;
    }else{
      /* a time ('now' reads as the distant past, refused below) */
      rc = t==SQLITE_TEXT ? quotaParseTime(sqlite3_context_db_handle(ctx), 0,
                                           argv[2], &expires) : SQLITE_MISMATCH;
      if( rc==SQLITE_MISMATCH ){
        argRefused(ctx, zFunc, "expires", RULE_EXPIRES, argv[2]); return;
      }else if( rc!=SQLITE_OK ){
        sqlite3_result_error_code(ctx, rc); return;
      }
      eExpires = 2;
    }
  }
  if( argc>3 && sqlite3_value_type(argv[3])!=SQLITE_NULL
   && quotaValueInt(argv[3], &priority) ){
    /* quotaValueInt takes any 64-bit integer; a negative priority is fine */
    argRefused(ctx, zFunc, "priority", "an integer or NULL", argv[3]); return;
  }
  zReq = argRequest(ctx, argc, argv, 4, zFunc, zReqBuf, &bBad);
  if( bBad ) return;
  pMeta = argMeta(ctx, argc, argv, 5, zFunc, &bBad);
  if( bBad ) return;
  if( callBegin(&call, ctx, zFunc, CALL_WRITE) ){ callEnd(&call, call.rcErr); return; }
  rc = quotaKeyForWrite(call.p, zKey, call.now, &k, &bFound);
  if( rc==SQLITE_OK && !bFound ){
    rc = callError(&call, SQLITE_ERROR, "%s: no such quota key: '%s'", zFunc, zKey);
  }
  if( rc==SQLITE_OK && !k.bCap ){
    rc = callError(&call, SQLITE_ERROR, "%s: key '%s' has no cap (cap is "
        "NULL): grants are for capped keys", zFunc, zKey);
  }
  if( rc==SQLITE_OK && !quotaCreditsApply(&k) ){
    rc = callError(&call, SQLITE_ERROR, "%s: key '%s' is a rolling window or "
        "a token bucket: grants are for lifetime and calendar keys", zFunc, zKey);
  }
  if( rc==SQLITE_OK && zReq ){
    rc = requestReplay(&call, k.id, zReq, REQ_GRANT, amount, &bReplay,
                       &grantId, &bNull);
  }
  if( rc==SQLITE_OK && !bReplay && eExpires ){
    if( eExpires==1 ) expires = holdTimeShown(quotaAddSat(call.now, ttl));
    if( expires<=call.now ){
      char zTime[QUOTA_TIME_TEXT];
      quotaCalFormat(expires, zTime);
      rc = callError(&call, SQLITE_ERROR, "%s: expires is not in the future: "
          "%s", zFunc, zTime);
    }
  }
  if( rc==SQLITE_OK && !bReplay ){
    /* a period that ended rolls over first (and may carry a rollover) */
    rc = quotaNormalize(call.p, &k, call.now, 1);
    if( rc==SQLITE_OK && !k.bConf ) rc = quotaStoreConfLoad(call.p, &k);
    if( rc==SQLITE_OK ) rc = quotaStoreKeySave(call.p, &k);
    if( rc==SQLITE_OK ){
      sqlite3_int64 open = 0;
      rc = quotaStoreGrantsOpen(call.p, &k, &open);
      if( rc==SQLITE_OK && amount>LARGEST_INT64-open ){
        rc = callError(&call, SQLITE_TOOBIG, "%s: the open grants of key '%s' "
            "hold %lld units: %lld more would overflow its 64-bit credits",
            zFunc, zKey, open, amount);
      }
    }
    if( rc==SQLITE_OK ){
      rc = quotaStoreGrantInsert(call.p, &k, amount, priority, call.now,
                                 eExpires!=0, expires, zReq, pMeta, 0, &grantId);
    }
    if( rc==SQLITE_OK && zReq ){
      rc = quotaStoreRequestPut(call.p, k.id, zReq, REQ_GRANT, amount, grantId,
                                call.now);
    }
  }
  if( callEnd(&call, rc) ) sqlite3_result_int64(ctx, grantId);
}

/*
** quota_void(grant_id): the grant's unused units stop counting; the units
** voided. 0, changing nothing, for a grant used up, expired or already
** voided (an expired grant keeps its unused units in `remaining`). An
** unknown id is an error.
*/
static void voidFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  static const char zFunc[] = "quota_void";
  sqlite3_int64 grantId, remaining = 0, expires = 0, keyId = 0, voided = 0;
  int bFound = 0, bExpires = 0, bVoided = 0, rc;
  QuotaCall call;
  (void)argc;
  if( argHoldId(argv[0], &grantId) ){
    argRefused(ctx, zFunc, "grant_id", RULE_HOLD, argv[0]); return;
  }
  if( callBegin(&call, ctx, zFunc, CALL_WRITE) ){ callEnd(&call, call.rcErr); return; }
  rc = quotaStoreGrantGet(call.p, grantId, &bFound, &remaining, &bExpires,
                          &expires, &bVoided, &keyId);
  if( rc==SQLITE_OK && !bFound ){
    rc = callError(&call, SQLITE_ERROR, "%s: no such grant: %lld", zFunc, grantId);
  }
  /* used up, voided or expired: nothing to take away, nothing changes */
  if( rc==SQLITE_OK && remaining>0 && !bVoided && !(bExpires && expires<=call.now) ){
    rc = quotaStoreGrantVoid(call.p, grantId);
    if( rc==SQLITE_OK && keyId ){
      QuotaKey k;
      int bKey = 0;
      rc = quotaKeyById(call.p, keyId, &k, &bKey);
      if( rc==SQLITE_OK && bKey ) rc = quotaStoreConfLoad(call.p, &k);
      if( rc==SQLITE_OK && bKey ) rc = quotaStoreGrantsCount(call.p, &k, -1);
    }
    if( rc==SQLITE_OK ) voided = remaining;
  }
  if( callEnd(&call, rc) ) sqlite3_result_int64(ctx, voided);
}

/* ---------------------------------------------------------- check, status */

/* Load key zKey and its chain as readers see them now. */
static int loadForRead(QuotaCall *pCall, const char *zKey, QuotaChain *c){
  int bFound = 0;
  int rc = quotaKeyByName(pCall->p, zKey, &c->a[0], &bFound);
  if( rc==SQLITE_OK && !bFound ){
    rc = callError(pCall, SQLITE_ERROR, "%s: no such quota key: '%s'",
                   pCall->zFunc, zKey);
  }
  if( rc==SQLITE_OK ) rc = quotaChainLoad(pCall->p, c, pCall->now, 0);
  return rc;
}

/* The arguments of quota_check and quota_status: key [, amount]. */
static int argCheck(sqlite3_context *ctx, int argc, sqlite3_value **argv,
                    const char *zFunc, char *zKeyBuf, const char **pzKey,
                    sqlite3_int64 *pAmount){
  *pAmount = 1;
  if( (*pzKey = argKey(ctx, argv[0], zFunc, zKeyBuf))==0 ) return 1;
  if( argc>1 && argAmount(argv[1], pAmount) ){
    argRefused(ctx, zFunc, "amount", RULE_AMOUNT, argv[1]); return 1;
  }
  return 0;
}

/* quota_check(key [, amount]): 1 when `amount` (default 1) would be
** granted now at every level, else 0. Changes nothing. */
static void checkFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  static const char zFunc[] = "quota_check";
  char zKeyBuf[QUOTA_NUMBER_TEXT];
  const char *zKey;
  sqlite3_int64 amount;
  QuotaCall call;
  QuotaChain c;
  int rc;
  if( argCheck(ctx, argc, argv, zFunc, zKeyBuf, &zKey, &amount) ) return;
  if( callBegin(&call, ctx, zFunc, CALL_READ) ){ callEnd(&call, call.rcErr); return; }
  rc = loadForRead(&call, zKey, &c);
  if( callEnd(&call, rc) ) sqlite3_result_int(ctx, quotaChainDenies(&c, amount)<0);
}

/*
** The JSON quota_status and quota_hold return, written into one allocation
** sized up front: quota_status is a read on the request path, and printf
** and a buffer that regrows cost it more than its reads. The room is the
** fixed text (JSON_FIXED bytes: the keys, literals, numbers of at most 20
** characters and times of the function) plus each string escaped at worst
** (6 bytes a byte, \u00XX) with its quotes.
*/
#define JSON_FIXED 512
typedef struct JsonOut JsonOut;
struct JsonOut {
  char *z;                    /* sqlite3_malloc'ed; NULL when out of memory */
  sqlite3_int64 n;            /* bytes written */
};

static void jsonOpen(JsonOut *p, const char *z1, const char *z2){
  sqlite3_int64 nRoom = JSON_FIXED;
  if( z1 ) nRoom += 6*(sqlite3_int64)strlen(z1) + 2;
  if( z2 ) nRoom += 6*(sqlite3_int64)strlen(z2) + 2;
  p->z = sqlite3_malloc64((sqlite3_uint64)nRoom);
  p->n = 0;
}
static void jsonLit(JsonOut *p, const char *z){
  size_t n = strlen(z);
  memcpy(p->z + p->n, z, n);
  p->n += (sqlite3_int64)n;
}
static void jsonInt(JsonOut *p, sqlite3_int64 v){
  char zBuf[24];
  int i = (int)sizeof(zBuf);
  sqlite3_uint64 u = v<0 ? (sqlite3_uint64)0 - (sqlite3_uint64)v : (sqlite3_uint64)v;
  do{ zBuf[--i] = (char)('0' + u%10); u /= 10; }while( u );
  if( v<0 ) zBuf[--i] = '-';
  memcpy(p->z + p->n, zBuf + i, sizeof(zBuf) - (size_t)i);
  p->n += (sqlite3_int64)(sizeof(zBuf) - (size_t)i);
}
/* v as a JSON number, or null. */
static void jsonIntOrNull(JsonOut *p, int bNull, sqlite3_int64 v){
  if( bNull ) jsonLit(p, "null"); else jsonInt(p, v);
}
/* z as a JSON string: quotes, backslashes and controls escaped. */
static void jsonStr(JsonOut *p, const char *z){
  static const char zHex[] = "0123456789abcdef";
  char *zOut = p->z + p->n;
  *zOut++ = '"';
  for(; *z; z++){
    unsigned char ch = (unsigned char)*z;
    if( ch=='"' || ch=='\\' ){
      *zOut++ = '\\';
      *zOut++ = (char)ch;
    }else if( ch<0x20 ){
      memcpy(zOut, "\\u00", 4);
      zOut[4] = zHex[ch>>4];
      zOut[5] = zHex[ch&15];
      zOut += 6;
    }else{
      *zOut++ = (char)ch;
    }
  }
  *zOut++ = '"';
  p->n = zOut - p->z;
}
/* The text, ready for sqlite3_result_text(.., sqlite3_free). */
static char *jsonClose(JsonOut *p){
  p->z[p->n] = 0;
  return p->z;
}

/*
** The level whose numbers quota_status reports. When some level denies:
** the one that frees room last (a balance that never resets counts as
** never), the nearest to the key on a tie; a level in shadow mode never
** denies. Otherwise the capped level with the least room, shadow mode or
** not, the nearest on a tie; the key itself when none is capped.
*/
static int statusLevel(QuotaCall *pCall, QuotaChain *c, sqlite3_int64 amount,
                       int *piLevel, sqlite3_int64 *pRetry){
  int i, iBest = -1, rc = SQLITE_OK;
  sqlite3_int64 best = 0;
  for(i=0; i<c->n; i++){
    sqlite3_int64 secs;
    if( c->a[i].bShadow || quotaRoom(&c->a[i])>=amount ) continue;
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
      if( c->a[i].bCap && (iBest<0 || quotaRoom(&c->a[i])<quotaRoom(&c->a[iBest])) ){
        iBest = i;
      }
    }
    if( iBest<0 ) iBest = 0;
    *pRetry = -1;
  }
  *piLevel = iBest;
  return rc;
}

/* quota_status(key [, amount]): the JSON an HTTP 429 response needs. */
static void statusFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  static const char zFunc[] = "quota_status";
  char zKeyBuf[QUOTA_NUMBER_TEXT];
  const char *zKey;
  sqlite3_int64 amount, retry = -1;
  QuotaCall call;
  QuotaChain c;
  QuotaKey *k;
  int rc, iLevel = 0, bAllowed;
  char *zLevel = 0;
  char *zJson = 0;
  if( argCheck(ctx, argc, argv, zFunc, zKeyBuf, &zKey, &amount) ) return;
  if( callBegin(&call, ctx, zFunc, CALL_READ) ){ callEnd(&call, call.rcErr); return; }
  rc = loadForRead(&call, zKey, &c);
  if( rc==SQLITE_OK ) rc = statusLevel(&call, &c, amount, &iLevel, &retry);
  /* the key itself was loaded by this very name: read only a parent's */
  if( rc==SQLITE_OK && iLevel>0 ) rc = quotaStoreKeyName(call.p, c.a[iLevel].id, &zLevel);
  if( rc==SQLITE_OK ){
    const char *zLimited = iLevel>0 ? zLevel : zKey;
    JsonOut j;
    char zTime[QUOTA_TIME_TEXT];
    k = &c.a[iLevel];
    bAllowed = quotaChainDenies(&c, amount)<0;
    jsonOpen(&j, zKey, zLimited);
    if( j.z==0 ){
      rc = SQLITE_NOMEM;
    }else{
      jsonLit(&j, "{\"key\":");
      jsonStr(&j, zKey);
      jsonLit(&j, bAllowed ? ",\"allowed\":true,\"code\":null" : ",\"allowed\":false,\"code\":");
      if( !bAllowed ) jsonStr(&j, quotaKind(k->eKind)->zDenyCode);
      jsonLit(&j, ",\"cap\":");
      jsonIntOrNull(&j, !k->bCap, k->cap);
      jsonLit(&j, ",\"used\":");
      jsonInt(&j, k->used);
      jsonLit(&j, ",\"reserved\":");
      jsonInt(&j, k->reserved);
      jsonLit(&j, ",\"remaining\":");
      jsonIntOrNull(&j, !k->bCap, quotaRoom(k));
      jsonLit(&j, ",\"resets_at\":");
      if( k->bPeriod ){
        quotaCalFormat(k->pend, zTime);
        jsonStr(&j, zTime);
      }else{
        jsonLit(&j, "null");
      }
      jsonLit(&j, ",\"retry_after\":");
      jsonIntOrNull(&j, retry<0, retry);
      jsonLit(&j, ",\"limited_by\":");
      jsonStr(&j, zLimited);
      jsonLit(&j, ",\"credits\":");
      jsonInt(&j, k->credits);
      /* what enforcing every level would do: differs from allowed only
      ** where a level in shadow mode lets `amount` through */
      jsonLit(&j, quotaChainShort(&c, amount) ? ",\"would_deny\":true}" : ",\"would_deny\":false}");
      zJson = jsonClose(&j);
    }
  }
  sqlite3_free(zLevel);
  if( callEnd(&call, rc) ){
    sqlite3_result_text(ctx, zJson, -1, sqlite3_free);
  }else{
    sqlite3_free(zJson);
  }
}

/* ---------------------------------------------------------- holds, leases */

/* The time of a hold as its JSON and quota_extend show it: a hold whose ttl
** reaches past the last second of year 9999 ends there. */
static sqlite3_int64 holdTimeShown(sqlite3_int64 t){
  return t>QUOTA_TIME_MAX ? QUOTA_TIME_MAX : t;
}

/*
** quota_hold(hold_id): the hold as JSON, {"id","key","amount","state",
** "charged","created","expires_at"}, or NULL for a hold that was never
** taken or was purged. Changes nothing. "state" is "live", "settled",
** "released" or "expired" as of the connection's clock (a hold whose ttl ran
** out reads expired before any sweep marked it); a hold whose key was
** deleted reads "released", its "key" null. "charged" is what settle
** charged (null otherwise); "created" is when it was reserved (null for a
** hold taken before the store was upgraded to record it).
*/
static void holdFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  static const char zFunc[] = "quota_hold";
  sqlite3_int64 holdId, created = 0;
  int rc, bFound = 0, bCreated = 0;
  char *zJson = 0;
  QuotaCall call;
  QuotaHold h;
  QuotaKey k;
  (void)argc;
  memset(&h, 0, sizeof(h));
  if( argHoldId(argv[0], &holdId) ){
    argRefused(ctx, zFunc, "hold_id", RULE_HOLD, argv[0]); return;
  }
  if( callBegin(&call, ctx, zFunc, CALL_READ) ){ callEnd(&call, call.rcErr); return; }
  rc = quotaStoreHoldGet(call.p, holdId, &h, &k, &bFound);
  if( rc==SQLITE_OK && bFound ){
    rc = quotaStoreHoldCreated(call.p, holdId, &bCreated, &created);
  }
  if( rc==SQLITE_OK && bFound ){
    JsonOut j;
    char zTime[QUOTA_TIME_TEXT];
    const char *zState;
    switch( h.state ){
      case HOLD_LIVE:    zState = call.now<h.expires ? "live" : "expired"; break;
      case HOLD_SETTLED: zState = "settled"; break;
      case HOLD_EXPIRED: zState = "expired"; break;
      default:           zState = "released"; break;   /* or its key deleted */
    }
    jsonOpen(&j, h.zKey, 0);
    if( j.z==0 ){
      rc = SQLITE_NOMEM;
    }else{
      jsonLit(&j, "{\"id\":");
      jsonInt(&j, holdId);
      jsonLit(&j, ",\"key\":");
      if( h.zKey ) jsonStr(&j, h.zKey); else jsonLit(&j, "null");
      jsonLit(&j, ",\"amount\":");
      jsonInt(&j, h.amount);
      jsonLit(&j, ",\"state\":");
      jsonStr(&j, zState);
      jsonLit(&j, ",\"charged\":");
      jsonIntOrNull(&j, h.state!=HOLD_SETTLED, h.charged);
      jsonLit(&j, ",\"created\":");
      if( bCreated ){
        quotaCalFormat(holdTimeShown(created), zTime);
        jsonStr(&j, zTime);
      }else{
        jsonLit(&j, "null");
      }
      quotaCalFormat(holdTimeShown(h.expires), zTime);
      jsonLit(&j, ",\"expires_at\":");
      jsonStr(&j, zTime);
      jsonLit(&j, "}");
      zJson = jsonClose(&j);
    }
  }
  quotaStoreHoldClear(&h);
  if( callEnd(&call, rc) ){
    if( zJson ){
      sqlite3_result_text(ctx, zJson, -1, sqlite3_free);
      zJson = 0;
    }else{
      sqlite3_result_null(ctx);
    }
  }
  sqlite3_free(zJson);
}

/*
** quota_extend(hold_id, ttl): a lease's heartbeat. A live hold now expires
** `ttl` after the call's clock (NULL: the table's hold_ttl), which may be
** sooner than before; returns the new expiry as 'YYYY-MM-DD HH:MM:SS'.
** NULL for a hold that has ended: settled, released, its key deleted, or
** expired (the call sweeps first, so a hold whose ttl ran out is never
** revived). An unknown hold is an error, as for settle and release.
*/
static void extendFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  static const char zFunc[] = "quota_extend";
  sqlite3_int64 holdId, ttl = 0, expires = 0;
  int rc, bTtl = 0;
  QuotaCall call;
  QuotaHold h;
  QuotaKey k;
  (void)argc;
  memset(&h, 0, sizeof(h));
  if( argHoldId(argv[0], &holdId) ){
    argRefused(ctx, zFunc, "hold_id", RULE_HOLD, argv[0]); return;
  }
  if( sqlite3_value_type(argv[1])!=SQLITE_NULL ){
    if( quotaValueDuration(argv[1], &ttl) || ttl<=0 ){
      argRefused(ctx, zFunc, "ttl", RULE_TTL " or NULL", argv[1]); return;
    }
    bTtl = 1;
  }
  if( callBegin(&call, ctx, zFunc, CALL_WRITE) ){ callEnd(&call, call.rcErr); return; }
  rc = loadHold(&call, holdId, &h, &k);
  /* Swept to now: a live hold expires after now (a hand-edited one that
  ** does not has ended all the same). */
  if( rc==SQLITE_OK && h.state==HOLD_LIVE && h.expires>call.now ){
    if( !bTtl ) ttl = call.p->opt.nHoldTtl;
    expires = holdTimeShown(quotaAddSat(call.now, ttl));
    rc = quotaStoreHoldExtend(call.p, holdId, h.expires, expires);
  }
  quotaStoreHoldClear(&h);
  if( callEnd(&call, rc) ){
    if( expires ) quotaResultTime(ctx, expires); else sqlite3_result_null(ctx);
  }
}

/* ----------------------------------------------------- upkeep, options */

/* quota_purge(): one bounded step of cleaning (store.c, quotaStorePurge). */
static void purgeFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  QuotaCall call;
  sqlite3_int64 nRemoved = 0;
  int rc;
  (void)argc; (void)argv;
  if( callBegin(&call, ctx, "quota_purge", CALL_WRITE) ){ callEnd(&call, call.rcErr); return; }
  rc = quotaSweep(call.p, call.now);
  if( rc==SQLITE_OK ) rc = quotaStorePurge(call.p, call.now, &nRemoved);
  if( callEnd(&call, rc) ) sqlite3_result_int64(ctx, nRemoved);
}

/*
** quota_integrity(): 'ok', or the first disagreement between the counters
** and the rows they summarise (integrity.c; xIntegrity does the same for
** PRAGMA integrity_check on SQLite 3.44 and later).
*/
static void integrityFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  QuotaCall call;
  char *zProblem = 0;
  int rc;
  (void)argc; (void)argv;
  if( callBegin(&call, ctx, "quota_integrity", CALL_INSPECT) ){
    callEnd(&call, call.rcErr);
    return;
  }
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

/* Set the result to option iOpt's value as quota_configure shows it. */
static void resultOption(sqlite3_context *ctx, int iOpt, sqlite3_int64 v){
  if( iOpt==QUOTA_OPT_CLOCK ){
    sqlite3_result_text(ctx, v ? "pinned" : "system", -1, SQLITE_STATIC);
  }else if( iOpt==QUOTA_OPT_RETENTION && v<0 ){
    sqlite3_result_text(ctx, "forever", -1, SQLITE_STATIC);
  }else{
    sqlite3_result_int64(ctx, v);
  }
}

/*
** quota_configure(option [, value]): read or change an option of the table
** in place (keys, holds, ledger and every id sequence stay as they are).
** Every connection sees a change at its next call.
*/
static void configureFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  static const char zFunc[] = "quota_configure";
  const char *zOpt = (const char*)sqlite3_value_text(argv[0]);
  sqlite3_int64 v = 0;
  QuotaCall call;
  int i, rc;
  for(i=0; zOpt && sqlite3_value_type(argv[0])==SQLITE_TEXT && i<QUOTA_OPT_COUNT; i++){
    if( sqlite3_stricmp(zOpt, quotaOptionName[i])==0 ) break;
  }
  if( zOpt==0 || sqlite3_value_type(argv[0])!=SQLITE_TEXT || i>=QUOTA_OPT_COUNT ){
    resultError(ctx, SQLITE_ERROR, "%s: unknown option %Q (hold_ttl, idempotency, "
        "retention, purge_limit, clock)", zFunc, zOpt);
    return;
  }
  if( argc>1 && quotaOptionParse(i, argv[1], 0, &v) ){
    resultError(ctx, SQLITE_MISMATCH, "%s: option %s must be %s: %Q", zFunc,
        quotaOptionName[i], quotaOptionExpect(i), sqlite3_value_text(argv[1]));
    return;
  }
  if( callBegin(&call, ctx, zFunc, argc>1 ? CALL_WRITE : CALL_READ) ){ callEnd(&call, call.rcErr); return; }
  rc = argc>1 ? quotaStoreConfigure(call.p, i, v) : SQLITE_OK;
  if( rc==SQLITE_OK ) v = *quotaOptionSlot(&call.p->opt, i);
  if( callEnd(&call, rc) ) resultOption(ctx, i, v);
}

/* ------------------------------------------------------------- time, misc */

/*
** The frame of a function that reads or sets only the connection's own
** state (quota_clock, quota_debug): the guard, and, when some statement of
** the caller runs, the check of who called. Returns 0 to go on (then
** simpleEnd), 1 after reporting the error.
*/
static int simpleBegin(QuotaCall *pCall, sqlite3_context *ctx, const char *zFunc){
  sqlite3 *db;
  int rc = SQLITE_OK;
  memset(pCall, 0, sizeof(*pCall));
  pCall->ctx = ctx;
  pCall->zFunc = zFunc;
  pCall->pConn = (QuotaConn*)sqlite3_user_data(ctx);
  db = pCall->db = pCall->pConn->db;
  if( quotaConnEnter(pCall->pConn, zFunc) ){
    rc = callNested(pCall);
  }else{
    pCall->bEntered = 1;
    if( !sqlite3_get_autocommit(db) || sqlite3_txn_state(db, 0)!=SQLITE_TXN_NONE ){
      rc = callCheckCaller(pCall, 0);
    }
  }
  if( rc!=SQLITE_OK ){
    callCapture(pCall, rc);
    sqlite3_result_error(ctx, pCall->zErr ? pCall->zErr : "quota: error", -1);
    sqlite3_result_error_code(ctx, pCall->rcErr);
    sqlite3_free(pCall->zErr);
    if( pCall->bEntered ) quotaConnLeave(pCall->pConn);
    return 1;
  }
  return 0;
}

/* End what simpleBegin started. */
static void simpleEnd(QuotaCall *pCall){
  quotaConnLeave(pCall->pConn);
}


/* quota_clock([time]): pin this connection's clock to `time`, unpin it
** (NULL), or read it; returns the time the functions use now. */
static void clockFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  QuotaCall call;
  QuotaConn *pConn;
  if( simpleBegin(&call, ctx, "quota_clock") ) return;
  pConn = call.pConn;
  if( argc==1 ){
    if( sqlite3_value_type(argv[0])==SQLITE_NULL ){
      pConn->bPinned = 0;
      pConn->bPinnedNow = 0;
    }else{
      sqlite3_int64 t;
      int eType = sqlite3_value_type(argv[0]);
      int rc = quotaParseTime(pConn->db, quotaNow(pConn), argv[0], &t);
      if( rc==SQLITE_MISMATCH ){
        resultError(ctx, SQLITE_ERROR, "quota_clock: not a time: '%s'%s",
            (const char*)sqlite3_value_text(argv[0]),
            (eType==SQLITE_INTEGER || eType==SQLITE_FLOAT)
              ? " (a number is read as a Julian day; for Unix seconds write"
                " datetime(N, 'unixepoch'))" : "");
        simpleEnd(&call);
        return;
      }else if( rc!=SQLITE_OK ){
        sqlite3_result_error_code(ctx, rc);
        simpleEnd(&call);
        return;
      }
      pConn->bPinned = 1;
      pConn->iPinned = t;
      /* 'now' pins whatever this host's clock says: not what clock=pinned
      ** asks for (the same time on every node that replays the call) */
      pConn->bPinnedNow = eType==SQLITE_TEXT
          && sqlite3_stricmp((const char*)sqlite3_value_text(argv[0]), "now")==0;
    }
  }
  quotaResultTime(ctx, quotaNow(pConn));
  simpleEnd(&call);
}

/* quota_busy_timeout(ms): wait up to ms milliseconds for another
** connection's lock, in short steps (conn.c); 0 removes any busy handler.
** Replaces the connection's busy handler or busy_timeout; returns ms. */
static void busyTimeoutFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  static const char zFunc[] = "quota_busy_timeout";
  QuotaCall call;
  sqlite3_int64 ms;
  int rc;
  (void)argc;
  if( quotaValueInt(argv[0], &ms) || ms<0 || ms>0x7fffffff ){
    argRefused(ctx, zFunc, "ms", "an integer from 0 to 2147483647", argv[0]);
    return;
  }
  if( simpleBegin(&call, ctx, zFunc) ) return;
  rc = quotaConnBusyTimeout(call.pConn, (int)ms);
  if( rc==SQLITE_OK ) sqlite3_result_int64(ctx, ms);
  else sqlite3_result_error_code(ctx, rc);
  simpleEnd(&call);
}

/* quota_version(): the extension's version, SQLITE_QUOTA_VERSION. */
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
  QuotaCall call;
  char *z;
  (void)argc; (void)argv;
  if( simpleBegin(&call, ctx, "quota_debug") ) return;
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
  if( z==0 ){
    sqlite3_result_error_nomem(ctx);
  }else{
    sqlite3_result_text(ctx, z, -1, sqlite3_free);
  }
  simpleEnd(&call);
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
    {"quota_reserve_upto", 3, 0, reserveUptoFunc},
    {"quota_reserve_upto", 4, 0, reserveUptoFunc},
    {"quota_reserve_upto", 5, 0, reserveUptoFunc},
    {"quota_hold", 1, 0, holdFunc},
    {"quota_extend", 2, 0, extendFunc},
    {"quota_settle", 2, 0, settleFunc},
    {"quota_settle", 3, 0, settleFunc},
    {"quota_release", 1, 0, releaseFunc},
    {"quota_consume", 2, 0, consumeFunc},
    {"quota_consume", 3, 0, consumeFunc},
    {"quota_consume", 4, 0, consumeFunc},
    {"quota_record", 2, 0, recordFunc},
    {"quota_record", 3, 0, recordFunc},
    {"quota_record", 4, 0, recordFunc},
    {"quota_grant", 2, 0, grantFunc},
    {"quota_grant", 3, 0, grantFunc},
    {"quota_grant", 4, 0, grantFunc},
    {"quota_grant", 5, 0, grantFunc},
    {"quota_grant", 6, 0, grantFunc},
    {"quota_void", 1, 0, voidFunc},
    {"quota_check", 1, 0, checkFunc},
    {"quota_check", 2, 0, checkFunc},
    {"quota_status", 1, 0, statusFunc},
    {"quota_status", 2, 0, statusFunc},
    {"quota_purge", 0, 0, purgeFunc},
    {"quota_integrity", 0, 0, integrityFunc},
    {"quota_configure", 1, 0, configureFunc},
    {"quota_configure", 2, 0, configureFunc},
    {"quota_clock", 0, 0, clockFunc},
    {"quota_clock", 1, 0, clockFunc},
    {"quota_busy_timeout", 1, 0, busyTimeoutFunc},
    {"quota_version", 0, 1, versionFunc},
    {"quota_debug", 0, 0, debugFunc},
    {"first_of_next_month", -1, 1, firstOfNextMonthFunc},
  };
  int rc = SQLITE_OK;
  int i;
  for(i=0; rc==SQLITE_OK && i<QUOTA_ARRAYSIZE(aFunc); i++){
    /* a function a schema could call must be one schema.c watches for */
    if( NEVER(!aFunc[i].bPure && !quotaSchemaWatches(aFunc[i].zName)) ){
      return SQLITE_INTERNAL;
    }
    pConn->nRef++;
    rc = sqlite3_create_function_v2(db, aFunc[i].zName, aFunc[i].nArg,
        aFunc[i].bPure ? fPure : fWrite, pConn, aFunc[i].xFunc, 0, 0,
        quotaConnUnref);
    /* On failure SQLite has already called the destructor. */
  }
  return rc;
}
