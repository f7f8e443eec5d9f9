//! Building the registry from configuration: one `match` arm per tool kind.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use toml::Spanned;
use toolgate_config::{Config, LoadedConfig, Problem, Problems, SourceKind, ToolConfig, ToolKind};
use toolgate_core::{Annotations, Tool, ToolSpec};
use toolgate_resilience::{BreakerPolicy, CircuitBreaker, RetryPolicy};
use toolgate_tool_http::HttpTool;
use toolgate_tool_sql::{MySqlSource, PgSource, QueryTool, Source, SqliteSource, StatementTool};

use crate::{Policies, Registry};

/// Row cap of SQL tools that do not set `max_rows`.
const DEFAULT_MAX_ROWS: usize = 1000;

/// What a kind contributes before the config's overrides.
struct Built {
    tool: Arc<dyn Tool>,
    /// The upstream origin, for tools that call one (their breaker is shared).
    upstream: Option<String>,
    description: String,
    input_schema: Value,
    output_schema: Option<Value>,
    read_only: bool,
}

impl Registry {
    /// Build every source and tool of a validated config. Problems found only now
    /// (a database that does not open, a statement that does not prepare) are
    /// reported at the line of the config that caused them.
    ///
    /// # Errors
    /// Every problem found.
    pub fn from_config(loaded: &LoadedConfig) -> Result<Self, Problems> {
        let cfg = &loaded.config;
        let mut problems = Vec::new();
        let sources = open_sources(loaded, &mut problems);
        let mut registry = Registry::new();
        for (name, source) in &sources {
            let source = source.clone();
            registry.add_check(
                format!("source:{name}"),
                Arc::new(move || {
                    let source = source.clone();
                    Box::pin(async move { source.check().await })
                }),
            );
        }
        // One breaker per HTTP upstream, shared by every tool that calls it.
        let mut upstream_breakers: BTreeMap<String, Arc<CircuitBreaker>> = BTreeMap::new();
        // Paths in the config (a wasm tool's module) are relative to its directory.
        let base_dir = Path::new(loaded.file()).parent().unwrap_or(Path::new(""));
        for t in &cfg.tools {
            match build_tool(t, &sources, base_dir) {
                Ok(built) => {
                    let tool = Arc::clone(&built.tool);
                    let mut policies = policies_for(t);
                    if let (Some(origin), Some(p)) = (&built.upstream, policies.breaker) {
                        let shared = upstream_breakers
                            .entry(origin.clone())
                            .or_insert_with(|| Arc::new(CircuitBreaker::new(p)));
                        policies.shared_breaker = Some(Arc::clone(shared));
                    }
                    if let Err(e) = registry.register_with(spec_for(cfg, t, built), tool, policies)
                    {
                        problems.push(loaded.problem(t.name.span(), e));
                    }
                }
                Err((span, message)) => problems.push(loaded.problem(span, message)),
            }
        }
        let mut imports = crate::openapi::import_sources(
            loaded,
            &mut registry,
            &mut upstream_breakers,
            &mut problems,
        );
        imports.extend(crate::mcp::import_sources(
            loaded,
            &mut registry,
            &mut problems,
        ));
        registry.set_imports(imports);
        let content = crate::content::build(loaded, &sources, &mut problems);
        registry.set_content(content);
        if problems.is_empty() {
            Ok(registry)
        } else {
            Err(Problems(problems))
        }
    }
}

fn open_sources(loaded: &LoadedConfig, problems: &mut Vec<Problem>) -> BTreeMap<String, Source> {
    let cfg = &loaded.config;
    let mut sources = BTreeMap::new();
    for (name, source) in cfg
        .sources
        .iter()
        .filter(|(_, s)| s.get_ref().kind.is_database())
    {
        let needs_writer = cfg
            .tools
            .iter()
            .any(|t| t.writes() && t.source.as_ref().is_some_and(|s| s.get_ref() == name));
        let s = source.get_ref();
        // Server databases connect lazily: opening only parses the url and sizes the
        // pool, so a database that is down shows in /readyz, not as a config problem.
        let opened = match s.kind {
            SourceKind::Sqlite => SqliteSource::open(name, s, needs_writer).map(Source::from),
            SourceKind::Postgres => PgSource::open(name, s).map(Source::from),
            SourceKind::Mysql => MySqlSource::open(name, s).map(Source::from),
            // Filtered out above: its operations are imported as tools.
            SourceKind::Openapi | SourceKind::Mcp => continue,
        };
        match opened {
            Ok(s) => {
                sources.insert(name.clone(), s);
            }
            Err(e) => problems.push(loaded.problem(source.span(), format!("source {name:?}: {e}"))),
        }
    }
    sources
}

type Located = (std::ops::Range<usize>, String);

fn source_of(t: &ToolConfig, sources: &BTreeMap<String, Source>) -> Result<Source, Located> {
    let s = t
        .source
        .as_ref()
        .ok_or_else(|| (t.kind.span(), "needs `source`".to_owned()))?;
    // A source that failed to open was reported already; name it again here only
    // as the reason this tool cannot be built.
    sources.get(s.get_ref()).cloned().ok_or_else(|| {
        (
            s.span(),
            format!("source {:?} is not available", s.get_ref()),
        )
    })
}

fn build_tool(
    t: &ToolConfig,
    sources: &BTreeMap<String, Source>,
    base_dir: &Path,
) -> Result<Built, Located> {
    let max_rows = toolgate_tool_sql::Caps {
        rows: t
            .max_rows
            .as_ref()
            .map_or(DEFAULT_MAX_ROWS, |r| *r.get_ref()),
        bytes: t
            .max_result_bytes
            .as_ref()
            .map_or(toolgate_tool_sql::DEFAULT_MAX_RESULT_BYTES, |b| {
                *b.get_ref()
            }),
    };
    match *t.kind.get_ref() {
        ToolKind::Builtin => {
            let name = t
                .builtin
                .as_ref()
                .map(Spanned::get_ref)
                .ok_or_else(|| (t.kind.span(), "needs `builtin`".to_owned()))?;
            let b = toolgate_tool_builtin::builtin(*name);
            Ok(Built {
                upstream: None,
                tool: b.tool,
                description: b.description.to_owned(),
                input_schema: b.input_schema,
                output_schema: b.output_schema,
                read_only: b.read_only,
            })
        }
        ToolKind::SqlQuery => {
            let source = source_of(t, sources)?;
            let kind = source.kind();
            Ok(Built {
                upstream: None,
                tool: Arc::new(QueryTool::new(source, max_rows)),
                description: QueryTool::description_for(kind),
                input_schema: QueryTool::input_schema_for(kind),
                output_schema: Some(toolgate_tool_sql::rows_output_schema()),
                read_only: true,
            })
        }
        ToolKind::Http => {
            let at = t.url.as_ref().map_or_else(|| t.kind.span(), Spanned::span);
            let tool =
                HttpTool::new(t).map_err(|e| (at, format!("tool {:?}: {e}", t.name.get_ref())))?;
            Ok(Built {
                upstream: Some(tool.origin().to_owned()),
                tool: Arc::new(tool),
                description: HttpTool::description().to_owned(),
                input_schema: toolgate_config::params_schema(&t.params),
                output_schema: None,
                read_only: t.method.as_ref().is_none_or(|m| {
                    matches!(
                        m.get_ref().to_ascii_uppercase().as_str(),
                        "GET" | "HEAD" | "OPTIONS"
                    )
                }),
            })
        }
        ToolKind::Wasm => build_wasm(t, base_dir),
        ToolKind::Sql => {
            let statement = t
                .statement
                .as_ref()
                .ok_or_else(|| (t.kind.span(), "needs `statement`".to_owned()))?;
            let tool = StatementTool::new(
                source_of(t, sources)?,
                statement.get_ref(),
                &t.params,
                max_rows,
                t.writes(),
            )
            .map_err(|e| {
                (
                    statement.span(),
                    format!("tool {:?}: {e}", t.name.get_ref()),
                )
            })?
            .with_session(
                t.session
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
            Ok(Built {
                upstream: None,
                tool: Arc::new(tool),
                description: format!("Run the SQL statement of tool {}.", t.name.get_ref()),
                input_schema: StatementTool::input_schema(&t.params),
                output_schema: Some(toolgate_tool_sql::rows_output_schema()),
                read_only: !t.writes(),
            })
        }
    }
}

/// A `wasm` tool: its module compiled (or taken from the cache) and checked now, so
/// a broken module is a problem at its line.
#[cfg(feature = "wasm")]
fn build_wasm(t: &ToolConfig, base_dir: &Path) -> Result<Built, Located> {
    use toolgate_tool_wasm::{LoadError, WasmTool};
    let tool = WasmTool::new(t, base_dir).map_err(|e| {
        let at = match (&e, &t.module) {
            (LoadError::OutputSchema(_), _) | (_, None) => t.name.span(),
            (_, Some(m)) => m.span(),
        };
        (at, format!("tool {:?}: {e}", t.name.get_ref()))
    })?;
    Ok(Built {
        upstream: None,
        tool: Arc::new(tool),
        description: WasmTool::description().to_owned(),
        input_schema: WasmTool::input_schema(t),
        output_schema: None,
        read_only: WasmTool::read_only(t),
    })
}

/// Without the `wasm` feature, a `wasm` tool is a config problem at its `kind`.
#[cfg(not(feature = "wasm"))]
fn build_wasm(t: &ToolConfig, _base_dir: &Path) -> Result<Built, Located> {
    Err((
        t.kind.span(),
        format!(
            "tool {:?}: this build has no WebAssembly support (build toolgate with the `wasm` feature)",
            t.name.get_ref()
        ),
    ))
}

fn spec_for(cfg: &Config, t: &ToolConfig, built: Built) -> ToolSpec {
    let destructive = t.destructive.unwrap_or(false);
    let read_only = t.read_only.unwrap_or(built.read_only && !destructive);
    ToolSpec {
        name: t.name.get_ref().clone(),
        description: t.description.clone().unwrap_or(built.description),
        input_schema: built.input_schema,
        output_schema: t.output_schema.clone().or(built.output_schema),
        annotations: Annotations {
            read_only,
            idempotent: t.idempotent.unwrap_or(read_only),
            destructive,
        },
        timeout: Duration::from_millis(
            t.timeout_ms
                .as_ref()
                .map_or(cfg.defaults.timeout_ms, |ms| *ms.get_ref()),
        ),
        max_concurrency: t
            .max_concurrency
            .as_ref()
            .map_or(cfg.defaults.max_concurrency, |n| *n.get_ref()),
        max_queue: t.max_queue.unwrap_or(cfg.defaults.max_queue),
    }
}

fn policies_for(t: &ToolConfig) -> Policies {
    policies_of(t.retry.as_ref(), t.breaker.as_ref())
}

/// The resilience policies of `retry` and `breaker` (of a tool, or of an OpenAPI
/// source for its operations).
pub(crate) fn policies_of(
    retry: Option<&Spanned<toolgate_config::RetryConfig>>,
    breaker: Option<&Spanned<toolgate_config::BreakerConfig>>,
) -> Policies {
    let ms = Duration::from_millis;
    Policies {
        shared_breaker: None,
        retry: retry.map(|r| {
            let r = r.get_ref();
            RetryPolicy {
                max_attempts: r.max_attempts,
                base_delay: ms(r.base_delay_ms),
                max_delay: ms(r.max_delay_ms),
                attempt_timeout: r.attempt_timeout_ms.map(ms),
                budget_ratio: r.budget_percent / 100.0,
                budget_min_per_second: r.budget_min_per_second,
            }
        }),
        breaker: breaker.map(|b| {
            let b = b.get_ref();
            BreakerPolicy {
                window: b.window,
                min_calls: b.min_calls,
                failure_rate: b.failure_rate_percent / 100.0,
                slow_call_duration: ms(b.slow_call_ms),
                slow_call_rate: b.slow_call_rate_percent / 100.0,
                open_duration: ms(b.open_ms),
                half_open_probes: b.half_open_probes,
            }
        }),
    }
}

#[cfg(all(test, not(feature = "wasm")))]
mod wasm_fallback_tests {
    use super::*;

    #[test]
    fn without_the_feature_a_wasm_tool_is_a_config_problem() {
        let text = "[[tools]]\nname = \"w\"\nkind = \"wasm\"\nmodule = \"w.wasm\"\n";
        let loaded = LoadedConfig::from_str("w.toml", text).unwrap_or_else(|e| panic!("{e}"));
        let problems = Registry::from_config(&loaded).err().map(|p| p.to_string());
        let p = problems.unwrap_or_default();
        assert!(p.starts_with("w.toml:3:"), "{p}");
        assert!(p.contains("this build has no WebAssembly support"), "{p}");
    }
}
