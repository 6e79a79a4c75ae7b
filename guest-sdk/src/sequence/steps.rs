//! Performing a step: the primitive [`Action`]s it becomes, clipped to its limit; its answers;
//! a SIGKILL that ends at the exit; probe and health waits polled until met; and the record of
//! each step as it ends.

use std::time::Duration;

use super::{
    Action, Current, Phase, Polled, Sequence, SequenceEvent, Stage, StepOrigin, Then, Until,
};
use crate::rules::{KILL_RESERVE, POLL_INTERVAL, PROBE_TIMEOUT, http_allowed};
use crate::{Outcome, Signal, Step, StepRecord, WaitCondition};

impl Sequence {
    /// Starts `step`, bounded by `limit`; a step that needs no action is recorded at once.
    pub(super) fn begin(&mut self, step: Step, by: StepOrigin, limit: Duration, then: Then) {
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
    pub(super) fn step_answered(&mut self, mut current: Current, outcome: Outcome) {
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
    pub(super) fn check_answered(&mut self, mut current: Current, met: bool, stopped: bool) {
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
}
