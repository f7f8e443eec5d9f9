//! MCP logging (2025-11-25's `logging/setLevel`, and 2026-07-28's per-request
//! `logLevel`): a session or request with a level gets
//! `notifications/message` about its own tool calls at that level or above: each
//! failure at `error` (with its code and detail), and each success at `debug` (tool
//! and outcome). A session that sets no level gets none. The level belongs to the
//! session; nothing about other callers' calls is ever sent.
//!
//! rmcp marks the logging types deprecated (SEP-2577 drops logging from the
//! 2026-07-28 revision); they are what 2025-11-25 clients speak.
#![allow(deprecated)]

use std::sync::Mutex;

use rmcp::RoleServer;
use rmcp::model::{CallToolResponse, LoggingLevel, LoggingMessageNotificationParam};
use rmcp::service::Peer;
use serde_json::json;

/// The lowest level a session asked for, if it asked.
#[derive(Debug, Default)]
pub(super) struct SessionLog {
    level: Mutex<Option<LoggingLevel>>,
}

pub(super) fn rank(l: LoggingLevel) -> u8 {
    match l {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

impl SessionLog {
    pub(super) fn set(&self, level: LoggingLevel) {
        if let Ok(mut l) = self.level.lock() {
            *l = Some(level);
        }
    }

    /// The level the session set, if it set one.
    pub(super) fn level(&self) -> Option<LoggingLevel> {
        self.level.lock().ok().and_then(|l| *l)
    }
}

/// Tell the client how its call of `tool` ended, if `min` (its session's level, or
/// the request's own) wants that.
pub(super) async fn call_ended(
    min: LoggingLevel,
    peer: &Peer<RoleServer>,
    tool: &str,
    result: &Result<CallToolResponse, rmcp::ErrorData>,
) {
    let (level, data) = match result {
        Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
            let detail = r
                .content
                .first()
                .and_then(|c| c.as_text())
                .map(|t| t.text.clone());
            (
                LoggingLevel::Error,
                json!({"tool": tool, "outcome": "error", "detail": detail}),
            )
        }
        Ok(_) => (LoggingLevel::Debug, json!({"tool": tool, "outcome": "ok"})),
        Err(e) => (
            LoggingLevel::Error,
            json!({"tool": tool, "outcome": "refused", "code": e.code.0, "detail": e.message}),
        ),
    };
    if rank(level) >= rank(min) {
        let message = LoggingMessageNotificationParam::new(level, data).with_logger("toolgate");
        let _ = peer.notify_logging_message(message).await;
    }
}
