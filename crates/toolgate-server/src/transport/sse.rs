//! Server-Sent Events: `POST /api/v1/tools/{name}/stream` and
//! `POST /api/v1/tools/execute/stream`.
//!
//! Everything that can be refused is refused before the stream starts, as a
//! problem+json response: the key (401/403), the body (400/413), the timeout header,
//! the batch's shape (422) and, for the single-tool route, the tool's scope (403) and
//! existence (404). After that the status is 200 and every outcome is an event:
//!
//! - `progress`: `{"id", "tool", "progress", "total"?, "message"?}`, lossy.
//! - `result`: one per call, in completion order, shaped like a batch entry.
//! - `error`: `{"id"?, "error": problem}`, the failure that ends a `fail_fast` group
//!   (what the batch endpoint reports as its status and `error`), or a broken stream.
//! - `done`: `{"success", "calls", "succeeded", "failed"}`, last.
//!
//! The calls run as tasks owned by the response stream: when the client goes away,
//! hyper drops the stream, the [`JoinSet`] aborts the tasks, and the group's drop
//! guard cancels their tokens, so the tools' work stops. The task plumbing
//! (`spawn_call`, `Update`) is shared with the WebSocket transport.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::DropGuard;
use toolgate_core::{ErrorKind, Progress, ProgressSink};
use toolgate_registry::Invocation;
use tracing::Instrument;

use crate::auth::{Caller, Principal};
use crate::body::JsonBody;
use crate::exec::{Outcome, run_call};
use crate::transport::batch::{BatchCall, Group, Mode, entry, parse_request};
use crate::transport::requested_timeout;
use crate::{ApiError, AppState};

/// Progress and results waiting to be written. Results wait for room (they are never
/// dropped); progress is dropped when the queue is full, so a slow reader costs a
/// bounded amount of memory and never stalls a tool.
pub(crate) const UPDATE_QUEUE: usize = 32;

/// Tells nginx-style proxies not to buffer the stream.
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// Text of the comment heartbeats (`: keep-alive`).
const HEARTBEAT_TEXT: &str = "keep-alive";

/// `POST /api/v1/tools/{name}/stream`: one call, with the body as its arguments. It
/// is a `fail_fast` group of one call whose id is `"0"`.
pub async fn stream_tool(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    JsonBody(arguments): JsonBody,
) -> Result<Response, ApiError> {
    let timeout = requested_timeout(&headers)?;
    // Scope before existence, as for REST: a key cannot probe for tools outside it.
    caller.require(&state, &name, "sse")?;
    if state.registry.get(&name).is_none() && !crate::search::is_meta(&caller.0, &name) {
        return Err(ApiError::new(
            ErrorKind::ToolNotFound,
            format!("no tool named {name:?}"),
        ));
    }
    let call = BatchCall {
        id: "0".to_owned(),
        tool: name,
        arguments: Value::Object(arguments),
    };
    Ok(respond(
        &state,
        start(&state, &caller.0, vec![call], Mode::FailFast, vec![timeout]),
    ))
}

/// `POST /api/v1/tools/execute/stream`: a batch (same body and semantics as
/// `POST /api/v1/tools/execute`) whose results stream as they finish.
pub async fn stream_batch(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let header_timeout = requested_timeout(&headers)?;
    let req = parse_request(body, state.limits.max_batch_calls)?;
    let timeouts = vec![header_timeout, req.timeout];
    Ok(respond(
        &state,
        start(&state, &caller, req.calls, req.mode, timeouts),
    ))
}

/// The `text/event-stream` response: heartbeats and the proxy headers. (`Sse` sets
/// `Content-Type` and `Cache-Control: no-cache` itself.)
fn respond(state: &AppState, run: Run) -> Response {
    let events = futures::stream::unfold(run, |mut run| async move {
        let event = run.next_event().await?;
        Some((Ok::<_, Infallible>(event), run))
    });
    let heartbeat = state.limits.sse_heartbeat_ms;
    let mut response = if heartbeat == 0 {
        Sse::new(events).into_response()
    } else {
        let keep_alive = KeepAlive::new()
            .interval(Duration::from_millis(heartbeat))
            .text(HEARTBEAT_TEXT);
        Sse::new(events).keep_alive(keep_alive).into_response()
    };
    response
        .headers_mut()
        .insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
    response
}

// === shared with the WebSocket transport ===

/// What a running call reports to its transport, keyed by the transport's own key.
#[derive(Debug)]
pub(crate) enum Update<K> {
    /// A progress report (boxed: queues are allocated up front, per connection).
    Progress(K, Box<Progress>),
    /// The call ended; `None` when its task panicked.
    Settled(K, Box<Option<Outcome>>),
}

/// Spawn one call onto `tasks`. Its progress goes to `tx` when there is room, and
/// its outcome always does (after the progress it reported). The task runs under
/// the current trace id and span; a panic becomes a `Settled(key, None)`.
pub(crate) fn spawn_call<K: Clone + Send + Sync + 'static>(
    tasks: &mut JoinSet<()>,
    state: &AppState,
    caller: &Arc<Principal>,
    (key, tool, arguments): (K, String, Value),
    mut inv: Invocation,
    tx: mpsc::Sender<Update<K>>,
) {
    let progress_tx = tx.clone();
    let progress_key = key.clone();
    inv.progress = ProgressSink::new(move |p| {
        // Lossy on purpose: a full queue means the reader is behind, and the next
        // report supersedes this one.
        let _ = progress_tx.try_send(Update::Progress(progress_key.clone(), Box::new(p)));
    });
    let (state, caller) = (state.clone(), Arc::clone(caller));
    let task = async move {
        let call = run_call(&state, &caller, &tool, arguments, inv);
        let outcome = AssertUnwindSafe(call).catch_unwind().await.ok();
        if outcome.is_none() {
            tracing::error!(tool, "a streamed call panicked");
        }
        // The receiver is gone only when the transport ended; nobody is left to tell.
        let _ = tx.send(Update::Settled(key, Box::new(outcome))).await;
    };
    let trace_id = crate::trace::current().unwrap_or_default();
    tasks.spawn(
        crate::trace::TRACE_ID
            .scope(trace_id, task)
            .instrument(tracing::Span::current()),
    );
}

/// A progress report as sent: `{"type"?, "id", "tool", "progress", "total"?,
/// "message"?}`. Serialized straight from borrowed fields: it is the most frequent
/// message by far, and building a `Value` map for each would cost several
/// allocations.
#[derive(Debug, Serialize)]
pub(crate) struct ProgressJson<'a> {
    /// `"progress"` on a WebSocket; absent in SSE, where the event name says it.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<&'static str>,
    /// The call's id.
    pub(crate) id: &'a str,
    /// The tool's name.
    pub(crate) tool: &'a str,
    /// Work done.
    pub(crate) progress: f64,
    /// Total work, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) total: Option<f64>,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<&'a str>,
}

impl ProgressJson<'_> {
    /// The JSON text.
    pub(crate) fn to_json(&self) -> String {
        // A struct of strings and numbers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// [`ProgressJson`] for call `id` of `tool`.
pub(crate) fn progress_json<'a>(id: &'a str, tool: &'a str, p: &'a Progress) -> ProgressJson<'a> {
    ProgressJson {
        kind: None,
        id,
        tool,
        progress: p.progress,
        total: p.total,
        message: p.message.as_deref(),
    }
}

// === impl Run ===

/// One stream's calls and the events still to send.
struct Run {
    calls: Vec<BatchCall>,
    group: Group,
    rx: mpsc::Receiver<Update<usize>>,
    /// Aborted (and so cancelled) when the stream is dropped.
    _tasks: JoinSet<()>,
    /// Cancels the group's token when the stream is dropped, before the aborts land.
    _cancel: DropGuard,
    unsettled: usize,
    succeeded: usize,
    queue: VecDeque<Event>,
    next_id: u64,
    finished: bool,
    trace_id: String,
}

/// Start every call at once, each on a child of a group token under `state.calls`.
fn start(
    state: &AppState,
    caller: &Arc<Principal>,
    calls: Vec<BatchCall>,
    mode: Mode,
    timeouts: Vec<Option<Duration>>,
) -> Run {
    let token = state.calls.child_token();
    let (tx, rx) = mpsc::channel(UPDATE_QUEUE);
    let mut tasks = JoinSet::new();
    for (index, call) in calls.iter().enumerate() {
        let inv = Invocation {
            client: None,
            caller: None,
            timeouts: timeouts.clone(),
            cancel: token.child_token(),
            trace_id: crate::trace::current(),
            transport: toolgate_registry::Transport::Sse,
            ..Invocation::default()
        };
        let work = (index, call.tool.clone(), call.arguments.clone());
        spawn_call(&mut tasks, state, caller, work, inv, tx.clone());
    }
    Run {
        unsettled: calls.len(),
        calls,
        group: Group::new(mode, token.clone()),
        rx,
        _tasks: tasks,
        _cancel: token.drop_guard(),
        succeeded: 0,
        queue: VecDeque::new(),
        next_id: 1,
        finished: false,
        trace_id: crate::trace::current().unwrap_or_default(),
    }
}

impl Run {
    /// The next event, or `None` after `done`.
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            if self.finished {
                return None;
            }
            if self.unsettled == 0 {
                self.finished = true;
                return Some(self.done());
            }
            match self.rx.recv().await {
                Some(Update::Progress(index, p)) => {
                    if let Some(call) = self.calls.get(index) {
                        let data = progress_json(&call.id, &call.tool, &p).to_json();
                        self.push("progress", data);
                    }
                }
                // Problem documents name the trace id; hyper polls this stream outside
                // the request's task-local scope, so enter it for them (not for progress,
                // which is most of the traffic).
                Some(Update::Settled(index, outcome)) => {
                    let trace_id = self.trace_id.clone();
                    crate::trace::TRACE_ID.sync_scope(trace_id, || self.settle(index, *outcome));
                }
                None => {
                    let trace_id = self.trace_id.clone();
                    crate::trace::TRACE_ID.sync_scope(trace_id, || self.broken());
                }
            }
        }
    }

    /// A call ended: its `result`, and the `error` when it ends a `fail_fast` group.
    fn settle(&mut self, index: usize, outcome: Option<Outcome>) {
        let Some(call) = self.calls.get(index) else {
            return;
        };
        self.unsettled = self.unsettled.saturating_sub(1);
        let first_failure = match &outcome {
            Some(o) if o.result.is_ok() => {
                self.succeeded += 1;
                false
            }
            Some(o) => self.group.settle(index, o),
            None => false,
        };
        let result = entry(call, outcome, self.group.first_failure());
        let error = first_failure.then(|| json!({"id": call.id, "error": result["error"]}));
        self.push("result", result.to_string());
        if let Some(error) = error
            && self.group.ends_on_failure()
        {
            self.push("error", error.to_string());
        }
    }

    /// Every task is gone without reporting: only possible if the runtime drops
    /// them. Say so rather than hang, then finish.
    fn broken(&mut self) {
        tracing::error!(
            unsettled = self.unsettled,
            "streamed calls ended without results"
        );
        let problem = crate::error::internal().to_problem();
        self.push("error", json!({"error": problem}).to_string());
        self.unsettled = 0;
    }

    fn done(&mut self) -> Event {
        let calls = self.calls.len();
        let data = json!({
            "success": self.succeeded == calls,
            "calls": calls,
            "succeeded": self.succeeded,
            "failed": calls - self.succeeded,
        });
        self.event("done", data.to_string())
    }

    fn push(&mut self, name: &str, data: String) {
        let event = self.event(name, data);
        self.queue.push_back(event);
    }

    fn event(&mut self, name: &str, data: String) -> Event {
        let id = self.next_id;
        self.next_id += 1;
        Event::default().event(name).id(id.to_string()).data(data)
    }
}
