//! The import of OpenAPI documents: versions, `$ref`s, cycles, filters, names, and
//! the 3.0 dialect.

use serde_json::json;

use super::*;

fn doc(paths: Value, components: Value) -> Value {
    json!({"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
           "servers": [{"url": "https://{host}/v1", "variables": {"host": {"default": "api.example.com"}}}],
           "paths": paths, "components": components})
}

#[test]
fn versions_and_formats() {
    assert!(parse("{\"openapi\": \"3.1.0\", \"paths\": {}}").is_ok());
    assert!(parse("openapi: 3.0.1\npaths: {}\n").is_ok());
    assert!(parse("openapi: \"3.0.1\"\npaths: {}\n").is_ok());
    let two = parse("{\"swagger\": \"2.0\"}").unwrap_err();
    assert!(two.contains("Swagger 2.0"), "{two}");
    assert!(
        parse("{\"openapi\": \"4.0.0\"}")
            .unwrap_err()
            .contains("4.0.0")
    );
    assert!(parse("{nope").unwrap_err().contains("JSON"));
    assert!(parse("a: [").unwrap_err().contains("YAML"));
}

#[test]
fn parameters_and_bodies_make_the_input_schema() {
    let d = doc(
        json!({"/pets/{petId}": {
            "parameters": [{"name": "petId", "in": "path", "required": true, "schema": {"type": "integer"}}],
            "get": {"operationId": "getPet", "summary": "One pet",
                    "parameters": [{"name": "fields", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
                                   {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
                                   {"name": "Authorization", "in": "header", "schema": {"type": "string"}}]},
            "put": {"operationId": "updatePet",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}}},
            "delete": {"operationId": "deletePet"}
        }}),
        json!({"schemas": {"Pet": {"type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}, "tag": {"type": "string", "nullable": true},
                           "nullable": {"type": "integer", "minimum": 0, "exclusiveMinimum": true}}}}}),
    );
    let out = import(&d, "pets_", None, None);
    assert_eq!(
        out.server_url.as_deref(),
        Some("https://api.example.com/v1")
    );
    assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    let names: Vec<&str> = out.operations.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["pets_getPet", "pets_updatePet", "pets_deletePet"]);
    let get = &out.operations[0];
    assert_eq!(get.description, "One pet");
    assert!(get.read_only && get.idempotent && !get.destructive);
    assert_eq!(
        get.input_schema,
        json!({"type": "object", "properties": {
            "petId": {"type": "integer"},
            "fields": {"type": "array", "items": {"type": "string"}},
            "X-Trace": {"type": "string"}},
          "required": ["petId"], "additionalProperties": false})
    );
    let put = &out.operations[1];
    assert!(!put.read_only && put.idempotent && !put.destructive);
    assert_eq!(put.body, Some(true));
    let pet = &put.input_schema["properties"]["body"];
    // 3.0's nullable and boolean exclusiveMinimum, in 2020-12 terms; a property
    // named `nullable` is a property, not the keyword.
    assert_eq!(
        pet["properties"]["tag"],
        json!({"type": ["string", "null"]})
    );
    assert_eq!(
        pet["properties"]["nullable"],
        json!({"type": "integer", "exclusiveMinimum": 0})
    );
    assert_eq!(put.input_schema["required"], json!(["petId", "body"]));
    assert!(out.operations[2].destructive);
}

#[test]
fn what_cannot_be_served_is_skipped_with_the_reason() {
    let d = doc(
        json!({
            "/tree": {"post": {"operationId": "addNode",
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}}},
            "/upload": {"post": {"operationId": "upload", "requestBody": {"required": true,
                "content": {"multipart/form-data": {"schema": {"type": "object"}}}}}},
            "/session": {"get": {"operationId": "session",
                "parameters": [{"name": "sid", "in": "cookie", "required": true, "schema": {"type": "string"}}]}},
            "/remote": {"get": {"operationId": "remote",
                "parameters": [{"$ref": "other.yaml#/components/parameters/P"}]}},
            "/twice/{id}": {"get": {"operationId": "twice",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                               {"name": "id", "in": "query", "schema": {"type": "string"}}]}},
            "/undeclared/{x}": {"get": {"operationId": "undeclared"}}
        }),
        json!({"schemas": {"Node": {"type": "object", "properties": {
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}}}),
    );
    let out = import(&d, "", None, None);
    assert!(out.operations.is_empty(), "{:?}", out.operations);
    let reason = |id: &str| {
        out.skipped
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.reason.clone())
            .unwrap_or_else(|| panic!("{id} not skipped: {:?}", out.skipped))
    };
    assert!(
        reason("addNode").contains("recursive"),
        "{}",
        reason("addNode")
    );
    assert!(reason("upload").contains("multipart/form-data"));
    assert!(reason("session").contains("cookie"));
    assert!(reason("remote").contains("only local references"));
    assert!(reason("twice").contains("two parameters are named \"id\""));
    assert!(reason("undeclared").contains("does not declare"));
}

#[test]
fn a_reference_bomb_is_refused_not_expanded() {
    // Each level refers to the one below twice: 2^30 nodes if inlined.
    let mut schemas = Map::new();
    schemas.insert("L0".into(), json!({"type": "string"}));
    for i in 1..=30 {
        let below = format!("#/components/schemas/L{}", i - 1);
        schemas.insert(
            format!("L{i}"),
            json!({"type": "object", "properties": {"a": {"$ref": below}, "b": {"$ref": below}}}),
        );
    }
    let d = doc(
        json!({"/bomb": {"post": {"operationId": "bomb", "requestBody": {"content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/L30"}}}}}}}),
        json!({"schemas": schemas}),
    );
    let out = import(&d, "", None, None);
    assert!(out.operations.is_empty());
    assert!(out.skipped[0].reason.contains("nodes"), "{:?}", out.skipped);
}

#[test]
fn filters_select_by_id_tag_path_and_method() {
    let d = doc(
        json!({
            "/pets": {"get": {"operationId": "listPets", "tags": ["pets"]},
                      "post": {"operationId": "createPet", "tags": ["pets"]}},
            "/pets/{id}/photos": {"get": {"operationId": "listPhotos", "tags": ["photos"],
                "parameters": [{"name": "id", "in": "path", "required": true}]}},
            "/admin/reset": {"post": {"tags": ["admin"]}}
        }),
        json!({}),
    );
    let names = |inc: Option<&Filter>, exc: Option<&Filter>| -> Vec<String> {
        import(&d, "", inc, exc)
            .operations
            .into_iter()
            .map(|o| o.name)
            .collect()
    };
    let methods = Filter {
        methods: vec!["get".into()],
        ..Filter::default()
    };
    assert_eq!(names(Some(&methods), None), ["listPets", "listPhotos"]);
    let tags = Filter {
        tags: vec!["pets".into()],
        ..Filter::default()
    };
    assert_eq!(names(Some(&tags), None), ["listPets", "createPet"]);
    let ids = Filter {
        operations: vec!["list*".into()],
        ..Filter::default()
    };
    // Paths in their sorted order, methods in a fixed order within a path.
    assert_eq!(names(None, Some(&ids)), ["POST_admin_reset", "createPet"]);
    let one_segment = Filter {
        paths: vec!["/pets/*".into()],
        ..Filter::default()
    };
    assert!(names(Some(&one_segment), None).is_empty());
    let any_depth = Filter {
        paths: vec!["/pets/**".into()],
        ..Filter::default()
    };
    assert_eq!(names(Some(&any_depth), None), ["listPhotos"]);
    let both = Filter {
        tags: vec!["pets".into()],
        methods: vec!["POST".into()],
        ..Filter::default()
    };
    assert_eq!(names(Some(&both), None), ["createPet"]);
    let skipped = import(&d, "", Some(&methods), None).skipped;
    assert!(
        skipped
            .iter()
            .any(|s| s.id == "createPet" && s.reason == "not included")
    );
}

#[test]
fn names_are_sanitised_and_cut() {
    assert_eq!(
        tool_name("gh_", "repos/get-content"),
        "gh_repos_get-content"
    );
    assert_eq!(tool_name("", "GET /pets/{petId}"), "GET_pets_petId");
    assert_eq!(tool_name("", &"x".repeat(100)).len(), 64);
}

#[test]
fn urls_are_filled_encoded_and_guarded() {
    let op = Operation {
        name: "t".into(),
        id: "t".into(),
        method: "GET".into(),
        path: "/files/{dir}/{name}.json".into(),
        description: String::new(),
        params: vec![
            Param {
                name: "dir".into(),
                location: Location::Path,
                required: true,
            },
            Param {
                name: "name".into(),
                location: Location::Path,
                required: true,
            },
            Param {
                name: "tag".into(),
                location: Location::Query,
                required: false,
            },
            Param {
                name: "page size".into(),
                location: Location::Query,
                required: false,
            },
        ],
        body: None,
        input_schema: json!({}),
        read_only: true,
        idempotent: true,
        destructive: false,
    };
    let args = |v: Value| v.as_object().cloned().unwrap_or_default();
    assert_eq!(
        fill_url(
            "https://h/v1",
            &op,
            &args(json!({"dir": "a/b", "name": "x?y", "tag": ["p", "q&r"], "page size": 5}))
        ),
        Ok("https://h/v1/files/a%2Fb/x%3Fy.json?tag=p&tag=q%26r&page%20size=5".to_owned())
    );
    assert_eq!(
        fill_url("https://h", &op, &args(json!({"dir": "..", "name": "n"}))),
        Err("dir".to_owned())
    );
}
