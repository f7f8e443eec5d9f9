//! From a finished run to the call's result: the exit status, traps, limits and
//! interruptions become a `ToolError` with a clear message; stdout becomes the output,
//! checked against the output schema.

use std::fmt;

use serde_json::Value;
use toolgate_core::ToolError;
use wasmtime::Trap;
use wasmtime_wasi::I32Exit;

use crate::limits::LimitExceeded;

/// Most stderr bytes logged per call.
const STDERR_LOGGED: usize = 2048;
/// Longest `{"error": "..."}` message passed on to the caller.
const ERROR_MESSAGE_CHARS: usize = 1000;

/// Why the host stopped a run: the error the epoch callback raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    /// The call's deadline passed.
    Deadline,
    /// The caller cancelled.
    Cancelled,
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Interrupted::Deadline => f.write_str("the module ran past its deadline"),
            Interrupted::Cancelled => f.write_str("the call was cancelled"),
        }
    }
}

impl std::error::Error for Interrupted {}

/// What a run left behind.
pub(crate) struct Finished {
    /// What `_start` returned.
    pub(crate) result: wasmtime::Result<()>,
    /// Everything written to stdout (up to the cap plus one byte).
    pub(crate) stdout: Vec<u8>,
    /// Everything written to stderr (capped).
    pub(crate) stderr: Vec<u8>,
    /// The limit the run hit, if any.
    pub(crate) limit_hit: Option<LimitExceeded>,
}

/// The call's result.
pub(crate) fn interpret(
    tool: &str,
    run: Finished,
    max_output: usize,
    schema: Option<&jsonschema::Validator>,
) -> Result<Value, ToolError> {
    log_stderr(tool, &run);
    let overflow = run.stdout.len() > max_output;
    let status = exit_status(tool, &run, overflow.then_some(max_output))?;
    if overflow {
        return Err(too_large(max_output));
    }
    let output = serde_json::from_slice::<Value>(&run.stdout);
    if status != 0 {
        let said = output
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .map(|m| {
                format!(
                    ": {}",
                    m.chars().take(ERROR_MESSAGE_CHARS).collect::<String>()
                )
            })
            .unwrap_or_default();
        return Err(ToolError::tool(format!(
            "the module exited with status {status}{said}"
        )));
    }
    if run.stdout.iter().all(u8::is_ascii_whitespace) {
        return Err(ToolError::tool("the module wrote no output"));
    }
    let value = output
        .map_err(|e| ToolError::tool(format!("the module's output is not one JSON value: {e}")))?;
    if let Some(validator) = schema {
        check_output(validator, &value)?;
    }
    Ok(value)
}

fn too_large(max_output: usize) -> ToolError {
    ToolError::tool(format!(
        "the module's output is larger than max_output_bytes ({max_output})"
    ))
}

/// The exit status (0 when `_start` returned), or the error that ended the run.
/// `overflow` is the output cap when the module wrote past it: a guest whose write
/// fails usually aborts, and the cap is the reason to report.
fn exit_status(tool: &str, run: &Finished, overflow: Option<usize>) -> Result<i32, ToolError> {
    let Err(e) = &run.result else { return Ok(0) };
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return Ok(exit.0);
    }
    if let Some(i) = e.downcast_ref::<Interrupted>() {
        return Err(match i {
            Interrupted::Deadline => ToolError::timeout(i.to_string()),
            Interrupted::Cancelled => ToolError::cancelled(i.to_string()),
        });
    }
    if let Some(max) = overflow {
        return Err(too_large(max));
    }
    // A guest may turn a failed allocation into its own trap (Rust aborts), so the
    // limit recorded by the limiter explains the failure too.
    if let Some(limit) = e.downcast_ref::<LimitExceeded>().or(run.limit_hit.as_ref()) {
        return Err(ToolError::tool(limit.to_string()));
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return Err(ToolError::tool(format!("the module trapped: {trap}")));
    }
    // Anything else is the host's business (a WASI call failed in a way that is not
    // the guest's error code): logged in full, reported without internals.
    tracing::warn!(tool, error = format!("{e:#}"), "wasm tool failed");
    Err(ToolError::tool("the module failed (see the server log)"))
}

fn log_stderr(tool: &str, run: &Finished) {
    if run.stderr.is_empty() {
        return;
    }
    let shown = &run.stderr[..run.stderr.len().min(STDERR_LOGGED)];
    let stderr = String::from_utf8_lossy(shown);
    let truncated = run.stderr.len() > STDERR_LOGGED;
    if run.result.is_ok() {
        tracing::info!(tool, %stderr, truncated, "wasm tool stderr");
    } else {
        tracing::warn!(tool, %stderr, truncated, "wasm tool stderr");
    }
}

fn check_output(validator: &jsonschema::Validator, value: &Value) -> Result<(), ToolError> {
    let problems: Vec<String> = validator
        .iter_errors(value)
        .take(3)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ToolError::tool(format!(
            "the module's output does not match its output schema: {}",
            problems.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use toolgate_core::ErrorKind;

    fn run(result: wasmtime::Result<()>, stdout: &str) -> Finished {
        Finished {
            result,
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
            limit_hit: None,
        }
    }

    #[test]
    fn exits_and_output_are_told_apart() {
        let ok = interpret("t", run(Ok(()), r#"{"a":1}"#), 100, None);
        assert_eq!(ok, Ok(json!({"a": 1})));
        let exit0 = interpret("t", run(Err(I32Exit(0).into()), "[1]\n"), 100, None);
        assert_eq!(exit0, Ok(json!([1])));
        let failed = interpret(
            "t",
            run(Err(I32Exit(2).into()), r#"{"error":"no"}"#),
            100,
            None,
        );
        let e = failed.err().unwrap_or_else(|| panic!("expected an error"));
        assert_eq!(e.message, "the module exited with status 2: no");
        let big = interpret("t", run(Ok(()), "[1,2,3]"), 3, None);
        assert!(big.is_err_and(|e| e.message.contains("max_output_bytes")));
        let empty = interpret("t", run(Ok(()), " \n"), 100, None);
        assert!(empty.is_err_and(|e| e.message.contains("no output")));
    }

    #[test]
    fn interruptions_and_limits_have_their_kinds() {
        let late = interpret("t", run(Err(Interrupted::Deadline.into()), ""), 9, None);
        assert!(late.is_err_and(|e| e.kind == ErrorKind::Timeout));
        let limit = LimitExceeded::Memory(65536);
        let bomb = interpret("t", run(Err(limit.into()), ""), 9, None);
        assert!(bomb.is_err_and(|e| e.kind == ErrorKind::ToolError && e.message.contains("65536")));
    }

    #[test]
    fn the_output_schema_is_enforced() {
        let schema = json!({"type": "object", "required": ["n"]});
        let v = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{e}"));
        let bad = interpret("t", run(Ok(()), r#"{"m":1}"#), 100, Some(&v));
        assert!(bad.is_err_and(|e| e.message.contains("output schema")));
        assert!(interpret("t", run(Ok(()), r#"{"n":1}"#), 100, Some(&v)).is_ok());
    }
}
