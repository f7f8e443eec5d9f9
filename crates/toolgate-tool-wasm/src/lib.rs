//! # toolgate-tool-wasm: the `wasm` tool kind
//!
//! Runs an operator-declared WebAssembly module as a tool, in a sandbox with no
//! ambient authority. The parts, in the order a tool meets them:
//!
//! - [`engine`]: the one process-wide wasmtime `Engine`, its epoch ticker thread, and
//!   the cache of compiled, pre-instantiated modules (keyed by the module's SHA-256,
//!   so a reload does not recompile an unchanged module).
//! - [`sandbox`]: what a call may touch: the WASI preview 1 context built fresh per
//!   call from the tool's declared capabilities (environment variables, directories,
//!   real or frozen clocks), with stdin/stdout/stderr as in-memory pipes.
//! - [`limits`]: the per-call memory and table limits.
//! - [`tool`]: [`WasmTool`]: load (read, compile, check, pre-instantiate) once; per
//!   call a fresh `Store`, run `_start`, stop at the deadline or on cancellation.
//! - [`outcome`]: how an exit, a trap or an interruption becomes output or a
//!   `ToolError`, and the output-schema check.
//!
//! ## The ABI
//!
//! A module is a WASI preview 1 *command*: it exports `_start` (and its memory) and
//! imports nothing but `wasi_snapshot_preview1`. A call writes the arguments, one JSON
//! object, to its stdin; the module writes its output, one JSON value, to stdout and
//! returns from `_start` (or exits with status 0). A non-zero exit status is a
//! failure; if stdout then holds `{"error": "..."}`, that message is the caller's.
//! stderr is logged (truncated), never returned.

pub mod engine;
pub mod limits;
pub mod outcome;
pub mod sandbox;
pub mod tool;

pub use tool::{LoadError, WasmTool};
