//! Runs one service's shutdown sequence: asks its policy for a step, performs it against a
//! [`Runtime`], feeds the outcome back, until the policy finishes or the budget runs out.
//!
//! Guarantees, whatever the policy answers:
//! - the exit is watched before the first step, so it is noticed at once, not at a poll;
//! - every step is bounded by the service's remaining budget (and the run's deadline); a small
//!   reserve at the end of the budget is kept for the conservative ending (SIGKILL);
//! - when the budget runs out the policy is told once (its context says 0 ms remain), then the
//!   runner applies the configured ending (SIGKILL by default);
//! - a policy that fails (trap, limit, invalid answer, too many steps) is replaced by the
//!   conservative sequence (stop signal, grace period, SIGKILL: the built-in `default` policy,
//!   run natively) from that point on, and the report names the reason;
//! - a container with a restart policy gets `no` before the first step, so an exit caused by an
//!   exec'd command or an HTTP call is not undone by Docker; the original is restored after the
//!   container has stopped.
//!
//! Time is tokio's, so the same code runs in virtual time (`tokio::time::pause`) for `plan`.

use std::sync::Arc;
use std::time::Duration;

use quiesce_policy_default::DefaultPolicy;
use quiesce_policy_sdk::rules::{
    FINISH_GRACE, KILL_RESERVE, MAX_STEPS, POLL_INTERVAL, PROBE_TIMEOUT, http_allowed, kill_reserve,
};
use quiesce_policy_sdk::{
    ContainerState, Context, Outcome, ServiceFacts, Signal, Step, StepRecord, WaitCondition,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::config::BudgetExhausted;
use crate::policy::{CallError, CallFailure, Decision, LoadedPolicy};
use crate::report::{
    PolicyIdentity, RestartPolicyChange, ServiceOutcome, ServiceReport, StepOrigin, StepReport,
    millis, timestamp,
};
use crate::runtime::{Observed, Runtime, RuntimeError};

/// How long to wait, after a SIGKILL quiesce did not send, before checking whether someone
/// else restarted the container.
const RESTART_SETTLE: Duration = Duration::from_secs(1);

/// Something that decides steps: a wasm policy, or a native one in tests.
pub trait Decider: Send + Sync {
    /// Name, version and digest, for the report.
    fn identity(&self) -> PolicyIdentity;
    /// The next step.
    fn decide(&self, ctx: &Context) -> Result<Decision, CallError>;
}

impl Decider for LoadedPolicy {
    fn identity(&self) -> PolicyIdentity {
        PolicyIdentity {
            name: self.name().to_string(),
            version: self.info().version.clone(),
            digest: self.digest().to_string(),
        }
    }

    fn decide(&self, ctx: &Context) -> Result<Decision, CallError> {
        LoadedPolicy::decide(self, ctx)
    }
}

/// A policy compiled natively (a type implementing the SDK's `Policy`), as a [`Decider`]: the
/// runner's own fallback, and policies under test without wasm.
pub struct NativePolicy<P> {
    identity: PolicyIdentity,
    policy: std::marker::PhantomData<fn() -> P>,
}

impl<P: quiesce_policy_sdk::Policy> NativePolicy<P> {
    /// Wraps policy `P`; the report names it with digest `native`.
    pub fn new() -> NativePolicy<P> {
        let info = P::info();
        NativePolicy {
            identity: PolicyIdentity {
                name: info.name,
                version: info.version,
                digest: "native".to_string(),
            },
            policy: std::marker::PhantomData,
        }
    }
}

impl<P: quiesce_policy_sdk::Policy> Default for NativePolicy<P> {
    fn default() -> Self {
        NativePolicy::new()
    }
}

impl<P: quiesce_policy_sdk::Policy> Decider for NativePolicy<P> {
    fn identity(&self) -> PolicyIdentity {
        self.identity.clone()
    }

    fn decide(&self, ctx: &Context) -> Result<Decision, CallError> {
        let started = std::time::Instant::now();
        quiesce_policy_sdk::decide::<P>(ctx)
            .map(|step| Decision {
                step,
                log: String::new(),
                peak_memory: 0,
                elapsed: started.elapsed(),
            })
            .map_err(|message| CallError {
                policy: self.identity.name.clone(),
                function: "next",
                failure: CallFailure::Refused { message },
                log: String::new(),
            })
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
    pub on_exhausted: BudgetExhausted,
    /// `host:port` addresses besides loopback that HTTP steps may call.
    pub allow_http: Arc<Vec<String>>,
    /// Warnings found before the run (e.g. PID 1 will not forward signals).
    pub warnings: Vec<String>,
    /// The container's state as inspected while preparing; when given, the sequence starts
    /// from it instead of inspecting again (one Docker round trip less per service).
    pub observed: Option<Observed>,
    /// The restart policy in Docker's CLI form when it says more than its name
    /// (`on-failure:5`): what is put back after the stop. `None`: `facts.restart_policy`.
    pub restart_policy_spec: Option<String>,
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
        /// The step, in words.
        action: String,
        /// Its detail.
        detail: String,
    },
    /// A step ended.
    StepEnded {
        /// The service.
        service: String,
        /// Time since its sequence began.
        at: Duration,
        /// The step's action.
        action: String,
        /// What came of it.
        result: String,
    },
    /// Something the operator should know (fallback, budget exhausted...).
    Note {
        /// The service.
        service: String,
        /// The text.
        text: String,
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

/// What the exit watcher learned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Exit {
    /// The container exited with this status.
    Exited(i32),
    /// The container was removed.
    Gone,
}

/// One service's run in progress.
struct Run<R: Runtime> {
    runtime: Arc<R>,
    job: ServiceJob,
    events: EventSink,
    started: Instant,
    /// When the budget (or the run's deadline) ends, minus the kill reserve.
    steps_end: Instant,
    history: Vec<StepRecord>,
    origins: Vec<StepOrigin>,
    exit: watch::Receiver<Option<Exit>>,
    /// Index in `history` where the fallback sequence took over.
    fallback_from: Option<usize>,
    fallback_failure: Option<CallFailure>,
    fallback_reason: Option<String>,
    killed: bool,
    log: String,
    warnings: Vec<String>,
}

/// Stops one service. `deadline` is the whole run's.
pub async fn run_service<R: Runtime>(
    runtime: Arc<R>,
    job: ServiceJob,
    deadline: Instant,
    events: EventSink,
) -> ServiceReport {
    let started = Instant::now();
    let started_at = runtime.wall_clock();
    let identity = job.policy.identity();
    let id = job.facts.id.clone();
    let name = job.facts.name.clone();
    let budget_ms = millis(job.budget);
    let report = |outcome, exit_code, warnings: Vec<String>| ServiceReport {
        name: name.clone(),
        id: id.clone(),
        policy: identity.clone(),
        outcome,
        exit_code,
        started_at: timestamp(started_at),
        stopped_at: None,
        budget_ms,
        elapsed_ms: 0,
        steps: Vec::new(),
        fallback_reason: None,
        fallback_kind: None,
        policy_log: String::new(),
        restart_policy: None,
        warnings,
    };
    let emit_finished = |outcome, exit_code| {
        send(
            &events,
            Event::Finished {
                service: name.clone(),
                outcome,
                exit_code,
                elapsed: started.elapsed(),
            },
        )
    };

    let initial = match job.observed.clone() {
        Some(observed) => Ok(observed),
        None => answered(ENGINE_ANSWER_TIMEOUT, runtime.observe(&id)).await,
    };
    match initial {
        Ok(observed) if observed.running => {}
        Ok(observed) => {
            emit_finished(ServiceOutcome::AlreadyStopped, observed.exit_code);
            return report(
                ServiceOutcome::AlreadyStopped,
                observed.exit_code,
                job.warnings.clone(),
            );
        }
        Err(RuntimeError::Gone) => {
            emit_finished(ServiceOutcome::Gone, None);
            return report(ServiceOutcome::Gone, None, job.warnings.clone());
        }
        Err(error) => {
            emit_finished(ServiceOutcome::Failed, None);
            let mut warnings = job.warnings.clone();
            warnings.push(format!("could not inspect the container: {error}"));
            return report(ServiceOutcome::Failed, None, warnings);
        }
    }
    send(
        &events,
        Event::Started {
            service: name.clone(),
            policy: identity.name.clone(),
            budget: job.budget,
        },
    );

    // Watch for the exit before anything is sent, so it is seen the moment it happens.
    let exit = watch_exit(runtime.clone(), id.clone());
    let restart_change = keep_stopped(&*runtime, &job, &events).await;

    let budget_end = (started + job.budget).min(deadline);
    let reserve = kill_reserve(job.budget);
    let mut run = Run {
        runtime: runtime.clone(),
        warnings: job.warnings.clone(),
        job,
        events: events.clone(),
        started,
        steps_end: budget_end
            .checked_sub(reserve)
            .unwrap_or(budget_end)
            .max(started),
        history: Vec::new(),
        origins: Vec::new(),
        exit,
        fallback_from: None,
        fallback_failure: None,
        fallback_reason: None,
        killed: false,
        log: String::new(),
    };
    run.sequence().await;

    let mut exit = run.exit.borrow().clone();
    if let Some(Exit::Exited(code)) = exit {
        let killed_by_others = code == 137 && !run.killed;
        // Look again only when it matters: before restoring a restart policy (Docker must not
        // be told to restart a container that something else already started), and after a
        // kill that was not ours. A plain exit with the restart policy untouched is final,
        // and skipping the inspect spares the daemon a request per service.
        if killed_by_others || restart_change.is_some() {
            if killed_by_others {
                // Someone else (`docker restart`, `docker rm -f`, an orchestrator) is at
                // work; give them the moment they need before looking.
                tokio::time::sleep(RESTART_SETTLE).await;
            }
            exit = confirm_stopped(&mut run, exit).await;
        }
    }
    let mut restart_policy = restart_change;
    if let Some(change) = &mut restart_policy
        && matches!(exit, Some(Exit::Exited(_)))
    {
        change.restored = answered(
            ENGINE_ANSWER_TIMEOUT,
            run.runtime.set_restart_policy(&id, &change.original),
        )
        .await
        .is_ok();
    }
    let (outcome, exit_code) = match exit {
        Some(Exit::Gone) => (ServiceOutcome::Gone, None),
        Some(Exit::Exited(code)) if run.fallback_from.is_some() => {
            (ServiceOutcome::Fallback, Some(code))
        }
        Some(Exit::Exited(code)) if run.killed => (ServiceOutcome::Killed, Some(code)),
        Some(Exit::Exited(137)) => {
            run.note("the container was SIGKILLed by something other than quiesce (its engine shutting down, an operator, the OOM killer)".into());
            (ServiceOutcome::Killed, Some(137))
        }
        Some(Exit::Exited(code)) => (ServiceOutcome::Graceful, Some(code)),
        None => (ServiceOutcome::Failed, None),
    };
    let elapsed = started.elapsed();
    emit_finished(outcome, exit_code);
    ServiceReport {
        outcome,
        exit_code,
        stopped_at: exit_code.map(|_| timestamp(run.runtime.wall_clock())),
        elapsed_ms: millis(elapsed),
        steps: run.step_reports(),
        fallback_reason: run.fallback_reason.clone(),
        fallback_kind: run.fallback_failure.as_ref().map(|f| f.kind().to_string()),
        policy_log: run.log.clone(),
        restart_policy,
        warnings: run.warnings.clone(),
        ..report(outcome, exit_code, Vec::new())
    }
}

fn send(events: &EventSink, event: Event) {
    if let Some(events) = events {
        let _ = events.send(event);
    }
}

/// Inspects a container whose exit was seen: it may have been started again (then it is not
/// stopped) or removed meanwhile.
async fn confirm_stopped<R: Runtime>(run: &mut Run<R>, exit: Option<Exit>) -> Option<Exit> {
    match answered(
        ENGINE_ANSWER_TIMEOUT,
        run.runtime.observe(&run.job.facts.id),
    )
    .await
    {
        Ok(observed) if observed.running => {
            // Something started it again: not stopped, and its restart policy stays off.
            run.note("the container exited but is running again: something else restarted it during the stop".into());
            None
        }
        Err(RuntimeError::Gone) => Some(Exit::Gone),
        _ => exit,
    }
}

/// The longest quiesce waits for the engine to answer one request (a signal, an inspect, a
/// restart-policy update) outside a step's own timeout. Docker answers in milliseconds; one
/// that does not answer for this long is wedged (Docker 20.10 has a known deadlock that leaves
/// such requests hanging forever), and the service's sequence goes on without the answer.
pub const ENGINE_ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

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
        let exit = match runtime.wait_exit(&id).await {
            Ok(code) => Exit::Exited(code),
            Err(RuntimeError::Gone) => Exit::Gone,
            Err(_) => loop {
                match runtime.observe(&id).await {
                    Ok(observed) if !observed.running => {
                        break Exit::Exited(observed.exit_code.unwrap_or(-1));
                    }
                    Err(RuntimeError::Gone) => break Exit::Gone,
                    _ if sender.is_closed() => return,
                    _ => tokio::time::sleep(POLL_INTERVAL).await,
                }
            },
        };
        let _ = sender.send(Some(exit));
    });
    receiver
}

/// Turns the restart policy off so an exit is not undone by Docker; returns what was changed.
async fn keep_stopped<R: Runtime>(
    runtime: &R,
    job: &ServiceJob,
    events: &EventSink,
) -> Option<RestartPolicyChange> {
    let name = job.facts.restart_policy.as_str();
    if name.is_empty() || name == "no" {
        return None;
    }
    let original = job.restart_policy_spec.as_deref().unwrap_or(name);
    match answered(
        ENGINE_ANSWER_TIMEOUT,
        runtime.set_restart_policy(&job.facts.id, "no"),
    )
    .await
    {
        Ok(()) => Some(RestartPolicyChange {
            original: original.to_string(),
            restored: false,
        }),
        Err(error) => {
            send(
                events,
                Event::Note {
                    service: job.facts.name.clone(),
                    text: format!("could not turn off the restart policy `{original}`: {error}"),
                },
            );
            None
        }
    }
}

/// The time that passes until `end`, or zero.
fn until(end: Instant) -> Duration {
    end.saturating_duration_since(Instant::now())
}

impl<R: Runtime> Run<R> {
    fn name(&self) -> &str {
        &self.job.facts.name
    }

    fn note(&mut self, text: String) {
        send(
            &self.events,
            Event::Note {
                service: self.name().to_string(),
                text: text.clone(),
            },
        );
        self.warnings.push(text);
    }

    fn exited(&self) -> Option<Exit> {
        self.exit.borrow().clone()
    }

    fn context(&self, remaining: Duration) -> Context {
        let history = match self.fallback_from {
            Some(from) => self.history[from..].to_vec(),
            None => self.history.clone(),
        };
        let exit = self.exited();
        Context {
            service: self.job.facts.clone(),
            settings: match self.fallback_from {
                Some(_) => String::new(),
                None => self.job.settings.clone(),
            },
            history,
            state: ContainerState {
                running: exit.is_none(),
                exit_code: match exit {
                    Some(Exit::Exited(code)) => Some(code),
                    _ => None,
                },
                health: self.job.facts.health,
            },
            elapsed: self.started.elapsed(),
            remaining,
        }
    }

    /// Asks the policy (or the fallback) for the next step; a policy failure switches to the
    /// fallback and asks it instead.
    fn decide(&mut self, remaining: Duration) -> (Step, StepOrigin) {
        if self.fallback_from.is_none() {
            if self.history.len() >= MAX_STEPS {
                self.fall_back(
                    CallFailure::InvalidAnswer {
                        reason: format!("took more than {MAX_STEPS} steps"),
                    },
                    String::new(),
                );
            } else {
                match self.job.policy.decide(&self.context(remaining)) {
                    Ok(decision) => {
                        self.append_log(&decision.log);
                        return (decision.step, StepOrigin::Policy);
                    }
                    Err(error) => self.fall_back(error.failure, error.log),
                }
            }
        }
        let step = quiesce_policy_sdk::decide::<DefaultPolicy>(&self.context(remaining))
            .unwrap_or(Step::Kill);
        (step, StepOrigin::Fallback)
    }

    fn append_log(&mut self, log: &str) {
        const LOG_CAP: usize = 64 << 10;
        if self.log.len() < LOG_CAP {
            let room = LOG_CAP - self.log.len();
            self.log.push_str(&log[..floor_char_boundary(log, room)]);
        }
    }

    fn fall_back(&mut self, failure: CallFailure, log: String) {
        self.append_log(&log);
        let reason = format!(
            "policy `{}` {failure}; the conservative sequence (stop signal, grace period, SIGKILL) took over",
            self.job.policy.identity().name
        );
        self.note(reason.clone());
        self.fallback_reason = Some(reason);
        self.fallback_failure = Some(failure);
        self.fallback_from = Some(self.history.len());
    }

    /// The loop: decide, perform, record; then the ending.
    async fn sequence(&mut self) {
        loop {
            if matches!(self.exited(), Some(Exit::Gone)) {
                return;
            }
            let remaining = until(self.steps_end);
            if remaining.is_zero() {
                return self.budget_exhausted().await;
            }
            let (step, origin) = self.decide(remaining);
            if step == Step::Finish {
                return self.verify_finished().await;
            }
            self.perform_and_record(step, origin, remaining).await;
        }
    }

    /// The budget ran out: tell the policy once, then apply the configured ending.
    async fn budget_exhausted(&mut self) {
        if self.exited().is_some() {
            return;
        }
        self.note(format!(
            "budget of {} exhausted while the container still runs",
            humantime::format_duration(self.job.budget)
        ));
        let (last_word, origin) = self.decide(Duration::ZERO);
        if last_word == Step::Kill {
            return self.kill(origin).await;
        }
        if last_word != Step::Finish {
            let text = format!(
                "the policy asked for `{}` after its budget; ignored",
                last_word.describe().0
            );
            self.note(text);
        }
        match self.job.on_exhausted {
            BudgetExhausted::Kill => self.kill(StepOrigin::Runner).await,
            BudgetExhausted::LeaveRunning => self.note(
                "left running, as configured (on_budget_exhausted = \"leave-running\")".into(),
            ),
        }
    }

    /// The policy said it is done: make sure the container really stopped.
    async fn verify_finished(&mut self) {
        if self.exited().is_some() {
            return;
        }
        // The exit may be a moment behind the policy's last step.
        let _ = tokio::time::timeout(FINISH_GRACE, self.exit.wait_for(Option::is_some)).await;
        if self.exited().is_some() {
            return;
        }
        self.note("the policy finished but the container still runs".into());
        match self.job.on_exhausted {
            BudgetExhausted::Kill => self.kill(StepOrigin::Runner).await,
            BudgetExhausted::LeaveRunning => {}
        }
    }

    /// SIGKILL, then wait (within the reserve) for the exit.
    async fn kill(&mut self, origin: StepOrigin) {
        let reserve = KILL_RESERVE.max(until(self.steps_end));
        self.perform_and_record(Step::Kill, origin, reserve).await;
        if self.exited().is_none() {
            let wait = Step::wait_for_exit(reserve);
            self.perform_and_record(wait, origin, reserve).await;
        }
    }

    async fn perform_and_record(&mut self, step: Step, origin: StepOrigin, remaining: Duration) {
        let (action, detail) = step.describe();
        let start = self.started.elapsed();
        send(
            &self.events,
            Event::StepStarted {
                service: self.name().to_string(),
                at: start,
                action: action.clone(),
                detail,
            },
        );
        let outcome = self.perform(&step, remaining).await;
        let end = self.started.elapsed();
        send(
            &self.events,
            Event::StepEnded {
                service: self.name().to_string(),
                at: end,
                action,
                result: outcome.describe(),
            },
        );
        if step == Step::Kill && outcome == Outcome::Killed {
            self.killed = true;
        }
        self.history.push(StepRecord {
            step,
            outcome,
            started: start,
            ended: end,
        });
        self.origins.push(origin);
    }

    /// Performs one step, bounded by `remaining`.
    async fn perform(&mut self, step: &Step, remaining: Duration) -> Outcome {
        let id = self.job.facts.id.clone();
        let runtime = self.runtime.clone();
        match step {
            Step::Signal(signal) => {
                self.deliver(*signal, Outcome::SignalDelivered, remaining)
                    .await
            }
            Step::Kill => {
                // SIGKILL cannot be caught: the step ends when the exit is seen (within the
                // kill reserve), so the next decision sees a stopped container.
                let outcome = self.deliver(Signal::KILL, Outcome::Killed, remaining).await;
                if outcome == Outcome::Killed {
                    let mut exit = self.exit.clone();
                    let _ =
                        tokio::time::timeout(KILL_RESERVE, exit.wait_for(Option::is_some)).await;
                }
                outcome
            }
            Step::Exec { argv, timeout } => {
                if self.exited().is_some() {
                    return Outcome::ContainerStopped;
                }
                let limit = (*timeout).min(remaining);
                match tokio::time::timeout(limit, runtime.exec(&id, argv)).await {
                    Ok(Ok(output)) => Outcome::ExecCompleted {
                        exit_code: output.exit_code,
                        output_tail: output.output_tail,
                    },
                    Ok(Err(error)) => self.failed(error),
                    Err(_) => Outcome::TimedOut,
                }
            }
            Step::Http {
                method,
                url,
                body,
                timeout,
            } => {
                if let Err(reason) = http_allowed(url, &self.job.allow_http) {
                    return Outcome::Failed(reason);
                }
                let limit = (*timeout).min(remaining);
                match tokio::time::timeout(limit, runtime.http(&id, method, url, body.as_deref()))
                    .await
                {
                    Ok(Ok(response)) => Outcome::HttpCompleted {
                        status: response.status,
                        body_tail: response.body_tail,
                    },
                    Ok(Err(error)) => Outcome::Failed(error.to_string()),
                    Err(_) => Outcome::TimedOut,
                }
            }
            Step::Wait { until, timeout } => self.wait(until, (*timeout).min(remaining)).await,
            Step::Finish => Outcome::ConditionMet,
        }
    }

    fn failed(&self, error: RuntimeError) -> Outcome {
        match error {
            _ if self.exited().is_some() => Outcome::ContainerStopped,
            RuntimeError::NotRunning | RuntimeError::Gone => Outcome::ContainerStopped,
            error => Outcome::Failed(error.to_string()),
        }
    }

    /// Sends `signal`; an engine that does not answer within `limit` (at most
    /// [`ENGINE_ANSWER_TIMEOUT`]) fails the step.
    async fn deliver(&mut self, signal: Signal, delivered: Outcome, limit: Duration) -> Outcome {
        if self.exited().is_some() {
            return Outcome::ContainerStopped;
        }
        // A healthy engine answers in milliseconds even near the end of a budget: give the
        // request at least a second, so a slow answer is not mistaken for silence.
        let limit = limit.max(Duration::from_secs(1)).min(ENGINE_ANSWER_TIMEOUT);
        match answered(limit, self.runtime.signal(&self.job.facts.id, signal)).await {
            Ok(()) => delivered,
            Err(error) => self.failed(error),
        }
    }

    async fn wait(&mut self, condition: &WaitCondition, limit: Duration) -> Outcome {
        let end = Instant::now() + limit;
        let mut exit = self.exit.clone();
        let exited = async move {
            let _ = exit.wait_for(Option::is_some).await;
        };
        tokio::pin!(exited);
        let id = self.job.facts.id.clone();
        let runtime = self.runtime.clone();
        let condition_met = async {
            match condition {
                WaitCondition::Exited => std::future::pending::<Outcome>().await,
                WaitCondition::Elapsed => {
                    tokio::time::sleep_until(end).await;
                    Outcome::TimedOut
                }
                WaitCondition::Probe(argv) => loop {
                    let probe_limit = PROBE_TIMEOUT.min(until(end));
                    if let Ok(Ok(output)) =
                        tokio::time::timeout(probe_limit, runtime.exec(&id, argv)).await
                        && output.exit_code == 0
                    {
                        break Outcome::ConditionMet;
                    }
                    tokio::time::sleep(POLL_INTERVAL).await;
                },
                WaitCondition::Health(wanted) => loop {
                    if let Ok(observed) = runtime.observe(&id).await
                        && observed.health == Some(*wanted)
                    {
                        break Outcome::ConditionMet;
                    }
                    tokio::time::sleep(POLL_INTERVAL).await;
                },
                WaitCondition::LogLine(text) => {
                    match runtime.wait_log_line(&id, text, runtime.wall_clock()).await {
                        Ok(()) => Outcome::ConditionMet,
                        // The log stream ended: wait for the exit (or the timeout).
                        Err(_) => std::future::pending::<Outcome>().await,
                    }
                }
            }
        };
        tokio::select! {
            biased;
            outcome = condition_met => outcome,
            () = &mut exited => match condition {
                WaitCondition::Exited => Outcome::ConditionMet,
                _ => Outcome::ContainerStopped,
            },
            () = tokio::time::sleep_until(end) => Outcome::TimedOut,
        }
    }

    fn step_reports(&self) -> Vec<StepReport> {
        self.history
            .iter()
            .zip(&self.origins)
            .map(|(record, origin)| {
                let (action, detail) = record.step.describe();
                StepReport {
                    action,
                    detail,
                    start_ms: millis(record.started),
                    end_ms: millis(record.ended),
                    result: record.outcome.describe(),
                    by: *origin,
                }
            })
            .collect()
    }
}

fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}
