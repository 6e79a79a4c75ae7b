//! `redis`: TERM (SHUTDOWN: saves the dataset when persistence is on, then exits); SIGKILL only after a long wait.
//!
//! Redis: TERM runs SHUTDOWN: it stops clients, saves an RDB snapshot if save points are configured (and fsyncs the AOF), then exits. There is no faster graceful signal; SIGKILL loses unsaved data.
//!
//! Settings: [`Settings`] (each with its default; `quiesce policy list --json` shows them).

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::settings::{DocumentedSettings, PositiveDuration};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step};

/// The `redis` policy.
pub struct RedisPolicy;

quiesce_policy_sdk::settings! {
    /// Operator settings for `redis`.
    pub struct Settings {
        /// How long the final save may take after TERM.
        shutdown_timeout: PositiveDuration = PositiveDuration::secs(120),
        /// SIGKILL when the save takes longer (loses unsaved data).
        kill: bool = true,
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![Rung::signal(Signal::TERM, s.shutdown_timeout.get())]).with_kill(s.kill)
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
        .settings_doc(&Settings::doc())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(RedisPolicy);

quiesce_policy_sdk::policy_tests!(
    RedisPolicy,
    "signal SIGTERM",
    include_str!("../scenarios/redis.toml"),
);
