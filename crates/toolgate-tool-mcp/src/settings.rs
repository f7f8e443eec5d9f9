//! [`UpstreamSettings`]: everything about one `[sources.NAME] kind = "mcp"` that the
//! connection depends on. Two sources with equal settings share one connection, and a
//! reload that leaves them equal keeps it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toolgate_config::SourceConfig;

/// Longest the first connection and listing may take unless configured.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest tool result taken from an upstream unless configured (`max_response_bytes`).
pub const DEFAULT_MAX_RESULT_BYTES: usize = 4 * 1024 * 1024;

/// The revision spoken to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// 2026-07-28's `server/discover`, falling back to 2025-11-25's `initialize`.
    Auto,
    /// 2026-07-28 only (stateless).
    Modern,
    /// 2025-11-25's `initialize` handshake (sessions).
    Legacy,
}

/// An OAuth client-credentials grant for the upstream's token.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OAuth {
    /// The token endpoint.
    pub token_url: String,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// Scopes asked for.
    pub scope: Option<String>,
    /// RFC 8707 resource asked for.
    pub resource: Option<String>,
}

impl fmt::Debug for OAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// How the upstream is reached.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Streamable HTTP at `url`.
    Http {
        /// The endpoint.
        url: String,
        /// Headers sent with every request (values are secrets).
        headers: Vec<(String, String)>,
        /// A token of the upstream's own.
        oauth: Option<OAuth>,
    },
    /// A child process speaking MCP on stdin/stdout.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Its whole environment.
        env: Vec<(String, String)>,
        /// Its working directory.
        cwd: PathBuf,
    },
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Http { url, oauth, .. } => f
                .debug_struct("Http")
                .field("url", url)
                .field("oauth", oauth)
                .finish_non_exhaustive(),
            Transport::Stdio {
                command, args, cwd, ..
            } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("cwd", cwd)
                .finish_non_exhaustive(),
        }
    }
}

/// One upstream's settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpstreamSettings {
    /// The source's name, for logs and errors.
    pub source: String,
    /// How it is reached.
    pub transport: Transport,
    /// The revision.
    pub protocol: Protocol,
    /// Longest the first connection and listing may take.
    pub connect_timeout: Duration,
    /// Largest result taken.
    pub max_result_bytes: usize,
}

impl UpstreamSettings {
    /// The settings of source `name` (already validated), with paths relative to
    /// `base_dir` and the allowed variables read from this process's environment.
    ///
    /// # Errors
    /// Something validation cannot see: a directory that does not exist.
    pub fn from_config(name: &str, s: &SourceConfig, base_dir: &Path) -> Result<Self, String> {
        let transport = if let Some(cmd) = &s.command {
            let command = cmd.get_ref().as_str().to_owned();
            let mut env: Vec<(String, String)> = Vec::new();
            let mut allow: Vec<&str> = s.env_allow.iter().map(String::as_str).collect();
            // A bare program name is looked up on PATH, so PATH goes too.
            if !command.contains('/') && !allow.contains(&"PATH") && !s.env.contains_key("PATH") {
                allow.push("PATH");
            }
            for var in allow {
                if let Ok(v) = std::env::var(var) {
                    env.push((var.to_owned(), v));
                }
            }
            for (k, v) in &s.env {
                env.retain(|(name, _)| name != k);
                env.push((k.clone(), v.get_ref().as_str().to_owned()));
            }
            let cwd = match &s.cwd {
                Some(d) => base_dir.join(d.get_ref().as_str()),
                None if base_dir.as_os_str().is_empty() => PathBuf::from("."),
                None => base_dir.to_path_buf(),
            };
            if !cwd.is_dir() {
                return Err(format!("cwd {} is not a directory", cwd.display()));
            }
            Transport::Stdio {
                command,
                args: s.args.iter().map(|a| a.as_str().to_owned()).collect(),
                env,
                cwd,
            }
        } else if let Some(url) = &s.url {
            Transport::Http {
                url: url.get_ref().as_str().to_owned(),
                headers: s
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.get_ref().as_str().to_owned()))
                    .collect(),
                oauth: s.oauth.as_ref().map(|o| {
                    let o = o.get_ref();
                    OAuth {
                        token_url: o.token_url.as_str().to_owned(),
                        client_id: o.client_id.as_str().to_owned(),
                        client_secret: o.client_secret.as_str().to_owned(),
                        scope: o.scope.clone(),
                        resource: o.resource.clone(),
                    }
                }),
            }
        } else {
            return Err("an mcp source needs `url` or `command`".to_owned());
        };
        let protocol = match s.protocol.as_ref().map(|p| p.get_ref().as_str()) {
            Some("2026-07-28") => Protocol::Modern,
            Some("2025-11-25") => Protocol::Legacy,
            _ => Protocol::Auto,
        };
        Ok(Self {
            source: name.to_owned(),
            transport,
            protocol,
            connect_timeout: s
                .connect_timeout_ms
                .as_ref()
                .map_or(DEFAULT_CONNECT_TIMEOUT, |ms| {
                    Duration::from_millis(*ms.get_ref())
                }),
            max_result_bytes: s.max_response_bytes.unwrap_or(DEFAULT_MAX_RESULT_BYTES),
        })
    }
}
