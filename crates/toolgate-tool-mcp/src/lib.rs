//! # toolgate-tool-mcp: tools of other MCP servers
//!
//! `[sources.NAME] kind = "mcp"` names an upstream MCP server, reached over
//! Streamable HTTP (`url`, either revision) or run as a child process speaking stdio
//! (`command`). Each [`Upstream`] is a supervised connection: it lists the server's
//! tools, lists again on `list_changed`, reconnects (and restarts the child) with
//! backoff, and logs the child's stderr. The registry turns each listed
//! [`RemoteTool`] into a tool of its own, an [`McpTool`], which goes through the same
//! policies as every native tool.
//!
//! - `settings`: [`UpstreamSettings`] from the config.
//! - `upstream`: the connection and its supervisor.
//! - `tool`: one call: progress relayed, cancellation sent upstream, errors mapped.
//! - `pool`: upstreams shared across reloads.
//! - `oauth`: the upstream's own token (client credentials).

mod direct;
mod oauth;
mod pool;
mod settings;
mod tool;
mod upstream;

pub use pool::{changes, upstream};
pub use settings::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESULT_BYTES, OAuth, Protocol, Transport, UpstreamSettings,
};
pub use tool::McpTool;
pub use upstream::{RemoteTool, Snapshot, Upstream, install_tls_provider};
