//! [`Source`]: any kind of `[sources.NAME]`, as the tools hold it.

use std::sync::Arc;

use toolgate_config::SourceKind;

use crate::placeholders::Dialect;
use crate::server::{MySqlSource, PgSource};
use crate::source::SqliteSource;

/// An opened source of any kind. Cheap to clone: every variant is an `Arc`.
#[derive(Debug, Clone)]
pub enum Source {
    /// A SQLite file (or the demo database).
    Sqlite(Arc<SqliteSource>),
    /// A PostgreSQL server.
    Postgres(Arc<PgSource>),
    /// A MySQL or MariaDB server.
    Mysql(Arc<MySqlSource>),
}

impl Source {
    /// Readiness: a `SELECT 1` on the source.
    ///
    /// # Errors
    /// A client-safe description of what failed.
    pub async fn check(&self) -> Result<(), String> {
        match self {
            Source::Sqlite(s) => s.check().await,
            Source::Postgres(s) => s.check().await,
            Source::Mysql(s) => s.check().await,
        }
    }

    /// The kind of database.
    #[must_use]
    pub fn kind(&self) -> SourceKind {
        match self {
            Source::Sqlite(_) => SourceKind::Sqlite,
            Source::Postgres(_) => SourceKind::Postgres,
            Source::Mysql(_) => SourceKind::Mysql,
        }
    }

    /// The source name, for logs and messages.
    pub(crate) fn name(&self) -> &str {
        match self {
            Source::Sqlite(s) => s.name(),
            Source::Postgres(s) => s.name(),
            Source::Mysql(s) => s.name(),
        }
    }

    /// The placeholder dialect of a server database; `None` for SQLite, which parses
    /// `:name` itself.
    pub(crate) fn dialect(&self) -> Option<Dialect> {
        match self {
            Source::Sqlite(_) => None,
            Source::Postgres(_) => Some(Dialect::Postgres),
            Source::Mysql(_) => Some(Dialect::Mysql),
        }
    }
}

impl From<Arc<SqliteSource>> for Source {
    fn from(s: Arc<SqliteSource>) -> Self {
        Source::Sqlite(s)
    }
}

impl From<Arc<PgSource>> for Source {
    fn from(s: Arc<PgSource>) -> Self {
        Source::Postgres(s)
    }
}

impl From<Arc<MySqlSource>> for Source {
    fn from(s: Arc<MySqlSource>) -> Self {
        Source::Mysql(s)
    }
}

/// The dialect's name, for descriptions shown to agents.
pub(crate) fn dialect_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Sqlite => "SQLite",
        SourceKind::Postgres => "PostgreSQL",
        SourceKind::Mysql => "MySQL/MariaDB",
        // Not a database; no SQL tool is built on it (the config refuses that).
        SourceKind::Openapi => "OpenAPI",
        SourceKind::Mcp => "MCP",
    }
}
