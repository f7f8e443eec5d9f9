//! A token bucket: `rate` tokens a second up to `burst`; a call takes `n` tokens or
//! learns how long until it could.
//!
//! Hand-written rather than taken from a rate-limit crate so that it runs on tokio's
//! clock (and so is testable with paused time) and takes several tokens at once for a
//! batch, all or nothing.

use std::time::Duration;

use tokio::time::Instant;

/// Rate and burst of a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens held (and so the largest burst).
    pub burst: f64,
}

/// The bucket's state.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    #[must_use]
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        Self {
            limit,
            tokens: limit.burst,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.limit.per_second).min(self.limit.burst);
        self.updated = now;
    }

    /// Take `n` tokens.
    ///
    /// # Errors
    /// How long until `n` tokens are there (`Duration::MAX` if `n` exceeds the burst).
    pub fn try_take(&mut self, n: f64, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= n {
            self.tokens -= n;
            return Ok(());
        }
        if n > self.limit.burst || self.limit.per_second <= 0.0 {
            return Err(Duration::MAX);
        }
        let missing = n - self.tokens;
        // A tiny rate makes the wait too long for a Duration: that is "never".
        Err(Duration::try_from_secs_f64(missing / self.limit.per_second).unwrap_or(Duration::MAX))
    }

    /// How long until `n` tokens are there, without taking any (`None`: they are).
    pub fn wait_for(&mut self, n: f64, now: Instant) -> Option<Duration> {
        self.refill(now);
        if self.tokens >= n {
            return None;
        }
        if self.limit.per_second <= 0.0 {
            return Some(Duration::MAX);
        }
        Some(
            Duration::try_from_secs_f64((n - self.tokens) / self.limit.per_second)
                .unwrap_or(Duration::MAX),
        )
    }

    /// Whether the bucket is full again (an idle bucket that can be forgotten).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.limit.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bursts_then_refills_at_the_rate() {
        let limit = RateLimit {
            per_second: 2.0,
            burst: 3.0,
        };
        let mut b = TokenBucket::new(limit, Instant::now());
        for _ in 0..3 {
            assert!(b.try_take(1.0, Instant::now()).is_ok());
        }
        let wait = b.try_take(1.0, Instant::now()).err();
        assert_eq!(wait, Some(Duration::from_millis(500)));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(b.try_take(1.0, Instant::now()).is_ok());
        assert_eq!(b.try_take(4.0, Instant::now()).err(), Some(Duration::MAX));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(
            b.try_take(3.0, Instant::now()).is_ok(),
            "refills up to the burst"
        );
        assert!(b.try_take(1.0, Instant::now()).is_err());
    }
}
