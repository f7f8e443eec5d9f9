//! `POST /api/v1/tools/execute`: run calls concurrently as a task group.
//!
//! `fail_fast` (default): the first failure cancels every sibling still running (their
//! futures see the group's token fire and stop their work) and the response carries
//! that failure's status. `all_settled`: every call runs to its end; the status is 200.
//! Either way `data` lists one entry per call, in the order of `calls`.

use std::collections::HashSet;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::task::JoinSet;
use toolgate_core::{CancellationToken, ErrorKind, ToolError};
use toolgate_registry::Invocation;
use tracing::Instrument;

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::exec::{Outcome, run_call};
use crate::transport::requested_timeout;
use crate::{ApiError, AppState};

/// How a batch treats failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The first failure cancels the rest.
    FailFast,
    /// Every call runs to its end.
    AllSettled,
}

/// One call of a batch.
#[derive(Debug, Clone)]
pub struct BatchCall {
    /// The caller's id, or the index as a string.
    pub id: String,
    /// Tool name.
    pub tool: String,
    /// Arguments object.
    pub arguments: Value,
}

/// A parsed batch request.
#[derive(Debug, Clone)]
pub struct BatchRequest {
    /// The calls, in order.
    pub calls: Vec<BatchCall>,
    /// Failure handling.
    pub mode: Mode,
    /// The batch's deadline, lowering each call's.
    pub timeout: Option<Duration>,
}

/// Parse and check a batch body; every problem is reported with its JSON pointer.
///
/// # Errors
/// `invalid_arguments` listing the problems.
pub fn parse_request(body: Map<String, Value>, max_calls: usize) -> Result<BatchRequest, ApiError> {
    let mut problems: Vec<(String, String)> = Vec::new();
    for key in body.keys() {
        if !matches!(key.as_str(), "calls" | "mode" | "timeout_ms") {
            problems.push((format!("/{key}"), format!("unknown field {key:?}")));
        }
    }
    let mode = match body.get("mode") {
        None => Mode::FailFast,
        Some(Value::String(s)) if s == "fail_fast" => Mode::FailFast,
        Some(Value::String(s)) if s == "all_settled" => Mode::AllSettled,
        Some(_) => {
            problems.push((
                "/mode".into(),
                "must be \"fail_fast\" or \"all_settled\"".into(),
            ));
            Mode::FailFast
        }
    };
    let timeout = match body.get("timeout_ms") {
        None => None,
        Some(v) => match v.as_u64().filter(|ms| *ms > 0) {
            Some(ms) => Some(Duration::from_millis(ms)),
            None => {
                problems.push(("/timeout_ms".into(), "must be a positive integer".into()));
                None
            }
        },
    };
    let calls = parse_calls(body.get("calls"), max_calls, &mut problems);
    if problems.is_empty() {
        Ok(BatchRequest {
            calls,
            mode,
            timeout,
        })
    } else {
        let err = ApiError::new(
            ErrorKind::InvalidArguments,
            format!("the batch request has {} problem(s)", problems.len()),
        );
        Err(problems
            .into_iter()
            .take(toolgate_core::MAX_FIELD_ERRORS)
            .fold(err, |e, (pointer, message)| e.push_field(pointer, message)))
    }
}

fn parse_calls(
    calls: Option<&Value>,
    max_calls: usize,
    problems: &mut Vec<(String, String)>,
) -> Vec<BatchCall> {
    let Some(Value::Array(items)) = calls else {
        problems.push(("/calls".into(), "required: an array of calls".into()));
        return Vec::new();
    };
    if items.is_empty() || items.len() > max_calls {
        // Nothing more is looked at: a huge array must not make a huge answer.
        problems.push((
            "/calls".into(),
            format!("must hold 1 to {max_calls} calls, not {}", items.len()),
        ));
        return Vec::new();
    }
    let mut ids = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if problems.len() >= toolgate_core::MAX_FIELD_ERRORS {
            break;
        }
        let at = format!("/calls/{i}");
        let Value::Object(call) = item else {
            problems.push((at, "must be an object".into()));
            continue;
        };
        for key in call.keys() {
            if !matches!(key.as_str(), "id" | "tool" | "arguments") {
                problems.push((format!("{at}/{key}"), format!("unknown field {key:?}")));
            }
        }
        let id = match call.get("id") {
            None => i.to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                problems.push((format!("{at}/id"), "must be a string".into()));
                i.to_string()
            }
        };
        if !ids.insert(id.clone()) {
            problems.push((format!("{at}/id"), format!("duplicate id {id:?}")));
        }
        let tool = match call.get("tool") {
            Some(Value::String(s)) => s.clone(),
            _ => {
                problems.push((format!("{at}/tool"), "required: the tool name".into()));
                String::new()
            }
        };
        let arguments = match call.get("arguments") {
            None => Value::Object(Map::new()),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => {
                problems.push((format!("{at}/arguments"), "must be an object".into()));
                Value::Null
            }
        };
        out.push(BatchCall {
            id,
            tool,
            arguments,
        });
    }
    out
}

/// `POST /api/v1/tools/execute`.
pub async fn execute(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let header_timeout = requested_timeout(&headers)?;
    let req = parse_request(body, state.limits.max_batch_calls)?;
    let group = state.calls.child_token();
    let group_span = tracing::info_span!(
        "execute_tools_group",
        otel.name = "execute_tools_group",
        toolgate.batch.mode = if req.mode == Mode::FailFast {
            "fail_fast"
        } else {
            "all_settled"
        },
        toolgate.batch.size = req.calls.len(),
    );
    // Dropping the JoinSet (the client went away) aborts every task; each task's
    // registry call then cancels its tool through its drop guard.
    let mut tasks = JoinSet::new();
    for (index, call) in req.calls.iter().cloned().enumerate() {
        let state = state.clone();
        let caller = caller.clone();
        let inv = Invocation {
            client: None,
            caller: None,
            timeouts: vec![header_timeout, req.timeout],
            cancel: group.child_token(),
            trace_id: crate::trace::current(),
            transport: toolgate_registry::Transport::Batch,
            ..Invocation::default()
        };
        let trace_id = crate::trace::current().unwrap_or_default();
        let task = async move {
            (
                index,
                run_call(&state, &caller, &call.tool, call.arguments, inv).await,
            )
        };
        tasks.spawn(
            crate::trace::TRACE_ID
                .scope(trace_id, task)
                .instrument(group_span.clone()),
        );
    }
    let (outcomes, first_failure) = collect(&mut tasks, req.calls.len(), req.mode, &group)
        .instrument(group_span)
        .await;
    let success = outcomes
        .iter()
        .all(|o| o.as_ref().is_some_and(|o| o.result.is_ok()));
    let data: Vec<Value> = req
        .calls
        .iter()
        .zip(outcomes)
        .map(|(call, outcome)| entry(call, outcome, first_failure.as_ref()))
        .collect();
    let mut body = json!({"success": success, "data": data});
    let status = match (req.mode, first_failure) {
        (Mode::FailFast, Some((index, err))) => {
            let api = ApiError::from_tool(err, &req.calls[index].tool);
            body["error"] = api.to_problem();
            api.status()
        }
        _ => StatusCode::OK,
    };
    Ok((status, Json(body)).into_response())
}

/// The call (by index) whose failure ended or marked the group, and that failure.
pub(crate) type Failure = (usize, ToolError);

/// The first-failure bookkeeping of a task group, shared by the batch endpoint and
/// the batch stream so that both have the same semantics.
#[derive(Debug)]
pub(crate) struct Group {
    mode: Mode,
    token: CancellationToken,
    first_failure: Option<Failure>,
    we_cancelled: bool,
}

impl Group {
    /// A group whose calls are cancelled through `token` (fail_fast).
    pub(crate) fn new(mode: Mode, token: CancellationToken) -> Self {
        Self {
            mode,
            token,
            first_failure: None,
            we_cancelled: false,
        }
    }

    /// Record call `index`'s outcome; in `fail_fast`, the first failure cancels the
    /// group. Returns whether this outcome is the group's first failure.
    pub(crate) fn settle(&mut self, index: usize, outcome: &Outcome) -> bool {
        // Siblings we cancelled report `cancelled`; that is a consequence, not a cause.
        // A cancellation from above (the server's drain) is a cause and counts.
        let Err(e) = &outcome.result else {
            return false;
        };
        if self.first_failure.is_some() || (self.we_cancelled && e.kind == ErrorKind::Cancelled) {
            return false;
        }
        self.first_failure = Some((index, e.clone()));
        if self.mode == Mode::FailFast {
            self.we_cancelled = true;
            self.token.cancel();
        }
        true
    }

    /// Whether the first failure ends the group (`fail_fast`).
    pub(crate) fn ends_on_failure(&self) -> bool {
        self.mode == Mode::FailFast
    }

    /// The first failure in time, if any.
    pub(crate) fn first_failure(&self) -> Option<&Failure> {
        self.first_failure.as_ref()
    }
}

/// Wait for every task; in `fail_fast`, cancel the group at the first failure.
async fn collect(
    tasks: &mut JoinSet<(usize, Outcome)>,
    n: usize,
    mode: Mode,
    token: &CancellationToken,
) -> (Vec<Option<Outcome>>, Option<Failure>) {
    let mut outcomes: Vec<Option<Outcome>> = (0..n).map(|_| None).collect();
    let mut group = Group::new(mode, token.clone());
    while let Some(joined) = tasks.join_next().await {
        let Ok((index, outcome)) = joined else {
            // A task panicked: its entry stays empty and is reported as an internal failure.
            tracing::error!("a batch task failed to complete");
            continue;
        };
        group.settle(index, &outcome);
        if let Some(slot) = outcomes.get_mut(index) {
            *slot = Some(outcome);
        }
    }
    (outcomes, group.first_failure)
}

/// One call's entry: `{"id", "tool", "ok", "output" | "error", "duration_ms"}`. No
/// outcome means the call's task panicked. Needs the request's trace id in scope.
pub(crate) fn entry(
    call: &BatchCall,
    outcome: Option<Outcome>,
    first_failure: Option<&Failure>,
) -> Value {
    let Some(outcome) = outcome else {
        let err = crate::error::internal();
        return json!({"id": call.id, "tool": call.tool, "ok": false, "error": err.to_problem(), "duration_ms": 0});
    };
    let duration_ms = outcome.duration_ms();
    match outcome.result {
        Ok(output) => {
            json!({"id": call.id, "tool": call.tool, "ok": true, "output": output, "duration_ms": duration_ms})
        }
        Err(mut e) => {
            if e.kind == ErrorKind::Cancelled
                && let Some((_, cause)) = first_failure
            {
                e.message = format!(
                    "cancelled because a sibling call failed ({})",
                    cause.kind.code()
                );
            }
            let problem = ApiError::from_tool(e, &call.tool).to_problem();
            json!({"id": call.id, "tool": call.tool, "ok": false, "error": problem, "duration_ms": duration_ms})
        }
    }
}
