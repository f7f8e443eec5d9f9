//! Deadlines and cancellation stop the statement on the database server too.

use std::time::{Duration, Instant};

use serde_json::json;
use toolgate_test_support::TestServer;

use super::{Db, Fixture, ok, query_tool, rows, with_table};
use crate::{expect_problem, read};

const ANY: &str = "id INTEGER PRIMARY KEY";

/// Wait (at most `bound`) until no server session runs a statement holding
/// `marker`; SQLite has no sessions, so there is nothing to wait for.
async fn wait_stopped(s: &TestServer, db: Db, marker: &str, bound: Duration) {
    let Some(sql) = db.running_with(marker) else {
        return;
    };
    let start = Instant::now();
    loop {
        let n = rows(s, "watch", &sql).await[0][0].clone();
        if n == 0 {
            return;
        }
        assert!(
            start.elapsed() < bound,
            "{db:?}: the statement still runs on the server {:?} after its call ended",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a statement holding `marker` shows up running within 400 ms (always
/// true for SQLite, which has no sessions to look at).
async fn seen_running(s: &TestServer, db: Db, marker: &str) -> bool {
    let Some(sql) = db.running_with(marker) else {
        return true;
    };
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(400) {
        if rows(s, "watch", &sql).await[0][0] != 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn marker() -> String {
    format!("tgmark{}", &toolgate_server::trace::generate()[..12])
}

/// A ten-second statement under a one-second deadline answers `504 timeout` at
/// about one second, and is no longer running on the server right after. With the
/// source's `statement_timeout_ms`, the server stops it by itself and the single
/// pooled connection serves the next call.
pub async fn a_sleep_under_a_one_second_deadline_stops_at_one_second(db: Db) {
    with_table(db, ANY, |fx| async move {
        let tools = [
            query_tool("slow", "timeout_ms = 1000"),
            query_tool("watch", ""),
        ]
        .concat();
        let s = fx.serve("", &tools).await;
        let mark = marker();
        let start = Instant::now();
        let resp = s
            .call("slow", &json!({ "query": db.sleep_ten_seconds(&mark) }))
            .send()
            .await
            .unwrap();
        let elapsed = start.elapsed();
        expect_problem(resp, 504, "timeout").await;
        assert!(elapsed >= Duration::from_millis(900), "{db:?}: {elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{db:?}: took {elapsed:?}");
        wait_stopped(&s, db, &mark, Duration::from_secs(1)).await;
        if db != Db::Sqlite {
            server_side_timeout(&fx, db).await;
        }
    })
    .await;
}

async fn server_side_timeout(fx: &Fixture, db: Db) {
    let tools = [query_tool("slow", ""), query_tool("watch", "")].concat();
    let s = fx
        .serve("pool_size = 1\nstatement_timeout_ms = 1000", &tools)
        .await;
    let mark = marker();
    let start = Instant::now();
    let resp = s
        .call("slow", &json!({ "query": db.sleep_ten_seconds(&mark) }))
        .send()
        .await
        .unwrap();
    let elapsed = start.elapsed();
    expect_problem(resp, 504, "timeout").await;
    assert!(elapsed < Duration::from_secs(3), "{db:?}: took {elapsed:?}");
    let start = Instant::now();
    assert_eq!(rows(&s, "slow", "SELECT 1").await, json!([[1]]));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    wait_stopped(&s, db, &mark, Duration::from_secs(1)).await;
}

/// A call cancelled by a failing batch sibling stops its statement on the server
/// (the statement timeout would allow 30 s: only the cancellation stops it).
pub async fn a_cancelled_call_stops_its_statement(db: Db) {
    with_table(db, ANY, |fx| async move {
        let tools = [
            query_tool("slow", "timeout_ms = 30000"),
            query_tool("watch", ""),
            "\n[[tools]]\nname = \"nap\"\nkind = \"builtin\"\nbuiltin = \"sleep\"\ntimeout_ms = 500\n"
                .to_owned(),
        ]
        .concat();
        let s = fx.serve("", &tools).await;
        let mark = marker();
        let start = Instant::now();
        let batch = async {
            let resp = s
                .post("/api/v1/tools/execute")
                .json(&json!({"calls": [
                    {"id": "slow", "tool": "slow", "arguments": {"query": db.sleep_ten_seconds(&mark)}},
                    {"id": "nap", "tool": "nap", "arguments": {"ms": 5000}}
                ]}))
                .send()
                .await
                .unwrap();
            let out = read(resp).await;
            (out, start.elapsed())
        };
        // While the sibling naps, the statement is seen running on the server: the
        // check after the batch is not vacuous.
        let seen = seen_running(&s, db, &mark);
        let (((status, _, body), elapsed), seen) = tokio::join!(batch, seen);
        assert!(seen, "{db:?}: the statement never showed up on the server");
        assert_eq!(status, 504, "{body}");
        assert_eq!(body["data"][0]["error"]["code"], "cancelled", "{body}");
        assert!(elapsed < Duration::from_secs(2), "{db:?}: took {elapsed:?}");
        wait_stopped(&s, db, &mark, Duration::from_secs(1)).await;
        // The pool is fine afterwards.
        assert_eq!(ok(&s, "slow", json!({"query": "SELECT 2"})).await["rows"], json!([[2]]));
    })
    .await;
}
