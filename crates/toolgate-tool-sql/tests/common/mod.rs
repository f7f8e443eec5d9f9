//! Helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use toolgate_config::{ParamConfig, SourceConfig};
use toolgate_core::{CallContext, ErrorKind, Tool, ToolError};
use toolgate_tool_sql::{QueryTool, SqliteSource};

/// A `[sources.x]` table parsed the way the config loader parses it.
pub fn source_config(toml_text: &str) -> SourceConfig {
    toml::from_str(toml_text).unwrap()
}

/// The demo source, with or without the read-write connection.
pub fn demo(needs_writer: bool) -> Arc<SqliteSource> {
    demo_sized(needs_writer, 2)
}

/// The demo source with `pool_size` read-only connections.
pub fn demo_sized(needs_writer: bool, pool_size: usize) -> Arc<SqliteSource> {
    let cfg = source_config(&format!(
        "kind = \"sqlite\"\ndemo = true\npool_size = {pool_size}\n"
    ));
    SqliteSource::open("demo", &cfg, needs_writer).unwrap()
}

/// A source on an existing file.
pub fn file_source(path: &Path, needs_writer: bool) -> Arc<SqliteSource> {
    let cfg = source_config(&format!(
        "kind = \"sqlite\"\npath = {}\npool_size = 2\n",
        toml::Value::String(path.display().to_string())
    ));
    SqliteSource::open("file", &cfg, needs_writer).unwrap()
}

/// Parameters as written in a tool's `params = [...]`.
pub fn params(toml_array: &str) -> Vec<ParamConfig> {
    #[derive(serde::Deserialize)]
    struct Holder {
        params: Vec<ParamConfig>,
    }
    let holder: Holder = toml::from_str(&format!("params = {toml_array}")).unwrap();
    holder.params
}

/// A context with a generous deadline.
pub fn ctx() -> CallContext {
    CallContext::new(Instant::now() + Duration::from_secs(30))
}

/// Run `query` through a `QueryTool` with the given row cap.
pub async fn query(
    source: &Arc<SqliteSource>,
    max_rows: usize,
    sql: &str,
) -> Result<Value, ToolError> {
    QueryTool::new(Arc::clone(source), max_rows)
        .call(json!({ "query": sql }), ctx())
        .await
}

/// The single value of a one-row, one-column result.
pub async fn scalar(source: &Arc<SqliteSource>, sql: &str) -> Value {
    let out = query(source, 10, sql).await.unwrap();
    out["rows"][0][0].clone()
}

/// Assert an `invalid_arguments` error at `/query` whose message contains `needle`.
pub fn assert_query_error(result: Result<Value, ToolError>, needle: &str) {
    let err = result.expect_err("the query should fail");
    assert_eq!(err.kind, ErrorKind::InvalidArguments, "{err:?}");
    assert_eq!(err.errors.len(), 1, "{err:?}");
    assert_eq!(err.errors[0].pointer, "/query");
    assert!(
        err.errors[0].message.contains(needle),
        "{:?} does not contain {needle:?}",
        err.errors[0].message
    );
}
