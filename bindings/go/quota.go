// Package sqlitequota compiles the sqlite-quota SQLite extension into a Go
// program that uses github.com/mattn/go-sqlite3, and registers it with
// SQLite so that every connection has the quota virtual table and the
// quota_* functions.
//
//	if err := sqlitequota.Register(); err != nil { ... }
//	db, err := sql.Open("sqlite3", "file:app.db?_txlock=immediate&_busy_timeout=5000")
//	...
//	var hold sql.NullInt64
//	err = db.QueryRow("SELECT quota_reserve(?, ?, ?)", "sk-live-1", 4000, "req-7f3a").Scan(&hold)
//
// The C sources (the repository's ext/*.c, included by the ext_*.c files
// of this directory) are compiled with SQLITE_CORE: the extension calls
// sqlite3_* directly, and the link resolves those calls to the SQLite that
// go-sqlite3 compiles into the program (or to the system library when the
// program is built with -tags libsqlite3). Compiling needs <sqlite3.h>
// (Debian: libsqlite3-dev).
//
// Register uses sqlite3_auto_extension, not a ConnectHook: go-sqlite3's
// ConnectHook hands over a *sqlite3.SQLiteConn whose sqlite3* handle is
// unexported, so a hook cannot call the extension's init function without
// reaching into go-sqlite3's internals. The auto-extension list is
// SQLite's public interface for compiled-in extensions: every connection
// that database/sql opens later for its pool gets the extension, under the
// plain "sqlite3" driver name, and a ConnectHook of your own stays free for
// PRAGMAs.
package sqlitequota

/*
#cgo CFLAGS: -std=gnu99 -Wall -Wextra -DSQLITE_CORE -I${SRCDIR}/../../ext
#cgo LDFLAGS: -lm
#include <sqlite3.h>
#include "quota.h"

static const char *quotaHeaderVersion(void){ return SQLITE_QUOTA_VERSION; }

static int quotaAutoExtension(void){
  return sqlite3_auto_extension((void(*)(void))sqlite3_quota_init);
}
static int quotaCancelAutoExtension(void){
  return sqlite3_cancel_auto_extension((void(*)(void))sqlite3_quota_init);
}
*/
import "C"

import (
	"fmt"

	// The SQLite the extension is linked with: go-sqlite3 compiles it into
	// the program (the blank import makes sure it is linked).
	_ "github.com/mattn/go-sqlite3"
)

//go:generate sh genext.sh

// Version is the version of the compiled-in extension: SQLITE_QUOTA_VERSION
// of ext/quota.h, read when the package is compiled, and what
// SELECT quota_version() returns.
var Version = C.GoString(C.quotaHeaderVersion())

// Register adds the extension to SQLite's auto-extension list: every
// connection opened afterwards, by any database/sql pool of go-sqlite3 or
// by any other user of the same SQLite in the process, has the quota module
// and functions. Connections already open are not changed. Calling it again
// is harmless (SQLite keeps one entry).
func Register() error {
	if rc := C.quotaAutoExtension(); rc != C.SQLITE_OK {
		return fmt.Errorf("sqlitequota: sqlite3_auto_extension: %s", C.GoString(C.sqlite3_errstr(rc)))
	}
	return nil
}

// Cancel takes the extension off the auto-extension list and reports
// whether it was there. Connections opened before keep it; a pool may
// still hold such connections.
func Cancel() bool {
	return C.quotaCancelAutoExtension() == 1
}
