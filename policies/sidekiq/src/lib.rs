//! `sidekiq`: TSTP (quiet: stop fetching jobs), a quiet period, then TERM (finish jobs within -t), then SIGKILL.
//!
//! Sidekiq: TSTP makes the process quiet (it stops fetching new jobs but keeps working on the current ones); TERM then shuts it down, giving running jobs the -t timeout (25 s by default) before pushing them back to Redis. SIGKILL loses the jobs in progress.
//!
//! Settings (all optional; durations as `90s`, `15m`):
//! - `quiet_period` (duration, default 10s): How long to stay quiet (TSTP) before TERM.
//! - `shutdown_timeout` (duration, default 25s): Sidekiq's own -t timeout.
//! - `margin` (duration, default 5s): Added to shutdown_timeout before SIGKILL.
//! - `kill` (bool, default true): SIGKILL after TERM (loses running jobs).

use std::time::Duration;

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step, human_duration};
use serde::Deserialize;

/// The `sidekiq` policy.
pub struct SidekiqPolicy;

/// Operator settings for `sidekiq`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// How long to stay quiet (TSTP) before TERM.
    #[serde(with = "human_duration")]
    pub quiet_period: Duration,
    /// Sidekiq's own -t timeout.
    #[serde(with = "human_duration")]
    pub shutdown_timeout: Duration,
    /// Added to shutdown_timeout before SIGKILL.
    #[serde(with = "human_duration")]
    pub margin: Duration,
    /// SIGKILL after TERM (loses running jobs).
    pub kill: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            quiet_period: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(25),
            margin: Duration::from_secs(5),
            kill: true,
        }
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![
        Rung::signal(Signal::TSTP, Duration::ZERO),
        Rung::Sleep(s.quiet_period),
        Rung::signal(Signal::TERM, s.shutdown_timeout + s.margin),
    ])
    .with_kill(s.kill)
}

impl Policy for SidekiqPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "sidekiq",
            env!("CARGO_PKG_VERSION"),
            "Sidekiq: TSTP (quiet: stop fetching jobs), a quiet period, then TERM (finish jobs within -t), then SIGKILL.",
        )
        .images(["*sidekiq*"])
        .settings_doc("- `quiet_period` (duration, default 10s): How long to stay quiet (TSTP) before TERM.\n\
- `shutdown_timeout` (duration, default 25s): Sidekiq's own -t timeout.\n\
- `margin` (duration, default 5s): Added to shutdown_timeout before SIGKILL.\n\
- `kill` (bool, default true): SIGKILL after TERM (loses running jobs).")
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        if settings.quiet_period.is_zero() {
            return Err("`quiet_period` must be more than 0s".into());
        }
        if settings.shutdown_timeout.is_zero() {
            return Err("`shutdown_timeout` must be more than 0s".into());
        }
        if settings.margin.is_zero() {
            return Err("`margin` must be more than 0s".into());
        }
        Ok(())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(SidekiqPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_policy_sdk::decide;

    #[test]
    fn metadata_names_the_policy_and_its_images() {
        let info = SidekiqPolicy::info();
        assert_eq!(info.name, "sidekiq");
        assert!(!info.images.is_empty());
        assert!(quiesce_policy_sdk::validate_settings::<SidekiqPolicy>("{}").is_ok());
    }

    #[test]
    fn the_first_step_is_the_graceful_path() {
        let ctx = Context {
            remaining: Duration::from_secs(3600),
            ..Context::default()
        };
        let (action, detail) = decide::<SidekiqPolicy>(&ctx).unwrap().describe();
        let step = format!("{action} {detail}");
        assert!(step.starts_with("signal SIGTSTP"), "{step}");
    }

    #[test]
    fn the_scenarios_pass() {
        quiesce_policy_sdk::testing::assert_scenarios::<SidekiqPolicy>(include_str!(
            "../scenarios/sidekiq.toml"
        ));
    }
}
