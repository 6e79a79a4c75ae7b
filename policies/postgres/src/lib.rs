//! `postgres`: TERM (smart), then INT (fast), then QUIT (immediate); SIGKILL only if the operator allows it.
//!
//! PostgreSQL: TERM is smart shutdown (waits for sessions to end), INT is fast shutdown (rolls back open transactions, checkpoints, exits), QUIT is immediate shutdown (exits without a checkpoint; recovery at the next start). SIGKILL is never needed and risks shared-memory leftovers, so it is off by default.
//!
//! Settings (all optional; durations as `90s`, `15m`):
//! - `smart_timeout` (duration, default 1m): How long sessions may take to end after TERM.
//! - `fast_timeout` (duration, default 1m): How long the fast shutdown (rollback and checkpoint) may take after INT.
//! - `immediate_timeout` (duration, default 10s): How long to wait after QUIT.
//! - `allow_kill` (bool, default false): Allow SIGKILL after QUIT. Off: the policy keeps waiting until the budget ends, and the runner decides.

use std::time::Duration;

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step, human_duration};
use serde::Deserialize;

/// The `postgres` policy.
pub struct PostgresPolicy;

/// Operator settings for `postgres`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// How long sessions may take to end after TERM.
    #[serde(with = "human_duration")]
    pub smart_timeout: Duration,
    /// How long the fast shutdown (rollback and checkpoint) may take after INT.
    #[serde(with = "human_duration")]
    pub fast_timeout: Duration,
    /// How long to wait after QUIT.
    #[serde(with = "human_duration")]
    pub immediate_timeout: Duration,
    /// Allow SIGKILL after QUIT. Off: the policy keeps waiting until the budget ends, and the runner decides.
    pub allow_kill: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            smart_timeout: Duration::from_secs(60),
            fast_timeout: Duration::from_secs(60),
            immediate_timeout: Duration::from_secs(10),
            allow_kill: false,
        }
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![
        Rung::signal(Signal::TERM, s.smart_timeout),
        Rung::signal(Signal::INT, s.fast_timeout),
        Rung::signal(Signal::QUIT, s.immediate_timeout),
    ])
    .with_kill(s.allow_kill)
}

impl Policy for PostgresPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "postgres",
            env!("CARGO_PKG_VERSION"),
            "PostgreSQL: TERM (smart), then INT (fast), then QUIT (immediate); SIGKILL only if the operator allows it.",
        )
        .images(["postgres*", "postgis*", "timescale*"])
        .settings_doc("- `smart_timeout` (duration, default 1m): How long sessions may take to end after TERM.\n\
- `fast_timeout` (duration, default 1m): How long the fast shutdown (rollback and checkpoint) may take after INT.\n\
- `immediate_timeout` (duration, default 10s): How long to wait after QUIT.\n\
- `allow_kill` (bool, default false): Allow SIGKILL after QUIT. Off: the policy keeps waiting until the budget ends, and the runner decides.")
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        if settings.smart_timeout.is_zero() {
            return Err("`smart_timeout` must be more than 0s".into());
        }
        if settings.fast_timeout.is_zero() {
            return Err("`fast_timeout` must be more than 0s".into());
        }
        if settings.immediate_timeout.is_zero() {
            return Err("`immediate_timeout` must be more than 0s".into());
        }
        Ok(())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(PostgresPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_policy_sdk::decide;

    #[test]
    fn metadata_names_the_policy_and_its_images() {
        let info = PostgresPolicy::info();
        assert_eq!(info.name, "postgres");
        assert!(!info.images.is_empty());
        assert!(quiesce_policy_sdk::validate_settings::<PostgresPolicy>("{}").is_ok());
    }

    #[test]
    fn the_first_step_is_the_graceful_path() {
        let ctx = Context {
            remaining: Duration::from_secs(3600),
            ..Context::default()
        };
        let (action, detail) = decide::<PostgresPolicy>(&ctx).unwrap().describe();
        let step = format!("{action} {detail}");
        assert!(step.starts_with("signal SIGTERM"), "{step}");
    }

    #[test]
    fn the_scenarios_pass() {
        quiesce_policy_sdk::testing::assert_scenarios::<PostgresPolicy>(include_str!(
            "../scenarios/postgres.toml"
        ));
    }
}
