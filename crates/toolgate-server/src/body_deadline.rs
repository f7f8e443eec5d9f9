//! The request-body deadline: a body must arrive whole within `body_read_timeout_ms`
//! of its headers, or the request ends with `408 request_timeout`, releasing its
//! load-shedding and quota slots. A client that trickles its body (one byte every few
//! seconds) holds a slot for at most that long.
//!
//! Hand-written because tower-http's `RequestBodyTimeout` bounds the gap between two
//! frames, which a trickle never exceeds; this bounds the whole body.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use toolgate_core::ErrorKind;

/// The error a body yields once its deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within its deadline")]
pub struct BodyDeadlineExceeded;

/// A body that fails once `deadline` passes before its last frame.
struct DeadlineBody {
    inner: Body,
    deadline: Instant,
    /// Armed the first time the body is not ready: bodies that arrive with their
    /// headers (almost all) never touch the timer.
    sleep: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.expired.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(axum::Error::new(BodyDeadlineExceeded))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: give the request's body a deadline; a request whose body ran out of
/// time is answered `408 request_timeout`, whatever its handler made of the error.
pub async fn enforce(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    // A request that declares no body (most GETs) needs no deadline.
    if http_body::Body::is_end_stream(req.body()) {
        return next.run(req).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + limit;
    let req = req.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            deadline,
            sleep: None,
            expired: Arc::clone(&expired),
        })
    });
    let response = next.run(req).await;
    if expired.load(Ordering::Relaxed) {
        metrics::counter!(toolgate_telemetry::metrics::BODY_TIMEOUTS).increment(1);
        tracing::info!(
            limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            "request body not received in time"
        );
        let mut resp = crate::ApiError::new(
            ErrorKind::RequestTimeout,
            format!(
                "the request body did not arrive within {} ms",
                limit.as_millis()
            ),
        )
        .into_response();
        resp.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        return resp;
    }
    response
}
