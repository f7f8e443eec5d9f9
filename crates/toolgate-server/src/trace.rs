//! Trace ids: taken from a valid W3C `traceparent` header, generated otherwise, and
//! kept in a task-local for the length of the request so that every error body and
//! log line of the request can name it.

use axum::http::HeaderMap;

tokio::task_local! {
    /// The trace id of the request being served on this task.
    pub static TRACE_ID: String;
}

/// The current request's trace id, if the task serves one.
#[must_use]
pub fn current() -> Option<String> {
    TRACE_ID.try_with(Clone::clone).ok()
}

/// The trace id of a request: from `traceparent` when valid, else a new random one.
#[must_use]
pub fn from_headers(headers: &HeaderMap) -> String {
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent)
        .unwrap_or_else(generate)
}

/// The trace id inside a `traceparent` value (`00-<32 hex>-<16 hex>-<2 hex>`).
#[must_use]
pub fn parse_traceparent(value: &str) -> Option<String> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let parent = parts.next()?;
    let flags = parts.next()?;
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && hex(flags, 2);
    valid.then(|| trace_id.to_owned())
}

/// A fresh random trace id (128 bits, lowercase hex).
#[must_use]
pub fn generate() -> String {
    let mut bytes = [0u8; 16];
    // The OS random source failing is not recoverable in any useful way; a fixed
    // non-zero id keeps requests served and is obviously not random in logs.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = [1; 16];
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_honoured_only_when_valid() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(
            parse_traceparent(&format!("00-{id}-00f067aa0ba902b7-01")).as_deref(),
            Some(id)
        );
        assert_eq!(
            parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(parse_traceparent("garbage"), None);
        assert_eq!(generate().len(), 32);
    }
}
