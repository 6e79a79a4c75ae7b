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
//! Two drivers exist: the SDK's native harness (`simulation`: synchronous, virtual time, a
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
//!
//! The module's files: `config` (what a sequence is told before it starts), `protocol` (what
//! a driver and the sequence exchange), `transcript` (the record and the outcome), and the
//! state machine itself: here its state and its driver-facing methods, then `steps`
//! (performing a step, polled waits, SIGKILL's settling), `fallback` (the fallback, the
//! budget's end, `finish` while running) and `record` (notes, the policy's log, the outcome).

mod config;
mod fallback;
mod protocol;
mod record;
mod steps;
#[cfg(test)]
mod tests;
mod transcript;

pub use config::{OnBudgetExhausted, SequenceConfig};
pub use protocol::{Action, Decide, Decided, PolicyFailure, SequenceEvent, Until};
pub use transcript::{Note, NoteKind, ServiceOutcome, StepOrigin, Transcript, TranscriptStep};

use std::collections::VecDeque;
use std::time::Duration;

use crate::conservative::Conservative;
use crate::rules::{FINISH_GRACE, check_step, kill_reserve, step_allowance};
use crate::{ContainerState, Context, Outcome, Step, StepRecord};

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

    fn advance(&mut self, now: Duration) {
        self.now = self.now.max(now);
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

    fn end(&mut self) {
        self.phase = Phase::Done;
        self.next = None;
        self.note_foreign_kill();
        self.amend_outcome();
    }
}
