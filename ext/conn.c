/*
** conn.c: the state a connection shares between its quota functions and
** its quota tables.
**
**   the clock     quota_clock() pins it; otherwise the clock of main's VFS
**                 (so a test VFS can drive it), in whole seconds
**   the tables    every connected quota table, found by schema and name
**                 (the functions use main.quota)
**   the guard     which quota call is running, if any
**   busy waits    quota_busy_timeout's handler, in short steps
**
** THE GUARD
**   A quota call runs statements on the shadow tables; a trigger on one of
**   them (a TEMP trigger of the application's, or a CHECK constraint
**   someone added to a shadow table) could call a quota function, or read
**   or write the quota table, while the outer call is half done: the inner
**   call would see counters the outer one is changing, and its statements
**   are the ones the outer call is stepping. So every entry into the
**   extension that can run statements (the functions, and the table's
**   xUpdate and xFilter) passes quotaConnEnter, which refuses it while
**   another is running. One flag, checked in one place.
**
**   The other half of trusting a call is knowing that the application made
**   it, not a database's schema: see schema.c and quotaConnCheckCaller.
*/
#include "conn.h"
#include "schema.h"
#include <stdint.h>
#include <string.h>

/* Julian day number of 1970-01-01 00:00:00, in milliseconds. */
#define UNIX_EPOCH_JD_MS ((sqlite3_int64)210866760000000LL)

/* The state of a new connection, with one reference for the caller. */
QuotaConn *quotaConnNew(sqlite3 *db){
  QuotaConn *pConn = sqlite3_malloc64(sizeof(*pConn));
  if( pConn ){
    memset(pConn, 0, sizeof(*pConn));
    pConn->db = db;
    pConn->nRef = 1;
  }
  return pConn;
}

/* Drop a reference (the destructor of every registration). */
void quotaConnUnref(void *pArg){
  QuotaConn *pConn = (QuotaConn*)pArg;
  if( ALWAYS(pConn) && --pConn->nRef<=0 ) sqlite3_free(pConn);
}

/*
** The time the functions use: the pinned clock, or the clock of the
** connection's VFS, in whole seconds since 1970.
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

/* -------------------------------------------------------- busy handler */

/*
** Waits before retry nPrior + 1 of a lock held by another connection, in
** microseconds: a few yields, then sleeps growing from 20 us to 1 ms, and
** 1 ms from then on. SQLite's own handler (sqlite3_busy_timeout) sleeps 1,
** 2, 5 ... up to 100 ms at a time, and a build with HAVE_USLEEP (Debian's)
** never less than a millisecond: a writer released for microseconds
** between another process's calls is found free far sooner this way.
*/
static const int aBusyDelayUs[] = { 0, 0, 0, 0, 20, 50, 100, 200, 500 };
#define BUSY_STEPS ((int)(sizeof(aBusyDelayUs)/sizeof(aBusyDelayUs[0])))
#define BUSY_STEP_US 1000

/* The busy handler of quota_busy_timeout: pArg is the timeout in ms. */
static int connBusyShort(void *pArg, int nPrior){
  sqlite3_int64 usLimit = (sqlite3_int64)(intptr_t)pArg * 1000;
  sqlite3_int64 usDone = 0;
  sqlite3_vfs *pVfs = sqlite3_vfs_find(0);
  int i, us;
  for(i=0; i<nPrior && i<BUSY_STEPS; i++) usDone += aBusyDelayUs[i];
  if( nPrior>BUSY_STEPS ) usDone += (sqlite3_int64)(nPrior-BUSY_STEPS)*BUSY_STEP_US;
  if( usDone>=usLimit || pVfs==0 ) return 0;
  us = nPrior<BUSY_STEPS ? aBusyDelayUs[nPrior] : BUSY_STEP_US;
  if( us>usLimit-usDone ) us = (int)(usLimit-usDone);
  pVfs->xSleep(pVfs, us);
  return 1;
}

/* Wait up to ms milliseconds for a lock in short steps (connBusyShort);
** 0 removes any busy handler. */
int quotaConnBusyTimeout(QuotaConn *pConn, int ms){
  if( ms==0 ) return sqlite3_busy_handler(pConn->db, 0, 0);
  return sqlite3_busy_handler(pConn->db, connBusyShort, (void*)(intptr_t)ms);
}

/* ----------------------------------------------------------------- tables */

void quotaConnAddTable(QuotaConn *pConn, QuotaStore *pStore){
  pStore->pNext = pConn->pTables;
  pConn->pTables = pStore;
}

/* xDisconnect: the table leaves the list (the store may live on in a
** running call, which holds its own reference). */
void quotaConnRemoveTable(QuotaConn *pConn, QuotaStore *pStore){
  QuotaStore **pp;
  for(pp=&pConn->pTables; *pp; pp=&(*pp)->pNext){
    if( *pp==pStore ){
      *pp = pStore->pNext;
      pStore->pNext = 0;
      return;
    }
  }
}

/* The connected table zDb.zName, or NULL. */
static QuotaStore *connLookup(QuotaConn *pConn, const char *zDb, const char *zName){
  QuotaStore *p;
  for(p=pConn->pTables; p; p=p->pNext){
    if( sqlite3_stricmp(p->zDb, zDb)==0 && sqlite3_stricmp(p->zName, zName)==0 ){
      return p;
    }
  }
  return 0;
}

/* Prepare (not run) a statement naming zDb.zName; SQLite connects the
** table if it exists (xConnect adds it to the list). bProbing tells
** xBestIndex that this plan is the extension's own, not a trigger's. */
static int connProbe(QuotaConn *pConn, const char *zDb, const char *zName){
  sqlite3_stmt *pStmt = 0;
  char *zSql = sqlite3_mprintf("SELECT 1 FROM \"%w\".\"%w\" WHERE 0", zDb, zName);
  int rc;
  if( zSql==0 ) return SQLITE_NOMEM;
  pConn->bProbing = 1;
  rc = sqlite3_prepare_v2(pConn->db, zSql, -1, &pStmt, 0);
  pConn->bProbing = 0;
  sqlite3_free(zSql);
  sqlite3_finalize(pStmt);
  return rc;
}

/* True when the probe failed because there is no such table. */
static int connNoSuchTable(QuotaConn *pConn, int rc){
  return rc==SQLITE_ERROR
      && sqlite3_strglob("no such table:*", sqlite3_errmsg(pConn->db))==0;
}

/*
** The connected quota table zDb.zName, connecting it if needed. *ppStore
** is NULL with SQLITE_OK when there is no such table; an error when the
** schema could not be read (a lock, say) or xConnect refused the store.
*/
int quotaConnFindTable(QuotaConn *pConn, const char *zDb, const char *zName,
                       QuotaStore **ppStore){
  int rc = SQLITE_OK;
  *ppStore = connLookup(pConn, zDb, zName);
  if( *ppStore==0 ){
    rc = connProbe(pConn, zDb, zName);
    if( connNoSuchTable(pConn, rc) ) rc = SQLITE_OK;
    *ppStore = connLookup(pConn, zDb, zName);
  }
  return rc;
}

/* After a statement on the table's store failed: true when the reason is
** that the table is gone (another connection dropped or renamed it). */
int quotaConnTableGone(QuotaConn *pConn, const char *zDb, const char *zName){
  return connNoSuchTable(pConn, connProbe(pConn, zDb, zName));
}

/* ------------------------------------------------------------------ guard */

/* Enter the extension for call zCall; SQLITE_MISUSE when another quota
** call is running on this connection (the caller words the error). */
int quotaConnEnter(QuotaConn *pConn, const char *zCall){
  if( pConn->zActive ) return SQLITE_MISUSE;
  pConn->zActive = zCall;
  return SQLITE_OK;
}

/* Leave the extension: the end of the call quotaConnEnter admitted. */
void quotaConnLeave(QuotaConn *pConn){
  pConn->zActive = 0;
}

/*
** For a call made while some statement of the caller runs (the only place
** a CHECK constraint of a schema can call it): does any schema of the
** connection call quota functions? *pzWhere gets "table 't' in schema
** 'aux'" for the first one (sqlite3_malloc'ed), or NULL. The store's own
** schema was scanned by quotaStoreRefresh and is not read again; TEMP is
** the application's own. Other schemas are read every time: a file
** attached under a name once checked may not be the same file.
*/
int quotaConnCheckCaller(QuotaConn *pConn, QuotaStore *pStore, char **pzWhere){
  sqlite3 *db = pConn->db;
  const char *zDb;
  int i, rc = SQLITE_OK;
  *pzWhere = 0;
  for(i=0; rc==SQLITE_OK && *pzWhere==0 && (zDb = sqlite3_db_name(db, i))!=0; i++){
    char *zCalls = 0, *zForeign = 0;
    if( i==1 ) continue;                                  /* temp */
    if( pStore && pStore->bSchemaScanned && sqlite3_stricmp(zDb, pStore->zDb)==0 ){
      if( pStore->zCallsQuota ){
        *pzWhere = sqlite3_mprintf("%s in schema '%s'", pStore->zCallsQuota, zDb);
        if( *pzWhere==0 ) rc = SQLITE_NOMEM;
      }
      continue;
    }
    rc = quotaSchemaScan(db, zDb, 0, 0, &zCalls, &zForeign);
    if( rc==SQLITE_OK && zCalls ){
      *pzWhere = sqlite3_mprintf("%s in schema '%s'", zCalls, zDb);
      if( *pzWhere==0 ) rc = SQLITE_NOMEM;
    }
    sqlite3_free(zCalls);
    sqlite3_free(zForeign);
  }
  return rc;
}
