//! `toolgate audit list` and `toolgate audit verify`.

use std::time::Duration;

use toolgate_audit::{Chain, Filter, Location, OpenOptions, Store, StoreError};
use toolgate_config::LoadedConfig;

use super::{EXIT_FAILURE, EXIT_USAGE, report};
use crate::cli::AuditDb;

/// The variable that holds the chain's key when no config names one.
const DEFAULT_KEY_ENV: &str = "TOOLGATE_AUDIT_HMAC_KEY";

/// The log's location, and the variable its HMAC key is read from.
fn location_of(db: &AuditDb) -> Result<(Location, String), i32> {
    if let Some(p) = &db.db {
        return Ok((Location::Sqlite(p.clone()), DEFAULT_KEY_ENV.to_owned()));
    }
    let Some(config) = &db.config else {
        eprintln!("toolgate: name the audit database with --db FILE or --config FILE");
        return Err(EXIT_USAGE);
    };
    let loaded = LoadedConfig::from_file(config).map_err(|p| report(&p))?;
    match &loaded.config.audit {
        Some(a) => Ok((
            match a.get_ref().location() {
                toolgate_config::AuditLocation::Sqlite(p) => Location::Sqlite(p),
                toolgate_config::AuditLocation::Postgres { url, table } => {
                    Location::Postgres { url, table }
                }
            },
            a.get_ref()
                .hmac_key_env
                .clone()
                .unwrap_or_else(|| DEFAULT_KEY_ENV.to_owned()),
        )),
        None => {
            eprintln!("toolgate: {} has no [audit] section", config.display());
            Err(EXIT_USAGE)
        }
    }
}

fn open(db: &AuditDb) -> Result<Store, i32> {
    let (location, key_env) = location_of(db)?;
    // The key, if its variable is set; the store says whether the log needs one.
    let chain = match std::env::var_os(&key_env) {
        Some(key) if !key.is_empty() => Chain::keyed(key.as_encoded_bytes()),
        _ => Chain::unkeyed(),
    };
    let options = OpenOptions {
        chain,
        connect_timeout: Duration::from_secs(10),
        // Reading a whole log may take long; the server's short deadline is not for this.
        statement_timeout: Duration::from_secs(3600),
        ..OpenOptions::default()
    };
    if let Location::Sqlite(path) = &location
        && !path.exists()
    {
        eprintln!("toolgate: no audit database at {}", path.display());
        return Err(EXIT_USAGE);
    }
    Store::open_read_only(&location, &options).map_err(|e| {
        eprintln!("toolgate: {e}");
        EXIT_FAILURE
    })
}

pub(super) fn list(db: &AuditDb, filter: &Filter) -> i32 {
    let mut store = match open(db) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match store.list(filter) {
        Ok(records) => {
            for r in records {
                match serde_json::to_string(&r) {
                    Ok(line) => println!("{line}"),
                    Err(e) => eprintln!("toolgate: record {}: {e}", r.seq),
                }
            }
            0
        }
        Err(e) => {
            eprintln!("toolgate: {e}");
            EXIT_FAILURE
        }
    }
}

/// `SEQ:HASH`.
fn parse_head(text: &str) -> Option<(i64, String)> {
    let (seq, hash) = text.split_once(':')?;
    let seq = seq.trim().parse().ok()?;
    let hash = hash.trim().to_ascii_lowercase();
    (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some((seq, hash))
}

pub(super) fn verify(db: &AuditDb, heads: &[String]) -> i32 {
    let mut wanted = Vec::new();
    for h in heads {
        match parse_head(h) {
            Some(head) => wanted.push(head),
            None => {
                eprintln!(
                    "toolgate: --head {h:?} is not SEQ:HASH (a number, a colon, 64 hex digits)"
                );
                return EXIT_USAGE;
            }
        }
    }
    let mut store = match open(db) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let verified = match store.verify() {
        Ok(v) => v,
        Err(StoreError::Broken {
            seq,
            reason,
            last_good,
        }) => {
            eprintln!("toolgate: the audit chain is broken at record {seq}: {reason}");
            match last_good {
                Some((s, h)) => eprintln!("toolgate: the last good head is {s}:{h}"),
                None => eprintln!("toolgate: no record before it verifies"),
            }
            return EXIT_FAILURE;
        }
        Err(e) => {
            eprintln!("toolgate: {e}");
            return EXIT_FAILURE;
        }
    };
    for (seq, hash) in &wanted {
        if *seq > verified.last_seq {
            eprintln!(
                "toolgate: the log was truncated: it ends at record {}, but head {seq}:{hash} was published",
                verified.last_seq
            );
            return EXIT_FAILURE;
        }
        match store.get(*seq) {
            Ok(Some(r)) if r.hash == *hash => {}
            Ok(Some(r)) => {
                eprintln!(
                    "toolgate: the log was rewritten: record {seq} has hash {}, but {hash} was published",
                    r.hash
                );
                return EXIT_FAILURE;
            }
            Ok(None) => {
                eprintln!("toolgate: record {seq} of a published head is missing");
                return EXIT_FAILURE;
            }
            Err(e) => {
                eprintln!("toolgate: {e}");
                return EXIT_FAILURE;
            }
        }
    }
    println!(
        "ok: {} records, chain intact, last hash {}{}",
        verified.count,
        verified.last_hash,
        if wanted.is_empty() {
            String::new()
        } else {
            format!(", {} published head(s) match", wanted.len())
        }
    );
    println!("head: {}:{}", verified.last_seq, verified.last_hash);
    0
}
