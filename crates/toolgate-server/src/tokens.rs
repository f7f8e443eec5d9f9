//! Bearer tokens from identity providers, beside the API keys (`[auth]`).
//!
//! The edge ([`crate::gate`]) looks a presented credential up as a key first, on the
//! constant-time path; only one that is no key and has the shape of a JWT comes
//! here. [`Tokens::authenticate`] validates it ([`toolgate_identity::Identity`]) and
//! turns it into a [`Principal`] named `issuer:subject`, whose scopes are the tool
//! patterns its claims map to. A subject keeps one rate-limit bucket and one set of
//! quotas across its tokens, so limits and quotas apply per subject as they apply per
//! key. The protected resource metadata (RFC 9728) of the MCP authorization spec is
//! [`Tokens::metadata`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use toolgate_config::{AuthConfig, IssuerConfig, KeyHash, ScopePattern, ServerConfig};
use toolgate_identity::{Identity, IssuerSettings, TokenError, Verified};
use toolgate_resilience::{RateLimit, TokenBucket};

use crate::auth::{Principal, Scopes};
use crate::quota::{KeyQuotas, QuotaDefaults};

/// Subjects tracked at once; past it, those idle longest are forgotten (their
/// counters restart, and nothing they hold is lost: slots release by themselves).
const MAX_SUBJECTS: usize = 65_536;

/// What one issuer's subjects get besides their scopes.
struct IssuerPolicy {
    limit: Option<RateLimit>,
    quotas: QuotaDefaults,
}

/// A subject's counters, shared by every principal built for its tokens.
struct Subject {
    /// The token this principal was built from (a new token builds a new one).
    verified: Arc<Verified>,
    principal: Arc<Principal>,
    seen: Instant,
}

/// The trusted issuers, and the subjects seen.
pub struct Tokens {
    identity: Identity,
    policies: HashMap<String, IssuerPolicy>,
    subjects: Mutex<HashMap<(String, String), Subject>>,
    resource: Option<String>,
    /// What a `401` asks for (`scope=`), if anything.
    challenge_scope: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

fn settings_of(i: &IssuerConfig, auth: &AuthConfig) -> Result<IssuerSettings, String> {
    let audience = i
        .audience
        .as_ref()
        .or(auth.resource.as_ref())
        .map(|a| a.get_ref().clone())
        .unwrap_or_default();
    let mut s = IssuerSettings::new(i.name.get_ref(), i.issuer.get_ref(), &audience);
    s.jwks_uri = i.jwks_uri.as_ref().map(|u| u.get_ref().clone());
    if let Some(algs) = &i.algorithms {
        s.algorithms = algs
            .get_ref()
            .iter()
            .filter_map(|a| toolgate_identity::parse_algorithm(a).ok())
            .collect();
    }
    let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
    if let Some(l) = &i.leeway_s {
        s.leeway = Duration::from_secs(*l.get_ref());
    }
    s.jwks_min_refresh = ms(
        i.jwks_min_refresh_ms.as_ref().map(|v| *v.get_ref()),
        s.jwks_min_refresh,
    );
    s.jwks_max_age = ms(
        i.jwks_max_age_ms.as_ref().map(|v| *v.get_ref()),
        s.jwks_max_age,
    );
    s.fetch_timeout = ms(
        i.fetch_timeout_ms.as_ref().map(|v| *v.get_ref()),
        s.fetch_timeout,
    );
    if let Some(claims) = &i.scope_claims {
        s.scope_claims.clone_from(claims);
    }
    s.grants = i.grants.clone();
    if let Some(intro) = &i.introspection {
        let v = intro.get_ref();
        let secret = std::env::var(&v.client_secret_env).map_err(|_| {
            format!(
                "issuer {:?}: the variable {} (its introspection secret) is not set",
                i.name.get_ref(),
                v.client_secret_env
            )
        })?;
        s.introspection = Some(toolgate_identity::IntrospectionSettings {
            endpoint: v.endpoint.clone(),
            client_id: v.client_id.clone(),
            client_secret: secret,
            cache: Duration::from_millis(v.cache_ms.unwrap_or(60_000)),
        });
    }
    Ok(s)
}

impl Tokens {
    /// The `[auth]` section's issuers, or `None` when there are none.
    ///
    /// # Errors
    /// The HTTP client for the issuers cannot be built.
    pub fn from_config(auth: &AuthConfig, server: &ServerConfig) -> Result<Option<Self>, String> {
        if auth.issuers.is_empty() {
            return Ok(None);
        }
        let defaults = QuotaDefaults::from_server(server);
        let mut settings = Vec::new();
        let mut policies = HashMap::new();
        for spanned in &auth.issuers {
            let i = spanned.get_ref();
            settings.push(settings_of(i, auth)?);
            let limit = i.rate_limit.as_ref().map(|r| {
                let r = r.get_ref();
                RateLimit {
                    per_second: r.per_second,
                    burst: r.burst.unwrap_or(r.per_second.max(1.0)),
                }
            });
            policies.insert(
                i.name.get_ref().clone(),
                IssuerPolicy {
                    limit,
                    quotas: defaults.with_limits(
                        i.max_in_flight.as_ref().map(|v| *v.get_ref()),
                        i.max_websockets.as_ref().map(|v| *v.get_ref()),
                        i.max_mcp_sessions.as_ref().map(|v| *v.get_ref()),
                    ),
                },
            );
        }
        let cache = auth
            .token_cache_ms
            .as_ref()
            .map_or(Duration::from_secs(60), |v| {
                Duration::from_millis(*v.get_ref())
            });
        let identity = Identity::new(settings, cache)?;
        let challenge_scope = auth
            .scope
            .as_ref()
            .map(|s| s.get_ref().clone())
            .or_else(|| Some(identity.scopes_supported().join(" ")))
            .filter(|s| !s.is_empty());
        Ok(Some(Self {
            identity,
            policies,
            subjects: Mutex::new(HashMap::new()),
            resource: auth.resource.as_ref().map(|r| r.get_ref().clone()),
            challenge_scope,
        }))
    }

    /// Whether opaque tokens (no JWT) are introspected.
    #[must_use]
    pub fn introspects(&self) -> bool {
        self.identity.introspects()
    }

    /// The principal `token` speaks for.
    ///
    /// # Errors
    /// Why the token was refused.
    pub async fn authenticate(&self, token: &str) -> Result<Arc<Principal>, TokenError> {
        let verified = self.identity.verify(token).await?;
        let key = (verified.issuer_name.clone(), verified.subject.clone());
        let mut subjects = match self.subjects.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        if let Some(s) = subjects.get_mut(&key) {
            s.seen = now;
            if Arc::ptr_eq(&s.verified, &verified) {
                return Ok(Arc::clone(&s.principal));
            }
            // Another token of the same subject: its own scopes, the same counters.
            let principal = Arc::new(self.principal(&verified, Some(&s.principal), token));
            s.verified = verified;
            s.principal = Arc::clone(&principal);
            return Ok(principal);
        }
        if subjects.len() >= MAX_SUBJECTS {
            let mut ages: Vec<Instant> = subjects.values().map(|s| s.seen).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            subjects.retain(|_, s| s.seen > cut);
        }
        let principal = Arc::new(self.principal(&verified, None, token));
        subjects.insert(
            key,
            Subject {
                verified,
                principal: Arc::clone(&principal),
                seen: now,
            },
        );
        Ok(principal)
    }

    fn principal(&self, v: &Verified, before: Option<&Arc<Principal>>, token: &str) -> Principal {
        let name = format!("{}:{}", v.issuer_name, v.subject);
        let patterns = v
            .patterns
            .iter()
            .filter_map(|p| ScopePattern::parse(p).ok())
            .collect();
        let policy = self.policies.get(&v.issuer_name);
        let (rate, quotas) = match before {
            Some(p) => (p.rate.clone(), Arc::clone(&p.quotas)),
            None => (
                policy.and_then(|p| p.limit).map(|l| {
                    Arc::new(Mutex::new(TokenBucket::new(l, tokio::time::Instant::now())))
                }),
                Arc::new(KeyQuotas::new(
                    &name,
                    policy.map_or(QuotaDefaults::unlimited(), |p| p.quotas),
                )),
            ),
        };
        Principal {
            // Sessions and sockets are bound to the subject, not to one token.
            hash: KeyHash::of(&format!("token\0{}\0{}", v.issuer, v.subject)),
            limit: policy.and_then(|p| p.limit),
            rate,
            quotas,
            privileged: false,
            scopes: Scopes::Patterns(patterns),
            caller: crate::auth::caller_identity(
                &name,
                Some(Arc::new(v.claims.clone())),
                Some(Arc::from(token)),
            ),
            name,
            set: None,
            identity: Some(Arc::new(crate::auth::TokenIdentity {
                issuer: v.issuer.clone(),
                subject: v.subject.clone(),
                client_id: v.client_id.clone(),
            })),
        }
    }

    /// The protected resource metadata (RFC 9728), or `None` without `[auth]
    /// resource`.
    #[must_use]
    pub fn metadata(&self) -> Option<Value> {
        let resource = self.resource.as_ref()?;
        Some(json!({
            "resource": resource,
            "authorization_servers": self.identity.issuer_urls().collect::<Vec<_>>(),
            "scopes_supported": self.identity.scopes_supported(),
            "bearer_methods_supported": ["header"],
            "resource_name": "toolgate",
        }))
    }

    /// The scope a `401` asks for: `[auth] scope`, else every supported scope.
    #[must_use]
    pub fn challenge_scope(&self) -> Option<&str> {
        self.challenge_scope.as_deref()
    }

    /// Where the metadata is, for `WWW-Authenticate: Bearer resource_metadata=...`.
    #[must_use]
    pub fn metadata_url(&self) -> Option<String> {
        let resource = self.resource.as_ref()?;
        let base = resource.trim_end_matches('/');
        // The well-known path goes after the origin (RFC 9728 section 3.1).
        let origin = match base.split_once("://") {
            Some((scheme, rest)) => {
                format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest))
            }
            None => base.to_owned(),
        };
        Some(format!("{origin}/.well-known/oauth-protected-resource"))
    }

    /// The token scopes that would let a caller call `tool` (a step-up hint).
    #[must_use]
    pub fn scopes_for(&self, tool: &str) -> Vec<String> {
        self.identity.scopes_for(tool, |pattern, tool| {
            ScopePattern::parse(pattern).is_ok_and(|p| p.matches(tool))
        })
    }
}

/// `GET /.well-known/oauth-protected-resource` (and its `/mcp` form): the protected
/// resource metadata, or `404` without `[auth] resource`.
pub async fn protected_resource(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match state.tokens.load().as_ref().and_then(|t| t.metadata()) {
        Some(doc) => (
            [(axum::http::header::CACHE_CONTROL, "max-age=300")],
            axum::Json(doc),
        )
            .into_response(),
        None => crate::ApiError::route(
            "not_found",
            "Not found",
            axum::http::StatusCode::NOT_FOUND,
            "no [auth] resource is configured: this server takes API keys only".to_owned(),
        )
        .into_response(),
    }
}
