//! The job table, in SQLite or PostgreSQL. Every operation is written once, as SQL
//! with `$N` parameters run by [`Store::rows`] or [`Store::exec`] on either backend;
//! each state change is one conditional statement, so that concurrent replicas (or
//! a replica and a sweep) can never both make it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::model::{Approval, Decision, Job, JobError, NewJob, Owner, State, now_ms};

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("job store (SQLite): {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed or is unreachable.
    #[error("job store (PostgreSQL): {0}")]
    Postgres(#[from] sqlx::Error),
    /// The blocking task of a SQLite call did not finish.
    #[error("job store: {0}")]
    Task(String),
    /// A stored row could not be read back.
    #[error("job store: a stored job is malformed: {0}")]
    Malformed(String),
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page {
    /// The jobs, newest first.
    pub jobs: Vec<Job>,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
}

/// What a sweep changed.
#[derive(Debug, Default)]
pub struct Swept {
    /// Jobs of a lost replica queued again (idempotent tools).
    pub requeued: Vec<Job>,
    /// Jobs of a lost replica failed (tools not idempotent).
    pub lost: Vec<Job>,
    /// Jobs of a lost replica whose cancel was pending, now cancelled.
    pub cancelled: Vec<Job>,
    /// Approvals whose time ran out (now failed, denied by the timeout).
    pub timed_out: Vec<Job>,
    /// Results expired.
    pub expired: u64,
    /// Rows deleted.
    pub purged: u64,
}

/// A parameter of a statement: PostgreSQL needs the type of a NULL.
#[derive(Debug, Clone)]
enum P {
    I(Option<i64>),
    T(Option<String>),
}

fn int(v: i64) -> P {
    P::I(Some(v))
}

fn text(v: impl Into<String>) -> P {
    P::T(Some(v.into()))
}

fn opt_text(v: Option<String>) -> P {
    P::T(v)
}

fn json_text(v: &impl serde::Serialize) -> P {
    P::T(serde_json::to_string(v).ok())
}

/// The job store.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// How long expired rows are kept before they are deleted.
    purge_after_ms: i64,
}

#[derive(Clone)]
enum Backend {
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    Postgres {
        pool: sqlx::PgPool,
        table: String,
        /// The table exists (created at open, or at the first use after a start
        /// while PostgreSQL was down).
        ready: Arc<std::sync::atomic::AtomicBool>,
    },
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.backend {
            Backend::Sqlite(_) => "Store(sqlite)",
            Backend::Postgres { .. } => "Store(postgres)",
        })
    }
}

const COLUMNS: &str = "id, tool, arguments, args_hash, owner, owner_hash, principal, state, \
    created_ms, updated_ms, started_ms, finished_ms, timeout_ms, idempotent, attempts, progress, \
    result, error, cancel_requested, webhook, approval, approval_deadline_ms, expires_ms, trace_id, \
    lease_owner, lease_until_ms, not_before_ms, origin, ttl_ms, webhook_due_ms, webhook_attempts";

/// The table (`{t}` is its name); the same DDL serves both backends.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS {t} (
    id TEXT PRIMARY KEY,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    args_hash TEXT NOT NULL,
    owner TEXT NOT NULL,
    owner_hash TEXT NOT NULL,
    principal TEXT NOT NULL,
    state TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    started_ms BIGINT,
    finished_ms BIGINT,
    timeout_ms BIGINT NOT NULL,
    idempotent BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    progress TEXT,
    result TEXT,
    error TEXT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    webhook TEXT,
    approval TEXT,
    approval_deadline_ms BIGINT,
    expires_ms BIGINT,
    trace_id TEXT,
    lease_owner TEXT,
    lease_until_ms BIGINT,
    not_before_ms BIGINT NOT NULL DEFAULT 0,
    origin TEXT NOT NULL,
    ttl_ms BIGINT NOT NULL,
    webhook_due_ms BIGINT,
    webhook_attempts BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS {t}_queue ON {t} (state, not_before_ms, created_ms);
CREATE INDEX IF NOT EXISTS {t}_owner ON {t} (owner_hash, created_ms);
CREATE INDEX IF NOT EXISTS {t}_webhooks ON {t} (webhook_due_ms);";

/// The SQL that ends a job (`$1` state, `$2` now, `$3` result, `$4` error). The
/// lease's owner stays, naming the replica that ran it last.
/// A job with a webhook has its delivery due at once.
const FINISH_SET: &str = "state = $1, updated_ms = $2, finished_ms = $2, result = $3, error = $4, \
    expires_ms = $2 + ttl_ms, lease_until_ms = NULL, \
    webhook_due_ms = CASE WHEN webhook IS NULL THEN NULL ELSE $2 END";

impl Store {
    /// The store in the SQLite file at `path` (created if missing, WAL mode).
    ///
    /// # Errors
    /// The file cannot be opened or the table created.
    pub fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(&SCHEMA.replace("{t}", "jobs"))?;
        Ok(Self {
            backend: Backend::Sqlite(Arc::new(Mutex::new(conn))),
            purge_after_ms: DEFAULT_PURGE_MS,
        })
    }

    /// The store in PostgreSQL at `url`, table `table` (created if missing).
    ///
    /// # Errors
    /// PostgreSQL cannot be reached or the table created.
    pub async fn open_postgres(url: &str, table: &str) -> Result<Self, StoreError> {
        use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            // A store that is down answers 503 within 2 s instead of holding callers.
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(options.application_name("toolgate-jobs"));
        let store = Self {
            backend: Backend::Postgres {
                pool,
                table: table.to_owned(),
                ready: Arc::default(),
            },
            purge_after_ms: DEFAULT_PURGE_MS,
        };
        // A server that starts while PostgreSQL is down still starts (plain calls do
        // not need the job store); the table is made at the first use instead.
        if let Err(e) = store.ensure_schema().await {
            tracing::warn!(error = %e, "the job store is not reachable yet; job routes answer 503 until it is");
        }
        Ok(store)
    }

    /// Create the PostgreSQL table if this process has not yet: one replica at a
    /// time (CREATE IF NOT EXISTS races on PostgreSQL's catalog otherwise).
    async fn ensure_schema(&self) -> Result<(), StoreError> {
        let Backend::Postgres { pool, table, ready } = &self.backend else {
            return Ok(());
        };
        if ready.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        let ddl = SCHEMA.replace("{t}", table);
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(7446172)")
            .execute(&mut *tx)
            .await?;
        for stmt in ddl.split(';').filter(|s| !s.trim().is_empty()) {
            sqlx::query(sqlx::AssertSqlSafe(stmt.to_owned()))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        ready.store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Keep expired rows this long before deleting them (default a day).
    #[must_use]
    pub fn with_purge_after(mut self, ms: i64) -> Self {
        self.purge_after_ms = ms;
        self
    }

    /// Whether the store answers (for `/readyz`).
    ///
    /// # Errors
    /// It does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.scalar("SELECT count(*) FROM {t} WHERE id = $1", vec![text("")])
            .await
            .map(|_| ())
    }

    /// Create a job: `queued`, or `awaiting_approval` when it has an approval gate.
    ///
    /// # Errors
    /// The store failed.
    pub async fn insert(&self, new: NewJob) -> Result<Job, StoreError> {
        let id = new_id();
        let now = now_ms();
        let state = if new.approval.is_some() {
            State::AwaitingApproval
        } else {
            State::Queued
        };
        let deadline = new.approval.as_ref().map(|a| a.deadline_ms);
        let sql = format!(
            "INSERT INTO {{t}} ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, NULL, NULL, \
             $10, $11, 0, NULL, NULL, NULL, 0, $12, $13, $14, NULL, $15, NULL, NULL, 0, $16, $17, NULL, 0) \
             RETURNING {COLUMNS}"
        );
        let params = vec![
            text(&id),
            text(&new.tool),
            json_text(&new.arguments),
            text(&new.args_hash),
            text(&new.owner.name),
            text(&new.owner.hash),
            json_text(&new.owner),
            text(state.as_str()),
            int(now),
            int(i64::try_from(new.timeout_ms).unwrap_or(i64::MAX)),
            int(i64::from(new.idempotent)),
            opt_text(new.webhook),
            P::T(
                new.approval
                    .as_ref()
                    .and_then(|a| serde_json::to_string(a).ok()),
            ),
            P::I(deadline),
            opt_text(new.trace_id),
            text(new.origin),
            int(i64::try_from(new.ttl_ms).unwrap_or(i64::MAX)),
        ];
        self.one(&sql, params)
            .await?
            .ok_or_else(|| StoreError::Malformed("the insert returned no row".into()))
    }

    /// The job `id`.
    ///
    /// # Errors
    /// The store failed.
    pub async fn get(&self, id: &str) -> Result<Option<Job>, StoreError> {
        self.one(
            &format!("SELECT {COLUMNS} FROM {{t}} WHERE id = $1"),
            vec![text(id)],
        )
        .await
    }

    /// The jobs of the key with digest `owner_hash`, newest first, `limit` a page,
    /// after the cursor `after` (from an earlier [`Page::next`]).
    ///
    /// # Errors
    /// The store failed.
    pub async fn list(
        &self,
        owner_hash: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let (before_ms, before_id) = after
            .and_then(|c| c.split_once('.'))
            .and_then(|(ms, id)| Some((ms.parse::<i64>().ok()?, id.to_owned())))
            .unwrap_or((i64::MAX, String::new()));
        let limit = limit.clamp(1, 1000);
        let sql = format!(
            "SELECT {COLUMNS} FROM {{t}} WHERE owner_hash = $1 AND \
             (created_ms < $2 OR (created_ms = $2 AND id < $3)) \
             ORDER BY created_ms DESC, id DESC LIMIT $4"
        );
        let mut jobs = self
            .rows(
                &sql,
                vec![
                    text(owner_hash),
                    int(before_ms),
                    text(before_id),
                    int(i64::try_from(limit + 1).unwrap_or(1001)),
                ],
            )
            .await?;
        let next = if jobs.len() > limit {
            jobs.truncate(limit);
            jobs.last().map(|j| format!("{}.{}", j.created_ms, j.id))
        } else {
            None
        };
        Ok(Page { jobs, next })
    }

    /// Whether `cursor` is one [`Store::list`] gave out.
    #[must_use]
    pub fn is_cursor(cursor: &str) -> bool {
        cursor
            .split_once('.')
            .is_some_and(|(ms, id)| ms.parse::<i64>().is_ok() && !id.is_empty())
    }

    /// Jobs of `owner_hash` not yet ended (counted against the key's job quota).
    ///
    /// # Errors
    /// The store failed.
    pub async fn active(&self, owner_hash: &str) -> Result<u64, StoreError> {
        self.scalar(
            "SELECT count(*) FROM {t} WHERE owner_hash = $1 AND state IN ('queued', 'running', 'awaiting_approval')",
            vec![text(owner_hash)],
        )
        .await
    }

    /// Jobs waiting for an approval, oldest first (at most `limit`).
    ///
    /// # Errors
    /// The store failed.
    pub async fn pending_approvals(&self, limit: usize) -> Result<Vec<Job>, StoreError> {
        self.rows(
            &format!(
                "SELECT {COLUMNS} FROM {{t}} WHERE state = 'awaiting_approval' ORDER BY created_ms, id LIMIT $1"
            ),
            vec![int(i64::try_from(limit).unwrap_or(1000))],
        )
        .await
    }

    /// Claim up to `n` queued jobs for `replica`, leased for `lease_ms`: each goes
    /// `running` for exactly one replica. Keys take turns: the oldest job of each key
    /// first, then each key's second, and so on, so a key with a long queue does
    /// not hold back another's first job.
    ///
    /// # Errors
    /// The store failed.
    pub async fn claim(
        &self,
        replica: &str,
        n: usize,
        lease_ms: i64,
    ) -> Result<Vec<Job>, StoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let lock = match self.backend {
            Backend::Sqlite(_) => "",
            Backend::Postgres { .. } => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE {{t}} SET state = 'running', lease_owner = $1, lease_until_ms = $2 + $3, \
             updated_ms = $2, started_ms = COALESCE(started_ms, $2), attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM {{t}} WHERE id IN (\
               SELECT id FROM (SELECT id, created_ms, row_number() OVER \
                 (PARTITION BY owner_hash ORDER BY created_ms, id) AS turn \
                 FROM {{t}} WHERE state = 'queued' AND not_before_ms <= $2) AS q \
               ORDER BY turn, created_ms, id LIMIT $4){lock}) \
             AND state = 'queued' RETURNING {COLUMNS}"
        );
        self.rows(
            &sql,
            vec![
                text(replica),
                int(now),
                int(lease_ms),
                int(i64::try_from(n).unwrap_or(1)),
            ],
        )
        .await
    }

    /// Extend `replica`'s lease of job `id` (and store its progress). `None`: the
    /// lease is lost (the job was given to another replica, or ended); otherwise
    /// whether a cancel was asked for.
    ///
    /// # Errors
    /// The store failed.
    pub async fn renew(
        &self,
        id: &str,
        replica: &str,
        lease_ms: i64,
        progress: Option<&Value>,
    ) -> Result<Option<bool>, StoreError> {
        let now = now_ms();
        let sql = format!(
            "UPDATE {{t}} SET lease_until_ms = $3 + $4, progress = COALESCE($5, progress) \
             WHERE id = $1 AND lease_owner = $2 AND state = 'running' RETURNING {COLUMNS}"
        );
        let job = self
            .one(
                &sql,
                vec![
                    text(id),
                    text(replica),
                    int(now),
                    int(lease_ms),
                    P::T(progress.map(Value::to_string)),
                ],
            )
            .await?;
        Ok(job.map(|j| j.cancel_requested))
    }

    /// End job `id`, leased by `replica`, as `state` with its result or error.
    /// `false`: the lease was lost and the outcome is not kept.
    ///
    /// # Errors
    /// The store failed.
    pub async fn finish(
        &self,
        id: &str,
        replica: &str,
        state: State,
        result: Option<&Value>,
        error: Option<&JobError>,
    ) -> Result<Option<Job>, StoreError> {
        let sql = format!(
            "UPDATE {{t}} SET {FINISH_SET} WHERE id = $5 AND lease_owner = $6 AND state = 'running' \
             RETURNING {COLUMNS}"
        );
        self.one(
            &sql,
            vec![
                text(state.as_str()),
                int(now_ms()),
                P::T(result.map(Value::to_string)),
                P::T(error.and_then(|e| serde_json::to_string(e).ok())),
                text(id),
                text(replica),
            ],
        )
        .await
    }

    /// Put job `id` back in the queue, to be claimed again no sooner than
    /// `delay_ms` from now (its key had no call slot free, or the replica drains).
    /// The attempt is not counted.
    ///
    /// # Errors
    /// The store failed.
    pub async fn requeue(
        &self,
        id: &str,
        replica: &str,
        delay_ms: i64,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let n = self
            .exec(
                "UPDATE {t} SET state = 'queued', lease_owner = NULL, lease_until_ms = NULL, \
                 updated_ms = $3, not_before_ms = $3 + $4, attempts = attempts - 1 \
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                vec![text(id), text(replica), int(now), int(delay_ms)],
            )
            .await?;
        Ok(n > 0)
    }

    /// Let go of job `id` without an outcome (the replica stops): the next sweep
    /// treats it as a lost replica's job.
    ///
    /// # Errors
    /// The store failed.
    pub async fn release(&self, id: &str, replica: &str) -> Result<bool, StoreError> {
        let n = self
            .exec(
                "UPDATE {t} SET lease_until_ms = 0 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                vec![text(id), text(replica)],
            )
            .await?;
        Ok(n > 0)
    }

    /// Cancel job `id` for its owner (`owner_hash`; `None`: anybody, the operator).
    /// A queued or waiting job is cancelled at once; a running one is asked to stop
    /// (its replica sees it at its next renewal). `None` when there is no such job
    /// of that owner; otherwise the job as it is now.
    ///
    /// # Errors
    /// The store failed.
    pub async fn cancel(
        &self,
        id: &str,
        owner_hash: Option<&str>,
    ) -> Result<Option<Job>, StoreError> {
        let owner = P::T(owner_hash.map(str::to_owned));
        let error = JobError {
            code: "cancelled".into(),
            detail: "cancelled by its caller".into(),
        };
        // A job may move between the two statements (running back to queued when
        // its key had no call slot free): then both are tried again.
        for _ in 0..3 {
            let now_cancelled = self
                .one(
                    &format!(
                        "UPDATE {{t}} SET {FINISH_SET} WHERE id = $5 AND ($6 IS NULL OR owner_hash = $6) \
                         AND state IN ('queued', 'awaiting_approval') RETURNING {COLUMNS}"
                    ),
                    vec![
                        text(State::Cancelled.as_str()),
                        int(now_ms()),
                        P::T(None),
                        json_text(&error),
                        text(id),
                        owner.clone(),
                    ],
                )
                .await?;
            if now_cancelled.is_some() {
                return Ok(now_cancelled);
            }
            let asked = self
                .one(
                    &format!(
                        "UPDATE {{t}} SET cancel_requested = 1, updated_ms = $3 WHERE id = $1 AND \
                         ($2 IS NULL OR owner_hash = $2) AND state = 'running' RETURNING {COLUMNS}"
                    ),
                    vec![text(id), owner.clone(), int(now_ms())],
                )
                .await?;
            if asked.is_some() {
                return Ok(asked);
            }
            let now = self
                .get(id)
                .await?
                .filter(|j| owner_hash.is_none_or(|h| j.owner.hash == h));
            match now {
                Some(j) if !j.state.is_final() => continue,
                other => return Ok(other),
            }
        }
        Ok(self
            .get(id)
            .await?
            .filter(|j| owner_hash.is_none_or(|h| j.owner.hash == h)))
    }

    /// Record `decision` on job `id`, which must still await approval: approved, it
    /// is queued (to run with exactly its stored arguments); denied, it fails.
    /// `None`: the job no longer awaits a decision.
    ///
    /// # Errors
    /// The store failed.
    pub async fn decide(&self, id: &str, decision: Decision) -> Result<Option<Job>, StoreError> {
        let Some(job) = self.get(id).await? else {
            return Ok(None);
        };
        let Some(mut approval) = job.approval.clone() else {
            return Ok(None);
        };
        let approved = decision.approved;
        approval.decision = Some(decision);
        let now = now_ms();
        if approved {
            self.one(
                &format!(
                    "UPDATE {{t}} SET state = 'queued', approval = $2, updated_ms = $3 \
                     WHERE id = $1 AND state = 'awaiting_approval' \
                     AND (approval_deadline_ms IS NULL OR approval_deadline_ms >= $3) RETURNING {COLUMNS}"
                ),
                vec![text(id), json_text(&approval), int(now)],
            )
            .await
        } else {
            let error = denial(&approval);
            self.one(
                &format!(
                    "UPDATE {{t}} SET {FINISH_SET}, approval = $6 WHERE id = $5 AND state = 'awaiting_approval' \
                     RETURNING {COLUMNS}"
                ),
                vec![
                    text(State::Failed.as_str()),
                    int(now),
                    P::T(None),
                    json_text(&error),
                    text(id),
                    json_text(&approval),
                ],
            )
            .await
        }
    }

    /// The periodic clean-up every replica runs (each change is conditional, so two
    /// replicas sweeping at once change each row once).
    ///
    /// # Errors
    /// The store failed.
    pub async fn sweep(&self) -> Result<Swept, StoreError> {
        let now = now_ms();
        // A lost replica's jobs: idempotent ones run again.
        let requeued = self
            .rows(
                &format!(
                    "UPDATE {{t}} SET state = 'queued', lease_owner = NULL, lease_until_ms = NULL, \
                     updated_ms = $1, cancel_requested = 0 WHERE state = 'running' AND lease_until_ms < $1 \
                     AND idempotent = 1 AND cancel_requested = 0 RETURNING {COLUMNS}"
                ),
                vec![int(now)],
            )
            .await?;
        let mut swept = Swept {
            requeued,
            ..Swept::default()
        };
        // A lost replica's job whose caller had asked to cancel it is cancelled.
        let asked = JobError {
            code: "cancelled".into(),
            detail: "cancelled by its caller (the server running it stopped meanwhile)".into(),
        };
        swept.cancelled = self
            .rows(
                &format!(
                    "UPDATE {{t}} SET {FINISH_SET} WHERE state = 'running' AND lease_until_ms < $2 \
                     AND cancel_requested = 1 RETURNING {COLUMNS}"
                ),
                vec![
                    text(State::Cancelled.as_str()),
                    int(now),
                    P::T(None),
                    json_text(&asked),
                ],
            )
            .await?;
        let lost = JobError {
            code: "replica_lost".into(),
            detail: "the server running this job stopped before it ended, and the tool is not \
                     idempotent, so it was not run again; it may or may not have taken effect"
                .into(),
        };
        swept.lost = self
            .rows(
                &format!(
                    "UPDATE {{t}} SET {FINISH_SET} WHERE state = 'running' AND lease_until_ms < $2 \
                     RETURNING {COLUMNS}"
                ),
                vec![
                    text(State::Failed.as_str()),
                    int(now),
                    P::T(None),
                    json_text(&lost),
                ],
            )
            .await?;
        // Approvals whose time ran out are denied.
        let waiting = self
            .rows(
                &format!(
                    "SELECT {COLUMNS} FROM {{t}} WHERE state = 'awaiting_approval' AND approval_deadline_ms < $1"
                ),
                vec![int(now)],
            )
            .await?;
        for job in waiting {
            let decision = Decision {
                approved: false,
                by: "timeout".into(),
                at_ms: now,
                comment: Some("no approver decided in time".into()),
            };
            if let Some(j) = self.decide(&job.id, decision).await? {
                swept.timed_out.push(j);
            }
        }
        swept.expired = self
            .exec(
                "UPDATE {t} SET state = 'expired', result = NULL, arguments = 'null', progress = NULL, \
                 updated_ms = $1 WHERE state IN ('succeeded', 'failed', 'cancelled') AND expires_ms < $1 \
                 AND webhook_due_ms IS NULL",
                vec![int(now)],
            )
            .await?;
        swept.purged = self
            .exec(
                "DELETE FROM {t} WHERE state = 'expired' AND expires_ms < $1",
                vec![int(now.saturating_sub(self.purge_after_ms))],
            )
            .await?;
        Ok(swept)
    }

    /// Take up to `n` webhook deliveries that are due, each for `hold_ms` (a replica
    /// that dies while delivering leaves it due again after that).
    ///
    /// # Errors
    /// The store failed.
    pub async fn claim_webhooks(&self, n: usize, hold_ms: i64) -> Result<Vec<Job>, StoreError> {
        let now = now_ms();
        let lock = match self.backend {
            Backend::Sqlite(_) => "",
            Backend::Postgres { .. } => " FOR UPDATE SKIP LOCKED",
        };
        self.rows(
            &format!(
                "UPDATE {{t}} SET webhook_due_ms = $1 + $2 WHERE id IN (SELECT id FROM {{t}} \
                 WHERE webhook_due_ms <= $1 ORDER BY webhook_due_ms, id LIMIT $3{lock}) \
                 AND webhook_due_ms <= $1 RETURNING {COLUMNS}"
            ),
            vec![int(now), int(hold_ms), int(i64::try_from(n).unwrap_or(1))],
        )
        .await
    }

    /// Record one delivery attempt of job `id`'s webhook: the next is due at
    /// `next_due_ms`, or none (delivered, or given up).
    ///
    /// # Errors
    /// The store failed.
    pub async fn webhook_attempted(
        &self,
        id: &str,
        next_due_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        self.exec(
            "UPDATE {t} SET webhook_attempts = webhook_attempts + 1, webhook_due_ms = $2 WHERE id = $1",
            vec![text(id), P::I(next_due_ms)],
        )
        .await
        .map(|_| ())
    }

    /// Delete every job (tests and `toolgate jobs purge`).
    ///
    /// # Errors
    /// The store failed.
    pub async fn clear(&self) -> Result<u64, StoreError> {
        self.exec("DELETE FROM {t}", Vec::new()).await
    }

    // ---- the two backends ----

    async fn one(&self, sql: &str, params: Vec<P>) -> Result<Option<Job>, StoreError> {
        Ok(self.rows(sql, params).await?.into_iter().next())
    }

    async fn rows(&self, sql: &str, params: Vec<P>) -> Result<Vec<Job>, StoreError> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                on_sqlite(conn, sql, params, |stmt, params| {
                    let mut rows = stmt.query(params)?;
                    let mut out = Vec::new();
                    while let Some(row) = rows.next()? {
                        out.push(raw_sqlite(row)?.into_job()?);
                    }
                    Ok(out)
                })
                .await
            }
            Backend::Postgres { pool, table, .. } => {
                self.ensure_schema().await?;
                let rows = pg_query(table, sql, params).fetch_all(pool).await?;
                rows.iter()
                    .map(|r| raw_pg(r).and_then(Raw::into_job))
                    .collect()
            }
        }
    }

    async fn exec(&self, sql: &str, params: Vec<P>) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                on_sqlite(conn, sql, params, |stmt, params| {
                    Ok(u64::try_from(stmt.execute(params)?).unwrap_or(0))
                })
                .await
            }
            Backend::Postgres { pool, table, .. } => {
                self.ensure_schema().await?;
                let done = pg_query(table, sql, params).execute(pool).await?;
                Ok(done.rows_affected())
            }
        }
    }

    async fn scalar(&self, sql: &str, params: Vec<P>) -> Result<u64, StoreError> {
        let n: i64 = match &self.backend {
            Backend::Sqlite(conn) => {
                on_sqlite(conn, sql, params, |stmt, params| {
                    Ok(stmt.query_row(params, |r| r.get(0))?)
                })
                .await?
            }
            Backend::Postgres { pool, table, .. } => {
                use sqlx::Row;
                self.ensure_schema().await?;
                pg_query(table, sql, params)
                    .fetch_one(pool)
                    .await?
                    .try_get(0)?
            }
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Run `f` on the prepared statement `sql` with `params`, on a blocking thread
/// (rusqlite is synchronous).
async fn on_sqlite<T: Send + 'static>(
    conn: &Arc<Mutex<rusqlite::Connection>>,
    sql: &str,
    params: Vec<P>,
    f: impl FnOnce(
        &mut rusqlite::CachedStatement<'_>,
        rusqlite::ParamsFromIter<Vec<rusqlite::types::Value>>,
    ) -> Result<T, StoreError>
    + Send
    + 'static,
) -> Result<T, StoreError> {
    let sql = sqlite_sql(sql);
    let conn = Arc::clone(conn);
    blocking(move || {
        let conn = lock(&conn);
        let mut stmt = conn.prepare_cached(&sql)?;
        let values: Vec<rusqlite::types::Value> = params.into_iter().map(sqlite_value).collect();
        f(&mut stmt, rusqlite::params_from_iter(values))
    })
    .await
}

/// The PostgreSQL statement `sql` on `table` with `params` bound. The statements
/// are this file's constants; the table name was checked to be an identifier when
/// the config was loaded.
fn pg_query(
    table: &str,
    sql: &str,
    params: Vec<P>,
) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
    bind_pg(
        sqlx::query(sqlx::AssertSqlSafe(sql.replace("{t}", table))),
        params,
    )
}

/// Expired rows are kept a day before they are deleted.
const DEFAULT_PURGE_MS: i64 = 24 * 3600 * 1000;

/// The error of a denied (or timed-out) approval.
fn denial(approval: &Approval) -> JobError {
    let detail = match &approval.decision {
        Some(d) if d.by == "timeout" => {
            "the approval request timed out; no approver decided in time".to_owned()
        }
        Some(d) => match &d.comment {
            Some(c) => format!("denied by {}: {c}", d.by),
            None => format!("denied by {}", d.by),
        },
        None => "denied".to_owned(),
    };
    JobError {
        code: "approval_denied".into(),
        detail,
    }
}

/// A job id: 128 random bits in hex.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness (never seen on Linux): time and a counter stay unique.
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes[..8].copy_from_slice(&now_ms().to_be_bytes());
        bytes[8..].copy_from_slice(&n.to_be_bytes());
    }
    hex::encode(bytes)
}

fn lock(conn: &Mutex<rusqlite::Connection>) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
    match conn.lock() {
        Ok(c) => c,
        Err(poisoned) => poisoned.into_inner(),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

/// SQLite spells positional parameters `?N` and the table is `jobs`.
fn sqlite_sql(sql: &str) -> String {
    sql.replace("{t}", "jobs").replace('$', "?")
}

fn sqlite_value(p: P) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match p {
        P::I(Some(i)) => V::Integer(i),
        P::T(Some(s)) => V::Text(s),
        P::I(None) | P::T(None) => V::Null,
    }
}

fn bind_pg(
    mut q: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    params: Vec<P>,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for p in params {
        q = match p {
            P::I(v) => q.bind(v),
            P::T(v) => q.bind(v),
        };
    }
    q
}

/// A row as stored, before its JSON columns are read.
struct Raw {
    id: String,
    tool: String,
    arguments: String,
    args_hash: String,
    principal: String,
    state: String,
    created_ms: i64,
    updated_ms: i64,
    started_ms: Option<i64>,
    finished_ms: Option<i64>,
    timeout_ms: i64,
    idempotent: i64,
    attempts: i64,
    progress: Option<String>,
    result: Option<String>,
    error: Option<String>,
    cancel_requested: i64,
    webhook: Option<String>,
    approval: Option<String>,
    expires_ms: Option<i64>,
    trace_id: Option<String>,
    lease_owner: Option<String>,
    lease_until_ms: Option<i64>,
    origin: String,
    ttl_ms: i64,
    webhook_attempts: i64,
}

macro_rules! read_raw {
    ($get:ident, $row:ident) => {
        Raw {
            id: $get($row, "id")?,
            tool: $get($row, "tool")?,
            arguments: $get($row, "arguments")?,
            args_hash: $get($row, "args_hash")?,
            principal: $get($row, "principal")?,
            state: $get($row, "state")?,
            created_ms: $get($row, "created_ms")?,
            updated_ms: $get($row, "updated_ms")?,
            started_ms: $get($row, "started_ms")?,
            finished_ms: $get($row, "finished_ms")?,
            timeout_ms: $get($row, "timeout_ms")?,
            idempotent: $get($row, "idempotent")?,
            attempts: $get($row, "attempts")?,
            progress: $get($row, "progress")?,
            result: $get($row, "result")?,
            error: $get($row, "error")?,
            cancel_requested: $get($row, "cancel_requested")?,
            webhook: $get($row, "webhook")?,
            approval: $get($row, "approval")?,
            expires_ms: $get($row, "expires_ms")?,
            trace_id: $get($row, "trace_id")?,
            lease_owner: $get($row, "lease_owner")?,
            lease_until_ms: $get($row, "lease_until_ms")?,
            origin: $get($row, "origin")?,
            ttl_ms: $get($row, "ttl_ms")?,
            webhook_attempts: $get($row, "webhook_attempts")?,
        }
    };
}

fn sget<T: rusqlite::types::FromSql>(row: &rusqlite::Row<'_>, c: &str) -> Result<T, StoreError> {
    Ok(row.get(c)?)
}

fn raw_sqlite(row: &rusqlite::Row<'_>) -> Result<Raw, StoreError> {
    Ok(read_raw!(sget, row))
}

fn pget<'r, T>(row: &'r sqlx::postgres::PgRow, c: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    use sqlx::Row;
    Ok(row.try_get(c)?)
}

fn raw_pg(row: &sqlx::postgres::PgRow) -> Result<Raw, StoreError> {
    Ok(read_raw!(pget, row))
}

impl Raw {
    fn into_job(self) -> Result<Job, StoreError> {
        let bad = |what: &str, e: serde_json::Error| {
            StoreError::Malformed(format!("job {}: {what}: {e}", self.id))
        };
        let owner: Owner =
            serde_json::from_str(&self.principal).map_err(|e| bad("principal", e))?;
        let parse_opt = |s: &Option<String>, what: &str| -> Result<Option<Value>, StoreError> {
            s.as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| bad(what, e))
        };
        Ok(Job {
            arguments: serde_json::from_str(&self.arguments).map_err(|e| bad("arguments", e))?,
            progress: parse_opt(&self.progress, "progress")?,
            result: parse_opt(&self.result, "result")?,
            error: self
                .error
                .as_deref()
                .map(serde_json::from_str::<JobError>)
                .transpose()
                .map_err(|e| bad("error", e))?,
            approval: self
                .approval
                .as_deref()
                .map(serde_json::from_str::<Approval>)
                .transpose()
                .map_err(|e| bad("approval", e))?,
            state: State::parse(&self.state).ok_or_else(|| {
                StoreError::Malformed(format!("job {}: state {:?}", self.id, self.state))
            })?,
            owner,
            tool: self.tool,
            args_hash: self.args_hash,
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            started_ms: self.started_ms,
            finished_ms: self.finished_ms,
            timeout_ms: u64::try_from(self.timeout_ms).unwrap_or(0),
            idempotent: self.idempotent != 0,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            cancel_requested: self.cancel_requested != 0,
            webhook: self.webhook,
            expires_ms: self.expires_ms,
            trace_id: self.trace_id,
            lease_owner: self.lease_owner,
            lease_until_ms: self.lease_until_ms,
            origin: self.origin,
            ttl_ms: u64::try_from(self.ttl_ms).unwrap_or(0),
            webhook_attempts: u32::try_from(self.webhook_attempts).unwrap_or(0),
            id: self.id,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owner(name: &str) -> Owner {
        Owner {
            name: name.into(),
            hash: format!("{name}-hash"),
            scopes: None,
            identity: None,
        }
    }

    fn new_job(tool: &str, who: &str, idempotent: bool, approval: Option<Approval>) -> NewJob {
        NewJob {
            tool: tool.into(),
            arguments: json!({"n": 1}),
            args_hash: "00".into(),
            owner: owner(who),
            timeout_ms: 1000,
            idempotent,
            webhook: None,
            approval,
            trace_id: None,
            origin: "rest".into(),
            ttl_ms: 60_000,
        }
    }

    fn store() -> Store {
        Store::open_sqlite(Path::new(":memory:")).unwrap()
    }

    #[tokio::test]
    async fn a_job_is_claimed_once_and_its_outcome_kept_only_under_its_lease() {
        let s = store();
        let job = s.insert(new_job("t", "a", true, None)).await.unwrap();
        assert_eq!(job.state, State::Queued);
        let first = s.claim("r1", 10, 10_000).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].attempts, 1);
        assert!(
            s.claim("r2", 10, 10_000).await.unwrap().is_empty(),
            "claimed twice"
        );
        assert_eq!(
            s.renew(&job.id, "r2", 10_000, None).await.unwrap(),
            None,
            "not r2's lease"
        );
        let progress = json!({"progress": 5});
        assert_eq!(
            s.renew(&job.id, "r1", 10_000, Some(&progress))
                .await
                .unwrap(),
            Some(false)
        );
        assert!(
            s.finish(&job.id, "r2", State::Succeeded, Some(&json!(1)), None)
                .await
                .unwrap()
                .is_none()
        );
        let done = s
            .finish(&job.id, "r1", State::Succeeded, Some(&json!(1)), None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (done.state, done.result.clone(), done.progress.clone()),
            (State::Succeeded, Some(json!(1)), Some(progress))
        );
        assert!(done.expires_ms.is_some());
        assert_eq!(done.lease_owner.as_deref(), Some("r1"));
    }

    #[tokio::test]
    async fn a_lost_replicas_jobs_run_again_only_when_idempotent() {
        let s = store();
        let again = s.insert(new_job("t", "a", true, None)).await.unwrap();
        let once = s.insert(new_job("t", "a", false, None)).await.unwrap();
        assert_eq!(s.claim("dead", 10, 1).await.unwrap().len(), 2);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let swept = s.sweep().await.unwrap();
        assert_eq!(
            swept.requeued.iter().map(|j| &j.id).collect::<Vec<_>>(),
            vec![&again.id]
        );
        assert_eq!(swept.lost.len(), 1);
        let lost = s.get(&once.id).await.unwrap().unwrap();
        assert_eq!(lost.state, State::Failed);
        assert_eq!(lost.error.unwrap().code, "replica_lost");
        let rerun = s.claim("live", 10, 10_000).await.unwrap();
        assert_eq!((rerun.len(), rerun[0].attempts), (1, 2));
        // A requeue (no call slot free) does not count as an attempt.
        assert!(s.requeue(&again.id, "live", 0).await.unwrap());
        assert_eq!(s.claim("live", 10, 10_000).await.unwrap()[0].attempts, 2);
    }

    #[tokio::test]
    async fn cancel_ends_a_waiting_job_and_asks_a_running_one() {
        let s = store();
        let queued = s.insert(new_job("t", "a", true, None)).await.unwrap();
        assert!(
            s.cancel(&queued.id, Some("b-hash"))
                .await
                .unwrap()
                .is_none(),
            "another owner"
        );
        let c = s.cancel(&queued.id, Some("a-hash")).await.unwrap().unwrap();
        assert_eq!(c.state, State::Cancelled);
        let running = s.insert(new_job("t", "a", true, None)).await.unwrap();
        s.claim("r", 10, 10_000).await.unwrap();
        let asked = s.cancel(&running.id, None).await.unwrap().unwrap();
        assert_eq!(
            (asked.state, asked.cancel_requested),
            (State::Running, true)
        );
        assert_eq!(
            s.renew(&running.id, "r", 10_000, None).await.unwrap(),
            Some(true)
        );
    }

    #[tokio::test]
    async fn approvals_are_decided_once_and_time_out_as_denials() {
        let s = store();
        let gate = |deadline_ms| Approval {
            approvers: vec!["x".into()],
            reason_required: false,
            deadline_ms,
            decision: None,
        };
        let job = s
            .insert(new_job("t", "a", false, Some(gate(now_ms() + 60_000))))
            .await
            .unwrap();
        assert_eq!(job.state, State::AwaitingApproval);
        assert!(
            s.claim("r", 10, 10_000).await.unwrap().is_empty(),
            "not before its approval"
        );
        let yes = Decision {
            approved: true,
            by: "boss".into(),
            at_ms: now_ms(),
            comment: None,
        };
        assert_eq!(
            s.decide(&job.id, yes.clone()).await.unwrap().unwrap().state,
            State::Queued
        );
        assert!(
            s.decide(&job.id, yes).await.unwrap().is_none(),
            "decided twice"
        );
        let late = s
            .insert(new_job("t", "a", false, Some(gate(now_ms() - 1))))
            .await
            .unwrap();
        let swept = s.sweep().await.unwrap();
        assert_eq!(swept.timed_out.len(), 1);
        let denied = s.get(&late.id).await.unwrap().unwrap();
        assert_eq!(denied.state, State::Failed);
        assert_eq!(denied.error.unwrap().code, "approval_denied");
        assert_eq!(denied.approval.unwrap().decision.unwrap().by, "timeout");
    }

    #[tokio::test]
    async fn results_expire_and_old_rows_are_purged() {
        let s = store().with_purge_after(200);
        let mut job = new_job("t", "a", true, None);
        job.ttl_ms = 0;
        let job = s.insert(job).await.unwrap();
        s.claim("r", 1, 10_000).await.unwrap();
        s.finish(
            &job.id,
            "r",
            State::Succeeded,
            Some(&json!({"big": 1})),
            None,
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(s.sweep().await.unwrap().expired, 1);
        let expired = s.get(&job.id).await.unwrap().unwrap();
        assert_eq!(
            (expired.state, expired.result, expired.arguments),
            (State::Expired, None, Value::Null)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(s.sweep().await.unwrap().purged, 1);
        assert!(s.get(&job.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_keys_jobs_list_newest_first_in_pages() {
        let s = store();
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(s.insert(new_job("t", "a", true, None)).await.unwrap().id);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        s.insert(new_job("t", "b", true, None)).await.unwrap();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = s.list("a-hash", cursor.as_deref(), 2).await.unwrap();
            seen.extend(page.jobs.into_iter().map(|j| j.id));
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        ids.reverse();
        assert_eq!(seen, ids);
        assert_eq!(s.active("a-hash").await.unwrap(), 5);
    }

    #[tokio::test]
    async fn webhooks_fall_due_when_a_job_ends_and_are_held_while_delivered() {
        let s = store();
        let mut with_hook = new_job("t", "a", true, None);
        with_hook.webhook = Some("https://example.com/hook".into());
        let job = s.insert(with_hook).await.unwrap();
        assert!(
            s.claim_webhooks(10, 1000).await.unwrap().is_empty(),
            "not before it ends"
        );
        s.claim("r", 1, 10_000).await.unwrap();
        s.finish(&job.id, "r", State::Succeeded, Some(&json!(1)), None)
            .await
            .unwrap();
        assert_eq!(s.claim_webhooks(10, 60_000).await.unwrap().len(), 1);
        assert!(
            s.claim_webhooks(10, 60_000).await.unwrap().is_empty(),
            "held by its taker"
        );
        s.webhook_attempted(&job.id, Some(now_ms() - 1))
            .await
            .unwrap();
        let again = s.claim_webhooks(10, 60_000).await.unwrap();
        assert_eq!(again[0].webhook_attempts, 1);
        s.webhook_attempted(&job.id, None).await.unwrap();
        assert!(
            s.claim_webhooks(10, 0).await.unwrap().is_empty(),
            "delivered"
        );
    }

    #[tokio::test]
    async fn a_lost_replicas_job_being_cancelled_ends_cancelled() {
        let s = store();
        let job = s.insert(new_job("t", "a", true, None)).await.unwrap();
        s.claim("dead", 1, 1).await.unwrap();
        s.cancel(&job.id, None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let swept = s.sweep().await.unwrap();
        assert!(swept.requeued.is_empty());
        assert_eq!(swept.cancelled.len(), 1);
        assert_eq!(
            s.get(&job.id).await.unwrap().unwrap().state,
            State::Cancelled
        );
    }

    #[tokio::test]
    async fn keys_take_turns_in_the_queue() {
        let s = store();
        for _ in 0..5 {
            s.insert(new_job("t", "busy", true, None)).await.unwrap();
        }
        let quiet = s.insert(new_job("t", "quiet", true, None)).await.unwrap();
        let claimed = s.claim("r", 2, 10_000).await.unwrap();
        let owners: Vec<&str> = claimed.iter().map(|j| j.owner.name.as_str()).collect();
        assert_eq!(claimed.len(), 2);
        assert!(
            owners.contains(&"quiet") && owners.contains(&"busy"),
            "{owners:?}"
        );
        assert!(claimed.iter().any(|j| j.id == quiet.id));
    }
}
