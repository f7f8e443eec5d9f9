//! # toolgate-core: the tool model
//!
//! Everything a tool and a transport agree on, and nothing else: no I/O, no HTTP,
//! no database. Data flows like this:
//!
//! ```text
//! transport --(ToolCall + CallContext)--> Registry::invoke --> Tool::call
//!           <--(ToolOutput | ToolError)--
//! ```
//!
//! - [`spec`]: [`ToolSpec`] (name, description, schemas, [`Annotations`], limits).
//! - [`tool`]: the [`Tool`] trait every tool kind implements, and [`ToolCall`].
//! - [`context`]: [`CallContext`] (deadline, cancellation, progress sink, trace id).
//! - [`error`]: [`ToolError`] and [`ErrorKind`], which maps one-to-one onto the
//!   HTTP contract's error codes.

pub mod content;
pub mod context;
pub mod error;
pub mod spec;
pub mod tool;

pub use context::{CallContext, CallerIdentity, ClientRequests, LogLevel, Progress, ProgressSink};
pub use error::{ErrorKind, FieldError, MAX_FIELD_ERRORS, ToolError};
pub use spec::{Annotations, ToolSpec};
pub use tool::{Tool, ToolCall, ToolOutput};

/// Re-exported so that tool crates name one cancellation type.
pub use tokio_util::sync::CancellationToken;
