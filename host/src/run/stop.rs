//! A whole stop of a prepared run: every service's sequence in order under the run's deadline,
//! interruptible, the warnings found beside it joined to their services, and what an
//! interrupt left undone said as warnings. The result is the report; its verdict is
//! [`Report::exit_status`].

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::model::report::Report;
use crate::model::warning::{Warning, WarningCode};
use crate::run::executor::EventSink;
use crate::run::orchestrate::{Interrupt, PreparedRun, run_all};
use crate::runtime::Runtime;

/// When the run began: its deadline counts from `at`, the report's `started_at` is `wall`.
#[derive(Clone, Copy, Debug)]
pub struct Started {
    /// On tokio's clock.
    pub at: Instant,
    /// On the wall clock.
    pub wall: SystemTime,
}

impl Started {
    /// Now.
    pub fn now() -> Started {
        Started {
            at: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

/// Stops every service of `prepared` on `runtime`, sending progress to `events`. `interrupt`
/// says when the operator interrupts; `beside` is work done beside the run that ends with
/// warnings about services (by container id), joined to their reports.
pub async fn stop_all<R: Runtime + 'static>(
    runtime: Arc<R>,
    prepared: PreparedRun,
    started: Started,
    events: EventSink,
    interrupt: watch::Receiver<Interrupt>,
    beside: impl Future<Output = Vec<(String, Warning)>>,
) -> Report {
    let engine = runtime.engine();
    let outcome = run_all(
        runtime,
        prepared.jobs,
        &prepared.ordering,
        prepared.parallel,
        started.at + prepared.deadline,
        events,
        interrupt.clone(),
    )
    .await;
    // Interrupts count while services are being stopped, not while `beside` ends.
    let interrupted = *interrupt.borrow() != Interrupt::None;
    let mut reports = outcome.reports;
    for (id, warning) in beside.await {
        if let Some(report) = reports.iter_mut().find(|report| report.id == id) {
            report.warnings.push(warning);
        }
    }
    let mut warnings = prepared.warnings;
    if !outcome.abandoned.is_empty() {
        warnings.push(Warning::new(
            WarningCode::Abandoned,
            format!(
                "abandoned while being stopped (second interrupt; nothing was killed, each keeps its current state and its restart policy may still be `no`): {}",
                outcome.abandoned.join(", ")
            ),
        ));
    }
    if !outcome.not_started.is_empty() {
        warnings.push(Warning::new(
            WarningCode::NotStarted,
            format!(
                "not stopped (the run was interrupted before their turn): {}",
                outcome.not_started.join(", ")
            ),
        ));
    }
    let mut report = Report::new(reports, started.wall, prepared.deadline, false, warnings);
    report.interrupted = interrupted;
    report.engine = Some(engine);
    report
}
