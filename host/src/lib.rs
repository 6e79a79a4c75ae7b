//! quiesce: stop containers the way their software wants to be stopped.
//!
//! A host runner executes graceful-shutdown sequences; sandboxed WebAssembly policies decide,
//! per service, which signal it gets, which drain checks run and how long each step may take.
//!
//! Layout (a layer never reaches up):
//! - [`policy`]: the policy engine: loading, sandboxing and calling wasm policies. No Docker.
//! - [`runtime`]: the small trait the executor needs from a container engine; [`docker`]
//!   implements it with bollard, [`simulate`] in virtual time (for `plan` and tests).
//! - [`executor`]: one service's shutdown sequence: policy decides, runtime acts, budget holds.
//! - [`orchestrate`]: many services: dependency order, parallelism, one deadline.
//! - [`scenario`]: scenario files through the real executor in virtual time.
//! - [`selection`]: which policy, settings and budget each service gets; PID 1 warnings.
//! - [`config`]: the TOML configuration file. [`report`]: the run report. [`progress`]: live
//!   output and the summary. [`timeline`]: the report drawn as an SVG timeline. [`http`]: the
//!   tiny client for drain endpoints. [`style`]: colours (`--color`, `NO_COLOR`).
//! - [`cli`]: the `quiesce` command line: parses arguments, runs a command, maps the result
//!   to a documented exit status. The binary (`main.rs`) only calls [`cli::main`].
//!
//! The contract's types (`Context`, `Step`, `Signal`...) come from the policy SDK, which policies
//! and the host share: `quiesce_policy_sdk`.

pub mod cli;
pub mod config;
pub mod docker;
pub mod executor;
pub mod http;
pub mod orchestrate;
pub mod policy;
pub mod progress;
pub mod report;
pub mod runtime;
pub mod scenario;
pub mod selection;
pub mod simulate;
pub mod style;
pub mod timeline;

pub use quiesce_policy_sdk as sdk;
