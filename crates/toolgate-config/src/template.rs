//! `{name}` templates: the texts of prompts and resource templates, and URI
//! templates (RFC 6570 level 1, simple string expansion), which are also matched
//! against URIs to find the values of their variables.
//!
//! Written here rather than taken from a crate: the few URI-template crates expand
//! templates but none matches a URI back to its variables, which is what
//! `resources/read` needs, and both directions are a few lines for level 1.

use std::collections::BTreeMap;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Var(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parse `text`: `{name}` (letters, digits, `_`) is a variable, `{{` and `}}`
    /// are literal braces.
    ///
    /// # Errors
    /// An unclosed or empty `{`, a lone `}`, a name with other characters (which
    /// includes RFC 6570's operators `+ # . / ; ? &`, not supported).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("unclosed `{{{name}` in {text:?}")),
                        }
                    }
                    if name.is_empty()
                        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        return Err(format!(
                            "`{{{name}}}` in {text:?} is not a variable: names are letters, digits and _ (use {{{{ and }}}} for literal braces)"
                        ));
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Var(name));
                }
                '}' => return Err(format!("a lone `}}` in {text:?} (use }}}} for a brace)")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Self { pieces })
    }

    /// The variables, in order of appearance (repeats included).
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(v.as_str()),
            Piece::Literal(_) => None,
        })
    }

    /// Whether it has no variables.
    #[must_use]
    pub fn is_fixed(&self) -> bool {
        self.vars().next().is_none()
    }

    /// The text with each variable replaced by `value(name)` (empty when `None`).
    pub fn render<'a>(&self, value: impl Fn(&str) -> Option<&'a str>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(l) => out.push_str(l),
                Piece::Var(v) => out.push_str(value(v).unwrap_or_default()),
            }
        }
        out
    }

    /// Check it as a URI template: two variables must be separated by a literal
    /// (or a URI could not be matched back), and it must start with a scheme.
    ///
    /// # Errors
    /// What is wrong.
    pub fn check_uri(&self) -> Result<(), String> {
        let adjacent = self
            .pieces
            .windows(2)
            .any(|w| matches!(w, [Piece::Var(_), Piece::Var(_)]));
        if adjacent {
            return Err("two variables must be separated by literal text".to_owned());
        }
        match self.pieces.first() {
            Some(Piece::Literal(l)) if has_scheme(l) => Ok(()),
            _ => Err("it must start with a URI scheme (such as `orders://`)".to_owned()),
        }
    }

    /// The variables' values if `uri` is an expansion of this URI template: each
    /// variable matches a non-empty run without `/`, `?` or `#` up to the next
    /// literal, percent-decoded.
    #[must_use]
    pub fn match_uri(&self, uri: &str) -> Option<BTreeMap<String, String>> {
        let mut rest = uri;
        let mut values = BTreeMap::new();
        let mut pieces = self.pieces.iter().peekable();
        while let Some(piece) = pieces.next() {
            match piece {
                Piece::Literal(l) => rest = rest.strip_prefix(l.as_str())?,
                Piece::Var(name) => {
                    let end = match pieces.peek() {
                        Some(Piece::Literal(next)) => rest.find(next.as_str())?,
                        _ => rest.len(),
                    };
                    let raw = &rest[..end];
                    if raw.is_empty() || raw.contains(['/', '?', '#']) {
                        return None;
                    }
                    let value = percent_encoding::percent_decode_str(raw)
                        .decode_utf8()
                        .ok()?
                        .into_owned();
                    if values.get(name).is_some_and(|v| v != &value) {
                        return None;
                    }
                    values.insert(name.clone(), value);
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some(values)
    }
}

/// Whether `uri` starts with `scheme:` (RFC 3986: a letter, then letters, digits,
/// `+`, `-`, `.`).
#[must_use]
pub fn has_scheme(uri: &str) -> bool {
    let Some((scheme, _)) = uri.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn texts_render_and_braces_escape() {
        let t = Template::parse("Hi {name}, {{literal}} {name}").unwrap();
        assert_eq!(t.vars().collect::<Vec<_>>(), ["name", "name"]);
        assert_eq!(
            t.render(|v| (v == "name").then_some("Ada")),
            "Hi Ada, {literal} Ada"
        );
        for bad in ["{", "{}", "{a b}", "}", "{+path}", "x{a"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uri_templates_match_back() {
        let t = Template::parse("test://template/{id}/data").unwrap();
        t.check_uri().unwrap();
        let v = t.match_uri("test://template/123/data").unwrap();
        assert_eq!(v["id"], "123");
        assert_eq!(
            t.match_uri("test://template/a%20b/data").unwrap()["id"],
            "a b"
        );
        assert!(t.match_uri("test://template//data").is_none());
        assert!(t.match_uri("test://template/1/2/data").is_none());
        assert!(t.match_uri("test://template/1/datax").is_none());
        let tail = Template::parse("orders://{id}").unwrap();
        assert_eq!(tail.match_uri("orders://42").unwrap()["id"], "42");
        assert!(Template::parse("{a}{b}").unwrap().check_uri().is_err());
        assert!(
            Template::parse("no-scheme/{a}")
                .unwrap()
                .check_uri()
                .is_err()
        );
    }
}
