/*
** test/integrity_newest.c: PRAGMA integrity_check and PRAGMA quick_check run
** the quota table's own check (its xIntegrity method) on SQLite 3.44 and
** later, and report what quota_integrity() reports, with the same text.
**
**   build/newest/integrity_newest DBFILE     (test/newest.test runs it)
**
** ext/vtab.c compiles xIntegrity in only when built against 3.44+ headers, so
** this is meaningful in build/newest/ (the newest SQLite amalgamation). Built
** against an older SQLite (build/integrity_newest, the system 3.40), it says
** so and exits 0 with nothing checked.
**
** DBFILE (and its -journal) is deleted and recreated. Keys: k (cap 10, a live
** hold of 3 and a charge of 2), r (a rolling hour, charged 4), parent org of
** k; the clock is pinned. Checks:
**   1.  a healthy store: both pragmas, on the whole database and on the table
**       alone, and quota_integrity() give "ok";
**   2.  quota_keys.reserved of k raised by 5 by hand: every one of them gives
**       "quota: key 'k': reserved 8 but its live holds sum to 3", and that is
**       integrity_check's only row; put back, "ok" again;
**   3.  quota_keys.used of the rolling key r raised by 5: "quota: key 'r':
**       used 9 but its window buckets sum to 4" (the used of a key that is not
**       rolling has no rows to be checked against: the ledger may be purged);
**   4.  a second quota table, named q2, in an attached database (the
**       functions use main.quota only: it is damaged by hand): its problem is
**       reported with its own name, by the pragmas on the whole database and
**       on that schema, and not on main;
**   5.  a store damaged by hand is still readable: integrity_check is an
**       ordinary query, the statement succeeds.
** Prints "integrity_newest: SQLite VERSION", a line per failed check and
** "integrity_newest: N checks, N failures"; exits 1 on a failure, 2 on a
** setup failure.
*/
#include <sqlite3.h>
#include "quota.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define DRIVER_PROG "integrity_newest"
#include "driver_util.h"

#if SQLITE_VERSION_NUMBER>=3044000
static int nCheck = 0;
static int nFail = 0;

/*
** Every row of zSql (first column), joined by newlines, from sqlite3_malloc;
** "error: MESSAGE" if the statement fails.
*/
static char *rows(sqlite3 *db, const char *zSql){
  sqlite3_stmt *p = 0;
  sqlite3_str *pStr = sqlite3_str_new(db);
  int rc, n = 0;
  rc = sqlite3_prepare_v2(db, zSql, -1, &p, 0);
  while( rc==SQLITE_OK && (rc = sqlite3_step(p))==SQLITE_ROW ){
    const char *z = (const char*)sqlite3_column_text(p, 0);
    sqlite3_str_appendf(pStr, "%s%s", n++ ? "\n" : "", z ? z : "NULL");
    rc = SQLITE_OK;
  }
  if( rc!=SQLITE_DONE ){
    sqlite3_str_reset(pStr);
    sqlite3_str_appendf(pStr, "error: %s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(p);
  return sqlite3_str_finish(pStr);
}

/* Check that zSql gives exactly zWant. */
static void check(sqlite3 *db, const char *zName, const char *zSql, const char *zWant){
  char *zGot = rows(db, zSql);
  nCheck++;
  if( zGot==0 || strcmp(zGot, zWant)!=0 ){
    nFail++;
    printf("integrity_newest: FAILED %s: %s\n  got:  [%s]\n  want: [%s]\n",
           zName, zSql, zGot ? zGot : "(out of memory)", zWant);
  }
  sqlite3_free(zGot);
}

/* The three ways to ask, on the whole database and on table zTab alone. */
static void checkAll(sqlite3 *db, const char *zName, const char *zTab, const char *zWant){
  char zSql[200], zLabel[100];
  static const char *azWay[] = { "integrity_check", "quick_check" };
  int i;
  for(i=0; i<2; i++){
    snprintf(zLabel, sizeof(zLabel), "%s %s", zName, azWay[i]);
    snprintf(zSql, sizeof(zSql), "PRAGMA %s", azWay[i]);
    check(db, zLabel, zSql, zWant);
    snprintf(zLabel, sizeof(zLabel), "%s %s(%s)", zName, azWay[i], zTab);
    snprintf(zSql, sizeof(zSql), "PRAGMA %s(%s)", azWay[i], zTab);
    check(db, zLabel, zSql, zWant);
  }
}

/*
** Damage main.quota's store with "UPDATE quota_keys SET zDamage": every
** check gives zWant; then repair it with "... SET zRepair": "ok" again.
*/
static void damage(sqlite3 *db, const char *zName, const char *zDamage,
                   const char *zRepair, const char *zWant){
  char zSql[200], zLabel[100];
  snprintf(zSql, sizeof(zSql), "UPDATE quota_keys SET %s", zDamage);
  execOk(db, zSql);
  snprintf(zLabel, sizeof(zLabel), "%s damaged", zName);
  checkAll(db, zLabel, "quota", zWant);
  snprintf(zLabel, sizeof(zLabel), "%s quota_integrity", zName);
  check(db, zLabel, "SELECT quota_integrity()", zWant);
  snprintf(zSql, sizeof(zSql), "UPDATE quota_keys SET %s", zRepair);
  execOk(db, zSql);
  snprintf(zLabel, sizeof(zLabel), "%s repaired", zName);
  checkAll(db, zLabel, "quota", "ok");
}

static int run(const char *zFile){
  char *zAux;
  sqlite3 *db = 0;
  zAux = sqlite3_mprintf("%s-aux", zFile);
  if( zAux==0 ) fatal("out of memory");
  unlink(zFile); unlink(zAux);
  sqlite3_auto_extension((void(*)(void))sqlite3_quota_init);
  if( sqlite3_open(zFile, &db)!=SQLITE_OK ) fatalDb("open", db);
  execOk(db,
    "SELECT quota_clock('2026-03-15 12:00:00');"
    "CREATE VIRTUAL TABLE quota USING quota;"
    "INSERT INTO quota(key, cap) VALUES('org', 100);"
    "INSERT INTO quota(key, cap, parent) VALUES('k', 10, 'org');"
    "INSERT INTO quota(key, cap, period) VALUES('r', NULL, 'rolling 1 hours');"
    "SELECT quota_reserve('k', 3);"
    "SELECT quota_consume('k', 2);"
    "SELECT quota_consume('r', 4);");

  /* 1. healthy */
  checkAll(db, "1 healthy", "quota", "ok");
  check(db, "1 quota_integrity", "SELECT quota_integrity()", "ok");

  /* 2. reserved of k */
  damage(db, "2", "reserved = reserved + 5 WHERE key = 'k'",
         "reserved = reserved - 5 WHERE key = 'k'",
         "quota: key 'k': reserved 8 but its live holds sum to 3");

  /* 3. used of the rolling key r */
  damage(db, "3", "used = used + 5 WHERE key = 'r'", "used = used - 5 WHERE key = 'r'",
         "quota: key 'r': used 9 but its window buckets sum to 4");

  /* 4. a table of another name in an attached database */
  {
    char *zSql = sqlite3_mprintf("ATTACH %Q AS aux", zAux);
    if( zSql==0 ) fatal("out of memory");
    execOk(db, zSql);
    sqlite3_free(zSql);
  }
  execOk(db,
    "CREATE VIRTUAL TABLE aux.q2 USING quota;"
    "INSERT INTO aux.q2(key, cap) VALUES('a', 50);"
    "UPDATE aux.q2_keys SET reserved = 4 WHERE key = 'a';");
  check(db, "4 integrity_check", "PRAGMA integrity_check",
        "q2: key 'a': reserved 4 but its live holds sum to 0");
  check(db, "4 main.integrity_check", "PRAGMA main.integrity_check", "ok");
  check(db, "4 aux.quick_check", "PRAGMA aux.quick_check",
        "q2: key 'a': reserved 4 but its live holds sum to 0");
  check(db, "4 quota_integrity", "SELECT quota_integrity()", "ok");

  /* 5. the damaged store is still readable */
  check(db, "5 read", "SELECT key || ':' || reserved FROM aux.q2", "a:4");

  sqlite3_close(db);
  unlink(zFile); unlink(zAux);
  sqlite3_free(zAux);
  printf("integrity_newest: %d checks, %d failures\n", nCheck, nFail);
  return nFail ? 1 : 0;
}
#endif /* SQLITE_VERSION_NUMBER>=3044000 */

int main(int argc, char **argv){
  printf("integrity_newest: SQLite %s\n", sqlite3_libversion());
#if SQLITE_VERSION_NUMBER>=3044000
  return run(argc>1 ? argv[1] : "integrity_newest.db");
#else
  (void)argc; (void)argv;
  printf("integrity_newest: skipped: SQLite %s is older than 3.44, which added"
         " xIntegrity (there PRAGMA integrity_check cannot see the quota table;"
         " quota_integrity() does)\n", sqlite3_libversion());
  return 0;
#endif
}
