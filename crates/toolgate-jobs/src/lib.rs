//! # toolgate-jobs: durable jobs and approvals
//!
//! A job is one tool call that outlives its request: created by a caller, run later
//! by one replica, its outcome kept for a while. This crate is the store: a table of
//! jobs in SQLite (the default, embedded) or PostgreSQL (shared by replicas), and the
//! state changes every replica makes on it, each one a single conditional statement
//! so that two replicas can never both win:
//!
//! - [`Store::claim`] takes queued jobs with a lease (`FOR UPDATE SKIP LOCKED` on
//!   PostgreSQL), so each job is run by exactly one replica;
//! - [`Store::renew`] extends the lease while the job runs and tells the runner
//!   whether a cancel was asked for; a lease lost means the runner stops;
//! - [`Store::sweep`] gives back the jobs of a replica that died (an idempotent
//!   tool's job is queued again, any other fails with the reason), times out
//!   approvals, expires results past their TTL and purges old rows.
//!
//! The server (toolgate-server's `jobs` module) runs the jobs, serves them over REST
//! and MCP and decides approvals; nothing here knows about tools or HTTP.

mod model;
pub mod sign;
mod store;

pub use model::{Approval, Decision, Job, JobError, NewJob, Owner, State, now_ms};
pub use store::{Page, Store, StoreError, Swept};
