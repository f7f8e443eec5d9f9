//! API keys and scopes, and the [`Caller`] extractor that enforces them.
//!
//! A key arrives as `X-Tool-API-Key: KEY` or `Authorization: Bearer KEY`. It is
//! hashed (SHA-256) and compared with every configured hash in constant time; the
//! comparison does not stop at the first match, so timing reveals nothing about
//! which key matched. Missing key: 401 with `WWW-Authenticate`. Unknown key: 403.
//! Keys are never logged; the principal's name is.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use toolgate_config::{KeyConfig, KeyHash, ScopePattern};
use toolgate_core::ErrorKind;
use toolgate_resilience::{RateLimit, TokenBucket};

use crate::{ApiError, AppState};

/// Header that carries a key.
pub const KEY_HEADER: &str = "x-tool-api-key";

/// What a key may call.
#[derive(Debug, Clone)]
pub enum Scopes {
    /// Every tool (the operator key).
    All,
    /// Tools matching one of these patterns.
    Patterns(Vec<ScopePattern>),
}

/// The identity behind a key.
#[derive(Debug)]
pub struct Principal {
    /// The key's name, used in logs.
    pub name: String,
    /// What it may call.
    pub scopes: Scopes,
    /// The key's rate limit, if it has one.
    pub limit: Option<RateLimit>,
    /// Its in-memory bucket (used unless the limits are shared through Redis).
    pub rate: Option<Mutex<TokenBucket>>,
}

impl Principal {
    /// A principal without a rate limit.
    #[must_use]
    pub fn new(name: impl Into<String>, scopes: Scopes) -> Self {
        Self {
            name: name.into(),
            scopes,
            limit: None,
            rate: None,
        }
    }

    /// Take one call from the key's rate limit.
    ///
    /// # Errors
    /// How long until the key may call again.
    pub fn take_call(&self) -> Result<(), Duration> {
        let Some(bucket) = &self.rate else {
            return Ok(());
        };
        let mut bucket = match bucket.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        bucket.try_take(1.0, Instant::now())
    }

    /// Whether this principal may call (and see) `tool`.
    #[must_use]
    pub fn allows(&self, tool: &str) -> bool {
        match &self.scopes {
            Scopes::All => true,
            Scopes::Patterns(patterns) => patterns.iter().any(|p| p.matches(tool)),
        }
    }
}

type Entries = Vec<(KeyHash, Arc<Principal>)>;

/// Every accepted key, by hash; replaced whole on reload.
#[derive(Debug, Default)]
pub struct Keys {
    entries: ArcSwap<Entries>,
}

/// The name the operator key is logged under.
pub const OPERATOR: &str = "operator";

impl Keys {
    /// The operator key (all scopes) plus the configured keys. Configured keys were
    /// validated at load; one that still fails to parse is skipped, never accepted.
    #[must_use]
    pub fn new(operator: Option<&SecretString>, configured: &[KeyConfig]) -> Self {
        let mut entries = Vec::new();
        if let Some(key) = operator {
            entries.push((
                KeyHash::of(key.expose_secret()),
                Arc::new(Principal::new(OPERATOR, Scopes::All)),
            ));
        }
        for k in configured {
            let Ok(hash) = KeyHash::parse(k.hash.get_ref().as_str()) else {
                continue;
            };
            let patterns = k
                .scopes
                .get_ref()
                .iter()
                .filter_map(|s| ScopePattern::parse(s).ok())
                .collect();
            let limit = k.rate_limit.as_ref().map(|r| {
                let r = r.get_ref();
                RateLimit {
                    per_second: r.per_second,
                    burst: r.burst.unwrap_or(r.per_second.max(1.0)),
                }
            });
            let rate = limit.map(|l| Mutex::new(TokenBucket::new(l, Instant::now())));
            entries.push((
                hash,
                Arc::new(Principal {
                    name: k.name.get_ref().clone(),
                    scopes: Scopes::Patterns(patterns),
                    limit,
                    rate,
                }),
            ));
        }
        Self {
            entries: ArcSwap::from_pointee(entries),
        }
    }

    /// Take the keys of `next` (a reload).
    pub fn replace_with(&self, next: Keys) {
        self.entries.store(next.entries.into_inner());
    }

    /// Whether no key at all is configured.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.load().is_empty()
    }

    /// The principal of `presented`, if it is a known key.
    #[must_use]
    pub fn verify(&self, presented: &str) -> Option<Arc<Principal>> {
        let hash = KeyHash::of(presented);
        let mut found = None;
        for (h, principal) in self.entries.load().iter() {
            // No early exit: every hash is compared whatever matched before.
            if h.ct_eq(&hash) && found.is_none() {
                found = Some(Arc::clone(principal));
            }
        }
        found
    }
}

/// The key presented in `headers`, if any.
#[must_use]
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(KEY_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(v.trim()).filter(|v| !v.is_empty());
    }
    let auth = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The authenticated caller of a request. Extracting it rejects the request with
/// 401 (no key) or 403 (unknown key).
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<Principal>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = presented_key(&parts.headers).ok_or_else(|| {
            ApiError::new(
                ErrorKind::Unauthorized,
                "send an API key as `X-Tool-API-Key: KEY` or `Authorization: Bearer KEY`",
            )
        })?;
        let principal = state
            .keys
            .verify(key)
            .ok_or_else(|| ApiError::new(ErrorKind::Forbidden, "the API key is not valid"))?;
        tracing::Span::current().record("key", principal.name.as_str());
        Ok(Caller(principal))
    }
}

impl Caller {
    /// 403 unless the caller may use `tool`.
    ///
    /// # Errors
    /// `forbidden` naming the tool.
    pub fn require(&self, tool: &str) -> Result<(), ApiError> {
        if self.0.allows(tool) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorKind::Forbidden,
                format!("the key {:?} has no scope for tool {tool:?}", self.0.name),
            ))
        }
    }
}
