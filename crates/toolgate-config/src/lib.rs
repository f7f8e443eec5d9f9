//! # toolgate-config: the configuration model
//!
//! The TOML file an operator writes, typed, validated and located:
//!
//! - [`model`]: the typed model ([`Config`] and its sections), `deny_unknown_fields`
//!   everywhere, each field documented with its default.
//! - [`env`]: `${VAR}` / `${VAR:-default}` interpolation for secrets and paths, and the
//!   operator key from `TOOLGATE_API_KEY`. This crate is the only place that reads the
//!   environment.
//! - [`keys`]: API key hashes and scope patterns, compared in constant time.
//! - [`load`] (with `validate`): parsing plus validation, every problem reported with file, line and
//!   column ([`Problem`]); [`DEMO_CONFIG`] is the embedded default.
//!
//! Flow: `load::from_file` / `load::from_str` → [`LoadedConfig`] (config + source text
//! for locating spans) → the registry builds runtime objects from it.

pub mod content;
pub mod env;
pub mod jobs;
pub mod keys;
pub mod load;
pub mod model;
pub mod params;
pub mod template;
mod validate;

pub use keys::{KeyHash, ScopePattern};
pub use load::{DEMO_CONFIG, LoadedConfig, Problem, Problems};
pub use model::{
    AuditConfig, AuditLocation, AuthConfig, BreakerConfig, BuiltinName, Config, Durability,
    IssuerConfig, KeyConfig, OnStoreError, OperationFilterConfig, OperationOverride, ParamConfig,
    ParamType, RateLimitConfig, RateLimitStore, RateLimitStoreConfig, RetryConfig, ServerConfig,
    SourceConfig, SourceKind, TokenExchangeConfig, ToolConfig, ToolDefaults, ToolKind,
    ToolsetConfig, WasmDirConfig,
};
pub use params::params_schema;
pub use validate::RESERVED_NAMES;
