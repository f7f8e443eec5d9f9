//! `run_system_audit`: real facts of the host.
//!
//! Status is `warning` when memory or a disk is over 90 % used or the 1-minute load
//! exceeds twice the CPU count; otherwise `passed`. The facts are read fresh per call
//! on a blocking thread (they come from `/proc` and `statvfs`).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use sysinfo::{Disks, System};
use toolgate_core::{CallContext, Tool, ToolError, ToolOutput};

use crate::Builtin;

const USED_WARNING_PERCENT: f64 = 90.0;

/// The system audit tool.
#[derive(Debug, Default)]
pub struct SystemAudit;

#[async_trait]
impl Tool for SystemAudit {
    async fn call(&self, arguments: Value, _ctx: CallContext) -> Result<ToolOutput, ToolError> {
        let target = arguments
            .get("target")
            .and_then(Value::as_str)
            .unwrap_or("host")
            .to_owned();
        tokio::task::spawn_blocking(move || audit(&target))
            .await
            .map_err(|_| ToolError::tool("the audit could not run"))
    }
}

#[allow(clippy::cast_precision_loss)] // byte counts shown as percentages
fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (used as f64 * 1000.0 / total as f64).round() / 10.0
    }
}

fn audit(target: &str) -> Value {
    let mut sys = System::new();
    sys.refresh_memory();
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let load = System::load_average();
    let mem_percent = percent(sys.used_memory(), sys.total_memory());
    let mut findings = Vec::new();
    if mem_percent > USED_WARNING_PERCENT {
        findings.push(format!("memory is {mem_percent}% used"));
    }
    #[allow(clippy::cast_precision_loss)]
    if load.one > 2.0 * cpus as f64 {
        findings.push(format!(
            "1-minute load {:.2} exceeds twice the {cpus} CPUs",
            load.one
        ));
    }
    let disks: Vec<Value> = Disks::new_with_refreshed_list()
        .list()
        .iter()
        .filter(|d| d.total_space() > 0)
        .map(|d| {
            let used = d.total_space().saturating_sub(d.available_space());
            let used_percent = percent(used, d.total_space());
            let mount = d.mount_point().display().to_string();
            if used_percent > USED_WARNING_PERCENT {
                findings.push(format!("disk {mount} is {used_percent}% used"));
            }
            json!({
                "mount_point": mount,
                "file_system": d.file_system().to_string_lossy(),
                "total_bytes": d.total_space(),
                "available_bytes": d.available_space(),
                "used_percent": used_percent,
            })
        })
        .collect();
    json!({
        "target": target,
        "status": if findings.is_empty() { "passed" } else { "warning" },
        "findings": findings,
        "os": {
            "name": System::name(),
            "version": System::os_version(),
            "kernel": System::kernel_version(),
            "arch": System::cpu_arch(),
            "hostname": System::host_name(),
        },
        "cpus": cpus,
        "uptime_seconds": System::uptime(),
        "load_average": {"one": load.one, "five": load.five, "fifteen": load.fifteen},
        "memory": {
            "total_bytes": sys.total_memory(),
            "used_bytes": sys.used_memory(),
            "available_bytes": sys.available_memory(),
            "used_percent": mem_percent,
        },
        "disks": disks,
    })
}

pub(crate) fn builtin() -> Builtin {
    Builtin {
        tool: Arc::new(SystemAudit),
        description: "Audit the host toolgate runs on: OS, uptime, load, memory and disks, with status `passed` or `warning` and the findings behind a warning.",
        input_schema: json!({
            "type": "object",
            "properties": {"target": {"type": "string", "minLength": 1, "maxLength": 256}},
            "required": ["target"],
            "additionalProperties": false
        }),
        output_schema: Some(json!({
            "type": "object",
            "properties": {
                "target": {"type": "string"},
                "status": {"enum": ["passed", "warning"]},
                "findings": {"type": "array", "items": {"type": "string"}},
                "uptime_seconds": {"type": "integer"},
            },
            "required": ["target", "status", "findings", "uptime_seconds"]
        })),
        read_only: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_real_facts() {
        let v = audit("db-1");
        assert_eq!(v["target"], "db-1");
        assert!(v["memory"]["total_bytes"].as_u64().unwrap_or(0) > 0);
        assert!(v["uptime_seconds"].as_u64().unwrap_or(0) > 0);
        assert!(matches!(v["status"].as_str(), Some("passed" | "warning")));
    }
}
