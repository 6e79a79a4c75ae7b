//! `quiesce stop` and `quiesce plan`: parse, prepare the run (the library's
//! [`crate::prepare`]), then run it ([`crate::run::stop`]) or simulate it
//! ([`crate::prepare::plan`]), and print.

use std::sync::Arc;

use tokio::sync::watch;

use super::connect::{LOADING_SHARE, Target, connect_and_prepare_until, tokio_runtime};
use super::interrupts::watch_interrupts;
use super::{Failure, StopArgs, Verbosity, exit};
use crate::model::config::Config;
use crate::output::emit::{Outputs, emit};
use crate::output::progress::{self, ProgressMode};
use crate::platform::claim::Claims;
use crate::platform::systemd::Systemd;
use crate::prepare::RunRequest;
use crate::prepare::needs::{
    check_needs_beside, hear_through_engine, needs_found, warn_about_needs,
};
use crate::prepare::plan::plan;
use crate::run::orchestrate::{Interrupt, PreparedRun};
use crate::run::stop::{Started, stop_all};
use crate::runtime::docker::DockerRuntime;
use crate::runtime::{Runtime, Selector};

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
            systemd: Systemd::from_vars(&super::vars()),
        }
    }

    /// `--report F --timeline F` would write the picture over the report: refused before
    /// anything is touched.
    fn refuse_one_file_for_two_documents(&self) -> Result<(), Failure> {
        let (Some(report), Some(timeline)) = (&self.report, &self.timeline) else {
            return Ok(());
        };
        let same_file = report == timeline
            || matches!(
                (std::fs::canonicalize(report), std::fs::canonicalize(timeline)),
                (Ok(a), Ok(b)) if a == b
            );
        if same_file {
            return Err(Failure::invalid(format!(
                "--report and --timeline both name {}: the picture would be written over the report; give each its own file (nothing was touched)",
                report.display()
            )));
        }
        Ok(())
    }

    /// Where the report goes besides the live output.
    fn outputs(&self, verbosity: Verbosity) -> Outputs<'_> {
        Outputs {
            json: self.json,
            report: self.report.as_deref(),
            timeline: self.timeline.as_deref(),
            policy_logs: verbosity == Verbosity::Verbose,
        }
    }
}

/// `quiesce stop` (and `stop --dry-run`, which is `plan`).
pub fn stop(args: &StopArgs, dry_run: bool, verbosity: Verbosity) -> Result<u8, Failure> {
    // The run's deadline counts from here: reading the configuration and compiling policies
    // are part of the run (issue 17: `--deadline 5s` must not run 98 s because of compiling).
    let started = Started::now();
    args.refuse_one_file_for_two_documents()?;
    let config =
        Config::load(args.config.as_deref()).map_err(|e| Failure::invalid(e.to_string()))?;
    let runtime = tokio_runtime()?;
    let status = runtime.block_on(async {
        let target = Target {
            host: args.host.clone(),
            context: args.context.clone(),
            engine: &args.engine,
            config: &config,
        };
        let deadline = config.run_deadline(args.deadline);
        let load_until = Some(started.at.into_std() + deadline / LOADING_SHARE);
        // Where stops claim their containers; without it a stop still runs, and says so.
        let (claims, unavailable) =
            match Claims::open_default(&super::vars(), crate::output::logs::error) {
                Ok(claims) => (Some(claims), None),
                Err(error) => (None, Some(error.warning())),
            };
        let (docker, mut prepared) =
            connect_and_prepare_until(&target, &args.request(claims.clone()), load_until).await?;
        prepared.warnings.extend(unavailable);
        if dry_run {
            hear_through_engine(&docker, &mut prepared.jobs).await;
            warn_about_needs(&mut prepared);
            let mut plan = plan(&prepared, args.within);
            plan.report.engine = Some(docker.engine());
            // Over the window (`--within`): exit 1, so automation need not read the warnings.
            let status = if plan.over_window {
                exit::PROBLEMS
            } else {
                exit::SUCCESS
            };
            let text = plan.text(&prepared);
            return Ok(emit(&plan.report, &text, status, &args.outputs(verbosity)));
        }
        // Records of stops finished long ago are swept beside this one (each is read).
        let sweep = claims.map(|claims| tokio::task::spawn_blocking(move || claims.sweep()));
        let status = execute(args, prepared, docker, started, verbosity).await;
        if let Some(sweep) = sweep {
            let _ = sweep.await;
        }
        Ok(status)
    });
    // The report is out: what still works beside it (a worst case being explored past
    // NEEDS_GRACE) is advice no one waits for, and the runtime does not wait for it either.
    runtime.shutdown_background();
    status
}

/// Runs the prepared stop with live progress and interrupts, and prints its report.
async fn execute(
    args: &StopArgs,
    prepared: PreparedRun,
    docker: DockerRuntime,
    started: Started,
    verbosity: Verbosity,
) -> u8 {
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
    let needs = check_needs_beside(docker.clone(), &prepared.jobs, events.clone());
    let checked = prepared
        .jobs
        .iter()
        .map(|job| (job.facts.id.clone(), job.policy.identity().name))
        .collect();
    let (interrupt_tx, interrupt) = watch::channel(Interrupt::None);
    let watcher = tokio::spawn(watch_interrupts(interrupt_tx));
    // Once every sequence has ended, interrupts are the shell's again.
    let beside = async move {
        watcher.abort();
        needs_found(needs, checked).await
    };
    let report = stop_all(docker, prepared, started, events, interrupt, beside).await;
    let _ = shown.await;
    let text = progress::summary_table(&report);
    emit(
        &report,
        &text,
        report.exit_status(),
        &args.outputs(verbosity),
    )
}
