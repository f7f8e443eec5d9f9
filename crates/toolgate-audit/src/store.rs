//! Where the log is kept: a SQLite file (default) or a PostgreSQL table. Both keep
//! the same records and the same chain, and answer the same listing and verification.

use std::path::PathBuf;

use crate::postgres::PgStore;
use crate::record::{Record, StoredRecord};
use crate::sqlite::SqliteStore;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("audit database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("audit database: {0}")]
    Postgres(#[from] postgres::Error),
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
    },
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
    /// Open (or create) the log for writing; `full_sync` asks for commits that
    /// survive power loss, not only a crash.
    ///
    /// # Errors
    /// The database cannot be opened.
    pub fn open(location: &Location, full_sync: bool) -> Result<Self, StoreError> {
        Ok(match location {
            Location::Sqlite(path) => Store::Sqlite(SqliteStore::open(path, full_sync)?),
            Location::Postgres { url, table } => {
                Store::Postgres(PgStore::open(url, table, full_sync)?)
            }
        })
    }

    /// Open an existing log for reading.
    ///
    /// # Errors
    /// The database cannot be opened.
    pub fn open_read_only(location: &Location) -> Result<Self, StoreError> {
        Ok(match location {
            Location::Sqlite(path) => Store::Sqlite(SqliteStore::open_read_only(path)?),
            Location::Postgres { url, table } => Store::Postgres(PgStore::connect(url, table)?),
        })
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
