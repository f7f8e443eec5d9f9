//! Per-key quotas: how much of the server one key may hold at once.
//!
//! Each key has four counters: requests in flight at the edge (a request still
//! sending its body holds one), calls in flight (every REST, batch entry, SSE,
//! WebSocket and MCP call), open WebSockets, and open 2025-11-25 MCP sessions. A slot
//! is taken atomically (compare-and-swap below the limit) before the work starts and
//! given back when its [`QuotaSlot`] drops, so no race lets a key past its limit.
//!
//! The counters of a key survive a reload that keeps the key (same name and hash),
//! so sockets and sessions opened before it still count; new limits apply at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use toolgate_config::{KeyConfig, ServerConfig};

/// What a quota bounds, as named in problems, logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    /// Requests in flight.
    Requests,
    /// Calls in flight.
    Calls,
    /// Open WebSockets.
    WebSockets,
    /// Open MCP sessions.
    McpSessions,
}

impl QuotaKind {
    /// The label in metrics (`quota`).
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            QuotaKind::Requests => "requests",
            QuotaKind::Calls => "in_flight",
            QuotaKind::WebSockets => "websockets",
            QuotaKind::McpSessions => "mcp_sessions",
        }
    }

    /// The setting that sets it, for messages.
    #[must_use]
    pub fn setting(self) -> &'static str {
        match self {
            QuotaKind::Requests | QuotaKind::Calls => "max_in_flight",
            QuotaKind::WebSockets => "max_websockets",
            QuotaKind::McpSessions => "max_mcp_sessions",
        }
    }
}

/// One bounded counter.
#[derive(Debug)]
pub struct Quota {
    limit: AtomicUsize,
    used: AtomicUsize,
    /// Follows `used`, when the counter is exported.
    gauge: Option<metrics::Gauge>,
}

impl Quota {
    /// A counter allowing `limit` at once.
    #[must_use]
    pub fn new(limit: usize) -> Self {
        Self {
            limit: AtomicUsize::new(limit),
            used: AtomicUsize::new(0),
            gauge: None,
        }
    }

    /// A counter whose use is exported as `gauge`.
    #[must_use]
    pub fn with_gauge(limit: usize, gauge: metrics::Gauge) -> Self {
        Self {
            gauge: Some(gauge),
            ..Self::new(limit)
        }
    }

    /// Take one slot, or `None` when all are in use.
    #[must_use]
    pub fn try_take(self: &Arc<Self>) -> Option<QuotaSlot> {
        let limit = self.limit.load(Ordering::Relaxed);
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| {
                if let Some(g) = &self.gauge {
                    g.increment(1.0);
                }
                QuotaSlot(Arc::clone(self))
            })
    }

    /// Slots in use.
    #[must_use]
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The limit.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }
}

/// A slot held; given back on drop.
#[derive(Debug)]
pub struct QuotaSlot(Arc<Quota>);

impl Drop for QuotaSlot {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::AcqRel);
        if let Some(g) = &self.0.gauge {
            g.decrement(1.0);
        }
    }
}

/// Limits a key gets when its entry does not set them.
#[derive(Debug, Clone, Copy)]
pub struct QuotaDefaults {
    /// Requests and calls in flight.
    pub in_flight: usize,
    /// Open WebSockets.
    pub websockets: usize,
    /// Open MCP sessions.
    pub mcp_sessions: usize,
}

impl QuotaDefaults {
    /// The defaults of `[server]`.
    #[must_use]
    pub fn from_server(s: &ServerConfig) -> Self {
        Self {
            in_flight: s.key_max_in_flight,
            websockets: s.key_max_websockets,
            mcp_sessions: s.key_max_mcp_sessions,
        }
    }

    /// No limits (the operator key from the environment).
    #[must_use]
    pub fn unlimited() -> Self {
        Self {
            in_flight: usize::MAX,
            websockets: usize::MAX,
            mcp_sessions: usize::MAX,
        }
    }

    /// The limits of `key`, its own where set.
    #[must_use]
    pub fn for_key(self, key: &KeyConfig) -> Self {
        self.with_limits(
            key.max_in_flight.as_ref().map(|v| *v.get_ref()),
            key.max_websockets.as_ref().map(|v| *v.get_ref()),
            key.max_mcp_sessions.as_ref().map(|v| *v.get_ref()),
        )
    }

    /// These defaults with the limits given (in flight, WebSockets, MCP sessions).
    #[must_use]
    pub fn with_limits(
        self,
        in_flight: Option<usize>,
        websockets: Option<usize>,
        mcp_sessions: Option<usize>,
    ) -> Self {
        Self {
            in_flight: in_flight.unwrap_or(self.in_flight),
            websockets: websockets.unwrap_or(self.websockets),
            mcp_sessions: mcp_sessions.unwrap_or(self.mcp_sessions),
        }
    }
}

/// The four counters of one key; calls in flight are exported as
/// `toolgate_key_calls_in_flight{key}`.
#[derive(Debug)]
pub struct KeyQuotas {
    /// Requests in flight at the edge.
    pub requests: Arc<Quota>,
    /// Calls in flight.
    pub calls: Arc<Quota>,
    /// Open WebSockets.
    pub websockets: Arc<Quota>,
    /// Open MCP sessions.
    pub mcp_sessions: Arc<Quota>,
}

impl KeyQuotas {
    /// Counters for the key `name` with `limits`.
    #[must_use]
    pub fn new(name: &str, limits: QuotaDefaults) -> Self {
        Self {
            requests: Arc::new(Quota::new(limits.in_flight)),
            calls: Arc::new(Quota::with_gauge(
                limits.in_flight,
                metrics::gauge!(
                    toolgate_telemetry::metrics::KEY_IN_FLIGHT,
                    "key" => name.to_owned()
                ),
            )),
            websockets: Arc::new(Quota::new(limits.websockets)),
            mcp_sessions: Arc::new(Quota::new(limits.mcp_sessions)),
        }
    }

    /// Apply new limits, keeping the counts (a reload).
    pub fn set_limits(&self, limits: QuotaDefaults) {
        self.requests.set_limit(limits.in_flight);
        self.calls.set_limit(limits.in_flight);
        self.websockets.set_limit(limits.websockets);
        self.mcp_sessions.set_limit(limits.mcp_sessions);
    }

    /// The counter of `kind`.
    #[must_use]
    pub fn get(&self, kind: QuotaKind) -> &Arc<Quota> {
        match kind {
            QuotaKind::Requests => &self.requests,
            QuotaKind::Calls => &self.calls,
            QuotaKind::WebSockets => &self.websockets,
            QuotaKind::McpSessions => &self.mcp_sessions,
        }
    }
}

/// Count a refusal by `key`'s quota `kind` (key names come from the config, so the
/// label's values are bounded).
pub fn count_refusal(key: &str, kind: QuotaKind) {
    metrics::counter!(
        toolgate_telemetry::metrics::QUOTA_EXCEEDED,
        "key" => key.to_owned(),
        "quota" => kind.label()
    )
    .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_slots_come_back_on_drop() {
        let q = Arc::new(Quota::new(2));
        let a = q.try_take();
        let b = q.try_take();
        assert!(a.is_some() && b.is_some());
        assert!(q.try_take().is_none());
        drop(a);
        assert_eq!(q.used(), 1);
        assert!(q.try_take().is_some());
    }
}
