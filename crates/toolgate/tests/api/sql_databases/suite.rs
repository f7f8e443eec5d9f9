//! Binding, read-only enforcement, the row cap and errors, on every database.

use serde_json::{Value, json};

use super::{Db, Fixture, ok, query_tool, rows, sql_tool, with_table};
use crate::{expect_problem, read};

/// The shared table: three people.
const PEOPLE: &str = "id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, note TEXT";

/// Seeds the table and returns a server with the suite's tools on it.
async fn people(fx: &Fixture, extra_tools: &str) -> toolgate_test_support::TestServer {
    fx.exec("INSERT INTO {t} (id, name, note) VALUES (1, 'alice', 'a'), (2, 'bob', 'b'), (3, 'carol', 'c')")
        .await;
    let tools = [
        sql_tool(
            "find",
            "SELECT id, name FROM {t} WHERE name = :name ORDER BY id",
            r#"[{ name = "name", type = "string" }]"#,
            "",
        ),
        sql_tool(
            "set_note",
            "UPDATE {t} SET note = :note WHERE id = :id",
            r#"[{ name = "note", type = "string" }, { name = "id", type = "integer" }]"#,
            "destructive = true",
        ),
        query_tool("q", ""),
        extra_tools.to_owned(),
    ];
    fx.serve("", &tools.concat()).await
}

/// Every row of the table, in id order.
async fn dump(s: &toolgate_test_support::TestServer, fx: &Fixture) -> Value {
    rows(
        s,
        "q",
        &format!("SELECT id, name, note FROM {} ORDER BY id", fx.table),
    )
    .await
}

fn original() -> Value {
    json!([[1, "alice", "a"], [2, "bob", "b"], [3, "carol", "c"]])
}

/// Injection payloads, as parameters, are data: they match nothing, and stored they
/// come back byte for byte, with every other row untouched.
pub async fn injection_payloads_leave_the_data_unchanged(db: Db) {
    with_table(db, PEOPLE, |fx| async move {
        let s = people(&fx, "").await;
        let t = &fx.table;
        let payloads = [
            "alice' OR '1'='1".to_owned(),
            "' OR 1=1 --".to_owned(),
            format!("'; DROP TABLE {t}; --"),
            format!("alice'); DELETE FROM {t}; --"),
            "alice\\' OR 1=1 #".to_owned(),
            "$$ OR true $$".to_owned(),
            format!("\"; DROP TABLE {t}; --"),
            "`id` OR 1 = 1".to_owned(),
            ":name".to_owned(),
            "? OR 1=1".to_owned(),
            "$1 OR 1=1".to_owned(),
            "ünï \\x00 /* */ -- \\".to_owned(),
        ];
        for p in &payloads {
            let found = ok(&s, "find", json!({ "name": p })).await;
            assert_eq!(found["rows"], json!([]), "{p:?} matched: {found}");
            let out = ok(&s, "set_note", json!({ "note": p, "id": 2 })).await;
            assert_eq!(out["rows_affected"], 1, "{p:?}: {out}");
            let all = dump(&s, &fx).await;
            assert_eq!(all[1], json!([2, "bob", p]), "{p:?}");
            assert_eq!(all[0], original()[0]);
            assert_eq!(all[2], original()[2]);
        }
        // The schema refuses what is not an integer before any SQL runs.
        let resp = s
            .call("set_note", &json!({"note": "x", "id": "2 OR 1=1"}))
            .send()
            .await
            .unwrap();
        expect_problem(resp, 422, "invalid_arguments").await;
        assert_eq!(
            ok(&s, "find", json!({"name": "alice"})).await["rows"],
            json!([[1, "alice"]])
        );
    })
    .await;
}

/// Writes through read-only tools are refused by the database and change nothing.
pub async fn writes_in_read_only_tools_fail(db: Db) {
    with_table(db, PEOPLE, |fx| async move {
        let s = people(&fx, "").await;
        let t = &fx.table;
        let attempts = [
            format!("DELETE FROM {t}"),
            format!("UPDATE {t} SET name = 'mallory'"),
            format!("INSERT INTO {t} (id, name) VALUES (9, 'mallory')"),
            format!("DROP TABLE {t}"),
            format!("CREATE TABLE {t}_x (a INTEGER)"),
            format!("ALTER TABLE {t} ADD COLUMN z INTEGER"),
            format!("CREATE INDEX {t}_i ON {t} (name)"),
        ];
        for sql in &attempts {
            let resp = s.call("q", &json!({ "query": sql })).send().await.unwrap();
            let body = expect_problem(resp, 422, "invalid_arguments").await;
            assert_eq!(body["errors"][0]["pointer"], "/query", "{sql}: {body}");
            let message = body["errors"][0]["message"].as_str().unwrap();
            assert!(message.contains("read-only"), "{sql}: {message}");
        }
        let resp = s
            .call("q", &json!({"query": format!("SELECT 1; DELETE FROM {t}")}))
            .send()
            .await
            .unwrap();
        let body = expect_problem(resp, 422, "invalid_arguments").await;
        assert_eq!(
            body["errors"][0]["message"],
            "only one statement is allowed"
        );
        assert_eq!(dump(&s, &fx).await, original());
        // A declared statement that writes, on a tool that is not destructive.
        let wipe = sql_tool("wipe", "DELETE FROM {t}", "[]", "");
        if db == Db::Sqlite {
            // SQLite knows at load time.
            let config = format!("{}{wipe}", fx.source("")).replace("{t}", t);
            let err = toolgate_test_support::TestServer::spawn(&config)
                .await
                .err()
                .unwrap();
            assert!(err.to_string().contains("destructive"), "{err}");
        } else {
            // The server databases find out when it runs, and refuse.
            let w = fx.serve("", &wipe).await;
            let body = expect_problem(
                w.call("wipe", &json!({})).send().await.unwrap(),
                500,
                "tool_error",
            )
            .await;
            assert!(
                body["detail"].as_str().unwrap().contains("destructive"),
                "{body}"
            );
        }
        assert_eq!(dump(&s, &fx).await, original());
    })
    .await;
}

/// At most `max_rows` rows, `truncated` when there were more; a result cut short
/// does not wedge the pool (one connection here).
pub async fn the_row_cap_truncates_and_the_pool_survives(db: Db) {
    with_table(db, PEOPLE, |fx| async move {
        let s = fx
            .serve("pool_size = 1", &query_tool("q", "max_rows = 5"))
            .await;
        let many = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                    WHERE i < 50000) SELECT i FROM n";
        for _ in 0..3 {
            let out = ok(&s, "q", json!({ "query": many })).await;
            assert_eq!(out["rows"], json!([[1], [2], [3], [4], [5]]));
            assert_eq!(out["truncated"], true);
            assert_eq!(out["columns"], json!(["i"]));
        }
        let out = ok(&s, "q", json!({ "query": format!("{many} LIMIT 5") })).await;
        assert_eq!(out["truncated"], false);
        // An empty result still names its columns.
        let out = ok(
            &s,
            "q",
            json!({ "query": format!("SELECT id, name FROM {} WHERE id < 0", fx.table) }),
        )
        .await;
        assert_eq!(
            out,
            json!({"columns": ["id", "name"], "rows": [], "truncated": false})
        );
        let (status, _, body) = read(s.get("/readyz").send().await.unwrap()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["checks"]["source:db"], "ok");
    })
    .await;
}

/// `max_result_bytes` cuts a result while its rows are read: the rows that fit, then
/// `truncated` with the reason; the caller gets a small answer, never the whole.
pub async fn the_byte_cap_cuts_huge_results(db: Db) {
    with_table(db, PEOPLE, |fx| async move {
        let s = fx
            .serve("", &query_tool("q", "max_result_bytes = 1048576"))
            .await;
        let big = match db {
            Db::Sqlite => "hex(zeroblob(200000))",
            _ => "repeat('x', 400000)",
        };
        let query = format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 8) \
             SELECT i, {big} AS b FROM n"
        );
        let resp = s.call("q", &json!({ "query": query })).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        assert!(text.len() < 1024 * 1024 + 4096, "{} bytes", text.len());
        let body: Value = serde_json::from_str(&text).unwrap();
        let out = &body["output"];
        assert_eq!(out["truncated"], true);
        assert_eq!(out["truncated_reason"], "max_result_bytes");
        assert_eq!(out["rows"].as_array().unwrap().len(), 2, "two 400 kB rows fit in 1 MiB");
        // The row cap still says which cap it was.
        let small = ok(
            &s,
            "q",
            json!({ "query": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) SELECT i FROM n" }),
        )
        .await;
        assert_eq!(small["truncated_reason"], "max_rows");
    })
    .await;
}

/// The caller's SQL errors are `invalid_arguments` at `/query`, with the database's
/// own message.
pub async fn bad_sql_is_the_callers_error(db: Db) {
    with_table(db, PEOPLE, |fx| async move {
        let s = fx.serve("", &query_tool("q", "")).await;
        let positional = match db {
            Db::Postgres => format!("SELECT * FROM {} WHERE id = $1", fx.table),
            _ => format!("SELECT * FROM {} WHERE id = ?", fx.table),
        };
        let cases = [
            ("SELEC 1", "syntax"),
            ("SELECT * FROM nowhere_at_all", "nowhere_at_all"),
            ("SELECT 1; SELECT 2", "only one statement"),
            ("-- nothing", "no SQL statement"),
            (positional.as_str(), "parameters"),
        ];
        for (sql, needle) in cases {
            let resp = s.call("q", &json!({ "query": sql })).send().await.unwrap();
            let body = expect_problem(resp, 422, "invalid_arguments").await;
            assert_eq!(body["errors"][0]["pointer"], "/query", "{sql}: {body}");
            let message = body["errors"][0]["message"].as_str().unwrap();
            assert!(message.contains(needle), "{sql}: {message}");
        }
    })
    .await;
}

/// A destructive tool commits; a constraint violation is the arguments' fault and
/// rolls back.
pub async fn destructive_tools_commit_or_roll_back(db: Db) {
    with_table(db, PEOPLE, |fx| async move {
        let add = sql_tool(
            "add",
            "INSERT INTO {t} (id, name, note) VALUES (:id, :name, :note)",
            r#"[{ name = "id", type = "integer" }, { name = "name", type = "string" },
                { name = "note", type = "string", required = false }]"#,
            "destructive = true",
        );
        let s = people(&fx, &add).await;
        let out = ok(&s, "add", json!({"id": 4, "name": "dave"})).await;
        assert_eq!(
            out,
            json!({"columns": [], "rows": [], "truncated": false, "rows_affected": 1})
        );
        let resp = s
            .call("add", &json!({"id": 1, "name": "again"}))
            .send()
            .await
            .unwrap();
        let body = expect_problem(resp, 422, "invalid_arguments").await;
        assert!(
            !body["errors"][0]["message"].as_str().unwrap().is_empty(),
            "{body}"
        );
        let all = dump(&s, &fx).await;
        assert_eq!(all.as_array().unwrap().len(), 4, "{all}");
        assert_eq!(all[3], json!([4, "dave", null]));
    })
    .await;
}

/// A database that refuses us does not stop the server (pools connect lazily): it
/// shows in `/readyz`, and calls answer `502 upstream_error`. Neither says who we
/// tried to log in as.
pub async fn an_unreachable_database_is_reported_not_fatal(db: Db) {
    if !db.available() {
        return;
    }
    let url = match db {
        Db::Postgres => "postgres://no_such_user_tg@127.0.0.1:5432/test",
        _ => "mysql://no_such_user_tg@127.0.0.1:3306/test",
    };
    let kind = if db == Db::Postgres {
        "postgres"
    } else {
        "mysql"
    };
    let config = format!(
        "[sources.db]\nkind = \"{kind}\"\nurl = \"{url}\"\n{}",
        query_tool("q", "")
    );
    let s = toolgate_test_support::TestServer::spawn(&config)
        .await
        .unwrap();
    let (status, _, body) = read(s.get("/readyz").send().await.unwrap()).await;
    assert_eq!(status, 503, "{body}");
    let check = body["checks"]["source:db"].as_str().unwrap();
    assert!(check.starts_with("failing:"), "{check}");
    let resp = s
        .call("q", &json!({"query": "SELECT 1"}))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(resp, 502, "upstream_error").await;
    for text in [check.to_owned(), problem.to_string()] {
        assert!(!text.contains("no_such_user"), "{text}");
    }
    // A source without its url is a config problem, at its line.
    let err =
        toolgate_test_support::TestServer::spawn(&format!("\n[sources.db]\nkind = \"{kind}\"\n"))
            .await
            .err()
            .unwrap()
            .to_string();
    assert!(err.contains(":2:") && err.contains("needs `url`"), "{err}");
}

/// A statement cached on a pooled connection still works after its table changed
/// shape (PostgreSQL refuses the stale plan; the tool prepares it afresh).
pub async fn a_table_that_changes_shape_is_read_afresh(db: Db) {
    with_table(db, PEOPLE, |fx| async move {
        let by_id = sql_tool(
            "by_id",
            "SELECT * FROM {t} WHERE id = :id",
            r#"[{ name = "id", type = "integer" }]"#,
            "",
        );
        let s = people(&fx, &by_id).await;
        let all = format!("SELECT * FROM {} ORDER BY id", fx.table);
        for _ in 0..2 {
            assert_eq!(rows(&s, "q", &all).await[0], json!([1, "alice", "a"]));
            assert_eq!(
                ok(&s, "by_id", json!({"id": 1})).await["rows"],
                json!([[1, "alice", "a"]])
            );
        }
        fx.exec("ALTER TABLE {t} ADD COLUMN extra INTEGER").await;
        for _ in 0..2 {
            assert_eq!(rows(&s, "q", &all).await[0], json!([1, "alice", "a", null]));
            let out = ok(&s, "by_id", json!({"id": 1})).await;
            assert_eq!(out["columns"], json!(["id", "name", "note", "extra"]));
        }
    })
    .await;
}
