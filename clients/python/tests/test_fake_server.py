"""Behaviour the real server cannot be made to show on demand, against a fake
(httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from toolgate_client import (
    AsyncClient,
    BatchCall,
    Client,
    OverloadedError,
    RateLimitedError,
    RetryPolicy,
    ToolgateError,
    ToolgateProtocolError,
    UpstreamError,
)

Handler = Callable[[httpx.Request], httpx.Response]


def problem(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        headers={"Content-Type": "application/problem+json", **(headers or {})},
        content=json.dumps(body).encode(),
    )


def sync_client(handler: Handler, base_url: str = "http://tg.test", **kw: Any) -> Client:
    return Client(base_url, http_client=httpx.Client(transport=httpx.MockTransport(handler)), **kw)


def async_client(handler: Handler, **kw: Any) -> AsyncClient:
    return AsyncClient("http://tg.test", http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)), **kw)


def test_upstream_error_is_decoded() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        return problem(502, {"code": "upstream_error", "status": 502, "title": "Upstream error",
                             "detail": "inventory failed", "tool": "inventory", "trace_id": "abc"})

    with pytest.raises(UpstreamError) as info:
        sync_client(handler).call("inventory")
    e = info.value
    assert (e.status, e.code, e.tool, e.trace_id, e.detail) == (502, "upstream_error", "inventory", "abc", "inventory failed")


def test_an_answer_that_is_no_problem_is_an_error_with_the_status() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(502, headers={"Content-Type": "text/html", "X-Trace-Id": "t1"}, content=b"<html>bad gateway</html>")

    with pytest.raises(ToolgateError) as info:
        sync_client(handler).tools()
    e = info.value
    assert type(e) is ToolgateError
    assert (e.status, e.code, e.detail, e.trace_id) == (502, "", "<html>bad gateway</html>", "t1")


def test_retries_honour_retry_after_and_stop() -> None:
    hits = []

    def handler(_: httpx.Request) -> httpx.Response:
        hits.append(1)
        if len(hits) <= 2:
            return problem(503, {"code": "overloaded", "status": 503}, {"Retry-After": "0"})
        return httpx.Response(200, json={"tool": "echo", "output": {}, "duration_ms": 0})

    assert sync_client(handler, retry=RetryPolicy(max_retries=2, max_wait=1)).call("echo").output == {}
    assert len(hits) == 3
    hits.clear()
    with pytest.raises(OverloadedError):
        sync_client(handler, retry=RetryPolicy(max_retries=1, max_wait=1)).call("echo")
    assert len(hits) == 2
    hits.clear()
    with pytest.raises(OverloadedError):
        sync_client(handler).call("echo")  # retries are off by default
    assert len(hits) == 1


def test_a_retry_after_past_the_bound_is_not_waited_for() -> None:
    hits = []

    def handler(_: httpx.Request) -> httpx.Response:
        hits.append(1)
        return problem(429, {"code": "rate_limited", "status": 429}, {"Retry-After": "60"})

    with pytest.raises(RateLimitedError) as info:
        sync_client(handler, retry=RetryPolicy(max_retries=5, max_wait=1)).call("echo")
    assert info.value.retry_after == 60.0 and len(hits) == 1


def test_a_batch_that_ran_is_never_retried() -> None:
    hits = []
    body = {"success": False,
            "data": [{"id": "0", "tool": "t", "ok": False, "duration_ms": 0, "error": {"status": 429, "code": "overloaded"}}],
            "error": {"status": 429, "code": "overloaded"}}

    def handler(_: httpx.Request) -> httpx.Response:
        hits.append(1)
        return httpx.Response(429, json=body)

    res = sync_client(handler, retry=RetryPolicy(max_retries=3)).execute([BatchCall("t")])
    assert len(hits) == 1 and res.status == 429 and not res.success
    assert isinstance(res.error, OverloadedError) and isinstance(res.data[0].error, OverloadedError)
    with pytest.raises(OverloadedError):
        res.raise_for_error()
    with pytest.raises(OverloadedError):
        res.data[0].unwrap()


def test_request_shape() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"X-Trace-Id": "trace"}, json={"tool": "a b", "output": {"n": 1}, "duration_ms": 3})

    tg = sync_client(handler, base_url="http://tg.test/prefix/", api_key="k")
    res = tg.call("a b", timeout_ms=1500)
    r = seen[-1]
    assert r.url.raw_path == b"/prefix/api/v1/tools/a%20b"
    assert r.headers["X-Tool-API-Key"] == "k" and r.headers["X-Request-Timeout-Ms"] == "1500"
    assert r.headers["Content-Type"] == "application/json" and r.content == b"{}"
    assert (res.output, res.trace_id, res.duration_ms) == ({"n": 1}, "trace", 3)
    with pytest.raises(ValueError):
        tg.call("x", timeout_ms=0)
    with pytest.raises(ValueError):
        Client("localhost:8080")


def test_batch_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"success": True, "data": []})

    sync_client(handler).execute(
        [{"tool": "echo", "arguments": {"x": 1}}, BatchCall("sleep", {"ms": 1}, id="b")], mode="all_settled", timeout_ms=7
    )
    assert json.loads(seen[-1].content) == {
        "calls": [{"tool": "echo", "arguments": {"x": 1}}, {"tool": "sleep", "arguments": {"ms": 1}, "id": "b"}],
        "mode": "all_settled",
        "timeout_ms": 7,
    }


def sse(body: str) -> Handler:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, content=body.encode())
    return handler


def test_a_stream_without_done_raises() -> None:
    body = 'event: progress\nid: 1\ndata: {"id":"0","tool":"t","progress":1}\n\n'
    events = sync_client(sse(body)).stream("t")
    assert next(events).type == "progress"
    with pytest.raises(ToolgateProtocolError):
        next(events)
    with pytest.raises(StopIteration):
        next(events)


def test_a_stream_that_is_not_event_stream_raises() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={})

    with pytest.raises(ToolgateProtocolError):
        with sync_client(handler).stream("t"):
            pass


def test_async_stream_and_errors() -> None:
    body = (
        'event: result\nid: 1\ndata: {"id":"0","tool":"fail","ok":false,"duration_ms":0,"error":{"code":"tool_error","status":500}}\n\n'
        ": keep-alive\n\n"
        'event: surprise\nid: 2\ndata: {}\n\n'
        'event: done\nid: 3\ndata: {"success":false,"calls":1,"succeeded":0,"failed":1}\n\n'
        'event: progress\nid: 4\ndata: {"id":"0","tool":"t","progress":1}\n\n'
    )

    async def main() -> list[str]:
        async with async_client(sse(body)) as tg:
            async with tg.stream("fail") as events:
                return [ev.type async for ev in events]

    assert asyncio.run(main()) == ["result", "unknown", "done"]

    async def refused() -> None:
        async with async_client(lambda _: problem(429, {"code": "rate_limited", "status": 429}, {"Retry-After": "5"})) as tg:
            async for _ in tg.stream("t"):
                pass

    with pytest.raises(RateLimitedError) as info:
        asyncio.run(refused())
    assert info.value.retry_after == 5.0


def test_any_mapping_is_an_object() -> None:
    from types import MappingProxyType

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"tool": "echo", "output": {}, "duration_ms": 0})

    tg = sync_client(handler)
    tg.call("echo", MappingProxyType({"a": MappingProxyType({"b": (1, 2.0)}), "u": "grüße"}))
    assert seen[-1].content == '{"a":{"b":[1,2.0]},"u":"grüße"}'.encode()
    with pytest.raises(ValueError):
        tg.call("echo", {"x": float("nan")})
    with pytest.raises(TypeError):
        tg.call("echo", {"x": object()})
