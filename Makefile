# sqlite-quota: atomic quota accounting for SQLite.
#
#   make             build the loadable extension ./quota.so
#   make demo        build it and run the tutorial session on build/demo.db
#   make test        build everything and run every test (ends "N passed, N failed")
#   make newest      the C test drivers again, against the newest SQLite (below)
#   make static      libsqlite_quota.a (compiled with SQLITE_CORE) and ext/quota.h
#   make install     quota.so, libsqlite_quota.a, quota.h, sqlite-quota.pc
#                    (PREFIX=/usr/local, DESTDIR honoured)
#   make asan        the whole suite with AddressSanitizer + UBSan
#   make valgrind    the whole suite under valgrind
#   make coverage    branch coverage of ext/ (gcovr)
#   make bench       the benchmark (tool/quotabench.c); bench-quick for a short run
#   make bench-peers sqlite-quota next to Redis and PostgreSQL doing the same quota
#                    work (bench/peers.c, about 8 minutes; bench-peers-quick under 2;
#                    starts and stops its own servers, see bench/peers.sh);
#                    bench-peers-diag: sqlite-quota's tail latency and scaling
#   make fuzz        libFuzzer runs of test/fuzz/*.c (FUZZ_SECONDS each, default 60)
#   make analyze     gcc -fanalyzer, cppcheck, clang-tidy-14, scan-build-14 on ext/
#   make dqlite      build/quota-dqlite-node, a dqlite node serving the extension
#                    (installs libdqlite-dev and go-dqlite as root)
#   make test-dqlite a 3-node dqlite cluster on 127.0.0.1 with a leader failover
#                    (make test runs it too when the packages are there)
#   make clean
#
# Test and tool drivers: every test/NAME.c and tool/NAME.c is built as
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
TCLSH    ?= tclsh
SQLITE3  ?= sqlite3

EXT_SRC   = $(sort $(wildcard ext/*.c))
EXT_HDR   = $(sort $(wildcard ext/*.h))
SO        = quota.so
TEST_BIN  = $(patsubst test/%.c,build/%,$(wildcard test/*.c))
# Fuzz targets: a replay build for make test (any compiler, no libFuzzer),
# and libFuzzer builds for make fuzz.
FUZZ_TARGETS = $(patsubst test/fuzz/%.c,%,$(filter-out test/fuzz/replay.c,$(wildcard test/fuzz/*.c)))
FUZZ_REPLAY  = $(patsubst %,build/fuzz_replay_%,$(FUZZ_TARGETS))
FUZZ_SECONDS ?= 60
# The dqlite node links libdqlite: built by its own target (make dqlite).
TOOL_BIN  = $(patsubst tool/%.c,build/%,$(filter-out tool/quota-dqlite-node.c,$(wildcard tool/*.c)))
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
DQLITE_NODE    = build/quota-dqlite-node
# Non-empty when the dqlite packages are installed: make test then builds
# the node and test/dqlite.test runs the cluster (it skips otherwise).
DQLITE_PRESENT = $(and $(wildcard /usr/include/dqlite.h),$(shell command -v dqlite 2>/dev/null))

.PHONY: all demo test deps-build deps-test install clean drivers static \
        asan valgrind coverage bench bench-quick bench-peers bench-peers-quick bench-peers-diag FORCE \
        npm node-deps \
        dqlite test-dqlite deps-dqlite fuzz fuzz-replay analyze newest newest-if-present

all: $(SO)

deps-build:
	@sh tool/deps.sh build

deps-test:
	@sh tool/deps.sh test

# quota_debug() reports the commit and the flags of the build.
COMMIT   := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DEBUGDEF  = -DQUOTA_COMMIT='"$(COMMIT)"' -DQUOTA_CFLAGS='"$(CFLAGS)"'

# The loadable library is not linked against libsqlite3: the host supplies it.
$(SO): $(EXT_SRC) $(EXT_HDR) | deps-build
	$(CC) -std=c99 $(CFLAGS) $(WARN) $(DEBUGDEF) -fPIC -shared -fvisibility=hidden \
	    -o $@ $(EXT_SRC) -lm

build:
	@mkdir -p build

build/%: test/%.c $(wildcard test/*.h) $(EXT_SRC) $(EXT_HDR) | build deps-build
	$(CC) -std=gnu99 $(CFLAGS) $(WARN) -DSQLITE_CORE -Iext -o $@ $< $(EXT_SRC) -lsqlite3 -lm

build/%: tool/%.c $(EXT_SRC) $(EXT_HDR) | build deps-build
	$(CC) -std=gnu99 $(CFLAGS) $(WARN) -DSQLITE_CORE -Iext -o $@ $< $(EXT_SRC) -lsqlite3 -lm

build/fuzz_replay_%: test/fuzz/%.c test/fuzz/replay.c test/fuzz/fuzz_common.h $(EXT_SRC) $(EXT_HDR) | build deps-build
	$(CC) -std=gnu99 $(CFLAGS) $(WARN) -DSQLITE_CORE -Iext -Itest/fuzz -o $@ $< test/fuzz/replay.c $(EXT_SRC) -lsqlite3 -lm

fuzz-replay: $(FUZZ_REPLAY)

drivers: $(TEST_BIN) $(TOOL_BIN) $(FUZZ_REPLAY)

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
NEWEST_CC      = $(CC) -std=gnu99 $(CFLAGS) $(WARN) -DSQLITE_CORE -I$(NEWEST_SQLITE) -Iext
NEWEST_LIBS    = -lm -lpthread -ldl

newest: $(NEWEST_OBJ) $(NEWEST_BIN)

$(NEWEST_DIR)/sqlite3.o: $(NEWEST_SQLITE)/sqlite3.c $(NEWEST_SQLITE)/sqlite3.h
	@mkdir -p $(NEWEST_DIR)
	$(CC) $(CFLAGS) $(NEWEST_DEFS) -c -o $@ $<

$(NEWEST_DIR)/ext/%.o: ext/%.c $(EXT_HDR) $(NEWEST_SQLITE)/sqlite3.h
	@mkdir -p $(NEWEST_DIR)/ext
	$(NEWEST_CC) -c -o $@ $<

$(NEWEST_DIR)/fuzz_replay_%: test/fuzz/%.c test/fuzz/replay.c test/fuzz/fuzz_common.h $(NEWEST_OBJ)
	$(NEWEST_CC) -Itest/fuzz -o $@ $< test/fuzz/replay.c $(NEWEST_OBJ) $(NEWEST_LIBS)

$(NEWEST_DIR)/%: test/%.c $(wildcard test/*.h) $(NEWEST_OBJ)
	$(NEWEST_CC) -o $@ $< $(NEWEST_OBJ) $(NEWEST_LIBS)

# libFuzzer (clang) with ASan and UBSan, each target for FUZZ_SECONDS on a
# scratch copy of its committed corpus (new inputs stay in build/fuzz/).
fuzz: | build
	@mkdir -p build/fuzz
	for t in $(FUZZ_TARGETS); do \
	  clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	      -DSQLITE_CORE -Iext -Itest/fuzz -o build/fuzz/$$t test/fuzz/$$t.c $(EXT_SRC) \
	      -lsqlite3 -lm || exit 1; \
	  rm -rf build/fuzz/corpus-$$t; cp -r test/fuzz/corpus/$$t build/fuzz/corpus-$$t; \
	  build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=60 \
	      -artifact_prefix=build/fuzz/$$t- build/fuzz/corpus-$$t \
	      || exit 1; \
	done

demo: $(SO) | deps-test build
	@rm -f build/demo.db build/demo.db-wal build/demo.db-shm
	$(SQLITE3) -bail build/demo.db < tool/demo.sql

# test/sanitize.test runs a few suites against this ASan+UBSan build (and
# one under valgrind): the bounded form of make asan and make valgrind. If
# the compiler cannot build it, the test says so and skips.
SAN_SO = build/san/quota.so
$(SAN_SO): $(EXT_SRC) $(EXT_HDR) | build
	@mkdir -p build/san
	-$(CC) -std=c99 -O1 -g $(WARN) $(SAN_FLAGS) -DQUOTA_DEBUG -fPIC -shared -fvisibility=hidden \
	    -o $@ $(EXT_SRC) -lm

# The second SQLite is looked for after node-deps has run (it may have just
# fetched it), so not with $(wildcard) when this Makefile is read.
test: deps-test $(SO) $(SAN_SO) libsqlite_quota.a drivers node-deps newest-if-present \
      $(if $(DQLITE_PRESENT),$(DQLITE_NODE))
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

dqlite: $(DQLITE_NODE)

$(DQLITE_NODE): tool/quota-dqlite-node.c $(EXT_SRC) $(EXT_HDR) | build deps-dqlite
	$(CC) -std=gnu99 $(CFLAGS) $(WARN) -DSQLITE_CORE -Iext -o $@ $< $(EXT_SRC) -ldqlite -lsqlite3 -lm

test-dqlite: deps-test $(SO) $(DQLITE_NODE)
	$(TCLSH) test/all.tcl test/dqlite.test

# The Node clients the tests use (Node 22, better-sqlite3, libsql), from the
# npm registry into build/node; if that fails, the Node tests say so and skip.
node-deps: | build
	-@sh tool/node-setup.sh build/node

# The npm package sqlite-quota: build/npm/sqlite-quota-VERSION.tgz
npm: $(SO) | build
	sh tool/npm-pack.sh build/npm

# Static library: the same sources with SQLITE_CORE, for programs that
# register the extension with sqlite3_auto_extension() (see ext/quota.h).
static: libsqlite_quota.a

libsqlite_quota.a: $(EXT_SRC) $(EXT_HDR) | build deps-build
	@mkdir -p build/static
	for f in $(EXT_SRC); do \
	  $(CC) -std=c99 $(CFLAGS) $(WARN) $(DEBUGDEF) -fPIC -DSQLITE_CORE -c $$f \
	      -o build/static/$$(basename $$f .c).o || exit 1; \
	done
	rm -f $@
	ar rcs $@ $(patsubst ext/%.c,build/static/%.o,$(EXT_SRC))

install: $(SO) libsqlite_quota.a
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 0755 $(SO) $(DESTDIR)$(LIBDIR)/$(SO)
	install -m 0644 libsqlite_quota.a $(DESTDIR)$(LIBDIR)/libsqlite_quota.a
	install -m 0644 ext/quota.h $(DESTDIR)$(INCDIR)/quota.h
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCDIR@|$(INCDIR)|' \
	    -e "s|@VERSION@|$$(sed -n 's/.*SQLITE_QUOTA_VERSION *\"\(.*\)\".*/\1/p' ext/quota.h)|" \
	    tool/sqlite-quota.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/sqlite-quota.pc

# The whole suite against a sanitized quota.so (preloaded runtimes, since
# tclsh and sqlite3 are not instrumented) and sanitized drivers.
ASAN_ENV = ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
           UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
           LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)"
asan: deps-test libsqlite_quota.a newest-if-present $(if $(DQLITE_PRESENT),$(DQLITE_NODE)) | build
	@mkdir -p build/asan
	$(CC) -std=c99 -O1 -g $(WARN) $(SAN_FLAGS) -DQUOTA_DEBUG -fPIC -shared -fvisibility=hidden -o build/asan/quota.so $(EXT_SRC) -lm
	for f in $(wildcard test/*.c) $(filter-out tool/quota-dqlite-node.c,$(wildcard tool/*.c)); do \
	  $(CC) -std=gnu99 -O1 -g $(WARN) $(SAN_FLAGS) -DQUOTA_DEBUG -DSQLITE_CORE -Iext \
	      -o build/asan/$$(basename $$f .c) $$f $(EXT_SRC) -lsqlite3 -lm || exit 1; \
	done
	for t in $(FUZZ_TARGETS); do \
	  $(CC) -std=gnu99 -O1 -g $(WARN) $(SAN_FLAGS) -DQUOTA_DEBUG -DSQLITE_CORE -Iext -Itest/fuzz \
	      -o build/asan/fuzz_replay_$$t test/fuzz/$$t.c test/fuzz/replay.c $(EXT_SRC) -lsqlite3 -lm || exit 1; \
	done
	env $(ASAN_ENV) QUOTA_EXT=$(CURDIR)/build/asan/quota QUOTA_BUILD=$(CURDIR)/build/asan \
	    $(TCLSH) test/all.tcl

valgrind: deps-test $(SO) libsqlite_quota.a drivers newest-if-present $(if $(DQLITE_PRESENT),$(DQLITE_NODE))
	TESTER_WRAP="valgrind -q --error-exitcode=99 --trace-children=no" \
	    $(TCLSH) test/all.tcl

# Two instrumented builds of ext/, each writing its .gcda files beside its
# objects: build/cov/so (quota.so, loaded by the Tcl tests and the clients)
# and build/cov/core (-DSQLITE_CORE, linked into every C driver, built into
# build/cov as make asan does; the drivers' own code is not instrumented).
# QUOTA_BUILD makes the suite run those drivers; gcovr merges both builds
# into one report (printed and kept in build/cov/coverage.txt: per file, the
# lines with a branch not taken; build/cov/coverage.json has every branch).
# libgcov is kept out of quota.so's exports (load.test checks them).
# Branches that cannot be taken are marked ALWAYS/NEVER in ext/ (quota_int.h)
# and compiled out here (QUOTA_COVERAGE_TEST).
COV_EXT_FLAGS = -O0 -g --coverage -DQUOTA_COVERAGE_TEST $(WARN)
COV_DRIVERS   = $(wildcard test/*.c) $(filter-out tool/quota-dqlite-node.c,$(wildcard tool/*.c))
coverage: deps-test libsqlite_quota.a drivers newest-if-present $(if $(DQLITE_PRESENT),$(DQLITE_NODE)) | build
	rm -rf build/cov
	@mkdir -p build/cov/so build/cov/core
	for f in $(EXT_SRC); do \
	  b=$$(basename $$f .c); \
	  $(CC) -std=c99 $(COV_EXT_FLAGS) -fPIC -fvisibility=hidden -c $$f -o build/cov/so/$$b.o || exit 1; \
	  $(CC) -std=gnu99 $(COV_EXT_FLAGS) -DSQLITE_CORE -c $$f -o build/cov/core/$$b.o || exit 1; \
	done
	$(CC) --coverage -shared -Wl,--exclude-libs,ALL -o build/cov/quota.so build/cov/so/*.o -lm
	for f in $(COV_DRIVERS); do \
	  $(CC) -std=gnu99 $(CFLAGS) $(WARN) -DSQLITE_CORE -Iext -o build/cov/$$(basename $$f .c) \
	      $$f build/cov/core/*.o -lgcov -lsqlite3 -lm || exit 1; \
	done
	for t in $(FUZZ_TARGETS); do \
	  $(CC) -std=gnu99 $(CFLAGS) $(WARN) -DSQLITE_CORE -Iext -Itest/fuzz -o build/cov/fuzz_replay_$$t \
	      test/fuzz/$$t.c test/fuzz/replay.c build/cov/core/*.o -lgcov -lsqlite3 -lm || exit 1; \
	done
	$(if $(DQLITE_PRESENT),$(CC) -std=gnu99 $(CFLAGS) $(WARN) -DSQLITE_CORE -Iext \
	    -o build/cov/quota-dqlite-node tool/quota-dqlite-node.c build/cov/core/*.o \
	    -lgcov -ldqlite -lsqlite3 -lm)
	QUOTA_EXT=$(CURDIR)/build/cov/quota QUOTA_BUILD=$(CURDIR)/build/cov $(TCLSH) test/all.tcl || true
	gcovr -r . --branches --filter ext/ --json build/cov/coverage.json \
	    --txt build/cov/coverage.txt --print-summary build/cov/so build/cov/core
	@cat build/cov/coverage.txt

# make bench runs the benchmark (about 3 minutes); bench-quick under a minute.
BENCHFLAGS ?=
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

bench: build/quotabench
	build/quotabench $(BENCHFLAGS)

bench-quick: build/quotabench
	build/quotabench --quick $(BENCHFLAGS)

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
