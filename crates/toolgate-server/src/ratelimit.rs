//! Per-key rate limits, counted in this process or shared through Redis.
//!
//! With Redis every replica takes tokens from the same bucket, refilled by a Lua
//! script on Redis's own clock (so replicas' clocks need not agree), atomically. When
//! Redis cannot be reached within a short timeout, calls are allowed (`open`) or
//! refused with `503 overloaded` (`closed`), as configured, and the failure is logged.

use std::time::Duration;

use tokio::sync::OnceCell;
use toolgate_config::{OnStoreError, RateLimitStore, RateLimitStoreConfig};

use crate::auth::Principal;

/// How long one Redis round trip may take before the store counts as down.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over the key's limit; wait this long.
    RateLimited(Duration),
    /// The shared store is down and the policy is `closed`.
    StoreDown,
}

/// The token bucket, in Redis: refill by elapsed time, take `cost` if there.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) / 1000 * rate)
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = math.ceil((cost - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, wait}
";

/// The shared store.
pub struct RedisStore {
    client: redis::Client,
    conn: OnceCell<redis::aio::ConnectionManager>,
    script: redis::Script,
    prefix: String,
    on_error: OnStoreError,
}

/// Where buckets live.
pub enum Limiter {
    /// Each principal's own in-memory bucket.
    Memory,
    /// Redis.
    Redis(Box<RedisStore>),
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limiter::Memory => "Limiter::Memory",
            Limiter::Redis(_) => "Limiter::Redis",
        })
    }
}

impl Limiter {
    /// The limiter `[rate_limits]` asks for. Connecting to Redis happens at the first
    /// call, so a Redis that is down at start is handled like one that goes down later.
    ///
    /// # Errors
    /// The Redis URL is malformed.
    pub fn new(cfg: &RateLimitStoreConfig) -> Result<Self, String> {
        match (cfg.store, &cfg.redis_url) {
            (RateLimitStore::Memory, _) => Ok(Limiter::Memory),
            (RateLimitStore::Redis, None) => {
                Err("[rate_limits] store = \"redis\" needs redis_url".to_owned())
            }
            (RateLimitStore::Redis, Some(url)) => {
                let client = redis::Client::open(url.get_ref().as_str())
                    .map_err(|e| format!("[rate_limits] redis_url: {e}"))?;
                Ok(Limiter::Redis(Box::new(RedisStore {
                    client,
                    conn: OnceCell::new(),
                    script: redis::Script::new(SCRIPT),
                    prefix: cfg
                        .key_prefix
                        .clone()
                        .unwrap_or_else(|| "toolgate".to_owned()),
                    on_error: cfg.on_store_error,
                })))
            }
        }
    }

    /// Take one call from `principal`'s limit.
    ///
    /// # Errors
    /// The refusal.
    pub async fn take(&self, principal: &Principal) -> Result<(), Refusal> {
        match self {
            Limiter::Memory => principal.take_call().map_err(Refusal::RateLimited),
            Limiter::Redis(store) => {
                let Some(limit) = principal.limit else {
                    return Ok(());
                };
                store
                    .take(&principal.name, limit.per_second, limit.burst)
                    .await
            }
        }
    }
}

impl Limiter {
    /// Whether the shared store answers (`PING`), and whether its failure refuses
    /// calls (`on_store_error = "closed"`); `None` for counting in memory.
    pub async fn check(&self) -> Option<(Result<(), String>, bool)> {
        let Limiter::Redis(store) = self else {
            return None;
        };
        let ping = async {
            let conn = store
                .conn
                .get_or_try_init(|| redis::aio::ConnectionManager::new(store.client.clone()))
                .await?;
            let mut conn = conn.clone();
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        let result = match tokio::time::timeout(Duration::from_secs(1), ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 1 s".to_owned()),
        };
        Some((result, store.on_error == OnStoreError::Closed))
    }
}

impl RedisStore {
    async fn take(&self, name: &str, per_second: f64, burst: f64) -> Result<(), Refusal> {
        let key = format!("{}:ratelimit:{name}", self.prefix);
        let attempt = async {
            let conn = self
                .conn
                .get_or_try_init(|| redis::aio::ConnectionManager::new(self.client.clone()))
                .await?;
            let mut conn = conn.clone();
            let (allowed, wait_ms): (i64, i64) = self
                .script
                .key(&key)
                .arg(per_second)
                .arg(burst)
                .arg(1)
                .invoke_async(&mut conn)
                .await?;
            Ok::<_, redis::RedisError>((allowed, wait_ms))
        };
        match tokio::time::timeout(REDIS_TIMEOUT, attempt).await {
            Ok(Ok((1, _))) => Ok(()),
            Ok(Ok((_, wait_ms))) => Err(Refusal::RateLimited(Duration::from_millis(
                u64::try_from(wait_ms.max(1)).unwrap_or(1),
            ))),
            Ok(Err(e)) => self.store_down(&e.to_string()),
            Err(_) => self.store_down("timed out"),
        }
    }

    fn store_down(&self, why: &str) -> Result<(), Refusal> {
        match self.on_error {
            OnStoreError::Open => {
                tracing::warn!(
                    error = why,
                    "rate-limit store unavailable; allowing the call (on_store_error = open)"
                );
                Ok(())
            }
            OnStoreError::Closed => {
                tracing::error!(
                    error = why,
                    "rate-limit store unavailable; refusing the call (on_store_error = closed)"
                );
                Err(Refusal::StoreDown)
            }
        }
    }
}
