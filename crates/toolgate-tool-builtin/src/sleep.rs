//! `sleep`: waits, reporting progress, and stops at once when cancelled.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::time::{Instant, MissedTickBehavior};
use toolgate_core::{CallContext, Tool, ToolError, ToolOutput};

use crate::Builtin;

/// Largest `ms` accepted.
pub const MAX_MS: u64 = 600_000;
/// How often progress is reported.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// The sleep tool.
#[derive(Debug, Default)]
pub struct Sleep;

#[async_trait]
impl Tool for Sleep {
    async fn call(&self, arguments: Value, ctx: CallContext) -> Result<ToolOutput, ToolError> {
        // The schema guarantees an integer in range; stay total anyway.
        let ms = arguments
            .get("ms")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .min(MAX_MS);
        let start = Instant::now();
        let end = start + Duration::from_millis(ms);
        let mut ticks = tokio::time::interval_at(start + PROGRESS_EVERY, PROGRESS_EVERY);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = ctx.cancel.cancelled() => {
                    return Err(ToolError::cancelled("sleep was cancelled"));
                }
                () = tokio::time::sleep_until(end) => break,
                at = ticks.tick(), if ctx.progress.is_active() => {
                    let done = at.saturating_duration_since(start).as_millis().min(u128::from(ms));
                    #[allow(clippy::cast_precision_loss)] // ms ≤ 600000 is exact in f64
                    ctx.progress.report(done as f64, Some(ms as f64), Some(format!("slept {done} of {ms} ms")));
                }
            }
        }
        Ok(json!({ "slept_ms": ms }))
    }
}

pub(crate) fn builtin() -> Builtin {
    Builtin {
        tool: Arc::new(Sleep),
        description: "Wait `ms` milliseconds (0 to 600000), reporting progress every 100 ms. Cancellable.",
        input_schema: json!({
            "type": "object",
            "properties": {"ms": {"type": "integer", "minimum": 0, "maximum": MAX_MS}},
            "required": ["ms"],
            "additionalProperties": false
        }),
        output_schema: Some(json!({
            "type": "object",
            "properties": {"slept_ms": {"type": "integer"}},
            "required": ["slept_ms"]
        })),
        read_only: true,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use toolgate_core::{ErrorKind, ProgressSink};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn reports_progress_and_finishes() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink_seen = Arc::clone(&seen);
        let ctx = CallContext::new(Instant::now() + Duration::from_secs(5)).with_progress(
            ProgressSink::new(move |p| sink_seen.lock().unwrap().push(p.progress)),
        );
        let out = Sleep.call(json!({"ms": 350}), ctx).await.unwrap();
        assert_eq!(out, json!({"slept_ms": 350}));
        assert_eq!(*seen.lock().unwrap(), vec![100.0, 200.0, 300.0]);
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_stops_it_at_once() {
        let ctx = CallContext::new(Instant::now() + Duration::from_secs(60));
        let cancel = ctx.cancel.clone();
        let started = Instant::now();
        let task = tokio::spawn(Sleep.call(json!({"ms": 10_000}), ctx));
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
        let err = task.await.unwrap().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Cancelled);
        assert!(started.elapsed() < Duration::from_millis(100));
    }
}
