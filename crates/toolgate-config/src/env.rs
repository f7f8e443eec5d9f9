//! Environment access: `${VAR}` interpolation and the operator key.

use std::fmt;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

/// Name of the variable holding the operator key (all scopes).
pub const OPERATOR_KEY_VAR: &str = "TOOLGATE_API_KEY";

/// The operator key from `TOOLGATE_API_KEY`, if set and not empty.
#[must_use]
pub fn operator_key() -> Option<SecretString> {
    std::env::var(OPERATOR_KEY_VAR)
        .ok()
        .filter(|k| !k.trim().is_empty())
        .map(|k| SecretString::from(k.trim().to_owned()))
}

/// A string from the config in which `${VAR}` and `${VAR:-default}` were replaced by the
/// environment at load time; `$${` stands for a literal `${`. `Debug` does not print
/// the value, because these strings carry secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvString(String);

impl EnvString {
    /// The expanded value.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EnvString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnvString(..)")
    }
}

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        expand(&raw, |name| std::env::var(name).ok())
            .map(EnvString)
            .map_err(serde::de::Error::custom)
    }
}

/// Expand `${VAR}` references in `raw` using `lookup`.
///
/// # Errors
/// An unterminated reference, an invalid name, or an unset variable without default.
pub fn expand(raw: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` in {raw:?}"))?;
            let inner = &tail[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(format!("invalid environment variable name {name:?}"));
            }
            match (lookup(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable {name} is not set (use ${{{name}:-default}} for a default)"
                    ));
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The key `toolgate stdio` serves as, from `TOOLGATE_STDIO_KEY` (unset or empty:
/// none).
#[must_use]
pub fn stdio_key() -> Option<secrecy::SecretString> {
    std::env::var("TOOLGATE_STDIO_KEY")
        .ok()
        .filter(|k| !k.is_empty())
        .map(secrecy::SecretString::from)
}

#[cfg(test)]
mod tests {
    use super::expand;

    fn env(name: &str) -> Option<String> {
        (name == "HOME_DIR").then(|| "/home/x".to_owned())
    }

    #[test]
    fn expands_defaults_and_escapes() {
        assert_eq!(expand("${HOME_DIR}/a", env).as_deref(), Ok("/home/x/a"));
        assert_eq!(expand("${NOPE:-d}", env).as_deref(), Ok("d"));
        assert_eq!(
            expand("$${HOME_DIR} $5", env).as_deref(),
            Ok("${HOME_DIR} $5")
        );
        assert!(expand("${NOPE}", env).is_err_and(|e| e.contains("NOPE is not set")));
        assert!(expand("${HOME_DIR", env).is_err());
        assert!(expand("${1X}", env).is_err());
    }
}
