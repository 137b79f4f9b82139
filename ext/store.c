/*
** store.c: the shadow tables of a quota table, every statement run on
** them, and what a connection keeps in memory about them.
**
** A table created with `CREATE VIRTUAL TABLE quota USING quota` keeps its
** data in ten ordinary tables in the same schema:
**
**   quota_keys      one row per key: its settings and its counters
**                   (used, reserved, the period `used` belongs to)
**   quota_notes     the note of each key that has one: a note can be long,
**                   and the key row is rewritten by every call
**   quota_holds     one row per reservation, live or ended; no index: holds
**                   of the default ttl form an ordered lane by id, the others
**                   are listed in quota_expiry (see quotaStoreExpiredHolds)
**   quota_expiry    (expires, hold id) of the holds outside the ordered lane
**   quota_ledger    the audit log, one row per charge; readable by users
**   quota_requests  request ids, for idempotent retries
**   quota_window    per-second buckets of the charges inside a rolling
**                   window: used = the sum of the buckets of the key
**   quota_meta      schema version, options, the sweep watermark, the
**                   purge cursors
**   quota_keyconf   the settings of a key that quota_keys has no column
**                   for (a token bucket's rate N; alert, enforce, and what
**                   its events have sent); a key that has none has no row,
**                   and a call never reads alert/enforce there while no
**                   key has a row (bConfAny)
**   quota_holdtime  when holds were taken: one row (first hold id, second)
**                   each time a reserve falls in a new second; a hold was
**                   taken in the second of the row with the largest id at
**                   or below its own (quota_hold's "created")
**   quota_events    the event outbox, one row per event; readable by users
**   quota_grants    credits: units granted to a key on top of its period
**                   allowance, one row per grant; readable by users
**   quota_draws     which grants each charge (ledger row) drew from;
**                   readable by users
**
** SCHEMA VERSIONS
**   quota_meta.schema says which layout a store has. 1: sqlite-quota 0.1.0
**   (the note in quota_keys). 2: notes in quota_notes (0.2.0). 3: the
**   options in quota_meta, so that quota_configure can change them in place
**   and every connection sees the change. 4: quota_keyconf (settings beyond
**   quota_keys' columns), quota_holdtime (token buckets, quota_hold),
**   quota_events (the outbox), quota_grants and quota_draws (credits). A store at an older version is upgraded in
**   place when a connection first opens its table (storeUpgrade); an
**   upgrade only creates tables and moves rows, so
**   statements prepared against the old layout stay valid. An upgraded
**   store keeps the old quota_keys.note column, always NULL.
**
** THE ONE RULE: WHAT A CONNECTION MAY REMEMBER
**   A store remembers the sweep state, the options, the result of its
**   schema checks, the last key it loaded by name, the open grants of the
**   last key whose credits it read and the second of the newest
**   quota_holdtime row, so that a call need not read them again. They are the truth only as of some moment, so:
**   - bKnown: they are the truth in the running transaction. Set when they
**     are read or written; cleared when a transaction starts that cannot
**     trust them and whenever one ends without committing them (a failed
**     call, a call inside the caller's transaction, a write to the table).
**   - bTrusted: they are also the truth after the transaction, as long as
**     SQLITE_FCNTL_DATA_VERSION (which moves with every commit to the
**     database, by any connection, this one included) has not moved since
**     uDataVersion. Set only when a transaction of the store's own ends in
**     COMMIT. A call in a transaction of its own (BEGIN IMMEDIATE for a
**     writer, BEGIN and a read that starts the snapshot for a reader:
**     either reads the data version afresh) starts with bKnown = bTrusted
**     && the data version is unchanged; every other call starts with
**     nothing known. (A deferred BEGIN alone has read nothing when it
**     returns: the data version it shows may be one commit behind.)
**   So nothing held in memory outlives a rollback, a failed call, or a
**   commit by anyone else: it is dropped (quotaStoreForget) and read again.
**
** HOW IT WORKS
**   Counters are kept, never recomputed: a key's `used` and `reserved` are
**   columns that each call adjusts, so a call costs the same with ten rows in
**   the ledger or ten million.
**
**   Key, hold and ledger ids are never reused: purge never removes the row
**   with the largest id of quota_holds or quota_ledger, so SQLite's rowid
**   allocation (largest + 1) cannot go back; quota_keys uses AUTOINCREMENT.
*/
#include "store.h"
#include "schema.h"
#include <string.h>

/*
** The statements, by QS_ number. "{x}" stands for the shadow table
** "schema"."table_x".
*/
static const char *const azStmtSql[QS_COUNT] = {
  /* Everything a call needs to know before it touches a key: the sweep
  ** state (the ordered lane's largest expiry is on its newest row), the
  ** options, the largest ids (to tell a hand-edited store), and whether
  ** any key has settings in quota_keyconf. */
  [QS_STATE] =
    "SELECT (SELECT value FROM {meta} WHERE name='swept'),"
    " (SELECT value FROM {meta} WHERE name='sweepid'),"
    " (SELECT l0max FROM {holds} ORDER BY id DESC LIMIT 1),"
    " (SELECT value FROM {meta} WHERE name='options'),"
    " (SELECT max(id) FROM {holds}), (SELECT max(id) FROM {ledger})"
    ", EXISTS(SELECT 1 FROM {keyconf})",
  [QS_KEY_BY_NAME] =
    "SELECT id, cap, kind, len, anchor, parent, used, reserved, pstart, oldest,"
    " wtotal FROM {keys} WHERE key=?1",
  [QS_KEY_BY_ID] =
    "SELECT id, cap, kind, len, anchor, parent, used, reserved, pstart, oldest,"
    " wtotal FROM {keys} WHERE id=?1",
  [QS_KEY_SAVE] =
    "UPDATE {keys} SET used=?2, reserved=?3, pstart=?4, oldest=?5, wtotal=?6"
    " WHERE id=?1",
  /* the same when only the counters changed */
  [QS_KEY_SAVE_COUNTS] =
    "UPDATE {keys} SET used=?2, reserved=?3 WHERE id=?1",
  [QS_KEY_INSERT] =
    "INSERT INTO {keys}(key, cap, period, kind, len, anchor, parent, retention,"
    " used, reserved, pstart, oldest, wtotal)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
  [QS_KEY_UPDATE_ALL] =
    "UPDATE {keys} SET cap=?2, period=?3, kind=?4, len=?5, anchor=?6, parent=?7,"
    " retention=?8, used=?9, reserved=?10, pstart=?11, oldest=?12,"
    " wtotal=?13 WHERE id=?1",
  [QS_KEY_ROW] =
    "SELECT key, period, retention FROM {keys} WHERE id=?1",
  [QS_KEY_DELETE] =
    "DELETE FROM {keys} WHERE id=?1",
  [QS_KEY_CHILD] =
    "SELECT key FROM {keys} WHERE parent=?1 ORDER BY id LIMIT 1",
  [QS_KEY_NAME] =
    "SELECT key FROM {keys} WHERE id=?1",
  [QS_NOTE_PUT] =
    "INSERT OR REPLACE INTO {notes}(id, note) VALUES(?1, ?2)",
  [QS_NOTE_DELETE] =
    "DELETE FROM {notes} WHERE id=?1",
  [QS_META_GET] =
    "SELECT value FROM {meta} WHERE name=?1",
  [QS_META_SET] =
    "UPDATE {meta} SET value=?2 WHERE name=?1",
  [QS_SWEEP_SAVE] =
    "UPDATE {meta} SET value=CASE name WHEN 'swept' THEN ?1 ELSE ?2 END"
    " WHERE name IN ('swept', 'sweepid')",
  /* the ordered lane, oldest first (see quotaStoreExpiredHolds) */
  [QS_LANE0_SCAN] =
    "SELECT id, key_id, amount, state, expires, lane FROM {holds}"
    " WHERE id>=?1 ORDER BY id",
  [QS_LANE1_SCAN] =
    "SELECT h.id, h.key_id, h.amount, h.state FROM {expiry} AS e"
    " JOIN {holds} AS h ON h.id=e.hold_id WHERE e.expires<=?1",
  [QS_LANE1_DELETE] =
    "DELETE FROM {expiry} WHERE expires<=?1",
  [QS_EXPIRY_INSERT] =
    "INSERT INTO {expiry}(expires, hold_id) VALUES(?1, ?2)",
  [QS_HOLD_END] =
    "UPDATE {holds} SET state=?2, ended=?3, charged=?4 WHERE id=?1",
  [QS_HOLD_INSERT] =
    "INSERT INTO {holds}(key_id, amount, expires, state, request_id, lane, l0max)"
    " VALUES(?1, ?2, ?3, 0, ?4, ?5, ?6)",
  /* The hold, then its key's row (NULLs if the key is gone) in the columns
  ** of QS_KEY_BY_ID. When the hold's key is ?2, the key in the key cache,
  ** its row is not read: the NULL makes the join's rowid seek a no-op. */
  [QS_HOLD_GET] =
    "SELECT h.key_id, h.amount, h.expires, h.state, h.charged, h.request_id,"
    " k.key, k.id, k.cap, k.kind, k.len, k.anchor, k.parent, k.used, k.reserved,"
    " k.pstart, k.oldest, k.wtotal"
    " FROM {holds} AS h LEFT JOIN {keys} AS k"
    " ON k.id=CASE h.key_id WHEN ?2 THEN NULL ELSE h.key_id END WHERE h.id=?1",
  [QS_HOLDS_OF_KEY] =
    "SELECT id, amount FROM {holds} WHERE key_id=?1 AND state=0",
  [QS_LEDGER_INSERT] =
    "INSERT INTO {ledger}(key, amount, at, request_id, hold_id, meta, over, late)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
  [QS_REQ_GET] =
    "SELECT op, amount, result, at FROM {requests}"
    " WHERE key_id=?1 AND request_id=?2",
  [QS_REQ_PUT] =
    "REPLACE INTO {requests}(key_id, request_id, op, amount, result, at)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
  [QS_REQ_DELETE_KEY] =
    "DELETE FROM {requests} WHERE key_id=?1",
  /* A charge joins the bucket of its second, or of the newest second if
  ** the clock is behind it, so running totals stay in order. */
  [QS_WIN_ADD] =
    "INSERT INTO {window}(key_id, sec, amount, total)"
    " VALUES(?1, max(?2, coalesce((SELECT max(sec) FROM {window} WHERE key_id=?1),"
    " ?2)), ?3, ?4)"
    " ON CONFLICT(key_id, sec) DO UPDATE SET amount=amount+excluded.amount,"
    " total=total+excluded.amount",
  /* Add to the newest bucket when it is at or after second ?2. Running
  ** totals only grow, so the newest bucket is the one whose total is the
  ** key's (?4): one seek, where QS_WIN_ADD also finds max(sec). */
  [QS_WIN_JOIN] =
    "UPDATE {window} SET amount=amount+?3, total=total+?3"
    " WHERE key_id=?1 AND sec>=?2 AND total=?4",
  /* the running total of the key's charges up to second ?2 */
  [QS_WIN_TOTAL_AT] =
    "SELECT total FROM {window} WHERE key_id=?1 AND sec<=?2"
    " ORDER BY sec DESC LIMIT 1",
  [QS_WIN_DELETE_BEFORE] =
    "DELETE FROM {window} WHERE key_id=?1 AND sec<=?2",
  /* the oldest bucket after second ?2 */
  [QS_WIN_FIRST_AFTER] =
    "SELECT min(sec) FROM {window} WHERE key_id=?1 AND sec>?2",
  [QS_WIN_DELETE_KEY] =
    "DELETE FROM {window} WHERE key_id=?1",
  [QS_WIN_NEWEST] =
    "SELECT max(sec) FROM {window} WHERE key_id=?1",
  /* running totals start again from what is in the window */
  [QS_WIN_REBASE] =
    "UPDATE {window} SET total=total-?2 WHERE key_id=?1",
  /* A write statement that changes nothing but takes the write lock,
  ** through the busy handler, as the first act of a transaction. */
  [QS_LOCK] = "UPDATE {meta} SET value=value WHERE 0",
  [QS_BEGIN] = "BEGIN IMMEDIATE",
  /* Stepped once and left unreset, it holds a read transaction open in
  ** autocommit: every statement of the call reads the same snapshot, for
  ** one statement instead of BEGIN, a read to start the snapshot, and
  ** COMMIT. This one starts the read and returns its row without opening a
  ** cursor (the WHERE 0 branch jumps over it), and needs no permission
  ** beyond reading quota_meta, which every call needs: PRAGMA
  ** schema_version would do the same, but an authorizer that refuses
  ** pragmas would then refuse reads. */
  [QS_READ_PIN] = "SELECT 1 FROM {meta} WHERE 0 UNION ALL SELECT 1",
  [QS_COMMIT] = "COMMIT",
  [QS_ROLLBACK] = "ROLLBACK",
  [QS_SAVEPOINT] = "SAVEPOINT quota_call",
  [QS_RELEASE] = "RELEASE quota_call",
  [QS_ROLLBACK_TO] = "ROLLBACK TO quota_call",
  /* A write statement that changes nothing but opens a statement journal
  ** (it may write several rows and abort on the key's uniqueness), so
  ** that the database's journal holds a mark at the level of the statement
  ** the call runs in (quotaStoreTxnBegin). */
  [QS_STMT_MARK] = "UPDATE {meta} SET name=name WHERE 0",
  /* admission: token buckets, leases, the time holds were taken */
  [QS_RATE_GET] =
    "SELECT rate FROM {keyconf} WHERE id=?1",
  [QS_RATE_SET] =
    "INSERT INTO {keyconf}(id, rate) VALUES(?1, ?2)"
    " ON CONFLICT(id) DO UPDATE SET rate=excluded.rate",
  [QS_RATE_CLEAR] =
    "UPDATE {keyconf} SET rate=NULL WHERE id=?1",
  /* a key with every setting NULL has no row */
  [QS_KEYCONF_TIDY] =
    "DELETE FROM {keyconf} WHERE id=?1 AND rollover IS NULL AND alert IS NULL"
    " AND enforce IS NULL AND fired IS NULL AND rate IS NULL AND grants IS NULL",
  [QS_KEYCONF_DELETE] =
    "DELETE FROM {keyconf} WHERE id=?1",
  /* an extended hold leaves the ordered lane for the expiry index */
  [QS_HOLD_EXTEND] =
    "UPDATE {holds} SET expires=?2, lane=1 WHERE id=?1",
  [QS_EXPIRY_DELETE] =
    "DELETE FROM {expiry} WHERE expires=?1 AND hold_id=?2",
  /* a row only when the second differs from the newest row's */
  [QS_HOLDTIME_ADD] =
    "INSERT INTO {holdtime}(id, at) SELECT ?1, ?2"
    " WHERE ?2 IS NOT (SELECT at FROM {holdtime} ORDER BY id DESC LIMIT 1)",
  [QS_HOLDTIME_AT] =
    "SELECT at FROM {holdtime} WHERE id<=?1 ORDER BY id DESC LIMIT 1",
  /* operators: alert and enforce of a key (quota_keyconf), the outbox.
  ** A row exists only while some column of it is not NULL: QS_KEYCONF_TIDY
  ** removes it when the last one goes. */
  [QS_CONF_ANY] = "SELECT EXISTS(SELECT 1 FROM {keyconf})",
  [QS_CONF_GET] =
    "SELECT alert, enforce, fired, rollover, grants FROM {keyconf} WHERE id=?1",
  [QS_CONF_PUT] =
    "INSERT INTO {keyconf}(id, alert, enforce, fired) VALUES(?1, ?2, ?3, ?4)"
    " ON CONFLICT(id) DO UPDATE SET alert=excluded.alert,"
    " enforce=excluded.enforce, fired=excluded.fired",
  [QS_CONF_FIRED] =
    "UPDATE {keyconf} SET fired=?2 WHERE id=?1",
  [QS_EVENT_INSERT] =
    "INSERT INTO {events}(key, at, kind, detail, used, cap, period_start,"
    " ledger_id, hold_id)"
    " VALUES((SELECT key FROM {keys} WHERE id=?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
  /* credits: grants, what charges drew from them, a key's count of open
  ** grants (keyconf.grants: remaining > 0 and not voided; NULL for none) */
  [QS_GRANT_INSERT] =
    "INSERT INTO {grants}(key, amount, remaining, priority, created, expires,"
    " voided, request_id, meta)"
    " VALUES((SELECT key FROM {keys} WHERE id=?1), ?2, ?2, ?3, ?4, ?5, NULL, ?6, ?7)",
  [QS_GRANT_GET] =
    "SELECT g.remaining, g.expires, g.voided, k.id FROM {grants} AS g"
    " LEFT JOIN {keys} AS k ON k.key=g.key WHERE g.id=?1",
  [QS_GRANT_VOID] =
    "UPDATE {grants} SET voided=remaining, remaining=0 WHERE id=?1",
  /* the unused units of key ?1's live grants at time ?2 */
  [QS_GRANT_CREDITS] =
    "SELECT sum(remaining) FROM {grants}"
    " WHERE key=(SELECT key FROM {keys} WHERE id=?1) AND remaining>0"
    " AND voided IS NULL AND (expires IS NULL OR expires>?2)",
  /* what key ?1's open grants hold, expired or not (quotaStoreGrantsOpen) */
  [QS_GRANT_OPEN] =
    "SELECT sum(remaining) FROM {grants}"
    " WHERE key=(SELECT key FROM {keys} WHERE id=?1) AND remaining>0"
    " AND voided IS NULL",
  /* key ?1's live grants at time ?2 in the order charges draw from them */
  [QS_GRANT_LIVE] =
    "SELECT id, remaining FROM {grants}"
    " WHERE key=(SELECT key FROM {keys} WHERE id=?1) AND remaining>0"
    " AND voided IS NULL AND (expires IS NULL OR expires>?2)"
    " ORDER BY priority, expires IS NULL, expires, id",
  /* key ?1's open grants, expired or not (quotaStoreCredits holds them) */
  [QS_GRANT_HELD] =
    "SELECT id, remaining, priority, expires FROM {grants}"
    " WHERE key=(SELECT key FROM {keys} WHERE id=?1) AND remaining>0"
    " AND voided IS NULL",
  [QS_GRANT_DRAW] =
    "UPDATE {grants} SET remaining=remaining-?2 WHERE id=?1",
  [QS_DRAW_INSERT] =
    "INSERT INTO {draws}(ledger_id, grant_id, amount) VALUES(?1, ?2, ?3)",
  /* a deleted key's open grants stop counting for good */
  [QS_GRANT_VOID_KEY] =
    "UPDATE {grants} SET voided=remaining, remaining=0"
    " WHERE key=(SELECT key FROM {keys} WHERE id=?1) AND remaining>0"
    " AND voided IS NULL",
  [QS_GRANTS_COUNT] =
    "INSERT INTO {keyconf}(id, grants) VALUES(?1, nullif(?2, 0))"
    " ON CONFLICT(id) DO UPDATE SET grants=nullif(coalesce(grants, 0)+?2, 0)",
  [QS_ROLLOVER_SET] =
    "INSERT INTO {keyconf}(id, rollover) VALUES(?1, ?2)"
    " ON CONFLICT(id) DO UPDATE SET rollover=excluded.rollover",
};

/* The shadow tables' suffixes, of every schema version; 0 ends the list. */
static const char *const azShadow[] = {
  "keys", "notes", "holds", "expiry", "ledger", "requests", "window", "meta",
  "keyconf", "holdtime", "events", "grants", "draws", 0
};

/* True when zSuffix names a shadow table (xShadowName). */
int quotaStoreIsShadow(const char *zSuffix){
  int i;
  for(i=0; azShadow[i]; i++){
    if( sqlite3_stricmp(zSuffix, azShadow[i])==0 ) return 1;
  }
  return 0;
}

/* Expand "{x}" into the quoted name "schema"."table_x". */
static char *storeExpand(const char *zDb, const char *zName, const char *zSql){
  sqlite3_str *pStr = sqlite3_str_new(0);
  const char *z = zSql;
  while( *z ){
    const char *zOpen = strchr(z, '{');
    const char *zClose;
    if( zOpen==0 ){
      sqlite3_str_appendall(pStr, z);
      break;
    }
    zClose = strchr(zOpen, '}');
    sqlite3_str_append(pStr, z, (int)(zOpen-z));
    sqlite3_str_appendf(pStr, "\"%w\".\"%w_%.*w\"", zDb, zName,
        (int)(zClose-zOpen-1), zOpen+1);
    z = zClose+1;
  }
  return sqlite3_str_finish(pStr);
}

/* Run a template of ;-separated statements in one exec. */
static int storeExec(sqlite3 *db, const char *zDb, const char *zName,
                     const char *zSql){
  char *z = storeExpand(zDb, zName, zSql);
  int rc;
  if( z==0 ) return SQLITE_NOMEM;
  rc = sqlite3_exec(db, z, 0, 0, 0);
  sqlite3_free(z);
  return rc;
}

/* -------------------------------------------------------------- options */

const char *const quotaOptionName[QUOTA_OPT_COUNT] = {
  [QUOTA_OPT_HOLD_TTL]    = "hold_ttl",
  [QUOTA_OPT_IDEMPOTENCY] = "idempotency",
  [QUOTA_OPT_RETENTION]   = "retention",
  [QUOTA_OPT_PURGE_LIMIT] = "purge_limit",
  [QUOTA_OPT_CLOCK]       = "clock",
};

/* What an option accepts, for messages: "option X must be <this>". */
const char *quotaOptionExpect(int iOpt){
  switch( iOpt ){
    case QUOTA_OPT_RETENTION:   return "a duration or 'forever'";
    case QUOTA_OPT_PURGE_LIMIT: return "a positive number of rows";
    case QUOTA_OPT_CLOCK:       return "'system' or 'pinned'";
    default:                    return "a positive duration";
  }
}

/* Where option iOpt lives in pOpt. */
sqlite3_int64 *quotaOptionSlot(QuotaOptions *pOpt, int iOpt){
  switch( iOpt ){
    case QUOTA_OPT_HOLD_TTL:    return &pOpt->nHoldTtl;
    case QUOTA_OPT_IDEMPOTENCY: return &pOpt->nIdem;
    case QUOTA_OPT_RETENTION:   return &pOpt->nRetention;
    case QUOTA_OPT_PURGE_LIMIT: return &pOpt->nPurgeLimit;
    default:                    return &pOpt->bClockPinned;
  }
}

/* The options of a table created without any. */
void quotaStoreDefaultOptions(QuotaOptions *pOpt){
  pOpt->nHoldTtl = (sqlite3_int64)15*60;
  pOpt->nIdem = (sqlite3_int64)24*3600;
  pOpt->nRetention = -1;
  pOpt->nPurgeLimit = 10000;
  pOpt->bClockPinned = 0;
}

/*
** Read option iOpt's value from pVal (quota_configure) or, when pVal is
** NULL, from the text zVal (a CREATE VIRTUAL TABLE argument). Returns 0
** and sets *pOut to what quota_meta stores (seconds; retention -1 for
** 'forever'; clock 1 for 'pinned'), or 1 when the value is not accepted.
*/
int quotaOptionParse(int iOpt, sqlite3_value *pVal, const char *zVal,
                     sqlite3_int64 *pOut){
  int bText = pVal==0 || sqlite3_value_type(pVal)==SQLITE_TEXT;
  int nUnit = 1;
  if( pVal && bText ){
    zVal = (const char*)sqlite3_value_text(pVal);
    if( zVal==0 || (int)strlen(zVal)!=sqlite3_value_bytes(pVal) ) return 1;
  }
  if( iOpt==QUOTA_OPT_CLOCK ){
    if( !bText ) return 1;
    if( sqlite3_stricmp(zVal, "pinned")==0 ){ *pOut = 1; return 0; }
    if( sqlite3_stricmp(zVal, "system")==0 ){ *pOut = 0; return 0; }
    return 1;
  }
  if( iOpt==QUOTA_OPT_RETENTION && bText && sqlite3_stricmp(zVal, "forever")==0 ){
    *pOut = -1;
    return 0;
  }
  if( bText ){
    if( quotaParseDurationText(zVal, pOut, &nUnit) ) return 1;
    if( iOpt==QUOTA_OPT_PURGE_LIMIT
     && (nUnit!=1 || strspn(zVal, "0123456789")!=strlen(zVal)) ) return 1;
  }else if( quotaValueInt(pVal, pOut) ){
    return 1;
  }
  return iOpt==QUOTA_OPT_RETENTION ? *pOut<0 : *pOut<=0;
}

/*
** The options as quota_meta stores them, in one row: the text
** "hold_ttl=900 idempotency=86400 retention=-1 purge_limit=10000 clock=0"
** (seconds; retention -1 for forever; clock 1 for pinned). One row, so a
** call reads all of them with one look and sees a change by comparing
** texts; and text that any two nodes replaying the same statements write
** alike (no stamp, no randomness).
*/
static char *storeOptionsText(const QuotaOptions *pOpt){
  QuotaOptions o = *pOpt;
  sqlite3_str *pStr = sqlite3_str_new(0);
  int i;
  for(i=0; i<QUOTA_OPT_COUNT; i++){
    sqlite3_str_appendf(pStr, i ? " %s=%lld" : "%s=%lld", quotaOptionName[i],
                        *quotaOptionSlot(&o, i));
  }
  return sqlite3_str_finish(pStr);
}

/* Parse storeOptionsText's form, strictly: every option, in order, in
** range. 0 on success, 1 when zText is not that. */
static int storeOptionsParse(const char *zText, QuotaOptions *pOpt){
  const char *z = zText;
  int i;
  if( z==0 ) return 1;
  for(i=0; i<QUOTA_OPT_COUNT; i++){
    int n = (int)strlen(quotaOptionName[i]);
    sqlite3_int64 v = 0;
    int bNeg = 0, nDigit = 0;
    if( i>0 && *z++!=' ' ) return 1;
    if( strncmp(z, quotaOptionName[i], n)!=0 || z[n]!='=' ) return 1;
    z += n+1;
    if( *z=='-' ){ bNeg = 1; z++; }
    while( *z>='0' && *z<='9' ){
      if( v > (LARGEST_INT64 - (*z-'0'))/10 ) return 1;
      v = v*10 + (*z++ - '0');
      nDigit++;
    }
    if( nDigit==0 ) return 1;
    v = bNeg ? -v : v;
    if( i==QUOTA_OPT_RETENTION ? v<-1 : i==QUOTA_OPT_CLOCK ? (v!=0 && v!=1) : v<=0 ){
      return 1;
    }
    *quotaOptionSlot(pOpt, i) = v;
  }
  return *z!=0;
}

/* Take the options from their text, as read from quota_meta; the store
** keeps the text to notice the next change. */
static int storeOptionsSet(QuotaStore *p, const char *zText){
  QuotaOptions opt;
  char *zCopy;
  if( storeOptionsParse(zText, &opt) ) return SQLITE_CORRUPT_VTAB;
  zCopy = sqlite3_mprintf("%s", zText);
  if( zCopy==0 ) return SQLITE_NOMEM;
  sqlite3_free(p->zOptions);
  p->zOptions = zCopy;
  p->opt = opt;
  return SQLITE_OK;
}

/* Take the options from column iCol of pStmt's row (an allocation that
** fails while reading the text is not a damaged store). */
static int storeOptionsFromColumn(QuotaStore *p, sqlite3_stmt *pStmt, int iCol){
  const char *z = (const char*)sqlite3_column_text(pStmt, iCol);
  if( z==0 && sqlite3_column_type(pStmt, iCol)==SQLITE_TEXT ) return SQLITE_NOMEM;
  return storeOptionsSet(p, z);
}

/* Load the options from quota_meta (when a table is opened). */
static int storeOptionsLoad(QuotaStore *p){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_META_GET, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, "options", -1, SQLITE_STATIC);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    rc = storeOptionsFromColumn(p, pStmt, 0);
    sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
    if( rc==SQLITE_DONE ) rc = SQLITE_CORRUPT_VTAB;       /* no options row */
  }
  return rc;
}

/* -------------------------------------------------------- create, drop */

/*
** Tables of schema 4, created alike by a new store and by the upgrade from
** schema 3 (the definitions check compares their text from "("). A table
** of the application's in the way fails the upgrade, which then changes
** nothing.
**
** quota_keyconf holds the settings of a key that quota_keys has no column
** for; a key whose every setting here is NULL has no row.
*/
#define QUOTA_DEF_KEYCONF \
  "{keyconf}(" \
  "  id INTEGER PRIMARY KEY,"      /* quota_keys.id */ \
  "  rollover INTEGER,"            /* credits: NULL or units */ \
  "  alert TEXT,"                  /* operators: canonical threshold list, or NULL */ \
  "  enforce INTEGER,"             /* operators: NULL/0 hard, 1 shadow */ \
  "  fired INTEGER,"               /* operators: events already sent in the period */ \
  "  rate INTEGER,"                /* admission: N of 'rate N per ...', or NULL */ \
  "  grants INTEGER);"             /* credits: open grants (remaining > 0, not voided), or NULL */
/* quota_events: the outbox, the columns users read first, then the charge
** (ledger row) or hold that caused each event. */
#define QUOTA_DEF_EVENTS \
  "{events}(" \
  "  id INTEGER PRIMARY KEY, key TEXT NOT NULL, at INTEGER NOT NULL," \
  "  kind TEXT NOT NULL, detail TEXT, used INTEGER NOT NULL, cap INTEGER," \
  "  period_start INTEGER, ledger_id INTEGER, hold_id INTEGER);"
/* quota_holdtime: when holds were taken (quota_hold's "created") */
#define QUOTA_DEF_HOLDTIME \
  "{holdtime}(id INTEGER PRIMARY KEY, at INTEGER NOT NULL);"
/* quota_grants: one row per grant (credits); `key` is the key's name, as
** in the ledger. UNIQUE(key, id) is the index a charge reads a key's
** grants by. quota_draws: per charge (ledger row) and grant, the units
** drawn; keyed by grant for the integrity sums and purge. */
#define QUOTA_DEF_GRANTS \
  "{grants}(" \
  "  id INTEGER PRIMARY KEY, key TEXT NOT NULL, amount INTEGER NOT NULL," \
  "  remaining INTEGER NOT NULL, priority INTEGER NOT NULL," \
  "  created INTEGER NOT NULL, expires INTEGER, voided INTEGER," \
  "  request_id TEXT, meta TEXT, UNIQUE(key, id));"
#define QUOTA_DEF_DRAWS \
  "{draws}(" \
  "  ledger_id INTEGER NOT NULL, grant_id INTEGER NOT NULL," \
  "  amount INTEGER NOT NULL, PRIMARY KEY(grant_id, ledger_id)) WITHOUT ROWID;"
#define QUOTA_META_EVENTPOS \
  "INSERT OR IGNORE INTO {meta}(name, value) VALUES('eventpos', 0);"

/* The shadow tables as this build creates them (and the first rows). */
static const char zCreateSchema[] =
  "CREATE TABLE {keys}("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  key TEXT NOT NULL UNIQUE,"
  "  cap INTEGER, period TEXT, kind INTEGER NOT NULL, len INTEGER NOT NULL,"
  "  anchor INTEGER, parent INTEGER, retention INTEGER,"
  "  used INTEGER NOT NULL, reserved INTEGER NOT NULL,"
  "  pstart INTEGER NOT NULL, oldest INTEGER,"
  "  wtotal INTEGER NOT NULL DEFAULT 0,"
  "  UNIQUE(parent, id));"
  "CREATE TABLE {notes}(id INTEGER PRIMARY KEY, note);"
  "CREATE TABLE {holds}("
  "  id INTEGER PRIMARY KEY, key_id INTEGER NOT NULL,"
  "  amount INTEGER NOT NULL, expires INTEGER NOT NULL,"
  "  state INTEGER NOT NULL, charged INTEGER, ended INTEGER, request_id TEXT,"
  "  lane INTEGER NOT NULL, l0max INTEGER NOT NULL);"
  "CREATE TABLE {expiry}("
  "  expires INTEGER NOT NULL, hold_id INTEGER NOT NULL,"
  "  PRIMARY KEY(expires, hold_id)) WITHOUT ROWID;"
  "CREATE TABLE {ledger}("
  "  id INTEGER PRIMARY KEY, key TEXT NOT NULL, amount INTEGER NOT NULL,"
  "  at INTEGER NOT NULL, request_id TEXT, hold_id INTEGER, meta TEXT,"
  "  over INTEGER NOT NULL, late INTEGER NOT NULL);"
  "CREATE TABLE {requests}("
  "  id INTEGER PRIMARY KEY, key_id INTEGER NOT NULL, request_id TEXT NOT NULL,"
  "  op INTEGER NOT NULL, amount INTEGER NOT NULL, result INTEGER,"
  "  at INTEGER NOT NULL, UNIQUE(key_id, request_id));"
  "CREATE TABLE {window}("
  "  key_id INTEGER NOT NULL, sec INTEGER NOT NULL, amount INTEGER NOT NULL,"
  "  total INTEGER NOT NULL, PRIMARY KEY(key_id, sec)) WITHOUT ROWID;"
  "CREATE TABLE {meta}(name TEXT PRIMARY KEY, value) WITHOUT ROWID;"
  "INSERT INTO {meta}(name, value) VALUES"
  "  ('schema', " QUOTA_STR(QUOTA_SCHEMA_VERSION) "), ('swept', 0),"
  "  ('sweepid', 0), ('purgepos', 0);"
  "CREATE TABLE " QUOTA_DEF_KEYCONF
  "CREATE TABLE " QUOTA_DEF_HOLDTIME
  "CREATE TABLE " QUOTA_DEF_EVENTS
  "CREATE TABLE " QUOTA_DEF_GRANTS
  "CREATE TABLE " QUOTA_DEF_DRAWS
  QUOTA_META_EVENTPOS;

/*
** Definitions of shadow tables that older versions created and that an
** upgraded store keeps: 0.1.0's quota_keys, with the note column.
*/
static const struct { const char *zSuffix; const char *zBody; } aLegacyDef[] = {
  { "keys",
    "(  id INTEGER PRIMARY KEY AUTOINCREMENT,  key TEXT NOT NULL UNIQUE,"
    "  cap INTEGER, period TEXT, kind INTEGER NOT NULL, len INTEGER NOT NULL,"
    "  anchor INTEGER, parent INTEGER, retention INTEGER,"
    "  used INTEGER NOT NULL, reserved INTEGER NOT NULL,"
    "  pstart INTEGER NOT NULL, oldest INTEGER, note,"
    "  wtotal INTEGER NOT NULL DEFAULT 0,  UNIQUE(parent, id))" },
};

/*
** True when zSql (sqlite_schema.sql of shadow table zSuffix) defines the
** table as some version of sqlite-quota did: the text from its first "("
** is compared, so a renamed table (ALTER TABLE ... RENAME rewrites the
** name) still matches.
*/
static int storeDefinitionOk(const char *zSuffix, const char *zSql){
  const char *zBody = zSql ? strchr(zSql, '(') : 0;
  char zTag[32];
  const char *zDef;
  int i;
  if( zBody==0 ) return 0;
  sqlite3_snprintf(sizeof(zTag), zTag, "{%s}(", zSuffix);
  zDef = strstr(zCreateSchema, zTag);
  if( zDef ){
    const char *zOpen = zDef + strlen(zTag) - 1;
    size_t n = strcspn(zOpen, ";");
    if( strlen(zBody)==n && memcmp(zBody, zOpen, n)==0 ) return 1;
  }
  for(i=0; i<QUOTA_ARRAYSIZE(aLegacyDef); i++){
    if( strcmp(zSuffix, aLegacyDef[i].zSuffix)==0
     && strcmp(zBody, aLegacyDef[i].zBody)==0 ) return 1;
  }
  return 0;
}

/* xCreate: the shadow tables, with the first rows of quota_meta. */
int quotaStoreCreate(sqlite3 *db, const char *zDb, const char *zName,
                     const QuotaOptions *pOpt){
  char *zText = storeOptionsText(pOpt);
  sqlite3_str *pSql = sqlite3_str_new(0);
  char *zSql;
  int rc;
  sqlite3_str_appendall(pSql, zCreateSchema);
  sqlite3_str_appendf(pSql, "INSERT INTO {meta}(name, value) VALUES('options', %Q);",
                      zText);
  zSql = sqlite3_str_finish(pSql);
  rc = (zSql && zText) ? storeExec(db, zDb, zName, zSql) : SQLITE_NOMEM;
  sqlite3_free(zText);
  sqlite3_free(zSql);
  return rc;
}

/* Finalize every statement; they are prepared again on next use. */
static void storeFinalizeAll(QuotaStore *p){
  int i;
  for(i=0; i<QS_COUNT; i++){
    sqlite3_finalize(p->aStmt[i]);
    p->aStmt[i] = 0;
  }
  p->nSchemaSeen = 0;
  p->bSchemaScanned = 0;
}

/* Drop a reference; the last one finalizes the statements and frees. */
void quotaStoreUnref(QuotaStore *p){
  if( p==0 || --p->nRef>0 ) return;
  storeFinalizeAll(p);
  sqlite3_free(p->zForeign);
  sqlite3_free(p->zCallsQuota);
  sqlite3_free(p->zOptions);
  sqlite3_free(p->zDb);
  sqlite3_free(p->zName);
  sqlite3_free(p);
}

/* DROP TABLE: the shadow tables go. On failure the store stays usable. */
int quotaStoreDestroy(QuotaStore *p){
  int rc = SQLITE_OK;
  int i;
  storeFinalizeAll(p);          /* statements would keep the tables busy */
  for(i=0; rc==SQLITE_OK && azShadow[i]; i++){
    char *z = sqlite3_mprintf("DROP TABLE IF EXISTS \"%w\".\"%w_%s\"",
        p->zDb, p->zName, azShadow[i]);
    if( z==0 ) return SQLITE_NOMEM;
    rc = sqlite3_exec(p->db, z, 0, 0, 0);
    sqlite3_free(z);
  }
  return rc;
}

/* ALTER TABLE ... RENAME: the shadow tables follow the new name. */
int quotaStoreRename(QuotaStore *p, const char *zNew){
  int rc = SQLITE_OK;
  int i;
  char *zName;
  storeFinalizeAll(p);
  for(i=0; rc==SQLITE_OK && azShadow[i]; i++){
    char *z = sqlite3_mprintf("ALTER TABLE \"%w\".\"%w_%s\" RENAME TO \"%w_%s\"",
        p->zDb, p->zName, azShadow[i], zNew, azShadow[i]);
    if( z==0 ) return SQLITE_NOMEM;
    rc = sqlite3_exec(p->db, z, 0, 0, 0);
    sqlite3_free(z);
  }
  if( rc!=SQLITE_OK ) return rc;
  zName = sqlite3_mprintf("%s", zNew);
  if( zName==0 ) return SQLITE_NOMEM;
  sqlite3_free(p->zName);
  p->zName = zName;
  quotaStoreForget(p);
  return SQLITE_OK;
}

/* ----------------------------------------------------------- statements */

/* The prepared statement number iStmt, reset and with bindings cleared. */
int quotaStoreStmt(QuotaStore *p, int iStmt, sqlite3_stmt **ppStmt){
  sqlite3_stmt *pStmt = p->aStmt[iStmt];
  if( pStmt==0 ){
    char *zSql = storeExpand(p->zDb, p->zName, azStmtSql[iStmt]);
    int rc;
    if( zSql==0 ) return SQLITE_NOMEM;
    rc = sqlite3_prepare_v3(p->db, zSql, -1, SQLITE_PREPARE_PERSISTENT,
                            &pStmt, 0);
    sqlite3_free(zSql);
    if( rc!=SQLITE_OK ) return rc;
    p->aStmt[iStmt] = pStmt;
  }
  *ppStmt = pStmt;
  return SQLITE_OK;
}

/* Prepare an ad hoc statement from a template (not a hot path). */
int quotaStorePrepare(QuotaStore *p, const char *zTemplate, sqlite3_stmt **ppStmt){
  char *zSql = storeExpand(p->zDb, p->zName, zTemplate);
  int rc;
  *ppStmt = 0;
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(p->db, zSql, -1, ppStmt, 0);
  sqlite3_free(zSql);
  return rc;
}

/* Run statement iStmt with integer bindings; no rows expected. */
int quotaStoreRunInt(QuotaStore *p, int iStmt, int nArg, const sqlite3_int64 *aArg){
  sqlite3_stmt *pStmt;
  int i, rc = quotaStoreStmt(p, iStmt, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  for(i=0; i<nArg; i++) sqlite3_bind_int64(pStmt, i+1, aArg[i]);
  return quotaStepDone(pStmt);
}

/* Run statement iStmt with integer bindings; return the first column of the
** first row in *pVal (iDefault when no row or NULL). */
int quotaStoreQueryInt(QuotaStore *p, int iStmt, int nArg,
                       const sqlite3_int64 *aArg, sqlite3_int64 iDefault,
                       sqlite3_int64 *pVal){
  sqlite3_stmt *pStmt;
  int i, rc = quotaStoreStmt(p, iStmt, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  for(i=0; i<nArg; i++) sqlite3_bind_int64(pStmt, i+1, aArg[i]);
  *pVal = iDefault;
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    if( sqlite3_column_type(pStmt, 0)!=SQLITE_NULL ){
      *pVal = sqlite3_column_int64(pStmt, 0);
    }
    rc = sqlite3_reset(pStmt);
  }else if( rc==SQLITE_DONE ){
    rc = sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
  }
  return rc;
}

/* ----------------------------------------------------------------- meta */

int quotaStoreMetaGet(QuotaStore *p, const char *zName, sqlite3_int64 *pVal){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_META_GET, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    *pVal = sqlite3_column_int64(pStmt, 0);
    rc = sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
    if( rc==SQLITE_DONE ) rc = SQLITE_CORRUPT_VTAB;   /* meta row missing */
  }
  return rc;
}

/* Set the integer row zName of quota_meta. */
static int storeMetaSet(QuotaStore *p, const char *zName, sqlite3_int64 v){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_META_SET, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 2, v);
  return quotaStepDone(pStmt);
}

/* ------------------------------------------------ transactions and trust */

/* Drop everything remembered about the stored state (THE ONE RULE). */
void quotaStoreForget(QuotaStore *p){
  p->bKnown = 0;
  p->bTrusted = 0;
  p->bKeyCached = 0;
  p->bHoldTime = 0;
  p->bConfKnown = 0;
  p->heldKey = 0;
}

/* SQLITE_FCNTL_DATA_VERSION of the store's database: it moves with
** every commit, by any connection (THE ONE RULE). */
static unsigned int storeDataVersion(QuotaStore *p){
  unsigned int v = 0;
  sqlite3_file_control(p->db, p->zDb, SQLITE_FCNTL_DATA_VERSION, &v);
  return v;
}

/* Start a read transaction of the call's own: QS_READ_PIN, stepped to its
** row and left so until storeReadUnpin. */
static int storeReadPin(QuotaStore *p){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_READ_PIN, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ) return SQLITE_OK;
  sqlite3_reset(pStmt);
  return NEVER(rc==SQLITE_DONE) ? SQLITE_CORRUPT_VTAB : rc;
}

/* Reset QS_READ_PIN: SQLite ends the read transaction with the last
** active statement of the connection. */
static int storeReadUnpin(QuotaStore *p){
  return sqlite3_reset(p->aStmt[QS_READ_PIN]);
}

/*
** Join or open the transaction a call runs in, from what the caller has
** open (doc/transactions.md has the table):
**   - autocommit, no transaction open: BEGIN IMMEDIATE ... COMMIT of its
**     own. Taking the write lock first means busy_timeout applies, and
**     there is no read-to-write upgrade that could fail with
**     SQLITE_BUSY_SNAPSHOT. A read holds a read transaction of its own
**     with a statement stepped once and reset when the call ends
**     (QS_READ_PIN): SQLite keeps the snapshot while a statement is
**     active.
**   - autocommit with a write transaction open (the call is inside an
**     INSERT ... SELECT, or a trigger): no transaction statements; an error
**     fails the caller's statement, which takes everything back.
**   - inside the caller's BEGIN ... COMMIT: SAVEPOINT ... RELEASE, ROLLBACK
**     TO on failure, so a failed call leaves the caller's transaction as it
**     was. If the caller's transaction has not written yet, a no-op write
**     statement takes the write lock first (busy_timeout applies). When
**     SQLite refuses the savepoint (a writing statement is running), bare.
**   - autocommit with only a read transaction open (`SELECT quota_consume(k,
**     1) FROM t`): the write would be an upgrade that busy_timeout cannot
**     help and whose rows would commit one by one: refused with
**     SQLITE_BUSY, pTxn->bReading set (the caller words the message).
** Any schema counts: a statement writing only a TEMP table is a writing
** statement too. Every statement that ends a transaction is prepared
** before one is opened: after an allocation fails inside the call, SQLite
** refuses to prepare anything until the outer statement ends, and a
** transaction we could not close would hold its write lock and lose its
** work later.
*/
int quotaStoreTxnBegin(QuotaStore *p, int bWrite, QuotaTxn *pTxn){
  static const int aEnd[] = { QS_COMMIT, QS_ROLLBACK, QS_RELEASE, QS_ROLLBACK_TO };
  sqlite3 *db = p->db;
  sqlite3_stmt *pUnused;
  int i, rc = SQLITE_OK;
  memset(pTxn, 0, sizeof(*pTxn));
  for(i=0; rc==SQLITE_OK && i<QUOTA_ARRAYSIZE(aEnd); i++){
    rc = quotaStoreStmt(p, aEnd[i], &pUnused);
  }
  if( rc!=SQLITE_OK ) return rc;
  if( sqlite3_get_autocommit(db) ){
    int eTxn = sqlite3_txn_state(db, 0);
    pTxn->bClean = eTxn==SQLITE_TXN_NONE;
    if( eTxn==SQLITE_TXN_NONE ){
      if( bWrite ){
        rc = quotaStoreRunInt(p, QS_BEGIN, 0, 0);
        if( rc==SQLITE_OK ) pTxn->eMode = QUOTA_TXN_OWN;
      }else{
        /* The snapshot starts here, so that the data version is the
        ** snapshot's and what a committed call of ours left in memory can
        ** be trusted as for a writer. */
        rc = storeReadPin(p);
        if( rc==SQLITE_OK ) pTxn->eMode = QUOTA_TXN_READ_OWN;
      }
    }else if( !bWrite ){
      pTxn->eMode = QUOTA_TXN_READ_BARE;
    }else if( eTxn==SQLITE_TXN_WRITE ){
      pTxn->eMode = QUOTA_TXN_BARE;
    }else{
      pTxn->bReading = 1;
      rc = SQLITE_BUSY;
    }
  }else if( !bWrite ){
    pTxn->eMode = QUOTA_TXN_READ_BARE;
  }else{
    if( sqlite3_txn_state(db, p->zDb)!=SQLITE_TXN_WRITE ){
      rc = quotaStoreRunInt(p, QS_LOCK, 0, 0);
    }
    if( rc==SQLITE_OK ){
      rc = quotaStoreRunInt(p, QS_SAVEPOINT, 0, 0);
      if( rc==SQLITE_OK ){
        pTxn->eMode = QUOTA_TXN_SAVEPOINT;
      }else if( rc==SQLITE_BUSY ){
        /* "cannot open savepoint - SQL statements in progress": a writing
        ** statement of the caller runs; its failure takes our writes with
        ** it (doc/transactions.md). It rolls back to its own level of
        ** every database's journal, which for this database exists only
        ** from the first write there that opened a statement journal: a
        ** statement writing only TEMP tables opens none of its own, and
        ** would undo the calls of its rows from the middle of one of
        ** them. A mark taken before the first write of the call makes that
        ** level start here, so the statement's failure undoes every call
        ** of it, whole. */
        pTxn->eMode = QUOTA_TXN_BARE;
        rc = quotaStoreRunInt(p, QS_STMT_MARK, 0, 0);
      }
    }
  }
  /* Only a transaction of our own has started its read by now (BEGIN
  ** IMMEDIATE, or QS_READ_PIN), and so brought the data
  ** version up to date: in the caller's transaction another connection's
  ** commit could go unseen. */
  if( rc==SQLITE_OK
   && (pTxn->eMode==QUOTA_TXN_OWN || pTxn->eMode==QUOTA_TXN_READ_OWN)
   && p->bTrusted && storeDataVersion(p)==p->uDataVersion ){
    p->bKnown = 1;              /* nothing committed since our own commit */
  }else{
    quotaStoreForget(p);
  }
  return rc;
}

/*
** End a call's transaction successfully: COMMIT or RELEASE. A transaction
** of our own that committed what we know makes it trusted; anything else
** leaves nothing known (THE ONE RULE). On failure the caller captures the
** error, then calls quotaStoreTxnAbort.
*/
int quotaStoreTxnFinish(QuotaStore *p, QuotaTxn *pTxn){
  int rc = SQLITE_OK;
  switch( pTxn->eMode ){
    case QUOTA_TXN_OWN:
    case QUOTA_TXN_READ_OWN:
      rc = pTxn->eMode==QUOTA_TXN_OWN ? quotaStoreRunInt(p, QS_COMMIT, 0, 0)
                                      : storeReadUnpin(p);
      if( rc==SQLITE_OK && p->bKnown ){
        p->uDataVersion = storeDataVersion(p);
        p->bTrusted = 1;
        return SQLITE_OK;
      }
      break;
    case QUOTA_TXN_SAVEPOINT:
      rc = quotaStoreRunInt(p, QS_RELEASE, 0, 0);
      break;
    default:
      break;
  }
  quotaStoreForget(p);
  return rc;
}

/*
** End a call's transaction after a failure: whatever it wrote is undone
** (in the caller's transaction, only the call's part), and nothing is
** known any more. SQLite may have rolled back already (an I/O error, OOM):
** autocommit says.
*/
void quotaStoreTxnAbort(QuotaStore *p, QuotaTxn *pTxn){
  switch( pTxn->eMode ){
    case QUOTA_TXN_OWN:
      if( !sqlite3_get_autocommit(p->db) ) quotaStoreRunInt(p, QS_ROLLBACK, 0, 0);
      break;
    case QUOTA_TXN_READ_OWN:
      storeReadUnpin(p);
      break;
    case QUOTA_TXN_SAVEPOINT:
      quotaStoreRunInt(p, QS_ROLLBACK_TO, 0, 0);
      quotaStoreRunInt(p, QS_RELEASE, 0, 0);
      break;
    default:
      break;
  }
  quotaStoreForget(p);
}

/*
** Set p->zForeign when a shadow table is not defined as sqlite-quota
** defines it (a column with another collation, type or default, a CHECK
** added by hand): such a store would answer wrongly in ways no row check
** sees ('VICTIM' naming 'victim').
*/
static int storeCheckDefinitions(QuotaStore *p){
  sqlite3_stmt *pStmt = 0;
  char *zSql = sqlite3_mprintf("SELECT name, sql FROM \"%w\".sqlite_schema"
      " WHERE type='table' AND substr(name, 1, %d)=%Q||'_'", p->zDb,
      (int)strlen(p->zName)+1, p->zName);
  int rc, n = (int)strlen(p->zName);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(p->db, zSql, -1, &pStmt, 0);
  sqlite3_free(zSql);
  while( rc==SQLITE_OK && p->zForeign==0 && sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zName = (const char*)sqlite3_column_text(pStmt, 0);
    const char *zDef = (const char*)sqlite3_column_text(pStmt, 1);
    if( zName && zName[n]=='_' && quotaStoreIsShadow(&zName[n+1])
     && !storeDefinitionOk(&zName[n+1], zDef) ){
      p->zForeign = sqlite3_mprintf("table '%s' defined differently", zName);
      if( p->zForeign==0 ) rc = SQLITE_NOMEM;
    }
  }
  if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt); else sqlite3_finalize(pStmt);
  return rc;
}

/*
** Read the store's schema afresh: p->zForeign (a trigger, view or table
** definition on the shadow tables that sqlite-quota did not make) and
** p->zCallsQuota (an object of that schema calling quota functions).
*/
int quotaStoreScanSchema(QuotaStore *p){
  int rc;
  sqlite3_free(p->zForeign);
  sqlite3_free(p->zCallsQuota);
  p->zForeign = p->zCallsQuota = 0;
  rc = quotaSchemaScan(p->db, p->zDb, p->zName, quotaStoreIsShadow,
                       &p->zCallsQuota, &p->zForeign);
  if( rc==SQLITE_OK && p->zForeign==0 ) rc = storeCheckDefinitions(p);
  p->bSchemaScanned = rc==SQLITE_OK;
  return rc;
}

/*
** Make what the store remembers the truth of the running transaction:
** read the sweep state and the options' stamp when they are not known,
** load the options again when the stamp moved (quota_configure, or a
** table dropped and created again by another connection), and check the
** schema when it changed. SQLite prepares QS_STATE again whenever the
** store's schema changed since the last step (any DDL, by any connection
** or this one), so its count of re-preparations tells when to look.
*/
int quotaStoreRefresh(QuotaStore *p){
  sqlite3_stmt *pStmt;
  const char *zOptions;
  int rc, nPrep;
  if( p->bKnown ) return SQLITE_OK;
  rc = quotaStoreStmt(p, QS_STATE, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  rc = sqlite3_step(pStmt);
  if( rc!=SQLITE_ROW ){
    sqlite3_reset(pStmt);
    return NEVER(rc==SQLITE_DONE) ? SQLITE_CORRUPT_VTAB : rc;
  }
  p->iSwept = sqlite3_column_int64(pStmt, 0);
  p->iSweepId = sqlite3_column_int64(pStmt, 1);
  p->iL0Max = sqlite3_column_int64(pStmt, 2);       /* 0 when no hold yet */
  p->bConfAny = sqlite3_column_int(pStmt, 6);
  /* Values no sqlite-quota writes: a watermark outside the years it
  ** handles, an id at the end of the 64-bit range (SQLite would hand out
  ** random ids after it), a sweep position past the newest hold (tested
  ** last: the newest id + 1 must not overflow). */
  if( sqlite3_column_type(pStmt, 0)!=SQLITE_INTEGER
   || sqlite3_column_type(pStmt, 1)!=SQLITE_INTEGER
   || p->iSwept<QUOTA_TIME_MIN || p->iSwept>QUOTA_TIME_MAX
   || sqlite3_column_int64(pStmt, 4)==LARGEST_INT64
   || sqlite3_column_int64(pStmt, 5)==LARGEST_INT64
   || p->iSweepId<0 || p->iSweepId>sqlite3_column_int64(pStmt, 4)+1 ){
    sqlite3_reset(pStmt);
    return SQLITE_CORRUPT_VTAB;
  }
  /* the options changed (quota_configure, or the table was made again) */
  zOptions = (const char*)sqlite3_column_text(pStmt, 3);
  rc = SQLITE_OK;
  if( zOptions==0 || p->zOptions==0 || strcmp(zOptions, p->zOptions)!=0 ){
    rc = storeOptionsFromColumn(p, pStmt, 3);
    p->bOptionsBad = rc==SQLITE_CORRUPT_VTAB;
    if( p->bOptionsBad ) rc = SQLITE_OK;     /* writers refuse: CheckWrite */
  }
  if( rc==SQLITE_OK ) rc = sqlite3_reset(pStmt); else sqlite3_reset(pStmt);
  nPrep = sqlite3_stmt_status(pStmt, SQLITE_STMTSTATUS_REPREPARE, 0);
  if( rc==SQLITE_OK && (!p->bSchemaScanned || nPrep!=p->nSchemaSeen) ){
    rc = quotaStoreScanSchema(p);
    p->nSchemaSeen = nPrep;
  }
  if( rc==SQLITE_OK ){
    p->bKnown = 1;
    p->bKeyCached = 0;            /* a key row read before is not known */
    p->heldKey = 0;               /* nor are grants */
    p->bHoldTime = 0;
    p->bConfKnown = 1;            /* bConfAny, read above */
  }
  return rc;
}

/*
** Before a read of the table (a cursor) in whatever transaction the caller
** has: with bFresh, what is remembered counts only if it is the committed
** state and nothing was committed since, outside a transaction of the
** caller's (whose own writes, such as a hand-made change to a shadow table,
** move no data version); otherwise what the running read already learned
** counts.
*/
int quotaStoreReadState(QuotaStore *p, int bFresh){
  if( bFresh && !(sqlite3_get_autocommit(p->db) && p->bTrusted
                  && storeDataVersion(p)==p->uDataVersion) ){
    quotaStoreForget(p);
  }
  return quotaStoreRefresh(p);
}

/*
** For a call that writes the shadow tables, after quotaStoreRefresh:
** SQLITE_CORRUPT_VTAB when the stored options are not valid, SQLITE_ERROR
** with *pzErr set when a trigger or view on a shadow table would run
** inside the call.
*/
int quotaStoreCheckWrite(QuotaStore *p, char **pzErr){
  *pzErr = 0;
  if( p->bOptionsBad ) return SQLITE_CORRUPT_VTAB;
  if( p->zForeign==0 ) return SQLITE_OK;
  *pzErr = sqlite3_mprintf("the quota store has a %s, which sqlite-quota "
      "did not make, and will not be written with it: drop it or restore "
      "the table (a TEMP trigger of the application's is allowed)", p->zForeign);
  return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
}

/* quota_configure(option, value): store an option; every connection sees
** the new value at its next call (the options' text changed). */
int quotaStoreConfigure(QuotaStore *p, int iOpt, sqlite3_int64 v){
  QuotaOptions opt = p->opt;
  sqlite3_stmt *pStmt;
  char *zText;
  int rc;
  *quotaOptionSlot(&opt, iOpt) = v;
  zText = storeOptionsText(&opt);
  if( zText==0 ) return SQLITE_NOMEM;
  rc = quotaStoreStmt(p, QS_META_SET, &pStmt);
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, "options", -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 2, zText, -1, SQLITE_STATIC);
    rc = quotaStepDone(pStmt);
    sqlite3_clear_bindings(pStmt);
  }
  if( rc==SQLITE_OK ) rc = storeOptionsSet(p, zText);
  sqlite3_free(zText);
  return rc;
}

/* For quota_integrity: *pbValid is false when quota_meta holds no valid
** options text (reads it; remembers nothing). */
int quotaStoreOptionsCheck(QuotaStore *p, int *pbValid){
  sqlite3_stmt *pStmt;
  QuotaOptions opt;
  int rc = quotaStoreStmt(p, QS_META_GET, &pStmt);
  *pbValid = 0;
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, "options", -1, SQLITE_STATIC);
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    *pbValid = storeOptionsParse((const char*)sqlite3_column_text(pStmt, 0), &opt)==0;
  }
  return sqlite3_reset(pStmt);
}

/* ----------------------------------------------------------------- keys */

/*
** Fill *k from QS_KEY_BY_ID's eleven columns, starting at column iCol. A
** row whose stored values cannot have been written by this extension makes
** the store damaged: hand-edited shadow tables give an error, never a
** wrong grant. (What the kind and the window length may be is period.c's
** to say, quotaKeyCheck.)
*/
int quotaStoreKeyFromRow(sqlite3_stmt *pStmt, int iCol, QuotaKey *k){
  memset(k, 0, sizeof(*k));
  k->id = sqlite3_column_int64(pStmt, iCol);
  k->bCap = sqlite3_column_type(pStmt, iCol+1)!=SQLITE_NULL;
  k->cap = sqlite3_column_int64(pStmt, iCol+1);
  k->eKind = sqlite3_column_int(pStmt, iCol+2);
  k->nLen = sqlite3_column_int64(pStmt, iCol+3);
  k->bAnchor = sqlite3_column_type(pStmt, iCol+4)!=SQLITE_NULL;
  k->anchor = sqlite3_column_int64(pStmt, iCol+4);
  k->parentId = sqlite3_column_int64(pStmt, iCol+5);
  k->used = sqlite3_column_int64(pStmt, iCol+6);
  k->reserved = sqlite3_column_int64(pStmt, iCol+7);
  k->pstart = sqlite3_column_int64(pStmt, iCol+8);
  k->bOldest = sqlite3_column_type(pStmt, iCol+9)!=SQLITE_NULL;
  k->oldest = sqlite3_column_int64(pStmt, iCol+9);
  k->wtotal = sqlite3_column_int64(pStmt, iCol+10);
  if( k->used<0 || k->reserved<0 || (k->bCap && k->cap<0) || k->wtotal<0
   || (k->bAnchor && (k->anchor<QUOTA_TIME_MIN || k->anchor>QUOTA_TIME_MAX))
   || k->pstart<QUOTA_TIME_MIN-QUOTA_TIME_SLACK
   || k->pstart>QUOTA_TIME_MAX+QUOTA_TIME_SLACK
   || (k->bOldest && (k->oldest<QUOTA_TIME_MIN || k->oldest>QUOTA_TIME_MAX))
   || k->id<=0
   || (sqlite3_column_type(pStmt, iCol+5)!=SQLITE_NULL && k->parentId<=0)
   || sqlite3_column_type(pStmt, iCol+2)!=SQLITE_INTEGER
   || sqlite3_column_type(pStmt, iCol+6)!=SQLITE_INTEGER
   || sqlite3_column_type(pStmt, iCol+7)!=SQLITE_INTEGER
  ){
    return SQLITE_CORRUPT_VTAB;
  }
  return SQLITE_OK;
}

/* Step a key statement; *pFound says whether it had a row. */
static int storeLoadKey(sqlite3_stmt *pStmt, QuotaKey *k, int *pFound){
  int rc = sqlite3_step(pStmt);
  *pFound = 0;
  if( rc==SQLITE_ROW ){
    *pFound = 1;
    rc = quotaStoreKeyFromRow(pStmt, 0, k);
    if( rc==SQLITE_OK ){
      rc = sqlite3_reset(pStmt);
    }else{
      sqlite3_reset(pStmt);
    }
  }else if( rc==SQLITE_DONE ){
    rc = sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
  }
  return rc;
}

/*
** Load a key by name. The key cache: when the last key loaded by name is
** this one and what the store remembers is known (THE ONE RULE), the row
** in memory is the row on disk, and a connection that charges the same
** key again skips reading it.
*/
int quotaStoreKeyByName(QuotaStore *p, const char *zKey, QuotaKey *k, int *pFound){
  sqlite3_stmt *pStmt;
  int rc;
  if( p->bKnown && p->bKeyCached && strcmp(zKey, p->zKeyCache)==0 ){
    *k = p->keyCache;
    *pFound = 1;
    return SQLITE_OK;
  }
  rc = quotaStoreStmt(p, QS_KEY_BY_NAME, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
  rc = storeLoadKey(pStmt, k, pFound);
  sqlite3_clear_bindings(pStmt);   /* not a bind: it would clear the error */
  if( rc==SQLITE_OK && *pFound && p->bKnown ){
    size_t n = strlen(zKey);
    p->bKeyCached = n<sizeof(p->zKeyCache);
    if( p->bKeyCached ){
      memcpy(p->zKeyCache, zKey, n+1);
      p->keyCache = *k;
    }
  }
  return rc;
}

/* A key by id, as stored (never from the key cache). */
int quotaStoreKeyById(QuotaStore *p, sqlite3_int64 id, QuotaKey *k, int *pFound){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_KEY_BY_ID, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, id);
  return storeLoadKey(pStmt, k, pFound);
}

/* Write back what k->mDirty says changed; the key cache follows. */
int quotaStoreKeySave(QuotaStore *p, QuotaKey *k){
  sqlite3_stmt *pStmt;
  int rc;
  if( p->bKeyCached && p->keyCache.id==k->id ){
    /* also when nothing is written (a charge drawn from grants whole): the
    ** cache then keeps the settings and grants count the call read */
    p->keyCache = *k;
    p->keyCache.mDirty = 0;
    p->keyCache.bPeriod = 0;          /* as quotaStoreKeyFromRow leaves them */
    p->keyCache.pend = 0;
    p->keyCache.credits = 0;          /* a call's own (quotaStoreCredits) */
    p->keyCache.drawn = 0;
  }
  if( !k->mDirty ) return SQLITE_OK;
  rc = quotaStoreStmt(p, (k->mDirty & QUOTA_DIRTY_PERIOD) ? QS_KEY_SAVE
                                                          : QS_KEY_SAVE_COUNTS, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, k->id);
  sqlite3_bind_int64(pStmt, 2, k->used);
  sqlite3_bind_int64(pStmt, 3, k->reserved);
  if( k->mDirty & QUOTA_DIRTY_PERIOD ){
    sqlite3_bind_int64(pStmt, 4, k->pstart);
    if( k->bOldest ) sqlite3_bind_int64(pStmt, 5, k->oldest);
    else sqlite3_bind_null(pStmt, 5);
    sqlite3_bind_int64(pStmt, 6, k->wtotal);
  }
  k->mDirty = 0;
  return quotaStepDone(pStmt);
}

/* Bind a key's settings and counters to QS_KEY_INSERT / QS_KEY_UPDATE_ALL. */
static void storeBindKey(sqlite3_stmt *pStmt, const char *zPeriod,
                         sqlite3_int64 retention, int bRetention, const QuotaKey *k){
  if( k->bCap ) sqlite3_bind_int64(pStmt, 2, k->cap); else sqlite3_bind_null(pStmt, 2);
  if( zPeriod ) sqlite3_bind_text(pStmt, 3, zPeriod, -1, SQLITE_TRANSIENT);
  else sqlite3_bind_null(pStmt, 3);
  sqlite3_bind_int(pStmt, 4, k->eKind);
  sqlite3_bind_int64(pStmt, 5, k->nLen);
  if( k->bAnchor ) sqlite3_bind_int64(pStmt, 6, k->anchor); else sqlite3_bind_null(pStmt, 6);
  if( k->parentId ) sqlite3_bind_int64(pStmt, 7, k->parentId);
  else sqlite3_bind_null(pStmt, 7);
  if( bRetention ) sqlite3_bind_int64(pStmt, 8, retention); else sqlite3_bind_null(pStmt, 8);
  sqlite3_bind_int64(pStmt, 9, k->used);
  sqlite3_bind_int64(pStmt, 10, k->reserved);
  sqlite3_bind_int64(pStmt, 11, k->pstart);
  if( k->bOldest ) sqlite3_bind_int64(pStmt, 12, k->oldest); else sqlite3_bind_null(pStmt, 12);
  sqlite3_bind_int64(pStmt, 13, k->wtotal);
}

/* INSERT a key with the settings and counters of k. */
int quotaStoreKeyInsert(QuotaStore *p, const char *zKey, const char *zPeriod,
                        sqlite3_int64 retention, int bRetention,
                        const QuotaKey *k, sqlite3_int64 *pId){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_KEY_INSERT, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_TRANSIENT);
  storeBindKey(pStmt, zPeriod, retention, bRetention, k);
  rc = quotaStepDone(pStmt);
  sqlite3_clear_bindings(pStmt);
  if( rc==SQLITE_OK ) *pId = sqlite3_last_insert_rowid(p->db);
  return rc;
}

/* Rewrite every column of key k->id (the table's UPDATE). */
int quotaStoreKeyUpdate(QuotaStore *p, const char *zPeriod,
                        sqlite3_int64 retention, int bRetention, const QuotaKey *k){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_KEY_UPDATE_ALL, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, k->id);
  storeBindKey(pStmt, zPeriod, retention, bRetention, k);
  rc = quotaStepDone(pStmt);
  sqlite3_clear_bindings(pStmt);
  if( p->bKeyCached && p->keyCache.id==k->id ) p->bKeyCached = 0;
  return rc;
}

/* Step QS_KEY_ROW (key, period, retention) to key `id`; the caller resets
** *ppRow. */
int quotaStoreKeyRow(QuotaStore *p, sqlite3_int64 id, sqlite3_stmt **ppRow){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_KEY_ROW, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, id);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    *ppRow = pStmt;
    return SQLITE_OK;
  }
  sqlite3_reset(pStmt);
  return NEVER(rc==SQLITE_DONE) ? SQLITE_CORRUPT_VTAB : rc;
}

/* The name of key `id` (sqlite3_malloc'ed). */
int quotaStoreKeyName(QuotaStore *p, sqlite3_int64 id, char **pzKey){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_KEY_NAME, &pStmt);
  *pzKey = 0;
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, id);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    *pzKey = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 0));
    rc = sqlite3_reset(pStmt);
    if( ALWAYS(rc==SQLITE_OK) && *pzKey==0 ) rc = SQLITE_NOMEM;
  }else if( NEVER(rc==SQLITE_DONE) ){
    sqlite3_reset(pStmt);
    rc = SQLITE_CORRUPT_VTAB;
  }else{
    sqlite3_reset(pStmt);
  }
  return rc;
}

/* The name of the first key whose parent is `id`, or NULL when none. */
int quotaStoreKeyChild(QuotaStore *p, sqlite3_int64 id, char **pzChild){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_KEY_CHILD, &pStmt);
  *pzChild = 0;
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, id);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    *pzChild = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 0));
    rc = sqlite3_reset(pStmt);
    if( rc==SQLITE_OK && *pzChild==0 ) rc = SQLITE_NOMEM;
  }else if( rc==SQLITE_DONE ){
    rc = sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
  }
  return rc;
}

/* Remove a key and what only it uses; its ledger rows stay (the audit). */
int quotaStoreKeyDelete(QuotaStore *p, sqlite3_int64 id){
  int rc = quotaStoreRunInt(p, QS_WIN_DELETE_KEY, 1, &id);
  /* its grants are voided: a key made again under the name starts without
  ** them (the rows stay, for the audit) */
  if( rc==SQLITE_OK ) rc = quotaStoreRunInt(p, QS_GRANT_VOID_KEY, 1, &id);
  if( rc==SQLITE_OK ) rc = quotaStoreRunInt(p, QS_REQ_DELETE_KEY, 1, &id);
  if( rc==SQLITE_OK ) rc = quotaStoreRunInt(p, QS_NOTE_DELETE, 1, &id);
  if( rc==SQLITE_OK ) rc = quotaStoreRunInt(p, QS_KEYCONF_DELETE, 1, &id);
  if( rc==SQLITE_OK ) rc = quotaStoreRunInt(p, QS_KEY_DELETE, 1, &id);
  if( p->bKeyCached && p->keyCache.id==id ) p->bKeyCached = 0;
  if( p->heldKey==id ) p->heldKey = 0;
  return rc;
}

/* Levels in the deepest chain of descendants of key `id`, itself counted. */
int quotaStoreSubtreeDepth(QuotaStore *p, sqlite3_int64 id, int *pnDepth){
  sqlite3_stmt *pStmt = 0;
  int rc = quotaStorePrepare(p,
      "WITH RECURSIVE down(kid, depth) AS (SELECT ?1, 1"
      " UNION ALL SELECT k.id, down.depth+1 FROM down JOIN {keys} AS k"
      " ON k.parent=down.kid WHERE down.depth<=?2)"
      " SELECT max(depth) FROM down", &pStmt);
  if( rc==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, id);
    sqlite3_bind_int(pStmt, 2, QUOTA_MAX_DEPTH);
    if( sqlite3_step(pStmt)==SQLITE_ROW ) *pnDepth = sqlite3_column_int(pStmt, 0);
    rc = sqlite3_finalize(pStmt);
  }else{
    sqlite3_finalize(pStmt);
  }
  return rc;
}

/* Set the note of key `id`; a NULL note removes it. */
int quotaStoreNoteSave(QuotaStore *p, sqlite3_int64 id, sqlite3_value *pNote){
  sqlite3_stmt *pStmt;
  int rc;
  if( sqlite3_value_type(pNote)==SQLITE_NULL ){
    return quotaStoreRunInt(p, QS_NOTE_DELETE, 1, &id);
  }
  rc = quotaStoreStmt(p, QS_NOTE_PUT, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, id);
  sqlite3_bind_value(pStmt, 2, pNote);
  rc = quotaStepDone(pStmt);
  sqlite3_clear_bindings(pStmt);     /* the value may be freed after us */
  return rc;
}

/*
** Run statement iStmt with the one integer binding `arg`: *pVal and
** *pbFound from the first column of its first row when it is an integer
** in [lo, hi]; SQLITE_CORRUPT_VTAB when it is something else (a value
** sqlite-quota never writes); *pbFound 0 when there is no row or it is
** NULL.
*/
static int storeQueryChecked(QuotaStore *p, int iStmt, sqlite3_int64 arg,
                             sqlite3_int64 lo, sqlite3_int64 hi,
                             int *pbFound, sqlite3_int64 *pVal){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, iStmt, &pStmt);
  *pbFound = 0;
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, arg);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    int eType = sqlite3_column_type(pStmt, 0);
    *pVal = sqlite3_column_int64(pStmt, 0);
    if( eType==SQLITE_NULL ){
      rc = sqlite3_reset(pStmt);
    }else if( eType!=SQLITE_INTEGER || *pVal<lo || *pVal>hi ){
      sqlite3_reset(pStmt);
      rc = SQLITE_CORRUPT_VTAB;
    }else{
      *pbFound = 1;
      rc = sqlite3_reset(pStmt);
    }
  }else if( rc==SQLITE_DONE ){
    rc = sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
  }
  return rc;
}

/* The rate N of bucket `id` (quota_keyconf.rate), 0 when it has none. */
int quotaStoreRateGet(QuotaStore *p, sqlite3_int64 id, sqlite3_int64 *pRate){
  int bFound;
  int rc = storeQueryChecked(p, QS_RATE_GET, id, 1, LARGEST_INT64, &bFound, pRate);
  if( !bFound ) *pRate = 0;
  return rc;
}

/* Set the rate of key `id` (nRate>0), or clear it (0): a key whose
** settings in quota_keyconf are all NULL loses its row there. */
int quotaStoreRateSave(QuotaStore *p, sqlite3_int64 id, sqlite3_int64 nRate){
  sqlite3_int64 aArg[2];
  int rc;
  aArg[0] = id;
  aArg[1] = nRate;
  if( nRate>0 ) return quotaStoreRunInt(p, QS_RATE_SET, 2, aArg);
  rc = quotaStoreRunInt(p, QS_RATE_CLEAR, 1, aArg);
  if( rc==SQLITE_OK ) rc = quotaStoreRunInt(p, QS_KEYCONF_TIDY, 1, aArg);
  return rc;
}

/*
** A new statement over the keys for a cursor of the quota table: the
** columns of QS_KEY_BY_ID, then key, period, the parent's name, retention,
** note, alert, enforce, rollover and the count of open grants; all keys in rowid order, or the one named by
** pArg (bByKey) or with rowid pArg (bByRowid). Each cursor has its own:
** cursors nest.
*/
int quotaStoreScan(QuotaStore *p, int bByKey, int bByRowid, sqlite3_value *pArg,
                   sqlite3_stmt **ppStmt){
  char *zTemplate = sqlite3_mprintf(
      "SELECT k.id, k.cap, k.kind, k.len, k.anchor, k.parent, k.used,"
      " k.reserved, k.pstart, k.oldest, k.wtotal,"
      " k.key, k.period, p.key, k.retention, n.note"
      ", c.alert, c.enforce, c.rollover, c.grants"
      " FROM {keys} AS k LEFT JOIN {keys} AS p ON p.id=k.parent"
      " LEFT JOIN {notes} AS n ON n.id=k.id"
      " LEFT JOIN {keyconf} AS c ON c.id=k.id"
      " %s ORDER BY k.id",
      bByKey ? "WHERE k.key=?1" : bByRowid ? "WHERE k.id=?1" : "");
  int rc;
  if( zTemplate==0 ) return SQLITE_NOMEM;
  rc = quotaStorePrepare(p, zTemplate, ppStmt);
  sqlite3_free(zTemplate);
  if( rc==SQLITE_OK && (bByKey || bByRowid) ) sqlite3_bind_value(*ppStmt, 1, pArg);
  return rc;
}

/* ----------------------------------------------------------------- holds */

/* Make h->zKey a copy of the n bytes at z. */
static int storeHoldKeyName(QuotaHold *h, const char *z, size_t n){
  char *zCopy = h->zKeyBuf;
  if( n>=sizeof(h->zKeyBuf) ){
    zCopy = h->zKeyOwned = sqlite3_malloc64(n+1);
    if( zCopy==0 ) return SQLITE_NOMEM;
  }
  memcpy(zCopy, z, n);
  zCopy[n] = 0;
  h->zKey = zCopy;
  return SQLITE_OK;
}

/*
** Load hold `id`, and its key into *k when the key still exists (h->zKey
** is then its name; NULL when the key was deleted). A key in the key cache
** is not read again.
*/
int quotaStoreHoldGet(QuotaStore *p, sqlite3_int64 id, QuotaHold *h, QuotaKey *k,
                      int *pFound){
  sqlite3_stmt *pStmt;
  const int bKeyCache = p->bKnown && p->bKeyCached;
  int rc = quotaStoreStmt(p, QS_HOLD_GET, &pStmt);
  quotaStoreHoldClear(h);
  *pFound = 0;
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, id);
  sqlite3_bind_int64(pStmt, 2, bKeyCache ? p->keyCache.id : 0);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    *pFound = 1;
    h->keyId = sqlite3_column_int64(pStmt, 0);
    h->amount = sqlite3_column_int64(pStmt, 1);
    h->expires = sqlite3_column_int64(pStmt, 2);
    h->state = sqlite3_column_int(pStmt, 3);
    h->charged = sqlite3_column_int64(pStmt, 4);
    /* Copies: the ledger row of a settle needs both after the reset. */
    if( sqlite3_column_type(pStmt, 5)!=SQLITE_NULL ){
      h->pReq = sqlite3_value_dup(sqlite3_column_value(pStmt, 5));
      if( h->pReq==0 ) rc = SQLITE_NOMEM;
    }
    if( sqlite3_column_type(pStmt, 6)!=SQLITE_NULL ){
      const char *zKey = (const char*)sqlite3_column_text(pStmt, 6);
      if( zKey==0
       || storeHoldKeyName(h, zKey, (size_t)sqlite3_column_bytes(pStmt, 6)) ){
        rc = SQLITE_NOMEM;
      }else if( quotaStoreKeyFromRow(pStmt, 7, k)!=SQLITE_OK ){
        rc = SQLITE_CORRUPT_VTAB;
      }
    }else if( bKeyCache && h->keyId==p->keyCache.id ){
      *k = p->keyCache;
      /* cannot fail: a cached name fits zKeyBuf (both QUOTA_KEY_NAME_BUF) */
      (void)storeHoldKeyName(h, p->zKeyCache, strlen(p->zKeyCache));
    }
    if( h->amount<0 || h->state<HOLD_LIVE || h->state>HOLD_ORPHANED
     || (h->state==HOLD_SETTLED
         && (sqlite3_column_type(pStmt, 4)!=SQLITE_INTEGER || h->charged<0)) ){
      rc = SQLITE_CORRUPT_VTAB;
    }
    if( rc==SQLITE_ROW ) rc = sqlite3_reset(pStmt); else sqlite3_reset(pStmt);
  }else if( rc==SQLITE_DONE ){
    rc = sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
  }
  return rc;
}

/* Free what quotaStoreHoldGet copied into h. */
void quotaStoreHoldClear(QuotaHold *h){
  sqlite3_value_free(h->pReq);
  sqlite3_free(h->zKeyOwned);
  memset(h, 0, sizeof(*h));
}

/*
** Insert a live hold. bDefaultTtl says the ttl is the table's default: such
** a hold joins the ordered lane unless that would break its order (see
** quotaStoreExpiredHolds). The sweep state must be known.
*/
int quotaStoreHoldInsert(QuotaStore *p, sqlite3_int64 keyId, sqlite3_int64 amount,
                         sqlite3_int64 now, sqlite3_int64 expires, int bDefaultTtl,
                         const char *zReq, sqlite3_int64 *pId){
  sqlite3_stmt *pStmt;
  int bLane0 = bDefaultTtl && expires>=p->iL0Max;
  int rc = quotaStoreStmt(p, QS_HOLD_INSERT, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, keyId);
  sqlite3_bind_int64(pStmt, 2, amount);
  sqlite3_bind_int64(pStmt, 3, expires);
  if( zReq ) sqlite3_bind_text(pStmt, 4, zReq, -1, SQLITE_STATIC);
  else sqlite3_bind_null(pStmt, 4);
  sqlite3_bind_int(pStmt, 5, bLane0 ? 0 : 1);
  sqlite3_bind_int64(pStmt, 6, bLane0 ? expires : p->iL0Max);
  rc = quotaStepDone(pStmt);
  sqlite3_clear_bindings(pStmt);   /* not a bind: it would clear the error */
  if( rc!=SQLITE_OK ) return rc;
  *pId = sqlite3_last_insert_rowid(p->db);
  if( bLane0 ){
    p->iL0Max = expires;
  }else{
    sqlite3_int64 aArg[2];
    aArg[0] = expires;
    aArg[1] = *pId;
    rc = quotaStoreRunInt(p, QS_EXPIRY_INSERT, 2, aArg);
  }
  /* The time it was taken: a row of quota_holdtime only when this second
  ** is not the newest row's, which a busy store remembers. */
  if( rc==SQLITE_OK && !(p->bHoldTime && p->iHoldTime==now) ){
    sqlite3_int64 aArg[2];
    aArg[0] = *pId;
    aArg[1] = now;
    rc = quotaStoreRunInt(p, QS_HOLDTIME_ADD, 2, aArg);
    if( rc==SQLITE_OK && ALWAYS(p->bKnown) ){    /* every call refreshes */
      p->bHoldTime = 1;
      p->iHoldTime = now;
    }
  }
  return rc;
}

/*
** A live hold now expires at newExpires (quota_extend). It leaves the
** ordered lane, whose order by id a new expiry would break, for the expiry
** index: its row there, if it had one, moves to the new time. The sweep
** state must be known and swept to the call's time (newExpires is after
** it).
*/
int quotaStoreHoldExtend(QuotaStore *p, sqlite3_int64 id, sqlite3_int64 oldExpires,
                         sqlite3_int64 newExpires){
  sqlite3_int64 aArg[2];
  int rc;
  aArg[0] = oldExpires;
  aArg[1] = id;
  rc = quotaStoreRunInt(p, QS_EXPIRY_DELETE, 2, aArg);
  if( rc==SQLITE_OK ){
    aArg[0] = id;
    aArg[1] = newExpires;
    rc = quotaStoreRunInt(p, QS_HOLD_EXTEND, 2, aArg);
  }
  if( rc==SQLITE_OK ){
    aArg[0] = newExpires;
    aArg[1] = id;
    rc = quotaStoreRunInt(p, QS_EXPIRY_INSERT, 2, aArg);
  }
  return rc;
}

/* When hold `id` was taken: *pbKnown is false for a hold taken before the
** store had quota_holdtime (schema 3 and older). */
int quotaStoreHoldCreated(QuotaStore *p, sqlite3_int64 id, int *pbKnown,
                          sqlite3_int64 *pCreated){
  return storeQueryChecked(p, QS_HOLDTIME_AT, id, QUOTA_TIME_MIN, QUOTA_TIME_MAX,
                           pbKnown, pCreated);
}

/* End a hold: ended/charged of -1 store NULL. */
int quotaStoreHoldEnd(QuotaStore *p, sqlite3_int64 id, int state,
                      sqlite3_int64 ended, sqlite3_int64 charged){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_HOLD_END, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, id);
  sqlite3_bind_int(pStmt, 2, state);
  if( ended>=0 ) sqlite3_bind_int64(pStmt, 3, ended); else sqlite3_bind_null(pStmt, 3);
  if( charged>=0 ) sqlite3_bind_int64(pStmt, 4, charged); else sqlite3_bind_null(pStmt, 4);
  return quotaStepDone(pStmt);
}

/* Append an (id, key_id, amount) triple to a growing array. */
static int storeAppendHold(sqlite3_int64 **pa, int *pn, int *pnAlloc,
                           sqlite3_int64 id, sqlite3_int64 keyId,
                           sqlite3_int64 amount){
  if( *pn>=*pnAlloc ){
    int nNew = *pnAlloc ? *pnAlloc*2 : 16;
    sqlite3_int64 *aNew = sqlite3_realloc64(*pa, sizeof(sqlite3_int64)*3*nNew);
    if( aNew==0 ) return SQLITE_NOMEM;
    *pa = aNew;
    *pnAlloc = nNew;
  }
  (*pa)[(size_t)*pn*3] = id;
  (*pa)[(size_t)*pn*3+1] = keyId;
  (*pa)[(size_t)*pn*3+2] = amount;
  (*pn)++;
  return SQLITE_OK;
}

/* The live holds of key `keyId`, as (id, key_id, amount) triples in *paHold
** (free with sqlite3_free). */
int quotaStoreLiveHolds(QuotaStore *p, sqlite3_int64 keyId,
                        sqlite3_int64 **paHold, int *pnHold){
  sqlite3_stmt *pStmt;
  int nAlloc = 0;
  int rc = quotaStoreStmt(p, QS_HOLDS_OF_KEY, &pStmt);
  *paHold = 0;
  *pnHold = 0;
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, keyId);
  while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
    sqlite3_int64 amount = sqlite3_column_int64(pStmt, 1);
    if( amount<0 ){ rc = SQLITE_CORRUPT_VTAB; break; }   /* hand-edited */
    rc = storeAppendHold(paHold, pnHold, &nAlloc, sqlite3_column_int64(pStmt, 0),
                         keyId, amount);
    if( rc!=SQLITE_OK ) break;
  }
  if( rc==SQLITE_DONE ) rc = sqlite3_reset(pStmt); else sqlite3_reset(pStmt);
  return rc;
}

/*
** Collect the live holds whose ttl has run out by `now` and that no sweep
** has expired yet, as (id, key_id, amount) triples in *paHold (free with
** sqlite3_free). *pNextId gets where the ordered lane's next scan starts.
** The sweep state must be known.
**
** HOW HOLDS ARE FOUND WITHOUT AN INDEX
**   A hold taken with the table's default ttl goes to the ordered lane
**   (lane 0) when its expiry is not before any earlier lane-0 hold's: every
**   hold row carries l0max, the largest lane-0 expiry so far, so the test is
**   one read of the newest row. Lane 0 is thus in expiry order by id, and
**   the expired ones are a prefix that a scan from `sweepid` reads once.
**   Any other hold (its own ttl, or a clock that moved back, or a lease
**   quota_extend moved) goes to lane 1 and gets a row in %_expiry, keyed by
**   expiry; the scan of lane 0 steps over such rows once. A reserve
**   therefore writes one page for its hold, and ending a hold touches no
**   index at all.
*/
int quotaStoreExpiredHolds(QuotaStore *p, sqlite3_int64 now,
                           sqlite3_int64 **paHold, int *pnHold,
                           sqlite3_int64 *pNextId){
  sqlite3_stmt *pStmt;
  int nAlloc = 0, rc;
  sqlite3_int64 nextId = p->iSweepId;
  *paHold = 0;
  *pnHold = 0;
  rc = quotaStoreStmt(p, QS_LANE0_SCAN, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, p->iSweepId);
  while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
    sqlite3_int64 id = sqlite3_column_int64(pStmt, 0);
    if( id==LARGEST_INT64 || sqlite3_column_int64(pStmt, 2)<0 ){
      rc = SQLITE_CORRUPT_VTAB;            /* never written by sqlite-quota */
      break;
    }
    if( sqlite3_column_int(pStmt, 5)!=0 ){
      if( sqlite3_column_int64(pStmt, 5)!=1 ){ rc = SQLITE_CORRUPT_VTAB; break; }
      /* lane 1, found through %_expiry: the scan may start after it (else a
      ** store of many holds with their own ttls, or of leases, which
      ** quota_extend moves here, would read them all again every second) */
      nextId = id+1;
      continue;
    }
    if( sqlite3_column_int64(pStmt, 4)>now ){ nextId = id; break; }
    nextId = id+1;
    if( sqlite3_column_int(pStmt, 3)==HOLD_LIVE ){
      rc = storeAppendHold(paHold, pnHold, &nAlloc, id,
          sqlite3_column_int64(pStmt, 1), sqlite3_column_int64(pStmt, 2));
      if( rc!=SQLITE_OK ) break;
    }
  }
  if( rc==SQLITE_ROW || rc==SQLITE_DONE ) rc = sqlite3_reset(pStmt);
  else sqlite3_reset(pStmt);
  if( rc==SQLITE_OK ) rc = quotaStoreStmt(p, QS_LANE1_SCAN, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, now);
  while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
    if( sqlite3_column_int64(pStmt, 2)<0 ){ rc = SQLITE_CORRUPT_VTAB; break; }
    if( sqlite3_column_int(pStmt, 3)==HOLD_LIVE ){
      rc = storeAppendHold(paHold, pnHold, &nAlloc, sqlite3_column_int64(pStmt, 0),
          sqlite3_column_int64(pStmt, 1), sqlite3_column_int64(pStmt, 2));
      if( rc!=SQLITE_OK ) break;
    }
  }
  if( rc==SQLITE_DONE ) rc = sqlite3_reset(pStmt); else sqlite3_reset(pStmt);
  *pNextId = nextId;
  return rc;
}

/* Move the sweep watermark to `now` and the lane scan to nextId; the lane-1
** index rows up to `now` are done with. */
int quotaStoreSweepSave(QuotaStore *p, sqlite3_int64 now, sqlite3_int64 nextId){
  sqlite3_stmt *pStmt;
  int rc = SQLITE_OK;
  if( now>p->iSwept ) rc = quotaStoreRunInt(p, QS_LANE1_DELETE, 1, &now);
  if( rc==SQLITE_OK ) rc = quotaStoreStmt(p, QS_SWEEP_SAVE, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, now);
  sqlite3_bind_int64(pStmt, 2, nextId);
  rc = quotaStepDone(pStmt);
  if( rc==SQLITE_OK ){
    p->iSwept = now;
    p->iSweepId = nextId;
  }
  return rc;
}

/* -------------------------------------------------------------- requests */

int quotaStoreRequestGet(QuotaStore *p, sqlite3_int64 keyId, const char *zReq,
                         sqlite3_int64 now, QuotaRequest *r){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_REQ_GET, &pStmt);
  memset(r, 0, sizeof(*r));
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, keyId);
  sqlite3_bind_text(pStmt, 2, zReq, -1, SQLITE_STATIC);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    sqlite3_int64 at = sqlite3_column_int64(pStmt, 3);
    /* Remembered while younger than the window; a clock behind `at` (a
    ** pinned clock moved back) still remembers it. */
    if( quotaSubSat(now, at) < p->opt.nIdem ){
      r->bFound = 1;
      r->op = sqlite3_column_int(pStmt, 0);
      r->amount = sqlite3_column_int64(pStmt, 1);
      r->bResultNull = sqlite3_column_type(pStmt, 2)==SQLITE_NULL;
      r->result = sqlite3_column_int64(pStmt, 2);
    }
    rc = sqlite3_reset(pStmt);
  }else if( rc==SQLITE_DONE ){
    rc = sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
  }
  sqlite3_clear_bindings(pStmt);   /* not a bind: it would clear the error */
  return rc;
}

/* Remember request id zReq of key keyId with its operation and result. */
int quotaStoreRequestPut(QuotaStore *p, sqlite3_int64 keyId, const char *zReq,
                         int op, sqlite3_int64 amount, sqlite3_int64 result,
                         sqlite3_int64 now){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_REQ_PUT, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, keyId);
  sqlite3_bind_text(pStmt, 2, zReq, -1, SQLITE_STATIC);
  sqlite3_bind_int(pStmt, 3, op);
  sqlite3_bind_int64(pStmt, 4, amount);
  sqlite3_bind_int64(pStmt, 5, result);
  sqlite3_bind_int64(pStmt, 6, now);
  rc = quotaStepDone(pStmt);
  sqlite3_clear_bindings(pStmt);   /* not a bind: it would clear the error */
  return rc;
}

/* ----------------------------------------------------------------- ledger */

int quotaStoreLedgerInsert(QuotaStore *p, const char *zKey, sqlite3_int64 amount,
    sqlite3_int64 at, const char *zReq, sqlite3_int64 holdId,
    sqlite3_value *pMeta, int bOver, int bLate, sqlite3_int64 *pId){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_LEDGER_INSERT, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 2, amount);
  sqlite3_bind_int64(pStmt, 3, at);
  if( zReq ) sqlite3_bind_text(pStmt, 4, zReq, -1, SQLITE_STATIC);
  else sqlite3_bind_null(pStmt, 4);
  if( holdId ) sqlite3_bind_int64(pStmt, 5, holdId); else sqlite3_bind_null(pStmt, 5);
  if( pMeta ) sqlite3_bind_value(pStmt, 6, pMeta); else sqlite3_bind_null(pStmt, 6);
  sqlite3_bind_int(pStmt, 7, bOver);
  sqlite3_bind_int(pStmt, 8, bLate);
  rc = quotaStepDone(pStmt);
  sqlite3_clear_bindings(pStmt);
  if( rc==SQLITE_OK ) *pId = sqlite3_last_insert_rowid(p->db);
  return rc;
}

/* ------------------------------------------------- key settings, events */

/*
** Read key k's row of quota_keyconf into k's alert and enforcement fields
** (all 0 when it has none) and set k->bConf. While quota_keyconf has no
** row at all (known under THE ONE RULE), nothing is read: keys without
** such settings cost nothing. A row whose values sqlite-quota never
** writes is SQLITE_CORRUPT_VTAB.
*/
int quotaStoreConfLoad(QuotaStore *p, QuotaKey *k){
  sqlite3_stmt *pStmt;
  int rc = SQLITE_OK;
  k->bShadow = 0;
  k->bFired = 0;
  k->fired = 0;
  k->nAlert = 0;
  k->nGrants = 0;
  k->bRollover = 0;
  k->rollover = 0;
  if( !p->bKnown || !p->bConfKnown ){
    sqlite3_int64 any = 1;
    rc = quotaStoreQueryInt(p, QS_CONF_ANY, 0, 0, 1, &any);
    if( rc!=SQLITE_OK ) return rc;
    p->bConfAny = any!=0;
    p->bConfKnown = p->bKnown;
  }
  if( p->bConfAny ){
    rc = quotaStoreStmt(p, QS_CONF_GET, &pStmt);
    if( rc!=SQLITE_OK ) return rc;
    sqlite3_bind_int64(pStmt, 1, k->id);
    rc = sqlite3_step(pStmt);
    if( rc==SQLITE_ROW ){
      int tAlert = sqlite3_column_type(pStmt, 0);
      int tEnforce = sqlite3_column_type(pStmt, 1);
      int tFired = sqlite3_column_type(pStmt, 2);
      int tRollover = sqlite3_column_type(pStmt, 3);
      int tGrants = sqlite3_column_type(pStmt, 4);
      sqlite3_int64 enforce = sqlite3_column_int64(pStmt, 1);
      char zCanon[QUOTA_ALERT_TEXT];
      rc = SQLITE_OK;
      if( tAlert!=SQLITE_NULL ){
        const char *z = (const char*)sqlite3_column_text(pStmt, 0);
        if( z==0 ){
          rc = SQLITE_NOMEM;
        }else if( tAlert!=SQLITE_TEXT
               || quotaParseAlert(z, k->aAlert, &k->nAlert, zCanon)
               || strcmp(z, zCanon)!=0 ){
          rc = SQLITE_CORRUPT_VTAB;
        }
      }
      if( (tEnforce!=SQLITE_NULL
           && (tEnforce!=SQLITE_INTEGER || enforce<0 || enforce>1))
       || (tFired!=SQLITE_NULL && tFired!=SQLITE_INTEGER) ){
        rc = SQLITE_CORRUPT_VTAB;
      }
      k->bShadow = enforce==1;
      k->bFired = tFired!=SQLITE_NULL;
      k->fired = sqlite3_column_int64(pStmt, 2);
      k->bRollover = tRollover!=SQLITE_NULL;
      k->rollover = sqlite3_column_int64(pStmt, 3);
      k->nGrants = sqlite3_column_int64(pStmt, 4);
      if( (k->bRollover && (tRollover!=SQLITE_INTEGER || k->rollover<0))
       || (tGrants!=SQLITE_NULL && (tGrants!=SQLITE_INTEGER || k->nGrants<=0)) ){
        rc = SQLITE_CORRUPT_VTAB;
      }
      if( rc==SQLITE_OK ) rc = sqlite3_reset(pStmt); else sqlite3_reset(pStmt);
    }else if( rc==SQLITE_DONE ){
      rc = sqlite3_reset(pStmt);
    }else{
      sqlite3_reset(pStmt);
    }
  }
  if( rc==SQLITE_OK ) k->bConf = 1;
  return rc;
}

/*
** Store key `id`'s alert (canonical text or NULL), enforcement and fired
** state; a row left with every column NULL is removed.
*/
int quotaStoreConfPut(QuotaStore *p, sqlite3_int64 id, const char *zAlert,
                      int bShadow, int bFired, sqlite3_int64 fired){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_CONF_PUT, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, id);
  if( zAlert ) sqlite3_bind_text(pStmt, 2, zAlert, -1, SQLITE_TRANSIENT);
  else sqlite3_bind_null(pStmt, 2);
  if( bShadow ) sqlite3_bind_int(pStmt, 3, 1); else sqlite3_bind_null(pStmt, 3);
  if( bFired ) sqlite3_bind_int64(pStmt, 4, fired); else sqlite3_bind_null(pStmt, 4);
  rc = quotaStepDone(pStmt);
  sqlite3_clear_bindings(pStmt);
  if( rc==SQLITE_OK ) rc = quotaStoreRunInt(p, QS_KEYCONF_TIDY, 1, &id);
  if( p->bKeyCached && p->keyCache.id==id ) p->bKeyCached = 0;
  p->bConfKnown = 0;
  return rc;
}

/* Store k->fired (the key has a row: it has an alert or is a shadow key);
** the key cache follows. */
int quotaStoreConfFired(QuotaStore *p, QuotaKey *k){
  sqlite3_int64 aArg[2];
  aArg[0] = k->id;
  aArg[1] = k->fired;
  if( p->bKeyCached && p->keyCache.id==k->id ){
    p->keyCache.bFired = k->bFired;
    p->keyCache.fired = k->fired;
  }
  return quotaStoreRunInt(p, QS_CONF_FIRED, 2, aArg);
}

/* Append an event to quota_events, for key `keyId` (its name is read in
** the same statement). */
int quotaStoreEventInsert(QuotaStore *p, sqlite3_int64 keyId, sqlite3_int64 at,
    const char *zKind, const char *zDetail, sqlite3_int64 used, int bCap,
    sqlite3_int64 cap, int bPeriod, sqlite3_int64 pstart,
    sqlite3_int64 ledgerId, sqlite3_int64 holdId){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_EVENT_INSERT, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, keyId);
  sqlite3_bind_int64(pStmt, 2, at);
  sqlite3_bind_text(pStmt, 3, zKind, -1, SQLITE_STATIC);
  if( zDetail ) sqlite3_bind_text(pStmt, 4, zDetail, -1, SQLITE_TRANSIENT);
  else sqlite3_bind_null(pStmt, 4);
  sqlite3_bind_int64(pStmt, 5, used);
  if( bCap ) sqlite3_bind_int64(pStmt, 6, cap); else sqlite3_bind_null(pStmt, 6);
  if( bPeriod ) sqlite3_bind_int64(pStmt, 7, pstart); else sqlite3_bind_null(pStmt, 7);
  if( ledgerId ) sqlite3_bind_int64(pStmt, 8, ledgerId); else sqlite3_bind_null(pStmt, 8);
  if( holdId ) sqlite3_bind_int64(pStmt, 9, holdId); else sqlite3_bind_null(pStmt, 9);
  rc = quotaStepDone(pStmt);
  sqlite3_clear_bindings(pStmt);
  return rc;
}

/* --------------------------------------------------------------- credits */

/*
** Add `delta` to key k's count of open grants (quota_keyconf.grants), in
** the store, in k, and in the key cache. A key whose count goes to 0 keeps
** no row for it.
*/
int quotaStoreGrantsCount(QuotaStore *p, QuotaKey *k, sqlite3_int64 delta){
  sqlite3_int64 aArg[2];
  int rc;
  aArg[0] = k->id;
  aArg[1] = delta;
  rc = quotaStoreRunInt(p, QS_GRANTS_COUNT, 2, aArg);
  if( rc==SQLITE_OK && k->nGrants+delta<=0 ){
    rc = quotaStoreRunInt(p, QS_KEYCONF_TIDY, 1, aArg);
  }
  k->nGrants += delta;
  if( k->nGrants<0 ) k->nGrants = 0;
  if( p->bKeyCached && p->keyCache.id==k->id ) p->keyCache.nGrants = k->nGrants;
  /* the table has a row now: keys read their settings again */
  if( delta>0 ) p->bConfAny = 1;
  return rc;
}

/*
** A new grant of `amount` units to key k, counted in its open grants.
** zMeta, when pMeta is NULL, is the meta text (a rollover's). *pId gets
** the grant id.
*/
int quotaStoreGrantInsert(QuotaStore *p, QuotaKey *k, sqlite3_int64 amount,
    sqlite3_int64 priority, sqlite3_int64 now, int bExpires,
    sqlite3_int64 expires, const char *zReq, sqlite3_value *pMeta,
    const char *zMeta, sqlite3_int64 *pId){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_GRANT_INSERT, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, k->id);
  sqlite3_bind_int64(pStmt, 2, amount);
  sqlite3_bind_int64(pStmt, 3, priority);
  sqlite3_bind_int64(pStmt, 4, now);
  if( bExpires ) sqlite3_bind_int64(pStmt, 5, expires);
  else sqlite3_bind_null(pStmt, 5);
  if( zReq ) sqlite3_bind_text(pStmt, 6, zReq, -1, SQLITE_STATIC);
  else sqlite3_bind_null(pStmt, 6);
  if( pMeta ) sqlite3_bind_value(pStmt, 7, pMeta);
  else if( zMeta ) sqlite3_bind_text(pStmt, 7, zMeta, -1, SQLITE_STATIC);
  else sqlite3_bind_null(pStmt, 7);
  rc = quotaStepDone(pStmt);
  sqlite3_clear_bindings(pStmt);   /* not a bind: it would clear the error */
  p->heldKey = 0;
  if( rc==SQLITE_OK ) *pId = sqlite3_last_insert_rowid(p->db);
  if( rc==SQLITE_OK ) rc = quotaStoreGrantsCount(p, k, 1);
  return rc;
}

/*
** Grant `id` as quota_void needs it: what is left, its expiry, whether it
** was voided, and its key's id (0 when the key is gone). A value
** sqlite-quota never writes is SQLITE_CORRUPT_VTAB.
*/
int quotaStoreGrantGet(QuotaStore *p, sqlite3_int64 id, int *pFound,
    sqlite3_int64 *pRemaining, int *pbExpires, sqlite3_int64 *pExpires,
    int *pbVoided, sqlite3_int64 *pKeyId){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_GRANT_GET, &pStmt);
  *pFound = 0;
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, id);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    *pFound = 1;
    *pRemaining = sqlite3_column_int64(pStmt, 0);
    *pbExpires = sqlite3_column_type(pStmt, 1)!=SQLITE_NULL;
    *pExpires = sqlite3_column_int64(pStmt, 1);
    *pbVoided = sqlite3_column_type(pStmt, 2)!=SQLITE_NULL;
    *pKeyId = sqlite3_column_int64(pStmt, 3);
    if( sqlite3_column_type(pStmt, 0)!=SQLITE_INTEGER || *pRemaining<0 ){
      sqlite3_reset(pStmt);
      return SQLITE_CORRUPT_VTAB;
    }
    rc = sqlite3_reset(pStmt);
  }else if( rc==SQLITE_DONE ){
    rc = sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
  }
  return rc;
}

/* Void grant `id`: what was left is recorded as voided and stops counting. */
int quotaStoreGrantVoid(QuotaStore *p, sqlite3_int64 id){
  p->heldKey = 0;
  return quotaStoreRunInt(p, QS_GRANT_VOID, 1, &id);
}

/* True when held grant a comes before b in the draw order: priority, the
** soonest expiry, never-expiring last, the oldest (QS_GRANT_LIVE's). */
static int storeDrawsBefore(const QuotaHeldGrant *a, const QuotaHeldGrant *b){
  if( a->priority!=b->priority ) return a->priority<b->priority;
  if( a->bExpires!=b->bExpires ) return a->bExpires;
  if( a->bExpires && a->expires!=b->expires ) return a->expires<b->expires;
  return a->id<b->id;
}

/*
** Hold key k's open grants in draw order (p->aHeld), when they are at most
** QUOTA_GRANTS_HELD; with more, nothing is held. A value sqlite-quota
** never writes is SQLITE_CORRUPT_VTAB.
*/
static int storeGrantsHold(QuotaStore *p, const QuotaKey *k){
  sqlite3_stmt *pStmt;
  int n = 0, rc = quotaStoreStmt(p, QS_GRANT_HELD, &pStmt);
  p->heldKey = 0;
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, k->id);
  while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
    QuotaHeldGrant g;
    int tExpires = sqlite3_column_type(pStmt, 3), i;
    g.id = sqlite3_column_int64(pStmt, 0);
    g.remaining = sqlite3_column_int64(pStmt, 1);
    g.priority = sqlite3_column_int64(pStmt, 2);
    g.bExpires = tExpires!=SQLITE_NULL;
    g.expires = sqlite3_column_int64(pStmt, 3);
    if( sqlite3_column_type(pStmt, 1)!=SQLITE_INTEGER || g.remaining<=0
     || sqlite3_column_type(pStmt, 2)!=SQLITE_INTEGER
     || (g.bExpires && tExpires!=SQLITE_INTEGER) ){
      sqlite3_reset(pStmt);
      return SQLITE_CORRUPT_VTAB;
    }
    if( n==QUOTA_GRANTS_HELD ){ n = -1; break; }     /* too many: none */
    for(i=n; i>0 && storeDrawsBefore(&g, &p->aHeld[i-1]); i--){
      p->aHeld[i] = p->aHeld[i-1];
    }
    p->aHeld[i] = g;
    n++;
  }
  if( rc==SQLITE_ROW || rc==SQLITE_DONE ){
    rc = sqlite3_reset(pStmt);
  }else{
    sqlite3_reset(pStmt);
  }
  if( rc==SQLITE_OK && n>=0 ){
    p->heldKey = k->id;
    p->nHeld = n;
  }
  return rc;
}

/*
** k->credits: the unused units of key k's live grants at `now`. A key with
** no open grant reads nothing (its count came with its settings); one with
** few reads them once and holds them (storeGrantsHold) while the store is
** known.
*/
int quotaStoreCredits(QuotaStore *p, QuotaKey *k, sqlite3_int64 now){
  sqlite3_int64 aArg[2], sum = 0;
  int rc = SQLITE_OK;
  if( k->nGrants>0 ){
    if( p->heldKey!=k->id && k->nGrants<=QUOTA_GRANTS_HELD ){
      rc = storeGrantsHold(p, k);
    }
    if( rc==SQLITE_OK && p->heldKey==k->id ){
      int i;
      for(i=0; i<p->nHeld; i++){
        const QuotaHeldGrant *g = &p->aHeld[i];
        if( g->bExpires && g->expires<=now ) continue;
        /* only a hand-edited store overflows (as sum() would, below) */
        if( sum>LARGEST_INT64-g->remaining ) return SQLITE_CORRUPT_VTAB;
        sum += g->remaining;
      }
    }else if( rc==SQLITE_OK ){
      aArg[0] = k->id;
      aArg[1] = now;
      /* sum() of values that only a hand-edited store makes overflow
      ** raises an error, which is then the call's */
      rc = quotaStoreQueryInt(p, QS_GRANT_CREDITS, 2, aArg, 0, &sum);
      if( rc==SQLITE_ERROR ) rc = SQLITE_CORRUPT_VTAB;
    }
  }
  k->credits = quotaAddSat(k->credits, sum);
  return rc;
}

/* Take k->drawn units from the held grants of key k (storeDrawHeld's
** caller checked they are k's), as quotaStoreDraw does; *pnUsedUp counts
** the grants it used up, which leave the held ones. */
static int storeDrawHeld(QuotaStore *p, QuotaKey *k, sqlite3_int64 ledgerId,
                         sqlite3_int64 now, sqlite3_int64 *pnUsedUp){
  sqlite3_int64 left = k->drawn;
  int i, nKept = 0, rc = SQLITE_OK;
  for(i=0; i<p->nHeld; i++){
    QuotaHeldGrant *g = &p->aHeld[i];
    if( rc==SQLITE_OK && left>0 && !(g->bExpires && g->expires<=now) ){
      sqlite3_int64 aDraw[3];
      aDraw[0] = ledgerId;
      aDraw[1] = g->id;
      aDraw[2] = g->remaining<left ? g->remaining : left;
      rc = quotaStoreRunInt(p, QS_GRANT_DRAW, 2, &aDraw[1]);
      if( rc==SQLITE_OK ) rc = quotaStoreRunInt(p, QS_DRAW_INSERT, 3, aDraw);
      left -= aDraw[2];
      g->remaining -= aDraw[2];
    }
    if( g->remaining>0 ) p->aHeld[nKept++] = *g; else (*pnUsedUp)++;
  }
  p->nHeld = nKept;
  if( rc==SQLITE_OK && left>0 ) rc = SQLITE_CORRUPT_VTAB;    /* credits gone */
  return rc;
}

/*
** *pOpen: the units key k's open grants still hold, expired or not. A new
** grant (quota_grant, a rollover) must keep this within 64 bits, so that
** the credits of a key, a part of it, never overflow: a sum that does is
** a store sqlite-quota did not write.
*/
int quotaStoreGrantsOpen(QuotaStore *p, const QuotaKey *k, sqlite3_int64 *pOpen){
  int rc;
  *pOpen = 0;
  if( k->nGrants<=0 ) return SQLITE_OK;
  rc = quotaStoreQueryInt(p, QS_GRANT_OPEN, 1, &k->id, 0, pOpen);
  if( rc==SQLITE_ERROR ) rc = SQLITE_CORRUPT_VTAB;     /* sum() overflowed */
  return rc;
}

/*
** Take k->drawn units from key k's live grants at `now`, in draw order
** (priority, soonest expiry, never-expiring last, id), writing one
** quota_draws row per grant for ledger row `ledgerId`; a grant used up
** leaves the key's count of open grants.
*/
int quotaStoreDraw(QuotaStore *p, QuotaKey *k, sqlite3_int64 ledgerId,
                   sqlite3_int64 now){
  sqlite3_int64 aLive[2], aTake[16*2];
  sqlite3_int64 left = k->drawn, nUsedUp = 0;
  int rc = SQLITE_OK;
  if( p->heldKey==k->id ){
    rc = storeDrawHeld(p, k, ledgerId, now, &nUsedUp);
    left = 0;
  }
  /* A charge reads a few grants at a time (it cannot write them while its
  ** statement is open); a charge drawing from more than 16 reads again. */
  while( rc==SQLITE_OK && left>0 ){
    sqlite3_stmt *pStmt;
    int n = 0, i;
    rc = quotaStoreStmt(p, QS_GRANT_LIVE, &pStmt);
    if( rc!=SQLITE_OK ) break;
    aLive[0] = k->id;
    aLive[1] = now;
    sqlite3_bind_int64(pStmt, 1, aLive[0]);
    sqlite3_bind_int64(pStmt, 2, aLive[1]);
    while( n<16 && left>0 && (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
      sqlite3_int64 rem = sqlite3_column_int64(pStmt, 1);
      sqlite3_int64 take = rem<left ? rem : left;
      aTake[n*2] = sqlite3_column_int64(pStmt, 0);
      aTake[n*2+1] = take;
      left -= take;
      if( take==rem ) nUsedUp++;
      n++;
      rc = SQLITE_OK;
    }
    if( rc==SQLITE_ROW || rc==SQLITE_DONE || rc==SQLITE_OK ){
      rc = sqlite3_reset(pStmt);
    }else{
      sqlite3_reset(pStmt);
    }
    if( rc==SQLITE_OK && n==0 ) rc = SQLITE_CORRUPT_VTAB;  /* credits gone */
    for(i=0; rc==SQLITE_OK && i<n; i++){
      sqlite3_int64 aDraw[3];
      rc = quotaStoreRunInt(p, QS_GRANT_DRAW, 2, &aTake[i*2]);
      aDraw[0] = ledgerId;
      aDraw[1] = aTake[i*2];
      aDraw[2] = aTake[i*2+1];
      if( rc==SQLITE_OK ) rc = quotaStoreRunInt(p, QS_DRAW_INSERT, 3, aDraw);
    }
  }
  if( rc==SQLITE_OK && nUsedUp>0 ) rc = quotaStoreGrantsCount(p, k, -nUsedUp);
  k->drawn = 0;
  return rc;
}

/* Set (bSet) or clear key `id`'s rollover. */
int quotaStoreRolloverSave(QuotaStore *p, sqlite3_int64 id, int bSet,
                           sqlite3_int64 rollover){
  sqlite3_stmt *pStmt;
  int rc = quotaStoreStmt(p, QS_ROLLOVER_SET, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, id);
  if( bSet ) sqlite3_bind_int64(pStmt, 2, rollover); else sqlite3_bind_null(pStmt, 2);
  rc = quotaStepDone(pStmt);
  if( rc==SQLITE_OK ) rc = quotaStoreRunInt(p, QS_KEYCONF_TIDY, 1, &id);
  if( p->bKeyCached && p->keyCache.id==id ) p->bKeyCached = 0;
  p->bConfKnown = 0;
  return rc;
}

/* ----------------------------------------------------------------- purge */

/* Delete what zTemplate selects (?1 = cutoff, ?2 = limit); add the count. */
static int storePurgeSimple(QuotaStore *p, const char *zTemplate,
                            sqlite3_int64 cutoff, sqlite3_int64 *pn){
  sqlite3_stmt *pStmt = 0;
  int rc = quotaStorePrepare(p, zTemplate, &pStmt);
  if( rc==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, cutoff);
    sqlite3_bind_int64(pStmt, 2, p->opt.nPurgeLimit);
    rc = sqlite3_step(pStmt);
    if( rc==SQLITE_DONE ){
      rc = SQLITE_OK;
      *pn += sqlite3_changes(p->db);
    }
  }
  sqlite3_finalize(pStmt);
  return rc;
}

/*
** Remove the rows of shadow table zTable (the ledger or the events: an id,
** the key's name in `key`, the time in `at`) that are at least their key's
** retention old: the table's default for keys without one, and for keys
** that no longer exist. At most nPurgeLimit rows are examined, from the
** cursor kept in quota_meta row zCursor; at the end of the table the cursor
** starts over. The newest row is never removed, so no id is given out
** twice (a poller of quota_events reading `WHERE id > ?` relies on it).
*/
static int storePurgeAged(QuotaStore *p, const char *zTable, const char *zCursor,
                          sqlite3_int64 now, sqlite3_int64 *pn){
  sqlite3_int64 cursor = 0, maxId = 0, last = 0, nSeen = 0;
  sqlite3_stmt *pScan = 0, *pDel = 0, *pMax = 0;
  char *zMax = sqlite3_mprintf("SELECT max(id) FROM {%s}", zTable);
  char *zScan = sqlite3_mprintf("SELECT l.id, l.at, k.retention FROM {%s} AS l"
      " LEFT JOIN {keys} AS k ON k.key=l.key"
      " WHERE l.id>?1 ORDER BY l.id LIMIT ?2", zTable);
  char *zDel = sqlite3_mprintf("DELETE FROM {%s} WHERE id=?1", zTable);
  int rc = (zMax && zScan && zDel) ? SQLITE_OK : SQLITE_NOMEM;
  if( rc==SQLITE_OK ) rc = quotaStoreMetaGet(p, zCursor, &cursor);
  if( rc==SQLITE_OK ) rc = quotaStorePrepare(p, zMax, &pMax);
  if( rc==SQLITE_OK ){
    if( sqlite3_step(pMax)==SQLITE_ROW ) maxId = sqlite3_column_int64(pMax, 0);
    rc = sqlite3_finalize(pMax);
  }
  if( rc==SQLITE_OK ) rc = quotaStorePrepare(p, zScan, &pScan);
  if( rc==SQLITE_OK ) rc = quotaStorePrepare(p, zDel, &pDel);
  if( rc==SQLITE_OK ){
    sqlite3_int64 *aDel = 0;
    int nDel = 0, nAlloc = 0, i;
    sqlite3_bind_int64(pScan, 1, cursor);
    sqlite3_bind_int64(pScan, 2, p->opt.nPurgeLimit);
    while( (rc = sqlite3_step(pScan))==SQLITE_ROW ){
      sqlite3_int64 id = sqlite3_column_int64(pScan, 0);
      sqlite3_int64 at = sqlite3_column_int64(pScan, 1);
      sqlite3_int64 keep = sqlite3_column_type(pScan, 2)==SQLITE_NULL
                         ? p->opt.nRetention : sqlite3_column_int64(pScan, 2);
      last = id;
      nSeen++;
      if( keep<0 || id>=maxId || quotaSubSat(now, at) < keep ) continue;
      if( nDel>=nAlloc ){
        sqlite3_int64 *aNew;
        nAlloc = nAlloc ? nAlloc*2 : 64;
        aNew = sqlite3_realloc64(aDel, sizeof(sqlite3_int64)*nAlloc);
        if( aNew==0 ){ rc = SQLITE_NOMEM; break; }
        aDel = aNew;
      }
      aDel[nDel++] = id;
    }
    if( rc==SQLITE_DONE ) rc = SQLITE_OK;
    sqlite3_reset(pScan);
    for(i=0; rc==SQLITE_OK && i<nDel; i++){
      sqlite3_bind_int64(pDel, 1, aDel[i]);
      rc = quotaStepDone(pDel);
      (*pn)++;
    }
    sqlite3_free(aDel);
    if( rc==SQLITE_OK ){
      rc = storeMetaSet(p, zCursor, nSeen<p->opt.nPurgeLimit ? 0 : last);
    }
  }
  sqlite3_finalize(pScan);
  sqlite3_finalize(pDel);
  sqlite3_free(zMax);
  sqlite3_free(zScan);
  sqlite3_free(zDel);
  return rc;
}

/*
** quota_purge(): one bounded step of cleaning. Examines at most
** nPurgeLimit rows of each of quota_requests, quota_holds, quota_ledger
** and quota_events:
**   - request ids at least the idempotency window old;
**   - holds that ended (or expired) at least the idempotency window ago;
**   - ledger rows and events at least their key's retention old (the
**     table's default for keys without one, and for keys that no longer
**     exist; storePurgeAged).
** Requests and holds are scanned oldest first, the ledger and the events
** from a cursor each (see storePurgeAged). Rows of quota_holdtime that no
** hold left needs go too.
*/
int quotaStorePurge(QuotaStore *p, sqlite3_int64 now, sqlite3_int64 *pnRemoved){
  sqlite3_int64 n = 0;
  int rc;
  rc = storePurgeSimple(p,
      "DELETE FROM {requests} WHERE id IN"
      " (SELECT id FROM {requests} ORDER BY id LIMIT ?2) AND at<=?1",
      quotaSubSat(now, p->opt.nIdem), &n);
  if( rc==SQLITE_OK ) rc = storePurgeSimple(p,
      "DELETE FROM {holds} WHERE id IN"
      " (SELECT id FROM {holds} WHERE id<(SELECT max(id) FROM {holds})"
      "  AND state<>0 ORDER BY id LIMIT ?2) AND coalesce(ended, expires)<=?1",
      quotaSubSat(now, p->opt.nIdem), &n);
  if( rc==SQLITE_OK ){
    /* quota_holdtime: rows before the one that dates the oldest hold left
    ** (internal rows, not counted; the statement has no parameters) */
    sqlite3_int64 nInternal = 0;
    rc = storePurgeSimple(p,
        "DELETE FROM {holdtime} WHERE id<(SELECT max(t.id) FROM {holdtime} AS t"
        " WHERE t.id<=(SELECT min(id) FROM {holds}))", 0, &nInternal);
  }
  if( rc==SQLITE_OK ) rc = storePurgeAged(p, "ledger", "purgepos", now, &n);
  if( rc==SQLITE_OK ) rc = storePurgeAged(p, "events", "eventpos", now, &n);
  if( rc==SQLITE_OK ){
    /* Credits: a grant that ended (used up, voided, expired), once its
    ** key's retention has passed since it ended (its expiry; one used up
    ** or voided before it: since it was made) and every ledger row it was
    ** drawn for is purged, goes with its draws (internal rows, not
    ** counted). A draw stays while its grant does, so that a grant's
    ** amount always adds up. */
    static const char zEligible[] =
        " SELECT g.id FROM {grants} AS g LEFT JOIN {keys} AS k ON k.key=g.key"
        " WHERE g.id<(SELECT max(id) FROM {grants})"
        " AND (g.remaining=0 OR g.voided IS NOT NULL OR g.expires<=?1)"
        " AND coalesce(k.retention, ?3)>=0"
        " AND CASE WHEN g.expires<=?1 THEN g.expires ELSE g.created END"
        "   <= ?1 - coalesce(k.retention, ?3)"
        " AND NOT EXISTS(SELECT 1 FROM {draws} AS d JOIN {ledger} AS l"
        "   ON l.id=d.ledger_id WHERE d.grant_id=g.id)"
        " ORDER BY g.id LIMIT ?2)";
    /* An expired grant with units left is still counted among its key's
    ** open grants (quota_keyconf.grants): it leaves the count as it goes. */
    static const char *const azPurge[] = {
      "UPDATE {keyconf} SET grants=nullif(grants-(SELECT count(*)"
      " FROM {grants} AS o JOIN {keys} AS ok ON ok.key=o.key"
      " WHERE ok.id={keyconf}.id AND o.remaining>0 AND o.voided IS NULL"
      " AND o.id IN (%s), 0) WHERE grants IS NOT NULL",
      "DELETE FROM {draws} WHERE grant_id IN (%s",
      "DELETE FROM {grants} WHERE id IN (%s",
    };
    int i;
    for(i=0; rc==SQLITE_OK && i<QUOTA_ARRAYSIZE(azPurge); i++){
      sqlite3_stmt *pStmt = 0;
      char *zSql = sqlite3_mprintf(azPurge[i], zEligible);
      rc = zSql ? quotaStorePrepare(p, zSql, &pStmt) : SQLITE_NOMEM;
      sqlite3_free(zSql);
      if( rc==SQLITE_OK ){
        sqlite3_bind_int64(pStmt, 1, now);
        sqlite3_bind_int64(pStmt, 2, p->opt.nPurgeLimit);
        sqlite3_bind_int64(pStmt, 3, p->opt.nRetention);
        rc = sqlite3_step(pStmt);
        if( rc==SQLITE_DONE ){
          rc = SQLITE_OK;
          if( i==2 ) n += sqlite3_changes(p->db);
        }
      }
      sqlite3_finalize(pStmt);
    }
    if( rc==SQLITE_OK ){
      static const char zTidy[] =
          "DELETE FROM {keyconf} WHERE rollover IS NULL AND alert IS NULL"
          " AND enforce IS NULL AND fired IS NULL AND rate IS NULL"
          " AND grants IS NULL";
      sqlite3_stmt *pStmt = 0;
      rc = quotaStorePrepare(p, zTidy, &pStmt);
      if( rc==SQLITE_OK ) rc = quotaStepDone(pStmt);
      sqlite3_finalize(pStmt);
    }
    /* the counts of keys changed: keys read their settings again */
    p->bKeyCached = 0;
    p->bConfKnown = 0;
    p->heldKey = 0;
  }
  *pnRemoved = n;
  return rc;
}

/* --------------------------------------------------- opening, upgrades */

/*
** azUpgrade[v-1] takes a store from schema v to v+1. A step only creates
** tables and moves rows: it runs while the connection may be preparing a
** statement that already refers to the store's tables (the upgrade runs in
** xConnect), and creating a table leaves those references valid where
** dropping or altering one would not. "%Q" in a step stands for the text
** of the options (storeOptionsText).
*/
static const char *const azUpgrade[QUOTA_SCHEMA_VERSION-1] = {
  /* 1 -> 2: notes leave the key row, which every call rewrites */
  "CREATE TABLE {notes}(id INTEGER PRIMARY KEY, note);"
  "INSERT INTO {notes}(id, note)"
  "  SELECT id, note FROM {keys} WHERE note IS NOT NULL;"
  "UPDATE {keys} SET note=NULL WHERE note IS NOT NULL;",
  /* 2 -> 3: the options move into the store, from the arguments of the
  ** CREATE VIRTUAL TABLE statement that the upgrading connection read */
  "INSERT OR IGNORE INTO {meta}(name, value) VALUES('options', %Q);",
  /* 3 -> 4: settings beyond quota_keys' columns (token buckets' rates,
  ** alerts, shadow mode, rollover); the time holds were taken; the event
  ** outbox; credits */
  "CREATE TABLE " QUOTA_DEF_KEYCONF
  "CREATE TABLE " QUOTA_DEF_HOLDTIME
  "CREATE TABLE " QUOTA_DEF_EVENTS
  "CREATE TABLE " QUOTA_DEF_GRANTS
  "CREATE TABLE " QUOTA_DEF_DRAWS
  QUOTA_META_EVENTPOS,
};

/*
** Bring a store up to QUOTA_SCHEMA_VERSION, atomically, in the transaction
** a call would use (quotaStoreTxnBegin: one of its own; a savepoint inside
** the caller's; or, inside a statement that writes, that statement's,
** which then keeps or drops the upgrade with its own changes). The version
** is read again under the write lock, since another connection may have
** upgraded the store since it was read. Every statement that opens, ends
** or undoes the transaction is prepared before it opens (see
** quotaStoreTxnBegin). On failure nothing has changed and *pzErr says why.
*/
static int storeUpgrade(QuotaStore *p, sqlite3_int64 iFrom,
                        const QuotaOptions *pArgs, char **pzErr){
  static const int aPrepare[] = { QS_BEGIN, QS_SAVEPOINT, QS_LOCK, QS_META_GET,
                                  QS_META_SET };
  sqlite3_int64 iSchema = iFrom;
  sqlite3_stmt *pUnused;
  QuotaTxn txn;
  char *zOptions = 0;
  char *zCalls = 0, *zForeign = 0;
  int i, rc = SQLITE_OK;
  memset(&txn, 0, sizeof(txn));
  for(i=0; rc==SQLITE_OK && i<QUOTA_ARRAYSIZE(aPrepare); i++){
    rc = quotaStoreStmt(p, aPrepare[i], &pUnused);
  }
  /* The upgrade writes the shadow tables: a trigger on one would run. */
  if( rc==SQLITE_OK ){
    rc = quotaSchemaScan(p->db, p->zDb, p->zName, quotaStoreIsShadow,
                         &zCalls, &zForeign);
  }
  if( rc==SQLITE_OK && zForeign ){
    *pzErr = sqlite3_mprintf("%s: cannot upgrade the store: it has a %s that "
        "sqlite-quota did not create", p->zName, zForeign);
    rc = SQLITE_ERROR;
  }
  sqlite3_free(zCalls);
  sqlite3_free(zForeign);
  if( rc!=SQLITE_OK ) return rc;
  rc = quotaStoreTxnBegin(p, 1, &txn);
  if( txn.bReading ){
    /* A statement of the connection is reading in autocommit: writes made
    ** bare would commit one by one, so the upgrade takes a transaction of
    ** its own (COMMIT is allowed while statements only read). */
    rc = quotaStoreRunInt(p, QS_BEGIN, 0, 0);
    if( rc==SQLITE_OK ) txn.eMode = QUOTA_TXN_OWN;
  }
  if( rc==SQLITE_OK ) rc = quotaStoreMetaGet(p, "schema", &iSchema);
  while( rc==SQLITE_OK && iSchema>=1 && iSchema<QUOTA_SCHEMA_VERSION ){
    const char *zStep = azUpgrade[iSchema-1];
    char *zSql = 0;
    if( strstr(zStep, "%Q") ){
      if( zOptions==0 ) zOptions = storeOptionsText(pArgs);
      zSql = zOptions ? sqlite3_mprintf(zStep, zOptions) : 0;
      if( zSql==0 ){ rc = SQLITE_NOMEM; break; }
    }
    rc = storeExec(p->db, p->zDb, p->zName, zSql ? zSql : zStep);
    sqlite3_free(zSql);
    if( rc==SQLITE_OK ) rc = storeMetaSet(p, "schema", ++iSchema);
  }
  sqlite3_free(zOptions);
  if( rc==SQLITE_OK ) rc = quotaStoreTxnFinish(p, &txn);
  if( rc!=SQLITE_OK ){
    if( *pzErr==0 ){
      *pzErr = sqlite3_mprintf("%s: cannot upgrade the store from schema %lld "
          "to %d: %s", p->zName, iFrom, QUOTA_SCHEMA_VERSION, sqlite3_errmsg(p->db));
    }
    quotaStoreTxnAbort(p, &txn);
  }
  return rc;
}

/*
** Open the store of table zDb.zName (xCreate: create it first). pArgs are
** the options of the CREATE VIRTUAL TABLE statement: a new store takes
** them; an existing one keeps its own (quota_configure may have changed
** them), and a store older than schema 3 takes them on its upgrade.
*/
int quotaStoreOpen(sqlite3 *db, const char *zDb, const char *zName, int bCreate,
                   const QuotaOptions *pArgs, QuotaStore **ppStore, char **pzErr){
  QuotaStore *p;
  sqlite3_int64 iSchema = 0;
  int rc;
  *ppStore = 0;
  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->nRef = 1;
  p->db = db;
  p->opt = *pArgs;
  p->zDb = sqlite3_mprintf("%s", zDb);
  p->zName = sqlite3_mprintf("%s", zName);
  rc = (p->zDb && p->zName) ? SQLITE_OK : SQLITE_NOMEM;
  /* From here on only the copies: zDb and zName may be SQLite's strings for
  ** the table being created, which an out-of-memory error in the statements
  ** below can make SQLite free (it drops the connection's schema). */
  if( rc==SQLITE_OK && bCreate ){
    rc = quotaStoreCreate(db, p->zDb, p->zName, pArgs);
    if( rc!=SQLITE_OK && ALWAYS(*pzErr==0) ){
      *pzErr = sqlite3_mprintf("quota: %s", sqlite3_errmsg(db));
    }
  }
  if( rc==SQLITE_OK ) rc = quotaStoreMetaGet(p, "schema", &iSchema);
  if( rc==SQLITE_OK && iSchema>QUOTA_SCHEMA_VERSION ){
    /* A store written by a newer sqlite-quota may hold what this build
    ** cannot keep consistent: refuse it rather than guess. */
    *pzErr = sqlite3_mprintf("%s: this store has schema %lld, written by a "
        "newer sqlite-quota; this build (%s) reads schema %d: upgrade "
        "sqlite-quota", p->zName, iSchema, SQLITE_QUOTA_VERSION,
        QUOTA_SCHEMA_VERSION);
    rc = SQLITE_ERROR;
  }else if( rc==SQLITE_OK && iSchema<1 ){
    *pzErr = sqlite3_mprintf("%s: cannot read the store: quota_meta says "
        "schema %lld", p->zName, iSchema);
    rc = SQLITE_CORRUPT_VTAB;
  }else if( rc==SQLITE_OK && iSchema<QUOTA_SCHEMA_VERSION ){
    if( sqlite3_db_readonly(db, p->zDb)==1 ){
      *pzErr = sqlite3_mprintf("%s: this store has schema %lld and needs an "
          "upgrade to schema %d, which writes: open the database read-write "
          "once", p->zName, iSchema, QUOTA_SCHEMA_VERSION);
      rc = SQLITE_READONLY;
    }else{
      rc = storeUpgrade(p, iSchema, pArgs, pzErr);
    }
  }else if( rc!=SQLITE_OK && *pzErr==0 ){
    *pzErr = sqlite3_mprintf("%s: cannot read the store: %s", p->zName,
        rc==SQLITE_CORRUPT_VTAB ? "quota_meta has no schema row"
                                : sqlite3_errmsg(db));
  }
  if( rc==SQLITE_OK ){
    /* Damaged options leave the table readable (quota_integrity says
    ** what is wrong); calls that write refuse (quotaStoreCheckWrite). */
    rc = storeOptionsLoad(p);
    p->bOptionsBad = rc==SQLITE_CORRUPT_VTAB;
    if( p->bOptionsBad ) rc = SQLITE_OK;
    if( rc!=SQLITE_OK && *pzErr==0 ){
      *pzErr = sqlite3_mprintf("%s: cannot read the store: %s", p->zName,
                               sqlite3_errmsg(db));
    }
  }
  if( rc!=SQLITE_OK ){
    quotaStoreUnref(p);
    return rc;
  }
  *ppStore = p;
  return SQLITE_OK;
}
