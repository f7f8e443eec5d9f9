//! # toolgate-tool-sql: SQLite tools
//!
//! Two tool kinds over a SQLite [`SqliteSource`]:
//!
//! - `sql_query` ([`QueryTool`]): `{"query": "..."}`, one ad-hoc read-only statement.
//! - `sql` ([`StatementTool`]): a statement declared in the config, with named `:param`
//!   parameters that are always bound, never interpolated. Declared `destructive`, it
//!   may write.
//!
//! Modules and data flow:
//!
//! ```text
//! Tool::call (async) ──> exec::run ──(spawn_blocking)──> job on a pooled Connection
//!    │                     │  select! { job, ctx.cancel, ctx.deadline }
//!    │                     └─ on cancel/deadline/drop: stop flag + sqlite3_interrupt
//!    └─ rows::RowSet ──> {"columns": [...], "rows": [[...]], "truncated": bool}
//! ```
//!
//! - [`source`]: [`SqliteSource`], opening a file (or building the demo database from
//!   `demo/schema.sql` and `demo/seed.sql` in a temporary directory) into a pool of
//!   read-only connections plus, when a destructive tool needs it, one read-write
//!   connection.
//! - `auth`: the SQLite authorizers. Read-only is enforced by SQLite itself, never by
//!   reading SQL text: read-only connections are opened `SQLITE_OPEN_READ_ONLY`, run
//!   `PRAGMA query_only = ON` and carry an authorizer that admits only reads. The
//!   read-write connection still refuses `ATTACH`/`DETACH`.
//! - `pool`: the small hand-written connection pool (semaphore + mutex-guarded vector).
//! - `exec`: runs a job off the async runtime, with the deadline and cancellation
//!   enforced inside SQLite (progress handler + interrupt handle).
//! - `rows`: reading rows under the row cap and mapping SQLite values to JSON.
//! - [`query`]: [`QueryTool`]. [`statement`]: [`StatementTool`] and its input schema.
//! - [`error`]: [`SqlError`] (opening a source) and the mapping of SQLite failures onto
//!   [`toolgate_core::ToolError`].
//!
//! ## Output and value mapping
//!
//! Both kinds answer `{"columns": [names], "rows": [[values]], "truncated": bool}` (see
//! [`rows_output_schema`]); at most `max_rows` rows, `truncated` says more existed. A
//! writing statement that returns no columns adds `"rows_affected": n`. Values map as:
//!
//! | SQLite  | JSON                                          |
//! |---------|-----------------------------------------------|
//! | INTEGER | integer                                       |
//! | REAL    | number (NaN and infinities become `null`)     |
//! | TEXT    | string (invalid UTF-8 replaced by U+FFFD)      |
//! | BLOB    | string, standard base64 with padding          |
//! | NULL    | `null`                                        |
//!
//! ## Errors
//!
//! A refused write, a syntax error, an unknown table or a second statement are the
//! caller's fault: `invalid_arguments` with SQLite's own message at `/query` (these
//! messages describe the caller's query, not the server). Cancellation and the
//! deadline answer `cancelled` and `timeout`; internal failures answer a generic
//! `tool_error` and are logged.

mod auth;
pub mod error;
mod exec;
mod pool;
pub mod query;
mod rows;
pub mod source;
pub mod statement;

pub use error::SqlError;
pub use query::QueryTool;
pub use source::SqliteSource;
pub use statement::StatementTool;

use serde_json::{Value, json};

/// The output schema both kinds share:
/// `{"columns": [string], "rows": [[any]], "truncated": bool}`, plus `rows_affected`
/// for writing statements that return no columns.
#[must_use]
pub fn rows_output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "columns": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Column names, in order."
            },
            "rows": {
                "type": "array",
                "items": {"type": "array"},
                "description": "One array of values per row, in column order."
            },
            "truncated": {
                "type": "boolean",
                "description": "True when more rows existed than the row cap allows."
            },
            "rows_affected": {
                "type": "integer",
                "minimum": 0,
                "description": "Rows changed by a writing statement that returns no columns."
            }
        },
        "required": ["columns", "rows", "truncated"],
        "additionalProperties": false
    })
}
