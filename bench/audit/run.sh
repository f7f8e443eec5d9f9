#!/usr/bin/env bash
# What the audit log costs: the same echo load with the audit log off, on (async,
# the default) and on with durability = "sync", measured side by side in one run.
# Bounded (DURATION seconds per case), 127.0.0.1 only; needs wrk (Debian package).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=target/release/toolgate
DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
[ -x "$BIN" ] || cargo build --release --locked -p toolgate
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
demo=crates/toolgate-config/src/demo.toml

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run_case() { # name, extra config
  local name=$1 extra=$2 port=18095
  { cat "$demo"; printf '\n%s\n' "$extra"; } | sed "s/127.0.0.1:8080/127.0.0.1:$port/" > "$work/$name.toml"
  TOOLGATE_API_KEY=bench-key "$BIN" serve --config "$work/$name.toml" 2>/dev/null &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
  wrk -t1 -c"$CONNS" -d2s -s bench/audit/post.lua "http://127.0.0.1:$port/api/v1/tools/echo" >/dev/null # warm up
  local t0; t0=$(cpu_ticks "$pid")
  local out; out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s bench/audit/post.lua "http://127.0.0.1:$port/api/v1/tools/echo")
  local t1; t1=$(cpu_ticks "$pid")
  kill -TERM "$pid"; wait "$pid" || true
  local rps reqs p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  local hz; hz=$(getconf CLK_TCK)
  local us; us=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
  printf '%-14s %10s %10s %10s %14s\n' "$name" "$rps" "$p50" "$p99" "$us"
  echo "$rps" > "$work/$name.rps"
}

printf '%-14s %10s %10s %10s %14s\n' case req/s p50 p99 "server CPU µs/req"
run_case audit-off ""
run_case audit-async "[audit]
path = \"$work/async.db\""
run_case audit-sync "[audit]
path = \"$work/sync.db\"
durability = \"sync\""
off=$(cat "$work/audit-off.rps"); on=$(cat "$work/audit-async.rps"); sync=$(cat "$work/audit-sync.rps")
awk -v off="$off" -v on="$on" -v s="$sync" 'BEGIN {
  printf "\nthroughput cost of the audit log: async %.1f%%, sync %.1f%%\n", (1 - on / off) * 100, (1 - s / off) * 100 }'
"$BIN" audit verify --db "$work/async.db"
