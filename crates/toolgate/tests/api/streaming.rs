//! Streaming transports over real connections: Server-Sent Events and WebSocket.

mod sse;
mod ws;

use std::time::{Duration, Instant};

use toolgate_test_support::TestServer;

/// Wait until the registry has no call in flight; returns how long that took.
/// Panics after `bound`, which is generous: the assertion is about the work
/// stopping, and the caller prints the measured time.
pub async fn wait_idle(s: &TestServer, bound: Duration) -> Duration {
    let start = Instant::now();
    while s.state.registry.in_flight() > 0 {
        assert!(
            start.elapsed() < bound,
            "{} call(s) still in flight after {bound:?}",
            s.state.registry.in_flight()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

/// Wait until at least `n` calls are in flight.
pub async fn wait_in_flight(s: &TestServer, n: usize) {
    let start = Instant::now();
    while s.state.registry.in_flight() < n {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the call never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The demo configuration with extra `[server]` settings.
pub fn demo_with(server_settings: &str) -> String {
    toolgate_config::DEMO_CONFIG.replacen(
        "listen = \"127.0.0.1:8080\"",
        &format!("listen = \"127.0.0.1:8080\"\n{server_settings}"),
        1,
    )
}
