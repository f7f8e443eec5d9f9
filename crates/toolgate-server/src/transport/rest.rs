//! REST: `GET /api/v1/tools`, `GET /api/v1/tools/{name}`, `POST /api/v1/tools/{name}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use toolgate_core::{ErrorKind, ToolSpec};
use toolgate_registry::Invocation;

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::exec::run_call;
use crate::transport::requested_timeout;
use crate::{ApiError, AppState};

/// A tool as the listing shows it.
#[must_use]
pub fn tool_json(spec: &ToolSpec) -> Value {
    let mut v = json!({
        "name": spec.name,
        "description": spec.description,
        "input_schema": spec.input_schema,
        "annotations": spec.annotations,
        "timeout_ms": spec.timeout_ms(),
    });
    if let Some(out) = &spec.output_schema {
        v["output_schema"] = out.clone();
    }
    v
}

/// `GET /api/v1/tools`: the tools this key may call.
pub async fn list_tools(State(state): State<AppState>, Caller(caller): Caller) -> Json<Value> {
    if caller.searches() {
        let tools: Vec<Value> = crate::search::specs().iter().map(tool_json).collect();
        return Json(json!({ "tools": tools }));
    }
    let tools: Vec<Value> = state
        .registry
        .tools()
        .filter(|t| caller.allows(&t.spec().name))
        .map(|t| tool_json(t.spec()))
        .collect();
    Json(json!({ "tools": tools }))
}

/// `GET /api/v1/tools/{name}`.
pub async fn describe_tool(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&state, &name, "rest")?;
    if crate::search::is_meta(&caller.0, &name)
        && let Some(spec) = crate::search::spec(&name)
    {
        return Ok(Json(tool_json(spec)));
    }
    let tool = state
        .registry
        .get(&name)
        .ok_or_else(|| no_such_tool(&name))?;
    Ok(Json(tool_json(tool.spec())))
}

/// `POST /api/v1/tools/{name}`: call one tool with the body as arguments.
pub async fn call_tool(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    JsonBody(arguments): JsonBody,
) -> Result<axum::response::Response, ApiError> {
    let timeout = requested_timeout(&headers)?;
    // A tool behind an approval gate answers with its job, awaiting approval.
    if state.jobs.needs_approval(&name) {
        return crate::jobs::rest::start(&state, &caller, &name, &headers, arguments).await;
    }
    let inv = Invocation {
        client: None,
        caller: None,
        timeouts: vec![timeout],
        cancel: state.calls.child_token(),
        trace_id: crate::trace::current(),
        ..Invocation::default()
    };
    let outcome = run_call(&state, &caller, &name, Value::Object(arguments), inv).await;
    let duration_ms = outcome.duration_ms();
    match outcome.result {
        Ok(output) => Ok(axum::response::IntoResponse::into_response(Json(
            json!({"tool": name, "output": output, "duration_ms": duration_ms}),
        ))),
        Err(e) => Err(ApiError::from_tool(e, &name)),
    }
}

fn no_such_tool(name: &str) -> ApiError {
    ApiError::new(ErrorKind::ToolNotFound, format!("no tool named {name:?}"))
}
