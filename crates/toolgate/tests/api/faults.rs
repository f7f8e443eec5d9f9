//! Fault injection against the real services: a [`FaultProxy`] between the server and
//! PostgreSQL (audit store and SQL tools), MariaDB, Redis and an HTTP upstream. Each
//! scenario asserts what callers get during the fault, that nothing answered 200 is
//! missing from the audit log, that no call outlives its deadline, and that the
//! server recovers by itself once the dependency is back. The proxy runs on the
//! test's runtime, so the tests use a multi-threaded one: the server blocks its
//! thread while it opens the audit store.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use toolgate_test_support::{Fault, FaultProxy, TestServer};

use crate::cli::BIN;

/// Whether `port` answers on 127.0.0.1. Under CI it must; elsewhere the test is
/// skipped, loudly.
fn service(port: u16, what: &str) -> bool {
    let up = std::net::TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    )
    .is_ok();
    if !up {
        assert!(
            std::env::var("CI").is_err(),
            "{what} must run on 127.0.0.1:{port} under CI"
        );
        eprintln!(
            "SKIPPED: {what} is not running on 127.0.0.1:{port}; this fault test did not run"
        );
    }
    up
}

async fn proxy(port: u16) -> FaultProxy {
    FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap()
}

fn table() -> String {
    format!("audit_fault_{}", &toolgate_server::trace::generate()[..12])
}

/// A demo server whose audit log is in PostgreSQL through `proxy`.
fn audit_config(proxy: &FaultProxy, table: &str, spool: &std::path::Path, extra: &str) -> String {
    format!(
        "{}\n[audit]\nurl = \"postgres://postgres@{}/test?sslmode=disable\"\ntable = \"{table}\"\nspool_path = \"{}\"\nstatement_timeout_ms = 1000\nconnect_timeout_ms = 1000\nreconnect_max_ms = 400\n{extra}\n",
        toolgate_config::DEMO_CONFIG,
        proxy.host_port(),
        spool.display()
    )
}

/// One call: status, trace id and problem code; `None` if the client gave up after
/// 10 s (a hang: every call here has a deadline well below that).
async fn call(s: &TestServer, tool: &str, args: &Value) -> Option<(u16, String, String)> {
    let resp = s
        .call(tool, args)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    let trace = resp
        .headers()
        .get("x-trace-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let code = body["code"].as_str().unwrap_or_default().to_owned();
    Some((status, trace, code))
}

/// Calls `echo` from 4 workers until `stop`; every answer (status, trace id, code).
async fn load(s: Arc<TestServer>, stop: Arc<AtomicBool>) -> Vec<(u16, String, String)> {
    let mut workers = Vec::new();
    for w in 0..4 {
        let (s, stop) = (Arc::clone(&s), Arc::clone(&stop));
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let answer = call(&s, "echo", &json!({"w": w, "i": i})).await;
                seen.push(answer.expect("a call hung past 10 s"));
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    all
}

/// Wait (up to 30 s) until `/readyz` says the audit store is ok again and nothing is
/// spooled.
async fn until_audit_recovered(s: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body: Value = s.get("/readyz").send().await.unwrap().json().await.unwrap();
        let metrics = s
            .get("/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let spooled = metrics
            .lines()
            .find(|l| l.starts_with("toolgate_audit_spooled_records"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok());
        if body["checks"]["audit"] == "ok" && spooled == Some(0.0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the audit store did not recover: {body} spooled={spooled:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `config` with the database reached directly: the CLI runs as a blocking child
/// process, while the proxy runs on the test's own runtime.
fn direct(config: &str, p: &FaultProxy) -> String {
    config.replace(&p.host_port(), "127.0.0.1:5432")
}

/// `toolgate audit verify` passes and every trace id in `answered` has its record.
fn assert_log_holds(config: &str, answered: &HashSet<String>) {
    let f = crate::cli::write_config(config);
    let path = f.path().to_str().unwrap();
    let out = Command::new(BIN)
        .args(["audit", "verify", "--config", path])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["audit", "list", "--config", path])
        .output()
        .unwrap();
    assert!(out.status.success());
    let logged: HashSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["trace_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let missing: Vec<&String> = answered.iter().filter(|t| !logged.contains(*t)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered calls have no record: {:?}",
        missing.len(),
        answered.len(),
        &missing[..missing.len().min(5)]
    );
}

fn drop_table(table: &str) {
    let _ = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc"])
        .arg(format!(
            "DROP TABLE IF EXISTS {table}; DROP TABLE IF EXISTS {table}_meta"
        ))
        .status();
}

fn answered_ok(answers: &[(u16, String, String)]) -> HashSet<String> {
    answers
        .iter()
        .filter(|(s, _, _)| *s == 200)
        .map(|(_, t, _)| t.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_store_connections_reset_mid_load_lose_nothing_with_async() {
    if !service(5432, "PostgreSQL") {
        return;
    }
    let p = proxy(5432).await;
    let dir = tempfile::tempdir().unwrap();
    let table = table();
    let config = audit_config(&p, &table, &dir.path().join("spool.db"), "");
    let s = Arc::new(TestServer::spawn(&config).await.unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(Arc::clone(&s), Arc::clone(&stop)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    p.set(Fault::Reset);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let metrics = s
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    p.set(Fault::Pass);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    let answers = loader.await.unwrap();
    // With `async`, a store that is away costs callers nothing: every call is 200.
    let refused: Vec<_> = answers.iter().filter(|(s, _, _)| *s != 200).collect();
    assert!(refused.is_empty(), "{:?}", &refused[..refused.len().min(5)]);
    assert!(answers.len() > 50, "too little load: {}", answers.len());
    assert!(
        metric(&metrics, "toolgate_audit_store_failures_total") >= 1.0,
        "the failure was seen"
    );
    until_audit_recovered(&s).await;
    let metrics = s
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metric(&metrics, "toolgate_audit_store_reconnects_total") >= 1.0);
    assert_eq!(metric(&metrics, "toolgate_audit_records_lost_total"), 0.0);
    Arc::into_inner(s).unwrap().stop().await.unwrap();
    assert_log_holds(&direct(&config, &p), &answered_ok(&answers));
    drop_table(&table);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_store_black_holed_with_sync_refuses_in_time_then_recovers() {
    if !service(5432, "PostgreSQL") {
        return;
    }
    let p = proxy(5432).await;
    let dir = tempfile::tempdir().unwrap();
    let table = table();
    let config = audit_config(
        &p,
        &table,
        &dir.path().join("spool.db"),
        "durability = \"sync\"",
    );
    let s = TestServer::spawn(&config).await.unwrap();
    let mut answers = Vec::new();
    for i in 0..5 {
        answers.push(call(&s, "echo", &json!({"i": i})).await.unwrap());
    }
    assert!(answers.iter().all(|(st, _, _)| *st == 200), "{answers:?}");
    // No RST, no FIN: only the client-side deadline (1 s here) can notice.
    p.set(Fault::BlackHole);
    let started = Instant::now();
    let mut during = Vec::new();
    for i in 0..10 {
        let t = Instant::now();
        let answer = call(&s, "echo", &json!({"during": i}))
            .await
            .expect("a call hung while the audit store was black-holed");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        during.push(answer);
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    let refused = during
        .iter()
        .filter(|(st, _, code)| *st == 503 && code == "audit_unavailable")
        .count();
    assert!(
        refused >= 8,
        "sync calls must be refused while the store is away: {during:?}"
    );
    // Readiness tells the truth.
    let ready = s.get("/readyz").send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    p.set(Fault::Pass);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = call(&s, "echo", &json!({"after": true})).await.unwrap();
        let ok = answer.0 == 200;
        answers.push(answer);
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery: {:?}",
            answers.last()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    answers.extend(during);
    until_audit_recovered(&s).await;
    s.stop().await.unwrap();
    // Every 200 (before, during, after) is committed; the refused calls' records,
    // spooled while the store was away, are in the log too, in one verified chain.
    assert_log_holds(&direct(&config, &p), &answered_ok(&answers));
    drop_table(&table);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_refuses_calls_and_keeps_every_answered_record() {
    if !service(5432, "PostgreSQL") {
        return;
    }
    let p = proxy(5432).await;
    let dir = tempfile::tempdir().unwrap();
    let table = table();
    let config = audit_config(
        &p,
        &table,
        &dir.path().join("spool.db"),
        "queue_capacity = 10\nspool_max_records = 40",
    );
    let s = TestServer::spawn(&config).await.unwrap();
    assert_eq!(call(&s, "echo", &json!({})).await.unwrap().0, 200);
    p.set(Fault::Drop);
    let mut answers = Vec::new();
    for i in 0..80 {
        answers.push(call(&s, "echo", &json!({"i": i})).await.expect("hung"));
    }
    let refused = answers
        .iter()
        .filter(|(st, _, code)| *st == 503 && code == "audit_unavailable")
        .count();
    assert!(
        refused >= 20,
        "a full spool refuses calls: {refused} refused"
    );
    assert!(answers.iter().all(|(st, _, _)| *st == 200 || *st == 503));
    let metrics = s
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metric(&metrics, "toolgate_audit_refused_calls_total") >= 20.0);
    p.set(Fault::Pass);
    until_audit_recovered(&s).await;
    // Accepted again once drained.
    assert_eq!(call(&s, "echo", &json!({})).await.unwrap().0, 200);
    s.stop().await.unwrap();
    assert_log_holds(&direct(&config, &p), &answered_ok(&answers));
    drop_table(&table);
}

/// Redis behind the proxy for shared rate limits.
fn redis_config(proxy: &FaultProxy, on_error: &str) -> String {
    format!(
        "{}\n[rate_limits]\nstore = \"redis\"\nredis_url = \"redis://{}\"\non_store_error = \"{on_error}\"\nkey_prefix = \"fault{}\"\n{}",
        toolgate_config::DEMO_CONFIG,
        proxy.host_port(),
        &toolgate_server::trace::generate()[..8],
        // A key with a (generous) rate limit: only limited keys consult the store.
        toolgate_test_support::key_entry("limited", LIMITED_KEY, &["*"]).replace(
            "scopes = [\"*\"]",
            "scopes = [\"*\"]\nrate_limit = { per_second = 1000, burst = 1000 }"
        )
    )
}

const LIMITED_KEY: &str = "tg_fault_limited";

/// One call as the rate-limited key: its status, or `None` after 10 s.
async fn limited_call(s: &TestServer) -> Option<u16> {
    let resp = s
        .client
        .post(s.url("/api/v1/tools/echo"))
        .header("X-Tool-API-Key", LIMITED_KEY)
        .json(&json!({}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    Some(resp.status().as_u16())
}

async fn until_status(s: &TestServer, want: u16, within: Duration) -> Vec<u16> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let status = limited_call(s).await.expect("a call hung");
        seen.push(status);
        if status == want {
            return seen;
        }
        assert!(Instant::now() < deadline, "never {want}: {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_and_back_fails_closed_or_open_as_configured_and_recovers() {
    if !service(6379, "Redis") {
        return;
    }
    for (policy, during) in [("closed", 503), ("open", 200)] {
        let p = proxy(6379).await;
        let s = TestServer::spawn(&redis_config(&p, policy)).await.unwrap();
        assert_eq!(limited_call(&s).await, Some(200), "{policy}");
        p.set(Fault::Reset);
        until_status(&s, during, Duration::from_secs(10)).await;
        p.set(Fault::BlackHole);
        // Black-holed: the store's deadline answers, not a hang.
        let t = Instant::now();
        let status = limited_call(&s).await.expect("hung on a black-holed Redis");
        assert_eq!(status, during, "{policy}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{policy}: {:?}",
            t.elapsed()
        );
        p.set(Fault::Pass);
        until_status(&s, 200, Duration::from_secs(20)).await;
        s.stop().await.unwrap();
    }
}

/// A SQL source behind the proxy: a black hole answers `504 timeout` at the tool's
/// deadline, a reset answers an error at once, and the pool recovers by itself.
async fn sql_source_through_faults(port: u16, url: &str) {
    let p = proxy(port).await;
    let config = format!(
        "{}\n[sources.db]\nkind = \"{}\"\nurl = \"{}\"\n\n[[tools]]\nname = \"one\"\nkind = \"sql\"\nsource = \"db\"\nstatement = \"SELECT 1 AS one\"\nparams = []\ntimeout_ms = 1000\n",
        toolgate_config::DEMO_CONFIG,
        if port == 5432 { "postgres" } else { "mysql" },
        url.replace("{proxy}", &p.host_port())
    );
    let s = TestServer::spawn(&config).await.unwrap();
    let one = |s: &TestServer| {
        let s = s.call("one", &json!({})).timeout(Duration::from_secs(10));
        async move {
            let t = Instant::now();
            let resp = s.send().await.expect("a SQL call hung past 10 s");
            (resp.status().as_u16(), t.elapsed())
        }
    };
    assert_eq!(one(&s).await.0, 200);
    p.set(Fault::BlackHole);
    let (status, took) = one(&s).await;
    assert_eq!(status, 504, "black-holed: the deadline answers");
    assert!(took < Duration::from_secs(5), "{took:?}");
    p.set(Fault::Reset);
    let (status, took) = one(&s).await;
    assert!(
        status > 500,
        "reset: an error of the dependency, not a tool error: {status}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    p.set(Fault::Pass);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = one(&s).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pool did not recover: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_sql_tools_survive_black_hole_and_reset() {
    if service(5432, "PostgreSQL") {
        sql_source_through_faults(5432, "postgres://postgres@{proxy}/test?sslmode=disable").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_sql_tools_survive_black_hole_and_reset() {
    if service(3306, "MariaDB") {
        sql_source_through_faults(3306, "mysql://root@{proxy}/test?ssl-mode=disabled").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_upstream_that_hangs_resets_or_is_slow() {
    use axum::{Json, Router, routing::get};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let app = Router::new().route("/x", get(|| async { Json(json!({"ok": true})) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let p = FaultProxy::start(upstream).await.unwrap();
    let config = format!(
        "{}\n[[tools]]\nname = \"up\"\nkind = \"http\"\nurl = \"http://{}/x\"\nallow_private = [\"127.0.0.1\"]\ntimeout_ms = 1000\n",
        toolgate_config::DEMO_CONFIG,
        p.host_port()
    );
    let s = TestServer::spawn(&config).await.unwrap();
    let up = |s: &TestServer| {
        let s = s.call("up", &json!({})).timeout(Duration::from_secs(10));
        async move {
            let t = Instant::now();
            let resp = s.send().await.expect("an http call hung past 10 s");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (
                status,
                body["code"].as_str().unwrap_or_default().to_owned(),
                t.elapsed(),
            )
        }
    };
    assert_eq!(up(&s).await.0, 200);
    p.set(Fault::Delay(Duration::from_millis(300)));
    assert_eq!(up(&s).await.0, 200, "slow but inside the deadline");
    p.set(Fault::BlackHole);
    let (status, code, took) = up(&s).await;
    assert_eq!((status, code.as_str()), (504, "timeout"));
    assert!(took < Duration::from_secs(5), "{took:?}");
    p.set(Fault::Reset);
    let (status, code, took) = up(&s).await;
    assert_eq!((status, code.as_str()), (502, "upstream_error"));
    assert!(took < Duration::from_secs(5), "{took:?}");
    p.set(Fault::Pass);
    assert_eq!(up(&s).await.0, 200, "recovered");
    s.stop().await.unwrap();
}
