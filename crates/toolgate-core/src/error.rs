//! [`ToolError`] and its [`ErrorKind`], which maps one-to-one onto the contract's codes.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// Most field errors one problem lists (argument validation and the batch
/// validator alike): a huge invalid body must not make a huger answer.
pub const MAX_FIELD_ERRORS: usize = 20;

/// The class of a failure. Each kind is one `code` of the HTTP contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `invalid_json` (400): the body is not JSON, or not an object.
    InvalidJson,
    /// `invalid_arguments` (422): arguments fail the input schema.
    InvalidArguments,
    /// `unauthorized` (401): no key.
    Unauthorized,
    /// `forbidden` (403): unknown key, or no scope for the tool.
    Forbidden,
    /// `tool_not_found` (404): no such tool.
    ToolNotFound,
    /// `payload_too_large` (413): body over the limit.
    PayloadTooLarge,
    /// `rate_limited` (429): the key's rate limit.
    RateLimited,
    /// `overloaded` (429 for a full tool queue; 503 when the whole server sheds load).
    Overloaded,
    /// `timeout` (504): the deadline passed and the work was cancelled.
    Timeout,
    /// `circuit_open` (503): the tool's breaker is open.
    CircuitOpen,
    /// `upstream_error` (502): a dependency failed.
    UpstreamError,
    /// `tool_error` (500): the tool reported failure.
    ToolError,
    /// `cancelled` (499): cancelled by a sibling's failure or by the client.
    Cancelled,
    /// `quota_exceeded` (429): the key's quota (calls in flight, WebSockets, MCP
    /// sessions) is used up.
    QuotaExceeded,
    /// `request_timeout` (408): the request's body did not arrive in time.
    RequestTimeout,
    /// `audit_unavailable` (503): the call's audit record cannot be kept (or, with
    /// `durability = "sync"`, committed), so the call is refused.
    AuditUnavailable,
    /// `approval_required` (409): the tool runs only once approved; start it as a
    /// job (or an MCP task) to ask for the approval.
    ApprovalRequired,
    /// `approval_denied` (403): an approver said no, or nobody decided in time.
    ApprovalDenied,
    /// `job_not_found` (404): no such job (or approval) of this caller.
    JobNotFound,
    /// `jobs_unavailable` (503): the job store cannot be reached.
    JobsUnavailable,
    /// `replica_lost` (503): the server running a job stopped before it ended.
    ReplicaLost,
    /// `already_decided` (409): the approval was decided (or timed out) already.
    AlreadyDecided,
}

impl ErrorKind {
    /// Every kind, for exhaustive documentation and tests.
    pub const ALL: [ErrorKind; 22] = [
        ErrorKind::InvalidJson,
        ErrorKind::InvalidArguments,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::ToolNotFound,
        ErrorKind::PayloadTooLarge,
        ErrorKind::RateLimited,
        ErrorKind::Overloaded,
        ErrorKind::Timeout,
        ErrorKind::CircuitOpen,
        ErrorKind::UpstreamError,
        ErrorKind::ToolError,
        ErrorKind::Cancelled,
        ErrorKind::QuotaExceeded,
        ErrorKind::RequestTimeout,
        ErrorKind::AuditUnavailable,
        ErrorKind::ApprovalRequired,
        ErrorKind::ApprovalDenied,
        ErrorKind::JobNotFound,
        ErrorKind::JobsUnavailable,
        ErrorKind::ReplicaLost,
        ErrorKind::AlreadyDecided,
    ];

    /// The kind whose code is `code`.
    #[must_use]
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The contract's `code` string.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidJson => "invalid_json",
            ErrorKind::InvalidArguments => "invalid_arguments",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::ToolNotFound => "tool_not_found",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Timeout => "timeout",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::UpstreamError => "upstream_error",
            ErrorKind::ToolError => "tool_error",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::QuotaExceeded => "quota_exceeded",
            ErrorKind::RequestTimeout => "request_timeout",
            ErrorKind::AuditUnavailable => "audit_unavailable",
            ErrorKind::ApprovalRequired => "approval_required",
            ErrorKind::ApprovalDenied => "approval_denied",
            ErrorKind::JobNotFound => "job_not_found",
            ErrorKind::JobsUnavailable => "jobs_unavailable",
            ErrorKind::ReplicaLost => "replica_lost",
            ErrorKind::AlreadyDecided => "already_decided",
        }
    }

    /// The HTTP status for this kind. `Overloaded` is 429 here (a tool's queue);
    /// server-wide shedding answers 503 at the edge.
    #[must_use]
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidJson => 400,
            ErrorKind::InvalidArguments => 422,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden | ErrorKind::ApprovalDenied => 403,
            ErrorKind::ToolNotFound | ErrorKind::JobNotFound => 404,
            ErrorKind::ApprovalRequired | ErrorKind::AlreadyDecided => 409,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::RateLimited | ErrorKind::Overloaded | ErrorKind::QuotaExceeded => 429,
            ErrorKind::RequestTimeout => 408,
            ErrorKind::Timeout => 504,
            ErrorKind::CircuitOpen
            | ErrorKind::AuditUnavailable
            | ErrorKind::JobsUnavailable
            | ErrorKind::ReplicaLost => 503,
            ErrorKind::UpstreamError => 502,
            ErrorKind::ToolError => 500,
            ErrorKind::Cancelled => 499,
        }
    }

    /// A short human title, the problem document's `title`.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            ErrorKind::InvalidJson => "Invalid JSON",
            ErrorKind::InvalidArguments => "Invalid arguments",
            ErrorKind::Unauthorized => "Unauthorized",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::ToolNotFound => "Tool not found",
            ErrorKind::PayloadTooLarge => "Payload too large",
            ErrorKind::RateLimited => "Rate limited",
            ErrorKind::Overloaded => "Overloaded",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::CircuitOpen => "Circuit open",
            ErrorKind::UpstreamError => "Upstream error",
            ErrorKind::ToolError => "Tool error",
            ErrorKind::Cancelled => "Cancelled",
            ErrorKind::QuotaExceeded => "Quota exceeded",
            ErrorKind::RequestTimeout => "Request timeout",
            ErrorKind::AuditUnavailable => "Audit log unavailable",
            ErrorKind::ApprovalRequired => "Approval required",
            ErrorKind::ApprovalDenied => "Approval denied",
            ErrorKind::JobNotFound => "Job not found",
            ErrorKind::JobsUnavailable => "Job store unavailable",
            ErrorKind::ReplicaLost => "Replica lost",
            ErrorKind::AlreadyDecided => "Already decided",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One schema violation: where (a JSON pointer into the arguments) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON pointer (RFC 6901) to the offending value; `""` is the whole object.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

/// A failed call. `message` is shown to clients, so it must never carry internal
/// details (paths, SQL, stack traces): log those where they happen.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolError {
    /// The class, which decides code and status.
    pub kind: ErrorKind,
    /// Client-safe explanation.
    pub message: String,
    /// When to try again, for `rate_limited`, `overloaded` and `circuit_open`.
    pub retry_after: Option<Duration>,
    /// Schema violations, for `invalid_arguments`.
    pub errors: Vec<FieldError>,
    /// Set when the whole server (not one tool) refuses: `overloaded` is then 503
    /// rather than 429.
    pub server_wide: bool,
    /// Set when trying again cannot help (an upstream's 4xx): never retried, and not
    /// counted against the dependency's health.
    pub permanent: bool,
}

impl ToolError {
    /// An error of `kind` with a client-safe message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
            errors: Vec::new(),
            server_wide: false,
            permanent: false,
        }
    }

    /// The tool itself failed (`tool_error`).
    pub fn tool(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ToolError, message)
    }

    /// The call was cancelled (`cancelled`).
    pub fn cancelled(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Cancelled, message)
    }

    /// The deadline passed (`timeout`).
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    /// Arguments failed validation (`invalid_arguments`).
    #[must_use]
    pub fn invalid_arguments(errors: Vec<FieldError>) -> Self {
        let message = match errors.len() {
            1 => "1 argument is invalid".to_owned(),
            n => format!("{n} arguments are invalid"),
        };
        Self {
            errors,
            ..Self::new(ErrorKind::InvalidArguments, message)
        }
    }

    /// Mark the failure as one that trying again cannot fix.
    #[must_use]
    pub fn permanent(mut self) -> Self {
        self.permanent = true;
        self
    }

    /// Mark the refusal as the whole server's (503 for `overloaded`).
    #[must_use]
    pub fn server_wide(mut self) -> Self {
        self.server_wide = true;
        self
    }

    /// The HTTP status: the kind's, or 503 for a server-wide `overloaded`.
    #[must_use]
    pub fn status(&self) -> u16 {
        if self.server_wide && self.kind == ErrorKind::Overloaded {
            503
        } else {
            self.kind.status()
        }
    }

    /// Set `retry_after`.
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.message)
    }
}

impl std::error::Error for ToolError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_statuses_match_the_contract() {
        let mut codes: Vec<_> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        assert_eq!(ErrorKind::Cancelled.status(), 499);
        assert_eq!(ErrorKind::InvalidArguments.status(), 422);
        assert_eq!(ErrorKind::CircuitOpen.status(), 503);
    }
}
