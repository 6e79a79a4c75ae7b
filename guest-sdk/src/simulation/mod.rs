//! Simulation (feature `simulation`): scripted services in virtual time, a policy type run
//! natively, and scenario files. The runner's own [`crate::sequence`] is driven synchronously
//! against a [`ServiceModel`], so a native run and a run through the runner give the same
//! [`Transcript`](crate::sequence::Transcript).
//!
//! The production runner uses it (`quiesce plan` and its worst-case exploration play the
//! [`ServiceModel`]; built-in policies are decided [`Native`]ly; `quiesce policy test` reads
//! [`Scenario`] files), and so do policy tests, through [`crate::testing`] (feature `testing`),
//! which re-exports all of it.
//!
//! ```
//! use std::time::Duration;
//! use quiesce_policy_sdk::sequence::ServiceOutcome;
//! use quiesce_policy_sdk::simulation::{ServiceModel, run_with};
//! use quiesce_policy_sdk::{Context, Signal, Step};
//!
//! // A policy as a closure: QUIT, wait up to 30 s, then SIGKILL.
//! let policy = |ctx: &Context| -> Result<Step, String> {
//!     Ok(match ctx.steps_taken() {
//!         _ if ctx.has_stopped() => Step::finish(),
//!         0 => Step::signal(Signal::QUIT),
//!         1 => Step::wait_for_exit(Duration::from_secs(30)),
//!         _ => Step::kill(),
//!     })
//! };
//! let service = ServiceModel::drains_on(Signal::QUIT, Duration::from_secs(3));
//! let transcript = run_with(policy, &service, "{}", Duration::from_secs(60));
//! assert_eq!(transcript.outcome, ServiceOutcome::Graceful);
//! assert_eq!(transcript.elapsed, Duration::from_secs(3));
//! ```
//!
//! With a policy type, [`run`] takes a [`Scenario`] (one of a scenario file's, the same files
//! `quiesce policy test` runs against the compiled component), and
//! [`Transcript::check`](crate::sequence::Transcript::check) compares the result with the
//! scenario's expectations.

mod harness;
mod model;
mod scenario;

pub use harness::{Native, drive, run, run_with};
pub use model::{
    Answer, ExecRule, Happened, HealthPhase, HttpRule, LogRule, Phase, ServiceModel, SignalReaction,
};
pub use scenario::{DEFAULT_SCENARIO_BUDGET, Expectations, ExpectedStep, Scenario};
