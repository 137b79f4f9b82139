/*
** iofault.c - I/O error injection for sqlite-quota.
**
** A shim VFS, registered as the default over the system's, passes every call
** through to the real VFS but can fail the Nth call of one kind:
**
**   read write sync truncate lock unlock filesize    (file methods)
**   open delete access                               (VFS methods)
**   shmmap shmlock                                   (WAL index)
**   full    the Nth xWrite returns SQLITE_FULL (disk full)
**
** either once ("transient") or from N on ("persistent"). The fault window
** runs from sqlite3_open_v2() to sqlite3_close() of the faulted connection, so
** a checkpoint on close can fail, and a hot journal or a stale WAL index may
** be left behind. For each journal mode (DELETE and WAL), each write path,
** each kind and N = 1, 2, ... until a run completes without a failed call:
**
**   1. a fresh copy of the path's starting database is installed;
**   2. the fault is armed, the database opened (so the first read of the
**      schema, the opening of the WAL and the extension's registration are
**      inside the window) and the path's statements run: each must succeed
**      or fail with an I/O-class code (SQLITE_IOERR_*, SQLITE_FULL,
**      SQLITE_CANTOPEN); the connection must not be left in a transaction it
**      did not start;
**   3. the connection is closed, the VFS healed, the database reopened: it
**      holds exactly the state before or after the call (compared with the
**      reference run's dumps), the invariants hold, integrity_check is ok;
**   4. a retry with the same request ids converges to the reference end state
**      (exactly one charge).
**
**   build/iofault                     bounded run (make test): every point of
**                                     every kind once; persistently only sync,
**                                     truncate and full (disk full)
**   build/iofault --long              every kind, both persistences, all points
**   build/iofault --journal wal --path consume --kind write --n 3 --persistent -v
**
** Summary lines (checked by test/faults.test):
**   iofault: JOURNAL path NAME N points (read N write N ...)
**   iofault: total N points, N violations
*/
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
# include <malloc.h>
#endif
#include <sqlite3.h>
#include "quota.h"

/* The clock of the VFS, 2026-03-15 12:00:00 UTC as a Julian day in ms. */
#define CLOCK_JD_MS ((sqlite3_int64)210866760000000LL + (sqlite3_int64)1773576000*1000)
#define MAX_STMT 6
#define MAX_BAD_POINTS 5          /* failing points before a kind is cut short */

/*--------------------------------------------------------------------------
** Small growable text buffer.
*/
typedef struct Buf Buf;
struct Buf {
  char *z;                        /* Text, always NUL-terminated when non-NULL */
  size_t n;                       /* Bytes used, excluding the NUL */
  size_t nAlloc;                  /* Bytes allocated */
};

static void bufAppend(Buf *p, const char *z, size_t n){
  if( p->z==0 || p->n+n+1>p->nAlloc ){
    size_t nNew = (p->nAlloc+n+1)*2;
    char *zNew = realloc(p->z, nNew);
    if( zNew==0 ){ fprintf(stderr, "iofault: out of system memory\n"); exit(2); }
    p->z = zNew;
    p->nAlloc = nNew;
  }
  if( n>0 ) memcpy(p->z+p->n, z, n);
  p->n += n;
  p->z[p->n] = 0;
}
static void bufPrintf(Buf *p, const char *zFmt, ...){
  char zTmp[512];
  va_list ap;
  int n;
  va_start(ap, zFmt);
  n = vsnprintf(zTmp, sizeof(zTmp), zFmt, ap);
  va_end(ap);
  if( n<0 ) return;
  if( (size_t)n>=sizeof(zTmp) ) n = (int)sizeof(zTmp)-1;
  bufAppend(p, zTmp, (size_t)n);
}
static void bufReset(Buf *p){ p->n = 0; if( p->z ) p->z[0] = 0; }
static void bufFree(Buf *p){ free(p->z); memset(p, 0, sizeof(*p)); }
static const char *bufText(const Buf *p){ return p->z ? p->z : ""; }

/*--------------------------------------------------------------------------
** The fault-injecting shim VFS.
*/
enum {
  K_READ, K_WRITE, K_SYNC, K_TRUNCATE, K_LOCK, K_UNLOCK, K_FILESIZE,
  K_OPEN, K_DELETE, K_ACCESS, K_SHMMAP, K_SHMLOCK, K_FULL, K_COUNT
};
static const char *azKind[K_COUNT] = {
  "read", "write", "sync", "truncate", "lock", "unlock", "filesize",
  "open", "delete", "access", "shmmap", "shmlock", "full"
};

static struct {
  int bArmed;                     /* Count (and maybe fail) calls */
  int eKind;                      /* K_xxx to fail */
  int bPersist;                   /* Fail every call of the kind from iFail on */
  int iFail;                      /* Call number to fail */
  int nCount;                     /* Calls of eKind seen while armed */
  int nFailed;                    /* Calls failed */
} gFault;

static int faultHit(int eKind){
  if( !gFault.bArmed ) return 0;
  if( eKind==K_WRITE && gFault.eKind==K_FULL ) eKind = K_FULL;
  if( eKind!=gFault.eKind ) return 0;
  gFault.nCount++;
  if( gFault.nCount==gFault.iFail || (gFault.bPersist && gFault.nCount>gFault.iFail) ){
    gFault.nFailed++;
    return 1;
  }
  return 0;
}
static void faultArm(int eKind, int iFail, int bPersist){
  gFault.eKind = eKind;
  gFault.iFail = iFail;
  gFault.bPersist = bPersist;
  gFault.nCount = 0;
  gFault.nFailed = 0;
  gFault.bArmed = 1;
}
static void faultDisarm(void){ gFault.bArmed = 0; }

typedef struct FaultFile FaultFile;
struct FaultFile {
  sqlite3_file base;              /* Base class - must be first */
  sqlite3_file *pReal;            /* The real file, allocated just after */
};
#define REAL(f) (((FaultFile*)(f))->pReal)

static sqlite3_vfs *gRealVfs;     /* The VFS under the shim */

static int fClose(sqlite3_file *f){
  return REAL(f)->pMethods->xClose(REAL(f));
}
static int fRead(sqlite3_file *f, void *z, int n, sqlite3_int64 off){
  if( faultHit(K_READ) ) return SQLITE_IOERR_READ;
  return REAL(f)->pMethods->xRead(REAL(f), z, n, off);
}
static int fWrite(sqlite3_file *f, const void *z, int n, sqlite3_int64 off){
  if( faultHit(K_WRITE) ) return gFault.eKind==K_FULL ? SQLITE_FULL : SQLITE_IOERR_WRITE;
  return REAL(f)->pMethods->xWrite(REAL(f), z, n, off);
}
static int fTruncate(sqlite3_file *f, sqlite3_int64 size){
  if( faultHit(K_TRUNCATE) ) return SQLITE_IOERR_TRUNCATE;
  return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int fSync(sqlite3_file *f, int flags){
  if( faultHit(K_SYNC) ) return SQLITE_IOERR_FSYNC;
  return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int fFileSize(sqlite3_file *f, sqlite3_int64 *pSize){
  if( faultHit(K_FILESIZE) ) return SQLITE_IOERR_FSTAT;
  return REAL(f)->pMethods->xFileSize(REAL(f), pSize);
}
static int fLock(sqlite3_file *f, int eLock){
  if( faultHit(K_LOCK) ) return SQLITE_IOERR_LOCK;
  return REAL(f)->pMethods->xLock(REAL(f), eLock);
}
/* An unlock that "fails" still unlocks: the error is what is injected. */
static int fUnlock(sqlite3_file *f, int eLock){
  int rc = REAL(f)->pMethods->xUnlock(REAL(f), eLock);
  if( faultHit(K_UNLOCK) ) return SQLITE_IOERR_UNLOCK;
  return rc;
}
static int fCheckReservedLock(sqlite3_file *f, int *pResOut){
  return REAL(f)->pMethods->xCheckReservedLock(REAL(f), pResOut);
}
static int fFileControl(sqlite3_file *f, int op, void *pArg){
  return REAL(f)->pMethods->xFileControl(REAL(f), op, pArg);
}
static int fSectorSize(sqlite3_file *f){
  return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int fDeviceCharacteristics(sqlite3_file *f){
  return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int fShmMap(sqlite3_file *f, int iPg, int pgsz, int bExtend, void volatile **pp){
  if( faultHit(K_SHMMAP) ){ *pp = 0; return SQLITE_IOERR_SHMMAP; }
  return REAL(f)->pMethods->xShmMap(REAL(f), iPg, pgsz, bExtend, pp);
}
static int fShmLock(sqlite3_file *f, int ofst, int n, int flags){
  if( flags & SQLITE_SHM_UNLOCK ){
    int rc = REAL(f)->pMethods->xShmLock(REAL(f), ofst, n, flags);
    if( faultHit(K_SHMLOCK) ) return SQLITE_IOERR_SHMLOCK;
    return rc;
  }
  if( faultHit(K_SHMLOCK) ) return SQLITE_IOERR_SHMLOCK;
  return REAL(f)->pMethods->xShmLock(REAL(f), ofst, n, flags);
}
static void fShmBarrier(sqlite3_file *f){
  REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int fShmUnmap(sqlite3_file *f, int bDelete){
  return REAL(f)->pMethods->xShmUnmap(REAL(f), bDelete);
}

/* Version 2: WAL index, but no memory-mapped I/O (which would bypass xRead). */
static const sqlite3_io_methods gFaultIo = {
  2,                              /* iVersion */
  fClose,                         /* xClose */
  fRead,                          /* xRead */
  fWrite,                         /* xWrite */
  fTruncate,                      /* xTruncate */
  fSync,                          /* xSync */
  fFileSize,                      /* xFileSize */
  fLock,                          /* xLock */
  fUnlock,                        /* xUnlock */
  fCheckReservedLock,             /* xCheckReservedLock */
  fFileControl,                   /* xFileControl */
  fSectorSize,                    /* xSectorSize */
  fDeviceCharacteristics,         /* xDeviceCharacteristics */
  fShmMap,                        /* xShmMap */
  fShmLock,                       /* xShmLock */
  fShmBarrier,                    /* xShmBarrier */
  fShmUnmap,                      /* xShmUnmap */
  0,                              /* xFetch */
  0                               /* xUnfetch */
};

static int vOpen(sqlite3_vfs *pVfs, const char *zName, sqlite3_file *pFile,
                 int flags, int *pOutFlags){
  FaultFile *p = (FaultFile*)pFile;
  int rc;
  (void)pVfs;
  p->pReal = (sqlite3_file*)&p[1];
  pFile->pMethods = 0;
  if( faultHit(K_OPEN) ) return SQLITE_CANTOPEN;
  rc = gRealVfs->xOpen(gRealVfs, zName, p->pReal, flags, pOutFlags);
  if( p->pReal->pMethods ) pFile->pMethods = &gFaultIo;
  return rc;
}
static int vDelete(sqlite3_vfs *pVfs, const char *zName, int syncDir){
  (void)pVfs;
  if( faultHit(K_DELETE) ) return SQLITE_IOERR_DELETE;
  return gRealVfs->xDelete(gRealVfs, zName, syncDir);
}
static int vAccess(sqlite3_vfs *pVfs, const char *zName, int flags, int *pResOut){
  (void)pVfs;
  if( faultHit(K_ACCESS) ) return SQLITE_IOERR_ACCESS;
  return gRealVfs->xAccess(gRealVfs, zName, flags, pResOut);
}
static int vFullPathname(sqlite3_vfs *pVfs, const char *zName, int nOut, char *zOut){
  (void)pVfs;
  return gRealVfs->xFullPathname(gRealVfs, zName, nOut, zOut);
}
static void *vDlOpen(sqlite3_vfs *pVfs, const char *zPath){
  (void)pVfs;
  return gRealVfs->xDlOpen(gRealVfs, zPath);
}
static void vDlError(sqlite3_vfs *pVfs, int nByte, char *zErrMsg){
  (void)pVfs;
  gRealVfs->xDlError(gRealVfs, nByte, zErrMsg);
}
static void (*vDlSym(sqlite3_vfs *pVfs, void *p, const char *zSym))(void){
  (void)pVfs;
  return gRealVfs->xDlSym(gRealVfs, p, zSym);
}
static void vDlClose(sqlite3_vfs *pVfs, void *p){
  (void)pVfs;
  gRealVfs->xDlClose(gRealVfs, p);
}
static int vRandomness(sqlite3_vfs *pVfs, int nByte, char *zOut){
  (void)pVfs;
  return gRealVfs->xRandomness(gRealVfs, nByte, zOut);
}
static int vSleep(sqlite3_vfs *pVfs, int nMicro){
  (void)pVfs;
  return gRealVfs->xSleep(gRealVfs, nMicro);
}
/* A fixed clock: every run of a point sees the same time. */
static int vCurrentTime(sqlite3_vfs *pVfs, double *pOut){
  (void)pVfs;
  *pOut = (double)CLOCK_JD_MS/86400000.0;
  return SQLITE_OK;
}
static int vGetLastError(sqlite3_vfs *pVfs, int n, char *z){
  (void)pVfs;
  return gRealVfs->xGetLastError(gRealVfs, n, z);
}
static int vCurrentTimeInt64(sqlite3_vfs *pVfs, sqlite3_int64 *pOut){
  (void)pVfs;
  *pOut = CLOCK_JD_MS;
  return SQLITE_OK;
}

static sqlite3_vfs gFaultVfs = {
  2,                              /* iVersion */
  0,                              /* szOsFile (set at registration) */
  0,                              /* mxPathname (set at registration) */
  0,                              /* pNext */
  "iofault",                      /* zName */
  0,                              /* pAppData */
  vOpen,                          /* xOpen */
  vDelete,                        /* xDelete */
  vAccess,                        /* xAccess */
  vFullPathname,                  /* xFullPathname */
  vDlOpen,                        /* xDlOpen */
  vDlError,                       /* xDlError */
  vDlSym,                         /* xDlSym */
  vDlClose,                       /* xDlClose */
  vRandomness,                    /* xRandomness */
  vSleep,                         /* xSleep */
  vCurrentTime,                   /* xCurrentTime */
  vGetLastError,                  /* xGetLastError */
  vCurrentTimeInt64,              /* xCurrentTimeInt64 */
  0, 0, 0                         /* xSetSystemCall, xGetSystemCall, xNextSystemCall */
};

static int faultVfsRegister(void){
  gRealVfs = sqlite3_vfs_find(0);
  if( gRealVfs==0 ) return SQLITE_ERROR;
  gFaultVfs.szOsFile = (int)sizeof(FaultFile) + gRealVfs->szOsFile;
  gFaultVfs.mxPathname = gRealVfs->mxPathname;
  return sqlite3_vfs_register(&gFaultVfs, 1);
}

/*--------------------------------------------------------------------------
** Options and reporting.
*/
static struct {
  int bLong;                      /* --long */
  int bVerbose;                   /* -v */
  const char *zPath;              /* --path: only this path */
  const char *zJournal;           /* --journal: only this journal mode */
  int eKind;                      /* --kind: only this kind, or -1 */
  int iN;                         /* --n: only this point */
  int eMode;                      /* -1 both, 0 transient, 1 persistent */
  char zDir[512];                 /* Working directory */
  char zDb[600];                  /* Database file */
  const char *zCurJournal;        /* Journal mode being tested */
  int nViolation;                 /* Violations seen */
  int bKeepGoing;                 /* --keep-going: never cut a kind short */
} g = { 0, 0, 0, 0, -1, 0, -1, "", "", "delete", 0, 0 };

static void violation(const char *zPath, int eKind, int iN, int bPersist,
                      const char *zFmt, ...){
  va_list ap;
  g.nViolation++;
  fprintf(stdout, "iofault: VIOLATION journal=%s path=%s kind=%s n=%d mode=%s: ",
          g.zCurJournal, zPath, azKind[eKind], iN, bPersist ? "persistent" : "transient");
  va_start(ap, zFmt);
  vfprintf(stdout, zFmt, ap);
  va_end(ap);
  fprintf(stdout, "\n  replay: build/iofault --journal %s --path %s --kind %s --n %d --%s -v\n",
          g.zCurJournal, zPath, azKind[eKind], iN, bPersist ? "persistent" : "transient");
  fflush(stdout);
}

static void fatal(const char *zFmt, ...){
  va_list ap;
  fprintf(stderr, "iofault: setup failed: ");
  va_start(ap, zFmt);
  vfprintf(stderr, zFmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  exit(2);
}

/*--------------------------------------------------------------------------
** Files.
*/
static void removeDbFiles(const char *zDb){
  char z[1100];
  unlink(zDb);
  snprintf(z, sizeof(z), "%s-journal", zDb); unlink(z);
  snprintf(z, sizeof(z), "%s-wal", zDb); unlink(z);
  snprintf(z, sizeof(z), "%s-shm", zDb); unlink(z);
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
static void installTemplate(const Buf *pImage){
  removeDbFiles(g.zDb);
  writeFile(g.zDb, pImage);
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
** SQLITE_OK on success. The error message, if any, goes to pErr. 
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
      for(i=0; i<n; i++){
        if( i && pRes ) bufAppend(pRes, "|", 1);
        if( pRes ) appendValue(pRes, pStmt, i);
      }
      if( pRes ) bufAppend(pRes, "\n", 1);
      rc = SQLITE_OK;
    }else if( rc==SQLITE_DONE ){
      rc = SQLITE_OK;
      break;
    }
  }
  rc2 = sqlite3_finalize(pStmt);
  if( rc==SQLITE_OK ) rc = rc2;
  if( rc!=SQLITE_OK && pErr ){
    bufReset(pErr);
    bufPrintf(pErr, "%s", sqlite3_errmsg(db));
  }
  return rc;
}

/* Run SQL that must succeed (allocator healthy); abort the driver if not. */
static void mustSql(sqlite3 *db, const char *zSql, Buf *pRes){
  Buf err = {0, 0, 0};
  int rc = runSql(db, zSql, pRes, &err);
  if( rc!=SQLITE_OK ) fatal("%s: rc=%d %s", zSql, rc, bufText(&err));
  bufFree(&err);
}

static sqlite3 *openDb(void){
  sqlite3 *db = 0;
  int rc = sqlite3_open_v2(g.zDb, &db, SQLITE_OPEN_READWRITE|SQLITE_OPEN_CREATE, "iofault");
  if( rc!=SQLITE_OK ) fatal("open %s: %s", g.zDb, db ? sqlite3_errmsg(db) : "?");
  sqlite3_extended_result_codes(db, 1);
  rc = sqlite3_busy_timeout(db, 2000);
  if( rc!=SQLITE_OK ) fatal("busy_timeout: rc=%d", rc);
  /* No quota_clock(): the VFS's clock is fixed, and the first read of the
  ** database (schema, WAL open) stays inside the fault window. */
  return db;
}
static void closeDb(sqlite3 *db){
  int rc = sqlite3_close(db);
  if( rc!=SQLITE_OK ) fatal("sqlite3_close: rc=%d", rc);
}

/* The database dump and the invariants, shared by the fault drivers. */
#include "faultcheck.h"

/*--------------------------------------------------------------------------
** The write paths.
**
** Every path but "create" starts from the base database below. $H1 and $H2
** stand for the ids of the two holds the base creates.
*/
static const char *azBase[] = {
  "CREATE TABLE t(x)",
  "CREATE VIRTUAL TABLE quota USING quota(hold_ttl='10 minutes', idempotency='2 hours')",
  "INSERT INTO quota(key, cap, period) VALUES ('org', 1000, 'month')",
  "INSERT INTO quota(key, cap, period, parent) VALUES ('k1', 100, NULL, 'org')",
  "INSERT INTO quota(key, cap, period) VALUES ('k2', NULL, 'rolling 1 hours')",
  "SELECT quota_consume('k1', 10, 'seed-1', '{\"seed\":1}')",
  "SELECT quota_reserve('k1', 30, 'seed-h1')",      /* -> $H1 */
  "SELECT quota_reserve('k2', 5, 'seed-h2')",       /* -> $H2 */
  "SELECT quota_record('k2', 3, 'seed-r')",
  0
};
#define BASE_H1 6
#define BASE_H2 7

typedef struct Retry Retry;
struct Retry {
  const char *zCond;              /* Skip zSql when this returns non-zero */
  const char *zSql;
};

typedef struct Path Path;
struct Path {
  const char *zName;
  int bEmpty;                     /* Start from a database with only table t */
  int bRetrySame;                 /* A retry returns the reference result */
  const char *azCall[MAX_STMT];   /* Run under fault, stop at first error */
  Retry aRetry[MAX_STMT];         /* Healthy retry that must converge */
};

static const Path aPath[] = {
  { "create", 1, 0,
    { "CREATE VIRTUAL TABLE quota USING quota(hold_ttl='10 minutes', idempotency='2 hours')",
      "INSERT INTO quota(key, cap, period) VALUES ('org', 1000, 'month')",
      "INSERT INTO quota(key, cap, period, parent) VALUES ('k1', 100, NULL, 'org')",
      "INSERT INTO quota(key, cap, period) VALUES ('k2', NULL, 'rolling 1 hours')",
      0 },
    { { 0, "CREATE VIRTUAL TABLE IF NOT EXISTS quota USING quota(hold_ttl='10 minutes', idempotency='2 hours')" },
      { "SELECT count(*) FROM quota WHERE key='org'",
        "INSERT INTO quota(key, cap, period) VALUES ('org', 1000, 'month')" },
      { "SELECT count(*) FROM quota WHERE key='k1'",
        "INSERT INTO quota(key, cap, period, parent) VALUES ('k1', 100, NULL, 'org')" },
      { "SELECT count(*) FROM quota WHERE key='k2'",
        "INSERT INTO quota(key, cap, period) VALUES ('k2', NULL, 'rolling 1 hours')" },
      { 0, 0 } } },
  { "reserve", 0, 1,
    { "SELECT quota_reserve('k1', 40, 'r-res')", 0 },
    { { 0, "SELECT quota_reserve('k1', 40, 'r-res')" }, { 0, 0 } } },
  { "settle", 0, 1,
    { "SELECT quota_settle($H1, 25, '{\"m\":1}')", 0 },
    { { 0, "SELECT quota_settle($H1, 25, '{\"m\":1}')" }, { 0, 0 } } },
  { "release", 0, 0,
    { "SELECT quota_release($H1)", 0 },
    { { 0, "SELECT quota_release($H1)" }, { 0, 0 } } },
  { "consume", 0, 1,
    { "SELECT quota_consume('k1', 7, 'r-con', '{\"x\":1}')", 0 },
    { { 0, "SELECT quota_consume('k1', 7, 'r-con', '{\"x\":1}')" }, { 0, 0 } } },
  { "record", 0, 1,
    { "SELECT quota_record('k1', 200, 'r-rec')", 0 },
    { { 0, "SELECT quota_record('k1', 200, 'r-rec')" }, { 0, 0 } } },
  { "update", 0, 0,
    { "UPDATE quota SET cap = 200, note = 'n1' WHERE key = 'k1'", 0 },
    { { 0, "UPDATE quota SET cap = 200, note = 'n1' WHERE key = 'k1'" }, { 0, 0 } } },
  { "delete", 0, 0,
    { "DELETE FROM quota WHERE key = 'k2'", 0 },
    { { 0, "DELETE FROM quota WHERE key = 'k2'" }, { 0, 0 } } },
  { "txn", 0, 0,
    { "BEGIN",
      "SELECT quota_consume('k1', 6, 'r-txn')",
      "SELECT quota_release($H1)",
      "COMMIT", 0 },
    { { 0, "BEGIN" },
      { 0, "SELECT quota_consume('k1', 6, 'r-txn')" },
      { 0, "SELECT quota_release($H1)" },
      { 0, "COMMIT" }, { 0, 0 } } },
  { "insert-select", 0, 0,
    { "INSERT INTO t(x) VALUES (quota_consume('k1', 4, 'r-ins'))", 0 },
    { { "SELECT count(*) FROM t",
        "INSERT INTO t(x) VALUES (quota_consume('k1', 4, 'r-ins'))" }, { 0, 0 } } },
  { "purge", 0, 0,
    { "SELECT quota_purge()", 0 },
    { { 0, "SELECT quota_purge()" }, { 0, 0 } } },
};
#define N_PATH ((int)(sizeof(aPath)/sizeof(aPath[0])))

static sqlite3_int64 gH1, gH2;    /* Hold ids created by the base */

/* Expand $H1 and $H2 in zIn. The result is from malloc(). */
static char *expand(const char *zIn){
  Buf b = {0, 0, 0};
  while( *zIn ){
    if( zIn[0]=='$' && zIn[1]=='H' && (zIn[2]=='1' || zIn[2]=='2') ){
      bufPrintf(&b, "%lld", (long long)(zIn[2]=='1' ? gH1 : gH2));
      zIn += 3;
    }else{
      bufAppend(&b, zIn, 1);
      zIn++;
    }
  }
  if( b.z==0 ) bufAppend(&b, "", 0);
  return b.z;
}

static int countStmt(const Path *p){
  int n = 0;
  while( n<MAX_STMT && p->azCall[n] ) n++;
  return n;
}

/* What a healthy run of a path produces. */
typedef struct Ref Ref;
struct Ref {
  Buf image;                      /* Starting database file */
  int nStmt;                      /* Statements in the path */
  Buf aDump[MAX_STMT+1];          /* aDump[i]: committed state after i statements */
  Buf aRes[MAX_STMT];             /* Result of each statement */
};

static void buildBase(int bEmpty){
  sqlite3 *db;
  Buf res = {0, 0, 0};
  char zPragma[100];
  int i;
  removeDbFiles(g.zDb);
  db = openDb();
  snprintf(zPragma, sizeof(zPragma), "PRAGMA journal_mode=%s", g.zCurJournal);
  mustSql(db, zPragma, 0);
  for(i=0; azBase[i]; i++){
    if( bEmpty && i>0 ) break;
    bufReset(&res);
    mustSql(db, azBase[i], &res);
    if( i==BASE_H1 ) gH1 = atoll(bufText(&res));
    if( i==BASE_H2 ) gH2 = atoll(bufText(&res));
  }
  if( !bEmpty && (gH1<=0 || gH2<=0) ) fatal("base: reserve returned no hold id");
  closeDb(db);
  bufFree(&res);
}

/* A reference state must itself pass every check. */
static void refCheck(const Path *p, sqlite3 *db, const char *zWhen){
  Buf why = {0, 0, 0};
  if( checkDb(db, &why, 1) ){
    fatal("path %s: the reference state %s fails a check: %s", p->zName, zWhen, bufText(&why));
  }
  bufFree(&why);
}

static void buildRef(const Path *p, Ref *pRef){
  sqlite3 *db, *db2;
  int i;
  Buf err = {0, 0, 0};
  memset(pRef, 0, sizeof(*pRef));
  buildBase(p->bEmpty);
  readFile(g.zDb, &pRef->image);
  pRef->nStmt = countStmt(p);
  db = openDb();
  db2 = openDb();
  dumpDb(db2, &pRef->aDump[0]);
  refCheck(p, db2, "before the path");
  for(i=0; i<pRef->nStmt; i++){
    char *z = expand(p->azCall[i]);
    int rc = runSql(db, z, &pRef->aRes[i], &err);
    if( rc!=SQLITE_OK ) fatal("path %s reference: %s: %s", p->zName, z, bufText(&err));
    free(z);
    dumpDb(db2, &pRef->aDump[i+1]);
    refCheck(p, db2, i+1<pRef->nStmt ? "inside the path" : "after the path");
  }
  closeDb(db2);
  closeDb(db);
  bufFree(&err);
}

static void freeRef(Ref *pRef){
  int i;
  bufFree(&pRef->image);
  for(i=0; i<=MAX_STMT; i++) bufFree(&pRef->aDump[i]);
  for(i=0; i<MAX_STMT; i++) bufFree(&pRef->aRes[i]);
}

/* Run the retry statements of path p on db. */
static int runRetry(sqlite3 *db, const Path *p, const Ref *pRef, Buf *pWhy){
  int i, rc = SQLITE_OK;
  Buf res = {0, 0, 0}, err = {0, 0, 0};
  for(i=0; i<MAX_STMT && p->aRetry[i].zSql; i++){
    char *z;
    if( p->aRetry[i].zCond ){
      bufReset(&res);
      rc = runSql(db, p->aRetry[i].zCond, &res, &err);
      if( rc!=SQLITE_OK ){
        if( strstr(bufText(&err), "no such table")==0 ){
          bufPrintf(pWhy, "retry condition failed: %s", bufText(&err));
          break;
        }
        rc = SQLITE_OK;
      }else if( atoll(bufText(&res))!=0 ){
        continue;
      }
    }
    z = expand(p->aRetry[i].zSql);
    bufReset(&res);
    rc = runSql(db, z, &res, &err);
    if( rc!=SQLITE_OK ){
      bufPrintf(pWhy, "retry '%s' failed: rc=%d %s", z, rc, bufText(&err));
      free(z);
      break;
    }
    if( p->bRetrySame && strcmp(bufText(&res), bufText(&pRef->aRes[i]))!=0 ){
      bufPrintf(pWhy, "retry '%s' returned %s, reference returned %s", z,
                bufText(&res), bufText(&pRef->aRes[i]));
      rc = SQLITE_ERROR;
      free(z);
      break;
    }
    free(z);
  }
  bufFree(&res);
  bufFree(&err);
  return rc;
}

/* True for the codes an injected I/O fault may surface as. */
static int isIoClass(int rc){
  int prim = rc & 0xff;
  return prim==SQLITE_IOERR || prim==SQLITE_FULL || prim==SQLITE_CANTOPEN;
}

/*
** Run one point. Returns the number of calls failed (0: the point is past
** the last call of that kind).
*/
static int runPoint(const Path *p, const Ref *pRef, int eKind, int iN, int bPersist){
  sqlite3 *db = 0;
  int nFailed;
  int i, nOk = 0, rc = SQLITE_OK, bDangling = 0, iMatch = -1;
  Buf res = {0, 0, 0}, err = {0, 0, 0}, dump = {0, 0, 0}, why = {0, 0, 0};

  installTemplate(&pRef->image);
  /* The fault window starts before sqlite3_open_v2(): the first read of the
  ** schema, the WAL's opening and the extension's registration are in it. */
  faultArm(eKind, iN, bPersist);
  rc = sqlite3_open_v2(g.zDb, &db, SQLITE_OPEN_READWRITE, "iofault");
  if( rc!=SQLITE_OK ){
    bufReset(&err);
    bufPrintf(&err, "open: %s", db ? sqlite3_errmsg(db) : "?");
  }else{
    sqlite3_extended_result_codes(db, 1);
    rc = sqlite3_busy_timeout(db, 2000);
    if( rc!=SQLITE_OK ) fatal("busy_timeout: rc=%d", rc);
  }
  for(i=0; rc==SQLITE_OK && i<pRef->nStmt; i++){
    char *z = expand(p->azCall[i]);
    bufReset(&res);
    rc = runSql(db, z, &res, &err);
    free(z);
    if( rc!=SQLITE_OK ) break;
    if( strcmp(bufText(&res), bufText(&pRef->aRes[i]))!=0 ){
      violation(p->zName, eKind, iN, bPersist,
                "statement %d succeeded but returned %s, reference %s",
                i+1, bufText(&res), bufText(&pRef->aRes[i]));
    }
    nOk++;
  }
  /* The window stays open through the closing of the connection: a WAL
  ** checkpoint on close, or the release of the locks, can fail too (and
  ** close reports nothing: the reopened database must still be right). */
  if( db && !sqlite3_get_autocommit(db) ){
    bDangling = strcmp(p->zName, "txn")!=0;
    runSql(db, "ROLLBACK", 0, 0);   /* may fail under the fault */
  }
  i = sqlite3_close(db);
  nFailed = gFault.nFailed;
  faultDisarm();
  if( i!=SQLITE_OK ) fatal("sqlite3_close: rc=%d", i);

  if( g.bVerbose ){
    printf("journal %s path %s kind %s n=%d %s: %d/%d statements ok, rc=%d (%s), %d calls failed\n",
           g.zCurJournal, p->zName, azKind[eKind], iN, bPersist ? "persistent" : "transient",
           nOk, pRef->nStmt, rc, rc ? bufText(&err) : "-", nFailed);
  }
  if( rc!=SQLITE_OK && !isIoClass(rc) ){
    violation(p->zName, eKind, iN, bPersist,
              "statement %d failed with rc=%d (%s), not an I/O-class error",
              nOk+1, rc, bufText(&err));
  }
  if( rc!=SQLITE_OK && nFailed==0 ){
    violation(p->zName, eKind, iN, bPersist,
              "statement %d failed (rc=%d %s) but no call failed", nOk+1, rc, bufText(&err));
  }
  if( bDangling ){
    violation(p->zName, eKind, iN, bPersist,
              "connection left inside a transaction after rc=%d", rc);
  }

  /* Reopened with a healthy VFS: the committed state is a reference state. */
  db = openDb();
  {
    Buf e2 = {0, 0, 0};
    int rc2 = runSql(db, "SELECT count(*) FROM sqlite_schema", 0, &e2);
    if( rc2!=SQLITE_OK ){
      violation(p->zName, eKind, iN, bPersist, "database unreadable after reopening: rc=%d %s",
                rc2, bufText(&e2));
      bufFree(&e2);
      closeDb(db);
      goto done;
    }
    bufFree(&e2);
  }
  dumpDb(db, &dump);
  {
    for(i=nOk; i<=pRef->nStmt && i<=nOk+1; i++){
      if( strcmp(bufText(&dump), bufText(&pRef->aDump[i]))==0 ){ iMatch = i; break; }
    }
    if( iMatch<0 ){
      bufReset(&why);
      dumpDiff(bufText(&dump), bufText(&pRef->aDump[nOk]), &why);
      violation(p->zName, eKind, iN, bPersist,
                "state after the fault is neither before nor after the call (%s)", bufText(&why));
      if( g.bVerbose ) printf("-- state after the fault:\n%s", bufText(&dump));
    }
  }
  bufReset(&why);
  if( checkDb(db, &why, iMatch<0) ){
    violation(p->zName, eKind, iN, bPersist, "after the fault: %s", bufText(&why));
  }

  /* A retry converges to the reference end state. */
  bufReset(&why);
  if( runRetry(db, p, pRef, &why)!=SQLITE_OK ){
    violation(p->zName, eKind, iN, bPersist, "%s", bufText(&why));
  }
  dumpDb(db, &dump);
  if( strcmp(bufText(&dump), bufText(&pRef->aDump[pRef->nStmt]))!=0 ){
    bufReset(&why);
    dumpDiff(bufText(&dump), bufText(&pRef->aDump[pRef->nStmt]), &why);
    violation(p->zName, eKind, iN, bPersist,
              "retry did not converge to the reference state (%s)", bufText(&why));
  }
  bufReset(&why);
  if( checkDb(db, &why, strcmp(bufText(&dump), bufText(&pRef->aDump[pRef->nStmt]))!=0) ){
    violation(p->zName, eKind, iN, bPersist, "after the retry: %s", bufText(&why));
  }
  closeDb(db);

done:
  bufFree(&res); bufFree(&err); bufFree(&dump); bufFree(&why);
  return nFailed;
}

static void usage(void){
  fprintf(stderr,
    "usage: iofault [--long] [--journal delete|wal] [--path NAME] [--kind KIND]\n"
    "               [--n N] [--transient|--persistent] [--keep-going] [--dir DIR] [-v]\n");
  exit(2);
}

int main(int argc, char **argv){
  static const char *azJournal[] = { "delete", "wal" };
  int i, rc, iPath, iJournal;
  long long nTotal = 0;
  long long aKindTotal[K_COUNT];
  time_t tStart = time(0);

#ifdef __GLIBC__
  /* Every point opens and closes connections: keep freed memory in the
  ** heap instead of returning it to the kernel each time (twice as fast). */
  mallopt(M_MMAP_THRESHOLD, 64<<20);
  mallopt(M_TRIM_THRESHOLD, 256<<20);
#endif

  memset(aKindTotal, 0, sizeof(aKindTotal));
  for(i=1; i<argc; i++){
    const char *z = argv[i];
    if( strcmp(z, "--long")==0 ) g.bLong = 1;
    else if( strcmp(z, "-v")==0 || strcmp(z, "--verbose")==0 ) g.bVerbose = 1;
    else if( strcmp(z, "--path")==0 && i+1<argc ) g.zPath = argv[++i];
    else if( strcmp(z, "--journal")==0 && i+1<argc ) g.zJournal = argv[++i];
    else if( strcmp(z, "--kind")==0 && i+1<argc ){
      int k;
      z = argv[++i];
      for(k=0; k<K_COUNT && strcmp(azKind[k], z)!=0; k++){}
      if( k>=K_COUNT ) usage();
      g.eKind = k;
    }
    else if( strcmp(z, "--n")==0 && i+1<argc ) g.iN = atoi(argv[++i]);
    else if( strcmp(z, "--keep-going")==0 ) g.bKeepGoing = 1;
    else if( strcmp(z, "--transient")==0 ) g.eMode = 0;
    else if( strcmp(z, "--persistent")==0 ) g.eMode = 1;
    else if( strcmp(z, "--dir")==0 && i+1<argc ) snprintf(g.zDir, sizeof(g.zDir), "%s", argv[++i]);
    else usage();
  }

  rc = sqlite3_initialize();
  if( rc!=SQLITE_OK ) fatal("sqlite3_initialize: rc=%d", rc);
  rc = faultVfsRegister();
  if( rc!=SQLITE_OK ) fatal("registering the VFS: rc=%d", rc);
  rc = sqlite3_auto_extension((void(*)(void))sqlite3_quota_init);
  if( rc!=SQLITE_OK ) fatal("sqlite3_auto_extension: rc=%d", rc);

  if( g.zDir[0]==0 ){
    const char *zTmp = getenv("TMPDIR");
    char zTemplate[512];
    if( zTmp==0 || zTmp[0]==0 ) zTmp = access("/dev/shm", W_OK)==0 ? "/dev/shm" : "/tmp";
    snprintf(zTemplate, sizeof(zTemplate), "%s/iofault.XXXXXX", zTmp);
    if( mkdtemp(zTemplate)==0 ) fatal("mkdtemp %s: %s", zTemplate, strerror(errno));
    snprintf(g.zDir, sizeof(g.zDir), "%s", zTemplate);
  }else{
    mkdir(g.zDir, 0755);
  }
  snprintf(g.zDb, sizeof(g.zDb), "%s/io.db", g.zDir);
  printf("iofault: SQLite %s, %s mode, directory %s\n", sqlite3_libversion(),
         g.bLong ? "long" : "bounded", g.zDir);

  for(iJournal=0; iJournal<2; iJournal++){
    g.zCurJournal = azJournal[iJournal];
    if( g.zJournal && strcmp(g.zJournal, g.zCurJournal)!=0 ) continue;
    for(iPath=0; iPath<N_PATH; iPath++){
      const Path *p = &aPath[iPath];
      Ref ref;
      int eKind, aPoints[K_COUNT];
      long long nPath = 0;
      Buf line = {0, 0, 0};
      if( g.zPath && strcmp(g.zPath, p->zName)!=0 ) continue;
      memset(aPoints, 0, sizeof(aPoints));
      buildRef(p, &ref);
      for(eKind=0; eKind<K_COUNT; eKind++){
        int bPersist;
        if( g.eKind>=0 && g.eKind!=eKind ) continue;
        for(bPersist=0; bPersist<2; bPersist++){
          int iN;
          if( g.eMode>=0 && g.eMode!=bPersist ) continue;
          /* Bounded mode: every kind transient; persistent only where
          ** persistence matters most (a sync or truncate that keeps failing
          ** leaves a hot journal or a half-written WAL behind; a full disk
          ** stays full). A transient "full" is a transient "write" with
          ** another code, so it is left to --long. */
          if( !g.bLong && g.eMode<0 && g.eKind<0 ){
            if( bPersist && eKind!=K_SYNC && eKind!=K_FULL && eKind!=K_TRUNCATE ) continue;
            if( !bPersist && eKind==K_FULL ) continue;
          }
          int nBadHere = 0;
          for(iN = g.iN>0 ? g.iN : 1; ; iN++){
            int nViol0 = g.nViolation;
            if( runPoint(p, &ref, eKind, iN, bPersist)==0 ) break;
            aPoints[eKind]++;
            if( g.iN>0 ) break;
            if( g.nViolation>nViol0 && ++nBadHere>=MAX_BAD_POINTS && !g.bKeepGoing ){
              printf("iofault: %s path %s kind %s %s: %d failing points, skipping the rest"
                     " (--keep-going runs them all)\n", g.zCurJournal, p->zName,
                     azKind[eKind], bPersist ? "persistent" : "transient", nBadHere);
              break;
            }
          }
        }
      }
      for(eKind=0; eKind<K_COUNT; eKind++){
        nPath += aPoints[eKind];
        aKindTotal[eKind] += aPoints[eKind];
        if( aPoints[eKind] ) bufPrintf(&line, " %s %d", azKind[eKind], aPoints[eKind]);
      }
      printf("iofault: %s path %s %lld points (%s)\n", g.zCurJournal, p->zName,
             nPath, line.z ? line.z+1 : "");
      fflush(stdout);
      nTotal += nPath;
      bufFree(&line);
      freeRef(&ref);
    }
  }
  removeDbFiles(g.zDb);
  rmdir(g.zDir);
  {
    Buf line = {0, 0, 0};
    int k;
    for(k=0; k<K_COUNT; k++){
      if( aKindTotal[k] ) bufPrintf(&line, " %s %lld", azKind[k], aKindTotal[k]);
    }
    printf("iofault: by kind:%s\n", line.z ? line.z : "");
    bufFree(&line);
  }
  printf("iofault: total %lld points, %d violations (%ld s)\n",
         nTotal, g.nViolation, (long)(time(0)-tStart));
  return g.nViolation ? 1 : 0;
}
