//! [`PgSource`]: a PostgreSQL database behind a lazily connected pool.
//!
//! Read-only is enforced by PostgreSQL: every call of a tool that is not
//! destructive runs in `BEGIN READ ONLY`, which refuses every write, DDL, `nextval`
//! and the like, and is rolled back at the end, which also undoes any `SET` the
//! statement made. `SET LOCAL statement_timeout` makes the server stop the
//! statement when the call's time is up, even if nobody told it to.

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt as _;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::query::Query;
use sqlx::{
    AssertSqlSafe, Column as _, Connection as _, Either, Executor as _, PgPool, Postgres, Row as _,
    SqlSafeStr, Statement as _, Type,
};
use toolgate_config::SourceConfig;
use toolgate_core::CallContext;

use super::lease::{Killer, Lease};
use super::{
    ACQUIRE_TIMEOUT, Bound, CHECK_TIMEOUT, Job, ServerConfig, pg_values, timeout_ms, url_error,
    within,
};
use crate::error::{Class, JobError, SqlError};
use crate::rows::{self, Budget, RowSet};

/// A PostgreSQL database: a pool for calls and a one-connection pool for readiness
/// checks and for cancelling abandoned statements.
pub struct PgSource {
    name: String,
    pool: PgPool,
    control: PgPool,
    statement_timeout: Option<Duration>,
    kill: Killer,
}

impl std::fmt::Debug for PgSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PgSource {
    /// Build the pools from config. Nothing connects yet: the first call (or
    /// readiness check) does, so a database that is down at start-up does not stop
    /// the server.
    ///
    /// # Errors
    /// No `url`, a `url` that does not parse, or no tokio runtime to run the pool on.
    pub fn open(name: &str, cfg: &SourceConfig) -> Result<Arc<Self>, SqlError> {
        let server = ServerConfig::from(name, "postgres", cfg)?;
        let options: PgConnectOptions = server
            .url
            .parse()
            .map_err(|e| url_error(name, "postgres", &e))?;
        // Shown in pg_stat_activity, so operators can tell our sessions apart.
        let options = options.application_name("toolgate");
        let pool = PgPoolOptions::new()
            .max_connections(server.pool_size)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options.clone());
        let control = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(CHECK_TIMEOUT)
            .connect_lazy_with(options);
        Ok(Arc::new(Self {
            name: name.to_owned(),
            kill: killer(control.clone()),
            pool,
            control,
            statement_timeout: server.statement_timeout,
        }))
    }

    /// Readiness: `SELECT 1` on the control connection. The message is safe for
    /// `/readyz` (which anyone may read); details go to the log.
    ///
    /// # Errors
    /// The database cannot be reached or does not answer in time.
    pub async fn check(&self) -> Result<(), String> {
        let ping = sqlx::query("SELECT 1").execute(&self.control);
        match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(source = %self.name, error = %e, "postgres readiness check failed");
                Err(format!("postgres source {:?} is unreachable", self.name))
            }
            Err(_) => Err(format!(
                "postgres source {:?} did not answer within {} s",
                self.name,
                CHECK_TIMEOUT.as_secs()
            )),
        }
    }

    /// The source name, for logs and messages.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Run `job` in its own transaction, within the call's deadline.
    pub(crate) async fn run(&self, ctx: &CallContext, job: Job<'_>) -> Result<RowSet, JobError> {
        let conn = within(ctx, self.pool.acquire())
            .await?
            .map_err(server_error)?;
        let mut lease = Lease::new(conn, Arc::clone(&self.kill));
        let limit = timeout_ms(ctx.deadline, self.statement_timeout);
        let (mut result, mut clean) = within(ctx, transact(&mut lease, limit, &job)).await?;
        if clean && result.as_ref().is_err_and(is_stale_plan) {
            // The table changed shape under a cached statement; `transact` emptied the
            // cache, so one more try prepares it afresh.
            let limit = timeout_ms(ctx.deadline, self.statement_timeout);
            (result, clean) = within(ctx, transact(&mut lease, limit, &job)).await?;
        }
        if clean {
            lease.release();
        }
        match result {
            Err(JobError::Server(Class::Interrupted, _)) if ctx.cancel.is_cancelled() => {
                Err(JobError::Cancelled)
            }
            Err(JobError::Server(Class::Interrupted, _)) => Err(JobError::Timeout),
            other => other,
        }
    }
}

/// Cancels a backend's statement through `control`.
fn killer(control: PgPool) -> Killer {
    Arc::new(move |pid| {
        let control = control.clone();
        Box::pin(async move {
            let Ok(pid) = i32::try_from(pid) else { return };
            let cancel = sqlx::query("SELECT pg_cancel_backend($1)").bind(pid);
            if let Err(e) = cancel.execute(&control).await {
                tracing::warn!(pid, error = %e, "cannot cancel an abandoned postgres statement");
            }
        })
    })
}

/// Setup, statement and end of one call. Returns whether the connection is back at
/// rest (transaction over, nothing pending), so it can be reused.
async fn transact(
    lease: &mut Lease<Postgres>,
    timeout_ms: u64,
    job: &Job<'_>,
) -> (Result<RowSet, JobError>, bool) {
    let begin = if job.writes {
        "BEGIN READ WRITE"
    } else {
        "BEGIN READ ONLY"
    };
    // One round trip; the pid is what `pg_cancel_backend` needs if we abandon it.
    let setup =
        format!("{begin}; SET LOCAL statement_timeout = {timeout_ms}; SELECT pg_backend_pid()");
    let pid = sqlx::raw_sql(AssertSqlSafe(setup))
        .fetch_one(&mut *lease.conn())
        .await
        .and_then(|row| row.try_get::<i32, _>(0));
    match pid {
        Ok(pid) => lease.set_server_id(u64::try_from(pid).unwrap_or_default()),
        Err(e) => return (Err(server_error(e)), false),
    }
    if !job.session.is_empty() {
        // The caller's identity for row-level security: bound values, local to this
        // transaction (`set_config(..., true)` is `SET LOCAL`), gone at its end.
        let (names, values): (Vec<&str>, Vec<&str>) = job
            .session
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .unzip();
        let set = sqlx::query(
            "SELECT set_config(s.name, s.value, true) FROM unnest($1::text[], $2::text[]) AS s(name, value)",
        )
        .bind(names)
        .bind(values)
        .fetch_all(&mut *lease.conn())
        .await;
        if let Err(e) = set {
            return (Err(server_error(e)), false);
        }
    }
    let result = statement(lease.conn(), job).await;
    let end = match &result {
        Ok(c) if !c.complete => return (result.map(|c| c.set), false),
        Err(JobError::Unmappable(_)) => return (result.map(|c| c.set), false),
        Ok(_) if job.writes => "COMMIT",
        _ => "ROLLBACK",
    };
    if result.as_ref().err().is_some_and(is_stale_plan)
        && let Err(e) = lease.conn().clear_cached_statements().await
    {
        return (Err(server_error(e)), false);
    }
    match sqlx::raw_sql(end).execute(&mut *lease.conn()).await {
        Ok(_) => (result.map(|c| c.set), true),
        Err(e) => (Err(server_error(e)), false),
    }
}

/// The rows of a statement, and whether the result was read to its end.
struct Collected {
    set: RowSet,
    complete: bool,
}

/// Prepare (cached per connection), bind and read under the row cap. Writers read
/// on past the cap, because their transaction must still commit.
async fn statement(conn: &mut PgConnection, job: &Job<'_>) -> Result<Collected, JobError> {
    let types: Vec<_> = job.binds.iter().map(param_type).collect();
    let sql = AssertSqlSafe(job.sql.to_owned()).into_sql_str();
    let stmt = (&mut *conn)
        .prepare_with(sql, &types)
        .await
        .map_err(server_error)?;
    let columns: Vec<String> = stmt.columns().iter().map(|c| c.name().to_owned()).collect();
    let query = job.binds.iter().fold(stmt.query(), bind);
    let mut stream = (&mut *conn).fetch_many(query);
    let (mut rows, mut cut, mut affected) = (Vec::new(), None, 0);
    let mut budget = Budget::new(job.caps);
    while let Some(item) = stream.try_next().await.map_err(server_error)? {
        let row = match item {
            Either::Left(done) => {
                affected += done.rows_affected();
                continue;
            }
            Either::Right(row) => row,
        };
        if cut.is_none() {
            cut = rows::keep(&mut budget, &mut rows, || {
                pg_values::row_json(&row, &columns)
            })?;
        }
        // Readers stop at the cut; writers read on, so that their transaction commits.
        if cut.is_some() && !job.writes {
            let set = RowSet {
                columns,
                rows,
                truncated: true,
                cut,
                rows_affected: None,
            };
            return Ok(Collected {
                set,
                complete: false,
            });
        }
    }
    let rows_affected = (job.writes && columns.is_empty()).then_some(affected);
    let set = RowSet {
        columns,
        rows,
        truncated: cut.is_some(),
        cut,
        rows_affected,
    };
    Ok(Collected {
        set,
        complete: true,
    })
}

/// The type a parameter is declared with when the statement is prepared.
fn param_type(b: &Bound) -> sqlx::postgres::PgTypeInfo {
    match b {
        Bound::Text(_) => <String as Type<Postgres>>::type_info(),
        Bound::Integer(_) => <i64 as Type<Postgres>>::type_info(),
        Bound::Number(_) => <f64 as Type<Postgres>>::type_info(),
        Bound::Boolean(_) => <bool as Type<Postgres>>::type_info(),
    }
}

fn bind<'q>(q: Query<'q, Postgres, PgArguments>, b: &Bound) -> Query<'q, Postgres, PgArguments> {
    match b {
        Bound::Text(v) => q.bind(v.clone()),
        Bound::Integer(v) => q.bind(*v),
        Bound::Number(v) => q.bind(*v),
        Bound::Boolean(v) => q.bind(*v),
    }
}

/// PostgreSQL refuses to run a prepared statement whose result columns changed
/// since it was prepared (an `ALTER TABLE` under `SELECT *`).
fn is_stale_plan(e: &JobError) -> bool {
    matches!(e, JobError::Server(Class::Statement(m), _) if m.contains("cached plan must not change result type"))
}

fn server_error(e: sqlx::Error) -> JobError {
    JobError::Server(classify(&e), e.to_string())
}

/// Sort a PostgreSQL failure by SQLSTATE class, keeping the server's message where it
/// describes the statement or its data.
fn classify(e: &sqlx::Error) -> Class {
    let db = match e {
        sqlx::Error::Database(db) => db,
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => return Class::Unavailable,
        _ => return Class::Internal,
    };
    let message = db.message().to_owned();
    let code = db.code().unwrap_or_default();
    match code.as_ref() {
        "25006" => Class::ReadOnly(message),
        // statement_timeout, or a cancel request.
        "57014" => Class::Interrupted,
        "40001" | "40P01" | "55P03" => Class::Busy,
        c if c.starts_with("22") || c.starts_with("23") => Class::Data(message),
        // Connection, resources, shutdown; and at connect time: authentication or an
        // unknown database.
        c if ["08", "53", "57", "28"].iter().any(|p| c.starts_with(p)) || c == "3D000" => {
            Class::Unavailable
        }
        c if c.starts_with("XX") || c.starts_with("58") => Class::Internal,
        _ => Class::Statement(message),
    }
}
