#!/usr/bin/env bash
# A real REAPI cluster on loopback for crossplan's remote executor: BuildGrid (own Python 3.13
# venv) with a private PostgreSQL 15 scheduler database, serving instance `main` on
# 127.0.0.1:50051, and two supervised buildbox-worker processes (hosttools runner, one shared
# buildbox-casd) from a Debian sid chroot: one advertising OSFamily=linux ISA=x86-64, one
# ISA=aarch64 (its target binaries run through QEMU binfmt here, standing in for a native
# arm64 pool).
#
#   scripts/reapi-env.sh up       install what is missing (cached), start, wait until ready
#   scripts/reapi-env.sh down     stop everything this script started
#   scripts/reapi-env.sh status   exit 0 when the server and both workers are up
#   scripts/reapi-env.sh restart-server   stop and start the server only (for tests)
#   scripts/reapi-env.sh sql QUERY        query the scheduler's database (jobs, bots)
#   scripts/reapi-env.sh add-worker ISA NAME / remove-worker NAME   (benchmarks)
#
# Idempotent. The venv and the chroot are cached under /var/cache/crossplan-ci/reapi; run
# state (database, logs, pids) lives in $CROSSPLAN_REAPI_STATE (default /var/tmp/crossplan-reapi).
# Network: only the Debian mirror of the machine's apt sources and the configured PyPI index.
set -euo pipefail

CACHE=${CROSSPLAN_REAPI_CACHE:-/var/cache/crossplan-ci/reapi}
STATE=${CROSSPLAN_REAPI_STATE:-/var/tmp/crossplan-reapi}
VENV=$CACHE/bgd-venv
CHROOT=$CACHE/sid
PY313=${CROSSPLAN_PY313:-$(pyenv root 2>/dev/null || echo /root/.pyenv)/versions/3.13.0/bin/python3}
PORT=50051
PGPORT=${CROSSPLAN_REAPI_PGPORT:-54329}
PGUSER_OS=postgres
BUILDGRID_VERSION=0.9.1
WORKERS="x86-64 aarch64"
log() { echo "reapi-env: $*" >&2; }

mirror() {
  local m
  m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$m" ] || { log "no Debian mirror in the apt sources"; exit 3; }
  echo "$m"
}

install_venv() {
  [ -f "$VENV/.crossplan-ok" ] && return 0
  [ -x "$PY313" ] || { log "Python 3.13 not found at $PY313 (pyenv install 3.13.0)"; exit 3; }
  log "creating the BuildGrid venv ($VENV)"
  rm -rf "$VENV"
  "$PY313" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "buildgrid==$BUILDGRID_VERSION"
  touch "$VENV/.crossplan-ok"
}

install_chroot() {
  [ -f "$CHROOT/.crossplan-ok" ] && return 0
  command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >/dev/null
  log "making the Debian sid chroot with buildbox ($CHROOT, ~1 min)"
  local tmp=$CHROOT.tmp
  rm -rf "$tmp"
  debootstrap --variant=minbase sid "$tmp" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 \
    || { log "debootstrap failed: see $CACHE/debootstrap.log"; exit 3; }
  local apt=(chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get -q
             -o Acquire::Check-Valid-Until=false)
  "${apt[@]}" update >/dev/null
  "${apt[@]}" install -y --no-install-recommends buildbox bubblewrap make >/dev/null
  "${apt[@]}" clean
  mkdir -p "$tmp/var/cache/crossplan/toolcache" "$tmp/run/crossplan"
  touch "$tmp/.crossplan-ok"
  rm -rf "$CHROOT" && mv "$tmp" "$CHROOT"
}

install() { mkdir -p "$CACHE"; install_venv; install_chroot; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_db() {
  id "$PGUSER_OS" >/dev/null 2>&1 || useradd -r -M -d /nonexistent "$PGUSER_OS"
  local data=$STATE/pg
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data" && chown "$PGUSER_OS" "$data" && chmod 700 "$data"
    su -s /bin/sh "$PGUSER_OS" -c "initdb -D '$data' -U bgd --auth=trust" >"$STATE/initdb.log"
  fi
  if ! su -s /bin/sh "$PGUSER_OS" -c "pg_ctl -D '$data' status" >/dev/null 2>&1; then
    su -s /bin/sh "$PGUSER_OS" -c "pg_ctl -D '$data' -w -l '$data/server.log' \
      -o '-c listen_addresses=127.0.0.1 -p $PGPORT -k $data' start" >/dev/null
    "$VENV/bin/bgd" migrate apply "$(db_url)" >"$STATE/migrate.log" 2>&1 \
      || { log "bgd migrate failed: see $STATE/migrate.log"; exit 3; }
  fi
}

db_url() { echo "postgresql://bgd@127.0.0.1:$PGPORT/postgres"; }

write_config() {
  cat >"$STATE/bgd.yml" <<EOF
server:
  - !channel
    address: "127.0.0.1:$PORT"
    insecure-mode: true
authorization:
  method: none
connections:
  - !sql-connection &sql
    connection-string: $(db_url)
    pool-size: 10
    max-overflow: 20
storages:
  - !disk-storage &cas
    path: $STATE/cas
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
schedulers:
  - !sql-scheduler &sched
    sql: *sql
    action-cache: *ac
    storage: *cas
    # A static property set: an Execute whose platform matches no label is rejected at once
    # (FAILED_PRECONDITION) instead of queueing for a worker that will never come.
    property-set: !static-property-set
      property-labels:
        - { label: linux-x86-64, properties: [[OSFamily, linux], [ISA, x86-64]] }
        - { label: linux-aarch64, properties: [[OSFamily, linux], [ISA, aarch64]] }
      # No wildcard for crossplan-toolchain: an action built by a system toolchain carries
      # its fingerprint and no label here offers one, so it is rejected, never run by a worker
      # with another compiler (a cluster with such workers lists the value in a label).
    bot-session-keepalive-timeout: 10
    max-execution-timeout: 3600
    assigners:
      - !priority-age-assigner
        count: 2
        interval: 0.02
        priority-assignment-percentage: 95
instances:
  - name: main
    services:
      - !action-cache
        cache: *ac
      - !execution
        scheduler: *sched
        operation-stream-keepalive-timeout: 5
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
thread-pool-size: 60
maximum-concurrent-rpcs: 200
EOF
}

start_server() {
  alive "$STATE/server.pid" && return 0
  write_config
  mkdir -p "$STATE/cas"
  setsid "$VENV/bin/bgd" server start "$STATE/bgd.yml" >>"$STATE/server.log" 2>&1 </dev/null &
  echo $! >"$STATE/server.pid"
}

stop_pid() {  # stop_pid FILE: TERM the recorded process (and its group), then KILL
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

mount_chroot() {  # the chroot's / must be a mount point for bubblewrap (mount --make-rslave /)
  mountpoint -q "$CHROOT" || mount --bind "$CHROOT" "$CHROOT"
  mountpoint -q "$CHROOT/proc" || mount -t proc proc "$CHROOT/proc"
  mountpoint -q "$CHROOT/dev" || mount --bind /dev "$CHROOT/dev"
  mkdir -p "$CHROOT/run/crossplan" "$CHROOT/var/cache/crossplan/toolcache" "$CHROOT/var/cache/casd"
}

start_casd() {
  alive "$STATE/casd.pid" && return 0
  rm -f "$CHROOT/run/crossplan/casd.sock"
  setsid chroot "$CHROOT" buildbox-casd --cas-remote="http://127.0.0.1:$PORT" \
    --cas-instance=main --bind=unix:/run/crossplan/casd.sock --quota-high=20G \
    /var/cache/casd >>"$STATE/casd.log" 2>&1 </dev/null &
  echo $! >"$STATE/casd.pid"
}

start_worker() {  # start_worker ISA [NAME]: a supervisor loop restarting buildbox-worker
  local isa=$1 name=${2:-$1}
  alive "$STATE/supervisor-$name.pid" && return 0
  setsid bash -c '
    while :; do
      chroot "$0" buildbox-worker --bots-remote="http://127.0.0.1:$1" --bots-instance=main \
        --cas-remote=unix:/run/crossplan/casd.sock \
        --buildbox-run=/usr/bin/buildbox-run-hosttools --max-wait-time=5 \
        --platform OSFamily=linux --platform ISA="$2" "crossplan-$4" &
      echo $! >"$3/worker-$4.pid"
      wait $! || true
      echo "worker exited; restarting" >&2
      sleep 0.5
    done' "$CHROOT" "$PORT" "$isa" "$STATE" "$name" >>"$STATE/worker-$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/supervisor-$name.pid"
}

stop_worker() {  # stop_worker NAME
  stop_pid "$STATE/supervisor-$1.pid"
  stop_pid "$STATE/worker-$1.pid"
}

server_ready() {
  "$VENV/bin/python" - "$PORT" <<'EOF' 2>/dev/null
import sys, grpc
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re, remote_execution_pb2_grpc as g
ch = grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}")
g.CapabilitiesStub(ch).GetCapabilities(re.GetCapabilitiesRequest(instance_name="main"), timeout=2)
EOF
}

sql() {  # sql QUERY: rows of the scheduler database, fields joined by |
  "$VENV/bin/python" - "$(db_url)" "$1" <<'EOF'
import sys, psycopg
with psycopg.connect(sys.argv[1], connect_timeout=5) as c:
    for row in c.execute(sys.argv[2]).fetchall():
        print("|".join("" if v is None else str(v) for v in row))
EOF
}

workers_ready() {  # both bots have a session the scheduler knows
  local n
  n=$(sql "select count(distinct bot_id) from bots where bot_id like 'crossplan-%'" 2>/dev/null \
      || echo 0)
  [ "${n:-0}" -ge 2 ] 2>/dev/null
}

wait_ready() {
  local end=$((SECONDS + 60))
  while [ $SECONDS -lt $end ]; do
    if workers_ready && server_ready; then return 0; fi
    sleep 0.2
  done
  log "the cluster did not become ready in 60 s; logs in $STATE"
  tail -n 20 "$STATE/server.log" "$STATE"/worker-*.log >&2 || true
  exit 3
}

up() {
  install
  mkdir -p "$STATE"
  start_db
  start_server
  local end=$((SECONDS + 30))
  until server_ready || [ $SECONDS -ge $end ]; do sleep 0.2; done
  mount_chroot
  start_casd
  for isa in $WORKERS; do start_worker "$isa"; done
  wait_ready
  log "up: grpc://127.0.0.1:$PORT instance main, workers: $WORKERS"
}

sweep() {  # what an interrupted `up` left running without a pid file (another run's `down`
  # removed them, or `up` timed out): found by this cluster's paths in their command lines,
  # each with its process group (a supervisor loop's group holds its worker)
  local url="http://127.0.0.1:$PORT"
  local pats=("buildbox-worker.*$STATE" "buildbox-worker --bots-remote=$url"
              "buildbox-casd --cas-remote=$url" "bgd server start $STATE/")
  local pat pid
  for pat in "${pats[@]}"; do
    for pid in $(pgrep -f -- "$pat" || true); do
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
  done
  for _ in $(seq 30); do
    pgrep -f -- "$(IFS='|'; echo "${pats[*]}")" >/dev/null || return 0
    sleep 0.1
  done
  for pat in "${pats[@]}"; do pkill -KILL -f -- "$pat" || true; done
}

down() {
  for f in "$STATE"/supervisor-*.pid; do
    [ -e "$f" ] || continue
    name=${f##*/supervisor-}; stop_worker "${name%.pid}"
  done
  stop_pid "$STATE/casd.pid"
  stop_pid "$STATE/server.pid"
  sweep
  if [ -f "$STATE/pg/PG_VERSION" ]; then
    su -s /bin/sh "$PGUSER_OS" -c "pg_ctl -D '$STATE/pg' -m fast stop" >/dev/null 2>&1 || true
  fi
  for m in "$CHROOT/dev" "$CHROOT/proc" "$CHROOT"; do
    if mountpoint -q "$m"; then umount -l "$m"; fi
  done
  rm -rf "$STATE"
  log "down"
}

status() {
  local ok=0
  if server_ready; then echo "server: up (127.0.0.1:$PORT, instance main)"; else echo "server: down"; ok=1; fi
  for isa in $WORKERS; do
    if alive "$STATE/worker-$isa.pid"; then echo "worker ISA=$isa: running"; else echo "worker ISA=$isa: down"; ok=1; fi
  done
  return $ok
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  install) install ;;
  restart-server) stop_pid "$STATE/server.pid"; start_server; wait_ready ;;
  sql) sql "$2" ;;
  add-worker) start_worker "$2" "$3" ;;  # add-worker ISA NAME (benchmarks: a second pool member)
  remove-worker) stop_worker "$2" ;;
  *) echo "usage: $0 up|down|status|install|restart-server|sql QUERY|add-worker ISA NAME|remove-worker NAME" >&2
     exit 2 ;;
esac
