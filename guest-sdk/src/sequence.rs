//! One service's shutdown sequence, as a deterministic state machine.
//!
//! Every rule of a shutdown lives here once: asking the policy, refusing absurd answers, the
//! step cap, clipping every step to the budget and the run's deadline, the reserve kept for
//! SIGKILL, the last word when the budget runs out, the fallback to the conservative sequence
//! when a policy fails, `finish` while the service still runs, a SIGKILL that ends at the exit,
//! leave-running, and how probe and health waits are polled. It has no clock, no I/O and no
//! async (in the spirit of quinn-proto's protocol core): a driver tells it the time and what it
//! observed, and performs the primitive [`Action`]s it answers with.
//!
//! Two drivers exist: the SDK's native test harness (`testing`: synchronous, virtual time, a
//! scripted service) and the runner's executor (tokio, over a container runtime: Docker,
//! Podman, a local process, or the simulation behind `quiesce plan`). Both produce the same
//! typed [`Transcript`], so a scenario behaves the same natively and through the runner.
//!
//! The protocol, for a driver:
//! 1. [`Sequence::new`] with the configuration and the state observed before the start.
//! 2. Repeat: [`Sequence::poll`] gives the next [`Action`]; perform it and answer with
//!    [`Sequence::complete`] (an [`Outcome`]), or for [`Action::Observe`] with
//!    [`Sequence::observed`]. Whenever the driver learns that the service exited or vanished,
//!    it says so first, with [`Sequence::exited`] or [`Sequence::gone`].
//! 3. On [`Action::Done`], [`Sequence::transcript`] is the record.
//!
//! [`Sequence::poll_event`] yields progress as it happens: steps started and ended, notes.
//! Times are durations since the sequence began, as the driver measures them.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::conservative::Conservative;
use crate::rules::{
    FINISH_GRACE, KILL_RESERVE, POLL_INTERVAL, PROBE_TIMEOUT, check_step, http_allowed,
    kill_reserve, step_allowance,
};
use crate::{
    ContainerState, Context, Outcome, ServiceFacts, Signal, Step, StepRecord, WaitCondition,
};

/// What happens when a service's budget runs out while it still runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnBudgetExhausted {
    /// SIGKILL (the default).
    #[default]
    Kill,
    /// Leave it running and report it as not stopped.
    LeaveRunning,
}

/// Everything a sequence needs to know before it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceConfig {
    /// The service, as its policy sees it.
    pub facts: ServiceFacts,
    /// The policy's name, for notes about it.
    pub policy: String,
    /// The operator's settings for the policy (JSON).
    pub settings: String,
    /// The most time the service may take.
    pub budget: Duration,
    /// When the whole run's deadline falls, counted from this sequence's start, if it does.
    pub deadline: Option<Duration>,
    /// What happens when the budget runs out.
    pub on_exhausted: OnBudgetExhausted,
    /// `host:port` addresses besides loopback that HTTP steps may call.
    pub allow_http: Vec<String>,
}

impl SequenceConfig {
    /// A configuration with no settings, no deadline beyond the budget, SIGKILL at its end.
    pub fn new(facts: ServiceFacts, policy: &str, budget: Duration) -> SequenceConfig {
        SequenceConfig {
            facts,
            policy: policy.to_string(),
            settings: "{}".to_string(),
            budget,
            deadline: None,
            on_exhausted: OnBudgetExhausted::Kill,
            allow_http: Vec::new(),
        }
    }
}

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
    /// Read the service's state now (for its health). Answer with [`Sequence::observed`].
    Observe,
    /// The sequence is over: read [`Sequence::transcript`].
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

/// What the driver has learnt about the service's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    Exited(i32),
    Gone,
}

/// A wait polled by the sequence itself: a probe command or the health status.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Polled {
    Probe(Vec<String>),
    Health(crate::Health),
}

/// Where a step in progress stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Stage {
    /// One primitive; its answer is the step's outcome.
    Single,
    /// SIGKILL sent (by `kill`, or by a `signal` step naming it), its delivery not yet
    /// confirmed.
    KillSent,
    /// SIGKILL delivered: waiting, within the reserve, for the exit.
    KillSettling,
    /// A probe command runs, or the health status is read.
    Checking(Polled),
    /// Between two checks.
    Pausing(Polled),
}

/// What follows a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Then {
    /// Ask the policy again.
    Decide,
    /// A runner's or last word's SIGKILL: wait (recorded) for the exit if it still runs, then end.
    WaitAfterKill(StepOrigin),
    /// The sequence is over.
    End,
}

/// A step being performed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Current {
    step: Step,
    by: StepOrigin,
    started: Duration,
    /// When its time is up.
    end: Duration,
    stage: Stage,
    then: Then,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// The next step is the policy's (or the fallback's) to choose.
    Deciding,
    /// A step is being performed.
    Step(Current),
    /// The policy finished while the service still ran: a moment for an exit just behind.
    FinishGrace,
    /// Over.
    Done,
}

/// The fallback: from which step on, why, and whether it came only at the last word.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fallback {
    from: usize,
    /// The delivery of the conservative sequence's signal that the policy already made, if it
    /// made one: the fallback starts after it instead of sending that signal again (a second
    /// TERM means "now" to oslo.service, which would cut its work).
    prelude: Option<StepRecord>,
    failure: PolicyFailure,
    reason: String,
    at_last_word: bool,
}

/// The most policy output kept.
const LOG_CAP: usize = 64 << 10;

/// One service's shutdown in progress. See the module documentation for the protocol.
#[derive(Debug)]
pub struct Sequence {
    config: SequenceConfig,
    /// When steps must end, leaving the kill reserve.
    steps_end: Duration,
    now: Duration,
    state: ContainerState,
    exit: Option<Exit>,
    /// The state was read since the last step ended (no need to read it before deciding).
    fresh: bool,
    already_stopped: bool,
    history: Vec<StepRecord>,
    origins: Vec<StepOrigin>,
    fallback: Option<Fallback>,
    /// SIGKILL was delivered by one of the sequence's steps.
    killed: bool,
    log: String,
    notes: Vec<Note>,
    events: VecDeque<SequenceEvent>,
    phase: Phase,
    /// The action handed out and not yet answered, or the next one to hand out.
    next: Option<Action>,
    outcome: Option<ServiceOutcome>,
}

impl Sequence {
    /// A sequence for a service in `initial` state (as observed just before the start).
    pub fn new(config: SequenceConfig, initial: ContainerState) -> Sequence {
        let limit = config
            .deadline
            .map_or(config.budget, |deadline| deadline.min(config.budget));
        let steps_end = limit.saturating_sub(kill_reserve(config.budget));
        let already_stopped = !initial.running;
        let mut sequence = Sequence {
            config,
            steps_end,
            now: Duration::ZERO,
            exit: already_stopped.then(|| Exit::Exited(initial.exit_code.unwrap_or(0))),
            state: initial,
            fresh: true,
            already_stopped,
            history: Vec::new(),
            origins: Vec::new(),
            fallback: None,
            killed: false,
            log: String::new(),
            notes: Vec::new(),
            events: VecDeque::new(),
            phase: Phase::Deciding,
            next: None,
            outcome: None,
        };
        if already_stopped {
            sequence.end();
        }
        sequence
    }

    /// A sequence for a service that vanished before it started: over, `gone`.
    pub fn gone_before_start(config: SequenceConfig) -> Sequence {
        let mut sequence = Sequence::unobserved(config);
        sequence.gone();
        sequence
    }

    /// A sequence for a service whose state could not be read: over before any step,
    /// `failed` (nothing was touched).
    pub fn unobserved(config: SequenceConfig) -> Sequence {
        let mut sequence = Sequence::new(config, ContainerState::default());
        sequence.end();
        sequence
    }

    /// The next action, given the time now. `policy` is asked when a step must be chosen.
    pub fn poll(&mut self, now: Duration, policy: &mut dyn Decide) -> Action {
        self.advance(now);
        loop {
            if let Some(action) = &self.next {
                return action.clone();
            }
            match &self.phase {
                Phase::Done => return Action::Done,
                Phase::Deciding => self.choose(policy),
                Phase::Step(_) | Phase::FinishGrace => {
                    unreachable!("a step in progress always has its next action")
                }
            }
        }
    }

    /// The answer to the last [`Action`] (other than `Observe`), at `now`.
    pub fn complete(&mut self, now: Duration, outcome: Outcome) {
        self.advance(now);
        self.next = None;
        match std::mem::replace(&mut self.phase, Phase::Deciding) {
            Phase::Step(current) => self.step_answered(current, outcome),
            Phase::FinishGrace => self.after_finish_grace(),
            other => self.phase = other,
        }
    }

    /// The answer to [`Action::Observe`] at `now`: the state, or `None` when it could not be
    /// read (the last known state stands).
    pub fn observed(&mut self, now: Duration, state: Option<ContainerState>) {
        self.advance(now);
        self.next = None;
        if let Some(state) = state {
            if !state.running {
                self.exited(state.exit_code.unwrap_or(-1));
            }
            self.state.health = state.health;
        }
        // Read, or tried: the policy decides on what is known now.
        self.fresh = true;
        match std::mem::replace(&mut self.phase, Phase::Deciding) {
            Phase::Step(current) => {
                if let Stage::Checking(Polled::Health(wanted)) = &current.stage {
                    let met = self.state.health == Some(*wanted);
                    self.check_answered(current, met, false);
                } else {
                    self.phase = Phase::Step(current);
                }
            }
            other => self.phase = other,
        }
    }

    /// The service exited with `code`. Call it as soon as the driver knows, at any time.
    pub fn exited(&mut self, code: i32) {
        if self.exit.is_none() {
            self.exit = Some(Exit::Exited(code));
            self.state.running = false;
            self.state.exit_code = Some(code);
            self.amend_outcome();
        }
    }

    /// The service vanished (its container was removed). Call it at any time. A container
    /// removed after an exit of its own was seen (`--rm`, a unit's `ExecStopPost`) keeps that
    /// exit; one SIGKILLed by someone else and removed (`docker rm -f`) is gone.
    pub fn gone(&mut self) {
        let foreign_kill = self.exit == Some(Exit::Exited(137)) && !self.killed;
        if self.exit.is_none() || foreign_kill {
            self.notes.retain(|note| note.kind != NoteKind::ForeignKill);
            self.exit = Some(Exit::Gone);
            self.state.running = false;
            self.amend_outcome();
        }
    }

    /// After the end: the service, seen stopped, runs again (something else restarted it).
    pub fn running_again(&mut self) {
        if self.phase == Phase::Done && self.exit.is_some() {
            self.note(
                NoteKind::StartedAgain,
                "the container exited but is running again: something else restarted it during the stop"
                    .into(),
            );
            self.exit = None;
            self.state.running = true;
            self.state.exit_code = None;
            self.amend_outcome();
        }
    }

    /// After the end: the engine, asked again, gives another exit status than its wait did
    /// (an engine may report the status of a container that is being restarted).
    pub fn exit_restated(&mut self, code: i32) {
        if self.phase == Phase::Done
            && matches!(self.exit, Some(Exit::Exited(seen)) if seen != code)
        {
            self.exit = Some(Exit::Exited(code));
            self.state.exit_code = Some(code);
            self.note_foreign_kill();
            self.amend_outcome();
        }
    }

    /// The next progress event, if any.
    pub fn poll_event(&mut self) -> Option<SequenceEvent> {
        self.events.pop_front()
    }

    /// True once the sequence is over.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// True when SIGKILL was delivered by one of the sequence's steps.
    pub fn killed_by_us(&self) -> bool {
        self.killed
    }

    /// The exit status seen, if the service exited.
    pub fn exit_code(&self) -> Option<i32> {
        match self.exit {
            Some(Exit::Exited(code)) => Some(code),
            _ => None,
        }
    }

    /// The record so far (complete once the sequence is done).
    pub fn transcript(&self) -> Transcript {
        Transcript {
            steps: self
                .history
                .iter()
                .zip(&self.origins)
                .map(|(record, by)| TranscriptStep {
                    step: record.step.clone(),
                    outcome: record.outcome.clone(),
                    started: record.started,
                    ended: record.ended,
                    by: *by,
                })
                .collect(),
            outcome: self.outcome.unwrap_or(ServiceOutcome::Failed),
            exit_code: self.exit_code(),
            elapsed: self.now,
            fallback: self.fallback.as_ref().map(|f| f.failure.clone()),
            fallback_reason: self.fallback.as_ref().map(|f| f.reason.clone()),
            notes: self.notes.clone(),
            policy_log: self.log.clone(),
        }
    }

    fn advance(&mut self, now: Duration) {
        self.now = self.now.max(now);
    }

    fn note(&mut self, kind: NoteKind, text: String) {
        let note = Note { kind, text };
        self.events.push_back(SequenceEvent::Note(note.clone()));
        self.notes.push(note);
    }

    fn remaining(&self) -> Duration {
        self.steps_end.saturating_sub(self.now)
    }

    fn stopped(&self) -> bool {
        self.exit.is_some()
    }

    /// What the policy (or the fallback) is told.
    fn context(&self, remaining: Duration) -> Context {
        let (history, settings) = match &self.fallback {
            Some(fallback) => (
                fallback
                    .prelude
                    .iter()
                    .chain(&self.history[fallback.from..])
                    .cloned()
                    .collect(),
                String::new(),
            ),
            None => (self.history.clone(), self.config.settings.clone()),
        };
        Context {
            service: self.config.facts.clone(),
            settings,
            history,
            state: self.state.clone(),
            elapsed: self.now,
            remaining,
        }
    }

    /// Decides (and starts) what comes next.
    fn choose(&mut self, policy: &mut dyn Decide) {
        if self.exit == Some(Exit::Gone) {
            return self.end();
        }
        let remaining = self.remaining();
        if remaining.is_zero() {
            return self.budget_exhausted(policy);
        }
        // The state a policy sees is the state just observed: a health status is read again.
        if self.state.health.is_some() && !self.stopped() && !self.fresh {
            self.next = Some(Action::Observe);
            return;
        }
        let (step, by) = self.decide(remaining, policy, false);
        if step == Step::Finish {
            if self.stopped() {
                return self.end();
            }
            self.phase = Phase::FinishGrace;
            self.next = Some(Action::Wait {
                until: Until::Exit,
                limit: FINISH_GRACE,
            });
            return;
        }
        self.begin(step, by, remaining, Then::Decide);
    }

    /// Asks the policy, or the fallback once the policy has failed.
    fn decide(
        &mut self,
        remaining: Duration,
        policy: &mut dyn Decide,
        last_word: bool,
    ) -> (Step, StepOrigin) {
        if self.fallback.is_none() {
            let allowance = step_allowance(self.now);
            let answer = if self.history.len() >= allowance {
                Err(PolicyFailure::new(
                    "invalid-answer",
                    format!(
                        "gave an invalid answer: took more than {allowance} steps in {} (200, and two more a second, at most 10000)",
                        humantime::format_duration(Duration::from_millis(
                            u64::try_from(self.now.as_millis()).unwrap_or(u64::MAX)
                        ))
                    ),
                ))
            } else {
                policy.decide(&self.context(remaining)).and_then(|decided| {
                    self.append_log(&decided.log);
                    check_step(&decided.step)
                        .map(|()| decided.step)
                        .map_err(|reason| {
                            PolicyFailure::new(
                                "invalid-answer",
                                format!("gave an invalid answer: {reason}"),
                            )
                        })
                })
            };
            match answer {
                Ok(step) => return (step, StepOrigin::Policy),
                Err(failure) => self.fall_back(failure, last_word),
            }
        }
        let step = Conservative::default().next(&self.context(remaining));
        (step, StepOrigin::Fallback)
    }

    fn append_log(&mut self, log: &str) {
        if self.log.len() < LOG_CAP {
            let room = LOG_CAP - self.log.len();
            self.log.push_str(&log[..floor_char_boundary(log, room)]);
        }
    }

    fn fall_back(&mut self, failure: PolicyFailure, at_last_word: bool) {
        self.append_log(&failure.log);
        let signal = self.config.facts.stop_signal.unwrap_or(Signal::TERM);
        let prelude = self
            .history
            .iter()
            .rev()
            .find(|record| {
                record.step == Step::Signal(signal) && record.outcome == Outcome::SignalDelivered
            })
            .cloned();
        let sequence = if prelude.is_some() {
            format!("grace period, SIGKILL; {signal} was sent already and is not sent again")
        } else {
            "stop signal, grace period, SIGKILL".to_string()
        };
        let reason = format!(
            "policy `{}` {}; the conservative sequence ({sequence}) took over",
            self.config.policy, failure.message
        );
        self.note(NoteKind::Fallback, reason.clone());
        self.fallback = Some(Fallback {
            from: self.history.len(),
            prelude,
            failure,
            reason,
            at_last_word,
        });
    }

    /// The budget ran out: the policy's last word, then the configured ending.
    fn budget_exhausted(&mut self, policy: &mut dyn Decide) {
        if self.stopped() {
            return self.end();
        }
        self.note(
            NoteKind::BudgetExhausted,
            format!(
                "budget of {} exhausted while the container still runs",
                humantime::format_duration(self.config.budget)
            ),
        );
        let failing_now = self.fallback.is_none();
        let (last_word, by) = self.decide(Duration::ZERO, policy, true);
        if failing_now && self.fallback.is_some() {
            // The policy failed at its last word: the budget's ending, not the fallback's.
            return self.exhausted_ending();
        }
        if last_word == Step::Kill {
            return self.kill(by);
        }
        if last_word != Step::Finish {
            self.note(
                NoteKind::LastWordIgnored,
                format!(
                    "the policy asked for `{}` after its budget; ignored",
                    last_word.describe().0
                ),
            );
        }
        self.exhausted_ending();
    }

    /// SIGKILL or leave running, as the operator configured.
    fn exhausted_ending(&mut self) {
        match self.config.on_exhausted {
            OnBudgetExhausted::Kill => self.kill(StepOrigin::Runner),
            OnBudgetExhausted::LeaveRunning => {
                self.note(
                    NoteKind::LeftRunning,
                    "left running, as configured (on_budget_exhausted = \"leave-running\")".into(),
                );
                self.end();
            }
        }
    }

    /// SIGKILL within the reserve, then a wait for the exit if it still runs.
    fn kill(&mut self, by: StepOrigin) {
        let reserve = KILL_RESERVE.max(self.remaining());
        self.begin(Step::Kill, by, reserve, Then::WaitAfterKill(by));
    }

    fn after_finish_grace(&mut self) {
        if self.stopped() {
            return self.end();
        }
        self.note(
            NoteKind::FinishedWhileRunning,
            "the policy finished but the container still runs".into(),
        );
        match self.config.on_exhausted {
            OnBudgetExhausted::Kill => self.kill(StepOrigin::Runner),
            OnBudgetExhausted::LeaveRunning => self.end(),
        }
    }

    /// Starts `step`, bounded by `limit`; a step that needs no action is recorded at once.
    fn begin(&mut self, step: Step, by: StepOrigin, limit: Duration, then: Then) {
        self.events.push_back(SequenceEvent::StepStarted {
            at: self.now,
            step: step.clone(),
            by,
        });
        let stopped = self.stopped();
        let mut current = Current {
            step: step.clone(),
            by,
            started: self.now,
            end: self.now + limit,
            stage: Stage::Single,
            then,
        };
        let action = match &step {
            Step::Signal(_) | Step::Kill | Step::Exec { .. } if stopped => {
                return self.finish_step(current, Outcome::ContainerStopped);
            }
            Step::Signal(signal) if *signal != Signal::KILL => Action::Signal {
                signal: *signal,
                limit,
            },
            Step::Signal(_) | Step::Kill => {
                current.stage = Stage::KillSent;
                Action::Signal {
                    signal: Signal::KILL,
                    limit,
                }
            }
            Step::Exec { argv, timeout } => Action::Exec {
                argv: argv.clone(),
                limit: (*timeout).min(limit),
            },
            Step::Http {
                method,
                url,
                body,
                timeout,
            } => match http_allowed(url, &self.config.allow_http) {
                Err(reason) => return self.finish_step(current, Outcome::Failed(reason)),
                Ok(()) => Action::Http {
                    method: method.clone(),
                    url: url.clone(),
                    body: body.clone(),
                    limit: (*timeout).min(limit),
                },
            },
            Step::Wait { until, timeout } => {
                let limit = (*timeout).min(limit);
                current.end = self.now + limit;
                match until {
                    WaitCondition::Exited if stopped => {
                        return self.finish_step(current, Outcome::ConditionMet);
                    }
                    _ if stopped => return self.finish_step(current, Outcome::ContainerStopped),
                    WaitCondition::Exited => Action::Wait {
                        until: Until::Exit,
                        limit,
                    },
                    WaitCondition::Elapsed => Action::Wait {
                        until: Until::Time,
                        limit,
                    },
                    WaitCondition::LogLine(text) => Action::Wait {
                        until: Until::LogLine(text.clone()),
                        limit,
                    },
                    WaitCondition::Probe(argv) => {
                        current.stage = Stage::Checking(Polled::Probe(argv.clone()));
                        self.check_action(&current)
                    }
                    WaitCondition::Health(wanted) => {
                        current.stage = Stage::Checking(Polled::Health(*wanted));
                        Action::Observe
                    }
                }
            }
            Step::Finish => unreachable!("`finish` is handled before a step begins"),
        };
        self.fresh = false;
        self.phase = Phase::Step(current);
        self.next = Some(action);
    }

    /// The action that checks a polled condition once.
    fn check_action(&self, current: &Current) -> Action {
        match &current.stage {
            Stage::Checking(Polled::Probe(argv)) => Action::Exec {
                argv: argv.clone(),
                limit: PROBE_TIMEOUT.min(current.end.saturating_sub(self.now)),
            },
            _ => Action::Observe,
        }
    }

    /// An answer for the step in progress.
    fn step_answered(&mut self, mut current: Current, outcome: Outcome) {
        match current.stage.clone() {
            Stage::Single => self.finish_step(current, outcome),
            Stage::KillSent if outcome == Outcome::SignalDelivered => {
                self.killed = true;
                if self.stopped() {
                    let outcome = Self::kill_outcome(&current.step);
                    return self.finish_step(current, outcome);
                }
                // SIGKILL cannot be caught: the step ends when the exit is seen.
                current.stage = Stage::KillSettling;
                self.phase = Phase::Step(current);
                self.next = Some(Action::Wait {
                    until: Until::Exit,
                    limit: KILL_RESERVE,
                });
            }
            Stage::KillSent => self.finish_step(current, outcome),
            Stage::KillSettling => {
                let outcome = Self::kill_outcome(&current.step);
                self.finish_step(current, outcome)
            }
            Stage::Checking(Polled::Probe(_)) => {
                let met = matches!(outcome, Outcome::ExecCompleted { exit_code: 0, .. });
                let stopped = outcome == Outcome::ContainerStopped;
                self.check_answered(current, met, stopped);
            }
            Stage::Checking(Polled::Health(_)) => self.phase = Phase::Step(current),
            Stage::Pausing(polled) => {
                if outcome == Outcome::ContainerStopped || self.stopped() {
                    return self.finish_step(current, Outcome::ContainerStopped);
                }
                if self.now >= current.end {
                    return self.finish_step(current, Outcome::TimedOut);
                }
                current.stage = Stage::Checking(polled);
                let action = self.check_action(&current);
                self.phase = Phase::Step(current);
                self.next = Some(action);
            }
        }
    }

    /// What a delivered SIGKILL is recorded as: `killed` for a `kill` step, `signal-delivered`
    /// for a `signal` step that named SIGKILL.
    fn kill_outcome(step: &Step) -> Outcome {
        match step {
            Step::Kill => Outcome::Killed,
            _ => Outcome::SignalDelivered,
        }
    }

    /// One check of a polled wait came back: met, stopped, or pause and check again.
    fn check_answered(&mut self, mut current: Current, met: bool, stopped: bool) {
        if met {
            return self.finish_step(current, Outcome::ConditionMet);
        }
        if stopped || self.stopped() {
            return self.finish_step(current, Outcome::ContainerStopped);
        }
        if self.now >= current.end {
            return self.finish_step(current, Outcome::TimedOut);
        }
        let Stage::Checking(polled) = current.stage.clone() else {
            unreachable!("only a check is answered here")
        };
        current.stage = Stage::Pausing(polled);
        let limit = POLL_INTERVAL.min(current.end.saturating_sub(self.now));
        self.phase = Phase::Step(current);
        self.next = Some(Action::Wait {
            until: Until::Time,
            limit,
        });
    }

    /// Records the step and moves on.
    fn finish_step(&mut self, current: Current, outcome: Outcome) {
        self.events.push_back(SequenceEvent::StepEnded {
            at: self.now,
            step: current.step.clone(),
            outcome: outcome.clone(),
            by: current.by,
        });
        self.history.push(StepRecord {
            step: current.step,
            outcome,
            started: current.started,
            ended: self.now,
        });
        self.origins.push(current.by);
        self.fresh = false;
        match current.then {
            Then::Decide => self.phase = Phase::Deciding,
            Then::WaitAfterKill(by) if !self.stopped() => {
                let reserve = KILL_RESERVE.max(self.remaining());
                self.begin(Step::wait_for_exit(reserve), by, reserve, Then::End);
            }
            Then::WaitAfterKill(_) | Then::End => self.end(),
        }
    }

    fn end(&mut self) {
        self.phase = Phase::Done;
        self.next = None;
        self.note_foreign_kill();
        self.amend_outcome();
    }

    /// An exit by SIGKILL that none of the steps sent deserves a word.
    fn note_foreign_kill(&mut self) {
        if self.exit == Some(Exit::Exited(137)) && !self.killed && !self.already_stopped {
            self.note(NoteKind::ForeignKill, "the container was SIGKILLed by something other than quiesce (its engine shutting down, an operator, the OOM killer)".into());
        }
    }

    /// True when a signal was delivered after the service did not exit within a wait for its
    /// exit: the policy escalated (its graceful path ran out of time).
    fn escalated(&self) -> bool {
        let mut waited_in_vain = false;
        for record in &self.history {
            match (&record.step, &record.outcome) {
                (
                    Step::Wait {
                        until: WaitCondition::Exited,
                        ..
                    },
                    Outcome::TimedOut,
                ) => waited_in_vain = true,
                (Step::Signal(_), Outcome::SignalDelivered) if waited_in_vain => return true,
                _ => {}
            }
        }
        false
    }

    /// The outcome from what is known, once the sequence is over.
    fn amend_outcome(&mut self) {
        if self.phase != Phase::Done {
            return;
        }
        let fell_back = self.fallback.as_ref().is_some_and(|f| !f.at_last_word);
        self.outcome = Some(match self.exit {
            _ if self.already_stopped => ServiceOutcome::AlreadyStopped,
            Some(Exit::Gone) => ServiceOutcome::Gone,
            Some(Exit::Exited(_)) if fell_back => ServiceOutcome::Fallback,
            Some(Exit::Exited(_)) if self.killed => ServiceOutcome::Killed,
            Some(Exit::Exited(137)) => ServiceOutcome::Killed,
            Some(Exit::Exited(_)) if self.escalated() => ServiceOutcome::Escalated,
            Some(Exit::Exited(_)) => ServiceOutcome::Graceful,
            None => ServiceOutcome::Failed,
        });
    }
}

fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Health;

    fn config(budget: Duration) -> SequenceConfig {
        SequenceConfig::new(ServiceFacts::default(), "under-test", budget)
    }

    fn running() -> ContainerState {
        ContainerState::default()
    }

    /// A policy playing `steps` in order, then `finish`.
    fn playing(steps: Vec<Step>) -> impl FnMut(&Context) -> Result<Step, String> {
        move |ctx: &Context| {
            Ok(steps
                .get(ctx.steps_taken())
                .cloned()
                .unwrap_or(Step::Finish))
        }
    }

    #[test]
    fn a_sigkill_sent_as_a_signal_is_ours_and_ends_at_the_exit() {
        let mut sequence = Sequence::new(config(Duration::from_secs(60)), running());
        let mut policy = playing(vec![Step::signal(Signal::KILL)]);
        let action = sequence.poll(Duration::ZERO, &mut policy);
        assert!(matches!(
            action,
            Action::Signal {
                signal: Signal::KILL,
                ..
            }
        ));
        sequence.complete(Duration::ZERO, Outcome::SignalDelivered);
        // Delivered, the exit not yet seen: the step waits for it within the reserve.
        let action = sequence.poll(Duration::ZERO, &mut policy);
        assert_eq!(
            action,
            Action::Wait {
                until: Until::Exit,
                limit: KILL_RESERVE
            }
        );
        sequence.exited(137);
        sequence.complete(Duration::from_millis(20), Outcome::ConditionMet);
        assert_eq!(
            sequence.poll(Duration::from_millis(20), &mut policy),
            Action::Done
        );
        let transcript = sequence.transcript();
        assert_eq!(transcript.outcome, ServiceOutcome::Killed);
        assert_eq!(transcript.steps[0].outcome, Outcome::SignalDelivered);
        assert_eq!(transcript.steps[0].ended, Duration::from_millis(20));
        assert!(transcript.notes.is_empty(), "{:?}", transcript.notes);
    }

    #[test]
    fn a_failure_at_the_last_word_gets_the_budget_ending_and_is_reported() {
        let budget = Duration::from_secs(10);
        let mut sequence = Sequence::new(config(budget), running());
        let mut policy = |ctx: &Context| {
            if ctx.remaining.is_zero() {
                Err("lost".to_string())
            } else {
                Ok(Step::sleep(ctx.remaining))
            }
        };
        let steps_end = budget - kill_reserve(budget);
        assert!(matches!(
            sequence.poll(Duration::ZERO, &mut policy),
            Action::Wait { until: Until::Time, limit } if limit == steps_end
        ));
        sequence.complete(steps_end, Outcome::TimedOut);
        let action = sequence.poll(steps_end, &mut policy);
        assert!(matches!(
            action,
            Action::Signal {
                signal: Signal::KILL,
                ..
            }
        ));
        sequence.exited(137);
        sequence.complete(steps_end, Outcome::SignalDelivered);
        assert_eq!(sequence.poll(steps_end, &mut policy), Action::Done);
        let transcript = sequence.transcript();
        assert_eq!(transcript.outcome, ServiceOutcome::Killed);
        assert_eq!(transcript.steps[1].by, StepOrigin::Runner);
        assert_eq!(transcript.fallback.as_ref().unwrap().kind, "refused");
    }

    #[test]
    fn health_is_read_before_each_decision_and_an_unreadable_state_does_not_stall() {
        let initial = ContainerState {
            health: Some(Health::Healthy),
            ..running()
        };
        let mut sequence = Sequence::new(config(Duration::from_secs(60)), initial);
        let mut policy = playing(vec![Step::sleep(Duration::from_secs(1)); 3]);
        // The first decision uses the state observed before the start.
        assert!(matches!(
            sequence.poll(Duration::ZERO, &mut policy),
            Action::Wait { .. }
        ));
        sequence.complete(Duration::from_secs(1), Outcome::TimedOut);
        assert_eq!(
            sequence.poll(Duration::from_secs(1), &mut policy),
            Action::Observe
        );
        sequence.observed(Duration::from_secs(1), None);
        assert!(matches!(
            sequence.poll(Duration::from_secs(1), &mut policy),
            Action::Wait { .. }
        ));
    }

    #[test]
    fn an_exit_restated_as_sigkill_by_the_engine_is_a_foreign_kill() {
        let mut sequence = Sequence::new(config(Duration::from_secs(60)), running());
        let mut policy = playing(vec![
            Step::signal(Signal::TERM),
            Step::wait_for_exit(Duration::from_secs(9)),
        ]);
        sequence.poll(Duration::ZERO, &mut policy);
        sequence.complete(Duration::ZERO, Outcome::SignalDelivered);
        sequence.poll(Duration::ZERO, &mut policy);
        sequence.exited(0);
        sequence.complete(Duration::from_secs(1), Outcome::ConditionMet);
        assert_eq!(
            sequence.poll(Duration::from_secs(1), &mut policy),
            Action::Done
        );
        assert_eq!(sequence.transcript().outcome, ServiceOutcome::Graceful);
        sequence.exit_restated(137);
        let transcript = sequence.transcript();
        assert_eq!(transcript.outcome, ServiceOutcome::Killed);
        assert_eq!(transcript.notes[0].kind, NoteKind::ForeignKill);
        assert!(
            transcript.notes[0]
                .text
                .contains("something other than quiesce")
        );
        sequence.running_again();
        assert_eq!(sequence.transcript().outcome, ServiceOutcome::Failed);
    }

    #[test]
    fn a_removal_after_an_exit_keeps_the_exit_unless_someone_else_killed_it() {
        let finished = |code: i32| {
            let mut sequence = Sequence::new(config(Duration::from_secs(60)), running());
            let mut policy = playing(vec![Step::wait_for_exit(Duration::from_secs(9))]);
            sequence.poll(Duration::ZERO, &mut policy);
            sequence.exited(code);
            sequence.complete(Duration::from_secs(1), Outcome::ConditionMet);
            assert_eq!(
                sequence.poll(Duration::from_secs(1), &mut policy),
                Action::Done
            );
            sequence.gone();
            sequence.transcript()
        };
        // `--rm` (or a unit's ExecStopPost) removes a container that exited by itself.
        let removed_after_exit = finished(0);
        assert_eq!(removed_after_exit.outcome, ServiceOutcome::Graceful);
        assert_eq!(removed_after_exit.exit_code, Some(0));
        // `docker rm -f`: SIGKILL by someone else, then the removal.
        let removed_by_force = finished(137);
        assert_eq!(removed_by_force.outcome, ServiceOutcome::Gone);
        assert!(
            removed_by_force.notes.is_empty(),
            "{:?}",
            removed_by_force.notes
        );
    }

    #[test]
    fn a_service_already_stopped_is_not_touched() {
        let stopped = ContainerState {
            running: false,
            exit_code: Some(137),
            health: None,
        };
        let mut sequence = Sequence::new(config(Duration::from_secs(60)), stopped);
        let mut policy = |_: &Context| -> Result<Step, String> { panic!("never asked") };
        assert_eq!(sequence.poll(Duration::ZERO, &mut policy), Action::Done);
        let transcript = sequence.transcript();
        assert_eq!(transcript.outcome, ServiceOutcome::AlreadyStopped);
        assert_eq!(transcript.exit_code, Some(137));
        assert!(transcript.notes.is_empty());
    }
}
