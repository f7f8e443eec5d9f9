"""Runs clients/conformance.json cases with the sync and the async client."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any, cast

from toolgate_client import (
    AsyncClient,
    BatchCall,
    BatchEntry,
    BatchResult,
    CallCancelledError,
    CallResult,
    CircuitOpenError,
    Client,
    DoneEvent,
    ErrorEvent,
    ForbiddenError,
    InvalidArgumentsError,
    InvalidJSONError,
    OverloadedError,
    PayloadTooLargeError,
    ProgressEvent,
    RateLimitedError,
    ResultEvent,
    RetryPolicy,
    StreamEvent,
    ToolError,
    ToolgateError,
    ToolInfo,
    ToolNotFoundError,
    ToolTimeoutError,
    UnauthorizedError,
    UpstreamError,
)

from conftest import CONFORMANCE

KEYS: dict[str, str | None] = CONFORMANCE["keys"]

# The exception class each code must raise (written out, not taken from the library).
CLASS_FOR_CODE: dict[str, type[ToolgateError]] = {
    "invalid_json": InvalidJSONError,
    "invalid_arguments": InvalidArgumentsError,
    "unauthorized": UnauthorizedError,
    "forbidden": ForbiddenError,
    "tool_not_found": ToolNotFoundError,
    "payload_too_large": PayloadTooLargeError,
    "rate_limited": RateLimitedError,
    "overloaded": OverloadedError,
    "timeout": ToolTimeoutError,
    "circuit_open": CircuitOpenError,
    "upstream_error": UpstreamError,
    "tool_error": ToolError,
    "cancelled": CallCancelledError,
}


@dataclass
class Outcome:
    value: Any = None
    events: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    elapsed: float = 0.0


# === typed values back to JSON, to match against the expectations ===


def problem(e: ToolgateError) -> dict[str, Any]:
    assert CLASS_FOR_CODE.get(e.code, ToolgateError) is type(e), f"{type(e).__name__} for {e.code}"
    return e.to_problem()


def entry_json(e: BatchEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"id": e.id, "tool": e.tool, "ok": e.ok, "duration_ms": e.duration_ms}
    if e.ok:
        out["output"] = e.output
    if e.error is not None:
        out["error"] = problem(e.error)
    return out


def batch_json(b: BatchResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "status": b.status,
        "success": b.success,
        "data": [entry_json(e) for e in b.data],
        "trace_id": b.trace_id,
    }
    if b.error is not None:
        out["error"] = problem(b.error)
    return out


def call_json(r: CallResult) -> dict[str, Any]:
    return {"tool": r.tool, "output": r.output, "duration_ms": r.duration_ms, "trace_id": r.trace_id}


def tool_json(t: ToolInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": t.name,
        "description": t.description,
        "input_schema": t.input_schema,
        "annotations": {
            "read_only": t.annotations.read_only,
            "idempotent": t.annotations.idempotent,
            "destructive": t.annotations.destructive,
        },
        "timeout_ms": t.timeout_ms,
    }
    if t.output_schema is not None:
        out["output_schema"] = t.output_schema
    return out


def event_json(ev: StreamEvent) -> dict[str, Any]:
    assert ev.event_id, f"an event without an id: {ev}"
    data: dict[str, Any]
    if isinstance(ev, ProgressEvent):
        data = {"id": ev.id, "tool": ev.tool, "progress": ev.progress}
        if ev.total is not None:
            data["total"] = ev.total
        if ev.message is not None:
            data["message"] = ev.message
    elif isinstance(ev, ResultEvent):
        data = entry_json(ev.entry)
    elif isinstance(ev, ErrorEvent):
        data = {"error": problem(ev.error)}
        if ev.id is not None:
            data["id"] = ev.id
    elif isinstance(ev, DoneEvent):
        data = {"success": ev.success, "calls": ev.calls, "succeeded": ev.succeeded, "failed": ev.failed}
    else:
        raise AssertionError(f"an unexpected event {ev!r}")
    return {"event": ev.type, "data": data}


# === building requests ===


def client_kwargs(req: dict[str, Any]) -> dict[str, Any]:
    retry = req.get("retry")
    return {
        "api_key": KEYS[req["key"]],
        "retry": None
        if retry is None
        else RetryPolicy(max_retries=retry["max_retries"], max_wait=retry["max_wait_ms"] / 1000),
    }


def arguments(req: dict[str, Any]) -> Any:
    args = req.get("args")
    pad = req.get("pad")
    if pad is not None:
        args = dict(args or {})
        args[pad["field"]] = "x" * pad["bytes"]
    return args


def calls(req: dict[str, Any]) -> list[BatchCall]:
    return [BatchCall(tool=c["tool"], arguments=c.get("args"), id=c.get("id")) for c in req["calls"]]


def run_sync(base_url: str, req: dict[str, Any]) -> Outcome:
    out = Outcome()
    start = time.monotonic()
    op = req["op"]
    timeout_ms = req.get("timeout_ms")
    with Client(base_url, **client_kwargs(req)) as tg:
        try:
            if op == "tools":
                out.value = [t.name for t in tg.tools()]
            elif op == "tool":
                out.value = tool_json(tg.tool(req["tool"]))
            elif op == "call":
                out.value = call_json(tg.call(req["tool"], arguments(req), timeout_ms=timeout_ms))
            elif op == "execute":
                out.value = batch_json(tg.execute(calls(req), mode=req.get("mode"), timeout_ms=timeout_ms))
            elif op in ("stream", "stream_execute"):
                stream = (
                    tg.stream(req["tool"], arguments(req), timeout_ms=timeout_ms)
                    if op == "stream"
                    else tg.stream_execute(calls(req), mode=req.get("mode"), timeout_ms=timeout_ms)
                )
                close_after = req.get("close_after_events", 0)
                with stream as events:
                    assert events.trace_id
                    for ev in events:
                        out.events.append(event_json(ev))
                        if close_after and len(out.events) >= close_after:
                            break
            else:
                raise AssertionError(f"unknown op {op}")
        except ToolgateError as e:
            out.error = e
    out.elapsed = time.monotonic() - start
    return out


async def run_async(base_url: str, req: dict[str, Any]) -> Outcome:
    out = Outcome()
    start = time.monotonic()
    op = req["op"]
    timeout_ms = req.get("timeout_ms")
    async with AsyncClient(base_url, **client_kwargs(req)) as tg:
        try:
            if op == "tools":
                out.value = [t.name for t in await tg.tools()]
            elif op == "tool":
                out.value = tool_json(await tg.tool(req["tool"]))
            elif op == "call":
                out.value = call_json(await tg.call(req["tool"], arguments(req), timeout_ms=timeout_ms))
            elif op == "execute":
                res = await tg.execute(calls(req), mode=req.get("mode"), timeout_ms=timeout_ms)
                out.value = batch_json(res)
            elif op in ("stream", "stream_execute"):
                stream = (
                    tg.stream(req["tool"], arguments(req), timeout_ms=timeout_ms)
                    if op == "stream"
                    else tg.stream_execute(calls(req), mode=req.get("mode"), timeout_ms=timeout_ms)
                )
                close_after = req.get("close_after_events", 0)
                async with stream as events:
                    assert events.trace_id
                    async for ev in events:
                        out.events.append(event_json(ev))
                        if close_after and len(out.events) >= close_after:
                            break
            else:
                raise AssertionError(f"unknown op {op}")
        except ToolgateError as e:
            out.error = e
    out.elapsed = time.monotonic() - start
    return out


def run_case_sync(base_url: str, case: dict[str, Any]) -> None:
    threads: list[threading.Thread] = []
    bg = case.get("background")
    if bg is not None:
        for _ in range(bg["count"]):
            t = threading.Thread(target=run_sync, args=(base_url, bg["request"]))
            t.start()
            threads.append(t)
        time.sleep(bg["wait_ms"] / 1000)
    try:
        for i, step in enumerate(case["steps"]):
            out = run_sync(base_url, step["request"])
            if "expect" in step:
                check(f"step {i}", step["expect"], out)
    finally:
        for t in threads:
            t.join()


async def run_case_async(base_url: str, case: dict[str, Any]) -> None:
    tasks: list[asyncio.Task[Outcome]] = []
    bg = case.get("background")
    if bg is not None:
        for _ in range(bg["count"]):
            tasks.append(asyncio.create_task(run_async(base_url, bg["request"])))
        await asyncio.sleep(bg["wait_ms"] / 1000)
    try:
        for i, step in enumerate(case["steps"]):
            out = await run_async(base_url, step["request"])
            if "expect" in step:
                check(f"step {i}", step["expect"], out)
    finally:
        await asyncio.gather(*tasks)


# === checking ===


def check(where: str, want: dict[str, Any], got: Outcome) -> None:
    if "min_elapsed_ms" in want:
        assert got.elapsed * 1000 >= want["min_elapsed_ms"], f"{where}: took {got.elapsed:.3f} s"
    if "max_elapsed_ms" in want:
        assert got.elapsed * 1000 <= want["max_elapsed_ms"], f"{where}: took {got.elapsed:.3f} s"
    if "error" in want:
        check_error(where, want["error"], got.error)
        return
    assert got.error is None, f"{where}: unexpected error {got.error!r}"
    problems: list[str] = []
    if "tools" in want:
        names = cast(list[str], got.value)
        for n in want["tools"].get("include", []):
            if n not in names:
                problems.append(f"tool {n} is not listed in {names}")
        if "exactly" in want["tools"] and sorted(names) != sorted(want["tools"]["exactly"]):
            problems.append(f"tools {names}, expected exactly {want['tools']['exactly']}")
    for key in ("tool", "result", "batch"):
        if key in want:
            match(want[key], got.value, key, problems)
    if "events" in want:
        problems += match_events(want["events"], got.events)
    assert not problems, f"{where}:\n" + "\n".join(problems)


def check_error(where: str, want: dict[str, Any], err: BaseException | None) -> None:
    assert err is not None, f"{where}: expected a {want['status']} {want['code']} error, got success"
    assert isinstance(err, ToolgateError), f"{where}: {err!r}"
    assert isinstance(err, CLASS_FOR_CODE[want["code"]]), f"{where}: {type(err).__name__} for {want['code']}"
    assert (err.status, err.code) == (want["status"], want["code"]), f"{where}: {err!r}"
    assert err.trace_id and err.detail and err.title and err.type, f"{where}: incomplete {err.to_problem()}"
    if "tool" in want:
        assert err.tool == want["tool"], f"{where}: tool {err.tool!r}"
    if "detail" in want:
        assert err.detail == want["detail"], f"{where}: detail {err.detail!r}"
    if "pointers" in want:
        assert [e.pointer for e in err.errors] == want["pointers"], f"{where}: {err.errors}"
        assert all(e.message for e in err.errors), f"{where}: {err.errors}"
    if want.get("retry_after"):
        assert err.retry_after is not None and err.retry_after > 0, f"{where}: no Retry-After on {err!r}"
    assert want["code"] in str(err), f"{where}: the message {str(err)!r} does not name the code"


def match_events(patterns: list[dict[str, Any]], events: list[Any]) -> list[str]:
    i = 0
    for n, p in enumerate(patterns):
        lo = p.get("min", 1)
        hi = p.get("max", 1)  # None: unbounded
        count = 0
        while i < len(events) and (hi is None or count < hi) and event_matches(p, events[i]):
            count += 1
            i += 1
        if count < lo:
            return [f"pattern {n} ({p['event']}): {count} matching events, expected at least {lo}; events: {events}"]
    if i != len(events):
        return [f"{len(events) - i} unexpected events after the patterns; events: {events}"]
    return []


def event_matches(p: dict[str, Any], ev: dict[str, Any]) -> bool:
    if ev["event"] != p["event"]:
        return False
    problems: list[str] = []
    if "match" in p:
        match(p["match"], ev["data"], "data", problems)
    return not problems


def match(want: Any, got: Any, path: str, problems: list[str]) -> None:
    """Objects by their expected keys, arrays element by element, "<any>" for any
    present value, other values by equality (numbers as numbers, never as booleans)."""
    if want == "<any>" and isinstance(want, str):
        return
    if isinstance(want, dict):
        if not isinstance(got, dict):
            problems.append(f"{path}: expected an object, got {got!r}")
            return
        for k, v in want.items():
            if k not in got:
                problems.append(f"{path}.{k}: missing in {got!r}")
            else:
                match(v, got[k], f"{path}.{k}", problems)
    elif isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            problems.append(f"{path}: expected {want!r}, got {got!r}")
            return
        for i, (w, g) in enumerate(zip(want, got)):
            match(w, g, f"{path}[{i}]", problems)
    elif isinstance(want, bool) or isinstance(got, bool) or want is None or got is None:
        if type(want) is not type(got) or want != got:
            problems.append(f"{path}: expected {want!r}, got {got!r}")
    elif want != got:
        problems.append(f"{path}: expected {want!r}, got {got!r}")
