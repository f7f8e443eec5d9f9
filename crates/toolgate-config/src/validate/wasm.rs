//! Validation of `wasm` tools: the module is named, limits are in range, the
//! capabilities (`allow_env`, `allow_dirs`) are well formed, and no wasm field is
//! given to another kind.

use super::{Checker, check_params};
use crate::model::{ToolConfig, ToolKind};

/// Largest `max_memory_bytes`: a wasm32 memory cannot be larger.
const MAX_MEMORY: u64 = 4 * 1024 * 1024 * 1024;
/// Smallest `max_memory_bytes`: one wasm page.
const MIN_MEMORY: u64 = 64 * 1024;

pub(super) fn check_wasm(c: &mut Checker<'_>, t: &ToolConfig) {
    let name = t.name.get_ref();
    let kind_at = t.kind.span();
    if *t.kind.get_ref() != ToolKind::Wasm {
        let wasm_fields = t.module.is_some()
            || t.max_memory_bytes.is_some()
            || t.max_table_elements.is_some()
            || t.max_output_bytes.is_some()
            || !t.allow_env.is_empty()
            || !t.allow_dirs.is_empty()
            || t.allow_clock.is_some()
            || t.input_schema.is_some();
        if wasm_fields {
            c.report(
                kind_at,
                format!(
                    "tool {name:?}: `module/max_memory_bytes/max_table_elements/max_output_bytes/\
                     allow_env/allow_dirs/allow_clock/input_schema` are only for wasm tools"
                ),
            );
        }
        return;
    }
    if t.module.is_none() {
        c.report(
            kind_at.clone(),
            format!("tool {name:?}: a wasm tool needs `module`"),
        );
    }
    for (present, field) in [
        (t.source.is_some(), "source"),
        (t.max_rows.is_some(), "max_rows"),
        (t.max_result_bytes.is_some(), "max_result_bytes"),
    ] {
        if present {
            c.report(
                kind_at.clone(),
                format!("tool {name:?}: `{field}` is only for sql and sql_query tools"),
            );
        }
    }
    check_schema(c, t);
    check_limits(c, t);
    check_capabilities(c, t);
}

/// The input schema comes from `params` or `input_schema`, never both.
fn check_schema(c: &mut Checker<'_>, t: &ToolConfig) {
    let name = t.name.get_ref();
    if let Some(schema) = &t.input_schema {
        if !schema.is_object() {
            c.report(
                t.name.span(),
                format!("tool {name:?}: input_schema must be a table"),
            );
        }
        if !t.params.is_empty() {
            c.report(
                t.name.span(),
                format!("tool {name:?}: give `params` or `input_schema`, not both"),
            );
        }
    }
    if !t.params.is_empty() {
        check_params(c, t);
    }
}

fn check_limits(c: &mut Checker<'_>, t: &ToolConfig) {
    if let Some(m) = &t.max_memory_bytes
        && !(MIN_MEMORY..=MAX_MEMORY).contains(m.get_ref())
    {
        c.report(
            m.span(),
            "max_memory_bytes must be 65536 (one page)..=4294967296 (4 GiB)",
        );
    }
    if let Some(n) = &t.max_table_elements
        && !(1..=10_000_000).contains(n.get_ref())
    {
        c.report(n.span(), "max_table_elements must be 1..=10000000");
    }
    if let Some(n) = &t.max_output_bytes
        && !(1..=64 * 1024 * 1024).contains(n.get_ref())
    {
        c.report(n.span(), "max_output_bytes must be 1..=67108864 (64 MiB)");
    }
}

fn check_capabilities(c: &mut Checker<'_>, t: &ToolConfig) {
    for var in &t.allow_env {
        let v = var.get_ref();
        let ok = !v.is_empty()
            && v.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            && !v.starts_with(|ch: char| ch.is_ascii_digit());
        if !ok {
            c.report(
                var.span(),
                format!("allow_env: {v:?} is not an environment variable name"),
            );
        }
    }
    let mut guests = std::collections::HashSet::new();
    for dir in &t.allow_dirs {
        let d = dir.get_ref();
        if d.host.as_str().is_empty() {
            c.report(dir.span(), "allow_dirs: `host` must not be empty");
        }
        let guest_ok = d.guest.starts_with('/') && !d.guest.split('/').any(|seg| seg == "..");
        if !guest_ok {
            c.report(
                dir.span(),
                format!(
                    "allow_dirs: guest path {:?} must be absolute, without `..`",
                    d.guest
                ),
            );
        }
        if !guests.insert(d.guest.clone()) {
            c.report(
                dir.span(),
                format!("allow_dirs: guest path {:?} is given twice", d.guest),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::LoadedConfig;

    fn problems(text: &str) -> Vec<String> {
        match LoadedConfig::from_str("w.toml", text) {
            Ok(_) => Vec::new(),
            Err(p) => p.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_complete_wasm_tool_is_valid() {
        let text = r#"
[[tools]]
name = "w"
kind = "wasm"
module = "tools/w.wasm"
max_memory_bytes = 1048576
max_output_bytes = 4096
allow_env = ["LANG"]
allow_dirs = [{ host = "/tmp", guest = "/data" }]
allow_clock = true
input_schema = { type = "object", properties = { n = { type = "integer" } } }
"#;
        assert_eq!(problems(text), Vec::<String>::new());
    }

    #[test]
    fn wasm_problems_are_located() {
        let text = r#"
[[tools]]
name = "w"
kind = "wasm"
max_memory_bytes = 10
allow_env = ["A=B"]
allow_dirs = [{ host = "/tmp", guest = "data" }]
input_schema = "object"

[[tools]]
name = "e"
kind = "builtin"
builtin = "echo"
module = "x.wasm"
"#;
        let p = problems(text);
        assert_eq!(p.len(), 6, "{p:?}");
        assert!(p[0].starts_with("w.toml:4:") && p[0].contains("needs `module`"));
        assert!(p[1].contains("input_schema must be a table"));
        assert!(p[2].starts_with("w.toml:5:") && p[2].contains("max_memory_bytes"));
        assert!(p[3].starts_with("w.toml:6:") && p[3].contains("allow_env"));
        assert!(p[4].starts_with("w.toml:7:") && p[4].contains("guest path"));
        assert!(p[5].starts_with("w.toml:12:") && p[5].contains("only for wasm tools"));
    }
}
