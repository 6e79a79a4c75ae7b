//! What a driver and a [`Sequence`](super::Sequence) exchange: the primitive [`Action`]s the
//! driver performs (and the [`Until`] of a wait), the policy it is asked through ([`Decide`],
//! answering [`Decided`] or a [`PolicyFailure`]), and the progress [`SequenceEvent`]s.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Note, StepOrigin};
use crate::{Context, Outcome, Signal, Step};

/// A primitive the driver performs, then reports on. Every action ends at its `limit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Deliver a signal to the service's main process. Answer: `SignalDelivered`,
    /// `ContainerStopped` (it had stopped) or `Failed`.
    Signal {
        /// The signal.
        signal: Signal,
        /// How long the engine may take to answer.
        limit: Duration,
    },
    /// Run a command beside the service (inside its container). Answer: `ExecCompleted`,
    /// `TimedOut`, `ContainerStopped` (it stopped first; the command is stopped) or `Failed`.
    Exec {
        /// The command and its arguments.
        argv: Vec<String>,
        /// How long it may run; the driver stops it then.
        limit: Duration,
    },
    /// Call an HTTP endpoint (already checked against the allowed addresses). Answer:
    /// `HttpCompleted`, `TimedOut` or `Failed`. The service's exit does not end it.
    Http {
        /// The method.
        method: String,
        /// The URL.
        url: String,
        /// The request body.
        body: Option<String>,
        /// How long the call may take.
        limit: Duration,
    },
    /// Wait. Answer: `ConditionMet` (for [`Until::Exit`]: the service exited), `ContainerStopped`
    /// (it exited while waiting for something else) or `TimedOut`.
    Wait {
        /// For what.
        until: Until,
        /// The longest wait.
        limit: Duration,
    },
    /// Read the service's state now (for its health). Answer with
    /// [`Sequence::observed`](super::Sequence::observed).
    Observe,
    /// The sequence is over: read [`Sequence::transcript`](super::Sequence::transcript).
    Done,
}

/// What a primitive wait waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Until {
    /// The service's exit.
    Exit,
    /// A line containing this text in the service's output, printed after the wait began.
    LogLine(String),
    /// Nothing: the time passes (the exit ends it early).
    Time,
}

/// A policy's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decided {
    /// The step it chose.
    pub step: Step,
    /// What it wrote to stdout/stderr while deciding.
    pub log: String,
}

/// Why a policy gave no usable answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyFailure {
    /// A stable name: `time-limit`, `memory-limit`, `output-limit`, `stack-overflow`, `trap`,
    /// `instantiate`, `refused`, `invalid-answer`.
    pub kind: String,
    /// What happened, in words (`trapped: ...`, `returned an error: ...`).
    pub message: String,
    /// What it wrote to stdout/stderr during the failed call.
    #[serde(default)]
    pub log: String,
}

impl PolicyFailure {
    /// A failure of `kind` with `message` and no output.
    pub fn new(kind: &str, message: impl Into<String>) -> PolicyFailure {
        PolicyFailure {
            kind: kind.to_string(),
            message: message.into(),
            log: String::new(),
        }
    }
}

/// Something that decides steps: a compiled policy, a native one, a closure in a test.
pub trait Decide {
    /// The next step for `ctx`.
    fn decide(&mut self, ctx: &Context) -> Result<Decided, PolicyFailure>;
}

/// A closure is a policy whose errors are its own refusals.
impl<F: FnMut(&Context) -> Result<Step, String>> Decide for F {
    fn decide(&mut self, ctx: &Context) -> Result<Decided, PolicyFailure> {
        self(ctx)
            .map(|step| Decided {
                step,
                log: String::new(),
            })
            .map_err(|message| {
                PolicyFailure::new("refused", format!("returned an error: {message}"))
            })
    }
}

/// Progress, as it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SequenceEvent {
    /// A step began.
    StepStarted {
        /// When.
        at: Duration,
        /// The step.
        step: Step,
        /// Who chose it.
        by: StepOrigin,
    },
    /// A step ended.
    StepEnded {
        /// When.
        at: Duration,
        /// The step.
        step: Step,
        /// What came of it.
        outcome: Outcome,
        /// Who chose it.
        by: StepOrigin,
    },
    /// Something the operator should know (a fallback, the budget exhausted...).
    Note(Note),
}
