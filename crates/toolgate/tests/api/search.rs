//! Tool search (`[toolsets.NAME] search = true`) on a generated catalog of 500 tools:
//! the set lists two meta-tools, finds tools by words, describes one, and the tool is
//! then called by name; the caller's scopes bound what it can find. The figures of
//! what an agent reads (the whole listing against a search and a description) are
//! printed and bounded here, and quoted in docs/sources.md.

use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use toolgate_test_support::{OPERATOR_KEY, TestServer, key_entry};

use crate::mcp::{Rev, call, text_json};
use crate::read;

const GETTER: &str = "search-getter-key-0123456789";

const VERBS: [&str; 10] = [
    "get", "list", "create", "update", "delete", "search", "export", "archive", "refund", "sync",
];
const ENTITIES: [&str; 10] = [
    "customer",
    "invoice",
    "order",
    "shipment",
    "ticket",
    "user",
    "product",
    "payment",
    "report",
    "subscription",
];
const REGIONS: [&str; 5] = ["eu", "us", "apac", "latam", "mena"];

/// 500 http tools (10 verbs × 10 entities × 5 regions), each with four documented
/// parameters, as an operator's imported catalog looks.
fn catalog() -> String {
    let mut out = String::new();
    for verb in VERBS {
        for entity in ENTITIES {
            for region in REGIONS {
                let method = match verb {
                    "get" | "list" | "search" | "export" => "GET",
                    "delete" => "DELETE",
                    _ => "POST",
                };
                out.push_str(&format!(
                    "\n[[tools]]\nname = \"{verb}_{entity}_{region}\"\nkind = \"http\"\nmethod = \"{method}\"\n\
                     description = \"{Verb} a {entity} record in the {region} region's {entity} service. \
                     Use it when a user asks to {verb} a {entity}; it returns the {entity} as JSON.\"\n\
                     url = \"http://{region}.{entity}s.example.invalid/v2/{entity}s/{{id}}?fields={{fields}}&limit={{limit}}&reason={{reason}}\"\n\
                     params = [\
                     {{ name = \"id\", type = \"string\", description = \"The {entity}'s id, as the {entity} service gives it.\" }}, \
                     {{ name = \"fields\", type = \"string\", required = false, description = \"Comma-separated fields of the {entity} to return.\" }}, \
                     {{ name = \"limit\", type = \"integer\", required = false, minimum = 1, maximum = 100, description = \"Most records to return.\" }}, \
                     {{ name = \"reason\", type = \"string\", required = false, max_length = 200, description = \"Why the {entity} is being read or changed, for the audit log.\" }}]\n",
                    Verb = capitalise(verb),
                ));
            }
        }
    }
    out
}

fn capitalise(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

async fn server() -> TestServer {
    let cfg = format!(
        "{}{}{}\n[toolsets.all]\ntools = [\"*\"]\n\n[toolsets.find]\ntools = [\"*\"]\nsearch = true\n",
        toolgate_config::DEMO_CONFIG,
        catalog(),
        key_entry("getter", GETTER, &["get_*", "echo"]),
    );
    TestServer::spawn(&cfg).await.unwrap()
}

fn json_of(r: &CallToolResult) -> Value {
    text_json(r)
}

#[tokio::test]
async fn a_search_set_lists_two_meta_tools_finds_describes_and_calls_by_name() {
    let s = server().await;
    // What an agent reads from the whole set...
    let all = connect_at(&s, "/mcp/all", OPERATOR_KEY).await;
    let listed = all.service.list_all_tools().await.unwrap();
    assert!(listed.len() > 500, "{}", listed.len());
    let listed_bytes = serde_json::to_vec(&listed).unwrap().len();
    all.service.cancel().await.unwrap();

    // ...and from the search set: two meta-tools, one search, one description.
    let c = connect_at(&s, "/mcp/find", OPERATOR_KEY).await;
    let meta = c.service.list_all_tools().await.unwrap();
    let names: Vec<&str> = meta.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["search_tools", "describe_tool"]);
    let meta_bytes = serde_json::to_vec(&meta).unwrap().len();

    let found = call(
        &c,
        "search_tools",
        json!({"query": "refund an invoice in the eu"}),
    )
    .await;
    assert_eq!(found.is_error, Some(false));
    let found = json_of(&found);
    let first = &found["tools"][0];
    assert_eq!(first["name"], "refund_invoice_eu", "{found}");
    assert_eq!(found["tools"].as_array().unwrap().len(), 5);
    let search_bytes = found.to_string().len();

    let described = json_of(&call(&c, "describe_tool", json!({"name": "refund_invoice_eu"})).await);
    assert_eq!(
        described["input_schema"]["required"],
        json!(["id"]),
        "{described}"
    );
    let describe_bytes = described.to_string().len();

    // Hints count: "read-only" ranks a read-only tool first.
    let read_only = json_of(
        &call(
            &c,
            "search_tools",
            json!({"query": "read-only customer eu"}),
        )
        .await,
    );
    assert_eq!(
        read_only["tools"][0]["annotations"]["read_only"], true,
        "{read_only}"
    );

    // The tool found is called by name through the set, with its own policies.
    let echo = json_of(&call(&c, "search_tools", json!({"query": "echo"})).await);
    assert_eq!(echo["tools"][0]["name"], "echo", "{echo}");
    let echoed = call(&c, "echo", json!({"hi": 1})).await;
    assert_eq!(text_json(&echoed), json!({"hi": 1}));
    c.service.cancel().await.unwrap();

    let searched = meta_bytes + search_bytes + describe_bytes;
    eprintln!(
        "tool search on {} tools: tools/list of the whole set {listed_bytes} bytes; \
         search set: tools/list {meta_bytes} + one search {search_bytes} + one description \
         {describe_bytes} = {searched} bytes ({:.1}% of the listing, {:.0}x less)",
        listed.len(),
        100.0 * searched as f64 / listed_bytes as f64,
        listed_bytes as f64 / searched as f64,
    );
    assert!(searched * 50 < listed_bytes, "{searched} vs {listed_bytes}");
}

#[tokio::test]
async fn search_shows_only_what_the_caller_may_call() {
    let s = server().await;
    let c = connect_at(&s, "/mcp/find", GETTER).await;
    let found = json_of(
        &call(
            &c,
            "search_tools",
            json!({"query": "refund invoice", "limit": 25}),
        )
        .await,
    );
    let names: Vec<&str> = found["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(!names.is_empty());
    assert!(names.iter().all(|n| n.starts_with("get_")), "{names:?}");
    // Outside the key's scopes a tool is not there: not described, not callable.
    let hidden = c
        .service
        .call_tool(crate::mcp::params(
            "describe_tool",
            json!({"name": "refund_invoice_eu"}),
        ))
        .await
        .unwrap_err();
    assert!(hidden.to_string().contains("no tool named"), "{hidden}");
    let refused = c
        .service
        .call_tool(crate::mcp::params("refund_invoice_eu", json!({"id": "1"})))
        .await;
    assert!(refused.is_err() || refused.unwrap().is_error == Some(true));
    c.service.cancel().await.unwrap();

    // REST through the set: the same two tools, and a search.
    let (status, _, body) = read(
        s.client
            .get(s.url("/api/v1/sets/find/tools"))
            .header("X-Tool-API-Key", GETTER)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tools"].as_array().unwrap().len(), 2);
    let (status, _, body) = read(
        s.client
            .post(s.url("/api/v1/sets/find/tools/search_tools"))
            .header("X-Tool-API-Key", GETTER)
            .json(&json!({"query": "export report"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["output"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["name"].as_str().unwrap().starts_with("get_")),
        "{body}"
    );
    // Bad arguments are the caller's.
    let resp = s
        .client
        .post(s.url("/api/v1/sets/find/tools/search_tools"))
        .header("X-Tool-API-Key", GETTER)
        .json(&json!({"query": ""}))
        .send()
        .await
        .unwrap();
    crate::expect_problem(resp, 422, "invalid_arguments").await;
    // Outside a search set the meta-tools do not exist.
    let resp = s
        .call("search_tools", &json!({"query": "x"}))
        .send()
        .await
        .unwrap();
    crate::expect_problem(resp, 404, "tool_not_found").await;
}

async fn connect_at(s: &TestServer, path: &str, key: &str) -> crate::mcp::Client {
    crate::mcp::connect_path(s, path, key, Rev::Modern).await
}
