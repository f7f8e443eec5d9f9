//! [`AppState`]: what every handler shares.

use std::sync::Arc;

use secrecy::SecretString;
use toolgate_config::LoadedConfig;
use toolgate_core::CancellationToken;
use toolgate_registry::Registry;
use toolgate_resilience::Shedder;

use crate::auth::Keys;
use crate::health::Readiness;
use crate::openapi::Documents;

/// Request limits from `[server]`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest body in bytes.
    pub body_limit_bytes: usize,
    /// Deepest JSON nesting.
    pub json_max_depth: usize,
    /// Most calls in one batch.
    pub max_batch_calls: usize,
    /// CORS origins (`*` for any).
    pub cors_allowed_origins: Vec<String>,
    /// SSE comment heartbeat interval in ms (`0`: none).
    pub sse_heartbeat_ms: u64,
    /// Calls one WebSocket may have in flight.
    pub ws_max_in_flight: usize,
    /// Largest WebSocket message in bytes.
    pub ws_max_message_bytes: usize,
    /// WebSocket ping interval in ms (`0`: none).
    pub ws_ping_interval_ms: u64,
}

/// Shared state: cheap to clone, all `Arc`s.
#[derive(Clone)]
pub struct AppState {
    /// The tools.
    pub registry: Arc<Registry>,
    /// The accepted keys.
    pub keys: Arc<Keys>,
    /// Request limits.
    pub limits: Arc<Limits>,
    /// Starting / ready / draining.
    pub readiness: Readiness,
    /// The OpenAPI document, built once.
    pub docs: Arc<Documents>,
    /// Parent of every call's cancellation; cancelled when a drain runs out of time.
    pub calls: CancellationToken,
    /// Fires when the drain starts (long-lived connections close on it).
    pub shutdown: CancellationToken,
    /// The global in-flight request limit (load shedding).
    pub shedder: Arc<Shedder>,
    /// The operator key given at start (kept across reloads).
    pub(crate) operator_key: Option<SecretString>,
}

impl AppState {
    /// State for `registry` under the config's limits and keys; `operator_key`
    /// overrides the config's (for a generated key).
    #[must_use]
    pub fn new(
        registry: Registry,
        loaded: &LoadedConfig,
        operator_key: Option<&SecretString>,
    ) -> Self {
        let server = &loaded.config.server;
        let registry = Arc::new(registry);
        let operator = operator_key.or(loaded.operator_key.as_ref());
        Self {
            docs: Arc::new(Documents::new(&registry)),
            registry,
            keys: Arc::new(Keys::new(operator, &loaded.config.keys)),
            limits: Arc::new(Limits {
                body_limit_bytes: server.body_limit_bytes,
                json_max_depth: server.json_max_depth,
                max_batch_calls: server.max_batch_calls,
                cors_allowed_origins: server.cors_allowed_origins.clone(),
                sse_heartbeat_ms: server.sse_heartbeat_ms,
                ws_max_in_flight: server.ws_max_in_flight,
                ws_max_message_bytes: server.ws_max_message_bytes,
                ws_ping_interval_ms: server.ws_ping_interval_ms,
            }),
            readiness: Readiness::default(),
            calls: CancellationToken::new(),
            shutdown: CancellationToken::new(),
            shedder: Arc::new(Shedder::new(server.max_in_flight_requests)),
            operator_key: operator.cloned(),
        }
    }
}
