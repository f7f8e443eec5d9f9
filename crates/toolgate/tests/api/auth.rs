//! Keys and scopes: 401 without a key, 403 for an unknown key or a tool out of
//! scope, and listings that show a key only its tools.

use serde_json::json;
use toolgate_config::DEMO_CONFIG;
use toolgate_test_support::{TestServer, key_entry};

use crate::{expect_problem, read};

const DB_KEY: &str = "tg_db_reader_key_for_tests";

async fn server() -> TestServer {
    let config = format!(
        "{DEMO_CONFIG}{}{}",
        key_entry("db-reader", DB_KEY, &["run_*", "echo"]),
        key_entry("sleeper", "tg_sleeper", &["sleep"])
    );
    TestServer::spawn(&config).await.unwrap()
}

#[tokio::test]
async fn no_key_is_401_with_www_authenticate() {
    let s = server().await;
    let resp = s.client.get(s.url("/api/v1/tools")).send().await.unwrap();
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    expect_problem(resp, 401, "unauthorized").await;
    let resp = s
        .client
        .post(s.url("/api/v1/tools/echo"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_problem(resp, 401, "unauthorized").await;
    let resp = s
        .client
        .post(s.url("/api/v1/tools/execute"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_problem(resp, 401, "unauthorized").await;
}

#[tokio::test]
async fn an_unknown_key_is_403() {
    let s = server().await;
    for (name, value) in [("X-Tool-API-Key", "nope"), ("Authorization", "Bearer nope")] {
        let resp = s
            .client
            .post(s.url("/api/v1/tools/echo"))
            .header(name, value)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        expect_problem(resp, 403, "forbidden").await;
    }
}

#[tokio::test]
async fn both_headers_carry_a_key() {
    let s = server().await;
    for (name, value) in [
        ("X-Tool-API-Key", DB_KEY.to_owned()),
        ("Authorization", format!("Bearer {DB_KEY}")),
    ] {
        let resp = s
            .client
            .post(s.url("/api/v1/tools/echo"))
            .header(name, value)
            .json(&json!({"x": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
}

#[tokio::test]
async fn a_key_sees_and_calls_only_its_tools() {
    let s = server().await;
    let as_db = |path: &str| s.client.get(s.url(path)).header("X-Tool-API-Key", DB_KEY);
    let (status, _, body) = read(as_db("/api/v1/tools").send().await.unwrap()).await;
    assert_eq!(status, 200);
    let mut names: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        vec!["echo", "run_database_query", "run_system_audit"]
    );

    // Its OpenAPI view lists the same tools.
    let (_, _, doc) = read(as_db("/api/v1/openapi.json").send().await.unwrap()).await;
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/v1/tools/run_database_query"));
    assert!(!paths.contains_key("/api/v1/tools/sleep"));
    assert!(!paths.contains_key("/api/v1/tools/fail"));

    // Out of scope: 403 on describe and call, whether or not the tool exists.
    let resp = as_db("/api/v1/tools/sleep").send().await.unwrap();
    expect_problem(resp, 403, "forbidden").await;
    let resp = s
        .client
        .post(s.url("/api/v1/tools/sleep"))
        .header("X-Tool-API-Key", DB_KEY)
        .json(&json!({"ms": 1}))
        .send()
        .await
        .unwrap();
    expect_problem(resp, 403, "forbidden").await;
    let resp = as_db("/api/v1/tools/secret_tool").send().await.unwrap();
    expect_problem(resp, 403, "forbidden").await;

    // In a batch, the out-of-scope call is a 403 entry.
    let resp = s
        .client
        .post(s.url("/api/v1/tools/execute"))
        .header("X-Tool-API-Key", DB_KEY)
        .json(&json!({"mode": "all_settled", "calls": [
            {"tool": "echo", "arguments": {}},
            {"tool": "sleep", "arguments": {"ms": 1}}
        ]}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(resp).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"][0]["ok"], true);
    assert_eq!(body["data"][1]["error"]["code"], "forbidden");
}

#[tokio::test]
async fn the_operator_key_sees_everything() {
    let s = server().await;
    let (_, _, body) = read(s.get("/api/v1/tools").send().await.unwrap()).await;
    assert!(body["tools"].as_array().unwrap().len() >= 6);
}

#[tokio::test]
async fn public_routes_need_no_key() {
    let s = server().await;
    for path in ["/healthz", "/readyz", "/openapi.json", "/docs"] {
        let resp = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
}
