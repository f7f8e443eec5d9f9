//! `sql` tools: checks at build time, binding, defaults, schema, destructive writes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{ctx, demo, file_source, params, scalar};
use serde_json::json;
use toolgate_config::LoadedConfig;
use toolgate_core::{ErrorKind, Tool};
use toolgate_tool_sql::StatementTool;

#[tokio::test]
async fn the_demo_configs_top_customers_returns_rows() {
    let loaded = LoadedConfig::demo().unwrap();
    let tool_cfg = loaded
        .config
        .tools
        .iter()
        .find(|t| t.name.get_ref() == "top_customers")
        .unwrap();
    let statement = tool_cfg.statement.as_ref().unwrap().get_ref();
    let source = demo(false);
    let tool = StatementTool::new(source, statement, &tool_cfg.params, 1000, false).unwrap();
    let out = tool.call(json!({"country": "DE"}), ctx()).await.unwrap();
    assert_eq!(
        out["columns"],
        json!(["id", "name", "country", "total_spent"])
    );
    let rows = out["rows"].as_array().unwrap();
    // `limit` defaults to 5.
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r[2] == json!("DE")));
    let spent: Vec<f64> = rows.iter().map(|r| r[3].as_f64().unwrap()).collect();
    assert!(spent.windows(2).all(|w| w[0] >= w[1]), "{spent:?}");
    let out = tool
        .call(json!({"country": "FR", "limit": 2}), ctx())
        .await
        .unwrap();
    assert_eq!(out["rows"].as_array().unwrap().len(), 2);
    assert_eq!(out["rows"][0][2], json!("FR"));
}

#[tokio::test]
async fn params_are_bound_with_defaults_and_null() {
    let source = demo(false);
    let ps = params(
        r#"[
        { name = "country", type = "string" },
        { name = "min_id", type = "integer", default = 10 },
        { name = "active", type = "boolean", default = true },
        { name = "ratio", type = "number", default = 0.5 },
        { name = "note", type = "string", required = false },
    ]"#,
    );
    let sql = "SELECT :country, :min_id, :active, :ratio, :note, \
               (SELECT count(*) FROM customers WHERE country = :country AND id >= :min_id)";
    let tool = StatementTool::new(source, sql, &ps, 10, false).unwrap();
    let out = tool.call(json!({"country": "DE"}), ctx()).await.unwrap();
    let row = &out["rows"][0];
    assert_eq!(row[0], json!("DE"));
    assert_eq!(row[1], json!(10));
    assert_eq!(row[2], json!(1));
    assert_eq!(row[3], json!(0.5));
    assert_eq!(row[4], json!(null));
    assert!(row[5].as_i64().unwrap() > 0);
    // An injection attempt is just a string that matches no country.
    let out = tool
        .call(
            json!({"country": "DE' OR '1'='1", "active": false, "note": "x"}),
            ctx(),
        )
        .await
        .unwrap();
    assert_eq!(out["rows"][0][2], json!(0));
    assert_eq!(out["rows"][0][4], json!("x"));
    assert_eq!(out["rows"][0][5], json!(0));
}

#[tokio::test]
async fn undeclared_unused_and_positional_params_are_refused_at_build() {
    let source = demo(false);
    let one = params(r#"[{ name = "country", type = "string" }]"#);
    let none = params("[]");
    let build = |sql: &str, ps: &[toolgate_config::ParamConfig]| {
        StatementTool::new(Arc::clone(&source), sql, ps, 10, false).map(|_| ())
    };
    let err = build("SELECT * FROM customers WHERE id = :id", &none).unwrap_err();
    assert!(err.contains(":id") && err.contains("not declared"), "{err}");
    let err = build("SELECT * FROM customers", &one).unwrap_err();
    assert!(
        err.contains("country") && err.contains("does not use"),
        "{err}"
    );
    let err = build("SELECT * FROM customers WHERE id = ?", &none).unwrap_err();
    assert!(err.contains("positional"), "{err}");
    let err = build("SELECT * FROM customers WHERE id = @id", &none).unwrap_err();
    assert!(err.contains("@id"), "{err}");
    let err = build("SELECT * FROM nowhere", &none).unwrap_err();
    assert!(err.contains("no such table"), "{err}");
    let err = build("SELECT 1; SELECT 2", &none).unwrap_err();
    assert!(err.contains("only one statement"), "{err}");
    let err = build("DELETE FROM customers", &none).unwrap_err();
    assert!(err.contains("destructive"), "{err}");
    let dup = params(r#"[{ name = "a", type = "string" }, { name = "a", type = "string" }]"#);
    let err = build("SELECT :a", &dup).unwrap_err();
    assert!(err.contains("twice"), "{err}");
    let bad_default = params(r#"[{ name = "a", type = "integer", default = "x" }]"#);
    let err = build("SELECT :a", &bad_default).unwrap_err();
    assert!(err.contains("default"), "{err}");
    // A writing tool needs the source's read-write connection.
    let err =
        StatementTool::new(Arc::clone(&source), "DELETE FROM orders", &none, 10, true).unwrap_err();
    assert!(err.contains("read-write"), "{err}");
}

#[test]
fn the_input_schema_follows_the_params() {
    let ps = params(
        r#"[
        { name = "country", type = "string", description = "ISO code", max_length = 2 },
        { name = "limit", type = "integer", default = 5, minimum = 1, maximum = 100 },
        { name = "status", type = "string", enum = ["paid", "shipped"], required = false },
        { name = "flag", type = "boolean", default = false, required = true },
        { name = "ratio", type = "number", minimum = 0.5 },
    ]"#,
    );
    let schema = StatementTool::input_schema(&ps);
    assert_eq!(
        schema,
        json!({
            "type": "object",
            "properties": {
                "country": {"type": "string", "description": "ISO code", "maxLength": 2},
                "limit": {"type": "integer", "default": 5, "minimum": 1, "maximum": 100},
                "status": {"type": "string", "enum": ["paid", "shipped"]},
                "flag": {"type": "boolean", "default": false},
                "ratio": {"type": "number", "minimum": 0.5}
            },
            "required": ["country", "flag", "ratio"],
            "additionalProperties": false
        })
    );
}

#[tokio::test]
async fn a_destructive_statement_writes_and_reports_rows_affected() {
    let source = demo(true);
    let ps =
        params(r#"[{ name = "status", type = "string" }, { name = "before", type = "string" }]"#);
    let tool = StatementTool::new(
        Arc::clone(&source),
        "UPDATE orders SET status = :status WHERE status = 'pending' AND ordered_at < :before",
        &ps,
        10,
        true,
    )
    .unwrap();
    let pending = scalar(
        &source,
        "SELECT count(*) FROM orders WHERE status = 'pending'",
    )
    .await;
    assert!(pending.as_i64().unwrap() > 0);
    let out = tool
        .call(
            json!({"status": "cancelled", "before": "2100-01-01"}),
            ctx(),
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        json!({"columns": [], "rows": [], "truncated": false, "rows_affected": pending})
    );
    // The read-only pool sees the committed change.
    let left = scalar(
        &source,
        "SELECT count(*) FROM orders WHERE status = 'pending'",
    )
    .await;
    assert_eq!(left, json!(0));
    // A constraint violation is the arguments' fault, and rolls back.
    let by_id = params(r#"[{ name = "status", type = "string" }]"#);
    let tool = StatementTool::new(
        Arc::clone(&source),
        "UPDATE orders SET status = :status WHERE id <= 3",
        &by_id,
        10,
        true,
    )
    .unwrap();
    let before = scalar(
        &source,
        "SELECT group_concat(status) FROM orders WHERE id <= 3",
    )
    .await;
    let err = tool
        .call(json!({"status": "lost"}), ctx())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArguments, "{err:?}");
    assert!(
        err.errors[0].message.contains("CHECK constraint"),
        "{err:?}"
    );
    let after = scalar(
        &source,
        "SELECT group_concat(status) FROM orders WHERE id <= 3",
    )
    .await;
    assert_eq!(before, after);
    let out = tool
        .call(json!({"status": "delivered"}), ctx())
        .await
        .unwrap();
    assert_eq!(out["rows_affected"], json!(3));
}

#[tokio::test]
async fn the_writer_still_refuses_attach_and_returns_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.sqlite3");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);")
        .unwrap();
    drop(conn);
    let source = file_source(&path, true);
    let none = params("[]");
    let other = dir.path().join("other.sqlite3");
    let err = StatementTool::new(
        Arc::clone(&source),
        &format!("ATTACH '{}' AS other", other.display()),
        &none,
        10,
        true,
    )
    .unwrap_err();
    assert!(err.contains("refused"), "{err}");
    let body = params(r#"[{ name = "body", type = "string" }]"#);
    let insert = StatementTool::new(
        Arc::clone(&source),
        "INSERT INTO notes (body) VALUES (:body) RETURNING id, body",
        &body,
        10,
        true,
    )
    .unwrap();
    let out = insert.call(json!({"body": "hello"}), ctx()).await.unwrap();
    assert_eq!(
        out,
        json!({"columns": ["id", "body"], "rows": [[1, "hello"]], "truncated": false})
    );
    assert_eq!(
        scalar(&source, "SELECT body FROM notes").await,
        json!("hello")
    );
}
