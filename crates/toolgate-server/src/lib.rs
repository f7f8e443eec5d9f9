//! # toolgate-server: the HTTP face of the registry
//!
//! An axum application that translates HTTP into [`Registry::invoke`] calls and back.
//! Transports never see tool kinds; tools never see transports.
//!
//! - [`app`]: [`Application`], a bound listener plus state (binary and tests share it).
//! - [`state`]: [`AppState`], one `Clone` struct of `Arc`s handed to every handler.
//! - [`auth`]: API keys and scopes; the [`auth::Caller`] extractor (401/403).
//! - [`error`]: [`ApiError`], the one place errors become problem+json responses.
//! - [`body`]: the JSON body extractor (size limit, depth limit, object check).
//! - [`middleware`]: the middleware stack, built in one function.
//! - [`exec`]: running one call for a caller (scope check, invoke, call log line).
//! - [`transport`]: `rest` (list, describe, call) and `batch` (`/tools/execute`).
//! - [`health`]: `/healthz`, `/readyz` and the [`health::Readiness`] state.
//! - [`openapi`]: the OpenAPI 3.1 document and the `/docs` page.
//! - [`trace`]: trace ids (W3C `traceparent` in, generated otherwise).
//!
//! [`Registry::invoke`]: toolgate_registry::Registry::invoke

pub mod app;
pub mod auth;
pub mod body;
pub mod error;
pub mod exec;
pub mod health;
pub mod middleware;
pub mod openapi;
pub mod state;
pub mod trace;
pub mod transport;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;

pub use app::Application;
pub use error::ApiError;
pub use state::{AppState, Limits};

/// The application's routes with the middleware stack applied.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/tools", get(transport::rest::list_tools))
        .route("/api/v1/tools/execute", post(transport::batch::execute))
        .route(
            "/api/v1/tools/{name}",
            get(transport::rest::describe_tool).post(transport::rest::call_tool),
        )
        .route("/api/v1/openapi.json", get(openapi::keyed_document))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(openapi::document))
        .route("/docs", get(openapi::docs_page))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed);
    middleware::stack(api, &state).with_state(state)
}

/// Serve `state` on `listener` until `shutdown` resolves, then drain: readiness
/// turns 503, the listener closes, in-flight requests get up to `drain_timeout`,
/// and whatever is still running after that is cancelled.
///
/// # Errors
/// The listener fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_timeout: Duration,
) -> std::io::Result<()> {
    let readiness = state.readiness.clone();
    let calls = state.calls.clone();
    let shutting_down = state.shutdown.clone();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    readiness.set_ready();
    let (drain_started_tx, drain_started) = tokio::sync::oneshot::channel::<()>();
    let graceful = async move {
        shutdown.await;
        readiness.set_draining();
        shutting_down.cancel();
        tracing::info!(
            drain_timeout_ms = u64::try_from(drain_timeout.as_millis()).unwrap_or(u64::MAX),
            "draining"
        );
        let _ = drain_started_tx.send(());
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(graceful);
    let server = std::pin::pin!(server.into_future());
    let mut server = server;
    tokio::select! {
        r = &mut server => return r,
        Ok(()) = drain_started => {}
    }
    match tokio::time::timeout(drain_timeout, &mut server).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!("drain timeout passed; cancelling the calls still running");
            calls.cancel();
            // Cancelled calls answer at once; give them a moment to be written.
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
            Ok(())
        }
    }
}
