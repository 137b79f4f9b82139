/*
** faultutil.h: the plumbing the fault drivers (oomtest.c, iofault.c,
** crashtest.c) share, beyond driver_util.h (setup failures, removing a
** database's files): a growable text buffer, the working directory,
** database images, and running SQL with every result rendered as text.
** Static functions only: each driver is one translation unit and includes
** this once.
**
** The driver defines, before including it:
**   DRIVER_PROG       its name, a string literal ("oomtest"), for messages
**   FAULT_PAUSE()     optional: called around the driver's own work inside
**   FAULT_RESUME()    runSql() (rendering rows, copying the error message),
**                     so that oomtest's failing allocator neither counts nor
**                     fails those allocations; both default to nothing
*/
#ifndef QUOTA_FAULTUTIL_H
#define QUOTA_FAULTUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>
#include "quota.h"

#include "driver_util.h"
#ifndef FAULT_PAUSE
# define FAULT_PAUSE()  ((void)0)
# define FAULT_RESUME() ((void)0)
#endif

/* The pinned clock of every run: 2026-03-15 12:00:00 UTC, as SQL for
** quota_clock() and as a Julian day in milliseconds for a VFS's xCurrentTime. */
#define CLOCK_SQL "SELECT quota_clock('2026-03-15 12:00:00')"
#define CLOCK_JD_MS ((sqlite3_int64)210866760000000LL + (sqlite3_int64)1773576000*1000)

#include "faultbuf.h"

/*--------------------------------------------------------------------------
** Files.
*/

/*
** The working directory into zDir (nDir bytes): zDir itself if it is set
** (--dir; created if missing), else a new $TMPDIR/DRIVER_PROG.XXXXXX
** (/dev/shm when writable and TMPDIR is unset, else /tmp).
*/
static void faultWorkDir(char *zDir, size_t nDir){
  if( zDir[0]==0 ){
    const char *zTmp = getenv("TMPDIR");
    char zTemplate[512];
    if( zTmp==0 || zTmp[0]==0 ) zTmp = access("/dev/shm", W_OK)==0 ? "/dev/shm" : "/tmp";
    snprintf(zTemplate, sizeof(zTemplate), "%s/" DRIVER_PROG ".XXXXXX", zTmp);
    if( mkdtemp(zTemplate)==0 ) fatal("mkdtemp %s: %s", zTemplate, strerror(errno));
    snprintf(zDir, nDir, "%s", zTemplate);
  }else{
    mkdir(zDir, 0755);
  }
}

/*
** The extension's entry point as the drivers register it for every new
** connection: while gFaultPlain is non-zero, a connection opened gets no
** extension (a "plain" connection, see faultOpenPlain() in faultpaths.h).
*/
static int gFaultPlain;
static int faultQuotaInit(sqlite3 *db, char **pzErr, const sqlite3_api_routines *pApi){
  return gFaultPlain ? SQLITE_OK : sqlite3_quota_init(db, pzErr, pApi);
}

/*
** The common start of a driver, after its own sqlite3_config() calls:
** SQLite initialized, the VFS of xRegisterVfs (if not NULL) registered, the
** extension registered for every new connection (faultQuotaInit), the
** working directory made (faultWorkDir) and zDb set to the file zFile in it.
*/
static void faultStart(int (*xRegisterVfs)(void), char *zDir, size_t nDir,
                       char *zDb, size_t nDb, const char *zFile){
  int rc = sqlite3_initialize();
  if( rc!=SQLITE_OK ) fatal("sqlite3_initialize: rc=%d", rc);
  if( xRegisterVfs ){
    rc = xRegisterVfs();
    if( rc!=SQLITE_OK ) fatal("registering the VFS: rc=%d", rc);
  }
  rc = sqlite3_auto_extension((void(*)(void))faultQuotaInit);
  if( rc!=SQLITE_OK ) fatal("sqlite3_auto_extension: rc=%d", rc);
  faultWorkDir(zDir, nDir);
  snprintf(zDb, nDb, "%s/%s", zDir, zFile);
}

static void readFile(const char *zFile, Buf *p){
  char a[8192];
  ssize_t n;
  int fd = open(zFile, O_RDONLY);
  bufReset(p);
  if( fd<0 ) fatal("cannot open %s: %s", zFile, strerror(errno));
  while( (n = read(fd, a, sizeof(a)))>0 ) bufAppend(p, a, (size_t)n);
  close(fd);
}
static void writeFile(const char *zFile, const Buf *p){
  size_t i = 0;
  int fd = open(zFile, O_WRONLY|O_CREAT|O_TRUNC, 0644);
  if( fd<0 ) fatal("cannot create %s: %s", zFile, strerror(errno));
  while( i<p->n ){
    ssize_t n = write(fd, p->z+i, p->n-i);
    if( n<=0 ) fatal("write %s: %s", zFile, strerror(errno));
    i += (size_t)n;
  }
  close(fd);
}
/* Replace database zDb (and its journal, WAL, WAL index) by an image. */
static void installTemplate(const char *zDb, const Buf *pImage){
  removeDbFiles(zDb);
  writeFile(zDb, pImage);
}

/*--------------------------------------------------------------------------
** Running SQL.
*/

/* Append the value of column i of pStmt to pOut. */
static void appendValue(Buf *pOut, sqlite3_stmt *pStmt, int i){
  switch( sqlite3_column_type(pStmt, i) ){
    case SQLITE_NULL: bufAppend(pOut, "NULL", 4); break;
    case SQLITE_INTEGER:
      bufPrintf(pOut, "%lld", (long long)sqlite3_column_int64(pStmt, i));
      break;
    case SQLITE_FLOAT:
      bufPrintf(pOut, "%.17g", sqlite3_column_double(pStmt, i));
      break;
    case SQLITE_TEXT: {
      const unsigned char *z = sqlite3_column_text(pStmt, i);
      int n = sqlite3_column_bytes(pStmt, i);
      bufAppend(pOut, "'", 1);
      if( z ) bufAppend(pOut, (const char*)z, (size_t)n);
      else bufAppend(pOut, "<NOMEM>", 7);
      bufAppend(pOut, "'", 1);
      break;
    }
    default: {
      const unsigned char *a = sqlite3_column_blob(pStmt, i);
      int n = sqlite3_column_bytes(pStmt, i), k;
      bufAppend(pOut, "x'", 2);
      for(k=0; a && k<n; k++) bufPrintf(pOut, "%02x", a[k]);
      bufAppend(pOut, "'", 1);
      break;
    }
  }
}

/*
** Run one SQL statement. Rows are appended to pRes (if not NULL), one line
** per row, values separated by '|'. Returns the (extended) result code:
** SQLITE_OK on success. The error message, if any, goes to pErr. The
** driver's own reads of results are bracketed by FAULT_PAUSE/FAULT_RESUME
** (oomtest: not counted by the failing allocator).
*/
static int runSql(sqlite3 *db, const char *zSql, Buf *pRes, Buf *pErr){
  sqlite3_stmt *pStmt = 0;
  int rc, rc2;
  rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  if( rc==SQLITE_OK && pStmt==0 ) return SQLITE_OK;
  while( rc==SQLITE_OK ){
    rc = sqlite3_step(pStmt);
    if( rc==SQLITE_ROW ){
      int i, n = sqlite3_column_count(pStmt);
      FAULT_PAUSE();
      for(i=0; i<n; i++){
        if( i && pRes ) bufAppend(pRes, "|", 1);
        if( pRes ) appendValue(pRes, pStmt, i);
      }
      if( pRes ) bufAppend(pRes, "\n", 1);
      FAULT_RESUME();
      rc = SQLITE_OK;
    }else if( rc==SQLITE_DONE ){
      rc = SQLITE_OK;
      break;
    }
  }
  rc2 = sqlite3_finalize(pStmt);
  if( rc==SQLITE_OK ) rc = rc2;
  if( rc!=SQLITE_OK && pErr ){
    FAULT_PAUSE();
    bufReset(pErr);
    bufPrintf(pErr, "%s", sqlite3_errmsg(db));
    FAULT_RESUME();
  }
  return rc;
}

/* Run SQL that must succeed (no fault armed); abort the driver if not. */
static void mustSql(sqlite3 *db, const char *zSql, Buf *pRes){
  Buf err = {0, 0, 0};
  int rc = runSql(db, zSql, pRes, &err);
  if( rc!=SQLITE_OK ) fatal("%s: rc=%d %s", zSql, rc, bufText(&err));
  bufFree(&err);
}

#endif /* QUOTA_FAULTUTIL_H */
