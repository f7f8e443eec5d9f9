#!/usr/bin/env bash
# Check and test every client library against a real toolgate (`make clients-test`):
#
#   Go      gofmt, go vet, go test
#   PHP     php -l on every file, PHPUnit
#   Python  mypy --strict, pytest (in clients/python/.venv, from requirements-dev.txt)
#
# Each test suite starts its own server with clients/testserver.sh from the debug
# binary, which is built here first (unless TOOLGATE_BIN names one). Run one language
# with: clients/test.sh go|php|python
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(go php python)

# TOOLGATE_BIN=/path/to/toolgate tests that binary instead of building one.
if [ -z "${TOOLGATE_BIN:-}" ]; then
  (cd "$root" && cargo build --quiet --locked -p toolgate)
  export TOOLGATE_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/toolgate"
fi

step() { printf '\n== clients: %s\n' "$*"; }

test_go() {
  cd "$here/go"
  step "go $(go env GOVERSION): gofmt, go vet, go test"
  local unformatted
  unformatted=$(gofmt -l .)
  if [ -n "$unformatted" ]; then
    echo "gofmt would change: $unformatted" >&2
    return 1
  fi
  go vet ./...
  go test -count=1 ./...
}

test_php() {
  cd "$here/php"
  step "$(php -r 'echo "php ", PHP_VERSION;'): php -l, phpunit"
  local f out failed=0
  while IFS= read -r -d '' f; do
    if ! out=$(php -l "$f" 2>&1); then
      echo "$out" >&2
      failed=1
    fi
  done < <(find src tests -name '*.php' -print0)
  [ "$failed" = 0 ]
  phpunit --do-not-cache-result
}

test_python() {
  cd "$here/python"
  local venv=.venv stamp
  stamp=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
  if [ ! -x "$venv/bin/pytest" ] || [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$stamp" ]; then
    step "python: installing requirements-dev.txt into clients/python/$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-dev.txt
    echo "$stamp" >"$venv/.requirements"
  fi
  step "$("$venv/bin/python" --version): mypy --strict, pytest"
  "$venv/bin/mypy" --strict
  "$venv/bin/pytest" -q -p no:cacheprovider
}

for lang in "${langs[@]}"; do
  case "$lang" in
    go) (test_go) ;;
    php) (test_php) ;;
    python) (test_python) ;;
    *) echo "unknown client: $lang (want go, php or python)" >&2; exit 2 ;;
  esac
done
