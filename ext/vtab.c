/*
** vtab.c: the `quota` virtual table, one row per key.
**
**   CREATE VIRTUAL TABLE quota USING quota;
**   CREATE VIRTUAL TABLE quota USING quota(hold_ttl='5 minutes',
**       idempotency='24 hours', retention='90 days', purge_limit=10000);
**
**   INSERT INTO quota(key, cap, period) VALUES ('sk-live-1', 100000, 'month');
**   UPDATE quota SET cap = 200000 WHERE key = 'sk-live-1';
**   UPDATE quota SET used = 0 WHERE key = 'sk-live-1';        -- reset usage
**   SELECT key, used, reserved, remaining, resets_at FROM quota;
**   UPDATE quota SET alert = '80%, 100%', enforce = 'shadow' WHERE key = 'k';
**   DELETE FROM quota WHERE key = 'sk-live-1';
**
** Columns: key, cap, period, anchor, parent, retention, used, reserved,
** remaining, period_start, resets_at, retry_after, note, alert, enforce,
** rollover, credits. reserved to retry_after and credits are computed and
** read-only; key can only be inserted. alert, enforce and rollover live in
** quota_keyconf (events.c; credits).
** Reads show every value as of the connection's clock (quota_clock): a
** period that ended reads as rolled over, an expired hold as released, even
** before a writing call has stored that.
**
** The options given here are the store's first options; quota_configure
** changes them later, in the store (store.c). The table is
** SQLITE_VTAB_DIRECTONLY: no trigger or view of a database schema can read
** or write it, only the application's own SQL (and TEMP triggers).
**
** The data lives in shadow tables (store.c), created by CREATE VIRTUAL TABLE
** and dropped by DROP TABLE. xConnect adds the table to the connection's
** list, where the functions find main.quota (conn.c).
*/
#include "account.h"
#include "conn.h"
#include "events.h"
#include "integrity.h"
#include "vtab.h"
#include <stdarg.h>
#include <string.h>

/* Column numbers of the declared table. */
#define QCOL_KEY          0
#define QCOL_CAP          1
#define QCOL_PERIOD       2
#define QCOL_ANCHOR       3
#define QCOL_PARENT       4
#define QCOL_RETENTION    5
#define QCOL_USED         6
#define QCOL_RESERVED     7
#define QCOL_REMAINING    8
#define QCOL_PERIOD_START 9
#define QCOL_RESETS_AT    10
#define QCOL_RETRY_AFTER  11
#define QCOL_NOTE         12
#define QCOL_ALERT        13
#define QCOL_ENFORCE      14
#define QCOL_ROLLOVER     15
#define QCOL_CREDITS      16
#define QCOL_COUNT        17

static const char *const azColName[QCOL_COUNT] = {
  "key", "cap", "period", "anchor", "parent", "retention", "used", "reserved",
  "remaining", "period_start", "resets_at", "retry_after", "note",
  "alert", "enforce", "rollover", "credits"
};

/* Plans chosen by xBestIndex. */
#define QPLAN_SCAN   0
#define QPLAN_KEY    1
#define QPLAN_ROWID  2

/* Columns of a cursor's statement after the key's own (quotaStoreScan). */
#define QCUR_KEY       11
#define QCUR_PERIOD    12
#define QCUR_PARENT    13
#define QCUR_RETENTION 14
#define QCUR_NOTE      15
#define QCUR_ALERT     16
#define QCUR_ENFORCE   17
#define QCUR_ROLLOVER  18
#define QCUR_GRANTS    19

typedef struct QuotaTab QuotaTab;
struct QuotaTab {
  sqlite3_vtab base;          /* Base class - must be first */
  QuotaConn *pConn;           /* the connection's shared state */
  QuotaStore *pStore;         /* the shadow tables (one reference) */
};

typedef struct QuotaCursor QuotaCursor;
struct QuotaCursor {
  sqlite3_vtab_cursor base;   /* Base class - must be first */
  sqlite3_stmt *pStmt;        /* over %_keys, prepared by xFilter */
  int bEof;
  QuotaKey k;                 /* the current row, effective at `now` */
  sqlite3_int64 now;          /* the clock when the scan started */
  int bComputed;              /* k holds effective values for this row */
};

/* Set the table's error message, "NAME: ..." */
static int vtabError(QuotaTab *p, int rc, const char *zFmt, ...){
  va_list ap;
  char *z;
  va_start(ap, zFmt);
  z = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  sqlite3_free(p->base.zErrMsg);
  p->base.zErrMsg = sqlite3_mprintf("%s: %z", p->pStore->zName, z);
  return p->base.zErrMsg ? rc : SQLITE_NOMEM;
}

/* Refuse column zCol's value v: it must be zRule (and say what it was). */
static int vtabRefused(QuotaTab *p, const char *zCol, const char *zRule,
                       sqlite3_value *v){
  char *zGot = quotaValueDescribe(v);
  int rc;
  if( zGot==0 ) return SQLITE_NOMEM;
  rc = vtabError(p, SQLITE_CONSTRAINT, "%s must be %s, not %s", zCol, zRule, zGot);
  sqlite3_free(zGot);
  return rc;
}

/*
** Return rc, after giving the table an error message when it has none: an
** error of a statement on the shadow tables says what it was (a refusal of
** ours from a trigger keeps its own words); without a message SQLite
** would report only "SQL logic error".
*/
static int vtabStatementError(QuotaTab *p, int rc){
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM && p->base.zErrMsg==0 ){
    const char *zMsg = sqlite3_errmsg(p->pStore->db);
    if( rc==SQLITE_CORRUPT_VTAB ){
      vtabError(p, rc, "the quota store is damaged: a shadow table holds "
                "values sqlite-quota never writes");
    }else if( strncmp(zMsg, "quota", 5)==0 ){
      p->base.zErrMsg = sqlite3_mprintf("%s", zMsg);
    }else{
      vtabError(p, rc, "%s", zMsg);
    }
  }
  return rc;
}

/* The refusal of a read or write made from inside a quota call. */
static int vtabNested(QuotaTab *p){
  return vtabError(p, SQLITE_ERROR, "the quota table cannot be read or written "
      "inside a quota call (%s is running)", p->pConn->zActive);
}

/* ------------------------------------------------------------- options */

/* Parse one "name=value" argument of CREATE VIRTUAL TABLE into *pOpt;
** *pmSeen has a bit for each option already given (twice is an error). */
static int vtabOption(const char *zTable, const char *zArg, QuotaOptions *pOpt,
                      unsigned int *pmSeen, char **pzErr){
  const char *zEq = strchr(zArg, '=');
  char zVal[64];
  int nName, nVal, i;
  while( NEVER(*zArg==' ') ) zArg++;
  if( zEq==0 ){
    *pzErr = sqlite3_mprintf("%s: option must be name=value: %s", zTable, zArg);
    return SQLITE_ERROR;
  }
  nName = (int)(zEq-zArg);
  while( nName>0 && zArg[nName-1]==' ' ) nName--;
  zEq++;
  while( *zEq==' ' ) zEq++;
  nVal = (int)strlen(zEq);
  while( nVal>0 && NEVER(zEq[nVal-1]==' ') ) nVal--;
  if( nVal>=2 && (zEq[0]=='\'' || zEq[0]=='"') && zEq[nVal-1]==zEq[0] ){
    zEq++;
    nVal -= 2;
  }
  if( nVal>=(int)sizeof(zVal) ){
    *pzErr = sqlite3_mprintf("%s: option value too long: %.*s", zTable, nName, zArg);
    return SQLITE_ERROR;
  }
  memcpy(zVal, zEq, nVal);
  zVal[nVal] = 0;
  for(i=0; i<QUOTA_OPT_COUNT; i++){
    if( (int)strlen(quotaOptionName[i])==nName
     && sqlite3_strnicmp(zArg, quotaOptionName[i], nName)==0 ) break;
  }
  if( i>=QUOTA_OPT_COUNT ){
    *pzErr = sqlite3_mprintf("%s: unknown option '%.*s' (hold_ttl, idempotency, "
        "retention, purge_limit, clock)", zTable, nName, zArg);
    return SQLITE_ERROR;
  }
  if( *pmSeen & (1u<<i) ){
    *pzErr = sqlite3_mprintf("%s: option %s is given twice", zTable,
                             quotaOptionName[i]);
    return SQLITE_ERROR;
  }
  *pmSeen |= 1u<<i;
  if( quotaOptionParse(i, 0, zVal, quotaOptionSlot(pOpt, i)) ){
    *pzErr = sqlite3_mprintf("%s: option %s must be %s: '%s'", zTable,
        quotaOptionName[i], quotaOptionExpect(i), zVal);
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

/* ----------------------------------------------------- create, connect */

static int vtabInit(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                    sqlite3_vtab **ppVtab, char **pzErr, int bCreate){
  QuotaConn *pConn = (QuotaConn*)pAux;
  QuotaOptions opt;
  QuotaTab *p;
  unsigned int mSeen = 0;
  int rc = SQLITE_OK, i;
  *ppVtab = 0;
  quotaStoreDefaultOptions(&opt);
  for(i=3; rc==SQLITE_OK && i<argc; i++){
    rc = vtabOption(argv[2], argv[i], &opt, &mSeen, pzErr);
  }
  if( rc==SQLITE_OK ){
    /* INSERT OR IGNORE skips a refused row; see vtabInsert for REPLACE. */
    rc = sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
  }
  if( rc==SQLITE_OK ){
    /* Only the application's own SQL may read or write the table: never a
    ** trigger or view of a database schema. */
    rc = sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_declare_vtab(db, "CREATE TABLE x(key TEXT, cap INTEGER,"
        " period TEXT, anchor TEXT, parent TEXT, retention INTEGER,"
        " used INTEGER, reserved INTEGER, remaining INTEGER, period_start TEXT,"
        " resets_at TEXT, retry_after INTEGER, note,"
        " alert TEXT, enforce TEXT, rollover INTEGER, credits INTEGER)");
  }
  if( rc!=SQLITE_OK ) return rc;
  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->pConn = pConn;
  rc = quotaStoreOpen(db, argv[1], argv[2], bCreate, &opt, &p->pStore, pzErr);
  if( rc!=SQLITE_OK ){
    sqlite3_free(p);
    return rc;
  }
  quotaConnAddTable(pConn, p->pStore);
  *ppVtab = &p->base;
  return SQLITE_OK;
}

/* CREATE VIRTUAL TABLE: a new store. */
static int vtabCreate(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                      sqlite3_vtab **ppVtab, char **pzErr){
  return vtabInit(db, pAux, argc, argv, ppVtab, pzErr, 1);
}

/* A statement names an existing table: open its store (upgrading it). */
static int vtabConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                       sqlite3_vtab **ppVtab, char **pzErr){
  return vtabInit(db, pAux, argc, argv, ppVtab, pzErr, 0);
}

/* SQLite can disconnect the table in the middle of a call (another
** connection changed the schema and a nested statement re-reads it): the
** store outlives it while the call holds a reference (functions.c). */
static int vtabDisconnect(sqlite3_vtab *pVtab){
  QuotaTab *p = (QuotaTab*)pVtab;
  quotaConnRemoveTable(p->pConn, p->pStore);
  quotaStoreUnref(p->pStore);
  sqlite3_free(p->base.zErrMsg);
  sqlite3_free(p);
  return SQLITE_OK;
}

/* DROP TABLE: the shadow tables go; on failure the table stays usable. */
static int vtabDestroy(sqlite3_vtab *pVtab){
  QuotaTab *p = (QuotaTab*)pVtab;
  int rc = quotaStoreDestroy(p->pStore);
  if( rc!=SQLITE_OK ) return rc;
  return vtabDisconnect(pVtab);
}

/* ALTER TABLE ... RENAME: the shadow tables follow. */
static int vtabRename(sqlite3_vtab *pVtab, const char *zNew){
  QuotaTab *p = (QuotaTab*)pVtab;
  int rc = quotaStoreRename(p->pStore, zNew);
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
    char *zMsg = sqlite3_mprintf("%s", sqlite3_errmsg(p->pStore->db));
    vtabError(p, rc, "cannot rename to %s: %s", zNew, zMsg ? zMsg : "");
    sqlite3_free(zMsg);
  }
  return rc;
}

/* xShadowName: SQLite protects these tables under SQLITE_DBCONFIG_DEFENSIVE. */
static int vtabShadowName(const char *zSuffix){
  return quotaStoreIsShadow(zSuffix);
}

/* -------------------------------------------------------------- reading */

static int vtabBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  QuotaConn *pConn = ((QuotaTab*)pVtab)->pConn;
  int i;
  /* A statement planned while a quota call runs is a trigger's, compiled
  ** into a statement the call steps: refused here, before it can tie the
  ** table to the store's statements (they would hold the trigger, the
  ** trigger the table, the table the store: the connection could never
  ** be closed). */
  if( pConn->zActive && !pConn->bProbing ) return vtabNested((QuotaTab*)pVtab);
  pInfo->idxNum = QPLAN_SCAN;
  pInfo->estimatedCost = 1000000.0;
  pInfo->estimatedRows = 100000;
  for(i=0; i<pInfo->nConstraint; i++){
    const struct sqlite3_index_constraint *pCons = &pInfo->aConstraint[i];
    if( !pCons->usable || pCons->op!=SQLITE_INDEX_CONSTRAINT_EQ ) continue;
    /* The lookup compares keys with BINARY: another collation (key = 'A'
    ** COLLATE NOCASE) is left to SQLite over a full scan. */
    if( pCons->iColumn==QCOL_KEY
     && sqlite3_stricmp(sqlite3_vtab_collation(pInfo, i), "BINARY")!=0 ) continue;
    if( pCons->iColumn==QCOL_KEY || pCons->iColumn<0 ){
      pInfo->idxNum = pCons->iColumn<0 ? QPLAN_ROWID : QPLAN_KEY;
      pInfo->aConstraintUsage[i].argvIndex = 1;
      pInfo->aConstraintUsage[i].omit = 1;
      pInfo->estimatedCost = 1.0;
      pInfo->estimatedRows = 1;
      pInfo->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
      break;
    }
  }
  if( pInfo->nOrderBy==1 && pInfo->aOrderBy[0].iColumn<0 && !pInfo->aOrderBy[0].desc ){
    pInfo->orderByConsumed = 1;   /* rows come in rowid order */
  }
  return SQLITE_OK;
}

/* A cursor; its statement is made by xFilter. */
static int vtabOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  QuotaCursor *pCur = sqlite3_malloc64(sizeof(*pCur));
  (void)pVtab;
  if( pCur==0 ) return SQLITE_NOMEM;
  memset(pCur, 0, sizeof(*pCur));
  *ppCur = &pCur->base;
  return SQLITE_OK;
}

/* Finalize the cursor's statement and free it. */
static int vtabClose(sqlite3_vtab_cursor *cur){
  QuotaCursor *pCur = (QuotaCursor*)cur;
  sqlite3_finalize(pCur->pStmt);
  sqlite3_free(pCur);
  return SQLITE_OK;
}

/* Step the cursor's statement and load the row into pCur->k. */
static int vtabStep(QuotaCursor *pCur){
  int rc = sqlite3_step(pCur->pStmt);
  pCur->bComputed = 0;
  if( rc==SQLITE_ROW ){
    pCur->bEof = 0;
    rc = quotaStoreKeyFromRow(pCur->pStmt, 0, &pCur->k);
    if( rc==SQLITE_OK ) rc = quotaKeyCheck(&pCur->k);
    /* the count of open grants, joined from quota_keyconf (credits) */
    if( rc==SQLITE_OK
     && sqlite3_column_type(pCur->pStmt, QCUR_GRANTS)!=SQLITE_NULL ){
      pCur->k.nGrants = sqlite3_column_int64(pCur->pStmt, QCUR_GRANTS);
      if( sqlite3_column_type(pCur->pStmt, QCUR_GRANTS)!=SQLITE_INTEGER
       || pCur->k.nGrants<=0 ) rc = SQLITE_CORRUPT_VTAB;
    }
    return rc;
  }
  pCur->bEof = 1;
  return rc==SQLITE_DONE ? SQLITE_OK : rc;
}

/*
** Start a scan: all keys, one by name, or one by rowid (the plan of
** xBestIndex). Refused inside a quota call (the guard, conn.c). The clock
** is read once, so every row of the scan is shown as of the same time.
*/
static int vtabFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr,
                      int argc, sqlite3_value **argv){
  QuotaCursor *pCur = (QuotaCursor*)cur;
  QuotaTab *p = (QuotaTab*)cur->pVtab;
  int rc;
  (void)idxStr; (void)argc;
  if( p->pConn->zActive ) return vtabNested(p);
  sqlite3_finalize(pCur->pStmt);
  pCur->pStmt = 0;
  rc = quotaStoreReadState(p->pStore, 1);
  if( rc==SQLITE_OK ){
    rc = quotaStoreScan(p->pStore, idxNum==QPLAN_KEY, idxNum==QPLAN_ROWID,
                        idxNum==QPLAN_SCAN ? 0 : argv[0], &pCur->pStmt);
  }
  if( rc==SQLITE_OK ){
    pCur->now = quotaNow(p->pConn);
    rc = vtabStep(pCur);
  }
  return vtabStatementError(p, rc);
}

/* The next row of the scan. */
static int vtabNext(sqlite3_vtab_cursor *cur){
  return vtabStatementError((QuotaTab*)cur->pVtab, vtabStep((QuotaCursor*)cur));
}

/* True after the last row. */
static int vtabEof(sqlite3_vtab_cursor *cur){
  return ((QuotaCursor*)cur)->bEof;
}

/* The key's id in quota_keys is the row's rowid. */
static int vtabRowid(sqlite3_vtab_cursor *cur, sqlite_int64 *pRowid){
  *pRowid = ((QuotaCursor*)cur)->k.id;
  return SQLITE_OK;
}


/*
** A column of the current row. The computed ones (used and after) show the
** key as of the scan's clock: rolled over, its expired holds released.
*/
static int vtabColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int iCol){
  QuotaCursor *pCur = (QuotaCursor*)cur;
  QuotaTab *p = (QuotaTab*)cur->pVtab;
  QuotaKey *k = &pCur->k;
  sqlite3_stmt *pStmt = pCur->pStmt;
  int rc = SQLITE_OK;
  /* An UPDATE asks only for the columns it changes; the rest stay as they
  ** are (xUpdate sees sqlite3_value_nochange()). */
  if( sqlite3_vtab_nochange(ctx) ) return SQLITE_OK;
  if( ((iCol>=QCOL_USED && iCol<=QCOL_RETRY_AFTER) || iCol==QCOL_CREDITS)
   && !pCur->bComputed ){
    /* Effective values need the sweep state as the caller's transaction
    ** sees it; what the store remembers counts only if still trusted. */
    rc = quotaStoreReadState(p->pStore, 0);
    if( rc==SQLITE_OK ) rc = quotaEffective(p->pStore, k, pCur->now);
    if( rc==SQLITE_OK ) rc = quotaStoreCredits(p->pStore, k, pCur->now);
    if( rc!=SQLITE_OK ) return vtabStatementError(p, rc);
    pCur->bComputed = 1;
  }
  switch( iCol ){
    case QCOL_KEY:
      sqlite3_result_value(ctx, sqlite3_column_value(pStmt, QCUR_KEY));
      break;
    case QCOL_CAP:
      if( k->bCap ) sqlite3_result_int64(ctx, k->cap);
      break;
    case QCOL_PERIOD:
      sqlite3_result_value(ctx, sqlite3_column_value(pStmt, QCUR_PERIOD));
      break;
    case QCOL_ANCHOR:
      if( k->bAnchor ) quotaResultTime(ctx, k->anchor);
      break;
    case QCOL_PARENT:
      sqlite3_result_value(ctx, sqlite3_column_value(pStmt, QCUR_PARENT));
      break;
    case QCOL_RETENTION:
      if( sqlite3_column_type(pStmt, QCUR_RETENTION)==SQLITE_INTEGER
       && sqlite3_column_int64(pStmt, QCUR_RETENTION)<0 ){
        sqlite3_result_text(ctx, "forever", -1, SQLITE_STATIC);
      }else{
        sqlite3_result_value(ctx, sqlite3_column_value(pStmt, QCUR_RETENTION));
      }
      break;
    case QCOL_USED:
      sqlite3_result_int64(ctx, k->used);
      break;
    case QCOL_RESERVED:
      sqlite3_result_int64(ctx, k->reserved);
      break;
    case QCOL_REMAINING:
      if( k->bCap ) sqlite3_result_int64(ctx, quotaRoom(k));
      break;
    case QCOL_PERIOD_START:
      if( k->bPeriod ) quotaResultTime(ctx, k->pstart);
      break;
    case QCOL_RESETS_AT:
      if( k->bPeriod ) quotaResultTime(ctx, k->pend);
      break;
    case QCOL_RETRY_AFTER: {
      sqlite3_int64 secs = -1;
      if( k->bCap && quotaRoom(k)<1 ){
        rc = quotaRetryAfter(p->pStore, k, 1, pCur->now, &secs);
      }
      if( rc==SQLITE_OK && secs>=0 ) sqlite3_result_int64(ctx, secs);
      break;
    }
    case QCOL_ALERT:
      sqlite3_result_value(ctx, sqlite3_column_value(pStmt, QCUR_ALERT));
      break;
    case QCOL_ENFORCE: {
      /* stored NULL (or 0) for hard, 1 for shadow */
      int t = sqlite3_column_type(pStmt, QCUR_ENFORCE);
      sqlite3_int64 v = sqlite3_column_int64(pStmt, QCUR_ENFORCE);
      if( t!=SQLITE_NULL && (t!=SQLITE_INTEGER || v<0 || v>1) ){
        return SQLITE_CORRUPT_VTAB;
      }
      sqlite3_result_text(ctx, v==1 ? "shadow" : "hard", -1, SQLITE_STATIC);
      break;
    }
    case QCOL_ROLLOVER: {
      int t = sqlite3_column_type(pStmt, QCUR_ROLLOVER);
      if( t!=SQLITE_NULL && (t!=SQLITE_INTEGER
                             || sqlite3_column_int64(pStmt, QCUR_ROLLOVER)<0) ){
        return SQLITE_CORRUPT_VTAB;
      }
      sqlite3_result_value(ctx, sqlite3_column_value(pStmt, QCUR_ROLLOVER));
      break;
    }
    case QCOL_CREDITS:
      sqlite3_result_int64(ctx, k->credits);
      break;
    default:
      sqlite3_result_value(ctx, sqlite3_column_value(pStmt, QCUR_NOTE));
      break;
  }
  return rc;
}

/* -------------------------------------------------------------- writing */

/* The values a write gives, validated; what it does not give is kept. */
typedef struct KeyWrite KeyWrite;
struct KeyWrite {
  QuotaKey k;                 /* cap, kind, len, anchor, parent; alert, shadow */
  char zPeriod[QUOTA_PERIOD_TEXT];  /* canonical period text, "" for NULL */
  int bRetention; sqlite3_int64 retention;
  char zAlert[QUOTA_ALERT_TEXT];    /* canonical alert list, "" for NULL */
  int bRollover; sqlite3_int64 rollover;
};

/* rollover: NULL (none) or a non-negative integer, the most units one
** period carries into the next (calendar keys; stored and ignored on
** others, as an anchor is). */
static int vtabValidateRollover(QuotaTab *p, sqlite3_value *v, KeyWrite *w){
  w->bRollover = sqlite3_value_type(v)!=SQLITE_NULL;
  if( !w->bRollover ) return SQLITE_OK;
  if( quotaValueInt(v, &w->rollover)==0 && w->rollover>=0 ) return SQLITE_OK;
  w->bRollover = 0;
  return vtabRefused(p, "rollover", "NULL or a non-negative integer", v);
}

/* The rules of alert and enforce, as their messages state them. */
#define RULE_ALERT "NULL or a comma list of thresholds such as '80%, 100%' " \
  "(at most " QUOTA_STR(QUOTA_ALERT_MAX) ", each a positive whole number of " \
  "units, or of percent of cap with %)"
#define RULE_ENFORCE "'hard', 'shadow' or NULL (hard)"

/* alert: NULL, a threshold list, or a positive integer (that many units);
** the canonical list and the parsed thresholds kept in w. */
static int vtabValidateAlert(QuotaTab *p, sqlite3_value *v, KeyWrite *w){
  int t = sqlite3_value_type(v);
  sqlite3_int64 n;
  w->zAlert[0] = 0;
  w->k.nAlert = 0;
  if( t==SQLITE_NULL ) return SQLITE_OK;
  if( t==SQLITE_TEXT ){
    const char *z = (const char*)sqlite3_value_text(v);
    if( z==0 ) return SQLITE_NOMEM;
    if( (int)strlen(z)==sqlite3_value_bytes(v)
     && quotaParseAlert(z, w->k.aAlert, &w->k.nAlert, w->zAlert)==0 ){
      return SQLITE_OK;
    }
  }else if( (t==SQLITE_INTEGER || t==SQLITE_FLOAT)
         && quotaValueInt(v, &n)==0 && n>0 ){
    w->k.aAlert[0] = n;
    w->k.nAlert = 1;
    quotaAlertItem(n, w->zAlert);
    return SQLITE_OK;
  }
  w->zAlert[0] = 0;
  w->k.nAlert = 0;
  return vtabRefused(p, "alert", RULE_ALERT, v);
}

/* enforce: 'hard' or 'shadow' (any case, spaces around allowed); NULL is
** hard. */
static int vtabValidateEnforce(QuotaTab *p, sqlite3_value *v, KeyWrite *w){
  const char *z;
  int n;
  w->k.bShadow = 0;
  if( sqlite3_value_type(v)==SQLITE_NULL ) return SQLITE_OK;
  if( sqlite3_value_type(v)==SQLITE_TEXT ){
    z = (const char*)sqlite3_value_text(v);
    if( z==0 ) return SQLITE_NOMEM;
    if( (int)strlen(z)==sqlite3_value_bytes(v) ){
      while( *z==' ' ) z++;
      n = (int)strlen(z);
      while( n>0 && z[n-1]==' ' ) n--;
      if( n==4 && sqlite3_strnicmp(z, "hard", 4)==0 ) return SQLITE_OK;
      if( n==6 && sqlite3_strnicmp(z, "shadow", 6)==0 ){
        w->k.bShadow = 1;
        return SQLITE_OK;
      }
    }
  }
  return vtabRefused(p, "enforce", RULE_ENFORCE, v);
}

/*
** Store key `id`'s alert and enforcement from w, re-armed (events.c): the
** key as it now is, brought to `now` as readers see it, decides what
** counts as already sent.
*/
static int vtabSaveConf(QuotaTab *p, sqlite3_int64 id, sqlite3_int64 now,
                        const KeyWrite *w){
  QuotaStore *pStore = p->pStore;
  QuotaKey k;
  int bFound = 0;
  int rc = quotaKeyById(pStore, id, &k, &bFound);
  if( rc==SQLITE_OK && NEVER(!bFound) ) rc = SQLITE_CORRUPT_VTAB;
  if( rc==SQLITE_OK ) rc = quotaEffective(pStore, &k, now);
  /* The room re-arming compares counts the key's credits: a key whose
  ** allowance is spent but whose grants leave room is not exhausted.
  ** 2026-12-07, found by the reference model (seed 12, step 57). */
  if( rc==SQLITE_OK ) rc = quotaKeySettings(pStore, &k, now);
  if( rc!=SQLITE_OK ) return rc;
  k.nAlert = w->k.nAlert;
  memcpy(k.aAlert, w->k.aAlert, sizeof(k.aAlert));
  k.bShadow = w->k.bShadow;
  rc = quotaEventsRearm(&k, now);
  if( rc==SQLITE_OK ){
    rc = quotaStoreConfPut(pStore, id, w->zAlert[0] ? w->zAlert : 0, k.bShadow,
                           k.bFired, k.fired);
  }
  return rc;
}

/* cap: NULL or a non-negative integer. */
static int vtabValidateCap(QuotaTab *p, sqlite3_value *v, KeyWrite *w){
  int t = sqlite3_value_type(v);
  w->k.bCap = t!=SQLITE_NULL;
  if( t==SQLITE_NULL ) return SQLITE_OK;
  if( quotaValueInt(v, &w->k.cap)==0 && w->k.cap>=0 ) return SQLITE_OK;
  return vtabRefused(p, "cap", "NULL or a non-negative integer", v);
}

/* period: NULL (lifetime) or a period text; canonical text kept in w. */
static int vtabValidatePeriod(QuotaTab *p, sqlite3_value *v, KeyWrite *w){
  const char *z;
  int t = sqlite3_value_type(v);      /* before value_text: it may convert */
  w->zPeriod[0] = 0;
  if( t==SQLITE_NULL ){
    w->k.eKind = QUOTA_KIND_LIFETIME;
    w->k.nLen = 0;
    w->k.nRate = 0;
    return SQLITE_OK;
  }
  z = (const char*)sqlite3_value_text(v);
  if( t==SQLITE_TEXT && z && (int)strlen(z)!=sqlite3_value_bytes(v) ){
    return vtabError(p, SQLITE_CONSTRAINT, "period must not contain a NUL byte");
  }
  if( t!=SQLITE_TEXT || z==0
   || quotaParsePeriod(z, &w->k.eKind, &w->k.nLen, &w->k.nRate, w->zPeriod) ){
    char zList[200];
    quotaPeriodList(zList, sizeof(zList));
    return vtabError(p, SQLITE_CONSTRAINT, "unknown period '%s': use %s",
                     z ? z : "", zList);
  }
  return SQLITE_OK;
}

/* A token bucket's cap is its size: it may not be NULL (the cap and the
** period of w, both validated). */
static int vtabValidateBucket(QuotaTab *p, const KeyWrite *w){
  if( quotaKind(w->k.eKind)->bRate && !w->k.bCap ){
    return vtabError(p, SQLITE_CONSTRAINT, "cap must not be NULL on a key with "
        "period '%s': a token bucket's cap is its size", w->zPeriod);
  }
  return SQLITE_OK;
}

/* anchor: NULL or anything datetime() reads (with the connection's clock for 'now'). */
static int vtabValidateAnchor(QuotaTab *p, sqlite3_value *v, KeyWrite *w){
  int rc;
  w->k.bAnchor = sqlite3_value_type(v)!=SQLITE_NULL;
  if( !w->k.bAnchor ) return SQLITE_OK;
  rc = quotaParseTime(p->pStore->db, quotaNow(p->pConn), v, &w->k.anchor);
  if( rc==SQLITE_MISMATCH ){
    return vtabError(p, SQLITE_CONSTRAINT, "anchor is not a time: '%s' (use "
        "'YYYY-MM-DD HH:MM:SS' UTC, or anything datetime() reads)",
        (const char*)sqlite3_value_text(v));
  }
  return rc;
}

/* retention: NULL (the table's), 'forever', or a non-negative duration. */
static int vtabValidateRetention(QuotaTab *p, sqlite3_value *v, KeyWrite *w){
  int t = sqlite3_value_type(v);
  w->bRetention = t!=SQLITE_NULL;
  if( t==SQLITE_NULL ) return SQLITE_OK;
  if( t!=SQLITE_TEXT ){
    if( quotaValueInt(v, &w->retention)==0 && w->retention>=0 ) return SQLITE_OK;
  }else if( sqlite3_stricmp((const char*)sqlite3_value_text(v), "forever")==0 ){
    w->retention = -1;                      /* stored -1, reads 'forever' */
    return SQLITE_OK;
  }else if( ALWAYS(t==SQLITE_TEXT)
         && quotaParseDurationText((const char*)sqlite3_value_text(v),
                                   &w->retention, 0)==0 ){
    return SQLITE_OK;
  }
  return vtabRefused(p, "retention", "NULL, 'forever' or a non-negative duration", v);
}

/* used: a non-negative integer (NULL is 0 on INSERT; refused on UPDATE). */
static int vtabValidateUsed(QuotaTab *p, sqlite3_value *v, sqlite3_int64 *pUsed){
  int t = sqlite3_value_type(v);
  if( t==SQLITE_NULL ){ *pUsed = 0; return SQLITE_OK; }
  if( quotaValueInt(v, pUsed)==0 && *pUsed>=0 ) return SQLITE_OK;
  return vtabRefused(p, "used", "a non-negative integer", v);
}

/*
** A chain longer than QUOTA_MAX_DEPTH levels is refused when it is made:
** the functions would call the store damaged. Counts the levels from the
** new parent up (stopping at the key itself, a cycle reported elsewhere)
** plus the deepest chain of descendants under the key being changed.
*/
static int vtabCheckDepth(QuotaTab *p, const QuotaKey *pParent,
                          sqlite3_int64 selfId, const char *zKey){
  sqlite3_int64 id = pParent->parentId;
  int nUp = 1, nDown = 1, rc = SQLITE_OK;
  while( id!=0 && id!=selfId && nUp<=QUOTA_MAX_DEPTH ){
    QuotaKey k;
    int bFound = 0;
    rc = quotaKeyById(p->pStore, id, &k, &bFound);
    if( rc!=SQLITE_OK ) return rc;
    nUp++;
    id = bFound ? k.parentId : 0;
  }
  if( id==selfId && selfId!=0 ) return SQLITE_OK;   /* a cycle: said later */
  if( selfId!=0 ) rc = quotaStoreSubtreeDepth(p->pStore, selfId, &nDown);
  if( rc==SQLITE_OK && nUp + nDown > QUOTA_MAX_DEPTH ){
    rc = vtabError(p, SQLITE_CONSTRAINT, "parent chain of '%s' would be "
        "deeper than %d levels", zKey, QUOTA_MAX_DEPTH);
  }
  return rc;
}

/*
** Resolve the parent named by v for the key `zKey` (id `selfId`, 0 when the
** key is being inserted): it must exist, and following parents up from it
** must never come back to the key.
*/
static int vtabValidateParent(QuotaTab *p, sqlite3_value *v, const char *zKey,
                              sqlite3_int64 selfId, sqlite3_int64 *pParentId){
  QuotaStore *pStore = p->pStore;
  char zBuf[QUOTA_NUMBER_TEXT];
  const char *zParent;
  QuotaKey k;
  sqlite3_str *pPath;
  sqlite3_int64 id;
  int bFound = 0, rc, depth = 0, bNul;
  *pParentId = 0;
  if( sqlite3_value_type(v)==SQLITE_NULL ) return SQLITE_OK;
  zParent = quotaValueText(v, zBuf, &bNul);
  if( bNul ){
    return vtabError(p, SQLITE_CONSTRAINT, "parent must not contain a NUL byte");
  }
  if( zParent==0 ) return vtabRefused(p, "parent", "NULL or a key", v);
  if( strcmp(zParent, zKey)==0 ){
    return vtabError(p, SQLITE_CONSTRAINT, "parent chain has a cycle: %s -> %s",
                     zKey, zKey);
  }
  rc = quotaKeyByName(pStore, zParent, &k, &bFound);
  if( rc!=SQLITE_OK ) return rc;
  if( !bFound ) return vtabError(p, SQLITE_CONSTRAINT, "no such parent key: '%s'", zParent);
  *pParentId = k.id;
  rc = vtabCheckDepth(p, &k, selfId, zKey);
  if( rc!=SQLITE_OK || selfId==0 ) return rc;
  /* Walk up from the new parent; reaching selfId closes a cycle. */
  pPath = sqlite3_str_new(pStore->db);
  sqlite3_str_appendf(pPath, "%s -> %s", zKey, zParent);
  id = k.parentId;
  while( rc==SQLITE_OK && !(k.id==selfId) && id!=0 && ALWAYS(depth<QUOTA_MAX_DEPTH) ){
    char *zName = 0;
    depth++;
    rc = quotaKeyById(pStore, id, &k, &bFound);
    if( rc==SQLITE_OK && bFound ) rc = quotaStoreKeyName(pStore, k.id, &zName);
    if( rc==SQLITE_OK && bFound ) sqlite3_str_appendf(pPath, " -> %s", zName);
    sqlite3_free(zName);
    id = bFound ? k.parentId : 0;
  }
  if( rc==SQLITE_OK && k.id==selfId ){
    char *zPath = sqlite3_str_finish(pPath);
    rc = vtabError(p, SQLITE_CONSTRAINT, "parent chain has a cycle: %s",
                   zPath ? zPath : "");
    sqlite3_free(zPath);
    return rc;
  }
  sqlite3_free(sqlite3_str_finish(pPath));
  return rc;
}

/* INSERT: a new key, every value checked before anything is written. */
static int vtabInsert(QuotaTab *p, sqlite3_value **argv, sqlite_int64 *pRowid){
  QuotaStore *pStore = p->pStore;
  char zKeyBuf[QUOTA_NUMBER_TEXT];
  const char *zKey;
  KeyWrite w;
  QuotaKey k;
  sqlite3_int64 used = 0, now = quotaNow(p->pConn);
  int rc, i, bFound = 0, bNul;
  memset(&w, 0, sizeof(w));
  if( sqlite3_value_type(argv[1])!=SQLITE_NULL ){
    return vtabError(p, SQLITE_CONSTRAINT, "rowid is assigned by the table");
  }
  for(i=QCOL_RESERVED; i<=QCOL_CREDITS; i++){
    if( (i<=QCOL_RETRY_AFTER || i==QCOL_CREDITS)
     && sqlite3_value_type(argv[2+i])!=SQLITE_NULL ){
      return vtabError(p, SQLITE_CONSTRAINT, "column %s is read-only", azColName[i]);
    }
  }
  zKey = quotaValueText(argv[2+QCOL_KEY], zKeyBuf, &bNul);
  if( bNul ){
    return vtabError(p, SQLITE_CONSTRAINT, "key must not contain a NUL byte");
  }
  if( zKey==0 ){
    return vtabRefused(p, "key", "a non-empty text or an integer", argv[2+QCOL_KEY]);
  }
  rc = quotaKeyByName(pStore, zKey, &k, &bFound);
  if( rc!=SQLITE_OK ) return rc;
  if( bFound ){
    if( sqlite3_vtab_on_conflict(pStore->db)==SQLITE_REPLACE ){
      /* Replacing a key would drop its usage and orphan its holds:
      ** refuse, and say what to do instead. */
      return vtabError(p, SQLITE_CONSTRAINT, "key '%s' already exists "
          "(INSERT OR REPLACE would drop its usage: use UPDATE)", zKey);
    }
    return vtabError(p, SQLITE_CONSTRAINT, "key '%s' already exists", zKey);
  }
  rc = vtabValidateCap(p, argv[2+QCOL_CAP], &w);
  if( rc==SQLITE_OK ) rc = vtabValidatePeriod(p, argv[2+QCOL_PERIOD], &w);
  if( rc==SQLITE_OK ) rc = vtabValidateBucket(p, &w);
  if( rc==SQLITE_OK ) rc = vtabValidateAnchor(p, argv[2+QCOL_ANCHOR], &w);
  if( rc==SQLITE_OK ){
    rc = vtabValidateParent(p, argv[2+QCOL_PARENT], zKey, 0, &w.k.parentId);
  }
  if( rc==SQLITE_OK ) rc = vtabValidateRetention(p, argv[2+QCOL_RETENTION], &w);
  if( rc==SQLITE_OK ) rc = vtabValidateUsed(p, argv[2+QCOL_USED], &used);
  if( rc==SQLITE_OK ) rc = vtabValidateAlert(p, argv[2+QCOL_ALERT], &w);
  if( rc==SQLITE_OK ) rc = vtabValidateEnforce(p, argv[2+QCOL_ENFORCE], &w);
  if( rc==SQLITE_OK ) rc = vtabValidateRollover(p, argv[2+QCOL_ROLLOVER], &w);
  if( rc!=SQLITE_OK ) return rc;
  w.k.used = quotaKind(w.k.eKind)->bWindow ? 0 : used;
  w.k.pstart = quotaPeriodStart(w.k.eKind, w.k.bAnchor, w.k.anchor, now);
  rc = quotaStoreKeyInsert(pStore, zKey, w.zPeriod[0] ? w.zPeriod : 0,
                           w.retention, w.bRetention, &w.k, pRowid);
  if( rc==SQLITE_OK && w.k.nRate>0 ) rc = quotaStoreRateSave(pStore, *pRowid, w.k.nRate);
  if( rc!=SQLITE_OK ) return rc;
  if( sqlite3_value_type(argv[2+QCOL_NOTE])!=SQLITE_NULL ){
    rc = quotaStoreNoteSave(pStore, *pRowid, argv[2+QCOL_NOTE]);
    if( rc!=SQLITE_OK ) return rc;
  }
  if( quotaKind(w.k.eKind)->bWindow && used>0 ){
    rc = quotaKeyById(pStore, *pRowid, &k, &bFound);
    if( rc==SQLITE_OK ) rc = quotaSetUsed(pStore, &k, used, now);
    if( rc==SQLITE_OK ) rc = quotaStoreKeySave(pStore, &k);
  }
  if( rc==SQLITE_OK && (w.k.nAlert || w.k.bShadow) ){
    rc = vtabSaveConf(p, *pRowid, now, &w);
  }
  if( rc==SQLITE_OK && w.bRollover ){
    rc = quotaStoreRolloverSave(pStore, *pRowid, 1, w.rollover);
  }
  return rc;
}

/*
** A write to the table checks everything before it writes anything: a
** single-row UPDATE or DELETE has no statement journal inside the caller's
** transaction, so a refused one must not have swept or normalized on the
** way. vtabPeek loads key `id` as readers see it at `now` (nothing
** written); vtabLoadForWrite then sweeps and brings it to `now` in the store.
*/
static int vtabPeek(QuotaTab *p, sqlite3_int64 id, sqlite3_int64 now,
                    QuotaKey *k){
  int bFound = 0;
  int rc = quotaKeyById(p->pStore, id, k, &bFound);
  if( rc==SQLITE_OK && NEVER(!bFound) ) rc = SQLITE_CORRUPT_VTAB;
  if( rc==SQLITE_OK ) rc = quotaEffective(p->pStore, k, now);
  return rc;
}

/* Key `id` for a write: holds swept, the key brought to `now` in the store. */
static int vtabLoadForWrite(QuotaTab *p, sqlite3_int64 id, sqlite3_int64 now,
                            QuotaKey *k){
  int bFound = 0;
  int rc = quotaSweep(p->pStore, now);
  if( rc==SQLITE_OK ) rc = quotaKeyById(p->pStore, id, k, &bFound);
  if( rc==SQLITE_OK && NEVER(!bFound) ) rc = SQLITE_CORRUPT_VTAB;
  if( rc==SQLITE_OK ) rc = quotaNormalize(p->pStore, k, now, 1);
  return rc;
}

/* DELETE: a key that is no key's parent goes, and its live holds stop
** counting at its ancestors (quotaOrphanHolds). */
static int vtabDelete(QuotaTab *p, sqlite3_int64 id){
  QuotaStore *pStore = p->pStore;
  sqlite3_int64 now = quotaNow(p->pConn);
  char *zChild = 0;
  QuotaKey k;
  int rc = vtabPeek(p, id, now, &k);
  /* A key that is still a parent cannot go. */
  if( rc==SQLITE_OK ) rc = quotaStoreKeyChild(pStore, id, &zChild);
  if( rc==SQLITE_OK && zChild ){
    char *zKey = 0;
    rc = quotaStoreKeyName(pStore, id, &zKey);
    if( rc==SQLITE_OK ){
      rc = vtabError(p, SQLITE_CONSTRAINT, "cannot delete key '%s': it is the "
                     "parent of '%s'", zKey, zChild);
    }
    sqlite3_free(zKey);
  }
  sqlite3_free(zChild);
  if( rc==SQLITE_OK ) rc = vtabLoadForWrite(p, id, now, &k);
  /* Live holds of the key stop counting at its ancestors; a later settle of
  ** one of them returns NULL, as quota_record does for a deleted key. Holds
  ** of 0 units add nothing to reserved, so look whatever reserved says. */
  if( rc==SQLITE_OK ) rc = quotaOrphanHolds(pStore, &k, now);
  if( rc==SQLITE_OK ) rc = quotaStoreKeyDelete(pStore, id);
  return rc;
}

/*
** UPDATE: the settings given replace the stored ones (each checked first);
** `used` given is an admin's reset, not a charge (no ledger row). Moving
** into or out of a window keeps the usage so far.
*/
static int vtabUpdate(QuotaTab *p, sqlite3_value **argv){
  QuotaStore *pStore = p->pStore;
  sqlite3_int64 id = sqlite3_value_int64(argv[0]);
  sqlite3_int64 now = quotaNow(p->pConn);
  sqlite3_int64 used = 0;
  QuotaKey k;
  KeyWrite w;
  char *zKey = 0;
  int rc, i, bRearm = 0, bHadConf = 0;
  sqlite3_value *pOldPeriod, *pOldRetention;
  sqlite3_stmt *pRow = 0;

  if( sqlite3_value_type(argv[1])!=SQLITE_INTEGER
   || sqlite3_value_int64(argv[1])!=id ){
    return vtabError(p, SQLITE_CONSTRAINT, "rowid is assigned by the table");
  }
  for(i=QCOL_RESERVED; i<=QCOL_CREDITS; i++){
    if( (i<=QCOL_RETRY_AFTER || i==QCOL_CREDITS) && !sqlite3_value_nochange(argv[2+i]) ){
      return vtabError(p, SQLITE_CONSTRAINT, "column %s is read-only", azColName[i]);
    }
  }
  rc = vtabPeek(p, id, now, &k);
  if( rc==SQLITE_OK ) rc = quotaStoreConfLoad(pStore, &k);
  if( rc==SQLITE_OK ) rc = quotaStoreKeyRow(pStore, id, &pRow);
  if( rc!=SQLITE_OK ) return rc;
  /* The stored values of the columns the UPDATE does not change. */
  pOldPeriod = sqlite3_column_value(pRow, 1);
  pOldRetention = sqlite3_column_value(pRow, 2);
  zKey = sqlite3_mprintf("%s", sqlite3_column_text(pRow, 0));
  if( zKey==0 ) rc = SQLITE_NOMEM;
  if( rc==SQLITE_OK && !sqlite3_value_nochange(argv[2+QCOL_KEY]) ){
    char zBuf[QUOTA_NUMBER_TEXT];
    int bNul;
    const char *zNew = quotaValueText(argv[2+QCOL_KEY], zBuf, &bNul);
    if( zNew==0 || strcmp(zNew, zKey)!=0 ){
      rc = vtabError(p, SQLITE_CONSTRAINT, "column key cannot be changed");
    }
  }
  memset(&w, 0, sizeof(w));
  /* Each setting: the new value when given, else the stored one. */
  if( rc==SQLITE_OK ){
    if( sqlite3_value_nochange(argv[2+QCOL_CAP]) ){
      w.k.bCap = k.bCap; w.k.cap = k.cap;
    }else{
      rc = vtabValidateCap(p, argv[2+QCOL_CAP], &w);
    }
  }
  if( rc==SQLITE_OK ){
    rc = vtabValidatePeriod(p, sqlite3_value_nochange(argv[2+QCOL_PERIOD])
                               ? pOldPeriod : argv[2+QCOL_PERIOD], &w);
  }
  if( rc==SQLITE_OK ) rc = vtabValidateBucket(p, &w);
  if( rc==SQLITE_OK ){
    if( sqlite3_value_nochange(argv[2+QCOL_ANCHOR]) ){
      w.k.bAnchor = k.bAnchor; w.k.anchor = k.anchor;
    }else{
      rc = vtabValidateAnchor(p, argv[2+QCOL_ANCHOR], &w);
    }
  }
  if( rc==SQLITE_OK ){
    if( sqlite3_value_nochange(argv[2+QCOL_PARENT]) ){
      w.k.parentId = k.parentId;
    }else{
      rc = vtabValidateParent(p, argv[2+QCOL_PARENT], zKey, id, &w.k.parentId);
      if( rc==SQLITE_OK && w.k.parentId!=k.parentId && k.reserved>0 ){
        rc = vtabError(p, SQLITE_CONSTRAINT, "cannot change the parent of '%s' "
                       "while it holds reservations", zKey);
      }
    }
  }
  if( rc==SQLITE_OK ){
    if( sqlite3_value_nochange(argv[2+QCOL_RETENTION]) ){
      w.bRetention = sqlite3_value_type(pOldRetention)!=SQLITE_NULL;
      w.retention = sqlite3_value_int64(pOldRetention);
    }else{
      rc = vtabValidateRetention(p, argv[2+QCOL_RETENTION], &w);
    }
  }
  if( rc==SQLITE_OK && !sqlite3_value_nochange(argv[2+QCOL_USED]) ){
    rc = vtabValidateUsed(p, argv[2+QCOL_USED], &used);
    if( rc==SQLITE_OK && sqlite3_value_type(argv[2+QCOL_USED])==SQLITE_NULL ){
      rc = vtabRefused(p, "used", "a non-negative integer", argv[2+QCOL_USED]);
    }
  }
  if( rc==SQLITE_OK ){
    if( sqlite3_value_nochange(argv[2+QCOL_ALERT]) ){
      w.k.nAlert = k.nAlert;
      memcpy(w.k.aAlert, k.aAlert, sizeof(k.aAlert));
      quotaAlertText(k.aAlert, k.nAlert, w.zAlert);
    }else{
      rc = vtabValidateAlert(p, argv[2+QCOL_ALERT], &w);
    }
  }
  if( rc==SQLITE_OK ){
    if( sqlite3_value_nochange(argv[2+QCOL_ENFORCE]) ){
      w.k.bShadow = k.bShadow;
    }else{
      rc = vtabValidateEnforce(p, argv[2+QCOL_ENFORCE], &w);
    }
  }
  if( rc==SQLITE_OK && !sqlite3_value_nochange(argv[2+QCOL_ROLLOVER]) ){
    rc = vtabValidateRollover(p, argv[2+QCOL_ROLLOVER], &w);
  }
  /* Events re-arm when what decides them is written (events.c): not for
  ** parent, retention or note. */
  bHadConf = k.nAlert || k.bShadow || k.bFired;
  for(i=QCOL_KEY; i<QCOL_COUNT; i++){
    if( (i==QCOL_CAP || i==QCOL_PERIOD || i==QCOL_ANCHOR || i==QCOL_USED
         || i==QCOL_ALERT || i==QCOL_ENFORCE)
     && !sqlite3_value_nochange(argv[2+i]) ){
      bRearm = 1;
    }
  }
  sqlite3_reset(pRow);
  /* Everything is checked: now sweep and bring the key to now. */
  if( rc==SQLITE_OK ) rc = vtabLoadForWrite(p, id, now, &k);
  if( rc==SQLITE_OK ){
    int bUsed = !sqlite3_value_nochange(argv[2+QCOL_USED]);
    const QuotaKind *pOld = quotaKind(k.eKind), *pNew = quotaKind(w.k.eKind);
    sqlite3_int64 oldRate = k.nRate;
    if( !bUsed && (pOld->bWindow!=pNew->bWindow || pOld->bRate!=pNew->bRate) ){
      /* Entering or leaving a window or a bucket: the usage so far is
      ** kept, as one bucket of the window or as the period's count. A
      ** token bucket's used holds the units of its live holds, which
      ** other kinds count in reserved only. */
      bUsed = 1;
      used = k.used;
      if( pOld->bRate!=pNew->bRate ){
        if( pOld->bRate ) used = used>k.reserved ? used-k.reserved : 0;
        else used = quotaAddSat(used, k.reserved);
      }
    }
    /* The period `used` belongs to changes only with the settings that
    ** make periods: a clock behind the stored period (a pinned clock
    ** moved back) must not move it, or its usage would go to the older
    ** period and be lost at the next rollover. 2026-12-07, found by
    ** test/model.c. A bucket that stays one is refilled up to where it
    ** is (moving that back would refill some seconds twice); a new rate
    ** starts its next unit afresh. */
    if( (k.eKind!=w.k.eKind || k.nLen!=w.k.nLen || k.bAnchor!=w.k.bAnchor
         || (k.bAnchor && k.anchor!=w.k.anchor)) && !(pOld->bRate && pNew->bRate) ){
      k.pstart = quotaPeriodStart(w.k.eKind, w.k.bAnchor, w.k.anchor, now);
    }
    if( pNew->bRate && (k.nLen!=w.k.nLen || oldRate!=w.k.nRate) ) k.wtotal = 0;
    k.eKind = w.k.eKind;
    k.nLen = w.k.nLen;
    k.nRate = w.k.nRate;
    if( bUsed ) rc = quotaSetUsed(pStore, &k, used, now);
    if( rc==SQLITE_OK && oldRate!=w.k.nRate ){
      rc = quotaStoreRateSave(pStore, id, w.k.nRate);
    }
    if( rc==SQLITE_OK ){
      k.bCap = w.k.bCap;
      k.cap = w.k.cap;
      k.bAnchor = w.k.bAnchor;
      k.anchor = w.k.anchor;
      k.parentId = w.k.parentId;
      rc = quotaStoreKeyUpdate(pStore, w.zPeriod[0] ? w.zPeriod : 0,
                               w.retention, w.bRetention, &k);
    }
    if( rc==SQLITE_OK && !sqlite3_value_nochange(argv[2+QCOL_NOTE]) ){
      rc = quotaStoreNoteSave(pStore, id, argv[2+QCOL_NOTE]);
    }
    if( rc==SQLITE_OK && bRearm && (bHadConf || w.k.nAlert || w.k.bShadow) ){
      rc = vtabSaveConf(p, id, now, &w);
    }
    if( rc==SQLITE_OK && !sqlite3_value_nochange(argv[2+QCOL_ROLLOVER]) ){
      rc = quotaStoreRolloverSave(pStore, id, w.bRollover, w.rollover);
    }
  }
  sqlite3_free(zKey);
  return rc;
}

/*
** INSERT, UPDATE and DELETE. A write runs statements on the shadow tables,
** so it is a quota call for the guard (conn.c): a trigger it fires cannot
** call back in. It runs in the caller's statement, which may yet roll
** back: nothing it learns is remembered (THE ONE RULE in store.c).
*/
static int vtabUpdateMethod(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
                            sqlite_int64 *pRowid){
  QuotaTab *p = (QuotaTab*)pVtab;
  QuotaStore *pStore = p->pStore;
  char *zErr = 0;
  int rc;
  if( quotaConnEnter(p->pConn, "a write to the quota table") ) return vtabNested(p);
  quotaStoreForget(pStore);
  pStore->nRef++;
  rc = quotaStoreRefresh(pStore);
  if( rc==SQLITE_OK ) rc = quotaStoreCheckWrite(pStore, &zErr);
  if( rc==SQLITE_OK && pStore->opt.bClockPinned
   && (!p->pConn->bPinned || p->pConn->bPinnedNow) ){
    rc = vtabError(p, SQLITE_ERROR, "this table requires a pinned clock "
        "(clock=pinned): call quota_clock(time) first, with the same literal "
        "time on every node");
  }else if( rc==SQLITE_OK ){
    if( argc==1 ){
      rc = vtabDelete(p, sqlite3_value_int64(argv[0]));
    }else if( sqlite3_value_type(argv[0])==SQLITE_NULL ){
      rc = vtabInsert(p, argv, pRowid);
    }else{
      rc = vtabUpdate(p, argv);
    }
  }else if( zErr ){
    vtabError(p, rc, "%s", zErr);
  }
  sqlite3_free(zErr);
  rc = vtabStatementError(p, rc);
  quotaStoreForget(pStore);
  quotaStoreUnref(pStore);
  quotaConnLeave(p->pConn);
  return rc;
}

#if SQLITE_VERSION_NUMBER>=3044000
/* PRAGMA integrity_check (SQLite 3.44+): quota_integrity()'s checks. */
static int vtabIntegrity(sqlite3_vtab *pVtab, const char *zSchema,
                         const char *zTabName, int mFlags, char **pzErr){
  (void)zSchema; (void)zTabName; (void)mFlags;
  return quotaIntegrity(((QuotaTab*)pVtab)->pStore, pzErr);
}
#endif

static sqlite3_module quotaModule = {
#if SQLITE_VERSION_NUMBER>=3044000
  /* iVersion      */ 4,
#else
  /* iVersion      */ 3,
#endif
  /* xCreate       */ vtabCreate,
  /* xConnect      */ vtabConnect,
  /* xBestIndex    */ vtabBestIndex,
  /* xDisconnect   */ vtabDisconnect,
  /* xDestroy      */ vtabDestroy,
  /* xOpen         */ vtabOpen,
  /* xClose        */ vtabClose,
  /* xFilter       */ vtabFilter,
  /* xNext         */ vtabNext,
  /* xEof          */ vtabEof,
  /* xColumn       */ vtabColumn,
  /* xRowid        */ vtabRowid,
  /* xUpdate       */ vtabUpdateMethod,
  /* xBegin        */ 0,
  /* xSync         */ 0,
  /* xCommit       */ 0,
  /* xRollback     */ 0,
  /* xFindFunction */ 0,
  /* xRename       */ vtabRename,
  /* xSavepoint    */ 0,
  /* xRelease      */ 0,
  /* xRollbackTo   */ 0,
  /* xShadowName   */ vtabShadowName,
#if SQLITE_VERSION_NUMBER>=3044000
  /* xIntegrity    */ vtabIntegrity,
#endif
};

/* Register the module; it holds one reference to pConn. */
int quotaRegisterModule(sqlite3 *db, QuotaConn *pConn){
  pConn->nRef++;
  return sqlite3_create_module_v2(db, "quota", &quotaModule, pConn, quotaConnUnref);
}
