//! The contract's types in idiomatic Rust: what a policy receives and what it answers.
//!
//! They mirror `wit/policy.wit` one to one, with `std::time::Duration` for times and [`Signal`]
//! for signal names. They are plain data (serde-serializable, JSON field names in snake case), so
//! the same values serve policies compiled to Wasm, policies tested natively, the host's
//! reports and scenario files.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Signal;

/// Serde helpers that write a `Duration` as whole milliseconds.
pub mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the duration as milliseconds.
    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    /// Reads milliseconds into a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }

    /// The same for `Option<Duration>`.
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        /// Writes the duration as milliseconds, or null.
        pub fn serialize<S: Serializer>(
            duration: &Option<Duration>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match duration {
                Some(duration) => super::serialize(duration, serializer),
                None => serializer.serialize_none(),
            }
        }

        /// Reads milliseconds or null.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            Ok(Option::<u64>::deserialize(deserializer)?.map(Duration::from_millis))
        }
    }
}

/// Docker's health status of a container that defines a health check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// The health check has not passed yet.
    Starting,
    /// The last health checks passed.
    Healthy,
    /// The health check failed its retries.
    Unhealthy,
}

/// The container's compose membership.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComposeInfo {
    /// The compose project name.
    pub project: String,
    /// The service name within the project.
    pub service: String,
    /// The services this one depends on.
    pub depends_on: Vec<String>,
}

/// What the host knows of the service before it touches it (from `docker inspect`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceFacts {
    /// The full container id.
    pub id: String,
    /// The container name, without the leading `/`.
    pub name: String,
    /// The image reference the container was created from.
    pub image: String,
    /// The container's labels.
    pub labels: Vec<(String, String)>,
    /// The configured stop signal (`StopSignal`), if any.
    pub stop_signal: Option<Signal>,
    /// The configured stop timeout (`StopTimeout`), if any.
    #[serde(with = "millis::option", rename = "stop_timeout_ms")]
    pub stop_timeout: Option<Duration>,
    /// The argv of PID 1: entrypoint followed by command.
    pub command: Vec<String>,
    /// True when Docker's own init runs as PID 1 in front of `command`.
    pub init: bool,
    /// The restart policy name: `no`, `always`, `unless-stopped` or `on-failure`.
    pub restart_policy: String,
    /// The health status, when the container has a health check.
    pub health: Option<Health>,
    /// Compose membership, if any.
    pub compose: Option<ComposeInfo>,
    /// When the container started (RFC 3339), if known.
    pub started_at: Option<String>,
}

impl Default for ServiceFacts {
    fn default() -> ServiceFacts {
        ServiceFacts {
            id: String::new(),
            name: String::new(),
            image: String::new(),
            labels: Vec::new(),
            stop_signal: None,
            stop_timeout: None,
            command: Vec::new(),
            init: false,
            restart_policy: "no".to_string(),
            health: None,
            compose: None,
            started_at: None,
        }
    }
}

impl ServiceFacts {
    /// The value of a label, if the container has it.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// What a `wait` step waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitCondition {
    /// The container has exited.
    Exited,
    /// This command, run inside the container, exits with status 0.
    Probe(Vec<String>),
    /// The container's health status equals this one.
    Health(Health),
    /// A line containing this text appears in the container's output.
    LogLine(String),
    /// Nothing: the time passes.
    Elapsed,
}

/// One step of a shutdown sequence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Deliver a signal to the container's PID 1.
    Signal(Signal),
    /// Run a command inside the container.
    Exec {
        /// The command and its arguments (no shell).
        argv: Vec<String>,
        /// How long it may run.
        #[serde(with = "millis", rename = "timeout_ms")]
        timeout: Duration,
    },
    /// Call an HTTP endpoint the operator allowed.
    Http {
        /// The method, e.g. `POST`.
        method: String,
        /// An absolute `http://` URL.
        url: String,
        /// The request body, if any.
        #[serde(default)]
        body: Option<String>,
        /// How long the call may take.
        #[serde(with = "millis", rename = "timeout_ms")]
        timeout: Duration,
    },
    /// Wait for a condition, at most `timeout`.
    Wait {
        /// The condition.
        until: WaitCondition,
        /// The longest wait.
        #[serde(with = "millis", rename = "timeout_ms")]
        timeout: Duration,
    },
    /// SIGKILL: the last resort.
    Kill,
    /// The sequence is over.
    Finish,
}

impl Step {
    /// Deliver `signal` to PID 1.
    pub fn signal(signal: Signal) -> Step {
        Step::Signal(signal)
    }

    /// Run `argv` inside the container, for at most `timeout`.
    pub fn exec<I, S>(argv: I, timeout: Duration) -> Step
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Step::Exec {
            argv: argv.into_iter().map(Into::into).collect(),
            timeout,
        }
    }

    /// POST to `url` (a drain endpoint), for at most `timeout`.
    pub fn http_post(url: impl Into<String>, timeout: Duration) -> Step {
        Step::Http {
            method: "POST".to_string(),
            url: url.into(),
            body: None,
            timeout,
        }
    }

    /// Wait until the container exits, at most `timeout`.
    pub fn wait_for_exit(timeout: Duration) -> Step {
        Step::wait(WaitCondition::Exited, timeout)
    }

    /// Wait until `until` holds, at most `timeout`.
    pub fn wait(until: WaitCondition, timeout: Duration) -> Step {
        Step::Wait { until, timeout }
    }

    /// Let `duration` pass.
    pub fn sleep(duration: Duration) -> Step {
        Step::wait(WaitCondition::Elapsed, duration)
    }

    /// SIGKILL.
    pub fn kill() -> Step {
        Step::Kill
    }

    /// End the sequence.
    pub fn finish() -> Step {
        Step::Finish
    }
}

impl Step {
    /// The stable name of the step's kind: `signal`, `exec`, `http`, `wait`, `kill`, `finish`.
    pub fn action(&self) -> &'static str {
        match self {
            Step::Signal(_) => "signal",
            Step::Exec { .. } => "exec",
            Step::Http { .. } => "http",
            Step::Wait { .. } => "wait",
            Step::Kill => "kill",
            Step::Finish => "finish",
        }
    }

    /// The step in words for reports, progress and transcripts: (action, detail), e.g.
    /// `("signal", "SIGQUIT")`, `("wait", "exit (up to 30s)")`.
    pub fn describe(&self) -> (String, String) {
        let human = |duration: &Duration| humantime::format_duration(*duration).to_string();
        let detail = match self {
            Step::Signal(signal) => signal.name(),
            Step::Exec { argv, timeout } => {
                format!("{} (timeout {})", argv.join(" "), human(timeout))
            }
            Step::Http {
                method,
                url,
                timeout,
                ..
            } => format!("{method} {url} (timeout {})", human(timeout)),
            Step::Wait { until, timeout } => {
                let what = match until {
                    WaitCondition::Exited => "exit".to_string(),
                    WaitCondition::Probe(argv) => format!("probe `{}`", argv.join(" ")),
                    WaitCondition::Health(health) => format!("health {health:?}").to_lowercase(),
                    WaitCondition::LogLine(text) => format!("log line {text:?}"),
                    WaitCondition::Elapsed => "time".to_string(),
                };
                format!("{what} (up to {})", human(timeout))
            }
            Step::Kill => "SIGKILL".to_string(),
            Step::Finish => String::new(),
        };
        (self.action().to_string(), detail)
    }
}

/// What came of a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The signal was delivered to PID 1.
    SignalDelivered,
    /// The command ran to completion.
    ExecCompleted {
        /// Its exit status.
        exit_code: i32,
        /// The end of its combined output.
        output_tail: String,
    },
    /// The endpoint answered.
    HttpCompleted {
        /// The response status.
        status: u16,
        /// The end of the response body.
        body_tail: String,
    },
    /// The awaited condition holds.
    ConditionMet,
    /// The step's timeout passed first.
    TimedOut,
    /// The container was killed.
    Killed,
    /// The container had stopped, so the step was not (fully) taken.
    ContainerStopped,
    /// The host could not perform the step.
    Failed(String),
}

impl Outcome {
    /// The outcome in words: `delivered`, `exit 0: <last line>`, `HTTP 202`, `condition met`,
    /// `timed out`, `killed`, `container stopped`, `failed: <reason>`.
    pub fn describe(&self) -> String {
        match self {
            Outcome::SignalDelivered => "delivered".into(),
            Outcome::ExecCompleted {
                exit_code,
                output_tail,
            } => {
                let last = output_tail.lines().last().unwrap_or("").trim();
                if last.is_empty() {
                    format!("exit {exit_code}")
                } else {
                    let last: String = last.chars().take(120).collect();
                    format!("exit {exit_code}: {last}")
                }
            }
            Outcome::HttpCompleted { status, .. } => format!("HTTP {status}"),
            Outcome::ConditionMet => "condition met".into(),
            Outcome::TimedOut => "timed out".into(),
            Outcome::Killed => "killed".into(),
            Outcome::ContainerStopped => "container stopped".into(),
            Outcome::Failed(reason) => format!("failed: {reason}"),
        }
    }
}

/// A step that was taken, with its outcome and timing since the sequence began.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step the policy asked for.
    pub step: Step,
    /// What came of it.
    pub outcome: Outcome,
    /// When it started.
    #[serde(with = "millis", rename = "started_ms")]
    pub started: Duration,
    /// When it ended.
    #[serde(with = "millis", rename = "ended_ms")]
    pub ended: Duration,
}

/// The container's state as the host last observed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerState {
    /// True while the container runs.
    pub running: bool,
    /// The exit status once it has stopped.
    pub exit_code: Option<i32>,
    /// The current health status, when it has a health check.
    pub health: Option<Health>,
}

impl Default for ContainerState {
    fn default() -> ContainerState {
        ContainerState {
            running: true,
            exit_code: None,
            health: None,
        }
    }
}

/// Everything a policy may know when it decides the next step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Context {
    /// The service's facts.
    pub service: ServiceFacts,
    /// The operator's settings, as JSON.
    pub settings: String,
    /// Every step taken so far, oldest first.
    pub history: Vec<StepRecord>,
    /// The container's state now.
    pub state: ContainerState,
    /// Time since the sequence began.
    #[serde(with = "millis", rename = "elapsed_ms")]
    pub elapsed: Duration,
    /// Time left in the service's budget.
    #[serde(with = "millis", rename = "remaining_ms")]
    pub remaining: Duration,
}

impl Context {
    /// The most recent step and its outcome, if any step was taken.
    pub fn last(&self) -> Option<&StepRecord> {
        self.history.last()
    }

    /// How many steps were taken so far.
    pub fn steps_taken(&self) -> usize {
        self.history.len()
    }

    /// The signals delivered so far, in order.
    pub fn signals_sent(&self) -> impl Iterator<Item = Signal> + '_ {
        self.history.iter().filter_map(|record| match record.step {
            Step::Signal(signal) if record.outcome == Outcome::SignalDelivered => Some(signal),
            _ => None,
        })
    }

    /// True when `signal` was delivered at least once.
    pub fn has_sent(&self, signal: Signal) -> bool {
        self.signals_sent().any(|sent| sent == signal)
    }

    /// True once the container has stopped.
    pub fn has_stopped(&self) -> bool {
        !self.state.running
    }
}

/// A description of the policy, used for listing and auto-selection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInfo {
    /// The name used in the `quiesce.policy` label and the config.
    pub name: String,
    /// The policy's own version (semver).
    pub version: String,
    /// One line: which services it is for and what it does.
    pub description: String,
    /// The contract version the policy was built for.
    pub contract_version: String,
    /// Image name patterns the policy is meant for.
    pub images: Vec<String>,
    /// Documentation of its settings (Markdown).
    pub settings_doc: String,
}

/// Serde helpers for settings durations written as people write them: `"90s"`, `"15m"`,
/// `"1m 30s"`, `"250ms"`; a bare number means seconds.
pub mod human_duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    /// The longest duration accepted (365 days): a budget, deadline or timeout beyond it is a
    /// mistake, and one near `u64::MAX` seconds once overflowed a clock after the container's
    /// restart policy had been changed (issue 17, class 10).
    pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

    /// Parses `"90s"`, `"15m"`, `"1h 30m"`, `"250ms"` or a number of seconds, at most [`MAX`].
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        if text.starts_with('-') {
            return Err(format!(
                "a duration cannot be negative ({text:?}): write e.g. 90s, 15m, 1m30s or 250ms"
            ));
        }
        let duration = match text.parse::<u64>() {
            Ok(seconds) => Duration::from_secs(seconds),
            Err(_) => humantime::parse_duration(text).map_err(|error| {
                format!("invalid duration {text:?} ({error}): write e.g. 90s, 15m, 1m30s or 250ms")
            })?,
        };
        at_most_max(duration, text)
    }

    /// `duration`, unless it is longer than [`MAX`].
    fn at_most_max(duration: Duration, written: &str) -> Result<Duration, String> {
        if duration > MAX {
            return Err(format!(
                "duration {written:?} is longer than the most accepted, 365 days: write e.g. 90s, 15m or 2h"
            ));
        }
        Ok(duration)
    }

    /// Writes the duration as `humantime` does (`1m 30s`).
    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(*duration))
    }

    /// Reads a duration string or a number of seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(Written)
    }

    /// What a duration may be written as, and what is said of anything else.
    struct Written;

    impl serde::de::Visitor<'_> for Written {
        type Value = Duration;

        fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
            formatter.write_str(
                "a duration such as \"90s\", \"15m\" or \"250ms\", or a whole number of seconds",
            )
        }

        fn visit_u64<E: serde::de::Error>(self, seconds: u64) -> Result<Duration, E> {
            at_most_max(Duration::from_secs(seconds), &seconds.to_string()).map_err(E::custom)
        }

        fn visit_i64<E: serde::de::Error>(self, seconds: i64) -> Result<Duration, E> {
            match u64::try_from(seconds) {
                Ok(seconds) => self.visit_u64(seconds),
                Err(_) => Err(E::custom(format!(
                    "a duration cannot be negative ({seconds}): write e.g. 90s, 15m or a number of seconds such as 30"
                ))),
            }
        }

        fn visit_f64<E: serde::de::Error>(self, seconds: f64) -> Result<Duration, E> {
            if seconds < 0.0 {
                return Err(E::custom(format!(
                    "a duration cannot be negative ({seconds}): write e.g. 90s, 15m or a number of seconds such as 30"
                )));
            }
            if seconds.fract() != 0.0 {
                return Err(E::custom(format!(
                    "a bare number of seconds must be whole ({seconds}): write e.g. \"1500ms\" or \"1m30s\""
                )));
            }
            // Whole (`1e3`): as many seconds, refused beyond the longest accepted.
            match Duration::try_from_secs_f64(seconds) {
                Ok(duration) => at_most_max(duration, &seconds.to_string()).map_err(E::custom),
                Err(_) => Err(E::custom(format!(
                    "duration {seconds} is longer than the most accepted, 365 days: write e.g. 90s, 15m or 2h"
                ))),
            }
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
            parse(text).map_err(E::custom)
        }
    }

    /// The same for `Option<Duration>`.
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        /// Writes the duration, or null.
        pub fn serialize<S: Serializer>(
            duration: &Option<Duration>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match duration {
                Some(duration) => super::serialize(duration, serializer),
                None => serializer.serialize_none(),
            }
        }

        /// Reads a duration, or null.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(with = "super")] Duration);
            Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(duration)| duration))
        }
    }
    #[cfg(test)]
    mod tests {
        use super::*;

        /// Issue 30: `-5` once said "data did not match any variant of untagged enum".
        #[test]
        fn a_negative_or_fractional_number_says_what_a_duration_is() {
            use serde::Deserialize;
            #[derive(Debug, Deserialize)]
            struct Settings {
                #[serde(with = "super")]
                #[allow(dead_code)]
                timeout: Duration,
            }
            let read = |json: &str| serde_json::from_str::<Settings>(json).map(|_| ());
            let negative = read(r#"{"timeout": -5}"#).unwrap_err().to_string();
            assert!(negative.contains("cannot be negative (-5)"), "{negative}");
            let text = read(r#"{"timeout": "-5s"}"#).unwrap_err().to_string();
            assert!(text.contains("cannot be negative"), "{text}");
            let fraction = read(r#"{"timeout": 1.5}"#).unwrap_err().to_string();
            assert!(fraction.contains("must be whole"), "{fraction}");
            assert!(read(r#"{"timeout": 1e3}"#).is_ok());
            let huge = read(r#"{"timeout": 1e30}"#).unwrap_err().to_string();
            assert!(huge.contains("365 days"), "{huge}");
            let other = read(r#"{"timeout": true}"#).unwrap_err().to_string();
            assert!(other.contains("a duration such as"), "{other}");
            assert!(read(r#"{"timeout": 30}"#).is_ok() && read(r#"{"timeout": "30s"}"#).is_ok());
        }

        /// Issue 17, class 10: `--budget 18446744073709551615s` once overflowed a clock.
        #[test]
        fn durations_beyond_a_year_are_refused_in_every_form() {
            assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
            assert_eq!(parse("365d"), Ok(MAX));
            for text in [
                "18446744073709551615s",
                "18446744073709551615",
                "366d",
                "1000years",
            ] {
                let error = parse(text).unwrap_err();
                assert!(
                    error.contains("365 days") || error.contains("invalid"),
                    "{text}: {error}"
                );
            }
            #[derive(Debug, serde::Deserialize)]
            struct Settings {
                #[serde(with = "super")]
                #[allow(dead_code)]
                budget: Duration,
            }
            let huge = serde_json::from_str::<Settings>(r#"{"budget": 18446744073709551615}"#);
            assert!(huge.unwrap_err().to_string().contains("365 days"));
        }
    }
}
