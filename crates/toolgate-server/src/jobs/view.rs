//! A job as REST, webhooks and the CLI show it.

use serde_json::{Value, json};
use toolgate_core::{ErrorKind, ToolError};
use toolgate_jobs::{Job, JobError};

/// RFC 3339 UTC with milliseconds of `ms` since the epoch.
#[must_use]
pub fn timestamp(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The problem document of a job's error (its `code` decides `status`).
#[must_use]
pub fn problem(err: &JobError, tool: &str) -> Value {
    let kind = ErrorKind::from_code(&err.code).unwrap_or(ErrorKind::ToolError);
    crate::ApiError::from_tool(ToolError::new(kind, err.detail.clone()), tool).to_problem()
}

/// `{"id", "tool", "state", "created_at", ..., "output"?, "error"?, "approval"?}`.
#[must_use]
pub fn job_json(job: &Job) -> Value {
    let mut v = json!({
        "id": job.id,
        "tool": job.tool,
        "state": job.state.as_str(),
        "created_at": timestamp(job.created_ms),
        "updated_at": timestamp(job.updated_ms),
        "attempts": job.attempts,
        "timeout_ms": job.timeout_ms,
        "arguments_sha256": job.args_hash,
        "owner": job.owner.name,
    });
    let put = |v: &mut Value, k: &str, x: Option<Value>| {
        if let Some(x) = x {
            v[k] = x;
        }
    };
    put(
        &mut v,
        "started_at",
        job.started_ms.map(|t| timestamp(t).into()),
    );
    put(
        &mut v,
        "finished_at",
        job.finished_ms.map(|t| timestamp(t).into()),
    );
    put(
        &mut v,
        "expires_at",
        job.expires_ms.map(|t| timestamp(t).into()),
    );
    put(&mut v, "progress", job.progress.clone());
    put(&mut v, "output", job.result.clone());
    put(
        &mut v,
        "error",
        job.error.as_ref().map(|e| problem(e, &job.tool)),
    );
    if job.cancel_requested && !job.state.is_final() {
        v["cancel_requested"] = true.into();
    }
    if let Some(a) = &job.approval {
        let mut approval = json!({
            "approvers": a.approvers,
            "reason_required": a.reason_required,
            "expires_at": timestamp(a.deadline_ms),
        });
        if let Some(d) = &a.decision {
            approval["decision"] = json!({
                "approved": d.approved,
                "by": d.by,
                "at": timestamp(d.at_ms),
                "comment": d.comment,
            });
        }
        v["approval"] = approval;
    }
    v
}

/// An approval request as approvers see it: the job, with its arguments (what is
/// being approved).
#[must_use]
pub fn approval_json(job: &Job) -> Value {
    let mut v = job_json(job);
    v["arguments"] = job.arguments.clone();
    v
}
