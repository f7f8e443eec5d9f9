//! Hot reload: on SIGHUP and when the config file changes, the new file is loaded,
//! validated and built in full (sources opened, statements prepared) while the old
//! configuration keeps serving; only then are the tools, keys and OpenAPI document
//! swapped, atomically each. Calls already running finish on the tools they started
//! with. A file with problems changes nothing: every problem is logged.
//!
//! `[server]` settings (listen address, limits, CORS) take effect at the next start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use toolgate_config::{LoadedConfig, Problems, ServerConfig};
use toolgate_registry::Registry;

use crate::AppState;
use crate::transport::rest::tool_json;

/// Events closer together than this are one change (editors write in several steps).
const DEBOUNCE: Duration = Duration::from_millis(200);

/// What a reload changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Tools that are new.
    pub added: Vec<String>,
    /// Tools that are gone.
    pub removed: Vec<String>,
    /// Tools whose description, schemas, annotations or limits changed.
    pub changed: Vec<String>,
}

fn catalog(registry: &Registry) -> BTreeMap<String, Value> {
    registry
        .tools()
        .map(|t| (t.spec().name.clone(), tool_json(t.spec())))
        .collect()
}

fn server_settings(s: &ServerConfig) -> String {
    // Every `[server]` field but the listen address's span, which moves with any
    // edit above it.
    format!(
        "{} {:?} {} {} {} {:?} {} {} {} {} {} {} {:?} {:?} {} {} {} {} {} {} {:?} {} {} {}",
        s.listen.get_ref(),
        s.admin_listen.as_ref().map(|a| a.get_ref()),
        s.body_limit_bytes,
        s.json_max_depth,
        s.max_batch_calls,
        s.cors_allowed_origins,
        s.drain_timeout_ms,
        s.max_in_flight_requests,
        s.sse_heartbeat_ms,
        s.ws_max_in_flight,
        s.ws_max_message_bytes,
        s.ws_ping_interval_ms,
        s.mcp_allowed_origins,
        s.mcp_allowed_hosts,
        s.mcp_session_idle_timeout_ms,
        s.mcp_max_sessions,
        s.mcp_tools_page_size,
        s.header_read_timeout_ms,
        s.body_read_timeout_ms,
        s.max_header_bytes,
        s.max_connections,
        s.operator_reserve_percent,
        s.auth_failures_per_second,
        s.auth_failures_burst,
    )
}

/// Build `loaded` and swap it in.
///
/// # Errors
/// Problems found while building; nothing was changed.
pub fn apply(state: &AppState, loaded: &LoadedConfig) -> Result<ReloadSummary, Problems> {
    let next = Registry::from_config(loaded)?;
    let before = catalog(&state.registry);
    let after = catalog(&next);
    let summary = ReloadSummary {
        added: after
            .keys()
            .filter(|k| !before.contains_key(*k))
            .cloned()
            .collect(),
        removed: before
            .keys()
            .filter(|k| !after.contains_key(*k))
            .cloned()
            .collect(),
        changed: after
            .iter()
            .filter(|(k, v)| before.get(*k).is_some_and(|old| old != *v))
            .map(|(k, _)| k.clone())
            .collect(),
    };
    state.registry.replace_with(next);
    // Before the keys: a WebSocket re-checking its key finds its set as reloaded.
    state
        .toolsets
        .store(std::sync::Arc::new(crate::toolsets::of(loaded)));
    // Keys kept keep their counters; long-lived connections re-check theirs.
    state.keys.reload(
        state.operator_key.as_ref(),
        &loaded.config.keys,
        crate::quota::QuotaDefaults::from_server(&loaded.config.server),
    );
    state.tokens.store(crate::state::tokens_of(loaded));
    state.docs.rebuild(&state.registry);
    state.jobs.update(loaded);
    if let Some(audit) = &state.audit {
        audit.update(&loaded.config.tools);
    }
    Ok(summary)
}

/// [`apply`] on a blocking thread: building may read OpenAPI documents over the
/// network (up to their `fetch_timeout_ms`), which must not hold a runtime worker.
async fn apply_blocking(state: &AppState, loaded: LoadedConfig) -> Result<ReloadSummary, Problems> {
    let state = state.clone();
    let file = loaded.file().to_owned();
    match tokio::task::spawn_blocking(move || apply(&state, &loaded)).await {
        Ok(r) => r,
        // A panic while building is a bug: it surfaces as it would have inline.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Problems(vec![toolgate_config::Problem {
            file,
            line: 1,
            column: 1,
            message: "the reload was cancelled: the server is stopping".to_owned(),
        }])),
    }
}

/// Load `path` and apply it, logging the outcome.
///
/// # Errors
/// The file could not be loaded or built; the running configuration stays.
pub async fn reload_file(
    state: &AppState,
    path: &Path,
    running: &ServerConfig,
) -> Result<ReloadSummary, Problems> {
    let result = match LoadedConfig::from_file(path) {
        Ok(loaded) => {
            if server_settings(&loaded.config.server) != server_settings(running) {
                tracing::warn!(config = %path.display(), "[server] settings changed; they take effect at the next start");
            }
            // New MCP upstreams connect and list before the build takes their tools.
            let _running = toolgate_registry::mcp::prepare(&loaded).await;
            apply_blocking(state, loaded).await
        }
        Err(p) => Err(p),
    };
    let label = if result.is_ok() { "ok" } else { "refused" };
    metrics::counter!(toolgate_telemetry::metrics::RELOADS, "result" => label).increment(1);
    match &result {
        Ok(s) => tracing::info!(
            config = %path.display(),
            added = ?s.added,
            removed = ?s.removed,
            changed = ?s.changed,
            "configuration reloaded"
        ),
        Err(problems) => {
            for p in &problems.0 {
                tracing::error!(problem = %p, "reload refused");
            }
            tracing::error!(
                config = %path.display(),
                problems = problems.0.len(),
                "the new configuration has problems; keeping the running one"
            );
        }
    }
    result
}

/// Reload `path` on SIGHUP and whenever the file changes, until the server drains.
#[must_use]
pub fn spawn_watcher(state: AppState, path: PathBuf, running: ServerConfig) -> JoinHandle<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    // Installed before returning, so a SIGHUP right after start reloads rather than
    // hitting the default action (which ends the process).
    spawn_sighup(
        tx.clone(),
        toolgate_core::CancellationToken::clone(&state.shutdown),
    );
    // Watching starts before returning too: a change made right after start counts.
    let mut watch = FileWatch::new(&path, tx);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = state.shutdown.cancelled() => break,
                got = rx.recv() => if got.is_none() { break },
            }
            // Coalesce a burst of events into one reload.
            tokio::time::sleep(DEBOUNCE).await;
            while rx.try_recv().is_ok() {}
            // The file may have been replaced (an editor's rename, a Kubernetes
            // ConfigMap's symlink swap): watch whatever the path names now.
            if let Some(w) = watch.as_mut() {
                w.rearm().await;
            }
            let _ = reload_file(&state, &path, &running).await;
        }
    })
}

/// Rebuild the registry whenever an MCP upstream lists tools other than those it
/// was built with (its `list_changed`, or its first listing after being down), until
/// the server drains.
pub fn spawn_federation_watcher(state: AppState) -> JoinHandle<()> {
    let mut changes = toolgate_registry::mcp::changes();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = state.shutdown.cancelled() => break,
                got = changes.changed() => if got.is_err() { break },
            }
            // Coalesce a burst of listings into one rebuild.
            tokio::time::sleep(DEBOUNCE).await;
            changes.mark_unchanged();
            let Some(loaded) = state.registry.stale_federation() else {
                continue;
            };
            match apply_blocking(&state, loaded).await {
                Ok(s) => tracing::info!(
                    added = ?s.added,
                    removed = ?s.removed,
                    changed = ?s.changed,
                    "tools of an mcp upstream changed"
                ),
                Err(problems) => {
                    for p in &problems.0 {
                        tracing::error!(problem = %p, "rebuild after an upstream change refused");
                    }
                }
            }
        }
    })
}

/// Without a config file (the embedded demo) there is nothing to reload: SIGHUP is
/// logged and otherwise ignored rather than ending the process.
pub fn ignore_sighup(state: &AppState) {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    spawn_sighup(tx, toolgate_core::CancellationToken::clone(&state.shutdown));
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            tracing::warn!("SIGHUP ignored: the embedded demo configuration has no file to reload");
        }
    });
}

/// A watch on the config file itself. Not on its directory: a directory watch wakes
/// for every write to any file beside the config (an audit database in the same
/// directory made this thread one of the busiest in the process), and it misses a
/// Kubernetes ConfigMap update, which swaps a symlinked directory.
struct FileWatch {
    watcher: notify::RecommendedWatcher,
    path: PathBuf,
}

impl FileWatch {
    fn new(path: &Path, tx: mpsc::UnboundedSender<()>) -> Option<Self> {
        use notify::Watcher;
        let mut watcher = notify::recommended_watcher(
            move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event
                    && !event.kind.is_access()
                {
                    let _ = tx.send(());
                }
            },
        )
        .map_err(
            |e| tracing::warn!(error = %e, "cannot watch the config file; SIGHUP still reloads"),
        )
        .ok()?;
        if let Err(e) = watcher.watch(path, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(error = %e, path = %path.display(), "cannot watch the config file; SIGHUP still reloads");
            return None;
        }
        Some(Self {
            watcher,
            path: path.to_path_buf(),
        })
    }

    /// Watch the file the path names now. A replaced file is gone for a moment when
    /// an editor deletes before it writes: try for a while.
    async fn rearm(&mut self) {
        use notify::Watcher;
        let _ = self.watcher.unwatch(&self.path);
        for _ in 0..REARM_ATTEMPTS {
            match self
                .watcher
                .watch(&self.path, notify::RecursiveMode::NonRecursive)
            {
                Ok(()) => return,
                Err(_) => tokio::time::sleep(REARM_PAUSE).await,
            }
        }
        tracing::warn!(path = %self.path.display(), "the config file is gone; changes are no longer watched (SIGHUP still reloads)");
    }
}

/// How often, and how far apart, a vanished config file is looked for again.
const REARM_ATTEMPTS: u32 = 50;
const REARM_PAUSE: Duration = Duration::from_millis(100);

#[cfg(unix)]
fn spawn_sighup(tx: mpsc::UnboundedSender<()>, shutdown: toolgate_core::CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP");
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                got = hup.recv() => {
                    if got.is_none() || tx.send(()).is_err() {
                        break;
                    }
                    tracing::info!(signal = "SIGHUP", "reloading the configuration");
                }
            }
        }
    });
}

#[cfg(not(unix))]
fn spawn_sighup(_tx: mpsc::UnboundedSender<()>, _shutdown: toolgate_core::CancellationToken) {}
