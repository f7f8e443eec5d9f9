//! Per-call resource limits: linear memory and tables, enforced by wasmtime through
//! [`ResourceLimiter`] on every `memory.grow`, `table.grow` and instantiation.

use std::fmt;

use wasmtime::ResourceLimiter;

/// Default `max_memory_bytes`: 64 MiB.
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 64 * 1024 * 1024;
/// Default `max_table_elements`.
pub const DEFAULT_MAX_TABLE_ELEMENTS: u64 = 10_000;

/// Which limit a call ran into. It is the error the limiter raises, so the trap it
/// causes can be told apart from the module's own traps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitExceeded {
    /// Linear memory would have grown past the limit (bytes).
    Memory(u64),
    /// A table would have grown past the limit (elements).
    Table(u64),
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitExceeded::Memory(max) => {
                write!(f, "the module exceeded its memory limit of {max} bytes")
            }
            LimitExceeded::Table(max) => {
                write!(f, "the module exceeded its table limit of {max} elements")
            }
        }
    }
}

impl std::error::Error for LimitExceeded {}

/// The limits of one store (one call).
#[derive(Debug, Clone)]
pub struct Limits {
    max_memory: u64,
    max_table: u64,
    /// The limit that was hit, if any: kept here as well as in the error, because
    /// a guest that sees the failure may turn it into its own trap or exit.
    pub(crate) hit: Option<LimitExceeded>,
}

impl Limits {
    /// Limits of `max_memory` bytes of linear memory and `max_table` table elements.
    #[must_use]
    pub fn new(max_memory: u64, max_table: u64) -> Self {
        Self {
            max_memory,
            max_table,
            hit: None,
        }
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // An error (not `Ok(false)`) traps at once: a memory bomb stops at the limit
        // instead of running on with failed allocations until its deadline.
        if u64::try_from(desired).unwrap_or(u64::MAX) > self.max_memory {
            let e = LimitExceeded::Memory(self.max_memory);
            self.hit = Some(e);
            return Err(wasmtime::Error::new(e));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if u64::try_from(desired).unwrap_or(u64::MAX) > self.max_table {
            let e = LimitExceeded::Table(self.max_table);
            self.hit = Some(e);
            return Err(wasmtime::Error::new(e));
        }
        Ok(true)
    }

    // A WASI command needs one instance, one memory and a table or two.
    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }
}
