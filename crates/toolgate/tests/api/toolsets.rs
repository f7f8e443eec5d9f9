//! `[toolsets.NAME]`: `/mcp/NAME` and `/api/v1/sets/NAME/...` show and call the
//! set's tools that the caller may call, and nothing else; each set has its own
//! OpenAPI document; an unknown set is 404.

use serde_json::{Value, json};
use toolgate_test_support::{OPERATOR_KEY, TestServer, key_entry};

use crate::read;

const LIMITED: &str = "toolsets-limited-key-0123456789";

async fn server() -> TestServer {
    let cfg = format!(
        "{}{}\n[toolsets.quick]\ntools = [\"echo\", \"sleep\"]\ndescription = \"Fast tools\"\n\n\
         [toolsets.data]\ntools = [\"run_*\", \"echo\"]\n",
        toolgate_config::DEMO_CONFIG,
        key_entry("limited", LIMITED, &["echo", "run_database_query"]),
    );
    TestServer::spawn(&cfg).await.unwrap()
}

async fn names(s: &TestServer, path: &str, key: &str) -> Vec<String> {
    let (status, _, body) = read(
        s.client
            .get(s.url(path))
            .header("X-Tool-API-Key", key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{path}: {body}");
    let mut names: Vec<String> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

async fn post(s: &TestServer, path: &str, key: &str, body: &Value) -> (u16, Value) {
    let (status, _, body) = read(
        s.client
            .post(s.url(path))
            .header("X-Tool-API-Key", key)
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    (status, body)
}

#[tokio::test]
async fn rest_lists_and_calls_the_intersection_of_the_set_and_the_callers_scopes() {
    let s = server().await;
    assert_eq!(
        names(&s, "/api/v1/sets/quick/tools", OPERATOR_KEY).await,
        ["echo", "sleep"]
    );
    assert_eq!(
        names(&s, "/api/v1/sets/data/tools", OPERATOR_KEY).await,
        ["echo", "run_database_query", "run_system_audit"]
    );
    // The limited key: its scopes within the set.
    assert_eq!(
        names(&s, "/api/v1/sets/quick/tools", LIMITED).await,
        ["echo"]
    );
    assert_eq!(
        names(&s, "/api/v1/sets/data/tools", LIMITED).await,
        ["echo", "run_database_query"]
    );
    let (status, body) = post(
        &s,
        "/api/v1/sets/quick/tools/echo",
        LIMITED,
        &json!({"a": 1}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"], json!({"a": 1}));
    // In the caller's scopes, not in the set: refused as out of scope.
    let (status, body) = post(
        &s,
        "/api/v1/sets/quick/tools/run_database_query",
        LIMITED,
        &json!({"query": "SELECT 1"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // The same call outside any set is allowed.
    let (status, body) = post(
        &s,
        "/api/v1/tools/run_database_query",
        LIMITED,
        &json!({"query": "SELECT 1"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A batch through a set: its calls are held to the set too.
    let (status, body) = post(
        &s,
        "/api/v1/sets/quick/tools/execute",
        OPERATOR_KEY,
        &json!({"calls": [{"tool": "echo", "arguments": {}}, {"tool": "fail", "arguments": {}}], "mode": "all_settled"}),
    )
    .await;
    assert_eq!(body["data"][0]["ok"], true, "{status} {body}");
    assert_eq!(body["data"][1]["error"]["code"], "forbidden", "{body}");
    // Each set has its own OpenAPI document.
    let (status, _, doc) = read(
        s.client
            .get(s.url("/api/v1/sets/quick/openapi.json"))
            .header("X-Tool-API-Key", OPERATOR_KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{doc}");
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert!(paths.iter().any(|p| p.ends_with("/echo")), "{paths:?}");
    assert!(!paths.iter().any(|p| p.ends_with("/fail")), "{paths:?}");
    // An unknown set.
    let (status, body) = post(&s, "/api/v1/sets/nope/tools/echo", OPERATOR_KEY, &json!({})).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("nope"), "{body}");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn mcp_at_the_sets_path_lists_and_calls_only_its_tools() {
    let s = server().await;
    // The requests of the MCP tests, sent to `path` instead of `/mcp`.
    let at = |path: &str, req: reqwest::RequestBuilder| {
        let mut req = req.build().unwrap();
        *req.url_mut() = reqwest::Url::parse(&s.url(path)).unwrap();
        req
    };
    let list = |path: &'static str, key: &'static str| {
        let req = at(
            path,
            crate::mcp::modern_post(&s, Some(key), "tools/list", None, json!({})),
        );
        let s = &s;
        async move {
            let text = s.client.execute(req).await.unwrap().text().await.unwrap();
            let start = text.find('{').unwrap_or(0);
            let end = text.rfind('}').map_or(text.len(), |i| i + 1);
            let v: Value =
                serde_json::from_str(&text[start..end]).unwrap_or_else(|e| panic!("{e}: {text}"));
            let mut names: Vec<String> = v["result"]["tools"]
                .as_array()
                .unwrap_or_else(|| panic!("{v}"))
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(list("/mcp/quick", OPERATOR_KEY).await, ["echo", "sleep"]);
    assert_eq!(list("/mcp/quick", LIMITED).await, ["echo"]);
    assert!(
        list("/mcp", OPERATOR_KEY).await.len() >= 5,
        "the whole catalog at /mcp"
    );
    let set_call = |tool: &str| {
        at(
            "/mcp/quick",
            crate::mcp::modern_post(
                &s,
                Some(OPERATOR_KEY),
                "tools/call",
                Some(tool),
                json!({"name": tool, "arguments": {}}),
            ),
        )
    };
    let ok = s.client.execute(set_call("echo")).await.unwrap();
    assert_eq!(ok.status(), 200);
    let text = ok.text().await.unwrap();
    assert!(!text.contains("\"isError\":true"), "{text}");
    let refused = s.client.execute(set_call("fail")).await.unwrap();
    assert_eq!(refused.status(), 403, "{}", refused.text().await.unwrap());
    let unknown = s
        .client
        .post(s.url("/mcp/nope"))
        .header("X-Tool-API-Key", OPERATOR_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    s.stop().await.unwrap();
}

#[test]
fn bad_toolsets_are_reported_at_their_lines() {
    let text = "[toolsets.\"has space\"]\ntools = [\"echo\"]\n\n[toolsets.empty]\ntools = []\n\n[toolsets.bad]\ntools = [\"e?ho\"]\n";
    let problems = toolgate_config::LoadedConfig::from_str("t.toml", text)
        .unwrap_err()
        .to_string();
    assert!(
        problems.contains("t.toml:1:") && problems.contains("toolset name"),
        "{problems}"
    );
    assert!(
        problems.contains("t.toml:4:") && problems.contains("`tools` is empty"),
        "{problems}"
    );
    assert!(
        problems.contains("t.toml:7:") && problems.contains("'?'"),
        "{problems}"
    );
}

/// A WebSocket opened through a set stays narrowed to it across reloads, follows the
/// set's new patterns, and is closed (1008) when the set is removed.
#[tokio::test]
async fn a_websocket_through_a_set_keeps_to_the_set_across_reloads() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toolgate.toml");
    let with_set = |tools: &str| {
        format!(
            "{}\n[toolsets.quick]\ntools = [{tools}]\n",
            toolgate_config::DEMO_CONFIG
        )
    };
    std::fs::write(&path, with_set("\"echo\"")).unwrap();
    let s = TestServer::spawn_file(&path).await.unwrap();
    let mut req = format!("ws://{}/api/v1/sets/quick/ws", s.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("X-Tool-API-Key", HeaderValue::from_static(OPERATOR_KEY));
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(ws_ask(&mut ws, "echo").await["type"], "result");
    assert_eq!(ws_ask(&mut ws, "sleep").await["error"]["code"], "forbidden");
    // A reload (here: the set gains sleep) keeps the socket in the set, as reloaded.
    std::fs::write(&path, with_set("\"echo\", \"sleep\"")).unwrap();
    let start = std::time::Instant::now();
    while ws_ask(&mut ws, "sleep").await["type"] != "result" {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "never reloaded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let v = ws_ask(&mut ws, "run_database_query").await;
    assert_eq!(v["error"]["code"], "forbidden", "still narrowed: {v}");
    // The set removed: the socket is closed with 1008.
    std::fs::write(&path, toolgate_config::DEMO_CONFIG).unwrap();
    let code = loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a close within 10 s");
        match m {
            Some(Ok(Message::Close(Some(f)))) => break u16::from(f.code),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(code, 1008);
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Call `tool` over `ws` and return its result or error message.
async fn ws_ask(ws: &mut Ws, tool: &str) -> Value {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let msg = json!({"type": "call", "id": tool, "tool": tool, "arguments": {"ms": 1}});
    ws.send(Message::text(msg.to_string())).await.unwrap();
    loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("an answer within 10 s")
            .expect("the socket stays open")
            .unwrap();
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "result" || v["type"] == "error" {
                return v;
            }
        }
    }
}
