//! `bare-rmcp ADDR`: the benchmarks' baselines, no features (no keys, no logs, no
//! limits, no tracing):
//!
//! - `/mcp`: one `echo` tool over MCP Streamable HTTP, the way rmcp's examples do it
//!   (bench/mcp);
//! - `POST /api/v1/tools/execute`: a bare axum handler that parses toolgate's batch body,
//!   runs its calls concurrently (two async tools: `echo`, and `sleep` on a tokio timer)
//!   and serialises toolgate's batch answer (bench/compare);
//! - `GET /healthz` and `GET /readyz`.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, JsonObject,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};

#[derive(Clone)]
struct Echo;

impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = JsonObject::from_iter([("type".to_owned(), "object".into())]);
        let tool = Tool::new("echo", "Return the arguments.", Arc::new(schema));
        Ok(ListToolsResult::with_all_items(vec![tool]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let output = serde_json::Value::Object(request.arguments.unwrap_or_default());
        let text = ContentBlock::text(output.to_string());
        Ok(CallToolResult::success(vec![text]).into())
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18700".to_owned());
    let config = StreamableHttpServerConfig::default()
        .with_json_response(true)
        .with_cancellation_token(tokio_util::sync::CancellationToken::new());
    let service = StreamableHttpService::new(
        || Ok(Echo),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = axum::Router::new()
        .route_service("/mcp", service)
        .route("/api/v1/tools/execute", axum::routing::post(batch::execute))
        .route("/healthz", axum::routing::get(batch::healthz))
        .route("/readyz", axum::routing::get(batch::readyz));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

/// The bare batch handler: the same JSON as toolgate's `POST /api/v1/tools/execute`.
mod batch {
    use std::time::{Duration, Instant};

    use axum::Json;
    use serde::{Deserialize, Serialize};
    use serde_json::{Map, Value, json};

    #[derive(Deserialize)]
    pub(crate) struct Batch {
        calls: Vec<Call>,
        #[serde(default)]
        #[allow(dead_code)]
        mode: Option<String>,
        #[serde(default)]
        #[allow(dead_code)]
        timeout_ms: Option<u64>,
    }

    #[derive(Deserialize)]
    struct Call {
        #[serde(default)]
        id: Option<String>,
        tool: String,
        #[serde(default)]
        arguments: Map<String, Value>,
    }

    #[derive(Serialize)]
    pub(crate) struct Outcome {
        id: String,
        tool: String,
        ok: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<Value>,
        duration_ms: u64,
    }

    #[derive(Serialize)]
    pub(crate) struct Answer {
        success: bool,
        data: Vec<Outcome>,
    }

    async fn echo(arguments: Map<String, Value>) -> Result<Value, Value> {
        Ok(Value::Object(arguments))
    }

    async fn sleep(arguments: Map<String, Value>) -> Result<Value, Value> {
        let ms = arguments
            .get("ms")
            .and_then(Value::as_u64)
            .filter(|ms| *ms <= 600_000)
            .ok_or_else(|| json!({"code": "invalid_arguments", "status": 422}))?;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(json!({"slept_ms": ms}))
    }

    async fn run(index: usize, call: Call) -> Outcome {
        let start = Instant::now();
        let result = match call.tool.as_str() {
            "echo" => echo(call.arguments).await,
            "sleep" => sleep(call.arguments).await,
            _ => Err(json!({"code": "tool_not_found", "status": 404})),
        };
        let duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let id = call.id.unwrap_or_else(|| index.to_string());
        let (ok, output, error) = match result {
            Ok(v) => (true, Some(v), None),
            Err(e) => (false, None, Some(e)),
        };
        Outcome {
            id,
            tool: call.tool,
            ok,
            output,
            error,
            duration_ms,
        }
    }

    pub(crate) async fn execute(Json(batch): Json<Batch>) -> Json<Answer> {
        let calls = batch.calls.into_iter().enumerate().map(|(i, c)| run(i, c));
        let data = futures::future::join_all(calls).await;
        Json(Answer {
            success: data.iter().all(|o| o.ok),
            data,
        })
    }

    pub(crate) async fn healthz() -> Json<Value> {
        Json(json!({"status": "ok"}))
    }

    pub(crate) async fn readyz() -> Json<Value> {
        Json(json!({"status": "ready", "checks": {}}))
    }
}
