//! [`Lease`]: a pooled connection that goes back to the pool only when its call
//! ended cleanly. Otherwise it is closed, and its statement is stopped on the server.

use std::pin::Pin;
use std::sync::Arc;

use sqlx::Database;
use sqlx::pool::PoolConnection;

use super::KILL_TIMEOUT;

/// Stops whatever the server connection with this id is running. Runs on a control
/// connection of its own, so it never waits behind the calls it is meant to stop.
pub(crate) type Killer = Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A connection on loan to one call.
pub(crate) struct Lease<DB: Database> {
    conn: PoolConnection<DB>,
    /// The server's id for the connection (PostgreSQL backend pid, MySQL connection
    /// id), once the setup query told us.
    server_id: Option<u64>,
    /// The transaction ended and no result is pending: safe to reuse.
    clean: bool,
    kill: Killer,
}

impl<DB: Database> Lease<DB> {
    pub(crate) fn new(conn: PoolConnection<DB>, kill: Killer) -> Self {
        Self {
            conn,
            server_id: None,
            clean: false,
            kill,
        }
    }

    /// The connection, to run queries on.
    pub(crate) fn conn(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }

    /// Record the server's id for the connection.
    pub(crate) fn set_server_id(&mut self, id: u64) {
        self.server_id = Some(id);
    }

    /// The call ended cleanly: the connection goes back to the pool.
    pub(crate) fn release(mut self) {
        self.clean = true;
    }
}

impl<DB: Database> Drop for Lease<DB> {
    fn drop(&mut self) {
        if self.clean {
            return;
        }
        // Returning it would make the next call wait for whatever is still running.
        self.conn.close_on_drop();
        // The statement may go on after its socket closed (a sleep, a long sort);
        // only the server can stop it. Drop cannot await, so the kill gets a task of
        // its own, bounded by KILL_TIMEOUT; it only fails to run when the runtime is
        // shutting down, which closes every connection anyway.
        if let (Some(id), Ok(runtime)) = (self.server_id, tokio::runtime::Handle::try_current()) {
            let kill = (self.kill)(id);
            runtime.spawn(async move {
                if tokio::time::timeout(KILL_TIMEOUT, kill).await.is_err() {
                    tracing::warn!(id, "stopping an abandoned sql statement timed out");
                }
            });
        }
    }
}
