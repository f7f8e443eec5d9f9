//! The per-call context: deadline, cancellation and progress.

use std::fmt;
use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One progress report from a running tool.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Work done so far, in the tool's own unit.
    pub progress: f64,
    /// Total work, when known.
    pub total: Option<f64>,
    /// Free text for humans.
    pub message: Option<String>,
}

/// Where a tool sends progress. Transports that cannot show progress (plain REST)
/// pass a sink that drops it; reporting never blocks the tool.
#[derive(Clone, Default)]
pub struct ProgressSink {
    inner: Option<Arc<dyn Fn(Progress) + Send + Sync>>,
}

impl ProgressSink {
    /// A sink that drops every report.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// A sink that hands every report to `f`, which must not block.
    pub fn new(f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        Self {
            inner: Some(Arc::new(f)),
        }
    }

    /// Whether anybody listens; tools may skip building reports when not.
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.inner.is_some()
    }

    /// Report progress.
    pub fn report(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        if let Some(f) = &self.inner {
            f(Progress {
                progress,
                total,
                message,
            });
        }
    }
}

impl fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgressSink")
            .field("active", &self.is_active())
            .finish()
    }
}

/// Who a call is made for: the caller's name and, for a bearer token, its claims
/// (never the token). Tools may carry it down to their data source (a PostgreSQL
/// session setting for row-level security); the agent's arguments cannot set it.
#[derive(Clone, PartialEq)]
pub struct CallerIdentity {
    /// The key's name, or `issuer:subject` for a token.
    pub name: String,
    /// The token's claims; `None` for an API key.
    pub claims: Option<std::sync::Arc<serde_json::Map<String, serde_json::Value>>>,
    /// The caller's access token, for one use only: an RFC 8693 exchange for a token
    /// of an upstream's own. Never sent anywhere else, never logged.
    pub token: Option<std::sync::Arc<str>>,
}

impl fmt::Debug for CallerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallerIdentity")
            .field("name", &self.name)
            .field("claims", &self.claims)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// What a tool knows about the call it is serving.
#[derive(Clone)]
pub struct CallContext {
    /// The call must be finished by then; the registry cancels it afterwards.
    pub deadline: Instant,
    /// Fires when the call is cancelled: deadline, caller gone, sibling failed, drain.
    pub cancel: CancellationToken,
    /// Where progress goes.
    pub progress: ProgressSink,
    /// Trace id of the request, for logs.
    pub trace_id: Option<String>,
    /// Who the call is made for, when the server knows.
    pub caller: Option<std::sync::Arc<CallerIdentity>>,
    /// The client, where the transport lets a tool log to it and ask it things.
    pub client: Option<Arc<dyn ClientRequests>>,
}

impl CallContext {
    /// A context with the given deadline, a fresh token and no progress sink.
    #[must_use]
    pub fn new(deadline: Instant) -> Self {
        Self {
            deadline,
            cancel: CancellationToken::new(),
            progress: ProgressSink::none(),
            trace_id: None,
            caller: None,
            client: None,
        }
    }

    /// Set who the call is made for.
    #[must_use]
    pub fn with_caller(mut self, caller: Option<std::sync::Arc<CallerIdentity>>) -> Self {
        self.caller = caller;
        self
    }

    /// Replace the cancellation token.
    #[must_use]
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Replace the progress sink.
    #[must_use]
    pub fn with_progress(mut self, progress: ProgressSink) -> Self {
        self.progress = progress;
        self
    }

    /// Set the trace id.
    #[must_use]
    pub fn with_trace_id(mut self, trace_id: Option<String>) -> Self {
        self.trace_id = trace_id;
        self
    }
}

/// The severity of a log message a tool sends its client (RFC 5424's levels, as
/// MCP uses them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Detail for debugging.
    Debug,
    /// Normal events.
    Info,
    /// Significant normal events.
    Notice,
    /// Something may be wrong.
    Warning,
    /// Something failed.
    Error,
    /// A critical failure.
    Critical,
    /// Act now.
    Alert,
    /// Unusable.
    Emergency,
}

/// What a tool may ask of the client that called it, where the transport carries
/// such requests (an MCP session that declared the capability). Transports that
/// cannot carry them give the tool no [`ClientRequests`], and its questions fail
/// with [`crate::ErrorKind::ToolError`] saying so.
#[async_trait::async_trait]
pub trait ClientRequests: Send + Sync {
    /// Send a log message; the client sees it if it asked for that level. Never
    /// blocks the tool.
    fn log(&self, level: LogLevel, message: String);

    /// Ask the user for input (MCP `elicitation/create`): `message`, and the JSON
    /// Schema of the answer. Returns the client's answer: `{"action": "accept" |
    /// "decline" | "cancel", "content": {...}}`.
    ///
    /// # Errors
    /// The client cannot be asked, refused, or went away.
    async fn elicit(
        &self,
        message: String,
        schema: serde_json::Value,
    ) -> Result<serde_json::Value, crate::ToolError>;

    /// Ask the client's model (MCP `sampling/createMessage`); `params` are the
    /// request's parameters in MCP's encoding, the answer its result.
    ///
    /// # Errors
    /// The client cannot be asked, refused, or went away.
    async fn sample(
        &self,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, crate::ToolError>;
}

impl CallContext {
    /// Send the client a log message, if the transport can (otherwise nothing).
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        if let Some(client) = &self.client {
            client.log(level, message.into());
        }
    }

    /// The client's channel, or the error a tool returns when there is none.
    ///
    /// # Errors
    /// The call came through a transport that cannot ask its client.
    pub fn client(&self) -> Result<&Arc<dyn ClientRequests>, crate::ToolError> {
        self.client.as_ref().ok_or_else(|| {
            crate::ToolError::tool(
                "this call's transport cannot ask the client (it needs an MCP session that declared the capability)",
            )
        })
    }

    /// Set the client's channel.
    #[must_use]
    pub fn with_client(mut self, client: Option<Arc<dyn ClientRequests>>) -> Self {
        self.client = client;
        self
    }
}

impl fmt::Debug for CallContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallContext")
            .field("deadline", &self.deadline)
            .field("progress", &self.progress)
            .field("trace_id", &self.trace_id)
            .field("caller", &self.caller)
            .field("client", &self.client.is_some())
            .finish_non_exhaustive()
    }
}
