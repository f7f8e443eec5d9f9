//! The spool: records kept on local disk while the audit store is down, in order,
//! until the writer can append them to the store.
//!
//! A SQLite file in WAL mode (a crash keeps every committed batch), one row per
//! record as JSON. Records are chained only when they reach the store, so a drained
//! spool extends the chain exactly as if the store had never been away. A crash after
//! a drained batch is committed to the store but before it is deleted here appends
//! that batch again at the next start (at least once, never lost); the duplicates
//! carry the same trace ids.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use crate::record::Record;
use crate::store::StoreError;

/// A spool file.
pub struct Spool {
    conn: Connection,
    path: PathBuf,
    len: u64,
    /// One writer per spool, as for the log itself.
    _lock: std::fs::File,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.path)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// Open (or create) the spool at `path`.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let lock = crate::sqlite::writer_lock(path)?;
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY, record TEXT NOT NULL)",
        )?;
        let len: i64 = conn.query_row("SELECT count(*) FROM spool", [], |r| r.get(0))?;
        Ok(Self {
            conn,
            path: path.to_owned(),
            len: u64::try_from(len).unwrap_or(0),
            _lock: lock,
        })
    }

    /// Where it is.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records waiting.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing waits.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keep `records` after those already here, in one transaction.
    ///
    /// # Errors
    /// Nothing of the batch was kept.
    pub fn push(&mut self, records: &[Record]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("INSERT INTO spool (record) VALUES (?1)")?;
            for r in records {
                let text = serde_json::to_string(r)
                    .map_err(|e| StoreError::Config(format!("an audit record: {e}")))?;
                stmt.execute(params![text])?;
            }
        }
        tx.commit()?;
        self.len += records.len() as u64;
        Ok(())
    }

    /// The oldest `max` records and the id of the last of them.
    ///
    /// # Errors
    /// The file failed, or holds a record that does not parse.
    pub fn peek(&self, max: usize) -> Result<(Vec<Record>, i64), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, record FROM spool ORDER BY id LIMIT ?1")?;
        let rows = stmt.query_map([i64::try_from(max).unwrap_or(i64::MAX)], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut records = Vec::new();
        let mut last = 0;
        for row in rows {
            let (id, text) = row?;
            let record: Record = serde_json::from_str(&text).map_err(|e| {
                StoreError::Config(format!(
                    "spooled audit record {id} in {} does not parse: {e}",
                    self.path.display()
                ))
            })?;
            records.push(record);
            last = id;
        }
        Ok((records, last))
    }

    /// Forget every record up to `last_id` (they are in the store now).
    ///
    /// # Errors
    /// The file failed.
    pub fn remove_through(&mut self, last_id: i64) -> Result<(), StoreError> {
        let removed = self
            .conn
            .execute("DELETE FROM spool WHERE id <= ?1", [last_id])?;
        self.len = self.len.saturating_sub(removed as u64);
        if self.len == 0 {
            // Give the space back once drained.
            let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rec(i: u64) -> Record {
        Record {
            ts: "2026-12-07T00:00:00.000Z".into(),
            key: "k".into(),
            tool: "echo".into(),
            transport: "rest".into(),
            outcome: "ok".into(),
            duration_ms: i,
            trace_id: format!("t{i}"),
            args_sha256: "00".repeat(32),
            arguments: None,
            issuer: None,
            subject: None,
            client_id: None,
        }
    }

    #[test]
    fn records_come_back_in_order_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.db");
        let mut s = Spool::open(&path).unwrap();
        s.push(&[rec(1), rec(2)]).unwrap();
        s.push(&[rec(3)]).unwrap();
        drop(s);
        let mut s = Spool::open(&path).unwrap();
        assert_eq!(s.len(), 3);
        let (first, last) = s.peek(2).unwrap();
        assert_eq!(first, vec![rec(1), rec(2)]);
        s.remove_through(last).unwrap();
        assert_eq!(s.len(), 1);
        let (rest, last) = s.peek(10).unwrap();
        assert_eq!(rest, vec![rec(3)]);
        s.remove_through(last).unwrap();
        assert!(s.is_empty());
    }
}
