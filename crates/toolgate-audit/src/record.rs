//! The audit record and its hash chain.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One call, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the call ended, RFC 3339 UTC with milliseconds ([`Timestamps`]).
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

/// A finished call as the hot path hands it over: nothing formatted yet (no
/// timestamp text, no hex), so that building it costs a few moves. The writer thread
/// turns it into a [`Record`] with [`Entry::into_record`].
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// When the call ended.
    pub ended: SystemTime,
    /// The key's name (never the key).
    pub key: String,
    /// Tool name.
    pub tool: String,
    /// `rest`, `batch`, `sse`, `ws`, `mcp` or `cli`.
    pub transport: &'static str,
    /// `ok` or the error code.
    pub outcome: &'static str,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// The request's trace id.
    pub trace_id: String,
    /// SHA-256 of the arguments as received (compact JSON), see [`args_digest`].
    pub args_sha256: [u8; 32],
    /// The arguments, for tools that opt in, with configured fields redacted.
    pub arguments: Option<Value>,
}

impl Entry {
    /// The record as stored, its time formatted by `stamps`.
    #[must_use]
    pub fn into_record(self, stamps: &mut Timestamps) -> Record {
        Record {
            ts: stamps.format(self.ended),
            key: self.key,
            tool: self.tool,
            transport: self.transport.to_owned(),
            outcome: self.outcome.to_owned(),
            duration_ms: self.duration_ms,
            trace_id: self.trace_id,
            args_sha256: hex32(&self.args_sha256),
            arguments: self.arguments,
        }
    }
}

/// RFC 3339 UTC timestamps with milliseconds (`2026-11-26T08:30:00.125Z`: fixed
/// width, so that they sort as text), the date and time of day formatted once a
/// second.
#[derive(Debug, Default)]
pub struct Timestamps {
    stamp: toolgate_telemetry::clock::SecondStamp,
}

impl Timestamps {
    /// `t` as text; a time before 1970 is written as the epoch.
    pub fn format(&mut self, t: SystemTime) -> String {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let ms = since.subsec_millis();
        format!("{}.{ms:03}Z", self.stamp.get(since.as_secs()))
    }
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
        let mut out = Vec::with_capacity(256);
        self.write_canonical(&mut out);
        out
    }

    /// [`Record::canonical`] appended to `out` (the writer reuses one buffer).
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        // Written field by field (each string JSON-escaped) rather than through a
        // `Value`: this runs once per call and allocation shows in throughput.
        out.push(b'[');
        for field in [
            &self.ts,
            &self.key,
            &self.tool,
            &self.transport,
            &self.outcome,
        ] {
            let _ = serde_json::to_writer(&mut *out, field);
            out.push(b',');
        }
        out.extend_from_slice(itoa::Buffer::new().format(self.duration_ms).as_bytes());
        out.push(b',');
        let _ = serde_json::to_writer(&mut *out, &self.trace_id);
        out.push(b',');
        let _ = serde_json::to_writer(&mut *out, &self.args_sha256);
        out.push(b',');
        let _ = serde_json::to_writer(&mut *out, &self.arguments);
        out.push(b']');
    }

    /// This record's hash after `prev_hash`.
    #[must_use]
    pub fn chain_hash(&self, prev_hash: &str) -> String {
        let mut buf = Vec::with_capacity(256);
        hex::encode(self.chain_digest(prev_hash, &mut buf))
    }

    /// This record's hash after `prev_hash`, as bytes; `buf` is scratch space.
    pub fn chain_digest(&self, prev_hash: &str, buf: &mut Vec<u8>) -> [u8; 32] {
        buf.clear();
        buf.extend_from_slice(prev_hash.as_bytes());
        buf.push(b'\n');
        self.write_canonical(buf);
        Sha256::digest(&buf[..]).into()
    }
}

/// 32 bytes as lowercase hex (what [`hex::encode`] returns, without its per-char
/// string building).
#[must_use]
pub fn hex32(bytes: &[u8; 32]) -> String {
    let mut buf = [0u8; 64];
    // 64 bytes is exactly the room 32 bytes need, and hex digits are ASCII.
    let _ = hex::encode_to_slice(bytes, &mut buf);
    std::str::from_utf8(&buf)
        .map(str::to_owned)
        .unwrap_or_default()
}

/// SHA-256 (hex) of a JSON value in compact form.
#[must_use]
pub fn args_sha256(arguments: &Value) -> String {
    hex::encode(args_digest(arguments))
}

/// SHA-256 of a JSON value in compact form, serialized straight into the hash (no
/// intermediate string: this runs on every call's hot path).
#[must_use]
pub fn args_digest(arguments: &Value) -> [u8; 32] {
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = Hashing(Sha256::new());
    // Writing a `Value` into an infallible writer cannot fail.
    let _ = serde_json::to_writer(&mut h, arguments);
    h.0.finalize().into()
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
#[allow(clippy::unwrap_used)]
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
    fn the_streamed_digest_is_the_hash_of_the_compact_text() {
        let v = json!({"b": [1, 2.5, "x\u{1}"], "a": {"k": null}});
        let text = v.to_string();
        assert_eq!(
            args_sha256(&v),
            hex::encode(Sha256::digest(text.as_bytes()))
        );
        let r = rec("echo");
        assert_eq!(
            r.chain_hash(GENESIS),
            hex::encode(Sha256::digest(
                [GENESIS.as_bytes(), b"\n", &r.canonical()].concat()
            ))
        );
    }

    #[test]
    fn hex32_is_hex_encode() {
        let bytes: [u8; 32] = Sha256::digest(b"x").into();
        assert_eq!(hex32(&bytes), hex::encode(bytes));
    }

    #[test]
    fn timestamps_are_fixed_width_rfc3339_with_milliseconds() {
        let mut stamps = Timestamps::default();
        let at =
            |secs: u64, ms: u64| UNIX_EPOCH + std::time::Duration::from_millis(secs * 1000 + ms);
        assert_eq!(stamps.format(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            stamps.format(at(1_795_681_800, 5)),
            "2026-11-26T08:30:00.005Z"
        );
        assert_eq!(
            stamps.format(at(1_795_681_800, 999)),
            "2026-11-26T08:30:00.999Z"
        );
        assert_eq!(
            stamps.format(at(1_795_681_861, 120)),
            "2026-11-26T08:31:01.120Z"
        );
        for (secs, ms) in [(1_700_000_000, 1), (1_800_000_000, 250), (951_782_400, 7)] {
            let ours = stamps.format(at(secs, ms));
            // The same instant as the time crate writes it for the whole second.
            let whole = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap())
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            let expected = format!("{}.{ms:03}Z", whole.trim_end_matches('Z'));
            assert_eq!(ours, expected);
            assert_eq!(ours.len(), 24);
        }
        assert_eq!(
            stamps.format(UNIX_EPOCH - std::time::Duration::from_secs(5)),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn redaction_replaces_named_fields_only() {
        let v = redact(&json!({"user": "a", "password": "p"}), &["password".into()]);
        assert_eq!(v, json!({"user": "a", "password": "[redacted]"}));
    }
}
