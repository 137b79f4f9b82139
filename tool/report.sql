-- report.sql: the usage report of `quotactl report`, one self-contained
-- HTML page (inline CSS and SVG; no script, font or image from anywhere
-- else), written to stdout by the sqlite3 shell.
--
-- quotactl runs it on a read-only connection with the extension loaded,
-- after a preamble that fills temp.rp_param(asof, since, dbname,
-- walsize):
--   asof     the report's time (a datetime() value) or NULL for the clock
--   since    start of the usage charts, Unix seconds, or NULL (the last 30
--            days, or from the ledger's first row when that is later)
--   dbname   the database file as the user named it (shown in the title)
--   walsize  bytes of the database's -wal file, or NULL when there is none
-- and it keeps or drops the blocks between "-- @if NAME", "-- @else NAME"
-- and "-- @end NAME" by what the store has ("-- @if !NAME": what it has
-- not), as quotactl finds it before the report:
--   events   a quota_events table with the columns it reads (alerts,
--            exhausted keys, shadow denials)
--   grants   a quota_grants table (credits), draws: quota_draws
--   credits, alert, enforce   those columns of the quota table
--   holds, requests   quota_holds / quota_requests with the columns the
--            purge backlog reads (internal tables: when their columns are
--            not as expected, that part of the backlog says "unknown")
--   dbstat   SQLite's dbstat table (space per table)
--
-- Everything is read through SQL, without writing the store: keys from the
-- quota table (as of the report's time, which is pinned with quota_clock),
-- charges from quota_ledger. The only index of quota_ledger is its id, so
-- the ledger is read in one pass, in id ranges of 20,000 rows: each range
-- is grouped by key and chart bucket on its own (a sort that fits in
-- memory), and the partial sums are merged. One GROUP BY over the whole
-- ledger would sort every row at once, several times slower.
.bail on
.mode list
.headers off
.nullvalue ''
-- temp_store stays the default (files): with temp_store = MEMORY the
-- sorts of the ledger pass took a fifth longer.
PRAGMA cache_size = -65536;

------------------------------------------------------------------ the time
-- One instant for the whole report: the clock is pinned to it, so every
-- read of the quota table below sees the same "now".
CREATE TEMP TABLE rp_now AS
  SELECT unixepoch(quota_clock(coalesce(asof, quota_clock()))) AS now,
         since, dbname, walsize
  FROM rp_param;

----------------------------------------------------------------- the keys
-- period is shown as it is: escaped here (a valid period has nothing to
-- escape, so the comparisons below are unchanged).
CREATE TEMP TABLE rp_key AS
  SELECT key, cap,
         replace(replace(replace(replace(period, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;') AS period,
         anchor, parent, retention, used, reserved,
         remaining, period_start, resets_at, retry_after,
-- @if credits
         credits,
-- @else credits
         NULL AS credits,
-- @end credits
-- @if alert
         alert,
-- @else alert
         NULL AS alert,
-- @end alert
-- @if enforce
         enforce
-- @else enforce
         NULL AS enforce
-- @end enforce
  FROM quota;
-- @if grants
-- @if !credits
-- Without the credits column (a grants table the quota table does not
-- know, as in the tests' stand-in), a key's credits are the unused units
-- of its grants that have not expired, and its room counts them.
UPDATE rp_key SET credits = (
  SELECT sum(g.remaining) FROM quota_grants AS g, rp_now
  WHERE g.key = rp_key.key AND (g.expires IS NULL OR g.expires > rp_now.now));
UPDATE rp_key SET remaining = max(0, cap + credits - used - reserved)
  WHERE cap IS NOT NULL AND credits IS NOT NULL;
-- @end !credits
-- @end grants

-- The escaped key, the limit (cap plus live credits), the share of it in
-- use, and a status: out (no room now), near (80% or more), ok, none (no
-- cap: metered only).
CREATE TEMP TABLE rp_k AS
  SELECT *,
    replace(replace(replace(replace(key, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;') AS hkey,
    replace(replace(replace(replace(parent, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;') AS hparent,
    CASE WHEN cap IS NULL THEN NULL ELSE cap + coalesce(credits, 0) END AS lim,
    CASE WHEN cap IS NULL THEN NULL
         WHEN cap + coalesce(credits, 0) <= 0 THEN 1.0
         ELSE (used + reserved) * 1.0 / (cap + coalesce(credits, 0)) END AS fill,
    CASE WHEN cap IS NULL THEN 'none'
         WHEN remaining <= 0 THEN 'out'
         WHEN cap + coalesce(credits, 0) > 0
              AND (used + reserved) * 1.0 / (cap + coalesce(credits, 0)) >= 0.8 THEN 'near'
         ELSE 'ok' END AS status
  FROM rp_key;

-------------------------------------------------------------- the options
CREATE TEMP TABLE rp_opt AS
  SELECT quota_configure('retention') AS retention,
         quota_configure('idempotency') AS idempotency,
         quota_configure('purge_limit') AS purge_limit;

-- Each key's ledger cutoff: rows at or before it are past retention
-- (removed by quota_purge once now - at >= retention). 'forever' never.
-- Keys without their own retention, and deleted keys, use the table's.
CREATE TEMP TABLE rp_cut(key TEXT PRIMARY KEY, cutoff INTEGER);
INSERT INTO rp_cut
  SELECT key, CASE WHEN r = 'forever' THEN -9223372036854775807
                   ELSE (SELECT now FROM rp_now) - r END
  FROM (SELECT key, coalesce(retention, (SELECT retention FROM rp_opt)) AS r FROM rp_key);
CREATE TEMP TABLE rp_defcut AS
  SELECT CASE WHEN retention = 'forever' THEN -9223372036854775807
              ELSE (SELECT now FROM rp_now) - retention END AS cutoff
  FROM rp_opt;

----------------------------------------------------------------- the span
-- The charts cover [since, now]: --since, else the last 30 days (today
-- and the 29 before), or less when the ledger starts later; per hour up
-- to 3 days, per day beyond; since is rounded down to the hour or the
-- day, so that every bar is a whole one. The first row by id stands for
-- the oldest (ids follow time unless a clock went back, and this only
-- chooses the span).
CREATE TEMP TABLE rp_span AS
  WITH f AS (
    SELECT n.now, n.since AS given,
           (SELECT at FROM quota_ledger ORDER BY id LIMIT 1) AS first
    FROM rp_now AS n),
  s AS (
    SELECT now,
           min(now, coalesce(given, max(now - 29*86400, coalesce(first, now - 86400)))) AS s0
    FROM f),
  b AS (
    SELECT now, s0, CASE WHEN now - s0 <= 3*86400 THEN 3600 ELSE 86400 END AS bucket
    FROM s)
  SELECT now, bucket, (s0 / bucket) * bucket AS since
  FROM b;
ALTER TABLE rp_span ADD COLUMN b0 INTEGER;
ALTER TABLE rp_span ADD COLUMN b1 INTEGER;
UPDATE rp_span SET b0 = since / bucket, b1 = now / bucket;

CREATE TEMP TABLE rp_bucket(b INTEGER PRIMARY KEY);
WITH RECURSIVE r(b) AS (
  SELECT b0 FROM rp_span UNION ALL SELECT b + 1 FROM r WHERE b < (SELECT b1 FROM rp_span))
INSERT INTO rp_bucket SELECT b FROM r;

---------------------------------------------------------- the ledger pass
CREATE TEMP TABLE rp_chunk(c INTEGER PRIMARY KEY, lo INTEGER, hi INTEGER);
WITH RECURSIVE r(c, lo) AS (
  SELECT 0, (SELECT min(id) FROM quota_ledger)
  WHERE (SELECT min(id) FROM quota_ledger) IS NOT NULL
  UNION ALL
  SELECT c + 1, lo + 20000 FROM r WHERE lo + 20000 <= (SELECT max(id) FROM quota_ledger))
INSERT INTO rp_chunk SELECT c, lo, lo + 19999 FROM r;

-- Per id range: [key, bucket (at / bucket length), rows, units, units of
-- charges marked over], for the rows up to the report's time. The bucket
-- length is a literal in two statements (one runs): through a column it
-- costs a tenth more. Two aggregates more per row (first and last at)
-- would cost a third more: retention is worked out from the buckets.
CREATE TEMP TABLE rp_part(c INTEGER PRIMARY KEY, j TEXT);
INSERT INTO rp_part
  SELECT ch.c, (
    SELECT json_group_array(json_array(key, b, n, s, o)) FROM (
      SELECT key, at / 86400 AS b, count(*) AS n, sum(amount) AS s, sum(amount * over) AS o
      FROM quota_ledger WHERE id BETWEEN ch.lo AND ch.hi AND at <= sp.now
      GROUP BY key, b))
  FROM rp_chunk AS ch, rp_span AS sp WHERE (SELECT bucket FROM rp_span) = 86400;
INSERT INTO rp_part
  SELECT ch.c, (
    SELECT json_group_array(json_array(key, b, n, s, o)) FROM (
      SELECT key, at / 3600 AS b, count(*) AS n, sum(amount) AS s, sum(amount * over) AS o
      FROM quota_ledger WHERE id BETWEEN ch.lo AND ch.hi AND at <= sp.now
      GROUP BY key, b))
  FROM rp_chunk AS ch, rp_span AS sp WHERE (SELECT bucket FROM rp_span) = 3600;

CREATE TEMP TABLE rp_piece AS
  SELECT p.c, j.value ->> 0 AS key, j.value ->> 1 AS b, j.value ->> 2 AS n,
         j.value ->> 3 AS s, j.value ->> 4 AS o,
         coalesce(ct.cutoff, (SELECT cutoff FROM rp_defcut)) AS cutoff
  FROM rp_part AS p, json_each(p.j) AS j
  LEFT JOIN rp_cut AS ct ON ct.key = j.value ->> 0;
DROP TABLE rp_part;

-- Per key and bucket.
CREATE TEMP TABLE rp_agg AS
  SELECT key, b, sum(n) AS n, sum(s) AS s, sum(o) AS o FROM rp_piece GROUP BY key, b;
CREATE INDEX temp.rp_agg_b ON rp_agg(b, key);

-- Rows past retention: a piece whose bucket ends at or before its key's
-- cutoff counts whole, one that starts after it counts nothing (rows
-- after the report's time are past nothing); an id range with a piece
-- whose bucket holds the cutoff is counted again row by row.
CREATE TEMP TABLE rp_past AS
  SELECT p.c,
         max(p.b * sp.bucket <= p.cutoff AND (p.b + 1) * sp.bucket - 1 > p.cutoff) AS straddles,
         sum(CASE WHEN (p.b + 1) * sp.bucket - 1 <= p.cutoff THEN p.n ELSE 0 END) AS n
  FROM rp_piece AS p, rp_span AS sp GROUP BY p.c;
CREATE TEMP TABLE rp_backlog AS
  SELECT
    (SELECT coalesce(sum(n), 0) FROM rp_past WHERE NOT straddles)
    + (SELECT count(*) FROM rp_past AS p
         JOIN rp_chunk AS ch ON ch.c = p.c
         JOIN quota_ledger AS l ON l.id BETWEEN ch.lo AND ch.hi
         LEFT JOIN rp_cut AS ct ON ct.key = l.key
       WHERE p.straddles AND l.at <= coalesce(ct.cutoff, (SELECT cutoff FROM rp_defcut)))
    -- quota_purge never removes the newest row (ids are never reused).
    - coalesce((SELECT l.at <= coalesce(ct.cutoff, (SELECT cutoff FROM rp_defcut))
                FROM quota_ledger AS l LEFT JOIN rp_cut AS ct ON ct.key = l.key
                ORDER BY l.id DESC LIMIT 1), 0) AS ledger_past;
DROP TABLE rp_piece;

-- Per key, in the span: units charged, of them in charges marked over,
-- charges.
CREATE TEMP TABLE rp_tot AS
  SELECT a.key, sum(CASE WHEN a.b BETWEEN sp.b0 AND sp.b1 THEN a.s ELSE 0 END) AS s,
         sum(CASE WHEN a.b BETWEEN sp.b0 AND sp.b1 THEN a.o ELSE 0 END) AS o,
         sum(CASE WHEN a.b BETWEEN sp.b0 AND sp.b1 THEN a.n ELSE 0 END) AS nspan
  FROM rp_agg AS a, rp_span AS sp GROUP BY a.key;

-- The busiest keys of the span: their charts follow the store's total.
CREATE TEMP TABLE rp_busy AS
  SELECT t.key, t.s, t.o, t.nspan,
         replace(replace(replace(replace(t.key, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;') AS hkey,
         row_number() OVER (ORDER BY t.s DESC, t.key) AS rank
  FROM rp_tot AS t WHERE t.s > 0
  ORDER BY t.s DESC, t.key LIMIT 6;

-------------------------------------------------------------- the events
-- @if events
-- The events of the span (at in Unix seconds; a time text is read too),
-- of the kinds the page knows.
CREATE TEMP TABLE rp_ev AS
  SELECT * FROM (
    SELECT e.key, e.kind,
           replace(replace(replace(replace(e.key, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;') AS hkey,
           CASE WHEN typeof(e.at) IN ('integer', 'real') THEN CAST(e.at AS INTEGER)
                ELSE unixepoch(e.at) END AS at
    FROM quota_events AS e
    WHERE e.kind IN ('threshold', 'exhausted', 'shadow_denied'))
  WHERE at BETWEEN (SELECT since FROM rp_span) AND (SELECT now FROM rp_span);
-- @end events

------------------------------------------------------------- the credits
-- @if grants
-- Per key: units granted; of them drawn, live (unused, not expired),
-- expired unused, voided. For a grant that was not voided, drawn is
-- amount - remaining; a voided one's drawn units are in quota_draws.
CREATE TEMP TABLE rp_grant AS
  SELECT g.key,
         replace(replace(replace(replace(g.key, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;') AS hkey,
         count(*) AS grants,
         sum(g.amount) AS granted,
         sum(CASE WHEN coalesce(g.voided, 0) = 0 THEN g.amount - g.remaining ELSE 0 END) AS drawn,
         sum(CASE WHEN coalesce(g.voided, 0) = 0 AND (g.expires IS NULL OR g.expires > n.now)
                  THEN g.remaining ELSE 0 END) AS live,
         sum(CASE WHEN coalesce(g.voided, 0) = 0 AND g.expires IS NOT NULL AND g.expires <= n.now
                  THEN g.remaining ELSE 0 END) AS expired,
         sum(CASE WHEN coalesce(g.voided, 0) <> 0 THEN g.amount - g.remaining ELSE 0 END) AS voided
  FROM quota_grants AS g, rp_now AS n
  GROUP BY g.key;
-- @if draws
-- The units voided grants had given out before the void: drawn, not voided.
CREATE TEMP TABLE rp_vdraw AS
  SELECT g.key, sum(d.amount) AS drawn
  FROM quota_draws AS d JOIN quota_grants AS g ON g.id = d.grant_id
  WHERE coalesce(g.voided, 0) <> 0
  GROUP BY g.key;
UPDATE rp_grant SET
  drawn = drawn + coalesce((SELECT drawn FROM rp_vdraw AS v WHERE v.key = rp_grant.key), 0),
  voided = voided - coalesce((SELECT drawn FROM rp_vdraw AS v WHERE v.key = rp_grant.key), 0);
-- @end draws
-- @end grants

--------------------------------------------------------------- the store
CREATE TEMP TABLE rp_store AS
  SELECT (SELECT page_count FROM pragma_page_count) * (SELECT page_size FROM pragma_page_size) AS bytes,
         (SELECT freelist_count FROM pragma_freelist_count) * (SELECT page_size FROM pragma_page_size) AS free,
         (SELECT count(*) FROM quota_ledger) AS ledger,
         (SELECT count(*) FROM rp_key) AS keys,
         (SELECT ledger_past FROM rp_backlog) AS ledger_past,
-- @if holds
         (SELECT count(*) FROM quota_holds) AS holds,
         (SELECT count(*) FROM quota_holds
          WHERE coalesce(ended, expires) <= (SELECT now FROM rp_now) - (SELECT idempotency FROM rp_opt)
            AND id < (SELECT max(id) FROM quota_holds)) AS holds_past,
-- @else holds
         NULL AS holds, NULL AS holds_past,
-- @end holds
-- @if requests
         (SELECT count(*) FROM quota_requests) AS requests,
         (SELECT count(*) FROM quota_requests
          WHERE at <= (SELECT now FROM rp_now) - (SELECT idempotency FROM rp_opt)) AS requests_past,
-- @else requests
         NULL AS requests, NULL AS requests_past,
-- @end requests
-- @if events
         (SELECT count(*) FROM quota_events) AS events,
-- @else events
         NULL AS events,
-- @end events
         (SELECT walsize FROM rp_now) AS wal;

-- @if dbstat
CREATE TEMP TABLE rp_space AS
  SELECT name, pgsize AS bytes FROM dbstat WHERE aggregate = 1 AND pgsize > 0;
-- Indexes count with their table.
UPDATE rp_space SET name = coalesce(
  (SELECT tbl_name FROM sqlite_schema AS s WHERE s.name = rp_space.name AND s.type = 'index'), name);
CREATE TEMP TABLE rp_space2 AS
  SELECT replace(replace(replace(replace(name, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;') AS name,
         sum(bytes) AS bytes
  FROM rp_space GROUP BY 1 ORDER BY bytes DESC;
-- @end dbstat

-------------------------------------------------------- the period resets
-- The period boundaries inside the span of each charted key with a
-- calendar period (the key's period_start at each is that boundary; the
-- test checks them against the extension). Keys whose period is not
-- longer than a chart bucket are not marked (a line at every bar).
CREATE TEMP TABLE rp_reset(key TEXT, at INTEGER);
-- hour, day, week: every step from the anchor (else from midnight UTC,
-- Monday for week).
WITH RECURSIVE k AS (
  SELECT q.key,
         CASE q.period WHEN 'hour' THEN 3600 WHEN 'day' THEN 86400 ELSE 604800 END AS step,
         CASE WHEN q.anchor IS NOT NULL THEN unixepoch(q.anchor)
              WHEN q.period = 'week' THEN 345600 ELSE 0 END AS origin,
         sp.since - CASE WHEN q.anchor IS NOT NULL THEN unixepoch(q.anchor)
                         WHEN q.period = 'week' THEN 345600 ELSE 0 END AS d
  FROM rp_busy AS b JOIN rp_key AS q ON q.key = b.key, rp_span AS sp
  WHERE q.period IN ('hour', 'day', 'week')),
r(key, step, t) AS (
  SELECT key, step,
         origin + step * (1 + CASE WHEN d >= 0 THEN d / step ELSE -((step - 1 - d) / step) END)
  FROM k
  UNION ALL
  SELECT key, step, t + step FROM r WHERE t + step <= (SELECT now FROM rp_span))
INSERT INTO rp_reset
  SELECT r.key, r.t FROM r, rp_span AS sp WHERE r.t <= sp.now AND r.step > sp.bucket;
-- month, year: the anchor's day of the month (clamped to the month's
-- length) and time of day; calendar months and years without one.
WITH RECURSIVE k AS (
  SELECT q.key, q.period, q.anchor,
         CAST(strftime('%m', q.anchor) AS INTEGER) AS am,
         CAST(strftime('%d', q.anchor) AS INTEGER) AS ad,
         unixepoch(q.anchor) - unixepoch(q.anchor, 'start of day') AS atime
  FROM rp_busy AS b JOIN rp_key AS q ON q.key = b.key
  WHERE q.period IN ('month', 'year')),
m(key, ms) AS (
  SELECT key, date((SELECT since FROM rp_span), 'unixepoch', 'start of month', '-13 months') FROM k
  UNION ALL
  SELECT key, date(ms, '+1 month') FROM m WHERE ms <= date((SELECT now FROM rp_span), 'unixepoch')),
c AS (
  SELECT k.key,
         CASE WHEN k.anchor IS NULL THEN unixepoch(m.ms)
              ELSE unixepoch(m.ms) + atime + 86400 * (min(ad,
                     CAST(strftime('%d', m.ms, '+1 month', '-1 day') AS INTEGER)) - 1) END AS t
  FROM k JOIN m ON m.key = k.key
  WHERE k.period = 'month'
     OR (k.anchor IS NULL AND strftime('%m', m.ms) = '01')
     OR (k.anchor IS NOT NULL AND CAST(strftime('%m', m.ms) AS INTEGER) = k.am))
INSERT INTO rp_reset
  SELECT c.key, c.t FROM c, rp_span AS sp
  WHERE c.t > sp.since AND c.t <= sp.now
    AND sp.bucket < CASE (SELECT period FROM rp_key WHERE key = c.key)
                      WHEN 'month' THEN 28*86400 ELSE 365*86400 END;

-------------------------------------------------------------- the series
-- Panel 0 is the whole store; panels 1.. the busiest keys.
CREATE TEMP TABLE rp_series AS
  SELECT 0 AS panel, bk.b, coalesce(sum(a.s), 0) AS s, coalesce(sum(a.o), 0) AS o
  FROM rp_bucket AS bk LEFT JOIN rp_agg AS a ON a.b = bk.b
  GROUP BY bk.b;
INSERT INTO rp_series
  SELECT k.rank, bk.b, coalesce(a.s, 0), coalesce(a.o, 0)
  FROM rp_busy AS k, rp_bucket AS bk LEFT JOIN rp_agg AS a ON a.b = bk.b AND a.key = k.key;

-- Helpers for the page: escaped database name, times, durations.
CREATE TEMP TABLE rp_fmt AS
  SELECT replace(replace(replace(replace(n.dbname, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;') AS hdb,
         datetime(n.now, 'unixepoch') AS nowtext,
         datetime(sp.since, 'unixepoch') AS sincetext,
         CASE sp.bucket WHEN 3600 THEN 'hour' ELSE 'day' END AS per
  FROM rp_now AS n, rp_span AS sp;

-- What each capped key's row says after its bar: when its period resets
-- (or its window frees units), as "3 d 4 h", "5 h 12 min", "42 s".
CREATE TEMP TABLE rp_when AS
  SELECT key, CASE
    WHEN x IS NULL THEN NULL
    WHEN x >= 86400 THEN (x / 86400) || ' d' || CASE WHEN x % 86400 >= 3600 THEN ' ' || (x % 86400 / 3600) || ' h' ELSE '' END
    WHEN x >= 3600 THEN (x / 3600) || ' h' || CASE WHEN x % 3600 >= 60 THEN ' ' || (x % 3600 / 60) || ' min' ELSE '' END
    WHEN x >= 60 THEN (x / 60) || ' min'
    ELSE x || ' s' END AS txt
  FROM (SELECT key, CASE WHEN status = 'out' AND retry_after IS NOT NULL THEN retry_after
                         WHEN resets_at IS NOT NULL THEN unixepoch(resets_at) - (SELECT now FROM rp_now)
                    END AS x
        FROM rp_k);

------------------------------------------------------------------ the page
SELECT '<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sqlite-quota report: ' || hdb || '</title>
<style>
:root{--ok:#4c78a8;--near:#f58518;--out:#d62728;--debt:#8c1020;--none:#9aa5b1;
--shadow:#7b4fb5;--live:#2ca02c;--track:#e6e9ed;--ink:#1d2733;--muted:#66727f;--line:#e3e6ea}
*{box-sizing:border-box}
body{margin:0;background:#f5f6f8;color:var(--ink);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1200px;margin:0 auto;padding:14px 18px 36px}
h1{font-size:22px;margin:6px 0 2px}
h2{font-size:17px;margin:26px 0 6px;padding-bottom:3px;border-bottom:1px solid #d5dae0}
p{margin:4px 0}
.meta,.sub,.note{color:var(--muted)}
.sub{font-size:12px}
.note{font-size:13px;margin:2px 0 8px}
.absent{background:#fff;border:1px dashed #c3c9d0;border-radius:6px;padding:10px 12px;color:var(--muted)}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0 6px}
.tile{flex:1 1 140px;min-width:0;background:#fff;border-radius:6px;padding:8px 12px;border-left:7px solid var(--none)}
.tile b{display:block;font-size:26px;line-height:1.15}
.tile span{color:var(--muted);font-size:12px}
.tile.out{border-color:var(--out)}.tile.near{border-color:var(--near)}.tile.ok{border-color:var(--ok)}
.tile.none{border-color:var(--none)}.tile.warn{border-color:var(--near)}.tile.bad{border-color:var(--out)}
.tile.calm{border-color:var(--ok)}.tile.zero{border-color:var(--track)}
.panel{background:#fff;border-radius:6px;padding:8px 12px;margin:8px 0}
.row{display:grid;grid-template-columns:minmax(0,16em) minmax(0,1fr) minmax(0,15em);gap:12px;
align-items:center;padding:4px 0;border-bottom:1px solid var(--line)}
.row:last-child{border-bottom:0}
.who{min-width:0}
.key{font-weight:600;overflow-wrap:anywhere}
.num{font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.num b{display:inline-block;min-width:3.4em}
svg{display:block;max-width:100%}
svg.bar{width:100%;height:18px}
svg.chart{width:100%;height:auto}
.track{fill:var(--track)}
.st-ok{fill:var(--ok)}.st-near{fill:var(--near)}.st-out{fill:var(--out)}.st-none{fill:var(--none)}
.held{fill:var(--muted);fill-opacity:.45}
.debt{fill:var(--debt)}
.capline{stroke:var(--ink);stroke-width:3}
.tick{stroke:#fff;stroke-width:4}
.col{fill:var(--ok)}.col-over{fill:var(--out)}
.axis{stroke:#9aa3ad;stroke-width:1}
.grid{stroke:#d5dae0;stroke-width:1;stroke-dasharray:4 4}
.reset{stroke:var(--ink);stroke-width:2;stroke-dasharray:6 4}
.lbl{font-size:13px;fill:var(--muted)}
.lbl-reset{font-size:12px;fill:var(--ink)}
.ev-exhausted{fill:var(--out)}.ev-shadow_denied{fill:var(--shadow)}.ev-threshold{fill:var(--near)}
.g-drawn{fill:var(--ok)}.g-live{fill:var(--live)}.g-expired{fill:var(--none)}.g-voided{fill:#c9ced4}
.sp-bar{fill:var(--ok)}
.bl-ok{fill:var(--ok)}.bl-warn{fill:var(--near)}.bl-bad{fill:var(--out)}
.chip{display:inline-block;font-size:11px;font-weight:600;border-radius:3px;padding:0 5px;margin-left:6px;
color:#fff;vertical-align:1px}
.chip.out{background:var(--out)}.chip.near{background:var(--near)}.chip.shadow{background:var(--shadow)}
.chip.debt{background:var(--debt)}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;color:var(--muted);margin:4px 0}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-2px;margin-right:4px}
table.facts{border-collapse:collapse;width:100%;max-width:760px}
table.facts td{padding:3px 8px 3px 0;border-bottom:1px solid var(--line);vertical-align:middle}
table.facts td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.facts td.b{width:40%}
footer{margin-top:26px;font-size:12px;color:var(--muted)}
@media (max-width:760px){.row{grid-template-columns:minmax(0,1fr)}table.facts td.b{width:30%}}
</style>
</head>
<body>
<main>
<h1>sqlite-quota usage report</h1>
<p class="meta"><b>' || hdb || '</b> as of ' || nowtext || ' UTC &middot; charts from '
  || sincetext || ' UTC, per ' || per || '</p>'
FROM rp_fmt;

-- The tiles: the counts a person reads first, coloured like the bars.
SELECT '<div class="tiles" id="summary">';
-- A tile is coloured only when its count is not 0: a red border around
-- "0 keys with no room" would draw the eye for nothing.
SELECT printf('<div class="tile %s" data-count="%d"><b>%,d</b><span>keys with no room now</span></div>',
              CASE WHEN n > 0 THEN 'out' ELSE 'zero' END, n, n)
  FROM (SELECT count(*) AS n FROM rp_k WHERE status = 'out');
SELECT printf('<div class="tile %s" data-count="%d"><b>%,d</b><span>keys at 80%% or more</span></div>',
              CASE WHEN n > 0 THEN 'near' ELSE 'zero' END, n, n)
  FROM (SELECT count(*) AS n FROM rp_k WHERE status = 'near');
SELECT printf('<div class="tile ok" data-count="%d"><b>%,d</b><span>keys below 80%%</span></div>', n, n)
  FROM (SELECT count(*) AS n FROM rp_k WHERE status = 'ok');
SELECT printf('<div class="tile none" data-count="%d"><b>%,d</b><span>keys without a cap</span></div>', n, n)
  FROM (SELECT count(*) AS n FROM rp_k WHERE status = 'none');
SELECT printf('<div class="tile calm"><b>%,d</b><span>units charged since %s (%,d charges)</span></div>',
              coalesce(sum(s), 0), (SELECT substr(sincetext, 1, 10) FROM rp_fmt), coalesce(sum(nspan), 0))
  FROM rp_tot;
-- @if events
SELECT printf('<div class="tile %s" data-count="%d"><b>%,d</b><span>times a key ran out since %s (and %,d shadow denial%s)</span></div>',
              CASE WHEN n > 0 THEN 'bad' ELSE 'calm' END, n, n, (SELECT substr(sincetext, 1, 10) FROM rp_fmt),
              sh, CASE WHEN sh = 1 THEN '' ELSE 's' END)
  FROM (SELECT count(*) FILTER (WHERE kind = 'exhausted') AS n,
               count(*) FILTER (WHERE kind = 'shadow_denied') AS sh FROM rp_ev);
-- @end events
SELECT printf('<div class="tile %s" data-count="%d"><b>%,d</b><span>ledger rows past retention (purge backlog)</span></div>',
              CASE WHEN ledger_past > 60 * (SELECT purge_limit FROM rp_opt) THEN 'bad'
                   WHEN ledger_past > (SELECT purge_limit FROM rp_opt) THEN 'warn' ELSE 'calm' END,
              ledger_past, ledger_past)
  FROM rp_store;
SELECT '</div>';
SELECT '<div class="legend"><span><i class="sw" style="background:var(--out)"></i>no room now</span>'
  || '<span><i class="sw" style="background:var(--near)"></i>80% or more of the limit</span>'
  || '<span><i class="sw" style="background:var(--ok)"></i>below 80%</span>'
  || '<span><i class="sw" style="background:var(--muted);opacity:.45"></i>held by live reservations</span>'
  || '<span><i class="sw" style="background:var(--debt)"></i>charged past the limit</span></div>';

------------------------------------------------------------ keys by room
SELECT '<h2 id="keys">Keys nearest their limit</h2>
<p class="note">Each bar is the key''s limit for the current period (its cap, plus live credits). '
  || 'The filled part is what is used; the grey part is held by live reservations. '
  || 'A bar that runs past a black line was charged past its limit.</p>
<div class="panel keys">';
CREATE TEMP TABLE rp_show AS
  SELECT k.*, w.txt AS whentxt,
         max(k.lim, k.used + k.reserved) AS scale,
         row_number() OVER (ORDER BY k.status = 'out' DESC, k.fill DESC, k.key) AS pos
  FROM rp_k AS k LEFT JOIN rp_when AS w ON w.key = k.key
  WHERE k.cap IS NOT NULL;
DELETE FROM rp_show WHERE pos > 30;
-- Alert thresholds of the shown keys, in units ('80%' of the cap, or '5000').
CREATE TEMP TABLE rp_tick(key TEXT, units REAL);
-- @if alert
WITH RECURSIVE sp(key, cap, rest, item) AS (
  SELECT key, cap, alert || ',', NULL FROM rp_show WHERE alert IS NOT NULL
  UNION ALL
  SELECT key, cap, substr(rest, instr(rest, ',') + 1), trim(substr(rest, 1, instr(rest, ',') - 1))
  FROM sp WHERE rest <> '')
INSERT INTO rp_tick
  SELECT key, CASE WHEN item LIKE '%\%' ESCAPE '\' THEN cap * CAST(rtrim(item, '%') AS REAL) / 100.0
                   ELSE CAST(item AS REAL) END
  FROM sp WHERE item IS NOT NULL AND item <> '';
-- @end alert
SELECT printf('<div class="row" data-key="%s" data-status="%s" data-used="%d" data-reserved="%d" data-cap="%d" data-credits="%d" data-limit="%d">',
              k.hkey, k.status, k.used, k.reserved, k.cap, coalesce(k.credits, 0), k.lim)
  || printf('<div class="who"><span class="key">%s</span>%s<div class="sub">%s%s</div></div>',
            k.hkey,
            CASE WHEN k.status = 'out' THEN '<span class="chip out">NO ROOM</span>'
                 WHEN k.status = 'near' THEN '<span class="chip near">80%+</span>' ELSE '' END
            || CASE WHEN k.enforce = 'shadow' THEN '<span class="chip shadow">shadow</span>' ELSE '' END,
            coalesce(k.period, 'lifetime'),
            CASE WHEN k.parent IS NOT NULL THEN ' &middot; in ' || k.hparent ELSE '' END)
  || printf('<svg class="bar" viewBox="0 0 1000 20" preserveAspectRatio="none" role="img" aria-label="%s: %s">',
            k.hkey, CASE WHEN k.lim > 0 THEN printf('%d%% of its limit', CAST(k.fill * 100 AS INTEGER))
                         ELSE 'a cap of 0: nothing allowed' END)
  || '<rect class="track" x="0" y="0" width="1000" height="20"/>'
  || CASE WHEN k.lim <= 0 THEN '<rect class="used st-out" x="0" y="0" width="1000" height="20"/>'
     ELSE printf('<rect class="used st-%s" x="0" y="0" width="%.1f" height="20"/>',
                 k.status, 1000.0 * min(k.used, k.lim) / k.scale)
       || CASE WHEN k.used > k.lim THEN printf('<rect class="debt" x="%.1f" y="0" width="%.1f" height="20"/>',
                 1000.0 * k.lim / k.scale, 1000.0 * (k.used - k.lim) / k.scale) ELSE '' END
       || CASE WHEN k.reserved > 0 THEN printf('<rect class="held" x="%.1f" y="0" width="%.1f" height="20"/>',
                 1000.0 * k.used / k.scale, 1000.0 * k.reserved / k.scale) ELSE '' END
       || coalesce((SELECT group_concat(printf('<line class="tick" x1="%.1f" x2="%.1f" y1="0" y2="20"/>',
                 1000.0 * t.units / k.scale, 1000.0 * t.units / k.scale), '')
                    FROM rp_tick AS t WHERE t.key = k.key AND t.units > 0 AND t.units < k.scale), '')
       || CASE WHEN k.scale > k.lim THEN printf('<line class="capline" x1="%.1f" x2="%.1f" y1="0" y2="20"/>',
                 1000.0 * k.lim / k.scale, 1000.0 * k.lim / k.scale) ELSE '' END
     END
  || '</svg>'
  || printf('<div class="num"><b>%s</b> %s of %s%s<div class="sub">%s</div></div></div>',
            CASE WHEN k.lim > 0 THEN printf('%d%%', CAST(k.fill * 100 AS INTEGER)) ELSE 'cap 0' END,
            printf('%,d', k.used), printf('%,d', k.lim),
            CASE WHEN k.reserved > 0 THEN printf(' + %,d held', k.reserved) ELSE '' END
            || CASE WHEN k.used > k.lim THEN printf('<span class="chip debt">%,d over</span>', k.used - k.lim) ELSE '' END
            || CASE WHEN coalesce(k.credits, 0) > 0 THEN printf('<div class="sub">cap %,d + %,d credits</div>', k.cap, k.credits) ELSE '' END,
            CASE WHEN k.status = 'out' AND k.retry_after IS NOT NULL THEN 'room again in ' || k.whentxt
                 WHEN k.status = 'out' AND k.resets_at IS NULL THEN 'a balance: it does not reset'
                 WHEN k.resets_at IS NOT NULL THEN 'resets in ' || k.whentxt
                 ELSE '' END)
  FROM rp_show AS k ORDER BY k.pos;
SELECT CASE WHEN n = 0 AND (SELECT count(*) FROM rp_show) = 0
            THEN '<p class="note">No key has a cap.</p>'
            WHEN n = 0 THEN ''
            ELSE printf('<p class="note">%,d more keys with a cap, all at %d%% of their limit or less.</p>',
                        n, CAST(mx * 100 AS INTEGER)) END
  FROM (SELECT count(*) AS n, max(fill) AS mx FROM rp_k
        WHERE cap IS NOT NULL AND key NOT IN (SELECT key FROM rp_show));
SELECT printf('<p class="note">%,d %s no cap (metered only)%s.</p>', n,
              CASE WHEN n = 1 THEN 'key has' ELSE 'keys have' END,
              CASE WHEN n > 0 THEN ': the most used ' || (
                SELECT group_concat(printf('<span class="key">%s</span> %,d', hkey, used), ', ')
                FROM (SELECT hkey, used FROM rp_k WHERE cap IS NULL ORDER BY used DESC, key LIMIT 5))
              ELSE '' END)
  FROM (SELECT count(*) AS n FROM rp_k WHERE cap IS NULL)
  WHERE n > 0;
SELECT '</div>';

------------------------------------------------------------ usage charts
-- Charts: a column per bucket, scaled to the panel's busiest bucket;
-- the red top of a column is what was charged past a limit (ledger
-- "over"). Dashed lines mark where the key's period reset. Plot area:
-- x 70..990, y 14..114 (viewBox 1000 x 140).
CREATE TEMP TABLE rp_panel AS
  SELECT 0 AS panel, NULL AS key, 'All keys' AS hkey,
         (SELECT coalesce(sum(s), 0) FROM rp_tot) AS total,
         (SELECT max(s) FROM rp_series WHERE panel = 0) AS ymax
  UNION ALL
  SELECT b.rank, b.key, b.hkey, b.s, (SELECT max(s) FROM rp_series WHERE panel = b.rank)
  FROM rp_busy AS b;
CREATE TEMP TABLE rp_geo AS
  SELECT sp.b0, sp.b1, sp.bucket, sp.since, sp.now, (sp.b1 - sp.b0 + 1) AS nb,
         920.0 / (sp.b1 - sp.b0 + 1) AS bw,
         max(1, (sp.b1 - sp.b0 + 1 + 9) / 10) AS every
  FROM rp_span AS sp;
SELECT '<h2 id="usage">Usage over time</h2>
<p class="note">Units charged per ' || per || ' (from the ledger): the whole store, then the busiest keys. '
  || 'Red: charges that took a key past its limit (marked over in the ledger). '
  || 'Dashed line: the key''s period reset.</p>'
  FROM rp_fmt;
-- @if events
SELECT '<p class="note">Triangles above the bars: the key ran out (red), or, a shadow key, would have denied (purple).</p>';
-- @end events
SELECT CASE WHEN (SELECT count(*) FROM rp_busy) = 0
  THEN '<p class="absent">No charges in the ledger since ' || (SELECT sincetext FROM rp_fmt) || ' UTC.</p>' ELSE '' END;
SELECT printf('<div class="panel chartbox" data-panel="%d"%s data-total="%d" data-ymax="%d">', p.panel,
              CASE WHEN p.key IS NULL THEN '' ELSE ' data-key="' || p.hkey || '"' END, p.total, coalesce(p.ymax, 0))
  || printf('<div><span class="key">%s</span> <span class="sub">%,d units since %s%s%s</span></div>',
            p.hkey, p.total, (SELECT substr(sincetext, 1, 16) FROM rp_fmt),
            CASE WHEN p.key IS NULL THEN ''
                 ELSE printf(' &middot; %d%% of all', CAST(100.0 * p.total / max(1, (SELECT total FROM rp_panel WHERE panel = 0)) AS INTEGER)) END,
            CASE WHEN p.key IS NULL THEN ''
                 ELSE ' &middot; ' || coalesce((SELECT coalesce(period, 'lifetime') FROM rp_key WHERE key = p.key), 'deleted key')
                   || CASE WHEN (SELECT period FROM rp_key WHERE key = p.key) = 'hour'
                             OR ((SELECT period FROM rp_key WHERE key = p.key) = 'day' AND g.bucket = 86400)
                           THEN ' (resets every bar or more often)'
                           WHEN (SELECT period FROM rp_key WHERE key = p.key) IN ('day', 'week', 'month', 'year')
                             AND NOT EXISTS (SELECT 1 FROM rp_reset WHERE key = p.key)
                           THEN ' (no reset in this span)'
                           ELSE '' END END)
  || printf('<svg class="chart" viewBox="0 0 1000 140" role="img" aria-label="%s: units charged per %s">',
            p.hkey, (SELECT per FROM rp_fmt))
  || printf('<line class="grid" x1="70" x2="990" y1="14" y2="14"/><text class="lbl" x="64" y="18" text-anchor="end">%s</text>',
            printf('%,d', coalesce(p.ymax, 0)))
  || '<text class="lbl" x="64" y="118" text-anchor="end">0</text>'
  || coalesce((SELECT group_concat(
       CASE WHEN s.s > 0 THEN printf('<rect class="col" data-b="%d" data-s="%d" x="%.2f" y="%.2f" width="%.2f" height="%.2f"/>',
              s.b, s.s, 70 + (s.b - g.b0) * g.bw + g.bw * 0.1, 114 - 100.0 * s.s / p.ymax, g.bw * 0.8, 100.0 * s.s / p.ymax)
            || CASE WHEN s.o > 0 THEN printf('<rect class="col-over" data-o="%d" x="%.2f" y="%.2f" width="%.2f" height="%.2f"/>',
              s.o, 70 + (s.b - g.b0) * g.bw + g.bw * 0.1, 114 - 100.0 * s.s / p.ymax, g.bw * 0.8, 100.0 * s.o / p.ymax) ELSE '' END
            ELSE '' END, '')
     FROM (SELECT * FROM rp_series WHERE panel = p.panel ORDER BY b) AS s), '')
  || '<line class="axis" x1="70" x2="990" y1="114" y2="114"/>'
  || coalesce((SELECT group_concat(printf('<text class="lbl" x="%.1f" y="132" text-anchor="middle">%s</text>',
       70 + (bk.b - g.b0 + 0.5) * g.bw,
       CASE WHEN g.bucket = 86400
            THEN CAST(strftime('%d', bk.b * g.bucket, 'unixepoch') AS INTEGER) || ' '
                 || substr('JanFebMarAprMayJunJulAugSepOctNovDec', 3 * CAST(strftime('%m', bk.b * g.bucket, 'unixepoch') AS INTEGER) - 2, 3)
            ELSE strftime('%H:00', bk.b * g.bucket, 'unixepoch') END), '')
     FROM (SELECT b FROM rp_bucket WHERE (b - (SELECT b0 FROM rp_geo)) % (SELECT every FROM rp_geo) = 0 ORDER BY b) AS bk), '')
  || coalesce((SELECT group_concat(printf('<line class="reset" data-at="%d" x1="%.2f" x2="%.2f" y1="8" y2="114"><title>period reset %s UTC</title></line>',
       r.at, 70 + (r.at - g.b0 * g.bucket) * g.bw / g.bucket, 70 + (r.at - g.b0 * g.bucket) * g.bw / g.bucket,
       datetime(r.at, 'unixepoch')), '')
     FROM (SELECT * FROM rp_reset WHERE key = p.key ORDER BY at) AS r), '')
-- @if events
  || coalesce((SELECT group_concat(printf('<path class="ev-%s" data-at="%d" d="M%.1f 12 l-5 -9 h10 z"><title>%s %s UTC</title></path>',
       e.kind, e.at, 70 + (e.at - g.b0 * g.bucket) * g.bw / g.bucket, e.kind, datetime(e.at, 'unixepoch')), '')
     FROM (SELECT * FROM rp_ev WHERE key = p.key AND kind IN ('exhausted', 'shadow_denied') ORDER BY at) AS e), '')
-- @end events
  || '</svg></div>'
  FROM rp_panel AS p, rp_geo AS g
  WHERE (SELECT count(*) FROM rp_busy) > 0
  ORDER BY p.panel;

------------------------------------------------------------------ denials
SELECT '<h2 id="denials">Denials and shadow denials</h2>';
-- @if events
SELECT '<p class="note">From the events table since ' || sincetext || ' UTC: '
  || '<span style="color:var(--out)">&#9660;</span> the key ran out (its room reached 0; it denies until it frees units), '
  || '<span style="color:var(--shadow)">&#9660;</span> a shadow key would have denied, '
  || '<span style="color:var(--near)">&#9679;</span> an alert threshold was crossed. '
  || 'Each is recorded once per key per period.</p>'
  FROM rp_fmt;
CREATE TEMP TABLE rp_evkey AS
  SELECT key, hkey,
         count(*) FILTER (WHERE kind = 'exhausted') AS nx,
         count(*) FILTER (WHERE kind = 'shadow_denied') AS ns,
         count(*) FILTER (WHERE kind = 'threshold') AS nt,
         max(at) AS last
  FROM rp_ev GROUP BY key;
SELECT CASE WHEN (SELECT count(*) FROM rp_evkey) = 0
  THEN '<p class="absent">No events since ' || (SELECT sincetext FROM rp_fmt) || ' UTC.</p>'
  ELSE '<div class="panel events">' END;
SELECT printf('<div class="row" data-key="%s" data-exhausted="%d" data-shadow="%d" data-threshold="%d">', k.hkey, k.nx, k.ns, k.nt)
  || printf('<div class="who"><span class="key">%s</span><div class="sub">last %s UTC</div></div>',
            k.hkey, datetime(k.last, 'unixepoch'))
  || '<svg class="bar" viewBox="0 0 1000 20" preserveAspectRatio="none" role="img" aria-label="events of ' || k.hkey || '">'
  || '<rect class="track" x="0" y="9" width="1000" height="2"/>'
  || (SELECT group_concat(CASE WHEN e.kind = 'threshold'
         THEN printf('<rect class="ev-threshold" data-at="%d" x="%.1f" y="5" width="6" height="10"/>', e.at,
                     1000.0 * (e.at - sp.since) / max(1, sp.now - sp.since) - 3)
         ELSE printf('<rect class="ev-%s" data-at="%d" x="%.1f" y="0" width="8" height="20"/>', e.kind, e.at,
                     1000.0 * (e.at - sp.since) / max(1, sp.now - sp.since) - 4) END, '')
      FROM (SELECT * FROM rp_ev WHERE key = k.key ORDER BY kind = 'threshold' DESC, at) AS e, rp_span AS sp)
  || '</svg>'
  || printf('<div class="num">%s</div></div>',
            trim(CASE WHEN k.nx > 0 THEN printf('<b style="color:var(--out)">%,d</b> ran out ', k.nx) ELSE '' END
              || CASE WHEN k.ns > 0 THEN printf('<b style="color:var(--shadow)">%,d</b> shadow ', k.ns) ELSE '' END
              || CASE WHEN k.nt > 0 THEN printf('%,d alerts', k.nt) ELSE '' END))
  FROM rp_evkey AS k
  ORDER BY k.nx + k.ns DESC, k.nt DESC, k.key
  LIMIT 20;
SELECT printf('<p class="note">%,d more keys with events.</p>', n - 20)
  FROM (SELECT count(*) AS n FROM rp_evkey) WHERE n > 20;
SELECT '</div>' WHERE (SELECT count(*) FROM rp_evkey) > 0;
-- @else events
SELECT '<p class="absent" id="no-events">This store has no <code>quota_events</code> table: the '
  || 'sqlite-quota that made it recorded no denials. Denied calls write no ledger row; the keys with no room now are '
  || 'the red bars above.</p>';
-- @end events

------------------------------------------------------------------ credits
SELECT '<h2 id="credits">Credits</h2>';
-- @if grants
SELECT CASE WHEN (SELECT count(*) FROM rp_grant) = 0
  THEN '<p class="absent">No grants.</p>'
  ELSE '<p class="note">Units granted to each key (credit packs, top-ups): '
    || '<span style="color:var(--ok)">&#9632;</span> drawn, <span style="color:var(--live)">&#9632;</span> live, '
    || '<span style="color:var(--none)">&#9632;</span> expired unused, <span style="color:#c9ced4">&#9632;</span> voided.</p>'
    || '<div class="panel credits">' END;
SELECT printf('<div class="row" data-key="%s" data-granted="%d" data-drawn="%d" data-live="%d" data-expired="%d" data-voided="%d">',
              g.hkey, g.granted, g.drawn, g.live, g.expired, g.voided)
  || printf('<div class="who"><span class="key">%s</span><div class="sub">%,d grant%s</div></div>',
            g.hkey, g.grants, CASE WHEN g.grants = 1 THEN '' ELSE 's' END)
  || '<svg class="bar" viewBox="0 0 1000 20" preserveAspectRatio="none" role="img" aria-label="credits of ' || g.hkey || '">'
  || '<rect class="track" x="0" y="0" width="1000" height="20"/>'
  || printf('<rect class="g-drawn" x="0" y="0" width="%.1f" height="20"/>', 1000.0 * g.drawn / max(1, g.granted))
  || printf('<rect class="g-live" x="%.1f" y="0" width="%.1f" height="20"/>',
            1000.0 * g.drawn / max(1, g.granted), 1000.0 * g.live / max(1, g.granted))
  || printf('<rect class="g-expired" x="%.1f" y="0" width="%.1f" height="20"/>',
            1000.0 * (g.drawn + g.live) / max(1, g.granted), 1000.0 * g.expired / max(1, g.granted))
  || printf('<rect class="g-voided" x="%.1f" y="0" width="%.1f" height="20"/>',
            1000.0 * (g.drawn + g.live + g.expired) / max(1, g.granted), 1000.0 * g.voided / max(1, g.granted))
  || '</svg>'
  || printf('<div class="num"><b>%s</b> live of %s granted<div class="sub">%s drawn%s%s</div></div></div>',
            printf('%,d', g.live), printf('%,d', g.granted), printf('%,d', g.drawn),
            CASE WHEN g.expired > 0 THEN printf(' &middot; %,d expired', g.expired) ELSE '' END,
            CASE WHEN g.voided > 0 THEN printf(' &middot; %,d voided', g.voided) ELSE '' END)
  FROM rp_grant AS g
  ORDER BY g.live DESC, g.granted DESC, g.key
  LIMIT 20;
SELECT printf('<p class="note">%,d more keys with grants.</p>', n - 20)
  FROM (SELECT count(*) AS n FROM rp_grant) WHERE n > 20;
SELECT '</div>' WHERE (SELECT count(*) FROM rp_grant) > 0;
-- @else grants
SELECT '<p class="absent" id="no-credits">This store has no <code>quota_grants</code> table: the '
  || 'sqlite-quota that made it had no credits.</p>';
-- @end grants

-------------------------------------------------------------------- store
-- Backlog bars: the share of each table that quota_purge() would remove
-- now. Blue while one quota_purge() call clears it (purge_limit rows),
-- orange beyond, red beyond what an hour of calls once a minute clears
-- (60 x purge_limit): then the purge job is likely not running.
SELECT '<h2 id="store">The store</h2>';
CREATE TEMP TABLE rp_bl(pos INTEGER, what TEXT, total INTEGER, past INTEGER, rule TEXT);
INSERT INTO rp_bl SELECT 1, 'ledger rows past retention', ledger, ledger_past,
  CASE WHEN (SELECT retention FROM rp_opt) = 'forever' THEN 'kept forever unless a key sets its retention'
       ELSE printf('kept %s unless a key sets its own', (SELECT CASE WHEN retention % 86400 = 0 THEN (retention / 86400) || ' days'
                                                               ELSE retention || ' s' END FROM rp_opt)) END
  FROM rp_store;
INSERT INTO rp_bl SELECT 2, 'request ids past the idempotency window', requests, requests_past,
  printf('remembered %s', (SELECT CASE WHEN idempotency % 3600 = 0 THEN (idempotency / 3600) || ' hours' ELSE idempotency || ' s' END FROM rp_opt))
  FROM rp_store;
INSERT INTO rp_bl SELECT 3, 'ended holds past the idempotency window', holds, holds_past,
  'settled, released or expired holds are kept one idempotency window'
  FROM rp_store;
SELECT '<div class="panel store"><table class="facts">';
SELECT printf('<tr id="backlog-%d" data-total="%s" data-past="%s"><td>%s<div class="sub">%s</div></td>', pos,
              coalesce(total, ''), coalesce(past, ''), what, rule)
  || CASE WHEN past IS NULL THEN '<td class="b"></td><td class="n">unknown</td></tr>'
     ELSE '<td class="b"><svg class="bar" viewBox="0 0 1000 20" preserveAspectRatio="none" role="img" aria-label="'
       || what || '"><rect class="track" x="0" y="0" width="1000" height="20"/>'
       || printf('<rect class="bl-%s" x="0" y="0" width="%.1f" height="20"/>',
                 CASE WHEN past > 60 * (SELECT purge_limit FROM rp_opt) THEN 'bad'
                      WHEN past > (SELECT purge_limit FROM rp_opt) THEN 'warn' ELSE 'ok' END,
                 1000.0 * past / max(1, total))
       || printf('</svg></td><td class="n"><b>%,d</b> of %,d</td></tr>', past, total) END
  FROM rp_bl ORDER BY pos;
SELECT '</table>';
SELECT printf('<p class="note">One <code>quota_purge()</code> call examines at most %,d rows of each table '
              || '(the table''s purge_limit): a full pass over the ledger takes %,d call%s. '
              || 'Blue: one call clears it; orange: more; red: more than an hour of calls once a minute '
              || '(is the purge job running?).</p>',
              (SELECT purge_limit FROM rp_opt), n, CASE WHEN n = 1 THEN '' ELSE 's' END)
  FROM (SELECT max(1, (ledger + (SELECT purge_limit FROM rp_opt) - 1) / (SELECT purge_limit FROM rp_opt)) AS n
        FROM rp_store);
SELECT '<table class="facts" id="sizes">';
SELECT printf('<tr><td>database file</td><td class="b"></td><td class="n"><b>%s</b></td></tr>',
              CASE WHEN bytes >= 1048576 THEN printf('%.1f MB', bytes / 1048576.0) ELSE printf('%,d KB', (bytes + 1023) / 1024) END)
  || CASE WHEN free > 0 THEN printf('<tr><td>free pages in it</td><td class="b"></td><td class="n">%s</td></tr>',
              CASE WHEN free >= 1048576 THEN printf('%.1f MB', free / 1048576.0) ELSE printf('%,d KB', (free + 1023) / 1024) END) ELSE '' END
  || CASE WHEN wal > 0 THEN printf('<tr><td>write-ahead log (-wal file)</td><td class="b"></td><td class="n">%s</td></tr>',
              CASE WHEN wal >= 1048576 THEN printf('%.1f MB', wal / 1048576.0) ELSE printf('%,d KB', (wal + 1023) / 1024) END) ELSE '' END
  || printf('<tr><td>keys</td><td class="b"></td><td class="n">%,d</td></tr>', keys)
  || printf('<tr><td>ledger rows</td><td class="b"></td><td class="n">%,d</td></tr>', ledger)
  || CASE WHEN holds IS NOT NULL THEN printf('<tr><td>holds (live and ended)</td><td class="b"></td><td class="n">%,d</td></tr>', holds) ELSE '' END
  || CASE WHEN requests IS NOT NULL THEN printf('<tr><td>request ids</td><td class="b"></td><td class="n">%,d</td></tr>', requests) ELSE '' END
  || CASE WHEN events IS NOT NULL THEN printf('<tr><td>events</td><td class="b"></td><td class="n">%,d</td></tr>', events) ELSE '' END
  FROM rp_store;
-- @if dbstat
SELECT printf('<tr class="space" data-name="%s" data-bytes="%d"><td>%s</td><td class="b"><svg class="bar" viewBox="0 0 1000 20" preserveAspectRatio="none" role="img" aria-label="space of %s">'
              || '<rect class="sp-bar" x="0" y="0" width="%.1f" height="20"/></svg></td><td class="n">%s</td></tr>',
              name, bytes, name, name, 1000.0 * bytes / (SELECT max(bytes) FROM rp_space2),
              CASE WHEN bytes >= 1048576 THEN printf('%.1f MB', bytes / 1048576.0) ELSE printf('%,d KB', (bytes + 1023) / 1024) END)
  FROM rp_space2 WHERE name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY bytes DESC, name LIMIT 12;
-- @end dbstat
SELECT '</table></div>';

SELECT printf('<footer>Written by <code>quotactl report</code> with sqlite-quota %s on SQLite %s, at %s UTC. '
              || 'Every figure is read from the store at that instant; the page fetches nothing.</footer>',
              quota_version(), sqlite_version(), nowtext)
  FROM rp_fmt;
SELECT '</main>
</body>
</html>';
