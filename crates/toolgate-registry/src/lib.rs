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
//!        → circuit breaker (503 while open) → bulkhead (limit + bounded queue, 429)
//!        → attempts of Tool::call, raced against the deadline and the caller's
//!          cancellation, retried (idempotent tools, retryable failures) within a budget
//! ```
//!
//! - [`registry`]: [`Registry`] (swapped whole on reload), [`Invocation`],
//!   [`RegisteredTool`], [`Policies`].
//! - `call`: one call through the policy stack.
//! - [`build`]: config → tools (built-ins, SQL sources and tools).
//! - [`openapi`], [`mcp`]: tools imported from OpenAPI documents and MCP servers.
//! - [`validate`]: compiled argument schemas.

pub mod build;
mod call;
pub mod content;
pub mod mcp;
pub mod openapi;
pub mod registry;
pub mod validate;

pub use openapi::ImportReport;
pub use registry::{Invocation, Policies, RegisteredTool, Registry, Transport};
