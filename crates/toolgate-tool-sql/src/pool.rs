//! A small connection pool: a semaphore counts idle connections, a mutex-guarded
//! vector holds them.
//!
//! Hand-written on purpose: every connection carries its own authorizer and progress
//! handler and we take its interrupt handle per call, which generic pools hide, and the
//! pool crates pin a different rusqlite than the workspace's. The std mutex is only
//! held for a push or a pop, never across an `.await`.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections of one kind (read-only or read-write) for one source.
pub(crate) struct Pool {
    /// One permit per idle connection.
    permits: Arc<Semaphore>,
    /// The idle connections; never longer than the permits available plus in flight.
    idle: Mutex<Vec<Connection>>,
}

/// Why no connection could be taken. Both are internal: the caller sees a generic error.
#[derive(Debug)]
pub(crate) enum PoolError {
    /// A thread panicked while holding the pool's lock.
    Poisoned,
    /// A permit was granted but no connection was there, or the semaphore closed.
    Broken,
}

impl Pool {
    /// A pool owning `connections`.
    pub(crate) fn new(connections: Vec<Connection>) -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(connections.len())),
            idle: Mutex::new(connections),
        })
    }

    /// Wait for an idle connection. Cancel-safe: dropping the future takes nothing.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<Lease, PoolError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| PoolError::Broken)?;
        let conn = self
            .idle
            .lock()
            .map_err(|_| PoolError::Poisoned)?
            .pop()
            .ok_or(PoolError::Broken)?;
        Ok(Lease {
            pool: Arc::clone(self),
            conn: Some(conn),
            _permit: permit,
        })
    }
}

/// A connection taken from a [`Pool`]; dropping the lease puts it back, then frees
/// its permit, so a waiter always finds a connection.
pub(crate) struct Lease {
    pool: Arc<Pool>,
    conn: Option<Connection>,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    /// The connection.
    pub(crate) fn conn(&mut self) -> Option<&mut Connection> {
        self.conn.as_mut()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // A poisoned vector is still a valid vector (push and pop cannot leave it
            // half-done), so the connection goes back either way.
            let mut idle = match self.pool.idle.lock() {
                Ok(idle) => idle,
                Err(poisoned) => poisoned.into_inner(),
            };
            idle.push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn leases_return_their_connection() {
        let conns = (0..2)
            .map(|_| Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let pool = Pool::new(conns);
        let a = pool.acquire().await.unwrap_or_else(|e| panic!("{e:?}"));
        let b = pool.acquire().await.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(pool.permits.available_permits(), 0);
        drop(a);
        drop(b);
        assert_eq!(pool.permits.available_permits(), 2);
        let idle = pool.idle.lock().map(|v| v.len()).unwrap_or(0);
        assert_eq!(idle, 2);
    }
}
