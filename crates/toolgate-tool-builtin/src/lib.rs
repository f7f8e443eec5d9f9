//! # toolgate-tool-builtin: tools that ship inside toolgate
//!
//! - [`echo`]: returns its arguments unchanged.
//! - [`sleep`]: waits `ms` milliseconds, reporting progress every 100 ms, and stops the
//!   moment its call is cancelled.
//! - [`fail`]: always fails as a tool error, for testing clients and policies.
//! - [`audit`]: real facts of the host (OS, uptime, load, memory, disks).
//!
//! [`builtin`] maps a configured [`BuiltinName`] to the tool and its [`Builtin`]
//! description (schemas and annotations), which the registry turns into a `ToolSpec`.

pub mod audit;
pub mod echo;
pub mod fail;
pub mod sleep;

use std::sync::Arc;

use serde_json::Value;
use toolgate_config::BuiltinName;
use toolgate_core::Tool;

/// A built-in tool and what it says about itself.
pub struct Builtin {
    /// The tool.
    pub tool: Arc<dyn Tool>,
    /// Default description.
    pub description: &'static str,
    /// Input JSON Schema.
    pub input_schema: Value,
    /// Output JSON Schema, if the tool has a fixed output shape.
    pub output_schema: Option<Value>,
    /// Whether the tool changes nothing (and so may be repeated).
    pub read_only: bool,
}

/// The built-in tool named `name`.
#[must_use]
pub fn builtin(name: BuiltinName) -> Builtin {
    match name {
        BuiltinName::Echo => echo::builtin(),
        BuiltinName::Sleep => sleep::builtin(),
        BuiltinName::Fail => fail::builtin(),
        BuiltinName::SystemAudit => audit::builtin(),
    }
}
