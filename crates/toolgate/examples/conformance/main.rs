//! A server built on toolgate's library that implements the fixture tools,
//! resources and prompts of the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`, run by `tests/mcp-conformance/run.sh`).
//!
//! The resources, template and prompts are declared in `server.toml` beside this
//! file; the tools are written here, as a user of the library writes tools: they
//! return every content type ([`toolgate_core::content`]), log to the client,
//! report progress, and ask the client for input and for a model's answer
//! ([`toolgate_core::ClientRequests`]).
//!
//! ```sh
//! TOOLGATE_API_KEY=dev cargo run --example conformance -- 127.0.0.1:8080
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use toolgate_config::LoadedConfig;
use toolgate_core::{CallContext, LogLevel, ToolError, content};
use toolgate_registry::Registry;
use toolgate_server::Application;

/// No arguments.
#[derive(Deserialize, JsonSchema)]
struct NoArgs {}

/// Arguments of `test_sampling`.
#[derive(Deserialize, JsonSchema)]
struct SamplingArgs {
    /// The prompt to send to the model.
    prompt: String,
}

/// Arguments of `test_elicitation`.
#[derive(Deserialize, JsonSchema)]
struct ElicitationArgs {
    /// The message to show the user.
    message: String,
}

const PIXEL: &[u8] = include_bytes!("pixel.png");
const TONE: &[u8] = include_bytes!("tone.wav");

fn text(s: &str) -> Value {
    content::output(vec![content::text(s)])
}

async fn pause(ctx: &CallContext) -> Result<(), ToolError> {
    tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(50)) => Ok(()),
        () = ctx.cancel.cancelled() => Err(ToolError::new(toolgate_core::ErrorKind::Cancelled, "cancelled")),
    }
}

fn register(registry: &mut Registry) -> Result<(), String> {
    use toolgate::native::tool;
    tool(
        "test_simple_text",
        "Returns simple text.",
        |_: NoArgs, _| async { Ok(text("This is a simple text response for testing.")) },
    )
    .read_only(true)
    .register(registry)?;
    tool(
        "test_image_content",
        "Returns an image.",
        |_: NoArgs, _| async { Ok(content::output(vec![content::image(PIXEL, "image/png")])) },
    )
    .read_only(true)
    .register(registry)?;
    tool(
        "test_audio_content",
        "Returns audio.",
        |_: NoArgs, _| async { Ok(content::output(vec![content::audio(TONE, "audio/wav")])) },
    )
    .read_only(true)
    .register(registry)?;
    tool(
        "test_embedded_resource",
        "Returns an embedded resource.",
        |_: NoArgs, _| async {
            Ok(content::output(vec![content::resource_text(
                "test://embedded-resource",
                "text/plain",
                "This is an embedded resource content.",
            )]))
        },
    )
    .read_only(true)
    .register(registry)?;
    tool(
        "test_multiple_content_types",
        "Returns text, an image and an embedded resource.",
        |_: NoArgs, _| async {
            Ok(content::output(vec![
                content::text("Multiple content types test:"),
                content::image(PIXEL, "image/png"),
                content::resource_text(
                    "test://mixed-content-resource",
                    "application/json",
                    r#"{"test":"data","value":123}"#,
                ),
            ]))
        },
    )
    .read_only(true)
    .register(registry)?;
    tool(
        "test_tool_with_logging",
        "Logs three messages while it runs.",
        |_: NoArgs, ctx: CallContext| async move {
            ctx.log(LogLevel::Info, "Tool execution started");
            pause(&ctx).await?;
            ctx.log(LogLevel::Info, "Tool processing data");
            pause(&ctx).await?;
            ctx.log(LogLevel::Info, "Tool execution completed");
            Ok(text("Tool with logging executed successfully"))
        },
    )
    .read_only(true)
    .register(registry)?;
    tool(
        "test_error_handling",
        "Always fails.",
        |_: NoArgs, _| async {
            Err(ToolError::tool(
                "This tool intentionally returns an error for testing",
            ))
        },
    )
    .read_only(true)
    .register(registry)?;
    tool(
        "test_tool_with_progress",
        "Reports progress 0, 50 and 100 of 100.",
        |_: NoArgs, ctx: CallContext| async move {
            ctx.progress.report(0.0, Some(100.0), None);
            pause(&ctx).await?;
            ctx.progress.report(50.0, Some(100.0), None);
            pause(&ctx).await?;
            ctx.progress.report(100.0, Some(100.0), None);
            Ok(text("Tool with progress executed successfully"))
        },
    )
    .read_only(true)
    .register(registry)?;
    tool(
        "test_sampling",
        "Asks the client's model.",
        |args: SamplingArgs, ctx: CallContext| async move {
            let answer = ctx
                .client()?
                .sample(json!({
                    "messages": [{"role": "user", "content": {"type": "text", "text": args.prompt}}],
                    "maxTokens": 100,
                }))
                .await?;
            let reply = answer["content"]["text"].as_str().unwrap_or_default();
            Ok(text(&format!("LLM response: {reply}")))
        },
    )
    .register(registry)?;
    tool(
        "test_elicitation",
        "Asks the user for a name and an email address.",
        |args: ElicitationArgs, ctx: CallContext| async move {
            let answer = ctx
                .client()?
                .elicit(
                    args.message,
                    json!({
                        "type": "object",
                        "properties": {
                            "username": {"type": "string", "description": "User's response"},
                            "email": {"type": "string", "description": "User's email address"}
                        },
                        "required": ["username", "email"]
                    }),
                )
                .await?;
            Ok(text(&format!("User response: {answer}")))
        },
    )
    .register(registry)?;
    tool(
        "test_elicitation_sep1034_defaults",
        "Asks for input with a default for every primitive type.",
        |_: NoArgs, ctx: CallContext| async move {
            let answer = ctx
                .client()?
                .elicit(
                    "Please review and update the form fields with defaults".to_owned(),
                    json!({
                        "type": "object",
                        "properties": {
                            "name": {"type": "string", "description": "User name", "default": "John Doe"},
                            "age": {"type": "integer", "description": "User age", "default": 30},
                            "score": {"type": "number", "description": "User score", "default": 95.5},
                            "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active"},
                            "verified": {"type": "boolean", "description": "Verification status", "default": true}
                        },
                        "required": []
                    }),
                )
                .await?;
            Ok(text(&format!("Elicitation completed: {answer}")))
        },
    )
    .register(registry)?;
    tool(
        "test_elicitation_sep1330_enums",
        "Asks for input with every enum form.",
        |_: NoArgs, ctx: CallContext| async move {
            let answer = ctx
                .client()?
                .elicit(
                    "Please select options from the enum fields".to_owned(),
                    json!({
                        "type": "object",
                        "properties": {
                            "untitledSingle": {"type": "string", "description": "Select one option", "enum": ["option1", "option2", "option3"]},
                            "titledSingle": {"type": "string", "description": "Select one option with titles", "oneOf": [
                                {"const": "value1", "title": "First Option"},
                                {"const": "value2", "title": "Second Option"},
                                {"const": "value3", "title": "Third Option"}
                            ]},
                            "legacyEnum": {"type": "string", "description": "Select one option (legacy)", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
                            "untitledMulti": {"type": "array", "description": "Select multiple options", "minItems": 1, "maxItems": 3, "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                            "titledMulti": {"type": "array", "description": "Select multiple options with titles", "minItems": 1, "maxItems": 3, "items": {"anyOf": [
                                {"const": "value1", "title": "First Choice"},
                                {"const": "value2", "title": "Second Choice"},
                                {"const": "value3", "title": "Third Choice"}
                            ]}}
                        },
                        "required": []
                    }),
                )
                .await?;
            Ok(text(&format!("Elicitation completed: {answer}")))
        },
    )
    .register(registry)?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/conformance/server.toml");
    let loaded = LoadedConfig::from_file(&file)?;
    let mut registry = Registry::from_config(&loaded)?;
    register(&mut registry).map_err(anyhow::Error::msg)?;
    let listen: SocketAddr = match std::env::args().nth(1) {
        Some(addr) => addr.parse()?,
        None => "127.0.0.1:8080".parse()?,
    };
    let app = Application::build(&loaded, registry, listen, None).await?;
    println!("serving on http://{}", app.local_addr()?);
    app.run(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
