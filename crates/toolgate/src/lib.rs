//! # toolgate: the agent tool server
//!
//! The binary is thin (`main.rs` parses the command line and calls [`run`]); this
//! library holds the commands so tests and embedders share them.
//!
//! - [`cli`]: the command line (clap).
//! - [`commands`]: `serve`, `check`, `tools`, `call`, `keys new`, `openapi`, `audit`,
//!   `healthcheck`.
//! - [`native`]: writing tools in Rust: an input struct deriving `JsonSchema` plus an
//!   async fn become a [`toolgate_core::Tool`] with a derived input schema.
//!
//! Embedding: build a [`toolgate_registry::Registry`], add native tools with
//! [`native::register`], and serve it with [`toolgate_server::Application`]; see
//! `examples/native_tool.rs`.

pub mod cli;
pub mod commands;
pub mod native;

pub use cli::Cli;

/// Run a parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    // Before any HTTP client is made (the OTLP exporter's included).
    toolgate_registry::mcp::install_tls_provider();
    commands::dispatch(cli).await
}
