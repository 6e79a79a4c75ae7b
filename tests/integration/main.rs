//! Integration tests: the real `quiesce` binary and library, real compiled wasm components
//! through the real engine. One test binary, one module per area.

mod ansible;
mod authoring;
mod cinder_seed;
mod cli;
mod distribution;
mod engine;
mod executor;
mod exit_status;
mod faults;
mod hostile;
mod hostile_io;
mod hostile_loading;
mod library;
mod logs;
mod one_stop;
mod operators;
mod parity;
mod podman;
mod run;
mod schemas;
mod selection;
mod servers;
mod stop;
mod systemd;
mod worst;

/// The `quiesce` binary built from this workspace (this crate's `quiesce-under-test` target runs
/// the same `quiesce::cli::main`).
fn quiesce_bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_quiesce-under-test"))
}

/// Where tests cache compiled policies (shared by all tests of this run and later runs).
fn cache_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("policy-cache")
}

/// A policy engine with these limits and the shared test cache; untrusted components compile
/// in a worker running the binary under test, as the `quiesce` binary does.
fn engine(limits: quiesce::policy::PolicyLimits) -> quiesce::policy::PolicyEngine {
    engine_with_cache(limits, &cache_dir())
}

/// [`engine`] with its compile cache in `cache`.
fn engine_with_cache(
    limits: quiesce::policy::PolicyLimits,
    cache: &std::path::Path,
) -> quiesce::policy::PolicyEngine {
    quiesce_tests::engine(limits, cache)
        .with_compiler(quiesce::policy::Compiler::Worker(quiesce_bin().into()))
}
