//! `Origin` validation for `/mcp`. The transport spec requires it against DNS
//! rebinding: a web page must not be able to drive a server that trusts its network
//! position. Only browsers send `Origin`, so requests without one pass; a request
//! with one passes only if it is listed in `mcp_allowed_origins`, or, when the server
//! listens on a loopback address, if it is a loopback origin (`localhost`,
//! `127.0.0.1`, `[::1]`, any port, http or https): a page served from the same
//! machine, as the MCP transport spec has local servers accept.
//!
//! Entries are `scheme://host[:port]`; a port of `*` matches any port, a missing port
//! means the scheme's default (80, 443), `null` matches the opaque origin and `*`
//! matches everything.

use axum::http::Uri;

/// One normalized origin: scheme and host in lowercase, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    /// `None` in an allowed entry means any port.
    port: Option<u16>,
}

/// The allowed origins.
#[derive(Debug, Default)]
pub(super) struct Origins {
    any: bool,
    null: bool,
    allowed: Vec<Origin>,
}

impl Origins {
    /// From the config's list; entries that do not parse are logged and ignored.
    /// With `loopback` (the server listens on a loopback address), loopback origins
    /// are allowed as well.
    pub(super) fn new(entries: &[String], loopback: bool) -> Self {
        let mut this = Self::default();
        if loopback {
            for host in ["localhost", "127.0.0.1", "[::1]"] {
                for scheme in ["http", "https"] {
                    this.allowed
                        .extend(parse(&format!("{scheme}://{host}:*"), true));
                }
            }
        }
        for entry in entries {
            let entry = entry.trim();
            match entry {
                "*" => this.any = true,
                "null" => this.null = true,
                _ => match parse(entry, true) {
                    Some(o) => this.allowed.push(o),
                    None => tracing::warn!(
                        origin = entry,
                        "mcp_allowed_origins entry is not scheme://host[:port]; ignored"
                    ),
                },
            }
        }
        this
    }

    /// Whether a request whose `Origin` header is `value` may proceed.
    pub(super) fn allows(&self, value: &str) -> bool {
        if self.any {
            return true;
        }
        let value = value.trim();
        if value.eq_ignore_ascii_case("null") {
            return self.null;
        }
        let Some(origin) = parse(value, false) else {
            return false;
        };
        self.allowed.iter().any(|a| {
            a.scheme == origin.scheme
                && a.host == origin.host
                && a.port.is_none_or(|p| Some(p) == origin.port)
        })
    }
}

/// Parse `scheme://host[:port]`. In an allowed entry (`pattern`), `:*` leaves the
/// port open; elsewhere an absent port is the scheme's default.
fn parse(value: &str, pattern: bool) -> Option<Origin> {
    let (value, any_port) = match value.strip_suffix(":*") {
        Some(base) if pattern => (base, true),
        _ => (value, false),
    };
    let uri: Uri = value.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    // An origin has no path, query, userinfo or fragment.
    if uri
        .path_and_query()
        .is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty())
        || authority.as_str().contains('@')
    {
        return None;
    }
    let default_port = match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    let port = if any_port {
        None
    } else {
        authority.port_u16().or(default_port)
    };
    Some(Origin {
        host: authority
            .host()
            .trim_matches(['[', ']'])
            .to_ascii_lowercase(),
        scheme,
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(list: &[&str]) -> Origins {
        Origins::new(
            &list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            false,
        )
    }

    #[test]
    fn a_loopback_server_accepts_loopback_origins_only() {
        let o = Origins::new(&[], true);
        for good in [
            "http://localhost:6274",
            "http://127.0.0.1:3000",
            "http://[::1]:8080",
            "https://localhost",
            "http://LOCALHOST:1",
        ] {
            assert!(o.allows(good), "{good}");
        }
        for bad in [
            "http://evil.example",
            "http://localhost.evil.example:80",
            "http://127.0.0.2:80",
            "null",
        ] {
            assert!(!o.allows(bad), "{bad}");
        }
        assert!(!Origins::new(&[], false).allows("http://localhost:6274"));
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        let o = origins(&[]);
        assert!(!o.allows("http://localhost:6274"));
        assert!(!o.allows("null"));
    }

    #[test]
    fn ports_default_by_scheme_and_star_matches_any() {
        let o = origins(&["https://app.example.com", "http://localhost:*"]);
        assert!(o.allows("https://app.example.com"));
        assert!(o.allows("https://APP.example.com:443"));
        assert!(!o.allows("https://app.example.com:8443"));
        assert!(!o.allows("http://app.example.com"));
        assert!(o.allows("http://localhost:6274"));
        assert!(o.allows("http://localhost"));
        assert!(!o.allows("http://localhost.evil.com"));
        assert!(!o.allows("garbage"));
    }

    #[test]
    fn wildcard_and_null_entries() {
        assert!(origins(&["*"]).allows("https://anything.example"));
        assert!(origins(&["null"]).allows("null"));
        assert!(origins(&["http://[::1]:8080"]).allows("http://[::1]:8080"));
    }
}
