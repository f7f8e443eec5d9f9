//! Resources, resource templates, prompts and completion, as MCP sees them: the
//! registry's [`Content`] filtered by the caller's scopes (an entry outside them is
//! absent: not listed, and "not found" when asked for), and encoded with rmcp's
//! types.
//!
//! Reading a tool-backed template, and completing from a tool, are calls of that
//! tool by the caller through [`run_call`]: scopes, rate limit, quotas, deadline,
//! bulkhead, log line and audit record apply as to any call.

use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rmcp::ErrorData;
use rmcp::model::{
    CacheScope, CompleteRequestParams, CompleteResult, CompletionInfo, ContentBlock,
    GetPromptRequestParams, GetPromptResult, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, Prompt, PromptArgument, PromptMessage, ReadResourceResult, Reference,
    Resource, ResourceContents, ResourceTemplate, Role,
};
use serde_json::{Value, json};
use toolgate_config::content::PromptRole;
use toolgate_core::ProgressSink;
use toolgate_registry::content::{Body, Completion, Content, Part, TemplateRead, tool_of_doc_uri};
use toolgate_registry::{Invocation, Transport};

use super::RequestScope;
use super::reply::tool_failure;
use crate::AppState;
use crate::auth::Principal;
use crate::exec::run_call;
use crate::transport::rest::tool_json;

/// How long a client may treat a listing as fresh. Listings change only on reload,
/// which clients that listen hear about; they differ per key, so they are private.
pub(super) const LIST_TTL_MS: u64 = 30_000;

/// The URI template of the tools' documentation.
const TOOL_DOCS: &str = "toolgate://tools/{name}";

/// Values a completion answers at most (MCP's limit).
const MAX_COMPLETIONS: usize = CompletionInfo::MAX_VALUES;

/// MCP's icons of configured ones (`None` when there are none).
pub(super) fn icons(
    icons: &[toolgate_config::content::IconConfig],
) -> Option<Vec<rmcp::model::Icon>> {
    use toolgate_config::content::IconTheme;
    (!icons.is_empty()).then(|| {
        icons
            .iter()
            .map(|i| {
                let mut icon = rmcp::model::Icon::new(i.src.clone());
                icon.mime_type.clone_from(&i.mime_type);
                icon.sizes = (!i.sizes.is_empty()).then(|| i.sizes.clone());
                icon.theme = i.theme.map(|t| match t {
                    IconTheme::Light => rmcp::model::IconTheme::Light,
                    IconTheme::Dark => rmcp::model::IconTheme::Dark,
                });
                icon
            })
            .collect()
    })
}

pub(super) fn not_found(uri: &str) -> ErrorData {
    ErrorData::resource_not_found(format!("no resource {uri:?}"), Some(json!({ "uri": uri })))
}

/// The resources `caller` may read: the declared ones, and the schema of each SQL
/// source it may run a tool on.
pub(super) fn list_resources(state: &AppState, caller: &Principal) -> ListResourcesResult {
    let content = state.registry.content();
    let mut items = Vec::new();
    for r in content.resources.iter().filter(|r| caller.allows(&r.scope)) {
        let mut raw = Resource::new(r.uri.clone(), r.name.clone());
        raw.title.clone_from(&r.title);
        raw.description.clone_from(&r.description);
        raw.mime_type = Some(r.mime_type.clone());
        raw.icons = icons(&r.icons);
        raw.size = Some(match &r.body {
            Body::Text(t) => t.len() as u64,
            Body::Blob(b) => b.len() as u64,
        });
        items.push(raw);
    }
    for s in content
        .schemas
        .iter()
        .filter(|s| schema_visible(caller, &s.tools))
    {
        let mut raw = Resource::new(s.uri.clone(), format!("{}-schema", s.source));
        raw.title = Some(format!("Schema of source {}", s.source));
        raw.description = Some(format!(
            "Tables and columns of SQL source {:?}, to read before writing a query.",
            s.source
        ));
        raw.mime_type = Some("application/json".to_owned());
        items.push(raw);
    }
    items.sort_by(|a, b| a.uri.cmp(&b.uri));
    ListResourcesResult::with_all_items(items)
        .with_ttl_ms(LIST_TTL_MS)
        .with_cache_scope(CacheScope::Private)
}

fn schema_visible(caller: &Principal, tools: &[String]) -> bool {
    tools.iter().any(|t| caller.allows(t))
}

/// The resource templates `caller` may read, and the tools' documentation.
pub(super) fn list_templates(state: &AppState, caller: &Principal) -> ListResourceTemplatesResult {
    let content = state.registry.content();
    let mut items: Vec<_> = content
        .templates
        .iter()
        .filter(|t| caller.allows(&t.scope))
        .map(|t| {
            let mut raw = ResourceTemplate::new(t.uri_template.clone(), t.name.clone());
            raw.title.clone_from(&t.title);
            raw.description.clone_from(&t.description);
            raw.mime_type = Some(t.mime_type.clone());
            raw.icons = icons(&t.icons);
            raw
        })
        .collect();
    let mut docs = ResourceTemplate::new(TOOL_DOCS, "tool-docs");
    docs.title = Some("Tool documentation".to_owned());
    docs.description = Some(
        "What a tool does, its arguments and output, as Markdown (name completes).".to_owned(),
    );
    docs.mime_type = Some("text/markdown".to_owned());
    items.push(docs);
    ListResourceTemplatesResult::with_all_items(items)
        .with_ttl_ms(LIST_TTL_MS)
        .with_cache_scope(CacheScope::Private)
}

/// Whether `caller` may read `uri` (without reading it: a tool-backed template is
/// not called).
pub(super) fn visible(state: &AppState, caller: &Principal, uri: &str) -> bool {
    let content = state.registry.content();
    content
        .resources
        .iter()
        .any(|r| r.uri == uri && caller.allows(&r.scope))
        || content
            .schemas
            .iter()
            .any(|s| s.uri == uri && schema_visible(caller, &s.tools))
        || tool_of_doc_uri(uri).is_some_and(|t| caller.allows(t) && state.registry.get(t).is_some())
        || content
            .templates
            .iter()
            .any(|t| caller.allows(&t.scope) && t.uri.match_uri(uri).is_some())
}

/// One resource, as `caller` may read it.
pub(super) async fn read(
    state: &AppState,
    scope: &RequestScope,
    uri: &str,
) -> Result<ReadResourceResult, ErrorData> {
    let content = state.registry.content();
    let caller = &*scope.caller;
    if let Some(r) = content
        .resources
        .iter()
        .find(|r| r.uri == uri && caller.allows(&r.scope))
    {
        return Ok(ReadResourceResult::new(vec![contents(
            uri,
            &r.mime_type,
            r.body.clone(),
        )]));
    }
    if let Some(s) = content
        .schemas
        .iter()
        .find(|s| s.uri == uri && schema_visible(caller, &s.tools))
    {
        let schema = s.read().await.map_err(|e| {
            ErrorData::internal_error(format!("reading the schema failed: {}", e.message), None)
        })?;
        let text = serde_json::to_string_pretty(&schema).unwrap_or_default();
        return Ok(ReadResourceResult::new(vec![contents(
            uri,
            "application/json",
            Body::Text(text),
        )]));
    }
    if let Some(tool) = tool_of_doc_uri(uri)
        && caller.allows(tool)
        && let Some(t) = state.registry.get(tool)
    {
        return Ok(ReadResourceResult::new(vec![contents(
            uri,
            "text/markdown",
            Body::Text(tool_doc(t.spec())),
        )]));
    }
    for t in content.templates.iter().filter(|t| caller.allows(&t.scope)) {
        let Some(vars) = t.uri.match_uri(uri) else {
            continue;
        };
        let body = match &t.read {
            TemplateRead::Text(text) => {
                Body::Text(text.render(|v| vars.get(v).map(String::as_str)))
            }
            TemplateRead::Tool(tool) => {
                let args = tool_arguments(state, tool, &vars);
                let output = call(state, scope, tool, args).await?;
                match output {
                    Value::String(s) => Body::Text(s),
                    other => Body::Text(other.to_string()),
                }
            }
        };
        return Ok(ReadResourceResult::new(vec![contents(
            uri,
            &t.mime_type,
            body,
        )]));
    }
    Err(not_found(uri))
}

/// The arguments of a tool-backed read: each URI variable, as the number or
/// boolean the tool's schema asks for when it asks for one.
fn tool_arguments(state: &AppState, tool: &str, vars: &BTreeMap<String, String>) -> Value {
    let schema = state
        .registry
        .get(tool)
        .map(|t| t.spec().input_schema.clone());
    let mut args = serde_json::Map::new();
    for (name, value) in vars {
        let wanted = schema
            .as_ref()
            .and_then(|s| s["properties"][name]["type"].as_str().map(str::to_owned));
        let typed = match wanted.as_deref() {
            Some("integer") => value.parse::<i64>().map(Value::from).ok(),
            Some("number") => value.parse::<f64>().ok().map(Value::from),
            Some("boolean") => value.parse::<bool>().map(Value::from).ok(),
            _ => None,
        };
        args.insert(
            name.clone(),
            typed.unwrap_or_else(|| Value::from(value.clone())),
        );
    }
    Value::Object(args)
}

/// Call `tool` for the caller; a failure is the JSON-RPC error (or `isError`
/// text) the tool's failure would be on `tools/call`.
async fn call(
    state: &AppState,
    scope: &RequestScope,
    tool: &str,
    arguments: Value,
) -> Result<Value, ErrorData> {
    let inv = Invocation {
        client: None,
        caller: None,
        timeouts: vec![None],
        cancel: state.calls.child_token(),
        progress: ProgressSink::none(),
        trace_id: Some(scope.trace_id.clone()),
        transport: Transport::Mcp,
        max_timeout: None,
    };
    let outcome = run_call(state, &scope.caller, tool, arguments, inv).await;
    match outcome.result {
        Ok(v) => Ok(v),
        Err(e) => {
            let message = e.message.clone();
            match tool_failure(e, tool) {
                Err(refusal) => Err(refusal),
                Ok(_) => Err(ErrorData::internal_error(
                    format!("tool {tool:?} failed: {message}"),
                    None,
                )),
            }
        }
    }
}

fn contents(uri: &str, mime: &str, body: Body) -> ResourceContents {
    match body {
        Body::Text(text) => ResourceContents::text(text, uri).with_mime_type(mime),
        Body::Blob(bytes) => ResourceContents::blob(B64.encode(bytes), uri).with_mime_type(mime),
    }
}

/// A tool's documentation, in Markdown.
fn tool_doc(spec: &toolgate_core::ToolSpec) -> String {
    let json = tool_json(spec);
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let a = spec.annotations;
    let mut doc = format!("# {}\n\n{}\n\n", spec.name, spec.description);
    doc.push_str(&format!(
        "- read-only: {}\n- destructive: {}\n- idempotent: {}\n- timeout: {} ms\n\n",
        a.read_only,
        a.destructive,
        a.idempotent,
        spec.timeout_ms()
    ));
    doc.push_str("## Arguments\n\n```json\n");
    doc.push_str(&pretty(&json["input_schema"]));
    doc.push_str("\n```\n");
    if let Some(out) = &spec.output_schema {
        doc.push_str("\n## Output\n\n```json\n");
        doc.push_str(&pretty(out));
        doc.push_str("\n```\n");
    }
    doc
}

/// The prompts `caller` may get.
pub(super) fn list_prompts(state: &AppState, caller: &Principal) -> ListPromptsResult {
    let content = state.registry.content();
    let items = content
        .prompts
        .iter()
        .filter(|p| caller.allows(&p.scope))
        .map(|p| {
            let arguments = p
                .arguments
                .iter()
                .map(|a| {
                    let mut arg = PromptArgument::new(a.name.clone()).with_required(a.required);
                    arg.title.clone_from(&a.title);
                    arg.description.clone_from(&a.description);
                    arg
                })
                .collect::<Vec<_>>();
            let mut prompt = Prompt::new(
                p.name.clone(),
                p.description.clone(),
                (!arguments.is_empty()).then_some(arguments),
            );
            prompt.title.clone_from(&p.title);
            prompt.icons = icons(&p.icons);
            prompt
        })
        .collect();
    ListPromptsResult::with_all_items(items)
        .with_ttl_ms(LIST_TTL_MS)
        .with_cache_scope(CacheScope::Private)
}

/// A prompt filled in with `request`'s arguments.
pub(super) async fn get_prompt(
    state: &AppState,
    scope: &RequestScope,
    request: GetPromptRequestParams,
) -> Result<GetPromptResult, ErrorData> {
    let content = state.registry.content();
    let Some(prompt) = content
        .prompts
        .iter()
        .find(|p| p.name == request.name && scope.caller.allows(&p.scope))
    else {
        return Err(ErrorData::invalid_params(
            format!("no prompt {:?}", request.name),
            None,
        ));
    };
    let given = request.arguments.unwrap_or_default();
    let mut values = BTreeMap::new();
    for a in &prompt.arguments {
        match given.get(&a.name) {
            Some(Value::String(s)) => {
                values.insert(a.name.clone(), s.clone());
            }
            Some(other) => {
                values.insert(a.name.clone(), other.to_string());
            }
            None if a.required => {
                return Err(ErrorData::invalid_params(
                    format!("prompt {:?} needs argument {:?}", prompt.name, a.name),
                    None,
                ));
            }
            None => {}
        }
    }
    let lookup = |v: &str| values.get(v).map(String::as_str);
    let mut messages = Vec::new();
    for m in &prompt.messages {
        let role = match m.role {
            PromptRole::User => Role::User,
            PromptRole::Assistant => Role::Assistant,
        };
        let block = match &m.part {
            Part::Text(t) => ContentBlock::text(t.render(lookup)),
            Part::Image { mime_type, data } => ContentBlock::image(B64.encode(data), mime_type),
            Part::Audio { mime_type, data } => ContentBlock::audio(B64.encode(data), mime_type),
            Part::Resource(uri) => {
                let uri = uri.render(lookup);
                let read = Box::pin(read(state, scope, &uri)).await?;
                let Some(first) = read.contents.into_iter().next() else {
                    return Err(not_found(&uri));
                };
                ContentBlock::resource(first)
            }
        };
        messages.push(PromptMessage::new(role, block));
    }
    let mut result = GetPromptResult::new(messages);
    result.description.clone_from(&prompt.description);
    Ok(result)
}

/// `completion/complete` for a prompt argument or a resource-template variable.
pub(super) async fn complete(
    state: &AppState,
    scope: &RequestScope,
    request: CompleteRequestParams,
) -> Result<CompleteResult, ErrorData> {
    let content = state.registry.content();
    let caller = &*scope.caller;
    let prefix = request.argument.value.as_str();
    let source = match &request.r#ref {
        Reference::Prompt(p) => {
            let prompt = content
                .prompts
                .iter()
                .find(|x| x.name == p.name && caller.allows(&x.scope))
                .ok_or_else(|| {
                    ErrorData::invalid_params(format!("no prompt {:?}", p.name), None)
                })?;
            prompt
                .arguments
                .iter()
                .find(|a| a.name == request.argument.name)
                .and_then(|a| a.complete.clone())
        }
        Reference::Resource(r) if r.uri == TOOL_DOCS => {
            let names = state
                .registry
                .tools()
                .map(|t| t.spec().name.clone())
                .filter(|n| caller.allows(n))
                .collect();
            Some(Completion::Values(names))
        }
        Reference::Resource(r) => {
            let template = content
                .templates
                .iter()
                .find(|t| t.uri_template == r.uri && caller.allows(&t.scope))
                .ok_or_else(|| {
                    ErrorData::invalid_params(format!("no resource template {:?}", r.uri), None)
                })?;
            template.complete.get(&request.argument.name).cloned()
        }
        _ => None,
    };
    let values = match source {
        None => Vec::new(),
        Some(Completion::Values(values)) => {
            let lower = prefix.to_lowercase();
            values
                .into_iter()
                .filter(|v| v.to_lowercase().starts_with(&lower))
                .collect()
        }
        Some(Completion::Tool { tool, argument }) => {
            let output = call(state, scope, &tool, json!({ argument: prefix })).await?;
            Completion::values_of(&output)
        }
    };
    let total = u32::try_from(values.len()).unwrap_or(u32::MAX);
    let has_more = values.len() > MAX_COMPLETIONS;
    let shown: Vec<String> = values.into_iter().take(MAX_COMPLETIONS).collect();
    let info = CompletionInfo::with_pagination(shown, Some(total), has_more)
        .map_err(|e| ErrorData::internal_error(e, None))?;
    Ok(CompleteResult::new(info))
}

/// A digest of what resource and prompt listings show, per kind: a reload that
/// changes one makes its `list_changed` go out.
pub(super) fn fingerprints(content: &Content) -> (u64, u64) {
    let mut resources = DefaultHasher::new();
    for r in &content.resources {
        (
            &r.uri,
            &r.name,
            &r.title,
            &r.description,
            &r.mime_type,
            &r.scope,
        )
            .hash(&mut resources);
    }
    for t in &content.templates {
        (&t.uri_template, &t.name, &t.title, &t.description, &t.scope).hash(&mut resources);
    }
    for s in &content.schemas {
        (&s.uri, &s.tools).hash(&mut resources);
    }
    let mut prompts = DefaultHasher::new();
    for p in &content.prompts {
        (&p.name, &p.title, &p.description, &p.scope, &p.icons).hash(&mut prompts);
        for a in &p.arguments {
            (&a.name, &a.description, a.required).hash(&mut prompts);
        }
    }
    (resources.finish(), prompts.finish())
}

/// A digest of a fixed resource's content (`None` for any other URI): a
/// subscriber hears `resources/updated` when a reload changes it.
pub(super) fn resource_digest(content: &Content, uri: &str) -> Option<u64> {
    content.resources.iter().find(|r| r.uri == uri).map(|r| {
        let mut h = DefaultHasher::new();
        (&r.body, &r.mime_type).hash(&mut h);
        h.finish()
    })
}
