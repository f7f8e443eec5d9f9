//! PostgreSQL and MySQL/MariaDB sources, over sqlx.
//!
//! Both run a call the same way:
//!
//! ```text
//! acquire (pool, lazy connect) ─> setup, one round trip:
//!     BEGIN READ ONLY | READ WRITE, the server-side statement timeout, our connection id
//! ─> prepare (cached per connection) ─> bind ─> stream rows under the row cap
//! ─> COMMIT (writers) | ROLLBACK (readers) ─> the connection goes back to the pool
//! ```
//!
//! Every step races the call's deadline and cancellation ([`within`]). A call that
//! does not end cleanly (deadline, cancellation, dropped future, a result cut at the
//! row cap) leaves its connection mid-protocol: the [`lease::Lease`] then closes it
//! instead of returning it, and stops the statement on the server from a separate
//! control connection (`pg_cancel_backend`, `KILL QUERY`), because a server does not
//! notice a closed socket while it sleeps or computes.
//!
//! - [`pg`]: [`PgSource`]; [`pg_values`]: PostgreSQL values as JSON.
//! - [`mysql`]: [`MySqlSource`]; [`mysql_values`]: MySQL values as JSON.
//! - `temporal`: dates and times in RFC 3339.

mod lease;
pub(crate) mod mysql;
mod mysql_values;
pub(crate) mod pg;
mod pg_values;
mod temporal;

use std::time::Duration;

use serde_json::Value;
use toolgate_config::{ParamType, SourceConfig};
use toolgate_core::CallContext;

use crate::error::{JobError, SqlError};

pub use mysql::MySqlSource;
pub use pg::PgSource;

/// How long the readiness check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a call waits for a pooled connection (or for the server to accept a new
/// one) before the database counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the control connection may take to stop an abandoned statement.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// One statement to run on a server source.
pub(crate) struct Job<'a> {
    /// The text, with the dialect's positional placeholders.
    pub(crate) sql: &'a str,
    /// A value for each placeholder, in order.
    pub(crate) binds: &'a [Bound],
    /// Most rows and bytes returned.
    pub(crate) caps: crate::rows::Caps,
    /// Runs in a read-write transaction (a destructive tool).
    pub(crate) writes: bool,
    /// PostgreSQL session settings for this transaction only (name, value).
    pub(crate) session: &'a [(String, String)],
}

/// A parameter value, typed by its declaration so a statement always sees the same
/// parameter types: PostgreSQL prepares it once with them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bound {
    /// `string`: PostgreSQL `text`, MySQL `VARCHAR`.
    Text(Option<String>),
    /// `integer`: `bigint`.
    Integer(Option<i64>),
    /// `number`: `double precision`.
    Number(Option<f64>),
    /// `boolean`: PostgreSQL `boolean`, MySQL `TINYINT(1)`.
    Boolean(Option<bool>),
}

impl Bound {
    /// A JSON argument as the value of a parameter of type `ty`; `None` on mismatch.
    pub(crate) fn from_json(ty: ParamType, value: &Value) -> Option<Self> {
        // 2^63 as f64: the first float beyond i64.
        const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0;
        Some(match (ty, value) {
            (ParamType::String, Value::Null) => Bound::Text(None),
            (ParamType::Integer, Value::Null) => Bound::Integer(None),
            (ParamType::Number, Value::Null) => Bound::Number(None),
            (ParamType::Boolean, Value::Null) => Bound::Boolean(None),
            (ParamType::String, Value::String(s)) => Bound::Text(Some(s.clone())),
            (ParamType::Integer, Value::Number(n)) => {
                Bound::Integer(Some(n.as_i64().or_else(|| {
                    // JSON Schema counts 5.0 as an integer.
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && (-I64_LIMIT..I64_LIMIT).contains(f))
                        .map(|f| f as i64)
                })?))
            }
            (ParamType::Number, Value::Number(n)) => Bound::Number(Some(n.as_f64()?)),
            (ParamType::Boolean, Value::Bool(b)) => Bound::Boolean(Some(*b)),
            _ => return None,
        })
    }
}

/// Await `fut` unless the call is cancelled or its deadline passes first; the loser
/// is dropped, which is what stops the work (see [`lease::Lease`]).
pub(crate) async fn within<T>(
    ctx: &CallContext,
    fut: impl Future<Output = T>,
) -> Result<T, JobError> {
    tokio::select! {
        biased;
        () = ctx.cancel.cancelled() => Err(JobError::Cancelled),
        () = tokio::time::sleep_until(ctx.deadline) => Err(JobError::Timeout),
        out = fut => Ok(out),
    }
}

/// The server-side statement timeout of a call, in ms: what is left of its deadline,
/// capped by the source's `statement_timeout_ms`, never 0 (which means "no limit").
fn timeout_ms(deadline: tokio::time::Instant, cap: Option<Duration>) -> u64 {
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let limit = cap.map_or(left, |cap| cap.min(left));
    u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The pieces of a server source's config that both kinds read.
struct ServerConfig<'a> {
    url: &'a str,
    pool_size: u32,
    statement_timeout: Option<Duration>,
}

impl<'a> ServerConfig<'a> {
    fn from(name: &str, kind: &'static str, cfg: &'a SourceConfig) -> Result<Self, SqlError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(SqlError::NoRuntime {
                source_name: name.to_owned(),
                kind,
            });
        }
        let url = cfg.url.as_ref().ok_or_else(|| SqlError::NoUrl {
            source_name: name.to_owned(),
            kind,
        })?;
        Ok(Self {
            url: url.get_ref().as_str(),
            pool_size: u32::try_from(cfg.pool_size.max(1)).unwrap_or(u32::MAX),
            statement_timeout: cfg
                .statement_timeout_ms
                .as_ref()
                .map(|t| Duration::from_millis(*t.get_ref())),
        })
    }
}

/// A connect-option parse error, without echoing the URL (it may hold a password).
fn url_error(name: &str, kind: &'static str, error: &sqlx::Error) -> SqlError {
    let reason = match error {
        sqlx::Error::Configuration(e) => e.to_string(),
        _ => "cannot be parsed".to_owned(),
    };
    SqlError::Url {
        source_name: name.to_owned(),
        kind,
        reason,
    }
}

/// A float result as JSON, NaN and infinities as `null` (as for SQLite). `f32`s go
/// through their shortest decimal form, so `0.1::real` is `0.1`, not
/// `0.10000000149011612`.
fn float_json(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn float32_json(f: f32) -> Value {
    float_json(f.to_string().parse().unwrap_or(f64::NAN))
}

/// The message for a column whose type has no JSON mapping.
fn unmappable(column: &str, type_name: &str, cast: &str) -> JobError {
    JobError::Unmappable(format!(
        "column {column:?} has type {type_name}, which has no JSON mapping; cast it in the \
         query ({cast})"
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn arguments_bind_with_their_declared_type() {
        assert_eq!(
            Bound::from_json(ParamType::Integer, &json!(5.0)),
            Some(Bound::Integer(Some(5)))
        );
        assert_eq!(
            Bound::from_json(ParamType::Number, &json!(5)),
            Some(Bound::Number(Some(5.0)))
        );
        assert_eq!(
            Bound::from_json(ParamType::Boolean, &Value::Null),
            Some(Bound::Boolean(None))
        );
        assert_eq!(Bound::from_json(ParamType::Integer, &json!(1.5)), None);
        assert_eq!(Bound::from_json(ParamType::String, &json!(1)), None);
    }

    #[test]
    fn floats_keep_their_shortest_form() {
        assert_eq!(float32_json(0.1), json!(0.1));
        assert_eq!(float_json(f64::NAN), Value::Null);
        assert_eq!(float32_json(f32::INFINITY), Value::Null);
    }

    #[test]
    fn the_server_timeout_is_the_deadline_capped() {
        let now = tokio::time::Instant::now();
        let deadline = now + Duration::from_secs(60);
        assert!((59_000..=60_000).contains(&timeout_ms(deadline, None)));
        assert_eq!(timeout_ms(deadline, Some(Duration::from_millis(200))), 200);
        // Past the deadline: 1 ms, because 0 would mean "no limit" to the server.
        assert_eq!(timeout_ms(now, None), 1);
    }
}
