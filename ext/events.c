/*
** events.c: what operators see. A key's `alert` column lists thresholds
** on `used` ('80%, 100%'), its `enforce` column says whether it denies
** ('hard') or only says it would have ('shadow'); the events they cause
** go to the outbox quota_events, in the same transaction as the call that
** caused them, so a poller reading `WHERE id > ?` never misses one and
** never sees one whose call was undone.
**
**   UPDATE quota SET alert = '80%, 100%' WHERE key = 'sk-live-1';
**   UPDATE quota SET enforce = 'shadow' WHERE key = 'sk-new-limit';
**   SELECT id, key, kind, detail, used, cap FROM quota_events WHERE id > ?;
**
** THE EVENTS, PER LEVEL OF THE CHAIN (every level with an alert, or in
** shadow mode, sends its own; the event names that level's key)
**   threshold      a charge (consume, record, settle) left `used` at or
**                  past a threshold of the level's alert (and above 0);
**                  detail is the threshold as the alert list writes it.
**                  One charge past several thresholds sends one event per
**                  threshold, in the order of the list. A reserve sends
**                  none: a hold is not usage.
**   exhausted      a charge left the level without room (cap - used -
**                  reserved is 0), for a capped level with an alert or in
**                  shadow mode.
**   shadow_denied  a reserve or consume was granted only because the level
**                  is in shadow mode: with `enforce = 'hard'` it would have
**                  been refused. A call refused by another level sends
**                  nothing: a denial changes nothing.
**   Each is sent at most once per event period of the level; resetting
**   `used`, or changing cap, period, anchor, alert or enforce, re-arms the
**   level (quotaEventsRearm).
**
** THE EVENT PERIOD
**   A calendar key's period. A rolling window has none of its own, so its
**   events count per window length from 1970-01-01 00:00 UTC: a 'rolling
**   1 hour' key sends each event at most once per clock hour, a 'rolling
**   24 hours' key once per UTC day. A lifetime key has one period, for
**   ever (until its `used` is reset). quota_events.period_start is the
**   event period's start (NULL for lifetime). A clock that moves back into
**   an earlier period keeps the later one (nothing is sent twice).
**
** HOW WHAT WAS SENT IS KEPT
**   quota_keyconf.fired holds the event period and a bit per event sent in
**   it, as P * 2^24 + mask: bit 0 exhausted, bit 1 shadow_denied, bit 2+i
**   the i-th threshold of the canonical alert list. A call reads it with
**   the key's settings (quotaStoreConfLoad) and writes it only when it
**   sends an event; a new period needs no write (the stored P is older:
**   nothing was sent in this one). A key with no alert and no shadow mode
**   has no row and no cost (store.c, bConfAny).
*/
#include "events.h"
#include <string.h>

#define EV_EXHAUSTED     ((sqlite3_int64)1)
#define EV_SHADOW        ((sqlite3_int64)2)
#define EV_THRESHOLD(i)  ((sqlite3_int64)4<<(i))
#define EV_SCALE         ((sqlite3_int64)1<<24)    /* fired = P*EV_SCALE + mask */

/* a/b rounded towards minus infinity (b > 0). */
static sqlite3_int64 eventsFloorDiv(sqlite3_int64 a, sqlite3_int64 b){
  sqlite3_int64 q = a/b;
  if( a%b!=0 && a<0 ) q--;
  return q;
}

/*
** The event period of level k (brought to `now` by the call) in *pP, its
** start: the calendar period, the window-length slot of a window, 0 for a
** lifetime key. Returns 0 for a lifetime key (no period_start), else 1.
*/
static int eventsPeriod(const QuotaKey *k, sqlite3_int64 now, sqlite3_int64 *pP){
  if( k->bPeriod ){
    *pP = k->pstart;
    return 1;
  }
  if( quotaKind(k->eKind)->bWindow && ALWAYS(k->nLen>0) ){
    *pP = eventsFloorDiv(now, k->nLen)*k->nLen;
    return 1;
  }
  *pP = 0;
  return 0;
}

/*
** The events k sent in event period *pP (its mask), from k->fired: none
** when the stored period is an earlier one; when it is a later one (the
** clock moved back), *pP becomes it and its mask counts. SQLITE_CORRUPT_VTAB
** for a period sqlite-quota never writes.
*/
static int eventsSent(const QuotaKey *k, sqlite3_int64 *pP, sqlite3_int64 *pMask){
  sqlite3_int64 sp;
  *pMask = 0;
  if( !k->bFired ) return SQLITE_OK;
  sp = eventsFloorDiv(k->fired, EV_SCALE);
  if( sp!=0 && (sp<QUOTA_TIME_MIN-QUOTA_TIME_SLACK || sp>QUOTA_TIME_MAX+QUOTA_TIME_SLACK) ){
    return SQLITE_CORRUPT_VTAB;
  }
  if( sp<*pP ) return SQLITE_OK;
  *pP = sp;
  *pMask = k->fired - sp*EV_SCALE;
  return SQLITE_OK;
}

/*
** The units at which threshold v (N units, or -N for N% of cap) is reached
** at level k: N, or N% of cap rounded up; -1 when it cannot be (a percent
** of no cap). Saturates: N% of a huge cap is at most 2^63-1.
*/
static sqlite3_int64 eventsThreshold(const QuotaKey *k, sqlite3_int64 v){
  sqlite3_int64 n, q, r, t;
  if( v>0 ) return v;
  if( !k->bCap ) return -1;
  n = -v;
  q = k->cap/100;
  r = k->cap%100;
  /* cap*n/100 = q*n + r*(n/100) + r*(n%100)/100, each term without overflow */
  t = (q!=0 && n>LARGEST_INT64/q) ? LARGEST_INT64 : q*n;
  t = quotaAddSat(t, r*(n/100));
  return quotaAddSat(t, (r*(n%100) + 99)/100);
}

/* True when level k's `used` has reached threshold i of its alert. */
static int eventsReached(const QuotaKey *k, int i){
  sqlite3_int64 t = eventsThreshold(k, k->aAlert[i]);
  return t>=0 && k->used>=t && k->used>0;
}

/* True when level k, capped, has no room left. */
static int eventsExhausted(const QuotaKey *k){
  return k->bCap && quotaRoom(k)==0;
}

/*
** True when a reserve or consume of `amount` is granted at level k only
** because k is in shadow mode (call it before the call's writes).
*/
int quotaEventsWouldDeny(const QuotaKey *k, sqlite3_int64 amount){
  return k->bShadow && quotaRoom(k)<amount;
}

/*
** After a call that was granted, on level k brought to `now` (its counters
** as the call left them): send the events the call caused and remember
** them in k->fired. bCharged: the call charged (consume, record, settle);
** bWouldDeny: quotaEventsWouldDeny said so before the call wrote. ledgerId
** and holdId (0 for none) say which charge or hold caused them.
*/
int quotaEventsAfterCall(QuotaStore *p, QuotaKey *k, sqlite3_int64 now,
                         int bCharged, int bWouldDeny,
                         sqlite3_int64 ledgerId, sqlite3_int64 holdId){
  sqlite3_int64 P = 0, mask = 0, add = 0;
  char zItem[QUOTA_NUMBER_TEXT];
  int bPeriod, i, rc;
  if( NEVER(!k->bConf) || (k->nAlert==0 && !k->bShadow) ) return SQLITE_OK;
  bPeriod = eventsPeriod(k, now, &P);
  rc = eventsSent(k, &P, &mask);
  if( rc==SQLITE_OK && bWouldDeny && k->bShadow && !(mask & EV_SHADOW) ){
    add |= EV_SHADOW;
    rc = quotaStoreEventInsert(p, k->id, now, "shadow_denied", 0, k->used,
        k->bCap, k->cap, bPeriod, P, ledgerId, holdId);
  }
  for(i=0; rc==SQLITE_OK && bCharged && i<k->nAlert; i++){
    if( (mask & EV_THRESHOLD(i)) || !eventsReached(k, i) ) continue;
    quotaAlertItem(k->aAlert[i], zItem);
    add |= EV_THRESHOLD(i);
    rc = quotaStoreEventInsert(p, k->id, now, "threshold", zItem, k->used,
        k->bCap, k->cap, bPeriod, P, ledgerId, holdId);
  }
  if( rc==SQLITE_OK && bCharged && !(mask & EV_EXHAUSTED) && eventsExhausted(k) ){
    add |= EV_EXHAUSTED;
    rc = quotaStoreEventInsert(p, k->id, now, "exhausted", 0, k->used,
        k->bCap, k->cap, bPeriod, P, ledgerId, holdId);
  }
  if( rc==SQLITE_OK && add ){
    k->bFired = 1;
    k->fired = P*EV_SCALE + (mask | add);
    rc = quotaStoreConfFired(p, k);
  }
  return rc;
}

/*
** Level k's settings or usage were just written by the table (INSERT, or
** an UPDATE of cap, period, anchor, used, alert or enforce), and k is
** brought to `now` with its new alert and enforcement: re-arm it. What it
** has already reached counts as sent (no event: no charge reached it),
** everything else fires at the next charge that reaches it; shadow_denied
** is armed. Sets k->bFired and k->fired for quotaStoreConfPut.
*/
int quotaEventsRearm(QuotaKey *k, sqlite3_int64 now){
  sqlite3_int64 P = 0, mask = 0;
  int i;
  k->bFired = 0;
  k->fired = 0;
  if( k->nAlert==0 && !k->bShadow ) return SQLITE_OK;
  (void)eventsPeriod(k, now, &P);
  for(i=0; i<k->nAlert; i++){
    if( eventsReached(k, i) ) mask |= EV_THRESHOLD(i);
  }
  if( eventsExhausted(k) ) mask |= EV_EXHAUSTED;
  if( mask ){
    k->bFired = 1;
    k->fired = P*EV_SCALE + mask;
  }
  return SQLITE_OK;
}

/*
** For quota_integrity: SQLITE_OK when an event of kind 'threshold' with
** detail zDetail, used and cap (bCap) is one a charge sends; SQLITE_MISMATCH
** when zDetail is not one threshold as the alert list writes it,
** SQLITE_CORRUPT_VTAB when used has not reached it.
*/
int quotaEventsCheckThreshold(const char *zDetail, sqlite3_int64 used,
                              int bCap, sqlite3_int64 cap){
  QuotaKey k;
  char zCanon[QUOTA_ALERT_TEXT];
  memset(&k, 0, sizeof(k));
  if( zDetail==0 || quotaParseAlert(zDetail, k.aAlert, &k.nAlert, zCanon)
   || k.nAlert!=1 || strcmp(zDetail, zCanon)!=0 ){
    return SQLITE_MISMATCH;
  }
  k.used = used;
  k.bCap = bCap;
  k.cap = cap;
  return eventsReached(&k, 0) ? SQLITE_OK : SQLITE_CORRUPT_VTAB;
}

/*
** For quota_integrity: SQLITE_OK when k->fired (with k's alert and
** enforcement loaded) is a value sqlite-quota writes: a period in range and
** only bits of events k can send; SQLITE_CORRUPT_VTAB otherwise.
*/
int quotaEventsCheckFired(const QuotaKey *k){
  sqlite3_int64 P = LARGEST_INT64, mask = 0, allowed;
  int rc;
  if( !k->bFired ) return SQLITE_OK;
  if( k->nAlert==0 && !k->bShadow ) return SQLITE_CORRUPT_VTAB;
  rc = eventsSent(k, &P, &mask);
  if( rc!=SQLITE_OK ) return rc;
  P = eventsFloorDiv(k->fired, EV_SCALE);
  mask = k->fired - P*EV_SCALE;
  allowed = EV_EXHAUSTED | (k->bShadow ? EV_SHADOW : 0)
          | (EV_THRESHOLD(k->nAlert) - EV_THRESHOLD(0));
  return (mask==0 || (mask & ~allowed)) ? SQLITE_CORRUPT_VTAB : SQLITE_OK;
}
