/*
** vtab.h: the `quota` virtual table (vtab.c).
*/
#ifndef QUOTA_VTAB_H
#define QUOTA_VTAB_H

#include "conn.h"

int quotaRegisterModule(sqlite3 *db, QuotaConn *pConn);

#endif /* QUOTA_VTAB_H */
