//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// toolgate: serve tools to AI agents over REST with OpenAPI.
#[derive(Debug, Parser)]
#[command(name = "toolgate", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormatArg::Json)]
    pub log_format: LogFormatArg,
    /// Log filter (`info`, `debug`, `toolgate_server=debug,info`). The default quiets
    /// the MCP library's per-request lines, which cost more than the call itself, and
    /// the file watcher's chatter when a watched config file is replaced.
    #[arg(
        long,
        global = true,
        env = "TOOLGATE_LOG",
        default_value = "info,rmcp=warn,notify=warn"
    )]
    pub log_level: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// Configuration file (TOML). Without it, the embedded demo configuration.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the tools over HTTP (the demo tools on 127.0.0.1:8080 without --config).
    Serve {
        /// Configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// Listen address, overriding the config's.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Serve the tools, resources and prompts over MCP on stdin and stdout, for
    /// desktop clients that launch a local server (logs go to stderr). The caller is
    /// the key in TOOLGATE_STDIO_KEY, or without one the process owner with every
    /// scope (unless `[server] stdio_require_key`).
    Stdio {
        /// Configuration.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Validate a configuration file; every problem is listed with file and line.
    Check {
        /// The file to check.
        file: PathBuf,
    },
    /// List the configured tools.
    Tools {
        /// Configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON as `GET /api/v1/tools` would.
        #[arg(long)]
        json: bool,
    },
    /// Run one tool in-process and print its output.
    Call {
        /// Tool name.
        tool: String,
        /// Arguments, a JSON object.
        #[arg(long, default_value = "{}")]
        args: String,
        /// Configuration.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Manage API keys.
    Keys {
        /// Key command.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Read the audit log: list records, verify the hash chain.
    Audit {
        /// Audit command.
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// List, approve and deny the approval requests of a running server (as the
    /// key in TOOLGATE_API_KEY, which must be an approver; never the caller's own).
    Approvals {
        /// Approval command.
        #[command(subcommand)]
        command: ApprovalsCommand,
        /// The server.
        #[arg(
            long,
            global = true,
            env = "TOOLGATE_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        url: String,
    },
    /// Print the OpenAPI 3.1 document.
    Openapi {
        /// Configuration.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// GET a health URL; exit 0 on `200`, 1 otherwise (for container health checks in
    /// images without a shell or curl).
    Healthcheck {
        /// The URL (plain `http://`).
        #[arg(
            long,
            env = "TOOLGATE_HEALTHCHECK_URL",
            default_value = "http://127.0.0.1:8080/healthz"
        )]
        url: String,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
}

/// Key subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a key; prints the key (give it to the client) and its hash (put it in
    /// the config).
    New {
        /// Name shown in logs.
        #[arg(long)]
        name: String,
        /// Tool-name patterns, comma-separated (`echo,db_*`; `*` for all).
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
    },
}

/// Where the audit database is: `--db`, or the `[audit] path` of `--config`.
#[derive(Debug, Clone, Args)]
pub struct AuditDb {
    /// The audit database file.
    #[arg(long, conflicts_with = "config")]
    pub db: Option<PathBuf>,
    /// A configuration whose `[audit] path` names the database.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

/// Audit subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List records (JSON lines, oldest first).
    List {
        /// Where the log is.
        #[command(flatten)]
        db: AuditDb,
        /// Only this key (its name).
        #[arg(long)]
        key: Option<String>,
        /// Only this tool.
        #[arg(long)]
        tool: Option<String>,
        /// Only this outcome (`ok`, `timeout`, ...).
        #[arg(long)]
        outcome: Option<String>,
        /// From this time (RFC 3339, inclusive).
        #[arg(long)]
        since: Option<String>,
        /// Before this time (RFC 3339, exclusive).
        #[arg(long)]
        until: Option<String>,
        /// At most this many, the newest.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Recompute the hash chain; exit 1 if it is broken.
    Verify {
        /// Where the log is.
        #[command(flatten)]
        db: AuditDb,
        /// A head published earlier (`SEQ:HASH`, from the `audit chain head` log
        /// line): the log must still hold that record with that hash. Repeatable.
        #[arg(long = "head", value_name = "SEQ:HASH")]
        heads: Vec<String>,
    },
}

/// Approval subcommands.
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// The pending requests this key may decide (one line each; `--json` for JSON).
    List {
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a request: the job then runs, once, with the arguments shown.
    Approve {
        /// The approval (job) id.
        id: String,
        /// Why (required when the tool says `reason_required`).
        #[arg(long)]
        comment: Option<String>,
    },
    /// Deny a request: the job fails with `approval_denied`.
    Deny {
        /// The approval (job) id.
        id: String,
        /// Why (required when the tool says `reason_required`).
        #[arg(long)]
        comment: Option<String>,
    },
}
