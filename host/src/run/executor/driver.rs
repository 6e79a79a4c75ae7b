//! The executor's side of one sequence: each action performed on the engine, every request
//! bounded, the exit watched from before the first step.

use std::sync::Arc;
use std::time::Duration;

use quiesce_policy_sdk::rules::POLL_INTERVAL;
use quiesce_policy_sdk::sequence::{
    Action, Decide, Decided, PolicyFailure, Sequence, SequenceEvent, Until,
};
use quiesce_policy_sdk::{ContainerState, Context, Outcome};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{ENGINE_ANSWER_TIMEOUT, Event, EventSink, Exit, RESTART_SETTLE, send};
use crate::model::process::SignalTarget;
use crate::model::warning::{Warning, WarningCode};
use crate::policy::Decider;
use crate::runtime::{EXEC_STOP_TIMEOUT, ExecEnd, Runtime, RuntimeError};

/// The executor's side of one sequence: the engine, the exit watcher, the live events.
pub(super) struct Driver<R: Runtime> {
    pub(super) runtime: Arc<R>,
    pub(super) id: String,
    pub(super) signal_target: SignalTarget,
    pub(super) name: String,
    pub(super) events: EventSink,
    pub(super) started: Instant,
    pub(super) exit: Option<watch::Receiver<Option<Exit>>>,
    /// What the operator should know about the steps performed.
    pub(super) warnings: std::sync::Mutex<Vec<Warning>>,
    /// The engine has yet to record the container as stopped by its operator
    /// ([`Driver::mark_stopped`]).
    pub(super) unmarked: std::sync::atomic::AtomicBool,
}

impl<R: Runtime> Driver<R> {
    pub(super) fn now(&self) -> Duration {
        self.started.elapsed()
    }

    pub(super) fn exited(&self) -> Option<Exit> {
        self.exit.as_ref().and_then(|exit| *exit.borrow())
    }

    /// Tells the sequence what the exit watcher knows.
    pub(super) fn tell_exit(&self, sequence: &mut Sequence) {
        match self.exited() {
            Some(Exit::Exited(code)) => sequence.exited(code),
            Some(Exit::Gone) => sequence.gone(),
            None => {}
        }
    }

    /// Passes the sequence's progress on to the live output.
    pub(super) fn forward(&self, sequence: &mut Sequence) {
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
    pub(super) async fn drive(&mut self, sequence: &mut Sequence, policy: &dyn Decider) {
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
                    if outcome == Outcome::ContainerStopped && self.exited().is_none() {
                        self.look_at_stopped(sequence).await;
                    }
                    self.tell_exit(sequence);
                    sequence.complete(self.now(), outcome);
                }
            }
        }
    }

    /// The engine refused a request because the container no longer runs, before the exit
    /// watcher heard of it: one look, so that the sequence knows of the exit now and the
    /// policy is not asked again as if the service still ran (a policy repeating a step the
    /// engine refuses at once would otherwise send it as fast as the engine answers).
    async fn look_at_stopped(&self, sequence: &mut Sequence) {
        match answered(ENGINE_ANSWER_TIMEOUT, self.runtime.observe(&self.id)).await {
            Ok(state) if !state.running => sequence.exited(state.exit_code.unwrap_or(-1)),
            Err(RuntimeError::Gone) => sequence.gone(),
            _ => {}
        }
    }

    /// After the exit, one more look: started again by someone else, removed meanwhile, or
    /// another exit status than the engine's wait said.
    pub(super) async fn confirm_stopped(&self, sequence: &mut Sequence) {
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
    pub(super) async fn mark_stopped(&self, action: &Action) {
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
    pub(super) async fn perform(&self, action: Action) -> Outcome {
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
                            self.left_running(&argv, &why.to_string());
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
    pub(super) async fn until_exit<T>(
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

    pub(super) async fn wait(&self, until: Until, limit: Duration) -> Outcome {
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
    pub(super) fn left_running(&self, argv: &[String], why: &str) {
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

    pub(super) fn failed(&self, error: RuntimeError) -> Outcome {
        match error {
            _ if self.exited().is_some() => Outcome::ContainerStopped,
            RuntimeError::NotRunning | RuntimeError::Gone => Outcome::ContainerStopped,
            error => Outcome::Failed(error.to_string()),
        }
    }
}

/// `call`, or an error naming the engine's silence if it takes longer than `limit`.
pub(crate) async fn answered<T>(
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
pub(super) fn watch_exit<R: Runtime>(runtime: Arc<R>, id: String) -> watch::Receiver<Option<Exit>> {
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

/// A shared [`Decider`] as the sequence asks it.
struct Asking<'a>(&'a dyn Decider);

impl Decide for Asking<'_> {
    fn decide(&mut self, ctx: &Context) -> Result<Decided, PolicyFailure> {
        self.0.decide(ctx)
    }
}
