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
#[derive(Debug, Clone)]
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
