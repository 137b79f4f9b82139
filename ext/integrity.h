/*
** integrity.h: the store's invariants, checked (integrity.c).
*/
#ifndef QUOTA_INTEGRITY_H
#define QUOTA_INTEGRITY_H

#include "store.h"

int quotaIntegrity(QuotaStore *p, char **pzErr);

#endif /* QUOTA_INTEGRITY_H */
