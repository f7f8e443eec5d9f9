//! [`SqliteSource`]: the connections of one `[sources.NAME]`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::limits::Limit;
use rusqlite::{Connection, OpenFlags};
use tempfile::TempDir;
use toolgate_config::SourceConfig;
use toolgate_core::{CallContext, ToolError};

use crate::error::{Author, SqlError};
use crate::exec;
use crate::pool::Pool;
use crate::{auth, error::JobError};

const DEMO_SCHEMA: &str = include_str!("demo/schema.sql");
const DEMO_SEED: &str = include_str!("demo/seed.sql");

/// How long a statement waits for another connection's lock. Kept short because the
/// wait itself cannot be interrupted.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest string or blob a read-only query may build (`randomblob(1e9)` would
/// otherwise allocate a gigabyte).
const MAX_VALUE_BYTES: i32 = 16 * 1024 * 1024;

/// How long the readiness check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A SQLite database: a pool of read-only connections and, when some tool on it is
/// destructive, one read-write connection.
pub struct SqliteSource {
    name: String,
    path: PathBuf,
    readers: Arc<Pool>,
    writer: Option<Arc<Pool>>,
    /// The demo database's directory, deleted on drop. Declared last so that it goes
    /// after the pools (connections still in flight keep the unlinked file alive).
    _demo_dir: Option<TempDir>,
}

impl std::fmt::Debug for SqliteSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSource")
            .field("name", &self.name)
            .field("writer", &self.writer.is_some())
            .finish_non_exhaustive()
    }
}

impl SqliteSource {
    /// Open from config. `name` is the source name. `needs_writer` = some tool on this
    /// source is destructive, so one read-write connection is opened too.
    ///
    /// # Errors
    /// The file cannot be opened or is not a SQLite database, or the demo database
    /// cannot be built.
    pub fn open(name: &str, cfg: &SourceConfig, needs_writer: bool) -> Result<Arc<Self>, SqlError> {
        let (path, demo_dir, writer) = if cfg.demo {
            let (dir, path, setup) = build_demo(name)?;
            let writer = if needs_writer {
                harden_writer(&setup).map_err(|error| open_error(name, &path, error))?;
                Some(setup)
            } else {
                None
            };
            (path, Some(dir), writer)
        } else {
            let path = cfg.path.as_ref().ok_or_else(|| SqlError::NoPath {
                source_name: name.to_owned(),
            })?;
            let path = PathBuf::from(path.get_ref().as_str());
            let writer = if needs_writer {
                Some(open_writer(&path).map_err(|error| open_error(name, &path, error))?)
            } else {
                None
            };
            (path, None, writer)
        };
        let readers = (0..cfg.pool_size.max(1))
            .map(|_| open_reader(&path))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| open_error(name, &path, error))?;
        Ok(Arc::new(Self {
            name: name.to_owned(),
            path,
            readers: Pool::new(readers),
            writer: writer.map(|w| Pool::new(vec![w])),
            _demo_dir: demo_dir,
        }))
    }

    /// Readiness: runs `SELECT 1` on a pooled connection (async, off the runtime).
    ///
    /// # Errors
    /// A client-safe description of what failed.
    pub async fn check(&self) -> Result<(), String> {
        let ctx = CallContext::new(tokio::time::Instant::now() + CHECK_TIMEOUT);
        let result = exec::run(&self.readers, &ctx, "readiness check", |conn| {
            conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
                .map_err(JobError::Sql)
        })
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let e: ToolError = e.into_tool_error(Author::Operator, &self.name);
                Err(format!("sqlite source {:?}: {}", self.name, e.message))
            }
        }
    }

    /// The source name, for logs and messages.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The pool a tool runs on: the writer for destructive tools.
    pub(crate) fn pool(&self, writes: bool) -> Option<&Arc<Pool>> {
        if writes {
            self.writer.as_ref()
        } else {
            Some(&self.readers)
        }
    }

    /// A fresh connection set up like the pool's, to check a declared statement
    /// without taking a pooled one away from calls.
    pub(crate) fn checking_connection(&self, writes: bool) -> rusqlite::Result<Connection> {
        if writes {
            open_writer(&self.path)
        } else {
            open_reader(&self.path)
        }
    }
}

fn open_error(name: &str, path: &Path, error: rusqlite::Error) -> SqlError {
    SqlError::Open {
        source_name: name.to_owned(),
        path: path.to_owned(),
        error,
    }
}

/// Settings every connection gets, before its authorizer.
fn harden(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Defensive mode forbids writing the schema table and other corruption tricks;
    // an untrusted schema cannot call side-effecting functions from views or triggers.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    // No other database files, whatever the authorizer says.
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    Ok(())
}

/// A read-only connection: read-only file handle, `query_only`, read-only authorizer.
fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    harden(&conn)?;
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)?;
    conn.pragma_update(None, "query_only", true)?;
    // Opening is lazy: read the schema now so a missing or foreign file fails here.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    // Last, so that the setup pragmas above were still allowed.
    conn.authorizer(Some(auth::read_only));
    Ok(conn)
}

/// The read-write connection of an existing file.
fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    harden_writer(&conn)?;
    Ok(conn)
}

fn harden_writer(conn: &Connection) -> rusqlite::Result<()> {
    harden(conn)?;
    conn.authorizer(Some(auth::read_write));
    Ok(())
}

/// Build the demo database in a fresh temporary directory; returns the directory, the
/// file and the connection that built it.
fn build_demo(name: &str) -> Result<(TempDir, PathBuf, Connection), SqlError> {
    let dir = tempfile::Builder::new()
        .prefix("toolgate-demo-")
        .tempdir()
        .map_err(|error| SqlError::TempDir {
            source_name: name.to_owned(),
            error,
        })?;
    let path = dir.path().join("demo.sqlite3");
    let demo_error = |error| SqlError::Demo {
        source_name: name.to_owned(),
        error,
    };
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(demo_error)?;
    // WAL lets the readers go on while a destructive demo tool writes.
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .map_err(demo_error)?;
    conn.execute_batch(DEMO_SCHEMA).map_err(demo_error)?;
    conn.execute_batch(DEMO_SEED).map_err(demo_error)?;
    Ok((dir, path, conn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_file_goes_away_with_the_source() {
        let cfg: SourceConfig =
            toml::from_str("kind = \"sqlite\"\ndemo = true\n").unwrap_or_else(|e| panic!("{e}"));
        let source = SqliteSource::open("demo", &cfg, true).unwrap_or_else(|e| panic!("{e}"));
        let path = source.path.clone();
        assert!(path.exists());
        drop(source);
        assert!(!path.exists());
        assert!(path.parent().is_some_and(|dir| !dir.exists()));
    }

    #[test]
    fn a_missing_file_is_an_open_error() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("missing.sqlite3");
        let cfg: SourceConfig = toml::from_str(&format!(
            "kind = \"sqlite\"\npath = {:?}\n",
            path.display().to_string()
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let Err(err) = SqliteSource::open("x", &cfg, false) else {
            panic!("opened a missing file");
        };
        assert!(matches!(err, SqlError::Open { .. }), "{err}");
        assert!(!path.exists(), "opening created the file");
    }
}
