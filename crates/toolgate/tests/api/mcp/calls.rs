//! Listing and calling tools over MCP, both revisions: schemas and annotations,
//! every demo tool, tool errors, progress, cancellation, overload.

use std::time::{Duration, Instant};

use rmcp::model::{ClientRequest, ErrorCode, Request};
use rmcp::service::{PeerRequestOptions, ServiceError};
use serde_json::json;
use toolgate_config::DEMO_CONFIG;
use toolgate_test_support::{OPERATOR_KEY, TestServer};

use super::{DEMO_TOOLS, Rev, call, connect, eventually, modern_post, params, text_json};

async fn lists_every_tool_with_schemas_and_annotations(rev: Rev) {
    let s = TestServer::demo().await.unwrap();
    let c = connect(&s, OPERATOR_KEY, rev).await;
    let tools = c.service.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for tool in DEMO_TOOLS {
        assert!(names.contains(&tool), "{tool} missing from {names:?}");
    }
    let query = tools
        .iter()
        .find(|t| t.name == "run_database_query")
        .unwrap();
    assert_eq!(query.input_schema["required"], json!(["query"]));
    let output = query.output_schema.as_ref().expect("an output schema");
    assert_eq!(output["type"], "object");
    let hints = query.annotations.as_ref().unwrap();
    assert_eq!(hints.read_only_hint, Some(true));
    assert_eq!(hints.destructive_hint, Some(false));
    let echo = tools.iter().find(|t| t.name == "echo").unwrap();
    assert!(
        echo.output_schema.is_none(),
        "echo declares no output schema"
    );
    c.service.cancel().await.unwrap();
}

#[tokio::test]
async fn modern_lists_every_tool_with_schemas_and_annotations() {
    lists_every_tool_with_schemas_and_annotations(Rev::Modern).await;
}

#[tokio::test]
async fn legacy_lists_every_tool_with_schemas_and_annotations() {
    lists_every_tool_with_schemas_and_annotations(Rev::Legacy).await;
}

async fn calls_every_demo_tool(rev: Rev) {
    let s = TestServer::demo().await.unwrap();
    let c = connect(&s, OPERATOR_KEY, rev).await;

    let echo = call(&c, "echo", json!({"hello": ["agents", 1]})).await;
    assert_eq!(echo.is_error, Some(false));
    assert_eq!(text_json(&echo), json!({"hello": ["agents", 1]}));
    assert!(
        echo.structured_content.is_none(),
        "no output schema, no structure"
    );

    let slept = call(&c, "sleep", json!({"ms": 5})).await;
    assert_eq!(slept.structured_content, Some(json!({"slept_ms": 5})));
    assert_eq!(text_json(&slept), json!({"slept_ms": 5}), "a text copy too");

    let rows = call(
        &c,
        "run_database_query",
        json!({"query": "SELECT count(*) AS n FROM customers"}),
    )
    .await;
    let structured = rows.structured_content.clone().unwrap();
    assert_eq!(structured["columns"], json!(["n"]));
    assert!(structured["rows"][0][0].as_i64().unwrap() > 0);

    let audit = call(&c, "run_system_audit", json!({"target": "localhost"})).await;
    let status = audit.structured_content.unwrap()["status"].clone();
    assert!(status == "passed" || status == "warning", "{status}");

    // A tool failure is a result the model can read, not a protocol error.
    let failed = call(&c, "fail", json!({"message": "nope"})).await;
    assert_eq!(failed.is_error, Some(true));
    let problem = text_json(&failed);
    assert_eq!(problem["code"], "tool_error");
    assert_eq!(problem["tool"], "fail");
    c.service.cancel().await.unwrap();
}

#[tokio::test]
async fn modern_calls_every_demo_tool() {
    calls_every_demo_tool(Rev::Modern).await;
}

#[tokio::test]
async fn legacy_calls_every_demo_tool() {
    calls_every_demo_tool(Rev::Legacy).await;
}

async fn bad_arguments_are_results_and_unknown_tools_are_errors(rev: Rev) {
    let s = TestServer::demo().await.unwrap();
    let c = connect(&s, OPERATOR_KEY, rev).await;
    let bad = call(&c, "sleep", json!({"ms": "soon"})).await;
    assert_eq!(bad.is_error, Some(true));
    let problem = text_json(&bad);
    assert_eq!(problem["code"], "invalid_arguments");
    assert_eq!(problem["errors"][0]["pointer"], "/ms");

    let unknown = c.service.call_tool(params("no_such_tool", json!({}))).await;
    let Err(ServiceError::McpError(e)) = unknown else {
        panic!("expected a JSON-RPC error, got {unknown:?}");
    };
    assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
    assert_eq!(e.data.unwrap()["code"], "tool_not_found");
    c.service.cancel().await.unwrap();
}

#[tokio::test]
async fn modern_bad_arguments_are_results_and_unknown_tools_are_errors() {
    bad_arguments_are_results_and_unknown_tools_are_errors(Rev::Modern).await;
}

#[tokio::test]
async fn legacy_bad_arguments_are_results_and_unknown_tools_are_errors() {
    bad_arguments_are_results_and_unknown_tools_are_errors(Rev::Legacy).await;
}

async fn sleep_reports_progress(rev: Rev) {
    let s = TestServer::demo().await.unwrap();
    let mut c = connect(&s, OPERATOR_KEY, rev).await;
    let result = call(&c, "sleep", json!({"ms": 450})).await;
    assert_eq!(result.structured_content, Some(json!({"slept_ms": 450})));
    // Every report was sent before the result, so all are here by now.
    let mut seen = Vec::new();
    while let Ok(p) = c.progress.try_recv() {
        seen.push(p);
    }
    assert!(seen.len() >= 3, "progress every 100 ms, got {seen:?}");
    assert_eq!(seen[0].total, Some(450.0));
    assert!(seen.windows(2).all(|w| w[0].progress < w[1].progress));
    assert!(seen[0].message.as_deref().unwrap().contains("of 450 ms"));
    c.service.cancel().await.unwrap();
}

#[tokio::test]
async fn modern_sleep_reports_progress() {
    sleep_reports_progress(Rev::Modern).await;
}

#[tokio::test]
async fn legacy_sleep_reports_progress() {
    sleep_reports_progress(Rev::Legacy).await;
}

async fn cancelling_stops_the_sleep(rev: Rev) {
    let s = TestServer::demo().await.unwrap();
    let c = connect(&s, OPERATOR_KEY, rev).await;
    let request =
        ClientRequest::CallToolRequest(Request::new(params("sleep", json!({"ms": 60_000}))));
    let handle = c
        .service
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    eventually("the sleep is running", || s.state.registry.in_flight() == 1).await;
    let start = Instant::now();
    handle.cancel(Some("changed my mind".into())).await.unwrap();
    eventually("the sleep stopped", || s.state.registry.in_flight() == 0).await;
    assert!(start.elapsed() < Duration::from_secs(5));
    // The connection is still good for more calls.
    let echo = call(&c, "echo", json!({"after": "cancel"})).await;
    assert_eq!(text_json(&echo), json!({"after": "cancel"}));
    c.service.cancel().await.unwrap();
}

#[tokio::test]
async fn modern_cancelling_stops_the_sleep() {
    cancelling_stops_the_sleep(Rev::Modern).await;
}

#[tokio::test]
async fn legacy_cancelling_stops_the_sleep() {
    cancelling_stops_the_sleep(Rev::Legacy).await;
}

#[tokio::test]
async fn modern_closing_the_response_stream_stops_the_sleep() {
    let s = TestServer::demo().await.unwrap();
    for progress in [false, true] {
        // With a progress token the answer is an SSE stream; without one, a JSON body
        // that has not started yet. Either way, hanging up must stop the tool.
        let mut meta = super::modern_meta();
        if progress {
            meta["progressToken"] = json!("p1");
        }
        let args = json!({"name": "sleep", "arguments": {"ms": 60_000}, "_meta": meta});
        let req = modern_post(&s, Some(OPERATOR_KEY), "tools/call", Some("sleep"), args);
        let pending = tokio::spawn(async move {
            let resp = req.send().await.unwrap();
            // Read whatever streams in; the test aborts this task to hang up.
            let _ = resp.text().await;
        });
        eventually("the sleep is running", || s.state.registry.in_flight() == 1).await;
        pending.abort();
        eventually("the sleep stopped", || s.state.registry.in_flight() == 0).await;
    }
}

#[tokio::test]
async fn overload_is_a_fast_json_rpc_error() {
    let config = format!(
        "{DEMO_CONFIG}\n[[tools]]\nname = \"narrow\"\nkind = \"builtin\"\nbuiltin = \"sleep\"\nmax_concurrency = 1\nmax_queue = 0\n"
    );
    let s = TestServer::spawn(&config).await.unwrap();
    let c = connect(&s, OPERATOR_KEY, Rev::Modern).await;
    let busy = c.service.clone();
    let holder =
        tokio::spawn(async move { busy.call_tool(params("narrow", json!({"ms": 5_000}))).await });
    eventually("the slot is taken", || s.state.registry.in_flight() == 1).await;
    let start = Instant::now();
    let refused = c
        .service
        .call_tool(params("narrow", json!({"ms": 1})))
        .await;
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "refusals are fast"
    );
    let Err(ServiceError::McpError(e)) = refused else {
        panic!("expected a JSON-RPC error, got {refused:?}");
    };
    assert_eq!(e.code, ErrorCode(-32029));
    let data = e.data.unwrap();
    assert_eq!(data["code"], "overloaded");
    assert!(data["retry_after_s"].as_u64().unwrap() >= 1);
    holder.abort();
    c.service.cancel().await.unwrap();
}

/// `value` without its `trace_id` fields (which differ per request), looking inside
/// strings that hold JSON too (tool failures carry their problem document as text).
fn without_trace_ids(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| k != "trace_id")
                .map(|(k, v)| (k, without_trace_ids(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_trace_ids).collect()),
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(inner @ Value::Object(_)) => Value::String(without_trace_ids(inner).to_string()),
            _ => Value::String(s),
        },
        other => other,
    }
}

#[tokio::test]
async fn the_direct_path_answers_exactly_as_rmcp_does() {
    // A 2026-07-28 call without a progress token is answered by toolgate's direct
    // path; the same call with a progress token goes through rmcp (echo, fail and an
    // unknown tool report no progress, so rmcp answers with one JSON body as well).
    let s = TestServer::demo().await.unwrap();
    let cases = [
        ("echo", json!({"a": [1, "two", {"three": null}]})),
        ("fail", json!({"message": "on purpose"})),
        ("no_such_tool", json!({})),
        ("echo", json!({})),
    ];
    for (tool, arguments) in cases {
        let mut answers = Vec::new();
        for progress in [false, true] {
            let mut meta = super::modern_meta();
            if progress {
                meta["progressToken"] = json!("p1");
            }
            let params = json!({"name": tool, "arguments": arguments, "_meta": meta});
            let resp = modern_post(&s, Some(OPERATOR_KEY), "tools/call", Some(tool), params)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
            let body: serde_json::Value = resp.json().await.unwrap();
            answers.push((status, content_type, without_trace_ids(body)));
        }
        assert_eq!(answers[0], answers[1], "{tool}: direct vs rmcp");
        assert_eq!(answers[0].1, "application/json");
    }
    // Nothing is left running on either path.
    assert_eq!(s.state.registry.in_flight(), 0);
}

#[tokio::test]
async fn requests_the_direct_path_does_not_take_still_get_rmcp_answers() {
    let s = TestServer::demo().await.unwrap();
    let args = json!({"name": "echo", "arguments": {"x": 1}});
    // The routing header names another tool than the body: rmcp's header check
    // refuses it (the direct path must not serve it).
    let mismatched = modern_post(
        &s,
        Some(OPERATOR_KEY),
        "tools/call",
        Some("sleep"),
        args.clone(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(mismatched.status(), 400);
    let body: serde_json::Value = mismatched.json().await.unwrap();
    assert!(body["error"]["code"].is_i64(), "{body}");
    // No protocol version in _meta: rmcp's invalid-params refusal.
    let no_meta = json!({"name": "echo", "arguments": {}, "_meta": {}});
    let resp = modern_post(&s, Some(OPERATOR_KEY), "tools/call", Some("echo"), no_meta)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Not JSON at all: refused, never served.
    let resp = modern_post(
        &s,
        Some(OPERATOR_KEY),
        "tools/call",
        Some("echo"),
        json!({}),
    )
    .body("{not json")
    .send()
    .await
    .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    // A Host that is not allowed: rmcp's 403, as for every other request.
    let resp = modern_post(&s, Some(OPERATOR_KEY), "tools/call", Some("echo"), args)
        .header("Host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}
