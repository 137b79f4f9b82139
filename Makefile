# sqlite-quota: atomic quota accounting for SQLite.
#
#   make             build the loadable extension ./quota.so
#   make demo        build it and run the tutorial session on build/demo.db
#   make test        build everything and run every test (ends "N passed, N failed")
#   make newest      the C test drivers again, against the newest SQLite (below)
#   make static      libsqlite_quota.a (compiled with SQLITE_CORE) and ext/quota.h
#   make python      the Python wheel build/dist/sqlite_quota-VERSION-py3-none-PLATFORM.whl
#   make install     quota.so, libsqlite_quota.a, quota.h, sqlite-quota.pc
#                    (PREFIX=/usr/local, DESTDIR honoured)
#   make asan        the whole suite with AddressSanitizer + UBSan
#   make valgrind    the whole suite under valgrind
#   make coverage    branch coverage of ext/ (gcovr)
#   make bench       the benchmark (bench/quotabench.c); bench-quick for a short run
#   make bench-peers sqlite-quota next to Redis and PostgreSQL doing the same quota
#                    work (bench/peers.c, about 8 minutes; bench-peers-quick under 2;
#                    starts and stops its own servers, see bench/peers.sh);
#                    bench-peers-diag: sqlite-quota's tail latency and scaling
#   make fuzz        libFuzzer runs of test/fuzz/*.c (FUZZ_SECONDS each, default 60)
#   make analyze     gcc -fanalyzer, cppcheck, clang-tidy-14, scan-build-14 on ext/
#   make rust        the Rust crate (bindings/rust): cargo test, system and
#                    bundled SQLite (test/rust.test; make test runs it too)
#   make go          the Go package (bindings/go): go test with go-sqlite3's
#                    and the system SQLite (test/go.test; make test too)
#   make dqlite      build/quota-dqlite-node, a dqlite node serving the extension
#                    (installs libdqlite-dev and go-dqlite as root)
#   make test-dqlite a 3-node dqlite cluster on 127.0.0.1 with a leader failover
#                    (make test runs it too: as root it installs the packages)
#   make report-bench times tool/quotactl report on 10 million ledger rows
#                    (build/report-10m.db, made once by build/reportstore)
#   make report-png  doc/report.png: the demo database's usage report in
#                    headless Chromium
#   make clean
#
# Test drivers and benchmarks: every test/NAME.c and bench/NAME.c is built as
# build/NAME, with the extension compiled in (-DSQLITE_CORE) and linked
# against the system libsqlite3. make newest builds every test/NAME.c and
# fuzz replay driver a second time, as build/newest/NAME, against the newest
# SQLite amalgamation (see NEWEST_SQLITE).

CC       ?= cc
CFLAGS   ?= -O2
WARN      = -Wall -Wextra
PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib
INCDIR   ?= $(PREFIX)/include
BINDIR   ?= $(PREFIX)/bin
TCLSH    ?= tclsh
SQLITE3  ?= sqlite3

EXT_SRC   = $(sort $(wildcard ext/*.c))
EXT_HDR   = $(sort $(wildcard ext/*.h))
SO        = quota.so
# Programs an operator runs beside an application (tool/NAME.c): POSIX C
# against the system libsqlite3, with nothing of ext/ compiled in.
TOOL_BIN    = build/quota-checkpointer
TOOL_CFLAGS = -std=c99 -D_POSIX_C_SOURCE=200809L $(WARN)

#-------------------------------------------------------------------------
# How each kind of thing is compiled, said once. A build adds its own
# optimisation flags: $(CFLAGS), or those of the sanitized and coverage
# builds below.
#
# ext/ is C99.
EXT_CFLAGS    = -std=c99 $(WARN)
# quota.so is position independent and exports only sqlite3_quota_init; it
# is not linked against libsqlite3 (the host supplies it).
EXT_PIC_FLAGS = -fPIC -fvisibility=hidden
EXT_SO_FLAGS  = $(EXT_PIC_FLAGS) -shared
EXT_LIBS      = -lm
# The C drivers (test/NAME.c, bench/NAME.c, the fuzz replays, the dqlite
# node) use POSIX calls (fork, kill, setenv), hence gnu99, and have ext/
# compiled in (SQLITE_CORE), linked against the system libsqlite3 unless
# said otherwise.
DRIVER_CFLAGS = -std=gnu99 $(WARN) -DSQLITE_CORE -Iext
DRIVER_LIBS   = -lsqlite3 -lm
DRIVER_HDR    = $(wildcard test/*.h)
# AddressSanitizer + UBSan, with ALWAYS()/NEVER() asserted (QUOTA_DEBUG):
# build/san/quota.so for make test, and everything make asan builds.
SAN_FLAGS     = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
                -fno-sanitize-recover=undefined -DQUOTA_DEBUG

# Test drivers and benchmarks: every test/NAME.c and bench/NAME.c, found by
# name (vpath), is built by one pattern rule per kind of build: build/NAME,
# build/newest/NAME, build/asan/NAME, build/cov/NAME.
DRIVER_DIRS = test bench
vpath %.c $(DRIVER_DIRS)
TEST_BIN  = $(patsubst test/%.c,build/%,$(wildcard test/*.c))
BENCH_BIN = $(patsubst bench/%.c,build/%,$(filter-out bench/peers.c,$(wildcard bench/*.c)))
# Fuzz targets: a replay build for make test (any compiler, no libFuzzer),
# and libFuzzer builds for make fuzz.
FUZZ_TARGETS = $(patsubst test/fuzz/%.c,%,$(filter-out test/fuzz/replay.c,$(wildcard test/fuzz/*.c)))
FUZZ_REPLAY  = $(patsubst %,build/fuzz_replay_%,$(FUZZ_TARGETS))
FUZZ_CFLAGS  = -Itest/fuzz
FUZZ_REPLAY_SRC = test/fuzz/replay.c
FUZZ_DEPS    = test/fuzz/replay.c test/fuzz/fuzz_common.h
FUZZ_SECONDS ?= 60
# The dqlite node (contrib/dqlite) links libdqlite: built by its own target
# (make dqlite).
DQLITE_NODE    = build/quota-dqlite-node
DQLITE_SRC     = contrib/dqlite/quota-dqlite-node.c
DQLITE_LIBS    = -ldqlite
DQLITE_PKGS    = libdqlite-dev go-dqlite
# Non-empty when the dqlite packages are installed (when this Makefile is
# read): make coverage then builds an instrumented node too.
DQLITE_PRESENT = $(and $(wildcard /usr/include/dqlite.h),$(shell command -v dqlite 2>/dev/null))

.PHONY: all demo test deps-build deps-demo deps-test install clean drivers static dqlite-if-possible \
        asan valgrind coverage bench bench-quick bench-peers bench-peers-quick bench-peers-diag FORCE \
        npm node-deps python \
        dqlite test-dqlite deps-dqlite fuzz fuzz-replay analyze newest newest-if-present \
        coverage-build rust go

all: $(SO) $(TOOL_BIN)

deps-build:
	@sh tool/deps.sh build

deps-demo:
	@sh tool/deps.sh demo

deps-test:
	@sh tool/deps.sh test

# quota_debug() reports the commit and the flags of the build.
COMMIT   := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DEBUGDEF  = -DQUOTA_COMMIT='"$(COMMIT)"' -DQUOTA_CFLAGS='"$(CFLAGS)"'

$(SO): $(EXT_SRC) $(EXT_HDR) | deps-build
	$(CC) $(EXT_CFLAGS) $(CFLAGS) $(DEBUGDEF) $(EXT_SO_FLAGS) -o $@ $(EXT_SRC) $(EXT_LIBS)

build:
	@mkdir -p build

#-------------------------------------------------------------------------
# The drivers, against the system SQLite: build/NAME from test/NAME.c or
# bench/NAME.c, build/fuzz_replay_NAME from test/fuzz/NAME.c.
#
build/%: %.c $(DRIVER_HDR) $(EXT_SRC) $(EXT_HDR) | build deps-build
	$(CC) $(DRIVER_CFLAGS) $(CFLAGS) -o $@ $< $(EXT_SRC) $(DRIVER_LIBS)

build/fuzz_replay_%: test/fuzz/%.c $(FUZZ_DEPS) $(EXT_SRC) $(EXT_HDR) | build deps-build
	$(CC) $(DRIVER_CFLAGS) $(CFLAGS) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_REPLAY_SRC) $(EXT_SRC) $(DRIVER_LIBS)

fuzz-replay: $(FUZZ_REPLAY)

build/quota-checkpointer: tool/quota-checkpointer.c | build deps-build
	$(CC) $(TOOL_CFLAGS) $(CFLAGS) -o $@ $< -lsqlite3

drivers: $(TEST_BIN) $(BENCH_BIN) $(FUZZ_REPLAY) $(TOOL_BIN)

# A second SQLite: the newest release's amalgamation, as the npm package
# better-sqlite3 ships it in deps/sqlite3/ (make node-deps installs it into
# build/node from the npm registry; it is never committed). sqlite3.c is
# compiled once into build/newest/sqlite3.o, the extension once into
# build/newest/ext/, and every test driver and fuzz replay driver is linked
# with them (no -lsqlite3) as build/newest/NAME. make test does this when the
# amalgamation is there, and test/newest.test runs the drivers' suites again
# against it (without it, both say that the second SQLite is skipped).
NEWEST_SQLITE ?= build/node/node_modules/better-sqlite3/deps/sqlite3
NEWEST_DIR     = build/newest
# The drivers need nothing beyond the defaults: oomtest's SQLITE_CONFIG_MALLOC,
# the VFSes of iofault and crashtest, WAL and sqlite3_load_extension (txn_codes
# loads quota.so) are all in a default build.
NEWEST_DEFS    = -DSQLITE_THREADSAFE=1
NEWEST_OBJ     = $(NEWEST_DIR)/sqlite3.o $(patsubst ext/%.c,$(NEWEST_DIR)/ext/%.o,$(EXT_SRC))
NEWEST_BIN     = $(patsubst build/%,$(NEWEST_DIR)/%,$(TEST_BIN) $(FUZZ_REPLAY))
NEWEST_CFLAGS  = $(DRIVER_CFLAGS) $(CFLAGS) -I$(NEWEST_SQLITE)
NEWEST_LIBS    = -lm -lpthread -ldl

newest: $(NEWEST_OBJ) $(NEWEST_BIN)

$(NEWEST_DIR)/sqlite3.o: $(NEWEST_SQLITE)/sqlite3.c $(NEWEST_SQLITE)/sqlite3.h
	@mkdir -p $(NEWEST_DIR)
	$(CC) $(CFLAGS) $(NEWEST_DEFS) -c -o $@ $<

$(NEWEST_DIR)/ext/%.o: ext/%.c $(EXT_HDR) $(NEWEST_SQLITE)/sqlite3.h
	@mkdir -p $(NEWEST_DIR)/ext
	$(CC) $(NEWEST_CFLAGS) -c -o $@ $<

$(NEWEST_DIR)/%: %.c $(DRIVER_HDR) $(NEWEST_OBJ)
	$(CC) $(NEWEST_CFLAGS) -o $@ $< $(NEWEST_OBJ) $(NEWEST_LIBS)

$(NEWEST_DIR)/fuzz_replay_%: test/fuzz/%.c $(FUZZ_DEPS) $(NEWEST_OBJ)
	$(CC) $(NEWEST_CFLAGS) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_REPLAY_SRC) $(NEWEST_OBJ) $(NEWEST_LIBS)

# libFuzzer (clang) with ASan and UBSan, each target for FUZZ_SECONDS on a
# scratch copy of its committed corpus (new inputs stay in build/fuzz/).
FUZZER_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZER_BIN   = $(patsubst %,build/fuzz/%,$(FUZZ_TARGETS))

build/fuzz/%: test/fuzz/%.c test/fuzz/fuzz_common.h $(EXT_SRC) $(EXT_HDR) | build
	@mkdir -p build/fuzz
	clang $(DRIVER_CFLAGS) $(FUZZER_FLAGS) $(FUZZ_CFLAGS) -o $@ $< $(EXT_SRC) $(DRIVER_LIBS)

fuzz: $(FUZZER_BIN)
	for t in $(FUZZ_TARGETS); do \
	  rm -rf build/fuzz/corpus-$$t; cp -r test/fuzz/corpus/$$t build/fuzz/corpus-$$t; \
	  build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=60 \
	      -artifact_prefix=build/fuzz/$$t- build/fuzz/corpus-$$t \
	      || exit 1; \
	done

# make demo needs only what it uses: the compiler (for quota.so) and sqlite3.
demo: $(SO) | deps-demo build
	@rm -f build/demo.db build/demo.db-wal build/demo.db-shm
	$(SQLITE3) -bail build/demo.db < tool/demo.sql

# test/sanitize.test runs a few suites against this ASan+UBSan build (and
# one under valgrind): the bounded form of make asan and make valgrind. If
# the compiler cannot build it, the test says so and skips.
SAN_SO     = build/san/quota.so
SAN_SO_CMD = $(CC) $(EXT_CFLAGS) $(SAN_FLAGS) $(EXT_SO_FLAGS) -o $@ $(EXT_SRC) $(EXT_LIBS)
$(SAN_SO): $(EXT_SRC) $(EXT_HDR) | build
	@mkdir -p $(@D)
	-$(SAN_SO_CMD)

# The second SQLite is looked for after node-deps has run (it may have just
# fetched it), so not with $(wildcard) when this Makefile is read.
test: deps-test $(SO) $(SAN_SO) libsqlite_quota.a drivers node-deps newest-if-present \
      dqlite-if-possible report-browser-if-possible
	NEWEST_SQLITE=$(NEWEST_SQLITE) $(TCLSH) test/all.tcl

# make test, asan, valgrind and coverage all run test/newest.test: its
# drivers must be as new as ext/ and test/.
newest-if-present: node-deps
	@if [ -f $(NEWEST_SQLITE)/sqlite3.c ]; then \
	  $(MAKE) --no-print-directory newest || exit 1; \
	else \
	  echo "newest: SKIPPED: no SQLite amalgamation in $(NEWEST_SQLITE) (make node-deps);" \
	       "the drivers run against the system SQLite only"; \
	fi

deps-dqlite:
	@sh tool/deps.sh dqlite

# test/report.test renders the usage report in headless Chromium: as root
# tool/deps.sh installs Debian's chromium. Where it cannot, this says why in
# one line, test/report.test prints "report: SKIPPED" and make test goes on
# (what tool/deps.sh said is in build/report-deps.log).
.PHONY: report-browser-if-possible report-bench report-png
report-browser-if-possible: | build
	@sh tool/deps.sh report 2>build/report-deps.log \
	  || echo "report: SKIPPED: chromium could not be installed, see build/report-deps.log" \
	          "(run: apt-get install -y --no-install-recommends chromium)"

# make test, asan, valgrind and coverage run test/dqlite.test (the 3-node
# leader failover) every time: as root tool/deps.sh installs dqlite's Debian
# packages (apt-get update, apt-get install -y) and the node is built.
# Where either cannot be done this says why in one line, test/dqlite.test
# skips, and make test goes on (what tool/deps.sh said is in
# build/dqlite-deps.log).
dqlite-if-possible: | build
	@if sh tool/deps.sh dqlite 2>build/dqlite-deps.log; then \
	  $(MAKE) --no-print-directory $(DQLITE_NODE) \
	    || echo "dqlite: SKIPPED: build/quota-dqlite-node did not build (run: make dqlite)"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "dqlite: SKIPPED: installing $(DQLITE_PKGS) failed, see build/dqlite-deps.log" \
	       "(run: apt-get update && apt-get install -y $(DQLITE_PKGS))"; \
	else \
	  echo "dqlite: SKIPPED: $(DQLITE_PKGS) not installed, and only root can install them" \
	       "(run: apt-get install -y $(DQLITE_PKGS))"; \
	fi

dqlite: $(DQLITE_NODE)

$(DQLITE_NODE): $(DQLITE_SRC) $(EXT_SRC) $(EXT_HDR) | build deps-dqlite
	$(CC) $(DRIVER_CFLAGS) $(CFLAGS) -o $@ $< $(EXT_SRC) $(DQLITE_LIBS) $(DRIVER_LIBS)

test-dqlite: deps-test $(SO) $(DQLITE_NODE)
	$(TCLSH) test/all.tcl test/dqlite.test

# The Node clients the tests use (Node 22, better-sqlite3, libsql), from the
# npm registry into build/node; if that fails, the Node tests say so and skip.
node-deps: | build
	-@sh tool/node-setup.sh build/node

# The npm package sqlite-quota: build/npm/sqlite-quota-VERSION.tgz
npm: $(SO) | build
	sh bindings/node/pack.sh build/npm

# The Python package sqlite-quota: build/dist/sqlite_quota-VERSION-py3-none-
# PLATFORM.whl with quota.so inside, written by bindings/python/build_wheel.py
# (standard library only, no network); see bindings/python/README.md.
python: $(SO) | build
	@rm -f build/dist/sqlite_quota-*.whl
	python3 bindings/python/build_wheel.py $(SO) ext/quota.h build/dist

# The Rust crate and the Go package compile ext/*.c themselves (build.rs,
# cgo). Their tests: cargo test and go test, run and reported by these Tcl
# files, which keep their builds in build/rust-target and build/go (crates
# in ~/.cargo) and skip when the toolchain or the registry is missing.
rust: | build
	$(TCLSH) test/all.tcl test/rust.test

go: | build
	$(TCLSH) test/all.tcl test/go.test

# Static library: the same sources with SQLITE_CORE, for programs that
# register the extension with sqlite3_auto_extension() (see ext/quota.h).
static: libsqlite_quota.a

STATIC_OBJ = $(patsubst ext/%.c,build/static/%.o,$(EXT_SRC))

build/static/%.o: ext/%.c $(EXT_HDR) | build deps-build
	@mkdir -p build/static
	$(CC) $(EXT_CFLAGS) $(CFLAGS) $(DEBUGDEF) -fPIC -DSQLITE_CORE -c $< -o $@

libsqlite_quota.a: $(STATIC_OBJ)
	rm -f $@
	ar rcs $@ $(STATIC_OBJ)

install: $(SO) libsqlite_quota.a $(TOOL_BIN)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(BINDIR)
	install -m 0755 $(TOOL_BIN) $(DESTDIR)$(BINDIR)/
	install -m 0755 $(SO) $(DESTDIR)$(LIBDIR)/$(SO)
	install -m 0644 libsqlite_quota.a $(DESTDIR)$(LIBDIR)/libsqlite_quota.a
	install -m 0644 ext/quota.h $(DESTDIR)$(INCDIR)/quota.h
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCDIR@|$(INCDIR)|' \
	    -e "s|@VERSION@|$$(sed -n 's/.*SQLITE_QUOTA_VERSION *\"\(.*\)\".*/\1/p' ext/quota.h)|" \
	    tool/sqlite-quota.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/sqlite-quota.pc

#-------------------------------------------------------------------------
# The whole suite against a sanitized quota.so (preloaded runtimes, since
# tclsh and sqlite3 are not instrumented) and sanitized drivers, all in
# build/asan.
ASAN_DIR = build/asan
ASAN_BIN = $(patsubst build/%,$(ASAN_DIR)/%,$(TEST_BIN) $(BENCH_BIN) $(FUZZ_REPLAY))
ASAN_ENV = ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
           UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
           LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)"

$(ASAN_DIR)/quota.so: $(EXT_SRC) $(EXT_HDR) | build
	@mkdir -p $(@D)
	$(SAN_SO_CMD)

$(ASAN_DIR)/%: %.c $(DRIVER_HDR) $(EXT_SRC) $(EXT_HDR) | build
	@mkdir -p $(@D)
	$(CC) $(DRIVER_CFLAGS) $(SAN_FLAGS) -o $@ $< $(EXT_SRC) $(DRIVER_LIBS)

$(ASAN_DIR)/fuzz_replay_%: test/fuzz/%.c $(FUZZ_DEPS) $(EXT_SRC) $(EXT_HDR) | build
	@mkdir -p $(@D)
	$(CC) $(DRIVER_CFLAGS) $(SAN_FLAGS) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_REPLAY_SRC) $(EXT_SRC) $(DRIVER_LIBS)

# $(SO) too: docrun.test runs the documents' commands against ./quota.so.
asan: deps-test $(SO) libsqlite_quota.a $(SAN_SO) newest-if-present dqlite-if-possible \
      $(ASAN_DIR)/quota.so $(ASAN_BIN)
	env $(ASAN_ENV) QUOTA_EXT=$(CURDIR)/$(ASAN_DIR)/quota QUOTA_BUILD=$(CURDIR)/$(ASAN_DIR) \
	    $(TCLSH) test/all.tcl

valgrind: deps-test $(SO) libsqlite_quota.a drivers newest-if-present dqlite-if-possible
	TESTER_WRAP="valgrind -q --error-exitcode=99 --trace-children=no" \
	    $(TCLSH) test/all.tcl

#-------------------------------------------------------------------------
# Two instrumented builds of ext/, each writing its .gcda files beside its
# objects: build/cov/so (quota.so, loaded by the Tcl tests and the clients)
# and build/cov/core (-DSQLITE_CORE, linked into every C driver, built into
# build/cov as make asan does; the drivers' own code is not instrumented).
# QUOTA_BUILD makes the suite run those drivers; gcovr merges both builds
# into one report (printed and kept in build/cov/coverage.txt: per file, the
# lines with a branch not taken; build/cov/coverage.json has every branch).
# libgcov is kept out of quota.so's exports (load.test checks them).
# Branches that cannot be taken are marked ALWAYS/NEVER in ext/ (quota_int.h)
# and compiled out here (QUOTA_COVERAGE_TEST). make coverage starts from an
# empty build/cov, so that no count of an earlier run is merged in.
COV_DIR      = build/cov
COV_FLAGS    = -O0 -g --coverage -DQUOTA_COVERAGE_TEST
COV_SO_OBJ   = $(patsubst ext/%.c,$(COV_DIR)/so/%.o,$(EXT_SRC))
COV_CORE_OBJ = $(patsubst ext/%.c,$(COV_DIR)/core/%.o,$(EXT_SRC))
COV_BIN      = $(patsubst build/%,$(COV_DIR)/%,$(TEST_BIN) $(BENCH_BIN) $(FUZZ_REPLAY) \
                   $(if $(DQLITE_PRESENT),$(DQLITE_NODE)))
COV_LIBS     = -lgcov $(DRIVER_LIBS)

$(COV_DIR)/so/%.o: ext/%.c $(EXT_HDR)
	@mkdir -p $(@D)
	$(CC) $(EXT_CFLAGS) $(COV_FLAGS) $(EXT_PIC_FLAGS) -c $< -o $@

$(COV_DIR)/core/%.o: ext/%.c $(EXT_HDR)
	@mkdir -p $(@D)
	$(CC) $(DRIVER_CFLAGS) $(COV_FLAGS) -c $< -o $@

$(COV_DIR)/quota.so: $(COV_SO_OBJ)
	$(CC) --coverage -shared -Wl,--exclude-libs,ALL -o $@ $(COV_SO_OBJ) $(EXT_LIBS)

$(COV_DIR)/%: %.c $(DRIVER_HDR) $(COV_CORE_OBJ)
	$(CC) $(DRIVER_CFLAGS) $(CFLAGS) -o $@ $< $(COV_CORE_OBJ) $(COV_LIBS)

$(COV_DIR)/fuzz_replay_%: test/fuzz/%.c $(FUZZ_DEPS) $(COV_CORE_OBJ)
	$(CC) $(DRIVER_CFLAGS) $(CFLAGS) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_REPLAY_SRC) $(COV_CORE_OBJ) $(COV_LIBS)

$(COV_DIR)/quota-dqlite-node: $(DQLITE_SRC) $(COV_CORE_OBJ)
	$(CC) $(DRIVER_CFLAGS) $(CFLAGS) -o $@ $< $(COV_CORE_OBJ) -lgcov $(DQLITE_LIBS) $(DRIVER_LIBS)

coverage-build: $(COV_DIR)/quota.so $(COV_BIN)

coverage: deps-test libsqlite_quota.a drivers newest-if-present dqlite-if-possible | build
	rm -rf $(COV_DIR)
	$(MAKE) --no-print-directory coverage-build
	QUOTA_EXT=$(CURDIR)/$(COV_DIR)/quota QUOTA_BUILD=$(CURDIR)/$(COV_DIR) $(TCLSH) test/all.tcl || true
	gcovr -r . --branches --filter ext/ --json $(COV_DIR)/coverage.json \
	    --txt $(COV_DIR)/coverage.txt --print-summary $(COV_DIR)/so $(COV_DIR)/core
	@cat $(COV_DIR)/coverage.txt

# make bench runs the benchmark (about 3 minutes); bench-quick under a minute.
BENCHFLAGS ?=

bench: build/quotabench
	build/quotabench $(BENCHFLAGS)

bench-quick: build/quotabench
	build/quotabench --quick $(BENCHFLAGS)

# The usage report on 10 million ledger rows: build/reportstore fills
# build/report-10m.db once (about 5 minutes; delete it to make it again),
# then tool/quotactl report runs on it REPORT_RUNS times, each timed.
REPORT_DB   = build/report-10m.db
REPORT_RUNS ?= 3
$(REPORT_DB): | build/reportstore
	build/reportstore $(REPORT_DB)

report-bench: $(SO) build/reportstore | $(REPORT_DB)
	@sh bench/reportbench.sh $(REPORT_DB) $(REPORT_RUNS)

# doc/report.png: the report of the demo database (make demo) as of the
# end of its session, in headless Chromium, 1280 pixels wide and as tall
# as the page.
REPORT_DEMO_NOW = 2026-12-01 12:00:00
CHROMIUM_SHOT = chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
                --no-first-run --user-data-dir=$(CURDIR)/build/chromium-profile
report-png: $(SO) | build
	@sh tool/deps.sh report
	$(MAKE) --no-print-directory demo >/dev/null
	tool/quotactl report build/demo.db --now '$(REPORT_DEMO_NOW)' --out build/demo-report.html
	sed 's|</body>|<script>document.title = document.documentElement.scrollHeight</script></body>|' \
	    build/demo-report.html > build/demo-report-height.html
	h=$$($(CHROMIUM_SHOT) --window-size=1280,800 --dump-dom file://$(CURDIR)/build/demo-report-height.html 2>/dev/null \
	     | sed -n 's|.*<title>\([0-9][0-9]*\)</title>.*|\1|p'); \
	  [ -n "$$h" ] || { echo "report-png: chromium gave no page height" >&2; exit 1; }; \
	  $(CHROMIUM_SHOT) --window-size=1280,$$h --screenshot=$(CURDIR)/doc/report.png \
	      file://$(CURDIR)/build/demo-report.html 2>/dev/null
	@echo "doc/report.png"

# Static analysis of ext/: fails on any finding. Suppressed: cppcheck's
# variableScope (variables are declared at the top of a block, SQLite style);
# clang-tidy's list, with reasons, is in test/.clang-tidy.
ANALYZE_FLAGS = -std=c99 -DSQLITE_CORE -Iext
analyze: | build
	@mkdir -p build/analyze
	for f in $(EXT_SRC); do \
	  gcc $(ANALYZE_FLAGS) -O2 $(WARN) -Werror -fanalyzer -c $$f \
	      -o build/analyze/$$(basename $$f .c).o || exit 1; \
	done
	cppcheck --std=c99 --enable=warning,style,performance,portability --error-exitcode=1 \
	    --inline-suppr --quiet -DSQLITE_CORE -Iext --suppress=missingIncludeSystem \
	    --suppress=variableScope $(EXT_SRC)
	clang-tidy-14 --quiet --config-file=test/.clang-tidy $(EXT_SRC) -- $(ANALYZE_FLAGS)
	for f in $(EXT_SRC); do \
	  scan-build-14 --status-bugs -o build/analyze/scan-build clang-14 $(ANALYZE_FLAGS) \
	      -c $$f -o build/analyze/$$(basename $$f .c).sb.o || exit 1; \
	done

# make bench-peers: bench/peers.sh deps installs redis-server, postgresql,
# libhiredis-dev and libpq-dev as root (or prints the apt-get command); the
# program is then built with the client libraries that are there, and
# bench/peers.sh run starts Redis and PostgreSQL on 127.0.0.1 (data under
# build/peers/), runs it and stops them. A side that cannot run prints
# "bench-peers: SKIPPED: reason". PEERSFLAGS: more options for the program
# (bench/peers.c), e.g. PEERSFLAGS="--rounds 7".
PEERSFLAGS ?=
PEERS_FLAGS = $(shell sh bench/peers.sh cflags)
PEERS_LIBS  = $(shell sh bench/peers.sh libs)

build/peers/peers: bench/peers.c $(EXT_SRC) $(EXT_HDR) build/peers/flags | deps-build
	$(CC) -std=gnu99 $(CFLAGS) $(WARN) -DSQLITE_CORE -Iext $(PEERS_FLAGS) -o $@ bench/peers.c \
	    $(EXT_SRC) $(PEERS_LIBS) -lsqlite3 -lm

# Rewritten only when the flags change (a client library was installed), so
# that the program is rebuilt then.
build/peers/flags: FORCE
	@mkdir -p build/peers
	@echo '$(PEERS_FLAGS) $(PEERS_LIBS)' | cmp -s - $@ || echo '$(PEERS_FLAGS) $(PEERS_LIBS)' > $@

bench-peers:
	@sh bench/peers.sh deps
	@$(MAKE) --no-print-directory build/peers/peers
	sh bench/peers.sh run $(PEERSFLAGS)

bench-peers-quick:
	@sh bench/peers.sh deps
	@$(MAKE) --no-print-directory build/peers/peers
	sh bench/peers.sh run --quick $(PEERSFLAGS)

# sqlite-quota's tail latency and multi-process scaling under checkpoint and
# busy-handler variants, Redis+Lua beside it (build/peers/peers --diag; about
# 6 minutes). doc/peers.md explains both reports.
bench-peers-diag:
	@sh bench/peers.sh deps
	@$(MAKE) --no-print-directory build/peers/peers
	sh bench/peers.sh run --diag $(PEERSFLAGS)

FORCE:

clean:
	rm -rf build $(SO) libsqlite_quota.a
