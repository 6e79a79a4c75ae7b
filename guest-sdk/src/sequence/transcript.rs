//! The record of one service's shutdown: who chose each step ([`StepOrigin`]), the steps as
//! they happened ([`TranscriptStep`]), the notes for the operator ([`Note`], [`NoteKind`]), how
//! it ended ([`ServiceOutcome`]), and the [`Transcript`] that holds them, with its text form.

use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::PolicyFailure;
use crate::{Outcome, Signal, Step};

/// Who chose a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum StepOrigin {
    /// The service's policy.
    Policy,
    /// The conservative fallback sequence, after the policy failed.
    Fallback,
    /// The runner itself (budget exhausted, or verifying a `finish`).
    Runner,
}

impl StepOrigin {
    /// `policy`, `fallback` or `runner`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepOrigin::Policy => "policy",
            StepOrigin::Fallback => "fallback",
            StepOrigin::Runner => "runner",
        }
    }
}

/// How a service's shutdown ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum ServiceOutcome {
    /// It exited by itself after the policy's graceful steps; nothing was killed.
    Graceful,
    /// It exited after an escalation the policy chose: a signal sent because it had not
    /// exited within a wait for its exit (INT, QUIT, an immediate shutdown). Work in flight may
    /// have been cut; nothing was SIGKILLed.
    Escalated,
    /// It needed SIGKILL (the policy asked for it, or its budget ran out).
    Killed,
    /// The policy failed; the conservative sequence stopped it.
    Fallback,
    /// It was not running when the sequence began.
    AlreadyStopped,
    /// It disappeared during the sequence (removed by someone else).
    Gone,
    /// It could not be stopped (an engine error, or left running at the end of its budget).
    Failed,
}

impl ServiceOutcome {
    /// The stable name used in reports, summaries and scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceOutcome::Graceful => "graceful",
            ServiceOutcome::Escalated => "escalated",
            ServiceOutcome::Killed => "killed",
            ServiceOutcome::Fallback => "fallback",
            ServiceOutcome::AlreadyStopped => "already-stopped",
            ServiceOutcome::Gone => "gone",
            ServiceOutcome::Failed => "failed",
        }
    }

    /// True for the outcomes that count as a clean stop for the exit status.
    pub fn is_clean(self) -> bool {
        matches!(
            self,
            ServiceOutcome::Graceful | ServiceOutcome::AlreadyStopped | ServiceOutcome::Gone
        )
    }
}

/// Compares with a stable name, so a test can say `assert_eq!(transcript.outcome, "graceful")`.
impl PartialEq<&str> for ServiceOutcome {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

impl fmt::Display for ServiceOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step as it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptStep {
    /// The step.
    pub step: Step,
    /// What came of it.
    pub outcome: Outcome,
    /// When it started, since the sequence began.
    #[serde(with = "crate::millis", rename = "start_ms")]
    pub started: Duration,
    /// When it ended.
    #[serde(with = "crate::millis", rename = "end_ms")]
    pub ended: Duration,
    /// Who chose it.
    pub by: StepOrigin,
}

impl TranscriptStep {
    /// `action detail`, e.g. `signal SIGQUIT`, `wait exit (up to 30s)`.
    pub fn line(&self) -> String {
        let (action, detail) = self.step.describe();
        if detail.is_empty() {
            action
        } else {
            format!("{action} {detail}")
        }
    }

    /// The signal this step delivered, if it delivered one (SIGKILL included).
    pub fn delivered(&self) -> Option<Signal> {
        match (&self.step, &self.outcome) {
            (Step::Signal(signal), Outcome::SignalDelivered) => Some(*signal),
            (Step::Kill, Outcome::Killed) => Some(Signal::KILL),
            _ => None,
        }
    }
}

/// What kind of thing a [`Note`] says: a stable code that automation can match on (the text is
/// for people and may change).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoteKind {
    /// The policy failed and the conservative sequence took over.
    Fallback,
    /// The budget ran out while the container still ran.
    BudgetExhausted,
    /// The policy's last word (after its budget) was not `kill`, and was ignored.
    LastWordIgnored,
    /// Left running at the end of its budget, as configured.
    LeftRunning,
    /// The policy finished while the container still ran.
    FinishedWhileRunning,
    /// The container exited, then ran again: something else restarted it.
    StartedAgain,
    /// Something other than quiesce SIGKILLed the container.
    ForeignKill,
}

impl NoteKind {
    /// The stable code, e.g. `budget-exhausted`.
    pub fn as_str(self) -> &'static str {
        match self {
            NoteKind::Fallback => "fallback",
            NoteKind::BudgetExhausted => "budget-exhausted",
            NoteKind::LastWordIgnored => "last-word-ignored",
            NoteKind::LeftRunning => "left-running",
            NoteKind::FinishedWhileRunning => "finished-while-running",
            NoteKind::StartedAgain => "started-again",
            NoteKind::ForeignKill => "foreign-kill",
        }
    }
}

/// Something the operator should know about a sequence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Its kind (a stable code).
    pub kind: NoteKind,
    /// What happened, in words.
    pub text: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What happened to one service: every step, how it ended, and why the policy was replaced if
/// it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    /// The steps, in order.
    pub steps: Vec<TranscriptStep>,
    /// How it ended.
    pub outcome: ServiceOutcome,
    /// Its exit status, once it stopped.
    pub exit_code: Option<i32>,
    /// How long the sequence took.
    #[serde(with = "crate::millis", rename = "elapsed_ms")]
    pub elapsed: Duration,
    /// Why the conservative sequence took over, if it did.
    pub fallback: Option<PolicyFailure>,
    /// The fallback note (`policy `x` trapped: ...; the conservative sequence ... took over`).
    pub fallback_reason: Option<String>,
    /// What the operator should know, in the order it happened.
    pub notes: Vec<Note>,
    /// What the policy wrote to stdout/stderr (capped at 64 KiB).
    pub policy_log: String,
}

impl Transcript {
    /// The signals delivered, with the index of the step each came from (SIGKILL included).
    pub fn signals(&self) -> Vec<(usize, &TranscriptStep, Signal)> {
        self.steps
            .iter()
            .enumerate()
            .filter_map(|(index, step)| Some((index, step, step.delivered()?)))
            .collect()
    }

    /// True when SIGKILL was delivered by a step.
    pub fn killed(&self) -> bool {
        self.signals()
            .iter()
            .any(|(_, _, signal)| *signal == Signal::KILL)
    }
}

fn at(duration: Duration) -> String {
    format!("+{:.3}s", duration.as_secs_f64())
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, step) in self.steps.iter().enumerate() {
            let mut line = format!(
                "  {:>2}. {:>9}  {}  -> {}",
                index + 1,
                at(step.started),
                step.line(),
                step.outcome.describe()
            );
            if step.by != StepOrigin::Policy {
                let _ = write!(line, "  [{}]", step.by.as_str());
            }
            writeln!(f, "{line}")?;
        }
        writeln!(
            f,
            "  outcome {} (exit {}) after {}{}",
            self.outcome,
            self.exit_code
                .map_or("-".to_string(), |code| code.to_string()),
            at(self.elapsed),
            self.fallback
                .as_ref()
                .map_or(String::new(), |failure| format!(
                    "; policy failed ({}): {}",
                    failure.kind, failure.message
                ))
        )
    }
}
