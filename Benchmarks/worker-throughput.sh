#!/usr/bin/env bash
# No-op processing throughput of one `docket work` process: enqueue N docket.noop jobs, start the
# worker, and time until every job is completed. Usage: Benchmarks/worker-throughput.sh [N] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50000}
c=${2:-16}
swift build -c release --product docket >/dev/null
bin=.build/release/docket
dir=$(mktemp -d)
redis-server --port 0 --unixsocket "$dir/redis.sock" --save "" --appendonly no --daemonize yes \
  --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir"
trap 'kill "$(cat "$dir/redis.pid")" 2>/dev/null; [ -n "${w:-}" ] && kill "$w" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$dir/redis.sock" ] && break; sleep 0.05; done
url="unix://$dir/redis.sock"
$bin bench --redis "$url" --prefix wbench --enqueue-only --jobs "$n" --type docket.noop 2>/dev/null
start=$(date +%s.%N)
$bin work --redis "$url" --prefix wbench --concurrency "$c" --log-level warning &
w=$!
while [ "$(redis-cli -s "$dir/redis.sock" HGET 'wbench:{default}:stats' completed)" != "$n" ]; do sleep 0.05; done
end=$(date +%s.%N)
kill -TERM "$w"; wait "$w" || true; w=
echo "docket work --concurrency $c: $n no-op jobs in $(echo "$end - $start" | bc -l | cut -c1-5)s = $(echo "$n / ($end - $start)" | bc -l | cut -d. -f1) jobs/s"
