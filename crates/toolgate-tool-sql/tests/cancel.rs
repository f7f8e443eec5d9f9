//! Cancellation, deadlines and dropped calls really stop SQLite, and the pool survives.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{ctx, demo, demo_sized, params, query};
use serde_json::json;
use tokio::time::Instant;
use toolgate_core::{CallContext, ErrorKind, Tool};
use toolgate_tool_sql::{QueryTool, SqliteSource, StatementTool};

const ENDLESS: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                       WHERE x < 1000000000) SELECT count(*) FROM c";

/// Every pooled connection still answers, soon: with a pool of one, a query that kept
/// running after its call ended would block these for minutes.
async fn pool_still_works(source: &Arc<SqliteSource>) {
    let calls = (0..4).map(|_| {
        let source = Arc::clone(source);
        async move { query(&source, 10, "SELECT count(*) FROM orders").await }
    });
    for out in futures_lite(calls).await {
        assert_eq!(out.unwrap()["rows"][0][0], json!(800));
    }
    source.check().await.unwrap();
}

/// Run futures concurrently without pulling in a futures crate.
async fn futures_lite<F: std::future::Future + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_a_long_query_quickly() {
    let source = demo_sized(false, 1);
    let tool = QueryTool::new(Arc::clone(&source), 10);
    let ctx = ctx();
    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
    });
    let started = std::time::Instant::now();
    let err = tool.call(json!({"query": ENDLESS}), ctx).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Cancelled, "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    pool_still_works(&source).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_deadline_times_out() {
    let source = demo_sized(false, 1);
    let tool = QueryTool::new(Arc::clone(&source), 10);
    let started = std::time::Instant::now();
    let ctx = CallContext::new(Instant::now() + Duration::from_millis(300));
    let err = tool.call(json!({"query": ENDLESS}), ctx).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout, "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    pool_still_works(&source).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_calls_free_every_connection() {
    let source = demo(false);
    // More abandoned calls than connections: each must be stopped for the next to run.
    for _ in 0..3 {
        let call = query(&source, 10, ENDLESS);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), call)
                .await
                .is_err()
        );
    }
    let started = std::time::Instant::now();
    pool_still_works(&source).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_tools_honour_the_deadline_too() {
    let source = demo_sized(false, 1);
    let ps = params(r#"[{ name = "n", type = "integer" }]"#);
    let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) \
               SELECT count(*) FROM c";
    let tool = StatementTool::new(Arc::clone(&source), sql, &ps, 10, false).unwrap();
    let ctx = CallContext::new(Instant::now() + Duration::from_millis(300));
    let err = tool
        .call(json!({"n": 1_000_000_000}), ctx)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout, "{err:?}");
    let out = tool.call(json!({"n": 10}), common::ctx()).await.unwrap();
    assert_eq!(out["rows"], json!([[10]]));
}
