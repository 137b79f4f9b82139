/*
** fuzz_args.c: hostile arguments (see fuzz_common.h for the framework).
**
** Each input runs on a fresh in-memory database whose quota table (with
** options the input may choose) holds a few keys: a parent with two
** children (a calendar month with an anchor, a rolling window), an uncapped
** lifetime key and a key capped at 0, plus a settled charge, two live holds
** and a request id. The bytes then pick up to 64 statements:
**   - a call of any quota_* function or first_of_next_month, with any
**     number of arguments of any type and value: integers (0, extremes,
**     random 64-bit), reals (fractions, 2^63, infinities, NaN, random bit
**     patterns), texts (keys, durations, periods, times, odd spacing and
**     units, random bytes, invalid UTF-8), blobs, NULL;
**   - INSERT of any subset of the table's columns (read-only ones too),
**     UPDATE of any subset, DELETE, SELECT with each plan (scan, key,
**     rowid, another collation);
**   - BEGIN / COMMIT / ROLLBACK / SAVEPOINT / RELEASE / ROLLBACK TO, and
**     calls made from inside a reading or a writing statement.
** Errors are expected. What must hold: no crash, no sanitizer report, and
** at the end quota_integrity() and PRAGMA integrity_check say ok.
*/
#include "fuzz_common.h"

#define CLOCK0 "2026-01-31 10:00:00"

static const char *const azKey[] = { "p", "a", "b", "c", "z", "new", "A" };
#define N_KEY ((unsigned)(sizeof(azKey)/sizeof(azKey[0])))

/* Kinds of argument, so that calls get past their first check often. */
#define ARG_ANY    0
#define ARG_KEY    1
#define ARG_AMOUNT 2
#define ARG_HOLD   3
#define ARG_REQ    4
#define ARG_DUR    5
#define ARG_META   6
#define ARG_TIME   7

static const struct Fn {
  const char *zName;
  int nMin, nMax;
  signed char aKind[6];
} aFn[] = {
  {"quota_reserve", 2, 4, {ARG_KEY, ARG_AMOUNT, ARG_REQ, ARG_DUR}},
  {"quota_reserve_upto", 3, 5, {ARG_KEY, ARG_AMOUNT, ARG_AMOUNT, ARG_REQ, ARG_DUR}},
  {"quota_hold", 1, 1, {ARG_HOLD}},
  {"quota_extend", 2, 2, {ARG_HOLD, ARG_DUR}},
  {"quota_settle", 2, 3, {ARG_HOLD, ARG_AMOUNT, ARG_META}},
  {"quota_release", 1, 1, {ARG_HOLD}},
  {"quota_consume", 2, 4, {ARG_KEY, ARG_AMOUNT, ARG_REQ, ARG_META}},
  {"quota_record", 2, 4, {ARG_KEY, ARG_AMOUNT, ARG_REQ, ARG_META}},
  {"quota_check", 1, 2, {ARG_KEY, ARG_AMOUNT}},
  {"quota_status", 1, 2, {ARG_KEY, ARG_AMOUNT}},
  {"quota_purge", 0, 0, {0}},
  {"quota_integrity", 0, 0, {0}},
  {"quota_clock", 0, 1, {ARG_TIME}},
  {"quota_version", 0, 0, {0}},
  {"first_of_next_month", 0, 6, {ARG_TIME, ARG_TIME, ARG_TIME, ARG_TIME, ARG_TIME, ARG_TIME}},
  {"quota_grant", 2, 6, {ARG_KEY, ARG_AMOUNT, ARG_DUR, ARG_AMOUNT, ARG_REQ, ARG_META}},
  {"quota_void", 1, 1, {ARG_HOLD}},
};
#define N_FN ((unsigned)(sizeof(aFn)/sizeof(aFn[0])))

static const char *const azCol[] = {
  "key", "cap", "period", "anchor", "parent", "retention", "used", "reserved",
  "remaining", "period_start", "resets_at", "retry_after", "note", "alert",
  "enforce", "rollover", "credits"
};
/* The kind of value each column mostly wants. */
static const int aColKind[] = {
  ARG_KEY, ARG_AMOUNT, ARG_DUR, ARG_TIME, ARG_KEY, ARG_DUR, ARG_AMOUNT,
  ARG_AMOUNT, ARG_AMOUNT, ARG_TIME, ARG_TIME, ARG_AMOUNT, ARG_META, ARG_META,
  ARG_META, ARG_AMOUNT, ARG_AMOUNT
};
#define N_COL 17

static const char *const azPeriod[] = {
  "lifetime", "hour", "day", "week", "month", "year", "rolling 90 seconds",
  "rolling 1 minute", "rolling 2 days", "rate 10 per second",
  "rate 3 per 7 seconds", "rate 1000000000000 per day",
};

/* Append an argument: half the time a plausible value of its kind. */
static void argValue(FuzzIn *in, sqlite3_str *p, int eKind){
  unsigned c = fzByte(in);
  if( (c & 1)==0 || eKind==ARG_ANY ){
    fzValue(in, p);
    return;
  }
  c >>= 1;
  switch( eKind ){
    case ARG_KEY:
      fzLitText(p, azKey[c % N_KEY], -1);
      break;
    case ARG_AMOUNT:
      fzLitInt(p, (sqlite3_int64)(c % 16));
      break;
    case ARG_HOLD:
      fzLitInt(p, (sqlite3_int64)(c % 6));
      break;
    case ARG_REQ:
      sqlite3_str_appendf(p, "'r%u'", c % 4);
      break;
    case ARG_DUR:
      if( c & 1 ) fzLitText(p, azPeriod[(c>>1) % 9], -1);
      else fzLitInt(p, (sqlite3_int64)((c>>1) % 120));
      break;
    case ARG_META:
      sqlite3_str_appendall(p, "'{\"m\":1}'");
      break;
    default: /* ARG_TIME */
      fzLitText(p, fzaText[c % FZ_NTEXT], -1);
      break;
  }
}

/* Append "name(args)" for a function call chosen by the input. */
static void fnCall(FuzzIn *in, sqlite3_str *p){
  const struct Fn *f = &aFn[fzPick(in, N_FN)];
  int n = f->nMin + (int)fzPick(in, (unsigned)(f->nMax - f->nMin + 1));
  int i;
  sqlite3_str_appendf(p, "%s(", f->zName);
  for(i=0; i<n; i++){
    if( i ) sqlite3_str_appendall(p, ", ");
    argValue(in, p, f->aKind[i]);
  }
  sqlite3_str_appendall(p, ")");
}

/* The CREATE VIRTUAL TABLE statement: default, or options from the input. */
static void createTable(FuzzIn *in, sqlite3 *db){
  static const char *const azOpt[] = {
    "hold_ttl", "idempotency", "retention", "purge_limit", "HOLD_TTL", "bogus", ""
  };
  unsigned c = fzByte(in);
  if( c>=0x80 ){
    sqlite3_str *p = sqlite3_str_new(0);
    int nOpt = 1 + (int)(c % 4), i;
    sqlite3_str_appendall(p, "CREATE VIRTUAL TABLE quota USING quota(");
    for(i=0; i<nOpt; i++){
      if( i ) sqlite3_str_appendall(p, ", ");
      sqlite3_str_appendf(p, "%s=", azOpt[fzPick(in, 7)]);
      if( fzByte(in) & 1 ){
        fzValue(in, p);
      }else{
        /* a bare token, as the documentation writes them */
        static const char *const azBare[] = {
          "300", "'5 minutes'", "forever", "'forever'", "0", "'0 seconds'",
          "1", "'1 day'", "\"2 hours\"", "10000", "'  7  '", "-1", "'x'",
        };
        sqlite3_str_appendall(p, azBare[fzPick(in, 13)]);
      }
    }
    sqlite3_str_appendall(p, ")");
    {
      char *z = fzFinish(p);
      int rc = fzExec(db, z);
      sqlite3_free(z);
      if( rc==SQLITE_OK ) return;
    }
  }
  fzExec(db, "CREATE VIRTUAL TABLE quota USING quota");
}

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData){
  FuzzIn in;
  sqlite3 *db;
  int nOp;

  in.a = aData;
  in.n = nData;
  in.i = 0;
  db = fzOpen();
  fzExec(db, "SELECT quota_clock('" CLOCK0 "')");
  createTable(&in, db);
  fzExec(db,
    "INSERT INTO quota(key, cap, period, anchor, parent) VALUES"
    " ('p', 100, 'day', NULL, NULL),"
    " ('a', 10, 'month', '2026-01-31 10:00:00', 'p'),"
    " ('b', 5, 'rolling 60 seconds', NULL, 'p'),"
    " ('c', NULL, NULL, NULL, NULL),"
    " ('z', 0, 'hour', NULL, NULL)");
  fzExec(db, "SELECT quota_consume('a', 3, 'r0')");
  fzExec(db, "SELECT quota_reserve('a', 2, 'r1')");
  fzExec(db, "SELECT quota_reserve('b', 1, NULL, 30)");
  fzExec(db, "SELECT quota_record('c', 7, 'r2', '{\"m\":1}')");
  fzExec(db, "CREATE TABLE t(x)");

  for(nOp=0; nOp<64 && !fzDone(&in); nOp++){
    sqlite3_str *p = sqlite3_str_new(0);
    unsigned op = fzPick(&in, 16);
    int i;
    char *z;
    switch( op ){
      case 0: case 1: case 2: case 3: case 4: case 5:
        sqlite3_str_appendall(p, "SELECT ");
        fnCall(&in, p);
        break;
      case 6: {
        /* INSERT of a subset of the columns */
        unsigned m = (fzByte(&in)<<8) | fzByte(&in);
        int bFirst = 1;
        if( (m & 0x1fff)==0 ) m = 1;
        sqlite3_str_appendall(p, "INSERT INTO quota(");
        for(i=0; i<N_COL; i++){
          if( m & (1u<<i) ){
            sqlite3_str_appendf(p, "%s%s", bFirst ? "" : ", ", azCol[i]);
            bFirst = 0;
          }
        }
        if( fzByte(&in) & 1 ){
          sqlite3_str_appendall(p, ", rowid");
          m |= 0x8000;
        }
        sqlite3_str_appendall(p, ") VALUES(");
        bFirst = 1;
        for(i=0; i<16; i++){
          if( m & (1u<<i) ){
            if( !bFirst ) sqlite3_str_appendall(p, ", ");
            if( i<N_COL ) argValue(&in, p, aColKind[i]); else fzValue(&in, p);
            bFirst = 0;
          }
        }
        sqlite3_str_appendall(p, ")");
        break;
      }
      case 7: case 8: {
        /* UPDATE of a subset of the columns */
        unsigned m = (fzByte(&in)<<8) | fzByte(&in);
        int bFirst = 1;
        if( (m & 0x1fff)==0 ) m = 1u<<(fzPick(&in, N_COL));
        sqlite3_str_appendall(p, "UPDATE quota SET ");
        for(i=0; i<N_COL; i++){
          if( m & (1u<<i) ){
            sqlite3_str_appendf(p, "%s%s = ", bFirst ? "" : ", ", azCol[i]);
            if( fzByte(&in)%5==0 ){
              /* the column's own value, or an expression of it */
              sqlite3_str_appendf(p, "%s", azCol[i]);
            }else{
              argValue(&in, p, aColKind[i]);
            }
            bFirst = 0;
          }
        }
        if( m & 0x8000 ){
          sqlite3_str_appendall(p, ", rowid = ");
          fzValue(&in, p);
        }
        switch( fzPick(&in, 4) ){
          case 0: break;
          case 1:
            sqlite3_str_appendall(p, " WHERE rowid = ");
            argValue(&in, p, ARG_HOLD);
            break;
          default:
            sqlite3_str_appendall(p, " WHERE key = ");
            argValue(&in, p, ARG_KEY);
            break;
        }
        break;
      }
      case 9:
        sqlite3_str_appendall(p, "DELETE FROM quota");
        if( fzByte(&in) & 1 ){
          sqlite3_str_appendall(p, " WHERE key = ");
          argValue(&in, p, ARG_KEY);
        }else{
          sqlite3_str_appendall(p, " WHERE rowid = ");
          argValue(&in, p, ARG_HOLD);
        }
        break;
      case 10:
        switch( fzPick(&in, 5) ){
          case 0:
            sqlite3_str_appendall(p, "SELECT * FROM quota");
            break;
          case 1:
            sqlite3_str_appendall(p, "SELECT *, rowid FROM quota WHERE key = ");
            argValue(&in, p, ARG_KEY);
            break;
          case 2:
            sqlite3_str_appendall(p, "SELECT * FROM quota WHERE rowid = ");
            argValue(&in, p, ARG_HOLD);
            break;
          case 3:
            sqlite3_str_appendall(p, "SELECT * FROM quota WHERE key = ");
            argValue(&in, p, ARG_KEY);
            sqlite3_str_appendall(p, " COLLATE NOCASE ORDER BY rowid DESC");
            break;
          default:
            sqlite3_str_appendall(p, "SELECT count(*), sum(used), max(retry_after)"
                " FROM quota WHERE key > ");
            argValue(&in, p, ARG_ANY);
            break;
        }
        break;
      case 11: {
        static const char *const azTxn[] = {
          "BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK", "SAVEPOINT s1",
          "RELEASE s1", "ROLLBACK TO s1", "BEGIN EXCLUSIVE",
        };
        sqlite3_str_appendall(p, azTxn[fzPick(&in, 8)]);
        break;
      }
      case 12:
        /* a call from inside a reading statement (an error for writers) */
        sqlite3_str_appendall(p, "SELECT key, ");
        fnCall(&in, p);
        sqlite3_str_appendall(p, " FROM quota");
        break;
      case 13:
        /* a call from inside a writing statement (runs bare) */
        sqlite3_str_appendall(p, "INSERT INTO t(x) SELECT ");
        fnCall(&in, p);
        break;
      case 14:
        sqlite3_str_appendall(p, "SELECT quota_clock(");
        argValue(&in, p, ARG_TIME);
        sqlite3_str_appendall(p, ")");
        break;
      default:
        /* several calls in one statement */
        sqlite3_str_appendall(p, "SELECT ");
        fnCall(&in, p);
        sqlite3_str_appendall(p, ", ");
        fnCall(&in, p);
        break;
    }
    z = fzFinish(p);
    fzExec(db, z);
    /* An unpinned clock is the wall clock: pin it again, so that every run
    ** of an input is the same. */
    if( strstr(z, "quota_clock(NULL)") ) fzExec(db, "SELECT quota_clock('" CLOCK0 "')");
    sqlite3_free(z);
  }

  fzCheckIntegrity(db, "fuzz_args");
  if( !sqlite3_get_autocommit(db) ){
    fzExec(db, "COMMIT");
    fzCheckIntegrity(db, "fuzz_args after COMMIT");
  }
  sqlite3_close(db);
  return 0;
}
