//! `sql_query`: the demo database, value mapping, read-only enforcement, row cap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{assert_query_error, demo, file_source, query, scalar};
use serde_json::json;
use toolgate_tool_sql::{QueryTool, rows_output_schema};

#[tokio::test]
async fn the_demo_database_has_the_shop_tables_and_over_a_thousand_rows() {
    let source = demo(false);
    let mut total = 0;
    for (table, at_least) in [
        ("customers", 100),
        ("products", 20),
        ("orders", 500),
        ("order_items", 1000),
        ("support_tickets", 50),
    ] {
        let n = scalar(&source, &format!("SELECT count(*) FROM {table}")).await;
        let n = n.as_i64().unwrap();
        assert!(n >= at_least, "{table} has {n} rows");
        total += n;
    }
    assert!(total >= 1000, "{total} rows in total");
    let statuses = query(&source, 10, "SELECT DISTINCT status FROM orders ORDER BY 1")
        .await
        .unwrap();
    assert_eq!(
        statuses["rows"],
        json!([
            ["cancelled"],
            ["delivered"],
            ["paid"],
            ["pending"],
            ["shipped"]
        ])
    );
    let range = query(
        &source,
        1,
        "SELECT min(ordered_at), max(ordered_at) FROM orders",
    )
    .await
    .unwrap();
    assert!(range["rows"][0][0].as_str().unwrap().starts_with("2025-"));
    assert!(range["rows"][0][1].as_str().unwrap().starts_with("2026-"));
}

#[tokio::test]
async fn schema_introspection_is_allowed() {
    let source = demo(false);
    let out = query(
        &source,
        50,
        "SELECT name FROM pragma_table_info('customers')",
    )
    .await
    .unwrap();
    let names: Vec<_> = out["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].clone())
        .collect();
    assert!(names.contains(&json!("country")));
    let out = query(&source, 50, "PRAGMA table_info(orders)")
        .await
        .unwrap();
    assert!(!out["rows"].as_array().unwrap().is_empty());
    let out = query(
        &source,
        50,
        "SELECT name FROM sqlite_schema WHERE type = 'table'",
    )
    .await
    .unwrap();
    assert_eq!(out["rows"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn values_map_to_json_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("types.sqlite3");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n);
         INSERT INTO t VALUES (42, 2.5, 'häh', x'00FF10', NULL);",
    )
    .unwrap();
    drop(conn);
    let source = file_source(&path, false);
    let out = query(&source, 10, "SELECT i, r, s, b, n, 1e999 AS inf FROM t")
        .await
        .unwrap();
    assert_eq!(
        out,
        json!({
            "columns": ["i", "r", "s", "b", "n", "inf"],
            "rows": [[42, 2.5, "häh", "AP8Q", null, null]],
            "truncated": false
        })
    );
}

#[tokio::test]
async fn writes_are_refused_by_sqlite_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.sqlite3");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE t (x INTEGER); CREATE INDEX t_x ON t (x); INSERT INTO t VALUES (1), (2);",
    )
    .unwrap();
    drop(conn);
    // Also with a writer on the source: QueryTool must never reach it.
    let source = file_source(&path, true);
    let other = dir.path().join("other.sqlite3");
    let attempts = [
        "INSERT INTO t VALUES (3)".to_owned(),
        "UPDATE t SET x = 9".to_owned(),
        "DELETE FROM t".to_owned(),
        "DROP TABLE t".to_owned(),
        "CREATE TABLE u (y)".to_owned(),
        "CREATE TEMP TABLE u (y)".to_owned(),
        format!("ATTACH DATABASE '{}' AS other", other.display()),
        format!("VACUUM INTO '{}'", other.display()),
        "PRAGMA query_only = 0".to_owned(),
        "PRAGMA query_only".to_owned(),
        "PRAGMA database_list".to_owned(),
        "BEGIN".to_owned(),
        "SAVEPOINT s".to_owned(),
        "ANALYZE".to_owned(),
        "REINDEX".to_owned(),
        "WITH d AS (SELECT 1) DELETE FROM t".to_owned(),
    ];
    for sql in &attempts {
        let result = query(&source, 10, sql).await;
        assert!(result.is_err(), "{sql} was allowed");
        assert_query_error(result, "read-only");
    }
    assert_query_error(
        query(&source, 10, "SELECT load_extension('x')").await,
        "not authorized to use function",
    );
    assert_query_error(
        query(&source, 10, "SELECT 1; DELETE FROM t").await,
        "only one statement is allowed",
    );
    assert_query_error(
        query(&source, 10, "SELECT 1; SELECT 2").await,
        "only one statement is allowed",
    );
    assert!(!other.exists(), "a refused statement created a file");
    let out = query(&source, 10, "SELECT x FROM t ORDER BY x")
        .await
        .unwrap();
    assert_eq!(out["rows"], json!([[1], [2]]));
    // A trailing semicolon and comment are not a second statement.
    let out = query(&source, 10, "SELECT count(*) FROM t; -- done\n")
        .await
        .unwrap();
    assert_eq!(out["rows"], json!([[2]]));
}

#[tokio::test]
async fn bad_sql_is_the_callers_error_with_sqlites_message() {
    let source = demo(false);
    assert_query_error(query(&source, 10, "SELEC 1").await, "syntax error");
    assert_query_error(
        query(&source, 10, "SELECT * FROM nowhere").await,
        "no such table",
    );
    assert_query_error(query(&source, 10, "-- nothing").await, "no SQL statement");
    assert_query_error(
        query(&source, 10, "SELECT * FROM customers WHERE id = ?").await,
        "parameters",
    );
}

#[tokio::test]
async fn the_row_cap_truncates() {
    let source = demo(false);
    let out = query(&source, 5, "SELECT id FROM customers ORDER BY id")
        .await
        .unwrap();
    assert_eq!(out["rows"], json!([[1], [2], [3], [4], [5]]));
    assert_eq!(out["truncated"], json!(true));
    let out = query(&source, 5, "SELECT id FROM customers ORDER BY id LIMIT 5")
        .await
        .unwrap();
    assert_eq!(out["rows"].as_array().unwrap().len(), 5);
    assert_eq!(out["truncated"], json!(false));
}

#[tokio::test]
async fn schemas_have_the_documented_shape() {
    let input = QueryTool::input_schema();
    assert_eq!(input["required"], json!(["query"]));
    assert_eq!(input["additionalProperties"], json!(false));
    assert_eq!(input["properties"]["query"]["type"], json!("string"));
    let output = rows_output_schema();
    assert_eq!(output["required"], json!(["columns", "rows", "truncated"]));
    assert!(!QueryTool::description().is_empty());
}
