//! [`Exchange`]: RFC 8693 token exchange, so that an upstream gets a token of its
//! own for the caller instead of the caller's token (`token_exchange` of an `http`
//! tool).
//!
//! The caller's access token is the subject token; the issuer's token endpoint
//! answers with a token for the configured `audience` (or `resource`), whose
//! subject is the caller's. It is cached per caller until shortly before it
//! expires, so a subject's calls cost one exchange per token lifetime.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use toolgate_config::ToolConfig;
use toolgate_core::{CallContext, ErrorKind, ToolError};

/// Callers whose exchanged tokens are kept at once; past it the cache starts over.
const MAX_CACHED: usize = 65_536;
/// An exchanged token is used until this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// One tool's exchange settings and cache.
pub struct Exchange {
    endpoint: String,
    client_id: String,
    secret: String,
    audience: Option<String>,
    resource: Option<String>,
    scope: Option<String>,
    client: reqwest::Client,
    cache: Mutex<HashMap<String, (String, Instant)>>,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("endpoint", &self.endpoint)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Exchange {
    /// The tool's `token_exchange`, if it has one.
    ///
    /// # Errors
    /// The secret's variable is not set, or the HTTP client cannot be built.
    pub fn of(t: &ToolConfig) -> Result<Option<Self>, String> {
        let Some(cfg) = &t.token_exchange else {
            return Ok(None);
        };
        let c = cfg.get_ref();
        let secret = std::env::var(&c.client_secret_env).map_err(|_| {
            format!(
                "token_exchange: the variable {} (its client secret) is not set",
                c.client_secret_env
            )
        })?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("token_exchange: HTTP client: {e}"))?;
        Ok(Some(Self {
            endpoint: c.token_endpoint.clone(),
            client_id: c.client_id.clone(),
            secret,
            audience: c.audience.clone(),
            resource: c.resource.clone(),
            scope: c.scope.clone(),
            client,
            cache: Mutex::new(HashMap::new()),
        }))
    }

    /// A token of the upstream's own for the caller of `ctx`.
    ///
    /// # Errors
    /// `forbidden` for a caller without an access token (an API key), or one the
    /// issuer will not exchange; `upstream_error` when the issuer cannot be reached.
    pub async fn token_for(&self, ctx: &CallContext) -> Result<String, ToolError> {
        let caller = ctx.caller.as_ref();
        let Some(subject_token) = caller.and_then(|c| c.token.as_ref()) else {
            return Err(ToolError::new(
                ErrorKind::Forbidden,
                "this tool calls its upstream as the caller (token exchange) and needs an access token; an API key has none",
            ));
        };
        let name = caller.map(|c| c.name.clone()).unwrap_or_default();
        if let Ok(cache) = self.cache.lock()
            && let Some((token, until)) = cache.get(&name)
            && *until > Instant::now()
        {
            return Ok(token.clone());
        }
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", subject_token.as_ref()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
        ];
        for (field, value) in [
            ("audience", &self.audience),
            ("resource", &self.resource),
            ("scope", &self.scope),
        ] {
            if let Some(v) = value {
                form.push((field, v.as_str()));
            }
        }
        let resp = self
            .client
            .post(&self.endpoint)
            .basic_auth(&self.client_id, Some(&self.secret))
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                ToolError::new(ErrorKind::UpstreamError, format!("token exchange: {e}"))
            })?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let error = body["error"].as_str().unwrap_or("error");
            // The issuer refuses this caller: not a fault of the upstream.
            let kind = if status.is_client_error() {
                ErrorKind::Forbidden
            } else {
                ErrorKind::UpstreamError
            };
            return Err(ToolError::new(
                kind,
                format!("the token exchange was refused: {status} {error}"),
            ));
        }
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| {
                ToolError::new(
                    ErrorKind::UpstreamError,
                    "the token exchange answered no access_token",
                )
            })?
            .to_owned();
        let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(60));
        let until = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(name, (token.clone(), until));
        }
        Ok(token)
    }
}
