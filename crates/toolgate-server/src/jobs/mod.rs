//! Durable jobs and approval gates: the server's side of `toolgate-jobs`.
//!
//! - [`Jobs`]: the store, this replica's runner and the tools' job policies.
//! - Creating a job ([`Jobs::create`]) passes the same checks as a call (scope,
//!   rate limit, audit room, drain) plus the key's job quota (`[jobs] max_per_key`),
//!   and is audited (`transport = "job"`, outcome `queued` or `awaiting_approval`,
//!   with the arguments' SHA-256).
//! - The runner claims queued jobs with a lease and runs each through
//!   [`crate::exec::run_job_call`] as the job's owner: its scopes (as they are now),
//!   its calls-in-flight quota (a job waits for a slot), the job's deadline, the
//!   tool's bulkhead and breaker, one log line, one metric and one audit record.
//! - While a job runs its lease is renewed (with its progress); a cancel asked on
//!   any replica is seen at the next renewal, one on this replica at once.
//! - [`rest`]: the REST endpoints; [`approvals`]: deciding approvals;
//!   [`webhook`]: signed completion and approval notifications.

pub mod approvals;
pub mod rest;
pub mod view;
pub mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::Value;
use toolgate_config::LoadedConfig;
use toolgate_config::jobs::{ApprovalConfig, JobsConfig, TaskSupport};
use toolgate_core::{CancellationToken, ErrorKind, ProgressSink, ToolError};
use toolgate_jobs::{Approval, Job, JobError, NewJob, Owner, State, Store, StoreError};
use toolgate_registry::{Invocation, Transport};

use crate::AppState;
use crate::auth::{Principal, Scopes};

/// How long a runner waits before trying a job again whose key had no call slot.
const SLOT_WAIT_MS: i64 = 500;
/// The longest gap between lease renewals (and so before a cancel from another
/// replica, or progress, is seen).
const RENEW_MAX: Duration = Duration::from_secs(1);
/// How often a replica sweeps (lost replicas' jobs, approval timeouts, TTLs).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// What a tool's jobs are bound by.
#[derive(Debug, Clone)]
pub struct JobPolicy {
    /// A job's deadline.
    pub timeout: Duration,
    /// Its approval gate.
    pub approval: Option<ApprovalConfig>,
    /// Whether MCP clients may or must run it as a task.
    pub task_support: TaskSupport,
}

/// The settings of `[jobs]` the runner uses.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Jobs this replica runs at once.
    pub workers: usize,
    /// Lease length, ms.
    pub lease_ms: i64,
    /// Idle poll, ms.
    pub poll: Duration,
    /// Result TTL, ms.
    pub ttl_ms: u64,
    /// Jobs a key may have not ended.
    pub max_per_key: u64,
    /// A job's deadline when its tool sets none.
    pub default_timeout: Duration,
    /// The store is a file or a database (not memory).
    pub durable: bool,
}

/// The jobs of this server.
pub struct Jobs {
    store: Store,
    /// This process's name in leases.
    replica: String,
    settings: Settings,
    policies: ArcSwap<HashMap<String, JobPolicy>>,
    /// Whether any tool has an approval gate (spares every call a map lookup).
    any_approval: std::sync::atomic::AtomicBool,
    /// Whether any tool's `task_support` is `required` (likewise).
    any_required: std::sync::atomic::AtomicBool,
    /// Jobs this replica runs: their cancellation.
    running: Mutex<HashMap<String, CancellationToken>>,
    /// Wakes the runner (a job was created or approved here).
    wake: tokio::sync::Notify,
    /// Ended jobs are announced here (MCP task status notifications).
    ended: tokio::sync::broadcast::Sender<Arc<Job>>,
    /// Signed notifications.
    pub(crate) webhooks: webhook::Webhooks,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("store", &self.store)
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

fn policies_of(loaded: &LoadedConfig, default_timeout: Duration) -> HashMap<String, JobPolicy> {
    loaded
        .config
        .tools
        .iter()
        .map(|t| {
            let tool_timeout = t
                .timeout_ms
                .as_ref()
                .map(|v| Duration::from_millis(*v.get_ref()))
                .unwrap_or_default();
            let timeout = t.job_timeout_ms.as_ref().map_or_else(
                || default_timeout.max(tool_timeout),
                |v| Duration::from_millis(*v.get_ref()),
            );
            let approval = t.approval.as_ref().map(|a| a.get_ref().clone());
            let task_support = if approval.is_some() {
                TaskSupport::Required
            } else {
                t.task_support
                    .as_ref()
                    .map_or_else(TaskSupport::default, |v| *v.get_ref())
            };
            let policy = JobPolicy {
                timeout,
                approval,
                task_support,
            };
            (t.name.get_ref().clone(), policy)
        })
        .collect()
}

impl Jobs {
    /// The jobs of `loaded`'s `[jobs]`: SQLite (its `path`, or `toolgate-jobs.db`),
    /// PostgreSQL (its `url`), or, without the table, memory.
    ///
    /// # Errors
    /// The store cannot be opened.
    pub async fn open(loaded: &LoadedConfig) -> Result<Self, String> {
        let (cfg, durable) = match &loaded.config.jobs {
            Some(j) => (j.get_ref().clone(), true),
            None => (JobsConfig::default(), false),
        };
        let store = if !durable {
            Store::open_sqlite(std::path::Path::new(":memory:"))
        } else if let Some(url) = &cfg.url {
            Store::open_postgres(url.get_ref().as_str(), &cfg.table).await
        } else {
            let path = cfg.path.as_ref().map_or_else(
                || "toolgate-jobs.db".to_owned(),
                |p| p.get_ref().as_str().to_owned(),
            );
            Store::open_sqlite(std::path::Path::new(&path))
        }
        .map_err(|e| format!("jobs: {e}"))?;
        let webhooks = webhook::Webhooks::new(
            &loaded
                .config
                .jobs
                .as_ref()
                .map(|j| j.get_ref().clone())
                .unwrap_or_default(),
        )?;
        Ok(Self::with_store(loaded, store, durable, webhooks))
    }

    /// The jobs of `loaded` kept in memory (tests, and state built without
    /// [`Jobs::open`]).
    ///
    /// # Panics
    /// Opening an in-memory SQLite database failed (it has no file; never seen).
    #[must_use]
    pub fn in_memory(loaded: &LoadedConfig) -> Self {
        #[allow(clippy::expect_used)]
        let store = Store::open_sqlite(std::path::Path::new(":memory:"))
            .expect("an in-memory SQLite database opens");
        let cfg = loaded
            .config
            .jobs
            .as_ref()
            .map(|j| j.get_ref().clone())
            .unwrap_or_default();
        let webhooks = webhook::Webhooks::new(&cfg).unwrap_or_else(|e| {
            tracing::error!(error = %e, "webhooks are off");
            webhook::Webhooks::disabled()
        });
        Self::with_store(loaded, store, false, webhooks)
    }

    fn with_store(
        loaded: &LoadedConfig,
        store: Store,
        durable: bool,
        webhooks: webhook::Webhooks,
    ) -> Self {
        let cfg = loaded
            .config
            .jobs
            .as_ref()
            .map(|j| j.get_ref().clone())
            .unwrap_or_default();
        let settings = Settings {
            workers: cfg.workers,
            lease_ms: i64::try_from(cfg.lease_ms).unwrap_or(15_000),
            poll: Duration::from_millis(cfg.poll_ms),
            ttl_ms: cfg.result_ttl_ms,
            max_per_key: cfg.max_per_key,
            default_timeout: Duration::from_millis(cfg.default_timeout_ms),
            durable,
        };
        let policies = policies_of(loaded, settings.default_timeout);
        let any = policies.values().any(|p| p.approval.is_some());
        let required = policies
            .values()
            .any(|p| p.task_support == TaskSupport::Required);
        let mut id = [0u8; 6];
        let _ = getrandom::fill(&mut id);
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "toolgate".to_owned());
        Self {
            replica: format!("{host}-{}-{}", std::process::id(), hex::encode(id)),
            webhooks,
            store,
            settings,
            policies: ArcSwap::from_pointee(policies),
            any_approval: std::sync::atomic::AtomicBool::new(any),
            any_required: std::sync::atomic::AtomicBool::new(required),
            running: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            ended: tokio::sync::broadcast::channel(256).0,
        }
    }

    /// Take the tools' job policies of a reloaded config.
    pub fn update(&self, loaded: &LoadedConfig) {
        let policies = policies_of(loaded, self.settings.default_timeout);
        self.any_approval.store(
            policies.values().any(|p| p.approval.is_some()),
            std::sync::atomic::Ordering::Relaxed,
        );
        self.any_required.store(
            policies
                .values()
                .any(|p| p.task_support == TaskSupport::Required),
            std::sync::atomic::Ordering::Relaxed,
        );
        self.policies.store(Arc::new(policies));
    }

    /// The store (tests and the CLI).
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// This replica's name in leases.
    #[must_use]
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Ended jobs, as they end on this replica.
    #[must_use]
    pub fn subscribe_ended(&self) -> tokio::sync::broadcast::Receiver<Arc<Job>> {
        self.ended.subscribe()
    }

    /// Whether calls of `tool` need an approval (and so must be started as jobs).
    #[must_use]
    pub fn needs_approval(&self, tool: &str) -> bool {
        self.any_approval.load(std::sync::atomic::Ordering::Relaxed)
            && self
                .policies
                .load()
                .get(tool)
                .is_some_and(|p| p.approval.is_some())
    }

    /// Whether `tool` runs only as a task (cheap when no tool does).
    #[must_use]
    pub fn task_required(&self, tool: &str) -> bool {
        self.any_required.load(std::sync::atomic::Ordering::Relaxed)
            && self.task_support(tool) == TaskSupport::Required
    }

    /// How MCP clients may run `tool` as a task.
    #[must_use]
    pub fn task_support(&self, tool: &str) -> TaskSupport {
        self.policies
            .load()
            .get(tool)
            .map_or_else(TaskSupport::default, |p| p.task_support)
    }

    /// The job policy of `tool` (a tool the config does not name, an imported or
    /// federated one, gets the defaults).
    #[must_use]
    pub fn policy(&self, tool: &str, tool_timeout: Duration) -> JobPolicy {
        self.policies
            .load()
            .get(tool)
            .cloned()
            .unwrap_or(JobPolicy {
                timeout: self.settings.default_timeout.max(tool_timeout),
                approval: None,
                task_support: TaskSupport::default(),
            })
    }

    /// Create a job of `tool` for `caller` (checked as a call is, plus the job
    /// quota), audited. `origin` is `rest` or `mcp`.
    ///
    /// # Errors
    /// The caller may not call the tool, the arguments are invalid, a limit or the
    /// job quota is reached, or the store is down.
    pub async fn create(
        &self,
        state: &AppState,
        caller: &Principal,
        tool: &str,
        arguments: Value,
        webhook: Option<String>,
        origin: &str,
    ) -> Result<Job, ToolError> {
        let new = self
            .prepare(state, caller, tool, arguments, webhook, origin)
            .await?;
        self.check_quota(caller, 1).await?;
        self.insert(state, caller, new).await
    }

    /// Check a job of `tool` as a call would be checked, and build it.
    pub(crate) async fn prepare(
        &self,
        state: &AppState,
        caller: &Principal,
        tool: &str,
        arguments: Value,
        webhook: Option<String>,
        origin: &str,
    ) -> Result<NewJob, ToolError> {
        if !caller.allows(tool) {
            if let Some(audit) = &state.audit {
                audit.record_refusal(
                    &caller.name,
                    caller.identity.as_ref(),
                    tool,
                    "job",
                    "forbidden",
                    crate::trace::current().unwrap_or_default(),
                );
            }
            return Err(ToolError::new(
                ErrorKind::Forbidden,
                format!("the key {:?} has no scope for tool {tool:?}", caller.name),
            ));
        }
        let entry = state.registry.get(tool).ok_or_else(|| {
            ToolError::new(ErrorKind::ToolNotFound, format!("no tool named {tool:?}"))
        })?;
        entry.check_arguments(&arguments)?;
        if let Some(url) = &webhook {
            self.webhooks.check_url(url).await?;
        }
        crate::exec::admit_entry(state, caller).await?;
        let spec = entry.spec();
        let policy = self.policy(tool, spec.timeout);
        let approval = policy.approval.as_ref().map(|a| Approval {
            approvers: a.approvers.clone(),
            reason_required: a.reason_required,
            deadline_ms: toolgate_jobs::now_ms()
                .saturating_add(i64::try_from(a.timeout_ms).unwrap_or(i64::MAX)),
            decision: None,
        });
        Ok(NewJob {
            tool: tool.to_owned(),
            args_hash: hex::encode(toolgate_audit::record::args_digest(&arguments)),
            arguments,
            owner: owner_of(caller),
            timeout_ms: u64::try_from(policy.timeout.as_millis()).unwrap_or(u64::MAX),
            // An approved call runs once: never again after a lost replica.
            idempotent: spec.annotations.idempotent && approval.is_none(),
            webhook,
            approval,
            trace_id: crate::trace::current(),
            origin: origin.to_owned(),
            ttl_ms: self.settings.ttl_ms,
        })
    }

    /// Refuse when `caller` would hold more than `[jobs] max_per_key` jobs with `n`
    /// more.
    pub(crate) async fn check_quota(&self, caller: &Principal, n: u64) -> Result<(), ToolError> {
        let active = self
            .store
            .active(&owner_hash(caller))
            .await
            .map_err(|e| unavailable(&e))?;
        if active + n > self.settings.max_per_key && !caller.privileged {
            metrics::counter!(
                toolgate_telemetry::metrics::QUOTA_EXCEEDED,
                "key" => caller.name.clone(),
                "quota" => "jobs"
            )
            .increment(1);
            return Err(ToolError::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "the key {:?} has {active} of its {} jobs not ended (`[jobs] max_per_key`)",
                    caller.name, self.settings.max_per_key
                ),
            )
            .with_retry_after(Duration::from_secs(1)));
        }
        Ok(())
    }

    /// Store a prepared job, audit its creation, and announce an approval request.
    pub(crate) async fn insert(
        &self,
        state: &AppState,
        caller: &Principal,
        new: NewJob,
    ) -> Result<Job, ToolError> {
        let job = self.store.insert(new).await.map_err(|e| unavailable(&e))?;
        let outcome = if job.state == State::AwaitingApproval {
            "awaiting_approval"
        } else {
            "queued"
        };
        audit_event(
            state,
            &caller.name,
            caller.identity.as_ref(),
            &job,
            "job",
            outcome,
        )
        .await;
        tracing::info!(job = %job.id, tool = %job.tool, key = %caller.name, state = outcome, "job created");
        if job.state == State::AwaitingApproval {
            self.webhooks.approval_requested(&job);
        } else {
            self.wake.notify_one();
        }
        Ok(job)
    }

    /// Cancel job `id` for `caller` (an operator key may cancel any). Waits up to
    /// `wait` for a running job to stop.
    ///
    /// # Errors
    /// No such job of the caller, or the store is down.
    pub async fn cancel(
        &self,
        caller: &Principal,
        id: &str,
        wait: Duration,
    ) -> Result<Job, ToolError> {
        let owner = (!caller.privileged).then(|| owner_hash(caller));
        let job = self
            .store
            .cancel(id, owner.as_deref())
            .await
            .map_err(|e| unavailable(&e))?
            .ok_or_else(|| job_not_found(id))?;
        if job.state != State::Running {
            return Ok(job);
        }
        if let Some(token) = lock(&self.running).get(id) {
            token.cancel();
        }
        let until = tokio::time::Instant::now() + wait;
        let mut job = job;
        while !job.state.is_final() && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Some(j) = self.store.get(id).await.map_err(|e| unavailable(&e))? {
                job = j;
            }
        }
        Ok(job)
    }

    /// Job `id` if `caller` owns it (or is an operator).
    ///
    /// # Errors
    /// No such job of the caller, or the store is down.
    pub async fn get(&self, caller: &Principal, id: &str) -> Result<Job, ToolError> {
        let job = self
            .store
            .get(id)
            .await
            .map_err(|e| unavailable(&e))?
            .ok_or_else(|| job_not_found(id))?;
        if job.owner.hash != owner_hash(caller) && !caller.privileged {
            return Err(job_not_found(id));
        }
        Ok(job)
    }

    /// Jobs this replica is running (the drain waits for them).
    #[must_use]
    pub fn running(&self) -> usize {
        lock(&self.running).len()
    }

    /// Start this replica's runner and sweeper; they stop when the server drains.
    pub fn start(state: &AppState) {
        let runner = state.clone();
        tokio::spawn(async move { run_loop(runner).await });
    }

    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }
}

/// What the store keeps of `caller`.
fn owner_of(caller: &Principal) -> Owner {
    let scopes = match &caller.scopes {
        Scopes::All => None,
        Scopes::Patterns(p) => Some(p.iter().map(|p| p.as_str().to_owned()).collect()),
    };
    let identity = caller.identity.as_ref().map(|i| {
        serde_json::json!({
            "issuer": i.issuer,
            "subject": i.subject,
            "client_id": i.client_id,
            "claims": caller.caller.claims.as_deref(),
        })
    });
    Owner {
        name: caller.name.clone(),
        hash: owner_hash(caller),
        scopes,
        identity,
    }
}

/// The digest a caller's jobs are filed under.
#[must_use]
pub fn owner_hash(caller: &Principal) -> String {
    hex::encode(caller.hash.digest())
}

/// The principal a job runs as: the key as configured now (its scopes, limits and
/// quotas), or, for a token's job, the token's subject with the scopes it had.
fn principal_of(state: &AppState, owner: &Owner) -> Option<Arc<Principal>> {
    let digest: [u8; 32] = hex::decode(&owner.hash).ok()?.try_into().ok()?;
    let hash = toolgate_config::KeyHash::from_digest(digest);
    if let Some(p) = state.keys.find(&hash) {
        return Some(p);
    }
    let identity = owner.identity.as_ref()?;
    let patterns = owner
        .scopes
        .as_ref()?
        .iter()
        .filter_map(|s| toolgate_config::ScopePattern::parse(s).ok())
        .collect();
    let claims = identity
        .get("claims")
        .and_then(Value::as_object)
        .cloned()
        .map(Arc::new);
    let mut p = Principal::new(owner.name.clone(), Scopes::Patterns(patterns), hash);
    p.caller = crate::auth::caller_identity(&owner.name, claims, None);
    p.identity = Some(Arc::new(crate::auth::TokenIdentity {
        issuer: identity
            .get("issuer")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        subject: identity
            .get("subject")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        client_id: identity
            .get("client_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }));
    Some(Arc::new(p))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// `503 jobs_unavailable`; the store's error is logged, not shown.
pub(crate) fn unavailable(e: &StoreError) -> ToolError {
    tracing::warn!(error = %e, "job store failed");
    ToolError::new(
        ErrorKind::JobsUnavailable,
        "the job store is unavailable; try again shortly",
    )
    .with_retry_after(Duration::from_secs(1))
}

/// `404 job_not_found`.
pub(crate) fn job_not_found(id: &str) -> ToolError {
    ToolError::new(ErrorKind::JobNotFound, format!("no job {id:?} of this key"))
}

/// `409 approval_required`: how to ask for the approval.
#[must_use]
pub fn approval_required(tool: &str) -> ToolError {
    ToolError::new(
        ErrorKind::ApprovalRequired,
        format!(
            "tool {tool:?} runs only once approved: start it as a job (POST /api/v1/tools/{tool}/jobs) or as an MCP task"
        ),
    )
}

/// Audit a job event (creation, decision) with the job's arguments hash.
pub(crate) async fn audit_event(
    state: &AppState,
    key: &str,
    identity: Option<&Arc<crate::auth::TokenIdentity>>,
    job: &Job,
    transport: &'static str,
    outcome: &'static str,
) {
    let Some(audit) = &state.audit else {
        return;
    };
    let digest: [u8; 32] = hex::decode(&job.args_hash)
        .ok()
        .and_then(|d| d.try_into().ok())
        .unwrap_or([0; 32]);
    let facts = crate::audit::CallFacts {
        key,
        identity,
        tool: &job.tool,
        transport,
        outcome,
        duration_ms: 0,
        trace_id: crate::trace::current()
            .unwrap_or_else(|| job.trace_id.clone().unwrap_or_default()),
    };
    if let Err(e) = audit
        .record(facts, crate::audit::CapturedArgs::of_digest(digest))
        .await
    {
        tracing::warn!(error = %e, job = %job.id, "a job event's audit record could not be kept");
    }
}

/// The runner: claim what there is room for, sweep now and then, until the drain.
async fn run_loop(state: AppState) {
    let jobs = &state.jobs;
    let mut last_sweep = tokio::time::Instant::now() - SWEEP_EVERY;
    loop {
        if state.shutdown.is_cancelled() {
            break;
        }
        if last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = tokio::time::Instant::now();
            sweep(&state).await;
        }
        webhook::deliver_due(&state).await;
        let free = jobs
            .settings
            .workers
            .saturating_sub(lock(&jobs.running).len());
        let claimed = if free == 0 {
            Vec::new()
        } else {
            // Each claim leases under a name of its own, so a run that lost its lease
            // can never renew or end a later claim of the same job by this replica.
            let mut nonce = [0u8; 6];
            let _ = getrandom::fill(&mut nonce);
            let lease = format!("{}#{}", jobs.replica, hex::encode(nonce));
            match jobs.store.claim(&lease, free, jobs.settings.lease_ms).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming jobs failed");
                    Vec::new()
                }
            }
        };
        let full = claimed.len() == free && free > 0;
        for job in claimed {
            let token = CancellationToken::new();
            lock(&jobs.running).insert(job.id.clone(), token.clone());
            let state = state.clone();
            tokio::spawn(async move {
                let id = job.id.clone();
                run_one(&state, job, token).await;
                lock(&state.jobs.running).remove(&id);
                state.jobs.wake();
            });
        }
        if full {
            // There may be more: claim again at once.
            continue;
        }
        tokio::select! {
            () = state.shutdown.cancelled() => break,
            () = jobs.wake.notified() => {}
            () = tokio::time::sleep(jobs.settings.poll) => {}
        }
    }
}

/// One sweep: lost replicas' jobs, approval timeouts (audited as denied by
/// `timeout`), expired results.
async fn sweep(state: &AppState) {
    let swept = match state.jobs.store.sweep().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "sweeping jobs failed");
            return;
        }
    };
    for job in &swept.requeued {
        tracing::info!(job = %job.id, tool = %job.tool, "a lost replica's job is queued again (idempotent tool)");
    }
    if !swept.requeued.is_empty() {
        state.jobs.wake();
    }
    for job in swept.cancelled {
        tracing::info!(job = %job.id, tool = %job.tool, "a lost replica's job was being cancelled: cancelled");
        ended(state, job);
    }
    for job in swept.lost {
        tracing::warn!(job = %job.id, tool = %job.tool, "a lost replica's job failed (tool not idempotent)");
        ended(state, job);
    }
    for job in swept.timed_out {
        tracing::info!(job = %job.id, tool = %job.tool, "approval timed out");
        audit_event(state, "timeout", None, &job, "approval", "denied").await;
        ended(state, job);
    }
}

/// Announce an ended job: its webhook, and MCP task notifications.
pub(crate) fn ended(state: &AppState, job: Job) {
    metrics::counter!("toolgate_jobs_ended_total", "state" => job.state.as_str()).increment(1);
    if job.webhook.is_some() {
        // Its delivery is due in the store; the runner makes it.
        state.jobs.wake();
    }
    let job = Arc::new(job);
    let _ = state.jobs.ended.send(job);
}

/// Run one claimed job to its end (or until its lease is lost or the server stops).
async fn run_one(state: &AppState, job: Job, token: CancellationToken) {
    let jobs = &state.jobs;
    let lease = job.lease_owner.clone().unwrap_or_default();
    if job.cancel_requested {
        // Asked to stop while it went back to the queue: it never starts.
        let err = JobError {
            code: ErrorKind::Cancelled.code().into(),
            detail: "cancelled by its caller".into(),
        };
        finish(state, &job, State::Cancelled, None, Some(&err)).await;
        return;
    }
    if job.approval.is_none() && jobs.needs_approval(&job.tool) {
        // The tool gained an approval gate (a reload) after this job was queued.
        let e = approval_required(&job.tool);
        let err = JobError {
            code: e.kind.code().into(),
            detail: e.message,
        };
        finish(state, &job, State::Failed, None, Some(&err)).await;
        return;
    }
    let Some(caller) = principal_of(state, &job.owner) else {
        let err = JobError {
            code: ErrorKind::Forbidden.code().into(),
            detail: format!(
                "the key {:?} that created the job is no longer configured",
                job.owner.name
            ),
        };
        finish(state, &job, State::Failed, None, Some(&err)).await;
        return;
    };
    let slot = match caller.take_slot(crate::quota::QuotaKind::Calls) {
        Ok(slot) => slot,
        Err(_) => {
            // The key is at its calls-in-flight quota: the job waits its turn.
            if let Err(e) = jobs.store.requeue(&job.id, &lease, SLOT_WAIT_MS).await {
                tracing::warn!(error = %e, job = %job.id, "a job could not be queued again");
            }
            return;
        }
    };
    let progress: Arc<Mutex<Option<Value>>> = Arc::default();
    let sink = {
        let progress = Arc::clone(&progress);
        ProgressSink::new(move |p| {
            let mut v = serde_json::json!({"progress": p.progress});
            if let Some(t) = p.total {
                v["total"] = t.into();
            }
            if let Some(m) = p.message {
                v["message"] = m.into();
            }
            *lock(&progress) = Some(v);
        })
    };
    let inv = Invocation {
        timeouts: Vec::new(),
        max_timeout: Some(Duration::from_millis(job.timeout_ms)),
        cancel: token.clone(),
        progress: sink,
        trace_id: job.trace_id.clone(),
        transport: Transport::Job,
        caller: None,
        client: None,
    };
    let call =
        crate::exec::run_job_call(state, &caller, &job.tool, job.arguments.clone(), inv, slot);
    let renew_every =
        Duration::from_millis(u64::try_from(jobs.settings.lease_ms / 3).unwrap_or(1000))
            .min(RENEW_MAX);
    let mut renew = tokio::time::interval(renew_every);
    renew.tick().await;
    tokio::pin!(call);
    let mut lost = false;
    // Past this without a renewal the lease may have run out: the work stops
    // rather than risk running beside another replica's claim.
    let lease_for = Duration::from_millis(u64::try_from(jobs.settings.lease_ms).unwrap_or(15_000));
    let give_up_after = lease_for.saturating_sub(renew_every);
    let mut renewed = tokio::time::Instant::now();
    let outcome = loop {
        tokio::select! {
            outcome = &mut call => break outcome,
            _ = renew.tick() => {
                let p = lock(&progress).take();
                match jobs.store.renew(&job.id, &lease, jobs.settings.lease_ms, p.as_ref()).await {
                    Ok(Some(asked)) => {
                        renewed = tokio::time::Instant::now();
                        if asked {
                            token.cancel();
                        }
                    }
                    Ok(None) => {
                        tracing::warn!(job = %job.id, "the job's lease was lost; stopping it");
                        lost = true;
                        token.cancel();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, job = %job.id, "renewing a job's lease failed");
                        if renewed.elapsed() >= give_up_after && !lost {
                            tracing::warn!(job = %job.id, "no renewal for the length of the lease; stopping the job");
                            lost = true;
                            token.cancel();
                        }
                    }
                }
            }
            () = state.calls.cancelled(), if !token.is_cancelled() => {
                // The drain ran out of time: stop, and leave the job to a sweep.
                token.cancel();
            }
        }
    };
    if lost {
        return;
    }
    let stopped_by_drain = state.calls.is_cancelled()
        && matches!(&outcome.result, Err(e) if e.kind == ErrorKind::Cancelled)
        && !jobs
            .store
            .get(&job.id)
            .await
            .ok()
            .flatten()
            .is_some_and(|j| j.cancel_requested);
    if stopped_by_drain {
        // Stopped by the drain, not by its caller: a sweep decides (another replica,
        // or this one after its restart, runs it again if the tool is idempotent).
        if let Err(e) = jobs.store.release(&job.id, &lease).await {
            tracing::warn!(error = %e, job = %job.id, "a job could not be released");
        }
        return;
    }
    match outcome.result {
        Ok(output) => finish(state, &job, State::Succeeded, Some(&output), None).await,
        Err(e) => {
            let state_of = if e.kind == ErrorKind::Cancelled {
                State::Cancelled
            } else {
                State::Failed
            };
            let err = JobError {
                code: e.kind.code().into(),
                detail: if e.kind == ErrorKind::Cancelled {
                    "cancelled by its caller".into()
                } else {
                    e.message.clone()
                },
            };
            finish(state, &job, state_of, None, Some(&err)).await;
        }
    }
}

/// Keep a job's outcome; a lost lease keeps nothing (another replica has the job).
async fn finish(
    state: &AppState,
    job: &Job,
    to: State,
    output: Option<&Value>,
    err: Option<&JobError>,
) {
    let jobs = &state.jobs;
    let lease = job.lease_owner.as_deref().unwrap_or_default();
    // A store that fails is tried again while the lease may still hold (half of
    // it), so a brief outage does not turn a finished job into a re-run.
    let until = tokio::time::Instant::now()
        + Duration::from_millis(u64::try_from(jobs.settings.lease_ms / 2).unwrap_or(5000));
    loop {
        match jobs.store.finish(&job.id, lease, to, output, err).await {
            Ok(Some(done)) => {
                tracing::info!(job = %done.id, tool = %done.tool, state = done.state.as_str(), "job ended");
                ended(state, done);
                return;
            }
            Ok(None) => {
                tracing::warn!(job = %job.id, "the job's lease was lost before its outcome was kept");
                return;
            }
            Err(e) if tokio::time::Instant::now() < until => {
                tracing::warn!(error = %e, job = %job.id, "storing a job's outcome failed; trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                // The lease runs out and a sweep decides (re-run if idempotent).
                tracing::error!(error = %e, job = %job.id, "a job's outcome could not be stored");
                return;
            }
        }
    }
}
