#!/usr/bin/env bash
# Vendor the /docs page's script: the browser bundle of @scalar/api-reference at the
# pinned VERSION, from the npm registry, gzip-compressed into
# crates/toolgate-server/assets/. Prints the bundle's SHA-256 for the assets README.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: scripts/vendor-api-reference.sh VERSION}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@scalar/api-reference@$version" >/dev/null && tar xzf ./*.tgz)
bundle=$work/package/dist/browser/standalone.js
out=crates/toolgate-server/assets/scalar-api-reference-$version.js.gz
gzip -9 -n -c "$bundle" > "$out"
echo "wrote $out; the bundle's SHA-256: $(sha256sum "$bundle" | cut -d' ' -f1)"
echo "now point API_REFERENCE in crates/toolgate-server/src/openapi.rs at it"
