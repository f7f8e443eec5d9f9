//! Tool search: a toolset with `search = true` lists two meta-tools instead of its
//! tools, so that an agent with a large catalog reads a handful of schemas rather
//! than all of them:
//!
//! - `search_tools {query, limit?}`: the set's tools the caller may call, ranked by
//!   how well their name, description and annotations match the query's words, each
//!   with its name, description and annotations (no schema);
//! - `describe_tool {name}`: one tool in full (its input and output schemas).
//!
//! The tools themselves are then called by name through the normal path, with every
//! policy of theirs. The meta-tools run in [`crate::exec::run_call`] after its
//! admission checks, so they count against the caller's rate limit and quota, and
//! are logged and audited like any call.

use std::sync::LazyLock;
use std::time::Duration;

use serde_json::{Value, json};
use toolgate_core::{Annotations, ErrorKind, ToolError, ToolSpec};
use toolgate_registry::Registry;

use crate::auth::Principal;

/// The search meta-tool.
pub const SEARCH: &str = "search_tools";
/// The describe meta-tool.
pub const DESCRIBE: &str = "describe_tool";

/// Results a search returns unless asked for fewer or more.
const DEFAULT_LIMIT: usize = 5;
/// Most results a search returns.
const MAX_LIMIT: usize = 25;
/// Longest query taken.
const MAX_QUERY: usize = 500;

static SPECS: LazyLock<[ToolSpec; 2]> = LazyLock::new(|| {
    let hints = Annotations {
        read_only: true,
        idempotent: true,
        destructive: false,
    };
    [
        ToolSpec {
            name: SEARCH.to_owned(),
            description: "Search the tools you may call by words (what you want done, a \
                          name, \"read-only\"). Returns the best matches with their names, \
                          descriptions and hints; call describe_tool for one's arguments, \
                          then call it by name."
                .to_owned(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY,
                              "description": "Words describing the tool wanted."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                              "description": "Most results (default 5)."}
                },
                "required": ["query"],
                "additionalProperties": false
            }),
            output_schema: None,
            annotations: hints,
            timeout: Duration::from_secs(5),
            max_concurrency: 1,
            max_queue: 0,
        },
        ToolSpec {
            name: DESCRIBE.to_owned(),
            description: "Describe one tool you may call: its description, hints and the \
                          JSON Schema of its arguments (and of its output, when it has one)."
                .to_owned(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 64,
                             "description": "The tool's name, as search_tools gave it."}
                },
                "required": ["name"],
                "additionalProperties": false
            }),
            output_schema: None,
            annotations: hints,
            timeout: Duration::from_secs(5),
            max_concurrency: 1,
            max_queue: 0,
        },
    ]
});

/// The meta-tools' specs, as a search set lists them.
#[must_use]
pub fn specs() -> &'static [ToolSpec] {
    SPECS.as_slice()
}

/// The meta-tool named `name`, if it is one.
#[must_use]
pub fn spec(name: &str) -> Option<&'static ToolSpec> {
    SPECS.iter().find(|s| s.name == name)
}

/// Whether `caller` came through a search set and `tool` is one of its meta-tools.
#[must_use]
pub fn is_meta(caller: &Principal, tool: &str) -> bool {
    caller.searches() && spec(tool).is_some()
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// How well `spec` matches the query's `words`: a word equal to a word of the name
/// counts most, a word inside the name next, a word of the description or of the
/// hints (`read`, `only`, `idempotent`, `destructive`) least.
fn score(spec: &ToolSpec, query: &[String]) -> u32 {
    let name = spec.name.to_lowercase();
    let name_words = words(&spec.name);
    let description = words(&spec.description);
    let a = spec.annotations;
    let mut hints = Vec::new();
    if a.read_only {
        hints.extend(["read", "only", "readonly", "safe"]);
    }
    if a.idempotent {
        hints.push("idempotent");
    }
    if a.destructive {
        hints.extend(["destructive", "delete", "write"]);
    }
    query
        .iter()
        .map(|w| {
            let mut s = 0;
            if name_words.iter().any(|n| n == w) {
                s += 6;
            } else if name.contains(w.as_str()) {
                s += 3;
            }
            // A word that stands in the description several times counts up to thrice.
            let hits = description.iter().filter(|d| *d == w).count().min(3);
            s += u32::try_from(hits).unwrap_or(3);
            if s == 0 && description.iter().any(|d| d.starts_with(w.as_str())) {
                s += 1;
            }
            if hints.contains(&w.as_str()) {
                s += 1;
            }
            s
        })
        .sum()
}

fn bad_arguments(message: &str) -> ToolError {
    ToolError::new(ErrorKind::InvalidArguments, message.to_owned())
}

/// Run meta-tool `tool` for `caller` over `registry`.
///
/// # Errors
/// Bad arguments (422), or a tool that is not there for the caller (404).
pub fn call(
    registry: &Registry,
    caller: &Principal,
    tool: &str,
    arguments: &Value,
) -> Result<Value, ToolError> {
    if tool == DESCRIBE {
        let name = arguments
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_arguments("`name` (a string) is required"))?;
        // A tool the caller may not call is not there for it: not found, not forbidden.
        let found = registry
            .get(name)
            .filter(|_| caller.allows(name) && spec(name).is_none());
        let Some(t) = found else {
            return Err(ToolError::new(
                ErrorKind::ToolNotFound,
                format!("no tool named {name:?}"),
            ));
        };
        return Ok(crate::transport::rest::tool_json(t.spec()));
    }
    let query = arguments
        .get("query")
        .and_then(Value::as_str)
        .filter(|q| !q.trim().is_empty() && q.len() <= MAX_QUERY)
        .ok_or_else(|| bad_arguments("`query` (1 to 500 characters) is required"))?;
    let limit = match arguments.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| bad_arguments("`limit` must be an integer from 1 to 25"))?,
    };
    let query = words(query);
    let mut ranked: Vec<(u32, std::sync::Arc<toolgate_registry::RegisteredTool>)> = registry
        .tools()
        .filter(|t| caller.allows(&t.spec().name))
        .map(|t| (score(t.spec(), &query), t))
        .filter(|(s, _)| *s > 0)
        .collect();
    let matches = ranked.len();
    ranked.sort_by(|(a, x), (b, y)| b.cmp(a).then_with(|| x.spec().name.cmp(&y.spec().name)));
    let tools: Vec<Value> = ranked
        .into_iter()
        .take(limit)
        .map(|(_, t)| {
            let s = t.spec();
            json!({"name": s.name, "description": s.description, "annotations": s.annotations})
        })
        .collect();
    Ok(json!({"tools": tools, "matches": matches}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, description: &str, read_only: bool) -> ToolSpec {
        ToolSpec {
            name: name.to_owned(),
            description: description.to_owned(),
            input_schema: json!({"type": "object"}),
            output_schema: None,
            annotations: Annotations {
                read_only,
                idempotent: read_only,
                destructive: false,
            },
            timeout: Duration::from_secs(1),
            max_concurrency: 1,
            max_queue: 0,
        }
    }

    #[test]
    fn names_count_most_then_descriptions_then_hints() {
        let q = words("refund invoice");
        let by_name = score(&spec("refund_invoice", "Give money back.", false), &q);
        let by_description = score(&spec("pay_back", "Refund an invoice.", false), &q);
        let nothing = score(&spec("list_users", "Lists users.", true), &q);
        assert!(
            by_name > by_description && by_description > 0,
            "{by_name} {by_description}"
        );
        assert_eq!(nothing, 0);
        let q = words("read-only users");
        assert!(
            score(&spec("list_users", "Lists users.", true), &q)
                > score(&spec("list_users", "Lists users.", false), &q)
        );
    }
}
