-- A store at schema 3, as sqlite-quota 0.3.0 (commit a0e6c08) wrote it:
-- `sqlite3 DB .dump` after the session below; test/schema.test loads it and
-- checks the upgrade to schema 4 (quota_keyconf, quota_holdtime). Do not
-- regenerate it with a newer build: its point is to be what schema 3 was.
--
--   SELECT quota_clock('2026-11-20 09:00:00');
--   CREATE VIRTUAL TABLE quota USING quota(hold_ttl='10 minutes', idempotency='1 day', retention='90 days');
--   INSERT INTO quota(key, cap, period, anchor, parent, retention, note) VALUES
--     ('org', 10000, 'month', NULL, NULL, NULL, '{"plan":"pro"}'),
--     ('api', 20, 'rolling 1 minute', NULL, 'org', NULL, NULL),
--     ('jobs', 3, 'lifetime', NULL, NULL, NULL, 'concurrency'),
--     ('sk-1', 5000, 'day', NULL, 'org', NULL, NULL);
--   SELECT quota_consume('sk-1', 100, 'r-1');
--   SELECT quota_consume('api', 4, 'r-2');
--   SELECT quota_reserve('sk-1', 400, 'r-3');                 -- hold 1, live (the ordered lane)
--   SELECT quota_reserve('jobs', 1, 'job-1', '30 seconds');   -- hold 2, live (own ttl)
--   SELECT quota_reserve('jobs', 1, 'job-2', '1 hour');       -- hold 3, live (own ttl)
--   SELECT quota_reserve('sk-1', 50);                         -- hold 4, settled
--   SELECT quota_settle(4, 60);
--   SELECT quota_reserve('api', 2);                           -- hold 5, released
--   SELECT quota_release(5);
--   SELECT quota_clock('2026-11-20 09:00:20');
--   SELECT quota_consume('api', 3);
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
PRAGMA writable_schema=ON;
INSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql)VALUES('table','quota','quota',0,'CREATE VIRTUAL TABLE quota USING quota(hold_ttl=''10 minutes'', idempotency=''1 day'', retention=''90 days'')');
CREATE TABLE IF NOT EXISTS "quota_keys"(  id INTEGER PRIMARY KEY AUTOINCREMENT,  key TEXT NOT NULL UNIQUE,  cap INTEGER, period TEXT, kind INTEGER NOT NULL, len INTEGER NOT NULL,  anchor INTEGER, parent INTEGER, retention INTEGER,  used INTEGER NOT NULL, reserved INTEGER NOT NULL,  pstart INTEGER NOT NULL, oldest INTEGER,  wtotal INTEGER NOT NULL DEFAULT 0,  UNIQUE(parent, id));
INSERT INTO quota_keys VALUES(1,'org',10000,'month',4,0,NULL,NULL,NULL,167,400,1793491200,NULL,0);
INSERT INTO quota_keys VALUES(2,'api',20,'rolling 1 minute',6,60,NULL,1,NULL,7,0,0,1795165200,7);
INSERT INTO quota_keys VALUES(3,'jobs',3,'lifetime',0,0,NULL,NULL,NULL,0,2,0,NULL,0);
INSERT INTO quota_keys VALUES(4,'sk-1',5000,'day',2,0,NULL,1,NULL,160,400,1795132800,NULL,0);
CREATE TABLE IF NOT EXISTS "quota_notes"(id INTEGER PRIMARY KEY, note);
INSERT INTO quota_notes VALUES(1,'{"plan":"pro"}');
INSERT INTO quota_notes VALUES(3,'concurrency');
CREATE TABLE IF NOT EXISTS "quota_holds"(  id INTEGER PRIMARY KEY, key_id INTEGER NOT NULL,  amount INTEGER NOT NULL, expires INTEGER NOT NULL,  state INTEGER NOT NULL, charged INTEGER, ended INTEGER, request_id TEXT,  lane INTEGER NOT NULL, l0max INTEGER NOT NULL);
INSERT INTO quota_holds VALUES(1,4,400,1795165800,0,NULL,NULL,'r-3',0,1795165800);
INSERT INTO quota_holds VALUES(2,3,1,1795165230,0,NULL,NULL,'job-1',1,1795165800);
INSERT INTO quota_holds VALUES(3,3,1,1795168800,0,NULL,NULL,'job-2',1,1795165800);
INSERT INTO quota_holds VALUES(4,4,50,1795165800,1,60,1795165200,NULL,0,1795165800);
INSERT INTO quota_holds VALUES(5,2,2,1795165800,2,NULL,1795165200,NULL,0,1795165800);
CREATE TABLE IF NOT EXISTS "quota_expiry"(  expires INTEGER NOT NULL, hold_id INTEGER NOT NULL,  PRIMARY KEY(expires, hold_id)) WITHOUT ROWID;
INSERT INTO quota_expiry VALUES(1795165230,2);
INSERT INTO quota_expiry VALUES(1795168800,3);
CREATE TABLE IF NOT EXISTS "quota_ledger"(  id INTEGER PRIMARY KEY, key TEXT NOT NULL, amount INTEGER NOT NULL,  at INTEGER NOT NULL, request_id TEXT, hold_id INTEGER, meta TEXT,  over INTEGER NOT NULL, late INTEGER NOT NULL);
INSERT INTO quota_ledger VALUES(1,'sk-1',100,1795165200,'r-1',NULL,NULL,0,0);
INSERT INTO quota_ledger VALUES(2,'api',4,1795165200,'r-2',NULL,NULL,0,0);
INSERT INTO quota_ledger VALUES(3,'sk-1',60,1795165200,NULL,4,NULL,0,0);
INSERT INTO quota_ledger VALUES(4,'api',3,1795165220,NULL,NULL,NULL,0,0);
CREATE TABLE IF NOT EXISTS "quota_requests"(  id INTEGER PRIMARY KEY, key_id INTEGER NOT NULL, request_id TEXT NOT NULL,  op INTEGER NOT NULL, amount INTEGER NOT NULL, result INTEGER,  at INTEGER NOT NULL, UNIQUE(key_id, request_id));
INSERT INTO quota_requests VALUES(1,4,'r-1',2,100,1,1795165200);
INSERT INTO quota_requests VALUES(2,2,'r-2',2,4,2,1795165200);
INSERT INTO quota_requests VALUES(3,4,'r-3',1,400,1,1795165200);
INSERT INTO quota_requests VALUES(4,3,'job-1',1,1,2,1795165200);
INSERT INTO quota_requests VALUES(5,3,'job-2',1,1,3,1795165200);
CREATE TABLE IF NOT EXISTS "quota_window"(  key_id INTEGER NOT NULL, sec INTEGER NOT NULL, amount INTEGER NOT NULL,  total INTEGER NOT NULL, PRIMARY KEY(key_id, sec)) WITHOUT ROWID;
INSERT INTO quota_window VALUES(2,1795165200,4,4);
INSERT INTO quota_window VALUES(2,1795165220,3,7);
CREATE TABLE IF NOT EXISTS "quota_meta"(name TEXT PRIMARY KEY, value) WITHOUT ROWID;
INSERT INTO quota_meta VALUES('options','hold_ttl=600 idempotency=86400 retention=7776000 purge_limit=10000 clock=0');
INSERT INTO quota_meta VALUES('purgepos',0);
INSERT INTO quota_meta VALUES('schema',3);
INSERT INTO quota_meta VALUES('sweepid',1);
INSERT INTO quota_meta VALUES('swept',1795165220);
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('quota_keys',4);
PRAGMA writable_schema=OFF;
COMMIT;
