//! [`McpTool`]: one upstream tool, called through the registry like any other.
//!
//! A call sends `tools/call` with a progress token (progress is relayed to the
//! caller's sink) and the W3C `traceparent` in `_meta`. However the call ends early
//! (deadline, caller gone, a batch sibling failed, drain), the registry drops its
//! future, and the drop sends `notifications/cancelled` upstream.

use std::sync::Arc;

use async_trait::async_trait;
use rmcp::RoleClient;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CancelledNotification, CancelledNotificationParam,
    ClientNotification, ClientRequest, ContentBlock, ErrorCode, ProgressToken, RequestId,
    RequestMetaObject, ServerResult,
};
use rmcp::service::{Peer, PeerRequestOptions, ServiceError};
use serde_json::{Value, json};
use tokio::time::Instant;
use toolgate_core::{CallContext, ErrorKind, Tool, ToolError, ToolOutput};

use crate::upstream::{Inner, Upstream};

/// A tool of an MCP upstream.
#[derive(Debug)]
pub struct McpTool {
    upstream: Arc<Upstream>,
    /// The upstream's name of the tool.
    remote: String,
}

impl McpTool {
    /// A result as the call's outcome: `isError` is the tool's failure.
    fn finish(&self, result: rmcp::model::CallToolResult) -> Result<ToolOutput, ToolError> {
        if result.is_error == Some(true) {
            let text = texts(&result.content);
            return Err(ToolError::tool(if text.is_empty() {
                format!("{} failed", self.remote)
            } else {
                text
            }));
        }
        Ok(output_of(result))
    }

    /// The tool `remote` of `upstream`.
    #[must_use]
    pub fn new(upstream: Arc<Upstream>, remote: String) -> Self {
        Self { upstream, remote }
    }
}

/// Sends `notifications/cancelled` for a request that was not answered, and forgets
/// its progress sink, however the call ends.
struct InFlight {
    inner: Arc<Inner>,
    peer: Peer<RoleClient>,
    id: Option<RequestId>,
    token: ProgressToken,
    deadline: Instant,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut m) = self.inner.progress.lock() {
            m.remove(&self.token);
        }
        let Some(id) = self.id.take() else { return };
        let reason = if Instant::now() >= self.deadline {
            "deadline exceeded"
        } else {
            "cancelled by the caller"
        };
        let notification = CancelledNotification::new(CancelledNotificationParam::new(
            Some(id),
            Some(reason.to_owned()),
        ));
        let peer = self.peer.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = peer
                    .send_notification(ClientNotification::CancelledNotification(notification))
                    .await;
            });
        }
    }
}

/// The `traceparent` for the upstream: the current span's when tracing is on,
/// otherwise one built from the request's trace id.
fn traceparent(ctx: &CallContext) -> Option<String> {
    toolgate_telemetry::otel::upstream_traceparent(
        &tracing::Span::current(),
        ctx.trace_id.as_deref(),
    )
}

fn upstream_error(source: &str, e: impl std::fmt::Display) -> ToolError {
    ToolError::new(
        ErrorKind::UpstreamError,
        format!("MCP server {source:?}: {e}"),
    )
}

/// An rmcp error as the contract's code: bad arguments stay the caller's (422),
/// everything else is the upstream's (502).
fn classify(source: &str, e: ServiceError) -> ToolError {
    match e {
        ServiceError::McpError(err) if err.code == ErrorCode::INVALID_PARAMS => ToolError::new(
            ErrorKind::InvalidArguments,
            format!(
                "MCP server {source:?} refused the arguments: {}",
                err.message
            ),
        ),
        ServiceError::McpError(err) => upstream_error(
            source,
            format_args!("error {}: {}", err.code.0, err.message),
        ),
        ServiceError::Cancelled { .. } => ToolError::new(
            ErrorKind::Cancelled,
            format!("MCP server {source:?} cancelled the call"),
        ),
        other => upstream_error(source, other),
    }
}

/// The text of a result's text blocks.
fn texts(content: &[ContentBlock]) -> String {
    content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A result as toolgate's output: the structured content when there is some, the
/// text of a single text block, or else every block as JSON.
fn output_of(result: rmcp::model::CallToolResult) -> Value {
    if let Some(s) = result.structured_content {
        return s;
    }
    if let [only] = result.content.as_slice()
        && let Some(t) = only.as_text()
    {
        return Value::String(t.text.clone());
    }
    json!({ "content": result.content })
}

#[async_trait]
impl Tool for McpTool {
    async fn call(&self, arguments: Value, ctx: CallContext) -> Result<ToolOutput, ToolError> {
        let inner = &self.upstream.inner;
        let source = inner.settings.source.as_str();
        let Some(peer) = inner.peer.load_full() else {
            let why = inner.state.borrow().error.clone();
            return Err(upstream_error(
                source,
                why.map_or_else(
                    || "not connected".to_owned(),
                    |e| format!("not connected: {e}"),
                ),
            ));
        };
        let Value::Object(arguments) = arguments else {
            return Err(ToolError::new(
                ErrorKind::InvalidArguments,
                "arguments must be an object",
            ));
        };
        let traceparent = traceparent(&ctx);
        if let Some(direct) = inner.direct.load_full() {
            let max = inner.settings.max_result_bytes;
            let answer = crate::direct::call(
                &direct,
                source,
                &self.remote,
                arguments,
                traceparent,
                max,
                &ctx,
            )
            .await?;
            let result = match answer {
                Ok(v) => serde_json::from_value::<rmcp::model::CallToolResult>(v)
                    .map_err(|e| upstream_error(source, format_args!("not a tool result: {e}")))?,
                Err((code, message)) if code == i64::from(ErrorCode::INVALID_PARAMS.0) => {
                    return Err(ToolError::new(
                        ErrorKind::InvalidArguments,
                        format!("MCP server {source:?} refused the arguments: {message}"),
                    ));
                }
                Err((code, message)) => {
                    return Err(upstream_error(
                        source,
                        format_args!("error {code}: {message}"),
                    ));
                }
            };
            return self.finish(result);
        }
        let params = CallToolRequestParams::new(self.remote.clone()).with_arguments(arguments);
        let mut meta = RequestMetaObject::default();
        if let Some(tp) = traceparent {
            meta.0.0.insert("traceparent".to_owned(), Value::String(tp));
        }
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let handle = peer
            .send_cancellable_request(request, PeerRequestOptions::no_options().with_meta(meta))
            .await
            .map_err(|e| classify(source, e))?;
        let mut guard = InFlight {
            inner: Arc::clone(inner),
            peer: (*peer).clone(),
            id: Some(handle.id.clone()),
            token: handle.progress_token.clone(),
            deadline: ctx.deadline,
        };
        if ctx.progress.is_active()
            && let Ok(mut m) = inner.progress.lock()
        {
            m.insert(handle.progress_token.clone(), ctx.progress.clone());
        }
        let answer = handle.await_response().await;
        guard.id = None;
        drop(guard);
        let result = match answer.map_err(|e| classify(source, e))? {
            ServerResult::CallToolResult(r) => r,
            _ => {
                return Err(upstream_error(
                    source,
                    "answered tools/call with something other than a tool result",
                ));
            }
        };
        // Over HTTP rmcp's transport enforces the limit as it reads; a stdio child's
        // lines have none, so its result is measured here.
        let stdio = matches!(inner.settings.transport, crate::Transport::Stdio { .. });
        let size = if stdio {
            serde_json::to_vec(&result).map_or(0, |v| v.len())
        } else {
            0
        };
        if size > inner.settings.max_result_bytes {
            return Err(upstream_error(
                source,
                format_args!(
                    "the result has {size} bytes, over the limit of {}",
                    inner.settings.max_result_bytes
                ),
            ));
        }
        self.finish(result)
    }

    async fn check(&self) -> Result<(), String> {
        self.upstream.check()
    }
}
