#!/usr/bin/env bash
# Recovery speed: rebuild an emptied Redis from a journal of N live jobs (plus finished ones with idempotency
# keys), then a second pass over an intact Redis, then stale copies set back. Release build, throwaway Redis.
# Usage: Benchmarks/recovery.sh [live jobs, default 100000] [finished jobs, default 20000]
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product docket >/dev/null
.build/release/docket bench-recovery --jobs "${1:-100000}" --finished "${2:-20000}"
