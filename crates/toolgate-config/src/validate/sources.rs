//! Validation of `[sources.NAME]`: each kind's required fields, and no field of
//! another kind.

use toml::Spanned;

use super::Checker;
use crate::model::{Config, SourceConfig, SourceKind};

pub(super) fn check_sources(c: &mut Checker<'_>, cfg: &Config) {
    for (name, source) in &cfg.sources {
        let s = source.get_ref();
        match s.kind {
            SourceKind::Sqlite => check_sqlite_source(c, name, source),
            SourceKind::Postgres | SourceKind::Mysql => check_server_source(c, name, source),
            SourceKind::Openapi => check_openapi_source(c, name, source),
            SourceKind::Mcp => check_mcp_source(c, name, source),
        }
        if s.kind.is_database()
            && let Some(field) = openapi_field(s)
        {
            c.report(
                source.span(),
                format!("source {name:?}: `{field}` is only for openapi and mcp sources"),
            );
        }
        if s.kind != SourceKind::Mcp
            && let Some(field) = mcp_field(s)
        {
            c.report(
                source.span(),
                format!("source {name:?}: `{field}` is only for mcp sources"),
            );
        }
        if s.pool_size == 0 || s.pool_size > 256 {
            c.report(
                source.span(),
                format!("source {name:?}: pool_size must be 1..=256"),
            );
        }
    }
}

/// The first `openapi` field a source sets, if any.
fn openapi_field(s: &SourceConfig) -> Option<&'static str> {
    [
        ("spec", s.spec.is_some()),
        ("base_url", s.base_url.is_some()),
        ("prefix", !s.prefix.is_empty()),
        ("include", s.include.is_some()),
        ("exclude", s.exclude.is_some()),
        ("headers", !s.headers.is_empty()),
        ("allow_private", !s.allow_private.is_empty()),
        ("max_response_bytes", s.max_response_bytes.is_some()),
        ("timeout_ms", s.timeout_ms.is_some()),
        ("fetch_timeout_ms", s.fetch_timeout_ms.is_some()),
        ("retry", s.retry.is_some()),
        ("breaker", s.breaker.is_some()),
        ("operations", !s.operations.is_empty()),
    ]
    .into_iter()
    .find_map(|(field, set)| set.then_some(field))
}

/// The first field only an `mcp` source may set, if any.
fn mcp_field(s: &SourceConfig) -> Option<&'static str> {
    [
        ("command", s.command.is_some()),
        ("args", !s.args.is_empty()),
        ("env", !s.env.is_empty()),
        ("env_allow", !s.env_allow.is_empty()),
        ("cwd", s.cwd.is_some()),
        ("protocol", s.protocol.is_some()),
        ("connect_timeout_ms", s.connect_timeout_ms.is_some()),
        ("oauth", s.oauth.is_some()),
    ]
    .into_iter()
    .find_map(|(field, set)| set.then_some(field))
}

/// What `openapi` and `mcp` sources share: the prefix, timeouts, per-tool changes
/// and the policies.
fn check_imported(c: &mut Checker<'_>, name: &str, source: &Spanned<SourceConfig>, what: &str) {
    let s = source.get_ref();
    for (field, set) in [
        ("path", s.path.is_some()),
        ("demo", s.demo),
        ("statement_timeout_ms", s.statement_timeout_ms.is_some()),
    ] {
        if set {
            c.report(
                source.span(),
                format!("source {name:?}: `{field}` is only for database sources"),
            );
        }
    }
    if s.prefix.len() > 32
        || !s
            .prefix
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    {
        c.report(
            source.span(),
            format!("source {name:?}: prefix must be at most 32 of A-Z a-z 0-9 _ -"),
        );
    }
    if let Some(ms) = &s.timeout_ms
        && (*ms.get_ref() == 0 || *ms.get_ref() > 86_400_000)
    {
        c.report(ms.span(), "timeout_ms must be 1..=86400000 (24 h)");
    }
    for (op, o) in &s.operations {
        let v = o.get_ref();
        if v.timeout_ms.is_some_and(|ms| ms == 0 || ms > 86_400_000) {
            c.report(
                o.span(),
                format!("{what} {op:?}: timeout_ms must be 1..=86400000 (24 h)"),
            );
        }
        if v.name
            .as_deref()
            .is_some_and(|n| !crate::load::is_valid_tool_name(n))
        {
            c.report(
                o.span(),
                format!("{what} {op:?}: name must be 1 to 64 of A-Z a-z 0-9 _ -"),
            );
        }
    }
    super::check_policies(c, s.retry.as_ref(), s.breaker.as_ref());
}

/// An `mcp` source: `url` (Streamable HTTP) or `command` (stdio), each with its own
/// fields only.
fn check_mcp_source(c: &mut Checker<'_>, name: &str, source: &Spanned<SourceConfig>) {
    let s = source.get_ref();
    match (&s.url, &s.command) {
        (Some(u), Some(_)) => c.report(
            u.span(),
            format!("source {name:?}: give either `url` (Streamable HTTP) or `command` (stdio), not both"),
        ),
        (None, None) => c.report(
            source.span(),
            format!("source {name:?}: an mcp source needs `url` (Streamable HTTP) or `command` (stdio)"),
        ),
        (Some(u), None) if !super::is_http_url(u.get_ref().as_str()) => c.report(
            u.span(),
            format!("source {name:?}: url must be an http(s) URL"),
        ),
        (Some(_), None) => {
            if let Some(field) = [
                ("args", !s.args.is_empty()),
                ("env", !s.env.is_empty()),
                ("env_allow", !s.env_allow.is_empty()),
                ("cwd", s.cwd.is_some()),
            ]
            .into_iter()
            .find_map(|(f, set)| set.then_some(f))
            {
                c.report(
                    source.span(),
                    format!("source {name:?}: `{field}` is for a stdio server (`command`), not for `url`"),
                );
            }
        }
        (None, Some(cmd)) => {
            if cmd.get_ref().as_str().is_empty() {
                c.report(cmd.span(), format!("source {name:?}: command is empty"));
            }
            if !s.headers.is_empty() || s.oauth.is_some() {
                c.report(
                    source.span(),
                    format!("source {name:?}: `headers` and `oauth` are for a Streamable HTTP server (`url`), not for `command`"),
                );
            }
        }
    }
    for (field, set) in [
        ("spec", s.spec.is_some()),
        ("base_url", s.base_url.is_some()),
        ("allow_private", !s.allow_private.is_empty()),
        ("fetch_timeout_ms", s.fetch_timeout_ms.is_some()),
    ] {
        if set {
            c.report(
                source.span(),
                format!("source {name:?}: `{field}` is only for openapi sources"),
            );
        }
    }
    for f in [s.include.as_ref(), s.exclude.as_ref()]
        .into_iter()
        .flatten()
    {
        let v = f.get_ref();
        if !v.tags.is_empty() || !v.paths.is_empty() || !v.methods.is_empty() {
            c.report(
                f.span(),
                format!("source {name:?}: an mcp source filters by tool name only (`operations`)"),
            );
        }
    }
    for var in s.env_allow.iter().chain(s.env.keys()) {
        if var.is_empty() || var.contains(['=', '\0']) {
            c.report(
                source.span(),
                format!("source {name:?}: {var:?} is not an environment variable name"),
            );
        }
    }
    if let Some(p) = &s.protocol
        && !matches!(p.get_ref().as_str(), "auto" | "2026-07-28" | "2025-11-25")
    {
        c.report(
            p.span(),
            format!("source {name:?}: protocol must be \"auto\", \"2026-07-28\" or \"2025-11-25\""),
        );
    }
    if let Some(ms) = &s.connect_timeout_ms
        && (*ms.get_ref() == 0 || *ms.get_ref() > 300_000)
    {
        c.report(ms.span(), "connect_timeout_ms must be 1..=300000 (5 min)");
    }
    if let Some(o) = &s.oauth
        && !super::is_http_url(o.get_ref().token_url.as_str())
    {
        c.report(
            o.span(),
            format!("source {name:?}: oauth.token_url must be an http(s) URL"),
        );
    }
    check_imported(c, name, source, "tool");
}

/// An `openapi` source: a `spec`, URLs that are http(s), no database fields.
fn check_openapi_source(c: &mut Checker<'_>, name: &str, source: &Spanned<SourceConfig>) {
    let s = source.get_ref();
    match &s.spec {
        None => c.report(
            source.span(),
            format!("source {name:?}: an openapi source needs `spec` (a file or an http(s) URL)"),
        ),
        Some(spec) => {
            let text = spec.get_ref().as_str();
            if text.contains("://") && !super::is_http_url(text) {
                c.report(
                    spec.span(),
                    format!("source {name:?}: spec must be a file or an http(s) URL"),
                );
            }
        }
    }
    if let Some(b) = &s.base_url
        && !super::is_http_url(b.get_ref().as_str())
    {
        c.report(
            b.span(),
            format!("source {name:?}: base_url must be an http(s) URL"),
        );
    }
    if let Some(u) = &s.url {
        c.report(
            u.span(),
            format!("source {name:?}: `url` is only for database and mcp sources"),
        );
    }
    if let Some(ms) = &s.fetch_timeout_ms
        && (*ms.get_ref() == 0 || *ms.get_ref() > 300_000)
    {
        c.report(ms.span(), "fetch_timeout_ms must be 1..=300000 (5 min)");
    }
    check_imported(c, name, source, "operation");
}

/// A SQLite source: `path` or `demo`, none of the server fields.
fn check_sqlite_source(c: &mut Checker<'_>, name: &str, source: &Spanned<SourceConfig>) {
    let s = source.get_ref();
    match (&s.path, s.demo) {
        (Some(p), true) => c.report(
            p.span(),
            format!("source {name:?}: give either `path` or `demo = true`, not both"),
        ),
        (None, false) => c.report(
            source.span(),
            format!("source {name:?}: a sqlite source needs `path` (or `demo = true`)"),
        ),
        _ => {}
    }
    if let Some(u) = &s.url {
        c.report(
            u.span(),
            format!("source {name:?}: `url` is only for postgres and mysql sources"),
        );
    }
    if let Some(t) = &s.statement_timeout_ms {
        c.report(
            t.span(),
            format!(
                "source {name:?}: `statement_timeout_ms` is only for postgres and mysql sources \
                 (SQLite stops at the call's deadline)"
            ),
        );
    }
}

/// A PostgreSQL or MySQL source: a `url` with the kind's scheme, no SQLite fields.
fn check_server_source(c: &mut Checker<'_>, name: &str, source: &Spanned<SourceConfig>) {
    let s = source.get_ref();
    let (kind, schemes): (&str, &[&str]) = match s.kind {
        SourceKind::Postgres => ("postgres", &["postgres://", "postgresql://"]),
        _ => ("mysql", &["mysql://", "mariadb://"]),
    };
    match &s.url {
        None => c.report(
            source.span(),
            format!("source {name:?}: a {kind} source needs `url`"),
        ),
        // The URL usually holds a password: never echo it.
        Some(u) if !schemes.iter().any(|p| u.get_ref().as_str().starts_with(p)) => c.report(
            u.span(),
            format!(
                "source {name:?}: a {kind} url starts with {}",
                schemes.join(" or ")
            ),
        ),
        Some(_) => {}
    }
    if let Some(p) = &s.path {
        c.report(
            p.span(),
            format!("source {name:?}: `path` is only for sqlite sources"),
        );
    }
    if s.demo {
        c.report(
            source.span(),
            format!("source {name:?}: `demo` is only for sqlite sources"),
        );
    }
    if let Some(t) = &s.statement_timeout_ms
        && (*t.get_ref() == 0 || *t.get_ref() > 86_400_000)
    {
        c.report(
            t.span(),
            format!("source {name:?}: statement_timeout_ms must be 1..=86400000 (24 h)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::LoadedConfig;

    /// (line, message) of every problem in `text`.
    fn problems(text: &str) -> Vec<(usize, String)> {
        match LoadedConfig::from_str("s.toml", text) {
            Ok(_) => Vec::new(),
            Err(p) => p.0.into_iter().map(|p| (p.line, p.message)).collect(),
        }
    }

    #[test]
    fn server_sources_parse_with_their_fields() {
        let text = "[sources.pg]\nkind = \"postgres\"\nurl = \"postgres://u@h/db\"\n\
                    statement_timeout_ms = 1500\npool_size = 8\n\n\
                    [sources.my]\nkind = \"mariadb\"\nurl = \"mysql://root@h/db\"\n";
        let loaded = LoadedConfig::from_str("s.toml", text).unwrap_or_else(|e| panic!("{e}"));
        let pg = loaded.config.sources["pg"].get_ref();
        assert_eq!(pg.kind, crate::SourceKind::Postgres);
        assert_eq!(
            pg.statement_timeout_ms.as_ref().map(|t| *t.get_ref()),
            Some(1500)
        );
        assert_eq!(pg.pool_size, 8);
        let my = loaded.config.sources["my"].get_ref();
        assert_eq!(my.kind, crate::SourceKind::Mysql);
        assert_eq!(my.pool_size, 4);
        assert!(my.statement_timeout_ms.is_none());
    }

    #[test]
    fn each_kind_refuses_the_fields_of_the_others() {
        let text = "[sources.a]\nkind = \"postgres\"\npath = \"/x.db\"\n\n\
                    [sources.b]\nkind = \"mysql\"\nurl = \"postgres://h/db\"\n\n\
                    [sources.c]\nkind = \"sqlite\"\ndemo = true\nurl = \"mysql://h/db\"\n\
                    statement_timeout_ms = 5\n\n\
                    [sources.d]\nkind = \"postgres\"\nurl = \"postgres://h/db\"\n\
                    statement_timeout_ms = 0\n";
        let found = problems(text);
        let expect = [
            (1, "a postgres source needs `url`"),
            (3, "`path` is only for sqlite sources"),
            (7, "a mysql url starts with mysql:// or mariadb://"),
            (12, "`url` is only for postgres and mysql sources"),
            (
                13,
                "`statement_timeout_ms` is only for postgres and mysql sources",
            ),
            (18, "statement_timeout_ms must be 1..=86400000"),
        ];
        for (line, needle) in expect {
            assert!(
                found.iter().any(|(l, m)| *l == line && m.contains(needle)),
                "no problem {needle:?} at line {line} in {found:?}"
            );
        }
        assert_eq!(found.len(), expect.len(), "{found:?}");
        // The URL may hold a password: it is never part of a message.
        assert!(found.iter().all(|(_, m)| !m.contains("h/db")), "{found:?}");
    }
}
