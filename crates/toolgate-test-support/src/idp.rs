//! [`Idp`]: a real OAuth 2.1 / OpenID Connect authorization server for a test
//! (`tests/idp/server.mjs`, on the npm package `oidc-provider`), on a free port of
//! 127.0.0.1, stopped on drop (and by itself if the test process dies: it exits when
//! its stdin closes).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{Context, bail};
use serde_json::Value;

/// A running test identity provider.
#[derive(Debug)]
pub struct Idp {
    child: Child,
    _stdin: ChildStdin,
    _config: tempfile::NamedTempFile,
    /// `http://127.0.0.1:PORT`, the `iss` of its tokens.
    pub issuer: String,
    client: reqwest::Client,
}

/// Starts tried before giving up.
const START_ATTEMPTS: usize = 3;
/// How long one start may take to print its ready line.
const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// `tests/idp` of this repository.
fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/idp")
}

impl Idp {
    /// Whether it can run here: `node` on the PATH and `npm ci` done in `tests/idp`.
    #[must_use]
    pub fn available() -> bool {
        dir().join("node_modules/oidc-provider").exists()
            && Command::new("node")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
    }

    /// Start it with `config` (the format of `tests/idp/README.md`).
    ///
    /// # Errors
    /// Node or the server failed to start.
    pub fn start(config: &Value) -> anyhow::Result<Self> {
        let mut file = tempfile::NamedTempFile::new()?;
        std::io::Write::write_all(&mut file, config.to_string().as_bytes())?;
        // Now and then (about one start in a few hundred here) node stalls before it
        // listens and never prints its ready line. A start is therefore bounded, and
        // a stalled one is killed and tried again: the tests need a working IdP, not
        // this one process.
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(file.path())? {
                Ok((child, stdin, ready)) => return Self::ready(child, stdin, file, &ready),
                Err(why) => last = why,
            }
        }
        bail!("the test IdP did not start in {START_ATTEMPTS} attempts: {last}")
    }

    /// One start: the child and its ready line, or why there is none.
    #[allow(clippy::type_complexity)]
    fn start_once(
        config: &std::path::Path,
    ) -> anyhow::Result<Result<(Child, ChildStdin, Value), String>> {
        let mut child = Command::new("node")
            .arg(dir().join("server.mjs"))
            .arg(config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("node tests/idp/server.mjs")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = tx.send(read);
        });
        let outcome = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) => match serde_json::from_str::<Value>(&line) {
                Ok(ready) => return Ok(Ok((child, stdin, ready))),
                Err(_) => format!("it printed {line:?}"),
            },
            Ok(Err(e)) => format!("reading its stdout: {e}"),
            Err(_) => format!("no ready line within {} s", START_TIMEOUT.as_secs()),
        };
        let _ = child.kill();
        let _ = child.wait();
        Ok(Err(outcome))
    }

    fn ready(
        child: Child,
        stdin: ChildStdin,
        file: tempfile::NamedTempFile,
        ready: &Value,
    ) -> anyhow::Result<Self> {
        let issuer = ready["issuer"]
            .as_str()
            .context("no issuer in the ready line")?
            .to_owned();
        Ok(Self {
            child,
            _stdin: stdin,
            _config: file,
            issuer,
            // Every request to it is bounded: a stuck IdP fails the test, not hangs it.
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(20))
                .build()?,
        })
    }

    /// A client-credentials access token of `client` for `resource`.
    ///
    /// # Errors
    /// The token endpoint refused.
    pub async fn client_token(
        &self,
        client: (&str, &str),
        resource: &str,
        scope: &str,
    ) -> anyhow::Result<String> {
        let resp = self
            .client
            .post(format!("{}/token", self.issuer))
            .basic_auth(client.0, Some(client.1))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", resource),
                ("scope", scope),
            ])
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if !status.is_success() {
            bail!("token endpoint: {status} {body}");
        }
        Ok(body["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned())
    }

    /// `POST /admin/<what>` with `body`; the JSON answer.
    ///
    /// # Errors
    /// The admin endpoint failed.
    pub async fn admin(&self, what: &str, body: &Value) -> anyhow::Result<Value> {
        let resp = self
            .client
            .post(format!("{}/admin/{what}", self.issuer))
            .json(body)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("admin/{what}: {}", resp.status());
        }
        Ok(resp.json().await?)
    }

    /// How many requests it served for `path` (e.g. `/jwks`).
    ///
    /// # Errors
    /// The admin endpoint failed.
    pub async fn requests(&self, path: &str) -> anyhow::Result<u64> {
        let stats: Value = self
            .client
            .get(format!("{}/admin/stats", self.issuer))
            .send()
            .await?
            .json()
            .await?;
        Ok(stats["requests"][path].as_u64().unwrap_or(0))
    }

    /// The current signing key's id.
    ///
    /// # Errors
    /// The admin endpoint failed.
    pub async fn current_kid(&self) -> anyhow::Result<String> {
        let keys: Value = self
            .client
            .get(format!("{}/admin/keys", self.issuer))
            .send()
            .await?
            .json()
            .await?;
        Ok(keys["current"]
            .as_str()
            .context("no current kid")?
            .to_owned())
    }

    /// `claims` signed as they are with the current key (`query`: e.g. `fill=1`).
    ///
    /// # Errors
    /// The admin endpoint failed.
    pub async fn sign(&self, claims: &Value, query: &str) -> anyhow::Result<String> {
        let resp = self
            .client
            .post(format!("{}/admin/sign?{query}", self.issuer))
            .json(claims)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("admin/sign: {}", resp.status());
        }
        Ok(resp.text().await?.trim().to_owned())
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
