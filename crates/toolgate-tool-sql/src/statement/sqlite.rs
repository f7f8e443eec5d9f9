//! The SQLite half of [`super::StatementTool`]: SQLite checks the statement when the
//! tool is built (it compiles it, and knows whether it writes), and runs it with
//! `:name` parameters bound by name.

use rusqlite::fallible_iterator::FallibleIterator as _;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Batch, Connection, TransactionBehavior};
use serde_json::Value;
use toolgate_config::ParamType;

use crate::SqliteSource;
use crate::error::{Class, JobError, NEEDS_DESTRUCTIVE, classify};
use crate::rows::{self, Caps, RowSet};

/// Compile `sql` on a fresh connection like the tool's and return the names of its
/// parameters (without the `:`).
pub(super) fn used_params(
    source: &SqliteSource,
    sql: &str,
    writes: bool,
) -> Result<Vec<String>, String> {
    if source.pool(writes).is_none() {
        return Err(format!(
            "source {:?} was opened without a read-write connection",
            source.name()
        ));
    }
    let conn = source.checking_connection(writes).map_err(|e| {
        tracing::error!(source = source.name(), error = %e, "cannot open a connection to check a statement");
        format!("cannot open source {:?} to check the statement", source.name())
    })?;
    check_statement(&conn, sql, writes)
}

fn check_statement(conn: &Connection, sql: &str, writes: bool) -> Result<Vec<String>, String> {
    let mut batch = Batch::new(conn, sql);
    let stmt = match batch.next() {
        Ok(Some(stmt)) => stmt,
        Ok(None) => return Err("the statement is empty".to_owned()),
        Err(e) => return Err(compile_error(&e, writes)),
    };
    if !matches!(batch.next(), Ok(None)) {
        return Err("only one statement is allowed".to_owned());
    }
    if !writes && !stmt.readonly() {
        return Err(NEEDS_DESTRUCTIVE.to_owned());
    }
    let mut used = Vec::with_capacity(stmt.parameter_count());
    for i in 1..=stmt.parameter_count() {
        match stmt.parameter_name(i) {
            Some(name) if name.starts_with(':') => used.push(name[1..].to_owned()),
            Some(name) => {
                return Err(format!("parameter {name} is not supported; use :name"));
            }
            None => return Err("positional parameters (?) are not supported; use :name".into()),
        }
    }
    Ok(used)
}

fn compile_error(e: &rusqlite::Error, writes: bool) -> String {
    match classify(e) {
        Class::Refused if !writes => NEEDS_DESTRUCTIVE.to_owned(),
        Class::Refused => "the statement is refused by SQLite (ATTACH, DETACH and file \
                           functions are never allowed)"
            .to_owned(),
        Class::Statement(message) | Class::Data(message) => {
            format!("the statement does not compile: {message}")
        }
        _ => format!("the statement does not compile: {e}"),
    }
}

/// Bind and run on `conn`; writers wrap the statement in a transaction.
pub(super) fn run_statement(
    conn: &mut Connection,
    sql: &str,
    bindings: &[(String, SqlValue)],
    caps: Caps,
    writes: bool,
) -> Result<RowSet, JobError> {
    if !writes {
        return execute(conn, sql, bindings, caps);
    }
    if !conn.is_autocommit() {
        // Only a failed rollback could leave one open; never build on top of it.
        conn.execute_batch("ROLLBACK").map_err(JobError::Sql)?;
    }
    // IMMEDIATE takes the write lock up front, so a busy database fails fast here
    // instead of halfway through the statement.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(JobError::Sql)?;
    let mut set = execute(&tx, sql, bindings, caps)?;
    if set.columns.is_empty() {
        set.rows_affected = Some(tx.changes());
    }
    tx.commit().map_err(JobError::Sql)?;
    Ok(set)
}

fn execute(
    conn: &Connection,
    sql: &str,
    bindings: &[(String, SqlValue)],
    caps: Caps,
) -> Result<RowSet, JobError> {
    let mut stmt = conn.prepare_cached(sql).map_err(JobError::Sql)?;
    for (placeholder, value) in bindings {
        let Some(index) = stmt.parameter_index(placeholder).map_err(JobError::Sql)? else {
            tracing::error!(
                placeholder,
                "declared parameter vanished from its statement"
            );
            return Err(JobError::Internal);
        };
        stmt.raw_bind_parameter(index, value)
            .map_err(JobError::Sql)?;
    }
    rows::collect(&mut stmt, caps).map_err(JobError::Sql)
}

/// A JSON argument as the SQL value of a parameter of type `ty`; `None` on mismatch.
pub(super) fn to_sql(ty: ParamType, value: &Value) -> Option<SqlValue> {
    // 2^63 as f64: the first float beyond i64.
    const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0;
    match (ty, value) {
        (_, Value::Null) => Some(SqlValue::Null),
        (ParamType::String, Value::String(s)) => Some(SqlValue::Text(s.clone())),
        (ParamType::Integer, Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                // JSON Schema counts 5.0 as an integer.
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && (-I64_LIMIT..I64_LIMIT).contains(f))
                    .map(|f| f as i64)
            })
            .map(SqlValue::Integer),
        (ParamType::Number, Value::Number(n)) => n
            .as_i64()
            .map(SqlValue::Integer)
            .or_else(|| n.as_f64().map(SqlValue::Real)),
        (ParamType::Boolean, Value::Bool(b)) => Some(SqlValue::Integer(i64::from(*b))),
        _ => None,
    }
}
