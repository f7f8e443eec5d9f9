//! The audit record and its hash chain.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

type HmacSha256 = hmac::Hmac<Sha256>;

/// How the chain's hashes are computed: SHA-256 (anyone can recompute them, so only
/// changes inside the chain are detected), or HMAC-SHA-256 under a secret key (nobody
/// without the key can rewrite the chain so that it verifies).
#[derive(Clone, Default)]
pub struct Chain {
    key: Option<std::sync::Arc<[u8]>>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.debug_struct("Chain")
            .field("keyed", &self.key.is_some())
            .finish()
    }
}

/// What the key's fingerprint is an HMAC of.
const FINGERPRINT_INPUT: &[u8] = b"toolgate audit chain key";

impl Chain {
    /// A chain of plain SHA-256 hashes.
    #[must_use]
    pub fn unkeyed() -> Self {
        Self::default()
    }

    /// A chain of HMAC-SHA-256 hashes under `key`.
    #[must_use]
    pub fn keyed(key: &[u8]) -> Self {
        Self {
            key: Some(key.into()),
        }
    }

    /// Whether the chain is keyed.
    #[must_use]
    pub fn is_keyed(&self) -> bool {
        self.key.is_some()
    }

    /// The name stored with the log: `sha256` or `hmac-sha256`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        if self.key.is_some() {
            "hmac-sha256"
        } else {
            "sha256"
        }
    }

    /// A value stored with a keyed log so that a different key is refused at open
    /// (an HMAC of a fixed text: it does not reveal the key). Empty when unkeyed.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        self.key
            .as_ref()
            .map(|k| hex::encode(Self::mac(k, FINGERPRINT_INPUT)))
            .unwrap_or_default()
    }

    fn mac(key: &[u8], bytes: &[u8]) -> [u8; 32] {
        // Any key length is valid for HMAC; the error branch cannot be taken.
        match HmacSha256::new_from_slice(key) {
            Ok(mut m) => {
                m.update(bytes);
                m.finalize().into_bytes().into()
            }
            Err(_) => Sha256::digest(bytes).into(),
        }
    }

    /// The digest of `bytes` under this chain.
    #[must_use]
    pub fn digest(&self, bytes: &[u8]) -> [u8; 32] {
        match &self.key {
            Some(k) => Self::mac(k, bytes),
            None => Sha256::digest(bytes).into(),
        }
    }

    /// Check that a log stored with `kind` and `fingerprint` can be continued or
    /// verified with this chain.
    ///
    /// # Errors
    /// What does not match, in words for the operator.
    pub fn matches(&self, kind: &str, fingerprint: &str) -> Result<(), String> {
        match (kind, self.is_keyed()) {
            ("sha256", false) => Ok(()),
            ("sha256", true) => Err(
                "the audit log was started without an HMAC key; keep it unkeyed, or start a new log for the keyed chain"
                    .to_owned(),
            ),
            ("hmac-sha256", false) => Err(
                "the audit log's chain is keyed (HMAC-SHA-256): give its key (the variable named by [audit] hmac_key_env, or TOOLGATE_AUDIT_HMAC_KEY)"
                    .to_owned(),
            ),
            ("hmac-sha256", true) if self.fingerprint() == fingerprint => Ok(()),
            ("hmac-sha256", true) => {
                Err("the audit log was written under a different HMAC key".to_owned())
            }
            (other, _) => Err(format!("unknown audit chain kind {other:?}")),
        }
    }
}

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who called with a bearer token: the token's issuer, subject and OAuth client
/// (never the token itself). Callers with an API key have none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Caller {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// The OAuth client the token was issued to (`client_id`, or `azp`), when it says.
    pub client_id: Option<String>,
}

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
    /// A token caller's issuer (`iss`); absent for API keys.
    #[serde(default)]
    pub issuer: Option<String>,
    /// A token caller's subject (`sub`).
    #[serde(default)]
    pub subject: Option<String>,
    /// A token caller's OAuth client id, when the token names one.
    #[serde(default)]
    pub client_id: Option<String>,
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
    /// A token caller's identity (shared with the request, so handing it over is a
    /// reference count).
    pub caller: Option<std::sync::Arc<Caller>>,
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
            issuer: self.caller.as_ref().map(|c| c.issuer.clone()),
            subject: self.caller.as_ref().map(|c| c.subject.clone()),
            client_id: self.caller.as_ref().and_then(|c| c.client_id.clone()),
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
    ///
    /// A token caller's identity is a tenth element, `[issuer, subject, client_id]`,
    /// present only when the record has one: records of key callers (and every
    /// record written before the identity fields existed) hash exactly as they did,
    /// so older logs still verify, and erasing a record's identity breaks its hash.
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
        if self.issuer.is_some() || self.subject.is_some() || self.client_id.is_some() {
            out.push(b',');
            let _ =
                serde_json::to_writer(&mut *out, &(&self.issuer, &self.subject, &self.client_id));
        }
        out.push(b']');
    }

    /// This record's hash after `prev_hash`.
    #[must_use]
    pub fn chain_hash(&self, prev_hash: &str, chain: &Chain) -> String {
        let mut buf = Vec::with_capacity(256);
        hex::encode(self.chain_digest(prev_hash, &mut buf, chain))
    }

    /// This record's hash after `prev_hash`, as bytes; `buf` is scratch space.
    pub fn chain_digest(&self, prev_hash: &str, buf: &mut Vec<u8>, chain: &Chain) -> [u8; 32] {
        buf.clear();
        buf.extend_from_slice(prev_hash.as_bytes());
        buf.push(b'\n');
        self.write_canonical(buf);
        chain.digest(&buf[..])
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
            issuer: None,
            subject: None,
            client_id: None,
        }
    }

    #[test]
    fn a_token_callers_identity_is_hashed_and_a_keys_record_hashes_as_before() {
        let plain = Chain::unkeyed();
        let key = rec("echo");
        // The nine-element form, byte for byte what records were hashed as before
        // the identity fields.
        let v: Value = serde_json::from_slice(&key.canonical()).unwrap_or_default();
        assert_eq!(v.as_array().map(Vec::len), Some(9));
        let mut token = rec("echo");
        token.issuer = Some("https://idp".into());
        token.subject = Some("alice".into());
        token.client_id = Some("agent".into());
        let v: Value = serde_json::from_slice(&token.canonical()).unwrap_or_default();
        assert_eq!(v[9], json!(["https://idp", "alice", "agent"]));
        let h = token.chain_hash(GENESIS, &plain);
        assert_ne!(h, key.chain_hash(GENESIS, &plain));
        let mut other = token.clone();
        other.subject = Some("bob".into());
        assert_ne!(h, other.chain_hash(GENESIS, &plain));
        let mut no_client = token.clone();
        no_client.client_id = None;
        assert_ne!(h, no_client.chain_hash(GENESIS, &plain));
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
        let plain = Chain::unkeyed();
        let h = a.chain_hash(GENESIS, &plain);
        assert_eq!(h.len(), 64);
        assert_ne!(h, rec("fail").chain_hash(GENESIS, &plain));
        assert_ne!(h, a.chain_hash(&h, &plain));
    }

    #[test]
    fn a_keyed_chain_depends_on_the_key_and_checks_it() {
        let r = rec("echo");
        let k1 = Chain::keyed(b"first key, long enough to be a key");
        let k2 = Chain::keyed(b"second key, long enough to be a key");
        let plain = r.chain_hash(GENESIS, &Chain::unkeyed());
        let h1 = r.chain_hash(GENESIS, &k1);
        assert_ne!(h1, plain);
        assert_ne!(h1, r.chain_hash(GENESIS, &k2));
        assert!(k1.matches("hmac-sha256", &k1.fingerprint()).is_ok());
        assert!(k2.matches("hmac-sha256", &k1.fingerprint()).is_err());
        assert!(Chain::unkeyed().matches("hmac-sha256", "").is_err());
        assert!(k1.matches("sha256", "").is_err());
        assert!(!format!("{k1:?}").contains("first key"));
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
            r.chain_hash(GENESIS, &Chain::unkeyed()),
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
