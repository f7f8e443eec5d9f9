"""What the server answers, as typed values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ._errors import ToolgateError, ToolgateProtocolError, error_from_problem

Mode = Literal["fail_fast", "all_settled"]


@dataclass(frozen=True)
class Annotations:
    read_only: bool
    idempotent: bool
    destructive: bool


@dataclass(frozen=True)
class ToolInfo:
    """One tool, as ``GET /api/v1/tools`` lists it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    annotations: Annotations
    timeout_ms: int
    output_schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class CallResult:
    """A successful call: the tool's output (JSON values) and how long it took."""

    tool: str
    output: Any
    duration_ms: int
    trace_id: str | None = None


@dataclass(frozen=True)
class BatchCall:
    """One call of a batch. ``id`` defaults to the call's index ("0", "1", ...)."""

    tool: str
    arguments: Mapping[str, Any] | None = None
    id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tool": self.tool}
        if self.id is not None:
            out["id"] = self.id
        if self.arguments is not None:
            out["arguments"] = self.arguments
        return out


@dataclass(frozen=True)
class BatchEntry:
    """The outcome of one call of a batch, or of a stream's ``result`` event: ``ok``
    with ``output``, or not ``ok`` with ``error`` (a ``CallCancelledError`` for a
    sibling that a failure cancelled)."""

    id: str
    tool: str
    ok: bool
    duration_ms: int
    output: Any = None
    error: ToolgateError | None = None

    def unwrap(self) -> Any:
        """The output, or raise the entry's error."""
        if self.error is not None:
            raise self.error
        return self.output


@dataclass(frozen=True)
class BatchResult:
    """A batch that ran. In ``fail_fast`` mode a failure ends it: ``status`` is then
    that failure's HTTP status, ``success`` is false and ``error`` is the failure."""

    status: int
    success: bool
    data: list[BatchEntry]
    error: ToolgateError | None = None
    trace_id: str | None = None

    def raise_for_error(self) -> None:
        """Raise the failure that ended a ``fail_fast`` batch, if any."""
        if self.error is not None:
            raise self.error


# === stream events ===


@dataclass(frozen=True)
class ProgressEvent:
    """A call's progress. Progress is lossy: a slow reader misses some reports."""

    type: ClassVar[str] = "progress"
    id: str
    tool: str
    progress: float
    total: float | None = None
    message: str | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class ResultEvent:
    """A call ended (one per call, in completion order)."""

    type: ClassVar[str] = "result"
    entry: BatchEntry
    event_id: str | None = None


@dataclass(frozen=True)
class ErrorEvent:
    """The failure that ended a ``fail_fast`` stream (sent right after its result)."""

    type: ClassVar[str] = "error"
    error: ToolgateError
    id: str | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class DoneEvent:
    """Always the last event."""

    type: ClassVar[str] = "done"
    success: bool
    calls: int
    succeeded: int
    failed: int
    event_id: str | None = None


@dataclass(frozen=True)
class UnknownEvent:
    """An event type this client does not know (from a newer server)."""

    type: ClassVar[str] = "unknown"
    event: str
    data: str
    event_id: str | None = None


StreamEvent = ProgressEvent | ResultEvent | ErrorEvent | DoneEvent | UnknownEvent


# === decoding ===


def _obj(v: object, what: str) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise ToolgateProtocolError(f"{what}: expected a JSON object, got {type(v).__name__}")
    return v


def _get(m: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    v = m.get(key)
    if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
        raise ToolgateProtocolError(f"{what}: {key!r} is missing or not a {kind.__name__}")
    return v


def _number(m: Mapping[str, Any], key: str, what: str) -> float:
    v = m.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ToolgateProtocolError(f"{what}: {key!r} is missing or not a number")
    return float(v)


def _opt_str(v: object) -> str | None:
    return v if isinstance(v, str) else None


def parse_tool(v: object) -> ToolInfo:
    m = _obj(v, "tool")
    ann = _obj(m.get("annotations", {}), "tool annotations")
    schema = m.get("output_schema")
    return ToolInfo(
        name=_get(m, "name", str, "tool"),
        description=_opt_str(m.get("description")) or "",
        input_schema=dict(_obj(m.get("input_schema", {}), "input_schema")),
        annotations=Annotations(
            read_only=bool(ann.get("read_only", False)),
            idempotent=bool(ann.get("idempotent", False)),
            destructive=bool(ann.get("destructive", False)),
        ),
        timeout_ms=int(_number(m, "timeout_ms", "tool")),
        output_schema=dict(schema) if isinstance(schema, Mapping) else None,
    )


def parse_call_result(v: object, trace_id: str | None) -> CallResult:
    m = _obj(v, "call result")
    if "output" not in m:
        raise ToolgateProtocolError("call result: no 'output'")
    return CallResult(
        tool=_get(m, "tool", str, "call result"),
        output=m["output"],
        duration_ms=int(_number(m, "duration_ms", "call result")),
        trace_id=trace_id,
    )


def parse_entry(v: object) -> BatchEntry:
    m = _obj(v, "batch entry")
    ok = _get(m, "ok", bool, "batch entry")
    error = None
    if not ok:
        error = error_from_problem(_obj(m.get("error"), "batch entry error"))
    return BatchEntry(
        id=_get(m, "id", str, "batch entry"),
        tool=_get(m, "tool", str, "batch entry"),
        ok=ok,
        duration_ms=int(_number(m, "duration_ms", "batch entry")),
        output=m.get("output"),
        error=error,
    )


def parse_batch(v: object, status: int, trace_id: str | None) -> BatchResult:
    m = _obj(v, "batch result")
    data = _get(m, "data", list, "batch result")
    err = m.get("error")
    return BatchResult(
        status=status,
        success=_get(m, "success", bool, "batch result"),
        data=[parse_entry(e) for e in data],
        error=error_from_problem(err) if isinstance(err, Mapping) else None,
        trace_id=trace_id,
    )


def parse_event(event: str, data: object, event_id: str | None) -> StreamEvent:
    """A typed event from an SSE event's type and its JSON data."""
    if event == "progress":
        m = _obj(data, "progress event")
        total = m.get("total")
        message = m.get("message")
        return ProgressEvent(
            id=_get(m, "id", str, "progress event"),
            tool=_get(m, "tool", str, "progress event"),
            progress=_number(m, "progress", "progress event"),
            total=float(total) if isinstance(total, (int, float)) and not isinstance(total, bool) else None,
            message=message if isinstance(message, str) else None,
            event_id=event_id,
        )
    if event == "result":
        return ResultEvent(entry=parse_entry(data), event_id=event_id)
    if event == "error":
        m = _obj(data, "error event")
        call_id = m.get("id")
        return ErrorEvent(
            error=error_from_problem(_obj(m.get("error"), "error event")),
            id=call_id if isinstance(call_id, str) else None,
            event_id=event_id,
        )
    if event == "done":
        m = _obj(data, "done event")
        return DoneEvent(
            success=_get(m, "success", bool, "done event"),
            calls=_get(m, "calls", int, "done event"),
            succeeded=_get(m, "succeeded", int, "done event"),
            failed=_get(m, "failed", int, "done event"),
            event_id=event_id,
        )
    raise AssertionError("unreachable")  # pragma: no cover


KNOWN_EVENTS = frozenset({"progress", "result", "error", "done"})
