//! OpenTelemetry: a minimal OTLP/HTTP (JSON) receiver in the test collects what the
//! real binary exports; spans, their parent/child structure and the inbound
//! `traceparent` are checked.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use serde_json::{Value, json};

use crate::cli::{BIN, write_config};

/// Start a receiver for `POST /v1/traces`; returns its address and what it got.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = Arc::clone(&got);
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sink = Arc::clone(&sink);
            async move {
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    sink.lock().unwrap().push(v);
                }
                axum::Json(json!({}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, got)
}

#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
}

fn spans(exports: &[Value]) -> Vec<Span> {
    let mut out = Vec::new();
    for export in exports {
        for rs in export["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    out.push(Span {
                        name: s["name"].as_str().unwrap_or_default().to_owned(),
                        trace_id: s["traceId"].as_str().unwrap_or_default().to_lowercase(),
                        span_id: s["spanId"].as_str().unwrap_or_default().to_lowercase(),
                        parent: s["parentSpanId"]
                            .as_str()
                            .unwrap_or_default()
                            .to_lowercase(),
                    });
                }
            }
        }
    }
    out
}

// Two workers: the test blocks one in `child.wait()` while the server flushes its
// last spans at SIGTERM, and the receiver must still answer them on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_with_their_structure_and_the_callers_trace() {
    let (otlp, got) = receiver().await;
    // An HTTP upstream that remembers the traceparent it was sent.
    let seen: Arc<Mutex<Option<String>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let upstream = Router::new().route(
        "/hello",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let sink = Arc::clone(&sink);
            async move {
                *sink.lock().unwrap() = headers
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                axum::Json(json!({"hi": true}))
            }
        }),
    );
    let ul = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = ul.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(ul, upstream).await });
    let f = write_config(&format!(
        "{}\n[[tools]]\nname = \"traced\"\nkind = \"http\"\nurl = \"http://{upstream_addr}/hello\"\nallow_private = [\"127.0.0.1\"]\n",
        toolgate_config::DEMO_CONFIG
    ));
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            f.path().to_str().unwrap(),
        ])
        .env("TOOLGATE_API_KEY", crate::cli::CLI_KEY)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "toolgate-test")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the server exited"
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["msg"] == "listening" {
            break v["addr"].as_str().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in stderr.lines() {});

    let client = reqwest::Client::new();
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let resp = client
        .post(format!("http://{addr}/api/v1/tools/echo"))
        .header("X-Tool-API-Key", crate::cli::CLI_KEY)
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .json(&json!({"a": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["x-trace-id"],
        caller_trace,
        "the caller's trace is continued"
    );
    let resp = client
        .post(format!("http://{addr}/api/v1/tools/traced"))
        .header("X-Tool-API-Key", crate::cli::CLI_KEY)
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client
        .post(format!("http://{addr}/api/v1/tools/execute"))
        .header("X-Tool-API-Key", crate::cli::CLI_KEY)
        .json(&json!({"mode": "all_settled", "calls": [{"tool": "echo"}, {"tool": "fail"}]}))
        .send()
        .await
        .unwrap();
    let batch_trace = resp.headers()["x-trace-id"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["data"][1]["error"]["trace_id"],
        batch_trace.as_str(),
        "problem bodies name the exported trace"
    );

    // SIGTERM flushes the batch exporter before exit.
    crate::cli::sigterm(&child);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let start = Instant::now();
    let all = loop {
        let all = spans(&got.lock().unwrap());
        if all.iter().any(|s| s.name == "execute_tools_group")
            || start.elapsed() > Duration::from_secs(5)
        {
            break all;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let find = |name: &str, trace: &str| {
        all.iter()
            .find(|s| s.name == name && s.trace_id == trace)
            .unwrap_or_else(|| panic!("no span {name:?} in trace {trace}: {all:#?}"))
            .clone()
    };

    let request = find("POST /api/v1/tools/{name}", caller_trace);
    assert_eq!(
        request.parent, caller_span,
        "the inbound traceparent is the request's parent"
    );
    let tool = find("execute_tool echo", caller_trace);
    assert_eq!(tool.parent, request.span_id);
    let attempt = find("attempt 1 echo", caller_trace);
    assert_eq!(attempt.parent, tool.span_id);

    // The upstream saw the same trace, with toolgate's attempt span as its parent.
    let upstream_tp = seen
        .lock()
        .unwrap()
        .clone()
        .expect("the upstream got a traceparent");
    let parts: Vec<&str> = upstream_tp.split('-').collect();
    assert_eq!(parts[1], caller_trace);
    let traced_attempt = find("attempt 1 traced", caller_trace);
    assert_eq!(
        parts[2], traced_attempt.span_id,
        "the upstream's parent is the attempt span"
    );

    let batch_request = find("POST /api/v1/tools/execute", &batch_trace);
    assert!(
        batch_request.parent.is_empty(),
        "a request without traceparent is a root"
    );
    let group = find("execute_tools_group", &batch_trace);
    assert_eq!(group.parent, batch_request.span_id);
    for name in ["execute_tool echo", "execute_tool fail"] {
        assert_eq!(find(name, &batch_trace).parent, group.span_id, "{name}");
    }
}
