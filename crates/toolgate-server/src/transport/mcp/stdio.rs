//! MCP over standard input and output (`toolgate stdio`), for desktop clients that
//! launch a local server: the same handler as `/mcp`, so the same tools, resources,
//! prompts, policies, audit and logs. Requests speak for one fixed caller, since
//! there is no HTTP request to carry a key: the key given at start (its scopes,
//! limits and quotas), or, when none is given and the configuration allows it, the
//! process owner with every scope. Logs go to stderr (stdout carries the protocol).

use std::sync::Arc;

use rmcp::ServiceExt;

use super::handler::McpHandler;
use crate::AppState;
use crate::auth::Principal;

/// Serve MCP on stdin/stdout for `caller` until the client closes stdin or the
/// server shuts down, then flush the audit log.
///
/// # Errors
/// The MCP handshake failed (the client sent something that is not MCP).
pub async fn serve(state: AppState, caller: Arc<Principal>) -> std::io::Result<()> {
    state.readiness.set_ready();
    let handler = McpHandler::for_caller(state.clone(), caller);
    let running = handler
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| std::io::Error::other(format!("MCP over stdio: {e}")))?;
    let stop = running.cancellation_token();
    let shutdown = Arc::clone(&state.shutdown);
    let waiting = running.waiting();
    tokio::pin!(waiting);
    let reason = tokio::select! {
        r = &mut waiting => r,
        () = shutdown.cancelled() => {
            stop.cancel();
            waiting.await
        }
    };
    tracing::info!(reason = ?reason.ok(), "stdio session ended");
    state.readiness.set_draining();
    state.shutdown.cancel();
    if let Some(audit) = &state.audit {
        audit.flush().await;
    }
    Ok(())
}
