//! `/metrics`: parsed as Prometheus text; each family moves as a scripted sequence
//! of calls says it should.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_parse::{Sample, Scrape, Value as PValue};
use serde_json::json;
use toolgate_config::{DEMO_CONFIG, LoadedConfig};
use toolgate_registry::{Policies, Registry};
use toolgate_resilience::{BreakerPolicy, RetryPolicy};
use toolgate_test_support::{Dependency, TestServer, key_entry};

async fn scrape(s: &TestServer) -> Vec<Sample> {
    let resp = s.client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    Scrape::parse(lines).unwrap().samples
}

/// The value of `name` with all of `labels`, summed over other labels; histograms
/// give their count.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            PValue::Counter(v) | PValue::Gauge(v) | PValue::Untyped(v) => *v,
            PValue::Histogram(h) => h.iter().map(|b| b.count).fold(0.0, f64::max),
            PValue::Summary(_) => 0.0,
        })
        .sum()
}

async fn server() -> (TestServer, Arc<Dependency>) {
    let config = format!(
        "{DEMO_CONFIG}{}\n[[tools]]\nname = \"m_narrow\"\nkind = \"builtin\"\nbuiltin = \"sleep\"\nmax_concurrency = 1\nmax_queue = 0\n",
        key_entry("m-limited", "tg_m_limited", &["*"]).replace(
            "scopes = [\"*\"]",
            "scopes = [\"*\"]\nrate_limit = { per_second = 0.01, burst = 1 }"
        )
    );
    let loaded = LoadedConfig::from_str("<metrics>", &config).unwrap();
    let mut registry = Registry::from_config(&loaded).unwrap();
    let dep = Dependency::new();
    let policies = Policies {
        retry: Some(RetryPolicy {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            ..RetryPolicy::default()
        }),
        breaker: Some(BreakerPolicy::default()),
        ..Policies::default()
    };
    registry
        .register_with(Dependency::spec("m_dep"), Arc::clone(&dep) as _, policies)
        .unwrap();
    (
        TestServer::with_registry(&loaded, registry).await.unwrap(),
        dep,
    )
}

#[tokio::test]
async fn each_family_moves_with_the_calls() {
    let (s, dep) = server().await;
    let before = scrape(&s).await;
    let calls = |tool: &str, outcome: &str| {
        value(
            &before,
            "toolgate_tool_calls_total",
            &[("tool", tool), ("transport", "rest"), ("outcome", outcome)],
        )
    };
    let echo_before = calls("echo", "ok");
    let fail_before = calls("fail", "tool_error");

    for _ in 0..3 {
        assert_eq!(
            s.call("echo", &json!({})).send().await.unwrap().status(),
            200
        );
    }
    assert_eq!(
        s.call("fail", &json!({})).send().await.unwrap().status(),
        500
    );
    dep.fail_next(2);
    assert_eq!(
        s.call("m_dep", &json!({})).send().await.unwrap().status(),
        200
    );
    let limited = |k: &'static str| {
        s.client
            .post(s.url("/api/v1/tools/echo"))
            .header("X-Tool-API-Key", k)
            .json(&json!({}))
            .send()
    };
    assert_eq!(limited("tg_m_limited").await.unwrap().status(), 200);
    assert_eq!(limited("tg_m_limited").await.unwrap().status(), 429);

    // A call in flight shows in the gauge while it runs.
    let running = tokio::spawn(s.call("m_narrow", &json!({"ms": 400})).send());
    let start = Instant::now();
    loop {
        let now = scrape(&s).await;
        if value(
            &now,
            "toolgate_tool_calls_in_flight",
            &[("tool", "m_narrow")],
        ) == 1.0
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the in-flight gauge never showed the call"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        s.call("m_narrow", &json!({"ms": 1}))
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(running.await.unwrap().unwrap().status(), 200);

    let after = scrape(&s).await;
    let calls_after = |tool: &str, outcome: &str| {
        value(
            &after,
            "toolgate_tool_calls_total",
            &[("tool", tool), ("transport", "rest"), ("outcome", outcome)],
        )
    };
    assert_eq!(
        calls_after("echo", "ok") - echo_before,
        4.0,
        "3 operator calls and 1 limited-key call"
    );
    assert_eq!(calls_after("fail", "tool_error") - fail_before, 1.0);
    assert_eq!(calls_after("echo", "rate_limited"), 1.0);
    assert_eq!(calls_after("m_narrow", "overloaded"), 1.0);
    assert_eq!(
        value(
            &after,
            "toolgate_rate_limited_calls_total",
            &[("key", "m-limited")]
        ),
        1.0
    );
    assert_eq!(
        value(&after, "toolgate_tool_retries_total", &[("tool", "m_dep")]),
        2.0
    );
    assert_eq!(
        value(
            &after,
            "toolgate_circuit_breaker_state",
            &[("tool", "m_dep")]
        ),
        0.0
    );
    assert!(
        value(
            &after,
            "toolgate_tool_call_duration_seconds_count",
            &[("tool", "echo")]
        ) >= 4.0
            || value(
                &after,
                "toolgate_tool_call_duration_seconds",
                &[("tool", "echo")]
            ) >= 4.0
    );
    let http_200 = value(
        &after,
        "toolgate_http_requests_total",
        &[("route", "/api/v1/tools/:name"), ("status", "200")],
    );
    let routes: Vec<_> = after
        .iter()
        .filter(|s| s.metric == "toolgate_http_requests_total")
        .map(|s| format!("{:?}", s.labels))
        .collect();
    assert!(http_200 >= 6.0, "{http_200} {routes:?}");
    assert!(
        value(
            &after,
            "toolgate_http_requests_total",
            &[("route", "/api/v1/tools/:name"), ("status", "429")]
        ) >= 2.0
    );
    assert_eq!(
        value(
            &after,
            "toolgate_tool_calls_in_flight",
            &[("tool", "m_narrow")]
        ),
        0.0
    );
    assert_eq!(
        value(&after, "toolgate_tool_queue_depth", &[("tool", "m_narrow")]),
        0.0
    );
}

#[tokio::test]
async fn shedding_and_reloads_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(&path, "[server]\nmax_in_flight_requests = 1\n\n[[tools]]\nname = \"sleep\"\nkind = \"builtin\"\nbuiltin = \"sleep\"\n").unwrap();
    let s = TestServer::spawn_file(&path).await.unwrap();
    let busy = tokio::spawn(s.call("sleep", &json!({"ms": 400})).send());
    let start = Instant::now();
    while s.state.shedder.in_flight() < 1 {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        s.call("sleep", &json!({"ms": 1}))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    assert_eq!(busy.await.unwrap().unwrap().status(), 200);
    let m = scrape(&s).await;
    assert_eq!(
        value(
            &m,
            "toolgate_shed_requests_total",
            &[("reason", "in_flight_limit")]
        ),
        1.0
    );

    std::fs::write(&path, "[server]\nmax_in_flight_requests = 1\n\n[[tools]]\nname = \"nap\"\nkind = \"builtin\"\nbuiltin = \"sleep\"\n").unwrap();
    let start = Instant::now();
    loop {
        let m = scrape(&s).await;
        if value(&m, "toolgate_config_reloads_total", &[("result", "ok")]) >= 1.0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the reload was never counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// With `admin_listen`, metrics and probes move to the admin listener: the main
/// listener no longer serves `/metrics`, and calls made on it are counted there.
#[tokio::test]
async fn admin_listener_serves_metrics_and_probes_apart() {
    let config = DEMO_CONFIG.replacen(
        "[server]\n",
        "[server]\nadmin_listen = \"127.0.0.1:0\"\n",
        1,
    );
    assert_ne!(config, DEMO_CONFIG, "the demo config has a [server] table");
    let s = TestServer::spawn(&config).await.unwrap();
    let admin = s.admin_addr.expect("an admin listener");
    assert_ne!(admin, s.addr);

    let main_metrics = s.client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(main_metrics.status(), 404);
    assert_eq!(
        main_metrics.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(
        s.call("echo", &json!({"x": 1}))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for probe in ["/healthz", "/readyz"] {
        let r = s
            .client
            .get(format!("http://{admin}{probe}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{probe}");
    }
    // Tools are not reachable on the admin listener.
    let r = s
        .client
        .post(format!("http://{admin}/api/v1/tools/echo"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let text = s
        .client
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m = Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap()
        .samples;
    assert!(
        value(
            &m,
            "toolgate_tool_calls_total",
            &[("tool", "echo"), ("outcome", "ok")]
        ) >= 1.0
    );
}

#[tokio::test]
async fn bounded_families_exist_from_the_start() {
    let key = "zero-metrics-key-0123456789abcdef";
    let config = format!(
        "{DEMO_CONFIG}{}\n[[tools]]\nname = \"z_retried\"\nkind = \"builtin\"\nbuiltin = \"echo\"\nretry = {{ max_attempts = 2 }}\n",
        key_entry("zero_metrics_key", key, &["echo"])
    );
    let s = TestServer::spawn(&config).await.unwrap();
    let samples = scrape(&s).await;
    let present = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .any(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
    };
    for (name, labels) in [
        (
            "toolgate_shed_requests_total",
            vec![("reason", "in_flight_limit")],
        ),
        ("toolgate_shed_requests_total", vec![("reason", "draining")]),
        (
            "toolgate_auth_failures_total",
            vec![("reason", "throttled")],
        ),
        ("toolgate_config_reloads_total", vec![("result", "refused")]),
        ("toolgate_body_timeouts_total", vec![]),
        ("toolgate_accept_errors_total", vec![]),
        ("toolgate_connections_open", vec![]),
        (
            "toolgate_rate_limited_calls_total",
            vec![("key", "zero_metrics_key")],
        ),
        (
            "toolgate_quota_exceeded_total",
            vec![("key", "zero_metrics_key"), ("quota", "mcp_sessions")],
        ),
        ("toolgate_tool_retries_total", vec![("tool", "z_retried")]),
    ] {
        assert!(
            present(name, &labels),
            "{name} {labels:?} is absent at start"
        );
    }
}
