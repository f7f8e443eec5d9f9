//! Health and readiness: `/healthz` answers while the process runs; `/readyz` only
//! while the server is ready (not starting, not draining) and every dependency check
//! passes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

use crate::AppState;

const STARTING: u8 = 0;
const READY: u8 = 1;
const DRAINING: u8 = 2;

/// The server's lifecycle as `/readyz` reports it.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicU8>);

impl Readiness {
    /// Serving.
    pub fn set_ready(&self) {
        // Never leave draining once it started.
        let _ = self
            .0
            .compare_exchange(STARTING, READY, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Shutting down: refuse new work.
    pub fn set_draining(&self) {
        self.0.store(DRAINING, Ordering::Release);
    }

    /// Whether the server is draining.
    #[must_use]
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Acquire) == DRAINING
    }

    fn label(&self) -> &'static str {
        match self.0.load(Ordering::Acquire) {
            STARTING => "starting",
            READY => "ready",
            _ => "draining",
        }
    }
}

/// `GET /healthz`.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let lifecycle = state.readiness.label();
    let mut checks = Map::new();
    checks.insert("lifecycle".to_owned(), json!(lifecycle));
    let mut ok = lifecycle == "ready";
    for (name, result) in state.registry.readiness().await {
        let v = match result {
            Ok(()) => json!("ok"),
            Err(e) => {
                ok = false;
                tracing::warn!(check = %name, error = %e, "readiness check failed");
                json!(format!("failing: {e}"))
            }
        };
        checks.insert(name, v);
    }
    // Breaker states are information, not readiness: an open breaker means the
    // server answers fast for that tool, which is exactly what it should do.
    for tool in state.registry.tools() {
        if let Some(b) = tool.breaker_state() {
            checks.insert(format!("breaker:{}", tool.spec().name), json!(b.label()));
        }
    }
    let status = if ok { "ready" } else { "not_ready" };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({"status": status, "checks": Value::Object(checks)})),
    )
}

/// `GET /metrics`: Prometheus text format. Gauges that describe the tools (in
/// flight, queued, breaker state) are read from the registry at scrape time.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    use toolgate_resilience::BreakerState;
    use toolgate_telemetry::metrics as m;
    for tool in state.registry.tools() {
        let name = tool.spec().name.clone();
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        {
            metrics::gauge!(m::IN_FLIGHT, "tool" => name.clone()).set(tool.in_flight() as f64);
            metrics::gauge!(m::QUEUE_DEPTH, "tool" => name.clone()).set(tool.queued() as f64);
        }
        if let Some(b) = tool.breaker_state() {
            let v = match b {
                BreakerState::Closed => 0.0,
                BreakerState::Open => 1.0,
                BreakerState::HalfOpen => 2.0,
            };
            metrics::gauge!(m::BREAKER_STATE, "tool" => name).set(v);
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        toolgate_telemetry::metrics::render(),
    )
}
