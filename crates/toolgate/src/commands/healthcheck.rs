//! `toolgate healthcheck`: GET a URL and exit 0 on `200`, 1 otherwise.
//!
//! For container health checks in images without a shell or curl (the release image
//! is `FROM scratch`). A plain HTTP/1.1 request over a [`TcpStream`], so the binary
//! needs no HTTP client for it. Docker reserves exit code 2 in a `HEALTHCHECK`, so
//! every failure, a malformed URL included, exits 1.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::EXIT_FAILURE;

/// The most of the response read while looking for the status line.
const MAX_HEAD: usize = 8 * 1024;

pub(super) async fn healthcheck(url: &str, timeout: Duration) -> i32 {
    let target = match Target::parse(url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("toolgate: healthcheck: {e}");
            return EXIT_FAILURE;
        }
    };
    match tokio::time::timeout(timeout, status_of(&target)).await {
        Ok(Ok(200)) => {
            println!("{url}: 200");
            0
        }
        Ok(Ok(status)) => {
            eprintln!("toolgate: healthcheck: {url}: status {status}");
            EXIT_FAILURE
        }
        Ok(Err(e)) => {
            eprintln!("toolgate: healthcheck: {url}: {e}");
            EXIT_FAILURE
        }
        Err(_) => {
            eprintln!(
                "toolgate: healthcheck: {url}: no answer within {} ms",
                timeout.as_millis()
            );
            EXIT_FAILURE
        }
    }
}

/// Where to send the request.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    /// Host name or address, without the brackets of an IPv6 literal.
    host: String,
    port: u16,
    /// `host[:port]` as written, for the `Host` header.
    authority: String,
    /// Path and query, starting with `/`.
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        let path = path.split('#').next().unwrap_or("/").to_owned();
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("{url:?}: the URL needs a host (and no user info)"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: unclosed [ in the host"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("{url:?}: bad port"))?,
                ),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            None => 80,
            Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port {p:?}"))?,
        };
        if host.is_empty() {
            return Err(format!("{url:?}: the URL needs a host"));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            path,
        })
    }
}

/// Send `GET` and return the status code of the answer.
async fn status_of(target: &Target) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect((target.host.as_str(), target.port)).await?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: toolgate-healthcheck\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        target.path, target.authority
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 1024];
    // Only the status line matters; stop reading once it is complete.
    while !head.contains(&b'\n') {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            break;
        }
    }
    parse_status_line(&head).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the answer is not an HTTP/1.x response",
        )
    })
}

/// The status code of `HTTP/1.x NNN reason`.
fn parse_status_line(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_urls() {
        let t = Target::parse("http://127.0.0.1:8080/healthz").unwrap();
        assert_eq!(
            t,
            Target {
                host: "127.0.0.1".into(),
                port: 8080,
                authority: "127.0.0.1:8080".into(),
                path: "/healthz".into(),
            }
        );
        let t = Target::parse("http://localhost").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("localhost", 80, "/")
        );
        let t = Target::parse("http://[::1]:9000/readyz?x=1#frag").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9000));
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("[::1]:9000", "/readyz?x=1")
        );
        let t = Target::parse("http://h:1?q").unwrap();
        assert_eq!(t.path, "/?q");
        for bad in [
            "https://127.0.0.1/healthz",
            "127.0.0.1:8080/healthz",
            "http://",
            "http://:8080/",
            "http://h:port/",
            "http://h:70000/",
            "http://[::1/",
            "http://u@h/",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 503\r\n"), Some(503));
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK"), Some(200));
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 2000 OK\r\n"), None);
        assert_eq!(parse_status_line(b""), None);
    }
}
