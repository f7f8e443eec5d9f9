//! The server's side of the audit log: which tools keep their arguments (and which
//! fields are redacted), and turning a finished call into a record.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::TokenIdentity;
use arc_swap::ArcSwap;
use serde_json::Value;
use toolgate_audit::{
    AuditLog, AuditUnavailable, Chain, Durability, Entry, Location, WriterOptions,
};
use toolgate_config::{AuditConfig, ToolConfig};

/// The arguments digest of a refusal (it had none that were looked at).
static NO_ARGUMENTS: std::sync::LazyLock<[u8; 32]> =
    std::sync::LazyLock::new(|| toolgate_audit::record::args_digest(&Value::Null));

/// The key name of audit records for a key no entry has.
pub const UNKNOWN_KEY: &str = "_unknown";

/// The HMAC key for the chain from the variable `var` names; plain SHA-256 without.
/// The key is never logged.
///
/// # Errors
/// The variable is unset or shorter than 32 bytes.
pub fn chain_of(var: Option<&str>) -> Result<Chain, String> {
    let Some(var) = var else {
        return Ok(Chain::unkeyed());
    };
    match std::env::var_os(var) {
        Some(key) if key.len() >= 32 => Ok(Chain::keyed(key.as_encoded_bytes())),
        Some(_) => Err(format!(
            "audit log: the HMAC key in ${var} must be at least 32 bytes"
        )),
        None => Err(format!(
            "audit log: [audit] hmac_key_env names ${var}, which is not set"
        )),
    }
}

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

/// What [`Auditor::capture`] keeps of a call's arguments: their SHA-256, and the
/// redacted arguments for tools that opt in.
#[derive(Debug)]
pub struct CapturedArgs {
    sha256: [u8; 32],
    kept: Option<Value>,
}

impl CapturedArgs {
    /// Arguments known only by their SHA-256 (a job's, stored at its creation).
    #[must_use]
    pub fn of_digest(sha256: [u8; 32]) -> Self {
        Self { sha256, kept: None }
    }
}

/// What `run_call` hands over about a finished call.
#[derive(Debug)]
pub struct CallFacts<'a> {
    /// Key name.
    pub key: &'a str,
    /// A token caller's issuer, subject and client.
    pub identity: Option<&'a Arc<TokenIdentity>>,
    /// Tool name.
    pub tool: &'a str,
    /// Transport label.
    pub transport: &'static str,
    /// `ok` or the error code.
    pub outcome: &'static str,
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
        let mut options = WriterOptions::new(&location, durability);
        options.capacity = cfg.queue_capacity;
        options.enqueue_timeout = Duration::from_millis(cfg.enqueue_timeout_ms);
        if let Some(p) = &cfg.spool_path {
            options.spool_path = p.as_str().into();
        }
        options.spool_max_records = cfg.spool_max_records;
        options.max_backoff = Duration::from_millis(cfg.reconnect_max_ms);
        options.head_interval = Duration::from_millis(cfg.head_interval_ms);
        options.open.connect_timeout = Duration::from_millis(cfg.connect_timeout_ms);
        options.open.statement_timeout = Duration::from_millis(cfg.statement_timeout_ms);
        options.open.chain = chain_of(cfg.hmac_key_env.as_deref())?;
        let log = AuditLog::open_with(&location, options).map_err(|e| format!("audit log: {e}"))?;
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
    pub fn capture(&self, tool: &str, arguments: &Value) -> CapturedArgs {
        let sha256 = toolgate_audit::record::args_digest(arguments);
        let policies = self.policies.load();
        let kept = if policies.is_empty() {
            None
        } else {
            policies
                .get(tool)
                .filter(|p| p.keep)
                .map(|p| toolgate_audit::record::redact(arguments, &p.redact))
        };
        CapturedArgs { sha256, kept }
    }

    /// Whether a call may start (its record can be kept, or with `sync`, committed).
    ///
    /// # Errors
    /// Why not: the call is refused with `503 audit_unavailable`.
    pub fn admit(&self) -> Result<(), AuditUnavailable> {
        self.log.admit()
    }

    /// Log a finished call (waiting for the commit under `durability = "sync"`).
    ///
    /// # Errors
    /// The record could not be kept, or with `sync` committed: the caller must not
    /// be told the call succeeded.
    pub async fn record(
        &self,
        facts: CallFacts<'_>,
        args: CapturedArgs,
    ) -> Result<(), AuditUnavailable> {
        self.log.append(Self::entry(facts, args)).await
    }

    /// Log a call from where nothing can wait (a dropped call's destructor): queued
    /// now, or by a task of its own when the queue is full; never dropped.
    pub fn record_detached(&self, facts: CallFacts<'_>, args: CapturedArgs) {
        self.log.append_detached(Self::entry(facts, args));
    }

    fn entry(facts: CallFacts<'_>, args: CapturedArgs) -> Entry {
        Entry {
            ended: std::time::SystemTime::now(),
            key: facts.key.to_owned(),
            tool: facts.tool.to_owned(),
            transport: facts.transport,
            outcome: facts.outcome,
            duration_ms: facts.duration_ms,
            trace_id: facts.trace_id,
            args_sha256: args.sha256,
            arguments: args.kept,
            caller: facts.identity.cloned(),
        }
    }

    /// Log a request refused before any call ran (an unknown key, a throttled
    /// address, a missing scope at the MCP guard): `key` is the key's name, or
    /// [`UNKNOWN_KEY`]; `tool` the tool asked for, or empty. Queued without waiting.
    pub fn record_refusal(
        &self,
        key: &str,
        identity: Option<&Arc<TokenIdentity>>,
        tool: &str,
        transport: &'static str,
        outcome: &'static str,
        trace_id: String,
    ) {
        self.log.append_detached(Entry {
            ended: std::time::SystemTime::now(),
            key: key.to_owned(),
            tool: tool.to_owned(),
            transport,
            outcome,
            duration_ms: 0,
            trace_id,
            args_sha256: *NO_ARGUMENTS,
            arguments: None,
            caller: identity.cloned(),
        });
    }

    /// Whether the store answers (for `/readyz`).
    ///
    /// # Errors
    /// What is wrong.
    pub async fn check(&self) -> Result<(), String> {
        self.log.check().await
    }

    /// Wait until everything queued is committed (at shutdown).
    pub async fn flush(&self) {
        self.log.flush().await;
    }
}
