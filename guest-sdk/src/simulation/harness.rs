//! The native harness: drives the shutdown [`Sequence`] synchronously, in virtual time, against
//! a scripted service. The sequence holds every rule of the runner; this file only plays the
//! service: what a signal, a command, an endpoint or a wait does to it, and when.
//!
//! No Docker, no wasm, no threads: a run takes microseconds. `quiesce policy test` runs the
//! same scenarios through the compiled component and the runner's real executor, and gets the
//! same transcript.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use super::model::{Answer, Happened, ServiceModel};
use super::scenario::Scenario;
use crate::sequence::{
    Action, Decide, Decided, PolicyFailure, Sequence, SequenceConfig, Transcript, Until,
};
use crate::{ContainerState, Context, Outcome, Policy, Step, decide};

/// A native policy type as a [`Decide`]r: its errors are refusals, its panics traps.
pub struct Native<P>(std::marker::PhantomData<fn() -> P>);

impl<P: Policy> Native<P> {
    /// Policy `P`, decided natively.
    pub fn new() -> Native<P> {
        Native(std::marker::PhantomData)
    }
}

impl<P: Policy> Default for Native<P> {
    fn default() -> Self {
        Native::new()
    }
}

impl<P: Policy> Decide for Native<P> {
    fn decide(&mut self, ctx: &Context) -> Result<Decided, PolicyFailure> {
        crate::NATIVE_LOG.with(|log| log.borrow_mut().clear());
        let decided = catch_unwind(AssertUnwindSafe(|| decide::<P>(ctx)));
        let log = crate::NATIVE_LOG.with(|log| std::mem::take(&mut *log.borrow_mut()));
        match decided {
            Ok(Ok(step)) => Ok(Decided { step, log }),
            Ok(Err(message)) => Err(PolicyFailure::new(
                "refused",
                format!("returned an error: {message}"),
            )),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|text| text.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_string());
                Err(PolicyFailure::new("trap", format!("trapped: {message}")))
            }
        }
    }
}

/// Runs policy `P` on a scenario: its service, settings and budget.
pub fn run<P: Policy>(scenario: &Scenario) -> Transcript {
    let config = scenario.config(&P::info().name);
    drive(&mut Native::<P>::new(), &scenario.service, &config)
}

/// Runs any decision function on a service model with these settings and budget.
pub fn run_with(
    mut decide: impl FnMut(&Context) -> Result<Step, String>,
    model: &ServiceModel,
    settings: &str,
    budget: Duration,
) -> Transcript {
    let mut config = SequenceConfig::new(model.facts(), "under-test", budget);
    config.settings = settings.to_string();
    drive(&mut decide, model, &config)
}

/// Drives a sequence with `config` for the service `model`, asking `policy`.
pub fn drive(policy: &mut dyn Decide, model: &ServiceModel, config: &SequenceConfig) -> Transcript {
    let mut sim = Sim {
        model,
        now: Duration::ZERO,
        exit: (!model.running).then_some((Duration::ZERO, 0)),
        happened: Happened::default(),
    };
    let initial = ContainerState {
        running: model.running,
        exit_code: (!model.running).then_some(0),
        health: model.health_at(Duration::ZERO),
    };
    let mut sequence = Sequence::new(config.clone(), initial);
    loop {
        let action = sequence.poll(sim.now, policy);
        if action == Action::Done {
            return sequence.transcript();
        }
        if action == Action::Observe {
            let state = sim.state();
            sim.tell_exit(&mut sequence);
            sequence.observed(sim.now, Some(state));
            continue;
        }
        let outcome = sim.perform(action);
        sim.tell_exit(&mut sequence);
        sequence.complete(sim.now, outcome);
    }
}

/// The scripted service in virtual time.
struct Sim<'a> {
    model: &'a ServiceModel,
    now: Duration,
    /// When it exits (possibly in the future) and with what status.
    exit: Option<(Duration, i32)>,
    /// What was done to it so far.
    happened: Happened,
}

impl Sim<'_> {
    fn running(&self) -> bool {
        self.exit.is_none_or(|(at, _)| at > self.now)
    }

    /// The exit, when it happens before `moment`.
    fn exit_before(&self, moment: Duration) -> Option<Duration> {
        self.exit.map(|(at, _)| at).filter(|at| *at < moment)
    }

    fn schedule_exit(&mut self, after: Duration, code: i32) {
        let at = self.now + after;
        if self.exit.is_none_or(|(current, _)| at < current) {
            self.exit = Some((at, code));
        }
    }

    /// Tells the sequence about an exit that has happened by now.
    fn tell_exit(&self, sequence: &mut Sequence) {
        if let Some((at, code)) = self.exit
            && at <= self.now
        {
            sequence.exited(code);
        }
    }

    fn state(&self) -> ContainerState {
        ContainerState {
            running: self.running(),
            exit_code: self
                .exit
                .filter(|(at, _)| *at <= self.now)
                .map(|(_, code)| code),
            health: self.model.health_at(self.now),
        }
    }

    /// Spends up to `limit` on something that never answers; the exit ends it when `stops`.
    fn hang(&mut self, limit: Duration, stops: bool) -> Outcome {
        let end = self.now + limit;
        match self.exit_before(end).filter(|_| stops) {
            Some(at) => {
                self.now = self.now.max(at);
                Outcome::ContainerStopped
            }
            None => {
                self.now = end;
                Outcome::TimedOut
            }
        }
    }

    fn perform(&mut self, action: Action) -> Outcome {
        match action {
            Action::Signal { signal, .. } => {
                if !self.running() {
                    return Outcome::ContainerStopped;
                }
                self.happened.signals.push((self.now, signal));
                if let Some((delay, code)) = self.model.reaction(signal) {
                    self.schedule_exit(delay, code);
                }
                Outcome::SignalDelivered
            }
            Action::Exec { argv, limit } => {
                if !self.running() {
                    return Outcome::ContainerStopped;
                }
                self.happened.execs.push((self.now, argv.clone()));
                match self.model.exec_answer(&argv, self.now, &self.happened) {
                    (Answer::Complete(exit_code, output_tail), exits) => {
                        if let Some(after) = exits {
                            self.schedule_exit(after, 0);
                        }
                        Outcome::ExecCompleted {
                            exit_code,
                            output_tail,
                        }
                    }
                    _ => self.hang(limit, true),
                }
            }
            Action::Http { url, limit, .. } => {
                match self.model.http_answer(&url, self.now, &self.happened) {
                    (Answer::Complete(status, body_tail), exits) => {
                        if let Some(after) = exits {
                            self.schedule_exit(after, 0);
                        }
                        Outcome::HttpCompleted {
                            status: u16::try_from(status).unwrap_or(500),
                            body_tail,
                        }
                    }
                    (Answer::Refused, _) => Outcome::Failed("connection refused".into()),
                    (Answer::Hang, _) => self.hang(limit, false),
                }
            }
            Action::Wait { until, limit } => self.wait(&until, limit),
            Action::Observe | Action::Done => unreachable!("handled by the driver loop"),
        }
    }

    fn wait(&mut self, until: &Until, limit: Duration) -> Outcome {
        let end = self.now + limit;
        match until {
            Until::Exit => match self.exit.map(|(at, _)| at).filter(|at| *at <= end) {
                Some(at) => {
                    self.now = self.now.max(at);
                    Outcome::ConditionMet
                }
                None => {
                    self.now = end;
                    Outcome::TimedOut
                }
            },
            Until::Time => self.hang(limit, true),
            Until::LogLine(text) => {
                let line = self
                    .model
                    .log_line_at(text, self.now, &self.happened)
                    .filter(|when| *when <= end)
                    .filter(|when| self.exit_before(*when).is_none());
                match line {
                    Some(when) => {
                        self.now = when;
                        Outcome::ConditionMet
                    }
                    None => self.hang(limit, true),
                }
            }
        }
    }
}
