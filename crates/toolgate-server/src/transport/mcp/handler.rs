//! [`McpHandler`]: the MCP server, as rmcp calls it. rmcp makes one per 2025-11-25
//! session and one per stateless (2026-07-28) request; it holds only the shared
//! [`AppState`], so making one costs a few reference counts.
//!
//! Tool-list changes reach clients as `notifications/tools/list_changed`:
//!
//! - 2025-11-25: after `notifications/initialized`, a task per session watches the
//!   registry and notifies over the session (rmcp routes it to the session's `GET`
//!   stream). The task stops when the session ends (its handler is dropped), when its
//!   stream is gone, or when the server drains.
//! - 2026-07-28: a `subscriptions/listen` request asking for `toolsListChanged` stays
//!   open and gets the notifications on its response stream, until the client closes
//!   it or the server drains (which ends it with the final listen result).

use std::borrow::Cow;
use std::future::Future;
use std::sync::OnceLock;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig, SubscriptionFilter,
};
use rmcp::service::{NotificationContext, Peer, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use tokio_util::sync::DropGuard;
use toolgate_registry::Registry;

use super::RequestScope;
use super::call::call_tool;
use super::catalog::{fingerprint, page};
use crate::AppState;

/// The revisions served: the two this server is tested against first, then the
/// older session-based ones rmcp also speaks, for older clients.
const VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2026_07_28,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_03_26,
];

/// The MCP face of the registry.
pub(super) struct McpHandler {
    state: AppState,
    /// Stops the session's list-change task when rmcp drops the session's handler.
    watch: OnceLock<DropGuard>,
    /// The session's `logging/setLevel`.
    log: super::logging::SessionLog,
}

impl McpHandler {
    pub(super) fn new(state: AppState) -> Self {
        Self {
            state,
            watch: OnceLock::new(),
            log: super::logging::SessionLog::default(),
        }
    }

    /// Start the list-change task of a 2025-11-25 session (once).
    fn watch_session(&self, peer: Peer<RoleServer>) {
        let stop = self.state.shutdown.child_token();
        if self.watch.set(stop.clone().drop_guard()).is_err() {
            return;
        }
        let registry = std::sync::Arc::clone(&self.state.registry);
        tokio::spawn(async move {
            let notify = || {
                let peer = peer.clone();
                async move { peer.notify_tool_list_changed().await.is_ok() }
            };
            on_tool_changes(&registry, stop.cancelled(), notify).await;
        });
    }
}

/// Call `notify` after every reload that changed the catalog, until `stop` resolves
/// or `notify` says the client is gone.
async fn on_tool_changes<F, Fut>(registry: &Registry, stop: impl Future<Output = ()>, notify: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let mut generation = registry.subscribe();
    let mut seen = fingerprint(registry);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            changed = generation.changed() => if changed.is_err() { return },
        }
        let now = fingerprint(registry);
        if now != seen {
            seen = now;
            if !notify().await {
                return;
            }
        }
    }
}

impl ServerHandler for McpHandler {
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(VERSIONS)
    }

    // `logging` is deprecated by SEP-2577 (2026-07-28) and still 2025-11-25's.
    #[allow(deprecated)]
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_logging()
                .build(),
        )
        .with_server_info(Implementation::new("toolgate", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Tools served by toolgate. Each key sees only the tools its scopes allow.",
        )
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let (scope, _) = RequestScope::of(&context.extensions)?;
        let cursor = request.as_ref().and_then(|r| r.cursor.as_deref());
        page(
            &self.state.registry,
            &scope.caller,
            cursor,
            self.state.limits.mcp_tools_page_size,
        )
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // Only a session that set a level pays for its log messages.
        let log = self
            .log
            .is_set()
            .then(|| (request.name.to_string(), context.peer.clone()));
        let result = call_tool(&self.state, request, context).await;
        if let Some((tool, peer)) = log {
            self.log.call_ended(&peer, &tool, &result).await;
        }
        result
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.log.set(request.level);
        Ok(())
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.watch_session(context.peer);
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // Whatever was asked for that this server has: tool-list changes only.
        Some(requested.supported_by(&self.get_info().capabilities))
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let shutdown = toolgate_core::CancellationToken::clone(&self.state.shutdown);
        let stop = async {
            tokio::select! {
                () = context.cancelled() => {},
                () = shutdown.cancelled() => {},
            }
        };
        let sink = context.sink().clone();
        let notify = || {
            let sink = sink.clone();
            async move { sink.notify_tool_list_changed().await.is_ok() }
        };
        on_tool_changes(&self.state.registry, stop, notify).await;
        Ok(())
    }
}
