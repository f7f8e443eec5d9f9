//! Black-box tests: a real server on 127.0.0.1:0 called over HTTP, and the real
//! binary for the CLI. One test binary for the crate; one module per area.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod abuse;
mod audit;
mod auth;
mod batch;
mod cli;
mod errors;
mod faults;
mod federation;
mod healthcheck;
mod http_tool;
mod identity;
mod jobs;
mod lifecycle;
mod mcp;
mod metrics;
mod openapi;
mod openapi_import;
mod reload;
mod resilience;
mod restarts;
mod search;
mod shared_limits;
mod sql_databases;
mod streaming;
mod tools;
mod toolsets;
mod traces;
#[cfg(feature = "wasm")]
mod wasm;

use serde_json::Value;

/// The names of the tools the operator key lists at `GET /api/v1/tools`.
pub async fn tool_names(s: &toolgate_test_support::TestServer) -> Vec<String> {
    let (status, _, body) = read(s.get("/api/v1/tools").send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Status, content type and JSON body of a response.
pub async fn read(resp: reqwest::Response) -> (u16, String, Value) {
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, ctype, body)
}

/// Assert a problem+json error with `status` and `code`, returning the body.
pub async fn expect_problem(resp: reqwest::Response, status: u16, code: &str) -> Value {
    let (got, ctype, body) = read(resp).await;
    assert_eq!(got, status, "body: {body}");
    assert_eq!(ctype, "application/problem+json", "body: {body}");
    assert_eq!(body["code"], code, "body: {body}");
    assert_eq!(body["status"], status);
    for field in ["type", "title", "detail", "trace_id"] {
        assert!(body[field].is_string(), "{field} missing in {body}");
    }
    body
}
