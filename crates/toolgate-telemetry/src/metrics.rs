//! Prometheus metrics: the recorder, the metric names, and rendering for `/metrics`.
//!
//! Names follow Prometheus conventions (`_total` counters, `_seconds` histograms,
//! base units) under the `toolgate_` prefix. The recorder is process-wide (the
//! `metrics` facade has one global recorder), installed on first use.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// HTTP requests, by `method`, `route` (the matched template) and `status`.
pub const HTTP_REQUESTS: &str = "toolgate_http_requests_total";
/// HTTP request latency in seconds, by `route`.
pub const HTTP_DURATION: &str = "toolgate_http_request_duration_seconds";
/// Tool calls, by `tool`, `transport` and `outcome` (`ok` or an error code).
pub const CALLS: &str = "toolgate_tool_calls_total";
/// Tool call latency in seconds, by `tool` and `transport`.
pub const CALL_DURATION: &str = "toolgate_tool_call_duration_seconds";
/// Calls running now, by `tool`.
pub const IN_FLIGHT: &str = "toolgate_tool_calls_in_flight";
/// Calls waiting for a slot, by `tool`.
pub const QUEUE_DEPTH: &str = "toolgate_tool_queue_depth";
/// Requests refused by load shedding, by `reason` (`in_flight_limit`, `draining`).
pub const SHED: &str = "toolgate_shed_requests_total";
/// Calls refused by a key's rate limit, by `key` (its name).
pub const RATE_LIMITED: &str = "toolgate_rate_limited_calls_total";
/// Retry attempts made, by `tool`.
pub const RETRIES: &str = "toolgate_tool_retries_total";
/// Breaker state by `tool`: 0 closed, 1 open, 2 half-open.
pub const BREAKER_STATE: &str = "toolgate_circuit_breaker_state";
/// Configuration reloads, by `result` (`ok`, `refused`).
pub const RELOADS: &str = "toolgate_config_reloads_total";
/// Audit records that had to wait for room in the full audit queue.
pub const AUDIT_QUEUE_FULL: &str = "toolgate_audit_queue_full_total";
/// Audit records written.
pub const AUDIT_WRITTEN: &str = "toolgate_audit_records_total";
/// Records waiting in the audit queue (in memory).
pub const AUDIT_QUEUE_DEPTH: &str = "toolgate_audit_queue_depth";
/// Records kept in the on-disk spool while the audit store is down.
pub const AUDIT_SPOOLED: &str = "toolgate_audit_spooled_records";
/// 1 while the audit store answers, 0 while the writer spools.
pub const AUDIT_STORE_UP: &str = "toolgate_audit_store_up";
/// Failed audit store operations (commit, connect, check).
pub const AUDIT_FAILURES: &str = "toolgate_audit_store_failures_total";
/// Reconnections to the audit store after a failure.
pub const AUDIT_RECONNECTS: &str = "toolgate_audit_store_reconnects_total";
/// Audit records that could not be kept (neither stored nor spooled).
pub const AUDIT_LOST: &str = "toolgate_audit_records_lost_total";
/// Calls refused (`503 audit_unavailable`) because their record could not be kept
/// or, with `durability = "sync"`, committed.
pub const AUDIT_REFUSED: &str = "toolgate_audit_refused_calls_total";
/// The sequence number of the last published audit chain head.
pub const AUDIT_HEAD_SEQ: &str = "toolgate_audit_head_seq";

/// Connections open on the main listener.
pub const CONNECTIONS_OPEN: &str = "toolgate_connections_open";
/// Failed `accept` calls (out of descriptors, mostly).
pub const ACCEPT_ERRORS: &str = "toolgate_accept_errors_total";
/// Requests whose body did not arrive before the body deadline (answered 408).
pub const BODY_TIMEOUTS: &str = "toolgate_body_timeouts_total";
/// Calls and connections refused by a key's quota, by `key` and `quota`
/// (`in_flight`, `websockets`, `mcp_sessions`).
pub const QUOTA_EXCEEDED: &str = "toolgate_quota_exceeded_total";
/// Calls in flight per key, by `key`.
pub const KEY_IN_FLIGHT: &str = "toolgate_key_calls_in_flight";
/// Failed authentications (no key, unknown key, throttled), by `reason`.
pub const AUTH_FAILURES: &str = "toolgate_auth_failures_total";
/// Responses cut or refused because they passed a byte cap, by `what`.
pub const OUTPUT_CAPPED: &str = "toolgate_output_capped_total";

/// The gauge of open main-listener connections.
pub fn connections_open() -> metrics::Gauge {
    metrics::gauge!(CONNECTIONS_OPEN)
}

/// Latency buckets in seconds: 1 ms to 60 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Install the recorder (once per process) and return the handle that renders the
/// exposition text; `None` if another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            spawn_upkeep(handle.clone());
            Some(handle)
        })
        .as_ref()
}

/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The recorder keeps each histogram sample until it is folded into the buckets,
/// which a scrape does; without scrapes, memory would grow with every call. A thread
/// of its own folds them every few seconds.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("toolgate-metrics".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no metrics upkeep thread: histograms are folded only when scraped");
    }
}

/// Handles of labelled metrics, looked up by their label values without allocating.
///
/// Building a metric's key (label strings, hashing, the registry's lock) costs more
/// than the rest of a call's bookkeeping; a call site keeps one of these per thread
/// (`thread_local!`) and builds each label set's handles once.
pub struct HandleCache<H> {
    map: HashMap<String, H>,
    key: String,
}

impl<H> Default for HandleCache<H> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            key: String::new(),
        }
    }
}

/// Label sets kept per thread at most; past it the cache starts over (label values
/// are bounded by the configuration, so this only guards against a bug).
const MAX_CACHED: usize = 4096;

impl<H> HandleCache<H> {
    /// The handles for the label values `parts`, made by `make` the first time.
    pub fn get(&mut self, parts: &[&str], make: impl FnOnce() -> H) -> &H {
        self.key.clear();
        for p in parts {
            self.key.push_str(p);
            self.key.push('\0');
        }
        if !self.map.contains_key(self.key.as_str()) {
            if self.map.len() >= MAX_CACHED {
                self.map.clear();
            }
            self.map.insert(self.key.clone(), make());
        }
        // Present: inserted just above when missing.
        match self.map.get(self.key.as_str()) {
            Some(h) => h,
            None => unreachable!("inserted above"),
        }
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(HTTP_REQUESTS, "HTTP requests by method, route and status.");
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency by route."
    );
    describe_counter!(CALLS, "Tool calls by tool, transport and outcome.");
    describe_histogram!(
        CALL_DURATION,
        metrics::Unit::Seconds,
        "Tool call latency by tool and transport."
    );
    describe_gauge!(IN_FLIGHT, "Tool calls running now.");
    describe_gauge!(QUEUE_DEPTH, "Tool calls waiting for a concurrency slot.");
    describe_counter!(SHED, "Requests refused by load shedding.");
    describe_counter!(RATE_LIMITED, "Calls refused by a key's rate limit.");
    describe_counter!(RETRIES, "Retry attempts made.");
    describe_gauge!(
        BREAKER_STATE,
        "Circuit breaker state: 0 closed, 1 open, 2 half-open."
    );
    describe_counter!(RELOADS, "Configuration reloads by result.");
    describe_counter!(
        AUDIT_QUEUE_FULL,
        "Audit records that waited for room in the audit queue."
    );
    describe_counter!(AUDIT_WRITTEN, "Audit records written.");
    describe_gauge!(AUDIT_QUEUE_DEPTH, "Records waiting in the audit queue.");
    describe_gauge!(
        AUDIT_SPOOLED,
        "Records spooled on disk while the audit store is down."
    );
    describe_gauge!(
        AUDIT_STORE_UP,
        "1 while the audit store answers, 0 while spooling."
    );
    describe_counter!(AUDIT_FAILURES, "Failed audit store operations.");
    describe_counter!(AUDIT_RECONNECTS, "Reconnections to the audit store.");
    describe_counter!(AUDIT_LOST, "Audit records that could not be kept.");
    describe_counter!(
        AUDIT_REFUSED,
        "Calls refused because their audit record could not be kept."
    );
    describe_gauge!(
        AUDIT_HEAD_SEQ,
        "Sequence number of the last published audit chain head."
    );
    describe_gauge!(CONNECTIONS_OPEN, "Connections open on the main listener.");
    describe_counter!(ACCEPT_ERRORS, "Failed accept calls.");
    describe_counter!(
        BODY_TIMEOUTS,
        "Request bodies cut off by the body deadline."
    );
    describe_counter!(
        QUOTA_EXCEEDED,
        "Calls and connections refused by a key's quota."
    );
    describe_gauge!(KEY_IN_FLIGHT, "Calls in flight per key.");
    describe_counter!(AUTH_FAILURES, "Failed authentications by reason.");
    describe_counter!(OUTPUT_CAPPED, "Results cut or refused at a byte cap.");
}

/// The current exposition text (empty if no recorder could be installed).
#[must_use]
pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}
