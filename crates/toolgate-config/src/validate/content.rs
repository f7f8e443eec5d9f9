//! Validation of `[[resources]]`, `[[resource_templates]]` and `[[prompts]]`:
//! names, URIs and templates, one content source each, and completions that name
//! a variable or argument that exists. Files are read (and tools looked up) when
//! the registry is built, where a missing one is reported at its line too.

use std::collections::HashSet;

use super::Checker;
use crate::content::CompletionConfig;
use crate::load::is_valid_tool_name;
use crate::model::Config;
use crate::template::{Template, has_scheme};

pub(super) fn check_content(c: &mut Checker<'_>, cfg: &Config) {
    for t in &cfg.tools {
        check_icons(c, "tool", &t.name, &t.icons);
    }
    for r in &cfg.resources {
        check_icons(c, "resource", &r.name, &r.icons);
    }
    for t in &cfg.resource_templates {
        check_icons(c, "resource template", &t.name, &t.icons);
    }
    for p in &cfg.prompts {
        check_icons(c, "prompt", &p.name, &p.icons);
    }
    check_resources(c, cfg);
    check_templates(c, cfg);
    check_prompts(c, cfg);
}

fn check_name(
    c: &mut Checker<'_>,
    what: &str,
    name: &toml::Spanned<String>,
    seen: &mut HashSet<String>,
) {
    if !is_valid_tool_name(name.get_ref()) {
        c.report(
            name.span(),
            format!(
                "{what} name {:?} must be 1 to 64 of A-Z a-z 0-9 _ -",
                name.get_ref()
            ),
        );
    }
    if !seen.insert(name.get_ref().clone()) {
        c.report(
            name.span(),
            format!("{what} {:?} is declared twice", name.get_ref()),
        );
    }
}

fn check_scope(
    c: &mut Checker<'_>,
    what: &str,
    name: &toml::Spanned<String>,
    scope: Option<&String>,
) {
    if let Some(scope) = scope
        && !is_valid_tool_name(scope)
    {
        c.report(
            name.span(),
            format!("{what} {:?}: scope {scope:?} must be 1 to 64 of A-Z a-z 0-9 _ - (a name key scopes match)", name.get_ref()),
        );
    }
}

/// Icons are fetched by clients: only `https:` and inline `data:` sources.
fn check_icons(
    c: &mut Checker<'_>,
    what: &str,
    name: &toml::Spanned<String>,
    icons: &[crate::content::IconConfig],
) {
    for icon in icons {
        if !(icon.src.starts_with("https://") || icon.src.starts_with("data:")) {
            c.report(
                name.span(),
                format!(
                    "{what} {:?}: icon src {:?} must be an https: URL or a data: URI",
                    name.get_ref(),
                    icon.src
                ),
            );
        }
    }
}

fn check_resources(c: &mut Checker<'_>, cfg: &Config) {
    let mut names = HashSet::new();
    let mut uris = HashSet::new();
    for r in &cfg.resources {
        check_name(c, "resource", &r.name, &mut names);
        check_scope(c, "resource", &r.name, r.scope.as_ref());
        if let Some(uri) = &r.uri {
            if !has_scheme(uri.get_ref()) || uri.get_ref().contains(char::is_whitespace) {
                c.report(uri.span(), format!("resource {:?}: uri {:?} is not a URI (it needs a scheme such as `docs://`)", r.name.get_ref(), uri.get_ref()));
            }
            if !uris.insert(uri.get_ref().clone()) {
                c.report(
                    uri.span(),
                    format!("resource uri {:?} is declared twice", uri.get_ref()),
                );
            }
        }
        if r.text.is_some() == r.file.is_some() {
            c.report(
                r.name.span(),
                format!(
                    "resource {:?} needs exactly one of `text` and `file`",
                    r.name.get_ref()
                ),
            );
        }
    }
}

fn check_templates(c: &mut Checker<'_>, cfg: &Config) {
    let mut names = HashSet::new();
    for t in &cfg.resource_templates {
        let name = t.name.get_ref();
        check_name(c, "resource template", &t.name, &mut names);
        check_scope(c, "resource template", &t.name, t.scope.as_ref());
        let vars: Vec<String> = match Template::parse(t.uri_template.get_ref())
            .and_then(|tpl| tpl.check_uri().map(|()| tpl))
        {
            Ok(tpl) => tpl.vars().map(str::to_owned).collect(),
            Err(e) => {
                c.report(
                    t.uri_template.span(),
                    format!("resource template {name:?}: uri_template: {e}"),
                );
                continue;
            }
        };
        if vars.is_empty() {
            c.report(t.uri_template.span(), format!("resource template {name:?} has no `{{variable}}`; declare a fixed URI as a [[resources]] entry"));
        }
        match (&t.text, &t.tool) {
            (Some(text), None) => match Template::parse(text) {
                Ok(tpl) => {
                    for v in tpl.vars().filter(|v| !vars.iter().any(|x| x == v)) {
                        c.report(t.name.span(), format!("resource template {name:?}: text uses {{{v}}}, which the uri_template does not have"));
                    }
                }
                Err(e) => c.report(
                    t.name.span(),
                    format!("resource template {name:?}: text: {e}"),
                ),
            },
            (None, Some(_)) => {}
            _ => c.report(
                t.name.span(),
                format!("resource template {name:?} needs exactly one of `text` and `tool`"),
            ),
        }
        for (var, completion) in &t.complete {
            if !vars.iter().any(|v| v == var) {
                c.report(completion.span(), format!("resource template {name:?}: complete.{var}: the uri_template has no {{{var}}}"));
            }
            check_completion(c, completion);
        }
    }
}

fn check_completion(c: &mut Checker<'_>, completion: &toml::Spanned<CompletionConfig>) {
    let v = completion.get_ref();
    if v.values.is_empty() == v.tool.is_none() {
        c.report(
            completion.span(),
            "a completion needs exactly one of `values` and `tool`",
        );
    }
    if v.argument.is_some() && v.tool.is_none() {
        c.report(
            completion.span(),
            "a completion's `argument` goes with `tool`",
        );
    }
}

fn check_prompts(c: &mut Checker<'_>, cfg: &Config) {
    let mut names = HashSet::new();
    for p in &cfg.prompts {
        let name = p.name.get_ref();
        check_name(c, "prompt", &p.name, &mut names);
        check_scope(c, "prompt", &p.name, p.scope.as_ref());
        let mut args = HashSet::new();
        for a in &p.arguments {
            if a.name.is_empty()
                || !a
                    .name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            {
                c.report(
                    p.name.span(),
                    format!(
                        "prompt {name:?}: argument name {:?} must be letters, digits and _",
                        a.name
                    ),
                );
            }
            if !args.insert(a.name.as_str()) {
                c.report(
                    p.name.span(),
                    format!("prompt {name:?}: argument {:?} is declared twice", a.name),
                );
            }
            if let Some(completion) = &a.complete {
                check_completion(c, completion);
            }
        }
        if p.messages.is_empty() {
            c.report(
                p.name.span(),
                format!("prompt {name:?} needs at least one [[prompts.messages]]"),
            );
        }
        for m in &p.messages {
            let v = m.get_ref();
            let given = [
                v.text.is_some(),
                v.image.is_some(),
                v.audio.is_some(),
                v.resource.is_some(),
            ];
            if given.iter().filter(|g| **g).count() != 1 {
                c.report(m.span(), format!("prompt {name:?}: a message needs exactly one of `text`, `image`, `audio` and `resource`"));
                continue;
            }
            if v.mime_type.is_some() && v.image.is_none() && v.audio.is_none() {
                c.report(
                    m.span(),
                    format!(
                        "prompt {name:?}: a message's `mime_type` goes with `image` or `audio`"
                    ),
                );
            }
            for text in [&v.text, &v.resource].into_iter().flatten() {
                match Template::parse(text) {
                    Ok(tpl) => {
                        for var in tpl.vars().filter(|var| !args.contains(var)) {
                            c.report(
                                m.span(),
                                format!("prompt {name:?}: {{{var}}} is not one of its arguments"),
                            );
                        }
                    }
                    Err(e) => c.report(m.span(), format!("prompt {name:?}: {e}")),
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::LoadedConfig;

    fn problems(text: &str) -> Vec<(usize, String)> {
        match LoadedConfig::from_str("t.toml", text) {
            Ok(_) => Vec::new(),
            Err(p) => p.0.into_iter().map(|p| (p.line, p.message)).collect(),
        }
    }

    #[test]
    fn good_content_passes() {
        let ok = r#"
[[resources]]
name = "guide"
text = "hi"

[[resource_templates]]
name = "order"
uri_template = "orders://{id}"
text = "Order {id}, {{literal}}"
complete.id = { values = ["1", "2"] }

[[prompts]]
name = "ask"
[[prompts.arguments]]
name = "topic"
[[prompts.messages]]
text = "Tell me about {topic}"
"#;
        assert_eq!(problems(ok), Vec::new());
    }

    #[test]
    fn each_mistake_is_reported_at_its_line() {
        let bad = r#"
[[resources]]
name = "a b"
text = "x"
file = "y"

[[resources]]
name = "nouri"
uri = "no scheme"
text = "x"

[[resource_templates]]
name = "t"
uri_template = "orders://{id}{part}"
text = "x"

[[resource_templates]]
name = "u"
uri_template = "orders://{id}"
text = "Order {number}"
complete.other = { values = ["1"] }

[[prompts]]
name = "p"
[[prompts.messages]]
text = "Hello {who}"
[[prompts.messages]]
text = "x"
image = "y.png"
"#;
        let found = problems(bad);
        let has =
            |line: usize, part: &str| found.iter().any(|(l, m)| *l == line && m.contains(part));
        assert!(has(3, "must be 1 to 64"), "{found:?}");
        assert!(has(3, "exactly one of `text` and `file`"), "{found:?}");
        assert!(has(9, "is not a URI"), "{found:?}");
        assert!(has(14, "separated by literal text"), "{found:?}");
        assert!(has(18, "text uses {number}"), "{found:?}");
        assert!(has(21, "complete.other"), "{found:?}");
        assert!(has(25, "{who} is not one of its arguments"), "{found:?}");
        assert!(has(27, "exactly one of `text`, `image`"), "{found:?}");
    }
}
