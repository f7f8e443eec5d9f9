//! Who may use `/mcp`: keys (401 with `WWW-Authenticate`), scopes (filtered lists,
//! 403 for a call), origins (403), hosts, sessions bound to their key, limits.

use rmcp::service::ServiceError;
use serde_json::{Value, json};
use toolgate_config::DEMO_CONFIG;
use toolgate_test_support::{OPERATOR_KEY, TestServer, key_entry};

use super::{
    Rev, call, connect, legacy_post, modern_post, open_session, params, rpc_message, text_json,
    try_connect,
};

const DB_KEY: &str = "tg_mcp_db_reader";
const OTHER_KEY: &str = "tg_mcp_other";

/// The demo with two more keys and `extra_server` lines in `[server]`.
async fn server(extra_server: &str) -> TestServer {
    let demo = DEMO_CONFIG.replacen("[server]\n", &format!("[server]\n{extra_server}\n"), 1);
    let config = format!(
        "{demo}{}{}",
        key_entry("db-reader", DB_KEY, &["run_*"]),
        key_entry("other", OTHER_KEY, &["*"]),
    );
    TestServer::spawn(&config).await.unwrap()
}

#[tokio::test]
async fn a_missing_or_unknown_key_is_401_with_a_challenge() {
    let s = server("").await;
    for key in [None, Some("not-a-key")] {
        let resp = modern_post(&s, key, "tools/list", None, json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert_eq!(key.is_some(), challenge.contains("invalid_token"));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], -32001);
        assert_eq!(body["error"]["data"]["code"], "unauthorized");
    }
    for rev in [Rev::Modern, Rev::Legacy] {
        assert!(try_connect(&s, "not-a-key", rev).await.is_err(), "{rev:?}");
    }
}

async fn scopes_filter_lists_and_refuse_calls(rev: Rev) {
    let s = server("").await;
    let c = connect(&s, DB_KEY, rev).await;
    let tools = c.service.list_all_tools().await.unwrap();
    let mut names: Vec<String> = tools.into_iter().map(|t| t.name.into_owned()).collect();
    names.sort();
    assert_eq!(names, ["run_database_query", "run_system_audit"]);
    let audit = call(&c, "run_system_audit", json!({"target": "x"})).await;
    assert_eq!(audit.is_error, Some(false));
    // Out of scope, existing or not: refused the same way.
    for tool in ["echo", "no_such_tool"] {
        let refused = c.service.call_tool(params(tool, json!({}))).await;
        assert!(
            matches!(
                refused,
                Err(ServiceError::TransportSend(_) | ServiceError::McpError(_))
            ),
            "{tool}: {refused:?}"
        );
    }
    c.service.cancel().await.unwrap();
}

#[tokio::test]
async fn modern_scopes_filter_lists_and_refuse_calls() {
    scopes_filter_lists_and_refuse_calls(Rev::Modern).await;
}

#[tokio::test]
async fn legacy_scopes_filter_lists_and_refuse_calls() {
    scopes_filter_lists_and_refuse_calls(Rev::Legacy).await;
}

#[tokio::test]
async fn a_call_out_of_scope_is_http_403_in_both_revisions() {
    let s = server("").await;
    let args = json!({"name": "echo", "arguments": {}});
    let resp = modern_post(&s, Some(DB_KEY), "tools/call", Some("echo"), args.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], 1);
    assert_eq!(body["error"]["code"], -32003);
    assert_eq!(body["error"]["data"]["code"], "forbidden");

    let session = open_session(&s, DB_KEY).await;
    let msg = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": args});
    let resp = legacy_post(&s, DB_KEY, Some(&session), &msg)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], 7);
}

#[tokio::test]
async fn a_session_is_bound_to_the_key_that_opened_it() {
    let s = server("").await;
    let session = open_session(&s, OPERATOR_KEY).await;
    assert_eq!(session.len(), 64, "256 bits, hex");
    assert!(session.bytes().all(|b| b.is_ascii_hexdigit()));
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});

    // Replayed under another valid key (even one with every scope): no such session.
    let resp = legacy_post(&s, OTHER_KEY, Some(&session), &list)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32004);
    assert_eq!(body["error"]["data"]["code"], "session_not_found");
    let delete = |key: &'static str| {
        s.client
            .delete(s.url("/mcp"))
            .header("X-Tool-API-Key", key)
            .header("Mcp-Session-Id", &session)
            .header("MCP-Protocol-Version", "2025-11-25")
    };
    assert_eq!(delete(OTHER_KEY).send().await.unwrap().status(), 404);

    // The owner still has it.
    let resp = legacy_post(&s, OPERATOR_KEY, Some(&session), &list)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let tools = rpc_message(&resp.text().await.unwrap());
    assert!(!tools["result"]["tools"].as_array().unwrap().is_empty());

    // Until the owner ends it.
    assert_eq!(delete(OPERATOR_KEY).send().await.unwrap().status(), 204);
    let resp = legacy_post(&s, OPERATOR_KEY, Some(&session), &list)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_browser_origin_must_be_listed() {
    let s = server("mcp_allowed_origins = [\"https://app.example.com\"]").await;
    let list = |origin: Option<&str>| {
        let req = modern_post(&s, Some(OPERATOR_KEY), "tools/list", None, json!({}));
        match origin {
            Some(o) => req.header("Origin", o),
            None => req,
        }
    };
    for bad in ["https://evil.example", "http://app.example.com", "null"] {
        let resp = list(Some(bad)).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{bad}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["data"]["code"], "forbidden");
    }
    // A bad origin is refused before the key is even looked at.
    let resp = modern_post(&s, None, "tools/list", None, json!({}))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    for good in [Some("https://app.example.com"), None] {
        assert_eq!(list(good).send().await.unwrap().status(), 200, "{good:?}");
    }
}

#[tokio::test]
async fn an_unlisted_host_is_refused() {
    let s = server("").await;
    let resp = modern_post(&s, Some(OPERATOR_KEY), "tools/list", None, json!({}))
        .header("Host", "rebound.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let s = server("mcp_allowed_hosts = [\"*\"]").await;
    let resp = modern_post(&s, Some(OPERATOR_KEY), "tools/list", None, json!({}))
        .header("Host", "rebound.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn tools_list_is_paginated() {
    let s = server("mcp_tools_page_size = 2").await;
    let first = modern_post(&s, Some(OPERATOR_KEY), "tools/list", None, json!({}));
    let page = rpc_message(&first.send().await.unwrap().text().await.unwrap());
    assert_eq!(page["result"]["tools"].as_array().unwrap().len(), 2);
    let cursor = page["result"]["nextCursor"].as_str().unwrap().to_owned();
    let next = modern_post(
        &s,
        Some(OPERATOR_KEY),
        "tools/list",
        None,
        json!({"cursor": cursor}),
    );
    let page2 = rpc_message(&next.send().await.unwrap().text().await.unwrap());
    assert_ne!(page["result"]["tools"][0], page2["result"]["tools"][0]);

    let bad = modern_post(
        &s,
        Some(OPERATOR_KEY),
        "tools/list",
        None,
        json!({"cursor": "zz"}),
    );
    let refused = rpc_message(&bad.send().await.unwrap().text().await.unwrap());
    assert_eq!(refused["error"]["code"], -32602);

    let c = connect(&s, OPERATOR_KEY, Rev::Modern).await;
    let all = c.service.list_all_tools().await.unwrap();
    assert_eq!(all.len(), s.state.registry.tools().len());
    c.service.cancel().await.unwrap();
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let s = server("body_limit_bytes = 2048").await;
    let big = json!({"name": "echo", "arguments": {"pad": "x".repeat(4096)}});
    let resp = modern_post(&s, Some(OPERATOR_KEY), "tools/call", Some("echo"), big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let c = connect(&s, OPERATOR_KEY, Rev::Modern).await;
    let small = call(&c, "echo", json!({"pad": "x"})).await;
    assert_eq!(text_json(&small), json!({"pad": "x"}));
    c.service.cancel().await.unwrap();
}

#[tokio::test]
async fn a_loopback_server_accepts_loopback_origins_by_default() {
    // The test server listens on 127.0.0.1 and lists no origins.
    let s = server("").await;
    let list = |origin: &str| {
        modern_post(&s, Some(OPERATOR_KEY), "tools/list", None, json!({})).header("Origin", origin)
    };
    for good in [
        "http://localhost:6274",
        "http://127.0.0.1:5173",
        "http://[::1]:3000",
    ] {
        assert_eq!(list(good).send().await.unwrap().status(), 200, "{good}");
    }
    for bad in [
        "https://evil.example",
        "http://localhost.evil.example",
        "null",
    ] {
        assert_eq!(list(bad).send().await.unwrap().status(), 403, "{bad}");
    }
}
