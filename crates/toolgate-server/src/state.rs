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
    /// Browser origins allowed on `/mcp` (`*` for any).
    pub mcp_allowed_origins: Vec<String>,
    /// `Host` values `/mcp` answers (`*` for any).
    pub mcp_allowed_hosts: Vec<String>,
    /// Idle time after which a 2025-11-25 MCP session closes, in ms.
    pub mcp_session_idle_timeout_ms: u64,
    /// Most 2025-11-25 MCP sessions open at once.
    pub mcp_max_sessions: usize,
    /// Tools in one page of an MCP `tools/list`.
    pub mcp_tools_page_size: usize,
    /// `/metrics` is served on the admin listener instead of the main one.
    pub admin_listener: bool,
    /// Connection cap, header timeout and header bytes of the listener.
    pub listener: crate::listener::ListenerLimits,
    /// Time a request's body has to arrive after its headers.
    pub body_read_timeout: std::time::Duration,
    /// Share of the global budgets kept for operator keys, in percent.
    pub operator_reserve_percent: u8,
}

/// Shared state: one `Arc`, so the clone axum makes for every request is one atomic
/// increment. Its fields are reached through `Deref` ([`Shared`]).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What every handler shares.
pub struct Shared {
    /// The tools.
    pub registry: Arc<Registry>,
    /// The accepted keys.
    pub keys: Arc<Keys>,
    /// Request limits.
    pub limits: Arc<Limits>,
    /// Starting / ready / draining.
    pub readiness: Readiness,
    /// The address the main listener is bound to, once [`crate::serve`] runs
    /// (`/mcp` accepts loopback origins by default when it is a loopback one).
    pub local_addr: std::sync::OnceLock<std::net::SocketAddr>,
    /// The OpenAPI document, built once.
    pub docs: Arc<Documents>,
    /// Parent of every call's cancellation; cancelled when a drain runs out of time.
    /// (Behind an `Arc`: the state is cloned per request, and cloning a token takes
    /// its tree's lock.)
    pub calls: Arc<CancellationToken>,
    /// Fires when the drain starts (long-lived connections close on it).
    pub shutdown: Arc<CancellationToken>,
    /// The global in-flight request limit (load shedding), with the operators' reserve.
    pub shedder: Arc<Shedder>,
    /// Failed authentications per client address.
    pub auth_throttle: Arc<crate::gate::AuthThrottle>,
    /// The last round of `/readyz` dependency checks.
    pub ready_checks: Arc<crate::health::CheckCache>,
    /// Where per-key rate limits are counted.
    pub limiter: Arc<crate::ratelimit::Limiter>,
    /// The audit log, when `[audit]` is configured.
    pub audit: Option<Arc<crate::audit::Auditor>>,
    /// Bearer tokens of the `[auth]` issuers (replaced on reload).
    pub tokens: arc_swap::ArcSwapOption<crate::tokens::Tokens>,
    /// `[toolsets.NAME]` (replaced on reload).
    pub toolsets: arc_swap::ArcSwap<crate::toolsets::Toolsets>,
    /// Durable jobs and approvals.
    pub jobs: Arc<crate::jobs::Jobs>,
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
        let jobs = Arc::new(crate::jobs::Jobs::in_memory(loaded));
        Self::with_audit(registry, loaded, operator_key, None, jobs)
    }

    /// As [`AppState::new`], with the audit log and the job store open.
    #[must_use]
    pub fn with_audit(
        registry: Registry,
        loaded: &LoadedConfig,
        operator_key: Option<&SecretString>,
        audit: Option<Arc<crate::audit::Auditor>>,
        jobs: Arc<crate::jobs::Jobs>,
    ) -> Self {
        let server = &loaded.config.server;
        // Install the metrics recorder before the first request records anything.
        let _ = toolgate_telemetry::metrics::handle();
        register_at_zero(loaded);
        let registry = Arc::new(registry);
        let operator = operator_key.or(loaded.operator_key.as_ref());
        Self(Arc::new(Shared {
            docs: Arc::new(Documents::new(&registry)),
            registry,
            keys: Arc::new(Keys::new(
                operator,
                &loaded.config.keys,
                crate::quota::QuotaDefaults::from_server(server),
            )),
            limits: Arc::new(Limits {
                body_limit_bytes: server.body_limit_bytes,
                json_max_depth: server.json_max_depth,
                max_batch_calls: server.max_batch_calls,
                cors_allowed_origins: server.cors_allowed_origins.clone(),
                sse_heartbeat_ms: server.sse_heartbeat_ms,
                ws_max_in_flight: server.ws_max_in_flight,
                ws_max_message_bytes: server.ws_max_message_bytes,
                ws_ping_interval_ms: server.ws_ping_interval_ms,
                mcp_allowed_origins: server.mcp_allowed_origins.clone(),
                mcp_allowed_hosts: server.mcp_allowed_hosts.clone(),
                mcp_session_idle_timeout_ms: server.mcp_session_idle_timeout_ms,
                mcp_max_sessions: server.mcp_max_sessions,
                mcp_tools_page_size: server.mcp_tools_page_size,
                admin_listener: server.admin_listen.is_some(),
                listener: crate::listener::ListenerLimits {
                    max_connections: server
                        .max_connections
                        .unwrap_or_else(crate::listener::default_max_connections),
                    header_read_timeout: std::time::Duration::from_millis(
                        server.header_read_timeout_ms,
                    ),
                    max_header_bytes: server.max_header_bytes,
                },
                body_read_timeout: std::time::Duration::from_millis(server.body_read_timeout_ms),
                operator_reserve_percent: server.operator_reserve_percent,
            }),
            readiness: Readiness::default(),
            local_addr: std::sync::OnceLock::new(),
            calls: Arc::new(CancellationToken::new()),
            shutdown: Arc::new(CancellationToken::new()),
            shedder: Arc::new(Shedder::with_reserve(
                server.max_in_flight_requests,
                server.operator_reserve_percent,
            )),
            ready_checks: Arc::default(),
            auth_throttle: Arc::new(crate::gate::AuthThrottle::new(
                server.auth_failures_per_second,
                server.auth_failures_burst,
            )),
            // Validation guarantees a Redis store has a URL; a malformed one falls back
            // to counting in memory, loudly.
            limiter: Arc::new(
                crate::ratelimit::Limiter::new(&loaded.config.rate_limits).unwrap_or_else(|e| {
                    tracing::error!(error = %e, "rate limits are counted in memory");
                    crate::ratelimit::Limiter::Memory
                }),
            ),
            audit,
            jobs,
            tokens: arc_swap::ArcSwapOption::new(tokens_of(loaded)),
            toolsets: arc_swap::ArcSwap::from_pointee(crate::toolsets::of(loaded)),
            operator_key: operator.cloned(),
        }))
    }
}

/// The `[auth]` issuers of `loaded`; `None` without any (or, logged, when their
/// HTTP client cannot be built: tokens are then refused, keys still work).
pub(crate) fn tokens_of(loaded: &LoadedConfig) -> Option<Arc<crate::tokens::Tokens>> {
    match crate::tokens::Tokens::from_config(&loaded.config.auth, &loaded.config.server) {
        Ok(tokens) => tokens.map(Arc::new),
        Err(e) => {
            tracing::error!(error = %e, "bearer tokens are refused");
            None
        }
    }
}

/// Every counter family that is bounded by the config exists from the start, at 0
/// (Prometheus practice: a dashboard or alert must see 0, not "absent"). Registering
/// adds 0 and so never resets a counter another server in the process has counted.
fn register_at_zero(loaded: &LoadedConfig) {
    use toolgate_telemetry::metrics as m;
    for reason in ["in_flight_limit", "draining"] {
        metrics::counter!(m::SHED, "reason" => reason).increment(0);
    }
    for reason in ["unknown_key", "throttled", "invalid_token"] {
        metrics::counter!(m::AUTH_FAILURES, "reason" => reason).increment(0);
    }
    for result in ["ok", "refused"] {
        metrics::counter!(m::RELOADS, "result" => result).increment(0);
    }
    for name in [
        m::BODY_TIMEOUTS,
        m::ACCEPT_ERRORS,
        m::AUDIT_QUEUE_FULL,
        m::AUDIT_WRITTEN,
        m::AUDIT_FAILURES,
        m::AUDIT_RECONNECTS,
        m::AUDIT_LOST,
        m::AUDIT_REFUSED,
    ] {
        metrics::counter!(name).increment(0);
    }
    if loaded.config.audit.is_some() {
        for name in [m::AUDIT_QUEUE_DEPTH, m::AUDIT_SPOOLED, m::AUDIT_HEAD_SEQ] {
            metrics::gauge!(name).increment(0.0);
        }
    }
    metrics::counter!(m::OUTPUT_CAPPED, "what" => "websocket_message").increment(0);
    m::connections_open().increment(0.0);
    let names = std::iter::once(crate::auth::OPERATOR.to_owned())
        .chain(loaded.config.keys.iter().map(|k| k.name.get_ref().clone()));
    for name in names {
        for quota in [
            crate::quota::QuotaKind::Requests,
            crate::quota::QuotaKind::Calls,
            crate::quota::QuotaKind::WebSockets,
            crate::quota::QuotaKind::McpSessions,
        ] {
            metrics::counter!(m::QUOTA_EXCEEDED, "key" => name.clone(), "quota" => quota.label())
                .increment(0);
        }
        metrics::counter!(m::RATE_LIMITED, "key" => name).increment(0);
    }
    for tool in loaded.config.tools.iter().filter(|t| t.retry.is_some()) {
        metrics::counter!(m::RETRIES, "tool" => tool.name.get_ref().clone()).increment(0);
    }
}
