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
        }
        if s.pool_size == 0 || s.pool_size > 256 {
            c.report(
                source.span(),
                format!("source {name:?}: pool_size must be 1..=256"),
            );
        }
    }
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
