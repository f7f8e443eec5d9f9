//! `toolgate check`, `tools`, `call` and `openapi`: one-shot commands on a config.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use toolgate_config::LoadedConfig;
use toolgate_core::{ToolCall, ToolError};
use toolgate_registry::{Invocation, Registry};
use toolgate_server::openapi::Documents;
use toolgate_server::transport::rest::tool_json;

use super::{EXIT_FAILURE, EXIT_USAGE, load, report};
use crate::cli::ConfigArg;

pub(super) async fn check(file: &Path) -> i32 {
    let loaded = match LoadedConfig::from_file(file) {
        Ok(l) => l,
        Err(p) => return report(&p),
    };
    match Registry::load(&loaded).await {
        Ok(registry) => {
            println!(
                "{}: ok ({} tools)",
                file.display(),
                registry.tools().count()
            );
            for r in registry.imports() {
                println!(
                    "source {:?}: imported {} tools: {}",
                    r.source,
                    r.imported.len(),
                    r.imported.join(", ")
                );
                for s in &r.skipped {
                    println!("  skipped {}: {}", s.id, s.reason);
                }
            }
            0
        }
        Err(p) => report(&p),
    }
}

pub(super) async fn tools(config: &ConfigArg, as_json: bool) -> i32 {
    let (_, registry) = match load(config).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    if as_json {
        let tools: Vec<Value> = registry.tools().map(|t| tool_json(t.spec())).collect();
        println!("{}", pretty(&json!({ "tools": tools })));
        return 0;
    }
    let width = registry
        .tools()
        .map(|t| t.spec().name.len())
        .max()
        .unwrap_or(0);
    for t in registry.tools() {
        let s = t.spec();
        let summary = s.description.lines().next().unwrap_or_default();
        println!("{:width$}  {summary}", s.name);
    }
    0
}

pub(super) async fn call(config: &ConfigArg, tool: &str, args: &str) -> i32 {
    let arguments: Value = match serde_json::from_str(args) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            eprintln!("toolgate: --args must be a JSON object");
            return EXIT_USAGE;
        }
        Err(e) => {
            eprintln!("toolgate: --args is not valid JSON: {e}");
            return EXIT_USAGE;
        }
    };
    let (_, registry) = match load(config).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    let cancel = toolgate_core::CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.cancel();
        }
    });
    let inv = Invocation {
        client: None,
        caller: None,
        cancel,
        transport: toolgate_registry::Transport::Cli,
        ..Invocation::default()
    };
    let start = tokio::time::Instant::now();
    let result = registry.invoke(ToolCall::new(tool, arguments), inv).await;
    let duration: Duration = start.elapsed();
    match result {
        Ok(output) => {
            println!("{}", pretty(&output));
            0
        }
        Err(e) => {
            eprintln!("{}", pretty(&error_json(&e, duration)));
            EXIT_FAILURE
        }
    }
}

fn error_json(e: &ToolError, duration: Duration) -> Value {
    json!({
        "code": e.kind.code(),
        "status": e.status(),
        "detail": e.message,
        "errors": e.errors,
        "duration_ms": u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
    })
}

pub(super) async fn openapi(config: &ConfigArg) -> i32 {
    match load(config).await {
        Ok((_, registry)) => {
            println!("{}", pretty(&Documents::new(&registry).full()));
            0
        }
        Err(code) => code,
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}
