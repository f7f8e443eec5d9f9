//! The OpenAPI 3.1 document: the fixed routes plus one `POST /api/v1/tools/{name}`
//! operation per tool (`operationId` = tool name, request body = its input schema).
//!
//! Built as JSON directly rather than through a code-first generator: tool schemas
//! are runtime JSON Schema documents that OpenAPI 3.1 embeds verbatim, which typed
//! OpenAPI models cannot hold without loss.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Json;
use axum::extract::State;
use axum::response::Html;
use serde_json::{Map, Value, json};
use toolgate_core::ToolSpec;
use toolgate_registry::Registry;

use crate::AppState;
use crate::auth::{Caller, Principal};

/// The document for everybody, built once per generation of tools.
#[derive(Debug)]
pub struct Documents {
    full: ArcSwap<Value>,
}

impl Documents {
    /// Build the document for `registry`.
    #[must_use]
    pub fn new(registry: &Registry) -> Self {
        Self {
            full: ArcSwap::from_pointee(build(registry, |_| true)),
        }
    }

    /// Rebuild after the tools changed.
    pub fn rebuild(&self, registry: &Registry) {
        self.full.store(Arc::new(build(registry, |_| true)));
    }

    /// The full document.
    #[must_use]
    pub fn full(&self) -> Arc<Value> {
        self.full.load_full()
    }
}

/// `GET /openapi.json`: every tool, no key needed.
pub async fn document(State(state): State<AppState>) -> Json<Value> {
    Json(Value::clone(&state.docs.full()))
}

/// `GET /api/v1/openapi.json`: the document as the calling key sees it.
pub async fn keyed_document(State(state): State<AppState>, Caller(caller): Caller) -> Json<Value> {
    Json(for_principal(&state.registry, &caller))
}

/// The document restricted to the tools `principal` may call.
#[must_use]
pub fn for_principal(registry: &Registry, principal: &Principal) -> Value {
    build(registry, |name| principal.allows(name))
}

/// `GET /docs`: interactive documentation of `/openapi.json` (Scalar).
pub async fn docs_page() -> Html<&'static str> {
    Html(DOCS_PAGE)
}

/// The page's script: `@scalar/api-reference`, vendored (see `assets/README.md`) and
/// embedded gzip-compressed, so `/docs` works air-gapped and no CDN can swap it.
const API_REFERENCE_GZ: &[u8] = include_bytes!("../assets/scalar-api-reference-1.76.4.js.gz");

/// Its entity tag: the vendored version.
const API_REFERENCE_ETAG: &str = "\"scalar-api-reference-1.76.4\"";

/// `GET /docs/api-reference.js`: the embedded script, gzip-encoded for every client
/// that accepts it (every browser), decompressed for one that does not.
pub async fn api_reference(headers: axum::http::HeaderMap) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == API_REFERENCE_ETAG.as_bytes())
    {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, API_REFERENCE_ETAG)],
        )
            .into_response();
    }
    let common = [
        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
        (header::CACHE_CONTROL, "public, max-age=86400"),
        (header::ETAG, API_REFERENCE_ETAG),
        (header::VARY, "accept-encoding"),
    ];
    if accepts_gzip(&headers) {
        return (
            common,
            [(header::CONTENT_ENCODING, "gzip")],
            API_REFERENCE_GZ,
        )
            .into_response();
    }
    let mut plain = Vec::new();
    match std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(API_REFERENCE_GZ),
        &mut plain,
    ) {
        Ok(_) => (common, plain).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "the embedded API reference does not decompress");
            crate::error::internal().into_response()
        }
    }
}

/// Whether `Accept-Encoding` allows gzip (no header: anything is acceptable).
fn accepts_gzip(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(axum::http::header::ACCEPT_ENCODING) else {
        return true;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    text.split(',').any(|part| {
        let mut pieces = part.split(';');
        let coding = pieces.next().unwrap_or_default().trim();
        let refused = pieces.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>toolgate API</title>
</head>
<body>
  <noscript>The interactive reference needs JavaScript; the document itself is at <a href="/openapi.json">/openapi.json</a>.</noscript>
  <script id="api-reference" data-url="/openapi.json" data-configuration='{"withDefaultFonts": false}'></script>
  <script src="/docs/api-reference.js"></script>
</body>
</html>
"#;

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

fn build(registry: &Registry, visible: impl Fn(&str) -> bool) -> Value {
    let mut paths = fixed_paths();
    for tool in registry.tools().filter(|t| visible(&t.spec().name)) {
        let spec = tool.spec();
        paths.insert(format!("/api/v1/tools/{}", spec.name), tool_path(spec));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "toolgate",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Tools for AI agents over REST. Every error is application/problem+json (RFC 9457) with a stable `code`."
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}, {"bearer": []}],
        "paths": Value::Object(paths),
        "components": components(),
    })
}

fn tool_path(spec: &ToolSpec) -> Value {
    let output = spec.output_schema.clone().unwrap_or_else(|| json!({}));
    json!({
        "post": {
            "operationId": spec.name,
            "summary": first_line(&spec.description),
            "description": spec.description,
            "tags": ["tools"],
            "parameters": [{"$ref": "#/components/parameters/RequestTimeout"}],
            "requestBody": {
                "required": true,
                "content": {"application/json": {"schema": spec.input_schema}}
            },
            "responses": {
                "200": {
                    "description": "The tool's output.",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {
                            "tool": {"const": spec.name},
                            "output": output,
                            "duration_ms": {"type": "integer", "minimum": 0}
                        },
                        "required": ["tool", "output", "duration_ms"]
                    }}}
                },
                "400": problem_response("The body is not a JSON object (`invalid_json`)."),
                "401": problem_response("No API key (`unauthorized`)."),
                "403": problem_response("Unknown key, or no scope for this tool (`forbidden`)."),
                "408": problem_response("The body did not arrive within `body_read_timeout_ms` (`request_timeout`)."),
                "413": problem_response("The body is over the limit (`payload_too_large`)."),
                "422": problem_response("The arguments fail the input schema (`invalid_arguments`)."),
                "429": problem_response("The tool's queue is full (`overloaded`), the key's rate limit was hit (`rate_limited`), the key holds all it may at once (`quota_exceeded`), or this address failed authentication too often (`rate_limited`)."),
                "500": problem_response("The tool reported failure (`tool_error`)."),
                "502": problem_response("The tool's dependency failed (`upstream_error`)."),
                "503": problem_response("The server or the tool's circuit is unavailable (`overloaded`, `circuit_open`), or the call's audit record cannot be kept (`audit_unavailable`)."),
                "504": problem_response("The deadline passed (`timeout`).")
            },
            "x-toolgate-annotations": spec.annotations,
            "x-toolgate-timeout-ms": spec.timeout_ms(),
        }
    })
}

/// An event stream whose events are `names`, each `data` one JSON object. OpenAPI 3.1
/// has no schema for a stream's items, so the stream is described as the array of its
/// events.
fn sse_events(names: &[&str]) -> Value {
    json!({
        "type": "array",
        "description": "Server-Sent Events; the `data` of each is one JSON object (comment heartbeats carry none).",
        "items": {
            "type": "object",
            "properties": {
                "event": {"type": "string", "enum": names},
                "id": {"type": "string"},
                "data": {"type": "object"}
            },
            "required": ["data"]
        }
    })
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    line.split(". ")
        .next()
        .unwrap_or(line)
        .trim_end_matches('.')
        .to_owned()
}

fn fixed_paths() -> Map<String, Value> {
    let errors = |codes: &[(&str, &str)]| -> Value {
        let mut m = Map::new();
        for (status, text) in codes {
            m.insert((*status).to_owned(), problem_response(text));
        }
        Value::Object(m)
    };
    let json_ok = |description: &str, schema: Value| json!({"description": description, "content": {"application/json": {"schema": schema}}});
    let mut list_responses = errors(&[("401", "No API key."), ("403", "Unknown key.")]);
    list_responses["200"] = json_ok(
        "The tools this key may call.",
        json!({"$ref": "#/components/schemas/ToolList"}),
    );
    let mut get_responses = errors(&[
        ("401", "No API key."),
        ("403", "Unknown key or no scope."),
        ("404", "No such tool."),
    ]);
    get_responses["200"] = json_ok("The tool.", json!({"$ref": "#/components/schemas/Tool"}));
    let mut batch_responses = errors(&[
        ("400", "The body is not a JSON object."),
        ("401", "No API key."),
        ("403", "Unknown key."),
        ("413", "The body is over the limit."),
        ("422", "The batch request is malformed."),
    ]);
    batch_responses["200"] = json_ok(
        "Every call's result, in the order of `calls`.",
        json!({"$ref": "#/components/schemas/BatchResponse"}),
    );
    batch_responses["default"] = json_ok(
        "In `fail_fast` mode, the status of the first failure, with the same body.",
        json!({"$ref": "#/components/schemas/BatchResponse"}),
    );
    let health = json!({"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]});
    let mut paths = Map::new();
    paths.insert("/api/v1/tools".into(), json!({"get": {
        "operationId": "toolgate.listTools", "summary": "List the tools this key may call", "tags": ["catalog"],
        "responses": list_responses}}));
    paths.insert("/api/v1/tools/{name}".into(), json!({"get": {
        "operationId": "toolgate.getTool", "summary": "Describe one tool", "tags": ["catalog"],
        "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": get_responses}}));
    paths.insert("/api/v1/tools/execute".into(), json!({"post": {
        "operationId": "toolgate.executeTools", "summary": "Run several calls concurrently as a task group", "tags": ["tools"],
        "parameters": [{"$ref": "#/components/parameters/RequestTimeout"}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchRequest"}}}},
        "responses": batch_responses}}));
    let sse = json!({"description": "A stream of `progress`, `result`, `error` and `done` events (see docs/streaming.md).",
        "content": {"text/event-stream": {"schema": sse_events(&["progress", "result", "error", "done"])}}});
    let stream_errors = errors(&[
        ("400", "The body is not a JSON object."),
        ("401", "No API key."),
        ("403", "Unknown key, or no scope for the tool."),
        ("404", "No such tool."),
        ("413", "The body is over the limit."),
        ("422", "A malformed batch or timeout header."),
    ]);
    let mut stream_responses = stream_errors.clone();
    stream_responses["200"] = sse.clone();
    paths.insert("/api/v1/tools/{name}/stream".into(), json!({"post": {
        "operationId": "toolgate.streamTool", "summary": "Call one tool and stream its progress and result (SSE)", "tags": ["streaming"],
        "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}},
                       {"$ref": "#/components/parameters/RequestTimeout"}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
        "responses": stream_responses.clone()}}));
    paths.insert("/api/v1/tools/execute/stream".into(), json!({"post": {
        "operationId": "toolgate.streamExecute", "summary": "Run a batch and stream each call's result as it finishes (SSE)", "tags": ["streaming"],
        "parameters": [{"$ref": "#/components/parameters/RequestTimeout"}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchRequest"}}}},
        "responses": stream_responses}}));
    let mut ws_responses = errors(&[
        ("401", "No API key."),
        ("403", "Unknown key."),
        ("426", "Not a WebSocket upgrade."),
    ]);
    ws_responses["101"] = json!({"description": "Switching to the WebSocket protocol (messages: see docs/streaming.md)."});
    paths.insert("/api/v1/ws".into(), json!({"get": {
        "operationId": "toolgate.websocket", "summary": "Many calls over one WebSocket", "tags": ["streaming"],
        "responses": ws_responses}}));
    paths.insert("/mcp".into(), json!({"post": {
        "operationId": "toolgate.mcp", "summary": "Model Context Protocol, Streamable HTTP (see docs/mcp.md)", "tags": ["mcp"],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "description": "A JSON-RPC 2.0 message."}}}},
        "responses": {
            "200": {"description": "A JSON-RPC response, as JSON or as an event stream.",
                    "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {"schema": sse_events(&["message"])}}},
            "202": {"description": "A notification or response was accepted."},
            "400": {"description": "Not a JSON-RPC message, or a bad protocol version or session header."},
            "401": {"description": "No key, or an unknown key (WWW-Authenticate says which)."},
            "403": {"description": "A refused Origin or Host, or no scope for the tool."},
            "404": {"description": "No such session for this key (send initialize)."},
            "406": {"description": "The Accept header allows neither application/json nor text/event-stream."},
            "413": {"description": "The body is over the limit."},
            "415": {"description": "The body is not application/json."},
            "429": {"description": "The key's rate limit, or its share of sessions (`max_mcp_sessions`), is used up."},
            "503": {"description": "The server is at its session limit, or draining."}
        }}}));
    jobs_paths(&mut paths);
    paths.insert("/healthz".into(), json!({"get": {
        "operationId": "toolgate.healthz", "summary": "Liveness", "tags": ["operations"], "security": [],
        "responses": {"200": json_ok("The process runs.", health.clone())}}}));
    paths.insert("/readyz".into(), json!({"get": {
        "operationId": "toolgate.readyz", "summary": "Readiness", "tags": ["operations"], "security": [],
        "responses": {"200": json_ok("Ready.", health.clone()), "503": json_ok("Starting, draining, or a source is down.", health)}}}));
    paths.insert("/openapi.json".into(), json!({"get": {
        "operationId": "toolgate.openapi", "summary": "This document", "tags": ["operations"], "security": [],
        "responses": {"200": json_ok("The OpenAPI document.", json!({"type": "object"}))}}}));
    paths
}

fn json_ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// The job and approval routes (docs/jobs.md).
fn jobs_paths(paths: &mut Map<String, Value>) {
    let job = || json!({"$ref": "#/components/schemas/Job"});
    let accepted = |what: &str| {
        json!({"description": what,
               "headers": {"Location": {"schema": {"type": "string"}, "description": "The job's URL."}},
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}})
    };
    let id = || json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}});
    let webhook = || {
        json!({"name": "X-Job-Webhook", "in": "header", "required": false,
        "description": "POST the outcome here when the job ends, signed (X-Toolgate-Signature).",
        "schema": {"type": "string", "format": "uri"}})
    };
    let refusals = json!({
        "401": problem_response("No API key (`unauthorized`)."),
        "403": problem_response("Unknown key, or no scope for the tool (`forbidden`)."),
        "404": problem_response("No such tool (`tool_not_found`)."),
        "422": problem_response("The arguments fail the input schema, or the webhook is refused (`invalid_arguments`)."),
        "429": problem_response("The key's rate limit or job quota (`rate_limited`, `quota_exceeded`)."),
        "503": problem_response("The job store or the audit log is unavailable, or the server drains (`jobs_unavailable`, `audit_unavailable`, `overloaded`).")
    });
    let with = |mut base: Value, extra: Value| {
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        base
    };
    paths.insert("/api/v1/tools/{name}/jobs".into(), json!({"post": {
        "operationId": "toolgate.createJob", "summary": "Start a call as a durable job", "tags": ["jobs"],
        "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}, webhook()],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "description": "The tool's arguments."}}}},
        "responses": with(json!({"202": accepted("The job, `queued` (or `awaiting_approval`).")}), refusals.clone())}}));
    paths.insert("/api/v1/tools/execute/jobs".into(), json!({"post": {
        "operationId": "toolgate.createJobs", "summary": "Start one job per call of a batch, all or none", "tags": ["jobs"],
        "parameters": [webhook()],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchRequest"}}}},
        "responses": with(json!({"202": json_ok("The jobs, in the order of `calls`, each with its `call_id`.",
            json!({"type": "object", "properties": {"jobs": {"type": "array", "items": job()}}, "required": ["jobs"]}))}), refusals)}}));
    let not_found = || problem_response("No such job of this key (`job_not_found`).");
    paths.insert("/api/v1/jobs".into(), json!({"get": {
        "operationId": "toolgate.listJobs", "summary": "The key's jobs, newest first", "tags": ["jobs"],
        "parameters": [
            {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}},
            {"name": "cursor", "in": "query", "required": false, "schema": {"type": "string"}}],
        "responses": {"200": json_ok("One page.", json!({"type": "object", "properties": {
            "jobs": {"type": "array", "items": job()}, "next_cursor": {"type": "string"}}, "required": ["jobs"]})),
            "401": problem_response("No API key (`unauthorized`).")}}}));
    paths.insert("/api/v1/jobs/{id}".into(), json!({
        "get": {"operationId": "toolgate.getJob", "summary": "A job's state, progress and outcome", "tags": ["jobs"],
            "parameters": [id()], "responses": {"200": json_ok("The job.", job()), "404": not_found()}},
        "delete": {"operationId": "toolgate.cancelJob", "summary": "Cancel a job (its work stops)", "tags": ["jobs"],
            "parameters": [id()], "responses": {"200": json_ok("The job, once it stopped (or after 5 s).", job()), "404": not_found()}}}));
    paths.insert("/api/v1/jobs/{id}/cancel".into(), json!({"post": {
        "operationId": "toolgate.cancelJobPost", "summary": "Cancel a job (as DELETE)", "tags": ["jobs"],
        "parameters": [id()], "responses": {"200": json_ok("The job, once it stopped (or after 5 s).", job()), "404": not_found()}}}));
    paths.insert("/api/v1/approvals".into(), json!({"get": {
        "operationId": "toolgate.listApprovals", "summary": "The pending approvals this key may decide", "tags": ["approvals"],
        "responses": {"200": json_ok("Oldest first, with their arguments.", json!({"type": "object", "properties": {
            "approvals": {"type": "array", "items": job()}}, "required": ["approvals"]}))}}}));
    paths.insert("/api/v1/approvals/{id}".into(), json!({"get": {
        "operationId": "toolgate.getApproval", "summary": "One approval request", "tags": ["approvals"],
        "parameters": [id()], "responses": {"200": json_ok("The job, with its arguments.", job()), "404": not_found()}}}));
    for (verb, op, summary) in [
        (
            "approve",
            "toolgate.approve",
            "Approve: the job runs once, with these arguments",
        ),
        (
            "deny",
            "toolgate.deny",
            "Deny: the job fails with approval_denied",
        ),
    ] {
        paths.insert(format!("/api/v1/approvals/{{id}}/{verb}"), json!({"post": {
            "operationId": op, "summary": summary, "tags": ["approvals"], "parameters": [id()],
            "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object",
                "properties": {"comment": {"type": "string", "maxLength": 4096}}, "additionalProperties": false}}}},
            "responses": {
                "200": json_ok("The job, decided.", job()),
                "403": problem_response("Not an approver of this tool, or the job's own caller (`forbidden`)."),
                "404": problem_response("No such approval (`job_not_found`)."),
                "409": problem_response("Already decided, timed out or cancelled (`already_decided`)."),
                "422": problem_response("The tool requires a comment (`invalid_arguments`).")}}}));
    }
}

/// A job, as REST shows it.
fn job_schema() -> Value {
    json!({
        "type": "object",
        "description": "A durable job (docs/jobs.md).",
        "properties": {
            "id": {"type": "string"}, "tool": {"type": "string"},
            "state": {"enum": ["queued", "running", "succeeded", "failed", "cancelled", "awaiting_approval", "expired"]},
            "owner": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"}, "started_at": {"type": "string", "format": "date-time"},
            "finished_at": {"type": "string", "format": "date-time"}, "expires_at": {"type": "string", "format": "date-time"},
            "attempts": {"type": "integer"}, "timeout_ms": {"type": "integer"}, "arguments_sha256": {"type": "string"},
            "progress": {"type": "object"}, "output": {}, "error": {"$ref": "#/components/schemas/Problem"},
            "cancel_requested": {"type": "boolean"}, "arguments": {"type": "object"}, "call_id": {"type": "string"},
            "approval": {"type": "object", "properties": {
                "approvers": {"type": "array", "items": {"type": "string"}}, "reason_required": {"type": "boolean"},
                "expires_at": {"type": "string", "format": "date-time"},
                "decision": {"type": "object", "properties": {"approved": {"type": "boolean"}, "by": {"type": "string"},
                    "at": {"type": "string", "format": "date-time"}, "comment": {"type": ["string", "null"]}}}}}
        },
        "required": ["id", "tool", "state", "owner", "created_at", "updated_at", "attempts", "timeout_ms", "arguments_sha256"]
    })
}

fn components() -> Value {
    json!({
        "securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-Tool-API-Key"},
            "bearer": {"type": "http", "scheme": "bearer"}
        },
        "parameters": {
            "RequestTimeout": {
                "name": "X-Request-Timeout-Ms", "in": "header", "required": false,
                "description": "Lower the call's deadline to this many milliseconds (never raises it).",
                "schema": {"type": "integer", "minimum": 1}
            }
        },
        "schemas": {
            "Problem": {
                "type": "object",
                "description": "RFC 9457 problem details.",
                "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                    "detail": {"type": "string"}, "code": {"type": "string"}, "tool": {"type": "string"},
                    "trace_id": {"type": "string"},
                    "errors": {"type": "array", "items": {"type": "object", "properties": {
                        "pointer": {"type": "string"}, "message": {"type": "string"}}, "required": ["pointer", "message"]}}
                },
                "required": ["type", "title", "status", "detail", "code"]
            },
            "Tool": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"}, "description": {"type": "string"},
                    "input_schema": {"type": "object"}, "output_schema": {"type": "object"},
                    "annotations": {"type": "object", "properties": {
                        "read_only": {"type": "boolean"}, "idempotent": {"type": "boolean"}, "destructive": {"type": "boolean"}}},
                    "timeout_ms": {"type": "integer"}
                },
                "required": ["name", "description", "input_schema", "annotations", "timeout_ms"]
            },
            "ToolList": {"type": "object", "properties": {"tools": {"type": "array", "items": {"$ref": "#/components/schemas/Tool"}}}, "required": ["tools"]},
            "BatchRequest": {
                "type": "object",
                "properties": {
                    "calls": {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {
                        "id": {"type": "string"}, "tool": {"type": "string"}, "arguments": {"type": "object"}},
                        "required": ["tool"], "additionalProperties": false}},
                    "mode": {"enum": ["fail_fast", "all_settled"], "default": "fail_fast"},
                    "timeout_ms": {"type": "integer", "minimum": 1}
                },
                "required": ["calls"],
                "additionalProperties": false
            },
            "Job": job_schema(),
            "BatchResponse": {
                "type": "object",
                "properties": {
                    "success": {"type": "boolean"},
                    "data": {"type": "array", "items": {"type": "object", "properties": {
                        "id": {"type": "string"}, "tool": {"type": "string"}, "ok": {"type": "boolean"},
                        "output": {}, "error": {"$ref": "#/components/schemas/Problem"},
                        "duration_ms": {"type": "integer"}}, "required": ["id", "tool", "ok", "duration_ms"]}},
                    "error": {"$ref": "#/components/schemas/Problem"}
                },
                "required": ["success", "data"]
            }
        }
    })
}
