//! Every error code reachable here, as problem+json, and hostile bodies that must
//! never produce a panic or a 500.

use std::time::Duration;

use serde_json::json;
use toolgate_test_support::TestServer;

use crate::{expect_problem, read};

#[tokio::test]
async fn malformed_and_non_object_bodies_are_400() {
    let s = TestServer::demo().await.unwrap();
    for body in [
        "{\"a\": ", "not json", "[1, 2]", "\"text\"", "42", "null", "",
    ] {
        let resp = s
            .post("/api/v1/tools/echo")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(resp, 400, "invalid_json").await;
        assert!(!problem["detail"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn ten_thousand_levels_of_nesting_are_refused_cleanly() {
    let s = TestServer::demo().await.unwrap();
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let resp = s
        .post("/api/v1/tools/echo")
        .body(deep.clone())
        .send()
        .await
        .unwrap();
    let problem = expect_problem(resp, 400, "invalid_json").await;
    assert!(problem["detail"].as_str().unwrap().contains("deeper"));
    // Unbalanced deep nesting too.
    let resp = s
        .post("/api/v1/tools/echo")
        .body("[".repeat(10_000))
        .send()
        .await
        .unwrap();
    expect_problem(resp, 400, "invalid_json").await;
    // The batch endpoint uses the same body rules.
    let resp = s
        .post("/api/v1/tools/execute")
        .body(deep)
        .send()
        .await
        .unwrap();
    expect_problem(resp, 400, "invalid_json").await;
}

#[tokio::test]
async fn a_ten_mib_body_is_413() {
    let s = TestServer::demo().await.unwrap();
    let big = format!("{{\"blob\": \"{}\"}}", "x".repeat(10 * 1024 * 1024));
    let resp = s
        .post("/api/v1/tools/echo")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let problem = expect_problem(resp, 413, "payload_too_large").await;
    assert!(problem["detail"].as_str().unwrap().contains("1048576"));
    let resp = s
        .post("/api/v1/tools/execute")
        .body(big)
        .send()
        .await
        .unwrap();
    expect_problem(resp, 413, "payload_too_large").await;
}

#[tokio::test]
async fn wrong_argument_types_are_422_with_pointers() {
    let s = TestServer::demo().await.unwrap();
    let resp = s
        .call("sleep", &json!({"ms": "soon"}))
        .send()
        .await
        .unwrap();
    let body = expect_problem(resp, 422, "invalid_arguments").await;
    assert_eq!(body["errors"][0]["pointer"], "/ms");
    assert_eq!(body["tool"], "sleep");
    let resp = s
        .call("sleep", &json!({"ms": 600_001}))
        .send()
        .await
        .unwrap();
    expect_problem(resp, 422, "invalid_arguments").await;
    let resp = s.call("sleep", &json!({})).send().await.unwrap();
    let body = expect_problem(resp, 422, "invalid_arguments").await;
    assert_eq!(body["errors"][0]["pointer"], "");
    let resp = s
        .call("run_database_query", &json!({"query": 5, "extra": true}))
        .send()
        .await
        .unwrap();
    let body = expect_problem(resp, 422, "invalid_arguments").await;
    assert!(body["errors"].as_array().unwrap().len() >= 2, "{body}");
}

#[tokio::test]
async fn unknown_tools_are_404() {
    let s = TestServer::demo().await.unwrap();
    let resp = s.call("no_such_tool", &json!({})).send().await.unwrap();
    expect_problem(resp, 404, "tool_not_found").await;
    let resp = s.get("/api/v1/tools/no_such_tool").send().await.unwrap();
    expect_problem(resp, 404, "tool_not_found").await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_too() {
    let s = TestServer::demo().await.unwrap();
    let resp = s.get("/api/v2/nothing").send().await.unwrap();
    expect_problem(resp, 404, "not_found").await;
    let resp = s
        .client
        .delete(s.url("/api/v1/tools/echo"))
        .send()
        .await
        .unwrap();
    expect_problem(resp, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn a_full_queue_is_429_with_retry_after() {
    let config = format!(
        "{}\n[[tools]]\nname = \"narrow\"\nkind = \"builtin\"\nbuiltin = \"sleep\"\nmax_concurrency = 1\nmax_queue = 0\n",
        toolgate_config::DEMO_CONFIG
    );
    let s = TestServer::spawn(&config).await.unwrap();
    let busy = s.call("narrow", &json!({"ms": 1000})).send();
    let busy = tokio::spawn(busy);
    // Wait until the first call holds the only slot.
    let start = std::time::Instant::now();
    while s.state.registry.get("narrow").unwrap().in_flight() == 0 {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let resp = s.call("narrow", &json!({"ms": 1})).send().await.unwrap();
    assert_eq!(resp.headers()["retry-after"], "1");
    expect_problem(resp, 429, "overloaded").await;
    assert_eq!(busy.await.unwrap().unwrap().status(), 200);
}

#[tokio::test]
async fn a_queued_call_waits_for_a_slot() {
    let config = format!(
        "{}\n[[tools]]\nname = \"narrow\"\nkind = \"builtin\"\nbuiltin = \"sleep\"\nmax_concurrency = 1\nmax_queue = 4\n",
        toolgate_config::DEMO_CONFIG
    );
    let s = TestServer::spawn(&config).await.unwrap();
    let calls = (0..3).map(|_| s.call("narrow", &json!({"ms": 100})).send());
    let results = futures::future::join_all(calls).await;
    for r in results {
        assert_eq!(r.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn an_invalid_timeout_header_is_422() {
    let s = TestServer::demo().await.unwrap();
    let resp = s
        .call("echo", &json!({}))
        .header("X-Request-Timeout-Ms", "soon")
        .send()
        .await
        .unwrap();
    expect_problem(resp, 422, "invalid_arguments").await;
}

#[tokio::test]
async fn the_trace_id_of_a_traceparent_is_used() {
    let s = TestServer::demo().await.unwrap();
    let id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let resp = s
        .call("fail", &json!({}))
        .header("traceparent", format!("00-{id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-trace-id"], id);
    let body = expect_problem(resp, 500, "tool_error").await;
    assert_eq!(body["trace_id"], id);
}

#[tokio::test]
async fn cors_follows_the_config() {
    let config = format!(
        "[server]\ncors_allowed_origins = [\"https://app.example\"]\n{}",
        toolgate_config::DEMO_CONFIG.replacen("[server]\nlisten = \"127.0.0.1:8080\"\n", "", 1)
    );
    let s = TestServer::spawn(&config).await.unwrap();
    let resp = s
        .client
        .request(reqwest::Method::OPTIONS, s.url("/api/v1/tools/echo"))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "x-tool-api-key,content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let resp = s
        .get("/api/v1/tools")
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let _ = read(resp).await;
}
