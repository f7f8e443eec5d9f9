//! The process-wide engine, its epoch ticker, and the cache of compiled modules.
//!
//! **Why epochs, not fuel.** Fuel instruments every basic block (slower guests) and
//! counts instructions, not time; the deadline is wall-clock time. Epoch
//! interruption costs one load and compare per loop back-edge and function entry.
//! A thread bumps the engine's epoch every [`EPOCH_TICK`]; at each tick a running
//! guest enters the store's epoch callback, which stops it if the call's deadline
//! has passed or the call was cancelled, and otherwise yields to the tokio executor.
//! So a guest never holds a runtime worker for more than about one tick, and the
//! registry's own race against the deadline can drop the call future (which wasmtime
//! supports: the fiber is unwound) at any of those yields.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, InstancePre, Linker, Module};

use crate::sandbox::CallState;

/// How often the epoch advances: the granularity of deadlines and cancellation, and
/// the longest a guest runs before it yields to the executor.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// A compiled module, linked against WASI preview 1 and ready to instantiate.
pub type Prepared = InstancePre<CallState>;

/// The shared engine. One per process: compiled code can be shared between tools
/// and across reloads only within one engine, and one ticker thread serves all.
///
/// # Errors
/// The host cannot run wasmtime (the message says why).
pub fn engine() -> Result<&'static Engine, String> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.epoch_interruption(true);
            let engine = Engine::new(&config).map_err(|e| format!("wasmtime: {e}"))?;
            start_ticker(&engine)?;
            Ok(engine)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The ticker lives as long as the engine, which is as long as the process: it
/// holds only a weak reference, so it would end if the engine ever went away.
fn start_ticker(engine: &Engine) -> Result<(), String> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".to_owned())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the epoch thread: {e}"))
}

/// Modules compiled so far, by the SHA-256 of their bytes. Entries are weak: a
/// module stays cached while a tool uses it (so reloading an unchanged config
/// reuses it) and is freed with the last tool that did.
fn cache() -> &'static Mutex<HashMap<[u8; 32], Weak<Prepared>>> {
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], Weak<Prepared>>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// Compile `bytes` (binary wasm or WAT text), link it against WASI preview 1 and
/// pre-instantiate it, or take it from the cache.
///
/// # Errors
/// The module does not compile, or imports something the sandbox does not provide.
pub fn prepare(bytes: &[u8]) -> Result<Arc<Prepared>, String> {
    let key: [u8; 32] = Sha256::digest(bytes).into();
    if let Some(hit) = lookup(&key) {
        return Ok(hit);
    }
    // Compiled outside the lock: it takes a while and loads are rare.
    let engine = engine()?;
    let module = Module::new(engine, bytes).map_err(|e| format!("does not compile: {e:#}"))?;
    let mut linker: Linker<CallState> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut CallState| &mut s.wasi)
        .map_err(|e| format!("cannot link WASI: {e}"))?;
    let pre = linker.instantiate_pre(&module).map_err(|e| {
        format!("imports something other than WASI preview 1 (wasi_snapshot_preview1): {e}")
    })?;
    let prepared = Arc::new(pre);
    let mut map = cache().lock().unwrap_or_else(PoisonError::into_inner);
    map.retain(|_, w| w.strong_count() > 0);
    map.insert(key, Arc::downgrade(&prepared));
    Ok(prepared)
}

fn lookup(key: &[u8; 32]) -> Option<Arc<Prepared>> {
    let map = cache().lock().unwrap_or_else(PoisonError::into_inner);
    map.get(key).and_then(Weak::upgrade)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOP: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

    #[test]
    fn a_module_is_compiled_once_while_in_use() {
        let a = prepare(NOP.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let b = prepare(NOP.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn foreign_imports_are_refused() {
        let m = r#"(module (import "env" "f" (func)) (func (export "_start")))"#;
        let e = prepare(m.as_bytes()).err().unwrap_or_default();
        assert!(e.contains("wasi_snapshot_preview1"), "{e}");
    }
}
