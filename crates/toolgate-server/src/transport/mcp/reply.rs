//! Errors on `/mcp`, in one place: how a [`ToolError`] becomes either an `isError`
//! tool result or a JSON-RPC error, and the HTTP refusals of the guard (401, 403,
//! 404, 413, 503), which carry a JSON-RPC error body so MCP clients can show them.
//!
//! JSON-RPC error codes (the `-32000` to `-32099` range is the server's own):
//!
//! | code | when |
//! |---|---|
//! | `-32602` | unknown tool, bad cursor, bad `X-Request-Timeout-Ms` (the spec's invalid params) |
//! | `-32600` | a body over `body_limit_bytes` (HTTP 413) |
//! | `-32001` | no key, or an unknown key (HTTP 401) |
//! | `-32003` | the key has no scope for the tool, a bad `Origin` (HTTP 403), or a task's approval was denied |
//! | `-32004` | the session is unknown, closed, or belongs to another key (HTTP 404) |
//! | `-32029` | overloaded, rate limited, draining, or too many sessions: retry after `data.retry_after_s` |
//!
//! `data` is the problem document the REST API would have sent (`code`, `detail`,
//! `trace_id`, ...).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock, ErrorCode};
use serde_json::{Value, json};
use toolgate_core::{ErrorKind, ToolError};

use crate::ApiError;

/// No key or an unknown key.
pub(super) const UNAUTHORIZED: ErrorCode = ErrorCode(-32001);
/// Out of scope, or a browser origin that is not allowed.
pub(super) const FORBIDDEN: ErrorCode = ErrorCode(-32003);
/// No such session for this key.
pub(super) const SESSION_NOT_FOUND: ErrorCode = ErrorCode(-32004);
/// Try again later (`data.retry_after_s` says when).
pub(super) const BUSY: ErrorCode = ErrorCode(-32029);

/// A failed call: failures of the call itself become `isError: true` results the
/// model can read and act on (bad arguments, a timeout, a failing dependency); a
/// refusal to run it at all is a JSON-RPC error for the client to handle.
pub(super) fn tool_failure(err: ToolError, tool: &str) -> Result<CallToolResult, ErrorData> {
    let kind = err.kind;
    let message = err.message.clone();
    let problem = ApiError::from_tool(err, tool).to_problem();
    let code = match kind {
        ErrorKind::ToolNotFound | ErrorKind::JobNotFound => ErrorCode::INVALID_PARAMS,
        ErrorKind::Forbidden | ErrorKind::ApprovalDenied => FORBIDDEN,
        ErrorKind::Unauthorized => UNAUTHORIZED,
        ErrorKind::Overloaded
        | ErrorKind::RateLimited
        | ErrorKind::QuotaExceeded
        | ErrorKind::AuditUnavailable
        | ErrorKind::JobsUnavailable
        | ErrorKind::ReplicaLost => BUSY,
        ErrorKind::InvalidJson
        | ErrorKind::PayloadTooLarge
        | ErrorKind::RequestTimeout
        | ErrorKind::AlreadyDecided => ErrorCode::INVALID_REQUEST,
        ErrorKind::InvalidArguments
        | ErrorKind::Timeout
        | ErrorKind::CircuitOpen
        | ErrorKind::UpstreamError
        | ErrorKind::ToolError
        | ErrorKind::Cancelled
        | ErrorKind::ApprovalRequired => {
            return Ok(CallToolResult::error(vec![ContentBlock::text(
                problem.to_string(),
            )]));
        }
    };
    Err(ErrorData::new(code, message, Some(problem)))
}

/// `WWW-Authenticate` for a request without a key.
pub(super) const NO_KEY: &str = "Bearer realm=\"toolgate\"";
/// `WWW-Authenticate` for a key we do not know (RFC 6750 `invalid_token`).
pub(super) const BAD_KEY: &str = "Bearer realm=\"toolgate\", error=\"invalid_token\"";
/// `WWW-Authenticate` for a key without the scope (RFC 6750 `insufficient_scope`).
pub(super) const NO_SCOPE: &str = "Bearer realm=\"toolgate\", error=\"insufficient_scope\"";

/// An HTTP refusal with a JSON-RPC error body (`id` as the request had it, if known)
/// whose `data` is the problem document `doc`, and `challenge` as `WWW-Authenticate`.
pub(super) fn refusal(
    status: StatusCode,
    id: Option<Value>,
    code: ErrorCode,
    doc: Value,
    challenge: Option<std::borrow::Cow<'static, str>>,
) -> Response {
    let retry_after = doc["retry_after_s"].as_u64();
    let body = json!({
        "jsonrpc": "2.0",
        "id": id.unwrap_or(Value::Null),
        "error": {"code": code.0, "message": doc["detail"], "data": doc},
    });
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(challenge) = challenge
        && let Ok(value) = HeaderValue::from_str(&challenge)
    {
        headers.insert(header::WWW_AUTHENTICATE, value);
    }
    if let Some(after) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(after));
    }
    response
}

/// The problem document of an MCP-only refusal (`code` outside the tool contract,
/// such as `session_not_found`), shaped like every other problem.
pub(super) fn problem(code: &str, title: &str, status: StatusCode, detail: &str) -> Value {
    let mut doc = json!({
        "type": format!("urn:toolgate:problem:{code}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    if let Some(trace_id) = crate::trace::current() {
        doc["trace_id"] = json!(trace_id);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_of_the_call_are_results_refusals_are_errors() {
        let result = tool_failure(ToolError::tool("boom"), "fail");
        assert!(matches!(result, Ok(r) if r.is_error == Some(true)));
        let busy = tool_failure(ToolError::new(ErrorKind::Overloaded, "full"), "echo");
        assert!(matches!(busy, Err(e) if e.code == BUSY));
        let unknown = tool_failure(ToolError::new(ErrorKind::ToolNotFound, "no"), "x");
        assert!(matches!(unknown, Err(e) if e.code == ErrorCode::INVALID_PARAMS));
    }
}
