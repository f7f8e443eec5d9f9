//! A JSON-lines log layer with the contract's field names.
//!
//! Hand-written because tracing-subscriber's JSON formatter fixes its own field names
//! (`timestamp`, `fields.message`, nested `spans`) while our contract asks for flat
//! `ts`, `level`, `msg` plus span fields at the top level.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

type Sink = Arc<Mutex<dyn Write + Send>>;

/// The layer. Writes whole lines, so concurrent events never interleave.
pub struct JsonLines {
    sink: Sink,
}

impl JsonLines {
    /// Lines to stderr.
    #[must_use]
    pub fn stderr() -> Self {
        Self {
            sink: Arc::new(Mutex::new(std::io::stderr())),
        }
    }

    /// Lines to any writer (tests capture them this way).
    pub fn to_writer(w: impl Write + Send + 'static) -> Self {
        Self {
            sink: Arc::new(Mutex::new(w)),
        }
    }
}

/// A span's fields, kept in its extensions.
struct SpanFields(Map<String, Value>);

struct Collect<'a>(&'a mut Map<String, Value>);

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(name(field), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(name(field), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(name(field), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(name(field), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(name(field), Value::from(value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.0.insert(name(field), Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(name(field), Value::from(format!("{value:?}")));
    }
}

fn name(field: &Field) -> String {
    match field.name() {
        "message" => "msg".to_owned(),
        other => other.to_owned(),
    }
}

impl<S> Layer<S> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        attrs.record(&mut Collect(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut Collect(&mut fields.0));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = Map::new();
        let ts = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        line.insert("ts".into(), Value::from(ts));
        line.insert(
            "level".into(),
            Value::from(event.metadata().level().as_str().to_ascii_lowercase()),
        );
        line.insert("msg".into(), Value::from(""));
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    line.extend(fields.0.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        event.record(&mut Collect(&mut line));
        line.insert("target".into(), Value::from(event.metadata().target()));
        let mut bytes = Value::Object(line).to_string().into_bytes();
        bytes.push(b'\n');
        if let Ok(mut sink) = self.sink.lock() {
            // A log line that cannot be written has nowhere else to go.
            let _ = sink.write_all(&bytes);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_carry_contract_fields_and_span_fields() {
        let buf = Buf::default();
        let subscriber = tracing_subscriber::registry().with(JsonLines::to_writer(buf.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span =
                tracing::info_span!("request", trace_id = "abc", key = tracing::field::Empty);
            span.record("key", "ci");
            span.in_scope(|| {
                tracing::info!(
                    tool = "echo",
                    duration_ms = 3u64,
                    outcome = "ok",
                    "tool call"
                )
            });
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let v: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["msg"], "tool call");
        assert_eq!(v["level"], "info");
        assert_eq!(v["trace_id"], "abc");
        assert_eq!(v["key"], "ci");
        assert_eq!(v["tool"], "echo");
        assert_eq!(v["duration_ms"], 3);
        assert!(v["ts"].as_str().unwrap().contains('T'));
    }
}
