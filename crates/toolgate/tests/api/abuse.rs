//! The abuse suite: what one client or one low-privilege key can do to the server,
//! tried for real on 127.0.0.1, scaled down for CI (hundreds, not tens of thousands;
//! `bench/abuse` runs them full size). Each test asserts what a user cares about:
//! the server stays up, memory stays within a stated bound, the operator key is still
//! served, and nothing already accepted is lost.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use toolgate_config::KeyHash;
use toolgate_test_support::{OPERATOR_KEY, TestServer, key_entry};

use crate::expect_problem;
use crate::streaming::demo_with;

/// A low-privilege key: `echo`, `sleep` and the demo query only.
const LOW_KEY: &str = "low-privilege-key-0123456789abcdef";

/// The resident set of this process (the server runs in it), in MiB.
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

/// A config with `[server]` settings and a low-privilege key with `key_settings`.
fn config(server: &str, key_settings: &str) -> String {
    format!(
        "{}{}{key_settings}\n",
        demo_with(server),
        key_entry("low", LOW_KEY, &["echo", "sleep", "run_database_query"])
    )
}

/// The operator's `/healthz` and one call answer, each within `within`.
async fn operator_is_served(s: &TestServer, within: Duration) {
    let start = Instant::now();
    let resp = tokio::time::timeout(within, s.call("echo", &json!({"still": "here"})).send())
        .await
        .expect("the operator's call took too long")
        .unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let health = tokio::time::timeout(within, s.client.get(s.url("/healthz")).send())
        .await
        .expect("/healthz took too long")
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(start.elapsed() < within * 2);
}

/// Whether the server closed `tcp` (EOF or reset) within `within`.
async fn closed_within(tcp: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn slowloris_headers_are_cut_off_and_the_operator_is_still_served() {
    let s = TestServer::spawn(&demo_with("header_read_timeout_ms = 500"))
        .await
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..200 {
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        tcp.write_all(b"GET /api/v1/tools HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        held.push(tcp);
    }
    operator_is_served(&s, Duration::from_secs(2)).await;
    // Every one of them is closed by the header deadline, none answered.
    for tcp in &mut held {
        assert!(
            closed_within(tcp, Duration::from_secs(5)).await,
            "a slowloris connection outlived the header deadline"
        );
    }
    // An idle keep-alive connection is closed the same way.
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_trickled_body_gets_408_and_gives_its_slot_back() {
    let s = TestServer::spawn(&config("body_read_timeout_ms = 500", ""))
        .await
        .unwrap();
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/tools/echo HTTP/1.1\r\nHost: x\r\nX-Tool-API-Key: {LOW_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let start = Instant::now();
    let trickle = async {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if tcp.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(800), trickle).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    assert!(start.elapsed() < Duration::from_secs(5));
    // The edge's slots are free again.
    let deadline = Instant::now() + Duration::from_secs(2);
    while s.state.shedder.in_flight() > 0 {
        assert!(
            Instant::now() < deadline,
            "the shedding slot was never given back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let low = s.state.keys.find(&KeyHash::of(LOW_KEY)).unwrap();
    assert_eq!(low.quotas.requests.used(), 0);
}

#[tokio::test]
async fn past_the_connection_cap_clients_wait_and_the_admin_listener_answers() {
    let s = TestServer::spawn(&demo_with(
        "max_connections = 20\nadmin_listen = \"127.0.0.1:0\"",
    ))
    .await
    .unwrap();
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        // A complete request, so each connection is accepted and kept alive.
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let _ = tcp.read(&mut buf).await.unwrap();
        held.push(tcp);
    }
    // The 21st waits in the backlog: no answer while the cap is reached.
    let waiting = tokio::spawn(s.call("echo", &json!({"waited": true})).send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a connection past the cap was served"
    );
    // Probes on the admin listener answer all the while.
    let admin = s.admin_addr.unwrap();
    let health = tokio::time::timeout(
        Duration::from_secs(2),
        s.client.get(format!("http://{admin}/healthz")).send(),
    )
    .await
    .expect("the admin listener did not answer")
    .unwrap();
    assert_eq!(health.status(), 200);
    // Once connections close, the waiting one is served: nothing was lost.
    held.clear();
    let resp = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the waiting client was never served")
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_header_bomb_gets_431_and_memory_stays_flat() {
    let s = TestServer::spawn(&demo_with("")).await.unwrap();
    let before = rss_mib();
    for _ in 0..50 {
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        let mut req = String::from("GET /api/v1/tools HTTP/1.1\r\nHost: x\r\n");
        for i in 0..200 {
            req.push_str(&format!("X-Bomb-{i}: {}\r\n", "b".repeat(1000)));
        }
        req.push_str("\r\n");
        let _ = tcp.write_all(req.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    }
    let grown = rss_mib().saturating_sub(before);
    assert!(grown < 64, "RSS grew by {grown} MiB");
    operator_is_served(&s, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_huge_sqlite_result_is_cut_at_the_byte_cap() {
    let s = TestServer::spawn(&config("", "")).await.unwrap();
    let before = rss_mib();
    let query = "SELECT zeroblob(16000000) AS a, zeroblob(16000000) AS b, \
                 zeroblob(16000000) AS c, zeroblob(16000000) AS d";
    let mut calls = Vec::new();
    for _ in 0..4 {
        let req = s
            .client
            .post(s.url("/api/v1/tools/run_database_query"))
            .header("X-Tool-API-Key", LOW_KEY)
            .json(&json!({ "query": query }))
            .send();
        calls.push(tokio::spawn(req));
    }
    for c in calls {
        let resp = c.await.unwrap().unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        assert!(text.len() < 9 * 1024 * 1024, "{} bytes", text.len());
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["output"]["truncated_reason"], "max_result_bytes");
    }
    let grown = rss_mib().saturating_sub(before);
    // Before the cap, one such call took ~640 MB.
    assert!(grown < 200, "RSS grew by {grown} MiB");
    operator_is_served(&s, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_batch_amplification_body_gets_a_small_answer() {
    let s = TestServer::spawn(&demo_with("body_limit_bytes = 2097152"))
        .await
        .unwrap();
    let ones = vec!["1"; 500_000].join(",");
    let body = format!("{{\"calls\": [{ones}]}}");
    assert!(body.len() > 900_000);
    let resp = s
        .post("/api/v1/tools/execute")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(resp, 422, "invalid_arguments").await;
    assert!(problem.to_string().len() < 4096, "{problem}");
    // A batch of objects of the wrong shape: at most 20 errors.
    let calls: Vec<Value> = (0..100).map(|_| json!({"bogus": 1})).collect();
    let resp = s
        .post("/api/v1/tools/execute")
        .json(&json!({ "calls": calls }))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(resp, 422, "invalid_arguments").await;
    let errors = problem["errors"].as_array().unwrap();
    assert!(!errors.is_empty() && errors.len() <= 20, "{}", errors.len());
}

/// Open a socket with the low key and flood it with pings (125 bytes, the most a
/// control frame holds) for up to `secs` without ever reading; how many went out.
async fn ping_flood(s: &TestServer, secs: u64) -> (u64, impl Sized) {
    let mut req = format!("ws://{}/api/v1/ws", s.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("X-Tool-API-Key", HeaderValue::from_static(LOW_KEY));
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let (mut sink, stream) = ws.split();
    let payload = vec![7u8; 125];
    let mut sent = 0u64;
    let flood = async {
        for _ in 0..2_000_000 {
            if sink
                .send(Message::Ping(payload.clone().into()))
                .await
                .is_err()
            {
                break;
            }
            sent += 1;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(secs), flood).await;
    (sent, (sink, stream))
}

#[tokio::test]
async fn a_websocket_that_never_reads_keeps_memory_bounded() {
    // Default settings: the server answers every ping, the client reads nothing.
    let s = TestServer::spawn(&config("", "")).await.unwrap();
    let before = rss_mib();
    let (sent, _socket) = ping_flood(&s, 8).await;
    assert!(sent > 10_000, "only {sent} pings went out");
    let grown = rss_mib().saturating_sub(before);
    // The writer buffers at most 16 MiB for the socket.
    assert!(grown < 48, "RSS grew by {grown} MiB after {sent} pings");
    operator_is_served(&s, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_websocket_that_never_reads_is_closed() {
    let s = TestServer::spawn(&config("ws_ping_interval_ms = 200", ""))
        .await
        .unwrap();
    let low = s.state.keys.find(&KeyHash::of(LOW_KEY)).unwrap();
    let (_sent, _socket) = ping_flood(&s, 3).await;
    // The server's own ping cannot be written within two intervals: it gives up on
    // the socket, and its slot comes back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while low.quotas.websockets.used() > 0 {
        assert!(Instant::now() < deadline, "the socket was never closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    operator_is_served(&s, Duration::from_secs(2)).await;
}

/// A raw 2025-11-25 `initialize` with `key`.
async fn initialize(s: &TestServer, key: &str) -> reqwest::Response {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "flood", "version": "1"}}});
    s.client
        .post(s.url("/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("X-Tool-API-Key", key)
        .body(init.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_mcp_session_flood_by_one_key_stops_at_its_quota() {
    let s = TestServer::spawn(&config(
        "mcp_max_sessions = 40\noperator_reserve_percent = 10",
        "max_mcp_sessions = 25",
    ))
    .await
    .unwrap();
    let mut opened = 0;
    let mut refused = Vec::new();
    for _ in 0..60 {
        let resp = initialize(&s, LOW_KEY).await;
        match resp.status().as_u16() {
            200 => opened += 1,
            code => refused.push((code, resp.headers().contains_key("retry-after"))),
        }
    }
    assert_eq!(opened, 25, "the key's own quota");
    assert!(refused.iter().all(|r| *r == (429, true)), "{refused:?}");
    // Another key (the operator) still opens sessions.
    let resp = initialize(&s, OPERATOR_KEY).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn ordinary_keys_never_take_the_operators_share_of_sessions() {
    let s = TestServer::spawn(&config(
        "mcp_max_sessions = 20\noperator_reserve_percent = 10",
        "max_mcp_sessions = 1000",
    ))
    .await
    .unwrap();
    let mut opened = 0;
    for _ in 0..30 {
        if initialize(&s, LOW_KEY).await.status() == 200 {
            opened += 1;
        }
    }
    assert_eq!(opened, 18, "20 sessions less the 10 % reserve");
    let resp = initialize(&s, LOW_KEY).await;
    assert_eq!(resp.status(), 503);
    for _ in 0..2 {
        assert_eq!(initialize(&s, OPERATOR_KEY).await.status(), 200);
    }
}

#[tokio::test]
async fn one_key_past_its_in_flight_quota_gets_429_and_others_are_served() {
    let s = TestServer::spawn(&config("", "max_in_flight = 3"))
        .await
        .unwrap();
    let mut slow = Vec::new();
    for _ in 0..3 {
        let req = s
            .client
            .post(s.url("/api/v1/tools/sleep"))
            .header("X-Tool-API-Key", LOW_KEY)
            .json(&json!({"ms": 1500}))
            .send();
        slow.push(tokio::spawn(req));
    }
    let low = s.state.keys.find(&KeyHash::of(LOW_KEY)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while low.quotas.calls.used() < 3 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let resp = s
        .client
        .post(s.url("/api/v1/tools/echo"))
        .header("X-Tool-API-Key", LOW_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("retry-after"));
    let problem = expect_problem(resp, 429, "quota_exceeded").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("max_in_flight")
    );
    operator_is_served(&s, Duration::from_secs(2)).await;
    // Nothing accepted is lost: the three slow calls all finish.
    for c in slow {
        assert_eq!(c.await.unwrap().unwrap().status(), 200);
    }
}

#[tokio::test]
async fn a_key_trickling_bodies_cannot_lock_the_operator_out() {
    let s = TestServer::spawn(&config(
        "max_in_flight_requests = 20\noperator_reserve_percent = 10\nbody_read_timeout_ms = 10000",
        "max_in_flight = 1000",
    ))
    .await
    .unwrap();
    // The low key holds every slot it may: 18 bodies that never end.
    let mut held = Vec::new();
    for _ in 0..18 {
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        let head = format!(
            "POST /api/v1/tools/echo HTTP/1.1\r\nHost: x\r\nX-Tool-API-Key: {LOW_KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        held.push(tcp);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.state.shedder.in_flight() < 18 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let resp = s
        .client
        .post(s.url("/api/v1/tools/echo"))
        .header("X-Tool-API-Key", LOW_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_problem(resp, 503, "overloaded").await;
    operator_is_served(&s, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_revoked_key_loses_its_open_websocket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toolgate.toml");
    let with_key = config("", "");
    std::fs::write(&path, &with_key).unwrap();
    let s = TestServer::spawn_file(&path).await.unwrap();
    let mut req = format!("ws://{}/api/v1/ws", s.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("X-Tool-API-Key", HeaderValue::from_static(LOW_KEY));
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let call = json!({"type": "call", "id": "1", "tool": "sleep", "arguments": {"ms": 5000}});
    ws.send(Message::text(call.to_string())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The reload drops the key.
    std::fs::write(&path, demo_with("")).unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(frame)) => return frame.map(|f| (u16::from(f.code), f.reason)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the socket of a revoked key stayed open");
    let (code, reason) = closed.expect("no close frame");
    assert_eq!(code, 1008);
    assert!(reason.contains("revoked"), "{reason}");
    // REST refuses the key too.
    let resp = s
        .client
        .post(s.url("/api/v1/tools/echo"))
        .header("X-Tool-API-Key", LOW_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn a_revoked_key_loses_its_mcp_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toolgate.toml");
    std::fs::write(&path, config("", "")).unwrap();
    let s = TestServer::spawn_file(&path).await.unwrap();
    let resp = initialize(&s, LOW_KEY).await;
    assert_eq!(resp.status(), 200);
    let low = s.state.keys.find(&KeyHash::of(LOW_KEY)).unwrap();
    assert_eq!(low.quotas.mcp_sessions.used(), 1);
    std::fs::write(&path, demo_with("")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while low.quotas.mcp_sessions.used() > 0 {
        assert!(
            Instant::now() < deadline,
            "the revoked key's session stayed open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn failed_authentication_is_throttled_per_address() {
    let s = TestServer::spawn(&demo_with(
        "auth_failures_per_second = 1\nauth_failures_burst = 20",
    ))
    .await
    .unwrap();
    let mut codes = Vec::new();
    for i in 0..60 {
        let resp = s
            .client
            .post(s.url("/api/v1/tools/echo"))
            .header("X-Tool-API-Key", format!("wrong-key-{i}"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        codes.push((
            resp.status().as_u16(),
            resp.headers().contains_key("retry-after"),
        ));
    }
    let forbidden = codes.iter().filter(|c| c.0 == 403).count();
    let throttled = codes.iter().filter(|c| **c == (429, true)).count();
    assert!((20..=22).contains(&forbidden), "{codes:?}");
    assert_eq!(forbidden + throttled, 60, "{codes:?}");
    // The operator, from another address, is not held back.
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let resp = elsewhere
        .post(s.url("/api/v1/tools/echo"))
        .header("X-Tool-API-Key", OPERATOR_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let metrics = s
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("toolgate_auth_failures_total{reason=\"throttled\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_empty_key_header_falls_back_to_authorization() {
    let s = TestServer::spawn(&demo_with("")).await.unwrap();
    let resp = s
        .client
        .post(s.url("/api/v1/tools/echo"))
        .header("X-Tool-API-Key", "")
        .header("Authorization", format!("Bearer {OPERATOR_KEY}"))
        .json(&json!({"a": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn numeric_knobs_out_of_range_are_refused_with_their_line() {
    let text = demo_with("ws_ping_interval_ms = 9999999999999\nmax_header_bytes = 10");
    let problems = toolgate_config::LoadedConfig::from_str("abuse.toml", &text).unwrap_err();
    let all = problems.to_string();
    assert!(all.contains("abuse.toml:6"), "{all}");
    assert!(
        all.contains("ws_ping_interval_ms must be 0..=3600000"),
        "{all}"
    );
    assert!(all.contains("abuse.toml:7"), "{all}");
    assert!(all.contains("max_header_bytes"), "{all}");
    let tiny = format!(
        "{}\n[[keys]]\nname = \"t\"\nhash = \"{}\"\nscopes = [\"echo\"]\nrate_limit = {{ per_second = 1e-300 }}\n",
        demo_with(""),
        KeyHash::of("tiny-rate-key")
    );
    let problems = toolgate_config::LoadedConfig::from_str("t.toml", &tiny).unwrap_err();
    assert!(problems.to_string().contains("per_second"), "{problems}");
}
