//! Content blocks: how a tool returns more than JSON (images, audio, embedded
//! resources, several parts).
//!
//! A tool's output of the shape `{"content": [block, ...]}`, where every block is
//! an object with a `type` of `text`, `image`, `audio`, `resource` or
//! `resource_link` in MCP's encoding, is content: MCP passes the blocks through as
//! they are, and REST, SSE and WebSocket return the same object as the output. Any
//! other output is JSON, which MCP sends as text (and as `structuredContent` when
//! the tool declares an object output schema). The helpers build blocks without
//! spelling MCP's field names by hand.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::ToolOutput;

/// The block types content may hold.
pub const BLOCK_TYPES: &[&str] = &["text", "image", "audio", "resource", "resource_link"];

/// An output made of `blocks`.
#[must_use]
pub fn output(blocks: Vec<Value>) -> ToolOutput {
    json!({ "content": blocks })
}

/// A text block.
#[must_use]
pub fn text(text: impl Into<String>) -> Value {
    json!({ "type": "text", "text": text.into() })
}

/// An image block of `bytes` (`mime` such as `image/png`).
#[must_use]
pub fn image(bytes: &[u8], mime: &str) -> Value {
    json!({ "type": "image", "data": STANDARD.encode(bytes), "mimeType": mime })
}

/// An audio block of `bytes` (`mime` such as `audio/wav`).
#[must_use]
pub fn audio(bytes: &[u8], mime: &str) -> Value {
    json!({ "type": "audio", "data": STANDARD.encode(bytes), "mimeType": mime })
}

/// An embedded text resource.
#[must_use]
pub fn resource_text(uri: &str, mime: &str, text: impl Into<String>) -> Value {
    json!({ "type": "resource", "resource": { "uri": uri, "mimeType": mime, "text": text.into() } })
}

/// An embedded binary resource.
#[must_use]
pub fn resource_blob(uri: &str, mime: &str, bytes: &[u8]) -> Value {
    json!({ "type": "resource", "resource": { "uri": uri, "mimeType": mime, "blob": STANDARD.encode(bytes) } })
}

/// The blocks of `output`, if it is content.
#[must_use]
pub fn blocks(output: &Value) -> Option<&Vec<Value>> {
    let map = output.as_object()?;
    if map.len() != 1 {
        return None;
    }
    let blocks = map.get("content")?.as_array()?;
    blocks
        .iter()
        .all(|b| {
            b.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| BLOCK_TYPES.contains(&t))
        })
        .then_some(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_recognised_and_json_is_not() {
        let out = output(vec![text("hi"), image(&[1, 2], "image/png")]);
        assert_eq!(blocks(&out).map(Vec::len), Some(2));
        assert_eq!(out["content"][1]["data"], "AQI=");
        for other in [
            json!({"content": "text"}),
            json!({"content": [{"type": "video"}]}),
            json!({"content": [], "more": 1}),
            json!([1]),
        ] {
            assert!(blocks(&other).is_none(), "{other}");
        }
    }
}
