/*
** account.h: the accounting over a key and its parent chain (account.c):
** loading a chain and bringing it to the call's time, the room test,
** charging every level, holds counted at every level, the sweep of
** expired holds.
*/
#ifndef QUOTA_ACCOUNT_H
#define QUOTA_ACCOUNT_H

#include "period.h"

/* A key and its ancestors, leaf first. */
typedef struct QuotaChain QuotaChain;
struct QuotaChain {
  int n;
  QuotaKey a[QUOTA_MAX_DEPTH];
};

int quotaKeyByName(QuotaStore *p, const char *zKey, QuotaKey *k, int *pFound);
int quotaKeyById(QuotaStore *p, sqlite3_int64 id, QuotaKey *k, int *pFound);
int quotaKeyForWrite(QuotaStore *p, const char *zKey, sqlite3_int64 now,
                     QuotaKey *k, int *pFound);
int quotaHoldForWrite(QuotaStore *p, sqlite3_int64 holdId, sqlite3_int64 now,
                      QuotaHold *h, QuotaKey *k, int *pFound);
int quotaKeySettings(QuotaStore *p, QuotaKey *k, sqlite3_int64 now);
int quotaChainLoad(QuotaStore *p, QuotaChain *c, sqlite3_int64 now, int bWrite);
int quotaChainDenies(const QuotaChain *c, sqlite3_int64 amount);
sqlite3_int64 quotaChainRoom(const QuotaChain *c);
int quotaChainShort(const QuotaChain *c, sqlite3_int64 amount);
int quotaChainChargeFits(const QuotaChain *c, sqlite3_int64 amount);
int quotaChainCharge(QuotaStore *p, QuotaChain *c, sqlite3_int64 amount,
                     sqlite3_int64 held, sqlite3_int64 now, int *pbOver);
int quotaChainTake(QuotaChain *c, sqlite3_int64 amount);
int quotaChainDraws(QuotaStore *p, QuotaChain *c, sqlite3_int64 ledgerId,
                    sqlite3_int64 now);
int quotaChainSave(QuotaStore *p, QuotaChain *c);
int quotaChainReserve(QuotaChain *c, sqlite3_int64 delta);
int quotaAdjustReserved(QuotaStore *p, sqlite3_int64 leafId, sqlite3_int64 delta,
                        sqlite3_int64 now);
int quotaSweep(QuotaStore *p, sqlite3_int64 now);
int quotaEffective(QuotaStore *p, QuotaKey *k, sqlite3_int64 now);
int quotaOrphanHolds(QuotaStore *p, const QuotaKey *k, sqlite3_int64 now);

#endif /* QUOTA_ACCOUNT_H */
