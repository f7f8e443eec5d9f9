//! Per-key rate limits shared through Redis (127.0.0.1:6379) by two toolgate
//! processes, and the open/closed policies when Redis is down.

use serde_json::json;

use crate::cli::{CLI_KEY, serve, write_config};

/// Whether Redis answers. Under CI it must; elsewhere the test is skipped, loudly.
fn redis_available() -> bool {
    let up = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:6379".parse().unwrap(),
        std::time::Duration::from_secs(1),
    )
    .is_ok();
    if !up {
        assert!(
            std::env::var("CI").is_err(),
            "Redis must run on 127.0.0.1:6379 under CI"
        );
        eprintln!(
            "SKIPPED: Redis is not running on 127.0.0.1:6379; shared rate limits untested here"
        );
    }
    up
}

fn config(redis_url: &str, prefix: &str, on_error: &str) -> String {
    format!(
        "{}\n[rate_limits]\nstore = \"redis\"\nredis_url = \"{redis_url}\"\non_store_error = \"{on_error}\"\nkey_prefix = \"{prefix}\"\n{}",
        toolgate_config::DEMO_CONFIG,
        toolgate_test_support::key_entry("shared-bot", "tg_shared", &["*"]).replace(
            "scopes = [\"*\"]",
            "scopes = [\"*\"]\nrate_limit = { per_second = 0.01, burst = 4 }"
        )
    )
}

async fn call(addr: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/tools/echo"))
        .header("X-Tool-API-Key", "tg_shared")
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn two_processes_enforce_one_keys_limit_together() {
    if !redis_available() {
        return;
    }
    let prefix = format!("toolgate-test-{}", toolgate_server::trace::generate());
    let f = write_config(&config("redis://127.0.0.1:6379", &prefix, "closed"));
    let (mut a, addr_a, _la) = serve(f.path(), Some(CLI_KEY));
    let (mut b, addr_b, _lb) = serve(f.path(), Some(CLI_KEY));
    // Four tokens in all: two through each process.
    for addr in [&addr_a, &addr_b, &addr_a, &addr_b] {
        assert_eq!(call(addr).await, 200);
    }
    // The shared bucket is empty for both.
    assert_eq!(call(&addr_a).await, 429);
    assert_eq!(call(&addr_b).await, 429);
    for c in [&mut a, &mut b] {
        let _ = c.kill();
        let _ = c.wait();
    }
}

#[tokio::test]
async fn a_down_store_fails_open_or_closed_as_configured() {
    // Nothing listens on port 1: the store is down.
    let open = write_config(&config("redis://127.0.0.1:1", "x", "open"));
    let closed = write_config(&config("redis://127.0.0.1:1", "x", "closed"));
    let (mut a, addr_open, _la) = serve(open.path(), Some(CLI_KEY));
    let (mut b, addr_closed, _lb) = serve(closed.path(), Some(CLI_KEY));
    assert_eq!(call(&addr_open).await, 200);
    assert_eq!(call(&addr_closed).await, 503);
    // Readiness says so: not ready when the down store refuses calls, degraded when
    // it lets them through.
    let ready = |addr: String| async move {
        let resp = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap();
        (
            status,
            body["checks"]["rate_limit_store"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let (status, check) = ready(addr_closed.clone()).await;
    assert_eq!(status, 503, "{check}");
    assert!(check.starts_with("failing"), "{check}");
    let (status, check) = ready(addr_open.clone()).await;
    assert_eq!(status, 200, "{check}");
    assert!(check.starts_with("degraded"), "{check}");
    for c in [&mut a, &mut b] {
        let _ = c.kill();
        let _ = c.wait();
    }
}
