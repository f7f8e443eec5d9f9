//! Signed notifications: a job's completion webhook, and the approval hook.
//!
//! Each is a `POST` of JSON with `X-Toolgate-Event` (`job.finished`,
//! `approval.requested`), `X-Toolgate-Delivery` (unique per attempt) and
//! `X-Toolgate-Signature: t=UNIX,v1=HEX` (HMAC-SHA256 of `UNIX.BODY` under the
//! secret in `[jobs] webhook_secret_env`; see `toolgate_jobs::sign`). A delivery is
//! tried up to `[jobs] webhook_attempts` times, with exponential backoff and
//! jitter, until a 2xx. A job's completion webhook is stored with the job (its
//! next attempt's time and the attempts made), so a delivery being retried
//! survives a restart; the approval hook's are retried in memory. Destinations pass the same SSRF guard as `http` tools: the
//! client's resolver checks every address (private networks only when listed in
//! `webhook_allow_private`), IP literals are checked before sending, redirects are
//! not followed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use toolgate_config::jobs::JobsConfig;
use toolgate_core::ToolError;
use toolgate_jobs::Job;
use toolgate_tool_http::guard::{Guard, GuardedResolver};

/// One attempt's time limit.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The first backoff; it doubles per attempt, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The signed-notification sender.
pub struct Webhooks {
    client: Option<reqwest::Client>,
    guard: Arc<Guard>,
    secret: Option<Arc<[u8]>>,
    secret_env: Option<String>,
    attempts: u32,
    approval_url: Option<String>,
}

impl Webhooks {
    /// The sender of `[jobs]`.
    ///
    /// # Errors
    /// `webhook_secret_env` names an unset variable, or a network is malformed.
    pub fn new(cfg: &JobsConfig) -> Result<Self, String> {
        let guard = Arc::new(
            Guard::new(&cfg.webhook_allow_private).map_err(|e| format!("[jobs] webhook_{e}"))?,
        );
        let secret = match &cfg.webhook_secret_env {
            None => None,
            Some(var) => match std::env::var_os(var) {
                Some(v) if !v.is_empty() => Some(Arc::from(v.as_encoded_bytes())),
                _ => {
                    return Err(format!(
                        "[jobs] webhook_secret_env names ${var}, which is not set"
                    ));
                }
            },
        };
        if cfg.approval_webhook.is_some() && secret.is_none() {
            return Err(
                "[jobs] approval_webhook needs webhook_secret_env (every notification is signed)"
                    .into(),
            );
        }
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver::new(Arc::clone(&guard))))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(ATTEMPT_TIMEOUT)
            .user_agent("toolgate-webhook")
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        Ok(Self {
            client: Some(client),
            guard,
            secret,
            secret_env: cfg.webhook_secret_env.clone(),
            attempts: cfg.webhook_attempts.max(1),
            approval_url: cfg.approval_webhook.as_ref().map(|u| u.get_ref().clone()),
        })
    }

    /// A sender that sends nothing (its config was unusable; logged).
    #[must_use]
    pub fn disabled() -> Self {
        Self {
            client: None,
            guard: Arc::new(Guard::default()),
            secret: None,
            secret_env: None,
            attempts: 1,
            approval_url: None,
        }
    }

    /// Whether `url` may be a job's webhook: http(s), signed (a secret is
    /// configured), and to an address the guard allows now.
    ///
    /// # Errors
    /// `invalid_arguments` saying why not.
    pub async fn check_url(&self, url: &str) -> Result<(), ToolError> {
        let refuse = |why: String| {
            let mut e = ToolError::invalid_arguments(vec![toolgate_core::FieldError {
                pointer: "".into(),
                message: why.clone(),
            }]);
            e.message = format!("X-Job-Webhook: {why}");
            e
        };
        if self.secret.is_none() {
            return Err(refuse(
                "webhooks are off: the server has no [jobs] webhook_secret_env to sign them with"
                    .into(),
            ));
        }
        let parsed =
            reqwest::Url::parse(url).map_err(|e| refuse(format!("{url:?} is not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(refuse("the webhook must be an http(s) URL".into()));
        }
        let port = parsed.port_or_known_default().unwrap_or(443);
        let ips: Vec<std::net::IpAddr> = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => vec![ip.into()],
            Some(url::Host::Ipv6(ip)) => vec![ip.into()],
            Some(url::Host::Domain(d)) if d == "localhost" || d.ends_with(".localhost") => {
                vec![std::net::Ipv4Addr::LOCALHOST.into()]
            }
            Some(url::Host::Domain(d)) => tokio::net::lookup_host((d, port))
                .await
                .map_err(|e| refuse(format!("{d} does not resolve ({e})")))?
                .map(|a| a.ip())
                .collect(),
            None => return Err(refuse("the webhook URL has no host".into())),
        };
        for ip in ips {
            self.guard.check(ip).map_err(|b| {
                refuse(b.0.replace("allow_private", "[jobs] webhook_allow_private"))
            })?;
        }
        Ok(())
    }

    /// Announce a new approval request to the approval hook, if there is one.
    pub fn approval_requested(&self, job: &Job) {
        if let Some(url) = &self.approval_url {
            let body = serde_json::json!({"event": "approval.requested", "approval": super::view::approval_json(job)});
            self.send(url.clone(), "approval.requested", job.id.clone(), body);
        }
    }

    fn send(&self, url: String, event: &'static str, id: String, body: Value) {
        let (Some(client), Some(secret)) = (self.client.clone(), self.secret.clone()) else {
            tracing::warn!(event, job = %id, env = ?self.secret_env, "a webhook was not sent: no secret to sign it with");
            return;
        };
        let attempts = self.attempts;
        let guard = Arc::clone(&self.guard);
        tokio::spawn(async move {
            deliver(&client, &guard, &secret, &url, event, &id, &body, attempts).await;
        });
    }
}

/// Send one notification until a 2xx or the attempts run out (the approval hook:
/// kept in memory).
#[allow(clippy::too_many_arguments)]
async fn deliver(
    client: &reqwest::Client,
    guard: &Guard,
    secret: &[u8],
    url: &str,
    event: &'static str,
    id: &str,
    body: &Value,
    attempts: u32,
) {
    let bytes = body.to_string().into_bytes();
    for attempt in 1..=attempts {
        match attempt_once(client, guard, secret, url, event, id, attempt, &bytes).await {
            Attempt::Delivered => return,
            Attempt::Refused => return,
            Attempt::Failed => {}
        }
        if attempt < attempts {
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
    count(event, "failed");
    tracing::error!(event, job = %id, attempts, "webhook given up after every attempt");
}

/// How one delivery attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// A 2xx.
    Delivered,
    /// Another answer, or none: try again later.
    Failed,
    /// The guard refused the destination: never try again.
    Refused,
}

/// The wait after failed attempt `attempt` (1-based): doubling from 0.5 s, at most
/// 60 s, jittered to between half and all of it.
fn backoff(attempt: u32) -> Duration {
    let cap = FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(MAX_BACKOFF);
    let ms = u64::try_from(cap.as_millis()).unwrap_or(60_000);
    Duration::from_millis(fastrand::u64(ms / 2..=ms))
}

/// One signed POST of `bytes`.
#[allow(clippy::too_many_arguments)]
async fn attempt_once(
    client: &reqwest::Client,
    guard: &Guard,
    secret: &[u8],
    url: &str,
    event: &'static str,
    id: &str,
    attempt: u32,
    bytes: &[u8],
) -> Attempt {
    // IP literals skip the resolver: check them here, as `http` tools do.
    if let Ok(parsed) = reqwest::Url::parse(url) {
        let literal: Option<std::net::IpAddr> = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(ip.into()),
            Some(url::Host::Ipv6(ip)) => Some(ip.into()),
            _ => None,
        };
        if let Some(ip) = literal
            && let Err(b) = guard.check(ip)
        {
            tracing::warn!(event, job = %id, reason = %b, "webhook refused by the SSRF guard");
            count(event, "refused");
            return Attempt::Refused;
        }
    }
    let unix = toolgate_jobs::now_ms() / 1000;
    let signature = toolgate_jobs::sign::sign(secret, unix, bytes);
    let result = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-toolgate-event", event)
        .header("x-toolgate-delivery", format!("{id}-{attempt}"))
        .header("x-toolgate-signature", signature)
        .body(bytes.to_vec())
        .send()
        .await;
    match result {
        Ok(r) if r.status().is_success() => {
            tracing::info!(event, job = %id, attempt, "webhook delivered");
            count(event, "delivered");
            Attempt::Delivered
        }
        Ok(r) => {
            tracing::warn!(event, job = %id, attempt, status = r.status().as_u16(), "webhook refused by its receiver");
            Attempt::Failed
        }
        Err(e) => {
            tracing::warn!(event, job = %id, attempt, error = %e, "webhook delivery failed");
            Attempt::Failed
        }
    }
}

/// How long a replica holds a delivery it took (one attempt's time and some): one
/// that dies while delivering leaves it due again after this.
const DELIVERY_HOLD_MS: i64 = 15_000;

/// Deliveries one replica makes at once.
const DELIVERIES_AT_ONCE: usize = 16;

/// Deliver the completion webhooks that are due: each is stored with its job, so a
/// delivery still being retried survives a restart and is made by whichever
/// replica takes it.
pub(super) async fn deliver_due(state: &crate::AppState) {
    let jobs = &state.jobs;
    let due = match jobs
        .store()
        .claim_webhooks(DELIVERIES_AT_ONCE, DELIVERY_HOLD_MS)
        .await
    {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "taking due webhooks failed");
            return;
        }
    };
    for job in due {
        let state = state.clone();
        tokio::spawn(async move {
            let hooks = &state.jobs.webhooks;
            let attempt = job.webhook_attempts + 1;
            let outcome = match (&hooks.client, &hooks.secret, &job.webhook) {
                (Some(client), Some(secret), Some(url)) => {
                    let body = serde_json::json!({"event": "job.finished", "job": super::view::job_json(&job)});
                    let bytes = body.to_string().into_bytes();
                    attempt_once(
                        client,
                        &hooks.guard,
                        secret,
                        url,
                        "job.finished",
                        &job.id,
                        attempt,
                        &bytes,
                    )
                    .await
                }
                _ => {
                    tracing::warn!(job = %job.id, "a webhook was not sent: no secret to sign it with ([jobs] webhook_secret_env)");
                    Attempt::Refused
                }
            };
            let next = match outcome {
                Attempt::Failed if attempt < hooks.attempts => {
                    let wait = i64::try_from(backoff(attempt).as_millis()).unwrap_or(60_000);
                    Some(toolgate_jobs::now_ms() + wait)
                }
                Attempt::Failed => {
                    count("job.finished", "failed");
                    tracing::error!(job = %job.id, attempts = attempt, "webhook given up after every attempt");
                    None
                }
                Attempt::Delivered | Attempt::Refused => None,
            };
            if let Err(e) = state.jobs.store().webhook_attempted(&job.id, next).await {
                tracing::warn!(error = %e, job = %job.id, "a webhook attempt could not be recorded");
            }
            if next.is_some() {
                state.jobs.wake();
            }
        });
    }
}

fn count(event: &'static str, outcome: &'static str) {
    metrics::counter!("toolgate_webhooks_total", "event" => event, "outcome" => outcome)
        .increment(1);
}
