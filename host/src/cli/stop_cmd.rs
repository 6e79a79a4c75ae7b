//! `quiesce stop` and `quiesce plan`: parse, prepare the run (the library's [`prepare`]), then
//! run it or simulate it ([`plan`]), and print.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{Failure, StopArgs, Verbosity, exit};
use crate::model::config::Config;
use crate::model::report::Report;
use crate::model::warning::{Warning, WarningCode};
use crate::output::progress::{self, ProgressMode};
use crate::platform::claim::Claims;
use crate::prepare::plan::plan;
use crate::prepare::{DEFAULT_DEADLINE, PrepareError, PreparedRun, RunRequest, prepare};
use crate::run::orchestrate::{Interrupt, run_all};
use crate::runtime::docker::DockerRuntime;
use crate::runtime::endpoint::{EndpointInputs, resolve};
use crate::runtime::{Runtime, Selector};

impl From<PrepareError> for Failure {
    fn from(error: PrepareError) -> Failure {
        match error {
            PrepareError::Invalid(message) => Failure::invalid(message),
            PrepareError::Environment(message) => Failure::environment(message),
        }
    }
}

impl StopArgs {
    /// What the command line asks for; stops claim their containers in `claims`.
    fn request(&self, claims: Option<Claims>) -> RunRequest {
        RunRequest {
            selector: Selector {
                containers: self.containers.clone(),
                all: self.all,
                labels: self.labels.clone(),
                project: self.project.clone(),
            },
            budget: self.budget,
            parallel: self.parallel,
            deadline: self.deadline,
            claims,
        }
    }
}

/// `quiesce stop` (and `stop --dry-run`, which is `plan`).
pub fn stop(args: &StopArgs, dry_run: bool, verbosity: Verbosity) -> Result<u8, Failure> {
    // The run's deadline counts from here: reading the configuration and compiling policies
    // are part of the run (issue 17: `--deadline 5s` must not run 98 s because of compiling).
    let started = Instant::now();
    let started_at = SystemTime::now();
    let config =
        Config::load(args.config.as_deref()).map_err(|e| Failure::invalid(e.to_string()))?;
    let runtime = tokio_runtime()?;
    runtime.block_on(async {
        let target = Target {
            host: args.host.clone(),
            context: args.context.clone(),
            engine: &args.engine,
            config: &config,
        };
        let deadline = args
            .deadline
            .or(config.deadline)
            .unwrap_or(DEFAULT_DEADLINE);
        let load_until = Some(started.into_std() + deadline / LOADING_SHARE);
        // Where stops claim their containers; without it a stop still runs, and says so.
        let (claims, unavailable) = match Claims::open_default() {
            Ok(claims) => (
                Some(claims.saying_write_failures_to(crate::output::logs::error)),
                None,
            ),
            Err(error) => (
                None,
                Some(Warning::new(
                    WarningCode::StopRecordFailed,
                    error.to_string(),
                )),
            ),
        };
        let (docker, mut prepared) =
            connect_and_prepare_until(&target, &args.request(claims.clone()), load_until).await?;
        prepared.warnings.extend(unavailable);
        if dry_run {
            crate::prepare::needs::hear_through_engine(&docker, &mut prepared.jobs).await;
            crate::prepare::needs::warn_about_needs(&mut prepared);
            let mut plan = plan(&prepared, args.within);
            plan.report.engine = Some(docker.engine());
            let text = plan.text(&prepared);
            // Over the window (`--within`): exit 1, so automation need not read the warnings.
            let status = if plan.over_window {
                exit::PROBLEMS
            } else {
                exit::SUCCESS
            };
            return Ok(emit(args, &plan.report, text, status, verbosity));
        }
        // Records of stops finished long ago are swept beside this one (each is read).
        let sweep = claims.map(|claims| tokio::task::spawn_blocking(move || claims.sweep()));
        let status = execute(args, prepared, docker, (started, started_at), verbosity).await;
        if let Some(sweep) = sweep {
            let _ = sweep.await;
        }
        status
    })
}

/// Loading policies may use at most this fraction of the run's deadline (1/2: the other half
/// stays for the stop); files not compiled by then are named and not loaded.
pub const LOADING_SHARE: u32 = 2;

/// Where the targets are: the engine's endpoint and the policies.
pub struct Target<'a> {
    /// `-H`.
    pub host: Option<String>,
    /// `--context`.
    pub context: Option<String>,
    /// The policies and their limits.
    pub engine: &'a super::EngineArgs,
    /// The configuration.
    pub config: &'a Config,
}

/// Connects to the engine (as the docker CLI chooses it) and prepares the run. Loading the
/// policies (CPU: a few ms warm, compiling when cold) overlaps with connecting to the engine
/// and inspecting the targets (waiting on the daemon). The budgets are not checked against
/// the policies' needs yet ([`crate::prepare::needs`]): `plan` checks them before it simulates, `stop`
/// beside the run.
pub async fn connect_and_prepare(
    target: &Target<'_>,
    request: &RunRequest,
) -> Result<(DockerRuntime, PreparedRun), Failure> {
    connect_and_prepare_until(target, request, None).await
}

/// [`connect_and_prepare`], compiling policies only until `load_until`.
pub async fn connect_and_prepare_until(
    target: &Target<'_>,
    request: &RunRequest,
    load_until: Option<std::time::Instant>,
) -> Result<(DockerRuntime, PreparedRun), Failure> {
    let engine = target.engine.clone();
    let catalog_config = target.config.clone();
    let catalog =
        tokio::task::spawn_blocking(move || engine.catalog_until(&catalog_config, load_until));
    let endpoint = resolve(&EndpointInputs::from_env(
        target.host.clone(),
        target.context.clone(),
    ))
    .map_err(|error| Failure::invalid(format!("{error}; nothing was touched")))?;
    let docker = DockerRuntime::connect(&endpoint).await.map_err(|error| {
        Failure::environment(format!(
            "{error}. Is the engine running? Start it (e.g. `systemctl start docker`, or \
             as root `dockerd &`), or choose another with -H, --context, DOCKER_HOST or \
             DOCKER_CONTEXT. Nothing was touched."
        ))
    })?;
    tracing::debug!("engine connected");
    let catalog = async {
        match catalog.await {
            Ok(Ok(catalog)) => Ok(catalog),
            Ok(Err(failure)) if failure.status == exit::INVALID_INPUT => {
                Err(PrepareError::Invalid(failure.message))
            }
            Ok(Err(failure)) => Err(PrepareError::Environment(failure.message)),
            Err(error) => Err(PrepareError::Environment(format!(
                "loading the policies failed: {error}"
            ))),
        }
    };
    let prepared = prepare(&docker, request, target.config, catalog).await?;
    tracing::debug!(services = prepared.jobs.len(), "run prepared");
    Ok((docker, prepared))
}

/// Builds a tokio runtime for a command.
pub fn tokio_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| Failure::environment(format!("cannot start the async runtime: {error}")))
}

/// Writes the report where asked; returns the exit status adjusted for a failed write.
fn emit(args: &StopArgs, report: &Report, text: String, status: u8, verbosity: Verbosity) -> u8 {
    let json = serde_json::to_string_pretty(report).expect("the report serializes");
    if verbosity == Verbosity::Verbose {
        eprint!("{}", progress::policy_logs(report));
    }
    if args.json {
        super::stdout::print_out(&format!("{json}\n"));
    } else {
        super::stdout::print_out(&text);
    }
    let mut status = status;
    let outputs = [
        ("the report", args.report.as_ref(), format!("{json}\n")),
        (
            "the timeline",
            args.timeline.as_ref(),
            args.timeline
                .as_ref()
                .map(|_| crate::output::timeline::render_svg(report))
                .unwrap_or_default(),
        ),
    ];
    for (what, path, contents) in outputs {
        if let Some(path) = path
            && let Err(error) = std::fs::write(path, contents)
        {
            crate::output::logs::error(&format!(
                "cannot write {what} to {}: {error}; the run itself completed (see above); check that the directory exists and is writable",
                path.display()
            ));
            status = status.max(exit::ENVIRONMENT);
        }
    }
    status
}

async fn execute(
    args: &StopArgs,
    prepared: PreparedRun,
    docker: DockerRuntime,
    (started, started_at): (Instant, SystemTime),
    verbosity: Verbosity,
) -> Result<u8, Failure> {
    // Progress goes to stderr, with --json too (the report is on stdout).
    let mode = match verbosity {
        Verbosity::Quiet => ProgressMode::Quiet,
        Verbosity::Verbose => ProgressMode::Lines,
        Verbosity::Normal => ProgressMode::detect(),
    };
    if verbosity != Verbosity::Quiet {
        // What the operator should know before anything is touched (also in the report).
        for job in &prepared.jobs {
            for warning in &job.warnings {
                crate::output::logs::warning(Some(&job.facts.name), warning);
            }
        }
    }
    let (events, shown) = progress::spawn(mode);
    let docker = Arc::new(docker);
    let budget_check =
        crate::prepare::needs::check_needs_beside(docker.clone(), &prepared.jobs, events.clone());
    let (interrupt_tx, interrupt) = watch::channel(Interrupt::None);
    let watcher = tokio::spawn(watch_interrupts(interrupt_tx));
    let deadline = started + prepared.deadline;
    let engine = docker.engine();
    let outcome = run_all(
        docker,
        prepared.jobs,
        &prepared.ordering,
        prepared.parallel,
        deadline,
        events,
        interrupt.clone(),
    )
    .await;
    watcher.abort();
    let mut reports = outcome.reports;
    for (id, warning) in budget_check.await.unwrap_or_default() {
        if let Some(report) = reports.iter_mut().find(|report| report.id == id) {
            report.warnings.push(warning);
        }
    }
    let _ = shown.await;
    let mut warnings = prepared.warnings;
    let interrupted = *interrupt.borrow() != Interrupt::None;
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
    let mut report = Report::new(reports, started_at, prepared.deadline, false, warnings);
    report.interrupted = interrupted;
    report.engine = Some(engine);
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
            crate::output::logs::info(
                None,
                "interrupted: no new service will be started; running sequences finish within their budgets (interrupt again to abandon them)",
            );
            let _ = interrupt.send(Interrupt::NoNewServices);
        } else {
            crate::output::logs::info(
                None,
                "interrupted twice: abandoning the running sequences without killing anything; writing the partial report",
            );
            let _ = interrupt.send(Interrupt::Abandon);
            return;
        }
    }
}
