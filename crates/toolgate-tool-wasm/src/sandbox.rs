//! What a call may touch. Everything is denied unless the tool declares it: no
//! environment variables, no directories, no network (WASI preview 1 has no socket
//! creation, and no socket is pre-opened), and frozen clocks. Each call gets a new
//! WASI context, so nothing leaks from one call to the next.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use toolgate_core::CancellationToken;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, HostMonotonicClock, HostWallClock, WasiCtxBuilder};

use crate::limits::Limits;

/// The state of one store (one call).
pub struct CallState {
    /// The WASI preview 1 context.
    pub(crate) wasi: WasiP1Ctx,
    /// Memory and table limits.
    pub(crate) limits: Limits,
    /// When the call must stop (checked at every epoch tick).
    pub(crate) deadline: Instant,
    /// Fires when the caller cancels.
    pub(crate) cancel: CancellationToken,
}

/// A host directory the module may open.
#[derive(Debug, Clone)]
pub struct Preopen {
    /// The directory on the host.
    pub host: PathBuf,
    /// Its path in the guest.
    pub guest: String,
    /// Read-only (the default) or read-write.
    pub read_only: bool,
}

/// The capabilities a tool declares.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    /// `argv[0]`: the tool's name.
    pub program: String,
    /// Environment variables, read at load.
    pub env: Vec<(String, String)>,
    /// Directories.
    pub dirs: Vec<Preopen>,
    /// The real clocks, or frozen ones.
    pub real_clock: bool,
}

/// The in-memory stdio of one call.
pub struct Stdio {
    /// The arguments as JSON.
    pub stdin: Vec<u8>,
    /// Collects the output.
    pub stdout: MemoryOutputPipe,
    /// Collects diagnostics.
    pub stderr: MemoryOutputPipe,
}

impl Capabilities {
    /// A fresh WASI context for one call.
    ///
    /// # Errors
    /// A declared directory cannot be opened now (it was there at load).
    pub fn wasi(&self, stdio: Stdio) -> Result<WasiP1Ctx, String> {
        let mut b = WasiCtxBuilder::new();
        b.stdin(MemoryInputPipe::new(stdio.stdin))
            .stdout(stdio.stdout)
            .stderr(stdio.stderr)
            .arg(&self.program)
            .envs(&self.env);
        if !self.real_clock {
            b.wall_clock(FrozenClock).monotonic_clock(FrozenClock);
        }
        for d in &self.dirs {
            let perms = if d.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            b.preopened_dir(&d.host, &d.guest, perms)
                .map_err(|e| format!("cannot open {}: {e}", d.host.display()))?;
        }
        Ok(b.build_p1())
    }
}

/// The clock of a module that may not read the time: always the Unix epoch (wall)
/// and zero (monotonic), so a module cannot time anything, nor learn the date.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}
