//! quiesce: stop containers the way their software wants to be stopped.
//!
//! A host runner executes graceful-shutdown sequences; sandboxed WebAssembly policies decide,
//! per service, which signal it gets, which drain checks run and how long each step may take.
//!
//! Layout (a layer never reaches up):
//! - [`policy`]: the policy engine: loading, sandboxing and calling wasm policies. No Docker.
//! - [`runtime`]: the trait the runner needs from a container engine (finding targets, acting
//!   on one); one module per engine: `runtime::docker` (bollard), `runtime::simulate` (virtual
//!   time, for `plan` and tests).
//! - [`executor`]: drives one service's shutdown sequence (the SDK's `sequence`, where every
//!   rule lives) over a runtime. [`orchestrate`]: many services: dependency order,
//!   parallelism, one deadline.
//! - [`init`]: `quiesce run`, quiesce as a container's PID 1 (signals, reaping, output) with
//!   its child as the service (`runtime::process`).
//! - [`systemd`]: containers a systemd unit supervises (Kolla, Podman's units): finding the
//!   unit, keeping it from restarting the container during a stop.
//! - [`prepare`]: a run before anything is touched: targets, policies, settings, order.
//!   [`plan`]: the dry run, in virtual time.
//! - [`scenario`]: scenario files through the real executor in virtual time.
//! - [`selection`]: which policy, settings and budget each service gets; PID 1 warnings.
//!   [`needs`]: the budget against the policy's own sequence; [`hearing`]: its signals
//!   against what the receiving process does with them.
//! - [`config`]: the TOML configuration file. [`report`]: the run report; [`documents`]: the
//!   policy commands' JSON; [`schema`]: their JSON Schemas. [`progress`]: live
//!   output and the summary. [`timeline`]: the report drawn as an SVG timeline. [`http`]: the
//!   tiny client for drain endpoints. [`style`]: colours (`--color`, `NO_COLOR`).
//! - [`cli`]: the `quiesce` command line: parses arguments, runs a command, maps the result
//!   to a documented exit status. The binary (`main.rs`) only calls [`cli::main`].
//!
//! The contract's types (`Context`, `Step`, `Signal`...) come from the policy SDK, which policies
//! and the host share: `quiesce_policy_sdk`.

pub mod claim;
pub mod cli;
pub mod config;
pub mod documents;
pub mod executor;
pub mod hearing;
pub mod http;
pub mod init;
pub mod logs;
pub mod needs;
pub mod orchestrate;
pub mod plan;
pub mod policy;
pub mod prepare;
pub mod progress;
pub mod recover;
pub mod report;
pub mod runtime;
pub mod scenario;
pub mod schema;
pub mod selection;
pub mod style;
pub mod systemd;
pub mod timeline;
pub mod warning;
pub mod worst;

pub use quiesce_policy_sdk as sdk;
