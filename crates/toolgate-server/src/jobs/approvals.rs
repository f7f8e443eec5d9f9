//! Who may decide an approval, and deciding it.
//!
//! An approver matches one of the tool's `approvers`: a scope its key's scopes
//! list by that exact name (wildcards in the key's scopes do not count; an operator
//! key covers every one), `key:PATTERN` on its key's name,
//! or `subject:PATTERN` on its token's subject (`*` any run of characters). The
//! job's own caller never decides it, whatever it matches: not the same key, not
//! the same token subject. Every decision is audited (`transport = "approval"`,
//! outcome `approved` or `denied`, the approver's name, the arguments' SHA-256).

use toolgate_core::{ErrorKind, ToolError};
use toolgate_jobs::{Decision, Job, State};

use super::{audit_event, ended, job_not_found, owner_hash, unavailable};
use crate::AppState;
use crate::auth::{Principal, Scopes};

/// Most pending approvals looked at for one listing.
const MAX_PENDING: usize = 1000;

/// `*`-glob match (the patterns of `key:` and `subject:`).
fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let Some((first, rest)) = parts.split_first() else {
        return false;
    };
    let Some(mut remaining) = s.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty();
    };
    for part in middle {
        match remaining.find(part) {
            Some(i) => remaining = &remaining[i + part.len()..],
            None => return false,
        }
    }
    remaining.ends_with(last)
}

/// Whether `who` matches one of `approvers`.
fn matches(who: &Principal, approvers: &[String]) -> bool {
    approvers.iter().any(|a| {
        if let Some(p) = a.strip_prefix("key:") {
            who.identity.is_none() && glob(p, &who.name)
        } else if let Some(p) = a.strip_prefix("subject:") {
            who.identity.as_ref().is_some_and(|i| glob(p, &i.subject))
        } else {
            // A scope approver: the key's scopes name it exactly. Wildcards do not
            // count (an agent's `*` must not make it an approver); an operator key
            // covers every one.
            who.privileged
                || match &who.scopes {
                    Scopes::All => false,
                    Scopes::Patterns(ps) => ps.iter().any(|p| p.as_str() == a),
                }
        }
    })
}

/// Whether `who` is the job's own caller (same key, or same token subject).
fn is_caller(who: &Principal, job: &Job) -> bool {
    if owner_hash(who) == job.owner.hash || who.name == job.owner.name {
        return true;
    }
    match (&who.identity, &job.owner.identity) {
        (Some(i), Some(o)) => {
            o.get("subject").and_then(serde_json::Value::as_str) == Some(i.subject.as_str())
                && o.get("issuer").and_then(serde_json::Value::as_str) == Some(i.issuer.as_str())
        }
        _ => false,
    }
}

/// Whether `who` may decide `job`.
///
/// # Errors
/// `forbidden`, saying why.
fn may_decide(who: &Principal, job: &Job) -> Result<(), ToolError> {
    let Some(approval) = &job.approval else {
        return Err(ToolError::new(
            ErrorKind::JobNotFound,
            "this job has no approval",
        ));
    };
    if is_caller(who, job) {
        return Err(ToolError::new(
            ErrorKind::Forbidden,
            "the caller of a job cannot approve or deny it; another approver must",
        ));
    }
    if !matches(who, &approval.approvers) {
        return Err(ToolError::new(
            ErrorKind::Forbidden,
            format!(
                "the key {:?} is not an approver of tool {:?}",
                who.name, job.tool
            ),
        ));
    }
    Ok(())
}

/// The approvals `who` may decide, oldest first.
///
/// # Errors
/// The store is down.
pub async fn pending_for(state: &AppState, who: &Principal) -> Result<Vec<Job>, ToolError> {
    let pending = state
        .jobs
        .store()
        .pending_approvals(MAX_PENDING)
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(pending
        .into_iter()
        .filter(|j| may_decide(who, j).is_ok())
        .collect())
}

/// Job `id`, if it has an approval.
async fn approval(state: &AppState, id: &str) -> Result<Job, ToolError> {
    state
        .jobs
        .store()
        .get(id)
        .await
        .map_err(|e| unavailable(&e))?
        .filter(|j| j.approval.is_some())
        .ok_or_else(|| job_not_found(id))
}

/// Approval `id`, if `who` may decide it or asked for it.
///
/// # Errors
/// No such approval for `who`, or the store is down.
pub async fn visible(state: &AppState, who: &Principal, id: &str) -> Result<Job, ToolError> {
    let job = approval(state, id).await?;
    if is_caller(who, &job) || may_decide(who, &job).is_ok() {
        Ok(job)
    } else {
        Err(job_not_found(id))
    }
}

/// Approve or deny job `id` as `who`, with `comment`; audited.
///
/// # Errors
/// `who` may not decide it (`forbidden`; the job's caller never may), a comment is
/// required and missing (`invalid_arguments`), it is already decided (`409`), no
/// such approval (`job_not_found`), or the store is down.
pub async fn decide(
    state: &AppState,
    who: &Principal,
    id: &str,
    approved: bool,
    comment: Option<String>,
) -> Result<Job, ToolError> {
    let job = approval(state, id).await?;
    if let Err(e) = may_decide(who, &job) {
        // A refused decision is audited too: somebody tried.
        audit_event(
            state,
            &who.name,
            who.identity.as_ref(),
            &job,
            "approval",
            "forbidden",
        )
        .await;
        return Err(e);
    }
    if job.state != State::AwaitingApproval {
        return Err(already_decided(&job));
    }
    let reason_required = job.approval.as_ref().is_some_and(|a| a.reason_required);
    let comment = comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if reason_required && comment.is_none() {
        let mut e = ToolError::invalid_arguments(vec![toolgate_core::FieldError {
            pointer: "/comment".into(),
            message: "required".into(),
        }]);
        e.message = format!("tool {:?} requires a comment with every decision", job.tool);
        return Err(e);
    }
    if comment.as_ref().is_some_and(|c| c.len() > 4096) {
        return Err(ToolError::new(
            ErrorKind::InvalidArguments,
            "the comment is longer than 4096 bytes",
        ));
    }
    let decision = Decision {
        approved,
        by: who.name.clone(),
        at_ms: toolgate_jobs::now_ms(),
        comment,
    };
    let Some(decided) = state
        .jobs
        .store()
        .decide(id, decision)
        .await
        .map_err(|e| unavailable(&e))?
    else {
        // Decided (or timed out, or cancelled) in the meantime.
        let now = state
            .jobs
            .store()
            .get(id)
            .await
            .map_err(|e| unavailable(&e))?;
        return Err(now.map_or_else(|| job_not_found(id), |j| already_decided(&j)));
    };
    let outcome = if approved { "approved" } else { "denied" };
    audit_event(
        state,
        &who.name,
        who.identity.as_ref(),
        &decided,
        "approval",
        outcome,
    )
    .await;
    tracing::info!(job = %decided.id, tool = %decided.tool, approver = %who.name, outcome, "approval decided");
    if approved {
        state.jobs.wake();
    } else {
        ended(state, decided.clone());
    }
    Ok(decided)
}

fn already_decided(job: &Job) -> ToolError {
    ToolError::new(
        ErrorKind::AlreadyDecided,
        format!(
            "job {:?} no longer awaits a decision (it is {})",
            job.id,
            job.state.as_str()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob("alice", "alice"));
        assert!(!glob("alice", "alice2"));
        assert!(glob("ops-*", "ops-bob"));
        assert!(glob("*@example.com", "bob@example.com"));
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("a*c*e", "abde"));
        assert!(glob("*", ""));
    }
}
