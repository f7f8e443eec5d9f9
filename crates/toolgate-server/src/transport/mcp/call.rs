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

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
    ProgressNotificationParam, ProgressToken,
};
use rmcp::service::{Peer, RequestContext};
use rmcp::{ErrorData, RoleServer};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use toolgate_core::{Progress, ProgressSink};
use toolgate_registry::Invocation;
use tracing::Instrument;

use super::RequestScope;
use super::catalog::object_output_schema;
use super::reply::tool_failure;
use crate::AppState;
use crate::exec::{Outcome, run_call};
use crate::transport::requested_timeout;

/// Progress reports waiting to be sent; past this, reports are dropped (the next one
/// supersedes them anyway).
const PROGRESS_QUEUE: usize = 32;

/// Run `tools/call` for the caller named in the request's extensions.
pub(super) async fn call_tool(
    state: &AppState,
    request: CallToolRequestParams,
    context: RequestContext<RoleServer>,
) -> Result<CallToolResponse, ErrorData> {
    let (scope, parts) = RequestScope::of(&context.extensions)?;
    let scope = scope.clone();
    let timeout = requested_timeout(&parts.headers).map_err(|e| {
        ErrorData::invalid_params(
            "X-Request-Timeout-Ms must be a positive integer",
            Some(e.to_problem()),
        )
    })?;
    let tool = request.name.into_owned();
    let arguments = Value::Object(request.arguments.unwrap_or_default());
    let progress = context.meta.get_progress_token();
    let work = Call {
        state: state.clone(),
        scope: scope.clone(),
        tool,
        arguments,
        timeout,
    };
    let run = work.run(progress, context.peer, context.ct);
    crate::trace::TRACE_ID
        .scope(scope.trace_id.clone(), run)
        .instrument(scope.span.clone())
        .await
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
        peer: Peer<RoleServer>,
        client_cancel: CancellationToken,
    ) -> Result<CallToolResponse, ErrorData> {
        let cancel = self.state.calls.child_token();
        let (sink, reports) = match progress {
            Some(token) => {
                let (tx, rx) = mpsc::channel::<Progress>(PROGRESS_QUEUE);
                let sink = ProgressSink::new(move |p| {
                    let _ = tx.try_send(p);
                });
                (sink, Some((token, rx)))
            }
            None => (ProgressSink::none(), None),
        };
        let Call {
            state,
            scope,
            tool,
            arguments,
            timeout,
        } = self;
        let inv = Invocation {
            caller: None,
            timeouts: vec![timeout],
            cancel: cancel.clone(),
            progress: sink,
            trace_id: Some(scope.trace_id.clone()),
            transport: toolgate_registry::Transport::Mcp,
        };
        let call = run_call(&state, &scope.caller, &tool, arguments, inv);
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
        let forward = forward_progress(reports, &peer, &done);
        let (outcome, ()) = tokio::join!(call, forward);
        reply(&state, &tool, outcome).map(CallToolResponse::from)
    }
}

/// The MCP result of `outcome`: the output as JSON text, plus `structuredContent`
/// when the tool declares an (object) output schema.
pub(super) fn reply(
    state: &AppState,
    tool: &str,
    outcome: Outcome,
) -> Result<CallToolResult, ErrorData> {
    let output = match outcome.result {
        Ok(output) => output,
        Err(err) => return tool_failure(err, tool),
    };
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

/// Send queued progress as `notifications/progress` until the call is `done`, then
/// whatever is still queued, so every report precedes the result.
async fn forward_progress(
    reports: Option<(ProgressToken, mpsc::Receiver<Progress>)>,
    peer: &Peer<RoleServer>,
    done: &CancellationToken,
) {
    let Some((token, mut rx)) = reports else {
        return;
    };
    let send = |p: Progress| {
        let mut param = ProgressNotificationParam::new(token.clone(), p.progress);
        param.total = p.total;
        param.message = p.message;
        // A client that went away cannot be told; the call's own cancellation
        // handles that, so a failed notification is not an error here.
        async move {
            let _ = peer.notify_progress(param).await;
        }
    };
    loop {
        tokio::select! {
            biased;
            report = rx.recv() => match report {
                Some(p) => send(p).await,
                None => return,
            },
            () = done.cancelled() => break,
        }
    }
    while let Ok(p) = rx.try_recv() {
        send(p).await;
    }
}

impl RequestScope {
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
