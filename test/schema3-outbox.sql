-- A store at schema 3, as sqlite-quota 0.3.0 (commit a0e6c08) wrote it:
-- `sqlite3 DB .dump` after the session below; test/schema.test loads it and
-- checks the upgrade to schema 4 (section 7.*: the key settings, the hold
-- times and the event outbox). Do not regenerate it with a newer build:
-- its point is to be what schema 3 looked like.
--
--   SELECT quota_clock('2026-03-15 12:00:00');
--   CREATE VIRTUAL TABLE quota USING quota(hold_ttl='10 minutes', idempotency='1 hour', retention='90 days');
--   INSERT INTO quota(key, cap, period, anchor, parent, retention, note) VALUES
--     ('org', 1000, 'month', NULL, NULL, NULL, '{"plan":"team","seats":12}'),
--     ('alice', 300, 'day', NULL, 'org', NULL, 'alice@example.com'),
--     ('bob', 200, 'rolling 1 hour', NULL, 'org', NULL, NULL),
--     ('trial', 50, 'lifetime', NULL, NULL, 30, 'free trial'),
--     ('billing', 5000, 'month', '2026-01-31 00:00:00', NULL, NULL, NULL);
--   SELECT quota_consume('alice', 40, 'r-1');
--   SELECT quota_consume('bob', 25, 'r-2', '{"model":"small"}');
--   SELECT quota_clock('2026-03-15 12:00:30');
--   SELECT quota_consume('bob', 5);
--   SELECT quota_reserve('alice', 60, 'r-3');
--   SELECT quota_settle(1, 55);
--   SELECT quota_reserve('bob', 20, 'r-4');
--   SELECT quota_reserve('trial', 10, NULL, '2 hours');
--   SELECT quota_consume('trial', 7);
--   SELECT quota_consume('billing', 120, 'inv-9');
--   SELECT quota_reserve('org', 100);
--   SELECT quota_release(4);
--
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
PRAGMA writable_schema=ON;
INSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql)VALUES('table','quota','quota',0,'CREATE VIRTUAL TABLE quota USING quota(hold_ttl=''10 minutes'', idempotency=''1 hour'', retention=''90 days'')');
CREATE TABLE IF NOT EXISTS "quota_keys"(  id INTEGER PRIMARY KEY AUTOINCREMENT,  key TEXT NOT NULL UNIQUE,  cap INTEGER, period TEXT, kind INTEGER NOT NULL, len INTEGER NOT NULL,  anchor INTEGER, parent INTEGER, retention INTEGER,  used INTEGER NOT NULL, reserved INTEGER NOT NULL,  pstart INTEGER NOT NULL, oldest INTEGER,  wtotal INTEGER NOT NULL DEFAULT 0,  UNIQUE(parent, id));
INSERT INTO quota_keys VALUES(1,'org',1000,'month',4,0,NULL,NULL,NULL,125,20,1772323200,NULL,0);
INSERT INTO quota_keys VALUES(2,'alice',300,'day',2,0,NULL,1,NULL,95,0,1773532800,NULL,0);
INSERT INTO quota_keys VALUES(3,'bob',200,'rolling 1 hour',6,3600,NULL,1,NULL,30,20,0,1773576000,30);
INSERT INTO quota_keys VALUES(4,'trial',50,'lifetime',0,0,NULL,NULL,30,7,10,0,NULL,0);
INSERT INTO quota_keys VALUES(5,'billing',5000,'month',4,0,1769817600,NULL,NULL,120,0,1772236800,NULL,0);
CREATE TABLE IF NOT EXISTS "quota_notes"(id INTEGER PRIMARY KEY, note);
INSERT INTO quota_notes VALUES(1,'{"plan":"team","seats":12}');
INSERT INTO quota_notes VALUES(2,'alice@example.com');
INSERT INTO quota_notes VALUES(4,'free trial');
CREATE TABLE IF NOT EXISTS "quota_holds"(  id INTEGER PRIMARY KEY, key_id INTEGER NOT NULL,  amount INTEGER NOT NULL, expires INTEGER NOT NULL,  state INTEGER NOT NULL, charged INTEGER, ended INTEGER, request_id TEXT,  lane INTEGER NOT NULL, l0max INTEGER NOT NULL);
INSERT INTO quota_holds VALUES(1,2,60,1773576630,1,55,1773576030,'r-3',0,1773576630);
INSERT INTO quota_holds VALUES(2,3,20,1773576630,0,NULL,NULL,'r-4',0,1773576630);
INSERT INTO quota_holds VALUES(3,4,10,1773583230,0,NULL,NULL,NULL,1,1773576630);
INSERT INTO quota_holds VALUES(4,1,100,1773576630,2,NULL,1773576030,NULL,0,1773576630);
CREATE TABLE IF NOT EXISTS "quota_expiry"(  expires INTEGER NOT NULL, hold_id INTEGER NOT NULL,  PRIMARY KEY(expires, hold_id)) WITHOUT ROWID;
INSERT INTO quota_expiry VALUES(1773583230,3);
CREATE TABLE IF NOT EXISTS "quota_ledger"(  id INTEGER PRIMARY KEY, key TEXT NOT NULL, amount INTEGER NOT NULL,  at INTEGER NOT NULL, request_id TEXT, hold_id INTEGER, meta TEXT,  over INTEGER NOT NULL, late INTEGER NOT NULL);
INSERT INTO quota_ledger VALUES(1,'alice',40,1773576000,'r-1',NULL,NULL,0,0);
INSERT INTO quota_ledger VALUES(2,'bob',25,1773576000,'r-2',NULL,'{"model":"small"}',0,0);
INSERT INTO quota_ledger VALUES(3,'bob',5,1773576030,NULL,NULL,NULL,0,0);
INSERT INTO quota_ledger VALUES(4,'alice',55,1773576030,'r-3',1,NULL,0,0);
INSERT INTO quota_ledger VALUES(5,'trial',7,1773576030,NULL,NULL,NULL,0,0);
INSERT INTO quota_ledger VALUES(6,'billing',120,1773576030,'inv-9',NULL,NULL,0,0);
CREATE TABLE IF NOT EXISTS "quota_requests"(  id INTEGER PRIMARY KEY, key_id INTEGER NOT NULL, request_id TEXT NOT NULL,  op INTEGER NOT NULL, amount INTEGER NOT NULL, result INTEGER,  at INTEGER NOT NULL, UNIQUE(key_id, request_id));
INSERT INTO quota_requests VALUES(1,2,'r-1',2,40,1,1773576000);
INSERT INTO quota_requests VALUES(2,3,'r-2',2,25,2,1773576000);
INSERT INTO quota_requests VALUES(3,2,'r-3',1,60,1,1773576030);
INSERT INTO quota_requests VALUES(4,3,'r-4',1,20,2,1773576030);
INSERT INTO quota_requests VALUES(5,5,'inv-9',2,120,6,1773576030);
CREATE TABLE IF NOT EXISTS "quota_window"(  key_id INTEGER NOT NULL, sec INTEGER NOT NULL, amount INTEGER NOT NULL,  total INTEGER NOT NULL, PRIMARY KEY(key_id, sec)) WITHOUT ROWID;
INSERT INTO quota_window VALUES(3,1773576000,25,25);
INSERT INTO quota_window VALUES(3,1773576030,5,30);
CREATE TABLE IF NOT EXISTS "quota_meta"(name TEXT PRIMARY KEY, value) WITHOUT ROWID;
INSERT INTO quota_meta VALUES('options','hold_ttl=600 idempotency=3600 retention=7776000 purge_limit=10000 clock=0');
INSERT INTO quota_meta VALUES('purgepos',0);
INSERT INTO quota_meta VALUES('schema',3);
INSERT INTO quota_meta VALUES('sweepid',0);
INSERT INTO quota_meta VALUES('swept',1773576030);
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('quota_keys',5);
PRAGMA writable_schema=OFF;
COMMIT;
