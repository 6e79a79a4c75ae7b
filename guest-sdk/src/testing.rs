//! Policy tests (feature `testing`, a policy crate's dev-dependency): the assertions a policy
//! crate's `cargo test` makes, natively, over its scenario files ([`assert_scenarios`],
//! [`assert_scenario_dir`], [`check_scenario`]), its metadata and settings documentation
//! ([`check_metadata`]) and its first step ([`check_first_step`]);
//! [`policy_tests!`](crate::policy_tests) writes the usual three.
//!
//! They run on [`crate::simulation`] (scripted services in virtual time, scenario files), which
//! this feature enables and whose items are re-exported here: `testing::ServiceModel`,
//! `testing::run_with`, `testing::Scenario`... are the same as `simulation::`'s.
//!
//! ```
//! use std::time::Duration;
//! use quiesce_policy_sdk::testing::assert_scenarios;
//! use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step};
//!
//! struct Nginx;
//!
//! impl Policy for Nginx {
//!     type Settings = ();
//!
//!     fn info() -> PolicyInfo {
//!         PolicyInfo::new("nginx", "1.0.0", "graceful QUIT, then SIGKILL")
//!     }
//!
//!     fn next(ctx: &Context, _settings: &()) -> Result<Step, String> {
//!         Ok(match ctx.steps_taken() {
//!             _ if ctx.has_stopped() => Step::finish(),
//!             0 => Step::signal(Signal::QUIT),
//!             1 => Step::wait_for_exit(Duration::from_secs(30)),
//!             _ => Step::kill(),
//!         })
//!     }
//! }
//!
//! assert_scenarios::<Nginx>(
//!     r#"
//! [[scenario]]
//! name = "drains on QUIT"
//! [scenario.service]
//! signals = { SIGQUIT = { exit_after = "3s" } }
//! [scenario.expect]
//! steps = ["signal SIGQUIT", "wait exit"]
//! outcome = "graceful"
//! "#,
//! );
//! ```

pub use crate::simulation::{
    Answer, DEFAULT_SCENARIO_BUDGET, ExecRule, Expectations, ExpectedStep, Happened, HealthPhase,
    HttpRule, LogRule, Native, Phase, Scenario, ServiceModel, SignalReaction, drive, run, run_with,
};

use crate::settings::DocumentedSettings;
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

/// Runs every scenario file (`*.toml`) of directory `dir` against policy `P` natively, as
/// `quiesce policy test --scenarios DIR` does through the runner; panics listing every failing
/// scenario of every file. The generated crate's test passes its `scenarios/` directory, so a
/// file added there is run by `cargo test` too.
pub fn assert_scenario_dir<P: Policy>(dir: &str) {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot read the scenarios directory {dir}: {error}"))
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "toml")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{dir} holds no scenario file (*.toml)");
    let failures: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let text = std::fs::read_to_string(file)
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", file.display()));
            std::panic::catch_unwind(|| assert_scenarios::<P>(&text))
                .err()
                .map(|panic| {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
                        .unwrap_or_default();
                    format!("{}:\n{message}", file.display())
                })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Checks a policy's metadata as the runner will: a valid name and contract version, default
/// settings that validate, and a settings documentation with one line per setting, naming
/// its kind and default (the line [`DocumentedSettings`] writes).
pub fn check_metadata<P: Policy>()
where
    P::Settings: DocumentedSettings,
{
    let info = P::info();
    assert!(!info.name.is_empty(), "the policy has no name");
    assert_eq!(info.contract_version, crate::CONTRACT_VERSION);
    assert_eq!(validate_settings::<P>("{}"), Ok(()), "the default settings");
    let fields = P::Settings::fields();
    for field in &fields {
        assert!(
            info.settings_doc.lines().any(|line| line == field.line()),
            "the settings doc of `{}` lacks the line\n{}\nit reads:\n{}",
            info.name,
            field.line(),
            info.settings_doc
        );
    }
    let documented = info
        .settings_doc
        .lines()
        .filter(|line| line.starts_with("- `"))
        .count();
    assert_eq!(
        documented,
        fields.len(),
        "the settings doc of `{}` documents settings the policy does not have:\n{}",
        info.name,
        info.settings_doc
    );
}

/// Checks that the first step for a running service with the default settings starts with
/// `expected` (`"signal SIGQUIT"`, `"exec rabbitmq-upgrade drain"`...).
pub fn check_first_step<P: Policy>(expected: &str) {
    let ctx = crate::Context {
        remaining: std::time::Duration::from_secs(3600),
        ..crate::Context::default()
    };
    let step = crate::decide::<P>(&ctx).expect("a first step");
    let (action, detail) = step.describe();
    let line = format!("{action} {detail}");
    assert!(line.starts_with(expected), "first step: {line}");
}
