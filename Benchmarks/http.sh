#!/usr/bin/env bash
# HTTP throughput and latency of `docket serve` (journaling on, no embedded workers) with wrk:
# POST /jobs (single), POST /jobs/batch (100 per request), GET /jobs/{id}. Usage: Benchmarks/http.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
command -v wrk >/dev/null || { echo "install wrk: apt-get install wrk" >&2; exit 1; }
swift build -c release --product docket >/dev/null
dir=$(mktemp -d)
port=18090
.build/release/docket serve --data-dir "$dir" --port $port --workers 0 --log-level warning >"$dir/serve.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
cat >"$dir/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"type":"bench.job","payload":{"user":42,"action":"signup"}}'
LUA
python3 - "$dir/batch.lua" <<'PY'
import json, sys
body = json.dumps({"jobs": [{"type": "bench.job", "payload": {"i": i}} for i in range(100)]})
open(sys.argv[1], "w").write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = %s\n' % json.dumps(body))
PY
report() { grep -E "Requests/sec|^ +50%|^ +99%|Non-2xx" | sed 's/^/  /'; }
echo "POST /jobs (50 connections)"; wrk -t2 -c50 -d"${secs}s" --latency -s "$dir/post.lua" "http://127.0.0.1:$port/jobs" | report
echo "POST /jobs/batch, 100 jobs per request (16 connections)"; wrk -t2 -c16 -d"${secs}s" --latency -s "$dir/batch.lua" "http://127.0.0.1:$port/jobs/batch" | report
id=$(curl -s -X POST "http://127.0.0.1:$port/jobs" -H 'Content-Type: application/json' -d '{"type":"x"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "GET /jobs/{id} (50 connections)"; wrk -t2 -c50 -d"${secs}s" --latency "http://127.0.0.1:$port/jobs/$id" | report
