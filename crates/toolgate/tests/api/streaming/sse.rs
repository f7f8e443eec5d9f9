//! `POST /api/v1/tools/{name}/stream` and `POST /api/v1/tools/execute/stream`.

use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use toolgate_config::DEMO_CONFIG;
use toolgate_test_support::{TestServer, key_entry};

use super::{demo_with, wait_idle, wait_in_flight};
use crate::expect_problem;

/// One parsed event.
#[derive(Debug)]
struct SseEvent {
    event: String,
    id: u64,
    data: Value,
}

/// Reads events off a streaming response, counting comment lines (heartbeats).
struct SseReader {
    body: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buf: String,
    comments: usize,
}

impl SseReader {
    fn new(resp: reqwest::Response) -> Self {
        Self {
            body: resp.bytes_stream().map(|r| r.map(|b| b.to_vec())).boxed(),
            buf: String::new(),
            comments: 0,
        }
    }

    /// The next event, or `None` at the end of the stream. Times out after 10 s.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                if let Some(event) = self.parse(&block) {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("no event within 10 s")?;
            self.buf
                .push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
    }

    fn parse(&mut self, block: &str) -> Option<SseEvent> {
        let (mut event, mut id, mut data) = (None, None, String::new());
        for line in block.lines() {
            if line.starts_with(':') {
                self.comments += 1;
            } else if let Some(v) = line.strip_prefix("event:") {
                event = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().parse().unwrap());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        let event = event?;
        Some(SseEvent {
            data: serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}")),
            event,
            id: id.expect("every event has an id"),
        })
    }

    async fn all(mut self) -> (Vec<SseEvent>, usize) {
        let mut events = Vec::new();
        while let Some(e) = self.next().await {
            events.push(e);
        }
        (events, self.comments)
    }
}

fn names(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

#[tokio::test]
async fn sleep_streams_progress_then_its_result() {
    let s = TestServer::demo().await.unwrap();
    let resp = s
        .post("/api/v1/tools/sleep/stream")
        .json(&json!({"ms": 350}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let header = |name: &str| resp.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "text/event-stream");
    assert_eq!(header("cache-control"), "no-cache");
    assert_eq!(header("x-accel-buffering"), "no");
    let (events, _) = SseReader::new(resp).all().await;
    let n = events.len();
    assert!(n >= 4, "{:?}", names(&events));
    assert!(events[..n - 2].iter().all(|e| e.event == "progress"));
    assert_eq!(names(&events[n - 2..]), ["result", "done"]);
    let first = &events[0].data;
    assert_eq!(
        (&first["id"], &first["tool"]),
        (&json!("0"), &json!("sleep"))
    );
    assert_eq!(first["total"], 350.0);
    assert!(first["progress"].as_f64().unwrap() > 0.0);
    assert!(first["message"].is_string());
    let result = &events[n - 2].data;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["output"], json!({"slept_ms": 350}));
    assert!(result["duration_ms"].as_u64().unwrap() >= 350);
    let done = &events[n - 1].data;
    assert_eq!(
        done,
        &json!({"success": true, "calls": 1, "succeeded": 1, "failed": 0})
    );
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[1] > w[0]), "ids rise: {ids:?}");
}

#[tokio::test]
async fn a_batch_stream_delivers_the_fast_result_before_the_slow_one() {
    let s = TestServer::demo().await.unwrap();
    let resp = s
        .post("/api/v1/tools/execute/stream")
        .json(&json!({"calls": [
            {"id": "slow", "tool": "sleep", "arguments": {"ms": 400}},
            {"id": "fast", "tool": "echo", "arguments": {"x": 1}}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (events, _) = SseReader::new(resp).all().await;
    let results: Vec<&Value> = events
        .iter()
        .filter(|e| e.event == "result")
        .map(|e| &e.data)
        .collect();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["id"], "fast");
    assert_eq!(results[0]["output"], json!({"x": 1}));
    assert_eq!(results[1]["id"], "slow");
    let progress_ids: Vec<&Value> = events
        .iter()
        .filter(|e| e.event == "progress")
        .map(|e| &e.data["id"])
        .collect();
    assert!(!progress_ids.is_empty() && progress_ids.iter().all(|id| *id == "slow"));
    let done = &events.last().unwrap();
    assert_eq!(done.event, "done");
    assert_eq!(done.data["success"], true);
}

#[tokio::test]
async fn fail_fast_streams_the_failure_then_the_cancelled_sibling() {
    let s = TestServer::demo().await.unwrap();
    let start = Instant::now();
    let resp = s
        .post("/api/v1/tools/execute/stream")
        .json(&json!({"calls": [
            {"id": "slow", "tool": "sleep", "arguments": {"ms": 10_000}},
            {"id": "bad", "tool": "fail", "arguments": {"message": "no"}}
        ]}))
        .send()
        .await
        .unwrap();
    let (events, _) = SseReader::new(resp).all().await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the sibling was not cancelled"
    );
    let events: Vec<&SseEvent> = events.iter().filter(|e| e.event != "progress").collect();
    let shape: Vec<(&str, &Value)> = events
        .iter()
        .map(|e| (e.event.as_str(), &e.data["id"]))
        .collect();
    assert_eq!(
        shape,
        [
            ("result", &json!("bad")),
            ("error", &json!("bad")),
            ("result", &json!("slow")),
            ("done", &Value::Null)
        ]
    );
    assert_eq!(events[1].data["error"]["code"], "tool_error");
    assert_eq!(events[1].data["error"]["detail"], "no");
    assert!(events[1].data["error"]["trace_id"].is_string());
    assert_eq!(events[2].data["error"]["code"], "cancelled");
    assert_eq!(events[2].data["error"]["status"], 499);
    assert_eq!(
        events[3].data,
        json!({"success": false, "calls": 2, "succeeded": 0, "failed": 2})
    );
    assert_eq!(s.state.registry.in_flight(), 0);
}

#[tokio::test]
async fn all_settled_streams_every_outcome_without_an_error_event() {
    let s = TestServer::demo().await.unwrap();
    let resp = s
        .post("/api/v1/tools/execute/stream")
        .json(&json!({"mode": "all_settled", "calls": [
            {"id": "a", "tool": "fail", "arguments": {}},
            {"id": "b", "tool": "sleep", "arguments": {"ms": 150}}
        ]}))
        .send()
        .await
        .unwrap();
    let (events, _) = SseReader::new(resp).all().await;
    assert!(!names(&events).contains(&"error"), "{:?}", names(&events));
    let b = events
        .iter()
        .find(|e| e.data["id"] == "b" && e.event == "result");
    assert_eq!(b.unwrap().data["ok"], true);
    let done = &events.last().unwrap().data;
    assert_eq!(done["succeeded"], 1);
    assert_eq!(done["failed"], 1);
}

#[tokio::test]
async fn invalid_arguments_arrive_as_a_failed_result() {
    let s = TestServer::demo().await.unwrap();
    let resp = s
        .post("/api/v1/tools/sleep/stream")
        .json(&json!({"ms": "soon"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (events, _) = SseReader::new(resp).all().await;
    assert_eq!(names(&events), ["result", "error", "done"]);
    assert_eq!(events[0].data["error"]["code"], "invalid_arguments");
    assert_eq!(events[0].data["error"]["errors"][0]["pointer"], "/ms");
    assert_eq!(events[2].data["success"], false);
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_its_call() {
    let s = TestServer::demo().await.unwrap();
    let resp = s
        .post("/api/v1/tools/sleep/stream")
        .json(&json!({"ms": 60_000}))
        .send()
        .await
        .unwrap();
    let mut reader = SseReader::new(resp);
    let first = reader.next().await.unwrap();
    assert_eq!(first.event, "progress", "the sleep is running");
    assert_eq!(s.state.registry.in_flight(), 1);
    drop(reader);
    let took = wait_idle(&s, Duration::from_secs(2)).await;
    println!(
        "in flight reached 0 {} ms after the disconnect",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[tokio::test]
async fn a_batch_stream_client_that_disconnects_cancels_every_call() {
    let s = TestServer::demo().await.unwrap();
    let resp = s
        .post("/api/v1/tools/execute/stream")
        .json(&json!({"calls": [
            {"tool": "sleep", "arguments": {"ms": 60_000}},
            {"tool": "sleep", "arguments": {"ms": 60_000}}
        ]}))
        .send()
        .await
        .unwrap();
    wait_in_flight(&s, 2).await;
    drop(resp);
    let took = wait_idle(&s, Duration::from_secs(2)).await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[tokio::test]
async fn idle_streams_carry_comment_heartbeats() {
    let s = TestServer::spawn(&demo_with("sse_heartbeat_ms = 20"))
        .await
        .unwrap();
    // Progress comes every 100 ms, so 20 ms heartbeats fill the gaps.
    let resp = s
        .post("/api/v1/tools/sleep/stream")
        .json(&json!({"ms": 250}))
        .send()
        .await
        .unwrap();
    let (events, comments) = SseReader::new(resp).all().await;
    assert_eq!(events.last().unwrap().event, "done");
    assert!(comments >= 2, "{comments} heartbeat(s)");
}

#[tokio::test]
async fn refusals_before_the_stream_are_problem_json() {
    let config = format!(
        "{DEMO_CONFIG}{}",
        key_entry("narrow", "narrow-key", &["echo"])
    );
    let s = TestServer::spawn(&config).await.unwrap();
    let url = s.url("/api/v1/tools/echo/stream");
    let resp = s.client.post(&url).json(&json!({})).send().await.unwrap();
    expect_problem(resp, 401, "unauthorized").await;
    let resp = s
        .client
        .post(&url)
        .header("X-Tool-API-Key", "wrong")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_problem(resp, 403, "forbidden").await;
    let narrow = |path: &str| {
        s.client
            .post(s.url(path))
            .header("X-Tool-API-Key", "narrow-key")
    };
    let resp = narrow("/api/v1/tools/sleep/stream")
        .json(&json!({"ms": 1}))
        .send();
    expect_problem(resp.await.unwrap(), 403, "forbidden").await;
    let resp = narrow("/api/v1/tools/nope/stream").json(&json!({})).send();
    expect_problem(resp.await.unwrap(), 403, "forbidden").await;
    let resp = s.post("/api/v1/tools/nope/stream").json(&json!({})).send();
    expect_problem(resp.await.unwrap(), 404, "tool_not_found").await;
    let resp = s.post("/api/v1/tools/echo/stream").body("{").send();
    expect_problem(resp.await.unwrap(), 400, "invalid_json").await;
    let resp = s
        .post("/api/v1/tools/execute/stream")
        .json(&json!({"calls": [], "mode": "sometimes"}))
        .send();
    let body = expect_problem(resp.await.unwrap(), 422, "invalid_arguments").await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 2, "{body}");
    let resp = s
        .post("/api/v1/tools/echo/stream")
        .header("X-Request-Timeout-Ms", "soon")
        .json(&json!({}))
        .send();
    expect_problem(resp.await.unwrap(), 422, "invalid_arguments").await;
}

#[tokio::test]
async fn the_timeout_header_lowers_a_streamed_call_deadline() {
    let s = TestServer::demo().await.unwrap();
    let resp = s
        .post("/api/v1/tools/sleep/stream")
        .header("X-Request-Timeout-Ms", "50")
        .json(&json!({"ms": 5_000}))
        .send()
        .await
        .unwrap();
    let (events, _) = SseReader::new(resp).all().await;
    let result = events.iter().find(|e| e.event == "result").unwrap();
    assert_eq!(result.data["error"]["code"], "timeout");
}
