//! quiesce: stop containers the way their software wants to be stopped.
//!
//! A host runner executes graceful-shutdown sequences; sandboxed WebAssembly policies decide,
//! per service, which signal it gets, which drain checks run and how long each step may take.
//! `ARCHITECTURE.md` at the repository's root walks through a stop and a `run`.
//!
//! # Layers
//!
//! Each folder is a layer. From the ground up:
//!
//! 1. [`model`]: the vocabulary every layer speaks: the configuration, the report, warnings,
//!    processes and what they do with signals, units and text made safe. No I/O but reading
//!    the configuration file.
//! 2. [`platform`]: this host's operating system: `/proc`, signals and reaping, pipes, systemd
//!    units, the stop records under `/run/quiesce`.
//! 3. [`policy`]: the policy engine: loading, sandboxing and calling wasm policies.
//! 4. [`distribution`]: policies from OCI registries: push, pull, cosign-compatible
//!    signatures, trust rules, the local store re-verified at every load.
//! 5. [`runtime`]: what the runner needs from a container engine, as one trait, and one module
//!    per engine (Docker's API, a child process under `quiesce run`, virtual time).
//! 6. [`run`]: driving the SDK's sequence for one service over a runtime, many services in
//!    order under one deadline, and putting back what a killed stop changed.
//! 7. [`prepare`]: everything decided before anything is touched: targets, policy selection,
//!    settings, budgets, what each policy needs and what each service hears, the dry run.
//! 8. [`output`]: what people and programs read: live progress, logs, the summary, the JSON
//!    documents and their schemas, the SVG timeline, colours.
//! 9. The two entry points: [`init`] (`quiesce run`, quiesce as a container's PID 1) and
//!    [`cli`] (the `quiesce` command line; the binary only calls [`cli::main`]).
//!
//! # Rules this layout keeps (`host/tests/layers.rs` checks them on every `cargo test`)
//!
//! - A layer imports only from itself and from the layers below it: `runtime/` never imports
//!   `run/`, `model/` imports no other layer, nothing imports `cli/`.
//! - No two files import each other, directly or through others (no cycle).
//! - Only `cli/` and `init/` read the process's environment or reach a real engine: the layers
//!   below are handed the variables (`model::vars::Vars`), a `Runtime`, a configuration and an
//!   event sink.
//!
//! The contract's types (`Context`, `Step`, `Signal`...) come from the policy SDK, which policies
//! and the host share: `quiesce_policy_sdk`.

pub mod cli;
pub mod distribution;
pub mod init;
pub mod model;
pub mod output;
pub mod platform;
pub mod policy;
pub mod prepare;
pub mod run;
pub mod runtime;

pub use quiesce_policy_sdk as sdk;
