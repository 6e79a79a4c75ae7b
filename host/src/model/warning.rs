//! Warnings: what the operator should know about a run or a service. Each has a stable code
//! that automation matches on (README "Warnings" lists them) and a message for people, which
//! may change between releases.

use std::fmt;

use quiesce_policy_sdk::sequence::Note;
use serde::Serialize;

/// The code of a warning the runner raises itself (a sequence's notes bring their own,
/// [`quiesce_policy_sdk::sequence::NoteKind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WarningCode {
    /// `--all` found no running container.
    NothingRunning,
    /// A container disappeared between listing and inspection.
    ContainerDisappeared,
    /// The run was interrupted before a service's turn: it was not stopped.
    NotStarted,
    /// A second interrupt abandoned a running sequence.
    Abandoned,
    /// The worst case exceeds `--within`.
    OverWindow,
    /// The budget ends before the policy's own sequence would.
    BudgetBelowPolicy,
    /// A stop did not wait for its policy's longest path to be worked out (it takes seconds).
    WorstCaseUnchecked,
    /// The systemd unit's own stop gives less time than the policy's worst case.
    UnitStopTooShort,
    /// Holding the systemd unit (Restart=no) failed; the container was not touched.
    UnitHoldFailed,
    /// The systemd unit is still held after the stop.
    UnitStillHeld,
    /// The systemd unit had not settled after the container stopped; it was given back anyway.
    UnitNotSettled,
    /// Another quiesce process is stopping the container (this one waited and sent nothing).
    StopInProgress,
    /// An earlier stop of the container left a change it did not give back (it was killed
    /// before it could, or it could not).
    EarlierStopKilled,
    /// The record of a stop could not be kept (the state directory is unusable).
    StopRecordFailed,
    /// PID 1 is a shell or script that may not pass signals on.
    Pid1Shell,
    /// PID 1 is dumb-init in group mode.
    Pid1DumbInitGroup,
    /// The process the signals reach will not act on some of them (no handler as PID 1,
    /// ignored, blocked).
    SignalNotHandled,
    /// Signals go to PID 1's children, but PID 1 has none.
    SignalTargetWithoutChild,
    /// A container's image matches several policies' patterns.
    PatternOverlap,
    /// A policy's image pattern matches every image (ignored).
    PatternMatchesEverything,
    /// The container could not be inspected; it was not touched.
    InspectFailed,
    /// The restart policy could not be turned off for the stop.
    RestartPolicyKept,
    /// The restart policy is still `no` after the stop (the container was left running, or
    /// the engine did not put the original back).
    RestartPolicyNotRestored,
    /// A command (an exec step, a probe) ran out of time and could not be stopped: it may
    /// still run in the container (a remote engine).
    ExecLeftRunning,
    /// The policy chosen is a registry policy that is withheld (never pulled, refused by the
    /// trust rules, damaged in the store): the service got the conservative `default`.
    PolicyWithheld,
}

impl WarningCode {
    /// The stable code, e.g. `budget-below-policy`.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningCode::NothingRunning => "nothing-running",
            WarningCode::ContainerDisappeared => "container-disappeared",
            WarningCode::NotStarted => "not-started",
            WarningCode::Abandoned => "abandoned",
            WarningCode::OverWindow => "over-window",
            WarningCode::BudgetBelowPolicy => "budget-below-policy",
            WarningCode::WorstCaseUnchecked => "worst-case-unchecked",
            WarningCode::UnitStopTooShort => "unit-stop-too-short",
            WarningCode::UnitHoldFailed => "unit-hold-failed",
            WarningCode::UnitStillHeld => "unit-still-held",
            WarningCode::UnitNotSettled => "unit-not-settled",
            WarningCode::StopInProgress => "stop-in-progress",
            WarningCode::EarlierStopKilled => "earlier-stop-killed",
            WarningCode::StopRecordFailed => "stop-record-failed",
            WarningCode::Pid1Shell => "pid1-shell",
            WarningCode::Pid1DumbInitGroup => "pid1-dumb-init-group",
            WarningCode::SignalNotHandled => "signal-not-handled",
            WarningCode::SignalTargetWithoutChild => "signal-target-without-child",
            WarningCode::PatternOverlap => "pattern-overlap",
            WarningCode::PatternMatchesEverything => "pattern-matches-everything",
            WarningCode::InspectFailed => "inspect-failed",
            WarningCode::RestartPolicyKept => "restart-policy-kept",
            WarningCode::RestartPolicyNotRestored => "restart-policy-not-restored",
            WarningCode::ExecLeftRunning => "exec-left-running",
            WarningCode::PolicyWithheld => "policy-withheld",
        }
    }
}

/// One warning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Warning {
    /// The stable code.
    pub code: &'static str,
    /// What it means, in words.
    pub message: String,
}

impl Warning {
    /// A warning of the runner's.
    pub fn new(code: WarningCode, message: impl Into<String>) -> Warning {
        Warning {
            code: code.as_str(),
            message: message.into(),
        }
    }
}

impl From<&Note> for Warning {
    fn from(note: &Note) -> Warning {
        Warning {
            code: note.kind.as_str(),
            message: note.text.clone(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.message, self.code)
    }
}
