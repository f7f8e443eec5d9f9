//! # toolgate-test-support: a real server for black-box tests
//!
//! [`TestServer::spawn`] builds the server from a config text exactly as the binary
//! does, binds 127.0.0.1:0, and serves it on the test's runtime; requests go over
//! real HTTP with [`reqwest`]. [`key_entry`] writes a `[[keys]]` block for a known key.
//! [`TestServer::spawn_file`] serves a config file and reloads it when it changes.
//! [`Dependency`] is a scriptable downstream system for policy tests; [`FaultProxy`]
//! sits between the server and a real dependency and fails on command;
//! [`PrivatePostgres`] is a PostgreSQL server of a test's own, to stop and restart.

mod dependency;
mod fault;
mod idp;
mod postgres;

pub use dependency::Dependency;
pub use fault::{Fault, FaultProxy};
pub use idp::Idp;
pub use postgres::{PrivatePostgres, Shutdown};

use std::net::SocketAddr;

use secrecy::SecretString;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use toolgate_config::{DEMO_CONFIG, KeyHash, LoadedConfig};
use toolgate_registry::Registry;
use toolgate_server::{AppState, Application};

/// The operator key every test server accepts (all scopes).
pub const OPERATOR_KEY: &str = "test-operator-key-0123456789abcdef";

/// A `[[keys]]` block accepting `key` under `name` with `scopes`.
#[must_use]
pub fn key_entry(name: &str, key: &str, scopes: &[&str]) -> String {
    let scopes = scopes
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "\n[[keys]]\nname = {name:?}\nhash = \"{}\"\nscopes = [{scopes}]\n",
        KeyHash::of(key)
    )
}

/// A running server.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The admin listener's address, when the config sets `admin_listen`.
    pub admin_addr: Option<SocketAddr>,
    /// Its state, for looking inside (in-flight counts).
    pub state: AppState,
    /// A client without default headers.
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

/// A port of 127.0.0.1 that was free a moment ago (bound, read, released), for a
/// server whose config must know its own address before it starts.
///
/// # Errors
/// Nothing could be bound.
pub fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

impl TestServer {
    /// The demo configuration.
    ///
    /// # Errors
    /// The server cannot start.
    pub async fn demo() -> anyhow::Result<Self> {
        Self::spawn(DEMO_CONFIG).await
    }

    /// Serve `config` (TOML text).
    ///
    /// # Errors
    /// The config has problems or the server cannot bind.
    pub async fn spawn(config: &str) -> anyhow::Result<Self> {
        let loaded = LoadedConfig::from_str("<test>", config)?;
        let registry = Registry::load(&loaded).await?;
        Self::with_registry(&loaded, registry).await
    }

    /// Serve the config file at `path`, reloading it on change (as `serve --config`).
    ///
    /// # Errors
    /// The config has problems or the server cannot bind.
    pub async fn spawn_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let loaded = LoadedConfig::from_file(path)?;
        let registry = Registry::load(&loaded).await?;
        let server = Self::with_registry(&loaded, registry).await?;
        let _watcher = toolgate_server::reload::spawn_watcher(
            server.state.clone(),
            path.to_path_buf(),
            loaded.config.server.clone(),
        );
        Ok(server)
    }

    /// Serve `config` on `addr`: for a test whose config must name the server's own
    /// URL (an OAuth resource), with a port taken from [`free_port`].
    ///
    /// # Errors
    /// The config has problems or the server cannot bind.
    pub async fn spawn_at(config: &str, addr: SocketAddr) -> anyhow::Result<Self> {
        let loaded = LoadedConfig::from_str("<test>", config)?;
        let registry = Registry::load(&loaded).await?;
        Self::serve(&loaded, registry, addr).await
    }

    /// Serve a registry built by the test (for native tools).
    ///
    /// # Errors
    /// The server cannot bind.
    pub async fn with_registry(loaded: &LoadedConfig, registry: Registry) -> anyhow::Result<Self> {
        Self::serve(loaded, registry, "127.0.0.1:0".parse()?).await
    }

    async fn serve(
        loaded: &LoadedConfig,
        registry: Registry,
        addr: SocketAddr,
    ) -> anyhow::Result<Self> {
        let key = SecretString::from(OPERATOR_KEY.to_owned());
        let app = Application::build(loaded, registry, addr, Some(&key)).await?;
        let addr = app.local_addr()?;
        let admin_addr = app.admin_addr();
        let state = app.state().clone();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let handle = tokio::spawn(app.run(async move { stop.cancelled().await }));
        Ok(Self {
            addr,
            admin_addr,
            state,
            client: reqwest::Client::new(),
            shutdown,
            handle: Some(handle),
        })
    }

    /// The URL of `path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A GET with the operator key.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(self.url(path))
            .header("X-Tool-API-Key", OPERATOR_KEY)
    }

    /// A POST with the operator key.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(path))
            .header("X-Tool-API-Key", OPERATOR_KEY)
    }

    /// Call `tool` with `arguments` using the operator key.
    pub fn call(&self, tool: &str, arguments: &serde_json::Value) -> reqwest::RequestBuilder {
        self.post(&format!("/api/v1/tools/{tool}")).json(arguments)
    }

    /// Shut down and wait for the drain to end.
    ///
    /// # Errors
    /// The server failed.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await??;
        }
        Ok(())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
