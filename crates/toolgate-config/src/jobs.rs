//! `[jobs]` and a tool's `approval`: durable jobs and approval gates.

use serde::Deserialize;
use toml::Spanned;

/// `[jobs]`: where durable jobs are kept and how they run. Without the table, jobs
/// are kept in memory (they work, but do not survive a restart).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    /// SQLite file of the jobs (`${VAR}` expanded). Default `toolgate-jobs.db` in
    /// the working directory, unless `url` is set.
    #[serde(default)]
    pub path: Option<Spanned<crate::env::EnvString>>,
    /// PostgreSQL URL (`${VAR}` expanded): replicas sharing it share the jobs.
    #[serde(default)]
    pub url: Option<Spanned<crate::env::EnvString>>,
    /// PostgreSQL table. Default `toolgate_jobs`.
    #[serde(default = "default_table")]
    pub table: String,
    /// Jobs one replica runs at once (1..=10000). Default 64.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// How long a replica's claim on a running job lasts without renewal (ms,
    /// 1000..=600000): a replica that dies gives its jobs back after this. Default
    /// 15000.
    #[serde(default = "default_lease")]
    pub lease_ms: u64,
    /// How often an idle replica looks for queued jobs (ms, 10..=60000). Default 250.
    #[serde(default = "default_poll")]
    pub poll_ms: u64,
    /// How long an ended job's result is kept (ms, 1000..=2592000000). Default 24 h.
    #[serde(default = "default_ttl")]
    pub result_ttl_ms: u64,
    /// Jobs one key may have queued, running or awaiting approval (1..=1000000).
    /// Default 100.
    #[serde(default = "default_max_per_key")]
    pub max_per_key: u64,
    /// A job's deadline when its tool sets no `job_timeout_ms` (ms, at least the
    /// tool's `timeout_ms`, at most 7 days). Default 1 h.
    #[serde(default = "default_job_timeout")]
    pub default_timeout_ms: u64,
    /// The environment variable holding the key that signs webhooks (HMAC-SHA256).
    /// Unset: webhooks are refused.
    #[serde(default)]
    pub webhook_secret_env: Option<String>,
    /// Private networks (CIDR) webhooks may reach. Default none: webhooks go to
    /// public addresses only, like `http` tools.
    #[serde(default)]
    pub webhook_allow_private: Vec<String>,
    /// Delivery attempts of one webhook (1..=20). Default 6.
    #[serde(default = "default_webhook_attempts")]
    pub webhook_attempts: u32,
    /// Where new approval requests are announced (POSTed, signed like webhooks).
    #[serde(default)]
    pub approval_webhook: Option<Spanned<String>>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            path: None,
            url: None,
            table: default_table(),
            workers: default_workers(),
            lease_ms: default_lease(),
            poll_ms: default_poll(),
            result_ttl_ms: default_ttl(),
            max_per_key: default_max_per_key(),
            default_timeout_ms: default_job_timeout(),
            webhook_secret_env: None,
            webhook_allow_private: Vec::new(),
            webhook_attempts: default_webhook_attempts(),
            approval_webhook: None,
        }
    }
}

fn default_table() -> String {
    "toolgate_jobs".into()
}
fn default_workers() -> usize {
    64
}
fn default_lease() -> u64 {
    15_000
}
fn default_poll() -> u64 {
    250
}
fn default_ttl() -> u64 {
    86_400_000
}
fn default_max_per_key() -> u64 {
    100
}
fn default_job_timeout() -> u64 {
    3_600_000
}
fn default_webhook_attempts() -> u32 {
    6
}

/// A tool's `approval = { approvers = [...], timeout_ms, reason_required }`: every
/// call waits for an approver's yes, and runs once with exactly the arguments
/// approved.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalConfig {
    /// Who may approve: scope patterns a key's scopes must hold (`refunds:approve`,
    /// `*`), `key:NAME` for a key by name, `subject:SUB` for a token's subject
    /// (`*` matches any run of characters). The caller never approves its own call.
    pub approvers: Vec<String>,
    /// How long the request waits for a decision before it is denied (ms,
    /// 1000..=2592000000). Default 1 h.
    #[serde(default = "default_job_timeout")]
    pub timeout_ms: u64,
    /// A decision must carry a comment. Default false.
    #[serde(default)]
    pub reason_required: bool,
}

/// A tool's `task_support`: whether MCP clients may (or must) run it as a task
/// (MCP's `execution.taskSupport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskSupport {
    /// Never as a task.
    Forbidden,
    /// As a task when the client asks (2025-11-25); a plain call otherwise.
    #[default]
    Optional,
    /// Only as a task (a tool with an `approval` is always this): 2026-07-28 clients
    /// that declare the tasks extension get a task for every call.
    Required,
}

impl TaskSupport {
    /// The MCP name (`forbidden`, `optional`, `required`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TaskSupport::Forbidden => "forbidden",
            TaskSupport::Optional => "optional",
            TaskSupport::Required => "required",
        }
    }
}
