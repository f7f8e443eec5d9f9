//! The `http` tool kind against a real upstream (an axum server on 127.0.0.1 in the
//! test): templating, encoding, headers, bodies, response mapping and caps, status
//! classification with retries and a shared breaker, and the SSRF guard.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{any, get};
use serde_json::{Value, json};
use toolgate_test_support::TestServer;

use crate::{expect_problem, read};

/// The 1x1 PNG the upstream answers on `/chart.png`.
const PNG: &[u8] = include_bytes!("../../examples/conformance/pixel.png");

/// Path, query, headers and body of one request the upstream received.
type Request = (String, Option<String>, HashMap<String, String>, String);

#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<Request>>,
    hits: AtomicU64,
}

async fn record(
    State(seen): State<Arc<Seen>>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    let h = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    seen.requests.lock().unwrap().push((
        rest.clone(),
        q,
        h,
        String::from_utf8_lossy(&body).into_owned(),
    ));
    axum::Json(json!({"data": {"temp": 21.5, "path": rest}}))
}

async fn upstream() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app =
        Router::new()
            .route("/echo/{*rest}", any(record))
            .route("/big", get(|| async { "x".repeat(2 * 1024 * 1024) }))
            .route(
                "/chart.png",
                get(|| async { ([("content-type", "image/png")], PNG.to_vec()) }),
            )
            .route(
                "/report.pdf",
                get(|| async {
                    (
                        [("content-type", "application/pdf")],
                        b"%PDF-1.7 fake".to_vec(),
                    )
                }),
            )
            .route(
                "/down",
                get(|State(s): State<Arc<Seen>>| async move {
                    s.hits.fetch_add(1, Ordering::SeqCst);
                    StatusCode::SERVICE_UNAVAILABLE
                }),
            )
            .route(
                "/missing",
                get(|State(s): State<Arc<Seen>>| async move {
                    s.hits.fetch_add(1, Ordering::SeqCst);
                    StatusCode::NOT_FOUND
                }),
            )
            .route(
                "/to-metadata",
                get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/") }),
            )
            .route(
                "/loop/{n}",
                get(|Path(n): Path<u32>| async move {
                    Redirect::temporary(&format!("/loop/{}", n + 1))
                }),
            )
            .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

fn tool(name: &str, url: &str, extra: &str) -> String {
    format!(
        "\n[[tools]]\nname = \"{name}\"\nkind = \"http\"\nurl = \"{url}\"\nallow_private = [\"127.0.0.1\"]\n{extra}\n"
    )
}

async fn server(addr: &str, tools: &str) -> TestServer {
    TestServer::spawn(&format!("{}{tools}", toolgate_config::DEMO_CONFIG))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{addr}"))
}

#[tokio::test]
async fn arguments_fill_path_segments_and_query_values_only() {
    let (addr, seen) = upstream().await;
    let t = tool(
        "weather",
        &format!("http://{addr}/echo/city/{{city}}?units={{units}}&v=1"),
        "headers = { X-Api-Version = \"2\" }\nresponse_pointer = \"/data\"\nparams = [{ name = \"city\", type = \"string\" }, { name = \"units\", type = \"string\", required = false }]",
    );
    let s = server(&addr, &t).await;
    let (status, _, body) = read(
        s.call(
            "weather",
            &json!({"city": "São Paulo/../admin?x#y", "units": "a&b=c"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["temp"], 21.5, "response_pointer picks /data");
    let reqs = seen.requests.lock().unwrap().clone();
    let (path, query, headers, _) = &reqs[0];
    assert_eq!(
        path, "city/São Paulo/../admin?x#y",
        "the whole value stayed one path segment"
    );
    assert_eq!(query.as_deref(), Some("units=a%26b%3Dc&v=1"));
    assert_eq!(headers["x-api-version"], "2");
    assert!(
        headers["traceparent"].starts_with("00-"),
        "the trace is passed on"
    );
    // The schema derived from params refuses unknown arguments.
    let resp = s
        .call("weather", &json!({"city": "x", "host": "evil.example"}))
        .send()
        .await
        .unwrap();
    expect_problem(resp, 422, "invalid_arguments").await;
}

#[tokio::test]
async fn bodies_are_templated_with_typed_values() {
    let (addr, seen) = upstream().await;
    let t = tool(
        "create",
        &format!("http://{addr}/echo/items"),
        "method = \"POST\"\nbody = { name = \"{name}\", qty = \"{qty}\", note = \"for {name}\" }\nparams = [{ name = \"name\", type = \"string\" }, { name = \"qty\", type = \"integer\" }]",
    );
    let s = server(&addr, &t).await;
    let (status, _, _) = read(
        s.call("create", &json!({"name": "bolt", "qty": 3}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&seen.requests.lock().unwrap()[0].3).unwrap();
    assert_eq!(body, json!({"name": "bolt", "qty": 3, "note": "for bolt"}));
    let (_, _, listing) = read(s.get("/api/v1/tools/create").send().await.unwrap()).await;
    assert_eq!(
        listing["annotations"]["read_only"], false,
        "POST tools are not read-only by default"
    );
}

#[tokio::test]
async fn responses_over_the_cap_are_refused() {
    let (addr, _) = upstream().await;
    let t = tool(
        "big",
        &format!("http://{addr}/big"),
        "max_response_bytes = 1000",
    );
    let s = server(&addr, &t).await;
    let body = expect_problem(
        s.call("big", &json!({})).send().await.unwrap(),
        500,
        "tool_error",
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("larger than 1000")
    );
}

#[tokio::test]
async fn server_errors_are_upstream_errors_retried_and_counted_by_a_shared_breaker() {
    let (addr, seen) = upstream().await;
    let policy = "retry = { max_attempts = 3, base_delay_ms = 1, max_delay_ms = 2, budget_min_per_second = 100 }\nbreaker = { window = 4, min_calls = 4, failure_rate_percent = 50, open_ms = 60000 }";
    let tools = format!(
        "{}{}{}",
        tool("down", &format!("http://{addr}/down"), policy),
        tool("missing", &format!("http://{addr}/missing"), policy),
        tool("fine", &format!("http://{addr}/echo/ok"), policy),
    );
    let s = server(&addr, &tools).await;
    expect_problem(
        s.call("down", &json!({})).send().await.unwrap(),
        502,
        "upstream_error",
    )
    .await;
    assert_eq!(seen.hits.load(Ordering::SeqCst), 3, "a 503 is retried");
    // An upstream 4xx is the upstream's answer (502, as documented), but permanent.
    expect_problem(
        s.call("missing", &json!({})).send().await.unwrap(),
        502,
        "upstream_error",
    )
    .await;
    assert_eq!(seen.hits.load(Ordering::SeqCst), 4, "a 404 is not");
    // The breaker belongs to the upstream: `down` opened it for `fine` too.
    let resp = s.call("fine", &json!({})).send().await.unwrap();
    expect_problem(resp, 503, "circuit_open").await;
}

#[tokio::test]
async fn the_ssrf_guard_refuses_private_destinations_without_an_allow_list() {
    let (addr, seen) = upstream().await;
    let port = addr.rsplit(':').next().unwrap();
    let no_allow = |name: &str, url: &str| {
        format!("\n[[tools]]\nname = \"{name}\"\nkind = \"http\"\nurl = \"{url}\"\n")
    };
    let tools = format!(
        "{}{}{}{}{}{}",
        no_allow("loopback", &format!("http://127.0.0.1:{port}/echo/x")),
        no_allow("by_name", &format!("http://localhost:{port}/echo/x")),
        no_allow(
            "mapped",
            &format!("http://[::ffff:127.0.0.1]:{port}/echo/x")
        ),
        no_allow("metadata", "http://169.254.169.254/latest/meta-data/"),
        tool("redirected", &format!("http://{addr}/to-metadata"), ""),
        tool("looping", &format!("http://{addr}/loop/0"), ""),
    );
    let s = server(&addr, &tools).await;
    for name in [
        "loopback",
        "by_name",
        "mapped",
        "metadata",
        "redirected",
        "looping",
    ] {
        let body = expect_problem(
            s.call(name, &json!({})).send().await.unwrap(),
            500,
            "tool_error",
        )
        .await;
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("allow_private") || detail.contains("redirect"),
            "{name}: {detail}"
        );
    }
    assert_eq!(
        seen.hits.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );
}

#[tokio::test]
async fn the_caller_trace_reaches_the_upstream() {
    let (addr, seen) = upstream().await;
    let s = server(&addr, &tool("traced", &format!("http://{addr}/echo/t"), "")).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    s.call("traced", &json!({}))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    let tp = seen.requests.lock().unwrap()[0].2["traceparent"].clone();
    assert!(tp.starts_with(&format!("00-{trace}-")), "{tp}");
    assert!(
        !tp.contains("00f067aa0ba902b7"),
        "toolgate's own span is the upstream's parent"
    );
}

#[tokio::test]
async fn a_slow_upstream_is_cut_at_the_deadline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
            "late"
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let s = server(
        &addr.to_string(),
        &tool("slow", &format!("http://{addr}/slow"), "timeout_ms = 500"),
    )
    .await;
    let start = std::time::Instant::now();
    expect_problem(
        s.call("slow", &json!({})).send().await.unwrap(),
        504,
        "timeout",
    )
    .await;
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(s.state.registry.in_flight(), 0);
}

/// Thirty-odd ways to write a private destination; none may be connected to. The
/// loopback ones point at a live listener that counts connections.
#[tokio::test]
async fn an_ssrf_table_of_private_addresses_and_encodings_is_refused_without_connecting() {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((_sock, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let hosts = [
        "127.0.0.1",
        "127.1",
        "127.0.1",
        "2130706433",
        "0x7f.1",
        "0x7f000001",
        "017700000001",
        "0177.0.0.1",
        "127.127.127.127",
        "localhost",
        "localhost.",
        "LOCALHOST",
        "[::1]",
        "[0:0:0:0:0:0:0:1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
        "0.0.0.0",
        "0",
        "[::]",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "[fd00::1]",
        "[fe80::1]",
        "[fd00:ec2::254]",
        "224.0.0.1",
        "255.255.255.255",
        "192.0.0.1",
        "198.18.0.1",
    ];
    let mut tools = String::new();
    for (i, h) in hosts.iter().enumerate() {
        tools.push_str(&format!("\n[[tools]]\nname = \"h{i}\"\nkind = \"http\"\nurl = \"http://{h}:{port}/x\"\ntimeout_ms = 2000\n"));
    }
    let s = server("", &tools).await;
    for (i, h) in hosts.iter().enumerate() {
        let resp = s.call(&format!("h{i}"), &json!({})).send().await.unwrap();
        let (status, _, body) = read(resp).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (500, Some("tool_error")),
            "{h}: {body}"
        );
        assert!(
            body["detail"].as_str().unwrap().contains("allow_private"),
            "{h}: {body}"
        );
    }
    assert!(hosts.len() >= 30);
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "a connection was made"
    );
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_refused_and_never_sees_the_headers() {
    let (addr, _) = upstream().await;
    let (other, other_seen) = upstream().await;
    let bounce = Router::new().route(
        "/away",
        get(move || {
            let other = other.clone();
            async move { Redirect::temporary(&format!("http://{other}/echo/stolen")) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bounce_addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, bounce).await });
    let t = tool(
        "bounced",
        &format!("http://{bounce_addr}/away"),
        "headers = { X-Upstream-Secret = \"s3cret\" }",
    );
    let s = server(&addr, &t).await;
    let body = expect_problem(
        s.call("bounced", &json!({})).send().await.unwrap(),
        500,
        "tool_error",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("another origin"),
        "{body}"
    );
    assert_eq!(
        other_seen.hits.load(Ordering::SeqCst),
        0,
        "the other origin was reached"
    );
}

#[tokio::test]
async fn dot_segments_in_path_values_are_refused() {
    let (addr, seen) = upstream().await;
    let t = tool(
        "user",
        &format!("http://{addr}/echo/users/{{id}}/profile"),
        "params = [{ name = \"id\", type = \"string\" }]",
    );
    let s = server(&addr, &t).await;
    for dots in [".", ".."] {
        let body = expect_problem(
            s.call("user", &json!({ "id": dots })).send().await.unwrap(),
            422,
            "invalid_arguments",
        )
        .await;
        assert_eq!(body["errors"][0]["pointer"], "/id", "{body}");
    }
    assert_eq!(seen.hits.load(Ordering::SeqCst), 0);
    // Dots inside a value are just characters.
    let (status, _, body) =
        read(s.call("user", &json!({"id": "a..b"})).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["data"]["path"], "users/a..b/profile");
}

#[tokio::test]
async fn binary_answers_become_content_blocks_on_rest_and_mcp() {
    use base64::Engine as _;
    let (addr, _) = upstream().await;
    let tools = format!(
        "{}{}",
        tool("chart", &format!("http://{addr}/chart.png"), ""),
        tool("report", &format!("http://{addr}/report.pdf"), ""),
    );
    let s = server(&addr, &tools).await;
    let (status, _, body) = read(s.call("chart", &json!({})).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let block = &body["output"]["content"][0];
    assert_eq!(block["type"], "image");
    assert_eq!(block["mimeType"], "image/png");
    let data = base64::engine::general_purpose::STANDARD
        .decode(block["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(data, PNG, "REST carries the bytes as the MCP block would");
    for rev in [crate::mcp::Rev::Modern, crate::mcp::Rev::Legacy] {
        let c = crate::mcp::connect(&s, toolgate_test_support::OPERATOR_KEY, rev).await;
        let image = c
            .service
            .call_tool(crate::mcp::params("chart", json!({})))
            .await
            .unwrap();
        let image = serde_json::to_value(image).unwrap();
        assert_eq!(image["content"][0]["type"], "image", "{image}");
        assert_eq!(image["content"][0]["mimeType"], "image/png");
        let pdf = c
            .service
            .call_tool(crate::mcp::params("report", json!({})))
            .await
            .unwrap();
        let pdf = serde_json::to_value(pdf).unwrap();
        let resource = &pdf["content"][0]["resource"];
        assert_eq!(pdf["content"][0]["type"], "resource", "{pdf}");
        assert_eq!(resource["mimeType"], "application/pdf");
        assert!(resource["uri"].as_str().unwrap().ends_with("/report.pdf"));
        assert!(resource["blob"].is_string());
    }
}
