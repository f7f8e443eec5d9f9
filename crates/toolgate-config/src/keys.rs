//! API key hashes and scope patterns.
//!
//! Keys are high-entropy random strings, so a SHA-256 digest is a sufficient at-rest
//! form (no password hashing needed); comparisons of digests are constant-time.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The SHA-256 digest of a key, written `sha256:<64 hex digits>` in the config.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    /// The hash of a presented key.
    #[must_use]
    pub fn of(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    /// Parse `sha256:<hex>`.
    ///
    /// # Errors
    /// A message saying what is wrong with the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let hex_part = text.strip_prefix("sha256:").ok_or_else(|| {
            "a key hash must start with `sha256:` (see `toolgate keys new`)".to_owned()
        })?;
        let bytes = hex::decode(hex_part)
            .map_err(|_| "a key hash must be `sha256:` followed by 64 hex digits".to_owned())?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "a key hash must be `sha256:` followed by 64 hex digits".to_owned())?;
        Ok(Self(arr))
    }

    /// The hash whose SHA-256 digest is `digest`.
    #[must_use]
    pub fn from_digest(digest: [u8; 32]) -> Self {
        Self(digest)
    }

    /// The SHA-256 digest.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        self.0
    }

    /// Constant-time equality.
    #[must_use]
    pub fn ct_eq(&self, other: &KeyHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Display for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({self})")
    }
}

/// A scope: a tool-name pattern where `*` matches any run of characters
/// (`*`, `db_*`, `*_report`, `echo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopePattern {
    parts: Vec<String>,
    raw: String,
}

impl ScopePattern {
    /// Parse a pattern.
    ///
    /// # Errors
    /// Empty patterns and characters that can never occur in a tool name.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("a scope must not be empty".to_owned());
        }
        if let Some(c) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '*')))
        {
            return Err(format!(
                "scope {raw:?} contains {c:?}; scopes are tool names with `*` wildcards"
            ));
        }
        Ok(Self {
            parts: raw.split('*').map(str::to_owned).collect(),
            raw: raw.to_owned(),
        })
    }

    /// Whether `tool` is covered by this pattern.
    #[must_use]
    pub fn matches(&self, tool: &str) -> bool {
        let (first, rest) = match self.parts.split_first() {
            Some(x) => x,
            None => return false,
        };
        let Some(mut remaining) = tool.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            // No wildcard at all: exact match.
            return remaining.is_empty();
        };
        for part in middle {
            match remaining.find(part.as_str()) {
                Some(i) => remaining = &remaining[i + part.len()..],
                None => return false,
            }
        }
        remaining.len() >= last.len() && remaining.ends_with(last.as_str())
    }

    /// The pattern as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_globs() {
        let p = |s| ScopePattern::parse(s).unwrap_or_else(|e| panic!("{e}"));
        assert!(p("*").matches("anything"));
        assert!(p("echo").matches("echo"));
        assert!(!p("echo").matches("echo2"));
        assert!(p("db_*").matches("db_orders"));
        assert!(!p("db_*").matches("run_db"));
        assert!(p("*_report").matches("sales_report"));
        assert!(p("a*b*c").matches("aXbYc"));
        assert!(!p("a*b*c").matches("aXcYb"));
        assert!(!p("ab*ba").matches("aba"));
        assert!(ScopePattern::parse("bad scope").is_err());
    }

    #[test]
    fn hashes_round_trip_and_compare() {
        let h = KeyHash::of("tg_secret");
        let parsed = KeyHash::parse(&h.to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert!(parsed.ct_eq(&h));
        assert!(!parsed.ct_eq(&KeyHash::of("tg_other")));
        assert!(KeyHash::parse("md5:abc").is_err());
        assert!(KeyHash::parse("sha256:zz").is_err());
    }
}
