/*
** account.c: the accounting of sqlite-quota over a key and its parent
** chain (key -> account -> organisation): what reserve, settle, release,
** consume and record do to the counters, whichever of them runs.
**
** A charge or a hold counts at every level of the chain: each level's
** `used` or `reserved` moves by the same amount, and a call that needs
** room needs it at every level (quotaChainDenies). Every test is made
** before the first write, so a call that cannot complete writes nothing.
** A token bucket (period.c) also takes a hold's units into `used` when it
** is reserved and gives them back when it ends uncharged; settle then
** takes or gives the difference (quotaHoldTake, quotaHoldReturn,
** quotaChargeHeld).
**
** HOW HOLD EXPIRY IS SWEPT, NOT POLLED
**   quota_meta holds a watermark `swept`: every live hold whose `expires`
**   is at or before it has been marked expired and taken out of `reserved`
**   at every level of its chain. A writing call whose clock is past the
**   watermark first sweeps the holds expiring in (swept, now] and moves the
**   watermark (quotaSweep); with one-second clock resolution that is at
**   most one sweep per second, however busy. Readers cannot write: they
**   subtract the holds in (swept, now] on the fly (quotaEffective).
*/
#include "account.h"
#include <string.h>

/* ---------------------------------------------------------------- loading */

/* A key by name, as stored, checked. */
int quotaKeyByName(QuotaStore *p, const char *zKey, QuotaKey *k, int *pFound){
  int rc = quotaStoreKeyByName(p, zKey, k, pFound);
  if( rc==SQLITE_OK && *pFound ) rc = quotaKeyCheck(k);
  return rc;
}

/* A key by id, as stored, checked. */
int quotaKeyById(QuotaStore *p, sqlite3_int64 id, QuotaKey *k, int *pFound){
  int rc = quotaStoreKeyById(p, id, k, pFound);
  if( rc==SQLITE_OK && *pFound ) rc = quotaKeyCheck(k);
  return rc;
}

/*
** A key by name for a writing call, after sweeping expired holds when the
** clock has moved past the watermark (the sweep may change the key's
** `reserved`, so the key is read after it). The store's state is known.
*/
int quotaKeyForWrite(QuotaStore *p, const char *zKey, sqlite3_int64 now,
                     QuotaKey *k, int *pFound){
  int rc = SQLITE_OK;
  if( now!=p->iSwept ) rc = quotaSweep(p, now);
  if( rc==SQLITE_OK ) rc = quotaKeyByName(p, zKey, k, pFound);
  return rc;
}

/* A hold and its key for a writing call, after the sweep (as above). */
int quotaHoldForWrite(QuotaStore *p, sqlite3_int64 holdId, sqlite3_int64 now,
                      QuotaHold *h, QuotaKey *k, int *pFound){
  int rc = SQLITE_OK;
  if( now!=p->iSwept ) rc = quotaSweep(p, now);
  if( rc==SQLITE_OK ) rc = quotaStoreHoldGet(p, holdId, h, k, pFound);
  if( rc==SQLITE_OK && *pFound && h->zKey ) rc = quotaKeyCheck(k);
  return rc;
}

/*
** Load the ancestors of the leaf in c->a[0] and bring every level to time
** `now`: in the store (bWrite), or as readers see it.
*/
int quotaChainLoad(QuotaStore *p, QuotaChain *c, sqlite3_int64 now, int bWrite){
  int i, rc = SQLITE_OK;
  c->n = 1;
  while( c->a[c->n-1].parentId!=0 ){
    int bFound = 0;
    if( c->n>=QUOTA_MAX_DEPTH ) return SQLITE_CORRUPT_VTAB;
    rc = quotaKeyById(p, c->a[c->n-1].parentId, &c->a[c->n], &bFound);
    if( rc!=SQLITE_OK ) return rc;
    if( !bFound ) return SQLITE_CORRUPT_VTAB;    /* dangling parent */
    for(i=0; i<c->n; i++){
      if( c->a[i].id==c->a[c->n].id ) return SQLITE_CORRUPT_VTAB; /* cycle */
    }
    c->n++;
  }
  for(i=0; rc==SQLITE_OK && i<c->n; i++){
    rc = bWrite ? quotaNormalize(p, &c->a[i], now, 1)
                : quotaEffective(p, &c->a[i], now);
    if( rc==SQLITE_OK ) rc = quotaKeySettings(p, &c->a[i], now);
  }
  return rc;
}

/* Key k's settings from quota_keyconf (alert, enforcement, its count of
** open grants: nothing is read while no key has any) and its credits at
** `now` (nothing is read for a key without open grants): what its room
** and its events need beyond the key row. */
int quotaKeySettings(QuotaStore *p, QuotaKey *k, sqlite3_int64 now){
  int rc = SQLITE_OK;
  if( !k->bConf ) rc = quotaStoreConfLoad(p, k);
  if( rc==SQLITE_OK && k->nGrants>0 ) rc = quotaStoreCredits(p, k, now);
  return rc;
}

/* After a charge's ledger row `ledgerId` is written: every level takes
** what the charge drew from its grants (quotaChargeHeld set it). */
int quotaChainDraws(QuotaStore *p, QuotaChain *c, sqlite3_int64 ledgerId,
                    sqlite3_int64 now){
  int i, rc = SQLITE_OK;
  for(i=0; rc==SQLITE_OK && i<c->n; i++){
    if( c->a[i].drawn>0 ) rc = quotaStoreDraw(p, &c->a[i], ledgerId, now);
  }
  return rc;
}

/* ------------------------------------------------------- room, charges */

/* Index of the first level that has no room for `amount` and denies it,
** or -1. A level in shadow mode never denies (events.c). */
int quotaChainDenies(const QuotaChain *c, sqlite3_int64 amount){
  int i;
  for(i=0; i<c->n; i++){
    if( !c->a[i].bShadow && quotaRoom(&c->a[i])<amount ) return i;
  }
  return -1;
}

/* The least room of the chain's levels that deny (quotaRoom; a level in
** shadow mode never denies, as in quotaChainDenies): the most a hold or a
** charge could take now. */
sqlite3_int64 quotaChainRoom(const QuotaChain *c){
  sqlite3_int64 room = LARGEST_INT64;
  int i;
  for(i=0; i<c->n; i++){
    sqlite3_int64 r;
    if( c->a[i].bShadow ) continue;
    r = quotaRoom(&c->a[i]);
    if( r<room ) room = r;
  }
  return room;
}

/* True when some level, in shadow mode or not, has no room for `amount`
** (quota_status's "would_deny"). */
int quotaChainShort(const QuotaChain *c, sqlite3_int64 amount){
  int i;
  for(i=0; i<c->n; i++){
    if( quotaRoom(&c->a[i])<amount ) return 1;
  }
  return 0;
}

/* SQLITE_TOOBIG when `amount` would overflow some level's `used`. */
int quotaChainChargeFits(const QuotaChain *c, sqlite3_int64 amount){
  int i;
  for(i=0; i<c->n; i++){
    if( quotaChargeFits(&c->a[i], amount)!=SQLITE_OK ) return SQLITE_TOOBIG;
  }
  return SQLITE_OK;
}

/* Charge `amount` at every level (quotaChainChargeFits first). `held` is
** the amount of the live hold a settle ends (its units are out of every
** bucket of the chain), 0 otherwise. *pbOver is set when some capped
** level's `used` passed its cap by this charge. */
int quotaChainCharge(QuotaStore *p, QuotaChain *c, sqlite3_int64 amount,
                     sqlite3_int64 held, sqlite3_int64 now, int *pbOver){
  int i, rc = SQLITE_OK;
  for(i=0; rc==SQLITE_OK && i<c->n; i++){
    rc = quotaChargeHeld(p, &c->a[i], amount, held, now, pbOver);
  }
  return rc;
}

/* A new hold of `amount` takes its units out of every bucket of the chain
** (after quotaChainReserve, which counts it in reserved). SQLITE_TOOBIG,
** with nothing taken, when that would overflow some bucket's `used`: an
** enforced bucket granted it within its room, but a bucket in shadow mode
** grants anything. */
int quotaChainTake(QuotaChain *c, sqlite3_int64 amount){
  int i;
  for(i=0; i<c->n; i++){
    if( quotaKind(c->a[i].eKind)->bRate
     && quotaChargeFits(&c->a[i], amount)!=SQLITE_OK ) return SQLITE_TOOBIG;
  }
  for(i=0; i<c->n; i++){
    if( NEVER(quotaHoldTake(&c->a[i], amount)!=SQLITE_OK) ) return SQLITE_TOOBIG;
  }
  return SQLITE_OK;
}

/* Write back every level that changed. */
int quotaChainSave(QuotaStore *p, QuotaChain *c){
  int i, rc = SQLITE_OK;
  for(i=0; rc==SQLITE_OK && i<c->n; i++) rc = quotaStoreKeySave(p, &c->a[i]);
  return rc;
}

/* Add `delta` to `reserved` at every level in memory: SQLITE_TOOBIG if a
** level would overflow, SQLITE_CORRUPT_VTAB if one would go below 0; then
** nothing has changed. */
int quotaChainReserve(QuotaChain *c, sqlite3_int64 delta){
  int i;
  for(i=0; i<c->n; i++){
    if( delta>0 && c->a[i].reserved > LARGEST_INT64 - delta ) return SQLITE_TOOBIG;
    if( delta<0 && c->a[i].reserved < -delta ) return SQLITE_CORRUPT_VTAB;
  }
  for(i=0; i<c->n; i++){
    c->a[i].reserved += delta;
    c->a[i].mDirty |= QUOTA_DIRTY_COUNTS;
  }
  return SQLITE_OK;
}

/* A hold of -delta units ends uncharged at `now`: add `delta` (negative)
** to the reserved counter of every level of the chain starting at key id
** `leafId`, give its units back to every bucket, and write each level
** back. */
int quotaAdjustReserved(QuotaStore *p, sqlite3_int64 leafId, sqlite3_int64 delta,
                        sqlite3_int64 now){
  sqlite3_int64 id = leafId;
  int depth = 0;
  while( id!=0 ){
    QuotaKey k;
    int bFound = 0, rc;
    if( ++depth>QUOTA_MAX_DEPTH ) return SQLITE_CORRUPT_VTAB;
    rc = quotaKeyById(p, id, &k, &bFound);
    if( rc!=SQLITE_OK ) return rc;
    if( !bFound ) return depth==1 ? SQLITE_OK : SQLITE_CORRUPT_VTAB;
    if( NEVER(delta>0) && k.reserved>LARGEST_INT64-delta ) return SQLITE_CORRUPT_VTAB;
    k.reserved += delta;
    if( k.reserved<0 ) return SQLITE_CORRUPT_VTAB;
    k.mDirty = QUOTA_DIRTY_COUNTS;
    rc = quotaHoldReturn(p, &k, -delta, now, 1);
    if( rc==SQLITE_OK ) rc = quotaStoreKeySave(p, &k);
    if( rc!=SQLITE_OK ) return rc;
    id = k.parentId;
  }
  return SQLITE_OK;
}

/* ----------------------------------------------------------------- holds */

/*
** Expire every live hold whose ttl has run out by `now`, taking it out of
** `reserved` at every level of its chain, and move the watermark to now.
** A clock that moved backwards only moves the watermark.
*/
int quotaSweep(QuotaStore *p, sqlite3_int64 now){
  sqlite3_int64 nextId = p->iSweepId;
  int rc = SQLITE_OK;
  if( now==p->iSwept ) return SQLITE_OK;
  if( now>p->iSwept ){
    sqlite3_int64 *aHold = 0;
    int nHold = 0, i;
    rc = quotaStoreExpiredHolds(p, now, &aHold, &nHold, &nextId);
    for(i=0; rc==SQLITE_OK && i<nHold; i++){
      /* ended stays NULL: an expired hold ended at its `expires` */
      rc = quotaStoreHoldEnd(p, aHold[(size_t)i*3], HOLD_EXPIRED, -1, -1);
      if( rc==SQLITE_OK ){
        rc = quotaAdjustReserved(p, aHold[(size_t)i*3+1], -aHold[(size_t)i*3+2],
                                 now);
      }
    }
    sqlite3_free(aHold);
    if( rc!=SQLITE_OK ) return rc;
  }
  return quotaStoreSweepSave(p, now, nextId);
}

/*
** Effective values of a key at `now` for readers: normalized in memory, and
** with holds that expired since the last sweep no longer counted.
*/
int quotaEffective(QuotaStore *p, QuotaKey *k, sqlite3_int64 now){
  sqlite3_int64 *aHold = 0, nextId;
  int nHold = 0, i, rc = quotaNormalize(p, k, now, 0);
  if( rc!=SQLITE_OK || now<=p->iSwept || k->reserved==0 ) return rc;
  rc = quotaStoreExpiredHolds(p, now, &aHold, &nHold, &nextId);
  for(i=0; rc==SQLITE_OK && i<nHold; i++){
    sqlite3_int64 id = aHold[(size_t)i*3+1];
    int depth = 0;
    /* Does this hold count at k? Walk its chain upwards. */
    while( id!=0 && id!=k->id && depth++<QUOTA_MAX_DEPTH ){
      QuotaKey up;
      int bFound = 0;
      rc = quotaStoreKeyById(p, id, &up, &bFound);
      if( rc!=SQLITE_OK ) break;
      id = bFound ? up.parentId : 0;
    }
    if( rc==SQLITE_OK && id==k->id ){
      k->reserved -= aHold[(size_t)i*3+2];
      if( k->reserved<0 ) k->reserved = 0;
      rc = quotaHoldReturn(p, k, aHold[(size_t)i*3+2], now, 0);
    }
  }
  sqlite3_free(aHold);
  return rc;
}

/* The key k is being deleted: its live holds stop counting at its
** ancestors and become orphaned, ended `now` (purge counts from then). */
int quotaOrphanHolds(QuotaStore *p, const QuotaKey *k, sqlite3_int64 now){
  sqlite3_int64 *aHold = 0;
  int nHold = 0, i;
  int rc = quotaStoreLiveHolds(p, k->id, &aHold, &nHold);
  for(i=0; rc==SQLITE_OK && i<nHold; i++){
    rc = quotaStoreHoldEnd(p, aHold[(size_t)i*3], HOLD_ORPHANED, now, -1);
    if( rc==SQLITE_OK && k->parentId ){
      rc = quotaAdjustReserved(p, k->parentId, -aHold[(size_t)i*3+2], now);
    }
  }
  sqlite3_free(aHold);
  return rc;
}
