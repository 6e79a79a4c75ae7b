//! Ordering and running many services: dependants stop before what they depend on,
//! independent services stop in parallel up to a limit, all under one deadline.
//!
//! Dependencies come from compose v2's `com.docker.compose.depends_on` label (within a
//! project) and from the config's `[[order]]` rules. A cycle is an error before anything stops.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use quiesce_policy_sdk::ServiceFacts;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::model::config::{OrderRule, glob_match};
use crate::model::report::ServiceReport;
use crate::model::warning::Warning;
use crate::run::executor::{EventSink, ServiceJob, run_service};
use crate::runtime::Runtime;

/// For each service (by index), the services that must have stopped before it gets its first
/// signal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ordering {
    /// `waits_for[i]`: indices that must finish before `i` starts.
    pub waits_for: Vec<Vec<usize>>,
}

/// A dependency cycle among the targets.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "the stop order has a cycle among: {}; fix the compose depends_on labels or the [[order]] rules",
    .0.join(", ")
)]
pub struct CycleError(pub Vec<String>);

fn matches_service(pattern: &str, facts: &ServiceFacts) -> bool {
    glob_match(pattern, &facts.name)
        || facts
            .compose
            .as_ref()
            .is_some_and(|compose| glob_match(pattern, &compose.service))
}

impl Ordering {
    /// Builds the order for `services` and checks it has no cycle.
    pub fn build(services: &[ServiceFacts], rules: &[OrderRule]) -> Result<Ordering, CycleError> {
        let mut waits_for = vec![Vec::new(); services.len()];
        // Compose: a service stops before the services it depends on.
        for (dependant, facts) in services.iter().enumerate() {
            let Some(compose) = &facts.compose else {
                continue;
            };
            for (dependency, other) in services.iter().enumerate() {
                let same_project = other
                    .compose
                    .as_ref()
                    .filter(|other| other.project == compose.project);
                if let Some(other) = same_project
                    && compose.depends_on.contains(&other.service)
                    && dependency != dependant
                {
                    waits_for[dependency].push(dependant);
                }
            }
        }
        for rule in rules {
            for (index, facts) in services.iter().enumerate() {
                if !matches_service(&rule.stop, facts) {
                    continue;
                }
                for (other_index, other) in services.iter().enumerate() {
                    if other_index == index {
                        continue;
                    }
                    if rule.after.iter().any(|p| matches_service(p, other)) {
                        waits_for[index].push(other_index);
                    }
                    if rule.before.iter().any(|p| matches_service(p, other)) {
                        waits_for[other_index].push(index);
                    }
                }
            }
        }
        for list in &mut waits_for {
            list.sort_unstable();
            list.dedup();
        }
        let ordering = Ordering { waits_for };
        ordering.check(services)?;
        Ok(ordering)
    }

    /// An order with no dependencies.
    pub fn independent(count: usize) -> Ordering {
        Ordering {
            waits_for: vec![Vec::new(); count],
        }
    }

    /// Kahn's algorithm; the services left over are on (or behind) a cycle.
    fn check(&self, services: &[ServiceFacts]) -> Result<(), CycleError> {
        let order = self.topological();
        if order.len() == services.len() {
            return Ok(());
        }
        let mut stuck: Vec<String> = (0..services.len())
            .filter(|index| !order.contains(index))
            .map(|index| services[index].name.clone())
            .collect();
        stuck.sort();
        Err(CycleError(stuck))
    }

    /// A stop order respecting every dependency (ties by index).
    pub fn topological(&self) -> Vec<usize> {
        let count = self.waits_for.len();
        let mut pending: Vec<usize> = self.waits_for.iter().map(Vec::len).collect();
        let mut ready: VecDeque<usize> = (0..count).filter(|&i| pending[i] == 0).collect();
        let mut order = Vec::with_capacity(count);
        while let Some(next) = ready.pop_front() {
            order.push(next);
            for (other, waits) in self.waits_for.iter().enumerate() {
                if waits.contains(&next) {
                    pending[other] -= 1;
                    if pending[other] == 0 {
                        ready.push_back(other);
                    }
                }
            }
        }
        order
    }
}

/// How far an operator's interrupt goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Interrupt {
    /// Carry on.
    #[default]
    None,
    /// Start no new service; running sequences finish within their budgets.
    NoNewServices,
    /// Abandon the running sequences now, killing nothing.
    Abandon,
}

/// What became of a run of many services.
#[derive(Debug)]
pub struct RunOutcome {
    /// One report per service whose sequence ended, in start order.
    pub reports: Vec<ServiceReport>,
    /// Services never started because the run was interrupted.
    pub not_started: Vec<String>,
    /// Services whose sequences were abandoned half-way (second interrupt).
    pub abandoned: Vec<String>,
}

/// Stops every job, respecting `ordering`, at most `parallel` at a time, all by `deadline`.
/// On [`Interrupt::NoNewServices`] no new service starts and running ones finish their
/// sequences; on [`Interrupt::Abandon`] the running sequences are dropped where they stand.
pub async fn run_all<R: Runtime>(
    runtime: Arc<R>,
    jobs: Vec<ServiceJob>,
    ordering: &Ordering,
    parallel: usize,
    deadline: Instant,
    events: EventSink,
    mut interrupt: watch::Receiver<Interrupt>,
) -> RunOutcome {
    let count = jobs.len();
    let mut pending: Vec<usize> = ordering.waits_for.iter().map(Vec::len).collect();
    let mut ready: VecDeque<usize> = (0..count).filter(|&i| pending[i] == 0).collect();
    let mut started = vec![false; count];
    let mut running: JoinSet<(usize, ServiceReport)> = JoinSet::new();
    let mut finished: Vec<(usize, ServiceReport)> = Vec::with_capacity(count);
    let mut start_order = Vec::with_capacity(count);
    let mut abandoned = Vec::new();
    loop {
        while running.len() < parallel.max(1) && *interrupt.borrow() == Interrupt::None {
            let Some(next) = ready.pop_front() else { break };
            started[next] = true;
            start_order.push(next);
            let (runtime, job, events) = (runtime.clone(), jobs[next].clone(), events.clone());
            running.spawn(async move {
                let run = run_service(runtime, job, deadline, events).await;
                (next, run.report)
            });
        }
        let joined = tokio::select! {
            joined = running.join_next() => joined,
            () = abandon_requested(&mut interrupt) => {
                running.abort_all();
                let done: Vec<usize> = finished.iter().map(|(index, _)| *index).collect();
                abandoned = start_order
                    .iter()
                    .filter(|index| !done.contains(index))
                    .map(|&index| jobs[index].facts.name.clone())
                    .collect();
                break;
            }
        };
        let Some(joined) = joined else { break };
        let (index, report) = joined.expect("a service task panicked");
        for (other, waits) in ordering.waits_for.iter().enumerate() {
            if waits.contains(&index) {
                pending[other] -= 1;
                if pending[other] == 0 {
                    ready.push_back(other);
                }
            }
        }
        finished.push((index, report));
    }
    finished.sort_by_key(|(index, _)| start_order.iter().position(|i| i == index));
    RunOutcome {
        reports: finished.into_iter().map(|(_, report)| report).collect(),
        not_started: (0..count)
            .filter(|&i| !started[i])
            .map(|i| jobs[i].facts.name.clone())
            .collect(),
        abandoned,
    }
}

/// Resolves when the interrupt level reaches [`Interrupt::Abandon`]; never, if whoever could
/// raise it has gone.
async fn abandon_requested(interrupt: &mut watch::Receiver<Interrupt>) {
    if interrupt
        .wait_for(|level| *level == Interrupt::Abandon)
        .await
        .is_err()
    {
        std::future::pending::<()>().await;
    }
}

/// Everything checked and ready.
#[derive(Clone)]
pub struct PreparedRun {
    /// One job per service, in the order they were found.
    pub jobs: Vec<ServiceJob>,
    /// Who waits for whom.
    pub ordering: Ordering,
    /// How many services are stopped at once.
    pub parallel: usize,
    /// The whole run's deadline.
    pub deadline: Duration,
    /// Run-wide warnings.
    pub warnings: Vec<Warning>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_policy_sdk::ComposeInfo;

    fn compose(name: &str, service: &str, depends_on: &[&str]) -> ServiceFacts {
        ServiceFacts {
            name: name.into(),
            compose: Some(ComposeInfo {
                project: "shop".into(),
                service: service.into(),
                depends_on: depends_on.iter().map(|s| s.to_string()).collect(),
            }),
            ..ServiceFacts::default()
        }
    }

    #[test]
    fn dependants_stop_before_their_dependencies() {
        let services = [
            compose("shop-db-1", "db", &[]),
            compose("shop-web-1", "web", &["db", "cache"]),
            compose("shop-cache-1", "cache", &[]),
        ];
        let ordering = Ordering::build(&services, &[]).unwrap();
        assert_eq!(ordering.waits_for, [vec![1], vec![], vec![1]]);
        assert_eq!(ordering.topological(), [1, 0, 2]);
    }

    #[test]
    fn config_rules_add_order_and_cycles_are_errors() {
        let services = [compose("a", "a", &[]), compose("b", "b", &[])];
        let rule = OrderRule {
            stop: "a".into(),
            after: vec!["b".into()],
            before: vec![],
        };
        let ordering = Ordering::build(&services, std::slice::from_ref(&rule)).unwrap();
        assert_eq!(ordering.topological(), [1, 0]);

        let reverse = OrderRule {
            stop: "a".into(),
            after: vec![],
            before: vec!["b".into()],
        };
        let error = Ordering::build(&services, &[rule, reverse]).unwrap_err();
        assert_eq!(error, CycleError(vec!["a".into(), "b".into()]));
    }
}
