//! The `wasm` tool kind through the real HTTP interface: the example tool end to
//! end, and the sandbox's guarantees with the WAT modules of
//! `crates/toolgate-tool-wasm/testdata`: a deadline stops an infinite loop, the
//! memory limit stops a bomb, traps and refused file access are `tool_error`s, and
//! 100 concurrent calls are all answered.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Value, json};
use toolgate_test_support::TestServer;

use crate::{expect_problem, read};

const TESTDATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../toolgate-tool-wasm/testdata"
);
const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/wasm/word_stats/word_stats.wasm"
);

/// A `wasm` tool named `name` running `testdata/<module>.wat`, plus `extra` lines.
fn tool(name: &str, module: &str, extra: &str) -> String {
    format!(
        "[[tools]]\nname = \"{name}\"\nkind = \"wasm\"\nmodule = \"{TESTDATA}/{module}.wat\"\n{extra}\n"
    )
}

async fn server(config: &str) -> TestServer {
    TestServer::spawn(config)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn ok(s: &TestServer, name: &str, args: &Value) -> Value {
    let (status, _, body) = read(s.call(name, args).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    body["output"].clone()
}

#[tokio::test]
async fn the_example_tool_works_end_to_end_from_a_path_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(EXAMPLE, dir.path().join("word_stats.wasm")).unwrap();
    let config = dir.path().join("toolgate.toml");
    std::fs::write(
        &config,
        r#"
[[tools]]
name = "word_stats"
kind = "wasm"
module = "word_stats.wasm"
description = "Count the words of a text."
input_schema = { type = "object", required = ["text"], properties = { text = { type = "string" }, top = { type = "integer", minimum = 0 } } }
output_schema = { type = "object", required = ["words", "top"] }
"#,
    )
    .unwrap();
    let s = TestServer::spawn_file(&config).await.unwrap();
    let out = ok(
        &s,
        "word_stats",
        &json!({"text": "the cat and the hat\nand the bat", "top": 2}),
    )
    .await;
    assert_eq!(
        out,
        json!({"lines": 2, "words": 8, "chars": 31,
               "top": [{"word": "the", "count": 3}, {"word": "and", "count": 2}]})
    );
    // The input schema is the declared one.
    let missing = s.call("word_stats", &json!({})).send().await.unwrap();
    expect_problem(missing, 422, "invalid_arguments").await;
    // Arguments that break the declared schema never reach the module.
    let wrong = s.call("word_stats", &json!({"text": 1, "top": 1}));
    let body = expect_problem(wrong.send().await.unwrap(), 422, "invalid_arguments").await;
    assert_eq!(body["errors"][0]["pointer"], "/text");
}

#[tokio::test]
async fn the_guests_own_error_is_a_tool_error_with_its_message() {
    let config = format!("[[tools]]\nname = \"ws\"\nkind = \"wasm\"\nmodule = \"{EXAMPLE}\"\n");
    let s = server(&config).await;
    let resp = s
        .call("ws", &json!({"words": "no text"}))
        .send()
        .await
        .unwrap();
    let body = expect_problem(resp, 500, "tool_error").await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("the module exited with status 1: bad arguments"),
        "{detail}"
    );
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_at_the_deadline() {
    let s = server(&(tool("spin", "loop", "timeout_ms = 300") + &tool("echo", "echo", ""))).await;
    let start = Instant::now();
    let resp = s.call("spin", &json!({})).send().await.unwrap();
    expect_problem(resp, 504, "timeout").await;
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(290), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(s.state.registry.in_flight(), 0);
    assert_eq!(
        ok(&s, "echo", &json!({"after": 1})).await,
        json!({"after": 1})
    );
}

#[tokio::test]
async fn a_cancelled_batch_sibling_stops_the_guest() {
    let config = tool("spin", "loop", "timeout_ms = 60000")
        + "[[tools]]\nname = \"fail\"\nkind = \"builtin\"\nbuiltin = \"fail\"\n";
    let s = server(&config).await;
    let start = Instant::now();
    let resp = s
        .post("/api/v1/tools/execute")
        .json(&json!({"calls": [
            {"id": "spin", "tool": "spin", "arguments": {}},
            {"id": "bad", "tool": "fail", "arguments": {}}
        ]}))
        .send()
        .await
        .unwrap();
    let (_, _, body) = read(resp).await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(body["data"][0]["error"]["code"], "cancelled", "{body}");
    assert_eq!(s.state.registry.in_flight(), 0);
}

#[tokio::test]
async fn a_memory_bomb_stops_at_the_limit_and_the_host_keeps_serving() {
    let config = tool("bomb", "bomb", "max_memory_bytes = 16777216") + &tool("echo", "echo", "");
    let s = server(&config).await;
    let start = Instant::now();
    let resp = s.call("bomb", &json!({})).send().await.unwrap();
    let body = expect_problem(resp, 500, "tool_error").await;
    assert_eq!(
        body["detail"],
        "the module exceeded its memory limit of 16777216 bytes"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    // Again, and the default limit (64 MiB) holds too.
    let s2 = server(&tool("bomb", "bomb", "")).await;
    let body = expect_problem(
        s2.call("bomb", &json!({})).send().await.unwrap(),
        500,
        "tool_error",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("67108864"));
    assert_eq!(
        ok(&s, "echo", &json!({"alive": true})).await,
        json!({"alive": true})
    );
    let health = s.get("/healthz").send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn a_trap_is_a_tool_error() {
    let s = server(&tool("trap", "trap", "")).await;
    let resp = s.call("trap", &json!({})).send().await.unwrap();
    let body = expect_problem(resp, 500, "tool_error").await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.starts_with("the module trapped:"), "{detail}");
    assert!(detail.contains("divide by zero"), "{detail}");
}

#[tokio::test]
async fn opening_a_file_is_refused_unless_its_directory_is_declared() {
    let s = server(&tool("open", "open", "")).await;
    let resp = s.call("open", &json!({})).send().await.unwrap();
    let body = expect_problem(resp, 500, "tool_error").await;
    assert_eq!(
        body["detail"],
        "the module exited with status 1: path_open refused"
    );
    // The same module, with the directory declared, may read from it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hi").unwrap();
    let extra = format!(
        "allow_dirs = [{{ host = \"{}\", guest = \"/data\" }}]",
        dir.path().display()
    );
    let s = server(&tool("open", "open", &extra)).await;
    assert_eq!(ok(&s, "open", &json!({})).await, json!({"opened": true}));
}

#[tokio::test]
async fn the_clock_is_frozen_unless_allowed() {
    let config = tool("frozen", "clock", "") + &tool("real", "clock", "allow_clock = true");
    let s = server(&config).await;
    assert_eq!(ok(&s, "frozen", &json!({})).await, json!({"frozen": true}));
    assert_eq!(ok(&s, "real", &json!({})).await, json!({"frozen": false}));
}

#[tokio::test]
async fn a_hundred_concurrent_calls_are_all_answered() {
    let s = server(&tool("echo", "echo", "max_concurrency = 100")).await;
    let calls = (0..100).map(|i| {
        let req = s.call("echo", &json!({"i": i, "pad": "x".repeat(i * 10)}));
        async move { (i, read(req.send().await.unwrap()).await) }
    });
    for (i, (status, _, body)) in join_all(calls).await {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["output"], json!({"i": i, "pad": "x".repeat(i * 10)}));
    }
    assert_eq!(s.state.registry.in_flight(), 0);
}

#[tokio::test]
async fn output_that_breaks_the_output_schema_is_a_tool_error() {
    let s = server(&tool(
        "echo",
        "echo",
        "output_schema = { type = \"object\", required = [\"n\"] }",
    ))
    .await;
    assert_eq!(ok(&s, "echo", &json!({"n": 1})).await, json!({"n": 1}));
    let resp = s.call("echo", &json!({"m": 1})).send().await.unwrap();
    let body = expect_problem(resp, 500, "tool_error").await;
    assert!(
        body["detail"].as_str().unwrap().contains("output schema"),
        "{body}"
    );
}

#[tokio::test]
async fn a_module_that_cannot_load_is_a_problem_at_its_line() {
    let config = "[[tools]]\nname = \"gone\"\nkind = \"wasm\"\nmodule = \"/nonexistent/x.wasm\"\n";
    let err = TestServer::spawn(config).await.err().unwrap().to_string();
    assert!(err.starts_with("<test>:4:"), "{err}");
    assert!(
        err.contains("cannot read module /nonexistent/x.wasm"),
        "{err}"
    );
    let not_wasm = format!(
        "[[tools]]\nname = \"bad\"\nkind = \"wasm\"\nmodule = \"{}\"\n",
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")
    );
    let err = TestServer::spawn(&not_wasm)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("does not compile"), "{err}");
}
