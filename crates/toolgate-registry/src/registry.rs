//! [`Registry`]: the tools by name, swappable as a whole on reload, and
//! [`Registry::invoke`], the single way to call one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;
use toolgate_core::{
    CancellationToken, ErrorKind, ProgressSink, Tool, ToolCall, ToolError, ToolOutput, ToolSpec,
};
use toolgate_resilience::{
    BreakerPolicy, BreakerState, Bulkhead, CircuitBreaker, RetryBudget, RetryPolicy,
};

use crate::validate::ArgumentSchema;

/// The resilience policies wrapped around one tool.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    /// Retries, for idempotent tools only.
    pub retry: Option<RetryPolicy>,
    /// A circuit breaker of the tool's own.
    pub breaker: Option<BreakerPolicy>,
    /// A breaker shared with other tools (one per HTTP upstream); wins over `breaker`.
    pub shared_breaker: Option<Arc<CircuitBreaker>>,
}

/// One tool with everything the registry wraps around it.
pub struct RegisteredTool {
    pub(crate) spec: ToolSpec,
    pub(crate) tool: Arc<dyn Tool>,
    pub(crate) schema: ArgumentSchema,
    pub(crate) bulkhead: Bulkhead,
    pub(crate) retry: Option<(RetryPolicy, RetryBudget)>,
    pub(crate) breaker: Option<Arc<CircuitBreaker>>,
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
    /// The input schema is not a valid JSON Schema, or retries are asked for a tool
    /// that is not idempotent.
    pub fn new(spec: ToolSpec, tool: Arc<dyn Tool>, policies: Policies) -> Result<Self, String> {
        let schema = ArgumentSchema::compile(&spec.input_schema)?;
        if policies.retry.is_some() && !spec.annotations.idempotent {
            return Err(format!(
                "tool {:?} has a retry policy but is not idempotent; retrying it could repeat its effects",
                spec.name
            ));
        }
        let bulkhead = Bulkhead::new(spec.max_concurrency, spec.max_queue);
        Ok(Self {
            retry: policies
                .retry
                .map(|p| (p, RetryBudget::new(p.budget_ratio, p.budget_min_per_second))),
            breaker: policies
                .shared_breaker
                .or_else(|| policies.breaker.map(|p| Arc::new(CircuitBreaker::new(p)))),
            spec,
            tool,
            schema,
            bulkhead,
        })
    }

    /// Check `arguments` against the input schema, as a call would.
    ///
    /// # Errors
    /// `invalid_arguments` with every violation.
    pub fn check_arguments(&self, arguments: &serde_json::Value) -> Result<(), ToolError> {
        self.schema.check(arguments)
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

    /// The breaker's state, if the tool has one.
    #[must_use]
    pub fn breaker_state(&self) -> Option<BreakerState> {
        self.breaker
            .as_ref()
            .map(|b| b.state(tokio::time::Instant::now()))
    }
}

/// Which transport a call came through, for logs, metrics and the audit log.
/// Tools never see it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    /// `POST /api/v1/tools/{name}`.
    #[default]
    Rest,
    /// An entry of `POST /api/v1/tools/execute`.
    Batch,
    /// Server-Sent Events.
    Sse,
    /// WebSocket.
    WebSocket,
    /// Model Context Protocol.
    Mcp,
    /// `toolgate call`, in-process.
    Cli,
    /// A durable job (REST jobs, MCP tasks), run by the job runner.
    Job,
}

impl Transport {
    /// `rest`, `batch`, `sse`, `ws`, `mcp` or `cli`.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Transport::Rest => "rest",
            Transport::Batch => "batch",
            Transport::Sse => "sse",
            Transport::WebSocket => "ws",
            Transport::Mcp => "mcp",
            Transport::Cli => "cli",
            Transport::Job => "job",
        }
    }
}

/// What the caller adds to a call: its deadline wishes, cancellation and progress.
#[derive(Clone, Default)]
pub struct Invocation {
    /// Lower bounds the caller puts on the deadline (header, batch `timeout_ms`).
    pub timeouts: Vec<Option<Duration>>,
    /// Cancelled by the caller (client gone, sibling failed, drain).
    pub cancel: CancellationToken,
    /// Where progress goes.
    pub progress: ProgressSink,
    /// The request's trace id.
    pub trace_id: Option<String>,
    /// The transport the call came through.
    pub transport: Transport,
    /// Who the call is made for (set by the server from the authenticated caller).
    pub caller: Option<std::sync::Arc<toolgate_core::CallerIdentity>>,
    /// The client, where the transport lets tools log to it and ask it things.
    pub client: Option<Arc<dyn toolgate_core::ClientRequests>>,
    /// The ceiling of the deadline in place of the tool's `timeout` (a job's
    /// `job_timeout_ms`, which may be longer).
    pub max_timeout: Option<Duration>,
}

impl std::fmt::Debug for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invocation")
            .field("timeouts", &self.timeouts)
            .field("transport", &self.transport)
            .field("trace_id", &self.trace_id)
            .field("client", &self.client.is_some())
            .finish_non_exhaustive()
    }
}

/// A readiness check of one dependency.
pub type ReadinessCheck =
    Arc<dyn Fn() -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// One generation of tools and checks; a reload replaces it whole.
#[derive(Default, Clone)]
struct Catalog {
    tools: BTreeMap<String, Arc<RegisteredTool>>,
    checks: Vec<(String, ReadinessCheck)>,
    /// The MCP upstreams the tools came from, when the config has any.
    federation: Option<Arc<crate::mcp::Federation>>,
    /// Resources, resource templates and prompts.
    content: Arc<crate::content::Content>,
}

/// All tools, by name.
pub struct Registry {
    catalog: ArcSwap<Catalog>,
    in_flight: Arc<AtomicUsize>,
    generation: watch::Sender<u64>,
    /// What each OpenAPI source imported, for `toolgate check`.
    imports: Vec<crate::ImportReport>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            catalog: ArcSwap::from_pointee(Catalog::default()),
            in_flight: Arc::new(AtomicUsize::new(0)),
            generation: watch::Sender::new(0),
            imports: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.catalog.load().tools.keys().cloned().collect();
        f.debug_struct("Registry")
            .field("tools", &names)
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

    /// Add a tool (for instance a native Rust tool) without resilience policies.
    ///
    /// # Errors
    /// A tool of that name exists, or the input schema does not compile.
    pub fn register(&mut self, spec: ToolSpec, tool: Arc<dyn Tool>) -> Result<(), String> {
        self.register_with(spec, tool, Policies::default())
    }

    /// Add a tool wrapped in `policies`.
    ///
    /// # Errors
    /// A tool of that name exists, the input schema does not compile, or the
    /// policies do not fit the tool.
    pub fn register_with(
        &mut self,
        spec: ToolSpec,
        tool: Arc<dyn Tool>,
        policies: Policies,
    ) -> Result<(), String> {
        if self.catalog.load().tools.contains_key(&spec.name) {
            return Err(format!(
                "a tool named {:?} is already registered",
                spec.name
            ));
        }
        let name = spec.name.clone();
        let registered = Arc::new(RegisteredTool::new(spec, tool, policies)?);
        self.modify(|c| {
            c.tools.insert(name, registered);
        });
        Ok(())
    }

    /// What each OpenAPI source imported and left out.
    #[must_use]
    pub fn imports(&self) -> &[crate::ImportReport] {
        &self.imports
    }

    pub(crate) fn set_imports(&mut self, imports: Vec<crate::ImportReport>) {
        self.imports = imports;
    }

    pub(crate) fn set_federation(&mut self, f: crate::mcp::Federation) {
        let f = Arc::new(f);
        self.modify(|c| c.federation = Some(f));
    }

    /// Set the resources, resource templates and prompts.
    pub fn set_content(&mut self, content: crate::content::Content) {
        let content = Arc::new(content);
        self.modify(|c| c.content = content);
    }

    /// The resources, resource templates and prompts of the current generation.
    #[must_use]
    pub fn content(&self) -> Arc<crate::content::Content> {
        Arc::clone(&self.catalog.load().content)
    }

    pub(crate) fn federation(&self) -> Option<Arc<crate::mcp::Federation>> {
        self.catalog.load().federation.clone()
    }

    /// Add a readiness check, reported by `/readyz` under `name`.
    pub fn add_check(&mut self, name: String, check: ReadinessCheck) {
        self.modify(|c| c.checks.push((name, check)));
    }

    /// Change the catalog while the registry is being built (`&mut self`: nobody
    /// else can be reading it).
    fn modify(&mut self, f: impl FnOnce(&mut Catalog)) {
        let mut next = Catalog::clone(&self.catalog.load());
        f(&mut next);
        self.catalog.store(Arc::new(next));
    }

    /// Replace every tool and check by those of `next`, atomically. Calls already
    /// running finish on the tools they started with.
    pub fn replace_with(&self, next: Registry) {
        self.catalog.store(next.catalog.into_inner());
        self.generation.send_modify(|g| *g += 1);
    }

    /// Watch reloads: the value changes whenever the tools are replaced.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// The tool named `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<Arc<RegisteredTool>> {
        self.catalog.load().tools.get(name).cloned()
    }

    /// Every tool, by name (a snapshot of the current generation).
    #[must_use]
    pub fn tools(&self) -> std::vec::IntoIter<Arc<RegisteredTool>> {
        self.catalog
            .load()
            .tools
            .values()
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// Calls in flight across all tools, including those waiting in a queue.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Run every readiness check; `Err` names what is wrong.
    pub async fn readiness(&self) -> Vec<(String, Result<(), String>)> {
        let catalog = self.catalog.load_full();
        let runs = catalog.checks.iter().map(|(name, check)| {
            let fut = check();
            async move { (name.clone(), fut.await) }
        });
        futures::future::join_all(runs).await
    }

    /// Call a tool: validate, apply the deadline, breaker, bulkhead and retries, run,
    /// and stop the work when the deadline passes or `inv.cancel` fires. Dropping the
    /// returned future (the caller went away) cancels the call as well.
    ///
    /// # Errors
    /// Every failure as a [`ToolError`] whose kind is the contract's code.
    pub async fn invoke(&self, call: ToolCall, inv: Invocation) -> Result<ToolOutput, ToolError> {
        let _in_flight = InFlight::enter(&self.in_flight);
        let entry = self.get(&call.tool).ok_or_else(|| {
            ToolError::new(
                ErrorKind::ToolNotFound,
                format!("no tool named {:?}", call.tool),
            )
        })?;
        crate::call::run(&entry, call.arguments, inv).await
    }
}
