#!/usr/bin/env bash
# The fault and crash scenarios at full size, with the figures they measure.
#
# Runs the fault-injection tests (crates/toolgate/tests/api/faults.rs: the TCP fault
# proxy between toolgate and PostgreSQL, MariaDB, Redis or an HTTP upstream;
# restarts.rs: a private PostgreSQL stopped and crashed, a SQLite log locked by another
# process) and the kill -9 crash tests (audit.rs) with TOOLGATE_FAULT_FULL=1: outages
# of 5 s instead of 1 s, and 20 rounds of kill -9 with `sync` instead of 5. Each test
# asserts what it asserts in `make test`, and prints one or more `figure:` lines
# (what callers got, records kept, recovery times); this script collects them in
# target/bench/faults.txt. docs/operations.md quotes a run of it.
#
# Needs what `make test` needs: PostgreSQL (127.0.0.1:5432, and its server binaries
# for the private instance), MariaDB (127.0.0.1:3306), Redis (127.0.0.1:6379),
# python3. Everything runs on 127.0.0.1, bounded in time (a few minutes); the private
# PostgreSQL and every server started are stopped by the tests themselves.
#
#   ROUNDS of the whole set: ROUNDS=1 (default)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${BENCH_OUT:-target/bench}
mkdir -p "$out"
ROUNDS=${ROUNDS:-1}
filter='test(/^faults::/) | test(/^restarts::/) | test(/kill_9/)'
log=$out/faults.log
: > "$log"
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round of $ROUNDS" | tee -a "$log"
  # One test at a time: the figures are then not disturbed by other tests' load.
  TOOLGATE_FAULT_FULL=1 cargo nextest run -p toolgate --test api --locked \
    --no-fail-fast --no-capture --test-threads 1 -E "$filter" 2>&1 | tee -a "$log" |
    grep -E '^(figure:|        (PASS|FAIL))|Summary' || true
done
{
  echo "# $(date -u +%FT%TZ) $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "# git $(git rev-parse --short HEAD); outages 5 s; kill -9 rounds 20"
  grep '^figure:' "$log" | sed 's/^figure: //'
} > "$out/faults.txt"
echo "figures: $out/faults.txt"
if grep -qE '^ +FAIL ' "$log"; then
  echo "some scenarios failed; see $log" >&2
  exit 1
fi
