/*
** quota.c: the entry point of sqlite-quota, and the state each connection
** shares between its functions and its quota table.
**
** sqlite-quota turns a SQLite database into a quota ledger: per-key limits
** over lifetime balances, calendar periods and rolling windows; two-phase
** reservations; idempotent retries; an audit ledger. Usage:
**
**   .load ./quota
**   CREATE VIRTUAL TABLE quota USING quota;
**   INSERT INTO quota(key, cap, period) VALUES ('sk-live-1', 100000, 'month');
**   SELECT quota_reserve('sk-live-1', 4000, 'req-7f3a');   -- hold id or NULL
**   SELECT quota_settle(1, 2712);                          -- units charged
**
** The reference is README.md and doc/; the contract is SPEC.md.
**
** Loading twice on one connection is harmless: through SQL load_extension()
** SQLite refuses to replace functions while the loading statement runs
** (SQLITE_BUSY), so init first asks whether quota_version() is already ours.
*/
#include "quota_int.h"
#ifndef SQLITE_CORE
SQLITE_EXTENSION_INIT1
#endif
#include <string.h>
#include <math.h>

/* Julian day number of 1970-01-01 00:00:00, in milliseconds. */
#define UNIX_EPOCH_JD_MS ((sqlite3_int64)210866760000000LL)

void quotaConnUnref(void *pArg){
  QuotaConn *pConn = (QuotaConn*)pArg;
  if( ALWAYS(pConn) && --pConn->nRef<=0 ) sqlite3_free(pConn);
}

/*
** The time the functions use: the pinned clock, or the clock of the
** connection's VFS (so a test VFS can drive it), in whole seconds.
*/
sqlite3_int64 quotaNow(QuotaConn *pConn){
  sqlite3_vfs *pVfs = pConn->pVfs;
  sqlite3_int64 ms = 0;
  if( pConn->bPinned ) return pConn->iPinned;
  if( pVfs==0 ){
    /* main's VFS is fixed for the life of the connection: ask once (each
    ** file control takes the connection's mutex) */
    sqlite3_file_control(pConn->db, "main", SQLITE_FCNTL_VFS_POINTER, &pVfs);
    if( NEVER(pVfs==0) ) pVfs = sqlite3_vfs_find(0);
    pConn->pVfs = pVfs;
  }
  if( pVfs->iVersion>=2 && pVfs->xCurrentTimeInt64 ){
    pVfs->xCurrentTimeInt64(pVfs, &ms);
  }else{
    double r = 0.0;
    pVfs->xCurrentTime(pVfs, &r);
    ms = (sqlite3_int64)(r*86400000.0);
  }
  return ms/1000 - UNIX_EPOCH_JD_MS/1000;
}

/*
** The one rule for integer arguments and columns: an INTEGER, or a REAL
** whose value is a whole number in the 64-bit range. Returns 0 and sets
** *pOut when v is one; text, blobs and NULL never are.
*/
int quotaValueInt(sqlite3_value *v, sqlite3_int64 *pOut){
  if( sqlite3_value_type(v)==SQLITE_INTEGER ){
    *pOut = sqlite3_value_int64(v);
    return 0;
  }
  if( sqlite3_value_type(v)==SQLITE_FLOAT ){
    double r = sqlite3_value_double(v);
    if( r>=-9223372036854775808.0 && r<9223372036854775808.0 && r==floor(r) ){
      *pOut = (sqlite3_int64)r;
      return 0;
    }
  }
  return 1;
}

/* a + b, saturating at the ends of the 64-bit range. */
sqlite3_int64 quotaAddSat(sqlite3_int64 a, sqlite3_int64 b){
  if( b>0 && a>LARGEST_INT64-b ) return LARGEST_INT64;
  if( b<0 && a<(-LARGEST_INT64-1)-b ) return -LARGEST_INT64-1;
  return a+b;
}

/* a - b, saturating at the ends of the 64-bit range. */
sqlite3_int64 quotaSubSat(sqlite3_int64 a, sqlite3_int64 b){
  if( b<0 ){
    return b==(-LARGEST_INT64-1) ? (a>=0 ? LARGEST_INT64 : a-b) : quotaAddSat(a, -b);
  }
  return quotaAddSat(a, -b);
}


/*
** Any value SQLite's datetime() takes, as whole seconds since 1970 (a
** fraction is dropped; a BLOB is read as its text, as datetime() reads
** it). SQLITE_MISMATCH when datetime() gives NULL or a
** year outside 0000-9999. 'now' is the connection's clock (quota_clock),
** not SQLite's, so a pinned clock governs it too.
*/
int quotaParseTime(QuotaConn *pConn, sqlite3_value *pVal, sqlite3_int64 *pT){
  sqlite3_stmt *pStmt = 0;
  const char *z = (const char*)sqlite3_value_text(pVal);
  int rc;
  if( sqlite3_value_type(pVal)==SQLITE_TEXT && z && sqlite3_stricmp(z, "now")==0 ){
    *pT = quotaNow(pConn);
    return SQLITE_OK;
  }
  rc = sqlite3_prepare_v2(pConn->db, "SELECT CAST(strftime('%s', ?1) AS INTEGER)",
                          -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_value(pStmt, 1, pVal);
    rc = sqlite3_step(pStmt);
    if( rc==SQLITE_ROW ){
      rc = SQLITE_OK;
      if( sqlite3_column_type(pStmt, 0)==SQLITE_NULL ){
        rc = SQLITE_MISMATCH;
      }else{
        *pT = sqlite3_column_int64(pStmt, 0);
        if( *pT<QUOTA_TIME_MIN || NEVER(*pT>QUOTA_TIME_MAX) ) rc = SQLITE_MISMATCH;
      }
    }
  }
  sqlite3_finalize(pStmt);
  return rc;
}

/*
** True when this connection already has our functions (a second load).
** It must not take a lock nor leave an error behind: sqlite3_open() runs
** auto extensions and then fails with the connection's error code, and a
** writer may hold the database. Newer SQLite (3.54) reads the schema to
** prepare even a table-less SELECT, so the probe is PRAGMA function_list,
** which reads none; sqlite3_exec of nothing then resets the error code.
** A build without introspection pragmas returns no rows: we register, as
** on a first load.
*/
static int quotaAlreadyLoaded(sqlite3 *db){
  sqlite3_stmt *pStmt = 0;
  int bFound = 0;
  if( sqlite3_prepare_v2(db, "PRAGMA function_list", -1, &pStmt, 0)==SQLITE_OK ){
    while( !bFound && sqlite3_step(pStmt)==SQLITE_ROW ){
      const char *zName = (const char*)sqlite3_column_text(pStmt, 0);
      bFound = zName!=0 && strcmp(zName, "quota_version")==0;
    }
  }
  sqlite3_finalize(pStmt);
  sqlite3_exec(db, "", 0, 0, 0);
  return bFound;
}

#ifdef _WIN32
__declspec(dllexport)
#endif
__attribute__((visibility("default")))
int sqlite3_quota_init(
  sqlite3 *db,
  char **pzErrMsg,
  const sqlite3_api_routines *pApi
){
  QuotaConn *pConn;
  int rc;
#ifndef SQLITE_CORE
  /* One copy of this library holds one API pointer. Loaded a second time
  ** into a different SQLite library in the same process (better-sqlite3
  ** and node:sqlite side by side), it would send the first library's calls
  ** into the second: refuse instead of crashing later. */
  if( sqlite3_api!=0 && sqlite3_api!=pApi ){
    if( pzErrMsg ){
      *pzErrMsg = pApi->mprintf("sqlite-quota is already loaded into another "
          "SQLite library in this process; load it into one library only");
    }
    return SQLITE_ERROR;
  }
  SQLITE_EXTENSION_INIT2(pApi);
#else
  (void)pApi;
#endif
  if( sqlite3_libversion_number()<3034000 ){
    if( pzErrMsg ){
      *pzErrMsg = sqlite3_mprintf(
          "sqlite-quota needs SQLite 3.34.0 or later; this is %s",
          sqlite3_libversion());
    }
    return SQLITE_ERROR;
  }
  if( quotaAlreadyLoaded(db) ) return SQLITE_OK;
  pConn = sqlite3_malloc64(sizeof(*pConn));
  if( pConn==0 ) return SQLITE_NOMEM;
  memset(pConn, 0, sizeof(*pConn));
  pConn->db = db;
  pConn->nRef = 1;            /* held by this function until registered */
  rc = quotaRegisterModule(db, pConn);
  if( rc==SQLITE_OK ) rc = quotaRegisterFunctions(db, pConn);
  quotaConnUnref(pConn);
  if( rc!=SQLITE_OK && pzErrMsg ){
    *pzErrMsg = sqlite3_mprintf("sqlite-quota: %s", sqlite3_errstr(rc));
  }
  return rc;
}
