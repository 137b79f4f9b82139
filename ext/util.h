/*
** util.h: the bottom layer of sqlite-quota, included by every other file.
**
** It holds what every layer needs and nothing that knows about quotas:
** the SQLite API pointer of a loadable extension, the ALWAYS/NEVER
** markers, the range of times, and the rules for reading values that SQL
** hands us (util.c).
**
** The layers, each including only the ones below it:
**
**   entry.c                     the entry point: registers the two below
**   functions.c   vtab.c        the SQL functions; the `quota` table
**   integrity.c                 every invariant of a store, checked
**   account.c   events.c        charges, holds and sweeps over a chain of
**                               keys; alerts, shadow mode and the events
**   conn.c                      per-connection state: clock, tables, the
**                               guard that refuses a call inside a call
**   period.c                    the kinds of period, one table row each
**   store.c                     the shadow tables: every statement, every
**                               cache, the transaction around a call
**   util.c  calendar.c  schema.c   values, time arithmetic, schema checks
**
** doc/internals.md walks a call through these layers.
*/
#ifndef QUOTA_UTIL_H
#define QUOTA_UTIL_H

#include "sqlite3ext.h"
#ifndef SQLITE_CORE
SQLITE_EXTENSION_INIT3
#endif
#include "quota.h"            /* the public header: the version */

#define LARGEST_INT64  ((sqlite3_int64)0x7fffffffffffffffLL)
#define SMALLEST_INT64 (-LARGEST_INT64-1)

/*
** Conditions the code itself guarantees, marked the way SQLite marks them:
** ALWAYS(X) for one that is always true, NEVER(X) for one that is never
** true. Coverage builds (QUOTA_COVERAGE_TEST) make them constants, so that
** branch coverage counts only branches a test can take; QUOTA_DEBUG builds
** (make asan) assert them; other builds keep the check as written, so a
** broken guarantee still takes the safe path instead of stopping the host.
*/
#if defined(QUOTA_COVERAGE_TEST)
# define ALWAYS(X) (1)
# define NEVER(X)  (0)
#elif defined(QUOTA_DEBUG)
# include <assert.h>
# define ALWAYS(X) ((X)?1:(assert(0),0))
# define NEVER(X)  ((X)?(assert(0),1):0)
#else
# define ALWAYS(X) (X)
# define NEVER(X)  (X)
#endif

#define QUOTA_STR_(x) #x
#define QUOTA_STR(x) QUOTA_STR_(x)
#define QUOTA_ARRAYSIZE(a) ((int)(sizeof(a)/sizeof((a)[0])))

/* Times are kept within the years 0000 to 9999, the range of the text
** form 'YYYY-MM-DD HH:MM:SS'. A stored period start may lie up to one
** period (at most a year) outside: QUOTA_TIME_SLACK. */
#define QUOTA_TIME_MIN   ((sqlite3_int64)-62167219200LL)  /* 0000-01-01 */
#define QUOTA_TIME_MAX   ((sqlite3_int64)253402300799LL)  /* 9999-12-31 23:59:59 */
#define QUOTA_TIME_SLACK ((sqlite3_int64)400*86400)

int quotaValueInt(sqlite3_value *v, sqlite3_int64 *pOut);
const char *quotaValueText(sqlite3_value *v, char *zBuf, int *pbNul);
int quotaValueDuration(sqlite3_value *v, sqlite3_int64 *pSecs);
int quotaParseDurationText(const char *z, sqlite3_int64 *pSecs, int *pUnitMul);
sqlite3_int64 quotaAddSat(sqlite3_int64 a, sqlite3_int64 b);
sqlite3_int64 quotaSubSat(sqlite3_int64 a, sqlite3_int64 b);
int quotaParseTime(sqlite3 *db, sqlite3_int64 now, sqlite3_value *pVal,
                   sqlite3_int64 *pT);
int quotaStepDone(sqlite3_stmt *pStmt);
char *quotaValueDescribe(sqlite3_value *v);

/* Room quotaValueText needs for the decimal text of a number. */
#define QUOTA_NUMBER_TEXT 24

/* Alert lists (the quota table's `alert` column): at most QUOTA_ALERT_MAX
** thresholds, each kept as N (units) or -N (N percent of cap); the
** canonical text fits QUOTA_ALERT_TEXT bytes. */
#define QUOTA_ALERT_MAX  16
#define QUOTA_ALERT_TEXT 400
int quotaParseAlert(const char *z, sqlite3_int64 *aOut, int *pnOut, char *zCanon);
void quotaAlertItem(sqlite3_int64 v, char *zOut);   /* QUOTA_NUMBER_TEXT bytes */
void quotaAlertText(const sqlite3_int64 *a, int n, char *zOut);

#endif /* QUOTA_UTIL_H */
