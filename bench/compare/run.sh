#!/usr/bin/env bash
# `make bench`: toolgate against a FastAPI peer and a bare axum handler, in one run.
# See bench/compare/README.md. Builds toolgate (release) and the bare baseline, makes
# the peer's virtual environment from its lock file, then runs run.py, which starts
# the servers on 127.0.0.1, drives them with wrk (bounded in time), prints the table
# and writes target/bench/results.json and docs/performance.svg.
#
#   BENCH_DURATION=20   seconds per scenario (a full run takes about 12 minutes)
#   BENCH_NO_BUILD=1    skip the cargo builds (use the binaries as they are)
#   more settings: bench/compare/run.py's docstring
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=${BENCH_OUT:-target/bench}
case $out in /*) ;; *) out=$root/$out ;; esac
mkdir -p "$out"

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "Python 3.11 or newer is needed (the peer uses asyncio.TaskGroup)" >&2; exit 2; }

# Cargo runs one at a time on a shared machine: when flock exists, builds take the
# same lock as the other cargo commands run there (harmless when nobody else does).
cargo=(cargo)
if command -v flock >/dev/null; then
  cargo=(flock "${TOOLGATE_CARGO_LOCK:-/tmp/toolgate-cargo.lock}" cargo)
fi
# CARGO_TARGET_DIR is honoured (a fresh clone can share another checkout's builds).
target=${CARGO_TARGET_DIR:-$root/target}
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  "${cargo[@]}" build --release --locked -p toolgate
  (cd bench/mcp/bare && CARGO_TARGET_DIR="$target/bench-bare" "${cargo[@]}" build --release --locked)
fi
export BENCH_TOOLGATE=${BENCH_TOOLGATE:-$target/release/toolgate}
export BENCH_BARE=${BENCH_BARE:-$target/bench-bare/release/bare-rmcp}

# The peer's virtual environment, rebuilt whenever the lock file changes.
venv=$out/peer-venv
bench/compare/peer/venv.sh "$venv"
export BENCH_PEER_PYTHON=$venv/bin/python

# 10,000 connections: one fd each in wrk and in the server.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# run.py puts itself and everything it starts (servers, wrk) in a process group of its
# own (its id is run.py's pid); whatever happens, that group is gone when this exits.
# (run.py also kills a group left by an earlier run that was killed with SIGKILL.)
kill_group() { # pgid: TERM, then KILL what is left
  local g=$1
  kill -0 -- "-$g" 2>/dev/null || return 0
  kill -TERM -- "-$g" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 -- "-$g" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -KILL -- "-$g" 2>/dev/null || true
}
pid=
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$pid" ]; then
    kill_group "$pid"
    kill -KILL "$pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

"$BENCH_PEER_PYTHON" bench/compare/run.py &
pid=$!
rc=0
wait "$pid" || rc=$?
exit "$rc"
