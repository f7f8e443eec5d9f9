//! A JSON-lines log layer with the contract's field names.
//!
//! Hand-written because tracing-subscriber's JSON formatter fixes its own field names
//! (`timestamp`, `fields.message`, nested `spans`) while our contract asks for flat
//! `ts`, `level`, `msg` plus span fields at the top level.
//!
//! It sits on the hot path (a line per request and per tool call), so it renders
//! straight into a reused per-thread buffer: span fields are kept already encoded as
//! JSON, an event's fields override its spans' fields of the same name (the innermost
//! span wins over outer ones), and the timestamp's date and time of day are formatted
//! once a second. Lines for stderr go through [`LineWriter`]: a writer thread that
//! takes whatever has accumulated and writes it with one syscall, so under load many
//! lines share a write and the request threads never wait on the terminal or pipe.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Where finished lines go.
enum Sink {
    /// Written at once, under a lock (tests capture lines this way).
    Direct(Mutex<Box<dyn Write + Send>>),
    /// Handed to the writer thread.
    Background(Arc<Shared>),
}

/// The layer. Writes whole lines, so concurrent events never interleave.
pub struct JsonLines {
    sink: Sink,
}

impl JsonLines {
    /// Lines to stderr through a writer thread; flush by dropping the [`LineWriter`].
    #[must_use]
    pub fn stderr() -> (Self, LineWriter) {
        let writer = LineWriter::spawn(Box::new(std::io::stderr()));
        let layer = Self {
            sink: Sink::Background(Arc::clone(&writer.shared)),
        };
        (layer, writer)
    }

    /// Lines to any writer, written synchronously (tests capture them this way).
    pub fn to_writer(w: impl Write + Send + 'static) -> Self {
        Self {
            sink: Sink::Direct(Mutex::new(Box::new(w))),
        }
    }
}

/// Lines waiting for the writer thread.
struct Pending {
    bytes: Vec<u8>,
    closed: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    /// The writer thread waits here for lines.
    ready: Condvar,
    /// Producers wait here while the backlog is over [`MAX_BACKLOG`].
    drained: Condvar,
}

/// Past this many bytes waiting, producers wait for the writer: logs slow the server
/// down rather than grow without bound or get dropped.
const MAX_BACKLOG: usize = 8 << 20;

/// How long the writer lets lines gather after the first one wakes it.
const GATHER: Duration = Duration::from_millis(2);

/// The writer thread for [`JsonLines::stderr`]. Dropping it writes out every line
/// logged so far and stops the thread.
pub struct LineWriter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LineWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineWriter").finish_non_exhaustive()
    }
}

impl LineWriter {
    fn spawn(mut out: Box<dyn Write + Send>) -> Self {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                bytes: Vec::with_capacity(64 << 10),
                closed: false,
            }),
            ready: Condvar::new(),
            drained: Condvar::new(),
        });
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("toolgate-log".into())
            .spawn(move || {
                let mut spare = Vec::with_capacity(64 << 10);
                loop {
                    let closed = {
                        let mut p = theirs
                            .pending
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner);
                        while p.bytes.is_empty() && !p.closed {
                            p = theirs.ready.wait(p).unwrap_or_else(PoisonError::into_inner);
                        }
                        // Let the lines that follow the first gather, so that a busy
                        // server wakes this thread and writes a few hundred times a
                        // second, not once per line.
                        if !p.closed {
                            drop(p);
                            std::thread::sleep(GATHER);
                            p = theirs
                                .pending
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner);
                        }
                        std::mem::swap(&mut p.bytes, &mut spare);
                        p.closed
                    };
                    theirs.drained.notify_all();
                    if !spare.is_empty() {
                        // A log line that cannot be written has nowhere else to go.
                        let _ = out.write_all(&spare);
                        let _ = out.flush();
                        spare.clear();
                    }
                    if closed {
                        let p = theirs
                            .pending
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner);
                        if p.bytes.is_empty() {
                            return;
                        }
                    }
                }
            });
        match thread {
            Ok(handle) => Self {
                shared,
                thread: Some(handle),
            },
            // No thread to be had: lines are written on the caller's thread.
            Err(_) => {
                shared
                    .pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .closed = true;
                Self {
                    shared,
                    thread: None,
                }
            }
        }
    }
}

impl Shared {
    fn push(&self, line: &[u8]) {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if p.closed {
            drop(p);
            let _ = std::io::stderr().write_all(line);
            return;
        }
        while p.bytes.len() > MAX_BACKLOG && !p.closed {
            p = self.drained.wait(p).unwrap_or_else(PoisonError::into_inner);
        }
        let was_empty = p.bytes.is_empty();
        p.bytes.extend_from_slice(line);
        drop(p);
        if was_empty {
            self.ready.notify_one();
        }
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.shared.ready.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Fields encoded as JSON values, one buffer for all of them: a span keeps one in
/// its extensions, and each thread reuses one for the event it is writing.
#[derive(Default)]
struct Fields {
    /// The values, back to back (a replaced value's bytes stay, unreferenced).
    buf: String,
    /// Each field's name and where its value lies in `buf`.
    index: Vec<(&'static str, usize, usize)>,
}

impl Fields {
    fn clear(&mut self) {
        self.buf.clear();
        self.index.clear();
    }

    fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.index
            .iter()
            .map(|&(k, a, b)| (k, self.buf.get(a..b).unwrap_or("null")))
    }

    /// Encode one value with `write` and file it under `field` (replacing an earlier
    /// value of the same name).
    fn put(&mut self, field: &Field, write: impl FnOnce(&mut String)) {
        let name = key(field);
        let start = self.buf.len();
        write(&mut self.buf);
        let end = self.buf.len();
        if let Some(slot) = self.index.iter_mut().find(|(k, _, _)| *k == name) {
            *slot = (name, start, end);
        } else {
            self.index.push((name, start, end));
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, |b| push_json_str(b, value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, |b| {
            let _ = write!(b, "{value}");
        });
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, |b| {
            let _ = write!(b, "{value}");
        });
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, |b| match serde_json::Number::from_f64(value) {
            Some(n) => {
                let _ = write!(b, "{n}");
            }
            None => b.push_str("null"),
        });
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, |b| b.push_str(if value { "true" } else { "false" }));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.put(field, |b| {
            let _ = write!(b, "\"{value}\"");
        });
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, |b| {
            b.push('"');
            let _ = write!(Escape(b), "{value:?}");
            b.push('"');
        });
    }
}

/// Escapes what is written through it into the inside of a JSON string, so that
/// `Debug` and `Display` values are encoded without an intermediate `String`.
struct Escape<'a>(&'a mut String);

impl std::fmt::Write for Escape<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

/// The contract calls the message `msg`.
fn key(field: &Field) -> &'static str {
    match field.name() {
        "message" => "msg",
        other => other,
    }
}

/// Append `s` as a JSON string literal.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    escape_into(out, s);
    out.push('"');
}

/// Bytes that a JSON string cannot hold as they are.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[0x7f] = true;
    t
};

/// Append `s` escaped for the inside of a JSON string literal.
fn escape_into(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    // Most values need no escaping at all: find out with one table lookup a byte.
    let Some(first) = bytes.iter().position(|&b| NEEDS_ESCAPE[usize::from(b)]) else {
        out.push_str(s);
        return;
    };
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(first) {
        if !NEEDS_ESCAPE[usize::from(b)] {
            continue;
        }
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f | 0x7f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Per-thread scratch space, reused line after line.
#[derive(Default)]
struct Scratch {
    line: String,
    fields: Fields,
    names: Vec<&'static str>,
    /// The date and time of day, formatted once a second.
    stamp: crate::clock::SecondStamp,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Scratch {
    fn timestamp(&mut self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let stamp = self.stamp.get(now.as_secs());
        let _ = write!(
            self.line,
            "{{\"ts\":\"{}.{:06}Z\"",
            stamp,
            now.subsec_micros()
        );
    }
}

fn push_field(line: &mut String, name: &str, json: &str) {
    line.push(',');
    push_json_str(line, name);
    line.push(':');
    line.push_str(json);
}

fn level(l: Level) -> &'static str {
    match l {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

impl<S> Layer<S> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields {
            buf: String::with_capacity(128),
            index: Vec::with_capacity(attrs.fields().len()),
        };
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // Taken out (not borrowed) so a log line emitted while writing this one,
        // by a Debug impl say, finds fresh scratch instead of a busy RefCell.
        let mut s = SCRATCH.with(|c| std::mem::take(&mut *c.borrow_mut()));
        s.line.clear();
        s.fields.clear();
        s.timestamp();
        s.line.push_str(",\"level\":\"");
        s.line.push_str(level(*event.metadata().level()));
        s.line.push('"');

        // The event's own fields first; `target` is always the event's target.
        event.record(&mut s.fields);
        let Scratch {
            line,
            fields,
            names,
            ..
        } = &mut s;
        names.clear();
        names.extend(["target", "ts", "level"]);
        if !fields.iter().any(|(k, _)| k == "msg") {
            line.push_str(",\"msg\":\"\"");
        }
        for (k, v) in fields.iter() {
            if !names.contains(&k) {
                push_field(line, k, v);
                names.push(k);
            }
        }
        // Then span fields, innermost first, each name only once.
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(span_fields) = span.extensions().get::<Fields>() {
                    for (k, v) in span_fields.iter() {
                        if !names.contains(&k) {
                            push_field(line, k, v);
                            names.push(k);
                        }
                    }
                }
            }
        }
        line.push_str(",\"target\":");
        push_json_str(line, event.metadata().target());
        line.push_str("}\n");

        match &self.sink {
            Sink::Direct(w) => {
                if let Ok(mut w) = w.lock() {
                    // A log line that cannot be written has nowhere else to go.
                    let _ = w.write_all(line.as_bytes());
                }
            }
            Sink::Background(shared) => {
                shared.push(line.as_bytes());
            }
        }
        SCRATCH.with(|c| *c.borrow_mut() = s);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::Value;
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

    fn capture(f: impl FnOnce()) -> Vec<Value> {
        let buf = Buf::default();
        let subscriber = tracing_subscriber::registry().with(JsonLines::to_writer(buf.clone()));
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn lines_carry_contract_fields_and_span_fields() {
        let lines = capture(|| {
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
        let v = &lines[0];
        assert_eq!(v["msg"], "tool call");
        assert_eq!(v["level"], "info");
        assert_eq!(v["trace_id"], "abc");
        assert_eq!(v["key"], "ci");
        assert_eq!(v["tool"], "echo");
        assert_eq!(v["duration_ms"], 3);
        let ts = v["ts"].as_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).is_ok(),
            "{ts}"
        );
    }

    #[test]
    fn names_are_unique_and_inner_wins() {
        let lines = capture(|| {
            let outer = tracing::info_span!("outer", tool = "outer", depth = 1u64);
            let _o = outer.enter();
            let inner = tracing::info_span!("inner", tool = "inner", ratio = 0.5f64);
            let _i = inner.enter();
            tracing::warn!(depth = 7u64, ok = true, target = "spoof");
            tracing::info!(tool = "event", "with \"quotes\"\n and \u{1} control");
        });
        let first = &lines[0];
        assert_eq!(first["tool"], "inner");
        assert_eq!(first["depth"], 7);
        assert_eq!(first["ratio"], 0.5);
        assert_eq!(first["ok"], true);
        assert_eq!(first["msg"], "");
        assert_eq!(first["level"], "warn");
        assert_ne!(first["target"], "spoof");
        assert_eq!(lines[1]["tool"], "event");
        assert_eq!(lines[1]["msg"], "with \"quotes\"\n and \u{1} control");
    }

    #[test]
    fn background_writer_keeps_every_line_whole() {
        let buf = Buf::default();
        let writer = LineWriter::spawn(Box::new(buf.clone()));
        let layer = JsonLines {
            sink: Sink::Background(Arc::clone(&writer.shared)),
        };
        let subscriber = Arc::new(tracing_subscriber::registry().with(layer));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sub = Arc::clone(&subscriber);
                std::thread::spawn(move || {
                    tracing::subscriber::with_default(sub, || {
                        for i in 0..2_000u64 {
                            tracing::info!(thread = t, i, "line");
                        }
                    });
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(writer);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let mut seen = std::collections::HashSet::new();
        for l in text.lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            assert!(seen.insert((v["thread"].as_u64().unwrap(), v["i"].as_u64().unwrap())));
        }
        assert_eq!(seen.len(), 8_000);
    }
}
