//! [`AuditLog`]: a bounded queue in front of a writer thread.
//!
//! The writer owns the SQLite connection on its own OS thread (SQLite calls block),
//! takes whatever is queued (up to a batch), commits it in one transaction and then
//! acknowledges the callers that wait for it. Nothing is dropped: a full queue makes
//! the caller wait for room, which is counted and logged; a failing commit is
//! retried, then logged as an error naming how many records it loses.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::record::{Entry, Record, Timestamps};
use crate::store::{Location, Store, StoreError};

/// Records committed in one transaction at most.
const MAX_BATCH: usize = 1024;
/// How long the writer lets an async batch fill before committing it. Measured with
/// `cargo bench -p toolgate-audit --bench append` at 40,000 records/s: 5 ms costs
/// about 2.2 µs of CPU per record against about 2.6 µs for 2 ms (each pause is a
/// sleep and a wake-up of this thread, which a virtual machine makes expensive), and
/// longer pauses gain nothing more. A crash loses at most the records of one pause
/// (`durability = "sync"` is for when that matters).
const BATCH_PAUSE: Duration = Duration::from_millis(5);
/// Commit attempts before a batch is given up (and logged as lost).
const COMMIT_ATTEMPTS: u32 = 5;

/// How a call waits for its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Queued; written off the hot path.
    #[default]
    Async,
    /// The caller waits until the record is committed (`synchronous = FULL`).
    Sync,
}

enum Job {
    Record(Box<Entry>, Option<oneshot::Sender<()>>),
    Flush(oneshot::Sender<()>),
    Check(oneshot::Sender<Result<(), String>>),
}

/// How long a readiness check waits for the writer (busy, or stuck on its database).
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The audit log's writing side.
pub struct AuditLog {
    tx: mpsc::Sender<Job>,
    durability: Durability,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Open the log at `location` and start its writer thread.
    ///
    /// # Errors
    /// The database cannot be opened (reported at start, not at the first call).
    pub fn open(
        location: &Location,
        durability: Durability,
        capacity: usize,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        // The store is opened on the writer thread itself: the PostgreSQL client runs
        // its own runtime, which must not start inside the server's.
        let (opened_tx, opened_rx) = std::sync::mpsc::channel();
        let location = location.clone();
        std::thread::Builder::new()
            .name("toolgate-audit".to_owned())
            .spawn(
                move || match Store::open(&location, durability == Durability::Sync) {
                    Ok(store) => {
                        let _ = opened_tx.send(Ok(()));
                        write_loop(store, rx);
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                    }
                },
            )
            .map_err(|e| StoreError::Config(format!("cannot start the audit writer: {e}")))?;
        opened_rx.recv().map_err(|_| {
            StoreError::Config("the audit writer stopped while opening".to_owned())
        })??;
        Ok(Self { tx, durability })
    }

    /// The configured durability.
    #[must_use]
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Log a call; with [`Durability::Sync`], return once it is committed.
    pub async fn append(&self, record: Entry) {
        let (ack, done) = match self.durability {
            Durability::Sync => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
            Durability::Async => (None, None),
        };
        self.enqueue(Job::Record(Box::new(record), ack)).await;
        if let Some(done) = done
            && done.await.is_err()
        {
            tracing::error!(
                "an audit record could not be committed (see the audit writer's errors)"
            );
        }
    }

    /// Log a call without waiting, for callers that cannot (a destructor): the record
    /// is queued now, or when the queue is full by a task that waits for room (counted
    /// and logged like any full queue). Not acknowledged, whatever the durability.
    pub fn append_detached(&self, record: Entry) {
        let Some(job) = self.try_enqueue(Job::Record(Box::new(record), None)) else {
            return;
        };
        let tx = self.tx.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if tx.send(job).await.is_err() {
                        tracing::error!("the audit writer has stopped; a record is lost");
                    }
                });
            }
            // No runtime to wait on: wait here (the writer thread drains the queue).
            Err(_) => {
                if tx.blocking_send(job).is_err() {
                    tracing::error!("the audit writer has stopped; a record is lost");
                }
            }
        }
    }

    /// Whether the store answers: the writer runs `SELECT 1` between batches. A full
    /// queue or a writer that does not answer within 2 s is a failure too (records
    /// are not being written).
    ///
    /// # Errors
    /// What is wrong, for `/readyz`.
    pub async fn check(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        match self.tx.try_send(Job::Check(tx)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err("the audit queue is full".to_owned());
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err("the audit writer has stopped".to_owned());
            }
        }
        match tokio::time::timeout(CHECK_TIMEOUT, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the audit writer has stopped".to_owned()),
            Err(_) => Err("the audit store did not answer within 2 s".to_owned()),
        }
    }

    /// Wait until everything queued so far is committed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        self.enqueue(Job::Flush(tx)).await;
        let _ = rx.await;
    }

    async fn enqueue(&self, job: Job) {
        let Some(job) = self.try_enqueue(job) else {
            return;
        };
        if self.tx.send(job).await.is_err() {
            tracing::error!("the audit writer has stopped; a record is lost");
        }
    }

    /// Queue `job` if there is room; a full queue is counted and logged, and the job
    /// comes back for the caller to wait with.
    fn try_enqueue(&self, job: Job) -> Option<Job> {
        match self.tx.try_send(job) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(job)) => {
                metrics::counter!(toolgate_telemetry::metrics::AUDIT_QUEUE_FULL).increment(1);
                tracing::warn!("the audit queue is full; the record waits for room");
                Some(job)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("the audit writer has stopped; a record is lost");
                None
            }
        }
    }
}

fn write_loop(mut store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut stamps = Timestamps::default();
    let mut records: Vec<Record> = Vec::new();
    let mut acks = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        records.clear();
        // Under load, let a batch fill for a moment: one transaction per few hundred
        // records instead of per few. Nobody waits on an async record, and a sync
        // caller's record is committed without this pause.
        if matches!(&first, Job::Record(_, None)) && rx.len() < 64 {
            std::thread::sleep(BATCH_PAUSE);
        }
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Record(entry, ack) => {
                    records.push(entry.into_record(&mut stamps));
                    acks.extend(ack);
                }
                Job::Flush(ack) => acks.push(ack),
                Job::Check(reply) => {
                    let _ = reply.send(store.check().map_err(|e| e.to_string()));
                }
            }
            if records.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !records.is_empty() && !commit(&mut store, &records) {
            // The acks are dropped, so waiting callers learn the record is not stored.
            acks.clear();
            continue;
        }
        #[allow(clippy::cast_possible_truncation)] // a batch is at most MAX_BATCH
        metrics::counter!(toolgate_telemetry::metrics::AUDIT_WRITTEN)
            .increment(records.len() as u64);
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

fn commit(store: &mut Store, records: &[Record]) -> bool {
    for attempt in 1..=COMMIT_ATTEMPTS {
        match store.append(records) {
            Ok(()) => return true,
            Err(e) => {
                tracing::error!(error = %e, attempt, records = records.len(), "audit commit failed");
                std::thread::sleep(Duration::from_millis(100 * u64::from(attempt)));
            }
        }
    }
    tracing::error!(
        records = records.len(),
        "audit records lost after repeated commit failures"
    );
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::record::args_digest;

    fn rec(i: u64) -> Entry {
        Entry {
            ended: std::time::SystemTime::now(),
            key: "k".into(),
            tool: "echo".into(),
            transport: "rest",
            outcome: "ok",
            duration_ms: i,
            trace_id: format!("t{i}"),
            args_sha256: args_digest(&json!({})),
            arguments: None,
        }
    }

    #[tokio::test]
    async fn everything_queued_is_committed_even_through_a_tiny_queue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let at = Location::Sqlite(path.clone());
        let log = std::sync::Arc::new(AuditLog::open(&at, Durability::Async, 2).unwrap());
        let mut tasks = Vec::new();
        for i in 0..500 {
            let log = std::sync::Arc::clone(&log);
            tasks.push(tokio::spawn(async move { log.append(rec(i)).await }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        log.flush().await;
        let mut store = Store::open_read_only(&Location::Sqlite(path.clone())).unwrap();
        assert_eq!(store.verify().unwrap().count, 500);
    }

    #[tokio::test]
    async fn sync_appends_are_committed_on_return() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let at = Location::Sqlite(path.clone());
        let log = AuditLog::open(&at, Durability::Sync, 100).unwrap();
        log.append(rec(1)).await;
        let mut store = Store::open_read_only(&Location::Sqlite(path.clone())).unwrap();
        assert_eq!(store.verify().unwrap().count, 1);
    }
}
