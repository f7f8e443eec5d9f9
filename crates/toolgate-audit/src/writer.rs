//! [`AuditLog`]: a bounded queue in front of a writer thread, and a spool on disk
//! for when the store is away.
//!
//! The writer owns the store on its own OS thread (SQLite and the PostgreSQL client
//! block), takes whatever is queued (up to a batch), commits it in one transaction
//! and then acknowledges the callers that wait for it.
//!
//! When the store fails (a commit errors or passes its deadline), the writer drops
//! the connection, keeps every record in the [`Spool`] (a local SQLite file), and
//! reconnects with capped, jittered exponential backoff; once back, it appends the
//! spooled records in order before any new one, so the chain continues unbroken.
//!
//! What a call gets meanwhile ([`AuditLog::admit`], [`AuditLog::append`]):
//! - `async`: answered as usual; its record is spooled. Once the spool holds
//!   `spool_max_records` (less the queue's room, so that everything already queued
//!   still fits), new calls are refused with [`AuditUnavailable`].
//! - `sync`: refused before it runs while the store is down; a call that was running
//!   when the store failed is answered with [`AuditUnavailable`] (its record is
//!   spooled, not committed: no 200 without a committed record).
//! - A record that waits longer than the enqueue timeout for room in the queue is
//!   refused the same way. Every refusal and every record that could not be kept
//!   is counted and logged; nothing is dropped silently.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::record::{Entry, Record, Timestamps};
use crate::spool::Spool;
use crate::store::{Location, OpenOptions, Store, StoreError};
use toolgate_telemetry::metrics as m;

/// Records committed in one transaction at most.
const MAX_BATCH: usize = 1024;
/// How long the writer lets an async batch fill before committing it. Measured with
/// `cargo bench -p toolgate-audit --bench append` at 40,000 records/s: 5 ms costs
/// about 2.2 µs of CPU per record against about 2.6 µs for 2 ms (each pause is a
/// sleep and a wake-up of this thread, which a virtual machine makes expensive), and
/// longer pauses gain nothing more. A crash loses at most the records of one pause
/// (`durability = "sync"` is for when that matters).
const BATCH_PAUSE: Duration = Duration::from_millis(5);
/// Spooled batches appended to a store that is back, between two looks at the queue
/// (64 × 1024 records, about a second).
const DRAIN_BATCHES: usize = 64;
/// The first reconnection delay; doubled per failure up to the configured cap.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// How a call waits for its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Queued; written off the hot path.
    #[default]
    Async,
    /// The caller waits until the record is committed (`synchronous = FULL`).
    Sync,
}

/// A call's record cannot be kept (or, with `sync`, committed): the call is refused
/// with `503 audit_unavailable`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuditUnavailable(pub String);

/// How the log is opened and how it behaves when its store is away.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// `async` or `sync`.
    pub durability: Durability,
    /// Records the in-memory queue holds.
    pub capacity: usize,
    /// How long a record may wait for room in a full queue before its call is refused.
    pub enqueue_timeout: Duration,
    /// The spool file.
    pub spool_path: PathBuf,
    /// Records the spool may hold.
    pub spool_max_records: u64,
    /// The longest wait between two reconnection attempts.
    pub max_backoff: Duration,
    /// How often the chain's head is published (log line and gauge).
    pub head_interval: Duration,
    /// How the store is opened (its `full_sync` follows `durability`).
    pub open: OpenOptions,
}

impl WriterOptions {
    /// Defaults for `location`: the spool beside a SQLite log, or in the working
    /// directory for PostgreSQL.
    #[must_use]
    pub fn new(location: &Location, durability: Durability) -> Self {
        let spool_path = match location {
            Location::Sqlite(p) => {
                let mut name = p.as_os_str().to_owned();
                name.push(".spool");
                PathBuf::from(name)
            }
            Location::Postgres { table, .. } => PathBuf::from(format!("{table}-spool.db")),
        };
        Self {
            durability,
            capacity: 10_000,
            enqueue_timeout: Duration::from_secs(2),
            spool_path,
            spool_max_records: 1_000_000,
            max_backoff: Duration::from_secs(5),
            head_interval: Duration::from_secs(60),
            open: OpenOptions {
                full_sync: durability == Durability::Sync,
                ..OpenOptions::default()
            },
        }
    }
}

enum Job {
    /// A record; the sender learns whether it was committed to the store.
    Record(Box<Entry>, Option<oneshot::Sender<bool>>),
    Flush(oneshot::Sender<()>),
    Check(oneshot::Sender<Result<(), String>>),
}

/// How long a readiness check waits for the writer (busy, or stuck on its database).
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the writer tells the callers' side.
#[derive(Debug, Default)]
struct Shared {
    /// The store answers.
    store_up: AtomicBool,
    /// The spool cannot take more (full, or failing): new calls are refused.
    full: AtomicBool,
    /// When a refusal was last logged (seconds since `epoch`), to log once a second.
    last_refusal_log: AtomicU64,
    epoch: std::sync::OnceLock<Instant>,
}

impl Shared {
    /// Count a refused call, log it at most once a second, and say why.
    fn refuse(&self, why: &str) -> AuditUnavailable {
        metrics::counter!(m::AUDIT_REFUSED).increment(1);
        let epoch = *self.epoch.get_or_init(Instant::now);
        let now = epoch.elapsed().as_secs() + 1;
        if self.last_refusal_log.swap(now, Ordering::Relaxed) != now {
            tracing::error!(
                reason = why,
                "calls are refused: their audit records cannot be kept"
            );
        }
        AuditUnavailable(why.to_owned())
    }
}

/// The audit log's writing side.
pub struct AuditLog {
    tx: mpsc::Sender<Job>,
    durability: Durability,
    enqueue_timeout: Duration,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Open the log at `location` with default options and start its writer thread.
    ///
    /// # Errors
    /// As [`AuditLog::open_with`].
    pub fn open(
        location: &Location,
        durability: Durability,
        capacity: usize,
    ) -> Result<Self, StoreError> {
        let mut options = WriterOptions::new(location, durability);
        options.capacity = capacity;
        Self::open_with(location, options)
    }

    /// Open the log at `location` and start its writer thread. A PostgreSQL server
    /// that cannot be reached at start is not fatal: the writer starts spooling and
    /// keeps trying (`/readyz` says so). Anything else is reported now: a bad table
    /// name, a SQLite file that cannot be opened or that another process writes, a
    /// chain written under another key.
    ///
    /// # Errors
    /// The log cannot be opened.
    pub fn open_with(location: &Location, options: WriterOptions) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel(options.capacity.max(1));
        let shared = Arc::new(Shared::default());
        // The store is opened on the writer thread itself: the PostgreSQL client runs
        // its own runtime, which must not start inside the server's.
        let (opened_tx, opened_rx) = std::sync::mpsc::channel();
        let location = location.clone();
        let durability = options.durability;
        let enqueue_timeout = options.enqueue_timeout;
        let writer_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("toolgate-audit".to_owned())
            .spawn(move || {
                let store = match Store::open(&location, &options.open) {
                    Ok(store) => Some(store),
                    Err(e @ (StoreError::Postgres(_) | StoreError::Timeout(..)))
                        if matches!(location, Location::Postgres { .. }) =>
                    {
                        tracing::error!(error = %e, "the audit store cannot be reached at start; records are spooled until it can");
                        metrics::counter!(m::AUDIT_FAILURES).increment(1);
                        None
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        return;
                    }
                };
                let mut writer = match Writer::new(location, options, store, writer_shared) {
                    Ok(w) => w,
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        return;
                    }
                };
                let _ = opened_tx.send(Ok(()));
                writer.run(rx);
            })
            .map_err(|e| StoreError::Config(format!("cannot start the audit writer: {e}")))?;
        opened_rx.recv().map_err(|_| {
            StoreError::Config("the audit writer stopped while opening".to_owned())
        })??;
        Ok(Self {
            tx,
            durability,
            enqueue_timeout,
            shared,
        })
    }

    /// The configured durability.
    #[must_use]
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Whether a call may start: refused while its record could not be kept (the
    /// spool is full) or, with `sync`, not committed (the store is down).
    ///
    /// # Errors
    /// The reason, for the `503 audit_unavailable` answer.
    pub fn admit(&self) -> Result<(), AuditUnavailable> {
        if self.shared.full.load(Ordering::Relaxed) {
            return Err(self
                .shared
                .refuse("the audit store is unavailable and the spool is full"));
        }
        if self.durability == Durability::Sync && !self.shared.store_up.load(Ordering::Relaxed) {
            return Err(self.shared.refuse(
                "the audit store is unavailable; with durability = \"sync\" no call runs without its record committed",
            ));
        }
        Ok(())
    }

    /// Log a call; with [`Durability::Sync`], return once it is committed.
    ///
    /// # Errors
    /// The record could not be queued in time, or (`sync`) was not committed: the
    /// call must be answered `503 audit_unavailable`.
    pub async fn append(&self, record: Entry) -> Result<(), AuditUnavailable> {
        if self.shared.full.load(Ordering::Relaxed) {
            metrics::counter!(m::AUDIT_LOST).increment(1);
            return Err(self
                .shared
                .refuse("the audit store is unavailable and the spool is full"));
        }
        let (ack, done) = match self.durability {
            Durability::Sync => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
            Durability::Async => (None, None),
        };
        self.enqueue(Job::Record(Box::new(record), ack)).await?;
        if let Some(done) = done {
            return match done.await {
                Ok(true) => Ok(()),
                Ok(false) => Err(self.shared.refuse(
                    "the audit store is unavailable; the call's record is spooled, not committed",
                )),
                Err(_) => Err(self.shared.refuse("the audit writer has stopped")),
            };
        }
        Ok(())
    }

    /// Log a call without waiting, for callers that cannot (a destructor, a refusal):
    /// queued now, or when the queue is full by a task that waits for room up to the
    /// enqueue timeout. Not acknowledged, whatever the durability; a record that
    /// cannot be queued is counted and logged as lost.
    pub fn append_detached(&self, record: Entry) {
        let job = match self.tx.try_send(Job::Record(Box::new(record), None)) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(job)) => {
                metrics::counter!(m::AUDIT_QUEUE_FULL).increment(1);
                job
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                lost("the audit writer has stopped");
                return;
            }
        };
        let tx = self.tx.clone();
        let wait = self.enqueue_timeout;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    match tokio::time::timeout(wait, tx.send(job)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => lost("the audit writer has stopped"),
                        Err(_) => lost("the audit queue stayed full"),
                    }
                });
            }
            // No runtime to wait on: wait here (the writer thread drains the queue).
            Err(_) => {
                if tx.blocking_send(job).is_err() {
                    lost("the audit writer has stopped");
                }
            }
        }
    }

    /// Whether the store answers: the writer runs `SELECT 1` between batches. A full
    /// queue, a store that is down, or a writer that does not answer within 2 s is a
    /// failure too (records are not being written).
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

    /// Wait until everything queued so far is committed (or, with the store down,
    /// spooled).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Job::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    async fn enqueue(&self, job: Job) -> Result<(), AuditUnavailable> {
        let job = match self.tx.try_send(job) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Full(job)) => {
                metrics::counter!(m::AUDIT_QUEUE_FULL).increment(1);
                job
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                metrics::counter!(m::AUDIT_LOST).increment(1);
                return Err(self.shared.refuse("the audit writer has stopped"));
            }
        };
        match tokio::time::timeout(self.enqueue_timeout, self.tx.send(job)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => {
                metrics::counter!(m::AUDIT_LOST).increment(1);
                Err(self.shared.refuse("the audit writer has stopped"))
            }
            Err(_) => {
                metrics::counter!(m::AUDIT_LOST).increment(1);
                Err(self
                    .shared
                    .refuse("the audit queue stayed full past the enqueue timeout"))
            }
        }
    }
}

/// A record that could not be kept: counted and logged.
fn lost(why: &str) {
    metrics::counter!(m::AUDIT_LOST).increment(1);
    tracing::error!(reason = why, "an audit record could not be kept");
}

/// What became of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    Committed,
    Spooled,
    Lost,
}

/// The writer thread's state.
struct Writer {
    location: Location,
    options: WriterOptions,
    store: Option<Store>,
    spool: Option<Spool>,
    /// The spool could not be opened or written; nothing more can be kept.
    spool_broken: bool,
    shared: Arc<Shared>,
    stamps: Timestamps,
    backoff: Duration,
    next_attempt: Instant,
    last_error: String,
    /// The last write failed and none has succeeded since: the store may answer
    /// `SELECT 1` (a SQLite file another process holds locked) and still not take
    /// records, so readiness does not trust the connection alone.
    failing: bool,
    /// The head hash and size of a batch whose commit was sent but not acknowledged;
    /// that batch is at the front of the spool. Checked at the next connection, so
    /// that a batch the server did commit is not appended twice.
    unacknowledged: Option<(String, usize)>,
    next_head: Instant,
    published: Option<(i64, String)>,
}

impl Writer {
    fn new(
        location: Location,
        options: WriterOptions,
        store: Option<Store>,
        shared: Arc<Shared>,
    ) -> Result<Self, StoreError> {
        // A spool left by an earlier run is drained first; otherwise it is created
        // when first needed.
        let spool = if options.spool_path.exists() {
            Some(open_spool(&options.spool_path)?)
        } else {
            None
        };
        let now = Instant::now();
        let w = Self {
            next_head: now + options.head_interval,
            location,
            store,
            spool,
            spool_broken: false,
            shared,
            stamps: Timestamps::default(),
            backoff: FIRST_BACKOFF,
            next_attempt: now,
            last_error: "not connected yet".to_owned(),
            failing: false,
            unacknowledged: None,
            published: None,
            options,
        };
        if let Some(spool) = &w.spool
            && !spool.is_empty()
        {
            tracing::warn!(records = spool.len(), spool = %spool.path().display(), "audit records spooled by an earlier run are appended first");
        }
        w.publish_state(0);
        Ok(w)
    }

    fn run(&mut self, mut rx: mpsc::Receiver<Job>) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, "the audit writer cannot start; no record is written");
                return;
            }
        };
        let mut records: Vec<Record> = Vec::new();
        let mut acks: Vec<oneshot::Sender<bool>> = Vec::new();
        let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
        let mut checks: Vec<oneshot::Sender<Result<(), String>>> = Vec::new();
        loop {
            let wait = self.next_wake().saturating_duration_since(Instant::now());
            let first = match rt.block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
                Ok(Some(job)) => Some(job),
                Ok(None) => break,
                Err(_) => None,
            };
            self.maintain();
            let Some(first) = first else {
                self.publish_state(rx.len());
                continue;
            };
            // Under load, let a batch fill for a moment: one transaction per few
            // hundred records instead of per few. Nobody waits on an async record,
            // and a sync caller's record is committed without this pause.
            if matches!(&first, Job::Record(_, None)) && rx.len() < 64 && self.store.is_some() {
                std::thread::sleep(BATCH_PAUSE);
            }
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::Record(entry, ack) => {
                        records.push(entry.into_record(&mut self.stamps));
                        acks.extend(ack);
                    }
                    Job::Flush(ack) => flushes.push(ack),
                    Job::Check(reply) => checks.push(reply),
                }
                if records.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            let kept = self.write(&records);
            if kept == Kept::Committed {
                #[allow(clippy::cast_possible_truncation)] // a batch is at most MAX_BATCH
                metrics::counter!(m::AUDIT_WRITTEN).increment(records.len() as u64);
            }
            for ack in acks.drain(..) {
                let _ = ack.send(kept == Kept::Committed);
            }
            for flush in flushes.drain(..) {
                let _ = flush.send(());
            }
            for reply in checks.drain(..) {
                let _ = reply.send(self.check());
            }
            records.clear();
            self.publish_state(rx.len());
        }
        // Closed: everything queued has been handled. A last head for the operator.
        self.maintain();
        self.publish_head();
    }

    /// When the loop must wake even without a job: the next head, and the next
    /// reconnection attempt or spool drain.
    fn next_wake(&self) -> Instant {
        let pending_spool = self.spool.as_ref().is_some_and(|s| !s.is_empty());
        if self.store.is_none() || pending_spool {
            self.next_head.min(self.next_attempt)
        } else {
            self.next_head
        }
    }

    /// Reconnect when due, drain the spool into a store that answers, publish the
    /// head when due.
    fn maintain(&mut self) {
        let now = Instant::now();
        if self.store.is_none() && now >= self.next_attempt {
            match Store::open(&self.location, &self.options.open) {
                Ok(store) => {
                    metrics::counter!(m::AUDIT_RECONNECTS).increment(1);
                    tracing::warn!(
                        spooled = self.spool.as_ref().map_or(0, Spool::len),
                        "the audit store answers again"
                    );
                    self.store = Some(store);
                    self.backoff = FIRST_BACKOFF;
                    self.settle_unacknowledged();
                    // Nothing waits to prove it wrong; otherwise the drain below does.
                    if self.spool.as_ref().is_none_or(Spool::is_empty) {
                        self.failing = false;
                    }
                }
                Err(e) => {
                    metrics::counter!(m::AUDIT_FAILURES).increment(1);
                    tracing::warn!(error = %e, retry_in_ms = u64::try_from(self.backoff.as_millis()).unwrap_or(u64::MAX), "the audit store is still unavailable");
                    self.last_error = e.to_string();
                    self.schedule_retry();
                }
            }
        }
        if self.store.is_some() {
            self.drain(DRAIN_BATCHES);
        }
        if Instant::now() >= self.next_head {
            self.publish_head();
            self.next_head = Instant::now() + self.options.head_interval;
        }
    }

    /// The next attempt after a jittered delay ("equal jitter": half fixed, half
    /// random, so that replicas do not reconnect in step), then double the delay.
    fn schedule_retry(&mut self) {
        let delay = self.backoff.mul_f64(0.5 + fastrand::f64() * 0.5);
        self.next_attempt = Instant::now() + delay;
        self.backoff = (self.backoff * 2).min(self.options.max_backoff.max(FIRST_BACKOFF));
    }

    /// The store failed: give up the connection and spool until it is back.
    fn lose_store(&mut self, e: &StoreError) {
        metrics::counter!(m::AUDIT_FAILURES).increment(1);
        if self.store.take().is_some() {
            tracing::error!(error = %e, spool = %self.options.spool_path.display(), "the audit store failed; records are spooled until it is back");
        }
        self.last_error = e.to_string();
        self.failing = true;
        self.backoff = FIRST_BACKOFF;
        self.schedule_retry();
    }

    /// Append up to `batches` spooled batches to the store, oldest first.
    fn drain(&mut self, batches: usize) {
        for _ in 0..batches {
            let (Some(store), Some(spool)) = (self.store.as_mut(), self.spool.as_mut()) else {
                return;
            };
            if spool.is_empty() {
                return;
            }
            let (records, last) = match spool.peek(MAX_BATCH) {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::error!(error = %e, "the audit spool cannot be read");
                    self.spool_broken = true;
                    return;
                }
            };
            match store.append(&records) {
                Ok(()) => {
                    self.failing = false;
                    metrics::counter!(m::AUDIT_WRITTEN).increment(records.len() as u64);
                    if let Err(e) = spool.remove_through(last) {
                        // Appended but still spooled: it would be appended twice.
                        // Stop spooling into this file rather than duplicate forever.
                        tracing::error!(error = %e, "the audit spool cannot be trimmed");
                        self.spool_broken = true;
                        return;
                    }
                    if spool.is_empty() {
                        tracing::warn!("the audit spool is drained; the chain continues");
                    }
                }
                Err(e) => {
                    let unacknowledged = store.take_unacknowledged();
                    self.unacknowledged = unacknowledged.map(|h| (h, records.len()));
                    self.lose_store(&e);
                    return;
                }
            }
        }
    }

    /// A batch sent before the store failed, and not acknowledged, is in the log if
    /// the log's head is that batch's last hash: then it leaves the spool instead of
    /// being appended again. (Another replica appending in between makes the heads
    /// differ, and the batch is appended again: at least once, never lost.)
    fn settle_unacknowledged(&mut self) {
        let Some((hash, n)) = self.unacknowledged.take() else {
            return;
        };
        if self.spool_broken {
            // The batch never reached the spool (and is counted lost).
            return;
        }
        let (Some(store), Some(spool)) = (self.store.as_mut(), self.spool.as_mut()) else {
            return;
        };
        match store.head() {
            Ok(Some((_, head))) if head == hash => match spool.peek(n) {
                Ok((records, last)) if records.len() == n => {
                    if let Err(e) = spool.remove_through(last) {
                        tracing::error!(error = %e, "the audit spool cannot be trimmed");
                        self.spool_broken = true;
                        return;
                    }
                    tracing::warn!(
                        records = n,
                        "a batch whose commit was not acknowledged is in the log; it is not appended again"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "the audit spool cannot be read");
                    self.spool_broken = true;
                }
            },
            Ok(_) => {}
            Err(e) => self.lose_store(&e),
        }
    }

    /// Commit `records`, or spool them.
    fn write(&mut self, records: &[Record]) -> Kept {
        if records.is_empty() {
            return Kept::Committed;
        }
        let spool_empty = self.spool.as_ref().is_none_or(Spool::is_empty);
        if spool_empty && let Some(store) = self.store.as_mut() {
            match store.append(records) {
                Ok(()) => {
                    self.failing = false;
                    return Kept::Committed;
                }
                Err(e) => {
                    // The spool is empty: these records go to its front below.
                    let unacknowledged = store.take_unacknowledged();
                    self.unacknowledged = unacknowledged.map(|h| (h, records.len()));
                    self.lose_store(&e);
                }
            }
        }
        if self.spool_broken {
            lost_batch(records.len(), "the audit spool is not usable");
            return Kept::Lost;
        }
        if self.spool.is_none() {
            match open_spool(&self.options.spool_path) {
                Ok(spool) => self.spool = Some(spool),
                Err(e) => {
                    tracing::error!(error = %e, "the audit spool cannot be opened");
                    self.spool_broken = true;
                    lost_batch(records.len(), "the audit spool cannot be opened");
                    return Kept::Lost;
                }
            }
        }
        let Some(spool) = self.spool.as_mut() else {
            return Kept::Lost;
        };
        if let Err(e) = spool.push(records) {
            tracing::error!(error = %e, "the audit spool cannot be written");
            self.spool_broken = true;
            lost_batch(records.len(), "the audit spool cannot be written");
            return Kept::Lost;
        }
        // A store that answers takes the spool (these records last) right away.
        if self.store.is_some() {
            self.drain(DRAIN_BATCHES);
            if self.spool.as_ref().is_some_and(Spool::is_empty) {
                return Kept::Committed;
            }
        }
        Kept::Spooled
    }

    fn check(&mut self) -> Result<(), String> {
        let spooled = self.spool.as_ref().map_or(0, Spool::len);
        match self.store.as_mut() {
            Some(_) if self.failing => Err(format!(
                "the audit store does not take records ({}); {spooled} records spooled",
                self.last_error
            )),
            Some(store) => match store.check() {
                Ok(()) => Ok(()),
                Err(e) => {
                    let msg = e.to_string();
                    self.lose_store(&e);
                    Err(msg)
                }
            },
            None => Err(format!(
                "the audit store is unavailable ({}); {spooled} records spooled",
                self.last_error
            )),
        }
    }

    /// Publish the chain's head (sequence number and hash), when it moved: a log
    /// line and a gauge, so that an outside observer can later tell a truncated or
    /// rewritten log from the real one (`toolgate audit verify --head SEQ:HASH`).
    fn publish_head(&mut self) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        match store.head() {
            Ok(Some(head)) if self.published.as_ref() != Some(&head) => {
                tracing::info!(seq = head.0, hash = %head.1, "audit chain head");
                #[allow(clippy::cast_precision_loss)] // a gauge; exact below 2^53
                metrics::gauge!(m::AUDIT_HEAD_SEQ).set(head.0 as f64);
                self.published = Some(head);
            }
            Ok(_) => {}
            Err(e) => self.lose_store(&e),
        }
    }

    fn publish_state(&self, queued: usize) {
        let spooled = self.spool.as_ref().map_or(0, Spool::len);
        let up = self.store.is_some();
        let room = self.options.capacity as u64;
        let full = self.spool_broken || spooled + room >= self.options.spool_max_records;
        self.shared.store_up.store(up, Ordering::Relaxed);
        let was_full = self.shared.full.swap(full, Ordering::Relaxed);
        if full && !was_full {
            tracing::error!(
                spooled,
                "the audit spool is full; new calls are refused until the store is back"
            );
        }
        #[allow(clippy::cast_precision_loss)] // gauges
        {
            metrics::gauge!(m::AUDIT_QUEUE_DEPTH).set(queued as f64);
            metrics::gauge!(m::AUDIT_SPOOLED).set(spooled as f64);
        }
        metrics::gauge!(m::AUDIT_STORE_UP).set(if up { 1.0 } else { 0.0 });
    }
}

fn open_spool(path: &std::path::Path) -> Result<Spool, StoreError> {
    Spool::open(path)
}

fn lost_batch(n: usize, why: &str) {
    metrics::counter!(m::AUDIT_LOST).increment(n as u64);
    tracing::error!(records = n, reason = why, "audit records could not be kept");
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
            caller: None,
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
            tasks.push(tokio::spawn(
                async move { log.append(rec(i)).await.unwrap() },
            ));
        }
        for t in tasks {
            t.await.unwrap();
        }
        log.flush().await;
        let mut store =
            Store::open_read_only(&Location::Sqlite(path.clone()), &OpenOptions::default())
                .unwrap();
        assert_eq!(store.verify().unwrap().count, 500);
    }

    #[tokio::test]
    async fn sync_appends_are_committed_on_return() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let at = Location::Sqlite(path.clone());
        let log = AuditLog::open(&at, Durability::Sync, 100).unwrap();
        log.append(rec(1)).await.unwrap();
        let mut store =
            Store::open_read_only(&Location::Sqlite(path.clone()), &OpenOptions::default())
                .unwrap();
        assert_eq!(store.verify().unwrap().count, 1);
    }
}
