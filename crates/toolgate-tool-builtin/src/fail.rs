//! `fail`: always fails as a tool error.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use toolgate_core::{CallContext, Tool, ToolError, ToolOutput};

use crate::Builtin;

/// The fail tool.
#[derive(Debug, Default)]
pub struct Fail;

#[async_trait]
impl Tool for Fail {
    async fn call(&self, arguments: Value, _ctx: CallContext) -> Result<ToolOutput, ToolError> {
        let message = arguments
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("the fail tool always fails");
        Err(ToolError::tool(message))
    }
}

pub(crate) fn builtin() -> Builtin {
    Builtin {
        tool: Arc::new(Fail),
        description: "Always fail with a tool error (for testing). The error detail is `message`.",
        input_schema: json!({
            "type": "object",
            "properties": {"message": {"type": "string", "maxLength": 1000}},
            "additionalProperties": false
        }),
        output_schema: None,
        read_only: true,
    }
}
