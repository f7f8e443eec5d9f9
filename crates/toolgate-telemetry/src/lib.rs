//! # toolgate-telemetry: logs (and later traces and metrics)
//!
//! - [`json`]: the JSON-lines log layer: one object per line on stderr with the
//!   contract's field names (`ts`, `level`, `msg`, then the fields of the event and of
//!   its spans, such as `trace_id`, `tool`, `key`, `duration_ms`, `outcome`).
//! - [`otel`]: OpenTelemetry traces over OTLP from the `OTEL_*` variables, and W3C
//!   trace-context helpers.
//! - [`metrics`]: Prometheus metrics (names, recorder, rendering for `/metrics`).
//! - [`init`]: installs the global subscriber for a [`LogFormat`] and a filter, and
//!   returns a [`Guard`] to hold until exit.

pub mod clock;
pub mod json;
pub mod metrics;
pub mod otel;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One JSON object per line (the default, for log pipelines).
    #[default]
    Json,
    /// Human-readable lines.
    Pretty,
}

/// Held until exit; flushes telemetry when dropped.
#[derive(Debug)]
#[must_use = "telemetry is flushed when the guard drops"]
pub struct Guard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    /// Dropped after the provider, so lines logged while flushing traces are written.
    _lines: Option<json::LineWriter>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("toolgate: flushing traces failed: {e}");
        }
    }
}

/// The filter was not understood.
#[derive(Debug, thiserror::Error)]
#[error("invalid log filter {filter:?}: {reason}")]
pub struct FilterError {
    filter: String,
    reason: String,
}

/// Install the global subscriber. `filter` uses `tracing` directive syntax
/// (`info`, `toolgate_server=debug,info`).
///
/// # Errors
/// The filter is invalid. Installing twice is not an error (the first one stays).
pub fn init(format: LogFormat, filter: &str) -> Result<Guard, FilterError> {
    let filter_layer = EnvFilter::try_new(filter).map_err(|e| FilterError {
        filter: filter.to_owned(),
        reason: e.to_string(),
    })?;
    let provider = if otel::enabled_by_env() {
        match otel::provider() {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("toolgate: traces are off: {e}");
                None
            }
        }
    } else {
        None
    };
    let otel_layer = provider.as_ref().map(|p| {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::Layer as _;
        // Thread attributes and busy/idle timings are not semantic conventions and
        // cost on every span; code locations are kept (they point at the source).
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("toolgate"))
            .with_threads(false)
            .with_tracked_inactivity(false)
            // Log events reach traces as span events only from `warn` up: every
            // request's info lines are in the logs already, under the same trace id,
            // and turning each into a span event costs as much as the span itself.
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                meta.is_span() || *meta.level() <= tracing::Level::WARN
            }))
    });
    let registry = tracing_subscriber::registry()
        .with(filter_layer)
        .with(otel_layer);
    let lines = match format {
        LogFormat::Json => {
            let (layer, writer) = json::JsonLines::stderr();
            registry.with(layer).try_init().is_ok().then_some(writer)
        }
        LogFormat::Pretty => {
            let _ = registry
                .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
                .try_init();
            None
        }
    };
    Ok(Guard {
        provider,
        _lines: lines,
    })
}
