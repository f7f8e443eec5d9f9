//! The hardened listener: our own accept loop over hyper's HTTP/1 connection
//! builder, because `axum::serve` sets no timer (so hyper's header-read timeout is
//! off), caps no connections, and bounds header bytes only at hyper's ~400 KB.
//!
//! - **Connection cap**: a connection needs a permit before it is accepted. Past the
//!   cap, new connections wait in the kernel's backlog (they are not accepted and so
//!   cost no descriptor); the accept loop never spins. The default leaves a reserve
//!   of the process's descriptors for the admin listener, databases, upstreams and
//!   the audit log ([`default_max_connections`]).
//! - **Header-read timeout**: hyper's timer starts when a connection is ready for a
//!   request (just opened, or its previous response sent) and fires unless the
//!   request's headers are complete in time. It bounds slowloris headers and idle
//!   kept-alive connections alike.
//! - **Header bytes**: past `max_header_bytes`, hyper answers `431` and closes.
//! - **Body deadline**: [`crate::body_deadline`] cuts off a trickled body with `408`.
//! - **Accept errors** (out of descriptors): logged at most once a second, and the loop
//!   sleeps briefly instead of retrying at once.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

/// How the listener treats connections (from `[server]`).
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time for a request's headers, from the moment the connection is ready for one.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers) in bytes.
    pub max_header_bytes: usize,
}

/// Descriptors kept back from the connection cap: for the admin listener, database
/// pools, upstream connections, the audit log, config watches and log files.
#[must_use]
pub fn descriptor_reserve(limit: u64) -> u64 {
    (limit / 8).clamp(64, 4096)
}

/// The default connection cap: the process's descriptor limit (raised to its hard
/// limit first, as servers commonly do) less [`descriptor_reserve`], at most 1,000,000
/// and at least 16.
#[must_use]
pub fn default_max_connections() -> usize {
    let limit = raise_descriptor_limit();
    let cap = limit
        .saturating_sub(descriptor_reserve(limit))
        .clamp(16, 1_000_000);
    usize::try_from(cap).unwrap_or(1_000_000)
}

/// Raise the soft descriptor limit to the hard one and return the soft limit in force.
#[cfg(unix)]
fn raise_descriptor_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (lim.current, lim.maximum)
        && cur < max
    {
        lim.current = Some(max);
        if setrlimit(Resource::Nofile, lim).is_err() {
            lim.current = Some(cur);
        }
    }
    lim.current.unwrap_or(1_048_576)
}

#[cfg(not(unix))]
fn raise_descriptor_limit() -> u64 {
    8192
}

/// Serve `router` on `listener` until `stop` fires, then let open connections finish
/// their current request (hyper's graceful shutdown) and return when all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ListenerLimits,
    stop: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let tracker = TaskTracker::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(8192).max(64 * 1024));
    let builder = Arc::new(builder);
    let open = toolgate_telemetry::metrics::connections_open();
    let mut last_error_log: Option<tokio::time::Instant> = None;
    loop {
        let permit = tokio::select! {
            () = stop.cancelled() => break,
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    drop(permit);
                    on_accept_error(&e, &mut last_error_log).await;
                    continue;
                }
            },
        };
        if let Err(e) = tcp.set_nodelay(true) {
            // Responses go out as soon as they are written; without it the last small
            // write of a streamed response waits for the client's delayed ACK.
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let router = router.clone();
        let builder = Arc::clone(&builder);
        let stop = stop.clone();
        let open = open.clone();
        tracker.spawn(async move {
            open.increment(1.0);
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let router = router.clone();
                async move {
                    let resp = router.oneshot(req.map(axum::body::Body::new)).await;
                    Ok::<_, Infallible>(match resp {
                        Ok(r) => r,
                        Err(never) => match never {},
                    })
                }
            });
            let conn = builder
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            open.decrement(1.0);
            drop(permit);
        });
    }
    tracker.close();
    tracker.wait().await;
}

/// Out of descriptors (or another accept failure): log at most once a second and
/// back off briefly, so the loop neither spins nor floods the log.
async fn on_accept_error(e: &std::io::Error, last: &mut Option<tokio::time::Instant>) {
    let now = tokio::time::Instant::now();
    if last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
        tracing::warn!(error = %e, "accept failed; backing off");
        *last = Some(now);
    }
    metrics::counter!(toolgate_telemetry::metrics::ACCEPT_ERRORS).increment(1);
    let pause = if matches!(e.raw_os_error(), Some(23 | 24)) {
        // ENFILE, EMFILE: descriptors come back only as connections close.
        Duration::from_millis(100)
    } else {
        Duration::from_millis(5)
    };
    tokio::time::sleep(pause).await;
}
