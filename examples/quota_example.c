/*
** quota_example.c: sqlite-quota compiled into a C program.
**
** Build (after `make static`, from the repository root):
**
**   cc -std=c99 -Iext -o quota_example examples/quota_example.c \
**       libsqlite_quota.a -lsqlite3 -lm
**
** or, after `make install`:
**
**   cc -o quota_example quota_example.c $(pkg-config --cflags --libs sqlite-quota)
**
** Run: ./quota_example [DATABASE]     (default: an in-memory database)
**
** sqlite3_auto_extension() registers the extension for every connection the
** program opens afterwards: no quota.so, no sqlite3_load_extension(), no
** enable_load_extension.  The program then runs a reservation's lifecycle:
** reserve, a denied reservation, quota_status, settle below the estimate,
** and release.  QUOTA_CLOCK in the environment pins the extension's clock
** (the test suite uses it); without it the system clock is used.
*/
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <sqlite3.h>
#include "quota.h"

/*
** Run one statement that returns one value, print it (NULL as "NULL") after
** zLabel, and return it as an integer through *pOut when pOut is not NULL
** (0 for NULL).  The arguments after zTypes are bound in order, one per
** character of zTypes: 't' a const char* (text), 'i' an sqlite3_int64.
** On error print the extended result code and the message, and return the
** code; SQLITE_OK otherwise.
*/
static int one(sqlite3 *db, sqlite3_int64 *pOut, const char *zLabel,
               const char *zSql, const char *zTypes, ...){
  sqlite3_stmt *pStmt = 0;
  va_list ap;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  int i;
  if( pOut ) *pOut = 0;
  va_start(ap, zTypes);
  for(i=0; rc==SQLITE_OK && zTypes[i]; i++){
    if( zTypes[i]=='t' ){
      rc = sqlite3_bind_text(pStmt, i+1, va_arg(ap, const char*), -1,
                             SQLITE_TRANSIENT);
    }else{
      rc = sqlite3_bind_int64(pStmt, i+1, va_arg(ap, sqlite3_int64));
    }
  }
  va_end(ap);
  if( rc==SQLITE_OK ) rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    if( sqlite3_column_type(pStmt, 0)==SQLITE_NULL ){
      printf("%s: NULL\n", zLabel);
    }else{
      printf("%s: %s\n", zLabel, (const char*)sqlite3_column_text(pStmt, 0));
      if( pOut ) *pOut = sqlite3_column_int64(pStmt, 0);
    }
    rc = SQLITE_OK;
  }else{
    printf("%s: error %d: %s\n", zLabel, sqlite3_extended_errcode(db),
           sqlite3_errmsg(db));
  }
  sqlite3_finalize(pStmt);
  return rc;
}

int main(int argc, char **argv){
  const char *zDb = argc>1 ? argv[1] : ":memory:";
  const char *zClock = getenv("QUOTA_CLOCK");
  const char *zKey = "sk-live-1";
  sqlite3 *db = 0;
  sqlite3_int64 hold = 0, hold2 = 0;
  char *zErr = 0;
  int nErr = 0;

  /* Once, before any connection is opened. */
  if( sqlite3_auto_extension((void(*)(void))sqlite3_quota_init)!=SQLITE_OK ){
    fprintf(stderr, "sqlite3_auto_extension failed\n");
    return 1;
  }
  if( sqlite3_open(zDb, &db)!=SQLITE_OK ){
    fprintf(stderr, "cannot open %s: %s\n", zDb, sqlite3_errmsg(db));
    return 1;
  }
  sqlite3_busy_timeout(db, 5000);
  printf("header: %s\n", SQLITE_QUOTA_VERSION);
  one(db, 0, "quota_version", "SELECT quota_version()", "");
  if( zClock ){
    one(db, 0, "clock", "SELECT quota_clock(?1)", "t", zClock);
  }
  if( sqlite3_exec(db,
        "CREATE VIRTUAL TABLE IF NOT EXISTS quota USING quota;"
        "INSERT OR IGNORE INTO quota(key, cap, period)"
        " VALUES ('sk-live-1', 100, 'day');", 0, 0, &zErr)!=SQLITE_OK ){
    fprintf(stderr, "setup: %s\n", zErr);
    sqlite3_free(zErr);
    return 1;
  }

  /* Reserve the estimate: a hold id, or NULL when denied. */
  nErr += one(db, &hold, "reserve 60", "SELECT quota_reserve(?1, ?2, ?3)",
              "tit", zKey, (sqlite3_int64)60, "req-1")!=SQLITE_OK;
  nErr += one(db, &hold2, "reserve 50", "SELECT quota_reserve(?1, ?2, ?3)",
              "tit", zKey, (sqlite3_int64)50, "req-2")!=SQLITE_OK;
  if( hold2==0 ){
    /* Denied: quota_status has the numbers for an HTTP 429. */
    one(db, 0, "status", "SELECT quota_status(?1, ?2)", "ti", zKey,
        (sqlite3_int64)50);
  }
  /* The work cost 42: settle charges 42 and frees the other 18. */
  nErr += one(db, 0, "settle 42", "SELECT quota_settle(?1, ?2, ?3)", "iit",
              hold, (sqlite3_int64)42, "{\"model\":\"m1\"}")!=SQLITE_OK;
  nErr += one(db, &hold2, "reserve 50", "SELECT quota_reserve(?1, ?2, ?3)",
              "tit", zKey, (sqlite3_int64)50, "req-2")!=SQLITE_OK;
  /* The work failed: release the hold, nothing is charged. */
  nErr += one(db, 0, "release", "SELECT quota_release(?1)", "i", hold2)
          !=SQLITE_OK;
  one(db, 0, "status", "SELECT quota_status(?1)", "t", zKey);
  one(db, 0, "row", "SELECT used || ' used, ' || reserved || ' reserved, '"
      " || remaining || ' remaining' FROM quota WHERE key = ?1", "t", zKey);
  /* Errors come back as ordinary SQLite errors. */
  one(db, 0, "settle again", "SELECT quota_settle(?1, 1)", "i", hold2);
  one(db, 0, "bad amount", "SELECT quota_reserve(?1, -1)", "t", zKey);

  sqlite3_close(db);
  return nErr ? 1 : 0;
}
