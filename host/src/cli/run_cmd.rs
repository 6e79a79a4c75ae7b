//! `quiesce run`: parse, choose and check the policy before the command starts, then hand over
//! to the library's in-container runner ([`crate::init`]).

use std::path::Path;
use std::sync::Arc;

use quiesce_policy_sdk::Signal;

use super::{Failure, RunArgs, Verbosity};
use crate::init::{
    self, DEFAULT_GRACE_PERIOD, Launch, PolicyOrigin, choose_policy, merge_settings, podinfo,
    process_facts, process_job, sequence_budget,
};
use crate::model::process::{Receiver, Role};
use crate::model::warning::{Warning, WarningCode};
use crate::policy::Decider;
use crate::policy::native_builtin;
use crate::prepare::needs::budget_warnings;

/// How `quiesce run`'s budget is raised.
const GRACE_FIX: &str = "the budget is the grace period less a tenth of it (0.5 s to 2 s) left to the orchestrator: raise terminationGracePeriodSeconds, kill_timeout or docker stop -t, and --grace-period with it";

/// `quiesce run`.
pub fn run(args: &RunArgs, verbosity: Verbosity) -> Result<u8, Failure> {
    // First, before any thread exists: every thread inherits the mask, and the signal thread
    // alone takes the signals.
    if !args.check {
        crate::platform::reaper::block_signals()
            .map_err(|error| Failure::environment(format!("cannot block signals: {error}")))?;
    }
    let stop_signals = args
        .stop_signals
        .iter()
        .map(|name| {
            name.trim()
                .parse::<Signal>()
                .map_err(|error| Failure::invalid(format!("--stop-signals: {error}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if stop_signals.contains(&Signal::KILL) {
        return Err(Failure::invalid(
            "--stop-signals: SIGKILL cannot be caught; name the signals your orchestrator sends (TERM, INT)",
        ));
    }
    let pod = podinfo::read(&args.pod_info).map_err(|error| Failure::invalid(error.to_string()))?;
    let command_name = Path::new(&args.command[0])
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = args
        .name
        .clone()
        .or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .filter(|host| !host.is_empty())
        })
        .unwrap_or_else(|| command_name.clone());
    let image = args.image.clone().unwrap_or_default();
    let (dir, required) = args.engine.policies_dir();
    if required && !dir.is_dir() {
        return Err(Failure::invalid(format!(
            "the policies directory {} does not exist; create it or fix --policies / QUIESCE_POLICIES",
            dir.display()
        )));
    }
    let config = crate::model::config::Config::load(args.registry.config.as_deref())
        .map_err(|error| Failure::invalid(error.to_string()))?;
    let pulled = init::Pulled {
        store: super::store_of(args.registry.store.as_deref(), &config)
            .root()
            .to_path_buf(),
        registry: config.registry,
        trust: config.trust,
    };
    let choice = choose_policy(
        args.policy.as_deref(),
        &pod,
        &image,
        &command_name,
        Some(&dir),
        Some(&pulled),
    )
    .map_err(|error| Failure::invalid(error.to_string()))?;
    let settings = merge_settings(args.settings.as_deref(), &pod)
        .map_err(|error| Failure::invalid(error.to_string()))?;
    let policy: Arc<dyn Decider> = match &choice.origin {
        PolicyOrigin::Builtin(_) if !args.check => {
            let builtin = native_builtin(&choice.name).expect("every built-in is linked natively");
            (builtin.validate)(&settings).map_err(|error| {
                Failure::invalid(crate::policy::invalid_settings(
                    &choice.name,
                    &settings,
                    &error,
                ))
            })?;
            (builtin.decider)()
        }
        // A registry policy that cannot be used never keeps the command from starting: its
        // stop runs the conservative fallback sequence, and the report says why.
        PolicyOrigin::Pulled(_) if !args.check => {
            let engine = args.engine.engine()?;
            match init::check(&choice, &settings, &engine) {
                Ok(loaded) => Arc::new(loaded),
                // Settings the policy refuses are the operator's mistake, as for any policy.
                Err(error @ init::PolicyNotUsable::InvalidSettings(_)) => {
                    return Err(Failure::invalid(error.to_string()));
                }
                Err(error) => {
                    crate::output::logs::warning(
                        None,
                        &Warning::new(
                            WarningCode::PolicyWithheld,
                            format!(
                                "{error}; if a stop comes, the conservative fallback sequence runs"
                            ),
                        ),
                    );
                    let default = native_builtin("default").expect("`default` is built in");
                    (default.decider)()
                }
            }
        }
        // A policy file (and --check) is compiled and asked now, before anything starts.
        _ => {
            let engine = args.engine.engine()?;
            Arc::new(
                init::check(&choice, &settings, &engine)
                    .map_err(|error| Failure::invalid(error.to_string()))?,
            )
        }
    };
    let progress = verbosity != Verbosity::Quiet;
    if let Some(overlap) = &choice.overlap
        && (progress || args.check)
    {
        crate::output::logs::warning(None, overlap);
    }
    if args.grace_period.is_none() && progress {
        crate::output::logs::info(
            None,
            &format!(
                "note: no --grace-period (QUIESCE_GRACE_PERIOD): assuming {} (docker stop's); set it to your orchestrator's (terminationGracePeriodSeconds, kill_timeout, docker stop -t)",
                humantime::format_duration(DEFAULT_GRACE_PERIOD)
            ),
        );
    }
    let grace_period = args.grace_period.unwrap_or(DEFAULT_GRACE_PERIOD);
    let facts = process_facts(&name, &image, &args.command, &pod, grace_period);
    // What the policy needs against what the grace period leaves it: said before the command
    // starts (and by --check), since only the orchestrator's setting can raise it.
    let job = process_job(
        facts.clone(),
        policy,
        settings.clone(),
        sequence_budget(grace_period),
    );
    if args.check {
        return check(args, job, &choice, &settings);
    }
    if progress && let Some(Some(warning)) = budget_warnings(&[job], GRACE_FIX).pop() {
        crate::output::logs::warning(None, &warning);
    }
    let launch = Launch {
        facts,
        command: args.command.clone(),
        policy: choice,
        settings,
        grace_period,
        stop_signals,
        signal_group: args.signal_group,
        report: args.report.clone(),
        progress,
        leave_descendants: args.leave_descendants,
    };
    let engine = args.engine.clone();
    init::launch(launch, move || {
        engine.engine().map_err(|failure| failure.message)
    })
}

/// `quiesce run --check` once the policy and its settings are valid: what the command hears
/// (it is started for at most --check-for), then the policy's needs against the grace period
/// and the command's handlers, as warnings on stderr. Exit 0: the check is the policy's; a
/// command that cannot be started here (an image build step without it, the cache-warming
/// `-- true` in an image that has no `true`) is said on stderr and its handlers are not read.
fn check(
    args: &RunArgs,
    mut job: crate::run::executor::ServiceJob,
    choice: &init::PolicyChoice,
    settings: &str,
) -> Result<u8, Failure> {
    let signals = crate::prepare::needs::signals_sent(&job);
    let listened = if args.check_for.is_zero() {
        None
    } else {
        match init::listen::listen(&args.command, args.check_for, &signals) {
            Ok(listened) => {
                job.receiver = Some(Receiver {
                    program: listened.program.clone(),
                    role: Role::Command,
                    signals: listened.masks,
                });
                Some(listened)
            }
            Err(error) => {
                crate::output::logs::warning_text(&format!(
                    "cannot start `{}` to read its signal handlers: {error} (the policy's check is done; --check-for 0 does not start the command)",
                    args.command[0].to_string_lossy()
                ));
                None
            }
        }
    };
    for warning in crate::prepare::needs::needs_warnings(&[job], GRACE_FIX)
        .into_iter()
        .flatten()
    {
        crate::output::logs::warning(None, &warning);
    }
    crate::output::stdout::print_line!(
        "ok: policy {} ({}), settings {settings}",
        choice.name,
        choice.reason
    );
    if let Some(listened) = listened {
        crate::output::stdout::print_line!("{}", heard_line(&listened, &signals));
    }
    Ok(super::exit::SUCCESS)
}

/// `the command (`nginx`): SIGQUIT caught, SIGTERM caught`, or why nothing could be said.
fn heard_line(listened: &init::listen::Listened, signals: &[Signal]) -> String {
    let ended = listened
        .exited
        .map(|status| format!("; it ended by itself during the check ({status})"))
        .unwrap_or_default();
    match listened.masks {
        Some(masks) if !signals.is_empty() => format!(
            "the command (`{}`): {}{ended}",
            listened.program,
            signals
                .iter()
                .map(|signal| format!("{signal} {}", masks.of(*signal).as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(_) => format!("the policy's sequence sends no signal a handler could take{ended}"),
        None => format!("the command's signal handlers could not be read{ended}"),
    }
}
