//! Bearer tokens from a real identity provider (`tests/idp`, oidc-provider on
//! 127.0.0.1): client-credentials JWTs call the tools their scopes map to on REST and
//! MCP; wrong audience, wrong issuer, expired, forged and algorithm-confused tokens
//! get `401 invalid_token`; a rotated key is picked up and a retired one refused;
//! the protected resource metadata points clients at the issuer; limits apply per
//! subject; the audit log names the subject.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use toolgate_test_support::{Idp, TestServer};

const RESOURCE: &str = "http://toolgate.test";
const CLIENT_A: (&str, &str) = ("svc-a", "svc-a-secret");
const CLIENT_B: (&str, &str) = ("svc-b", "svc-b-secret");
const OPAQUE: &str = "http://toolgate.opaque";

fn idp_config() -> Value {
    json!({
        "keys": ["RS256", "ES256", "EdDSA"],
        "resources": {
            RESOURCE: {"audience": RESOURCE, "scope": "tools:echo tools:all", "format": "jwt", "ttl": 300},
            "http://elsewhere.test": {"audience": "http://elsewhere.test", "scope": "tools:echo", "format": "jwt", "ttl": 300},
            OPAQUE: {"scope": "tools:echo tools:all", "format": "opaque", "ttl": 300},
            "http://upstream.test/api": {"audience": "upstream-api", "scope": "upstream:read", "format": "jwt", "ttl": 120}
        },
        "clients": [
            {"client_id": CLIENT_A.0, "client_secret": CLIENT_A.1, "grant_types": ["client_credentials"],
             "scope": "tools:echo tools:all", "token_endpoint_auth_method": "client_secret_basic",
             "extra_token_claims": {"tenant_id": "t1"}},
            {"client_id": "toolgate", "client_secret": "toolgate-introspects",
             "grant_types": ["client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"],
             "scope": "upstream:read", "token_endpoint_auth_method": "client_secret_basic"},
            {"client_id": CLIENT_B.0, "client_secret": CLIENT_B.1, "grant_types": ["client_credentials"],
             "scope": "tools:echo tools:all", "token_endpoint_auth_method": "client_secret_basic",
             "extra_token_claims": {"tenant_id": "t2"}}
        ]
    })
}

/// The test IdP, or `None` (loudly) where node or `npm ci` in tests/idp is missing;
/// under CI both must be there.
fn idp() -> Option<Idp> {
    if !Idp::available() {
        assert!(
            std::env::var("CI").is_err(),
            "node and `npm ci` in tests/idp are needed under CI"
        );
        eprintln!("SKIPPED: no node or no tests/idp/node_modules; this identity test did not run");
        return None;
    }
    Some(Idp::start(&idp_config()).unwrap())
}

fn config(idp: &Idp, extra: &str) -> String {
    format!(
        "{}\n[auth]\nresource = \"{RESOURCE}\"\n\n[[auth.issuers]]\nname = \"corp\"\nissuer = \"{}\"\njwks_min_refresh_ms = 1000\njwks_max_age_ms = 1000\n{extra}\n[auth.issuers.grants]\n\"tools:echo\" = [\"echo\"]\n\"tools:all\" = [\"*\"]\n",
        toolgate_config::DEMO_CONFIG,
        idp.issuer
    )
}

/// Call `tool` with `{"x": 1}` (for `echo`; other tools refuse it): status,
/// `WWW-Authenticate`, body.
async fn call(s: &TestServer, token: &str, tool: &str) -> (u16, String, Value) {
    call_with(s, token, tool, &json!({"x": 1})).await
}

/// Call `tool` with no arguments.
async fn call_empty(s: &TestServer, token: &str, tool: &str) -> (u16, String, Value) {
    call_with(s, token, tool, &json!({})).await
}

async fn call_with(s: &TestServer, token: &str, tool: &str, args: &Value) -> (u16, String, Value) {
    let resp = s
        .client
        .post(s.url(&format!("/api/v1/tools/{tool}")))
        .bearer_auth(token)
        .json(args)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, challenge, resp.json().await.unwrap_or(Value::Null))
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_token_calls_the_tools_its_scopes_map_to_and_no_others() {
    let Some(idp) = idp() else { return };
    let s = TestServer::spawn(&config(&idp, "")).await.unwrap();
    let narrow = idp
        .client_token(CLIENT_B, RESOURCE, "tools:echo")
        .await
        .unwrap();
    assert_eq!(claims_of(&narrow)["aud"], RESOURCE);
    let (status, _, body) = call(&s, &narrow, "echo").await;
    assert_eq!(status, 200, "{body}");
    // Outside its grants: 403, as for a key without the scope.
    let (status, _, body) = call(&s, &narrow, "sleep").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    // It sees only its tools.
    let list: Value = s
        .client
        .get(s.url("/api/v1/tools"))
        .bearer_auth(&narrow)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo"], "{list}");
    let wide = idp
        .client_token(CLIENT_A, RESOURCE, "tools:all")
        .await
        .unwrap();
    assert_eq!(
        call(&s, &wide, "sleep").await.0,
        422,
        "reaches the tool's own checks"
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn bad_tokens_get_401_invalid_token_with_the_metadata_url() {
    let Some(idp) = idp() else { return };
    let s = TestServer::spawn(&config(&idp, "")).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let good = json!({"iss": idp.issuer, "aud": RESOURCE, "sub": "svc-x", "scope": "tools:echo", "iat": now, "exp": now + 300});
    // The signing itself is fine: a token signed the same way passes.
    let ok = idp.sign(&good, "").await.unwrap();
    assert_eq!(call(&s, &ok, "echo").await.0, 200);
    let mut cases = Vec::new();
    // Another resource's token.
    cases.push((
        "wrong audience",
        idp.client_token(CLIENT_B, "http://elsewhere.test", "tools:echo")
            .await
            .unwrap(),
    ));
    let mut c = good.clone();
    c["iss"] = json!("http://127.0.0.1:1/not-trusted");
    cases.push(("wrong issuer", idp.sign(&c, "").await.unwrap()));
    let mut c = good.clone();
    c["exp"] = json!(now - 120);
    cases.push(("expired", idp.sign(&c, "").await.unwrap()));
    let mut c = good.clone();
    c["nbf"] = json!(now + 600);
    cases.push(("not yet valid", idp.sign(&c, "").await.unwrap()));
    let mut c = good.clone();
    c.as_object_mut().unwrap().remove("sub");
    cases.push(("no subject", idp.sign(&c, "").await.unwrap()));
    // A valid signature over other claims: the payload swapped afterwards.
    let mut c = good.clone();
    c["scope"] = json!("tools:all");
    let other_payload = idp.sign(&c, "").await.unwrap();
    let parts: Vec<&str> = ok.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        other_payload.split('.').nth(1).unwrap(),
        parts[2]
    );
    cases.push(("forged", forged));
    // `alg: HS256` keyed with the issuer's public key (algorithm confusion).
    let jwks: Value = reqwest::get(format!("{}/jwks", idp.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public = jwks.to_string();
    let kid = idp.current_kid().await.unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid);
    let confused = jsonwebtoken::encode(
        &header,
        &good,
        &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap();
    cases.push(("HS256 with the public key", confused));
    // `alg: none`.
    let none = format!(
        "{}.{}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        parts[1]
    );
    cases.push(("alg none", none + "x"));
    for (what, token) in cases {
        let (status, challenge, body) = call(&s, &token, "echo").await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["code"], "unauthorized", "{what}: {body}");
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
        assert!(
            challenge.contains(&format!(
                "resource_metadata=\"{RESOURCE}/.well-known/oauth-protected-resource\""
            )),
            "{what}: {challenge}"
        );
    }
    // A key that is not a JWT is still an unknown key: 403, as before.
    assert_eq!(call(&s, "tg_not_a_key", "echo").await.0, 403);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn the_protected_resource_metadata_names_the_issuer() {
    let Some(idp) = idp() else { return };
    let s = TestServer::spawn(&config(&idp, "")).await.unwrap();
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let doc: Value = s.get(path).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["resource"], RESOURCE, "{doc}");
        assert_eq!(doc["authorization_servers"], json!([idp.issuer]));
        assert_eq!(doc["scopes_supported"], json!(["tools:all", "tools:echo"]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }
    // MCP without a token: 401 pointing at the metadata.
    let resp = s
        .client
        .post(s.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(
            "resource_metadata=\"http://toolgate.test/.well-known/oauth-protected-resource\""
        ),
        "{challenge}"
    );
    // What to ask for: by default every supported scope.
    assert!(
        challenge.contains("scope=\"tools:all tools:echo\""),
        "{challenge}"
    );
    s.stop().await.unwrap();
    // `[auth] scope` narrows it (clients start small and step up).
    let narrow = config(&idp, "").replacen("\n[auth]\n", "\n[auth]\nscope = \"tools:echo\"\n", 1);
    let s = TestServer::spawn(&narrow).await.unwrap();
    let resp = s
        .client
        .post(s.url("/api/v1/tools/echo"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("scope=\"tools:echo\"") && challenge.contains("resource_metadata="),
        "{challenge}"
    );
    // Without [auth], there is no metadata.
    let plain = TestServer::spawn(toolgate_config::DEMO_CONFIG)
        .await
        .unwrap();
    assert_eq!(
        plain
            .get("/.well-known/oauth-protected-resource")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    plain.stop().await.unwrap();
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_and_a_retired_one_refused() {
    let Some(idp) = idp() else { return };
    let s = TestServer::spawn(&config(&idp, "")).await.unwrap();
    let before = idp
        .client_token(CLIENT_A, RESOURCE, "tools:echo")
        .await
        .unwrap();
    assert_eq!(call(&s, &before, "echo").await.0, 200);
    let old_kid = idp.current_kid().await.unwrap();
    idp.admin("rotate", &json!({})).await.unwrap();
    let new_kid = idp.current_kid().await.unwrap();
    assert_ne!(old_kid, new_kid);
    // Wait out jwks_min_refresh_ms: the unknown kid then fetches the keys again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = idp
        .client_token(CLIENT_A, RESOURCE, "tools:echo")
        .await
        .unwrap();
    assert_eq!(
        call(&s, &after, "echo").await.0,
        200,
        "the new kid is fetched"
    );
    assert_eq!(
        call(&s, &before, "echo").await.0,
        200,
        "the old key still published"
    );
    idp.admin("retire", &json!({"all_but_newest": true}))
        .await
        .unwrap();
    // Past jwks_max_age_ms the keys are fetched again; the old kid is gone, and the
    // token signed with it is refused (its cached verdict is dropped with the set).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, _) = call(&s, &before, "echo").await;
        if status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still accepted: {status}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(call(&s, &after, "echo").await.0, 200);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_kids_do_not_make_the_server_hammer_the_issuer() {
    let Some(idp) = idp() else { return };
    let s = TestServer::spawn(&config(&idp, "")).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims =
        json!({"iss": idp.issuer, "aud": RESOURCE, "sub": "x", "iat": now, "exp": now + 300});
    // 50 tokens with random kids in a burst: each refused, at most a fetch or two.
    let started = std::time::Instant::now();
    for i in 0..50 {
        let token = idp
            .sign(&claims, &format!("header_kid=random-{i}"))
            .await
            .unwrap();
        assert_eq!(call(&s, &token, "echo").await.0, 401);
    }
    // The server answered all 50 without waiting on 50 fetches, and the IdP saw
    // at most a few: one per jwks_min_refresh_ms (1 s here) at most.
    let took = started.elapsed();
    let fetches = idp.requests("/jwks").await.unwrap();
    let allowed = 2 + took.as_secs();
    assert!(
        fetches <= allowed,
        "{fetches} JWKS fetches for 50 unknown kids in {took:?}"
    );
    assert!(fetches >= 1, "the keys were fetched at all");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn limits_and_quotas_apply_per_subject_and_the_audit_log_names_it() {
    let Some(idp) = idp() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let extra = "rate_limit = { per_second = 0.01, burst = 2 }\n";
    let cfg = format!(
        "{}\n[audit]\npath = \"{}\"\n",
        config(&idp, extra),
        db.display()
    );
    let s = TestServer::spawn(&cfg).await.unwrap();
    let a1 = idp
        .client_token(CLIENT_A, RESOURCE, "tools:echo")
        .await
        .unwrap();
    let a2 = idp
        .client_token(CLIENT_A, RESOURCE, "tools:all")
        .await
        .unwrap();
    let b = idp
        .client_token(CLIENT_B, RESOURCE, "tools:echo")
        .await
        .unwrap();
    assert_eq!(call(&s, &a1, "echo").await.0, 200);
    // Another token of the same subject shares its bucket.
    assert_eq!(call(&s, &a2, "echo").await.0, 200);
    assert_eq!(call(&s, &a1, "echo").await.0, 429);
    // Another subject has its own.
    assert_eq!(call(&s, &b, "echo").await.0, 200);
    s.stop().await.unwrap();
    let out = std::process::Command::new(crate::cli::BIN)
        .args(["audit", "list", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect();
    let keys: Vec<&str> = records.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        ["corp:svc-a", "corp:svc-a", "corp:svc-a", "corp:svc-b"]
    );
    // Issuer, subject and client id are fields of their own, in the chain.
    for (r, client) in records.iter().zip(["svc-a", "svc-a", "svc-a", "svc-b"]) {
        assert_eq!(r["issuer"], json!(idp.issuer), "{r}");
        assert_eq!(r["subject"], json!(client), "{r}");
        assert_eq!(r["client_id"], json!(client), "{r}");
    }
    assert_eq!(records[2]["outcome"], "rate_limited");
    assert!(!text.contains(&a1), "never the token");
    let out = std::process::Command::new(crate::cli::BIN)
        .args(["audit", "verify", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Erasing a record's identity breaks the chain at that record.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE audit SET issuer = NULL, subject = NULL, client_id = NULL WHERE seq = 4",
        [],
    )
    .unwrap();
    drop(conn);
    let out = std::process::Command::new(crate::cli::BIN)
        .args(["audit", "verify", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains('4'),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn mcp_accepts_the_same_tokens() {
    let Some(idp) = idp() else { return };
    let s = TestServer::spawn(&config(&idp, "")).await.unwrap();
    let token = idp
        .client_token(CLIENT_B, RESOURCE, "tools:echo")
        .await
        .unwrap();
    let resp = crate::mcp::modern_post(&s, None, "tools/list", None, json!({}))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("\"echo\"") && !text.contains("\"sleep\""),
        "{text}"
    );
    // A tool outside the token's scopes: 403 insufficient_scope, naming the scope
    // that would do, so that the client can step up.
    let resp = crate::mcp::modern_post(
        &s,
        None,
        "tools/call",
        Some("sleep"),
        json!({"name": "sleep", "arguments": {"ms": 1}}),
    )
    .bearer_auth(&token)
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"tools:all\""), "{challenge}");
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    s.stop().await.unwrap();
}

/// The `item` column of a SQL tool's rows (objects or arrays).
fn items(body: &Value) -> Vec<String> {
    body["output"]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|r| {
            r.get("item")
                .or_else(|| r.get(0))
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{r}"))
                .to_owned()
        })
        .collect()
}

fn psql(sql: &str) {
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn postgresql_row_level_security_sees_the_callers_tenant() {
    let Some(idp) = idp() else { return };
    if std::net::TcpStream::connect("127.0.0.1:5432").is_err() {
        assert!(std::env::var("CI").is_err(), "PostgreSQL must run under CI");
        eprintln!("SKIPPED: no PostgreSQL on 127.0.0.1:5432; the RLS test did not run");
        return;
    }
    let table = format!("rls_{}", &toolgate_server::trace::generate()[..12]);
    // A role that is not the table's owner (owners and superusers bypass RLS), and a
    // policy that reads the setting toolgate sets from the token's claim.
    psql(&format!(
        "DO $$ BEGIN CREATE ROLE toolgate_rls LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         CREATE TABLE {table} (tenant text NOT NULL, item text NOT NULL);
         INSERT INTO {table} VALUES ('t1', 'apple'), ('t1', 'avocado'), ('t2', 'banana');
         ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
         CREATE POLICY tenant_rows ON {table} USING (tenant = current_setting('app.tenant', true));
         GRANT SELECT ON {table} TO toolgate_rls;"
    ));
    let extra = format!(
        "\n[sources.rls]\nkind = \"postgres\"\nurl = \"postgres://toolgate_rls@127.0.0.1:5432/test?sslmode=disable\"\npool_size = 1\n\n[[tools]]\nname = \"my_items\"\nkind = \"sql\"\nsource = \"rls\"\nstatement = \"SELECT item FROM {table} ORDER BY item\"\nparams = []\nsession = {{ \"app.tenant\" = \"tenant_id\" }}\n\n[[tools]]\nname = \"all_items\"\nkind = \"sql\"\nsource = \"rls\"\nstatement = \"SELECT item FROM {table} ORDER BY item\"\nparams = []\n"
    );
    // The tools go before [auth] (a table header ends the issuer's grants).
    let cfg = config(&idp, "").replacen("\n[auth]\n", &format!("{extra}\n[auth]\n"), 1);
    let s = TestServer::spawn(&cfg).await.unwrap();
    let a = idp
        .client_token(CLIENT_A, RESOURCE, "tools:all")
        .await
        .unwrap();
    let b = idp
        .client_token(CLIENT_B, RESOURCE, "tools:all")
        .await
        .unwrap();
    let (status, _, body) = call_empty(&s, &a, "my_items").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(items(&body), ["apple", "avocado"]);
    let (status, _, body) = call_empty(&s, &b, "my_items").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(items(&body), ["banana"]);
    // The setting lived only in that call's transaction: the next call on the same
    // (single) connection, by a tool that sets nothing, sees no tenant's rows.
    let (status, _, body) = call_empty(&s, &a, "all_items").await;
    assert_eq!(status, 200, "{body}");
    assert!(items(&body).is_empty(), "{body}");
    // An API key has no claims: refused, with the reason.
    let resp = s.call("my_items", &json!({})).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("tenant_id"),
        "{body}"
    );
    // The agent cannot set it: the tool takes no arguments at all.
    let (status, _, _) = call(&s, &a, "my_items").await;
    assert_eq!(status, 422);
    s.stop().await.unwrap();
    psql(&format!("DROP TABLE {table}"));
}

#[tokio::test]
async fn opaque_tokens_are_introspected_and_a_revoked_one_refused() {
    let Some(idp) = idp() else { return };
    // Set for the test process by .cargo/config.toml ([env]).
    let var = "TOOLGATE_TEST_INTROSPECTION_SECRET";
    assert!(
        std::env::var(var).is_ok(),
        "{var} comes from .cargo/config.toml"
    );
    let cfg = format!(
        "{}\n[auth]\n\n[[auth.issuers]]\nname = \"corp\"\nissuer = \"{}\"\naudience = \"{OPAQUE}\"\nintrospection = {{ client_id = \"toolgate\", client_secret_env = \"{var}\", cache_ms = 500 }}\n\n[auth.issuers.grants]\n\"tools:echo\" = [\"echo\"]\n",
        toolgate_config::DEMO_CONFIG,
        idp.issuer
    );
    let s = TestServer::spawn(&cfg).await.unwrap();
    let token = idp
        .client_token(CLIENT_A, OPAQUE, "tools:echo")
        .await
        .unwrap();
    assert!(
        !toolgate_identity_looks_like_jwt(&token),
        "an opaque token: {token}"
    );
    assert_eq!(call(&s, &token, "echo").await.0, 200);
    assert_eq!(call(&s, &token, "sleep").await.0, 403);
    // Cached: a second call does not ask again.
    let asked = idp.requests("/token/introspection").await.unwrap();
    assert_eq!(call(&s, &token, "echo").await.0, 200);
    assert_eq!(idp.requests("/token/introspection").await.unwrap(), asked);
    // Revoked at the issuer: refused once the cached answer (500 ms) is over.
    let revoked = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
        .post(format!("{}/token/revocation", idp.issuer))
        .basic_auth(CLIENT_A.0, Some(CLIENT_A.1))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success());
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (status, challenge, body) = call(&s, &token, "echo").await;
    assert_eq!(status, 401, "{body}");
    assert!(challenge.contains("invalid_token"), "{challenge}");
    // Made-up strings: refused, and each asked about once, not once per request.
    let before = idp.requests("/token/introspection").await.unwrap();
    for _ in 0..5 {
        assert_eq!(call(&s, "made-up-opaque-token", "echo").await.0, 401);
    }
    let after = idp.requests("/token/introspection").await.unwrap();
    assert_eq!(
        after - before,
        1,
        "one introspection for five identical refusals"
    );
    s.stop().await.unwrap();
}

fn toolgate_identity_looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

#[tokio::test]
async fn an_http_upstream_sees_who_is_asking_never_the_token() {
    use axum::{Json, Router, http::HeaderMap, routing::get};
    let Some(idp) = idp() else { return };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/whoami",
        get(|headers: HeaderMap| async move {
            let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
            Json(json!({"user": h("x-user"), "tenant": h("x-tenant"), "authorization": h("authorization")}))
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let tool = format!(
        "\n[[tools]]\nname = \"whoami\"\nkind = \"http\"\nurl = \"http://{upstream}/whoami\"\nallow_private = [\"127.0.0.1\"]\ncaller_headers = {{ \"X-User\" = \"sub\", \"X-Tenant\" = \"tenant_id\" }}\n"
    );
    let cfg = config(&idp, "").replacen("\n[auth]\n", &format!("{tool}\n[auth]\n"), 1);
    let s = TestServer::spawn(&cfg).await.unwrap();
    let a = idp
        .client_token(CLIENT_A, RESOURCE, "tools:all")
        .await
        .unwrap();
    let (status, _, body) = call_empty(&s, &a, "whoami").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["user"], "svc-a", "{body}");
    assert_eq!(body["output"]["tenant"], "t1", "{body}");
    // No token passthrough: the upstream never sees the caller's credential.
    assert_eq!(body["output"]["authorization"], Value::Null, "{body}");
    // A key has no claims: refused before the upstream is called.
    let resp = s.call("whoami", &json!({})).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn token_exchange_gives_the_upstream_a_token_of_its_own_for_the_caller() {
    use axum::{Json, Router, http::HeaderMap, routing::get};
    let Some(idp) = idp() else { return };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/api",
        get(|headers: HeaderMap| async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            Json(json!({"authorization": auth}))
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let tool = format!(
        "\n[[tools]]\nname = \"upstream\"\nkind = \"http\"\nurl = \"http://{upstream}/api\"\nallow_private = [\"127.0.0.1\"]\ntoken_exchange = {{ token_endpoint = \"{}/token\", client_id = \"toolgate\", client_secret_env = \"TOOLGATE_TEST_INTROSPECTION_SECRET\", resource = \"http://upstream.test/api\", scope = \"upstream:read\" }}\n",
        idp.issuer
    );
    let cfg = config(&idp, "").replacen("\n[auth]\n", &format!("{tool}\n[auth]\n"), 1);
    let s = TestServer::spawn(&cfg).await.unwrap();
    let a = idp
        .client_token(CLIENT_A, RESOURCE, "tools:all")
        .await
        .unwrap();
    let (status, _, body) = call_empty(&s, &a, "upstream").await;
    assert_eq!(status, 200, "{body}");
    let sent = body["output"]["authorization"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    let exchanged = sent.strip_prefix("Bearer ").unwrap();
    assert_ne!(exchanged, a, "never the caller's own token");
    let claims = claims_of(exchanged);
    assert_eq!(claims["sub"], "svc-a", "{claims}");
    assert_eq!(claims["aud"], "upstream-api", "{claims}");
    assert_eq!(claims["act"]["sub"], "toolgate", "{claims}");
    // Cached for the caller: the next call does not exchange again.
    let exchanges = idp.requests("/token").await.unwrap();
    let (status, _, body) = call_empty(&s, &a, "upstream").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["authorization"], sent);
    assert_eq!(idp.requests("/token").await.unwrap(), exchanges);
    // Another subject gets its own.
    let b = idp
        .client_token(CLIENT_B, RESOURCE, "tools:all")
        .await
        .unwrap();
    let (_, _, body) = call_empty(&s, &b, "upstream").await;
    let other = body["output"]["authorization"]
        .as_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    assert_eq!(claims_of(&other)["sub"], "svc-b");
    // A key has no token to exchange.
    assert_eq!(
        s.call("upstream", &json!({}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn sse_and_websocket_accept_the_same_tokens() {
    use futures::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest as _};
    let Some(idp) = idp() else { return };
    let s = TestServer::spawn(&config(&idp, "")).await.unwrap();
    let token = idp
        .client_token(CLIENT_B, RESOURCE, "tools:echo")
        .await
        .unwrap();
    // SSE: the whole stream, ending in `done`.
    let resp = s
        .client
        .post(s.url("/api/v1/tools/echo/stream"))
        .bearer_auth(&token)
        .json(&json!({"n": 1}))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("event: result") && text.contains("event: done"),
        "{text}"
    );
    // SSE with a bad token: 401 invalid_token.
    let resp = s
        .client
        .post(s.url("/api/v1/tools/echo/stream"))
        .bearer_auth(format!("{token}x"))
        .json(&json!({"n": 1}))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // WebSocket: a call answered; a tool outside the scopes refused in-band.
    let mut req = format!("ws://{}/api/v1/ws", s.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    // Every step is bounded, so a stuck step fails here and names itself.
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .expect("the WebSocket upgrade took over 20 s")
    .unwrap();
    ws.send(tungstenite::Message::text(
        json!({"type": "call", "id": "1", "tool": "echo", "arguments": {"x": 1}}).to_string(),
    ))
    .await
    .unwrap();
    let mut saw_result = false;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        if let tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "result" {
                assert_eq!(v["id"], "1", "{v}");
                saw_result = true;
                break;
            }
            assert_ne!(v["type"], "error", "{v}");
        }
    }
    assert!(saw_result, "no result over the WebSocket");
    // A WebSocket with a bad token is refused before the upgrade, with 401.
    let mut req = format!("ws://{}/api/v1/ws", s.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}x").parse().unwrap());
    drop(ws);
    let refused = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .expect("the refused WebSocket upgrade took over 20 s");
    match refused {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401),
        other => panic!("upgraded with a bad token: {:?}", other.map(|_| ())),
    }
    tokio::time::timeout(Duration::from_secs(60), s.stop())
        .await
        .expect("the server took over 60 s to stop")
        .unwrap();
}

#[tokio::test]
async fn a_token_whose_issuer_cannot_be_reached_gets_503_not_401() {
    let Some(idp) = idp() else { return };
    // An issuer nobody answers for (a closed port of 127.0.0.1).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let cfg = format!(
        "{}\n[auth]\nresource = \"{RESOURCE}\"\n\n[[auth.issuers]]\nname = \"gone\"\nissuer = \"{gone}\"\nfetch_timeout_ms = 500\n",
        toolgate_config::DEMO_CONFIG
    );
    let s = TestServer::spawn(&cfg).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = idp
        .sign(
            &json!({"iss": gone, "aud": RESOURCE, "sub": "x", "iat": now, "exp": now + 300}),
            "",
        )
        .await
        .unwrap();
    let resp = s
        .client
        .post(s.url("/api/v1/tools/echo"))
        .bearer_auth(&token)
        .json(&json!({}))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "overloaded", "{body}");
    // Still 503 on the next call, while the next fetch waits out jwks_min_refresh.
    assert_eq!(call_empty(&s, &token, "echo").await.0, 503);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn the_postgresql_audit_log_keeps_issuer_subject_and_client_and_adds_them_to_an_old_table() {
    if !crate::audit::postgres_available() {
        return;
    }
    let Some(idp) = idp() else { return };
    let table = format!("audit_ident_{}", &toolgate_server::trace::generate()[..12]);
    // A table as an earlier version created it: no identity columns.
    psql(&format!(
        "CREATE TABLE {table} (seq BIGSERIAL PRIMARY KEY, ts TEXT NOT NULL, key TEXT NOT NULL, tool TEXT NOT NULL,
           transport TEXT NOT NULL, outcome TEXT NOT NULL, duration_ms BIGINT NOT NULL,
           trace_id TEXT NOT NULL, args_sha256 TEXT NOT NULL, arguments TEXT,
           prev_hash TEXT NOT NULL, hash TEXT NOT NULL)"
    ));
    let cfg = format!(
        "{}\n[audit]\nurl = \"postgres://postgres@127.0.0.1:5432/test\"\ntable = \"{table}\"\n",
        config(&idp, "")
    );
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), &cfg).unwrap();
    let config_path = f.path().to_str().unwrap();
    // Readable as it is, before any writer added the columns.
    let (code, out, err) = crate::audit::audit(&["list", "--config", config_path]);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim().is_empty(), "{out}");
    let s = TestServer::spawn(&cfg).await.unwrap();
    let a = idp
        .client_token(CLIENT_A, RESOURCE, "tools:echo")
        .await
        .unwrap();
    let b = idp
        .client_token(CLIENT_B, RESOURCE, "tools:echo")
        .await
        .unwrap();
    assert_eq!(call(&s, &a, "echo").await.0, 200);
    assert_eq!(call(&s, &b, "echo").await.0, 200);
    // Out of scope: refused, and the refusal names the caller too.
    assert_eq!(call(&s, &b, "run_system_audit").await.0, 403);
    s.stop().await.unwrap();
    let (code, out, err) = crate::audit::audit(&["verify", "--config", config_path]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ok: 3 records"), "{out}");
    let (code, out, err) = crate::audit::audit(&["list", "--config", config_path]);
    assert_eq!(code, 0, "{err}");
    let records: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let who: Vec<(Value, Value, Value, Value)> = records
        .iter()
        .map(|r| {
            (
                r["issuer"].clone(),
                r["subject"].clone(),
                r["client_id"].clone(),
                r["outcome"].clone(),
            )
        })
        .collect();
    let iss = json!(idp.issuer);
    assert_eq!(
        who,
        [
            (iss.clone(), json!("svc-a"), json!("svc-a"), json!("ok")),
            (iss.clone(), json!("svc-b"), json!("svc-b"), json!("ok")),
            (iss, json!("svc-b"), json!("svc-b"), json!("forbidden")),
        ]
    );
    assert!(!out.contains(&a) && !out.contains(&b), "never the token");
    // Changing who called breaks the chain.
    psql(&format!(
        "UPDATE {table} SET subject = 'svc-a' WHERE seq = (SELECT max(seq) FROM {table})"
    ));
    let (code, _, err) = crate::audit::audit(&["verify", "--config", config_path]);
    assert_eq!(code, 1);
    assert!(err.contains("chain is broken"), "{err}");
    psql(&format!(
        "DROP TABLE {table}; DROP TABLE IF EXISTS {table}_meta"
    ));
}

/// `:caller.<claim>` in a declared statement, on `db`: each subject reads and writes
/// its own rows through one tool; the agent cannot set the claims; a key is refused.
async fn claims_are_statement_parameters(db: crate::sql_databases::Db) {
    use crate::sql_databases::{sql_tool, with_table};
    let Some(idp) = idp() else { return };
    let columns =
        "owner VARCHAR(64) NOT NULL, tenant VARCHAR(64) NOT NULL, item VARCHAR(64) NOT NULL";
    with_table(db, columns, |fx| async move {
        fx.exec(&format!(
            "INSERT INTO {} VALUES ('svc-a', 't1', 'apple'), ('svc-a', 't1', 'apricot'), \
             ('svc-a', 't2', 'avocado'), ('svc-b', 't2', 'banana'), ('svc-b', 't2', 'blueberry')",
            fx.table
        ))
        .await;
        let tools = format!(
            "{}{}{}",
            fx.source(""),
            sql_tool(
                "my_items",
                "SELECT item FROM {t} WHERE owner = :caller.sub AND tenant = :caller.tenant_id AND item LIKE :prefix ORDER BY item",
                "[{ name = \"prefix\", type = \"string\" }]",
                "",
            ),
            sql_tool(
                "add_item",
                "INSERT INTO {t} (owner, tenant, item) VALUES (:caller.sub, :caller.tenant_id, :item)",
                "[{ name = \"item\", type = \"string\" }]",
                "destructive = true",
            ),
        )
        .replace("{t}", &fx.table);
        let cfg = config(&idp, "").replacen("\n[auth]\n", &format!("{tools}\n[auth]\n"), 1);
        let s = TestServer::spawn(&cfg).await.unwrap();
        let a = idp
            .client_token(CLIENT_A, RESOURCE, "tools:all")
            .await
            .unwrap();
        let b = idp
            .client_token(CLIENT_B, RESOURCE, "tools:all")
            .await
            .unwrap();
        let (status, _, body) = call_with(&s, &a, "my_items", &json!({"prefix": "a%"})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(items(&body), ["apple", "apricot"], "svc-a in t1 only");
        let (status, _, body) = call_with(&s, &b, "my_items", &json!({"prefix": "%"})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(items(&body), ["banana", "blueberry"]);
        // A write stamps the caller's identity on the row.
        let (status, _, body) = call_with(&s, &b, "add_item", &json!({"item": "bilberry"})).await;
        assert_eq!(status, 200, "{body}");
        let (_, _, body) = call_with(&s, &b, "my_items", &json!({"prefix": "bi%"})).await;
        assert_eq!(items(&body), ["bilberry"]);
        let (_, _, body) = call_with(&s, &a, "my_items", &json!({"prefix": "%"})).await;
        assert_eq!(items(&body), ["apple", "apricot"], "not svc-b's new row");
        // The agent's arguments cannot name a claim.
        for args in [
            json!({"prefix": "%", "caller.sub": "svc-b"}),
            json!({"prefix": "%", "caller": {"sub": "svc-b", "tenant_id": "t2"}}),
        ] {
            let (status, _, body) = call_with(&s, &a, "my_items", &args).await;
            assert_eq!(status, 422, "{args}: {body}");
        }
        // An API key has no claims: refused, naming the claim.
        let resp = s
            .call("my_items", &json!({"prefix": "%"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403);
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains("\"sub\""),
            "{body}"
        );
        s.stop().await.unwrap();
    })
    .await;
}

mod claims_as_statement_parameters {
    use crate::sql_databases::Db;

    #[tokio::test]
    async fn sqlite() {
        super::claims_are_statement_parameters(Db::Sqlite).await;
    }

    #[tokio::test]
    async fn postgres() {
        super::claims_are_statement_parameters(Db::Postgres).await;
    }

    #[tokio::test]
    async fn mariadb() {
        super::claims_are_statement_parameters(Db::Mariadb).await;
    }
}

/// `tests/mcp-sdk`, where the official MCP TypeScript SDK is installed (`npm ci`).
pub(crate) fn mcp_sdk_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/mcp-sdk");
    if dir.join("node_modules/@modelcontextprotocol/sdk").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").is_err(),
        "`npm ci` in tests/mcp-sdk is needed under CI (make idp-deps)"
    );
    eprintln!("SKIPPED: no tests/mcp-sdk/node_modules; the MCP SDK test did not run");
    None
}

/// Run `script` of `tests/mcp-sdk` with `args` (JSON): the report it prints, or
/// a failure with its stderr. Each script gives up by itself within 90 s.
pub(crate) async fn run_sdk_script(sdk: &std::path::Path, script: &str, args: &Value) -> Value {
    let out = tokio::process::Command::new("node")
        .arg(sdk.join(script))
        .arg(args.to_string())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .expect("the SDK client ends by itself")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDK client failed: {stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test]
async fn the_official_mcp_sdk_client_discovers_authorizes_with_pkce_calls_and_steps_up() {
    let Some(sdk) = mcp_sdk_dir() else { return };
    if !Idp::available() {
        assert!(
            std::env::var("CI").is_err(),
            "node and tests/idp are needed under CI"
        );
        eprintln!("SKIPPED: no test IdP; the MCP SDK OAuth test did not run");
        return;
    }
    // The resource is toolgate's own URL, so the port is chosen first.
    let addr = toolgate_test_support::free_port().unwrap();
    let resource = format!("http://{addr}");
    let redirect = "http://127.0.0.1:65535/callback";
    let idp = Idp::start(&json!({
        "keys": ["ES256"],
        "resources": {
            resource.as_str(): {"audience": resource, "scope": "tools:whoami tools:all", "format": "jwt", "ttl": 300}
        },
        "clients": [
            // No refresh_token grant: on a 403 insufficient_scope, SDK 1.32.2 first
            // tries its refresh token, which cannot widen a grant (RFC 6749 6), and
            // gives up; without one it authorizes again with the scope toolgate named.
            {"client_id": "mcp-client", "grant_types": ["authorization_code"],
             "redirect_uris": [redirect], "scope": "tools:whoami tools:all",
             "token_endpoint_auth_method": "none"}
        ],
        "users": [
            {"id": "alice", "claims": {"name": "Alice"}, "token_claims": {"tenant_id": "t1"}}
        ]
    }))
    .unwrap();
    let cfg = format!(
        "{}\n[[tools]]\nname = \"whoami\"\nkind = \"sql\"\nsource = \"demo\"\nstatement = \"SELECT :caller.sub AS sub, :caller.tenant_id AS tenant\"\nparams = []\n\n[auth]\nresource = \"{resource}\"\nscope = \"tools:whoami\"\n\n[[auth.issuers]]\nname = \"corp\"\nissuer = \"{}\"\n\n[auth.issuers.grants]\n\"tools:whoami\" = [\"whoami\", \"echo\"]\n\"tools:all\" = [\"*\"]\n",
        toolgate_config::DEMO_CONFIG,
        idp.issuer
    );
    let s = TestServer::spawn_at(&cfg, addr).await.unwrap();
    let args = json!({
        "url": format!("{resource}/mcp"),
        "client_id": "mcp-client",
        "redirect_uri": redirect,
        "call": {"name": "whoami", "arguments": {}},
        "step_up": {"name": "run_system_audit", "arguments": {"target": "localhost"}}
    });
    let report = run_sdk_script(&sdk, "oauth-client.mjs", &args).await;
    let requests = report["requests"].as_array().unwrap();
    let asked = |method: &str, prefix: &str| {
        requests.iter().any(|r| {
            r["method"] == method && r["url"].as_str().is_some_and(|u| u.starts_with(prefix))
        })
    };
    // Discovery: toolgate's 401 and metadata, then the IdP's metadata.
    assert!(
        requests
            .iter()
            .any(|r| r["status"] == 401 && r["url"] == json!(format!("{resource}/mcp"))),
        "{requests:?}"
    );
    assert!(
        asked(
            "GET",
            &format!("{resource}/.well-known/oauth-protected-resource")
        ),
        "{requests:?}"
    );
    assert!(
        asked("GET", &format!("{}/.well-known/", idp.issuer)),
        "{requests:?}"
    );
    assert!(
        asked("GET", &format!("{}/auth", idp.issuer)),
        "{requests:?}"
    );
    assert!(
        asked("POST", &format!("{}/token", idp.issuer)),
        "{requests:?}"
    );
    // The first authorization asked for the 401's scope, for toolgate, with PKCE.
    let auths = report["authorizations"].as_array().unwrap();
    assert_eq!(
        auths.len(),
        2,
        "one authorization, then one step-up: {report}"
    );
    assert_eq!(auths[0]["scope"], "tools:whoami");
    assert_eq!(auths[0]["resource"], json!(resource));
    assert_eq!(auths[0]["code_challenge_method"], "S256");
    assert_eq!(report["tools"], json!(["echo", "whoami"]));
    // The call ran as alice, and her claims reached the SQL.
    let first = &report["first"];
    assert_ne!(first["isError"], json!(true), "{first}");
    let text = first["content"][0]["text"].as_str().unwrap_or_default();
    let structured = first.get("structuredContent").cloned().unwrap_or_default();
    let seen = format!("{text} {structured}");
    assert!(seen.contains("alice") && seen.contains("t1"), "{first}");
    // Out of scope: toolgate's 403 insufficient_scope names tools:all; the SDK got a
    // token with it and the call went through.
    assert!(requests.iter().any(|r| r["status"] == 403), "{requests:?}");
    assert_eq!(auths[1]["scope"], "tools:all");
    let step_up = &report["step_up"];
    assert_ne!(step_up["isError"], json!(true), "{step_up}");
    assert!(
        report["tools_after"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "run_system_audit"),
        "{report}"
    );
    s.stop().await.unwrap();
}
