//! OpenAPI 3.0 and 3.1 documents turned into `http` tools: one per selected
//! operation, with an input schema built from its parameters and JSON body.
//!
//! The document is read as plain JSON (YAML is converted first), so both versions go
//! through one path. Local `$ref`s (`#/...`) are resolved in place; a schema that
//! refers to itself cannot be inlined into an input schema, so its operation is
//! skipped with the reason, as is one that needs what the http kind cannot send (a
//! cookie, a non-JSON body). Nothing here does I/O.

use std::collections::{BTreeMap, BTreeSet};

use std::time::Duration;

use serde_json::{Map, Value, json};

/// Most JSON nodes an operation's input schema may have once its `$ref`s are
/// inlined: references to references can grow exponentially.
const MAX_SCHEMA_NODES: usize = 50_000;
/// Longest tool name.
const MAX_NAME: usize = 64;

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// A path segment (`/pets/{id}`).
    Path,
    /// A query pair.
    Query,
    /// A request header.
    Header,
}

/// One parameter of an operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Its name, as the upstream knows it and as the argument is called.
    pub name: String,
    /// Where it goes.
    pub location: Location,
    /// Whether it must be given.
    pub required: bool,
}

/// An operation selected for import.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// The tool's name: the prefix and the sanitised `operationId` (or method and
    /// path, for operations without one).
    pub name: String,
    /// The `operationId`, or `METHOD /path` where it has none.
    pub id: String,
    /// Upper-case method.
    pub method: String,
    /// The path template, as in the document (`/pets/{petId}`).
    pub path: String,
    /// Summary and description, for agents.
    pub description: String,
    /// Its parameters.
    pub params: Vec<Param>,
    /// Whether it takes a JSON body (the argument `body`), and must.
    pub body: Option<bool>,
    /// JSON Schema 2020-12 of the arguments.
    pub input_schema: Value,
    /// GET, HEAD and OPTIONS change nothing.
    pub read_only: bool,
    /// GET, HEAD, OPTIONS, PUT and DELETE may be repeated.
    pub idempotent: bool,
    /// DELETE destroys.
    pub destructive: bool,
}

/// An operation left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The `operationId`, or `METHOD /path`.
    pub id: String,
    /// Why, for the operator.
    pub reason: String,
}

/// What a document yields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Import {
    /// The operations to serve: by path (sorted), then by method (GET, PUT, POST,
    /// DELETE, OPTIONS, HEAD, PATCH, TRACE).
    pub operations: Vec<Operation>,
    /// The ones left out by a filter or because they cannot be served.
    pub skipped: Vec<Skipped>,
    /// The first `servers` URL, with its variables at their defaults.
    pub server_url: Option<String>,
}

/// Which operations to take (or leave). Within a field any entry may match; every
/// non-empty field must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `operationId` patterns (`*` any run of characters).
    pub operations: Vec<String>,
    /// Tags (an operation matches when it has one of them).
    pub tags: Vec<String>,
    /// Path patterns (`*` within a segment, `**` across segments).
    pub paths: Vec<String>,
    /// Methods.
    pub methods: Vec<String>,
}

impl Filter {
    /// Whether a name (an MCP upstream's tool name) matches the `operations`
    /// patterns; the other fields do not apply to it.
    #[must_use]
    pub fn matches_name(&self, name: &str) -> bool {
        self.operations.is_empty() || self.operations.iter().any(|p| wildcard(p, name, false))
    }

    fn matches(&self, id: &str, tags: &[String], path: &str, method: &str) -> bool {
        (self.operations.is_empty() || self.operations.iter().any(|p| wildcard(p, id, false)))
            && (self.tags.is_empty() || self.tags.iter().any(|t| tags.contains(t)))
            && (self.paths.is_empty() || self.paths.iter().any(|p| wildcard(p, path, true)))
            && (self.methods.is_empty()
                || self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
    }
}

/// Whether `pattern` matches all of `text`: `*` stands for any run of characters
/// (with `segments`, any run without `/`, and `**` for any run at all). Written
/// here because the patterns are this small language and nothing more (no classes,
/// no alternatives), which is what operators write in the filters.
fn wildcard(pattern: &str, text: &str, segments: bool) -> bool {
    fn go(p: &[u8], t: &[u8], segments: bool) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => {
                let (any, rest) = match rest.split_first() {
                    Some((b'*', r)) if segments => (true, r),
                    _ => (!segments, rest),
                };
                (0..=t.len())
                    .take_while(|&i| any || !t[..i].contains(&b'/'))
                    .any(|i| go(rest, &t[i..], segments))
            }
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..], segments),
        }
    }
    go(pattern.as_bytes(), text.as_bytes(), segments)
}

/// Parse a document: JSON, or YAML (anything that does not start with `{`).
///
/// # Errors
/// Neither parses, or it is not an OpenAPI 3.0 or 3.1 document.
pub fn parse(text: &str) -> Result<Value, String> {
    let doc: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?
    } else {
        yaml_serde::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?
    };
    match doc.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.0.") || v.starts_with("3.1.") || v == "3.0" || v == "3.1" => {
            Ok(doc)
        }
        Some(v) => Err(format!("OpenAPI {v} is not supported (3.0 and 3.1 are)")),
        None if doc.get("swagger").is_some() => {
            Err("Swagger 2.0 is not supported: convert the document to OpenAPI 3".to_owned())
        }
        None => Err("not an OpenAPI document (no `openapi` field)".to_owned()),
    }
}

/// The HTTP methods of a path item, in the order they are imported.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Select and convert the operations of `doc` (from [`parse`]).
#[must_use]
pub fn import(
    doc: &Value,
    prefix: &str,
    include: Option<&Filter>,
    exclude: Option<&Filter>,
) -> Import {
    let mut out = Import {
        server_url: server_url(doc),
        ..Import::default()
    };
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return out;
    };
    for (path, item) in paths {
        let item = match resolve_ref(doc, item) {
            Ok(i) => i,
            Err(reason) => {
                out.skipped.push(Skipped {
                    id: path.clone(),
                    reason,
                });
                continue;
            }
        };
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let upper = method.to_ascii_uppercase();
            let id = op
                .get("operationId")
                .and_then(Value::as_str)
                .map_or_else(|| format!("{upper} {path}"), str::to_owned);
            let tags: Vec<String> = op
                .get("tags")
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if include.is_some_and(|f| !f.matches(&id, &tags, path, &upper)) {
                out.skipped.push(Skipped {
                    id,
                    reason: "not included".to_owned(),
                });
                continue;
            }
            if exclude.is_some_and(|f| f.matches(&id, &tags, path, &upper)) {
                out.skipped.push(Skipped {
                    id,
                    reason: "excluded".to_owned(),
                });
                continue;
            }
            match operation(doc, path, &item, op, &upper, &id, prefix) {
                Ok(o) => out.operations.push(o),
                Err(reason) => out.skipped.push(Skipped { id, reason }),
            }
        }
    }
    out
}

/// The first server's URL, its `{variables}` at their defaults.
fn server_url(doc: &Value) -> Option<String> {
    let server = doc.get("servers")?.as_array()?.first()?;
    let mut url = server.get("url")?.as_str()?.to_owned();
    if let Some(vars) = server.get("variables").and_then(Value::as_object) {
        for (name, var) in vars {
            if let Some(default) = var.get("default").and_then(Value::as_str) {
                url = url.replace(&format!("{{{name}}}"), default);
            }
        }
    }
    Some(url)
}

/// A tool name from an operation id: characters other than letters, digits, `_`
/// and `-` become `_`, and the whole is cut to 64 characters.
#[must_use]
pub fn tool_name(prefix: &str, id: &str) -> String {
    let mut name: String = format!("{prefix}{id}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    while name.contains("__") {
        name = name.replace("__", "_");
    }
    let name = name.trim_matches('_');
    name.chars().take(MAX_NAME).collect()
}

fn operation(
    doc: &Value,
    path: &str,
    item: &Value,
    op: &Value,
    method: &str,
    id: &str,
    prefix: &str,
) -> Result<Operation, String> {
    // Path-level parameters, overridden by the operation's own of the same name and place.
    let mut declared: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    for list in [item.get("parameters"), op.get("parameters")]
        .into_iter()
        .flatten()
    {
        for p in list.as_array().into_iter().flatten() {
            let p = resolve_ref(doc, p)?;
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .ok_or("a parameter has no name")?;
            let place = p
                .get("in")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("parameter {name:?} has no `in`"))?;
            let key = (place.to_owned(), name.to_owned());
            if !declared.contains_key(&key) {
                order.push(key.clone());
            }
            declared.insert(key, p);
        }
    }
    let mut params = Vec::new();
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut names = BTreeSet::new();
    for key in order {
        let Some(p) = declared.get(&key) else {
            continue;
        };
        let (place, name) = (&key.0, &key.1);
        let is_required =
            place == "path" || p.get("required").and_then(Value::as_bool).unwrap_or(false);
        let location = match place.as_str() {
            "path" => Location::Path,
            "query" => Location::Query,
            // The spec has these three ignored as parameters: they are the client's.
            "header"
                if ["accept", "content-type", "authorization"]
                    .contains(&name.to_ascii_lowercase().as_str()) =>
            {
                continue;
            }
            "header" => Location::Header,
            "cookie" if is_required => {
                return Err(format!(
                    "cookie parameter {name:?} is required, and cookies are not sent"
                ));
            }
            "cookie" => continue,
            other => return Err(format!("parameter {name:?} is in {other:?}")),
        };
        if !names.insert(name.clone()) {
            return Err(format!(
                "two parameters are named {name:?}; arguments are named by their parameter"
            ));
        }
        let mut schema = p
            .get("schema")
            .or_else(|| {
                p.get("content")
                    .and_then(Value::as_object)
                    .and_then(|c| c.values().next())
                    .and_then(|m| m.get("schema"))
            })
            .cloned()
            .unwrap_or_else(|| json!({}));
        schema = inline(doc, &schema)?;
        if let (Some(obj), Some(d)) = (
            schema.as_object_mut(),
            p.get("description").and_then(Value::as_str),
        ) {
            obj.entry("description").or_insert_with(|| Value::from(d));
        }
        properties.insert(name.clone(), schema);
        if is_required {
            required.push(Value::from(name.clone()));
        }
        params.push(Param {
            name: name.clone(),
            location,
            required: is_required,
        });
    }
    if !path_params_declared(path, &params) {
        return Err(format!(
            "the path {path} names a parameter the operation does not declare"
        ));
    }
    let mut body = None;
    if let Some(rb) = op.get("requestBody") {
        let rb = resolve_ref(doc, rb)?;
        let must = rb.get("required").and_then(Value::as_bool).unwrap_or(false);
        let content = rb.get("content").and_then(Value::as_object);
        let json_media = content.and_then(|c| {
            c.iter().find(|(t, _)| {
                let t = t
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                t == "application/json" || t.ends_with("+json")
            })
        });
        match json_media {
            Some((_, media)) => {
                if names.contains("body") {
                    return Err(
                        "a parameter is named \"body\", which is the request body's argument"
                            .to_owned(),
                    );
                }
                let schema = inline(doc, media.get("schema").unwrap_or(&json!({})))?;
                properties.insert("body".to_owned(), schema);
                if must {
                    required.push(Value::from("body"));
                }
                body = Some(must);
            }
            None if must => {
                let types: Vec<&String> = content.map(|c| c.keys().collect()).unwrap_or_default();
                return Err(format!(
                    "its request body is {types:?}; only JSON bodies are sent"
                ));
            }
            None => {}
        }
    }
    let mut schema = Map::new();
    schema.insert("type".to_owned(), Value::from("object"));
    schema.insert("properties".to_owned(), Value::Object(properties));
    if !required.is_empty() {
        schema.insert("required".to_owned(), Value::Array(required));
    }
    schema.insert("additionalProperties".to_owned(), Value::Bool(false));
    let input_schema = Value::Object(schema);
    if count_nodes(&input_schema) > MAX_SCHEMA_NODES {
        return Err(format!(
            "its input schema has more than {MAX_SCHEMA_NODES} nodes once its $refs are inlined"
        ));
    }
    let text = |k: &str| {
        op.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let description = match (text("summary"), text("description")) {
        (Some(s), Some(d)) if d.starts_with(s) => d.to_owned(),
        (Some(s), Some(d)) => format!("{s}\n\n{d}"),
        (Some(s), None) | (None, Some(s)) => s.to_owned(),
        (None, None) => format!("{method} {path}"),
    };
    let read_only = matches!(method, "GET" | "HEAD" | "OPTIONS");
    let name = tool_name(prefix, id);
    if name.is_empty() {
        return Err("its name is empty once sanitised".to_owned());
    }
    Ok(Operation {
        name,
        id: id.to_owned(),
        method: method.to_owned(),
        path: path.to_owned(),
        description,
        params,
        body,
        input_schema,
        read_only,
        idempotent: read_only || matches!(method, "PUT" | "DELETE"),
        destructive: method == "DELETE",
    })
}

/// Whether every `{name}` of the path is a declared path parameter.
fn path_params_declared(path: &str, params: &[Param]) -> bool {
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            return false;
        };
        let name = &rest[start + 1..start + len];
        if !params
            .iter()
            .any(|p| p.location == Location::Path && p.name == name)
        {
            return false;
        }
        rest = &rest[start + len + 1..];
    }
    true
}

/// `value`, or what its `$ref` points to (following chains of references).
fn resolve_ref(doc: &Value, value: &Value) -> Result<Value, String> {
    let mut current = value.clone();
    let mut seen = BTreeSet::new();
    while let Some(r) = current.get("$ref").and_then(Value::as_str) {
        if !seen.insert(r.to_owned()) {
            return Err(format!("$ref {r} refers to itself"));
        }
        current = lookup(doc, r)?.clone();
    }
    Ok(current)
}

/// The target of a local reference `#/a/b`.
fn lookup<'a>(doc: &'a Value, reference: &str) -> Result<&'a Value, String> {
    let Some(pointer) = reference.strip_prefix('#') else {
        return Err(format!(
            "$ref {reference} is not in this document; only local references (#/...) are resolved"
        ));
    };
    let decoded = percent_encoding::percent_decode_str(pointer).decode_utf8_lossy();
    doc.pointer(&decoded)
        .ok_or_else(|| format!("$ref {reference} points at nothing"))
}

/// A schema with every `$ref` inlined and OpenAPI 3.0's dialect turned into JSON
/// Schema 2020-12 (`nullable`, boolean `exclusiveMinimum`/`exclusiveMaximum`).
fn inline(doc: &Value, schema: &Value) -> Result<Value, String> {
    let mut nodes = 0usize;
    inline_in(doc, schema, &mut Vec::new(), &mut nodes)
}

/// Keywords whose value is a map of names to schemas.
const SCHEMA_MAPS: [&str; 5] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];
/// Keywords whose value is one schema.
const SCHEMA_ONE: [&str; 10] = [
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
];
/// Keywords whose value is a list of schemas.
const SCHEMA_LISTS: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];

/// One schema (a `$ref`, or an object of keywords), inlined. Only the keywords that
/// hold schemas are walked into: `enum`, `const`, `default` and the like are data,
/// and a property may well be named `nullable` or `$ref`.
fn inline_in(
    doc: &Value,
    v: &Value,
    stack: &mut Vec<String>,
    nodes: &mut usize,
) -> Result<Value, String> {
    *nodes += 1;
    if *nodes > MAX_SCHEMA_NODES {
        return Err(format!(
            "its schemas have more than {MAX_SCHEMA_NODES} nodes once their $refs are inlined"
        ));
    }
    let Value::Object(map) = v else {
        // `true`, `false`, or something a validator will refuse at registration.
        return Ok(v.clone());
    };
    if let Some(r) = map.get("$ref").and_then(Value::as_str) {
        if stack.iter().any(|s| s == r) {
            return Err(format!(
                "its schema is recursive ({} -> {r}); a recursive schema cannot be inlined into a tool's input schema",
                stack.join(" -> ")
            ));
        }
        let target = lookup(doc, r)?;
        stack.push(r.to_owned());
        let out = inline_in(doc, target, stack, nodes);
        stack.pop();
        return out;
    }
    let mut out = Map::new();
    for (k, child) in map {
        let value = if SCHEMA_MAPS.contains(&k.as_str()) {
            match child {
                Value::Object(m) => {
                    let mut inner = Map::new();
                    for (name, s) in m {
                        inner.insert(name.clone(), inline_in(doc, s, stack, nodes)?);
                    }
                    Value::Object(inner)
                }
                other => other.clone(),
            }
        } else if SCHEMA_ONE.contains(&k.as_str()) {
            inline_in(doc, child, stack, nodes)?
        } else if SCHEMA_LISTS.contains(&k.as_str()) {
            match child {
                Value::Array(items) => Value::Array(
                    items
                        .iter()
                        .map(|i| inline_in(doc, i, stack, nodes))
                        .collect::<Result<_, _>>()?,
                ),
                other => other.clone(),
            }
        } else {
            *nodes += count_nodes(child);
            child.clone()
        };
        out.insert(k.clone(), value);
    }
    Ok(Value::Object(dialect_2020(out)))
}

/// OpenAPI 3.0 keywords rewritten as JSON Schema 2020-12 has them.
fn dialect_2020(mut s: Map<String, Value>) -> Map<String, Value> {
    if s.remove("nullable") == Some(Value::Bool(true)) {
        match s.get("type").cloned() {
            Some(Value::String(t)) => {
                s.insert("type".to_owned(), json!([t, "null"]));
            }
            Some(Value::Array(mut ts)) if !ts.contains(&Value::from("null")) => {
                ts.push(Value::from("null"));
                s.insert("type".to_owned(), Value::Array(ts));
            }
            _ => {}
        }
        if let Some(Value::Array(options)) = s.get_mut("enum")
            && !options.contains(&Value::Null)
        {
            options.push(Value::Null);
        }
    }
    for (flag, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        match s.get(flag) {
            Some(Value::Bool(true)) => {
                if let Some(b) = s.remove(bound) {
                    s.insert(flag.to_owned(), b);
                } else {
                    s.remove(flag);
                }
            }
            Some(Value::Bool(false)) => {
                s.remove(flag);
            }
            _ => {}
        }
    }
    // Annotations of OpenAPI's own that JSON Schema does not know.
    for k in ["discriminator", "xml", "externalDocs", "example"] {
        s.remove(k);
    }
    s
}

fn count_nodes(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(count_nodes).sum::<usize>(),
        Value::Array(a) => 1 + a.iter().map(count_nodes).sum::<usize>(),
        _ => 1,
    }
}

/// The URL of a call of `op` at `base` with `args`: path parameters
/// percent-encoded into their segments, query parameters appended (a list as one
/// pair per item, an object as its JSON text), absent ones left out.
///
/// # Errors
/// The name of a path parameter whose value would make a whole segment `.` or `..`.
pub(crate) fn fill_url(
    base: &str,
    op: &Operation,
    args: &Map<String, Value>,
) -> Result<String, String> {
    use percent_encoding::utf8_percent_encode;
    let mut url = base.to_owned();
    for segment in op.path.split('/').filter(|s| !s.is_empty()) {
        url.push('/');
        let start = url.len();
        let mut rest = segment;
        let mut param = None;
        while let Some(open) = rest.find('{') {
            let Some(len) = rest[open..].find('}') else {
                break;
            };
            url.push_str(&rest[..open]);
            let name = &rest[open + 1..open + len];
            let value = args
                .get(name)
                .map(crate::template::text_of)
                .unwrap_or_default();
            url.extend(utf8_percent_encode(&value, crate::template::ENCODE));
            param = Some(name);
            rest = &rest[open + len + 1..];
        }
        url.push_str(rest);
        if let Some(name) = param
            && matches!(&url[start..], "." | "..")
        {
            return Err(name.to_owned());
        }
    }
    if op.path.ends_with('/') && op.path.len() > 1 {
        url.push('/');
    }
    let mut first = true;
    let mut pair = |url: &mut String, name: &str, value: &str| {
        url.push(if first { '?' } else { '&' });
        first = false;
        url.extend(utf8_percent_encode(name, crate::template::ENCODE));
        url.push('=');
        url.extend(utf8_percent_encode(value, crate::template::ENCODE));
    };
    for p in op.params.iter().filter(|p| p.location == Location::Query) {
        match args.get(&p.name) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    pair(&mut url, &p.name, &crate::template::text_of(item));
                }
            }
            Some(v) => pair(&mut url, &p.name, &crate::template::text_of(v)),
        }
    }
    Ok(url)
}

/// The header parameters of `op` given in `args`, but for those the source
/// configures itself (`configured` wins: it is the operator's, often a secret).
///
/// # Errors
/// `invalid_arguments` for a value that cannot be a header value (CR, LF, ...).
pub(crate) fn header_values(
    op: &Operation,
    args: &Map<String, Value>,
    configured: &reqwest::header::HeaderMap,
) -> Result<
    Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    toolgate_core::ToolError,
> {
    let mut out = Vec::new();
    for p in op
        .params
        .iter()
        .filter(|p| p.location == Location::Header && !configured.contains_key(p.name.as_str()))
    {
        let Some(v) = args.get(&p.name).filter(|v| !v.is_null()) else {
            continue;
        };
        let bad = |message: &str| {
            toolgate_core::ToolError::invalid_arguments(vec![toolgate_core::FieldError {
                pointer: format!("/{}", p.name.replace('~', "~0").replace('/', "~1")),
                message: message.to_owned(),
            }])
        };
        let name = reqwest::header::HeaderName::from_bytes(p.name.as_bytes())
            .map_err(|_| bad("the document's header name is not a valid header name"))?;
        let value = reqwest::header::HeaderValue::from_str(&crate::template::text_of(v))
            .map_err(|_| bad("not a valid header value (control characters)"))?;
        out.push((name, value));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "openapi_tests.rs"]
mod tests;

/// Largest document fetched.
const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// `relative` resolved against `base` (a document's relative server URL against
/// the document's own URL).
///
/// # Errors
/// Either is not a URL.
pub fn join_url(base: &str, relative: &str) -> Result<String, String> {
    let base = reqwest::Url::parse(base).map_err(|e| format!("{base:?} is not a URL: {e}"))?;
    base.join(relative)
        .map(|u| u.to_string())
        .map_err(|e| format!("the server URL {relative:?} cannot be resolved: {e}"))
}

/// Download a document (at most 16 MiB, within `timeout`). It runs on a thread of
/// its own with its own runtime, so that it can be called while a config is built,
/// from inside a runtime (reload) or outside one (`toolgate check`).
///
/// # Errors
/// The download failed, answered other than 2xx, or was too large.
pub fn fetch(url: &str, timeout: Duration) -> Result<String, String> {
    let url = url.to_owned();
    let worker = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime to fetch the document: {e}"))?;
        rt.block_on(async move {
            let client = reqwest::Client::builder()
                .timeout(timeout)
                .no_proxy()
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
            let mut resp = client
                .get(&url)
                .header(
                    "accept",
                    "application/json, application/yaml;q=0.9, */*;q=0.1",
                )
                .send()
                .await
                .map_err(|e| format!("cannot fetch {url}: {e}"))?;
            if !resp.status().is_success() {
                return Err(format!("fetching {url} answered {}", resp.status()));
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| format!("cannot fetch {url}: {e}"))?
            {
                if bytes.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                    return Err(format!("{url} is larger than {MAX_DOCUMENT_BYTES} bytes"));
                }
                bytes.extend_from_slice(&chunk);
            }
            String::from_utf8(bytes).map_err(|_| format!("{url} is not UTF-8 text"))
        })
    });
    worker
        .join()
        .unwrap_or_else(|_| Err("fetching the document failed".to_owned()))
}
