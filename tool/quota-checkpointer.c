/*
** quota-checkpointer.c: keeps WAL checkpoints off the request path.
**
** USAGE
**     quota-checkpointer DB [--every MS] [--restart-frames N]
**                           [--restart-wait W] [--seconds S] [--quiet]
**
** In WAL mode SQLite checkpoints inside a commit: the call whose commit
** takes the log past wal_autocheckpoint frames (1000 by default) copies the
** log into the database and fsyncs it, which on this project's machines
** took milliseconds, every few hundred calls: that is the p99.9 of
** quota_consume (doc/peers.md, "Tail latency"). An application that runs
** this program beside it and sets PRAGMA wal_autocheckpoint=0 on its own
** connections moves that work here, to a process no request waits for.
**
** Every MS milliseconds (default 50) it runs a PASSIVE checkpoint, which
** never waits for a lock and never blocks a writer: it copies what readers
** allow. A writer starts the log again from its beginning when it finds
** it copied whole and no reader in it; under a steady stream of commits,
** or with readers always in it, that never happens and the log grows. So
** when the log holds N frames or more (default 4000) the program runs a
** RESTART checkpoint: it takes the write lock, copies what the PASSIVE
** checkpoints left and waits for the readers to leave the log, so that the
** next commit writes from its start. Writers wait for it meanwhile: rarely
** (every N frames) and briefly (most of the log is copied already). It
** waits for the lock and the readers with short sleeps, at most W ms
** (default 100); when that is not enough it tries again at the next tick.
**
** It stops after S seconds (default: never), or on SIGTERM or SIGINT, after
** one last PASSIVE checkpoint, with status 0. Errors (a file that is not a
** database, one not in WAL mode, an I/O error) end it with status 1 and a
** one-line message on stderr; bad arguments with status 2. Unless --quiet,
** it prints what it did on stderr when it stops.
*/
#include <sqlite3.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Set by the signal handler: the only state a handler may touch. */
static volatile sig_atomic_t stopRequested = 0;

static void onSignal(int sig){
  (void)sig;
  stopRequested = 1;
}

typedef struct Checkpointer Checkpointer;
struct Checkpointer {
  sqlite3 *db;
  const char *zDb;            /* the database's path, for messages */
  sqlite3_stmt *pPassive;     /* PRAGMA main.wal_checkpoint(PASSIVE) */
  sqlite3_stmt *pRestart;     /* PRAGMA main.wal_checkpoint(RESTART) */
  long nTicks;                /* PASSIVE checkpoints run */
  long nRestarts;             /* RESTART checkpoints that restarted the log */
  long nRestartBusy;          /* RESTART checkpoints that found a lock taken */
  long nMaxLog;               /* the most frames the log was seen to hold */
};

static void usage(void){
  fprintf(stderr,
    "usage: quota-checkpointer DB [--every MS] [--restart-frames N] [--restart-wait W]\n"
    "                          [--seconds S] [--quiet]\n"
    "  --every MS            a PASSIVE checkpoint every MS milliseconds (default 50)\n"
    "  --restart-frames N    restart the log once it holds N frames (default 4000)\n"
    "  --restart-wait W      a restart waits at most W ms for writers and readers (default 100)\n"
    "  --seconds S           stop after S seconds (default: on SIGTERM or SIGINT)\n"
    "  --quiet               print nothing when it stops\n");
  exit(2);
}

static void fail(Checkpointer *p, const char *zWhat){
  fprintf(stderr, "quota-checkpointer: %s: %s: %s\n", p->zDb, zWhat, sqlite3_errmsg(p->db));
  sqlite3_finalize(p->pPassive);
  sqlite3_finalize(p->pRestart);
  sqlite3_close(p->db);
  exit(1);
}

/* A whole positive number of at most `max`, or -1. */
static long parseCount(const char *z, long max){
  char *zEnd = 0;
  long v;
  errno = 0;
  v = strtol(z, &zEnd, 10);
  if( errno || zEnd==z || *zEnd || v<=0 || v>max ) return -1;
  return v;
}

/* Run one checkpoint statement: SQLITE_OK with its three numbers (busy,
** frames in the log, frames checkpointed), or the error. */
static int runCheckpoint(sqlite3_stmt *pStmt, int aOut[3]){
  int rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    int i;
    for(i=0; i<3; i++) aOut[i] = sqlite3_column_int(pStmt, i);
    rc = sqlite3_step(pStmt);
  }
  if( rc==SQLITE_DONE ) rc = SQLITE_OK;
  if( sqlite3_reset(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = SQLITE_ERROR;
  return rc;
}

/* The busy handler of the RESTART checkpoints (a PASSIVE one never calls
** it): a writer holds the lock for tens of microseconds, so yield and
** sleep 50 us at a time rather than SQLite's whole milliseconds, up to the
** wait allowed. */
typedef struct RestartWait RestartWait;
struct RestartWait {
  double tLimit;              /* --restart-wait, in seconds */
  double tStart;              /* when this wait began */
};
static double nowSeconds(void);
static int restartBusy(void *pArg, int nPrior){
  RestartWait *w = (RestartWait*)pArg;
  double t = nowSeconds();
  struct timespec ts;
  if( nPrior==0 ) w->tStart = t;
  if( t - w->tStart >= w->tLimit || stopRequested ) return 0;
  ts.tv_sec = 0;
  ts.tv_nsec = nPrior<4 ? 0 : 50000L;
  nanosleep(&ts, 0);
  return 1;
}

static void sleepMs(long ms){
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  while( nanosleep(&ts, &ts)!=0 && errno==EINTR && !stopRequested ){}
}

static double nowSeconds(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv){
  Checkpointer c;
  const char *zDb = 0;
  long everyMs = 50, restartFrames = 4000, restartWaitMs = 100, seconds = 0;
  int bQuiet = 0, i, rc, aRes[3], restartedLog = -1;
  double tEnd = 0;
  struct sigaction sa;
  RestartWait wait;

  memset(&c, 0, sizeof(c));
  memset(aRes, 0, sizeof(aRes));
  for(i=1; i<argc; i++){
    const char *z = argv[i];
    if( strcmp(z, "--quiet")==0 ){ bQuiet = 1; continue; }
    if( z[0]=='-' && z[1]=='-' ){
      long *pOut, v;
      if( i+1>=argc ) usage();
      if( strcmp(z, "--every")==0 ) pOut = &everyMs;
      else if( strcmp(z, "--restart-frames")==0 ) pOut = &restartFrames;
      else if( strcmp(z, "--seconds")==0 ) pOut = &seconds;
      else if( strcmp(z, "--restart-wait")==0 ) pOut = &restartWaitMs;
      else usage();
      v = parseCount(argv[++i], 100000000L);
      if( v<0 ){
        fprintf(stderr, "quota-checkpointer: %s must be a positive whole number, not '%s'\n",
                z, argv[i]);
        return 2;
      }
      *pOut = v;
      continue;
    }
    if( zDb ) usage();
    zDb = z;
  }
  if( !zDb ) usage();
  c.zDb = zDb;

  /* The database must exist: a checkpointer that made an empty file
  ** would hide a wrong path. */
  rc = sqlite3_open_v2(zDb, &c.db, SQLITE_OPEN_READWRITE, 0);
  if( rc!=SQLITE_OK ){
    if( c.db==0 ){ fprintf(stderr, "quota-checkpointer: out of memory\n"); return 1; }
    fail(&c, "cannot open the database");
  }
  /* Reading the journal mode reads the database first: a checkpoint on a
  ** connection that has not read it does nothing on SQLite 3.40. */
  {
    sqlite3_stmt *pMode = 0;
    int bWal = 0;
    rc = sqlite3_prepare_v2(c.db, "PRAGMA main.journal_mode", -1, &pMode, 0);
    if( rc==SQLITE_OK && sqlite3_step(pMode)==SQLITE_ROW ){
      const unsigned char *zMode = sqlite3_column_text(pMode, 0);
      bWal = zMode && strcmp((const char*)zMode, "wal")==0;
    }
    if( sqlite3_finalize(pMode)!=SQLITE_OK ) rc = SQLITE_ERROR;
    if( rc!=SQLITE_OK ) fail(&c, "cannot read the database");
    if( !bWal ){
      fprintf(stderr, "quota-checkpointer: %s is not in WAL mode: there is nothing to "
              "checkpoint (PRAGMA journal_mode=WAL makes it so)\n", zDb);
      sqlite3_close(c.db);
      return 1;
    }
  }
  if( sqlite3_prepare_v2(c.db, "PRAGMA main.wal_checkpoint(PASSIVE)", -1, &c.pPassive, 0)
      || sqlite3_prepare_v2(c.db, "PRAGMA main.wal_checkpoint(RESTART)", -1, &c.pRestart, 0) ){
    fail(&c, "cannot prepare a checkpoint");
  }

  wait.tLimit = restartWaitMs / 1000.0;
  wait.tStart = 0;
  if( sqlite3_busy_handler(c.db, restartBusy, &wait)!=SQLITE_OK ){
    fail(&c, "cannot set a busy handler");
  }

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, 0);
  sigaction(SIGINT, &sa, 0);
  if( seconds>0 ) tEnd = nowSeconds() + (double)seconds;

  for(;;){
    rc = runCheckpoint(c.pPassive, aRes);
    if( rc!=SQLITE_OK && rc!=SQLITE_BUSY ) fail(&c, "checkpoint failed");
    c.nTicks++;
    if( aRes[1]>c.nMaxLog ) c.nMaxLog = aRes[1];
    /* A long log: restart it if no one is in the way. A restarted log
    ** reads as long as before until the next writer starts it again:
    ** one restart per length seen. */
    if( rc==SQLITE_OK && aRes[1]>=restartFrames && aRes[1]!=restartedLog ){
      int aRst[3];
      rc = runCheckpoint(c.pRestart, aRst);
      if( rc==SQLITE_OK && aRst[0]==0 ){
        c.nRestarts++;
        restartedLog = aRes[1];
      }else if( rc==SQLITE_OK || rc==SQLITE_BUSY ){
        c.nRestartBusy++;
      }else{
        fail(&c, "checkpoint failed");
      }
    }
    if( stopRequested || (tEnd>0 && nowSeconds()>=tEnd) ) break;
    sleepMs(everyMs);
    if( stopRequested ) break;
  }

  /* One last copy, so that a stopped checkpointer leaves little behind. */
  rc = runCheckpoint(c.pPassive, aRes);
  if( rc!=SQLITE_OK && rc!=SQLITE_BUSY ) fail(&c, "checkpoint failed");
  if( !bQuiet ){
    fprintf(stderr, "quota-checkpointer: %ld checkpoints, %ld log restarts (%ld found a "
            "lock taken), the log held at most %ld frames\n",
            c.nTicks + 1, c.nRestarts, c.nRestartBusy, c.nMaxLog);
  }
  sqlite3_finalize(c.pPassive);
  sqlite3_finalize(c.pRestart);
  if( sqlite3_close(c.db)!=SQLITE_OK ){
    fprintf(stderr, "quota-checkpointer: cannot close the database\n");
    return 1;
  }
  return 0;
}
