/*
** calendar.c: the time arithmetic of sqlite-quota. Pure functions, no SQLite
** calls, no allocation: everything here can be tested alone.
**
** Time is an integer count of seconds since 1970-01-01 00:00:00 UTC.
**
** PERIODS
**   lifetime                      one balance that never resets
**   hour, day, week               fixed lengths (3600, 86400, 604800 s)
**   month, year                   calendar months, 12 of them for a year
**   rolling N seconds|minutes|hours|days     a sliding window of N seconds
**
** HOW IT WORKS
**   Every calendar period is a sequence of instants start(k), k any integer,
**   computed from one anchor:
**     fixed lengths:   start(k) = anchor + k*len
**     month / year:    start(k) = anchor moved k (or 12k) months, its day of
**                      month clamped to the length of the target month, its
**                      time of day kept.
**   Because start(k) is always computed from the anchor, never from start(k-1),
**   an anchor on the 31st gives Jan 31, Feb 28 (29), Mar 31, Apr 30 ... and
**   never drifts to the 28th. Without an anchor the period follows the
**   calendar: the anchor is 1970-01-01 00:00:00 (a Thursday), or for weeks
**   1970-01-05 00:00:00, a Monday, so weeks are ISO weeks. An anchor in the
**   future needs no special case: k is negative before it, so the key lives in
**   the period of the same length that ends at the anchor.
**
**   The current period for time t is [start(k), start(k+1)) with the k for
**   which start(k) <= t < start(k+1).
*/
#include "quota_int.h"
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

static sqlite3_int64 calFloorDiv(sqlite3_int64 a, sqlite3_int64 b){
  sqlite3_int64 q = a/b;
  if( (a%b)!=0 && ((a<0)!=(b<0)) ) q--;
  return q;
}

static int calIsLeap(sqlite3_int64 y){
  return (y%4==0 && y%100!=0) || y%400==0;
}

static int calDaysInMonth(sqlite3_int64 y, int m){
  static const int aDays[] = {31,28,31,30,31,30,31,31,30,31,30,31};
  return m==2 && calIsLeap(y) ? 29 : aDays[m-1];
}

void quotaCalSplit(sqlite3_int64 t, QuotaCivil *p){
  sqlite3_int64 days = calFloorDiv(t, 86400);
  sqlite3_int64 secs = t - days*86400;
  calCivilFromDays(days, &p->y, &p->m, &p->d);
  p->H = (int)(secs/3600);
  p->M = (int)(secs/60%60);
  p->S = (int)(secs%60);
}

sqlite3_int64 quotaCalJoin(const QuotaCivil *p){
  return calDaysFromCivil(p->y, p->m, p->d)*86400 + (sqlite3_int64)p->H*3600
       + (sqlite3_int64)p->M*60 + p->S;
}

void quotaCalFormat(sqlite3_int64 t, char *zOut){
  QuotaCivil c;
  quotaCalSplit(t, &c);
  /* Clock values stay within 0000-9999 (quotaParseTime), but the end of a
  ** period that starts in 9999 is in 10000: five digits fit. Anything
  ** further out cannot be reached from a valid clock. */
  if( c.y<0 || c.y>99999 ){
    memcpy(zOut, "0000-00-00 00:00:00", 20);
    return;
  }
  sqlite3_snprintf(QUOTA_TIME_TEXT, zOut, "%04d-%02d-%02d %02d:%02d:%02d",
      (int)c.y, c.m, c.d, c.H, c.M, c.S);
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

static sqlite3_int64 calFixedLength(int eKind){
  switch( eKind ){
    case QUOTA_HOUR: return 3600;
    case QUOTA_DAY:  return 86400;
    default:         return 604800;          /* QUOTA_WEEK */
  }
}

sqlite3_int64 quotaCalDefaultAnchor(int eKind){
  return eKind==QUOTA_WEEK ? 4*86400 : 0;
}

void quotaCalBounds(
  int eKind,                 /* QUOTA_HOUR .. QUOTA_YEAR */
  sqlite3_int64 anchor,      /* start of some period of the sequence */
  sqlite3_int64 t,           /* the time to place */
  sqlite3_int64 *pStart,     /* OUT: start of the period holding t */
  sqlite3_int64 *pEnd        /* OUT: start of the next period */
){
  if( eKind==QUOTA_MONTH || eKind==QUOTA_YEAR ){
    int nStep = eKind==QUOTA_MONTH ? 1 : 12;
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
    sqlite3_int64 len = calFixedLength(eKind);
    sqlite3_int64 k = calFloorDiv(t - anchor, len);
    *pStart = anchor + k*len;
    *pEnd = *pStart + len;
  }
}

/*
** Durations: an integer number of seconds, or text "N unit" where unit is
** second(s), minute(s), hour(s) or day(s), any case, with optional spaces.
** Text holding only digits is a number of seconds too. Returns 0 and sets
** *pSecs on success, 1 when the text is not a duration or overflows.
*/
static int calUnitSeconds(const char *z, int n, sqlite3_int64 *pMul){
  static const struct { const char *zName; sqlite3_int64 mul; } aUnit[] = {
    {"second", 1}, {"minute", 60}, {"hour", 3600}, {"day", 86400},
  };
  size_t i;
  if( ALWAYS(n>0) && (z[n-1]=='s' || z[n-1]=='S') ) n--;
  for(i=0; i<sizeof(aUnit)/sizeof(aUnit[0]); i++){
    if( (int)strlen(aUnit[i].zName)==n && sqlite3_strnicmp(z, aUnit[i].zName, n)==0 ){
      *pMul = aUnit[i].mul;
      return 0;
    }
  }
  return 1;
}

static int calIsSpace(char c){
  return c==' ' || c=='\t' || c=='\n' || c=='\r';
}

int quotaParseDurationText(const char *z, sqlite3_int64 *pSecs, int *pUnitMul){
  sqlite3_int64 n = 0, mul = 1;
  const char *zUnit;
  int nDigit = 0;
  if( z==0 ) return 1;
  while( calIsSpace(*z) ) z++;
  while( *z>='0' && *z<='9' ){
    if( n > (LARGEST_INT64 - (*z-'0'))/10 ) return 1;
    n = n*10 + (*z-'0');
    z++;
    nDigit++;
  }
  if( nDigit==0 ) return 1;
  while( calIsSpace(*z) ) z++;
  zUnit = z;
  while( *z && !calIsSpace(*z) ) z++;
  if( z>zUnit && calUnitSeconds(zUnit, (int)(z-zUnit), &mul) ) return 1;
  while( calIsSpace(*z) ) z++;
  if( *z ) return 1;
  if( n > LARGEST_INT64/mul ) return 1;
  *pSecs = n*mul;
  if( pUnitMul ) *pUnitMul = (int)mul;
  return 0;
}

/*
** Parse a period text into *pKind and, for rolling windows, *pLen (seconds)
** and the canonical text written to zCanon (at least 48 bytes). Returns 0 on
** success, 1 when the text is not a period.
*/
int quotaParsePeriod(const char *z, int *pKind, sqlite3_int64 *pLen, char *zCanon){
  static const struct { const char *zName; int eKind; } aCal[] = {
    {"lifetime", QUOTA_LIFETIME}, {"hour", QUOTA_HOUR}, {"day", QUOTA_DAY},
    {"week", QUOTA_WEEK}, {"month", QUOTA_MONTH}, {"year", QUOTA_YEAR},
  };
  size_t i;
  int n;
  while( calIsSpace(*z) ) z++;
  n = (int)strlen(z);
  while( n>0 && calIsSpace(z[n-1]) ) n--;
  for(i=0; i<sizeof(aCal)/sizeof(aCal[0]); i++){
    if( (int)strlen(aCal[i].zName)==n && sqlite3_strnicmp(z, aCal[i].zName, n)==0 ){
      *pKind = aCal[i].eKind;
      *pLen = 0;
      memcpy(zCanon, aCal[i].zName, strlen(aCal[i].zName)+1);
      return 0;
    }
  }
  if( n>8 && sqlite3_strnicmp(z, "rolling", 7)==0 && calIsSpace(z[7]) ){
    char zRest[64];
    sqlite3_int64 secs;
    int mul = 1;
    static const char *azUnit[] = {"second", "minute", "hour", "day"};
    int iUnit;
    if( n-8 >= (int)sizeof(zRest) ) return 1;
    memcpy(zRest, z+8, n-8);
    zRest[n-8] = 0;
    if( quotaParseDurationText(zRest, &secs, &mul) ) return 1;
    if( secs<=0 ) return 1;
    /* A window must hold at least one second and fit the arithmetic of
    ** time values; 100 years is far beyond any real window. */
    if( secs > (sqlite3_int64)100*366*86400 ) return 1;
    iUnit = mul==1 ? 0 : mul==60 ? 1 : mul==3600 ? 2 : 3;
    *pKind = QUOTA_ROLLING;
    *pLen = secs;
    sqlite3_snprintf(48, zCanon, "rolling %lld %s%s", secs/mul, azUnit[iUnit],
        secs/mul==1 ? "" : "s");
    return 0;
  }
  return 1;
}
