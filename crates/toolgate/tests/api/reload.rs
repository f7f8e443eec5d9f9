//! Hot reload: tools added, changed and removed under load without losing a call;
//! an invalid file changes nothing; SIGHUP reloads instead of killing the process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use toolgate_test_support::TestServer;

use crate::{read, tool_names};

const BASE: &str = r#"
[[tools]]
name = "echo"
kind = "builtin"
builtin = "echo"

[[tools]]
name = "sleep"
kind = "builtin"
builtin = "sleep"

[[tools]]
name = "old_tool"
kind = "builtin"
builtin = "echo"
description = "Going away."
"#;

const NEXT: &str = r#"
[[tools]]
name = "echo"
kind = "builtin"
builtin = "echo"

[[tools]]
name = "sleep"
kind = "builtin"
builtin = "sleep"
description = "Sleep, now with a new description."

[[tools]]
name = "new_tool"
kind = "builtin"
builtin = "echo"
"#;

async fn wait_for(s: &TestServer, name: &str, present: bool) {
    let start = Instant::now();
    while tool_names(s).await.contains(&name.to_owned()) != present {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the reload of {name} never happened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_reload_under_load_loses_no_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toolgate.toml");
    std::fs::write(&path, BASE).unwrap();
    let s = Arc::new(TestServer::spawn_file(&path).await.unwrap());

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for i in 0..8 {
        let (s, stop, ok, failed) = (
            Arc::clone(&s),
            Arc::clone(&stop),
            Arc::clone(&ok),
            Arc::clone(&failed),
        );
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let (tool, args) = if i % 2 == 0 {
                    ("echo", json!({"i": i}))
                } else {
                    ("sleep", json!({"ms": 30}))
                };
                match s
                    .call(tool, &args)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                {
                    Ok(200) => ok.fetch_add(1, Ordering::SeqCst),
                    _ => failed.fetch_add(1, Ordering::SeqCst),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(&path, NEXT).unwrap();
    wait_for(&s, "new_tool", true).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    for h in load {
        h.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "calls were lost during the reload"
    );
    assert!(ok.load(Ordering::SeqCst) > 20);

    let names = tool_names(&s).await;
    assert!(!names.contains(&"old_tool".to_owned()));
    let (_, _, sleep) = read(s.get("/api/v1/tools/sleep").send().await.unwrap()).await;
    assert_eq!(sleep["description"], "Sleep, now with a new description.");
    let (_, _, doc) = read(s.client.get(s.url("/openapi.json")).send().await.unwrap()).await;
    assert!(
        doc["paths"]["/api/v1/tools/new_tool"].is_object(),
        "the OpenAPI document follows"
    );
    assert!(doc["paths"]["/api/v1/tools/old_tool"].is_null());
    let resp = s.call("old_tool", &json!({})).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_call_in_flight_finishes_on_the_definition_it_started_with() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toolgate.toml");
    std::fs::write(&path, BASE).unwrap();
    let s = TestServer::spawn_file(&path).await.unwrap();
    let call = tokio::spawn(s.call("sleep", &json!({"ms": 800})).send());
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The new file drops `sleep` altogether.
    std::fs::write(
        &path,
        BASE.replace(
            "name = \"sleep\"\nkind = \"builtin\"\nbuiltin = \"sleep\"",
            "name = \"nap\"\nkind = \"builtin\"\nbuiltin = \"sleep\"",
        ),
    )
    .unwrap();
    wait_for(&s, "nap", true).await;
    let (status, _, body) = read(call.await.unwrap().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"], json!({"slept_ms": 800}));
}

#[tokio::test]
async fn an_invalid_reload_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toolgate.toml");
    std::fs::write(&path, BASE).unwrap();
    let s = TestServer::spawn_file(&path).await.unwrap();
    let before = tool_names(&s).await;
    let loaded = toolgate_config::LoadedConfig::from_file(&path).unwrap();
    // Broken in two ways: a duplicate tool and a SQL tool without a source.
    let broken = format!(
        "{NEXT}\n[[tools]]\nname = \"echo\"\nkind = \"builtin\"\nbuiltin = \"echo\"\n\n[[tools]]\nname = \"q\"\nkind = \"sql_query\"\n"
    );
    std::fs::write(&path, &broken).unwrap();
    let err = toolgate_server::reload::reload_file(&s.state, &path, &loaded.config.server)
        .await
        .unwrap_err();
    assert_eq!(err.0.len(), 2, "{err}");
    // Give the watcher its own go at the broken file too.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(tool_names(&s).await, before);
    let (status, _, _) = read(s.call("old_tool", &json!({})).send().await.unwrap()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn reloaded_keys_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toolgate.toml");
    std::fs::write(&path, BASE).unwrap();
    let s = TestServer::spawn_file(&path).await.unwrap();
    let as_new_key = || {
        s.client
            .post(s.url("/api/v1/tools/echo"))
            .header("X-Tool-API-Key", "tg_new")
            .json(&json!({}))
            .send()
    };
    assert_eq!(as_new_key().await.unwrap().status(), 403);
    let with_key = format!(
        "{BASE}{}",
        toolgate_test_support::key_entry("new", "tg_new", &["echo"])
    );
    std::fs::write(&path, with_key).unwrap();
    let start = Instant::now();
    while as_new_key().await.unwrap().status() != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the new key never worked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The operator key survives the reload.
    assert_eq!(
        s.call("echo", &json!({})).send().await.unwrap().status(),
        200
    );
}

/// Files are replaced, not only rewritten: an editor renames a new file over the old
/// one, and Kubernetes updates a mounted ConfigMap by swapping the symlinked `..data`
/// directory. Both reload, again and again; writes to other files beside the config
/// (an audit database, say) do not.
#[cfg(unix)]
#[tokio::test]
async fn replaced_files_and_configmap_swaps_reload() {
    use std::os::unix::fs::symlink;

    // Editor style: write elsewhere, rename over.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toolgate.toml");
    std::fs::write(&path, BASE).unwrap();
    let s = TestServer::spawn_file(&path).await.unwrap();
    for (round, text) in [NEXT, BASE, NEXT].into_iter().enumerate() {
        let tmp = dir.path().join(format!(".toolgate.toml.{round}"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        wait_for(&s, "new_tool", text == NEXT).await;
    }
    drop(s);

    // ConfigMap style: toolgate.toml -> ..data/toolgate.toml, ..data -> ..<version>.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let version = |n: u32, text: &str| {
        let d = root.join(format!("..v{n}"));
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("toolgate.toml"), text).unwrap();
    };
    version(0, BASE);
    symlink("..v0", root.join("..data")).unwrap();
    symlink("..data/toolgate.toml", root.join("toolgate.toml")).unwrap();
    let s = TestServer::spawn_file(&root.join("toolgate.toml"))
        .await
        .unwrap();
    for (n, text) in [(1, NEXT), (2, BASE), (3, NEXT)] {
        version(n, text);
        symlink(format!("..v{n}"), root.join("..tmp")).unwrap();
        std::fs::rename(root.join("..tmp"), root.join("..data")).unwrap();
        std::fs::remove_dir_all(root.join(format!("..v{}", n - 1))).unwrap();
        wait_for(&s, "new_tool", text == NEXT).await;
    }

    // Busy neighbours are not the config.
    let reloads = || *s.state.registry.subscribe().borrow();
    let before = reloads();
    for i in 0..50 {
        std::fs::write(root.join("audit.db-wal"), format!("{i}")).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(reloads(), before, "a write beside the config reloaded it");
}
