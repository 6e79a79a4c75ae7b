//! `redis`: TERM (SHUTDOWN: saves the dataset when persistence is on, then exits); SIGKILL only after a long wait.
//!
//! Redis: TERM runs SHUTDOWN: it stops clients, saves an RDB snapshot if save points are configured (and fsyncs the AOF), then exits. There is no faster graceful signal; SIGKILL loses unsaved data.
//!
//! Settings (all optional; durations as `90s`, `15m`):
//! - `shutdown_timeout` (duration, default 2m): How long the final save may take after TERM.
//! - `kill` (bool, default true): SIGKILL when the save takes longer (loses unsaved data).

use std::time::Duration;

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step, human_duration};
use serde::Deserialize;

/// The `redis` policy.
pub struct RedisPolicy;

/// Operator settings for `redis`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// How long the final save may take after TERM.
    #[serde(with = "human_duration")]
    pub shutdown_timeout: Duration,
    /// SIGKILL when the save takes longer (loses unsaved data).
    pub kill: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            shutdown_timeout: Duration::from_secs(120),
            kill: true,
        }
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![Rung::signal(Signal::TERM, s.shutdown_timeout)]).with_kill(s.kill)
}

impl Policy for RedisPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "redis",
            env!("CARGO_PKG_VERSION"),
            "Redis: TERM (SHUTDOWN: saves the dataset when persistence is on, then exits); SIGKILL only after a long wait.",
        )
        .images(["redis*", "valkey*"])
        .settings_doc("- `shutdown_timeout` (duration, default 2m): How long the final save may take after TERM.\n\
- `kill` (bool, default true): SIGKILL when the save takes longer (loses unsaved data).")
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        if settings.shutdown_timeout.is_zero() {
            return Err("`shutdown_timeout` must be more than 0s".into());
        }
        Ok(())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(RedisPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_policy_sdk::decide;

    #[test]
    fn metadata_names_the_policy_and_its_images() {
        let info = RedisPolicy::info();
        assert_eq!(info.name, "redis");
        assert!(!info.images.is_empty());
        assert!(quiesce_policy_sdk::validate_settings::<RedisPolicy>("{}").is_ok());
    }

    #[test]
    fn the_first_step_is_the_graceful_path() {
        let ctx = Context {
            remaining: Duration::from_secs(3600),
            ..Context::default()
        };
        let (action, detail) = decide::<RedisPolicy>(&ctx).unwrap().describe();
        let step = format!("{action} {detail}");
        assert!(step.starts_with("signal SIGTERM"), "{step}");
    }

    #[test]
    fn the_scenarios_pass() {
        quiesce_policy_sdk::testing::assert_scenarios::<RedisPolicy>(include_str!(
            "../scenarios/redis.toml"
        ));
    }
}
