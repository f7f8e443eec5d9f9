//! The tool catalog as MCP sees it: one [`ToolSpec`] becomes one MCP `Tool`, pages
//! of them answer `tools/list`, and a fingerprint of the whole catalog tells whether
//! a reload changed anything a client should re-list.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::model::{JsonObject, ListToolsResult, Tool, ToolAnnotations};
use serde_json::Value;
use toolgate_core::ToolSpec;
use toolgate_registry::Registry;
use toolgate_registry::content::ToolMeta;

use crate::auth::Principal;
use crate::transport::rest::tool_json;

/// The MCP description of a tool, with its configured title and icons.
pub(super) fn to_mcp_with(spec: &ToolSpec, meta: Option<&ToolMeta>) -> Tool {
    let mut tool = to_mcp(spec);
    if let Some(meta) = meta {
        tool.title.clone_from(&meta.title);
        tool.icons = super::content::icons(&meta.icons);
    }
    tool
}

/// The MCP description of a tool.
pub(super) fn to_mcp(spec: &ToolSpec) -> Tool {
    let input = match &spec.input_schema {
        Value::Object(map) => map.clone(),
        // The registry compiles every input schema at start; a non-object one would
        // be a bug there. MCP insists on an object, so say "any object" rather than lie.
        _ => JsonObject::from_iter([("type".to_owned(), Value::from("object"))]),
    };
    let a = spec.annotations;
    let mut tool = Tool::new(spec.name.clone(), spec.description.clone(), Arc::new(input))
        .with_annotations(
            ToolAnnotations::new()
                .read_only(a.read_only)
                .destructive(a.destructive)
                .idempotent(a.idempotent),
        );
    if let Some(schema) = object_output_schema(spec) {
        tool = tool.with_raw_output_schema(Arc::new(schema.clone()));
    }
    tool
}

/// The tool's output schema, when MCP can carry it: `outputSchema` must describe an
/// object (`structuredContent` is an object), so any other schema is left out and the
/// output travels as text only.
pub(super) fn object_output_schema(spec: &ToolSpec) -> Option<&JsonObject> {
    match &spec.output_schema {
        Some(Value::Object(map)) if map.get("type").and_then(Value::as_str) == Some("object") => {
            Some(map)
        }
        _ => None,
    }
}

/// One page of the tools `caller` may call, after `cursor`.
///
/// The cursor is the hex of the last name on the previous page. Tools are kept sorted
/// by name, so a page follows on correctly even when a reload added or removed tools
/// between two pages.
///
/// # Errors
/// `invalid_params` for a cursor this server did not make.
pub(super) fn page(
    registry: &Registry,
    caller: &Principal,
    cursor: Option<&str>,
    size: usize,
) -> Result<ListToolsResult, ErrorData> {
    let after = cursor.map(decode_cursor).transpose()?;
    if caller.searches() {
        let tools: Vec<Tool> = crate::search::specs().iter().map(to_mcp).collect();
        return Ok(cacheable(ListToolsResult::with_all_items(tools)));
    }
    let mut visible = registry
        .tools()
        .filter(|t| caller.allows(&t.spec().name))
        .filter(|t| after.as_deref().is_none_or(|a| t.spec().name.as_str() > a));
    let size = size.max(1);
    let content = registry.content();
    let tools: Vec<Tool> = visible
        .by_ref()
        .take(size)
        .map(|t| to_mcp_with(t.spec(), content.tool_meta.get(&t.spec().name)))
        .collect();
    let mut result = ListToolsResult::with_all_items(tools);
    if visible.next().is_some() {
        result.next_cursor = result.tools.last().map(|t| hex::encode(t.name.as_bytes()));
    }
    Ok(cacheable(result))
}

/// A listing with its freshness: private (it depends on the key), and fresh for
/// [`super::content::LIST_TTL_MS`] (reloads send `list_changed` to listeners).
fn cacheable(result: ListToolsResult) -> ListToolsResult {
    result
        .with_ttl_ms(super::content::LIST_TTL_MS)
        .with_cache_scope(rmcp::model::CacheScope::Private)
}

fn decode_cursor(cursor: &str) -> Result<String, ErrorData> {
    hex::decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            ErrorData::invalid_params("invalid cursor: pass back a nextCursor as it came", None)
        })
}

/// A digest of every tool's public description: equal digests mean a client's
/// listing is still right, so a reload that changed nothing sends no notification.
pub(super) fn fingerprint(registry: &Registry) -> u64 {
    let mut hasher = DefaultHasher::new();
    for tool in registry.tools() {
        tool_json(tool.spec()).to_string().hash(&mut hasher);
    }
    for (name, meta) in &registry.content().tool_meta {
        (name, meta).hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(
            decode_cursor(&hex::encode("run_x")).ok().as_deref(),
            Some("run_x")
        );
        assert!(decode_cursor("not hex").is_err());
        assert!(decode_cursor("ff").is_err());
    }
}
