//! SQLite storage for the audit log (the default).
//!
//! WAL mode: a process killed mid-write leaves the database consistent (the last
//! uncommitted batch is simply absent), and readers (`toolgate audit`) never block
//! the writer. Records are appended in transactions of whole records, so the chain
//! is intact at every commit.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, params};

use crate::record::{Chain, GENESIS, Record, StoredRecord};

use crate::store::{Filter, OpenOptions, StoreError, Verified};

/// The audit log in a SQLite file.
pub struct SqliteStore {
    conn: Connection,
    last_hash: String,
    chain: Chain,
    /// The columns read back: [`COLUMNS`], or for a log opened read-only that was
    /// written before the identity columns existed, [`OLD_COLUMNS`].
    columns: &'static str,
    /// The writer's exclusive lock on `<file>.lock`, held while open for writing.
    _lock: Option<std::fs::File>,
}

/// Every column of a stored record, in [`row_to_record`]'s order.
const COLUMNS: &str = "seq, ts, key, tool, transport, outcome, duration_ms, trace_id, args_sha256, arguments, prev_hash, hash, issuer, subject, client_id";
/// The same for a log without the identity columns (written by an earlier version).
const OLD_COLUMNS: &str = "seq, ts, key, tool, transport, outcome, duration_ms, trace_id, args_sha256, arguments, prev_hash, hash, NULL, NULL, NULL";

/// Whether the `audit` table has the identity columns.
fn has_identity_columns(conn: &Connection) -> Result<bool, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM pragma_table_info('audit') WHERE name = 'issuer'",
        [],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// Add the identity columns to a log written before they existed. The records
/// already there keep NULLs, which is what they hashed as.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    if !has_identity_columns(conn)? {
        conn.execute_batch(
            "ALTER TABLE audit ADD COLUMN issuer TEXT;
             ALTER TABLE audit ADD COLUMN subject TEXT;
             ALTER TABLE audit ADD COLUMN client_id TEXT;",
        )?;
    }
    Ok(())
}

/// Take the writer's lock of the log at `path`: a second process appending to the
/// same file would fork the chain (each continues from the hash it last saw), so it
/// is refused at start. The lock is `flock` on a file of its own, because a second
/// descriptor on the database file itself would release SQLite's own locks when it
/// is closed.
pub(crate) fn writer_lock(path: &Path) -> Result<std::fs::File, StoreError> {
    use std::io::Write as _;
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = std::path::PathBuf::from(name);
    let mut file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .read(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Locked(format!("cannot open {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
            return Err(StoreError::Locked(format!(
                "{} is being written by another process ({}); two writers would fork the chain",
                path.display(),
                if holder.trim().is_empty() {
                    "pid unknown".to_owned()
                } else {
                    format!("pid {}", holder.trim())
                }
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(StoreError::Locked(format!(
                "cannot lock {}: {e}",
                lock_path.display()
            )));
        }
    }
    // The holder's pid, for the message above; the lock is what counts.
    let _ = file.set_len(0);
    let _ = write!(file, "{}", std::process::id());
    Ok(file)
}

/// The chain kind and key fingerprint stored with the log; a log without them
/// (written before keyed chains existed) is plain SHA-256.
fn stored_chain(conn: &Connection) -> Result<Option<(String, String)>, StoreError> {
    let has_meta: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_meta'",
        [],
        |r| r.get(0),
    )?;
    if has_meta == 0 {
        return Ok(None);
    }
    let get = |name: &str| -> Result<Option<String>, StoreError> {
        match conn.query_row(
            "SELECT value FROM audit_meta WHERE name = ?1",
            [name],
            |r| r.get::<_, String>(0),
        ) {
            Ok(v) => Ok(Some(v)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e.into()),
        }
    };
    Ok(get("chain")?.map(|kind| {
        (
            kind,
            get("key_fingerprint").ok().flatten().unwrap_or_default(),
        )
    }))
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    key TEXT NOT NULL,
    tool TEXT NOT NULL,
    transport TEXT NOT NULL,
    outcome TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    trace_id TEXT NOT NULL,
    args_sha256 TEXT NOT NULL,
    arguments TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
DROP INDEX IF EXISTS audit_ts;
CREATE TABLE IF NOT EXISTS audit_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
";
// No index besides the sequence number: every index is paid for on the write path of
// every call (an index on `ts` cost about 15% of the writer's CPU), while listings are
// occasional, and a listing scans from the newest record back.
//
// The three hashes are stored as 32-byte blobs (SQLite keeps a blob as it is in a
// column of any type): half the bytes of hex text, so fewer pages to write and to
// checkpoint per record. Databases written before that hold hex text in the same
// columns; readers accept both, and the chain is computed over hex either way.

impl SqliteStore {
    /// Whether the database answers (`SELECT 1`).
    ///
    /// # Errors
    /// It does not.
    pub fn check(&mut self) -> Result<(), StoreError> {
        self.conn.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    /// Open (or create) the log for writing. `full_sync` makes every commit durable
    /// against power loss (`synchronous = FULL`); otherwise `NORMAL`, which in WAL
    /// mode is durable against a process crash.
    ///
    /// # Errors
    /// The file cannot be opened or is not an audit database.
    pub fn open(path: &Path, options: &OpenOptions) -> Result<Self, StoreError> {
        let full_sync = options.full_sync;
        let lock = writer_lock(path)?;
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            if full_sync { "FULL" } else { "NORMAL" },
        )?;
        // How long a write waits for a lock another process holds on the file
        // before the store counts as failed (and records go to the spool).
        conn.busy_timeout(options.statement_timeout)?;
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
        let last_hash = conn
            .query_row(
                "SELECT hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| hash_column(r, 0),
            )
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(GENESIS.to_owned()),
                other => Err(other),
            })?;
        let chain = options.chain.clone();
        match stored_chain(&conn)? {
            Some((kind, fingerprint)) => chain
                .matches(&kind, &fingerprint)
                .map_err(StoreError::Chain)?,
            None => {
                // A new log takes the configured chain; one with records and no
                // stored kind was written unkeyed.
                if last_hash != GENESIS {
                    chain.matches("sha256", "").map_err(StoreError::Chain)?;
                }
                conn.execute(
                    "INSERT OR REPLACE INTO audit_meta (name, value) VALUES ('chain', ?1), ('key_fingerprint', ?2)",
                    params![chain.kind(), chain.fingerprint()],
                )?;
            }
        }
        Ok(Self {
            conn,
            last_hash,
            chain,
            columns: COLUMNS,
            _lock: Some(lock),
        })
    }

    /// Open an existing log for reading only; `chain` must be the log's.
    ///
    /// # Errors
    /// The file cannot be opened, or `chain` is not the log's.
    pub fn open_read_only(path: &Path, chain: Chain) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        if let Some((kind, fingerprint)) = stored_chain(&conn)? {
            chain
                .matches(&kind, &fingerprint)
                .map_err(StoreError::Chain)?;
        } else {
            chain.matches("sha256", "").map_err(StoreError::Chain)?;
        }
        let columns = if has_identity_columns(&conn)? {
            COLUMNS
        } else {
            OLD_COLUMNS
        };
        Ok(Self {
            conn,
            last_hash: GENESIS.to_owned(),
            chain,
            columns,
            _lock: None,
        })
    }

    /// The newest record's sequence number and hash.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn head(&self) -> Result<Option<(i64, String)>, StoreError> {
        match self.conn.query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, hash_column(r, 1)?)),
        ) {
            Ok(head) => Ok(Some(head)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The record at `seq`.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn get(&self, seq: i64) -> Result<Option<StoredRecord>, StoreError> {
        match self.conn.query_row(
            &format!("SELECT {} FROM audit WHERE seq = ?1", self.columns),
            [seq],
            row_to_record,
        ) {
            Ok(r) => Ok(Some(r)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Append records in one transaction, extending the chain.
    ///
    /// # Errors
    /// SQLite failed; nothing of the batch was stored.
    pub fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let mut prev = self.last_hash.clone();
        let mut prev_raw = [0u8; 32];
        // The stored last hash is ours, so it is hex; a damaged one restarts from zeros
        // here and fails verification, which is what it should do.
        let _ = hex::decode_to_slice(&prev, &mut prev_raw);
        let mut scratch = Vec::with_capacity(512);
        let mut hex_buf = [0u8; 64];
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO audit (ts, key, tool, transport, outcome, duration_ms, trace_id, args_sha256, arguments, prev_hash, hash, issuer, subject, client_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?;
            for r in records {
                let hash = r.chain_digest(&prev, &mut scratch, &self.chain);
                let arguments = r.arguments.as_ref().map(ToString::to_string);
                let duration = i64::try_from(r.duration_ms).unwrap_or(i64::MAX);
                let mut args_raw = [0u8; 32];
                let args: &dyn rusqlite::ToSql =
                    if hex::decode_to_slice(&r.args_sha256, &mut args_raw).is_ok() {
                        &args_raw
                    } else {
                        &r.args_sha256
                    };
                stmt.execute(params![
                    r.ts,
                    r.key,
                    r.tool,
                    r.transport,
                    r.outcome,
                    duration,
                    r.trace_id,
                    args,
                    arguments,
                    prev_raw,
                    hash,
                    r.issuer,
                    r.subject,
                    r.client_id
                ])?;
                prev_raw = hash;
                if hex::encode_to_slice(hash, &mut hex_buf).is_ok()
                    && let Ok(text) = std::str::from_utf8(&hex_buf)
                {
                    prev.clear();
                    prev.push_str(text);
                }
            }
        }
        tx.commit()?;
        self.last_hash = prev;
        Ok(())
    }

    /// Records matching `filter`, oldest first.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn list(&self, filter: &Filter) -> Result<Vec<StoredRecord>, StoreError> {
        let limit = filter.limit.map_or(-1, i64::from);
        let mut stmt = self.conn.prepare(&format!(
            "SELECT * FROM (
                SELECT {}
                FROM audit
                WHERE (?1 IS NULL OR key = ?1) AND (?2 IS NULL OR tool = ?2) AND (?3 IS NULL OR outcome = ?3)
                  AND (?4 IS NULL OR ts >= ?4) AND (?5 IS NULL OR ts < ?5)
                ORDER BY seq DESC LIMIT ?6
             ) ORDER BY seq",
            self.columns
        ))?;
        let rows = stmt.query_map(
            params![
                filter.key,
                filter.tool,
                filter.outcome,
                filter.since,
                filter.until,
                limit
            ],
            row_to_record,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Recompute the chain over every record.
    ///
    /// # Errors
    /// [`StoreError::Broken`] at the first record that does not match.
    pub fn verify(&self) -> Result<Verified, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {} FROM audit ORDER BY seq", self.columns))?;
        let mut rows = stmt.query([])?;
        let mut prev = GENESIS.to_owned();
        let mut count = 0u64;
        let mut expected_seq = 1i64;
        let mut last_seq = 0i64;
        while let Some(row) = rows.next()? {
            let stored = row_to_record(row)?;
            let last_good = (last_seq > 0).then(|| (last_seq, prev.clone()));
            let broken = |reason: &str| StoreError::Broken {
                seq: stored.seq,
                reason: reason.to_owned(),
                last_good: last_good.clone(),
            };
            if stored.seq != expected_seq {
                return Err(broken("a record is missing before this one"));
            }
            if stored.prev_hash != prev {
                return Err(broken("its prev_hash is not the previous record's hash"));
            }
            if stored.record.chain_hash(&prev, &self.chain) != stored.hash {
                return Err(broken("its contents do not match its hash"));
            }
            prev = stored.hash;
            last_seq = stored.seq;
            count += 1;
            expected_seq += 1;
        }
        Ok(Verified {
            count,
            last_seq,
            last_hash: prev,
        })
    }
}

/// A hash column as hex: a 32-byte blob, or hex text (databases written before the
/// blobs).
fn hash_column(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<String> {
    match row.get_ref(i)? {
        ValueRef::Blob(b) => Ok(hex::encode(b)),
        ValueRef::Text(t) => Ok(String::from_utf8_lossy(t).into_owned()),
        other => Err(rusqlite::Error::InvalidColumnType(
            i,
            "hash".to_owned(),
            other.data_type(),
        )),
    }
}

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRecord> {
    let arguments: Option<String> = row.get(9)?;
    let duration: i64 = row.get(6)?;
    Ok(StoredRecord {
        seq: row.get(0)?,
        record: Record {
            ts: row.get(1)?,
            key: row.get(2)?,
            tool: row.get(3)?,
            transport: row.get(4)?,
            outcome: row.get(5)?,
            duration_ms: u64::try_from(duration).unwrap_or(0),
            trace_id: row.get(7)?,
            args_sha256: hash_column(row, 8)?,
            arguments: arguments.and_then(|a| serde_json::from_str(&a).ok()),
            issuer: row.get(12)?,
            subject: row.get(13)?,
            client_id: row.get(14)?,
        },
        prev_hash: hash_column(row, 10)?,
        hash: hash_column(row, 11)?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::record::args_sha256;

    fn rec(i: u64) -> Record {
        Record {
            ts: format!("2026-11-26T00:00:{:02}.000Z", i % 60),
            key: if i.is_multiple_of(2) { "a" } else { "b" }.into(),
            tool: "echo".into(),
            transport: "rest".into(),
            outcome: "ok".into(),
            duration_ms: i,
            trace_id: format!("t{i}"),
            args_sha256: args_sha256(&json!({"i": i})),
            arguments: Some(json!({"i": i})),
            issuer: None,
            subject: None,
            client_id: None,
        }
    }

    #[test]
    fn identity_fields_are_stored_verified_and_tamper_evident() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let mut s = SqliteStore::open(&path, &OpenOptions::default()).unwrap();
        let mut token = rec(2);
        token.issuer = Some("https://idp.example".into());
        token.subject = Some("alice".into());
        token.client_id = Some("agent-app".into());
        s.append(&[rec(1), token.clone(), rec(3)]).unwrap();
        assert_eq!(s.verify().unwrap().count, 3);
        let all = s.list(&Filter::default()).unwrap();
        assert_eq!(all[1].record, token);
        assert_eq!(all[0].record.subject, None);
        s.conn
            .execute("UPDATE audit SET subject = 'bob' WHERE seq = 2", [])
            .unwrap();
        assert!(matches!(s.verify(), Err(StoreError::Broken { seq: 2, .. })));
        s.conn
            .execute(
                "UPDATE audit SET issuer = NULL, subject = NULL, client_id = NULL WHERE seq = 2",
                [],
            )
            .unwrap();
        assert!(matches!(s.verify(), Err(StoreError::Broken { seq: 2, .. })));
    }

    #[test]
    fn appends_lists_and_verifies_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let mut s = SqliteStore::open(&path, &OpenOptions::default()).unwrap();
        s.append(&[rec(1), rec(2)]).unwrap();
        drop(s);
        let mut s = SqliteStore::open(&path, &OpenOptions::default()).unwrap();
        s.append(&[rec(3)]).unwrap();
        assert_eq!(s.verify().unwrap().count, 3);
        let only_a = s
            .list(&Filter {
                key: Some("a".into()),
                ..Filter::default()
            })
            .unwrap();
        assert_eq!(only_a.len(), 1);
        assert_eq!(only_a[0].record.trace_id, "t2");
        let last_two = s
            .list(&Filter {
                limit: Some(2),
                ..Filter::default()
            })
            .unwrap();
        assert_eq!(
            last_two.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![2, 3]
        );
    }

    #[test]
    fn a_log_written_with_hex_text_hashes_continues_with_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        // Two records as earlier versions stored them: hex text in the hash columns,
        // and the index on ts they created.
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute_batch("CREATE INDEX audit_ts ON audit (ts)")
                .unwrap();
            let mut prev = GENESIS.to_owned();
            for i in 1..=2 {
                let r = rec(i);
                let hash = r.chain_hash(&prev, &Chain::unkeyed());
                conn.execute(
                    "INSERT INTO audit (ts, key, tool, transport, outcome, duration_ms, trace_id, args_sha256, arguments, prev_hash, hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![r.ts, r.key, r.tool, r.transport, r.outcome, i64::try_from(r.duration_ms).unwrap(), r.trace_id, r.args_sha256,
                        r.arguments.as_ref().map(ToString::to_string), prev, hash],
                )
                .unwrap();
                prev = hash;
            }
        }
        // Read as it is (no identity columns yet), then migrated by the writer.
        let old = SqliteStore::open_read_only(&path, Chain::unkeyed()).unwrap();
        assert_eq!(old.verify().unwrap().count, 2);
        assert_eq!(old.list(&Filter::default()).unwrap().len(), 2);
        drop(old);
        let mut s = SqliteStore::open(&path, &OpenOptions::default()).unwrap();
        let mut token = rec(3);
        token.subject = Some("alice".into());
        s.append(&[token, rec(4)]).unwrap();
        let verified = s.verify().unwrap();
        assert_eq!(verified.count, 4);
        let all = s.list(&Filter::default()).unwrap();
        assert_eq!(all[2].prev_hash, all[1].hash);
        assert_eq!(all[3].hash, verified.last_hash);
        for r in &all {
            assert_eq!(r.hash.len(), 64);
            assert_eq!(
                r.record.args_sha256,
                args_sha256(&json!({"i": r.record.duration_ms}))
            );
        }
        let kinds: Vec<String> = s
            .conn
            .prepare("SELECT typeof(hash) FROM audit ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(kinds, ["text", "text", "blob", "blob"]);
        let indexes: i64 = s
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 0, "the ts index is dropped on open");
    }

    #[test]
    fn tampering_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let mut s = SqliteStore::open(&path, &OpenOptions::default()).unwrap();
        s.append(&[rec(1), rec(2), rec(3)]).unwrap();
        s.conn
            .execute("UPDATE audit SET outcome = 'tool_error' WHERE seq = 2", [])
            .unwrap();
        match s.verify() {
            Err(StoreError::Broken { seq, .. }) => assert_eq!(seq, 2),
            other => panic!("expected a broken chain, got {other:?}"),
        }
        s.conn
            .execute("UPDATE audit SET outcome = 'ok' WHERE seq = 2", [])
            .unwrap();
        s.conn
            .execute("DELETE FROM audit WHERE seq = 2", [])
            .unwrap();
        assert!(matches!(s.verify(), Err(StoreError::Broken { seq: 3, .. })));
    }
}
