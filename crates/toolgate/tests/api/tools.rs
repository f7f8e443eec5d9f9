//! Every demo tool over HTTP, deadlines, and cancellation when the client goes away.

use std::time::{Duration, Instant};

use serde_json::json;
use toolgate_test_support::TestServer;

use crate::{expect_problem, read};

#[tokio::test]
async fn echo_returns_its_arguments() {
    let s = TestServer::demo().await.unwrap();
    let args = json!({"a": 1, "nested": {"list": [1, "two", null]}});
    let (status, _, body) = read(s.call("echo", &args).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["tool"], "echo");
    assert_eq!(body["output"], args);
    assert!(body["duration_ms"].is_u64());
}

#[tokio::test]
async fn sleep_sleeps() {
    let s = TestServer::demo().await.unwrap();
    let start = Instant::now();
    let (status, _, body) = read(s.call("sleep", &json!({"ms": 150})).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["output"], json!({"slept_ms": 150}));
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert!(body["duration_ms"].as_u64().unwrap() >= 150);
}

#[tokio::test]
async fn fail_fails_as_a_tool_error() {
    let s = TestServer::demo().await.unwrap();
    let resp = s
        .call("fail", &json!({"message": "boom"}))
        .send()
        .await
        .unwrap();
    let body = expect_problem(resp, 500, "tool_error").await;
    assert_eq!(body["detail"], "boom");
    assert_eq!(body["tool"], "fail");
}

#[tokio::test]
async fn run_database_query_reads_the_demo_database() {
    let s = TestServer::demo().await.unwrap();
    let q =
        json!({"query": "SELECT name, type FROM sqlite_master WHERE type = 'table' ORDER BY name"});
    let (status, _, body) = read(s.call("run_database_query", &q).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let tables: Vec<&str> = body["output"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    for t in ["customers", "orders", "order_items", "products"] {
        assert!(tables.contains(&t), "{tables:?}");
    }
    let count = json!({"query": "SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM orders) + (SELECT count(*) FROM order_items) + (SELECT count(*) FROM products)"});
    let (_, _, body) = read(s.call("run_database_query", &count).send().await.unwrap()).await;
    assert!(
        body["output"]["rows"][0][0].as_i64().unwrap() >= 1000,
        "{body}"
    );
}

#[tokio::test]
async fn run_database_query_caps_rows() {
    let s = TestServer::demo().await.unwrap();
    let q = json!({"query": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) SELECT i FROM n"});
    let (status, _, body) = read(s.call("run_database_query", &q).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["truncated"], true);
    assert_eq!(body["output"]["rows"].as_array().unwrap().len(), 500);
}

#[tokio::test]
async fn writes_through_run_database_query_are_refused_and_change_nothing() {
    let s = TestServer::demo().await.unwrap();
    let count = || {
        s.call(
            "run_database_query",
            &json!({"query": "SELECT count(*) FROM customers"}),
        )
        .send()
    };
    let (_, _, before) = read(count().await.unwrap()).await;
    for query in [
        "DELETE FROM customers",
        "UPDATE customers SET name = 'x'",
        "INSERT INTO customers (name) VALUES ('x')",
        "DROP TABLE customers",
        "PRAGMA query_only = 0",
        "ATTACH DATABASE '/tmp/evil.db' AS evil",
        "SELECT 1; DELETE FROM customers",
    ] {
        let resp = s
            .call("run_database_query", &json!({"query": query}))
            .send()
            .await
            .unwrap();
        let (status, ctype, body) = read(resp).await;
        assert_eq!(ctype, "application/problem+json", "{query}: {body}");
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["code"], "invalid_arguments");
    }
    let (_, _, after) = read(count().await.unwrap()).await;
    assert_eq!(before["output"], after["output"]);
    assert!(before["output"]["rows"][0][0].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn a_runaway_query_is_stopped_by_its_deadline() {
    let s = TestServer::demo().await.unwrap();
    let q = json!({"query": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"});
    let start = Instant::now();
    let resp = s
        .call("run_database_query", &q)
        .header("X-Request-Timeout-Ms", "300")
        .send()
        .await
        .unwrap();
    expect_problem(resp, 504, "timeout").await;
    assert!(start.elapsed() < Duration::from_secs(3));
    // The pool is still usable afterwards.
    let ok = s
        .call("run_database_query", &json!({"query": "SELECT 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn declared_sql_tools_bind_their_parameters() {
    let s = TestServer::demo().await.unwrap();
    let (status, _, body) = read(
        s.call("top_customers", &json!({"country": "DE", "limit": 2}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rows = body["output"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r[2] == "DE"));
    // An injection attempt is just a value that matches nothing.
    let (status, _, body) = read(
        s.call("top_customers", &json!({"country": "' OR 1=1 --"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422, "max_length 2 rejects it: {body}");
    let (status, _, body) = read(
        s.call("top_customers", &json!({"country": "'1"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["output"]["rows"], json!([]));
}

#[tokio::test]
async fn run_system_audit_reports_real_host_facts() {
    let s = TestServer::demo().await.unwrap();
    let (status, _, body) = read(
        s.call("run_system_audit", &json!({"target": "web-1"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let out = &body["output"];
    assert_eq!(out["target"], "web-1");
    assert!(matches!(out["status"].as_str(), Some("passed" | "warning")));
    let uptime = std::fs::read_to_string("/proc/uptime").unwrap();
    let host_uptime: f64 = uptime.split_whitespace().next().unwrap().parse().unwrap();
    let reported = out["uptime_seconds"].as_f64().unwrap();
    assert!(
        (reported - host_uptime).abs() < 5.0,
        "{reported} vs {host_uptime}"
    );
    assert!(out["memory"]["total_bytes"].as_u64().unwrap() > 0);
    assert!(out["os"]["kernel"].is_string());
}

#[tokio::test]
async fn the_request_timeout_header_lowers_the_deadline() {
    let s = TestServer::demo().await.unwrap();
    let start = Instant::now();
    let resp = s
        .call("sleep", &json!({"ms": 10_000}))
        .header("X-Request-Timeout-Ms", "100")
        .send()
        .await
        .unwrap();
    let body = expect_problem(resp, 504, "timeout").await;
    assert_eq!(body["tool"], "sleep");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(s.state.registry.in_flight(), 0);
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_its_call() {
    let s = TestServer::demo().await.unwrap();
    let req = s.call("sleep", &json!({"ms": 10_000})).send();
    // Give up on the request after 200 ms: the connection closes mid-call.
    let gave_up = tokio::time::timeout(Duration::from_millis(200), req).await;
    assert!(gave_up.is_err());
    let start = Instant::now();
    while s.state.registry.in_flight() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the call kept running"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn native_rust_tools_are_served_like_configured_ones() {
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Add {
        a: i64,
        b: i64,
    }
    let loaded = toolgate_config::LoadedConfig::demo().unwrap();
    let mut registry = toolgate_registry::Registry::from_config(&loaded).unwrap();
    toolgate::native::tool("add", "Add two integers.", |x: Add, _ctx| async move {
        Ok(json!({"sum": x.a + x.b}))
    })
    .read_only(true)
    .register(&mut registry)
    .unwrap();
    let s = TestServer::with_registry(&loaded, registry).await.unwrap();
    let (status, _, body) = read(
        s.call("add", &json!({"a": 2, "b": 40}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["output"]["sum"], 42);
    let resp = s
        .call("add", &json!({"a": "two", "b": 40}))
        .send()
        .await
        .unwrap();
    let body = expect_problem(resp, 422, "invalid_arguments").await;
    assert_eq!(body["errors"][0]["pointer"], "/a");
}

#[tokio::test]
async fn health_and_readiness() {
    let s = TestServer::demo().await.unwrap();
    let (status, _, body) = read(s.client.get(s.url("/healthz")).send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, _, body) = read(s.client.get(s.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["source:demo"], "ok");
}
