-- sqlite-quota in ten minutes: a tutorial session run by `make demo`.
-- It works on build/demo.db, a real database file, in the sqlite3 shell.
.bail on
.headers on
.mode box --wrap 200
.load ./quota

.print
.print == 1. A quota table, on a real file in WAL mode
PRAGMA journal_mode = WAL;
CREATE VIRTUAL TABLE quota USING quota(hold_ttl = '10 minutes');

-- Pin the clock so the session reads the same every time it runs.
-- Without this, sqlite-quota uses the system clock (UTC).
SELECT quota_clock('2026-11-23 09:00:00') AS now;

.print
.print == 2. Two keys: an API key with a monthly token cap, an account with a lifetime balance
INSERT INTO quota(key, cap, period, note)
  VALUES ('sk-live-1', 100000, 'month', '{"owner":"alice"}');
INSERT INTO quota(key, cap, period)
  VALUES ('acct:9', 50, 'lifetime');
SELECT key, cap, period, used, remaining, resets_at FROM quota;

.print
.print == 3. Reserve an estimate before an LLM call, settle the actual cost after it
-- 4000 tokens held while the call runs; 'req-7f3a' makes a retry safe.
SELECT quota_reserve('sk-live-1', 4000, 'req-7f3a') AS hold_id;
SELECT key, used, reserved, remaining FROM quota WHERE key = 'sk-live-1';
-- The call used 2712 tokens: charge them, release the other 1288.
SELECT quota_settle(1, 2712, '{"model":"gpt-4o"}') AS charged;
SELECT key, used, reserved, remaining FROM quota WHERE key = 'sk-live-1';

.print
.print == 4. A retried request is not charged twice
-- The client timed out and sent req-7f3a again: the same hold comes back,
-- and settling it again returns the first charge.
SELECT quota_reserve('sk-live-1', 4000, 'req-7f3a') AS same_hold,
       quota_settle(1, 2712) AS same_charge;
SELECT key, used, reserved FROM quota WHERE key = 'sk-live-1';

.print
.print == 5. A failed call releases its hold: nothing leaks
SELECT quota_reserve('sk-live-1', 9000) AS hold_id;
SELECT quota_release(2) AS released;
SELECT key, used, reserved FROM quota WHERE key = 'sk-live-1';

.print
.print == 6. A denial, and the status a 429 response can carry
SELECT quota_consume('acct:9', 30, 'img-1') AS ledger_id;
SELECT quota_consume('acct:9', 30, 'img-2') AS denied;       -- NULL: 20 remain
SELECT quota_status('acct:9', 30) AS status;
-- A lifetime balance never resets: code insufficient_quota, no retry_after.
-- A monthly cap that is exhausted says rate_limit_exceeded and when to retry:
SELECT quota_record('sk-live-1', 97500) AS recorded;           -- metering, past-cap allowed
SELECT quota_status('sk-live-1', 500) AS status;

.print
.print == 7. The month rolls over on first use after its end, no cron job needed
SELECT quota_clock('2026-12-01 00:00:05') AS now;
SELECT key, used, remaining, period_start, resets_at FROM quota WHERE key = 'sk-live-1';
SELECT quota_consume('sk-live-1', 1200, 'req-8b1c') AS ledger_id;
SELECT key, used, remaining, period_start, resets_at FROM quota WHERE key = 'sk-live-1';

.print
.print == 8. Reserve what fits: between 256 and 4000 tokens, and set max_tokens from it
INSERT INTO quota(key, cap, period) VALUES ('sk-trial', 5000, 'day');
SELECT quota_consume('sk-trial', 3500) AS ledger_id;
-- Not enough left for 4000, plenty for a smaller answer: hold the 1500 left.
SELECT quota_reserve_upto('sk-trial', 256, 4000, 'req-9d2e') AS hold_id;
SELECT quota_hold(3) ->> '$.amount' AS max_tokens, quota_hold(3) AS hold;
SELECT quota_settle(3, 1320) AS charged;
-- Not even 256 left: denied, as a 429.
SELECT quota_reserve_upto('sk-trial', 256, 4000) AS denied;

.print
.print == 9. Leases: at most 2 jobs at once, and a crashed worker cannot leak its slot
INSERT INTO quota(key, cap) VALUES ('jobs:acme', 2);
-- Each job holds a slot for 30 s and renews it while it runs.
SELECT quota_reserve('jobs:acme', 1, 'job-1', 30) AS lease_1,
       quota_reserve('jobs:acme', 1, 'job-2', 30) AS lease_2,
       quota_reserve('jobs:acme', 1, 'job-3', 30) AS lease_3_waits;
SELECT quota_clock('2026-12-01 00:00:25') AS now;
-- Worker 1 sends its heartbeat; worker 2 has crashed and sends none.
SELECT quota_extend(4, 30) AS lease_1_expires;
SELECT quota_clock('2026-12-01 00:00:40') AS now;
-- Worker 2's lease ran out at 00:00:35: its slot is free for job 3.
SELECT quota_reserve('jobs:acme', 1, 'job-3', 30) AS lease_3;
-- Worker 2 comes back too late: its heartbeat is refused, it must stop.
SELECT quota_extend(5, 30) AS lease_2_refused, quota_hold(5) ->> '$.state' AS state;
SELECT key, used, reserved, remaining FROM quota WHERE key = 'jobs:acme';

.print
.print == 10. A token bucket: 2 requests a second, bursts of 5
INSERT INTO quota(key, cap, period) VALUES ('ip:203.0.113.7', 5, 'rate 2 per second');
-- 8 requests in the same second: the burst of 5 passes, 3 are refused.
WITH RECURSIVE request(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM request WHERE n < 8)
SELECT count(quota_consume('ip:203.0.113.7', 1)) AS passed FROM request;
SELECT quota_status('ip:203.0.113.7') AS status;
-- Two seconds later 4 tokens are back.
SELECT quota_clock('2026-12-01 00:00:42') AS now;
SELECT key, cap, period, used, remaining FROM quota WHERE key = 'ip:203.0.113.7';

.print
.print == 11. Alerts for operators, and a new limit tried in shadow mode
-- Tell operators when sk-live-1 reaches 80% and 100% of its monthly cap.
UPDATE quota SET alert = '80%, 100%' WHERE key = 'sk-live-1';
SELECT quota_record('sk-live-1', 85000) AS ledger_id;
-- A new key whose cap is tried before it is enforced: shadow mode never
-- denies, but says what it would have done.
INSERT INTO quota(key, cap, period, enforce, alert)
  VALUES ('sk-beta', 1000, 'day', 'shadow', '100%');
SELECT quota_consume('sk-beta', 800) AS ledger_id;
SELECT quota_consume('sk-beta', 400) AS granted_anyway;
SELECT quota_status('sk-beta') ->> '$.allowed' AS allowed,
       quota_status('sk-beta') ->> '$.would_deny' AS would_deny;
SELECT key, used, cap, alert, enforce FROM quota WHERE alert IS NOT NULL;
-- The events, written in each charge's own transaction: the outbox that an
-- alerting job reads with WHERE id > (the last id it handled).
SELECT id, key, kind, detail, used, cap, datetime(at, 'unixepoch') AS at
  FROM quota_events ORDER BY id;
-- Satisfied with the new limit: enforce it.
UPDATE quota SET enforce = 'hard' WHERE key = 'sk-beta';
SELECT quota_consume('sk-beta', 1) AS denied_now;

.print
.print == 12. Credits: a free monthly allowance, then a purchased pack, drawn in one charge
INSERT INTO quota(key, cap, period, rollover) VALUES ('user:42', 1000, 'month', 500);
-- A 5,000-unit pack bought through a payment webhook: a retried webhook grants it once.
SELECT quota_grant('user:42', 5000, '365 days', 10, 'stripe:pi_3Nx8', '{"pack":"5k"}') AS pack,
       quota_grant('user:42', 5000, '365 days', 10, 'stripe:pi_3Nx8', '{"pack":"5k"}') AS retried;
SELECT key, cap, used, credits, remaining FROM quota WHERE key = 'user:42';
-- 1,200 units: the 1,000 of the month first, then 200 from the pack.
SELECT quota_consume('user:42', 1200) AS ledger_id;
SELECT ledger_id, grant_id, amount FROM quota_draws;
SELECT key, cap, used, credits, remaining FROM quota WHERE key = 'user:42';

.print
.print == 13. The ledger: every charge, who, when, how much, and why
SELECT id, key, amount, datetime(at, 'unixepoch') AS at, request_id, hold_id,
       meta, over, late
  FROM quota_ledger ORDER BY id;

.print
.print == 14. Admin: raise a cap, reset usage, check the store
UPDATE quota SET cap = 60 WHERE key = 'acct:9';
UPDATE quota SET used = 0 WHERE key = 'sk-live-1';
SELECT key, cap, used, remaining FROM quota;
SELECT quota_integrity() AS integrity;
