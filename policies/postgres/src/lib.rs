//! `postgres`: TERM (smart), then INT (fast), then QUIT (immediate); SIGKILL only if the operator allows it.
//!
//! PostgreSQL: TERM is smart shutdown (waits for sessions to end), INT is fast shutdown (rolls back open transactions, checkpoints, exits), QUIT is immediate shutdown (exits without a checkpoint; recovery at the next start). SIGKILL is never needed and risks shared-memory leftovers, so it is off by default.
//!
//! Settings: [`Settings`] (each with its default; `quiesce policy list --json` shows them).

use quiesce_policy_sdk::ladder::{Ladder, Rung};
use quiesce_policy_sdk::settings::{DocumentedSettings, PositiveDuration};
use quiesce_policy_sdk::{Context, Policy, PolicyInfo, Signal, Step};

/// The `postgres` policy.
pub struct PostgresPolicy;

quiesce_policy_sdk::settings! {
    /// Operator settings for `postgres`.
    pub struct Settings {
        /// How long sessions may take to end after TERM.
        smart_timeout: PositiveDuration = PositiveDuration::secs(60),
        /// How long the fast shutdown (rollback and checkpoint) may take after INT.
        fast_timeout: PositiveDuration = PositiveDuration::secs(60),
        /// How long to wait after QUIT.
        immediate_timeout: PositiveDuration = PositiveDuration::secs(10),
        /// Allow SIGKILL after QUIT. Off: the policy keeps waiting until the budget ends, and the runner decides.
        allow_kill: bool = false,
    }
}

/// The escalation ladder for these settings.
fn ladder(s: &Settings) -> Ladder {
    Ladder::new(vec![
        Rung::signal(Signal::TERM, s.smart_timeout.get()),
        Rung::signal(Signal::INT, s.fast_timeout.get()),
        Rung::signal(Signal::QUIT, s.immediate_timeout.get()),
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
        .settings_doc(&Settings::doc())
    }

    fn next(ctx: &Context, settings: &Settings) -> Result<Step, String> {
        Ok(ladder(settings).next(ctx))
    }
}

quiesce_policy_sdk::export!(PostgresPolicy);

quiesce_policy_sdk::policy_tests!(
    PostgresPolicy,
    "signal SIGTERM",
    include_str!("../scenarios/postgres.toml"),
);
