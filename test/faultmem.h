/*
** faultmem.h: the failing allocator of the out-of-memory drivers (oomtest.c,
** covfault.c). memInstall() puts it in front of SQLite's own allocator
** (SQLITE_CONFIG_GETMALLOC, then SQLITE_CONFIG_MALLOC: before
** sqlite3_initialize); memArm(N, bPersist) then fails allocation N of what
** follows (and, persistent, every later one) until memDisarm(). While
** gMem.nPause > 0 the driver is allocating for itself: not counted.
** Static functions only: each driver is one translation unit.
*/
#ifndef QUOTA_FAULTMEM_H
#define QUOTA_FAULTMEM_H
#include <sqlite3.h>

static sqlite3_mem_methods gOrig;     /* SQLite's allocator */
static struct {
  int bArmed;                     /* Count (and maybe fail) allocations */
  int nPause;                     /* >0: the driver itself is allocating */
  int bPersist;                   /* Fail every allocation from iFail on */
  sqlite3_int64 iFail;            /* Allocation number to fail */
  sqlite3_int64 nCount;           /* Allocations seen while armed */
  sqlite3_int64 nFailed;          /* Allocations failed */
  sqlite3_int64 nLive;            /* Outstanding allocations */
} gMem;

static int memShouldFail(void){
  if( !gMem.bArmed || gMem.nPause>0 ) return 0;
  gMem.nCount++;
  if( gMem.nCount==gMem.iFail || (gMem.bPersist && gMem.nCount>gMem.iFail) ){
    gMem.nFailed++;
    return 1;
  }
  return 0;
}
static void *memMalloc(int n){
  void *p;
  if( memShouldFail() ) return 0;
  p = gOrig.xMalloc(n);
  if( p ) gMem.nLive++;
  return p;
}
static void memFree(void *p){
  if( p ) gMem.nLive--;
  gOrig.xFree(p);
}
static void *memRealloc(void *p, int n){
  if( memShouldFail() ) return 0;
  return gOrig.xRealloc(p, n);
}
static int memSize(void *p){ return gOrig.xSize(p); }
static int memRoundup(int n){ return gOrig.xRoundup(n); }
static int memInit(void *pApp){ (void)pApp; return gOrig.xInit(gOrig.pAppData); }
static void memShutdown(void *pApp){ (void)pApp; gOrig.xShutdown(gOrig.pAppData); }

static void memArm(sqlite3_int64 iFail, int bPersist){
  gMem.iFail = iFail;
  gMem.bPersist = bPersist;
  gMem.nCount = 0;
  gMem.nFailed = 0;
  gMem.bArmed = 1;
}
static void memDisarm(void){ gMem.bArmed = 0; }

/* SQLITE_OK, or the code of the sqlite3_config() call that failed. */
static int memInstall(void){
  sqlite3_mem_methods m;
  int rc = sqlite3_config(SQLITE_CONFIG_GETMALLOC, &gOrig);
  if( rc!=SQLITE_OK ) return rc;
  m = gOrig;
  m.xMalloc = memMalloc;
  m.xFree = memFree;
  m.xRealloc = memRealloc;
  m.xSize = memSize;
  m.xRoundup = memRoundup;
  m.xInit = memInit;
  m.xShutdown = memShutdown;
  m.pAppData = 0;
  rc = sqlite3_config(SQLITE_CONFIG_MALLOC, &m);
  if( rc==SQLITE_OK ) rc = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 1);
  return rc;
}

#endif /* QUOTA_FAULTMEM_H */
