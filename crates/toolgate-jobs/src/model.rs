//! What a job is: its states and the records kept with it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Milliseconds since the Unix epoch, now.
#[must_use]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting for a replica to run it.
    Queued,
    /// A replica holds its lease and runs it.
    Running,
    /// Ended with an output.
    Succeeded,
    /// Ended with an error (the tool's, a deadline, a denial, a lost replica).
    Failed,
    /// Cancelled by its caller.
    Cancelled,
    /// Waits for an approver's decision.
    AwaitingApproval,
    /// Ended, and its result's TTL has passed: only the record is left.
    Expired,
}

impl State {
    /// The name stored and shown (`queued`, `running`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
            State::AwaitingApproval => "awaiting_approval",
            State::Expired => "expired",
        }
    }

    /// The state named `s`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => State::Queued,
            "running" => State::Running,
            "succeeded" => State::Succeeded,
            "failed" => State::Failed,
            "cancelled" => State::Cancelled,
            "awaiting_approval" => State::AwaitingApproval,
            "expired" => State::Expired,
            _ => return None,
        })
    }

    /// Whether the job has ended (nothing will run any more).
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(
            self,
            State::Succeeded | State::Failed | State::Cancelled | State::Expired
        )
    }
}

/// Who created a job: enough to act as them again when it runs, on any replica and
/// after a restart. Never a key or a token, only the key's digest and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The key's name (or `issuer:subject` of a token).
    pub name: String,
    /// The key's digest: the job runs under the key's current scopes and quotas.
    pub hash: String,
    /// The scopes at creation, for a caller that is not a configured key (a bearer
    /// token): `None` means every tool.
    pub scopes: Option<Vec<String>>,
    /// A token's issuer, subject and client, for the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Value>,
}

/// An approval gate on a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Who may decide: scope patterns of approvers' keys, or `key:NAME` /
    /// `subject:SUB` patterns.
    pub approvers: Vec<String>,
    /// A decision must carry a comment.
    pub reason_required: bool,
    /// When the request times out (and so is denied), ms since the epoch.
    pub deadline_ms: i64,
    /// The decision, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// An approver's decision (or the timeout's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Approved or denied.
    pub approved: bool,
    /// Who decided (a key's name, a token's `issuer:subject`, or `timeout`).
    pub by: String,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// The approver's comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Why a job failed: an error code of the HTTP contract and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    /// `tool_error`, `timeout`, `approval_denied`, `replica_lost`, ...
    pub code: String,
    /// What happened.
    pub detail: String,
}

/// A job to create.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The tool to call.
    pub tool: String,
    /// Its arguments.
    pub arguments: Value,
    /// SHA-256 of the canonical arguments (what the audit log and the approval name).
    pub args_hash: String,
    /// Who asked.
    pub owner: Owner,
    /// The job's deadline, from when it starts running.
    pub timeout_ms: u64,
    /// The tool is idempotent: a job whose replica died is run again.
    pub idempotent: bool,
    /// Where to POST the outcome.
    pub webhook: Option<String>,
    /// The approval gate, when the tool has one.
    pub approval: Option<Approval>,
    /// The creating request's trace id.
    pub trace_id: Option<String>,
    /// `rest` or `mcp`.
    pub origin: String,
    /// How long the result is kept once the job ends.
    pub ttl_ms: u64,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its id (32 hex digits).
    pub id: String,
    /// The tool.
    pub tool: String,
    /// The arguments (`null` once expired).
    pub arguments: Value,
    /// SHA-256 of the arguments.
    pub args_hash: String,
    /// Who asked.
    pub owner: Owner,
    /// Where it is.
    pub state: State,
    /// Created, ms since the epoch.
    pub created_ms: i64,
    /// Last changed.
    pub updated_ms: i64,
    /// First started running.
    pub started_ms: Option<i64>,
    /// Ended.
    pub finished_ms: Option<i64>,
    /// The deadline of a run.
    pub timeout_ms: u64,
    /// Run again when its replica dies.
    pub idempotent: bool,
    /// Runs started.
    pub attempts: u32,
    /// The last progress report (`{"progress", "total"?, "message"?}`).
    pub progress: Option<Value>,
    /// The output, once succeeded.
    pub result: Option<Value>,
    /// The error, once failed or cancelled.
    pub error: Option<JobError>,
    /// A cancel was asked for while it ran.
    pub cancel_requested: bool,
    /// The completion webhook.
    pub webhook: Option<String>,
    /// The approval gate.
    pub approval: Option<Approval>,
    /// When the result expires.
    pub expires_ms: Option<i64>,
    /// The creating request's trace id.
    pub trace_id: Option<String>,
    /// The replica holding the lease (after the end, the one that ran it last).
    pub lease_owner: Option<String>,
    /// Until when.
    pub lease_until_ms: Option<i64>,
    /// `rest` or `mcp`.
    pub origin: String,
    /// Result TTL, ms.
    pub ttl_ms: u64,
    /// Delivery attempts of its webhook so far.
    pub webhook_attempts: u32,
}
