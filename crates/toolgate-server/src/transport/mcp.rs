//! MCP: every tool over the Model Context Protocol's Streamable HTTP transport at
//! `/mcp`, built on the official Rust SDK (rmcp) mounted as a service on our router.
//!
//! Two protocol revisions, chosen per request by rmcp:
//!
//! - **2026-07-28** (current): stateless. No `initialize`, no session; each request
//!   carries its version and client capabilities in `_meta`, plus the `Mcp-Method` /
//!   `Mcp-Name` headers. The server keeps nothing between requests, so any replica
//!   answers any request. Closing the response stream cancels the request.
//! - **2025-11-25**: `initialize` opens a session (`Mcp-Session-Id`, 256 random bits,
//!   bound to the key that opened it), with a `GET` notification stream and `DELETE`.
//!   Older session-based revisions rmcp speaks are accepted too.
//!
//! The parts, in the order a request meets them:
//!
//! - [`guard`]: origin, key (401), session owner (404), body limit (413), scope of a
//!   `tools/call` (403), session limit (503); then the caller goes into the request.
//! - [`direct`]: a 2026-07-28 `tools/call` answered in one JSON body (no progress
//!   token) is served here, skipping rmcp's per-request service (see there why).
//! - rmcp's `StreamableHttpService`: `Host` check, protocol, sessions ([`sessions`]).
//! - [`handler`]: `tools/list` ([`catalog`]), `tools/call` ([`call`], through
//!   [`crate::exec::run_call`] like every transport), list-change notifications.
//! - [`tasks`]: MCP tasks (a `tools/call` that becomes a durable job).
//! - [`reply`]: how failures become `isError` results, JSON-RPC errors and HTTP
//!   refusals.
//!
//! Every rmcp type stays under this module: rmcp changes fast, so an upgrade should
//! touch nothing else.

mod call;
mod catalog;
mod client;
mod content;
mod direct;
mod guard;
mod handler;
mod legacy_tasks;
mod logging;
mod origin;
mod reply;
mod sessions;
pub mod stdio;
mod tasks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware::from_fn_with_state;
use rmcp::transport::streamable_http_server::session::local::SessionConfig;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

use crate::AppState;
use crate::auth::Principal;
use guard::Guard;
use handler::McpHandler;
use sessions::KeyedSessions;

/// Where MCP is served.
pub const PATH: &str = "/mcp";

/// What the guard learned about a request, for the handler (rmcp runs handlers on
/// its own tasks, outside the request's span and trace-id scope).
#[derive(Clone)]
struct RequestScope {
    caller: Arc<Principal>,
    trace_id: String,
    span: tracing::Span,
}

/// The `/mcp` route: rmcp's service behind the guard.
pub fn router(state: &AppState) -> Router<AppState> {
    let limits = &state.limits;
    let mut session_config = SessionConfig::default();
    session_config.keep_alive = Some(Duration::from_millis(
        limits.mcp_session_idle_timeout_ms.max(1),
    ));
    let sessions = Arc::new(KeyedSessions::new(
        session_config,
        limits.mcp_max_sessions,
        limits.operator_reserve_percent,
    ));
    // A reload that removes a key closes its sessions.
    let watched = Arc::downgrade(&sessions);
    let keys = Arc::clone(&state.keys);
    let mut changes = keys.subscribe();
    let watch = async move {
        while changes.changed().await.is_ok() {
            let Some(sessions) = watched.upgrade() else {
                break;
            };
            sessions.close_revoked(&keys).await;
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => drop(rt.spawn(watch)),
        Err(_) => {
            tracing::warn!("no runtime: MCP sessions of revoked keys close when they idle out")
        }
    }
    let handler_state = state.clone();
    let service = StreamableHttpService::new(
        move || Ok(McpHandler::new(handler_state.clone())),
        Arc::clone(&sessions),
        config(state),
    );
    Router::new()
        .route_service(PATH, service)
        .layer(from_fn_with_state(
            Guard::new(state, sessions),
            guard::guard,
        ))
}

/// rmcp's settings from ours.
fn config(state: &AppState) -> StreamableHttpServerConfig {
    let limits = &state.limits;
    let heartbeat =
        (limits.sse_heartbeat_ms > 0).then(|| Duration::from_millis(limits.sse_heartbeat_ms));
    let config = StreamableHttpServerConfig::default()
        // Sessions for the revisions that have them; 2026-07-28 is always stateless.
        .with_legacy_session_mode(true)
        // A call that sends nothing before its result is answered as plain JSON.
        .with_json_response(true)
        .with_sse_keep_alive(heartbeat)
        .with_max_request_body_bytes(limits.body_limit_bytes)
        // Sessions and their streams end when the drain runs out of time, like every
        // call; at the start of the drain they keep serving the calls in flight.
        .with_cancellation_token(state.calls.child_token());
    // The guard validates `Origin`; rmcp validates `Host` (DNS rebinding).
    if limits.mcp_allowed_hosts.iter().any(|h| h == "*") {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(limits.mcp_allowed_hosts.iter().cloned())
    }
}
