//! The settings that decide how a policy's code is compiled, in one place for the three that
//! compile: the engine, its compile workers, and the build script that precompiles the built-in
//! policies into the binary (`host/build.rs` includes this file). An artifact made by any of
//! them loads in the engine, which checks wasmtime's compatibility hash before using it.
//!
//! This file depends on wasmtime alone, so the build script can include it.

/// The default wasm stack size, in bytes: deeper recursion traps.
pub const DEFAULT_STACK_BYTES: usize = 512 << 10;

/// The compile-relevant configuration for a wasm stack of `stack_bytes`: the component model,
/// epoch interruption (the time limit), the stack limit.
pub fn code_config(stack_bytes: usize) -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(stack_bytes);
    config
}
