//! WebSocket: `GET /api/v1/ws`, many calls in flight over one socket.
//!
//! The upgrade is refused with problem+json before any WebSocket exists: no key
//! (401), an unknown key (403), or a request that is not an upgrade (426). A key
//! comes from `X-Tool-API-Key` / `Authorization: Bearer`, or, for browsers (which
//! cannot set headers on a WebSocket), from the subprotocol offer
//! `Sec-WebSocket-Protocol: toolgate.v1, toolgate.key.<KEY>`. The server then selects
//! `toolgate.v1`, never the key, so the key is not echoed.
//!
//! - `message`: the client's and the server's messages.
//! - `conn`: one socket's loop: calls, cancels, backpressure, keep-alive, drain.

mod conn;
mod message;

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use toolgate_core::ErrorKind;
use tracing::Instrument;

use crate::auth::{Authenticated, Principal, presented_key};
use crate::quota::QuotaKind;
use crate::{ApiError, AppState};

/// The subprotocol the server speaks, selected when the client offers it.
pub const PROTOCOL: &str = "toolgate.v1";

/// Prefix of a subprotocol offer that carries a key.
pub const KEY_PROTOCOL_PREFIX: &str = "toolgate.key.";

/// Initial read buffer per socket. tungstenite zero-fills its whole read buffer, so
/// its 128 KiB default would make every idle socket cost 128 KiB of memory; larger
/// messages still get a buffer of their exact size.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Most bytes one socket's writer may buffer for a client that does not read. A
/// result larger than this is answered with an error instead (it could never be
/// buffered); pongs the client asks for are dropped while the buffer is full.
pub const MAX_WRITE_BUFFER_BYTES: usize = 16 * 1024 * 1024;

/// Bytes the writer gathers before it flushes.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// `GET /api/v1/ws`.
pub async fn upgrade(
    State(state): State<AppState>,
    authenticated: Option<Extension<Authenticated>>,
    refused: Option<Extension<crate::gate::TokenRefused>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    if let Some(Extension(refused)) = refused {
        return Err(crate::auth::token_refused(&refused));
    }
    let caller = authenticate(&state, authenticated.map(|e| e.0.0), &headers)?;
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return Ok(not_an_upgrade(&rejection)),
    };
    // Held for the socket's life: the key's share of open sockets.
    let slot = caller.take_slot(QuotaKind::WebSockets)?;
    let max_message = state.limits.ws_max_message_bytes.max(1);
    let trace_id = crate::trace::current().unwrap_or_default();
    let span = tracing::Span::current();
    let response = ws
        .protocols([PROTOCOL])
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "websocket upgrade failed"))
        .on_upgrade(move |socket| {
            // The socket outlives the request: keep its trace id and span for the
            // calls' logs and problem documents.
            crate::trace::TRACE_ID
                .scope(trace_id, conn::serve(socket, state, caller, slot))
                .instrument(span)
        });
    Ok(response)
}

/// The caller: the one the edge found, or else from the headers or the subprotocol
/// offer.
fn authenticate(
    state: &AppState,
    found: Option<Arc<Principal>>,
    headers: &HeaderMap,
) -> Result<Arc<Principal>, ApiError> {
    let offered = offered_protocols(headers);
    let from_offer = offered
        .iter()
        .find_map(|p| p.strip_prefix(KEY_PROTOCOL_PREFIX))
        .filter(|k| !k.is_empty());
    let key = presented_key(headers).or(from_offer).ok_or_else(|| {
        crate::gate::audit_refusal(state, "ws", "unauthorized");
        ApiError::new(
            ErrorKind::Unauthorized,
            "send an API key as `X-Tool-API-Key: KEY`, `Authorization: Bearer KEY`, or \
             the subprotocol offer `toolgate.v1, toolgate.key.KEY`",
        )
    })?;
    let principal = match found {
        Some(p) => p,
        None => state
            .keys
            .verify(key)
            .ok_or_else(|| ApiError::new(ErrorKind::Forbidden, "the API key is not valid"))?,
    };
    if presented_key(headers).is_none() && !offered.contains(&PROTOCOL) {
        // Browsers fail a handshake whose reply selects none of the offered
        // subprotocols; say why here rather than let that happen.
        return Err(ApiError::invalid(
            "",
            "a key in the subprotocol offer needs `toolgate.v1` offered with it",
        ));
    }
    tracing::Span::current().record("key", principal.name.as_str());
    Ok(principal)
}

/// Every subprotocol offered, across repeated headers.
fn offered_protocols(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// `426 Upgrade Required` for a request to the socket route that is not a
/// WebSocket handshake.
fn not_an_upgrade(rejection: &WebSocketUpgradeRejection) -> Response {
    let err = ApiError::invalid(
        "",
        format!(
            "this route speaks WebSocket only: {}",
            rejection.body_text()
        ),
    )
    .with_status(StatusCode::UPGRADE_REQUIRED);
    ([(header::UPGRADE, "websocket")], err).into_response()
}
