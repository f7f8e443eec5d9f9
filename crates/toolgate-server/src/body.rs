//! [`JsonBody`]: the request body as JSON, with clear errors for everything a
//! client can get wrong (too large, not JSON, too deep, not an object).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use serde_json::{Map, Value};
use toolgate_core::ErrorKind;

use crate::{ApiError, AppState};

/// A request body that is a JSON object.
#[derive(Debug)]
pub struct JsonBody(pub Map<String, Value>);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(_) => ApiError::new(
                ErrorKind::PayloadTooLarge,
                format!(
                    "the body is larger than the limit of {} bytes",
                    state.limits.body_limit_bytes
                ),
            ),
            other => ApiError::new(ErrorKind::InvalidJson, other.body_text()),
        })?;
        parse_object(&bytes, state.limits.json_max_depth).map(JsonBody)
    }
}

/// Parse `bytes` as a JSON object no deeper than `max_depth`.
///
/// # Errors
/// `invalid_json` saying what is wrong and where.
pub fn parse_object(bytes: &[u8], max_depth: usize) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorKind::InvalidJson,
            "the body is empty; send a JSON object (`{}` for no arguments)",
        ));
    }
    check_depth(bytes, max_depth)?;
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            ErrorKind::InvalidJson,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ApiError::new(
            ErrorKind::InvalidJson,
            format!("the body must be a JSON object, not {}", kind_of(&other)),
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Refuse nesting deeper than `max` before parsing, in one pass over the bytes.
/// Hand-written because serde_json only offers a fixed recursion limit (128) and we
/// want a configurable one with a message that says what the limit is.
fn check_depth(bytes: &[u8], max: usize) -> Result<(), ApiError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return Err(ApiError::new(
                        ErrorKind::InvalidJson,
                        format!("the body nests deeper than the limit of {max} levels"),
                    ));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_only_structure_outside_strings() {
        assert!(check_depth(br#"{"a": "[[[[[[[[[["}"#, 2).is_ok());
        assert!(check_depth(br#"{"a": [[1]]}"#, 2).is_err());
        assert!(check_depth(br#"{"a": "\"[[[["}"#, 1).is_ok());
    }

    #[test]
    fn non_objects_and_garbage_are_refused() {
        for body in [&b"[1]"[..], b"42", b"{", b"", b"  ", b"nul"] {
            let err = parse_object(body, 64).err().map(|e| e.code());
            assert_eq!(
                err,
                Some("invalid_json"),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(parse_object(b"{\"a\":1}", 64).is_ok());
    }
}
