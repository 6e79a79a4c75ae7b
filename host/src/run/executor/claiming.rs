//! Whose turn it is to stop a container (issue 29): this process's, once it has claimed the
//! container ([`crate::platform::claim`]), or another quiesce process's that got there first. Then this
//! one sends nothing: it waits, within its own budget and the run's deadline, for the other's
//! outcome, and reports it as such (`stopped_by`). A claim left by a killed stop is free: this
//! process takes it over, with what the killed one changed.

use std::time::Duration;

use tokio::time::Instant;

use super::{Event, EventSink, ServiceJob, send};
use crate::model::units::now_ms;
use crate::model::warning::{Warning, WarningCode};
use crate::platform::claim::{Attempt, Claim, Claims, RecordedOutcome, StopRecord};

/// How often a waiting stop looks at the other's record and claim.
pub const CLAIM_POLL: Duration = Duration::from_millis(50);

/// Whose turn it is.
pub(super) enum Turn {
    /// This process stops the container; `None` when no claim could be made (the records
    /// directory is unusable: said in a warning). `true` when it had to wait for another
    /// process first (whose stop ended without an outcome: it was killed).
    Ours(Option<Box<Claim>>, bool),
    /// Another process stopped it, with this outcome.
    Theirs(StopRecord, RecordedOutcome),
    /// Another process was still stopping it when this one's budget or the deadline ended.
    StillTheirs(Option<StopRecord>),
}

/// Claims the container, or waits for the process that has it until `until`. Warnings go to
/// `warnings`.
pub(super) async fn take_turn(
    claims: &Claims,
    job: &ServiceJob,
    until: Instant,
    events: &EventSink,
    warnings: &mut Vec<Warning>,
) -> Turn {
    let waiting_since = now_ms();
    let mut announced = false;
    let mut last_seen = None;
    loop {
        match claims.try_claim(&job.facts.id, &job.facts.name) {
            Ok(Attempt::Claimed(claim)) => {
                // The other stop ended between this run's start and its turn: its outcome is
                // this run's too.
                if let Some(record) = claim.previous.clone()
                    && let Some(outcome) = record.outcome.clone()
                    && record
                        .finished_at_ms
                        .is_some_and(|at| at >= claims.opened_ms())
                {
                    claim.finish();
                    return Turn::Theirs(record, outcome);
                }
                return Turn::Ours(Some(claim), announced);
            }
            Err(error) => {
                warnings.push(Warning::new(
                    WarningCode::StopRecordFailed,
                    format!(
                        "could not claim the container in {} ({error}): another quiesce stopping it at the same time would not be noticed",
                        claims.dir().display()
                    ),
                ));
                return Turn::Ours(None, announced);
            }
            Ok(Attempt::Busy(record)) => {
                // An outcome counts when the other stop is still under way or finished while
                // this one waited (not an old record).
                if let Some(record) = &record
                    && let Some(outcome) = &record.outcome
                    && record.finished_at_ms.is_none_or(|at| at >= waiting_since)
                {
                    return Turn::Theirs(record.clone(), outcome.clone());
                }
                // A finished record under a taken lock is a sweep of old records at work (for
                // a moment), not a stop.
                let stopping = record
                    .as_ref()
                    .is_none_or(|record| record.finished_at_ms.is_none());
                if !announced && stopping {
                    announced = true;
                    let who = record
                        .as_ref()
                        .map_or("another quiesce".to_string(), StopRecord::describe);
                    send(
                        events,
                        Event::Note {
                            service: job.facts.name.clone(),
                            text: format!(
                                "being stopped by {who}: waiting for its outcome, sending nothing"
                            ),
                        },
                    );
                }
                last_seen = record.or(last_seen);
            }
        }
        if Instant::now() >= until {
            return Turn::StillTheirs(last_seen);
        }
        tokio::time::sleep(CLAIM_POLL.min(until.saturating_duration_since(Instant::now()))).await;
    }
}
