//! # toolgate-resilience: policies that protect what they wrap
//!
//! Generic building blocks, knowing nothing of tools or HTTP:
//!
//! - [`bulkhead`]: a concurrency limit with a bounded wait queue ([`Bulkhead`]);
//!   callers past the queue are refused at once instead of piling up.
//! - [`deadline`]: how a call's deadline is derived from a maximum and the caller's
//!   wishes ([`deadline::resolve`]).
//!
//! Retries, budgets, circuit breakers and load shedding join here as small state
//! machines of their own.

pub mod bulkhead;
pub mod deadline;

pub use bulkhead::{Bulkhead, BulkheadFull, BulkheadPermit};
