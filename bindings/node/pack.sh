#!/bin/sh
# Packs the npm package "sqlite-quota": the sources in bindings/node/ plus the
# built quota.so, staged in OUTDIR/stage (never in the repository), packed
# with npm pack into OUTDIR/sqlite-quota-VERSION.tgz.  VERSION is
# SQLITE_QUOTA_VERSION from ext/quota.h; the library goes to
# dist/<platform>-<arch>/ of the machine that built it, and package.json's
# "os" and "cpu" say the same.  Prints the tarball's path.  Run from the
# repository root after make (make npm does both).  QUOTA_SO names another
# library to pack (the tests pack the one under test).
#
#   usage: bindings/node/pack.sh [OUTDIR]          (default: build/npm)
set -eu
out=${1:-build/npm}
so=${QUOTA_SO:-quota.so}
if [ ! -f "$so" ]; then
  echo "npm-pack: $so is missing: run make first" >&2
  exit 1
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "npm-pack: node and npm are needed (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
version=$(sed -n 's/.*SQLITE_QUOTA_VERSION *"\(.*\)".*/\1/p' ext/quota.h)
[ -n "$version" ] || { echo "npm-pack: no SQLITE_QUOTA_VERSION in ext/quota.h" >&2; exit 1; }
plat=$(node -p 'process.platform + "-" + process.arch')

mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$out/stage
rm -rf "$stage"
mkdir -p "$stage/dist/$plat"
src=bindings/node
cp $src/package.json $src/index.js $src/index.mjs $src/index.d.ts $src/README.md "$stage/"
cp LICENSE "$stage/LICENSE"
cp "$so" "$stage/dist/$plat/quota.so"
node -e '
  const fs = require("fs");
  const [file, version, plat] = process.argv.slice(1);
  const p = JSON.parse(fs.readFileSync(file, "utf8"));
  const [os, cpu] = plat.split("-");
  p.version = version;
  p.os = [os];
  p.cpu = [cpu];
  fs.writeFileSync(file, JSON.stringify(p, null, 2) + "\n");
' "$stage/package.json" "$version" "$plat"
rm -f "$out/sqlite-quota-$version.tgz"
(cd "$stage" && npm pack --ignore-scripts --pack-destination "$out" --loglevel=error >/dev/null)
echo "$out/sqlite-quota-$version.tgz"
