#!/usr/bin/env bash
# Validate the generated OpenAPI document against the OpenAPI 3.1 specification with
# openapi-spec-validator (pinned in scripts/requirements-openapi.txt, installed into .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if [ ! -x "$venv/bin/openapi-spec-validator" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-openapi.txt
fi
mkdir -p target
cargo run --quiet --locked -p toolgate -- openapi > target/openapi.json
"$venv/bin/openapi-spec-validator" target/openapi.json
