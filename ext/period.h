/*
** period.h: the kinds of period a key can have, each one row of a table
** (period.c), and the one rule for the room at a level.
*/
#ifndef QUOTA_PERIOD_H
#define QUOTA_PERIOD_H

#include "store.h"
#include "calendar.h"

/* Kinds of period, as quota_keys.kind stores them: the number is the
** kind's row in period.c's table. Stored: never renumber, only append. */
#define QUOTA_KIND_LIFETIME 0
#define QUOTA_KIND_HOUR     1
#define QUOTA_KIND_DAY      2
#define QUOTA_KIND_WEEK     3
#define QUOTA_KIND_MONTH    4
#define QUOTA_KIND_YEAR     5
#define QUOTA_KIND_ROLLING  6
#define QUOTA_KIND_RATE     7
#define QUOTA_KIND_COUNT    8

/* Longest window: far beyond any real one, and it keeps the arithmetic of
** times within 64 bits. */
#define QUOTA_WINDOW_MAX ((sqlite3_int64)100*366*86400)

/* Room for a canonical period text ("rolling 100 minutes", "rate
** 9223372036854775807 per 1000000 seconds"). */
#define QUOTA_PERIOD_TEXT 64

typedef struct QuotaKind QuotaKind;
struct QuotaKind {
  const char *zName;        /* the period text, or its first word */
  int bWindow;              /* "NAME N unit": a length follows the name */
  int bRate;                /* "NAME N per [M] unit": a token bucket, whose
                            ** holds take their units at reserve (they are
                            ** in `used`), and which needs a cap */
  int nMonths;              /* calendar months per period (month, year) */
  sqlite3_int64 nFixed;     /* seconds per period (hour, day, week) */
  sqlite3_int64 iAnchor;    /* where periods start when the key has no anchor */
  const char *zDenyCode;    /* quota_status "code" when this level denies */
  /* Bring k to time `now` (see quotaNormalize). */
  int (*xNormalize)(QuotaStore*, QuotaKey*, sqlite3_int64 now, int bWrite);
  /* After `amount` was added to k->used at `now`: what else a charge
  ** writes (a window's bucket); NULL for nothing. */
  int (*xCharge)(QuotaStore*, QuotaKey*, sqlite3_int64 amount, sqlite3_int64 now);
  /* Seconds until `amount` fits at k, which denies it now; -1: never. */
  int (*xRetryAfter)(QuotaStore*, const QuotaKey*, sqlite3_int64 amount,
                     sqlite3_int64 now, sqlite3_int64 *pSecs);
};

const QuotaKind *quotaKind(int eKind);
int quotaKeyCheck(const QuotaKey *k);
int quotaParsePeriod(const char *z, int *pKind, sqlite3_int64 *pLen,
                     sqlite3_int64 *pRate, char *zCanon);
void quotaPeriodList(char *zOut, int nOut);
sqlite3_int64 quotaPeriodStart(int eKind, int bAnchor, sqlite3_int64 anchor,
                               sqlite3_int64 now);
int quotaNormalize(QuotaStore *p, QuotaKey *k, sqlite3_int64 now, int bWrite);
int quotaCharge(QuotaStore *p, QuotaKey *k, sqlite3_int64 amount, sqlite3_int64 now);
int quotaChargeFits(const QuotaKey *k, sqlite3_int64 amount);
int quotaSetUsed(QuotaStore *p, QuotaKey *k, sqlite3_int64 used, sqlite3_int64 now);
int quotaRetryAfter(QuotaStore *p, const QuotaKey *k, sqlite3_int64 amount,
                    sqlite3_int64 now, sqlite3_int64 *pSecs);
sqlite3_int64 quotaRoom(const QuotaKey *k);
int quotaCreditsApply(const QuotaKey *k);
int quotaHoldTake(QuotaKey *k, sqlite3_int64 amount);
int quotaHoldReturn(QuotaStore *p, QuotaKey *k, sqlite3_int64 amount,
                    sqlite3_int64 now, int bWrite);
int quotaChargeHeld(QuotaStore *p, QuotaKey *k, sqlite3_int64 amount,
                    sqlite3_int64 held, sqlite3_int64 now, int *pbOver);

#endif /* QUOTA_PERIOD_H */
