//! [`HttpTool`]: one configured upstream call.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, redirect};
use serde_json::{Map, Value};
use tokio::time::Instant;
use toolgate_config::{ParamConfig, ToolConfig};
use toolgate_core::{CallContext, ErrorKind, FieldError, Tool, ToolError, ToolOutput};

use crate::guard::{Blocked, Guard, GuardedResolver};
use crate::template::{UrlTemplate, body_params, fill_body};

/// Response bodies larger than this are refused unless configured otherwise.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Redirects followed at most.
const MAX_REDIRECTS: usize = 3;

/// What a call's URL and body are made of.
enum Shape {
    /// A `[[tools]]` entry of kind `http`: URL and body templates.
    Template {
        url: UrlTemplate,
        body: Option<Value>,
    },
    /// An operation imported from an OpenAPI document.
    Operation {
        /// The API's base URL, without a trailing `/`.
        base: String,
        /// `scheme://host:port` of `base`.
        origin: String,
        op: crate::openapi::Operation,
    },
}

/// A configured call of an HTTP upstream.
pub struct HttpTool {
    client: reqwest::Client,
    method: Method,
    shape: Shape,
    headers: HeaderMap,
    /// Headers from the caller's claims: (header, claim).
    caller_headers: Vec<(HeaderName, String)>,
    /// RFC 8693 token exchange for the upstream's own token.
    exchange: Option<crate::exchange::Exchange>,
    pointer: Option<String>,
    max_bytes: usize,
    guard: Arc<Guard>,
}

impl std::fmt::Debug for HttpTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTool")
            .field("method", &self.method)
            .field("origin", &self.origin())
            .finish_non_exhaustive()
    }
}

fn check_params(
    params: &[ParamConfig],
    url: &UrlTemplate,
    body: Option<&Value>,
) -> Result<(), String> {
    let declared: BTreeSet<String> = params.iter().map(|p| p.name.get_ref().clone()).collect();
    let mut used = url.params();
    if let Some(b) = body {
        used.extend(body_params(b));
    }
    if let Some(missing) = used.difference(&declared).next() {
        return Err(format!("{{{missing}}} is used but not declared in params"));
    }
    if let Some(unused) = declared.difference(&used).next() {
        return Err(format!("parameter {unused:?} is declared but used nowhere"));
    }
    for name in url.path_params() {
        if params
            .iter()
            .any(|p| *p.name.get_ref() == name && !p.is_required())
        {
            return Err(format!(
                "{{{name}}} stands in the path, so parameter {name:?} must be required"
            ));
        }
    }
    Ok(())
}

fn headers_of(
    configured: &std::collections::BTreeMap<String, toml::Spanned<toolgate_config::env::EnvString>>,
) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (name, value) in configured {
        let v = value.get_ref().as_str();
        if v.contains(['\r', '\n']) {
            return Err(format!(
                "header {name:?}: CR and LF are not allowed in a value"
            ));
        }
        let hn = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("{name:?} is not a header name"))?;
        let mut hv =
            HeaderValue::from_str(v).map_err(|_| format!("header {name:?}: not a valid value"))?;
        hv.set_sensitive(true);
        headers.insert(hn, hv);
    }
    Ok(headers)
}

impl HttpTool {
    /// Build the tool of `t` (kind `http`).
    ///
    /// # Errors
    /// A client-readable message: the template, a header, the params or the
    /// allow-list is wrong.
    pub fn new(t: &ToolConfig) -> Result<Self, String> {
        let url = UrlTemplate::parse(
            t.url
                .as_ref()
                .map(|u| u.get_ref().as_str())
                .unwrap_or_default(),
        )?;
        let method_text = t.method.as_ref().map_or("GET", |m| m.get_ref().as_str());
        let method = Method::from_bytes(method_text.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("{method_text:?} is not an HTTP method"))?;
        check_params(&t.params, &url, t.body.as_ref())?;
        let guard = Arc::new(Guard::new(&t.allow_private)?);
        Ok(Self {
            client: client_for(&guard)?,
            method,
            shape: Shape::Template {
                url,
                body: t.body.clone(),
            },
            headers: headers_of(&t.headers)?,
            caller_headers: t
                .caller_headers
                .iter()
                .map(|(name, claim)| {
                    HeaderName::from_bytes(name.as_bytes())
                        .map(|h| (h, claim.clone()))
                        .map_err(|_| format!("caller_headers: {name:?} is not a header name"))
                })
                .collect::<Result<_, _>>()?,
            exchange: crate::exchange::Exchange::of(t)?,
            pointer: t.response_pointer.clone(),
            max_bytes: t.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
            guard,
        })
    }

    /// The tool of an operation imported from the OpenAPI source `s`, called at
    /// `base_url`.
    ///
    /// # Errors
    /// A client-readable message: the base URL, a header or the allow-list is wrong.
    pub fn for_operation(
        s: &toolgate_config::SourceConfig,
        base_url: &str,
        op: crate::openapi::Operation,
    ) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(base_url)
            .map_err(|e| format!("base URL {base_url:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("base URL {base_url:?} is not http(s)"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(format!(
                "base URL {base_url:?} may not have a query or a fragment"
            ));
        }
        let method = Method::from_bytes(op.method.as_bytes())
            .map_err(|_| format!("{:?} is not an HTTP method", op.method))?;
        let guard = Arc::new(Guard::new(&s.allow_private)?);
        Ok(Self {
            client: client_for(&guard)?,
            method,
            shape: Shape::Operation {
                base: base_url.trim_end_matches('/').to_owned(),
                origin: parsed.origin().ascii_serialization(),
                op,
            },
            headers: headers_of(&s.headers)?,
            caller_headers: Vec::new(),
            exchange: None,
            pointer: None,
            max_bytes: s.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
            guard,
        })
    }
}

/// The HTTP client of a tool: DNS answers pass the SSRF guard, and redirects stay
/// on the origin and off blocked addresses.
fn client_for(guard: &Arc<Guard>) -> Result<reqwest::Client, String> {
    let policy_guard = Arc::clone(guard);
    let redirects = redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(Blocked(format!("more than {MAX_REDIRECTS} redirects")));
        }
        if !matches!(attempt.url().scheme(), "http" | "https") {
            return attempt.error(Blocked("a redirect left http(s)".to_owned()));
        }
        if let Some(refusal) = redirect_refusal(attempt.previous(), attempt.url()) {
            return attempt.error(Blocked(refusal));
        }
        let literal = attempt
            .url()
            .host_str()
            .and_then(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().ok());
        match literal.map(|ip| policy_guard.check(ip)) {
            Some(Err(b)) => attempt.error(b),
            _ => attempt.follow(),
        }
    });
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver::new(Arc::clone(guard))))
        .redirect(redirects)
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

impl HttpTool {
    /// `scheme://host:port` of the upstream (the key of its circuit breaker).
    #[must_use]
    pub fn origin(&self) -> &str {
        match &self.shape {
            Shape::Template { url, .. } => url.origin(),
            Shape::Operation { origin, .. } => origin,
        }
    }

    /// The kind's default description.
    #[must_use]
    pub fn description() -> &'static str {
        "Call an HTTP API declared by the operator, with typed parameters."
    }

    fn request(
        &self,
        args: &Map<String, Value>,
        ctx: &CallContext,
    ) -> Result<reqwest::RequestBuilder, ToolError> {
        let dot_segment = |name: String| {
            ToolError::invalid_arguments(vec![FieldError {
                pointer: format!("/{}", name.replace('~', "~0").replace('/', "~1")),
                message: "`.` and `..` are not allowed as a whole path segment".to_owned(),
            }])
        };
        let filled = match &self.shape {
            Shape::Template { url, .. } => url.fill(args).map_err(dot_segment)?,
            Shape::Operation { base, op, .. } => {
                crate::openapi::fill_url(base, op, args).map_err(dot_segment)?
            }
        };
        let url = reqwest::Url::parse(&filled)
            .map_err(|e| ToolError::tool(format!("the filled URL is invalid: {e}")))?;
        if let Some(ip) = url
            .host_str()
            .and_then(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().ok())
        {
            self.guard
                .check(ip)
                .map_err(|b| ToolError::tool(b.to_string()))?;
        }
        let remaining = ctx.deadline.saturating_duration_since(Instant::now());
        let mut req = self
            .client
            .request(self.method.clone(), url)
            .headers(self.headers.clone())
            // A little past the deadline: the registry's own timer decides, and tells an
            // attempt's timeout (retryable) from the call's.
            .timeout(remaining + Duration::from_millis(100));
        if let Some(tp) = traceparent(ctx) {
            req = req.header("traceparent", tp);
        }
        for (name, value) in self.caller_values(ctx)? {
            req = req.header(name, value);
        }
        match &self.shape {
            Shape::Template {
                body: Some(body), ..
            } => req = req.json(&fill_body(body, args)),
            Shape::Template { body: None, .. } => {}
            Shape::Operation { op, .. } => {
                for (name, value) in crate::openapi::header_values(op, args, &self.headers)? {
                    req = req.header(name, value);
                }
                if let Some(body) = args.get("body").filter(|_| op.body.is_some()) {
                    req = req.json(body);
                }
            }
        }
        Ok(req)
    }

    /// The `caller_headers` values from the caller's claims (strings as they are,
    /// other JSON as its text).
    fn caller_values(
        &self,
        ctx: &CallContext,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, ToolError> {
        let claims = ctx.caller.as_ref().and_then(|c| c.claims.as_ref());
        self.caller_headers
            .iter()
            .map(|(name, claim)| {
                let refused = |why: &str| {
                    ToolError::new(
                        toolgate_core::ErrorKind::Forbidden,
                        format!("this tool sends the caller's claim {claim:?} as {name}; {why}"),
                    )
                };
                let value = claims.and_then(|c| c.get(claim)).ok_or_else(|| {
                    refused(if claims.is_some() {
                        "the token has none"
                    } else {
                        "an API key has no claims"
                    })
                })?;
                let text = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let value = HeaderValue::from_str(&text)
                    .map_err(|_| refused("its value cannot be a header value"))?;
                Ok((name.clone(), value))
            })
            .collect()
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, ToolError> {
        let mut resp = req.send().await.map_err(classify)?;
        let status = resp.status();
        let media = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            });
        let url = resp.url().to_string();
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            if bytes.len() + chunk.len() > self.max_bytes {
                return Err(ToolError::tool(format!(
                    "the upstream's response is larger than {} bytes",
                    self.max_bytes
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(ToolError::new(
                ErrorKind::UpstreamError,
                format!("the upstream answered {status}"),
            ));
        }
        if !status.is_success() {
            // The upstream's answer, not the tool's fault: 502, but permanent (trying
            // again cannot change it, and it says nothing about the upstream's health).
            return Err(ToolError::new(
                ErrorKind::UpstreamError,
                format!("the upstream refused the request: {status}"),
            )
            .permanent());
        }
        if self.pointer.is_none()
            && let Some(output) = media
                .as_deref()
                .and_then(|m| binary_output(m, &url, &bytes))
        {
            return Ok(output);
        }
        let body: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) if self.pointer.is_none() => {
                Value::String(String::from_utf8_lossy(&bytes).into_owned())
            }
            Err(_) => return Err(ToolError::tool("the upstream's response is not JSON")),
        };
        match &self.pointer {
            None => Ok(body),
            Some(p) => body.pointer(p).cloned().ok_or_else(|| {
                ToolError::tool(format!("the upstream's response has nothing at {p}"))
            }),
        }
    }
}

/// The output of a binary answer, as content blocks: an image or audio block for
/// `image/*` and `audio/*`, an embedded resource (named by the URL) for other
/// media types that are neither JSON nor text. `None` for JSON and text, which are
/// the output as they are.
fn binary_output(media: &str, url: &str, bytes: &[u8]) -> Option<Value> {
    use toolgate_core::content;
    let textual = media.starts_with("text/")
        || media.ends_with("json")
        || media.ends_with("+xml")
        || matches!(
            media,
            "application/xml" | "application/x-www-form-urlencoded" | "application/javascript"
        );
    let block = if media.starts_with("image/") {
        content::image(bytes, media)
    } else if media.starts_with("audio/") {
        content::audio(bytes, media)
    } else if textual || media.is_empty() {
        return None;
    } else {
        content::resource_blob(url, media, bytes)
    };
    Some(content::output(vec![block]))
}

/// Why a redirect from the chain `previous` to `next` is refused, if it is: the
/// configured headers (often secrets) are for the upstream's origin only, so a
/// redirect to another origin is never followed, and neither is one from https to
/// http.
fn redirect_refusal(previous: &[reqwest::Url], next: &reqwest::Url) -> Option<String> {
    let first = previous.first()?;
    let last = previous.last().unwrap_or(first);
    if last.scheme() == "https" && next.scheme() == "http" {
        return Some("a redirect from https to http is refused".to_owned());
    }
    // The one change of origin allowed: the same host upgrading http to https.
    let upgrade = first.scheme() == "http"
        && next.scheme() == "https"
        && first.host_str() == next.host_str()
        && first.port().is_none()
        && next.port().is_none();
    if first.origin() != next.origin() && !upgrade {
        return Some(format!(
            "a redirect to another origin ({}) is refused: the tool's headers are for {} only",
            next.origin().ascii_serialization(),
            first.origin().ascii_serialization()
        ));
    }
    None
}

/// The `traceparent` for the upstream: the current span's when tracing is on,
/// otherwise one built from the request's trace id.
fn traceparent(ctx: &CallContext) -> Option<String> {
    toolgate_telemetry::otel::upstream_traceparent(
        &tracing::Span::current(),
        ctx.trace_id.as_deref(),
    )
}

/// Upstream failures that may pass (connection, timeout) are `upstream_error`; a
/// refusal of the SSRF guard or the redirect policy is the tool's.
fn classify(e: reqwest::Error) -> ToolError {
    let mut source: Option<&dyn std::error::Error> = Some(&e);
    while let Some(s) = source {
        if let Some(b) = s.downcast_ref::<Blocked>() {
            return ToolError::tool(b.to_string());
        }
        source = s.source();
    }
    if e.is_timeout() {
        return ToolError::new(
            ErrorKind::Timeout,
            "the upstream did not answer within the deadline",
        );
    }
    tracing::warn!(error = ?e, "upstream request failed");
    ToolError::new(
        ErrorKind::UpstreamError,
        "the upstream could not be reached",
    )
}

#[async_trait]
impl Tool for HttpTool {
    async fn call(&self, arguments: Value, ctx: CallContext) -> Result<ToolOutput, ToolError> {
        let args = arguments.as_object().cloned().unwrap_or_default();
        let mut req = self.request(&args, &ctx)?;
        if let Some(exchange) = &self.exchange {
            let token = tokio::select! {
                t = exchange.token_for(&ctx) => t?,
                () = ctx.cancel.cancelled() => return Err(ToolError::cancelled("the call was cancelled")),
            };
            req = req.bearer_auth(token);
        }
        tokio::select! {
            r = self.send(req) => r,
            () = ctx.cancel.cancelled() => Err(ToolError::cancelled("the call was cancelled")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    #[test]
    fn redirects_stay_on_the_origin() {
        let from = [url("https://api.example.com/a")];
        assert!(redirect_refusal(&from, &url("https://api.example.com/b")).is_none());
        let down = redirect_refusal(&from, &url("http://api.example.com/b")).unwrap();
        assert!(down.contains("https to http"), "{down}");
        let away = redirect_refusal(&from, &url("https://evil.example.net/b")).unwrap();
        assert!(away.contains("another origin"), "{away}");
        let port = redirect_refusal(&from, &url("https://api.example.com:8443/b")).unwrap();
        assert!(port.contains("another origin"), "{port}");
        // The same host moving up to https is the one change allowed.
        let plain = [url("http://api.example.com/a")];
        assert!(redirect_refusal(&plain, &url("https://api.example.com/a")).is_none());
        // A chain is judged from its first URL, and from its last for the scheme.
        let chain = [
            url("http://api.example.com/a"),
            url("https://api.example.com/b"),
        ];
        assert!(redirect_refusal(&chain, &url("http://api.example.com/c")).is_some());
    }
}
