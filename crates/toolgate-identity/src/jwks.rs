//! [`Jwks`]: an issuer's signing keys, fetched from its discovery document's
//! `jwks_uri` and cached.
//!
//! Discovery is two JSON fields (`issuer`, which must be the configured one, and
//! `jwks_uri`) from `/.well-known/openid-configuration` or RFC 8414's
//! `/.well-known/oauth-authorization-server`: fetched here with the server's own
//! HTTP client rather than through an OpenID Connect relying-party crate, which
//! would bring a second HTTP stack and flows this resource server never runs.
//!
//! Fetches are bounded: one at a time, at most one per `jwks_min_refresh` (a token
//! with an unknown `kid` waits for that one fetch, or gets "unknown key" at once),
//! each within `fetch_timeout` and 1 MiB.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::{IssuerSettings, TokenError};

/// The largest discovery document or key set read.
const MAX_DOCUMENT: usize = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
}

fn family_of(alg: Algorithm) -> Option<Family> {
    Some(match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => Family::Rsa,
        Algorithm::ES256 => Family::P256,
        Algorithm::ES384 => Family::P384,
        Algorithm::EdDSA => Family::Ed25519,
        _ => return None,
    })
}

struct Key {
    kid: Option<String>,
    family: Family,
    /// The `alg` the JWK pins, if it does.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

struct KeySet {
    keys: Vec<Key>,
    /// Bumped whenever the set changes: tokens cached under an older set are checked
    /// again.
    generation: u64,
    fetched: Option<Instant>,
}

impl KeySet {
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&Key> {
        let family = family_of(alg)?;
        let mut usable = self
            .keys
            .iter()
            .filter(|k| k.family == family && k.alg.is_none_or(|a| a == alg));
        match kid {
            Some(kid) => usable.find(|k| k.kid.as_deref() == Some(kid)),
            // Without a `kid`, only an unambiguous key will do.
            None => {
                let first = usable.next()?;
                usable.next().is_none().then_some(first)
            }
        }
    }
}

struct Inner {
    issuer: String,
    configured_uri: Option<String>,
    min_refresh: Duration,
    max_age: Duration,
    client: reqwest::Client,
    set: ArcSwap<KeySet>,
    /// Held while fetching; the time of the last attempt (successful or not).
    fetching: tokio::sync::Mutex<Option<Instant>>,
    /// The discovery document, once fetched.
    discovered: std::sync::Mutex<Option<Value>>,
}

/// An issuer's cached key set.
#[derive(Clone)]
pub struct Jwks {
    inner: Arc<Inner>,
}

impl Jwks {
    /// Empty until the first token needs it.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(settings: &IssuerSettings) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(settings.fetch_timeout)
            .connect_timeout(settings.fetch_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| format!("issuer {}: HTTP client: {e}", settings.name))?;
        Ok(Self {
            inner: Arc::new(Inner {
                issuer: settings.issuer.trim_end_matches('/').to_owned(),
                configured_uri: settings.jwks_uri.clone(),
                min_refresh: settings.jwks_min_refresh,
                max_age: settings.jwks_max_age,
                client,
                set: ArcSwap::from_pointee(KeySet {
                    keys: Vec::new(),
                    generation: 0,
                    fetched: None,
                }),
                fetching: tokio::sync::Mutex::new(None),
                discovered: std::sync::Mutex::new(None),
            }),
        })
    }

    /// The current generation of the set.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.inner.set.load().generation
    }

    /// The key for `kid` and `alg`, fetching the set again when it is not there
    /// (at most once per `jwks_min_refresh`); and the set's generation.
    pub(crate) async fn key(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<(DecodingKey, u64), TokenError> {
        {
            let set = self.inner.set.load();
            if let Some(k) = set.find(kid, alg) {
                let found = (k.key.clone(), set.generation);
                if set
                    .fetched
                    .is_some_and(|t| t.elapsed() > self.inner.max_age)
                {
                    self.refresh_in_background();
                }
                return Ok(found);
            }
        }
        let error = self.refresh().await.err();
        let set = self.inner.set.load();
        match set.find(kid, alg) {
            Some(k) => Ok((k.key.clone(), set.generation)),
            // Never fetched: nobody can tell (also while the next attempt waits out
            // `jwks_min_refresh`).
            None if set.fetched.is_none() => {
                Err(TokenError::Unavailable(error.unwrap_or_else(|| {
                    "the issuer's keys have not been fetched yet".to_owned()
                })))
            }
            None => Err(TokenError::Invalid(format!(
                "no key of the issuer matches kid {kid:?} and {alg:?}"
            ))),
        }
    }

    /// Refetch in the background when the set is older than `jwks_max_age`.
    pub(crate) fn refresh_if_old(&self) {
        if self
            .inner
            .set
            .load()
            .fetched
            .is_some_and(|t| t.elapsed() > self.inner.max_age)
        {
            self.refresh_in_background();
        }
    }

    fn refresh_in_background(&self) {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let me = self.clone();
            handle.spawn(async move {
                let _ = me.refresh().await;
            });
        }
    }

    /// Fetch the set unless another fetch runs or one was tried within
    /// `jwks_min_refresh`. `Err` says why the fetch failed (the old set stays).
    async fn refresh(&self) -> Result<(), String> {
        let Ok(mut last) = self.inner.fetching.try_lock() else {
            // One fetch at a time: wait for the one running, then use its result.
            let _ = self.inner.fetching.lock().await;
            return Ok(());
        };
        if last.is_some_and(|t| t.elapsed() < self.inner.min_refresh) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let result = self.fetch().await;
        match result {
            Ok(keys) => {
                let current = self.inner.set.load();
                let changed = !same_keys(&current.keys, &keys);
                let generation = current.generation + u64::from(changed);
                if changed {
                    tracing::info!(issuer = %self.inner.issuer, keys = keys.len(), "the issuer's signing keys changed");
                }
                self.inner.set.store(Arc::new(KeySet {
                    keys,
                    generation,
                    fetched: Some(Instant::now()),
                }));
                Ok(())
            }
            Err(e) => {
                tracing::warn!(issuer = %self.inner.issuer, error = %e, "the issuer's signing keys cannot be fetched");
                Err(e)
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<Key>, String> {
        let uri = match &self.inner.configured_uri {
            Some(u) => u.clone(),
            None => self.discover().await?,
        };
        let doc = self.get_json(&uri).await?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{uri}: no `keys` array"))?;
        let mut out = Vec::new();
        for raw in keys {
            if let Some(key) = parse_key(raw) {
                out.push(key);
            }
        }
        Ok(out)
    }

    /// The `jwks_uri` of the discovery document.
    async fn discover(&self) -> Result<String, String> {
        self.metadata("jwks_uri").await
    }

    /// A URL field of the issuer's discovery document (fetched once, then kept):
    /// `jwks_uri`, `introspection_endpoint`, ...
    pub(crate) async fn metadata(&self, field: &str) -> Result<String, String> {
        let doc = self.document().await?;
        doc.get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "the discovery document of {} has no {field}",
                    self.inner.issuer
                )
            })
    }

    async fn document(&self) -> Result<Value, String> {
        if let Ok(found) = self.inner.discovered.lock()
            && let Some(doc) = found.as_ref()
        {
            return Ok(doc.clone());
        }
        let issuer = &self.inner.issuer;
        let oidc = format!("{issuer}/.well-known/openid-configuration");
        // RFC 8414 puts the well-known segment before the issuer's path.
        let rfc8414 = match issuer.split_once("://") {
            Some((scheme, rest)) => match rest.split_once('/') {
                Some((host, path)) => {
                    format!("{scheme}://{host}/.well-known/oauth-authorization-server/{path}")
                }
                None => format!("{issuer}/.well-known/oauth-authorization-server"),
            },
            None => return Err(format!("the issuer {issuer:?} is not a URL")),
        };
        let mut errors = Vec::new();
        for url in [oidc, rfc8414] {
            match self.get_json(&url).await {
                Ok(doc) => {
                    let named = doc
                        .get("issuer")
                        .and_then(Value::as_str)
                        .map(|s| s.trim_end_matches('/'));
                    if named != Some(issuer.as_str()) {
                        errors.push(format!("{url}: names the issuer {named:?}"));
                        continue;
                    }
                    if let Ok(mut found) = self.inner.discovered.lock() {
                        *found = Some(doc.clone());
                    }
                    return Ok(doc);
                }
                Err(e) => errors.push(e),
            }
        }
        Err(errors.join("; "))
    }

    /// The HTTP client (timeouts as configured).
    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.inner.client
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let mut resp = self
            .inner
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT {
                return Err(format!("{url}: larger than {MAX_DOCUMENT} bytes"));
            }
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
    }
}

/// A JWK usable for signatures, or `None` (logged): symmetric keys, encryption keys
/// and unknown key types are skipped.
fn parse_key(raw: &Value) -> Option<Key> {
    let kid = raw.get("kid").and_then(Value::as_str).map(str::to_owned);
    if raw
        .get("use")
        .and_then(Value::as_str)
        .is_some_and(|u| u != "sig")
    {
        return None;
    }
    let jwk: Jwk = match serde_json::from_value(raw.clone()) {
        Ok(j) => j,
        Err(e) => {
            tracing::debug!(?kid, error = %e, "a JWK of an unknown kind is skipped");
            return None;
        }
    };
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Family::Rsa,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Family::P256,
            EllipticCurve::P384 => Family::P384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => Family::Ed25519,
            _ => return None,
        },
        // A shared secret in a public key set: never a verification key here.
        AlgorithmParameters::OctetKey(_) => return None,
    };
    let alg = match raw.get("alg").and_then(Value::as_str) {
        Some(a) => match crate::parse_algorithm(a) {
            Ok(a) if family_of(a) == Some(family) => Some(a),
            _ => return None,
        },
        None => None,
    };
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(Key {
        kid,
        family,
        alg,
        key,
    })
}

fn same_keys(a: &[Key], b: &[Key]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.kid == y.kid && x.family == y.family && x.alg == y.alg)
}
