//! `POST /api/v1/tools/execute`: task-group semantics.

use std::time::{Duration, Instant};

use serde_json::json;
use toolgate_config::DEMO_CONFIG;
use toolgate_test_support::TestServer;

use crate::{expect_problem, read};

/// The demo plus a sleep whose deadline is 50 ms: calling it with a longer sleep
/// fails with `timeout` at about 50 ms.
async fn server() -> TestServer {
    let config = format!(
        "{DEMO_CONFIG}\n[[tools]]\nname = \"sleep_50ms_limit\"\nkind = \"builtin\"\nbuiltin = \"sleep\"\ntimeout_ms = 50\n"
    );
    TestServer::spawn(&config).await.unwrap()
}

#[tokio::test]
async fn fail_fast_cancels_a_ten_second_sibling_at_once() {
    let s = server().await;
    let start = Instant::now();
    let resp = s
        .post("/api/v1/tools/execute")
        .json(&json!({"calls": [
            {"id": "slow", "tool": "sleep", "arguments": {"ms": 10_000}},
            {"id": "bad", "tool": "sleep_50ms_limit", "arguments": {"ms": 5_000}}
        ]}))
        .send()
        .await
        .unwrap();
    let elapsed = start.elapsed();
    let (status, ctype, body) = read(resp).await;
    assert!(elapsed < Duration::from_millis(900), "took {elapsed:?}");
    assert_eq!(
        status, 504,
        "the response carries the failure's status: {body}"
    );
    assert_eq!(ctype, "application/json");
    assert_eq!(body["success"], false);
    assert_eq!(body["error"]["code"], "timeout");
    let slow = &body["data"][0];
    assert_eq!(slow["id"], "slow");
    assert_eq!(slow["ok"], false);
    assert_eq!(slow["error"]["code"], "cancelled");
    assert_eq!(slow["error"]["status"], 499);
    assert!(slow["duration_ms"].as_u64().unwrap() < 900);
    assert_eq!(body["data"][1]["id"], "bad");
    assert_eq!(body["data"][1]["error"]["code"], "timeout");
    // The sibling's work really stopped: nothing is left running.
    assert_eq!(s.state.registry.in_flight(), 0);
}

#[tokio::test]
async fn fail_fast_with_a_tool_error() {
    let s = server().await;
    let resp = s
        .post("/api/v1/tools/execute")
        .json(&json!({"mode": "fail_fast", "calls": [
            {"tool": "sleep", "arguments": {"ms": 10_000}},
            {"tool": "fail", "arguments": {"message": "no"}},
            {"tool": "echo", "arguments": {"x": 1}}
        ]}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(resp).await;
    assert_eq!(status, 500);
    assert_eq!(body["data"][0]["error"]["code"], "cancelled");
    assert_eq!(body["data"][1]["error"]["detail"], "no");
    // echo finished before the failure or was cancelled by it; either way it is reported.
    assert!(body["data"][2]["ok"].is_boolean());
}

#[tokio::test]
async fn all_settled_collects_mixed_outcomes_in_call_order() {
    let s = server().await;
    let resp = s
        .post("/api/v1/tools/execute")
        .json(&json!({"mode": "all_settled", "calls": [
            {"id": "a", "tool": "sleep", "arguments": {"ms": 200}},
            {"id": "b", "tool": "fail", "arguments": {}},
            {"id": "c", "tool": "echo", "arguments": {"v": 3}},
            {"id": "d", "tool": "nope", "arguments": {}},
            {"id": "e", "tool": "sleep", "arguments": {"ms": "x"}}
        ]}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(resp).await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], false);
    let data = body["data"].as_array().unwrap();
    let ids: Vec<&str> = data.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "b", "c", "d", "e"]);
    assert_eq!(data[0]["output"], json!({"slept_ms": 200}));
    assert_eq!(data[1]["error"]["code"], "tool_error");
    assert_eq!(data[2]["output"], json!({"v": 3}));
    assert_eq!(data[3]["error"]["code"], "tool_not_found");
    assert_eq!(data[4]["error"]["code"], "invalid_arguments");
    assert_eq!(data[4]["error"]["errors"][0]["pointer"], "/ms");
}

#[tokio::test]
async fn all_ok_is_success() {
    let s = server().await;
    let resp = s
        .post("/api/v1/tools/execute")
        .json(&json!({"calls": [
            {"tool": "echo", "arguments": {"n": 1}},
            {"tool": "sleep", "arguments": {"ms": 10}}
        ]}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(resp).await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], true);
    assert_eq!(body["data"][0]["id"], "0");
    assert_eq!(body["data"][1]["id"], "1");
}

#[tokio::test]
async fn the_batch_timeout_bounds_every_call() {
    let s = server().await;
    let start = Instant::now();
    let resp = s
        .post("/api/v1/tools/execute")
        .json(&json!({"mode": "all_settled", "timeout_ms": 100, "calls": [
            {"tool": "sleep", "arguments": {"ms": 5_000}},
            {"tool": "sleep", "arguments": {"ms": 10}}
        ]}))
        .send()
        .await
        .unwrap();
    let (_, _, body) = read(resp).await;
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(body["data"][0]["error"]["code"], "timeout");
    assert_eq!(body["data"][1]["ok"], true);
}

#[tokio::test]
async fn malformed_batches_are_422_with_pointers() {
    let s = server().await;
    let cases = [
        (json!({}), "/calls"),
        (json!({"calls": []}), "/calls"),
        (json!({"calls": [{"arguments": {}}]}), "/calls/0/tool"),
        (
            json!({"calls": [{"tool": "echo", "arguments": [1]}]}),
            "/calls/0/arguments",
        ),
        (
            json!({"calls": [{"tool": "echo"}], "mode": "yolo"}),
            "/mode",
        ),
        (
            json!({"calls": [{"tool": "echo"}], "timeout_ms": -1}),
            "/timeout_ms",
        ),
        (
            json!({"calls": [{"id": "x", "tool": "echo"}, {"id": "x", "tool": "echo"}]}),
            "/calls/1/id",
        ),
        (json!({"calls": [{"tool": "echo"}], "extra": 1}), "/extra"),
    ];
    for (body, pointer) in cases {
        let resp = s
            .post("/api/v1/tools/execute")
            .json(&body)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(resp, 422, "invalid_arguments").await;
        let pointers: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["pointer"].as_str().unwrap())
            .collect();
        assert!(pointers.contains(&pointer), "{body} → {pointers:?}");
    }
    let too_many: Vec<_> = (0..65).map(|_| json!({"tool": "echo"})).collect();
    let resp = s
        .post("/api/v1/tools/execute")
        .json(&json!({"calls": too_many}))
        .send()
        .await
        .unwrap();
    expect_problem(resp, 422, "invalid_arguments").await;
}
