//! PostgreSQL storage for the audit log.
//!
//! Several replicas may write one table: each batch takes a transaction-scoped
//! advisory lock, reads the last hash inside the transaction and appends after it,
//! so the chain stays one chain whatever the interleaving. Sequence numbers may have
//! gaps (a rolled-back batch consumes them), so verification follows the chain of
//! hashes, which detects a removed or changed record just the same.

use postgres::{Client, NoTls};

use crate::record::{GENESIS, Record, StoredRecord};
use crate::store::{Filter, StoreError, Verified};

/// Advisory lock key shared by every writer of a table (hashed with the name).
const LOCK_BASE: i64 = 0x746f_6f6c_6761_7465; // "toolgate"

/// The audit log in a PostgreSQL table.
pub struct PgStore {
    client: Client,
    table: String,
    lock_key: i64,
}

fn valid_table(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

impl PgStore {
    /// Connect without creating anything.
    ///
    /// # Errors
    /// The table name is invalid or the server cannot be reached.
    pub fn connect(url: &str, table: &str) -> Result<Self, StoreError> {
        if !valid_table(table) {
            return Err(StoreError::Config(format!(
                "{table:?} is not a valid table name"
            )));
        }
        let client = Client::connect(url, NoTls)?;
        let lock_key = table.bytes().fold(LOCK_BASE, |h, b| {
            h.wrapping_mul(31).wrapping_add(i64::from(b))
        });
        Ok(Self {
            client,
            table: table.to_owned(),
            lock_key,
        })
    }

    /// Connect and create the table if needed. Without `full_sync`, commits do not
    /// wait for the WAL flush (`synchronous_commit = off`); a crash of PostgreSQL
    /// itself may then lose the last moments, never tear a record.
    ///
    /// # Errors
    /// The server cannot be reached or the table cannot be created.
    pub fn open(url: &str, table: &str, full_sync: bool) -> Result<Self, StoreError> {
        let mut store = Self::connect(url, table)?;
        let t = &store.table;
        store.client.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {t} (
                seq BIGSERIAL PRIMARY KEY, ts TEXT NOT NULL, key TEXT NOT NULL, tool TEXT NOT NULL,
                transport TEXT NOT NULL, outcome TEXT NOT NULL, duration_ms BIGINT NOT NULL,
                trace_id TEXT NOT NULL, args_sha256 TEXT NOT NULL, arguments TEXT,
                prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS {t}_ts ON {t} (ts);
             CREATE INDEX IF NOT EXISTS {t}_key ON {t} (key, ts);"
        ))?;
        if !full_sync {
            store.client.batch_execute("SET synchronous_commit = off")?;
        }
        Ok(store)
    }

    /// Whether the server answers (`SELECT 1`).
    ///
    /// # Errors
    /// It does not.
    pub fn check(&mut self) -> Result<(), StoreError> {
        self.client.simple_query("SELECT 1")?;
        Ok(())
    }

    /// Append records in one transaction after the current last record.
    ///
    /// # Errors
    /// Nothing of the batch was stored.
    pub fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        let table = self.table.clone();
        let mut tx = self.client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&self.lock_key])?;
        let mut prev: String = tx
            .query_opt(
                &format!("SELECT hash FROM {table} ORDER BY seq DESC LIMIT 1"),
                &[],
            )?
            .map_or_else(|| GENESIS.to_owned(), |row| row.get(0));
        let insert = tx.prepare(&format!(
            "INSERT INTO {table} (ts, key, tool, transport, outcome, duration_ms, trace_id, args_sha256, arguments, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))?;
        for r in records {
            let hash = r.chain_hash(&prev);
            let arguments = r.arguments.as_ref().map(ToString::to_string);
            let duration = i64::try_from(r.duration_ms).unwrap_or(i64::MAX);
            tx.execute(
                &insert,
                &[
                    &r.ts,
                    &r.key,
                    &r.tool,
                    &r.transport,
                    &r.outcome,
                    &duration,
                    &r.trace_id,
                    &r.args_sha256,
                    &arguments,
                    &prev,
                    &hash,
                ],
            )?;
            prev = hash;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records matching `filter`, oldest first.
    ///
    /// # Errors
    /// The database failed.
    pub fn list(&mut self, f: &Filter) -> Result<Vec<StoredRecord>, StoreError> {
        let limit = f.limit.map_or(i64::MAX, i64::from);
        let rows = self.client.query(
            &format!(
                "SELECT * FROM (SELECT {COLUMNS} FROM {} WHERE ($1::text IS NULL OR key = $1)
                   AND ($2::text IS NULL OR tool = $2) AND ($3::text IS NULL OR outcome = $3)
                   AND ($4::text IS NULL OR ts >= $4) AND ($5::text IS NULL OR ts < $5)
                   ORDER BY seq DESC LIMIT $6) newest ORDER BY seq",
                self.table
            ),
            &[&f.key, &f.tool, &f.outcome, &f.since, &f.until, &limit],
        )?;
        Ok(rows.iter().map(row_to_record).collect())
    }

    /// Follow the chain over every record.
    ///
    /// # Errors
    /// [`StoreError::Broken`] at the first record that does not match.
    pub fn verify(&mut self) -> Result<Verified, StoreError> {
        let rows = self.client.query(
            &format!("SELECT {COLUMNS} FROM {} ORDER BY seq", self.table),
            &[],
        )?;
        let mut prev = GENESIS.to_owned();
        let mut count = 0u64;
        for row in &rows {
            let stored = row_to_record(row);
            let broken = |reason: &str| StoreError::Broken {
                seq: stored.seq,
                reason: reason.to_owned(),
            };
            if stored.prev_hash != prev {
                return Err(broken(
                    "its prev_hash is not the previous record's hash (a record was removed or changed)",
                ));
            }
            if stored.record.chain_hash(&prev) != stored.hash {
                return Err(broken("its contents do not match its hash"));
            }
            prev = stored.hash;
            count += 1;
        }
        Ok(Verified {
            count,
            last_hash: prev,
        })
    }
}

const COLUMNS: &str = "seq, ts, key, tool, transport, outcome, duration_ms, trace_id, args_sha256, arguments, prev_hash, hash";

fn row_to_record(row: &postgres::Row) -> StoredRecord {
    let arguments: Option<String> = row.get(9);
    let duration: i64 = row.get(6);
    StoredRecord {
        seq: row.get(0),
        record: Record {
            ts: row.get(1),
            key: row.get(2),
            tool: row.get(3),
            transport: row.get(4),
            outcome: row.get(5),
            duration_ms: u64::try_from(duration).unwrap_or(0),
            trace_id: row.get(7),
            args_sha256: row.get(8),
            arguments: arguments.and_then(|a| serde_json::from_str(&a).ok()),
        },
        prev_hash: row.get(10),
        hash: row.get(11),
    }
}
