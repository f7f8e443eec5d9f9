//! REST: jobs and approvals.
//!
//! - `POST /api/v1/tools/{name}/jobs` (body: the arguments; optional
//!   `X-Job-Webhook: URL`) → `202` with the job and `Location: /api/v1/jobs/{id}`.
//! - `POST /api/v1/tools/execute/jobs` (body as the batch's `calls`) → `202`
//!   `{"jobs": [...]}`, one job per call, all or none.
//! - `GET /api/v1/jobs` (`?limit=&cursor=`), `GET /api/v1/jobs/{id}`,
//!   `DELETE /api/v1/jobs/{id}` and `POST /api/v1/jobs/{id}/cancel`.
//! - `GET /api/v1/approvals`, `GET /api/v1/approvals/{id}`,
//!   `POST /api/v1/approvals/{id}/approve` and `.../deny` (`{"comment"?}`).

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use toolgate_core::ToolError;

use super::view::{approval_json, job_json};
use crate::auth::Caller;
use crate::body::JsonBody;
use crate::{ApiError, AppState};

/// The header naming a job's completion webhook.
pub const WEBHOOK_HEADER: &str = "x-job-webhook";

/// How long a cancel waits for a running job to stop before it answers.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

fn tool_err(e: ToolError, tool: &str) -> ApiError {
    ApiError::from_tool(e, tool)
}

/// The `X-Job-Webhook` header, if given.
///
/// # Errors
/// It is not text.
pub fn webhook_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get(WEBHOOK_HEADER) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .map(|s| Some(s.trim().to_owned()))
            .ok_or_else(|| ApiError::invalid("", "the X-Job-Webhook header must be a URL")),
    }
}

/// `202 Accepted` with the job and its `Location`.
#[must_use]
pub fn accepted(job: &toolgate_jobs::Job) -> Response {
    let location = format!("/api/v1/jobs/{}", job.id);
    let mut resp = (StatusCode::ACCEPTED, Json(job_json(job))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// `POST /api/v1/tools/{name}/jobs`.
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    JsonBody(arguments): JsonBody,
) -> Result<Response, ApiError> {
    start(&state, &caller, &name, &headers, arguments).await
}

/// Start `name` as a job for `caller` (webhook from `headers`): `202` with it.
///
/// # Errors
/// As [`crate::jobs::Jobs::create`], as problems.
pub async fn start(
    state: &AppState,
    caller: &crate::auth::Principal,
    name: &str,
    headers: &HeaderMap,
    arguments: serde_json::Map<String, Value>,
) -> Result<Response, ApiError> {
    let webhook = webhook_of(headers)?;
    let job = state
        .jobs
        .create(
            state,
            caller,
            name,
            Value::Object(arguments),
            webhook,
            "rest",
        )
        .await
        .map_err(|e| tool_err(e, name))?;
    Ok(accepted(&job))
}

/// `POST /api/v1/tools/execute/jobs`: one job per call of a batch body.
pub async fn create_batch(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let webhook = webhook_of(&headers)?;
    let req = crate::transport::batch::parse_request(body, state.limits.max_batch_calls)?;
    let mut prepared = Vec::with_capacity(req.calls.len());
    for (i, call) in req.calls.iter().enumerate() {
        let new = state
            .jobs
            .prepare(
                &state,
                &caller,
                &call.tool,
                call.arguments.clone(),
                webhook.clone(),
                "rest",
            )
            .await
            .map_err(|e| {
                let api = tool_err(e, &call.tool);
                let detail = format!(
                    "calls/{i} ({}): {}",
                    call.id,
                    api.to_problem()["detail"].as_str().unwrap_or_default()
                );
                ApiError::new(
                    toolgate_core::ErrorKind::from_code(api.code())
                        .unwrap_or(toolgate_core::ErrorKind::InvalidArguments),
                    detail,
                )
                .with_status(api.status())
            })?;
        prepared.push((call.id.clone(), new));
    }
    let n = u64::try_from(prepared.len()).unwrap_or(u64::MAX);
    state
        .jobs
        .check_quota(&caller, n)
        .await
        .map_err(|e| tool_err(e, ""))?;
    let mut jobs = Vec::with_capacity(prepared.len());
    for (id, new) in prepared {
        let job = state
            .jobs
            .insert(&state, &caller, new)
            .await
            .map_err(|e| tool_err(e, ""))?;
        let mut v = job_json(&job);
        v["call_id"] = id.into();
        jobs.push(v);
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "jobs": jobs }))).into_response())
}

/// `GET /api/v1/jobs?limit=N&cursor=C`: the caller's jobs, newest first.
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = match q.get("limit") {
        None => 50,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::invalid("/limit", "limit must be 1..=1000"))?,
    };
    if let Some(c) = q.get("cursor")
        && !toolgate_jobs::Store::is_cursor(c)
    {
        return Err(ApiError::invalid(
            "/cursor",
            "not a cursor this server gave out",
        ));
    }
    let page = state
        .jobs
        .store()
        .list(
            &super::owner_hash(&caller),
            q.get("cursor").map(String::as_str),
            limit,
        )
        .await
        .map_err(|e| tool_err(super::unavailable(&e), ""))?;
    let jobs: Vec<Value> = page.jobs.iter().map(job_json).collect();
    let mut body = json!({ "jobs": jobs });
    if let Some(next) = page.next {
        body["next_cursor"] = next.into();
    }
    Ok(Json(body))
}

/// `GET /api/v1/jobs/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = state
        .jobs
        .get(&caller, &id)
        .await
        .map_err(|e| tool_err(e, ""))?;
    Ok(Json(job_json(&job)))
}

/// `DELETE /api/v1/jobs/{id}` and `POST /api/v1/jobs/{id}/cancel`: cancel, and
/// answer with the job once it stopped (or after 5 s, still `running` with
/// `cancel_requested`).
pub async fn cancel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = state
        .jobs
        .cancel(&caller, &id, CANCEL_WAIT)
        .await
        .map_err(|e| tool_err(e, ""))?;
    Ok(Json(job_json(&job)))
}

/// `GET /api/v1/approvals`: the pending approvals the caller may decide.
pub async fn list_approvals(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Value>, ApiError> {
    let pending = super::approvals::pending_for(&state, &caller)
        .await
        .map_err(|e| tool_err(e, ""))?;
    let approvals: Vec<Value> = pending.iter().map(approval_json).collect();
    Ok(Json(json!({ "approvals": approvals })))
}

/// `GET /api/v1/approvals/{id}`.
pub async fn get_approval(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = super::approvals::visible(&state, &caller, &id)
        .await
        .map_err(|e| tool_err(e, ""))?;
    Ok(Json(approval_json(&job)))
}

/// `POST /api/v1/approvals/{id}/approve`.
pub async fn approve(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    decide(state, caller, id, &body, true).await
}

/// `POST /api/v1/approvals/{id}/deny`.
pub async fn deny(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    decide(state, caller, id, &body, false).await
}

async fn decide(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: &[u8],
    approved: bool,
) -> Result<Json<Value>, ApiError> {
    // The body is optional: empty, or `{"comment": "..."}`.
    let fields = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(ApiError::new(
                    toolgate_core::ErrorKind::InvalidJson,
                    "the body must be empty or a JSON object `{\"comment\": \"...\"}`",
                ));
            }
        }
    };
    let comment = match fields.get("comment") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::invalid("/comment", "must be a string")),
    };
    if let Some(k) = fields.keys().find(|k| k.as_str() != "comment") {
        return Err(ApiError::invalid(
            format!("/{k}"),
            format!("unknown field {k:?}"),
        ));
    }
    let job = super::approvals::decide(&state, &caller, &id, approved, comment)
        .await
        .map_err(|e| tool_err(e, ""))?;
    Ok(Json(approval_json(&job)))
}
