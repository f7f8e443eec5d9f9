//! Retries: a policy, exponential backoff with full jitter, and a retry budget.
//!
//! The budget is what keeps an outage from turning into a retry storm: every call
//! deposits `ratio` of a retry, every retry withdraws one, over a sliding window, plus
//! a small floor per second so that a quiet tool can still retry at all. While a
//! dependency fails every call, attempts per call therefore stay near `1 + ratio`.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How a tool is retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retries).
    pub max_attempts: u32,
    /// Backoff before the first retry, doubled for each next one.
    pub base_delay: Duration,
    /// The largest backoff.
    pub max_delay: Duration,
    /// Deadline of one attempt, if shorter than what is left of the call's.
    pub attempt_timeout: Option<Duration>,
    /// Retries allowed per call over the window (0.2 = 20 %).
    pub budget_ratio: f64,
    /// Retries allowed per second regardless of traffic.
    pub budget_min_per_second: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            attempt_timeout: None,
            budget_ratio: 0.2,
            budget_min_per_second: 1.0,
        }
    }
}

impl RetryPolicy {
    /// The backoff before retry number `retry` (1 for the first retry): a uniformly
    /// random duration between zero and `min(max_delay, base_delay * 2^(retry-1))`
    /// ("full jitter", which spreads retries of many clients apart).
    #[must_use]
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let ceiling = self.base_delay.saturating_mul(1 << exp).min(self.max_delay);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// Window over which the budget is counted.
const WINDOW: Duration = Duration::from_secs(10);
/// The window is kept as this many slices, so it slides in steps of a second.
const SLICES: usize = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Slice {
    epoch: u64,
    calls: u64,
    retries: u64,
}

/// A per-tool retry budget over a sliding window.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    floor: f64,
    origin: Instant,
    slices: Mutex<[Slice; SLICES]>,
}

impl RetryBudget {
    /// A budget of `ratio` retries per call plus `min_per_second`.
    #[must_use]
    pub fn new(ratio: f64, min_per_second: f64) -> Self {
        Self {
            ratio: ratio.max(0.0),
            floor: min_per_second.max(0.0) * WINDOW.as_secs_f64(),
            origin: Instant::now(),
            slices: Mutex::new([Slice::default(); SLICES]),
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        let slice = WINDOW.as_millis() / SLICES as u128;
        u64::try_from(now.saturating_duration_since(self.origin).as_millis() / slice)
            .unwrap_or(u64::MAX)
    }

    fn with_current<T>(&self, now: Instant, f: impl FnOnce(&mut [Slice; SLICES], usize) -> T) -> T {
        let epoch = self.epoch(now);
        let mut slices = match self.slices.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let i = usize::try_from(epoch % SLICES as u64).unwrap_or(0);
        if slices[i].epoch != epoch {
            slices[i] = Slice {
                epoch,
                ..Slice::default()
            };
        }
        // Slices older than the window no longer count.
        for s in slices.iter_mut() {
            if epoch.saturating_sub(s.epoch) >= SLICES as u64 {
                *s = Slice::default();
            }
        }
        f(&mut slices, i)
    }

    /// Count a call (each call once, however many attempts it makes).
    pub fn record_call(&self, now: Instant) {
        self.with_current(now, |s, i| s[i].calls += 1);
    }

    /// Take one retry from the budget, if there is one.
    #[must_use]
    pub fn try_retry(&self, now: Instant) -> bool {
        let (ratio, floor) = (self.ratio, self.floor);
        self.with_current(now, |s, i| {
            let calls: u64 = s.iter().map(|x| x.calls).sum();
            let retries: u64 = s.iter().map(|x| x.retries).sum();
            #[allow(clippy::cast_precision_loss)] // counts stay far below 2^52
            let allowed = ratio * calls as f64 + floor;
            #[allow(clippy::cast_precision_loss)]
            let ok = (retries as f64) + 1.0 <= allowed;
            if ok {
                s[i].retries += 1;
            }
            ok
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_under_an_exponential_ceiling() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            ..RetryPolicy::default()
        };
        for _ in 0..200 {
            assert!(p.backoff(1) <= Duration::from_millis(100));
            assert!(p.backoff(2) <= Duration::from_millis(200));
            assert!(p.backoff(3) <= Duration::from_millis(350));
            assert!(p.backoff(40) <= Duration::from_millis(350));
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| p.backoff(3)).collect();
        assert!(spread.len() > 10, "full jitter spreads delays");
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_holds_retries_near_the_ratio() {
        let b = RetryBudget::new(0.2, 0.0);
        let mut retries = 0;
        for _ in 0..1000 {
            b.record_call(Instant::now());
            if b.try_retry(Instant::now()) {
                retries += 1;
            }
            tokio::time::advance(Duration::from_millis(5)).await;
        }
        assert!((150..=210).contains(&retries), "{retries}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_allows_a_few_retries_without_traffic_and_slides() {
        let b = RetryBudget::new(0.2, 1.0);
        let granted = (0..50).filter(|_| b.try_retry(Instant::now())).count();
        assert_eq!(granted, 10, "1/s over a 10 s window");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(b.try_retry(Instant::now()), "old retries leave the window");
    }
}
