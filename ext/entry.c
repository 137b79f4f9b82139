/*
** entry.c: the entry point of sqlite-quota.
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
** README.md and doc/ are the reference; doc/internals.md describes the
** files and the flow of a call.
**
** Loading twice on one connection is harmless: through SQL load_extension()
** SQLite refuses to replace functions while the loading statement runs
** (SQLITE_BUSY), so init first asks whether quota_version() is already ours.
*/
#include "functions.h"
#include "vtab.h"
#ifndef SQLITE_CORE
SQLITE_EXTENSION_INIT1
#endif
#include <string.h>

/* The oldest SQLite sqlite-quota is built and tested for (Debian 12). */
#define QUOTA_MIN_SQLITE 3040000

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

/*
** The entry point: `.load ./quota`, load_extension('./quota'), or
** sqlite3_auto_extension() with SQLITE_CORE. Registers the module and the
** functions, sharing one QuotaConn between them.
*/
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
  if( sqlite3_libversion_number()<QUOTA_MIN_SQLITE ){
    if( pzErrMsg ){
      *pzErrMsg = sqlite3_mprintf(
          "sqlite-quota needs SQLite 3.40.0 or later; this is %s",
          sqlite3_libversion());
    }
    return SQLITE_ERROR;
  }
  if( quotaAlreadyLoaded(db) ) return SQLITE_OK;
  pConn = quotaConnNew(db);
  if( pConn==0 ) return SQLITE_NOMEM;
  rc = quotaRegisterModule(db, pConn);
  if( rc==SQLITE_OK ) rc = quotaRegisterFunctions(db, pConn);
  quotaConnUnref(pConn);      /* the registrations hold their own */
  if( rc!=SQLITE_OK && pzErrMsg ){
    *pzErrMsg = sqlite3_mprintf("sqlite-quota: %s", sqlite3_errstr(rc));
  }
  return rc;
}
