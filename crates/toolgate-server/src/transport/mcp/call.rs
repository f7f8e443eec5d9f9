//! `tools/call`: one MCP request becomes one [`run_call`], with the same scope check,
//! rate limit, deadline, bulkhead, retries and call log line as REST.
//!
//! - Progress: when the request carries a `progressToken`, the tool's reports go
//!   through a bounded queue (lossy, so a slow client never stalls the tool) to
//!   `notifications/progress`, all of them before the result.
//! - Cancellation: `notifications/cancelled`, and for 2026-07-28 the client closing
//!   the response stream, fire rmcp's request token; that cancels the call's token, and
//!   the registry stops the tool. Dropping the handler future (the session went away)
//!   drops the call, which cancels it as well.

// rmcp marks logging deprecated (SEP-2577); 2025-11-25 clients and 2026-07-28's
// per-request `logLevel` still use it.
#![allow(deprecated)]

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
    ProgressNotificationParam, ProgressToken,
};
use rmcp::service::{Peer, RequestContext};
use rmcp::{ErrorData, RoleServer};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use toolgate_core::ProgressSink;
use toolgate_registry::Invocation;
use tracing::Instrument;

use std::sync::Arc;

use toolgate_core::ClientRequests;

use super::RequestScope;
use super::catalog::object_output_schema;
use super::client::{McpClient, Notice, is_stateless};
use super::reply::tool_failure;
use crate::AppState;
use crate::exec::{Outcome, run_call};
use crate::transport::requested_timeout;

/// Progress reports and log messages waiting to be sent; past this, they are
/// dropped (a later report supersedes a dropped one anyway).
const NOTICE_QUEUE: usize = 64;

/// Run `tools/call` for `scope`'s caller; `level` is the session's log level, if
/// it set one.
pub(super) async fn call_tool(
    state: &AppState,
    scope: RequestScope,
    request: CallToolRequestParams,
    context: RequestContext<RoleServer>,
    level: Option<rmcp::model::LoggingLevel>,
) -> Result<CallToolResponse, ErrorData> {
    // Over HTTP, the caller may lower the deadline with a header.
    let timeout = match context.extensions.get::<axum::http::request::Parts>() {
        Some(parts) => requested_timeout(&parts.headers).map_err(|e| {
            ErrorData::invalid_params(
                "X-Request-Timeout-Ms must be a positive integer",
                Some(e.to_problem()),
            )
        })?,
        None => None,
    };
    let tool = request.name.into_owned();
    let arguments = Value::Object(request.arguments.unwrap_or_default());
    let progress = context.meta.get_progress_token();
    let level = context.meta.log_level().or(level);
    let work = Call {
        state: state.clone(),
        scope: scope.clone(),
        tool,
        arguments,
        timeout,
    };
    let run = work.run(progress, level, context.peer, context.ct);
    scope.run(run).await
}

/// Everything one call needs, owned, so the future is `'static`.
struct Call {
    state: AppState,
    scope: RequestScope,
    tool: String,
    arguments: Value,
    timeout: Option<std::time::Duration>,
}

impl Call {
    async fn run(
        self,
        progress: Option<ProgressToken>,
        level: Option<rmcp::model::LoggingLevel>,
        peer: Peer<RoleServer>,
        client_cancel: CancellationToken,
    ) -> Result<CallToolResponse, ErrorData> {
        let cancel = self.state.calls.child_token();
        let (tx, rx) = mpsc::channel::<Notice>(NOTICE_QUEUE);
        let sink = match &progress {
            Some(_) => {
                let tx = tx.clone();
                ProgressSink::new(move |p| {
                    let _ = tx.try_send(Notice::Progress(p));
                })
            }
            None => ProgressSink::none(),
        };
        let client = McpClient {
            peer: peer.clone(),
            level,
            notices: tx,
            stateless: is_stateless(&peer),
        };
        let client: Arc<dyn ClientRequests> = Arc::new(client);
        let Call {
            state,
            scope,
            tool,
            arguments,
            timeout,
        } = self;
        let inv = Invocation {
            client: Some(client),
            caller: None,
            timeouts: vec![timeout],
            cancel: cancel.clone(),
            progress: sink,
            trace_id: Some(scope.trace_id.clone()),
            transport: toolgate_registry::Transport::Mcp,
            max_timeout: None,
        };
        let call = run_call(&state, &scope.caller, &tool, arguments, inv);
        // Only the call holds the client (and with it the queue's sender), so the
        // queue closes when the call ends.
        let done = CancellationToken::new();
        let call = async {
            tokio::pin!(call);
            let outcome = tokio::select! {
                biased;
                outcome = &mut call => outcome,
                () = client_cancel.cancelled() => {
                    // Stop the tool, then wait for the registry to wind it down so the
                    // call is logged and counted out before the handler returns.
                    cancel.cancel();
                    call.await
                }
            };
            done.cancel();
            outcome
        };
        let forward = forward_notices(progress, rx, &peer, &done);
        let (outcome, ()) = tokio::join!(call, forward);
        reply(&state, &tool, outcome).map(CallToolResponse::from)
    }
}

/// The MCP result of `outcome`: content blocks as they are when the tool answered
/// content ([`toolgate_core::content`]); otherwise the output as JSON text, plus
/// `structuredContent` when the tool declares an (object) output schema.
pub(super) fn reply(
    state: &AppState,
    tool: &str,
    outcome: Outcome,
) -> Result<CallToolResult, ErrorData> {
    let output = match outcome.result {
        Ok(output) => output,
        Err(err) => return tool_failure(err, tool),
    };
    if let Some(blocks) = toolgate_core::content::blocks(&output)
        && let Ok(blocks) =
            serde_json::from_value::<Vec<ContentBlock>>(Value::Array(blocks.clone()))
    {
        return Ok(CallToolResult::success(blocks));
    }
    let text = vec![ContentBlock::text(output.to_string())];
    let structured = output.is_object()
        && state
            .registry
            .get(tool)
            .is_some_and(|t| object_output_schema(t.spec()).is_some());
    let mut result = CallToolResult::success(text);
    if structured {
        result.structured_content = Some(output);
    }
    Ok(result)
}

/// Send queued progress (as `notifications/progress`) and log messages (as
/// `notifications/message`) until the call is `done`, then whatever is still
/// queued, so every notice precedes the result.
async fn forward_notices(
    token: Option<ProgressToken>,
    mut rx: mpsc::Receiver<Notice>,
    peer: &Peer<RoleServer>,
    done: &CancellationToken,
) {
    let send = |notice: Notice| {
        let token = token.clone();
        // A client that went away cannot be told; the call's own cancellation
        // handles that, so a failed notification is not an error here.
        async move {
            match notice {
                Notice::Progress(p) => {
                    let Some(token) = token else { return };
                    let mut param = ProgressNotificationParam::new(token, p.progress);
                    param.total = p.total;
                    param.message = p.message;
                    let _ = peer.notify_progress(param).await;
                }
                Notice::Log(level, message) => {
                    let param = rmcp::model::LoggingMessageNotificationParam::new(
                        level,
                        Value::String(message),
                    )
                    .with_logger("tool");
                    let _ = peer.notify_logging_message(param).await;
                }
            }
        }
    };
    loop {
        tokio::select! {
            biased;
            notice = rx.recv() => match notice {
                Some(n) => send(n).await,
                None => return,
            },
            () = done.cancelled() => break,
        }
    }
    while let Ok(n) = rx.try_recv() {
        send(n).await;
    }
}

impl RequestScope {
    /// Run `work` inside the request's trace-id scope and span (rmcp runs handlers
    /// on its own tasks, outside both).
    pub(super) async fn run<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        crate::trace::TRACE_ID
            .scope(self.trace_id.clone(), work)
            .instrument(self.span.clone())
            .await
    }

    /// The scope the guard put on the HTTP request, and the request's head.
    pub(super) fn of(
        extensions: &rmcp::model::Extensions,
    ) -> Result<(&Self, &axum::http::request::Parts), ErrorData> {
        extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<RequestScope>().map(|s| (s, p)))
            .ok_or_else(|| {
                // The guard runs before every request reaches rmcp; a request without a
                // scope means the router was built wrong. Refuse rather than serve it.
                tracing::error!("an MCP request reached the handler without a caller");
                ErrorData::internal_error("the request has no authenticated caller", None)
            })
    }
}
