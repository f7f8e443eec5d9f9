//! `toolgate audit list` and `toolgate audit verify`.

use toolgate_audit::{Filter, Location, Store, StoreError};
use toolgate_config::LoadedConfig;

use super::{EXIT_FAILURE, EXIT_USAGE, report};
use crate::cli::AuditDb;

fn location_of(db: &AuditDb) -> Result<Location, i32> {
    if let Some(p) = &db.db {
        return Ok(Location::Sqlite(p.clone()));
    }
    let Some(config) = &db.config else {
        eprintln!("toolgate: name the audit database with --db FILE or --config FILE");
        return Err(EXIT_USAGE);
    };
    let loaded = LoadedConfig::from_file(config).map_err(|p| report(&p))?;
    match &loaded.config.audit {
        Some(a) => Ok(match a.get_ref().location() {
            toolgate_config::AuditLocation::Sqlite(p) => Location::Sqlite(p),
            toolgate_config::AuditLocation::Postgres { url, table } => {
                Location::Postgres { url, table }
            }
        }),
        None => {
            eprintln!("toolgate: {} has no [audit] section", config.display());
            Err(EXIT_USAGE)
        }
    }
}

fn open(db: &AuditDb) -> Result<Store, i32> {
    let location = location_of(db)?;
    if let Location::Sqlite(path) = &location
        && !path.exists()
    {
        eprintln!("toolgate: no audit database at {}", path.display());
        return Err(EXIT_USAGE);
    }
    Store::open_read_only(&location).map_err(|e| {
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

pub(super) fn verify(db: &AuditDb) -> i32 {
    let mut store = match open(db) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match store.verify() {
        Ok(v) => {
            println!(
                "ok: {} records, chain intact, last hash {}",
                v.count, v.last_hash
            );
            0
        }
        Err(e @ StoreError::Broken { .. }) => {
            eprintln!("toolgate: {e}");
            EXIT_FAILURE
        }
        Err(e) => {
            eprintln!("toolgate: {e}");
            EXIT_FAILURE
        }
    }
}
