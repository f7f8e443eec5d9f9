//! # toolgate-tool-http: the `http` tool kind
//!
//! A tool that calls an HTTP upstream, declared in the config:
//!
//! ```text
//! arguments ─▶ template::UrlTemplate::fill (percent-encoded, origin fixed)
//!           ─▶ guard: IP literal checked; host names resolved by GuardedResolver,
//!              every address checked, the connection made to those addresses
//!           ─▶ reqwest (one pooled client per tool; redirects ≤ 3, re-checked)
//!           ─▶ status classified (5xx/connect/timeout → upstream_error, retryable;
//!              other 4xx → tool_error) ─▶ body read up to the cap ─▶ JSON pointer
//! ```
//!
//! - [`template`]: URL and JSON body templates.
//! - [`guard`]: the SSRF guard and the guarded resolver.
//! - [`tool`]: the tool itself, [`HttpTool`].
//! - [`openapi`]: OpenAPI 3.0/3.1 documents read, and their operations turned into
//!   tools ([`HttpTool::for_operation`]).

pub mod exchange;
pub mod guard;
pub mod openapi;
pub mod template;
pub mod tool;

pub use tool::HttpTool;
