//! The edge: what every request passes before any of its work is done.
//!
//! In order, for everything but the health probes and `/metrics`:
//!
//! 1. while draining, `/api/` requests get `503 overloaded`;
//! 2. a presented key is looked up once (a client address that failed too often
//!    gets `429 rate_limited` without its key being evaluated at all); the principal
//!    goes into the request's extensions for the handlers, a failure is counted,
//!    audited, and charged to the client address;
//! 3. the global in-flight budget (`max_in_flight_requests`), of which
//!    `operator_reserve_percent` only operator keys may take: `503 overloaded`;
//! 4. the key's own share (`max_in_flight`): `429 quota_exceeded`.
//!
//! The slots are held until the handler has answered, so a client trickling its body
//! holds one slot of its own key's until the body deadline cuts it off.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;
use toolgate_core::ErrorKind;
use toolgate_resilience::{RateLimit, TokenBucket};

use crate::AppState;
use crate::auth::{Authenticated, presented_key};
use crate::quota::QuotaKind;

/// How long a shed client should wait.
const SHED_RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long a client refused by a draining server should wait (for another replica).
const DRAINING_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Paths that are never shed: probes must answer however busy the server is.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// The transport a path belongs to, for audit records of refused requests.
pub(crate) fn transport_of(path: &str) -> &'static str {
    if path.starts_with("/mcp") {
        "mcp"
    } else if path == "/api/v1/ws" {
        "ws"
    } else if path.ends_with("/stream") {
        "sse"
    } else {
        "rest"
    }
}

/// The edge middleware (see the module docs).
pub async fn gate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if exempt(path) {
        return next.run(req).await;
    }
    if state.readiness.is_draining() && path.starts_with("/api/") {
        metrics::counter!(toolgate_telemetry::metrics::SHED, "reason" => "draining").increment(1);
        return crate::ApiError::new(
            ErrorKind::Overloaded,
            "the server is draining; try another replica",
        )
        .with_status(axum::http::StatusCode::SERVICE_UNAVAILABLE)
        .with_retry_after(DRAINING_RETRY_AFTER)
        .into_response();
    }
    let mut principal = None;
    let mut bad_token = false;
    if let Some(key) = key_of(req.headers()) {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        if let Some(wait) = state.auth_throttle.blocked(peer) {
            // Counted, not audited one by one: a flood would become a flood of
            // records. The record is made when the address becomes blocked.
            count_failure("throttled");
            return crate::ApiError::new(
                ErrorKind::RateLimited,
                "too many failed authentications from this address; try again later",
            )
            .with_retry_after(wait.max(Duration::from_secs(1)))
            .into_response();
        }
        // A key; else, if it looks like one, a bearer token of a trusted issuer.
        let found = match state.keys.verify(key) {
            Some(p) => Ok(p),
            None => match state.tokens.load_full() {
                Some(tokens) if toolgate_identity::looks_like_jwt(key) || tokens.introspects() => {
                    tokens.authenticate(key).await.map_err(Some)
                }
                _ => Err(None),
            },
        };
        match found {
            Ok(p) => {
                tracing::Span::current().record("key", p.name.as_str());
                principal = Some(p);
            }
            // Nobody can tell whether the token is good (its issuer is unreachable):
            // not the caller's failure, so not charged; try again shortly.
            Err(Some(toolgate_identity::TokenError::Unavailable(why))) => {
                tracing::warn!(error = %why, "a bearer token cannot be checked now");
                return crate::ApiError::new(
                    ErrorKind::Overloaded,
                    "the token's issuer cannot be reached to check it; try again shortly",
                )
                .with_status(axum::http::StatusCode::SERVICE_UNAVAILABLE)
                .with_retry_after(Duration::from_secs(1))
                .into_response();
            }
            Err(refused) => {
                // The handler answers (each transport in its own way); the failure is
                // charged here, once.
                let now_blocked = state.auth_throttle.charge(peer);
                let transport = transport_of(path);
                match refused {
                    Some(e) => {
                        count_failure("invalid_token");
                        audit_refusal(&state, transport, "unauthorized");
                        tracing::info!(error = %e, "a bearer token was refused");
                        req.extensions_mut().insert(TokenRefused(e.to_string()));
                        bad_token = true;
                    }
                    None => {
                        count_failure("unknown_key");
                        audit_refusal(&state, transport, "forbidden");
                        req.extensions_mut().insert(KeyRefused);
                    }
                }
                if now_blocked {
                    tracing::warn!(%peer, "too many failed authentications; the address is throttled");
                    audit_refusal(&state, transport, "rate_limited");
                }
            }
        }
    }
    let privileged = principal.as_ref().is_some_and(|p| p.privileged);
    let Some(_admitted) = state.shedder.try_admit_as(privileged) else {
        tracing::warn!(path = %req.uri().path(), "shed: too many requests in flight");
        metrics::counter!(toolgate_telemetry::metrics::SHED, "reason" => "in_flight_limit")
            .increment(1);
        return crate::ApiError::new(
            ErrorKind::Overloaded,
            "the server is at its in-flight request limit; try again shortly",
        )
        .with_status(axum::http::StatusCode::SERVICE_UNAVAILABLE)
        .with_retry_after(SHED_RETRY_AFTER)
        .into_response();
    };
    let _held = match &principal {
        Some(p) => match p.take_slot(QuotaKind::Requests) {
            Ok(slot) => Some(slot),
            Err(e) => return crate::ApiError::from(e).into_response(),
        },
        None => None,
    };
    if let Some(p) = principal {
        // Through a toolset: the caller sees and calls only the set's tools.
        let p = match req.extensions().get::<crate::toolsets::ActiveSet>() {
            Some(crate::toolsets::ActiveSet(set)) => {
                std::sync::Arc::new(p.in_set(std::sync::Arc::clone(set)))
            }
            None => p,
        };
        req.extensions_mut().insert(Authenticated(p));
    }
    finish(&state, next.run(req).await, bad_token)
}

/// A bearer token that is no key and did not pass; handlers answer `401
/// invalid_token` with the reason.
#[derive(Debug, Clone)]
pub struct TokenRefused(pub String);

/// With `[auth] resource`, every `401` says where the protected resource metadata
/// is (RFC 9728, as the MCP authorization spec asks), and a `403` for want of scope
/// says which token scopes would do.
fn finish(
    state: &AppState,
    mut response: axum::response::Response,
    bad_token: bool,
) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header::WWW_AUTHENTICATE};
    let status = response.status();
    if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
        return response;
    }
    let tokens = state.tokens.load();
    let url = tokens.as_ref().and_then(|t| t.metadata_url());
    if url.is_none() && !bad_token {
        return response;
    }
    let headers = response.headers_mut();
    let Some(mut challenge) = headers
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            (status == StatusCode::UNAUTHORIZED).then(|| "Bearer realm=\"toolgate\"".to_owned())
        })
    else {
        return response;
    };
    if bad_token && !challenge.contains("error=") {
        challenge.push_str(", error=\"invalid_token\"");
    }
    if let Some(url) = url
        && (status == StatusCode::UNAUTHORIZED || challenge.contains("insufficient_scope"))
    {
        challenge.push_str(&format!(", resource_metadata=\"{url}\""));
    }
    // What to ask the issuer for (MCP authorization): on a 401 only; a 403 for scope
    // already names the scope the tool needs.
    if status == StatusCode::UNAUTHORIZED
        && !challenge.contains("scope=")
        && let Some(scope) = tokens.as_ref().and_then(|t| t.challenge_scope())
    {
        challenge.push_str(&format!(", scope=\"{scope}\""));
    }
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        headers.insert(WWW_AUTHENTICATE, v);
    }
    response
}

/// The key a request presents: its headers, or a WebSocket subprotocol offer.
fn key_of(headers: &HeaderMap) -> Option<&str> {
    presented_key(headers).or_else(|| {
        headers
            .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|p| {
                p.trim()
                    .strip_prefix(crate::transport::ws::KEY_PROTOCOL_PREFIX)
            })
            .filter(|k| !k.is_empty())
    })
}

/// Set on a request whose key the edge looked up and did not find, so that handlers
/// refuse it without looking it up again.
#[derive(Debug, Clone, Copy)]
pub struct KeyRefused;

fn count_failure(reason: &'static str) {
    use std::sync::OnceLock;
    // Handles kept: a flood of wrong keys should cost as little as possible.
    static UNKNOWN: OnceLock<metrics::Counter> = OnceLock::new();
    static THROTTLED: OnceLock<metrics::Counter> = OnceLock::new();
    static BAD_TOKEN: OnceLock<metrics::Counter> = OnceLock::new();
    let (cell, label) = match reason {
        "throttled" => (&THROTTLED, "throttled"),
        "invalid_token" => (&BAD_TOKEN, "invalid_token"),
        _ => (&UNKNOWN, "unknown_key"),
    };
    cell.get_or_init(
        || metrics::counter!(toolgate_telemetry::metrics::AUTH_FAILURES, "reason" => label),
    )
    .increment(1);
}

/// Audit a request refused for want of a valid key.
pub(crate) fn audit_refusal(state: &AppState, transport: &'static str, outcome: &'static str) {
    if let Some(audit) = &state.audit {
        audit.record_refusal(
            crate::audit::UNKNOWN_KEY,
            None,
            "",
            transport,
            outcome,
            crate::trace::current().unwrap_or_default(),
        );
    }
}

/// Most client addresses tracked at once; past it, those whose buckets are full
/// again are forgotten, and if none is, the oldest half of the map goes.
const MAX_TRACKED: usize = 65_536;

/// Failed authentications per client address, as token buckets.
///
/// Hand-written over a map rather than a keyed rate-limit crate: it reuses the
/// server's own [`TokenBucket`] (tokio's clock, testable with paused time) and needs
/// only "charge one failure" and "is this address blocked".
#[derive(Debug)]
pub struct AuthThrottle {
    limit: Option<RateLimit>,
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl AuthThrottle {
    /// `per_second` failures refilled, up to `burst`; `per_second <= 0` turns it off.
    #[must_use]
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self {
            limit: (per_second > 0.0).then_some(RateLimit {
                per_second,
                burst: burst.max(1.0),
            }),
            buckets: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, TokenBucket>> {
        match self.buckets.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// How long `peer` must wait, if it has used up its failures.
    #[must_use]
    pub fn blocked(&self, peer: IpAddr) -> Option<Duration> {
        self.limit?;
        let mut buckets = self.lock();
        let bucket = buckets.get_mut(&peer)?;
        bucket.wait_for(1.0, Instant::now())
    }

    /// Charge one failed authentication to `peer`; whether that used up its last
    /// token (the address is blocked from now on).
    pub fn charge(&self, peer: IpAddr) -> bool {
        let Some(limit) = self.limit else {
            return false;
        };
        let now = Instant::now();
        let mut buckets = self.lock();
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&peer) {
            buckets.retain(|_, b| !b.is_full(now));
            if buckets.len() >= MAX_TRACKED {
                let mut n = 0;
                buckets.retain(|_, _| {
                    n += 1;
                    n % 2 == 0
                });
            }
        }
        let bucket = buckets
            .entry(peer)
            .or_insert_with(|| TokenBucket::new(limit, now));
        // An empty bucket stays empty: the address is already blocked.
        bucket.try_take(1.0, now).is_ok() && bucket.wait_for(1.0, now).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_address_is_blocked_after_its_burst_and_refills() {
        let t = AuthThrottle::new(1.0, 3.0);
        let a = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        let b = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
        for i in 0..3 {
            assert!(t.blocked(a).is_none());
            assert_eq!(t.charge(a), i == 2, "blocked by the third failure");
        }
        assert!(t.blocked(a).is_some());
        assert!(t.blocked(b).is_none(), "another address is not blocked");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(t.blocked(a).is_none());
    }

    #[test]
    fn off_when_the_rate_is_zero() {
        let t = AuthThrottle::new(0.0, 1.0);
        let a = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        for _ in 0..10 {
            t.charge(a);
        }
        assert!(t.blocked(a).is_none());
    }
}
