//! [`StatementTool`], kind `sql`: a statement declared in the config, with named
//! `:param` parameters that are always bound, never interpolated.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::fallible_iterator::FallibleIterator as _;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Batch, Connection, TransactionBehavior};
use serde_json::Value;
use toolgate_config::{ParamConfig, ParamType};
use toolgate_core::{CallContext, FieldError, Tool, ToolError, ToolOutput};

use crate::error::{Author, Class, JobError, classify};
use crate::rows::{self, RowSet};
use crate::{SqliteSource, exec};

/// Kind `sql`: one declared statement. Read-only ones run on the read-only pool;
/// destructive ones on the source's read-write connection, inside a transaction.
#[derive(Debug)]
pub struct StatementTool {
    source: Arc<SqliteSource>,
    statement: Arc<str>,
    params: Arc<[Param]>,
    max_rows: usize,
    writes: bool,
}

/// One declared parameter, as binding needs it.
#[derive(Debug, Clone)]
struct Param {
    name: String,
    ty: ParamType,
    default: Option<Value>,
    required: bool,
}

fn is_required(p: &ParamConfig) -> bool {
    p.required.unwrap_or(p.default.is_none())
}

impl StatementTool {
    /// Prepares the statement once on a connection to check it: every `:param` in it
    /// must be declared and every declared param must be used; errors are
    /// client-readable strings (the registry locates them at the config line).
    ///
    /// # Errors
    /// The statement does not compile, writes without `writes`, holds more than one
    /// statement, uses undeclared or positional parameters, leaves a declared one
    /// unused, or a default does not fit its type.
    pub fn new(
        source: Arc<SqliteSource>,
        statement: &str,
        params: &[ParamConfig],
        max_rows: usize,
        writes: bool,
    ) -> Result<Self, String> {
        let declared = declare(params)?;
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
        let used = check_statement(&conn, statement, writes)?;
        let used: BTreeSet<&str> = used.iter().map(String::as_str).collect();
        if let Some(name) = used
            .iter()
            .find(|u| !declared.iter().any(|p| p.name == **u))
        {
            return Err(format!(
                "the statement uses :{name}, which is not declared in `params`"
            ));
        }
        if let Some(p) = declared.iter().find(|p| !used.contains(p.name.as_str())) {
            return Err(format!(
                "param {:?} is declared but the statement does not use :{}",
                p.name, p.name
            ));
        }
        Ok(Self {
            source,
            statement: Arc::from(statement),
            params: declared.into(),
            max_rows,
            writes,
        })
    }

    /// JSON Schema (2020-12) derived from the params: type object, properties with
    /// type/description/default/minimum/maximum/maxLength/enum, required = params with
    /// `required == Some(true)` or (`required` unset and no default),
    /// `additionalProperties: false`.
    #[must_use]
    pub fn input_schema(params: &[ParamConfig]) -> Value {
        toolgate_config::params_schema(params)
    }

    /// The kind's default description.
    #[must_use]
    pub fn description() -> &'static str {
        "Run a SQL statement declared by the operator, with typed parameters."
    }

    /// Each declared parameter's SQL value: the argument, else its default, else NULL.
    fn bindings(&self, arguments: &Value) -> Result<Vec<(String, SqlValue)>, ToolError> {
        let mut out = Vec::with_capacity(self.params.len());
        for p in self.params.iter() {
            let pointer = format!("/{}", p.name.replace('~', "~0").replace('/', "~1"));
            let field = |message: String| {
                ToolError::invalid_arguments(vec![FieldError {
                    pointer: pointer.clone(),
                    message,
                }])
            };
            let value = match (arguments.get(&p.name), &p.default) {
                (Some(v), _) | (None, Some(v)) => v,
                (None, None) if p.required => return Err(field("is required".to_owned())),
                (None, None) => &Value::Null,
            };
            let bound = to_sql(p.ty, value)
                .ok_or_else(|| field(format!("expected {}", p.ty.json_type())))?;
            out.push((format!(":{}", p.name), bound));
        }
        Ok(out)
    }
}

#[async_trait]
impl Tool for StatementTool {
    async fn call(&self, arguments: Value, ctx: CallContext) -> Result<ToolOutput, ToolError> {
        let bindings = self.bindings(&arguments)?;
        let Some(pool) = self.source.pool(self.writes) else {
            return Err(ToolError::tool("the database is unavailable"));
        };
        let statement = Arc::clone(&self.statement);
        let (max_rows, writes) = (self.max_rows, self.writes);
        exec::run(pool, &ctx, "sql", move |conn| {
            run_statement(conn, &statement, &bindings, max_rows, writes)
        })
        .await
        .map(RowSet::into_json)
        .map_err(|e| e.into_tool_error(Author::Operator, self.source.name()))
    }

    async fn check(&self) -> Result<(), String> {
        self.source.check().await
    }
}

/// The declared params, checked for duplicates and defaults of the wrong type.
fn declare(params: &[ParamConfig]) -> Result<Vec<Param>, String> {
    let mut out: Vec<Param> = Vec::with_capacity(params.len());
    for p in params {
        let name = p.name.get_ref().clone();
        if out.iter().any(|q| q.name == name) {
            return Err(format!("param {name:?} is declared twice"));
        }
        if let Some(d) = &p.default
            && (d.is_null() || to_sql(p.ty, d).is_none())
        {
            return Err(format!(
                "param {name:?}: default {d} is not {}",
                p.ty.json_type()
            ));
        }
        out.push(Param {
            name,
            ty: p.ty,
            default: p.default.clone(),
            required: is_required(p),
        });
    }
    Ok(out)
}

/// Compile `sql` and return the names of its parameters (without the `:`).
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

/// Why a writing statement fails on a tool that was not declared destructive.
const NEEDS_DESTRUCTIVE: &str = "the statement writes, but the tool is read-only (declare it \
                                 `destructive = true` to allow writes)";

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
fn run_statement(
    conn: &mut Connection,
    sql: &str,
    bindings: &[(String, SqlValue)],
    max_rows: usize,
    writes: bool,
) -> Result<RowSet, JobError> {
    if !writes {
        return execute(conn, sql, bindings, max_rows);
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
    let mut set = execute(&tx, sql, bindings, max_rows)?;
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
    max_rows: usize,
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
    rows::collect(&mut stmt, max_rows).map_err(JobError::Sql)
}

/// A JSON argument as the SQL value of a parameter of type `ty`; `None` on mismatch.
fn to_sql(ty: ParamType, value: &Value) -> Option<SqlValue> {
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
