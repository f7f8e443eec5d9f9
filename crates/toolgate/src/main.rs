//! The `toolgate` binary: parse the command line and hand over to the library.

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = toolgate::Cli::parse();
    let code = toolgate::run(cli).await;
    std::process::exit(code);
}
