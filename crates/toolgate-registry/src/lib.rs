//! # toolgate-registry: every tool, built and guarded
//!
//! The one place that knows every tool kind. [`Registry::from_config`] builds each
//! configured tool (the `match` over [`toolgate_config::ToolKind`] in [`build`]),
//! compiles its input schema once, and wraps it in its policy stack. Transports call
//! [`Registry::invoke`], which runs:
//!
//! ```text
//! lookup → validate arguments (compiled schema, JSON-pointer errors)
//!        → deadline (tool maximum, lowered by the caller)
//!        → bulkhead (concurrency limit + bounded queue, 429 past it)
//!        → Tool::call, raced against the deadline and the caller's cancellation
//! ```
//!
//! - [`registry`]: [`Registry`], [`Invocation`], [`RegisteredTool`].
//! - [`build`]: config → tools (built-ins, SQL sources and tools).
//! - [`validate`]: compiled argument schemas.

pub mod build;
pub mod registry;
pub mod validate;

pub use registry::{Invocation, RegisteredTool, Registry};
