//! What one audit record costs in CPU, everything included: building the entry on
//! the caller's side (hashing the arguments) and, on the writer thread, formatting
//! it, extending the hash chain and inserting it into SQLite (WAL), with the commits
//! and checkpoints that come with them.
//!
//! `cargo bench -p toolgate-audit --bench append`. Records arrive at a steady rate
//! (`RATE` per second, in ticks of 1 ms, like calls arriving at a loaded server), so
//! the writer batches them as it does in service. The figure is the process's CPU
//! time (all its threads, from `/proc/self/task/*/schedstat`) per record, minus the CPU of the
//! same ticking without records; the median of `ROUNDS` rounds is printed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, SystemTime};

use serde_json::json;
use toolgate_audit::record::args_digest;
use toolgate_audit::{AuditLog, Durability, Entry, Location};

const RATE: u64 = 40_000;
const SECONDS: u64 = 2;
const ROUNDS: usize = 9;

/// The CPU time of every thread of this process so far, in nanoseconds: the sum of
/// `/proc/self/task/*/schedstat` (nanosecond resolution, unlike `/proc/self/stat`).
fn cpu_now() -> Duration {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task (Linux only)") {
        let path = task.unwrap().path().join("schedstat");
        // A thread that ended since the listing has nothing more to count.
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        total += text
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(total)
}

/// Tick every millisecond for `SECONDS`, appending `RATE / 1000` records a tick
/// when `log` is given; the CPU time it took.
async fn run(log: Option<&AuditLog>) -> Duration {
    let per_tick = RATE / 1000;
    let arguments = json!({"user": "ada", "n": 42});
    let start = cpu_now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for _ in 0..SECONDS * 1000 {
        tick.tick().await;
        let Some(log) = log else { continue };
        for i in 0..per_tick {
            // What the server does per call.
            let entry = Entry {
                ended: SystemTime::now(),
                key: "operator".to_owned(),
                tool: "echo".to_owned(),
                transport: "batch",
                outcome: "ok",
                duration_ms: i % 3,
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
                args_sha256: args_digest(&arguments),
                arguments: None,
                caller: None,
            };
            assert!(
                log.append(entry).await.is_ok(),
                "the audit log refused a record"
            );
        }
    }
    if let Some(log) = log {
        log.flush().await;
    }
    // A thread that ended meanwhile (an earlier round's writer) takes its time
    // out of the sum: never below zero.
    cpu_now().saturating_sub(start)
}

fn main() {
    // Called with `--bench` by cargo bench, and without by cargo test: one short
    // round then, so that the test run only checks that it works.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 1 } else { ROUNDS };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut per_record = Vec::new();
    for _ in 0..rounds {
        // A fresh database each round, so that rounds do not differ by its size.
        let dir = tempfile::tempdir().unwrap();
        let log = rt.block_on(async {
            AuditLog::open(
                &Location::Sqlite(dir.path().join("audit.db")),
                Durability::Async,
                8192,
            )
            .unwrap()
        });
        // Let the previous round's writer thread end before measuring.
        std::thread::sleep(Duration::from_millis(200));
        let idle = rt.block_on(run(None));
        let busy = rt.block_on(run(Some(&log)));
        #[allow(clippy::cast_precision_loss)]
        let us = busy.saturating_sub(idle).as_secs_f64() * 1e6 / (RATE * SECONDS) as f64;
        per_record.push(us);
        if quick {
            break;
        }
    }
    per_record.sort_by(f64::total_cmp);
    let median = per_record[per_record.len() / 2];
    println!(
        "audit append at {RATE}/s: {median:.2} µs of CPU per record (median of {}; all: {per_record:.2?})",
        per_record.len()
    );
}
