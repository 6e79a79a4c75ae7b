//! Runs one service's shutdown: drives the SDK's [`Sequence`] (where every rule of a shutdown
//! lives) over a [`Runtime`], in tokio time, and turns its transcript into the report.
//!
//! What this driver adds to the sequence is the engine's side:
//! - one stop per container on the host: the container is claimed first, or this run waits for
//!   the process that has it and reports its outcome (`claiming`, [`crate::platform::claim`]);
//! - the exit is watched before the first step, so it is noticed the moment it happens (the
//!   engine's wait, or polling when the wait fails) and every primitive ends at it;
//! - what keeps the container stopped (its supervising unit held, its restart policy `no`) is
//!   changed before the first step and given back after (`keeping`);
//! - every engine request is bounded ([`ENGINE_ANSWER_TIMEOUT`]): a wedged daemon fails steps
//!   instead of hanging the run;
//! - after the exit, one more look: a container started again by someone else is not reported
//!   stopped, and one removed meanwhile is `gone`.
//!
//! Time is tokio's, so the same code runs in virtual time (`tokio::time::pause`) for `plan` and
//! `quiesce policy test`.
//!
//! Its parts: `job` what a stop is given, `events` what it tells as it goes, `driver`
//! each action performed on the engine, `finished` the end and the report, `claiming` and
//! `keeping` before the first step and after the last.

use std::sync::Arc;
use std::time::Duration;

use quiesce_policy_sdk::ServiceFacts;
use quiesce_policy_sdk::sequence::{Sequence, SequenceConfig, Transcript};
use tokio::time::Instant;

mod claiming;
mod driver;
mod events;
mod finished;
mod job;
mod keeping;

use crate::model::report::{PolicyIdentity, ServiceReport};
use crate::model::units::millis;
use crate::model::warning::{Warning, WarningCode};
use crate::platform::claim::{RecordedOutcome, StopRecord};
use crate::runtime::{Runtime, RuntimeError};
pub use claiming::CLAIM_POLL;
use claiming::Turn;
pub(crate) use driver::answered;
use driver::{Driver, watch_exit};
use events::send;
pub use events::{Event, EventSink};
use finished::Finished;
pub use job::ServiceJob;
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

/// Takes over what an earlier stop of the same container left (killed, or unable to give it
/// back): the restart policy it had turned off is the container's own (and is put back after
/// this stop).
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
                "an earlier stop, {}, {} and left {}",
                inherited.describe(),
                inherited.how_it_ended(),
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
