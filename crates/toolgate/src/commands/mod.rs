//! The subcommands. Each returns the process exit code: 0 success, 1 failure of the
//! operation (a tool failed, a check found problems), 2 bad usage or configuration.

mod approvals;
mod audit;
mod healthcheck;
mod inspect;
mod keys;
mod serve;

use toolgate_config::{LoadedConfig, Problems};
use toolgate_registry::Registry;
use toolgate_telemetry::LogFormat;

use crate::cli::{AuditCommand, Cli, Command, ConfigArg, KeysCommand, LogFormatArg};

/// Exit code: the operation failed.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code: bad usage or configuration.
pub const EXIT_USAGE: i32 = 2;

/// Run `cli`.
pub async fn dispatch(cli: Cli) -> i32 {
    let format = match cli.log_format {
        LogFormatArg::Json => LogFormat::Json,
        LogFormatArg::Pretty => LogFormat::Pretty,
    };
    // Logging is for `serve`; one-shot commands log only warnings so their output
    // stays readable.
    let level = match cli.command {
        Command::Serve { .. } | Command::Stdio { .. } => cli.log_level.as_str(),
        _ => "warn",
    };
    let _guard = match toolgate_telemetry::init(format, level) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("toolgate: {e}");
            return EXIT_USAGE;
        }
    };
    match cli.command {
        Command::Serve { config, listen } => serve::serve(&config, listen).await,
        Command::Stdio { config } => serve::stdio(&config).await,
        Command::Check { file } => inspect::check(&file).await,
        Command::Tools { config, json } => inspect::tools(&config, json).await,
        Command::Call { tool, args, config } => inspect::call(&config, &tool, &args).await,
        Command::Approvals { command, url } => approvals::run(&url, command).await,
        Command::Openapi { config } => inspect::openapi(&config).await,
        Command::Healthcheck { url, timeout_ms } => {
            healthcheck::healthcheck(&url, std::time::Duration::from_millis(timeout_ms)).await
        }
        Command::Keys {
            command: KeysCommand::New { name, scopes },
        } => keys::new_key(&name, &scopes),
        Command::Audit { command } => match command {
            AuditCommand::List {
                db,
                key,
                tool,
                outcome,
                since,
                until,
                limit,
            } => {
                let filter = toolgate_audit::Filter {
                    key,
                    tool,
                    outcome,
                    since,
                    until,
                    limit,
                };
                // On a thread of its own: the PostgreSQL client runs its own runtime.
                on_thread(move || audit::list(&db, &filter))
            }
            AuditCommand::Verify { db, heads } => on_thread(move || audit::verify(&db, &heads)),
        },
    }
}

/// Run `f` on a plain thread and return its exit code.
fn on_thread(f: impl FnOnce() -> i32 + Send + 'static) -> i32 {
    std::thread::spawn(f).join().unwrap_or(EXIT_FAILURE)
}

/// Load the config named by `arg` (the demo without one) and build its registry,
/// printing every problem to stderr.
async fn load(arg: &ConfigArg) -> Result<(LoadedConfig, Registry), i32> {
    let loaded = match &arg.config {
        Some(path) => LoadedConfig::from_file(path),
        None => LoadedConfig::demo(),
    };
    let loaded = loaded.map_err(|p| report(&p))?;
    let registry = Registry::load(&loaded).await.map_err(|p| report(&p))?;
    Ok((loaded, registry))
}

fn report(problems: &Problems) -> i32 {
    for p in &problems.0 {
        eprintln!("{p}");
    }
    eprintln!(
        "toolgate: {} problem(s) in the configuration",
        problems.0.len()
    );
    EXIT_USAGE
}
