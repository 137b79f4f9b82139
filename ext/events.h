/*
** events.h: what operators see (events.c): threshold alerts, the event
** outbox quota_events, and shadow enforcement, one level of a parent chain
** at a time.
*/
#ifndef QUOTA_EVENTS_H
#define QUOTA_EVENTS_H

#include "period.h"

int quotaEventsWouldDeny(const QuotaKey *k, sqlite3_int64 amount);
int quotaEventsAfterCall(QuotaStore *p, QuotaKey *k, sqlite3_int64 now,
                         int bCharged, int bWouldDeny,
                         sqlite3_int64 ledgerId, sqlite3_int64 holdId);
int quotaEventsRearm(QuotaKey *k, sqlite3_int64 now);
int quotaEventsCheckFired(const QuotaKey *k);
int quotaEventsCheckThreshold(const char *zDetail, sqlite3_int64 used,
                              int bCap, sqlite3_int64 cap);

#endif /* QUOTA_EVENTS_H */
