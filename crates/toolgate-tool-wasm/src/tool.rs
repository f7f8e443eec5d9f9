//! [`WasmTool`]: a module loaded once, then run in a fresh store per call.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::{Value, json};
use toolgate_config::ToolConfig;
use toolgate_core::{CallContext, Tool, ToolError, ToolOutput};
use wasmtime::{ExternType, Store, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::engine::{self, Prepared};
use crate::limits::{DEFAULT_MAX_MEMORY_BYTES, DEFAULT_MAX_TABLE_ELEMENTS, LimitExceeded, Limits};
use crate::outcome::{Finished, Interrupted, interpret};
use crate::sandbox::{CallState, Capabilities, Preopen, Stdio};

/// Default `max_output_bytes`: 1 MiB.
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 1024 * 1024;
/// stderr kept per call (for the log); more is cut off, which the guest sees as a
/// closed stream, never a failure of the call by itself.
const STDERR_CAPTURED: usize = 16 * 1024;

/// Why a `wasm` tool cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The module file cannot be read.
    #[error("cannot read module {path}: {source}")]
    Read {
        /// The resolved path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The module does not compile, link or fit the ABI.
    #[error("module {path}: {message}")]
    Module {
        /// The resolved path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An `allow_dirs` host directory is missing.
    #[error("allow_dirs: {0} is not a directory")]
    Dir(PathBuf),
    /// The output schema does not compile.
    #[error("output_schema is not a valid JSON Schema: {0}")]
    OutputSchema(String),
    /// The tool has no `module` (validation rules this out).
    #[error("needs `module`")]
    NoModule,
}

/// A `wasm` tool: a WASI preview 1 command reading its arguments as JSON on stdin
/// and writing its output as JSON on stdout.
pub struct WasmTool {
    name: String,
    prepared: Arc<Prepared>,
    caps: Capabilities,
    max_memory: u64,
    max_table: u64,
    max_output: usize,
    output_schema: Option<jsonschema::Validator>,
}

impl WasmTool {
    /// Load the tool `t` declares: read and compile its module (or take it from the
    /// cache), check it is a command within the memory limit, and pre-instantiate
    /// it. Relative paths are resolved against `base_dir`, the config file's
    /// directory.
    ///
    /// # Errors
    /// The module cannot be read, compiled or linked, is not a WASI command, a
    /// declared directory is missing, or the output schema is invalid.
    pub fn new(t: &ToolConfig, base_dir: &Path) -> Result<Self, LoadError> {
        let module = t.module.as_ref().ok_or(LoadError::NoModule)?;
        let path = resolve(base_dir, module.get_ref().as_str());
        let bytes = std::fs::read(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        let max_memory = t
            .max_memory_bytes
            .as_ref()
            .map_or(DEFAULT_MAX_MEMORY_BYTES, |m| *m.get_ref());
        let bad_module = |message: String| LoadError::Module {
            path: path.clone(),
            message,
        };
        let prepared = engine::prepare(&bytes).map_err(bad_module)?;
        check_abi(&prepared, max_memory).map_err(bad_module)?;
        let output_schema = t
            .output_schema
            .as_ref()
            .map(jsonschema::validator_for)
            .transpose()
            .map_err(|e| LoadError::OutputSchema(e.to_string()))?;
        let max_output = t
            .max_output_bytes
            .as_ref()
            .map_or(DEFAULT_MAX_OUTPUT_BYTES, |m| *m.get_ref());
        Ok(Self {
            name: t.name.get_ref().clone(),
            prepared,
            caps: capabilities(t, base_dir)?,
            max_memory,
            max_table: t
                .max_table_elements
                .as_ref()
                .map_or(DEFAULT_MAX_TABLE_ELEMENTS, |m| *m.get_ref()),
            max_output: usize::try_from(max_output).unwrap_or(usize::MAX),
            output_schema,
        })
    }

    /// The kind's description, used when the config gives none.
    #[must_use]
    pub fn description() -> &'static str {
        "Run a sandboxed WebAssembly tool."
    }

    /// The input schema of `t`: from `params`, else `input_schema`, else any object.
    #[must_use]
    pub fn input_schema(t: &ToolConfig) -> Value {
        if !t.params.is_empty() {
            return toolgate_config::params_schema(&t.params);
        }
        t.input_schema
            .clone()
            .unwrap_or_else(|| json!({"type": "object"}))
    }

    /// Whether `t` can change nothing: true unless it may write a directory.
    #[must_use]
    pub fn read_only(t: &ToolConfig) -> bool {
        t.allow_dirs.iter().all(|d| d.get_ref().read_only)
    }

    /// One run in a fresh store. Returns what `_start` returned and the limit hit.
    async fn run(&self, state: CallState) -> (wasmtime::Result<()>, Option<LimitExceeded>) {
        let mut store = Store::new(self.prepared.module().engine(), state);
        store.limiter(|s| &mut s.limits);
        // Enter the callback at the next tick, and at every tick after it.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|cx| {
            let s = cx.data();
            if s.cancel.is_cancelled() {
                return Err(wasmtime::Error::new(Interrupted::Cancelled));
            }
            if Instant::now() >= s.deadline {
                return Err(wasmtime::Error::new(Interrupted::Deadline));
            }
            Ok(UpdateDeadline::Yield(1))
        });
        let result = async {
            let instance = self.prepared.instantiate_async(&mut store).await?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call_async(&mut store, ()).await
        }
        .await;
        (result, store.data().limits.hit)
    }
}

#[async_trait]
impl Tool for WasmTool {
    async fn call(&self, arguments: Value, ctx: CallContext) -> Result<ToolOutput, ToolError> {
        let stdin = serde_json::to_vec(&arguments)
            .map_err(|e| ToolError::tool(format!("cannot encode the arguments: {e}")))?;
        // One byte over the cap tells "exactly the cap" from "more".
        let stdout = MemoryOutputPipe::new(self.max_output.saturating_add(1));
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURED);
        let stdio = Stdio {
            stdin,
            stdout: stdout.clone(),
            stderr: stderr.clone(),
        };
        let wasi = self.caps.wasi(stdio).map_err(|e| {
            tracing::warn!(tool = %self.name, error = %e, "wasm tool sandbox");
            ToolError::tool("a directory in allow_dirs cannot be opened")
        })?;
        let state = CallState {
            wasi,
            limits: Limits::new(self.max_memory, self.max_table),
            deadline: ctx.deadline.into_std(),
            cancel: ctx.cancel.clone(),
        };
        let (result, limit_hit) = self.run(state).await;
        let finished = Finished {
            result,
            stdout: stdout.contents().to_vec(),
            stderr: stderr.contents().to_vec(),
            limit_hit,
        };
        interpret(
            &self.name,
            finished,
            self.max_output,
            self.output_schema.as_ref(),
        )
    }
}

fn resolve(base_dir: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

fn capabilities(t: &ToolConfig, base_dir: &Path) -> Result<Capabilities, LoadError> {
    let mut dirs = Vec::new();
    for d in &t.allow_dirs {
        let d = d.get_ref();
        let host = resolve(base_dir, d.host.as_str());
        if !host.is_dir() {
            return Err(LoadError::Dir(host));
        }
        dirs.push(Preopen {
            host,
            guest: d.guest.clone(),
            read_only: d.read_only,
        });
    }
    Ok(Capabilities {
        program: t.name.get_ref().clone(),
        env: t.wasm_env(),
        dirs,
        real_clock: t.allow_clock.unwrap_or(false),
    })
}

/// A WASI command exports `_start: () -> ()`; an exported memory must start within
/// the limit (otherwise every call would fail).
fn check_abi(prepared: &Prepared, max_memory: u64) -> Result<(), String> {
    let module = prepared.module();
    match module.get_export("_start") {
        Some(ExternType::Func(f)) if f.params().len() == 0 && f.results().len() == 0 => {}
        _ => return Err("is not a WASI command: it must export `_start: () -> ()`".to_owned()),
    }
    for export in module.exports() {
        if let ExternType::Memory(m) = export.ty() {
            let initial = m.minimum().saturating_mul(m.page_size());
            if initial > max_memory {
                return Err(format!(
                    "its memory starts at {initial} bytes, over max_memory_bytes ({max_memory})"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use toolgate_config::LoadedConfig;
    use toolgate_core::ErrorKind;

    use super::*;

    fn tool(module: &str, extra: &str) -> Result<WasmTool, LoadError> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");
        let config = format!(
            "[[tools]]\nname = \"t\"\nkind = \"wasm\"\nmodule = \"{module}.wat\"\n{extra}\n"
        );
        let loaded = LoadedConfig::from_str("t.toml", &config).unwrap_or_else(|e| panic!("{e}"));
        WasmTool::new(&loaded.config.tools[0], Path::new(dir))
    }

    fn ctx(within: Duration) -> CallContext {
        CallContext::new(tokio::time::Instant::now() + within)
    }

    #[tokio::test]
    async fn the_sandbox_stops_a_loop_at_its_own_deadline() {
        // Called directly, without the registry's race: the epoch callback alone
        // must stop the guest.
        let t = tool("loop", "").unwrap_or_else(|e| panic!("{e}"));
        let start = Instant::now();
        let r = t.call(json!({}), ctx(Duration::from_millis(100))).await;
        assert_eq!(r.map_err(|e| e.kind), Err(ErrorKind::Timeout));
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn cancellation_stops_a_loop() {
        let t = tool("loop", "").unwrap_or_else(|e| panic!("{e}"));
        let c = ctx(Duration::from_secs(60));
        let cancel = c.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cancel.cancel();
        });
        let r = t.call(json!({}), c).await;
        assert_eq!(r.map_err(|e| e.kind), Err(ErrorKind::Cancelled));
    }

    #[tokio::test]
    async fn echo_round_trips_and_the_output_is_capped() {
        let t = tool("echo", "").unwrap_or_else(|e| panic!("{e}"));
        let args = json!({"a": [1, 2, {"b": "c"}]});
        let out = t.call(args.clone(), ctx(Duration::from_secs(5))).await;
        assert_eq!(out, Ok(args));
        let small = tool("echo", "max_output_bytes = 4").unwrap_or_else(|e| panic!("{e}"));
        let r = small
            .call(json!({"long": 1}), ctx(Duration::from_secs(5)))
            .await;
        assert!(r.is_err_and(|e| e.message.contains("max_output_bytes")));
    }

    #[test]
    fn modules_that_cannot_work_are_refused_at_load() {
        let big = tool("echo", "max_memory_bytes = 65536")
            .err()
            .map(|e| e.to_string());
        assert!(big.is_some_and(|e| e.contains("over max_memory_bytes")));
        let missing = tool("nothing-here", "").err().map(|e| e.to_string());
        assert!(missing.is_some_and(|e| e.contains("cannot read module")));
        let no_dir = tool(
            "echo",
            "allow_dirs = [{ host = \"/nonexistent\", guest = \"/d\" }]",
        );
        assert!(matches!(no_dir, Err(LoadError::Dir(_))));
    }
}
