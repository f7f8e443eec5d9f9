//! The OpenAPI document: snapshot, and the contract's rules checked directly.

use toolgate_test_support::TestServer;

use crate::read;

#[tokio::test]
async fn the_document_is_openapi_3_1_with_one_operation_per_tool() {
    let s = TestServer::demo().await.unwrap();
    let (status, _, doc) = read(s.client.get(s.url("/openapi.json")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let (_, _, listing) = read(s.get("/api/v1/tools").send().await.unwrap()).await;
    for tool in listing["tools"].as_array().unwrap() {
        let name = tool["name"].as_str().unwrap();
        let op = &doc["paths"][format!("/api/v1/tools/{name}")]["post"];
        assert_eq!(op["operationId"], name);
        assert_eq!(
            op["requestBody"]["content"]["application/json"]["schema"],
            tool["input_schema"]
        );
    }
    for fixed in [
        "/api/v1/tools",
        "/api/v1/tools/execute",
        "/healthz",
        "/readyz",
    ] {
        assert!(doc["paths"][fixed].is_object(), "{fixed}");
    }
    insta::assert_json_snapshot!("openapi", doc);
}

#[tokio::test]
async fn the_docs_page_renders_the_document() {
    let s = TestServer::demo().await.unwrap();
    let resp = s.client.get(s.url("/docs")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = resp.text().await.unwrap();
    assert!(html.contains("data-url=\"/openapi.json\""));
    // Its script comes from the binary, never from a CDN.
    assert!(!html.contains("https://"), "{html}");
    assert!(html.contains("src=\"/docs/api-reference.js\""), "{html}");
    let script = s
        .client
        .get(s.url("/docs/api-reference.js"))
        .header("Accept-Encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert_eq!(script.headers()["content-encoding"], "gzip");
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let etag = script.headers()["etag"].to_str().unwrap().to_owned();
    let gzipped = script.bytes().await.unwrap();
    assert_eq!(&gzipped[..2], &[0x1f, 0x8b], "gzip magic");
    // Cached by its tag; a client refusing gzip gets it plain.
    let again = s
        .client
        .get(s.url("/docs/api-reference.js"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let plain = s
        .client
        .get(s.url("/docs/api-reference.js"))
        .header("Accept-Encoding", "identity")
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let body = plain.bytes().await.unwrap();
    assert!(body.len() > 4 * gzipped.len() / 2, "{} bytes", body.len());
    assert!(String::from_utf8_lossy(&body[..4096]).contains("function"));
}
