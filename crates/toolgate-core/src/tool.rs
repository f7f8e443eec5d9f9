//! The [`Tool`] trait and the call that reaches it.

use async_trait::async_trait;
use serde_json::Value;

use crate::{CallContext, ToolError};

/// What a tool returns on success: any JSON value.
pub type ToolOutput = Value;

/// One request to run a tool, as a transport hands it to the registry.
#[derive(Debug, Clone)]
pub struct ToolCall {
    /// Tool name.
    pub tool: String,
    /// Arguments; the registry validates them before the tool sees them.
    pub arguments: Value,
}

impl ToolCall {
    /// A call of `tool` with `arguments`.
    #[must_use]
    pub fn new(tool: impl Into<String>, arguments: Value) -> Self {
        Self {
            tool: tool.into(),
            arguments,
        }
    }
}

/// A tool: something that turns validated arguments into output.
///
/// Implementations must honour `ctx.cancel` (stop work promptly once it fires) and
/// may report progress through `ctx.progress`. They never learn which transport
/// called them. The registry enforces the deadline, limits and validation around
/// them, so a tool only does its own work.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// Run the tool. `arguments` has already been validated against the input schema.
    async fn call(&self, arguments: Value, ctx: CallContext) -> Result<ToolOutput, ToolError>;

    /// A readiness check for `/readyz`; `Err` explains what is wrong.
    async fn check(&self) -> Result<(), String> {
        Ok(())
    }
}
