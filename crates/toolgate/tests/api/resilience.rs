//! Retries, budgets, breakers, deadlines, shedding and rate limits, end to end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use toolgate_config::{DEMO_CONFIG, LoadedConfig};
use toolgate_registry::{Policies, Registry};
use toolgate_resilience::{BreakerPolicy, RetryPolicy};
use toolgate_test_support::{Dependency, TestServer, key_entry};

use crate::{expect_problem, read};

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        attempt_timeout: None,
        budget_ratio: 0.2,
        budget_min_per_second: 1.0,
    }
}

async fn server_with(dep: &Arc<Dependency>, policies: Policies) -> TestServer {
    let loaded = LoadedConfig::demo().unwrap();
    let mut registry = Registry::from_config(&loaded).unwrap();
    let tool: Arc<dyn toolgate_core::Tool> = Arc::clone(dep) as _;
    registry
        .register_with(Dependency::spec("dep"), tool, policies)
        .unwrap();
    TestServer::with_registry(&loaded, registry).await.unwrap()
}

#[tokio::test]
async fn retries_recover_from_transient_failures() {
    let dep = Dependency::new();
    let s = server_with(
        &dep,
        Policies {
            retry: Some(retry()),
            breaker: None,
            ..Policies::default()
        },
    )
    .await;
    dep.fail_next(2);
    let (status, _, body) = read(s.call("dep", &json!({})).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["attempt"], 3);
    assert_eq!(dep.attempts(), 3);
}

#[tokio::test]
async fn tools_without_a_retry_policy_are_tried_once() {
    let dep = Dependency::new();
    let s = server_with(&dep, Policies::default()).await;
    dep.fail_next(1);
    let resp = s.call("dep", &json!({})).send().await.unwrap();
    expect_problem(resp, 502, "upstream_error").await;
    assert_eq!(dep.attempts(), 1);
}

#[tokio::test]
async fn retry_policies_on_tools_that_are_not_idempotent_are_refused() {
    let mut registry = Registry::new();
    let mut spec = Dependency::spec("writer");
    spec.annotations.idempotent = false;
    let err = registry
        .register_with(
            spec,
            Dependency::new(),
            Policies {
                retry: Some(retry()),
                breaker: None,
                ..Policies::default()
            },
        )
        .unwrap_err();
    assert!(err.contains("not idempotent"), "{err}");
}

#[tokio::test]
async fn an_outage_keeps_attempts_near_calls_opens_the_breaker_and_recovers() {
    let dep = Dependency::new();
    let breaker = BreakerPolicy {
        window: 10,
        min_calls: 5,
        failure_rate: 0.5,
        slow_call_duration: Duration::from_secs(5),
        slow_call_rate: 1.0,
        open_duration: Duration::from_millis(400),
        half_open_probes: 2,
    };
    let s = server_with(
        &dep,
        Policies {
            retry: Some(retry()),
            breaker: Some(breaker),
            ..Policies::default()
        },
    )
    .await;
    dep.set_healthy(false);

    let calls = 200u64;
    let (mut upstream, mut open) = (0, 0);
    for _ in 0..calls {
        let resp = s.call("dep", &json!({})).send().await.unwrap();
        match resp.status().as_u16() {
            502 => upstream += 1,
            503 => {
                assert!(resp.headers().get("retry-after").is_some());
                let body = expect_problem(resp, 503, "circuit_open").await;
                assert_eq!(body["tool"], "dep");
                open += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let ratio = dep.attempts() as f64 / calls as f64;
    assert!(
        ratio <= 1.2,
        "attempts/calls = {ratio} ({} attempts)",
        dep.attempts()
    );
    assert!(
        open > 100,
        "the breaker opened and failed fast ({open} fast failures, {upstream} upstream errors)"
    );
    let (_, _, ready) = read(s.client.get(s.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(ready["checks"]["breaker:dep"], "open");
    assert_eq!(
        ready["status"], "ready",
        "an open breaker is not unreadiness"
    );

    // While open, nothing reaches the dependency.
    let before = dep.attempts();
    let resp = s.call("dep", &json!({})).send().await.unwrap();
    expect_problem(resp, 503, "circuit_open").await;
    assert_eq!(dep.attempts(), before);

    // The dependency recovers; after the open period the probes close the breaker.
    dep.set_healthy(true);
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the breaker never closed"
        );
        let resp = s.call("dep", &json!({})).send().await.unwrap();
        if resp.status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..5 {
        assert_eq!(
            s.call("dep", &json!({})).send().await.unwrap().status(),
            200
        );
    }
    let (_, _, ready) = read(s.client.get(s.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(ready["checks"]["breaker:dep"], "closed");
}

#[tokio::test]
async fn a_one_second_deadline_against_a_ten_second_dependency_answers_504_and_stops_it() {
    let dep = Dependency::new();
    dep.set_delay(Duration::from_secs(10));
    let s = server_with(&dep, Policies::default()).await;
    let start = Instant::now();
    let resp = s
        .call("dep", &json!({}))
        .header("X-Request-Timeout-Ms", "1000")
        .send()
        .await
        .unwrap();
    let elapsed = start.elapsed();
    expect_problem(resp, 504, "timeout").await;
    assert!(
        elapsed >= Duration::from_millis(1000) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert_eq!(s.state.registry.in_flight(), 0, "the work stopped");
}

#[tokio::test]
async fn an_attempt_timeout_is_retried_within_the_deadline() {
    let dep = Dependency::new();
    dep.set_delay(Duration::from_millis(300));
    let policy = RetryPolicy {
        attempt_timeout: Some(Duration::from_millis(100)),
        ..retry()
    };
    let s = server_with(
        &dep,
        Policies {
            retry: Some(policy),
            breaker: None,
            ..Policies::default()
        },
    )
    .await;
    let start = Instant::now();
    let resp = s.call("dep", &json!({})).send().await.unwrap();
    expect_problem(resp, 504, "timeout").await;
    assert_eq!(dep.attempts(), 3, "each timed-out attempt was retried");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn past_the_in_flight_limit_requests_are_shed_before_their_body_is_read() {
    let config = DEMO_CONFIG.replacen(
        "listen = \"127.0.0.1:8080\"",
        "listen = \"127.0.0.1:8080\"\nmax_in_flight_requests = 2",
        1,
    );
    let s = TestServer::spawn(&config).await.unwrap();
    let a = tokio::spawn(s.call("sleep", &json!({"ms": 500})).send());
    let b = tokio::spawn(s.call("sleep", &json!({"ms": 500})).send());
    let start = Instant::now();
    while s.state.shedder.in_flight() < 2 {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A body over the size limit: a 413 would mean it was read; 503 means it was not.
    let big = format!("{{\"blob\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let resp = s.post("/api/v1/tools/echo").body(big).send().await.unwrap();
    assert_eq!(resp.headers()["retry-after"], "1");
    expect_problem(resp, 503, "overloaded").await;
    let resp = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "probes are never shed");
    assert_eq!(a.await.unwrap().unwrap().status(), 200);
    assert_eq!(b.await.unwrap().unwrap().status(), 200);
    assert_eq!(
        s.call("echo", &json!({})).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after() {
    let entry = key_entry("slow-bot", "tg_slow", &["*"]).replace(
        "scopes = [\"*\"]",
        "scopes = [\"*\"]\nrate_limit = { per_second = 0.5, burst = 2 }",
    );
    let s = TestServer::spawn(&format!("{DEMO_CONFIG}{entry}"))
        .await
        .unwrap();
    let call = || {
        s.client
            .post(s.url("/api/v1/tools/echo"))
            .header("X-Tool-API-Key", "tg_slow")
            .json(&json!({}))
            .send()
    };
    assert_eq!(call().await.unwrap().status(), 200);
    assert_eq!(call().await.unwrap().status(), 200);
    let resp = call().await.unwrap();
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    expect_problem(resp, 429, "rate_limited").await;
    // Other keys are not affected.
    assert_eq!(
        s.call("echo", &json!({})).send().await.unwrap().status(),
        200
    );
}
