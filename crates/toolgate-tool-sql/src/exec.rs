//! Running one job on a pooled connection without blocking the async runtime, and
//! stopping it for real when the call is cancelled, runs out of time or is dropped.
//!
//! Two brakes act inside SQLite: a progress handler, called every [`PROGRESS_OPS`]
//! virtual-machine steps, checks a stop flag and the deadline; and
//! `sqlite3_interrupt` catches work between those checks. The async side races the
//! blocking task against `ctx.cancel` and the deadline and pulls both brakes when it
//! loses; a drop guard pulls them when the caller goes away.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, InterruptHandle};
use toolgate_core::CallContext;

use crate::error::{Class, JobError, classify};
use crate::pool::{Lease, Pool};

/// VM steps between two progress-handler checks: roughly tens of microseconds.
const PROGRESS_OPS: i32 = 1000;

/// The brakes of one call.
struct Stop {
    flag: Arc<AtomicBool>,
    /// The connection's interrupt handle while the job runs on it, `None` otherwise,
    /// so a late interrupt never hits the next call that uses the same connection.
    running: Mutex<Option<InterruptHandle>>,
}

impl Stop {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            flag: Arc::new(AtomicBool::new(false)),
            running: Mutex::new(None),
        })
    }

    /// Stop the job: set the flag, interrupt the connection if the job is on it.
    fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        // A poisoned lock only means a job panicked; the flag still stops the next one.
        if let Ok(running) = self.running.lock()
            && let Some(handle) = running.as_ref()
        {
            handle.interrupt();
        }
    }

    fn set_running(&self, handle: Option<InterruptHandle>) {
        let mut running = match self.running.lock() {
            Ok(running) => running,
            Err(poisoned) => poisoned.into_inner(),
        };
        *running = handle;
    }
}

/// Pulls the brakes when the call's future is dropped, finished or not; after the job
/// ended that only sets a flag nobody reads.
struct StopOnDrop(Arc<Stop>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.trigger();
    }
}

/// Clears the interrupt handle before the lease (declared earlier) returns the
/// connection, even when the job panics.
struct Finished<'a>(&'a Stop);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.set_running(None);
    }
}

/// Run `job` on a connection from `pool`, honouring `ctx`'s deadline and cancellation.
pub(crate) async fn run<T, F>(
    pool: &Arc<Pool>,
    ctx: &CallContext,
    what: &'static str,
    job: F,
) -> Result<T, JobError>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T, JobError> + Send + 'static,
{
    let stop = Stop::new();
    let _guard = StopOnDrop(Arc::clone(&stop));
    let lease = tokio::select! {
        biased;
        () = ctx.cancel.cancelled() => return Err(JobError::Cancelled),
        () = tokio::time::sleep_until(ctx.deadline) => return Err(JobError::Timeout),
        lease = pool.acquire() => lease.map_err(|e| {
            tracing::error!(what, error = ?e, "sqlite pool unavailable");
            JobError::Internal
        })?,
    };
    let deadline = ctx.deadline.into_std();
    let job_stop = Arc::clone(&stop);
    let mut task =
        tokio::task::spawn_blocking(move || run_blocking(lease, &job_stop, deadline, job));
    let joined = tokio::select! {
        biased;
        joined = &mut task => joined,
        () = ctx.cancel.cancelled() => {
            stop.trigger();
            return Err(JobError::Cancelled);
        }
        () = tokio::time::sleep_until(ctx.deadline) => {
            stop.trigger();
            return Err(JobError::Timeout);
        }
    };
    match joined {
        Ok(Err(JobError::Sql(e))) if matches!(classify(&e), Class::Interrupted) => {
            // The brakes inside SQLite won the race against the async side.
            Err(if ctx.cancel.is_cancelled() {
                JobError::Cancelled
            } else {
                JobError::Timeout
            })
        }
        Ok(result) => result,
        Err(e) => {
            tracing::error!(what, error = %e, "sqlite job failed to complete");
            Err(JobError::Internal)
        }
    }
}

/// The blocking half: arm the brakes on the leased connection, run the job, disarm.
fn run_blocking<T>(
    mut lease: Lease,
    stop: &Stop,
    deadline: std::time::Instant,
    job: impl FnOnce(&mut Connection) -> Result<T, JobError>,
) -> Result<T, JobError> {
    let Some(conn) = lease.conn() else {
        tracing::error!("sqlite lease without a connection");
        return Err(JobError::Internal);
    };
    stop.set_running(Some(conn.get_interrupt_handle()));
    let _finished = Finished(stop);
    // The caller may have given up while this task waited for a blocking thread.
    if stop.flag.load(Ordering::SeqCst) {
        return Err(JobError::Cancelled);
    }
    let flag = Arc::clone(&stop.flag);
    conn.progress_handler(
        PROGRESS_OPS,
        Some(move || flag.load(Ordering::Relaxed) || std::time::Instant::now() >= deadline),
    );
    let result = job(conn);
    conn.progress_handler(0, None::<fn() -> bool>);
    result
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn pool() -> Arc<Pool> {
        let conn = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        Pool::new(vec![conn])
    }

    const ENDLESS: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                           WHERE x < 1000000000) SELECT count(*) FROM c";

    fn count(conn: &mut Connection) -> Result<i64, JobError> {
        conn.query_row(ENDLESS, [], |r| r.get(0))
            .map_err(JobError::Sql)
    }

    #[tokio::test]
    async fn a_dropped_call_stops_the_query_and_returns_the_connection() {
        let pool = pool();
        let ctx = CallContext::new(tokio::time::Instant::now() + Duration::from_secs(60));
        let call = run(&pool, &ctx, "test", count);
        // Dropping the future is what happens when the caller goes away.
        let dropped = tokio::time::timeout(Duration::from_millis(100), call).await;
        assert!(dropped.is_err());
        let started = std::time::Instant::now();
        let one = run(&pool, &ctx, "test", |c| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map_err(JobError::Sql)
        })
        .await;
        assert!(matches!(one, Ok(1)));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
