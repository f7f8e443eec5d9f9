//! # toolgate-tool-sql: SQL tools over SQLite, PostgreSQL and MySQL/MariaDB
//!
//! Two tool kinds over a [`Source`] ([`SqliteSource`], [`PgSource`] or
//! [`MySqlSource`]):
//!
//! - `sql_query` ([`QueryTool`]): `{"query": "..."}`, one ad-hoc read-only statement.
//! - `sql` ([`StatementTool`]): a statement declared in the config, with named `:param`
//!   parameters that are always bound, never interpolated. Declared `destructive`, it
//!   may write.
//!
//! Read-only is always enforced by the database, never by reading SQL text.
//!
//! Modules and data flow:
//!
//! ```text
//! Tool::call ─┬─ SQLite:   exec::run ──(spawn_blocking)──> job on a pooled Connection
//!             │              select! { job, ctx.cancel, ctx.deadline }
//!             │              on cancel/deadline/drop: stop flag + sqlite3_interrupt
//!             └─ server:   server::{pg,mysql}::run ── sqlx pool ── one transaction
//!                            each step raced against ctx.cancel and ctx.deadline;
//!                            on cancel/deadline/drop: close + pg_cancel_backend / KILL QUERY
//!    rows::RowSet ──> {"columns": [...], "rows": [[...]], "truncated": bool}
//! ```
//!
//! - [`sources`]: [`Source`], the enum the registry builds and the tools hold.
//! - [`source`]: [`SqliteSource`], opening a file (or building the demo database from
//!   `demo/schema.sql` and `demo/seed.sql` in a temporary directory) into a pool of
//!   read-only connections plus, when a destructive tool needs it, one read-write
//!   connection.
//! - `auth`: the SQLite authorizers. Read-only connections are opened
//!   `SQLITE_OPEN_READ_ONLY`, run `PRAGMA query_only = ON` and carry an authorizer
//!   that admits only reads. The read-write connection still refuses `ATTACH`/`DETACH`.
//! - `pool`: the small hand-written SQLite connection pool (semaphore + mutex-guarded
//!   vector).
//! - `exec`: runs a SQLite job off the async runtime, with the deadline and
//!   cancellation enforced inside SQLite (progress handler + interrupt handle).
//! - `server`: [`PgSource`] and [`MySqlSource`] over sqlx: lazily connected pools,
//!   read-only transactions, the server-side statement timeout, and stopping
//!   abandoned statements on the server.
//! - `placeholders`: `:name` → `$n` (PostgreSQL) or `?` (MySQL), skipping literals,
//!   quoted names, comments and `::` casts; also finds a second statement.
//! - `rows`: the output shape, and SQLite values as JSON.
//! - [`query`]: [`QueryTool`]. [`statement`]: [`StatementTool`] and its input schema.
//! - [`error`]: [`SqlError`] (opening a source) and the mapping of database failures
//!   onto [`toolgate_core::ToolError`].
//!
//! ## Output and value mapping
//!
//! Both kinds answer `{"columns": [names], "rows": [[values]], "truncated": bool}` (see
//! [`rows_output_schema`]); at most `max_rows` rows, `truncated` says more existed. A
//! writing statement that returns no columns adds `"rows_affected": n`. Values map as:
//!
//! | JSON | SQLite | PostgreSQL | MySQL / MariaDB |
//! |---|---|---|---|
//! | integer | INTEGER | `smallint`, `integer`, `bigint`, `oid` | `TINYINT` … `BIGINT` (also `UNSIGNED`), `YEAR`, `BIT` |
//! | number (NaN, ±infinity → `null`) | REAL | `real`, `double precision` | `FLOAT`, `DOUBLE` |
//! | string, exact decimal text | | `numeric` (also `NaN`, `Infinity`) | `DECIMAL` |
//! | string | TEXT (invalid UTF-8 → U+FFFD) | `text`, `varchar`, `char` (padded), `name`, `"char"`, enums | `CHAR`, `VARCHAR`, `*TEXT`, `ENUM`, `SET` |
//! | boolean | | `boolean` | `BOOLEAN` (= `TINYINT(1)`) |
//! | JSON value | | `json`, `jsonb` | `JSON` (MySQL); MariaDB's `JSON` is `LONGTEXT`: a string |
//! | string `YYYY-MM-DD` | | `date` | `DATE` |
//! | string `HH:MM:SS[.f]` | | `time`; `timetz` adds its offset | `TIME` (may be negative or past 24 h) |
//! | string `YYYY-MM-DDTHH:MM:SS[.f]` | | `timestamp` (no zone: no offset) | `DATETIME` |
//! | string `YYYY-MM-DDTHH:MM:SS[.f]Z` | | `timestamptz` (in UTC) | `TIMESTAMP` (in UTC) |
//! | string, standard base64 | BLOB | `bytea` | `BINARY`, `VARBINARY`, `*BLOB`, `GEOMETRY` |
//! | string `8-4-4-4-12` hex | | `uuid` | |
//! | array | | one-dimensional arrays of the integer, float, `boolean` and text types | |
//! | `null` | NULL | NULL, `void` | NULL |
//!
//! Dates and times are RFC 3339; fractions keep the database's digits (microseconds)
//! without trailing zeros; `infinity`/`-infinity` dates and timestamps stay those
//! words. A PostgreSQL column of another type (`interval`, `money`, `inet`, ranges,
//! composites...) is refused with a message naming it and suggesting a cast
//! (`::text`), as is a value the mapping cannot hold (a MySQL zero date).
//!
//! ## Errors
//!
//! A refused write, a syntax error, an unknown table or a second statement are the
//! caller's fault: `invalid_arguments` with the database's own message at `/query`
//! (these messages describe the caller's query, not the server). Cancellation and the
//! deadline answer `cancelled` and `timeout`; a database that cannot be reached
//! answers `upstream_error`; internal failures answer a generic `tool_error` and are
//! logged.

mod auth;
pub mod error;
mod exec;
mod placeholders;
mod pool;
pub mod query;
mod rows;
mod server;
pub mod source;
pub mod sources;
pub mod statement;

pub use error::SqlError;
pub use query::QueryTool;
pub use rows::{Caps, DEFAULT_MAX_RESULT_BYTES};
pub use server::{MySqlSource, PgSource};
pub use source::SqliteSource;
pub use sources::Source;
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
                "description": "True when the result was cut at the row cap or the byte cap."
            },
            "truncated_reason": {
                "type": "string",
                "enum": ["max_rows", "max_result_bytes"],
                "description": "Which cap cut the result, when it was cut."
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
