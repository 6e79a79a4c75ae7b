//! Preparing a run before anything is touched: find the targets through the engine, read their
//! facts, choose each one's policy, settings and budget, check them all, and order them.
//! Every problem is collected, so one attempt reports all of them; any problem means nothing is
//! stopped.
//!
//! Its parts:
//! - `selection`: which policy, settings and budget each service gets; PID 1 warnings;
//! - `hearing`: a policy's signals against what the receiving process does with them;
//! - `worst`: a policy's longest path over a service that never cooperates;
//! - `needs`: each budget against what its policy needs, and the signals it sends;
//! - `plan`: the dry run, in virtual time, and its text;
//! - `scenario`: scenario files through the real executor in virtual time.

pub mod hearing;
pub mod needs;
pub mod plan;
pub mod scenario;
pub mod selection;
pub mod worst;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use crate::model::config::Config;
use crate::model::supervision::has_restart_policy;
use crate::model::warning::{Warning, WarningCode};
use crate::platform::claim::Claims;
use crate::platform::systemd::{Supervision, Systemd};
use crate::policy::Decider;
use crate::policy::PolicyCatalog;
use crate::prepare::hearing::receiver;
use crate::prepare::selection::{DEFAULT_BUDGET, catch_all_warnings, pid1_warnings, select};
use crate::run::executor::{
    ENGINE_ANSWER_TIMEOUT, OnBudgetExhausted, ServiceJob, answered, set_restart_policy,
};
use crate::run::orchestrate::{Ordering, PreparedRun};
use crate::runtime::{Inspected, Runtime, Selector, TargetError};

/// The default number of services stopped at once: as many as `docker stop` stops at once
/// (the docker CLI's parallel-operation limit), so a fleet drains side by side and no slower.
pub const DEFAULT_PARALLEL: usize = 50;

/// How many inspections run at once while preparing.
const INSPECT_CONCURRENCY: usize = 16;

/// What the operator asked for on the command line (the config fills what is not given).
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    /// Which containers.
    pub selector: Selector,
    /// Every service's budget, unless a config rule says otherwise.
    pub budget: Option<Duration>,
    /// How many services are stopped at once.
    pub parallel: Option<usize>,
    /// The whole run's deadline.
    pub deadline: Option<Duration>,
    /// Where stops claim their containers and record what they change; read by `plan` too.
    pub claims: Option<Claims>,
    /// The systemd whose units may supervise the targets.
    pub systemd: Systemd,
}

/// Why a run cannot start. Nothing was touched.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// Invalid input: unknown containers or policies, bad settings, a cycle, no targets.
    #[error("{0}")]
    Invalid(String),
    /// The engine or the policies could not be reached or read.
    #[error("{0}")]
    Environment(String),
}

/// Finds the targets and prepares their jobs. `catalog` (the loaded policies) is awaited only
/// once the targets are known, so loading overlaps with the engine's answers.
pub async fn prepare<R: Runtime>(
    runtime: &R,
    request: &RunRequest,
    config: &Config,
    catalog: impl Future<Output = Result<PolicyCatalog, PrepareError>>,
) -> Result<PreparedRun, PrepareError> {
    let selector = &named_as_the_engine_knows_them(&request.selector)?;
    if selector.is_empty() {
        return Err(PrepareError::Invalid(
            "no targets: name containers, or use --all, --label KEY[=VALUE] or --project NAME"
                .into(),
        ));
    }
    // The supervisor look reads every unit file once (a few ms on a host with hundreds):
    // read them while the engine answers.
    let systemd = request.systemd.clone();
    let named_only = !(selector.all || selector.project.is_some() || !selector.labels.is_empty());
    let names = named_only.then(|| selector.containers.clone());
    let units_read = tokio::task::spawn_blocking({
        let systemd = systemd.clone();
        move || systemd.read_units_for(names.as_deref())
    });
    // Every request is bounded, as in the run: a wedged engine (Docker 20.10's deadlock answers
    // the ping and nothing else) fails the run here, nothing touched, instead of hanging it.
    let targets = tokio::time::timeout(
        ENGINE_ANSWER_TIMEOUT,
        runtime.select(selector, INSPECT_CONCURRENCY),
    )
    .await
    .unwrap_or_else(|_| {
        Err(TargetError::Engine(
            crate::runtime::RuntimeError::Unreachable(format!(
                "it did not list the containers within {}",
                humantime::format_duration(ENGINE_ANSWER_TIMEOUT)
            )),
        ))
    })
    .map_err(|error| match error {
        TargetError::Unknown(_) => PrepareError::Invalid(format!("{error}; nothing was touched")),
        TargetError::Engine(error) => PrepareError::Environment(error.to_string()),
    })?;
    tracing::debug!(targets = targets.len(), "targets found");
    // `--all` on a host with nothing running has nothing to do, successfully (the shutdown
    // unit runs it on every host shutdown); a selector that matches nothing is a mistake.
    if targets.is_empty() && !selector.all {
        return Err(PrepareError::Invalid(
            "the selectors matched no container; check them with `docker ps -a --filter label=...`; nothing was touched".into(),
        ));
    }
    let mut warnings = Vec::new();
    if targets.is_empty() {
        warnings.push(Warning::new(
            WarningCode::NothingRunning,
            "no container is running: nothing to stop",
        ));
    }
    // Inspect the listed targets concurrently (in order): one round trip of latency, not N.
    // Named ones were inspected while their names were resolved. The processes of running
    // ones say what PID 1 really is (a script behind a plain command); an engine that cannot
    // list them leaves only the configured command to judge by.
    let inspected: Vec<_> = futures_util::stream::iter(targets)
        .map(|target| async move {
            let inspected = match target.inspected {
                Some(inspected) => Ok(Some(inspected)),
                None => answered(ENGINE_ANSWER_TIMEOUT, runtime.inspect(&target.id)).await,
            };
            // Only a running container has processes to look at.
            let look = match &inspected {
                Ok(Some(found)) if found.state.running => {
                    Some((found.facts.id.clone(), found.pid1))
                }
                _ => None,
            };
            let processes = match look {
                Some((id, pid1)) => answered(ENGINE_ANSWER_TIMEOUT, runtime.processes(&id, pid1))
                    .await
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            (
                target.id,
                inspected.map(|found| found.map(|found| (found, processes))),
            )
        })
        .buffered(INSPECT_CONCURRENCY)
        .collect()
        .await;
    tracing::debug!("targets inspected, PID 1 looked at");
    let catalog = &catalog.await?;
    tracing::debug!("policies ready");
    warnings.extend(catch_all_warnings(catalog));
    let budget = request.budget.or(config.budget).unwrap_or(DEFAULT_BUDGET);
    let on_exhausted = config
        .on_budget_exhausted
        .unwrap_or(OnBudgetExhausted::Kill);
    let allow_http = Arc::new(config.allow_http.clone());
    let engine = runtime.engine();
    // Read by now, or being read (a failed thread leaves the reading to the first look).
    let _ = units_read.await;
    let mut jobs = Vec::new();
    let mut problems = Vec::new();
    for (id, inspected) in inspected {
        let (
            Inspected {
                mut facts,
                state,
                mut restart_policy_spec,
                ..
            },
            processes,
        ) = match inspected {
            Ok(Some(inspected)) => inspected,
            Ok(None) => {
                warnings.push(Warning::new(
                    WarningCode::ContainerDisappeared,
                    format!("container {id} disappeared before the run; skipped"),
                ));
                continue;
            }
            Err(error) => {
                return Err(PrepareError::Environment(format!(
                    "inspecting container {id}: {error}; nothing was touched"
                )));
            }
        };
        let recorded = request
            .claims
            .as_ref()
            .and_then(|claims| recorded_stop(claims, &mut facts, &mut restart_policy_spec));
        if has_restart_policy(&facts) && !engine.updates_restart_policy() {
            problems.push(format!(
                "{}: {} cannot turn its restart policy `{}` off for the stop (Podman can from 5.1 on), so the container would be started again as soon as it exits; recreate it without --restart and let systemd restart it (`podman generate systemd`, Quadlet), or upgrade Podman to 5.1 or later",
                facts.name,
                engine.describe(),
                facts.restart_policy
            ));
            continue;
        }
        match select(&facts, config, catalog, budget) {
            Ok(selection) => {
                let policy: Arc<dyn Decider> = selection.policy.clone();
                let supervision = Supervision::of(&systemd, &facts);
                let mut warnings = selection.warnings.clone();
                warnings.extend(pid1_warnings(&facts, &processes, selection.signal_target));
                warnings.extend(recorded);
                let receiver = receiver(&processes, selection.signal_target, facts.init);
                jobs.push(ServiceJob {
                    warnings,
                    signal_target: selection.signal_target,
                    facts,
                    policy,
                    settings: selection.settings,
                    budget: selection.budget,
                    on_exhausted,
                    allow_http: allow_http.clone(),
                    observed: Some(state),
                    restart_policy_spec,
                    supervision,
                    claims: request.claims.clone(),
                    receiver,
                });
            }
            Err(problem) => problems.push(problem.to_string()),
        }
    }
    if !problems.is_empty() {
        return Err(PrepareError::Invalid(format!(
            "{}\nnothing was touched",
            problems.join("\n")
        )));
    }
    let facts: Vec<_> = jobs.iter().map(|job| job.facts.clone()).collect();
    let ordering = Ordering::build(&facts, &config.order)
        .map_err(|error| PrepareError::Invalid(format!("{error}; nothing was touched")))?;
    Ok(PreparedRun {
        jobs,
        ordering,
        parallel: request
            .parallel
            .or(config.parallel)
            .unwrap_or(DEFAULT_PARALLEL)
            .max(1),
        deadline: config.run_deadline(request.deadline),
        warnings,
    })
}

/// The selector with each named container as the engine knows it: `/web` (how `docker inspect`
/// writes names) is `web`. A name no container can have (empty, as an unset shell variable
/// gives, or with characters outside letters, digits, `_`, `.` and `-`) is refused before it
/// reaches the engine's URLs.
fn named_as_the_engine_knows_them(selector: &Selector) -> Result<Selector, PrepareError> {
    let mut named = selector.clone();
    for name in &mut named.containers {
        let plain = name.strip_prefix('/').unwrap_or(name);
        let possible = !plain.is_empty()
            && plain.len() <= 255
            && plain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !possible {
            return Err(PrepareError::Invalid(format!(
                "no such container: {name:?}: a container's name or id holds letters, digits, `_`, `.` and `-` (check `docker ps -a`); nothing was touched"
            )));
        }
        *name = plain.to_string();
    }
    Ok(named)
}

/// What the record of an earlier or running stop of the container says: another quiesce
/// stopping it now, or changes an earlier stop left behind (killed, or not given back). Either way the restart policy the
/// stop turned off is the container's own, not the `no` the engine shows.
fn recorded_stop(
    claims: &Claims,
    facts: &mut quiesce_policy_sdk::ServiceFacts,
    spec: &mut Option<String>,
) -> Option<Warning> {
    let record = claims.read(&facts.id)?;
    let busy = claims.busy(&facts.id);
    if !busy && !record.left_changes() {
        return None;
    }
    let original = record.original_restart_policy().map(str::to_string);
    if let Some(original) = &original {
        set_restart_policy(facts, spec, original);
    }
    Some(if busy {
        Warning::new(
            WarningCode::StopInProgress,
            format!(
                "being stopped by {}: `quiesce stop` waits for its outcome and sends nothing",
                record.describe()
            ),
        )
    } else {
        let mut left = Vec::new();
        if let Some(original) = &original {
            left.push(format!("its restart policy `no` (its own is `{original}`)"));
        }
        if let Some(hold) = record.unit_hold.as_ref().filter(|hold| !hold.released) {
            left.push(format!("its unit {} held (Restart=no)", hold.unit));
        }
        Warning::new(
            WarningCode::EarlierStopKilled,
            format!(
                "an earlier stop, {}, {} and left {}: the next stop puts it back, and so does `quiesce recover`",
                record.describe(),
                record.how_it_ended(),
                left.join(" and ")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_no_container_can_have_are_refused_before_the_engine_sees_them() {
        let named = |names: &[&str]| {
            named_as_the_engine_knows_them(&Selector {
                containers: names.iter().map(|name| name.to_string()).collect(),
                ..Selector::default()
            })
            .map(|selector| selector.containers)
        };
        // `docker inspect -f '{{.Name}}'` writes `/web`.
        assert_eq!(
            named(&["/web", "db-1", "a.b_c", "4f1e2d"]).unwrap(),
            ["web", "db-1", "a.b_c", "4f1e2d"]
        );
        for bad in [
            "", "/", "?all=1", "x#y", "../x", "%2e%2e", "web/json", "a b",
        ] {
            match named(&[bad]) {
                Err(PrepareError::Invalid(message)) => {
                    assert!(message.starts_with("no such container"), "{message}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert!(named(&[&"x".repeat(70_000)]).is_err());
    }
}
