//! What a tool may ask of an MCP client ([`ClientRequests`]): log messages (at the
//! level the session set with `logging/setLevel`, or the request's own 2026-07-28
//! `logLevel`), and, over a 2025-11-25 session whose client declared the
//! capability, `elicitation/create` and `sampling/createMessage`. The 2026-07-28
//! revision forbids requests from server to client (it answers "input required"
//! instead), so there a tool's question fails with a clear error.
//!
//! Log messages never block the tool: they go into the call's bounded notice queue
//! (see [`super::call`]), in order with its progress reports.
#![allow(deprecated)]

use rmcp::RoleServer;
use rmcp::model::{CreateMessageRequestParams, ElicitRequestParams, LoggingLevel, ProtocolVersion};
use rmcp::service::Peer;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use toolgate_core::{ClientRequests, ErrorKind, LogLevel, Progress, ToolError};

use super::logging::rank;

/// What a call sends its client while it runs, in order.
pub(super) enum Notice {
    Progress(Progress),
    Log(LoggingLevel, String),
}

/// How long a question to the client may wait for its answer (the call's own
/// deadline still applies: a call that ends drops the question).
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// One call's channel to its client.
pub(super) struct McpClient {
    pub(super) peer: Peer<RoleServer>,
    pub(super) level: Option<LoggingLevel>,
    pub(super) notices: mpsc::Sender<Notice>,
    pub(super) stateless: bool,
}

pub(super) fn level_of(level: LogLevel) -> LoggingLevel {
    match level {
        LogLevel::Debug => LoggingLevel::Debug,
        LogLevel::Info => LoggingLevel::Info,
        LogLevel::Notice => LoggingLevel::Notice,
        LogLevel::Warning => LoggingLevel::Warning,
        LogLevel::Error => LoggingLevel::Error,
        LogLevel::Critical => LoggingLevel::Critical,
        LogLevel::Alert => LoggingLevel::Alert,
        LogLevel::Emergency => LoggingLevel::Emergency,
    }
}

/// Whether the peer negotiated the stateless revision.
pub(super) fn is_stateless(peer: &Peer<RoleServer>) -> bool {
    peer.peer_info()
        .is_none_or(|info| info.protocol_version == ProtocolVersion::V_2026_07_28)
}

impl McpClient {
    fn refuse(&self, what: &str, declared: bool) -> Option<ToolError> {
        if self.stateless {
            return Some(ToolError::tool(format!(
                "the client cannot be asked for {what} over MCP 2026-07-28, which has no requests from server to client; use a 2025-11-25 session"
            )));
        }
        (!declared)
            .then(|| ToolError::tool(format!("the client did not declare the {what} capability")))
    }
}

fn failed(what: &str, e: &rmcp::ServiceError) -> ToolError {
    ToolError::new(
        ErrorKind::ToolError,
        format!("asking the client for {what} failed: {e}"),
    )
}

#[async_trait::async_trait]
impl ClientRequests for McpClient {
    fn log(&self, level: LogLevel, message: String) {
        let level = level_of(level);
        if self.level.is_some_and(|min| rank(level) >= rank(min)) {
            // A full queue drops the message rather than stall the tool.
            let _ = self.notices.try_send(Notice::Log(level, message));
        }
    }

    async fn elicit(&self, message: String, schema: Value) -> Result<Value, ToolError> {
        let declared = self
            .peer
            .peer_info()
            .is_some_and(|i| i.capabilities.elicitation.is_some());
        if let Some(e) = self.refuse("elicitation", declared) {
            return Err(e);
        }
        let params: ElicitRequestParams = serde_json::from_value(json!({
            "mode": "form",
            "message": message,
            "requestedSchema": schema,
        }))
        .map_err(|e| {
            ToolError::new(
                ErrorKind::ToolError,
                format!("the elicitation schema is not one MCP allows: {e}"),
            )
        })?;
        let answer = self
            .peer
            .create_elicitation_with_timeout(params, Some(ASK_TIMEOUT))
            .await
            .map_err(|e| failed("elicitation", &e))?;
        serde_json::to_value(answer).map_err(|e| ToolError::tool(e.to_string()))
    }

    async fn sample(&self, params: Value) -> Result<Value, ToolError> {
        let declared = self
            .peer
            .peer_info()
            .is_some_and(|i| i.capabilities.sampling.is_some());
        if let Some(e) = self.refuse("sampling", declared) {
            return Err(e);
        }
        let params: CreateMessageRequestParams = serde_json::from_value(params).map_err(|e| {
            ToolError::new(
                ErrorKind::ToolError,
                format!("the sampling request is not one MCP allows: {e}"),
            )
        })?;
        let answer = self
            .peer
            .create_message(params)
            .await
            .map_err(|e| failed("sampling", &e))?;
        serde_json::to_value(answer).map_err(|e| ToolError::tool(e.to_string()))
    }
}
