//! `mysql`: TERM (clean shutdown: flush, close tables, write the redo log); SIGKILL only after a long wait.
//!
//! MySQL and MariaDB: TERM starts a normal shutdown (connections are closed, InnoDB flushes its buffer pool unless fast shutdown is configured). It can take minutes on a large buffer pool; SIGKILL forces crash recovery at the next start.
//!
//! Settings: [`Settings`] (each with its default; `quiesce policy list --json` shows them).

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::settings::{DocumentedSettings, PositiveDuration};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step};

/// The `mysql` policy.
pub struct MysqlPolicy;

quiesce_policy_sdk::settings! {
    /// Operator settings for `mysql`.
    pub struct Settings {
        /// How long the clean shutdown may take after TERM.
        shutdown_timeout: PositiveDuration = PositiveDuration::secs(180),
        /// SIGKILL when it takes longer (crash recovery at the next start).
        kill: bool = true,
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![Rung::signal(Signal::TERM, s.shutdown_timeout.get())]).with_kill(s.kill)
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
        .settings_doc(&Settings::doc())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(MysqlPolicy);

quiesce_policy_sdk::policy_tests!(
    MysqlPolicy,
    "signal SIGTERM",
    include_str!("../scenarios/mysql.toml"),
);
