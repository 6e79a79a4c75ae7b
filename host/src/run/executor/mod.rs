//! Runs one service's shutdown: drives the SDK's [`Sequence`] (where every rule of a shutdown
//! lives) over a [`Runtime`], in tokio time, and turns its transcript into the report.
//!
//! What this driver adds to the sequence is the engine's side:
//! - one stop per container on the host: the container is claimed first, or this run waits for
//!   the process that has it and reports its outcome ([`claiming`], [`crate::platform::claim`]);
//! - the exit is watched before the first step, so it is noticed the moment it happens (the
//!   engine's wait, or polling when the wait fails) and every primitive ends at it;
//! - what keeps the container stopped (its supervising unit held, its restart policy `no`) is
//!   changed before the first step and given back after ([`keeping`]);
//! - every engine request is bounded ([`ENGINE_ANSWER_TIMEOUT`]): a wedged daemon fails steps
//!   instead of hanging the run;
//! - after the exit, one more look: a container started again by someone else is not reported
//!   stopped, and one removed meanwhile is `gone`.
//!
//! Time is tokio's, so the same code runs in virtual time (`tokio::time::pause`) for `plan` and
//! `quiesce policy test`.

use std::sync::Arc;
use std::time::Duration;

use quiesce_policy_sdk::rules::POLL_INTERVAL;
use quiesce_policy_sdk::sequence::{
    Action, Decide, Decided, PolicyFailure, Sequence, SequenceConfig, SequenceEvent,
    ServiceOutcome, StepOrigin, Transcript, Until,
};
use quiesce_policy_sdk::{ContainerState, Context, Outcome, ServiceFacts, Step};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

mod claiming;
mod keeping;

use crate::model::process::SignalTarget;
use crate::model::report::{
    PolicyIdentity, RestartPolicyChange, ServiceReport, StepReport, StoppedBy,
};
use crate::model::supervision::SupervisorReport;
use crate::model::units::{millis, timestamp};
use crate::model::warning::{Warning, WarningCode};
use crate::platform::claim::{Claims, RecordedOutcome, StopRecord};
use crate::platform::systemd::Supervision;
use crate::policy::Decider;
use crate::runtime::{EXEC_STOP_TIMEOUT, ExecEnd, Runtime, RuntimeError};
pub use claiming::CLAIM_POLL;
use claiming::Turn;
use keeping::Kept;

pub use quiesce_policy_sdk::sequence::OnBudgetExhausted;

/// How long to wait, after a SIGKILL quiesce did not send, before checking whether someone
/// else restarted the container.
const RESTART_SETTLE: Duration = Duration::from_secs(1);

/// The longest quiesce waits for the engine to answer one request (a signal, an inspect, a
/// restart-policy update) outside a step's own timeout. Docker answers in milliseconds; one
/// that does not answer for this long is wedged (Docker 20.10 has a known deadlock that leaves
/// such requests hanging forever), and the service's sequence goes on without the answer.
pub const ENGINE_ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// A shared [`Decider`] as the sequence asks it.
struct Asking<'a>(&'a dyn Decider);

impl Decide for Asking<'_> {
    fn decide(&mut self, ctx: &Context) -> Result<Decided, PolicyFailure> {
        self.0.decide(ctx)
    }
}

/// Everything needed to stop one service.
#[derive(Clone)]
pub struct ServiceJob {
    /// What the policy sees.
    pub facts: ServiceFacts,
    /// The policy.
    pub policy: Arc<dyn Decider>,
    /// Its settings (JSON).
    pub settings: String,
    /// The most time this service may take.
    pub budget: Duration,
    /// What happens when the budget runs out.
    pub on_exhausted: OnBudgetExhausted,
    /// `host:port` addresses besides loopback that HTTP steps may call.
    pub allow_http: Arc<Vec<String>>,
    /// Warnings found before the run (e.g. PID 1 will not forward signals).
    pub warnings: Vec<Warning>,
    /// The container's state as inspected while preparing; when given, the sequence starts
    /// from it instead of inspecting again (one engine round trip less per service).
    pub observed: Option<ContainerState>,
    /// The restart policy in Docker's CLI form when it says more than its name
    /// (`on-failure:5`): what is put back after the stop. `None`: `facts.restart_policy`.
    pub restart_policy_spec: Option<String>,
    /// The systemd unit that supervises the container, if one does.
    pub supervision: Option<Supervision>,
    /// Where the policy's signals go (SIGKILL always goes to the container).
    pub signal_target: SignalTarget,
    /// Where stops claim their containers (one stop per container on the host); `None` for
    /// runs that touch nothing real (`plan`, scenarios) or own their service (`quiesce run`).
    pub claims: Option<Claims>,
    /// The process the policy's signals reach and what it does with each, when known
    /// ([`crate::prepare::hearing`]).
    pub receiver: Option<crate::model::process::Receiver>,
}

impl ServiceJob {
    /// A job with nothing known beyond its facts, policy, settings and budget: SIGKILL when the
    /// budget runs out, HTTP to loopback only, no warnings, no engine state to restore, signals
    /// to PID 1. Callers set what they know more of.
    pub fn new(
        facts: ServiceFacts,
        policy: Arc<dyn Decider>,
        settings: String,
        budget: Duration,
    ) -> ServiceJob {
        ServiceJob {
            facts,
            policy,
            settings,
            budget,
            on_exhausted: OnBudgetExhausted::Kill,
            allow_http: Arc::new(Vec::new()),
            warnings: Vec::new(),
            observed: None,
            restart_policy_spec: None,
            supervision: None,
            signal_target: Default::default(),
            claims: None,
            receiver: None,
        }
    }
}

/// Progress, as it happens, for live output.
#[derive(Clone, Debug)]
pub enum Event {
    /// A service's sequence began.
    Started {
        /// The service.
        service: String,
        /// Its policy's name.
        policy: String,
        /// Its budget.
        budget: Duration,
    },
    /// A step began.
    StepStarted {
        /// The service.
        service: String,
        /// Time since its sequence began.
        at: Duration,
        /// The step.
        step: Step,
        /// Who chose it.
        by: StepOrigin,
    },
    /// A step ended.
    StepEnded {
        /// The service.
        service: String,
        /// Time since its sequence began.
        at: Duration,
        /// The step.
        step: Step,
        /// What came of it.
        outcome: Outcome,
    },
    /// Something the operator should know (fallback, budget exhausted...).
    Note {
        /// The service.
        service: String,
        /// The text.
        text: String,
    },
    /// A warning found about a service after its sequence began (the budget check, which
    /// runs beside the stop): the same warning is in its report.
    Warning {
        /// The service.
        service: String,
        /// The warning.
        warning: Warning,
    },
    /// A service's sequence ended.
    Finished {
        /// The service.
        service: String,
        /// How.
        outcome: ServiceOutcome,
        /// Its exit status.
        exit_code: Option<i32>,
        /// How long it took.
        elapsed: Duration,
    },
}

/// Where events go (nowhere, when `None`).
pub type EventSink = Option<mpsc::UnboundedSender<Event>>;

fn send(events: &EventSink, event: Event) {
    if let Some(events) = events {
        let _ = events.send(event);
    }
}

/// What the exit watcher learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    /// The container exited with this status.
    Exited(i32),
    /// The container was removed.
    Gone,
}

/// One service's stop: the report, and the sequence's transcript it was made from.
#[derive(Clone, Debug)]
pub struct ServiceRun {
    /// What the run report says about the service.
    pub report: ServiceReport,
    /// The sequence's typed record (the same a native test run produces).
    pub transcript: Transcript,
}

/// Stops one service. `deadline` is the whole run's.
pub async fn run_service<R: Runtime>(
    runtime: Arc<R>,
    mut job: ServiceJob,
    deadline: Instant,
    events: EventSink,
) -> ServiceRun {
    let started = Instant::now();
    let started_at = runtime.wall_clock();
    let identity = job.policy.identity();
    let id = job.facts.id.clone();
    let mut warnings = job.warnings.clone();
    // One stop per container: claim it, or wait for the process that has it.
    let mut claim = None;
    if let Some(claims) = job.claims.clone() {
        let until = deadline.min(started + job.budget);
        match claiming::take_turn(&claims, &job, until, &events, &mut warnings).await {
            Turn::Ours(taken, waited) => {
                claim = taken.map(|claim| *claim);
                if waited {
                    // The other stop was killed: what was observed is stale, and the wait was
                    // charged to the budget.
                    job.observed = None;
                    job.budget = job.budget.saturating_sub(started.elapsed());
                }
            }
            Turn::Theirs(record, outcome) => {
                send(
                    &events,
                    Event::Note {
                        service: job.facts.name.clone(),
                        text: format!(
                            "stopped by {}, which this run waited for: {}",
                            record.describe(),
                            outcome.outcome.as_str()
                        ),
                    },
                );
                let run =
                    Finished::theirs(&job, &identity, started, deadline, warnings, Some(&record))
                        .with_outcome(&outcome, started.elapsed());
                return run.report(&job, identity, started_at, &*runtime, &events);
            }
            Turn::StillTheirs(record) => {
                warnings.push(Warning::new(
                    WarningCode::StopInProgress,
                    format!(
                        "still being stopped by {} when this stop's budget ran out; nothing was sent",
                        record
                            .as_ref()
                            .map_or("another quiesce".to_string(), StopRecord::describe)
                    ),
                ));
                let run = Finished::theirs(
                    &job,
                    &identity,
                    started,
                    deadline,
                    warnings,
                    record.as_ref(),
                );
                return run.report(&job, identity, started_at, &*runtime, &events);
            }
        }
        if let Some(inherited) = claim.as_ref().and_then(|claim| claim.inherited.clone()) {
            inherit(&mut job, &inherited, &mut warnings);
        }
    }
    let config = sequence_config(&job, &identity, started, deadline);
    let initial = match job.observed.clone() {
        Some(state) => Ok(state),
        None => answered(ENGINE_ANSWER_TIMEOUT, runtime.observe(&id)).await,
    };
    let mut sequence = match initial {
        Ok(state) => Sequence::new(config, state),
        Err(RuntimeError::Gone) => Sequence::gone_before_start(config),
        Err(error) => {
            // Nothing is known, nothing is touched: the service is reported, not stopped.
            warnings.push(Warning::new(
                WarningCode::InspectFailed,
                format!("could not inspect the container: {error}"),
            ));
            let transcript = Sequence::unobserved(config).transcript();
            let run = Finished::new(transcript, warnings);
            return run.report(&job, identity, started_at, &*runtime, &events);
        }
    };
    let mut driver = Driver {
        runtime: runtime.clone(),
        id: id.clone(),
        signal_target: job.signal_target,
        name: job.facts.name.clone(),
        events: events.clone(),
        started,
        exit: None,
        warnings: std::sync::Mutex::default(),
        unmarked: std::sync::atomic::AtomicBool::new(job.facts.restart_policy == "unless-stopped"),
    };
    // Before anything else: a unit that would start the container again is held, or the
    // container is not touched at all.
    let held = if sequence.is_done() {
        Ok(Kept::idle(&job))
    } else {
        Kept::hold_unit(&job, &mut claim).await
    };
    let mut kept = match held {
        Ok(kept) => kept,
        Err((kept, warning)) => {
            warnings.push(warning);
            let transcript =
                Sequence::unobserved(sequence_config(&job, &identity, started, deadline))
                    .transcript();
            let mut run = Finished::new(transcript, warnings);
            run.supervisor = kept.supervisor;
            return run.report(&job, identity, started_at, &*runtime, &events);
        }
    };
    if !sequence.is_done() {
        send(
            &events,
            Event::Started {
                service: job.facts.name.clone(),
                policy: identity.name.clone(),
                budget: job.budget,
            },
        );
        // Watch for the exit before anything is sent, so it is seen the moment it happens.
        driver.exit = Some(watch_exit(runtime.clone(), id.clone()));
        if let Err(text) = kept.turn_off_restart(&*runtime, &job, &mut claim).await {
            send(
                &events,
                Event::Note {
                    service: job.facts.name.clone(),
                    text: text.clone(),
                },
            );
            warnings.push(Warning::new(WarningCode::RestartPolicyKept, text));
        }
        driver.drive(&mut sequence, &*job.policy).await;
        driver.confirm_stopped(&mut sequence).await;
        warnings.append(&mut driver.warnings.lock().expect("the warnings' lock"));
    }
    let transcript = sequence.transcript();
    let recorded = RecordedOutcome {
        outcome: transcript.outcome,
        exit_code: transcript.exit_code,
        elapsed_ms: millis(transcript.elapsed),
    };
    // The outcome is known: a stop waiting for this one may report it now, before what is
    // given back (a unit's settling may take seconds); with nothing to give back, the
    // record's last write says it.
    if let Some(claim) = &mut claim
        && !kept.gives_back_nothing()
    {
        claim.update(|record| record.outcome = Some(recorded.clone()));
    }
    let stopped = sequence.exit_code().is_some();
    let (restart_policy, supervisor) = kept
        .give_back(&*runtime, &job, stopped, &mut claim, &mut warnings)
        .await;
    if let Some(claim) = claim {
        claim.finish_with(recorded);
    }
    warnings.extend(transcript.notes.iter().map(Warning::from));
    let mut run = Finished::new(transcript, warnings);
    run.restart_policy = restart_policy;
    run.supervisor = supervisor;
    run.report(&job, identity, started_at, &*runtime, &events)
}

/// Takes over what a killed stop of the same container left: the restart policy it had turned
/// off is the container's own (and is put back after this stop).
fn inherit(job: &mut ServiceJob, inherited: &StopRecord, warnings: &mut Vec<Warning>) {
    let mut left = Vec::new();
    if let Some(original) = inherited.original_restart_policy() {
        set_restart_policy(&mut job.facts, &mut job.restart_policy_spec, original);
        left.push(format!(
            "its restart policy `no` (the container's own: `{original}`, put back after this stop)"
        ));
    }
    if let Some(hold) = inherited.unit_hold.as_ref().filter(|hold| !hold.released) {
        left.push(format!(
            "its unit {} held (given back after this stop)",
            hold.unit
        ));
    }
    // Said once: `prepare` says it when the record was there before the run.
    let said = warnings
        .iter()
        .any(|warning| warning.code == WarningCode::EarlierStopKilled.as_str());
    if !left.is_empty() && !said {
        warnings.push(Warning::new(
            WarningCode::EarlierStopKilled,
            format!(
                "an earlier stop, {}, ended before it finished and left {}",
                inherited.describe(),
                left.join(" and ")
            ),
        ));
    }
}

/// Sets the facts' restart policy (its name) and the spec put back after the stop, from the
/// CLI's form (`on-failure:3`).
pub fn set_restart_policy(facts: &mut ServiceFacts, spec: &mut Option<String>, original: &str) {
    facts.restart_policy = original
        .split_once(':')
        .map_or(original, |(name, _)| name)
        .to_string();
    *spec = Some(original.to_string());
}

/// The sequence's configuration for `job`, started at `started` in a run ending at `deadline`.
fn sequence_config(
    job: &ServiceJob,
    identity: &PolicyIdentity,
    started: Instant,
    deadline: Instant,
) -> SequenceConfig {
    SequenceConfig {
        facts: job.facts.clone(),
        policy: identity.name.clone(),
        settings: job.settings.clone(),
        budget: job.budget,
        deadline: Some(deadline.saturating_duration_since(started)),
        on_exhausted: job.on_exhausted,
        allow_http: job.allow_http.to_vec(),
    }
}

/// A service whose sequence is over.
struct Finished {
    transcript: Transcript,
    warnings: Vec<Warning>,
    restart_policy: Option<RestartPolicyChange>,
    supervisor: Option<SupervisorReport>,
    /// Another quiesce process stopped it while this one waited.
    stopped_by: Option<StoppedBy>,
}

impl Finished {
    /// A sequence's end, with nothing changed on the container.
    fn new(transcript: Transcript, warnings: Vec<Warning>) -> Finished {
        Finished {
            transcript,
            warnings,
            restart_policy: None,
            supervisor: None,
            stopped_by: None,
        }
    }

    /// A service another process was stopping: no step of this one's, `failed` unless
    /// [`Finished::with_outcome`] gives the other's outcome.
    fn theirs(
        job: &ServiceJob,
        identity: &PolicyIdentity,
        started: Instant,
        deadline: Instant,
        warnings: Vec<Warning>,
        record: Option<&StopRecord>,
    ) -> Finished {
        let mut transcript =
            Sequence::unobserved(sequence_config(job, identity, started, deadline)).transcript();
        transcript.elapsed = started.elapsed();
        let mut finished = Finished::new(transcript, warnings);
        finished.stopped_by = record.map(StoppedBy::from);
        finished
    }

    /// The other process's outcome, reached after `waited`.
    fn with_outcome(mut self, outcome: &RecordedOutcome, waited: Duration) -> Finished {
        self.transcript.outcome = outcome.outcome;
        self.transcript.exit_code = outcome.exit_code;
        self.transcript.elapsed = waited;
        self
    }

    /// Announces the end and writes the service's report.
    fn report<R: Runtime>(
        self,
        job: &ServiceJob,
        policy: PolicyIdentity,
        started_at: std::time::SystemTime,
        runtime: &R,
        events: &EventSink,
    ) -> ServiceRun {
        let Finished {
            transcript,
            warnings,
            restart_policy,
            supervisor,
            stopped_by,
        } = self;
        let outcome = transcript.outcome;
        send(
            events,
            Event::Finished {
                service: job.facts.name.clone(),
                outcome,
                exit_code: transcript.exit_code,
                elapsed: transcript.elapsed,
            },
        );
        let report = ServiceReport {
            name: job.facts.name.clone(),
            id: job.facts.id.clone(),
            policy,
            outcome,
            exit_code: transcript.exit_code,
            started_at: timestamp(started_at),
            stopped_at: (transcript.exit_code.is_some()
                && outcome != ServiceOutcome::AlreadyStopped)
                .then(|| timestamp(runtime.wall_clock())),
            budget_ms: millis(job.budget),
            elapsed_ms: millis(transcript.elapsed),
            steps: transcript.steps.iter().map(StepReport::from).collect(),
            fallback_reason: transcript.fallback_reason.clone(),
            fallback_kind: transcript.fallback.as_ref().map(|f| f.kind.clone()),
            policy_log: transcript.policy_log.clone(),
            restart_policy,
            supervisor,
            stopped_by,
            warnings,
        };
        ServiceRun { report, transcript }
    }
}

/// The executor's side of one sequence: the engine, the exit watcher, the live events.
struct Driver<R: Runtime> {
    runtime: Arc<R>,
    id: String,
    signal_target: SignalTarget,
    name: String,
    events: EventSink,
    started: Instant,
    exit: Option<watch::Receiver<Option<Exit>>>,
    /// What the operator should know about the steps performed.
    warnings: std::sync::Mutex<Vec<Warning>>,
    /// The engine has yet to record the container as stopped by its operator
    /// ([`Driver::mark_stopped`]).
    unmarked: std::sync::atomic::AtomicBool,
}

impl<R: Runtime> Driver<R> {
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn exited(&self) -> Option<Exit> {
        self.exit.as_ref().and_then(|exit| *exit.borrow())
    }

    /// Tells the sequence what the exit watcher knows.
    fn tell_exit(&self, sequence: &mut Sequence) {
        match self.exited() {
            Some(Exit::Exited(code)) => sequence.exited(code),
            Some(Exit::Gone) => sequence.gone(),
            None => {}
        }
    }

    /// Passes the sequence's progress on to the live output.
    fn forward(&self, sequence: &mut Sequence) {
        while let Some(event) = sequence.poll_event() {
            let service = self.name.clone();
            send(
                &self.events,
                match event {
                    SequenceEvent::StepStarted { at, step, by } => Event::StepStarted {
                        service,
                        at,
                        step,
                        by,
                    },
                    SequenceEvent::StepEnded {
                        at, step, outcome, ..
                    } => Event::StepEnded {
                        service,
                        at,
                        step,
                        outcome,
                    },
                    SequenceEvent::Note(note) => Event::Note {
                        service,
                        text: note.text,
                    },
                },
            );
        }
    }

    /// Performs the sequence's actions until it is done.
    async fn drive(&mut self, sequence: &mut Sequence, policy: &dyn Decider) {
        let mut asking = Asking(policy);
        loop {
            self.tell_exit(sequence);
            let action = sequence.poll(self.now(), &mut asking);
            self.forward(sequence);
            match action {
                Action::Done => return,
                Action::Observe => {
                    let state =
                        answered(ENGINE_ANSWER_TIMEOUT, self.runtime.observe(&self.id)).await;
                    if state == Err(RuntimeError::Gone) {
                        sequence.gone();
                    }
                    self.tell_exit(sequence);
                    sequence.observed(self.now(), state.ok());
                }
                action => {
                    let outcome = self.perform(action).await;
                    self.tell_exit(sequence);
                    sequence.complete(self.now(), outcome);
                }
            }
        }
    }

    /// After the exit, one more look: started again by someone else, removed meanwhile, or
    /// another exit status than the engine's wait said.
    async fn confirm_stopped(&self, sequence: &mut Sequence) {
        let mut looks = 0;
        while let Some(code) = sequence.exit_code()
            && looks < 2
        {
            looks += 1;
            if code == 137 && !sequence.killed_by_us() {
                // Someone else (`docker restart`, `docker rm -f`, an orchestrator) is at
                // work; give them the moment they need before looking.
                tokio::time::sleep(RESTART_SETTLE).await;
            }
            match answered(ENGINE_ANSWER_TIMEOUT, self.runtime.observe(&self.id)).await {
                Ok(state) if state.running => sequence.running_again(),
                Ok(ContainerState {
                    exit_code: Some(seen),
                    ..
                }) if seen != code => {
                    sequence.exit_restated(seen);
                    continue;
                }
                Err(RuntimeError::Gone) => sequence.gone(),
                _ => {}
            }
            break;
        }
        self.forward(sequence);
    }

    /// Makes the engine record the container as stopped by its operator, as `docker stop`
    /// does, before a step that may end it without a signal through the engine (an exec or an
    /// HTTP drain, a wait, signals to PID 1's children): Docker starts an `unless-stopped`
    /// container again on its next start (a daemon restart) unless that record says so, and
    /// only its kill and stop requests make it (issue 29; `StoppedByUser` on Podman). The
    /// request carries SIGCONT, which a running process receives without effect. Once a
    /// signal has gone to PID 1 through the engine, the record is made.
    async fn mark_stopped(&self, action: &Action) {
        use std::sync::atomic::Ordering;
        let through_engine =
            matches!(action, Action::Signal { .. }) && self.signal_target == SignalTarget::Pid1;
        if through_engine || !self.unmarked.swap(false, Ordering::SeqCst) {
            return;
        }
        let marked = answered(
            ENGINE_ANSWER_TIMEOUT,
            self.runtime
                .signal(&self.id, quiesce_policy_sdk::Signal::CONT),
        )
        .await;
        if let Err(error) = marked {
            self.unmarked.store(true, Ordering::SeqCst);
            tracing::debug!(container = %self.name, %error, "could not mark the container stopped");
        }
    }

    /// Performs one primitive; every one ends at its limit.
    async fn perform(&self, action: Action) -> Outcome {
        let (runtime, id) = (&self.runtime, self.id.as_str());
        self.mark_stopped(&action).await;
        match action {
            Action::Signal { signal, limit } => {
                tracing::debug!(container = %self.name, %signal, "signal requested");
                // A healthy engine answers in milliseconds even near the end of a budget: give
                // the request at least a second, so a slow answer is not mistaken for silence.
                let limit = limit.max(Duration::from_secs(1)).min(ENGINE_ANSWER_TIMEOUT);
                let delivered = async {
                    match self.signal_target {
                        SignalTarget::Pid1 => runtime.signal(id, signal).await,
                        SignalTarget::Child => runtime.signal_children(id, signal).await,
                    }
                };
                match answered(limit, delivered).await {
                    Ok(()) => {
                        if self.signal_target == SignalTarget::Pid1 {
                            // Through the engine's kill request: recorded as stopped.
                            self.unmarked
                                .store(false, std::sync::atomic::Ordering::SeqCst);
                        }
                        Outcome::SignalDelivered
                    }
                    Err(error) => self.failed(error),
                }
            }
            Action::Exec { argv, limit } => {
                // The runtime stops the command at its limit; past the time that takes, it is
                // dropped (and stops it as far as it can).
                let bound = limit.saturating_add(EXEC_STOP_TIMEOUT);
                match self.until_exit(bound, runtime.exec(id, &argv, limit)).await {
                    Some(Ok(Ok(ExecEnd::Exited(output)))) => Outcome::ExecCompleted {
                        exit_code: output.exit_code,
                        output_tail: output.output_tail,
                    },
                    Some(Ok(Ok(ExecEnd::TimedOut(stopped)))) => {
                        if let Err(why) = stopped {
                            self.left_running(&argv, &why);
                        }
                        Outcome::TimedOut
                    }
                    Some(Ok(Err(error))) => self.failed(error),
                    Some(Err(_)) => Outcome::TimedOut,
                    None => Outcome::ContainerStopped,
                }
            }
            Action::Http {
                method,
                url,
                body,
                limit,
            } => {
                let call = runtime.http(id, &method, &url, body.as_deref());
                match tokio::time::timeout(limit, call).await {
                    Ok(Ok(response)) => Outcome::HttpCompleted {
                        status: response.status,
                        body_tail: response.body_tail,
                    },
                    Ok(Err(error)) => Outcome::Failed(error.to_string()),
                    Err(_) => Outcome::TimedOut,
                }
            }
            Action::Wait { until, limit } => self.wait(until, limit).await,
            Action::Observe | Action::Done => unreachable!("handled by the driver loop"),
        }
    }

    /// Runs `work` for at most `limit`: `None` when the service exits first (`work` is
    /// dropped), `Some(Err)` at the limit.
    async fn until_exit<T>(
        &self,
        limit: Duration,
        work: impl Future<Output = T>,
    ) -> Option<Result<T, tokio::time::error::Elapsed>> {
        let Some(mut exit) = self.exit.clone() else {
            return Some(tokio::time::timeout(limit, work).await);
        };
        tokio::select! {
            biased;
            done = tokio::time::timeout(limit, work) => Some(done),
            _ = exit.wait_for(Option::is_some) => None,
        }
    }

    async fn wait(&self, until: Until, limit: Duration) -> Outcome {
        let runtime = &self.runtime;
        match until {
            Until::Exit => {
                let Some(mut exit) = self.exit.clone() else {
                    tokio::time::sleep(limit).await;
                    return Outcome::TimedOut;
                };
                let seen = tokio::time::timeout(limit, exit.wait_for(Option::is_some))
                    .await
                    .is_ok();
                if seen {
                    return Outcome::ConditionMet;
                }
                // An exit at the very moment the wait ends counts: let the watcher catch up.
                tokio::task::yield_now().await;
                match self.exited() {
                    Some(_) => Outcome::ConditionMet,
                    None => Outcome::TimedOut,
                }
            }
            Until::Time => match self.until_exit(limit, std::future::pending::<()>()).await {
                None => Outcome::ContainerStopped,
                Some(_) => Outcome::TimedOut,
            },
            Until::LogLine(text) => {
                let line = async {
                    let since = runtime.wall_clock();
                    if runtime.wait_log_line(&self.id, &text, since).await.is_err() {
                        // The log stream ended: wait for the exit (or the timeout).
                        std::future::pending::<()>().await;
                    }
                };
                match self.until_exit(limit, line).await {
                    Some(Ok(())) => Outcome::ConditionMet,
                    Some(Err(_)) => Outcome::TimedOut,
                    None => Outcome::ContainerStopped,
                }
            }
        }
    }

    /// A timed-out command that could not be stopped: the operator hears of it at once and in
    /// the report.
    fn left_running(&self, argv: &[String], why: &str) {
        let text = format!(
            "the timed-out command `{}` may still run in the container: {why}",
            argv.join(" ")
        );
        send(
            &self.events,
            Event::Note {
                service: self.name.clone(),
                text: text.clone(),
            },
        );
        self.warnings
            .lock()
            .expect("the warnings' lock")
            .push(Warning::new(WarningCode::ExecLeftRunning, text));
    }

    fn failed(&self, error: RuntimeError) -> Outcome {
        match error {
            _ if self.exited().is_some() => Outcome::ContainerStopped,
            RuntimeError::NotRunning | RuntimeError::Gone => Outcome::ContainerStopped,
            error => Outcome::Failed(error.to_string()),
        }
    }
}

/// `call`, or an error naming the engine's silence if it takes longer than `limit`.
async fn answered<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, RuntimeError>>,
) -> Result<T, RuntimeError> {
    tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
        Err(RuntimeError::Unreachable(format!(
            "the engine did not answer within {}",
            humantime::format_duration(limit)
        )))
    })
}

/// Starts watching for the exit. If the engine's wait fails (not because the container is
/// gone), it falls back to polling the state.
fn watch_exit<R: Runtime>(runtime: Arc<R>, id: String) -> watch::Receiver<Option<Exit>> {
    let (sender, receiver) = watch::channel(None);
    tokio::spawn(async move {
        let watching = async {
            match runtime.wait_exit(&id).await {
                Ok(code) => Exit::Exited(code),
                Err(RuntimeError::Gone) => Exit::Gone,
                Err(_) => loop {
                    match runtime.observe(&id).await {
                        Ok(state) if !state.running => {
                            break Exit::Exited(state.exit_code.unwrap_or(-1));
                        }
                        Err(RuntimeError::Gone) => break Exit::Gone,
                        _ => tokio::time::sleep(POLL_INTERVAL).await,
                    }
                },
            }
        };
        // The watch ends with the stop that reads it (a service left running does not
        // exit): its request to the engine is dropped then.
        tokio::select! {
            exit = watching => {
                let _ = sender.send(Some(exit));
            }
            () = sender.closed() => {}
        }
    });
    receiver
}
