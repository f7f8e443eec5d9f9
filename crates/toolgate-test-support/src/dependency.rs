//! [`Dependency`]: a scriptable tool standing for a downstream system, so policies
//! (retries, budgets, breakers, deadlines) are tested end to end over HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use toolgate_core::{Annotations, CallContext, ErrorKind, Tool, ToolError, ToolOutput, ToolSpec};

/// A dependency that answers, fails (`upstream_error`) or is slow, as the test says.
/// It counts every attempt that reached it.
#[derive(Debug, Default)]
pub struct Dependency {
    healthy: AtomicBool,
    fail_next: AtomicU64,
    delay_ms: AtomicU64,
    attempts: AtomicU64,
}

impl Dependency {
    /// A healthy, fast dependency.
    #[must_use]
    pub fn new() -> Arc<Self> {
        let d = Self::default();
        d.healthy.store(true, Ordering::SeqCst);
        Arc::new(d)
    }

    /// Fail every attempt (`false`) or answer them (`true`).
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }

    /// Fail the next `n` attempts, then answer.
    pub fn fail_next(&self, n: u64) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// Take this long per attempt (cancellable).
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Attempts that reached the dependency so far.
    #[must_use]
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::SeqCst)
    }

    /// The spec of a tool named `name` over this dependency: idempotent, 10 s timeout.
    #[must_use]
    pub fn spec(name: &str) -> ToolSpec {
        ToolSpec {
            name: name.to_owned(),
            description: "A scripted dependency for tests.".to_owned(),
            input_schema: json!({"type": "object"}),
            output_schema: None,
            annotations: Annotations {
                read_only: true,
                idempotent: true,
                destructive: false,
            },
            timeout: Duration::from_secs(10),
            max_concurrency: 1000,
            max_queue: 1000,
        }
    }
}

#[async_trait]
impl Tool for Dependency {
    async fn call(&self, _arguments: Value, ctx: CallContext) -> Result<ToolOutput, ToolError> {
        let n = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        let delay = Duration::from_millis(self.delay_ms.load(Ordering::SeqCst));
        if !delay.is_zero() {
            tokio::select! {
                () = ctx.cancel.cancelled() => return Err(ToolError::cancelled("cancelled")),
                () = tokio::time::sleep(delay) => {}
            }
        }
        let scripted_failure = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |k| k.checked_sub(1))
            .is_ok();
        if scripted_failure || !self.healthy.load(Ordering::SeqCst) {
            return Err(ToolError::new(
                ErrorKind::UpstreamError,
                "the dependency is unavailable",
            ));
        }
        Ok(json!({ "attempt": n }))
    }
}
