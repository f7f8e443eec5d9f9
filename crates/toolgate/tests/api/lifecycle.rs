//! Readiness and graceful drain.

use std::time::{Duration, Instant};

use serde_json::json;
use toolgate_config::DEMO_CONFIG;
use toolgate_test_support::TestServer;

use crate::read;

#[tokio::test]
async fn draining_refuses_new_calls_and_lets_in_flight_ones_finish() {
    let s = TestServer::demo().await.unwrap();
    let call = tokio::spawn(s.call("sleep", &json!({"ms": 500})).send());
    wait_in_flight(&s, 1).await;
    let new_call = s.call("echo", &json!({}));
    let ready = s.client.get(s.url("/readyz"));
    let stop = tokio::spawn(s.stop());
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The listener stays open while calls drain: probes and new callers get answers.
    let (status, _, body) = read(ready.send().await.unwrap()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["lifecycle"], "draining");
    let resp = new_call.send().await.unwrap();
    assert!(resp.headers().get("retry-after").is_some());
    crate::expect_problem(resp, 503, "overloaded").await;
    // The call in flight completes.
    let (status, _, body) = read(call.await.unwrap().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    stop.await.unwrap().unwrap();
}

#[tokio::test]
async fn calls_still_running_at_the_drain_timeout_are_cancelled() {
    let config = DEMO_CONFIG.replacen(
        "listen = \"127.0.0.1:8080\"",
        "listen = \"127.0.0.1:8080\"\ndrain_timeout_ms = 100",
        1,
    );
    let s = TestServer::spawn(&config).await.unwrap();
    let call = tokio::spawn(s.call("sleep", &json!({"ms": 10_000})).send());
    wait_in_flight(&s, 1).await;
    let start = Instant::now();
    s.stop().await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(3));
    let resp = call.await.unwrap().unwrap();
    let (status, _, body) = read(resp).await;
    assert_eq!(status, 499, "{body}");
    assert_eq!(body["code"], "cancelled");
}

async fn wait_in_flight(s: &TestServer, n: usize) {
    let start = Instant::now();
    while s.state.registry.in_flight() < n {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the call never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
