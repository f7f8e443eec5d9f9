//! The direct path: a `tools/call` to a 2026-07-28 upstream over Streamable HTTP,
//! sent as one POST on the connection pool and its answer read in place.
//!
//! Why: through rmcp's client a call crosses the peer's channel, the service loop
//! task, the transport worker and a spawned POST task, and the answer comes back the
//! same way; measured (docs/performance.md), federation then cost about 200 µs of CPU
//! per call over a native tool. A stateless call needs none of that machinery: the
//! revision makes every request self-contained (its `_meta` carries the protocol
//! version, client info and capabilities), so the request is built here, posted with
//! the transport's own headers, and the answer parsed as one JSON body or as an SSE
//! stream (progress notifications, then the response). Sessions (2025-11-25) and
//! stdio keep using rmcp.
//!
//! A progress token is sent only when the caller listens, so an upstream may answer
//! with one JSON body (toolgate's own server answers such calls on its fast path).
//! Cancellation is the revision's: dropping the call drops the request, and the
//! upstream sees its response stream closed.

use std::sync::atomic::{AtomicU64, Ordering};

use reqwest13::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use toolgate_core::{CallContext, ErrorKind, ToolError};

/// What a direct call needs from the connection: the client, the endpoint, the
/// headers of every request (configured ones and the token).
#[derive(Debug)]
pub(crate) struct Direct {
    pub(crate) client: reqwest13::Client,
    pub(crate) url: String,
    pub(crate) headers: HeaderMap,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn upstream_error(source: &str, e: impl std::fmt::Display) -> ToolError {
    ToolError::new(
        ErrorKind::UpstreamError,
        format!("MCP server {source:?}: {e}"),
    )
}

/// The answer to request `id` in one JSON-RPC message, if it is that answer.
fn answer(msg: &Value, id: u64) -> Option<Result<Value, (i64, String)>> {
    if msg.get("id").and_then(Value::as_u64) != Some(id) {
        return None;
    }
    if let Some(e) = msg.get("error") {
        let code = e.get("code").and_then(Value::as_i64).unwrap_or(-32603);
        let message = e
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        return Some(Err((code, message)));
    }
    Some(Ok(msg.get("result").cloned().unwrap_or(Value::Null)))
}

/// Relay a progress notification of ours.
fn progress(msg: &Value, token: &str, ctx: &CallContext) {
    if msg.get("method").and_then(Value::as_str) != Some("notifications/progress") {
        return;
    }
    let Some(p) = msg.get("params") else { return };
    if p.get("progressToken").and_then(Value::as_str) != Some(token) {
        return;
    }
    let Some(done) = p.get("progress").and_then(Value::as_f64) else {
        return;
    };
    ctx.progress.report(
        done,
        p.get("total").and_then(Value::as_f64),
        p.get("message").and_then(Value::as_str).map(str::to_owned),
    );
}

/// Call `tool` with `arguments`: the JSON-RPC result, or the upstream's error
/// (code, message).
pub(crate) async fn call(
    d: &Direct,
    source: &str,
    tool: &str,
    arguments: serde_json::Map<String, Value>,
    traceparent: Option<String>,
    max_bytes: usize,
    ctx: &CallContext,
) -> Result<Result<Value, (i64, String)>, ToolError> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let token = format!("toolgate-{id}");
    let mut meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "toolgate", "version": env!("CARGO_PKG_VERSION")},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    if ctx.progress.is_active() {
        meta["progressToken"] = Value::String(token.clone());
    }
    if let Some(tp) = traceparent {
        meta["traceparent"] = Value::String(tp);
    }
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": meta}
    });
    let name = HeaderValue::from_str(tool)
        .map_err(|_| upstream_error(source, "the tool's name cannot travel in a header"))?;
    let mut resp = d
        .client
        .post(&d.url)
        .headers(d.headers.clone())
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", name)
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| upstream_error(source, e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(upstream_error(
            source,
            format_args!("answered tools/call with HTTP {status}"),
        ));
    }
    let sse = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    let mut buf: Vec<u8> = Vec::new();
    let mut read = 0usize;
    while let Some(chunk) = resp.chunk().await.map_err(|e| upstream_error(source, e))? {
        read += chunk.len();
        if read > max_bytes {
            return Err(upstream_error(
                source,
                format_args!("the answer is over the limit of {max_bytes} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
        if !sse {
            continue;
        }
        // One SSE event ends at a blank line; each `data:` line is a JSON message.
        while let Some(end) = find_event_end(&buf) {
            let event: Vec<u8> = buf.drain(..end).collect();
            for msg in event_messages(&event) {
                if let Some(a) = answer(&msg, id) {
                    return Ok(a);
                }
                progress(&msg, &token, ctx);
            }
        }
    }
    if sse {
        for msg in event_messages(&buf) {
            if let Some(a) = answer(&msg, id) {
                return Ok(a);
            }
        }
        return Err(upstream_error(source, "the stream ended without an answer"));
    }
    let msg: Value = serde_json::from_slice(&buf).map_err(|e| upstream_error(source, e))?;
    answer(&msg, id).ok_or_else(|| upstream_error(source, "the answer is not for this call"))
}

/// Where the first complete SSE event of `buf` ends (after its blank line).
fn find_event_end(buf: &[u8]) -> Option<usize> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The JSON messages of one SSE event: its `data:` lines joined, parsed.
fn event_messages(event: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(event);
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim_start)
        .collect();
    if data.is_empty() {
        return Vec::new();
    }
    serde_json::from_str::<Value>(&data.join("\n"))
        .map(|v| vec![v])
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn events_split_at_blank_lines_and_answers_match_their_id() {
        let buf = b"id: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"x\":1}}\n\nrest";
        let end = find_event_end(buf).unwrap();
        let msgs = event_messages(&buf[..end]);
        assert_eq!(answer(&msgs[0], 7), Some(Ok(json!({"x": 1}))));
        assert_eq!(answer(&msgs[0], 8), None);
        let err = json!({"jsonrpc": "2.0", "id": 3, "error": {"code": -32602, "message": "bad"}});
        assert_eq!(answer(&err, 3), Some(Err((-32602, "bad".to_owned()))));
        assert!(event_messages(b": comment\n\n").is_empty());
    }
}
