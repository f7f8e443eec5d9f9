//! `notifications/tools/list_changed` after a hot reload: over the session's GET
//! stream (2025-11-25) and on a `subscriptions/listen` stream (2026-07-28).

use std::time::Duration;

use rmcp::model::{ServerNotification, SubscriptionFilter};
use toolgate_test_support::{OPERATOR_KEY, TestServer};

use super::{Rev, connect};

const BEFORE: &str = r#"
[[tools]]
name = "echo"
kind = "builtin"
builtin = "echo"
"#;

const AFTER: &str = r#"
[[tools]]
name = "echo"
kind = "builtin"
builtin = "echo"

[[tools]]
name = "echo_again"
kind = "builtin"
builtin = "echo"
description = "Added by a reload."
"#;

async fn tool_names(c: &super::Client) -> Vec<String> {
    let tools = c.service.list_all_tools().await.unwrap();
    tools.into_iter().map(|t| t.name.into_owned()).collect()
}

#[tokio::test]
async fn legacy_session_hears_of_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toolgate.toml");
    std::fs::write(&path, BEFORE).unwrap();
    let s = TestServer::spawn_file(&path).await.unwrap();
    let mut c = connect(&s, OPERATOR_KEY, Rev::Legacy).await;
    assert_eq!(tool_names(&c).await, ["echo"]);
    // The client opens its GET stream after `initialized`; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;

    std::fs::write(&path, AFTER).unwrap();
    tokio::time::timeout(Duration::from_secs(10), c.changed.recv())
        .await
        .expect("no tools/list_changed within 10 s")
        .unwrap();
    assert_eq!(tool_names(&c).await, ["echo", "echo_again"]);
    c.service.cancel().await.unwrap();
}

#[tokio::test]
async fn modern_listener_hears_of_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toolgate.toml");
    std::fs::write(&path, BEFORE).unwrap();
    let s = TestServer::spawn_file(&path).await.unwrap();
    let c = connect(&s, OPERATOR_KEY, Rev::Modern).await;
    assert_eq!(tool_names(&c).await, ["echo"]);
    let mut subscription = c
        .service
        .listen(SubscriptionFilter::builder().tools_list_changed().build())
        .await
        .unwrap();
    assert_eq!(subscription.acknowledged().tools_list_changed, Some(true));

    std::fs::write(&path, AFTER).unwrap();
    let note = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("no tools/list_changed within 10 s")
        .unwrap();
    assert!(
        matches!(
            note,
            Some(ServerNotification::ToolListChangedNotification(_))
        ),
        "{note:?}"
    );
    assert_eq!(tool_names(&c).await, ["echo", "echo_again"]);
    subscription.cancel().await.unwrap();
    c.service.cancel().await.unwrap();
}

#[tokio::test]
async fn modern_listener_ends_cleanly_when_the_server_drains() {
    let s = TestServer::demo().await.unwrap();
    let c = connect(&s, OPERATOR_KEY, Rev::Modern).await;
    let mut subscription = c
        .service
        .listen(SubscriptionFilter::builder().tools_list_changed().build())
        .await
        .unwrap();
    let stop = tokio::spawn(s.stop());
    let end = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("the listen stream outlived the drain");
    assert!(matches!(end, Ok(None)), "{end:?}");
    stop.await.unwrap().unwrap();
}

/// `logging/setLevel` (2025-11-25): after it, the session hears about its own calls
/// at that level or above; before it, nothing.
#[tokio::test]
#[allow(deprecated)]
async fn a_session_that_sets_a_log_level_hears_about_its_calls() {
    use rmcp::model::{LoggingLevel, SetLevelRequestParams};
    use serde_json::json;
    let s = TestServer::demo().await.unwrap();
    let mut c = connect(&s, OPERATOR_KEY, Rev::Legacy).await;
    super::call(&c, "echo", json!({"a": 1})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(c.logs.try_recv().is_err(), "no level, no messages");

    c.service
        .set_level(SetLevelRequestParams::new(LoggingLevel::Error))
        .await
        .unwrap();
    super::call(&c, "echo", json!({"a": 1})).await;
    let failed = super::call(&c, "fail", json!({"message": "on purpose"})).await;
    assert_eq!(failed.is_error, Some(true));
    let msg = tokio::time::timeout(Duration::from_secs(10), c.logs.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg["level"], "error", "{msg}");
    assert_eq!(msg["logger"], "toolgate");
    assert_eq!(
        msg["data"]["tool"], "fail",
        "the successful echo is below error: {msg}"
    );

    c.service
        .set_level(SetLevelRequestParams::new(LoggingLevel::Debug))
        .await
        .unwrap();
    super::call(&c, "echo", json!({"a": 2})).await;
    let msg = tokio::time::timeout(Duration::from_secs(10), c.logs.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (&msg["level"], &msg["data"]["outcome"]),
        (&json!("debug"), &json!("ok")),
        "{msg}"
    );
    c.service.cancel().await.unwrap();
}
