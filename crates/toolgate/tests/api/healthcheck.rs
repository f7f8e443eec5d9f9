//! `toolgate healthcheck`: the container image's HEALTHCHECK (the image has no curl).
//! Exit 0 on `200`, 1 on anything else, including no answer.

use std::process::Command;
use std::time::{Duration, Instant};

use toolgate_test_support::TestServer;

use crate::cli::BIN;

/// Run `toolgate healthcheck ARGS` off the runtime (the test server runs on it).
async fn healthcheck(args: &[&str]) -> (i32, String, String, Duration) {
    let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let out = Command::new(BIN)
            .arg("healthcheck")
            .args(&args)
            .env_remove("TOOLGATE_HEALTHCHECK_URL")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            start.elapsed(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn healthcheck_exits_zero_on_200_and_one_otherwise() {
    let s = TestServer::demo().await.unwrap();
    let (code, out, err, _) = healthcheck(&["--url", &s.url("/healthz")]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("200"), "{out}");
    let (code, _, err, _) = healthcheck(&["--url", &s.url("/readyz")]).await;
    assert_eq!(code, 0, "{err}");

    // Another status is a failure: an unknown path is 404.
    let (code, _, err, _) = healthcheck(&["--url", &s.url("/no-such-path")]).await;
    assert_eq!(code, 1);
    assert!(err.contains("status 404"), "{err}");

    // The URL also comes from the environment (the image sets it).
    let url = s.url("/healthz");
    let env_ok = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .arg("healthcheck")
            .env("TOOLGATE_HEALTHCHECK_URL", url)
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(env_ok.code(), Some(0));

    // A draining server is alive but not ready.
    s.state.readiness.set_draining();
    let (code, _, err, _) = healthcheck(&["--url", &s.url("/readyz")]).await;
    assert_eq!(code, 1);
    assert!(err.contains("status 503"), "{err}");
    let (code, _, _, _) = healthcheck(&["--url", &s.url("/healthz")]).await;
    assert_eq!(code, 0);
}

#[tokio::test]
async fn healthcheck_fails_on_a_closed_port_a_silent_peer_and_a_bad_url() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}/healthz");
    let (code, _, err, _) = healthcheck(&["--url", &url]).await;
    assert_eq!(code, 1);
    assert!(err.contains(&url), "{err}");

    // A peer that accepts (the kernel completes the handshake) but never answers:
    // the timeout ends the check.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/healthz", silent.local_addr().unwrap());
    let (code, _, err, took) = healthcheck(&["--url", &url, "--timeout-ms", "300"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("no answer within 300 ms"), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    drop(silent);

    // Docker reserves exit code 2 in a HEALTHCHECK: a bad URL is 1 too.
    for bad in ["https://127.0.0.1/healthz", "127.0.0.1:8080", "http://:80/"] {
        let (code, _, err, _) = healthcheck(&["--url", bad]).await;
        assert_eq!(code, 1, "{bad}: {err}");
    }
}
