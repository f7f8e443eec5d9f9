//! One call through a tool's policy stack:
//!
//! ```text
//! validate → deadline → breaker open? (503, nothing queued) → bulkhead (429 when full)
//!   → attempt: breaker ticket → Tool::call raced against the attempt deadline and
//!     the caller's cancellation → outcome recorded in the breaker
//!   → retryable failure, idempotent tool, attempts left, time left, budget left?
//!     → full-jitter backoff (cancellable) → next attempt
//! ```
//!
//! The deadline covers every attempt and every backoff: a retry that could not
//! finish in time is not started.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use toolgate_core::{CallContext, CancellationToken, ErrorKind, ToolError, ToolOutput};
use toolgate_resilience::breaker::{Attempt, Record};
use toolgate_resilience::deadline;
use tracing::Instrument;

use crate::registry::{Invocation, RegisteredTool};

/// How long a caller refused by a full queue should wait before trying again.
const QUEUE_FULL_RETRY_AFTER: Duration = Duration::from_secs(1);

/// A failed attempt and whether another may follow.
struct Failed {
    error: ToolError,
    retryable: bool,
}

pub(crate) async fn run(
    entry: &RegisteredTool,
    arguments: Value,
    inv: Invocation,
) -> Result<ToolOutput, ToolError> {
    if inv.cancel.is_cancelled() {
        return Err(ToolError::cancelled(
            "the call was cancelled before it started",
        ));
    }
    entry.schema.check(&arguments)?;
    let start = Instant::now();
    let deadline = deadline::resolve(
        start,
        inv.max_timeout.unwrap_or(entry.spec.timeout),
        &inv.timeouts,
    );
    if let Some((_, budget)) = &entry.retry {
        budget.record_call(start);
    }
    if let Some(after) = entry.breaker.as_ref().and_then(|b| b.retry_after(start)) {
        return Err(circuit_open(&entry.spec.name, after));
    }

    // Waiting for a slot counts against the deadline and ends with the caller.
    let _permit = tokio::select! {
        biased;
        () = inv.cancel.cancelled() => {
            return Err(ToolError::cancelled("the call was cancelled while queued"));
        }
        r = tokio::time::timeout_at(deadline, entry.bulkhead.acquire()) => match r {
            Err(_) => return Err(timed_out(&entry.spec.name)),
            Ok(Err(full)) => {
                return Err(ToolError::new(
                    ErrorKind::Overloaded,
                    format!("{} is at its concurrency limit: {full}", entry.spec.name),
                )
                .with_retry_after(QUEUE_FULL_RETRY_AFTER));
            }
            Ok(Ok(permit)) => permit,
        },
    };

    // Every attempt's token is a child of this one; the drop guard cancels it when
    // this future is dropped (the caller went away), so the tool's work stops.
    let token = inv.cancel.child_token();
    let _guard = token.clone().drop_guard();
    let mut arguments = Some(arguments);
    let mut attempt = 1u32;
    loop {
        let args = if entry.retry.is_some() {
            arguments.clone().unwrap_or(Value::Null)
        } else {
            arguments.take().unwrap_or(Value::Null)
        };
        let span = tracing::info_span!(
            "attempt",
            otel.name = %format!("attempt {attempt} {}", entry.spec.name),
            toolgate.attempt = attempt,
        );
        let failed = match attempt_once(entry, args, &inv, &token, deadline)
            .instrument(span)
            .await
        {
            Ok(output) => return Ok(output),
            Err(failed) => failed,
        };
        let Some(backoff) = retry_backoff(entry, &failed, attempt, deadline) else {
            return Err(failed.error);
        };
        metrics::counter!(toolgate_telemetry::metrics::RETRIES, "tool" => entry.spec.name.clone())
            .increment(1);
        tracing::debug!(tool = %entry.spec.name, attempt, backoff_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX), error = %failed.error, "retrying");
        tokio::select! {
            () = token.cancelled() => return Err(ToolError::cancelled("the call was cancelled between retries")),
            () = tokio::time::sleep(backoff) => {}
        }
        attempt += 1;
    }
}

/// The backoff before the next attempt, or `None` when there is none to make.
fn retry_backoff(
    entry: &RegisteredTool,
    failed: &Failed,
    attempt: u32,
    deadline: Instant,
) -> Option<Duration> {
    let (policy, budget) = entry.retry.as_ref()?;
    if !failed.retryable || attempt >= policy.max_attempts {
        return None;
    }
    let backoff = policy.backoff(attempt);
    let now = Instant::now();
    // Not worth starting an attempt that cannot finish before the deadline.
    if now + backoff >= deadline {
        return None;
    }
    budget.try_retry(now).then_some(backoff)
}

async fn attempt_once(
    entry: &RegisteredTool,
    arguments: Value,
    inv: &Invocation,
    token: &CancellationToken,
    deadline: Instant,
) -> Result<ToolOutput, Failed> {
    let now = Instant::now();
    let ticket = match &entry.breaker {
        Some(b) => Some(Attempt::begin(b, now).map_err(|after| Failed {
            error: circuit_open(&entry.spec.name, after),
            retryable: false,
        })?),
        None => None,
    };
    let attempt_timeout = entry.retry.as_ref().and_then(|(p, _)| p.attempt_timeout);
    let attempt_deadline = attempt_timeout.map_or(deadline, |t| deadline.min(now + t));
    let attempt_token = token.child_token();
    let ctx = CallContext::new(attempt_deadline)
        .with_cancel(attempt_token.clone())
        .with_progress(inv.progress.clone())
        .with_client(inv.client.clone())
        .with_trace_id(inv.trace_id.clone())
        .with_caller(inv.caller.clone());
    let result = tokio::select! {
        biased;
        r = entry.tool.call(arguments, ctx) => r.map_err(|error| {
            let retryable = error.kind == ErrorKind::UpstreamError && !error.permanent;
            Failed { error, retryable }
        }),
        () = tokio::time::sleep_until(attempt_deadline) => Err(Failed {
            error: timed_out(&entry.spec.name),
            // Only an attempt's own timeout leaves time for another attempt.
            retryable: attempt_deadline < deadline,
        }),
        () = token.cancelled() => Err(Failed {
            error: ToolError::cancelled("the call was cancelled"),
            retryable: false,
        }),
    };
    // However the race ended, the attempt's own work is told to stop.
    attempt_token.cancel();
    if let Some(ticket) = ticket {
        let record = match &result {
            Err(f) if f.error.kind == ErrorKind::Cancelled => None,
            Err(f) => Some(Record {
                failed: !f.error.permanent
                    && matches!(f.error.kind, ErrorKind::UpstreamError | ErrorKind::Timeout),
                duration: now.elapsed(),
            }),
            Ok(_) => Some(Record {
                failed: false,
                duration: now.elapsed(),
            }),
        };
        ticket.finish(record, Instant::now());
    }
    result
}

fn timed_out(tool: &str) -> ToolError {
    ToolError::timeout(format!("{tool} did not finish within its deadline"))
}

fn circuit_open(tool: &str, after: Duration) -> ToolError {
    ToolError::new(
        ErrorKind::CircuitOpen,
        format!("the circuit breaker of {tool} is open; calls fail fast until it probes again"),
    )
    .with_retry_after(after)
}
