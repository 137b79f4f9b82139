/*
** quota_int.h: declarations shared by the files of sqlite-quota.
**
**   quota.c      the entry point and the per-connection state
**   calendar.c   time arithmetic: periods, anchors, durations (pure)
**   store.c      the shadow tables, their prepared statements, and every
**                change a call makes to them (reserve, settle, sweep ...)
**   vtab.c       the `quota` virtual table over the shadow tables
**   functions.c  the SQL functions and the transaction around each call
*/
#ifndef QUOTA_INT_H
#define QUOTA_INT_H

#include "sqlite3ext.h"
#ifndef SQLITE_CORE
SQLITE_EXTENSION_INIT3
#endif
#include "quota.h"

#define LARGEST_INT64 ((sqlite3_int64)0x7fffffffffffffffLL)

/* Kinds of period; the order is stored nowhere, only the period text is. */
#define QUOTA_LIFETIME 0
#define QUOTA_HOUR     1
#define QUOTA_DAY      2
#define QUOTA_WEEK     3
#define QUOTA_MONTH    4
#define QUOTA_YEAR     5
#define QUOTA_ROLLING  6

/* States of a hold (quota_holds.state). */
#define HOLD_LIVE      0
#define HOLD_SETTLED   1
#define HOLD_RELEASED  2
#define HOLD_EXPIRED   3      /* outlived its ttl; no longer counted */
#define HOLD_ORPHANED  4      /* its key was deleted while it was live */

/* Operations remembered under a request id (quota_requests.op). */
#define REQ_RESERVE    1
#define REQ_CONSUME    2
#define REQ_RECORD     3

/*
** Conditions the code itself guarantees, marked the way SQLite marks them:
** ALWAYS(X) for one that is always true, NEVER(X) for one that is never
** true. Coverage builds (QUOTA_COVERAGE_TEST) make them constants, so that
** branch coverage counts only branches a test can take; QUOTA_DEBUG builds
** (make asan) assert them; other builds keep the check as written, so a
** broken guarantee still takes the safe path instead of stopping the host.
*/
#if defined(QUOTA_COVERAGE_TEST)
# define ALWAYS(X) (1)
# define NEVER(X)  (0)
#elif defined(QUOTA_DEBUG)
# include <assert.h>
# define ALWAYS(X) ((X)?1:(assert(0),0))
# define NEVER(X)  ((X)?(assert(0),1):0)
#else
# define ALWAYS(X) (X)
# define NEVER(X)  (X)
#endif

/* Store schema version written into quota_meta (see store.c: SCHEMA
** VERSIONS); older stores are upgraded when their table is opened. */
#define QUOTA_SCHEMA_VERSION 2
#define QUOTA_STR_(x) #x
#define QUOTA_STR(x) QUOTA_STR_(x)

/* Key-loading statements start with these columns of %_keys, in order:
** id, cap, kind, len, anchor, parent, used, reserved, pstart, oldest,
** wtotal (quotaReadKeyRow). */
#define QUOTA_KEY_COLUMNS 11

/* Times are kept within the years 0000 to 9999, the range of the text
** form 'YYYY-MM-DD HH:MM:SS'. A stored period start may lie up to one
** period (at most a year) outside: QUOTA_TIME_SLACK. */
#define QUOTA_TIME_MIN   ((sqlite3_int64)-62167219200LL)  /* 0000-01-01 */
#define QUOTA_TIME_MAX   ((sqlite3_int64)253402300799LL)  /* 9999-12-31 23:59:59 */
#define QUOTA_TIME_SLACK ((sqlite3_int64)400*86400)
#define QUOTA_WINDOW_MAX ((sqlite3_int64)100*366*86400)   /* see quotaParsePeriod */

/* Deepest parent chain followed before the store is called corrupt. */
#define QUOTA_MAX_DEPTH 64

typedef struct QuotaCivil QuotaCivil;
typedef struct QuotaConn QuotaConn;
typedef struct QuotaTab QuotaTab;
typedef struct QuotaKey QuotaKey;
typedef struct QuotaChain QuotaChain;

struct QuotaCivil {
  sqlite3_int64 y;          /* year */
  int m, d;                 /* month 1-12, day 1-31 */
  int H, M, S;              /* time of day */
};

/* calendar.c */
void quotaCalSplit(sqlite3_int64 t, QuotaCivil *p);
sqlite3_int64 quotaCalJoin(const QuotaCivil *p);
#define QUOTA_TIME_TEXT 24   /* room for 'YYYYY-MM-DD HH:MM:SS' */
void quotaCalFormat(sqlite3_int64 t, char *zOut);   /* QUOTA_TIME_TEXT bytes */
sqlite3_int64 quotaCalDefaultAnchor(int eKind);
void quotaCalBounds(int eKind, sqlite3_int64 anchor, sqlite3_int64 t,
                    sqlite3_int64 *pStart, sqlite3_int64 *pEnd);
int quotaParseDurationText(const char *z, sqlite3_int64 *pSecs, int *pUnitMul);
int quotaParsePeriod(const char *z, int *pKind, sqlite3_int64 *pLen, char *zCanon);

/*
** Per-connection state, shared by every function and by the module as their
** user data. Reference counted: each registration holds one reference.
*/
struct QuotaConn {
  sqlite3 *db;
  int nRef;                 /* registrations still holding this object */
  int bPinned;              /* true when quota_clock() pinned the clock */
  sqlite3_int64 iPinned;    /* the pinned time, when bPinned */
  QuotaTab *pTab;           /* the connected table main.quota, or NULL */
  sqlite3_vfs *pVfs;        /* main's VFS, the clock; found on first use */
};

void quotaConnUnref(void *p);
sqlite3_int64 quotaNow(QuotaConn *pConn);

/* One key as the store holds it, plus the effective values at `now`. */
struct QuotaKey {
  sqlite3_int64 id;         /* rowid in %_keys */
  int bCap;                 /* true when cap is not NULL */
  sqlite3_int64 cap;
  int eKind;                /* QUOTA_LIFETIME .. QUOTA_ROLLING */
  sqlite3_int64 nLen;       /* window length, rolling only */
  int bAnchor;              /* true when an anchor is set */
  sqlite3_int64 anchor;
  sqlite3_int64 parentId;   /* 0 when there is no parent */
  sqlite3_int64 used;       /* units charged in the stored period / window */
  sqlite3_int64 reserved;   /* units held by holds counted at this key */
  sqlite3_int64 pstart;     /* start of the period `used` belongs to */
  int bOldest;              /* rolling: true when the window has a bucket */
  sqlite3_int64 oldest;     /* rolling: the oldest bucket's second */
  sqlite3_int64 wtotal;     /* rolling: running total through the newest bucket */
  int bPeriod;              /* computed: true for calendar periods */
  sqlite3_int64 pend;       /* computed: end of the current period */
  int bDirty;               /* QUOTA_DIRTY_*: what must be written back */
};

/* QuotaKey.bDirty: most calls change only the counters, and an UPDATE that
** sets two columns binds and checks less than one that sets five. */
#define QUOTA_DIRTY_COUNTS  0x01  /* used, reserved */
#define QUOTA_DIRTY_PERIOD  0x02  /* pstart, oldest, wtotal */

/* A key and its ancestors, leaf first. */
struct QuotaChain {
  int n;
  QuotaKey a[QUOTA_MAX_DEPTH];
};

/* Longest key name (bytes, with its terminator) the key cache holds. */
#define QUOTA_KEY_CACHE_NAME 64

/* The virtual table; it owns the prepared statements of its store. */
struct QuotaTab {
  sqlite3_vtab base;        /* Base class - must be first */
  int nRef;                 /* 1 for SQLite's handle, +1 per running call */
  sqlite3 *db;
  QuotaConn *pConn;         /* the connection's shared state */
  char *zDb;                /* schema holding the table */
  char *zName;              /* the table's name */
  sqlite3_int64 nHoldTtl;   /* default hold ttl, seconds */
  sqlite3_int64 nIdem;      /* idempotency window, seconds */
  sqlite3_int64 nRetention; /* default ledger retention, -1 = forever */
  sqlite3_int64 nPurgeLimit;/* rows one quota_purge() call may examine */
  int bClockPinned;         /* option clock=pinned: writes need quota_clock */
  sqlite3_int64 iSwept;     /* sweep watermark, as last read or written */
  sqlite3_int64 iSweepId;   /* where the next ordered-lane sweep starts */
  sqlite3_int64 iL0Max;     /* largest ordered-lane expiry, read with a key */
  int bCache;               /* the three above are the committed state as of */
  unsigned int uCacheVersion;  /* ... this SQLITE_FCNTL_DATA_VERSION */
  int bUseCache;            /* the running call trusts them (no re-read) */
  int bStateRead;           /* the running call read all three from disk */
  /* The last key a writing call loaded by name, as stored. Trusted on the
  ** same terms as the sweep state (bUseCache): then no connection has
  ** written since our last commit, so the row on disk is this one. */
  int bKeyCacheOn;          /* the running call may fill keyCache */
  int bKeyCached;           /* keyCache holds the row of key zKeyCache */
  QuotaKey keyCache;
  char zKeyCache[QUOTA_KEY_CACHE_NAME];
  sqlite3_stmt **aStmt;     /* prepared on first use, see store.c */
};

/* store.c */
int quotaStoreCreate(sqlite3 *db, const char *zDb, const char *zName);
int quotaStoreDestroy(sqlite3 *db, const char *zDb, const char *zName);
int quotaStoreRename(sqlite3 *db, const char *zDb, const char *zOld,
                     const char *zNew);
int quotaStoreUpgrade(QuotaTab *p, sqlite3_int64 iFrom, char **pzErr);
extern const char *const quotaShadowSuffix[];
int quotaStmtOpen(QuotaTab *p);
void quotaStmtClose(QuotaTab *p);
void quotaStmtFinalizeAll(QuotaTab *p);
int quotaLoadKeyByName(QuotaTab *p, const char *zKey, QuotaKey *k, int *pFound);
int quotaLoadKeyById(QuotaTab *p, sqlite3_int64 id, QuotaKey *k, int *pFound);
int quotaLoadChain(QuotaTab *p, const QuotaKey *pLeaf, QuotaChain *c);
int quotaSweep(QuotaTab *p, sqlite3_int64 now);
int quotaNormalize(QuotaTab *p, QuotaKey *k, sqlite3_int64 now, int bWrite);
int quotaEffective(QuotaTab *p, QuotaKey *k, sqlite3_int64 now);
int quotaSaveKey(QuotaTab *p, QuotaKey *k);
int quotaCharge(QuotaTab *p, QuotaKey *k, sqlite3_int64 amount, sqlite3_int64 now);
int quotaRetryAfter(QuotaTab *p, QuotaKey *k, sqlite3_int64 amount,
                    sqlite3_int64 now, sqlite3_int64 *pSecs);
int quotaStmt(QuotaTab *p, int iStmt, sqlite3_stmt **ppStmt);
int quotaStepDone(sqlite3_stmt *pStmt);
int quotaSetUsed(QuotaTab *p, QuotaKey *k, sqlite3_int64 used, sqlite3_int64 now);
int quotaInsertLedger(QuotaTab *p, const char *zKey, sqlite3_int64 amount,
    sqlite3_int64 at, const char *zReq, sqlite3_int64 holdId,
    sqlite3_value *pMeta, int bOver, int bLate, sqlite3_int64 *pId);
int quotaPurge(QuotaTab *p, sqlite3_int64 now, sqlite3_int64 *pnRemoved);
int quotaReadKeyRow(QuotaTab *p, sqlite3_stmt *pStmt, int bSweep, QuotaKey *k);
int quotaAdjustReservedChain(QuotaTab *p, sqlite3_int64 leafId, sqlite3_int64 delta);
int quotaKeyName(QuotaTab *p, sqlite3_int64 id, char **pzKey);
int quotaKeyRow(QuotaTab *p, sqlite3_int64 id, sqlite3_stmt **ppRow);
int quotaMetaGet(QuotaTab *p, const char *zName, sqlite3_int64 *pVal);
int quotaOrphanHolds(QuotaTab *p, QuotaKey *k, sqlite3_int64 now);
int quotaDeleteKeyRows(QuotaTab *p, sqlite3_int64 id);
int quotaNoteSave(QuotaTab *p, sqlite3_int64 id, sqlite3_value *pNote);
int quotaSubtreeDepth(QuotaTab *p, sqlite3_int64 id, int *pnDepth);
int quotaParseTime(QuotaConn *pConn, sqlite3_value *pVal, sqlite3_int64 *pT);
int quotaValueInt(sqlite3_value *v, sqlite3_int64 *pOut);
sqlite3_int64 quotaAddSat(sqlite3_int64 a, sqlite3_int64 b);
sqlite3_int64 quotaSubSat(sqlite3_int64 a, sqlite3_int64 b);

/* A hold as quota_holds stores it. */
typedef struct QuotaHold QuotaHold;
struct QuotaHold {
  sqlite3_int64 keyId;      /* the key it was reserved on */
  sqlite3_int64 amount;     /* units held */
  sqlite3_int64 expires;    /* end of its ttl */
  int state;                /* HOLD_* */
  sqlite3_int64 charged;    /* what settle charged, when settled */
  sqlite3_value *pReq;      /* its request id, or NULL (sqlite3_value_dup) */
  const char *zKey;         /* its key's name, NULL if the key is gone */
  char *zKeyOwned;          /* zKey when it is too long for zKeyBuf */
  char zKeyBuf[QUOTA_KEY_CACHE_NAME];
};
int quotaHoldGet(QuotaTab *p, sqlite3_int64 id, QuotaHold *h, QuotaKey *k,
                 int *pFound);
void quotaHoldClear(QuotaHold *h);
int quotaHoldInsert(QuotaTab *p, sqlite3_int64 keyId, sqlite3_int64 amount,
                    sqlite3_int64 expires, int bDefaultTtl, const char *zReq,
                    sqlite3_int64 *pId);
int quotaSweepState(QuotaTab *p);
int quotaHoldEnd(QuotaTab *p, sqlite3_int64 id, int state, sqlite3_int64 ended,
                 sqlite3_int64 charged);

/* A remembered request id. */
typedef struct QuotaRequest QuotaRequest;
struct QuotaRequest {
  int bFound;               /* remembered: used within the idempotency window */
  int op;                   /* REQ_* */
  sqlite3_int64 amount;
  sqlite3_int64 result;     /* hold id or ledger id */
  int bResultNull;
};
int quotaRequestGet(QuotaTab *p, sqlite3_int64 keyId, const char *zReq,
                    sqlite3_int64 now, QuotaRequest *r);
int quotaRequestPut(QuotaTab *p, sqlite3_int64 keyId, const char *zReq, int op,
                    sqlite3_int64 amount, sqlite3_int64 result, sqlite3_int64 now);
int quotaIntegrity(QuotaTab *p, char **pzErr);

/* Statements of store.c, by number. */
enum {
  QS_KEY_BY_NAME, QS_KEY_BY_NAME_CACHED, QS_KEY_BY_ID, QS_KEY_SAVE,
  QS_KEY_SAVE_COUNTS, QS_KEY_INSERT,
  QS_KEY_UPDATE_ALL, QS_KEY_ROW, QS_KEY_DELETE, QS_NOTE_PUT, QS_NOTE_DELETE,
  QS_KEY_CHILD, QS_KEY_NAME,
  QS_META_GET, QS_META_SET,
  QS_SWEEP_STATE, QS_SWEEP_SAVE, QS_LANE0_SCAN, QS_LANE1_SCAN, QS_LANE1_DELETE,
  QS_EXPIRY_INSERT, QS_HOLD_END,
  QS_HOLD_INSERT, QS_HOLD_GET, QS_HOLD_GET_CACHED, QS_HOLDS_OF_KEY,
  QS_LEDGER_INSERT,
  QS_REQ_GET, QS_REQ_PUT, QS_REQ_DELETE_KEY,
  QS_WIN_ADD, QS_WIN_JOIN, QS_WIN_TOTAL_AT, QS_WIN_DELETE_BEFORE, QS_WIN_FIRST_AFTER,
  QS_WIN_DELETE_KEY, QS_WIN_NEWEST,
  QS_LOCK, QS_BEGIN, QS_BEGIN_READ, QS_COMMIT, QS_ROLLBACK, QS_SAVEPOINT, QS_RELEASE,
  QS_ROLLBACK_TO,
  QS_COUNT
};

/* vtab.c */
int quotaRegisterModule(sqlite3 *db, QuotaConn *pConn);
void quotaTabUnref(QuotaTab *p);

/* functions.c */
int quotaRegisterFunctions(sqlite3 *db, QuotaConn *pConn);

#endif /* QUOTA_INT_H */
