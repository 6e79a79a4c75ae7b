//! `cinder-volume`: Three phases: TERM (stop taking new work), wait while in-flight volume and backup operations keep finishing, then the exit; SIGKILL only when stuck.
//!
//! cinder-volume and cinder-backup: TERM makes the service stop taking new work; in-flight
//! volume and backup operations (copies, migrations, backups) may take many minutes and must not
//! be cut. With `inflight_command` set (a command in the container printing the number of
//! operations in flight), the policy runs it every `check_interval` and keeps waiting as long as
//! that number keeps falling; each decision is made right after a reading. When the count
//! reaches 0 it waits `exit_timeout` for the exit (phase three: the service cleans up). When the
//! count has not fallen for `stuck_after` (or after `max_drain`), it also waits `exit_timeout`,
//! then SIGKILLs: the report says `killed`. There is no INT rung (version 2): cinder-volume is an
//! oslo.service, which resets its handlers when its shutdown starts, so an INT either kills it at
//! once (through an init) or is ignored (as PID 1); neither keeps work. Without
//! `inflight_command`: TERM and a wait of `max_drain` plus `exit_timeout`.
//!
//! The defaults allow a drain of up to `max_drain` (1 h) plus `exit_timeout`: give the service
//! a budget that long (label `quiesce.budget`, a config rule's `budget`): `plan` and `stop` warn
//! when the budget would cut the drain. The worker processes must receive TERM through their
//! parent: run PID 1 as `dumb-init --single-child` or `quiesce run` (the policy warns about
//! dumb-init in group mode). Set cinder's own `graceful_shutdown_timeout` above `max_drain`:
//! under an init, oslo.service's alarm ends the drain at that timeout (60 s by default).
//! Measured with a real oslo.service 3.0 program under `dumb-init --single-child`
//! (tests/integration/cinder_seed.rs): six operations finishing 8 to 38 s after the stop all
//! finished (exit 0) where `docker stop -t 30` lost two; with one stuck, SIGKILL came
//! `stuck_after` plus `exit_timeout` after the count last fell, the others all finished.
//!
//! Settings: [`Settings`] (each with its default; `quiesce policy list --json` shows them).

use std::time::Duration;

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::settings::{DocumentedSettings, PositiveDuration};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step};

/// The `cinder-volume` policy.
pub struct CinderVolumePolicy;

quiesce_policy_sdk::settings! {
    /// Operator settings for `cinder-volume`.
    pub struct Settings {
        /// A command printing the in-flight operation count (empty: wait for the exit without progress checks).
        inflight_command: Vec<String> = Vec::new(),
        /// How often to run inflight_command.
        check_interval: PositiveDuration = PositiveDuration::secs(15),
        /// Escalate when the in-flight count has not fallen for this long.
        stuck_after: PositiveDuration = PositiveDuration::secs(600),
        /// The longest drain in any case.
        max_drain: PositiveDuration = PositiveDuration::secs(3600),
        /// How long the service may take to exit once in-flight work is done (or stuck).
        exit_timeout: PositiveDuration = PositiveDuration::secs(120),
        /// SIGKILL after that (off: the wait lasts until the budget ends).
        kill: bool = true,
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    let mut rungs = Vec::new();
    if s.inflight_command.is_empty() {
        rungs.push(Rung::signal(
            Signal::TERM,
            s.max_drain.get() + s.exit_timeout.get(),
        ));
    } else {
        rungs.push(Rung::signal(Signal::TERM, Duration::ZERO));
        rungs.push(Rung::Progress {
            probe: s.inflight_command.clone(),
            interval: s.check_interval.get(),
            stuck_after: s.stuck_after.get(),
            max: s.max_drain.get(),
        });
        rungs.push(Rung::WaitExit(s.exit_timeout.get()));
    }
    Ladder::new(rungs).with_kill(s.kill)
}

/// cinder-volume runs forked workers; with dumb-init in group mode (the default) TERM reaches
/// every worker at once and in-flight operations die before the parent can drain them.
fn dumb_init_warning(command: &[String], docker_init: bool) -> Option<String> {
    let program = command.first()?;
    let group_mode = program.rsplit('/').next() == Some("dumb-init")
        && !command
            .iter()
            .any(|arg| arg == "--single-child" || arg == "-c");
    (group_mode && !docker_init).then(|| {
        "PID 1 is dumb-init in group mode: TERM reaches every cinder worker at once and in-flight \
         operations may be cut; run `dumb-init --single-child`"
            .to_string()
    })
}

impl Policy for CinderVolumePolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "cinder-volume",
            env!("CARGO_PKG_VERSION"),
            "OpenStack cinder-volume / cinder-backup: Three phases: TERM (stop taking new work), wait while in-flight volume and backup operations keep finishing, then the exit; SIGKILL only when stuck.",
        )
        .images(["*cinder-volume*", "*cinder-backup*"])
        .settings_doc(&Settings::doc())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        if ctx.steps_taken() == 0
            && let Some(warning) = dumb_init_warning(&ctx.service.command, ctx.service.init)
        {
            eprintln!("warning: {warning}");
        }
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(CinderVolumePolicy);

quiesce_policy_sdk::policy_tests!(
    CinderVolumePolicy,
    "signal SIGTERM",
    include_str!("../scenarios/cinder-volume.toml"),
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_about_dumb_init_in_group_mode() {
        let command = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert!(dumb_init_warning(&command(&["dumb-init", "cinder-volume"]), false).is_some());
        let single = command(&["dumb-init", "--single-child", "cinder-volume"]);
        assert!(dumb_init_warning(&single, false).is_none());
        assert!(dumb_init_warning(&command(&["cinder-volume"]), false).is_none());
    }
}
