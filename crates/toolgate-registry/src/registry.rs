//! [`Registry`]: the tools by name, and [`Registry::invoke`], the single way to call one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use toolgate_core::{
    CallContext, CancellationToken, ErrorKind, ProgressSink, Tool, ToolCall, ToolError, ToolOutput,
    ToolSpec,
};
use toolgate_resilience::{Bulkhead, deadline};

use crate::validate::ArgumentSchema;

/// How long a caller refused by a full queue should wait before trying again.
const QUEUE_FULL_RETRY_AFTER: Duration = Duration::from_secs(1);

/// One tool with everything the registry wraps around it.
pub struct RegisteredTool {
    spec: ToolSpec,
    tool: Arc<dyn Tool>,
    schema: ArgumentSchema,
    bulkhead: Bulkhead,
}

impl std::fmt::Debug for RegisteredTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredTool")
            .field("name", &self.spec.name)
            .finish_non_exhaustive()
    }
}

impl RegisteredTool {
    /// Wrap `tool`, compiling its input schema.
    ///
    /// # Errors
    /// The input schema is not a valid JSON Schema.
    pub fn new(spec: ToolSpec, tool: Arc<dyn Tool>) -> Result<Self, String> {
        let schema = ArgumentSchema::compile(&spec.input_schema)?;
        let bulkhead = Bulkhead::new(spec.max_concurrency, spec.max_queue);
        Ok(Self {
            spec,
            tool,
            schema,
            bulkhead,
        })
    }

    /// The tool's description.
    #[must_use]
    pub fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    /// Calls running now.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.bulkhead.in_flight()
    }

    /// Calls waiting for a slot.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.bulkhead.queued()
    }
}

/// What the caller adds to a call: its deadline wishes, cancellation and progress.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// Lower bounds the caller puts on the deadline (header, batch `timeout_ms`).
    pub timeouts: Vec<Option<Duration>>,
    /// Cancelled by the caller (client gone, sibling failed, drain).
    pub cancel: CancellationToken,
    /// Where progress goes.
    pub progress: ProgressSink,
    /// The request's trace id.
    pub trace_id: Option<String>,
}

/// A readiness check of one dependency.
pub type ReadinessCheck =
    Arc<dyn Fn() -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// All tools, by name.
#[derive(Default)]
pub struct Registry {
    tools: BTreeMap<String, Arc<RegisteredTool>>,
    checks: Vec<(String, ReadinessCheck)>,
    in_flight: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Counts a call as in flight for as long as it lives, however it ends.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(counter))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Registry {
    /// An empty registry; add tools with [`Registry::register`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a tool (for instance a native Rust tool).
    ///
    /// # Errors
    /// A tool of that name exists, or the input schema does not compile.
    pub fn register(&mut self, spec: ToolSpec, tool: Arc<dyn Tool>) -> Result<(), String> {
        if self.tools.contains_key(&spec.name) {
            return Err(format!(
                "a tool named {:?} is already registered",
                spec.name
            ));
        }
        let name = spec.name.clone();
        let registered = RegisteredTool::new(spec, tool)
            .map_err(|e| format!("tool {name:?}: input schema: {e}"))?;
        self.tools.insert(name, Arc::new(registered));
        Ok(())
    }

    /// Add a readiness check, reported by `/readyz` under `name`.
    pub fn add_check(&mut self, name: String, check: ReadinessCheck) {
        self.checks.push((name, check));
    }

    /// The tool named `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Arc<RegisteredTool>> {
        self.tools.get(name)
    }

    /// Every tool, by name.
    pub fn tools(&self) -> impl Iterator<Item = &Arc<RegisteredTool>> {
        self.tools.values()
    }

    /// Calls in flight across all tools, including those waiting in a queue.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Run every readiness check; `Err` names what is wrong.
    pub async fn readiness(&self) -> Vec<(String, Result<(), String>)> {
        let runs = self.checks.iter().map(|(name, check)| {
            let fut = check();
            async move { (name.clone(), fut.await) }
        });
        futures::future::join_all(runs).await
    }

    /// Call a tool: validate, apply the deadline and the bulkhead, run, and stop the
    /// work when the deadline passes or `inv.cancel` fires. Dropping the returned
    /// future (the caller went away) cancels the call as well.
    ///
    /// # Errors
    /// Every failure as a [`ToolError`] whose kind is the contract's code.
    pub async fn invoke(&self, call: ToolCall, inv: Invocation) -> Result<ToolOutput, ToolError> {
        let _in_flight = InFlight::enter(&self.in_flight);
        let entry = self.tools.get(&call.tool).ok_or_else(|| {
            ToolError::new(
                ErrorKind::ToolNotFound,
                format!("no tool named {:?}", call.tool),
            )
        })?;
        run(entry, call.arguments, inv).await
    }
}

async fn run(
    entry: &RegisteredTool,
    arguments: Value,
    inv: Invocation,
) -> Result<ToolOutput, ToolError> {
    if inv.cancel.is_cancelled() {
        return Err(ToolError::cancelled(
            "the call was cancelled before it started",
        ));
    }
    entry.schema.check(&arguments)?;
    let deadline = deadline::resolve(Instant::now(), entry.spec.timeout, &inv.timeouts);
    let timed_out = || {
        ToolError::timeout(format!(
            "{} did not finish within its deadline",
            entry.spec.name
        ))
    };

    // Waiting for a slot counts against the deadline and ends with the caller.
    let permit = tokio::select! {
        biased;
        () = inv.cancel.cancelled() => return Err(ToolError::cancelled("the call was cancelled while queued")),
        r = tokio::time::timeout_at(deadline, entry.bulkhead.acquire()) => match r {
            Err(_) => return Err(timed_out()),
            Ok(Err(full)) => {
                return Err(ToolError::new(
                    ErrorKind::Overloaded,
                    format!("{} is at its concurrency limit: {full}", entry.spec.name),
                )
                .with_retry_after(QUEUE_FULL_RETRY_AFTER));
            }
            Ok(Ok(permit)) => permit,
        },
    };

    // The tool sees a child token: cancelling it tells the tool to stop, and the drop
    // guard cancels it too when this future is dropped mid-call.
    let token = inv.cancel.child_token();
    let guard = token.clone().drop_guard();
    let ctx = CallContext::new(deadline)
        .with_cancel(token.clone())
        .with_progress(inv.progress)
        .with_trace_id(inv.trace_id);
    let result = tokio::select! {
        biased;
        r = entry.tool.call(arguments, ctx) => r,
        () = tokio::time::sleep_until(deadline) => Err(timed_out()),
        () = inv.cancel.cancelled() => Err(ToolError::cancelled("the call was cancelled")),
    };
    // Whatever ended the race, make sure the tool's own work is told to stop.
    token.cancel();
    drop(guard);
    drop(permit);
    result
}
