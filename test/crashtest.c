/*
** crashtest.c - simulated power loss for sqlite-quota.
**
** A crash VFS (the idea of SQLite's test6.c, written afresh) sits over the
** system VFS. For the database, its rollback journal and its WAL it keeps, per
** file, the durable image (the real file on disk) and, in memory, the current
** contents plus the list of writes and truncations made since the file was
** last synced. xSync makes a file's pending operations durable. At the Nth
** xSync of the run (any file) the VFS "loses power": every pending operation
** of every file is, by a seeded RNG, applied, dropped, or applied with some of
** the 512-byte sectors it touches filled with garbage; then the process
** _exit()s. The VFS reports a 512-byte sector and no device characteristics
** (no atomic or powersafe writes), so SQLite expects exactly this damage.
** Deleting a file is durable at once (as in test6.c: the model of a file
** system that orders metadata, or of synchronous=EXTRA in DELETE mode).
** The WAL index (-shm) goes to the real file: SQLite rebuilds it after a crash.
**
** Each run is a forked child that runs a scripted workload with request ids
** and writes one acknowledgement per completed call to a pipe. The parent then
** opens the database with the ordinary VFS and checks:
**   - PRAGMA integrity_check is ok (else: a corruption);
**   - the database equals the reference state after exactly k calls of the
**     workload (reference dumps from a crash-free run), where k is the number
**     of acknowledged calls or one more (the call in flight); k smaller is an
**     acknowledged charge lost; no such k at all is a corruption too;
**   - the invariants hold and acknowledged results equal the reference ones.
**
** Modes: delete-full and wal-full (synchronous=FULL: any loss or corruption
** fails the test) and wal-normal (synchronous=NORMAL in WAL: reported only;
** SQLite documents that a commit may roll back after power loss there).
** --mode lying-disk (not run by default) is the checker's self-test: a disk
** whose xSync makes nothing durable, where losses and corruption must show.
**
**   build/crashtest                  bounded: every sync point x 20 seeds
**   build/crashtest --long           3 workload cycles x 100 seeds
**   build/crashtest --mode wal-full --point 7 --seed 13 -v    replay one run
**
** Summary lines (checked by test/faults.test):
**   crashtest: MODE points N seeds N runs N corruptions N lost-acks N (in N runs, at most N per run)
**   crashtest: total runs N, corruptions N, lost acks N (synchronous=FULL), violations N
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#define SECTOR 512
#define CRASH_EXIT 99             /* the child lost power */

/* The shared plumbing, and what the VFS below shares with iofault's. */
#define DRIVER_PROG "crashtest"
#include "faultutil.h"
#include "faultvfs.h"

/*--------------------------------------------------------------------------
** Options and reporting.
*/
static struct {
  int bLong;                      /* --long */
  int bVerbose;                   /* -v */
  const char *zMode;              /* --mode: only this mode */
  int iPoint;                     /* --point: only this sync point */
  int iSeed;                      /* --seed: only this seed */
  int nSeed;                      /* seeds per point */
  int nCycle;                     /* workload cycles */
  char zDir[512];                 /* Working directory */
  char zDb[600];                  /* Database file */
  int nViolation;
} g = { 0, 0, 0, 0, 0, 20, 1, "", "", 0 };

/*--------------------------------------------------------------------------
** The deterministic RNG of driver_util.h, seeded per seed and crash point.
*/
static Rng gRng;
static void rngSeed(int iSeed, int iPoint){
  gRng.s = (sqlite3_uint64)iSeed*1000003ULL + (sqlite3_uint64)iPoint*7919ULL + 12345ULL;
  (void)rngNext(&gRng);
}

/*--------------------------------------------------------------------------
** The crash VFS.
*/
typedef struct CrashOp CrashOp;
struct CrashOp {
  int bTrunc;                     /* 1: truncate to iOff; 0: write */
  sqlite3_int64 iOff;             /* Offset of the write, or the new size */
  int n;                          /* Bytes written */
  unsigned char *a;               /* Copy of the bytes written */
  CrashOp *pNext;
};

/* One file the crash VFS keeps, by path; survives xClose. */
typedef struct CrashInode CrashInode;
struct CrashInode {
  char *zPath;                    /* Full path */
  int fd;                         /* POSIX descriptor of the durable image */
  unsigned char *a;               /* Current contents */
  sqlite3_int64 nSize;            /* Current size */
  sqlite3_int64 nAlloc;           /* Bytes allocated at a */
  CrashOp *pFirst, *pLast;        /* Operations since the last sync */
  CrashInode *pNext;
};

typedef struct CrashFile CrashFile;
struct CrashFile {
  sqlite3_file base;              /* Base class - must be first */
  CrashInode *pInode;             /* NULL: a temp file, passed through */
  sqlite3_file *pReal;            /* The real file (locks, WAL index) */
};
#define CREAL(f) (((CrashFile*)(f))->pReal)

static struct {
  CrashInode *pInodes;            /* Every tracked file */
  int iCrashAt;                   /* Lose power at this xSync (0: never) */
  int iSeedFirst, iSeedLast;      /* Seeds to materialize at the crash */
  int bLyingDisk;                 /* xSync makes nothing durable */
  int nSync;                      /* xSync calls so far */
} gCrash;

static void *xmalloc(size_t n){
  void *p = malloc(n ? n : 1);
  if( p==0 ){ fprintf(stderr, "crashtest: out of system memory\n"); _exit(2); }
  return p;
}

static void pwriteAll(int fd, const unsigned char *a, sqlite3_int64 n, sqlite3_int64 iOff){
  while( n>0 ){
    ssize_t k = pwrite(fd, a, (size_t)n, (off_t)iOff);
    if( k<=0 ){ fprintf(stderr, "crashtest: pwrite: %s\n", strerror(errno)); _exit(2); }
    a += k; n -= k; iOff += k;
  }
}

static CrashInode *inodeFind(const char *zPath){
  CrashInode *p;
  for(p=gCrash.pInodes; p; p=p->pNext){
    if( strcmp(p->zPath, zPath)==0 ) return p;
  }
  return 0;
}

static void inodeClearOps(CrashInode *p){
  while( p->pFirst ){
    CrashOp *pOp = p->pFirst;
    p->pFirst = pOp->pNext;
    free(pOp->a);
    free(pOp);
  }
  p->pLast = 0;
}

static void inodeGrow(CrashInode *p, sqlite3_int64 nNew){
  if( nNew>p->nAlloc ){
    sqlite3_int64 nAlloc = nNew*2 + 4096;
    unsigned char *a = realloc(p->a, (size_t)nAlloc);
    if( a==0 ){ fprintf(stderr, "crashtest: out of system memory\n"); _exit(2); }
    p->a = a;
    p->nAlloc = nAlloc;
  }
  if( nNew>p->nSize ) memset(p->a+p->nSize, 0, (size_t)(nNew-p->nSize));
}

static void inodeAddOp(CrashInode *p, int bTrunc, sqlite3_int64 iOff,
                       const void *a, int n){
  CrashOp *pOp = xmalloc(sizeof(*pOp));
  pOp->bTrunc = bTrunc;
  pOp->iOff = iOff;
  pOp->n = n;
  pOp->a = 0;
  if( n>0 ){
    pOp->a = xmalloc((size_t)n);
    memcpy(pOp->a, a, (size_t)n);
  }
  pOp->pNext = 0;
  if( p->pLast ) p->pLast->pNext = pOp; else p->pFirst = pOp;
  p->pLast = pOp;
}

/* Make every pending operation of p durable (a completed sync). */
static void inodeFlush(CrashInode *p){
  pwriteAll(p->fd, p->a, p->nSize, 0);
  if( ftruncate(p->fd, (off_t)p->nSize) ){
    fprintf(stderr, "crashtest: ftruncate: %s\n", strerror(errno));
    _exit(2);
  }
  inodeClearOps(p);
}

/*
** Power is lost at sync point gCrash.iCrashAt. For each seed of the run, the
** disk as it would be after the loss is written to the directory
** <dir>/s<seed>/ (same file names): the durable image of every file plus
** each operation pending on it, by the seed's RNG, applied, dropped, or torn
** (each sector it touches either written or filled with garbage; a torn or
** dropped truncation keeps the old size). Materializing all seeds from one
** run is exactly equivalent to one run per seed (the workload up to the
** crash does not depend on the seed) and much cheaper. Then the process ends
** without running anything else.
*/
static void crashImage(CrashInode *p, const char *zOut){
  struct stat st;
  unsigned char *a;
  sqlite3_int64 nSize, nAlloc;
  CrashOp *pOp;
  int fd;
  if( fstat(p->fd, &st) ) _exit(2);
  nSize = (sqlite3_int64)st.st_size;
  nAlloc = nSize + 65536;
  a = xmalloc((size_t)nAlloc);
  if( nSize>0 && pread(p->fd, a, (size_t)nSize, 0)!=(ssize_t)nSize ) _exit(2);
#define CRASH_ENSURE(N) \
  if( (N)>nSize ){ \
    if( (N)>nAlloc ){ \
      nAlloc = (N)*2; a = realloc(a, (size_t)nAlloc); if( a==0 ) _exit(2); \
    } \
    memset(a+nSize, 0, (size_t)((N)-nSize)); nSize = (N); \
  }
  for(pOp=p->pFirst; pOp; pOp=pOp->pNext){
    int r = (int)(rngNext(&gRng)%3);
    if( pOp->bTrunc ){
      if( r!=1 ){
        if( pOp->iOff<nSize ){ nSize = pOp->iOff; }else{ CRASH_ENSURE(pOp->iOff); }
      }
    }else if( r==0 ){
      CRASH_ENSURE(pOp->iOff+pOp->n);
      memcpy(a+pOp->iOff, pOp->a, (size_t)pOp->n);
    }else if( r==2 ){
      sqlite3_int64 iSec = pOp->iOff/SECTOR;
      sqlite3_int64 iEnd = (pOp->iOff+pOp->n+SECTOR-1)/SECTOR;
      for(; iSec<iEnd; iSec++){
        sqlite3_int64 s = iSec*SECTOR, e = s+SECTOR;
        if( rngNext(&gRng)&1 ){
          int k;
          CRASH_ENSURE(e);
          for(k=0; k<SECTOR; k++) a[s+k] = (unsigned char)rngNext(&gRng);
        }else{
          if( s<pOp->iOff ) s = pOp->iOff;
          if( e>pOp->iOff+pOp->n ) e = pOp->iOff+pOp->n;
          CRASH_ENSURE(e);
          memcpy(a+s, pOp->a+(s-pOp->iOff), (size_t)(e-s));
        }
      }
    }
  }
#undef CRASH_ENSURE
  fd = open(zOut, O_WRONLY|O_CREAT|O_TRUNC, 0644);
  if( fd<0 ) _exit(2);
  pwriteAll(fd, a, nSize, 0);
  close(fd);
  free(a);
}

static void crashNow(void){
  int iSeed;
  for(iSeed=gCrash.iSeedFirst; iSeed<=gCrash.iSeedLast; iSeed++){
    char zDir[700];
    CrashInode *p;
    snprintf(zDir, sizeof(zDir), "%s/s%d", g.zDir, iSeed);
    if( mkdir(zDir, 0755) && errno!=EEXIST ) _exit(2);
    rngSeed(iSeed, gCrash.iCrashAt);
    for(p=gCrash.pInodes; p; p=p->pNext){
      char zOut[1400];
      const char *zBase = strrchr(p->zPath, '/');
      snprintf(zOut, sizeof(zOut), "%s/%s", zDir, zBase ? zBase+1 : p->zPath);
      crashImage(p, zOut);
    }
  }
  _exit(CRASH_EXIT);
}

static int cClose(sqlite3_file *f){
  return CREAL(f)->pMethods->xClose(CREAL(f));
}
static int cRead(sqlite3_file *f, void *z, int n, sqlite3_int64 off){
  CrashInode *p = ((CrashFile*)f)->pInode;
  sqlite3_int64 nAvail;
  if( p==0 ) return CREAL(f)->pMethods->xRead(CREAL(f), z, n, off);
  nAvail = p->nSize - off;
  if( nAvail>=n ){
    memcpy(z, p->a+off, (size_t)n);
    return SQLITE_OK;
  }
  if( nAvail<0 ) nAvail = 0;
  if( nAvail>0 ) memcpy(z, p->a+off, (size_t)nAvail);
  memset((char*)z+nAvail, 0, (size_t)(n-nAvail));
  return SQLITE_IOERR_SHORT_READ;
}
static int cWrite(sqlite3_file *f, const void *z, int n, sqlite3_int64 off){
  CrashInode *p = ((CrashFile*)f)->pInode;
  if( p==0 ) return CREAL(f)->pMethods->xWrite(CREAL(f), z, n, off);
  inodeGrow(p, off+n);
  memcpy(p->a+off, z, (size_t)n);
  if( off+n>p->nSize ) p->nSize = off+n;
  inodeAddOp(p, 0, off, z, n);
  return SQLITE_OK;
}
static int cTruncate(sqlite3_file *f, sqlite3_int64 size){
  CrashInode *p = ((CrashFile*)f)->pInode;
  if( p==0 ) return CREAL(f)->pMethods->xTruncate(CREAL(f), size);
  inodeGrow(p, size);
  p->nSize = size;
  inodeAddOp(p, 1, size, 0, 0);
  return SQLITE_OK;
}
static int cSync(sqlite3_file *f, int flags){
  CrashInode *p = ((CrashFile*)f)->pInode;
  if( p==0 ) return CREAL(f)->pMethods->xSync(CREAL(f), flags);
  gCrash.nSync++;
  if( gCrash.iCrashAt>0 && gCrash.nSync==gCrash.iCrashAt ) crashNow();
  if( !gCrash.bLyingDisk ) inodeFlush(p);
  return SQLITE_OK;
}
static int cFileSize(sqlite3_file *f, sqlite3_int64 *pSize){
  CrashInode *p = ((CrashFile*)f)->pInode;
  if( p==0 ) return CREAL(f)->pMethods->xFileSize(CREAL(f), pSize);
  *pSize = p->nSize;
  return SQLITE_OK;
}
static int cLock(sqlite3_file *f, int eLock){
  return CREAL(f)->pMethods->xLock(CREAL(f), eLock);
}
static int cUnlock(sqlite3_file *f, int eLock){
  return CREAL(f)->pMethods->xUnlock(CREAL(f), eLock);
}
static int cCheckReservedLock(sqlite3_file *f, int *pResOut){
  return CREAL(f)->pMethods->xCheckReservedLock(CREAL(f), pResOut);
}
/* A tracked file answers no file control: a size hint or chunk size would
** change the durable image behind the VFS's back. */
static int cFileControl(sqlite3_file *f, int op, void *pArg){
  if( ((CrashFile*)f)->pInode ) return SQLITE_NOTFOUND;
  return CREAL(f)->pMethods->xFileControl(CREAL(f), op, pArg);
}
static int cSectorSize(sqlite3_file *f){
  (void)f;
  return SECTOR;
}
static int cDeviceCharacteristics(sqlite3_file *f){
  (void)f;
  return 0;
}
static int cShmMap(sqlite3_file *f, int iPg, int pgsz, int bExtend, void volatile **pp){
  return CREAL(f)->pMethods->xShmMap(CREAL(f), iPg, pgsz, bExtend, pp);
}
static int cShmLock(sqlite3_file *f, int ofst, int n, int flags){
  return CREAL(f)->pMethods->xShmLock(CREAL(f), ofst, n, flags);
}
static void cShmBarrier(sqlite3_file *f){
  CREAL(f)->pMethods->xShmBarrier(CREAL(f));
}
static int cShmUnmap(sqlite3_file *f, int bDelete){
  return CREAL(f)->pMethods->xShmUnmap(CREAL(f), bDelete);
}

static const sqlite3_io_methods gCrashIo = {
  2,                              /* iVersion: WAL index, no memory mapping */
  cClose,                         /* xClose */
  cRead,                          /* xRead */
  cWrite,                         /* xWrite */
  cTruncate,                      /* xTruncate */
  cSync,                          /* xSync */
  cFileSize,                      /* xFileSize */
  cLock,                          /* xLock */
  cUnlock,                        /* xUnlock */
  cCheckReservedLock,             /* xCheckReservedLock */
  cFileControl,                   /* xFileControl */
  cSectorSize,                    /* xSectorSize */
  cDeviceCharacteristics,         /* xDeviceCharacteristics */
  cShmMap,                        /* xShmMap */
  cShmLock,                       /* xShmLock */
  cShmBarrier,                    /* xShmBarrier */
  cShmUnmap,                      /* xShmUnmap */
  0,                              /* xFetch */
  0                               /* xUnfetch */
};

static int vOpen(sqlite3_vfs *pVfs, const char *zName, sqlite3_file *pFile,
                 int flags, int *pOutFlags){
  CrashFile *p = (CrashFile*)pFile;
  sqlite3_vfs *pReal = SHIM_REAL(pVfs);
  int rc;
  p->pReal = (sqlite3_file*)&p[1];
  p->pInode = 0;
  pFile->pMethods = 0;
  rc = pReal->xOpen(pReal, zName, p->pReal, flags, pOutFlags);
  if( p->pReal->pMethods==0 ) return rc;
  pFile->pMethods = &gCrashIo;
  if( rc==SQLITE_OK && zName
   && (flags & (SQLITE_OPEN_MAIN_DB|SQLITE_OPEN_MAIN_JOURNAL|SQLITE_OPEN_WAL)) ){
    CrashInode *pIno = inodeFind(zName);
    if( pIno==0 ){
      struct stat st;
      pIno = xmalloc(sizeof(*pIno));
      memset(pIno, 0, sizeof(*pIno));
      pIno->zPath = xmalloc(strlen(zName)+1);
      strcpy(pIno->zPath, zName);
      pIno->fd = open(zName, O_RDWR);
      if( pIno->fd<0 || fstat(pIno->fd, &st) ){
        fprintf(stderr, "crashtest: open %s: %s\n", zName, strerror(errno));
        _exit(2);
      }
      inodeGrow(pIno, (sqlite3_int64)st.st_size);
      pIno->nSize = (sqlite3_int64)st.st_size;
      if( pIno->nSize>0 && pread(pIno->fd, pIno->a, (size_t)pIno->nSize, 0)!=(ssize_t)pIno->nSize ){
        fprintf(stderr, "crashtest: read %s: %s\n", zName, strerror(errno));
        _exit(2);
      }
      pIno->pNext = gCrash.pInodes;
      gCrash.pInodes = pIno;
    }
    p->pInode = pIno;
  }
  return rc;
}
static int vDelete(sqlite3_vfs *pVfs, const char *zName, int syncDir){
  CrashInode **pp;
  for(pp=&gCrash.pInodes; *pp; pp=&(*pp)->pNext){
    if( strcmp((*pp)->zPath, zName)==0 ){
      CrashInode *p = *pp;
      *pp = p->pNext;
      inodeClearOps(p);
      close(p->fd);
      free(p->a);
      free(p->zPath);
      free(p);
      break;
    }
  }
  return SHIM_REAL(pVfs)->xDelete(SHIM_REAL(pVfs), zName, syncDir);
}
static int vAccess(sqlite3_vfs *pVfs, const char *zName, int flags, int *pResOut){
  CrashInode *p = inodeFind(zName);
  if( p ){
    /* As the unix VFS: an empty file does not "exist". */
    *pResOut = flags==SQLITE_ACCESS_EXISTS ? p->nSize>0 : 1;
    return SQLITE_OK;
  }
  return SHIM_REAL(pVfs)->xAccess(SHIM_REAL(pVfs), zName, flags, pResOut);
}
/* The other methods pass through (faultvfs.h); the clock is fixed. */
static sqlite3_vfs gCrashVfs = SHIM_VFS("crash", vOpen, vDelete, vAccess);

static int crashVfsRegister(void){
  return shimRegister(&gCrashVfs, (int)sizeof(CrashFile), 0);
}

/* The database dump and the invariants, shared by the fault drivers. */
#include "faultcheck.h"

/*--------------------------------------------------------------------------
** The workload.
**
** The starting database (built with the ordinary VFS) has keys org (cap
** 100000 a month), k1 (cap 100, lifetime, parent org), k2 (no cap, rolling
** hour) and b (a token bucket of 1000, 100 an hour, parent org). Each cycle c runs the calls below; "$P" is the result of the call
** before (a hold id), "%d" the cycle. Request ids make every call retry-safe.
** k1 goes over its cap in the first cycle (a record), so from then on its
** consume is denied (NULL) every cycle: a denial is part of the workload.
*/
/* Alerts on every key and a shadow key in each cycle: the workload writes
** events (quota_events) and settings (quota_keyconf) as it charges. */
static const char *azSetup[] = {
  "CREATE VIRTUAL TABLE quota USING quota(hold_ttl='10 minutes', idempotency='2 hours')",
  "INSERT INTO quota(key, cap, period, alert) VALUES ('org', 100000, 'month', '1000')",
  "INSERT INTO quota(key, cap, period, parent, alert) VALUES ('k1', 100, NULL, 'org', '50, 100%')",
  "INSERT INTO quota(key, cap, period, alert) VALUES ('k2', NULL, 'rolling 1 hours', '25, 100')",
  "INSERT INTO quota(key, cap, period, parent) VALUES ('b', 1000, 'rate 100 per hour', 'org')",
  "SELECT quota_consume('k1', 10, 'seed-1')",
  0
};
static const char *azCycle[] = {
  "SELECT quota_consume('k1', 5, 'c%d-1', '{\"op\":1}')",
  "SELECT quota_reserve('k2', 20, 'c%d-2')",
  "SELECT quota_settle($P, 15, '{\"op\":3}')",
  "SELECT quota_record('k2', 7, 'c%d-4')",
  "SELECT quota_reserve('org', 4, 'c%d-5')",
  "SELECT quota_release($P)",
  "SELECT quota_consume('k2', 3, 'c%d-7')",
  "UPDATE quota SET note = 'cycle %d' WHERE key = 'k1'",
  "SELECT quota_record('k1', 60, 'c%d-9')",
  "SELECT quota_consume('k1', 1, 'c%d-10')",
  "INSERT INTO quota(key, cap, enforce, alert) VALUES ('t%d', 4, 'shadow', '100%')",
  "SELECT quota_consume('t%d', 5, 'c%d-12')",
  "DELETE FROM quota WHERE key = 't%d'",
  "SELECT quota_reserve_upto('b', 5, 50, 'c%d-14', 600)",
  "SELECT quota_extend($P, 1200)",
  "SELECT quota_consume('b', 3, 'c%d-16')",
  0
};
#define N_CYCLE_OPS 16

typedef struct Mode Mode;
struct Mode {
  const char *zName;
  const char *zJournal;
  const char *zSync;
  int bMustHold;                  /* losses and corruptions fail the test */
  int bLyingDisk;                 /* xSync makes nothing durable */
  int bDefault;                   /* run without --mode */
};
static const Mode aMode[] = {
  { "delete-full", "delete", "FULL",   1, 0, 1 },
  { "wal-full",    "wal",    "FULL",   1, 0, 1 },
  { "wal-normal",  "wal",    "NORMAL", 0, 0, 1 },
  /* A self-test of the checker: a disk that acknowledges flushes it never
  ** makes. It must report corruptions or lost calls (test/faults.test). */
  { "lying-disk",  "delete", "FULL",   0, 1, 0 },
};
#define N_MODE ((int)(sizeof(aMode)/sizeof(aMode[0])))

/* SQL of call i of the workload; zPrev is the previous call's result. */
static char *opSql(int i, const char *zPrev){
  int c = i/N_CYCLE_OPS;
  const char *zT = azCycle[i%N_CYCLE_OPS];
  char zFmt[300], zOut[400];
  const char *zP = strstr(zT, "$P");
  if( zP ){
    snprintf(zFmt, sizeof(zFmt), "%.*s%s%s", (int)(zP-zT), zT, zPrev, zP+2);
  }else{
    snprintf(zFmt, sizeof(zFmt), "%s", zT);
  }
  /* Every %d in the template is the cycle number. */
  snprintf(zOut, sizeof(zOut), zFmt, c, c, c);
  {
    char *z = xmalloc(strlen(zOut)+1);
    strcpy(z, zOut);
    return z;
  }
}
static int nOps(void){ return g.nCycle*N_CYCLE_OPS; }

/* Strip a result to one line without the trailing newline. */
static void chomp(Buf *p){
  while( p->n>0 && p->z[p->n-1]=='\n' ) p->z[--p->n] = 0;
}

/*
** Open a connection on zPath through VFS zVfs (NULL: the default) with the
** pragmas of pMode (if not NULL) and the pinned clock. On failure return
** NULL and describe it in pErr, or on stderr when pErr is NULL.
*/
static sqlite3 *openDbAt(const char *zPath, const char *zVfs, const Mode *pMode, Buf *pErr){
  sqlite3 *db = 0;
  char zSql[100];
  const char *zStep = "open";
  int rc = sqlite3_open_v2(zPath, &db, SQLITE_OPEN_READWRITE|SQLITE_OPEN_CREATE, zVfs);
  if( rc==SQLITE_OK ){
    sqlite3_extended_result_codes(db, 1);
    rc = sqlite3_busy_timeout(db, 2000);
  }
  if( rc==SQLITE_OK && pMode ){
    snprintf(zSql, sizeof(zSql), "PRAGMA synchronous=%s", pMode->zSync);
    zStep = "PRAGMA synchronous";
    rc = runSql(db, zSql, 0, 0);
    if( rc==SQLITE_OK ) rc = runSql(db, "PRAGMA wal_autocheckpoint=8", 0, 0);
  }
  if( rc==SQLITE_OK ){
    zStep = "quota_clock()";
    rc = runSql(db, CLOCK_SQL, 0, 0);
  }
  if( rc!=SQLITE_OK ){
    if( pErr ){
      bufPrintf(pErr, "%s: rc=%d %s", zStep, rc, db ? sqlite3_errmsg(db) : "?");
    }else{
      fprintf(stderr, "crashtest: %s %s: rc=%d %s\n", zStep, zPath, rc,
              db ? sqlite3_errmsg(db) : "?");
    }
    sqlite3_close(db);
    return 0;
  }
  return db;
}
static sqlite3 *openDb(const char *zVfs, const Mode *pMode){
  return openDbAt(g.zDb, zVfs, pMode, 0);
}

/* The crash-free run: reference dumps after each call, and each result. */
typedef struct Ref Ref;
struct Ref {
  Buf image;                      /* Starting database file */
  int nOp;
  Buf *aDump;                     /* aDump[k]: state after k calls */
  Buf *aRes;                      /* aRes[i]: result of call i */
};

static void buildRef(const Mode *pMode, Ref *pRef){
  sqlite3 *db, *db2;
  char zSql[100];
  Buf err = {0, 0, 0};
  int i;
  memset(pRef, 0, sizeof(*pRef));
  removeDbFiles(g.zDb);
  db = openDb(0, 0);
  if( db==0 ) fatal("open");
  snprintf(zSql, sizeof(zSql), "PRAGMA journal_mode=%s", pMode->zJournal);
  if( runSql(db, zSql, 0, &err) ) fatal("%s: %s", zSql, bufText(&err));
  for(i=0; azSetup[i]; i++){
    if( runSql(db, azSetup[i], 0, &err) ) fatal("%s: %s", azSetup[i], bufText(&err));
  }
  if( sqlite3_close(db)!=SQLITE_OK ) fatal("close");
  readFile(g.zDb, &pRef->image);

  pRef->nOp = nOps();
  pRef->aDump = calloc((size_t)pRef->nOp+1, sizeof(Buf));
  pRef->aRes = calloc((size_t)pRef->nOp, sizeof(Buf));
  if( pRef->aDump==0 || pRef->aRes==0 ) fatal("out of memory");
  db = openDb(0, pMode);
  db2 = openDb(0, 0);
  if( db==0 || db2==0 ) fatal("open");
  dumpDb(db2, &pRef->aDump[0]);
  for(i=0; i<pRef->nOp; i++){
    char *z = opSql(i, i ? bufText(&pRef->aRes[i-1]) : "NULL");
    if( runSql(db, z, &pRef->aRes[i], &err) ) fatal("reference %s: %s", z, bufText(&err));
    chomp(&pRef->aRes[i]);
    free(z);
    dumpDb(db2, &pRef->aDump[i+1]);
    {
      /* Every state of the workload must pass the checks. */
      Buf why = {0, 0, 0};
      if( checkDb(db2, &why, 1) ){
        fatal("reference state after call %d fails a check: %s", i+1, bufText(&why));
      }
      bufFree(&why);
    }
  }
  if( sqlite3_close(db2)!=SQLITE_OK || sqlite3_close(db)!=SQLITE_OK ) fatal("close");
  bufFree(&err);
}

static void freeRef(Ref *pRef){
  int i;
  bufFree(&pRef->image);
  for(i=0; i<=pRef->nOp; i++) bufFree(&pRef->aDump[i]);
  for(i=0; i<pRef->nOp; i++) bufFree(&pRef->aRes[i]);
  free(pRef->aDump);
  free(pRef->aRes);
}

/*
** The child: run the workload through the crash VFS, losing power at sync
** iPoint (materializing the disk of every seed in iSeedFirst..iSeedLast).
** Writes "i result\n" to fdAck after each completed call. Never returns.
*/
static void childRun(const Mode *pMode, int iPoint, int iSeedFirst, int iSeedLast, int fdAck){
  sqlite3 *db;
  Buf res = {0, 0, 0}, err = {0, 0, 0}, prev = {0, 0, 0};
  int i, rc;
  gCrash.iCrashAt = iPoint;
  gCrash.bLyingDisk = pMode->bLyingDisk;
  gCrash.iSeedFirst = iSeedFirst;
  gCrash.iSeedLast = iSeedLast;
  gCrash.nSync = 0;
  db = openDb("crash", pMode);
  if( db==0 ) _exit(3);
  bufAppend(&prev, "NULL", 4);
  for(i=0; i<nOps(); i++){
    char *z = opSql(i, bufText(&prev));
    char zAck[600];
    int n;
    bufReset(&res);
    rc = runSql(db, z, &res, &err);
    if( rc!=SQLITE_OK ){
      fprintf(stderr, "crashtest: child: call %d (%s) failed: rc=%d %s\n", i, z, rc, bufText(&err));
      _exit(3);
    }
    chomp(&res);
    n = snprintf(zAck, sizeof(zAck), "%d %s\n", i, bufText(&res));
    if( n<0 || n>=(int)sizeof(zAck) || write(fdAck, zAck, (size_t)n)!=(ssize_t)n ) _exit(4);
    bufReset(&prev);
    bufAppend(&prev, bufText(&res), res.n);
    free(z);
  }
  rc = sqlite3_close(db);
  if( rc!=SQLITE_OK ) _exit(5);
  _exit(0);
}

typedef struct Tally Tally;
struct Tally {
  int nPoint;                     /* sync points exercised */
  int nRun;                       /* crashed runs checked */
  int nCorrupt;                   /* integrity or state corruption */
  int nLost;                      /* acknowledged calls lost */
  int nLostRuns;                  /* runs that lost at least one */
  int nMaxLost;                   /* most calls lost by one run */
  int nOther;                     /* other violations */
};

static int gNotes;                /* reports made for the current mode */

/* Print a violation (the first ten of each mode) or, for a mode that only
** reports, a note (the first three); all of them with -v. One line each,
** with its replay command. */
static void report(const Mode *pMode, int iPoint, int iSeed, const char *zFmt, ...){
  va_list ap;
  char zMsg[400];
  int i;
  if( !g.bVerbose && ++gNotes>(pMode->bMustHold ? 10 : 3) ){
    if( gNotes==11 && pMode->bMustHold ) printf("crashtest: (more violations not shown; -v shows all)\n");
    return;
  }
  va_start(ap, zFmt);
  vsnprintf(zMsg, sizeof(zMsg), zFmt, ap);
  va_end(ap);
  for(i=0; zMsg[i]; i++){ if( zMsg[i]=='\n' ) zMsg[i] = '|'; }
  printf("crashtest: %s mode=%s point=%d seed=%d: %s\n",
         pMode->bMustHold ? "VIOLATION" : "note", pMode->zName, iPoint, iSeed, zMsg);
  printf("  replay: build/crashtest --mode %s --point %d --seed %d -v\n",
         pMode->zName, iPoint, iSeed);
  fflush(stdout);
}

/* Remove the directory of one seed's crash image. */
static void removeSeedDir(int iSeed){
  char zDir[700], zDb[800];
  snprintf(zDir, sizeof(zDir), "%s/s%d", g.zDir, iSeed);
  snprintf(zDb, sizeof(zDb), "%s/crash.db", zDir);
  removeDbFiles(zDb);
  rmdir(zDir);
}

/*
** Check the disk seed iSeed left after losing power at sync iPoint, when
** nAck calls had been acknowledged.
*/
static void checkSeed(const Mode *pMode, const Ref *pRef, int iPoint, int iSeed,
                      int nAck, Tally *pT){
  char zDb[800];
  sqlite3 *db;
  Buf dump = {0, 0, 0}, why = {0, 0, 0}, res = {0, 0, 0}, err = {0, 0, 0};
  int i, iMatch = -1, bBad = 0;

  snprintf(zDb, sizeof(zDb), "%s/s%d/crash.db", g.zDir, iSeed);
  pT->nRun++;
  db = openDbAt(zDb, 0, 0, &err);
  if( db==0 ){
    bBad = 1;
    bufPrintf(&why, "the database is unusable after the crash: %s", bufText(&err));
  }else{
    int rc = runSql(db, "PRAGMA integrity_check", &res, &err);
    if( rc!=SQLITE_OK || strcmp(bufText(&res), "'ok'\n")!=0 ){
      bBad = 1;
      bufPrintf(&why, "integrity_check: rc=%d %s %.300s", rc, bufText(&err), bufText(&res));
    }
  }
  if( !bBad ){
    dumpDb(db, &dump);
    /* Consecutive states can be equal (a denied call changes nothing): look
    ** for the acceptable ones first (nAck, then nAck+1), then for the
    ** latest earlier one (a loss), then for a later one (a phantom). */
    for(i=nAck; i<=nAck+1 && i<=pRef->nOp && iMatch<0; i++){
      if( strcmp(bufText(&dump), bufText(&pRef->aDump[i]))==0 ) iMatch = i;
    }
    for(i=nAck-1; i>=0 && iMatch<0; i--){
      if( strcmp(bufText(&dump), bufText(&pRef->aDump[i]))==0 ) iMatch = i;
    }
    for(i=nAck+2; i<=pRef->nOp && iMatch<0; i++){
      if( strcmp(bufText(&dump), bufText(&pRef->aDump[i]))==0 ) iMatch = i;
    }
    if( iMatch<0 ){
      bBad = 1;
      bufPrintf(&why, "the database matches no state of the workload (acknowledged %d; vs the"
                " state after %d calls: ", nAck, nAck);
      dumpDiff(bufText(&dump), bufText(&pRef->aDump[nAck]), &why);
      bufAppend(&why, ")", 1);
      if( g.bVerbose ) printf("-- recovered state:\n%s", bufText(&dump));
    }
  }
  if( bBad ){
    pT->nCorrupt++;
    if( pMode->bMustHold ) g.nViolation++;
    report(pMode, iPoint, iSeed, "corruption: %s", bufText(&why));
  }else if( iMatch<nAck ){
    pT->nLost += nAck-iMatch;
    pT->nLostRuns++;
    if( nAck-iMatch>pT->nMaxLost ) pT->nMaxLost = nAck-iMatch;
    if( pMode->bMustHold ) g.nViolation++;
    report(pMode, iPoint, iSeed, "%d acknowledged call(s) lost: state after %d calls, %d acknowledged",
           nAck-iMatch, iMatch, nAck);
  }else if( iMatch>nAck+1 ){
    g.nViolation++;
    pT->nOther++;
    report(pMode, iPoint, iSeed, "phantom: state after %d calls, only %d acknowledged", iMatch, nAck);
  }
  /* A state equal to a reference state (each was checked against the
  ** invariants when the reference was built) needs no more checks;
  ** integrity_check ran above. */
  if( g.bVerbose ){
    printf("mode %s point %d seed %d: %d acknowledged, recovered state after %d calls%s\n",
           pMode->zName, iPoint, iSeed, nAck, iMatch, bBad ? " (corrupt)" : "");
  }
  if( db && sqlite3_close(db)!=SQLITE_OK ) fatal("close");
  removeSeedDir(iSeed);
  bufFree(&dump); bufFree(&why); bufFree(&res); bufFree(&err);
}

/*
** One sync point: fork a child that runs the workload and loses power at
** sync iPoint, then check every seed's disk. Returns 0 when the child
** finished the workload before reaching sync iPoint (no crash), 1 otherwise.
*/
static int runPoint(const Mode *pMode, const Ref *pRef, int iPoint,
                    int iSeedFirst, int iSeedLast, Tally *pT){
  int aPipe[2], status = 0, nAck = 0, iSeed;
  pid_t pid;
  Buf acks = {0, 0, 0};
  char aBuf[4096];
  ssize_t n;

  installTemplate(g.zDb, &pRef->image);
  if( pipe(aPipe) ) fatal("pipe: %s", strerror(errno));
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  if( pid<0 ) fatal("fork: %s", strerror(errno));
  if( pid==0 ){
    close(aPipe[0]);
    childRun(pMode, iPoint, iSeedFirst, iSeedLast, aPipe[1]);
  }
  close(aPipe[1]);
  while( (n = read(aPipe[0], aBuf, sizeof(aBuf)))>0 ) bufAppend(&acks, aBuf, (size_t)n);
  close(aPipe[0]);
  if( waitpid(pid, &status, 0)!=pid ) fatal("waitpid: %s", strerror(errno));
  if( !WIFEXITED(status) || (WEXITSTATUS(status)!=0 && WEXITSTATUS(status)!=CRASH_EXIT) ){
    g.nViolation++;
    pT->nOther++;
    printf("crashtest: VIOLATION mode=%s point=%d: child failed (status %d)\n"
           "  replay: build/crashtest --mode %s --point %d --seed %d -v\n",
           pMode->zName, iPoint, status, pMode->zName, iPoint, iSeedFirst);
    for(iSeed=iSeedFirst; iSeed<=iSeedLast; iSeed++) removeSeedDir(iSeed);
    bufFree(&acks);
    return 1;
  }

  /* Acknowledgements: "i result" lines, in order, results as in the reference. */
  {
    const char *z = bufText(&acks);
    while( *z ){
      const char *zEnd = strchr(z, '\n');
      int iOp = atoi(z);
      const char *zRes = strchr(z, ' ');
      if( zEnd==0 ) break;
      if( iOp!=nAck || zRes==0 || zRes>zEnd ) fatal("garbled acknowledgements");
      zRes++;
      if( (size_t)(zEnd-zRes)!=pRef->aRes[iOp].n
       || memcmp(zRes, bufText(&pRef->aRes[iOp]), (size_t)(zEnd-zRes))!=0 ){
        g.nViolation++;
        pT->nOther++;
        printf("crashtest: VIOLATION mode=%s point=%d: call %d returned %.*s, reference %s\n",
               pMode->zName, iPoint, iOp, (int)(zEnd-zRes), zRes, bufText(&pRef->aRes[iOp]));
      }
      nAck++;
      z = zEnd+1;
    }
  }
  bufFree(&acks);
  if( WEXITSTATUS(status)==0 ) return 0;   /* the workload ended before sync iPoint */
  for(iSeed=iSeedFirst; iSeed<=iSeedLast; iSeed++){
    checkSeed(pMode, pRef, iPoint, iSeed, nAck, pT);
  }
  return 1;
}

static void usage(void){
  fprintf(stderr,
    "usage: crashtest [--long] [--mode delete-full|wal-full|wal-normal|lying-disk]\n"
    "                 [--point N] [--seed N] [--seeds N] [--cycles N] [--dir DIR] [-v]\n");
  exit(2);
}

int main(int argc, char **argv){
  int i, iMode;
  int nRunTotal = 0, nCorruptFull = 0, nLostFull = 0;
  time_t tStart = time(0);


  for(i=1; i<argc; i++){
    const char *z = argv[i];
    if( strcmp(z, "--long")==0 ){ g.bLong = 1; g.nSeed = 100; g.nCycle = 3; }
    else if( strcmp(z, "-v")==0 || strcmp(z, "--verbose")==0 ) g.bVerbose = 1;
    else if( strcmp(z, "--mode")==0 && i+1<argc ) g.zMode = argv[++i];
    else if( strcmp(z, "--point")==0 && i+1<argc ) g.iPoint = atoi(argv[++i]);
    else if( strcmp(z, "--seed")==0 && i+1<argc ) g.iSeed = atoi(argv[++i]);
    else if( strcmp(z, "--seeds")==0 && i+1<argc ) g.nSeed = atoi(argv[++i]);
    else if( strcmp(z, "--cycles")==0 && i+1<argc ) g.nCycle = atoi(argv[++i]);
    else if( strcmp(z, "--dir")==0 && i+1<argc ) snprintf(g.zDir, sizeof(g.zDir), "%s", argv[++i]);
    else usage();
  }
  if( g.nSeed<1 || g.nCycle<1 || g.nCycle>1000 ) usage();

  faultStart(crashVfsRegister, g.zDir, sizeof(g.zDir), g.zDb, sizeof(g.zDb), "crash.db");
  printf("crashtest: SQLite %s, %s mode, %d cycle(s) of %d calls, directory %s\n",
         sqlite3_libversion(), g.bLong ? "long" : "bounded", g.nCycle, N_CYCLE_OPS, g.zDir);

  for(iMode=0; iMode<N_MODE; iMode++){
    const Mode *pMode = &aMode[iMode];
    Ref ref;
    Tally t;
    int iPoint;
    if( g.zMode ? strcmp(g.zMode, pMode->zName)!=0 : !pMode->bDefault ) continue;
    memset(&t, 0, sizeof(t));
    gNotes = 0;
    buildRef(pMode, &ref);
    for(iPoint = g.iPoint>0 ? g.iPoint : 1; ; iPoint++){
      int iFirst = g.iSeed>0 ? g.iSeed : 1;
      int iLast = g.iSeed>0 ? g.iSeed : g.nSeed;
      if( runPoint(pMode, &ref, iPoint, iFirst, iLast, &t)==0 ) break;
      t.nPoint++;
      if( g.iPoint>0 ) break;
    }
    printf("crashtest: %s points %d seeds %d runs %d corruptions %d lost-acks %d"
           " (in %d runs, at most %d per run)%s\n",
           pMode->zName, t.nPoint, g.iSeed>0 ? 1 : g.nSeed, t.nRun, t.nCorrupt, t.nLost,
           t.nLostRuns, t.nMaxLost, pMode->bMustHold ? "" : " [reported, not failed]");
    fflush(stdout);
    nRunTotal += t.nRun;
    if( pMode->bMustHold ){
      nCorruptFull += t.nCorrupt;
      nLostFull += t.nLost;
    }
    freeRef(&ref);
  }
  removeDbFiles(g.zDb);
  rmdir(g.zDir);
  printf("crashtest: total runs %d, corruptions %d, lost acks %d (synchronous=FULL), violations %d (%ld s)\n",
         nRunTotal, nCorruptFull, nLostFull, g.nViolation, (long)(time(0)-tStart));
  return g.nViolation ? 1 : 0;
}
