# toolgate: `make test` is what CI runs (.ci/run calls it).

CARGO ?= cargo

.PHONY: test idp-deps peer-venv fmt-check lint deny unit doc-test openapi-check mcp-interop mcp-conformance clients-test run build release fmt bench

## Everything CI checks: formatting, lints, the dependency policy, all tests, OpenAPI
## validity, MCP interop. `unit` stays last so that the nextest summary is the last
## thing printed.
test: fmt-check lint deny doc-test openapi-check mcp-interop mcp-conformance clients-test unit

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## Licenses, banned crates and sources of every dependency (deny.toml).
deny:
	$(CARGO) deny --locked check bans licenses sources

## The test identity provider's packages (tests/idp) and the official MCP TypeScript
## SDK (tests/mcp-sdk), each from its lock file.
idp-deps:
	@if command -v npm >/dev/null 2>&1; then \
		[ -d tests/idp/node_modules/oidc-provider ] || (cd tests/idp && npm ci --no-audit --no-fund); \
		[ -d tests/mcp-sdk/node_modules/@modelcontextprotocol/sdk ] || (cd tests/mcp-sdk && npm ci --no-audit --no-fund); \
	else \
		echo "npm is missing: the identity tests will be skipped" >&2; \
	fi

## The FastAPI peer's virtual environment (from its lock file): the OpenAPI import
## test imports the peer's live /openapi.json.
peer-venv:
	bench/compare/peer/venv.sh target/bench/peer-venv

## Unit and integration tests (nextest when installed, cargo test otherwise).
unit: idp-deps peer-venv
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --locked --no-fail-fast; \
	else \
		$(CARGO) test --workspace --locked --no-fail-fast; \
	fi

doc-test:
	$(CARGO) test --workspace --locked --doc

openapi-check:
	scripts/check-openapi.sh

## Client libraries (clients/: Go, PHP, Python): go vet, php -l, mypy --strict, and
## each client's tests against a real server.
clients-test:
	clients/test.sh

## The official MCP Python SDK against a real server (venv under target/).
mcp-interop:
	tests/mcp-interop/run.sh

## The official MCP conformance suite's server scenarios against the demo server,
## and the library example server, checked against tests/mcp-conformance/baseline-*.yml
## (Node 22 from its lock file).
mcp-conformance:
	tests/mcp-conformance/run.sh

## Serve the embedded demo on 127.0.0.1:8080.
run:
	$(CARGO) run --release --locked -- serve

build:
	$(CARGO) build --workspace --locked

release:
	$(CARGO) build --release --locked -p toolgate

## toolgate against a FastAPI peer and a bare axum handler, printed as one table, with
## target/bench/results.json and docs/performance.svg (bench/compare/README.md). About
## 12 minutes; not part of `test`. BENCH_DURATION=N seconds per scenario,
## BENCH_NO_BUILD=1 to skip the cargo builds.
bench:
	bench/compare/run.sh

fmt:
	$(CARGO) fmt --all
