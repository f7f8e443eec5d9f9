//! The typed configuration model. Every section rejects unknown fields, so a typo is
//! an error with a line number rather than a silently ignored setting.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use crate::env::EnvString;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener and request limits.
    #[serde(default)]
    pub server: ServerConfig,
    /// Limits applied to every tool that does not set its own.
    #[serde(default)]
    pub defaults: ToolDefaults,
    /// API keys, stored as hashes.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// Data sources that SQL tools refer to by name.
    #[serde(default)]
    pub sources: BTreeMap<String, Spanned<SourceConfig>>,
    /// The tools to serve.
    #[serde(default)]
    pub tools: Vec<ToolConfig>,
    /// The audit log. Default: none.
    #[serde(default)]
    pub audit: Option<Spanned<AuditConfig>>,
    /// Where per-key rate limits are counted. Default: in memory.
    #[serde(default)]
    pub rate_limits: RateLimitStoreConfig,
    /// Bearer tokens from identity providers, beside the keys. Default: keys only.
    #[serde(default)]
    pub auth: AuthConfig,
    /// `[toolsets.NAME]`: named views of the tools, each with its own endpoints.
    #[serde(default)]
    pub toolsets: BTreeMap<String, Spanned<ToolsetConfig>>,
    /// `[[resources]]`: fixed MCP resources.
    #[serde(default)]
    pub resources: Vec<crate::content::ResourceConfig>,
    /// `[[resource_templates]]`: MCP resource templates.
    #[serde(default)]
    pub resource_templates: Vec<crate::content::ResourceTemplateConfig>,
    /// `[[prompts]]`: MCP prompts.
    #[serde(default)]
    pub prompts: Vec<crate::content::PromptConfig>,
    /// Durable jobs. Default: kept in memory.
    #[serde(default)]
    pub jobs: Option<Spanned<crate::jobs::JobsConfig>>,
}

/// `[toolsets.NAME]`: a named set of tools, served at `/mcp/NAME` and under
/// `/api/v1/sets/NAME/`; a caller there sees the set's tools that it may call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsetConfig {
    /// Tool-name patterns (`*` for any run of characters), over every tool of every
    /// source.
    pub tools: Vec<String>,
    /// What the set is for. Default none.
    pub description: Option<String>,
    /// Discovery mode: the set lists the meta-tools `search_tools` and
    /// `describe_tool` instead of its tools (which stay callable by name), so an
    /// agent reads a few schemas instead of the whole catalog. Default false.
    #[serde(default)]
    pub search: bool,
}

/// `[auth]`: OAuth 2.1 / OpenID Connect access tokens (JWTs) accepted beside the
/// API keys.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// This server's public URL: the `resource` of its protected resource metadata
    /// (RFC 9728) and the audience tokens must carry unless an issuer sets its own.
    pub resource: Option<Spanned<String>>,
    /// How long a token that passed is reused before its signature is checked again
    /// (ms, 0..=3600000; never past its `exp`). Default 60000.
    pub token_cache_ms: Option<Spanned<u64>>,
    /// The scope a `401` asks for (`WWW-Authenticate: Bearer scope="..."`), which
    /// MCP clients request first: space-separated granted values. Default: every
    /// value in `scopes_supported`. Narrower values make clients start with less and
    /// step up (`403 insufficient_scope` names what a tool needs).
    pub scope: Option<Spanned<String>>,
    /// The trusted issuers.
    #[serde(default)]
    pub issuers: Vec<Spanned<IssuerConfig>>,
}

/// `token_exchange = { token_endpoint = "...", client_id = "...", client_secret_env =
/// "...", audience = "..." }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenExchangeConfig {
    /// The issuer's token endpoint.
    pub token_endpoint: String,
    /// toolgate's client id at the issuer.
    pub client_id: String,
    /// The environment variable holding its secret.
    pub client_secret_env: String,
    /// The `audience` asked for.
    pub audience: Option<String>,
    /// The `resource` asked for (RFC 8707).
    pub resource: Option<String>,
    /// The `scope` asked for.
    pub scope: Option<String>,
}

/// `introspection = { client_id = "...", client_secret_env = "..." }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionConfig {
    /// The endpoint. Default: the discovery document's `introspection_endpoint`.
    pub endpoint: Option<String>,
    /// toolgate's client id at the issuer.
    pub client_id: String,
    /// The environment variable holding its secret (never in the file).
    pub client_secret_env: String,
    /// The longest an answer (or a refusal) is reused (ms, 0..=3600000; never past
    /// the token's `exp`). Default 60000.
    pub cache_ms: Option<u64>,
}

/// `[[auth.issuers]]`: one trusted token issuer, and what its tokens may call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// A short name, for logs and the audit log (`name:subject`).
    pub name: Spanned<String>,
    /// The `iss` of its tokens; its discovery document is found from it.
    pub issuer: Spanned<String>,
    /// The `aud` its tokens must carry. Default `[auth] resource`.
    pub audience: Option<Spanned<String>>,
    /// The JWKS URL. Default: the discovery document's `jwks_uri`.
    pub jwks_uri: Option<Spanned<String>>,
    /// Accepted algorithms. Default all of RS256/384/512, PS256/384/512, ES256/384,
    /// EdDSA (never HMAC or `none`).
    pub algorithms: Option<Spanned<Vec<String>>>,
    /// Clock skew allowed on `exp`, `nbf`, `iat` (s, 0..=300). Default 30.
    pub leeway_s: Option<Spanned<u64>>,
    /// The least time between two fetches of the keys (ms, 1000..=3600000; an
    /// unknown `kid` fetches them at most this often). Default 10000.
    pub jwks_min_refresh_ms: Option<Spanned<u64>>,
    /// Past this age the keys are fetched again (ms, 1000..=86400000). Default 300000.
    pub jwks_max_age_ms: Option<Spanned<u64>>,
    /// How long one fetch may take (ms, 100..=60000). Default 5000.
    pub fetch_timeout_ms: Option<Spanned<u64>>,
    /// The claims whose values are looked up in `grants`. Default
    /// `["scope", "scp", "roles", "groups"]`.
    pub scope_claims: Option<Vec<String>>,
    /// A scope, role or group value to the tool patterns it allows, e.g.
    /// `"tools:read" = ["search_*", "get_*"]`.
    #[serde(default)]
    pub grants: BTreeMap<String, Vec<String>>,
    /// Opaque tokens of this issuer are introspected (RFC 7662). Default: JWTs only.
    #[serde(default)]
    pub introspection: Option<Spanned<IntrospectionConfig>>,
    /// Calls per second each subject may make. Default: unlimited.
    #[serde(default)]
    pub rate_limit: Option<Spanned<RateLimitConfig>>,
    /// Calls each subject may have in flight. Default `[server] key_max_in_flight`.
    #[serde(default)]
    pub max_in_flight: Option<Spanned<usize>>,
    /// WebSockets each subject may have open. Default `[server] key_max_websockets`.
    #[serde(default)]
    pub max_websockets: Option<Spanned<usize>>,
    /// MCP sessions each subject may have open. Default `[server] key_max_mcp_sessions`.
    #[serde(default)]
    pub max_mcp_sessions: Option<Spanned<usize>>,
}

/// Where rate-limit buckets live.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitStore {
    /// In this process (each replica counts alone).
    #[default]
    Memory,
    /// In Redis, shared by every replica.
    Redis,
}

/// What to do when the shared store cannot be reached.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnStoreError {
    /// Allow the call (availability first).
    #[default]
    Open,
    /// Refuse the call with `503 overloaded` (limits first).
    Closed,
}

/// `[rate_limits]`: shared limits across replicas.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitStoreConfig {
    /// `memory` (default) or `redis`.
    pub store: RateLimitStore,
    /// Redis URL (`${VAR}` expanded), e.g. `redis://127.0.0.1:6379`.
    pub redis_url: Option<Spanned<crate::env::EnvString>>,
    /// `open` (default) or `closed` when Redis is down.
    pub on_store_error: OnStoreError,
    /// Prefix of the Redis keys. Default `toolgate`.
    pub key_prefix: Option<String>,
}

/// How the response waits for its audit record.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// The record is queued; it is written off the hot path in batches.
    #[default]
    Async,
    /// The response waits until the record is committed.
    Sync,
}

/// `[audit]`: one hash-chained record per call on every transport. Give `path`
/// (SQLite, the default) or `url` (PostgreSQL).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// SQLite file of the log (`${VAR}` expanded); created if missing.
    #[serde(default)]
    pub path: Option<Spanned<crate::env::EnvString>>,
    /// PostgreSQL URL (`${VAR}` expanded), e.g. `postgres://toolgate@db/toolgate`.
    #[serde(default)]
    pub url: Option<Spanned<crate::env::EnvString>>,
    /// PostgreSQL table. Default `toolgate_audit`.
    #[serde(default = "default_audit_table")]
    pub table: String,
    /// `async` (default) or `sync`.
    #[serde(default)]
    pub durability: Durability,
    /// Records queued for the writer; a full queue makes callers wait (never drops),
    /// counted in `toolgate_audit_queue_full_total`. Default 10000.
    #[serde(default = "default_audit_queue")]
    pub queue_capacity: usize,
    /// How long a call's record may wait for room in a full queue before the call is
    /// refused with `503 audit_unavailable` (ms, 1..=60000). Default 2000.
    #[serde(default = "default_enqueue_timeout")]
    pub enqueue_timeout_ms: u64,
    /// Where records are kept while the store is down (a SQLite file, `${VAR}`
    /// expanded). Default: `<path>.spool` beside a SQLite log, `<table>-spool.db` in
    /// the working directory for PostgreSQL. Each process needs its own.
    #[serde(default)]
    pub spool_path: Option<crate::env::EnvString>,
    /// Records the spool may hold before new calls are refused (1..=100000000).
    /// Default 1000000.
    #[serde(default = "default_spool_max")]
    pub spool_max_records: u64,
    /// PostgreSQL: how long connecting may take (ms, 1..=600000). Default 5000.
    #[serde(default = "default_audit_pg_timeout")]
    pub connect_timeout_ms: u64,
    /// PostgreSQL: how long a statement or commit may take before the connection is
    /// given up (ms, 1..=600000; also the TCP keepalive and user timeout). SQLite: how
    /// long a write waits for a lock another process holds. Default 5000.
    #[serde(default = "default_audit_pg_timeout")]
    pub statement_timeout_ms: u64,
    /// The longest wait between reconnection attempts (ms, 100..=600000; the wait
    /// starts at 100 ms, doubles, and is jittered). Default 5000.
    #[serde(default = "default_audit_pg_timeout")]
    pub reconnect_max_ms: u64,
    /// How often the chain's head is published (ms, 1000..=86400000). Default 60000.
    #[serde(default = "default_head_interval")]
    pub head_interval_ms: u64,
    /// The environment variable holding the chain's HMAC key (at least 32 bytes).
    /// Unset: plain SHA-256. A log keeps the chain it was started with.
    #[serde(default)]
    pub hmac_key_env: Option<String>,
}

fn default_enqueue_timeout() -> u64 {
    2000
}

fn default_spool_max() -> u64 {
    1_000_000
}

fn default_audit_pg_timeout() -> u64 {
    5000
}

fn default_head_interval() -> u64 {
    60_000
}

fn default_audit_table() -> String {
    "toolgate_audit".to_owned()
}

fn default_audit_queue() -> usize {
    10_000
}

/// `[server]`: where to listen and how much a request may carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: Spanned<String>,
    /// A second address serving only `/metrics`, `/healthz` and `/readyz`, for
    /// operators who keep those off the public listener. When set, the main listener
    /// no longer serves `/metrics`. Default none.
    pub admin_listen: Option<Spanned<String>>,
    /// Largest request body in bytes. Default 1 MiB.
    pub body_limit_bytes: usize,
    /// Deepest JSON nesting accepted in a body. Default 64.
    pub json_max_depth: usize,
    /// Most calls in one batch. Default 64.
    pub max_batch_calls: usize,
    /// Origins allowed by CORS; `["*"]` allows any. Default none (no CORS headers).
    pub cors_allowed_origins: Vec<String>,
    /// On SIGTERM/SIGINT, how long in-flight calls may finish before they are
    /// cancelled, in ms. Default 30000.
    pub drain_timeout_ms: u64,
    /// Interval of the comment heartbeats on an idle SSE stream, in ms, so that
    /// proxies and clients do not time the stream out. `0` sends none. Default 15000.
    pub sse_heartbeat_ms: u64,
    /// Calls one WebSocket may have in flight; past it the server stops reading the
    /// socket until a call finishes (backpressure). Default 64.
    pub ws_max_in_flight: usize,
    /// Largest WebSocket message (and frame) in bytes; a larger one closes the socket
    /// with code 1009. Default 1 MiB.
    pub ws_max_message_bytes: usize,
    /// Interval of the server's WebSocket pings, in ms; a peer silent for two intervals
    /// is dropped. `0` sends none. Default 30000.
    pub ws_ping_interval_ms: u64,
    /// Requests in flight at once (health probes excepted); past it requests are
    /// refused with `503 overloaded` before their body is read. Default 4096.
    pub max_in_flight_requests: usize,
    /// Browser origins allowed to call `/mcp` (`scheme://host[:port]`, a port of `*`
    /// for any port, or `"*"` for any origin). A request whose `Origin` header is not
    /// listed gets `403`; requests without `Origin` (non-browser clients) pass.
    /// Default none: every request that carries an `Origin` is refused.
    pub mcp_allowed_origins: Vec<String>,
    /// `toolgate stdio` refuses to start without a key (`TOOLGATE_STDIO_KEY`) instead
    /// of serving the process owner with every scope. Default false.
    pub stdio_require_key: bool,
    /// `Host` values (`name` or `name:port`) that `/mcp` answers, against DNS
    /// rebinding; `["*"]` accepts any. Default the loopback names (`localhost`,
    /// `127.0.0.1`, `::1`): a server reached under another name must list it.
    pub mcp_allowed_hosts: Vec<String>,
    /// A 2025-11-25 MCP session with no request for this long is closed, in ms.
    /// Default 300000.
    pub mcp_session_idle_timeout_ms: u64,
    /// Most 2025-11-25 MCP sessions open at once; past it `initialize` is refused
    /// with a JSON-RPC error (HTTP 503). Default 10000.
    pub mcp_max_sessions: usize,
    /// Tools in one page of an MCP `tools/list`. Default 100.
    pub mcp_tools_page_size: usize,
    /// Time a connection has for a request's headers, in ms, from the moment it is
    /// ready for one (just accepted, or its previous response sent): bounds slowloris
    /// headers and idle kept-alive connections alike. 100..=600000, default 10000.
    pub header_read_timeout_ms: u64,
    /// Time a request's body has to arrive whole after its headers, in ms; past it the
    /// request is answered `408 request_timeout` and its slots are released.
    /// 100..=3600000, default 15000.
    pub body_read_timeout_ms: u64,
    /// Largest request head (request line plus headers) in bytes; larger gets `431`.
    /// 4096..=1048576, default 65536.
    pub max_header_bytes: usize,
    /// Default of `[[keys]] max_in_flight`. 1..=1000000, default 256.
    pub key_max_in_flight: usize,
    /// Default of `[[keys]] max_websockets`. 0..=1000000, default 64.
    pub key_max_websockets: usize,
    /// Default of `[[keys]] max_mcp_sessions`. 0..=1000000, default 100.
    pub key_max_mcp_sessions: usize,
    /// Percentage of `max_in_flight_requests` and `mcp_max_sessions` kept for the
    /// operator key and keys with `operator = true` (at least one of each is kept
    /// when the percentage is above 0). 0..=90, default 10.
    pub operator_reserve_percent: u8,
    /// Failed authentications (a missing or unknown key) a client address may make
    /// per second, as a token bucket; past it requests from that address get `429`
    /// before their key is looked at. 0.01..=100000, default 5.
    pub auth_failures_per_second: f64,
    /// Burst of that bucket. 1..=1000000, default 50.
    pub auth_failures_burst: f64,
    /// Connections open at once on the main listener; past it new connections wait in
    /// the kernel's backlog. Default: the descriptor limit less a reserve (an eighth,
    /// 64..=4096) for the admin listener, databases, upstreams and the audit log.
    pub max_connections: Option<usize>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: Spanned::new(0..0, "127.0.0.1:8080".to_owned()),
            admin_listen: None,
            body_limit_bytes: 1024 * 1024,
            json_max_depth: 64,
            max_batch_calls: 64,
            cors_allowed_origins: Vec::new(),
            drain_timeout_ms: 30_000,
            sse_heartbeat_ms: 15_000,
            ws_max_in_flight: 64,
            ws_max_message_bytes: 1024 * 1024,
            ws_ping_interval_ms: 30_000,
            max_in_flight_requests: 4096,
            mcp_allowed_origins: Vec::new(),
            stdio_require_key: false,
            mcp_allowed_hosts: vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ],
            mcp_session_idle_timeout_ms: 300_000,
            mcp_max_sessions: 10_000,
            mcp_tools_page_size: 100,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 15_000,
            max_header_bytes: 64 * 1024,
            max_connections: None,
            key_max_in_flight: 256,
            key_max_websockets: 64,
            key_max_mcp_sessions: 100,
            operator_reserve_percent: 10,
            auth_failures_per_second: 5.0,
            auth_failures_burst: 50.0,
        }
    }
}

/// `[defaults]`: per-tool limits used when a tool does not set them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolDefaults {
    /// Longest a call may take, in milliseconds. Default 30000.
    pub timeout_ms: u64,
    /// Calls of one tool that may run at once. Default 32.
    pub max_concurrency: usize,
    /// Calls of one tool that may wait for a slot. Default 64.
    pub max_queue: usize,
}

impl Default for ToolDefaults {
    fn default() -> Self {
        Self {
            timeout_ms: 30_000,
            max_concurrency: 32,
            max_queue: 64,
        }
    }
}

/// `[[keys]]`: one API key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Name shown in logs instead of the key.
    pub name: Spanned<String>,
    /// `sha256:<hex>` digest of the key, as printed by `toolgate keys new`.
    pub hash: Spanned<EnvString>,
    /// Tool-name patterns this key may call (`*` wildcards).
    pub scopes: Spanned<Vec<String>>,
    /// Calls per second this key may make (a token bucket). Default: unlimited.
    #[serde(default)]
    pub rate_limit: Option<Spanned<RateLimitConfig>>,
    /// Requests and calls this key may have in flight at once (each counted on its
    /// own: a request still sending its body holds one request, each batch entry,
    /// stream, WebSocket or MCP call holds one call). Default `[server]
    /// key_max_in_flight`.
    #[serde(default)]
    pub max_in_flight: Option<Spanned<usize>>,
    /// WebSockets this key may have open. Default `[server] key_max_websockets`.
    #[serde(default)]
    pub max_websockets: Option<Spanned<usize>>,
    /// 2025-11-25 MCP sessions this key may have open. Default `[server]
    /// key_max_mcp_sessions`.
    #[serde(default)]
    pub max_mcp_sessions: Option<Spanned<usize>>,
    /// An operator's key: it may use the share of the global budgets (requests in
    /// flight, MCP sessions) kept back from other keys. Default false.
    #[serde(default)]
    pub operator: bool,
}

/// `rate_limit = { per_second = 10, burst = 20 }`: a token bucket per key. Each call
/// takes one token (each call of a batch too).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Tokens added per second.
    pub per_second: f64,
    /// Largest burst. Default: `per_second`, at least 1.
    #[serde(default)]
    pub burst: Option<f64>,
}

/// `retry = { ... }` on a tool: retries of retryable failures (the dependency was
/// unavailable, or an attempt timed out), for idempotent tools only.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts in all, the first included. Default 3.
    pub max_attempts: u32,
    /// Backoff before the first retry in ms, doubled per retry, fully jittered. Default 50.
    pub base_delay_ms: u64,
    /// Largest backoff in ms. Default 2000.
    pub max_delay_ms: u64,
    /// Deadline of one attempt in ms (the call's deadline still bounds them all).
    pub attempt_timeout_ms: Option<u64>,
    /// Retries allowed as a percentage of calls over a 10 s window. Default 20.
    pub budget_percent: f64,
    /// Retries allowed per second regardless of traffic. Default 1.
    pub budget_min_per_second: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay_ms: 50,
            max_delay_ms: 2000,
            attempt_timeout_ms: None,
            budget_percent: 20.0,
            budget_min_per_second: 1.0,
        }
    }
}

/// `breaker = { ... }` on a tool: a circuit breaker over its dependency.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Calls in the sliding window. Default 20.
    pub window: usize,
    /// Calls in the window before it is judged. Default 10.
    pub min_calls: usize,
    /// Open at this percentage of failed calls. Default 50.
    pub failure_rate_percent: f64,
    /// A call at least this long (ms) is slow. Default 5000.
    pub slow_call_ms: u64,
    /// Open at this percentage of slow calls. Default 100.
    pub slow_call_rate_percent: f64,
    /// How long to stay open, in ms. Default 30000.
    pub open_ms: u64,
    /// Probes let through when half-open. Default 3.
    pub half_open_probes: usize,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window: 20,
            min_calls: 10,
            failure_rate_percent: 50.0,
            slow_call_ms: 5000,
            slow_call_rate_percent: 100.0,
            open_ms: 30_000,
            half_open_probes: 3,
        }
    }
}

/// Kinds of data source.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A SQLite database file (or the embedded demo database).
    Sqlite,
    /// A PostgreSQL server, reached by `url`.
    Postgres,
    /// A MySQL or MariaDB server, reached by `url`.
    #[serde(alias = "mariadb")]
    Mysql,
    /// An HTTP API described by an OpenAPI 3.0 or 3.1 document: each selected
    /// operation becomes a tool.
    Openapi,
    /// An MCP server (Streamable HTTP at `url`, or a child process over stdio run
    /// from `command`): each of its tools is served as a tool of toolgate's.
    Mcp,
}

impl SourceKind {
    /// Whether it is a database (SQL tools may use it).
    #[must_use]
    pub fn is_database(self) -> bool {
        !matches!(self, SourceKind::Openapi | SourceKind::Mcp)
    }
}

/// `include = { ... }` / `exclude = { ... }` of an `openapi` source: which
/// operations. Within a field any entry may match; every field given must match.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationFilterConfig {
    /// `operationId` patterns, `*` for any run of characters.
    #[serde(default)]
    pub operations: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Path patterns: `*` within a segment, `**` across segments (`/pets/**`).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Methods (`GET`, `POST`, ...).
    #[serde(default)]
    pub methods: Vec<String>,
}

/// `[sources.NAME.operations.OPERATION_ID]`: what the import of one operation
/// changes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationOverride {
    /// Leave the operation out.
    #[serde(default)]
    pub skip: bool,
    /// The tool's name, instead of the prefixed operation id.
    pub name: Option<String>,
    /// The tool's description, instead of the operation's summary and description.
    pub description: Option<String>,
    /// Annotation, instead of the method's (GET, HEAD, OPTIONS are read-only).
    pub read_only: Option<bool>,
    /// Annotation, instead of the method's (PUT and DELETE too are idempotent).
    pub idempotent: Option<bool>,
    /// Annotation, instead of the method's (DELETE is destructive).
    pub destructive: Option<bool>,
    /// Longest a call may take, in ms.
    pub timeout_ms: Option<u64>,
}

/// `[sources.NAME]`: a database that SQL tools use, or an OpenAPI-described API
/// whose operations become tools.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The kind of database.
    pub kind: SourceKind,
    /// Path of a SQLite file (`${VAR}` expanded). Exclusive with `demo`.
    pub path: Option<Spanned<EnvString>>,
    /// Use the embedded demo database, created fresh at start. Default false.
    #[serde(default)]
    pub demo: bool,
    /// Connections kept open. Default 4.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// `postgres` and `mysql`: the server's URL (`${VAR}` expanded, as it usually
    /// holds a password), e.g. `postgres://app@db:5432/shop`.
    #[serde(default)]
    pub url: Option<Spanned<EnvString>>,
    /// `postgres` and `mysql`: longest a statement may run on the server, in ms.
    /// Default: none, so the call's remaining deadline is the server's limit.
    #[serde(default)]
    pub statement_timeout_ms: Option<Spanned<u64>>,
    /// `openapi`: the document (JSON or YAML), a file (`${VAR}` expanded; relative to
    /// the config file's directory) or an http(s) URL, read at start and at each
    /// reload.
    pub spec: Option<Spanned<EnvString>>,
    /// `openapi`: where the operations are called (`${VAR}` expanded). Default: the
    /// document's first `servers` URL (a relative one is resolved against the
    /// document's URL).
    pub base_url: Option<Spanned<EnvString>>,
    /// `openapi`: put before every tool name. Default none.
    #[serde(default)]
    pub prefix: String,
    /// `openapi`: only these operations. Default: all.
    pub include: Option<Spanned<OperationFilterConfig>>,
    /// `openapi`: not these operations. Default: none left out.
    pub exclude: Option<Spanned<OperationFilterConfig>>,
    /// `openapi`: headers sent with every call (`${VAR}` expanded; CR and LF refused),
    /// e.g. `{ Authorization = "Bearer ${CRM_TOKEN}" }`.
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<EnvString>>,
    /// `openapi`: private networks (CIDR) that may be reached. Default none.
    #[serde(default)]
    pub allow_private: Vec<String>,
    /// `openapi`: largest response body in bytes. Default 1 MiB.
    pub max_response_bytes: Option<usize>,
    /// `openapi`: longest a call may take, in ms. Default `[defaults].timeout_ms`.
    pub timeout_ms: Option<Spanned<u64>>,
    /// `openapi`: longest the document's download may take, in ms. Default 10000.
    pub fetch_timeout_ms: Option<Spanned<u64>>,
    /// `openapi`: retries, for the operations that are idempotent only. Default none.
    pub retry: Option<Spanned<RetryConfig>>,
    /// `openapi`: one circuit breaker for the API. Default none.
    pub breaker: Option<Spanned<BreakerConfig>>,
    /// `openapi`: per-operation changes, by `operationId`; `mcp`: per-tool changes,
    /// by the upstream's tool name.
    #[serde(default)]
    pub operations: BTreeMap<String, Spanned<OperationOverride>>,
    /// `mcp`: the program of a stdio server, started as a child process (found on
    /// the allowed `PATH` unless it holds a `/`).
    pub command: Option<Spanned<EnvString>>,
    /// `mcp`: its arguments (`${VAR}` expanded).
    #[serde(default)]
    pub args: Vec<EnvString>,
    /// `mcp`: variables set in the child's environment (`${VAR}` expanded). The child
    /// gets these and the `env_allow` ones, nothing else.
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<EnvString>>,
    /// `mcp`: names of toolgate's own environment variables passed on to the child.
    /// Default none (`PATH` is passed when `command` has no `/`).
    #[serde(default)]
    pub env_allow: Vec<String>,
    /// `mcp`: the child's working directory (relative to the config file's
    /// directory). Default: the config file's directory.
    pub cwd: Option<Spanned<EnvString>>,
    /// `mcp`: the revision spoken to the upstream: `auto` (default: 2026-07-28's
    /// discovery, then 2025-11-25's initialize), `2026-07-28` or `2025-11-25`.
    pub protocol: Option<Spanned<String>>,
    /// `mcp`: longest the first connection and tool listing may take at start or
    /// reload, in ms (the upstream keeps being retried after). Default 10000.
    pub connect_timeout_ms: Option<Spanned<u64>>,
    /// `mcp` over HTTP: an OAuth 2.1 client-credentials grant for the upstream's
    /// own token, sent as `Authorization: Bearer`.
    pub oauth: Option<Spanned<UpstreamOAuthConfig>>,
}

/// `oauth = { ... }` of an `mcp` source: the client-credentials grant (RFC 6749
/// section 4.4) toolgate makes for the upstream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamOAuthConfig {
    /// The token endpoint (http(s)).
    pub token_url: EnvString,
    /// The client's id.
    pub client_id: EnvString,
    /// The client's secret (`${VAR}` expanded), sent with HTTP Basic.
    pub client_secret: EnvString,
    /// Scopes asked for, space-separated. Default none.
    pub scope: Option<String>,
    /// RFC 8707 `resource` asked for. Default none.
    pub resource: Option<String>,
}

fn default_pool_size() -> usize {
    4
}

/// Kinds of tool.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ToolKind {
    /// A tool built into toolgate, named by `builtin`.
    Builtin,
    /// A SQL statement with named parameters, declared in the config.
    Sql,
    /// Ad-hoc read-only SQL on a source (`{"query": "..."}`).
    SqlQuery,
    /// A call of an HTTP upstream, templated from the arguments.
    Http,
    /// A sandboxed WebAssembly module (a WASI preview 1 command), run on wasmtime.
    Wasm,
}

/// Names of the built-in tools.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinName {
    /// Returns its arguments.
    Echo,
    /// Waits, reporting progress.
    Sleep,
    /// Always fails.
    Fail,
    /// Reports facts of the host.
    SystemAudit,
}

/// Types a SQL parameter may have.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// JSON string.
    String,
    /// JSON integer (64-bit).
    Integer,
    /// JSON number.
    Number,
    /// JSON boolean (bound as 0/1 on SQLite, as a boolean on PostgreSQL and MySQL).
    Boolean,
}

impl ParamType {
    /// The JSON Schema `type`.
    #[must_use]
    pub fn json_type(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
        }
    }
}

/// `[[tools.params]]`: one named parameter of a `sql` tool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamConfig {
    /// Name, used as `:name` in the statement and as the argument name.
    pub name: Spanned<String>,
    /// JSON type of the argument.
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// Shown in the input schema.
    #[serde(default)]
    pub description: Option<String>,
    /// Value used when the argument is absent; makes the parameter optional.
    #[serde(default)]
    pub default: Option<Value>,
    /// Whether the argument must be given. Default: true unless `default` is set.
    #[serde(default)]
    pub required: Option<bool>,
    /// Smallest allowed value (integer and number).
    #[serde(default)]
    pub minimum: Option<f64>,
    /// Largest allowed value (integer and number).
    #[serde(default)]
    pub maximum: Option<f64>,
    /// Longest allowed string.
    #[serde(default)]
    pub max_length: Option<u64>,
    /// Allowed values.
    #[serde(default, rename = "enum")]
    pub allowed: Option<Vec<Value>>,
}

/// `[[tools]]`: one tool. Fields beyond the common ones belong to one kind each;
/// validation reports a field given to the wrong kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolConfig {
    /// Unique name, `[A-Za-z0-9_-]{1,64}`; `execute` is reserved.
    pub name: Spanned<String>,
    /// The kind of tool.
    pub kind: Spanned<ToolKind>,
    /// Description for agents. Default: the kind's own description.
    #[serde(default)]
    pub description: Option<String>,
    /// A title for people (MCP `title`). Default none.
    #[serde(default)]
    pub title: Option<String>,
    /// Icons (MCP `icons`). Default none.
    #[serde(default)]
    pub icons: Vec<crate::content::IconConfig>,
    /// Longest a call may take, in ms. Default `[defaults].timeout_ms`.
    #[serde(default)]
    pub timeout_ms: Option<Spanned<u64>>,
    /// Longest a job of this tool may run, in ms (at least `timeout_ms`). Default
    /// `[jobs].default_timeout_ms`, or `timeout_ms` where that is longer.
    #[serde(default)]
    pub job_timeout_ms: Option<Spanned<u64>>,
    /// An approval gate: every call waits for an approver. Default none.
    #[serde(default)]
    pub approval: Option<Spanned<crate::jobs::ApprovalConfig>>,
    /// MCP tasks: `forbidden`, `optional` (default) or `required` (implied by
    /// `approval`).
    #[serde(default)]
    pub task_support: Option<Spanned<crate::jobs::TaskSupport>>,
    /// Calls that may run at once. Default `[defaults].max_concurrency`.
    #[serde(default)]
    pub max_concurrency: Option<Spanned<usize>>,
    /// Calls that may wait for a slot. Default `[defaults].max_queue`.
    #[serde(default)]
    pub max_queue: Option<usize>,
    /// Annotation: changes nothing. Default: true for queries and most built-ins.
    #[serde(default)]
    pub read_only: Option<bool>,
    /// Annotation: safe to repeat. Default: as `read_only`.
    #[serde(default)]
    pub idempotent: Option<bool>,
    /// Annotation: may destroy data; a `sql` tool needs it to write. Default false.
    #[serde(default)]
    pub destructive: Option<bool>,
    /// JSON Schema of the output, overriding the kind's own.
    #[serde(default)]
    pub output_schema: Option<Value>,
    /// `builtin` only: which built-in.
    #[serde(default)]
    pub builtin: Option<Spanned<BuiltinName>>,
    /// `sql` and `sql_query`: the source name.
    #[serde(default)]
    pub source: Option<Spanned<String>>,
    /// `sql` only: the statement, with `:name` parameters.
    #[serde(default)]
    pub statement: Option<Spanned<String>>,
    /// `sql` only: the parameters.
    #[serde(default)]
    pub params: Vec<ParamConfig>,
    /// `sql` on PostgreSQL only: session settings taken from the caller's token
    /// claims, set for the call's transaction only (`set_config(name, value, true)`,
    /// as `SET LOCAL`), e.g. `{ "app.tenant" = "tenant_id", "app.user" = "sub" }`,
    /// so that row-level security policies see who is asking. The values are bound,
    /// never interpolated; a caller without the claim (or with an API key) is
    /// refused. Default: none.
    #[serde(default)]
    pub session: BTreeMap<String, String>,
    /// `sql` and `sql_query`: most rows returned; more set `truncated`. Default 1000.
    #[serde(default)]
    pub max_rows: Option<Spanned<usize>>,
    /// `sql` and `sql_query`: most bytes of rows (as JSON) returned, counted while
    /// the rows are read; past it the result is cut (`truncated: true`,
    /// `truncated_reason: "max_result_bytes"`). Default 8 MiB.
    #[serde(default)]
    pub max_result_bytes: Option<Spanned<usize>>,
    /// Retries (idempotent tools only). Default: none.
    #[serde(default)]
    pub retry: Option<Spanned<RetryConfig>>,
    /// A circuit breaker. Default: none.
    #[serde(default)]
    pub breaker: Option<Spanned<BreakerConfig>>,
    /// `http` only: the method. Default `GET`.
    #[serde(default)]
    pub method: Option<Spanned<String>>,
    /// `http` only: URL template; `{param}` placeholders may stand in path segments
    /// and query values only (percent-encoded), never in scheme, host or port.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// `http` only: request headers (`${VAR}` expanded; CR and LF refused).
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<crate::env::EnvString>>,
    /// `http` only: headers taken from the caller's token claims, e.g.
    /// `{ "X-User" = "sub", "X-Tenant" = "tenant_id" }`, so that the upstream sees
    /// who is asking (never the token). A caller without the claim (or with an API
    /// key) is refused. Default: none.
    #[serde(default)]
    pub caller_headers: BTreeMap<String, String>,
    /// `http` only: get a token of the upstream's own for the caller (RFC 8693
    /// token exchange) and send it as `Authorization: Bearer`. Default: none.
    #[serde(default)]
    pub token_exchange: Option<Spanned<TokenExchangeConfig>>,
    /// `http` only: JSON body template; a string `"{param}"` becomes the argument's
    /// value, other `{param}`s inside strings are replaced by its text.
    #[serde(default)]
    pub body: Option<Value>,
    /// `http` only: JSON pointer into the response for the output. Default: all of it.
    #[serde(default)]
    pub response_pointer: Option<String>,
    /// `http` only: largest response body in bytes. Default 1 MiB.
    #[serde(default)]
    pub max_response_bytes: Option<usize>,
    /// `http` only: networks (CIDR) that may be reached although private
    /// (loopback, RFC 1918, link-local, ...). Default: none.
    #[serde(default)]
    pub allow_private: Vec<String>,
    /// Keep the full arguments in the audit log (not only their SHA-256). Default false.
    #[serde(default)]
    pub audit_arguments: bool,
    /// Top-level argument fields replaced by `"[redacted]"` in the audit log.
    #[serde(default)]
    pub audit_redact: Vec<String>,
    /// `wasm` only: the module, a `.wasm` or `.wat` file (`${VAR}` expanded). A
    /// relative path is relative to the config file's directory.
    #[serde(default)]
    pub module: Option<Spanned<EnvString>>,
    /// `wasm` only: largest linear memory of one call, in bytes. Default 64 MiB.
    #[serde(default)]
    pub max_memory_bytes: Option<Spanned<u64>>,
    /// `wasm` only: most elements of one table. Default 10000.
    #[serde(default)]
    pub max_table_elements: Option<Spanned<u64>>,
    /// `wasm` only: largest output (what the module writes to stdout), in bytes.
    /// Default 1 MiB.
    #[serde(default)]
    pub max_output_bytes: Option<Spanned<u64>>,
    /// `wasm` only: host environment variables the module sees (read at load; unset
    /// ones are left out). Default none.
    #[serde(default)]
    pub allow_env: Vec<Spanned<String>>,
    /// `wasm` only: host directories the module may open. Default none.
    #[serde(default)]
    pub allow_dirs: Vec<Spanned<WasmDirConfig>>,
    /// `wasm` only: whether the module reads the real clocks. Default false: both
    /// clocks are frozen at the Unix epoch.
    #[serde(default)]
    pub allow_clock: Option<bool>,
    /// `wasm` only: JSON Schema of the arguments, instead of `params`. Default
    /// `{"type": "object"}`.
    #[serde(default)]
    pub input_schema: Option<Value>,
}

/// `allow_dirs = [{ host = "...", guest = "/data" }]` of a `wasm` tool: a host
/// directory the module may open, under the guest path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmDirConfig {
    /// The host directory (`${VAR}` expanded; relative to the config file's directory).
    pub host: EnvString,
    /// Where the module sees it, an absolute guest path such as `/data`.
    pub guest: String,
    /// Whether the module may only read. Default true.
    #[serde(default = "default_true")]
    pub read_only: bool,
}

fn default_true() -> bool {
    true
}

impl AuditConfig {
    /// Where the log is: the SQLite path or the PostgreSQL URL and table.
    #[must_use]
    pub fn location(&self) -> AuditLocation {
        match (&self.url, &self.path) {
            (Some(url), _) => AuditLocation::Postgres {
                url: url.get_ref().as_str().to_owned(),
                table: self.table.clone(),
            },
            (None, Some(p)) => AuditLocation::Sqlite(p.get_ref().as_str().into()),
            (None, None) => AuditLocation::Sqlite("toolgate-audit.db".into()),
        }
    }
}

/// Where the audit log is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditLocation {
    /// A SQLite file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL table.
    Postgres {
        /// Connection URL.
        url: String,
        /// Table.
        table: String,
    },
}

impl ToolConfig {
    /// `wasm` only: the variables of `allow_env` that are set, with their values,
    /// read now (this crate is the one place that reads the environment).
    #[must_use]
    pub fn wasm_env(&self) -> Vec<(String, String)> {
        self.allow_env
            .iter()
            .filter_map(|name| {
                let name = name.get_ref();
                std::env::var(name).ok().map(|v| (name.clone(), v))
            })
            .collect()
    }

    /// Whether the tool may write (only `sql` tools declared destructive).
    #[must_use]
    pub fn writes(&self) -> bool {
        *self.kind.get_ref() == ToolKind::Sql && self.destructive == Some(true)
    }
}
