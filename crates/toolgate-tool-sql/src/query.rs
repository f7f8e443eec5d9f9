//! [`QueryTool`], kind `sql_query`: one ad-hoc read-only statement.

use async_trait::async_trait;
use rusqlite::Batch;
use rusqlite::fallible_iterator::FallibleIterator as _;
use serde_json::{Value, json};
use toolgate_config::SourceKind;
use toolgate_core::{CallContext, FieldError, Tool, ToolError, ToolOutput};

use crate::error::{Author, JobError};
use crate::placeholders;
use crate::rows::{self, Caps, RowSet};
use crate::server::Job;
use crate::sources::{Source, dialect_name};
use crate::{SqliteSource, exec};

/// Longest query text accepted; SQLite's own limit is far larger.
const MAX_QUERY_CHARS: u64 = 100_000;

/// Kind `sql_query`: arguments `{"query": string}`; runs one ad-hoc statement where
/// the database itself refuses anything but reading: a read-only SQLite connection,
/// or a read-only transaction on PostgreSQL and MySQL.
#[derive(Debug)]
pub struct QueryTool {
    source: Source,
    caps: Caps,
}

impl QueryTool {
    /// A query tool on `source` returning rows within `caps` (a row count: the
    /// default byte cap).
    #[must_use]
    pub fn new(source: impl Into<Source>, caps: impl Into<Caps>) -> Self {
        Self {
            source: source.into(),
            caps: caps.into(),
        }
    }

    /// `{"query": string}`, nothing else (SQLite dialect).
    #[must_use]
    pub fn input_schema() -> Value {
        Self::input_schema_for(SourceKind::Sqlite)
    }

    /// `{"query": string}`, naming the dialect of a `kind` source.
    #[must_use]
    pub fn input_schema_for(kind: SourceKind) -> Value {
        let dialect = dialect_name(kind);
        json!({
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_QUERY_CHARS,
                    "description": format!("One read-only SQL statement ({dialect} dialect).")
                }
            },
            "required": ["query"],
            "additionalProperties": false
        })
    }

    /// The kind's default description (SQLite dialect).
    #[must_use]
    pub fn description() -> &'static str {
        "Run one read-only SQL query (SQLite dialect) against the database. Writes are \
         refused. Returns columns, rows and whether rows were cut at the row cap."
    }

    /// The kind's default description on a `kind` source.
    #[must_use]
    pub fn description_for(kind: SourceKind) -> String {
        format!(
            "Run one read-only SQL query ({} dialect) against the database. Writes are \
             refused. Returns columns, rows and whether rows were cut at the row cap.",
            dialect_name(kind)
        )
    }
}

#[async_trait]
impl Tool for QueryTool {
    async fn call(&self, arguments: Value, ctx: CallContext) -> Result<ToolOutput, ToolError> {
        let Some(query) = arguments.get("query").and_then(Value::as_str) else {
            return Err(ToolError::invalid_arguments(vec![FieldError {
                pointer: "/query".to_owned(),
                message: "a string is required".to_owned(),
            }]));
        };
        let result = match &self.source {
            Source::Sqlite(s) => self.sqlite(s, query, &ctx).await,
            Source::Postgres(s) => match single(query, &self.source) {
                Ok(sql) => s.run(&ctx, self.job(sql)).await,
                Err(e) => Err(e),
            },
            Source::Mysql(s) => match single(query, &self.source) {
                Ok(sql) => s.run(&ctx, self.job(sql)).await,
                Err(e) => Err(e),
            },
        };
        result
            .map(RowSet::into_json)
            .map_err(|e| e.into_tool_error(Author::Caller, self.source.name()))
    }

    async fn check(&self) -> Result<(), String> {
        self.source.check().await
    }
}

impl QueryTool {
    async fn sqlite(
        &self,
        source: &SqliteSource,
        query: &str,
        ctx: &CallContext,
    ) -> Result<RowSet, JobError> {
        let query = query.to_owned();
        let caps = self.caps;
        let Some(pool) = source.pool(false) else {
            return Err(JobError::Internal);
        };
        exec::run(pool, ctx, "sql_query", move |conn| {
            run_query(conn, &query, caps)
        })
        .await
    }

    /// A read-only job for a server database.
    fn job<'a>(&self, sql: &'a str) -> Job<'a> {
        Job {
            sql,
            binds: &[],
            caps: self.caps,
            writes: false,
            session: &[],
        }
    }
}

/// The one statement of an ad-hoc query on a server database. The database refuses a
/// second statement too; checking first gives the same message as SQLite.
fn single<'a>(query: &'a str, source: &Source) -> Result<&'a str, JobError> {
    let Some(dialect) = source.dialect() else {
        return Ok(query);
    };
    placeholders::single_statement(query, dialect).map_err(JobError::from)
}

/// Compile exactly one statement and read its rows. The connection's authorizer has
/// already refused writes while compiling; `readonly()` is SQLite's second opinion for
/// statements the authorizer has no code for.
fn run_query(conn: &rusqlite::Connection, query: &str, caps: Caps) -> Result<RowSet, JobError> {
    let mut batch = Batch::new(conn, query);
    let Some(mut stmt) = batch.next().map_err(JobError::Sql)? else {
        return Err(JobError::Empty);
    };
    // Compiling the rest is the only exact way to know whether more statements
    // follow (comments and whitespace compile to nothing); nothing here runs it.
    if !matches!(batch.next(), Ok(None)) {
        return Err(JobError::MultipleStatements);
    }
    if !stmt.readonly() {
        return Err(JobError::Refused);
    }
    if stmt.parameter_count() > 0 {
        return Err(JobError::Parameters);
    }
    rows::collect(&mut stmt, caps).map_err(JobError::Sql)
}
