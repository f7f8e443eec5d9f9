//! The WebSocket messages: parsing what clients send, shaping what the server sends.
//!
//! Client: `{"type": "call", "id", "tool", "arguments"?, "timeout_ms"?}` and
//! `{"type": "cancel", "id"}`. Server: `{"type": "progress" | "result" | "error", ...}`.

use std::time::Duration;

use serde_json::{Map, Value, json};
use toolgate_core::{ErrorKind, Progress};

use crate::ApiError;
use crate::body::parse_object;
use crate::transport::sse::progress_json;

/// A call the client asked for.
#[derive(Debug)]
pub(super) struct CallRequest {
    /// The client's id, unique among the socket's calls in flight.
    pub(super) id: String,
    /// Tool name.
    pub(super) tool: String,
    /// Arguments object (`{}` when absent).
    pub(super) arguments: Value,
    /// Lowers the call's deadline, like `X-Request-Timeout-Ms`.
    pub(super) timeout: Option<Duration>,
}

/// A message from the client.
#[derive(Debug)]
pub(super) enum ClientMessage {
    /// Start a call.
    Call(CallRequest),
    /// Cancel the call in flight with this id.
    Cancel(String),
}

/// A message the server refuses; answered with an `error` message that names the
/// message's id when it had a readable one.
#[derive(Debug)]
pub(super) struct Refused {
    /// The id, if the message had one.
    pub(super) id: Option<String>,
    /// What is wrong.
    pub(super) error: ApiError,
}

/// Parse one text or binary message.
pub(super) fn parse(bytes: &[u8], max_depth: usize) -> Result<ClientMessage, Refused> {
    let object = parse_object(bytes, max_depth).map_err(|error| Refused { id: None, error })?;
    let id = object.get("id").and_then(Value::as_str).map(str::to_owned);
    let mut problems = Problems::new();
    let message = match object.get("type").and_then(Value::as_str) {
        Some("call") => call(&object, &mut problems).map(ClientMessage::Call),
        Some("cancel") => {
            check_fields(&object, &["type", "id"], &mut problems);
            required_id(&object, &mut problems).map(ClientMessage::Cancel)
        }
        _ => {
            problems.push((
                "/type".to_owned(),
                "must be \"call\" or \"cancel\"".to_owned(),
            ));
            None
        }
    };
    match message {
        Some(message) if problems.is_empty() => Ok(message),
        _ => {
            let error = ApiError::new(
                ErrorKind::InvalidArguments,
                format!("the message has {} problem(s)", problems.len().max(1)),
            );
            let error = problems.into_iter().fold(error, |e, (pointer, message)| {
                e.push_field(pointer, message)
            });
            Err(Refused { id, error })
        }
    }
}

type Problems = Vec<(String, String)>;

fn call(object: &Map<String, Value>, problems: &mut Problems) -> Option<CallRequest> {
    check_fields(
        object,
        &["type", "id", "tool", "arguments", "timeout_ms"],
        problems,
    );
    let id = required_id(object, problems);
    let tool = match object.get("tool") {
        Some(Value::String(tool)) => Some(tool.clone()),
        _ => {
            problems.push(("/tool".to_owned(), "required: the tool name".to_owned()));
            None
        }
    };
    let arguments = match object.get("arguments") {
        None => Some(Value::Object(Map::new())),
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => {
            problems.push(("/arguments".to_owned(), "must be an object".to_owned()));
            None
        }
    };
    let timeout = match object.get("timeout_ms") {
        None => Some(None),
        Some(v) => match v.as_u64().filter(|ms| *ms > 0) {
            Some(ms) => Some(Some(Duration::from_millis(ms))),
            None => {
                problems.push((
                    "/timeout_ms".to_owned(),
                    "must be a positive integer".to_owned(),
                ));
                None
            }
        },
    };
    Some(CallRequest {
        id: id?,
        tool: tool?,
        arguments: arguments?,
        timeout: timeout?,
    })
}

fn required_id(object: &Map<String, Value>, problems: &mut Problems) -> Option<String> {
    match object.get("id") {
        Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
        _ => {
            problems.push(("/id".to_owned(), "required: a non-empty string".to_owned()));
            None
        }
    }
}

fn check_fields(object: &Map<String, Value>, allowed: &[&str], problems: &mut Problems) {
    for key in object.keys() {
        if !allowed.contains(&key.as_str()) {
            let pointer = format!("/{}", key.replace('~', "~0").replace('/', "~1"));
            problems.push((pointer, format!("unknown field {key:?}")));
        }
    }
}

// === server messages ===

/// `{"type": "progress", "id", "tool", "progress", "total"?, "message"?}`, as text.
pub(super) fn progress(id: &str, tool: &str, p: &Progress) -> String {
    let mut v = progress_json(id, tool, p);
    v.kind = Some("progress");
    v.to_json()
}

/// A batch-style entry as a `result` message.
pub(super) fn result(mut entry: Value) -> Value {
    entry["type"] = json!("result");
    entry
}

/// `{"type": "error", "id"?, "error": problem}`.
pub(super) fn error(id: Option<&str>, error: &ApiError) -> Value {
    let mut v = json!({"type": "error", "error": error.to_problem()});
    if let Some(id) = id {
        v["id"] = json!(id);
    }
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn refused(text: &str) -> Refused {
        parse(text.as_bytes(), 8).expect_err(text)
    }

    #[test]
    fn calls_and_cancels_parse() {
        let Ok(ClientMessage::Call(c)) = parse(
            br#"{"type":"call","id":"a","tool":"echo","timeout_ms":5}"#,
            8,
        ) else {
            panic!("not a call");
        };
        assert_eq!((c.id.as_str(), c.tool.as_str()), ("a", "echo"));
        assert_eq!(c.arguments, json!({}));
        assert_eq!(c.timeout, Some(Duration::from_millis(5)));
        assert!(matches!(
            parse(br#"{"type":"cancel","id":"a"}"#, 8),
            Ok(ClientMessage::Cancel(id)) if id == "a"
        ));
    }

    #[test]
    fn bad_messages_are_refused_with_their_id() {
        let r = refused("nope");
        assert_eq!((r.id, r.error.code()), (None, "invalid_json"));
        let r = refused(r#"{"type":"call","id":"x","arguments":[]}"#);
        assert_eq!(r.id.as_deref(), Some("x"));
        let problem = r.error.to_problem();
        assert_eq!(problem["code"], "invalid_arguments");
        let pointers: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["pointer"].as_str().unwrap())
            .collect();
        assert_eq!(pointers, ["/tool", "/arguments"]);
        assert_eq!(
            refused(r#"{"type":"shout"}"#).error.code(),
            "invalid_arguments"
        );
        assert_eq!(
            refused(r#"{"type":"cancel"}"#).error.code(),
            "invalid_arguments"
        );
        assert_eq!(
            refused(r#"{"type":"cancel","id":"a","x":1}"#).error.code(),
            "invalid_arguments"
        );
    }
}
