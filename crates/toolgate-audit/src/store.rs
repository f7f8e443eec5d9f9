//! Where the log is kept: a SQLite file (default) or a PostgreSQL table. Both keep
//! the same records and the same chain, and answer the same listing and verification.

use std::path::PathBuf;
use std::time::Duration;

use crate::postgres::PgStore;
use crate::record::{Chain, Record, StoredRecord};
use crate::sqlite::SqliteStore;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("audit database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("audit database: {}", with_cause(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// PostgreSQL did not answer in time (the connection is given up).
    #[error("audit database: no answer within {0:?} ({1})")]
    Timeout(Duration, &'static str),
    /// The log was written with another chain (keyed, unkeyed, another key).
    #[error("audit chain: {0}")]
    Chain(String),
    /// Another process writes the log.
    #[error("audit log: {0}")]
    Locked(String),
    /// The configuration cannot work (a bad table name).
    #[error("audit configuration: {0}")]
    Config(String),
    /// A stored record does not match the chain.
    #[error("the audit chain is broken at record {seq}: {reason}")]
    Broken {
        /// The first record that fails.
        seq: i64,
        /// What does not match.
        reason: String,
        /// The last record that verified: its sequence number and hash (none when the
        /// first record fails).
        last_good: Option<(i64, String)>,
    },
}

/// How a store is opened.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Commits that survive power loss, not only a crash.
    pub full_sync: bool,
    /// How the chain is hashed.
    pub chain: Chain,
    /// PostgreSQL: how long connecting may take.
    pub connect_timeout: Duration,
    /// PostgreSQL: how long one statement or commit may take before the connection is
    /// given up (a hung or black-holed server). SQLite: how long a write waits for a
    /// lock held by another process before the store counts as failed.
    pub statement_timeout: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            full_sync: false,
            chain: Chain::unkeyed(),
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

/// The client's error and its cause (which its own text leaves out: a TLS
/// handshake failure says only that).
fn with_cause(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Which records to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Key name.
    pub key: Option<String>,
    /// Tool name.
    pub tool: Option<String>,
    /// Outcome code (`ok`, `timeout`, ...).
    pub outcome: Option<String>,
    /// From this time (RFC 3339, inclusive).
    pub since: Option<String>,
    /// Before this time (RFC 3339, exclusive).
    pub until: Option<String>,
    /// At most this many (the newest are kept when limited).
    pub limit: Option<u32>,
}

/// A verified chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Records checked.
    pub count: u64,
    /// The sequence number of the last record (0 for an empty log).
    pub last_seq: i64,
    /// The hash of the last record.
    pub last_hash: String,
}

/// Where the log lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL table.
    Postgres {
        /// Connection URL (`postgres://user@host:port/db`).
        url: String,
        /// Table name.
        table: String,
    },
}

/// An open log.
pub enum Store {
    /// SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

impl Store {
    /// Open (or create) the log for writing.
    ///
    /// # Errors
    /// The database cannot be opened, another process writes it (SQLite), or it was
    /// written with another chain.
    pub fn open(location: &Location, options: &OpenOptions) -> Result<Self, StoreError> {
        Ok(match location {
            Location::Sqlite(path) => Store::Sqlite(SqliteStore::open(path, options)?),
            Location::Postgres { url, table } => {
                Store::Postgres(PgStore::open(url, table, options)?)
            }
        })
    }

    /// Open an existing log for reading (its chain as `options` say).
    ///
    /// # Errors
    /// The database cannot be opened.
    pub fn open_read_only(location: &Location, options: &OpenOptions) -> Result<Self, StoreError> {
        Ok(match location {
            Location::Sqlite(path) => {
                Store::Sqlite(SqliteStore::open_read_only(path, options.chain.clone())?)
            }
            Location::Postgres { url, table } => {
                Store::Postgres(PgStore::connect(url, table, options)?)
            }
        })
    }

    /// The newest record's sequence number and hash, if any.
    ///
    /// # Errors
    /// The database failed.
    pub fn head(&mut self) -> Result<Option<(i64, String)>, StoreError> {
        match self {
            Store::Sqlite(s) => s.head(),
            Store::Postgres(s) => s.head(),
        }
    }

    /// The record at `seq`, if there is one.
    ///
    /// # Errors
    /// The database failed.
    pub fn get(&mut self, seq: i64) -> Result<Option<StoredRecord>, StoreError> {
        match self {
            Store::Sqlite(s) => s.get(seq),
            Store::Postgres(s) => s.get(seq),
        }
    }

    /// Append records in one transaction, extending the chain.
    ///
    /// # Errors
    /// Nothing of the batch was stored.
    pub fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.append(records),
            Store::Postgres(s) => s.append(records),
        }
    }

    /// After a failed [`Store::append`]: the hash the batch would have left at the
    /// head, when its commit may have happened unseen (PostgreSQL; a local SQLite
    /// commit is never in doubt).
    pub fn take_unacknowledged(&mut self) -> Option<String> {
        match self {
            Store::Sqlite(_) => None,
            Store::Postgres(s) => s.take_unacknowledged(),
        }
    }

    /// Whether the database answers.
    ///
    /// # Errors
    /// It does not.
    pub fn check(&mut self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.check(),
            Store::Postgres(s) => s.check(),
        }
    }

    /// Records matching `filter`, oldest first.
    ///
    /// # Errors
    /// The database failed.
    pub fn list(&mut self, filter: &Filter) -> Result<Vec<StoredRecord>, StoreError> {
        match self {
            Store::Sqlite(s) => s.list(filter),
            Store::Postgres(s) => s.list(filter),
        }
    }

    /// Recompute the chain over every record.
    ///
    /// # Errors
    /// [`StoreError::Broken`] at the first record that does not match.
    pub fn verify(&mut self) -> Result<Verified, StoreError> {
        match self {
            Store::Sqlite(s) => s.verify(),
            Store::Postgres(s) => s.verify(),
        }
    }
}
