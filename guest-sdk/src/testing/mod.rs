//! Testing policies natively, in virtual time, against scripted services.
//!
//! ```
//! use std::time::Duration;
//! use quiesce_policy_sdk::testing::{ServiceModel, run_with};
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
//! assert_eq!(transcript.outcome, "graceful");
//! assert_eq!(transcript.elapsed, Duration::from_secs(3));
//! ```
//!
//! With a policy type, [`run`] takes a [`Scenario`], and [`assert_scenarios`] runs every
//! scenario of a scenario file (the same files `quiesce policy test` runs against the compiled
//! component) and fails with a readable diff naming the step and the time.

mod harness;
mod model;
mod scenario;

pub use harness::{run, run_with};
pub use model::{
    Answer, ExecRule, HealthPhase, HttpRule, LogRule, Phase, ServiceModel, SignalReaction,
};
pub use scenario::{DEFAULT_SCENARIO_BUDGET, Expectations, Scenario, Transcript, TranscriptStep};

use crate::{Policy, validate_settings};

/// Runs one scenario against policy `P` natively: validates the settings, runs the sequence,
/// compares with the expectations. `Err` holds the readable diff.
pub fn check_scenario<P: Policy>(scenario: &Scenario) -> Result<(), String> {
    let validation = validate_settings::<P>(&scenario.settings_json());
    if !scenario.expect.check_settings(validation)? {
        return Ok(());
    }
    run::<P>(scenario).check(&scenario.expect)
}

/// Runs every scenario of a scenario file (TOML text) against policy `P` natively; panics
/// listing every failing scenario with its diff and transcript.
pub fn assert_scenarios<P: Policy>(file: &str) {
    let scenarios =
        Scenario::parse_file(file).unwrap_or_else(|error| panic!("invalid scenario file: {error}"));
    assert!(
        !scenarios.is_empty(),
        "the scenario file holds no [[scenario]]"
    );
    let failures: Vec<String> = scenarios
        .iter()
        .filter_map(|scenario| {
            check_scenario::<P>(scenario)
                .err()
                .map(|diff| format!("scenario {:?} failed:\n{diff}", scenario.name))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
