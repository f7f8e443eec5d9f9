//! [`Content`]: the resources, resource templates and prompts of one config
//! generation, built (files read, templates parsed) with the tools and swapped with
//! them on reload. Transports decide who sees what (by [`Resource::scope`] and the
//! like) and how it is encoded; this module only holds it.
//!
//! Besides what the config declares, two kinds of resources are derived:
//!
//! - each SQL source's schema (`toolgate://sources/NAME/schema`: tables, columns,
//!   types), read from the database when asked, for an agent to read before it
//!   writes a query; it is visible to a caller that may call a tool on the source;
//! - each tool's documentation (`toolgate://tools/NAME`), visible to whoever may
//!   call the tool.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use toolgate_config::content::{CompletionConfig, IconConfig, PromptRole};
use toolgate_config::template::Template;
use toolgate_config::{LoadedConfig, Problem, SourceKind};
use toolgate_core::{CallContext, Tool, ToolError};
use toolgate_tool_sql::{QueryTool, Source};

/// Largest file a resource or prompt message may read (whole, at load).
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// How long reading a source's schema may take.
const SCHEMA_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows a schema read returns at most (one per column).
const SCHEMA_MAX_ROWS: usize = 10_000;

/// Everything besides tools.
#[derive(Debug, Default)]
pub struct Content {
    /// Fixed resources, by URI.
    pub resources: Vec<Resource>,
    /// Resource templates, by name.
    pub templates: Vec<ResourceTemplate>,
    /// Prompts, by name.
    pub prompts: Vec<Prompt>,
    /// The SQL sources whose schema is a resource, by name.
    pub schemas: Vec<SchemaResource>,
    /// Titles and icons of the configured tools that have them, by tool name.
    pub tool_meta: BTreeMap<String, ToolMeta>,
}

/// What MCP shows of a tool besides its spec.
#[derive(Debug, Clone, Default, Hash)]
pub struct ToolMeta {
    /// A title for people.
    pub title: Option<String>,
    /// Its icons.
    pub icons: Vec<IconConfig>,
}

/// A resource's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Body {
    /// Text.
    Text(String),
    /// Anything else (sent as base64).
    Blob(Vec<u8>),
}

/// A fixed resource.
#[derive(Debug)]
pub struct Resource {
    /// Its config name.
    pub name: String,
    /// Its URI.
    pub uri: String,
    /// A title for people.
    pub title: Option<String>,
    /// What it holds.
    pub description: Option<String>,
    /// Its media type.
    pub mime_type: String,
    /// Its content.
    pub body: Body,
    /// Its icons.
    pub icons: Vec<IconConfig>,
    /// What a key's scopes must match.
    pub scope: String,
}

/// How a template's resources are read.
#[derive(Debug)]
pub enum TemplateRead {
    /// A text template over the URI's variables.
    Text(Template),
    /// A tool called with the variables as arguments.
    Tool(String),
}

/// Where completion values come from.
#[derive(Debug, Clone)]
pub enum Completion {
    /// Fixed values, filtered by prefix.
    Values(Vec<String>),
    /// A tool called with `{argument: prefix}`.
    Tool {
        /// The tool.
        tool: String,
        /// Its argument that gets the prefix.
        argument: String,
    },
}

impl Completion {
    fn from_config(c: &CompletionConfig) -> Self {
        match &c.tool {
            Some(tool) => Completion::Tool {
                tool: tool.clone(),
                argument: c.argument.clone().unwrap_or_else(|| "prefix".to_owned()),
            },
            None => Completion::Values(c.values.clone()),
        }
    }

    /// The values a tool's output offers: a string array, or the first column of
    /// a SQL result's rows, or the strings of an array of objects' first field.
    #[must_use]
    pub fn values_of(output: &Value) -> Vec<String> {
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        };
        let rows = output.get("rows").unwrap_or(output);
        rows.as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| match item {
                        Value::Array(row) => row.first().and_then(text),
                        Value::Object(map) => map.values().next().and_then(text),
                        other => text(other),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A resource template.
#[derive(Debug)]
pub struct ResourceTemplate {
    /// Its config name.
    pub name: String,
    /// The URI template as written.
    pub uri_template: String,
    /// The URI template parsed.
    pub uri: Template,
    /// A title for people.
    pub title: Option<String>,
    /// What its resources hold.
    pub description: Option<String>,
    /// Their media type.
    pub mime_type: String,
    /// How to read one.
    pub read: TemplateRead,
    /// Completions, by variable.
    pub complete: BTreeMap<String, Completion>,
    /// Its icons.
    pub icons: Vec<IconConfig>,
    /// What a key's scopes must match.
    pub scope: String,
}

/// One argument of a prompt.
#[derive(Debug)]
pub struct PromptArgument {
    /// Its name.
    pub name: String,
    /// A title for people.
    pub title: Option<String>,
    /// What to give.
    pub description: Option<String>,
    /// Whether it must be given.
    pub required: bool,
    /// Its completions.
    pub complete: Option<Completion>,
}

/// What a prompt message holds.
#[derive(Debug)]
pub enum Part {
    /// Text from a template.
    Text(Template),
    /// An image.
    Image {
        /// Its media type.
        mime_type: String,
        /// Its bytes.
        data: Vec<u8>,
    },
    /// Audio.
    Audio {
        /// Its media type.
        mime_type: String,
        /// Its bytes.
        data: Vec<u8>,
    },
    /// A resource, embedded when the prompt is got.
    Resource(Template),
}

/// One message of a prompt.
#[derive(Debug)]
pub struct PromptMessage {
    /// Who speaks it.
    pub role: PromptRole,
    /// What it holds.
    pub part: Part,
}

/// A prompt.
#[derive(Debug)]
pub struct Prompt {
    /// Its name.
    pub name: String,
    /// A title for people.
    pub title: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// Its arguments.
    pub arguments: Vec<PromptArgument>,
    /// Its messages.
    pub messages: Vec<PromptMessage>,
    /// Its icons.
    pub icons: Vec<IconConfig>,
    /// What a key's scopes must match.
    pub scope: String,
}

/// A SQL source's schema as a resource.
pub struct SchemaResource {
    /// The source's name.
    pub source: String,
    /// `toolgate://sources/NAME/schema`.
    pub uri: String,
    /// The tools that run on the source: a caller that may call one sees it.
    pub tools: Vec<String>,
    query: Arc<QueryTool>,
    sql: &'static str,
}

impl std::fmt::Debug for SchemaResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaResource")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The introspection query of each dialect: one row per column, as
/// `(table, column, type, nullable)`, in table then column order.
fn schema_sql(kind: SourceKind) -> Option<&'static str> {
    match kind {
        SourceKind::Sqlite => Some(
            "SELECT m.name, p.name, p.type, CASE WHEN p.\"notnull\" = 0 THEN 1 ELSE 0 END \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%' \
             ORDER BY m.name, p.cid",
        ),
        SourceKind::Postgres => Some(
            "SELECT CASE WHEN table_schema = current_schema() THEN table_name::text \
             ELSE table_schema || '.' || table_name END, column_name::text, data_type::text, \
             CASE WHEN is_nullable = 'YES' THEN 1 ELSE 0 END \
             FROM information_schema.columns \
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema') \
             ORDER BY table_schema, table_name, ordinal_position",
        ),
        SourceKind::Mysql => Some(
            "SELECT table_name, column_name, column_type, \
             CASE WHEN is_nullable = 'YES' THEN 1 ELSE 0 END \
             FROM information_schema.columns WHERE table_schema = DATABASE() \
             ORDER BY table_name, ordinal_position",
        ),
        SourceKind::Openapi | SourceKind::Mcp => None,
    }
}

impl SchemaResource {
    /// Read the schema now: `{"source", "dialect", "tables": [{"name", "columns":
    /// [{"name", "type", "nullable"}]}]}`.
    ///
    /// # Errors
    /// The database's error, or the timeout.
    pub async fn read(&self) -> Result<Value, ToolError> {
        let deadline = tokio::time::Instant::now() + SCHEMA_TIMEOUT;
        let ctx = CallContext::new(deadline);
        let cancel = ctx.cancel.clone();
        let run = self.query.call(json!({ "query": self.sql }), ctx);
        let output = match tokio::time::timeout_at(deadline, run).await {
            Ok(result) => result?,
            Err(_) => {
                cancel.cancel();
                return Err(ToolError::new(
                    toolgate_core::ErrorKind::Timeout,
                    "reading the schema took too long",
                ));
            }
        };
        let mut tables: Vec<(String, Vec<Value>)> = Vec::new();
        for row in output["rows"].as_array().into_iter().flatten() {
            let cell = |i: usize| row.get(i).and_then(Value::as_str).unwrap_or_default();
            let table = cell(0).to_owned();
            let column = json!({
                "name": cell(1),
                "type": cell(2),
                "nullable": row.get(3).and_then(Value::as_i64) == Some(1),
            });
            match tables.last_mut() {
                Some((name, columns)) if *name == table => columns.push(column),
                _ => tables.push((table, vec![column])),
            }
        }
        Ok(json!({
            "source": self.source,
            "tables": tables
                .into_iter()
                .map(|(name, columns)| json!({"name": name, "columns": columns}))
                .collect::<Vec<_>>(),
            "truncated": output["truncated"],
        }))
    }
}

/// The URI of a tool's documentation.
#[must_use]
pub fn tool_doc_uri(tool: &str) -> String {
    format!("toolgate://tools/{tool}")
}

/// The tool named by a documentation URI.
#[must_use]
pub fn tool_of_doc_uri(uri: &str) -> Option<&str> {
    uri.strip_prefix("toolgate://tools/")
        .filter(|t| toolgate_config::load::is_valid_tool_name(t))
}

/// The media type of a file, from its extension.
fn guess(path: &str) -> String {
    mime_guess::from_path(path)
        .first_raw()
        .unwrap_or("application/octet-stream")
        .to_owned()
}

/// Whether content of `mime` is text.
#[must_use]
pub fn is_textual(mime: &str) -> bool {
    let essence = mime.split(';').next().unwrap_or_default().trim();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence,
            "application/json"
                | "application/xml"
                | "application/yaml"
                | "application/toml"
                | "application/javascript"
                | "application/sql"
        )
}

fn read_file(base: &Path, path: &str) -> Result<Vec<u8>, String> {
    let full = base.join(path);
    let meta =
        std::fs::metadata(&full).map_err(|e| format!("cannot read {}: {e}", full.display()))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{} is {} bytes; the most is {MAX_FILE_BYTES}",
            full.display(),
            meta.len()
        ));
    }
    std::fs::read(&full).map_err(|e| format!("cannot read {}: {e}", full.display()))
}

/// Build the content of a validated config. `sources` are the opened SQL sources
/// and `tools_on` the tools that run on each.
pub(crate) fn build(
    loaded: &LoadedConfig,
    sources: &BTreeMap<String, Source>,
    problems: &mut Vec<Problem>,
) -> Content {
    let cfg = &loaded.config;
    let base = Path::new(loaded.file()).parent().unwrap_or(Path::new(""));
    let mut content = Content::default();
    for r in &cfg.resources {
        let name = r.name.get_ref().clone();
        let uri = r.uri.as_ref().map_or_else(
            || format!("toolgate://resources/{name}"),
            |u| u.get_ref().clone(),
        );
        let (mime_type, body) = match (&r.text, &r.file) {
            (Some(text), _) => (
                r.mime_type
                    .clone()
                    .unwrap_or_else(|| "text/plain".to_owned()),
                Body::Text(text.clone()),
            ),
            (None, Some(file)) => {
                let mime = r.mime_type.clone().unwrap_or_else(|| guess(file.get_ref()));
                match read_file(base, file.get_ref()) {
                    Ok(bytes) if is_textual(&mime) => match String::from_utf8(bytes) {
                        Ok(text) => (mime, Body::Text(text)),
                        Err(_) => {
                            problems.push(loaded.problem(
                                file.span(),
                                format!("resource {name:?}: the file is not UTF-8 text, but its media type {mime:?} is textual; set mime_type"),
                            ));
                            continue;
                        }
                    },
                    Ok(bytes) => (mime, Body::Blob(bytes)),
                    Err(e) => {
                        problems
                            .push(loaded.problem(file.span(), format!("resource {name:?}: {e}")));
                        continue;
                    }
                }
            }
            // Validation refused it.
            (None, None) => continue,
        };
        content.resources.push(Resource {
            icons: r.icons.clone(),
            scope: r.scope.clone().unwrap_or_else(|| name.clone()),
            name,
            uri,
            title: r.title.clone(),
            description: r.description.clone(),
            mime_type,
            body,
        });
    }
    content.resources.sort_by(|a, b| a.uri.cmp(&b.uri));
    for t in &cfg.resource_templates {
        let name = t.name.get_ref().clone();
        let Ok(uri) = Template::parse(t.uri_template.get_ref()) else {
            continue;
        };
        let (read, default_mime) = match (&t.text, &t.tool) {
            (Some(text), _) => match Template::parse(text) {
                Ok(tpl) => (TemplateRead::Text(tpl), "text/plain"),
                Err(_) => continue,
            },
            (None, Some(tool)) => (
                TemplateRead::Tool(tool.get_ref().clone()),
                "application/json",
            ),
            (None, None) => continue,
        };
        content.templates.push(ResourceTemplate {
            icons: t.icons.clone(),
            scope: t.scope.clone().unwrap_or_else(|| name.clone()),
            name,
            uri_template: t.uri_template.get_ref().clone(),
            uri,
            title: t.title.clone(),
            description: t.description.clone(),
            mime_type: t
                .mime_type
                .clone()
                .unwrap_or_else(|| default_mime.to_owned()),
            read,
            complete: t
                .complete
                .iter()
                .map(|(var, c)| (var.clone(), Completion::from_config(c.get_ref())))
                .collect(),
        });
    }
    content.templates.sort_by(|a, b| a.name.cmp(&b.name));
    for p in &cfg.prompts {
        let name = p.name.get_ref().clone();
        let mut messages = Vec::new();
        for m in &p.messages {
            let v = m.get_ref();
            let media = |file: &str| -> Result<(String, Vec<u8>), String> {
                let mime = v.mime_type.clone().unwrap_or_else(|| guess(file));
                read_file(base, file).map(|bytes| (mime, bytes))
            };
            let part = if let Some(text) = &v.text {
                Template::parse(text).map(Part::Text)
            } else if let Some(uri) = &v.resource {
                Template::parse(uri).map(Part::Resource)
            } else if let Some(file) = &v.image {
                media(file).map(|(mime_type, data)| Part::Image { mime_type, data })
            } else if let Some(file) = &v.audio {
                media(file).map(|(mime_type, data)| Part::Audio { mime_type, data })
            } else {
                continue;
            };
            match part {
                Ok(part) => messages.push(PromptMessage { role: v.role, part }),
                Err(e) => problems.push(loaded.problem(m.span(), format!("prompt {name:?}: {e}"))),
            }
        }
        content.prompts.push(Prompt {
            icons: p.icons.clone(),
            scope: p.scope.clone().unwrap_or_else(|| name.clone()),
            name,
            title: p.title.clone(),
            description: p.description.clone(),
            arguments: p
                .arguments
                .iter()
                .map(|a| PromptArgument {
                    name: a.name.clone(),
                    title: a.title.clone(),
                    description: a.description.clone(),
                    required: a.required,
                    complete: a
                        .complete
                        .as_ref()
                        .map(|c| Completion::from_config(c.get_ref())),
                })
                .collect(),
            messages,
        });
    }
    content.prompts.sort_by(|a, b| a.name.cmp(&b.name));
    for t in cfg
        .tools
        .iter()
        .filter(|t| t.title.is_some() || !t.icons.is_empty())
    {
        content.tool_meta.insert(
            t.name.get_ref().clone(),
            ToolMeta {
                title: t.title.clone(),
                icons: t.icons.clone(),
            },
        );
    }
    for (name, source) in sources {
        let Some(sql) = schema_sql(source.kind()) else {
            continue;
        };
        let tools = cfg
            .tools
            .iter()
            .filter(|t| t.source.as_ref().is_some_and(|s| s.get_ref() == name))
            .map(|t| t.name.get_ref().clone())
            .collect();
        content.schemas.push(SchemaResource {
            source: name.clone(),
            uri: format!("toolgate://sources/{name}/schema"),
            tools,
            query: Arc::new(QueryTool::new(source.clone(), SCHEMA_MAX_ROWS)),
            sql,
        });
    }
    content
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_values_come_from_rows_arrays_and_objects() {
        let sql =
            json!({"columns": ["city"], "rows": [["Paris"], ["Park"], [null]], "truncated": false});
        assert_eq!(Completion::values_of(&sql), ["Paris", "Park"]);
        assert_eq!(Completion::values_of(&json!(["a", "b"])), ["a", "b"]);
        assert_eq!(Completion::values_of(&json!([{"v": 1}])), ["1"]);
        assert!(Completion::values_of(&json!("x")).is_empty());
    }

    #[test]
    fn textual_media_types() {
        assert!(is_textual("text/markdown; charset=utf-8"));
        assert!(is_textual("application/json"));
        assert!(is_textual("application/problem+json"));
        assert!(!is_textual("image/png"));
        assert!(!is_textual("application/octet-stream"));
    }
}
