/*
** test/stress.c: multi-process stress test of sqlite-quota with SIGKILL.
**
**   build/stress DBFILE [--journal wal|delete] [--procs N] [--seconds S]
**                [--seed X] [--kill-ms M] [--no-parent] [--sync full|normal]
**                [--hold-ttl SECONDS] [--observe-ms MS] [--busy-ms MS]
**                [--schema-ms MS] [--quiet] [--check-only]
**
** Defaults: wal, 4 procs, 10 s, kill every 250 ms, parents on, synchronous
** FULL, hold_ttl 30 s, a seed from the clock (printed first: --seed replays
** the same choice of operations; timing still differs between runs).
**
** DBFILE (and DBFILE-wal, -shm, -journal, DBFILE.w*.log, DBFILE.topups,
** DBFILE.obs) is deleted and recreated.  The run:
**
**   - creates `quota` (hold_ttl) with a key tree
**         org (month, capped, "loose")
**          +- acct (lifetime, capped, "strict")
**          |    +- s:month (month, capped, strict)
**          |    +- s:life  (lifetime, capped, strict)
**          +- l:month (month, capped, loose)
**          +- l:life  (lifetime, cap NULL: metered, loose)
**         s:solo (month, capped, strict, no parent)
**          sh     (month, capped, loose, enforce 'shadow': never denies;
**                  under org; no top-ups)
**     (--no-parent: every key stands alone).  org, acct, s:month, l:life and
**     sh have alerts (percents of caps that top-ups move, and units), so
**     their charges write quota_events.  Strict keys only ever get
**     reserve, consume, settle at or below the hold (never after its ttl
**     minus a safety margin) and release, so `used + reserved <= cap` must
**     hold for them at every instant.  Loose keys also get record, settle
**     above the hold and late settles (short ttls).
**   - forks an observer process that reads `SELECT ... FROM quota`
**     continuously and checks invariant 2 on strict keys, tops caps up when
**     they run low (logging, in the same write transaction, the highest
**     ledger id the new cap follows, so the reference model knows every
**     row's cap) and, about once a second, checks invariant 1 (used = sum of
**     ledger charges of the key and its descendants in the key's current
**     period; reserved = sum of live holds) on one read snapshot;
**   - forks N workers that loop over random operations (the seed drives the
**     choice) with request ids, retries and replays.  Each worker appends to
**     DBFILE.wSLOT.log, with one write(2) per line, an intent line before
**     every call and an ack or error line after it.  A respawned worker
**     reads its slot's log and finishes what its killed predecessor left:
**     it repeats unacknowledged calls that carry a request id (the same
**     arguments) and ends the holds it left open;
**   - kills a random worker with SIGKILL every ~M ms (M/2..3M/2) and
**     respawns it;
**   - at the end stops everything, reopens the file and checks:
**       1. used / reserved per key against the ledger and the live holds,
**          and a replay of the ledger through a reference model of the
**          rules (used per key, caps at every row, over/late flags);
**       2. every acknowledged consume/record/settle is in the ledger (and
**          every acknowledged reserve in quota_holds): lost acks;
**       3. every ledger row comes from a call that was made: phantoms;
**       4. no request id and no hold has two ledger rows; a repeated
**          request id returned the original outcome;
**       5. PRAGMA integrity_check is ok;
**       6. the threshold events are exactly those the replay of the ledger
**          expects (an event exists exactly when a committed charge took a
**          level to its threshold, once per period; a top-up of the cap
**          re-arms what it moves above used), with the charge's ledger id,
**          used and cap; every 'exhausted' and 'shadow_denied' event names
**          a committed charge or hold of its key's subtree, once per
**          period, shadow_denied only on the shadow key;
**     and prints a summary ending "result: PASS" or "result: FAIL".
**     Violations are listed on stderr (up to 8-10 of each kind).
**
** The processes: this one (spawns, kills, respawns; it holds no database
** connection while children run, so no connection crosses a fork), the
** observer, the workers.  Every call is made with busy_timeout 5000 in a
** statement of its own (`SELECT quota_x(...)`).  --busy-ms lowers the
** timeout (default 5000) to provoke SQLITE_BUSY and test the error paths.  A worker whose
** sqlite3_open_v2() fails with SQLITE_BUSY (the auto-extension's init touched
** the locked database) retries the open; each such failure is counted as
** open_busy and fails the run.
**
** --schema-ms M: the observer also changes the schema every ~M ms (creates
** a table stress_schema_N, drops the one before), as another application
** sharing the file would; every worker's next call then meets SQLITE_SCHEMA
** and re-prepares.  Off by default.
**
** --check-only re-runs the final checks on the files a run left (give the
** same --procs and --no-parent).  STRESS_TIMING=1 times each check.
**
** Exit status: 0 all checks passed, 1 a check failed, 2 usage or setup error.
*/
#define _GNU_SOURCE 1
#include <sqlite3.h>
#include "quota.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#define DRIVER_PROG "stress"
#include "driver_util.h"

typedef sqlite3_int64 i64;

/* ------------------------------------------------------------------ */
/* Configuration                                                       */

#define MAX_PROCS   64
#define MAX_HOLDS   64     /* open holds a worker keeps (in the loop: < 8) */
#define RING        64     /* remembered request-id calls for replays */
#define MARGIN_MS   12000  /* strict holds: settle only this long before expiry */

static struct {
  const char *db;
  int wal;
  int procs;
  int seconds;
  uint64_t seed;
  int kill_ms;
  int parents;
  int sync_full;
  int hold_ttl;
  int observe_ms;
  int quiet;
  int check_only;
  int busy_ms;
  int schema_ms;
} cfg;

enum { P_LIFE = 0, P_MONTH = 1 };

typedef struct KeyDef {
  const char *name;
  int strict;         /* only reserve/consume/settle<=hold/release */
  int period;         /* P_LIFE or P_MONTH */
  i64 cap;            /* initial cap, -1 = NULL */
  int parent;         /* index in KEYS, -1 = none */
  i64 step;           /* top-up step, -1 = never topped up */
  const char *alert;  /* its alert list, canonical (or 0) */
  int shadow;         /* enforce = 'shadow' */
} KeyDef;

static const KeyDef KEYS[] = {
  { "org",     0, P_MONTH, 20000, -1, 12000, "50%, 80%, 100%", 0 },
  { "acct",    1, P_LIFE,   1500,  0,   600, "90%", 0 },
  { "s:month", 1, P_MONTH,  1000,  1,   400, "75%, 500", 0 },
  { "s:life",  1, P_LIFE,    800,  1,   400, 0, 0 },
  { "s:solo",  1, P_MONTH,   600, -1,   400, 0, 0 },
  { "l:month", 0, P_MONTH,  1500,  0,  2000, 0, 0 },
  { "l:life",  0, P_LIFE,     -1,  0,    0, "100, 1000, 10000", 0 },
  { "sh",      0, P_MONTH,   300,  0,   -1, "100%", 1 },
};
#define NKEYS ((int)(sizeof(KEYS)/sizeof(KEYS[0])))
#define LOW_WATER 200
#define TOPUP_MS  50

static int parent_of(int k){ return cfg.parents ? KEYS[k].parent : -1; }

/* The thresholds of each key's alert: N units, or -N for N% (the text is
** canonical, so these are in the order events are sent). */
#define MAX_THR 8
static i64 g_thr[16][MAX_THR];
static int g_nthr[16];
static void parse_alerts(void){
  int k;
  for(k=0; k<NKEYS; k++){
    const char *z = KEYS[k].alert;
    g_nthr[k] = 0;
    while( z && *z ){
      i64 v = 0;
      while( *z==' ' || *z==',' ) z++;
      while( *z>='0' && *z<='9' ) v = v*10 + (*z++ - '0');
      if( *z=='%' ){ v = -v; z++; }
      if( v!=0 && g_nthr[k]<MAX_THR ) g_thr[k][g_nthr[k]++] = v;
    }
  }
}
/* The units at which threshold i of key k is reached under cap (-1: NULL). */
static i64 thr_units(int k, int i, i64 cap){
  i64 v = g_thr[k][i];
  if( v>0 ) return v;
  if( cap<0 ) return -1;
  return (cap*(-v) + 99)/100;
}
static void thr_text(int k, int i, char *z, size_t n){
  i64 v = g_thr[k][i];
  if( v<0 ) snprintf(z, n, "%lld%%", (long long)-v); else snprintf(z, n, "%lld", (long long)v);
}

static int key_index(const char *name){
  int i;
  if( name==0 ) return -1;
  for(i=0; i<NKEYS; i++) if( strcmp(KEYS[i].name, name)==0 ) return i;
  return -1;
}

/* 1 if a is k or an ancestor of k */
static int covers(int a, int k){
  while( k>=0 ){ if( k==a ) return 1; k = parent_of(k); }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static i64 now_ms(void){
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (i64)ts.tv_sec*1000 + ts.tv_nsec/1000000;
}

static void sleep_ms(int ms){
  struct timespec ts;
  if( ms<=0 ) return;
  ts.tv_sec = ms/1000;
  ts.tv_nsec = (long)(ms%1000)*1000000L;
  while( nanosleep(&ts, &ts)!=0 && errno==EINTR ){}
}

/* A worker's seed from the run's seed, its slot and its incarnation. */
static uint64_t mix3(uint64_t a, uint64_t b, uint64_t c){
  Rng r; r.s = a ^ (b*0x100000001B3ULL) ^ (c<<32) ^ (c>>7);
  rngNext(&r); return rngNext(&r);
}

static void write_all(int fd, const char *buf, size_t n){
  while( n>0 ){
    ssize_t w = write(fd, buf, n);
    if( w<0 ){ if( errno==EINTR ) continue; return; }
    buf += w; n -= (size_t)w;
  }
}

/* One line, one write(2) (O_APPEND): a SIGKILL cannot split it. */
static void wlog(int fd, const char *fmt, ...){
  char buf[1024];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if( n<0 ) return;
  if( n>=(int)sizeof(buf) ){ n = (int)sizeof(buf)-1; buf[n-1] = '\n'; }
  write_all(fd, buf, (size_t)n);
}

static void path_for(char *out, size_t n, const char *suffix){
  snprintf(out, n, "%s%s", cfg.db, suffix);
}
static void log_path(char *out, size_t n, int slot){
  snprintf(out, n, "%s.w%d.log", cfg.db, slot);
}

/* Run SQL, report an error on stderr; returns the sqlite result code */
static int exec_sql(sqlite3 *db, const char *sql){
  char *err = 0;
  int rc = sqlite3_exec(db, sql, 0, 0, &err);
  if( rc!=SQLITE_OK && !cfg.quiet && (rc & 0xff)!=SQLITE_BUSY ){
    fprintf(stderr, "stress: %s: %s\n", sql, err ? err : sqlite3_errstr(rc));
  }
  sqlite3_free(err);
  return rc;
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql){
  sqlite3_stmt *st = 0;
  if( sqlite3_prepare_v2(db, sql, -1, &st, 0)!=SQLITE_OK ){
    fprintf(stderr, "stress: cannot prepare %s: %s\n", sql, sqlite3_errmsg(db));
    return 0;
  }
  return st;
}

/*
** Open a connection to the stress database.  sqlite3_open_v2() runs the
** auto-extension; if that touches the database while another process holds
** a lock, the open itself fails with SQLITE_BUSY before any busy timeout can
** be set.  That is counted in *pnBusy (a finding: an application cannot
** avoid it) and the open is retried, so the rest of the run still tests.
*/
static sqlite3 *open_db_counted(int create, int *pnBusy){
  sqlite3 *db = 0;
  int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  int rc, tries = 0;
  while( (rc = sqlite3_open_v2(cfg.db, &db, flags, 0))!=SQLITE_OK ){
    if( (rc & 0xff)==SQLITE_BUSY && pnBusy && tries++<2000 ){
      (*pnBusy)++;
      sqlite3_close(db);
      db = 0;
      sleep_ms(5);
      continue;
    }
    fprintf(stderr, "stress: cannot open %s: %s\n", cfg.db, db ? sqlite3_errmsg(db) : "?");
    sqlite3_close(db);
    return 0;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, cfg.busy_ms);
  tries = 0;
  while( (rc = exec_sql(db, cfg.sync_full ? "PRAGMA synchronous=FULL"
                                          : "PRAGMA synchronous=NORMAL"))!=SQLITE_OK ){
    if( (rc & 0xff)!=SQLITE_BUSY || tries++>=1000 ){
      fprintf(stderr, "stress: cannot set synchronous: %s\n", sqlite3_errmsg(db));
      sqlite3_close(db);
      return 0;
    }
    sleep_ms(5);
  }
  return db;
}
static sqlite3 *open_db(int create){ return open_db_counted(create, 0); }

static void fmt_time(char *out, size_t n, i64 t){
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
}

/* Period id of time t for a key: 0 for lifetime, year*12+month otherwise */
static i64 period_id(int k, i64 t){
  time_t tt = (time_t)t;
  struct tm tm;
  if( KEYS[k].period==P_LIFE ) return 0;
  gmtime_r(&tt, &tm);
  return (i64)(tm.tm_year+1900)*12 + tm.tm_mon;
}

/* ------------------------------------------------------------------ */
/* Operations                                                          */

enum { OP_RESERVE, OP_SETTLE, OP_RELEASE, OP_CONSUME, OP_RECORD,
       OP_CHECK, OP_STATUS, OP_PURGE, NOP };
static const char *const OPNAME[NOP] = {
  "reserve", "settle", "release", "consume", "record", "check", "status", "purge"
};

enum { S_RESERVE3, S_RESERVE4, S_SETTLE, S_RELEASE, S_CONSUME, S_RECORD,
       S_CHECK, S_STATUS, S_PURGE, NSTMT };
static const char *const STMT_SQL[NSTMT] = {
  "SELECT quota_reserve(?1, ?2, ?3)",
  "SELECT quota_reserve(?1, ?2, ?3, ?4)",
  "SELECT quota_settle(?1, ?2, ?3)",
  "SELECT quota_release(?1)",
  "SELECT quota_consume(?1, ?2, ?3, ?4)",
  "SELECT quota_record(?1, ?2, ?3, ?4)",
  "SELECT quota_check(?1, ?2)",
  "SELECT quota_status(?1, ?2)",
  "SELECT quota_purge()",
};

typedef struct Call {
  int op;
  int key;            /* key index (settle/release: the hold's key) */
  char rid[48];       /* "" = NULL */
  i64 amt;
  i64 hold;
  int ttl;            /* reserve: 0 = table default */
  int ttlt;           /* ttl passed as text "N seconds" */
  int meta;           /* pass a meta text */
} Call;

typedef struct Hold {
  i64 id;
  int key;
  i64 amt;
  int ttl;            /* 0 = table default */
  i64 t0;             /* ms of the earliest attempt of the reserve */
  i64 due;            /* ms: when to end it */
  int pend;           /* 0, or OP_SETTLE / OP_RELEASE retried with pend_amt */
  i64 pend_amt;
} Hold;

typedef struct Worker {
  int slot, inc;
  sqlite3 *db;
  int fd;
  Rng rng;
  int seq;
  int nrid;
  i64 last_ms;        /* ms of the last intent */
  sqlite3_stmt *st[NSTMT];
  Hold holds[MAX_HOLDS];
  int nheld;
  Call ring[RING];
  int ring_res_null[RING];
  i64 ring_res[RING];
  int nring;
} Worker;

static volatile sig_atomic_t g_stop = 0;
static void on_term(int sig){ (void)sig; g_stop = 1; }

static void meta_text(char *out, size_t n, const Call *c){
  snprintf(out, n, "{\"op\":\"%s\",\"rid\":\"%s\",\"n\":%lld}",
           OPNAME[c->op], c->rid[0] ? c->rid : "", (long long)c->amt);
}

/*
** Make one call.  Logs the intent first and the outcome after.  Returns
** SQLITE_OK and sets *pres / *pnull, or the extended error code.
*/
static int do_call(Worker *w, const Call *c, i64 *pres, int *pnull){
  sqlite3_stmt *st = 0;
  int seq = ++w->seq;
  char meta[256];
  char ttlbuf[32];
  char msg[300];
  const char *rid = c->rid[0] ? c->rid : 0;
  int rc, istext = 0;

  *pres = 0; *pnull = 1;
  w->last_ms = now_ms();
  wlog(w->fd, "I %d %d %s %s %s %lld %lld %d %d %d %lld\n", w->inc, seq,
       OPNAME[c->op], c->key>=0 ? KEYS[c->key].name : "-", rid ? rid : "-",
       (long long)c->amt, (long long)c->hold, c->ttl, c->ttlt, c->meta,
       (long long)w->last_ms);
  if( c->meta ) meta_text(meta, sizeof(meta), c);
  switch( c->op ){
    case OP_RESERVE:
      st = w->st[c->ttl ? S_RESERVE4 : S_RESERVE3];
      sqlite3_bind_text(st, 1, KEYS[c->key].name, -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 2, c->amt);
      if( rid ) sqlite3_bind_text(st, 3, rid, -1, SQLITE_TRANSIENT);
      else sqlite3_bind_null(st, 3);
      if( c->ttl ){
        if( c->ttlt ){
          snprintf(ttlbuf, sizeof(ttlbuf), "%d seconds", c->ttl);
          sqlite3_bind_text(st, 4, ttlbuf, -1, SQLITE_TRANSIENT);
        }else{
          sqlite3_bind_int(st, 4, c->ttl);
        }
      }
      break;
    case OP_SETTLE:
      st = w->st[S_SETTLE];
      sqlite3_bind_int64(st, 1, c->hold);
      sqlite3_bind_int64(st, 2, c->amt);
      if( c->meta ) sqlite3_bind_text(st, 3, meta, -1, SQLITE_TRANSIENT);
      else sqlite3_bind_null(st, 3);
      break;
    case OP_RELEASE:
      st = w->st[S_RELEASE];
      sqlite3_bind_int64(st, 1, c->hold);
      break;
    case OP_CONSUME:
    case OP_RECORD:
      st = w->st[c->op==OP_CONSUME ? S_CONSUME : S_RECORD];
      sqlite3_bind_text(st, 1, KEYS[c->key].name, -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 2, c->amt);
      if( rid ) sqlite3_bind_text(st, 3, rid, -1, SQLITE_TRANSIENT);
      else sqlite3_bind_null(st, 3);
      if( c->meta ) sqlite3_bind_text(st, 4, meta, -1, SQLITE_TRANSIENT);
      else sqlite3_bind_null(st, 4);
      break;
    case OP_CHECK:
    case OP_STATUS:
      st = w->st[c->op==OP_CHECK ? S_CHECK : S_STATUS];
      sqlite3_bind_text(st, 1, KEYS[c->key].name, -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 2, c->amt);
      break;
    default:
      st = w->st[S_PURGE];
      break;
  }
  rc = sqlite3_step(st);
  if( rc==SQLITE_ROW ){
    int t = sqlite3_column_type(st, 0);
    if( t==SQLITE_TEXT ){
      const char *z = (const char*)sqlite3_column_text(st, 0);
      istext = 1; *pnull = 0;
      if( z==0 || z[0]!='{' ){ rc = SQLITE_ERROR; snprintf(msg, sizeof(msg), "status returned non-JSON text"); }
    }else if( t!=SQLITE_NULL ){
      *pnull = 0; *pres = sqlite3_column_int64(st, 0);
    }
    if( rc==SQLITE_ROW ){
      rc = sqlite3_step(st);
      if( rc==SQLITE_DONE ) rc = SQLITE_OK;
      else if( rc==SQLITE_ROW ){ rc = SQLITE_ERROR; snprintf(msg, sizeof(msg), "two rows"); }
      else snprintf(msg, sizeof(msg), "%s", sqlite3_errmsg(w->db));
    }
  }else if( rc==SQLITE_DONE ){
    rc = SQLITE_ERROR; snprintf(msg, sizeof(msg), "no row");
  }else{
    snprintf(msg, sizeof(msg), "%s", sqlite3_errmsg(w->db));
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if( !sqlite3_get_autocommit(w->db) || sqlite3_txn_state(w->db, "main")!=SQLITE_TXN_NONE ){
    /* a call in autocommit mode must end its own transaction: outside a
    ** transaction each call commits its own work before it returns
    ** (README.md, "Calling contexts") */
    wlog(w->fd, "X %d %d %d %d\n", w->inc, seq, sqlite3_get_autocommit(w->db),
         sqlite3_txn_state(w->db, "main"));
  }
  if( rc==SQLITE_OK ){
    if( istext ) wlog(w->fd, "A %d %d T\n", w->inc, seq);
    else if( *pnull ) wlog(w->fd, "A %d %d NULL\n", w->inc, seq);
    else wlog(w->fd, "A %d %d %lld\n", w->inc, seq, (long long)*pres);
  }else{
    char *p;
    for(p=msg; *p; p++) if( *p=='\n' || *p=='\r' ) *p = ' ';
    wlog(w->fd, "E %d %d %d %s\n", w->inc, seq, rc, msg);
  }
  return rc;
}

static int is_busy(int rc){ return (rc & 0xff)==SQLITE_BUSY || (rc & 0xff)==SQLITE_LOCKED; }

/* ------------------------------------------------------------------ */
/* Log loading (used by a respawned worker and by the final check)     */

static i64 g_open_busy = 0;     /* "O" lines seen by load_log */
static i64 g_left_open = 0;     /* "X" lines: a call left a transaction open */

static const char *INTENT_SCHEMA =
  "CREATE TABLE IF NOT EXISTS %s.intent("
  " slot INT, inc INT, seq INT, op TEXT, key TEXT, rid TEXT, amt INT,"
  " hold INT, ttl INT, ttlt INT, meta INT, ms INT,"
  " st TEXT, res INT, err INT, msg TEXT, PRIMARY KEY(slot, inc, seq));"
  "CREATE INDEX IF NOT EXISTS %s.intent_rid ON intent(rid);"
  "CREATE INDEX IF NOT EXISTS %s.intent_hold ON intent(hold);"
  "CREATE INDEX IF NOT EXISTS %s.intent_res ON intent(res);";

/* Load one slot's log into schema zSchema.intent.  Returns lines loaded, -1 on error. */
static int load_log(sqlite3 *db, const char *zSchema, int slot){
  char path[4096], sql[2048];
  char line[2048];
  FILE *f;
  sqlite3_stmt *ins, *ack, *err;
  int n = 0;

  snprintf(sql, sizeof(sql), INTENT_SCHEMA, zSchema, zSchema, zSchema, zSchema);
  if( exec_sql(db, sql)!=SQLITE_OK ) return -1;
  log_path(path, sizeof(path), slot);
  f = fopen(path, "r");
  if( f==0 ) return 0;
  snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO %s.intent VALUES"
           "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,'P',NULL,NULL,NULL)", zSchema);
  ins = prep(db, sql);
  snprintf(sql, sizeof(sql), "UPDATE %s.intent SET st='A', res=?4 WHERE slot=?1 AND inc=?2 AND seq=?3", zSchema);
  ack = prep(db, sql);
  snprintf(sql, sizeof(sql), "UPDATE %s.intent SET st='E', err=?4, msg=?5 WHERE slot=?1 AND inc=?2 AND seq=?3", zSchema);
  err = prep(db, sql);
  if( !ins || !ack || !err ){ fclose(f); return -1; }
  exec_sql(db, "BEGIN");
  while( fgets(line, sizeof(line), f) ){
    size_t len = strlen(line);
    int inc, seq;
    if( len==0 || line[len-1]!='\n' ) break;       /* torn last line */
    line[len-1] = 0;
    if( line[0]=='I' ){
      char op[16], key[64], rid[64];
      long long amt, hold, ms;
      int ttl, ttlt, meta;
      if( sscanf(line, "I %d %d %15s %63s %63s %lld %lld %d %d %d %lld",
                 &inc, &seq, op, key, rid, &amt, &hold, &ttl, &ttlt, &meta, &ms)!=11 ) continue;
      sqlite3_bind_int(ins, 1, slot);
      sqlite3_bind_int(ins, 2, inc);
      sqlite3_bind_int(ins, 3, seq);
      sqlite3_bind_text(ins, 4, op, -1, SQLITE_TRANSIENT);
      if( strcmp(key, "-")==0 ) sqlite3_bind_null(ins, 5);
      else sqlite3_bind_text(ins, 5, key, -1, SQLITE_TRANSIENT);
      if( strcmp(rid, "-")==0 ) sqlite3_bind_null(ins, 6);
      else sqlite3_bind_text(ins, 6, rid, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(ins, 7, amt);
      if( hold ) sqlite3_bind_int64(ins, 8, hold); else sqlite3_bind_null(ins, 8);
      sqlite3_bind_int(ins, 9, ttl);
      sqlite3_bind_int(ins, 10, ttlt);
      sqlite3_bind_int(ins, 11, meta);
      sqlite3_bind_int64(ins, 12, ms);
      sqlite3_step(ins);
      sqlite3_reset(ins);
      n++;
    }else if( line[0]=='A' ){
      char res[32];
      if( sscanf(line, "A %d %d %31s", &inc, &seq, res)!=3 ) continue;
      sqlite3_bind_int(ack, 1, slot);
      sqlite3_bind_int(ack, 2, inc);
      sqlite3_bind_int(ack, 3, seq);
      if( strcmp(res, "NULL")==0 || strcmp(res, "T")==0 ) sqlite3_bind_null(ack, 4);
      else sqlite3_bind_int64(ack, 4, strtoll(res, 0, 10));
      sqlite3_step(ack);
      sqlite3_reset(ack);
    }else if( line[0]=='X' ){
      g_left_open++;
    }else if( line[0]=='O' ){
      int nb = 0;
      if( sscanf(line, "O %d %d", &inc, &nb)==2 ) g_open_busy += nb;
    }else if( line[0]=='E' ){
      int code, off = 0;
      if( sscanf(line, "E %d %d %d %n", &inc, &seq, &code, &off)<3 ) continue;
      sqlite3_bind_int(err, 1, slot);
      sqlite3_bind_int(err, 2, inc);
      sqlite3_bind_int(err, 3, seq);
      sqlite3_bind_int(err, 4, code);
      sqlite3_bind_text(err, 5, off>0 ? line+off : "", -1, SQLITE_TRANSIENT);
      sqlite3_step(err);
      sqlite3_reset(err);
    }
  }
  exec_sql(db, "COMMIT");
  fclose(f);
  sqlite3_finalize(ins);
  sqlite3_finalize(ack);
  sqlite3_finalize(err);
  return n;
}

/* ------------------------------------------------------------------ */
/* Worker                                                              */

static i64 pick_amount(Worker *w, int big_ok){
  int r = rngBelow(&w->rng, 100);
  if( r<3 ) return 0;
  if( big_ok && r<5 ) return 100000 + rngBelow(&w->rng, 1000);   /* never fits */
  if( r<20 ) return 41 + rngBelow(&w->rng, 160);
  return 1 + rngBelow(&w->rng, 40);
}

static void new_rid(Worker *w, Call *c){
  snprintf(c->rid, sizeof(c->rid), "r%llx-%d-%d-%d",
           (unsigned long long)(cfg.seed & 0xffffff), w->slot, w->inc, ++w->nrid);
}

static int hold_known(Worker *w, i64 id){
  int i;
  for(i=0; i<w->nheld; i++) if( w->holds[i].id==id ) return 1;
  return 0;
}

static void add_hold(Worker *w, const Call *c, i64 id, i64 t0){
  Hold *h;
  if( hold_known(w, id) || w->nheld>=MAX_HOLDS ) return;
  h = &w->holds[w->nheld++];
  memset(h, 0, sizeof(*h));
  h->id = id;
  h->key = c->key;
  h->amt = c->amt;
  h->ttl = c->ttl;
  h->t0 = t0;
  if( KEYS[c->key].strict || rngBelow(&w->rng, 100)<95 ) h->due = t0 + rngBelow(&w->rng, 300);
  else h->due = t0 + 1500 + rngBelow(&w->rng, 3500);     /* often after its ttl: late */
}

static void ring_push(Worker *w, const Call *c, int isnull, i64 res){
  int i = w->nring % RING;
  w->ring[i] = *c;
  w->ring_res_null[i] = isnull;
  w->ring_res[i] = res;
  w->nring++;
}

/*
** A call that carries a request id: on BUSY it is retried (same id), and
** sometimes repeated at once after success (a client retry).  Reserve
** results become holds.
*/
static void rid_call(Worker *w, Call *c, int push){
  i64 res = 0; int isnull = 1, rc, tries = 0;
  i64 t0 = 0;
  do{
    rc = do_call(w, c, &res, &isnull);
    if( t0==0 ) t0 = w->last_ms;
  }while( rc!=SQLITE_OK && c->rid[0] && is_busy(rc) && ++tries<3 && !g_stop );
  if( rc!=SQLITE_OK ) return;
  if( c->op==OP_RESERVE && !isnull ) add_hold(w, c, res, t0);
  if( c->rid[0] && rngBelow(&w->rng, 100)<10 ){
    i64 res2; int null2;
    if( do_call(w, c, &res2, &null2)==SQLITE_OK && !null2 && isnull ){
      /* denied, then granted: a new effect */
      if( c->op==OP_RESERVE ) add_hold(w, c, res2, t0);
      isnull = 0;
      res = res2;
    }
  }
  if( push && c->rid[0] ) ring_push(w, c, isnull, res);
}

static void remove_hold(Worker *w, int i){
  w->holds[i] = w->holds[--w->nheld];
}

/* End hold i: settle or release it (or retry the pending end). */
static void end_hold(Worker *w, int i){
  Hold *h = &w->holds[i];
  int strict = KEYS[h->key].strict;
  int ttl = h->ttl ? h->ttl : cfg.hold_ttl;
  i64 now = now_ms();
  int settle_ok = !strict || now < h->t0 + (i64)ttl*1000 - MARGIN_MS;
  Call c;
  i64 res; int isnull, rc;

  memset(&c, 0, sizeof(c));
  c.key = h->key;
  c.hold = h->id;
  c.meta = rngBelow(&w->rng, 100)<30;
  if( h->pend==OP_RELEASE ){
    c.op = OP_RELEASE;
  }else if( h->pend==OP_SETTLE ){
    c.op = settle_ok ? OP_SETTLE : OP_RELEASE;
    c.amt = h->pend_amt;
  }else{
    c.op = (settle_ok && rngBelow(&w->rng, 100)<70) ? OP_SETTLE : OP_RELEASE;
    if( strict ) c.amt = rngBelow(&w->rng, (int)h->amt+1);
    else if( rngBelow(&w->rng, 100)<40 ) c.amt = h->amt + 1 + rngBelow(&w->rng, 60);   /* above the hold */
    else c.amt = rngBelow(&w->rng, (int)h->amt+1);
  }
  if( c.op==OP_RELEASE ) c.amt = 0;
  rc = do_call(w, &c, &res, &isnull);
  if( rc!=SQLITE_OK ){
    h->pend = c.op;
    h->pend_amt = c.amt;
    h->due = now_ms() + 20 + rngBelow(&w->rng, 200);
    return;
  }
  if( rngBelow(&w->rng, 100)<12 ){
    /* repeat: same result expected (a second settle amount is ignored) */
    if( c.op==OP_SETTLE && rngBelow(&w->rng, 2) ){
      c.amt = strict ? rngBelow(&w->rng, (int)h->amt+1) : rngBelow(&w->rng, 300);
    }
    do_call(w, &c, &res, &isnull);
  }
  remove_hold(w, i);
}

static int ask_int(sqlite3 *db, const char *sql, i64 *out){
  sqlite3_stmt *st = prep(db, sql);
  int rc;
  if( !st ) return 0;
  rc = sqlite3_step(st);
  if( rc==SQLITE_ROW ){ *out = sqlite3_column_int64(st, 0); }
  sqlite3_finalize(st);
  return rc==SQLITE_ROW;
}

/*
** Finish what the killed predecessors of this slot left: repeat calls with
** a request id that have no acknowledgement (same arguments, so they return
** the original outcome if they had happened), then end the holds that are
** still open.
*/
static void recover(Worker *w){
  sqlite3 *mem = 0;
  sqlite3_stmt *st;
  int round;

  for(round=0; round<3 && !g_stop; round++){
    int n = 0;
    if( sqlite3_open(":memory:", &mem)!=SQLITE_OK ) return;
    if( load_log(mem, "main", w->slot)<0 ){ sqlite3_close(mem); return; }
    st = prep(mem,
      "SELECT op, key, rid, amt, ttl, ttlt, meta FROM intent"
      " WHERE rid IS NOT NULL AND op IN ('reserve','consume','record') AND inc<?1"
      " GROUP BY rid HAVING sum(st='A')=0");
    if( !st ){ sqlite3_close(mem); return; }
    sqlite3_bind_int(st, 1, w->inc);
    while( sqlite3_step(st)==SQLITE_ROW && !g_stop ){
      Call c;
      i64 res; int isnull;
      const char *op = (const char*)sqlite3_column_text(st, 0);
      memset(&c, 0, sizeof(c));
      c.op = strcmp(op, "reserve")==0 ? OP_RESERVE : strcmp(op, "consume")==0 ? OP_CONSUME : OP_RECORD;
      c.key = key_index((const char*)sqlite3_column_text(st, 1));
      if( c.key<0 ) continue;
      snprintf(c.rid, sizeof(c.rid), "%s", (const char*)sqlite3_column_text(st, 2));
      c.amt = sqlite3_column_int64(st, 3);
      c.ttl = sqlite3_column_int(st, 4);
      c.ttlt = sqlite3_column_int(st, 5);
      c.meta = sqlite3_column_int(st, 6);
      do_call(w, &c, &res, &isnull);
      n++;
    }
    sqlite3_finalize(st);
    sqlite3_close(mem);
    mem = 0;
    if( n==0 ) break;
  }
  if( g_stop ) return;

  /* open holds (reload: the repeats above are in the log now) */
  if( sqlite3_open(":memory:", &mem)!=SQLITE_OK ) return;
  if( load_log(mem, "main", w->slot)<0 ){ sqlite3_close(mem); return; }
  st = prep(mem,
    "SELECT i.res, i.key, i.amt, i.ttl,"
    "  coalesce((SELECT min(x.ms) FROM intent x WHERE x.rid=i.rid AND x.op='reserve'), i.ms),"
    "  (SELECT e.op FROM intent e WHERE e.hold=i.res AND e.op IN ('settle','release')"
    "     ORDER BY e.inc, e.seq LIMIT 1),"
    "  (SELECT e.amt FROM intent e WHERE e.hold=i.res AND e.op IN ('settle','release')"
    "     ORDER BY e.inc, e.seq LIMIT 1)"
    " FROM intent i WHERE i.op='reserve' AND i.st='A' AND i.res IS NOT NULL"
    "  AND NOT EXISTS (SELECT 1 FROM intent e WHERE e.hold=i.res"
    "                  AND e.op IN ('settle','release') AND e.st='A')"
    " GROUP BY i.res");
  if( st ){
    while( sqlite3_step(st)==SQLITE_ROW ){
      Call c;
      i64 id = sqlite3_column_int64(st, 0);
      memset(&c, 0, sizeof(c));
      c.op = OP_RESERVE;
      c.key = key_index((const char*)sqlite3_column_text(st, 1));
      if( c.key<0 ) continue;
      c.amt = sqlite3_column_int64(st, 2);
      c.ttl = sqlite3_column_int(st, 3);
      add_hold(w, &c, id, sqlite3_column_int64(st, 4));
      if( w->nheld>0 && w->holds[w->nheld-1].id==id ){
        Hold *h = &w->holds[w->nheld-1];
        const char *pop = (const char*)sqlite3_column_text(st, 5);
        h->due = 0;                     /* end it now */
        if( pop ){
          h->pend = strcmp(pop, "settle")==0 ? OP_SETTLE : OP_RELEASE;
          h->pend_amt = sqlite3_column_int64(st, 6);
        }else if( KEYS[h->key].strict ){
          h->pend = OP_RELEASE;
        }
      }
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(mem);
  while( w->nheld>0 && !g_stop ){
    int before = w->nheld;
    end_hold(w, w->nheld-1);
    if( w->nheld==before ) break;       /* failed (busy): main loop retries */
  }
}

static void worker_loop(Worker *w){
  while( !g_stop ){
    i64 now = now_ms();
    int i, due = -1, r, k;
    Call c;
    for(i=0; i<w->nheld; i++) if( w->holds[i].due<=now ){ due = i; break; }
    if( due<0 && w->nheld>=8 ){
      /* too many open: end the one due first */
      due = 0;
      for(i=1; i<w->nheld; i++) if( w->holds[i].due<w->holds[due].due ) due = i;
    }
    if( w->nheld>0 && (due>=0 || rngBelow(&w->rng, 100)<5) ){
      end_hold(w, due>=0 ? due : rngBelow(&w->rng, w->nheld));
      continue;
    }
    memset(&c, 0, sizeof(c));
    k = rngBelow(&w->rng, NKEYS);
    c.key = k;
    r = rngBelow(&w->rng, 100);
    if( r<36 ){
      c.op = OP_RESERVE;
      c.amt = pick_amount(w, 1);
      if( rngBelow(&w->rng, 100)<85 ) new_rid(w, &c);
      r = rngBelow(&w->rng, 100);
      if( KEYS[k].strict ){
        if( r<25 ){ c.ttl = cfg.hold_ttl + 15; }
        else if( r<50 ){ c.ttl = 60; c.ttlt = 1; }
      }else{
        if( r<30 ){ c.ttl = 1 + rngBelow(&w->rng, 3); }
        else if( r<60 ){ c.ttl = 2; c.ttlt = 1; }
      }
      rid_call(w, &c, 1);
    }else if( r<64 || (r<74 && KEYS[k].strict) ){
      c.op = OP_CONSUME;
      c.amt = pick_amount(w, 1);
      if( rngBelow(&w->rng, 100)<85 ) new_rid(w, &c);
      c.meta = rngBelow(&w->rng, 100)<30;
      rid_call(w, &c, 1);
    }else if( r<74 ){
      c.op = OP_RECORD;
      c.amt = pick_amount(w, 0);
      if( rngBelow(&w->rng, 100)<80 ) new_rid(w, &c);
      c.meta = rngBelow(&w->rng, 100)<30;
      rid_call(w, &c, 1);
    }else if( r<86 ){
      /* replay an earlier call with a request id */
      if( w->nring>0 ){
        int n = w->nring<RING ? w->nring : RING;
        int j = rngBelow(&w->rng, n);
        Call cc = w->ring[j];
        i64 res; int isnull;
        if( do_call(w, &cc, &res, &isnull)==SQLITE_OK && !isnull && w->ring_res_null[j] ){
          /* the first try was denied, this one was granted: a new effect */
          if( cc.op==OP_RESERVE ) add_hold(w, &cc, res, w->last_ms);
          w->ring_res_null[j] = 0;
          w->ring_res[j] = res;
        }
      }
    }else if( r<99 ){
      i64 res; int isnull;
      c.op = r<93 ? OP_CHECK : OP_STATUS;
      c.amt = 1 + rngBelow(&w->rng, 100);
      do_call(w, &c, &res, &isnull);
    }else{
      i64 res; int isnull;
      c.op = OP_PURGE;
      c.key = -1;
      do_call(w, &c, &res, &isnull);
    }
    if( rngBelow(&w->rng, 100)<2 ) sleep_ms(1 + rngBelow(&w->rng, 5));
  }
}

static void worker_main(int slot, int inc){
  Worker w;
  char path[4096];
  int i;
  struct sigaction sa;

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, 0);
  signal(SIGINT, SIG_IGN);
  memset(&w, 0, sizeof(w));
  w.slot = slot;
  w.inc = inc;
  w.rng.s = mix3(cfg.seed, (uint64_t)slot+1, (uint64_t)inc+1);
  log_path(path, sizeof(path), slot);
  w.fd = open(path, O_WRONLY|O_APPEND|O_CREAT, 0644);
  if( w.fd<0 ){ perror("stress: worker log"); _exit(3); }
  {
    int nBusy = 0;
    w.db = open_db_counted(0, &nBusy);
    if( nBusy ) wlog(w.fd, "O %d %d\n", inc, nBusy);
  }
  if( w.db==0 ) _exit(3);
  for(i=0; i<NSTMT; i++){
    w.st[i] = prep(w.db, STMT_SQL[i]);
    if( w.st[i]==0 ){ wlog(w.fd, "F %d cannot prepare\n", inc); _exit(3); }
  }
  wlog(w.fd, "N %d %d\n", inc, (int)getpid());
  if( inc>0 ) recover(&w);
  worker_loop(&w);
  for(i=0; i<NSTMT; i++) sqlite3_finalize(w.st[i]);
  sqlite3_close(w.db);
  close(w.fd);
  _exit(0);
}

/* ------------------------------------------------------------------ */
/* Reference model: replays ledger rows in id order                    */

typedef struct Topup { i64 maxid; int key; i64 cap; } Topup;

/* A threshold event the replay expects. */
typedef struct ExpEvt { int key, thr; i64 ledger_id, used, cap; } ExpEvt;

typedef struct Model {
  i64 used[NKEYS];
  i64 pid[NKEYS];       /* period id of used[] */
  i64 cap[NKEYS];       /* cap in force at the row being replayed, -1 NULL */
  int sent[NKEYS][MAX_THR];  /* threshold sent in period pid[] */
  ExpEvt *aExp; int nExp, nExpAlloc;   /* expected threshold events */
  Topup *tp; int ntp, itp;
  i64 rows, last_id;
  i64 over_any_mis;     /* row.over != (some level went past its cap) */
  i64 over_rows, late_rows;
  i64 strict_used_over; /* a strict level's used went past its cap */
  i64 strict_flagged;   /* late row charged to a strict key */
  i64 unknown_key;
  i64 late_no_hold;     /* late=1 on a row that is not a settle */
  i64 order_err;        /* ids not ascending */
  int shown;
} Model;

static void model_init(Model *m, Topup *tp, int ntp){
  int k;
  memset(m, 0, sizeof(*m));
  for(k=0; k<NKEYS; k++){ m->cap[k] = KEYS[k].cap; m->pid[k] = -1; }
  m->tp = tp; m->ntp = ntp;
}

/* Key k's cap was written (a top-up): its events re-arm, and what it has
** reached counts as sent (doc/operations.md, "Alerts and events"). */
static void model_rearm(Model *m, int k){
  int i;
  for(i=0; i<g_nthr[k]; i++){
    i64 u = thr_units(k, i, m->cap[k]);
    m->sent[k][i] = u>=0 && m->used[k]>=u && m->used[k]>0;
  }
}

static void model_row(Model *m, i64 id, const char *key, i64 amount, i64 at,
                      int over, int late, int has_hold, const char *who){
  int k = key_index(key), L, any = 0, strict_sub = 0;
  if( id<=m->last_id ) m->order_err++;
  m->last_id = id;
  m->rows++;
  while( m->itp<m->ntp && m->tp[m->itp].maxid < id ){
    m->cap[m->tp[m->itp].key] = m->tp[m->itp].cap;
    model_rearm(m, m->tp[m->itp].key);
    m->itp++;
  }
  if( k<0 ){ m->unknown_key++; return; }
  for(L=k; L>=0; L=parent_of(L)){
    i64 p = period_id(L, at);
    int i;
    if( p!=m->pid[L] ){
      m->pid[L] = p; m->used[L] = 0;
      memset(m->sent[L], 0, sizeof(m->sent[L]));
    }
    m->used[L] += amount;
    for(i=0; i<g_nthr[L]; i++){
      i64 u = thr_units(L, i, m->cap[L]);
      if( m->sent[L][i] || u<0 || m->used[L]<u || m->used[L]<=0 ) continue;
      m->sent[L][i] = 1;
      if( m->nExp==m->nExpAlloc ){
        m->nExpAlloc = m->nExpAlloc ? m->nExpAlloc*2 : 256;
        m->aExp = realloc(m->aExp, sizeof(ExpEvt)*(size_t)m->nExpAlloc);
        if( !m->aExp ) _exit(3);
      }
      m->aExp[m->nExp].key = L; m->aExp[m->nExp].thr = i;
      m->aExp[m->nExp].ledger_id = id; m->aExp[m->nExp].used = m->used[L];
      m->aExp[m->nExp].cap = m->cap[L];
      m->nExp++;
    }
    if( KEYS[L].strict ) strict_sub = 1;
    if( m->cap[L]>=0 && m->used[L]>m->cap[L] ){
      any = 1;
      if( KEYS[L].strict ){
        m->strict_used_over++;
        if( m->shown++<10 ){
          fprintf(stderr, "%s: ledger row %lld (%s %lld) takes strict key %s to used %lld > cap %lld\n",
                  who, (long long)id, key, (long long)amount, KEYS[L].name,
                  (long long)m->used[L], (long long)m->cap[L]);
        }
      }
    }
  }
  if( over ) m->over_rows++;
  if( late ) m->late_rows++;
  if( late && !has_hold ) m->late_no_hold++;
  /* over = 1: a charge of at least one unit left some level's used past its
  ** cap (a zero charge is never over) */
  if( amount==0 ) any = 0;
  if( over!=any ){
    m->over_any_mis++;
    if( m->shown++<10 ){
      fprintf(stderr, "%s: ledger row %lld (%s %lld) has over=%d, the model says %d\n",
              who, (long long)id, key, (long long)amount, over, any);
    }
  }
  /* (over on a strict key is right when a loose ancestor went past its cap:
  ** that is checked against the model above) */
  if( strict_sub && KEYS[k].strict && late ){
    m->strict_flagged++;
    if( m->shown++<10 ){
      fprintf(stderr, "%s: ledger row %lld on strict key %s is late\n", who, (long long)id, key);
    }
  }
}

/* used of key L in the period containing time t, per the model */
static i64 model_used(Model *m, int L, i64 t){
  return m->pid[L]==period_id(L, t) ? m->used[L] : 0;
}

/* ------------------------------------------------------------------ */
/* Snapshot checks (observer and final)                               */

typedef struct Snap {
  int have[NKEYS];
  i64 cap[NKEYS];      /* -1 NULL */
  i64 used[NKEYS];
  i64 reserved[NKEYS];
  i64 remaining[NKEYS]; /* -1 NULL */
  char parent[NKEYS][32];
} Snap;

static int read_snap(sqlite3 *db, sqlite3_stmt *st, Snap *s){
  int rc;
  (void)db;
  memset(s, 0, sizeof(*s));
  while( (rc = sqlite3_step(st))==SQLITE_ROW ){
    int k = key_index((const char*)sqlite3_column_text(st, 0));
    if( k<0 ) continue;
    s->have[k] = 1;
    s->cap[k] = sqlite3_column_type(st, 1)==SQLITE_NULL ? -1 : sqlite3_column_int64(st, 1);
    s->used[k] = sqlite3_column_int64(st, 2);
    s->reserved[k] = sqlite3_column_int64(st, 3);
    s->remaining[k] = sqlite3_column_type(st, 4)==SQLITE_NULL ? -1 : sqlite3_column_int64(st, 4);
    if( sqlite3_column_type(st, 5)!=SQLITE_NULL ){
      snprintf(s->parent[k], sizeof(s->parent[k]), "%s", (const char*)sqlite3_column_text(st, 5));
    }
  }
  sqlite3_reset(st);
  return rc==SQLITE_DONE ? SQLITE_OK : rc;
}

static const char *SNAP_SQL = "SELECT key, cap, used, reserved, remaining, parent FROM quota";

/* Invariant 2 and sanity on one snapshot.  Returns violations. */
static int check_snap(const Snap *s, const char *who, int *shown){
  int k, v = 0;
  for(k=0; k<NKEYS; k++){
    if( !s->have[k] ){
      v++;
      if( (*shown)++<10 ) fprintf(stderr, "%s: key %s missing from quota\n", who, KEYS[k].name);
      continue;
    }
    if( s->used[k]<0 || s->reserved[k]<0 ){
      v++;
      if( (*shown)++<10 ) fprintf(stderr, "%s: %s used=%lld reserved=%lld negative\n", who,
                                  KEYS[k].name, (long long)s->used[k], (long long)s->reserved[k]);
    }
    if( s->cap[k]>=0 ){
      i64 rem = s->cap[k] - s->used[k] - s->reserved[k];
      if( rem<0 ) rem = 0;
      if( s->remaining[k]!=rem ){
        v++;
        if( (*shown)++<10 ) fprintf(stderr, "%s: %s remaining=%lld, expected max(0, %lld-%lld-%lld)\n",
                                    who, KEYS[k].name, (long long)s->remaining[k], (long long)s->cap[k],
                                    (long long)s->used[k], (long long)s->reserved[k]);
      }
      if( KEYS[k].strict && s->used[k] + s->reserved[k] > s->cap[k] ){
        v++;
        if( (*shown)++<10 ) fprintf(stderr, "%s: INVARIANT 2: strict key %s used %lld + reserved %lld > cap %lld\n",
                                    who, KEYS[k].name, (long long)s->used[k],
                                    (long long)s->reserved[k], (long long)s->cap[k]);
      }
    }else if( s->remaining[k]!=-1 ){
      v++;
      if( (*shown)++<10 ) fprintf(stderr, "%s: %s cap NULL but remaining=%lld\n", who,
                                  KEYS[k].name, (long long)s->remaining[k]);
    }
  }
  return v;
}

/*
** Invariant 1 on one read snapshot at pinned time T: reads the ledger rows
** after m->last_id into the model, the live holds, and the quota table.
** Returns violations (or -1 if the snapshot could not be taken).
*/
typedef struct Inv1 {
  sqlite3_stmt *pin, *unpin, *ledger, *holds, *snap;
  int holds_ok;
} Inv1;

static void inv1_init(sqlite3 *db, Inv1 *x){
  memset(x, 0, sizeof(*x));
  x->pin = prep(db, "SELECT quota_clock(?1)");
  x->unpin = prep(db, "SELECT quota_clock(NULL)");
  x->ledger = prep(db, "SELECT id, key, amount, at, over, late, hold_id IS NOT NULL"
                       " FROM quota_ledger WHERE id>?1 ORDER BY id");
  x->snap = prep(db, SNAP_SQL);
  x->holds = prep(db, "SELECT k.key, sum(h.amount), count(*) FROM quota_holds h"
                      " JOIN quota_keys k ON k.id=h.key_id"
                      " WHERE h.state=0 AND h.expires>?1 GROUP BY k.key");
  x->holds_ok = x->holds!=0;
}

static void inv1_free(Inv1 *x){
  sqlite3_finalize(x->pin);
  sqlite3_finalize(x->unpin);
  sqlite3_finalize(x->ledger);
  sqlite3_finalize(x->snap);
  sqlite3_finalize(x->holds);
}

static int step_one(sqlite3_stmt *st){
  int rc = sqlite3_step(st);
  while( rc==SQLITE_ROW ) rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc==SQLITE_DONE ? SQLITE_OK : rc;
}

static int inv1_check(sqlite3 *db, Inv1 *x, Model *m, i64 T, const char *who, int *shown,
                      Snap *out, i64 *live_holds){
  char tbuf[32];
  i64 hsum[NKEYS];
  Snap s;
  int rc, k, v = 0;

  if( !x->pin || !x->unpin || !x->ledger || !x->snap ) return -1;
  memset(hsum, 0, sizeof(hsum));
  if( live_holds ) *live_holds = 0;
  fmt_time(tbuf, sizeof(tbuf), T);
  sqlite3_bind_text(x->pin, 1, tbuf, -1, SQLITE_TRANSIENT);
  if( step_one(x->pin)!=SQLITE_OK ) return -1;
  if( exec_sql(db, "BEGIN")!=SQLITE_OK ) goto fail;
  sqlite3_bind_int64(x->ledger, 1, m->last_id);
  while( (rc = sqlite3_step(x->ledger))==SQLITE_ROW ){
    model_row(m, sqlite3_column_int64(x->ledger, 0), (const char*)sqlite3_column_text(x->ledger, 1),
              sqlite3_column_int64(x->ledger, 2), sqlite3_column_int64(x->ledger, 3),
              sqlite3_column_int(x->ledger, 4), sqlite3_column_int(x->ledger, 5),
              sqlite3_column_int(x->ledger, 6), who);
  }
  sqlite3_reset(x->ledger);
  if( rc!=SQLITE_DONE ) goto fail_rollback;
  if( x->holds_ok ){
    sqlite3_bind_int64(x->holds, 1, T);
    while( (rc = sqlite3_step(x->holds))==SQLITE_ROW ){
      int hk = key_index((const char*)sqlite3_column_text(x->holds, 0));
      if( hk>=0 ){
        int L;
        for(L=hk; L>=0; L=parent_of(L)) hsum[L] += sqlite3_column_int64(x->holds, 1);
      }
      if( live_holds ) *live_holds += sqlite3_column_int64(x->holds, 2);
    }
    sqlite3_reset(x->holds);
    if( rc!=SQLITE_DONE ) goto fail_rollback;
  }
  rc = read_snap(db, x->snap, &s);
  if( rc!=SQLITE_OK ) goto fail_rollback;
  exec_sql(db, "COMMIT");
  step_one(x->unpin);
  for(k=0; k<NKEYS; k++){
    i64 mu;
    if( !s.have[k] ) continue;
    mu = model_used(m, k, T);
    if( s.used[k]!=mu ){
      v++;
      if( (*shown)++<10 ) fprintf(stderr, "%s: INVARIANT 1: %s used=%lld, ledger says %lld (at %s, ledger id<=%lld)\n",
                                  who, KEYS[k].name, (long long)s.used[k], (long long)mu, tbuf,
                                  (long long)m->last_id);
    }
    if( x->holds_ok && s.reserved[k]!=hsum[k] ){
      v++;
      if( (*shown)++<10 ) fprintf(stderr, "%s: INVARIANT 1: %s reserved=%lld, live holds sum %lld (at %s)\n",
                                  who, KEYS[k].name, (long long)s.reserved[k], (long long)hsum[k], tbuf);
    }
  }
  if( out ) *out = s;
  return v;
fail_rollback:
  exec_sql(db, "ROLLBACK");
fail:
  step_one(x->unpin);
  return -1;
}

/* ------------------------------------------------------------------ */
/* Observer                                                            */

static void observer_main(void){
  sqlite3 *db;
  sqlite3_stmt *snap, *maxid, *getk, *setcap;
  Inv1 x;
  Model m;
  Topup *tp = 0; int ntp = 0, cap_tp = 0;
  i64 last_topup[NKEYS], last_used[NKEYS];
  i64 snaps = 0, viol2 = 0, viol1 = 0, full = 0, full_fail = 0, topups = 0, topup_fail = 0;
  i64 snap_busy = 0, snap_err = 0, max_over_strict = 0;
  i64 next_full, next_schema, schema_changes = 0, schema_fail = 0;
  int shown = 0, k, fd, obs_open_busy = 0;
  char path[4096];
  struct sigaction sa;

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, 0);
  signal(SIGINT, SIG_IGN);
  db = open_db_counted(0, &obs_open_busy);
  if( !db ) _exit(3);
  snap = prep(db, SNAP_SQL);
  maxid = prep(db, "SELECT coalesce(max(id),0) FROM quota_ledger");
  getk = prep(db, "SELECT cap, used, reserved FROM quota WHERE key=?1");
  setcap = prep(db, "UPDATE quota SET cap=?2 WHERE key=?1");
  if( !snap || !maxid || !getk || !setcap ) _exit(3);
  inv1_init(db, &x);
  path_for(path, sizeof(path), ".topups");
  fd = open(path, O_WRONLY|O_APPEND|O_CREAT, 0644);
  for(k=0; k<NKEYS; k++){ last_topup[k] = 0; last_used[k] = -1; }
  model_init(&m, 0, 0);
  next_full = now_ms() + 500;
  next_schema = cfg.schema_ms ? now_ms() + cfg.schema_ms : 0;

  while( !g_stop ){
    Snap s;
    int rc = read_snap(db, snap, &s);
    i64 now = now_ms();
    if( rc!=SQLITE_OK ){
      if( is_busy(rc) ) snap_busy++;
      else{
        snap_err++;
        if( shown++<10 ) fprintf(stderr, "observer: reading quota: %s\n", sqlite3_errmsg(db));
      }
    }else{
      snaps++;
      viol2 += check_snap(&s, "observer", &shown);
      for(k=0; k<NKEYS; k++){
        if( KEYS[k].strict && s.cap[k]>=0 && s.used[k]+s.reserved[k]-s.cap[k] > max_over_strict ){
          max_over_strict = s.used[k]+s.reserved[k]-s.cap[k];
        }
        if( KEYS[k].period==P_LIFE ){
          if( s.used[k]<last_used[k] ){
            viol2++;
            if( shown++<10 ) fprintf(stderr, "observer: lifetime key %s used went down %lld -> %lld\n",
                                     KEYS[k].name, (long long)last_used[k], (long long)s.used[k]);
          }
          last_used[k] = s.used[k];
        }
      }
      /* top up caps that run low (cap only ever grows) */
      for(k=0; k<NKEYS; k++){
        i64 id = 0, cap, used, res, newcap;
        if( s.cap[k]<0 || KEYS[k].step<0 || s.remaining[k]>=LOW_WATER
         || now-last_topup[k]<TOPUP_MS ) continue;
        last_topup[k] = now;
        if( exec_sql(db, "BEGIN IMMEDIATE")!=SQLITE_OK ){ topup_fail++; continue; }
        rc = sqlite3_step(maxid);
        if( rc==SQLITE_ROW ) id = sqlite3_column_int64(maxid, 0);
        sqlite3_reset(maxid);
        sqlite3_bind_text(getk, 1, KEYS[k].name, -1, SQLITE_STATIC);
        if( rc==SQLITE_ROW ) rc = sqlite3_step(getk);
        if( rc!=SQLITE_ROW ){ sqlite3_reset(getk); exec_sql(db, "ROLLBACK"); topup_fail++; continue; }
        cap = sqlite3_column_int64(getk, 0);
        used = sqlite3_column_int64(getk, 1);
        res = sqlite3_column_int64(getk, 2);
        sqlite3_reset(getk);
        newcap = (used+res>cap ? used+res : cap) + KEYS[k].step;
        sqlite3_bind_text(setcap, 1, KEYS[k].name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(setcap, 2, newcap);
        rc = step_one(setcap);
        if( rc==SQLITE_OK && sqlite3_changes(db)!=1 ) rc = SQLITE_ERROR;
        if( rc!=SQLITE_OK ){
          if( shown++<10 ) fprintf(stderr, "observer: top-up of %s: %s\n", KEYS[k].name, sqlite3_errmsg(db));
          exec_sql(db, "ROLLBACK"); topup_fail++; continue;
        }
        if( exec_sql(db, "COMMIT")!=SQLITE_OK ){ exec_sql(db, "ROLLBACK"); topup_fail++; continue; }
        topups++;
        if( fd>=0 ) wlog(fd, "T %lld %s %lld\n", (long long)id, KEYS[k].name, (long long)newcap);
        if( ntp==cap_tp ){
          cap_tp = cap_tp ? cap_tp*2 : 256;
          tp = realloc(tp, sizeof(Topup)*(size_t)cap_tp);
          if( !tp ) _exit(3);
          m.tp = tp;
        }
        tp[ntp].maxid = id; tp[ntp].key = k; tp[ntp].cap = newcap;
        m.ntp = ++ntp;
      }
    }
    if( next_schema && now>=next_schema ){
      /* another application changes the schema */
      char sql[200];
      snprintf(sql, sizeof(sql), "CREATE TABLE stress_schema_%lld(x);"
               "DROP TABLE IF EXISTS stress_schema_%lld;",
               (long long)schema_changes+1, (long long)schema_changes);
      if( exec_sql(db, sql)==SQLITE_OK ) schema_changes++;
      else{ schema_fail++; exec_sql(db, "ROLLBACK"); }
      next_schema = now_ms() + cfg.schema_ms;
    }
    if( now>=next_full ){
      int v = inv1_check(db, &x, &m, now/1000, "observer", &shown, 0, 0);
      if( v<0 ) full_fail++;
      else{ full++; viol1 += v; }
      next_full = now_ms() + 1000;
    }
    sleep_ms(cfg.observe_ms);
  }
  {
    FILE *f;
    path_for(path, sizeof(path), ".obs");
    f = fopen(path, "w");
    if( f ){
      fprintf(f, "snapshots %lld\nviol2 %lld\nsnap_busy %lld\nsnap_err %lld\n"
                 "full %lld\nfull_fail %lld\nviol1 %lld\ntopups %lld\ntopup_fail %lld\n"
                 "model_strict %lld\nmodel_flagged %lld\nmax_over_strict %lld\nopen_busy %d\n"
                 "schema_changes %lld\n",
              (long long)snaps, (long long)viol2, (long long)snap_busy, (long long)snap_err,
              (long long)full, (long long)full_fail, (long long)viol1, (long long)topups,
              (long long)topup_fail, (long long)m.strict_used_over, (long long)m.strict_flagged,
              (long long)max_over_strict, obs_open_busy, (long long)schema_changes);
      fclose(f);
    }
  }
  inv1_free(&x);
  sqlite3_finalize(snap); sqlite3_finalize(maxid); sqlite3_finalize(getk); sqlite3_finalize(setcap);
  sqlite3_close(db);
  _exit(0);
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */

static int setup(void){
  static const char *sfx[] = { "", "-wal", "-shm", "-journal", ".topups", ".obs" };
  char path[4096], sql[1024];
  sqlite3 *db;
  int i, k;
  char *err = 0;

  for(i=0; i<(int)(sizeof(sfx)/sizeof(sfx[0])); i++){ path_for(path, sizeof(path), sfx[i]); unlink(path); }
  for(i=0; i<MAX_PROCS; i++){ log_path(path, sizeof(path), i); unlink(path); }
  db = open_db(1);
  if( !db ) return 2;
  if( exec_sql(db, cfg.wal ? "PRAGMA journal_mode=WAL" : "PRAGMA journal_mode=DELETE")!=SQLITE_OK ) goto fail;
  snprintf(sql, sizeof(sql), "CREATE VIRTUAL TABLE quota USING quota(hold_ttl=%d)", cfg.hold_ttl);
  if( exec_sql(db, sql)!=SQLITE_OK ) goto fail;
  for(k=0; k<NKEYS; k++){
    char cap[32];
    int p = parent_of(k);
    if( KEYS[k].cap<0 ) snprintf(cap, sizeof(cap), "NULL");
    else snprintf(cap, sizeof(cap), "%lld", (long long)KEYS[k].cap);
    snprintf(sql, sizeof(sql), "INSERT INTO quota(key, cap, period, alert, enforce%s)"
             " VALUES('%s', %s, '%s', %s%s%s, '%s'%s%s%s)",
             p>=0 ? ", parent" : "", KEYS[k].name, cap,
             KEYS[k].period==P_LIFE ? "lifetime" : "month",
             KEYS[k].alert ? "'" : "", KEYS[k].alert ? KEYS[k].alert : "NULL",
             KEYS[k].alert ? "'" : "", KEYS[k].shadow ? "shadow" : "hard",
             p>=0 ? ", '" : "", p>=0 ? KEYS[p].name : "", p>=0 ? "'" : "");
    if( sqlite3_exec(db, sql, 0, 0, &err)!=SQLITE_OK ){
      fprintf(stderr, "stress: %s: %s\n", sql, err);
      if( p>=0 ) fprintf(stderr, "stress: parent keys failed; try --no-parent\n");
      sqlite3_free(err);
      goto fail;
    }
  }
  /* the parents must read back as written */
  {
    sqlite3_stmt *st = prep(db, SNAP_SQL);
    Snap s;
    int shown = 0;
    if( !st || read_snap(db, st, &s)!=SQLITE_OK ){ sqlite3_finalize(st); goto fail; }
    sqlite3_finalize(st);
    for(k=0; k<NKEYS; k++){
      int p = parent_of(k);
      if( strcmp(s.parent[k], p>=0 ? KEYS[p].name : "")!=0 ){
        fprintf(stderr, "stress: key %s reads back parent '%s'\n", KEYS[k].name, s.parent[k]);
        goto fail;
      }
    }
    if( check_snap(&s, "setup", &shown) ) goto fail;
  }
  sqlite3_close(db);
  return 0;
fail:
  sqlite3_close(db);
  return 2;
}

/* ------------------------------------------------------------------ */
/* Final checks                                                        */

/* Print up to 8 rows of a query, return the number of rows (or the first
** column summed when sum_first). -1 on error. */
static i64 report_rows(sqlite3 *db, const char *label, const char *sql, int sum_first){
  sqlite3_stmt *st = prep(db, sql);
  i64 n = 0, t0 = now_ms();
  int rc, shown = 0;
  if( !st ) return -1;
  while( (rc = sqlite3_step(st))==SQLITE_ROW ){
    n += sum_first ? sqlite3_column_int64(st, 0) : 1;
    if( shown++<8 ){
      int i;
      fprintf(stderr, "  %s:", label);
      for(i=0; i<sqlite3_column_count(st); i++){
        const char *z = (const char*)sqlite3_column_text(st, i);
        fprintf(stderr, " %s=%s", sqlite3_column_name(st, i), z ? z : "NULL");
      }
      fprintf(stderr, "\n");
    }
  }
  if( rc!=SQLITE_DONE ){
    fprintf(stderr, "stress: %s: %s\n", label, sqlite3_errmsg(db));
    n = -1;
  }
  sqlite3_finalize(st);
  if( getenv("STRESS_TIMING") ) fprintf(stderr, "  [%.2f s] %s\n", (double)(now_ms()-t0)/1000.0, label);
  return n;
}

static i64 q_int(sqlite3 *db, const char *sql){
  i64 v = -1;
  if( !ask_int(db, sql, &v) ) return -1;
  return v;
}

static void phase(const char *label, i64 *pt){
  if( getenv("STRESS_TIMING") ){
    fprintf(stderr, "  [%.2f s] %s\n", (double)(now_ms()-*pt)/1000.0, label);
  }
  *pt = now_ms();
}

static int read_kv(const char *suffix, const char *name, i64 *out){
  char path[4096], k[64];
  long long v;
  FILE *f;
  path_for(path, sizeof(path), suffix);
  f = fopen(path, "r");
  if( !f ) return 0;
  while( fscanf(f, "%63s %lld", k, &v)==2 ){
    if( strcmp(k, name)==0 ){ *out = v; fclose(f); return 1; }
  }
  fclose(f);
  return 0;
}

static int load_topups(Topup **ptp){
  char path[4096], key[64];
  long long id, cap;
  FILE *f;
  Topup *tp = 0;
  int n = 0, alloc = 0;
  path_for(path, sizeof(path), ".topups");
  f = fopen(path, "r");
  if( f ){
    while( fscanf(f, " T %lld %63s %lld", &id, key, &cap)==3 ){
      int k = key_index(key);
      if( k<0 ) continue;
      if( n==alloc ){
        alloc = alloc ? alloc*2 : 256;
        tp = realloc(tp, sizeof(Topup)*(size_t)alloc);
        if( !tp ){ fclose(f); return 0; }
      }
      tp[n].maxid = id; tp[n].key = k; tp[n].cap = cap;
      n++;
    }
    fclose(f);
  }
  *ptp = tp;
  return n;
}

typedef struct Stats {
  i64 kills, respawns, crashes, worker_fail;
  double elapsed;       /* start to all stopped */
  double stop_s;        /* end of the run to all stopped */
} Stats;

static int final_check(const Stats *ps){
  sqlite3 *db = open_db(0);
  int slot, shown = 0, fails = 0;
  i64 calls, acked, pending, errs, busy, lost = 0, lost_rid = 0, phantom = 0, dup = 0, idem = 0;
  i64 replays, resettles;
  i64 inv1 = -1, inv2 = 0, zero_settle_rows = -1, ledger_rows, live = 0, holds_missing = 0, ends = 0;
  i64 obs_viol2 = 0, obs_viol1 = 0, obs_snaps = 0, obs_full = 0, obs_topups = 0, obs_busy = 0;
  i64 obs_err = 0, obs_full_fail = 0, loose_above = 0, unexplained = 0, obs_open_busy = 0;
  i64 obs_schema = 0, ev_threshold = 0, ev_other = 0, ev_mismatch = 0;
  char integrity[256] = "?";
  Topup *tp = 0;
  int ntp;
  Model m;
  Inv1 x;
  Snap s;
  i64 T, t0, tph;
  int holds_table;

  if( !db ) return 1;
  t0 = tph = now_ms();
  memset(&s, 0, sizeof(s));
  if( exec_sql(db, "ATTACH ':memory:' AS chk")!=SQLITE_OK ) return 1;
  for(slot=0; slot<cfg.procs; slot++){
    if( load_log(db, "chk", slot)<0 ) return 1;
  }
  phase("load logs", &tph);
  /* an indexed copy of the ledger (the store under test is not touched) */
  if( exec_sql(db, "CREATE TABLE chk.ledger(id INTEGER PRIMARY KEY, key TEXT, amount INT, at INT,"
                   " request_id TEXT, hold_id INT, meta TEXT, over INT, late INT);"
                   "INSERT INTO chk.ledger SELECT id, key, amount, at, request_id, hold_id, meta,"
                   " over, late FROM main.quota_ledger;"
                   "CREATE INDEX chk.ledger_hold ON ledger(hold_id);"
                   "CREATE INDEX chk.ledger_rid ON ledger(request_id);"
                   "CREATE INDEX chk.intent_op ON intent(op, key, amt);")!=SQLITE_OK ) return 1;
  phase("copy ledger", &tph);

  /* integrity */
  {
    sqlite3_stmt *st = prep(db, "PRAGMA main.integrity_check");
    if( st && sqlite3_step(st)==SQLITE_ROW ){
      snprintf(integrity, sizeof(integrity), "%s", (const char*)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    if( strcmp(integrity, "ok")!=0 ) fails++;
  }
  phase("integrity_check", &tph);

  calls = q_int(db, "SELECT count(*) FROM chk.intent");
  acked = q_int(db, "SELECT count(*) FROM chk.intent WHERE st='A'");
  pending = q_int(db, "SELECT count(*) FROM chk.intent WHERE st='P'");
  errs = q_int(db, "SELECT count(*) FROM chk.intent WHERE st='E'");
  busy = q_int(db, "SELECT count(*) FROM chk.intent WHERE st='E' AND (err&255) IN (5,6)");
  ledger_rows = q_int(db, "SELECT count(*) FROM quota_ledger");
  replays = q_int(db, "SELECT count(*) - count(DISTINCT rid) FROM chk.intent"
                      " WHERE rid IS NOT NULL AND op IN ('reserve','consume','record')");
  resettles = q_int(db, "SELECT count(*) - count(DISTINCT hold) FROM chk.intent"
                        " WHERE op IN ('settle','release')");
  holds_table = q_int(db, "SELECT count(*) FROM quota_holds")>=0;
  phase("counts", &tph);

  if( errs>0 ) report_rows(db, "error", "SELECT err, count(*) AS n, min(msg) AS msg FROM chk.intent"
                           " WHERE st='E' GROUP BY err", 0);

  /* (2) lost acknowledgements */
  lost += report_rows(db, "LOST consume/record ack",
    "SELECT i.slot, i.inc, i.seq, i.op, i.key, i.rid, i.amt, i.res FROM chk.intent i"
    " WHERE i.op IN ('consume','record') AND i.st='A' AND i.res IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM chk.ledger l WHERE l.id=i.res"
    "                 AND l.key=i.key AND l.amount=i.amt)", 0);
  lost_rid += report_rows(db, "ledger request_id differs from the acknowledged call",
    "SELECT i.slot, i.inc, i.seq, i.op, i.rid, l.id, l.request_id FROM chk.intent i"
    " JOIN chk.ledger l ON l.id=i.res"
    " WHERE i.op IN ('consume','record') AND i.st='A' AND l.request_id IS NOT i.rid", 0);
  lost += report_rows(db, "LOST settle ack",
    "SELECT i.slot, i.inc, i.seq, i.key, i.hold, i.amt, i.res FROM chk.intent i"
    " WHERE i.op='settle' AND i.st='A' AND i.res IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM chk.ledger l WHERE l.hold_id=i.hold"
    "                 AND l.amount=i.res AND l.key=i.key)", 0);
  lost_rid += report_rows(db, "settle ledger row request_id differs from the reserve's",
    "SELECT l.id, l.hold_id, l.request_id, r.rid FROM chk.ledger l"
    " JOIN chk.intent r ON r.op='reserve' AND r.st='A' AND r.res=l.hold_id"
    " WHERE l.request_id IS NOT r.rid GROUP BY l.id", 0);
  zero_settle_rows = q_int(db, "SELECT count(*) FROM chk.ledger WHERE hold_id IS NOT NULL AND amount=0");
  if( holds_table ){
    holds_missing = report_rows(db, "LOST reserve ack (no such hold)",
      "SELECT i.slot, i.inc, i.seq, i.key, i.amt, i.res FROM chk.intent i"
      " WHERE i.op='reserve' AND i.st='A' AND i.res IS NOT NULL"
      " AND NOT EXISTS (SELECT 1 FROM main.quota_holds h WHERE h.id=i.res AND h.amount=i.amt)", 0);
    lost += holds_missing;
  }

  /* (3) phantoms */
  phantom += report_rows(db, "PHANTOM ledger row (request id)",
    "SELECT l.id, l.key, l.amount, l.request_id FROM chk.ledger l"
    " WHERE l.hold_id IS NULL AND l.request_id IS NOT NULL AND NOT EXISTS"
    " (SELECT 1 FROM chk.intent i WHERE i.rid=l.request_id AND i.op IN ('consume','record')"
    "  AND i.key=l.key AND i.amt=l.amount)", 0);
  phantom += report_rows(db, "PHANTOM ledger row (hold)",
    "SELECT l.id, l.key, l.amount, l.hold_id FROM chk.ledger l"
    " WHERE l.hold_id IS NOT NULL AND NOT EXISTS"
    " (SELECT 1 FROM chk.intent i WHERE i.op='settle' AND i.hold=l.hold_id"
    "  AND i.key=l.key AND i.amt=l.amount)", 0);
  phantom += report_rows(db, "PHANTOM ledger rows (no request id): excess",
    "SELECT n-coalesce(m,0) AS excess, l.key, l.amount FROM"
    " (SELECT key, amount, count(*) AS n FROM chk.ledger"
    "   WHERE hold_id IS NULL AND request_id IS NULL GROUP BY key, amount) l"
    " LEFT JOIN (SELECT key, amt, count(*) AS m FROM chk.intent"
    "   WHERE rid IS NULL AND op IN ('consume','record') GROUP BY key, amt) i"
    " ON i.key=l.key AND i.amt=l.amount WHERE n>coalesce(m,0)", 1);

  /* (4) duplicates and idempotency */
  dup += report_rows(db, "DUPLICATE request id in ledger",
    "SELECT request_id, count(*) AS n FROM chk.ledger WHERE request_id IS NOT NULL"
    " GROUP BY request_id HAVING count(*)>1", 0);
  dup += report_rows(db, "DUPLICATE hold in ledger",
    "SELECT hold_id, count(*) AS n FROM chk.ledger WHERE hold_id IS NOT NULL"
    " GROUP BY hold_id HAVING count(*)>1", 0);
  idem += report_rows(db, "IDEMPOTENCY: a request id returned different results",
    "SELECT rid, group_concat(DISTINCT res) AS results FROM chk.intent"
    " WHERE st='A' AND res IS NOT NULL AND rid IS NOT NULL GROUP BY rid"
    " HAVING count(DISTINCT res)>1", 0);
  idem += report_rows(db, "IDEMPOTENCY: settles of one hold returned different charges",
    "SELECT hold, group_concat(res) AS results FROM chk.intent"
    " WHERE op='settle' AND st='A' GROUP BY hold HAVING count(DISTINCT res)>1", 0);
  idem += report_rows(db, "IDEMPOTENCY: settle returned an amount no settle asked for",
    "SELECT i.slot, i.inc, i.seq, i.hold, i.amt, i.res FROM chk.intent i"
    " WHERE i.op='settle' AND i.st='A' AND NOT EXISTS (SELECT 1 FROM chk.intent j"
    "  WHERE j.op='settle' AND j.hold=i.hold AND j.amt=i.res)", 0);
  ends = report_rows(db, "HOLD ENDED TWICE (release>0 and/or settle)",
    "SELECT hold, sum(op='release' AND st='A' AND res>0) AS releases,"
    " max(op='settle' AND st='A') AS settled FROM chk.intent WHERE op IN ('settle','release')"
    " GROUP BY hold HAVING sum(op='release' AND st='A' AND res>0) + max(op='settle' AND st='A')>1", 0);
  ends += report_rows(db, "RELEASE returned an amount other than the hold's",
    "SELECT i.hold, i.res, r.amt FROM chk.intent i JOIN chk.intent r"
    " ON r.op='reserve' AND r.st='A' AND r.res=i.hold"
    " WHERE i.op='release' AND i.st='A' AND i.res>0 AND i.res<>r.amt GROUP BY i.hold", 0);
  ends += report_rows(db, "RELEASED hold has a ledger row",
    "SELECT i.hold, l.id, l.amount FROM chk.intent i JOIN chk.ledger l ON l.hold_id=i.hold"
    " WHERE i.op='release' AND i.st='A' AND i.res>0", 0);

  phase("log/ledger checks", &tph);
  /* (1) invariant 1 + reference model, at a pinned time T */
  ntp = load_topups(&tp);
  model_init(&m, tp, ntp);
  inv1_init(db, &x);
  T = now_ms()/1000;
  if( holds_table ){
    /* choose T so that no live hold expires exactly at T */
    for(;;){
      char sql[200];
      snprintf(sql, sizeof(sql), "SELECT count(*) FROM quota_holds WHERE state=0 AND expires=%lld", (long long)T);
      if( q_int(db, sql)<=0 ) break;
      T++;
    }
  }
  inv1 = inv1_check(db, &x, &m, T, "final", &shown, &s, &live);
  inv1_free(&x);
  if( inv1<0 ){
    fprintf(stderr, "stress: final snapshot failed: %s\n", sqlite3_errmsg(db));
    inv1 = 1;
  }
  phase("invariant 1 + model", &tph);
  /* (6) the events: threshold events exactly as the replay expects */
  {
    sqlite3_stmt *st = prep(db, "SELECT id, key, detail, ledger_id, used, cap"
                                " FROM quota_events WHERE kind='threshold' ORDER BY id");
    int i = 0, rc;
    ev_threshold = 0;
    while( st && (rc = sqlite3_step(st))==SQLITE_ROW ){
      const char *zKey = (const char*)sqlite3_column_text(st, 1);
      const char *zDetail = (const char*)sqlite3_column_text(st, 2);
      char zExp[32] = "";
      int bSame = 0;
      ev_threshold++;
      if( i<m.nExp ){
        ExpEvt *e = &m.aExp[i];
        thr_text(e->key, e->thr, zExp, sizeof(zExp));
        bSame = zKey && zDetail && strcmp(zKey, KEYS[e->key].name)==0 && strcmp(zDetail, zExp)==0
             && sqlite3_column_int64(st, 3)==e->ledger_id && sqlite3_column_int64(st, 4)==e->used
             && (e->cap<0 ? sqlite3_column_type(st, 5)==SQLITE_NULL
                          : sqlite3_column_int64(st, 5)==e->cap);
      }
      if( !bSame ){
        ev_mismatch++;
        if( shown++<10 ){
          if( i<m.nExp ){
            ExpEvt *e = &m.aExp[i];
            fprintf(stderr, "final: EVENT %lld is threshold %s of %s (ledger row %lld, used %lld,"
                    " cap %s); the replay expects threshold %s of %s (ledger row %lld, used %lld, cap %lld)\n",
                    (long long)sqlite3_column_int64(st, 0), zDetail ? zDetail : "NULL",
                    zKey ? zKey : "NULL", (long long)sqlite3_column_int64(st, 3),
                    (long long)sqlite3_column_int64(st, 4),
                    sqlite3_column_type(st, 5)==SQLITE_NULL ? "NULL" : (const char*)sqlite3_column_text(st, 5),
                    zExp, KEYS[e->key].name, (long long)e->ledger_id, (long long)e->used,
                    (long long)e->cap);
          }else{
            fprintf(stderr, "final: EVENT %lld (threshold %s of %s) is one the replay does not expect\n",
                    (long long)sqlite3_column_int64(st, 0), zDetail ? zDetail : "NULL", zKey ? zKey : "NULL");
          }
        }
      }
      i++;
    }
    if( !st || rc!=SQLITE_DONE ) ev_mismatch++;
    sqlite3_finalize(st);
    if( i<m.nExp ){
      ev_mismatch += m.nExp - i;
      if( shown++<10 ){
        char zExp[32];
        thr_text(m.aExp[i].key, m.aExp[i].thr, zExp, sizeof(zExp));
        fprintf(stderr, "final: MISSING EVENT: threshold %s of %s at ledger row %lld (and %d more)\n",
                zExp, KEYS[m.aExp[i].key].name, (long long)m.aExp[i].ledger_id, m.nExp-i-1);
      }
    }
    /* exhausted and shadow_denied: each from a committed charge or hold of
    ** its key's subtree; once per key and period, and again only after a
    ** top-up of the key re-armed it; shadow_denied only where enforce is
    ** 'shadow'; no event on a key without alert or shadow mode */
    ev_other = q_int(db, "SELECT count(*) FROM quota_events WHERE kind<>'threshold'");
    {
      int k, j;
      for(k=0; k<NKEYS; k++){
        char sql[300];
        i64 ntop = 0;
        for(j=0; j<ntp; j++) ntop += tp[j].key==k;
        snprintf(sql, sizeof(sql), "SELECT key, kind, period_start, count(*) FROM quota_events"
                 " WHERE key='%s' AND kind<>'threshold' GROUP BY kind, period_start"
                 " HAVING count(*)>%lld", KEYS[k].name, (long long)ntop+1);
        ev_mismatch += report_rows(db, "EVENT sent again without a re-arming top-up", sql, 0);
      }
    }
    ev_mismatch += report_rows(db, "EVENT without a charge or hold",
      "SELECT e.id, e.key, e.kind, e.ledger_id, e.hold_id FROM quota_events e"
      " WHERE (e.ledger_id IS NULL OR NOT EXISTS (SELECT 1 FROM chk.ledger l WHERE l.id=e.ledger_id))"
      " AND (e.kind<>'shadow_denied' OR e.hold_id IS NULL"
      "      OR NOT EXISTS (SELECT 1 FROM main.quota_holds h WHERE h.id=e.hold_id))", 0);
    {
      char sql[1200];
      int k, n = 0, j;
      char shadow[200] = "", quiet[400] = "";
      for(k=0; k<NKEYS; k++){
        if( KEYS[k].shadow ) snprintf(shadow+strlen(shadow), sizeof(shadow)-strlen(shadow),
                                      "%s'%s'", shadow[0] ? "," : "", KEYS[k].name);
        if( !KEYS[k].shadow && !KEYS[k].alert ) snprintf(quiet+strlen(quiet), sizeof(quiet)-strlen(quiet),
                                      "%s'%s'", quiet[0] ? "," : "", KEYS[k].name);
      }
      snprintf(sql, sizeof(sql), "SELECT id, key, kind FROM quota_events WHERE key IN (%s)"
               " OR (kind='shadow_denied' AND key NOT IN (%s))", quiet, shadow);
      ev_mismatch += report_rows(db, "EVENT of a key that sends none", sql, 0);
      /* the charge (or hold) is of the event's key or a key below it */
      for(k=0; k<NKEYS; k++){
        char names[400] = "";
        n = 0;
        for(j=0; j<NKEYS; j++){
          if( covers(k, j) ) n += snprintf(names+n, sizeof(names)-(size_t)n, "%s'%s'", n ? "," : "", KEYS[j].name);
        }
        snprintf(sql, sizeof(sql), "SELECT e.id, e.key, e.kind FROM quota_events e"
                 " LEFT JOIN chk.ledger l ON l.id=e.ledger_id"
                 " LEFT JOIN main.quota_holds h ON h.id=e.hold_id"
                 " LEFT JOIN main.quota_keys hk ON hk.id=h.key_id"
                 " WHERE e.key='%s' AND coalesce(l.key, hk.key) NOT IN (%s)", KEYS[k].name, names);
        ev_mismatch += report_rows(db, "EVENT caused by a charge of another subtree", sql, 0);
      }
    }
  }
  phase("events", &tph);
  inv2 = check_snap(&s, "final", &shown);
  inv2 += m.strict_used_over + m.strict_flagged + m.unknown_key + m.order_err
        + m.over_any_mis + m.late_no_hold;
  {
    int k;
    for(k=0; k<NKEYS; k++){
      if( !KEYS[k].strict && s.cap[k]>=0 && s.used[k]+s.reserved[k]>s.cap[k] ) loose_above++;
    }
  }
  /* a loose key over its cap must have an over=1 or late=1 row in its subtree */
  {
    int k;
    for(k=0; k<NKEYS; k++){
      if( !KEYS[k].strict && s.cap[k]>=0 && s.used[k]>s.cap[k] ){
        char sql[600];
        int j, n = 0;
        char names[400] = "";
        for(j=0; j<NKEYS; j++){
          if( covers(k, j) ){
            n += snprintf(names+n, sizeof(names)-(size_t)n, "%s'%s'", n ? "," : "", KEYS[j].name);
          }
        }
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM quota_ledger WHERE key IN (%s) AND (over OR late)", names);
        if( q_int(db, sql)<=0 ){
          unexplained++;
          fprintf(stderr, "final: loose key %s used %lld > cap %lld with no over/late row\n",
                  KEYS[k].name, (long long)s.used[k], (long long)s.cap[k]);
        }
      }
    }
  }

  read_kv(".obs", "viol2", &obs_viol2);
  read_kv(".obs", "viol1", &obs_viol1);
  read_kv(".obs", "snapshots", &obs_snaps);
  read_kv(".obs", "full", &obs_full);
  read_kv(".obs", "full_fail", &obs_full_fail);
  read_kv(".obs", "topups", &obs_topups);
  read_kv(".obs", "snap_busy", &obs_busy);
  read_kv(".obs", "snap_err", &obs_err);
  read_kv(".obs", "open_busy", &obs_open_busy);
  read_kv(".obs", "schema_changes", &obs_schema);

  if( lost ) fails++;
  if( lost_rid ) fails++;
  if( phantom ) fails++;
  if( dup ) fails++;
  if( idem ) fails++;
  if( ends ) fails++;
  if( inv1 ) fails++;
  if( inv2 ) fails++;
  if( unexplained ) fails++;
  if( ev_mismatch ) fails++;
  if( obs_viol1 || obs_viol2 || obs_err ) fails++;
  if( obs_snaps==0 ) fails++;
  if( errs - busy > 0 ) fails++;
  if( ps->crashes || ps->worker_fail ) fails++;
  if( ledger_rows<=0 ) fails++;
  if( g_left_open ){
    fails++;
    fprintf(stderr, "stress: %lld calls returned with a transaction still open"
            " (X lines in the logs)\n", (long long)g_left_open);
  }
  if( g_open_busy + obs_open_busy > 0 ){
    fails++;
    fprintf(stderr, "stress: sqlite3_open_v2() failed with SQLITE_BUSY %lld times: the extension's"
            " init touched the database while another process held a lock\n",
            (long long)(g_open_busy + obs_open_busy));
  }

  printf("stress: seed=%llu journal=%s procs=%d seconds=%d kill-ms=%d parents=%s sync=%s hold_ttl=%d\n",
         (unsigned long long)cfg.seed, cfg.wal ? "wal" : "delete", cfg.procs, cfg.seconds,
         cfg.kill_ms, cfg.parents ? "yes" : "no", cfg.sync_full ? "full" : "normal", cfg.hold_ttl);
  printf("calls=%lld acknowledged=%lld unacknowledged=%lld errors=%lld busy=%lld busy_rate=%.3f%% other_errors=%lld elapsed=%.1fs calls_per_s=%.0f\n",
         (long long)calls, (long long)acked, (long long)pending, (long long)errs, (long long)busy,
         calls>0 ? 100.0*(double)busy/(double)calls : 0.0, (long long)(errs-busy), ps->elapsed,
         ps->elapsed>0 ? (double)calls/ps->elapsed : 0.0);
  printf("kills=%lld respawns=%lld crashes=%lld worker_failures=%lld open_busy=%lld left_open=%lld stop_s=%.1f check_s=%.1f\n",
         (long long)ps->kills, (long long)ps->respawns, (long long)ps->crashes,
         (long long)ps->worker_fail, (long long)(g_open_busy + obs_open_busy), (long long)g_left_open,
         ps->stop_s, (double)(now_ms()-t0)/1000.0);
  printf("ledger_rows=%lld over_rows=%lld late_rows=%lld zero_settle_rows=%lld live_holds=%lld topups=%lld"
         " request_id_repeats=%lld hold_end_repeats=%lld schema_changes=%lld\n",
         (long long)ledger_rows, (long long)m.over_rows, (long long)m.late_rows,
         (long long)zero_settle_rows, (long long)live, (long long)obs_topups,
         (long long)replays, (long long)resettles, (long long)obs_schema);
  printf("observer: snapshots=%lld busy=%lld errors=%lld invariant2_violations=%lld invariant1_checks=%lld invariant1_violations=%lld failed_checks=%lld\n",
         (long long)obs_snaps, (long long)obs_busy, (long long)obs_err, (long long)obs_viol2,
         (long long)obs_full, (long long)obs_viol1, (long long)obs_full_fail);
  printf("model: rows=%lld strict_over=%lld strict_flagged=%lld over_flag_mismatch=%lld late_not_settle=%lld loose_keys_above_cap=%lld unexplained=%lld\n",
         (long long)m.rows, (long long)m.strict_used_over, (long long)m.strict_flagged,
         (long long)m.over_any_mis, (long long)m.late_no_hold, (long long)loose_above,
         (long long)unexplained);
  printf("events: threshold=%lld expected=%d exhausted_or_shadow=%lld event_mismatches=%lld\n",
         (long long)ev_threshold, m.nExp, (long long)ev_other, (long long)ev_mismatch);
  printf("lost_acks=%lld phantoms=%lld duplicates=%lld idempotency_violations=%lld hold_end_violations=%lld request_id_mismatch=%lld invariant1_violations=%lld invariant_violations=%lld integrity=%s\n",
         (long long)lost, (long long)phantom, (long long)dup, (long long)idem, (long long)ends,
         (long long)lost_rid, (long long)inv1, (long long)inv2, integrity);
  printf("result: %s (seed %llu)\n", fails ? "FAIL" : "PASS", (unsigned long long)cfg.seed);
  free(tp);
  free(m.aExp);
  sqlite3_close(db);
  return fails ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* Parent: spawn, kill, respawn                                        */

static pid_t spawn(int what, int slot, int inc){
  pid_t pid = fork();
  if( pid<0 ){ perror("stress: fork"); return -1; }
  if( pid==0 ){
    if( what==0 ) worker_main(slot, inc);
    observer_main();
    _exit(0);
  }
  return pid;
}

static void usage(void){
  fprintf(stderr,
    "usage: stress DBFILE [--journal wal|delete] [--procs N] [--seconds S] [--seed X]\n"
    "              [--kill-ms M] [--no-parent] [--sync full|normal] [--hold-ttl S]\n"
    "              [--observe-ms MS] [--busy-ms MS] [--schema-ms MS] [--quiet]\n"
    "              [--check-only]\n");
  exit(2);
}

static volatile sig_atomic_t g_int = 0;
static void on_int(int sig){ (void)sig; g_int = 1; }

int main(int argc, char **argv){
  pid_t pids[MAX_PROCS], obs;
  int incs[MAX_PROCS];
  Stats st;
  Rng krng;
  i64 t_start, t_end, next_kill;
  int i, rc, status;
  struct sigaction sa;

  memset(&cfg, 0, sizeof(cfg));
  memset(&st, 0, sizeof(st));
  cfg.wal = 1; cfg.procs = 4; cfg.seconds = 10; cfg.kill_ms = 250; cfg.parents = 1;
  cfg.sync_full = 1; cfg.hold_ttl = 30; cfg.observe_ms = 10; cfg.busy_ms = 5000;
  cfg.seed = (uint64_t)time(0) ^ ((uint64_t)getpid()<<16);
  cfg.seed %= 1000000000ULL;
  for(i=1; i<argc; i++){
    const char *a = argv[i];
    const char *v = i+1<argc ? argv[i+1] : 0;
    if( a[0]!='-' ){ if( cfg.db ) usage(); cfg.db = a; continue; }
    if( a[1]=='-' ) a++;
    if( strcmp(a, "-no-parent")==0 ){ cfg.parents = 0; continue; }
    if( strcmp(a, "-quiet")==0 ){ cfg.quiet = 1; continue; }
    if( strcmp(a, "-check-only")==0 ){ cfg.check_only = 1; continue; }
    if( !v ) usage();
    i++;
    if( strcmp(a, "-journal")==0 ){
      if( strcmp(v, "wal")==0 ) cfg.wal = 1;
      else if( strcmp(v, "delete")==0 ) cfg.wal = 0;
      else usage();
    }else if( strcmp(a, "-procs")==0 ) cfg.procs = atoi(v);
    else if( strcmp(a, "-seconds")==0 ) cfg.seconds = atoi(v);
    else if( strcmp(a, "-seed")==0 ) cfg.seed = strtoull(v, 0, 0);
    else if( strcmp(a, "-kill-ms")==0 ) cfg.kill_ms = atoi(v);
    else if( strcmp(a, "-hold-ttl")==0 ) cfg.hold_ttl = atoi(v);
    else if( strcmp(a, "-observe-ms")==0 ) cfg.observe_ms = atoi(v);
    else if( strcmp(a, "-busy-ms")==0 ) cfg.busy_ms = atoi(v);
    else if( strcmp(a, "-schema-ms")==0 ) cfg.schema_ms = atoi(v);
    else if( strcmp(a, "-sync")==0 ){
      if( strcmp(v, "full")==0 ) cfg.sync_full = 1;
      else if( strcmp(v, "normal")==0 ) cfg.sync_full = 0;
      else usage();
    }else usage();
  }
  if( !cfg.db || cfg.procs<1 || cfg.procs>MAX_PROCS || cfg.seconds<1 || cfg.kill_ms<0
      || cfg.hold_ttl*1000<=MARGIN_MS+2000 || cfg.observe_ms<0 || cfg.busy_ms<0
      || cfg.schema_ms<0 ) usage();

  sqlite3_auto_extension((void(*)(void))sqlite3_quota_init);
  parse_alerts();
  setvbuf(stdout, 0, _IOLBF, 0);
  printf("stress: seed=%llu (replay: --seed %llu), SQLite %s\n", (unsigned long long)cfg.seed,
         (unsigned long long)cfg.seed, sqlite3_libversion());
  if( cfg.check_only ){
    /* re-run the final checks on the files of an earlier run (same
    ** --procs, --no-parent); counters of the run itself read 0 */
    return final_check(&st);
  }
  rc = setup();
  if( rc ) return rc;

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_int;
  sigaction(SIGINT, &sa, 0);
  signal(SIGPIPE, SIG_IGN);
  krng.s = mix3(cfg.seed, 0x4b494c4cULL, 0);

  /* no connection is open in this process from here to the final check */
  t_start = now_ms();
  obs = spawn(1, 0, 0);
  for(i=0; i<cfg.procs; i++){ incs[i] = 0; pids[i] = spawn(0, i, 0); }
  t_end = t_start + (i64)cfg.seconds*1000;
  next_kill = cfg.kill_ms ? t_start + cfg.kill_ms/2 + rngBelow(&krng, cfg.kill_ms+1) : t_end + 1;
  while( !g_int ){
    i64 now = now_ms();
    pid_t p;
    if( now>=t_end ) break;
    /* reap workers that ended on their own: a crash is a failure */
    while( (p = waitpid(-1, &status, WNOHANG))>0 ){
      int slot = -1;
      for(i=0; i<cfg.procs; i++) if( pids[i]==p ) slot = i;
      if( WIFSIGNALED(status) ){
        st.crashes++;
        fprintf(stderr, "stress: %s %d died of signal %d\n", slot>=0 ? "worker" : "observer",
                slot, WTERMSIG(status));
      }else{
        st.worker_fail++;
        fprintf(stderr, "stress: %s %d exited with status %d\n", slot>=0 ? "worker" : "observer",
                slot, WEXITSTATUS(status));
      }
      if( slot>=0 ){ pids[slot] = spawn(0, slot, ++incs[slot]); st.respawns++; }
      else if( p==obs ) obs = -1;
    }
    if( now>=next_kill ){
      int slot = rngBelow(&krng, cfg.procs);
      if( pids[slot]>0 ){
        kill(pids[slot], SIGKILL);
        waitpid(pids[slot], &status, 0);
        st.kills++;
        pids[slot] = spawn(0, slot, ++incs[slot]);
        st.respawns++;
      }
      next_kill = now + cfg.kill_ms/2 + rngBelow(&krng, cfg.kill_ms+1);
    }
    {
      i64 wait = next_kill - now_ms();
      if( wait>20 ) wait = 20;
      sleep_ms((int)wait);
    }
  }
  /* stop: workers finish their current call; then the observer */
  for(i=0; i<cfg.procs; i++) if( pids[i]>0 ) kill(pids[i], SIGTERM);
  {
    i64 deadline = now_ms() + 20000;
    int left = cfg.procs;
    while( left>0 ){
      pid_t p = waitpid(-1, &status, WNOHANG);
      if( p>0 ){
        for(i=0; i<cfg.procs; i++) if( pids[i]==p ){
          pids[i] = -1; left--;
          if( WIFSIGNALED(status) ){
            st.crashes++;
            fprintf(stderr, "stress: worker %d died of signal %d while stopping\n", i, WTERMSIG(status));
          }else if( WEXITSTATUS(status)!=0 ){
            st.worker_fail++;
            fprintf(stderr, "stress: worker %d exited with status %d\n", i, WEXITSTATUS(status));
          }
        }
        if( p==obs ){ obs = -1; }
        continue;
      }
      if( now_ms()>deadline ){
        fprintf(stderr, "stress: workers did not stop in 20 s; killing them\n");
        for(i=0; i<cfg.procs; i++) if( pids[i]>0 ){ kill(pids[i], SIGKILL); waitpid(pids[i], &status, 0); pids[i] = -1; }
        st.worker_fail++;
        break;
      }
      sleep_ms(10);
    }
  }
  if( obs>0 ){
    kill(obs, SIGTERM);
    if( waitpid(obs, &status, 0)==obs && (WIFSIGNALED(status) || WEXITSTATUS(status)!=0) ){
      st.crashes += WIFSIGNALED(status);
      st.worker_fail += !WIFSIGNALED(status);
      fprintf(stderr, "stress: observer ended badly (status %d)\n", status);
    }
  }else{
    fprintf(stderr, "stress: the observer had stopped early\n");
    st.worker_fail++;
  }
  st.elapsed = (double)(now_ms() - t_start)/1000.0;
  st.stop_s = (double)(now_ms() - t_end)/1000.0;
  return final_check(&st);
}
