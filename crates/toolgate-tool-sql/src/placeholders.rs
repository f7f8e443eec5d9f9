//! Named `:param` placeholders for PostgreSQL (`$1`, `$2`, ...) and MySQL (`?`), and
//! the caller's claims (`:caller.<claim>`) on every database.
//!
//! SQLite parses `:name` itself; the server databases only know positional
//! parameters, so the statement text is rewritten once, when the tool is built. No
//! database takes a `.` in a parameter name, so on SQLite `:caller.sub` becomes
//! `:caller$sub` (SQLite takes `$` inside a name; a declared parameter, an
//! identifier, never has one). The
//! scanner knows just enough of each dialect's lexical rules to never see a
//! placeholder where the database would not: string literals (`'...'`, PostgreSQL's
//! `E'...'` and `$tag$...$tag$`, MySQL's `"..."` and backslash escapes), quoted
//! identifiers (`"..."`, `` `...` ``), comments (`--`, `/* */` nested in PostgreSQL,
//! MySQL's `#`) and PostgreSQL's `::type` casts. It also finds where the first
//! statement ends, so a second one is refused with a clear message (the databases
//! refuse it too: a prepared statement is one statement).

use crate::error::{Class, JobError};

/// Which lexical rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// PostgreSQL: `$n` placeholders.
    Postgres,
    /// MySQL and MariaDB: `?` placeholders.
    Mysql,
    /// SQLite: `:name` stays, `:caller.<claim>` becomes `:caller$<claim>`.
    Sqlite,
}

/// The prefix of a parameter that names one of the caller's claims.
pub(crate) const CALLER: &str = "caller.";

/// The claim a parameter name refers to (`caller.sub` → `sub`), if it is one.
pub(crate) fn caller_claim(name: &str) -> Option<&str> {
    name.strip_prefix(CALLER)
}

/// The name SQLite sees for the claim `claim` (no `.`: see the module comment).
pub(crate) fn sqlite_claim_name(claim: &str) -> String {
    format!("caller${claim}")
}

/// A statement with its `:name`s replaced by the dialect's placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Positional {
    /// The text sent to the database (without a trailing `;`).
    pub(crate) sql: String,
    /// The parameter bound at each position: every distinct name once for
    /// PostgreSQL (`$n` may repeat), every occurrence for MySQL; for SQLite every
    /// occurrence (SQLite binds by name). Claims as `caller.<claim>`.
    pub(crate) names: Vec<String>,
}

/// Why a text cannot be used as one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScanError {
    /// Something other than a comment follows the first `;`.
    MultipleStatements,
    /// Only whitespace and comments.
    Empty,
    /// A positional placeholder (`?`, `$1`) the caller cannot name.
    Positional(String),
    /// A literal, identifier or comment is not closed.
    Unterminated(&'static str),
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanError::MultipleStatements => f.write_str("only one statement is allowed"),
            ScanError::Empty => f.write_str("the statement is empty"),
            ScanError::Positional(p) => {
                write!(
                    f,
                    "positional parameters ({p}) are not supported; use :name"
                )
            }
            ScanError::Unterminated(what) => write!(f, "unterminated {what}"),
        }
    }
}

impl From<ScanError> for JobError {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::MultipleStatements => JobError::MultipleStatements,
            ScanError::Empty => JobError::Empty,
            ScanError::Positional(_) => JobError::Parameters,
            ScanError::Unterminated(_) => {
                JobError::Server(Class::Statement(e.to_string()), e.to_string())
            }
        }
    }
}

/// Rewrite `:name` placeholders into `dialect`'s positional ones.
pub(crate) fn rewrite(sql: &str, dialect: Dialect) -> Result<Positional, ScanError> {
    let mut out = Positional {
        sql: String::with_capacity(sql.len()),
        names: Vec::new(),
    };
    scan(sql, dialect, &mut |piece| match piece {
        Piece::Text(t) => out.sql.push_str(t),
        Piece::Param(name) => match dialect {
            Dialect::Sqlite => {
                out.names.push(name.to_owned());
                out.sql.push(':');
                match caller_claim(name) {
                    Some(claim) => out.sql.push_str(&sqlite_claim_name(claim)),
                    None => out.sql.push_str(name),
                }
            }
            Dialect::Mysql => {
                out.names.push(name.to_owned());
                out.sql.push('?');
            }
            Dialect::Postgres => {
                let n = match out.names.iter().position(|x| x == name) {
                    Some(i) => i + 1,
                    None => {
                        out.names.push(name.to_owned());
                        out.names.len()
                    }
                };
                out.sql.push('$');
                out.sql.push_str(&n.to_string());
            }
        },
    })?;
    Ok(out)
}

/// The one statement of an ad-hoc query, unchanged but for a trailing `;` and
/// comments after it. `:name` is left alone (nothing would bind it, so the database
/// reports it); positional placeholders are refused.
pub(crate) fn single_statement(sql: &str, dialect: Dialect) -> Result<&str, ScanError> {
    let mut end = 0;
    scan(sql, dialect, &mut |piece| {
        let text = match piece {
            Piece::Text(t) | Piece::Param(t) => t,
        };
        // Pieces are slices of `sql`, in order: the last one ends the statement.
        end = text.as_ptr() as usize - sql.as_ptr() as usize + text.len();
    })?;
    Ok(&sql[..end])
}

/// A slice of the statement: text to keep, or a parameter name (without `:`).
enum Piece<'a> {
    Text(&'a str),
    Param(&'a str),
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// A byte of a parameter name. Names in the config are ASCII identifiers; taking
/// other letters too makes `:név` an undeclared name rather than `:n` plus text.
fn is_name(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Walk the first statement of `sql`, handing its pieces to `emit`.
fn scan<'a>(
    sql: &'a str,
    dialect: Dialect,
    emit: &mut dyn FnMut(Piece<'a>),
) -> Result<(), ScanError> {
    let bytes = sql.as_bytes();
    let (mut i, mut start) = (0, 0);
    let mut seen_code = false;
    let mut ended = false;
    while i < bytes.len() {
        let b = bytes[i];
        let prev = if i == 0 { b' ' } else { bytes[i - 1] };
        if let Some(skip) = comment_len(bytes, i, dialect)? {
            i += skip;
            continue;
        }
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if ended {
            if b == b';' {
                i += 1;
                continue;
            }
            return Err(ScanError::MultipleStatements);
        }
        match (b, dialect) {
            (b';', _) => {
                if !seen_code {
                    return Err(ScanError::Empty);
                }
                emit(Piece::Text(&sql[start..i]));
                ended = true;
                i += 1;
                start = i;
            }
            (b'\'', _) => {
                let escapes = dialect == Dialect::Mysql
                    || (dialect == Dialect::Postgres
                        && matches!(prev, b'e' | b'E')
                        && (i < 2 || !is_ident(bytes[i - 2])));
                i = quoted_end(bytes, i, b'\'', escapes)
                    .ok_or(ScanError::Unterminated("string"))?;
            }
            (b'"', _) => {
                let escapes = dialect == Dialect::Mysql;
                i = quoted_end(bytes, i, b'"', escapes)
                    .ok_or(ScanError::Unterminated("quoted name"))?;
            }
            (b'`', Dialect::Mysql | Dialect::Sqlite) => {
                i = quoted_end(bytes, i, b'`', false)
                    .ok_or(ScanError::Unterminated("quoted name"))?;
            }
            (b'[', Dialect::Sqlite) => {
                i = quoted_end(bytes, i, b']', false)
                    .ok_or(ScanError::Unterminated("quoted name"))?;
            }
            (b'?', Dialect::Mysql) => return Err(ScanError::Positional("?".to_owned())),
            (b'$', Dialect::Postgres) if !is_ident(prev) => i = dollar(sql, i)?,
            (b':', _) if bytes.get(i + 1) == Some(&b':') => i += 2,
            (b':', _)
                if !is_ident(prev)
                    && bytes
                        .get(i + 1)
                        .is_some_and(|c| is_name(*c) && !c.is_ascii_digit()) =>
            {
                let mut len = bytes[i + 1..].iter().take_while(|c| is_name(**c)).count();
                // `:caller.<claim>`: one name, dot and all.
                let after = i + 1 + len;
                if &sql[i + 1..after] == "caller"
                    && bytes.get(after) == Some(&b'.')
                    && bytes.get(after + 1).is_some_and(|c| is_name(*c))
                {
                    len += 1 + bytes[after + 1..]
                        .iter()
                        .take_while(|c| is_name(**c))
                        .count();
                }
                emit(Piece::Text(&sql[start..i]));
                emit(Piece::Param(&sql[i + 1..i + 1 + len]));
                i += 1 + len;
                start = i;
            }
            _ => i += 1,
        }
        seen_code = true;
    }
    if !ended {
        emit(Piece::Text(&sql[start..]));
    }
    if seen_code {
        Ok(())
    } else {
        Err(ScanError::Empty)
    }
}

/// The length of a comment starting at `i`, if one does.
fn comment_len(bytes: &[u8], i: usize, dialect: Dialect) -> Result<Option<usize>, ScanError> {
    let rest = &bytes[i..];
    let line = |rest: &[u8]| rest.iter().position(|c| *c == b'\n').unwrap_or(rest.len());
    // MySQL needs a space (or a control character) after `--`.
    let dash_dash = rest.starts_with(b"--")
        && (dialect != Dialect::Mysql || rest.get(2).is_none_or(|c| *c <= b' '));
    if dash_dash || (dialect == Dialect::Mysql && rest.first() == Some(&b'#')) {
        return Ok(Some(line(rest)));
    }
    if !rest.starts_with(b"/*") {
        return Ok(None);
    }
    let nests = dialect == Dialect::Postgres;
    let (mut depth, mut j) = (1usize, 2usize);
    while j < rest.len() {
        if rest[j..].starts_with(b"*/") {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return Ok(Some(j));
            }
        } else if nests && rest[j..].starts_with(b"/*") {
            depth += 1;
            j += 2;
        } else {
            j += 1;
        }
    }
    Err(ScanError::Unterminated("comment"))
}

/// The index just past a literal opened by `quote` at `i`; a doubled quote stands
/// for itself, and with `escapes` a backslash escapes the next byte.
fn quoted_end(bytes: &[u8], i: usize, quote: u8, escapes: bool) -> Option<usize> {
    let mut j = i + 1;
    while j < bytes.len() {
        let b = bytes[j];
        if escapes && b == b'\\' {
            j += 2;
        } else if b == quote {
            if bytes.get(j + 1) == Some(&quote) {
                j += 2;
            } else {
                return Some(j + 1);
            }
        } else {
            j += 1;
        }
    }
    None
}

/// PostgreSQL at a `$` that starts no identifier: `$1` is refused, `$tag$...$tag$` is
/// skipped, anything else is an ordinary character. Returns the next index.
fn dollar(sql: &str, i: usize) -> Result<usize, ScanError> {
    let bytes = sql.as_bytes();
    let rest = &bytes[i + 1..];
    if rest.first().is_some_and(u8::is_ascii_digit) {
        let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        return Err(ScanError::Positional(sql[i..i + 1 + digits].to_owned()));
    }
    let tag_len = rest
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c >= 0x80)
        .count();
    if rest.get(tag_len) != Some(&b'$') {
        return Ok(i + 1);
    }
    let tag = &sql[i..i + tag_len + 2];
    let body = i + tag.len();
    sql[body..]
        .find(tag)
        .map(|at| body + at + tag.len())
        .ok_or(ScanError::Unterminated("dollar-quoted string"))
}

#[cfg(test)]
#[path = "placeholders_tests.rs"]
mod tests;
