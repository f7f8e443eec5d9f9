//! The binary: `check`, `tools`, `call`, `keys new`, `openapi`, and `serve` (keys
//! stay out of its logs).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_toolgate");

fn toolgate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("TOOLGATE_API_KEY")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) fn write_config(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    f
}

#[test]
fn check_lists_every_problem_with_file_and_line() {
    let f = write_config(
        r#"[server]
listen = "nowhere"

[[tools]]
name = "bad name!"
kind = "builtin"
builtin = "echo"

[[tools]]
name = "q"
kind = "sql"
source = "missing"
statement = "SELECT 1"
"#,
    );
    let path = f.path().to_str().unwrap();
    let (code, _, err) = toolgate(&["check", path]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{path}:2:")), "{err}");
    assert!(err.contains(&format!("{path}:5:")), "{err}");
    assert!(err.contains(&format!("{path}:12:")), "{err}");
    assert!(err.contains("3 problem(s)"), "{err}");
}

#[test]
fn check_reports_syntax_errors_and_unknown_fields() {
    for (text, line, needle) in [
        ("[[tools]]\nname = \"x\"\nkind = \n", 3, ""),
        (
            "[[tools]]\nname = \"x\"\nkind = \"builtin\"\nbuiltin = \"echo\"\ntimeout = 5\n",
            5,
            "timeout",
        ),
        (
            "[[tools]]\nname = \"x\"\nkind = \"teleport\"\n",
            3,
            "teleport",
        ),
    ] {
        let f = write_config(text);
        let path = f.path().to_str().unwrap();
        let (code, _, err) = toolgate(&["check", path]);
        assert_eq!(code, 2);
        assert!(err.contains(&format!("{path}:{line}:")), "{err}");
        assert!(err.contains(needle), "{err}");
    }
    let (code, _, err) = toolgate(&["check", "/nonexistent/toolgate.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn check_reports_sql_statements_that_do_not_match_their_params() {
    let f = write_config(
        r#"[sources.demo]
kind = "sqlite"
demo = true

[[tools]]
name = "by_country"
kind = "sql"
source = "demo"
statement = "SELECT * FROM customers WHERE country = :country AND city = :city"
params = [{ name = "country", type = "string" }]
"#,
    );
    let path = f.path().to_str().unwrap();
    let (code, _, err) = toolgate(&["check", path]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{path}:9:")), "{err}");
    assert!(err.contains("city"), "{err}");
}

#[test]
fn check_accepts_a_good_file() {
    let f = write_config(toolgate_config::DEMO_CONFIG);
    let (code, out, err) = toolgate(&["check", f.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok (7 tools)"), "{out}");
}

#[test]
fn tools_and_call_work_in_process() {
    let (code, out, _) = toolgate(&["tools"]);
    assert_eq!(code, 0);
    for name in [
        "echo",
        "sleep",
        "fail",
        "run_database_query",
        "run_system_audit",
    ] {
        assert!(out.contains(name), "{out}");
    }
    let (code, out, _) = toolgate(&["tools", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["tools"].as_array().unwrap().len() >= 5);

    let (code, out, _) = toolgate(&["call", "echo", "--args", r#"{"hello":"world"}"#]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"hello": "world"})
    );

    let (code, _, err) = toolgate(&["call", "fail", "--args", r#"{"message":"bad"}"#]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&err).unwrap();
    assert_eq!(v["code"], "tool_error");

    let (code, _, err) = toolgate(&["call", "echo", "--args", "[1]"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn openapi_prints_the_document() {
    let (code, out, _) = toolgate(&["openapi"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["openapi"], "3.1.0");
}

/// Lines a child wrote to stderr, collected by a thread so the pipe never fills.
pub(crate) type Logs = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Start `toolgate serve` on a free port; returns the child, its address and its
/// log lines so far (still growing). The caller waits for the child.
#[allow(clippy::zombie_processes)]
/// Send SIGTERM to `child`.
pub(crate) fn sigterm(child: &std::process::Child) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// An operator key long enough for `serve` (at least 32 characters).
pub(crate) const CLI_KEY: &str = "cli-operator-key-0123456789abcdef0";

pub(crate) fn serve(
    config: &std::path::Path,
    key: Option<&str>,
) -> (std::process::Child, String, Logs) {
    serve_env(config, key, &[])
}

/// [`serve`] with more environment variables.
pub(crate) fn serve_env(
    config: &std::path::Path,
    key: Option<&str>,
    envs: &[(&str, &str)],
) -> (std::process::Child, String, Logs) {
    let mut cmd = Command::new(BIN);
    cmd.envs(envs.iter().copied());
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--config",
        config.to_str().unwrap(),
    ])
    .env_remove("TOOLGATE_API_KEY")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    if let Some(k) = key {
        cmd.env("TOOLGATE_API_KEY", k);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let logs: Logs = Default::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = std::sync::Arc::clone(&logs);
    std::thread::spawn(move || {
        for line in stderr.lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["msg"] == "listening"
            {
                let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
            }
            sink.lock().unwrap().push(line);
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the server did not start");
    (child, addr, logs)
}

#[tokio::test]
async fn keys_new_makes_a_key_the_server_accepts_and_never_logs() {
    let (code, out, _) = toolgate(&["keys", "new", "--name", "ci-bot", "--scopes", "echo,run_*"]);
    assert_eq!(code, 0);
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("key:  "))
        .unwrap()
        .to_owned();
    let snippet = out.split_once("[[keys]]").unwrap().1;
    assert!(
        !snippet.contains(&key),
        "the config snippet must not hold the key"
    );
    let config = format!("{}\n[[keys]]{snippet}", toolgate_config::DEMO_CONFIG);
    let f = write_config(&config);
    let operator = "operator-secret-for-the-log-test-0123";
    let (mut child, addr, logs) = serve(f.path(), Some(operator));

    let client = reqwest::Client::new();
    let call = |tool: &str, k: &str| {
        client
            .post(format!("http://{addr}/api/v1/tools/{tool}"))
            .header("Authorization", format!("Bearer {k}"))
            .json(&json!({}))
            .send()
    };
    assert_eq!(call("echo", &key).await.unwrap().status(), 200);
    assert_eq!(call("fail", &key).await.unwrap().status(), 403);
    assert_eq!(call("echo", operator).await.unwrap().status(), 200);
    assert_eq!(call("echo", "wrong-key").await.unwrap().status(), 403);

    // SIGTERM drains and exits 0.
    sigterm(&child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    // The log thread sees end of file once the child exited.
    std::thread::sleep(Duration::from_millis(200));
    let logs: Vec<String> = logs.lock().unwrap().clone();
    let all = logs.join("\n");
    assert!(!all.contains(&key), "a key leaked into the logs");
    assert!(
        !all.contains(operator),
        "the operator key leaked into the logs"
    );
    assert!(
        !all.contains("wrong-key"),
        "a presented key leaked into the logs"
    );
    let call_lines: Vec<Value> = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["msg"]
                .as_str()
                .is_some_and(|m| m.starts_with("tool call"))
        })
        .collect();
    assert!(
        call_lines
            .iter()
            .any(|v| v["key"] == "ci-bot" && v["tool"] == "echo" && v["outcome"] == "ok")
    );
    assert!(call_lines.iter().any(|v| v["key"] == "operator"));
    for v in &call_lines {
        for field in [
            "ts",
            "level",
            "msg",
            "trace_id",
            "tool",
            "key",
            "duration_ms",
            "outcome",
        ] {
            assert!(!v[field].is_null(), "{field} missing in {v}");
        }
    }
}

#[tokio::test]
async fn serve_without_any_key_generates_one() {
    let f = write_config(toolgate_config::DEMO_CONFIG);
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            f.path().to_str().unwrap(),
        ])
        .env_remove("TOOLGATE_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    for _ in 0..2 {
        stdout.read_line(&mut text).unwrap();
    }
    let _ = child.kill();
    let _ = child.wait();
    let key = text.lines().nth(1).unwrap().trim();
    assert!(key.starts_with("tg_") && key.len() > 40, "{text}");
}

#[test]
fn env_references_in_the_config_are_expanded_and_checked() {
    let f = write_config(
        "[[keys]]\nname = \"ci\"\nhash = \"${TG_TEST_KEY_HASH}\"\nscopes = [\"echo\"]\n\n[sources.db]\nkind = \"sqlite\"\npath = \"${TG_TEST_DB_DIR:-/nonexistent}/x.db\"\n",
    );
    let path = f.path().to_str().unwrap();
    let hash = toolgate_config::KeyHash::of("k").to_string();
    let dir = tempfile::tempdir().unwrap();
    rusqlite_free_db(dir.path());
    let ok = Command::new(BIN)
        .args(["check", path])
        .env("TG_TEST_KEY_HASH", &hash)
        .env("TG_TEST_DB_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let missing = Command::new(BIN)
        .args(["check", path])
        .env_remove("TG_TEST_KEY_HASH")
        .env("TG_TEST_DB_DIR", dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        err.contains(&format!("{path}:3:")) && err.contains("TG_TEST_KEY_HASH is not set"),
        "{err}"
    );
}

/// Make an empty SQLite database file at `dir/x.db` by asking toolgate itself to do
/// nothing with it: an empty file is a valid empty SQLite database.
fn rusqlite_free_db(dir: &std::path::Path) {
    std::fs::write(dir.join("x.db"), b"").unwrap();
}

#[tokio::test]
async fn sigterm_with_fifty_calls_in_flight_completes_them_all_and_exits_zero() {
    let f = write_config(toolgate_config::DEMO_CONFIG);
    let (mut child, addr, _logs) = serve(f.path(), Some(CLI_KEY));
    let client = reqwest::Client::new();
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let req = client
                .post(format!("http://{addr}/api/v1/tools/sleep"))
                .header("X-Tool-API-Key", CLI_KEY)
                .json(&json!({"ms": 2000}))
                .send();
            tokio::spawn(req)
        })
        .collect();
    // Let every call reach the server before the signal.
    tokio::time::sleep(Duration::from_millis(500)).await;
    sigterm(&child);
    // While draining, readiness is 503 and the listener still answers.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ready = client
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    for c in calls {
        let resp = c.await.unwrap().unwrap();
        assert_eq!(resp.status(), 200);
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn sighup_reloads_the_config_instead_of_stopping_the_server() {
    let f = write_config(toolgate_config::DEMO_CONFIG);
    let (mut child, addr, _logs) = serve(f.path(), Some(CLI_KEY));
    let extra = "\n[[tools]]\nname = \"echo_again\"\nkind = \"builtin\"\nbuiltin = \"echo\"\n";
    std::fs::write(f.path(), format!("{}{extra}", toolgate_config::DEMO_CONFIG)).unwrap();
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let client = reqwest::Client::new();
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the reload never happened"
        );
        let resp = client
            .post(format!("http://{addr}/api/v1/tools/echo_again"))
            .header("X-Tool-API-Key", CLI_KEY)
            .json(&json!({"a": 1}))
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP must not stop the server"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn serve_refuses_a_short_operator_key() {
    let f = write_config(toolgate_config::DEMO_CONFIG);
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            f.path().to_str().unwrap(),
        ])
        .env("TOOLGATE_API_KEY", "dev-key")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 32"), "{err}");
}

#[test]
fn check_reports_bad_auth_issuers_at_their_lines() {
    let f = write_config(
        r#"[auth]
resource = "tools.example.com"

[[auth.issuers]]
name = "corp"
issuer = "https://login.example.com"
algorithms = ["HS256"]
leeway_s = 9000

[auth.issuers.grants]
"tools:read" = [""]
"#,
    );
    let path = f.path().to_str().unwrap();
    let (code, _, err) = toolgate(&["check", path]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{path}:2:")), "resource: {err}");
    assert!(err.contains(&format!("{path}:7:")), "algorithms: {err}");
    assert!(err.contains("HS256"), "{err}");
    assert!(err.contains(&format!("{path}:8:")), "leeway: {err}");
    assert!(err.contains("leeway_s must be 0..=300"), "{err}");
    // An issuer without an audience needs [auth] resource.
    let f =
        write_config("[[auth.issuers]]\nname = \"corp\"\nissuer = \"https://login.example.com\"\n");
    let path = f.path().to_str().unwrap();
    let (code, _, err) = toolgate(&["check", path]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs `audience`"), "{err}");
    // The 401's scope must be values the grants map.
    let f = write_config(
        "[auth]\nresource = \"https://tools.example.com\"\nscope = \"tools:read tools:write\"\n\n[[auth.issuers]]\nname = \"corp\"\nissuer = \"https://login.example.com\"\n\n[auth.issuers.grants]\n\"tools:read\" = [\"*\"]\n",
    );
    let path = f.path().to_str().unwrap();
    let (code, _, err) = toolgate(&["check", path]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{path}:3:")), "{err}");
    assert!(err.contains("\"tools:write\""), "{err}");
}

#[test]
fn check_refuses_session_settings_outside_postgresql() {
    let f = write_config(
        r#"[sources.demo]
kind = "sqlite"
demo = true

[[tools]]
name = "mine"
kind = "sql"
source = "demo"
statement = "SELECT 1"
session = { "tenant" = "tenant_id" }
"#,
    );
    let path = f.path().to_str().unwrap();
    let (code, _, err) = toolgate(&["check", path]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("only for sql tools on a postgres source"),
        "{err}"
    );
    assert!(err.contains("must be `prefix.name`"), "{err}");
}
