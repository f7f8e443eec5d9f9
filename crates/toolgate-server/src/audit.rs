//! The server's side of the audit log: which tools keep their arguments (and which
//! fields are redacted), and turning a finished call into a record.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use toolgate_audit::{AuditLog, Durability, Location, Record};
use toolgate_config::{AuditConfig, ToolConfig};

/// Argument handling of one tool.
#[derive(Debug, Clone, Default)]
struct ArgPolicy {
    keep: bool,
    redact: Vec<String>,
}

/// The audit log plus per-tool argument policies (swapped on reload).
#[derive(Debug)]
pub struct Auditor {
    log: AuditLog,
    policies: ArcSwap<HashMap<String, ArgPolicy>>,
}

/// What `run_call` hands over about a finished call.
#[derive(Debug)]
pub struct CallFacts<'a> {
    /// Key name.
    pub key: &'a str,
    /// Tool name.
    pub tool: &'a str,
    /// Transport label.
    pub transport: &'a str,
    /// `ok` or the error code.
    pub outcome: &'a str,
    /// Duration in ms.
    pub duration_ms: u64,
    /// Trace id.
    pub trace_id: String,
}

fn policies(tools: &[ToolConfig]) -> HashMap<String, ArgPolicy> {
    tools
        .iter()
        .filter(|t| t.audit_arguments)
        .map(|t| {
            let p = ArgPolicy {
                keep: true,
                redact: t.audit_redact.clone(),
            };
            (t.name.get_ref().clone(), p)
        })
        .collect()
}

impl Auditor {
    /// Open the log configured in `[audit]`.
    ///
    /// # Errors
    /// The database cannot be opened.
    pub fn open(cfg: &AuditConfig, tools: &[ToolConfig]) -> Result<Self, String> {
        let durability = match cfg.durability {
            toolgate_config::Durability::Async => Durability::Async,
            toolgate_config::Durability::Sync => Durability::Sync,
        };
        let location = match cfg.location() {
            toolgate_config::AuditLocation::Sqlite(p) => Location::Sqlite(p),
            toolgate_config::AuditLocation::Postgres { url, table } => {
                Location::Postgres { url, table }
            }
        };
        let log = AuditLog::open(&location, durability, cfg.queue_capacity)
            .map_err(|e| format!("audit log: {e}"))?;
        Ok(Self {
            log,
            policies: ArcSwap::from_pointee(policies(tools)),
        })
    }

    /// Take the argument policies of a reloaded config.
    pub fn update(&self, tools: &[ToolConfig]) {
        self.policies.store(Arc::new(policies(tools)));
    }

    /// What to keep of `arguments` before the call consumes them: their hash, and
    /// the redacted arguments for tools that opt in.
    #[must_use]
    pub fn capture(&self, tool: &str, arguments: &Value) -> (String, Option<Value>) {
        let sha = toolgate_audit::record::args_sha256(arguments);
        let kept = self
            .policies
            .load()
            .get(tool)
            .filter(|p| p.keep)
            .map(|p| toolgate_audit::record::redact(arguments, &p.redact));
        (sha, kept)
    }

    /// Log a finished call (waiting for the commit under `durability = "sync"`).
    pub async fn record(&self, facts: CallFacts<'_>, args: (String, Option<Value>)) {
        let ts = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        let record = Record {
            ts,
            key: facts.key.to_owned(),
            tool: facts.tool.to_owned(),
            transport: facts.transport.to_owned(),
            outcome: facts.outcome.to_owned(),
            duration_ms: facts.duration_ms,
            trace_id: facts.trace_id,
            args_sha256: args.0,
            arguments: args.1,
        };
        self.log.append(record).await;
    }

    /// Wait until everything queued is committed (at shutdown).
    pub async fn flush(&self) {
        self.log.flush().await;
    }
}
