/*
** driver_util.h: the few things every C driver (test/NAME.c, bench/NAME.c)
** needs and would otherwise write again: stopping on a setup failure,
** running SQL that must succeed, preparing a statement, reading one
** integer, removing a database's files, a deterministic random number
** generator (so that a run replays from its seed), and for the drivers that
** kill their workers a log line written whole and the wall clock in ms. Static functions only:
** each driver is one translation unit and includes this once; what a
** driver does not use costs nothing and draws no warning.
**
** The fault drivers get more from faultutil.h, which includes this file.
**
** The driver defines, before including it:
**   DRIVER_PROG       its name, a string literal ("txn_codes"), for messages
*/
#ifndef QUOTA_DRIVER_UTIL_H
#define QUOTA_DRIVER_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#ifndef DRIVER_PROG
# error "define DRIVER_PROG (the driver's name) before including driver_util.h"
#endif

#if defined(__GNUC__)
# define DRIVER_UNUSED __attribute__((unused))
#else
# define DRIVER_UNUSED
#endif

/*
** A setup failure (not a finding of the test: the driver could not do what
** it was asked): "PROG: setup failed: MESSAGE" on stderr, exit status 2.
*/
static DRIVER_UNUSED void fatal(const char *zFmt, ...){
  va_list ap;
  fprintf(stderr, DRIVER_PROG ": setup failed: ");
  va_start(ap, zFmt);
  vfprintf(stderr, zFmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  exit(2);
}

/*
** A setup failure of a call on db: "PROG: setup failed: WHAT: MESSAGE" with
** db's error message, or "PROG: setup failed: WHAT" when db is NULL.
*/
static DRIVER_UNUSED void fatalDb(const char *zWhat, sqlite3 *db){
  if( db ) fatal("%s: %s", zWhat, sqlite3_errmsg(db));
  fatal("%s", zWhat);
}

/* Run zSql (any number of statements), which must succeed. */
static DRIVER_UNUSED void execOk(sqlite3 *db, const char *zSql){
  char *zErr = 0;
  int rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
  if( rc!=SQLITE_OK ){
    fatal("%s: %s", zSql, zErr ? zErr : sqlite3_errstr(rc));
  }
}

/* Prepare one statement, which must compile. */
static DRIVER_UNUSED sqlite3_stmt *prepOk(sqlite3 *db, const char *zSql){
  sqlite3_stmt *p = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &p, 0);
  if( rc!=SQLITE_OK ) fatal("prepare %s: %s", zSql, sqlite3_errmsg(db));
  if( p==0 ) fatal("prepare %s: no statement", zSql);
  return p;
}

/*
** The first column of the first row of zSql as an integer; -1 when it
** returns no row or fails while running (zSql must compile).
*/
static DRIVER_UNUSED sqlite3_int64 oneInt(sqlite3 *db, const char *zSql){
  sqlite3_stmt *p = prepOk(db, zSql);
  sqlite3_int64 v = -1;
  if( sqlite3_step(p)==SQLITE_ROW ) v = sqlite3_column_int64(p, 0);
  sqlite3_finalize(p);
  return v;
}

/* Remove database zDb and its journal, WAL and WAL index, if there. */
static DRIVER_UNUSED void removeDbFiles(const char *zDb){
  static const char *azSuffix[] = { "-journal", "-wal", "-shm" };
  char z[1100];
  size_t i;
  unlink(zDb);
  for(i=0; i<sizeof(azSuffix)/sizeof(azSuffix[0]); i++){
    snprintf(z, sizeof(z), "%s%s", zDb, azSuffix[i]);
    unlink(z);
  }
}

/*
** A deterministic random number generator (splitmix64): the same seed
** gives the same sequence on every machine, so a failing run replays.
*/
typedef struct Rng Rng;
struct Rng { sqlite3_uint64 s; };
static DRIVER_UNUSED sqlite3_uint64 rngNext(Rng *r){
  sqlite3_uint64 z = (r->s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z>>30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z>>27)) * 0x94D049BB133111EBULL;
  return z ^ (z>>31);
}
/* A number in [0, n), 0 when n <= 0. */
static DRIVER_UNUSED int rngBelow(Rng *r, int n){
  return n<=0 ? 0 : (int)(rngNext(r) % (sqlite3_uint64)n);
}

/* Append one line with one write(2): a SIGKILL cuts no line in half. A
** line longer than 510 bytes is cut; a failed write ends the process. */
static DRIVER_UNUSED void logLine(int fd, const char *zFmt, ...){
  char z[512];
  va_list ap;
  int n;
  va_start(ap, zFmt);
  n = vsnprintf(z, sizeof(z)-1, zFmt, ap);
  va_end(ap);
  if( n<0 ) return;
  if( n>(int)sizeof(z)-2 ) n = (int)sizeof(z)-2;
  z[n++] = '\n';
  if( write(fd, z, (size_t)n)!=(ssize_t)n ) _exit(3);
}

/* The wall clock in milliseconds (what other processes' logs compare). */
static DRIVER_UNUSED sqlite3_int64 nowMs(void){
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (sqlite3_int64)ts.tv_sec*1000 + ts.tv_nsec/1000000;
}

#endif /* QUOTA_DRIVER_UTIL_H */
