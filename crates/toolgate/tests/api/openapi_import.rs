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
        err.contains("`prefix` is only for openapi and mcp sources"),
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

/// The FastAPI peer of `bench/compare` (a real FastAPI service, in the virtual
/// environment `make unit` makes from its lock file), on 127.0.0.1; killed on drop.
struct FastApi {
    child: std::process::Child,
    url: String,
}

impl Drop for FastApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn fastapi(key: &str) -> Option<FastApi> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join("target/bench/peer-venv/bin/python");
    if !python.exists() {
        assert!(
            std::env::var("CI").is_err(),
            "the FastAPI peer's venv (make peer-venv) is needed under CI"
        );
        eprintln!(
            "SKIPPED: no target/bench/peer-venv (make peer-venv); the FastAPI import test did not run"
        );
        return None;
    }
    let addr = toolgate_test_support::free_port().unwrap();
    let child = std::process::Command::new(python)
        .args(["-m", "uvicorn", "app:app", "--app-dir"])
        .arg(root.join("bench/compare/peer"))
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &addr.port().to_string(),
            "--log-level",
            "warning",
        ])
        .env("BENCH_PEER_KEYS", key)
        .env("BENCH_PEER_OTEL", "off")
        .env("BENCH_PEER_OPENAPI", "on")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let peer = FastApi {
        child,
        url: format!("http://{addr}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..200 {
        let up = client
            .get(format!("{}/healthz", peer.url))
            .timeout(std::time::Duration::from_secs(1))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            return Some(peer);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the FastAPI peer did not answer /healthz within 20 s");
}

/// The migration story: the FastAPI service's live `/openapi.json` imported, its
/// batch endpoint listed and called through toolgate's REST and MCP, its key kept by
/// the source, its pydantic schema (`$ref`s to its models) enforced by toolgate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fastapi_service_is_imported_from_its_live_document_and_called_through_rest_and_mcp() {
    let Some(peer) = fastapi("peer-key").await else {
        return;
    };
    let cfg = format!(
        "{}\n[sources.fa]\nkind = \"openapi\"\nspec = \"{}/openapi.json\"\nprefix = \"fa_\"\n\
         headers = {{ \"X-Tool-API-Key\" = \"peer-key\" }}\nallow_private = [\"127.0.0.1/32\"]\n",
        toolgate_config::DEMO_CONFIG,
        peer.url
    );
    let front = TestServer::spawn(&cfg).await.unwrap();
    let (status, _, body) = read(front.get("/api/v1/tools").send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let tools = body["tools"].as_array().unwrap();
    let named = |part: &str| {
        tools
            .iter()
            .find(|t| {
                t["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("fa_") && n.contains(part))
            })
            .cloned()
            .unwrap_or_else(|| panic!("no fa_ tool with {part:?}: {body}"))
    };
    let execute = named("execute");
    let healthz = named("healthz");
    assert_eq!(healthz["annotations"]["read_only"], true, "GET: {healthz}");
    assert_eq!(
        execute["annotations"]["read_only"], false,
        "POST: {execute}"
    );
    // The pydantic model, inlined: `calls` is a list of objects with `tool`.
    let calls = &execute["input_schema"]["properties"]["body"]["properties"]["calls"];
    assert_eq!(calls["type"], "array", "{execute}");
    assert!(
        calls["items"]["properties"].get("tool").is_some(),
        "{execute}"
    );
    let name = execute["name"].as_str().unwrap().to_owned();
    let batch = json!({"body": {"calls": [
        {"id": "a", "tool": "echo", "arguments": {"x": 1}},
        {"id": "b", "tool": "sleep", "arguments": {"ms": 5}}
    ]}});
    let (status, _, body) = call(&front, &name, &batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["success"], true, "{body}");
    assert_eq!(
        body["output"]["data"][0]["output"],
        json!({"x": 1}),
        "{body}"
    );
    assert_eq!(
        body["output"]["data"][1]["output"],
        json!({"slept_ms": 5}),
        "{body}"
    );
    // toolgate checks the peer's schema first: a call without `calls` never leaves.
    let (status, _, body) = call(&front, &name, &json!({"body": {"mode": "all_settled"}})).await;
    assert_eq!(status, 422, "{body}");
    let (status, _, body) = call(&front, healthz["name"].as_str().unwrap(), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["status"], "ok", "{body}");
    // Over MCP too.
    let resp = crate::mcp::modern_post(
        &front,
        Some(OPERATOR_KEY),
        "tools/call",
        Some(&name),
        json!({"name": name, "arguments": batch}),
    )
    .send()
    .await
    .unwrap();
    let text = resp.text().await.unwrap();
    assert!(text.contains("slept_ms"), "{text}");
    front.stop().await.unwrap();
    drop(peer);
}

/// A reload reads the document again: an operation added to it since the start is
/// served after the next reload of the config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reads_the_document_again() {
    let upstream = TestServer::demo().await.unwrap();
    let mut doc: Value = upstream
        .get("/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let full = doc.clone();
    // At first the document has no echo operation.
    doc["paths"]
        .as_object_mut()
        .unwrap()
        .remove("/api/v1/tools/echo")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("upstream.json");
    std::fs::write(&spec, doc.to_string()).unwrap();
    let cfg = front_config(
        "upstream.json",
        &format!("base_url = \"http://{}\"\n", upstream.addr),
    );
    let file = dir.path().join("toolgate.toml");
    std::fs::write(&file, &cfg).unwrap();
    let front = TestServer::spawn_file(&file).await.unwrap();
    let names = |body: &Value| -> Vec<String> {
        body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, _, body) = read(front.get("/api/v1/tools").send().await.unwrap()).await;
    assert!(names(&body).contains(&"up_sleep".to_owned()), "{body}");
    assert!(!names(&body).contains(&"up_echo".to_owned()), "{body}");
    std::fs::write(&spec, full.to_string()).unwrap();
    std::fs::write(&file, format!("{cfg}\n# reloaded\n")).unwrap();
    let start = std::time::Instant::now();
    loop {
        let (_, _, body) = read(front.get("/api/v1/tools").send().await.unwrap()).await;
        if names(&body).contains(&"up_echo".to_owned()) {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the reload never served up_echo: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, _, body) = call(&front, "up_echo", &json!({"body": {"again": true}})).await;
    assert_eq!(status, 200, "{body}");
    front.stop().await.unwrap();
    upstream.stop().await.unwrap();
}
