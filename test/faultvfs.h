/*
** faultvfs.h: what the two shim VFSes of the fault drivers (iofault.c's
** fault-injecting VFS and crashtest.c's power-loss VFS) have in common: the
** methods passed straight to the VFS under the shim, a fixed clock, the
** sqlite3_vfs object and its registration. Static functions only.
**
** Included after faultutil.h (CLOCK_JD_MS). The shim keeps the VFS under it
** in pAppData (set by shimRegister()); its own xOpen, xDelete and xAccess
** are the driver's.
*/
#ifndef QUOTA_FAULTVFS_H
#define QUOTA_FAULTVFS_H

/* The VFS under the shim pVfs. */
#define SHIM_REAL(pVfs) ((sqlite3_vfs*)(pVfs)->pAppData)

static int shimFullPathname(sqlite3_vfs *pVfs, const char *zName, int nOut, char *zOut){
  return SHIM_REAL(pVfs)->xFullPathname(SHIM_REAL(pVfs), zName, nOut, zOut);
}
static void *shimDlOpen(sqlite3_vfs *pVfs, const char *zPath){
  return SHIM_REAL(pVfs)->xDlOpen(SHIM_REAL(pVfs), zPath);
}
static void shimDlError(sqlite3_vfs *pVfs, int nByte, char *zErrMsg){
  SHIM_REAL(pVfs)->xDlError(SHIM_REAL(pVfs), nByte, zErrMsg);
}
static void (*shimDlSym(sqlite3_vfs *pVfs, void *p, const char *zSym))(void){
  return SHIM_REAL(pVfs)->xDlSym(SHIM_REAL(pVfs), p, zSym);
}
static void shimDlClose(sqlite3_vfs *pVfs, void *p){
  SHIM_REAL(pVfs)->xDlClose(SHIM_REAL(pVfs), p);
}
static int shimRandomness(sqlite3_vfs *pVfs, int nByte, char *zOut){
  return SHIM_REAL(pVfs)->xRandomness(SHIM_REAL(pVfs), nByte, zOut);
}
static int shimSleep(sqlite3_vfs *pVfs, int nMicro){
  return SHIM_REAL(pVfs)->xSleep(SHIM_REAL(pVfs), nMicro);
}
/* A fixed clock: every run of a point sees the same time. */
static int shimCurrentTime(sqlite3_vfs *pVfs, double *pOut){
  (void)pVfs;
  *pOut = (double)CLOCK_JD_MS/86400000.0;
  return SQLITE_OK;
}
static int shimGetLastError(sqlite3_vfs *pVfs, int n, char *z){
  return SHIM_REAL(pVfs)->xGetLastError(SHIM_REAL(pVfs), n, z);
}
static int shimCurrentTimeInt64(sqlite3_vfs *pVfs, sqlite3_int64 *pOut){
  (void)pVfs;
  *pOut = CLOCK_JD_MS;
  return SQLITE_OK;
}

/* The initializer of a shim's sqlite3_vfs (version 2) named ZNAME. */
#define SHIM_VFS(ZNAME, XOPEN, XDELETE, XACCESS) {                          \
  2,                              /* iVersion */                            \
  0,                              /* szOsFile (set at registration) */      \
  0,                              /* mxPathname (set at registration) */    \
  0,                              /* pNext */                               \
  ZNAME,                          /* zName */                               \
  0,                              /* pAppData: the VFS under the shim */    \
  XOPEN, XDELETE, XACCESS,        /* xOpen, xDelete, xAccess */             \
  shimFullPathname, shimDlOpen, shimDlError, shimDlSym, shimDlClose,        \
  shimRandomness, shimSleep, shimCurrentTime, shimGetLastError,             \
  shimCurrentTimeInt64,                                                     \
  0, 0, 0                         /* xSetSystemCall ... xNextSystemCall */  \
}

/*
** Register pShim over the current default VFS, whose files are szFile bytes
** of the shim's own followed by the real VFS's; bDefault makes the shim the
** default. Returns an SQLite result code.
*/
static int shimRegister(sqlite3_vfs *pShim, int szFile, int bDefault){
  sqlite3_vfs *pReal = sqlite3_vfs_find(0);
  if( pReal==0 ) return SQLITE_ERROR;
  pShim->pAppData = pReal;
  pShim->szOsFile = szFile + pReal->szOsFile;
  pShim->mxPathname = pReal->mxPathname;
  return sqlite3_vfs_register(pShim, bDefault);
}

#endif /* QUOTA_FAULTVFS_H */
