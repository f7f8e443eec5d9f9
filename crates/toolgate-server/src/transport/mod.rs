//! Transports: each translates a protocol into calls of [`crate::exec::run_call`] and
//! the results back. No business logic lives here.
//!
//! - [`rest`]: list and describe tools, call one tool.
//! - [`batch`]: `POST /api/v1/tools/execute`, task-group semantics.
//! - [`sse`]: Server-Sent Events streams of one call or of a batch.
//! - [`ws`]: `GET /api/v1/ws`, many calls over one WebSocket.
//! - [`mcp`]: `/mcp`, the Model Context Protocol (Streamable HTTP).

pub mod batch;
pub mod mcp;
pub mod rest;
pub mod sse;
pub mod ws;

use std::time::Duration;

use axum::http::HeaderMap;

use crate::ApiError;

/// Header with which a client lowers a call's deadline.
pub const TIMEOUT_HEADER: &str = "x-request-timeout-ms";

/// The deadline a client asked for with `X-Request-Timeout-Ms`, if any.
///
/// # Errors
/// `invalid_arguments` when the header is not a positive integer.
pub fn requested_timeout(headers: &HeaderMap) -> Result<Option<Duration>, ApiError> {
    let Some(value) = headers.get(TIMEOUT_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(|ms| Some(Duration::from_millis(ms)))
        .ok_or_else(|| {
            ApiError::invalid(
                "",
                "the X-Request-Timeout-Ms header must be a positive integer of milliseconds",
            )
        })
}

/// Count an output cut or refused at a byte cap (`what`: a fixed label).
pub fn count_capped(what: &'static str) {
    metrics::counter!(toolgate_telemetry::metrics::OUTPUT_CAPPED, "what" => what).increment(1);
}
