"""A client for the toolgate tool server: list tools, call one, run a batch, and
stream progress and results (Server-Sent Events), with a sync ``Client`` and an
async ``AsyncClient`` on httpx.

    from toolgate_client import Client, RateLimitedError

    with Client("http://127.0.0.1:8080", api_key="dev-key-for-local-use-0123456789abcdef") as tg:
        print(tg.call("echo", {"hello": "agents"}).output)
"""

from ._client import (
    DEFAULT_TIMEOUT,
    AsyncClient,
    AsyncEventStream,
    Client,
    EventStream,
    RetryPolicy,
    __version__,
)
from ._errors import (
    CallCancelledError,
    CircuitOpenError,
    FieldError,
    ForbiddenError,
    InternalServerError,
    InvalidArgumentsError,
    InvalidJSONError,
    MethodNotAllowedError,
    NotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    RateLimitedError,
    ToolError,
    ToolgateError,
    ToolgateProtocolError,
    ToolNotFoundError,
    ToolTimeoutError,
    UnauthorizedError,
    UpstreamError,
)
from ._models import (
    Annotations,
    BatchCall,
    BatchEntry,
    BatchResult,
    CallResult,
    DoneEvent,
    ErrorEvent,
    Mode,
    ProgressEvent,
    ResultEvent,
    StreamEvent,
    ToolInfo,
    UnknownEvent,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "Annotations",
    "AsyncClient",
    "AsyncEventStream",
    "BatchCall",
    "BatchEntry",
    "BatchResult",
    "CallCancelledError",
    "CallResult",
    "CircuitOpenError",
    "Client",
    "DoneEvent",
    "ErrorEvent",
    "EventStream",
    "FieldError",
    "ForbiddenError",
    "InternalServerError",
    "InvalidArgumentsError",
    "InvalidJSONError",
    "MethodNotAllowedError",
    "Mode",
    "NotFoundError",
    "OverloadedError",
    "PayloadTooLargeError",
    "ProgressEvent",
    "RateLimitedError",
    "ResultEvent",
    "RetryPolicy",
    "StreamEvent",
    "ToolError",
    "ToolInfo",
    "ToolNotFoundError",
    "ToolTimeoutError",
    "ToolgateError",
    "ToolgateProtocolError",
    "UnauthorizedError",
    "UnknownEvent",
    "UpstreamError",
    "__version__",
]
