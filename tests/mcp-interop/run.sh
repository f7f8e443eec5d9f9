#!/usr/bin/env bash
# Interoperability test with the official MCP Python SDK (pinned in requirements.txt,
# installed into a virtual environment under target/ on first use).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/mcp-interop-venv
if ! "$venv/bin/python" -c 'import mcp' >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/mcp-interop/requirements.txt
fi
cargo build --quiet --locked -p toolgate
# CARGO_TARGET_DIR is honoured (a checkout may share another one's builds).
"$venv/bin/python" tests/mcp-interop/interop.py --binary "${CARGO_TARGET_DIR:-target}/debug/toolgate"
cargo build --quiet --locked -p toolgate --example conformance
"$venv/bin/python" tests/mcp-interop/example.py --binary "${CARGO_TARGET_DIR:-target}/debug/examples/conformance"
"$venv/bin/python" tests/mcp-interop/stdio.py --binary "${CARGO_TARGET_DIR:-target}/debug/toolgate"
"$venv/bin/python" tests/mcp-interop/tasks.py --binary "${CARGO_TARGET_DIR:-target}/debug/toolgate"
