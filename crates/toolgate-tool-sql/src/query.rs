//! [`QueryTool`], kind `sql_query`: one ad-hoc read-only statement.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::Batch;
use rusqlite::fallible_iterator::FallibleIterator as _;
use serde_json::{Value, json};
use toolgate_core::{CallContext, FieldError, Tool, ToolError, ToolOutput};

use crate::error::{Author, JobError};
use crate::rows::{self, RowSet};
use crate::{SqliteSource, exec};

/// Longest query text accepted; SQLite's own limit is far larger.
const MAX_QUERY_CHARS: u64 = 100_000;

/// Kind `sql_query`: arguments `{"query": string}`; runs one ad-hoc statement on a
/// read-only connection, where SQLite itself refuses anything but reading.
#[derive(Debug)]
pub struct QueryTool {
    source: Arc<SqliteSource>,
    max_rows: usize,
}

impl QueryTool {
    /// A query tool on `source` returning at most `max_rows` rows.
    #[must_use]
    pub fn new(source: Arc<SqliteSource>, max_rows: usize) -> Self {
        Self { source, max_rows }
    }

    /// `{"query": string}`, nothing else.
    #[must_use]
    pub fn input_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_QUERY_CHARS,
                    "description": "One read-only SQL statement (SQLite dialect)."
                }
            },
            "required": ["query"],
            "additionalProperties": false
        })
    }

    /// The kind's default description.
    #[must_use]
    pub fn description() -> &'static str {
        "Run one read-only SQL query (SQLite dialect) against the database. Writes are \
         refused. Returns columns, rows and whether rows were cut at the row cap."
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
        let query = query.to_owned();
        let max_rows = self.max_rows;
        let Some(pool) = self.source.pool(false) else {
            return Err(ToolError::tool("the database is unavailable"));
        };
        exec::run(pool, &ctx, "sql_query", move |conn| {
            run_query(conn, &query, max_rows)
        })
        .await
        .map(RowSet::into_json)
        .map_err(|e| e.into_tool_error(Author::Caller, self.source.name()))
    }

    async fn check(&self) -> Result<(), String> {
        self.source.check().await
    }
}

/// Compile exactly one statement and read its rows. The connection's authorizer has
/// already refused writes while compiling; `readonly()` is SQLite's second opinion for
/// statements the authorizer has no code for.
fn run_query(
    conn: &rusqlite::Connection,
    query: &str,
    max_rows: usize,
) -> Result<RowSet, JobError> {
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
    rows::collect(&mut stmt, max_rows).map_err(JobError::Sql)
}
