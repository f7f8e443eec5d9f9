//! 2025-11-25's experimental tasks, answered by the guard: rmcp's types for that
//! revision have no `task` parameter, no `tasks` capability and no
//! `execution.taskSupport`, so these requests are served here, before rmcp, and two
//! of rmcp's answers are amended on their way out.
//!
//! - `tools/call` with `params.task`: the call becomes a job ([`crate::jobs`]) and
//!   the answer is `{"task": {...}}` (`CreateTaskResult`). A tool whose
//!   `task_support` is `forbidden` refuses (`-32601`); a plain call of a
//!   `required` one (every tool with an approval) refuses too.
//! - `tasks/get`, `tasks/list` (the key's own, newest first, paged), `tasks/cancel`,
//!   and `tasks/result`, which waits for the end and answers the call's result (or
//!   its JSON-RPC error), with `_meta["io.modelcontextprotocol/related-task"]`.
//! - `initialize` answers gain `capabilities.tasks` (list, cancel, tools/call), and
//!   `tools/list` answers each tool's `execution.taskSupport`.
//!
//! Only session revisions (before 2026-07-28) come here; 2026-07-28 has the tasks
//! extension, served through rmcp ([`super::tasks`]).

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use toolgate_config::jobs::TaskSupport;
use toolgate_jobs::{Job, State};

use super::RequestScope;
use crate::AppState;

/// `-32601`: not supported (a task of a tool without task support, or a plain
/// call of a tool that needs one).
const METHOD_NOT_FOUND: i64 = -32601;
/// `-32602`: no such task, or a task that has ended.
const INVALID_PARAMS: i64 = -32602;

/// What the guard does with a pre-2026 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Legacy {
    /// Served here.
    Serve,
    /// rmcp's answer to `initialize` gains the capability.
    Initialize,
    /// rmcp's answer to `tools/list` gains `execution`.
    ToolsList,
}

/// Whether (and how) a pre-2026 request of `method` is this module's.
pub(super) fn classify(
    state: &AppState,
    method: Option<&str>,
    tool: Option<&str>,
    has_task: bool,
) -> Option<Legacy> {
    match method? {
        "tools/call" if has_task => Some(Legacy::Serve),
        "tools/call" => tool
            .filter(|t| state.jobs.task_required(t))
            .map(|_| Legacy::Serve),
        "tasks/get" | "tasks/result" | "tasks/list" | "tasks/cancel" => Some(Legacy::Serve),
        "initialize" => Some(Legacy::Initialize),
        "tools/list" => Some(Legacy::ToolsList),
        _ => None,
    }
}

fn answer(body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn ok(id: &Value, result: Value) -> Response {
    answer(&json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

fn error(id: &Value, code: i64, message: &str, data: Option<Value>) -> Response {
    let mut e = json!({"code": code, "message": message});
    if let Some(d) = data {
        e["data"] = d;
    }
    answer(&json!({"jsonrpc": "2.0", "id": id, "error": e}))
}

/// A job as a 2025-11-25 `Task`.
fn task(job: &Job) -> Value {
    let t = super::tasks::task_of(job);
    let status = match job.state {
        State::Queued | State::Running | State::AwaitingApproval => "working",
        State::Succeeded => "completed",
        State::Failed | State::Expired => "failed",
        State::Cancelled => "cancelled",
    };
    json!({
        "taskId": job.id,
        "status": status,
        "statusMessage": t.status_message,
        "createdAt": t.created_at,
        "lastUpdatedAt": t.last_updated_at,
        "ttl": job.ttl_ms,
        "pollInterval": super::tasks::POLL_INTERVAL_MS,
    })
}

/// Serve a task request of `scope`'s caller (`bytes`: its body).
pub(super) async fn serve(state: &AppState, scope: &RequestScope, bytes: &[u8]) -> Response {
    let msg: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    let method = msg
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let task_id = params
        .get("taskId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let need_id = || error(&id, INVALID_PARAMS, "params.taskId is required", None);
    scope
        .run(async {
            match method {
                "tools/call" => call(state, scope, &id, &params).await,
                "tasks/get" if !task_id.is_empty() => {
                    match super::tasks::find(state, scope, task_id).await {
                        Ok(job) => ok(&id, task(&job)),
                        Err(e) => rpc_error(&id, e),
                    }
                }
                "tasks/result" if !task_id.is_empty() => result(state, scope, &id, task_id).await,
                "tasks/cancel" if !task_id.is_empty() => cancel(state, scope, &id, task_id).await,
                "tasks/list" => list(state, scope, &id, &params).await,
                _ => need_id(),
            }
        })
        .await
}

fn rpc_error(id: &Value, e: rmcp::ErrorData) -> Response {
    error(id, i64::from(e.code.0), &e.message, e.data)
}

async fn call(state: &AppState, scope: &RequestScope, id: &Value, params: &Value) -> Response {
    let tool = params
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let support = state.jobs.task_support(tool);
    let Some(_task) = params.get("task").filter(|t| t.is_object()) else {
        return error(
            id,
            METHOD_NOT_FOUND,
            &format!("tool {tool:?} runs only as a task: call it with params.task"),
            None,
        );
    };
    if support == TaskSupport::Forbidden {
        return error(
            id,
            METHOD_NOT_FOUND,
            &format!("tool {tool:?} does not run as a task (its task_support is forbidden)"),
            None,
        );
    }
    let arguments = params
        .get("arguments")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if !arguments.is_object() {
        return error(
            id,
            INVALID_PARAMS,
            "params.arguments must be an object",
            None,
        );
    }
    match super::tasks::start(state, scope, tool, arguments).await {
        Ok(job) => ok(id, json!({"task": task(&job)})),
        Err(e) => rpc_error(id, e),
    }
}

async fn cancel(state: &AppState, scope: &RequestScope, id: &Value, task_id: &str) -> Response {
    match super::tasks::find(state, scope, task_id).await {
        Ok(job) if job.state.is_final() => {
            return error(
                id,
                INVALID_PARAMS,
                &format!(
                    "task {task_id:?} has already ended ({})",
                    job.state.as_str()
                ),
                None,
            );
        }
        Ok(_) => {}
        Err(e) => return rpc_error(id, e),
    }
    match super::tasks::cancel(state, scope, task_id).await {
        Ok(job) => ok(id, task(&job)),
        Err(e) => rpc_error(id, e),
    }
}

async fn list(state: &AppState, scope: &RequestScope, id: &Value, params: &Value) -> Response {
    let cursor = params.get("cursor").and_then(Value::as_str);
    if cursor.is_some_and(|c| !toolgate_jobs::Store::is_cursor(c)) {
        return error(
            id,
            INVALID_PARAMS,
            "params.cursor is not a cursor this server gave out",
            None,
        );
    }
    let owner = crate::jobs::owner_hash(&scope.caller);
    match state.jobs.store().list(&owner, cursor, 50).await {
        Ok(page) => {
            let tasks: Vec<Value> = page.jobs.iter().map(task).collect();
            let mut result = json!({"tasks": tasks});
            if let Some(next) = page.next {
                result["nextCursor"] = next.into();
            }
            ok(id, result)
        }
        Err(e) => rpc_error(id, super::tasks::unavailable(&e)),
    }
}

/// `tasks/result`: wait for the end (as long as the client waits), then the call's
/// result or error.
async fn result(state: &AppState, scope: &RequestScope, id: &Value, task_id: &str) -> Response {
    let mut ended = state.jobs.subscribe_ended();
    loop {
        let job = match super::tasks::find(state, scope, task_id).await {
            Ok(job) => job,
            Err(e) => return rpc_error(id, e),
        };
        if let Some(outcome) = super::tasks::outcome(state, &job) {
            let related = json!({"io.modelcontextprotocol/related-task": {"taskId": job.id}});
            return match outcome {
                Ok(result) => {
                    let mut v = serde_json::to_value(result).unwrap_or(Value::Null);
                    v["_meta"] = related;
                    ok(id, v)
                }
                Err(e) => {
                    let mut data = e.data.clone().unwrap_or_else(|| json!({}));
                    if data.is_object() {
                        data["_meta"] = related;
                    }
                    error(id, i64::from(e.code.0), &e.message, Some(data))
                }
            };
        }
        // An end on this replica wakes at once; one on another is seen by polling.
        let _ = tokio::time::timeout(
            std::time::Duration::from_millis(super::tasks::POLL_INTERVAL_MS),
            ended.recv(),
        )
        .await;
    }
}

/// rmcp's answer to `initialize` or `tools/list`, amended (`kind`).
pub(super) async fn amend(state: &AppState, kind: Legacy, response: Response) -> Response {
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let is_sse = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    // Both answers are one message; a stream ends right after it.
    let bytes = match tokio::time::timeout(
        std::time::Duration::from_secs(30),
        axum::body::to_bytes(body, 64 * 1024 * 1024),
    )
    .await
    {
        Ok(Ok(b)) => b,
        _ => return Response::from_parts(parts, Body::empty()),
    };
    let edit = |mut v: Value| -> Value {
        if let Some(result) = v.get_mut("result") {
            match kind {
                Legacy::Initialize if result["protocolVersion"] == "2025-11-25" => {
                    if let Some(caps) = result
                        .get_mut("capabilities")
                        .and_then(Value::as_object_mut)
                    {
                        caps.insert(
                            "tasks".into(),
                            json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}),
                        );
                    }
                }
                Legacy::ToolsList => {
                    if let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) {
                        for t in tools {
                            let name = t.get("name").and_then(Value::as_str).unwrap_or_default();
                            let support = state.jobs.task_support(name).as_str();
                            t["execution"] = json!({"taskSupport": support});
                        }
                    }
                }
                Legacy::Initialize | Legacy::Serve => {}
            }
        }
        v
    };
    let out = if is_sse {
        let text = String::from_utf8_lossy(&bytes);
        let mut out = String::with_capacity(text.len() + 128);
        for line in text.split_inclusive('\n') {
            match line
                .strip_prefix("data: ")
                .or_else(|| line.strip_prefix("data:"))
            {
                Some(data) => match serde_json::from_str::<Value>(data.trim_end()) {
                    Ok(v) => {
                        out.push_str("data: ");
                        out.push_str(&edit(v).to_string());
                        out.push('\n');
                    }
                    Err(_) => out.push_str(line),
                },
                None => out.push_str(line),
            }
        }
        out.into_bytes()
    } else {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => edit(v).to_string().into_bytes(),
            Err(_) => bytes.to_vec(),
        }
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}
