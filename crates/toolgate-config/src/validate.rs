//! Semantic validation of a parsed config: everything TOML's types cannot say
//! (unique names, known sources, fields that belong to another kind, key hashes),
//! every problem located at its line.

use std::collections::HashSet;
use std::ops::Range;

use crate::keys::{KeyHash, ScopePattern};
use crate::load::{LoadedConfig, Problem, is_valid_tool_name};
use crate::model::{Config, ParamType, ToolConfig, ToolKind};

mod sources;
mod wasm;

use sources::check_sources;

/// Tool names that would collide with fixed routes.
const RESERVED_NAMES: &[&str] = &["execute"];

struct Checker<'a> {
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
        let table_ok = !v.table.is_empty()
            && v.table.len() <= 63
            && v.table
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            && !v.table.starts_with(|ch: char| ch.is_ascii_digit());
        if !table_ok {
            c.report(
                a.span(),
                format!("[audit] table {:?} must be an identifier", v.table),
            );
        }
        if v.queue_capacity == 0 {
            c.report(a.span(), "[audit] queue_capacity must be at least 1");
        }
    }
    if cfg.rate_limits.store == crate::model::RateLimitStore::Redis
        && cfg.rate_limits.redis_url.is_none()
    {
        c.report(0..0, "[rate_limits] store = \"redis\" needs redis_url");
    }
    check_keys(&mut c, cfg);
    check_sources(&mut c, cfg);
    let mut seen = HashSet::new();
    for tool in &cfg.tools {
        check_tool(&mut c, cfg, tool, &mut seen);
    }
    c.problems
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
    for (value, what) in [
        (s.body_limit_bytes, "body_limit_bytes"),
        (s.json_max_depth, "json_max_depth"),
        (s.max_batch_calls, "max_batch_calls"),
    ] {
        if value == 0 {
            c.report(0..0, format!("[server] {what} must be at least 1"));
        }
    }
    let d = &cfg.defaults;
    if d.timeout_ms == 0 || d.max_concurrency == 0 {
        c.report(
            0..0,
            "[defaults] timeout_ms and max_concurrency must be at least 1",
        );
    }
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
        if let Some(rl) = &key.rate_limit {
            let r = rl.get_ref();
            let burst_ok = r.burst.is_none_or(|b| b.is_finite() && b >= 1.0);
            if !(r.per_second.is_finite() && r.per_second > 0.0 && burst_ok) {
                c.report(rl.span(), "rate_limit needs per_second > 0 and burst >= 1");
            }
        }
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
        && *n.get_ref() == 0
    {
        c.report(n.span(), "max_concurrency must be at least 1");
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
    check_policies(c, t);
}

fn check_policies(c: &mut Checker<'_>, t: &ToolConfig) {
    let percent = |p: f64| (0.0..=100.0).contains(&p);
    if let Some(r) = &t.retry {
        let v = r.get_ref();
        if !(1..=10).contains(&v.max_attempts) {
            c.report(r.span(), "retry.max_attempts must be 1..=10");
        }
        if v.base_delay_ms == 0 || v.max_delay_ms < v.base_delay_ms {
            c.report(
                r.span(),
                "retry needs base_delay_ms >= 1 and max_delay_ms >= base_delay_ms",
            );
        }
        if v.attempt_timeout_ms == Some(0) {
            c.report(r.span(), "retry.attempt_timeout_ms must be at least 1");
        }
        let floor_ok = v.budget_min_per_second.is_finite() && v.budget_min_per_second >= 0.0;
        if !percent(v.budget_percent) || !floor_ok {
            c.report(
                r.span(),
                "retry.budget_percent must be 0..=100 and budget_min_per_second >= 0",
            );
        }
    }
    if let Some(b) = &t.breaker {
        let v = b.get_ref();
        if v.window == 0 || v.min_calls == 0 || v.min_calls > v.window {
            c.report(b.span(), "breaker needs 1 <= min_calls <= window");
        }
        if !percent(v.failure_rate_percent) || !percent(v.slow_call_rate_percent) {
            c.report(b.span(), "breaker rates are percentages (0..=100)");
        }
        if v.open_ms == 0 || v.half_open_probes == 0 || v.slow_call_ms == 0 {
            c.report(
                b.span(),
                "breaker.open_ms, slow_call_ms and half_open_probes must be at least 1",
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
        ] {
            if present {
                c.report(kind_at.clone(), misplaced(field, "sql and sql_query"));
            }
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
            Some(_) => {}
        }
        if let Some(rows) = &t.max_rows
            && (*rows.get_ref() == 0 || *rows.get_ref() > 100_000)
        {
            c.report(rows.span(), "max_rows must be 1..=100000");
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
