#!/bin/sh
# Checks the Debian packages the build and the tests need. As root it installs
# what is missing (apt-get update, then apt-get install -y); otherwise it prints
# the exact command to run and fails.
#   usage: tool/deps.sh build|test|dqlite
# (dqlite: what `make dqlite` needs: libdqlite-dev, and go-dqlite for the
# `dqlite` shell that test/dqlite.test and doc/scaling.md use.)
need=""
have_cmd() { command -v "$1" >/dev/null 2>&1; }
[ -f /usr/include/sqlite3.h ] || need="$need libsqlite3-dev"
have_cmd cc || have_cmd gcc || need="$need gcc"
have_cmd make || need="$need make"
if [ "${1:-build}" != build ]; then
  have_cmd sqlite3 || need="$need sqlite3"
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
if [ "${1:-build}" = dqlite ]; then
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
