//! MCP over Streamable HTTP at `/mcp`, driven by rmcp's own client for both protocol
//! revisions (2026-07-28, stateless; 2025-11-25, sessions), plus raw HTTP where the
//! test is about the wire (status codes, headers, a closed stream).

mod calls;
mod notify;
mod security;

use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientConfig, JsonObject, ProgressNotificationParam,
    ProtocolVersion,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use toolgate_test_support::TestServer;

/// The two revisions under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rev {
    /// 2026-07-28: no initialize, no session.
    Modern,
    /// 2025-11-25: initialize, `Mcp-Session-Id`.
    Legacy,
}

/// The demo tools the contract promises.
pub const DEMO_TOOLS: [&str; 5] = [
    "echo",
    "sleep",
    "fail",
    "run_database_query",
    "run_system_audit",
];

/// A client handler that records what the server pushes.
#[derive(Clone)]
pub struct Recorder {
    info: ClientConfig,
    progress: mpsc::UnboundedSender<ProgressNotificationParam>,
    changed: mpsc::UnboundedSender<()>,
    logs: mpsc::UnboundedSender<Value>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.progress.send(params);
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.changed.send(());
    }

    #[allow(deprecated)]
    async fn on_logging_message(
        &self,
        params: rmcp::model::LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self
            .logs
            .send(serde_json::to_value(&params).unwrap_or_default());
    }

    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }
}

/// A connected rmcp client and what it recorded.
pub struct Client {
    pub service: RunningService<RoleClient, Recorder>,
    pub progress: mpsc::UnboundedReceiver<ProgressNotificationParam>,
    pub changed: mpsc::UnboundedReceiver<()>,
    /// `notifications/message` params, as JSON.
    pub logs: mpsc::UnboundedReceiver<Value>,
}

/// Connect to `s` with `key` (as `Authorization: Bearer`) speaking `rev`.
pub async fn connect(s: &TestServer, key: &str, rev: Rev) -> Client {
    try_connect(s, key, rev).await.unwrap()
}

/// As [`connect`], at `path` (a toolset's `/mcp/NAME`).
pub async fn connect_path(s: &TestServer, path: &str, key: &str, rev: Rev) -> Client {
    try_connect_path(s, path, key, rev).await.unwrap()
}

/// As [`connect`], returning the error.
pub async fn try_connect(
    s: &TestServer,
    key: &str,
    rev: Rev,
) -> Result<Client, rmcp::service::ClientInitializeError> {
    try_connect_path(s, "/mcp", key, rev).await
}

async fn try_connect_path(
    s: &TestServer,
    path: &str,
    key: &str,
    rev: Rev,
) -> Result<Client, rmcp::service::ClientInitializeError> {
    let config = StreamableHttpClientTransportConfig::with_uri(s.url(path)).auth_header(key);
    let transport = StreamableHttpClientTransport::from_config(config);
    let (progress_tx, progress) = mpsc::unbounded_channel();
    let (changed_tx, changed) = mpsc::unbounded_channel();
    let (logs_tx, logs) = mpsc::unbounded_channel();
    let mut info = ClientConfig::default();
    info.protocol_version = ProtocolVersion::V_2025_11_25;
    let recorder = Recorder {
        info,
        progress: progress_tx,
        changed: changed_tx,
        logs: logs_tx,
    };
    let lifecycle = match rev {
        Rev::Modern => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        Rev::Legacy => ClientLifecycleMode::Initialize,
    };
    let service = recorder.serve_with_lifecycle(transport, lifecycle).await?;
    Ok(Client {
        service,
        progress,
        changed,
        logs,
    })
}

/// The parameters of a call of `tool` with `arguments` (an object).
pub fn params(tool: &str, arguments: Value) -> CallToolRequestParams {
    let Value::Object(map) = arguments else {
        panic!("arguments must be an object");
    };
    CallToolRequestParams::new(tool.to_owned()).with_arguments(JsonObject::from_iter(map))
}

/// Call `tool` and return the result (panics on a protocol error).
pub async fn call(c: &Client, tool: &str, arguments: Value) -> CallToolResult {
    c.service
        .call_tool(params(tool, arguments))
        .await
        .unwrap_or_else(|e| panic!("calling {tool}: {e}"))
}

/// The text of the single text block of `result`, parsed as JSON.
pub fn text_json(result: &CallToolResult) -> Value {
    let block = result.content.first().expect("a content block");
    let text = block.as_text().expect("a text block");
    serde_json::from_str(&text.text).expect("the text is JSON")
}

/// Wait until `f()` holds (at most 10 s).
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `_meta` of a 2026-07-28 request (for raw HTTP).
pub fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// A raw 2026-07-28 POST of `method` with `params` (`_meta` added unless given), naming `name` in
/// `Mcp-Name` when given.
pub fn modern_post(
    s: &TestServer,
    key: Option<&str>,
    method: &str,
    name: Option<&str>,
    mut params: Value,
) -> reqwest::RequestBuilder {
    if params.get("_meta").is_none() {
        params["_meta"] = modern_meta();
    }
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut req = s
        .client
        .post(s.url("/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", method)
        .body(body.to_string());
    if let Some(name) = name {
        req = req.header("Mcp-Name", name);
    }
    if let Some(key) = key {
        req = req.header("X-Tool-API-Key", key);
    }
    req
}

/// A raw 2025-11-25 POST of `body` in `session` (if any).
pub fn legacy_post(
    s: &TestServer,
    key: &str,
    session: Option<&str>,
    body: &Value,
) -> reqwest::RequestBuilder {
    let mut req = s
        .client
        .post(s.url("/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("X-Tool-API-Key", key)
        .body(body.to_string());
    if let Some(id) = session {
        req = req
            .header("Mcp-Session-Id", id)
            .header("MCP-Protocol-Version", "2025-11-25");
    }
    req
}

/// Open a 2025-11-25 session over raw HTTP; its id.
pub async fn open_session(s: &TestServer, key: &str) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "1"}}});
    let resp = legacy_post(s, key, None, &init).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = resp.text().await.unwrap();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let resp = legacy_post(s, key, Some(&id), &initialized)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    id
}

/// The JSON-RPC message in a response body: the body itself (JSON) or the last
/// `data:` line that holds a response (SSE).
pub fn rpc_message(body: &str) -> Value {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return v;
    }
    body.lines()
        .rev()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("result").is_some() || v.get("error").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC response in {body:?}"))
}
