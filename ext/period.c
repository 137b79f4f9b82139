/*
** period.c: the kinds of period a key can have. Each kind is one row of
** aKind: its name, its shape, the status code a denial gets, and the
** functions that make it behave. Adding a kind is adding a row (and the
** functions it needs); doc/internals.md has the checklist.
**
**   lifetime                      one balance that never resets
**   hour, day, week               fixed lengths (3600, 86400, 604800 s)
**   month, year                   calendar months, 1 and 12 of them
**   rolling N seconds|minutes|hours|days     a sliding window of N seconds
**   rate N per [M] second|minute|hour|day     a token bucket of `cap` units
**                                 that refills N units per M units of time
**
** THE ROOM AT A LEVEL
**   quotaRoom() is the one rule for how many units still fit at a key:
**   cap - used + credits - reserved, at least 0, or "all of them" when cap
**   is NULL. Credits are the unused units of the key's live grants (a
**   lifetime or calendar key's only: quotaCreditsApply); `used` past cap
**   is a debt that they cover first.
**   A token bucket's holds took their units out of the bucket when they
**   were reserved, so they are in its `used` already: its room is
**   cap - used. reserve, consume and check need the amount to fit at every
**   level; the table's `remaining` and quota_status show it.
**
** HOW CALENDAR PERIODS ROLL OVER
**   Lazily. A key stores the start of the period its `used` belongs to; a
**   call that finds the current period starting later zeroes `used` first.
**   The bounds come from the anchor (calendar.c), never from the previous
**   period, so they never drift.
**
** HOW ROLLING WINDOWS STAY EXACT AND O(1)
**   A window keeps one bucket per (key, second) in quota_window, each with
**   the running total of the key's charges through it; the key stores its
**   oldest bucket and the newest running total (wtotal). When the oldest
**   bucket leaves the window, one index seek finds the running total at the
**   edge: what left is that, what stays is wtotal minus it. Each bucket is
**   added once and deleted once, so a call costs O(1) amortised however
**   many charges the window holds. Running totals only grow; when the next
**   one would pass 2^63, they are rebased to start from what the window
**   holds now (a key's lifetime total may be anything).
**
** HOW TOKEN BUCKETS STAY EXACT AND O(1)
**   'rate N per D seconds' with cap C: `used` is what is out of the bucket
**   (C - used units are in it; more than C out is a debt). The key stores
**   the second it was refilled up to (pstart) and the refill's remainder
**   r, in units of 1/D (wtotal), 0 <= r < D: after t more seconds the
**   bucket has gained floor((r + N*t) / D) units and keeps the new
**   remainder. No unit is rounded away, so a bucket drifts by nothing
**   over any time; N*t is never formed (it would pass 2^63 for N = 10^12
**   a day after a few months): with N = a*D + b and t = c*D + e it is
**   a*t + b*c units and (r + b*e) / D more, where b*e < D*D < 2^64 since
**   D < 2^32 (rateRefill). A full bucket (used 0) keeps no remainder:
**   what would refill it past C is lost, as in any token bucket. The
**   rate N is in quota_keyconf; the key row keeps D (len). A clock behind
**   pstart refills nothing and moves nothing: units are never taken back.
**   Holds take their units at reserve: settle takes or returns the
**   difference with the hold, release and expiry return the hold's units
**   (quotaHoldTake, quotaChargeHeld, quotaHoldReturn).
*/
#include "period.h"
#include <string.h>

static int periodNormalizeNone(QuotaStore*, QuotaKey*, sqlite3_int64, int);
static int periodNormalizeCalendar(QuotaStore*, QuotaKey*, sqlite3_int64, int);
static int periodRollover(QuotaStore*, QuotaKey*, sqlite3_int64, sqlite3_int64,
                          sqlite3_int64, sqlite3_int64, int);
static int periodNormalizeWindow(QuotaStore*, QuotaKey*, sqlite3_int64, int);
static int periodChargeWindow(QuotaStore*, QuotaKey*, sqlite3_int64, sqlite3_int64);
/* A lifetime balance frees nothing with time. */
static int periodRetryNever(QuotaStore*, const QuotaKey*, sqlite3_int64,
                            sqlite3_int64, sqlite3_int64*);
static int periodRetryCalendar(QuotaStore*, const QuotaKey*, sqlite3_int64,
                               sqlite3_int64, sqlite3_int64*);
static int periodRetryWindow(QuotaStore*, const QuotaKey*, sqlite3_int64,
                             sqlite3_int64, sqlite3_int64*);
static int periodNormalizeRate(QuotaStore*, QuotaKey*, sqlite3_int64, int);
static int periodRetryRate(QuotaStore*, const QuotaKey*, sqlite3_int64,
                           sqlite3_int64, sqlite3_int64*);

#define CODE_BALANCE "insufficient_quota"     /* will not reset */
#define CODE_RATE    "rate_limit_exceeded"    /* frees units with time */

/* Weeks follow the calendar from Monday 1970-01-05 00:00 (ISO weeks);
** everything else from 1970-01-01 00:00. */
#define MONDAY (4*86400)

static const QuotaKind aKind[QUOTA_KIND_COUNT] = {
  [QUOTA_KIND_LIFETIME] = { "lifetime", 0, 0, 0,      0,      0, CODE_BALANCE,
      periodNormalizeNone, 0, periodRetryNever },
  [QUOTA_KIND_HOUR] =     { "hour",     0, 0, 0,   3600,      0, CODE_RATE,
      periodNormalizeCalendar, 0, periodRetryCalendar },
  [QUOTA_KIND_DAY] =      { "day",      0, 0, 0,  86400,      0, CODE_RATE,
      periodNormalizeCalendar, 0, periodRetryCalendar },
  [QUOTA_KIND_WEEK] =     { "week",     0, 0, 0, 604800, MONDAY, CODE_RATE,
      periodNormalizeCalendar, 0, periodRetryCalendar },
  [QUOTA_KIND_MONTH] =    { "month",    0, 0, 1,      0,      0, CODE_RATE,
      periodNormalizeCalendar, 0, periodRetryCalendar },
  [QUOTA_KIND_YEAR] =     { "year",     0, 0, 12,     0,      0, CODE_RATE,
      periodNormalizeCalendar, 0, periodRetryCalendar },
  [QUOTA_KIND_ROLLING] =  { "rolling",  1, 0, 0,      0,      0, CODE_RATE,
      periodNormalizeWindow, periodChargeWindow, periodRetryWindow },
  [QUOTA_KIND_RATE] =     { "rate",     0, 1, 0,      0,      0, CODE_RATE,
      periodNormalizeRate, 0, periodRetryRate },
};

/* The row of a kind that quotaKeyCheck (or the parser) accepted. */
const QuotaKind *quotaKind(int eKind){
  if( NEVER(eKind<0 || eKind>=QUOTA_KIND_COUNT) ) eKind = QUOTA_KIND_LIFETIME;
  return &aKind[eKind];
}

/* SQLITE_CORRUPT_VTAB when a stored key's kind or window length is one
** sqlite-quota never writes (a hand-edited store). */
int quotaKeyCheck(const QuotaKey *k){
  if( k->eKind<0 || k->eKind>=QUOTA_KIND_COUNT ) return SQLITE_CORRUPT_VTAB;
  if( (aKind[k->eKind].bWindow || aKind[k->eKind].bRate)
   && (k->nLen<=0 || k->nLen>QUOTA_WINDOW_MAX) ){
    return SQLITE_CORRUPT_VTAB;
  }
  /* a bucket has a cap, a remainder below one unit, none when full, and
  ** no window */
  if( aKind[k->eKind].bRate
   && (!k->bCap || k->wtotal>=k->nLen || (k->used==0 && k->wtotal!=0)
       || k->bOldest) ){
    return SQLITE_CORRUPT_VTAB;
  }
  return SQLITE_OK;
}

/* The white space a period text may have around its words. */
static int periodIsSpace(char c){
  return c==' ' || c=='\t' || c=='\n' || c=='\r';
}

/*
** "N per [M] unit" after the word "rate" (n bytes at z): the rate N into
** *pRate, the duration M units into *pLen, the canonical text into zCanon.
** 0 on success, 1 when it is not that.
*/
static int periodParseRate(const char *z, int n, const char *zName,
                           sqlite3_int64 *pLen, sqlite3_int64 *pRate, char *zCanon){
  static const char *azUnit[] = {"second", "minute", "hour", "day"};
  char zDur[64];
  sqlite3_int64 nRate = 0, secs;
  int i = 0, nDigit = 0, mul = 1, iUnit;
  while( i<n && z[i]>='0' && z[i]<='9' ){
    if( nRate > (LARGEST_INT64 - (z[i]-'0'))/10 ) return 1;
    nRate = nRate*10 + (z[i++]-'0');
    nDigit++;
  }
  /* z[n-1] is not a space (the caller trimmed the text): each run of
  ** spaces below ends before n */
  if( nDigit==0 || nRate<=0 || i>=n || !periodIsSpace(z[i]) ) return 1;
  while( periodIsSpace(z[i]) ) i++;
  if( n-i<4 || sqlite3_strnicmp(&z[i], "per", 3)!=0 || !periodIsSpace(z[i+3]) ){
    return 1;
  }
  i += 4;
  while( periodIsSpace(z[i]) ) i++;
  /* "per minute" is "per 1 minute" */
  if( n-i+3 >= (int)sizeof(zDur) ) return 1;
  sqlite3_snprintf(sizeof(zDur), zDur, "%s%.*s",
                   (z[i]>='0' && z[i]<='9') ? "" : "1 ", n-i, &z[i]);
  if( quotaParseDurationText(zDur, &secs, &mul) ) return 1;
  if( secs<=0 || secs>QUOTA_WINDOW_MAX ) return 1;
  iUnit = mul==1 ? 0 : mul==60 ? 1 : mul==3600 ? 2 : 3;
  *pLen = secs;
  *pRate = nRate;
  if( secs/mul==1 ){
    sqlite3_snprintf(QUOTA_PERIOD_TEXT, zCanon, "%s %lld per %s", zName, nRate,
                     azUnit[iUnit]);
  }else{
    sqlite3_snprintf(QUOTA_PERIOD_TEXT, zCanon, "%s %lld per %lld %ss", zName,
                     nRate, secs/mul, azUnit[iUnit]);
  }
  return 0;
}

/*
** Parse a period text into *pKind, for windows and buckets *pLen
** (seconds), for buckets *pRate (0 for other kinds), and write its
** canonical text to zCanon (QUOTA_PERIOD_TEXT bytes). Returns 0 on
** success, 1 when the text is not a period.
*/
int quotaParsePeriod(const char *z, int *pKind, sqlite3_int64 *pLen,
                     sqlite3_int64 *pRate, char *zCanon){
  static const char *azUnit[] = {"second", "minute", "hour", "day"};
  int i, n;
  *pRate = 0;
  while( periodIsSpace(*z) ) z++;
  n = (int)strlen(z);
  while( n>0 && periodIsSpace(z[n-1]) ) n--;
  for(i=0; i<QUOTA_KIND_COUNT; i++){
    const QuotaKind *pKindDef = &aKind[i];
    int nName = (int)strlen(pKindDef->zName);
    if( pKindDef->bRate ){
      if( n>nName+1 && sqlite3_strnicmp(z, pKindDef->zName, nName)==0
       && periodIsSpace(z[nName]) ){
        int j = nName;
        while( periodIsSpace(z[j]) ) j++;      /* z[n-1] is not a space */
        if( periodParseRate(&z[j], n-j, pKindDef->zName, pLen, pRate, zCanon) ){
          return 1;
        }
        *pKind = i;
        return 0;
      }
    }else if( !pKindDef->bWindow ){
      if( nName==n && sqlite3_strnicmp(z, pKindDef->zName, n)==0 ){
        *pKind = i;
        *pLen = 0;
        memcpy(zCanon, pKindDef->zName, nName+1);
        return 0;
      }
    }else if( n>nName+1 && sqlite3_strnicmp(z, pKindDef->zName, nName)==0
           && periodIsSpace(z[nName]) ){
      char zRest[64];
      sqlite3_int64 secs;
      int mul = 1, iUnit;
      if( n-nName-1 >= (int)sizeof(zRest) ) return 1;
      memcpy(zRest, z+nName+1, n-nName-1);
      zRest[n-nName-1] = 0;
      if( quotaParseDurationText(zRest, &secs, &mul) ) return 1;
      if( secs<=0 || secs>QUOTA_WINDOW_MAX ) return 1;
      iUnit = mul==1 ? 0 : mul==60 ? 1 : mul==3600 ? 2 : 3;
      *pKind = i;
      *pLen = secs;
      sqlite3_snprintf(QUOTA_PERIOD_TEXT, zCanon, "%s %lld %s%s", pKindDef->zName,
          secs/mul, azUnit[iUnit], secs/mul==1 ? "" : "s");
      return 0;
    }
  }
  return 1;
}

/* The accepted period texts, for messages: "'lifetime', 'hour', ...". */
void quotaPeriodList(char *zOut, int nOut){
  sqlite3_str *pStr = sqlite3_str_new(0);
  char *z;
  int i;
  sqlite3_str_appendall(pStr, "NULL");
  for(i=0; i<QUOTA_KIND_COUNT; i++){
    sqlite3_str_appendf(pStr, i==QUOTA_KIND_COUNT-1 ? " or '%s%s'" : ", '%s%s'",
        aKind[i].zName, aKind[i].bWindow ? " N seconds|minutes|hours|days"
                      : aKind[i].bRate ? " N per [M] second|minute|hour|day" : "");
  }
  z = sqlite3_str_finish(pStr);
  sqlite3_snprintf(nOut, zOut, "%s", z ? z : "");
  sqlite3_free(z);
}

/* Start of the period holding `now` for a key of this kind and anchor
** (0 for kinds that have no periods; a bucket: `now`, the second it is
** refilled up to). */
sqlite3_int64 quotaPeriodStart(int eKind, int bAnchor, sqlite3_int64 anchor,
                               sqlite3_int64 now){
  const QuotaKind *pKind = quotaKind(eKind);
  sqlite3_int64 s, e;
  if( pKind->bRate ) return now;
  if( pKind->nMonths==0 && pKind->nFixed==0 ) return 0;
  quotaCalBounds(pKind->nMonths, pKind->nFixed, bAnchor ? anchor : pKind->iAnchor,
                 now, &s, &e);
  return s;
}

/* ------------------------------------------------------------ the room */

/* True when grants count at key k: a capped lifetime or calendar key. A
** key moved to another kind, or to cap NULL, keeps its grants unused. */
int quotaCreditsApply(const QuotaKey *k){
  const QuotaKind *pKind = quotaKind(k->eKind);
  return k->bCap && !pKind->bWindow && !pKind->bRate;
}

sqlite3_int64 quotaRoom(const QuotaKey *k){
  sqlite3_int64 r, top;
  if( !k->bCap ) return LARGEST_INT64;
  top = k->credits>0 && quotaCreditsApply(k) ? quotaAddSat(k->cap, k->credits)
                                              : k->cap;
  if( k->used>=top ) return 0;
  r = top - k->used;
  if( quotaKind(k->eKind)->bRate ) return r;   /* holds are in used */
  return k->reserved>=r ? 0 : r - k->reserved;
}

/*
** A hold of `amount` is reserved at this level: a bucket's units leave it
** now (the hold's reserved is quotaChainReserve's). SQLITE_TOOBIG when
** that would overflow `used`, which a hold granted within the bucket's
** room never does.
*/
int quotaHoldTake(QuotaKey *k, sqlite3_int64 amount){
  if( !quotaKind(k->eKind)->bRate ) return SQLITE_OK;
  if( NEVER(quotaChargeFits(k, amount)!=SQLITE_OK) ) return SQLITE_TOOBIG;
  if( amount>0 ){
    k->used += amount;
    k->mDirty |= QUOTA_DIRTY_COUNTS;
  }
  return SQLITE_OK;
}

/* A bucket gets `amount` units back, up to full (a full bucket keeps no
** remainder). */
static void periodGive(QuotaKey *k, sqlite3_int64 amount){
  if( amount<=0 ) return;
  if( k->used>amount ){
    k->used -= amount;
  }else{
    k->used = 0;
    k->wtotal = 0;
  }
  k->mDirty |= QUOTA_DIRTY_COUNTS|QUOTA_DIRTY_PERIOD;
}

/*
** A hold of `amount` counted at this level ends without a charge (release,
** expiry, its key deleted): a bucket, first brought to `now`, gets the
** hold's units back. Other kinds: nothing (reserved is the caller's).
*/
int quotaHoldReturn(QuotaStore *p, QuotaKey *k, sqlite3_int64 amount,
                    sqlite3_int64 now, int bWrite){
  int rc;
  if( !quotaKind(k->eKind)->bRate ) return SQLITE_OK;
  rc = quotaNormalize(p, k, now, bWrite);
  if( rc==SQLITE_OK ) periodGive(k, amount);
  return rc;
}

/*
** Charge `amount` at one level for a call whose hold still has `held`
** units out of this level's bucket (a settle of a live hold; 0 for
** consume, record and a late settle): a bucket takes only the difference,
** or gets it back; other kinds take `amount`. *pbOver is set when this
** level's charge took its `used` past its cap.
*/
int quotaChargeHeld(QuotaStore *p, QuotaKey *k, sqlite3_int64 amount,
                    sqlite3_int64 held, sqlite3_int64 now, int *pbOver){
  int rc;
  if( quotaKind(k->eKind)->bRate ){
    if( amount<held ){
      periodGive(k, held - amount);
      return SQLITE_OK;
    }
    amount -= held;
  }
  if( k->credits>0 && amount>0 && quotaCreditsApply(k) ){
    /* The allowance first (cap - used, into used), then the live grants
    ** (quotaStoreDraw takes k->drawn from them once the ledger row is
    ** written), then past the cap. */
    sqlite3_int64 allow = k->used<k->cap ? k->cap - k->used : 0;
    sqlite3_int64 rest = amount - (amount<allow ? amount : allow);
    sqlite3_int64 take = rest<k->credits ? rest : k->credits;
    k->drawn += take;
    k->credits -= take;
    rc = quotaCharge(p, k, amount - take, now);
    if( rc==SQLITE_OK && rest>take && k->used>k->cap ) *pbOver = 1;
    return rc;
  }
  rc = quotaCharge(p, k, amount, now);
  if( rc==SQLITE_OK && amount>0 && k->bCap && k->used>k->cap ) *pbOver = 1;
  return rc;
}

/* --------------------------------------------------- dispatch to kinds */

/*
** Bring a loaded key to time `now`: roll a calendar period over, drop the
** buckets that left a window. With bWrite the changes are made in the
** store (k->mDirty asks the caller to save the key); without it only the
** in-memory values change (readers).
*/
int quotaNormalize(QuotaStore *p, QuotaKey *k, sqlite3_int64 now, int bWrite){
  k->bPeriod = 0;
  return quotaKind(k->eKind)->xNormalize(p, k, now, bWrite);
}

/* SQLITE_TOOBIG when charging `amount` would overflow the key's `used`:
** checked at every level before the first write. */
int quotaChargeFits(const QuotaKey *k, sqlite3_int64 amount){
  return k->used > LARGEST_INT64 - amount ? SQLITE_TOOBIG : SQLITE_OK;
}

/* Charge `amount` at one level (in memory, plus what the kind writes). */
int quotaCharge(QuotaStore *p, QuotaKey *k, sqlite3_int64 amount, sqlite3_int64 now){
  const QuotaKind *pKind = quotaKind(k->eKind);
  if( NEVER(quotaChargeFits(k, amount)!=SQLITE_OK) ) return SQLITE_TOOBIG;
  /* A charge of 0 (all of it drawn from grants, or quota_consume(key, 0))
  ** leaves the row as it is: no page of the key's is written for it. */
  k->used += amount;
  if( amount!=0 ) k->mDirty |= QUOTA_DIRTY_COUNTS;
  return pKind->xCharge ? pKind->xCharge(p, k, amount, now) : SQLITE_OK;
}

/* Replace the usage of a key (an admin's reset): a window keeps the new
** value as one bucket at `now`, so it ages out like a charge. */
int quotaSetUsed(QuotaStore *p, QuotaKey *k, sqlite3_int64 used, sqlite3_int64 now){
  int rc = quotaStoreRunInt(p, QS_WIN_DELETE_KEY, 1, &k->id);
  if( rc!=SQLITE_OK ) return rc;
  k->used = 0;
  k->bOldest = 0;
  k->wtotal = 0;            /* an empty window: running totals start over */
  k->mDirty |= QUOTA_DIRTY_COUNTS|QUOTA_DIRTY_PERIOD;
  if( quotaKind(k->eKind)->bWindow ) return quotaCharge(p, k, used, now);
  if( quotaKind(k->eKind)->bRate ) k->pstart = now;   /* refills from now */
  k->used = used;
  return SQLITE_OK;
}

/*
** Seconds until `amount` fits at this level, for a level that denies it
** now. *pSecs = -1 means never (a lifetime balance, or no cap); otherwise
** at least 1.
*/
int quotaRetryAfter(QuotaStore *p, const QuotaKey *k, sqlite3_int64 amount,
                    sqlite3_int64 now, sqlite3_int64 *pSecs){
  int rc = SQLITE_OK;
  *pSecs = -1;
  if( ALWAYS(k->bCap) ){
    rc = quotaKind(k->eKind)->xRetryAfter(p, k, amount, now, pSecs);
  }
  if( *pSecs!=-1 && NEVER(*pSecs<1) ) *pSecs = 1;
  return rc;
}

/* ------------------------------------------------- lifetime, calendar */

static int periodNormalizeNone(QuotaStore *p, QuotaKey *k, sqlite3_int64 now,
                               int bWrite){
  (void)p; (void)k; (void)now; (void)bWrite;
  return SQLITE_OK;
}

/*
** Key k's period ended: the current one is [s, e). With a rollover, what
** the period just before the current one left unused of its cap (all of
** it when the key saw no charge there: its stored period is older), up to
** the rollover, becomes a grant that ends with the current period. A
** writer makes it (k->nGrants counts it); a reader counts it in k->credits
** as the writer would make it.
*/
static int periodRollover(QuotaStore *p, QuotaKey *k, sqlite3_int64 anchor,
                          sqlite3_int64 s, sqlite3_int64 e, sqlite3_int64 now,
                          int bWrite){
  const QuotaKind *pKind = quotaKind(k->eKind);
  sqlite3_int64 prev, prevEnd, unused, amount, id = 0;
  int rc = SQLITE_OK;
  if( !k->bCap ) return SQLITE_OK;
  if( !k->bConf ){
    rc = quotaStoreConfLoad(p, k);
    if( rc!=SQLITE_OK ) return rc;
  }
  if( !k->bRollover || k->rollover<=0 ) return SQLITE_OK;
  /* the start of the period before [s, e): the one holding s - 1 */
  quotaCalBounds(pKind->nMonths, pKind->nFixed, anchor, s-1, &prev, &prevEnd);
  unused = k->pstart<prev ? k->cap : (k->used<k->cap ? k->cap - k->used : 0);
  amount = unused<k->rollover ? unused : k->rollover;
  if( amount<=0 ) return SQLITE_OK;
  if( bWrite ){
    /* no more than the key's open grants leave room for (64 bits) */
    sqlite3_int64 open = 0;
    rc = quotaStoreGrantsOpen(p, k, &open);
    if( rc!=SQLITE_OK ) return rc;
    if( amount>LARGEST_INT64-open ) amount = LARGEST_INT64-open;
    if( amount<=0 ) return SQLITE_OK;
    rc = quotaStoreGrantInsert(p, k, amount, 0, now, 1, e, 0, 0,
                               "{\"rollover\":true}", &id);
  }else{
    k->credits = quotaAddSat(k->credits, amount);
  }
  return rc;
}

/* A calendar period: roll `used` over when the period holding `now`
** starts after the stored one. */
static int periodNormalizeCalendar(QuotaStore *p, QuotaKey *k, sqlite3_int64 now,
                                   int bWrite){
  const QuotaKind *pKind = quotaKind(k->eKind);
  sqlite3_int64 anchor = k->bAnchor ? k->anchor : pKind->iAnchor;
  sqlite3_int64 s, e;
  quotaCalBounds(pKind->nMonths, pKind->nFixed, anchor, now, &s, &e);
  if( s>k->pstart ){
    int rc = periodRollover(p, k, anchor, s, e, now, bWrite);
    if( rc!=SQLITE_OK ) return rc;
    k->used = 0;
    k->pstart = s;
    k->mDirty |= QUOTA_DIRTY_COUNTS|QUOTA_DIRTY_PERIOD;
  }else if( s<k->pstart ){
    /* The clock is behind the stored period (a pinned clock moved back):
    ** keep the stored period rather than resurrect an old one. */
    quotaCalBounds(pKind->nMonths, pKind->nFixed, anchor, k->pstart, &s, &e);
  }
  k->pend = e;
  k->bPeriod = 1;
  return SQLITE_OK;
}

/* A lifetime balance frees nothing with time. */
static int periodRetryNever(QuotaStore *p, const QuotaKey *k, sqlite3_int64 amount,
                            sqlite3_int64 now, sqlite3_int64 *pSecs){
  (void)p; (void)k; (void)amount; (void)now;
  *pSecs = -1;
  return SQLITE_OK;
}

/* A calendar period frees its units at its end. */
static int periodRetryCalendar(QuotaStore *p, const QuotaKey *k, sqlite3_int64 amount,
                               sqlite3_int64 now, sqlite3_int64 *pSecs){
  (void)p; (void)amount;
  *pSecs = k->pend - now;
  return SQLITE_OK;
}

/* ------------------------------------------------------------- windows */

static int periodNormalizeWindow(QuotaStore *p, QuotaKey *k, sqlite3_int64 now,
                                 int bWrite){
  sqlite3_int64 edge = now - k->nLen;   /* buckets at or before edge are out */
  sqlite3_int64 aArg[2], atEdge = 0;
  int rc;
  if( !k->bOldest || k->oldest>edge ) return SQLITE_OK;
  aArg[0] = k->id;
  aArg[1] = edge;
  /* One index seek, however many buckets left: the running total at the
  ** edge is what left; the key's running total minus it is what stays. */
  rc = quotaStoreQueryInt(p, QS_WIN_TOTAL_AT, 2, aArg, 0, &atEdge);
  if( rc!=SQLITE_OK ) return rc;
  if( atEdge>k->wtotal || k->wtotal - atEdge>k->used ) return SQLITE_CORRUPT_VTAB;
  k->used = k->wtotal - atEdge;
  if( bWrite ){
    rc = quotaStoreRunInt(p, QS_WIN_DELETE_BEFORE, 2, aArg);
    if( rc==SQLITE_OK ){
      rc = quotaStoreQueryInt(p, QS_WIN_FIRST_AFTER, 2, aArg, LARGEST_INT64,
                              &k->oldest);
      k->bOldest = k->oldest!=LARGEST_INT64;
    }
    if( rc!=SQLITE_OK ) return rc;
    k->mDirty |= QUOTA_DIRTY_COUNTS|QUOTA_DIRTY_PERIOD;
  }else{
    k->bOldest = 0;      /* no longer meaningful in memory */
  }
  return SQLITE_OK;
}

/*
** A charge of `amount` (already in k->used) gets its bucket. A busy key is
** charged many times a second: join that second's bucket when it is the
** newest; otherwise a new bucket (or the newest, when the clock is behind
** it). The buckets in the window sum to used - amount here.
*/
static int periodChargeWindow(QuotaStore *p, QuotaKey *k, sqlite3_int64 amount,
                              sqlite3_int64 now){
  sqlite3_int64 aArg[4];
  int rc;
  if( amount==0 ) return SQLITE_OK;
  if( k->wtotal > LARGEST_INT64 - amount ){
    sqlite3_int64 base = k->wtotal - (k->used - amount);
    if( base<0 ) return SQLITE_CORRUPT_VTAB;
    aArg[0] = k->id;
    aArg[1] = base;
    rc = quotaStoreRunInt(p, QS_WIN_REBASE, 2, aArg);
    if( rc!=SQLITE_OK ) return rc;
    k->wtotal -= base;
  }
  aArg[0] = k->id;
  aArg[1] = now;
  aArg[2] = amount;
  aArg[3] = k->wtotal;
  k->wtotal += amount;
  k->mDirty |= QUOTA_DIRTY_PERIOD;
  if( !k->bOldest ){
    k->oldest = now;
    k->bOldest = 1;
  }
  if( aArg[3]>0 ){
    rc = quotaStoreRunInt(p, QS_WIN_JOIN, 4, aArg);
    if( rc!=SQLITE_OK || sqlite3_changes(p->db)>0 ) return rc;
  }
  aArg[3] = k->wtotal;
  return quotaStoreRunInt(p, QS_WIN_ADD, 4, aArg);
}

/*
** A window frees units as its buckets age out: the time until enough
** have left, or, if even an empty window cannot fit `amount` (it is more
** than cap minus live holds), until the oldest bucket leaves (the window's
** length if it is empty).
*/
static int periodRetryWindow(QuotaStore *p, const QuotaKey *k, sqlite3_int64 amount,
                             sqlite3_int64 now, sqlite3_int64 *pSecs){
  /* A bucket's running total minus the running total at the edge is what
  ** leaves the window by the time that bucket does: binary-search the
  ** second at which enough has left, one index seek per step. */
  sqlite3_int64 edge = now - k->nLen;
  sqlite3_int64 base = k->wtotal - k->used;   /* running total at the edge */
  sqlite3_int64 aArg[2], first = LARGEST_INT64;
  int rc;
  aArg[0] = k->id;
  aArg[1] = edge;
  rc = quotaStoreQueryInt(p, QS_WIN_FIRST_AFTER, 2, aArg, LARGEST_INT64, &first);
  if( rc==SQLITE_OK && quotaAddSat(k->reserved, amount)<=k->cap
   && first!=LARGEST_INT64 ){
    /* used - freed + reserved + amount <= cap  <=>  freed >= need */
    sqlite3_int64 need = quotaAddSat(quotaAddSat(k->used, k->reserved) - k->cap,
                                     amount);
    sqlite3_int64 lo = first, hi = first;
    /* Search [oldest bucket in the window, newest bucket]: by the newest
    ** everything has left, and used >= need when reserved + amount fit. */
    rc = quotaStoreQueryInt(p, QS_WIN_NEWEST, 1, &k->id, first, &hi);
    while( rc==SQLITE_OK && lo<hi ){
      sqlite3_int64 mid = lo + (hi-lo)/2, at = 0;
      aArg[1] = mid;
      rc = quotaStoreQueryInt(p, QS_WIN_TOTAL_AT, 2, aArg, 0, &at);
      if( at - base >= need ) hi = mid; else lo = mid + 1;
    }
    *pSecs = lo + k->nLen - now;
  }else if( rc==SQLITE_OK ){
    *pSecs = first!=LARGEST_INT64 ? first + k->nLen - now : k->nLen;
  }
  return rc;
}

/* --------------------------------------------------------------- buckets */

/* a*b for a, b >= 0, saturating at the largest 64-bit integer. */
static sqlite3_int64 rateMulSat(sqlite3_int64 a, sqlite3_int64 b){
  if( a==0 || b==0 ) return 0;
  if( a > LARGEST_INT64/b ) return LARGEST_INT64;
  return a*b;
}

/*
** What a bucket of rate nRate per nLen seconds, with remainder rem
** (0 <= rem < nLen), gains in dt >= 0 seconds: *pUnits =
** floor((rem + nRate*dt) / nLen), saturating, and *pRem = the remainder of
** that division. Exact: see "HOW TOKEN BUCKETS STAY EXACT" above
** (nLen <= QUOTA_WINDOW_MAX < 2^32).
*/
static void rateRefill(sqlite3_int64 nRate, sqlite3_int64 nLen, sqlite3_int64 rem,
                       sqlite3_int64 dt, sqlite3_int64 *pUnits, sqlite3_int64 *pRem){
  sqlite3_uint64 d = (sqlite3_uint64)nLen;
  sqlite3_uint64 x = (sqlite3_uint64)rem
                   + (sqlite3_uint64)(nRate % nLen) * (sqlite3_uint64)(dt % nLen);
  sqlite3_int64 units = quotaAddSat(rateMulSat(nRate / nLen, dt),
                                    rateMulSat(nRate % nLen, dt / nLen));
  *pUnits = quotaAddSat(units, (sqlite3_int64)(x / d));
  *pRem = (sqlite3_int64)(x % d);
}

/*
** Bring a bucket to `now`: load its rate the first time, then refill it
** for the seconds since pstart. Nothing is written here: the caller saves
** the key (k->mDirty), readers keep it in memory.
*/
static int periodNormalizeRate(QuotaStore *p, QuotaKey *k, sqlite3_int64 now,
                               int bWrite){
  (void)bWrite;
  if( k->nRate<=0 ){
    int rc = quotaStoreRateGet(p, k->id, &k->nRate);
    if( rc!=SQLITE_OK ) return rc;
    if( k->nRate<=0 ) return SQLITE_CORRUPT_VTAB;     /* a bucket with no rate */
  }
  if( now<=k->pstart ) return SQLITE_OK;    /* a clock behind refills nothing */
  if( k->used>0 ){
    sqlite3_int64 units, rem;
    rateRefill(k->nRate, k->nLen, k->wtotal, now - k->pstart, &units, &rem);
    if( units>=k->used ){
      k->used = 0;
      k->wtotal = 0;
    }else{
      k->used -= units;
      k->wtotal = rem;
    }
    k->mDirty |= QUOTA_DIRTY_COUNTS;
  }
  k->pstart = now;
  k->mDirty |= QUOTA_DIRTY_PERIOD;
  return SQLITE_OK;
}

/*
** A bucket that denies `amount`: the seconds until enough has refilled
** (the least t with floor((r + N*t) / D) >= used - (cap - amount), plus
** any wait for a clock behind pstart). When `amount` is more than the
** bucket holds (cap), it can never fit: the seconds until the bucket gains
** its next unit, or, full, until one unit would refill. Saturates at the
** largest 64-bit integer for a refill that takes longer than that.
*/
static int periodRetryRate(QuotaStore *p, const QuotaKey *k, sqlite3_int64 amount,
                           sqlite3_int64 now, sqlite3_int64 *pSecs){
  sqlite3_int64 need = 1, rem = 0, lo = 1, hi = LARGEST_INT64, units, unused;
  (void)p;
  if( k->used>0 ){
    rem = k->wtotal;
    if( amount<=k->cap ) need = k->used - (k->cap - amount);
  }
  if( NEVER(need<1) ) need = 1;        /* the bucket denies amount */
  rateRefill(k->nRate, k->nLen, rem, hi, &units, &unused);
  if( units<need ){
    *pSecs = LARGEST_INT64;
    return SQLITE_OK;
  }
  while( lo<hi ){
    sqlite3_int64 mid = lo + (hi-lo)/2;
    rateRefill(k->nRate, k->nLen, rem, mid, &units, &unused);
    if( units>=need ) hi = mid; else lo = mid + 1;
  }
  *pSecs = quotaAddSat(lo, k->pstart>now ? k->pstart - now : 0);
  return SQLITE_OK;
}
