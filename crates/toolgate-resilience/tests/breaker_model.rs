//! The breaker against a reference model, over random sequences of outcomes.
//!
//! The model is written for clarity, not speed: it keeps every outcome of the closed
//! phase and looks at the last `window` of them each time.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;
use toolgate_resilience::breaker::{BreakerPolicy, BreakerState, CircuitBreaker, Record};

#[derive(Debug, Clone)]
struct Call {
    failed: bool,
    slow: bool,
    cancelled: bool,
}

#[derive(Debug, Clone)]
struct Step {
    /// Calls acquired together, then recorded in order.
    calls: Vec<Call>,
    advance_ms: u64,
}

#[derive(Debug, PartialEq, Clone, Copy)]
enum MState {
    Closed,
    Open { until_ms: u64 },
    HalfOpen,
}

struct Model {
    p: BreakerPolicy,
    state: MState,
    closed_history: Vec<(bool, bool)>,
    probes_issued: usize,
    probe_results: Vec<(bool, bool)>,
}

impl Model {
    fn rates_over(&self, s: &[(bool, bool)]) -> bool {
        let n = s.len() as f64;
        let f = s.iter().filter(|x| x.0).count() as f64;
        let sl = s.iter().filter(|x| x.1).count() as f64;
        n > 0.0 && (f / n >= self.p.failure_rate || sl / n >= self.p.slow_call_rate)
    }

    fn acquire(&mut self, now_ms: u64) -> Option<bool> {
        if let MState::Open { until_ms } = self.state {
            if now_ms < until_ms {
                return None;
            }
            self.state = MState::HalfOpen;
            self.probes_issued = 0;
            self.probe_results.clear();
        }
        match self.state {
            MState::Closed => Some(false),
            MState::HalfOpen if self.probes_issued < self.p.half_open_probes => {
                self.probes_issued += 1;
                Some(true)
            }
            _ => None,
        }
    }

    fn record(
        &mut self,
        probe: bool,
        state_at_acquire: (MState, usize),
        sample: Option<(bool, bool)>,
        now_ms: u64,
        epoch: usize,
    ) {
        // A ticket from an earlier phase is ignored.
        if state_at_acquire.1 != epoch {
            return;
        }
        let open_ms = self.p.open_duration.as_millis() as u64;
        match self.state {
            MState::Closed if !probe => {
                let Some(s) = sample else { return };
                self.closed_history.push(s);
                let start = self.closed_history.len().saturating_sub(self.p.window);
                let window = self.closed_history[start..].to_vec();
                if window.len() >= self.p.min_calls && self.rates_over(&window) {
                    self.state = MState::Open {
                        until_ms: now_ms + open_ms,
                    };
                }
            }
            MState::HalfOpen if probe => {
                match sample {
                    None => self.probes_issued -= 1,
                    Some(s) => self.probe_results.push(s),
                }
                if self.probe_results.len() >= self.p.half_open_probes {
                    let results = self.probe_results.clone();
                    if self.rates_over(&results) {
                        self.state = MState::Open {
                            until_ms: now_ms + open_ms,
                        };
                    } else {
                        self.state = MState::Closed;
                        self.closed_history.clear();
                    }
                }
            }
            _ => {}
        }
    }
}

fn call() -> impl Strategy<Value = Call> {
    (
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(failed, slow, cancelled)| Call {
            failed,
            slow,
            cancelled,
        })
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop::collection::vec(call(), 1..6),
        prop_oneof![Just(0u64), 1u64..50, 90u64..200],
    )
        .prop_map(|(calls, advance_ms)| Step { calls, advance_ms })
}

/// Transitions counted by the model, to tell a state change from a ticket's epoch.
fn epoch_of(state: MState, counter: &mut usize, last: &mut MState) -> usize {
    if std::mem::discriminant(&state) != std::mem::discriminant(last) || state != *last {
        *counter += 1;
        *last = state;
    }
    *counter
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_breaker_matches_the_model(steps in prop::collection::vec(step(), 1..60), min_calls in 1usize..8, probes in 1usize..4) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(async move {
            let policy = BreakerPolicy {
                window: 8,
                min_calls,
                failure_rate: 0.5,
                slow_call_duration: Duration::from_millis(100),
                slow_call_rate: 0.5,
                open_duration: Duration::from_millis(100),
                half_open_probes: probes,
            };
            let breaker = CircuitBreaker::new(policy);
            let mut model = Model { p: policy, state: MState::Closed, closed_history: vec![], probes_issued: 0, probe_results: vec![] };
            let origin = Instant::now();
            let (mut epoch, mut last) = (0usize, MState::Closed);
            for step in steps {
                let now = Instant::now();
                let now_ms = now.duration_since(origin).as_millis() as u64;
                // Acquire all, then record in order.
                let mut tickets = Vec::new();
                let mut admitted_probes = 0;
                for c in &step.calls {
                    let real = breaker.try_acquire(now);
                    let expected = model.acquire(now_ms);
                    let e = epoch_of(model.state, &mut epoch, &mut last);
                    prop_assert_eq!(real.is_ok(), expected.is_some(), "acquire disagrees in {:?}", model.state);
                    if expected == Some(true) {
                        admitted_probes += 1;
                    }
                    if let (Ok(t), Some(probe)) = (real, expected) {
                        tickets.push((t, probe, (model.state, e), c.clone()));
                    }
                }
                prop_assert!(admitted_probes <= probes, "more than K probes admitted");
                for (t, probe, at, c) in tickets {
                    let sample = (!c.cancelled).then_some((c.failed, c.slow));
                    let duration = if c.slow { Duration::from_millis(150) } else { Duration::from_millis(1) };
                    let before_closed = model.state == MState::Closed;
                    let history_len = model.closed_history.len();
                    breaker.record(t, sample.map(|(failed, _)| Record { failed, duration }), now);
                    model.record(probe, at, sample, now_ms, epoch);
                    if before_closed && matches!(model.state, MState::Open { .. }) {
                        prop_assert!(history_len + 1 >= min_calls, "opened before the minimum calls");
                    }
                    epoch_of(model.state, &mut epoch, &mut last);
                }
                let expected_state = match model.state {
                    MState::Closed => BreakerState::Closed,
                    MState::HalfOpen => BreakerState::HalfOpen,
                    MState::Open { until_ms } if now_ms >= until_ms => BreakerState::HalfOpen,
                    MState::Open { .. } => BreakerState::Open,
                };
                prop_assert_eq!(breaker.state(now), expected_state);
                tokio::time::advance(Duration::from_millis(step.advance_ms)).await;
            }
            Ok(())
        })?;
    }
}

#[tokio::test(start_paused = true)]
async fn slow_calls_open_the_breaker_even_when_they_succeed() {
    let b = CircuitBreaker::new(BreakerPolicy {
        window: 4,
        min_calls: 4,
        failure_rate: 1.0,
        slow_call_duration: Duration::from_millis(100),
        slow_call_rate: 0.75,
        open_duration: Duration::from_secs(1),
        half_open_probes: 1,
    });
    for slow in [true, true, false, true] {
        let t = b.try_acquire(Instant::now()).unwrap();
        let d = if slow {
            Duration::from_millis(200)
        } else {
            Duration::from_millis(1)
        };
        b.record(
            t,
            Some(Record {
                failed: false,
                duration: d,
            }),
            Instant::now(),
        );
    }
    assert_eq!(b.state(Instant::now()), BreakerState::Open);
    assert_eq!(
        b.try_acquire(Instant::now()).err(),
        Some(Duration::from_secs(1))
    );
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_k_probes_then_closes_on_success() {
    let b = CircuitBreaker::new(BreakerPolicy {
        min_calls: 2,
        window: 2,
        half_open_probes: 3,
        open_duration: Duration::from_millis(500),
        ..BreakerPolicy::default()
    });
    for _ in 0..2 {
        let t = b.try_acquire(Instant::now()).unwrap();
        b.record(
            t,
            Some(Record {
                failed: true,
                duration: Duration::ZERO,
            }),
            Instant::now(),
        );
    }
    assert_eq!(b.state(Instant::now()), BreakerState::Open);
    tokio::time::advance(Duration::from_millis(500)).await;
    let probes: Vec<_> = (0..5)
        .filter_map(|_| b.try_acquire(Instant::now()).ok())
        .collect();
    assert_eq!(probes.len(), 3);
    for t in probes {
        b.record(
            t,
            Some(Record {
                failed: false,
                duration: Duration::ZERO,
            }),
            Instant::now(),
        );
    }
    assert_eq!(b.state(Instant::now()), BreakerState::Closed);
}
