//! [`SqlError`] for opening sources, and how failures inside a call become
//! [`ToolError`]s.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::ErrorCode;
use toolgate_core::{ErrorKind, FieldError, ToolError};

/// A source could not be opened. The text names the source and, for the operator, the
/// file; it is meant for startup logs, not for clients.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The source has neither `path` nor `demo = true`.
    #[error("source {source_name:?}: a sqlite source needs `path` or `demo = true`")]
    NoPath {
        /// The source name.
        source_name: String,
    },
    /// The database file could not be opened or is not a SQLite database.
    #[error("source {source_name:?}: cannot open SQLite database {path:?}: {error}")]
    Open {
        /// The source name.
        source_name: String,
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        error: rusqlite::Error,
    },
    /// The temporary directory for the demo database could not be created.
    #[error(
        "source {source_name:?}: cannot create a temporary directory for the demo database: {error}"
    )]
    TempDir {
        /// The source name.
        source_name: String,
        /// The I/O error.
        #[source]
        error: std::io::Error,
    },
    /// The demo database could not be built.
    #[error("source {source_name:?}: cannot build the demo database: {error}")]
    Demo {
        /// The source name.
        source_name: String,
        /// What SQLite said.
        #[source]
        error: rusqlite::Error,
    },
    /// A PostgreSQL or MySQL source has no `url`.
    #[error("source {source_name:?}: a {kind} source needs `url`")]
    NoUrl {
        /// The source name.
        source_name: String,
        /// `postgres` or `mysql`.
        kind: &'static str,
    },
    /// The `url` does not parse. The text never repeats the URL, which may hold a
    /// password.
    #[error("source {source_name:?}: the {kind} url is not valid: {reason}")]
    Url {
        /// The source name.
        source_name: String,
        /// `postgres` or `mysql`.
        kind: &'static str,
        /// Why, from the driver.
        reason: String,
    },
    /// A PostgreSQL or MySQL pool needs a tokio runtime for its background tasks.
    #[error("source {source_name:?}: a {kind} source must be opened inside a tokio runtime")]
    NoRuntime {
        /// The source name.
        source_name: String,
        /// `postgres` or `mysql`.
        kind: &'static str,
    },
}

/// Why a job on a connection did not produce its value. Mapped to a [`ToolError`] by
/// [`JobError::into_tool_error`], which knows where to point at.
#[derive(Debug)]
pub(crate) enum JobError {
    /// SQLite failed; classified by [`classify`].
    Sql(rusqlite::Error),
    /// The text holds more than one statement.
    MultipleStatements,
    /// The text holds no statement at all.
    Empty,
    /// The ad-hoc query uses parameters, which nobody can bind.
    Parameters,
    /// SQLite says the statement writes, on a read-only path.
    Refused,
    /// A PostgreSQL or MySQL failure, classified where it happened; the text is the
    /// full error, for the log.
    Server(Class, String),
    /// A result column has no JSON mapping; the text says which and what to do.
    Unmappable(String),
    /// `ctx.cancel` fired.
    Cancelled,
    /// The deadline passed.
    Timeout,
    /// Something inside the server broke; details were logged where it happened.
    Internal,
}

/// What a database failure means for the caller.
#[derive(Debug)]
pub(crate) enum Class {
    /// An authorizer or read-only refusal.
    Refused,
    /// The progress handler or an interrupt stopped the statement.
    Interrupted,
    /// Another connection holds a lock.
    Busy,
    /// Violated constraint, wrong type, value too big: the arguments' fault.
    Data(String),
    /// Anything else SQLite reports about the statement: syntax, unknown names...
    Statement(String),
    /// The file, memory or library failed.
    Internal,
    /// A server database refused a write in a read-only transaction; its message.
    ReadOnly(String),
    /// No connection to a server database could be had.
    Unavailable,
}

/// Why a declared statement that writes fails on a tool that was not declared
/// destructive (the server databases find out only when it runs).
pub(crate) const NEEDS_DESTRUCTIVE: &str = "the statement writes, but the tool is read-only \
                                            (declare it `destructive = true` to allow writes)";

/// The refusal text for writes on read-only paths.
pub(crate) const READ_ONLY_REFUSAL: &str =
    "statement is not allowed: this tool is read-only (write refused by SQLite)";

/// Sort a SQLite failure into a [`Class`], keeping SQLite's message where it is safe.
pub(crate) fn classify(e: &rusqlite::Error) -> Class {
    let (code, message) = match e {
        rusqlite::Error::SqliteFailure(err, msg) => {
            (err.code, msg.clone().unwrap_or_else(|| err.to_string()))
        }
        rusqlite::Error::SqlInputError {
            error, msg, offset, ..
        } => (error.code, format!("{msg} (at byte {offset})")),
        rusqlite::Error::MultipleStatement => {
            return Class::Statement("only one statement is allowed".to_owned());
        }
        _ => return Class::Internal,
    };
    match code {
        ErrorCode::AuthorizationForStatementDenied | ErrorCode::ReadOnly => Class::Refused,
        ErrorCode::OperationInterrupted => Class::Interrupted,
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => Class::Busy,
        ErrorCode::ConstraintViolation | ErrorCode::TypeMismatch | ErrorCode::TooBig => {
            Class::Data(message)
        }
        ErrorCode::Unknown | ErrorCode::ParameterOutOfRange => Class::Statement(message),
        _ => Class::Internal,
    }
}

/// Who wrote the SQL decides whose fault a statement error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Author {
    /// The caller sent the query: its errors point at `/query`.
    Caller,
    /// The operator declared the statement: only data errors are the caller's.
    Operator,
}

impl JobError {
    /// The client-facing error. `tool` names the tool in logs.
    pub(crate) fn into_tool_error(self, author: Author, tool: &str) -> ToolError {
        let invalid = |message: &str| invalid(author, message);
        match self {
            JobError::MultipleStatements => invalid("only one statement is allowed"),
            JobError::Empty => invalid("the query holds no SQL statement"),
            JobError::Parameters => {
                invalid("parameters (?, :name) are not supported in ad-hoc queries")
            }
            JobError::Refused => invalid(READ_ONLY_REFUSAL),
            JobError::Cancelled => ToolError::cancelled("the query was cancelled"),
            JobError::Timeout => ToolError::timeout("the query ran past its deadline"),
            JobError::Internal => ToolError::tool("the database failed to run the query"),
            JobError::Sql(e) => class_error(classify(&e), author, tool, &e.to_string()),
            JobError::Server(class, detail) => class_error(class, author, tool, &detail),
            JobError::Unmappable(message) if author == Author::Caller => invalid(&message),
            JobError::Unmappable(message) => ToolError::tool(message),
        }
    }
}

/// `invalid_arguments` at the query (the caller's SQL) or at the whole arguments.
fn invalid(author: Author, message: impl Into<String>) -> ToolError {
    let pointer = match author {
        Author::Caller => "/query",
        Author::Operator => "",
    };
    ToolError::invalid_arguments(vec![FieldError {
        pointer: pointer.to_owned(),
        message: message.into(),
    }])
}

/// The client-facing error of a classified database failure; `detail` is logged when
/// the failure is the server's or the operator's.
fn class_error(class: Class, author: Author, tool: &str, detail: &str) -> ToolError {
    let invalid = |message: String| invalid(author, message);
    match class {
        Class::Refused => invalid(READ_ONLY_REFUSAL.to_owned()),
        Class::ReadOnly(message) if author == Author::Caller => invalid(format!(
            "statement is not allowed: this tool is read-only ({message})"
        )),
        Class::ReadOnly(_) => {
            tracing::error!(tool, error = %detail, "a read-only sql tool tried to write");
            ToolError::tool(NEEDS_DESTRUCTIVE)
        }
        // Only reached when the caller's context gave no reason; see `exec`.
        Class::Interrupted => ToolError::timeout("the query was interrupted"),
        Class::Busy => ToolError::new(ErrorKind::Overloaded, "the database is busy")
            .with_retry_after(Duration::from_secs(1)),
        Class::Unavailable => {
            tracing::warn!(tool, error = %detail, "sql source unavailable");
            ToolError::new(ErrorKind::UpstreamError, "the database is unavailable")
        }
        Class::Data(message) => invalid(message),
        Class::Statement(message) if author == Author::Caller => invalid(message),
        Class::Statement(_) | Class::Internal => {
            tracing::error!(tool, error = %detail, "sql statement failed");
            ToolError::tool("the database failed to run the statement")
        }
    }
}
