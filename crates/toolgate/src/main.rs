//! The `toolgate` binary: parse the command line and hand over to the library.

use clap::Parser;

/// mimalloc instead of the libc allocator (the `mimalloc` feature; the container
/// image's static musl build turns it on).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let cli = toolgate::Cli::parse();
    let code = toolgate::run(cli).await;
    std::process::exit(code);
}
