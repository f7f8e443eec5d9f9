//! MCP tasks: a `tools/call` that becomes a durable job, fetched later by its id.
//!
//! A task *is* a job ([`crate::jobs`]): same store, same runner, same quotas,
//! deadlines and audit, the task id is the job id, and REST (`/api/v1/jobs/{id}`)
//! sees the same thing. A client can start one, disconnect, and come back on any
//! replica.
//!
//! - **2026-07-28** (the `io.modelcontextprotocol/tasks` extension, SEP-2663):
//!   server-directed. A client that declares the extension gets a
//!   `CreateTaskResult` for every call of a tool whose `task_support` is
//!   `required` (every tool with an approval); `tasks/get` answers the status and,
//!   once done, the result inline; `tasks/cancel` stops it.
//! - **2025-11-25** (experimental tasks): client-directed, handled in
//!   [`super::legacy_tasks`].
//!
//! Statuses: `queued`, `running` and `awaiting_approval` are `working` (the status
//! message says which, and who must approve); `succeeded` is `completed`, and so is
//! a tool's own failure (an `isError` result, as a plain call gives); a refusal
//! (denied approval, lost scope, a lost replica) is `failed` with the JSON-RPC
//! error a plain call would have had; `cancelled` is `cancelled`.

use rmcp::ErrorData;
use rmcp::model::{CallToolResult, CreateTaskResult, DetailedTask, Task, TaskPayload, TaskStatus};
use serde_json::Value;
use toolgate_core::{ErrorKind, ToolError};
use toolgate_jobs::{Job, State};

use super::RequestScope;
use super::reply::tool_failure;
use crate::AppState;
use crate::jobs::view::timestamp;

/// How often a client should poll (ms).
pub(super) const POLL_INTERVAL_MS: u64 = 500;

/// Whether a 2026-07-28 call of `tool` becomes a task (the client declared the
/// extension).
pub(super) fn is_task_call(state: &AppState, tool: &str) -> bool {
    state.jobs.task_required(tool)
}

/// Start `tool` as a job for `scope`'s caller; the error a plain call would give
/// when it cannot start.
pub(super) async fn start(
    state: &AppState,
    scope: &RequestScope,
    tool: &str,
    arguments: Value,
) -> Result<Job, ErrorData> {
    scope
        .run(
            state
                .jobs
                .create(state, &scope.caller, tool, arguments, None, "mcp"),
        )
        .await
        .map_err(|e| refusal(e, tool))
}

/// A job that could not be created, as the JSON-RPC error of a refused call.
fn refusal(e: ToolError, tool: &str) -> ErrorData {
    match tool_failure(e.clone(), tool) {
        Err(err) => err,
        // Failures a call reports as `isError` (bad arguments) refuse a task.
        Ok(_) => ErrorData::invalid_params(
            e.message.clone(),
            Some(crate::ApiError::from_tool(e, tool).to_problem()),
        ),
    }
}

/// The task of `job`.
pub(super) fn task_of(job: &Job) -> Task {
    let (status, message) = match job.state {
        State::Queued => (TaskStatus::Working, "queued".to_owned()),
        State::Running => (TaskStatus::Working, "running".to_owned()),
        State::AwaitingApproval => (
            TaskStatus::Working,
            format!(
                "awaiting approval by {} (approvals/{})",
                job.approval
                    .as_ref()
                    .map(|a| a.approvers.join(" or "))
                    .unwrap_or_default(),
                job.id
            ),
        ),
        State::Succeeded => (TaskStatus::Completed, "succeeded".to_owned()),
        State::Failed => (TaskStatus::Failed, "failed".to_owned()),
        State::Cancelled => (TaskStatus::Cancelled, "cancelled".to_owned()),
        State::Expired => (TaskStatus::Failed, "expired".to_owned()),
    };
    Task::new(
        job.id.clone(),
        status,
        timestamp(job.created_ms),
        timestamp(job.updated_ms),
    )
    .with_status_message(message)
    .with_ttl_ms(job.ttl_ms)
    .with_poll_interval_ms(POLL_INTERVAL_MS)
}

/// `CreateTaskResult` of a new job.
pub(super) fn created(job: &Job) -> CreateTaskResult {
    CreateTaskResult::new(task_of(job))
}

/// What a finished job answers: the call's result, or the error a plain call
/// would have had. `None` while it has not ended.
pub(super) fn outcome(state: &AppState, job: &Job) -> Option<Result<CallToolResult, ErrorData>> {
    let outcome = match job.state {
        State::Succeeded => Ok(job.result.clone().unwrap_or(Value::Null)),
        State::Failed | State::Cancelled | State::Expired => {
            let err = job.error.clone().unwrap_or(toolgate_jobs::JobError {
                code: "job_not_found".into(),
                detail: "the job's result expired".into(),
            });
            let kind = if job.state == State::Expired {
                ErrorKind::JobNotFound
            } else {
                ErrorKind::from_code(&err.code).unwrap_or(ErrorKind::ToolError)
            };
            Err(ToolError::new(kind, err.detail))
        }
        State::Queued | State::Running | State::AwaitingApproval => return None,
    };
    let outcome = crate::exec::Outcome {
        result: outcome,
        duration: std::time::Duration::ZERO,
    };
    Some(super::call::reply(state, &job.tool, outcome))
}

/// The 2026-07-28 `tasks/get` answer of `job`.
pub(super) fn detailed(state: &AppState, job: &Job) -> DetailedTask {
    let task = task_of(job);
    let payload = match (job.state, outcome(state, job)) {
        (State::Cancelled, _) => TaskPayload::Cancelled,
        (_, None) => TaskPayload::Working,
        (_, Some(Ok(result))) => TaskPayload::Completed {
            result: object(serde_json::to_value(result).unwrap_or(Value::Null)),
        },
        (_, Some(Err(err))) => TaskPayload::Failed {
            error: object(serde_json::to_value(err).unwrap_or(Value::Null)),
        },
    };
    DetailedTask::new(task, payload)
}

fn object(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => {
            let mut m = serde_json::Map::new();
            m.insert("value".into(), other);
            m
        }
    }
}

/// The job behind task `id`, if it is the caller's.
pub(super) async fn find(
    state: &AppState,
    scope: &RequestScope,
    id: &str,
) -> Result<Job, ErrorData> {
    state
        .jobs
        .get(&scope.caller, id)
        .await
        .map_err(|e| not_found(e, id))
}

fn not_found(e: ToolError, id: &str) -> ErrorData {
    if e.kind == ErrorKind::JobNotFound {
        ErrorData::invalid_params(format!("no task {id:?}"), None)
    } else {
        refusal(e, "")
    }
}

/// Cancel task `id`; waits up to 2 s for a running one to stop.
pub(super) async fn cancel(
    state: &AppState,
    scope: &RequestScope,
    id: &str,
) -> Result<Job, ErrorData> {
    state
        .jobs
        .cancel(&scope.caller, id, std::time::Duration::from_secs(2))
        .await
        .map_err(|e| not_found(e, id))
}

/// `jobs_unavailable` as a JSON-RPC error.
pub(super) fn unavailable(e: &toolgate_jobs::StoreError) -> ErrorData {
    refusal(crate::jobs::unavailable(e), "")
}
