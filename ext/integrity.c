/*
** integrity.c: quota_integrity() and PRAGMA integrity_check (SQLite 3.44+,
** xIntegrity): every invariant of a store that its rows can show, checked
** by SQL, reported as text.
**
** The checks run on any store, however damaged: they never raise an error
** of their own (no sum() that can overflow: sums of 64-bit values are
** taken as a high and a low 32-bit half, which cannot), and each reports
** the first row that breaks its invariant. test/integrity.test breaks each
** one by hand.
*/
#include "integrity.h"
#include "events.h"
#include <string.h>

/* An exact comparison of a 64-bit column with the sum of a 64-bit column
** of a group, without sum()'s overflow error: HI(x) and LO(x) are the
** halves summed separately, SUMEQ(col, hi, lo) compares. */
#define SUM_HALVES(x) "sum((" x ")>>32) AS hi, sum((" x ")&4294967295) AS lo"
#define SUM_EQ(col, s) \
  "(" col ">>32)=coalesce(" s ".hi+(" s ".lo>>32), 0)" \
  " AND (" col "&4294967295)=coalesce(" s ".lo&4294967295, 0)"
#define SUM_TEXT(s) \
  "CASE WHEN " s ".hi IS NULL THEN 0 WHEN abs(" s ".hi)<2147483647" \
  " THEN " s ".hi*4294967296+" s ".lo ELSE 'more than 2^63' END"

static const char *const azCheck[] = {
  /* the sweep state is there, and valid (the options are checked by
  ** every call that opens the table) */
  "SELECT 'quota_meta: ' || quote(n.name) || ' is missing or invalid'"
  " FROM (SELECT column1 AS name FROM (VALUES('schema'),('swept'),('sweepid'),"
  " ('purgepos'),('eventpos'))) AS n"
  " LEFT JOIN {meta} AS m ON m.name=n.name"
  " WHERE typeof(m.value)<>'integer'"
  " OR (n.name IN ('sweepid','purgepos','eventpos') AND m.value<0) LIMIT 1",
  /* each key's stored settings and counters are in range */
  "SELECT 'key ' || quote(k.key) || ': invalid stored settings'"
  " FROM {keys} AS k WHERE typeof(k.key)<>'text' OR k.key=''"
  " OR typeof(k.kind)<>'integer' OR k.kind NOT BETWEEN 0 AND @K"
  " OR typeof(k.used)<>'integer' OR k.used<0"
  " OR typeof(k.reserved)<>'integer' OR k.reserved<0"
  " OR (k.cap IS NOT NULL AND (typeof(k.cap)<>'integer' OR k.cap<0))"
  " OR typeof(k.wtotal)<>'integer' OR k.wtotal<0"
  " OR (k.kind IN (@W, @R) AND (k.len<=0 OR k.len>@L))"
  " OR (k.parent IS NOT NULL AND NOT EXISTS"
  "   (SELECT 1 FROM {keys} AS q WHERE q.id=k.parent)) LIMIT 1",
  /* parent chains end within QUOTA_MAX_DEPTH levels (no cycle); depth
  ** counts links, one fewer than levels */
  "WITH RECURSIVE up(start, kid, depth) AS ("
  "  SELECT id, parent, 1 FROM {keys} WHERE parent IS NOT NULL"
  "  UNION ALL SELECT up.start, k.parent, up.depth+1 FROM up JOIN {keys} AS k"
  "  ON k.id=up.kid WHERE k.parent IS NOT NULL AND up.depth<" QUOTA_STR(QUOTA_MAX_DEPTH) ")"
  " SELECT 'key ' || quote((SELECT key FROM {keys} WHERE id=start)) ||"
  " ': parent chain longer than " QUOTA_STR(QUOTA_MAX_DEPTH) " levels or a cycle'"
  " FROM up WHERE depth>=" QUOTA_STR(QUOTA_MAX_DEPTH) " LIMIT 1",
  /* reserved = the live holds of the key and of all its descendants */
  "WITH RECURSIVE up(amount, kid, depth) AS ("
  "  SELECT amount, key_id, 1 FROM {holds} WHERE state=0"
  "  UNION ALL SELECT up.amount, k.parent, up.depth+1 FROM up JOIN {keys} AS k"
  "  ON k.id=up.kid WHERE k.parent IS NOT NULL AND up.depth<=" QUOTA_STR(QUOTA_MAX_DEPTH) ")"
  " SELECT 'key ' || quote(k.key) || ': reserved ' || k.reserved ||"
  " ' but its live holds sum to ' || " SUM_TEXT("s")
  " FROM {keys} AS k LEFT JOIN"
  " (SELECT kid, " SUM_HALVES("amount") " FROM up GROUP BY kid) AS s ON s.kid=k.id"
  " WHERE NOT (" SUM_EQ("k.reserved", "s") ") LIMIT 1",
  /* a window's used = its buckets, oldest = its first; others have none */
  "SELECT 'key ' || quote(k.key) || ': used ' || k.used ||"
  " ' but its window buckets sum to ' || " SUM_TEXT("s")
  " FROM {keys} AS k LEFT JOIN (SELECT key_id, " SUM_HALVES("amount") ","
  " min(sec) AS first FROM {window} GROUP BY key_id) AS s ON s.key_id=k.id"
  " WHERE (k.kind IN (@W) AND (NOT (" SUM_EQ("k.used", "s") ")"
  "   OR k.oldest IS NOT s.first))"
  " OR (k.kind NOT IN (@W) AND (s.hi IS NOT NULL OR k.oldest IS NOT NULL)) LIMIT 1",
  /* each bucket's running total is the previous one's plus its amount,
  ** and the newest is the key's */
  "SELECT 'key ' || quote(k.key) || ': window running totals disagree'"
  " FROM {keys} AS k JOIN (SELECT key_id, sec, total, amount,"
  "   lag(total) OVER (PARTITION BY key_id ORDER BY sec) AS prev,"
  "   row_number() OVER (PARTITION BY key_id ORDER BY sec DESC) AS rn"
  "   FROM {window}) AS w ON w.key_id=k.id"
  " WHERE typeof(w.amount)<>'integer' OR w.amount<0"
  " OR (w.prev IS NOT NULL AND w.total<>w.prev+w.amount)"
  " OR (w.rn=1 AND w.total<>k.wtotal) LIMIT 1",
  /* every hold's stored values are ones sqlite-quota writes */
  "SELECT 'hold ' || h.id || ': invalid stored values'"
  " FROM {holds} AS h WHERE typeof(h.amount)<>'integer' OR h.amount<0"
  " OR typeof(h.state)<>'integer' OR h.state NOT BETWEEN 0 AND 4"
  " OR typeof(h.expires)<>'integer' OR h.lane NOT IN (0,1) LIMIT 1",
  /* live holds belong to existing keys */
  "SELECT 'hold ' || h.id || ': live but its key does not exist'"
  " FROM {holds} AS h WHERE h.state=0 AND NOT EXISTS"
  " (SELECT 1 FROM {keys} AS k WHERE k.id=h.key_id) LIMIT 1",
  /* a hold the sweep watermark has passed is no longer live */
  "SELECT 'hold ' || h.id || ': expired at ' || h.expires ||"
  " ' (swept to ' || m.value || ') but still counts in reserved'"
  " FROM {holds} AS h, {meta} AS m WHERE m.name='swept'"
  " AND h.state=0 AND h.expires<=m.value LIMIT 1",
  /* a live hold outside the ordered lane is findable by its expiry */
  "SELECT 'hold ' || h.id || ': live but missing from the expiry index'"
  " FROM {holds} AS h WHERE h.state=0 AND h.lane=1 AND NOT EXISTS"
  " (SELECT 1 FROM {expiry} AS e WHERE e.hold_id=h.id AND e.expires=h.expires)"
  " LIMIT 1",
  /* a live hold of the ordered lane is at or after where its sweep starts */
  "SELECT 'hold ' || h.id || ': live in the ordered lane before the sweep"
  " position ' || m.value || ', where no sweep will find it'"
  " FROM {holds} AS h, {meta} AS m WHERE m.name='sweepid'"
  " AND h.state=0 AND h.lane=0 AND h.id<m.value LIMIT 1",
  /* the ordered lane is in expiry order: each lane-0 hold expires no
  ** earlier than the lane-0 hold before it */
  "SELECT 'hold ' || b.id || ': out of expiry order in the ordered lane'"
  " FROM {holds} AS a JOIN {holds} AS b ON b.id=(SELECT min(c.id)"
  " FROM {holds} AS c WHERE c.id>a.id AND c.lane=0)"
  " WHERE a.lane=0 AND b.expires<a.expires LIMIT 1",
  /* the newest hold knows the largest expiry of the ordered lane, which
  ** the next reserve reads to keep the lane in order */
  "SELECT 'hold ' || h.id || ': l0max ' || h.l0max ||"
  " ' is below the ordered lane''s largest expiry ' || x.e"
  " FROM (SELECT id, l0max FROM {holds} ORDER BY id DESC LIMIT 1) AS h,"
  " (SELECT max(expires) AS e FROM {holds} WHERE lane=0) AS x"
  " WHERE x.e IS NOT NULL AND (typeof(h.l0max)<>'integer' OR h.l0max<x.e)",
  /* a token bucket: a cap, its rate in quota_keyconf (the N of its period
  ** text), a refill remainder below one unit and none when full, no
  ** window; no other key has a rate */
  "SELECT 'key ' || quote(k.key) || ': invalid token bucket'"
  " FROM {keys} AS k LEFT JOIN {keyconf} AS c ON c.id=k.id"
  " WHERE (k.kind IN (@R) AND (k.cap IS NULL OR k.len<=0 OR k.len>@L"
  "   OR typeof(c.rate)<>'integer' OR c.rate<=0"
  "   OR typeof(k.period)<>'text'"
  "   OR substr(k.period, 1, length(c.rate)+10)<>'rate ' || c.rate || ' per '"
  "   OR k.wtotal>=k.len OR (k.used=0 AND k.wtotal<>0)"
  "   OR typeof(k.pstart)<>'integer' OR k.pstart NOT BETWEEN @T AND @U))"
  " OR (k.kind NOT IN (@R) AND c.rate IS NOT NULL) LIMIT 1",
  /* per-key settings belong to existing keys; a key whose settings are
  ** all NULL has no row (the operators' columns are checked further by
  ** integrityEvents) */
  "SELECT 'quota_keyconf row ' || c.id || ': ' || CASE WHEN k.id IS NULL"
  " THEN 'the key does not exist' ELSE 'every setting is NULL' END"
  " FROM {keyconf} AS c LEFT JOIN {keys} AS k ON k.id=c.id"
  " WHERE k.id IS NULL OR (c.rollover IS NULL AND c.alert IS NULL"
  " AND c.enforce IS NULL AND c.fired IS NULL AND c.rate IS NULL"
  " AND c.grants IS NULL) LIMIT 1",
  /* credits: every grant's stored values are ones sqlite-quota writes */
  "SELECT 'grant ' || g.id || ': invalid stored values'"
  " FROM {grants} AS g WHERE typeof(g.key)<>'text'"
  " OR typeof(g.amount)<>'integer' OR g.amount<=0"
  " OR typeof(g.remaining)<>'integer' OR g.remaining<0 OR g.remaining>g.amount"
  " OR typeof(g.priority)<>'integer' OR typeof(g.created)<>'integer'"
  " OR (g.expires IS NOT NULL AND typeof(g.expires)<>'integer')"
  " OR (g.voided IS NOT NULL AND (typeof(g.voided)<>'integer' OR g.voided<0"
  "   OR g.remaining<>0)) LIMIT 1",
  /* every draw is of an existing grant, of a positive amount */
  "SELECT 'draw of ledger row ' || d.ledger_id || ' from grant ' || d.grant_id"
  " || ': ' || CASE WHEN g.id IS NULL THEN 'the grant does not exist'"
  " ELSE 'invalid amount' END"
  " FROM {draws} AS d LEFT JOIN {grants} AS g ON g.id=d.grant_id"
  " WHERE g.id IS NULL OR typeof(d.amount)<>'integer' OR d.amount<=0 LIMIT 1",
  /* a grant's amount = what is left + what charges drew + what was voided
  ** (purge removes a grant together with its draws) */
  "SELECT 'grant ' || g.id || ': amount ' || g.amount || ' but remaining '"
  " || g.remaining || ', draws ' || " SUM_TEXT("s") " || ' and voided '"
  " || coalesce(g.voided, 0) || ' do not add up'"
  " FROM {grants} AS g LEFT JOIN (SELECT grant_id, " SUM_HALVES("amount")
  " FROM {draws} GROUP BY grant_id) AS s ON s.grant_id=g.id"
  " WHERE NOT (" SUM_EQ("(g.amount-g.remaining-coalesce(g.voided, 0))", "s") ")"
  " LIMIT 1",
  /* each key's count of open grants, which says whether a call reads its
  ** grants (the credits column, the room) */
  "SELECT 'key ' || quote(k.key) || ': ' || coalesce(c.grants, 0) ||"
  " ' open grants counted but ' || coalesce(o.n, 0) || ' in quota_grants'"
  " FROM {keys} AS k LEFT JOIN {keyconf} AS c ON c.id=k.id"
  " LEFT JOIN (SELECT key, count(*) AS n FROM {grants}"
  "   WHERE remaining>0 AND voided IS NULL GROUP BY key) AS o ON o.key=k.key"
  " WHERE coalesce(c.grants, 0)<>coalesce(o.n, 0) LIMIT 1",
  /* when holds were taken: a time of the clock's range, for a hold id
  ** that was handed out */
  "SELECT 'quota_holdtime row ' || t.id || ': invalid stored values'"
  " FROM {holdtime} AS t WHERE typeof(t.at)<>'integer' OR t.at NOT BETWEEN @T AND @U"
  " OR t.id>coalesce((SELECT max(id) FROM {holds}), 0) LIMIT 1",
  /* notes, request ids belong to existing keys */
  "SELECT 'note of key id ' || n.id || ': the key does not exist'"
  " FROM {notes} AS n WHERE NOT EXISTS"
  " (SELECT 1 FROM {keys} AS k WHERE k.id=n.id) LIMIT 1",
  "SELECT 'request id ' || quote(r.request_id) || ' of key id ' || r.key_id ||"
  " ': the key does not exist'"
  " FROM {requests} AS r WHERE NOT EXISTS"
  " (SELECT 1 FROM {keys} AS k WHERE k.id=r.key_id) LIMIT 1",
  /* ledger rows are ones sqlite-quota writes */
  "SELECT 'ledger row ' || l.id || ': invalid stored values'"
  " FROM {ledger} AS l WHERE typeof(l.key)<>'text'"
  " OR typeof(l.amount)<>'integer' OR l.amount<0"
  " OR typeof(l.at)<>'integer' OR l.over NOT IN (0,1) OR l.late NOT IN (0,1)"
  " LIMIT 1",
  /* events are rows sqlite-quota writes */
  "SELECT 'event ' || e.id || ': invalid stored values'"
  " FROM {events} AS e WHERE typeof(e.key)<>'text' OR e.key=''"
  " OR typeof(e.at)<>'integer'"
  " OR e.kind NOT IN ('threshold','exhausted','shadow_denied')"
  " OR typeof(e.used)<>'integer' OR e.used<0"
  " OR (e.cap IS NOT NULL AND (typeof(e.cap)<>'integer' OR e.cap<0))"
  " OR (e.kind<>'threshold' AND (e.cap IS NULL OR e.detail IS NOT NULL))"
  " OR (e.kind='threshold' AND typeof(e.detail)<>'text')"
  " OR (e.period_start IS NOT NULL AND typeof(e.period_start)<>'integer')"
  " OR (e.ledger_id IS NOT NULL AND (typeof(e.ledger_id)<>'integer' OR e.ledger_id<=0))"
  " OR (e.hold_id IS NOT NULL AND (typeof(e.hold_id)<>'integer' OR e.hold_id<=0))"
  " LIMIT 1",
};

/*
** The checks of the operators' rows that need the extension's own rules:
** each key's alert is a canonical threshold list, its enforce 'hard' or
** 'shadow', its fired state a value sqlite-quota writes
** (quotaEventsCheckFired); each threshold event's detail is one threshold
** that its used has reached (quotaEventsCheckThreshold). Sets *pzErr to
** the first problem.
*/
static int integrityEvents(QuotaStore *p, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc = quotaStorePrepare(p, "SELECT c.id, k.key FROM {keyconf} AS c"
      " JOIN {keys} AS k ON k.id=c.id ORDER BY c.id", &pStmt);
  while( rc==SQLITE_OK && *pzErr==0 && sqlite3_step(pStmt)==SQLITE_ROW ){
    QuotaKey k;
    int rc2;
    memset(&k, 0, sizeof(k));
    k.id = sqlite3_column_int64(pStmt, 0);
    rc2 = quotaStoreConfLoad(p, &k);
    if( rc2==SQLITE_OK ) rc2 = quotaEventsCheckFired(&k);
    if( rc2!=SQLITE_OK && rc2!=SQLITE_CORRUPT_VTAB ){
      rc = rc2;
    }else if( rc2!=SQLITE_OK ){
      *pzErr = sqlite3_mprintf("%s: key %Q: invalid stored alert, enforce or fired",
                               p->zName, (const char*)sqlite3_column_text(pStmt, 1));
      if( *pzErr==0 ) rc = SQLITE_NOMEM;
    }
  }
  if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt); else sqlite3_finalize(pStmt);
  if( rc!=SQLITE_OK || *pzErr ) return rc;
  rc = quotaStorePrepare(p, "SELECT id, detail, used, cap FROM {events}"
      " WHERE kind='threshold' ORDER BY id", &pStmt);
  while( rc==SQLITE_OK && *pzErr==0 && sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zDetail = (const char*)sqlite3_column_text(pStmt, 1);
    int rc2 = quotaEventsCheckThreshold(zDetail, sqlite3_column_int64(pStmt, 2),
        sqlite3_column_type(pStmt, 3)!=SQLITE_NULL, sqlite3_column_int64(pStmt, 3));
    if( rc2==SQLITE_MISMATCH ){
      *pzErr = sqlite3_mprintf("%s: event %lld: detail %Q is not a threshold",
          p->zName, sqlite3_column_int64(pStmt, 0), zDetail);
      if( *pzErr==0 ) rc = SQLITE_NOMEM;
    }else if( rc2!=SQLITE_OK ){
      *pzErr = sqlite3_mprintf("%s: event %lld: used %lld has not reached "
          "threshold %Q of cap %s", p->zName, sqlite3_column_int64(pStmt, 0),
          sqlite3_column_int64(pStmt, 2), zDetail,
          sqlite3_column_type(pStmt, 3)==SQLITE_NULL ? "NULL"
            : (const char*)sqlite3_column_text(pStmt, 3));
      if( *pzErr==0 ) rc = SQLITE_NOMEM;
    }
  }
  if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt); else sqlite3_finalize(pStmt);
  return rc;
}

/*
** A check's SQL with what the kind table decides filled in: @K the largest
** kind number, @W the kinds that have windows ("6"), @R the token buckets
** ("7"), @L the longest window, @T and @U the first and last second of
** the clock's range. sqlite3_malloc'ed.
*/
static char *integritySql(const char *zTemplate){
  sqlite3_str *pStr = sqlite3_str_new(0);
  const char *z = zTemplate;
  int i, n;
  while( *z ){
    const char *zAt = strchr(z, '@');
    if( zAt==0 ){
      sqlite3_str_appendall(pStr, z);
      break;
    }
    sqlite3_str_append(pStr, z, (int)(zAt-z));
    switch( zAt[1] ){
      case 'K':
        sqlite3_str_appendf(pStr, "%d", QUOTA_KIND_COUNT-1);
        break;
      case 'L':
        sqlite3_str_appendf(pStr, "%lld", QUOTA_WINDOW_MAX);
        break;
      case 'T':
        sqlite3_str_appendf(pStr, "%lld", QUOTA_TIME_MIN);
        break;
      case 'U':
        sqlite3_str_appendf(pStr, "%lld", QUOTA_TIME_MAX);
        break;
      default:
        for(i=n=0; i<QUOTA_KIND_COUNT; i++){
          const QuotaKind *pKind = quotaKind(i);
          if( zAt[1]=='W' ? pKind->bWindow : pKind->bRate ){
            sqlite3_str_appendf(pStr, n++ ? ", %d" : "%d", i);
          }
        }
        if( n==0 ) sqlite3_str_appendall(pStr, "NULL");
        break;
    }
    z = zAt+2;
  }
  return sqlite3_str_finish(pStr);
}

/*
** Check that the counters agree with the rows they summarise. Sets *pzErr
** to "NAME: the first disagreement found" (NULL when all is well). Returns
** an error only when SQLite could not run a check (a lock, OOM).
*/
int quotaIntegrity(QuotaStore *p, char **pzErr){
  int i, bValid = 0;
  int rc = quotaStoreOptionsCheck(p, &bValid);
  *pzErr = 0;
  if( rc==SQLITE_OK && !bValid ){
    *pzErr = sqlite3_mprintf("%s: quota_meta: 'options' is missing or invalid",
                             p->zName);
    if( *pzErr==0 ) rc = SQLITE_NOMEM;
  }
  /* the shadow tables as sqlite-quota made them: no trigger, view or
  ** definition of someone else's */
  if( rc==SQLITE_OK && *pzErr==0 ) rc = quotaStoreScanSchema(p);
  if( rc==SQLITE_OK && *pzErr==0 && p->zForeign ){
    *pzErr = sqlite3_mprintf("%s: the store has a %s, which sqlite-quota did "
                             "not make", p->zName, p->zForeign);
    if( *pzErr==0 ) rc = SQLITE_NOMEM;
  }
  for(i=0; rc==SQLITE_OK && *pzErr==0 && i<QUOTA_ARRAYSIZE(azCheck); i++){
    sqlite3_stmt *pStmt = 0;
    char *zSql = integritySql(azCheck[i]);
    rc = zSql ? quotaStorePrepare(p, zSql, &pStmt) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      *pzErr = sqlite3_mprintf("%s: %s", p->zName, sqlite3_column_text(pStmt, 0));
      if( *pzErr==0 ) rc = SQLITE_NOMEM;
    }
    if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt); else sqlite3_finalize(pStmt);
  }
  if( rc==SQLITE_OK && *pzErr==0 ) rc = integrityEvents(p, pzErr);
  return rc;
}
