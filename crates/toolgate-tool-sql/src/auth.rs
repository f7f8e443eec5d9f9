//! SQLite authorizers: SQLite asks them about every action while it compiles a
//! statement, so what they deny never runs, however the SQL text is spelled.
//!
//! SQLite has no authorizer action for `VACUUM` (so `VACUUM INTO 'file'` would pass
//! here); read-only paths also refuse every statement for which
//! `sqlite3_stmt_readonly` is false, which covers it.

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// Functions refused everywhere: they reach the file system or the extension loader,
/// or (`fts3_tokenizer` with two arguments) accept raw pointers.
const DENIED_FUNCTIONS: &[&str] = &[
    "load_extension",
    "fts3_tokenizer",
    "readfile",
    "writefile",
    "edit",
];

/// Pragmas that only describe the schema. Everything else (including reading
/// `database_list`, which would show file paths) is refused on read-only connections.
const READ_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
];

fn denied_function(name: &str) -> bool {
    DENIED_FUNCTIONS
        .iter()
        .any(|d| d.eq_ignore_ascii_case(name))
}

/// The authorizer of read-only connections: reads only.
pub(crate) fn read_only(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => {
            Authorization::Allow
        }
        AuthAction::Function { function_name } if !denied_function(function_name) => {
            Authorization::Allow
        }
        AuthAction::Pragma { pragma_name, .. }
            if READ_PRAGMAS
                .iter()
                .any(|p| p.eq_ignore_ascii_case(pragma_name)) =>
        {
            Authorization::Allow
        }
        // Writes, schema changes, transactions, savepoints, ATTACH/DETACH, ANALYZE,
        // REINDEX, virtual tables, other pragmas and codes newer than this list.
        _ => Authorization::Deny,
    }
}

/// The authorizer of the read-write connection: declared statements may write, but
/// never reach other database files or the dangerous functions.
pub(crate) fn read_write(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
        AuthAction::Function { function_name } if denied_function(function_name) => {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    /// The authorizer alone (on a writable connection without `query_only`) already
    /// stops writes at compile time.
    #[test]
    fn the_read_only_authorizer_alone_refuses_writes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let conn = Connection::open(dir.path().join("a.sqlite3")).unwrap_or_else(|e| panic!("{e}"));
        conn.execute_batch("CREATE TABLE t (x); CREATE INDEX t_x ON t (x);")
            .unwrap_or_else(|e| panic!("{e}"));
        conn.authorizer(Some(read_only));
        let other = dir.path().join("b.sqlite3");
        for sql in [
            "INSERT INTO t VALUES (1)".to_owned(),
            "UPDATE t SET x = 1".to_owned(),
            "DELETE FROM t".to_owned(),
            "DROP TABLE t".to_owned(),
            "CREATE TABLE u (y)".to_owned(),
            "ALTER TABLE t ADD COLUMN y".to_owned(),
            format!("ATTACH '{}' AS b", other.display()),
            "PRAGMA query_only = 0".to_owned(),
            "PRAGMA journal_mode = DELETE".to_owned(),
            "BEGIN".to_owned(),
            "SAVEPOINT s".to_owned(),
            "ANALYZE".to_owned(),
            "REINDEX t_x".to_owned(),
            "SELECT load_extension('x')".to_owned(),
        ] {
            assert!(conn.prepare(&sql).is_err(), "{sql} compiled");
        }
        assert!(conn.prepare("SELECT x FROM t").is_ok());
        assert!(conn.prepare("PRAGMA table_info(t)").is_ok());
    }

    /// SQLite has no authorizer code for VACUUM, so `VACUUM INTO 'file'` compiles; the
    /// read-only paths refuse it because `sqlite3_stmt_readonly` says it writes.
    #[test]
    fn vacuum_compiles_but_is_not_readonly() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let conn = Connection::open(dir.path().join("a.sqlite3")).unwrap_or_else(|e| panic!("{e}"));
        conn.authorizer(Some(read_only));
        let other = dir.path().join("b.sqlite3");
        for sql in [
            format!("VACUUM INTO '{}'", other.display()),
            "VACUUM".to_owned(),
        ] {
            let stmt = conn.prepare(&sql).unwrap_or_else(|e| panic!("{e}"));
            assert!(!stmt.readonly(), "{sql} claims to be read-only");
        }
        assert!(!other.exists());
    }
}
