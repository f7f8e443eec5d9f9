//! `[sources.NAME] kind = "openapi"`: the document read (a file, or fetched), its
//! selected operations imported as `http` tools with the source's headers, limits and
//! policies, and what was imported or left out kept for `toolgate check`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;
use toolgate_config::{
    Config, LoadedConfig, OperationFilterConfig, Problem, SourceConfig, SourceKind,
};
use toolgate_core::{Annotations, ToolSpec};
use toolgate_resilience::CircuitBreaker;
use toolgate_tool_http::HttpTool;
use toolgate_tool_http::openapi::{self, Filter, Skipped};

use crate::Registry;

/// Longest the download of a document may take unless configured.
const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// What one `openapi` source brought in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The source's name.
    pub source: String,
    /// The tools made, in the document's order.
    pub imported: Vec<String>,
    /// The operations left out, and why.
    pub skipped: Vec<Skipped>,
}

pub(crate) fn filter(f: Option<&Spanned<OperationFilterConfig>>) -> Option<Filter> {
    f.map(|f| {
        let f = f.get_ref();
        Filter {
            operations: f.operations.clone(),
            tags: f.tags.clone(),
            paths: f.paths.clone(),
            methods: f.methods.clone(),
        }
    })
}

/// The document's text: read from a file (relative to `base_dir`) or fetched.
fn read_document(s: &SourceConfig, spec: &str, base_dir: &Path) -> Result<String, String> {
    if spec.starts_with("http://") || spec.starts_with("https://") {
        let timeout = s
            .fetch_timeout_ms
            .as_ref()
            .map_or(DEFAULT_FETCH_TIMEOUT, |ms| {
                Duration::from_millis(*ms.get_ref())
            });
        openapi::fetch(spec, timeout)
    } else {
        let path = base_dir.join(spec);
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }
}

/// Where the operations are called: `base_url`, or the document's server URL
/// (resolved against the document's own URL when relative).
fn base_url(s: &SourceConfig, spec: &str, server: Option<&str>) -> Result<String, String> {
    if let Some(b) = &s.base_url {
        return Ok(b.get_ref().as_str().to_owned());
    }
    // No `servers`: the specification's default is a server at `/`.
    let server = server.unwrap_or("/");
    if server.starts_with("http://") || server.starts_with("https://") {
        return Ok(server.to_owned());
    }
    if spec.starts_with("http://") || spec.starts_with("https://") {
        return reqwest_join(spec, server);
    }
    Err(format!(
        "the document's server URL {server:?} is relative and the document is a file: set base_url"
    ))
}

fn reqwest_join(base: &str, relative: &str) -> Result<String, String> {
    openapi::join_url(base, relative)
}

/// Import every `openapi` source of `loaded` into `registry`.
pub(crate) fn import_sources(
    loaded: &LoadedConfig,
    registry: &mut Registry,
    upstream_breakers: &mut BTreeMap<String, Arc<CircuitBreaker>>,
    problems: &mut Vec<Problem>,
) -> Vec<ImportReport> {
    let cfg = &loaded.config;
    let base_dir = Path::new(loaded.file()).parent().unwrap_or(Path::new(""));
    let mut reports = Vec::new();
    for (name, source) in &cfg.sources {
        let s = source.get_ref();
        if s.kind != SourceKind::Openapi {
            continue;
        }
        let Some(spec) = &s.spec else { continue };
        let at = spec.span();
        let spec_text = spec.get_ref().as_str();
        let doc = match read_document(s, spec_text, base_dir).and_then(|t| openapi::parse(&t)) {
            Ok(d) => d,
            Err(e) => {
                problems.push(loaded.problem(at, format!("source {name:?}: {e}")));
                continue;
            }
        };
        let (include, exclude) = (filter(s.include.as_ref()), filter(s.exclude.as_ref()));
        let import = openapi::import(&doc, &s.prefix, include.as_ref(), exclude.as_ref());
        let base = match base_url(s, spec_text, import.server_url.as_deref()) {
            Ok(b) => b,
            Err(e) => {
                problems.push(loaded.problem(source.span(), format!("source {name:?}: {e}")));
                continue;
            }
        };
        let mut report = ImportReport {
            source: name.clone(),
            imported: Vec::new(),
            skipped: import.skipped,
        };
        let known: Vec<&str> = import
            .operations
            .iter()
            .map(|o| o.id.as_str())
            .chain(report.skipped.iter().map(|s| s.id.as_str()))
            .collect();
        for (id, o) in &s.operations {
            if !known.contains(&id.as_str()) {
                problems.push(loaded.problem(
                    o.span(),
                    format!("source {name:?}: the document has no operation {id:?}"),
                ));
            }
        }
        for mut op in import.operations {
            let over = s.operations.get(&op.id).map(Spanned::get_ref);
            if over.is_some_and(|o| o.skip) {
                report.skipped.push(Skipped {
                    id: op.id.clone(),
                    reason: "skip = true in its [operations] entry".to_owned(),
                });
                continue;
            }
            if let Some(n) = over.and_then(|o| o.name.clone()) {
                op.name = n;
            }
            let spec = spec_for(cfg, s, &op, over);
            let id = op.id.clone();
            let tool = match HttpTool::for_operation(s, &base, op) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(loaded.problem(source.span(), format!("source {name:?}: {e}")));
                    break;
                }
            };
            let mut policies = crate::build::policies_of(
                s.retry.as_ref().filter(|_| spec.annotations.idempotent),
                s.breaker.as_ref(),
            );
            if let Some(p) = policies.breaker {
                let shared = upstream_breakers
                    .entry(tool.origin().to_owned())
                    .or_insert_with(|| Arc::new(CircuitBreaker::new(p)));
                policies.shared_breaker = Some(Arc::clone(shared));
            }
            let tool_name = spec.name.clone();
            if toolgate_config::RESERVED_NAMES.contains(&tool_name.as_str()) {
                problems.push(loaded.problem(
                    source.span(),
                    format!("source {name:?}: operation {id:?} would be the reserved tool name {tool_name:?}: rename it in [sources.{name}.operations.{id}]"),
                ));
                continue;
            }
            match registry.register_with(spec, Arc::new(tool), policies) {
                Ok(()) => report.imported.push(tool_name),
                Err(e) => problems.push(loaded.problem(
                    source.span(),
                    format!("source {name:?}: operation {id:?}: {e} (set a prefix, or a name in [sources.{name}.operations.{id}])"),
                )),
            }
        }
        reports.push(report);
    }
    reports
}

fn spec_for(
    cfg: &Config,
    s: &SourceConfig,
    op: &openapi::Operation,
    over: Option<&toolgate_config::OperationOverride>,
) -> ToolSpec {
    let hints = Annotations {
        read_only: op.read_only,
        idempotent: op.idempotent,
        destructive: op.destructive,
    };
    imported_spec(
        cfg,
        s,
        over,
        ToolSpec {
            name: op.name.clone(),
            description: op.description.clone(),
            input_schema: op.input_schema.clone(),
            output_schema: None,
            annotations: hints,
            timeout: Duration::ZERO,
            max_concurrency: 0,
            max_queue: 0,
        },
    )
}

/// An imported tool's spec (an OpenAPI operation's or an MCP upstream's, as it
/// describes itself in `found`) with its `[operations]` entry applied (a new name
/// is applied by the caller), the source's timeout, and the config's defaults.
pub(crate) fn imported_spec(
    cfg: &Config,
    s: &SourceConfig,
    over: Option<&toolgate_config::OperationOverride>,
    found: ToolSpec,
) -> ToolSpec {
    let hints = found.annotations;
    let destructive = over
        .and_then(|o| o.destructive)
        .unwrap_or(hints.destructive);
    let read_only = over
        .and_then(|o| o.read_only)
        .unwrap_or(hints.read_only && !destructive);
    let timeout_ms = over
        .and_then(|o| o.timeout_ms)
        .or_else(|| s.timeout_ms.as_ref().map(|t| *t.get_ref()))
        .unwrap_or(cfg.defaults.timeout_ms);
    ToolSpec {
        description: over
            .and_then(|o| o.description.clone())
            .unwrap_or(found.description),
        annotations: Annotations {
            read_only,
            idempotent: over
                .and_then(|o| o.idempotent)
                .unwrap_or(hints.idempotent || read_only),
            destructive,
        },
        timeout: Duration::from_millis(timeout_ms),
        max_concurrency: cfg.defaults.max_concurrency,
        max_queue: cfg.defaults.max_queue,
        ..found
    }
}
