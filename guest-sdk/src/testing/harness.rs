//! The native harness: runs a policy against a scripted service in virtual time, following
//! the runner's rules ([`crate::rules`]): every step bounded by the remaining budget, a kill
//! reserve at the end of it, the policy told once when the budget runs out and then SIGKILL,
//! `finish` verified, probes and health polled every 500 ms.
//!
//! No Docker, no wasm, no threads: a run takes microseconds. `quiesce policy test` runs the
//! same scenarios through the compiled component and the runner's real executor.

use std::time::Duration;

use super::model::{Answer, ServiceModel};
use super::scenario::{Scenario, Transcript, TranscriptStep};
use crate::rules::{
    FINISH_GRACE, KILL_RESERVE, MAX_STEPS, POLL_INTERVAL, PROBE_TIMEOUT, http_allowed, kill_reserve,
};
use crate::{
    ContainerState, Context, Outcome, Policy, Signal, Step, StepRecord, WaitCondition, decide,
};

/// Runs policy `P` on a scenario: its service, settings and budget.
pub fn run<P: Policy>(scenario: &Scenario) -> Transcript {
    let settings = scenario.settings_json();
    run_with(
        |ctx: &Context| decide::<P>(ctx),
        &scenario.service,
        &settings,
        scenario.budget,
    )
}

/// Runs any decision function on a service model with these settings and budget.
pub fn run_with(
    mut decide: impl FnMut(&Context) -> Result<Step, String>,
    model: &ServiceModel,
    settings: &str,
    budget: Duration,
) -> Transcript {
    let mut sim = Sim {
        model,
        now: Duration::ZERO,
        exit: (!model.running).then_some((Duration::ZERO, 0)),
        delivered: Vec::new(),
        history: Vec::new(),
        origins: Vec::new(),
        killed: false,
    };
    if !model.running {
        return sim.transcript("already-stopped", None);
    }
    let steps_end = budget - kill_reserve(budget);
    let facts = model.facts();
    let context = |sim: &Sim, remaining: Duration| Context {
        service: facts.clone(),
        settings: settings.to_string(),
        history: sim.history.clone(),
        state: ContainerState {
            running: sim.running(),
            exit_code: sim
                .exit
                .filter(|(at, _)| *at <= sim.now)
                .map(|(_, code)| code),
            health: model.health_at(sim.now),
        },
        elapsed: sim.now,
        remaining,
    };
    let mut policy_error = None;
    loop {
        let remaining = steps_end.saturating_sub(sim.now);
        if remaining.is_zero() {
            if sim.running() {
                let last_word = decide(&context(&sim, Duration::ZERO));
                let origin = if last_word == Ok(Step::Kill) {
                    "policy"
                } else {
                    "runner"
                };
                sim.kill(origin);
            }
            break;
        }
        if sim.history.len() >= MAX_STEPS {
            policy_error = Some(format!("took more than {MAX_STEPS} steps"));
            break;
        }
        match decide(&context(&sim, remaining)) {
            Err(error) => {
                policy_error = Some(error);
                break;
            }
            Ok(Step::Finish) => {
                if sim.running() {
                    match sim.exit_time() {
                        Some(at) if at <= sim.now + FINISH_GRACE => sim.now = sim.now.max(at),
                        _ => {
                            sim.now += FINISH_GRACE;
                            sim.kill("runner");
                        }
                    }
                }
                break;
            }
            Ok(step) => sim.perform(step, remaining, "policy"),
        }
    }
    let outcome = match (sim.exited_by_now(), &policy_error) {
        (_, Some(_)) => "fallback",
        (true, None) if sim.killed => "killed",
        (true, None) => "graceful",
        (false, None) => "failed",
    };
    sim.transcript(outcome, policy_error)
}

/// The simulation state.
struct Sim<'a> {
    model: &'a ServiceModel,
    now: Duration,
    /// When it exits (possibly in the future) and with what status.
    exit: Option<(Duration, i32)>,
    delivered: Vec<(Duration, Signal)>,
    history: Vec<StepRecord>,
    origins: Vec<&'static str>,
    killed: bool,
}

impl Sim<'_> {
    fn running(&self) -> bool {
        !self.exited_by_now()
    }

    fn exited_by_now(&self) -> bool {
        self.exit.is_some_and(|(at, _)| at <= self.now)
    }

    fn exit_time(&self) -> Option<Duration> {
        self.exit.map(|(at, _)| at)
    }

    fn schedule_exit(&mut self, after: Duration, code: i32) {
        let at = self.now + after;
        if self.exit.is_none_or(|(current, _)| at < current) {
            self.exit = Some((at, code));
        }
    }

    /// SIGKILL, then wait within the reserve for the exit.
    fn kill(&mut self, origin: &'static str) {
        self.perform(Step::Kill, KILL_RESERVE, origin);
        if self.running() {
            self.perform(Step::wait_for_exit(KILL_RESERVE), KILL_RESERVE, origin);
        }
    }

    fn perform(&mut self, step: Step, remaining: Duration, origin: &'static str) {
        let started = self.now;
        let outcome = self.outcome_of(&step, remaining);
        if step == Step::Kill && outcome == Outcome::Killed {
            self.killed = true;
        }
        self.history.push(StepRecord {
            step,
            outcome,
            started,
            ended: self.now,
        });
        self.origins.push(origin);
    }

    fn deliver(&mut self, signal: Signal, delivered: Outcome) -> Outcome {
        if !self.running() {
            return Outcome::ContainerStopped;
        }
        self.delivered.push((self.now, signal));
        if let Some((delay, code)) = self.model.reaction(signal) {
            self.schedule_exit(delay, code);
        }
        delivered
    }

    fn outcome_of(&mut self, step: &Step, remaining: Duration) -> Outcome {
        match step {
            Step::Signal(signal) => self.deliver(*signal, Outcome::SignalDelivered),
            Step::Kill => self.deliver(Signal::KILL, Outcome::Killed),
            Step::Finish => Outcome::ConditionMet,
            Step::Exec { argv, timeout } => {
                if !self.running() {
                    return Outcome::ContainerStopped;
                }
                match self.model.exec_answer(argv, self.now) {
                    (Answer::Complete(exit_code, output_tail), exits) => {
                        if let Some(after) = exits {
                            self.schedule_exit(after, 0);
                        }
                        Outcome::ExecCompleted {
                            exit_code,
                            output_tail,
                        }
                    }
                    _ => {
                        self.now += (*timeout).min(remaining);
                        Outcome::TimedOut
                    }
                }
            }
            Step::Http { url, timeout, .. } => {
                if let Err(reason) = http_allowed(url, &[]) {
                    return Outcome::Failed(reason);
                }
                match self.model.http_answer(url, self.now) {
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
                    (Answer::Hang, _) => {
                        self.now += (*timeout).min(remaining);
                        Outcome::TimedOut
                    }
                }
            }
            Step::Wait { until, timeout } => self.wait(until, (*timeout).min(remaining)),
        }
    }

    fn wait(&mut self, condition: &WaitCondition, limit: Duration) -> Outcome {
        let end = self.now + limit;
        let exit_at = self.exit_time();
        let stopped_by = |moment: Duration| exit_at.filter(|at| *at <= moment);
        let (at, outcome) = match condition {
            WaitCondition::Exited => match stopped_by(end) {
                Some(at) => (at.max(self.now), Outcome::ConditionMet),
                None => (end, Outcome::TimedOut),
            },
            WaitCondition::Elapsed => match exit_at.filter(|at| *at < end) {
                Some(at) => (at.max(self.now), Outcome::ContainerStopped),
                None => (end, Outcome::TimedOut),
            },
            WaitCondition::LogLine(text) => {
                let line = self
                    .model
                    .log_line_at(text, self.now, &self.delivered)
                    .filter(|when| *when <= end && exit_at.is_none_or(|exit| *when <= exit));
                match (line, stopped_by(end)) {
                    (Some(when), _) => (when, Outcome::ConditionMet),
                    (None, Some(at)) => (at.max(self.now), Outcome::ContainerStopped),
                    (None, None) => (end, Outcome::TimedOut),
                }
            }
            WaitCondition::Probe(_) | WaitCondition::Health(_) => self.poll(condition, end),
        };
        self.now = at;
        outcome
    }

    /// Probes and health checks, polled as the runner polls them.
    fn poll(&self, condition: &WaitCondition, end: Duration) -> (Duration, Outcome) {
        let exit_at = self.exit_time();
        let mut moment = self.now;
        loop {
            if let Some(at) = exit_at.filter(|at| *at <= moment && *at <= end) {
                return (at.max(self.now), Outcome::ContainerStopped);
            }
            if moment > end {
                return (end, Outcome::TimedOut);
            }
            let mut next = moment + POLL_INTERVAL;
            let met = match condition {
                WaitCondition::Health(wanted) => self.model.health_at(moment) == Some(*wanted),
                WaitCondition::Probe(argv) => match self.model.exec_answer(argv, moment).0 {
                    Answer::Complete(code, _) => code == 0,
                    _ => {
                        next += PROBE_TIMEOUT.min(end.saturating_sub(moment));
                        false
                    }
                },
                _ => false,
            };
            if met {
                return (moment, Outcome::ConditionMet);
            }
            moment = next;
        }
    }

    fn transcript(&self, outcome: &str, policy_error: Option<String>) -> Transcript {
        Transcript {
            steps: self
                .history
                .iter()
                .zip(&self.origins)
                .map(|(record, origin)| {
                    let (action, detail) = record.step.describe();
                    TranscriptStep {
                        at: record.started,
                        ended: record.ended,
                        action,
                        detail,
                        result: record.outcome.describe(),
                        by: origin.to_string(),
                    }
                })
                .collect(),
            outcome: outcome.to_string(),
            exit_code: self
                .exit
                .filter(|(at, _)| *at <= self.now)
                .map(|(_, code)| code),
            elapsed: self.now,
            policy_error,
        }
    }
}
