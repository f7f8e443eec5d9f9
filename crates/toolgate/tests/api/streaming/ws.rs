//! `GET /api/v1/ws`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use toolgate_test_support::{OPERATOR_KEY, TestServer};

use super::{demo_with, wait_idle, wait_in_flight};
use crate::expect_problem;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

type Handshake = tungstenite::handshake::client::Response;

/// Open a socket with these extra request headers.
async fn try_connect(
    s: &TestServer,
    headers: &[(&'static str, &str)],
) -> Result<(Ws, Handshake), tungstenite::Error> {
    let mut req = format!("ws://{}/api/v1/ws", s.addr)
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        req.headers_mut()
            .insert(*name, HeaderValue::from_str(value).unwrap());
    }
    tokio_tungstenite::connect_async(req).await
}

/// Open a socket with the operator key in the header.
async fn connect(s: &TestServer) -> Ws {
    try_connect(s, &[("X-Tool-API-Key", OPERATOR_KEY)])
        .await
        .unwrap()
        .0
}

async fn send(ws: &mut Ws, msg: &Value) {
    ws.send(Message::text(msg.to_string())).await.unwrap();
}

async fn call(ws: &mut Ws, id: &str, tool: &str, arguments: &Value) {
    let msg = json!({"type": "call", "id": id, "tool": tool, "arguments": arguments});
    send(ws, &msg).await;
}

/// The next server message (pings and pongs skipped); panics on close or after 10 s.
async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no message within 10 s")
            .expect("the socket ended")
            .unwrap();
        match msg {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Messages up to and including the next `result`.
async fn until_result(ws: &mut Ws) -> (Vec<Value>, Value) {
    let mut before = Vec::new();
    loop {
        let msg = recv(ws).await;
        if msg["type"] == "result" {
            return (before, msg);
        }
        before.push(msg);
    }
}

/// The close frame's code, skipping any messages before it.
async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no close within 10 s")
            .expect("the socket ended without a close frame")
            .unwrap();
        if let Message::Close(frame) = msg {
            return frame.map_or(1005, |f| u16::from(f.code));
        }
    }
}

#[tokio::test]
async fn a_hundred_interleaved_calls_are_all_answered_by_id() {
    let s = TestServer::demo().await.unwrap();
    let mut ws = connect(&s).await;
    for i in 0..100u64 {
        let id = format!("c{i}");
        if i % 2 == 0 {
            call(&mut ws, &id, "sleep", &json!({"ms": (i % 7) * 15})).await;
        } else {
            call(&mut ws, &id, "echo", &json!({"i": i})).await;
        }
    }
    let mut results = HashMap::new();
    while results.len() < 100 {
        let msg = recv(&mut ws).await;
        match msg["type"].as_str() {
            Some("result") => {
                let id = msg["id"].as_str().unwrap().to_owned();
                assert!(results.insert(id, msg).is_none(), "one result per id");
            }
            Some("progress") => assert_eq!(msg["tool"], "sleep"),
            _ => panic!("unexpected {msg}"),
        }
    }
    for i in 0..100u64 {
        let r = &results[&format!("c{i}")];
        assert_eq!(r["ok"], true, "{r}");
        let expected = if i % 2 == 0 {
            json!({"slept_ms": (i % 7) * 15})
        } else {
            json!({"i": i})
        };
        assert_eq!(r["output"], expected);
        assert!(r["duration_ms"].is_u64());
    }
}

#[tokio::test]
async fn cancel_stops_a_sleep() {
    let s = TestServer::demo().await.unwrap();
    let mut ws = connect(&s).await;
    call(&mut ws, "nap", "sleep", &json!({"ms": 60_000})).await;
    let progress = recv(&mut ws).await;
    assert_eq!(progress["type"], "progress", "{progress}");
    assert_eq!(
        (&progress["id"], &progress["total"]),
        (&json!("nap"), &json!(60_000.0))
    );
    let start = Instant::now();
    send(&mut ws, &json!({"type": "cancel", "id": "nap"})).await;
    let (_, result) = until_result(&mut ws).await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(result["id"], "nap");
    assert_eq!(result["ok"], false);
    assert_eq!(result["error"]["code"], "cancelled");
    assert_eq!(result["error"]["status"], 499);
    wait_idle(&s, Duration::from_secs(2)).await;
    // A cancel for something no longer in flight is ignored; the socket goes on.
    send(&mut ws, &json!({"type": "cancel", "id": "nap"})).await;
    call(&mut ws, "after", "echo", &json!({})).await;
    assert_eq!(until_result(&mut ws).await.1["id"], "after");
}

#[tokio::test]
async fn a_malformed_message_gets_an_error_and_the_socket_stays_usable() {
    let s = TestServer::demo().await.unwrap();
    let mut ws = connect(&s).await;
    ws.send(Message::text("this is not json")).await.unwrap();
    let err = recv(&mut ws).await;
    assert_eq!(err["type"], "error");
    assert!(err.get("id").is_none());
    assert_eq!(err["error"]["code"], "invalid_json");
    send(&mut ws, &json!({"type": "call", "id": "x", "arguments": 3})).await;
    let err = recv(&mut ws).await;
    assert_eq!((&err["type"], &err["id"]), (&json!("error"), &json!("x")));
    assert_eq!(err["error"]["code"], "invalid_arguments");
    assert!(err["error"]["trace_id"].is_string());
    send(&mut ws, &json!({"type": "dance", "id": "y"})).await;
    assert_eq!(
        recv(&mut ws).await["error"]["errors"][0]["pointer"],
        "/type"
    );
    call(&mut ws, "ok", "echo", &json!({"still": "works"})).await;
    let (_, result) = until_result(&mut ws).await;
    assert_eq!(result["output"], json!({"still": "works"}));
    // A call's own failure (unknown tool, bad arguments) is a failed result.
    call(&mut ws, "nope", "no_such_tool", &json!({})).await;
    assert_eq!(
        until_result(&mut ws).await.1["error"]["code"],
        "tool_not_found"
    );
    // `timeout_ms` lowers a call's deadline.
    let msg = json!({"type": "call", "id": "t", "tool": "sleep", "arguments": {"ms": 5_000}, "timeout_ms": 50});
    send(&mut ws, &msg).await;
    assert_eq!(until_result(&mut ws).await.1["error"]["code"], "timeout");
}

#[tokio::test]
async fn a_duplicate_id_in_flight_is_refused() {
    let s = TestServer::demo().await.unwrap();
    let mut ws = connect(&s).await;
    call(&mut ws, "d", "sleep", &json!({"ms": 300})).await;
    call(&mut ws, "d", "echo", &json!({})).await;
    let (before, result) = until_result(&mut ws).await;
    let err = before.iter().find(|m| m["type"] == "error").unwrap();
    assert_eq!(err["id"], "d");
    assert_eq!(err["error"]["code"], "invalid_arguments");
    assert_eq!(result["output"], json!({"slept_ms": 300}));
    // Once it has finished, the id may be used again.
    call(&mut ws, "d", "echo", &json!({"again": true})).await;
    assert_eq!(
        until_result(&mut ws).await.1["output"],
        json!({"again": true})
    );
}

#[tokio::test]
async fn a_key_in_the_subprotocol_offer_authenticates() {
    let s = TestServer::demo().await.unwrap();
    let offer = format!("toolgate.v1, toolgate.key.{OPERATOR_KEY}");
    let (mut ws, handshake) = try_connect(&s, &[("Sec-WebSocket-Protocol", &offer)])
        .await
        .unwrap();
    // The server selects the protocol, never the key.
    assert_eq!(handshake.headers()["sec-websocket-protocol"], "toolgate.v1");
    call(&mut ws, "a", "echo", &json!({"via": "subprotocol"})).await;
    assert_eq!(until_result(&mut ws).await.1["ok"], true);
}

#[tokio::test]
async fn a_missing_or_unknown_key_is_refused_before_the_upgrade() {
    let s = TestServer::demo().await.unwrap();
    let status = |r: Result<(Ws, Handshake), tungstenite::Error>| match r {
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("the upgrade was accepted"),
    };
    assert_eq!(status(try_connect(&s, &[]).await), 401);
    assert_eq!(
        status(try_connect(&s, &[("X-Tool-API-Key", "wrong")]).await),
        403
    );
    let offer = "toolgate.v1, toolgate.key.wrong";
    assert_eq!(
        status(try_connect(&s, &[("Sec-WebSocket-Protocol", offer)]).await),
        403
    );
    // The refusals are problem documents, like everywhere else.
    let resp = s.client.get(s.url("/api/v1/ws")).send().await.unwrap();
    let resp_headers = resp.headers().clone();
    expect_problem(resp, 401, "unauthorized").await;
    assert!(resp_headers.contains_key("www-authenticate"));
    // A key offered without the protocol would fail a browser's handshake: say so.
    let offer = format!("toolgate.key.{OPERATOR_KEY}");
    let resp = s.client.get(s.url("/api/v1/ws"));
    let resp = resp
        .header("Sec-WebSocket-Protocol", offer)
        .send()
        .await
        .unwrap();
    expect_problem(resp, 422, "invalid_arguments").await;
    // A keyed request that is not an upgrade.
    let resp = s.get("/api/v1/ws").send().await.unwrap();
    assert_eq!(resp.headers()["upgrade"], "websocket");
    expect_problem(resp, 426, "invalid_arguments").await;
}

#[tokio::test]
async fn the_in_flight_limit_applies_backpressure() {
    let s = TestServer::spawn(&demo_with("ws_max_in_flight = 2"))
        .await
        .unwrap();
    let mut ws = connect(&s).await;
    let start = Instant::now();
    for i in 0..5 {
        call(&mut ws, &format!("s{i}"), "sleep", &json!({"ms": 200})).await;
    }
    let mut answered = 0;
    let mut most_in_flight = 0;
    while answered < 5 {
        most_in_flight = most_in_flight.max(s.state.registry.in_flight());
        if recv(&mut ws).await["type"] == "result" {
            answered += 1;
        }
    }
    assert!(most_in_flight <= 2, "{most_in_flight} calls ran at once");
    // Two at a time, 200 ms each: at least three rounds.
    assert!(
        start.elapsed() >= Duration::from_millis(550),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn an_oversize_message_closes_with_1009() {
    let s = TestServer::spawn(&demo_with("ws_max_message_bytes = 1024"))
        .await
        .unwrap();
    let mut ws = connect(&s).await;
    call(&mut ws, "small", "echo", &json!({"pad": "x".repeat(500)})).await;
    assert_eq!(until_result(&mut ws).await.1["ok"], true);
    call(&mut ws, "big", "echo", &json!({"pad": "x".repeat(2000)})).await;
    let err = recv(&mut ws).await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["code"], "payload_too_large");
    assert_eq!(close_code(&mut ws).await, 1009);
}

#[tokio::test]
async fn closing_the_socket_cancels_its_calls() {
    let s = TestServer::demo().await.unwrap();
    let mut ws = connect(&s).await;
    call(&mut ws, "a", "sleep", &json!({"ms": 60_000})).await;
    call(&mut ws, "b", "sleep", &json!({"ms": 60_000})).await;
    wait_in_flight(&s, 2).await;
    ws.close(None).await.unwrap();
    drop(ws);
    let took = wait_idle(&s, Duration::from_secs(2)).await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[tokio::test]
async fn a_dropped_connection_cancels_its_calls() {
    let s = TestServer::demo().await.unwrap();
    let mut ws = connect(&s).await;
    call(&mut ws, "a", "sleep", &json!({"ms": 60_000})).await;
    wait_in_flight(&s, 1).await;
    drop(ws);
    let took = wait_idle(&s, Duration::from_secs(2)).await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[tokio::test]
async fn the_drain_lets_calls_finish_then_closes_with_1001() {
    let s = TestServer::demo().await.unwrap();
    let mut idle = connect(&s).await;
    let mut busy = connect(&s).await;
    call(&mut busy, "last", "sleep", &json!({"ms": 300})).await;
    wait_in_flight(&s, 1).await;
    let stop = tokio::spawn(s.stop());
    assert_eq!(close_code(&mut idle).await, 1001);
    let (_, result) = until_result(&mut busy).await;
    assert_eq!(result["output"], json!({"slept_ms": 300}));
    assert_eq!(close_code(&mut busy).await, 1001);
    stop.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_server_pings_and_answers_pings() {
    let s = TestServer::spawn(&demo_with("ws_ping_interval_ms = 30"))
        .await
        .unwrap();
    let mut ws = connect(&s).await;
    ws.send(Message::Ping(vec![7].into())).await.unwrap();
    let (mut pings, mut pongs) = (0, 0);
    while pings < 2 || pongs < 1 {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("no ping")
            .unwrap()
            .unwrap();
        match msg {
            Message::Ping(_) => pings += 1,
            Message::Pong(data) => {
                assert_eq!(data.as_ref(), [7]);
                pongs += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // tokio-tungstenite answers the server's pings as it reads, so the socket lives.
    call(&mut ws, "alive", "echo", &json!({})).await;
    assert_eq!(until_result(&mut ws).await.1["ok"], true);
}
