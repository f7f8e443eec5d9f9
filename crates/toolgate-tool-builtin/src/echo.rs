//! `echo`: the output is the arguments, unchanged.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use toolgate_core::{CallContext, Tool, ToolError, ToolOutput};

use crate::Builtin;

/// The echo tool.
#[derive(Debug, Default)]
pub struct Echo;

#[async_trait]
impl Tool for Echo {
    async fn call(&self, arguments: Value, _ctx: CallContext) -> Result<ToolOutput, ToolError> {
        Ok(arguments)
    }
}

pub(crate) fn builtin() -> Builtin {
    Builtin {
        tool: Arc::new(Echo),
        description: "Return the arguments unchanged. Accepts any JSON object.",
        input_schema: json!({"type": "object"}),
        output_schema: None,
        read_only: true,
    }
}
