/*
** quota.h: the public interface of sqlite-quota for programs that compile the
** extension in (the static library libsqlite_quota.a, built with SQLITE_CORE)
** instead of loading quota.so at run time.
**
**   #include <sqlite3.h>
**   #include "quota.h"
**   sqlite3_auto_extension((void(*)(void))sqlite3_quota_init);
**
** After that every connection the program opens has the quota module and the
** quota_* functions, exactly as after `.load ./quota`.
*/
#ifndef SQLITE_QUOTA_H
#define SQLITE_QUOTA_H

#include <sqlite3.h>

#define SQLITE_QUOTA_VERSION        "0.4.0"
#define SQLITE_QUOTA_VERSION_NUMBER 3000     /* major*1000000 + minor*1000 + patch */

#ifdef __cplusplus
extern "C" {
#endif

int sqlite3_quota_init(sqlite3 *db, char **pzErrMsg,
                       const sqlite3_api_routines *pApi);

#ifdef __cplusplus
}
#endif
#endif /* SQLITE_QUOTA_H */
