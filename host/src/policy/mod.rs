//! The policy engine: loads shutdown policies (wasm components) and runs their decisions in a
//! sandbox. It knows nothing of Docker: it turns a [`Context`](quiesce_policy_sdk::Context)
//! into a [`Step`](quiesce_policy_sdk::Step), or into a [`CallError`] that names the limit or
//! fault that stopped the policy.
//!
//! - `engine`: the sandbox (wasmtime engine, deny-all WASI linker, per-call limits, the
//!   instance slots);
//! - `file`: reading a policy file: capped, never blocking, regular files only;
//! - `shape`: what an untrusted component may contain, checked before compiling it;
//! - `compile`: compiling an untrusted component in a worker process, under limits;
//! - `codegen`: the compile settings the engine, its workers and the build script share;
//! - `cache`: compiled components on disk, keyed by content and engine, authenticated;
//! - `loaded`: one policy, pre-instantiated, with a fresh instance per call;
//! - `catalog`: the built-ins and the policies directory;
//! - `builtin`: the built-ins linked natively, for their metadata before any compile;
//! - `decider`: a policy as the runner asks it, wasm or native;
//! - `bindings`: the contract as wasmtime sees it;
//! - `error`: load and call failures;
//! - `latency`: decision latency as production pays it;
//! - `authoring`: a policy crate, made (`policy new`) and built (`policy build`).

mod authoring;
mod bindings;
mod builtin;
mod cache;
mod catalog;
mod codegen;
mod compile;
mod decider;
mod engine;
mod error;
mod file;
mod latency;
mod loaded;
mod shape;

pub use authoring::{AuthoringError, build_policy_crate, install_component, new_policy_crate};
pub use builtin::{
    BUILTIN_NATIVE, BUILTIN_POLICIES, BuiltinPolicy, NativeBuiltin, builtin_policy, native_builtin,
};
pub use cache::{CacheRefused, CacheUse, CompileCache, KEY_FILE};
pub use catalog::{
    CatalogEntry, DEFAULT_POLICIES_DIR, DirectoryError, MAX_POLICY_BYTES, NotLoaded, PolicyCatalog,
    PolicyEngine, nearest_name, wasm_files,
};
pub use compile::{Compiler, WORKER_ARG, worker_main};
pub use decider::{Decider, NativePolicy, native_decider};
pub use engine::{EPOCH_TICK, INSTANCES_PER_POLICY, POOLED_INSTANCES, PolicyLimits, Sandbox};
pub use error::{CallError, CallFailure, LoadError, LoadProblem, ShapeViolation, invalid_settings};
pub use file::read_capped;
pub use latency::{LatencyStats, measure_decisions, sample_context};
pub use loaded::{Decision, LoadedPolicy, PolicySource, contract_compatible};
pub use shape::{
    CORE_INSTANCES_PER_INSTANCE, MEMORIES_PER_INSTANCE, Shape, ShapeLimits, TABLES_PER_INSTANCE,
    check_shape,
};
