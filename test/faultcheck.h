/*
** faultcheck.h: what the fault drivers (oomtest.c, iofault.c, crashtest.c)
** compare and check after every fault: a dump of the whole database, the
** difference of two dumps, and the invariants of sqlite-quota.
**
** Included by each driver after faultutil.h (Buf, fatal(), runSql(),
** mustSql()); it holds static functions only.
*/
#ifndef QUOTA_FAULTCHECK_H
#define QUOTA_FAULTCHECK_H

/*
** True if db has the quota module: not on a connection opened without the
** extension (faultOpenPlain() in faultpaths.h), which must not open the
** table of a store at schema 1 since that upgrades the store.
*/
static int hasQuotaModule(sqlite3 *db){
  Buf res = {0, 0, 0};
  int bHas;
  mustSql(db, "SELECT count(*) FROM pragma_module_list WHERE name='quota'", &res);
  bHas = strcmp(bufText(&res), "1\n")==0;
  bufFree(&res);
  return bHas;
}

/*
** Dump the whole database: schema, every ordinary table in rowid order, and
** with bTable the quota virtual table itself (not on a connection without
** the extension). Two databases with equal dumps hold the same state.
** Without bTable the dump reads no virtual table: it opens no quota table,
** which would upgrade a store at schema 1.
*/
static void dumpStore(sqlite3 *db, Buf *pOut, int bTable){
  sqlite3_stmt *pList = 0;
  int rc;
  bufReset(pOut);
  mustSql(db, "SELECT type, name, tbl_name, sql FROM sqlite_schema"
              " ORDER BY type, name", pOut);
  rc = sqlite3_prepare_v2(db,
      "SELECT name FROM sqlite_schema WHERE type='table'"
      " AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name", -1, &pList, 0);
  if( rc!=SQLITE_OK ) fatal("dump: %s", sqlite3_errmsg(db));
  while( (rc = sqlite3_step(pList))==SQLITE_ROW ){
    const char *zTab = (const char*)sqlite3_column_text(pList, 0);
    char *zSql;
    Buf err = {0, 0, 0};
    if( zTab==0 ) fatal("dump: out of memory");
    bufPrintf(pOut, "-- %s\n", zTab);
    zSql = sqlite3_mprintf("SELECT * FROM \"%w\" ORDER BY rowid", zTab);
    if( zSql==0 ) fatal("dump: out of memory");
    if( runSql(db, zSql, pOut, &err)!=SQLITE_OK ){
      sqlite3_free(zSql);
      zSql = sqlite3_mprintf("SELECT * FROM \"%w\"", zTab);
      if( zSql==0 ) fatal("dump: out of memory");
      mustSql(db, zSql, pOut);
    }
    sqlite3_free(zSql);
    bufFree(&err);
  }
  if( rc!=SQLITE_DONE ) fatal("dump: %s", sqlite3_errmsg(db));
  rc = sqlite3_finalize(pList);
  if( rc!=SQLITE_OK ) fatal("dump: finalize rc=%d", rc);
  if( bTable && hasQuotaModule(db) ){
    Buf res = {0, 0, 0};
    mustSql(db, "SELECT count(*) FROM sqlite_schema WHERE name='quota'", &res);
    if( strcmp(bufText(&res), "1\n")==0 ){
      bufAppend(pOut, "-- quota\n", 9);
      mustSql(db, "SELECT * FROM quota ORDER BY key", pOut);
    }
    bufFree(&res);
  }
}

static void dumpDb(sqlite3 *db, Buf *pOut){
  dumpStore(db, pOut, 1);
}

/* First differing line of two dumps, for messages. */
static void dumpDiff(const char *zA, const char *zB, Buf *pOut){
  int iLine = 1;
  const char *zA0 = zA, *zB0 = zB;
  while( *zA && *zA==*zB ){ if( *zA=='\n' ) iLine++; zA++; zB++; }
  while( zA>zA0 && zA[-1]!='\n' ){ zA--; zB--; }
  (void)zB0;
  {
    const char *ea = strchr(zA, '\n'), *eb = strchr(zB, '\n');
    int na = ea ? (int)(ea-zA) : (int)strlen(zA);
    int nb = eb ? (int)(eb-zB) : (int)strlen(zB);
    bufPrintf(pOut, "line %d: got '...%.*s' expected '...%.*s'", iLine,
              na>200?200:na, zA, nb>200?200:nb, zB);
  }
}

/*
** The invariants every fault run must keep (README.md, "Reliability")
** that can be read from one database. Each query
** returns one row per broken invariant; none must come back. The clock is
** pinned and every charge of these workloads falls in the current period and
** window, and no hold outlives its ttl, so "the current period" is the whole
** ledger and "live" is state 0. A key's counters cover its subtree: a charge
** or hold at a key counts at each of its ancestors (keys that are deleted
** here have no parent). A token bucket (period 'rate ...') refills nothing
** under a pinned clock, and its live holds' units are in its used as well
** as in its reserved.
*/
#define SUBTREE \
  "WITH RECURSIVE sub(root, id) AS (SELECT id, id FROM quota_keys" \
  " UNION ALL SELECT sub.root, k.id FROM quota_keys k JOIN sub ON k.parent=sub.id) "
static const char *azInvariant[] = {
  /* 1a. used = sum of the ledger charges of the key's subtree */
  SUBTREE
  "SELECT 'used', r.key, r.used, (SELECT coalesce(sum(l.amount),0)"
  "   FROM quota_ledger l WHERE l.key IN (SELECT k.key FROM sub JOIN quota_keys k"
  "   ON k.id=sub.id WHERE sub.root=r.id)) AS s FROM quota_keys r"
  " WHERE r.used<>s+iif(r.period LIKE 'rate %', r.reserved, 0)"
  /* less what those charges drew from the key's own grants (credits) */
  "   -(SELECT coalesce(sum(d.amount),0) FROM quota_draws d JOIN quota_grants g"
  "     ON g.id=d.grant_id WHERE g.key=r.key)",
  /* 1b. reserved = sum of the live holds of the key's subtree */
  SUBTREE
  "SELECT 'reserved', r.key, r.reserved, (SELECT coalesce(sum(h.amount),0)"
  "   FROM quota_holds h WHERE h.state=0 AND h.key_id IN"
  "   (SELECT id FROM sub WHERE root=r.id)) AS s FROM quota_keys r WHERE r.reserved<>s",
  /* the table shows the stored counters */
  "SELECT 'table', q.key, q.used, k.used, q.reserved, k.reserved"
  "  FROM quota q JOIN quota_keys k ON k.key=q.key"
  " WHERE q.used<>k.used OR q.reserved<>k.reserved",
  /* 2. used + reserved <= cap (plus what the key's grants were not drawn
  ** for: a hold reserved on credits may outlive their void or expiry)
  ** unless a charge of the subtree went over, or the key is in shadow mode
  ** (it never denies) */
  SUBTREE
  "SELECT 'cap', r.key, r.used, r.reserved, r.cap FROM quota_keys r"
  " WHERE r.cap IS NOT NULL"
  "   AND r.used+iif(r.period LIKE 'rate %', 0, r.reserved)"
  "       >r.cap+(SELECT coalesce(sum(g.remaining+coalesce(g.voided,0)),0)"
  "         FROM quota_grants g WHERE g.key=r.key)"
  "   AND NOT EXISTS (SELECT 1 FROM quota_ledger l WHERE l.over AND l.key IN"
  "   (SELECT k.key FROM sub JOIN quota_keys k ON k.id=sub.id WHERE sub.root=r.id))"
  "   AND NOT EXISTS (SELECT 1 FROM quota_keyconf c WHERE c.id=r.id AND c.enforce=1)",
  /* 7. an event names the charge or hold that caused it: a committed
  ** ledger row of its key's subtree (or the hold of a shadow reserve) */
  SUBTREE
  "SELECT 'event', e.id, e.key, e.kind FROM quota_events e JOIN quota_keys r ON r.key=e.key"
  " WHERE NOT EXISTS (SELECT 1 FROM quota_ledger l WHERE l.id=e.ledger_id AND l.key IN"
  "   (SELECT k.key FROM sub JOIN quota_keys k ON k.id=sub.id WHERE sub.root=r.id))"
  "   AND NOT (e.kind='shadow_denied' AND e.ledger_id IS NULL AND EXISTS"
  "   (SELECT 1 FROM quota_holds h WHERE h.id=e.hold_id AND h.key_id IN"
  "   (SELECT id FROM sub WHERE root=r.id)))",
  /* 3. a request id has at most one effect */
  "SELECT 'request', key, request_id, count(*) FROM quota_ledger"
  " WHERE request_id IS NOT NULL GROUP BY key, request_id HAVING count(*)>1",
  "SELECT 'request-hold', key_id, request_id, count(*) FROM quota_holds"
  " WHERE request_id IS NOT NULL GROUP BY key_id, request_id HAVING count(*)>1",
  /* 5. a hold ends once: a settled hold has one ledger row, others none */
  "SELECT 'hold', h.id, h.state, count(l.id) FROM quota_holds h"
  "  LEFT JOIN quota_ledger l ON l.hold_id=h.id GROUP BY h.id"
  " HAVING count(l.id)<>(h.state=1)",
  "SELECT 'hold-charged', h.id FROM quota_holds h JOIN quota_ledger l ON l.hold_id=h.id"
  " WHERE h.charged IS NOT l.amount",
  /* derived columns agree */
  "SELECT 'remaining', key FROM quota WHERE cap IS NOT NULL"
  "   AND remaining<>max(0, cap-used+credits-iif(period LIKE 'rate %', 0, reserved))",
  0
};

/*
** Check integrity and, with bInvariants, the invariants; append problems to
** pErr; return 0 if none. (A state equal to a reference state, whose
** invariants were checked once, needs only the integrity check.) On a
** connection without the extension (see hasQuotaModule) only PRAGMA
** integrity_check runs.
*/
static int checkDb(sqlite3 *db, Buf *pErr, int bInvariants){
  Buf res = {0, 0, 0};
  int i, nBad = 0;
  Buf err = {0, 0, 0};
  int bExt = hasQuotaModule(db);
  if( runSql(db, "PRAGMA integrity_check", &res, &err)!=SQLITE_OK ){
    bufPrintf(pErr, "integrity_check failed: %s; ", bufText(&err));
    nBad++;
  }else if( strcmp(bufText(&res), "'ok'\n")!=0 ){
    bufPrintf(pErr, "integrity_check: %.300s; ", bufText(&res));
    nBad++;
  }
  /* 6. the extension's own integrity check */
  bufReset(&res);
  if( !bExt ){
    /* a connection without the extension: nothing more to check */
  }else if( runSql(db, "SELECT quota_integrity()", &res, &err)!=SQLITE_OK ){
    if( strstr(bufText(&err), "no quota table")==0 ){
      bufPrintf(pErr, "quota_integrity() failed: %s; ", bufText(&err));
      nBad++;
    }
  }else if( strcmp(bufText(&res), "'ok'\n")!=0 ){
    bufPrintf(pErr, "quota_integrity(): %.300s; ", bufText(&res));
    nBad++;
  }
  for(i=0; bInvariants && bExt && azInvariant[i]; i++){
    bufReset(&res);
    if( runSql(db, azInvariant[i], &res, &err)!=SQLITE_OK ){
      /* The quota table may not exist yet (create path, before the call). */
      if( strstr(bufText(&err), "no such table")==0 ){
        bufPrintf(pErr, "invariant query %d failed: %s; ", i, bufText(&err));
        nBad++;
      }
    }else if( res.n>0 ){
      bufPrintf(pErr, "invariant broken: %.300s; ", bufText(&res));
      nBad++;
    }
  }
  bufFree(&res);
  bufFree(&err);
  return nBad;
}

#endif /* QUOTA_FAULTCHECK_H */
