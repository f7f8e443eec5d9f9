//! # toolgate-resilience: policies that protect what they wrap
//!
//! Generic building blocks, knowing nothing of tools or HTTP, each a small named
//! state machine driven by tokio's clock (so tests run on paused time):
//!
//! - [`bulkhead`]: a concurrency limit with a bounded wait queue ([`Bulkhead`]).
//! - [`deadline`]: a call's deadline from a maximum and the caller's wishes.
//! - [`retry`]: [`RetryPolicy`] (exponential backoff with full jitter) and
//!   [`RetryBudget`] (retries as a share of calls over a sliding window).
//! - [`breaker`]: [`CircuitBreaker`] (closed → open → half-open with K probes).
//! - [`shed`]: [`Shedder`], a global in-flight limit for load shedding.
//! - [`token_bucket`]: [`TokenBucket`], per-key rate limits.

pub mod breaker;
pub mod bulkhead;
pub mod deadline;
pub mod retry;
pub mod shed;
pub mod token_bucket;

pub use breaker::{BreakerPolicy, BreakerState, CircuitBreaker};
pub use bulkhead::{Bulkhead, BulkheadFull, BulkheadPermit};
pub use retry::{RetryBudget, RetryPolicy};
pub use shed::Shedder;
pub use token_bucket::{RateLimit, TokenBucket};
