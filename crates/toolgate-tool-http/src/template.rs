//! URL and body templates.
//!
//! A URL template is split at load into its fixed origin (scheme, host, port: no
//! placeholder may stand there) and its path segments and query pairs, where
//! `{param}` placeholders may stand in segments and in query values. Filling a
//! template percent-encodes every argument for the place it goes, so an argument can
//! add neither a `/`, a `?`, a `#` nor an `&`, let alone change the host.

use std::collections::BTreeSet;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

/// Characters left as they are: RFC 3986 "unreserved".
pub(crate) const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A piece of templated text: literal or placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Param(String),
}

fn pieces(text: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        if start > 0 {
            out.push(Piece::Lit(rest[..start].to_owned()));
        }
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in {text:?}"))?;
        let name = &rest[start + 1..start + end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{{{name}}} is not a parameter name"));
        }
        out.push(Piece::Param(name.to_owned()));
        rest = &rest[start + end + 1..];
    }
    if rest.contains('}') {
        return Err(format!("stray `}}` in {text:?}"));
    }
    if !rest.is_empty() {
        out.push(Piece::Lit(rest.to_owned()));
    }
    Ok(out)
}

/// A parsed URL template.
#[derive(Debug, Clone)]
pub struct UrlTemplate {
    origin: String,
    segments: Vec<Vec<Piece>>,
    query: Vec<(String, Vec<Piece>)>,
    fragment: String,
}

/// The text of an argument as it goes into a URL or a string.
pub(crate) fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl UrlTemplate {
    /// Parse `template`.
    ///
    /// # Errors
    /// Not http(s), a placeholder in the origin or in a query name, or bad braces.
    pub fn parse(template: &str) -> Result<Self, String> {
        let (scheme, after) = template
            .split_once("://")
            .ok_or("the url must start with http:// or https://")?;
        if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
            return Err(format!(
                "scheme {scheme:?} is not allowed; use http or https"
            ));
        }
        let (main, fragment) = after.split_once('#').unwrap_or((after, ""));
        let (before_query, query) = main.split_once('?').unwrap_or((main, ""));
        let (authority, path) = before_query.split_once('/').unwrap_or((before_query, ""));
        if authority.is_empty() || authority.contains(['{', '}', '@']) {
            return Err("placeholders and user info may not stand in the host or port".to_owned());
        }
        if fragment.contains('{') {
            return Err("placeholders may not stand in the fragment".to_owned());
        }
        let segments = if path.is_empty() {
            Vec::new()
        } else {
            path.split('/').map(pieces).collect::<Result<_, _>>()?
        };
        let mut pairs = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if k.contains('{') {
                return Err(format!(
                    "query name {k:?}: placeholders may stand in values only"
                ));
            }
            pairs.push((k.to_owned(), pieces(v)?));
        }
        Ok(Self {
            origin: format!("{}://{authority}", scheme.to_ascii_lowercase()),
            segments,
            query: pairs,
            fragment: fragment.to_owned(),
        })
    }

    /// `scheme://host:port`, which no argument can change.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Parameters named in path segments (these must be given).
    #[must_use]
    pub fn path_params(&self) -> BTreeSet<String> {
        self.segments
            .iter()
            .flatten()
            .filter_map(param_name)
            .collect()
    }

    /// Every parameter the template names.
    #[must_use]
    pub fn params(&self) -> BTreeSet<String> {
        let mut all = self.path_params();
        all.extend(
            self.query
                .iter()
                .flat_map(|(_, v)| v.iter().filter_map(param_name)),
        );
        all
    }

    /// The URL for `args`. A query pair whose placeholders are all absent is left out.
    ///
    /// # Errors
    /// The name of a parameter whose value makes a whole path segment `.` or `..`:
    /// every URL parser (and so the upstream) would resolve it away, reaching a path
    /// the template does not name.
    pub fn fill(&self, args: &Map<String, Value>) -> Result<String, String> {
        let mut url = self.origin.clone();
        for seg in &self.segments {
            url.push('/');
            let start = url.len();
            let mut param = None;
            for p in seg {
                match p {
                    Piece::Lit(l) => url.push_str(l),
                    Piece::Param(n) => {
                        let v = args.get(n).map(text_of).unwrap_or_default();
                        url.extend(utf8_percent_encode(&v, ENCODE));
                        param = Some(n);
                    }
                }
            }
            if let Some(n) = param
                && matches!(&url[start..], "." | "..")
            {
                return Err(n.clone());
            }
        }
        let mut first = true;
        for (k, v) in &self.query {
            let has_param = v.iter().any(|p| matches!(p, Piece::Param(_)));
            let all_absent = v.iter().all(|p| match p {
                Piece::Param(n) => !args.contains_key(n),
                Piece::Lit(_) => true,
            });
            if has_param && all_absent {
                continue;
            }
            url.push(if first { '?' } else { '&' });
            first = false;
            url.push_str(k);
            url.push('=');
            for p in v {
                match p {
                    Piece::Lit(l) => url.push_str(l),
                    Piece::Param(n) => {
                        let val = args.get(n).map(text_of).unwrap_or_default();
                        url.extend(utf8_percent_encode(&val, ENCODE));
                    }
                }
            }
        }
        if !self.fragment.is_empty() {
            url.push('#');
            url.push_str(&self.fragment);
        }
        Ok(url)
    }
}

fn param_name(p: &Piece) -> Option<String> {
    match p {
        Piece::Param(n) => Some(n.clone()),
        Piece::Lit(_) => None,
    }
}

/// Parameters named in a body template.
#[must_use]
pub fn body_params(body: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect_body_params(body, &mut out);
    out
}

fn collect_body_params(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            if let Ok(ps) = pieces(s) {
                out.extend(ps.iter().filter_map(param_name));
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_body_params(x, out)),
        Value::Object(m) => m.values().for_each(|x| collect_body_params(x, out)),
        _ => {}
    }
}

/// Fill a body template: a string that is exactly `"{p}"` becomes the argument's JSON
/// value (`null` when absent); placeholders inside longer strings become its text.
#[must_use]
pub fn fill_body(template: &Value, args: &Map<String, Value>) -> Value {
    match template {
        Value::String(s) => match pieces(s) {
            Ok(ps) if ps.len() == 1 && matches!(&ps[0], Piece::Param(_)) => {
                let Piece::Param(n) = &ps[0] else {
                    return Value::Null;
                };
                args.get(n).cloned().unwrap_or(Value::Null)
            }
            Ok(ps) => Value::String(
                ps.iter()
                    .map(|p| match p {
                        Piece::Lit(l) => l.clone(),
                        Piece::Param(n) => args.get(n).map(text_of).unwrap_or_default(),
                    })
                    .collect(),
            ),
            Err(_) => template.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(|x| fill_body(x, args)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), fill_body(v, args)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn arguments_are_encoded_where_they_stand() {
        let t = UrlTemplate::parse(
            "https://api.example.com:8443/v1/users/{id}/posts?q={q}&lang=en&page={page}",
        )
        .unwrap();
        assert_eq!(t.origin(), "https://api.example.com:8443");
        let url = t
            .fill(&args(
                json!({"id": "../admin?x=1#", "q": "a b&c=d", "page": 2}),
            ))
            .unwrap();
        assert_eq!(
            url,
            "https://api.example.com:8443/v1/users/..%2Fadmin%3Fx%3D1%23/posts?q=a%20b%26c%3Dd&lang=en&page=2"
        );
        let url = t.fill(&args(json!({"id": "7"}))).unwrap();
        assert_eq!(
            url, "https://api.example.com:8443/v1/users/7/posts?lang=en",
            "absent optional values drop their pair"
        );
    }

    #[test]
    fn dot_segments_are_refused() {
        let t = UrlTemplate::parse("https://api.example.com/users/{id}/profile").unwrap();
        for dots in [".", ".."] {
            assert_eq!(t.fill(&args(json!({"id": dots}))), Err("id".to_owned()));
        }
        assert!(t.fill(&args(json!({"id": "..."}))).is_ok());
        assert!(t.fill(&args(json!({"id": "a.."}))).is_ok());
    }

    #[test]
    fn the_origin_cannot_be_templated() {
        for bad in [
            "https://{host}/x",
            "https://api.example.com:{port}/x",
            "https://user@api.example.com/x",
            "ftp://example.com/x",
            "example.com/x",
            "https://a.com/x?{k}=1",
            "https://a.com/{unclosed",
        ] {
            assert!(UrlTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_keep_types_for_whole_placeholders() {
        let t = json!({"n": "{n}", "greeting": "hi {name}!", "list": ["{n}"], "fixed": true});
        assert_eq!(
            body_params(&t).into_iter().collect::<Vec<_>>(),
            vec!["n", "name"]
        );
        let filled = fill_body(&t, &args(json!({"n": 3, "name": "Ada"})));
        assert_eq!(
            filled,
            json!({"n": 3, "greeting": "hi Ada!", "list": [3], "fixed": true})
        );
    }
}
