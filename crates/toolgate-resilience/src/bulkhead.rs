//! A bulkhead: at most `limit` holders at once and at most `max_queue` waiters.
//!
//! States of one caller: admitted at once (a slot was free) → queued (no slot, the
//! queue has room) → admitted; or refused (no slot and the queue is full). The
//! refusal is immediate, so overload turns into fast `429`s instead of latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A concurrency limit with a bounded queue.
#[derive(Debug)]
pub struct Bulkhead {
    slots: Arc<Semaphore>,
    limit: usize,
    waiting: AtomicUsize,
    max_queue: usize,
}

/// The bulkhead is at its limit and its queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("all {limit} slots are busy and {max_queue} callers are already waiting")]
pub struct BulkheadFull {
    /// The concurrency limit.
    pub limit: usize,
    /// The queue bound.
    pub max_queue: usize,
}

/// A held slot; dropping it frees the slot.
#[derive(Debug)]
pub struct BulkheadPermit {
    _permit: OwnedSemaphorePermit,
}

/// Decrements the waiter count however the wait ends (admitted, or the waiting
/// future dropped because the caller's deadline passed).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Bulkhead {
    /// A bulkhead admitting `limit` (at least 1) holders and `max_queue` waiters.
    #[must_use]
    pub fn new(limit: usize, max_queue: usize) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
            waiting: AtomicUsize::new(0),
            max_queue,
        }
    }

    /// Take a slot, waiting in the queue if there is room.
    ///
    /// Cancel-safe: dropping the future leaves the queue.
    ///
    /// # Errors
    /// [`BulkheadFull`] at once when no slot is free and the queue is full.
    pub async fn acquire(&self) -> Result<BulkheadPermit, BulkheadFull> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(BulkheadPermit { _permit: permit });
        }
        let full = BulkheadFull {
            limit: self.limit,
            max_queue: self.max_queue,
        };
        let claimed = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w < self.max_queue).then_some(w + 1)
            });
        if claimed.is_err() {
            return Err(full);
        }
        let _waiting = Waiting(&self.waiting);
        // The semaphore is never closed, so acquiring only fails if it were.
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| full)?;
        Ok(BulkheadPermit { _permit: permit })
    }

    /// Slots in use.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.limit - self.slots.available_permits()
    }

    /// Callers waiting for a slot.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn admits_queues_then_refuses() {
        let b = Arc::new(Bulkhead::new(1, 1));
        let held = b.acquire().await.unwrap();
        assert_eq!(b.in_flight(), 1);

        let b2 = Arc::clone(&b);
        let waiter = tokio::spawn(async move { b2.acquire().await.map(|_| ()) });
        tokio::task::yield_now().await;
        assert_eq!(b.queued(), 1);

        assert_eq!(
            b.acquire().await.err(),
            Some(BulkheadFull {
                limit: 1,
                max_queue: 1
            })
        );

        drop(held);
        assert!(waiter.await.unwrap().is_ok());
        assert_eq!(b.queued(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_gives_up_leaves_the_queue() {
        let b = Bulkhead::new(1, 1);
        let _held = b.acquire().await.unwrap();
        let r = tokio::time::timeout(Duration::from_millis(10), b.acquire()).await;
        assert!(r.is_err());
        assert_eq!(b.queued(), 0);
    }
}
