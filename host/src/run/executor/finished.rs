//! A service whose sequence is over: what it changed given back, the last look at the
//! container, and the report made from its transcript.

use std::time::Duration;

use quiesce_policy_sdk::sequence::{Sequence, ServiceOutcome, Transcript};
use tokio::time::Instant;

use super::{Event, EventSink, ServiceJob, ServiceRun, send, sequence_config};
use crate::model::report::{
    PolicyIdentity, RestartPolicyChange, ServiceReport, StepReport, StoppedBy,
};
use crate::model::supervision::SupervisorReport;
use crate::model::units::{millis, timestamp};
use crate::model::warning::Warning;
use crate::platform::claim::{RecordedOutcome, StopRecord};
use crate::runtime::Runtime;

/// A service whose sequence is over.
pub(super) struct Finished {
    pub(super) transcript: Transcript,
    pub(super) warnings: Vec<Warning>,
    pub(super) restart_policy: Option<RestartPolicyChange>,
    pub(super) supervisor: Option<SupervisorReport>,
    /// Another quiesce process stopped it while this one waited.
    pub(super) stopped_by: Option<StoppedBy>,
}

impl Finished {
    /// A sequence's end, with nothing changed on the container.
    pub(super) fn new(transcript: Transcript, warnings: Vec<Warning>) -> Finished {
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
    pub(super) fn theirs(
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
    pub(super) fn with_outcome(mut self, outcome: &RecordedOutcome, waited: Duration) -> Finished {
        self.transcript.outcome = outcome.outcome;
        self.transcript.exit_code = outcome.exit_code;
        self.transcript.elapsed = waited;
        self
    }

    /// Announces the end and writes the service's report.
    pub(super) fn report<R: Runtime>(
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
