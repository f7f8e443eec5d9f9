//! [`AppState`]: what every handler shares.

use std::sync::Arc;

use secrecy::SecretString;
use toolgate_config::LoadedConfig;
use toolgate_core::CancellationToken;
use toolgate_registry::Registry;

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
            }),
            readiness: Readiness::default(),
            calls: CancellationToken::new(),
            shutdown: CancellationToken::new(),
        }
    }
}
