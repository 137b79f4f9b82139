/*
** conn.h: what a connection shares between its functions and its quota
** tables (conn.c): the clock, the list of connected tables, and the guard
** that knows when a quota call is running.
*/
#ifndef QUOTA_CONN_H
#define QUOTA_CONN_H

#include "store.h"

typedef struct QuotaConn QuotaConn;
struct QuotaConn {
  sqlite3 *db;
  int nRef;                 /* registrations still holding this object */
  int bPinned;              /* true when quota_clock() pinned the clock */
  sqlite3_int64 iPinned;    /* the pinned time, when bPinned */
  int bPinnedNow;           /* ... pinned by quota_clock('now') */
  sqlite3_vfs *pVfs;        /* main's VFS, the clock; found on first use */
  QuotaStore *pTables;      /* connected quota tables, any schema and name */
  const char *zActive;      /* the quota call running now, or NULL */
  int bProbing;             /* connProbe is planning a read of a table */
};

QuotaConn *quotaConnNew(sqlite3 *db);
void quotaConnUnref(void *p);
sqlite3_int64 quotaNow(QuotaConn *pConn);
int quotaConnBusyTimeout(QuotaConn *pConn, int ms);

void quotaConnAddTable(QuotaConn *pConn, QuotaStore *pStore);
void quotaConnRemoveTable(QuotaConn *pConn, QuotaStore *pStore);
int quotaConnFindTable(QuotaConn *pConn, const char *zDb, const char *zName,
                       QuotaStore **ppStore);
int quotaConnTableGone(QuotaConn *pConn, const char *zDb, const char *zName);

int quotaConnEnter(QuotaConn *pConn, const char *zCall);
void quotaConnLeave(QuotaConn *pConn);
int quotaConnCheckCaller(QuotaConn *pConn, QuotaStore *pStore, char **pzWhere);

#endif /* QUOTA_CONN_H */
