//! The direct path: a 2026-07-28 `tools/call` without a progress token, answered
//! here instead of through rmcp's transport.
//!
//! Why: a stateless request through rmcp's `StreamableHttpService` builds a service
//! for that one request, spawns its serve loop and a task for the handler, and
//! passes the request and reply through channels; measured with a bare rmcp server
//! (bench/mcp), that costs 18 to 34 µs of CPU per call above a bare axum handler
//! (depending on the machine), a large part of the 70 µs budget for a whole call
//! with every toolgate feature on. The
//! request that dominates agent traffic, a stateless call whose answer is one JSON
//! body, needs none of that machinery: it is parsed with rmcp's own message types,
//! run through [`run_call`] like every transport, and answered with rmcp's own
//! result types, so the bytes on the wire are the ones rmcp would send.
//!
//! Only requests that certainly qualify take this path; everything else goes to rmcp
//! unchanged (with the body re-attached when it was read), including every request
//! rmcp would refuse, so that its validation and its errors stay the only ones:
//!
//! - `POST` with no `Mcp-Session-Id`, `MCP-Protocol-Version: 2026-07-28`, exactly
//!   one `Mcp-Method: tools/call` and one `Mcp-Name`, no `Mcp-Param-*` headers;
//! - `Accept` naming both `application/json` and `text/event-stream`, a JSON
//!   `Content-Type`, and a `Host` that `mcp_allowed_hosts` allows;
//! - a body that is one `tools/call` request naming the tool of `Mcp-Name`, with
//!   the 2026-07-28 keys in `_meta` and no `progressToken` (progress needs a stream).
//!
//! Cancellation is the same as rmcp's: the client hanging up drops the response
//! future, which drops the call: the registry stops the tool, and [`run_call`]
//! records the call as cancelled (log line, metric, audit record).

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::ErrorData;
use rmcp::model::{
    CallToolRequestParams, ClientJsonRpcMessage, ClientRequest, ErrorCode, GetMeta, JsonRpcError,
    JsonRpcResponse, JsonRpcVersion2_0, ProtocolVersion, RequestId, ServerJsonRpcMessage,
    ServerResult,
};
use serde_json::Value;
use toolgate_core::ProgressSink;
use toolgate_registry::{Invocation, Transport};

use super::RequestScope;
use super::call::reply;
use crate::AppState;
use crate::exec::run_call;
use crate::transport::requested_timeout;

/// The revision served directly: stateless, per-request `_meta`.
const REVISION: &str = "2026-07-28";

/// What the headers of a qualifying request say.
pub(super) struct Direct {
    tool: String,
}

/// Whether the headers qualify for the direct path (the body is checked later).
pub(super) fn qualifies(req: &Request, allowed_hosts: &[String]) -> Option<Direct> {
    let headers = req.headers();
    if req.method() != Method::POST
        || headers.contains_key("mcp-session-id")
        || headers.get("mcp-protocol-version")? != REVISION
        || !accepts_json_and_sse(headers)
        || !json_content(headers)
        || !host_allowed(headers, allowed_hosts)
        || headers
            .keys()
            .any(|name| name.as_str().starts_with("mcp-param-"))
    {
        return None;
    }
    let method = single(headers, "mcp-method")?;
    let tool = single(headers, "mcp-name")?;
    (method == "tools/call").then(|| Direct {
        tool: tool.to_owned(),
    })
}

/// The one value of header `name`, if there is exactly one and it is text.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// The media types of `Accept`, without parameters.
fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let (mut json, mut sse) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        for item in value.split(',') {
            let essence = item.split(';').next().unwrap_or_default().trim();
            json |= essence.eq_ignore_ascii_case("application/json");
            sse |= essence.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && sse
}

fn json_content(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
}

/// `Host` checked as rmcp checks it (DNS-rebinding protection): the host must equal
/// an allowed entry's host, and its port the entry's port when the entry names one.
/// A missing or odd `Host` does not qualify: rmcp then decides.
fn host_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    // An empty list allows every host in rmcp, as `*` does in our config.
    if allowed.is_empty() || allowed.iter().any(|h| h == "*") {
        return true;
    }
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<axum::http::uri::Authority>().ok())
    else {
        return false;
    };
    let name = normalize(host.host());
    allowed.iter().any(|entry| {
        let entry = entry.trim();
        match entry.parse::<axum::http::uri::Authority>() {
            Ok(a) => {
                normalize(a.host()) == name
                    && a.port_u16().is_none_or(|p| host.port_u16() == Some(p))
            }
            Err(_) => normalize(entry) == name,
        }
    })
}

fn normalize(host: &str) -> String {
    host.trim_matches(['[', ']']).to_ascii_lowercase()
}

/// The request parsed, when it qualifies; otherwise the request back, for rmcp.
pub(super) async fn parse(
    direct: Direct,
    req: Request,
    limit: usize,
) -> Result<Result<(Request, Parsed), Request>, Response> {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return Err(super::guard::too_large(limit));
    };
    match parse_call(&direct, &bytes) {
        Some(parsed) => Ok(Ok((Request::from_parts(parts, Body::empty()), parsed))),
        None => Ok(Err(Request::from_parts(parts, Body::from(bytes)))),
    }
}

/// A qualifying `tools/call`.
pub(super) struct Parsed {
    id: RequestId,
    params: CallToolRequestParams,
}

fn parse_call(direct: &Direct, bytes: &Bytes) -> Option<Parsed> {
    let ClientJsonRpcMessage::Request(request) = serde_json::from_slice(bytes).ok()? else {
        return None;
    };
    // rmcp keeps a request's `_meta` in its extensions.
    let meta = request.request.get_meta();
    let revision = ProtocolVersion::V_2026_07_28;
    let meta_qualifies = meta.protocol_version().as_ref() == Some(&revision)
        && meta.missing_required_keys(&revision).is_empty()
        && meta.get_progress_token().is_none()
        && !has_log_level(meta)
        // A client that takes tasks may get one: rmcp's path answers those.
        && !declares_tasks(meta);
    let ClientRequest::CallToolRequest(call) = request.request else {
        return None;
    };
    (meta_qualifies && call.params.name == direct.tool).then_some(Parsed {
        id: request.id,
        params: call.params,
    })
}

/// Whether the request's client capabilities declare the tasks extension, read
/// in place (decoding the capabilities would cost every call a copy).
fn declares_tasks(meta: &rmcp::model::RequestMetaObject) -> bool {
    meta.get("io.modelcontextprotocol/clientCapabilities")
        .and_then(|c| c.get("extensions"))
        .and_then(|e| e.get(rmcp::model::TASKS_EXTENSION_ID))
        .is_some()
}

/// Whether the request asks for log messages (2026-07-28's per-request level),
/// which need a stream.
#[allow(deprecated)]
fn has_log_level(meta: &rmcp::model::RequestMetaObject) -> bool {
    meta.log_level().is_some()
}

/// Run the call and answer it as rmcp would: `200` with the JSON-RPC response.
pub(super) async fn serve(state: &AppState, req: Request, parsed: Parsed) -> Response {
    let Parsed { id, params } = parsed;
    let Some(scope) = req.extensions().get::<RequestScope>().cloned() else {
        // The guard puts the scope on every request before calling this.
        let e = ErrorData::internal_error("the request has no authenticated caller", None);
        return answer(ServerJsonRpcMessage::Error(JsonRpcError::new(Some(id), e)));
    };
    let timeout = match requested_timeout(req.headers()) {
        Ok(timeout) => timeout,
        Err(e) => {
            let e = ErrorData::invalid_params(
                "X-Request-Timeout-Ms must be a positive integer",
                Some(e.to_problem()),
            );
            return answer(ServerJsonRpcMessage::Error(JsonRpcError::new(Some(id), e)));
        }
    };
    let tool = params.name.into_owned();
    let arguments = Value::Object(params.arguments.unwrap_or_default());
    let inv = Invocation {
        client: None,
        caller: None,
        timeouts: vec![timeout],
        cancel: state.calls.child_token(),
        progress: ProgressSink::none(),
        trace_id: Some(scope.trace_id.clone()),
        transport: Transport::Mcp,
        max_timeout: None,
    };
    // Still on the request's own task, inside its span and trace-id scope (rmcp's
    // path has to re-enter both on its handler task).
    let outcome = run_call(state, &scope.caller, &tool, arguments, inv).await;
    let message = match reply(state, &tool, outcome) {
        Ok(result) => ServerJsonRpcMessage::Response(JsonRpcResponse {
            jsonrpc: JsonRpcVersion2_0,
            id,
            result: ServerResult::CallToolResult(result),
        }),
        Err(e) => ServerJsonRpcMessage::Error(JsonRpcError::new(Some(id), e)),
    };
    answer(message)
}

/// The HTTP response of a JSON-RPC message, with rmcp's status mapping for the
/// stateless revision (errors are `200` except those below).
fn answer(message: ServerJsonRpcMessage) -> Response {
    let status = match &message {
        ServerJsonRpcMessage::Error(e) if e.error.code == ErrorCode::METHOD_NOT_FOUND => {
            StatusCode::NOT_FOUND
        }
        ServerJsonRpcMessage::Error(e)
            if [
                ErrorCode::UNSUPPORTED_PROTOCOL_VERSION,
                ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
                ErrorCode::HEADER_MISMATCH,
            ]
            .contains(&e.error.code) =>
        {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    match serde_json::to_vec(&message) {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "an MCP response could not be serialized");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"jsonrpc":"2.0","id":1000000001,"method":"tools/call","params":{"name":"echo","arguments":{"n":1},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#;

    fn request(body: &'static str) -> Request {
        Request::builder()
            .method("POST")
            .uri("/mcp")
            .header("Host", "127.0.0.1:8080")
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .header("MCP-Protocol-Version", "2026-07-28")
            .header("Mcp-Method", "tools/call")
            .header("Mcp-Name", "echo")
            .body(Body::from(body))
            .unwrap()
    }

    fn hosts() -> Vec<String> {
        vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
    }

    #[tokio::test]
    async fn a_stateless_call_without_progress_qualifies() {
        let req = request(BODY);
        let direct = qualifies(&req, &hosts()).unwrap();
        let Ok(Ok((_, parsed))) = parse(direct, req, 1 << 20).await else {
            panic!("the call should qualify");
        };
        assert_eq!(parsed.params.name, "echo");
    }

    #[tokio::test]
    async fn anything_else_goes_to_rmcp() {
        // Headers: each of these changes disqualifies the request before its body is read.
        let changes: [(&str, &str); 6] = [
            ("MCP-Protocol-Version", "2025-11-25"),
            ("Mcp-Method", "tools/list"),
            ("Accept", "application/json"),
            ("Content-Type", "text/plain"),
            ("Host", "rebound.example"),
            ("Mcp-Param-N", "1"),
        ];
        for (name, value) in changes {
            let mut req = request(BODY);
            req.headers_mut().insert(name, value.parse().unwrap());
            assert!(qualifies(&req, &hosts()).is_none(), "{name}: {value}");
        }
        let mut req = request(BODY);
        req.headers_mut()
            .insert("Mcp-Session-Id", "abc".parse().unwrap());
        assert!(qualifies(&req, &hosts()).is_none());
        let mut req = request(BODY);
        req.headers_mut()
            .append("Mcp-Name", "sleep".parse().unwrap());
        assert!(qualifies(&req, &hosts()).is_none(), "two Mcp-Name values");
        // Any host goes with `*`, and a port in an entry must match.
        let mut req = request(BODY);
        req.headers_mut()
            .insert("Host", "rebound.example".parse().unwrap());
        assert!(qualifies(&req, &["*".to_owned()]).is_some());
        assert!(qualifies(&request(BODY), &["127.0.0.1:8080".to_owned()]).is_some());
        assert!(qualifies(&request(BODY), &["127.0.0.1:9".to_owned()]).is_none());
        // Bodies: given back intact, for rmcp to answer.
        for body in [
            "{not json",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sleep","arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{},"_meta":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{},"_meta":{"progressToken":"p","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#,
        ] {
            let req = request(body);
            let direct = qualifies(&req, &hosts()).unwrap();
            let Ok(Err(back)) = parse(direct, req, 1 << 20).await else {
                panic!("{body} should go to rmcp");
            };
            let bytes = axum::body::to_bytes(back.into_body(), 1 << 20)
                .await
                .unwrap();
            assert_eq!(bytes, body.as_bytes());
        }
        // Too large: refused here, as the guard refuses it.
        let req = request(BODY);
        let direct = qualifies(&req, &hosts()).unwrap();
        let Err(refused) = parse(direct, req, 16).await else {
            panic!("over the limit");
        };
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
