#!/usr/bin/env bash
# The FastAPI peer's virtual environment at $1 (default target/bench/peer-venv), made
# from requirements.lock (hashes required) and made again whenever the lock changes.
# Used by `make bench` and by the OpenAPI import test (`make unit`).
set -euo pipefail
cd "$(dirname "$0")/../../.."
venv=${1:-target/bench/peer-venv}
lock=bench/compare/peer/requirements.lock
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ "$(cat "$venv/.lock-sha256" 2>/dev/null)" != "$want" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$lock"
  echo "$want" > "$venv/.lock-sha256"
fi
