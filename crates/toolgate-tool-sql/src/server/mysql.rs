//! [`MySqlSource`]: a MySQL or MariaDB database behind a lazily connected pool.
//!
//! Read-only is enforced by the server: a call of a tool that is not destructive
//! runs after `SET SESSION TRANSACTION READ ONLY` and inside `START TRANSACTION
//! READ ONLY`. Both are needed: DDL commits implicitly and then runs outside the
//! transaction, where only the session's access mode still refuses it.
//!
//! The server-side limit is `max_statement_time` (seconds, every statement) on
//! MariaDB and `max_execution_time` (ms, `SELECT` only) on MySQL; which one is
//! learned from `VERSION()` on the first call.

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt as _;
use sqlx::mysql::{
    MySqlArguments, MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlPoolOptions,
};
use sqlx::query::Query;
use sqlx::{
    AssertSqlSafe, Column as _, Connection as _, Either, Executor as _, MySql, MySqlPool, Row as _,
    SqlSafeStr, Statement as _,
};
use tokio::sync::OnceCell;
use toolgate_config::SourceConfig;
use toolgate_core::CallContext;

use super::lease::{Killer, Lease};
use super::{
    ACQUIRE_TIMEOUT, Bound, CHECK_TIMEOUT, Job, ServerConfig, mysql_values, timeout_ms, url_error,
    within,
};
use crate::error::{Class, JobError, SqlError};
use crate::rows::{self, Budget, RowSet};

/// Which server answers: they name the statement timeout differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    MySql,
    MariaDb,
}

/// A MySQL or MariaDB database: a pool for calls and a one-connection pool for
/// readiness checks and for killing abandoned statements.
pub struct MySqlSource {
    name: String,
    pool: MySqlPool,
    control: MySqlPool,
    statement_timeout: Option<Duration>,
    flavor: OnceCell<Flavor>,
    kill: Killer,
}

impl std::fmt::Debug for MySqlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlSource")
            .field("name", &self.name)
            .field("flavor", &self.flavor.get())
            .finish_non_exhaustive()
    }
}

impl MySqlSource {
    /// Build the pools from config. Nothing connects yet: the first call (or
    /// readiness check) does.
    ///
    /// # Errors
    /// No `url`, a `url` that does not parse, or no tokio runtime to run the pool on.
    pub fn open(name: &str, cfg: &SourceConfig) -> Result<Arc<Self>, SqlError> {
        let server = ServerConfig::from(name, "mysql", cfg)?;
        // sqlx sets the session time zone to UTC, so TIMESTAMP values are instants.
        let options: MySqlConnectOptions = server
            .url
            .parse()
            .map_err(|e| url_error(name, "mysql", &e))?;
        let pool = MySqlPoolOptions::new()
            .max_connections(server.pool_size)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options.clone());
        let control = MySqlPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(CHECK_TIMEOUT)
            .connect_lazy_with(options);
        Ok(Arc::new(Self {
            name: name.to_owned(),
            kill: killer(control.clone()),
            pool,
            control,
            statement_timeout: server.statement_timeout,
            flavor: OnceCell::new(),
        }))
    }

    /// Readiness: `SELECT 1` on the control connection. The message is safe for
    /// `/readyz`; details go to the log.
    ///
    /// # Errors
    /// The database cannot be reached or does not answer in time.
    pub async fn check(&self) -> Result<(), String> {
        let ping = sqlx::query("SELECT 1").execute(&self.control);
        match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(source = %self.name, error = %e, "mysql readiness check failed");
                Err(format!("mysql source {:?} is unreachable", self.name))
            }
            Err(_) => Err(format!(
                "mysql source {:?} did not answer within {} s",
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
        let flavor = within(ctx, self.flavor(&mut lease)).await??;
        let limit = timeout_ms(ctx.deadline, self.statement_timeout);
        let (result, clean) = within(ctx, transact(&mut lease, flavor, limit, &job)).await?;
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

    async fn flavor(&self, lease: &mut Lease<MySql>) -> Result<Flavor, JobError> {
        let detect = async {
            let row = sqlx::raw_sql("SELECT VERSION()")
                .fetch_one(&mut *lease.conn())
                .await?;
            let version: String = row.try_get_unchecked(0)?;
            Ok::<_, sqlx::Error>(if version.contains("MariaDB") {
                Flavor::MariaDb
            } else {
                Flavor::MySql
            })
        };
        self.flavor
            .get_or_try_init(|| detect)
            .await
            .copied()
            .map_err(server_error)
    }
}

/// Kills a connection's running statement through `control`.
fn killer(control: MySqlPool) -> Killer {
    Arc::new(move |id| {
        let control = control.clone();
        Box::pin(async move {
            // An id the server gave us, not text from a caller.
            let kill = sqlx::raw_sql(AssertSqlSafe(format!("KILL QUERY {id}")));
            if let Err(e) = kill.execute(&control).await {
                tracing::debug!(id, error = %e, "cannot kill an abandoned mysql statement");
            }
        })
    })
}

/// Setup, statement and end of one call. Returns whether the connection is back at
/// rest, so it can be reused.
async fn transact(
    lease: &mut Lease<MySql>,
    flavor: Flavor,
    timeout_ms: u64,
    job: &Job<'_>,
) -> (Result<RowSet, JobError>, bool) {
    let limit = match flavor {
        Flavor::MariaDb => format!(
            "SET SESSION max_statement_time = {}.{:03}",
            timeout_ms / 1000,
            timeout_ms % 1000
        ),
        Flavor::MySql => format!("SET SESSION max_execution_time = {timeout_ms}"),
    };
    let mode = if job.writes {
        "READ WRITE"
    } else {
        "READ ONLY"
    };
    // Every call sets both again: a previous statement may have changed them.
    let setup = format!(
        "{limit}; SET SESSION TRANSACTION {mode}; START TRANSACTION {mode}; SELECT CONNECTION_ID()"
    );
    let id = sqlx::raw_sql(AssertSqlSafe(setup))
        .fetch_one(&mut *lease.conn())
        .await
        .and_then(|row| row.try_get_unchecked::<u64, _>(0));
    match id {
        Ok(id) => lease.set_server_id(id),
        Err(e) => return (Err(server_error(e)), false),
    }
    let result = statement(lease.conn(), job).await;
    let end = match &result {
        Ok((_, false)) | Err(JobError::Unmappable(_)) => {
            return (result.map(|(set, _)| set), false);
        }
        Ok(_) if job.writes => "COMMIT",
        _ => "ROLLBACK",
    };
    match sqlx::raw_sql(end).execute(&mut *lease.conn()).await {
        Ok(_) => (result.map(|(set, _)| set), true),
        Err(e) => (Err(server_error(e)), false),
    }
}

/// Prepare (cached per connection), bind and read under the row cap; the flag says
/// whether the result was read to its end (writers always read on).
async fn statement(conn: &mut MySqlConnection, job: &Job<'_>) -> Result<(RowSet, bool), JobError> {
    let sql = AssertSqlSafe(job.sql.to_owned()).into_sql_str();
    let stmt = (&mut *conn).prepare(sql).await.map_err(server_error)?;
    let mut columns: Vec<String> = stmt.columns().iter().map(|c| c.name().to_owned()).collect();
    let query = job.binds.iter().fold(stmt.query(), bind);
    let mut stream = (&mut *conn).fetch_many(query);
    let (mut rows, mut cut, mut affected) = (Vec::new(), None, 0);
    let mut budget = Budget::new(job.caps);
    let (mut complete, mut stale) = (true, false);
    while let Some(item) = stream.try_next().await.map_err(server_error)? {
        match item {
            Either::Left(done) => affected += done.rows_affected(),
            Either::Right(row) if cut.is_none() => {
                if rows.is_empty() {
                    // The server prepares again when the table changed shape since
                    // the statement was cached (`SELECT *` after an ALTER TABLE);
                    // the rows carry the current columns.
                    let current: Vec<String> =
                        row.columns().iter().map(|c| c.name().to_owned()).collect();
                    stale = current != columns;
                    columns = current;
                }
                cut = rows::keep(&mut budget, &mut rows, || {
                    mysql_values::row_json(&row, &columns)
                })?;
                // Readers stop at the cut; writers read on, so that their
                // transaction commits.
                if cut.is_some() && !job.writes {
                    complete = false;
                    break;
                }
            }
            Either::Right(_) => {}
        }
    }
    drop(stream);
    if stale && complete {
        // So that an empty result names the current columns too.
        conn.clear_cached_statements().await.map_err(server_error)?;
    }
    let rows_affected = (job.writes && columns.is_empty()).then_some(affected);
    let set = RowSet {
        columns,
        rows,
        truncated: cut.is_some(),
        cut,
        rows_affected,
    };
    Ok((set, complete))
}

fn bind<'q>(q: Query<'q, MySql, MySqlArguments>, b: &Bound) -> Query<'q, MySql, MySqlArguments> {
    match b {
        Bound::Text(v) => q.bind(v.clone()),
        Bound::Integer(v) => q.bind(*v),
        Bound::Number(v) => q.bind(*v),
        Bound::Boolean(v) => q.bind(*v),
    }
}

fn server_error(e: sqlx::Error) -> JobError {
    JobError::Server(classify(&e), e.to_string())
}

/// Sort a MySQL failure by error number and SQLSTATE, keeping the server's message
/// where it describes the statement or its data.
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
    let number = db
        .try_downcast_ref::<MySqlDatabaseError>()
        .map_or(0, MySqlDatabaseError::number);
    let state = db.code().unwrap_or_default();
    match (number, state.as_ref()) {
        (1792, _) => Class::ReadOnly(message),
        // max_statement_time (MariaDB), max_execution_time (MySQL), KILL QUERY.
        (1969 | 3024 | 1317, _) => Class::Interrupted,
        (1205 | 1213, _) => Class::Busy,
        // Access denied or unknown database, when connecting.
        (1045 | 1049, _) => Class::Unavailable,
        (_, s) if s.starts_with("22") || s.starts_with("23") => Class::Data(message),
        (_, s) if s.starts_with("08") || s.starts_with("28") => Class::Unavailable,
        _ => Class::Statement(message),
    }
}
