/*
** test/txn_codes.c: result codes of sqlite-quota calls as the C API sees
** them, for test/txn_codes.test (the Tcl binding only shows primary codes).
**
**   build/txn_codes DBFILE CASE [QUOTA_SO]
**
** DBFILE (and its -wal, -shm) is deleted and recreated in WAL mode with
**     CREATE VIRTUAL TABLE quota USING quota;
**     INSERT INTO quota(key, cap) VALUES('k', 10);
**     CREATE TABLE t(x); INSERT INTO t VALUES('k'), ('k');
** by a connection that calls sqlite3_quota_init() itself. Otherwise the
** extension is compiled in and registered with sqlite3_auto_extension (only
** after the "load" case's first connection: see there). Each CASE
** prints one line and exits 0; a setup failure prints "setup: ..." and
** exits 2. The line of a failing call is
**     rc=STEP-RC errcode=N ext=N msg={MESSAGE} used=N ledger=N
** where rc is what sqlite3_step returned, errcode / ext are
** sqlite3_errcode / sqlite3_extended_errcode of the caller, and used /
** ledger are read afterwards on a fresh connection (nothing half-done).
**
** CASES
**   snapshot       WAL: A: BEGIN; SELECT used FROM quota; B (a second
**                  connection) consumes 1; A: quota_consume('k',1).
**                  SQLite fails the read-to-write upgrade with
**                  SQLITE_BUSY_SNAPSHOT (517).
**   snapshot-ext   the same with sqlite3_extended_result_codes(A, 1), so
**                  sqlite3_step itself returns 517.
**   snapshot-proc  the same with B in a forked child process.
**   busy           B: BEGIN IMMEDIATE; A (busy_timeout 200 ms) consumes:
**                  SQLITE_BUSY (5); then "waited=1" when the call took at
**                  least 150 ms, and A's sqlite3_get_autocommit().
**   busy-proc      the same with B a forked child that holds the lock.
**   read           A steps "SELECT x FROM t" once and, with that cursor
**                  open, calls quota_consume: SQLITE_BUSY (5), the
**                  extension's own message.
**   readonly       PRAGMA query_only=1 on A: SQLITE_READONLY (8).
**   load           with no auto extension: sqlite3_load_extension(QUOTA_SO)
**                  twice, then with the entry point named, then
**                  sqlite3_quota_init() (the compiled-in copy) directly, on
**                  one connection; then a connection that has the auto
**                  extension loads QUOTA_SO too. Prints each rc, then
**                  quota_consume's result and the function count.
**   rowid          sqlite3_last_insert_rowid() around quota_consume,
**                  quota_reserve, quota_settle and quota_record, in
**                  autocommit and in BEGIN ... COMMIT.
**   open-locked    A (rollback journal): BEGIN EXCLUSIVE and a write; B
**                  opens with the auto extension: "open=RC msg={..}", then
**                  (A committed) "consume=N" from B when the open worked.
**                  The extension's init must not touch the database.
**   version        "sqlite=VERSION": the SQLite it runs on (DBFILE unused).
*/
#include <sqlite3.h>
#include "quota.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#define DRIVER_PROG "txn_codes"
#include "driver_util.h"

static const char *zFile;

static sqlite3 *openDb(void){
  sqlite3 *db = 0;
  if( sqlite3_open(zFile, &db)!=SQLITE_OK ) fatalDb("open", db);
  return db;
}

/* Print "LABEL=RC" and the error message if any, then free it. */
static void showRc(const char *zLabel, int rc, char **pzErr){
  printf("%s=%d%s%s\n", zLabel, rc, *pzErr ? " " : "", *pzErr ? *pzErr : "");
  sqlite3_free(*pzErr);
  *pzErr = 0;
}

static void setup(void){
  sqlite3 *db;
  removeDbFiles(zFile);
  db = openDb();
  /* Registers the compiled-in copy (a no-op where the auto extension did). */
  if( sqlite3_quota_init(db, 0, 0)!=SQLITE_OK ) fatalDb("sqlite3_quota_init", db);
  execOk(db,
    "PRAGMA journal_mode=wal;"
    "CREATE VIRTUAL TABLE quota USING quota;"
    "INSERT INTO quota(key, cap) VALUES('k', 10);"
    "CREATE TABLE t(x); INSERT INTO t VALUES('k'), ('k');");
  sqlite3_close(db);
}

/* Run one statement on db, ignoring its outcome. */
static void stepOnce(sqlite3 *db, const char *zSql){
  sqlite3_stmt *p = prepOk(db, zSql);
  sqlite3_step(p);
  sqlite3_finalize(p);
}

/* Step a failing statement and print the failure line. */
static void report(sqlite3 *db, const char *zSql){
  sqlite3_stmt *p = 0;
  sqlite3 *dbR;
  int rc, ec, xc;
  char *zMsg;
  p = prepOk(db, zSql);
  rc = sqlite3_step(p);
  ec = sqlite3_errcode(db);
  xc = sqlite3_extended_errcode(db);
  zMsg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
  sqlite3_finalize(p);
  dbR = openDb();
  printf("rc=%d errcode=%d ext=%d msg={%s} used=%lld ledger=%lld\n", rc, ec, xc,
         zMsg, oneInt(dbR, "SELECT used FROM quota WHERE key='k'"),
         oneInt(dbR, "SELECT count(*) FROM quota_ledger"));
  sqlite3_free(zMsg);
  sqlite3_close(dbR);
}

/* A child process that runs zSql on its own connection and exits; with
** bHold it then signals through fd and waits to be killed. */
static pid_t child(const char *zSql, int bHold, int *pFd){
  int fd[2];
  pid_t pid;
  if( pipe(fd) ) fatal("pipe");
  pid = fork();
  if( pid<0 ) fatal("fork");
  if( pid==0 ){
    sqlite3 *db = openDb();
    char c = 'x';
    close(fd[0]);
    sqlite3_busy_timeout(db, 5000);
    execOk(db, zSql);
    if( write(fd[1], &c, 1)!=1 ) _exit(3);
    if( bHold ) for(;;) pause();
    sqlite3_close(db);
    _exit(0);
  }
  close(fd[1]);
  *pFd = fd[0];
  return pid;
}

static void waitChild(int fd){
  char c;
  if( read(fd, &c, 1)!=1 ) fatal("child failed");
  close(fd);
}

static sqlite3_int64 monoMs(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (sqlite3_int64)ts.tv_sec*1000 + ts.tv_nsec/1000000;
}

static void caseSnapshot(int bExt, int bProc){
  sqlite3 *a, *b = 0;
  setup();
  a = openDb();
  sqlite3_busy_timeout(a, 5000);
  if( bExt ) sqlite3_extended_result_codes(a, 1);
  execOk(a, "BEGIN; SELECT used FROM quota;");
  if( bProc ){
    int fd, st;
    pid_t pid = child("SELECT quota_consume('k', 1);", 0, &fd);
    waitChild(fd);
    waitpid(pid, &st, 0);
  }else{
    b = openDb();
    execOk(b, "SELECT quota_consume('k', 1);");
  }
  report(a, "SELECT quota_consume('k', 1)");
  execOk(a, "ROLLBACK");
  sqlite3_close(a);
  if( b ) sqlite3_close(b);
}

static void caseBusy(int bProc){
  sqlite3 *a, *b = 0;
  pid_t pid = 0;
  int fd;
  sqlite3_int64 t0;
  setup();
  if( bProc ){
    pid = child("BEGIN IMMEDIATE; UPDATE t SET x=x;", 1, &fd);
    waitChild(fd);
  }else{
    b = openDb();
    execOk(b, "BEGIN IMMEDIATE; UPDATE t SET x=x;");
  }
  a = openDb();
  sqlite3_busy_timeout(a, 200);
  t0 = monoMs();
  report(a, "SELECT quota_consume('k', 1)");
  printf("waited=%d autocommit=%d\n", monoMs()-t0>=150, sqlite3_get_autocommit(a));
  sqlite3_close(a);
  if( b ) sqlite3_close(b);
  if( pid ){ int st; kill(pid, SIGKILL); waitpid(pid, &st, 0); }
}

static void caseRead(void){
  sqlite3 *a;
  sqlite3_stmt *p = 0;
  setup();
  a = openDb();
  sqlite3_busy_timeout(a, 5000);
  p = prepOk(a, "SELECT x FROM t");
  if( sqlite3_step(p)!=SQLITE_ROW ) fatalDb("step", a);
  report(a, "SELECT quota_consume('k', 1)");
  sqlite3_finalize(p);
  sqlite3_close(a);
}

static void caseReadonly(void){
  sqlite3 *a;
  setup();
  a = openDb();
  execOk(a, "PRAGMA query_only=1");
  report(a, "SELECT quota_consume('k', 1)");
  printf("autocommit=%d\n", sqlite3_get_autocommit(a));
  sqlite3_close(a);
}

/*
** Open a connection, with the auto extension, while another connection holds
** the write lock of the (rollback-journal) database: the extension's init
** must not touch the database, so the open succeeds; then a call works.
*/
static void caseOpenLocked(void){
  sqlite3 *a, *b = 0;
  int rc;
  setup();
  a = openDb();
  execOk(a, "PRAGMA journal_mode=delete; BEGIN EXCLUSIVE; INSERT INTO t VALUES('x')");
  rc = sqlite3_open_v2(zFile, &b, SQLITE_OPEN_READWRITE, 0);
  printf("open=%d msg={%s}\n", rc, b ? sqlite3_errmsg(b) : "?");
  execOk(a, "COMMIT");
  sqlite3_close(a);
  if( rc==SQLITE_OK ){
    printf("consume=%lld\n", oneInt(b, "SELECT quota_consume('k', 1)"));
  }
  sqlite3_close(b);
}

static void caseLoad(const char *zSo){
  sqlite3 *db;
  char *zErr = 0;
  int rc;
  setup();
  db = openDb();
  sqlite3_enable_load_extension(db, 1);
  rc = sqlite3_load_extension(db, zSo, 0, &zErr);
  showRc("load1", rc, &zErr);
  rc = sqlite3_load_extension(db, zSo, 0, &zErr);
  showRc("load2", rc, &zErr);
  rc = sqlite3_load_extension(db, zSo, "sqlite3_quota_init", &zErr);
  showRc("load3", rc, &zErr);
  rc = sqlite3_quota_init(db, &zErr, 0);
  showRc("init", rc, &zErr);
  printf("consume=%lld functions=%lld\n",
         oneInt(db, "SELECT quota_consume('k', 1)"),
         oneInt(db, "SELECT count(*) FROM pragma_function_list"
                    " WHERE name LIKE 'quota%' OR name='first_of_next_month'"));
  sqlite3_close(db);

  /* The compiled-in copy through the auto extension, then quota.so. */
  sqlite3_auto_extension((void(*)(void))sqlite3_quota_init);
  db = openDb();
  sqlite3_enable_load_extension(db, 1);
  rc = sqlite3_load_extension(db, zSo, 0, &zErr);
  showRc("auto+load", rc, &zErr);
  rc = sqlite3_quota_init(db, &zErr, 0);
  showRc("auto+init", rc, &zErr);
  printf("consume=%lld functions=%lld\n",
         oneInt(db, "SELECT quota_consume('k', 1)"),
         oneInt(db, "SELECT count(*) FROM pragma_function_list"
                    " WHERE name LIKE 'quota%' OR name='first_of_next_month'"));
  sqlite3_close(db);
}

static void caseRowid(void){
  sqlite3 *db;
  int i;
  setup();
  db = openDb();
  for(i=0; i<2; i++){
    if( i ) execOk(db, "BEGIN");
    execOk(db, "INSERT INTO t VALUES('x')");
    printf("%s before=%lld", i ? "txn" : "auto", sqlite3_last_insert_rowid(db));
    stepOnce(db, "SELECT quota_consume('k', 1)");
    printf(" consume=%lld", sqlite3_last_insert_rowid(db));
    stepOnce(db, "SELECT quota_reserve('k', 1)");
    printf(" reserve=%lld", sqlite3_last_insert_rowid(db));
    stepOnce(db, "SELECT quota_settle((SELECT max(id) FROM quota_holds), 1)");
    printf(" settle=%lld", sqlite3_last_insert_rowid(db));
    stepOnce(db, "SELECT quota_record('k', 1)");
    printf(" record=%lld", sqlite3_last_insert_rowid(db));
    stepOnce(db, "SELECT quota_consume('nope', 1)");
    printf(" failed=%lld\n", sqlite3_last_insert_rowid(db));
    if( i ) execOk(db, "COMMIT");
  }
  printf("used=%lld ledger=%lld\n",
         oneInt(db, "SELECT used FROM quota WHERE key='k'"),
         oneInt(db, "SELECT count(*) FROM quota_ledger"));
  sqlite3_close(db);
}

int main(int argc, char **argv){
  const char *zCase;
  if( argc<3 ){
    fprintf(stderr, "usage: %s DBFILE CASE [QUOTA_SO]\n", argv[0]);
    return 2;
  }
  zFile = argv[1];
  zCase = argv[2];
  setvbuf(stdout, 0, _IONBF, 0);
  if( strcmp(zCase, "version")==0 ){
    printf("sqlite=%s\n", sqlite3_libversion());
    return 0;
  }
  if( strcmp(zCase, "load")==0 ){
    caseLoad(argc>3 ? argv[3] : "./quota");
    return 0;
  }
  sqlite3_auto_extension((void(*)(void))sqlite3_quota_init);
  if( strcmp(zCase, "snapshot")==0 )           caseSnapshot(0, 0);
  else if( strcmp(zCase, "snapshot-ext")==0 )  caseSnapshot(1, 0);
  else if( strcmp(zCase, "snapshot-proc")==0 ) caseSnapshot(0, 1);
  else if( strcmp(zCase, "busy")==0 )          caseBusy(0);
  else if( strcmp(zCase, "busy-proc")==0 )     caseBusy(1);
  else if( strcmp(zCase, "read")==0 )          caseRead();
  else if( strcmp(zCase, "readonly")==0 )      caseReadonly();
  else if( strcmp(zCase, "rowid")==0 )         caseRowid();
  else if( strcmp(zCase, "open-locked")==0 )   caseOpenLocked();
  else { fprintf(stderr, "unknown case %s\n", zCase); return 2; }
  return 0;
}
