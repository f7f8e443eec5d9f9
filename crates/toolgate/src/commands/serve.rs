//! `toolgate serve`.

use std::net::SocketAddr;

use secrecy::{ExposeSecret, SecretString};
use toolgate_server::Application;

use super::{EXIT_FAILURE, EXIT_USAGE, load};
use crate::cli::ConfigArg;
use crate::commands::keys::generate_key;

/// The shortest operator key `serve` accepts: it holds every scope, so it must not be
/// guessable.
const MIN_OPERATOR_KEY_CHARS: usize = 32;

pub(super) async fn serve(config: &ConfigArg, listen: Option<SocketAddr>) -> i32 {
    let (loaded, registry) = match load(config).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    let listen = match listen {
        Some(addr) => addr,
        None => match loaded.config.server.listen.get_ref().parse() {
            Ok(addr) => addr,
            Err(_) => return EXIT_USAGE,
        },
    };
    if let Some(key) = &loaded.operator_key {
        let length = key.expose_secret().chars().count();
        if length < MIN_OPERATOR_KEY_CHARS {
            eprintln!(
                "toolgate: TOOLGATE_API_KEY is {length} characters long; an operator key needs at least {MIN_OPERATOR_KEY_CHARS} (`toolgate keys new` makes one)"
            );
            return EXIT_USAGE;
        }
    }
    // With no key at all nobody could call anything: make one for this run and show
    // it once.
    let generated = (loaded.operator_key.is_none() && loaded.config.keys.is_empty()).then(|| {
        let key = generate_key();
        println!(
            "toolgate: no API key is configured; this run accepts the generated operator key:"
        );
        println!("  {key}");
        println!("  (set TOOLGATE_API_KEY or add [[keys]] to the config to choose your own)");
        SecretString::from(key)
    });
    let app = match Application::build(&loaded, registry, listen, generated.as_ref()).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, %listen, "cannot listen");
            eprintln!("toolgate: cannot listen on {listen}: {e}");
            return EXIT_FAILURE;
        }
    };
    // Reload on SIGHUP and on file changes; the demo configuration has no file.
    let _watcher = match &config.config {
        Some(path) => Some(toolgate_server::reload::spawn_watcher(
            app.state().clone(),
            path.clone(),
            loaded.config.server.clone(),
        )),
        None => {
            toolgate_server::reload::ignore_sighup(app.state());
            None
        }
    };
    let addr = app
        .local_addr()
        .map_or_else(|_| listen.to_string(), |a| a.to_string());
    tracing::info!(
        addr = %addr,
        tools = app.state().registry.tools().count(),
        config = loaded.file(),
        "listening"
    );
    match app.run(shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            0
        }
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            EXIT_FAILURE
        }
    }
}

/// `toolgate stdio`: MCP on stdin and stdout until the client closes stdin.
pub(super) async fn stdio(config: &ConfigArg) -> i32 {
    let (loaded, registry) = match load(config).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    let key = toolgate_config::env::stdio_key();
    match Application::serve_stdio(&loaded, registry, key.as_ref(), config.config.clone()).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "stdio failed");
            eprintln!("toolgate: {e}");
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                EXIT_USAGE
            } else {
                EXIT_FAILURE
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!(signal = "SIGINT", "shutting down"),
        () = term => tracing::info!(signal = "SIGTERM", "shutting down"),
    }
}
