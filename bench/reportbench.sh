#!/bin/sh
# reportbench.sh: how long `tool/quotactl report` takes on a large store.
#
#   sh bench/reportbench.sh DB [RUNS]      (make report-bench runs it on
#                                           build/report-10m.db, 3 runs)
#
# Prints what the store holds (ledger rows, keys, file size), then for
# each run the wall-clock and CPU seconds of the whole command (the
# sqlite3 processes it starts included), then the median wall-clock time.
# The report goes to build/reportbench.html. The load average is printed
# beside each run: on a shared machine, wall-clock time grows with it
# while CPU time barely moves.
set -eu
db=${1:?usage: sh bench/reportbench.sh DB [RUNS]}
runs=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$db" ] || { echo "reportbench: no such database: $db" >&2; exit 1; }
rows=$(sqlite3 -readonly "$db" 'SELECT count(*) FROM quota_ledger')
keys=$(sqlite3 -readonly "$db" 'SELECT count(*) FROM quota_keys')
size=$(wc -c < "$db" | tr -d ' ')
echo "store: $db: $rows ledger rows, $keys keys, $((size / 1048576)) MB"
echo "sqlite3 $(sqlite3 --version | cut -d' ' -f1), $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M') UTC"
# CPU seconds of this shell's finished children (the report and its
# sqlite3 processes), from the shell's times: user + system. times runs
# in this shell (in $(...) it would count a subshell's children).
tf=$(mktemp)
trap 'rm -f "$tf"' EXIT
cpu() {
  tail -n 1 "$tf" | awk '{ split($1, u, /m/); split($2, s, /m/);
    printf "%.2f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }'
}
all=""
i=1
while [ "$i" -le "$runs" ]; do
  load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
  times > "$tf"; c0=$(cpu)
  t0=$(date +%s%N)
  "$root/tool/quotactl" report "$db" --out "$root/build/reportbench.html" >/dev/null
  t1=$(date +%s%N)
  times > "$tf"; c1=$(cpu)
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
  used=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
  echo "run $i: ${wall} s wall-clock, ${used} s CPU (load average $load)"
  all="$all $wall"
  i=$((i + 1))
done
median=$(printf '%s\n' $all | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
echo "median: $median s wall-clock over $runs runs"
