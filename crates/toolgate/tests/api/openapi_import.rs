//! `[sources.NAME] kind = "openapi"` against a real upstream: a second toolgate,
//! whose `/openapi.json` is the document. Its tools are imported with a prefix,
//! listed and called through REST and MCP of the first, with the upstream's answers
//! and failures mapped to the contract; the same document as a YAML file works
//! too; `toolgate check` says what was imported and what was left out.

use serde_json::{Value, json};
use toolgate_test_support::{OPERATOR_KEY, TestServer};

use crate::read;

/// Call `tool` of `s` over REST: (status, content type, body).
async fn call(s: &TestServer, tool: &str, args: &Value) -> (u16, String, Value) {
    read(s.call(tool, args).send().await.unwrap()).await
}

/// A front server whose `[sources.up]` imports the tools of `upstream`.
fn front_config(spec: &str, extra: &str) -> String {
    format!(
        "{}\n[sources.up]\nkind = \"openapi\"\nspec = \"{spec}\"\nprefix = \"up_\"\n\
         headers = {{ \"X-Tool-API-Key\" = \"{OPERATOR_KEY}\" }}\nallow_private = [\"127.0.0.1/32\"]\n\
         include = {{ paths = [\"/api/v1/tools/*\"], methods = [\"POST\"] }}\n{extra}\n",
        toolgate_config::DEMO_CONFIG
    )
}

// Two workers: the front's config is built (and the document fetched) on one while
// the upstream answers on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toolgate_is_imported_from_its_openapi_document_and_called_through_rest_and_mcp() {
    let upstream = TestServer::demo().await.unwrap();
    let spec = format!("http://{}/openapi.json", upstream.addr);
    let cfg = front_config(
        &spec,
        "[sources.up.operations.run_system_audit]\nskip = true\n\n\
         [sources.up.operations.run_database_query]\nname = \"upstream_sql\"\nread_only = true\n",
    );
    let front = TestServer::spawn(&cfg).await.unwrap();
    // Listed with their prefix, schemas and annotations.
    let (status, _, body) = read(front.get("/api/v1/tools").send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let tools = body["tools"].as_array().unwrap();
    let tool = |name: &str| tools.iter().find(|t| t["name"] == name).cloned();
    for name in ["up_echo", "up_sleep", "up_fail", "upstream_sql"] {
        assert!(tool(name).is_some(), "{name} missing: {body}");
    }
    assert!(
        tool("up_run_system_audit").is_none(),
        "skipped by its operations entry"
    );
    assert!(tool("up_run_database_query").is_none(), "renamed");
    let sleep = tool("up_sleep").unwrap();
    assert_eq!(
        sleep["input_schema"]["required"],
        json!(["body"]),
        "{sleep}"
    );
    assert_eq!(
        sleep["input_schema"]["properties"]["body"]["properties"]["ms"]["type"], "integer",
        "the upstream's own input schema is the body's: {sleep}"
    );
    assert_eq!(sleep["annotations"]["read_only"], false, "POST");
    assert_eq!(
        tool("upstream_sql").unwrap()["annotations"]["read_only"],
        true
    );
    // A call goes to the upstream, with the source's key; its answer is the output.
    let (status, _, body) = call(
        &front,
        "up_echo",
        &json!({"body": {"message": "through two gates"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["output"]["output"],
        json!({"message": "through two gates"}),
        "{body}"
    );
    let (status, _, body) = call(
        &front,
        "upstream_sql",
        &json!({"body": {"query": "SELECT 41 + 1 AS answer"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["output"]["rows"], json!([[42]]), "{body}");
    // The front's own schema refuses what the upstream would: before any request.
    let (status, _, body) = call(&front, "up_sleep", &json!({"body": {"ms": "soon"}})).await;
    assert_eq!(status, 422, "{body}");
    let (status, _, body) = call(&front, "up_sleep", &json!({"ms": 5})).await;
    assert_eq!(status, 422, "{body}");
    // The upstream's failure is the front's upstream_error.
    let (status, _, body) = call(&front, "up_fail", &json!({"body": {}})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], "upstream_error", "{body}");
    // And over MCP.
    let resp = crate::mcp::modern_post(
        &front,
        Some(OPERATOR_KEY),
        "tools/call",
        Some("up_echo"),
        json!({"name": "up_echo", "arguments": {"body": {"via": "mcp"}}}),
    )
    .send()
    .await
    .unwrap();
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("\\\"via\\\":\\\"mcp\\\"") || text.contains("\"via\":\"mcp\""),
        "{text}"
    );
    front.stop().await.unwrap();
    upstream.stop().await.unwrap();
}

#[tokio::test]
async fn a_yaml_file_imports_the_same_and_check_reports_what_was_imported_and_skipped() {
    let upstream = TestServer::demo().await.unwrap();
    let doc: Value = upstream
        .get("/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("upstream.yaml");
    std::fs::write(&yaml, yaml_serde::to_string(&doc).unwrap()).unwrap();
    let cfg = front_config(
        "upstream.yaml",
        &format!(
            "base_url = \"http://{}\"\n[sources.up.operations.fail]\nskip = true\n",
            upstream.addr
        ),
    );
    let file = dir.path().join("toolgate.toml");
    std::fs::write(&file, &cfg).unwrap();
    let out = std::process::Command::new(crate::cli::BIN)
        .args(["check", file.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("source \"up\": imported"), "{stdout}");
    assert!(stdout.contains("up_echo"), "{stdout}");
    assert!(stdout.contains("fail: skip = true"), "{stdout}");
    assert!(
        stdout.contains("not included"),
        "the fixed routes are filtered out: {stdout}"
    );
    // Served from the file.
    let front = TestServer::spawn_file(&file).await.unwrap();
    let (status, _, body) = call(&front, "up_echo", &json!({"body": {"n": 1}})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["output"], json!({"n": 1}));
    front.stop().await.unwrap();
    upstream.stop().await.unwrap();
}

#[test]
fn bad_documents_and_fields_are_reported_at_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("swagger.json"),
        r#"{"swagger": "2.0", "paths": {}}"#,
    )
    .unwrap();
    let file = dir.path().join("toolgate.toml");
    std::fs::write(
        &file,
        "[sources.old]\nkind = \"openapi\"\nspec = \"swagger.json\"\nbase_url = \"http://127.0.0.1:1\"\n\n\
         [sources.db]\nkind = \"sqlite\"\ndemo = true\nprefix = \"x_\"\n\n\
         [sources.none]\nkind = \"openapi\"\n\n\
         [[tools]]\nname = \"q\"\nkind = \"sql_query\"\nsource = \"old\"\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = std::process::Command::new(crate::cli::BIN)
        .args(["check", path])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`prefix` is only for openapi sources"),
        "{err}"
    );
    assert!(err.contains("needs `spec`"), "{err}");
    assert!(
        err.contains("is an OpenAPI source, not a database"),
        "{err}"
    );
    // The document itself is read once the fields are right.
    std::fs::write(
        &file,
        "[sources.old]\nkind = \"openapi\"\nspec = \"swagger.json\"\nbase_url = \"http://127.0.0.1:1\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(crate::cli::BIN)
        .args(["check", path])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{path}:3:")), "{err}");
    assert!(err.contains("Swagger 2.0 is not supported"), "{err}");
}
