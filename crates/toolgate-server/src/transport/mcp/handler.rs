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
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::OnceLock;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
    ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig, SubscribeRequestParams,
    SubscriptionFilter, UnsubscribeRequestParams,
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
    /// The URIs the session subscribed to (2025-11-25 `resources/subscribe`).
    subscribed: std::sync::Arc<std::sync::Mutex<BTreeSet<String>>>,
    /// The caller of every request, where no HTTP guard names one (stdio).
    fixed: Option<std::sync::Arc<crate::auth::Principal>>,
}

impl McpHandler {
    pub(super) fn new(state: AppState) -> Self {
        Self {
            state,
            watch: OnceLock::new(),
            log: super::logging::SessionLog::default(),
            subscribed: std::sync::Arc::default(),
            fixed: None,
        }
    }

    /// A handler whose every request is `caller`'s (the stdio transport).
    pub(super) fn for_caller(
        state: AppState,
        caller: std::sync::Arc<crate::auth::Principal>,
    ) -> Self {
        Self {
            fixed: Some(caller),
            ..Self::new(state)
        }
    }

    /// Who a request is from: the caller the guard put on the HTTP request, or the
    /// fixed caller of a stdio server (with a trace id of the request's own).
    fn scope(&self, extensions: &rmcp::model::Extensions) -> Result<RequestScope, ErrorData> {
        if let Some(caller) = &self.fixed {
            let trace_id = crate::trace::generate();
            let span = tracing::info_span!("mcp_stdio", trace_id = %trace_id);
            return Ok(RequestScope {
                caller: std::sync::Arc::clone(caller),
                trace_id,
                span,
            });
        }
        RequestScope::of(extensions).map(|(scope, _)| scope.clone())
    }

    /// Start the change task of a 2025-11-25 session (once).
    fn watch_session(&self, peer: Peer<RoleServer>) {
        let stop = self.state.shutdown.child_token();
        if self.watch.set(stop.clone().drop_guard()).is_err() {
            return;
        }
        let registry = std::sync::Arc::clone(&self.state.registry);
        let subscribed = std::sync::Arc::clone(&self.subscribed);
        tokio::spawn(async move {
            let watched = || {
                subscribed
                    .lock()
                    .map(|s| s.iter().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
            };
            let notify = |change: Change| {
                let peer = peer.clone();
                async move {
                    match change {
                        Change::Tools => peer.notify_tool_list_changed().await,
                        Change::Resources => peer.notify_resource_list_changed().await,
                        Change::Prompts => peer.notify_prompt_list_changed().await,
                        Change::Updated(uri) => {
                            peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                                .await
                        }
                    }
                    .is_ok()
                }
            };
            on_changes(&registry, stop.cancelled(), watched, notify).await;
        });
    }
}

/// What a reload changed that a client may want to hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Tools,
    Resources,
    Prompts,
    /// A subscribed resource's content.
    Updated(String),
}

/// What a client last saw: the generation's listings' digests and its content
/// (kept whole, so a URI subscribed since is compared with what it was then).
struct Seen {
    tools: u64,
    listings: (u64, u64),
    content: std::sync::Arc<toolgate_registry::content::Content>,
}

impl Seen {
    fn now(registry: &Registry) -> Self {
        let content = registry.content();
        Self {
            tools: fingerprint(registry),
            listings: super::content::fingerprints(&content),
            content,
        }
    }

    /// What differs from `before`, for the resources `uris`.
    fn changes(&self, before: &Seen, uris: &[String]) -> Vec<Change> {
        let mut out = Vec::new();
        if self.tools != before.tools {
            out.push(Change::Tools);
        }
        if self.listings.0 != before.listings.0 {
            out.push(Change::Resources);
        }
        if self.listings.1 != before.listings.1 {
            out.push(Change::Prompts);
        }
        for uri in uris {
            let then = super::content::resource_digest(&before.content, uri);
            let now = super::content::resource_digest(&self.content, uri);
            if then != now {
                out.push(Change::Updated(uri.clone()));
            }
        }
        out
    }
}

/// Call `notify` for each change a reload made (to the catalog, the resource and
/// prompt listings, and the content of the URIs `watched` returns), until `stop`
/// resolves or `notify` says the client is gone.
async fn on_changes<W, F, Fut>(
    registry: &Registry,
    stop: impl Future<Output = ()>,
    watched: W,
    notify: F,
) where
    W: Fn() -> Vec<String>,
    F: Fn(Change) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut generation = registry.subscribe();
    let mut seen = Seen::now(registry);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            changed = generation.changed() => if changed.is_err() { return },
        }
        let now = Seen::now(registry);
        for change in now.changes(&seen, &watched()) {
            if !notify(change).await {
                return;
            }
        }
        seen = now;
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
                .enable_resources()
                .enable_resources_list_changed()
                .enable_resources_subscribe()
                .enable_prompts()
                .enable_prompts_list_changed()
                .enable_completions()
                .enable_tasks()
                .build(),
        )
        .with_server_info(Implementation::new("toolgate", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Tools, resources and prompts served by toolgate. Each key sees only what its \
             scopes allow. Read toolgate://tools/NAME for a tool's documentation and \
             toolgate://sources/NAME/schema for a SQL source's tables.",
        )
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let scope = self.scope(&context.extensions)?;
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
        // Only a session or request that set a level pays for its log messages.
        #[allow(deprecated)]
        let level = context.meta.log_level().or_else(|| self.log.level());
        let log = level.map(|l| (l, request.name.to_string(), context.peer.clone()));
        let scope = self.scope(&context.extensions)?;
        if context
            .client_capabilities()
            .is_some_and(|c| c.supports_tasks())
            && super::tasks::is_task_call(&self.state, &request.name)
        {
            let arguments = serde_json::Value::Object(request.arguments.unwrap_or_default());
            let job = super::tasks::start(&self.state, &scope, &request.name, arguments).await?;
            return Ok(CallToolResponse::Task(super::tasks::created(&job)));
        }
        let result = call_tool(&self.state, scope, request, context, level).await;
        if let Some((level, tool, peer)) = log {
            super::logging::call_ended(level, &peer, &tool, &result).await;
        }
        result
    }

    async fn get_task(
        &self,
        request: rmcp::model::GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetTaskResult, ErrorData> {
        let scope = self.scope(&context.extensions)?;
        let job = super::tasks::find(&self.state, &scope, &request.task_id).await?;
        Ok(rmcp::model::GetTaskResult::new(super::tasks::detailed(
            &self.state,
            &job,
        )))
    }

    async fn update_task(
        &self,
        request: rmcp::model::UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let scope = self.scope(&context.extensions)?;
        super::tasks::find(&self.state, &scope, &request.task_id).await?;
        Err(ErrorData::invalid_params(
            "this server's tasks never ask for input: an approval is given by an approver \
             (/api/v1/approvals), not by the caller",
            None,
        ))
    }

    async fn cancel_task(
        &self,
        request: rmcp::model::CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let scope = self.scope(&context.extensions)?;
        super::tasks::cancel(&self.state, &scope, &request.task_id).await?;
        Ok(())
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
        let accepted = context.accepted().clone();
        let uris = accepted.resource_subscriptions.clone().unwrap_or_default();
        let sink = context.sink().clone();
        let notify = |change: Change| {
            let sink = sink.clone();
            let accepted = accepted.clone();
            async move {
                // Only what the client asked for and was granted goes out.
                let sent = match change {
                    Change::Tools if accepted.tools_list_changed == Some(true) => {
                        sink.notify_tool_list_changed().await
                    }
                    Change::Resources if accepted.resources_list_changed == Some(true) => {
                        sink.notify_resource_list_changed().await
                    }
                    Change::Prompts if accepted.prompts_list_changed == Some(true) => {
                        sink.notify_prompt_list_changed().await
                    }
                    Change::Updated(uri) => sink.notify_resource_updated(uri).await,
                    _ => return true,
                };
                sent.is_ok()
            }
        };
        on_changes(&self.state.registry, stop, || uris.clone(), notify).await;
        Ok(())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let scope = self.scope(&context.extensions)?;
        Ok(super::content::list_resources(&self.state, &scope.caller))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let scope = self.scope(&context.extensions)?;
        Ok(super::content::list_templates(&self.state, &scope.caller))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let scope = self.scope(&context.extensions)?;
        let read = super::content::read(&self.state, &scope, &request.uri);
        scope.run(read).await.map(ReadResourceResponse::from)
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let scope = self.scope(&context.extensions)?;
        // Only what the caller may read can be subscribed to.
        if !super::content::visible(&self.state, &scope.caller, &request.uri) {
            return Err(super::content::not_found(&request.uri));
        }
        let mut subscribed = self
            .subscribed
            .lock()
            .map_err(|_| ErrorData::internal_error("the subscriptions lock is poisoned", None))?;
        if subscribed.len() >= MAX_SUBSCRIPTIONS && !subscribed.contains(&request.uri) {
            return Err(ErrorData::invalid_params(
                format!("a session subscribes to at most {MAX_SUBSCRIPTIONS} resources"),
                None,
            ));
        }
        subscribed.insert(request.uri);
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Ok(mut subscribed) = self.subscribed.lock() {
            subscribed.remove(&request.uri);
        }
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let scope = self.scope(&context.extensions)?;
        Ok(super::content::list_prompts(&self.state, &scope.caller))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let scope = self.scope(&context.extensions)?;
        let get = super::content::get_prompt(&self.state, &scope, request);
        scope.run(get).await.map(GetPromptResponse::from)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let scope = self.scope(&context.extensions)?;
        let complete = super::content::complete(&self.state, &scope, request);
        scope.run(complete).await
    }
}

/// Resources one session may subscribe to (each is checked at every reload).
const MAX_SUBSCRIPTIONS: usize = 256;
