//! Durable jobs and approval gates through the real interfaces: REST on a real
//! server, the real binary killed mid-job and started again (SQLite and
//! PostgreSQL), two replicas sharing PostgreSQL, signed webhooks to a receiver of
//! the test's own, and the `toolgate approvals` CLI.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use toolgate_test_support::{OPERATOR_KEY, TestServer, key_entry};

use crate::read;

const AGENT: &str = "agent-key-0123456789abcdef0123456789";
const APPROVER: &str = "approver-key-0123456789abcdef01234567";
const BOTH: &str = "both-key-0123456789abcdef0123456789ab";
const OTHER: &str = "other-key-0123456789abcdef0123456789a";
const WILD: &str = "wild-key-0123456789abcdef0123456789ab";

/// The demo tools plus a gated `refund` (echo), a `slow_write` that is not
/// idempotent, keys for an agent, an approver, one that is both, and `extra`.
fn config(extra: &str) -> String {
    format!(
        "{}\n{}{}{}{}\n\
         [[tools]]\nname = \"refund\"\nkind = \"builtin\"\nbuiltin = \"echo\"\nidempotent = false\n\
         approval = {{ approvers = [\"approve_refunds\", \"key:lead-*\"], timeout_ms = 60000, reason_required = true }}\n\n\
         [[tools]]\nname = \"slow_write\"\nkind = \"builtin\"\nbuiltin = \"sleep\"\nread_only = false\nidempotent = false\ntimeout_ms = 610000\n\n\
         [[tools]]\nname = \"short_job\"\nkind = \"builtin\"\nbuiltin = \"sleep\"\ntimeout_ms = 100\njob_timeout_ms = 500\n\n\
         {extra}\n",
        toolgate_config::DEMO_CONFIG,
        key_entry(
            "agent",
            AGENT,
            &["echo", "sleep", "refund", "slow_write", "short_job", "fail"]
        ),
        key_entry("approver", APPROVER, &["approve_refunds"]),
        key_entry("both", BOTH, &["refund", "approve_refunds"]),
        key_entry("other", OTHER, &["echo", "sleep"]),
    ) + &key_entry("wild", WILD, &["*"])
}

fn sqlite_jobs(dir: &std::path::Path, extra: &str) -> String {
    format!(
        "[jobs]\npath = \"{}\"\nlease_ms = 2000\npoll_ms = 50\n{extra}\n",
        dir.join("jobs.db").display()
    )
}

/// A server over HTTP: one in this process, or the real binary.
pub(crate) struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    fn at(addr: &str) -> Self {
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
        }
    }
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl From<&Api> for Api {
    fn from(a: &Api) -> Self {
        Self {
            base: a.base.clone(),
            client: a.client.clone(),
        }
    }
}

impl From<&TestServer> for Api {
    fn from(s: &TestServer) -> Self {
        Self {
            base: s.url(""),
            client: s.client.clone(),
        }
    }
}

async fn as_key(
    s: impl Into<Api>,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let s: Api = s.into();
    let mut req = s
        .client
        .request(method, s.url(path))
        .header("X-Tool-API-Key", key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let (status, _, body) = read(req.send().await.unwrap()).await;
    (status, body)
}

async fn start_job(s: impl Into<Api>, key: &str, tool: &str, args: Value) -> Value {
    let s: Api = s.into();
    let resp = s
        .client
        .post(s.url(&format!("/api/v1/tools/{tool}/jobs")))
        .header("X-Tool-API-Key", key)
        .json(&args)
        .send()
        .await
        .unwrap();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, _, body) = read(resp).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        location,
        Some(format!("/api/v1/jobs/{}", body["id"].as_str().unwrap()))
    );
    body
}

/// Poll job `id` until `done(job)` or `within` passes.
async fn wait_for(
    s: impl Into<Api>,
    key: &str,
    id: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let s: Api = s.into();
    let until = Instant::now() + within;
    loop {
        let (status, job) = as_key(
            &s,
            key,
            reqwest::Method::GET,
            &format!("/api/v1/jobs/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{job}");
        if done(&job) {
            return job;
        }
        assert!(
            Instant::now() < until,
            "job {id} did not get there in {within:?}: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Approve or deny approval `id` as `key`, with `body`.
async fn decide(
    s: &TestServer,
    key: &str,
    id: &str,
    verb: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let path = format!("/api/v1/approvals/{id}/{verb}");
    as_key(s, key, reqwest::Method::POST, &path, body).await
}

fn state_is(s: &'static str) -> impl Fn(&Value) -> bool {
    move |j: &Value| j["state"] == s
}

#[tokio::test]
async fn a_job_runs_reports_progress_and_keeps_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::spawn(&config(&sqlite_jobs(dir.path(), "")))
        .await
        .unwrap();
    let job = start_job(&s, AGENT, "sleep", json!({"ms": 1500})).await;
    assert_eq!(job["state"], "queued");
    assert_eq!(job["tool"], "sleep");
    assert_eq!(job["owner"], "agent");
    let id = job["id"].as_str().unwrap();
    // Progress is stored while it runs.
    let running = wait_for(&s, AGENT, id, Duration::from_secs(10), |j| {
        j["state"] == "running" && j["progress"].is_object()
    })
    .await;
    assert!(
        running["progress"]["progress"].as_f64().is_some(),
        "{running}"
    );
    let done = wait_for(
        &s,
        AGENT,
        id,
        Duration::from_secs(10),
        state_is("succeeded"),
    )
    .await;
    assert_eq!(done["output"], json!({"slept_ms": 1500}));
    assert_eq!(done["attempts"], 1);
    assert!(
        done["finished_at"].is_string() && done["expires_at"].is_string(),
        "{done}"
    );
    // Another key does not see it; an unknown id is a problem.
    let (status, body) = as_key(
        &s,
        OTHER,
        reqwest::Method::GET,
        &format!("/api/v1/jobs/{id}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("job_not_found")),
        "{body}"
    );
    // The key's jobs, newest first, in pages.
    let second = start_job(&s, AGENT, "echo", json!({"n": 2})).await;
    let (status, page) = as_key(
        &s,
        AGENT,
        reqwest::Method::GET,
        "/api/v1/jobs?limit=1",
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["jobs"][0]["id"], second["id"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, page2) = as_key(
        &s,
        AGENT,
        reqwest::Method::GET,
        &format!("/api/v1/jobs?limit=1&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(page2["jobs"][0]["id"], json!(id));
    assert!(page2.get("next_cursor").is_none(), "{page2}");
    let (_, others) = as_key(&s, OTHER, reqwest::Method::GET, "/api/v1/jobs", None).await;
    assert_eq!(others["jobs"], json!([]));
    // Bad input is a problem, not a job.
    let resp = s
        .client
        .post(s.url("/api/v1/tools/sleep/jobs"))
        .header("X-Tool-API-Key", AGENT)
        .json(&json!({"ms": "x"}))
        .send()
        .await
        .unwrap();
    let (status, ctype, body) = read(resp).await;
    assert_eq!(
        (status, ctype.as_str(), body["code"].as_str()),
        (422, "application/problem+json", Some("invalid_arguments")),
        "{body}"
    );
    let (status, body) = as_key(
        &s,
        OTHER,
        reqwest::Method::POST,
        "/api/v1/tools/refund/jobs",
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (status, body) = as_key(
        &s,
        OPERATOR_KEY,
        reqwest::Method::POST,
        "/api/v1/tools/nope/jobs",
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("tool_not_found")),
        "{body}"
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn cancelling_a_running_job_stops_its_work() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::spawn(&config(&sqlite_jobs(dir.path(), "")))
        .await
        .unwrap();
    let job = start_job(&s, AGENT, "sleep", json!({"ms": 10000})).await;
    let id = job["id"].as_str().unwrap();
    wait_for(&s, AGENT, id, Duration::from_secs(10), state_is("running")).await;
    let until = Instant::now() + Duration::from_secs(5);
    while s.state.registry.get("sleep").unwrap().in_flight() != 1 {
        assert!(
            Instant::now() < until,
            "the job's call never reached the tool"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let asked = Instant::now();
    let (status, body) = as_key(
        &s,
        AGENT,
        reqwest::Method::DELETE,
        &format!("/api/v1/jobs/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "cancelled", "{body}");
    assert_eq!(body["error"]["code"], "cancelled");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "the cancel took {:?}",
        asked.elapsed()
    );
    // The tool's work really stopped.
    assert_eq!(s.state.registry.get("sleep").unwrap().in_flight(), 0);
    // A queued job is cancelled at once; cancelling twice answers the same.
    let (status, body) = as_key(
        &s,
        AGENT,
        reqwest::Method::POST,
        &format!("/api/v1/jobs/{id}/cancel"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("cancelled")),
        "{body}"
    );
    // Another key cannot cancel it.
    let other = start_job(&s, AGENT, "sleep", json!({"ms": 10000})).await;
    let oid = other["id"].as_str().unwrap();
    let (status, _) = as_key(
        &s,
        OTHER,
        reqwest::Method::DELETE,
        &format!("/api/v1/jobs/{oid}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = as_key(
        &s,
        OPERATOR_KEY,
        reqwest::Method::DELETE,
        &format!("/api/v1/jobs/{oid}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("cancelled")),
        "{body}"
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_job_has_its_own_deadline_and_counts_against_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::spawn(&config(&sqlite_jobs(dir.path(), "max_per_key = 2")))
        .await
        .unwrap();
    // The job deadline (500 ms) is longer than the tool's request timeout (100 ms).
    let ok = start_job(&s, AGENT, "short_job", json!({"ms": 300})).await;
    let done = wait_for(
        &s,
        AGENT,
        ok["id"].as_str().unwrap(),
        Duration::from_secs(10),
        |j| j["state"] != "queued" && j["state"] != "running",
    )
    .await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let resp = s
        .call("short_job", &json!({"ms": 300}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        504,
        "a plain call keeps the tool's own timeout"
    );
    let late = start_job(&s, AGENT, "short_job", json!({"ms": 3000})).await;
    let failed = wait_for(
        &s,
        AGENT,
        late["id"].as_str().unwrap(),
        Duration::from_secs(10),
        state_is("failed"),
    )
    .await;
    assert_eq!(failed["error"]["code"], "timeout", "{failed}");
    // Two jobs not ended is this key's limit.
    let a = start_job(&s, AGENT, "sleep", json!({"ms": 10000})).await;
    let _b = start_job(&s, AGENT, "sleep", json!({"ms": 10000})).await;
    let (status, body) = as_key(
        &s,
        AGENT,
        reqwest::Method::POST,
        "/api/v1/tools/sleep/jobs",
        Some(json!({"ms": 1})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("quota_exceeded")),
        "{body}"
    );
    // An ended job frees its place.
    as_key(
        &s,
        AGENT,
        reqwest::Method::DELETE,
        &format!("/api/v1/jobs/{}", a["id"].as_str().unwrap()),
        None,
    )
    .await;
    start_job(&s, AGENT, "echo", json!({})).await;
    // The batch form creates one job per call, all or none.
    let (status, body) = as_key(
        &s,
        OTHER,
        reqwest::Method::POST,
        "/api/v1/tools/execute/jobs",
        Some(json!({"calls": [
            {"id": "a", "tool": "echo", "arguments": {"x": 1}},
            {"id": "b", "tool": "sleep", "arguments": {"ms": 10}}
        ]})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let ids: Vec<&str> = body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(body["jobs"][0]["call_id"], "a");
    for id in ids {
        wait_for(
            &s,
            OTHER,
            id,
            Duration::from_secs(10),
            state_is("succeeded"),
        )
        .await;
    }
    let (status, body) = as_key(
        &s,
        OTHER,
        reqwest::Method::POST,
        "/api/v1/tools/execute/jobs",
        Some(json!({"calls": [
            {"tool": "echo", "arguments": {}}, {"tool": "refund", "arguments": {}}
        ]})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (_, listed) = as_key(&s, OTHER, reqwest::Method::GET, "/api/v1/jobs", None).await;
    assert_eq!(
        listed["jobs"].as_array().unwrap().len(),
        2,
        "a refused batch creates nothing: {listed}"
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn results_expire_after_their_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::spawn(&config(&sqlite_jobs(dir.path(), "result_ttl_ms = 1000")))
        .await
        .unwrap();
    let job = start_job(&s, AGENT, "echo", json!({"secret": "value"})).await;
    let id = job["id"].as_str().unwrap();
    let done = wait_for(
        &s,
        AGENT,
        id,
        Duration::from_secs(10),
        state_is("succeeded"),
    )
    .await;
    assert_eq!(done["output"], json!({"secret": "value"}));
    let expired = wait_for(&s, AGENT, id, Duration::from_secs(10), state_is("expired")).await;
    assert!(
        expired.get("output").is_none(),
        "an expired job keeps no result: {expired}"
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn approvals_approve_deny_and_refuse_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.db");
    let extra = format!(
        "{}\n[audit]\npath = \"{}\"\ndurability = \"sync\"\n",
        sqlite_jobs(dir.path(), ""),
        audit.display()
    );
    let s = TestServer::spawn(&config(&extra)).await.unwrap();
    // A plain call of a gated tool answers with its job, awaiting approval.
    let resp = s
        .client
        .post(s.url("/api/v1/tools/refund"))
        .header("X-Tool-API-Key", AGENT)
        .json(&json!({"order": 7, "amount": 30}))
        .send()
        .await
        .unwrap();
    let (status, _, job) = read(resp).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["state"], "awaiting_approval");
    assert_eq!(
        job["approval"]["approvers"],
        json!(["approve_refunds", "key:lead-*"])
    );
    let id = job["id"].as_str().unwrap().to_owned();
    // Other transports refuse to run it without an approval.
    let (status, body) = as_key(
        &s,
        AGENT,
        reqwest::Method::POST,
        "/api/v1/tools/execute",
        Some(json!({"calls": [{"tool": "refund", "arguments": {}}]})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["data"][0]["error"]["code"], "approval_required");
    // The approver sees it, with its arguments; the agent sees none to decide.
    let (_, list) = as_key(
        &s,
        APPROVER,
        reqwest::Method::GET,
        "/api/v1/approvals",
        None,
    )
    .await;
    assert_eq!(list["approvals"][0]["id"], json!(id), "{list}");
    assert_eq!(
        list["approvals"][0]["arguments"],
        json!({"order": 7, "amount": 30})
    );
    let (_, list) = as_key(&s, AGENT, reqwest::Method::GET, "/api/v1/approvals", None).await;
    assert_eq!(list["approvals"], json!([]));
    // The caller can never approve its own call, even with the approver scope.
    let both = {
        let resp = s
            .client
            .post(s.url("/api/v1/tools/refund/jobs"))
            .header("X-Tool-API-Key", BOTH)
            .json(&json!({"order": 8}))
            .send()
            .await
            .unwrap();
        read(resp).await.2
    };
    let bid = both["id"].as_str().unwrap();
    let (status, body) = decide(&s, BOTH, bid, "approve", Some(json!({"comment": "mine"}))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("caller"),
        "{body}"
    );
    // A key whose `*` covers every tool is still no approver.
    let (status, body) = decide(&s, WILD, &id, "approve", Some(json!({"comment": "x"}))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    // A key that is not an approver cannot decide.
    let (status, _) = decide(&s, OTHER, &id, "approve", Some(json!({"comment": "x"}))).await;
    assert_eq!(status, 403);
    // A comment is required here.
    let (status, body) = decide(&s, APPROVER, &id, "approve", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_arguments")),
        "{body}"
    );
    let (status, body) = decide(
        &s,
        APPROVER,
        &id,
        "approve",
        Some(json!({"comment": "customer called"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["approval"]["decision"]["approved"], true);
    assert_eq!(body["approval"]["decision"]["by"], "approver");
    let done = wait_for(
        &s,
        AGENT,
        &id,
        Duration::from_secs(10),
        state_is("succeeded"),
    )
    .await;
    assert_eq!(
        done["output"],
        json!({"order": 7, "amount": 30}),
        "it ran with exactly the approved arguments"
    );
    assert_eq!(done["attempts"], 1);
    // Deciding again is a conflict.
    let (status, body) = decide(&s, APPROVER, &id, "deny", Some(json!({"comment": "late"}))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("already_decided")),
        "{body}"
    );
    // Denied: the job fails and never runs.
    let (status, body) = decide(
        &s,
        OPERATOR_KEY,
        bid,
        "deny",
        Some(json!({"comment": "no such order"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let denied = wait_for(&s, BOTH, bid, Duration::from_secs(5), state_is("failed")).await;
    assert_eq!(denied["error"]["code"], "approval_denied", "{denied}");
    assert!(
        denied["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("no such order"),
        "{denied}"
    );
    assert!(
        denied.get("started_at").is_none(),
        "a denied job never starts: {denied}"
    );
    // Every decision is in the audit log with who decided and the arguments' hash.
    let records =
        crate::audit::audit(&["list", "--db", audit.to_str().unwrap(), "--tool", "refund"]);
    let lines: Vec<Value> = records
        .1
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |transport: &str, outcome: &str, key: &str| {
        lines
            .iter()
            .find(|r| r["transport"] == transport && r["outcome"] == outcome && r["key"] == key)
            .cloned()
    };
    let created = find("job", "awaiting_approval", "agent").expect("the request is audited");
    let approved = find("approval", "approved", "approver").expect("the approval is audited");
    assert_eq!(created["args_sha256"], job["arguments_sha256"]);
    assert_eq!(approved["args_sha256"], job["arguments_sha256"]);
    assert!(
        find("approval", "denied", "operator").is_some(),
        "{lines:?}"
    );
    assert!(
        find("approval", "forbidden", "both").is_some(),
        "a refused try is audited: {lines:?}"
    );
    assert!(
        find("job", "ok", "agent").is_some(),
        "the run itself is audited: {lines:?}"
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn an_approval_nobody_decides_times_out_as_denied() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "{}\n[[tools]]\nname = \"deploy\"\nkind = \"builtin\"\nbuiltin = \"echo\"\napproval = {{ approvers = [\"*\"], timeout_ms = 1000 }}\n",
        sqlite_jobs(dir.path(), "")
    );
    let cfg = config(&extra).replace("\"fail\"]", "\"fail\", \"deploy\"]");
    let s = TestServer::spawn(&cfg).await.unwrap();
    let job = start_job(&s, AGENT, "deploy", json!({"env": "prod"})).await;
    let failed = wait_for(
        &s,
        AGENT,
        job["id"].as_str().unwrap(),
        Duration::from_secs(10),
        state_is("failed"),
    )
    .await;
    assert_eq!(failed["error"]["code"], "approval_denied");
    assert!(
        failed["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{failed}"
    );
    assert_eq!(failed["approval"]["decision"]["by"], "timeout");
    s.stop().await.unwrap();
}

/// One delivery: its headers and body.
type Delivery = (axum::http::HeaderMap, Vec<u8>);

/// A receiver of the test's own: records each delivery, refuses the first.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Delivery>>>,
}

async fn receiver() -> (Receiver, String) {
    let r = Receiver::default();
    let sink = r.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    let mut got = sink.got.lock().unwrap();
                    got.push((headers, body.to_vec()));
                    // The first delivery fails: the sender must try again.
                    if got.len() == 1 {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, format!("http://{addr}/hook"))
}

#[tokio::test]
async fn webhooks_are_signed_retried_and_guarded() {
    const SECRET: &str = "webhook-secret-for-the-test";
    const VAR: &str = "TOOLGATE_TEST_WEBHOOK_SECRET";
    let (rx, url) = receiver().await;
    let (arx, aurl) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let jobs = sqlite_jobs(
        dir.path(),
        &format!(
            "webhook_secret_env = \"{VAR}\"\nwebhook_allow_private = [\"127.0.0.1/32\"]\napproval_webhook = \"{aurl}\""
        ),
    );
    let f = crate::cli::write_config(&config(&jobs));
    let (mut child, addr, _logs) =
        crate::cli::serve_env(f.path(), Some(crate::cli::CLI_KEY), &[(VAR, SECRET)]);
    let s = Api::at(&addr);
    let resp = s
        .client
        .post(s.url("/api/v1/tools/echo/jobs"))
        .header("X-Tool-API-Key", AGENT)
        .header("X-Job-Webhook", &url)
        .json(&json!({"hello": 1}))
        .send()
        .await
        .unwrap();
    let (status, _, job) = read(resp).await;
    assert_eq!(status, 202, "{job}");
    let until = Instant::now() + Duration::from_secs(20);
    while rx.got.lock().unwrap().len() < 2 {
        assert!(Instant::now() < until, "the webhook was not retried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = rx.got.lock().unwrap().clone();
    for (headers, body) in &got {
        let sig = headers["x-toolgate-signature"].to_str().unwrap();
        let now = toolgate_jobs::now_ms() / 1000;
        assert!(
            toolgate_jobs::sign::verify(SECRET.as_bytes(), sig, body, now, 300),
            "bad signature {sig}"
        );
        assert!(!toolgate_jobs::sign::verify(b"wrong", sig, body, now, 300));
        assert_eq!(headers["x-toolgate-event"], "job.finished");
    }
    assert_ne!(
        got[0].0["x-toolgate-delivery"],
        got[1].0["x-toolgate-delivery"]
    );
    let body: Value = serde_json::from_slice(&got[1].1).unwrap();
    assert_eq!(body["job"]["id"], job["id"]);
    assert_eq!(body["job"]["state"], "succeeded");
    assert_eq!(body["job"]["output"], json!({"hello": 1}));
    // A new approval request is announced, signed.
    let _ = start_job(&s, AGENT, "refund", json!({"order": 1})).await;
    let until = Instant::now() + Duration::from_secs(10);
    while arx.got.lock().unwrap().is_empty() {
        assert!(Instant::now() < until, "the approval hook was not called");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (headers, body) = arx.got.lock().unwrap()[0].clone();
    assert_eq!(headers["x-toolgate-event"], "approval.requested");
    let now = toolgate_jobs::now_ms() / 1000;
    assert!(toolgate_jobs::sign::verify(
        SECRET.as_bytes(),
        headers["x-toolgate-signature"].to_str().unwrap(),
        &body,
        now,
        300
    ));
    let announced: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(announced["approval"]["arguments"], json!({"order": 1}));
    crate::cli::sigterm(&child);
    assert_eq!(child.wait().unwrap().code(), Some(0));

    // Without the allow-list, private and odd destinations are refused up front.
    let jobs = sqlite_jobs(dir.path(), &format!("webhook_secret_env = \"{VAR}\""));
    let f = crate::cli::write_config(&config(&jobs));
    let (mut child, addr, _logs) =
        crate::cli::serve_env(f.path(), Some(crate::cli::CLI_KEY), &[(VAR, SECRET)]);
    let s = Api::at(&addr);
    for bad in [
        url.as_str(),
        "http://169.254.169.254/latest",
        "http://[::1]:9/x",
        "ftp://example.com/x",
        "not a url",
    ] {
        let resp = s
            .client
            .post(s.url("/api/v1/tools/echo/jobs"))
            .header("X-Tool-API-Key", AGENT)
            .header("X-Job-Webhook", bad)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let (status, _, body) = read(resp).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("invalid_arguments")),
            "{bad}: {body}"
        );
    }
    crate::cli::sigterm(&child);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    // Without a secret, webhooks are refused (never sent unsigned).
    let s = TestServer::spawn(&config(&sqlite_jobs(dir.path(), "")))
        .await
        .unwrap();
    let resp = s
        .client
        .post(s.url("/api/v1/tools/echo/jobs"))
        .header("X-Tool-API-Key", AGENT)
        .header("X-Job-Webhook", "https://example.com/hook")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(resp).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("webhook_secret_env"),
        "{body}"
    );
    s.stop().await.unwrap();
}

/// Where a restart test keeps its jobs.
enum Keep {
    Sqlite,
    Postgres(String),
}

fn jobs_table(keep: &Keep, dir: &std::path::Path) -> String {
    match keep {
        Keep::Sqlite => sqlite_jobs(dir, ""),
        Keep::Postgres(table) => format!(
            "[jobs]\nurl = \"postgres://postgres@127.0.0.1:5432/test\"\ntable = \"{table}\"\nlease_ms = 2000\npoll_ms = 50\n"
        ),
    }
}

fn unique_table(prefix: &str) -> String {
    format!("{prefix}_{}", &toolgate_server::trace::generate()[..12])
}

/// Kill the real binary (SIGKILL: a crash) in the middle of a 10 s job, start it
/// again on the same store: the idempotent tool's job runs again and succeeds, the
/// other fails with the reason, and what had ended keeps its result.
async fn survives_a_crash(keep: Keep) {
    let dir = tempfile::tempdir().unwrap();
    let f = crate::cli::write_config(&config(&jobs_table(&keep, dir.path())));
    let (mut first, addr, _logs) = crate::cli::serve(f.path(), Some(crate::cli::CLI_KEY));
    let a = Api::at(&addr);
    let done_before = start_job(&a, AGENT, "echo", json!({"kept": true})).await;
    wait_for(
        &a,
        AGENT,
        done_before["id"].as_str().unwrap(),
        Duration::from_secs(10),
        state_is("succeeded"),
    )
    .await;
    let rerun = start_job(&a, AGENT, "sleep", json!({"ms": 10000})).await;
    let lost = start_job(&a, AGENT, "slow_write", json!({"ms": 10000})).await;
    for j in [&rerun, &lost] {
        wait_for(
            &a,
            AGENT,
            j["id"].as_str().unwrap(),
            Duration::from_secs(10),
            state_is("running"),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let (mut second, addr, _logs) = crate::cli::serve(f.path(), Some(crate::cli::CLI_KEY));
    let b = Api::at(&addr);
    let kept = wait_for(
        &b,
        AGENT,
        done_before["id"].as_str().unwrap(),
        Duration::from_secs(5),
        state_is("succeeded"),
    )
    .await;
    assert_eq!(kept["output"], json!({"kept": true}));
    let failed = wait_for(
        &b,
        AGENT,
        lost["id"].as_str().unwrap(),
        Duration::from_secs(20),
        |j| j["state"] != "running",
    )
    .await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], "replica_lost", "{failed}");
    assert!(
        failed["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("not idempotent"),
        "{failed}"
    );
    let again = wait_for(
        &b,
        AGENT,
        rerun["id"].as_str().unwrap(),
        Duration::from_secs(40),
        |j| j["state"] != "running" && j["state"] != "queued",
    )
    .await;
    assert_eq!(again["state"], "succeeded", "{again}");
    assert_eq!(again["output"], json!({"slept_ms": 10000}));
    assert_eq!(
        again["attempts"], 2,
        "it ran again after the crash: {again}"
    );
    crate::cli::sigterm(&second);
    assert_eq!(second.wait().unwrap().code(), Some(0));
    if let Keep::Postgres(table) = &keep {
        psql(&format!("DROP TABLE {table}"));
    }
}

#[tokio::test]
async fn a_ten_second_job_survives_a_crash_on_sqlite() {
    survives_a_crash(Keep::Sqlite).await;
}

#[tokio::test]
async fn a_ten_second_job_survives_a_crash_on_postgresql() {
    if !crate::audit::postgres_available() {
        return;
    }
    survives_a_crash(Keep::Postgres(unique_table("jobs_crash"))).await;
}

fn psql(sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-Atqc",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Two replicas share one PostgreSQL table of jobs, both claiming: 100 jobs of a
/// tool that writes a row per run each run exactly once, and each replica runs some.
#[tokio::test]
async fn two_replicas_on_postgresql_never_run_a_job_twice() {
    if !crate::audit::postgres_available() {
        return;
    }
    let table = unique_table("jobs_replicas");
    let runs = unique_table("job_runs");
    psql(&format!("CREATE TABLE {runs} (n integer NOT NULL)"));
    let cfg = format!(
        "{}\n[sources.pg]\nkind = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:5432/test\"\n\n\
         [[tools]]\nname = \"record_run\"\nkind = \"sql\"\nsource = \"pg\"\ndestructive = true\n\
         statement = \"INSERT INTO {runs} (n) SELECT :n FROM pg_sleep(0.02)\"\nparams = [{{ name = \"n\", type = \"integer\" }}]\n\n\
         [jobs]\nurl = \"postgres://postgres@127.0.0.1:5432/test\"\ntable = \"{table}\"\npoll_ms = 20\nworkers = 8\n",
        toolgate_config::DEMO_CONFIG
    );
    let a = TestServer::spawn(&cfg).await.unwrap();
    let b = TestServer::spawn(&cfg).await.unwrap();
    assert_ne!(a.state.jobs.replica(), b.state.jobs.replica());
    let mut ids = Vec::new();
    for n in 0..100 {
        let s = if n % 2 == 0 { &a } else { &b };
        ids.push(
            start_job(s, OPERATOR_KEY, "record_run", json!({"n": n})).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut ran_by = std::collections::HashMap::<String, usize>::new();
    for id in &ids {
        let job = wait_for(&a, OPERATOR_KEY, id, Duration::from_secs(60), |j| {
            j["state"] != "queued" && j["state"] != "running"
        })
        .await;
        assert_eq!(job["state"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "{job}");
        let stored = a.state.jobs.store().get(id).await.unwrap().unwrap();
        // The lease is `replica#claim`: count replicas.
        let owner = stored.lease_owner.unwrap();
        let replica = owner.split('#').next().unwrap().to_owned();
        *ran_by.entry(replica).or_default() += 1;
    }
    assert_eq!(psql(&format!("SELECT count(*) FROM {runs}")), "100");
    assert_eq!(
        psql(&format!("SELECT count(DISTINCT n) FROM {runs}")),
        "100"
    );
    assert_eq!(ran_by.len(), 2, "both replicas claimed jobs: {ran_by:?}");
    // Any replica answers for any job.
    let (status, job) = as_key(
        &b,
        OPERATOR_KEY,
        reqwest::Method::GET,
        &format!("/api/v1/jobs/{}", ids[0]),
        None,
    )
    .await;
    assert_eq!((status, job["state"].as_str()), (200, Some("succeeded")));
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    psql(&format!("DROP TABLE {runs}; DROP TABLE {table}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_approves_and_denies() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::spawn(&config(&sqlite_jobs(dir.path(), "")))
        .await
        .unwrap();
    let one = start_job(&s, AGENT, "refund", json!({"order": 1})).await;
    let two = start_job(&s, AGENT, "refund", json!({"order": 2})).await;
    let cli = |args: &[&str], key: &str| {
        let out = std::process::Command::new(crate::cli::BIN)
            .arg("approvals")
            .args(args)
            .args(["--url", &s.url("")])
            .env("TOOLGATE_API_KEY", key)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = cli(&["list"], APPROVER);
    assert_eq!(code, 0, "{err}");
    let id1 = one["id"].as_str().unwrap();
    let id2 = two["id"].as_str().unwrap();
    assert!(
        out.contains(id1) && out.contains(id2) && out.contains("refund"),
        "{out}"
    );
    let (code, _, err) = cli(&["approve", id1], APPROVER);
    assert_eq!(code, 1, "a comment is required");
    assert!(err.contains("invalid_arguments"), "{err}");
    let (code, _, err) = cli(&["approve", id1], AGENT);
    assert_eq!(code, 1);
    assert!(err.contains("403"), "{err}");
    let (code, out, err) = cli(&["approve", id1, "--comment", "ok by me"], APPROVER);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"approved\": true"), "{out}");
    let (code, _, err) = cli(&["deny", id2, "--comment", "duplicate"], APPROVER);
    assert_eq!(code, 0, "{err}");
    wait_for(
        &s,
        AGENT,
        id1,
        Duration::from_secs(10),
        state_is("succeeded"),
    )
    .await;
    wait_for(&s, AGENT, id2, Duration::from_secs(10), state_is("failed")).await;
    let (code, out, _) = cli(&["list"], APPROVER);
    assert_eq!(code, 0);
    assert!(out.contains("no pending approvals"), "{out}");
    s.stop().await.unwrap();
}

/// The official TypeScript SDK drives 2025-11-25 tasks end to end: a task streamed
/// to its result, one fetched after a reconnect, list and cancel, and a gated tool
/// whose task waits for an approver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_runs_tools_as_tasks_on_2025_11_25() {
    let Some(sdk) = crate::identity::mcp_sdk_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::spawn(&config(&sqlite_jobs(dir.path(), "")))
        .await
        .unwrap();
    let args =
        json!({"url": s.url("/mcp"), "key": AGENT, "approver_key": APPROVER, "rest": s.url("")});
    let r = crate::identity::run_sdk_script(&sdk, "tasks-client.mjs", &args).await;
    assert_eq!(
        r["capabilities"]["tasks"]["requests"]["tools"]["call"],
        json!({}),
        "{r}"
    );
    assert_eq!(r["task_support"]["sleep"], "optional", "{r}");
    assert_eq!(r["task_support"]["refund"], "required", "{r}");
    let streamed = r["streamed"].as_array().unwrap();
    assert_eq!(streamed[0]["type"], "taskCreated", "{r}");
    let last = streamed.last().unwrap();
    assert_eq!(last["type"], "result", "{r}");
    assert_eq!(
        last["result"]["content"][0]["text"], "{\"slept_ms\":1500}",
        "{r}"
    );
    assert_eq!(
        r["after_reconnect"]["result"]["content"][0]["text"], "{\"slept_ms\":2000}",
        "{r}"
    );
    assert!(r["cancel"]["listed"].as_array().unwrap().len() >= 3, "{r}");
    assert_eq!(r["cancel"]["status_after"], "cancelled", "{r}");
    assert_eq!(r["approval"]["approve_status"], 200, "{r}");
    assert!(
        r["approval"]["status_message"]
            .as_str()
            .unwrap()
            .contains("awaiting approval"),
        "{r}"
    );
    assert_eq!(
        r["approval"]["result"]["content"][0]["text"], "{\"order\":42}",
        "{r}"
    );
    assert!(
        r["plain_call_of_required"]
            .as_str()
            .unwrap()
            .contains("task"),
        "{r}"
    );
    // The tasks are the key's jobs, also over REST.
    let task_id = r["after_reconnect"]["taskId"].as_str().unwrap();
    let (status, job) = as_key(
        &s,
        AGENT,
        reqwest::Method::GET,
        &format!("/api/v1/jobs/{task_id}"),
        None,
    )
    .await;
    assert_eq!(
        (status, job["state"].as_str()),
        (200, Some("succeeded")),
        "{job}"
    );
    assert_eq!(
        s.state.registry.get("sleep").unwrap().in_flight(),
        0,
        "the cancelled task stopped"
    );
    s.stop().await.unwrap();
}

/// A completion webhook being retried is kept with its job: the server is killed
/// between two attempts, and the one started again on the same store delivers it
/// (as the second attempt, signed).
#[tokio::test]
async fn a_webhook_being_retried_survives_a_restart() {
    const SECRET: &str = "webhook-secret-for-the-restart-test";
    const VAR: &str = "TOOLGATE_TEST_WEBHOOK_SECRET";
    let (rx, url) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let jobs = sqlite_jobs(
        dir.path(),
        &format!("webhook_secret_env = \"{VAR}\"\nwebhook_allow_private = [\"127.0.0.1/32\"]"),
    );
    let f = crate::cli::write_config(&config(&jobs));
    let (mut first, addr, _logs) =
        crate::cli::serve_env(f.path(), Some(crate::cli::CLI_KEY), &[(VAR, SECRET)]);
    let a = Api::at(&addr);
    let resp = a
        .client
        .post(a.url("/api/v1/tools/echo/jobs"))
        .header("X-Tool-API-Key", AGENT)
        .header("X-Job-Webhook", &url)
        .json(&json!({"survives": true}))
        .send()
        .await
        .unwrap();
    let (status, _, job) = read(resp).await;
    assert_eq!(status, 202, "{job}");
    let until = Instant::now() + Duration::from_secs(10);
    while rx.got.lock().unwrap().is_empty() {
        assert!(Instant::now() < until, "no first delivery");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The first attempt was refused; the next is at least 250 ms away.
    tokio::time::sleep(Duration::from_millis(150)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(
        rx.got.lock().unwrap().len(),
        1,
        "killed before the second attempt"
    );
    let (mut second, _addr, _logs) =
        crate::cli::serve_env(f.path(), Some(crate::cli::CLI_KEY), &[(VAR, SECRET)]);
    let until = Instant::now() + Duration::from_secs(30);
    while rx.got.lock().unwrap().len() < 2 {
        assert!(
            Instant::now() < until,
            "the restarted server did not deliver the webhook"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (headers, body) = rx.got.lock().unwrap()[1].clone();
    let id = job["id"].as_str().unwrap();
    assert_eq!(headers["x-toolgate-delivery"], format!("{id}-2").as_str());
    let now = toolgate_jobs::now_ms() / 1000;
    let sig = headers["x-toolgate-signature"].to_str().unwrap();
    assert!(toolgate_jobs::sign::verify(
        SECRET.as_bytes(),
        sig,
        &body,
        now,
        300
    ));
    let sent: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(sent["job"]["output"], json!({"survives": true}));
    // Delivered once: nothing more comes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.got.lock().unwrap().len(), 2);
    crate::cli::sigterm(&second);
    assert_eq!(second.wait().unwrap().code(), Some(0));
}

/// A server whose PostgreSQL job store is down starts anyway: plain calls work,
/// `/readyz` reports the store degraded (still ready), and job routes answer
/// `503 jobs_unavailable` with `Retry-After`.
#[tokio::test]
async fn a_server_whose_job_store_is_down_still_serves_calls() {
    let closed = toolgate_test_support::free_port().unwrap();
    let jobs = format!(
        "[jobs]\nurl = \"postgres://postgres@{closed}/test?connect_timeout=1\"\ntable = \"jobs_down\"\n"
    );
    let s = TestServer::spawn(&config(&jobs)).await.unwrap();
    let resp = s.call("echo", &json!({"up": true})).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let (status, _, ready) = read(s.client.get(s.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{ready}");
    assert!(
        ready["checks"]["jobs"]
            .as_str()
            .unwrap()
            .starts_with("degraded"),
        "{ready}"
    );
    let resp = s
        .client
        .post(s.url("/api/v1/tools/echo/jobs"))
        .header("X-Tool-API-Key", AGENT)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("retry-after"));
    let (status, _, body) = read(resp).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("jobs_unavailable")),
        "{body}"
    );
    s.stop().await.unwrap();
}
