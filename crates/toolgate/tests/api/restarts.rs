//! Real restarts, no proxy: a PostgreSQL server of the test's own
//! ([`PrivatePostgres`]) stopped (cleanly, or killed as in a crash) and started
//! again under load, for the audit store and for SQL tools; and a SQLite audit log
//! locked by another process. Each asserts what callers get, that every answered call
//! is in a verified log, and that the server recovers by itself.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use toolgate_test_support::{PrivatePostgres, Shutdown, TestServer};

use crate::faults::{
    Answer, answered_all, answered_ok, assert_log_holds, by_status, call, figure, first_ok_after,
    load_on, metric, metrics, ms, outage, slowest, until_audit_recovered, until_ok,
};

/// A private PostgreSQL server, or `None` (loudly) where the binaries are missing;
/// under CI they must be there.
fn private_postgres() -> Option<PrivatePostgres> {
    if !PrivatePostgres::available() {
        assert!(
            std::env::var("CI").is_err(),
            "the PostgreSQL server binaries (initdb, pg_ctl) must be installed under CI"
        );
        eprintln!("SKIPPED: no PostgreSQL server binaries here; this restart test did not run");
        return None;
    }
    Some(PrivatePostgres::start().unwrap())
}

/// When a restart's server was down: from `stopped` (it was gone) to `starting`
/// (asked to start); `back` once it accepted connections again.
#[derive(Debug, Clone, Copy)]
struct Restart {
    stopped: Instant,
    starting: Instant,
    back: Instant,
}

/// Stop `pg` as `how`, keep it down for [`outage`], start it again.
async fn restart(pg: &Arc<PrivatePostgres>, how: Shutdown) -> Restart {
    let stopping = Arc::clone(pg);
    tokio::task::spawn_blocking(move || stopping.stop(how))
        .await
        .unwrap()
        .unwrap();
    let stopped = Instant::now();
    tokio::time::sleep(outage()).await;
    let starting = Instant::now();
    let pg = Arc::clone(pg);
    tokio::task::spawn_blocking(move || pg.start_again())
        .await
        .unwrap()
        .unwrap();
    Restart {
        stopped,
        starting,
        back: Instant::now(),
    }
}

fn audit_on(pg: &PrivatePostgres, dir: &std::path::Path, durability: &str) -> String {
    format!(
        "{}\n[audit]\nurl = \"{}\"\ntable = \"audit_restart\"\ndurability = \"{durability}\"\nspool_path = \"{}\"\nstatement_timeout_ms = 1000\nconnect_timeout_ms = 1000\nreconnect_max_ms = 400\n",
        toolgate_config::DEMO_CONFIG,
        pg.url(),
        dir.join("spool.db").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_database_restarted_and_crashed_mid_load_loses_nothing_with_async() {
    let Some(pg) = private_postgres() else {
        return;
    };
    let pg = Arc::new(pg);
    let dir = tempfile::tempdir().unwrap();
    let config = audit_on(&pg, dir.path(), "async");
    let s = Arc::new(TestServer::spawn(&config).await.unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load_on(Arc::clone(&s), "echo", 4, Arc::clone(&stop)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut figures = Vec::new();
    for how in [Shutdown::Fast, Shutdown::Immediate] {
        let back = restart(&pg, how).await.back;
        let spooled = metric(&metrics(&s).await, "toolgate_audit_spooled_records");
        until_audit_recovered(&s).await;
        figures.push((how, spooled, back.elapsed()));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let answers = loader.await.unwrap();
    // A database away costs `async` callers nothing.
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status != 200).take(5).collect();
    assert!(refused.is_empty(), "{refused:?}");
    let m = metrics(&s).await;
    assert!(metric(&m, "toolgate_audit_store_reconnects_total") >= 2.0);
    assert_eq!(metric(&m, "toolgate_audit_records_lost_total"), 0.0);
    Arc::into_inner(s).unwrap().stop().await.unwrap();
    let kept = assert_log_holds(&config, &answered_ok(&answers));
    for (how, spooled, recovery) in figures {
        figure(
            &format!("audit-pg-restart-{how:?}-async").to_lowercase(),
            &[
                ("down_ms", ms(outage())),
                ("spooled_when_back", spooled.to_string()),
                ("drained_after_ms", ms(recovery)),
            ],
        );
    }
    figure(
        "audit-pg-restart-async-total",
        &[
            ("calls", by_status(&answers)),
            ("records_kept", kept.to_string()),
            ("lost", "0".into()),
            ("slowest_call_ms", ms(slowest(&answers))),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_database_crashed_mid_load_with_sync_refuses_and_keeps_every_200() {
    let Some(pg) = private_postgres() else {
        return;
    };
    let pg = Arc::new(pg);
    let dir = tempfile::tempdir().unwrap();
    let config = audit_on(&pg, dir.path(), "sync");
    let s = Arc::new(TestServer::spawn(&config).await.unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load_on(Arc::clone(&s), "echo", 4, Arc::clone(&stop)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = restart(&pg, Shutdown::Immediate).await;
    until_audit_recovered(&s).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let answers = loader.await.unwrap();
    let during: Vec<Answer> = answers
        .iter()
        .filter(|a| a.at > r.stopped && a.at < r.starting)
        .cloned()
        .collect();
    // While the database is away, `sync` calls are refused, at once, never a 200.
    assert!(!during.is_empty());
    assert!(
        during
            .iter()
            .all(|a| a.status == 503 && a.code == "audit_unavailable"),
        "{}",
        by_status(&during)
    );
    assert!(slowest(&answers) < Duration::from_secs(5));
    let recovery = first_ok_after(&answers, r.back).expect("no 200 after the restart");
    Arc::into_inner(s).unwrap().stop().await.unwrap();
    // Every 200 is committed; the refused calls' records too (spooled, then drained).
    let kept = assert_log_holds(&config, &answered_all(&answers));
    figure(
        "audit-pg-crash-sync",
        &[
            ("down_ms", ms(outage())),
            ("calls", by_status(&answers)),
            ("during", by_status(&during)),
            ("slowest_call_ms", ms(slowest(&answers))),
            ("records_kept", kept.to_string()),
            ("first_200_after_ms", ms(recovery)),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_tools_on_a_database_restarted_mid_load_answer_in_time_and_recover() {
    let Some(pg) = private_postgres() else {
        return;
    };
    let pg = Arc::new(pg);
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}\n[sources.db]\nkind = \"postgres\"\nurl = \"{}\"\n\n[[tools]]\nname = \"one\"\nkind = \"sql\"\nsource = \"db\"\nstatement = \"SELECT 1 AS one\"\nparams = []\ntimeout_ms = 1000\n\n[audit]\npath = \"{}\"\n",
        toolgate_config::DEMO_CONFIG,
        pg.url(),
        dir.path().join("audit.db").display()
    );
    let s = Arc::new(TestServer::spawn(&config).await.unwrap());
    assert_eq!(call(&s, "one", &json!({})).await.unwrap().status, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load_on(Arc::clone(&s), "one", 4, Arc::clone(&stop)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut recoveries = Vec::new();
    for how in [Shutdown::Fast, Shutdown::Immediate] {
        let back = restart(&pg, how).await.back;
        // Recovered: a call answers 200 again within 20 s, without a restart of ours.
        until_ok(&s, "one", &json!({})).await;
        recoveries.push((how, back.elapsed()));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let answers = loader.await.unwrap();
    // Meanwhile: errors of the dependency (not 500, not a tool error), in time.
    let wrong: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status != 200 && a.status <= 500)
        .take(5)
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");
    assert!(
        answers.iter().any(|a| a.status != 200),
        "the restarts were not seen"
    );
    assert!(slowest(&answers) < Duration::from_secs(5));
    Arc::into_inner(s).unwrap().stop().await.unwrap();
    let kept = assert_log_holds(&config, &answered_all(&answers));
    for (how, recovery) in recoveries {
        figure(
            &format!("sql-pg-restart-{how:?}").to_lowercase(),
            &[
                ("down_ms", ms(outage())),
                ("first_200_after_ms", ms(recovery)),
            ],
        );
    }
    figure(
        "sql-pg-restart-total",
        &[
            ("calls", by_status(&answers)),
            ("slowest_call_ms", ms(slowest(&answers))),
            ("records_kept", kept.to_string()),
        ],
    );
}

/// Another process (Python's sqlite3) takes the write lock of the SQLite audit log
/// and holds it for `hold`; returns once the lock is held, with the child to wait on.
fn lock_sqlite(db: &std::path::Path, hold: Duration) -> std::process::Child {
    let script = "import sqlite3, sys, time\n\
        c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)\n\
        c.execute('BEGIN EXCLUSIVE')\n\
        print('locked', flush=True)\n\
        time.sleep(float(sys.argv[2]))\n\
        c.execute('COMMIT')\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .arg(db)
        .arg(hold.as_secs_f64().to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_audit_log_locked_by_another_process_spools_or_refuses_then_recovers() {
    for durability in ["async", "sync"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let config = format!(
            "{}\n[audit]\npath = \"{}\"\ndurability = \"{durability}\"\nstatement_timeout_ms = 300\nreconnect_max_ms = 400\n",
            toolgate_config::DEMO_CONFIG,
            db.display()
        );
        let s = Arc::new(TestServer::spawn(&config).await.unwrap());
        assert_eq!(call(&s, "echo", &json!({})).await.unwrap().status, 200);
        let stop = Arc::new(AtomicBool::new(false));
        let loader = tokio::spawn(load_on(Arc::clone(&s), "echo", 4, Arc::clone(&stop)));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let hold = outage() + Duration::from_secs(1);
        let (locked, mut locker) = {
            let db = db.clone();
            tokio::task::spawn_blocking(move || (Instant::now(), lock_sqlite(&db, hold)))
                .await
                .unwrap()
        };
        // While the lock is held, readiness says the log is failing.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let ready: Value = s.get("/readyz").send().await.unwrap().json().await.unwrap();
        assert_ne!(ready["checks"]["audit"], "ok", "{durability}: {ready}");
        let during_metrics = metrics(&s).await;
        tokio::task::spawn_blocking(move || locker.wait())
            .await
            .unwrap()
            .unwrap();
        let released = Instant::now();
        let drained = until_audit_recovered(&s).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::SeqCst);
        let answers = loader.await.unwrap();
        let during: Vec<Answer> = answers
            .iter()
            .filter(|a| a.at > locked + Duration::from_millis(700) && a.at < locked + hold)
            .cloned()
            .collect();
        assert!(!during.is_empty());
        assert!(slowest(&answers) < Duration::from_secs(5), "{durability}");
        if durability == "async" {
            // Nothing refused; the records wait in the spool.
            assert!(
                answers.iter().all(|a| a.status == 200),
                "{}",
                by_status(&answers)
            );
            assert!(metric(&during_metrics, "toolgate_audit_spooled_records") > 0.0);
        } else {
            // No 200 while the log cannot commit.
            assert!(
                during
                    .iter()
                    .all(|a| a.status == 503 && a.code == "audit_unavailable"),
                "{}",
                by_status(&during)
            );
        }
        assert_eq!(
            metric(&metrics(&s).await, "toolgate_audit_records_lost_total"),
            0.0
        );
        let recovery = first_ok_after(&answers, released);
        Arc::into_inner(s).unwrap().stop().await.unwrap();
        let kept = assert_log_holds(&config, &answered_all(&answers));
        figure(
            &format!("audit-sqlite-locked-{durability}"),
            &[
                ("locked_ms", ms(hold)),
                ("calls", by_status(&answers)),
                ("during", by_status(&during)),
                (
                    "spooled_during",
                    metric(&during_metrics, "toolgate_audit_spooled_records").to_string(),
                ),
                ("records_kept", kept.to_string()),
                ("drained_after_ms", ms(drained)),
                (
                    "first_200_after_ms",
                    recovery.map_or_else(|| "-".into(), ms),
                ),
            ],
        );
    }
}
