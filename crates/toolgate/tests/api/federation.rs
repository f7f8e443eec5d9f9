//! `[sources.NAME] kind = "mcp"`: tools of real MCP servers that no one here wrote,
//! served as toolgate's own. `@modelcontextprotocol/server-everything` (npm, pinned in
//! tests/mcp-sdk) over stdio and over Streamable HTTP, a server built on the official
//! Python SDK (tests/mcp-interop/federated_server.py) over stdio, and a second
//! toolgate over both revisions of Streamable HTTP. Each is called through REST,
//! batch, SSE, WebSocket and MCP; progress is relayed, a deadline cancels the
//! upstream's work, `list_changed` brings new tools, a crashed child is restarted.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use toolgate_test_support::{OPERATOR_KEY, TestServer, free_port, key_entry};

use crate::mcp::{Rev, call as mcp_call, connect};
use crate::{expect_problem, read};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Skip loudly outside CI; under CI the peer must be there.
fn missing(what: &str) {
    assert!(
        std::env::var("CI").is_err(),
        "{what} is needed under CI (make unit installs it)"
    );
    eprintln!("SKIPPED: {what} is missing; this federation test did not run");
}

/// server-everything's entry point, when `npm ci` ran in tests/mcp-sdk.
fn everything() -> Option<String> {
    let path = root()
        .join("tests/mcp-sdk/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if path.exists() && node {
        Some(path.display().to_string())
    } else {
        missing("node and tests/mcp-sdk/node_modules (server-everything)");
        None
    }
}

/// The Python SDK's interpreter, when tests/mcp-interop/run.sh made its venv.
fn python_sdk() -> Option<String> {
    let python = root().join("target/mcp-interop-venv/bin/python");
    let ok = std::process::Command::new(&python)
        .args(["-c", "import mcp.server.mcpserver"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(python.display().to_string())
    } else {
        missing("the MCP Python SDK venv (target/mcp-interop-venv)");
        None
    }
}

use crate::tool_names as names;

async fn call(s: &TestServer, tool: &str, args: Value) -> (u16, Value) {
    let (status, _, body) = read(s.call(tool, &args).send().await.unwrap()).await;
    (status, body)
}

/// Wait until `f` holds (at most 20 s: a child may be restarting).
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < Duration::from_secs(20), "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The events of an SSE response, as (event, data).
async fn sse(resp: reqwest::Response) -> Vec<(String, Value)> {
    let text = tokio::time::timeout(Duration::from_secs(20), resp.text())
        .await
        .expect("the stream ends within 20 s")
        .unwrap();
    text.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            Some((event?, serde_json::from_str(&data).unwrap_or(Value::Null)))
        })
        .collect()
}

/// One call over `/api/v1/ws`: every message for it, up to its result or error.
async fn ws_call(s: &TestServer, tool: &str, args: Value) -> Vec<Value> {
    let mut req = format!("ws://{}/api/v1/ws", s.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("X-Tool-API-Key", HeaderValue::from_static(OPERATOR_KEY));
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let msg = json!({"type": "call", "id": "w1", "tool": tool, "arguments": args});
    ws.send(Message::text(msg.to_string())).await.unwrap();
    let mut got = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a message within 20 s")
            .expect("the socket stays open")
            .unwrap();
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(&t).unwrap();
        let done = v["type"] == "result" || v["type"] == "error";
        got.push(v);
        if done {
            return got;
        }
    }
}

fn everything_stdio(entry: &str) -> String {
    format!(
        "[sources.ev]\nkind = \"mcp\"\ncommand = \"node\"\nargs = [\"{entry}\", \"stdio\"]\n\
         prefix = \"ev_\"\ntimeout_ms = 20000\n\n{}",
        key_entry("sums", "federation-sums-key-0123456789", &["ev_get-sum"])
    )
}

#[tokio::test]
async fn server_everything_over_stdio_is_called_through_rest_batch_sse_websocket_and_mcp() {
    let Some(entry) = everything() else { return };
    let s = TestServer::spawn(&everything_stdio(&entry)).await.unwrap();
    let listed = names(&s).await;
    for t in ["ev_echo", "ev_get-sum", "ev_trigger-long-running-operation"] {
        assert!(
            listed.contains(&t.to_owned()),
            "{t} missing from {listed:?}"
        );
    }
    // Schema, description and hints come from the upstream.
    let (_, _, tool) = read(s.get("/api/v1/tools/ev_echo").send().await.unwrap()).await;
    assert_eq!(tool["description"], "Echoes back the input string");
    assert_eq!(tool["input_schema"]["required"], json!(["message"]));
    assert_eq!(tool["annotations"]["read_only"], true, "{tool}");

    // REST; the upstream's schema is enforced before the call leaves toolgate.
    let (status, body) = call(&s, "ev_echo", json!({"message": "hi"})).await;
    assert_eq!(
        (status, &body["output"]),
        (200, &json!("Echo: hi")),
        "{body}"
    );
    let resp = s.call("ev_echo", &json!({})).send().await.unwrap();
    expect_problem(resp, 422, "invalid_arguments").await;

    // Scopes apply to imported tools like to native ones.
    let limited = |tool: &str| {
        s.client
            .post(s.url(&format!("/api/v1/tools/{tool}")))
            .header("X-Tool-API-Key", "federation-sums-key-0123456789")
            .json(&json!({"a": 1, "b": 2, "message": "x"}))
    };
    let (status, _, body) = read(limited("ev_get-sum").send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    expect_problem(limited("ev_echo").send().await.unwrap(), 403, "forbidden").await;

    // Batch.
    let (status, _, body) = read(
        s.post("/api/v1/tools/execute")
            .json(&json!({"calls": [
                {"id": "a", "tool": "ev_echo", "arguments": {"message": "one"}},
                {"id": "b", "tool": "ev_get-sum", "arguments": {"a": 2, "b": 3}}
            ]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["output"], "Echo: one");
    assert_eq!(body["data"][1]["output"], "The sum of 2 and 3 is 5.");

    // SSE, with the upstream's progress relayed.
    let resp = s
        .post("/api/v1/tools/ev_trigger-long-running-operation/stream")
        .json(&json!({"duration": 0.6, "steps": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let events = sse(resp).await;
    let progress: Vec<&Value> = events
        .iter()
        .filter(|(e, _)| e == "progress")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(progress.len(), 3, "{events:?}");
    assert_eq!(progress[2]["progress"], 3.0);
    assert_eq!(progress[2]["total"], 3.0);
    let result = events.iter().find(|(e, _)| e == "result").unwrap();
    assert!(
        result.1["output"]
            .as_str()
            .unwrap()
            .starts_with("Long running operation completed"),
        "{events:?}"
    );

    // WebSocket, progress included.
    let msgs = ws_call(
        &s,
        "ev_trigger-long-running-operation",
        json!({"duration": 0.4, "steps": 2}),
    )
    .await;
    let kinds: Vec<&str> = msgs.iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["progress", "progress", "result"], "{msgs:?}");

    // MCP, both revisions.
    for rev in [Rev::Modern, Rev::Legacy] {
        let c = connect(&s, OPERATOR_KEY, rev).await;
        let tools = c.service.list_all_tools().await.unwrap();
        assert!(tools.iter().any(|t| t.name == "ev_get-sum"), "{rev:?}");
        let r = mcp_call(&c, "ev_echo", json!({"message": "via mcp"})).await;
        assert_eq!(r.is_error, Some(false));
        let text = &r.content[0].as_text().unwrap().text;
        assert_eq!(text, "\"Echo: via mcp\"", "{rev:?}");
        c.service.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn server_everything_over_streamable_http() {
    let Some(entry) = everything() else { return };
    let port = free_port().unwrap().port();
    let mut child = tokio::process::Command::new("node")
        .args([entry.as_str(), "streamableHttp"])
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "server-everything did not listen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cfg = format!(
        "[sources.ev]\nkind = \"mcp\"\nurl = \"http://127.0.0.1:{port}/mcp\"\nprefix = \"web_\"\n"
    );
    let s = TestServer::spawn(&cfg).await.unwrap();
    let (status, body) = call(&s, "web_get-sum", json!({"a": 40, "b": 2})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"], "The sum of 40 and 2 is 42.");
    let resp = s
        .post("/api/v1/tools/web_trigger-long-running-operation/stream")
        .json(&json!({"duration": 0.4, "steps": 2}))
        .send()
        .await
        .unwrap();
    let events = sse(resp).await;
    let n = events.iter().filter(|(e, _)| e == "progress").count();
    assert_eq!(n, 2, "{events:?}");
    let (_, _, ready) = read(s.client.get(s.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(ready["checks"]["source:ev"], "ok", "{ready}");
    child.kill().await.unwrap();
}

/// A second toolgate (the demo, key required) as the upstream, speaking `protocol`.
async fn toolgate_upstream(protocol: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upstream.toml");
    std::fs::write(&path, toolgate_config::DEMO_CONFIG).unwrap();
    let b = TestServer::spawn_file(&path).await.unwrap();
    let cfg = format!(
        "[sources.b]\nkind = \"mcp\"\nurl = \"{}\"\nprotocol = \"{protocol}\"\nprefix = \"b_\"\n\
         headers = {{ X-Tool-API-Key = \"{OPERATOR_KEY}\" }}\n",
        b.url("/mcp")
    );
    let a = TestServer::spawn(&cfg).await.unwrap();
    let listed = names(&a).await;
    assert!(
        listed.contains(&"b_sleep".to_owned()),
        "{protocol}: {listed:?}"
    );

    // A tool with an output schema comes back structured.
    let (status, body) = call(&a, "b_sleep", json!({"ms": 5})).await;
    assert_eq!(
        (status, &body["output"]),
        (200, &json!({"slept_ms": 5})),
        "{body}"
    );
    // The upstream's tool failure is a tool failure here too.
    let resp = a.call("b_fail", &json!({})).send().await.unwrap();
    expect_problem(resp, 500, "tool_error").await;

    // Progress through SSE.
    let resp = a
        .post("/api/v1/tools/b_sleep/stream")
        .json(&json!({"ms": 300}))
        .send()
        .await
        .unwrap();
    let events = sse(resp).await;
    assert!(
        events.iter().filter(|(e, _)| e == "progress").count() >= 2,
        "{protocol}: {events:?}"
    );

    // A deadline here cancels the upstream's work: without notifications/cancelled
    // the upstream would sleep on for ten seconds.
    let started = Instant::now();
    let resp = a
        .call("b_sleep", &json!({"ms": 10_000}))
        .header("X-Request-Timeout-Ms", "300")
        .send()
        .await
        .unwrap();
    expect_problem(resp, 504, "timeout").await;
    assert!(started.elapsed() < Duration::from_secs(3));
    eventually("the upstream stopped the cancelled sleep", || async {
        b.state.registry.in_flight() == 0
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(5), "{protocol}");

    // A client that goes away cancels it too.
    let gone = tokio::spawn(a.call("b_sleep", &json!({"ms": 10_000})).send());
    eventually("the upstream runs the sleep", || async {
        b.state.registry.in_flight() == 1
    })
    .await;
    gone.abort();
    eventually("the upstream stopped the abandoned sleep", || async {
        b.state.registry.in_flight() == 0
    })
    .await;

    // A tool added upstream (its config reloaded) appears here through list_changed.
    let more = format!(
        "{}\n[[tools]]\nname = \"extra\"\nkind = \"builtin\"\nbuiltin = \"echo\"\n",
        toolgate_config::DEMO_CONFIG
    );
    std::fs::write(&path, more).unwrap();
    eventually("b_extra is listed", || async {
        names(&a).await.contains(&"b_extra".to_owned())
    })
    .await;
    let (status, body) = call(&a, "b_extra", json!({"v": 1})).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_toolgate_upstream_over_2026_07_28() {
    toolgate_upstream("2026-07-28").await;
}

#[tokio::test]
async fn a_toolgate_upstream_over_2025_11_25() {
    toolgate_upstream("2025-11-25").await;
}

/// The Python SDK's server over stdio, speaking `protocol` (its `list_changed` comes
/// through `subscriptions/listen` on 2026-07-28 and over the session on 2025-11-25).
async fn python_server(protocol: &str) {
    let Some(python) = python_sdk() else { return };
    let script = root().join("tests/mcp-interop/federated_server.py");
    let cfg = format!(
        "[sources.py]\nkind = \"mcp\"\ncommand = \"{python}\"\nargs = [\"{}\"]\nprefix = \"py_\"\n\
         env_allow = [\"HOME\"]\nprotocol = \"{protocol}\"\n",
        script.display()
    );
    let s = TestServer::spawn(&cfg).await.unwrap();
    let (status, body) = call(&s, "py_add", json!({"a": 2, "b": 3})).await;
    assert_eq!(
        (status, &body["output"]),
        (200, &json!({"result": 5})),
        "{body}"
    );
    let resp = s.call("py_add", &json!({"a": "two"})).send().await.unwrap();
    expect_problem(resp, 422, "invalid_arguments").await;

    // The caller's trace goes upstream in `_meta`.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let (status, _, body) = read(
        s.call("py_trace", &json!({}))
            .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sent = body["output"]["result"].as_str().unwrap_or_default();
    assert!(sent.starts_with(&format!("00-{trace}-")), "{body}");

    // Progress over MCP.
    let mut c = connect(&s, OPERATOR_KEY, Rev::Modern).await;
    let opts = rmcp::service::PeerRequestOptions::no_options();
    let req = rmcp::model::ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(
        crate::mcp::params("py_report", json!({"steps": 3})),
    ));
    let handle = c.service.send_cancellable_request(req, opts).await.unwrap();
    handle.await_response().await.unwrap();
    let mut seen = 0;
    while let Ok(p) = c.progress.try_recv() {
        seen += 1;
        assert_eq!(p.total, Some(3.0));
    }
    assert_eq!(seen, 3);
    c.service.cancel().await.unwrap();

    // list_changed from the upstream.
    let (status, _) = call(&s, "py_grow", json!({})).await;
    assert_eq!(status, 200);
    eventually("py_grown is listed", || async {
        names(&s).await.contains(&"py_grown".to_owned())
    })
    .await;
    let (status, body) = call(&s, "py_grown", json!({})).await;
    assert_eq!(
        (status, &body["output"]),
        (200, &json!({"result": "grown"})),
        "{body}"
    );

    // The child dies mid-call: the call fails as the upstream's, the child is
    // restarted, its tools work again (and the grown one is gone with the old process).
    let resp = s.call("py_crash", &json!({})).send().await.unwrap();
    expect_problem(resp, 502, "upstream_error").await;
    eventually("the restarted child answers", || async {
        call(&s, "py_add", json!({"a": 1, "b": 1})).await.0 == 200
    })
    .await;
    eventually("py_grown is gone after the restart", || async {
        !names(&s).await.contains(&"py_grown".to_owned())
    })
    .await;
}

#[tokio::test]
async fn a_python_sdk_server_over_stdio_2026_07_28_grows_crashes_and_is_restarted() {
    python_server("2026-07-28").await;
}

#[tokio::test]
async fn a_python_sdk_server_over_stdio_2025_11_25_grows_crashes_and_is_restarted() {
    python_server("2025-11-25").await;
}

#[tokio::test]
async fn an_upstream_that_is_down_starts_empty_fails_readiness_and_joins_when_it_is_up() {
    let port = free_port().unwrap();
    let b_cfg = toolgate_config::DEMO_CONFIG;
    let cfg = format!(
        "[sources.late]\nkind = \"mcp\"\nurl = \"http://{port}/mcp\"\nprefix = \"late_\"\n\
         connect_timeout_ms = 500\nheaders = {{ X-Tool-API-Key = \"{OPERATOR_KEY}\" }}\n"
    );
    let a = TestServer::spawn(&cfg).await.unwrap();
    assert!(names(&a).await.is_empty());
    let (status, _, ready) = read(a.client.get(a.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 503, "{ready}");
    assert!(
        ready["checks"]["source:late"]
            .as_str()
            .is_some_and(|c| c != "ok"),
        "{ready}"
    );
    // The upstream comes up: its tools appear without a reload here.
    let _b = TestServer::spawn_at(b_cfg, port).await.unwrap();
    eventually("late_echo is listed", || async {
        names(&a).await.contains(&"late_echo".to_owned())
    })
    .await;
    // Readiness is re-checked once a second.
    eventually("ready", || async {
        a.client
            .get(a.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
    })
    .await;
}

#[test]
fn bad_mcp_sources_are_reported_at_their_lines() {
    let cases = [
        (
            "[sources.m]\nkind = \"mcp\"\nurl = \"http://x/mcp\"\ncommand = \"node\"\n",
            "either `url`",
        ),
        ("[sources.m]\nkind = \"mcp\"\n", "needs `url`"),
        (
            "[sources.m]\nkind = \"mcp\"\nurl = \"ftp://x\"\n",
            "url must be an http(s) URL",
        ),
        (
            "[sources.m]\nkind = \"mcp\"\nurl = \"http://x/mcp\"\nprotocol = \"2024-11-05\"\n",
            "protocol must be",
        ),
        (
            "[sources.m]\nkind = \"mcp\"\ncommand = \"x\"\ninclude = { tags = [\"a\"] }\n",
            "by tool name only",
        ),
        (
            "[sources.m]\nkind = \"mcp\"\nurl = \"http://x/mcp\"\nargs = [\"a\"]\n",
            "`args` is for a stdio server",
        ),
        (
            "[sources.m]\nkind = \"mcp\"\ncommand = \"x\"\nheaders = { A = \"b\" }\n",
            "`headers` and `oauth` are for a Streamable HTTP server",
        ),
        (
            "[sources.db]\nkind = \"postgres\"\nurl = \"postgres://x/y\"\ncommand = \"x\"\n",
            "`command` is only for mcp sources",
        ),
        (
            "[sources.m]\nkind = \"mcp\"\ncommand = \"x\"\nspec = \"a.json\"\n",
            "`spec` is only for openapi sources",
        ),
    ];
    for (cfg, want) in cases {
        let err = toolgate_config::LoadedConfig::from_str("f.toml", cfg).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(want), "{cfg}: {text}");
        assert!(text.contains("f.toml:"), "{text}");
    }
}

/// The upstream (a toolgate that takes only its IdP's tokens) is reached with a
/// token toolgate gets for itself with the client-credentials grant.
#[tokio::test]
async fn an_upstream_token_from_the_client_credentials_grant() {
    use toolgate_test_support::Idp;
    const RESOURCE: &str = "http://upstream.test/mcp";
    if !Idp::available() {
        missing("node and tests/idp/node_modules (the test IdP)");
        return;
    }
    let idp = Idp::start(&json!({
        "keys": ["RS256"],
        "resources": {
            RESOURCE: {"audience": RESOURCE, "scope": "tools:all", "format": "jwt", "ttl": 300}
        },
        "clients": [
            {"client_id": "gateway", "client_secret": "gateway-secret",
             "grant_types": ["client_credentials"], "scope": "tools:all",
             "token_endpoint_auth_method": "client_secret_basic"}
        ]
    }))
    .unwrap();
    let b_cfg = format!(
        "{}\n[auth]\nresource = \"{RESOURCE}\"\n\n[[auth.issuers]]\nname = \"corp\"\nissuer = \"{}\"\n\n\
         [auth.issuers.grants]\n\"tools:all\" = [\"*\"]\n",
        toolgate_config::DEMO_CONFIG,
        idp.issuer
    );
    let b = TestServer::spawn(&b_cfg).await.unwrap();
    let a_cfg = format!(
        "[sources.b]\nkind = \"mcp\"\nurl = \"{}\"\nprefix = \"b_\"\n\
         oauth = {{ token_url = \"{}/token\", client_id = \"gateway\", client_secret = \"gateway-secret\", \
         scope = \"tools:all\", resource = \"{RESOURCE}\" }}\n",
        b.url("/mcp"),
        idp.issuer
    );
    let a = TestServer::spawn(&a_cfg).await.unwrap();
    let (status, body) = call(&a, "b_sleep", json!({"ms": 1})).await;
    assert_eq!(
        (status, &body["output"]),
        (200, &json!({"slept_ms": 1})),
        "{body}"
    );
    assert!(idp.requests("/token").await.unwrap() >= 1);

    // A wrong secret: no token, no tools, and readiness says why.
    let bad = a_cfg.replace("gateway-secret", "wrong");
    let c = TestServer::spawn(&bad).await.unwrap();
    assert!(names(&c).await.is_empty());
    let (_, _, ready) = read(c.client.get(c.url("/readyz")).send().await.unwrap()).await;
    let why = ready["checks"]["source:b"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(why.contains("token endpoint answered 401"), "{ready}");
}
