/*
** calendar.c: the time arithmetic of sqlite-quota. Pure functions, no
** database, no allocation: everything here can be tested alone
** (test/calendar_unit.c); quotaResultTime only hands a time to SQL.
**
** Time is an integer count of seconds since 1970-01-01 00:00:00 UTC.
**
** HOW IT WORKS
**   A calendar period is a sequence of instants start(k), k any integer,
**   computed from one anchor:
**     fixed lengths (hour, day, week):  start(k) = anchor + k*len
**     months (month: 1, year: 12):      start(k) = anchor moved k*n months,
**                                       its day of month clamped to the
**                                       length of the target month, its time
**                                       of day kept.
**   Because start(k) is always computed from the anchor, never from start(k-1),
**   an anchor on the 31st gives Jan 31, Feb 28 (29), Mar 31, Apr 30 ... and
**   never drifts to the 28th. An anchor in the future needs no special case:
**   k is negative before it, so the key lives in the period of the same
**   length that ends at the anchor. (Which anchor a kind uses when the key
**   has none, a Monday for weeks, is period.c's business.)
**
**   The current period for time t is [start(k), start(k+1)) with the k for
**   which start(k) <= t < start(k+1).
*/
#include "calendar.h"
#include <string.h>

/* Days from 1970-01-01 to the civil date y-m-d (proleptic Gregorian). */
static sqlite3_int64 calDaysFromCivil(sqlite3_int64 y, int m, int d){
  sqlite3_int64 era, yoe, doy, doe;
  y -= m<=2;
  era = (y>=0 ? y : y-399) / 400;
  yoe = y - era*400;
  doy = (153*(m + (m>2 ? -3 : 9)) + 2)/5 + d - 1;
  doe = yoe*365 + yoe/4 - yoe/100 + doy;
  return era*146097 + doe - 719468;
}

/* The civil date of a day count from 1970-01-01. */
static void calCivilFromDays(sqlite3_int64 z, sqlite3_int64 *py, int *pm, int *pd){
  sqlite3_int64 era, doe, yoe, y, doy, mp;
  z += 719468;
  era = (z>=0 ? z : z-146096) / 146097;
  doe = z - era*146097;
  yoe = (doe - doe/1460 + doe/36524 - doe/146096) / 365;
  y = yoe + era*400;
  doy = doe - (365*yoe + yoe/4 - yoe/100);
  mp = (5*doy + 2)/153;
  *pd = (int)(doy - (153*mp + 2)/5 + 1);
  *pm = (int)(mp < 10 ? mp+3 : mp-9);
  *py = y + (*pm<=2);
}

/* a/b rounded towards minus infinity (C rounds towards zero). */
static sqlite3_int64 calFloorDiv(sqlite3_int64 a, sqlite3_int64 b){
  sqlite3_int64 q = a/b;
  if( (a%b)!=0 && ((a<0)!=(b<0)) ) q--;
  return q;
}

/* Gregorian leap year. */
static int calIsLeap(sqlite3_int64 y){
  return (y%4==0 && y%100!=0) || y%400==0;
}

/* Days in month m (1-12) of year y. */
static int calDaysInMonth(sqlite3_int64 y, int m){
  static const int aDays[] = {31,28,31,30,31,30,31,31,30,31,30,31};
  return m==2 && calIsLeap(y) ? 29 : aDays[m-1];
}

/* Unix seconds t as a civil date and time (UTC). */
void quotaCalSplit(sqlite3_int64 t, QuotaCivil *p){
  sqlite3_int64 days = calFloorDiv(t, 86400);
  sqlite3_int64 secs = t - days*86400;
  calCivilFromDays(days, &p->y, &p->m, &p->d);
  p->H = (int)(secs/3600);
  p->M = (int)(secs/60%60);
  p->S = (int)(secs%60);
}

/* A civil date and time (UTC) as Unix seconds: quotaCalSplit's inverse. */
sqlite3_int64 quotaCalJoin(const QuotaCivil *p){
  return calDaysFromCivil(p->y, p->m, p->d)*86400 + (sqlite3_int64)p->H*3600
       + (sqlite3_int64)p->M*60 + p->S;
}

/* t as 'YYYY-MM-DD HH:MM:SS' in zOut (QUOTA_TIME_TEXT bytes). */
/* v (>= 0) as exactly n decimal digits, zero-padded. */
static void calDigits(char *z, int v, int n){
  while( n-- > 0 ){
    z[n] = (char)('0' + v % 10);
    v /= 10;
  }
}

/* 99999-12-31 23:59:59, the last second quotaCalFormat writes. */
#define CAL_FORMAT_MAX ((sqlite3_int64)3093527980799LL)

void quotaCalFormat(sqlite3_int64 t, char *zOut){
  QuotaCivil c;
  /* Clock values stay within 0000-9999 (quotaParseTime), but the end of a
  ** period that starts in 9999 is in 10000: five digits fit. Anything
  ** further out cannot be reached from a valid clock (only from a store
  ** edited by hand), and is not split: near the ends of the 64-bit range
  ** the day arithmetic would overflow. */
  if( t<QUOTA_TIME_MIN || t>CAL_FORMAT_MAX ){
    memcpy(zOut, "0000-00-00 00:00:00", 20);
    return;
  }
  quotaCalSplit(t, &c);
  /* by hand, not printf: quota_status formats a time on every call */
  calDigits(zOut, (int)c.y, c.y>9999 ? 5 : 4);
  zOut += c.y>9999 ? 5 : 4;
  *zOut++ = '-'; calDigits(zOut, c.m, 2); zOut += 2;
  *zOut++ = '-'; calDigits(zOut, c.d, 2); zOut += 2;
  *zOut++ = ' '; calDigits(zOut, c.H, 2); zOut += 2;
  *zOut++ = ':'; calDigits(zOut, c.M, 2); zOut += 2;
  *zOut++ = ':'; calDigits(zOut, c.S, 2); zOut += 2;
  *zOut = 0;
}

/* The anchor moved by nMonth months, its day clamped to the target month. */
static sqlite3_int64 calShiftMonths(sqlite3_int64 anchor, sqlite3_int64 nMonth){
  QuotaCivil c;
  sqlite3_int64 m0;
  int dim;
  quotaCalSplit(anchor, &c);
  m0 = c.y*12 + (c.m-1) + nMonth;
  c.y = calFloorDiv(m0, 12);
  c.m = (int)(m0 - c.y*12) + 1;
  dim = calDaysInMonth(c.y, c.m);
  if( c.d>dim ) c.d = dim;
  return quotaCalJoin(&c);
}

/* The period of the anchor's sequence that holds t (see HOW IT WORKS). */
void quotaCalBounds(
  int nMonths,               /* months per period, or 0 for a fixed length */
  sqlite3_int64 nFixed,      /* seconds per period when nMonths is 0 */
  sqlite3_int64 anchor,      /* start of some period of the sequence */
  sqlite3_int64 t,           /* the time to place */
  sqlite3_int64 *pStart,     /* OUT: start of the period holding t */
  sqlite3_int64 *pEnd        /* OUT: start of the next period */
){
  if( nMonths>0 ){
    int nStep = nMonths;
    QuotaCivil a, n;
    sqlite3_int64 k, s;
    quotaCalSplit(anchor, &a);
    quotaCalSplit(t, &n);
    k = calFloorDiv((n.y - a.y)*12 + (n.m - a.m), nStep);
    /* k is within one step of the answer: the day clamp and the time of day
    ** can only move start(k) past t, or leave start(k+1) at or before t. */
    s = calShiftMonths(anchor, k*nStep);
    if( s>t ){
      k--;
      s = calShiftMonths(anchor, k*nStep);
    }else{
      sqlite3_int64 e = calShiftMonths(anchor, (k+1)*nStep);
      if( NEVER(e<=t) ){
        k++;
        s = e;
      }
    }
    *pStart = s;
    *pEnd = calShiftMonths(anchor, (k+1)*nStep);
  }else{
    sqlite3_int64 k = calFloorDiv(t - anchor, nFixed);
    *pStart = anchor + k*nFixed;
    *pEnd = *pStart + nFixed;
  }
}

/* Set a function's or a column's result to t as 'YYYY-MM-DD HH:MM:SS'. */
void quotaResultTime(sqlite3_context *ctx, sqlite3_int64 t){
  char zTime[QUOTA_TIME_TEXT];
  quotaCalFormat(t, zTime);
  sqlite3_result_text(ctx, zTime, -1, SQLITE_TRANSIENT);
}
