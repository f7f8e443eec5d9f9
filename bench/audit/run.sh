#!/usr/bin/env bash
# What the audit log costs on the benchmark scenario of `make bench`: a batch of two
# zero-latency echo calls (two audit records per request) at 64 connections, with
# every other feature on (bench/compare/toolgate.toml: key and scope check, JSON logs,
# metrics, OpenTelemetry spans with OTEL_TRACES_EXPORTER=none).
#
# Two servers run side by side, identical except that one has the [audit] section
# (SQLite, durability = "async") and the other has none. They are loaded in
# alternating rounds (off, on, off, on, ...) so that drifting background load hits
# both alike; the cost is the median over rounds of each round's on/off ratio. With SYNC=1 a third server with
# durability = "sync" joins the rotation.
#
# Bounded: ROUNDS x (WARMUP + DURATION) seconds per server, 127.0.0.1 only; every
# server is stopped on exit. Needs wrk and curl (Debian packages).
#
#   ROUNDS=9 DURATION=5 WARMUP=2 CONNS=64 THREADS=2 SYNC=0 BIN=target/release/toolgate
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/toolgate}
ROUNDS=${ROUNDS:-9}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
SYNC=${SYNC:-0}
[ -x "$BIN" ] || cargo build --release --locked -p toolgate
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

base=bench/compare/toolgate.toml
# The config without its [audit] section (it ends at the next table header).
awk '/^\[audit\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' "$base" > "$work/off.toml"
cp "$base" "$work/on.toml"
{ cat "$base"; } | sed 's/^durability = "async"/durability = "sync"/' > "$work/sync.toml"

cases=(off on)
[ "$SYNC" = 1 ] && cases+=(sync)
declare -A port
n=0
for c in "${cases[@]}"; do
  port[$c]=$((18190 + n)); n=$((n + 1))
  BENCH_AUDIT_DB="$work/$c.db" OTEL_TRACES_EXPORTER=none \
    "$BIN" serve --config "$work/$c.toml" --listen "127.0.0.1:${port[$c]}" \
    >"$work/$c.log" 2>&1 &
  pids+=($!)
  eval "pid_$c=$!"
done
for c in "${cases[@]}"; do
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:${port[$c]}/readyz" >/dev/null && continue 2
    sleep 0.05
  done
  echo "the $c server did not become ready; its log:" >&2
  cat "$work/$c.log" >&2
  exit 1
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
body='{"calls":[{"tool":"echo","arguments":{"n":1}},{"tool":"echo","arguments":{"n":2}}]}'
load() { # port seconds
  BENCH_METHOD=POST BENCH_BODY="$body" BENCH_KEY=bench-key BENCH_EXPECT_BODY='"success":true' \
    wrk -t"$THREADS" -c"$CONNS" -d"$2s" -s bench/compare/request.lua \
    "http://127.0.0.1:$1/api/v1/tools/execute"
}

printf '%-6s %-5s %10s %12s %8s\n' round case req/s "CPU µs/req" failed
for r in $(seq 1 "$ROUNDS"); do
  for c in "${cases[@]}"; do
    pid_var="pid_$c"; pid=${!pid_var}
    [ "$WARMUP" -gt 0 ] && load "${port[$c]}" "$WARMUP" >/dev/null
    t0=$(cpu_ticks "$pid")
    out=$(load "${port[$c]}" "$DURATION")
    t1=$(cpu_ticks "$pid")
    result=$(grep '^RESULT ' <<<"$out" | sed 's/^RESULT //')
    read -r reqs secs failed < <(python3 -c 'import json, sys
r = json.loads(sys.argv[1])
print(r["requests"], r["duration_us"] / 1e6, r["failed"] + r["connect_errors"] + r["read_errors"] + r["timeouts"])' "$result")
    rps=$(awk -v n="$reqs" -v d="$secs" 'BEGIN { printf "%.0f", n / d }')
    us=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
    printf '%-6s %-5s %10s %12s %8s\n' "$r" "$c" "$rps" "$us" "$failed"
    echo "$rps $us $failed" >> "$work/$c.rounds"
  done
done

# Each round's cost compares the two servers measured back to back; the machine's
# speed drifts (other tenants, frequency), and a ratio within one round is steadier
# than a ratio of medians taken over rounds at different speeds.
python3 - "$work" "${cases[@]}" <<'PY'
import statistics, sys
work, cases = sys.argv[1], sys.argv[2:]
rounds = {c: [tuple(map(float, l.split())) for l in open(f"{work}/{c}.rounds")] for c in cases}
bad = {c: int(sum(r[2] for r in rows)) for c, rows in rounds.items()}
print()
print(f"{'case':<5} {'median req/s':>14} {'median CPU µs/req':>18}")
for c in cases:
    print(f"{c:<5} {statistics.median(r[0] for r in rounds[c]):>14.0f} {statistics.median(r[1] for r in rounds[c]):>18.1f}")
for c in cases:
    if c == "off":
        continue
    costs = [1 - on[0] / off[0] for on, off in zip(rounds[c], rounds["off"])]
    extra = [on[1] - off[1] for on, off in zip(rounds[c], rounds["off"])]
    print(f"audit {c}: throughput cost {statistics.median(costs) * 100:.1f}% (median of {len(costs)} "
          f"rounds; each round: {', '.join(f'{x * 100:.1f}' for x in costs)}), "
          f"CPU +{statistics.median(extra):.1f} µs per request")
if any(bad.values()):
    sys.exit(f"failed requests: {bad}")
PY
kill -TERM "${pids[@]}" 2>/dev/null || true
wait 2>/dev/null || true
pids=()
for c in "${cases[@]}"; do
  [ "$c" = off ] && continue
  printf '%s: ' "$c"
  "$BIN" audit verify --db "$work/$c.db"
done
