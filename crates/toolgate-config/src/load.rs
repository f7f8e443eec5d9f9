//! Loading: parse, validate, and report every problem with file, line and column.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use secrecy::SecretString;

use crate::keys::{KeyHash, ScopePattern};
use crate::model::{Config, ParamType, SourceKind, ToolConfig, ToolKind};

/// The embedded demo configuration served when no `--config` is given.
pub const DEMO_CONFIG: &str = include_str!("demo.toml");

/// Tool names that would collide with fixed routes.
const RESERVED_NAMES: &[&str] = &["execute"];

/// One thing wrong with a config file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (or `<demo>` for the embedded one).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// A validated config plus what is needed to point at its lines later (the registry
/// reports build problems, such as a SQL statement that does not prepare, through it).
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The configuration.
    pub config: Config,
    /// The operator key from the environment, if any.
    pub operator_key: Option<SecretString>,
    file: String,
    source: Arc<str>,
}

impl LoadedConfig {
    /// The embedded demo configuration.
    ///
    /// # Errors
    /// Only if the embedded file were broken, which a unit test rules out.
    pub fn demo() -> Result<Self, Problems> {
        Self::from_str("<demo>", DEMO_CONFIG)
    }

    /// Read and validate a file.
    ///
    /// # Errors
    /// The file cannot be read, or has problems.
    pub fn from_file(path: &Path) -> Result<Self, Problems> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problems(vec![Problem {
                file: file.clone(),
                line: 0,
                column: 0,
                message: format!("cannot read the file: {e}"),
            }])
        })?;
        Self::from_str(&file, &text)
    }

    /// Parse and validate `text`, naming it `file` in problems.
    ///
    /// # Errors
    /// Every problem found.
    pub fn from_str(file: &str, text: &str) -> Result<Self, Problems> {
        let mut loaded = Self {
            config: Config::default(),
            operator_key: crate::env::operator_key(),
            file: file.to_owned(),
            source: Arc::from(text),
        };
        match toml::from_str::<Config>(text) {
            Ok(config) => loaded.config = config,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                return Err(Problems(vec![loaded.problem(span, e.message().to_owned())]));
            }
        }
        let problems = validate(&loaded);
        if problems.is_empty() {
            Ok(loaded)
        } else {
            Err(Problems(problems))
        }
    }

    /// The file name used in problems.
    #[must_use]
    pub fn file(&self) -> &str {
        &self.file
    }

    /// A problem located at byte `span` of the source.
    #[must_use]
    pub fn problem(&self, span: Range<usize>, message: String) -> Problem {
        let (line, column) = line_col(&self.source, span.start);
        Problem {
            file: self.file.clone(),
            line,
            column,
            message,
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Whether `name` is a valid tool name.
#[must_use]
pub fn is_valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

// === validation ===

struct Checker<'a> {
    loaded: &'a LoadedConfig,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn report(&mut self, span: Range<usize>, message: impl Into<String>) {
        let p = self.loaded.problem(span, message.into());
        self.problems.push(p);
    }
}

fn validate(loaded: &LoadedConfig) -> Vec<Problem> {
    let mut c = Checker {
        loaded,
        problems: Vec::new(),
    };
    let cfg = &loaded.config;
    check_server(&mut c, cfg);
    check_keys(&mut c, cfg);
    check_sources(&mut c, cfg);
    let mut seen = HashSet::new();
    for tool in &cfg.tools {
        check_tool(&mut c, cfg, tool, &mut seen);
    }
    c.problems
}

fn check_server(c: &mut Checker<'_>, cfg: &Config) {
    let s = &cfg.server;
    if s.listen.get_ref().parse::<std::net::SocketAddr>().is_err() {
        c.report(
            s.listen.span(),
            format!("listen address {:?} is not IP:PORT", s.listen.get_ref()),
        );
    }
    for (value, what) in [
        (s.body_limit_bytes, "body_limit_bytes"),
        (s.json_max_depth, "json_max_depth"),
        (s.max_batch_calls, "max_batch_calls"),
    ] {
        if value == 0 {
            c.report(0..0, format!("[server] {what} must be at least 1"));
        }
    }
    let d = &cfg.defaults;
    if d.timeout_ms == 0 || d.max_concurrency == 0 {
        c.report(
            0..0,
            "[defaults] timeout_ms and max_concurrency must be at least 1",
        );
    }
}

fn check_keys(c: &mut Checker<'_>, cfg: &Config) {
    let mut names = HashSet::new();
    for key in &cfg.keys {
        if !names.insert(key.name.get_ref().clone()) {
            c.report(
                key.name.span(),
                format!("duplicate key name {:?}", key.name.get_ref()),
            );
        }
        if let Err(e) = KeyHash::parse(key.hash.get_ref().as_str()) {
            c.report(key.hash.span(), e);
        }
        if key.scopes.get_ref().is_empty() {
            c.report(
                key.scopes.span(),
                "a key needs at least one scope (`*` for all tools)",
            );
        }
        for scope in key.scopes.get_ref() {
            if let Err(e) = ScopePattern::parse(scope) {
                c.report(key.scopes.span(), e);
            }
        }
    }
}

fn check_sources(c: &mut Checker<'_>, cfg: &Config) {
    for (name, source) in &cfg.sources {
        let s = source.get_ref();
        match s.kind {
            SourceKind::Sqlite => match (&s.path, s.demo) {
                (Some(p), true) => c.report(
                    p.span(),
                    format!("source {name:?}: give either `path` or `demo = true`, not both"),
                ),
                (None, false) => c.report(
                    source.span(),
                    format!("source {name:?}: a sqlite source needs `path` (or `demo = true`)"),
                ),
                _ => {}
            },
        }
        if s.pool_size == 0 || s.pool_size > 256 {
            c.report(
                source.span(),
                format!("source {name:?}: pool_size must be 1..=256"),
            );
        }
    }
}

fn check_tool(c: &mut Checker<'_>, cfg: &Config, t: &ToolConfig, seen: &mut HashSet<String>) {
    let name = t.name.get_ref();
    let at = t.name.span();
    if !is_valid_tool_name(name) {
        c.report(
            at.clone(),
            format!("tool name {name:?} must be 1 to 64 of A-Z a-z 0-9 _ -"),
        );
    }
    if RESERVED_NAMES.contains(&name.as_str()) {
        c.report(at.clone(), format!("tool name {name:?} is reserved"));
    }
    if !seen.insert(name.clone()) {
        c.report(at.clone(), format!("duplicate tool name {name:?}"));
    }
    if let Some(ms) = &t.timeout_ms
        && (*ms.get_ref() == 0 || *ms.get_ref() > 86_400_000)
    {
        c.report(ms.span(), "timeout_ms must be 1..=86400000 (24 h)");
    }
    if let Some(n) = &t.max_concurrency
        && *n.get_ref() == 0
    {
        c.report(n.span(), "max_concurrency must be at least 1");
    }
    if let Some(schema) = &t.output_schema
        && !schema.is_object()
    {
        c.report(
            at.clone(),
            format!("tool {name:?}: output_schema must be a table"),
        );
    }
    check_kind_fields(c, cfg, t);
}

fn check_kind_fields(c: &mut Checker<'_>, cfg: &Config, t: &ToolConfig) {
    let name = t.name.get_ref();
    let kind = *t.kind.get_ref();
    let kind_at = t.kind.span();
    let misplaced =
        |field: &str, kinds: &str| format!("tool {name:?}: `{field}` is only for {kinds} tools");
    if kind != ToolKind::Builtin && t.builtin.is_some() {
        c.report(kind_at.clone(), misplaced("builtin", "builtin"));
    }
    if kind == ToolKind::Builtin {
        if t.builtin.is_none() {
            c.report(
                kind_at.clone(),
                format!("tool {name:?}: a builtin tool needs `builtin`"),
            );
        }
        for (present, field) in [
            (t.source.is_some(), "source"),
            (t.max_rows.is_some(), "max_rows"),
        ] {
            if present {
                c.report(kind_at.clone(), misplaced(field, "sql and sql_query"));
            }
        }
    }
    if kind != ToolKind::Sql {
        if t.statement.is_some() {
            c.report(kind_at.clone(), misplaced("statement", "sql"));
        }
        if !t.params.is_empty() {
            c.report(kind_at.clone(), misplaced("params", "sql"));
        }
        if t.destructive == Some(true) {
            c.report(
                kind_at.clone(),
                format!("tool {name:?}: only sql tools may be destructive"),
            );
        }
    }
    if matches!(kind, ToolKind::Sql | ToolKind::SqlQuery) {
        match &t.source {
            None => c.report(kind_at.clone(), format!("tool {name:?}: needs `source`")),
            Some(s) if !cfg.sources.contains_key(s.get_ref()) => c.report(
                s.span(),
                format!("tool {name:?}: unknown source {:?}", s.get_ref()),
            ),
            Some(_) => {}
        }
        if let Some(rows) = &t.max_rows
            && (*rows.get_ref() == 0 || *rows.get_ref() > 100_000)
        {
            c.report(rows.span(), "max_rows must be 1..=100000");
        }
    }
    if kind == ToolKind::Sql {
        if t.statement.is_none() {
            c.report(
                kind_at,
                format!("tool {name:?}: a sql tool needs `statement`"),
            );
        }
        check_params(c, t);
    }
}

fn check_params(c: &mut Checker<'_>, t: &ToolConfig) {
    let mut names = HashSet::new();
    for p in &t.params {
        let pname = p.name.get_ref();
        let ok = !pname.is_empty()
            && pname
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            && !pname.starts_with(|ch: char| ch.is_ascii_digit());
        if !ok {
            c.report(
                p.name.span(),
                format!("parameter name {pname:?} must be an identifier"),
            );
        }
        if !names.insert(pname.clone()) {
            c.report(p.name.span(), format!("duplicate parameter {pname:?}"));
        }
        let numeric = matches!(p.ty, ParamType::Integer | ParamType::Number);
        if !numeric && (p.minimum.is_some() || p.maximum.is_some()) {
            c.report(
                p.name.span(),
                format!("parameter {pname:?}: minimum/maximum need a numeric type"),
            );
        }
        if p.ty != ParamType::String && p.max_length.is_some() {
            c.report(
                p.name.span(),
                format!("parameter {pname:?}: max_length needs type string"),
            );
        }
        if let Some(d) = &p.default {
            let fits = match p.ty {
                ParamType::String => d.is_string(),
                ParamType::Integer => d.is_i64(),
                ParamType::Number => d.is_number(),
                ParamType::Boolean => d.is_boolean(),
            };
            if !fits {
                c.report(
                    p.name.span(),
                    format!(
                        "parameter {pname:?}: default {d} is not of type {}",
                        p.ty.json_type()
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_config_is_valid() {
        let loaded = LoadedConfig::demo().unwrap_or_else(|e| panic!("{e}"));
        assert!(loaded.config.tools.len() >= 5);
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = LoadedConfig::from_str("a.toml", "[server]\nlisten = \n").err();
        let p = &err.unwrap_or_else(|| panic!("expected an error")).0[0];
        assert_eq!((p.file.as_str(), p.line), ("a.toml", 2));
    }

    #[test]
    fn every_semantic_problem_is_reported_with_its_line() {
        let text = r#"
[[tools]]
name = "execute"
kind = "builtin"
builtin = "echo"

[[tools]]
name = "q"
kind = "sql_query"
source = "nowhere"

[[keys]]
name = "ci"
hash = "plain-text-key"
scopes = ["echo"]
"#;
        let err = LoadedConfig::from_str("b.toml", text).err();
        let problems = err.unwrap_or_else(|| panic!("expected problems")).0;
        let lines: Vec<_> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![14, 3, 10], "{problems:?}");
        assert!(problems[1].message.contains("reserved"));
        assert!(problems[2].message.contains("unknown source"));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = LoadedConfig::from_str("c.toml", "[server]\nlisen = \"x\"\n").err();
        let p = &err.unwrap_or_else(|| panic!("expected an error")).0[0];
        assert_eq!(p.line, 2);
        assert!(p.message.contains("lisen"), "{}", p.message);
    }
}
