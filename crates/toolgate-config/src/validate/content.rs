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
