//! `mysql`: TERM (clean shutdown: flush, close tables, write the redo log); SIGKILL only after a long wait.
//!
//! MySQL and MariaDB: TERM starts a normal shutdown (connections are closed, InnoDB flushes its buffer pool unless fast shutdown is configured). It can take minutes on a large buffer pool; SIGKILL forces crash recovery at the next start.
//!
//! Settings (all optional; durations as `90s`, `15m`):
//! - `shutdown_timeout` (duration, default 3m): How long the clean shutdown may take after TERM.
//! - `kill` (bool, default true): SIGKILL when it takes longer (crash recovery at the next start).

use std::time::Duration;

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step, human_duration};
use serde::Deserialize;

/// The `mysql` policy.
pub struct MysqlPolicy;

/// Operator settings for `mysql`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// How long the clean shutdown may take after TERM.
    #[serde(with = "human_duration")]
    pub shutdown_timeout: Duration,
    /// SIGKILL when it takes longer (crash recovery at the next start).
    pub kill: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            shutdown_timeout: Duration::from_secs(180),
            kill: true,
        }
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![Rung::signal(Signal::TERM, s.shutdown_timeout)]).with_kill(s.kill)
}

impl Policy for MysqlPolicy {
    type Settings = Settings;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "mysql",
            env!("CARGO_PKG_VERSION"),
            "MySQL / MariaDB: TERM (clean shutdown: flush, close tables, write the redo log); SIGKILL only after a long wait.",
        )
        .images(["mysql*", "mariadb*", "percona*"])
        .settings_doc("- `shutdown_timeout` (duration, default 3m): How long the clean shutdown may take after TERM.\n\
- `kill` (bool, default true): SIGKILL when it takes longer (crash recovery at the next start).")
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

quiesce_policy_sdk::export!(MysqlPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_policy_sdk::decide;

    #[test]
    fn metadata_names_the_policy_and_its_images() {
        let info = MysqlPolicy::info();
        assert_eq!(info.name, "mysql");
        assert!(!info.images.is_empty());
        assert!(quiesce_policy_sdk::validate_settings::<MysqlPolicy>("{}").is_ok());
    }

    #[test]
    fn the_first_step_is_the_graceful_path() {
        let ctx = Context {
            remaining: Duration::from_secs(3600),
            ..Context::default()
        };
        let (action, detail) = decide::<MysqlPolicy>(&ctx).unwrap().describe();
        let step = format!("{action} {detail}");
        assert!(step.starts_with("signal SIGTERM"), "{step}");
    }

    #[test]
    fn the_scenarios_pass() {
        quiesce_policy_sdk::testing::assert_scenarios::<MysqlPolicy>(include_str!(
            "../scenarios/mysql.toml"
        ));
    }
}
