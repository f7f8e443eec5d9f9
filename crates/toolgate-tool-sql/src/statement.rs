//! [`StatementTool`], kind `sql`: a statement declared in the config, with named
//! `:param` parameters that are always bound, never interpolated.
//!
//! On SQLite the statement is compiled when the tool is built. On PostgreSQL and
//! MySQL, whose pools connect lazily, the text is only scanned then (`:name`s
//! rewritten to `$n` or `?`, one statement); the database prepares it at the first
//! call, and refuses a write in a read-only transaction.

mod sqlite;

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use toolgate_config::{ParamConfig, ParamType};
use toolgate_core::{CallContext, FieldError, Tool, ToolError, ToolOutput};

use crate::error::{Author, JobError};
use crate::placeholders::{self, Dialect};
use crate::rows::{Caps, RowSet};
use crate::server::{Bound, Job};
use crate::sources::Source;
use crate::{SqliteSource, exec};

/// Kind `sql`: one declared statement. Read-only ones run on a read-only connection
/// (SQLite) or in a read-only transaction (PostgreSQL, MySQL); destructive ones in a
/// read-write transaction.
#[derive(Debug)]
pub struct StatementTool {
    source: Source,
    statement: Arc<str>,
    params: Arc<[Param]>,
    /// Server databases: what is bound at each positional placeholder of
    /// `statement`, which holds the rewritten text.
    order: Vec<Slot>,
    /// The caller's claims the statement uses (`:caller.<claim>`), each once.
    claims: Vec<String>,
    caps: Caps,
    writes: bool,
    /// PostgreSQL session settings from the caller's claims: (setting, claim).
    session: Vec<(String, String)>,
}

/// What a positional placeholder is bound to.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// A declared param (index into `params`).
    Arg(usize),
    /// One of the caller's claims (index into `claims`).
    Claim(usize),
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
    /// Checks the statement once: every `:param` in it must be declared and every
    /// declared param must be used; errors are client-readable strings (the
    /// registry locates them at the config line).
    ///
    /// # Errors
    /// The statement holds more than one statement, uses undeclared or positional
    /// parameters, leaves a declared one unused, or a default does not fit its type;
    /// on SQLite also: it does not compile, or writes without `writes`.
    pub fn new(
        source: impl Into<Source>,
        statement: &str,
        params: &[ParamConfig],
        caps: impl Into<Caps>,
        writes: bool,
    ) -> Result<Self, String> {
        let source = source.into();
        let declared = declare(params)?;
        let rewrite = |dialect| {
            placeholders::rewrite(statement, dialect)
                .map(|p| (p.sql, p.names))
                .map_err(|e| e.to_string())
        };
        let (text, used) = match &source {
            Source::Sqlite(s) => {
                // Only a statement with claims is rewritten; any other goes to SQLite
                // as written (and one SQLite's scanner would read otherwise than ours
                // is judged by SQLite).
                let text = placeholders::rewrite(statement, Dialect::Sqlite)
                    .ok()
                    .filter(|p| {
                        p.names
                            .iter()
                            .any(|n| placeholders::caller_claim(n).is_some())
                    })
                    .map_or_else(|| statement.to_owned(), |p| p.sql);
                let used = sqlite::used_params(s, &text, writes)?
                    .into_iter()
                    .map(|n| match n.strip_prefix("caller$") {
                        Some(claim) => format!("{}{claim}", placeholders::CALLER),
                        None => n,
                    })
                    .collect::<Vec<_>>();
                (text, used)
            }
            Source::Postgres(_) => rewrite(Dialect::Postgres)?,
            Source::Mysql(_) => rewrite(Dialect::Mysql)?,
        };
        let mut claims: Vec<String> = Vec::new();
        for claim in used.iter().filter_map(|n| placeholders::caller_claim(n)) {
            if !claims.iter().any(|c| c == claim) {
                claims.push(claim.to_owned());
            }
        }
        let args: Vec<String> = used
            .iter()
            .filter(|n| placeholders::caller_claim(n).is_none())
            .cloned()
            .collect();
        check_usage(&declared, &args)?;
        let slot = |name: &String| match placeholders::caller_claim(name) {
            Some(claim) => claims.iter().position(|c| c == claim).map(Slot::Claim),
            None => declared.iter().position(|p| &p.name == name).map(Slot::Arg),
        };
        let order = match source.dialect() {
            Some(_) => used.iter().filter_map(slot).collect(),
            None => Vec::new(),
        };
        let statement = match source.dialect() {
            Some(Dialect::Postgres) => with_type_tag(text, &order, &declared),
            _ => text,
        };
        Ok(Self {
            source,
            statement: Arc::from(statement),
            params: declared.into(),
            order,
            claims,
            caps: caps.into(),
            writes,
            session: Vec::new(),
        })
    }

    /// Set PostgreSQL session settings from the caller's claims for each call's
    /// transaction: `(setting, claim)` pairs (`[[tools]] session`).
    #[must_use]
    pub fn with_session(mut self, session: Vec<(String, String)>) -> Self {
        self.session = session;
        self
    }

    /// The session settings' values from the caller's claims.
    fn session_values(&self, ctx: &CallContext) -> Result<Vec<(String, String)>, ToolError> {
        self.session
            .iter()
            .map(|(setting, claim)| Ok((setting.clone(), claim_text(ctx, claim, setting)?)))
            .collect()
    }

    /// The values of the claims the statement uses, in [`StatementTool::claims`]'
    /// order.
    fn claim_values(&self, ctx: &CallContext) -> Result<Vec<String>, ToolError> {
        self.claims
            .iter()
            .map(|claim| claim_text(ctx, claim, &format!(":caller.{claim}")))
            .collect()
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

    /// Each declared parameter's value (the argument, else its default, else NULL),
    /// converted by `convert`, in declaration order.
    fn bindings<T>(
        &self,
        arguments: &Value,
        convert: impl Fn(ParamType, &Value) -> Option<T>,
    ) -> Result<Vec<T>, ToolError> {
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
            let bound = convert(p.ty, value)
                .ok_or_else(|| field(format!("expected {}", p.ty.json_type())))?;
            out.push(bound);
        }
        Ok(out)
    }

    async fn run_sqlite(
        &self,
        source: &SqliteSource,
        arguments: &Value,
        ctx: &CallContext,
    ) -> Result<Result<RowSet, JobError>, ToolError> {
        let values = self.bindings(arguments, sqlite::to_sql)?;
        let claims = self.claim_values(ctx)?;
        let bindings: Vec<_> = self
            .params
            .iter()
            .map(|p| format!(":{}", p.name))
            .zip(values)
            .chain(self.claims.iter().zip(claims).map(|(claim, value)| {
                (
                    format!(":{}", placeholders::sqlite_claim_name(claim)),
                    rusqlite::types::Value::Text(value),
                )
            }))
            .collect();
        let Some(pool) = source.pool(self.writes) else {
            return Err(ToolError::tool("the database is unavailable"));
        };
        let statement = Arc::clone(&self.statement);
        let (caps, writes) = (self.caps, self.writes);
        Ok(exec::run(pool, ctx, "sql", move |conn| {
            sqlite::run_statement(conn, &statement, &bindings, caps, writes)
        })
        .await)
    }

    /// The values for the positional placeholders of a server database.
    fn positional(&self, arguments: &Value, ctx: &CallContext) -> Result<Vec<Bound>, ToolError> {
        let values = self.bindings(arguments, Bound::from_json)?;
        let claims = self.claim_values(ctx)?;
        Ok(self
            .order
            .iter()
            .map(|slot| match *slot {
                Slot::Arg(i) => values[i].clone(),
                Slot::Claim(j) => Bound::Text(Some(claims[j].clone())),
            })
            .collect())
    }

    fn job<'a>(&'a self, binds: &'a [Bound], session: &'a [(String, String)]) -> Job<'a> {
        Job {
            sql: &self.statement,
            binds,
            caps: self.caps,
            writes: self.writes,
            session,
        }
    }
}

#[async_trait]
impl Tool for StatementTool {
    async fn call(&self, arguments: Value, ctx: CallContext) -> Result<ToolOutput, ToolError> {
        let result = match &self.source {
            Source::Sqlite(s) => self.run_sqlite(s, &arguments, &ctx).await?,
            Source::Postgres(s) => {
                let binds = self.positional(&arguments, &ctx)?;
                let session = self.session_values(&ctx)?;
                s.run(&ctx, self.job(&binds, &session)).await
            }
            Source::Mysql(s) => {
                let binds = self.positional(&arguments, &ctx)?;
                s.run(&ctx, self.job(&binds, &[])).await
            }
        };
        result
            .map(RowSet::into_json)
            .map_err(|e| e.into_tool_error(Author::Operator, self.source.name()))
    }

    async fn check(&self) -> Result<(), String> {
        self.source.check().await
    }
}

/// The value of the caller's claim `claim` (needed for `purpose`) as text: a string
/// as it is, any other JSON value as JSON text. A caller without it (a token that
/// lacks the claim, or an API key) is refused: the statement never runs with a
/// missing identity.
fn claim_text(ctx: &CallContext, claim: &str, purpose: &str) -> Result<String, ToolError> {
    let claims = ctx.caller.as_ref().and_then(|c| c.claims.as_ref());
    let value = claims.and_then(|c| c.get(claim)).ok_or_else(|| {
        ToolError::new(
            toolgate_core::ErrorKind::Forbidden,
            format!(
                "this tool runs as the caller and needs the claim {claim:?} of its access token (for {purpose}); {}",
                if claims.is_some() {
                    "the token has none"
                } else {
                    "an API key has no claims"
                }
            ),
        )
    })?;
    Ok(match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
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
            && (d.is_null() || sqlite::to_sql(p.ty, d).is_none())
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

/// Every name the statement uses is declared, and every declared one is used.
fn check_usage(declared: &[Param], used: &[String]) -> Result<(), String> {
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
    Ok(())
}

/// PostgreSQL prepares a statement once per connection with the parameter types it
/// is first given, and sqlx caches it by its text. A comment naming the types keeps
/// two tools with the same text but different types from sharing one.
fn with_type_tag(text: String, order: &[Slot], declared: &[Param]) -> String {
    if order.is_empty() {
        return text;
    }
    let types: Vec<&str> = order
        .iter()
        .map(|slot| match *slot {
            Slot::Arg(i) => declared[i].ty.json_type(),
            Slot::Claim(_) => "string",
        })
        .collect();
    format!("{text}\n/* toolgate parameters: {} */", types.join(", "))
}
