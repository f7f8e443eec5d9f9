//! The audit record and its hash chain.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One call, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the call ended, RFC 3339 UTC with milliseconds.
    pub ts: String,
    /// The key's name (never the key).
    pub key: String,
    /// Tool name.
    pub tool: String,
    /// `rest`, `batch`, `sse`, `ws`, `mcp` or `cli`.
    pub transport: String,
    /// `ok` or the error code.
    pub outcome: String,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// The request's trace id.
    pub trace_id: String,
    /// SHA-256 (hex) of the arguments as received (compact JSON).
    pub args_sha256: String,
    /// The arguments, for tools that opt in, with configured fields redacted.
    pub arguments: Option<Value>,
}

/// A record as stored: with its sequence number and chain hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    /// Position in the log, from 1.
    pub seq: i64,
    /// The record.
    #[serde(flatten)]
    pub record: Record,
    /// The previous record's hash.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

impl Record {
    /// The canonical bytes hashed into the chain: the fields in a fixed order, as
    /// compact JSON.
    #[must_use]
    pub fn canonical(&self) -> Vec<u8> {
        // Written field by field (each string JSON-escaped) rather than through a
        // `Value`: this runs once per call and allocation shows in throughput.
        let mut out = Vec::with_capacity(256);
        out.push(b'[');
        for (i, field) in [
            &self.ts,
            &self.key,
            &self.tool,
            &self.transport,
            &self.outcome,
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                out.push(b',');
            }
            let _ = serde_json::to_writer(&mut out, field);
        }
        out.extend_from_slice(format!(",{},", self.duration_ms).as_bytes());
        let _ = serde_json::to_writer(&mut out, &self.trace_id);
        out.push(b',');
        let _ = serde_json::to_writer(&mut out, &self.args_sha256);
        out.push(b',');
        let _ = serde_json::to_writer(&mut out, &self.arguments);
        out.push(b']');
        out
    }

    /// This record's hash after `prev_hash`.
    #[must_use]
    pub fn chain_hash(&self, prev_hash: &str) -> String {
        let mut h = Sha256::new();
        h.update(prev_hash.as_bytes());
        h.update(b"\n");
        h.update(self.canonical());
        hex::encode(h.finalize())
    }
}

/// SHA-256 (hex) of a JSON value in compact form.
#[must_use]
pub fn args_sha256(arguments: &Value) -> String {
    hex::encode(Sha256::digest(arguments.to_string().as_bytes()))
}

/// `arguments` with each named top-level field replaced by `"[redacted]"`.
#[must_use]
pub fn redact(arguments: &Value, fields: &[String]) -> Value {
    let mut v = arguments.clone();
    if let Some(map) = v.as_object_mut() {
        for f in fields {
            if let Some(slot) = map.get_mut(f) {
                *slot = Value::from("[redacted]");
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rec(tool: &str) -> Record {
        Record {
            ts: "2026-11-26T00:00:00.000Z".into(),
            key: "ci".into(),
            tool: tool.into(),
            transport: "rest".into(),
            outcome: "ok".into(),
            duration_ms: 3,
            trace_id: "t".into(),
            args_sha256: args_sha256(&json!({})),
            arguments: None,
        }
    }

    #[test]
    fn canonical_bytes_are_a_json_array_of_the_fields_in_order() {
        let r = rec("echo");
        let v: Value = serde_json::from_slice(&r.canonical()).unwrap_or_default();
        assert_eq!(
            v,
            json!([
                r.ts,
                "ci",
                "echo",
                "rest",
                "ok",
                3,
                "t",
                r.args_sha256,
                null
            ])
        );
    }

    #[test]
    fn any_change_changes_the_hash() {
        let a = rec("echo");
        let h = a.chain_hash(GENESIS);
        assert_eq!(h.len(), 64);
        assert_ne!(h, rec("fail").chain_hash(GENESIS));
        assert_ne!(h, a.chain_hash(&h));
    }

    #[test]
    fn redaction_replaces_named_fields_only() {
        let v = redact(&json!({"user": "a", "password": "p"}), &["password".into()]);
        assert_eq!(v, json!({"user": "a", "password": "[redacted]"}));
    }
}
