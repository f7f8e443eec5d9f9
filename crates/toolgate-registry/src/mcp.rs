//! `[sources.NAME] kind = "mcp"`: each upstream MCP server's listed tools, filtered,
//! prefixed and overridden as configured, registered as tools with the source's
//! timeout, retry (for tools the upstream marks idempotent or read-only only) and one
//! breaker per upstream.
//!
//! Connecting is asynchronous and building the registry is not, so [`prepare`]
//! starts every upstream and waits (at most each source's `connect_timeout_ms`) for
//! its first listing; the build then takes what each upstream listed. An upstream that
//! is down contributes no tools and fails its `/readyz` check; when it lists later,
//! [`toolgate_tool_mcp::changes`] fires and the server rebuilds (see
//! [`Registry::stale_federation`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;
use toolgate_config::{Config, LoadedConfig, OperationOverride, Problem, SourceConfig, SourceKind};
use toolgate_core::{Annotations, ToolSpec};
use toolgate_resilience::CircuitBreaker;
use toolgate_tool_http::openapi::{Skipped, tool_name};
use toolgate_tool_mcp::{McpTool, RemoteTool, Upstream, UpstreamSettings};

use crate::{ImportReport, Registry};

pub use toolgate_tool_mcp::{changes, install_tls_provider};

/// The upstreams a registry was built from, and what each had listed then.
#[derive(Debug)]
pub(crate) struct Federation {
    pub(crate) loaded: LoadedConfig,
    pub(crate) upstreams: Vec<(Arc<Upstream>, u64)>,
}

fn settings_of(loaded: &LoadedConfig) -> Vec<(String, Result<UpstreamSettings, String>)> {
    let base_dir = Path::new(loaded.file()).parent().unwrap_or(Path::new(""));
    loaded
        .config
        .sources
        .iter()
        .filter(|(_, s)| s.get_ref().kind == SourceKind::Mcp)
        .map(|(name, s)| {
            (
                name.clone(),
                UpstreamSettings::from_config(name, s.get_ref(), base_dir),
            )
        })
        .collect()
}

/// Start (or find running) the upstream of every `mcp` source of `loaded` and wait
/// for each one's first listing. Hold the result until the registry is built, so
/// that the build finds them running.
pub async fn prepare(loaded: &LoadedConfig) -> Vec<Arc<Upstream>> {
    let upstreams: Vec<Arc<Upstream>> = settings_of(loaded)
        .into_iter()
        .filter_map(|(_, s)| toolgate_tool_mcp::upstream(&s.ok()?).ok())
        .collect();
    futures::future::join_all(upstreams.iter().map(|u| u.first_listing())).await;
    upstreams
}

impl Registry {
    /// [`prepare`], then [`Registry::from_config`]: the way to build a registry
    /// whose config may have `mcp` sources.
    ///
    /// # Errors
    /// Every problem found.
    pub async fn load(loaded: &LoadedConfig) -> Result<Self, toolgate_config::Problems> {
        let _running = prepare(loaded).await;
        Self::from_config(loaded)
    }

    /// When an upstream has listed tools other than those this registry was built
    /// with, the config to rebuild it from.
    #[must_use]
    pub fn stale_federation(&self) -> Option<LoadedConfig> {
        let f = self.federation()?;
        f.upstreams
            .iter()
            .any(|(u, v)| u.snapshot().version != *v)
            .then(|| f.loaded.clone())
    }
}

/// Import the tools of every `mcp` source of `loaded` into `registry`.
pub(crate) fn import_sources(
    loaded: &LoadedConfig,
    registry: &mut Registry,
    problems: &mut Vec<Problem>,
) -> Vec<ImportReport> {
    let cfg = &loaded.config;
    let mut reports = Vec::new();
    let mut kept = Vec::new();
    for (name, settings) in settings_of(loaded) {
        let Some(source) = cfg.sources.get(&name) else {
            continue;
        };
        let s = source.get_ref();
        let upstream = match settings.and_then(|st| toolgate_tool_mcp::upstream(&st)) {
            Ok(u) => u,
            Err(e) => {
                problems.push(loaded.problem(source.span(), format!("source {name:?}: {e}")));
                continue;
            }
        };
        let snapshot = upstream.snapshot();
        let check_upstream = Arc::clone(&upstream);
        registry.add_check(
            format!("source:{name}"),
            Arc::new(move || {
                let r = check_upstream.check();
                Box::pin(async move { r })
            }),
        );
        let mut report = ImportReport {
            source: name.clone(),
            imported: Vec::new(),
            skipped: Vec::new(),
        };
        if let Some(e) = &snapshot.error
            && !snapshot.listed
        {
            report.skipped.push(Skipped {
                id: "*".to_owned(),
                reason: format!("not listed yet: {e}"),
            });
        }
        let include = crate::openapi::filter(s.include.as_ref());
        let exclude = crate::openapi::filter(s.exclude.as_ref());
        // One breaker for the upstream, shared by all its tools.
        let breaker = crate::build::policies_of(None, s.breaker.as_ref())
            .breaker
            .map(|p| Arc::new(CircuitBreaker::new(p)));
        for remote in snapshot.tools.iter() {
            if include
                .as_ref()
                .is_some_and(|f| !f.matches_name(&remote.name))
                || exclude
                    .as_ref()
                    .is_some_and(|f| f.matches_name(&remote.name))
            {
                report.skipped.push(Skipped {
                    id: remote.name.clone(),
                    reason: "left out by include/exclude".to_owned(),
                });
                continue;
            }
            let over = s.operations.get(&remote.name).map(Spanned::get_ref);
            if over.is_some_and(|o| o.skip) {
                report.skipped.push(Skipped {
                    id: remote.name.clone(),
                    reason: "skip = true in its [operations] entry".to_owned(),
                });
                continue;
            }
            let spec = spec_for(cfg, s, remote, over);
            if toolgate_config::RESERVED_NAMES.contains(&spec.name.as_str()) {
                report.skipped.push(Skipped {
                    id: remote.name.clone(),
                    reason: format!(
                        "{:?} is a reserved tool name: rename it in [sources.{name}.operations]",
                        spec.name
                    ),
                });
                continue;
            }
            let mut policies = crate::build::policies_of(
                s.retry.as_ref().filter(|_| spec.annotations.idempotent),
                s.breaker.as_ref(),
            );
            policies.shared_breaker = breaker.clone();
            let tool_name = spec.name.clone();
            let tool = McpTool::new(Arc::clone(&upstream), remote.name.clone());
            match registry.register_with(spec, Arc::new(tool), policies) {
                Ok(()) => report.imported.push(tool_name),
                // A listing is the upstream's to change at any time: a tool that
                // cannot be served is left out and said so, not a config problem.
                Err(e) => report.skipped.push(Skipped {
                    id: remote.name.clone(),
                    reason: format!("{e} (set a prefix, or a name in [sources.{name}.operations])"),
                }),
            }
        }
        for (id, o) in &s.operations {
            if snapshot.listed && !snapshot.tools.iter().any(|t| &t.name == id) {
                tracing::warn!(source = %name, tool = %id, line = ?o.span(), "the upstream lists no such tool");
            }
        }
        kept.push((upstream, snapshot.version));
        reports.push(report);
    }
    if !kept.is_empty() {
        registry.set_federation(Federation {
            loaded: loaded.clone(),
            upstreams: kept,
        });
    }
    reports
}

fn spec_for(
    cfg: &Config,
    s: &SourceConfig,
    t: &RemoteTool,
    over: Option<&OperationOverride>,
) -> ToolSpec {
    let found = ToolSpec {
        name: over
            .and_then(|o| o.name.clone())
            .unwrap_or_else(|| tool_name(&s.prefix, &t.name)),
        description: t.description.clone(),
        input_schema: t.input_schema.clone(),
        output_schema: t.output_schema.clone(),
        annotations: Annotations {
            read_only: t.read_only,
            idempotent: t.idempotent,
            destructive: t.destructive,
        },
        timeout: Duration::ZERO,
        max_concurrency: 0,
        max_queue: 0,
    };
    crate::openapi::imported_spec(cfg, s, over, found)
}
