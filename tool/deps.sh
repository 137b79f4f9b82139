#!/bin/sh
# Checks the Debian packages the build and the tests need. As root it installs
# what is missing (apt-get update, then apt-get install -y); otherwise it prints
# the exact command to run and fails.
#   usage: tool/deps.sh build|demo|test|dqlite|report
#   build   what make needs: a C compiler, make, libsqlite3-dev
#   demo    what make demo needs: build's, and the sqlite3 shell
#   test    what make test needs: demo's, and tcl, libsqlite3-tcl, python3,
#           python3-venv, valgrind
#   dqlite  test's, and what make dqlite needs: libdqlite-dev, and go-dqlite for
#           the `dqlite` shell that test/dqlite.test and doc/scaling.md use
#   report  the browser test/report.test renders the usage report in:
#           chromium (without the packages it only recommends)
mode=${1:-build}
case $mode in
  build|demo|test|dqlite|report) ;;
  *) echo "deps: usage: tool/deps.sh build|demo|test|dqlite|report (not '$mode')" >&2; exit 2 ;;
esac
have_cmd() { command -v "$1" >/dev/null 2>&1; }
if [ "$mode" = report ]; then
  have_cmd chromium && exit 0
  if [ "$(id -u)" = 0 ] && have_cmd apt-get; then
    echo "deps: installing chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends chromium >/dev/null && exit 0
    echo "deps: apt-get failed; run: apt-get update && apt-get install -y --no-install-recommends chromium" >&2
    exit 1
  fi
  echo "deps: chromium missing; run: sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium" >&2
  exit 1
fi
need=""
[ -f /usr/include/sqlite3.h ] || need="$need libsqlite3-dev"
have_cmd cc || have_cmd gcc || need="$need gcc"
have_cmd make || need="$need make"
if [ "$mode" != build ]; then
  have_cmd sqlite3 || need="$need sqlite3"
fi
if [ "$mode" = test ] || [ "$mode" = dqlite ]; then
  [ -x /usr/bin/python3 ] || need="$need python3"      # test/client_python.test
  # test/python.test makes a virtualenv of /usr/bin/python3
  [ -x /usr/bin/python3 ] && ! /usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 \
    && need="$need python3-venv"
  have_cmd valgrind || need="$need valgrind"           # test/sanitize.test
  have_cmd tclsh || need="$need tcl"
  if have_cmd tclsh; then
    echo 'if {[catch {package require sqlite3}]} {exit 1}' | tclsh >/dev/null 2>&1 \
      || need="$need libsqlite3-tcl"
  else
    need="$need libsqlite3-tcl"
  fi
fi
if [ "$mode" = dqlite ]; then
  [ -f /usr/include/dqlite.h ] || need="$need libdqlite-dev"
  have_cmd dqlite || need="$need go-dqlite"
fi
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && have_cmd apt-get; then
  echo "deps: installing$need"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null \
    && exit 0
  echo "deps: apt-get failed; run: apt-get update && apt-get install -y$need" >&2
  exit 1
fi
echo "deps: missing packages; run: sudo apt-get update && sudo apt-get install -y$need" >&2
exit 1
