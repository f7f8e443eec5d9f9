//! A circuit breaker: count-based sliding window, minimum calls before judging,
//! failure-rate and slow-call-rate thresholds, an open period, then a half-open state
//! that admits a fixed number of probes.
//!
//! ```text
//!            rates over the last `window` calls ≥ threshold (and ≥ min_calls seen)
//!   Closed ─────────────────────────────────────────────────────────────▶ Open
//!     ▲                                                                   │ open_duration
//!     │ the K probes are under the thresholds                             ▼
//!     └────────────────────────────── HalfOpen (admits exactly K probes) ─┘
//!                                        │ the K probes are over a threshold
//!                                        └──────────────────────────▶ Open
//! ```
//!
//! Calls refused while open (or past the K probes) never reach the dependency. An
//! outcome that arrives after the state moved on (a slow call from before the breaker
//! opened) is ignored, and a probe that ends without an outcome (cancelled) gives its
//! slot back.

mod state;

pub use state::{BreakerPolicy, BreakerState, CircuitBreaker, Record, Ticket};

/// A ticket that reports "no outcome" if dropped unreported (its call was cancelled),
/// so a half-open probe slot is never lost.
pub struct Attempt<'a> {
    breaker: &'a CircuitBreaker,
    ticket: Option<Ticket>,
}

impl<'a> Attempt<'a> {
    /// Ask `breaker` for permission at `now`.
    ///
    /// # Errors
    /// The breaker is open: how long until it may admit a call again.
    pub fn begin(
        breaker: &'a CircuitBreaker,
        now: tokio::time::Instant,
    ) -> Result<Self, std::time::Duration> {
        breaker.try_acquire(now).map(|ticket| Self {
            breaker,
            ticket: Some(ticket),
        })
    }

    /// Report how the call went.
    pub fn finish(mut self, record: Option<Record>, now: tokio::time::Instant) {
        if let Some(t) = self.ticket.take() {
            self.breaker.record(t, record, now);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.ticket.take() {
            self.breaker.record(t, None, tokio::time::Instant::now());
        }
    }
}
