//! Semantic validation of a parsed config: everything TOML's types cannot say
//! (unique names, known sources, fields that belong to another kind, key hashes),
//! every problem located at its line.

use std::collections::HashSet;
use std::ops::Range;

use crate::keys::{KeyHash, ScopePattern};
use crate::load::{LoadedConfig, Problem, is_valid_tool_name};
use crate::model::{Config, ParamType, ToolConfig, ToolKind};

mod content;
mod jobs;
mod sources;
mod wasm;

use sources::check_sources;

/// Tool names that would collide with fixed routes.
/// Tool names no tool may have (`execute` is the batch route's).
pub const RESERVED_NAMES: &[&str] = &["execute"];

pub(crate) struct Checker<'a> {
    loaded: &'a LoadedConfig,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn report(&mut self, span: Range<usize>, message: impl Into<String>) {
        let p = self.loaded.problem(span, message.into());
        self.problems.push(p);
    }
}

pub(crate) fn validate(loaded: &LoadedConfig) -> Vec<Problem> {
    let mut c = Checker {
        loaded,
        problems: Vec::new(),
    };
    let cfg = &loaded.config;
    check_server(&mut c, cfg);
    if let Some(a) = &cfg.audit {
        let v = a.get_ref();
        if v.path.is_some() == v.url.is_some() {
            c.report(
                a.span(),
                "[audit] needs either `path` (SQLite) or `url` (PostgreSQL)",
            );
        }
        if !is_identifier(&v.table) {
            c.report(
                a.span(),
                format!("[audit] table {:?} must be an identifier", v.table),
            );
        }
        if v.queue_capacity == 0 {
            c.report(a.span(), "[audit] queue_capacity must be at least 1");
        }
        for (value, field, range) in [
            (v.enqueue_timeout_ms, "enqueue_timeout_ms", 1..=60_000),
            (v.spool_max_records, "spool_max_records", 1..=100_000_000),
            (v.connect_timeout_ms, "connect_timeout_ms", 1..=600_000),
            (v.statement_timeout_ms, "statement_timeout_ms", 1..=600_000),
            (v.reconnect_max_ms, "reconnect_max_ms", 100..=600_000),
            (v.head_interval_ms, "head_interval_ms", 1000..=86_400_000),
        ] {
            if !range.contains(&value) {
                let at = field_span(&c, "audit", field);
                c.report(
                    if at.is_empty() { a.span() } else { at },
                    format!(
                        "[audit] {field} must be {}..={}",
                        range.start(),
                        range.end()
                    ),
                );
            }
        }
        if let Some(var) = &v.hmac_key_env
            && (var.is_empty()
                || !var
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
        {
            c.report(
                field_span(&c, "audit", "hmac_key_env"),
                "[audit] hmac_key_env must name an environment variable",
            );
        }
    }
    if cfg.rate_limits.store == crate::model::RateLimitStore::Redis
        && cfg.rate_limits.redis_url.is_none()
    {
        c.report(0..0, "[rate_limits] store = \"redis\" needs redis_url");
    }
    check_keys(&mut c, cfg);
    check_auth(&mut c, cfg);
    check_sources(&mut c, cfg);
    check_toolsets(&mut c, cfg);
    content::check_content(&mut c, cfg);
    jobs::check_jobs(&mut c, cfg);
    let mut seen = HashSet::new();
    for tool in &cfg.tools {
        check_tool(&mut c, cfg, tool, &mut seen);
    }
    c.problems
}

/// A SQL table name toolgate accepts: letters, digits and `_`, 1 to 63, not
/// starting with a digit.
fn is_identifier(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 63
        && t.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && !t.starts_with(|ch: char| ch.is_ascii_digit())
}

fn check_server(c: &mut Checker<'_>, cfg: &Config) {
    let s = &cfg.server;
    if s.listen.get_ref().parse::<std::net::SocketAddr>().is_err() {
        c.report(
            s.listen.span(),
            format!("listen address {:?} is not IP:PORT", s.listen.get_ref()),
        );
    }
    if let Some(admin) = &s.admin_listen {
        match admin.get_ref().parse::<std::net::SocketAddr>() {
            Err(_) => c.report(
                admin.span(),
                format!("admin_listen address {:?} is not IP:PORT", admin.get_ref()),
            ),
            Ok(a) if a.port() != 0 && Some(a) == s.listen.get_ref().parse().ok() => c.report(
                admin.span(),
                "admin_listen must differ from listen".to_owned(),
            ),
            Ok(_) => {}
        }
    }
    let hour = 3_600_000;
    let day = 86_400_000;
    let ms_fields: [(u64, &str, u64, u64); 7] = [
        (s.drain_timeout_ms, "drain_timeout_ms", 0, hour),
        (s.sse_heartbeat_ms, "sse_heartbeat_ms", 0, hour),
        (s.ws_ping_interval_ms, "ws_ping_interval_ms", 0, hour),
        (
            s.mcp_session_idle_timeout_ms,
            "mcp_session_idle_timeout_ms",
            1_000,
            day,
        ),
        (
            s.header_read_timeout_ms,
            "header_read_timeout_ms",
            100,
            hour,
        ),
        (s.body_read_timeout_ms, "body_read_timeout_ms", 100, hour),
        (
            u64::from(s.operator_reserve_percent),
            "operator_reserve_percent",
            0,
            90,
        ),
    ];
    for (value, what, min, max) in ms_fields {
        if !(min..=max).contains(&value) {
            let at = field_span(c, "server", what);
            c.report(at, format!("[server] {what} must be {min}..={max}"));
        }
    }
    let million = 1_000_000;
    let gib = 1 << 30;
    let counts: [(usize, &str, usize, usize); 13] = [
        (s.body_limit_bytes, "body_limit_bytes", 1, gib),
        (s.json_max_depth, "json_max_depth", 1, 1_024),
        (s.max_batch_calls, "max_batch_calls", 1, 10_000),
        (
            s.max_in_flight_requests,
            "max_in_flight_requests",
            1,
            million,
        ),
        (s.ws_max_in_flight, "ws_max_in_flight", 1, 10_000),
        (s.ws_max_message_bytes, "ws_max_message_bytes", 1, 64 << 20),
        (s.mcp_max_sessions, "mcp_max_sessions", 1, million),
        (s.mcp_tools_page_size, "mcp_tools_page_size", 1, 10_000),
        (s.max_header_bytes, "max_header_bytes", 1_024, 1 << 20),
        (
            s.max_connections.unwrap_or(1),
            "max_connections",
            1,
            million,
        ),
        (s.key_max_in_flight, "key_max_in_flight", 1, million),
        (s.key_max_websockets, "key_max_websockets", 0, million),
        (s.key_max_mcp_sessions, "key_max_mcp_sessions", 0, million),
    ];
    for (value, what, min, max) in counts {
        if !(min..=max).contains(&value) {
            let at = field_span(c, "server", what);
            c.report(at, format!("[server] {what} must be {min}..={max}"));
        }
    }
    let rate_ok = s.auth_failures_per_second.is_finite()
        && (0.0..=1e6).contains(&s.auth_failures_per_second)
        && s.auth_failures_burst.is_finite()
        && (1.0..=1e6).contains(&s.auth_failures_burst);
    if !rate_ok {
        let at = field_span(c, "server", "auth_failures_per_second");
        c.report(
            at,
            "[server] auth_failures_per_second must be 0..=1000000 (0: off) and auth_failures_burst 1..=1000000",
        );
    }
    let d = &cfg.defaults;
    if !(1..=day).contains(&d.timeout_ms) {
        let at = field_span(c, "defaults", "timeout_ms");
        c.report(at, "[defaults] timeout_ms must be 1..=86400000 (24 h)");
    }
    if !(1..=million).contains(&d.max_concurrency) || d.max_queue > million {
        let at = field_span(c, "defaults", "max_concurrency");
        c.report(
            at,
            "[defaults] max_concurrency must be 1..=1000000 and max_queue 0..=1000000",
        );
    }
}

/// Where `field` is set in the `[table]` table, for fields that carry no span of
/// their own (whole-line search; the file's start when it is not set there).
fn field_span(c: &Checker<'_>, table: &str, field: &str) -> Range<usize> {
    let text = c.loaded.source();
    let header = format!("[{table}]");
    let mut in_table = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_table = trimmed == header;
        } else if in_table
            && let Some(rest) = trimmed.strip_prefix(field)
            && rest.trim_start().starts_with('=')
        {
            let start = offset + (line.len() - line.trim_start().len());
            return start..start + field.len();
        }
        offset += line.len();
    }
    0..0
}

fn check_keys(c: &mut Checker<'_>, cfg: &Config) {
    let mut names = HashSet::new();
    for key in &cfg.keys {
        if !names.insert(key.name.get_ref().clone()) {
            c.report(
                key.name.span(),
                format!("duplicate key name {:?}", key.name.get_ref()),
            );
        }
        if let Err(e) = KeyHash::parse(key.hash.get_ref().as_str()) {
            c.report(key.hash.span(), e);
        }
        if key.scopes.get_ref().is_empty() {
            c.report(
                key.scopes.span(),
                "a key needs at least one scope (`*` for all tools)",
            );
        }
        for scope in key.scopes.get_ref() {
            if let Err(e) = ScopePattern::parse(scope) {
                c.report(key.scopes.span(), e);
            }
        }
        check_limits(
            c,
            key.rate_limit.as_ref(),
            [
                (&key.max_in_flight, "max_in_flight", 1),
                (&key.max_websockets, "max_websockets", 0),
                (&key.max_mcp_sessions, "max_mcp_sessions", 0),
            ],
        );
    }
}

/// A key's or an issuer's rate limit and quotas (value, field, least value).
fn check_limits(
    c: &mut Checker<'_>,
    rate_limit: Option<&toml::Spanned<crate::model::RateLimitConfig>>,
    quotas: [(&Option<toml::Spanned<usize>>, &str, usize); 3],
) {
    if let Some(rl) = rate_limit {
        let r = rl.get_ref();
        let burst_ok = r
            .burst
            .is_none_or(|b| b.is_finite() && (1.0..=1e9).contains(&b));
        let rate_ok = r.per_second.is_finite() && (0.001..=1e9).contains(&r.per_second);
        if !(rate_ok && burst_ok) {
            c.report(
                rl.span(),
                "rate_limit needs per_second 0.001..=1e9 and burst 1..=1e9",
            );
        }
    }
    for (value, what, min) in quotas {
        if let Some(v) = value
            && !(min..=1_000_000).contains(v.get_ref())
        {
            c.report(v.span(), format!("{what} must be {min}..=1000000"));
        }
    }
}

/// The algorithms an issuer may name (asymmetric JWS only).
const TOKEN_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

fn is_http_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && s.split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty())
}

fn check_auth(c: &mut Checker<'_>, cfg: &Config) {
    let a = &cfg.auth;
    if let Some(r) = &a.resource
        && !is_http_url(r.get_ref())
    {
        c.report(r.span(), "[auth] resource must be an http(s) URL");
    }
    if let Some(t) = &a.token_cache_ms
        && *t.get_ref() > 3_600_000
    {
        c.report(t.span(), "[auth] token_cache_ms must be 0..=3600000");
    }
    if let Some(scope) = &a.scope {
        let granted: HashSet<&String> = a
            .issuers
            .iter()
            .flat_map(|i| i.get_ref().grants.keys())
            .collect();
        let values: Vec<&str> = scope.get_ref().split(' ').collect();
        // RFC 6749 scope tokens: visible ASCII but `"` and `\`.
        let token = |v: &str| {
            !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        };
        if !values.iter().all(|v| token(v)) {
            c.report(
                scope.span(),
                "[auth] scope must be scope values separated by single spaces",
            );
        } else if let Some(v) = values.iter().find(|v| !granted.contains(&(**v).to_owned())) {
            c.report(
                scope.span(),
                format!("[auth] scope names {v:?}, which no issuer's grants map to tools"),
            );
        }
    }
    let mut names = HashSet::new();
    for spanned in &a.issuers {
        let i = spanned.get_ref();
        if !names.insert(i.name.get_ref().clone()) {
            c.report(
                i.name.span(),
                format!("duplicate issuer name {:?}", i.name.get_ref()),
            );
        }
        if !is_http_url(i.issuer.get_ref()) {
            c.report(i.issuer.span(), "issuer must be an http(s) URL");
        }
        if i.audience.is_none() && a.resource.is_none() {
            c.report(
                spanned.span(),
                "an issuer needs `audience`, or [auth] needs `resource`",
            );
        }
        if let Some(u) = &i.jwks_uri
            && !is_http_url(u.get_ref())
        {
            c.report(u.span(), "jwks_uri must be an http(s) URL");
        }
        if let Some(algs) = &i.algorithms {
            for alg in algs.get_ref() {
                if !TOKEN_ALGORITHMS.contains(&alg.as_str()) {
                    c.report(
                        algs.span(),
                        format!(
                            "algorithm {alg:?} is not accepted; one of {}",
                            TOKEN_ALGORITHMS.join(", ")
                        ),
                    );
                }
            }
        }
        for (value, what, range) in [
            (&i.leeway_s, "leeway_s", 0..=300),
            (
                &i.jwks_min_refresh_ms,
                "jwks_min_refresh_ms",
                1000..=3_600_000,
            ),
            (&i.jwks_max_age_ms, "jwks_max_age_ms", 1000..=86_400_000),
            (&i.fetch_timeout_ms, "fetch_timeout_ms", 100..=60_000),
        ] {
            if let Some(v) = value
                && !range.contains(v.get_ref())
            {
                c.report(
                    v.span(),
                    format!("{what} must be {}..={}", range.start(), range.end()),
                );
            }
        }
        if let Some(intro) = &i.introspection {
            let v = intro.get_ref();
            if v.endpoint.as_deref().is_some_and(|e| !is_http_url(e)) {
                c.report(
                    intro.span(),
                    "introspection endpoint must be an http(s) URL",
                );
            }
            if v.client_id.is_empty() {
                c.report(intro.span(), "introspection needs client_id");
            }
            if v.client_secret_env.is_empty()
                || !v
                    .client_secret_env
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            {
                c.report(
                    intro.span(),
                    "introspection client_secret_env must name an environment variable",
                );
            }
            if v.cache_ms.is_some_and(|ms| ms > 3_600_000) {
                c.report(intro.span(), "introspection cache_ms must be 0..=3600000");
            }
        }
        for patterns in i.grants.values() {
            for p in patterns {
                if let Err(e) = ScopePattern::parse(p) {
                    c.report(spanned.span(), e);
                }
            }
        }
        check_limits(
            c,
            i.rate_limit.as_ref(),
            [
                (&i.max_in_flight, "max_in_flight", 1),
                (&i.max_websockets, "max_websockets", 0),
                (&i.max_mcp_sessions, "max_mcp_sessions", 0),
            ],
        );
    }
}

fn check_tool(c: &mut Checker<'_>, cfg: &Config, t: &ToolConfig, seen: &mut HashSet<String>) {
    let name = t.name.get_ref();
    let at = t.name.span();
    if !is_valid_tool_name(name) {
        c.report(
            at.clone(),
            format!("tool name {name:?} must be 1 to 64 of A-Z a-z 0-9 _ -"),
        );
    }
    if RESERVED_NAMES.contains(&name.as_str()) {
        c.report(at.clone(), format!("tool name {name:?} is reserved"));
    }
    if !seen.insert(name.clone()) {
        c.report(at.clone(), format!("duplicate tool name {name:?}"));
    }
    if let Some(ms) = &t.timeout_ms
        && (*ms.get_ref() == 0 || *ms.get_ref() > 86_400_000)
    {
        c.report(ms.span(), "timeout_ms must be 1..=86400000 (24 h)");
    }
    if let Some(n) = &t.max_concurrency
        && !(1..=1_000_000).contains(n.get_ref())
    {
        c.report(n.span(), "max_concurrency must be 1..=1000000");
    }
    if let Some(schema) = &t.output_schema
        && !schema.is_object()
    {
        c.report(
            at.clone(),
            format!("tool {name:?}: output_schema must be a table"),
        );
    }
    check_kind_fields(c, cfg, t);
    wasm::check_wasm(c, t);
    check_policies(c, t.retry.as_ref(), t.breaker.as_ref());
}

/// `[toolsets.NAME]`: names fit a URL segment, patterns are tool-name patterns.
fn check_toolsets(c: &mut Checker<'_>, cfg: &Config) {
    for (name, set) in &cfg.toolsets {
        if !crate::load::is_valid_tool_name(name) {
            c.report(
                set.span(),
                format!("toolset name {name:?} must be 1 to 64 of A-Z a-z 0-9 _ -"),
            );
        }
        let t = set.get_ref();
        if t.tools.is_empty() {
            c.report(set.span(), format!("toolset {name:?}: `tools` is empty"));
        }
        for p in &t.tools {
            if let Err(e) = crate::ScopePattern::parse(p) {
                c.report(set.span(), format!("toolset {name:?}: {e}"));
            }
        }
    }
}

/// `retry` and `breaker` of a tool or an `openapi` source.
pub(super) fn check_policies(
    c: &mut Checker<'_>,
    retry: Option<&toml::Spanned<crate::model::RetryConfig>>,
    breaker: Option<&toml::Spanned<crate::model::BreakerConfig>>,
) {
    let percent = |p: f64| (0.0..=100.0).contains(&p);
    if let Some(r) = retry {
        let v = r.get_ref();
        if !(1..=10).contains(&v.max_attempts) {
            c.report(r.span(), "retry.max_attempts must be 1..=10");
        }
        if v.base_delay_ms == 0 || v.max_delay_ms < v.base_delay_ms || v.max_delay_ms > 3_600_000 {
            c.report(
                r.span(),
                "retry needs 1 <= base_delay_ms <= max_delay_ms <= 3600000",
            );
        }
        if v.attempt_timeout_ms
            .is_some_and(|ms| !(1..=86_400_000).contains(&ms))
        {
            c.report(r.span(), "retry.attempt_timeout_ms must be 1..=86400000");
        }
        let floor_ok = v.budget_min_per_second.is_finite() && v.budget_min_per_second >= 0.0;
        if !percent(v.budget_percent) || !floor_ok {
            c.report(
                r.span(),
                "retry.budget_percent must be 0..=100 and budget_min_per_second >= 0",
            );
        }
    }
    if let Some(b) = breaker {
        let v = b.get_ref();
        if v.window == 0 || v.min_calls == 0 || v.min_calls > v.window || v.window > 100_000 {
            c.report(b.span(), "breaker needs 1 <= min_calls <= window <= 100000");
        }
        if !percent(v.failure_rate_percent) || !percent(v.slow_call_rate_percent) {
            c.report(b.span(), "breaker rates are percentages (0..=100)");
        }
        let day = 86_400_000;
        if !(1..=day).contains(&v.open_ms)
            || !(1..=day).contains(&v.slow_call_ms)
            || !(1..=10_000).contains(&v.half_open_probes)
        {
            c.report(
                b.span(),
                "breaker.open_ms and slow_call_ms must be 1..=86400000, half_open_probes 1..=10000",
            );
        }
    }
}

/// `session`: a `sql` tool on PostgreSQL; custom setting names (`prefix.name`, as
/// PostgreSQL requires of settings it does not know); claim names.
fn check_session(c: &mut Checker<'_>, cfg: &Config, t: &ToolConfig) {
    let name = t.name.get_ref();
    let at = t.kind.span();
    let on_postgres = t
        .source
        .as_ref()
        .and_then(|s| cfg.sources.get(s.get_ref()))
        .is_some_and(|s| s.get_ref().kind == crate::model::SourceKind::Postgres);
    if *t.kind.get_ref() != ToolKind::Sql || !on_postgres {
        c.report(
            at.clone(),
            format!("tool {name:?}: `session` is only for sql tools on a postgres source"),
        );
    }
    let ident = |s: &str| {
        !s.is_empty()
            && s.starts_with(|ch: char| ch.is_ascii_lowercase() || ch == '_')
            && s.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
    };
    for (setting, claim) in &t.session {
        let parts: Vec<&str> = setting.split('.').collect();
        if parts.len() < 2 || !parts.iter().all(|p| ident(p)) {
            c.report(
                at.clone(),
                format!(
                    "tool {name:?}: session setting {setting:?} must be `prefix.name` (lowercase letters, digits, _)"
                ),
            );
        }
        if claim.is_empty() {
            c.report(
                at.clone(),
                format!("tool {name:?}: session setting {setting:?} names no claim"),
            );
        }
    }
}

fn check_kind_fields(c: &mut Checker<'_>, cfg: &Config, t: &ToolConfig) {
    let name = t.name.get_ref();
    let kind = *t.kind.get_ref();
    let kind_at = t.kind.span();
    let misplaced =
        |field: &str, kinds: &str| format!("tool {name:?}: `{field}` is only for {kinds} tools");
    if kind != ToolKind::Builtin && t.builtin.is_some() {
        c.report(kind_at.clone(), misplaced("builtin", "builtin"));
    }
    if kind == ToolKind::Builtin {
        if t.builtin.is_none() {
            c.report(
                kind_at.clone(),
                format!("tool {name:?}: a builtin tool needs `builtin`"),
            );
        }
        for (present, field) in [
            (t.source.is_some(), "source"),
            (t.max_rows.is_some(), "max_rows"),
            (t.max_result_bytes.is_some(), "max_result_bytes"),
        ] {
            if present {
                c.report(kind_at.clone(), misplaced(field, "sql and sql_query"));
            }
        }
    }
    if !t.session.is_empty() {
        check_session(c, cfg, t);
    }
    if kind != ToolKind::Http && !t.caller_headers.is_empty() {
        c.report(kind_at.clone(), misplaced("caller_headers", "http"));
    }
    if let Some(x) = &t.token_exchange {
        let v = x.get_ref();
        if kind != ToolKind::Http {
            c.report(kind_at.clone(), misplaced("token_exchange", "http"));
        }
        if !is_http_url(&v.token_endpoint) {
            c.report(
                x.span(),
                "token_exchange token_endpoint must be an http(s) URL",
            );
        }
        if v.audience.is_none() && v.resource.is_none() {
            c.report(x.span(), "token_exchange needs `audience` or `resource`");
        }
        if v.client_secret_env.is_empty()
            || !v
                .client_secret_env
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        {
            c.report(
                x.span(),
                "token_exchange client_secret_env must name an environment variable",
            );
        }
        if t.headers
            .keys()
            .any(|h| h.eq_ignore_ascii_case("authorization"))
        {
            c.report(
                x.span(),
                "token_exchange sets Authorization; remove it from `headers`",
            );
        }
    }
    if kind != ToolKind::Sql {
        if t.statement.is_some() {
            c.report(kind_at.clone(), misplaced("statement", "sql"));
        }
        if !t.params.is_empty() && !matches!(kind, ToolKind::Http | ToolKind::Wasm) {
            c.report(kind_at.clone(), misplaced("params", "sql, http and wasm"));
        }
        if t.destructive == Some(true) {
            c.report(
                kind_at.clone(),
                format!("tool {name:?}: only sql tools may be destructive"),
            );
        }
    }
    if matches!(kind, ToolKind::Sql | ToolKind::SqlQuery) {
        match &t.source {
            None => c.report(kind_at.clone(), format!("tool {name:?}: needs `source`")),
            Some(s) if !cfg.sources.contains_key(s.get_ref()) => c.report(
                s.span(),
                format!("tool {name:?}: unknown source {:?}", s.get_ref()),
            ),
            Some(s)
                if cfg
                    .sources
                    .get(s.get_ref())
                    .is_some_and(|src| !src.get_ref().kind.is_database()) =>
            {
                let what = match cfg.sources.get(s.get_ref()).map(|src| src.get_ref().kind) {
                    Some(crate::model::SourceKind::Mcp) => {
                        "an MCP source, not a database; its tools"
                    }
                    _ => "an OpenAPI source, not a database; its operations",
                };
                c.report(
                    s.span(),
                    format!(
                        "tool {name:?}: source {:?} is {what} are tools of their own",
                        s.get_ref()
                    ),
                );
            }
            Some(_) => {}
        }
        if let Some(rows) = &t.max_rows
            && (*rows.get_ref() == 0 || *rows.get_ref() > 100_000)
        {
            c.report(rows.span(), "max_rows must be 1..=100000");
        }
        if let Some(bytes) = &t.max_result_bytes
            && !(1024..=1 << 30).contains(bytes.get_ref())
        {
            c.report(
                bytes.span(),
                "max_result_bytes must be 1024..=1073741824 (1 GiB)",
            );
        }
    }
    let http_fields = t.method.is_some()
        || t.url.is_some()
        || !t.headers.is_empty()
        || t.body.is_some()
        || t.response_pointer.is_some()
        || t.max_response_bytes.is_some()
        || !t.allow_private.is_empty();
    if kind != ToolKind::Http && http_fields {
        c.report(
            kind_at.clone(),
            misplaced(
                "method/url/headers/body/response_pointer/max_response_bytes/allow_private",
                "http",
            ),
        );
    }
    if kind == ToolKind::Http {
        if t.url.is_none() {
            c.report(
                kind_at.clone(),
                format!("tool {name:?}: an http tool needs `url`"),
            );
        }
        check_params(c, t);
    }
    if kind == ToolKind::Sql {
        if t.statement.is_none() {
            c.report(
                kind_at,
                format!("tool {name:?}: a sql tool needs `statement`"),
            );
        }
        check_params(c, t);
    }
}

fn check_params(c: &mut Checker<'_>, t: &ToolConfig) {
    let mut names = HashSet::new();
    for p in &t.params {
        let pname = p.name.get_ref();
        let ok = !pname.is_empty()
            && pname
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            && !pname.starts_with(|ch: char| ch.is_ascii_digit());
        if !ok {
            c.report(
                p.name.span(),
                format!("parameter name {pname:?} must be an identifier"),
            );
        }
        if !names.insert(pname.clone()) {
            c.report(p.name.span(), format!("duplicate parameter {pname:?}"));
        }
        let numeric = matches!(p.ty, ParamType::Integer | ParamType::Number);
        if !numeric && (p.minimum.is_some() || p.maximum.is_some()) {
            c.report(
                p.name.span(),
                format!("parameter {pname:?}: minimum/maximum need a numeric type"),
            );
        }
        if p.ty != ParamType::String && p.max_length.is_some() {
            c.report(
                p.name.span(),
                format!("parameter {pname:?}: max_length needs type string"),
            );
        }
        if let Some(d) = &p.default {
            let fits = match p.ty {
                ParamType::String => d.is_string(),
                ParamType::Integer => d.is_i64(),
                ParamType::Number => d.is_number(),
                ParamType::Boolean => d.is_boolean(),
            };
            if !fits {
                c.report(
                    p.name.span(),
                    format!(
                        "parameter {pname:?}: default {d} is not of type {}",
                        p.ty.json_type()
                    ),
                );
            }
        }
    }
}
