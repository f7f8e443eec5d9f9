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
use toolgate_core::{ErrorKind, ToolError};
use toolgate_resilience::{RateLimit, TokenBucket};

use crate::quota::{KeyQuotas, QuotaDefaults, QuotaKind, QuotaSlot};
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

/// A named view of the tools (`[toolsets.NAME]`).
#[derive(Debug)]
pub struct Toolset {
    /// Its name, the URL segment (`/mcp/NAME`).
    pub name: String,
    /// The tools it holds.
    pub patterns: Vec<ScopePattern>,
    /// Discovery mode: it lists the search meta-tools instead of its tools.
    pub search: bool,
}

impl Toolset {
    /// Whether `tool` is in the set.
    #[must_use]
    pub fn holds(&self, tool: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(tool))
    }
}

/// The identity behind a key.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key's name, used in logs.
    pub name: String,
    /// What it may call.
    pub scopes: Scopes,
    /// The key's rate limit, if it has one.
    pub limit: Option<RateLimit>,
    /// Its in-memory bucket (used unless the limits are shared through Redis); the
    /// principals of one token subject share theirs.
    pub rate: Option<Arc<Mutex<TokenBucket>>>,
    /// The key's digest (never the key): sessions are bound to it, and a socket
    /// finds its key again after a reload by it.
    pub hash: KeyHash,
    /// May use the share of the global budgets kept for operators.
    pub privileged: bool,
    /// What the key holds now, against its limits.
    pub quotas: Arc<KeyQuotas>,
    /// Who a bearer token speaks for; `None` for an API key.
    pub identity: Option<Arc<TokenIdentity>>,
    /// What tools are told of the caller (built once, shared by its calls).
    pub caller: Arc<toolgate_core::CallerIdentity>,
    /// The toolset the request came through (`/mcp/NAME`, `/api/v1/sets/NAME/`):
    /// only its tools are seen and called.
    pub set: Option<Arc<Toolset>>,
}

/// The identity behind a bearer token (never the token itself): what its calls'
/// audit records carry.
pub type TokenIdentity = toolgate_audit::Caller;

/// What tools are told of a caller named `name` with `claims`.
#[must_use]
pub fn caller_identity(
    name: &str,
    claims: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
    token: Option<Arc<str>>,
) -> Arc<toolgate_core::CallerIdentity> {
    Arc::new(toolgate_core::CallerIdentity {
        name: name.to_owned(),
        claims,
        token,
    })
}

impl Principal {
    /// A principal without a rate limit or quotas, for the key with digest `hash`.
    #[must_use]
    pub fn new(name: impl Into<String>, scopes: Scopes, hash: KeyHash) -> Self {
        let name = name.into();
        Self {
            caller: caller_identity(&name, None, None),
            quotas: Arc::new(KeyQuotas::new(&name, QuotaDefaults::unlimited())),
            name,
            scopes,
            limit: None,
            rate: None,
            hash,
            privileged: false,
            identity: None,
            set: None,
        }
    }

    /// Whether the caller came through a toolset in discovery mode: listings show
    /// the search meta-tools instead of the tools.
    #[must_use]
    pub fn searches(&self) -> bool {
        self.set.as_ref().is_some_and(|s| s.search)
    }

    /// This principal seen through `set`.
    #[must_use]
    pub fn in_set(&self, set: Arc<Toolset>) -> Self {
        Self {
            set: Some(set),
            ..self.clone()
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

    /// Take a slot of the key's quota `kind`.
    ///
    /// # Errors
    /// `quota_exceeded` naming the quota, with `Retry-After`; counted in the metrics.
    pub fn take_slot(&self, kind: QuotaKind) -> Result<QuotaSlot, ToolError> {
        let quota = self.quotas.get(kind);
        quota.try_take().ok_or_else(|| {
            crate::quota::count_refusal(&self.name, kind);
            tracing::info!(key = %self.name, quota = kind.label(), limit = quota.limit(), "quota exceeded");
            ToolError::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "the key {:?} has {} of its {} {} in use (`{}`)",
                    self.name,
                    quota.used(),
                    quota.limit(),
                    match kind {
                        QuotaKind::Requests => "requests in flight",
                        QuotaKind::Calls => "calls in flight",
                        QuotaKind::WebSockets => "WebSockets",
                        QuotaKind::McpSessions => "MCP sessions",
                    },
                    kind.setting()
                ),
            )
            .with_retry_after(QUOTA_RETRY_AFTER)
        })
    }

    /// Whether this principal may call (and see) `tool`.
    #[must_use]
    pub fn allows(&self, tool: &str) -> bool {
        // The meta-tools of a search set show only what the caller may call anyway.
        if crate::search::is_meta(self, tool) {
            return true;
        }
        let scoped = match &self.scopes {
            Scopes::All => true,
            Scopes::Patterns(patterns) => patterns.iter().any(|p| p.matches(tool)),
        };
        scoped && self.set.as_ref().is_none_or(|s| s.holds(tool))
    }
}

/// How long a caller refused by a quota should wait.
const QUOTA_RETRY_AFTER: Duration = Duration::from_secs(1);

type Entries = Vec<(KeyHash, Arc<Principal>)>;

/// Every accepted key, by hash; replaced whole on reload.
#[derive(Debug)]
pub struct Keys {
    entries: ArcSwap<Entries>,
    /// Bumped on every reload, so long-lived connections re-check their key.
    generation: tokio::sync::watch::Sender<u64>,
}

impl Default for Keys {
    fn default() -> Self {
        Self {
            entries: ArcSwap::default(),
            generation: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// The name the operator key is logged under.
pub const OPERATOR: &str = "operator";

impl Keys {
    /// The operator key (all scopes, no quotas, privileged) plus the configured keys
    /// with `defaults` for the quotas they do not set. Configured keys were validated
    /// at load; one that still fails to parse is skipped, never accepted.
    #[must_use]
    pub fn new(
        operator: Option<&SecretString>,
        configured: &[KeyConfig],
        defaults: QuotaDefaults,
    ) -> Self {
        let keys = Self::default();
        keys.entries
            .store(Arc::new(build(operator, configured, defaults, &[])));
        keys
    }

    /// Take the keys of a new configuration (a reload). A key kept under the same
    /// name and hash keeps its counters, so what it holds still counts; every
    /// long-lived connection is told to re-check its key.
    pub fn reload(
        &self,
        operator: Option<&SecretString>,
        configured: &[KeyConfig],
        defaults: QuotaDefaults,
    ) {
        let old = self.entries.load_full();
        self.entries
            .store(Arc::new(build(operator, configured, defaults, &old)));
        self.generation.send_modify(|g| *g += 1);
    }

    /// A receiver that changes whenever the keys are reloaded.
    #[must_use]
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Whether no key at all is configured.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.load().is_empty()
    }

    /// The principal of `presented`, if it is a known key.
    #[must_use]
    pub fn verify(&self, presented: &str) -> Option<Arc<Principal>> {
        self.find(&KeyHash::of(presented))
    }

    /// The current principal of the key with digest `hash` (after a reload, the new
    /// one, with the new scopes); `None` once the key is gone.
    #[must_use]
    pub fn find(&self, hash: &KeyHash) -> Option<Arc<Principal>> {
        let mut found = None;
        for (h, principal) in self.entries.load().iter() {
            // No early exit: every hash is compared whatever matched before.
            if h.ct_eq(hash) && found.is_none() {
                found = Some(Arc::clone(principal));
            }
        }
        found
    }
}

fn build(
    operator: Option<&SecretString>,
    configured: &[KeyConfig],
    defaults: QuotaDefaults,
    old: &[(KeyHash, Arc<Principal>)],
) -> Entries {
    // Counters carry over for a key with the same name and hash.
    let quotas_for = |name: &str, hash: &KeyHash, limits: QuotaDefaults| match old
        .iter()
        .find(|(h, p)| h == hash && p.name == name)
        .map(|(_, p)| Arc::clone(&p.quotas))
    {
        Some(q) => {
            q.set_limits(limits);
            q
        }
        None => Arc::new(KeyQuotas::new(name, limits)),
    };
    let mut entries = Vec::new();
    if let Some(key) = operator {
        let hash = KeyHash::of(key.expose_secret());
        let quotas = quotas_for(OPERATOR, &hash, QuotaDefaults::unlimited());
        entries.push((
            hash.clone(),
            Arc::new(Principal {
                quotas,
                privileged: true,
                ..Principal::new(OPERATOR, Scopes::All, hash)
            }),
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
        let rate = limit.map(|l| Arc::new(Mutex::new(TokenBucket::new(l, Instant::now()))));
        let name = k.name.get_ref().clone();
        let quotas = quotas_for(&name, &hash, defaults.for_key(k));
        entries.push((
            hash.clone(),
            Arc::new(Principal {
                caller: caller_identity(&name, None, None),
                name,
                scopes: Scopes::Patterns(patterns),
                limit,
                rate,
                hash,
                privileged: k.operator,
                quotas,
                identity: None,
                set: None,
            }),
        ));
    }
    entries
}

/// The key presented in `headers`, if any.
#[must_use]
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    // An empty `X-Tool-API-Key:` is no key: `Authorization` is still looked at.
    if let Some(v) = headers
        .get(KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        return Some(v);
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

/// The principal the edge found for a request's key, in its extensions.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Principal>);

/// The authenticated caller of a request. Extracting it rejects the request with
/// 401 (no key) or 403 (unknown key).
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<Principal>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The edge (crate::gate) already looked the key up.
        if let Some(Authenticated(principal)) = parts.extensions.get::<Authenticated>() {
            return Ok(Caller(Arc::clone(principal)));
        }
        if let Some(refused) = parts.extensions.get::<crate::gate::TokenRefused>() {
            return Err(token_refused(refused));
        }
        if parts.extensions.get::<crate::gate::KeyRefused>().is_some() {
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                "the API key is not valid",
            ));
        }
        let key = presented_key(&parts.headers).ok_or_else(|| {
            crate::gate::audit_refusal(
                state,
                crate::gate::transport_of(parts.uri.path()),
                "unauthorized",
            );
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

/// `401 unauthorized` for a bearer token that did not pass, saying why (the edge
/// adds `error="invalid_token"` to the challenge).
#[must_use]
pub fn token_refused(refused: &crate::gate::TokenRefused) -> ApiError {
    ApiError::new(ErrorKind::Unauthorized, refused.0.clone())
}

impl Caller {
    /// 403 unless the caller may use `tool`; a refusal is audited (as `transport`).
    ///
    /// # Errors
    /// `forbidden` naming the tool.
    pub fn require(
        &self,
        state: &AppState,
        tool: &str,
        transport: &'static str,
    ) -> Result<(), ApiError> {
        if self.0.allows(tool) {
            Ok(())
        } else {
            if let Some(audit) = &state.audit {
                audit.record_refusal(
                    &self.0.name,
                    self.0.identity.as_ref(),
                    tool,
                    transport,
                    "forbidden",
                    crate::trace::current().unwrap_or_default(),
                );
            }
            Err(ApiError::new(
                ErrorKind::Forbidden,
                format!("the key {:?} has no scope for tool {tool:?}", self.0.name),
            ))
        }
    }
}
