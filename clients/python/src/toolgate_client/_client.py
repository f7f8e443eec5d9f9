"""The sync and async clients."""

from __future__ import annotations

import email.utils
import json
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any
from urllib.parse import quote

import anyio
import httpx

from ._errors import ToolgateError, ToolgateProtocolError, error_from_problem
from ._models import (
    BatchCall,
    BatchResult,
    CallResult,
    DoneEvent,
    Mode,
    StreamEvent,
    ToolInfo,
    parse_batch,
    parse_call_result,
    parse_tool,
)
from ._sse import SSEDecoder, decode_event

__version__ = "0.1.0"

#: Connect within 10 s; no limit on waiting for an answer, because the server enforces
#: every call's deadline (lower it per call with ``timeout_ms``).
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=None, write=30.0, pool=30.0)

#: How much longer than a call's ``timeout_ms`` the client waits for the server's answer.
DEADLINE_GRACE_S = 5.0

_MAX_ERROR_DETAIL = 512


@dataclass(frozen=True)
class RetryPolicy:
    """Send a request again when the server refused it without running it: a problem
    document with status 429 (``rate_limited``, ``overloaded``) or 503 (``overloaded``,
    ``circuit_open``). The wait is the answer's ``Retry-After``; without one, an
    exponential backoff from 0.5 s with jitter. A batch that ran (whatever its status)
    is never sent again.
    """

    #: How many times one request may be sent again.
    max_retries: int = 3
    #: The longest wait (seconds). A longer ``Retry-After`` raises the error at once.
    max_wait: float = 30.0


CallSpec = BatchCall | Mapping[str, Any]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delay-seconds or an HTTP-date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(min(int(value), 86400))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


def _json_default(value: object) -> Any:
    """Encodes any Mapping (not only dict) as an object, any other Sequence as an array."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _media_type(response: httpx.Response) -> str:
    content_type: str = response.headers.get("content-type", "")
    return content_type.split(";", 1)[0].strip().lower()


class _Core:
    """What the sync and async clients share: URLs, headers, bodies, decoding."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        headers: Mapping[str, str] | None,
        retry: RetryPolicy | None,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url {base_url!r}: want http(s)://host[:port][/prefix]")
        self.prefix = str(url.copy_with(query=None, fragment=None)).rstrip("/")
        self.headers: dict[str, str] = {"User-Agent": f"toolgate-python/{__version__}"}
        self.headers.update(headers or {})
        if api_key:
            self.headers["X-Tool-API-Key"] = api_key
        self.retry = retry
        self._random = random.Random()

    def url(self, *segments: str) -> str:
        return self.prefix + "/api/v1/" + "/".join(quote(s, safe="") for s in segments)

    def request_headers(self, *, stream: bool, body: bool, timeout_ms: int | None) -> dict[str, str]:
        h = dict(self.headers)
        h["Accept"] = "text/event-stream" if stream else "application/json"
        if body:
            h["Content-Type"] = "application/json"
        if timeout_ms is not None:
            h["X-Request-Timeout-Ms"] = str(timeout_ms)
        return h

    @staticmethod
    def check_timeout(timeout_ms: int | None) -> None:
        if timeout_ms is not None and (
            isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms <= 0
        ):
            raise ValueError(f"timeout_ms must be a positive integer, not {timeout_ms!r}")

    @staticmethod
    def timeout_for(current: httpx.Timeout, timeout_ms: int | None) -> httpx.Timeout:
        """The client's timeouts, with the read timeout no longer than the call's
        deadline plus a grace: the server answers 504 at the deadline."""
        if timeout_ms is None:
            return current
        limit = timeout_ms / 1000 + DEADLINE_GRACE_S
        read = limit if current.read is None else min(current.read, limit)
        return httpx.Timeout(connect=current.connect, read=read, write=current.write, pool=current.pool)

    @staticmethod
    def encode(value: Any) -> bytes:
        try:
            text = json.dumps(
                value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default
            )
        except ValueError as e:  # NaN or infinity
            raise ValueError(f"the arguments do not encode as JSON: {e}") from e
        return text.encode()

    def args_body(self, arguments: Mapping[str, Any] | None) -> bytes:
        return self.encode({} if arguments is None else arguments)

    def batch_body(self, calls: Sequence[CallSpec], mode: Mode | None, timeout_ms: int | None) -> bytes:
        self.check_timeout(timeout_ms)
        body: dict[str, Any] = {
            "calls": [c.to_json() if isinstance(c, BatchCall) else dict(c) for c in calls]
        }
        if mode is not None:
            body["mode"] = mode
        if timeout_ms is not None:
            body["timeout_ms"] = timeout_ms
        return self.encode(body)

    @staticmethod
    def accepted(response: httpx.Response, batch: bool) -> bool:
        if response.is_success:
            return True
        # A batch that ran answers with its own shape, whatever its status.
        return batch and _media_type(response) == "application/json"

    @staticmethod
    def error_for(response: httpx.Response) -> ToolgateError:
        """The typed error for a read non-2xx answer."""
        trace_id = response.headers.get("x-trace-id")
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if _media_type(response) in ("application/problem+json", "application/json"):
            try:
                doc = json.loads(response.content)
            except ValueError:
                doc = None
            if isinstance(doc, Mapping) and isinstance(doc.get("code"), str) and doc["code"]:
                return error_from_problem(
                    doc, status=response.status_code, trace_id=trace_id, retry_after=retry_after
                )
        detail = response.text.strip()
        if len(detail) > _MAX_ERROR_DETAIL:
            detail = detail[:_MAX_ERROR_DETAIL] + "..."
        return ToolgateError(
            status=response.status_code,
            code="",
            title=response.reason_phrase,
            detail=detail,
            trace_id=trace_id,
            retry_after=retry_after,
        )

    def retry_wait(self, error: ToolgateError, attempt: int) -> float | None:
        """Seconds to wait before sending again, or None to raise the error."""
        policy = self.retry
        if policy is None or attempt >= policy.max_retries or not error.retryable or not error.code:
            return None
        if error.retry_after is not None and error.retry_after > 0:
            return error.retry_after if error.retry_after <= policy.max_wait else None
        backoff = min(policy.max_wait, 0.5 * math.pow(2, attempt))
        return backoff / 2 + self._random.uniform(0, backoff / 2)

    @staticmethod
    def json_of(response: httpx.Response) -> Any:
        try:
            return json.loads(response.content)
        except ValueError as e:
            raise ToolgateProtocolError(
                f"a {response.status_code} answer that is not JSON: {response.text[:200]!r}"
            ) from e

    @staticmethod
    def tools_of(doc: Any) -> list[ToolInfo]:
        if not isinstance(doc, Mapping) or not isinstance(doc.get("tools"), list):
            raise ToolgateProtocolError("the tool list has no 'tools' array")
        return [parse_tool(t) for t in doc["tools"]]

    @staticmethod
    def check_stream(response: httpx.Response) -> None:
        if _media_type(response) != "text/event-stream":
            raise ToolgateProtocolError(
                f"a stream answered as {response.headers.get('content-type')!r}, not text/event-stream"
            )


# === sync ===


class Client:
    """A client for one toolgate server.

    >>> with Client("http://127.0.0.1:8080", api_key="dev-key-for-local-use-0123456789abcdef") as tg:
    ...     tg.call("echo", {"hello": "agents"}).output

    Every non-2xx answer raises a ``ToolgateError`` subclass (``RateLimitedError``,
    ``ToolTimeoutError``, ...) carrying ``code``, ``status``, ``detail`` and
    ``trace_id``; network failures raise ``httpx`` exceptions. Thread-safe.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        """``retry`` turns on retries of refused requests (see ``RetryPolicy``); off by
        default. ``http_client`` brings your own ``httpx.Client`` (not closed by
        ``close``); ``timeout`` applies only to the one made here."""
        self._core = _Core(base_url, api_key, headers, retry)
        self._own = http_client is None
        self._http = http_client if http_client is not None else httpx.Client(timeout=timeout)

    def close(self) -> None:
        if self._own:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def tools(self) -> list[ToolInfo]:
        """The tools this client's key may call."""
        r = self._send("GET", self._core.url("tools"))
        return self._core.tools_of(self._core.json_of(r))

    def tool(self, name: str) -> ToolInfo:
        """One tool's description."""
        r = self._send("GET", self._core.url("tools", name))
        return parse_tool(self._core.json_of(r))

    def call(
        self, tool: str, arguments: Mapping[str, Any] | None = None, *, timeout_ms: int | None = None
    ) -> CallResult:
        """Run one tool. ``timeout_ms`` lowers its deadline on the server
        (``X-Request-Timeout-Ms``); past it the call raises ``ToolTimeoutError``."""
        self._core.check_timeout(timeout_ms)
        r = self._send(
            "POST",
            self._core.url("tools", tool),
            body=self._core.args_body(arguments),
            timeout_ms=timeout_ms,
        )
        return parse_call_result(self._core.json_of(r), r.headers.get("x-trace-id"))

    def execute(
        self,
        calls: Sequence[CallSpec],
        *,
        mode: Mode | None = None,
        timeout_ms: int | None = None,
    ) -> BatchResult:
        """Run calls concurrently as one batch (``timeout_ms`` is the whole batch's
        deadline). A batch that ran is returned whatever its status; in ``fail_fast``
        mode (the default) a failure cancels the siblings still running, and
        ``result.error`` / ``result.raise_for_error()`` tell. A batch refused as a whole
        (no key, malformed, ...) raises."""
        body = self._core.batch_body(calls, mode, timeout_ms)
        r = self._send("POST", self._core.url("tools", "execute"), body=body, batch=True, read_ms=timeout_ms)
        return parse_batch(self._core.json_of(r), r.status_code, r.headers.get("x-trace-id"))

    def stream(
        self, tool: str, arguments: Mapping[str, Any] | None = None, *, timeout_ms: int | None = None
    ) -> EventStream:
        """Run one tool and stream its events: ``progress``, ``result``, ``error``
        (the failure), ``done`` (last). Use it as a context manager (entering it sends
        the request and raises if the server refuses it), or just iterate over it.
        Closing it before ``done`` cancels the call on the server."""
        self._core.check_timeout(timeout_ms)
        return EventStream(
            self,
            self._core.url("tools", tool, "stream"),
            self._core.args_body(arguments),
            timeout_ms,
            None,
        )

    def stream_execute(
        self,
        calls: Sequence[CallSpec],
        *,
        mode: Mode | None = None,
        timeout_ms: int | None = None,
    ) -> EventStream:
        """Run a batch and stream its events: results in completion order."""
        body = self._core.batch_body(calls, mode, timeout_ms)
        return EventStream(self, self._core.url("tools", "execute", "stream"), body, None, timeout_ms)

    def _send(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        timeout_ms: int | None = None,
        read_ms: int | None = None,
        batch: bool = False,
        stream: bool = False,
    ) -> httpx.Response:
        """The accepted answer; read unless ``stream``."""
        headers = self._core.request_headers(stream=stream, body=body is not None, timeout_ms=timeout_ms)
        timeout = self._core.timeout_for(self._http.timeout, timeout_ms or read_ms)
        attempt = 0
        while True:
            request = self._http.build_request(method, url, content=body, headers=headers, timeout=timeout)
            response = self._http.send(request, stream=stream)
            if self._core.accepted(response, batch):
                return response
            try:
                response.read()
            finally:
                response.close()
            error = self._core.error_for(response)
            wait = self._core.retry_wait(error, attempt)
            if wait is None:
                raise error
            time.sleep(wait)
            attempt += 1


class EventStream:
    """The events of a streamed call or batch: iterate over it (ideally inside
    ``with``). It ends after the ``done`` event; a stream that ends without one raises
    ``ToolgateProtocolError``."""

    def __init__(
        self, client: Client, url: str, body: bytes, timeout_ms: int | None, read_ms: int | None
    ) -> None:
        self._client = client
        self._url = url
        self._body = body
        self._timeout_ms = timeout_ms
        self._read_ms = read_ms
        self._response: httpx.Response | None = None
        self._chunks: Iterator[bytes] | None = None
        self._decoder = SSEDecoder()
        self._pending: deque[StreamEvent] = deque()
        self._finished = False

    @property
    def trace_id(self) -> str | None:
        """The stream's trace id (once it is open)."""
        return None if self._response is None else self._response.headers.get("x-trace-id")

    def open(self) -> None:
        """Send the request (done on entering ``with`` or at the first event)."""
        if self._response is not None or self._finished:
            return
        response = self._client._send(
            "POST",
            self._url,
            body=self._body,
            timeout_ms=self._timeout_ms,
            read_ms=self._read_ms,
            stream=True,
        )
        try:
            _Core.check_stream(response)
        except ToolgateProtocolError:
            response.close()
            raise
        self._response = response
        self._chunks = response.iter_bytes()

    def close(self) -> None:
        """End the stream; before ``done``, this cancels its calls on the server."""
        self._finished = True
        if self._response is not None:
            self._response.close()

    def __enter__(self) -> EventStream:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> StreamEvent:
        if not self._pending and not self._finished:
            self.open()
            assert self._chunks is not None
            while not self._pending:
                try:
                    chunk = next(self._chunks)
                except StopIteration:
                    self.close()
                    raise ToolgateProtocolError("the stream ended before its done event") from None
                except BaseException:
                    self.close()
                    raise
                for raw in self._decoder.feed(chunk):
                    self._pending.append(decode_event(raw))
        if not self._pending:
            raise StopIteration
        event = self._pending.popleft()
        if isinstance(event, DoneEvent):
            self._pending.clear()
            self.close()
        return event


# === async ===


class AsyncClient:
    """The asyncio (and trio) flavour of ``Client``: the same methods, awaited.

    >>> async with AsyncClient("http://127.0.0.1:8080", api_key="dev-key-for-local-use-0123456789abcdef") as tg:
    ...     async with tg.stream("sleep", {"ms": 300}) as events:
    ...         async for event in events:
    ...             print(event)
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._core = _Core(base_url, api_key, headers, retry)
        self._own = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def tools(self) -> list[ToolInfo]:
        r = await self._send("GET", self._core.url("tools"))
        return self._core.tools_of(self._core.json_of(r))

    async def tool(self, name: str) -> ToolInfo:
        r = await self._send("GET", self._core.url("tools", name))
        return parse_tool(self._core.json_of(r))

    async def call(
        self, tool: str, arguments: Mapping[str, Any] | None = None, *, timeout_ms: int | None = None
    ) -> CallResult:
        self._core.check_timeout(timeout_ms)
        r = await self._send(
            "POST",
            self._core.url("tools", tool),
            body=self._core.args_body(arguments),
            timeout_ms=timeout_ms,
        )
        return parse_call_result(self._core.json_of(r), r.headers.get("x-trace-id"))

    async def execute(
        self,
        calls: Sequence[CallSpec],
        *,
        mode: Mode | None = None,
        timeout_ms: int | None = None,
    ) -> BatchResult:
        body = self._core.batch_body(calls, mode, timeout_ms)
        r = await self._send(
            "POST", self._core.url("tools", "execute"), body=body, batch=True, read_ms=timeout_ms
        )
        return parse_batch(self._core.json_of(r), r.status_code, r.headers.get("x-trace-id"))

    def stream(
        self, tool: str, arguments: Mapping[str, Any] | None = None, *, timeout_ms: int | None = None
    ) -> AsyncEventStream:
        """Use as ``async with tg.stream(...) as events: async for event in events``."""
        self._core.check_timeout(timeout_ms)
        return AsyncEventStream(
            self,
            self._core.url("tools", tool, "stream"),
            self._core.args_body(arguments),
            timeout_ms,
            None,
        )

    def stream_execute(
        self,
        calls: Sequence[CallSpec],
        *,
        mode: Mode | None = None,
        timeout_ms: int | None = None,
    ) -> AsyncEventStream:
        body = self._core.batch_body(calls, mode, timeout_ms)
        return AsyncEventStream(
            self, self._core.url("tools", "execute", "stream"), body, None, timeout_ms
        )

    async def _send(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        timeout_ms: int | None = None,
        read_ms: int | None = None,
        batch: bool = False,
        stream: bool = False,
    ) -> httpx.Response:
        """The accepted answer; read unless ``stream``."""
        headers = self._core.request_headers(stream=stream, body=body is not None, timeout_ms=timeout_ms)
        timeout = self._core.timeout_for(self._http.timeout, timeout_ms or read_ms)
        attempt = 0
        while True:
            request = self._http.build_request(method, url, content=body, headers=headers, timeout=timeout)
            response = await self._http.send(request, stream=stream)
            if self._core.accepted(response, batch):
                return response
            try:
                await response.aread()
            finally:
                await response.aclose()
            error = self._core.error_for(response)
            wait = self._core.retry_wait(error, attempt)
            if wait is None:
                raise error
            await anyio.sleep(wait)
            attempt += 1


class AsyncEventStream:
    """The events of a streamed call or batch, for ``async for`` (ideally inside
    ``async with``)."""

    def __init__(
        self, client: AsyncClient, url: str, body: bytes, timeout_ms: int | None, read_ms: int | None
    ) -> None:
        self._client = client
        self._url = url
        self._body = body
        self._timeout_ms = timeout_ms
        self._read_ms = read_ms
        self._response: httpx.Response | None = None
        self._chunks: AsyncIterator[bytes] | None = None
        self._decoder = SSEDecoder()
        self._pending: deque[StreamEvent] = deque()
        self._finished = False

    @property
    def trace_id(self) -> str | None:
        return None if self._response is None else self._response.headers.get("x-trace-id")

    async def open(self) -> None:
        if self._response is not None or self._finished:
            return
        response = await self._client._send(
            "POST",
            self._url,
            body=self._body,
            timeout_ms=self._timeout_ms,
            read_ms=self._read_ms,
            stream=True,
        )
        try:
            _Core.check_stream(response)
        except ToolgateProtocolError:
            await response.aclose()
            raise
        self._response = response
        self._chunks = response.aiter_bytes()

    async def aclose(self) -> None:
        self._finished = True
        if self._response is not None:
            await self._response.aclose()

    async def __aenter__(self) -> AsyncEventStream:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> StreamEvent:
        if not self._pending and not self._finished:
            await self.open()
            assert self._chunks is not None
            while not self._pending:
                try:
                    chunk = await self._chunks.__anext__()
                except StopAsyncIteration:
                    await self.aclose()
                    raise ToolgateProtocolError("the stream ended before its done event") from None
                except BaseException:
                    await self.aclose()
                    raise
                for raw in self._decoder.feed(chunk):
                    self._pending.append(decode_event(raw))
        if not self._pending:
            raise StopAsyncIteration
        event = self._pending.popleft()
        if isinstance(event, DoneEvent):
            self._pending.clear()
            await self.aclose()
        return event
