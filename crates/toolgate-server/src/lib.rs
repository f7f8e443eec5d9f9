//! # toolgate-server: the HTTP face of the registry
//!
//! An axum application that translates HTTP into [`Registry::invoke`] calls and back.
//! Transports never see tool kinds; tools never see transports.
//!
//! - [`app`]: [`Application`], a bound listener plus state (binary and tests share it).
//! - [`state`]: [`AppState`], one `Clone` struct of `Arc`s handed to every handler.
//! - [`audit`]: the audit log's server side (argument capture, records).
//! - [`auth`]: API keys and scopes; the [`auth::Caller`] extractor (401/403).
//! - [`error`]: [`ApiError`], the one place errors become problem+json responses.
//! - [`body`]: the JSON body extractor (size limit, depth limit, object check).
//! - [`middleware`]: the middleware stack, built in one function.
//! - [`gate`]: the edge: key lookup, failed-auth throttling, global and per-key budgets.
//! - [`quota`]: per-key quotas (calls, WebSockets, MCP sessions in flight).
//! - [`listener`]: the accept loop: connection cap, header timeout, header bytes.
//! - [`body_deadline`]: the request-body deadline (408).
//! - [`exec`]: running one call for a caller (scope check, invoke, call log line).
//! - [`transport`]: `rest` (list, describe, call) and `batch` (`/tools/execute`).
//! - [`jobs`]: durable jobs (REST), approvals, webhooks and the job runner.
//! - [`health`]: `/healthz`, `/readyz` and the [`health::Readiness`] state.
//! - [`openapi`]: the OpenAPI 3.1 document and the `/docs` page.
//! - [`ratelimit`]: per-key rate limits, in memory or shared through Redis.
//! - [`reload`]: hot reload on SIGHUP and file changes.
//! - [`trace`]: trace ids (W3C `traceparent` in, generated otherwise).
//!
//! [`Registry::invoke`]: toolgate_registry::Registry::invoke

pub mod app;
pub mod audit;
pub mod auth;
pub mod body;
pub mod body_deadline;
pub mod error;
pub mod exec;
pub mod gate;
pub mod health;
pub mod jobs;
pub mod listener;
pub mod middleware;
pub mod openapi;
pub mod quota;
pub mod ratelimit;
pub mod reload;
pub mod search;
pub mod state;
pub mod tokens;
pub mod toolsets;
pub mod trace;
pub mod transport;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;

pub use app::Application;
pub use error::ApiError;
pub use state::{AppState, Limits, Shared};

/// The application's routes with the middleware stack applied.
pub fn router(state: AppState) -> Router {
    let mut api = Router::new()
        .route("/api/v1/tools", get(transport::rest::list_tools))
        .route("/api/v1/tools/execute", post(transport::batch::execute))
        .route(
            "/api/v1/tools/execute/stream",
            post(transport::sse::stream_batch),
        )
        .route(
            "/api/v1/tools/{name}/stream",
            post(transport::sse::stream_tool),
        )
        .route("/api/v1/ws", get(transport::ws::upgrade))
        .route("/api/v1/tools/execute/jobs", post(jobs::rest::create_batch))
        .route("/api/v1/tools/{name}/jobs", post(jobs::rest::create))
        .route("/api/v1/jobs", get(jobs::rest::list))
        .route(
            "/api/v1/jobs/{id}",
            get(jobs::rest::get).delete(jobs::rest::cancel),
        )
        .route("/api/v1/jobs/{id}/cancel", post(jobs::rest::cancel))
        .route("/api/v1/approvals", get(jobs::rest::list_approvals))
        .route("/api/v1/approvals/{id}", get(jobs::rest::get_approval))
        .route("/api/v1/approvals/{id}/approve", post(jobs::rest::approve))
        .route("/api/v1/approvals/{id}/deny", post(jobs::rest::deny))
        .route(
            "/api/v1/tools/{name}",
            get(transport::rest::describe_tool).post(transport::rest::call_tool),
        )
        .route("/api/v1/openapi.json", get(openapi::keyed_document))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(openapi::document))
        .route("/docs", get(openapi::docs_page))
        .route("/docs/api-reference.js", get(openapi::api_reference))
        .route(
            "/.well-known/oauth-protected-resource",
            get(tokens::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(tokens::protected_resource),
        )
        .merge(transport::mcp::router(&state))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed);
    if !state.limits.admin_listener {
        api = api.route("/metrics", get(health::metrics));
    }
    let app = middleware::stack(api, &state).with_state(state.clone());
    // Toolsets' paths are rewritten before routing (a layer on the router itself
    // would run after the route was chosen).
    Router::new().fallback_service(
        tower::ServiceBuilder::new()
            .layer(axum::middleware::from_fn_with_state(state, toolsets::route))
            .service(app),
    )
}

/// The admin listener's routes (`[server] admin_listen`): metrics and probes only,
/// no keys. Its requests are not counted in the request metrics.
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
}

/// Connections the admin listener takes at once (probes and scrapes need few).
const ADMIN_MAX_CONNECTIONS: usize = 256;

/// Serve `state` on `listener` until `shutdown` resolves, then drain:
///
/// 1. `/readyz` turns 503 at once and new calls are refused (`503 overloaded`), while
///    the listener stays open so that probes and clients get clear answers;
/// 2. calls in flight get up to `drain_timeout` to finish;
/// 3. those still running are cancelled (their callers get `cancelled`);
/// 4. the listener closes and open connections finish writing (at most 5 s more).
///
/// # Errors
/// The listener fails.
pub async fn serve(
    listener: TcpListener,
    admin: Option<TcpListener>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_timeout: Duration,
) -> std::io::Result<()> {
    let stop_accepting = tokio_util::sync::CancellationToken::new();
    if let Some(admin) = admin {
        let app = admin_router(state.clone());
        let limits = listener::ListenerLimits {
            max_connections: ADMIN_MAX_CONNECTIONS,
            ..state.limits.listener
        };
        tokio::spawn(listener::serve(admin, app, limits, stop_accepting.clone()));
    }
    if let Ok(addr) = listener.local_addr() {
        let _ = state.local_addr.set(addr);
    }
    let app = router(state.clone());
    // The server runs as its own task: it must keep accepting (readiness probes,
    // clear refusals) while this function waits for the drain.
    let mut server = tokio::spawn(listener::serve(
        listener,
        app,
        state.limits.listener,
        stop_accepting.clone(),
    ));
    state.readiness.set_ready();
    jobs::Jobs::start(&state);
    tokio::select! {
        r = &mut server => return r.map_err(std::io::Error::other),
        () = shutdown => {}
    }
    state.readiness.set_draining();
    state.shutdown.cancel();
    tracing::info!(
        drain_timeout_ms = u64::try_from(drain_timeout.as_millis()).unwrap_or(u64::MAX),
        in_flight = state.registry.in_flight(),
        "draining"
    );
    let drained = tokio::time::timeout(drain_timeout, async {
        while state.registry.in_flight() > 0 || state.jobs.running() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    if drained.await.is_err() {
        tracing::warn!(
            in_flight = state.registry.in_flight(),
            "drain timeout passed; cancelling the calls still running"
        );
        state.calls.cancel();
    }
    // Jobs stopped by the drain store their release (or outcome) before the end.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while state.jobs.running() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    stop_accepting.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), &mut server).await;
    // Every answered call's record is committed before the process ends.
    if let Some(audit) = &state.audit {
        audit.flush().await;
    }
    match result {
        Ok(r) => r.map_err(std::io::Error::other),
        Err(_) => {
            server.abort();
            tracing::warn!("connections still open after the drain; closing them");
            Ok(())
        }
    }
}
