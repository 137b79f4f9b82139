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
**      did not start, and a transaction still open must hold what it held
**      before the failed statement (read with the fault paused);
**   3. the connection is closed, the VFS healed, the database reopened: it
**      holds exactly the state before or after the call (compared with the
**      reference run's dumps), the invariants hold, integrity_check is ok
**      (the upgrade paths of faultpaths.h, from a store at schema 1: read
**      without the extension, it is exactly the schema-1 store or the
**      upgraded one);
**   4. a retry with the same request ids, on a new connection, converges to
**      the reference end state (exactly one charge), quota_integrity() ok.
**
**   build/iofault                     bounded run (make test): every point of
**                                     every kind once; persistently only sync,
**                                     truncate and full (disk full)
**   build/iofault --long              every kind, both persistences, all points
**   build/iofault --journal wal --path consume --kind write --n 3 --persistent -v
**   --schema1 FILE                    the SQL of the upgrade paths' schema-1
**                                     store (default test/schema1.sql: run
**                                     from the repository root)
**
** Summary lines (checked by test/faults.test), and the errors seen per path:
**   iofault: JOURNAL path NAME N points (read N write N ...), N violations
**   iofault: JOURNAL path NAME errors: N x 'MESSAGE' (rc N); ...
**   iofault: total N points, N violations
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

/* The shared plumbing, and what the VFS below shares with crashtest's. */
#define DRIVER_PROG "iofault"
#include "faultutil.h"
#include "faultvfs.h"

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
  p->pReal = (sqlite3_file*)&p[1];
  pFile->pMethods = 0;
  if( faultHit(K_OPEN) ) return SQLITE_CANTOPEN;
  rc = SHIM_REAL(pVfs)->xOpen(SHIM_REAL(pVfs), zName, p->pReal, flags, pOutFlags);
  if( p->pReal->pMethods ) pFile->pMethods = &gFaultIo;
  return rc;
}
static int vDelete(sqlite3_vfs *pVfs, const char *zName, int syncDir){
  if( faultHit(K_DELETE) ) return SQLITE_IOERR_DELETE;
  return SHIM_REAL(pVfs)->xDelete(SHIM_REAL(pVfs), zName, syncDir);
}
static int vAccess(sqlite3_vfs *pVfs, const char *zName, int flags, int *pResOut){
  if( faultHit(K_ACCESS) ) return SQLITE_IOERR_ACCESS;
  return SHIM_REAL(pVfs)->xAccess(SHIM_REAL(pVfs), zName, flags, pResOut);
}
/* The other methods pass through (faultvfs.h); the clock is fixed. */
static sqlite3_vfs gFaultVfs = SHIM_VFS("iofault", vOpen, vDelete, vAccess);

static int faultVfsRegister(void){
  return shimRegister(&gFaultVfs, (int)sizeof(FaultFile), 1);
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

/* The base database, the write paths and their reference runs. */
#include "faultpaths.h"

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
  sqlite3 *db = 0, *dbRetry;
  int nFailed;
  int i, nOk = 0, rc = SQLITE_OK, bDangling = 0;
  Buf res = {0, 0, 0}, err = {0, 0, 0}, why = {0, 0, 0};

  installTemplate(g.zDb, &pRef->image);
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
    rc = runCall(db, p, i, &res, &err);
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
    bDangling = !pathBegins(p);       /* the path's own is rolled back */
    gFault.bArmed = 0;                /* what the transaction holds, read healthy */
    bufReset(&why);
    if( checkTxnView(p, pRef, db, nOk, &why) ){
      violation(p->zName, eKind, iN, bPersist, "%s", bufText(&why));
    }
    gFault.bArmed = 1;
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
  if( rc!=SQLITE_OK ) errSeen(rc, bufText(&err));
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
  db = openCheckDb(p);
  bufReset(&why);
  i = checkState(p, pRef, db, 0, nOk, &why, g.bVerbose);
  if( i ) violation(p->zName, eKind, iN, bPersist, "%s", bufText(&why));
  if( i<0 ){
    closeDb(db);
    goto done;
  }

  /* A retry converges to the reference end state. The check connection
  ** retries, unless it has no extension: then a second one does. */
  dbRetry = p->eBase>=BASE_SCHEMA1 ? openDb() : db;
  bufReset(&why);
  if( runRetry(dbRetry, p, pRef, &why)!=SQLITE_OK ){
    violation(p->zName, eKind, iN, bPersist, "%s", bufText(&why));
  }
  if( dbRetry!=db ) closeDb(dbRetry);
  bufReset(&why);
  if( checkState(p, pRef, db, 1, 0, &why, g.bVerbose) ){
    violation(p->zName, eKind, iN, bPersist, "%s", bufText(&why));
  }
  closeDb(db);

done:
  bufFree(&res); bufFree(&err); bufFree(&why);
  return nFailed;
}

static void usage(void){
  fprintf(stderr,
    "usage: iofault [--long] [--journal delete|wal] [--path NAME] [--kind KIND]\n"
    "               [--n N] [--transient|--persistent] [--keep-going] [--dir DIR]\n"
    "               [--schema1 FILE] [-v]\n");
  exit(2);
}

int main(int argc, char **argv){
  static const char *azJournal[] = { "delete", "wal" };
  int i, iPath, iJournal;
  long long nTotal = 0;
  long long aKindTotal[K_COUNT];
  time_t tStart = time(0);

  faultTuneMalloc();
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
    else if( strcmp(z, "--schema1")==0 && i+1<argc ) zSchema1Sql = argv[++i];
    else usage();
  }

  faultStart(faultVfsRegister, g.zDir, sizeof(g.zDir), g.zDb, sizeof(g.zDb), "io.db");
  printf("iofault: SQLite %s, %s mode, directory %s\n", sqlite3_libversion(),
         g.bLong ? "long" : "bounded", g.zDir);

  for(iJournal=0; iJournal<2; iJournal++){
    g.zCurJournal = azJournal[iJournal];
    if( g.zJournal && strcmp(g.zJournal, g.zCurJournal)!=0 ) continue;
    for(iPath=0; iPath<N_PATH; iPath++){
      const Path *p = &aPath[iPath];
      Ref ref;
      int eKind, aPoints[K_COUNT], nViolPath = g.nViolation;
      long long nPath = 0;
      Buf line = {0, 0, 0};
      if( g.zPath && strcmp(g.zPath, p->zName)!=0 ) continue;
      if( p->bOpen ) continue;    /* oomtest's: every open here is faulted */
      memset(aPoints, 0, sizeof(aPoints));
      buildRef(p, &ref, g.zCurJournal);
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
      printf("iofault: %s path %s %lld points (%s), %d violations\n", g.zCurJournal,
             p->zName, nPath, line.z ? line.z+1 : "", g.nViolation-nViolPath);
      bufReset(&line);
      bufPrintf(&line, "iofault: %s path %s", g.zCurJournal, p->zName);
      errSeenReport(bufText(&line));
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
