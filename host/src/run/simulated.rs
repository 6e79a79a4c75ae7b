//! A whole run against services that a [`ServiceModel`] scripts, in virtual time: the same
//! executor and orchestration as a real stop, over the simulated engine. `plan` draws it,
//! the worst-case exploration measures paths with it. Nothing real is touched: no engine, no
//! systemd unit held, no container claimed.

use std::sync::Arc;
use std::time::Duration;

use quiesce_policy_sdk::simulation::ServiceModel;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::model::report::ServiceReport;
use crate::run::executor::ServiceJob;
use crate::run::orchestrate::{Interrupt, Ordering, run_all};
use crate::runtime::simulate::{SimulatedRuntime, in_virtual_time};

/// Runs `jobs` against services behaving as `model` says for each, in virtual time, on a
/// thread of its own (so it can be called from within a runtime).
pub fn simulate_jobs(
    jobs: Vec<ServiceJob>,
    ordering: Ordering,
    parallel: usize,
    deadline: Duration,
    model: impl Fn(&ServiceJob) -> ServiceModel + Send + 'static,
) -> (Vec<ServiceReport>, Duration) {
    in_virtual_time(
        move || async move { simulate_in(jobs, ordering, parallel, deadline, &model).await },
    )
    .expect("the simulation thread")
}

/// [`simulate_jobs`] within a runtime whose time is paused. Nothing real is touched: the
/// simulated engine stands in for the engine, no systemd unit is held, and no container is
/// claimed.
pub async fn simulate_in(
    jobs: Vec<ServiceJob>,
    ordering: Ordering,
    parallel: usize,
    deadline: Duration,
    model: &dyn Fn(&ServiceJob) -> ServiceModel,
) -> (Vec<ServiceReport>, Duration) {
    let simulation = Arc::new(SimulatedRuntime::new());
    let jobs: Vec<_> = jobs
        .into_iter()
        .map(|job| {
            simulation.add(
                &job.facts.id,
                ServiceModel {
                    restart_policy: job.facts.restart_policy.clone(),
                    ..model(&job)
                },
            );
            ServiceJob {
                supervision: None,
                claims: None,
                ..job
            }
        })
        .collect();
    let started = Instant::now();
    let (_, never) = watch::channel(Interrupt::None);
    let outcome = run_all(
        simulation,
        jobs,
        &ordering,
        parallel,
        started + deadline,
        None,
        never,
    )
    .await;
    (outcome.reports, started.elapsed())
}
