//! # toolgate-identity: bearer tokens from an identity provider
//!
//! [`Identity`] validates JSON Web Tokens issued by the configured issuers
//! ([`IssuerSettings`]): the issuer is found by the token's `iss`, its signing keys
//! come from the JWKS that its discovery document names
//! (`/.well-known/openid-configuration`, or RFC 8414's
//! `/.well-known/oauth-authorization-server`), cached ([`jwks`]). A token whose `kid`
//! is unknown makes the key set be fetched again, at most once per
//! `jwks_min_refresh`, so random `kid`s cannot make the server hammer the issuer; the
//! set is also refetched in the background once older than `jwks_max_age`, so a key
//! the issuer removed stops being accepted.
//!
//! Only asymmetric algorithms are accepted (RS256/384/512, PS256/384/512, ES256/384,
//! EdDSA); `alg: none` does not parse, and a symmetric key in a JWKS is ignored, so a
//! token signed with HMAC over a public key (the "algorithm confusion" attack) is
//! refused. `exp` and `nbf` are checked with a leeway, `iat` must not be in the
//! future, `iss` and `aud` must be the configured ones, `sub` must be present.
//!
//! A token that passed is cached by its SHA-256 until it expires (at most
//! `token_cache` long, and never past a change of the issuer's keys), so that the
//! signature is checked once per token, not once per call.
//!
//! The claims become tool-scope patterns through the issuer's `grants`: each value of
//! the configured scope claims (`scope`, space-separated; `scp`, `roles`, `groups`,
//! arrays or strings) that the map names adds its patterns ([`Verified::patterns`]).

pub mod jwks;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use jwks::Jwks;

/// One trusted issuer, as configured.
#[derive(Debug, Clone)]
pub struct IssuerSettings {
    /// A short name for logs and the audit log.
    pub name: String,
    /// The `iss` its tokens carry (and where its discovery document is).
    pub issuer: String,
    /// The `aud` a token must carry: this server's resource indicator (RFC 8707).
    pub audience: String,
    /// The JWKS URL; `None`: from the discovery document.
    pub jwks_uri: Option<String>,
    /// The algorithms accepted (asymmetric only).
    pub algorithms: Vec<Algorithm>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// The least time between two fetches of the key set.
    pub jwks_min_refresh: Duration,
    /// Past this age the key set is fetched again (in the background).
    pub jwks_max_age: Duration,
    /// How long a fetch (discovery or JWKS) may take.
    pub fetch_timeout: Duration,
    /// The claims whose values are looked up in `grants`.
    pub scope_claims: Vec<String>,
    /// A granted value (a scope, role or group) to the tool patterns it allows.
    pub grants: BTreeMap<String, Vec<String>>,
    /// Opaque tokens: how to introspect them (RFC 7662). `None`: JWTs only.
    pub introspection: Option<IntrospectionSettings>,
}

/// How an issuer's opaque tokens are introspected (RFC 7662).
#[derive(Debug, Clone)]
pub struct IntrospectionSettings {
    /// The endpoint; `None`: the discovery document's `introspection_endpoint`.
    pub endpoint: Option<String>,
    /// This server's client id at the issuer (HTTP Basic authentication).
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// The longest an answer is reused (never past the token's `exp`); a refusal is
    /// reused as long, so that a flood of made-up tokens costs the issuer one request
    /// each at most this often.
    pub cache: Duration,
}

impl IssuerSettings {
    /// Settings with the defaults: every asymmetric algorithm, 30 s leeway, a refetch
    /// at most every 10 s and at least every 5 minutes, 5 s fetches, scope claims
    /// `scope`, `scp`, `roles` and `groups`, no grants.
    #[must_use]
    pub fn new(name: &str, issuer: &str, audience: &str) -> Self {
        Self {
            name: name.to_owned(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            jwks_uri: None,
            algorithms: ASYMMETRIC.to_vec(),
            leeway: Duration::from_secs(30),
            jwks_min_refresh: Duration::from_secs(10),
            jwks_max_age: Duration::from_secs(300),
            fetch_timeout: Duration::from_secs(5),
            scope_claims: ["scope", "scp", "roles", "groups"]
                .map(str::to_owned)
                .to_vec(),
            grants: BTreeMap::new(),
            introspection: None,
        }
    }
}

/// Every algorithm a token may use.
pub const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Parse an algorithm name (`RS256`, `PS256`, `ES256`, `EdDSA`, ...); symmetric
/// ones and `none` are refused.
///
/// # Errors
/// Not an asymmetric JWS algorithm.
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    let alg: Algorithm = name
        .parse()
        .map_err(|_| format!("{name:?} is not a JWS algorithm"))?;
    if ASYMMETRIC.contains(&alg) {
        Ok(alg)
    } else {
        Err(format!(
            "{name:?} is symmetric; only RS*, PS*, ES256, ES384 and EdDSA are accepted"
        ))
    }
}

/// A token that passed: who it speaks for, and what it grants.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The issuer's configured name.
    pub issuer_name: String,
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `client_id` (or `azp`), when the token has one.
    pub client_id: Option<String>,
    /// The scope-claim values the token carries.
    pub granted: Vec<String>,
    /// The tool patterns they map to.
    pub patterns: Vec<String>,
    /// `exp`, seconds since the epoch.
    pub expires_at: u64,
    /// Every claim, for what is carried down to tools.
    pub claims: Map<String, Value>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT at all, or one whose header or claims do not parse.
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(String),
    /// Well-formed, but not valid: unknown issuer, bad signature, expired, wrong
    /// audience, and so on.
    #[error("the token is not valid: {0}")]
    Invalid(String),
    /// The issuer's keys could not be fetched: nobody can tell.
    #[error("the token cannot be checked now: {0}")]
    Unavailable(String),
}

struct Issuer {
    settings: IssuerSettings,
    jwks: Jwks,
}

struct Cached {
    verified: Arc<Verified>,
    until: Instant,
    /// The issuer's key-set generation it was checked under.
    generation: u64,
    issuer: usize,
}

/// Tokens verified at most this many at once in the cache; past it, expired ones go,
/// then everything (a refill costs one signature check per token).
const CACHE_MAX: usize = 65_536;

/// Every trusted issuer, and the cache of tokens that passed.
pub struct Identity {
    issuers: Vec<Issuer>,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    token_cache: Duration,
    /// Opaque tokens an issuer said are not active, until when.
    refused: Mutex<HashMap<[u8; 32], Instant>>,
    /// Introspection requests in flight at most (the issuer's protection).
    introspecting: tokio::sync::Semaphore,
}

/// Introspection requests in flight at once, at most.
const MAX_INTROSPECTIONS: usize = 16;

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field(
                "issuers",
                &self
                    .issuers
                    .iter()
                    .map(|i| &i.settings.issuer)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Whether `token` has the shape of a compact JWS (three base64url parts): only such
/// tokens are tried as JWTs.
#[must_use]
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = 0;
    for part in token.split('.') {
        parts += 1;
        if part.is_empty()
            || !part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
    }
    parts == 3
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Identity {
    /// Trust `issuers`; a token that passed is cached at most `token_cache`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(issuers: Vec<IssuerSettings>, token_cache: Duration) -> Result<Self, String> {
        let issuers = issuers
            .into_iter()
            .map(|settings| {
                Ok(Issuer {
                    jwks: Jwks::new(&settings)?,
                    settings,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            issuers,
            cache: Mutex::new(HashMap::new()),
            token_cache,
            refused: Mutex::new(HashMap::new()),
            introspecting: tokio::sync::Semaphore::new(MAX_INTROSPECTIONS),
        })
    }

    /// Whether some issuer introspects opaque tokens (then a credential that is no
    /// key and no JWT is tried as one).
    #[must_use]
    pub fn introspects(&self) -> bool {
        self.issuers
            .iter()
            .any(|i| i.settings.introspection.is_some())
    }

    /// Whether any issuer is trusted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// The trusted issuers' URLs (for the protected resource metadata).
    pub fn issuer_urls(&self) -> impl Iterator<Item = &str> {
        self.issuers.iter().map(|i| i.settings.issuer.as_str())
    }

    /// Every granted value some issuer maps to tools (the scopes a client may ask for).
    #[must_use]
    pub fn scopes_supported(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .issuers
            .iter()
            .flat_map(|i| i.settings.grants.keys().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// The granted values that would allow `tool` (for a step-up `scope=` hint).
    #[must_use]
    pub fn scopes_for(&self, tool: &str, matches: impl Fn(&str, &str) -> bool) -> Vec<String> {
        let mut all: Vec<String> = self
            .issuers
            .iter()
            .flat_map(|i| i.settings.grants.iter())
            .filter(|(_, patterns)| patterns.iter().any(|p| matches(p, tool)))
            .map(|(g, _)| g.clone())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// Check `token`: the cached result when it passed before, else the whole
    /// validation (which may fetch the issuer's keys).
    ///
    /// # Errors
    /// Why it was refused ([`TokenError`]).
    pub async fn verify(&self, token: &str) -> Result<Arc<Verified>, TokenError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.cached(&digest) {
            return Ok(hit);
        }
        let (index, verified, kid_generation, cap) = if looks_like_jwt(token) {
            let (i, v, g) = self.validate(token).await?;
            (i, v, g, self.token_cache)
        } else {
            self.introspect(token, &digest).await?
        };
        let verified = Arc::new(verified);
        let left = verified.expires_at.saturating_sub(now_unix());
        let until = Instant::now() + Duration::from_secs(left).min(cap);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                let now = Instant::now();
                cache.retain(|_, c| c.until > now);
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(
                digest,
                Cached {
                    verified: Arc::clone(&verified),
                    until,
                    generation: kid_generation,
                    issuer: index,
                },
            );
        }
        Ok(verified)
    }

    fn cached(&self, digest: &[u8; 32]) -> Option<Arc<Verified>> {
        let mut cache = self.cache.lock().ok()?;
        let hit = cache.get(digest)?;
        let fresh = hit.until > Instant::now()
            && self
                .issuers
                .get(hit.issuer)
                .is_some_and(|i| i.jwks.generation() == hit.generation);
        if fresh {
            let verified = Arc::clone(&hit.verified);
            // A stale key set is refetched in the background; this answer stands.
            if let Some(issuer) = self.issuers.get(hit.issuer) {
                issuer.jwks.refresh_if_old();
            }
            Some(verified)
        } else {
            cache.remove(digest);
            None
        }
    }

    async fn validate(&self, token: &str) -> Result<(usize, Verified, u64), TokenError> {
        if !looks_like_jwt(token) {
            return Err(TokenError::Malformed("not three base64url parts".into()));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        let iss = unverified_issuer(token)?;
        let (index, issuer) = self
            .issuers
            .iter()
            .enumerate()
            .find(|(_, i)| i.settings.issuer == iss)
            .ok_or_else(|| TokenError::Invalid(format!("the issuer {iss:?} is not trusted")))?;
        let s = &issuer.settings;
        if !s.algorithms.contains(&header.alg) {
            return Err(TokenError::Invalid(format!(
                "the algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let (key, generation) = issuer.jwks.key(header.kid.as_deref(), header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&s.issuer]);
        validation.set_audience(&[&s.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = s.leeway.as_secs();
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let claims = data.claims;
        if let Some(iat) = claims.get("iat").and_then(Value::as_u64)
            && iat > now_unix() + s.leeway.as_secs()
        {
            return Err(TokenError::Invalid("issued in the future (iat)".into()));
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| TokenError::Invalid("no subject (sub)".into()))?
            .to_owned();
        let expires_at = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        let client_id = ["client_id", "azp", "cid"]
            .iter()
            .find_map(|c| claims.get(*c).and_then(Value::as_str))
            .map(str::to_owned);
        let granted = granted_values(&claims, &s.scope_claims);
        let patterns = patterns_of(s, &granted);
        Ok((
            index,
            Verified {
                issuer_name: s.name.clone(),
                issuer: s.issuer.clone(),
                subject,
                client_id,
                granted,
                patterns,
                expires_at,
                claims,
            },
            generation,
        ))
    }
}

impl Identity {
    /// Ask the issuers that introspect whether the opaque `token` is active (RFC
    /// 7662); the first that knows it wins.
    async fn introspect(
        &self,
        token: &str,
        digest: &[u8; 32],
    ) -> Result<(usize, Verified, u64, Duration), TokenError> {
        if let Ok(refused) = self.refused.lock()
            && refused
                .get(digest)
                .is_some_and(|until| *until > Instant::now())
        {
            return Err(TokenError::Invalid("the token is not active".into()));
        }
        let _permit = self
            .introspecting
            .try_acquire()
            .map_err(|_| TokenError::Unavailable("too many token introspections at once".into()))?;
        let mut last = TokenError::Malformed("not a JWT, and no issuer introspects tokens".into());
        for (index, issuer) in self.issuers.iter().enumerate() {
            let Some(intro) = &issuer.settings.introspection else {
                continue;
            };
            match self.introspect_at(issuer, intro, token).await {
                Ok(verified) => {
                    return Ok((index, verified, issuer.jwks.generation(), intro.cache));
                }
                Err(TokenError::Invalid(why)) => {
                    if let Ok(mut refused) = self.refused.lock() {
                        let now = Instant::now();
                        if refused.len() >= CACHE_MAX {
                            refused.retain(|_, until| *until > now);
                            if refused.len() >= CACHE_MAX {
                                refused.clear();
                            }
                        }
                        refused.insert(*digest, now + intro.cache);
                    }
                    last = TokenError::Invalid(why);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn introspect_at(
        &self,
        issuer: &Issuer,
        intro: &IntrospectionSettings,
        token: &str,
    ) -> Result<Verified, TokenError> {
        let s = &issuer.settings;
        let endpoint = match &intro.endpoint {
            Some(e) => e.clone(),
            None => issuer
                .jwks
                .metadata("introspection_endpoint")
                .await
                .map_err(TokenError::Unavailable)?,
        };
        let resp = issuer
            .jwks
            .client()
            .post(&endpoint)
            .basic_auth(&intro.client_id, Some(&intro.client_secret))
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| TokenError::Unavailable(format!("{endpoint}: {e}")))?;
        if !resp.status().is_success() {
            return Err(TokenError::Unavailable(format!(
                "{endpoint}: HTTP {}",
                resp.status()
            )));
        }
        let mut claims: Map<String, Value> = resp
            .json()
            .await
            .map_err(|e| TokenError::Unavailable(format!("{endpoint}: {e}")))?;
        if claims.remove("active") != Some(Value::Bool(true)) {
            return Err(TokenError::Invalid("the token is not active".into()));
        }
        if let Some(iss) = claims.get("iss").and_then(Value::as_str)
            && iss.trim_end_matches('/') != s.issuer.trim_end_matches('/')
        {
            return Err(TokenError::Invalid(format!("issued by {iss:?}")));
        }
        let audience_ok = match claims.get("aud") {
            None => true,
            Some(Value::String(a)) => *a == s.audience,
            Some(Value::Array(all)) => all.iter().any(|a| a.as_str() == Some(&s.audience)),
            Some(_) => false,
        };
        if !audience_ok {
            return Err(TokenError::Invalid(
                "the token is for another audience".into(),
            ));
        }
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX);
        if expires_at <= now_unix() {
            return Err(TokenError::Invalid("the token has expired".into()));
        }
        let client_id = claims
            .get("client_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        // A client-credentials token may have no `sub`: the client is the subject.
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| client_id.clone())
            .ok_or_else(|| TokenError::Invalid("no subject (sub or client_id)".into()))?;
        let granted = granted_values(&claims, &s.scope_claims);
        let patterns = patterns_of(s, &granted);
        Ok(Verified {
            issuer_name: s.name.clone(),
            issuer: s.issuer.clone(),
            subject,
            client_id,
            granted,
            patterns,
            expires_at,
            claims,
        })
    }
}

/// The `iss` of a token not yet checked (to choose whose keys check it).
fn unverified_issuer(token: &str) -> Result<String, TokenError> {
    use base64::Engine as _;
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| TokenError::Malformed("no payload".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| TokenError::Malformed(format!("payload: {e}")))?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes)
        .map_err(|e| TokenError::Malformed(format!("claims: {e}")))?;
    claims
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| TokenError::Invalid("no issuer (iss)".into()))
}

/// The tool patterns that `granted` values map to under the issuer's `grants`.
fn patterns_of(s: &IssuerSettings, granted: &[String]) -> Vec<String> {
    let mut patterns: Vec<String> = granted
        .iter()
        .filter_map(|g| s.grants.get(g))
        .flatten()
        .cloned()
        .collect();
    patterns.sort();
    patterns.dedup();
    patterns
}

/// The values of the scope claims: space-separated strings or arrays of strings.
fn granted_values(claims: &Map<String, Value>, names: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for name in names {
        match claims.get(name) {
            Some(Value::String(s)) => out.extend(s.split_whitespace().map(str::to_owned)),
            Some(Value::Array(items)) => {
                out.extend(items.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_three_base64url_parts_look_like_a_jwt() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(!looks_like_jwt("tg_0123456789abcdef"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a..c"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a.b=.c"));
    }

    #[test]
    fn symmetric_algorithms_and_none_are_refused() {
        assert_eq!(parse_algorithm("RS256").unwrap(), Algorithm::RS256);
        assert_eq!(parse_algorithm("EdDSA").unwrap(), Algorithm::EdDSA);
        assert!(parse_algorithm("HS256").is_err());
        assert!(parse_algorithm("none").is_err());
    }

    #[test]
    fn scope_claims_are_strings_or_arrays() {
        let claims: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "scope": "tools:read  tools:write",
            "groups": ["eng", 7, "ops"],
            "roles": {"not": "a list"}
        }))
        .unwrap();
        let names = ["scope", "groups", "roles"].map(str::to_owned);
        assert_eq!(
            granted_values(&claims, &names),
            ["eng", "ops", "tools:read", "tools:write"]
        );
    }
}
