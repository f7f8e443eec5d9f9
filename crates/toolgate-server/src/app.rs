//! [`Application`]: a bound listener plus state, ready to serve. The binary and the
//! tests build the server the same way through it.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use tokio::net::TcpListener;
use toolgate_config::LoadedConfig;
use toolgate_registry::Registry;

use crate::AppState;

/// Connections the kernel queues for `accept` (it caps this at `net.core.somaxconn`).
/// The usual 1,024 overflows when thousands of clients connect at once, and a dropped
/// SYN costs its client a retransmission second.
const BACKLOG: u32 = 8192;

/// Bind `addr` with [`BACKLOG`] and address reuse (a restart need not wait for the
/// old socket's TIME_WAIT).
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// A server bound to its address.
pub struct Application {
    listener: TcpListener,
    admin: Option<TcpListener>,
    state: AppState,
    drain_timeout: Duration,
}

impl Application {
    /// Bind `listen` and build the state for `registry` under `loaded`'s settings.
    /// `operator_key` overrides the environment's (used for a generated key).
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn build(
        loaded: &LoadedConfig,
        registry: Registry,
        listen: SocketAddr,
        operator_key: Option<&SecretString>,
    ) -> std::io::Result<Self> {
        toolgate_registry::mcp::install_tls_provider();
        let audit = open_audit(loaded)?;
        let jobs = open_jobs(loaded).await?;
        let state = AppState::with_audit(registry, loaded, operator_key, audit, jobs);
        let listener = bind(listen)?;
        let _federation = crate::reload::spawn_federation_watcher(state.clone());
        let admin = match &loaded.config.server.admin_listen {
            Some(addr) => {
                let addr: SocketAddr = addr.get_ref().parse().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("admin_listen {:?} is not IP:PORT", addr.get_ref()),
                    )
                })?;
                let admin = bind(addr).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("admin listener {addr}: {e}"))
                })?;
                Some(admin)
            }
            None => None,
        };
        Ok(Self {
            listener,
            admin,
            state,
            drain_timeout: Duration::from_millis(loaded.config.server.drain_timeout_ms),
        })
    }

    /// Serve MCP over stdin and stdout instead of HTTP (`toolgate stdio`): the
    /// caller is the key `key` names (its scopes, limits and quotas), or, without
    /// one, the process owner with every scope, unless `[server] stdio_require_key`.
    /// `config` is reloaded on SIGHUP and on change, as for `serve`.
    ///
    /// # Errors
    /// The audit log cannot be opened, the key is unknown or missing, or the client
    /// does not speak MCP.
    pub async fn serve_stdio(
        loaded: &LoadedConfig,
        registry: Registry,
        key: Option<&SecretString>,
        config: Option<std::path::PathBuf>,
    ) -> std::io::Result<()> {
        use secrecy::ExposeSecret;
        toolgate_registry::mcp::install_tls_provider();
        let audit = open_audit(loaded)?;
        let jobs = open_jobs(loaded).await?;
        let state = AppState::with_audit(registry, loaded, None, audit, jobs);
        crate::jobs::Jobs::start(&state);
        let caller = match key {
            Some(key) => state.keys.verify(key.expose_secret()).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "TOOLGATE_STDIO_KEY is not a key of this configuration",
                )
            })?,
            None if loaded.config.server.stdio_require_key => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "[server] stdio_require_key is set: give the key in TOOLGATE_STDIO_KEY",
                ));
            }
            None => {
                let owner = std::env::var("USER").unwrap_or_else(|_| "owner".to_owned());
                let name = format!("stdio:{owner}");
                let hash = toolgate_config::KeyHash::of(&name);
                std::sync::Arc::new(crate::auth::Principal::new(
                    name,
                    crate::auth::Scopes::All,
                    hash,
                ))
            }
        };
        tracing::info!(caller = %caller.name, tools = state.registry.tools().count(), "serving MCP on stdio");
        let _federation = crate::reload::spawn_federation_watcher(state.clone());
        let _watcher = config.map(|path| {
            crate::reload::spawn_watcher(state.clone(), path, loaded.config.server.clone())
        });
        crate::transport::mcp::stdio::serve(state, caller).await
    }

    /// The bound address (the real port when asked for port 0).
    ///
    /// # Errors
    /// The socket has no local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The admin listener's address, when `[server] admin_listen` is set.
    #[must_use]
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|a| a.local_addr().ok())
    }

    /// The shared state (tests inspect the registry through it).
    #[must_use]
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` resolves, then drain.
    ///
    /// # Errors
    /// The listener fails.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        crate::serve(
            self.listener,
            self.admin,
            self.state,
            shutdown,
            self.drain_timeout,
        )
        .await
    }
}

/// The audit log of `[audit]`, when the config has one.
fn open_audit(
    loaded: &LoadedConfig,
) -> std::io::Result<Option<std::sync::Arc<crate::audit::Auditor>>> {
    loaded
        .config
        .audit
        .as_ref()
        .map(|cfg| {
            crate::audit::Auditor::open(cfg.get_ref(), &loaded.config.tools)
                .map(std::sync::Arc::new)
                .map_err(std::io::Error::other)
        })
        .transpose()
}

/// The job store of `[jobs]` (memory without it).
async fn open_jobs(loaded: &LoadedConfig) -> std::io::Result<std::sync::Arc<crate::jobs::Jobs>> {
    let jobs = crate::jobs::Jobs::open(loaded)
        .await
        .map_err(std::io::Error::other)?;
    if !jobs.settings().durable {
        tracing::info!("jobs are kept in memory; configure [jobs] to keep them across restarts");
    }
    Ok(std::sync::Arc::new(jobs))
}
