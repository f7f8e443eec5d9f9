//! Health and readiness: `/healthz` answers while the process runs; `/readyz` only
//! while the server is ready (not starting, not draining) and every dependency check
//! passes: the tools' sources, the audit store, and the shared rate-limit store when
//! its failure refuses calls (`on_store_error = "closed"`; with `"open"` it is
//! reported as degraded, and the server stays ready).
//!
//! The dependency checks run at most once a second, whoever asks (concurrent probes
//! wait for the one check in progress), so anonymous probes cannot load the
//! databases; a check that changes state is logged once, not at every probe.

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

/// One dependency check: its name, its outcome, and whether a failure makes the
/// server not ready.
type Check = (String, Result<(), String>, bool);

/// How long one round of dependency checks is reused.
const CHECK_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The last round of dependency checks, shared by every probe.
#[derive(Debug, Default)]
pub struct CheckCache {
    last: tokio::sync::Mutex<Option<(tokio::time::Instant, Arc<Vec<Check>>)>>,
}

impl CheckCache {
    /// The checks, run again only when the last round is older than a second.
    async fn get(&self, state: &AppState) -> Arc<Vec<Check>> {
        let mut last = self.last.lock().await;
        if let Some((at, checks)) = last.as_ref()
            && at.elapsed() < CHECK_TTL
        {
            return Arc::clone(checks);
        }
        let mut checks: Vec<Check> = state
            .registry
            .readiness()
            .await
            .into_iter()
            .map(|(name, result)| (name, result, true))
            .collect();
        if let Some(audit) = &state.audit {
            checks.push(("audit".to_owned(), audit.check().await, true));
        }
        // The job store: information, not readiness (plain calls do not need it;
        // job routes answer 503 jobs_unavailable while it is down).
        if state.jobs.settings().durable {
            let ping = tokio::time::timeout(CHECK_TTL, state.jobs.store().ping()).await;
            let result = match ping {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("no answer within 1 s".to_owned()),
            };
            checks.push(("jobs".to_owned(), result, false));
        }
        if let Some((result, refuses)) = state.limiter.check().await {
            checks.push(("rate_limit_store".to_owned(), result, refuses));
        }
        // Log changes only: a failure once when it starts, a recovery once.
        if let Some((_, before)) = last.as_ref() {
            for (name, result, _) in &checks {
                let was = before
                    .iter()
                    .find(|(n, _, _)| n == name)
                    .map(|(_, r, _)| r.is_ok());
                match (was, result) {
                    (Some(true) | None, Err(e)) => {
                        tracing::warn!(check = %name, error = %e, "readiness check failing");
                    }
                    (Some(false), Ok(())) => {
                        tracing::info!(check = %name, "readiness check recovered")
                    }
                    _ => {}
                }
            }
        } else {
            for (name, result, _) in &checks {
                if let Err(e) = result {
                    tracing::warn!(check = %name, error = %e, "readiness check failing");
                }
            }
        }
        let checks = Arc::new(checks);
        *last = Some((tokio::time::Instant::now(), Arc::clone(&checks)));
        checks
    }
}

/// `GET /readyz`.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let lifecycle = state.readiness.label();
    let mut checks = Map::new();
    checks.insert("lifecycle".to_owned(), json!(lifecycle));
    let mut ok = lifecycle == "ready";
    for (name, result, required) in state.ready_checks.get(&state).await.iter() {
        let v = match result {
            Ok(()) => json!("ok"),
            Err(e) if *required => {
                ok = false;
                json!(format!("failing: {e}"))
            }
            Err(e) => json!(format!("degraded: {e}")),
        };
        checks.insert(name.clone(), v);
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
