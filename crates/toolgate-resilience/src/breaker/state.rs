//! The breaker's state machine.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How a breaker judges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerPolicy {
    /// Calls in the sliding window.
    pub window: usize,
    /// Calls that must be in the window before it is judged.
    pub min_calls: usize,
    /// Open when at least this share of the window failed (0.5 = 50 %).
    pub failure_rate: f64,
    /// A call at least this long is slow.
    pub slow_call_duration: Duration,
    /// Open when at least this share of the window was slow (1.0 = only all slow).
    pub slow_call_rate: f64,
    /// How long the breaker stays open.
    pub open_duration: Duration,
    /// Probes admitted while half-open.
    pub half_open_probes: usize,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            window: 20,
            min_calls: 10,
            failure_rate: 0.5,
            slow_call_duration: Duration::from_secs(5),
            slow_call_rate: 1.0,
            open_duration: Duration::from_secs(30),
            half_open_probes: 3,
        }
    }
}

/// The outcome of one call, as the breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The dependency failed (unavailable, 5xx, timed out).
    pub failed: bool,
    /// How long the call took.
    pub duration: Duration,
}

/// The state, as reported to operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are refused.
    Open,
    /// A few probes are let through.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// Permission for one call; hand it back with [`CircuitBreaker::record`].
#[derive(Debug)]
pub struct Ticket {
    generation: u64,
    probe: bool,
}

#[derive(Debug)]
enum Phase {
    Closed {
        window: VecDeque<(bool, bool)>,
    },
    Open {
        until: Instant,
    },
    HalfOpen {
        issued: usize,
        results: Vec<(bool, bool)>,
    },
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// Bumped at every transition, so late outcomes can be recognised.
    generation: u64,
}

/// A circuit breaker.
#[derive(Debug)]
pub struct CircuitBreaker {
    policy: BreakerPolicy,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    /// A closed breaker.
    #[must_use]
    pub fn new(policy: BreakerPolicy) -> Self {
        let policy = BreakerPolicy {
            window: policy.window.max(1),
            min_calls: policy.min_calls.max(1),
            half_open_probes: policy.half_open_probes.max(1),
            ..policy
        };
        Self {
            policy,
            inner: Mutex::new(Inner {
                phase: Phase::Closed {
                    window: VecDeque::new(),
                },
                generation: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The state at `now`.
    #[must_use]
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.lock().phase {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { until } if now >= until => BreakerState::HalfOpen,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// While open, how long until the breaker probes again; `None` otherwise.
    #[must_use]
    pub fn retry_after(&self, now: Instant) -> Option<Duration> {
        match self.lock().phase {
            Phase::Open { until } if now < until => Some(until - now),
            _ => None,
        }
    }

    /// Ask to make a call at `now`.
    ///
    /// # Errors
    /// Refused: how long until the breaker may admit a call.
    pub fn try_acquire(&self, now: Instant) -> Result<Ticket, Duration> {
        let mut inner = self.lock();
        if let Phase::Open { until } = inner.phase {
            if now < until {
                return Err(until - now);
            }
            inner.generation += 1;
            inner.phase = Phase::HalfOpen {
                issued: 0,
                results: Vec::new(),
            };
        }
        let generation = inner.generation;
        match &mut inner.phase {
            Phase::Closed { .. } => Ok(Ticket {
                generation,
                probe: false,
            }),
            Phase::HalfOpen { issued, .. } if *issued < self.policy.half_open_probes => {
                *issued += 1;
                Ok(Ticket {
                    generation,
                    probe: true,
                })
            }
            // All probes are out: callers wait for their verdict.
            _ => Err(self.policy.open_duration.min(Duration::from_secs(1))),
        }
    }

    /// Report the outcome of a ticket's call; `None` means it ended without one
    /// (cancelled), which counts neither way.
    pub fn record(&self, ticket: Ticket, record: Option<Record>, now: Instant) {
        let mut inner = self.lock();
        if ticket.generation != inner.generation {
            return;
        }
        let sample = record.map(|r| (r.failed, r.duration >= self.policy.slow_call_duration));
        let policy = self.policy;
        let verdict = match &mut inner.phase {
            Phase::Closed { window } => {
                let Some(s) = sample else { return };
                window.push_back(s);
                while window.len() > policy.window {
                    window.pop_front();
                }
                (window.len() >= policy.min_calls && over(&policy, window.iter())).then_some(true)
            }
            Phase::HalfOpen { issued, results } if ticket.probe => {
                match sample {
                    None => *issued = issued.saturating_sub(1),
                    Some(s) => results.push(s),
                }
                (results.len() >= policy.half_open_probes).then(|| over(&policy, results.iter()))
            }
            _ => None,
        };
        match verdict {
            Some(true) => {
                inner.generation += 1;
                inner.phase = Phase::Open {
                    until: now + policy.open_duration,
                };
            }
            Some(false) => {
                inner.generation += 1;
                inner.phase = Phase::Closed {
                    window: VecDeque::new(),
                };
            }
            None => {}
        }
    }
}

/// Whether the samples reach a threshold.
fn over<'a>(policy: &BreakerPolicy, samples: impl Iterator<Item = &'a (bool, bool)>) -> bool {
    let (mut n, mut failed, mut slow) = (0u32, 0u32, 0u32);
    for (f, s) in samples {
        n += 1;
        failed += u32::from(*f);
        slow += u32::from(*s);
    }
    if n == 0 {
        return false;
    }
    let rate = |k: u32| f64::from(k) / f64::from(n);
    rate(failed) >= policy.failure_rate || rate(slow) >= policy.slow_call_rate
}
