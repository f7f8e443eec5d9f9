#!/usr/bin/env bash
# Serve toolgate for the client tests.
#
#   clients/testserver.sh CONFIG_PATH
#
# Writes the conformance configuration (the embedded demo configuration plus
# clients/testdata/conformance.toml) to CONFIG_PATH, then replaces itself with
# `toolgate serve --listen 127.0.0.1:0 --config CONFIG_PATH` (JSON logs, info level).
# The caller sets TOOLGATE_API_KEY (the operator key), reads stderr for the JSON line
# whose "msg" is "listening" (its "addr" is the bound address), keeps draining stderr,
# and stops the server with SIGTERM. The binary is $TOOLGATE_BIN, or
# target/debug/toolgate (built with `cargo build --locked -p toolgate` when missing).
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 CONFIG_PATH" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=${TOOLGATE_BIN:-$root/target/debug/toolgate}
if [ ! -x "$bin" ]; then
  (cd "$root" && cargo build --locked -p toolgate) >&2
fi
# The demo's [server] table only sets `listen`; conformance.toml brings its own.
awk '/^\[/ { skip = ($0 == "[server]") } !skip' "$root/crates/toolgate-config/src/demo.toml" >"$1"
cat "$here/testdata/conformance.toml" >>"$1"
# JSON logs at info level whatever the environment says: the caller needs "listening".
exec "$bin" --log-format json --log-level info serve --listen 127.0.0.1:0 --config "$1"
