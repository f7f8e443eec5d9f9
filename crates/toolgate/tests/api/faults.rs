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

/// One answered call.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: u16,
    pub trace: String,
    pub code: String,
    /// When the answer arrived.
    pub at: Instant,
    /// How long the call took.
    pub took: Duration,
}

/// One call with `key`: status, trace id and problem code; `None` if the client gave
/// up after 10 s (a hang: every call here has a deadline well below that).
pub(crate) async fn call_as(s: &TestServer, key: &str, tool: &str, args: &Value) -> Option<Answer> {
    let t = Instant::now();
    let resp = s
        .client
        .post(s.url(&format!("/api/v1/tools/{tool}")))
        .header("X-Tool-API-Key", key)
        .json(args)
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
    Some(Answer {
        status,
        trace,
        code,
        at: Instant::now(),
        took: t.elapsed(),
    })
}

/// [`call_as`] with the operator key.
pub(crate) async fn call(s: &TestServer, tool: &str, args: &Value) -> Option<Answer> {
    call_as(s, toolgate_test_support::OPERATOR_KEY, tool, args).await
}

/// Calls `tool` from `workers` workers until `stop`; every answer. Panics if a call
/// hangs past 10 s.
pub(crate) async fn load_on(
    s: Arc<TestServer>,
    tool: &'static str,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> Vec<Answer> {
    let mut handles = Vec::new();
    for w in 0..workers {
        let (s, stop) = (Arc::clone(&s), Arc::clone(&stop));
        handles.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                // `echo` takes anything (and each call differs); the others none.
                let args = if tool == "echo" {
                    json!({"w": w, "i": i})
                } else {
                    json!({})
                };
                let answer = call(&s, tool, &args)
                    .await
                    .unwrap_or_else(|| panic!("a call of {tool} hung past 10 s"));
                // A refusal says when to come back; a tight loop would only add noise.
                if answer.status != 200 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                seen.push(answer);
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all
}

/// Call `tool` with `args` every 50 ms until one answers 200 (within 20 s of now);
/// every answer, the last one the 200.
pub(crate) async fn until_ok(s: &TestServer, tool: &str, args: &Value) -> Vec<Answer> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answers = Vec::new();
    loop {
        let answer = call(s, tool, args)
            .await
            .unwrap_or_else(|| panic!("a call of {tool} hung"));
        let ok = answer.status == 200;
        answers.push(answer);
        if ok {
            return answers;
        }
        assert!(
            Instant::now() < deadline,
            "{tool} did not recover: {:?}",
            answers.last()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Calls `echo` from 4 workers until `stop`.
async fn load(s: Arc<TestServer>, stop: Arc<AtomicBool>) -> Vec<Answer> {
    load_on(s, "echo", 4, stop).await
}

/// Whether this is the full-size run (`bench/faults/run.sh`): longer outages and more
/// rounds; the figures it prints are those docs/operations.md quotes.
pub(crate) fn full_size() -> bool {
    std::env::var("TOOLGATE_FAULT_FULL").is_ok_and(|v| v == "1")
}

/// How long a dependency stays away: 1 s in the test suite, 5 s full-size.
pub(crate) fn outage() -> Duration {
    Duration::from_secs(if full_size() { 5 } else { 1 })
}

/// Print a measured figure (`figure: <scenario> k=v ...`) for `bench/faults/run.sh`.
pub(crate) fn figure(scenario: &str, values: &[(&str, String)]) {
    let fields: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
    eprintln!("figure: {scenario} {}", fields.join(" "));
}

pub(crate) fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}

/// How answers split by status, as `200:123,503:4`.
pub(crate) fn by_status(answers: &[Answer]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for a in answers {
        *counts.entry(a.status).or_insert(0u64) += 1;
    }
    counts
        .iter()
        .map(|(s, n)| format!("{s}:{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The slowest answer.
pub(crate) fn slowest(answers: &[Answer]) -> Duration {
    answers.iter().map(|a| a.took).max().unwrap_or_default()
}

/// How long after `from` the first `200` came.
pub(crate) fn first_ok_after(answers: &[Answer], from: Instant) -> Option<Duration> {
    answers
        .iter()
        .filter(|a| a.status == 200 && a.at >= from)
        .map(|a| a.at - from)
        .min()
}

/// Wait (up to 30 s) until `/readyz` says the audit store is ok again and nothing is
/// spooled; how long that took.
pub(crate) async fn until_audit_recovered(s: &TestServer) -> Duration {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    loop {
        let body: Value = s.get("/readyz").send().await.unwrap().json().await.unwrap();
        let spooled = metric(&metrics(s).await, "toolgate_audit_spooled_records");
        if body["checks"]["audit"] == "ok" && spooled == 0.0 {
            return started.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "the audit store did not recover: {body} spooled={spooled}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn metrics(s: &TestServer) -> String {
    s.get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The sum of a family's samples.
pub(crate) fn metric(text: &str, name: &str) -> f64 {
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

/// `toolgate audit verify` passes and every trace id in `answered` has its record;
/// how many records the log holds.
pub(crate) fn assert_log_holds(config: &str, answered: &HashSet<String>) -> usize {
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
    let traces: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["trace_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let logged: HashSet<String> = traces.iter().cloned().collect();
    // One request, one record: a batch whose commit was not acknowledged is not
    // appended twice.
    assert_eq!(
        logged.len(),
        traces.len(),
        "{} records are duplicates",
        traces.len() - logged.len()
    );
    let missing: Vec<&String> = answered.iter().filter(|t| !logged.contains(*t)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered calls have no record: {:?}",
        missing.len(),
        answered.len(),
        &missing[..missing.len().min(5)]
    );
    traces.len()
}

fn drop_table(table: &str) {
    let _ = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc"])
        .arg(format!(
            "DROP TABLE IF EXISTS {table}; DROP TABLE IF EXISTS {table}_meta"
        ))
        .status();
}

/// The trace ids of the calls answered `200`.
pub(crate) fn answered_ok(answers: &[Answer]) -> HashSet<String> {
    answers
        .iter()
        .filter(|a| a.status == 200)
        .map(|a| a.trace.clone())
        .collect()
}

/// The trace ids of every answered call, whatever its status: each ran through the
/// call path and has its record.
pub(crate) fn answered_all(answers: &[Answer]) -> HashSet<String> {
    let all: HashSet<String> = answers.iter().map(|a| a.trace.clone()).collect();
    assert!(!all.contains(""), "an answer without a trace id");
    all
}

/// Statuses other than those expected, at most five of them.
fn unexpected<'a>(answers: &'a [Answer], allowed: &[u16]) -> Vec<&'a Answer> {
    answers
        .iter()
        .filter(|a| !allowed.contains(&a.status))
        .take(5)
        .collect()
}

/// A SQLite audit log in `dir`, for the scenarios whose fault is elsewhere.
fn sqlite_audit(dir: &std::path::Path) -> String {
    format!("\n[audit]\npath = \"{}\"\n", dir.join("audit.db").display())
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
    tokio::time::sleep(outage()).await;
    let during = metrics(&s).await;
    p.set(Fault::Pass);
    let recovery = until_audit_recovered(&s).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let answers = loader.await.unwrap();
    // With `async`, a store that is away costs callers nothing: every call is 200.
    assert!(
        unexpected(&answers, &[200]).is_empty(),
        "{:?}",
        unexpected(&answers, &[200])
    );
    assert!(answers.len() > 50, "too little load: {}", answers.len());
    assert!(
        metric(&during, "toolgate_audit_store_failures_total") >= 1.0,
        "the failure was seen"
    );
    let after = metrics(&s).await;
    assert!(metric(&after, "toolgate_audit_store_reconnects_total") >= 1.0);
    assert_eq!(metric(&after, "toolgate_audit_records_lost_total"), 0.0);
    Arc::into_inner(s).unwrap().stop().await.unwrap();
    let kept = assert_log_holds(&direct(&config, &p), &answered_ok(&answers));
    figure(
        "audit-pg-reset-async",
        &[
            ("outage_ms", ms(outage())),
            ("calls", answers.len().to_string()),
            ("statuses", by_status(&answers)),
            (
                "spooled_during",
                metric(&during, "toolgate_audit_spooled_records").to_string(),
            ),
            ("records_kept", kept.to_string()),
            ("lost", "0".into()),
            ("recovery_ms", ms(recovery)),
            ("slowest_call_ms", ms(slowest(&answers))),
        ],
    );
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
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    // No RST, no FIN: only the client-side deadline (1 s here) can notice.
    p.set(Fault::BlackHole);
    let started = Instant::now();
    let mut during = Vec::new();
    for i in 0..10 {
        let answer = call(&s, "echo", &json!({"during": i}))
            .await
            .expect("a call hung while the audit store was black-holed");
        assert!(answer.took < Duration::from_secs(5), "{:?}", answer.took);
        during.push(answer);
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    let refused = during
        .iter()
        .filter(|a| a.status == 503 && a.code == "audit_unavailable")
        .count();
    assert!(
        refused >= 8,
        "sync calls must be refused while the store is away: {during:?}"
    );
    // Readiness tells the truth.
    let ready = s.get("/readyz").send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    p.set(Fault::Pass);
    let back = Instant::now();
    answers.extend(until_ok(&s, "echo", &json!({"after": true})).await);
    let recovery = back.elapsed();
    until_audit_recovered(&s).await;
    s.stop().await.unwrap();
    // Every 200 (before, during and after) is committed; so is every refused call's
    // record, spooled while the store was away, in one verified chain.
    let kept = assert_log_holds(&direct(&config, &p), &answered_all(&answers));
    let _ = assert_log_holds(&direct(&config, &p), &answered_all(&during));
    figure(
        "audit-pg-blackhole-sync",
        &[
            ("statement_timeout_ms", "1000".into()),
            ("during", by_status(&during)),
            ("slowest_during_ms", ms(slowest(&during))),
            ("records_kept", kept.to_string()),
            ("first_200_after_ms", ms(recovery)),
        ],
    );
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
    assert_eq!(call(&s, "echo", &json!({})).await.unwrap().status, 200);
    p.set(Fault::Drop);
    let mut answers = Vec::new();
    for i in 0..80 {
        answers.push(call(&s, "echo", &json!({"i": i})).await.expect("hung"));
    }
    let refused = answers
        .iter()
        .filter(|a| a.status == 503 && a.code == "audit_unavailable")
        .count();
    assert!(
        refused >= 20,
        "a full spool refuses calls: {refused} refused"
    );
    assert!(unexpected(&answers, &[200, 503]).is_empty());
    let during = metrics(&s).await;
    assert!(metric(&during, "toolgate_audit_refused_calls_total") >= 20.0);
    p.set(Fault::Pass);
    let recovery = until_audit_recovered(&s).await;
    // Accepted again once drained.
    assert_eq!(call(&s, "echo", &json!({})).await.unwrap().status, 200);
    s.stop().await.unwrap();
    let kept = assert_log_holds(&direct(&config, &p), &answered_ok(&answers));
    figure(
        "audit-pg-closed-spool-full-async",
        &[
            ("spool_max_records", "40".into()),
            ("calls", by_status(&answers)),
            ("records_kept", kept.to_string()),
            (
                "lost",
                metric(&during, "toolgate_audit_records_lost_total").to_string(),
            ),
            ("drained_in_ms", ms(recovery)),
        ],
    );
    drop_table(&table);
}

/// Redis behind the proxy for shared rate limits, and a SQLite audit log in `dir`.
fn redis_config(proxy: &FaultProxy, on_error: &str, dir: &std::path::Path) -> String {
    format!(
        "{}\n[rate_limits]\nstore = \"redis\"\nredis_url = \"redis://{}\"\non_store_error = \"{on_error}\"\nkey_prefix = \"fault{}\"\n{}{}",
        toolgate_config::DEMO_CONFIG,
        proxy.host_port(),
        &toolgate_server::trace::generate()[..8],
        // A key with a (generous) rate limit: only limited keys consult the store.
        toolgate_test_support::key_entry("limited", LIMITED_KEY, &["*"]).replace(
            "scopes = [\"*\"]",
            "scopes = [\"*\"]\nrate_limit = { per_second = 1000, burst = 1000 }"
        ),
        sqlite_audit(dir)
    )
}

const LIMITED_KEY: &str = "tg_fault_limited";

/// Calls as the rate-limited key until one answers `want` (within `within`); every
/// answer.
async fn until_status(s: &TestServer, want: u16, within: Duration) -> Vec<Answer> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let answer = call_as(s, LIMITED_KEY, "echo", &json!({}))
            .await
            .expect("a call hung");
        let status = answer.status;
        seen.push(answer);
        if status == want {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "never {want}: {:?}",
            by_status(&seen)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_and_back_fails_closed_or_open_as_configured_and_recovers() {
    if !service(6379, "Redis") {
        return;
    }
    for (policy, during) in [("closed", 503), ("open", 200)] {
        let p = proxy(6379).await;
        let dir = tempfile::tempdir().unwrap();
        let config = redis_config(&p, policy, dir.path());
        let s = TestServer::spawn(&config).await.unwrap();
        let mut answers = until_status(&s, 200, Duration::from_secs(1)).await;
        p.set(Fault::Reset);
        answers.extend(until_status(&s, during, Duration::from_secs(10)).await);
        p.set(Fault::BlackHole);
        // Black-holed: the store's deadline answers, not a hang.
        let answer = call_as(&s, LIMITED_KEY, "echo", &json!({}))
            .await
            .expect("hung on a black-holed Redis");
        assert_eq!(answer.status, during, "{policy}");
        assert!(answer.took < Duration::from_secs(5), "{policy}: {answer:?}");
        let black_holed = answer.took;
        answers.push(answer);
        p.set(Fault::Pass);
        let back = Instant::now();
        answers.extend(until_status(&s, 200, Duration::from_secs(20)).await);
        let recovery = first_ok_after(&answers, back).unwrap_or_default();
        // Once back, the limit is enforced again: a burst past it is refused.
        assert!(
            unexpected(&answers, &[200, 503]).is_empty(),
            "{policy}: {:?}",
            unexpected(&answers, &[200, 503])
        );
        s.stop().await.unwrap();
        // Every answered call, let through or refused, has its record.
        let kept = assert_log_holds(&config, &answered_all(&answers));
        figure(
            &format!("redis-{policy}"),
            &[
                ("calls", by_status(&answers)),
                ("black_holed_call_ms", ms(black_holed)),
                ("records_kept", kept.to_string()),
                ("first_200_after_ms", ms(recovery)),
            ],
        );
    }
}

/// A SQL source behind the proxy, under load: a black hole answers `504 timeout` at
/// the tool's deadline, a reset answers an error at once, and the pool recovers by
/// itself; every answered call is in the audit log.
async fn sql_source_through_faults(port: u16, url: &str) {
    let p = proxy(port).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}\n[sources.db]\nkind = \"{}\"\nurl = \"{}\"\n\n[[tools]]\nname = \"one\"\nkind = \"sql\"\nsource = \"db\"\nstatement = \"SELECT 1 AS one\"\nparams = []\ntimeout_ms = 1000\n{}",
        toolgate_config::DEMO_CONFIG,
        if port == 5432 { "postgres" } else { "mysql" },
        url.replace("{proxy}", &p.host_port()),
        sqlite_audit(dir.path())
    );
    let s = Arc::new(TestServer::spawn(&config).await.unwrap());
    let db = if port == 5432 {
        "postgresql"
    } else {
        "mariadb"
    };
    let mut probes = vec![call(&s, "one", &json!({})).await.unwrap()];
    assert_eq!(probes[0].status, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load_on(Arc::clone(&s), "one", 2, Arc::clone(&stop)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.set(Fault::BlackHole);
    let hole = call(&s, "one", &json!({})).await.expect("hung");
    assert_eq!(hole.status, 504, "black-holed: the deadline answers");
    assert!(hole.took < Duration::from_secs(5), "{hole:?}");
    probes.push(hole.clone());
    p.set(Fault::Reset);
    let reset = call(&s, "one", &json!({})).await.expect("hung");
    assert!(
        reset.status > 500,
        "reset: an error of the dependency, not a tool error: {reset:?}"
    );
    assert!(reset.took < Duration::from_secs(5), "{reset:?}");
    probes.push(reset.clone());
    tokio::time::sleep(outage()).await;
    p.set(Fault::Pass);
    let back = Instant::now();
    probes.extend(until_ok(&s, "one", &json!({})).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut answers = loader.await.unwrap();
    // The load saw the same: answers in time, errors of the dependency, never a 500.
    assert!(
        answers.iter().all(|a| a.status == 200 || a.status > 500),
        "{:?}",
        unexpected(&answers, &[200, 502, 503, 504])
    );
    assert!(slowest(&answers) < Duration::from_secs(5));
    let recovery = first_ok_after(&probes, back).unwrap_or_default();
    answers.extend(probes);
    Arc::into_inner(s).unwrap().stop().await.unwrap();
    let kept = assert_log_holds(&config, &answered_all(&answers));
    figure(
        &format!("sql-{db}-blackhole-reset"),
        &[
            ("calls", by_status(&answers)),
            ("black_holed_call_ms", ms(hole.took)),
            ("reset_call_ms", ms(reset.took)),
            ("slowest_call_ms", ms(slowest(&answers))),
            ("records_kept", kept.to_string()),
            ("first_200_after_ms", ms(recovery)),
        ],
    );
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
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}\n[[tools]]\nname = \"up\"\nkind = \"http\"\nurl = \"http://{}/x\"\nallow_private = [\"127.0.0.1\"]\ntimeout_ms = 1000\n{}",
        toolgate_config::DEMO_CONFIG,
        p.host_port(),
        sqlite_audit(dir.path())
    );
    let s = Arc::new(TestServer::spawn(&config).await.unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load_on(Arc::clone(&s), "up", 2, Arc::clone(&stop)));
    let mut probes = vec![call(&s, "up", &json!({})).await.expect("hung")];
    assert_eq!(probes[0].status, 200);
    p.set(Fault::Delay(Duration::from_millis(300)));
    let slow = call(&s, "up", &json!({})).await.expect("hung");
    assert_eq!(slow.status, 200, "slow but inside the deadline");
    probes.push(slow.clone());
    p.set(Fault::BlackHole);
    let hole = call(&s, "up", &json!({})).await.expect("hung");
    assert_eq!((hole.status, hole.code.as_str()), (504, "timeout"));
    assert!(hole.took < Duration::from_secs(5), "{hole:?}");
    probes.push(hole.clone());
    p.set(Fault::Reset);
    let reset = call(&s, "up", &json!({})).await.expect("hung");
    assert_eq!((reset.status, reset.code.as_str()), (502, "upstream_error"));
    assert!(reset.took < Duration::from_secs(5), "{reset:?}");
    probes.push(reset.clone());
    tokio::time::sleep(outage()).await;
    p.set(Fault::Pass);
    let back = call(&s, "up", &json!({})).await.expect("hung");
    assert_eq!(back.status, 200, "recovered");
    probes.push(back);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut answers = loader.await.unwrap();
    assert!(
        unexpected(&answers, &[200, 502, 503, 504]).is_empty(),
        "{:?}",
        unexpected(&answers, &[200, 502, 503, 504])
    );
    assert!(slowest(&answers) < Duration::from_secs(5));
    answers.extend(probes);
    Arc::into_inner(s).unwrap().stop().await.unwrap();
    let kept = assert_log_holds(&config, &answered_all(&answers));
    figure(
        "http-upstream",
        &[
            ("calls", by_status(&answers)),
            ("slow_call_ms", ms(slow.took)),
            ("black_holed_call_ms", ms(hole.took)),
            ("reset_call_ms", ms(reset.took)),
            ("records_kept", kept.to_string()),
        ],
    );
}
