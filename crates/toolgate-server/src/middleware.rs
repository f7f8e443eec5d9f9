//! The middleware stack, built in one function, outermost first.

use std::any::Any;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

use crate::AppState;

/// Response header naming the request's trace id.
pub const TRACE_ID_HEADER: &str = "x-trace-id";

/// Wrap `router` in the stack. Read top to bottom as a request travels:
///
/// 1. panics become a logged 500 problem, never a dropped connection;
/// 2. the request gets a trace id, a span and one log line when it ends;
/// 3. the edge ([`crate::gate`]): drain, the key looked up once, failed-auth
///    throttling, the global in-flight budget with its operator reserve and the
///    key's own share, before any other work (the body is never read); health
///    probes are exempt;
/// 4. CORS answers preflights;
/// 5. a body that does not arrive whole in time ends the request with 408;
/// 6. bodies over the limit are refused (413) as they are read.
pub fn stack(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let mut router = router
        .layer(DefaultBodyLimit::max(state.limits.body_limit_bytes))
        .layer(from_fn_with_state(
            state.limits.body_read_timeout,
            crate::body_deadline::enforce,
        ));
    if let Some(cors) = cors(&state.limits.cors_allowed_origins) {
        router = router.layer(cors);
    }
    router
        .layer(from_fn_with_state(state.clone(), crate::gate::gate))
        .layer(from_fn(request_span))
        .layer(CatchPanicLayer::custom(on_panic))
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static("x-tool-api-key"),
                HeaderName::from_static("x-request-timeout-ms"),
                HeaderName::from_static("traceparent"),
            ])
            .expose_headers([
                header::RETRY_AFTER,
                HeaderName::from_static(TRACE_ID_HEADER),
            ]),
    )
}

/// Trace id, span and the request's log line. Keys never enter the span: the auth
/// extractor records the key's name into the `key` field.
async fn request_span(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let template = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    // Field names follow OpenTelemetry's HTTP semantic conventions.
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {template}"),
        otel.kind = "server",
        http.request.method = method.as_str(),
        http.route = template,
        url.path = req.uri().path(),
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        key = tracing::field::Empty,
    );
    let trace_id = adopt_trace(&span, req.headers());
    span.record("trace_id", trace_id.as_str());
    let start = Instant::now();
    let header_value = HeaderValue::from_str(&trace_id).ok();
    let mut response = crate::trace::TRACE_ID
        .scope(trace_id, next.run(req))
        .instrument(span.clone())
        .await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    let duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    span.in_scope(|| tracing::info!(status, duration_ms, "request"));
    record_request(&method, template, response.status(), start.elapsed());
    if let Some(v) = header_value {
        response.headers_mut().insert(TRACE_ID_HEADER, v);
    }
    response
}

/// Make the caller's `traceparent` the parent of `span` and return the trace id:
/// with tracing on, the span's own (the caller's, when it sent one); without, the
/// caller's or a fresh one.
fn adopt_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    toolgate_telemetry::otel::set_remote_parent(span, header("traceparent"), header("tracestate"));
    toolgate_telemetry::otel::trace_id(span).unwrap_or_else(|| crate::trace::from_headers(headers))
}

thread_local! {
    static REQUEST_METRICS: std::cell::RefCell<
        toolgate_telemetry::metrics::HandleCache<(metrics::Counter, metrics::Histogram)>,
    > = std::cell::RefCell::default();
}

fn record_request(
    method: &Method,
    template: &str,
    status: axum::http::StatusCode,
    elapsed: std::time::Duration,
) {
    use toolgate_telemetry::metrics as m;
    // Methods outside the standard ones are one label value, not one each.
    let method = match *method {
        Method::GET
        | Method::POST
        | Method::PUT
        | Method::DELETE
        | Method::HEAD
        | Method::OPTIONS
        | Method::PATCH => method.as_str(),
        _ => "_other",
    };
    let status_label = status.as_str();
    REQUEST_METRICS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let (requests, duration) = cache.get(&[method, template, status_label], || {
            // `{name}` becomes `:name`: braces are legal in label values, but common
            // exposition parsers stumble on them.
            let route = template.replace('{', ":").replace('}', "");
            (
                metrics::counter!(
                    m::HTTP_REQUESTS,
                    &[
                        ("method", method.to_owned()),
                        ("route", route.clone()),
                        ("status", status_label.to_owned()),
                    ]
                ),
                metrics::histogram!(m::HTTP_DURATION, "route" => route),
            )
        });
        requests.increment(1);
        duration.record(elapsed.as_secs_f64());
    });
}

fn on_panic(panic: Box<dyn Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown");
    tracing::error!(panic = what, "a handler panicked");
    crate::error::internal().into_response()
}
