//! quiesce: stop containers the way their software wants to be stopped.
//!
//! A host runner executes graceful-shutdown sequences; sandboxed WebAssembly policies decide,
//! per service, which signal it gets, which drain checks run and how long each step may take.
//!
//! Layout (a layer never reaches up):
//! - [`policy`]: the policy engine: loading, sandboxing and calling wasm policies. No Docker.
//! - [`cli`]: the `quiesce` command line: parses arguments, runs a command, maps the result
//!   to a documented exit status. The binary (`main.rs`) only calls [`cli::main`].
//!
//! The contract's types (`Context`, `Step`, `Signal`...) come from the policy SDK, which policies
//! and the host share: `quiesce_policy_sdk`.

pub mod cli;
pub mod policy;

pub use quiesce_policy_sdk as sdk;
