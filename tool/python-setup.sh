#!/bin/sh
# Makes the virtualenv the tests of the Python package run in (never in the
# repository): Debian's /usr/bin/python3 (its sqlite3 module can load
# extensions), with the packages pinned in bindings/python/tests/
# requirements.txt (pytest, SQLAlchemy, aiosqlite, Django, FastAPI, httpx),
# from PyPI only.
#
#   usage: tool/python-setup.sh [DIR [PYTHON]]   (default: build/python, /usr/bin/python3)
#
# DIR/venv is the virtualenv, DIR/wheels the downloaded wheels.  Once the
# wheels are there an install needs no network (pip looks in DIR/wheels
# alone first).  DIR/venv/.installed records the requirements' checksum and
# the interpreter's version; while they match, a rerun does nothing.
# Prints the virtualenv's python on its last line.  Exit status: 0 ready,
# 1 pip failed (PyPI unreachable and the wheels not cached: the Python tests
# then skip), 2 no suitable interpreter.
set -u
dir=${1:-build/python}
python=${2:-/usr/bin/python3}
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/bindings/python/tests/requirements.txt"

if [ ! -x "$python" ]; then
  echo "python-setup: $python not found (Debian: apt-get install python3 python3-venv)" >&2
  exit 2
fi
if ! "$python" -c 'import sqlite3, sys; sys.exit(not hasattr(sqlite3.Connection, "enable_load_extension"))'; then
  echo "python-setup: the sqlite3 module of $python cannot load extensions" \
       "(built without --enable-loadable-sqlite-extensions)" >&2
  exit 2
fi
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "python-setup: $python has no venv or ensurepip (Debian: apt-get install python3-venv)" >&2
  exit 2
fi
mkdir -p "$dir" || exit 1
dir=$(cd "$dir" && pwd)
# Two test files may call this at once: one installs, the other waits.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$dir/.lock"
  flock -w 600 9 || { echo "python-setup: $dir/.lock is held" >&2; exit 1; }
fi
want="$(cksum < "$req" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])')"
venv="$dir/venv"
if [ -f "$venv/.installed" ] && [ "$(cat "$venv/.installed")" = "$want" ] \
   && "$venv/bin/python" -c 'import pytest' 2>/dev/null; then
  echo "$venv/bin/python"
  exit 0
fi
echo "python-setup: making $venv" >&2
rm -rf "$venv"
if ! "$python" -m venv "$venv" >"$dir/install.log" 2>&1; then
  echo "python-setup: $python -m venv failed; see $dir/install.log" >&2
  exit 2
fi
pip() {
  PIP_FIND_LINKS= PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip "$@" \
      >>"$dir/install.log" 2>&1
}
# First from the cached wheels alone (no network at all), then from PyPI.
if ! pip install --no-index --find-links "$dir/wheels" -r "$req"; then
  echo "python-setup: not all in $dir/wheels; asking PyPI" >>"$dir/install.log"
  if ! pip download --timeout 30 --retries 1 --only-binary :all: -d "$dir/wheels" -r "$req" \
     || ! pip install --no-index --find-links "$dir/wheels" -r "$req"; then
    echo "python-setup: pip failed (is PyPI reachable?); see $dir/install.log" >&2
    grep -E '^(ERROR|WARNING: Retrying)' "$dir/install.log" | tail -n 2 >&2
    exit 1
  fi
fi
echo "$want" > "$venv/.installed"
echo "$venv/bin/python"
