/*
** functions.h: the SQL functions of sqlite-quota (functions.c).
*/
#ifndef QUOTA_FUNCTIONS_H
#define QUOTA_FUNCTIONS_H

#include "conn.h"

int quotaRegisterFunctions(sqlite3 *db, QuotaConn *pConn);

#endif /* QUOTA_FUNCTIONS_H */
