//! `cinder-volume`: Three phases: TERM (stop taking new work), wait while in-flight volume and backup operations keep finishing, then the exit; INT and SIGKILL only when stuck.
//!
//! cinder-volume and cinder-backup: TERM makes the service stop taking new work; in-flight volume and backup operations (copies, migrations, backups) may take many minutes and must not be cut. With `inflight_command` set (a command in the container printing the number of operations in flight), the policy keeps waiting as long as that number keeps falling, and escalates only when it is stuck. The worker processes must receive TERM through their parent: run PID 1 as `dumb-init --single-child` (the policy warns otherwise).
//!
//! Settings (all optional; durations as `90s`, `15m`):
//! - `inflight_command` (list of strings, default none): A command printing the in-flight operation count (empty: wait for the exit without progress checks).
//! - `check_interval` (duration, default 15s): How often to run inflight_command.
//! - `stuck_after` (duration, default 10m): Escalate when the in-flight count has not fallen for this long.
//! - `max_drain` (duration, default 1h): The longest drain in any case.
//! - `exit_timeout` (duration, default 2m): How long the service may take to exit once in-flight work is done.
//! - `fast_timeout` (duration, default 10s): How long to wait after INT.
//! - `kill` (bool, default true): SIGKILL after INT.

use std::time::Duration;

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step, human_duration};
use serde::Deserialize;

/// The `cinder-volume` policy.
pub struct CinderVolumePolicy;

/// Operator settings for `cinder-volume`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// A command printing the in-flight operation count (empty: wait for the exit without progress checks).
    pub inflight_command: Vec<String>,
    /// How often to run inflight_command.
    #[serde(with = "human_duration")]
    pub check_interval: Duration,
    /// Escalate when the in-flight count has not fallen for this long.
    #[serde(with = "human_duration")]
    pub stuck_after: Duration,
    /// The longest drain in any case.
    #[serde(with = "human_duration")]
    pub max_drain: Duration,
    /// How long the service may take to exit once in-flight work is done.
    #[serde(with = "human_duration")]
    pub exit_timeout: Duration,
    /// How long to wait after INT.
    #[serde(with = "human_duration")]
    pub fast_timeout: Duration,
    /// SIGKILL after INT.
    pub kill: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            inflight_command: Vec::new(),
            check_interval: Duration::from_secs(15),
            stuck_after: Duration::from_secs(600),
            max_drain: Duration::from_secs(3600),
            exit_timeout: Duration::from_secs(120),
            fast_timeout: Duration::from_secs(10),
            kill: true,
        }
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    let mut rungs = Vec::new();
    if s.inflight_command.is_empty() {
        rungs.push(Rung::signal(Signal::TERM, s.max_drain + s.exit_timeout));
    } else {
        rungs.push(Rung::signal(Signal::TERM, Duration::ZERO));
        rungs.push(Rung::Progress {
            probe: s.inflight_command.clone(),
            interval: s.check_interval,
            stuck_after: s.stuck_after,
            max: s.max_drain,
        });
        rungs.push(Rung::WaitExit(s.exit_timeout));
    }
    rungs.push(Rung::signal(Signal::INT, s.fast_timeout));
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
            "OpenStack cinder-volume / cinder-backup: Three phases: TERM (stop taking new work), wait while in-flight volume and backup operations keep finishing, then the exit; INT and SIGKILL only when stuck.",
        )
        .images(["*cinder-volume*", "*cinder-backup*"])
        .settings_doc("- `inflight_command` (list of strings, default none): A command printing the in-flight operation count (empty: wait for the exit without progress checks).\n\
- `check_interval` (duration, default 15s): How often to run inflight_command.\n\
- `stuck_after` (duration, default 10m): Escalate when the in-flight count has not fallen for this long.\n\
- `max_drain` (duration, default 1h): The longest drain in any case.\n\
- `exit_timeout` (duration, default 2m): How long the service may take to exit once in-flight work is done.\n\
- `fast_timeout` (duration, default 10s): How long to wait after INT.\n\
- `kill` (bool, default true): SIGKILL after INT.")
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        if settings.check_interval.is_zero() {
            return Err("`check_interval` must be more than 0s".into());
        }
        if settings.stuck_after.is_zero() {
            return Err("`stuck_after` must be more than 0s".into());
        }
        if settings.max_drain.is_zero() {
            return Err("`max_drain` must be more than 0s".into());
        }
        if settings.exit_timeout.is_zero() {
            return Err("`exit_timeout` must be more than 0s".into());
        }
        if settings.fast_timeout.is_zero() {
            return Err("`fast_timeout` must be more than 0s".into());
        }
        if settings
            .inflight_command
            .first()
            .is_some_and(String::is_empty)
        {
            return Err("`inflight_command` must start with a program name".into());
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_policy_sdk::decide;

    #[test]
    fn warns_about_dumb_init_in_group_mode() {
        let command = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert!(dumb_init_warning(&command(&["dumb-init", "cinder-volume"]), false).is_some());
        assert!(
            dumb_init_warning(
                &command(&["dumb-init", "--single-child", "cinder-volume"]),
                false
            )
            .is_none()
        );
        assert!(dumb_init_warning(&command(&["cinder-volume"]), false).is_none());
    }

    #[test]
    fn metadata_names_the_policy_and_its_images() {
        let info = CinderVolumePolicy::info();
        assert_eq!(info.name, "cinder-volume");
        assert!(!info.images.is_empty());
        assert!(quiesce_policy_sdk::validate_settings::<CinderVolumePolicy>("{}").is_ok());
    }

    #[test]
    fn the_first_step_is_the_graceful_path() {
        let ctx = Context {
            remaining: Duration::from_secs(3600),
            ..Context::default()
        };
        let (action, detail) = decide::<CinderVolumePolicy>(&ctx).unwrap().describe();
        let step = format!("{action} {detail}");
        assert!(step.starts_with("signal SIGTERM"), "{step}");
    }

    #[test]
    fn the_scenarios_pass() {
        quiesce_policy_sdk::testing::assert_scenarios::<CinderVolumePolicy>(include_str!(
            "../scenarios/cinder-volume.toml"
        ));
    }
}
