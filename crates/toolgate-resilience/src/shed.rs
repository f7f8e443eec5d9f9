//! Load shedding: a global limit on requests in flight. Past it a request is refused
//! at once, before any of its work (reading the body included) is done. A share of the
//! limit can be kept for privileged callers (operators), so that ordinary callers
//! saturating the rest never lock them out.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The in-flight counter and its limit.
#[derive(Debug)]
pub struct Shedder {
    limit: usize,
    reserve: usize,
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
        Self::with_reserve(limit, 0)
    }

    /// At most `limit` requests in flight, of which `reserve_percent` (at least one
    /// when above 0, never all, at most 90 %) only privileged callers may take.
    #[must_use]
    pub fn with_reserve(limit: usize, reserve_percent: u8) -> Self {
        let reserve = if reserve_percent == 0 || limit < 2 {
            0
        } else {
            (limit * usize::from(reserve_percent.min(90)) / 100).clamp(1, limit - 1)
        };
        Self {
            limit,
            reserve,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Admit a request up to the whole limit, or `None` when it is reached.
    #[must_use]
    pub fn try_admit(&self) -> Option<Admitted> {
        self.try_admit_as(true)
    }

    /// Admit a request; an unprivileged one only below the reserve.
    #[must_use]
    pub fn try_admit_as(&self, privileged: bool) -> Option<Admitted> {
        let limit = if privileged {
            self.limit
        } else {
            self.limit - self.reserve
        };
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Admitted(Arc::clone(&self.in_flight)))
    }

    /// The whole limit.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.limit
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

    #[test]
    fn the_reserve_is_for_privileged_callers_only() {
        let s = Shedder::with_reserve(10, 20);
        let held: Vec<_> = (0..9).filter_map(|_| s.try_admit_as(false)).collect();
        assert_eq!(held.len(), 8);
        let p1 = s.try_admit_as(true);
        let p2 = s.try_admit_as(true);
        assert!(p1.is_some() && p2.is_some());
        assert!(s.try_admit_as(true).is_none());
        assert_eq!(Shedder::with_reserve(1, 50).reserve, 0);
        assert_eq!(Shedder::with_reserve(100, 0).reserve, 0);
        assert_eq!(Shedder::with_reserve(3, 10).reserve, 1);
    }
}
