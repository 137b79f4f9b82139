/*
** util.c: how sqlite-quota reads the values SQL hands it. One rule per kind
** of value, used by the functions and by the table alike:
**
**   integers   an INTEGER, or a REAL that is a whole number in the 64-bit
**              range (clients such as Node bind every number as a double)
**   names      keys, parents and request ids: TEXT, or a number that the
**              integer rule accepts, read as its decimal text; never empty,
**              never holding a NUL byte (SQLite would cut it short)
**   durations  an integer number of seconds, or text "N unit"
**   times      anything SQLite's datetime() reads
**   alerts     a comma list of thresholds, each N (units) or N% (of cap)
**
** Saturating arithmetic keeps sums of counters from wrapping around.
*/
#include "util.h"
#include <string.h>
#include <math.h>

/*
** The integer rule: returns 0 and sets *pOut when v is an INTEGER or a
** whole-number REAL in the 64-bit range; text, blobs and NULL never are.
*/
int quotaValueInt(sqlite3_value *v, sqlite3_int64 *pOut){
  if( sqlite3_value_type(v)==SQLITE_INTEGER ){
    *pOut = sqlite3_value_int64(v);
    return 0;
  }
  if( sqlite3_value_type(v)==SQLITE_FLOAT ){
    double r = sqlite3_value_double(v);
    if( r>=-9223372036854775808.0 && r<9223372036854775808.0 && r==floor(r) ){
      *pOut = (sqlite3_int64)r;
      return 0;
    }
  }
  return 1;
}

/*
** The name rule: the text of v, or NULL when v is not a name. A number the
** integer rule accepts is written into zBuf (QUOTA_NUMBER_TEXT bytes) as
** its decimal text, so 42, 42.0 and '42' name the same key. *pbNul is set
** when v is text holding a NUL byte (then NULL is returned): the C string
** would stop at it, and 'k\0x' would silently name 'k'.
*/
const char *quotaValueText(sqlite3_value *v, char *zBuf, int *pbNul){
  int t = sqlite3_value_type(v);
  sqlite3_int64 i;
  const char *z;
  *pbNul = 0;
  if( t==SQLITE_INTEGER || t==SQLITE_FLOAT ){
    if( quotaValueInt(v, &i) ) return 0;
    sqlite3_snprintf(QUOTA_NUMBER_TEXT, zBuf, "%lld", i);
    return zBuf;
  }
  if( t!=SQLITE_TEXT ) return 0;
  z = (const char*)sqlite3_value_text(v);
  if( z==0 ) return 0;
  if( (int)strlen(z)!=sqlite3_value_bytes(v) ){
    *pbNul = 1;
    return 0;
  }
  return z[0] ? z : 0;
}

/* White space a duration text may have around its parts. */
static int utilIsSpace(char c){
  return c==' ' || c=='\t' || c=='\n' || c=='\r';
}

/* Seconds in the unit named by the n bytes at z (plural allowed). */
static int utilUnitSeconds(const char *z, int n, sqlite3_int64 *pMul){
  static const struct { const char *zName; sqlite3_int64 mul; } aUnit[] = {
    {"second", 1}, {"minute", 60}, {"hour", 3600}, {"day", 86400},
  };
  int i;
  if( ALWAYS(n>0) && (z[n-1]=='s' || z[n-1]=='S') ) n--;
  for(i=0; i<QUOTA_ARRAYSIZE(aUnit); i++){
    if( (int)strlen(aUnit[i].zName)==n && sqlite3_strnicmp(z, aUnit[i].zName, n)==0 ){
      *pMul = aUnit[i].mul;
      return 0;
    }
  }
  return 1;
}

/*
** Durations: an integer number of seconds, or text "N unit" where unit is
** second(s), minute(s), hour(s) or day(s), any case, with optional spaces.
** Text holding only digits is a number of seconds too. Returns 0 and sets
** *pSecs on success (and *pUnitMul, if given, to the unit's seconds), 1
** when the text is not a duration or overflows.
*/
int quotaParseDurationText(const char *z, sqlite3_int64 *pSecs, int *pUnitMul){
  sqlite3_int64 n = 0, mul = 1;
  const char *zUnit;
  int nDigit = 0;
  if( z==0 ) return 1;
  while( utilIsSpace(*z) ) z++;
  while( *z>='0' && *z<='9' ){
    if( n > (LARGEST_INT64 - (*z-'0'))/10 ) return 1;
    n = n*10 + (*z-'0');
    z++;
    nDigit++;
  }
  if( nDigit==0 ) return 1;
  while( utilIsSpace(*z) ) z++;
  zUnit = z;
  while( *z && !utilIsSpace(*z) ) z++;
  if( z>zUnit && utilUnitSeconds(zUnit, (int)(z-zUnit), &mul) ) return 1;
  while( utilIsSpace(*z) ) z++;
  if( *z ) return 1;
  if( n > LARGEST_INT64/mul ) return 1;
  *pSecs = n*mul;
  if( pUnitMul ) *pUnitMul = (int)mul;
  return 0;
}

/* The duration rule for a SQL value: 0 and *pSecs set, or 1. */
int quotaValueDuration(sqlite3_value *v, sqlite3_int64 *pSecs){
  if( sqlite3_value_type(v)==SQLITE_TEXT ){
    const char *z = (const char*)sqlite3_value_text(v);
    if( z==0 || (int)strlen(z)!=sqlite3_value_bytes(v) ) return 1;
    return quotaParseDurationText(z, pSecs, 0);
  }
  return quotaValueInt(v, pSecs);
}

/*
** The alert rule: a comma list of at most QUOTA_ALERT_MAX thresholds, each
** a positive whole number N of units or N% (N percent of cap), with
** optional spaces around each item: '80%, 100%', '5000,10000'. Sets
** aOut[0..*pnOut) to the thresholds in canonical order (percents, then
** units, each ascending; a repeated threshold once), kept as N for units
** and -N for N%, and zCanon (QUOTA_ALERT_TEXT bytes) to the canonical text:
** the items in that order joined by ", ". Returns 0 on success, 1 when the
** text is not an alert list.
*/
int quotaParseAlert(const char *z, sqlite3_int64 *aOut, int *pnOut, char *zCanon){
  sqlite3_int64 a[QUOTA_ALERT_MAX];
  int n = 0, i, j;
  if( z==0 ) return 1;
  for(;;){
    sqlite3_int64 v = 0;
    int nDigit = 0;
    while( utilIsSpace(*z) ) z++;
    while( *z>='0' && *z<='9' ){
      if( v > (LARGEST_INT64 - (*z-'0'))/10 ) return 1;
      v = v*10 + (*z++ - '0');
      nDigit++;
    }
    if( nDigit==0 || v==0 ) return 1;
    if( *z=='%' ){ v = -v; z++; }
    while( utilIsSpace(*z) ) z++;
    for(i=0; i<n && a[i]!=v; i++){}
    if( i==n ){
      if( n>=QUOTA_ALERT_MAX ) return 1;
      a[n++] = v;
    }
    if( *z==0 ) break;
    if( *z++!=',' ) return 1;
  }
  /* canonical order: percents (negative) first, then units; ascending
  ** magnitude within each (insertion sort: at most 16 items) */
  for(i=1; i<n; i++){
    sqlite3_int64 x = a[i];
    for(j=i; j>0; j--){
      sqlite3_int64 y = a[j-1];
      int bBefore = (x<0)!=(y<0) ? x<0 : (x<0 ? x>y : x<y);
      if( !bBefore ) break;
      a[j] = y;
    }
    a[j] = x;
  }
  for(i=0; i<n; i++) aOut[i] = a[i];
  *pnOut = n;
  quotaAlertText(aOut, n, zCanon);
  return 0;
}

/* The canonical text of n thresholds in canonical order (zOut holds
** QUOTA_ALERT_TEXT bytes): the items joined by ", ". */
void quotaAlertText(const sqlite3_int64 *a, int n, char *zOut){
  int i;
  for(i=0; i<n; i++){
    char zItem[QUOTA_NUMBER_TEXT];
    size_t nItem;
    quotaAlertItem(a[i], zItem);
    nItem = strlen(zItem);
    if( i ){ memcpy(zOut, ", ", 2); zOut += 2; }
    memcpy(zOut, zItem, nItem);
    zOut += nItem;
  }
  *zOut = 0;
}

/* One threshold as the alert list writes it: "80%" or "5000". */
void quotaAlertItem(sqlite3_int64 v, char *zOut){
  if( v<0 ) sqlite3_snprintf(QUOTA_NUMBER_TEXT, zOut, "%lld%%", -v);
  else sqlite3_snprintf(QUOTA_NUMBER_TEXT, zOut, "%lld", v);
}

/* a + b, saturating at the ends of the 64-bit range. */
sqlite3_int64 quotaAddSat(sqlite3_int64 a, sqlite3_int64 b){
  if( b>0 && a>LARGEST_INT64-b ) return LARGEST_INT64;
  if( b<0 && a<SMALLEST_INT64-b ) return SMALLEST_INT64;
  return a+b;
}

/* a - b, saturating at the ends of the 64-bit range. */
sqlite3_int64 quotaSubSat(sqlite3_int64 a, sqlite3_int64 b){
  if( b<0 ){
    return b==SMALLEST_INT64 ? (a>=0 ? LARGEST_INT64 : a-b) : quotaAddSat(a, -b);
  }
  return quotaAddSat(a, -b);
}

/*
** The time rule: any value SQLite's datetime() takes, as whole seconds
** since 1970 (a fraction is dropped; a BLOB is read as its text, as
** datetime() reads it). SQLITE_MISMATCH when datetime() gives NULL, the
** text holds a NUL byte, or the year is outside 0000-9999. 'now' is `now`,
** the connection's clock (quota_clock), not SQLite's, so a pinned clock
** governs it too.
*/
int quotaParseTime(sqlite3 *db, sqlite3_int64 now, sqlite3_value *pVal,
                   sqlite3_int64 *pT){
  sqlite3_stmt *pStmt = 0;
  const char *z = (const char*)sqlite3_value_text(pVal);
  int rc;
  if( sqlite3_value_type(pVal)==SQLITE_TEXT ){
    if( z && (int)strlen(z)!=sqlite3_value_bytes(pVal) ) return SQLITE_MISMATCH;
    if( z && sqlite3_stricmp(z, "now")==0 ){
      *pT = now;
      return SQLITE_OK;
    }
  }
  rc = sqlite3_prepare_v2(db, "SELECT CAST(strftime('%s', ?1) AS INTEGER)",
                          -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_value(pStmt, 1, pVal);
    rc = sqlite3_step(pStmt);
    if( rc==SQLITE_ROW ){
      rc = SQLITE_OK;
      if( sqlite3_column_type(pStmt, 0)==SQLITE_NULL ){
        rc = SQLITE_MISMATCH;
      }else{
        *pT = sqlite3_column_int64(pStmt, 0);
        if( *pT<QUOTA_TIME_MIN || NEVER(*pT>QUOTA_TIME_MAX) ) rc = SQLITE_MISMATCH;
      }
    }
  }
  sqlite3_finalize(pStmt);
  return rc;
}

/* Step a statement that returns no row, then reset it. */
int quotaStepDone(sqlite3_stmt *pStmt){
  int rc = sqlite3_step(pStmt);
  if( rc==SQLITE_DONE || NEVER(rc==SQLITE_ROW) ){
    rc = sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
  }
  return rc;
}

/*
** A short description of a value for an error message, so that it says
** what was received: "NULL", "text '5'", "a blob", "-3", "3.5", "1e+300
** (past the 64-bit range)". sqlite3_malloc'ed; NULL when out of memory.
*/
char *quotaValueDescribe(sqlite3_value *v){
  switch( sqlite3_value_type(v) ){
    case SQLITE_NULL:
      return sqlite3_mprintf("NULL");
    case SQLITE_INTEGER:
      return sqlite3_mprintf("%lld", sqlite3_value_int64(v));
    case SQLITE_FLOAT: {
      double r = sqlite3_value_double(v);
      int bOut = !(r>=-9223372036854775808.0 && r<9223372036854775808.0);
      return sqlite3_mprintf("%!.15g%s", r, bOut ? " (past the 64-bit range)" : "");
    }
    case SQLITE_TEXT: {
      /* quoted as SQL would ('' for a quote), control bytes as \xNN so
      ** that a message stays one readable line; at most 40 bytes */
      const char *z = (const char*)sqlite3_value_text(v);
      int n = sqlite3_value_bytes(v), i;
      sqlite3_str *pStr;
      if( z==0 ) return 0;
      if( (int)strlen(z)!=n ) return sqlite3_mprintf("text with a NUL byte");
      pStr = sqlite3_str_new(0);
      sqlite3_str_appendall(pStr, "text '");
      for(i=0; i<n && i<40; i++){
        unsigned char c = (unsigned char)z[i];
        if( c=='\'' ) sqlite3_str_appendall(pStr, "''");
        else if( c<0x20 ) sqlite3_str_appendf(pStr, "\\x%02x", c);
        else sqlite3_str_appendchar(pStr, 1, (char)c);
      }
      sqlite3_str_appendall(pStr, n>40 ? "...'" : "'");
      return sqlite3_str_finish(pStr);
    }
    default:
      return sqlite3_mprintf("a blob");
  }
}
