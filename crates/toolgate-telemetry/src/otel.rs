//! OpenTelemetry traces over OTLP, configured by the standard `OTEL_*` variables.
//!
//! Tracing is on when `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, or `OTEL_TRACES_EXPORTER` is
//! (and `OTEL_SDK_DISABLED` is not `true`). `OTEL_TRACES_EXPORTER=none` keeps the SDK
//! on (spans are created and sampled, trace ids are real) with nothing exported; any
//! other value means OTLP, the only exporter built in. The exporter itself reads the protocol (`http/protobuf` by default, or
//! `http/json`), headers and timeout from the environment, and `OTEL_SERVICE_NAME`
//! names the service (default `toolgate`). Spans go out through a batch processor on
//! its own thread; the [`crate::Guard`] flushes it at exit.
//!
//! The helpers here connect `tracing` spans with W3C trace context: the inbound
//! `traceparent` becomes the parent of the request span, and the trace id of a span
//! is what every log line and problem body names.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Whether the environment asks for trace export.
#[must_use]
pub fn enabled_by_env() -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled
        && (set("OTEL_EXPORTER_OTLP_ENDPOINT")
            || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            || set("OTEL_TRACES_EXPORTER"))
}

/// `OTEL_TRACES_EXPORTER=none`: trace without exporting.
fn exporter_none() -> bool {
    std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.trim().eq_ignore_ascii_case("none"))
}

/// Build the tracer provider from the environment.
///
/// # Errors
/// The exporter could not be built (a malformed endpoint, say).
pub fn provider() -> Result<SdkTracerProvider, String> {
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "toolgate".to_owned());
    let resource = Resource::builder()
        .with_service_name(service)
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    if exporter_none() {
        return Ok(builder.build());
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    Ok(builder.with_batch_exporter(exporter).build())
}

/// A W3C trace-context carrier over plain strings.
struct Carrier {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent.as_deref(),
            "tracestate" => self.tracestate.as_deref(),
            _ => None,
        }
    }
    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        match key {
            "traceparent" => self.traceparent = Some(value),
            "tracestate" => self.tracestate = Some(value),
            _ => {}
        }
    }
}

/// Make the remote span of `traceparent` (and `tracestate`) the parent of `span`.
/// An invalid or absent header leaves `span` a root.
pub fn set_remote_parent(
    span: &tracing::Span,
    traceparent: Option<&str>,
    tracestate: Option<&str>,
) {
    let Some(tp) = traceparent else { return };
    let carrier = Carrier {
        traceparent: Some(tp.to_owned()),
        tracestate: tracestate.map(str::to_owned),
    };
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The OpenTelemetry trace id of `span` (32 hex digits), when tracing is on.
#[must_use]
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// The `traceparent` to send to an upstream from within `span`, when tracing is on.
#[must_use]
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let cx: Context = span.context();
    let mut carrier = Carrier {
        traceparent: None,
        tracestate: None,
    };
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.traceparent
}

/// The `traceparent` for an upstream call: `span`'s when tracing is on, otherwise one
/// built from the request's `trace_id` (32 hex digits) with a fresh span id.
#[must_use]
pub fn upstream_traceparent(span: &tracing::Span, trace_id: Option<&str>) -> Option<String> {
    traceparent(span).or_else(|| {
        let trace = trace_id.filter(|t| t.len() == 32)?;
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).ok()?;
        Some(format!("00-{trace}-{}-01", hex::encode(id)))
    })
}
