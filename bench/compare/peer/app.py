"""The FastAPI peer of bench/compare: the service toolgate replaces, reduced to what the
benchmark calls, written the way such a service is usually written.

- `X-Tool-API-Key` (or `Authorization: Bearer`): missing 401, unknown 403, as
  problem+json. Keys are kept as SHA-256 digests and compared with
  `hmac.compare_digest`, as toolgate does.
- `POST /api/v1/tools/execute`: toolgate's batch body (`{"calls": [{"id"?, "tool",
  "arguments"}], "mode"?, "timeout_ms"?}`), pydantic-validated. The calls run in an
  `asyncio.TaskGroup` (the first failure cancels the siblings, as `fail_fast` does)
  inside an OpenTelemetry span `execute_tools_group`, with one child span per call.
  `all_settled` runs them to the end. The answer is toolgate's:
  `{"success", "data": [{"id", "tool", "ok", "output" | "error", "duration_ms"}]}`.
- Two async tools: `echo` (returns its arguments) and `sleep`
  (`await asyncio.sleep(ms / 1000)`, `{"ms": 0..=600000}`).
- `GET /healthz`, `GET /readyz`.

OpenTelemetry: an SDK `TracerProvider` with no span processor and no exporter, so
spans are created, sampled and ended, and go nowhere ("tracing enabled but not
exporting"). `BENCH_PEER_OTEL=off` leaves the API's no-op provider instead.

Keys: `BENCH_PEER_KEYS` is a comma-separated list of keys (default `bench-key`).

Run: `uvicorn app:app --app-dir bench/compare/peer --loop uvloop --http httptools`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import time
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from pydantic import BaseModel, Field, ValidationError

if os.environ.get("BENCH_PEER_OTEL", "on") != "off":
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider())
tracer = trace.get_tracer("toolgate-peer")

KEY_DIGESTS = [
    hashlib.sha256(k.strip().encode()).digest()
    for k in os.environ.get("BENCH_PEER_KEYS", "bench-key").split(",")
    if k.strip()
]

# No OpenAPI document for the benchmark (nothing it measures reads one);
# BENCH_PEER_OPENAPI=on serves FastAPI's at /openapi.json (the import test reads it).
OPENAPI_URL = "/openapi.json" if os.environ.get("BENCH_PEER_OPENAPI") == "on" else None
app = FastAPI(title="toolgate peer", openapi_url=OPENAPI_URL, docs_url=None, redoc_url=None)


# --- errors: RFC 9457 problem+json, as toolgate answers -------------------------------


class ProblemError(Exception):
    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        self.status, self.code, self.detail, self.extra = status, code, detail, extra

    def body(self) -> dict[str, Any]:
        return {"type": "about:blank", "title": self.code.replace("_", " "), "status": self.status,
                "code": self.code, "detail": self.detail, **self.extra}


@app.exception_handler(ProblemError)
async def problem_handler(_request: Request, exc: ProblemError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="toolgate"'} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers,
                        media_type="application/problem+json")


# --- auth ------------------------------------------------------------------------------


async def require_key(
    x_tool_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    """A dependency: it runs before the body is parsed, so a bad key is 401/403 whatever
    the body."""
    key = x_tool_api_key
    if key is None and authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    if not key:
        raise ProblemError(401, "unauthorized", "an API key is required (X-Tool-API-Key)")
    digest = hashlib.sha256(key.encode()).digest()
    if not any(hmac.compare_digest(digest, known) for known in KEY_DIGESTS):
        raise ProblemError(403, "forbidden", "unknown API key")


# --- the batch -------------------------------------------------------------------------


class Call(BaseModel):
    id: str | None = None
    tool: str = Field(min_length=1, max_length=64)
    arguments: dict[str, Any] = Field(default_factory=dict)


class Batch(BaseModel):
    calls: list[Call] = Field(min_length=1, max_length=64)
    mode: Literal["fail_fast", "all_settled"] = "fail_fast"
    timeout_ms: int | None = Field(default=None, ge=1)


class Outcome(BaseModel):
    id: str
    tool: str
    ok: bool
    output: Any = None
    error: dict[str, Any] | None = None
    duration_ms: int


class BatchResponse(BaseModel):
    success: bool
    data: list[Outcome]


class SleepArgs(BaseModel):
    ms: int = Field(ge=0, le=600_000)


async def echo(arguments: dict[str, Any]) -> Any:
    return arguments


async def sleep(arguments: dict[str, Any]) -> Any:
    ms = SleepArgs.model_validate(arguments).ms
    await asyncio.sleep(ms / 1000)
    return {"slept_ms": ms}


TOOLS = {"echo": echo, "sleep": sleep}


class CallFailed(Exception):
    def __init__(self, problem: ProblemError) -> None:
        self.problem = problem


async def run_call(call: Call, call_id: str, outcomes: dict[str, Outcome]) -> None:
    start = time.monotonic()
    with tracer.start_as_current_span(f"execute_tool {call.tool}") as span:
        span.set_attribute("gen_ai.operation.name", "execute_tool")
        span.set_attribute("gen_ai.tool.name", call.tool)
        try:
            tool = TOOLS.get(call.tool)
            if tool is None:
                raise ProblemError(404, "tool_not_found", f"no tool {call.tool!r}", tool=call.tool)
            try:
                output = await tool(call.arguments)
            except ValidationError as e:
                errors = [{"pointer": "/" + "/".join(str(p) for p in err["loc"]), "message": err["msg"]}
                          for err in e.errors()]
                raise ProblemError(422, "invalid_arguments", "the arguments do not match the tool's schema",
                                   tool=call.tool, errors=errors) from None
        except ProblemError as p:
            span.set_attribute("error.type", p.code)
            outcomes[call_id] = Outcome(id=call_id, tool=call.tool, ok=False, error=p.body(),
                                        duration_ms=int((time.monotonic() - start) * 1000))
            raise CallFailed(p) from None
        except asyncio.CancelledError:
            outcomes[call_id] = Outcome(
                id=call_id, tool=call.tool, ok=False, duration_ms=int((time.monotonic() - start) * 1000),
                error=ProblemError(499, "cancelled", "cancelled (a sibling failed, or the deadline passed)").body())
            raise
        outcomes[call_id] = Outcome(id=call_id, tool=call.tool, ok=True, output=output,
                                    duration_ms=int((time.monotonic() - start) * 1000))


async def settle(call: Call, call_id: str, outcomes: dict[str, Outcome]) -> None:
    try:
        await run_call(call, call_id, outcomes)
    except CallFailed:
        pass


@app.post("/api/v1/tools/execute", response_model=BatchResponse, response_model_exclude_none=True,
          dependencies=[Depends(require_key)])
async def execute(batch: Batch) -> Any:
    ids = [c.id if c.id is not None else str(i) for i, c in enumerate(batch.calls)]
    outcomes: dict[str, Outcome] = {}
    failure: ProblemError | None = None
    with tracer.start_as_current_span("execute_tools_group") as span:
        span.set_attribute("toolgate.batch.mode", batch.mode)
        span.set_attribute("toolgate.batch.size", len(batch.calls))
        try:
            async with asyncio.timeout(batch.timeout_ms / 1000 if batch.timeout_ms else None):
                async with asyncio.TaskGroup() as group:
                    runner = run_call if batch.mode == "fail_fast" else settle
                    for call, call_id in zip(batch.calls, ids):
                        group.create_task(runner(call, call_id, outcomes))
        except* CallFailed as eg:
            failure = eg.exceptions[0].problem  # type: ignore[attr-defined]
        except* TimeoutError:
            failure = ProblemError(504, "timeout", "the batch's deadline passed")
    data = [outcomes.get(i) or Outcome(id=i, tool=c.tool, ok=False, duration_ms=0, error=(
        failure or ProblemError(499, "cancelled", "cancelled")).body()) for c, i in zip(batch.calls, ids)]
    if failure is not None:
        return JSONResponse({"success": False, "data": [d.model_dump(exclude_none=True) for d in data],
                             "error": failure.body()}, status_code=failure.status)
    return BatchResponse(success=all(d.ok for d in data), data=data)


# --- operations ------------------------------------------------------------------------


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/readyz")
async def readyz() -> dict[str, Any]:
    return {"status": "ready", "checks": {}}
