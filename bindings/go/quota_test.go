package sqlitequota_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	sqlitequota "sqlite-quota/bindings/go"
)

func TestMain(m *testing.M) {
	if err := sqlitequota.Register(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// openDB opens a database/sql pool on a fresh file: WAL, a busy timeout of
// 5 s, and the DSN parameters given (such as "_txlock=immediate").
func openDB(t *testing.T, file string, params ...string) *sql.DB {
	t.Helper()
	dsn := "file:" + file + "?" + strings.Join(append([]string{"_busy_timeout=5000", "_journal_mode=WAL"}, params...), "&")
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func execSQL(t *testing.T, db *sql.DB, sqlText string, args ...any) {
	t.Helper()
	if _, err := db.Exec(sqlText, args...); err != nil {
		t.Fatalf("%s: %v", sqlText, err)
	}
}

// one runs a query that returns one value into dest.
func one(t *testing.T, q interface {
	QueryRow(string, ...any) *sql.Row
}, dest any, sqlText string, args ...any) {
	t.Helper()
	if err := q.QueryRow(sqlText, args...).Scan(dest); err != nil {
		t.Fatalf("%s: %v", sqlText, err)
	}
}

func usedReserved(t *testing.T, db *sql.DB, key string) (used, reserved int64) {
	t.Helper()
	if err := db.QueryRow("SELECT used, reserved FROM quota WHERE key = ?", key).Scan(&used, &reserved); err != nil {
		t.Fatal(err)
	}
	return
}

// status is quota_status's JSON.
type status struct {
	Key        string  `json:"key"`
	Allowed    bool    `json:"allowed"`
	Code       *string `json:"code"`
	Cap        *int64  `json:"cap"`
	Used       int64   `json:"used"`
	Reserved   int64   `json:"reserved"`
	Remaining  *int64  `json:"remaining"`
	ResetsAt   *string `json:"resets_at"`
	RetryAfter *int64  `json:"retry_after"`
	LimitedBy  string  `json:"limited_by"`
}

func quotaStatus(t *testing.T, db *sql.DB, key string, amount int64) status {
	t.Helper()
	var text string
	one(t, db, &text, "SELECT quota_status(?, ?)", key, amount)
	var s status
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	return s
}

// sqliteError is err as go-sqlite3's error, or fails the test.
func sqliteError(t *testing.T, err error) sqlite3.Error {
	t.Helper()
	var e sqlite3.Error
	if !errors.As(err, &e) {
		t.Fatalf("not a sqlite3.Error: %#v", err)
	}
	return e
}

func TestVersion(t *testing.T) {
	header, err := os.ReadFile("../../ext/quota.h")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^#define SQLITE_QUOTA_VERSION +"([^"]+)"`).FindSubmatch(header)
	if m == nil {
		t.Fatal("no SQLITE_QUOTA_VERSION in ext/quota.h")
	}
	db := openDB(t, filepath.Join(t.TempDir(), "v.db"))
	var v, linked string
	one(t, db, &v, "SELECT quota_version()")
	one(t, db, &linked, "SELECT sqlite_version()")
	// test/go.test compares it with the system library's version.
	t.Logf("linked SQLite %s", linked)
	if sqlitequota.Version != string(m[1]) || v != string(m[1]) {
		t.Fatalf("ext/quota.h %s, Version %s, quota_version() %s", m[1], sqlitequota.Version, v)
	}
}

// The ext_*.c files include exactly the sources of ext/ (genext.sh).
func TestExtSourcesListed(t *testing.T) {
	sources, _ := filepath.Glob("../../ext/*.c")
	var want, got []string
	for _, s := range sources {
		want = append(want, "ext_"+filepath.Base(s))
	}
	wrappers, _ := filepath.Glob("ext_*.c")
	for _, w := range wrappers {
		text, err := os.ReadFile(w)
		if err != nil {
			t.Fatal(err)
		}
		inc := fmt.Sprintf("#include \"../../ext/%s\"", strings.TrimPrefix(w, "ext_"))
		if !strings.Contains(string(text), inc) {
			t.Errorf("%s does not contain %s", w, inc)
		}
		got = append(got, w)
	}
	sort.Strings(want)
	sort.Strings(got)
	if len(want) == 0 || strings.Join(want, " ") != strings.Join(got, " ") {
		t.Fatalf("ext/ has %v, the package compiles %v: run go generate (sh genext.sh)", want, got)
	}
}

func TestLifecycle(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "life.db"))
	// One connection: the pinned clock belongs to it.
	db.SetMaxOpenConns(1)
	execSQL(t, db, "SELECT quota_clock('2026-01-31 10:00:00')")
	execSQL(t, db, "CREATE VIRTUAL TABLE quota USING quota")
	execSQL(t, db, "INSERT INTO quota(key, cap, period) VALUES ('sk-live-1', 100, 'day')")

	var hold, hold2, charged, released sql.NullInt64
	one(t, db, &hold, "SELECT quota_reserve(?, ?, ?)", "sk-live-1", 60, "req-1")
	one(t, db, &hold2, "SELECT quota_reserve(?, ?, ?)", "sk-live-1", 50, "req-2")
	if hold != (sql.NullInt64{Int64: 1, Valid: true}) || hold2.Valid {
		t.Fatalf("holds %v %v", hold, hold2)
	}
	s := quotaStatus(t, db, "sk-live-1", 50)
	if s.Allowed || *s.Code != "rate_limit_exceeded" || *s.RetryAfter != 50400 || *s.Remaining != 40 || s.Reserved != 60 {
		t.Fatalf("status %+v", s)
	}
	one(t, db, &charged, "SELECT quota_settle(?, ?, ?)", hold.Int64, 42, `{"model":"m1"}`)
	if charged.Int64 != 42 {
		t.Fatalf("charged %v", charged)
	}
	one(t, db, &released, "SELECT quota_release(quota_reserve(?, ?, ?))", "sk-live-1", 50, "req-2")
	if released.Int64 != 50 {
		t.Fatalf("released %v", released)
	}
	var id sql.NullInt64
	one(t, db, &id, "SELECT quota_consume(?, ?, ?)", "sk-live-1", 8, "req-3")
	if id.Int64 != 2 {
		t.Fatalf("consume %v", id)
	}
	// A retried request id is not charged twice.
	one(t, db, &id, "SELECT quota_consume(?, ?, ?)", "sk-live-1", 8, "req-3")
	if id.Int64 != 2 {
		t.Fatalf("retried consume %v", id)
	}
	if u, r := usedReserved(t, db, "sk-live-1"); u != 50 || r != 0 {
		t.Fatalf("used %d reserved %d", u, r)
	}
	var text string
	one(t, db, &text, "SELECT quota_status('sk-live-1')")
	if text != `{"key":"sk-live-1","allowed":true,"code":null,"cap":100,"used":50,"reserved":0,"remaining":50,"resets_at":"2026-02-01 00:00:00","retry_after":null,"limited_by":"sk-live-1","credits":0,"would_deny":false}` {
		t.Fatal(text)
	}

	// Errors: sqlite3.Error, with the extension's message; nothing changed.
	for _, c := range []struct {
		sql      string
		code     sqlite3.ErrNo
		extended sqlite3.ErrNoExtended
		message  string
	}{
		{"SELECT quota_reserve('nobody', 1)", sqlite3.ErrError, 1, "quota_reserve: no such quota key: 'nobody'"},
		{"SELECT quota_reserve('sk-live-1', -1)", sqlite3.ErrMismatch, 20, "quota_reserve: amount must be a non-negative integer, not -1"},
		{"SELECT quota_settle(2, 1)", sqlite3.ErrError, 1, "quota_settle: hold 2 was released"},
	} {
		var v sql.NullInt64
		err := db.QueryRow(c.sql).Scan(&v)
		e := sqliteError(t, err)
		if e.Code != c.code || e.ExtendedCode != c.extended || e.Error() != c.message {
			t.Errorf("%s: %d %d %q", c.sql, e.Code, e.ExtendedCode, e.Error())
		}
	}
	if u, r := usedReserved(t, db, "sk-live-1"); u != 50 || r != 0 {
		t.Fatalf("after the errors: used %d reserved %d", u, r)
	}
}

// A hard balance denies with insufficient_quota and no retry_after; a
// rolling window with rate_limit_exceeded and retry_after >= 1.
func TestDenialCodes(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "codes.db"))
	execSQL(t, db, "CREATE VIRTUAL TABLE quota USING quota")
	execSQL(t, db, "INSERT INTO quota(key, cap, period) VALUES ('balance', 10, NULL), ('window', 10, 'rolling 1 hour')")
	for _, c := range []struct {
		key, code string
		retry     bool
	}{{"balance", "insufficient_quota", false}, {"window", "rate_limit_exceeded", true}} {
		var hold sql.NullInt64
		one(t, db, &hold, "SELECT quota_reserve(?, 1000)", c.key)
		s := quotaStatus(t, db, c.key, 1000)
		if hold.Valid || s.Allowed || s.Code == nil || *s.Code != c.code ||
			(s.RetryAfter != nil) != c.retry || (c.retry && *s.RetryAfter < 1) {
			t.Errorf("%s: hold %v status %+v", c.key, hold, s)
		}
	}
}

// writerHoldingTheLock charges 1 to 'k' on another pool inside
// BEGIN IMMEDIATE and keeps the write lock for hold before it commits; it
// returns once the lock is taken, and a channel closed after the commit.
func writerHoldingTheLock(t *testing.T, file, requestID string, hold time.Duration) <-chan struct{} {
	t.Helper()
	w := openDB(t, file, "_txlock=immediate")
	tx, err := w.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := tx.QueryRow("SELECT quota_consume('k', 1, ?)", requestID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		time.Sleep(hold)
		if err := tx.Commit(); err != nil {
			t.Error(err)
		}
		close(done)
	}()
	return done
}

// go-sqlite3 starts a database/sql transaction with a plain (DEFERRED)
// BEGIN unless the DSN says _txlock=immediate. A deferred transaction that
// reads, then makes a quota call while another connection writes, fails at
// once with SQLITE_BUSY whatever the busy timeout: SQLite cannot let a
// reader wait for the write lock without risking a deadlock. With
// _txlock=immediate, Begin() waits for the lock (up to the busy timeout)
// and the transaction then goes through.
func TestTxLock(t *testing.T) {
	const hold = time.Second
	file := filepath.Join(t.TempDir(), "txlock.db")
	deferred := openDB(t, file)
	immediate := openDB(t, file, "_txlock=immediate")
	execSQL(t, deferred, "CREATE VIRTUAL TABLE quota USING quota")
	execSQL(t, deferred, "INSERT INTO quota(key, cap) VALUES ('k', 100)")

	t.Run("deferred gets SQLITE_BUSY at once", func(t *testing.T) {
		done := writerHoldingTheLock(t, file, "writer-1", hold)
		start := time.Now()
		tx, err := deferred.Begin()
		if err != nil {
			t.Fatal(err)
		}
		var used, id int64
		one(t, tx, &used, "SELECT used FROM quota WHERE key = 'k'")
		err = tx.QueryRow("SELECT quota_consume('k', 1, 'reader')").Scan(&id)
		elapsed := time.Since(start)
		tx.Rollback()
		e := sqliteError(t, err)
		if e.Code != sqlite3.ErrBusy || e.Error() != "quota_consume: database is locked" {
			t.Fatalf("got %d %q", e.Code, e.Error())
		}
		if elapsed > hold/2 {
			t.Fatalf("the deferred transaction waited %v", elapsed)
		}
		<-done
		// Nothing of the failed call stayed: only the writer's charge.
		if u, r := usedReserved(t, deferred, "k"); u != 1 || r != 0 {
			t.Fatalf("used %d reserved %d", u, r)
		}
	})

	t.Run("immediate waits for the lock", func(t *testing.T) {
		done := writerHoldingTheLock(t, file, "writer-2", hold)
		start := time.Now()
		tx, err := immediate.Begin()
		if err != nil {
			t.Fatal(err)
		}
		waited := time.Since(start)
		var used, id int64
		one(t, tx, &used, "SELECT used FROM quota WHERE key = 'k'")
		one(t, tx, &id, "SELECT quota_consume('k', 1, 'reader')")
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		<-done
		if waited < hold/2 {
			t.Fatalf("Begin() waited only %v", waited)
		}
		if used != 2 {
			t.Fatalf("read used %d, want both writers' 2", used)
		}
		if u, r := usedReserved(t, deferred, "k"); u != 3 || r != 0 {
			t.Fatalf("used %d reserved %d", u, r)
		}
	})
}

// Goroutines sharing a pool of 8 connections consume from one key: exactly
// as many calls succeed as fit, none fails, and usage never passes the cap.
func TestConcurrentConsumeNeverOverspends(t *testing.T) {
	const cap, amount, goroutines, calls = 100, 7, 8, 10
	db := openDB(t, filepath.Join(t.TempDir(), "consume.db"))
	db.SetMaxOpenConns(goroutines)
	execSQL(t, db, "CREATE VIRTUAL TABLE quota USING quota")
	execSQL(t, db, "INSERT INTO quota(key, cap) VALUES ('k', ?)", cap)

	var granted, denied atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			<-start
			for i := 0; i < calls; i++ {
				var id sql.NullInt64
				if err := db.QueryRow("SELECT quota_consume('k', ?, ?)", amount, fmt.Sprintf("g%d-%d", g, i)).Scan(&id); err != nil {
					t.Error(err)
					return
				}
				if id.Valid {
					granted.Add(1)
				} else {
					denied.Add(1)
				}
			}
		}(g)
	}
	close(start)
	wg.Wait()
	if granted.Load() != cap/amount || denied.Load() != goroutines*calls-cap/amount {
		t.Fatalf("granted %d denied %d", granted.Load(), denied.Load())
	}
	var rows, sum int64
	if err := db.QueryRow("SELECT count(*), sum(amount) FROM quota_ledger").Scan(&rows, &sum); err != nil {
		t.Fatal(err)
	}
	if u, r := usedReserved(t, db, "k"); u != cap/amount*amount || r != 0 || rows != cap/amount || sum != u {
		t.Fatalf("used %d reserved %d ledger %d rows, %d units", u, r, rows, sum)
	}
}

// The gateway's fan-out: 20 requests from 5 goroutines reserve 20 tokens
// each on a hard balance of 100, hold them for 100 ms of model time, then
// settle 15. The holds overlap; spend never exceeds the cap; every refusal
// is insufficient_quota without retry_after.
func TestConcurrentReservationsNeverOverspend(t *testing.T) {
	const cap, maxTokens, tokens, goroutines, perGoroutine = 100, 20, 15, 5, 4
	db := openDB(t, filepath.Join(t.TempDir(), "fanout.db"))
	db.SetMaxOpenConns(goroutines)
	execSQL(t, db, "CREATE VIRTUAL TABLE quota USING quota")
	execSQL(t, db, "INSERT INTO quota(key, cap) VALUES ('acct', NULL)")
	execSQL(t, db, "INSERT INTO quota(key, cap, parent) VALUES ('sk', ?, 'acct')", cap)

	var served, refused, mostReserved atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			<-start
			for i := 0; i < perGoroutine; i++ {
				var hold sql.NullInt64
				if err := db.QueryRow("SELECT quota_reserve('sk', ?, ?)", maxTokens, fmt.Sprintf("req-%d-%d", g, i)).Scan(&hold); err != nil {
					t.Error(err)
					return
				}
				if !hold.Valid {
					var code sql.NullString
					var retry sql.NullInt64
					if err := db.QueryRow("SELECT json_extract(s, '$.code'), json_extract(s, '$.retry_after') FROM (SELECT quota_status('sk', ?) AS s)", maxTokens).Scan(&code, &retry); err != nil {
						t.Error(err)
						return
					}
					if code.String != "insufficient_quota" || retry.Valid {
						t.Errorf("refused with %v, retry_after %v", code, retry)
					}
					refused.Add(1)
					continue
				}
				var used, reserved int64
				if err := db.QueryRow("SELECT used, reserved FROM quota WHERE key = 'sk'").Scan(&used, &reserved); err != nil {
					t.Error(err)
					return
				}
				if used+reserved > cap {
					t.Errorf("used %d + reserved %d > %d", used, reserved, cap)
				}
				for m := mostReserved.Load(); reserved > m && !mostReserved.CompareAndSwap(m, reserved); m = mostReserved.Load() {
				}
				time.Sleep(100 * time.Millisecond) // the model call
				var charged int64
				if err := db.QueryRow("SELECT quota_settle(?, ?)", hold.Int64, tokens).Scan(&charged); err != nil {
					t.Error(err)
					return
				}
				served.Add(1)
			}
		}(g)
	}
	close(start)
	wg.Wait()
	ok := served.Load()
	if ok+refused.Load() != goroutines*perGoroutine || ok < 1 || refused.Load() < 1 || ok > 6 {
		t.Fatalf("served %d refused %d", ok, refused.Load())
	}
	if mostReserved.Load() < 2*maxTokens {
		t.Fatalf("no two holds were in flight together (most reserved %d): the test ran serially", mostReserved.Load())
	}
	u, r := usedReserved(t, db, "sk")
	au, ar := usedReserved(t, db, "acct")
	if u > cap || u != ok*tokens || r != 0 || au != u || ar != 0 {
		t.Fatalf("key used %d reserved %d, account used %d reserved %d, %d served", u, r, au, ar, ok)
	}
	var integrity string
	one(t, db, &integrity, "SELECT quota_integrity()")
	if integrity != "ok" {
		t.Fatal(integrity)
	}
}

// Cancel takes the extension off the list: a new connection lacks it, one
// opened before keeps it. Register puts it back.
func TestCancel(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cancel.db")
	before := openDB(t, file)
	before.SetMaxOpenConns(1)
	var v string
	one(t, before, &v, "SELECT quota_version()")
	if !sqlitequota.Cancel() || sqlitequota.Cancel() {
		t.Fatal("Cancel: the extension was not registered exactly once")
	}
	after := openDB(t, file)
	err := after.QueryRow("SELECT quota_version()").Scan(&v)
	if err == nil || err.Error() != "no such function: quota_version" {
		t.Errorf("after Cancel: %v", err)
	}
	one(t, before, &v, "SELECT quota_version()")
	if err := sqlitequota.Register(); err != nil {
		t.Fatal(err)
	}
	if err := sqlitequota.Register(); err != nil {
		t.Fatal(err)
	}
	again := openDB(t, file)
	one(t, again, &v, "SELECT quota_version()")
	if !sqlitequota.Cancel() || sqlitequota.Cancel() {
		t.Fatal("Register twice must leave one entry")
	}
	if err := sqlitequota.Register(); err != nil {
		t.Fatal(err)
	}
}

// go-sqlite3 compiles SQLite with SQLITE_DEFAULT_WAL_SYNCHRONOUS=1: a WAL
// connection runs with synchronous=NORMAL (1) unless the DSN says
// _synchronous=FULL (2).
func TestWALSynchronous(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sync.db")
	for _, c := range []struct {
		params []string
		want   int
	}{{nil, 1}, {[]string{"_synchronous=FULL"}, 2}} {
		db := openDB(t, file, c.params...)
		var mode string
		var sync int
		one(t, db, &mode, "PRAGMA journal_mode")
		one(t, db, &sync, "PRAGMA synchronous")
		if mode != "wal" || sync != c.want {
			t.Errorf("%v: journal_mode %s synchronous %d, want wal %d", c.params, mode, sync, c.want)
		}
	}
}
