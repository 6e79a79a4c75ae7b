//! `quiesce stop` and `quiesce plan`: find the targets, choose their policies, check everything
//! before touching anything, then run (or simulate) the shutdown.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Failure, StopArgs, Verbosity, exit};
use crate::config::{BudgetExhausted, Config};
use crate::docker::{DockerRuntime, Inspected, Selector, TargetError};
use crate::executor::{Decider, ServiceJob};
use crate::orchestrate::{Interrupt, Ordering, run_all};
use crate::policy::PolicyCatalog;
use crate::progress::{self, ProgressMode};
use crate::report::{Report, ServiceReport, Summary, millis, timestamp};
use crate::selection::{DEFAULT_BUDGET, pid1_warnings, select};
use crate::simulate::SimulatedRuntime;
use quiesce_policy_sdk::testing::ServiceModel;

/// The default deadline for a whole run.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// How many `inspect` calls run at once while preparing.
const INSPECT_CONCURRENCY: usize = 16;

/// The default number of services stopped at once: as many as `docker stop` stops at once
/// (the docker CLI's parallel-operation limit), so a fleet drains side by side and no slower.
pub const DEFAULT_PARALLEL: usize = 50;

/// Everything checked and ready, before anything is touched.
struct Prepared {
    jobs: Vec<ServiceJob>,
    ordering: Ordering,
    parallel: usize,
    deadline: Duration,
    warnings: Vec<String>,
}

/// Builds a tokio runtime for a command.
fn tokio_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| Failure::environment(format!("cannot start the async runtime: {error}")))
}

/// `quiesce stop` (and `stop --dry-run`, which is `plan`).
pub fn stop(args: &StopArgs, dry_run: bool, verbosity: Verbosity) -> Result<u8, Failure> {
    let config =
        Config::load(args.config.as_deref()).map_err(|e| Failure::invalid(e.to_string()))?;
    let runtime = tokio_runtime()?;
    runtime.block_on(async {
        // Loading the policies (CPU: a few ms warm, compiling when cold) overlaps with
        // connecting to the engine and inspecting the targets (waiting on the daemon).
        let engine = args.engine.clone();
        let catalog_config = config.clone();
        let catalog = tokio::task::spawn_blocking(move || engine.catalog(&catalog_config));
        let docker = DockerRuntime::connect().await.map_err(|error| {
            Failure::environment(format!(
                "{error}. Is the Docker daemon running? Start it (e.g. `systemctl start docker`, or \
                 as root `dockerd &`), or point DOCKER_HOST at a reachable engine. Nothing was touched."
            ))
        })?;
        let catalog = async {
            catalog.await.map_err(|error| {
                Failure::environment(format!("loading the policies failed: {error}"))
            })?
        };
        let prepared = prepare(args, &config, catalog, &docker).await?;
        if dry_run {
            return plan(args, prepared, verbosity);
        }
        execute(args, prepared, docker, verbosity).await
    })
}

/// Finds targets, reads facts, selects policies and settings, orders them; every problem is
/// reported together, and any problem means nothing is touched (exit 2).
async fn prepare(
    args: &StopArgs,
    config: &Config,
    catalog: impl Future<Output = Result<PolicyCatalog, Failure>>,
    docker: &DockerRuntime,
) -> Result<Prepared, Failure> {
    let selector = Selector {
        containers: args.containers.clone(),
        all: args.all,
        labels: args.labels.clone(),
        project: args.project.clone(),
    };
    if selector.containers.is_empty()
        && !selector.all
        && selector.labels.is_empty()
        && selector.project.is_none()
    {
        return Err(Failure::invalid(
            "no targets: name containers, or use --all, --label KEY[=VALUE] or --project NAME",
        ));
    }
    let targets = docker
        .select(&selector, INSPECT_CONCURRENCY)
        .await
        .map_err(|error| match error {
            TargetError::Unknown(_) => Failure::invalid(format!("{error}; nothing was touched")),
            TargetError::Engine(error) => Failure::environment(error.to_string()),
        })?;
    // `--all` on a host with nothing running has nothing to do, successfully (the shutdown
    // unit runs it on every host shutdown); a selector that matches nothing is a mistake.
    if targets.is_empty() && !selector.all {
        return Err(Failure::invalid(
            "the selectors matched no container; check them with `docker ps -a --filter label=...`; nothing was touched",
        ));
    }
    let budget = args.budget.or(config.budget).unwrap_or(DEFAULT_BUDGET);
    let on_exhausted = config.on_budget_exhausted.unwrap_or(BudgetExhausted::Kill);
    let allow_http = Arc::new(config.allow_http.clone());
    let mut jobs = Vec::new();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    if targets.is_empty() {
        warnings.push("no container is running: nothing to stop".to_string());
    }
    // Inspect the listed targets concurrently (in order): one round trip of latency, not N.
    // Named ones were inspected while their names were resolved.
    let inspected: Vec<_> = futures_util::stream::iter(targets)
        .map(|target| async move {
            let inspected = match target.inspected {
                Some(inspected) => Ok(Some(inspected)),
                None => docker.inspect_target(&target.id).await,
            };
            (target.id, inspected)
        })
        .buffered(INSPECT_CONCURRENCY)
        .collect()
        .await;
    let catalog = &catalog.await?;
    for (id, inspected) in inspected {
        let Inspected {
            facts,
            observed,
            restart_policy_spec,
        } = match inspected {
            Ok(Some(inspected)) => inspected,
            Ok(None) => {
                warnings.push(format!(
                    "container {id} disappeared before the run; skipped"
                ));
                continue;
            }
            Err(error) => return Err(Failure::environment(error.to_string())),
        };
        match select(&facts, config, catalog, budget) {
            Ok(selection) => {
                let policy: Arc<dyn Decider> = selection.policy.clone();
                jobs.push(ServiceJob {
                    warnings: pid1_warnings(&facts),
                    facts,
                    policy,
                    settings: selection.settings,
                    budget: selection.budget,
                    on_exhausted,
                    allow_http: allow_http.clone(),
                    observed: Some(observed),
                    restart_policy_spec,
                });
            }
            Err(problem) => problems.push(problem),
        }
    }
    if !problems.is_empty() {
        return Err(Failure::invalid(format!(
            "{}\nnothing was touched",
            problems.join("\n")
        )));
    }
    let facts: Vec<_> = jobs.iter().map(|job| job.facts.clone()).collect();
    let ordering = Ordering::build(&facts, &config.order)
        .map_err(|error| Failure::invalid(format!("{error}; nothing was touched")))?;
    Ok(Prepared {
        jobs,
        ordering,
        parallel: args
            .parallel
            .or(config.parallel)
            .unwrap_or(DEFAULT_PARALLEL)
            .max(1),
        deadline: args
            .deadline
            .or(config.deadline)
            .unwrap_or(DEFAULT_DEADLINE),
        warnings,
    })
}

fn build_report(
    reports: Vec<ServiceReport>,
    started_at: SystemTime,
    deadline: Duration,
    dry_run: bool,
    warnings: Vec<String>,
) -> Report {
    Report {
        report_version: 1,
        dry_run,
        started_at: timestamp(started_at),
        finished_at: timestamp(SystemTime::now()),
        deadline_ms: millis(deadline),
        interrupted: false,
        worst_case_ms: None,
        summary: Summary::of(&reports),
        services: reports,
        warnings,
    }
}

/// Writes the report where asked; returns the exit status adjusted for a failed write.
fn emit(args: &StopArgs, report: &Report, text: String, status: u8, verbosity: Verbosity) -> u8 {
    let json = serde_json::to_string_pretty(report).expect("the report serializes");
    if verbosity == Verbosity::Verbose {
        eprint!("{}", progress::policy_logs(report));
    }
    if args.json {
        super::policy_cmd::print_out(&format!("{json}\n"));
    } else {
        super::policy_cmd::print_out(&text);
    }
    let mut status = status;
    let outputs = [
        ("the report", args.report.as_ref(), format!("{json}\n")),
        (
            "the timeline",
            args.timeline.as_ref(),
            args.timeline
                .as_ref()
                .map(|_| crate::timeline::render_svg(report))
                .unwrap_or_default(),
        ),
    ];
    for (what, path, contents) in outputs {
        if let Some(path) = path
            && let Err(error) = std::fs::write(path, contents)
        {
            eprintln!(
                "quiesce: error: cannot write {what} to {}: {error}; the run itself completed (see above); check that the directory exists and is writable",
                path.display()
            );
            status = status.max(exit::ENVIRONMENT);
        }
    }
    status
}

async fn execute(
    args: &StopArgs,
    prepared: Prepared,
    docker: DockerRuntime,
    verbosity: Verbosity,
) -> Result<u8, Failure> {
    let started_at = SystemTime::now();
    let mode = match verbosity {
        _ if args.json => ProgressMode::Quiet,
        Verbosity::Quiet => ProgressMode::Quiet,
        Verbosity::Verbose => ProgressMode::Lines,
        Verbosity::Normal => ProgressMode::detect(),
    };
    let (events, shown) = progress::spawn(mode);
    let (interrupt_tx, interrupt) = watch::channel(Interrupt::None);
    let watcher = tokio::spawn(watch_interrupts(interrupt_tx));
    let deadline = Instant::now() + prepared.deadline;
    let outcome = run_all(
        Arc::new(docker),
        prepared.jobs,
        &prepared.ordering,
        prepared.parallel,
        deadline,
        events,
        interrupt.clone(),
    )
    .await;
    watcher.abort();
    let _ = shown.await;
    let mut warnings = prepared.warnings;
    let interrupted = *interrupt.borrow() != Interrupt::None;
    if !outcome.abandoned.is_empty() {
        warnings.push(format!(
            "abandoned while being stopped (second interrupt; nothing was killed, each keeps its current state and its restart policy may still be `no`): {}",
            outcome.abandoned.join(", ")
        ));
    }
    if !outcome.not_started.is_empty() {
        warnings.push(format!(
            "not stopped (the run was interrupted before their turn): {}",
            outcome.not_started.join(", ")
        ));
    }
    let mut report = build_report(
        outcome.reports,
        started_at,
        prepared.deadline,
        false,
        warnings,
    );
    report.interrupted = interrupted;
    let clean = report.services.iter().all(|s| s.outcome.is_clean()) && !interrupted;
    let status = if clean { exit::SUCCESS } else { exit::PROBLEMS };
    let text = progress::summary_table(&report);
    Ok(emit(args, &report, text, status, verbosity))
}

/// SIGINT or SIGTERM once: start no new service, let running sequences finish within their
/// budgets. Twice: abandon the run at once, killing nothing.
async fn watch_interrupts(interrupt: watch::Sender<Interrupt>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut sigint), Ok(mut sigterm)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let mut received = 0;
    loop {
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
        received += 1;
        if received == 1 {
            eprintln!(
                "quiesce: interrupted: no new service will be started; running sequences finish within their budgets (interrupt again to abandon them)"
            );
            let _ = interrupt.send(Interrupt::NoNewServices);
        } else {
            eprintln!(
                "quiesce: interrupted twice: abandoning the running sequences without killing anything; writing the partial report"
            );
            let _ = interrupt.send(Interrupt::Abandon);
            return;
        }
    }
}

/// `quiesce plan`: the real executor against simulated services in virtual time, twice: with
/// services that obey (the steps shown) and with services that never cooperate (the worst
/// case). Nothing is touched.
fn plan(args: &StopArgs, prepared: Prepared, verbosity: Verbosity) -> Result<u8, Failure> {
    let simulate = |model: fn() -> ServiceModel| {
        let jobs = prepared.jobs.clone();
        let ordering = prepared.ordering.clone();
        let (parallel, deadline) = (prepared.parallel, prepared.deadline);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            runtime.block_on(async move {
                let simulation = Arc::new(SimulatedRuntime::new());
                for job in &jobs {
                    let model = ServiceModel {
                        restart_policy: job.facts.restart_policy.clone(),
                        ..model()
                    };
                    simulation.add(&job.facts.id, model);
                }
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
            })
        })
        .join()
        .expect("the simulation thread")
    };
    let (obedient, _) = simulate(ServiceModel::obedient);
    let (stubborn, worst_total) = simulate(ServiceModel::stubborn);
    let mut warnings = prepared.warnings.clone();
    if let Some(within) = args.within
        && worst_total > within
    {
        warnings.push(format!(
            "the worst case ({}) exceeds the enclosing limit of {} (--within): raise TimeoutStopSec / --shutdown-timeout, or lower budgets",
            humantime::format_duration(round(worst_total)),
            humantime::format_duration(within)
        ));
    }
    let mut report = build_report(
        obedient,
        SystemTime::now(),
        prepared.deadline,
        true,
        warnings,
    );
    report.worst_case_ms = Some(millis(worst_total));
    let mut text = format!(
        "plan: {} service(s), {} at a time, deadline {} (dry run: nothing is touched)\n",
        report.services.len(),
        prepared.parallel,
        humantime::format_duration(prepared.deadline)
    );
    for (position, service) in report.services.iter().enumerate() {
        let job = prepared.jobs.iter().find(|job| job.facts.id == service.id);
        let after: Vec<String> = job
            .and_then(|job| {
                prepared
                    .jobs
                    .iter()
                    .position(|j| j.facts.id == job.facts.id)
            })
            .map(|index| {
                prepared.ordering.waits_for[index]
                    .iter()
                    .map(|&i| prepared.jobs[i].facts.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        text.push_str(&format!(
            "\n{}. {}  policy {} {}  budget {}{}\n",
            position + 1,
            service.name,
            service.policy.name,
            service.policy.version,
            humantime::format_duration(Duration::from_millis(service.budget_ms)),
            if after.is_empty() {
                String::new()
            } else {
                format!("  after {}", after.join(", "))
            }
        ));
        for step in &service.steps {
            text.push_str(&format!(
                "   +{:<7} {} {}  -> {}\n",
                format!("{:.1}s", step.start_ms as f64 / 1000.0),
                step.action,
                step.detail,
                step.result
            ));
        }
        if let Some(worst) = stubborn.iter().find(|s| s.id == service.id) {
            let steps: Vec<String> = worst
                .steps
                .iter()
                .map(|s| format!("{} {}", s.action, s.detail))
                .collect();
            text.push_str(&format!(
                "   worst case {} if it never cooperates: {}\n",
                humantime::format_duration(round(Duration::from_millis(worst.elapsed_ms))),
                steps.join("; ")
            ));
        }
        for warning in &service.warnings {
            text.push_str(&format!("   warning: {warning}\n"));
        }
    }
    text.push_str(&format!(
        "\nworst case for the whole run: {}\n",
        humantime::format_duration(round(worst_total))
    ));
    for warning in &report.warnings {
        text.push_str(&format!("warning: {warning}\n"));
    }
    Ok(emit(args, &report, text, exit::SUCCESS, verbosity))
}

fn round(duration: Duration) -> Duration {
    Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}
