//! What a sequence tells as it goes: the live events for progress and logs.

use std::time::Duration;

use quiesce_policy_sdk::sequence::{ServiceOutcome, StepOrigin};
use quiesce_policy_sdk::{Outcome, Step};
use tokio::sync::mpsc;

use crate::model::warning::Warning;

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

pub(super) fn send(events: &EventSink, event: Event) {
    if let Some(events) = events {
        let _ = events.send(event);
    }
}
