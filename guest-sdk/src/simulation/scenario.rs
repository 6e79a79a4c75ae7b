//! Scenario files and transcripts: a service's behaviour, the policy's settings and budget,
//! and what must happen; the record of what did happen; and the comparison of the two, as a
//! readable diff that names the step and the time.
//!
//! ```toml
//! [[scenario]]
//! name = "drains on QUIT"
//! settings = { grace_period = "30s" }
//! budget = "2m"                      # the service's budget (default 5m)
//! on_budget_exhausted = "kill"        # or "leave-running"
//! [scenario.service]
//! image = "nginx:1.25"
//! signals = { SIGQUIT = { exit_after = "3s" } }
//! [scenario.expect]
//! steps = ["signal SIGQUIT", "wait exit"]
//! never = ["SIGKILL"]
//! outcome = "graceful"
//! max_elapsed = "5s"
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use serde::Deserialize;

use super::model::ServiceModel;
use crate::sequence::{
    OnBudgetExhausted, SequenceConfig, ServiceOutcome, Transcript, TranscriptStep,
};
use crate::{Signal, human_duration};

/// The budget of a scenario that names none.
pub const DEFAULT_SCENARIO_BUDGET: Duration = Duration::from_secs(300);

/// What must happen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expectations {
    /// The outcome: `graceful`, `killed`, `fallback`, `failed`, `already-stopped`, `gone`.
    pub outcome: Option<ServiceOutcome>,
    /// The steps in order, each the start of `"{action} {detail}"` (e.g. `"signal SIGQUIT"`,
    /// `"wait exit"`, `"exec rabbitmq-upgrade drain"`, `"kill"`). All steps must be listed; a
    /// polling loop as `{ repeat = ["exec test -f", "wait time"], times = 30 }` (without
    /// `times`: once or more, as often as it comes).
    pub steps: Option<Vec<ExpectedStep>>,
    /// The policy's log (what it wrote with `policy_log!`, or, through the runner, any
    /// `eprintln!`) contains each of these.
    pub log: Vec<String>,
    /// Exactly these signals were delivered, in order (SIGKILL included).
    pub signals: Option<Vec<Signal>>,
    /// These signals were never delivered.
    pub never: Vec<Signal>,
    /// The container's exit status.
    pub exit_code: Option<i32>,
    /// The sequence took at most this long.
    #[serde(with = "human_duration::option")]
    pub max_elapsed: Option<Duration>,
    /// The sequence took at least this long.
    #[serde(with = "human_duration::option")]
    pub min_elapsed: Option<Duration>,
    /// The settings are invalid: validation fails with a message containing this text (and
    /// nothing runs).
    pub settings_error: Option<String>,
}

/// One entry of `expect.steps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedStep {
    /// One step: the start of its `"{action} {detail}"`.
    One(String),
    /// A block of steps repeated.
    Repeat {
        /// The block.
        repeat: Vec<String>,
        /// Exactly this many times; none: once or more.
        times: Option<usize>,
    },
}

/// What an entry of `expect.steps` is, said when an entry is neither.
const EXPECTED_STEP: &str = "an entry of expect.steps is a step's text (\"signal SIGTERM\") or a repeated block ({ repeat = [\"exec check\", \"wait time\"], times = 30 }, `times` optional)";

impl<'de> Deserialize<'de> for ExpectedStep {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Block {
            repeat: Vec<String>,
            #[serde(default)]
            times: Option<usize>,
        }
        use serde::de::Error;
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(pattern) => Ok(ExpectedStep::One(pattern)),
            block @ serde_json::Value::Object(_) => serde_json::from_value::<Block>(block)
                .map(|Block { repeat, times }| ExpectedStep::Repeat { repeat, times })
                .map_err(|error| D::Error::custom(format!("{EXPECTED_STEP}: {error}"))),
            other => Err(D::Error::custom(format!("{EXPECTED_STEP}, not {other}"))),
        }
    }
}

impl From<&str> for ExpectedStep {
    fn from(pattern: &str) -> ExpectedStep {
        ExpectedStep::One(pattern.to_string())
    }
}

/// One scenario.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name, shown in results.
    pub name: String,
    /// What it is about.
    #[serde(default)]
    pub description: String,
    /// The policy's settings (any table; given to the policy as JSON).
    #[serde(default)]
    pub settings: Option<serde_json::Value>,
    /// The service's budget.
    #[serde(default = "default_budget", with = "human_duration")]
    pub budget: Duration,
    /// What happens when the budget runs out: `kill` (the default) or `leave-running`.
    #[serde(default)]
    pub on_budget_exhausted: OnBudgetExhausted,
    /// The service.
    #[serde(default)]
    pub service: ServiceModel,
    /// What must happen.
    #[serde(default)]
    pub expect: Expectations,
}

fn default_budget() -> Duration {
    DEFAULT_SCENARIO_BUDGET
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    scenario: Vec<Scenario>,
}

impl Expectations {
    /// Checks the result of validating the scenario's settings. `Ok(true)`: the run should go
    /// on; `Ok(false)`: the expected validation error happened, nothing more to run.
    pub fn check_settings(&self, validation: Result<(), String>) -> Result<bool, String> {
        match (&self.settings_error, validation) {
            (None, Ok(())) => Ok(true),
            (None, Err(error)) => Err(format!("- the settings were refused: {error}\n")),
            (Some(expected), Err(error)) if error.contains(expected.as_str()) => Ok(false),
            (Some(expected), Err(error)) => Err(format!(
                "- settings error: expected a message containing {expected:?}, got {error:?}\n"
            )),
            (Some(expected), Ok(())) => Err(format!(
                "- settings error: expected a message containing {expected:?}, but the settings were accepted\n"
            )),
        }
    }
}

impl Scenario {
    /// The scenarios of a file (`[[scenario]]` tables). Errors name the line and the key.
    pub fn parse_file(text: &str) -> Result<Vec<Scenario>, String> {
        let file: ScenarioFile = toml::from_str(text).map_err(|error| {
            let line = error
                .span()
                .map(|span| {
                    format!(
                        "line {}: ",
                        text[..span.start.min(text.len())].matches('\n').count() + 1
                    )
                })
                .unwrap_or_default();
            format!("{line}{}", error.message().trim_end())
        })?;
        for scenario in &file.scenario {
            scenario
                .service
                .check()
                .map_err(|error| format!("scenario {:?}: {error}", scenario.name))?;
        }
        Ok(file.scenario)
    }

    /// The settings as the JSON text a policy receives (`{}` when none).
    pub fn settings_json(&self) -> String {
        self.settings
            .as_ref()
            .map_or_else(|| "{}".to_string(), |settings| settings.to_string())
    }

    /// The sequence's configuration for this scenario and the policy named `policy`: its
    /// service, settings, budget (the run's deadline is the budget) and budget ending.
    pub fn config(&self, policy: &str) -> SequenceConfig {
        let mut config = SequenceConfig::new(self.service.facts(), policy, self.budget);
        config.settings = self.settings_json();
        config.on_exhausted = self.on_budget_exhausted;
        config
    }
}

impl Transcript {
    /// `expected` with each repeated block written out: `times` times, or (without it) as
    /// many times in a row as this transcript's steps match it from there, at least once.
    fn expand(&self, expected: &[ExpectedStep]) -> Vec<String> {
        let mut patterns: Vec<String> = Vec::new();
        for entry in expected {
            match entry {
                ExpectedStep::One(pattern) => patterns.push(pattern.clone()),
                ExpectedStep::Repeat { repeat, times } => {
                    // More than the transcript's steps cannot match anyway: the diff says
                    // where it ends.
                    let most = self.steps.len() + 1;
                    let count = times.map(|times| times.min(most)).unwrap_or_else(|| {
                        let matching = |at: usize| {
                            repeat.iter().enumerate().all(|(offset, pattern)| {
                                self.steps
                                    .get(at + offset)
                                    .is_some_and(|step| step.line().starts_with(pattern.as_str()))
                            })
                        };
                        let mut count = 0;
                        while !repeat.is_empty() && matching(patterns.len() + count * repeat.len())
                        {
                            count += 1;
                        }
                        count.max(1)
                    });
                    for _ in 0..count {
                        patterns.extend(repeat.iter().cloned());
                    }
                }
            }
        }
        patterns
    }
}

fn at(duration: Duration) -> String {
    format!("+{:.3}s", duration.as_secs_f64())
}

impl Transcript {
    /// Compares against `expect`; the error lists every difference, naming the step and time,
    /// followed by the whole transcript.
    pub fn check(&self, expect: &Expectations) -> Result<(), String> {
        let mut problems = Vec::new();
        let line = TranscriptStep::line;
        if let Some(expected) = &expect.steps {
            if expected.iter().any(
                |entry| matches!(entry, ExpectedStep::Repeat { repeat, .. } if repeat.is_empty()),
            ) {
                problems.push("expect.steps: a `repeat` block lists no step".to_string());
            }
            let expected = self.expand(expected);
            for (index, pattern) in expected.iter().enumerate() {
                match self.steps.get(index) {
                    Some(step) if line(step).starts_with(pattern.as_str()) => {}
                    Some(step) => problems.push(format!(
                        "step {} at {}: expected `{pattern}`, got `{}`",
                        index + 1,
                        at(step.started),
                        line(step)
                    )),
                    None => problems.push(format!(
                        "step {}: expected `{pattern}`, but the sequence ended after {} step(s)",
                        index + 1,
                        self.steps.len()
                    )),
                }
            }
            for (index, step) in self.steps.iter().enumerate().skip(expected.len()) {
                problems.push(format!(
                    "step {} at {}: unexpected `{}`",
                    index + 1,
                    at(step.started),
                    line(step)
                ));
            }
        }
        let delivered = self.signals();
        if let Some(expected) = &expect.signals {
            let actual: Vec<Signal> = delivered.iter().map(|(_, _, signal)| *signal).collect();
            if &actual != expected {
                let show = |signals: &[Signal]| {
                    signals
                        .iter()
                        .map(|signal| signal.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let mut text = format!(
                    "signals: expected [{}], got [{}]",
                    show(expected),
                    show(&actual)
                );
                if let Some((index, step, signal)) = delivered
                    .iter()
                    .zip(expected.iter().map(Some).chain(std::iter::repeat(None)))
                    .find(|((_, _, got), want)| Some(got) != *want)
                    .map(|(delivered, _)| delivered)
                {
                    let _ = write!(
                        text,
                        " (first difference: {signal} at {} in step {})",
                        at(step.started),
                        index + 1
                    );
                }
                problems.push(text);
            }
        }
        for forbidden in &expect.never {
            if let Some((index, step, _)) =
                delivered.iter().find(|(_, _, signal)| signal == forbidden)
            {
                problems.push(format!(
                    "{forbidden} must never be sent, but step {} sent it at {}",
                    index + 1,
                    at(step.started)
                ));
            }
        }
        if let Some(outcome) = expect.outcome
            && outcome != self.outcome
        {
            problems.push(format!("outcome: expected {outcome}, got {}", self.outcome));
        }
        if let Some(code) = expect.exit_code
            && Some(code) != self.exit_code
        {
            problems.push(format!(
                "exit code: expected {code}, got {:?}",
                self.exit_code
            ));
        }
        if let Some(max) = expect.max_elapsed
            && self.elapsed > max
        {
            problems.push(format!(
                "took {}, more than max_elapsed {}",
                at(self.elapsed),
                at(max)
            ));
        }
        if let Some(min) = expect.min_elapsed
            && self.elapsed < min
        {
            problems.push(format!(
                "took {}, less than min_elapsed {}",
                at(self.elapsed),
                at(min)
            ));
        }
        for text in &expect.log {
            if !self.policy_log.contains(text.as_str()) {
                problems.push(if self.policy_log.is_empty() {
                    format!(
                        "the policy's log should contain {text:?}, but it wrote nothing (natively only what `policy_log!` writes is kept; `eprintln!` is seen through `quiesce policy test`)"
                    )
                } else {
                    format!(
                        "the policy's log should contain {text:?}; it is:\n{}",
                        self.policy_log.trim_end()
                    )
                });
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for problem in &problems {
            let _ = writeln!(text, "- {problem}");
        }
        let _ = write!(text, "transcript:\n{self}");
        Err(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(entries: &str) -> Result<Vec<ExpectedStep>, String> {
        let text = format!("[[scenario]]\nname = \"n\"\n[scenario.expect]\nsteps = {entries}\n");
        Scenario::parse_file(&text).map(|mut scenarios| scenarios.remove(0).expect.steps.unwrap())
    }

    #[test]
    fn an_expected_step_is_a_text_or_a_repeated_block_and_anything_else_says_so() {
        assert_eq!(
            steps(
                r#"["exec touch", { repeat = ["exec check", "wait time"], times = 3 }, { repeat = ["x"] }]"#
            ),
            Ok(vec![
                ExpectedStep::from("exec touch"),
                ExpectedStep::Repeat {
                    repeat: vec!["exec check".into(), "wait time".into()],
                    times: Some(3)
                },
                ExpectedStep::Repeat {
                    repeat: vec!["x".into()],
                    times: None
                },
            ])
        );
        let typo = steps(r#"[{ repeat = ["x"], time = 3 }]"#).unwrap_err();
        assert!(
            typo.contains("an entry of expect.steps is") && typo.contains("unknown field `time`"),
            "{typo}"
        );
        let number = steps("[3]").unwrap_err();
        assert!(
            number.contains("an entry of expect.steps is") && number.contains("not 3"),
            "{number}"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// Fuzzing: any text is a scenario file or a readable error, never a panic.
        #[test]
        fn the_scenario_parser_never_panics(text in "\\PC{0,300}") {
            let _ = Scenario::parse_file(&text);
        }

        /// Scenario-shaped input with arbitrary signal names and durations.
        #[test]
        fn scenario_shaped_input_is_parsed_or_refused_cleanly(
            signal in "(SIG)?[A-Z]{0,6}[+0-9]{0,3}",
            duration in "[0-9]{0,4}(ms|s|m|h|x|)",
        ) {
            let text = format!(
                "[[scenario]]\nname = \"n\"\nbudget = \"{duration}\"\n[scenario.service]\nsignals = {{ {signal:?} = {{ exit_after = \"{duration}\" }} }}\n[scenario.expect]\nnever = [{signal:?}]\n"
            );
            match Scenario::parse_file(&text) {
                Ok(scenarios) => proptest::prop_assert_eq!(scenarios.len(), 1),
                Err(error) => proptest::prop_assert!(!error.is_empty()),
            }
        }
    }
}
