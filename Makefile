# sqlite-quota: atomic quota accounting for SQLite.
#
#   make          build the loadable extension ./quota.so
#   make demo     build it and run the tutorial session on build/demo.db
#   make test     build everything and run every test (ends "N passed, N failed")
#   make install  install quota.so (PREFIX=/usr/local, DESTDIR honoured)
#   make clean
#
# Test and tool drivers: every test/NAME.c and tool/NAME.c is built as
# build/NAME, with the extension compiled in (-DSQLITE_CORE) and linked
# against the system libsqlite3.

CC       ?= cc
CFLAGS   ?= -O2
WARN      = -Wall -Wextra
PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib
TCLSH    ?= tclsh
SQLITE3  ?= sqlite3

EXT_SRC   = $(sort $(wildcard ext/*.c))
EXT_HDR   = $(sort $(wildcard ext/*.h))
SO        = quota.so
TEST_BIN  = $(patsubst test/%.c,build/%,$(wildcard test/*.c))
TOOL_BIN  = $(patsubst tool/%.c,build/%,$(wildcard tool/*.c))

.PHONY: all demo test deps-build deps-test install clean drivers

all: $(SO)

deps-build:
	@sh tool/deps.sh build

deps-test:
	@sh tool/deps.sh test

# The loadable library is not linked against libsqlite3: the host supplies it.
$(SO): $(EXT_SRC) $(EXT_HDR) | deps-build
	$(CC) -std=c99 $(CFLAGS) $(WARN) -fPIC -shared -fvisibility=hidden \
	    -o $@ $(EXT_SRC)

build:
	@mkdir -p build

build/%: test/%.c $(EXT_SRC) $(EXT_HDR) | build deps-build
	$(CC) -std=gnu99 $(CFLAGS) $(WARN) -DSQLITE_CORE -Iext -o $@ $< $(EXT_SRC) -lsqlite3 -lm

build/%: tool/%.c $(EXT_SRC) $(EXT_HDR) | build deps-build
	$(CC) -std=gnu99 $(CFLAGS) $(WARN) -DSQLITE_CORE -Iext -o $@ $< $(EXT_SRC) -lsqlite3 -lm

drivers: $(TEST_BIN) $(TOOL_BIN)

demo: $(SO) | deps-test build
	@rm -f build/demo.db build/demo.db-wal build/demo.db-shm
	$(SQLITE3) -bail build/demo.db < tool/demo.sql

test: deps-test $(SO) drivers
	$(TCLSH) test/all.tcl

install: $(SO)
	install -d $(DESTDIR)$(LIBDIR)
	install -m 0755 $(SO) $(DESTDIR)$(LIBDIR)/$(SO)

clean:
	rm -rf build $(SO) libsqlite_quota.a
