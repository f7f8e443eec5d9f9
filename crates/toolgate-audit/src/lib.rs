//! # toolgate-audit: what every agent did, tamper-evident
//!
//! One [`Record`] per call on every transport: time, key name, tool, transport,
//! outcome code, duration, trace id, and the SHA-256 of the arguments (the arguments
//! themselves only for tools that opt in, with fields redacted).
//!
//! - [`record`]: the record and its hash chain: each record's `hash` is
//!   `SHA-256(prev_hash ‖ canonical record)`, so changing, removing or reordering a
//!   stored record breaks every hash after it.
//! - [`store`]: SQLite storage in WAL mode (a crash never leaves a torn database),
//!   listing with filters, and chain verification.
//! - [`writer`]: [`AuditLog`], the bounded queue and the writer thread that commits
//!   records in batches. A full queue makes the caller wait (counted and logged),
//!   never drops; with [`Durability::Sync`] the caller waits for the commit.

pub mod record;
pub mod store;
pub mod writer;

pub use record::{Record, StoredRecord};
pub use store::{Filter, Store, StoreError, Verified};
pub use writer::{AuditLog, Durability};
