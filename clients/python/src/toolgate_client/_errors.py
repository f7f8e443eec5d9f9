"""Typed exceptions: one class per problem code of the toolgate contract."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldError:
    """One problem with the arguments: an RFC 6901 pointer ("" is the whole object)."""

    pointer: str
    message: str


class ToolgateProtocolError(Exception):
    """The server answered something this client does not understand (not a problem
    document, not the expected content type, a stream that ended before ``done``)."""


class ToolgateError(Exception):
    """A problem document (RFC 9457) from the server: every non-2xx answer, and the
    error of a failed batch or stream entry.

    The subclass says which ``code`` it is (``RateLimitedError`` for ``rate_limited``,
    ...). An answer that was no problem document (from a proxy, say) is a plain
    ``ToolgateError`` with an empty ``code`` and the start of the body as ``detail``.
    """

    code_name: ClassVar[str] = ""

    def __init__(
        self,
        *,
        status: int,
        code: str,
        title: str = "",
        detail: str = "",
        type: str = "",
        tool: str | None = None,
        trace_id: str | None = None,
        errors: list[FieldError] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.type = type
        self.tool = tool
        self.trace_id = trace_id
        self.errors: list[FieldError] = list(errors or [])
        #: Seconds the server asks to wait before trying again (Retry-After), if it said.
        self.retry_after = retry_after
        super().__init__(self._message())

    def _message(self) -> str:
        text = f"{self.status}"
        if self.code:
            text += f" {self.code}"
        if self.detail or self.title:
            text += f": {self.detail or self.title}"
        for e in self.errors:
            text += f"; {e.pointer!r}: {e.message}"
        if self.trace_id:
            text += f" (trace_id {self.trace_id})"
        return text

    @property
    def retryable(self) -> bool:
        """Whether the request was refused without running, and may succeed later."""
        return self.status in (429, 503)

    def to_problem(self) -> dict[str, Any]:
        """The problem document, as JSON values."""
        doc: dict[str, Any] = {"status": self.status, "code": self.code}
        for name in ("type", "title", "detail"):
            if getattr(self, name):
                doc[name] = getattr(self, name)
        if self.tool is not None:
            doc["tool"] = self.tool
        if self.trace_id is not None:
            doc["trace_id"] = self.trace_id
        if self.errors:
            doc["errors"] = [{"pointer": e.pointer, "message": e.message} for e in self.errors]
        if self.retry_after is not None:
            doc["retry_after_s"] = self.retry_after
        return doc

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._message()!r})"


class InvalidJSONError(ToolgateError):
    """400: the body is not a JSON object (or nests too deep)."""

    code_name = "invalid_json"


class InvalidArgumentsError(ToolgateError):
    """422: the arguments fail the tool's schema; see ``errors``."""

    code_name = "invalid_arguments"


class UnauthorizedError(ToolgateError):
    """401: no key."""

    code_name = "unauthorized"


class ForbiddenError(ToolgateError):
    """403: an unknown key, or no scope for the tool."""

    code_name = "forbidden"


class ToolNotFoundError(ToolgateError):
    """404: no such tool."""

    code_name = "tool_not_found"


class PayloadTooLargeError(ToolgateError):
    """413: the body is over the server's limit."""

    code_name = "payload_too_large"


class RateLimitedError(ToolgateError):
    """429: the key's rate limit; ``retry_after`` says when a token is back."""

    code_name = "rate_limited"


class OverloadedError(ToolgateError):
    """429 (the tool's queue is full) or 503 (the server is full or draining)."""

    code_name = "overloaded"


class ToolTimeoutError(ToolgateError):
    """504: the call's deadline passed, and its work was cancelled."""

    code_name = "timeout"


class CircuitOpenError(ToolgateError):
    """503: the tool's circuit breaker is open."""

    code_name = "circuit_open"


class UpstreamError(ToolgateError):
    """502: the tool's dependency failed, after any retries."""

    code_name = "upstream_error"


class ToolError(ToolgateError):
    """500: the tool itself reported failure."""

    code_name = "tool_error"


class CallCancelledError(ToolgateError):
    """499 (batch and stream entries): cancelled by a sibling's failure or the client."""

    code_name = "cancelled"


class NotFoundError(ToolgateError):
    """404: no such route (a wrong base URL?)."""

    code_name = "not_found"


class MethodNotAllowedError(ToolgateError):
    """405."""

    code_name = "method_not_allowed"


class InternalServerError(ToolgateError):
    """500: a bug in the server."""

    code_name = "internal_error"


ERROR_CLASSES: dict[str, type[ToolgateError]] = {
    cls.code_name: cls
    for cls in (
        InvalidJSONError,
        InvalidArgumentsError,
        UnauthorizedError,
        ForbiddenError,
        ToolNotFoundError,
        PayloadTooLargeError,
        RateLimitedError,
        OverloadedError,
        ToolTimeoutError,
        CircuitOpenError,
        UpstreamError,
        ToolError,
        CallCancelledError,
        NotFoundError,
        MethodNotAllowedError,
        InternalServerError,
    )
}


def _str(v: object) -> str:
    return v if isinstance(v, str) else ""


def _opt_str(v: object) -> str | None:
    return v if isinstance(v, str) else None


def error_from_problem(
    problem: Mapping[str, Any],
    *,
    status: int | None = None,
    trace_id: str | None = None,
    retry_after: float | None = None,
) -> ToolgateError:
    """The typed exception for a problem document (``status``, ``trace_id`` and
    ``retry_after`` from the HTTP answer take precedence over the body's)."""
    code = _str(problem.get("code"))
    body_status = problem.get("status")
    if status is None:
        status = body_status if isinstance(body_status, int) else 0
    errors: list[FieldError] = []
    raw_errors = problem.get("errors")
    if isinstance(raw_errors, list):
        for e in raw_errors:
            if isinstance(e, Mapping):
                errors.append(FieldError(_str(e.get("pointer")), _str(e.get("message"))))
    if retry_after is None:
        s = problem.get("retry_after_s")
        if isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 and math.isfinite(s):
            retry_after = float(s)
    cls = ERROR_CLASSES.get(code, ToolgateError)
    return cls(
        status=status,
        code=code,
        title=_str(problem.get("title")),
        detail=_str(problem.get("detail")),
        type=_str(problem.get("type")),
        tool=_opt_str(problem.get("tool")),
        trace_id=_opt_str(problem.get("trace_id")) or trace_id,
        errors=errors,
        retry_after=retry_after,
    )
