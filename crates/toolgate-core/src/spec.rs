//! What a tool is, as the outside world sees it.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// Behaviour hints, shown to agents (REST listing, OpenAPI, MCP annotations) and
/// used by policy (only idempotent tools are retried).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Annotations {
    /// The tool does not change anything.
    pub read_only: bool,
    /// Calling the tool twice with the same arguments has the effect of calling it once.
    pub idempotent: bool,
    /// The tool may destroy or overwrite data.
    pub destructive: bool,
}

/// The full description of one tool: identity, schemas, hints and limits.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    /// Unique name, `[A-Za-z0-9_-]{1,64}`; `execute` is reserved.
    pub name: String,
    /// Human and agent readable description.
    pub description: String,
    /// JSON Schema (draft 2020-12) the arguments object must satisfy.
    pub input_schema: Value,
    /// JSON Schema of the output, when the tool declares one.
    pub output_schema: Option<Value>,
    /// Behaviour hints.
    pub annotations: Annotations,
    /// The longest a call may take; clients may lower it, never raise it.
    pub timeout: Duration,
    /// Calls that may run at once.
    pub max_concurrency: usize,
    /// Calls that may wait for a free slot; past that, calls are refused.
    pub max_queue: usize,
}

impl ToolSpec {
    /// The timeout in whole milliseconds, as the contract reports it.
    #[must_use]
    pub fn timeout_ms(&self) -> u64 {
        u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX)
    }
}
