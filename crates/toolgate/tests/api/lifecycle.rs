//! Readiness and graceful drain.

use std::time::{Duration, Instant};

use serde_json::json;
use toolgate_config::DEMO_CONFIG;
use toolgate_test_support::TestServer;

use crate::read;

#[tokio::test]
async fn draining_lets_in_flight_calls_finish() {
    let s = TestServer::demo().await.unwrap();
    let call = tokio::spawn(s.call("sleep", &json!({"ms": 300})).send());
    wait_in_flight(&s, 1).await;
    let readiness = s.state.readiness.clone();
    let client = s.client.clone();
    let ready_url = s.url("/readyz");
    let stop = tokio::spawn(s.stop());
    // Readiness turns 503 as soon as the drain starts... (the listener is closed, so
    // the state is observed directly).
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(readiness.is_draining());
    assert!(
        client.get(ready_url).send().await.is_err(),
        "the listener is closed while draining"
    );
    // ...and the in-flight call still completes.
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
