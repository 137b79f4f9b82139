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
**   DELETE FROM quota WHERE key = 'sk-live-1';
**
** Columns: key, cap, period, anchor, parent, retention, used, reserved,
** remaining, period_start, resets_at, retry_after, note. reserved and the
** columns after it are computed and read-only; key can only be inserted.
** Reads show every value as of the connection's clock (quota_clock): a
** period that ended reads as rolled over, an expired hold as released, even
** before a writing call has stored that.
**
** The data lives in shadow tables (store.c), created by CREATE VIRTUAL TABLE
** and dropped by DROP TABLE. The connection's functions act on the table
** named "quota" in schema "main": xConnect registers it with them.
*/
#include "quota_int.h"
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
#define QCOL_COUNT        13

static const char *const azColName[QCOL_COUNT] = {
  "key", "cap", "period", "anchor", "parent", "retention", "used", "reserved",
  "remaining", "period_start", "resets_at", "retry_after", "note"
};

/* Plans chosen by xBestIndex. */
#define QPLAN_SCAN   0
#define QPLAN_KEY    1
#define QPLAN_ROWID  2

typedef struct QuotaCursor QuotaCursor;
struct QuotaCursor {
  sqlite3_vtab_cursor base;   /* Base class - must be first */
  sqlite3_stmt *pStmt;        /* over %_keys, prepared by xFilter */
  int bEof;
  QuotaKey k;                 /* the current row, effective at `now` */
  sqlite3_int64 now;          /* the clock when the scan started */
  int bComputed;              /* k holds effective values for this row */
};

/* Statement of the cursor: the key columns (QUOTA_KEY_COLUMNS) and the
** sweep state that store.c reads (quotaReadKeyRow); the rest are for
** display. */
#define QCUR_KEY       (QUOTA_KEY_COLUMNS+3)
#define QCUR_PERIOD    (QUOTA_KEY_COLUMNS+4)
#define QCUR_PARENT    (QUOTA_KEY_COLUMNS+5)
#define QCUR_RETENTION (QUOTA_KEY_COLUMNS+6)
#define QCUR_NOTE      (QUOTA_KEY_COLUMNS+7)

static int vtabError(QuotaTab *p, int rc, const char *zFmt, ...){
  /* Every message starts with the table's name: "quota: ..." */
  va_list ap;
  char *z;
  va_start(ap, zFmt);
  z = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  sqlite3_free(p->base.zErrMsg);
  p->base.zErrMsg = sqlite3_mprintf("%s: %z", p->zName, z);
  return p->base.zErrMsg ? rc : SQLITE_NOMEM;
}

/* ------------------------------------------------------------- options */

/* Parse one "name=value" argument of CREATE VIRTUAL TABLE. */
static int vtabOption(QuotaTab *p, const char *zArg, char **pzErr){
  static const struct { const char *zName; int bForever; } aOpt[] = {
    {"hold_ttl", 0}, {"idempotency", 0}, {"retention", 1}, {"purge_limit", 0},
  };
  const char *zEq = strchr(zArg, '=');
  char zVal[64];
  static const char zClock[] = "clock";
  int nName, nVal, i, nUnit = 1;
  sqlite3_int64 v;
  while( NEVER(*zArg==' ') ) zArg++;
  if( zEq==0 ){
    *pzErr = sqlite3_mprintf("%s: option must be name=value: %s", p->zName, zArg);
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
    *pzErr = sqlite3_mprintf("%s: option value too long: %.*s", p->zName, nName, zArg);
    return SQLITE_ERROR;
  }
  memcpy(zVal, zEq, nVal);
  zVal[nVal] = 0;
  if( nName==(int)strlen(zClock) && sqlite3_strnicmp(zArg, zClock, nName)==0 ){
    /* clock=pinned: every write must run under quota_clock(time), so that
    ** an engine that replays statements on several nodes gets one result */
    if( sqlite3_stricmp(zVal, "pinned")==0 ){
      p->bClockPinned = 1;
    }else if( sqlite3_stricmp(zVal, "system")==0 ){
      p->bClockPinned = 0;
    }else{
      *pzErr = sqlite3_mprintf("%s: option clock must be 'system' or 'pinned': '%s'",
                               p->zName, zVal);
      return SQLITE_ERROR;
    }
    return SQLITE_OK;
  }
  for(i=0; i<(int)(sizeof(aOpt)/sizeof(aOpt[0])); i++){
    if( (int)strlen(aOpt[i].zName)==nName
     && sqlite3_strnicmp(zArg, aOpt[i].zName, nName)==0 ) break;
  }
  if( i>=(int)(sizeof(aOpt)/sizeof(aOpt[0])) ){
    *pzErr = sqlite3_mprintf("%s: unknown option '%.*s'", p->zName, nName, zArg);
    return SQLITE_ERROR;
  }
  if( aOpt[i].bForever && sqlite3_stricmp(zVal, "forever")==0 ){
    v = -1;
  }else if( quotaParseDurationText(zVal, &v, &nUnit) || (v<=0 && i!=2)
         || (i==3 && nUnit!=1) || (i==3 && strspn(zVal, "0123456789")!=strlen(zVal)) ){
    *pzErr = sqlite3_mprintf("%s: option %s must be a %s: '%s'", p->zName,
        aOpt[i].zName, i==3 ? "positive number of rows" :
        i==2 ? "duration or 'forever'" : "positive duration", zVal);
    return SQLITE_ERROR;
  }
  switch( i ){
    case 0: p->nHoldTtl = v; break;
    case 1: p->nIdem = v; break;
    case 2: p->nRetention = v; break;
    default: p->nPurgeLimit = v; break;
  }
  return SQLITE_OK;
}

/* ----------------------------------------------------- create, connect */

static int vtabInit(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                    sqlite3_vtab **ppVtab, char **pzErr, int bCreate){
  QuotaConn *pConn = (QuotaConn*)pAux;
  QuotaTab *p;
  int rc, i;
  *ppVtab = 0;
  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->db = db;
  p->pConn = pConn;
  p->nRef = 1;
  p->nHoldTtl = (sqlite3_int64)15*60;
  p->nIdem = (sqlite3_int64)24*3600;
  p->nRetention = -1;
  p->nPurgeLimit = 10000;
  p->zDb = sqlite3_mprintf("%s", argv[1]);
  p->zName = sqlite3_mprintf("%s", argv[2]);     /* first: messages use it */
  rc = (p->zDb && p->zName) ? quotaStmtOpen(p) : SQLITE_NOMEM;
  for(i=3; rc==SQLITE_OK && i<argc; i++) rc = vtabOption(p, argv[i], pzErr);
  if( rc==SQLITE_OK ){
    /* INSERT OR IGNORE skips a refused row; see vtabInsert for REPLACE. */
    rc = sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_declare_vtab(db, "CREATE TABLE x(key TEXT, cap INTEGER,"
        " period TEXT, anchor TEXT, parent TEXT, retention INTEGER,"
        " used INTEGER, reserved INTEGER, remaining INTEGER, period_start TEXT,"
        " resets_at TEXT, retry_after INTEGER, note)");
  }
  if( rc==SQLITE_OK && bCreate ){
    rc = quotaStoreCreate(db, p->zDb, p->zName);
    if( rc!=SQLITE_OK && ALWAYS(*pzErr==0) ){
      *pzErr = sqlite3_mprintf("quota: %s", sqlite3_errmsg(db));
    }
  }else if( rc==SQLITE_OK ){
    /* A store written by a newer sqlite-quota may hold what this build
    ** cannot keep consistent: refuse it rather than guess. */
    sqlite3_int64 iSchema = 0;
    rc = quotaMetaGet(p, "schema", &iSchema);
    if( rc==SQLITE_OK && iSchema>QUOTA_SCHEMA_VERSION ){
      *pzErr = sqlite3_mprintf("%s: this store has schema %lld, written by a "
          "newer sqlite-quota; this build (%s) reads schema %d: upgrade "
          "sqlite-quota", p->zName, iSchema, SQLITE_QUOTA_VERSION,
          QUOTA_SCHEMA_VERSION);
      rc = SQLITE_ERROR;
    }else if( rc==SQLITE_OK && iSchema<1 ){
      *pzErr = sqlite3_mprintf("%s: cannot read the store: quota_meta says "
          "schema %lld", p->zName, iSchema);
      rc = SQLITE_CORRUPT_VTAB;
    }else if( rc==SQLITE_OK && iSchema<QUOTA_SCHEMA_VERSION ){
      if( sqlite3_db_readonly(db, p->zDb)==1 ){
        *pzErr = sqlite3_mprintf("%s: this store has schema %lld and needs an "
            "upgrade to schema %d, which writes: open the database read-write "
            "once", p->zName, iSchema, QUOTA_SCHEMA_VERSION);
        rc = SQLITE_READONLY;
      }else{
        rc = quotaStoreUpgrade(p, iSchema, pzErr);
      }
    }else if( rc!=SQLITE_OK && ALWAYS(*pzErr==0) ){
      *pzErr = sqlite3_mprintf("%s: cannot read the store: %s", p->zName,
          rc==SQLITE_CORRUPT_VTAB ? "quota_meta has no schema row"
                                  : sqlite3_errmsg(db));
    }
  }
  if( rc!=SQLITE_OK ){
    quotaStmtClose(p);
    sqlite3_free(p->zDb);
    sqlite3_free(p->zName);
    sqlite3_free(p);
    return rc;
  }
  if( sqlite3_stricmp(p->zDb, "main")==0 && sqlite3_stricmp(p->zName, "quota")==0 ){
    pConn->pTab = p;
  }
  *ppVtab = &p->base;
  return SQLITE_OK;
}

static int vtabCreate(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                      sqlite3_vtab **ppVtab, char **pzErr){
  return vtabInit(db, pAux, argc, argv, ppVtab, pzErr, 1);
}

static int vtabConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                       sqlite3_vtab **ppVtab, char **pzErr){
  return vtabInit(db, pAux, argc, argv, ppVtab, pzErr, 0);
}

/*
** A call holds a reference for its whole length (functions.c): SQLite can
** disconnect the table in the middle of one, when another connection
** changed the schema and a nested statement re-reads it. The statements the
** call is stepping, and the table, must then outlive the disconnect.
*/
void quotaTabUnref(QuotaTab *p){
  if( --p->nRef>0 ) return;
  quotaStmtClose(p);
  sqlite3_free(p->zDb);
  sqlite3_free(p->zName);
  sqlite3_free(p);
}

static int vtabDisconnect(sqlite3_vtab *pVtab){
  QuotaTab *p = (QuotaTab*)pVtab;
  if( p->pConn->pTab==p ) p->pConn->pTab = 0;
  quotaTabUnref(p);
  return SQLITE_OK;
}

static int vtabDestroy(sqlite3_vtab *pVtab){
  QuotaTab *p = (QuotaTab*)pVtab;
  int rc;
  /* Statements would keep the tables busy. The array stays: when the
  ** drop fails the table stays, and is used again. */
  quotaStmtFinalizeAll(p);
  rc = quotaStoreDestroy(p->db, p->zDb, p->zName);
  if( rc!=SQLITE_OK ) return rc;
  return vtabDisconnect(pVtab);
}

static int vtabRename(sqlite3_vtab *pVtab, const char *zNew){
  QuotaTab *p = (QuotaTab*)pVtab;
  char *zName;
  int rc;
  quotaStmtFinalizeAll(p);
  rc = quotaStoreRename(p->db, p->zDb, p->zName, zNew);
  if( rc!=SQLITE_OK ){
    char *zMsg = sqlite3_mprintf("%s", sqlite3_errmsg(p->db));
    vtabError(p, rc, "cannot rename to %s: %s", zNew, zMsg ? zMsg : "");
    sqlite3_free(zMsg);
    return rc;
  }
  zName = sqlite3_mprintf("%s", zNew);
  if( zName==0 ) return SQLITE_NOMEM;
  sqlite3_free(p->zName);
  p->zName = zName;
  if( p->pConn->pTab==p ) p->pConn->pTab = 0;
  if( sqlite3_stricmp(p->zDb, "main")==0 && sqlite3_stricmp(p->zName, "quota")==0 ){
    p->pConn->pTab = p;
  }
  return SQLITE_OK;
}

static int vtabShadowName(const char *zSuffix){
  int i;
  for(i=0; quotaShadowSuffix[i]; i++){
    if( sqlite3_stricmp(zSuffix, quotaShadowSuffix[i])==0 ) return 1;
  }
  return 0;
}

/* -------------------------------------------------------------- reading */

static int vtabBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  int i;
  (void)pVtab;
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

static int vtabOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  QuotaCursor *pCur = sqlite3_malloc64(sizeof(*pCur));
  (void)pVtab;
  if( pCur==0 ) return SQLITE_NOMEM;
  memset(pCur, 0, sizeof(*pCur));
  *ppCur = &pCur->base;
  return SQLITE_OK;
}

static int vtabClose(sqlite3_vtab_cursor *cur){
  QuotaCursor *pCur = (QuotaCursor*)cur;
  sqlite3_finalize(pCur->pStmt);
  sqlite3_free(pCur);
  return SQLITE_OK;
}

/* Step the cursor's statement and load the row into pCur->k. */
static int vtabStep(QuotaCursor *pCur){
  QuotaTab *p = (QuotaTab*)pCur->base.pVtab;
  int rc = sqlite3_step(pCur->pStmt);
  pCur->bComputed = 0;
  if( rc==SQLITE_ROW ){
    pCur->bEof = 0;
    return quotaReadKeyRow(p, pCur->pStmt, 1, &pCur->k);
  }
  pCur->bEof = 1;
  return rc==SQLITE_DONE ? SQLITE_OK : rc;
}

static int vtabFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr,
                      int argc, sqlite3_value **argv){
  QuotaCursor *pCur = (QuotaCursor*)cur;
  QuotaTab *p = (QuotaTab*)cur->pVtab;
  char *zSql;
  int rc;
  (void)idxStr; (void)argc;
  sqlite3_finalize(pCur->pStmt);
  pCur->pStmt = 0;
  zSql = sqlite3_mprintf(
      "SELECT k.id, k.cap, k.kind, k.len, k.anchor, k.parent, k.used,"
      " k.reserved, k.pstart, k.oldest, k.wtotal,"
      " (SELECT value FROM \"%w\".\"%w_meta\" WHERE name='swept'),"
      " (SELECT value FROM \"%w\".\"%w_meta\" WHERE name='sweepid'), NULL,"
      " k.key, k.period, p.key, k.retention, n.note"
      " FROM \"%w\".\"%w_keys\" AS k"
      " LEFT JOIN \"%w\".\"%w_keys\" AS p ON p.id=k.parent"
      " LEFT JOIN \"%w\".\"%w_notes\" AS n ON n.id=k.id %s ORDER BY k.id",
      p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName,
      p->zDb, p->zName,
      idxNum==QPLAN_KEY ? "WHERE k.key=?1" :
      idxNum==QPLAN_ROWID ? "WHERE k.id=?1" : "");
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(p->db, zSql, -1, &pCur->pStmt, 0);
  sqlite3_free(zSql);
  if( rc!=SQLITE_OK ) return rc;
  if( idxNum!=QPLAN_SCAN ) sqlite3_bind_value(pCur->pStmt, 1, argv[0]);
  pCur->now = quotaNow(p->pConn);
  return vtabStep(pCur);
}

static int vtabNext(sqlite3_vtab_cursor *cur){
  return vtabStep((QuotaCursor*)cur);
}

static int vtabEof(sqlite3_vtab_cursor *cur){
  return ((QuotaCursor*)cur)->bEof;
}

static int vtabRowid(sqlite3_vtab_cursor *cur, sqlite_int64 *pRowid){
  *pRowid = ((QuotaCursor*)cur)->k.id;
  return SQLITE_OK;
}

static void resultTimeText(sqlite3_context *ctx, sqlite3_int64 t){
  char zTime[QUOTA_TIME_TEXT];
  quotaCalFormat(t, zTime);
  sqlite3_result_text(ctx, zTime, -1, SQLITE_TRANSIENT);
}

static int vtabColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int iCol){
  QuotaCursor *pCur = (QuotaCursor*)cur;
  QuotaTab *p = (QuotaTab*)cur->pVtab;
  QuotaKey *k = &pCur->k;
  sqlite3_stmt *pStmt = pCur->pStmt;
  int rc = SQLITE_OK;
  /* An UPDATE asks only for the columns it changes; the rest stay as they
  ** are (xUpdate sees sqlite3_value_nochange()). */
  if( sqlite3_vtab_nochange(ctx) ) return SQLITE_OK;
  if( iCol>=QCOL_USED && iCol<=QCOL_RETRY_AFTER && !pCur->bComputed ){
    rc = quotaEffective(p, k, pCur->now);
    if( rc!=SQLITE_OK ) return rc;
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
      if( k->bAnchor ) resultTimeText(ctx, k->anchor);
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
      if( k->bCap ){
        sqlite3_int64 r = k->cap - k->used;
        r = (k->used>=k->cap || k->reserved>=r) ? 0 : r - k->reserved;
        sqlite3_result_int64(ctx, r);
      }
      break;
    case QCOL_PERIOD_START:
      if( k->eKind!=QUOTA_LIFETIME && k->eKind!=QUOTA_ROLLING ){
        resultTimeText(ctx, k->pstart);
      }
      break;
    case QCOL_RESETS_AT:
      if( k->bPeriod ) resultTimeText(ctx, k->pend);
      break;
    case QCOL_RETRY_AFTER: {
      sqlite3_int64 secs = -1;
      if( k->bCap && (k->used>=k->cap || k->cap - k->used - k->reserved < 1) ){
        rc = quotaRetryAfter(p, k, 1, pCur->now, &secs);
      }
      if( rc==SQLITE_OK && secs>=0 ) sqlite3_result_int64(ctx, secs);
      break;
    }
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
  int bCap; sqlite3_int64 cap;
  int eKind; sqlite3_int64 nLen;
  char zPeriod[48];           /* canonical period text, "" for NULL */
  int bAnchor; sqlite3_int64 anchor;
  sqlite3_int64 parentId;
  int bRetention; sqlite3_int64 retention;
};

static int vtabValidateCap(QuotaTab *p, sqlite3_value *v, KeyWrite *w){
  int t = sqlite3_value_type(v);
  w->bCap = t!=SQLITE_NULL;
  if( t==SQLITE_NULL ) return SQLITE_OK;
  if( quotaValueInt(v, &w->cap)==0 && w->cap>=0 ) return SQLITE_OK;
  return vtabError(p, SQLITE_CONSTRAINT, "cap must be NULL or a non-negative integer");
}

static int vtabValidatePeriod(QuotaTab *p, sqlite3_value *v, KeyWrite *w){
  const char *z;
  int t = sqlite3_value_type(v);      /* before value_text: it may convert */
  w->zPeriod[0] = 0;
  if( t==SQLITE_NULL ){
    w->eKind = QUOTA_LIFETIME;
    w->nLen = 0;
    return SQLITE_OK;
  }
  z = (const char*)sqlite3_value_text(v);
  if( t!=SQLITE_TEXT || z==0
   || quotaParsePeriod(z, &w->eKind, &w->nLen, w->zPeriod) ){
    return vtabError(p, SQLITE_CONSTRAINT, "unknown period '%s'", z ? z : "");
  }
  return SQLITE_OK;
}

static int vtabValidateAnchor(QuotaTab *p, sqlite3_value *v, KeyWrite *w){
  int rc;
  w->bAnchor = sqlite3_value_type(v)!=SQLITE_NULL;
  if( !w->bAnchor ) return SQLITE_OK;
  rc = quotaParseTime(p->pConn, v, &w->anchor);
  if( rc==SQLITE_MISMATCH ){
    return vtabError(p, SQLITE_CONSTRAINT, "anchor is not a time: '%s'",
                     (const char*)sqlite3_value_text(v));
  }
  return rc;
}

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
  return vtabError(p, SQLITE_CONSTRAINT,
      "retention must be NULL, 'forever' or a non-negative duration");
}

static int vtabValidateUsed(QuotaTab *p, sqlite3_value *v, sqlite3_int64 *pUsed){
  int t = sqlite3_value_type(v);
  if( t==SQLITE_NULL ){ *pUsed = 0; return SQLITE_OK; }
  if( quotaValueInt(v, pUsed)==0 && *pUsed>=0 ) return SQLITE_OK;
  return vtabError(p, SQLITE_CONSTRAINT, "used must be a non-negative integer");
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
    rc = quotaLoadKeyById(p, id, &k, &bFound);
    if( rc!=SQLITE_OK ) return rc;
    nUp++;
    id = bFound ? k.parentId : 0;
  }
  if( id==selfId && selfId!=0 ) return SQLITE_OK;   /* a cycle: said later */
  if( selfId!=0 ) rc = quotaSubtreeDepth(p, selfId, &nDown);
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
  const char *zParent;
  QuotaKey k;
  sqlite3_str *pPath;
  sqlite3_int64 id;
  int bFound = 0, rc, depth = 0;
  int t = sqlite3_value_type(v);      /* before value_text: it may convert */
  *pParentId = 0;
  if( t==SQLITE_NULL ) return SQLITE_OK;
  zParent = (const char*)sqlite3_value_text(v);
  if( zParent==0 || (t!=SQLITE_TEXT && t!=SQLITE_INTEGER) ){
    return vtabError(p, SQLITE_CONSTRAINT, "parent must be a key");
  }
  if( strcmp(zParent, zKey)==0 ){
    return vtabError(p, SQLITE_CONSTRAINT, "parent chain has a cycle: %s -> %s",
                     zKey, zKey);
  }
  rc = quotaLoadKeyByName(p, zParent, &k, &bFound);
  if( rc!=SQLITE_OK ) return rc;
  if( !bFound ) return vtabError(p, SQLITE_CONSTRAINT, "no such parent key: '%s'", zParent);
  *pParentId = k.id;
  rc = vtabCheckDepth(p, &k, selfId, zKey);
  if( rc!=SQLITE_OK || selfId==0 ) return rc;
  /* Walk up from the new parent; reaching selfId closes a cycle. */
  pPath = sqlite3_str_new(p->db);
  sqlite3_str_appendf(pPath, "%s -> %s", zKey, zParent);
  id = k.parentId;
  while( rc==SQLITE_OK && !(k.id==selfId) && id!=0 && ALWAYS(depth<QUOTA_MAX_DEPTH) ){
    char *zName = 0;
    depth++;
    rc = quotaLoadKeyById(p, id, &k, &bFound);
    if( rc==SQLITE_OK && bFound ) rc = quotaKeyName(p, k.id, &zName);
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

/* Bind the settings of w to the %_keys INSERT / full UPDATE statement. */
static void vtabBindSettings(sqlite3_stmt *pStmt, const KeyWrite *w){
  if( w->bCap ) sqlite3_bind_int64(pStmt, 2, w->cap); else sqlite3_bind_null(pStmt, 2);
  if( w->zPeriod[0] ){
    sqlite3_bind_text(pStmt, 3, w->zPeriod, -1, SQLITE_TRANSIENT);
  }else{
    sqlite3_bind_null(pStmt, 3);
  }
  sqlite3_bind_int(pStmt, 4, w->eKind);
  sqlite3_bind_int64(pStmt, 5, w->nLen);
  if( w->bAnchor ) sqlite3_bind_int64(pStmt, 6, w->anchor); else sqlite3_bind_null(pStmt, 6);
  if( w->parentId ) sqlite3_bind_int64(pStmt, 7, w->parentId); else sqlite3_bind_null(pStmt, 7);
  if( w->bRetention ) sqlite3_bind_int64(pStmt, 8, w->retention); else sqlite3_bind_null(pStmt, 8);
}

/* Start of the period holding `now` under the new settings (0 for kinds
** that have none). */
static sqlite3_int64 vtabPeriodStart(const KeyWrite *w, sqlite3_int64 now){
  sqlite3_int64 s, e;
  if( w->eKind==QUOTA_LIFETIME || w->eKind==QUOTA_ROLLING ) return 0;
  quotaCalBounds(w->eKind, w->bAnchor ? w->anchor : quotaCalDefaultAnchor(w->eKind),
                 now, &s, &e);
  return s;
}

static int vtabInsert(QuotaTab *p, sqlite3_value **argv, sqlite_int64 *pRowid){
  const char *zKey;
  KeyWrite w;
  QuotaKey k;
  sqlite3_int64 used = 0, now = quotaNow(p->pConn);
  sqlite3_stmt *pStmt;
  int rc, i, bFound = 0;
  memset(&w, 0, sizeof(w));
  if( sqlite3_value_type(argv[1])!=SQLITE_NULL ){
    return vtabError(p, SQLITE_CONSTRAINT, "rowid is assigned by the table");
  }
  for(i=QCOL_RESERVED; i<=QCOL_RETRY_AFTER; i++){
    if( sqlite3_value_type(argv[2+i])!=SQLITE_NULL ){
      return vtabError(p, SQLITE_CONSTRAINT, "column %s is read-only", azColName[i]);
    }
  }
  i = sqlite3_value_type(argv[2+QCOL_KEY]);    /* before value_text */
  zKey = (const char*)sqlite3_value_text(argv[2+QCOL_KEY]);
  if( zKey==0 || zKey[0]==0 || (i!=SQLITE_TEXT && i!=SQLITE_INTEGER) ){
    return vtabError(p, SQLITE_CONSTRAINT, "key must be a non-empty text");
  }
  rc = quotaLoadKeyByName(p, zKey, &k, &bFound);
  if( rc!=SQLITE_OK ) return rc;
  if( bFound ){
    if( sqlite3_vtab_on_conflict(p->db)==SQLITE_REPLACE ){
      /* Replacing a key would drop its usage and orphan its holds:
      ** refuse, and say what to do instead. */
      return vtabError(p, SQLITE_CONSTRAINT, "key '%s' already exists "
          "(INSERT OR REPLACE would drop its usage: use UPDATE)", zKey);
    }
    return vtabError(p, SQLITE_CONSTRAINT, "key '%s' already exists", zKey);
  }
  rc = vtabValidateCap(p, argv[2+QCOL_CAP], &w);
  if( rc==SQLITE_OK ) rc = vtabValidatePeriod(p, argv[2+QCOL_PERIOD], &w);
  if( rc==SQLITE_OK ) rc = vtabValidateAnchor(p, argv[2+QCOL_ANCHOR], &w);
  if( rc==SQLITE_OK ){
    rc = vtabValidateParent(p, argv[2+QCOL_PARENT], zKey, 0, &w.parentId);
  }
  if( rc==SQLITE_OK ) rc = vtabValidateRetention(p, argv[2+QCOL_RETENTION], &w);
  if( rc==SQLITE_OK ) rc = vtabValidateUsed(p, argv[2+QCOL_USED], &used);
  if( rc!=SQLITE_OK ) return rc;
  rc = quotaStmt(p, QS_KEY_INSERT, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_TRANSIENT);
  vtabBindSettings(pStmt, &w);
  sqlite3_bind_int64(pStmt, 9, w.eKind==QUOTA_ROLLING ? 0 : used);
  sqlite3_bind_int64(pStmt, 10, 0);
  sqlite3_bind_int64(pStmt, 11, vtabPeriodStart(&w, now));
  sqlite3_bind_null(pStmt, 12);
  sqlite3_bind_int64(pStmt, 13, 0);
  rc = quotaStepDone(pStmt);
  sqlite3_clear_bindings(pStmt);
  if( rc!=SQLITE_OK ) return rc;
  *pRowid = sqlite3_last_insert_rowid(p->db);
  if( sqlite3_value_type(argv[2+QCOL_NOTE])!=SQLITE_NULL ){
    rc = quotaNoteSave(p, *pRowid, argv[2+QCOL_NOTE]);
    if( rc!=SQLITE_OK ) return rc;
  }
  if( w.eKind==QUOTA_ROLLING && used>0 ){
    rc = quotaLoadKeyById(p, *pRowid, &k, &bFound);
    if( rc==SQLITE_OK ) rc = quotaSetUsed(p, &k, used, now);
    if( rc==SQLITE_OK ) rc = quotaSaveKey(p, &k);
  }
  return rc;
}

/* Load key `id` for a change: swept and brought to `now` in the store. */
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
  int rc = quotaSweepState(p);
  if( rc==SQLITE_OK ) rc = quotaLoadKeyById(p, id, k, &bFound);
  if( rc==SQLITE_OK && NEVER(!bFound) ) rc = SQLITE_CORRUPT_VTAB;
  if( rc==SQLITE_OK ) rc = quotaEffective(p, k, now);
  return rc;
}

static int vtabLoadForWrite(QuotaTab *p, sqlite3_int64 id, sqlite3_int64 now,
                            QuotaKey *k){
  int bFound = 0;
  int rc = quotaSweep(p, now);
  if( rc==SQLITE_OK ) rc = quotaLoadKeyById(p, id, k, &bFound);
  if( rc==SQLITE_OK && NEVER(!bFound) ) rc = SQLITE_CORRUPT_VTAB;
  if( rc==SQLITE_OK ) rc = quotaNormalize(p, k, now, 1);
  return rc;
}

static int vtabDelete(QuotaTab *p, sqlite3_int64 id){
  sqlite3_int64 now = quotaNow(p->pConn);
  sqlite3_stmt *pStmt;
  QuotaKey k;
  int rc = vtabPeek(p, id, now, &k);
  if( rc!=SQLITE_OK ) return rc;
  /* A key that is still a parent cannot go. */
  rc = quotaStmt(p, QS_KEY_CHILD, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, id);
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    char *zKey = 0, *zChild = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 0));
    sqlite3_reset(pStmt);
    rc = quotaKeyName(p, id, &zKey);
    if( rc==SQLITE_OK ){
      rc = vtabError(p, SQLITE_CONSTRAINT, "cannot delete key '%s': it is the "
                     "parent of '%s'", zKey, zChild ? zChild : "");
    }
    sqlite3_free(zKey);
    sqlite3_free(zChild);
    return rc;
  }
  rc = sqlite3_reset(pStmt);
  if( rc==SQLITE_OK ) rc = vtabLoadForWrite(p, id, now, &k);
  /* Live holds of the key stop counting at its ancestors; a later settle of
  ** one of them returns NULL, as quota_record does for a deleted key. Holds
  ** of 0 units add nothing to reserved, so look whatever reserved says. */
  if( rc==SQLITE_OK ) rc = quotaOrphanHolds(p, &k, now);
  if( rc==SQLITE_OK ) rc = quotaDeleteKeyRows(p, id);
  return rc;
}

static int vtabUpdate(QuotaTab *p, sqlite3_value **argv){
  sqlite3_int64 id = sqlite3_value_int64(argv[0]);
  sqlite3_int64 now = quotaNow(p->pConn);
  sqlite3_int64 used = 0;
  QuotaKey k;
  KeyWrite w;
  char *zKey = 0;
  int rc, i;
  sqlite3_value *pOld[QCOL_COUNT];
  sqlite3_stmt *pRow = 0;

  if( sqlite3_value_type(argv[1])!=SQLITE_INTEGER
   || sqlite3_value_int64(argv[1])!=id ){
    return vtabError(p, SQLITE_CONSTRAINT, "rowid is assigned by the table");
  }
  for(i=QCOL_RESERVED; i<=QCOL_RETRY_AFTER; i++){
    if( !sqlite3_value_nochange(argv[2+i]) ){
      return vtabError(p, SQLITE_CONSTRAINT, "column %s is read-only", azColName[i]);
    }
  }
  rc = vtabPeek(p, id, now, &k);
  if( rc==SQLITE_OK ) rc = quotaKeyRow(p, id, &pRow);
  if( rc!=SQLITE_OK ) return rc;
  /* The stored values of the columns the UPDATE does not change. */
  memset(pOld, 0, sizeof(pOld));
  pOld[QCOL_KEY] = sqlite3_column_value(pRow, 0);
  pOld[QCOL_PERIOD] = sqlite3_column_value(pRow, 1);
  pOld[QCOL_RETENTION] = sqlite3_column_value(pRow, 2);
  zKey = sqlite3_mprintf("%s", sqlite3_column_text(pRow, 0));
  if( zKey==0 ) rc = SQLITE_NOMEM;
  if( rc==SQLITE_OK && !sqlite3_value_nochange(argv[2+QCOL_KEY])
   && ((sqlite3_value_type(argv[2+QCOL_KEY])!=SQLITE_TEXT
        && sqlite3_value_type(argv[2+QCOL_KEY])!=SQLITE_INTEGER)
       || strcmp((const char*)sqlite3_value_text(argv[2+QCOL_KEY]), zKey)!=0) ){
    rc = vtabError(p, SQLITE_CONSTRAINT, "column key cannot be changed");
  }
  memset(&w, 0, sizeof(w));
  /* Each setting: the new value when given, else the stored one. */
  if( rc==SQLITE_OK ){
    if( sqlite3_value_nochange(argv[2+QCOL_CAP]) ){
      w.bCap = k.bCap; w.cap = k.cap;
    }else{
      rc = vtabValidateCap(p, argv[2+QCOL_CAP], &w);
    }
  }
  if( rc==SQLITE_OK ){
    rc = vtabValidatePeriod(p, sqlite3_value_nochange(argv[2+QCOL_PERIOD])
                               ? pOld[QCOL_PERIOD] : argv[2+QCOL_PERIOD], &w);
  }
  if( rc==SQLITE_OK ){
    if( sqlite3_value_nochange(argv[2+QCOL_ANCHOR]) ){
      w.bAnchor = k.bAnchor; w.anchor = k.anchor;
    }else{
      rc = vtabValidateAnchor(p, argv[2+QCOL_ANCHOR], &w);
    }
  }
  if( rc==SQLITE_OK ){
    if( sqlite3_value_nochange(argv[2+QCOL_PARENT]) ){
      w.parentId = k.parentId;
    }else{
      rc = vtabValidateParent(p, argv[2+QCOL_PARENT], zKey, id, &w.parentId);
      if( rc==SQLITE_OK && w.parentId!=k.parentId && k.reserved>0 ){
        rc = vtabError(p, SQLITE_CONSTRAINT, "cannot change the parent of '%s' "
                       "while it holds reservations", zKey);
      }
    }
  }
  if( rc==SQLITE_OK ){
    if( sqlite3_value_nochange(argv[2+QCOL_RETENTION]) ){
      w.bRetention = sqlite3_value_type(pOld[QCOL_RETENTION])!=SQLITE_NULL;
      w.retention = sqlite3_value_int64(pOld[QCOL_RETENTION]);
    }else{
      rc = vtabValidateRetention(p, argv[2+QCOL_RETENTION], &w);
    }
  }
  if( rc==SQLITE_OK && !sqlite3_value_nochange(argv[2+QCOL_USED]) ){
    rc = vtabValidateUsed(p, argv[2+QCOL_USED], &used);
    if( rc==SQLITE_OK && sqlite3_value_type(argv[2+QCOL_USED])==SQLITE_NULL ){
      rc = vtabError(p, SQLITE_CONSTRAINT, "used must be a non-negative integer");
    }
  }
  sqlite3_reset(pRow);
  /* Everything is checked: now sweep and bring the key to now. */
  if( rc==SQLITE_OK ) rc = vtabLoadForWrite(p, id, now, &k);
  if( rc==SQLITE_OK ){
    int bUsed = !sqlite3_value_nochange(argv[2+QCOL_USED]);
    int bWasRolling = k.eKind==QUOTA_ROLLING;
    int bRolling = w.eKind==QUOTA_ROLLING;
    if( !bUsed && bWasRolling!=bRolling ){
      /* Entering or leaving a window: the usage so far is kept, as one
      ** bucket of the window or as the period's count. */
      bUsed = 1;
      used = k.used;
    }
    k.eKind = w.eKind;
    k.nLen = w.nLen;
    k.pstart = vtabPeriodStart(&w, now);
    if( bUsed ) rc = quotaSetUsed(p, &k, used, now);
    if( rc==SQLITE_OK ){
      sqlite3_stmt *pStmt;
      rc = quotaStmt(p, QS_KEY_UPDATE_ALL, &pStmt);
      if( rc==SQLITE_OK ){
        sqlite3_bind_int64(pStmt, 1, id);
        vtabBindSettings(pStmt, &w);
        sqlite3_bind_int64(pStmt, 9, k.used);
        sqlite3_bind_int64(pStmt, 10, k.reserved);
        sqlite3_bind_int64(pStmt, 11, k.pstart);
        if( k.bOldest ) sqlite3_bind_int64(pStmt, 12, k.oldest);
        else sqlite3_bind_null(pStmt, 12);
        sqlite3_bind_int64(pStmt, 13, k.wtotal);
        rc = quotaStepDone(pStmt);
        sqlite3_clear_bindings(pStmt);
      }
    }
    if( rc==SQLITE_OK && !sqlite3_value_nochange(argv[2+QCOL_NOTE]) ){
      rc = quotaNoteSave(p, id, argv[2+QCOL_NOTE]);
    }
  }
  sqlite3_free(zKey);
  return rc;
}

static int vtabUpdateMethod(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
                            sqlite_int64 *pRowid){
  QuotaTab *p = (QuotaTab*)pVtab;
  p->bCache = 0;       /* this statement may roll back what it sweeps */
  if( p->bClockPinned && !p->pConn->bPinned ){
    return vtabError(p, SQLITE_ERROR, "this table requires a pinned clock "
        "(clock=pinned): call quota_clock(time) first");
  }
  if( argc==1 ) return vtabDelete(p, sqlite3_value_int64(argv[0]));
  if( sqlite3_value_type(argv[0])==SQLITE_NULL ) return vtabInsert(p, argv, pRowid);
  return vtabUpdate(p, argv);
}

#if SQLITE_VERSION_NUMBER>=3044000
static int vtabIntegrity(sqlite3_vtab *pVtab, const char *zSchema,
                         const char *zTabName, int mFlags, char **pzErr){
  (void)zSchema; (void)zTabName; (void)mFlags;
  return quotaIntegrity((QuotaTab*)pVtab, pzErr);
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

int quotaRegisterModule(sqlite3 *db, QuotaConn *pConn){
  pConn->nRef++;
  return sqlite3_create_module_v2(db, "quota", &quotaModule, pConn, quotaConnUnref);
}
