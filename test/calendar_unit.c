/*
** 2026 January 1
**
** The author disclaims copyright to this source code.  In place of
** a legal notice, here is a blessing:
**
**    May you do good and not evil.
**    May you find forgiveness for yourself and forgive others.
**    May you share freely, never taking more than you give.
**
*************************************************************************
**
** calendar_unit.c: unit test of the pure functions of ext/calendar.c and
** the period texts and shapes of ext/period.c, built by "make drivers" as
** build/calendar_unit and run by test/calendar_unit.test.
**
**   quotaCalSplit / quotaCalJoin   every day from 1900 to 2400 (at three
**                                  times of day), against the C library's
**                                  gmtime_r() and timegm(); round trips.
**   quotaCalFormat                 against strftime() of gmtime_r().
**   the kinds' default anchors     0, or a Monday 00:00 for weeks.
**   quotaCalBounds                 every kind (its months or seconds
**                                  from the kind table), random times and anchors
**                                  (fixed seed): start <= t < end, end is
**                                  the next start, start is a member of
**                                  the anchor's sequence computed
**                                  independently with timegm() (day of
**                                  month clamped), bounds of t = start
**                                  and of t = end-1.
**   quotaParsePeriod / quotaParseDurationText   good and bad inputs.
**
** Usage: calendar_unit [-v] [SEED]
** Prints every failure, then "N errors out of M tests"; exits 1 on any
** failure.
*/
#define _GNU_SOURCE
#include "period.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define DRIVER_PROG "calendar_unit"
#include "driver_util.h"

/* The kinds by their short names, and their shapes from the kind table. */
#define QUOTA_LIFETIME QUOTA_KIND_LIFETIME
#define QUOTA_HOUR     QUOTA_KIND_HOUR
#define QUOTA_DAY      QUOTA_KIND_DAY
#define QUOTA_WEEK     QUOTA_KIND_WEEK
#define QUOTA_MONTH    QUOTA_KIND_MONTH
#define QUOTA_YEAR     QUOTA_KIND_YEAR
#define QUOTA_ROLLING  QUOTA_KIND_ROLLING
#define QUOTA_RATE     QUOTA_KIND_RATE
static sqlite3_int64 defaultAnchor(int eKind){ return quotaKind(eKind)->iAnchor; }
static void kindBounds(int eKind, sqlite3_int64 anchor, sqlite3_int64 t,
                       sqlite3_int64 *pS, sqlite3_int64 *pE){
  quotaCalBounds(quotaKind(eKind)->nMonths, quotaKind(eKind)->nFixed, anchor, t, pS, pE);
}

static int nTest = 0;
static int nErr = 0;
static int bVerbose = 0;

#define CHECK(cond, ...) do{                                   \
  nTest++;                                                     \
  if( !(cond) ){                                               \
    nErr++;                                                    \
    if( nErr<=50 ){                                            \
      printf("! %s:%d: ", __FILE__, __LINE__);                 \
      printf(__VA_ARGS__);                                     \
      printf("\n");                                            \
    }                                                          \
  }                                                            \
}while(0)

/* The deterministic RNG of driver_util.h (fixed seed), so failures replay. */
static Rng gRng = { 88172645463325252ULL };
static sqlite3_int64 rngRange(sqlite3_int64 lo, sqlite3_int64 hi){
  return lo + (sqlite3_int64)(rngNext(&gRng) % (sqlite3_uint64)(hi - lo + 1));
}

/* Unix seconds of y-m-d H:M:S UTC by the C library. */
static sqlite3_int64 libJoin(int y, int m, int d, int H, int M, int S){
  struct tm tm;
  memset(&tm, 0, sizeof(tm));
  tm.tm_year = y - 1900;
  tm.tm_mon = m - 1;
  tm.tm_mday = d;
  tm.tm_hour = H;
  tm.tm_min = M;
  tm.tm_sec = S;
  return (sqlite3_int64)timegm(&tm);
}

static int isLeap(int y){ return (y%4==0 && y%100!=0) || y%400==0; }
static int daysIn(int y, int m){
  static const int a[] = {31,28,31,30,31,30,31,31,30,31,30,31};
  return m==2 && isLeap(y) ? 29 : a[m-1];
}

static const char *kindName(int e){
  switch( e ){
    case QUOTA_HOUR: return "hour";
    case QUOTA_DAY: return "day";
    case QUOTA_WEEK: return "week";
    case QUOTA_MONTH: return "month";
    case QUOTA_YEAR: return "year";
  }
  return "?";
}

/* ---------------------------------------------------- split / join */
static void testSplitJoin(void){
  sqlite3_int64 t0 = libJoin(1900, 1, 1, 0, 0, 0);
  sqlite3_int64 t1 = libJoin(2401, 1, 1, 0, 0, 0);
  sqlite3_int64 day;
  int nDay = 0;
  static const int aSec[] = {0, 12*3600 + 34*60 + 56, 86399};
  CHECK(t0==-2208988800LL, "timegm(1900-01-01) = %lld", (long long)t0);
  for(day=t0; day<t1; day+=86400){
    size_t i;
    nDay++;
    for(i=0; i<sizeof(aSec)/sizeof(aSec[0]); i++){
      sqlite3_int64 t = day + aSec[i];
      time_t tt = (time_t)t;
      struct tm tm;
      QuotaCivil c;
      gmtime_r(&tt, &tm);
      quotaCalSplit(t, &c);
      CHECK(c.y==tm.tm_year+1900 && c.m==tm.tm_mon+1 && c.d==tm.tm_mday
            && c.H==tm.tm_hour && c.M==tm.tm_min && c.S==tm.tm_sec,
            "split(%lld) = %lld-%d-%d %d:%d:%d, gmtime %d-%d-%d %d:%d:%d",
            (long long)t, (long long)c.y, c.m, c.d, c.H, c.M, c.S,
            tm.tm_year+1900, tm.tm_mon+1, tm.tm_mday,
            tm.tm_hour, tm.tm_min, tm.tm_sec);
      CHECK(quotaCalJoin(&c)==t, "join(split(%lld)) = %lld",
            (long long)t, (long long)quotaCalJoin(&c));
      {
        QuotaCivil d;
        d.y = tm.tm_year + 1900; d.m = tm.tm_mon + 1; d.d = tm.tm_mday;
        d.H = tm.tm_hour; d.M = tm.tm_min; d.S = tm.tm_sec;
        CHECK(quotaCalJoin(&d)==(sqlite3_int64)timegm(&tm),
              "join(%lld-%d-%d) != timegm", (long long)d.y, d.m, d.d);
      }
    }
  }
  /* 1900-01-01 .. 2400-12-31: 501 years, 122 of them leap (1904..2400
  ** step 4 is 125 years, less 2100, 2200 and 2300; 1900 is not leap). */
  CHECK(nDay==501*365+122, "days 1900..2400: %d", nDay);
  /* Random seconds over a wider range, both directions. */
  {
    int i;
    for(i=0; i<200000; i++){
      sqlite3_int64 t = rngRange(libJoin(1, 1, 1, 0, 0, 0), libJoin(9999, 12, 31, 23, 59, 59));
      time_t tt = (time_t)t;
      struct tm tm;
      QuotaCivil c;
      gmtime_r(&tt, &tm);
      quotaCalSplit(t, &c);
      CHECK(c.y==tm.tm_year+1900 && c.m==tm.tm_mon+1 && c.d==tm.tm_mday
            && c.H==tm.tm_hour && c.M==tm.tm_min && c.S==tm.tm_sec
            && quotaCalJoin(&c)==t,
            "random split/join of %lld", (long long)t);
    }
  }
}

/* ---------------------------------------------------------- format */
static void testFormat(void){
  int i;
  char z[QUOTA_TIME_TEXT], zWant[64];
  static const struct { sqlite3_int64 t; const char *z; } aLit[] = {
    {0,            "1970-01-01 00:00:00"},
    {-1,           "1969-12-31 23:59:59"},
    {951782400,    "2000-02-29 00:00:00"},
    {1769853600,   "2026-01-31 10:00:00"},
    {1835481599,   "2028-02-29 23:59:59"},
    {253402300799LL, "9999-12-31 23:59:59"},
    {-62167219200LL, "0000-01-01 00:00:00"},
  };
  for(i=0; i<(int)(sizeof(aLit)/sizeof(aLit[0])); i++){
    memset(z, 'x', sizeof(z));
    quotaCalFormat(aLit[i].t, z);
    CHECK(strcmp(z, aLit[i].z)==0, "format(%lld) = '%.20s', want '%s'",
          (long long)aLit[i].t, z, aLit[i].z);
  }
  /* The end of a period in 9999 is in year 10000: five digits (the
  ** buffer is QUOTA_TIME_TEXT bytes). Before year 0, a fixed placeholder. */
  quotaCalFormat(253402300800LL, z);
  CHECK(strcmp(z, "10000-01-01 00:00:00")==0, "format(10000-01-01) = '%.22s'", z);
  quotaCalFormat(-62167219201LL, z);
  CHECK(strcmp(z, "0000-00-00 00:00:00")==0, "format(-0001-12-31) = '%.20s'", z);
  quotaCalFormat(LARGEST_INT64/2, z);
  CHECK(strlen(z)==19, "format(huge) length %d", (int)strlen(z));
  for(i=0; i<20000; i++){
    sqlite3_int64 t = rngRange(libJoin(1000, 1, 1, 0, 0, 0), libJoin(9999, 12, 31, 23, 59, 59));
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(zWant, sizeof(zWant), "%04d-%02d-%02d %02d:%02d:%02d",
             tm.tm_year+1900, tm.tm_mon+1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
    quotaCalFormat(t, z);
    CHECK(strcmp(z, zWant)==0, "format(%lld) = '%s', want '%s'", (long long)t, z, zWant);
  }
}

/* ------------------------------------------------------- bounds */

/* start(k) of a month/year sequence, independently: the anchor's civil
** date moved by nMonth months with the C library, day clamped. */
static sqlite3_int64 refShift(sqlite3_int64 anchor, sqlite3_int64 nMonth){
  time_t tt = (time_t)anchor;
  struct tm tm;
  long long m0;
  int y, m, d;
  gmtime_r(&tt, &tm);
  m0 = (long long)(tm.tm_year + 1900)*12 + tm.tm_mon + nMonth;
  y = (int)(m0>=0 ? m0/12 : -((-m0+11)/12));
  m = (int)(m0 - (long long)y*12) + 1;
  d = tm.tm_mday;
  if( d>daysIn(y, m) ) d = daysIn(y, m);
  return libJoin(y, m, d, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The reference bounds: the k with start(k) <= t < start(k+1). */
static void refBounds(int eKind, sqlite3_int64 anchor, sqlite3_int64 t,
                      sqlite3_int64 *pS, sqlite3_int64 *pE){
  if( eKind==QUOTA_MONTH || eKind==QUOTA_YEAR ){
    int step = eKind==QUOTA_MONTH ? 1 : 12;
    /* Average month 2629746 s: a guess, then walk. */
    sqlite3_int64 k = (t - anchor) / (2629746LL*step);
    while( refShift(anchor, k*step) > t ) k--;
    while( refShift(anchor, (k+1)*step) <= t ) k++;
    *pS = refShift(anchor, k*step);
    *pE = refShift(anchor, (k+1)*step);
  }else{
    sqlite3_int64 len = eKind==QUOTA_HOUR ? 3600 : eKind==QUOTA_DAY ? 86400 : 604800;
    sqlite3_int64 k = (t - anchor) / len;
    if( anchor + k*len > t ) k--;
    while( anchor + (k+1)*len <= t ) k++;
    *pS = anchor + k*len;
    *pE = *pS + len;
  }
}

static void checkBounds(int eKind, sqlite3_int64 anchor, sqlite3_int64 t){
  sqlite3_int64 s = -1, e = -1, s2 = -1, e2 = -1, rs, re;
  char zA[20], zT[20], zS[20], zE[20];
  kindBounds(eKind, anchor, t, &s, &e);
  quotaCalFormat(anchor, zA);
  quotaCalFormat(t, zT);
  quotaCalFormat(s, zS);
  quotaCalFormat(e, zE);
  CHECK(s<=t && t<e, "%s anchor %s t %s: [%s, %s) does not hold t",
        kindName(eKind), zA, zT, zS, zE);
  refBounds(eKind, anchor, t, &rs, &re);
  CHECK(s==rs && e==re, "%s anchor %s t %s: got [%s, %s), want [%lld, %lld)",
        kindName(eKind), zA, zT, zS, zE, (long long)rs, (long long)re);
  /* end is the next start */
  kindBounds(eKind, anchor, e, &s2, &e2);
  CHECK(s2==e && e2>e, "%s anchor %s: bounds(end %s) start %lld",
        kindName(eKind), zA, zE, (long long)s2);
  /* start and end-1 are in the same period */
  kindBounds(eKind, anchor, s, &s2, &e2);
  CHECK(s2==s && e2==e, "%s anchor %s: bounds(start %s) differ",
        kindName(eKind), zA, zS);
  kindBounds(eKind, anchor, e-1, &s2, &e2);
  CHECK(s2==s && e2==e, "%s anchor %s: bounds(end-1 of %s) differ",
        kindName(eKind), zA, zS);
  /* start-1 is in the previous period, which ends at start */
  kindBounds(eKind, anchor, s-1, &s2, &e2);
  CHECK(e2==s && s2<s, "%s anchor %s: bounds(start-1 of %s) end %lld",
        kindName(eKind), zA, zS, (long long)e2);
  /* the shape of start: time of day and day of month of the anchor */
  if( eKind==QUOTA_MONTH || eKind==QUOTA_YEAR ){
    QuotaCivil ca, cs;
    quotaCalSplit(anchor, &ca);
    quotaCalSplit(s, &cs);
    CHECK(cs.H==ca.H && cs.M==ca.M && cs.S==ca.S
          && cs.d==(ca.d<=daysIn((int)cs.y, cs.m) ? ca.d : daysIn((int)cs.y, cs.m))
          && (eKind==QUOTA_MONTH || cs.m==ca.m),
          "%s anchor %s: start %s has the wrong shape", kindName(eKind), zA, zS);
  }else{
    sqlite3_int64 len = e - s;
    CHECK(((s - anchor) % len)==0, "%s anchor %s: start %s off the sequence",
          kindName(eKind), zA, zS);
  }
}

static void testBounds(void){
  static const int aKind[] = {QUOTA_HOUR, QUOTA_DAY, QUOTA_WEEK, QUOTA_MONTH, QUOTA_YEAR};
  sqlite3_int64 lo = libJoin(1900, 1, 1, 0, 0, 0);
  sqlite3_int64 hi = libJoin(2400, 12, 31, 23, 59, 59);
  int i, j;

  /* Default anchors: 0 for all but weeks, whose anchor is a Monday. */
  {
    time_t tt = (time_t)defaultAnchor(QUOTA_WEEK);
    struct tm tm;
    gmtime_r(&tt, &tm);
    CHECK(tm.tm_wday==1 && tm.tm_hour==0 && tm.tm_min==0 && tm.tm_sec==0,
          "week default anchor is not Monday 00:00 (wday %d)", tm.tm_wday);
    CHECK(defaultAnchor(QUOTA_HOUR)==0 && defaultAnchor(QUOTA_DAY)==0
          && defaultAnchor(QUOTA_MONTH)==0 && defaultAnchor(QUOTA_YEAR)==0,
          "default anchors");
  }

  /* Literal cases. */
  {
    static const struct {
      int eKind; const char *zAnchor; const char *zT; const char *zS; const char *zE;
    } aLit[] = {
      {QUOTA_MONTH, "2026-01-31 10:00:00", "2026-03-01 00:00:00", "2026-02-28 10:00:00", "2026-03-31 10:00:00"},
      {QUOTA_MONTH, "2026-01-31 10:00:00", "2028-02-29 10:00:00", "2028-02-29 10:00:00", "2028-03-31 10:00:00"},
      {QUOTA_MONTH, "2026-01-31 10:00:00", "2028-02-29 09:59:59", "2028-01-31 10:00:00", "2028-02-29 10:00:00"},
      {QUOTA_MONTH, "2026-05-31 10:00:00", "2026-04-15 12:00:00", "2026-03-31 10:00:00", "2026-04-30 10:00:00"},
      {QUOTA_YEAR,  "2028-02-29 12:00:00", "2029-02-28 12:00:00", "2029-02-28 12:00:00", "2030-02-28 12:00:00"},
      {QUOTA_YEAR,  "2028-02-29 12:00:00", "2032-02-29 11:59:59", "2031-02-28 12:00:00", "2032-02-29 12:00:00"},
      {QUOTA_YEAR,  "1970-01-01 00:00:00", "2026-12-31 23:59:59", "2026-01-01 00:00:00", "2027-01-01 00:00:00"},
      {QUOTA_MONTH, "1970-01-01 00:00:00", "2028-02-29 23:59:59", "2028-02-01 00:00:00", "2028-03-01 00:00:00"},
      {QUOTA_MONTH, "1970-01-01 00:00:00", "1969-12-31 23:59:59", "1969-12-01 00:00:00", "1970-01-01 00:00:00"},
      {QUOTA_WEEK,  "1970-01-05 00:00:00", "2027-01-01 12:00:00", "2026-12-28 00:00:00", "2027-01-04 00:00:00"},
      {QUOTA_WEEK,  "1970-01-05 00:00:00", "1970-01-01 00:00:00", "1969-12-29 00:00:00", "1970-01-05 00:00:00"},
      {QUOTA_DAY,   "2026-03-09 14:30:00", "2026-03-01 00:00:00", "2026-02-28 14:30:00", "2026-03-01 14:30:00"},
      {QUOTA_HOUR,  "2026-01-01 00:17:05", "2028-02-29 14:29:59", "2028-02-29 14:17:05", "2028-02-29 15:17:05"},
    };
    for(i=0; i<(int)(sizeof(aLit)/sizeof(aLit[0])); i++){
      QuotaCivil c;
      sqlite3_int64 a, t, s, e;
      char zS[20], zE[20];
      memset(&c, 0, sizeof(c));
      sscanf(aLit[i].zAnchor, "%lld-%d-%d %d:%d:%d", (long long*)&c.y, &c.m, &c.d, &c.H, &c.M, &c.S);
      a = quotaCalJoin(&c);
      sscanf(aLit[i].zT, "%lld-%d-%d %d:%d:%d", (long long*)&c.y, &c.m, &c.d, &c.H, &c.M, &c.S);
      t = quotaCalJoin(&c);
      kindBounds(aLit[i].eKind, a, t, &s, &e);
      quotaCalFormat(s, zS);
      quotaCalFormat(e, zE);
      CHECK(strcmp(zS, aLit[i].zS)==0 && strcmp(zE, aLit[i].zE)==0,
            "literal %d: %s anchor %s t %s: [%s, %s), want [%s, %s)", i,
            kindName(aLit[i].eKind), aLit[i].zAnchor, aLit[i].zT, zS, zE,
            aLit[i].zS, aLit[i].zE);
    }
  }

  /* Default anchors, every kind, random times. */
  for(j=0; j<5; j++){
    for(i=0; i<4000; i++){
      checkBounds(aKind[j], defaultAnchor(aKind[j]), rngRange(lo, hi));
    }
  }
  /* Random anchors and random times, anywhere in 1900..2400. */
  for(j=0; j<5; j++){
    for(i=0; i<4000; i++){
      checkBounds(aKind[j], rngRange(lo, hi), rngRange(lo, hi));
    }
  }
  /* Anchors on the 28th-31st at random times of day, times near them and
  ** near month ends: where clamping matters. */
  for(i=0; i<20000; i++){
    int y = (int)rngRange(1900, 2399), m = (int)rngRange(1, 12);
    int d = (int)rngRange(28, daysIn(y, m));
    sqlite3_int64 a = libJoin(y, m, d, (int)rngRange(0, 23), (int)rngRange(0, 59), (int)rngRange(0, 59));
    int ty = (int)rngRange(y-3, y+3), tmon = (int)rngRange(1, 12);
    sqlite3_int64 t = libJoin(ty, tmon, daysIn(ty, tmon), 0, 0, 0) + rngRange(-2*86400, 2*86400);
    checkBounds((i&1) ? QUOTA_MONTH : QUOTA_YEAR, a, t);
    checkBounds(QUOTA_MONTH, a, a + rngRange(-3, 3));
  }
  /* t equal to the anchor: the period starts at the anchor. */
  for(j=0; j<5; j++){
    for(i=0; i<1000; i++){
      sqlite3_int64 a = rngRange(lo, hi), s, e;
      kindBounds(aKind[j], a, a, &s, &e);
      CHECK(s==a, "%s: bounds(anchor, anchor) starts at %lld, not %lld",
            kindName(aKind[j]), (long long)s, (long long)a);
    }
  }
  /* Consecutive monthly periods from an anchor on the 31st never drift:
  ** walk 6000 periods by feeding each end back in. */
  {
    sqlite3_int64 a = libJoin(1901, 1, 31, 10, 0, 0), t = a, s, e;
    int nBad = 0, k;
    for(k=0; k<6000; k++){
      QuotaCivil c;
      kindBounds(QUOTA_MONTH, a, t, &s, &e);
      quotaCalSplit(s, &c);
      if( c.d!=(daysIn((int)c.y, c.m)<31 ? daysIn((int)c.y, c.m) : 31) || c.H!=10 ) nBad++;
      t = e;
    }
    CHECK(nBad==0, "monthly anchor on the 31st drifted %d times", nBad);
  }
}

/* ------------------------------------------------------- parsers */
static void testParsePeriod(void){
  static const struct {
    const char *z; int eKind; sqlite3_int64 nLen; const char *zCanon;
    sqlite3_int64 nRate;
  } aGood[] = {
    {"lifetime", QUOTA_LIFETIME, 0, "lifetime", 0},
    {"hour", QUOTA_HOUR, 0, "hour", 0},
    {"day", QUOTA_DAY, 0, "day", 0},
    {"week", QUOTA_WEEK, 0, "week", 0},
    {"month", QUOTA_MONTH, 0, "month", 0},
    {"year", QUOTA_YEAR, 0, "year", 0},
    {"MONTH", QUOTA_MONTH, 0, "month", 0},
    {" Week ", QUOTA_WEEK, 0, "week", 0},
    {"\tYear\n", QUOTA_YEAR, 0, "year", 0},
    {"LifeTime", QUOTA_LIFETIME, 0, "lifetime", 0},
    {"rolling 90 seconds", QUOTA_ROLLING, 90, "rolling 90 seconds", 0},
    {"rolling 1 second", QUOTA_ROLLING, 1, "rolling 1 second", 0},
    {"rolling 1 seconds", QUOTA_ROLLING, 1, "rolling 1 second", 0},
    {"rolling 2 second", QUOTA_ROLLING, 2, "rolling 2 seconds", 0},
    {"rolling 120 seconds", QUOTA_ROLLING, 120, "rolling 120 seconds", 0},
    {"rolling 1 minute", QUOTA_ROLLING, 60, "rolling 1 minute", 0},
    {"rolling 15 minutes", QUOTA_ROLLING, 900, "rolling 15 minutes", 0},
    {"rolling 2 Hours", QUOTA_ROLLING, 7200, "rolling 2 hours", 0},
    {"ROLLING 1 HOUR", QUOTA_ROLLING, 3600, "rolling 1 hour", 0},
    {"rolling 30 days", QUOTA_ROLLING, 30*86400, "rolling 30 days", 0},
    {"Rolling 1 Day", QUOTA_ROLLING, 86400, "rolling 1 day", 0},
    {"rolling 60", QUOTA_ROLLING, 60, "rolling 60 seconds", 0},
    {"rolling  5 minutes", QUOTA_ROLLING, 300, "rolling 5 minutes", 0},
    {"  rolling 5 minutes  ", QUOTA_ROLLING, 300, "rolling 5 minutes", 0},
    {"rolling\t5\tminutes", QUOTA_ROLLING, 300, "rolling 5 minutes", 0},
    {"rolling 36600 days", QUOTA_ROLLING, 36600LL*86400, "rolling 36600 days", 0},
    {"rolling 007 minutes", QUOTA_ROLLING, 420, "rolling 7 minutes", 0},
    /* token buckets: N per [M] unit; M defaults to 1 */
    {"rate 10 per second", QUOTA_RATE, 1, "rate 10 per second", 10},
    {"rate 10 per 1 second", QUOTA_RATE, 1, "rate 10 per second", 10},
    {"rate 10 per seconds", QUOTA_RATE, 1, "rate 10 per second", 10},
    {"rate 1 per minute", QUOTA_RATE, 60, "rate 1 per minute", 1},
    {"rate 5 per hour", QUOTA_RATE, 3600, "rate 5 per hour", 5},
    {"rate 1000000000000 per day", QUOTA_RATE, 86400, "rate 1000000000000 per day",
     1000000000000LL},
    {"rate 7 per 10 minutes", QUOTA_RATE, 600, "rate 7 per 10 minutes", 7},
    {"rate 7 per 10 minute", QUOTA_RATE, 600, "rate 7 per 10 minutes", 7},
    {"Rate 3 PER 2 Hours", QUOTA_RATE, 7200, "rate 3 per 2 hours", 3},
    {"rate 3 per 90", QUOTA_RATE, 90, "rate 3 per 90 seconds", 3},
    {"  rate\t 3\tper\t90 seconds ", QUOTA_RATE, 90, "rate 3 per 90 seconds", 3},
    {"rate 007 per 060 seconds", QUOTA_RATE, 60, "rate 7 per 60 seconds", 7},
    {"rate 9223372036854775807 per 36600 days", QUOTA_RATE, 36600LL*86400,
     "rate 9223372036854775807 per 36600 days", 9223372036854775807LL},
  };
  static const char *azBad[] = {
    "", " ", "fortnight", "months", "hours", "monthly", "month 1", "rolling",
    "rolling ", "rolling 0 seconds", "rolling 0", "rolling -1 seconds",
    "rolling 1.5 hours", "rolling 10 weeks", "rolling 5 min", "rolling 5 secs",
    "rolling 5 minutess", "rolling 5 minutes extra", "rolling five minutes",
    "rolling 36601 days", "rolling 3162240001 seconds",
    "rolling 99999999999999999999 seconds", "rolling 9223372036854775807 days",
    "rollingx 5 minutes", "rolling5 minutes", "roll 5 minutes", "5 minutes",
    "rolling 5 s", "rolling 5 minutes,", "lifetime!", "hour day",
    "rolling 1234567890123456789012345678901234567890123456789012345678901234567890 seconds",
    "rate", "rate ", "rate 10", "rate 10 per", "rate 10 per ", "rate 0 per second",
    "rate -1 per second", "rate 1.5 per second", "rate 10 a second",
    "rate 10 per 0 seconds", "rate 10 per week", "rate 10per second",
    "rate10 per second", "rate 10 persecond", "rate 10 per second extra",
    "rate 10 per 36601 days", "rate 9223372036854775808 per second",
    "rate ten per second", "rate 10 per -1 seconds", "rate 10 per 1.5 hours",
    "rate per second", "rates 10 per second", "rate 10 per 5 secs",
    "rate 10 per 1234567890123456789012345678901234567890123456789012345678901234567890 seconds",
  };
  int i;
  for(i=0; i<(int)(sizeof(aGood)/sizeof(aGood[0])); i++){
    int eKind = -1;
    sqlite3_int64 nLen = -1, nRate = -1;
    char zCanon[QUOTA_PERIOD_TEXT];
    int rc;
    memset(zCanon, 'x', sizeof(zCanon));
    zCanon[QUOTA_PERIOD_TEXT-1] = 0;
    rc = quotaParsePeriod(aGood[i].z, &eKind, &nLen, &nRate, zCanon);
    CHECK(rc==0 && eKind==aGood[i].eKind && nLen==aGood[i].nLen
          && nRate==aGood[i].nRate && strcmp(zCanon, aGood[i].zCanon)==0,
          "parse period '%s': rc %d kind %d len %lld rate %lld canon '%s'",
          aGood[i].z, rc, eKind, (long long)nLen, (long long)nRate, zCanon);
    /* The canonical text parses to the same thing. */
    if( rc==0 ){
      int e2 = -1;
      sqlite3_int64 n2 = -1, r2 = -1;
      char z2[QUOTA_PERIOD_TEXT];
      rc = quotaParsePeriod(zCanon, &e2, &n2, &r2, z2);
      CHECK(rc==0 && e2==eKind && n2==nLen && r2==nRate && strcmp(z2, zCanon)==0,
            "canonical period '%s' does not parse back", zCanon);
    }
  }
  for(i=0; i<(int)(sizeof(azBad)/sizeof(azBad[0])); i++){
    int eKind = -1;
    sqlite3_int64 nLen = -1, nRate = -1;
    char zCanon[QUOTA_PERIOD_TEXT];
    int rc = quotaParsePeriod(azBad[i], &eKind, &nLen, &nRate, zCanon);
    CHECK(rc!=0, "period '%s' accepted (kind %d len %lld)", azBad[i], eKind, (long long)nLen);
  }
}

static void testParseDuration(void){
  static const struct { const char *z; sqlite3_int64 n; int mul; } aGood[] = {
    {"0", 0, 1},
    {"90", 90, 1},
    {"  90  ", 90, 1},
    {"90 seconds", 90, 1},
    {"1 second", 1, 1},
    {"15 minutes", 900, 60},
    {"1 minute", 60, 60},
    {"24 hours", 86400, 3600},
    {"1 Hour", 3600, 3600},
    {"30 days", 2592000, 86400},
    {"1 DAY", 86400, 86400},
    {"7 Days", 604800, 86400},
    {"5\tminutes", 300, 60},
    {"5minutes", 300, 60},
    {"2 minute", 120, 60},
    {"0 days", 0, 86400},
    {"9223372036854775807", LARGEST_INT64, 1},
    {"9223372036854775807 seconds", LARGEST_INT64, 1},
    {"106751991167300 days", 106751991167300LL*86400, 86400},
    {"0009 seconds", 9, 1},
    {"2562047788015215 hours", 2562047788015215LL*3600, 3600},
  };
  static const char *azBad[] = {
    "", "   ", "abc", "-5", "+5", "5.0", "1e3", "5 weeks", "5 min", "5 secs",
    "5 s", "5 minutes 3", "5 minutes,", "minutes", "5 minutes extra",
    "9223372036854775808", "99999999999999999999 seconds",
    "106751991167301 days", "2562047788015216 hours", "0x10", "5 days ago",
  };
  int i;
  for(i=0; i<(int)(sizeof(aGood)/sizeof(aGood[0])); i++){
    sqlite3_int64 n = -1;
    int mul = -1;
    int rc = quotaParseDurationText(aGood[i].z, &n, &mul);
    CHECK(rc==0 && n==aGood[i].n && mul==aGood[i].mul,
          "duration '%s': rc %d secs %lld mul %d", aGood[i].z, rc, (long long)n, mul);
    n = -1;
    rc = quotaParseDurationText(aGood[i].z, &n, 0);
    CHECK(rc==0 && n==aGood[i].n, "duration '%s' without pUnitMul: rc %d", aGood[i].z, rc);
  }
  for(i=0; i<(int)(sizeof(azBad)/sizeof(azBad[0])); i++){
    sqlite3_int64 n = -12345;
    int rc = quotaParseDurationText(azBad[i], &n, 0);
    CHECK(rc!=0 && n==-12345, "duration '%s' accepted (%lld)", azBad[i], (long long)n);
  }
  {
    sqlite3_int64 n = -12345;
    CHECK(quotaParseDurationText(0, &n, 0)!=0 && n==-12345, "duration NULL accepted");
  }
}

int main(int argc, char **argv){
  int i;
  for(i=1; i<argc; i++){
    if( strcmp(argv[i], "-v")==0 ){
      bVerbose = 1;
    }else{
      gRng.s = strtoull(argv[i], 0, 0);
    }
  }
  printf("calendar_unit: SQLite %s\n", sqlite3_libversion());
  if( sizeof(time_t)<8 ){
    printf("calendar_unit: needs a 64-bit time_t\n");
    return 1;
  }
  testSplitJoin();
  if( bVerbose ) printf("split/join: %d tests, %d errors\n", nTest, nErr);
  testFormat();
  if( bVerbose ) printf("format: %d tests, %d errors\n", nTest, nErr);
  testBounds();
  if( bVerbose ) printf("bounds: %d tests, %d errors\n", nTest, nErr);
  testParsePeriod();
  testParseDuration();
  if( bVerbose ) printf("parsers: %d tests, %d errors\n", nTest, nErr);
  if( nErr>50 ) printf("(%d more failures not shown)\n", nErr-50);
  printf("%d errors out of %d tests\n", nErr, nTest);
  return nErr ? 1 : 0;
}
