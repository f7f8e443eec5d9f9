//! Running one call on behalf of a caller: the scope check, the registry call and
//! the call's log line. Every transport goes through [`run_call`].

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use toolgate_core::{ErrorKind, ToolCall, ToolError};
use toolgate_registry::{Invocation, Transport};

use tracing::Instrument;

use crate::AppState;
use crate::audit::CallFacts;
use crate::auth::Principal;
use crate::ratelimit::Refusal;

/// How long a refused caller should wait while the server drains.
const DRAINING_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The result of one call and how long it took.
#[derive(Debug)]
pub struct Outcome {
    /// Output or failure.
    pub result: Result<Value, ToolError>,
    /// Wall time from start to end.
    pub duration: Duration,
}

impl Outcome {
    /// The duration in whole milliseconds.
    #[must_use]
    pub fn duration_ms(&self) -> u64 {
        u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX)
    }
}

/// Call `tool` with `arguments` as `caller`, and log the outcome.
///
/// Every call ends in exactly one call log line, one call metric and one audit
/// record, including a call whose future is dropped before it ends (the client hung
/// up, and its transport dropped the call): the registry's drop guard stops the tool,
/// and the call is recorded as `cancelled` with the time it ran.
pub async fn run_call(
    state: &AppState,
    caller: &Principal,
    tool: &str,
    arguments: Value,
    inv: Invocation,
) -> Outcome {
    run_admitted(state, caller, tool, arguments, inv, None).await
}

/// As [`run_call`], for a job the runner claimed: `slot` is the key's call slot the
/// runner already holds (a job waits for one instead of failing), the rate limit
/// was taken when the job was created, and an approved job's approval is not asked
/// for again.
pub async fn run_job_call(
    state: &AppState,
    caller: &Principal,
    tool: &str,
    arguments: Value,
    inv: Invocation,
    slot: crate::quota::QuotaSlot,
) -> Outcome {
    run_admitted(state, caller, tool, arguments, inv, Some(slot)).await
}

async fn run_admitted(
    state: &AppState,
    caller: &Principal,
    tool: &str,
    arguments: Value,
    mut inv: Invocation,
    job_slot: Option<crate::quota::QuotaSlot>,
) -> Outcome {
    let start = Instant::now();
    inv.caller = Some(Arc::clone(&caller.caller));
    let transport = inv.transport;
    let trace_id = inv.trace_id.clone().unwrap_or_default();
    // The audit record needs the arguments' hash before the call consumes them.
    let audit_args = state.audit.as_ref().map(|a| a.capture(tool, &arguments));
    let mut pending = Pending {
        state,
        caller,
        tool,
        transport,
        start,
        trace_id,
        audit_args,
    };
    // One span per tool call, named as OpenTelemetry's GenAI conventions name it.
    let span = tracing::info_span!(
        "execute_tool",
        otel.name = %format_args!("execute_tool {tool}"),
        otel.kind = "internal",
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = tool,
        toolgate.transport = transport.label(),
        toolgate.key = caller.name.as_str(),
        toolgate.outcome = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    let result = async {
        let _slot = match job_slot {
            Some(slot) => admit_job(state, caller, tool).map(|()| slot)?,
            None => admit(state, caller, tool).await?,
        };
        if crate::search::is_meta(caller, tool) {
            return crate::search::call(&state.registry, caller, tool, &arguments);
        }
        state
            .registry
            .invoke(ToolCall::new(tool, arguments), inv)
            .await
    }
    .instrument(span.clone())
    .await;
    match &result {
        Ok(_) => span.record("toolgate.outcome", "ok"),
        Err(e) => span
            .record("toolgate.outcome", e.kind.code())
            .record("error.type", e.kind.code()),
    };
    let mut outcome = Outcome {
        result,
        duration: start.elapsed(),
    };
    record_call(state, caller, tool, transport, &outcome);
    // From here the call is recorded, even if the wait below is cut short.
    if let (Some(audit), Some((facts, args))) = (&state.audit, pending.finish(&outcome))
        && let Err(e) = audit.record(facts, args).await
    {
        // No answer claims a call whose record could not be kept (with `sync`, not
        // committed): the record, where it was spooled, shows what the tool did.
        outcome.result = Err(audit_unavailable(&e));
    }
    outcome
}

/// A call not yet recorded; dropped before [`run_call`] records it (the call's
/// future was dropped), it records the call as cancelled.
struct Pending<'a> {
    state: &'a AppState,
    caller: &'a Principal,
    /// Empty once recorded.
    tool: &'a str,
    transport: Transport,
    start: Instant,
    trace_id: String,
    audit_args: Option<crate::audit::CapturedArgs>,
}

impl<'a> Pending<'a> {
    /// Mark the call recorded; its audit facts, if the log is on.
    fn finish(&mut self, outcome: &Outcome) -> Option<(CallFacts<'a>, crate::audit::CapturedArgs)> {
        let args = self.audit_args.take();
        let facts = self.facts(outcome);
        self.tool = "";
        args.map(|args| (facts, args))
    }

    fn facts(&mut self, outcome: &Outcome) -> CallFacts<'a> {
        let caller: &'a Principal = self.caller;
        CallFacts {
            key: &caller.name,
            identity: caller.identity.as_ref(),
            tool: self.tool,
            transport: self.transport.label(),
            outcome: outcome
                .result
                .as_ref()
                .map_or_else(|e| e.kind.code(), |_| "ok"),
            duration_ms: outcome.duration_ms(),
            trace_id: std::mem::take(&mut self.trace_id),
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.tool.is_empty() {
            return;
        }
        let outcome = Outcome {
            result: Err(ToolError::new(
                ErrorKind::Cancelled,
                "the client went away before the call ended",
            )),
            duration: self.start.elapsed(),
        };
        record_call(self.state, self.caller, self.tool, self.transport, &outcome);
        let state = self.state;
        if let (Some(audit), Some((facts, args))) = (&state.audit, self.finish(&outcome)) {
            audit.record_detached(facts, args);
        }
    }
}

/// `503 audit_unavailable`, try again in a second.
pub(crate) fn audit_unavailable(e: &toolgate_audit::AuditUnavailable) -> ToolError {
    ToolError::new(ErrorKind::AuditUnavailable, e.to_string())
        .with_retry_after(Duration::from_secs(1))
        .server_wide()
}

/// What a job's run is checked for: the key may still call the tool (scopes can
/// change while it waits), and its audit record can be kept.
fn admit_job(state: &AppState, caller: &Principal, tool: &str) -> Result<(), ToolError> {
    if !caller.allows(tool) {
        return Err(ToolError::new(
            ErrorKind::Forbidden,
            format!("the key {:?} has no scope for tool {tool:?}", caller.name),
        ));
    }
    if let Some(audit) = &state.audit {
        audit.admit().map_err(|e| audit_unavailable(&e))?;
    }
    Ok(())
}

/// The checks before a call reaches the registry: scope, approval gate, rate limit,
/// drain, and the key's calls-in-flight quota, whose slot the call holds until it
/// ends.
async fn admit(
    state: &AppState,
    caller: &Principal,
    tool: &str,
) -> Result<crate::quota::QuotaSlot, ToolError> {
    if !caller.allows(tool) {
        return Err(ToolError::new(
            ErrorKind::Forbidden,
            format!("the key {:?} has no scope for tool {tool:?}", caller.name),
        ));
    }
    if state.jobs.needs_approval(tool) {
        return Err(crate::jobs::approval_required(tool));
    }
    admit_entry(state, caller).await?;
    caller.take_slot(crate::quota::QuotaKind::Calls)
}

/// The checks every new call or job passes after its scope: the key's rate limit,
/// the audit log's room, and the drain.
pub(crate) async fn admit_entry(state: &AppState, caller: &Principal) -> Result<(), ToolError> {
    if let Err(refusal) = state.limiter.take(caller).await {
        return Err(match refusal {
            Refusal::RateLimited(after) => ToolError::new(
                ErrorKind::RateLimited,
                format!("the key {:?} is over its rate limit", caller.name),
            )
            .with_retry_after(after.min(Duration::from_secs(3600))),
            Refusal::StoreDown => ToolError::new(
                ErrorKind::Overloaded,
                "the rate-limit store is unavailable; try again shortly",
            )
            .with_retry_after(Duration::from_secs(1))
            .server_wide(),
        });
    }
    if let Some(audit) = &state.audit
        && let Err(e) = audit.admit()
    {
        return Err(audit_unavailable(&e));
    }
    if state.readiness.is_draining() {
        return Err(ToolError::new(
            ErrorKind::Overloaded,
            "the server is draining; try another replica",
        )
        .with_retry_after(DRAINING_RETRY_AFTER)
        .server_wide());
    }
    Ok(())
}

/// The `tool` label of a name no tool has: callers choose the names they ask for, and
/// each would otherwise become a time series of its own.
const UNKNOWN_TOOL: &str = "_unknown";

thread_local! {
    static CALL_METRICS: std::cell::RefCell<
        toolgate_telemetry::metrics::HandleCache<(metrics::Counter, metrics::Histogram)>,
    > = std::cell::RefCell::default();
}

fn record_call(
    state: &AppState,
    caller: &Principal,
    tool: &str,
    transport: Transport,
    outcome: &Outcome,
) {
    use toolgate_telemetry::metrics as m;
    let code = match &outcome.result {
        Ok(_) => "ok",
        Err(e) => e.kind.code(),
    };
    // A refused call may name a tool that does not exist.
    let label = if outcome.result.is_err() && state.registry.get(tool).is_none() {
        UNKNOWN_TOOL
    } else {
        tool
    };
    let transport_label = transport.label();
    CALL_METRICS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let (calls, duration) = cache.get(&[label, transport_label, code], || {
            let labels = [
                ("tool", label.to_owned()),
                ("transport", transport_label.to_owned()),
            ];
            (
                metrics::counter!(
                    m::CALLS,
                    &[
                        ("tool", label.to_owned()),
                        ("transport", transport_label.to_owned()),
                        ("outcome", code.to_owned()),
                    ]
                ),
                metrics::histogram!(m::CALL_DURATION, &labels),
            )
        });
        calls.increment(1);
        duration.record(outcome.duration.as_secs_f64());
    });
    if matches!(&outcome.result, Err(e) if e.kind == ErrorKind::RateLimited) {
        metrics::counter!(m::RATE_LIMITED, "key" => caller.name.clone()).increment(1);
    }
    log_call(caller, tool, transport, outcome);
}

fn log_call(caller: &Principal, tool: &str, transport: Transport, outcome: &Outcome) {
    let transport = transport.label();
    let duration_ms = outcome.duration_ms();
    match &outcome.result {
        Ok(_) => {
            tracing::info!(
                tool,
                key = caller.name.as_str(),
                transport,
                duration_ms,
                outcome = "ok",
                "tool call"
            )
        }
        Err(e) => tracing::info!(
            tool,
            key = caller.name.as_str(),
            transport,
            duration_ms,
            outcome = e.kind.code(),
            detail = e.message.as_str(),
            "tool call failed"
        ),
    }
}
