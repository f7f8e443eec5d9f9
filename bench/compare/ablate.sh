#!/usr/bin/env bash
# Where the CPU of a zero-latency batch goes: the `make bench` batch (echo + echo, 64
# connections) against toolgate with the costly features switched off one at a time.
#
#   all        bench/compare/toolgate.toml as `make bench` runs it (OTEL_TRACES_EXPORTER=none)
#   otel-off   no OTEL_* variable, so no OpenTelemetry
#   audit-off  the config without its [audit] section
#   logs-off   TOOLGATE_LOG=warn: no info lines, and no spans for OpenTelemetry either
#   none       all three off
#
# Each case runs on a fresh server, ROUNDS times in rotation (so drift hits every case
# alike); the median server CPU per request and req/s are printed. Bounded, 127.0.0.1
# only; needs wrk and curl. docs/performance.md quotes its output.
#
#   ROUNDS=5 DURATION=5 BIN=target/release/toolgate
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/toolgate}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
[ -x "$BIN" ] || { echo "no $BIN: build it with cargo build --release -p toolgate" >&2; exit 2; }
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

base=bench/compare/toolgate.toml
cp "$base" "$work/on.toml"
awk '/^\[audit\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' "$base" > "$work/off.toml"
body='{"calls":[{"tool":"echo","arguments":{"n":1}},{"tool":"echo","arguments":{"n":2}}]}'
hz=$(getconf CLK_TCK)

run_case() { # name config log otel
  local name=$1 config=$2 log=$3 otel=$4 port=18250
  local env=(env -u OTEL_TRACES_EXPORTER -u OTEL_EXPORTER_OTLP_ENDPOINT
             BENCH_AUDIT_DB="$work/audit-$RANDOM.db" TOOLGATE_LOG="$log")
  [ "$otel" = on ] && env+=(OTEL_TRACES_EXPORTER=none)
  "${env[@]}" "$BIN" serve --config "$config" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
  local load=(wrk -t2 -c64 -s bench/compare/request.lua "http://127.0.0.1:$port/api/v1/tools/execute")
  export BENCH_METHOD=POST BENCH_BODY="$body" BENCH_KEY=bench-key BENCH_EXPECT_BODY='"success":true'
  "${load[@]}" -d2s >/dev/null
  local t0 t1 out
  t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  out=$("${load[@]}" -d"${DURATION}s" | sed -n 's/^RESULT //p')
  t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
  python3 -c 'import json, sys
r = json.loads(sys.argv[1]); ticks, hz = int(sys.argv[2]), int(sys.argv[3])
bad = r["failed"] + r["connect_errors"] + r["read_errors"] + r["timeouts"]
if bad: sys.exit(f"{sys.argv[4]}: {bad} failed requests")
print(sys.argv[4], r["requests"] / (r["duration_us"] / 1e6), ticks / hz * 1e6 / r["requests"])' \
    "$out" $((t1 - t0)) "$hz" "$name" | tee -a "$work/results" >&2
}

for r in $(seq 1 "$ROUNDS"); do
  echo "round $r of $ROUNDS" >&2
  run_case all "$work/on.toml" info on
  run_case otel-off "$work/on.toml" info off
  run_case audit-off "$work/off.toml" info on
  run_case logs-off "$work/on.toml" warn on
  run_case none "$work/off.toml" warn off
done
# The machine's speed drifts (other tenants): each case is compared with "all" in the
# same round, and the medians of those per-round differences are printed.
python3 - "$work/results" <<'PY'
import statistics, sys
cases = ["all", "otel-off", "audit-off", "logs-off", "none"]
rows = [l.split() for l in open(sys.argv[1])]
rounds = [dict((r[0], (float(r[1]), float(r[2]))) for r in rows[i:i + 5]) for i in range(0, len(rows), 5)]
print(f"{'case':<10} {'CPU µs/req':>11} {'saved vs all':>13} {'req/s':>9}   (medians of {len(rounds)} rounds)")
for case in cases:
    cpu = statistics.median(r[case][1] for r in rounds)
    saved = statistics.median(r["all"][1] - r[case][1] for r in rounds)
    rps = statistics.median(r[case][0] for r in rounds)
    print(f"{case:<10} {cpu:>11.1f} {saved:>13.1f} {rps:>9.0f}")
PY
