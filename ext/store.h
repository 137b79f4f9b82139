/*
** store.h: the shadow tables of one quota table, their statements and what
** a connection keeps in memory about them (store.c).
**
** A QuotaStore is everything sqlite-quota knows about one quota table on
** one connection: where its shadow tables are, its options, its prepared
** statements, and the caches that let a call skip reading what it already
** knows. Every statement on a shadow table is in store.c's table.
*/
#ifndef QUOTA_STORE_H
#define QUOTA_STORE_H

#include "util.h"

/* Store schema version written into quota_meta (see store.c: SCHEMA
** VERSIONS); older stores are upgraded when their table is opened. */
#define QUOTA_SCHEMA_VERSION 4

/* Deepest parent chain followed before the store is called damaged. */
#define QUOTA_MAX_DEPTH 64

/* States of a hold (quota_holds.state). Stored: never renumber. */
#define HOLD_LIVE      0
#define HOLD_SETTLED   1
#define HOLD_RELEASED  2
#define HOLD_EXPIRED   3      /* outlived its ttl; no longer counted */
#define HOLD_ORPHANED  4      /* its key was deleted while it was live */

/* Operations remembered under a request id (quota_requests.op). Stored. */
#define REQ_RESERVE    1
#define REQ_CONSUME    2
#define REQ_RECORD     3
#define REQ_RESERVE_UPTO 4    /* quota_reserve_upto: amount is max_amount */
#define REQ_GRANT      5      /* quota_grant: result is the grant id */

typedef struct QuotaKey QuotaKey;
typedef struct QuotaHold QuotaHold;
typedef struct QuotaRequest QuotaRequest;
typedef struct QuotaOptions QuotaOptions;
typedef struct QuotaStore QuotaStore;
typedef struct QuotaTxn QuotaTxn;

/*
** One key as quota_keys stores it; period.c fills the computed fields when
** it brings the key to a given time.
*/
struct QuotaKey {
  sqlite3_int64 id;         /* rowid in %_keys */
  int bCap;                 /* true when cap is not NULL */
  sqlite3_int64 cap;
  int eKind;                /* the kind of period, QUOTA_KIND_* (period.h) */
  sqlite3_int64 nLen;       /* window length in seconds, windows only */
  int bAnchor;              /* true when an anchor is set */
  sqlite3_int64 anchor;
  sqlite3_int64 parentId;   /* 0 when there is no parent */
  sqlite3_int64 used;       /* units charged in the stored period / window */
  sqlite3_int64 reserved;   /* units held by holds counted at this key */
  sqlite3_int64 pstart;     /* start of the period `used` belongs to;
                            ** buckets: the second refilled up to */
  int bOldest;              /* windows: true when the window has a bucket */
  sqlite3_int64 oldest;     /* windows: the oldest bucket's second */
  sqlite3_int64 wtotal;     /* windows: running total through the newest
                            ** bucket; buckets: the refill's remainder, in
                            ** 1/nLen of a unit */
  sqlite3_int64 nRate;      /* buckets: N of 'rate N per ...' (keyconf.rate),
                            ** 0 until period.c loads it */
  int bPeriod;              /* computed: true for calendar periods */
  sqlite3_int64 pend;       /* computed: end of the current period */
  int mDirty;               /* QUOTA_DIRTY_*: what must be written back */
  /* What the key's row of quota_keyconf says for events and enforcement
  ** (quotaStoreConfLoad; events.c). bConf: these fields were read (a key
  ** without a row has them all 0). */
  int bConf;
  int bShadow;              /* enforce = 'shadow': never denies */
  int bFired;               /* keyconf.fired is not NULL */
  sqlite3_int64 fired;      /* events already sent, and their period */
  int nAlert;               /* thresholds in aAlert */
  sqlite3_int64 aAlert[QUOTA_ALERT_MAX];  /* N units, or -N for N% of cap */
  /* Credits (quota_keyconf, read with the fields above). nGrants: its open
  ** grants (remaining > 0, not voided; expired ones too): while 0, no call
  ** reads quota_grants for the key. */
  sqlite3_int64 nGrants;
  int bRollover;            /* rollover is not NULL */
  sqlite3_int64 rollover;   /* calendar keys: most units carried over */
  /* Computed for a call, never stored (the key cache drops them): */
  sqlite3_int64 credits;    /* unused units of its live grants at the call's
                            ** time (+ a rollover readers see pending) */
  sqlite3_int64 drawn;      /* units this call's charge takes from grants */
};

/* Most open grants of a key held in memory (QuotaStore.aHeld). */
#define QUOTA_GRANTS_HELD 8

/* One open grant, as the draw order needs it. */
typedef struct QuotaHeldGrant QuotaHeldGrant;
struct QuotaHeldGrant {
  sqlite3_int64 id;
  sqlite3_int64 remaining;
  sqlite3_int64 priority;
  int bExpires;             /* expires is not NULL */
  sqlite3_int64 expires;
};

/* QuotaKey.mDirty: most calls change only the counters, and an UPDATE that
** sets two columns binds and checks less than one that sets five. */
#define QUOTA_DIRTY_COUNTS  0x01  /* used, reserved */
#define QUOTA_DIRTY_PERIOD  0x02  /* pstart, oldest, wtotal */

/* Longest key name (bytes, with its terminator) kept without allocating:
** the key cache and a hold's copy of its key's name. */
#define QUOTA_KEY_NAME_BUF 64

/* A hold as quota_holds stores it. */
struct QuotaHold {
  sqlite3_int64 keyId;      /* the key it was reserved on */
  sqlite3_int64 amount;     /* units held */
  sqlite3_int64 expires;    /* end of its ttl */
  int state;                /* HOLD_* */
  sqlite3_int64 charged;    /* what settle charged, when settled */
  sqlite3_value *pReq;      /* its request id, or NULL (sqlite3_value_dup) */
  const char *zKey;         /* its key's name, NULL if the key is gone */
  char *zKeyOwned;          /* zKey when it is too long for zKeyBuf */
  char zKeyBuf[QUOTA_KEY_NAME_BUF];
};

/* A remembered request id. */
struct QuotaRequest {
  int bFound;               /* remembered: used within the idempotency window */
  int op;                   /* REQ_* */
  sqlite3_int64 amount;
  sqlite3_int64 result;     /* hold id or ledger id */
  int bResultNull;
};

/* The table's options, as quota_meta stores them (quota_configure). */
struct QuotaOptions {
  sqlite3_int64 nHoldTtl;   /* default hold ttl, seconds */
  sqlite3_int64 nIdem;      /* idempotency window, seconds */
  sqlite3_int64 nRetention; /* default ledger retention, -1 = forever */
  sqlite3_int64 nPurgeLimit;/* rows one quota_purge() call may examine */
  sqlite3_int64 bClockPinned;  /* clock=pinned: writes need quota_clock */
};

/* Option numbers, for quota_configure and CREATE VIRTUAL TABLE arguments. */
#define QUOTA_OPT_HOLD_TTL     0
#define QUOTA_OPT_IDEMPOTENCY  1
#define QUOTA_OPT_RETENTION    2
#define QUOTA_OPT_PURGE_LIMIT  3
#define QUOTA_OPT_CLOCK        4
#define QUOTA_OPT_COUNT        5
extern const char *const quotaOptionName[QUOTA_OPT_COUNT];
int quotaOptionParse(int iOpt, sqlite3_value *pVal, const char *zVal,
                     sqlite3_int64 *pOut);
const char *quotaOptionExpect(int iOpt);
sqlite3_int64 *quotaOptionSlot(QuotaOptions *pOpt, int iOpt);

/*
** How a call joined the transaction state it found (quotaStoreTxnBegin).
** "Clean" means no statement of the caller was running when the call
** started: then nothing but the caller's own SQL can have made it (a
** database schema's CHECK constraint runs only inside a statement).
*/
#define QUOTA_TXN_OWN        1   /* BEGIN IMMEDIATE ... COMMIT of its own */
#define QUOTA_TXN_SAVEPOINT  2   /* SAVEPOINT ... RELEASE in the caller's */
#define QUOTA_TXN_BARE       3   /* inside the caller's writing statement */
#define QUOTA_TXN_READ_OWN   4   /* a read transaction of its own, held
                                  ** by QS_READ_PIN left stepped */
#define QUOTA_TXN_READ_BARE  5   /* a read inside whatever is open */
struct QuotaTxn {
  int eMode;                /* QUOTA_TXN_*, 0 when none was opened */
  int bClean;               /* autocommit and no transaction open at start */
  int bReading;             /* refused: a reading statement of the caller runs */
};

/* Statements of store.c, by number. */
enum {
  QS_STATE, QS_KEY_BY_NAME, QS_KEY_BY_ID, QS_KEY_SAVE, QS_KEY_SAVE_COUNTS,
  QS_KEY_INSERT, QS_KEY_UPDATE_ALL, QS_KEY_ROW, QS_KEY_DELETE, QS_KEY_CHILD,
  QS_KEY_NAME, QS_NOTE_PUT, QS_NOTE_DELETE,
  QS_META_GET, QS_META_SET, QS_SWEEP_SAVE, QS_LANE0_SCAN, QS_LANE1_SCAN,
  QS_LANE1_DELETE, QS_EXPIRY_INSERT, QS_HOLD_END, QS_HOLD_INSERT, QS_HOLD_GET,
  QS_HOLDS_OF_KEY, QS_LEDGER_INSERT, QS_REQ_GET, QS_REQ_PUT, QS_REQ_DELETE_KEY,
  QS_WIN_ADD, QS_WIN_JOIN, QS_WIN_TOTAL_AT, QS_WIN_DELETE_BEFORE,
  QS_WIN_FIRST_AFTER, QS_WIN_DELETE_KEY, QS_WIN_NEWEST, QS_WIN_REBASE,
  QS_LOCK, QS_BEGIN, QS_READ_PIN, QS_COMMIT, QS_ROLLBACK, QS_SAVEPOINT,
  QS_RELEASE, QS_ROLLBACK_TO, QS_STMT_MARK,
  /* admission: token buckets, leases, the time holds were taken */
  QS_RATE_GET, QS_RATE_SET, QS_RATE_CLEAR, QS_KEYCONF_TIDY, QS_KEYCONF_DELETE,
  QS_HOLD_EXTEND, QS_EXPIRY_DELETE, QS_HOLDTIME_ADD, QS_HOLDTIME_AT,
  /* operators: per-key alert/enforce, the event outbox */
  QS_CONF_ANY, QS_CONF_GET, QS_CONF_PUT, QS_CONF_FIRED, QS_EVENT_INSERT,
  /* credits: grants and draws */
  QS_GRANT_INSERT, QS_GRANT_GET, QS_GRANT_VOID, QS_GRANT_CREDITS, QS_GRANT_OPEN, QS_GRANT_LIVE,
  QS_GRANT_HELD,
  QS_GRANT_DRAW, QS_DRAW_INSERT, QS_GRANT_VOID_KEY, QS_GRANTS_COUNT,
  QS_ROLLOVER_SET,
  QS_COUNT
};

/*
** One quota table on one connection. Reference counted: the virtual
** table holds one reference and every running call one more, so that a
** table SQLite disconnects in the middle of a call (another connection
** changed the schema) outlives the call.
*/
struct QuotaStore {
  int nRef;                 /* the virtual table + running calls */
  sqlite3 *db;
  char *zDb;                /* schema holding the table */
  char *zName;              /* the table's name */
  QuotaStore *pNext;        /* the connection's list of tables (conn.c) */
  QuotaOptions opt;         /* as quota_meta holds them */
  /* What this connection knows of the stored state (see THE ONE RULE in
  ** store.c). bKnown: valid in the running transaction; bTrusted: also
  ** valid later, while SQLITE_FCNTL_DATA_VERSION stays uDataVersion. */
  int bKnown;
  int bTrusted;
  unsigned int uDataVersion;
  sqlite3_int64 iSwept;     /* sweep watermark */
  sqlite3_int64 iSweepId;   /* where the next ordered-lane sweep starts */
  sqlite3_int64 iL0Max;     /* largest ordered-lane expiry */
  char *zOptions;           /* the options' text in quota_meta, as last read */
  int bOptionsBad;          /* that text is not valid: writes refuse */
  int nSchemaSeen;          /* QS_STATE re-preparations already checked */
  int bSchemaScanned;       /* the schema checks below are up to date */
  char *zForeign;           /* a trigger or view on a shadow table, or NULL */
  char *zCallsQuota;        /* a schema object calling quota functions, or NULL */
  /* The last key loaded by name, as stored; valid while bKnown. */
  int bKeyCached;
  QuotaKey keyCache;
  char zKeyCache[QUOTA_KEY_NAME_BUF];
  /* The second of the newest quota_holdtime row; valid while bKnown. */
  int bHoldTime;
  sqlite3_int64 iHoldTime;
  /* Whether quota_keyconf has any row (operators); valid while bKnown and
  ** bConfKnown. Without rows no call reads a key's settings there. */
  int bConfKnown;
  int bConfAny;
  /* The open grants (remaining > 0, not voided, expired or not) of key
  ** heldKey (0: none) in draw order, when it has at most QUOTA_GRANTS_HELD:
  ** its credits at any time and a charge's draw need no read of
  ** quota_grants. Valid while bKnown; a draw updates them, any other
  ** change to grants drops them. */
  sqlite3_int64 heldKey;
  int nHeld;
  QuotaHeldGrant aHeld[QUOTA_GRANTS_HELD];
  sqlite3_stmt *aStmt[QS_COUNT];  /* prepared on first use */
};

/* Opening and closing */
int quotaStoreCreate(sqlite3 *db, const char *zDb, const char *zName,
                     const QuotaOptions *pOpt);
int quotaStoreOpen(sqlite3 *db, const char *zDb, const char *zName, int bCreate,
                   const QuotaOptions *pArgs, QuotaStore **ppStore, char **pzErr);
void quotaStoreUnref(QuotaStore *p);
int quotaStoreDestroy(QuotaStore *p);
int quotaStoreRename(QuotaStore *p, const char *zNew);
int quotaStoreIsShadow(const char *zSuffix);
void quotaStoreDefaultOptions(QuotaOptions *pOpt);

/* Transactions, and what survives them */
int quotaStoreTxnBegin(QuotaStore *p, int bWrite, QuotaTxn *pTxn);
int quotaStoreTxnFinish(QuotaStore *p, QuotaTxn *pTxn);
void quotaStoreTxnAbort(QuotaStore *p, QuotaTxn *pTxn);
void quotaStoreForget(QuotaStore *p);
int quotaStoreRefresh(QuotaStore *p);
int quotaStoreScanSchema(QuotaStore *p);
int quotaStoreReadState(QuotaStore *p, int bFresh);
int quotaStoreCheckWrite(QuotaStore *p, char **pzErr);
int quotaStoreConfigure(QuotaStore *p, int iOpt, sqlite3_int64 v);
int quotaStoreOptionsCheck(QuotaStore *p, int *pbValid);

/* Statements */
int quotaStoreStmt(QuotaStore *p, int iStmt, sqlite3_stmt **ppStmt);
int quotaStoreRunInt(QuotaStore *p, int iStmt, int nArg, const sqlite3_int64 *aArg);
int quotaStoreQueryInt(QuotaStore *p, int iStmt, int nArg,
                       const sqlite3_int64 *aArg, sqlite3_int64 iDefault,
                       sqlite3_int64 *pVal);
int quotaStorePrepare(QuotaStore *p, const char *zTemplate, sqlite3_stmt **ppStmt);

/* Keys */
int quotaStoreKeyByName(QuotaStore *p, const char *zKey, QuotaKey *k, int *pFound);
int quotaStoreKeyById(QuotaStore *p, sqlite3_int64 id, QuotaKey *k, int *pFound);
int quotaStoreKeyFromRow(sqlite3_stmt *pStmt, int iCol, QuotaKey *k);
int quotaStoreKeySave(QuotaStore *p, QuotaKey *k);
int quotaStoreKeyInsert(QuotaStore *p, const char *zKey, const char *zPeriod,
                        sqlite3_int64 retention, int bRetention,
                        const QuotaKey *k, sqlite3_int64 *pId);
int quotaStoreKeyUpdate(QuotaStore *p, const char *zPeriod,
                        sqlite3_int64 retention, int bRetention, const QuotaKey *k);
int quotaStoreKeyRow(QuotaStore *p, sqlite3_int64 id, sqlite3_stmt **ppRow);
int quotaStoreKeyName(QuotaStore *p, sqlite3_int64 id, char **pzKey);
int quotaStoreKeyChild(QuotaStore *p, sqlite3_int64 id, char **pzChild);
int quotaStoreKeyDelete(QuotaStore *p, sqlite3_int64 id);
int quotaStoreSubtreeDepth(QuotaStore *p, sqlite3_int64 id, int *pnDepth);
int quotaStoreNoteSave(QuotaStore *p, sqlite3_int64 id, sqlite3_value *pNote);
int quotaStoreRateGet(QuotaStore *p, sqlite3_int64 id, sqlite3_int64 *pRate);
int quotaStoreRateSave(QuotaStore *p, sqlite3_int64 id, sqlite3_int64 nRate);
int quotaStoreScan(QuotaStore *p, int bByKey, int bByRowid, sqlite3_value *pArg,
                   sqlite3_stmt **ppStmt);

/* Holds */
int quotaStoreHoldGet(QuotaStore *p, sqlite3_int64 id, QuotaHold *h, QuotaKey *k,
                      int *pFound);
void quotaStoreHoldClear(QuotaHold *h);
int quotaStoreHoldInsert(QuotaStore *p, sqlite3_int64 keyId, sqlite3_int64 amount,
                         sqlite3_int64 now, sqlite3_int64 expires, int bDefaultTtl,
                         const char *zReq, sqlite3_int64 *pId);
int quotaStoreHoldEnd(QuotaStore *p, sqlite3_int64 id, int state,
                      sqlite3_int64 ended, sqlite3_int64 charged);
int quotaStoreHoldExtend(QuotaStore *p, sqlite3_int64 id, sqlite3_int64 oldExpires,
                         sqlite3_int64 newExpires);
int quotaStoreHoldCreated(QuotaStore *p, sqlite3_int64 id, int *pbKnown,
                          sqlite3_int64 *pCreated);
int quotaStoreLiveHolds(QuotaStore *p, sqlite3_int64 keyId,
                        sqlite3_int64 **paHold, int *pnHold);
int quotaStoreExpiredHolds(QuotaStore *p, sqlite3_int64 now,
                           sqlite3_int64 **paHold, int *pnHold,
                           sqlite3_int64 *pNextId);
int quotaStoreSweepSave(QuotaStore *p, sqlite3_int64 now, sqlite3_int64 nextId);

/* Request ids, the ledger, meta, upkeep */
int quotaStoreRequestGet(QuotaStore *p, sqlite3_int64 keyId, const char *zReq,
                         sqlite3_int64 now, QuotaRequest *r);
int quotaStoreRequestPut(QuotaStore *p, sqlite3_int64 keyId, const char *zReq,
                         int op, sqlite3_int64 amount, sqlite3_int64 result,
                         sqlite3_int64 now);
int quotaStoreLedgerInsert(QuotaStore *p, const char *zKey, sqlite3_int64 amount,
    sqlite3_int64 at, const char *zReq, sqlite3_int64 holdId,
    sqlite3_value *pMeta, int bOver, int bLate, sqlite3_int64 *pId);
int quotaStoreMetaGet(QuotaStore *p, const char *zName, sqlite3_int64 *pVal);

/* Per-key alert and enforcement (quota_keyconf), the event outbox */
int quotaStoreConfLoad(QuotaStore *p, QuotaKey *k);
int quotaStoreConfPut(QuotaStore *p, sqlite3_int64 id, const char *zAlert,
                      int bShadow, int bFired, sqlite3_int64 fired);
int quotaStoreConfFired(QuotaStore *p, QuotaKey *k);
int quotaStoreEventInsert(QuotaStore *p, sqlite3_int64 keyId, sqlite3_int64 at,
    const char *zKind, const char *zDetail, sqlite3_int64 used, int bCap,
    sqlite3_int64 cap, int bPeriod, sqlite3_int64 pstart,
    sqlite3_int64 ledgerId, sqlite3_int64 holdId);
int quotaStorePurge(QuotaStore *p, sqlite3_int64 now, sqlite3_int64 *pnRemoved);

/* Credits: grants (quota_grants), draws (quota_draws), rollover */
int quotaStoreGrantInsert(QuotaStore *p, QuotaKey *k, sqlite3_int64 amount,
    sqlite3_int64 priority, sqlite3_int64 now, int bExpires,
    sqlite3_int64 expires, const char *zReq, sqlite3_value *pMeta,
    const char *zMeta, sqlite3_int64 *pId);
int quotaStoreGrantGet(QuotaStore *p, sqlite3_int64 id, int *pFound,
    sqlite3_int64 *pRemaining, int *pbExpires, sqlite3_int64 *pExpires,
    int *pbVoided, sqlite3_int64 *pKeyId);
int quotaStoreGrantVoid(QuotaStore *p, sqlite3_int64 id);
int quotaStoreGrantsCount(QuotaStore *p, QuotaKey *k, sqlite3_int64 delta);
int quotaStoreCredits(QuotaStore *p, QuotaKey *k, sqlite3_int64 now);
int quotaStoreGrantsOpen(QuotaStore *p, const QuotaKey *k, sqlite3_int64 *pOpen);
int quotaStoreDraw(QuotaStore *p, QuotaKey *k, sqlite3_int64 ledgerId,
                   sqlite3_int64 now);
int quotaStoreRolloverSave(QuotaStore *p, sqlite3_int64 id, int bSet,
                           sqlite3_int64 rollover);

#endif /* QUOTA_STORE_H */
