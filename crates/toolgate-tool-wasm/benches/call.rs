//! The cost of one trivial `wasm` call: a fresh store, instantiation from the
//! pre-linked module, a new WASI context with in-memory stdio, `_start` echoing
//! `{"x":1}`, and parsing the output. Target: p50 under 100 µs.
//!
//! `cargo bench -p toolgate-tool-wasm`. Besides criterion's report, it prints the
//! p50 and p99 of 20 000 individually timed calls.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use toolgate_config::LoadedConfig;
use toolgate_core::{CallContext, Tool};
use toolgate_tool_wasm::WasmTool;

fn echo_tool() -> WasmTool {
    let module = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/echo.wat");
    let config = format!("[[tools]]\nname = \"echo\"\nkind = \"wasm\"\nmodule = \"{module}\"\n");
    let loaded = LoadedConfig::from_str("bench.toml", &config).unwrap();
    WasmTool::new(&loaded.config.tools[0], Path::new(".")).unwrap()
}

fn context() -> CallContext {
    CallContext::new(tokio::time::Instant::now() + Duration::from_secs(10))
}

fn percentiles(rt: &tokio::runtime::Runtime, tool: &WasmTool) {
    let mut times: Vec<Duration> = (0..20_000)
        .map(|_| {
            let start = Instant::now();
            rt.block_on(tool.call(json!({"x": 1}), context())).unwrap();
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64) * q) as usize];
    println!(
        "wasm trivial call: p50 {:?}, p99 {:?} over {} calls",
        at(0.50),
        at(0.99),
        times.len()
    );
}

fn trivial_call(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tool = echo_tool();
    assert_eq!(
        rt.block_on(tool.call(json!({"x": 1}), context())).unwrap(),
        json!({"x": 1})
    );
    c.bench_function("wasm_trivial_call", |b| {
        b.iter(|| rt.block_on(tool.call(json!({"x": 1}), context())).unwrap());
    });
    percentiles(&rt, &tool);
}

criterion_group!(benches, trivial_call);
criterion_main!(benches);
