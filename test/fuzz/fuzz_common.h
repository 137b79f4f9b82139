/*
** fuzz_common.h: what the three fuzz targets of sqlite-quota share.
**
**   test/fuzz/fuzz_args.c    hostile arguments to every function and to
**                            INSERT/UPDATE/DELETE of the quota table
**   test/fuzz/fuzz_ops.c     sequences of operations, invariants checked
**                            after every step
**   test/fuzz/fuzz_store.c   a populated store whose shadow tables the
**                            input corrupts, then every function runs
**
** Each target defines LLVMFuzzerTestOneInput(). It is built two ways:
**   - with libFuzzer (make fuzz):
**       clang -fsanitize=fuzzer,address,undefined -DSQLITE_CORE -Iext \
**           test/fuzz/X.c $(EXT_SRC) -lsqlite3 -lm
**   - with test/fuzz/replay.c, a main() that feeds every file of the corpus
**     to LLVMFuzzerTestOneInput (make test, any compiler).
**
** THE INPUT IS A PROGRAM. The targets turn the bytes into SQL text (never
** into bound parameters) and run it, so that every input has an exact SQL
** transcript: with FUZZ_TRACE=1 in the environment each statement is printed
** to stderr, ready for the sqlite3 shell after ".load ./quota". A crash
** found by libFuzzer is reported as that transcript:
**       FUZZ_TRACE=1 build/fuzz_replay_X crash-file 2>repro.sql
**
** An input that runs out of bytes reads zeros, so every prefix of an input
** is itself a valid input (libFuzzer's mutations stay meaningful).
*/
#ifndef QUOTA_FUZZ_COMMON_H
#define QUOTA_FUZZ_COMMON_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include "quota.h"

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData);

#if defined(__GNUC__) || defined(__clang__)
# define FZ_UNUSED __attribute__((unused))
#else
# define FZ_UNUSED
#endif

/* ------------------------------------------------------------ the input */

typedef struct FuzzIn FuzzIn;
struct FuzzIn {
  const uint8_t *a;
  size_t n;
  size_t i;
};

static FZ_UNUSED int fzDone(FuzzIn *p){ return p->i>=p->n; }

static FZ_UNUSED unsigned fzByte(FuzzIn *p){
  return p->i<p->n ? p->a[p->i++] : 0;
}

/* A number in [0, n), from one byte (two when n>256). */
static FZ_UNUSED unsigned fzPick(FuzzIn *p, unsigned n){
  unsigned v = fzByte(p);
  if( n>256 ) v = (v<<8) | fzByte(p);
  return n ? v % n : 0;
}

static FZ_UNUSED uint64_t fzU64(FuzzIn *p){
  uint64_t v = 0;
  int i;
  for(i=0; i<8; i++) v = (v<<8) | fzByte(p);
  return v;
}

/* --------------------------------------------------------- the SQL text */

static int fzTrace = -1;          /* FUZZ_TRACE set: print every statement */

static FZ_UNUSED int fzTracing(void){
  if( fzTrace<0 ){
    const char *z = getenv("FUZZ_TRACE");
    fzTrace = z && z[0] && z[0]!='0';
  }
  return fzTrace;
}

static FZ_UNUSED void fzNote(const char *zFmt, ...){
  if( fzTracing() ){
    va_list ap;
    va_start(ap, zFmt);
    fprintf(stderr, "-- ");
    vfprintf(stderr, zFmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
  }
}

/*
** Append a SQL literal for a value to pStr. Reals print with 17 digits (they
** read back exactly); infinities as 1e999; NaN as NULL (SQLite stores NaN as
** NULL anyway). Texts that are not plain printable bytes become
** CAST(X'..' AS TEXT), so a transcript is the same bytes as the run.
*/
static FZ_UNUSED void fzLitInt(sqlite3_str *p, sqlite3_int64 v){
  sqlite3_str_appendf(p, "%lld", v);
}

static FZ_UNUSED void fzLitReal(sqlite3_str *p, double r){
  if( isnan(r) ){
    sqlite3_str_appendall(p, "NULL");
  }else if( isinf(r) ){
    sqlite3_str_appendall(p, r<0 ? "-1e999" : "1e999");
  }else{
    char z[64];
    snprintf(z, sizeof(z), "%.17g", r);
    if( strspn(z, "-0123456789")==strlen(z) ) strcat(z, ".0");
    /* -0.0 would parse as the integer 0 negated: keep it a real */
    sqlite3_str_appendf(p, "%s%s", (r==0.0 && signbit(r)) ? "-" : "",
                        (r==0.0 && signbit(r)) ? "0.0" : z);
  }
}

static FZ_UNUSED void fzLitHex(sqlite3_str *p, const uint8_t *a, int n){
  int i;
  sqlite3_str_appendall(p, "X'");
  for(i=0; i<n; i++) sqlite3_str_appendf(p, "%02X", a[i]);
  sqlite3_str_appendall(p, "'");
}

static FZ_UNUSED void fzLitText(sqlite3_str *p, const char *z, int n){
  int i, bPlain = 1;
  if( n<0 ) n = (int)strlen(z);
  for(i=0; i<n; i++){
    unsigned char c = (unsigned char)z[i];
    if( c<0x20 || c>=0x7f ){ bPlain = 0; break; }
  }
  if( bPlain ){
    sqlite3_str_appendf(p, "'%.*q'", n, z);
  }else{
    sqlite3_str_appendall(p, "CAST(");
    fzLitHex(p, (const uint8_t*)z, n);
    sqlite3_str_appendall(p, " AS TEXT)");
  }
}

/* ------------------------------------------------------- hostile values */

static const sqlite3_int64 fzaInt[] = {
  0, 1, -1, 2, 3, 5, 10, 100, 1000000,
  (sqlite3_int64)0x7fffffffffffffffLL,            /* INT64_MAX */
  (sqlite3_int64)0x7ffffffffffffffeLL,
  -(sqlite3_int64)0x7fffffffffffffffLL - 1,       /* INT64_MIN */
  -(sqlite3_int64)0x7fffffffffffffffLL,
  2147483647, -2147483648LL, 4294967296LL, 9007199254740993LL,
  (sqlite3_int64)0x4000000000000000LL, 1700000000, -62167219200LL,
  253402300799LL, 253402300800LL, 86400, 3600, 60,
};

static const double fzaReal[] = {
  0.0, -0.0, 0.5, 1.0, 1.5, -1.0, 2.0, 10.0, 1e18,
  9223372036854775808.0, -9223372036854775808.0, 9223372036854774784.0,
  1e300, -1e300, 1e-300, 4503599627370496.5, 3.0000000000000004,
  2459000.5, 1700000000.0,
};

/* Texts the extension parses: key names, durations, periods, times. */
static const char *const fzaText[] = {
  /* keys */
  "a", "b", "c", "p", "z", "k0", "k1", "A", "sk-live-1", "acct:9", "a ",
  /* durations */
  "15 minutes", "1 second", "90 seconds", "24 hours", "30 days", "2 Days",
  "0 seconds", " 5 ", "7", "1 fortnight", "forever", "seconds",
  "9223372036854775807", "9223372036854775807 days", "106751991167300 days",
  "1 minutes ", "\t3\thours\t", "1 hour 2", "-5 seconds", "5 secs", "00",
  "1 dayss", "1e3", "0x10", "1 second\n", "99999999999999999999",
  /* periods */
  "lifetime", "hour", "day", "week", "month", "year", "LIFETIME", " Month ",
  "rolling 90 seconds", "rolling 1 second", "rolling 0 seconds",
  "ROLLING 2 MINUTES", "rolling 36600 days", "rolling 36601 days",
  "rolling  5 hours", "rolling\t5 hours", "fortnight", "rolling", "rolling 5",
  "rolling 5 weeks", "rolling -5 seconds", "rolling 3162240000 seconds",
  "rolling 99999999999999999999 seconds",
  "rolling 1234567890123456789012345678901234567890123456789012345678901 s",
  /* times */
  "2026-01-31 10:00:00", "now", "NOW", "2026-02-29", "2024-02-29 23:59:59",
  "0000-01-01 00:00:00", "9999-12-31 23:59:59", "10000-01-01", "-0001-01-01",
  "2026-13-45", "2459000.5", "1700000000", "1970-01-01T00:00:00Z",
  "2026-01-31 10:00:00.999", "+1 month", "start of month", "unixepoch",
  "2026-03-31 25:00:00", "1969-12-31 23:59:59", "1970-01-01 00:00:00",
  "localtime", "utc", "weekday 1", "-1 day", "auto", "subsec", "",
  /* meta, request ids */
  "{\"model\":\"gpt-4o\"}", "{", "null", "r1", "r2", "req-7f3a",
};
#define FZ_NTEXT ((unsigned)(sizeof(fzaText)/sizeof(fzaText[0])))

static const char *const fzaUnit[] = {
  "second", "seconds", "minute", "minutes", "hour", "hours", "day", "days",
  "SECONDS", "weeks", "", "s", "months",
};

/* Append one hostile value, chosen by the input, as a SQL literal. */
static FZ_UNUSED void fzValue(FuzzIn *in, sqlite3_str *p){
  switch( fzPick(in, 13) ){
    case 0:
      sqlite3_str_appendall(p, "NULL");
      break;
    case 1:
      fzLitInt(p, (sqlite3_int64)(int8_t)fzByte(in));
      break;
    case 2:
      fzLitInt(p, fzaInt[fzPick(in, sizeof(fzaInt)/sizeof(fzaInt[0]))]);
      break;
    case 3:
      fzLitInt(p, (sqlite3_int64)fzU64(in));
      break;
    case 4:
      fzLitReal(p, fzaReal[fzPick(in, sizeof(fzaReal)/sizeof(fzaReal[0]))]);
      break;
    case 5: {
      uint64_t u = fzU64(in);
      double r;
      memcpy(&r, &u, sizeof(r));
      fzLitReal(p, r);
      break;
    }
    case 6:
    case 7:
      fzLitText(p, fzaText[fzPick(in, FZ_NTEXT)], -1);
      break;
    case 8: {
      char z[80];
      int n = (int)fzPick(in, 32);
      int i;
      for(i=0; i<n; i++) z[i] = (char)fzByte(in);
      fzLitText(p, z, n);
      break;
    }
    case 9: {
      uint8_t a[32];
      int n = (int)fzPick(in, 33);
      int i;
      for(i=0; i<n; i++) a[i] = (uint8_t)fzByte(in);
      fzLitHex(p, a, n);
      break;
    }
    case 10: {
      /* "N unit", "rolling N unit" with N chosen like an integer */
      char z[96];
      sqlite3_int64 v = fzaInt[fzPick(in, sizeof(fzaInt)/sizeof(fzaInt[0]))];
      const char *zUnit = fzaUnit[fzPick(in, sizeof(fzaUnit)/sizeof(fzaUnit[0]))];
      int bRoll = fzByte(in)&1;
      snprintf(z, sizeof(z), "%s%lld %s", bRoll ? "rolling " : "", (long long)v, zUnit);
      fzLitText(p, z, -1);
      break;
    }
    case 11: {
      /* a time text around the interesting years */
      static const int aYear[] = {0, 1, 1969, 1970, 2024, 2026, 2038, 9999};
      char z[64];
      snprintf(z, sizeof(z), "%04d-%02u-%02u %02u:%02u:%02u",
          aYear[fzPick(in, 8)], fzPick(in, 14), fzPick(in, 33), fzPick(in, 26),
          fzPick(in, 61), fzPick(in, 61));
      fzLitText(p, z, -1);
      break;
    }
    default:
      /* the empty text, the empty blob */
      sqlite3_str_appendall(p, (fzByte(in)&1) ? "''" : "X''");
      break;
  }
}

/* ------------------------------------------------------------ running */

/* Finish a sqlite3_str, aborting on OOM (the fuzzers never fail malloc). */
static FZ_UNUSED char *fzFinish(sqlite3_str *p){
  char *z = sqlite3_str_finish(p);
  if( z==0 ){ fprintf(stderr, "fuzz: out of memory\n"); abort(); }
  return z;
}

/*
** Run every statement of zSql, stepping each to its end. Returns the
** SQLite result code of the first failure (the rest of the text is not
** run), SQLITE_OK if all succeeded. With tracing, prints zSql first.
*/
static FZ_UNUSED int fzExec(sqlite3 *db, const char *zSql){
  const char *zTail = zSql;
  int rc = SQLITE_OK;
  if( fzTracing() ) fprintf(stderr, "%s;\n", zSql);
  while( rc==SQLITE_OK && zTail && zTail[0] ){
    sqlite3_stmt *pStmt = 0;
    rc = sqlite3_prepare_v2(db, zTail, -1, &pStmt, &zTail);
    if( rc!=SQLITE_OK || pStmt==0 ) break;
    while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
      int i;
      /* fetch every column: this is what makes xColumn run */
      for(i=0; i<sqlite3_column_count(pStmt); i++){
        (void)sqlite3_column_text(pStmt, i);
      }
    }
    if( rc==SQLITE_DONE ) rc = SQLITE_OK;
    sqlite3_finalize(pStmt);
  }
  if( fzTracing() && rc!=SQLITE_OK ){
    fprintf(stderr, "-- error %d: %s\n", rc, sqlite3_errmsg(db));
  }
  return rc;
}

/* fzExec on a printf-built statement. */
static FZ_UNUSED int fzExecf(sqlite3 *db, const char *zFmt, ...){
  va_list ap;
  char *z;
  int rc;
  va_start(ap, zFmt);
  z = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  if( z==0 ){ fprintf(stderr, "fuzz: out of memory\n"); abort(); }
  rc = fzExec(db, z);
  sqlite3_free(z);
  return rc;
}

/*
** Run a one-value query (not traced: the checks' own queries). Returns 1
** and sets *pV when the query gave a row whose first value is an integer;
** copies text into zOut (when given) for text values.
*/
static FZ_UNUSED int fzQueryInt(sqlite3 *db, const char *zSql, sqlite3_int64 *pV){
  sqlite3_stmt *pStmt = 0;
  int bOk = 0;
  if( sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0)==SQLITE_OK
   && sqlite3_step(pStmt)==SQLITE_ROW
   && sqlite3_column_type(pStmt, 0)==SQLITE_INTEGER ){
    *pV = sqlite3_column_int64(pStmt, 0);
    bOk = 1;
  }
  sqlite3_finalize(pStmt);
  return bOk;
}

/* The text of a one-value query, sqlite3_malloc'd, or NULL. */
static FZ_UNUSED char *fzQueryText(sqlite3 *db, const char *zSql){
  sqlite3_stmt *pStmt = 0;
  char *z = 0;
  if( sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0)==SQLITE_OK
   && sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zV = (const char*)sqlite3_column_text(pStmt, 0);
    z = sqlite3_mprintf("%s", zV ? zV : "(null)");
  }else{
    z = sqlite3_mprintf("(error: %s)", sqlite3_errmsg(db));
  }
  sqlite3_finalize(pStmt);
  return z;
}

/* Open a fresh in-memory database with the extension registered. */
static FZ_UNUSED sqlite3 *fzOpen(void){
  static int bConfigured = 0;
  sqlite3 *db = 0;
  if( !bConfigured ){
    /* No bulk page-cache allocation per pager: each ephemeral table of a
    ** query would otherwise allocate and touch 20 pages, which dominates
    ** the run time on these tiny databases. Before the first open only. */
    sqlite3_config(SQLITE_CONFIG_PAGECACHE, (void*)0, 0, 0);
    bConfigured = 1;
  }
  if( sqlite3_open_v2(":memory:", &db,
        SQLITE_OPEN_READWRITE|SQLITE_OPEN_CREATE, 0)!=SQLITE_OK ){
    fprintf(stderr, "fuzz: cannot open a database\n");
    abort();
  }
  if( sqlite3_quota_init(db, 0, 0)!=SQLITE_OK ){
    fprintf(stderr, "fuzz: sqlite3_quota_init failed\n");
    abort();
  }
  /* A bounded statement: no input may run for long. */
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 100000);
  /* A small page cache: SQLite's default (2 MB, allocated in bulk on first
  ** use) costs more than a whole run of these tiny databases. */
  sqlite3_exec(db, "PRAGMA cache_size=64", 0, 0, 0);
  return db;
}

/* Stop the run: an invariant is broken. libFuzzer saves the input. */
static FZ_UNUSED void fzFail(sqlite3 *db, const char *zFmt, ...){
  va_list ap;
  (void)db;
  va_start(ap, zFmt);
  fprintf(stderr, "\nFUZZ INVARIANT VIOLATED: ");
  vfprintf(stderr, zFmt, ap);
  fprintf(stderr, "\n(replay with FUZZ_TRACE=1 for the SQL transcript)\n");
  va_end(ap);
  abort();
}

/* quota_integrity() and PRAGMA integrity_check must both say ok. */
static FZ_UNUSED void fzCheckIntegrity(sqlite3 *db, const char *zWhen){
  char *z = fzQueryText(db, "SELECT quota_integrity()");
  if( z==0 || strcmp(z, "ok")!=0 ){
    fzFail(db, "%s: quota_integrity() = %s", zWhen, z ? z : "(oom)");
  }
  sqlite3_free(z);
  z = fzQueryText(db, "PRAGMA integrity_check");
  if( z==0 || strcmp(z, "ok")!=0 ){
    fzFail(db, "%s: PRAGMA integrity_check = %s", zWhen, z ? z : "(oom)");
  }
  sqlite3_free(z);
}

#endif /* QUOTA_FUZZ_COMMON_H */
