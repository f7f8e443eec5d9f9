//! `toolgate approvals list|approve|deny`: an approver's side of approval gates,
//! through the server's REST API (`/api/v1/approvals`) as the key in
//! `TOOLGATE_API_KEY`. The server decides who may approve: the CLI only asks.

use serde_json::{Value, json};

use super::{EXIT_FAILURE, EXIT_USAGE};
use crate::cli::ApprovalsCommand;

pub(super) async fn run(url: &str, command: ApprovalsCommand) -> i32 {
    let Ok(key) = std::env::var("TOOLGATE_API_KEY") else {
        eprintln!("toolgate: approvals: set TOOLGATE_API_KEY to an approver's key");
        return EXIT_USAGE;
    };
    let base = url.trim_end_matches('/');
    let client = reqwest::Client::new();
    let (request, list, json_out) = match &command {
        ApprovalsCommand::List { json } => {
            (client.get(format!("{base}/api/v1/approvals")), true, *json)
        }
        ApprovalsCommand::Approve { id, comment } | ApprovalsCommand::Deny { id, comment } => {
            let verb = if matches!(command, ApprovalsCommand::Approve { .. }) {
                "approve"
            } else {
                "deny"
            };
            let body = comment
                .as_ref()
                .map_or_else(|| json!({}), |c| json!({ "comment": c }));
            (
                client
                    .post(format!("{base}/api/v1/approvals/{id}/{verb}"))
                    .json(&body),
                false,
                true,
            )
        }
    };
    let response = match request.header("x-tool-api-key", key).send().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("toolgate: approvals: {base}: {e}");
            return EXIT_FAILURE;
        }
    };
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let detail = body["detail"].as_str().unwrap_or("no detail");
        let code = body["code"].as_str().unwrap_or("error");
        eprintln!("toolgate: approvals: {} {code}: {detail}", status.as_u16());
        return EXIT_FAILURE;
    }
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else if list {
        let items = body["approvals"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            println!("no pending approvals");
        }
        for a in items {
            println!(
                "{}  {}  by {}  expires {}  arguments {}",
                a["id"].as_str().unwrap_or_default(),
                a["tool"].as_str().unwrap_or_default(),
                a["owner"].as_str().unwrap_or_default(),
                a["approval"]["expires_at"].as_str().unwrap_or_default(),
                a["arguments"],
            );
        }
    }
    0
}
