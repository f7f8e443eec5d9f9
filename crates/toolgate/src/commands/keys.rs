//! `toolgate keys new`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use toolgate_config::{KeyHash, ScopePattern};

use super::{EXIT_FAILURE, EXIT_USAGE};

/// A new random key: `tg_` and 256 bits in URL-safe base64.
#[must_use]
pub(crate) fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut bytes) {
        // Without an OS random source no safe key can be made; never fall back.
        eprintln!("toolgate: the OS random source failed: {e}");
        std::process::exit(EXIT_FAILURE);
    }
    format!("tg_{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub(super) fn new_key(name: &str, scopes: &[String]) -> i32 {
    if name.trim().is_empty() {
        eprintln!("toolgate: --name must not be empty");
        return EXIT_USAGE;
    }
    for s in scopes {
        if let Err(e) = ScopePattern::parse(s) {
            eprintln!("toolgate: --scopes: {e}");
            return EXIT_USAGE;
        }
    }
    let key = generate_key();
    let hash = KeyHash::of(&key);
    let scope_list = scopes
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!("key:  {key}");
    println!("hash: {hash}");
    println!();
    println!("# Give the key to the client; it is not stored anywhere. Add this to the config:");
    println!("[[keys]]");
    println!("name = {name:?}");
    println!("hash = \"{hash}\"");
    println!("scopes = [{scope_list}]");
    0
}
