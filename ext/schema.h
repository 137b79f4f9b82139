/*
** schema.h: what a database's schema may hold that sqlite-quota must know
** about before it runs (schema.c).
*/
#ifndef QUOTA_SCHEMA_H
#define QUOTA_SCHEMA_H

#include "util.h"

int quotaSchemaCallsQuota(const char *zSql);
int quotaSchemaWatches(const char *zName);
int quotaSchemaScan(sqlite3 *db, const char *zDb, const char *zTable,
                    int (*xIsShadow)(const char*), char **pzCalls,
                    char **pzForeign);

#endif /* QUOTA_SCHEMA_H */
