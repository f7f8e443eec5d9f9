//! Serve a tool written in Rust next to the demo tools.
//!
//! ```sh
//! TOOLGATE_API_KEY=dev cargo run --example native_tool
//! curl -s localhost:8080/api/v1/tools/word_count -H 'X-Tool-API-Key: dev' \
//!      -H 'Content-Type: application/json' -d '{"text": "to be or not to be"}'
//! ```

use std::net::SocketAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use toolgate_config::LoadedConfig;
use toolgate_registry::Registry;
use toolgate_server::Application;

/// Arguments of `word_count`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WordCountArgs {
    /// The text to count words in.
    text: String,
    /// Count case-insensitively.
    #[serde(default)]
    ignore_case: bool,
}

/// Output of `word_count`.
#[derive(Serialize, JsonSchema)]
struct WordCount {
    words: usize,
    distinct: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let loaded = LoadedConfig::demo()?;
    let mut registry = Registry::from_config(&loaded)?;
    toolgate::native::tool(
        "word_count",
        "Count the words of a text, and how many are distinct.",
        |args: WordCountArgs, _ctx| async move {
            let words: Vec<String> = args
                .text
                .split_whitespace()
                .map(|w| {
                    if args.ignore_case {
                        w.to_lowercase()
                    } else {
                        w.to_owned()
                    }
                })
                .collect();
            let distinct = words.iter().collect::<std::collections::HashSet<_>>().len();
            Ok(json!(WordCount {
                words: words.len(),
                distinct
            }))
        },
    )
    .read_only(true)
    .output::<WordCount>()
    .register(&mut registry)
    .map_err(anyhow::Error::msg)?;

    let addr: SocketAddr = "127.0.0.1:8080".parse()?;
    let app = Application::build(&loaded, registry, addr, None).await?;
    println!("serving on http://{}", app.local_addr()?);
    app.run(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
