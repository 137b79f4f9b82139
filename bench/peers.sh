#!/bin/sh
# bench/peers.sh: the servers behind `make bench-peers` (bench/peers.c).
#
#   sh bench/peers.sh deps          install what is missing (as root: apt-get update,
#                                   then apt-get install -y), or print the command to run
#   sh bench/peers.sh cflags|libs   compiler flags for build/peers/peers (the sides whose
#                                   client library is installed)
#   sh bench/peers.sh run [ARGS]    start the servers, run build/peers/peers ARGS, stop them
#
# run starts, on 127.0.0.1 only, with data under build/peers/:
#   - Redis on port PEERS_REDIS_PORT (16379): appendonly yes, save '' (the program sets
#     appendfsync per case with CONFIG SET);
#   - a second Redis on PEERS_PINNED_PORT (16380) under `taskset -c 0`: the one-vCPU
#     variant (its clients pin themselves to CPU 0 too);
#   - PostgreSQL on PEERS_PG_PORT (15432): a scratch cluster made by initdb (trust
#     authentication, TCP on 127.0.0.1 only, no Unix socket, fsync on).
# PostgreSQL refuses to run as root. As root, both servers therefore run as an
# unprivileged user through runuser: PostgreSQL as `postgres` (the user Debian's
# package creates), Redis as `redis` (likewise; `nobody` if it is missing). Their
# directories are chowned to that user. If that user cannot reach build/peers (a
# checkout under a private home directory), the data goes to a fresh directory under
# /tmp instead, and the script says so. As another user, the servers run as that user.
#
# A side that cannot run (package missing, server not starting) prints
# `bench-peers: SKIPPED: SIDE: reason` (the program does, given the reason) and the others
# are still measured. The servers are stopped by their PIDs (from their pid files) when
# the script ends, also on failure or interruption (trap), and their data directories
# are deleted; the logs stay in build/peers/.
set -u

have_cmd() { command -v "$1" >/dev/null 2>&1; }
pg_bindir() {
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}
have_hiredis() { [ -f /usr/include/hiredis/hiredis.h ]; }
have_libpq() { [ -f /usr/include/postgresql/libpq-fe.h ] || pkg-config --exists libpq 2>/dev/null; }

case "${1:-}" in
deps)
  need=""
  have_cmd redis-server || need="$need redis-server"
  pg_bindir >/dev/null || need="$need postgresql"
  have_hiredis || need="$need libhiredis-dev"
  have_libpq || need="$need libpq-dev"
  [ -z "$need" ] && exit 0
  if [ "$(id -u)" = 0 ] && have_cmd apt-get; then
    echo "bench-peers: installing$need"
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null; then
      exit 0
    fi
    echo "bench-peers: apt-get failed; run: apt-get update && apt-get install -y$need" >&2
  else
    echo "bench-peers: missing packages; run: sudo apt-get update && sudo apt-get install -y$need" >&2
  fi
  exit 0   # the sides without their packages are skipped
  ;;
cflags)
  f=""
  have_hiredis && f="$f -DPEERS_REDIS"
  if have_libpq; then
    f="$f -DPEERS_PG $(pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)"
  fi
  echo $f
  exit 0
  ;;
libs)
  f=""
  have_hiredis && f="$f -lhiredis"
  have_libpq && f="$f -lpq"
  echo $f
  exit 0
  ;;
run)
  shift
  ;;
*)
  echo "usage: sh bench/peers.sh deps|cflags|libs|run [ARGS]" >&2
  exit 2
  ;;
esac

TOP=$(pwd)
DIR=$TOP/build/peers
PROG=$DIR/peers
[ -x "$PROG" ] || { echo "bench-peers: $PROG is not built (make build/peers/peers)" >&2; exit 1; }
REDIS_PORT=${PEERS_REDIS_PORT:-16379}
PINNED_PORT=${PEERS_PINNED_PORT:-16380}
PG_PORT=${PEERS_PG_PORT:-15432}
mkdir -p "$DIR" || exit 1
PROG_DIR=build/peers/sqlite   # relative: the program runs here, and prints its command line
PIDFILES=""            # pid files of the servers this run started
DATADIRS=""            # directories to delete at the end
TMPDATA=""             # a /tmp directory, when the server user cannot reach build/peers

# A side that cannot run: its reason goes to the program, which prints
# "bench-peers: SKIPPED: SIDE: reason" and measures the others.

# stop PIDFILE SIGNAL: signal the server by its PID and wait (up to 30 s) until it is gone.
stop_server() {
  [ -f "$1" ] || return 0
  pid=$(head -n 1 "$1" 2>/dev/null)
  case "$pid" in ''|*[!0-9]*) return 0 ;; esac
  kill -"$2" "$pid" 2>/dev/null || return 0
  n=0
  while kill -0 "$pid" 2>/dev/null; do
    n=$((n+1))
    if [ $n -ge 300 ]; then kill -KILL "$pid" 2>/dev/null; break; fi
    sleep 0.1
  done
}

PROGPID=""             # the benchmark program, while it runs
cleanup() {
  if [ -n "$PROGPID" ]; then
    kill -TERM "$PROGPID" 2>/dev/null
    wait "$PROGPID" 2>/dev/null
    PROGPID=""
  fi
  for entry in $PIDFILES; do
    stop_server "${entry%%:*}" "${entry##*:}"
  done
  for d in $DATADIRS; do rm -rf "$d"; done
  if [ -n "$TMPDATA" ]; then
    cp "$TMPDATA"/*.log "$DIR"/ 2>/dev/null
    rm -rf "$TMPDATA"
  fi
  PIDFILES=""; DATADIRS=""; TMPDATA=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# as USER CMD...: run CMD as USER when root, as ourselves otherwise.
as() {
  u=$1; shift
  if [ "$(id -u)" = 0 ] && [ -n "$u" ]; then
    if have_cmd runuser; then runuser -u "$u" -- "$@"
    else su -s /bin/sh "$u" -c 'exec "$0" "$@"' -- "$@"
    fi
  else
    "$@"
  fi
}

# datadir USER NAME: DD = a fresh directory USER owns, under build/peers if USER can
# reach it. Called in this shell (not in $(...)) so that DATADIRS and TMPDATA keep it.
datadir() {
  d=$DIR/$2
  if [ "$(id -u)" = 0 ] && [ -n "$1" ] && ! as "$1" test -x "$DIR"; then
    if [ -z "$TMPDATA" ]; then
      TMPDATA=$(mktemp -d /tmp/bench-peers.XXXXXX) || return 1
      chmod 755 "$TMPDATA"
      echo "bench-peers: user $1 cannot reach $DIR; server data in $TMPDATA instead" >&2
    fi
    d=$TMPDATA/$2
  fi
  rm -rf "$d" && mkdir -p "$d" || return 1
  [ "$(id -u)" = 0 ] && [ -n "$1" ] && chown "$1" "$d"
  DATADIRS="$DATADIRS $d"
  DD=$d
  LOGDIR=$(dirname "$d")   # build/peers, or the /tmp directory (logs copied back at the end)
}

set -- --dir "$PROG_DIR" "$@"

# ---- Redis (two instances) --------------------------------------------------
REDIS_USER=""
if [ "$(id -u)" = 0 ]; then
  if id redis >/dev/null 2>&1; then REDIS_USER=redis; else REDIS_USER=nobody; fi
fi
# start_redis PORT NAME [taskset -c 0]: prints nothing; returns 0 when it answers PING.
start_redis() {
  port=$1; name=$2; shift 2
  datadir "$REDIS_USER" "$name" || return 1
  d=$DD
  log=$LOGDIR/$name.log
  rm -f "$log"; : > "$log"
  [ -n "$REDIS_USER" ] && [ "$(id -u)" = 0 ] && chown "$REDIS_USER" "$log"
  as "$REDIS_USER" "$@" redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes \
      --dir "$d" --daemonize yes --pidfile "$d/redis.pid" --logfile "$log" \
      --appendonly yes --appendfsync everysec --save "" >/dev/null 2>&1 || return 1
  PIDFILES="$PIDFILES $d/redis.pid:TERM"
  n=0
  while [ $n -lt 100 ]; do
    if have_cmd redis-cli; then
      [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] && return 0
    elif [ -s "$d/redis.pid" ]; then
      sleep 0.5; return 0
    fi
    n=$((n+1)); sleep 0.1
  done
  return 1
}
if ! have_cmd redis-server; then
  set -- "$@" --skip-redis "redis-server is not installed (sh bench/peers.sh deps)" \
              --skip-pinned "redis-server is not installed"
elif ! sh "$TOP/bench/peers.sh" cflags | grep -q PEERS_REDIS; then
  set -- "$@" --skip-redis "libhiredis-dev is not installed (sh bench/peers.sh deps)" \
              --skip-pinned "libhiredis-dev is not installed"
else
  if start_redis "$REDIS_PORT" redis; then
    set -- "$@" --redis "127.0.0.1:$REDIS_PORT"
  else
    set -- "$@" --skip-redis "the server did not start on 127.0.0.1:$REDIS_PORT (see build/peers/redis.log)"
  fi
  if ! have_cmd taskset; then
    set -- "$@" --skip-pinned "taskset is not installed (util-linux)"
  elif start_redis "$PINNED_PORT" redis-pinned taskset -c 0; then
    set -- "$@" --redis-pinned "127.0.0.1:$PINNED_PORT"
  else
    set -- "$@" --skip-pinned "the server did not start on 127.0.0.1:$PINNED_PORT (see build/peers/redis-pinned.log)"
  fi
fi

# ---- PostgreSQL --------------------------------------------------------------
PG_USER=""
PGBIN=$(pg_bindir)
start_pg() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || { echo "it refuses to run as root and there is no postgres user"; return 1; }
    PG_USER=postgres
  fi
  datadir "$PG_USER" pg || { echo "cannot create its data directory"; return 1; }
  d=$DD
  log=$LOGDIR/pg.log
  rm -f "$log"; : > "$log"
  [ -n "$PG_USER" ] && chown "$PG_USER" "$log"
  as "$PG_USER" "$PGBIN/initdb" -D "$d/data" -U peers -A trust -E UTF8 --locale=C --no-sync \
      >>"$log" 2>&1 || { echo "initdb failed (see build/peers/pg.log)"; return 1; }
  as "$PG_USER" "$PGBIN/pg_ctl" -D "$d/data" -l "$log" -w -t 60 \
      -o "-c port=$PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=on" \
      start >/dev/null 2>&1
  st=$?
  [ -f "$d/data/postmaster.pid" ] && PIDFILES="$PIDFILES $d/data/postmaster.pid:INT"
  [ $st = 0 ] || { echo "pg_ctl start failed on 127.0.0.1:$PG_PORT (see build/peers/pg.log)"; return 1; }
  return 0
}
if [ -z "$PGBIN" ]; then
  set -- "$@" --skip-pg "the server is not installed (sh bench/peers.sh deps)"
elif ! sh "$TOP/bench/peers.sh" cflags | grep -q PEERS_PG; then
  set -- "$@" --skip-pg "libpq-dev is not installed (sh bench/peers.sh deps)"
else
  # start_pg runs in this shell (not $(...)) so that PIDFILES keeps its pid file.
  why=$(mktemp)
  if start_pg >"$why"; then
    set -- "$@" --pg "host=127.0.0.1 port=$PG_PORT user=peers dbname=postgres"
  else
    set -- "$@" --skip-pg "$(cat "$why")"
  fi
  rm -f "$why"
fi

# In the background and waited for, so that a signal runs the trap at once
# (a shell runs traps only after a foreground command ends).
"$PROG" "$@" &
PROGPID=$!
wait "$PROGPID"
rc=$?
PROGPID=""
cleanup
exit $rc
