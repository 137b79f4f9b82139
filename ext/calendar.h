/*
** calendar.h: time arithmetic on whole seconds since 1970-01-01 UTC.
** Pure functions: no SQLite calls, no allocation (calendar.c).
*/
#ifndef QUOTA_CALENDAR_H
#define QUOTA_CALENDAR_H

#include "util.h"

typedef struct QuotaCivil QuotaCivil;
struct QuotaCivil {
  sqlite3_int64 y;          /* year */
  int m, d;                 /* month 1-12, day 1-31 */
  int H, M, S;              /* time of day */
};

void quotaCalSplit(sqlite3_int64 t, QuotaCivil *p);
sqlite3_int64 quotaCalJoin(const QuotaCivil *p);

#define QUOTA_TIME_TEXT 24   /* room for 'YYYYY-MM-DD HH:MM:SS' */
void quotaCalFormat(sqlite3_int64 t, char *zOut);   /* QUOTA_TIME_TEXT bytes */
void quotaResultTime(sqlite3_context *ctx, sqlite3_int64 t);

void quotaCalBounds(int nMonths, sqlite3_int64 nFixed, sqlite3_int64 anchor,
                    sqlite3_int64 t, sqlite3_int64 *pStart, sqlite3_int64 *pEnd);

#endif /* QUOTA_CALENDAR_H */
