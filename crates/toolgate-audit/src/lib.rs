//! # toolgate-audit: what every agent did, tamper-evident
//!
//! One [`Record`] per call on every transport (handed over as an [`Entry`]): time,
//! key name, tool, transport, outcome code, duration, trace id, and the SHA-256 of
//! the arguments (the arguments themselves only for tools that opt in, with fields
//! redacted).
//!
//! - [`record`]: the record and its hash chain: each record's `hash` is
//!   `SHA-256(prev_hash ‖ canonical record)`, so changing, removing or reordering a
//!   stored record breaks every hash after it.
//! - [`store`]: where the log lives ([`Location`]), listing with filters, and chain
//!   verification; [`sqlite`] (default, WAL mode: a crash never leaves a torn
//!   database) and [`postgres`] (one chain even with several writing replicas).
//! - [`writer`]: [`AuditLog`], the bounded queue and the writer thread that commits
//!   records in batches. A full queue makes the caller wait (counted and logged),
//!   never drops; with [`Durability::Sync`] the caller waits for the commit.

mod pg_tls;
pub mod postgres;
pub mod record;
pub mod spool;
pub mod sqlite;
pub mod store;
pub mod writer;

pub use record::{Caller, Chain, Entry, Record, StoredRecord};
pub use store::{Filter, Location, OpenOptions, Store, StoreError, Verified};
pub use writer::{AuditLog, AuditUnavailable, Durability, WriterOptions};
