//! Tools written in Rust: an input type deriving [`schemars::JsonSchema`] and
//! [`serde::Deserialize`], plus an async function. The input schema is derived from
//! the type, so REST, OpenAPI and validation all see the same contract.
//!
//! ```no_run
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use serde_json::json;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Add { a: i64, b: i64 }
//!
//! # fn main() -> Result<(), String> {
//! let mut registry = toolgate_registry::Registry::new();
//! toolgate::native::tool("add", "Add two integers.", |args: Add, _ctx| async move {
//!     Ok(json!({ "sum": args.a + args.b }))
//! })
//! .read_only(true)
//! .register(&mut registry)?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;
use toolgate_core::{Annotations, CallContext, Tool, ToolError, ToolOutput, ToolSpec};
use toolgate_registry::Registry;

/// A native tool being declared; finish with [`NativeTool::register`].
pub struct NativeTool {
    spec: ToolSpec,
    tool: Arc<dyn Tool>,
}

struct FnTool<A, F> {
    f: F,
    _args: PhantomData<fn(A)>,
}

#[async_trait]
impl<A, F, Fut> Tool for FnTool<A, F>
where
    A: DeserializeOwned + Send + 'static,
    F: Fn(A, CallContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ToolOutput, ToolError>> + Send + 'static,
{
    async fn call(&self, arguments: Value, ctx: CallContext) -> Result<ToolOutput, ToolError> {
        // The registry validated against the derived schema; a type that still does
        // not deserialize (custom serde rules) is reported as the client's error.
        let args: A = serde_json::from_value(arguments).map_err(|e| {
            ToolError::invalid_arguments(vec![toolgate_core::FieldError {
                pointer: String::new(),
                message: e.to_string(),
            }])
        })?;
        (self.f)(args, ctx).await
    }
}

/// Declare a tool named `name` whose arguments deserialize into `A`.
pub fn tool<A, F, Fut>(name: &str, description: &str, f: F) -> NativeTool
where
    A: DeserializeOwned + JsonSchema + Send + 'static,
    F: Fn(A, CallContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ToolOutput, ToolError>> + Send + 'static,
{
    let input_schema = schemars::schema_for!(A).to_value();
    NativeTool {
        spec: ToolSpec {
            name: name.to_owned(),
            description: description.to_owned(),
            input_schema,
            output_schema: None,
            annotations: Annotations::default(),
            timeout: Duration::from_secs(30),
            max_concurrency: 32,
            max_queue: 64,
        },
        tool: Arc::new(FnTool {
            f,
            _args: PhantomData,
        }),
    }
}

impl NativeTool {
    /// Mark the tool read-only (and so idempotent).
    #[must_use]
    pub fn read_only(mut self, yes: bool) -> Self {
        self.spec.annotations.read_only = yes;
        self.spec.annotations.idempotent = yes;
        self
    }

    /// Set the output schema from a type.
    #[must_use]
    pub fn output<O: JsonSchema>(mut self) -> Self {
        self.spec.output_schema = Some(schemars::schema_for!(O).to_value());
        self
    }

    /// Set the timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.spec.timeout = timeout;
        self
    }

    /// Set the concurrency limit and queue bound.
    #[must_use]
    pub fn limits(mut self, max_concurrency: usize, max_queue: usize) -> Self {
        self.spec.max_concurrency = max_concurrency;
        self.spec.max_queue = max_queue;
        self
    }

    /// Add the tool to `registry`.
    ///
    /// # Errors
    /// The name is taken or invalid, or the derived schema does not compile.
    pub fn register(self, registry: &mut Registry) -> Result<(), String> {
        if !toolgate_config::load::is_valid_tool_name(&self.spec.name)
            || self.spec.name == "execute"
        {
            return Err(format!("{:?} is not a valid tool name", self.spec.name));
        }
        registry.register(self.spec, self.tool)
    }
}
