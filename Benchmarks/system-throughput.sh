#!/usr/bin/env bash
# The system the way users run it: redis-server on loopback TCP, `docket serve --workers 0` with its journal,
# and W `docket work --concurrency C` processes, release build. Enqueues N no-op jobs (library), then times
# processing until every job is completed in Redis and journaled, and prints CPU µs per job for each process
# (from /proc/PID/stat) beside throughput.
# Usage: Benchmarks/system-throughput.sh [N=50000] [C=16] [W=1]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50000}
c=${2:-16}
w=${3:-1}
bin=${DOCKET_BIN:-.build/release/docket}
[ -n "${DOCKET_BIN:-}" ] || swift build -c release --product docket >/dev/null
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
  --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir"
workers=()
cleanup() {
  for p in "${workers[@]}" ${serve:-}; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.05; done
url="redis://127.0.0.1:$port"
redis_pid=$(cat "$dir/redis.pid")
$bin serve --redis "$url" --workers 0 --port 0 --data-dir "$dir/data" --log-level warning >"$dir/serve.out" 2>"$dir/serve.err" &
serve=$!
for _ in $(seq 200); do grep -q "listening on" "$dir/serve.out" 2>/dev/null && break; sleep 0.05; done
$bin bench --redis "$url" --enqueue-only --jobs "$n" --type docket.noop >/dev/null 2>&1
# Let the journal take in the enqueues first: processing is measured alone.
journal="$dir/data/journal.sqlite"
until [ "$(sqlite3 "$journal" "SELECT COUNT(*) FROM job" 2>/dev/null || echo 0)" -ge "$n" ]; do sleep 0.1; done
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
r0=$(ticks "$redis_pid"); s0=$(ticks "$serve")
start=$(date +%s.%N)
for _ in $(seq "$w"); do
  $bin work --redis "$url" --concurrency "$c" --log-level warning 2>>"$dir/work.err" &
  workers+=($!)
done
while [ "$(redis-cli -p "$port" HGET 'docket:{default}:stats' completed)" != "$n" ]; do sleep 0.02; done
processed=$(date +%s.%N)
wt=0; for p in "${workers[@]}"; do wt=$((wt + $(ticks "$p"))); done
until [ "$(sqlite3 "$journal" "SELECT COUNT(*) FROM job WHERE state = 'completed'" 2>/dev/null || echo 0)" -ge "$n" ]; do sleep 0.02; done
journaled=$(date +%s.%N)
r1=$(ticks "$redis_pid"); s1=$(ticks "$serve")
hz=$(getconf CLK_TCK)
python3 - "$n" "$c" "$w" "$start" "$processed" "$journaled" "$wt" "$((s1 - s0))" "$((r1 - r0))" "$hz" <<'PY'
import sys
n, c, w = map(int, sys.argv[1:4]); start, processed, journaled = map(float, sys.argv[4:7])
work, serve, redis, hz = map(int, sys.argv[7:11])
t = processed - start
us = lambda ticks: ticks / hz * 1e6 / n
print(f"{n} no-op jobs, {w} docket work x {c}, docket serve (journal on), redis on loopback TCP")
print(f"  processed in {t:.2f} s = {n / t:,.0f} jobs/s; journaled {journaled - processed:.2f} s later")
print(f"  CPU per job: work {us(work):.0f} µs (at processed), serve {us(serve):.0f} µs, redis {us(redis):.0f} µs, total {us(work) + us(serve) + us(redis):.0f} µs")
PY
