//! Load shedding: a global limit on requests in flight. Past it a request is refused
//! at once, before any of its work (reading the body included) is done.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The in-flight counter and its limit.
#[derive(Debug)]
pub struct Shedder {
    limit: usize,
    in_flight: Arc<AtomicUsize>,
}

/// Held while a request is admitted.
#[derive(Debug)]
pub struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shedder {
    /// At most `limit` requests in flight.
    #[must_use]
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Admit a request, or `None` when the limit is reached.
    #[must_use]
    pub fn try_admit(&self) -> Option<Admitted> {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Admitted(Arc::clone(&self.in_flight)))
    }

    /// Requests in flight.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit() {
        let s = Shedder::new(2);
        let a = s.try_admit();
        let b = s.try_admit();
        assert!(a.is_some() && b.is_some());
        assert!(s.try_admit().is_none());
        drop(a);
        assert!(s.try_admit().is_some());
    }
}
