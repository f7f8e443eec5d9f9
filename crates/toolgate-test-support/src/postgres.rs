//! [`PrivatePostgres`]: a PostgreSQL server of one test's own, so that the test can
//! really stop it (a clean shutdown or a crash) and start it again without touching
//! the shared server that every other test uses at the same time.
//!
//! It runs the machine's own PostgreSQL binaries (`initdb`, `pg_ctl`) on a data
//! directory in a temporary directory, listening on a free port of 127.0.0.1 only,
//! with trust authentication for `postgres`. PostgreSQL refuses to run as root, so
//! under root the binaries run as the `postgres` user (`runuser`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, bail};

/// How [`PrivatePostgres::stop`] stops the server (`pg_ctl stop -m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Sessions are ended with an error, then a clean shutdown: an operator's restart.
    Fast,
    /// Every process is killed at once, as in a crash; the next start replays the WAL.
    Immediate,
}

/// A PostgreSQL server on 127.0.0.1 that the test owns; stopped and removed on drop.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Run the binaries as `postgres` (this process is root).
    as_postgres: bool,
}

/// The directory holding `pg_ctl` and `initdb`: on `PATH`, or Debian's
/// `/usr/lib/postgresql/<version>/bin` (newest version first).
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("pg_ctl").exists() && b.join("initdb").exists())
        .collect();
    found.sort();
    if let Some(b) = found.pop() {
        return Some(b);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("pg_ctl").exists() && p.join("initdb").exists())
    })
}

fn checked(out: std::io::Result<Output>, what: &str) -> anyhow::Result<()> {
    let out = out.with_context(|| format!("{what}: cannot run"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

impl PrivatePostgres {
    /// Whether the PostgreSQL binaries are installed here.
    #[must_use]
    pub fn available() -> bool {
        bin_dir().is_some()
    }

    /// Create a cluster in a temporary directory and start it on a free port.
    ///
    /// # Errors
    /// The binaries are missing, or `initdb` or the first start failed.
    pub fn start() -> anyhow::Result<Self> {
        let bin = bin_dir().context("no PostgreSQL binaries (initdb, pg_ctl) on this machine")?;
        let dir = tempfile::Builder::new()
            .prefix("toolgate-pg-")
            .tempdir()
            .context("temporary directory")?;
        let as_postgres = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        if as_postgres {
            let ids = Command::new("id").args(["-u", "postgres"]).output();
            let uid: u32 = ids
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .and_then(|s| s.trim().parse().ok())
                .context("running as root, and there is no `postgres` user to run PostgreSQL as")?;
            std::os::unix::fs::chown(dir.path(), Some(uid), None)
                .context("giving the data directory to postgres")?;
        }
        // A free port: bound and released at once. Another process could take it in
        // between; the start then fails loudly rather than silently.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let pg = Self {
            bin,
            dir,
            port,
            as_postgres,
        };
        checked(
            pg.command("initdb")
                .arg("-D")
                .arg(pg.data())
                .args([
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ])
                .output(),
            "initdb",
        )?;
        pg.start_again()?;
        Ok(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// The port it listens on (127.0.0.1).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port`.
    #[must_use]
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A URL for database `postgres` as user `postgres`, without TLS.
    #[must_use]
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@{}/postgres?sslmode=disable",
            self.host_port()
        )
    }

    /// The data directory's parent (the server's log is `log` there).
    #[must_use]
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Start the server (again) and wait until it accepts connections.
    ///
    /// # Errors
    /// `pg_ctl start` failed.
    pub fn start_again(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=50",
            self.port,
            self.dir.path().display()
        );
        checked(
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.path().join("log"))
                .args(["-o", &options, "-w", "-t", "60", "start"])
                .output(),
            "pg_ctl start",
        )
    }

    /// Stop the server and wait until it is gone.
    ///
    /// # Errors
    /// `pg_ctl stop` failed.
    pub fn stop(&self, how: Shutdown) -> anyhow::Result<()> {
        let mode = match how {
            Shutdown::Fast => "fast",
            Shutdown::Immediate => "immediate",
        };
        checked(
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", mode, "-w", "-t", "60", "stop"])
                .output(),
            "pg_ctl stop",
        )
    }

    /// Run `sql` with `psql` (on the machine's PATH) as `postgres`.
    ///
    /// # Errors
    /// psql failed.
    pub fn psql(&self, sql: &str) -> anyhow::Result<String> {
        let out = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-qAtc", sql])
            .output()
            .context("psql: cannot run")?;
        if !out.status.success() {
            bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.stop(Shutdown::Immediate);
    }
}
