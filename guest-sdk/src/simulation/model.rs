//! Scripted services: how a service reacts to signals, what exec'd commands and HTTP
//! endpoints answer (possibly changing over time), its health and log lines. One model
//! serves the native harness (`cargo test`) and the runner's simulated engine
//! (`quiesce policy test`, `quiesce plan`), read from scenario files or built in code.
//!
//! Times are measured from the start of the shutdown sequence.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::{Health, ServiceFacts, Signal, human_duration};

/// What a service does when it receives a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalReaction {
    /// It exits this long after the signal.
    #[serde(with = "human_duration")]
    pub exit_after: Duration,
    /// With this status.
    #[serde(default)]
    pub exit_code: i32,
}

/// One phase of a command's answers: from `at` on, it answers this.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// From when: since the sequence began, or since `after_signal` was first delivered, or
    /// since `after_exec` first ran (never, if it never comes).
    #[serde(with = "human_duration")]
    pub at: Duration,
    /// Counted from the first delivery of this signal.
    #[serde(default)]
    pub after_signal: Option<Signal>,
    /// Counted from the first run of this command (its exact argv): an idle check that passes
    /// 5 s after the drain command, `{ at = "5s", after_exec = ["touch", "/tmp/drain"], status = 0 }`.
    #[serde(default)]
    pub after_exec: Option<Vec<String>>,
    /// Exit status (exec) or HTTP status (`exit_code` is read as the same).
    #[serde(default, alias = "exit_code")]
    pub status: Option<i32>,
    /// Output (exec) or body (HTTP).
    #[serde(default)]
    pub output: Option<String>,
}

/// What an exec'd command answers.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecRule {
    /// The exact argv it answers to.
    pub command: Vec<String>,
    /// Its exit status (before any phase).
    #[serde(default)]
    pub exit_code: i32,
    /// Its output (before any phase).
    #[serde(default)]
    pub output: String,
    /// Later answers: e.g. an in-flight count that falls.
    #[serde(default)]
    pub timeline: Vec<Phase>,
    /// It never returns (the runner's timeout ends it).
    #[serde(default)]
    pub hang: bool,
    /// Running it makes the service exit (like `nginx -s quit`), this long after.
    #[serde(default, with = "human_duration::option")]
    pub exits_service_after: Option<Duration>,
}

/// What an HTTP endpoint answers.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRule {
    /// The exact URL it answers to.
    pub url: String,
    /// The status (before any phase).
    #[serde(default = "ok_status")]
    pub status: u16,
    /// The body (before any phase).
    #[serde(default)]
    pub body: String,
    /// Later answers.
    #[serde(default)]
    pub timeline: Vec<Phase>,
    /// It never answers.
    #[serde(default)]
    pub hang: bool,
    /// Calling it makes the service exit, this long after.
    #[serde(default, with = "human_duration::option")]
    pub exits_service_after: Option<Duration>,
}

fn ok_status() -> u16 {
    200
}

/// A log line the service prints.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRule {
    /// The line.
    pub line: String,
    /// When: since the sequence began, or since `after_signal` was first delivered.
    #[serde(with = "human_duration")]
    pub at: Duration,
    /// Counted from the first delivery of this signal (never printed if it never comes).
    #[serde(default)]
    pub after_signal: Option<Signal>,
    /// Counted from the first run of this command (never printed if it never runs).
    #[serde(default)]
    pub after_exec: Option<Vec<String>>,
}

/// What was done to the service so far, with when (since the sequence began): what phases,
/// log lines and answers counted from a signal or a command are counted from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Happened {
    /// The signals delivered.
    pub signals: Vec<(Duration, Signal)>,
    /// The commands run (exec steps and probes), when each started.
    pub execs: Vec<(Duration, Vec<String>)>,
}

impl Happened {
    /// When a moment counted `at` from `after_signal` or `after_exec` (or from the start) is;
    /// `None` when what it counts from has not happened.
    fn moment(
        &self,
        at: Duration,
        after_signal: Option<Signal>,
        after_exec: Option<&[String]>,
    ) -> Option<Duration> {
        let signal = match after_signal {
            None => Duration::ZERO,
            Some(signal) => self.signals.iter().find(|(_, sent)| *sent == signal)?.0,
        };
        let exec = match after_exec {
            None => Duration::ZERO,
            Some(argv) => self.execs.iter().find(|(_, ran)| ran == argv)?.0,
        };
        Some(signal.max(exec) + at)
    }
}

/// The health status from a moment on.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthPhase {
    /// From when.
    #[serde(with = "human_duration")]
    pub at: Duration,
    /// The status.
    pub status: Health,
}

/// A scripted service: its facts and its behaviour.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceModel {
    /// The container name.
    pub name: String,
    /// The image reference.
    pub image: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The configured StopSignal.
    pub stop_signal: Option<Signal>,
    /// The configured StopTimeout.
    #[serde(with = "human_duration::option")]
    pub stop_timeout: Option<Duration>,
    /// PID 1's argv.
    pub command: Vec<String>,
    /// Docker's own init in front of PID 1.
    pub init: bool,
    /// The restart policy.
    pub restart_policy: String,
    /// Running when the sequence starts.
    pub running: bool,
    /// Reactions by signal name (`SIGTERM = { exit_after = "3s" }`). SIGKILL always exits at
    /// once with 137; other signals are ignored unless `any_signal` says otherwise.
    pub signals: BTreeMap<String, SignalReaction>,
    /// The reaction to every signal not in `signals`.
    pub any_signal: Option<SignalReaction>,
    /// Exec'd commands. A command with no rule answers exit 127 ("not found"), or exit 0 when
    /// `cooperative`.
    pub exec: Vec<ExecRule>,
    /// HTTP endpoints. A URL with no rule refuses the connection, or answers 200 when
    /// `cooperative`.
    pub http: Vec<HttpRule>,
    /// The health status over time (none: no health check, or healthy when `cooperative`).
    pub health: Vec<HealthPhase>,
    /// Log lines.
    pub logs: Vec<LogRule>,
    /// A service that does whatever is asked: unknown commands succeed, any log line or
    /// health status awaited appears at once. Used by `quiesce plan`.
    pub cooperative: bool,
    /// A service that answers nothing: unknown commands and endpoints hang until their
    /// timeout. Used for `quiesce plan`'s worst case.
    pub unresponsive: bool,
}

impl Default for ServiceModel {
    fn default() -> ServiceModel {
        ServiceModel {
            name: "service".to_string(),
            image: String::new(),
            labels: BTreeMap::new(),
            stop_signal: None,
            stop_timeout: None,
            command: Vec::new(),
            init: false,
            restart_policy: "no".to_string(),
            running: true,
            signals: BTreeMap::new(),
            any_signal: None,
            exec: Vec::new(),
            http: Vec::new(),
            health: Vec::new(),
            logs: Vec::new(),
            cooperative: false,
            unresponsive: false,
        }
    }
}

/// What a command or endpoint answers at a moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// It completes with this status and output (or body).
    Complete(i32, String),
    /// It never answers.
    Hang,
    /// There is nothing there (HTTP: connection refused).
    Refused,
}

impl ServiceModel {
    /// Exits at once on any signal; cooperates with everything.
    pub fn obedient() -> ServiceModel {
        ServiceModel {
            any_signal: Some(SignalReaction {
                exit_after: Duration::ZERO,
                exit_code: 0,
            }),
            cooperative: true,
            ..ServiceModel::default()
        }
    }

    /// Ignores every signal but SIGKILL; every command and call hangs.
    pub fn stubborn() -> ServiceModel {
        ServiceModel {
            unresponsive: true,
            ..ServiceModel::default()
        }
    }

    /// Drains for `drain` after `signal`, then exits 0; ignores other signals.
    pub fn drains_on(signal: Signal, drain: Duration) -> ServiceModel {
        ServiceModel::default().on_signal(signal, drain, 0)
    }

    /// Adds a reaction: `signal` makes it exit with `exit_code` after `delay`.
    pub fn on_signal(mut self, signal: Signal, delay: Duration, exit_code: i32) -> ServiceModel {
        self.signals.insert(
            signal.name(),
            SignalReaction {
                exit_after: delay,
                exit_code,
            },
        );
        self
    }

    /// Adds an exec rule.
    pub fn on_exec(mut self, rule: ExecRule) -> ServiceModel {
        self.exec.push(rule);
        self
    }

    /// Checks names in the model (signal names) and returns a readable error.
    pub fn check(&self) -> Result<(), String> {
        for name in self.signals.keys() {
            name.parse::<Signal>()
                .map_err(|error| format!("service.signals: {error}"))?;
        }
        Ok(())
    }

    /// The facts a policy sees.
    pub fn facts(&self) -> ServiceFacts {
        ServiceFacts {
            id: format!("sim-{}", self.name),
            name: self.name.clone(),
            image: self.image.clone(),
            labels: self
                .labels
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
            stop_signal: self.stop_signal,
            stop_timeout: self.stop_timeout,
            command: self.command.clone(),
            init: self.init,
            restart_policy: self.restart_policy.clone(),
            health: self.health_at(Duration::ZERO),
            compose: None,
            started_at: None,
        }
    }

    /// How the service reacts to `signal`: exit delay and status, or `None` (ignored).
    pub fn reaction(&self, signal: Signal) -> Option<(Duration, i32)> {
        if signal == Signal::KILL {
            return Some((Duration::ZERO, 137));
        }
        self.signals
            .iter()
            .find(|(name, _)| name.parse::<Signal>() == Ok(signal))
            .map(|(_, reaction)| reaction)
            .or(self.any_signal.as_ref())
            .map(|reaction| (reaction.exit_after, reaction.exit_code))
    }

    /// What `argv` answers at `at`, given what `happened`, and whether running it makes the
    /// service exit (after).
    pub fn exec_answer(
        &self,
        argv: &[String],
        at: Duration,
        happened: &Happened,
    ) -> (Answer, Option<Duration>) {
        match self.exec.iter().find(|rule| rule.command == argv) {
            Some(rule) if rule.hang => (Answer::Hang, None),
            Some(rule) => {
                let (status, output) =
                    phase_at(&rule.timeline, at, happened, rule.exit_code, &rule.output);
                (Answer::Complete(status, output), rule.exits_service_after)
            }
            None if self.cooperative => (Answer::Complete(0, String::new()), None),
            None if self.unresponsive => (Answer::Hang, None),
            None => (
                Answer::Complete(127, format!("{}: command not found", argv.join(" "))),
                None,
            ),
        }
    }

    /// What `url` answers at `at`, given what `happened`, and whether calling it makes the
    /// service exit (after).
    pub fn http_answer(
        &self,
        url: &str,
        at: Duration,
        happened: &Happened,
    ) -> (Answer, Option<Duration>) {
        match self.http.iter().find(|rule| rule.url == url) {
            Some(rule) if rule.hang => (Answer::Hang, None),
            Some(rule) => {
                let (status, body) = phase_at(
                    &rule.timeline,
                    at,
                    happened,
                    i32::from(rule.status),
                    &rule.body,
                );
                (Answer::Complete(status, body), rule.exits_service_after)
            }
            None if self.cooperative => (Answer::Complete(200, String::new()), None),
            None if self.unresponsive => (Answer::Hang, None),
            None => (Answer::Refused, None),
        }
    }

    /// The health status at `at`.
    pub fn health_at(&self, at: Duration) -> Option<Health> {
        self.health
            .iter()
            .filter(|phase| phase.at <= at)
            .max_by_key(|phase| phase.at)
            .map(|phase| phase.status)
            .or(self.cooperative.then_some(Health::Healthy))
    }

    /// When a line containing `text` appears at or after `since`, given what `happened` so
    /// far; `None` if it never does.
    pub fn log_line_at(
        &self,
        text: &str,
        since: Duration,
        happened: &Happened,
    ) -> Option<Duration> {
        if self.cooperative {
            return Some(since);
        }
        self.logs
            .iter()
            .filter(|rule| rule.line.contains(text))
            .filter_map(|rule| {
                happened.moment(rule.at, rule.after_signal, rule.after_exec.as_deref())
            })
            .filter(|when| *when >= since)
            .min()
    }
}

/// The answer at `at`: the latest phase begun by then (counted from what it is counted from),
/// else the rule's own `status` and `output`.
fn phase_at(
    timeline: &[Phase],
    at: Duration,
    happened: &Happened,
    status: i32,
    output: &str,
) -> (i32, String) {
    timeline
        .iter()
        .filter_map(|phase| {
            let from =
                happened.moment(phase.at, phase.after_signal, phase.after_exec.as_deref())?;
            (from <= at).then_some((from, phase))
        })
        .max_by_key(|(from, _)| *from)
        .map(|(_, phase)| {
            (
                phase.status.unwrap_or(status),
                phase.output.clone().unwrap_or_else(|| output.to_string()),
            )
        })
        .unwrap_or_else(|| (status, output.to_string()))
}
