//! [`Upstream`]: one connection to an MCP server, kept up by a supervisor task.
//!
//! The supervisor connects (Streamable HTTP, or a child process over stdio), lists
//! the tools, and then waits: for `notifications/tools/list_changed` (2025-11-25's
//! session notification, or 2026-07-28's `subscriptions/listen` stream), after which
//! it lists again; for the connection to end (the child exited), after which it
//! connects again with exponential backoff; or for the [`Upstream`] to be dropped,
//! which stops the child. Every new listing bumps the upstream's version and
//! [`crate::changes`], so the server rebuilds its registry.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use rmcp::model::{
    ClientConfig, Implementation, ProgressNotificationParam, ProgressToken, ProtocolVersion,
    SubscriptionFilter,
};
use rmcp::service::{NotificationContext, Peer, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{Notify, watch};
use tokio_util::sync::{CancellationToken, DropGuard};
use toolgate_core::ProgressSink;

use crate::settings::{Protocol, Transport, UpstreamSettings};

/// First wait before connecting again.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait before connecting again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A token is fetched again this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(30);
/// Longest stderr line kept in a log record.
const MAX_STDERR_LINE: usize = 2048;
/// Requests one connection carries at once (rmcp's default is 16).
const MAX_CONCURRENT_REQUESTS: usize = 4096;

/// One tool of the upstream, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteTool {
    /// The upstream's name for it.
    pub name: String,
    /// Its description (the title when it has none).
    pub description: String,
    /// Its input schema.
    pub input_schema: Value,
    /// Its output schema, when declared.
    pub output_schema: Option<Value>,
    /// `readOnlyHint`.
    pub read_only: bool,
    /// `idempotentHint` (or read-only).
    pub idempotent: bool,
    /// `destructiveHint` (the spec's default, true, for a tool that is not read-only).
    pub destructive: bool,
}

/// What the upstream last listed, and how the last attempt went.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Tools of the last successful listing (empty before the first).
    pub tools: Arc<Vec<RemoteTool>>,
    /// Bumped by every listing that changed the tools.
    pub version: u64,
    /// Whether a listing has succeeded since start.
    pub listed: bool,
    /// Why the last connection or listing failed, while it has not recovered.
    pub error: Option<String>,
    /// Whether a connection is up now.
    pub connected: bool,
}

pub(crate) struct Inner {
    pub(crate) settings: UpstreamSettings,
    /// The live connection's peer, while one is up.
    pub(crate) peer: ArcSwapOption<Peer<RoleClient>>,
    /// The direct path, while a 2026-07-28 Streamable HTTP connection is up.
    pub(crate) direct: ArcSwapOption<crate::direct::Direct>,
    pub(crate) state: watch::Sender<Snapshot>,
    /// Where progress of each call in flight goes, by the token rmcp gave it.
    pub(crate) progress: Mutex<HashMap<ProgressToken, ProgressSink>>,
    relist: Notify,
}

/// A supervised connection to one MCP server. Dropping the last handle stops it
/// (and the child process, for stdio).
pub struct Upstream {
    pub(crate) inner: Arc<Inner>,
    _stop: DropGuard,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("source", &self.inner.settings.source)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// Start the supervisor of `settings` on the current tokio runtime.
    ///
    /// # Errors
    /// There is no runtime to run it on.
    pub(crate) fn start(settings: UpstreamSettings) -> Result<Arc<Self>, String> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| "an mcp source needs a running server".to_owned())?;
        let inner = Arc::new(Inner {
            settings,
            peer: ArcSwapOption::empty(),
            direct: ArcSwapOption::empty(),
            state: watch::Sender::new(Snapshot::default()),
            progress: Mutex::new(HashMap::new()),
            relist: Notify::new(),
        });
        let stop = CancellationToken::new();
        handle.spawn(supervise(Arc::clone(&inner), stop.clone()));
        Ok(Arc::new(Self {
            inner,
            _stop: stop.drop_guard(),
        }))
    }

    /// The source's name.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.inner.settings.source
    }

    /// What it last listed.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        self.inner.state.borrow().clone()
    }

    /// Wait until the first listing succeeded or the first attempt failed, at most
    /// the connect timeout.
    pub async fn first_listing(&self) {
        let mut rx = self.inner.state.subscribe();
        let wait = rx.wait_for(|s| s.listed || s.error.is_some());
        let _ = tokio::time::timeout(self.inner.settings.connect_timeout, wait).await;
    }

    /// Whether the upstream is connected and listed, for `/readyz`.
    ///
    /// # Errors
    /// Why it is not.
    pub fn check(&self) -> Result<(), String> {
        let s = self.inner.state.borrow();
        if s.connected && s.listed {
            return Ok(());
        }
        Err(s
            .error
            .clone()
            .unwrap_or_else(|| "not connected yet".to_owned()))
    }
}

/// rmcp's callbacks: progress to the call's sink, list changes to the supervisor.
#[derive(Clone)]
struct Handler {
    inner: Arc<Inner>,
    info: ClientConfig,
}

impl ClientHandler for Handler {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let sink = self
            .inner
            .progress
            .lock()
            .ok()
            .and_then(|m| m.get(&params.progress_token).cloned());
        if let Some(sink) = sink {
            sink.report(params.progress, params.total, params.message);
        }
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.inner.relist.notify_one();
    }

    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }
}

fn client_info() -> ClientConfig {
    let mut info = ClientConfig::default();
    info.protocol_version = ProtocolVersion::V_2025_11_25;
    info.client_info = Implementation::new("toolgate", env!("CARGO_PKG_VERSION"));
    info
}

fn lifecycle(p: Protocol) -> ClientLifecycleMode {
    match p {
        Protocol::Auto => ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        },
        Protocol::Modern => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        Protocol::Legacy => ClientLifecycleMode::Initialize,
    }
}

/// Make ring the process's default rustls provider unless one is installed.
///
/// rmcp's HTTP client is reqwest 0.13 built without a provider of its own (so that
/// no second crypto stack is compiled in), and cargo unifies that feature for every
/// user of reqwest 0.13 in the binary (the OTLP exporter, rmcp clients in tests): a
/// client they build without a default provider would fail. Servers call this once
/// at start; calling it again does nothing.
pub fn install_tls_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The reqwest client of rmcp's Streamable HTTP transport: rustls with ring and the
/// webpki roots, no redirects (an upstream cannot send toolgate elsewhere).
fn http_client() -> Result<reqwest13::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest13::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest13::redirect::Policy::none())
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

type Service = RunningService<RoleClient, Handler>;

/// One connection attempt: the running service, when its token must be renewed,
/// and (Streamable HTTP) what the direct path needs.
async fn connect(
    inner: &Arc<Inner>,
) -> Result<(Service, Option<Duration>, Option<crate::direct::Direct>), String> {
    let s = &inner.settings;
    let handler = Handler {
        inner: Arc::clone(inner),
        info: client_info(),
    };
    match &s.transport {
        Transport::Http {
            url,
            headers,
            oauth,
        } => {
            let mut map = HashMap::new();
            let mut direct_headers = reqwest13::header::HeaderMap::new();
            for (k, v) in headers {
                let name = http::HeaderName::from_bytes(k.as_bytes())
                    .map_err(|_| format!("{k:?} is not a header name"))?;
                let mut value = http::HeaderValue::from_str(v)
                    .map_err(|_| format!("header {k:?}: not a valid value"))?;
                value.set_sensitive(true);
                direct_headers.insert(name.clone(), value.clone());
                map.insert(name, value);
            }
            let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                .custom_headers(map)
                .max_concurrent_requests(MAX_CONCURRENT_REQUESTS)
                .max_json_response_size(s.max_result_bytes)
                .max_sse_event_size(s.max_result_bytes)
                .reinit_on_expired_session(true);
            let mut renew = None;
            if let Some(o) = oauth {
                let token = crate::oauth::fetch(o, s.connect_timeout).await?;
                renew = token.expires_in.map(|e| e.saturating_sub(TOKEN_MARGIN));
                let mut bearer =
                    http::HeaderValue::from_str(&format!("Bearer {}", token.access_token))
                        .map_err(|_| "the token is not a valid header value".to_owned())?;
                bearer.set_sensitive(true);
                direct_headers.insert(http::header::AUTHORIZATION, bearer);
                config = config.auth_header(token.access_token);
            }
            let client = http_client()?;
            let transport = StreamableHttpClientTransport::with_client(client.clone(), config);
            let service = handler
                .serve_with_lifecycle(transport, lifecycle(s.protocol))
                .await
                .map_err(|e| format!("connecting to {url}: {e}"))?;
            let modern = service
                .peer()
                .peer_info()
                .is_some_and(|i| !i.protocol_version.has_initialize());
            let direct = modern.then(|| crate::direct::Direct {
                client,
                url: url.clone(),
                headers: direct_headers,
            });
            Ok((service, renew, direct))
        }
        Transport::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(args)
                .env_clear()
                .envs(env.iter().map(|(k, v)| (k, v)))
                .current_dir(cwd);
            let (transport, stderr) = TokioChildProcess::builder(cmd)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("starting {command:?}: {e}"))?;
            if let Some(err) = stderr {
                tokio::spawn(forward_stderr(s.source.clone(), err));
            }
            let service = handler
                .serve_with_lifecycle(transport, lifecycle(s.protocol))
                .await
                .map_err(|e| format!("talking to {command:?}: {e}"))?;
            Ok((service, None, None))
        }
    }
}

/// The child's stderr, line by line, into toolgate's log.
async fn forward_stderr(source: String, stderr: tokio::process::ChildStderr) {
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(mut line)) = lines.next_line().await {
        if line.len() > MAX_STDERR_LINE {
            let mut cut = MAX_STDERR_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        tracing::info!(source = %source, stderr = %line, "mcp upstream");
    }
}

fn remote_tool(t: rmcp::model::Tool) -> RemoteTool {
    let hints = t.annotations.as_ref();
    let read_only = hints.and_then(|a| a.read_only_hint).unwrap_or(false);
    let destructive = !read_only && hints.and_then(|a| a.destructive_hint).unwrap_or(true);
    let idempotent = read_only || hints.and_then(|a| a.idempotent_hint).unwrap_or(false);
    RemoteTool {
        description: t
            .description
            .as_deref()
            .map(str::to_owned)
            .or(t.title.clone())
            .unwrap_or_default(),
        name: t.name.into_owned(),
        input_schema: Value::Object((*t.input_schema).clone()),
        output_schema: t.output_schema.map(|s| Value::Object((*s).clone())),
        read_only,
        idempotent,
        destructive,
    }
}

/// List every tool (all pages) and publish the listing.
async fn relist(inner: &Inner, peer: &Peer<RoleClient>) -> Result<(), String> {
    let tools = peer
        .list_all_tools()
        .await
        .map_err(|e| format!("tools/list: {e}"))?;
    let tools: Vec<RemoteTool> = tools.into_iter().map(remote_tool).collect();
    let mut changed = false;
    inner.state.send_modify(|s| {
        if !s.listed || *s.tools != tools {
            s.tools = Arc::new(tools);
            s.version += 1;
            changed = true;
        }
        s.listed = true;
        s.error = None;
        s.connected = true;
    });
    if changed {
        tracing::info!(
            source = %inner.settings.source,
            tools = inner.state.borrow().tools.len(),
            "mcp upstream listed its tools"
        );
        crate::pool::bump();
    }
    Ok(())
}

fn fail(inner: &Inner, error: String) {
    tracing::warn!(source = %inner.settings.source, error = %error, "mcp upstream unavailable");
    inner.state.send_modify(|s| {
        s.error = Some(error);
        s.connected = false;
    });
}

/// For a 2026-07-28 connection: hold a `subscriptions/listen` stream open for tool
/// list changes and relist on each (2025-11-25 sessions get theirs through
/// [`Handler::on_tool_list_changed`]).
async fn listen_for_changes(inner: Arc<Inner>, peer: Peer<RoleClient>, stop: CancellationToken) {
    let modern = peer
        .peer_info()
        .is_some_and(|i| !i.protocol_version.has_initialize());
    if !modern {
        return;
    }
    let filter = SubscriptionFilter::builder().tools_list_changed().build();
    let mut sub = match peer.listen(filter).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(source = %inner.settings.source, error = %e, "no list-change subscription");
            return;
        }
    };
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                let _ = sub.cancel().await;
                return;
            }
            n = sub.next() => match n {
                Ok(Some(_)) => inner.relist.notify_one(),
                _ => return,
            },
        }
    }
}

async fn supervise(inner: Arc<Inner>, stop: CancellationToken) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let attempt = tokio::select! {
            () = stop.cancelled() => return,
            r = connect(&inner) => r,
        };
        match attempt {
            Ok((service, renew, direct)) => {
                let peer = service.peer().clone();
                inner.peer.store(Some(Arc::new(peer.clone())));
                inner.direct.store(direct.map(Arc::new));
                let conn_stop = stop.child_token();
                let listed = relist(&inner, &peer).await;
                match listed {
                    Ok(()) => {
                        backoff = MIN_BACKOFF;
                        tokio::spawn(listen_for_changes(
                            Arc::clone(&inner),
                            peer.clone(),
                            conn_stop.clone(),
                        ));
                        hold(&inner, &peer, service, renew, &stop).await;
                    }
                    Err(e) => {
                        fail(&inner, e);
                        let mut service = service;
                        let _ = service.close().await;
                    }
                }
                conn_stop.cancel();
                inner.peer.store(None);
                inner.direct.store(None);
                if stop.is_cancelled() {
                    return;
                }
                inner.state.send_modify(|s| s.connected = false);
            }
            Err(e) => fail(&inner, e),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Serve on a live connection until it ends, the token is due, or `stop` fires.
async fn hold(
    inner: &Arc<Inner>,
    peer: &Peer<RoleClient>,
    service: Service,
    renew: Option<Duration>,
    stop: &CancellationToken,
) {
    let ct = service.cancellation_token();
    let mut done = Box::pin(service.waiting());
    let renew_at = renew.map(|d| tokio::time::Instant::now() + d);
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                ct.cancel();
                let _ = done.await;
                return;
            }
            () = async {
                match renew_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                tracing::info!(source = %inner.settings.source, "renewing the upstream token");
                ct.cancel();
                let _ = done.await;
                return;
            }
            quit = &mut done => {
                let why = match quit {
                    Ok(reason) => format!("the connection ended ({reason:?})"),
                    Err(e) => format!("the connection failed: {e}"),
                };
                fail(inner, why);
                return;
            }
            () = inner.relist.notified() => {
                if let Err(e) = relist(inner, peer).await {
                    tracing::warn!(source = %inner.settings.source, error = %e, "relisting failed");
                }
            }
        }
    }
}
