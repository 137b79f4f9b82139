/*
** peers.c: sqlite-quota next to Redis and PostgreSQL doing the same quota
** work, and a diagnosis of sqlite-quota's tail latency and multi-process
** scaling.
**
** USAGE (from the repository root; `make bench-peers` starts the servers,
** builds this program as build/peers/peers and runs it; see bench/peers.sh)
**
**     build/peers/peers --redis 127.0.0.1:16379 --redis-pinned 127.0.0.1:16380 \
**                 --pg "host=127.0.0.1 port=15432 user=peers dbname=postgres"
**     build/peers/peers --quick ...          shorter: 5 rounds of 0.2 s per case
**     build/peers/peers --diag [--redis ...] sqlite-quota's tail and scaling (below)
**
**   --rounds N        interleaved rounds (default 5)
**   --seconds S       time box of one case in one round (default 1.5; quick 0.2)
**   --clients LIST    client processes (default 1,4,16; diag 1,2,4,16)
**   --dir DIR         where the SQLite database goes (build/peers/sqlite)
**   --redis H:P       a Redis started for this run (its keys peers:* are
**                     deleted and rewritten; appendfsync is changed with
**                     CONFIG SET for each case)
**   --redis-pinned H:P  a second Redis running on CPU 0 only (taskset -c 0):
**                     the one-vCPU variant; its clients run on CPU 0 too
**   --pg CONNINFO     a PostgreSQL for this run (tables q, ledger, holds are
**                     dropped and created)
**   --skip-redis WHY, --skip-pinned WHY, --skip-pg WHY
**                     why a side is not measured (bench/peers.sh passes the
**                     reason; the program prints "bench-peers: SKIPPED: ...")
**   --only LIST       sides to run: sqlite,redis,pinned,pg
**   --diag            the diagnosis instead of the comparison (below)
**   --variants LIST   diag variants (default all): default traced bgckpt
**                     shortbusy both mmap
**   --ckpt-ms N       diag: the checkpointer's period (default 50)
**   --restart-frames N  diag: the checkpointer runs a RESTART checkpoint
**                     when the log holds N frames or more (default 4000)
**   --flush-ms N      diag: the log writeback period (default 1)
**   --slow-us N       diag: a call over N us is "slow" and attributed to its
**                     cause (default 1000; 100 looks into a p99.9 of a few
**                     hundred us)
**   --checkpointer PATH  diag variant tool: the program to run (default
**                     build/quota-checkpointer)
**   --full            diag: synchronous=FULL (and Redis AOF always) instead
**
** The report (markdown) goes to stdout, progress to stderr.
**
** WHAT IS COMPARED
**
** Every side holds 1,000 keys, k0000000 to k0000999, each with a cap of
** 10^12 (never reached), and every call picks one at random. One op is:
**
**   consume   check the cap, add 1, write one audit row.
**             sqlite-quota: SELECT quota_consume(?1, 1) (keys with a 'month'
**             period; the audit row is the quota_ledger row).
**             Redis: one EVALSHA of a Lua script: HMGET cap/used/reserved,
**             compare, HINCRBY used, XADD to the stream peers:ledger.
**             PostgreSQL: one prepared statement, WITH u AS (UPDATE q SET
**             used = used + $2 WHERE key = $1 AND used + reserved + $2 <= lim
**             RETURNING key) INSERT INTO ledger .. SELECT .. FROM u RETURNING
**             id; and, as a second row, the same as BEGIN; UPDATE; INSERT;
**             COMMIT (four round trips).
**   pair      reserve 4, then settle the hold for 3 (one op, two calls).
**             sqlite-quota: quota_reserve(?1, 4), quota_settle(?1, 3).
**             Redis: two EVALSHA: reserve (HMGET, compare, HINCRBY reserved,
**             INCR a hold counter, HSET the hold); settle (HMGET the hold,
**             DEL it, HINCRBY reserved and used, XADD).
**             PostgreSQL: two prepared CTEs: guarded UPDATE of reserved +
**             INSERT INTO holds; DELETE the hold + UPDATE q + INSERT INTO
**             ledger.
**
** Each at two durability levels: sqlite-quota WAL with synchronous=NORMAL
** or FULL (busy_timeout 5000); Redis appendonly with appendfsync everysec or
** always (save ''); PostgreSQL synchronous_commit off or on (fsync on).
**
** Each case runs with 1, 4 and 16 client processes (fork()), each with its
** own connection, opened before the clock starts. Each process times every
** op (CLOCK_MONOTONIC) into a histogram of 1/128-octave buckets (under 0.4%
** error; the maximum is kept exactly); the percentiles pool every op of
** every process and round. ops/s = granted ops of all processes / the
** longest process's time. A round runs every case once, one after another
** (each round starts at a different case), so a case and the peers it is
** compared with run seconds apart; the tables give the median over rounds,
** and every comparison is the median of per-round ratios.
**
** At the end each side's stored totals are compared with the ops it
** granted (no charge lost or doubled).
**
** WHAT MAKES IT UNFAIR (printed with the tables)
**
** The peers' scripts do less than sqlite-quota: no calendar periods, no
** hold expiry or sweeping, no idempotency (request ids), no parent chains,
** no checks of their input. Redis and PostgreSQL pay a loopback round trip
** per call (waking a process on the other vCPU); sqlite-quota runs in the
** caller's process. WAL with synchronous=NORMAL fsyncs only at checkpoints:
** FULL, always and synchronous_commit=on are the group whose acknowledged
** calls survive a power loss.
**
** DIAGNOSIS (--diag)
**
** quota_consume on WAL with synchronous=NORMAL, 1,000 keys at random, with
** 1, 2, 4 and 16 processes, under variants that change one thing at a time:
**
**   default    busy_timeout 5000, SQLite's automatic checkpoint (every 1000
**              WAL frames, run by the commit that crosses it).
**   traced     the same policy, instrumented: a wal_hook that does what the
**              automatic checkpoint does (a PASSIVE checkpoint once the log
**              holds 1000 frames) and times it, and a busy handler that
**              sleeps as SQLite's default one does with HAVE_USLEEP (1, 2, 5,
**              10, 15, 20, 25, 25, 25, 50, 50, then 100 ms, up to 5000 ms in
**              all) and times its sleeps. A call over 1 ms is attributed to
**              a checkpoint or a busy sleep it contained, or to neither.
**   bgckpt     PRAGMA wal_autocheckpoint=0 in the clients, and a helper
**              process that runs a PASSIVE checkpoint every --ckpt-ms ms,
**              and a RESTART checkpoint when the log holds --restart-frames
**              frames or more (under a steady stream of commits a PASSIVE
**              checkpoint never catches up, so without it the log is never
**              restarted and grows); the default busy sleeps (instrumented).
**   shortbusy  the automatic checkpoint (instrumented) and a busy handler
**              that yields 4 times, then sleeps 20, 50, 100, 200, 500 us,
**              then 1 ms at a time, up to 5000 ms in all.
**   both       bgckpt and shortbusy together.
**   flush      the automatic checkpoint, and a helper process that calls
**              sync_file_range(SYNC_FILE_RANGE_WRITE) on the -wal file every
**              --flush-ms ms, so that the log's pages are on their way to
**              the disk before a checkpoint fsyncs them.
**   flushshort flush and shortbusy together.
**   all        bgckpt, flush and shortbusy together: one helper process
**              starts the log's writeback every --flush-ms ms and
**              checkpoints every --ckpt-ms ms.
**   tool       as bgckpt, with the program this project ships,
**              build/quota-checkpointer --every --ckpt-ms --restart-frames
**              --restart-frames, in place of the helper process.
**   toolquota  as tool, with SELECT quota_busy_timeout(5000) (the
**              extension's short-step busy handler) in place of
**              busy_timeout 5000; its waits are not timed (the busy
**              columns stay empty).
**   assist     the automatic checkpoint stays on (so the log restarts as
**              usual, without a RESTART checkpoint), and the helper process
**              runs a PASSIVE checkpoint every 5 ms (never RESTART) and the
**              log writeback, so that the checkpoint a call runs finds the
**              log mostly copied and synced; short busy sleeps.
**
** Instrumented variants also read getrusage(RUSAGE_THREAD) after every call
** (one system call): a call over 1 ms that neither checkpointed nor slept in
** the busy handler is "blocked" if it made a voluntary context switch (I/O,
** a lock), else "preempted" if it made an involuntary one. The largest -wal
** file and the page cache misses per call (SQLITE_DBSTATUS_CACHE_MISS) are
** reported too.
**
** Given --redis, Redis+Lua consume (AOF everysec) runs with the same client
** counts in the same rounds, for the ratio the project's target names.
**
** Every SQLite, hiredis and libpq call is checked. An unexpected failure in
** the setup stops the run; in the timed loops failed calls are counted and
** reported with the last message, since counting them is the point.
*/
#define _GNU_SOURCE 1

#include <sqlite3.h>
#include "quota.h"

#ifdef PEERS_REDIS
# include <hiredis/hiredis.h>
#endif
#ifdef PEERS_PG
# include <libpq-fe.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ROUND   50
#define MAX_CLIENT  16            /* most client processes of one case */
#define MAX_NCLI    6             /* most entries of --clients */
#define NKEY        1000
#define CAP         "1000000000000"   /* 10^12 */
#define NBUCKET     4480          /* histogram buckets, see hist_index() */
#define SLOW_US     1000          /* a "slow" call: over 1 ms (--slow-us) */
#define VERY_SLOW_NS 20000000LL   /* over 20 ms */

/* Sides */
#define SYS_SQLITE  0
#define SYS_REDIS   1
#define SYS_PINNED  2             /* Redis, server and clients on CPU 0 */
#define SYS_PG      3
#define NSYS        4

/* Ops */
#define OP_CONSUME  0
#define OP_TXN      1             /* PostgreSQL BEGIN/UPDATE/INSERT/COMMIT */
#define OP_PAIR     2

/* Busy handlers of the diagnosis */
#define BUSY_TIMEOUT 0            /* sqlite3_busy_timeout(db, 5000) */
#define BUSY_MIMIC   1            /* the default's sleeps, instrumented */
#define BUSY_SHORT   2            /* yields and short sleeps */
#define BUSY_QUOTA   3            /* SELECT quota_busy_timeout(5000): the
                                  ** extension's short steps (not timed) */

/* ------------------------------------------------------------------------
** Options and global state
*/
static struct Options {
  int nRound;                 /* interleaved rounds */
  double rSec;                /* seconds per case per round */
  int bQuick;                 /* --quick */
  int bDiag;                  /* --diag */
  int bFull;                  /* --full: the diagnosis with synchronous=FULL */
  int aCli[MAX_NCLI];         /* client counts */
  int nCli;
  char zDir[512];             /* SQLite database directory */
  char zRedis[128];           /* host:port or "" */
  char zPinned[128];          /* host:port or "" */
  char zPg[512];              /* conninfo or "" */
  char zSkipRedis[256];       /* why Redis is not measured */
  char zSkipPg[256];          /* why PostgreSQL is not measured */
  char zSkipPinned[256];      /* why the one-vCPU Redis is not measured */
  int abOnly[NSYS];           /* sides to run */
  char zVariants[256];        /* diag variants, comma-separated, "" = all */
  const char *zCheckpointer;  /* diag variant tool: the program it runs */
  int msCkpt;                 /* diag checkpointer period */
  int nRestartFrames;         /* diag: the checkpointer RESTARTs at this many frames */
  int msFlush;                /* diag: the log writeback period */
  int usSlow;                 /* diag: a slow call takes more than this */
  char zCmd[1024];            /* the command line */
} g;

static int g_bChild = 0;      /* true in a forked process */

/* "1 ms" or "100 us": what a slow call takes more than (--slow-us). */
static const char *slowLabel(void){
  static char z[32];
  if( g.usSlow%1000==0 ) snprintf(z, sizeof(z), "%d ms", g.usSlow/1000);
  else snprintf(z, sizeof(z), "%d us", g.usSlow);
  return z;
}

/* Report text, printed at the end so progress lines do not interleave. */
static char *g_zOut = 0;
static size_t g_nOut = 0, g_nOutAlloc = 0;

static void out(const char *zFmt, ...){
  va_list ap;
  int n;
  va_start(ap, zFmt);
  n = vsnprintf(0, 0, zFmt, ap);
  va_end(ap);
  if( n<0 ) return;
  if( g_nOut + (size_t)n + 1 > g_nOutAlloc ){
    size_t nNew = (g_nOutAlloc + (size_t)n + 1) * 2;
    char *zNew = realloc(g_zOut, nNew);
    if( zNew==0 ){ fprintf(stderr, "peers: out of memory\n"); exit(1); }
    g_zOut = zNew;
    g_nOutAlloc = nNew;
  }
  va_start(ap, zFmt);
  vsnprintf(g_zOut + g_nOut, g_nOutAlloc - g_nOut, zFmt, ap);
  va_end(ap);
  g_nOut += (size_t)n;
}

static void progress(const char *zFmt, ...){
  va_list ap;
  va_start(ap, zFmt);
  vfprintf(stderr, zFmt, ap);
  va_end(ap);
  fflush(stderr);
}

static void die(const char *zFmt, ...){
  va_list ap;
  fprintf(stderr, "peers: error: ");
  va_start(ap, zFmt);
  vfprintf(stderr, zFmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  fflush(stderr);
  if( g_bChild ) _exit(2);
  exit(1);
}

static long long now_ns(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t rnd(uint64_t *pS){
  uint64_t x = *pS;
  x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
  *pS = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* Key number i as text: "k" and 7 digits. */
static void key_name(char *z, int i){
  int j;
  z[0] = 'k';
  for(j=7; j>=1; j--){ z[j] = (char)('0' + i%10); i /= 10; }
  z[8] = 0;
}

/* ------------------------------------------------------------------------
** Latency histogram: 1/128-octave buckets over nanoseconds. Values under
** 256 ns have a bucket each; above, bucket 256 + (e-8)*128 + the next 7
** bits after the leading one (e = index of the leading bit).
*/
static int hist_index(long long v){
  int e;
  if( v<0 ) v = 0;
  if( v<256 ) return (int)v;
  e = 63 - __builtin_clzll((unsigned long long)v);
  if( e>40 ) return NBUCKET-1;
  return 256 + (e-8)*128 + (int)((v >> (e-7)) & 127);
}

/* The middle of bucket i, in nanoseconds. */
static double hist_value(int i){
  int e, sub;
  double lo, w;
  if( i<256 ) return (double)i;
  e = (i-256)/128 + 8;
  sub = (i-256)%128;
  lo = (double)(128 + sub) * (double)(1LL << (e-7));
  w = (double)(1LL << (e-7));
  return lo + w/2;
}

typedef struct Hist Hist;
struct Hist {
  unsigned long long a[NBUCKET];
  unsigned long long n;       /* values */
  long long mx;               /* largest value, exact */
};

/* The q-quantile (0..1) in microseconds. */
static double hist_quantile(const Hist *p, double q){
  unsigned long long rank, c = 0;
  int i;
  if( p->n==0 ) return 0.0;
  rank = (unsigned long long)(q * (double)p->n);
  if( (double)rank < q * (double)p->n ) rank++;
  if( rank<1 ) rank = 1;
  for(i=0; i<NBUCKET; i++){
    c += p->a[i];
    if( c>=rank ){
      double v = hist_value(i);
      if( v>(double)p->mx ) v = (double)p->mx;
      return v / 1000.0;
    }
  }
  return (double)p->mx / 1000.0;
}

/* ------------------------------------------------------------------------
** Shared memory: one slot per client process (and one for the diagnosis's
** checkpointer), written by the child, read by the parent after waitpid().
*/
typedef struct Slot Slot;
struct Slot {
  long long nOk;              /* granted ops */
  long long nDenied;          /* denied ops (the cap is never reached: 0) */
  long long nErr;             /* failed ops */
  long long nUnits;           /* units charged by granted ops */
  long long nsRun;            /* time the timed loop ran */
  long long mxNs;             /* slowest op */
  char zErr[240];             /* last failure */
  /* diagnosis */
  long long nCkpt;            /* checkpoints run inside calls (or by the checkpointer) */
  long long nsCkpt;           /* their time */
  long long mxCkpt;           /* the longest */
  long long nFrameCkpt;       /* frames in the log at those checkpoints */
  long long nBusy;            /* busy-handler invocations */
  long long nsBusy;           /* time spent in them */
  long long mxRetry;          /* most busy-handler invocations in one wait */
  long long mxBusyNs;         /* longest time one wait spent in the busy handler */
  long long nSlow;            /* ops over --slow-us */
  long long nSlowCkpt;        /* ... that ran a checkpoint */
  long long nSlowBusy;        /* ... that slept in the busy handler (and no checkpoint) */
  long long nSlowBlock;       /* ... neither, but blocked in the kernel (a voluntary
                              ** context switch: I/O, a lock) */
  long long nSlowPreempt;     /* ... neither, but preempted (involuntary switch only) */
  long long nWalMax;          /* largest -wal file seen (client 0, every 256 ops) */
  long long nRestart;         /* checkpointer: RESTART checkpoints */
  long long nRestartBusy;     /* ... that gave up (SQLITE_BUSY) */
  long long nsRestart;        /* their time */
  long long mxRestart;        /* the longest */
  long long nMiss;            /* page cache misses (SQLITE_DBSTATUS_CACHE_MISS) */
  long long nFlush;           /* helper: sync_file_range() calls on the log */
  long long nsFlush;          /* their time */
  long long mxFlush;          /* the longest */
  long long nVerySlow;        /* ops over 20 ms */
  volatile int bStop;         /* the parent tells the checkpointer to stop */
  unsigned int aHist[NBUCKET];
};

static Slot *g_aSlot = 0;     /* MAX_CLIENT+1 slots */

/* ------------------------------------------------------------------------
** Cases
*/
typedef struct Case Case;
struct Case {
  int eSys, eOp, bDurable;    /* what */
  int iVar;                   /* diag variant (-1: not a diag case) */
  char zLabel[160];           /* the row's text */
  double aOps[MAX_NCLI][MAX_ROUND];  /* ops/s of each round, per client count */
  Hist *apHist[MAX_NCLI];     /* pooled latencies, per client count */
  long long aErr[MAX_NCLI];   /* failed ops */
  long long aDenied[MAX_NCLI];
  char azErr[MAX_NCLI][240];  /* last failure message */
  long long nOk, nUnits;      /* granted ops and units over the run */
  long long nOkOp[3];         /* granted ops per op kind (for the totals check) */
  /* diagnosis counters, summed over rounds and processes */
  long long aCkpt[MAX_NCLI], aNsCkpt[MAX_NCLI], aMxCkpt[MAX_NCLI], aFrameCkpt[MAX_NCLI];
  long long aBgCkpt[MAX_NCLI], aNsBg[MAX_NCLI], aMxBg[MAX_NCLI];
  long long aBusy[MAX_NCLI], aNsBusy[MAX_NCLI], aMxRetry[MAX_NCLI], aMxBusyNs[MAX_NCLI];
  long long aSlow[MAX_NCLI], aSlowCkpt[MAX_NCLI], aSlowBusy[MAX_NCLI], aVerySlow[MAX_NCLI];
  long long aSlowBlock[MAX_NCLI], aSlowPreempt[MAX_NCLI];
  long long aWalMax[MAX_NCLI];  /* largest -wal file seen (bytes) */
  long long aRestart[MAX_NCLI], aNsRestart[MAX_NCLI], aMxRestart[MAX_NCLI], aRestartBusy[MAX_NCLI];
  long long aMiss[MAX_NCLI];    /* page cache misses */
  long long aFlush[MAX_NCLI], aNsFlush[MAX_NCLI], aMxFlush[MAX_NCLI];
  long long aOps1[MAX_NCLI];  /* ops timed */
};

static Case g_aCase[64];
static int g_nCase = 0;

/* Diagnosis variants */
typedef struct Variant Variant;
struct Variant {
  const char *zId;
  const char *zLabel;
  int bHook;                  /* our wal_hook (timed checkpoint at 1000 frames) */
  int nAutoCkpt;              /* checkpoint at this many frames in calls; 0 = never */
  int eBusy;                  /* BUSY_* */
  int bBgCkpt;                /* the helper process checkpoints */
  int bFlush;                 /* the helper process starts writeback of the log */
  int bRestart;               /* the helper's RESTART checkpoints (bBgCkpt) */
  int msCkpt;                 /* the helper's checkpoint period; 0 = --ckpt-ms */
  int bTool;                  /* build/quota-checkpointer checkpoints instead */
};
static const Variant g_aVar[] = {
  { "default",   "default: busy_timeout 5000, automatic checkpoint", 0, 1000, BUSY_TIMEOUT, 0, 0, 0, 0, 0 },
  { "traced",    "traced: the default policy, instrumented", 1, 1000, BUSY_MIMIC, 0, 0, 0, 0, 0 },
  { "bgckpt",    "bgckpt: wal_autocheckpoint=0 + checkpointer process", 1, 0, BUSY_MIMIC, 1, 0, 1, 0, 0 },
  { "shortbusy", "shortbusy: short busy sleeps, automatic checkpoint", 1, 1000, BUSY_SHORT, 0, 0, 0, 0, 0 },
  { "both",      "both: checkpointer process + short busy sleeps", 1, 0, BUSY_SHORT, 1, 0, 1, 0, 0 },
  { "flush",     "flush: automatic checkpoint + log writeback process", 1, 1000, BUSY_MIMIC, 0, 1, 0, 0, 0 },
  { "flushshort","flushshort: flush + short busy sleeps", 1, 1000, BUSY_SHORT, 0, 1, 0, 0, 0 },
  { "all",       "all: checkpointer + log writeback + short busy sleeps", 1, 0, BUSY_SHORT, 1, 1, 1, 0, 0 },
  { "assist",    "assist: automatic checkpoint, helped by PASSIVE checkpoints every 5 ms and log writeback; short busy sleeps",
                 1, 1000, BUSY_SHORT, 1, 1, 0, 5, 0 },
  { "tool",      "tool: wal_autocheckpoint=0 + build/quota-checkpointer (the program this project ships)",
                 1, 0, BUSY_MIMIC, 0, 0, 0, 0, 1 },
  { "toolquota", "toolquota: tool, and quota_busy_timeout(5000) in place of busy_timeout (its waits are not timed)",
                 1, 0, BUSY_QUOTA, 0, 0, 0, 0, 1 },
};
#define NVAR ((int)(sizeof(g_aVar)/sizeof(g_aVar[0])))

static const char *sys_name(int eSys){
  switch( eSys ){
    case SYS_SQLITE: return "sqlite-quota";
    case SYS_REDIS:  return "Redis+Lua";
    case SYS_PINNED: return "Redis+Lua, one vCPU";
    default:         return "PostgreSQL";
  }
}

static const char *dur_name(int eSys, int bDurable){
  switch( eSys ){
    case SYS_SQLITE: return bDurable ? "WAL FULL" : "WAL NORMAL";
    case SYS_REDIS:
    case SYS_PINNED: return bDurable ? "AOF always" : "AOF everysec";
    default:         return bDurable ? "synchronous_commit on" : "synchronous_commit off";
  }
}

static Case *add_case(int eSys, int eOp, int bDurable, int iVar){
  Case *p;
  int i;
  if( g_nCase>=(int)(sizeof(g_aCase)/sizeof(g_aCase[0])) ) die("too many cases");
  p = &g_aCase[g_nCase++];
  memset(p, 0, sizeof(*p));
  p->eSys = eSys; p->eOp = eOp; p->bDurable = bDurable; p->iVar = iVar;
  if( iVar>=0 ){
    snprintf(p->zLabel, sizeof(p->zLabel), "%s", g_aVar[iVar].zLabel);
  }else{
    snprintf(p->zLabel, sizeof(p->zLabel), "%s%s, %s", sys_name(eSys),
             eSys==SYS_PG ? (eOp==OP_TXN ? " BEGIN/UPDATE/INSERT/COMMIT" : " CTE") : "",
             dur_name(eSys, bDurable));
  }
  for(i=0; i<g.nCli; i++){
    p->apHist[i] = calloc(1, sizeof(Hist));
    if( p->apHist[i]==0 ) die("out of memory");
  }
  return p;
}

/* ------------------------------------------------------------------------
** SQLite helpers
*/
static void sq_exec(sqlite3 *db, const char *zSql){
  char *zErr = 0;
  int rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
  if( rc!=SQLITE_OK ){
    die("%s: %s (%s)", zSql, zErr ? zErr : sqlite3_errmsg(db), sqlite3_errstr(rc));
  }
}

static sqlite3_stmt *sq_prep(sqlite3 *db, const char *zSql){
  sqlite3_stmt *p = 0;
  int rc = sqlite3_prepare_v3(db, zSql, -1, SQLITE_PREPARE_PERSISTENT, &p, 0);
  if( rc!=SQLITE_OK || p==0 ){
    die("prepare %s: %s (%s)", zSql, sqlite3_errmsg(db), sqlite3_errstr(rc));
  }
  return p;
}

static sqlite3_int64 sq_int(sqlite3 *db, const char *zSql){
  sqlite3_stmt *p = sq_prep(db, zSql);
  sqlite3_int64 v;
  int rc = sqlite3_step(p);
  if( rc!=SQLITE_ROW ) die("%s: %s (%s)", zSql, sqlite3_errmsg(db), sqlite3_errstr(rc));
  v = sqlite3_column_type(p, 0)==SQLITE_NULL ? -1 : sqlite3_column_int64(p, 0);
  rc = sqlite3_finalize(p);
  if( rc!=SQLITE_OK ) die("%s: %s", zSql, sqlite3_errmsg(db));
  return v;
}

static sqlite3 *sq_open(const char *zPath, int flags){
  sqlite3 *db = 0;
  int rc = sqlite3_open_v2(zPath, &db, flags, 0);
  if( rc!=SQLITE_OK ){
    die("open %s: %s", zPath, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  }
  rc = sqlite3_extended_result_codes(db, 1);
  if( rc!=SQLITE_OK ) die("sqlite3_extended_result_codes: %s", sqlite3_errstr(rc));
  rc = sqlite3_busy_timeout(db, 5000);   /* the clients set their own */
  if( rc!=SQLITE_OK ) die("sqlite3_busy_timeout: %s", sqlite3_errstr(rc));
  return db;
}

static void sq_close(sqlite3 *db){
  int rc = sqlite3_close(db);
  if( rc!=SQLITE_OK ) die("sqlite3_close: %s (%s)", sqlite3_errmsg(db), sqlite3_errstr(rc));
}

static char g_zDb[600];       /* the SQLite database file */

static void sqlite_remove_files(void){
  static const char *azSuffix[] = { "", "-wal", "-shm", "-journal" };
  char z[700];
  int i;
  for(i=0; i<4; i++){
    snprintf(z, sizeof(z), "%s%s", g_zDb, azSuffix[i]);
    if( unlink(z)!=0 && errno!=ENOENT ) die("cannot remove %s: %s", z, strerror(errno));
  }
}

static void make_dirs(const char *zDir){
  char z[512];
  size_t i, n = strlen(zDir);
  if( n==0 || n>=sizeof(z) ) die("bad --dir: '%s'", zDir);
  memcpy(z, zDir, n+1);
  for(i=1; i<=n; i++){
    if( z[i]=='/' || z[i]==0 ){
      char c = z[i];
      z[i] = 0;
      if( mkdir(z, 0777)!=0 && errno!=EEXIST ) die("cannot create %s: %s", z, strerror(errno));
      z[i] = c;
    }
  }
}

/* A fresh store of NKEY keys. */
static void sqlite_setup(void){
  sqlite3 *db;
  char zMode[16];
  sqlite3_stmt *p;
  int rc;
  make_dirs(g.zDir);
  snprintf(g_zDb, sizeof(g_zDb), "%s/%s", g.zDir, g.bDiag ? "diag.db" : "peers.db");
  sqlite_remove_files();
  db = sq_open(g_zDb, SQLITE_OPEN_READWRITE|SQLITE_OPEN_CREATE);
  p = sq_prep(db, "PRAGMA journal_mode=WAL");
  rc = sqlite3_step(p);
  if( rc!=SQLITE_ROW ) die("PRAGMA journal_mode=WAL: %s", sqlite3_errmsg(db));
  snprintf(zMode, sizeof(zMode), "%s", (const char*)sqlite3_column_text(p, 0));
  if( sqlite3_finalize(p)!=SQLITE_OK ) die("PRAGMA journal_mode: %s", sqlite3_errmsg(db));
  if( strcmp(zMode, "wal")!=0 ) die("journal_mode=WAL gave '%s'", zMode);
  sq_exec(db, "CREATE VIRTUAL TABLE quota USING quota");
  sq_exec(db,
    "BEGIN;"
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i+1<1000)"
    " INSERT INTO quota(key, cap, period) SELECT printf('k%07d', i), " CAP ", 'month' FROM n;"
    "COMMIT;"
    "PRAGMA wal_checkpoint(TRUNCATE);");
  if( sq_int(db, "SELECT count(*) FROM quota")!=NKEY ) die("sqlite setup: wrong key count");
  sq_close(db);
}

/* Empty the log outside the clock, so every case starts alike. When the
** last clients of the previous case closed at the same moment, none of them
** deleted the -wal file. The connection reads the database first: until it
** has, its pager has not opened the log, and a checkpoint on it does
** nothing and returns SQLITE_OK (SQLite 3.40). */
static void sqlite_truncate_wal(void){
  sqlite3 *db = sq_open(g_zDb, SQLITE_OPEN_READWRITE);
  int nLog = -1, nCkpt = -1, rc;
  (void)sq_int(db, "SELECT count(*) FROM sqlite_schema");
  rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_TRUNCATE, &nLog, &nCkpt);
  if( rc!=SQLITE_OK ) die("wal_checkpoint(TRUNCATE): %s", sqlite3_errmsg(db));
  sq_close(db);
}

/* ------------------------------------------------------------------------
** Redis
*/
#ifdef PEERS_REDIS
static const char *zLuaConsume =
  "local v = redis.call('HMGET', KEYS[1], 'cap', 'used', 'reserved')\n"
  "local cap = tonumber(v[1])\n"
  "if not cap then return redis.error_reply('no such key') end\n"
  "local amt = tonumber(ARGV[1])\n"
  "if (tonumber(v[2]) or 0) + (tonumber(v[3]) or 0) + amt > cap then return false end\n"
  "redis.call('HINCRBY', KEYS[1], 'used', amt)\n"
  "return redis.call('XADD', KEYS[2], '*', 'key', KEYS[1], 'amount', amt)\n";

static const char *zLuaReserve =
  "local v = redis.call('HMGET', KEYS[1], 'cap', 'used', 'reserved')\n"
  "local cap = tonumber(v[1])\n"
  "if not cap then return redis.error_reply('no such key') end\n"
  "local amt = tonumber(ARGV[1])\n"
  "if (tonumber(v[2]) or 0) + (tonumber(v[3]) or 0) + amt > cap then return false end\n"
  "redis.call('HINCRBY', KEYS[1], 'reserved', amt)\n"
  "local id = redis.call('INCR', KEYS[2])\n"
  "redis.call('HSET', 'peers:hold:' .. id, 'key', KEYS[1], 'amount', amt)\n"
  "return id\n";

static const char *zLuaSettle =
  "local hk = 'peers:hold:' .. ARGV[1]\n"
  "local h = redis.call('HMGET', hk, 'key', 'amount')\n"
  "if not h[1] then return redis.error_reply('no such hold') end\n"
  "local amt = tonumber(ARGV[2])\n"
  "redis.call('DEL', hk)\n"
  "redis.call('HINCRBY', h[1], 'reserved', -tonumber(h[2]))\n"
  "redis.call('HINCRBY', h[1], 'used', amt)\n"
  "redis.call('XADD', KEYS[1], '*', 'key', h[1], 'amount', amt, 'hold', ARGV[1])\n"
  "return amt\n";

static char g_azSha[3][48];   /* consume, reserve, settle */
static char g_azRedisVersion[2][32];

static redisContext *redis_connect(const char *zHostPort, char *zErr, size_t nErr){
  char zHost[128];
  const char *zColon = strrchr(zHostPort, ':');
  struct timeval tv = { 5, 0 };
  redisContext *c;
  size_t n;
  if( zColon==0 ){ snprintf(zErr, nErr, "bad address '%s'", zHostPort); return 0; }
  n = (size_t)(zColon - zHostPort);
  if( n>=sizeof(zHost) ){ snprintf(zErr, nErr, "bad address"); return 0; }
  memcpy(zHost, zHostPort, n);
  zHost[n] = 0;
  c = redisConnectWithTimeout(zHost, atoi(zColon+1), tv);
  if( c==0 ){ snprintf(zErr, nErr, "redisConnect: out of memory"); return 0; }
  if( c->err ){
    snprintf(zErr, nErr, "connect %s: %s", zHostPort, c->errstr);
    redisFree(c);
    return 0;
  }
  return c;
}

/* Run a command in the setup; stop on an error reply. Returns the reply. */
static redisReply *redis_must(redisContext *c, int argc, const char **argv){
  redisReply *r = redisCommandArgv(c, argc, argv, 0);
  if( r==0 ) die("redis %s: %s", argv[0], c->errstr);
  if( r->type==REDIS_REPLY_ERROR ) die("redis %s: %s", argv[0], r->str);
  return r;
}

static void redis_cmd0(redisContext *c, int argc, const char **argv){
  freeReplyObject(redis_must(c, argc, argv));
}

/* Delete peers:*, write the keys, load the scripts. */
static void redis_setup(redisContext *c, int iInst){
  const char *zCursor = "0";
  char zCur[64];
  int i;
  redisReply *r;
  const char *aInfo[] = { "INFO", "server" };
  r = redis_must(c, 2, aInfo);
  if( r->type==REDIS_REPLY_STRING ){
    const char *z = strstr(r->str, "redis_version:");
    if( z ){
      size_t k = strcspn(z+14, "\r\n");
      if( k>=sizeof(g_azRedisVersion[0]) ) k = sizeof(g_azRedisVersion[0])-1;
      memcpy(g_azRedisVersion[iInst], z+14, k);
      g_azRedisVersion[iInst][k] = 0;
    }
  }
  freeReplyObject(r);
  snprintf(zCur, sizeof(zCur), "%s", zCursor);
  do{
    const char *aScan[] = { "SCAN", zCur, "MATCH", "peers:*", "COUNT", "1000" };
    redisReply *pKeys;
    r = redis_must(c, 6, aScan);
    if( r->type!=REDIS_REPLY_ARRAY || r->elements!=2 ) die("redis SCAN: unexpected reply");
    snprintf(zCur, sizeof(zCur), "%s", r->element[0]->str);
    pKeys = r->element[1];
    for(i=0; i<(int)pKeys->elements; i++){
      const char *aDel[] = { "UNLINK", pKeys->element[i]->str };
      redis_cmd0(c, 2, aDel);
    }
    freeReplyObject(r);
  }while( strcmp(zCur, "0")!=0 );
  for(i=0; i<NKEY; i++){
    char zKey[32], zName[16];
    const char *aSet[] = { "HSET", zKey, "cap", CAP, "used", "0", "reserved", "0" };
    key_name(zName, i);
    snprintf(zKey, sizeof(zKey), "peers:%s", zName);
    redis_cmd0(c, 8, aSet);
  }
  for(i=0; i<3; i++){
    const char *aLoad[] = { "SCRIPT", "LOAD", i==0 ? zLuaConsume : i==1 ? zLuaReserve : zLuaSettle };
    r = redis_must(c, 3, aLoad);
    if( r->type!=REDIS_REPLY_STRING ) die("SCRIPT LOAD: unexpected reply");
    snprintf(g_azSha[i], sizeof(g_azSha[i]), "%s", r->str);
    freeReplyObject(r);
  }
}

static void redis_set_fsync(const char *zAddr, int bAlways){
  char zErr[256];
  redisContext *c = redis_connect(zAddr, zErr, sizeof(zErr));
  const char *aCfg[] = { "CONFIG", "SET", "appendfsync", bAlways ? "always" : "everysec" };
  if( c==0 ) die("%s", zErr);
  redis_cmd0(c, 4, aCfg);
  redisFree(c);
}

/* Sum of used and reserved over the keys, and the stream's length. */
static void redis_totals(const char *zAddr, long long *pUsed, long long *pRes, long long *pLen){
  char zErr[256];
  redisContext *c = redis_connect(zAddr, zErr, sizeof(zErr));
  int i;
  *pUsed = *pRes = 0;
  if( c==0 ) die("%s", zErr);
  for(i=0; i<NKEY; i++){
    char zKey[32], zName[16];
    const char *aGet[] = { "HMGET", zKey, "used", "reserved" };
    redisReply *r;
    key_name(zName, i);
    snprintf(zKey, sizeof(zKey), "peers:%s", zName);
    r = redis_must(c, 4, aGet);
    if( r->type!=REDIS_REPLY_ARRAY || r->elements!=2 ) die("HMGET: unexpected reply");
    if( r->element[0]->str ) *pUsed += atoll(r->element[0]->str);
    if( r->element[1]->str ) *pRes += atoll(r->element[1]->str);
    freeReplyObject(r);
  }
  {
    const char *aLen[] = { "XLEN", "peers:ledger" };
    redisReply *r = redis_must(c, 2, aLen);
    *pLen = r->integer;
    freeReplyObject(r);
  }
  redisFree(c);
}
#endif /* PEERS_REDIS */

/* ------------------------------------------------------------------------
** PostgreSQL
*/
#define PG_CONSUME \
  "WITH u AS (UPDATE q SET used = used + $2 WHERE key = $1 AND used + reserved + $2 <= lim" \
  " RETURNING key) INSERT INTO ledger(key, amount) SELECT key, $2 FROM u RETURNING id"
#define PG_UPDATE \
  "UPDATE q SET used = used + $2 WHERE key = $1 AND used + reserved + $2 <= lim"
#define PG_INSERT \
  "INSERT INTO ledger(key, amount) VALUES ($1, $2)"
#define PG_RESERVE \
  "WITH u AS (UPDATE q SET reserved = reserved + $2 WHERE key = $1" \
  " AND used + reserved + $2 <= lim RETURNING key)" \
  " INSERT INTO holds(key, amount, expires) SELECT key, $2, now() + interval '15 minutes'" \
  " FROM u RETURNING id"
#define PG_SETTLE \
  "WITH h AS (DELETE FROM holds WHERE id = $1 RETURNING key, amount)," \
  " u AS (UPDATE q SET reserved = q.reserved - h.amount, used = q.used + $2" \
  " FROM h WHERE q.key = h.key RETURNING q.key)" \
  " INSERT INTO ledger(key, amount, hold_id) SELECT key, $2, $1 FROM u RETURNING amount"

#ifdef PEERS_PG
static char g_zPgVersion[32];

static void pg_exec(PGconn *c, const char *zSql){
  PGresult *r = PQexec(c, zSql);
  ExecStatusType st = PQresultStatus(r);
  if( st!=PGRES_COMMAND_OK && st!=PGRES_TUPLES_OK ){
    char zMsg[512];
    snprintf(zMsg, sizeof(zMsg), "%s", PQerrorMessage(c));
    PQclear(r);
    die("PostgreSQL %s: %s", zSql, zMsg);
  }
  PQclear(r);
}

static long long pg_int(PGconn *c, const char *zSql){
  PGresult *r = PQexec(c, zSql);
  long long v;
  if( PQresultStatus(r)!=PGRES_TUPLES_OK || PQntuples(r)!=1 ){
    char zMsg[512];
    snprintf(zMsg, sizeof(zMsg), "%s", PQerrorMessage(c));
    PQclear(r);
    die("PostgreSQL %s: %s", zSql, zMsg);
  }
  v = PQgetisnull(r, 0, 0) ? 0 : atoll(PQgetvalue(r, 0, 0));
  PQclear(r);
  return v;
}

static PGconn *pg_connect(char *zErr, size_t nErr){
  PGconn *c = PQconnectdb(g.zPg);
  if( c==0 ){ snprintf(zErr, nErr, "PQconnectdb: out of memory"); return 0; }
  if( PQstatus(c)!=CONNECTION_OK ){
    snprintf(zErr, nErr, "%s", PQerrorMessage(c));
    zErr[strcspn(zErr, "\n")] = 0;
    PQfinish(c);
    return 0;
  }
  return c;
}

static void pg_setup(PGconn *c){
  const char *z = PQparameterStatus(c, "server_version");
  snprintf(g_zPgVersion, sizeof(g_zPgVersion), "%s", z ? z : "?");
  pg_exec(c, "SET client_min_messages = warning");
  pg_exec(c, "DROP TABLE IF EXISTS q, ledger, holds");
  pg_exec(c,
    "CREATE TABLE q(key text PRIMARY KEY, lim bigint NOT NULL,"
    " used bigint NOT NULL DEFAULT 0, reserved bigint NOT NULL DEFAULT 0)");
  pg_exec(c,
    "CREATE TABLE ledger(id bigserial PRIMARY KEY, key text NOT NULL,"
    " amount bigint NOT NULL, at timestamptz NOT NULL DEFAULT now(), hold_id bigint)");
  pg_exec(c,
    "CREATE TABLE holds(id bigserial PRIMARY KEY, key text NOT NULL,"
    " amount bigint NOT NULL, expires timestamptz NOT NULL)");
  pg_exec(c,
    "INSERT INTO q(key, lim) SELECT 'k' || lpad(i::text, 7, '0'), " CAP
    " FROM generate_series(0, 999) AS i");
  pg_exec(c, "VACUUM ANALYZE q");
  if( pg_int(c, "SELECT count(*) FROM q")!=NKEY ) die("PostgreSQL setup: wrong key count");
}
#endif /* PEERS_PG */

/* ------------------------------------------------------------------------
** The client process
*/
typedef struct Client Client;
struct Client {
  Case *pCase;
  const Variant *pVar;        /* diag variant or 0 */
  Slot *pSlot;
  uint64_t rng;
  char zKey[16];              /* "k0000042" */
  char zRKey[24];             /* "peers:k0000042" */
  sqlite3 *db;
  sqlite3_stmt *pA, *pB;
  long long nsBusyStart;      /* start of the current wait */
  long long nsBusyWait;       /* time slept in the current wait */
  int bCallCkpt;              /* the current call ran a checkpoint */
  int bCallBusy;              /* the current call slept in the busy handler */
  int iLastFrame;
#ifdef PEERS_REDIS
  redisContext *rc;
#endif
#ifdef PEERS_PG
  PGconn *pg;
#endif
};

static void client_fail(Client *p, const char *zFmt, ...){
  va_list ap;
  va_start(ap, zFmt);
  vsnprintf(p->pSlot->zErr, sizeof(p->pSlot->zErr), zFmt, ap);
  va_end(ap);
}

static void pick_key(Client *p){
  int i = (int)(rnd(&p->rng) % NKEY);
  key_name(p->zKey, i);
  memcpy(p->zRKey, "peers:", 6);
  memcpy(p->zRKey+6, p->zKey, 9);
}

/* The wal_hook of the diagnosis: what SQLite's automatic checkpoint does
** (a PASSIVE checkpoint once the log holds nAutoCkpt frames), timed. */
static int diag_wal_hook(void *pArg, sqlite3 *db, const char *zDb, int nFrame){
  Client *p = (Client*)pArg;
  if( p->pVar->nAutoCkpt>0 && nFrame>=p->pVar->nAutoCkpt ){
    long long t0 = now_ns(), dt;
    (void)sqlite3_wal_checkpoint_v2(db, zDb, SQLITE_CHECKPOINT_PASSIVE, 0, 0);
    dt = now_ns() - t0;
    p->pSlot->nCkpt++;
    p->pSlot->nsCkpt += dt;
    p->pSlot->nFrameCkpt += nFrame;
    if( dt>p->pSlot->mxCkpt ) p->pSlot->mxCkpt = dt;
    p->bCallCkpt = 1;
  }
  return SQLITE_OK;
}

/* Busy handlers of the diagnosis. Both give up after 5000 ms, as
** busy_timeout 5000 does. */
static int diag_busy(void *pArg, int nPrior){
  /* SQLite's default busy handler (built with HAVE_USLEEP, as Debian's
  ** is): these sleeps in ms, then 100 ms each, until 5000 ms in all. */
  static const int aDelay[] = { 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 };
  Client *p = (Client*)pArg;
  long long t0 = now_ns();
  if( p->pVar->eBusy==BUSY_MIMIC ){
    int nDelay = (int)(sizeof(aDelay)/sizeof(aDelay[0]));
    int i, msPrior = 0, msDelay;
    for(i=0; i<nPrior && i<nDelay; i++) msPrior += aDelay[i];
    if( nPrior>=nDelay ) msPrior += (nPrior-nDelay)*100;
    msDelay = nPrior<nDelay ? aDelay[nPrior] : 100;
    if( msPrior + msDelay > 5000 ){
      msDelay = 5000 - msPrior;
      if( msDelay<=0 ) return 0;
    }
    usleep((useconds_t)msDelay * 1000);
  }else{
    static const int aUs[] = { 20, 50, 100, 200, 500 };
    if( nPrior==0 ) p->nsBusyStart = t0;
    if( t0 - p->nsBusyStart >= 5000000000LL ) return 0;
    if( nPrior<4 ) sched_yield();
    else usleep((useconds_t)(nPrior-4 < 5 ? aUs[nPrior-4] : 1000));
  }
  {
    long long dt = now_ns() - t0;
    if( nPrior==0 ) p->nsBusyWait = 0;
    p->nsBusyWait += dt;
    p->pSlot->nBusy++;
    p->pSlot->nsBusy += dt;
    if( nPrior+1>p->pSlot->mxRetry ) p->pSlot->mxRetry = nPrior+1;
    if( p->nsBusyWait>p->pSlot->mxBusyNs ) p->pSlot->mxBusyNs = p->nsBusyWait;
  }
  p->bCallBusy = 1;
  return 1;
}

static void client_open_sqlite(Client *p){
  const Variant *v = p->pVar;
  int rc;
  p->db = sq_open(g_zDb, SQLITE_OPEN_READWRITE);
  /* The busy handler first: the first statement reads the schema, and
  ** while another process that just opened the database rebuilds the
  ** WAL index, that read is busy. */
  if( v==0 || v->eBusy==BUSY_TIMEOUT || v->eBusy==BUSY_QUOTA ){
    rc = sqlite3_busy_timeout(p->db, 5000);
  }else{
    rc = sqlite3_busy_handler(p->db, diag_busy, p);
  }
  if( rc!=SQLITE_OK ) die("busy handler: %s", sqlite3_errstr(rc));
  sq_exec(p->db, p->pCase->bDurable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  if( v ){
    if( v->nAutoCkpt==0 ) sq_exec(p->db, "PRAGMA wal_autocheckpoint=0");
    /* Installed after the PRAGMA: each replaces the other. */
    if( v->bHook ) sqlite3_wal_hook(p->db, diag_wal_hook, p);
    if( v->eBusy==BUSY_QUOTA ) sq_exec(p->db, "SELECT quota_busy_timeout(5000)");
  }
  if( p->pCase->eOp==OP_PAIR ){
    p->pA = sq_prep(p->db, "SELECT quota_reserve(?1, 4)");
    p->pB = sq_prep(p->db, "SELECT quota_settle(?1, 3)");
  }else{
    p->pA = sq_prep(p->db, "SELECT quota_consume(?1, 1)");
  }
  {
    int nCur = 0, nHi = 0;
    rc = sqlite3_db_status(p->db, SQLITE_DBSTATUS_CACHE_MISS, &nCur, &nHi, 1);
    if( rc!=SQLITE_OK ) die("sqlite3_db_status: %s", sqlite3_errstr(rc));
  }
}

/* One op. Returns 1 granted, 0 denied, -1 failed (message in the slot). */
static int op_sqlite(Client *p){
  int rc, r = 1;
  sqlite3_int64 iHold;
  rc = sqlite3_bind_text(p->pA, 1, p->zKey, -1, SQLITE_STATIC);
  if( rc!=SQLITE_OK ){ client_fail(p, "bind: %s", sqlite3_errstr(rc)); return -1; }
  rc = sqlite3_step(p->pA);
  if( rc!=SQLITE_ROW ){
    client_fail(p, "%s: %s (extended code %d)", sqlite3_sql(p->pA), sqlite3_errmsg(p->db),
                sqlite3_extended_errcode(p->db));
    sqlite3_reset(p->pA);
    return -1;
  }
  if( sqlite3_column_type(p->pA, 0)==SQLITE_NULL ) r = 0;
  iHold = sqlite3_column_int64(p->pA, 0);
  rc = sqlite3_reset(p->pA);
  if( rc!=SQLITE_OK ){ client_fail(p, "reset: %s", sqlite3_errmsg(p->db)); return -1; }
  if( r==0 || p->pCase->eOp!=OP_PAIR ) return r;
  rc = sqlite3_bind_int64(p->pB, 1, iHold);
  if( rc!=SQLITE_OK ){ client_fail(p, "bind: %s", sqlite3_errstr(rc)); return -1; }
  rc = sqlite3_step(p->pB);
  if( rc!=SQLITE_ROW ){
    client_fail(p, "quota_settle(%lld, 3): %s (extended code %d)", (long long)iHold,
                sqlite3_errmsg(p->db), sqlite3_extended_errcode(p->db));
    sqlite3_reset(p->pB);
    return -1;
  }
  if( sqlite3_column_int64(p->pB, 0)!=3 ){
    client_fail(p, "quota_settle(%lld, 3) did not return 3", (long long)iHold);
    r = -1;
  }
  rc = sqlite3_reset(p->pB);
  if( rc!=SQLITE_OK ){ client_fail(p, "reset: %s", sqlite3_errmsg(p->db)); return -1; }
  return r;
}

#ifdef PEERS_REDIS
static int op_redis(Client *p){
  redisReply *r;
  int ret;
  if( p->pCase->eOp==OP_CONSUME ){
    const char *argv[] = { "EVALSHA", g_azSha[0], "2", p->zRKey, "peers:ledger", "1" };
    r = redisCommandArgv(p->rc, 6, argv, 0);
    if( r==0 ){ client_fail(p, "redis: %s", p->rc->errstr); return -2; }
    if( r->type==REDIS_REPLY_STRING ) ret = 1;
    else if( r->type==REDIS_REPLY_NIL ) ret = 0;
    else{ client_fail(p, "EVALSHA consume: %s", r->type==REDIS_REPLY_ERROR ? r->str : "unexpected reply"); ret = -1; }
    freeReplyObject(r);
    return ret;
  }else{
    const char *argv[] = { "EVALSHA", g_azSha[1], "2", p->zRKey, "peers:holdseq", "4" };
    char zHold[32];
    long long iHold;
    r = redisCommandArgv(p->rc, 6, argv, 0);
    if( r==0 ){ client_fail(p, "redis: %s", p->rc->errstr); return -2; }
    if( r->type==REDIS_REPLY_NIL ){ freeReplyObject(r); return 0; }
    if( r->type!=REDIS_REPLY_INTEGER ){
      client_fail(p, "EVALSHA reserve: %s", r->type==REDIS_REPLY_ERROR ? r->str : "unexpected reply");
      freeReplyObject(r);
      return -1;
    }
    iHold = r->integer;
    freeReplyObject(r);
    snprintf(zHold, sizeof(zHold), "%lld", iHold);
    {
      const char *argv2[] = { "EVALSHA", g_azSha[2], "1", "peers:ledger", zHold, "3" };
      r = redisCommandArgv(p->rc, 6, argv2, 0);
    }
    if( r==0 ){ client_fail(p, "redis: %s", p->rc->errstr); return -2; }
    if( r->type==REDIS_REPLY_INTEGER && r->integer==3 ) ret = 1;
    else{ client_fail(p, "EVALSHA settle: %s", r->type==REDIS_REPLY_ERROR ? r->str : "unexpected reply"); ret = -1; }
    freeReplyObject(r);
    return ret;
  }
}
#endif

#ifdef PEERS_PG
static const Oid aPgTypes[2] = { 25, 20 };   /* text, int8 */
static const Oid aPgTypesSettle[2] = { 20, 20 };

/* Run a prepared statement; returns its result or 0 after client_fail. */
static PGresult *pg_run(Client *p, const char *zName, const char *z1, const char *z2,
                        ExecStatusType eWant){
  const char *aV[2] = { z1, z2 };
  PGresult *r = PQexecPrepared(p->pg, zName, 2, aV, 0, 0, 0);
  if( PQresultStatus(r)!=eWant ){
    const char *zMsg = PQerrorMessage(p->pg);
    client_fail(p, "%s: %.*s", zName, (int)strcspn(zMsg, "\n"), zMsg);
    PQclear(r);
    return 0;
  }
  return r;
}

static int pg_simple(Client *p, const char *zSql){
  PGresult *r = PQexec(p->pg, zSql);
  if( PQresultStatus(r)!=PGRES_COMMAND_OK ){
    const char *zMsg = PQerrorMessage(p->pg);
    client_fail(p, "%s: %.*s", zSql, (int)strcspn(zMsg, "\n"), zMsg);
    PQclear(r);
    return -1;
  }
  PQclear(r);
  return 0;
}

static int op_pg(Client *p){
  PGresult *r;
  int ret;
  if( PQstatus(p->pg)!=CONNECTION_OK ){ client_fail(p, "connection lost"); return -2; }
  switch( p->pCase->eOp ){
    case OP_CONSUME:
      r = pg_run(p, "c", p->zKey, "1", PGRES_TUPLES_OK);
      if( r==0 ) return -1;
      ret = PQntuples(r)==1 ? 1 : 0;
      PQclear(r);
      return ret;
    case OP_TXN:
      if( pg_simple(p, "BEGIN") ) return -1;
      r = pg_run(p, "u", p->zKey, "1", PGRES_COMMAND_OK);
      if( r==0 ){ (void)pg_simple(p, "ROLLBACK"); return -1; }
      ret = strcmp(PQcmdTuples(r), "1")==0 ? 1 : 0;
      PQclear(r);
      if( ret==0 ){ (void)pg_simple(p, "ROLLBACK"); return 0; }
      r = pg_run(p, "i", p->zKey, "1", PGRES_COMMAND_OK);
      if( r==0 ){ (void)pg_simple(p, "ROLLBACK"); return -1; }
      PQclear(r);
      if( pg_simple(p, "COMMIT") ) return -1;
      return 1;
    default: {
      char zHold[32];
      r = pg_run(p, "r", p->zKey, "4", PGRES_TUPLES_OK);
      if( r==0 ) return -1;
      if( PQntuples(r)!=1 ){ PQclear(r); return 0; }
      snprintf(zHold, sizeof(zHold), "%s", PQgetvalue(r, 0, 0));
      PQclear(r);
      r = pg_run(p, "s", zHold, "3", PGRES_TUPLES_OK);
      if( r==0 ) return -1;
      ret = (PQntuples(r)==1 && strcmp(PQgetvalue(r, 0, 0), "3")==0) ? 1 : -1;
      if( ret<0 ) client_fail(p, "settle of hold %s did not charge 3", zHold);
      PQclear(r);
      return ret;
    }
  }
}

static void client_open_pg(Client *p){
  char zErr[512];
  PGresult *r;
  p->pg = pg_connect(zErr, sizeof(zErr));
  if( p->pg==0 ) die("PostgreSQL: %s", zErr);
  pg_exec(p->pg, p->pCase->bDurable ? "SET synchronous_commit = on"
                                    : "SET synchronous_commit = off");
#define PREP(NAME, SQL, TYPES) \
  r = PQprepare(p->pg, NAME, SQL, 2, TYPES); \
  if( PQresultStatus(r)!=PGRES_COMMAND_OK ) die("PQprepare %s: %s", NAME, PQerrorMessage(p->pg)); \
  PQclear(r);
  PREP("c", PG_CONSUME, aPgTypes);
  PREP("u", PG_UPDATE, aPgTypes);
  PREP("i", PG_INSERT, aPgTypes);
  PREP("r", PG_RESERVE, aPgTypes);
  PREP("s", PG_SETTLE, aPgTypesSettle);
#undef PREP
}
#endif

static void pin_to_cpu0(void){
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  if( sched_setaffinity(0, sizeof(set), &set)!=0 ) die("sched_setaffinity: %s", strerror(errno));
}

/* The body of a client process: connect, say ready, wait for go, run ops
** until the deadline, write the slot. */
static void client_main(Case *pCase, const Variant *pVar, int iClient, Slot *pSlot,
                        int fdReady, int fdGo, double rSec){
  Client cl;
  char c = 'r';
  long long t0, tEnd, t;
  long nVcsw = 0, nIvcsw = 0;       /* context switches so far (instrumented variants) */
  char zWal[700];
  snprintf(zWal, sizeof(zWal), "%s-wal", g_zDb);
  memset(&cl, 0, sizeof(cl));
  g_bChild = 1;
  cl.pCase = pCase; cl.pVar = pVar; cl.pSlot = pSlot;
  cl.rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)getpid() << 20) ^ (uint64_t)now_ns() ^ (uint64_t)iClient;
  if( cl.rng==0 ) cl.rng = 1;
  if( pCase->eSys==SYS_PINNED ) pin_to_cpu0();
  if( pCase->eSys==SYS_SQLITE ){
    client_open_sqlite(&cl);
  }else if( pCase->eSys==SYS_PG ){
#ifdef PEERS_PG
    client_open_pg(&cl);
#endif
  }else{
#ifdef PEERS_REDIS
    char zErr[256];
    cl.rc = redis_connect(pCase->eSys==SYS_PINNED ? g.zPinned : g.zRedis, zErr, sizeof(zErr));
    if( cl.rc==0 ) die("%s", zErr);
#endif
  }
  if( write(fdReady, &c, 1)!=1 ) die("child: write: %s", strerror(errno));
  close(fdReady);
  if( read(fdGo, &c, 1)<0 ) die("child: read: %s", strerror(errno));   /* EOF = go */
  close(fdGo);
  t0 = now_ns();
  tEnd = t0 + (long long)(rSec * 1e9);
  t = t0;
  if( pVar && pVar->bHook ){
    /* context switches: read after every op (one getrusage() call) */
    struct rusage ru;
    if( getrusage(RUSAGE_THREAD, &ru)!=0 ) die("getrusage: %s", strerror(errno));
    nVcsw = ru.ru_nvcsw; nIvcsw = ru.ru_nivcsw;
  }
  while( t<tEnd ){
    int r = -1;
    long long ts, dt;
    pick_key(&cl);
    cl.bCallCkpt = cl.bCallBusy = 0;
    ts = now_ns();
    switch( pCase->eSys ){
      case SYS_SQLITE: r = op_sqlite(&cl); break;
#ifdef PEERS_REDIS
      case SYS_REDIS: case SYS_PINNED: r = op_redis(&cl); break;
#endif
#ifdef PEERS_PG
      case SYS_PG: r = op_pg(&cl); break;
#endif
      default: break;
    }
    t = now_ns();
    dt = t - ts;
    pSlot->aHist[hist_index(dt)]++;
    if( dt>pSlot->mxNs ) pSlot->mxNs = dt;
    {
      int bVol = 0, bInvol = 0;
      if( pVar && pVar->bHook ){
        struct rusage ru;
        if( getrusage(RUSAGE_THREAD, &ru)!=0 ) die("getrusage: %s", strerror(errno));
        bVol = ru.ru_nvcsw!=nVcsw;
        bInvol = ru.ru_nivcsw!=nIvcsw;
        nVcsw = ru.ru_nvcsw; nIvcsw = ru.ru_nivcsw;
      }
      if( dt>(long long)g.usSlow*1000 ){
        pSlot->nSlow++;
        if( cl.bCallCkpt ) pSlot->nSlowCkpt++;
        else if( cl.bCallBusy ) pSlot->nSlowBusy++;
        else if( bVol ) pSlot->nSlowBlock++;
        else if( bInvol ) pSlot->nSlowPreempt++;
        if( dt>VERY_SLOW_NS ) pSlot->nVerySlow++;
      }
    }
    if( pCase->eSys==SYS_SQLITE && iClient==0 && ((pSlot->nOk + pSlot->nErr) & 255)==0 ){
      struct stat st;
      if( stat(zWal, &st)==0 && (long long)st.st_size>pSlot->nWalMax ) pSlot->nWalMax = (long long)st.st_size;
    }
    if( r==1 ){
      pSlot->nOk++;
      pSlot->nUnits += pCase->eOp==OP_PAIR ? 3 : 1;
    }else if( r==0 ){
      pSlot->nDenied++;
    }else{
      pSlot->nErr++;
      if( r==-2 ) break;   /* the connection is gone */
    }
  }
  pSlot->nsRun = now_ns() - t0;
  if( cl.db ){
    int nCur = 0, nHi = 0;
    if( sqlite3_db_status(cl.db, SQLITE_DBSTATUS_CACHE_MISS, &nCur, &nHi, 0)==SQLITE_OK ){
      pSlot->nMiss = nCur;
    }
  }
  if( cl.pA ) sqlite3_finalize(cl.pA);
  if( cl.pB ) sqlite3_finalize(cl.pB);
  if( cl.db ) sqlite3_close(cl.db);
#ifdef PEERS_REDIS
  if( cl.rc ) redisFree(cl.rc);
#endif
#ifdef PEERS_PG
  if( cl.pg ) PQfinish(cl.pg);
#endif
  _exit(0);
}

/* The diagnosis's checkpointer: a PASSIVE checkpoint every msCkpt ms until
** the parent sets bStop. */
/* The checkpointer's busy handler, for its RESTART checkpoints: yields, then
** 50 us sleeps, up to 5 s. */
static int ckpt_busy(void *pArg, int nPrior){
  long long *pStart = (long long*)pArg;
  long long t = now_ns();
  if( nPrior==0 ) *pStart = t;
  if( t - *pStart >= 5000000000LL ) return 0;
  if( nPrior<4 ) sched_yield(); else usleep(50);
  return 1;
}

/* The diagnosis's helper process, until the parent sets bStop:
**   bBgCkpt: a PASSIVE checkpoint every --ckpt-ms ms (and a RESTART one
**            when the log holds --restart-frames frames or more);
**   bFlush:  every --flush-ms ms, sync_file_range(SYNC_FILE_RANGE_WRITE)
**            on the -wal file: the kernel starts writing the log's dirty
**            pages now, without waiting, so that the fsync of the log at
**            the next checkpoint finds little left to write. The file is
**            opened read-only; SQLite takes no locks on it, so this
**            descriptor cannot disturb the connections' POSIX locks. */
static void helper_main(const Variant *pVar, Slot *pSlot, int fdReady, int fdGo){
  sqlite3 *db;
  char c = 'r';
  long long tBusy = 0, tNextCkpt = 0;
  int rc, fdWal = -1;
  char zWal[700];
  g_bChild = 1;
  snprintf(zWal, sizeof(zWal), "%s-wal", g_zDb);
  db = sq_open(g_zDb, SQLITE_OPEN_READWRITE);
  rc = sqlite3_busy_handler(db, ckpt_busy, &tBusy);
  if( rc!=SQLITE_OK ) die("checkpointer: sqlite3_busy_handler: %s", sqlite3_errstr(rc));
  sq_exec(db, "PRAGMA synchronous=NORMAL");
  if( write(fdReady, &c, 1)!=1 ) die("checkpointer: write: %s", strerror(errno));
  close(fdReady);
  if( read(fdGo, &c, 1)<0 ) die("checkpointer: read: %s", strerror(errno));
  close(fdGo);
  while( !pSlot->bStop ){
    int nLog = 0, nDone = 0;
    long long t0 = now_ns(), dt;
    if( pVar->bFlush ){
      if( fdWal<0 ) fdWal = open(zWal, O_RDONLY|O_CLOEXEC);   /* when the clients made it */
      if( fdWal>=0 ){
        if( sync_file_range(fdWal, 0, 0, SYNC_FILE_RANGE_WRITE)!=0 ){
          snprintf(pSlot->zErr, sizeof(pSlot->zErr), "sync_file_range: %s", strerror(errno));
          pSlot->nErr++;
        }
        dt = now_ns() - t0;
        pSlot->nFlush++;
        pSlot->nsFlush += dt;
        if( dt>pSlot->mxFlush ) pSlot->mxFlush = dt;
      }
    }
    if( !pVar->bBgCkpt || t0<tNextCkpt ){
      usleep((useconds_t)g.msFlush * 1000);
      continue;
    }
    tNextCkpt = t0 + (long long)(pVar->msCkpt ? pVar->msCkpt : g.msCkpt) * 1000000LL;
    t0 = now_ns();
    rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, &nLog, &nDone);
    dt = now_ns() - t0;
    if( rc!=SQLITE_OK && rc!=SQLITE_BUSY ){
      snprintf(pSlot->zErr, sizeof(pSlot->zErr), "checkpoint: %s", sqlite3_errmsg(db));
      pSlot->nErr++;
    }
    pSlot->nCkpt++;
    pSlot->nsCkpt += dt;
    pSlot->nFrameCkpt += nLog>0 ? nLog : 0;
    if( dt>pSlot->mxCkpt ) pSlot->mxCkpt = dt;
    if( rc==SQLITE_OK && pVar->bRestart && nLog>=g.nRestartFrames ){
      /* Under a steady stream of commits a PASSIVE checkpoint never
      ** catches up with the log, so the log is never restarted and grows
      ** without bound. A RESTART checkpoint makes it: it takes the write
      ** lock (writers wait), copies what is left, and waits for readers
      ** to leave the log, so that the next commit writes from its start. */
      t0 = now_ns();
      rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_RESTART, &nLog, &nDone);
      dt = now_ns() - t0;
      if( rc!=SQLITE_OK && rc!=SQLITE_BUSY ){
        snprintf(pSlot->zErr, sizeof(pSlot->zErr), "RESTART checkpoint: %s", sqlite3_errmsg(db));
        pSlot->nErr++;
      }
      pSlot->nRestart++;
      if( rc==SQLITE_BUSY ) pSlot->nRestartBusy++;
      pSlot->nsRestart += dt;
      if( dt>pSlot->mxRestart ) pSlot->mxRestart = dt;
    }
    usleep((useconds_t)(pVar->bFlush ? g.msFlush : pVar->msCkpt ? pVar->msCkpt : g.msCkpt) * 1000);
  }
  if( fdWal>=0 ) close(fdWal);
  sqlite3_close(db);
  _exit(0);
}

/* The diagnosis's variant tool: build/quota-checkpointer on the database,
** from before the clients start until they end (SIGTERM; it must exit 0). */
static pid_t start_checkpointer(void){
  char zEvery[16], zFrames[16];
  pid_t pid;
  snprintf(zEvery, sizeof(zEvery), "%d", g.msCkpt);
  snprintf(zFrames, sizeof(zFrames), "%d", g.nRestartFrames);
  fflush(stdout); fflush(stderr);
  pid = fork();
  if( pid<0 ) die("fork: %s", strerror(errno));
  if( pid==0 ){
    execl(g.zCheckpointer, g.zCheckpointer, g_zDb, "--every", zEvery,
          "--restart-frames", zFrames, "--quiet", (char*)0);
    fprintf(stderr, "peers: cannot run %s: %s\n", g.zCheckpointer, strerror(errno));
    _exit(127);
  }
  return pid;
}
static void stop_checkpointer(pid_t pid){
  int st = 0;
  if( kill(pid, SIGTERM)!=0 ) die("kill: %s", strerror(errno));
  if( waitpid(pid, &st, 0)<0 ) die("waitpid: %s", strerror(errno));
  if( !WIFEXITED(st) || WEXITSTATUS(st)!=0 ) die("%s failed (status %d)", g.zCheckpointer, st);
}

/* Runs one case with nCli clients for rSec; fills the case's round figures. */
static void run_case(Case *p, int iCli, int iRound){
  int nCli = g.aCli[iCli];
  const Variant *pVar = p->iVar>=0 ? &g_aVar[p->iVar] : 0;
  int bCkpt = pVar && (pVar->bBgCkpt || pVar->bFlush);   /* a helper process */
  int aReady[2], aGo[2], i, nReady = 0, nProc;
  pid_t aPid[MAX_CLIENT+1], pidTool = 0;
  long long nOk = 0, nsMax = 0;
  Hist *pH = p->apHist[iCli];

  if( p->eSys==SYS_SQLITE ){
    char zWal[700];
    struct stat st;
    sqlite_truncate_wal();
    snprintf(zWal, sizeof(zWal), "%s-wal", g_zDb);
    if( stat(zWal, &st)==0 && st.st_size>0 ) die("%s: the -wal file has %lld bytes after a TRUNCATE checkpoint", p->zLabel, (long long)st.st_size);
  }
#ifdef PEERS_REDIS
  if( p->eSys==SYS_REDIS ) redis_set_fsync(g.zRedis, p->bDurable);
  if( p->eSys==SYS_PINNED ) redis_set_fsync(g.zPinned, p->bDurable);
#endif
  memset(g_aSlot, 0, sizeof(Slot)*(MAX_CLIENT+1));
  if( pVar && pVar->bTool ) pidTool = start_checkpointer();
  if( pipe(aReady)!=0 || pipe(aGo)!=0 ) die("pipe: %s", strerror(errno));
  fflush(stdout); fflush(stderr);
  nProc = nCli + (bCkpt ? 1 : 0);
  for(i=0; i<nProc; i++){
    aPid[i] = fork();
    if( aPid[i]<0 ) die("fork: %s", strerror(errno));
    if( aPid[i]==0 ){
      close(aReady[0]); close(aGo[1]);
      if( i<nCli ) client_main(p, pVar, i, &g_aSlot[i], aReady[1], aGo[0], g.rSec);
      else helper_main(pVar, &g_aSlot[MAX_CLIENT], aReady[1], aGo[0]);
    }
  }
  close(aReady[1]); close(aGo[0]);
  while( nReady<nProc ){
    char c;
    ssize_t k = read(aReady[0], &c, 1);
    if( k==1 ) nReady++;
    else if( k==0 ) break;
    else if( errno!=EINTR ) die("read: %s", strerror(errno));
  }
  close(aGo[1]);                                  /* all start now */
  for(i=0; i<nCli; i++){
    int st = 0;
    if( waitpid(aPid[i], &st, 0)<0 ) die("waitpid: %s", strerror(errno));
    if( !WIFEXITED(st) || WEXITSTATUS(st)!=0 ) die("%s: client %d of %d failed (status %d)", p->zLabel, i+1, nCli, st);
  }
  if( bCkpt ){
    int st = 0;
    g_aSlot[MAX_CLIENT].bStop = 1;
    if( waitpid(aPid[nCli], &st, 0)<0 ) die("waitpid: %s", strerror(errno));
    if( !WIFEXITED(st) || WEXITSTATUS(st)!=0 ) die("helper process failed (status %d)", st);
  }
  if( pidTool>0 ) stop_checkpointer(pidTool);
  close(aReady[0]);
  if( nReady<nProc ) die("%s: only %d of %d processes started", p->zLabel, nReady, nProc);
  for(i=0; i<nCli; i++){
    Slot *s = &g_aSlot[i];
    int j;
    nOk += s->nOk;
    p->nOk += s->nOk;
    p->nUnits += s->nUnits;
    p->nOkOp[p->eOp] += s->nOk;
    p->aErr[iCli] += s->nErr;
    p->aDenied[iCli] += s->nDenied;
    if( s->nErr ) snprintf(p->azErr[iCli], sizeof(p->azErr[iCli]), "%s", s->zErr);
    if( s->nsRun>nsMax ) nsMax = s->nsRun;
    for(j=0; j<NBUCKET; j++){ pH->a[j] += s->aHist[j]; pH->n += s->aHist[j]; }
    if( s->mxNs>pH->mx ) pH->mx = s->mxNs;
    p->aOps1[iCli] += s->nOk + s->nDenied + s->nErr;
    p->aCkpt[iCli] += s->nCkpt; p->aNsCkpt[iCli] += s->nsCkpt;
    p->aFrameCkpt[iCli] += s->nFrameCkpt;
    if( s->mxCkpt>p->aMxCkpt[iCli] ) p->aMxCkpt[iCli] = s->mxCkpt;
    p->aBusy[iCli] += s->nBusy; p->aNsBusy[iCli] += s->nsBusy;
    if( s->mxRetry>p->aMxRetry[iCli] ) p->aMxRetry[iCli] = s->mxRetry;
    if( s->mxBusyNs>p->aMxBusyNs[iCli] ) p->aMxBusyNs[iCli] = s->mxBusyNs;
    p->aSlow[iCli] += s->nSlow; p->aSlowCkpt[iCli] += s->nSlowCkpt;
    p->aSlowBusy[iCli] += s->nSlowBusy; p->aVerySlow[iCli] += s->nVerySlow;
    p->aSlowBlock[iCli] += s->nSlowBlock; p->aSlowPreempt[iCli] += s->nSlowPreempt;
    p->aMiss[iCli] += s->nMiss;
  }
  if( bCkpt ){
    Slot *s = &g_aSlot[MAX_CLIENT];
    p->aBgCkpt[iCli] += s->nCkpt;
    p->aNsBg[iCli] += s->nsCkpt;
    if( s->mxCkpt>p->aMxBg[iCli] ) p->aMxBg[iCli] = s->mxCkpt;
    p->aRestart[iCli] += s->nRestart;
    p->aRestartBusy[iCli] += s->nRestartBusy;
    p->aNsRestart[iCli] += s->nsRestart;
    if( s->mxRestart>p->aMxRestart[iCli] ) p->aMxRestart[iCli] = s->mxRestart;
    p->aFlush[iCli] += s->nFlush;
    p->aNsFlush[iCli] += s->nsFlush;
    if( s->mxFlush>p->aMxFlush[iCli] ) p->aMxFlush[iCli] = s->mxFlush;
    if( s->nErr ){
      p->aErr[iCli] += s->nErr;
      snprintf(p->azErr[iCli], sizeof(p->azErr[iCli]), "%s", s->zErr);
    }
  }
  p->aOps[iCli][iRound] = nsMax>0 ? (double)nOk / ((double)nsMax * 1e-9) : 0.0;
  if( g_aSlot[0].nWalMax>p->aWalMax[iCli] ) p->aWalMax[iCli] = g_aSlot[0].nWalMax;
}

/* ------------------------------------------------------------------------
** Statistics and formatting
*/
static int cmp_double(const void *a, const void *b){
  double x = *(const double*)a, y = *(const double*)b;
  return x<y ? -1 : x>y ? 1 : 0;
}

static double median(const double *a, int n){
  double s[MAX_ROUND];
  if( n<=0 ) return 0.0;
  memcpy(s, a, sizeof(double)*(size_t)n);
  qsort(s, (size_t)n, sizeof(double), cmp_double);
  return n%2 ? s[n/2] : (s[n/2-1] + s[n/2]) / 2.0;
}

static double vmin(const double *a, int n){
  double m = a[0];
  int i;
  for(i=1; i<n; i++) if( a[i]<m ) m = a[i];
  return m;
}
static double vmax(const double *a, int n){
  double m = a[0];
  int i;
  for(i=1; i<n; i++) if( a[i]>m ) m = a[i];
  return m;
}

/* Integer with thousands separators; rotating buffers. */
static const char *fmt_int(double v){
  static char aBuf[16][32];
  static int iBuf = 0;
  char *z = aBuf[iBuf++ & 15];
  char t[32];
  long long n = (long long)(v + (v<0 ? -0.5 : 0.5));
  int len, i, j = 0, neg = n<0;
  if( neg ) n = -n;
  len = snprintf(t, sizeof(t), "%lld", n);
  if( neg ) z[j++] = '-';
  for(i=0; i<len; i++){
    if( i>0 && (len-i)%3==0 ) z[j++] = ',';
    z[j++] = t[i];
  }
  z[j] = 0;
  return z;
}

/* Microseconds: 1 decimal under 100, integer above. */
static const char *fmt_us(double us){
  static char aBuf[16][32];
  static int iBuf = 0;
  char *z = aBuf[iBuf++ & 15];
  if( us<100 ) snprintf(z, 32, "%.1f", us);
  else snprintf(z, 32, "%s", fmt_int(us));
  return z;
}

static void out_ratio_list(const double *a, int n){
  int i;
  for(i=0; i<n; i++) out("%s%.2f", i ? " " : "", a[i]);
}

static Case *find_case(int eSys, int eOp, int bDurable){
  int i;
  for(i=0; i<g_nCase; i++){
    Case *p = &g_aCase[i];
    if( p->iVar<0 && p->eSys==eSys && p->eOp==eOp && p->bDurable==bDurable ) return p;
  }
  return 0;
}

static void out_errors(const Case *p, int iCli){
  if( p->aErr[iCli]==0 ) out(" 0 |");
  else out(" %lld (last: %s) |", p->aErr[iCli], p->azErr[iCli]);
}

/* ------------------------------------------------------------------------
** The machine and the versions
*/
static void cpu_model(char *z, size_t n){
  FILE *f = fopen("/proc/cpuinfo", "r");
  char zLine[512];
  snprintf(z, n, "unknown CPU");
  if( f==0 ) return;
  while( fgets(zLine, sizeof(zLine), f) ){
    if( strncmp(zLine, "model name", 10)==0 ){
      char *q = strchr(zLine, ':');
      if( q ){
        size_t k;
        q++;
        while( *q==' ' || *q=='\t' ) q++;
        k = strlen(q);
        while( k>0 && (q[k-1]=='\n' || q[k-1]==' ') ) q[--k] = 0;
        snprintf(z, n, "%s", q);
      }
      break;
    }
  }
  fclose(f);
}

/* The three load averages, from /proc/loadavg. */
static void loadavg(char *z, size_t n){
  FILE *f = fopen("/proc/loadavg", "r");
  double a = 0, b = 0, c = 0;
  snprintf(z, n, "unknown");
  if( f==0 ) return;
  if( fscanf(f, "%lf %lf %lf", &a, &b, &c)==3 ) snprintf(z, n, "%.2f %.2f %.2f", a, b, c);
  fclose(f);
}
static char g_zLoadStart[64];

static void out_header(const char *zTitle, double tRun){
  char zCpu[256], zDate[64];
  time_t t = time(0);
  struct tm tm;
  struct utsname u;
  gmtime_r(&t, &tm);
  strftime(zDate, sizeof(zDate), "%Y-%m-%d %H:%M UTC", &tm);
  cpu_model(zCpu, sizeof(zCpu));
  if( uname(&u)!=0 ) snprintf(u.release, sizeof(u.release), "?");
  out("# %s\n\n", zTitle);
  out("%s, `%s`, %ld CPUs (%s), Linux %s; SQLite %s, sqlite-quota %s",
      zDate, g.zCmd, sysconf(_SC_NPROCESSORS_ONLN), zCpu, u.release,
      sqlite3_libversion(), SQLITE_QUOTA_VERSION);
#ifdef PEERS_REDIS
  if( g_azRedisVersion[0][0] ) out(", Redis %s (hiredis %d.%d)", g_azRedisVersion[0], HIREDIS_MAJOR, HIREDIS_MINOR);
#endif
#ifdef PEERS_PG
  if( g_zPgVersion[0] ) out(", PostgreSQL %s (libpq %d)", g_zPgVersion, PQlibVersion());
#endif
  {
    char zLoad[64];
    loadavg(zLoad, sizeof(zLoad));
    out("; %d interleaved rounds, %.2f s per case per round, 1,000 keys at random; run took %.0f s;"
        " load average %s at the start, %s at the end.\n\n", g.nRound, g.rSec, tRun, g_zLoadStart, zLoad);
  }
}

/* ------------------------------------------------------------------------
** The comparison
*/
static int g_abSys[NSYS];     /* sides measured */
static char g_zSkipped[1024]; /* the sides skipped and why, for the report */

/* A side that cannot run: one line on stdout now, and one in the report. */
static void skipped(const char *zSide, const char *zWhy){
  size_t n = strlen(g_zSkipped);
  printf("bench-peers: SKIPPED: %s: %s\n", zSide, zWhy);
  fflush(stdout);
  snprintf(g_zSkipped+n, sizeof(g_zSkipped)-n, "%s%s (%s)", n ? "; " : "", zSide, zWhy);
}

static void report_compare(void){
  static const int aOp[] = { OP_CONSUME, OP_PAIR };
  int iOp, bDur, iCli, s, r;
  if( g_zSkipped[0] ) out("Not measured: %s.\n\n", g_zSkipped);
  out("Unfair in sqlite-quota's favour: the peers' scripts do less (no calendar periods, no hold"
      " expiry or sweeping, no idempotency, no parent chains, no input checks), and they pay a"
      " loopback round trip per call (a wake-up of a process on the other vCPU: the one-vCPU Redis"
      " rows, server and clients on CPU 0 with taskset -c 0, show the cost without it)."
      " Unfair against it: WAL NORMAL fsyncs only at checkpoints, so a power loss can take"
      " acknowledged calls for an unbounded time under low traffic, where AOF everysec bounds"
      " that to about 1-2 s; only WAL FULL / AOF always / synchronous_commit on are the same"
      " promise. SQLite's automatic checkpoint runs inside the call that crosses 1000 WAL"
      " frames; Redis and PostgreSQL do that work in background threads and processes.\n\n");
  for(iOp=0; iOp<2; iOp++){
    for(bDur=0; bDur<2; bDur++){
      out("## %s, %s\n\n", aOp[iOp]==OP_CONSUME ? "consume (check, add 1, audit row)" :
          "reserve 4 + settle 3 (one op = the pair; latency of the pair)",
          bDur ? "durable: WAL FULL / AOF always / synchronous_commit on"
               : "relaxed: WAL NORMAL / AOF everysec / synchronous_commit off");
      out("| side | clients | ops/s (median) | min-max | x 1 client | p50 us | p99 us | p99.9 us | max us | errors |\n");
      out("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
      for(s=0; s<NSYS; s++){
        int eOp2;
        for(eOp2=0; eOp2<3; eOp2++){
          Case *p;
          if( eOp2!=aOp[iOp] && !(aOp[iOp]==OP_CONSUME && eOp2==OP_TXN) ) continue;
          p = find_case(s, eOp2, bDur);
          if( p==0 ) continue;
          for(iCli=0; iCli<g.nCli; iCli++){
            const Hist *h = p->apHist[iCli];
            double aR[MAX_ROUND];
            out("| %s | %d | %s | %s-%s |", p->zLabel, g.aCli[iCli],
                fmt_int(median(p->aOps[iCli], g.nRound)), fmt_int(vmin(p->aOps[iCli], g.nRound)),
                fmt_int(vmax(p->aOps[iCli], g.nRound)));
            if( iCli==0 ) out(" 1 |");
            else{
              for(r=0; r<g.nRound; r++) aR[r] = p->aOps[0][r]>0 ? p->aOps[iCli][r]/p->aOps[0][r] : 0;
              out(" %.2fx |", median(aR, g.nRound));
            }
            out(" %s | %s | %s | %s |", fmt_us(hist_quantile(h, 0.5)), fmt_us(hist_quantile(h, 0.99)),
                fmt_us(hist_quantile(h, 0.999)), fmt_us((double)h->mx/1000.0));
            out_errors(p, iCli);
            out("\n");
          }
        }
      }
      out("\n");
      /* Ratios */
      if( find_case(SYS_SQLITE, aOp[iOp], bDur) ){
        Case *pQ = find_case(SYS_SQLITE, aOp[iOp], bDur);
        int nPeer = 0;
        for(s=1; s<NSYS; s++){
          int eOp2;
          for(eOp2=0; eOp2<3; eOp2++){
            if( eOp2!=aOp[iOp] && !(aOp[iOp]==OP_CONSUME && eOp2==OP_TXN) ) continue;
            if( find_case(s, eOp2, bDur) ) nPeer++;
          }
        }
        if( nPeer ){
          out("sqlite-quota / peer, ops/s: median of per-round ratios (per-round ratios).\n\n");
          out("| sqlite-quota %s / | clients | median ratio | per-round ratios |\n", dur_name(SYS_SQLITE, bDur));
          out("|---|---:|---:|---|\n");
          for(s=1; s<NSYS; s++){
            int eOp2;
            for(eOp2=0; eOp2<3; eOp2++){
              Case *pP;
              if( eOp2!=aOp[iOp] && !(aOp[iOp]==OP_CONSUME && eOp2==OP_TXN) ) continue;
              pP = find_case(s, eOp2, bDur);
              if( pP==0 ) continue;
              for(iCli=0; iCli<g.nCli; iCli++){
                double aR[MAX_ROUND];
                for(r=0; r<g.nRound; r++){
                  aR[r] = pP->aOps[iCli][r]>0 ? pQ->aOps[iCli][r]/pP->aOps[iCli][r] : 0;
                }
                out("| %s | %d | %.2fx | ", pP->zLabel, g.aCli[iCli], median(aR, g.nRound));
                out_ratio_list(aR, g.nRound);
                out(" |\n");
              }
            }
          }
          out("\n");
        }
      }
    }
  }
}

/* Each side's stored totals against the ops it granted. */
static void check_totals(void){
  long long aC[NSYS], aP[NSYS];
  int s, i;
  out("## Totals: no charge lost or doubled\n\n");
  for(s=0; s<NSYS; s++){
    aC[s] = aP[s] = 0;
    for(i=0; i<g_nCase; i++){
      if( g_aCase[i].eSys!=s ) continue;
      aC[s] += g_aCase[i].nOkOp[OP_CONSUME] + g_aCase[i].nOkOp[OP_TXN];
      aP[s] += g_aCase[i].nOkOp[OP_PAIR];
    }
  }
  if( g_abSys[SYS_SQLITE] ){
    sqlite3 *db = sq_open(g_zDb, SQLITE_OPEN_READWRITE);
    long long nUsed = sq_int(db, "SELECT sum(used) FROM quota");
    long long nRes = sq_int(db, "SELECT sum(reserved) FROM quota");
    long long nRows = sq_int(db, "SELECT count(*) FROM quota_ledger");
    long long nAmt = sq_int(db, "SELECT sum(amount) FROM quota_ledger");
    int bOk = nUsed==aC[0]+3*aP[0] && nRes==0 && nRows==aC[0]+aP[0] && nAmt==nUsed;
    out("- sqlite-quota: %s consumes and %s pairs granted; stored used %s, reserved %s,"
        " ledger rows %s (amount %s): %s.\n", fmt_int((double)aC[0]), fmt_int((double)aP[0]),
        fmt_int((double)nUsed), fmt_int((double)nRes), fmt_int((double)nRows), fmt_int((double)nAmt),
        bOk ? "match" : "**MISMATCH**");
    sq_close(db);
  }
#ifdef PEERS_REDIS
  for(s=SYS_REDIS; s<=SYS_PINNED; s++){
    long long nUsed, nRes, nLen;
    if( !g_abSys[s] ) continue;
    redis_totals(s==SYS_REDIS ? g.zRedis : g.zPinned, &nUsed, &nRes, &nLen);
    out("- %s: %s consumes and %s pairs granted; stored used %s, reserved %s, stream entries %s: %s.\n",
        s==SYS_REDIS ? "Redis" : "Redis, one vCPU", fmt_int((double)aC[s]), fmt_int((double)aP[s]),
        fmt_int((double)nUsed), fmt_int((double)nRes), fmt_int((double)nLen),
        (nUsed==aC[s]+3*aP[s] && nRes==0 && nLen==aC[s]+aP[s]) ? "match" : "**MISMATCH**");
  }
#endif
#ifdef PEERS_PG
  if( g_abSys[SYS_PG] ){
    char zErr[512];
    PGconn *c = pg_connect(zErr, sizeof(zErr));
    long long nUsed, nRes, nRows, nAmt;
    if( c==0 ) die("PostgreSQL: %s", zErr);
    nUsed = pg_int(c, "SELECT sum(used) FROM q");
    nRes = pg_int(c, "SELECT sum(reserved) FROM q");
    nRows = pg_int(c, "SELECT count(*) FROM ledger");
    nAmt = pg_int(c, "SELECT sum(amount) FROM ledger");
    out("- PostgreSQL: %s consumes and %s pairs granted; stored used %s, reserved %s,"
        " ledger rows %s (amount %s): %s.\n", fmt_int((double)aC[SYS_PG]), fmt_int((double)aP[SYS_PG]),
        fmt_int((double)nUsed), fmt_int((double)nRes), fmt_int((double)nRows), fmt_int((double)nAmt),
        (nUsed==aC[SYS_PG]+3*aP[SYS_PG] && nRes==0 && nRows==aC[SYS_PG]+aP[SYS_PG] && nAmt==nUsed)
          ? "match" : "**MISMATCH**");
    PQfinish(c);
  }
#endif
  out("\n");
}

/* ------------------------------------------------------------------------
** The diagnosis report
*/
static void report_diag(void){
  int i, iCli, r;
  Case *pRedis = 0, *pDef = 0;
  for(i=0; i<g_nCase; i++){
    if( g_aCase[i].eSys==SYS_REDIS ) pRedis = &g_aCase[i];
    if( g_aCase[i].iVar==0 ) pDef = &g_aCase[i];
  }
  out("quota_consume on WAL synchronous=%s, 1,000 keys at random. ops/s: granted calls of"
      " all processes / seconds, median over rounds; x 1 proc: median of per-round ratios"
      " to the same variant's 1 process.%s Latency per call, all calls of all rounds pooled.%s\n\n",
      g.bFull ? "FULL" : "NORMAL",
      pDef ? " x default: median of per-round ratios to the default variant with the same"
             " process count." : "",
      pRedis ? (g.bFull ? " x Redis: per-round ratio to Redis+Lua consume (AOF always) with the"
                          " same client count, median."
                        : " x Redis: per-round ratio to Redis+Lua consume (AOF everysec) with the"
                          " same client count, median.") : "");
  out("| variant | procs | ops/s | x 1 proc | per-round x 1 proc |%s%s p50 us | p99 us | p99.9 us | max us | calls > %s | > 20 ms | errors |\n",
      pDef ? " x default |" : "", pRedis ? " x Redis |" : "", slowLabel());
  out("|---|---:|---:|---:|---|%s%s---:|---:|---:|---:|---:|---:|---:|\n", pDef ? "---:|" : "", pRedis ? "---:|" : "");
  for(i=0; i<g_nCase; i++){
    Case *p = &g_aCase[i];
    for(iCli=0; iCli<g.nCli; iCli++){
      const Hist *h = p->apHist[iCli];
      double aR[MAX_ROUND];
      out("| %s | %d | %s |", p->iVar>=0 ? g_aVar[p->iVar].zId : g.bFull ? "Redis+Lua always" : "Redis+Lua everysec",
          g.aCli[iCli], fmt_int(median(p->aOps[iCli], g.nRound)));
      if( iCli==0 && g.aCli[0]==1 ){
        out(" 1 | - |");
      }else{
        for(r=0; r<g.nRound; r++) aR[r] = p->aOps[0][r]>0 ? p->aOps[iCli][r]/p->aOps[0][r] : 0;
        out(" %.2fx | ", median(aR, g.nRound));
        out_ratio_list(aR, g.nRound);
        out(" |");
      }
      if( pDef ){
        if( p==pDef || p->iVar<0 ) out(" - |");
        else{
          for(r=0; r<g.nRound; r++){
            aR[r] = pDef->aOps[iCli][r]>0 ? p->aOps[iCli][r]/pDef->aOps[iCli][r] : 0;
          }
          out(" %.2fx |", median(aR, g.nRound));
        }
      }
      if( pRedis ){
        if( p==pRedis ) out(" - |");
        else{
          for(r=0; r<g.nRound; r++){
            aR[r] = pRedis->aOps[iCli][r]>0 ? p->aOps[iCli][r]/pRedis->aOps[iCli][r] : 0;
          }
          out(" %.2fx |", median(aR, g.nRound));
        }
      }
      out(" %s | %s | %s | %s | %s | %s |", fmt_us(hist_quantile(h, 0.5)),
          fmt_us(hist_quantile(h, 0.99)), fmt_us(hist_quantile(h, 0.999)),
          fmt_us((double)h->mx/1000.0), fmt_int((double)p->aSlow[iCli]),
          fmt_int((double)p->aVerySlow[iCli]));
      out_errors(p, iCli);
      out("\n");
    }
  }
  out("\nWhere the time went (sums over all rounds and processes). In-call checkpoints: run by"
      " a commit that left >= 1000 frames in the log (wal_hook); background: the checkpointer"
      " process, every %d ms: a PASSIVE checkpoint, then a RESTART one when the log held"
      " %d frames or more (the writers wait for that one; busy: it gave up after 5 s). Writebacks:"
      " sync_file_range(SYNC_FILE_RANGE_WRITE) of the -wal file by the helper process every"
      " %d ms. Busy: invocations of the busy handler and the time slept in it."
      " Slow calls (> %s) that ran a checkpoint, else slept in the busy handler, else blocked"
      " in the kernel (a voluntary context switch: I/O, a file lock), else were preempted (an"
      " involuntary one only), else none of these. WAL MB: the largest -wal file one process"
      " saw (every 256 calls; each case starts from an empty log). Misses: pages a call"
      " read from the files (SQLITE_DBSTATUS_CACHE_MISS), per call.\n\n", g.msCkpt, g.nRestartFrames, g.msFlush,
      slowLabel());
  out("| variant | procs | calls | in-call checkpoints | mean / max ms | frames in log at them |"
      " background checkpoints | mean / max ms | busy calls | busy ms per call | longest wait: retries / ms |"
      " RESTARTs (busy) | mean / max ms | writebacks | mean / max ms | slow: ckpt / busy / blocked / preempted / other | WAL MB | misses per call |\n");
  out("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n");
  for(i=0; i<g_nCase; i++){
    Case *p = &g_aCase[i];
    if( p->iVar<0 || !g_aVar[p->iVar].bHook ) continue;
    for(iCli=0; iCli<g.nCli; iCli++){
      long long nCall = p->aOps1[iCli];
      long long nOther = p->aSlow[iCli]-p->aSlowCkpt[iCli]-p->aSlowBusy[iCli]
                         -p->aSlowBlock[iCli]-p->aSlowPreempt[iCli];
      out("| %s | %d | %s | %s | %.2f / %.2f | %.0f | %s | %.2f / %.2f | %s | %.4f | %lld / %.1f | %s (%lld) | %.2f / %.2f | %s | %.3f / %.2f | %s / %s / %s / %s / %s | %.1f | %.2f |\n",
          g_aVar[p->iVar].zId, g.aCli[iCli], fmt_int((double)nCall),
          fmt_int((double)p->aCkpt[iCli]),
          p->aCkpt[iCli] ? (double)p->aNsCkpt[iCli]/(double)p->aCkpt[iCli]/1e6 : 0.0,
          (double)p->aMxCkpt[iCli]/1e6,
          p->aCkpt[iCli] ? (double)p->aFrameCkpt[iCli]/(double)p->aCkpt[iCli] : 0.0,
          fmt_int((double)p->aBgCkpt[iCli]),
          p->aBgCkpt[iCli] ? (double)p->aNsBg[iCli]/(double)p->aBgCkpt[iCli]/1e6 : 0.0,
          (double)p->aMxBg[iCli]/1e6,
          fmt_int((double)p->aBusy[iCli]),
          nCall ? (double)p->aNsBusy[iCli]/(double)nCall/1e6 : 0.0,
          p->aMxRetry[iCli], (double)p->aMxBusyNs[iCli]/1e6,
          fmt_int((double)p->aRestart[iCli]), p->aRestartBusy[iCli],
          p->aRestart[iCli] ? (double)p->aNsRestart[iCli]/(double)p->aRestart[iCli]/1e6 : 0.0,
          (double)p->aMxRestart[iCli]/1e6,
          fmt_int((double)p->aFlush[iCli]),
          p->aFlush[iCli] ? (double)p->aNsFlush[iCli]/(double)p->aFlush[iCli]/1e6 : 0.0,
          (double)p->aMxFlush[iCli]/1e6,
          fmt_int((double)p->aSlowCkpt[iCli]), fmt_int((double)p->aSlowBusy[iCli]),
          fmt_int((double)p->aSlowBlock[iCli]), fmt_int((double)p->aSlowPreempt[iCli]),
          fmt_int((double)nOther), (double)p->aWalMax[iCli]/1048576.0,
          nCall ? (double)p->aMiss[iCli]/(double)nCall : 0.0);
    }
  }
  out("\n");
}

/* ------------------------------------------------------------------------
** Main
*/
static void usage(void){
  fprintf(stderr,
    "usage: peers [--quick] [--rounds N] [--seconds S] [--clients LIST] [--dir DIR]\n"
    "             [--redis HOST:PORT] [--redis-pinned HOST:PORT] [--pg CONNINFO]\n"
    "             [--skip-redis WHY] [--skip-pinned WHY] [--skip-pg WHY]\n"
    "             [--only sqlite,redis,pinned,pg]\n"
    "             [--diag [--full] [--variants LIST] [--ckpt-ms N] [--restart-frames N]\n"
    "                     [--flush-ms N] [--checkpointer PATH] [--slow-us N]]\n");
  exit(2);
}

static void parse_list(const char *z, int *a, int *pn){
  *pn = 0;
  while( *z ){
    int v = atoi(z);
    if( v<1 || v>MAX_CLIENT || *pn>=MAX_NCLI ) die("bad --clients entry in '%s' (1..%d, at most %d)", z, MAX_CLIENT, MAX_NCLI);
    a[(*pn)++] = v;
    z += strcspn(z, ",");
    if( *z==',' ) z++;
  }
}

static int in_list(const char *zList, const char *zWord){
  size_t n = strlen(zWord);
  const char *z = zList;
  while( *z ){
    size_t k = strcspn(z, ",");
    if( k==n && strncmp(z, zWord, n)==0 ) return 1;
    z += k;
    if( *z==',' ) z++;
  }
  return 0;
}

int main(int argc, char **argv){
  int i, r, rc, bCli = 0, bSec = 0;
  char zOnly[128] = "";
  long long t0 = now_ns();
  char *zSlotMem;

  memset(&g, 0, sizeof(g));
  g.nRound = 5;
  g.rSec = 1.5;
  g.msCkpt = 50;
  g.nRestartFrames = 4000;
  g.zCheckpointer = "build/quota-checkpointer";
  g.msFlush = 1;
  g.usSlow = SLOW_US;
  snprintf(g.zDir, sizeof(g.zDir), "build/peers/sqlite");
  {
    size_t n = 0;
    n += (size_t)snprintf(g.zCmd, sizeof(g.zCmd), "build/peers/peers");
    for(i=1; i<argc && n<sizeof(g.zCmd); i++){
      n += (size_t)snprintf(g.zCmd+n, sizeof(g.zCmd)-n, strchr(argv[i], ' ') ? " '%s'" : " %s", argv[i]);
    }
  }
  for(i=1; i<argc; i++){
    const char *z = argv[i];
    const char *zArg = i+1<argc ? argv[i+1] : 0;
    if( strcmp(z, "--quick")==0 ){ g.bQuick = 1; continue; }
    if( strcmp(z, "--diag")==0 ){ g.bDiag = 1; continue; }
    if( strcmp(z, "--full")==0 ){ g.bFull = 1; continue; }
    if( zArg==0 ) usage();
    i++;
    if( strcmp(z, "--rounds")==0 ) g.nRound = atoi(zArg);
    else if( strcmp(z, "--seconds")==0 ){ g.rSec = atof(zArg); bSec = 1; }
    else if( strcmp(z, "--clients")==0 ){ parse_list(zArg, g.aCli, &g.nCli); bCli = 1; }
    else if( strcmp(z, "--dir")==0 ) snprintf(g.zDir, sizeof(g.zDir), "%s", zArg);
    else if( strcmp(z, "--redis")==0 ) snprintf(g.zRedis, sizeof(g.zRedis), "%s", zArg);
    else if( strcmp(z, "--redis-pinned")==0 ) snprintf(g.zPinned, sizeof(g.zPinned), "%s", zArg);
    else if( strcmp(z, "--pg")==0 ) snprintf(g.zPg, sizeof(g.zPg), "%s", zArg);
    else if( strcmp(z, "--skip-redis")==0 ) snprintf(g.zSkipRedis, sizeof(g.zSkipRedis), "%s", zArg);
    else if( strcmp(z, "--skip-pg")==0 ) snprintf(g.zSkipPg, sizeof(g.zSkipPg), "%s", zArg);
    else if( strcmp(z, "--skip-pinned")==0 ) snprintf(g.zSkipPinned, sizeof(g.zSkipPinned), "%s", zArg);
    else if( strcmp(z, "--only")==0 ) snprintf(zOnly, sizeof(zOnly), "%s", zArg);
    else if( strcmp(z, "--variants")==0 ) snprintf(g.zVariants, sizeof(g.zVariants), "%s", zArg);
    else if( strcmp(z, "--ckpt-ms")==0 ) g.msCkpt = atoi(zArg);
    else if( strcmp(z, "--restart-frames")==0 ) g.nRestartFrames = atoi(zArg);
    else if( strcmp(z, "--checkpointer")==0 ) g.zCheckpointer = zArg;
    else if( strcmp(z, "--flush-ms")==0 ) g.msFlush = atoi(zArg);
    else if( strcmp(z, "--slow-us")==0 ) g.usSlow = atoi(zArg);
    else usage();
  }
  if( g.bQuick && !bSec ) g.rSec = 0.2;
  if( g.nRound<1 || g.nRound>MAX_ROUND ) die("--rounds must be 1..%d", MAX_ROUND);
  if( g.rSec<=0 || g.rSec>600 ) die("--seconds must be in (0, 600]");
  if( g.msCkpt<1 ) die("--ckpt-ms must be at least 1");
  if( g.msFlush<1 ) die("--flush-ms must be at least 1");
  if( g.usSlow<1 ) die("--slow-us must be at least 1");
  if( g.nRestartFrames<1 ) die("--restart-frames must be at least 1");
  if( !bCli ){
    static const int aDef[] = { 1, 4, 16 }, aDiag[] = { 1, 2, 4, 16 };
    const int *a = g.bDiag ? aDiag : aDef;
    g.nCli = g.bDiag ? 4 : 3;
    for(i=0; i<g.nCli; i++) g.aCli[i] = a[i];
  }
  for(i=0; i<NSYS; i++) g.abOnly[i] = zOnly[0]==0;
  if( zOnly[0] ){
    g.abOnly[SYS_SQLITE] = in_list(zOnly, "sqlite");
    g.abOnly[SYS_REDIS] = in_list(zOnly, "redis");
    g.abOnly[SYS_PINNED] = in_list(zOnly, "pinned");
    g.abOnly[SYS_PG] = in_list(zOnly, "pg");
  }

  loadavg(g_zLoadStart, sizeof(g_zLoadStart));
  rc = sqlite3_auto_extension((void(*)(void))sqlite3_quota_init);
  if( rc!=SQLITE_OK ) die("sqlite3_auto_extension: %s", sqlite3_errstr(rc));
  zSlotMem = mmap(0, sizeof(Slot)*(MAX_CLIENT+1), PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0);
  if( zSlotMem==MAP_FAILED ) die("mmap: %s", strerror(errno));
  g_aSlot = (Slot*)zSlotMem;

  /* Which sides can run */
  g_abSys[SYS_SQLITE] = g.abOnly[SYS_SQLITE] || g.bDiag;
#ifdef PEERS_REDIS
  {
    char zErr[256];
    int s;
    for(s=SYS_REDIS; s<=SYS_PINNED; s++){
      const char *zAddr = s==SYS_REDIS ? g.zRedis : g.zPinned;
      redisContext *c;
      if( !g.abOnly[s] || (g.bDiag && s==SYS_PINNED) ) continue;
      const char *zSkip = s==SYS_REDIS ? g.zSkipRedis : g.zSkipPinned;
      const char *zSide = s==SYS_REDIS ? "Redis" : "Redis on one vCPU";
      if( zAddr[0]==0 ){
        skipped(zSide, zSkip[0] ? zSkip : "no server given (--redis, --redis-pinned)");
        continue;
      }
      c = redis_connect(zAddr, zErr, sizeof(zErr));
      if( c==0 ){
        skipped(zSide, zErr);
        continue;
      }
      redis_setup(c, s==SYS_REDIS ? 0 : 1);
      redisFree(c);
      g_abSys[s] = 1;
    }
  }
#else
  if( g.abOnly[SYS_REDIS] ){
    skipped("Redis", g.zSkipRedis[0] ? g.zSkipRedis : "built without hiredis (libhiredis-dev)");
  }
  if( g.abOnly[SYS_PINNED] && !g.bDiag ){
    skipped("Redis on one vCPU", g.zSkipPinned[0] ? g.zSkipPinned : "built without hiredis (libhiredis-dev)");
  }
#endif
#ifdef PEERS_PG
  if( g.abOnly[SYS_PG] && !g.bDiag ){
    if( g.zPg[0]==0 ){
      skipped("PostgreSQL", g.zSkipPg[0] ? g.zSkipPg : "no server given (--pg)");
    }else{
      char zErr[512];
      PGconn *c = pg_connect(zErr, sizeof(zErr));
      if( c==0 ){
        skipped("PostgreSQL", zErr);
      }else{
        pg_setup(c);
        PQfinish(c);
        g_abSys[SYS_PG] = 1;
      }
    }
  }
#else
  if( g.abOnly[SYS_PG] && !g.bDiag ){
    skipped("PostgreSQL", g.zSkipPg[0] ? g.zSkipPg : "built without libpq (libpq-dev)");
  }
#endif
  if( g_abSys[SYS_SQLITE] ) sqlite_setup();

  /* The cases, in the order a round runs them: each sqlite-quota case
  ** beside the peers it is compared with. */
  if( g.bDiag ){
    for(i=0; i<NVAR; i++){
      if( g.zVariants[0] && !in_list(g.zVariants, g_aVar[i].zId) ) continue;
      add_case(SYS_SQLITE, OP_CONSUME, g.bFull, i);
    }
    if( g_abSys[SYS_REDIS] ) add_case(SYS_REDIS, OP_CONSUME, g.bFull, -1);
    if( g_nCase==0 ) die("no variant matches --variants %s", g.zVariants);
  }else{
    static const int aOp[] = { OP_CONSUME, OP_TXN, OP_PAIR };
    int iOp, bDur, s;
    for(iOp=0; iOp<3; iOp++){
      for(bDur=0; bDur<2; bDur++){
        for(s=0; s<NSYS; s++){
          if( !g_abSys[s] ) continue;
          if( aOp[iOp]==OP_TXN && s!=SYS_PG ) continue;
          add_case(s, aOp[iOp], bDur, -1);
        }
      }
    }
    if( g_nCase==0 ) die("nothing to measure");
  }

  /* Rounds: every (client count, case) once per round; each round starts
  ** at a different place in the list. */
  {
    int nSlot = g_nCase * g.nCli;
    for(r=0; r<g.nRound; r++){
      int k, iStart = (r * nSlot) / g.nRound;
      progress("round %d/%d: ", r+1, g.nRound);
      for(k=0; k<nSlot; k++){
        int j = (iStart + k) % nSlot;
        int iCli = j / g_nCase, iCase = j % g_nCase;
        run_case(&g_aCase[iCase], iCli, r);
        progress(".");
      }
      progress(" %.0f s\n", (double)(now_ns()-t0)*1e-9);
    }
  }

  if( g.bDiag ){
    out_header("sqlite-quota: tail latency and processes (build/peers/peers --diag)", (double)(now_ns()-t0)*1e-9);
    report_diag();
  }else{
    out_header("sqlite-quota next to Redis and PostgreSQL (make bench-peers)", (double)(now_ns()-t0)*1e-9);
    report_compare();
    check_totals();
  }
  fwrite(g_zOut, 1, g_nOut, stdout);
  fflush(stdout);
  for(i=0; i<g_nCase; i++){
    int j;
    for(j=0; j<g.nCli; j++) free(g_aCase[i].apHist[j]);
  }
  free(g_zOut);
  munmap(zSlotMem, sizeof(Slot)*(MAX_CLIENT+1));
  if( g_abSys[SYS_SQLITE] ) sqlite_remove_files();
  return 0;
}
